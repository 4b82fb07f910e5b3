/* SPDX-License-Identifier: Apache-2.0 */
/* /1.0/volumes over src/manager/volume.h: synchronous calls on a pooled
   manager handle (a volume's calls hold its lock, so two requests on one
   volume take turns). */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/volume.h"

#include <stdlib.h>
#include <string.h>

/* Runs fn on a pooled manager handle; replies with its error (404,
   409...) and returns -1, else 0. */
static int
with_manager (struct api_call *c,
              int (*fn) (struct api_call *c, struct cl_manager *m, json_t **out, cl_error_t *err),
              json_t **out)
{
  struct cl_manager *m;
  cl_error_t err = NULL;
  int r;

  if (cl_api_manager_get (c->ctx, &m, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return -1;
    }
  r = fn (c, m, out, &err);
  cl_api_manager_put (c->ctx, m);
  if (r < 0)
    cl_api_reply_cl_error (c, &err);
  return r;
}

/* The event of a change to the volume, then the reply (steals j). */
static void
reply_volume (struct api_call *c, int status, const char *action, json_t *j)
{
  cleanup_free char *url = cl_api_url ("/1.0/volumes/", c->params[0]);
  cl_api_lifecycle (c->ctx, action, url);
  cl_api_reply_sync (c, status, j);
}

static int
do_list (struct api_call *c, struct cl_manager *m, json_t **out, cl_error_t *err)
{
  (void)c;
  return cl_mgr_volume_list (m, out, err);
}

void
cl_api_volumes_list (struct api_call *c)
{
  json_t *list;
  long recursion;

  if (cl_api_query_int (c, "recursion", 0, 1, 0, &recursion) < 0
      || with_manager (c, do_list, &list) < 0)
    return;
  if (recursion == 0)
    cl_api_names_to_urls (list, "/1.0/volumes/");
  cl_api_reply_sync (c, 200, list);
}

static int
do_get (struct api_call *c, struct cl_manager *m, json_t **out, cl_error_t *err)
{
  return cl_mgr_volume_info (m, c->params[0], out, err);
}

void
cl_api_volume_get (struct api_call *c)
{
  json_t *j;

  if (with_manager (c, do_get, &j) == 0)
    cl_api_reply_sync (c, 200, j);
}

static const struct api_field create_fields[] = {
  { "name", API_STRING, true, NULL },
  { "size", API_SCALAR, false, NULL },
  { "source", API_STRING, false, NULL },
  { NULL, 0, false, NULL },
};

static int
do_create (struct api_call *c, struct cl_manager *m, json_t **out, cl_error_t *err)
{
  const char *name = json_string_value (json_object_get (c->body, "name"));
  uint64_t size = (uint64_t)json_integer_value (json_object_get (*out, "size"));

  const char *source = json_string_value (json_object_get (c->body, "source"));

  json_decref (*out);
  *out = NULL;
  if ((source ? cl_mgr_volume_copy (m, source, name, err)
              : cl_mgr_volume_create (m, name, size, err))
      < 0)
    return -1;
  return cl_mgr_volume_info (m, name, out, err);
}

void
cl_api_volumes_create (struct api_call *c)
{
  cl_error_t err = NULL;
  json_t *size = NULL, *j;
  uint64_t bytes = 0;

  if (cl_api_check_body (c, create_fields, true) < 0)
    return;
  if (cl_validate_name (json_string_value (json_object_get (c->body, "name")), "volume name", &err)
      < 0)
    {
      cl_api_reply_bad_field (c, "name", "%s", err->msg);
      cl_error_release (&err);
      return;
    }
  size = json_object_get (c->body, "size");
  if (json_is_integer (size) && json_integer_value (size) >= 0)
    bytes = (uint64_t)json_integer_value (size);
  else if (size
           && (!json_is_string (size)
               || cl_parse_size (json_string_value (size), "size", &bytes, &err) < 0))
    {
      cl_api_reply_bad_field (c, "size", "size: expected bytes or a size (64M), got %s",
                              json_is_string (size) ? json_string_value (size) : "a number < 0");
      cl_error_release (&err);
      return;
    }
  j = json_pack ("{s:I}", "size", (json_int_t)bytes);
  if (with_manager (c, do_create, &j) < 0)
    return;
  {
    cleanup_free char *url
        = cl_api_url ("/1.0/volumes/", json_string_value (json_object_get (c->body, "name")));
    cl_api_lifecycle (c->ctx, "volume-created", url);
  }
  cl_api_reply_sync (c, 201, j);
}

static int
do_delete (struct api_call *c, struct cl_manager *m, json_t **out, cl_error_t *err)
{
  (void)out;
  return cl_mgr_volume_delete (m, c->params[0], err);
}

void
cl_api_volume_delete (struct api_call *c)
{
  if (with_manager (c, do_delete, NULL) == 0)
    reply_volume (c, 200, "volume-deleted", NULL);
}

static const struct api_field attach_fields[] = {
  { "instance", API_STRING, true, NULL },
  { "path", API_STRING, true, NULL },
  { "readonly", API_BOOL, false, NULL },
  { NULL, 0, false, NULL },
};

static int
do_attach (struct api_call *c, struct cl_manager *m, json_t **out, cl_error_t *err)
{
  bool pending;

  if (cl_mgr_volume_attach (m, c->params[0],
                            json_string_value (json_object_get (c->body, "instance")),
                            json_string_value (json_object_get (c->body, "path")),
                            json_is_true (json_object_get (c->body, "readonly")), &pending, err)
      < 0)
    return -1;
  *out = json_pack ("{s:b}", "pending", pending);
  return 0;
}

void
cl_api_volume_attach (struct api_call *c)
{
  json_t *j;

  if (cl_api_check_body (c, attach_fields, true) < 0 || with_manager (c, do_attach, &j) < 0)
    return;
  reply_volume (c, 200, "volume-attached", j);
}

static int
do_detach (struct api_call *c, struct cl_manager *m, json_t **out, cl_error_t *err)
{
  bool pending;

  if (cl_mgr_volume_detach (m, c->params[0], c->params[1], &pending, err) < 0)
    return -1;
  *out = json_pack ("{s:b}", "pending", pending);
  return 0;
}

void
cl_api_volume_detach (struct api_call *c)
{
  json_t *j;

  if (with_manager (c, do_detach, &j) < 0)
    return;
  reply_volume (c, 200, "volume-detached", j);
}

static const struct api_field snapshot_fields[] = {
  { "name", API_STRING, true, NULL },
  { NULL, 0, false, NULL },
};

static int
do_snapshot (struct api_call *c, struct cl_manager *m, json_t **out, cl_error_t *err)
{
  (void)out;
  return cl_mgr_volume_snapshot_create (m, c->params[0],
                                        json_string_value (json_object_get (c->body, "name")), err);
}

void
cl_api_volume_snapshots_create (struct api_call *c)
{
  if (cl_api_check_body (c, snapshot_fields, true) == 0 && with_manager (c, do_snapshot, NULL) == 0)
    reply_volume (c, 201, "volume-snapshot-created", NULL);
}

static int
do_restore (struct api_call *c, struct cl_manager *m, json_t **out, cl_error_t *err)
{
  (void)out;
  return cl_mgr_volume_snapshot_restore (m, c->params[0], c->params[1], err);
}

void
cl_api_volume_snapshot_restore (struct api_call *c)
{
  if (with_manager (c, do_restore, NULL) == 0)
    reply_volume (c, 200, "volume-snapshot-restored", NULL);
}

static int
do_snapshot_delete (struct api_call *c, struct cl_manager *m, json_t **out, cl_error_t *err)
{
  (void)out;
  return cl_mgr_volume_snapshot_delete (m, c->params[0], c->params[1], err);
}

void
cl_api_volume_snapshot_delete (struct api_call *c)
{
  if (with_manager (c, do_snapshot_delete, NULL) == 0)
    reply_volume (c, 200, "volume-snapshot-deleted", NULL);
}
