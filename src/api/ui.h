/* SPDX-License-Identifier: Apache-2.0 */
/* The web console's side of the daemon: its static files under /ui/, and
   who may use the API over TCP from a browser.

   The Unix socket is trusted by its file mode: nothing here applies to
   it.  Over TCP a request is let through when it comes with a trusted
   TLS client certificate, or with the cookie of a console session.  A
   session starts from a one-time link (POST /1.0/ui/links, which
   `cloison ui-link` calls over the Unix socket): GET /ui/login?token=T
   uses the token up and sets an HttpOnly, Secure, SameSite=Strict
   cookie.  A request made with the cookie that changes something
   (anything but GET and HEAD) must carry the session's CSRF token in
   X-CSRF-Token (the page reads it from GET /ui/session), and any request
   with an Origin header (browsers send it on cross-site posts and on
   every websocket handshake) must come from our own origin.  Sessions
   end at logout (POST /ui/logout), after session_idle_s without a
   request, and session_max_s after login. */
#ifndef CLOISON_API_UI_H
#define CLOISON_API_UI_H

#include "api/api.h"

struct cl_api_ui;

struct cl_api_ui_options
{
  const char *assets_dir; /* the console's files (NULL: none are served) */
  int link_ttl_s;         /* a login link's life; 0: 300 */
  int session_idle_s;     /* 0: 3600 */
  int session_max_s;      /* 0: 12 h */
};

int cl_api_ui_new (const struct cl_api_ui_options *opts, struct cl_api_ui **out, cl_error_t *err);
void cl_api_ui_free (struct cl_api_ui *ui);
/* The URL the console is reached at ("https://host:port"), for login
   links; NULL: no TCP listener, no links. */
void cl_api_ui_set_base_url (struct cl_api_ui *ui, const char *url);
/* Links (POST /1.0/ui/links) are made by this context's router. */
void cl_api_ctx_set_ui (struct cl_api_ctx *ctx, struct cl_api_ui *ui);

/* What the HTTP front end knows of a request beyond cl_api_request. */
struct cl_api_http
{
  bool remote;       /* over TCP, not the Unix socket */
  bool has_cert;     /* with a TLS client certificate, trusted or not */
  bool cert_trusted; /* with a trusted TLS client certificate */
  bool tls;          /* over TLS: cookies are Secure */
  const char *host;  /* the Host header */
  const char *origin;
  const char *cookie;
  const char *csrf; /* X-CSRF-Token */
  const char *accept_encoding;
};

/* Answers what is the console's to answer: the files and login pages
   under /ui/, and the refusals of API requests that may not pass (401,
   403).  Returns true when *resp is the answer; false: the request goes
   to cl_api_handle, with req->console_session set when a session vouches
   for it.  A request with a client certificate and no session goes to
   the router as it is (its trust store decides: a remote redeeming a
   trust token has an untrusted certificate). */
bool cl_api_ui_gate (struct cl_api_ui *ui, struct cl_api_request *req,
                     const struct cl_api_http *http, struct cl_api_response *resp);

#endif
