/* SPDX-License-Identifier: Apache-2.0 */
/* The destination's side of `cloison move` (docs/move.md): the archive of
   the instance's files arrives in pieces (PUT .../upload?offset=N, raw
   bytes, each under the body limit), into ROOT/incoming/NAME.tar; then
   POST .../receive makes the instance from it (an operation).  Nothing is
   an instance before receive: a transfer cut midway leaves only the
   archive, which receive (either way) and the next daemon start remove. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* an archive no piece was added to for this long is a mover's that died */
#define MOVE_STALE_S 3600

static char *
incoming_dir (const char *root)
{
  return cl_strdup_printf ("%s/incoming", root);
}

static char *
archive_path (const char *root, const char *name)
{
  return cl_strdup_printf ("%s/incoming/%s.tar", root, name);
}

/* Drops archives of movers that died while this daemon lived. */
static void
sweep_stale (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  time_t now = time (NULL);

  if (d == NULL)
    return;
  while ((e = readdir (d)))
    {
      struct stat st;
      if (e->d_name[0] != '.' && fstatat (dirfd (d), e->d_name, &st, 0) == 0
          && st.st_mtime + MOVE_STALE_S < now)
        unlinkat (dirfd (d), e->d_name, 0);
    }
  closedir (d);
}

/* A 409 when the instance exists, 0 when not (-1 after replying). */
static int
instance_absent (struct api_call *c, const char *name)
{
  struct cl_manager *m;
  cl_error_t err = NULL;
  json_t *info = NULL;
  int r;

  if (cl_api_manager_get (c->ctx, &m, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return -1;
    }
  r = cl_mgr_instance_info (m, name, &info, &err);
  cl_api_manager_put (c->ctx, m);
  json_decref (info);
  if (r == 0)
    {
      cl_api_reply_error (c, 409, "instance `%s` already exists", name);
      return -1;
    }
  cl_error_release (&err);
  return 0;
}

void
cl_api_instance_upload (struct api_call *c)
{
  const char *name = c->params[0];
  const char *off = json_string_value (json_object_get (c->query, "offset"));
  cleanup_free char *dir = incoming_dir (c->ctx->root);
  cleanup_free char *path = archive_path (c->ctx->root, name);
  cleanup_close int fd = -1;
  cl_error_t err = NULL;
  struct stat st;
  char *end;
  unsigned long long offset;

  if (cl_validate_name (name, "instance name", &err) < 0)
    {
      cl_api_reply_error (c, 400, "%s", err->msg);
      cl_error_release (&err);
      return;
    }
  errno = 0;
  offset = off ? strtoull (off, &end, 10) : 0;
  if (off == NULL || *off == '\0' || *end != '\0' || errno)
    {
      cl_api_reply_error (c, 400, "offset: expected a number of bytes");
      return;
    }
  if (offset == 0 && instance_absent (c, name) < 0)
    return;
  if (offset == 0)
    sweep_stale (dir);
  if (cl_mkdir_p (dir, 0700, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return;
    }
  fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC | (offset == 0 ? O_TRUNC : 0), 0600);
  if (fd < 0 || fstat (fd, &st) < 0)
    {
      cl_api_reply_error (c, 500, "open `%s`: %s", path, strerror (errno));
      return;
    }
  /* pieces in order only: a repeated or lost one is told, with the size
     the archive has */
  if ((unsigned long long)st.st_size != offset)
    {
      cl_api_reply_error (c, 409, "offset %llu: the archive of `%s` has %lld bytes", offset, name,
                          (long long)st.st_size);
      return;
    }
  if (lseek (fd, 0, SEEK_END) < 0 || cl_write_all (fd, c->req->body, c->req->body_len) < 0)
    {
      cl_api_reply_error (c, 500, "write `%s`: %s", path, strerror (errno));
      return;
    }
  cl_api_reply_sync (c, 200, json_pack ("{s:I}", "size", (json_int_t)(offset + c->req->body_len)));
}

static int
op_receive (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  const char *archive = json_string_value (json_object_get (args, "archive"));
  json_t *layers = json_object_get (args, "image_layers"), *l;
  char **v = NULL;
  size_t i;
  int r;

  (void)op;
  if (json_is_array (layers))
    {
      v = cl_xmalloc0 ((json_array_size (layers) + 1) * sizeof *v);
      json_array_foreach (layers, i, l) v[i] = (char *)json_string_value (l);
    }
  r = cl_mgr_instance_receive (m, json_string_value (json_object_get (args, "name")),
                               json_string_value (json_object_get (args, "kind")),
                               json_object_get (args, "config"), archive, v, err);
  free (v);
  unlink (archive);
  return r;
}

static const struct api_op_kind kind_receive = { .description = "Receiving instance",
                                                 .fn = op_receive,
                                                 .lifecycle_action = "instance-created" };

static const struct api_field receive_fields[] = {
  { "type", API_STRING, true, NULL },
  { "config", API_OBJECT, true, NULL },
  { "size", API_INT, true, NULL },
  /* the image's layers (lowest first) when the archive holds the image */
  { "image_layers", API_STRING_ARRAY, false, NULL },
  { NULL, 0, false, NULL },
};

void
cl_api_instance_receive (struct api_call *c)
{
  const char *name = c->params[0];
  const char *type;
  cleanup_free char *path = archive_path (c->ctx->root, name);
  struct stat st;

  if (cl_api_check_body (c, receive_fields, true) < 0)
    return;
  type = json_string_value (json_object_get (c->body, "type"));
  if (strcmp (type, "container") != 0 && strcmp (type, "virtual-machine") != 0)
    {
      cl_api_reply_bad_field (c, "type", "type: expected container or virtual-machine, got `%s`",
                              type);
      return;
    }
  if (stat (path, &st) < 0)
    {
      cl_api_reply_error (c, 404, "no archive uploaded for `%s`", name);
      return;
    }
  if (st.st_size != json_integer_value (json_object_get (c->body, "size")))
    {
      cl_api_reply_bad_field (c, "size", "size: the archive of `%s` has %lld bytes, not %lld", name,
                              (long long)st.st_size,
                              (long long)json_integer_value (json_object_get (c->body, "size")));
      return;
    }
  if (instance_absent (c, name) < 0)
    return;
  cl_api_op_start (c, &kind_receive, name, NULL,
                   json_pack ("{s:s, s:s, s:O, s:s, s:O?}", "name", name, "kind",
                              strcmp (type, "container") == 0 ? "container" : "vm", "config",
                              json_object_get (c->body, "config"), "archive", path, "image_layers",
                              json_object_get (c->body, "image_layers")));
}
