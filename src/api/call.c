/* SPDX-License-Identifier: Apache-2.0 */
/* Calls run to their end, on whatever sends the requests (the CLI's
   transports, a remote over HTTPS): the error envelope made an error, a
   202's operation waited for, its metadata given back. */
#include "api/remote.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <stdio.h>
#include <string.h>

/* an operation's wait is asked in slices (GET .../wait?timeout=N): no
   connection sits idle long enough for the daemon's timeout */
#define WAIT_SLICE_S 20

static int
send_req (const struct cl_api_caller *c, const struct cl_api_request *req,
          struct cl_api_response *resp, cl_error_t *err)
{
  memset (resp, 0, sizeof *resp);
  return c->send (c->state, req, resp, err);
}

/* The message of an error envelope (or a word for what came instead). */
static int
response_error (const struct cl_api_request *req, struct cl_api_response *resp, cl_error_t *err)
{
  const char *msg = json_string_value (json_object_get (resp->json, "error"));
  if (msg)
    return cl_error_make (err, 0, "%s", msg);
  return cl_error_make (err, 0, "%s %s: HTTP status %d", req->method, req->path, resp->status);
}

int
cl_api_wait_operation (const struct cl_api_caller *c, const char *url,
                       const volatile sig_atomic_t *stop, json_t **out, cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("%s/wait", url);
  bool cancelled = false;
  char query[32];

  /* with a stop flag, short waits: it is read between two */
  snprintf (query, sizeof query, "timeout=%d", stop ? 1 : WAIT_SLICE_S);
  for (;;)
    {
      struct cl_api_request req = { .method = "GET", .path = path, .query = query };
      struct cl_api_response resp;
      json_t *op;
      const char *status;
      int r = 0;

      if (send_req (c, &req, &resp, err) < 0)
        return -1;
      op = json_object_get (resp.json, "metadata");
      status = json_string_value (json_object_get (op, "status"));
      if (resp.status != 200 || status == NULL)
        r = response_error (&req, &resp, err);
      else if (strcmp (status, "pending") == 0 || strcmp (status, "running") == 0)
        {
          cl_api_response_clear (&resp);
          if (stop && *stop && !cancelled)
            {
              struct cl_api_request del = { .method = "DELETE", .path = url };
              cancelled = true;
              if (send_req (c, &del, &resp, err) < 0)
                return -1;
              cl_api_response_clear (&resp);
            }
          continue;
        }
      else if (strcmp (status, "success") != 0)
        {
          const char *msg = json_string_value (json_object_get (op, "err"));
          r = cl_error_make (err, 0, "%s", msg && *msg ? msg : status);
        }
      else if (out)
        *out = json_incref (json_object_get (op, "metadata"));
      cl_api_response_clear (&resp);
      return r;
    }
}

int
cl_api_call (const struct cl_api_caller *c, const struct cl_api_request *req,
             const volatile sig_atomic_t *stop, json_t **out, cl_error_t *err)
{
  struct cl_api_response resp;
  int r = 0;

  if (out)
    *out = NULL;
  if (send_req (c, req, &resp, err) < 0)
    return -1;
  if (resp.status == 202)
    {
      const char *op = json_string_value (json_object_get (resp.json, "operation"));
      r = op ? cl_api_wait_operation (c, op, stop, out, err)
             : cl_error_make (err, 0, "%s %s: no operation in a 202", req->method, req->path);
    }
  else if (resp.status >= 300 || resp.json == NULL)
    r = response_error (req, &resp, err);
  else if (out)
    *out = json_incref (json_object_get (resp.json, "metadata"));
  cl_api_response_clear (&resp);
  return r;
}

int
cl_api_call_json (const struct cl_api_caller *c, const char *method, const char *path,
                  const char *query, json_t *body, const volatile sig_atomic_t *stop, json_t **out,
                  cl_error_t *err)
{
  cleanup_free char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
  struct cl_api_request req = {
    .method = method,
    .path = path,
    .query = query,
    .body = text,
    .body_len = text ? strlen (text) : 0,
  };
  return cl_api_call (c, &req, stop, out, err);
}

static int
remote_send (void *state, const struct cl_api_request *req, struct cl_api_response *resp,
             cl_error_t *err)
{
  return cl_api_remote_request (state, req, resp, err);
}

struct cl_api_caller
cl_api_remote_caller (const struct cl_api_remote *remote)
{
  return (struct cl_api_caller){ .send = remote_send, .state = (void *)remote };
}
