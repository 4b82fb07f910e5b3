/* SPDX-License-Identifier: Apache-2.0 */
/* The REST API of cloison, as a request router callable in-process:
   cloisond serves it over HTTP (src/cli/cloisond.c), and a front end with
   no daemon to talk to can call cl_api_handle directly, so that each verb
   is written once.

   A request is a method, a path ("/1.0/instances/c1", percent-encoded as
   on the wire), a query string ("recursion=1&force=1", without '?') and a
   JSON body.  The response is a status and a JSON document in one of three
   envelopes:
     {"type":"sync","status":"Success","status_code":200,"metadata":...}
     {"type":"async","status":"Operation created","status_code":100,
      "operation":"/1.0/operations/ID","metadata":{operation}}   (202)
     {"type":"error","error_code":N,"error":"message"[,"path":"a.b"]}
   ("path": the JSON path of the request body's bad field, for 400s).
   Logs are text (raw), /1.0/events a stream of JSON events.

   Long actions (create, start, stop, restart, delete, snapshot, restore)
   are operations: each runs in a worker thread of its own with its own
   cl_manager handle, and operations on one instance run in the order they
   were made.  Operations are recorded in the state database (table
   api_operations): those a dead process left pending or running are
   marked failed when the next context opens. */
#ifndef CLOISON_API_H
#define CLOISON_API_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cl_api_ctx;
struct cl_api_events;
struct cl_api_upload;

struct cl_api_options
{
  size_t body_limit; /* bytes; larger bodies get 413.  0: 1 MiB */
  /* exec and console: a program run as `PROG --exec-helper JOB` with the
     command's stdio (cloisond itself); NULL: they answer 501 */
  const char *exec_helper;
  /* A one-shot front end's context (the CLI with no daemon): each
     operation runs to its end in the caller's thread before cl_api_handle
     returns its 202 (no threads, so a VM's monitor forks a process of one
     thread), and operations are kept in memory only, not recorded in
     api_operations. */
  bool inline_ops;
};

#define CL_API_BODY_LIMIT_DEFAULT (1u << 20)
/* An image upload (streamed to a file, not held) is capped apart:
   cloisond --upload-limit */
#define CL_API_UPLOAD_LIMIT_DEFAULT (10ull << 30)
/* GET .../logs answers at most this many bytes: the last ones, or those
   from ?offset=N on */
#define CL_API_LOG_LIMIT (8u << 20)

struct cl_launch_opts;

/* The launch options of a POST /1.0/instances body the router checked
   (an operation's, or an attached run's in cloisond --exec-helper): o's
   strings are body's; cl_api_launch_opts_clear frees o's own arrays. */
int cl_api_launch_opts (json_t *body, struct cl_launch_opts *o, cl_error_t *err);
void cl_api_launch_opts_clear (struct cl_launch_opts *o);

/* Opens the state root: reconciles interrupted instance work
   (cl_mgr_open) and marks operations of dead owners failed. */
int cl_api_ctx_new (const char *root, const struct cl_api_options *opts, struct cl_api_ctx **out,
                    cl_error_t *err);
/* Ends event streams and operation waits (they return at once); new
   operations are refused with 503.  Running operations go on. */
void cl_api_ctx_shutdown (struct cl_api_ctx *ctx);
/* Waits up to timeout_ms for running operations; returns false (and frees
   nothing) when some still run, so that the caller exits rather than
   pulls memory from under them. */
bool cl_api_ctx_free (struct cl_api_ctx *ctx, int timeout_ms);

/* What a client may do: everything (the Unix socket, in-process, a
   trusted certificate over TLS), only GET (a restricted certificate), or
   nothing but GET /1.0 and POST /1.0/certificates with a trust token. */
enum cl_api_access
{
  CL_API_ACCESS_FULL = 0,
  CL_API_ACCESS_READ_ONLY,
  CL_API_ACCESS_NONE,
};

struct cl_api_request
{
  const char *method; /* "GET", "POST", "PUT", "PATCH", "DELETE" */
  const char *path;   /* percent-encoded, no query */
  const char *query;  /* "k=v&k2=v2" or NULL */
  const char *body;   /* NULL or body_len bytes (not NUL-terminated) */
  size_t body_len;
  const char *if_match; /* the If-Match header, or NULL */
  bool websocket;       /* a websocket handshake (Upgrade: websocket, a key) */
  /* over TLS: access is the trust store's word on the client's
     certificate (api/trust.h); false (Unix socket, in-process): full */
  bool remote;
  const char *peer_fingerprint; /* SHA-256 hex of its certificate, NULL: none */
  const char *peer_certificate; /* PEM, NULL: none */
  /* over TCP: this server's address the client reached (numeric), NULL:
     unknown (a live move's destination listens there, docs/move.md) */
  const char *local_address;
  bool console_session; /* a web console session vouches for it (api/ui.h) */
  /* server side: a body streamed to a file (cl_api_upload_*) instead of
     body; the handler takes a reference when it keeps it */
  struct cl_api_upload *upload;
  const char *digest; /* the X-Cloison-Digest header ("sha256:HEX"), or NULL */
  /* client side (the CLI's transports): a file sent as the body,
     application/octet-stream, read as it goes; NULL: body */
  const char *body_file;
};

struct cl_api_response
{
  int status;   /* HTTP status */
  json_t *json; /* the envelope; NULL for raw and stream responses */
  char *raw;    /* a raw body (logs) of raw_len bytes */
  size_t raw_len;
  const char *content_type;     /* of the body (static string) */
  char *location;               /* Location header (async: the operation) */
  char *etag;                   /* ETag header (an instance: its config's) */
  char *allow;                  /* Allow header (405) */
  char *headers;                /* more headers, "Name: value\n" each (the console's) */
  struct cl_api_events *events; /* GET /1.0/events: read with cl_api_events_next */
  /* exec's and the console's websockets: the server upgrades the
     connection and calls cl_api_channel_run */
  struct cl_api_channel *channel;
};

/* Reports what the API did not do itself as lifecycle events: an
   instance whose workload ended, changes made by the CLI or another
   process.  A thread checks every interval_ms whether the state database
   changed (PRAGMA data_version, cheap), and lists the instances only
   then.  Events it makes carry "context": {"observed": true}. */
int cl_api_watch_start (struct cl_api_ctx *ctx, int interval_ms, cl_error_t *err);

/* Calls fn with each event as it is emitted (an in-process front end
   shows an operation's progress from them): in the emitting thread,
   with the context's lock held, so fn must not call the router.  NULL:
   none. */
typedef void (*cl_api_event_fn) (void *opaque, json_t *event);
void cl_api_ctx_observe (struct cl_api_ctx *ctx, cl_api_event_fn fn, void *opaque);
/* The process's log messages (common/log.h: info and up, debug too with
   --debug) become `logging` events of ctx, {"level", "message",
   "context"}: from start until stop (one ctx per process). */
int cl_api_logging_events_start (struct cl_api_ctx *ctx, cl_error_t *err);
void cl_api_logging_events_stop (void);

/* Uploads (upload.c).  Is this request's body one to stream to a file
   (POST /1.0/images, Content-Type application/octet-stream)? */
bool cl_api_upload_wanted (const char *method, const char *path, const char *content_type);
/* A new upload file under ROOT/uploads (named by the query's filename=). */
int cl_api_upload_begin (struct cl_api_ctx *ctx, const char *query, struct cl_api_upload **out,
                         cl_error_t *err);
int cl_api_upload_write (struct cl_api_upload *u, const void *data, size_t n, cl_error_t *err);
uint64_t cl_api_upload_size (const struct cl_api_upload *u);
/* The body ended: the file closed, its SHA-256 known. */
int cl_api_upload_end (struct cl_api_upload *u, cl_error_t *err);
/* Drops a reference; the last removes the file. */
void cl_api_upload_unref (void *u);
/* A file's SHA-256 (64 hex digits + NUL), for a client's
   X-Cloison-Digest. */
int cl_api_file_sha256 (const char *path, char hex[65], cl_error_t *err);

/* Always fills *resp (errors become error envelopes). */
void cl_api_handle (struct cl_api_ctx *ctx, const struct cl_api_request *req,
                    struct cl_api_response *resp);
void cl_api_response_clear (struct cl_api_response *resp);

/* Runs a websocket on the upgraded connection's socket `fd` (blocking,
   in the connection's own thread) until it ends; frees ch, does not close
   fd.  cl_api_channel_free: a channel never run. */
void cl_api_channel_run (struct cl_api_channel *ch, int fd);
void cl_api_channel_free (struct cl_api_channel *ch);

/* Websocket frames (RFC 6455) on an upgraded socket: one frame of ours
   (unmasked), -1 when the peer is gone; one of the client's (masked), its
   payload unmasked in *payload (NUL-terminated, caller frees, at most max
   bytes): its opcode, or -1 when the client is gone or breaks the
   protocol. */
int cl_api_ws_send (int fd, int opcode, const void *data, size_t len);
int cl_api_ws_recv (int fd, char **payload, size_t *len, size_t max);

/* The frame's parts both sides share (ws.c): a header of `opcode` for a
   payload of len bytes, masked with mask (a client's) or not (NULL); its
   size.  The size of a header whose first 2 bytes are h; its fields
   (-1: a payload over max, or a control frame over 125 bytes). */
#define CL_API_WS_HEADER_MAX 14
struct cl_api_ws_frame
{
  int opcode;
  bool masked;
  unsigned char mask[4];
  uint64_t len;
};
size_t cl_api_ws_header (unsigned char h[CL_API_WS_HEADER_MAX], int opcode, uint64_t len,
                         const unsigned char *mask);
size_t cl_api_ws_header_size (const unsigned char h[2]);
int cl_api_ws_header_parse (const unsigned char *h, size_t max, struct cl_api_ws_frame *f);
/* XORs p with the 4-byte mask (masks and unmasks). */
void cl_api_ws_mask (char *p, size_t n, const unsigned char mask[4]);
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (caller frees); -1 if
   the hash failed. */
int cl_api_ws_accept (const char *key, char **accept);

/* Next event of a stream as one JSON line with its '\n' (caller frees).
   1: *line set; 0: none within timeout_ms; -1: the stream ended (the
   context shuts down). */
int cl_api_events_next (struct cl_api_events *ev, int timeout_ms, char **line);
void cl_api_events_free (struct cl_api_events *ev);

/* prefix + name, percent-encoded where needed ("/1.0/instances/" + a
   name; caller frees). */
char *cl_api_url (const char *prefix, const char *name);

/* The route table, for documentation checks (docs/api/openapi.yaml) and
   `cloisond --routes`.  Paths name their parameters "{name}". */
struct cl_api_route_info
{
  const char *method;
  const char *path;
  const char *summary;
};
/* The i-th route, NULL past the last. */
const struct cl_api_route_info *cl_api_route (size_t i);

#endif
