/* SPDX-License-Identifier: Apache-2.0 */
/* Request bodies streamed to a file (POST /1.0/images with an image
   archive): the server writes each piece as it arrives into
   ROOT/uploads/XXXXXX/FILE, hashing it (SHA-256) on the way, under a size
   cap; the router's handler checks the digest and gives the file to an
   operation, which removes it when it ends.  An upload nobody took (too
   big, a bad digest, the client gone mid-body) is removed when freed, and
   what a dead daemon left is removed at the next start. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cl_api_upload
{
  int refs;   /* atomically */
  char *dir;  /* ROOT/uploads/XXXXXX */
  char *path; /* dir/FILE */
  int fd;
  uint64_t size;
  gnutls_hash_hd_t hash;
  char hex[65]; /* its SHA-256, once ended */
};

static char *
uploads_dir (const char *root)
{
  return cl_strdup_printf ("%s/uploads", root);
}

bool
cl_api_upload_wanted (const char *method, const char *path, const char *content_type)
{
  return method && path && content_type && strcmp (method, "POST") == 0
         && (strcmp (path, "/1.0/images") == 0 || strcmp (path, "/1.0/images/") == 0)
         && strncasecmp (content_type, "application/octet-stream", 24) == 0;
}

/* The file's name: the query's filename=BASE (an import names a rootfs
   tarball after it), else upload.tar. */
static char *
upload_file_name (const char *query)
{
  cleanup_json json_t *q = NULL;
  const char *f;

  if (cl_api_parse_query (query, &q) < 0)
    return cl_xstrdup ("upload.tar");
  f = json_string_value (json_object_get (q, "filename"));
  if (f == NULL || *f == '\0' || *f == '.' || strchr (f, '/') || strlen (f) > 200)
    return cl_xstrdup ("upload.tar");
  return cl_xstrdup (f);
}

int
cl_api_upload_begin (struct cl_api_ctx *ctx, const char *query, struct cl_api_upload **out,
                     cl_error_t *err)
{
  cleanup_free char *top = uploads_dir (ctx->root), *file = upload_file_name (query);
  struct cl_api_upload *u;

  if (cl_mkdir_p (top, 0700, err) < 0)
    return -1;
  u = cl_xmalloc0 (sizeof *u);
  u->refs = 1;
  u->fd = -1;
  u->dir = cl_strdup_printf ("%s/XXXXXX", top);
  if (mkdtemp (u->dir) == NULL)
    {
      int e = errno;
      free (u->dir);
      free (u);
      return cl_error_make (err, e, "upload: create a directory in `%s`", top);
    }
  u->path = cl_strdup_printf ("%s/%s", u->dir, file);
  u->fd = open (u->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (u->fd < 0 || gnutls_hash_init (&u->hash, GNUTLS_DIG_SHA256) < 0)
    {
      int e = errno;
      u->hash = NULL;
      cl_api_upload_unref (u);
      return cl_error_make (err, e, "upload: create its file");
    }
  *out = u;
  return 0;
}

int
cl_api_upload_write (struct cl_api_upload *u, const void *data, size_t n, cl_error_t *err)
{
  if (cl_write_all (u->fd, data, n) < 0)
    return cl_error_errno (err, "upload: write `%s`", u->path);
  gnutls_hash (u->hash, data, n);
  u->size += n;
  return 0;
}

uint64_t
cl_api_upload_size (const struct cl_api_upload *u)
{
  return u->size;
}

/* The digest's 32 bytes as hex. */
static void
hex_of (const unsigned char d[32], char hex[65])
{
  for (size_t i = 0; i < 32; i++)
    snprintf (hex + 2 * i, 3, "%02x", d[i]);
}

int
cl_api_file_sha256 (const char *path, char hex[65], cl_error_t *err)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  gnutls_hash_hd_t h;
  unsigned char d[32];
  char buf[1 << 16];
  ssize_t n;

  if (fd < 0)
    return cl_error_errno (err, "open `%s`", path);
  if (gnutls_hash_init (&h, GNUTLS_DIG_SHA256) < 0)
    return cl_error_make (err, 0, "sha256: cannot initialise");
  while ((n = read (fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0)
      gnutls_hash (h, buf, (size_t)n);
  gnutls_hash_deinit (h, d);
  if (n < 0)
    return cl_error_errno (err, "read `%s`", path);
  hex_of (d, hex);
  return 0;
}

int
cl_api_upload_end (struct cl_api_upload *u, cl_error_t *err)
{
  unsigned char d[32];
  int r = 0;

  if (u->hash)
    {
      gnutls_hash_deinit (u->hash, d);
      u->hash = NULL;
      hex_of (d, u->hex);
    }
  if (u->fd >= 0 && close (u->fd) < 0)
    r = cl_error_errno (err, "upload: write `%s`", u->path);
  u->fd = -1;
  return r;
}

const char *
cl_api_upload_path (const struct cl_api_upload *u)
{
  return u->path;
}

const char *
cl_api_upload_sha256 (const struct cl_api_upload *u)
{
  return u->hex;
}

void
cl_api_upload_remove (struct cl_api_upload *u)
{
  cl_error_t ignored = NULL;

  if (u->fd >= 0)
    close (u->fd);
  u->fd = -1;
  if (cl_rm_rf (u->dir, &ignored) < 0)
    cl_error_release (&ignored);
}

void *
cl_api_upload_ref (void *data)
{
  struct cl_api_upload *u = data;
  __atomic_add_fetch (&u->refs, 1, __ATOMIC_SEQ_CST);
  return u;
}

void
cl_api_upload_unref (void *data)
{
  struct cl_api_upload *u = data;

  if (u == NULL || __atomic_sub_fetch (&u->refs, 1, __ATOMIC_SEQ_CST) > 0)
    return;
  if (u->hash)
    gnutls_hash_deinit (u->hash, NULL);
  cl_api_upload_remove (u);
  free (u->dir);
  free (u->path);
  free (u);
}
