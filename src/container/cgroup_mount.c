/* SPDX-License-Identifier: Apache-2.0 */
/* `cgroup` mounts inside a container: cgroup2 on a v2 host; on v1 and
   hybrid hosts a tmpfs holding one mount per hierarchy, like the host's
   /sys/fs/cgroup. */
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "container/cgroup_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory name a v1 hierarchy gets under a container's
   /sys/fs/cgroup ("cpu,cpuacct", "systemd"). */
static const char *
mount_name (const struct cl_hierarchy *h)
{
  if (h->v2)
    return "unified";
  if (strncmp (h->controllers, "name=", 5) == 0)
    return h->controllers + 5;
  return h->controllers;
}

static int
mount_one (const struct cl_hierarchy *h, const char *where, unsigned long flags, cl_error_t *err)
{
  unsigned long mflags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (flags & MS_RDONLY);
  const char *data = h->v2 ? NULL : h->controllers;
  cleanup_free char *own = NULL, *source = NULL;

  if (mount ("cgroup", where, h->v2 ? "cgroup2" : "cgroup", mflags, data) == 0)
    return 0;
  /* The same hierarchy with the same root is already mounted there (a
     spec listing the mount twice). */
  if (errno == EBUSY)
    return 0;
  /* Without a cgroup namespace of our own (or in a user namespace, where
     v1 cannot be mounted) bind the container's own directory, as runc.
     Seen from another cgroup namespace, the host's mount is rooted
     outside ours ("/.."): nothing safe to bind then. */
  if (strncmp (h->root, "/..", 3) == 0)
    return cl_error_errno (err, "mount cgroup at `%s`", where);
  own = cl_ctr_hierarchy_own_cgroup (h);
  source = cl_ctr_path_join_clean (h->mount, own, NULL);
  if (mount (source, where, NULL, MS_BIND | MS_REC, NULL) < 0)
    return cl_error_errno (err, "mount cgroup at `%s`", where);
  if (mount (NULL, where, NULL, MS_BIND | MS_REMOUNT | mflags, NULL) < 0)
    return cl_error_errno (err, "remount `%s`", where);
  return 0;
}

int
cl_ctr_cgroup_mount (const char *target, unsigned long flags, cl_error_t *err)
{
  struct cl_hierarchy *h = NULL;
  size_t n = 0;
  int ret = -1;
  unsigned long base = MS_NOSUID | MS_NODEV | MS_NOEXEC;

  if (cl_ctr_hierarchies_read (&h, &n, err) < 0)
    return -1;
  if (n == 0)
    {
      free (h);
      return cl_error_make (err, 0, "mount cgroup at `%s`: no cgroup hierarchy on the host", target);
    }
  if (cl_ctr_hierarchies_mode (h, n) == CL_CGROUP_V2)
    {
      ret = mount_one (&h[0], target, flags, err);
      free (h);
      return ret;
    }
  /* v1: a tmpfs holding one mount per hierarchy, like the host's. */
  if (mount ("tmpfs", target, "tmpfs", base, "mode=755") < 0)
    {
      cl_error_errno (err, "mount tmpfs at `%s`", target);
      goto out;
    }
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *where = cl_strdup_printf ("%s/%s", target, mount_name (&h[i]));
      if (mkdir (where, 0755) < 0 && errno != EEXIST)
        {
          cl_error_errno (err, "mkdir `%s`", where);
          goto out;
        }
      if (mount_one (&h[i], where, flags, err) < 0)
        goto out;
      /* "cpu,cpuacct" is also reachable as "cpu" and "cpuacct". */
      if (!h[i].v2 && strchr (h[i].controllers, ','))
        {
          cleanup_free char *copy = cl_xstrdup (h[i].controllers);
          char *save = NULL;
          for (char *c = strtok_r (copy, ",", &save); c; c = strtok_r (NULL, ",", &save))
            {
              cleanup_free char *link = cl_strdup_printf ("%s/%s", target, c);
              if (symlink (mount_name (&h[i]), link) < 0 && errno != EEXIST)
                cl_debug ("symlink %s: %s", link, strerror (errno));
            }
        }
    }
  if ((flags & MS_RDONLY) && mount (NULL, target, NULL, MS_REMOUNT | base | MS_RDONLY, "mode=755") < 0)
    {
      cl_error_errno (err, "remount `%s` read-only", target);
      goto out;
    }
  ret = 0;
out:
  free (h);
  return ret;
}
