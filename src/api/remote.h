/* SPDX-License-Identifier: Apache-2.0 */
/* The client side of the API: one request to a cloisond, over HTTPS with
   the user's client certificate and the server's pinned certificate (a
   remote), or over a local daemon's Unix socket; with libcurl.  It takes
   and fills the router's own request and response (api/api.h), so a
   front end calls a remote daemon as it calls the router in-process. */
#ifndef CLOISON_API_REMOTE_H
#define CLOISON_API_REMOTE_H

#include "api/api.h"

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

#endif
