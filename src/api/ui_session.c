/* SPDX-License-Identifier: Apache-2.0 */
/* The web console's sessions: one-time login links, session cookies, the
   CSRF token and the origin check (the rules are in ui.h).  Everything is
   in memory: a daemon restart logs every browser out, and a link made
   before it no longer works. */
#include "api/api_internal.h"
#include "api/ui.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define TOKEN_HEX 64 /* 32 random bytes */
#define MAX_SESSIONS 1024
#define MAX_LINKS 256
#define COOKIE_NAME "cloison_session"

struct ui_secret
{
  char value[TOKEN_HEX + 1];
  int64_t created, used, expires;
  char csrf[TOKEN_HEX + 1]; /* sessions only */
};

struct cl_api_ui
{
  pthread_mutex_t lock;
  char *assets_dir;
  char *base_url;
  int link_ttl_s, session_idle_s, session_max_s;
  struct ui_secret links[MAX_LINKS];
  struct ui_secret sessions[MAX_SESSIONS];
};

static int64_t
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

static void
random_hex (char out[TOKEN_HEX + 1])
{
  unsigned char b[TOKEN_HEX / 2];
  size_t got = 0;

  while (got < sizeof b)
    {
      ssize_t n = getrandom (b + got, sizeof b - got, 0);
      if (n < 0)
        abort (); /* no randomness: no token we could trust */
      got += (size_t)n;
    }
  for (size_t i = 0; i < sizeof b; i++)
    snprintf (out + 2 * i, 3, "%02x", b[i]);
}


int
cl_api_ui_new (const struct cl_api_ui_options *opts, struct cl_api_ui **out, cl_error_t *err)
{
  struct cl_api_ui *ui = cl_xmalloc0 (sizeof *ui);
  (void)err;
  pthread_mutex_init (&ui->lock, NULL);
  ui->assets_dir = cl_xstrdup (opts->assets_dir);
  ui->link_ttl_s = opts->link_ttl_s > 0 ? opts->link_ttl_s : 300;
  ui->session_idle_s = opts->session_idle_s > 0 ? opts->session_idle_s : 3600;
  ui->session_max_s = opts->session_max_s > 0 ? opts->session_max_s : 12 * 3600;
  *out = ui;
  return 0;
}

void
cl_api_ui_free (struct cl_api_ui *ui)
{
  if (ui == NULL)
    return;
  pthread_mutex_destroy (&ui->lock);
  free (ui->assets_dir);
  free (ui->base_url);
  free (ui);
}

void
cl_api_ui_set_base_url (struct cl_api_ui *ui, const char *url)
{
  pthread_mutex_lock (&ui->lock);
  free (ui->base_url);
  ui->base_url = cl_xstrdup (url);
  pthread_mutex_unlock (&ui->lock);
}

void
cl_api_ctx_set_ui (struct cl_api_ctx *ctx, struct cl_api_ui *ui)
{
  ctx->ui = ui;
}

/* A free slot of the table (an expired one, else the oldest).  Lock
   held. */
static struct ui_secret *
slot_take (struct ui_secret *table, size_t n, int64_t now)
{
  struct ui_secret *oldest = &table[0];
  for (size_t i = 0; i < n; i++)
    {
      if (table[i].value[0] == '\0' || table[i].expires <= now)
        return &table[i];
      if (table[i].created < oldest->created)
        oldest = &table[i];
    }
  return oldest;
}

/* The live entry whose value is `value`; expired ones are wiped on the
   way.  Lock held. */
static struct ui_secret *
slot_find (struct ui_secret *table, size_t n, const char *value, int64_t now)
{
  struct ui_secret *found = NULL;
  for (size_t i = 0; i < n; i++)
    {
      if (table[i].value[0] == '\0')
        continue;
      if (table[i].expires <= now)
        {
          memset (&table[i], 0, sizeof table[i]);
          continue;
        }
      if (cl_api_secret_equal (table[i].value, value))
        found = &table[i];
    }
  return found;
}

/* ---- POST /1.0/ui/links ---- */

void
cl_api_ui_links_create (struct api_call *c)
{
  static const struct api_field fields[] = { { NULL, 0, false, NULL } };
  struct cl_api_ui *ui = c->ctx->ui;
  struct ui_secret *l;
  int64_t now = now_s ();
  char *url;

  if (cl_api_check_body (c, fields, false) < 0)
    return;
  if (ui == NULL)
    {
      cl_api_reply_error (c, 503,
                          "no cloisond serves this state root: the web console and its "
                          "login links are cloisond's (cloisond --listen ADDR:PORT)");
      return;
    }
  pthread_mutex_lock (&ui->lock);
  if (ui->base_url == NULL)
    {
      pthread_mutex_unlock (&ui->lock);
      cl_api_reply_error (c, 409,
                          "cloisond serves no TCP listener (--listen): no console to "
                          "log in to");
      return;
    }
  l = slot_take (ui->links, MAX_LINKS, now);
  memset (l, 0, sizeof *l);
  random_hex (l->value);
  l->created = now;
  l->expires = now + ui->link_ttl_s;
  url = cl_strdup_printf ("%s/ui/login?token=%s", ui->base_url, l->value);
  pthread_mutex_unlock (&ui->lock);
  cl_api_reply_sync (c, 200, json_pack ("{s:s, s:i}", "url", url, "expires_in", ui->link_ttl_s));
  free (url);
}

/* ---- the gate ---- */

/* The session cookie's value in a Cookie header (caller frees), or NULL. */
static char *
cookie_value (const char *cookie)
{
  const char *p = cookie;
  size_t nlen = strlen (COOKIE_NAME);

  while (p && *p)
    {
      p += strspn (p, " ;");
      if (strncmp (p, COOKIE_NAME, nlen) == 0 && p[nlen] == '=')
        {
          const char *v = p + nlen + 1;
          char *out = cl_xstrdup (v);
          out[strcspn (out, "; ")] = '\0';
          return out;
        }
      p = strchr (p, ';');
    }
  return NULL;
}

/* The session of this request's cookie, copied to *out; false when it
   has none, or one unknown or expired.  Using a session keeps it alive. */
static bool
session_of (struct cl_api_ui *ui, const struct cl_api_http *http, struct ui_secret *out)
{
  cleanup_free char *id = http->cookie ? cookie_value (http->cookie) : NULL;
  struct ui_secret *s;
  int64_t now = now_s ();

  if (id == NULL || strlen (id) != TOKEN_HEX)
    return false;
  pthread_mutex_lock (&ui->lock);
  s = slot_find (ui->sessions, MAX_SESSIONS, id, now);
  if (s && s->used + ui->session_idle_s <= now)
    {
      memset (s, 0, sizeof *s);
      s = NULL;
    }
  if (s)
    {
      s->used = now;
      *out = *s;
    }
  pthread_mutex_unlock (&ui->lock);
  return s != NULL;
}

static void
session_new (struct cl_api_ui *ui, struct ui_secret *out)
{
  int64_t now = now_s ();
  struct ui_secret *s;

  pthread_mutex_lock (&ui->lock);
  s = slot_take (ui->sessions, MAX_SESSIONS, now);
  memset (s, 0, sizeof *s);
  random_hex (s->value);
  random_hex (s->csrf);
  s->created = s->used = now;
  s->expires = now + ui->session_max_s;
  *out = *s;
  pthread_mutex_unlock (&ui->lock);
}

static void
session_end (struct cl_api_ui *ui, const char *id)
{
  struct ui_secret *s;
  pthread_mutex_lock (&ui->lock);
  s = slot_find (ui->sessions, MAX_SESSIONS, id, now_s ());
  if (s)
    memset (s, 0, sizeof *s);
  pthread_mutex_unlock (&ui->lock);
}

/* Uses a login link's token up; false when it is unknown, used or
   expired. */
static bool
link_use (struct cl_api_ui *ui, const char *token)
{
  struct ui_secret *l;
  pthread_mutex_lock (&ui->lock);
  l = strlen (token) == TOKEN_HEX ? slot_find (ui->links, MAX_LINKS, token, now_s ()) : NULL;
  if (l)
    memset (l, 0, sizeof *l);
  pthread_mutex_unlock (&ui->lock);
  return l != NULL;
}

/* Origin is "scheme://Host" of this very request. */
static bool
origin_ours (const struct cl_api_http *http)
{
  const char *scheme = http->tls ? "https://" : "http://";
  size_t n = strlen (scheme);
  return http->host && strncasecmp (http->origin, scheme, n) == 0
         && strcasecmp (http->origin + n, http->host) == 0;
}

static void
set_cookie (struct cl_api_ui *ui, const struct cl_api_http *http, struct cl_api_response *resp,
            const char *value, int max_age)
{
  cleanup_free char *v
      = cl_strdup_printf (COOKIE_NAME "=%s; Path=/; Max-Age=%d; HttpOnly;%s SameSite=Strict", value,
                          max_age, http->tls ? " Secure;" : "");
  (void)ui;
  cl_api_add_header (resp, "Set-Cookie", v);
}

static void
reply_json (struct cl_api_response *resp, int status, json_t *j)
{
  json_decref (resp->json);
  resp->status = status;
  resp->json = j;
  resp->content_type = "application/json";
}

static void
refuse (struct cl_api_response *resp, int status, const char *msg)
{
  reply_json (resp, status,
              json_pack ("{s:s, s:i, s:s}", "type", "error", "error_code", status, "error", msg));
}

/* A small page of its own (no script, no style sheet): the console's
   files are only for those logged in. */
static void
reply_page (struct cl_api_response *resp, int status, const char *title, const char *text)
{
  free (resp->raw);
  resp->status = status;
  resp->raw = cl_strdup_printf (
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>cloison: %s</title></head>\n<body><main><h1>%s</h1><p>%s</p></main></body></html>\n",
      title, title, text);
  resp->raw_len = strlen (resp->raw);
  resp->content_type = "text/html; charset=utf-8";
  cl_api_add_header (resp, "Cache-Control", "no-store");
}

static const char login_help[]
    = "Open the console with a one-time link: run <code>cloison ui-link</code> on the server "
      "and open the address it prints (it works once, for a few minutes). A browser with a "
      "trusted client certificate is let in without one.";

static void
page_headers (struct cl_api_response *resp)
{
  cl_api_add_header (resp, "Content-Security-Policy",
                     "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                     "object-src 'none'; base-uri 'none'; form-action 'self'; "
                     "frame-ancestors 'none'");
  cl_api_add_header (resp, "X-Content-Type-Options", "nosniff");
  cl_api_add_header (resp, "Referrer-Policy", "no-referrer");
  cl_api_add_header (resp, "X-Frame-Options", "DENY");
}

static const char *
query_token (const char *query)
{
  for (const char *p = query; p && *p; p = strchr (p, '&') ? strchr (p, '&') + 1 : NULL)
    if (strncmp (p, "token=", 6) == 0)
      return p + 6;
  return NULL;
}

static void
ui_login (struct cl_api_ui *ui, const struct cl_api_request *req, const struct cl_api_http *http,
          struct cl_api_response *resp)
{
  const char *t = query_token (req->query);
  cleanup_free char *token = t ? cl_xstrdup (t) : NULL;
  struct ui_secret s;

  if (token)
    token[strcspn (token, "&")] = '\0';
  if (token == NULL || !link_use (ui, token))
    {
      reply_page (resp, 403, "This link does not work",
                  "It was used already, or it expired, or it is not one of this server's. "
                  "Run <code>cloison ui-link</code> for a new one.");
      return;
    }
  session_new (ui, &s);
  resp->status = 303;
  resp->location = cl_xstrdup ("/ui/");
  resp->raw = cl_xstrdup ("");
  resp->content_type = "text/plain";
  set_cookie (ui, http, resp, s.value, ui->session_max_s);
  cl_api_add_header (resp, "Cache-Control", "no-store");
}

static bool
changes_something (const char *method)
{
  return strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0;
}

bool
cl_api_ui_gate (struct cl_api_ui *ui, struct cl_api_request *req, const struct cl_api_http *http,
                struct cl_api_response *resp)
{
  const char *path = req->path;
  bool is_ui = strcmp (path, "/ui") == 0 || strncmp (path, "/ui/", 4) == 0;
  bool has_session, gzip_ok;
  struct ui_secret s;

  memset (resp, 0, sizeof *resp);
  gzip_ok = http->accept_encoding && strstr (http->accept_encoding, "gzip");
  if (!http->remote)
    {
      /* the Unix socket: trusted by its mode; the files are served for
         checks, not for browsers */
      if (!is_ui)
        return false;
      cl_api_ui_asset (ui->assets_dir, path[3] && path[4] ? path + 4 : "index.html", gzip_ok, resp);
      return true;
    }
  if (http->origin && !origin_ours (http))
    {
      refuse (resp, 403,
              "cross-origin request refused: the console and the API are served "
              "to their own origin only");
      return true;
    }
  if (is_ui && strcmp (path, "/ui/login") == 0 && strcmp (req->method, "GET") == 0)
    {
      ui_login (ui, req, http, resp);
      page_headers (resp);
      return true;
    }
  has_session = session_of (ui, http, &s);
  if (!has_session && http->cert_trusted && is_ui && strcmp (path, "/ui/session") == 0)
    {
      /* a browser with a trusted certificate: a session of its own, for
         the CSRF token that its requests carry like any other's */
      session_new (ui, &s);
      set_cookie (ui, http, resp, s.value, ui->session_max_s);
      has_session = true;
    }
  if (has_session && changes_something (req->method)
      && (http->csrf == NULL || !cl_api_secret_equal (http->csrf, s.csrf)))
    {
      refuse (resp, 403,
              "missing or wrong X-CSRF-Token: a change made with the console's "
              "session must carry the session's token");
      return true;
    }
  if (!has_session && !http->cert_trusted && !is_ui
      && !(http->cookie && strstr (http->cookie, COOKIE_NAME "=")))
    return false; /* the router's trust rules: GET /1.0 (no secrets), trust
                     tokens, 403 for the rest (docs/remotes.md) */
  if (!has_session && !http->cert_trusted)
    {
      if (is_ui && (strcmp (path, "/ui") == 0 || strcmp (path, "/ui/") == 0))
        {
          reply_page (resp, 401, "Log in to cloison", login_help);
          page_headers (resp);
        }
      else
        refuse (resp, 401,
                http->cookie && strstr (http->cookie, COOKIE_NAME "=")
                    ? "the console session ended (logged out or expired): log in again"
                    : "not logged in: a trusted client certificate or a console session is "
                      "needed (cloison ui-link)");
      return true;
    }
  if (!is_ui)
    {
      /* a session may not make itself new links (it would never end) */
      if (has_session && strncmp (path, "/1.0/ui/", 8) == 0)
        {
          refuse (resp, 403,
                  "login links are made over the Unix socket or with a trusted "
                  "certificate");
          return true;
        }
      req->console_session = has_session;
      return false;
    }
  if (strcmp (path, "/ui/session") == 0 && strcmp (req->method, "GET") == 0)
    {
      reply_json (resp, 200,
                  json_pack ("{s:s, s:s, s:i, s:{s:s, s:i, s:i}}", "type", "sync", "status",
                             "Success", "status_code", 200, "metadata", "csrf_token", s.csrf,
                             "idle_timeout", ui->session_idle_s, "expires_in",
                             (int)(s.expires - now_s ())));
      cl_api_add_header (resp, "Cache-Control", "no-store");
      return true;
    }
  if (strcmp (path, "/ui/logout") == 0 && strcmp (req->method, "POST") == 0)
    {
      if (has_session)
        session_end (ui, s.value);
      set_cookie (ui, http, resp, "", 0);
      reply_json (resp, 200,
                  json_pack ("{s:s, s:s, s:i, s:n}", "type", "sync", "status", "Success",
                             "status_code", 200, "metadata"));
      return true;
    }
  if (strcmp (req->method, "GET") != 0 && strcmp (req->method, "HEAD") != 0)
    {
      refuse (resp, 405, "the console's files are read with GET");
      cl_api_add_header (resp, "Allow", "GET, HEAD");
      return true;
    }
  cl_api_ui_asset (ui->assets_dir, path[3] && path[4] ? path + 4 : "index.html", gzip_ok, resp);
  page_headers (resp);
  return true;
}
