/* SPDX-License-Identifier: Apache-2.0 */
/* The client side of the API: one request to a cloisond, over HTTPS with
   the user's client certificate and the server's pinned certificate (a
   remote), or over a local daemon's Unix socket; with libcurl.  It takes
   and fills the router's own request and response (api/api.h), so a
   front end calls a remote daemon as it calls the router in-process. */
#ifndef CLOISON_API_REMOTE_H
#define CLOISON_API_REMOTE_H

#include "api/api.h"

#include <signal.h>
#include <stdio.h>

struct cl_api_remote
{
  const char *url;         /* "https://HOST:PORT" (or "http://..." with unix_socket) */
  const char *unix_socket; /* a local daemon's socket; NULL: url over TLS */
  const char *client_cert; /* the client's PEM files (TLS) */
  const char *client_key;
  /* the server's certificate (PEM text), pinned: nothing else is
     accepted, not even one a public CA signed.  NULL: not checked (only
     for the first contact, whose certificate the caller checks against
     the token's fingerprint before trusting it) */
  const char *server_cert;
  long timeout_s; /* the whole request; 0: 60 s */
  /* cl_api_remote_share_new's: requests keep their connection (and TLS
     session) from one to the next, used by one thread at a time; NULL:
     a connection per request */
  void *share;
};

void *cl_api_remote_share_new (void);
void cl_api_remote_share_free (void *share);

/* Sends req (its remote/peer fields unused) and fills *resp like
   cl_api_handle: status, the JSON envelope (or raw for other content),
   Location, ETag.  Returns -1 (resp cleared) only when no HTTP answer
   came: connection refused, TLS refused, a server certificate other than
   the pinned one. */
int cl_api_remote_request (const struct cl_api_remote *remote, const struct cl_api_request *req,
                           struct cl_api_response *resp, cl_error_t *err);

/* Puts req's body on a libcurl handle (CURL *): its JSON body, or its
   body_file streamed as application/octet-stream with X-Cloison-Digest
   (req->digest); If-Match.  Headers are appended to *headers; *file is
   the file opened (the caller closes it after the transfer). */
struct curl_slist;
int cl_api_curl_body (void *curl, const struct cl_api_request *req, struct curl_slist **headers,
                      FILE **file, cl_error_t *err);

/* The certificate the server presents, unchecked (PEM; caller frees). */
int cl_api_remote_server_cert (const struct cl_api_remote *remote, char **pem, cl_error_t *err);

/* Streams GET /1.0/events?QUERY: fn gets each event (one JSON line,
   without its newline) until it returns non-zero or the server ends the
   stream (0), or the connection fails (-1). */
int cl_api_remote_events (const struct cl_api_remote *remote, const char *query,
                          int (*fn) (const char *line, void *data), void *data, cl_error_t *err);

/* A websocket to path_query (GET with Upgrade: websocket) of a remote
   or a local daemon, over the connection a request would take (TLS with
   the pinned certificate, or the Unix socket).  A refused handshake
   gives the API's error message in err.  Frames over max are refused. */
struct cl_api_wsc;
int cl_api_remote_ws_open (const struct cl_api_remote *remote, const char *path_query, size_t max,
                           struct cl_api_wsc **out, cl_error_t *err);
/* Its socket, to poll for POLLIN before cl_api_wsc_recv. */
int cl_api_wsc_fd (const struct cl_api_wsc *w);
/* One frame of ours (masked); -1 when the server is gone. */
int cl_api_wsc_send (struct cl_api_wsc *w, int opcode, const void *data, size_t len);
/* The next frame of the server's, without waiting: its opcode and its
   payload (NUL-terminated, caller frees); -2 when no whole frame has
   come yet, -1 when the server is gone or broke the protocol. */
int cl_api_wsc_recv (struct cl_api_wsc *w, char **payload, size_t *len);
void cl_api_wsc_close (struct cl_api_wsc *w);

/* ---- calls run to their end (call.c) ---- */

/* Sends one request and fills *resp like cl_api_handle; -1 (resp
   cleared) when no HTTP answer came. */
typedef int (*cl_api_send_fn) (void *state, const struct cl_api_request *req,
                               struct cl_api_response *resp, cl_error_t *err);
struct cl_api_caller
{
  cl_api_send_fn send;
  void *state;
};
/* A caller of the remote (the struct must outlive it). */
struct cl_api_caller cl_api_remote_caller (const struct cl_api_remote *remote);

/* req sent; a 202's operation waited for; an error envelope (or a failed
   operation) made err; *out (NULL: not wanted) the reply's metadata, or
   the operation's.  stop (NULL: none): once set, the operation is
   cancelled (DELETE, once) and still waited for. */
int cl_api_call (const struct cl_api_caller *c, const struct cl_api_request *req,
                 const volatile sig_atomic_t *stop, json_t **out, cl_error_t *err);
/* The same with a JSON body (or none). */
int cl_api_call_json (const struct cl_api_caller *c, const char *method, const char *path,
                      const char *query, json_t *body, const volatile sig_atomic_t *stop,
                      json_t **out, cl_error_t *err);
/* Waits for the operation at url, as cl_api_call does. */
int cl_api_wait_operation (const struct cl_api_caller *c, const char *url,
                           const volatile sig_atomic_t *stop, json_t **out, cl_error_t *err);

#endif
