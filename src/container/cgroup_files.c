/* SPDX-License-Identifier: Apache-2.0 */
/* The files of a container's cgroup directories: which directory holds a
   controller, and reading or writing one of its files (on a hybrid host,
   enabling unified controllers on demand).  Used by the life cycle
   (cgroup.c) and the resources (cgroup_resources.c); uses neither. */
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "container/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
cl_ctr_cgroup_enable_v2_controllers (const char *mount, const char *rel, const char *wanted)
{
  /* Each ancestor of the leaf must delegate the controllers to its
     children, from the top down. */
  cleanup_free char *full = cl_ctr_path_join_clean (mount, rel, NULL);
  size_t base = strlen (mount);
  char *save = NULL;
  cleanup_free char *copy = cl_xstrdup (wanted);

  for (char *p = full + base;; p++)
    {
      if (*p == '/' || *p == '\0')
        {
          char saved = *p;
          cleanup_free char *file = NULL;
          cleanup_free char *ctrl_copy = cl_xstrdup (copy);
          *p = '\0';
          if (saved == '\0')
            break;
          file = cl_strdup_printf ("%s/cgroup.subtree_control", *full ? full : "/");
          for (char *c = strtok_r (ctrl_copy, " \n", &save); c; c = strtok_r (NULL, " \n", &save))
            {
              cleanup_free char *line = cl_strdup_printf ("+%s", c);
              int fd = open (file, O_WRONLY | O_CLOEXEC);
              if (fd >= 0)
                {
                  if (write (fd, line, strlen (line)) < 0)
                    cl_debug ("cgroup: %s in %s: %s", line, file, strerror (errno));
                  close (fd);
                }
            }
          *p = saved;
        }
    }
}

struct cl_cgroup_dir *
cl_ctr_cgroup_dir_for (struct cl_cgroup *cg, const char *controller)
{
  for (size_t i = 0; i < cg->n_dirs; i++)
    if (!cg->dirs[i].v2 && cl_ctr_list_has (cg->dirs[i].controllers, controller, ','))
      return &cg->dirs[i];
  for (size_t i = 0; i < cg->n_dirs; i++)
    if (cg->dirs[i].v2)
      {
        /* Core files (cgroup.*) live in every v2 directory. */
        if (strcmp (controller, "cgroup") == 0
            || cl_ctr_list_has (cg->unified_controllers, controller, ' '))
          return &cg->dirs[i];
      }
  return NULL;
}

char *
cl_ctr_cgroup_dir_file (struct cl_cgroup_dir *d, const char *file)
{
  return cl_strdup_printf ("%s/%s", d->path, file);
}

bool
cl_ctr_cgroup_has_file (struct cl_cgroup *cg, const char *controller, const char *file)
{
  struct cl_cgroup_dir *d = cl_ctr_cgroup_dir_for (cg, controller);
  cleanup_free char *path = NULL;
  if (d == NULL)
    return false;
  path = cl_ctr_cgroup_dir_file (d, file);
  return access (path, F_OK) == 0;
}

int
cl_ctr_cgroup_write (struct cl_cgroup *cg, const char *controller, const char *file,
                     const char *value, const char *field, cl_error_t *err)
{
  struct cl_cgroup_dir *d = cl_ctr_cgroup_dir_for (cg, controller);
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;

  if (d == NULL)
    return cl_error_make (err, 0, "%s: the %s controller is not available on this host", field,
                          controller);
  path = cl_ctr_cgroup_dir_file (d, file);
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && d->v2)
    {
      /* On a hybrid host the unified controllers are enabled on demand. */
      cleanup_free char *rel = cl_xstrdup (d->path + strlen (d->mount));
      cl_ctr_cgroup_enable_v2_controllers (d->mount, rel, controller);
      fd = open (path, O_WRONLY | O_CLOEXEC);
    }
  if (fd < 0)
    return cl_error_errno (err, "%s: open `%s`", field, path);
  if (write (fd, value, strlen (value)) < 0)
    return cl_error_errno (err, "%s: write `%s` to `%s`", field, value, path);
  return 0;
}

int
cl_ctr_cgroup_read (struct cl_cgroup *cg, const char *controller, const char *file, char **out,
                    cl_error_t *err)
{
  struct cl_cgroup_dir *d = cl_ctr_cgroup_dir_for (cg, controller);
  cleanup_free char *path = NULL;
  if (d == NULL)
    return cl_error_make (err, 0, "the %s controller is not available on this host", controller);
  path = cl_ctr_cgroup_dir_file (d, file);
  return cl_read_file (path, out, NULL, err);
}
