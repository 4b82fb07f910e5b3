/* The route table, request dispatch and the response envelopes. */
#include "api/internal.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <ctype.h>
#include <stdarg.h>
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
  "images_fetch",
  NULL,
};

static void
server_get (struct api_call *c)
{
  json_t *ext = json_array ();
  struct utsname u;

  for (const char *const *e = api_extensions; *e; e++)
    json_array_append_new (ext, json_string (*e));
  uname (&u);
  api_reply_sync (c, 200,
                  json_pack ("{s:s, s:s, s:o, s:s, s:{s:s, s:s, s:s, s:s, s:I}}", "api_version",
                             "1.0", "api_status", "development", "api_extensions", ext, "auth",
                             "trusted", "environment", "server", "cloison", "server_version",
                             CLOISON_VERSION, "kernel_version", u.release, "storage_root",
                             c->ctx->root, "server_pid", (json_int_t)getpid ()));
}

static void
api_root (struct api_call *c)
{
  api_reply_sync (c, 200, json_pack ("[s]", "/1.0"));
}

static const struct api_route routes[] = {
  { { "GET", "/", "supported API versions" }, api_root },
  { { "GET", "/1.0", "server information and API extensions" }, server_get },
  { { "GET", "/1.0/instances", "list instances (recursion=0: URLs, 1: objects)" },
    api_instances_list },
  { { "POST", "/1.0/instances", "create and start an instance from an image, or copy one (async)" },
    api_instances_create },
  { { "GET", "/1.0/instances/{name}", "an instance" }, api_instance_get },
  { { "PATCH", "/1.0/instances/{name}", "change limits.memory / limits.cpu (live)" },
    api_instance_patch },
  { { "DELETE", "/1.0/instances/{name}", "delete an instance (async; force=1 when running)" },
    api_instance_delete },
  { { "GET", "/1.0/instances/{name}/state", "an instance's state" }, api_instance_state_get },
  { { "PUT", "/1.0/instances/{name}/state", "start, stop, restart (async)" },
    api_instance_state_put },
  { { "GET", "/1.0/instances/{name}/logs", "the console log (text)" }, api_instance_logs },
  { { "GET", "/1.0/instances/{name}/snapshots", "list snapshots" }, api_snapshots_list },
  { { "POST", "/1.0/instances/{name}/snapshots", "create a snapshot (async)" },
    api_snapshots_create },
  { { "GET", "/1.0/instances/{name}/snapshots/{snapshot}", "a snapshot" }, api_snapshot_get },
  { { "POST", "/1.0/instances/{name}/snapshots/{snapshot}", "restore a snapshot (async)" },
    api_snapshot_restore },
  { { "DELETE", "/1.0/instances/{name}/snapshots/{snapshot}", "delete a snapshot (async)" },
    api_snapshot_delete },
  { { "GET", "/1.0/images", "list images" }, api_images_list },
  { { "POST", "/1.0/images", "import from a server path or pull from a registry (async)" },
    api_images_create },
  { { "GET", "/1.0/images/{image}", "an image (name, id or id prefix)" }, api_image_get },
  { { "DELETE", "/1.0/images/{image}", "remove an image name, or an image by id" },
    api_image_delete },
  { { "GET", "/1.0/networks", "list networks" }, api_networks_list },
  { { "POST", "/1.0/networks", "create a network" }, api_networks_create },
  { { "GET", "/1.0/networks/{network}", "a network" }, api_network_get },
  { { "DELETE", "/1.0/networks/{network}", "delete a network" }, api_network_delete },
  { { "GET", "/1.0/operations", "list operations" }, api_operations_list },
  { { "GET", "/1.0/operations/{id}", "an operation" }, api_operation_get },
  { { "DELETE", "/1.0/operations/{id}", "cancel a pending operation" }, api_operation_cancel },
  { { "GET", "/1.0/operations/{id}/wait", "wait for an operation to end (timeout=SECONDS)" },
    api_operation_wait },
  { { "GET", "/1.0/events", "a stream of events, one JSON object per line (type=...)" },
    api_events_get },
};

const struct cl_api_route_info *
cl_api_route (size_t i)
{
  return i < sizeof routes / sizeof routes[0] ? &routes[i].info : NULL;
}

/* ---- responses ---- */

static void
reply (struct api_call *c, int status, json_t *j)
{
  cl_api_response_clear (c->resp);
  c->resp->status = status;
  c->resp->json = j;
  c->resp->content_type = "application/json";
}

void
api_reply_sync (struct api_call *c, int status, json_t *metadata)
{
  reply (c, status,
         json_pack ("{s:s, s:s, s:i, s:o}", "type", "sync", "status", "Success", "status_code",
                    status, "metadata", metadata ? metadata : json_null ()));
}

static void
reply_error_v (struct api_call *c, int status, const char *path, const char *fmt, va_list ap)
{
  char *msg = NULL;
  json_t *j;

  if (vasprintf (&msg, fmt, ap) < 0)
    abort ();
  j = json_pack ("{s:s, s:i, s:s}", "type", "error", "error_code", status, "error", msg);
  if (path)
    json_object_set_new (j, "path", json_string (path));
  free (msg);
  reply (c, status, j);
}

void
api_reply_error (struct api_call *c, int status, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  reply_error_v (c, status, NULL, fmt, ap);
  va_end (ap);
}

void
api_reply_bad_field (struct api_call *c, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  reply_error_v (c, 400, path, fmt, ap);
  va_end (ap);
}

/* The library reports errors as messages; these are the words its
   messages use for a missing thing, a conflict and a bad value. */
int
api_error_status (const char *msg)
{
  static const char *const not_found[] = { "not found", "does not exist", NULL };
  static const char *const conflict[] = { "already exists",  "is running", "is not running",
                                          "already running", "is used by", "in use",
                                          "has instances",   "attached",   "is creating",
                                          "is stopped",      NULL };
  static const char *const bad[] = { "invalid", "expected", "unknown", "must ",     "at least",
                                     "at most", "exclude",  "needs ",  "ambiguous", NULL };
  for (const char *const *w = not_found; *w; w++)
    if (strstr (msg, *w))
      return 404;
  for (const char *const *w = conflict; *w; w++)
    if (strstr (msg, *w))
      return 409;
  for (const char *const *w = bad; *w; w++)
    if (strstr (msg, *w))
      return 400;
  return 500;
}

void
api_reply_cl_error (struct api_call *c, cl_error_t *err)
{
  const char *msg = *err && (*err)->msg ? (*err)->msg : "internal error";
  api_reply_error (c, api_error_status (msg), "%s", msg);
  cl_error_release (err);
}

void
cl_api_response_clear (struct cl_api_response *resp)
{
  json_decref (resp->json);
  free (resp->raw);
  free (resp->location);
  free (resp->etag);
  free (resp->allow);
  if (resp->events)
    cl_api_events_free (resp->events);
  memset (resp, 0, sizeof *resp);
}

/* ---- requests ---- */

static int
hexval (int ch)
{
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  ch = tolower (ch);
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  return -1;
}

/* Percent-decodes n bytes (plus_space: '+' is a space, as in queries);
   NULL when an escape is malformed or decodes to NUL. */
static char *
url_decode (const char *s, size_t n, bool plus_space)
{
  char *out = cl_xmalloc0 (n + 1), *o = out;

  for (size_t i = 0; i < n; i++)
    if (s[i] == '%')
      {
        int h, l;
        if (i + 2 >= n)
          goto bad;
        h = hexval (s[i + 1]);
        l = hexval (s[i + 2]);
        if (h < 0 || l < 0 || (h == 0 && l == 0))
          goto bad;
        *o++ = (char)(h * 16 + l);
        i += 2;
      }
    else
      *o++ = plus_space && s[i] == '+' ? ' ' : s[i];
  return out;
bad:
  free (out);
  return NULL;
}

char *
api_url (const char *prefix, const char *name)
{
  /* names are [A-Za-z0-9_.-] and image references add ':', '/', '@':
     only what falls outside needs escaping */
  size_t n = strlen (name);
  char *out = cl_xmalloc0 (strlen (prefix) + 3 * n + 1), *o;

  o = stpcpy (out, prefix);
  for (size_t i = 0; i < n; i++)
    {
      unsigned char ch = (unsigned char)name[i];
      if (isalnum (ch) || strchr ("-._~:@", ch))
        *o++ = (char)ch;
      else
        o += sprintf (o, "%%%02X", ch);
    }
  return out;
}

void
api_names_to_urls (json_t *list, const char *prefix)
{
  size_t i;
  json_t *e;

  json_array_foreach (list, i, e)
  {
    char *url = api_url (prefix, json_string_value (json_object_get (e, "name")));
    json_array_set_new (list, i, json_string (url));
    free (url);
  }
}

static int
parse_query (const char *q, json_t **out)
{
  json_t *obj = json_object ();

  while (q && *q)
    {
      const char *amp = strchr (q, '&'), *end = amp ? amp : q + strlen (q);
      const char *eq = memchr (q, '=', (size_t)(end - q));
      char *k, *v;
      if (end > q)
        {
          k = url_decode (q, (size_t)((eq ? eq : end) - q), true);
          v = eq ? url_decode (eq + 1, (size_t)(end - eq - 1), true) : strdup ("");
          if (k == NULL || v == NULL)
            {
              free (k);
              free (v);
              json_decref (obj);
              return -1;
            }
          json_object_set_new (obj, k, json_string (v));
          free (k);
          free (v);
        }
      q = amp ? amp + 1 : end;
    }
  *out = obj;
  return 0;
}

int
api_query_bool (struct api_call *c, const char *key, bool def, bool *out)
{
  const char *v = json_string_value (json_object_get (c->query, key));

  *out = def;
  if (v == NULL)
    return 0;
  if (strcmp (v, "1") == 0 || strcmp (v, "true") == 0 || *v == '\0')
    *out = true;
  else if (strcmp (v, "0") == 0 || strcmp (v, "false") == 0)
    *out = false;
  else
    {
      api_reply_error (c, 400, "query parameter %s: expected 0, 1, true or false, got `%s`", key,
                       v);
      return -1;
    }
  return 0;
}

int
api_query_int (struct api_call *c, const char *key, long min, long max, long def, long *out)
{
  const char *v = json_string_value (json_object_get (c->query, key));
  char *end;
  long n;

  *out = def;
  if (v == NULL)
    return 0;
  n = strtol (v, &end, 10);
  if (*v == '\0' || *end || n < min || n > max)
    {
      api_reply_error (c, 400, "query parameter %s: expected an integer %ld-%ld, got `%s`", key,
                       min, max, v);
      return -1;
    }
  *out = n;
  return 0;
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
          params[np] = url_decode (s, (size_t)(se - s), false);
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

static bool
method_takes_body (const char *method)
{
  return strcmp (method, "POST") == 0 || strcmp (method, "PUT") == 0
         || strcmp (method, "PATCH") == 0 || strcmp (method, "DELETE") == 0;
}

void
cl_api_handle (struct cl_api_ctx *ctx, const struct cl_api_request *req,
               struct cl_api_response *resp)
{
  struct api_call c
      = { .ctx = ctx, .method = req->method, .if_match = req->if_match, .resp = resp };
  char allowed[64] = "";
  const struct api_route *found = NULL;
  cleanup_free char *path = NULL;
  size_t len;

  memset (resp, 0, sizeof *resp);
  path = strdup (req->path ? req->path : "");
  /* one trailing slash is allowed ("/1.0/instances/") */
  len = strlen (path);
  if (len > 1 && path[len - 1] == '/')
    path[len - 1] = '\0';
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
    {
      char *params[2] = { NULL, NULL };
      int r = route_match (routes[i].info.path, path, params);
      if (r < 0)
        {
          api_reply_error (&c, 400, "path `%s`: malformed percent-encoding", req->path);
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
          api_reply_error (&c, 405, "method %s not allowed on `%s` (allowed: %s)", req->method,
                           req->path, allowed);
          resp->allow = strdup (allowed);
        }
      else
        api_reply_error (&c, 404, "unknown API path `%s`", req->path);
      return;
    }
  if (req->body_len > ctx->body_limit)
    api_reply_error (&c, 413, "request body of %zu bytes: the limit is %zu", req->body_len,
                     ctx->body_limit);
  else if (parse_query (req->query, &c.query) < 0)
    api_reply_error (&c, 400, "query string: malformed percent-encoding");
  else
    {
      cl_error_t err = NULL;
      size_t n = req->body_len;
      /* a body of only whitespace is no body */
      while (n > 0 && isspace ((unsigned char)req->body[n - 1]))
        n--;
      if (n > 0 && method_takes_body (req->method)
          && cl_json_load_buffer ("request body", req->body, req->body_len, &c.body, &err) < 0)
        {
          api_reply_error (&c, 400, "%s", err->msg);
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
