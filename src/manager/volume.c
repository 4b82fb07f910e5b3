/* SPDX-License-Identifier: Apache-2.0 */
/* The public volume calls (volume.h).  Files: ROOT/volumes/NAME/data (a
   directory) or disk.img (an ext4 image made by mkfs.ext4), and
   snapshots/SNAP/ holding a copy of either, made with reflinks where the
   filesystem has them.  Each call holds the volume's lock (lock.c, on
   the name "volume:NAME") from its first change to its last. */
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/mgr_internal.h"
#include "manager/volume.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The smallest ext4 image mkfs.ext4 makes without complaint. */
#define VOLUME_MIN_SIZE (4ull << 20)

static int
volume_lock (struct cl_manager *m, const char *name, struct instance_lock *l, cl_error_t *err)
{
  cleanup_free char *key = NULL;

  if (cl_validate_name (name, "volume name", err) < 0)
    return -1;
  key = cl_strdup_printf ("volume:%s", name);
  return cl_mgr_instance_lock (m, key, l, err);
}

static const char *
data_name (const char *type)
{
  return strcmp (type, "image") == 0 ? "disk.img" : "data";
}

/* The volume's data (directory or image) copied to `to`. */
static int
data_copy (const char *type, const char *from, const char *to, cl_error_t *err)
{
  if (strcmp (type, "image") == 0)
    return cl_mgr_file_clone (from, to, 0, err);
  return cl_mgr_tree_copy (from, to, err);
}

static int
volume_make_files (struct cl_manager *m, const char *name, uint64_t size, cl_error_t *err)
{
  cleanup_free char *dir = cl_mgr_volume_dir (m, name);
  cleanup_free char *snaps = cl_strdup_printf ("%s/snapshots", dir);

  if (cl_mkdir_p (snaps, 0700, err) < 0)
    return -1;
  if (size == 0)
    {
      cleanup_free char *data = cl_strdup_printf ("%s/data", dir);
      if (mkdir (data, 0755) < 0)
        return cl_error_errno (err, "mkdir `%s`", data);
      return 0;
    }
  cleanup_free char *img = cl_strdup_printf ("%s/disk.img", dir);
  cleanup_free char *sz = cl_strdup_printf ("%llu", (unsigned long long)(size >> 10));
  char *argv[] = { "mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", img, sz, NULL };
  if (cl_mgr_spawn_wait (argv, true, err) < 0)
    return cl_error_wrap (err, "volume `%s`: make its filesystem", name);
  return 0;
}

static void
volume_remove_files (struct cl_manager *m, const char *name)
{
  cleanup_free char *dir = cl_mgr_volume_dir (m, name);
  cl_error_t ignored = NULL;

  if (cl_rm_rf (dir, &ignored) < 0)
    cl_error_release (&ignored);
}

/* Row first, so that a name taken is refused before any file is made. */
static int
volume_create_locked (struct cl_manager *m, const char *name, const char *type, uint64_t size,
                      cl_error_t *err)
{
  if (cl_mgr_volume_type (m, name, NULL, NULL, NULL) == 0)
    return cl_error_raise (err, CL_ERR_CONFLICT, "volume `%s` already exists", name);
  if (cl_mgr_store_run (m, "INSERT INTO volumes (name, type, size, created) VALUES (?, ?, ?, ?)",
                        "ssii", err, name, type, (int64_t)size, (int64_t)time (NULL))
      < 0)
    return -1;
  return 0;
}

static void
volume_undo (struct cl_manager *m, const char *name)
{
  cl_error_t ignored = NULL;

  volume_remove_files (m, name);
  if (cl_mgr_store_run (m, "DELETE FROM volumes WHERE name = ?", "s", &ignored, name) < 0)
    cl_error_release (&ignored);
}

int
cl_mgr_volume_create (struct cl_manager *m, const char *name, uint64_t size, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  const char *type = size ? "image" : "dir";

  if (size && size < VOLUME_MIN_SIZE)
    return cl_error_raise (err, CL_ERR_INVALID,
                           "volume `%s`: --size %llu is under the minimum (4M)", name,
                           (unsigned long long)size);
  if (volume_lock (m, name, &lock, err) < 0 || volume_create_locked (m, name, type, size, err) < 0)
    return -1;
  if (volume_make_files (m, name, size, err) < 0)
    {
      volume_undo (m, name);
      return -1;
    }
  return 0;
}

static json_t *
column_strings (struct cl_manager *m, const char *sql, const char *name)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  json_t *a = json_array ();
  cl_error_t ignored = NULL;

  if (cl_db_prepare (m->db, sql, &s, &ignored) < 0)
    {
      cl_error_release (&ignored);
      return a;
    }
  sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  while (sqlite3_step (s) == SQLITE_ROW)
    json_array_append_new (a, json_string ((const char *)sqlite3_column_text (s, 0)));
  return a;
}

static json_t *
volume_attachments (struct cl_manager *m, const char *name)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  json_t *a = json_array ();
  cl_error_t ignored = NULL;

  if (cl_db_prepare (m->db,
                     "SELECT instance, path, readonly FROM volume_attachments WHERE volume = ?"
                     " ORDER BY instance",
                     &s, &ignored)
      < 0)
    {
      cl_error_release (&ignored);
      return a;
    }
  sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  while (sqlite3_step (s) == SQLITE_ROW)
    json_array_append_new (a, json_pack ("{s:s, s:s, s:b}", "instance",
                                         (const char *)sqlite3_column_text (s, 0), "path",
                                         (const char *)sqlite3_column_text (s, 1), "readonly",
                                         sqlite3_column_int (s, 2)));
  return a;
}

static json_t *
volume_json (struct cl_manager *m, sqlite3_stmt *s)
{
  const char *name = (const char *)sqlite3_column_text (s, 0);
  const char *type = (const char *)sqlite3_column_text (s, 1);
  cleanup_free char *dir = cl_mgr_volume_dir (m, name);

  return json_pack ("{s:s, s:s, s:I, s:I, s:s+, s:o, s:o}", "name", name, "type", type, "size",
                    (json_int_t)sqlite3_column_int64 (s, 2), "created",
                    (json_int_t)sqlite3_column_int64 (s, 3), "path", dir,
                    strcmp (type, "image") == 0 ? "/disk.img" : "/data", "attachments",
                    volume_attachments (m, name), "snapshots",
                    column_strings (m,
                                    "SELECT name FROM volume_snapshots WHERE volume = ?"
                                    " ORDER BY created, name",
                                    name));
}

static int
volume_query (struct cl_manager *m, const char *name, json_t **out, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  json_t *arr = json_array ();
  int r;

  if (cl_db_prepare (m->db,
                     name ? "SELECT name, type, size, created FROM volumes WHERE name = ?"
                          : "SELECT name, type, size, created FROM volumes ORDER BY name",
                     &s, err)
      < 0)
    {
      json_decref (arr);
      return -1;
    }
  if (name)
    sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  while ((r = sqlite3_step (s)) == SQLITE_ROW)
    json_array_append_new (arr, volume_json (m, s));
  if (r != SQLITE_DONE)
    {
      json_decref (arr);
      return cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (m->db));
    }
  *out = arr;
  return 0;
}

int
cl_mgr_volume_list (struct cl_manager *m, json_t **out, cl_error_t *err)
{
  return volume_query (m, NULL, out, err);
}

int
cl_mgr_volume_info (struct cl_manager *m, const char *name, json_t **out, cl_error_t *err)
{
  json_t *arr;

  if (volume_query (m, name, &arr, err) < 0)
    return -1;
  if (json_array_size (arr) == 0)
    {
      json_decref (arr);
      return cl_error_raise (err, CL_ERR_NOT_FOUND, "volume `%s` not found", name);
    }
  *out = json_incref (json_array_get (arr, 0));
  json_decref (arr);
  return 0;
}

/* The first instance the volume is attached to (running only: those
   whose row says running), or NULL. */
static char *
volume_user (struct cl_manager *m, const char *name, bool running)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  cl_error_t ignored = NULL;

  if (cl_db_prepare (m->db,
                     running ? "SELECT a.instance FROM volume_attachments a JOIN instances i"
                               " ON i.name = a.instance WHERE a.volume = ? AND i.status = 'running'"
                               " ORDER BY a.instance"
                             : "SELECT instance FROM volume_attachments WHERE volume = ?"
                               " ORDER BY instance",
                     &s, &ignored)
      < 0)
    {
      cl_error_release (&ignored);
      return NULL;
    }
  sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_ROW)
    return NULL;
  return cl_xstrdup ((const char *)sqlite3_column_text (s, 0));
}

int
cl_mgr_volume_delete (struct cl_manager *m, const char *name, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_free char *user = NULL;

  if (volume_lock (m, name, &lock, err) < 0 || cl_mgr_volume_type (m, name, NULL, NULL, err) < 0)
    return -1;
  user = volume_user (m, name, false);
  if (user)
    return cl_error_raise (err, CL_ERR_CONFLICT, "volume `%s` is attached to `%s`: detach it first",
                           name, user);
  /* the row first: a crash leaves files without a row, never a row
     without its files */
  if (cl_mgr_store_run (m, "DELETE FROM volumes WHERE name = ?", "s", err, name) < 0)
    return -1;
  volume_remove_files (m, name);
  return 0;
}

static int
instance_running (struct cl_manager *m, const char *instance, bool *running, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;

  if (cl_mgr_store_get (m, instance, &inst, err) < 0)
    return -1;
  *running = cl_mgr_instance_is_running (inst);
  return 0;
}

int
cl_mgr_volume_attach (struct cl_manager *m, const char *name, const char *instance,
                      const char *path, bool readonly, bool *pending, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance_lock struct instance_lock ilock = { .fd = -1 };
  cleanup_free char *spec = NULL, *vol = NULL, *p = NULL;
  bool ro;

  spec = cl_strdup_printf ("%s:%s", name, path);
  if (cl_mgr_mount_spec_parse (spec, "volume attach", &vol, &p, &ro, err) < 0
      || volume_lock (m, name, &lock, err) < 0
      || cl_mgr_instance_lock (m, instance, &ilock, err) < 0
      || instance_running (m, instance, pending, err) < 0)
    return -1;
  return cl_mgr_volume_add_attachment (m, name, instance, p, readonly, err);
}

int
cl_mgr_volume_detach (struct cl_manager *m, const char *name, const char *instance, bool *pending,
                      cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance_lock struct instance_lock ilock = { .fd = -1 };

  if (volume_lock (m, name, &lock, err) < 0 || cl_mgr_volume_type (m, name, NULL, NULL, err) < 0
      || cl_mgr_instance_lock (m, instance, &ilock, err) < 0
      || instance_running (m, instance, pending, err) < 0)
    return -1;
  if (cl_mgr_store_run (m, "DELETE FROM volume_attachments WHERE volume = ? AND instance = ?", "ss",
                        err, name, instance)
      < 0)
    return -1;
  if (sqlite3_changes (m->db) == 0)
    return cl_error_raise (err, CL_ERR_NOT_FOUND, "volume `%s` is not attached to `%s`", name,
                           instance);
  return 0;
}

static int
snapshot_exists (struct cl_manager *m, const char *name, const char *snap)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  cl_error_t ignored = NULL;

  if (cl_db_prepare (m->db, "SELECT 1 FROM volume_snapshots WHERE volume = ? AND name = ?", &s,
                     &ignored)
      < 0)
    {
      cl_error_release (&ignored);
      return -1;
    }
  sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, snap, -1, SQLITE_STATIC);
  return sqlite3_step (s) == SQLITE_ROW;
}

int
cl_mgr_volume_snapshot_create (struct cl_manager *m, const char *name, const char *snap,
                               cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_free char *type = NULL, *dir = NULL, *sdir = NULL, *from = NULL, *to = NULL;

  if (cl_validate_name (snap, "snapshot name", err) < 0 || volume_lock (m, name, &lock, err) < 0
      || cl_mgr_volume_type (m, name, &type, NULL, err) < 0)
    return -1;
  if (snapshot_exists (m, name, snap) == 1)
    return cl_error_raise (err, CL_ERR_CONFLICT, "volume `%s` already has a snapshot `%s`", name,
                           snap);
  dir = cl_mgr_volume_dir (m, name);
  sdir = cl_strdup_printf ("%s/snapshots/%s", dir, snap);
  from = cl_strdup_printf ("%s/%s", dir, data_name (type));
  to = cl_strdup_printf ("%s/%s", sdir, data_name (type));
  {
    cl_error_t ignored = NULL;
    if (cl_rm_rf (sdir, &ignored) < 0) /* a crash's leftover */
      cl_error_release (&ignored);
  }
  if (cl_mkdir_p (sdir, 0700, err) < 0 || data_copy (type, from, to, err) < 0
      || cl_mgr_store_run (m,
                           "INSERT INTO volume_snapshots (volume, name, created) VALUES (?, ?, ?)",
                           "ssi", err, name, snap, (int64_t)time (NULL))
             < 0)
    {
      cl_error_t ignored = NULL;
      if (cl_rm_rf (sdir, &ignored) < 0)
        cl_error_release (&ignored);
      return -1;
    }
  return 0;
}

static int
snapshot_must_exist (struct cl_manager *m, const char *name, const char *snap, cl_error_t *err)
{
  if (cl_validate_name (snap, "snapshot name", err) < 0)
    return -1;
  if (snapshot_exists (m, name, snap) != 1)
    return cl_error_raise (err, CL_ERR_NOT_FOUND, "volume `%s`: snapshot `%s` not found", name,
                           snap);
  return 0;
}

int
cl_mgr_volume_snapshot_restore (struct cl_manager *m, const char *name, const char *snap,
                                cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_free char *type = NULL, *dir = NULL, *from = NULL, *staged = NULL, *cur = NULL;
  cleanup_free char *old = NULL, *user = NULL;
  cl_error_t ignored = NULL;

  if (volume_lock (m, name, &lock, err) < 0 || cl_mgr_volume_type (m, name, &type, NULL, err) < 0
      || snapshot_must_exist (m, name, snap, err) < 0)
    return -1;
  user = volume_user (m, name, true);
  if (user)
    return cl_error_raise (err, CL_ERR_CONFLICT,
                           "volume `%s` is in use by `%s`, which runs: stop it first", name, user);
  dir = cl_mgr_volume_dir (m, name);
  from = cl_strdup_printf ("%s/snapshots/%s/%s", dir, snap, data_name (type));
  cur = cl_strdup_printf ("%s/%s", dir, data_name (type));
  staged = cl_strdup_printf ("%s.restore", cur);
  old = cl_strdup_printf ("%s.old", cur);
  if (cl_rm_rf (staged, &ignored) < 0 || cl_rm_rf (old, &ignored) < 0)
    cl_error_release (&ignored);
  /* the copy is whole before anything is swapped: renames only after */
  if (data_copy (type, from, staged, err) < 0)
    return -1;
  if (rename (cur, old) < 0)
    return cl_error_errno (err, "volume `%s`: set aside its data", name);
  if (rename (staged, cur) < 0)
    {
      cl_error_errno (err, "volume `%s`: swap in snapshot `%s`", name, snap);
      if (rename (old, cur) < 0)
        cl_error_wrap (err, "and put back its data (it is in `%s`)", old);
      return -1;
    }
  if (cl_rm_rf (old, &ignored) < 0)
    cl_error_release (&ignored);
  return 0;
}

int
cl_mgr_volume_snapshot_delete (struct cl_manager *m, const char *name, const char *snap,
                               cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_free char *dir = NULL, *sdir = NULL;

  if (volume_lock (m, name, &lock, err) < 0 || cl_mgr_volume_type (m, name, NULL, NULL, err) < 0
      || snapshot_must_exist (m, name, snap, err) < 0)
    return -1;
  if (cl_mgr_store_run (m, "DELETE FROM volume_snapshots WHERE volume = ? AND name = ?", "ss", err,
                        name, snap)
      < 0)
    return -1;
  dir = cl_mgr_volume_dir (m, name);
  sdir = cl_strdup_printf ("%s/snapshots/%s", dir, snap);
  return cl_rm_rf (sdir, err);
}

int
cl_mgr_volume_copy (struct cl_manager *m, const char *src, const char *dst, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance_lock struct instance_lock dlock = { .fd = -1 };
  cleanup_free char *type = NULL, *sdir = NULL, *ddir = NULL, *from = NULL, *to = NULL;
  uint64_t size;

  if (volume_lock (m, src, &lock, err) < 0 || cl_mgr_volume_type (m, src, &type, &size, err) < 0
      || volume_lock (m, dst, &dlock, err) < 0
      || volume_create_locked (m, dst, type, size, err) < 0)
    return -1;
  sdir = cl_mgr_volume_dir (m, src);
  ddir = cl_mgr_volume_dir (m, dst);
  from = cl_strdup_printf ("%s/%s", sdir, data_name (type));
  to = cl_strdup_printf ("%s/%s", ddir, data_name (type));
  if (cl_mkdir_p (ddir, 0700, err) < 0 || data_copy (type, from, to, err) < 0)
    {
      volume_undo (m, dst);
      return -1;
    }
  {
    cleanup_free char *snaps = cl_strdup_printf ("%s/snapshots", ddir);
    if (cl_mkdir_p (snaps, 0700, err) < 0)
      {
        volume_undo (m, dst);
        return -1;
      }
  }
  return 0;
}
