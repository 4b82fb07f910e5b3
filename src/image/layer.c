/* SPDX-License-Identifier: Apache-2.0 */
/* Unpacking one layer with libarchive.  OCI whiteouts become overlayfs
   whiteouts so that instances mount the layers as they are:
     .wh.NAME        -> NAME as a character device 0/0
     .wh..wh..opq    -> the directory gets trusted.overlay.opaque=y
   Paths are resolved under the layer directory one component at a time
   with O_NOFOLLOW, so that a symlink in a layer never sends a whiteout
   outside it; libarchive's SECURE flags guard the other entries. */
#include "image/img_internal.h"
#include "common/cancel.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"
#define OVERLAY_XATTR_PREFIX "trusted.overlay."

struct reader
{
  int fd;
  struct cl_sha256 *hash;
  cl_image_progress_fn progress;
  void *opaque;
  const char *what;
  uint64_t done, total, last_report;
  int error; /* errno of a failed read */
  char buf[128 * 1024];
};

static ssize_t
reader_read (struct archive *a, void *data, const void **out)
{
  struct reader *r = data;
  ssize_t n;
  (void)a;
  /* a cancellation point (common/cancel.h) */
  if (cl_cancelled ())
    {
      r->error = ECANCELED;
      if (a)
        archive_set_error (a, ECANCELED, "cancelled");
      return -1;
    }
  do
    n = read (r->fd, r->buf, sizeof r->buf);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    {
      r->error = errno;
      if (a)
        archive_set_error (a, errno, "read");
      return -1;
    }
  if (r->hash)
    cl_img_sha256_update (r->hash, r->buf, n);
  r->done += n;
  if (r->progress && r->done - r->last_report >= (1 << 20))
    {
      r->last_report = r->done;
      r->progress (r->opaque, r->what, r->done, r->total, 0);
    }
  *out = r->buf;
  return n;
}

/* Hashes what libarchive left unread (tar padding after the end marker). */
static int
reader_drain (struct reader *r)
{
  const void *p;
  ssize_t n;
  while ((n = reader_read (NULL, r, &p)) > 0)
    ;
  return n < 0 ? -1 : 0;
}

/* Strips "./" and "/" prefixes; NULL for the root itself. */
static const char *
clean_path (const char *p)
{
  for (;;)
    {
      if (p[0] == '/')
        p++;
      else if (p[0] == '.' && p[1] == '/')
        p += 2;
      else
        break;
    }
  if (*p == '\0' || strcmp (p, ".") == 0)
    return NULL;
  return p;
}

static bool
bad_component (const char *c, size_t len)
{
  return len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.');
}

/* Opens (creating with 0755) the directory `rel` under rootfd without
   following any symlink.  rel NULL or "": rootfd itself (dup). */
static int
open_dir_beneath (int rootfd, const char *rel, size_t rel_len, cl_error_t *err)
{
  int fd = dup (rootfd);
  size_t i = 0;
  if (fd < 0)
    return cl_error_errno (err, "dup");
  while (i < rel_len)
    {
      size_t j = i;
      char comp[256];
      int next;
      while (j < rel_len && rel[j] != '/')
        j++;
      if (j - i >= sizeof comp || bad_component (rel + i, j - i))
        {
          close (fd);
          return cl_error_raise (err, CL_ERR_INVALID, "invalid path `%.*s` in layer", (int)rel_len,
                                 rel);
        }
      memcpy (comp, rel + i, j - i);
      comp[j - i] = '\0';
      if (mkdirat (fd, comp, 0755) < 0 && errno != EEXIST)
        {
          cl_error_errno (err, "mkdir `%.*s`", (int)j, rel);
          close (fd);
          return -1;
        }
      next = openat (fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0)
        {
          cl_error_errno (err, "open `%.*s` in layer", (int)j, rel);
          close (fd);
          return -1;
        }
      close (fd);
      fd = next;
      i = j + 1;
    }
  return fd;
}

static int
apply_whiteout (int rootfd, const char *path, char ***opaque, size_t *n_opaque, cl_error_t *err)
{
  const char *slash = strrchr (path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t dir_len = slash ? (size_t)(slash - path) : 0;
  cleanup_close int dirfd = -1;
  const char *name;

  if (strcmp (base, WHITEOUT_OPAQUE) == 0)
    {
      char **v = realloc (*opaque, (*n_opaque + 1) * sizeof *v);
      if (v == NULL)
        abort ();
      v[(*n_opaque)++] = strndup (path, dir_len);
      *opaque = v;
      return 0;
    }
  name = base + strlen (WHITEOUT_PREFIX);
  if (bad_component (name, strlen (name)))
    return cl_error_raise (err, CL_ERR_INVALID, "invalid whiteout `%s` in layer", path);
  dirfd = open_dir_beneath (rootfd, path, dir_len, err);
  if (dirfd < 0)
    return -1;
  /* A layer that both adds and whites out a name keeps the whiteout. */
  if (unlinkat (dirfd, name, 0) < 0 && errno == EISDIR)
    unlinkat (dirfd, name, AT_REMOVEDIR);
  if (mknodat (dirfd, name, S_IFCHR | 0000, makedev (0, 0)) < 0)
    return cl_error_errno (err, "whiteout `%s`", path);
  return 0;
}

static int
apply_opaque (int rootfd, const char *dir, cl_error_t *err)
{
  cleanup_close int fd = open_dir_beneath (rootfd, dir, strlen (dir), err);
  if (fd < 0)
    return -1;
  if (fsetxattr (fd, OVERLAY_XATTR_PREFIX "opaque", "y", 1, 0) < 0)
    return cl_error_errno (err, "opaque directory `%s`: set trusted.overlay.opaque", dir);
  return 0;
}

/* A layer must not smuggle overlayfs metadata of its own. */
static void
drop_overlay_xattrs (struct archive_entry *e)
{
  const char *name;
  const void *value;
  size_t size;
  struct kept
  {
    char *name;
    void *value;
    size_t size;
  } *kept = NULL;
  size_t n = 0, total = archive_entry_xattr_reset (e);
  bool found = false;

  if (total == 0)
    return;
  kept = cl_xmalloc0 (total * sizeof *kept);
  while (archive_entry_xattr_next (e, &name, &value, &size) == ARCHIVE_OK)
    {
      if (strncmp (name, OVERLAY_XATTR_PREFIX, strlen (OVERLAY_XATTR_PREFIX)) == 0)
        {
          found = true;
          continue;
        }
      kept[n].name = cl_xstrdup (name);
      kept[n].value = malloc (size ? size : 1);
      memcpy (kept[n].value, value, size);
      kept[n].size = size;
      n++;
    }
  if (found)
    {
      archive_entry_xattr_clear (e);
      for (size_t i = 0; i < n; i++)
        archive_entry_xattr_add_entry (e, kept[i].name, kept[i].value, kept[i].size);
    }
  for (size_t i = 0; i < n; i++)
    {
      free (kept[i].name);
      free (kept[i].value);
    }
  free (kept);
}

static int
archive_fail (struct archive *a, struct reader *r, const char *what, cl_error_t *err)
{
  int e = archive_errno (a);
  if (r->error)
    return cl_error_make (err, r->error, "read");
  if (e == ENOSPC || e == EDQUOT || e == EIO)
    return cl_error_make (err, e, "write `%s`", what);
  return cl_error_make (err, 0, "%s: %s", what, archive_error_string (a));
}

int
cl_img_layer_unpack (int fd, const char *dir, struct cl_sha256 *hash, uint64_t *unpacked,
                     cl_image_progress_fn progress, void *opaque_arg, const char *what,
                     uint64_t total, cl_error_t *err)
{
  struct reader *r = cl_xmalloc0 (sizeof *r);
  struct archive *in = archive_read_new ();
  struct archive *out = archive_write_disk_new ();
  struct archive_entry *e;
  cleanup_close int rootfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_close int cwd = open (".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char **opaque = NULL;
  size_t n_opaque = 0, entries = 0;
  uint64_t bytes = 0;
  int ret = -1, ar;

  r->fd = fd;
  r->hash = hash;
  r->progress = progress;
  r->opaque = opaque_arg;
  r->what = what;
  r->total = total;
  archive_read_support_filter_all (in);
  archive_read_support_format_tar (in);
  archive_read_support_format_gnutar (in);
  archive_write_disk_set_options (
      out, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME
               | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_FFLAGS | ARCHIVE_EXTRACT_UNLINK
               | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT
               | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
  archive_write_disk_set_standard_lookup (out);
  if (rootfd < 0 || cwd < 0)
    {
      cl_error_errno (err, "open `%s`", dir);
      goto out;
    }
  /* archive_write_disk works relative to the current directory: the
     callers are single-threaded (the CLI, the manager). */
  if (fchdir (rootfd) < 0)
    {
      cl_error_errno (err, "chdir `%s`", dir);
      goto out;
    }
  if (archive_read_open (in, r, NULL, reader_read, NULL) != ARCHIVE_OK)
    {
      archive_fail (in, r, "not an archive", err);
      goto out;
    }
  while ((ar = archive_read_next_header (in, &e)) == ARCHIVE_OK)
    {
      const char *cleaned = clean_path (archive_entry_pathname (e));
      cleanup_free char *path = NULL;
      const char *base;
      entries++;
      if (cleaned == NULL)
        continue; /* the root: keeps the layer directory's own mode */
      /* A copy: setting the entry's pathname frees the string it points into. */
      path = cl_xstrdup (cleaned);
      base = strrchr (path, '/');
      base = base ? base + 1 : path;
      if (strncmp (base, WHITEOUT_PREFIX, strlen (WHITEOUT_PREFIX)) == 0)
        {
          if (apply_whiteout (rootfd, path, &opaque, &n_opaque, err) < 0)
            goto out;
          continue;
        }
      archive_entry_set_pathname (e, path);
      if (archive_entry_hardlink (e))
        {
          const char *target = clean_path (archive_entry_hardlink (e));
          cleanup_free char *copy = NULL;
          if (target == NULL)
            {
              cl_error_make (err, 0, "hard link `%s` to the root", path);
              goto out;
            }
          copy = cl_xstrdup (target);
          archive_entry_set_hardlink (e, copy);
        }
      drop_overlay_xattrs (e);
      if (archive_entry_filetype (e) == AE_IFREG)
        bytes += archive_entry_size (e);
      if (archive_write_header (out, e) < ARCHIVE_WARN)
        {
          archive_fail (out, r, path, err);
          goto out;
        }
      if (archive_entry_size (e) > 0)
        {
          const void *buf;
          size_t size;
          la_int64_t offset;
          int rr;
          while ((rr = archive_read_data_block (in, &buf, &size, &offset)) == ARCHIVE_OK)
            if (archive_write_data_block (out, buf, size, offset) < ARCHIVE_OK)
              {
                archive_fail (out, r, path, err);
                goto out;
              }
          if (rr != ARCHIVE_EOF)
            {
              archive_fail (in, r, path, err);
              goto out;
            }
        }
      if (archive_write_finish_entry (out) < ARCHIVE_WARN)
        {
          archive_fail (out, r, path, err);
          goto out;
        }
    }
  if (ar != ARCHIVE_EOF)
    {
      archive_fail (in, r, entries ? "corrupted archive" : "not a tar archive", err);
      goto out;
    }
  if (archive_write_close (out) != ARCHIVE_OK)
    {
      archive_fail (out, r, "finish", err);
      goto out;
    }
  if (reader_drain (r) < 0)
    {
      cl_error_make (err, r->error, "read");
      goto out;
    }
  for (size_t i = 0; i < n_opaque; i++)
    if (apply_opaque (rootfd, opaque[i], err) < 0)
      goto out;
  if (fchmod (rootfd, 0755) < 0)
    {
      cl_error_errno (err, "chmod `%s`", dir);
      goto out;
    }
  if (progress)
    progress (opaque_arg, what, r->done, total, 1);
  if (unpacked)
    *unpacked = bytes;
  ret = 0;
out:
  if (cwd >= 0 && fchdir (cwd) < 0)
    ret = cl_error_errno (err, "chdir back");
  archive_read_free (in);
  archive_write_free (out);
  cl_strv_free_n (opaque, n_opaque);
  free (r);
  return ret;
}
