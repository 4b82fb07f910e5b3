/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the files of src/api only. */
#ifndef CLOISON_API_INTERNAL_H
#define CLOISON_API_INTERNAL_H

#include "api/api.h"
#include "manager/manager.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <time.h>

#define API_EVENT_RING 512
#define API_MANAGER_POOL 8
#define API_OPS_KEPT 1000

struct api_op;

struct cl_api_ctx
{
  char *root;
  size_t body_limit;
  char *exec_helper;
  pthread_mutex_t lock;
  /* broadcast when an operation changes status, an event is appended, or
     the context shuts down */
  pthread_cond_t changed;
  bool closing;
  bool inline_ops;    /* cl_api_options.inline_ops */
  sqlite3 *db;        /* api_operations (not inline_ops), the trust store; used under lock */
  struct api_op *ops; /* newest first */
  uint64_t op_seq;
  int workers; /* operation threads alive */
  /* events: the last API_EVENT_RING, event number n at ring[n % size] */
  json_t *ring[API_EVENT_RING];
  uint64_t ev_next;
  cl_api_event_fn observer; /* cl_api_ctx_observe */
  void *observer_opaque;
  /* the watcher (watch.c): each instance's status as last seen or as an
     operation left it; NULL when nothing watches */
  json_t *known;
  pthread_t watcher;
  /* called by an operation's worker after an operation on an instance,
     with its handle: cl_api_watch_note, set by cl_api_ctx_new (watch.c asks
     operations.c whether an instance is busy, so not the other way) */
  void (*op_ended) (struct cl_api_ctx *ctx, struct cl_manager *m, const char *instance);
  /* trust.c: told when a certificate is removed through the API */
  void (*revoke_hook) (void *data, const char *fingerprint);
  void *revoke_data;
  int64_t data_version; /* cl_api_trust_changed's last PRAGMA data_version */
  bool trust_ready;     /* its tables made (cl_api_trust_init) */
  /* idle manager handles for synchronous requests */
  struct cl_manager *pool[API_MANAGER_POOL];
  size_t n_pool;
  /* for /1.0/metrics (metrics.c): requests answered by status, updated
     atomically; operations started; when the context opened (monotonic) */
  uint64_t requests[600];
  uint64_t ops_started;
  struct timespec started;
  /* the web console's sessions and links (ui_session.c); NULL in-process */
  struct cl_api_ui *ui;
};

/* One request being handled. */
struct api_call
{
  struct cl_api_ctx *ctx;
  const char *method;
  char *params[2]; /* decoded path parameters, in order */
  json_t *query;   /* object: decoded key -> string */
  json_t *body;    /* the parsed body; NULL when empty */
  const char *if_match;
  bool websocket; /* the request asks for a websocket */
  const struct cl_api_request *req;
  enum cl_api_access access;
  struct cl_api_response *resp;
};

typedef void (*api_handler_fn) (struct api_call *c);

struct api_route
{
  struct cl_api_route_info info;
  api_handler_fn fn;
};

/* --- reply.c: responses, URLs and queries (below every other file but
   events.c) --- */
void cl_api_reply_sync (struct api_call *c, int status, json_t *metadata); /* steals metadata */
/* `bytes` random bytes (at most 32) as hex into out (2 * bytes + 1). */
void cl_api_random_hex (char *out, size_t bytes);
/* Whether a and b (secrets: tokens, session keys) are equal, comparing
   all of them whatever they hold, so that the time taken tells nothing
   of how much matched. */
bool cl_api_secret_equal (const char *a, const char *b);
void cl_api_reply_error (struct api_call *c, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* 400 naming the body's field `path`. */
void cl_api_reply_bad_field (struct api_call *c, const char *path, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* A library error: its status from its kind (not found: 404,
   conflict: 409, invalid: 400, busy: 503, else 500); releases *err. */
void cl_api_reply_cl_error (struct api_call *c, cl_error_t *err);
int cl_api_error_status (cl_error_t err);
/* A JSON document written as text, for a large list (no json_t tree
   built and dumped for thousands of items). */
struct api_text
{
  char *buf;
  size_t len, cap;
};
void cl_api_text_raw (struct api_text *t, const char *s, size_t n);
/* s quoted and escaped as a JSON string */
void cl_api_text_string (struct api_text *t, const char *s);
void cl_api_text_int (struct api_text *t, long long v);
/* Replies 200: the sync envelope around t's text, its metadata (takes
   t's buffer). */
void cl_api_reply_sync_text (struct api_call *c, struct api_text *t);
/* Query parameters: absent gives def; a bad value replies 400 and
   returns -1. */
int cl_api_query_bool (struct api_call *c, const char *key, bool def, bool *out);
int cl_api_query_int (struct api_call *c, const char *key, long min, long max, long def, long *out);
/* Replaces each object of `list` with prefix + its "name" (recursion=0). */
void cl_api_names_to_urls (json_t *list, const char *prefix);
/* Percent-decodes n bytes (plus_space: '+' is a space, as in queries);
   NULL when an escape is malformed or decodes to NUL (caller frees). */
char *cl_api_url_decode (const char *s, size_t n, bool plus_space);
/* A query string into an object of decoded key -> string; -1 when an
   escape is malformed. */
int cl_api_parse_query (const char *q, json_t **out);

/* --- input.c: request bodies --- */
enum api_field_type
{
  API_STRING,
  API_BOOL,
  API_INT,
  API_OBJECT, /* checked against sub (NULL: any object, the handler checks it) */
  API_STRING_ARRAY,
  API_STRING_MAP, /* object of strings */
  API_SCALAR,     /* string or integer (config values) */
  API_SCALAR_MAP, /* object of API_SCALAR */
};

struct api_field
{
  const char *name;
  enum api_field_type type;
  bool required;
  const struct api_field *sub; /* API_OBJECT: its fields, ended by { NULL }; NULL: any */
};

/* Checks c->body (NULL: an empty body, taken as {} unless body_required)
   against spec: unknown fields, missing required ones, wrong types.
   Replies 400 with the field's path and returns -1 when it does not fit. */
int cl_api_check_body (struct api_call *c, const struct api_field *spec, bool body_required);
/* A JSON path: "a.b", or a["k.e.y"] when the key has dots (caller frees). */
char *cl_api_path_join (const char *ctx, const char *key);

/* --- ctx.c --- */
bool cl_api_ctx_closing (struct cl_api_ctx *ctx);
/* The exec helper program (cl_api_options), or NULL. */
const char *cl_api_ctx_exec_helper (struct cl_api_ctx *ctx);

/* --- pool.c: manager handles for synchronous requests --- */
int cl_api_manager_get (struct cl_api_ctx *ctx, struct cl_manager **m, cl_error_t *err);
void cl_api_manager_put (struct cl_api_ctx *ctx, struct cl_manager *m);

/* --- operations.c --- */
/* What an operation does in its worker thread, with the worker's own
   manager handle; `args` is the operation's input (JSON object). */
typedef int (*api_op_fn) (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err);

struct api_op_kind
{
  const char *description; /* "Creating instance" */
  api_op_fn fn;
  const char *lifecycle_action; /* event on success: "instance-created" */
  const char *op_class;         /* NULL: "task" */
  /* a running one can be cancelled (DELETE): fn has cancellation points
     (common/cancel.h) and leaves nothing behind when one stops it */
  bool cancellable;
  /* an operation's data (cl_api_op_start_data): a reference taken, one
     given back (op_free gives back the operation's own) */
  void *(*data_ref) (void *data);
  void (*data_unref) (void *data);
};

/* Starts an operation on `instance` (its ordering key, and its resource)
   and replies 202.  `source`: the lifecycle event's (NULL: the instance's
   URL).  Steals args. */
void cl_api_op_start (struct api_call *c, const struct api_op_kind *kind, const char *instance,
                      const char *source, json_t *args);
/* The general form: `key` orders operations (an instance name, or
   "image:REF"), `resources` is the operation's (stolen); instance: the
   watcher is told the status the operation leaves. */
void cl_api_op_start_for (struct api_call *c, const struct api_op_kind *kind, const char *key,
                          json_t *resources, const char *source, bool instance, json_t *args);
/* The same with metadata from the start (stolen) and data for the
   kind (the operation owns one reference), keyed by `key` alone. */
void cl_api_op_start_data (struct api_call *c, const struct api_op_kind *kind, const char *key,
                           json_t *resources, const char *source, json_t *args, json_t *metadata,
                           void *data);
void *cl_api_op_data (struct api_op *op);
/* Operation `id`'s data with a reference taken (kind->data_ref), when it
   is of `kind`; else NULL. */
void *cl_api_op_data_ref (struct cl_api_ctx *ctx, const char *id, const struct api_op_kind *kind);
/* From an operation's worker: its metadata (stolen; progress, result),
   sent as an operation event; source (optional) replaces the lifecycle
   event's. */
void cl_api_op_set_metadata (struct api_op *op, json_t *metadata, const char *source);
struct cl_api_ctx *cl_api_op_ctx (struct api_op *op);
int cl_api_ops_init (struct cl_api_ctx *ctx, cl_error_t *err);
void cl_api_ops_free (struct cl_api_ctx *ctx);
void cl_api_operations_list (struct api_call *c);
void cl_api_operation_get (struct api_call *c);
void cl_api_operation_wait (struct api_call *c);
void cl_api_operation_cancel (struct api_call *c);

/* Operations kept, by status (pending, running, success, failure,
   cancelled), for /1.0/metrics. */
#define OP_STATUS_COUNT 5
void cl_api_ops_count (struct cl_api_ctx *ctx, int counts[OP_STATUS_COUNT]);
const char *cl_api_op_status_name (int status);

/* Is an operation on `instance` still to end?  (lock held) */
bool cl_api_instance_busy (struct cl_api_ctx *ctx, const char *instance);

/* --- watch.c --- */
/* After an operation on `instance`: records the status it left (m: the
   operation's handle), so that the watcher does not report it again. */
void cl_api_watch_note (struct cl_api_ctx *ctx, struct cl_manager *m, const char *instance);
void cl_api_watch_stop (struct cl_api_ctx *ctx);

/* --- events.c: the ring (emitting calls no other file) --- */
/* Appends an event {"type","timestamp","metadata"}; steals metadata.
   Call with ctx->lock held (locked) or not. */
void cl_api_event_emit (struct cl_api_ctx *ctx, const char *type, json_t *metadata, bool locked);
/* A lifecycle event: {"action": action, "source": source}. */
void cl_api_lifecycle (struct cl_api_ctx *ctx, const char *action, const char *source);
/* A stream of the events whose type is in `types` (comma-separated;
   NULL: every type), from now on. */
int cl_api_events_open (struct cl_api_ctx *ctx, const char *types, struct cl_api_events **out,
                        cl_error_t *err);
void cl_api_events_free_ring (struct cl_api_ctx *ctx);
/* RFC 3339 UTC time of `t` (seconds since the epoch) into buf. */
void cl_api_time_string (int64_t t, char *buf, size_t len);

/* --- stream.c: GET /1.0/events --- */
void cl_api_events_get (struct api_call *c);

/* --- api_exec.c --- */
void cl_api_instance_exec (struct api_call *c);
/* POST /1.0/instances with "attach": true, its body checked by the
   create: an ephemeral instance whose workload's stdio are an exec's
   websockets, removed at its end or when the client goes (api_exec.c) */
void cl_api_instance_run (struct api_call *c);
/* Sets body's "name" to a new "run-XXXXXXXX" (an attached run's). */
void cl_api_run_name (json_t *body);
void cl_api_instance_console (struct api_call *c);
void cl_api_operation_websocket (struct api_call *c);

/* --- tunnel.c: a live move's migration stream through the API
   (docs/move.md "The stream") --- */
/* A TCP connection to "tcp:HOST:PORT", or -1. */
int cl_api_tcp_connect (const char *uri);
/* The destination's side: GET /1.0/instances/NAME/migration?token=T, a
   websocket relayed to `uri` (its VMM, waiting on the loopback), offered
   from cl_api_tunnel_offer to cl_api_tunnel_withdraw; one connection. */
void cl_api_tunnel_offer (const char *name, const char *token, const char *uri);
void cl_api_tunnel_withdraw (const char *token);
void cl_api_instance_migration (struct api_call *c);
/* The source's side: the websocket to path_query of remote, and a
   loopback port (cl_api_tunnel_uri: "tcp:127.0.0.1:PORT") whose first
   connection, this host's VMM's, a thread relays to it until
   cl_api_tunnel_close. */
struct cl_api_remote;
struct cl_api_tunnel;
int cl_api_tunnel_open (const struct cl_api_remote *remote, const char *path_query,
                        struct cl_api_tunnel **out, cl_error_t *err);
const char *cl_api_tunnel_uri (const struct cl_api_tunnel *t);
void cl_api_tunnel_close (struct cl_api_tunnel *t);

/* --- metrics.c --- */
void cl_api_metrics_get (struct api_call *c);

/* --- ws.c: websocket frames (cl_api_ws_send, cl_api_ws_recv: api.h)
   and channels --- */
/* The first member of every channel (api_exec.c's exec and console,
   tunnel.c's migration stream): how to run one on its upgraded socket
   (cl_api_channel_run), and how to free one that never ran
   (cl_api_channel_free); ws.c, below reply.c, calls them. */
struct api_channel_base
{
  void (*run) (struct cl_api_channel *ch, int fd);
  void (*free) (struct cl_api_channel *ch);
};

/* --- instances.c --- */
void cl_api_instances_list (struct api_call *c);
void cl_api_instances_create (struct api_call *c);
void cl_api_instance_get (struct api_call *c);
void cl_api_instance_patch (struct api_call *c);
void cl_api_instance_put (struct api_call *c);
void cl_api_instance_delete (struct api_call *c);
void cl_api_instance_state_get (struct api_call *c);
void cl_api_instance_state_put (struct api_call *c);
void cl_api_instance_logs (struct api_call *c);
void cl_api_snapshots_list (struct api_call *c);
void cl_api_snapshots_create (struct api_call *c);
void cl_api_snapshot_get (struct api_call *c);
void cl_api_snapshot_restore (struct api_call *c);
void cl_api_snapshot_delete (struct api_call *c);

/* --- instances.c --- */
/* The instance's info (caller frees), or NULL after replying (404...). */
json_t *cl_api_instance_info (struct api_call *c, const char *name);

/* --- move.c: an instance moved here from another host (docs/move.md) --- */
void cl_api_instance_upload (struct api_call *c);
void cl_api_instance_receive (struct api_call *c);
/* --- api_move_out.c: an instance moved from here, this daemon driving --- */
void cl_api_instance_move (struct api_call *c);

/* --- upload.c (the rest in api.h) --- */
void *cl_api_upload_ref (void *u);
const char *cl_api_upload_path (const struct cl_api_upload *u);
/* 64 hex digits, once ended */
const char *cl_api_upload_sha256 (const struct cl_api_upload *u);
/* Removes its file now (once imported). */
void cl_api_upload_remove (struct cl_api_upload *u);

/* --- ui_session.c: POST /1.0/ui/links --- */
void cl_api_ui_links_create (struct api_call *c);

/* --- ui_assets.c: the console's files, for ui_session.c --- */
/* Fills resp with the file `name` (relative, checked here) of dir:
   its content type, the .gz beside it when gzip is accepted, a long
   cache for names with a content hash.  404 when there is none. */
void cl_api_ui_asset (const char *dir, const char *name, bool gzip_ok,
                      struct cl_api_response *resp);
/* Appends "Name: value\n" to resp->headers. */
void cl_api_add_header (struct cl_api_response *resp, const char *name, const char *value);

/* --- api_images.c, networks.c --- */
void cl_api_images_list (struct api_call *c);
void cl_api_images_create (struct api_call *c);
void cl_api_image_get (struct api_call *c);
void cl_api_image_delete (struct api_call *c);
void cl_api_networks_list (struct api_call *c);
/* api_volumes.c */
void cl_api_volumes_list (struct api_call *c);
void cl_api_volumes_create (struct api_call *c);
void cl_api_volume_get (struct api_call *c);
void cl_api_volume_delete (struct api_call *c);
void cl_api_volume_attach (struct api_call *c);
void cl_api_volume_detach (struct api_call *c);
void cl_api_volume_snapshots_create (struct api_call *c);
void cl_api_volume_snapshot_restore (struct api_call *c);
void cl_api_volume_snapshot_delete (struct api_call *c);
/* api_projects.c (GET /1.0/projects/{project}: list with params[0]) */
void cl_api_projects_list (struct api_call *c);
void cl_api_project_status (struct api_call *c);
void cl_api_project_up (struct api_call *c);
void cl_api_project_down (struct api_call *c);
void cl_api_project_provision (struct api_call *c);
void cl_api_networks_create (struct api_call *c);
void cl_api_network_get (struct api_call *c);
void cl_api_network_delete (struct api_call *c);

/* --- trust.c: /1.0/certificates, PATCH /1.0, the access of a request --- */
/* Opens the database (when inline operations left it closed) and makes
   the store's tables, once; the routes that use them call it first. */
int cl_api_trust_init (struct cl_api_ctx *ctx, cl_error_t *err);
/* The access of a request (its certificate looked up when remote). */
enum cl_api_access cl_api_request_access (struct cl_api_ctx *ctx, const struct cl_api_request *req);
/* The server's settings and TLS identity for GET /1.0 (trusted clients). */
json_t *cl_api_server_tls_info (struct cl_api_ctx *ctx);
void cl_api_server_patch (struct api_call *c);
void cl_api_certificates_list (struct api_call *c);
void cl_api_certificates_add (struct api_call *c);
void cl_api_certificate_get (struct api_call *c);
void cl_api_certificate_patch (struct api_call *c);
void cl_api_certificate_delete (struct api_call *c);

#endif
