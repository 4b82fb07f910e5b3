/* SPDX-License-Identifier: Apache-2.0 */
#include "common/db.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
cl_db_open (const char *root, sqlite3 **out, cl_error_t *err)
{
  char *path;
  sqlite3 *db = NULL;
  int r;

  if (cl_mkdir_p (root, 0700, err) < 0)
    return cl_error_wrap (err, "state root");
  path = cl_strdup_printf ("%s/cloison.db", root);
  r = sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                       NULL);
  if (r != SQLITE_OK)
    {
      cl_error_make (err, 0, "open `%s`: %s", path, db ? sqlite3_errmsg (db) : sqlite3_errstr (r));
      sqlite3_close (db);
      free (path);
      return -1;
    }
  free (path);
  sqlite3_busy_timeout (db, 30000);
  if (cl_db_exec (db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;",
                  err)
      < 0)
    {
      sqlite3_close (db);
      return -1;
    }
  *out = db;
  return 0;
}

void
cl_db_close (sqlite3 *db)
{
  sqlite3_close (db);
}

/* SQLite returns SQLITE_BUSY at once, without its busy handler, where
   waiting could deadlock: two connections opening a new database in
   rollback mode at once (the first switches it to WAL), or a lock
   upgrade.  Every statement given here stands alone (BEGIN IMMEDIATE,
   COMMIT, the schema's CREATE ... IF NOT EXISTS, pragmas), so it is
   simply run again, for as long as the busy timeout. */
#define DB_BUSY_RETRY_MS 30000

int
cl_db_exec (sqlite3 *db, const char *sql, cl_error_t *err)
{
  char *msg = NULL;
  int rc, waited = 0;

  while ((rc = sqlite3_exec (db, sql, NULL, NULL, &msg)) == SQLITE_BUSY
         && waited < DB_BUSY_RETRY_MS)
    {
      sqlite3_free (msg);
      msg = NULL;
      usleep (2000);
      waited += 2;
    }
  if (rc != SQLITE_OK)
    {
      cl_error_make (err, 0, "state database: %s", msg ? msg : sqlite3_errmsg (db));
      sqlite3_free (msg);
      return -1;
    }
  return 0;
}

int
cl_db_begin (sqlite3 *db, cl_error_t *err)
{
  return cl_db_exec (db, "BEGIN IMMEDIATE", err);
}

int
cl_db_commit (sqlite3 *db, cl_error_t *err)
{
  return cl_db_exec (db, "COMMIT", err);
}

void
cl_db_rollback (sqlite3 *db)
{
  sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
}

int
cl_db_prepare (sqlite3 *db, const char *sql, sqlite3_stmt **out, cl_error_t *err)
{
  if (sqlite3_prepare_v2 (db, sql, -1, out, NULL) != SQLITE_OK)
    return cl_error_make (err, 0, "state database: `%.40s`: %s", sql, sqlite3_errmsg (db));
  return 0;
}

int
cl_db_step_done (sqlite3 *db, sqlite3_stmt *st, cl_error_t *err)
{
  int rc, waited = 0;

  /* outside a transaction a statement stands alone: an immediate
     SQLITE_BUSY (see cl_db_exec) is met by running it again */
  while ((rc = sqlite3_step (st)) == SQLITE_BUSY && sqlite3_get_autocommit (db)
         && waited < DB_BUSY_RETRY_MS)
    {
      sqlite3_reset (st);
      usleep (2000);
      waited += 2;
    }
  if (rc != SQLITE_DONE)
    return cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (db));
  return 0;
}

void
cl_cleanup_stmtp (sqlite3_stmt **s)
{
  sqlite3_finalize (*s);
}

const char *
cl_state_root (const char *flag)
{
  const char *env = getenv ("CLOISON_ROOT");
  if (flag && *flag)
    return flag;
  if (env && *env)
    return env;
  return "/var/lib/cloison";
}
