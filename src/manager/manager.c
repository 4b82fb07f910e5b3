/* Opening a state root for instance work. */
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a of the root's path: a short stable tag for global names. */
static void
root_tag (const char *root, char tag[9])
{
  uint32_t h = 2166136261u;
  for (const char *p = root; *p; p++)
    h = (h ^ (unsigned char) *p) * 16777619u;
  snprintf (tag, 9, "%08x", h);
}

int
manager_open_raw (const char *root, struct cl_manager **out, cl_error_t *err)
{
  struct cl_manager *m = cl_xmalloc0 (sizeof *m);
  char *abs = realpath (root, NULL);

  if (abs == NULL)
    {
      if (cl_mkdir_p (root, 0700, err) < 0)
        {
          free (m);
          return cl_error_wrap (err, "state root");
        }
      abs = realpath (root, NULL);
    }
  m->root = abs ? abs : strdup (root);
  root_tag (m->root, m->tag);
  if (cl_db_open (m->root, &m->db, err) < 0 || store_init (m, err) < 0)
    {
      cl_manager_close (m);
      return -1;
    }
  *out = m;
  return 0;
}

int
cl_manager_open (const char *root, struct cl_manager **out, cl_error_t *err)
{
  struct cl_manager *m;

  if (manager_open_raw (root, &m, err) < 0)
    return -1;
  if (reconcile_intents (m, err) < 0)
    {
      cl_manager_close (m);
      return -1;
    }
  *out = m;
  return 0;
}

void
cl_manager_close (struct cl_manager *m)
{
  if (m == NULL)
    return;
  if (m->db)
    cl_db_close (m->db);
  free (m->root);
  free (m);
}

char *
instance_dir (struct cl_manager *m, const char *name)
{
  return cl_strdup_printf ("%s/instances/%s", m->root, name);
}

char *
engine_root (struct cl_manager *m)
{
  return cl_strdup_printf ("%s/containers", m->root);
}

char *
instance_global_id (struct cl_manager *m, const char *name)
{
  return cl_strdup_printf ("cl-%s-%s", m->tag, name);
}
