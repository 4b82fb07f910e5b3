/* SPDX-License-Identifier: Apache-2.0 */
/* The volumes' rows as the rest of the manager needs them: what an
   instance has attached (its kinds mount them at start), attachments
   made at launch, and the "SOURCE:PATH[:ro]" form shared by volumes and
   shared folders.  The public volume calls are in volume.c. */
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/mgr_internal.h"

#include <stdlib.h>
#include <string.h>

int
cl_mgr_mount_spec_parse (const char *spec, const char *what, char **source, char **path, bool *ro,
                         cl_error_t *err)
{
  const char *colon = strchr (spec, ':'), *opt;
  size_t plen;

  if (colon == NULL || colon == spec || colon[1] != '/')
    return cl_error_raise (err, CL_ERR_INVALID, "%s `%s`: expected SOURCE:/PATH[:ro]", what, spec);
  opt = strchr (colon + 1, ':');
  plen = opt ? (size_t)(opt - colon - 1) : strlen (colon + 1);
  if (opt && strcmp (opt, ":ro") != 0 && strcmp (opt, ":rw") != 0)
    return cl_error_raise (err, CL_ERR_INVALID, "%s `%s`: unknown option `%s` (ro or rw)", what,
                           spec, opt + 1);
  if (plen < 2 || memmem (colon + 1, plen, "/../", 4) || memmem (colon + 1, plen, "//", 2)
      || (plen >= 3 && strncmp (colon + 1 + plen - 3, "/..", 3) == 0))
    return cl_error_raise (err, CL_ERR_INVALID,
                           "%s `%s`: the path must be absolute, clean and not `/`", what, spec);
  *source = strndup (spec, (size_t)(colon - spec));
  *path = strndup (colon + 1, plen);
  if (*source == NULL || *path == NULL)
    abort ();
  *ro = opt && strcmp (opt, ":ro") == 0;
  return 0;
}

char *
cl_mgr_volume_dir (struct cl_manager *m, const char *name)
{
  return cl_strdup_printf ("%s/volumes/%s", m->root, name);
}

int
cl_mgr_volume_type (struct cl_manager *m, const char *name, char **type, uint64_t *size,
                    cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  int r;

  if (cl_db_prepare (m->db, "SELECT type, size FROM volumes WHERE name = ?", &s, err) < 0)
    return -1;
  sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  r = sqlite3_step (s);
  if (r == SQLITE_DONE)
    return cl_error_raise (err, CL_ERR_NOT_FOUND, "volume `%s` not found", name);
  if (r != SQLITE_ROW)
    return cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (m->db));
  if (type)
    *type = cl_xstrdup ((const char *)sqlite3_column_text (s, 0));
  if (size)
    *size = (uint64_t)sqlite3_column_int64 (s, 1);
  return 0;
}

int
cl_mgr_volume_add_attachment (struct cl_manager *m, const char *volume, const char *instance,
                              const char *path, bool readonly, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  cleanup_free char *type = NULL;
  int r;

  if (cl_mgr_volume_type (m, volume, &type, NULL, err) < 0)
    return -1;
  if (cl_db_prepare (m->db,
                     "SELECT instance, path FROM volume_attachments WHERE volume = ?1"
                     " OR (instance = ?2 AND path = ?3)",
                     &s, err)
      < 0)
    return -1;
  sqlite3_bind_text (s, 1, volume, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, instance, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, path, -1, SQLITE_STATIC);
  while ((r = sqlite3_step (s)) == SQLITE_ROW)
    {
      const char *other = (const char *)sqlite3_column_text (s, 0);
      const char *opath = (const char *)sqlite3_column_text (s, 1);
      if (strcmp (other, instance) == 0 && strcmp (opath, path) == 0)
        return cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` already has a volume at `%s`",
                               instance, path);
      if (strcmp (other, instance) == 0)
        return cl_error_raise (err, CL_ERR_CONFLICT, "volume `%s` is already attached to `%s`",
                               volume, instance);
      /* two kernels (or two loop mounts) writing one ext4 image would
         corrupt it; directories are shared like any bind mount */
      if (strcmp (type, "image") == 0)
        return cl_error_raise (err, CL_ERR_CONFLICT,
                               "volume `%s` is attached to `%s`: a volume with a size is attached "
                               "to one instance at a time",
                               volume, other);
    }
  return cl_mgr_store_run (m,
                           "INSERT INTO volume_attachments (volume, instance, path, readonly)"
                           " VALUES (?, ?, ?, ?)",
                           "sssi", err, volume, instance, path, (int64_t)readonly);
}

int
cl_mgr_volume_attach_specs (struct cl_manager *m, const char *instance, const char **specs,
                            size_t n, cl_error_t *err)
{
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *vol = NULL, *path = NULL;
      bool ro;
      if (cl_mgr_mount_spec_parse (specs[i], "--volume", &vol, &path, &ro, err) < 0
          || cl_mgr_volume_add_attachment (m, vol, instance, path, ro, err) < 0)
        return -1;
    }
  return 0;
}

int
cl_mgr_volume_mounts (struct cl_manager *m, const char *instance, json_t **out, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  json_t *arr;
  int r;

  if (cl_db_prepare (m->db,
                     "SELECT a.volume, v.type, a.path, a.readonly FROM volume_attachments a"
                     " JOIN volumes v ON v.name = a.volume WHERE a.instance = ? ORDER BY a.path",
                     &s, err)
      < 0)
    return -1;
  sqlite3_bind_text (s, 1, instance, -1, SQLITE_STATIC);
  arr = json_array ();
  while ((r = sqlite3_step (s)) == SQLITE_ROW)
    {
      const char *name = (const char *)sqlite3_column_text (s, 0);
      const char *type = (const char *)sqlite3_column_text (s, 1);
      cleanup_free char *dir = cl_mgr_volume_dir (m, name);
      json_array_append_new (arr, json_pack ("{s:s, s:s, s:s+, s:s, s:b}", "name", name, "type",
                                             type, "source", dir,
                                             strcmp (type, "image") == 0 ? "/disk.img" : "/data",
                                             "path", (const char *)sqlite3_column_text (s, 2),
                                             "readonly", sqlite3_column_int (s, 3)));
    }
  if (r != SQLITE_DONE)
    {
      json_decref (arr);
      return cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (m->db));
    }
  *out = arr;
  return 0;
}
