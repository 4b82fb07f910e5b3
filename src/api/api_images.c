/* SPDX-License-Identifier: Apache-2.0 */
/* /1.0/images over the image store (src/image/image.h). */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "image/image.h"

#include <stdlib.h>
#include <string.h>

static json_t *
image_json (const struct cl_image_info *v)
{
  json_t *names = json_array ();
  for (char **nm = v->names; *nm; nm++)
    json_array_append_new (names, json_string (*nm));
  return json_pack ("{s:s, s:o, s:I, s:I, s:I, s:I}", "id", v->id, "names", names, "created",
                    (json_int_t)v->created, "size", (json_int_t)v->size, "layers",
                    (json_int_t)v->n_layers, "uses", (json_int_t)v->n_uses);
}

/* The store, or NULL after replying. */
static struct cl_image_store *
store_open (struct api_call *c)
{
  struct cl_image_store *s = NULL;
  cl_error_t err = NULL;

  if (cl_img_store_open (c->ctx->root, &s, &err) < 0)
    cl_api_reply_cl_error (c, &err);
  return s;
}

/* Closes the store; r < 0: replies with the error. */
static int
store_close (struct api_call *c, struct cl_image_store *s, int r, cl_error_t *err)
{
  cl_img_store_close (s);
  if (r < 0)
    cl_api_reply_cl_error (c, err);
  return r;
}

void
cl_api_images_list (struct api_call *c)
{
  struct cl_image_store *s = NULL;
  struct cl_image_info *v = NULL;
  cl_error_t err = NULL;
  json_t *list;
  size_t n = 0;
  long recursion;

  if (cl_api_query_int (c, "recursion", 0, 1, 0, &recursion) < 0)
    return;
  if ((s = store_open (c)) == NULL || store_close (c, s, cl_img_list (s, &v, &n, &err), &err) < 0)
    return;
  list = json_array ();
  for (size_t i = 0; i < n; i++)
    if (recursion)
      json_array_append_new (list, image_json (&v[i]));
    else
      {
        char *url = cl_api_url ("/1.0/images/", v[i].id);
        json_array_append_new (list, json_string (url));
        free (url);
      }
  cl_img_info_free (v, n);
  cl_api_reply_sync (c, 200, list);
}

void
cl_api_image_get (struct api_call *c)
{
  struct cl_image_store *s = NULL;
  cleanup_free char *out = NULL;
  cl_error_t err = NULL;
  json_t *j;

  if ((s = store_open (c)) == NULL
      || store_close (c, s, cl_img_inspect_json (s, c->params[0], &out, &err), &err) < 0)
    return;
  if (cl_json_load_buffer ("image", out, strlen (out), &j, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return;
    }
  cl_api_reply_sync (c, 200, j);
}

void
cl_api_image_delete (struct api_call *c)
{
  struct cl_image_store *s = NULL;
  cl_error_t err = NULL;

  if ((s = store_open (c)) == NULL
      || store_close (c, s, cl_img_remove (s, c->params[0], &err), &err) < 0)
    return;
  {
    cleanup_free char *url = cl_api_url ("/1.0/images/", c->params[0]);
    cl_api_lifecycle (c->ctx, "image-deleted", url);
  }
  cl_api_reply_sync (c, 200, NULL);
}

/* ---- import and pull (async, with progress) ---- */

struct progress
{
  struct api_op *op;
  uint64_t last_ns;
};

/* At most 5 operation events a second, and the last of each item. */
static void
on_progress (void *opaque, const char *what, uint64_t done, uint64_t total, int finished)
{
  struct progress *p = opaque;
  uint64_t now = cl_now_ns ();

  if (!finished && now - p->last_ns < 200000000)
    return;
  p->last_ns = now;
  cl_api_op_set_metadata (p->op,
                          json_pack ("{s:{s:s, s:I, s:I, s:b}}", "progress", "what", what, "done",
                                     (json_int_t)done, "total", (json_int_t)total, "finished",
                                     finished),
                          NULL);
}

static int
op_image_fetch (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  json_t *src = json_object_get (args, "source");
  const char *type = json_string_value (json_object_get (src, "type"));
  const char *name = json_string_value (json_object_get (args, "name"));
  struct progress p = { .op = op };
  struct cl_image_store *s = NULL;
  cleanup_free char *id = NULL, *url = NULL;
  int r;
  (void)m;

  if (cl_img_store_open (cl_api_op_ctx (op)->root, &s, err) < 0)
    return -1;
  if (strcmp (type, "path") == 0)
    {
      struct cl_image_import_opts o
          = { .name = name, .progress = on_progress, .progress_opaque = &p };
      r = cl_img_import (s, json_string_value (json_object_get (src, "path")), &o, &id, err);
    }
  else
    {
      struct cl_image_pull_opts o = {
        .name = name,
        .username = json_string_value (json_object_get (src, "username")),
        .password = json_string_value (json_object_get (src, "password")),
        .insecure = json_is_true (json_object_get (src, "insecure")),
        .platform = json_string_value (json_object_get (src, "platform")),
        .ca_file = json_string_value (json_object_get (src, "ca_file")),
        .progress = on_progress,
        .progress_opaque = &p,
      };
      r = cl_img_pull (s, json_string_value (json_object_get (src, "ref")), &o, &id, err);
    }
  cl_img_store_close (s);
  if (r < 0)
    return -1;
  url = cl_api_url ("/1.0/images/", id);
  cl_api_op_set_metadata (op, json_pack ("{s:s}", "id", id), url);
  return 0;
}

/* cancellable: the download stops (its partial blob removed) or the
   unpacking does, and the layers this import added are removed */
static const struct api_op_kind kind_image_fetch = { .description = "Fetching image",
                                                     .fn = op_image_fetch,
                                                     .lifecycle_action = "image-created",
                                                     .cancellable = true };

/* 400 when name (NULL: none) is no NAME[:TAG]; 0, or -1 after replying. */
static int
name_check (struct api_call *c, const char *name)
{
  cleanup_free char *n = NULL, *t = NULL;
  cl_error_t err = NULL;

  if (name == NULL || cl_img_name_parse (name, &n, &t, &err) == 0)
    return 0;
  cl_api_reply_bad_field (c, "name", "name: %s", err->msg);
  cl_error_release (&err);
  return -1;
}

/* An uploaded archive imported: the import of a path, the upload's
   file; removed once imported, or not (the operation keeps a reference
   to its upload until it is dropped, which would remove it too). */
static int
op_image_upload (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  int r = op_image_fetch (op, m, args, err);
  cl_api_upload_remove (cl_api_op_data (op));
  return r;
}

static const struct api_op_kind kind_image_upload = { .description = "Importing uploaded image",
                                                      .fn = op_image_upload,
                                                      .lifecycle_action = "image-created",
                                                      .data_ref = cl_api_upload_ref,
                                                      .data_unref = cl_api_upload_unref,
                                                      .cancellable = true };

/* POST /1.0/images with an archive as the body (streamed to a file by
   the server): its digest checked, then imported by an operation. */
static void
images_upload (struct api_call *c)
{
  struct cl_api_upload *u = c->req->upload;
  const char *name = json_string_value (json_object_get (c->query, "name"));
  const char *digest = c->req->digest, *field = "X-Cloison-Digest";
  cleanup_free char *key = NULL;

  if (digest == NULL && (digest = json_string_value (json_object_get (c->query, "digest"))))
    field = "digest";
  if (digest
      && (strncmp (digest, "sha256:", 7) != 0 || strlen (digest + 7) != 64
          || strspn (digest + 7, "0123456789abcdef") != 64))
    {
      cl_api_reply_bad_field (
          c, field, "%s: expected sha256:HEX (64 lowercase hex digits), got `%s`", field, digest);
      return;
    }
  if (digest && strcmp (digest + 7, cl_api_upload_sha256 (u)) != 0)
    {
      cl_api_reply_bad_field (
          c, field, "%s: the upload's %llu bytes have the digest sha256:%s, not %s", field,
          (unsigned long long)cl_api_upload_size (u), cl_api_upload_sha256 (u), digest);
      return;
    }
  if (name_check (c, name) < 0)
    return;
  key = cl_strdup_printf ("image-upload:%s", cl_api_upload_path (u));
  cl_api_op_start_data (c, &kind_image_upload, key, json_pack ("{s:[]}", "images"), "/1.0/images",
                        json_pack ("{s:{s:s, s:s}, s:s?}", "source", "type", "path", "path",
                                   cl_api_upload_path (u), "name", name),
                        json_pack ("{s:s, s:I}", "sha256", cl_api_upload_sha256 (u), "size",
                                   (json_int_t)cl_api_upload_size (u)),
                        cl_api_upload_ref (u));
}

static const struct api_field image_source_fields[] = {
  { "type", API_STRING, true, NULL },
  { "ref", API_STRING, false, NULL },
  { "path", API_STRING, false, NULL },
  { "insecure", API_BOOL, false, NULL },
  { "username", API_STRING, false, NULL },
  { "password", API_STRING, false, NULL },
  { "platform", API_STRING, false, NULL },
  { "ca_file", API_STRING, false, NULL },
  { NULL, 0, false, NULL },
};

static const struct api_field image_create_fields[] = {
  { "source", API_OBJECT, true, image_source_fields },
  { "name", API_STRING, false, NULL },
  { NULL, 0, false, NULL },
};

void
cl_api_images_create (struct api_call *c)
{
  json_t *src;
  const char *type, *name, *what, *key_field;
  cl_error_t err = NULL;
  cleanup_free char *key = NULL;

  if (c->req->upload)
    {
      images_upload (c);
      return;
    }
  if (cl_api_check_body (c, image_create_fields, true) < 0)
    return;
  src = json_object_get (c->body, "source");
  type = json_string_value (json_object_get (src, "type"));
  name = json_string_value (json_object_get (c->body, "name"));
  if (strcmp (type, "registry") != 0 && strcmp (type, "path") != 0)
    {
      cl_api_reply_bad_field (c, "source.type", "source.type: expected registry or path, got `%s`",
                              type);
      return;
    }
  key_field = strcmp (type, "path") == 0 ? "path" : "ref";
  what = json_string_value (json_object_get (src, key_field));
  if (what == NULL)
    {
      cl_api_reply_bad_field (c, strcmp (type, "path") == 0 ? "source.path" : "source.ref",
                              "source.%s: required field missing", key_field);
      return;
    }
  if (strcmp (type, "path") == 0 ? what[0] != '/' : false)
    {
      cl_api_reply_bad_field (c, "source.path", "source.path: `%s` is not an absolute path", what);
      return;
    }
  if (strcmp (type, "registry") == 0)
    {
      struct cl_image_ref ref;
      if (cl_img_ref_parse (what, &ref, &err) < 0)
        {
          cl_api_reply_bad_field (c, "source.ref", "source.ref: %s", err->msg);
          cl_error_release (&err);
          return;
        }
      cl_img_ref_clear (&ref);
    }
  if (name_check (c, name) < 0)
    return;
  /* fetches of one reference run one after the other */
  key = cl_strdup_printf ("image:%s", what);
  cl_api_op_start_for (c, &kind_image_fetch, key, json_pack ("{s:[]}", "images"), "/1.0/images",
                       false, json_incref (c->body));
}
