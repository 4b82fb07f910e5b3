/* SPDX-License-Identifier: Apache-2.0 */
/* The manager's tables in the state database: instances, their snapshots,
   and the intents of multi-step operations (see manager.h). */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "manager/mgr_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdio.h>
#include <unistd.h>

static const char schema[]
    = "CREATE TABLE IF NOT EXISTS instances ("
      " name TEXT PRIMARY KEY,"
      " kind TEXT NOT NULL CHECK (kind IN ('container', 'vm')),"
      " image TEXT NOT NULL,"
      " status TEXT NOT NULL,"
      " config TEXT NOT NULL,"
      " created INTEGER NOT NULL,"
      " monitor_pid INTEGER, monitor_start INTEGER,"
      " init_pid INTEGER, init_start INTEGER,"
      " exit_code INTEGER);"
      "CREATE TABLE IF NOT EXISTS instance_snapshots ("
      " instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,"
      " name TEXT NOT NULL,"
      " created INTEGER NOT NULL,"
      " stateful INTEGER NOT NULL DEFAULT 0,"
      " ready INTEGER NOT NULL DEFAULT 0,"
      " PRIMARY KEY (instance, name));"
      "CREATE TABLE IF NOT EXISTS instance_intents ("
      " id INTEGER PRIMARY KEY,"
      " op TEXT NOT NULL,"
      " instance TEXT NOT NULL,"
      " arg TEXT,"
      " owner_pid INTEGER NOT NULL,"
      " owner_start INTEGER NOT NULL,"
      " created INTEGER NOT NULL);"
      /* guest CIDs of VM instances (vm_agent.c) */
      "CREATE TABLE IF NOT EXISTS instance_vsock ("
      " instance TEXT PRIMARY KEY REFERENCES instances(name) ON DELETE CASCADE,"
      " cid INTEGER NOT NULL UNIQUE);"
      /* storage volumes (volume.c): an attachment goes with its instance,
         a volume stays until deleted, and not while attached */
      "CREATE TABLE IF NOT EXISTS volumes ("
      " name TEXT PRIMARY KEY,"
      " type TEXT NOT NULL CHECK (type IN ('dir', 'image')),"
      " size INTEGER NOT NULL,"
      " created INTEGER NOT NULL);"
      "CREATE TABLE IF NOT EXISTS volume_attachments ("
      " volume TEXT NOT NULL REFERENCES volumes(name),"
      " instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,"
      " path TEXT NOT NULL,"
      " readonly INTEGER NOT NULL DEFAULT 0,"
      " PRIMARY KEY (volume, instance));"
      "CREATE TABLE IF NOT EXISTS volume_snapshots ("
      " volume TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,"
      " name TEXT NOT NULL,"
      " created INTEGER NOT NULL,"
      " PRIMARY KEY (volume, name));"
      /* a list looks up the few instances recorded running first
         (cl_mgr_store_each), without a scan of all */
      "CREATE INDEX IF NOT EXISTS instances_by_status ON instances (status);";

int
cl_mgr_store_init (struct cl_manager *m, cl_error_t *err)
{
  return cl_db_exec (m->db, schema, err);
}

void
cl_mgr_instance_free (struct instance *inst)
{
  if (inst == NULL)
    return;
  free (inst->name);
  free (inst->image);
  free (inst->status);
  json_decref (inst->config);
  free (inst);
}

const char *
cl_mgr_instance_image_id (struct instance *inst)
{
  const char *id = json_string_value (json_object_get (inst->config, "image_id"));
  return id ? id : inst->image;
}

bool
cl_mgr_instance_is_running (const struct instance *inst)
{
  return strcmp (inst->status, "running") == 0 || cl_mgr_instance_is_frozen (inst);
}

bool
cl_mgr_instance_is_frozen (const struct instance *inst)
{
  return strcmp (inst->status, "frozen") == 0;
}

void
cl_mgr_instance_freep (struct instance **p)
{
  cl_mgr_instance_free (*p);
}

static char *
column_strdup (sqlite3_stmt *s, int col)
{
  const unsigned char *t = sqlite3_column_text (s, col);
  return cl_xstrdup (t ? (const char *)t : "");
}

#define INSTANCE_COLUMNS                                                                           \
  "name, kind, image, status, config, created, monitor_pid, monitor_start, init_pid,"              \
  " init_start, exit_code"

/* The same columns with NULL for the config, which a list does not
   show: SQLite then does not read it. */
#define INSTANCE_COLUMNS_LISTED                                                                    \
  "name, kind, image, status, NULL, created, monitor_pid, monitor_start, init_pid,"                \
  " init_start, exit_code"

static const char *
column_text (sqlite3_stmt *s, int col)
{
  const unsigned char *t = sqlite3_column_text (s, col);
  return t ? (const char *)t : "";
}

/* The fields of a row of INSTANCE_COLUMNS but its strings and config. */
static void
row_numbers (sqlite3_stmt *s, struct instance *inst)
{
  inst->kind = strcmp (column_text (s, 1), "vm") == 0 ? KIND_VM : KIND_CONTAINER;
  inst->created = sqlite3_column_int64 (s, 5);
  inst->monitor_pid = sqlite3_column_int (s, 6);
  inst->monitor_start = sqlite3_column_int64 (s, 7);
  inst->init_pid = sqlite3_column_int (s, 8);
  inst->init_start = sqlite3_column_int64 (s, 9);
  inst->has_exit_code = sqlite3_column_type (s, 10) != SQLITE_NULL;
  inst->exit_code = sqlite3_column_int (s, 10);
}

/* The instance of a row of INSTANCE_COLUMNS; its config parsed when
   with_config, else NULL (a list does not show it). */
static struct instance *
row_instance (sqlite3_stmt *s, bool with_config)
{
  struct instance *inst = cl_xmalloc0 (sizeof *inst);
  json_error_t jerr;

  inst->name = column_strdup (s, 0);
  inst->image = column_strdup (s, 2);
  inst->status = column_strdup (s, 3);
  row_numbers (s, inst);
  if (with_config)
    {
      inst->config = json_loads ((const char *)sqlite3_column_text (s, 4), 0, &jerr);
      if (inst->config == NULL)
        inst->config = json_object ();
    }
  return inst;
}

int
cl_mgr_store_get (struct cl_manager *m, const char *name, struct instance **out, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  int r;

  if (cl_db_prepare (m->db, "SELECT " INSTANCE_COLUMNS " FROM instances WHERE name = ?", &s, err)
      < 0)
    return -1;
  sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  r = sqlite3_step (s);
  if (r == SQLITE_DONE)
    return cl_error_raise (err, CL_ERR_NOT_FOUND, "instance `%s` not found", name);
  if (r != SQLITE_ROW)
    return cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (m->db));
  *out = row_instance (s, true);
  return 0;
}

static int
intent_insert (struct cl_manager *m, const char *op, const char *instance, const char *arg,
               int64_t *id, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;

  if (cl_db_prepare (m->db,
                     "INSERT INTO instance_intents (op, instance, arg, owner_pid, owner_start,"
                     " created) VALUES (?, ?, ?, ?, ?, ?)",
                     &s, err)
      < 0)
    return -1;
  sqlite3_bind_text (s, 1, op, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, instance, -1, SQLITE_STATIC);
  if (arg)
    sqlite3_bind_text (s, 3, arg, -1, SQLITE_STATIC);
  sqlite3_bind_int (s, 4, getpid ());
  sqlite3_bind_int64 (s, 5, (sqlite3_int64)cl_proc_start_time (getpid ()));
  sqlite3_bind_int64 (s, 6, time (NULL));
  if (cl_db_step_done (m->db, s, err) < 0)
    return -1;
  *id = sqlite3_last_insert_rowid (m->db);
  return 0;
}

int
cl_mgr_store_create (struct cl_manager *m, const struct instance *inst, const char *op,
                     int64_t *intent, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  cleanup_free char *config = json_dumps (inst->config, JSON_COMPACT);

  if (cl_db_begin (m->db, err) < 0)
    return -1;
  if (cl_db_prepare (m->db,
                     "INSERT INTO instances (name, kind, image, status, config, created)"
                     " VALUES (?, ?, ?, 'creating', ?, ?)",
                     &s, err)
      < 0)
    goto fail;
  sqlite3_bind_text (s, 1, inst->name, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, inst->kind == KIND_VM ? "vm" : "container", -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, inst->image, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 4, config, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 5, inst->created);
  if (sqlite3_step (s) != SQLITE_DONE)
    {
      if (sqlite3_extended_errcode (m->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
        cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` already exists", inst->name);
      else
        cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (m->db));
      goto fail;
    }
  if (intent_insert (m, op, inst->name, NULL, intent, err) < 0)
    goto fail;
  return cl_db_commit (m->db, err);
fail:
  cl_db_rollback (m->db);
  return -1;
}

/* UPDATE/DELETE with text and integer parameters given as a format:
   's' text, 'i' int64, 'n' NULL. */
int
cl_mgr_store_run (struct cl_manager *m, const char *sql, const char *types, cl_error_t *err, ...)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  va_list ap;

  if (cl_db_prepare (m->db, sql, &s, err) < 0)
    return -1;
  va_start (ap, err);
  for (int i = 0; types[i]; i++)
    switch (types[i])
      {
      case 's':
        sqlite3_bind_text (s, i + 1, va_arg (ap, const char *), -1, SQLITE_TRANSIENT);
        break;
      case 'i':
        sqlite3_bind_int64 (s, i + 1, va_arg (ap, int64_t));
        break;
      default:
        sqlite3_bind_null (s, i + 1);
      }
  va_end (ap);
  return cl_db_step_done (m->db, s, err);
}

int
cl_mgr_store_set_status (struct cl_manager *m, const char *name, const char *status,
                         cl_error_t *err)
{
  return cl_mgr_store_run (m, "UPDATE instances SET status = ? WHERE name = ?", "ss", err, status,
                           name);
}

int
cl_mgr_store_set_running (struct cl_manager *m, const char *name, pid_t monitor, uint64_t mstart,
                          pid_t init, uint64_t istart, cl_error_t *err)
{
  if (cl_mgr_store_run (
          m,
          "UPDATE instances SET status = 'running', monitor_pid = ?, monitor_start = ?,"
          " init_pid = ?, init_start = ?, exit_code = NULL WHERE name = ?",
          "iiiis", err, (int64_t)monitor, (int64_t)mstart, (int64_t)init, (int64_t)istart, name)
      < 0)
    return -1;
  /* deleted meanwhile (its launch was abandoned and reconciled) */
  if (sqlite3_changes (m->db) == 0)
    return cl_error_make (err, 0, "instance `%s` was deleted while starting", name);
  return 0;
}

int
cl_mgr_store_set_stopped (struct cl_manager *m, const char *name, bool has_code, int code,
                          cl_error_t *err)
{
  if (has_code)
    return cl_mgr_store_run (m,
                             "UPDATE instances SET status = 'stopped', monitor_pid = NULL,"
                             " init_pid = NULL, exit_code = ? WHERE name = ?",
                             "is", err, (int64_t)code, name);
  return cl_mgr_store_run (m,
                           "UPDATE instances SET status = 'stopped', monitor_pid = NULL,"
                           " init_pid = NULL, exit_code = NULL WHERE name = ?",
                           "s", err, name);
}

int
cl_mgr_store_set_config (struct cl_manager *m, const char *name, json_t *config, cl_error_t *err)
{
  cleanup_free char *text = json_dumps (config, JSON_COMPACT);
  return cl_mgr_store_run (m, "UPDATE instances SET config = ? WHERE name = ?", "ss", err, text,
                           name);
}

int
cl_mgr_store_delete (struct cl_manager *m, const char *name, int64_t intent, cl_error_t *err)
{
  if (cl_db_begin (m->db, err) < 0)
    return -1;
  if (cl_mgr_store_run (m, "DELETE FROM instances WHERE name = ?", "s", err, name) < 0
      || (intent > 0
          && cl_mgr_store_run (m, "DELETE FROM instance_intents WHERE id = ?", "i", err, intent)
                 < 0))
    {
      cl_db_rollback (m->db);
      return -1;
    }
  return cl_db_commit (m->db, err);
}

int
cl_mgr_store_each (struct cl_manager *m, bool running_only, cl_mgr_store_fn fn, void *opaque,
                   cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *own = NULL;
  sqlite3_stmt **cached = &m->each_stmt[running_only], *s;
  const char *sql = running_only ? "SELECT " INSTANCE_COLUMNS_LISTED
                                   " FROM instances WHERE status IN ('running', 'frozen')"
                                 : "SELECT " INSTANCE_COLUMNS_LISTED
                                   " FROM instances ORDER BY name";
  int r;

  /* one statement: one read of the table, whatever runs meanwhile;
     prepared once per handle (a list within fn gets one of its own) */
  if (*cached == NULL
      && sqlite3_prepare_v3 (m->db, sql, -1, SQLITE_PREPARE_PERSISTENT, cached, NULL) != SQLITE_OK)
    return cl_error_make (err, 0, "state database: list instances: %s", sqlite3_errmsg (m->db));
  s = *cached;
  if (sqlite3_stmt_busy (s))
    {
      if (cl_db_prepare (m->db, sql, &own, err) < 0)
        return -1;
      s = own;
    }
  while ((r = sqlite3_step (s)) == SQLITE_ROW)
    {
      /* borrowed from the statement: no copy of a row */
      struct instance inst = { 0 };
      inst.name = (char *)column_text (s, 0);
      inst.image = (char *)column_text (s, 2);
      inst.status = (char *)column_text (s, 3);
      row_numbers (s, &inst);
      fn (opaque, &inst);
    }
  sqlite3_reset (s);
  if (r != SQLITE_DONE)
    return cl_error_make (err, 0, "state database: list instances: %s", sqlite3_errmsg (m->db));
  return 0;
}

int
cl_mgr_intent_begin (struct cl_manager *m, const char *op, const char *instance, const char *arg,
                     int64_t *id, cl_error_t *err)
{
  return intent_insert (m, op, instance, arg, id, err);
}

int
cl_mgr_intent_set_arg (struct cl_manager *m, int64_t id, const char *arg, cl_error_t *err)
{
  return cl_mgr_store_run (m, "UPDATE instance_intents SET arg = ? WHERE id = ?", "si", err, arg,
                           id);
}

int
cl_mgr_intent_end (struct cl_manager *m, int64_t id, cl_error_t *err)
{
  if (cl_mgr_store_run (m, "DELETE FROM instance_intents WHERE id = ?", "i", err, id) < 0)
    return cl_error_wrap (err, "record the end of an operation");
  return 0;
}

void
cl_mgr_intent_abandon (struct cl_manager *m, int64_t id)
{
  cl_error_t ignored = NULL;
  if (cl_mgr_intent_end (m, id, &ignored) < 0)
    cl_error_release (&ignored); /* left for the recovery, which undoes the same */
}

int
cl_mgr_intent_exists (struct cl_manager *m, int64_t id, pid_t *owner, uint64_t *owner_start,
                      cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  int r;

  if (cl_db_prepare (m->db, "SELECT owner_pid, owner_start FROM instance_intents WHERE id = ?", &s,
                     err)
      < 0)
    return -1;
  sqlite3_bind_int64 (s, 1, id);
  r = sqlite3_step (s);
  if (r == SQLITE_DONE)
    return 0;
  if (r != SQLITE_ROW)
    return cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (m->db));
  *owner = sqlite3_column_int (s, 0);
  *owner_start = (uint64_t)sqlite3_column_int64 (s, 1);
  return 1;
}

int
cl_mgr_store_snapshot_add (struct cl_manager *m, const char *instance, const char *snap,
                           bool stateful, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;

  if (cl_db_prepare (m->db,
                     "INSERT INTO instance_snapshots (instance, name, created, stateful)"
                     " VALUES (?, ?, ?, ?)",
                     &s, err)
      < 0)
    return -1;
  sqlite3_bind_text (s, 1, instance, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, snap, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 3, time (NULL));
  sqlite3_bind_int (s, 4, stateful);
  if (sqlite3_step (s) != SQLITE_DONE)
    {
      if (sqlite3_extended_errcode (m->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
        return cl_error_raise (err, CL_ERR_CONFLICT,
                               "snapshot `%s` of instance `%s` already exists", snap, instance);
      return cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (m->db));
    }
  return 0;
}

int
cl_mgr_store_snapshot_ready (struct cl_manager *m, const char *instance, const char *snap,
                             cl_error_t *err)
{
  return cl_mgr_store_run (
      m, "UPDATE instance_snapshots SET ready = 1 WHERE instance = ? AND name = ?", "ss", err,
      instance, snap);
}

int
cl_mgr_store_snapshot_get (struct cl_manager *m, const char *instance, const char *snap,
                           bool *stateful, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  int r;

  if (cl_db_prepare (m->db,
                     "SELECT stateful FROM instance_snapshots WHERE instance = ? AND name = ?"
                     " AND ready = 1",
                     &s, err)
      < 0)
    return -1;
  sqlite3_bind_text (s, 1, instance, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, snap, -1, SQLITE_STATIC);
  r = sqlite3_step (s);
  if (r == SQLITE_DONE)
    return 0;
  if (r != SQLITE_ROW)
    return cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (m->db));
  if (stateful)
    *stateful = sqlite3_column_int (s, 0) != 0;
  return 1;
}

int
cl_mgr_store_snapshot_del (struct cl_manager *m, const char *instance, const char *snap,
                           cl_error_t *err)
{
  return cl_mgr_store_run (m, "DELETE FROM instance_snapshots WHERE instance = ? AND name = ?",
                           "ss", err, instance, snap);
}

/* --- opening a state root --- */

/* FNV-1a of the root's path: a short stable tag for global names. */
static void
root_tag (const char *root, char tag[9])
{
  uint32_t h = 2166136261u;
  for (const char *p = root; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  snprintf (tag, 9, "%08x", h);
}

/* Every cloison command is a short process: left to its defaults,
   SQLite checkpoints the WAL and deletes it when the last connection
   closes, then recreates it (fsyncs of the file and of the directory) in
   the next command.  Keep the WAL between processes and let the
   automatic checkpoint (every 1000 pages) bound it. */
void
cl_mgr_db_tune (sqlite3 *db)
{
  int one = 1;
  sqlite3_db_config (db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  sqlite3_file_control (db, "main", SQLITE_FCNTL_PERSIST_WAL, &one);
}

int
cl_mgr_open_raw (const char *root, struct cl_manager **out, cl_error_t *err)
{
  static uint32_t serials;
  struct cl_manager *m = cl_xmalloc0 (sizeof *m);

  m->serial = __atomic_add_fetch (&serials, 1, __ATOMIC_RELAXED);
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
  m->root = abs ? abs : cl_xstrdup (root);
  for (size_t i = 0; i < MANAGER_MAX_LOCKS; i++)
    m->locks[i] = -1;
  root_tag (m->root, m->tag);
  if (cl_db_open (m->root, &m->db, err) < 0)
    {
      cl_mgr_close (m);
      return -1;
    }
  cl_mgr_db_tune (m->db);
  if (cl_mgr_store_init (m, err) < 0)
    {
      cl_mgr_close (m);
      return -1;
    }
  *out = m;
  return 0;
}

void
cl_mgr_close (struct cl_manager *m)
{
  if (m == NULL)
    return;
  cl_mgr_locks_close (m);
  for (size_t i = 0; i < sizeof m->each_stmt / sizeof m->each_stmt[0]; i++)
    sqlite3_finalize (m->each_stmt[i]);
  if (m->db)
    cl_db_close (m->db);
  free (m->root);
  free (m);
}

char *
cl_mgr_instance_dir (struct cl_manager *m, const char *name)
{
  return cl_strdup_printf ("%s/instances/%s", m->root, name);
}

char *
cl_mgr_engine_root (struct cl_manager *m)
{
  return cl_strdup_printf ("%s/containers", m->root);
}

char *
cl_mgr_instance_global_id (struct cl_manager *m, const char *name)
{
  return cl_strdup_printf ("cl-%s-%s", m->tag, name);
}
