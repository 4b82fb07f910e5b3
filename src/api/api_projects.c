/* SPDX-License-Identifier: Apache-2.0 */
/* /1.0/projects: Cloisonfile projects (src/manager/project.h).  The
   client parses and checks the file (its errors name FILE:LINE:COL) and
   sends the parsed project as JSON, which is checked again here (400 with
   the field's JSON path).  up, down and provision are operations: the
   planner runs in a child process (cl_mgr_project_run_captured) and each
   line it prints is added to the operation's metadata as it comes:
   {"output": [...], "errors": [...], "exit_code": N}. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "manager/project.h"

#include <stdlib.h>
#include <string.h>

void
cl_api_projects_list (struct api_call *c)
{
  struct cl_manager *m;
  cl_error_t err = NULL;
  json_t *list = NULL, *p;
  long recursion;
  size_t i;

  if (cl_api_query_int (c, "recursion", 0, 1, 0, &recursion) < 0)
    return;
  if (cl_api_manager_get (c->ctx, &m, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return;
    }
  if (cl_mgr_project_list (m, c->params[0], &list, &err) < 0)
    {
      cl_api_manager_put (c->ctx, m);
      cl_api_reply_cl_error (c, &err);
      return;
    }
  cl_api_manager_put (c->ctx, m);
  if (c->params[0])
    {
      cl_api_reply_sync (c, 200, json_incref (json_array_get (list, 0)));
      json_decref (list);
      return;
    }
  if (recursion == 0)
    json_array_foreach (list, i, p)
        json_array_set_new (list, i,
                            json_string_nocheck (cl_api_url (
                                "/1.0/projects/", json_string_value (json_object_get (p, "id")))));
  cl_api_reply_sync (c, 200, list);
}

static const struct api_field project_fields[] = {
  { "project", API_OBJECT, true, NULL },
  { "machines", API_STRING_ARRAY, false, NULL },
  { "recreate", API_BOOL, false, NULL },
  { "provision", API_BOOL, false, NULL },
  { "destroy", API_BOOL, false, NULL },
  { "volumes", API_BOOL, false, NULL },
  { NULL, 0, false, NULL },
};

/* The body's project, checked, and that it is the one of the URL; else
   replies 400 (or 404) and returns NULL. */
static struct cl_project *
body_project (struct api_call *c)
{
  struct cl_project *p = NULL;
  cl_error_t err = NULL;
  json_t *names = json_object_get (c->body, "machines"), *e;
  size_t i;

  if (cl_api_check_body (c, project_fields, true) < 0)
    return NULL;
  if (cl_mgr_project_from_json (json_object_get (c->body, "project"), &p, &err) < 0)
    {
      /* "PATH: why" */
      const char *colon = strstr (err->msg, ": ");
      cleanup_free char *path
          = cl_strdup_printf ("project.%.*s", colon ? (int)(colon - err->msg) : 0, err->msg);
      cl_api_reply_bad_field (c, path, "project.%s", err->msg);
      cl_error_release (&err);
      return NULL;
    }
  if (strcmp (cl_mgr_project_id (p), c->params[0]) != 0)
    {
      cl_api_reply_bad_field (c, "project.id", "project.id: `%s` is not the URL's project `%s`",
                              cl_mgr_project_id (p), c->params[0]);
      cl_mgr_project_free (p);
      return NULL;
    }
  json_array_foreach (names, i, e)
  {
    cleanup_free char *inst = cl_mgr_project_instance (p, json_string_value (e));
    if (inst == NULL)
      {
        cl_api_reply_bad_field (c, "machines", "machines[%zu]: no machine `%s` in the project", i,
                                json_string_value (e));
        cl_mgr_project_free (p);
        return NULL;
      }
  }
  return p;
}

void
cl_api_project_status (struct api_call *c)
{
  cleanup_project struct cl_project *p = body_project (c);
  struct cl_manager *m;
  cl_error_t err = NULL;
  json_t *rows = NULL;
  int r;

  if (p == NULL)
    return;
  if (cl_api_manager_get (c->ctx, &m, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return;
    }
  r = cl_mgr_project_status (m, p, &rows, &err);
  cl_api_manager_put (c->ctx, m);
  if (r < 0)
    cl_api_reply_cl_error (c, &err);
  else
    cl_api_reply_sync (c, 200, rows);
}

/* --- up, down, provision: operations --- */

struct lines
{
  struct api_op *op;
  json_t *meta; /* {output, errors, exit_code} */
};

static void
on_line (void *opaque, bool is_err, const char *line)
{
  struct lines *l = opaque;

  json_array_append_new (json_object_get (l->meta, is_err ? "errors" : "output"),
                         json_string (line));
  cl_api_op_set_metadata (l->op, json_deep_copy (l->meta), NULL);
}

static int
op_project (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  cleanup_json json_t *meta = json_pack ("{s:[], s:[], s:n}", "output", "errors", "exit_code");
  struct lines l = { .op = op, .meta = meta };
  int code = 0, r;

  (void)m;
  r = cl_mgr_project_run_captured (cl_api_op_ctx (op)->root, args, on_line, &l, &code, err);
  json_object_set_new (meta, "exit_code", r < 0 ? json_integer (-1) : json_integer (code));
  cl_api_op_set_metadata (op, json_incref (meta), NULL);
  return r;
}

static const struct api_op_kind up_kind = {
  .description = "Bringing a project up",
  .fn = op_project,
  .lifecycle_action = "project-up",
};
static const struct api_op_kind down_kind = {
  .description = "Bringing a project down",
  .fn = op_project,
  .lifecycle_action = "project-down",
};
static const struct api_op_kind provision_kind = {
  .description = "Provisioning a project",
  .fn = op_project,
  .lifecycle_action = "project-provisioned",
};

static void
start (struct api_call *c, const struct api_op_kind *kind, const char *verb)
{
  cleanup_project struct cl_project *p = body_project (c);
  cleanup_free char *url = NULL, *key = NULL;
  json_t *args;

  if (p == NULL)
    return;
  if (strcmp (verb, "down") != 0
      && (json_object_get (c->body, "destroy") || json_object_get (c->body, "volumes")))
    {
      cl_api_reply_bad_field (c, "destroy", "destroy, volumes: only for down");
      return;
    }
  if (strcmp (verb, "up") != 0
      && (json_object_get (c->body, "recreate") || json_object_get (c->body, "provision")))
    {
      cl_api_reply_bad_field (c, "recreate", "recreate, provision: only for up");
      return;
    }
  if (json_is_true (json_object_get (c->body, "volumes"))
      && !json_is_true (json_object_get (c->body, "destroy")))
    {
      cl_api_reply_bad_field (c, "volumes", "volumes: goes with destroy");
      return;
    }
  url = cl_api_url ("/1.0/projects/", c->params[0]);
  key = cl_strdup_printf ("project:%s", c->params[0]);
  args = json_deep_copy (c->body);
  json_object_set_new (args, "verb", json_string (verb));
  cl_api_op_start_for (c, kind, key, json_pack ("{s:[s]}", "projects", url), url, false, args);
}

void
cl_api_project_up (struct api_call *c)
{
  start (c, &up_kind, "up");
}

void
cl_api_project_down (struct api_call *c)
{
  start (c, &down_kind, "down");
}

void
cl_api_project_provision (struct api_call *c)
{
  start (c, &provision_kind, "provision");
}
