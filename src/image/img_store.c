/* SPDX-License-Identifier: Apache-2.0 */
/* The store: directories under ROOT/images and the image_* tables of the
   state database.  It imports nothing itself: the built-in images come
   back through the hook the public opens set (builtin.c). */
#include "image/img_internal.h"
#include "common/cancel.h"
#include "common/cleanup.h"
#include "common/db.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char schema[]
    = "CREATE TABLE IF NOT EXISTS image_images ("
      "  id TEXT PRIMARY KEY, manifest TEXT, created INTEGER NOT NULL,"
      "  size INTEGER NOT NULL, source TEXT);"
      "CREATE TABLE IF NOT EXISTS image_names ("
      "  name TEXT NOT NULL, tag TEXT NOT NULL,"
      "  id TEXT NOT NULL REFERENCES image_images(id) ON DELETE CASCADE,"
      "  PRIMARY KEY (name, tag));"
      "CREATE TABLE IF NOT EXISTS image_layers ("
      "  id TEXT NOT NULL REFERENCES image_images(id) ON DELETE CASCADE,"
      "  pos INTEGER NOT NULL, layer TEXT NOT NULL, PRIMARY KEY (id, pos));"
      "CREATE INDEX IF NOT EXISTS image_layers_layer ON image_layers(layer);"
      "CREATE TABLE IF NOT EXISTS image_layer_sizes (layer TEXT PRIMARY KEY, size INTEGER NOT "
      "NULL);"
      "CREATE TABLE IF NOT EXISTS image_uses ("
      "  id TEXT NOT NULL REFERENCES image_images(id), user TEXT NOT NULL,"
      "  PRIMARY KEY (id, user));"
      "CREATE TABLE IF NOT EXISTS image_meta (key TEXT PRIMARY KEY, value TEXT);";

char *
cl_img_store_blob_path (struct cl_image_store *s, const char *hex)
{
  return cl_strdup_printf ("%s/blobs/sha256/%s", s->dir, hex);
}

char *
cl_img_store_layer_path (struct cl_image_store *s, const char *hex)
{
  return cl_strdup_printf ("%s/layers/%s", s->dir, hex);
}

const char *
cl_img_store_root (struct cl_image_store *s)
{
  return s->root;
}

/* Entries of tmp/ carry their creator's pid ("WHAT-PID-XXXXXX"), so that
   opening the store removes only what dead processes left. */
char *
cl_img_store_tmp_name (struct cl_image_store *s, const char *what)
{
  return cl_strdup_printf ("%s/tmp/%s-%d-XXXXXX", s->dir, what, (int)getpid ());
}

static bool
tmp_entry_is_stale (const char *name)
{
  const char *dash = strchr (name, '-');
  int pid;
  if (dash == NULL || sscanf (dash + 1, "%d", &pid) != 1 || pid <= 0)
    return true;
  return kill (pid, 0) < 0 && errno == ESRCH;
}

int
cl_img_store_mkstage (struct cl_image_store *s, const char *what, char **out, cl_error_t *err)
{
  char *path = cl_img_store_tmp_name (s, what);
  if (mkdtemp (path) == NULL)
    {
      cl_error_errno (err, "create staging directory `%s`", path);
      free (path);
      return -1;
    }
  *out = path;
  return 0;
}

/* Writes to a temporary in tmp/, fsyncs nothing (the store is a cache of
   what can be imported again) and renames into place. */
static int
write_atomic (struct cl_image_store *s, const char *dst, const void *data, size_t len,
              cl_error_t *err)
{
  cleanup_free char *tmp = cl_img_store_tmp_name (s, "blob");
  cleanup_close int fd = mkostemp (tmp, O_CLOEXEC);
  if (fd < 0)
    return cl_error_errno (err, "create `%s`", tmp);
  if (cl_write_all (fd, data, len) < 0 || fchmod (fd, 0644) < 0)
    {
      int saved = errno;
      unlink (tmp);
      return cl_error_make (err, saved, "write `%s`", dst);
    }
  if (rename (tmp, dst) < 0)
    {
      int saved = errno;
      unlink (tmp);
      return cl_error_make (err, saved, "rename into `%s`", dst);
    }
  return 0;
}

int
cl_img_store_put_blob (struct cl_image_store *s, const void *data, size_t len,
                       char hex_out[CL_SHA256_HEX_LEN + 1], cl_error_t *err)
{
  char hex[CL_SHA256_HEX_LEN + 1];
  cleanup_free char *path = NULL;
  struct stat st;

  cl_img_sha256_buffer_hex (data, len, hex);
  if (hex_out)
    memcpy (hex_out, hex, sizeof hex);
  path = cl_img_store_blob_path (s, hex);
  if (stat (path, &st) == 0 && (size_t)st.st_size == len)
    return 0;
  return write_atomic (s, path, data, len, err);
}

static int
store_init (struct cl_image_store *s, cl_error_t *err)
{
  static const char *const subdirs[] = { "blobs/sha256", "layers", "tmp" };
  for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++)
    {
      cleanup_free char *d = cl_strdup_printf ("%s/%s", s->dir, subdirs[i]);
      if (cl_mkdir_p (d, 0700, err) < 0)
        return cl_error_wrap (err, "image store");
    }
  /* Leftovers of an import that was killed: nothing refers to them.
     Another process's import in progress is left alone. */
  {
    cleanup_free char *tmp = cl_strdup_printf ("%s/tmp", s->dir);
    cleanup_dir DIR *d = opendir (tmp);
    struct dirent *de;
    while (d && (de = readdir (d)))
      if (de->d_name[0] != '.' && tmp_entry_is_stale (de->d_name))
        {
          cleanup_free char *p = cl_strdup_printf ("%s/%s", tmp, de->d_name);
          cl_rm_rf (p, NULL);
        }
  }
  return cl_db_exec (s->db, schema, err);
}

int
cl_img_store_open_internal (const char *root, sqlite3 *db, struct cl_image_store **out,
                            cl_error_t *err)
{
  struct cl_image_store *s = cl_xmalloc0 (sizeof *s);
  char resolved[PATH_MAX];

  s->lock_fd = -1;
  if (cl_mkdir_p (root, 0700, err) < 0)
    {
      free (s);
      return cl_error_wrap (err, "state root");
    }
  s->root = cl_xstrdup (realpath (root, resolved) ? resolved : root);
  s->dir = cl_strdup_printf ("%s/images", s->root);
  s->db = db;
  if (db == NULL)
    {
      if (cl_db_open (s->root, &s->db, err) < 0)
        {
          cl_img_store_close (s);
          return -1;
        }
      s->own_db = true;
    }
  if (store_init (s, err) < 0)
    {
      cl_img_store_close (s);
      return -1;
    }
  {
    cleanup_free char *lock = cl_strdup_printf ("%s/lock", s->dir);
    s->lock_fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0)
      {
        cl_error_errno (err, "open `%s`", lock);
        cl_img_store_close (s);
        return -1;
      }
  }
  *out = s;
  return 0;
}

void
cl_img_store_close (struct cl_image_store *s)
{
  if (s == NULL)
    return;
  if (s->own_db)
    cl_db_close (s->db);
  if (s->lock_fd >= 0)
    close (s->lock_fd);
  free (s->root);
  free (s->dir);
  free (s);
}

/* ---- building an image ---- */

static void
store_lock (struct cl_image_store *s, int how)
{
  while (flock (s->lock_fd, how) < 0 && errno == EINTR)
    ;
}

void
cl_img_build_init (struct cl_image_build *b, struct cl_image_store *s,
                   cl_image_progress_fn progress, void *opaque)
{
  memset (b, 0, sizeof *b);
  b->store = s;
  b->progress = progress;
  b->progress_opaque = opaque;
  store_lock (s, LOCK_SH);
}

static void
strv_push (char ***v, size_t *n, const char *s)
{
  char **nv = realloc (*v, (*n + 2) * sizeof **v);
  if (nv == NULL)
    abort ();
  nv[(*n)++] = cl_xstrdup (s);
  nv[*n] = NULL;
  *v = nv;
}

static int
layer_size_record (struct cl_image_store *s, const char *hex, uint64_t size, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (cl_db_prepare (s->db, "INSERT OR REPLACE INTO image_layer_sizes VALUES (?, ?)", &st, err) < 0)
    return -1;
  sqlite3_bind_text (st, 1, hex, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, (sqlite3_int64)size);
  if (cl_db_step_done (s->db, st, err) < 0)
    return -1;
  return 0;
}

int
cl_img_build_add_layer (struct cl_image_build *b, const char *path, const char *expected_hex,
                        char hex_out[CL_SHA256_HEX_LEN + 1], cl_error_t *err)
{
  struct cl_image_store *s = b->store;
  char hex[CL_SHA256_HEX_LEN + 1];
  cleanup_free char *stage = NULL, *dst = NULL, *what = NULL;
  cleanup_close int fd = -1;
  struct cl_sha256 hash;
  struct stat st;
  uint64_t unpacked = 0;

  if (cl_cancelled ())
    return cl_cancel_error (err);
  if (expected_hex)
    {
      memcpy (hex, expected_hex, sizeof hex);
      dst = cl_img_store_layer_path (s, hex);
      if (access (dst, F_OK) == 0)
        goto done; /* shared with an image already in the store */
    }
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0)
    return cl_error_errno (err, "open `%s`", path);
  if (cl_img_store_mkstage (s, "layer", &stage, err) < 0)
    return -1;
  what = expected_hex ? cl_strdup_printf ("layer sha256:%.12s", expected_hex)
                      : cl_strdup_printf ("layer %s", path);
  cl_img_sha256_init (&hash);
  if (cl_img_layer_unpack (fd, stage, &hash, &unpacked, b->progress, b->progress_opaque, what,
                           st.st_size, err)
      < 0)
    {
      char actual[CL_SHA256_HEX_LEN + 1];
      cl_rm_rf (stage, NULL);
      cl_img_sha256_final_hex (&hash, actual);
      /* A corrupted blob usually fails to decompress before its digest is
         known: name the real cause when the digest is wrong. */
      if (expected_hex && cl_img_sha256_file_hex (path, actual, NULL) == 0
          && strcmp (actual, expected_hex) != 0)
        {
          cl_error_release (err);
          return cl_img_digest_mismatch (expected_hex, actual, err);
        }
      /* A rootfs tarball is named by the caller's own context. */
      return expected_hex ? cl_error_wrap (err, "layer sha256:%s", expected_hex) : -1;
    }
  {
    char actual[CL_SHA256_HEX_LEN + 1];
    cl_img_sha256_final_hex (&hash, actual);
    if (expected_hex && strcmp (actual, expected_hex) != 0)
      {
        cl_rm_rf (stage, NULL);
        return cl_img_digest_mismatch (expected_hex, actual, err);
      }
    memcpy (hex, actual, sizeof hex);
  }
  free (dst);
  dst = cl_img_store_layer_path (s, hex);
  if (layer_size_record (s, hex, unpacked, err) < 0)
    {
      cl_rm_rf (stage, NULL);
      return -1;
    }
  if (rename (stage, dst) < 0)
    {
      int saved = errno;
      cl_rm_rf (stage, NULL);
      if (saved != EEXIST && saved != ENOTEMPTY)
        return cl_error_make (err, saved, "rename into `%s`", dst);
    }
  else
    strv_push (&b->created, &b->n_created, hex);
done:
  strv_push (&b->layers, &b->n_layers, hex);
  if (hex_out)
    memcpy (hex_out, hex, sizeof hex);
  return 0;
}

static int
record_image (struct cl_image_build *b, const char *id, const char *manifest_hex, const char *name,
              const char *tag, const char *source, cl_error_t *err)
{
  sqlite3 *db = b->store->db;
  cleanup_stmt sqlite3_stmt *ins = NULL, *lay = NULL, *nm = NULL, *del = NULL;
  sqlite3_int64 size = 0;

  {
    cleanup_stmt sqlite3_stmt *q = NULL;
    if (cl_db_prepare (db, "SELECT size FROM image_layer_sizes WHERE layer = ?", &q, err) < 0)
      return -1;
    for (size_t i = 0; i < b->n_layers; i++)
      {
        sqlite3_reset (q);
        sqlite3_bind_text (q, 1, b->layers[i], -1, SQLITE_STATIC);
        if (sqlite3_step (q) == SQLITE_ROW)
          size += sqlite3_column_int64 (q, 0);
      }
  }
  if (cl_db_prepare (db, "INSERT OR IGNORE INTO image_images VALUES (?, ?, ?, ?, ?)", &ins, err)
      < 0)
    return -1;
  sqlite3_bind_text (ins, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text (ins, 2, manifest_hex, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (ins, 3, time (NULL));
  sqlite3_bind_int64 (ins, 4, size);
  sqlite3_bind_text (ins, 5, source, -1, SQLITE_STATIC);
  if (cl_db_step_done (db, ins, err) < 0)
    return -1;
  if (sqlite3_changes (db) > 0)
    {
      if (cl_db_prepare (db, "INSERT INTO image_layers VALUES (?, ?, ?)", &lay, err) < 0)
        return -1;
      for (size_t i = 0; i < b->n_layers; i++)
        {
          sqlite3_reset (lay);
          sqlite3_bind_text (lay, 1, id, -1, SQLITE_STATIC);
          sqlite3_bind_int (lay, 2, (int)i);
          sqlite3_bind_text (lay, 3, b->layers[i], -1, SQLITE_STATIC);
          if (cl_db_step_done (db, lay, err) < 0)
            return -1;
        }
    }
  if (name == NULL)
    return 0;
  if (cl_db_prepare (db, "INSERT OR REPLACE INTO image_names VALUES (?, ?, ?)", &nm, err) < 0)
    return -1;
  sqlite3_bind_text (nm, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text (nm, 2, tag, -1, SQLITE_STATIC);
  sqlite3_bind_text (nm, 3, id, -1, SQLITE_STATIC);
  (void)del;
  return cl_db_step_done (db, nm, err);
}

int
cl_img_build_commit (struct cl_image_build *b, const char *config, size_t config_len,
                     const char *manifest, size_t manifest_len, const char *ref, const char *source,
                     char **id_out, cl_error_t *err)
{
  char id[CL_SHA256_HEX_LEN + 1], manifest_hex[CL_SHA256_HEX_LEN + 1] = "";
  cleanup_free char *name = NULL, *tag = NULL;

  if (ref && cl_img_name_parse (ref, &name, &tag, err) < 0)
    return -1;
  if (cl_img_store_put_blob (b->store, config, config_len, id, err) < 0)
    return -1;
  if (manifest && cl_img_store_put_blob (b->store, manifest, manifest_len, manifest_hex, err) < 0)
    return -1;
  if (cl_db_begin (b->store->db, err) < 0)
    return -1;
  if (record_image (b, id, manifest ? manifest_hex : NULL, name, tag, source, err) < 0
      || cl_db_commit (b->store->db, err) < 0)
    {
      cl_db_rollback (b->store->db);
      return -1;
    }
  /* The image was already there under other layer digests (the same
     image from a docker-archive and an OCI layout): drop the copies. */
  cl_img_build_abort (b);
  if (id_out)
    *id_out = cl_xstrdup (id);
  return 0;
}

int
cl_img_receive (struct cl_image_store *s, const char *dir, char **layers, char **id_out,
                cl_error_t *err)
{
  cleanup_free char *cfg_path = cl_strdup_printf ("%s/config", dir);
  cleanup_free char *config = NULL;
  struct cl_image_build b;
  size_t config_len;

  if (cl_read_file (cfg_path, &config, &config_len, err) < 0)
    return -1;
  cl_img_build_init (&b, s, NULL, NULL);
  for (char **l = layers; l && *l; l++)
    {
      cleanup_free char *src = cl_strdup_printf ("%s/layers/%s", dir, *l);
      cleanup_free char *dst = NULL;
      if (!cl_img_digest_is_hex (*l, strlen (*l)))
        {
          cl_error_raise (err, CL_ERR_INVALID, "image layer `%s`: not a sha256 digest", *l);
          goto fail;
        }
      dst = cl_img_store_layer_path (s, *l);
      if (access (dst, F_OK) < 0)
        {
          /* unpacked by the sender (a trusted client), kept as it came */
          if (rename (src, dst) < 0)
            {
              cl_error_errno (err, "rename `%s` into the store", src);
              goto fail;
            }
          strv_push (&b.created, &b.n_created, *l);
          if (layer_size_record (s, *l, 0, err) < 0)
            goto fail;
        }
      if (cl_img_build_add_layer (&b, src, *l, NULL, err) < 0)
        goto fail;
    }
  if (cl_img_build_commit (&b, config, config_len, NULL, 0, NULL, "move", id_out, err) < 0)
    goto fail;
  return 0;
fail:
  cl_img_build_abort (&b);
  return -1;
}

bool
cl_img_store_image_exists (struct cl_image_store *s, const char *id)
{
  cleanup_stmt sqlite3_stmt *q = NULL;
  if (cl_db_prepare (s->db, "SELECT 1 FROM image_images WHERE id = ?", &q, NULL) < 0)
    return false;
  sqlite3_bind_text (q, 1, id, -1, SQLITE_STATIC);
  return sqlite3_step (q) == SQLITE_ROW;
}

static bool
layer_referenced (struct cl_image_store *s, const char *hex)
{
  cleanup_stmt sqlite3_stmt *q = NULL;
  if (cl_db_prepare (s->db, "SELECT 1 FROM image_layers WHERE layer = ? LIMIT 1", &q, NULL) < 0)
    return true;
  sqlite3_bind_text (q, 1, hex, -1, SQLITE_STATIC);
  return sqlite3_step (q) == SQLITE_ROW;
}

/* Removes a layer directory atomically: renamed into tmp/ first, so that
   it is never seen half-deleted. */
static void
remove_layer (struct cl_image_store *s, const char *hex)
{
  cleanup_free char *path = cl_img_store_layer_path (s, hex);
  cleanup_free char *grave = cl_strdup_printf ("%s/tmp/dead-%d-%s", s->dir, (int)getpid (), hex);
  cleanup_stmt sqlite3_stmt *q = NULL;

  if (rename (path, grave) == 0)
    cl_rm_rf (grave, NULL);
  if (cl_db_prepare (s->db, "DELETE FROM image_layer_sizes WHERE layer = ?", &q, NULL) == 0)
    {
      sqlite3_bind_text (q, 1, hex, -1, SQLITE_STATIC);
      sqlite3_step (q);
    }
}

void
cl_img_build_abort (struct cl_image_build *b)
{
  for (size_t i = 0; i < b->n_created; i++)
    if (!layer_referenced (b->store, b->created[i]))
      remove_layer (b->store, b->created[i]);
  cl_strv_free_n (b->layers, b->n_layers);
  cl_strv_free_n (b->created, b->n_created);
  b->layers = b->created = NULL;
  b->n_layers = b->n_created = 0;
  store_lock (b->store, LOCK_UN);
}

/* ---- looking images up ---- */

static char **
json_strv (json_t *arr)
{
  char **v;
  size_t i;
  json_t *x;
  if (!json_is_array (arr))
    return NULL;
  v = cl_xmalloc0 ((json_array_size (arr) + 1) * sizeof *v);
  json_array_foreach (arr, i, x) v[i]
      = cl_xstrdup (json_is_string (x) ? json_string_value (x) : "");
  return v;
}

static int
load_config (struct cl_image_store *s, struct cl_image *img, cl_error_t *err)
{
  cleanup_free char *path = cl_img_store_blob_path (s, img->id);
  cleanup_json json_t *root = NULL;
  json_t *cfg = NULL;
  const char *str;

  if (cl_json_load_file (path, &root, err) < 0)
    return cl_error_wrap (err, "image %.12s config", img->id);
  if (cl_json_object (root, "", "config", &cfg, err) < 0)
    return cl_error_wrap (err, "`%s`", path);
  img->config.env = json_strv (json_object_get (cfg, "Env"));
  if (img->config.env == NULL)
    img->config.env = cl_xmalloc0 (sizeof (char *));
  img->config.entrypoint = json_strv (json_object_get (cfg, "Entrypoint"));
  img->config.cmd = json_strv (json_object_get (cfg, "Cmd"));
  if (cfg && (str = json_string_value (json_object_get (cfg, "WorkingDir"))) && *str)
    img->config.working_dir = cl_xstrdup (str);
  if (cfg && (str = json_string_value (json_object_get (cfg, "User"))) && *str)
    img->config.user = cl_xstrdup (str);
  return 0;
}

void
cl_img_free (struct cl_image *img)
{
  if (img == NULL)
    return;
  free (img->id);
  free (img->name);
  cl_strv_free (img->config.env);
  cl_strv_free (img->config.entrypoint);
  cl_strv_free (img->config.cmd);
  free (img->config.working_dir);
  free (img->config.user);
  cl_strv_free_n (img->layers, img->n_layers);
  free (img);
}

static int
image_load (struct cl_image_store *s, const char *id, const char *name, struct cl_image **out,
            cl_error_t *err)
{
  struct cl_image *img = cl_xmalloc0 (sizeof *img);
  cleanup_stmt sqlite3_stmt *q = NULL, *l = NULL;

  img->id = cl_xstrdup (id);
  if (cl_db_prepare (s->db, "SELECT created, size FROM image_images WHERE id = ?", &q, err) < 0)
    goto fail;
  sqlite3_bind_text (q, 1, id, -1, SQLITE_STATIC);
  if (sqlite3_step (q) != SQLITE_ROW)
    {
      cl_error_raise (err, CL_ERR_NOT_FOUND, "image `%s` not found", name ? name : id);
      goto fail;
    }
  img->created = sqlite3_column_int64 (q, 0);
  img->size = sqlite3_column_int64 (q, 1);
  if (name)
    img->name = cl_xstrdup (name);
  else
    {
      cleanup_stmt sqlite3_stmt *n = NULL;
      if (cl_db_prepare (s->db,
                         "SELECT name || ':' || tag FROM image_names WHERE id = ? "
                         "ORDER BY name, tag LIMIT 1",
                         &n, err)
          < 0)
        goto fail;
      sqlite3_bind_text (n, 1, id, -1, SQLITE_STATIC);
      if (sqlite3_step (n) == SQLITE_ROW)
        img->name = cl_xstrdup ((const char *)sqlite3_column_text (n, 0));
    }
  if (cl_db_prepare (s->db, "SELECT layer FROM image_layers WHERE id = ? ORDER BY pos", &l, err)
      < 0)
    goto fail;
  sqlite3_bind_text (l, 1, id, -1, SQLITE_STATIC);
  while (sqlite3_step (l) == SQLITE_ROW)
    {
      cleanup_free char *p = cl_img_store_layer_path (s, (const char *)sqlite3_column_text (l, 0));
      strv_push (&img->layers, &img->n_layers, p);
    }
  if (load_config (s, img, err) < 0)
    goto fail;
  *out = img;
  return 0;
fail:
  cl_img_free (img);
  return -1;
}

/* 1 found (*id set), 0 not found, -1 error. */
static int
lookup_name (struct cl_image_store *s, const char *name, const char *tag, char **id,
             cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *q = NULL;
  if (cl_db_prepare (s->db, "SELECT id FROM image_names WHERE name = ? AND tag = ?", &q, err) < 0)
    return -1;
  sqlite3_bind_text (q, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text (q, 2, tag, -1, SQLITE_STATIC);
  if (sqlite3_step (q) != SQLITE_ROW)
    return 0;
  *id = cl_xstrdup ((const char *)sqlite3_column_text (q, 0));
  return 1;
}

static int
lookup_id_prefix (struct cl_image_store *s, const char *ref, char **id, cl_error_t *err)
{
  const char *hex = strncmp (ref, "sha256:", 7) == 0 ? ref + 7 : ref;
  size_t len = strlen (hex);
  cleanup_stmt sqlite3_stmt *q = NULL;
  cleanup_free char *pattern = NULL;

  if (len < 4 || len > CL_SHA256_HEX_LEN || !cl_img_digest_is_hex (hex, len))
    return 0;
  pattern = cl_strdup_printf ("%s%%", hex);
  if (cl_db_prepare (s->db, "SELECT id FROM image_images WHERE id LIKE ? LIMIT 2", &q, err) < 0)
    return -1;
  sqlite3_bind_text (q, 1, pattern, -1, SQLITE_STATIC);
  if (sqlite3_step (q) != SQLITE_ROW)
    return 0;
  *id = cl_xstrdup ((const char *)sqlite3_column_text (q, 0));
  if (sqlite3_step (q) == SQLITE_ROW)
    {
      free (*id);
      *id = NULL;
      return cl_error_raise (err, CL_ERR_INVALID, "image reference `%s`: ambiguous id prefix", ref);
    }
  return 1;
}

/* Finds the id for ref.  *name_out gets NAME:TAG when ref was a name. */
static int
resolve_id (struct cl_image_store *s, const char *ref, char **id, char **name_out, cl_error_t *err)
{
  cleanup_free char *name = NULL, *tag = NULL;
  cl_error_t parse_err = NULL;
  int r;

  *name_out = NULL;
  r = lookup_id_prefix (s, ref, id, err);
  if (r != 0)
    return r;
  if (cl_img_name_parse (ref, &name, &tag, &parse_err) < 0)
    {
      if (strncmp (ref, "sha256:", 7) == 0)
        {
          cl_error_release (&parse_err);
          return 0;
        }
      *err = parse_err;
      return -1;
    }
  r = lookup_name (s, name, tag, id, err);
  if (r == 0 && strcmp (tag, "latest") == 0 && s->import_builtin)
    {
      int imported = s->import_builtin (s, name, err);
      if (imported < 0)
        return -1;
      if (imported > 0)
        r = lookup_name (s, name, tag, id, err);
    }
  if (r == 1)
    *name_out = cl_strdup_printf ("%s:%s", name, tag);
  return r;
}

int
cl_img_resolve (struct cl_image_store *s, const char *ref, struct cl_image **out, cl_error_t *err)
{
  cleanup_free char *id = NULL, *name = NULL;
  int r = resolve_id (s, ref, &id, &name, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return cl_error_raise (err, CL_ERR_NOT_FOUND, "image `%s` not found", ref);
  return image_load (s, id, name, out, err);
}

char *
cl_img_lowerdir (const struct cl_image *img)
{
  size_t len = 1;
  char *out, *p;
  for (size_t i = 0; i < img->n_layers; i++)
    len += strlen (img->layers[i]) + 1;
  p = out = cl_xmalloc0 (len);
  for (size_t i = img->n_layers; i-- > 0;)
    p += sprintf (p, "%s%s", p == out ? "" : ":", img->layers[i]);
  return out;
}

/* ---- uses ---- */

static int
use_exec (struct cl_image_store *s, const char *sql, const char *id, const char *user,
          cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *q = NULL;
  if (cl_db_prepare (s->db, sql, &q, err) < 0)
    return -1;
  sqlite3_bind_text (q, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text (q, 2, user, -1, SQLITE_STATIC);
  if (sqlite3_step (q) == SQLITE_DONE)
    return 0;
  /* the image's row went between the caller's look-up and this use */
  if (sqlite3_extended_errcode (s->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
    return cl_error_make (err, ENOENT, "image %.12s not found: it was removed", id);
  return cl_error_make (err, 0, "image %.12s: record use by `%s`: %s", id, user,
                        sqlite3_errmsg (s->db));
}

int
cl_img_use (struct cl_image_store *s, const char *image_id, const char *user, cl_error_t *err)
{
  return use_exec (s, "INSERT OR IGNORE INTO image_uses VALUES (?, ?)", image_id, user, err);
}

int
cl_img_release (struct cl_image_store *s, const char *image_id, const char *user, cl_error_t *err)
{
  return use_exec (s, "DELETE FROM image_uses WHERE id = ? AND user = ?", image_id, user, err);
}

/* ---- removal ---- */

static int
count_rows (struct cl_image_store *s, const char *sql, const char *id, char **first)
{
  cleanup_stmt sqlite3_stmt *q = NULL;
  int n = 0;
  if (cl_db_prepare (s->db, sql, &q, NULL) < 0)
    return -1;
  sqlite3_bind_text (q, 1, id, -1, SQLITE_STATIC);
  while (sqlite3_step (q) == SQLITE_ROW)
    {
      if (n++ == 0 && first)
        *first = cl_xstrdup ((const char *)sqlite3_column_text (q, 0));
    }
  return n;
}

static int
delete_image_rows (struct cl_image_store *s, const char *id, char ***layers, size_t *n_layers,
                   char **manifest, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *l = NULL, *m = NULL, *d = NULL;
  if (cl_db_prepare (s->db, "SELECT layer FROM image_layers WHERE id = ?", &l, err) < 0
      || cl_db_prepare (s->db, "SELECT manifest FROM image_images WHERE id = ?", &m, err) < 0
      || cl_db_prepare (s->db, "DELETE FROM image_images WHERE id = ?", &d, err) < 0)
    return -1;
  sqlite3_bind_text (l, 1, id, -1, SQLITE_STATIC);
  while (sqlite3_step (l) == SQLITE_ROW)
    strv_push (layers, n_layers, (const char *)sqlite3_column_text (l, 0));
  sqlite3_bind_text (m, 1, id, -1, SQLITE_STATIC);
  if (sqlite3_step (m) == SQLITE_ROW && sqlite3_column_text (m, 0))
    *manifest = cl_xstrdup ((const char *)sqlite3_column_text (m, 0));
  sqlite3_bind_text (d, 1, id, -1, SQLITE_STATIC);
  return cl_db_step_done (s->db, d, err);
}

static int
untag (struct cl_image_store *s, const char *name_tag, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *q = NULL;
  const char *colon = strrchr (name_tag, ':');
  if (cl_db_prepare (s->db, "DELETE FROM image_names WHERE name = ? AND tag = ?", &q, err) < 0)
    return -1;
  sqlite3_bind_text (q, 1, name_tag, colon - name_tag, SQLITE_STATIC);
  sqlite3_bind_text (q, 2, colon + 1, -1, SQLITE_STATIC);
  return cl_db_step_done (s->db, q, err);
}

static int remove_locked (struct cl_image_store *s, const char *ref, const char *id,
                          const char *name, cl_error_t *err);

int
cl_img_remove (struct cl_image_store *s, const char *ref, cl_error_t *err)
{
  cleanup_free char *id = NULL, *name = NULL;
  int r;

  r = resolve_id (s, ref, &id, &name, err);
  if (r <= 0)
    return r < 0 ? -1 : cl_error_raise (err, CL_ERR_NOT_FOUND, "image `%s` not found", ref);
  store_lock (s, LOCK_EX);
  r = remove_locked (s, ref, id, name, err);
  store_lock (s, LOCK_UN);
  return r;
}

static int
remove_locked (struct cl_image_store *s, const char *ref, const char *id, const char *name,
               cl_error_t *err)
{
  cleanup_free char *user = NULL, *manifest = NULL;
  char **layers = NULL;
  size_t n_layers = 0;

  if (cl_db_begin (s->db, err) < 0)
    return -1;
  /* Removing one of several names only untags. */
  if (name && count_rows (s, "SELECT name FROM image_names WHERE id = ?", id, NULL) > 1)
    {
      if (untag (s, name, err) < 0 || cl_db_commit (s->db, err) < 0)
        {
          cl_db_rollback (s->db);
          return -1;
        }
      return 0;
    }
  if (count_rows (s, "SELECT user FROM image_uses WHERE id = ? ORDER BY user", id, &user) > 0)
    {
      cl_db_rollback (s->db);
      return cl_error_raise (err, CL_ERR_CONFLICT, "image `%s` is used by instance `%s`", ref,
                             user);
    }
  if (delete_image_rows (s, id, &layers, &n_layers, &manifest, err) < 0
      || cl_db_commit (s->db, err) < 0)
    {
      cl_db_rollback (s->db);
      cl_strv_free_n (layers, n_layers);
      return -1;
    }
  /* Files go after the rows: a crash here leaves only unreferenced files. */
  for (size_t i = 0; i < n_layers; i++)
    if (!layer_referenced (s, layers[i]))
      remove_layer (s, layers[i]);
  cl_strv_free_n (layers, n_layers);
  {
    cleanup_free char *cfg = cl_img_store_blob_path (s, id);
    unlink (cfg);
    if (manifest)
      {
        cleanup_free char *mp = cl_img_store_blob_path (s, manifest);
        if (count_rows (s, "SELECT id FROM image_images WHERE manifest = ?", manifest, NULL) == 0)
          unlink (mp);
      }
  }
  return 0;
}

/* ---- listing ---- */

void
cl_img_info_free (struct cl_image_info *infos, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (infos[i].id);
      cl_strv_free (infos[i].names);
    }
  free (infos);
}

int
cl_img_list (struct cl_image_store *s, struct cl_image_info **out, size_t *n, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *q = NULL, *nm = NULL;
  struct cl_image_info *v = NULL;
  size_t count = 0;

  if (cl_db_prepare (s->db,
                     "SELECT i.id, i.created, i.size,"
                     " (SELECT count(*) FROM image_layers l WHERE l.id = i.id),"
                     " (SELECT count(*) FROM image_uses u WHERE u.id = i.id)"
                     " FROM image_images i ORDER BY i.created DESC, i.id",
                     &q, err)
          < 0
      || cl_db_prepare (
             s->db, "SELECT name || ':' || tag FROM image_names WHERE id = ? ORDER BY name, tag",
             &nm, err)
             < 0)
    return -1;
  while (sqlite3_step (q) == SQLITE_ROW)
    {
      struct cl_image_info *i;
      size_t nn = 0;
      v = realloc (v, (count + 1) * sizeof *v);
      if (v == NULL)
        abort ();
      i = &v[count++];
      memset (i, 0, sizeof *i);
      i->id = cl_xstrdup ((const char *)sqlite3_column_text (q, 0));
      i->created = sqlite3_column_int64 (q, 1);
      i->size = sqlite3_column_int64 (q, 2);
      i->n_layers = sqlite3_column_int64 (q, 3);
      i->n_uses = sqlite3_column_int64 (q, 4);
      i->names = cl_xmalloc0 (sizeof (char *));
      sqlite3_reset (nm);
      sqlite3_bind_text (nm, 1, i->id, -1, SQLITE_STATIC);
      while (sqlite3_step (nm) == SQLITE_ROW)
        strv_push (&i->names, &nn, (const char *)sqlite3_column_text (nm, 0));
    }
  *out = v;
  *n = count;
  return 0;
}

int
cl_img_inspect_json (struct cl_image_store *s, const char *ref, char **json_out, cl_error_t *err)
{
  struct cl_image *img = NULL;
  cleanup_json json_t *o = json_object (), *config = NULL, *manifest = NULL;
  cleanup_stmt sqlite3_stmt *q = NULL;
  json_t *names = json_array (), *layers = json_array (), *uses = json_array ();
  size_t i;

  if (cl_img_resolve (s, ref, &img, err) < 0)
    {
      json_decref (names);
      json_decref (layers);
      json_decref (uses);
      return -1;
    }
  json_object_set_new (o, "Id", json_string (img->id));
  json_object_set_new (o, "Digest", json_pack ("s+", "sha256:", img->id));
  if (cl_db_prepare (s->db, "SELECT name || ':' || tag FROM image_names WHERE id = ? ORDER BY 1",
                     &q, err)
      == 0)
    {
      sqlite3_bind_text (q, 1, img->id, -1, SQLITE_STATIC);
      while (sqlite3_step (q) == SQLITE_ROW)
        json_array_append_new (names, json_string ((const char *)sqlite3_column_text (q, 0)));
    }
  json_object_set_new (o, "Names", names);
  json_object_set_new (o, "Created", json_integer (img->created));
  json_object_set_new (o, "Size", json_integer ((json_int_t)img->size));
  for (i = 0; i < img->n_layers; i++)
    json_array_append_new (layers, json_string (img->layers[i]));
  json_object_set_new (o, "Layers", layers);
  {
    cleanup_stmt sqlite3_stmt *u = NULL;
    if (cl_db_prepare (s->db, "SELECT user FROM image_uses WHERE id = ? ORDER BY 1", &u, err) == 0)
      {
        sqlite3_bind_text (u, 1, img->id, -1, SQLITE_STATIC);
        while (sqlite3_step (u) == SQLITE_ROW)
          json_array_append_new (uses, json_string ((const char *)sqlite3_column_text (u, 0)));
      }
  }
  json_object_set_new (o, "UsedBy", uses);
  {
    cleanup_free char *cfg_path = cl_img_store_blob_path (s, img->id);
    if (cl_json_load_file (cfg_path, &config, err) < 0)
      {
        cl_img_free (img);
        return -1;
      }
    json_object_set (o, "Config", config);
  }
  {
    cleanup_stmt sqlite3_stmt *m = NULL;
    if (cl_db_prepare (s->db, "SELECT manifest FROM image_images WHERE id = ?", &m, err) == 0)
      {
        sqlite3_bind_text (m, 1, img->id, -1, SQLITE_STATIC);
        if (sqlite3_step (m) == SQLITE_ROW && sqlite3_column_text (m, 0))
          {
            const char *mh = (const char *)sqlite3_column_text (m, 0);
            cleanup_free char *mp = cl_img_store_blob_path (s, mh);
            json_object_set_new (o, "ManifestDigest", json_pack ("s+", "sha256:", mh));
            if (cl_json_load_file (mp, &manifest, NULL) == 0)
              json_object_set (o, "Manifest", manifest);
          }
      }
  }
  cl_img_free (img);
  *json_out = json_dumps (o, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  return 0;
}
