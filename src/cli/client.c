/* SPDX-License-Identifier: Apache-2.0 */
/* The CLI's client of the REST API: the transports (the daemon's Unix
   socket through libcurl, the router in-process), the choice between
   them, and requests run to their end (operations waited for). */
#include "api/remote.h"
#include "cli/client.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAEMON_LINK "cloisond.sock"
#define DEFAULT_SOCKET "/run/cloison/cloison.sock"

struct cli_client
{
  const struct cli_transport *t;
  void *state;
};

struct cli_client *
cli_client_new (const struct cli_transport *t, void *state)
{
  struct cli_client *c = cl_xmalloc0 (sizeof *c);
  c->t = t;
  c->state = state;
  return c;
}

void
cli_client_close (struct cli_client *c)
{
  if (c == NULL)
    return;
  c->t->close (c->state);
  free (c);
}

const char *
cli_client_transport (struct cli_client *c)
{
  return c->t->name;
}

bool
cli_client_watch (struct cli_client *c, cl_api_event_fn fn, void *opaque)
{
  if (c->t->watch == NULL)
    return false;
  c->t->watch (c->state, fn, opaque);
  return true;
}

int
cli_request (struct cli_client *c, const struct cl_api_request *req, struct cl_api_response *resp,
             cl_error_t *err)
{
  memset (resp, 0, sizeof *resp);
  return c->t->request (c->state, req, resp, err);
}

/* ---- in-process: the router itself ---- */

static int
inprocess_request (void *state, const struct cl_api_request *req, struct cl_api_response *resp,
                   cl_error_t *err)
{
  json_error_t je;

  if (req->body_file)
    return cl_error_make (err, 0, "%s %s: a file body goes to a server only", req->method,
                          req->path);
  cl_api_handle (state, req, resp);
  /* a list the router wrote as text is read as the daemon's would be */
  if (resp->json == NULL && resp->raw && resp->content_type
      && strcmp (resp->content_type, "application/json") == 0)
    {
      resp->json = json_loadb (resp->raw, resp->raw_len, 0, &je);
      if (resp->json == NULL)
        {
          cl_api_response_clear (resp);
          return cl_error_make (err, 0, "%s %s: bad JSON from the router: %s", req->method,
                                req->path, je.text);
        }
      free (resp->raw);
      resp->raw = NULL;
      resp->raw_len = 0;
    }
  return 0;
}

static void
inprocess_close (void *state)
{
  /* operations ran inline: none is left to wait for */
  cl_api_ctx_free (state, 60000);
}

static void
inprocess_watch (void *state, cl_api_event_fn fn, void *opaque)
{
  cl_api_ctx_observe (state, fn, opaque);
}

static const struct cli_transport inprocess = {
  .name = "in-process",
  .request = inprocess_request,
  .close = inprocess_close,
  .watch = inprocess_watch,
};

int
cli_inprocess_transport (const char *root, const struct cli_transport **t, void **state,
                         cl_error_t *err)
{
  struct cl_api_options o = { .inline_ops = true };
  struct cl_api_ctx *ctx;

  if (cl_api_ctx_new (root, &o, &ctx, err) < 0)
    return -1;
  *t = &inprocess;
  *state = ctx;
  return 0;
}

/* ---- the daemon's Unix socket ---- */

/* the event stream of `watch`, on a connection and thread of its own */
struct unix_watch
{
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t started;
  bool running, connected, stop;
  char *socket_path;
  cl_api_event_fn fn;
  void *opaque;
  char *line; /* an event's line so far */
  size_t len;
  int fd; /* the stream's socket (-1: none yet), shut down to end it at once */
};

struct unix_state
{
  CURL *curl;
  char *socket_path;
  struct cl_api_remote remote; /* the same socket, for websockets */
  struct unix_watch *watch;
};

static size_t
on_body (char *p, size_t size, size_t n, void *opaque)
{
  cl_buffer_append (opaque, p, size * n);
  return size * n;
}

static size_t
on_header (char *p, size_t size, size_t n, void *opaque)
{
  struct cl_api_response *resp = opaque;
  size_t len = size * n;
  char *v;

  if ((v = cl_http_header_value (p, len, "Content-Type")))
    {
      resp->content_type
          = strncmp (v, "application/json", 16) == 0 ? "application/json" : "text/plain";
      free (v);
    }
  else if ((v = cl_http_header_value (p, len, "Location")))
    free (resp->location), resp->location = v;
  else if ((v = cl_http_header_value (p, len, "ETag")))
    free (resp->etag), resp->etag = v;
  else if ((v = cl_http_header_value (p, len, "Allow")))
    free (resp->allow), resp->allow = v;
  return len;
}

static int
unix_request (void *state, const struct cl_api_request *req, struct cl_api_response *resp,
              cl_error_t *err)
{
  struct unix_state *u = state;
  struct cl_buffer body = { 0 };
  struct curl_slist *headers = NULL;
  cleanup_free char *url = NULL;
  FILE *file = NULL;
  char curl_err[CURL_ERROR_SIZE] = "";
  json_error_t je;
  CURLcode rc;
  long status = 0;

  url = cl_strdup_printf ("http://cloison%s%s%s", req->path, req->query ? "?" : "",
                          req->query ? req->query : "");
  curl_easy_reset (u->curl);
  curl_easy_setopt (u->curl, CURLOPT_UNIX_SOCKET_PATH, u->socket_path);
  curl_easy_setopt (u->curl, CURLOPT_URL, url);
  curl_easy_setopt (u->curl, CURLOPT_ERRORBUFFER, curl_err);
  curl_easy_setopt (u->curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (u->curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt (u->curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt (u->curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt (u->curl, CURLOPT_HEADERDATA, resp);
  if (strcmp (req->method, "GET") == 0)
    curl_easy_setopt (u->curl, CURLOPT_HTTPGET, 1L);
  else
    curl_easy_setopt (u->curl, CURLOPT_CUSTOMREQUEST, req->method);
  if (cl_api_curl_body (u->curl, req, &headers, &file, err) < 0)
    return -1;
  /* no "Expect: 100-continue" round trip for larger bodies */
  headers = curl_slist_append (headers, "Expect:");
  curl_easy_setopt (u->curl, CURLOPT_HTTPHEADER, headers);
  rc = curl_easy_perform (u->curl);
  curl_slist_free_all (headers);
  if (file)
    fclose (file);
  if (rc != CURLE_OK)
    {
      free (body.data);
      cl_api_response_clear (resp);
      return cl_error_make (err, 0, "cloisond at `%s`: %s", u->socket_path,
                            *curl_err ? curl_err : curl_easy_strerror (rc));
    }
  curl_easy_getinfo (u->curl, CURLINFO_RESPONSE_CODE, &status);
  resp->status = (int)status;
  if (resp->content_type && strcmp (resp->content_type, "application/json") == 0 && body.len)
    {
      resp->json = json_loadb (body.data, body.len, 0, &je);
      free (body.data);
      if (resp->json == NULL)
        {
          cl_api_response_clear (resp);
          return cl_error_make (err, 0, "cloisond at `%s`: %s %s: bad JSON in the reply: %s",
                                u->socket_path, req->method, req->path, je.text);
        }
      return 0;
    }
  resp->raw = body.data ? body.data : cl_xstrdup ("");
  resp->raw_len = body.len;
  return 0;
}

/* ---- watch: GET /1.0/events?type=operation, one JSON object a line ---- */

static size_t
watch_body (char *p, size_t size, size_t n, void *opaque)
{
  struct unix_watch *w = opaque;
  size_t len = size * n;

  for (size_t i = 0; i < len; i++)
    {
      json_t *ev;
      if (p[i] != '\n')
        {
          w->line = realloc (w->line, w->len + 2);
          if (w->line == NULL)
            abort ();
          w->line[w->len++] = p[i];
          continue;
        }
      if (w->len == 0)
        continue; /* the stream's keep-alive */
      ev = json_loadb (w->line, w->len, 0, NULL);
      w->len = 0;
      if (ev)
        w->fn (w->opaque, ev);
      json_decref (ev);
    }
  return len;
}

static void
watch_set_connected (struct unix_watch *w)
{
  pthread_mutex_lock (&w->lock);
  w->connected = true;
  pthread_cond_broadcast (&w->started);
  pthread_mutex_unlock (&w->lock);
}

static size_t
watch_header (char *p, size_t size, size_t n, void *opaque)
{
  (void)p;
  /* the daemon registered the stream before it answered */
  watch_set_connected (opaque);
  return size * n;
}

static int
watch_progress (void *opaque, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
  struct unix_watch *w = opaque;
  bool stop;
  (void)a, (void)b, (void)c, (void)d;
  pthread_mutex_lock (&w->lock);
  stop = w->stop;
  pthread_mutex_unlock (&w->lock);
  return stop; /* non-zero ends the transfer */
}

/* The stream's socket, made here so that watch_end can shut it down:
   curl would see `stop` only at its next progress call (up to a second
   on an idle stream). */
static curl_socket_t
watch_socket (void *opaque, curlsocktype purpose, struct curl_sockaddr *a)
{
  struct unix_watch *w = opaque;
  int fd;

  (void)purpose;
  fd = socket (a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  pthread_mutex_lock (&w->lock);
  w->fd = fd;
  if (w->stop && fd >= 0)
    shutdown (fd, SHUT_RDWR);
  pthread_mutex_unlock (&w->lock);
  return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static int
watch_close (void *opaque, curl_socket_t fd)
{
  struct unix_watch *w = opaque;

  pthread_mutex_lock (&w->lock);
  w->fd = -1; /* its number may be reused: never shut down after this */
  pthread_mutex_unlock (&w->lock);
  return close (fd);
}

static void *
watch_run (void *arg)
{
  struct unix_watch *w = arg;
  CURL *curl = curl_easy_init ();

  if (curl)
    {
      curl_easy_setopt (curl, CURLOPT_UNIX_SOCKET_PATH, w->socket_path);
      curl_easy_setopt (curl, CURLOPT_URL, "http://cloison/1.0/events?type=operation");
      curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, watch_body);
      curl_easy_setopt (curl, CURLOPT_WRITEDATA, w);
      curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, watch_header);
      curl_easy_setopt (curl, CURLOPT_HEADERDATA, w);
      curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, watch_progress);
      curl_easy_setopt (curl, CURLOPT_XFERINFODATA, w);
      curl_easy_setopt (curl, CURLOPT_OPENSOCKETFUNCTION, watch_socket);
      curl_easy_setopt (curl, CURLOPT_OPENSOCKETDATA, w);
      curl_easy_setopt (curl, CURLOPT_CLOSESOCKETFUNCTION, watch_close);
      curl_easy_setopt (curl, CURLOPT_CLOSESOCKETDATA, w);
      curl_easy_perform (curl);
      curl_easy_cleanup (curl);
    }
  watch_set_connected (w); /* a failed stream: no progress, nothing waits */
  return NULL;
}

static void
watch_end (struct unix_state *u)
{
  struct unix_watch *w = u->watch;

  if (w == NULL)
    return;
  pthread_mutex_lock (&w->lock);
  w->stop = true;
  if (w->fd >= 0)
    shutdown (w->fd, SHUT_RDWR);
  pthread_mutex_unlock (&w->lock);
  pthread_join (w->thread, NULL);
  pthread_cond_destroy (&w->started);
  pthread_mutex_destroy (&w->lock);
  free (w->line);
  free (w);
  u->watch = NULL;
}

static void
unix_watch (void *state, cl_api_event_fn fn, void *opaque)
{
  struct unix_state *u = state;
  struct unix_watch *w;

  watch_end (u);
  if (fn == NULL)
    return;
  w = cl_xmalloc0 (sizeof *w);
  w->fd = -1;
  pthread_mutex_init (&w->lock, NULL);
  pthread_cond_init (&w->started, NULL);
  w->socket_path = u->socket_path;
  w->fn = fn;
  w->opaque = opaque;
  if (pthread_create (&w->thread, NULL, watch_run, w) != 0)
    {
      pthread_cond_destroy (&w->started);
      pthread_mutex_destroy (&w->lock);
      free (w);
      return;
    }
  u->watch = w;
  /* events from now on: the stream is open before the request is sent */
  pthread_mutex_lock (&w->lock);
  while (!w->connected)
    pthread_cond_wait (&w->started, &w->lock);
  pthread_mutex_unlock (&w->lock);
}

const struct cl_api_remote *
cli_client_remote (struct cli_client *c)
{
  return c->t->remote ? c->t->remote (c->state) : NULL;
}

const char *
cli_client_socket (struct cli_client *c)
{
  return c->t->request == unix_request ? ((struct unix_state *)c->state)->socket_path : NULL;
}

static void
unix_close (void *state)
{
  struct unix_state *u = state;
  watch_end (u);
  curl_easy_cleanup (u->curl);
  free (u->socket_path);
  free (u);
}

static const struct cl_api_remote *
unix_remote (void *state)
{
  return &((struct unix_state *)state)->remote;
}

static const struct cli_transport unix_socket = {
  .name = "unix",
  .request = unix_request,
  .close = unix_close,
  .watch = unix_watch,
  .remote = unix_remote,
};

int
cli_unix_transport (const char *socket_path, const struct cli_transport **t, void **state,
                    cl_error_t *err)
{
  struct unix_state *u;
  static bool curl_ready;

  if (!curl_ready)
    {
      if (curl_global_init (CURL_GLOBAL_DEFAULT) != 0)
        return cl_error_make (err, 0, "libcurl: initialization failed");
      curl_ready = true;
    }
  u = cl_xmalloc0 (sizeof *u);
  u->curl = curl_easy_init ();
  if (u->curl == NULL)
    {
      free (u);
      return cl_error_make (err, 0, "libcurl: no handle");
    }
  u->socket_path = cl_xstrdup (socket_path);
  u->remote.url = "http://cloison";
  u->remote.unix_socket = u->socket_path;
  *t = &unix_socket;
  *state = u;
  return 0;
}

/* ---- choosing ---- */

/* The daemon at socket_path when it serves `root` (real path), else NULL
   (nothing there, or another root's). */
static struct cli_client *
daemon_client (const char *socket_path, const char *root)
{
  const struct cli_transport *t;
  struct cl_api_request req = { .method = "GET", .path = "/1.0" };
  struct cl_api_response resp;
  struct cli_client *c;
  cl_error_t err = NULL;
  struct stat st;
  void *state;
  const char *served;
  char real[PATH_MAX];

  if (stat (socket_path, &st) < 0 || !S_ISSOCK (st.st_mode)
      || cli_unix_transport (socket_path, &t, &state, &err) < 0)
    {
      cl_error_release (&err);
      return NULL;
    }
  c = cli_client_new (t, state);
  if (cli_request (c, &req, &resp, &err) < 0)
    {
      cl_debug ("no daemon: %s", err->msg);
      cl_error_release (&err);
      cli_client_close (c);
      return NULL;
    }
  served = json_string_value (json_object_get (
      json_object_get (json_object_get (resp.json, "metadata"), "environment"), "storage_root"));
  if (resp.status != 200 || served == NULL || realpath (served, real) == NULL
      || strcmp (real, root) != 0)
    {
      cl_debug ("the daemon at `%s` serves `%s`, not `%s`", socket_path, served ? served : "?",
                root);
      cl_api_response_clear (&resp);
      cli_client_close (c);
      return NULL;
    }
  cl_api_response_clear (&resp);
  return c;
}

int
cli_client_open (const char *root, bool local, struct cli_client **out, cl_error_t *err)
{
  const struct cli_transport *t;
  void *state;
  char real[PATH_MAX];

  *out = NULL;
  if (!local && realpath (root, real) != NULL)
    {
      cleanup_free char *link = cl_strdup_printf ("%s/" DAEMON_LINK, real);
      char target[PATH_MAX];
      ssize_t n = readlink (link, target, sizeof target - 1);
      if (n > 0)
        {
          target[n] = '\0';
          *out = daemon_client (target, real);
        }
      if (*out == NULL)
        *out = daemon_client (DEFAULT_SOCKET, real);
      if (*out)
        {
          cl_debug ("through the daemon serving `%s`", real);
          return 0;
        }
    }
  if (cli_inprocess_transport (root, &t, &state, err) < 0)
    return -1;
  if (local)
    cl_debug ("in-process (--local)");
  else
    cl_debug ("in-process: no daemon serves `%s`", root);
  *out = cli_client_new (t, state);
  return 0;
}

/* ---- requests run to their end ---- */

static int
client_send (void *state, const struct cl_api_request *req, struct cl_api_response *resp,
             cl_error_t *err)
{
  return cli_request (state, req, resp, err);
}

static struct cl_api_caller
caller (struct cli_client *c)
{
  return (struct cl_api_caller){ .send = client_send, .state = c };
}

int
cli_wait_operation (struct cli_client *c, const char *url, json_t **out, cl_error_t *err)
{
  struct cl_api_caller k = caller (c);
  return cl_api_wait_operation (&k, url, NULL, out, err);
}

int
cli_call (struct cli_client *c, const char *method, const char *path, const char *query,
          json_t *body, json_t **out, cl_error_t *err)
{
  struct cl_api_caller k = caller (c);
  return cl_api_call_json (&k, method, path, query, body, NULL, out, err);
}

int
cli_call_cancellable (struct cli_client *c, const char *method, const char *path, json_t *body,
                      volatile sig_atomic_t *stop, json_t **out, cl_error_t *err)
{
  struct cl_api_caller k = caller (c);
  return cl_api_call_json (&k, method, path, NULL, body, stop, out, err);
}

int
cli_call_file (struct cli_client *c, const char *method, const char *path, const char *query,
               const char *file, json_t **out, cl_error_t *err)
{
  char hex[65];
  cleanup_free char *digest = NULL;
  struct cl_api_request req = { .method = method, .path = path, .query = query };

  if (cl_api_file_sha256 (file, hex, err) < 0)
    return -1;
  digest = cl_strdup_printf ("sha256:%s", hex);
  req.body_file = file;
  req.digest = digest;
  struct cl_api_caller k = caller (c);
  return cl_api_call (&k, &req, NULL, out, err);
}
