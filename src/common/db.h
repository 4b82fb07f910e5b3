/* SPDX-License-Identifier: Apache-2.0 */
/* The state database: one SQLite file per state root (ROOT/cloison.db),
   WAL journal, foreign keys on.  Each module creates its own tables with
   CREATE TABLE IF NOT EXISTS in its own file (images in src/image, networks
   in src/net, instances in src/manager). */
#ifndef CLOISON_DB_H
#define CLOISON_DB_H

#include "common/error.h"

#include <sqlite3.h>

/* Opens (creating ROOT and the file if needed). */
int cl_db_open (const char *root, sqlite3 **out, cl_error_t *err);
void cl_db_close (sqlite3 *db);
/* Runs SQL with no result rows; errors carry SQLite's message. */
int cl_db_exec (sqlite3 *db, const char *sql, cl_error_t *err);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
int cl_db_begin (sqlite3 *db, cl_error_t *err);
int cl_db_commit (sqlite3 *db, cl_error_t *err);
void cl_db_rollback (sqlite3 *db);
/* Prepares a statement; the error names the SQL's first words. */
int cl_db_prepare (sqlite3 *db, const char *sql, sqlite3_stmt **out, cl_error_t *err);
/* Steps a statement that returns no rows (INSERT, UPDATE, DELETE) to its
   end; errors carry SQLite's message. */
int cl_db_step_done (sqlite3 *db, sqlite3_stmt *st, cl_error_t *err);

void cl_cleanup_stmtp (sqlite3_stmt **s);
#define cleanup_stmt __attribute__ ((cleanup (cl_cleanup_stmtp)))

/* The state root: --root, else $CLOISON_ROOT, else /var/lib/cloison. */
const char *cl_state_root (const char *flag);

#endif
