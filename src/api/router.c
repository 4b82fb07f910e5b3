/* SPDX-License-Identifier: Apache-2.0 */
/* The route table and request dispatch: the top of src/api. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static const char *const api_extensions[] = {
  "instances",
  "instance_state",
  "instance_snapshots",
  "instance_logs",
  "images",
  "networks",
  "operations",
  "operation_wait",
  "events_stream",
  "events_websocket",
  "instance_copy",
  "instance_move",          /* PUT .../upload, POST .../receive (docs/move.md) */
  "instance_move_stateful", /* PUT .../state checkpoint; a received checkpoint/ restores */
  "instance_move_live",     /* POST .../receive stateful (VMs), PUT .../state migrate */
  "instance_move_source",   /* POST .../move: this daemon drives a move out */
  "instance_move_volumes",  /* POST .../receive volumes: attached to this host's */
  "instance_move_tunnel",   /* POST .../receive tunnel, GET .../migration: the stream over TLS */
  "images_fetch",
  "container_exec",
  "vm_exec",
  "console",
  "metrics",
  "volumes",
  "projects",
  "certificates",
  "certificate_trust_tokens",
  "ui",
  "instance_put",
  "images_upload",
  "operation_cancel_running",
  NULL,
};

static void
server_get (struct api_call *c)
{
  json_t *ext = json_array (), *info, *tls;
  struct utsname u;

  for (const char *const *e = api_extensions; *e; e++)
    json_array_append_new (ext, json_string (*e));
  info = json_pack ("{s:s, s:s, s:o, s:s}", "api_version", "1.0", "api_status", "development",
                    "api_extensions", ext, "auth",
                    c->access == CL_API_ACCESS_NONE ? "untrusted" : "trusted");
  if (c->access != CL_API_ACCESS_NONE)
    {
      json_object_set_new (info, "auth_read_only", json_boolean (c->access != CL_API_ACCESS_FULL));
      uname (&u);
      tls = cl_api_server_tls_info (c->ctx);
      json_object_set (info, "config", json_object_get (tls, "config"));
      json_object_set_new (
          info, "environment",
          json_pack ("{s:s, s:s, s:s, s:s, s:I, s:O, s:s?}", "server", "cloison", "server_version",
                     CLOISON_VERSION, "kernel_version", u.release, "storage_root", c->ctx->root,
                     "server_pid", (json_int_t)getpid (), "addresses",
                     json_object_get (tls, "addresses"), "certificate_fingerprint",
                     json_string_value (json_object_get (tls, "certificate_fingerprint"))));
      json_decref (tls);
    }
  cl_api_reply_sync (c, 200, info);
}

static void
api_root (struct api_call *c)
{
  cl_api_reply_sync (c, 200, json_pack ("[s]", "/1.0"));
}

static const struct api_route routes[] = {
  { { "GET", "/", "supported API versions" }, api_root },
  { { "GET", "/1.0", "server information and API extensions" }, server_get },
  { { "PATCH", "/1.0", "change server settings (core.https_address)" }, cl_api_server_patch },
  { { "GET", "/1.0/instances", "list instances (recursion=0: URLs, 1: objects)" },
    cl_api_instances_list },
  { { "POST", "/1.0/instances", "create and start an instance from an image, or copy one (async)" },
    cl_api_instances_create },
  { { "GET", "/1.0/instances/{name}", "an instance" }, cl_api_instance_get },
  { { "PATCH", "/1.0/instances/{name}", "change limits.memory / limits.cpu (live)" },
    cl_api_instance_patch },
  { { "PUT", "/1.0/instances/{name}",
      "replace the writable config (keys left out: their defaults; live as PATCH)" },
    cl_api_instance_put },
  { { "DELETE", "/1.0/instances/{name}", "delete an instance (async; force=1 when running)" },
    cl_api_instance_delete },
  { { "GET", "/1.0/instances/{name}/state", "an instance's state" }, cl_api_instance_state_get },
  { { "PUT", "/1.0/instances/{name}/state", "start, stop, restart (async)" },
    cl_api_instance_state_put },
  { { "GET", "/1.0/instances/{name}/logs", "the console log (text)" }, cl_api_instance_logs },
  { { "PUT", "/1.0/instances/{name}/upload",
      "append bytes (offset=N) to the archive of an instance being moved here" },
    cl_api_instance_upload },
  { { "POST", "/1.0/instances/{name}/receive",
      "create an instance moved here from its uploaded archive (async)" },
    cl_api_instance_receive },
  { { "GET", "/1.0/instances/{name}/migration",
      "a live move's migration stream, relayed to the VM's monitor waiting here (websocket,"
      " token=T)" },
    cl_api_instance_migration },
  { { "POST", "/1.0/instances/{name}/move",
      "move an instance to another cloisond, this daemon talking to it (async; local socket only)" },
    cl_api_instance_move },
  { { "POST", "/1.0/instances/{name}/exec", "run a command, its stdio on websockets (async)" },
    cl_api_instance_exec },
  { { "GET", "/1.0/instances/{name}/console", "the console as a websocket (type=console)" },
    cl_api_instance_console },
  { { "GET", "/1.0/instances/{name}/snapshots", "list snapshots" }, cl_api_snapshots_list },
  { { "POST", "/1.0/instances/{name}/snapshots", "create a snapshot (async)" },
    cl_api_snapshots_create },
  { { "GET", "/1.0/instances/{name}/snapshots/{snapshot}", "a snapshot" }, cl_api_snapshot_get },
  { { "POST", "/1.0/instances/{name}/snapshots/{snapshot}", "restore a snapshot (async)" },
    cl_api_snapshot_restore },
  { { "DELETE", "/1.0/instances/{name}/snapshots/{snapshot}", "delete a snapshot (async)" },
    cl_api_snapshot_delete },
  { { "GET", "/1.0/images", "list images" }, cl_api_images_list },
  { { "POST", "/1.0/images", "import from a server path or pull from a registry (async)" },
    cl_api_images_create },
  { { "GET", "/1.0/images/{image}", "an image (name, id or id prefix)" }, cl_api_image_get },
  { { "DELETE", "/1.0/images/{image}", "remove an image name, or an image by id" },
    cl_api_image_delete },
  { { "GET", "/1.0/networks", "list networks" }, cl_api_networks_list },
  { { "POST", "/1.0/networks", "create a network" }, cl_api_networks_create },
  { { "GET", "/1.0/networks/{network}", "a network" }, cl_api_network_get },
  { { "DELETE", "/1.0/networks/{network}", "delete a network" }, cl_api_network_delete },
  { { "GET", "/1.0/volumes", "list volumes" }, cl_api_volumes_list },
  { { "POST", "/1.0/volumes", "create a volume (size: a directory when absent)" },
    cl_api_volumes_create },
  { { "GET", "/1.0/volumes/{volume}", "a volume" }, cl_api_volume_get },
  { { "DELETE", "/1.0/volumes/{volume}", "delete a volume (refused while attached)" },
    cl_api_volume_delete },
  { { "POST", "/1.0/volumes/{volume}/attachments", "attach to an instance (at its next start)" },
    cl_api_volume_attach },
  { { "DELETE", "/1.0/volumes/{volume}/attachments/{instance}", "detach from an instance" },
    cl_api_volume_detach },
  { { "POST", "/1.0/volumes/{volume}/snapshots", "snapshot a volume (copy-on-write)" },
    cl_api_volume_snapshots_create },
  { { "POST", "/1.0/volumes/{volume}/snapshots/{snapshot}", "restore a volume's snapshot" },
    cl_api_volume_snapshot_restore },
  { { "DELETE", "/1.0/volumes/{volume}/snapshots/{snapshot}", "delete a volume's snapshot" },
    cl_api_volume_snapshot_delete },
  { { "GET", "/1.0/projects", "list the projects `up` applied (Cloisonfile)" },
    cl_api_projects_list },
  { { "GET", "/1.0/projects/{project}", "a project as last applied" }, cl_api_projects_list },
  { { "POST", "/1.0/projects/{project}/status", "the machines of a project (body: the project)" },
    cl_api_project_status },
  { { "POST", "/1.0/projects/{project}/up", "bring a project's machines up (async)" },
    cl_api_project_up },
  { { "POST", "/1.0/projects/{project}/down", "stop or delete a project's machines (async)" },
    cl_api_project_down },
  { { "POST", "/1.0/projects/{project}/provision", "run a project's provisioning (async)" },
    cl_api_project_provision },
  { { "GET", "/1.0/operations", "list operations" }, cl_api_operations_list },
  { { "GET", "/1.0/operations/{id}", "an operation" }, cl_api_operation_get },
  { { "DELETE", "/1.0/operations/{id}", "cancel a pending operation" }, cl_api_operation_cancel },
  { { "GET", "/1.0/operations/{id}/wait", "wait for an operation to end (timeout=SECONDS)" },
    cl_api_operation_wait },
  { { "GET", "/1.0/operations/{id}/websocket", "connect one of an exec's websockets (secret=S)" },
    cl_api_operation_websocket },
  { { "GET", "/1.0/certificates", "list trusted client certificates" }, cl_api_certificates_list },
  { { "POST", "/1.0/certificates",
      "trust a certificate, issue a trust token, or redeem one (untrusted clients)" },
    cl_api_certificates_add },
  { { "GET", "/1.0/certificates/{fingerprint}", "a trusted certificate" }, cl_api_certificate_get },
  { { "PATCH", "/1.0/certificates/{fingerprint}", "rename, restrict to read-only or not" },
    cl_api_certificate_patch },
  { { "DELETE", "/1.0/certificates/{fingerprint}", "revoke: its connections are closed" },
    cl_api_certificate_delete },
  { { "GET", "/1.0/events", "a stream of events, one JSON object per line (type=...)" },
    cl_api_events_get },
  { { "GET", "/1.0/metrics", "metrics in the Prometheus text format" }, cl_api_metrics_get },
  { { "POST", "/1.0/ui/links", "a one-time login link for the web console (cloison ui-link)" },
    cl_api_ui_links_create },
};

const struct cl_api_route_info *
cl_api_route (size_t i)
{
  return i < sizeof routes / sizeof routes[0] ? &routes[i].info : NULL;
}

/* Matches a path against a pattern; fills params (decoded) on success.
   Returns 1 match, 0 no match, -1 a segment that does not decode. */
static int
route_match (const char *pattern, const char *path, char **params)
{
  size_t np = 0;
  const char *p = pattern, *s = path;

  while (*p && *s)
    {
      const char *pe = strchr (p, '/') ? strchr (p, '/') : p + strlen (p);
      const char *se = strchr (s, '/') ? strchr (s, '/') : s + strlen (s);
      if (*p == '{')
        {
          if (se == s)
            goto no;
          params[np] = cl_api_url_decode (s, (size_t)(se - s), false);
          if (params[np++] == NULL)
            goto bad;
        }
      else if ((size_t)(pe - p) != (size_t)(se - s) || strncmp (p, s, (size_t)(pe - p)) != 0)
        goto no;
      p = pe;
      s = se;
      if (*p == '/' && *s == '/')
        p++, s++;
      else if (*p || *s)
        goto no;
    }
  if (*p == '\0' && *s == '\0')
    return 1;
no:
  for (size_t i = 0; i < np; i++)
    free (params[i]), params[i] = NULL;
  return 0;
bad:
  for (size_t i = 0; i < np; i++)
    free (params[i]), params[i] = NULL;
  return -1;
}

/* An untrusted client may only learn what the server is and present a
   trust token; a read-only one only reads.  Checked before routing, so
   that an untrusted client learns nothing of what exists. */
static bool
access_refused (struct api_call *c, const char *path)
{
  bool get = strcmp (c->method, "GET") == 0;

  if (c->access == CL_API_ACCESS_NONE
      && !(get && (strcmp (path, "/") == 0 || strcmp (path, "/1.0") == 0))
      && !(strcmp (c->method, "POST") == 0 && strcmp (path, "/1.0/certificates") == 0))
    {
      cl_api_reply_error (c, 403,
                          "not trusted: this client's certificate is not in the server's trust"
                          " store (cloison remote add NAME URL --token TOKEN)");
      return true;
    }
  if (c->access == CL_API_ACCESS_READ_ONLY && !get)
    {
      cl_api_reply_error (c, 403, "read-only certificate: %s is refused", c->method);
      return true;
    }
  /* a console's or an exec's websocket writes to the instance */
  if (c->access == CL_API_ACCESS_READ_ONLY && c->websocket && strcmp (path, "/1.0/events") != 0)
    {
      cl_api_reply_error (c, 403, "read-only certificate: a console or exec websocket is refused");
      return true;
    }
  return false;
}

static bool
method_takes_body (const char *method)
{
  return strcmp (method, "POST") == 0 || strcmp (method, "PUT") == 0
         || strcmp (method, "PATCH") == 0 || strcmp (method, "DELETE") == 0;
}

static void handle (struct cl_api_ctx *ctx, const struct cl_api_request *req,
                    struct cl_api_response *resp);

void
cl_api_handle (struct cl_api_ctx *ctx, const struct cl_api_request *req,
               struct cl_api_response *resp)
{
  handle (ctx, req, resp);
  if (resp->status >= 100 && resp->status < 600)
    __atomic_add_fetch (&ctx->requests[resp->status], 1, __ATOMIC_RELAXED);
}

static void
handle (struct cl_api_ctx *ctx, const struct cl_api_request *req, struct cl_api_response *resp)
{
  struct api_call c = { .ctx = ctx,
                        .method = req->method,
                        .if_match = req->if_match,
                        .websocket = req->websocket,
                        .req = req,
                        .access = cl_api_request_access (ctx, req),
                        .resp = resp };
  char allowed[64] = "";
  const struct api_route *found = NULL;
  cleanup_free char *path = NULL;
  cl_error_t err = NULL;
  size_t len;

  memset (resp, 0, sizeof *resp);
  path = cl_xstrdup (req->path ? req->path : "");
  /* one trailing slash is allowed ("/1.0/instances/") */
  len = strlen (path);
  if (len > 1 && path[len - 1] == '/')
    path[len - 1] = '\0';
  if (access_refused (&c, path))
    return;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
    {
      char *params[2] = { NULL, NULL };
      int r = route_match (routes[i].info.path, path, params);
      if (r < 0)
        {
          cl_api_reply_error (&c, 400, "path `%s`: malformed percent-encoding", req->path);
          free (c.params[0]);
          free (c.params[1]);
          return;
        }
      if (r == 0)
        continue;
      if (strcmp (routes[i].info.method, req->method) == 0 && found == NULL)
        {
          found = &routes[i];
          c.params[0] = params[0];
          c.params[1] = params[1];
          continue;
        }
      free (params[0]);
      free (params[1]);
      if (strlen (allowed) + strlen (routes[i].info.method) + 3 < sizeof allowed)
        snprintf (allowed + strlen (allowed), sizeof allowed - strlen (allowed), "%s%s",
                  *allowed ? ", " : "", routes[i].info.method);
    }
  if (found == NULL)
    {
      if (*allowed)
        {
          cl_api_reply_error (&c, 405, "method %s not allowed on `%s` (allowed: %s)", req->method,
                              req->path, allowed);
          resp->allow = cl_xstrdup (allowed);
        }
      else
        cl_api_reply_error (&c, 404, "unknown API path `%s`", req->path);
      return;
    }
  if (req->body_len > ctx->body_limit)
    cl_api_reply_error (&c, 413, "request body of %zu bytes: the limit is %zu", req->body_len,
                        ctx->body_limit);
  else if (cl_api_parse_query (req->query, &c.query) < 0)
    cl_api_reply_error (&c, 400, "query string: malformed percent-encoding");
  else if ((strcmp (path, "/1.0") == 0 || strncmp (path, "/1.0/certificates", 17) == 0)
           && cl_api_trust_init (ctx, &err) < 0)
    cl_api_reply_cl_error (&c, &err);
  else
    {
      size_t n = req->body_len;
      /* a body of only whitespace is no body */
      while (n > 0 && isspace ((unsigned char)req->body[n - 1]))
        n--;
      /* an upload's body is bytes (c->req->body), not JSON */
      if (n > 0 && method_takes_body (req->method) && found->fn != cl_api_instance_upload
          && cl_json_load_buffer ("request body", req->body, req->body_len, &c.body, &err) < 0)
        {
          cl_api_reply_error (&c, 400, "%s", err->msg);
          cl_error_release (&err);
        }
      else
        found->fn (&c);
    }
  json_decref (c.query);
  json_decref (c.body);
  free (c.params[0]);
  free (c.params[1]);
}
