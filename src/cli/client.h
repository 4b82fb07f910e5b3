/* SPDX-License-Identifier: Apache-2.0 */
/* The CLI's client of the REST API (src/api/api.h): every verb of
   `cloison` is a request to the API, sent through a transport:

   - the daemon's Unix socket (libcurl), when a cloisond serves the state
     root: found by the link ROOT/cloisond.sock the daemon makes to its
     socket, else at /run/cloison/cloison.sock, and taken only when the
     daemon says (GET /1.0) that it serves that root;
   - in-process: the request router called directly, on a context whose
     operations run to their end before their 202 is returned, so that
     `cloison` works with no daemon and no verb is written twice.

   A transport is a small table of functions (struct cli_transport):
   another one (HTTPS to a remote) plugs in with cli_client_new. */
#ifndef CLOISON_CLI_CLIENT_H
#define CLOISON_CLI_CLIENT_H

#include "api/api.h"
#include "api/remote.h"
#include "common/error.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>

struct cli_transport
{
  const char *name; /* "unix", "in-process", "https" */
  /* Sends req; fills *resp (json: the envelope when the body is JSON,
     else raw).  Returns -1 with err set only when the request could not
     be made at all (an API error is a response). */
  int (*request) (void *state, const struct cl_api_request *req, struct cl_api_response *resp,
                  cl_error_t *err);
  void (*close) (void *state);
  /* Optional: calls fn with each event of the server from now on (NULL
     fn: no more), so that a verb shows an operation's progress. */
  void (*watch) (void *state, cl_api_event_fn fn, void *opaque);
  /* Optional: the server as api/remote.h addresses it, for connections
     of the caller's own (websockets: exec, console); NULL in-process. */
  const struct cl_api_remote *(*remote) (void *state);
};

struct cli_client;

/* The client for a state root: the daemon serving it, else (or when
   local) in-process. */
int cli_client_open (const char *root, bool local, struct cli_client **out, cl_error_t *err);
/* A client over a transport of the caller's (state is the transport's,
   closed with the client). */
struct cli_client *cli_client_new (const struct cli_transport *t, void *state);
void cli_client_close (struct cli_client *c);
/* The transport chosen ("unix", "in-process", ...). */
const char *cli_client_transport (struct cli_client *c);
/* The daemon's socket of a "unix" client, else NULL (for streams, which
   go around cli_request: cloison monitor). */
const char *cli_client_socket (struct cli_client *c);

/* The server behind the client (cli_transport.remote), or NULL when
   the requests are in-process. */
const struct cl_api_remote *cli_client_remote (struct cli_client *c);

/* The transports of this file, for cli_client_new. */
/* Over a Unix socket; -1 with err when nothing answers there. */
int cli_unix_transport (const char *socket_path, const struct cli_transport **t, void **state,
                        cl_error_t *err);
int cli_inprocess_transport (const char *root, const struct cli_transport **t, void **state,
                             cl_error_t *err);

/* Events as they come (cli_transport.watch), when the transport has
   them; returns false when it has not. */
bool cli_client_watch (struct cli_client *c, cl_api_event_fn fn, void *opaque);

/* One request as it goes: fills *resp (cl_api_response_clear after). */
int cli_request (struct cli_client *c, const struct cl_api_request *req,
                 struct cl_api_response *resp, cl_error_t *err);

/* A request run to its end: a sync answer gives its metadata in *out (may
   be NULL), a 202 is waited for (/1.0/operations/ID/wait) and gives the
   ended operation's metadata, an error envelope or a failed operation
   gives -1 with its message in err.  body (may be NULL) is borrowed; out
   may be NULL. */
/* Waits for the operation at url ("/1.0/operations/ID") to end: its
   metadata in *out (may be NULL), or -1 with its error. */
int cli_wait_operation (struct cli_client *c, const char *url, json_t **out, cl_error_t *err);

int cli_call (struct cli_client *c, const char *method, const char *path, const char *query,
              json_t *body, json_t **out, cl_error_t *err);

/* cli_call of an action that may take long: once *stop is set (a
   signal handler's flag) its operation is cancelled (DELETE
   /1.0/operations/ID) and waited for to its end. */
int cli_call_cancellable (struct cli_client *c, const char *method, const char *path, json_t *body,
                          volatile sig_atomic_t *stop, json_t **out, cl_error_t *err);

/* The same with a file as the body, streamed (application/octet-stream)
   with its digest (X-Cloison-Digest: sha256:HEX, computed first): an
   image upload.  Only over a server's socket or HTTPS. */
int cli_call_file (struct cli_client *c, const char *method, const char *path, const char *query,
                   const char *file, json_t **out, cl_error_t *err);

#endif
