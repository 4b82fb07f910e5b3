/* SPDX-License-Identifier: Apache-2.0 */
/* The built-in images (busybox): where their data lives, importing one
   into a new store, and again when a user who removed it names it.  The
   store's public opens are here, so that the store (img_store.c) imports
   nothing itself: it calls back through s->import_builtin. */
#include "image/img_internal.h"
#include "common/cleanup.h"
#include "common/db.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool
is_builtin (const char *name)
{
  return strcmp (name, "busybox") == 0;
}

static int
import_builtin (struct cl_image_store *s, const char *name, cl_error_t *err)
{
  if (!is_builtin (name))
    return cl_error_make (err, 0, "no built-in image `%s`", name);
  cleanup_free char *file = cl_strdup_printf ("%s-rootfs.tar", name);
  cleanup_free char *path = cl_img_data_path (file);
  cleanup_free char *ref = cl_strdup_printf ("%s:latest", name);
  if (access (path, R_OK) < 0)
    return cl_error_errno (err, "built-in image `%s`: `%s` (build it with ninja)", name, path);
  return cl_img_import_rootfs_tar (s, path, ref, "builtin", NULL, NULL, err);
}

/* The store's hook: NAME:latest was looked up and is missing. */
static int
reimport_builtin (struct cl_image_store *s, const char *name, cl_error_t *err)
{
  if (!is_builtin (name))
    return 0;
  return import_builtin (s, name, err) < 0 ? -1 : 1;
}

/* The built-in busybox is imported the first time a store is opened; a
   user who removes it gets it back when naming it (cl_img_resolve). */
static void
store_seed_builtins (struct cl_image_store *s)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  cl_error_t err = NULL;
  int seeded;

  if (cl_db_prepare (s->db, "SELECT 1 FROM image_meta WHERE key = 'builtin-seeded'", &st, NULL) < 0)
    return;
  seeded = sqlite3_step (st) == SQLITE_ROW;
  if (seeded)
    return;
  if (import_builtin (s, "busybox", &err) < 0)
    {
      cl_debug ("built-in busybox image not imported: %s", err->msg);
      cl_error_release (&err);
      return;
    }
  cl_db_exec (s->db, "INSERT OR IGNORE INTO image_meta VALUES ('builtin-seeded', '1')", NULL);
}

int
cl_img_store_open_with_db (const char *root, sqlite3 *db, struct cl_image_store **out,
                           cl_error_t *err)
{
  if (cl_img_store_open_internal (root, db, out, err) < 0)
    return -1;
  (*out)->import_builtin = reimport_builtin;
  store_seed_builtins (*out);
  return 0;
}

int
cl_img_store_open (const char *root, struct cl_image_store **out, cl_error_t *err)
{
  return cl_img_store_open_with_db (root, NULL, out, err);
}
