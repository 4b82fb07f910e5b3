/* SPDX-License-Identifier: Apache-2.0 */
/* The web console's gate (src/api/ui_session.c, ui_assets.c) called
   in-process, for what a browser cannot show: each rule's answer, the
   client-certificate paths, the Secure flag over TLS, idle expiry, and
   the files' headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/ui.h"
#include "common/util.h"

struct fixture
{
  char *root;
  struct cl_api_ctx *ctx;
  struct cl_api_ui *ui;
  char cookie[128];
  char csrf[80];
};

static void
write_file (const char *dir, const char *name, const char *text)
{
  char *p = cl_strdup_printf ("%s/%s", dir, name);
  cl_error_t err = NULL;
  assert_int_equal (cl_write_file (p, text, strlen (text), 0, &err), 0);
  free (p);
}

static int
setup_idle (void **state, int idle_s)
{
  char tmpl[] = "/tmp/cloison-unit-ui-XXXXXX";
  struct fixture *f = calloc (1, sizeof *f);
  struct cl_api_ui_options o = { .session_idle_s = idle_s };
  char *assets;
  cl_error_t err = NULL;

  f->root = strdup (mkdtemp (tmpl));
  assets = cl_strdup_printf ("%s/ui", f->root);
  assert_int_equal (cl_mkdir_p (assets, 0755, &err), 0);
  write_file (assets, "index.html", "<!doctype html><title>t</title>");
  write_file (assets, "app.0123456789ab.js", "export const x = 1;");
  write_file (assets, "app.0123456789ab.js.gz", "GZ");
  o.assets_dir = assets;
  assert_int_equal (cl_api_ctx_new (f->root, NULL, &f->ctx, &err), 0);
  assert_int_equal (cl_api_ui_new (&o, &f->ui, &err), 0);
  cl_api_ctx_set_ui (f->ctx, f->ui);
  cl_api_ui_set_base_url (f->ui, "https://example.test:8443");
  free (assets);
  *state = f;
  return 0;
}

static int
setup (void **state)
{
  return setup_idle (state, 0);
}

static int
setup_short (void **state)
{
  return setup_idle (state, 1);
}

static int
teardown (void **state)
{
  struct fixture *f = *state;
  cl_error_t err = NULL;

  assert_true (cl_api_ctx_free (f->ctx, 10000));
  cl_api_ui_free (f->ui);
  assert_int_equal (cl_rm_rf (f->root, &err), 0);
  free (f->root);
  free (f);
  return 0;
}

/* The gate's answer to a request: its status, or 0 when it lets the
   request through to the router.  headers: the response's extra ones. */
static int
gate (struct fixture *f, const char *method, const char *path, const char *query,
      const struct cl_api_http *http, char **headers, bool *session)
{
  struct cl_api_request req = { .method = method, .path = path, .query = query };
  struct cl_api_response resp;
  int status = 0;

  if (cl_api_ui_gate (f->ui, &req, http, &resp))
    status = resp.status;
  if (headers)
    *headers = resp.headers ? cl_xstrdup (resp.headers) : NULL;
  if (session)
    *session = req.console_session;
  cl_api_response_clear (&resp);
  return status;
}

/* A login link from the router, as `cloison ui-link` gets it: its token. */
static char *
new_token (struct fixture *f)
{
  struct cl_api_request req = { .method = "POST", .path = "/1.0/ui/links" };
  struct cl_api_response resp;
  const char *url;
  char *token;

  cl_api_handle (f->ctx, &req, &resp);
  assert_int_equal (resp.status, 200);
  url = json_string_value (json_object_get (json_object_get (resp.json, "metadata"), "url"));
  assert_non_null (strstr (url, "https://example.test:8443/ui/login?token="));
  token = cl_xstrdup (strchr (url, '=') + 1);
  cl_api_response_clear (&resp);
  return token;
}

/* Logs in: fills f->cookie ("cloison_session=...") and f->csrf. */
static void
login (struct fixture *f, const struct cl_api_http *http)
{
  char *token = new_token (f), *q = cl_strdup_printf ("token=%s", token), *h = NULL;
  struct cl_api_http with = *http;
  struct cl_api_request req = { .method = "GET", .path = "/ui/session" };
  struct cl_api_response resp;
  const char *csrf;

  assert_int_equal (gate (f, "GET", "/ui/login", q, http, &h, NULL), 303);
  assert_non_null (strstr (h, "Set-Cookie: cloison_session="));
  assert_non_null (strstr (h, "HttpOnly"));
  assert_non_null (strstr (h, "SameSite=Strict"));
  assert_true ((strstr (h, "Secure") != NULL) == http->tls);
  snprintf (f->cookie, sizeof f->cookie, "%s", strstr (h, "cloison_session="));
  f->cookie[strcspn (f->cookie, ";")] = '\0';
  /* the link works once */
  assert_int_equal (gate (f, "GET", "/ui/login", q, http, NULL, NULL), 403);
  with.cookie = f->cookie;
  assert_true (cl_api_ui_gate (f->ui, &req, &with, &resp));
  assert_int_equal (resp.status, 200);
  csrf
      = json_string_value (json_object_get (json_object_get (resp.json, "metadata"), "csrf_token"));
  assert_int_equal (strlen (csrf), 64);
  snprintf (f->csrf, sizeof f->csrf, "%s", csrf);
  cl_api_response_clear (&resp);
  free (token);
  free (q);
  free (h);
}

static void
test_rules (void **state)
{
  struct fixture *f = *state;
  struct cl_api_http remote = { .remote = true, .tls = true, .host = "example.test:8443" };
  struct cl_api_http local = { 0 }, s;
  bool by_session = true;
  char *h = NULL;

  /* the Unix socket: not the gate's business (the files are served) */
  assert_int_equal (gate (f, "POST", "/1.0/instances", NULL, &local, NULL, &by_session), 0);
  assert_false (by_session);
  assert_int_equal (gate (f, "GET", "/ui/", NULL, &local, NULL, NULL), 200);
  /* nothing without login */
  /* the API: the router's TLS trust rules decide (GET /1.0 only) */
  assert_int_equal (gate (f, "GET", "/1.0", NULL, &remote, NULL, NULL), 0);
  assert_int_equal (gate (f, "GET", "/1.0/instances", NULL, &remote, NULL, NULL), 0);
  assert_int_equal (gate (f, "GET", "/ui/", NULL, &remote, NULL, NULL), 401);
  assert_int_equal (gate (f, "GET", "/ui/app.0123456789ab.js", NULL, &remote, NULL, NULL), 401);
  assert_int_equal (gate (f, "GET", "/ui/login", "token=00", &remote, NULL, NULL), 403);
  assert_int_equal (gate (f, "GET", "/ui/login", NULL, &remote, NULL, NULL), 403);

  login (f, &remote);
  s = remote;
  s.cookie = f->cookie;
  assert_int_equal (gate (f, "GET", "/1.0/instances", NULL, &s, NULL, &by_session), 0);
  assert_true (by_session);
  /* changes need the CSRF token */
  assert_int_equal (gate (f, "POST", "/1.0/instances", NULL, &s, NULL, NULL), 403);
  s.csrf = "0000000000000000000000000000000000000000000000000000000000000000";
  assert_int_equal (gate (f, "DELETE", "/1.0/instances/x", NULL, &s, NULL, NULL), 403);
  s.csrf = f->csrf;
  assert_int_equal (gate (f, "DELETE", "/1.0/instances/x", NULL, &s, NULL, NULL), 0);
  /* our origin only */
  s.origin = "https://example.test:8443";
  assert_int_equal (gate (f, "POST", "/1.0/instances", NULL, &s, NULL, NULL), 0);
  s.origin = "http://example.test:8443"; /* the scheme counts */
  assert_int_equal (gate (f, "POST", "/1.0/instances", NULL, &s, NULL, NULL), 403);
  s.origin = "https://evil.test";
  assert_int_equal (gate (f, "GET", "/1.0/events", NULL, &s, NULL, NULL), 403);
  s.origin = "null";
  assert_int_equal (gate (f, "GET", "/1.0/events", NULL, &s, NULL, NULL), 403);
  s.origin = NULL;
  /* a session makes no links */
  assert_int_equal (gate (f, "POST", "/1.0/ui/links", NULL, &s, NULL, NULL), 403);
  /* logout: the cookie is cleared and opens nothing more */
  assert_int_equal (gate (f, "POST", "/ui/logout", NULL, &s, &h, NULL), 200);
  assert_non_null (strstr (h, "Max-Age=0"));
  free (h);
  assert_int_equal (gate (f, "GET", "/1.0/instances", NULL, &s, NULL, NULL), 401);
}

static void
test_certificates (void **state)
{
  struct fixture *f = *state;
  struct cl_api_http untrusted = { .remote = true, .tls = true, .host = "h:1", .has_cert = true };
  struct cl_api_http trusted = untrusted;
  struct cl_api_request req = { .method = "GET", .path = "/ui/session" };
  struct cl_api_response resp;
  bool by_session = true;

  /* an untrusted certificate: the router decides (trust tokens); the
     console's files stay closed */
  assert_int_equal (gate (f, "GET", "/1.0", NULL, &untrusted, NULL, &by_session), 0);
  assert_false (by_session);
  assert_int_equal (gate (f, "POST", "/1.0/certificates", NULL, &untrusted, NULL, NULL), 0);
  assert_int_equal (gate (f, "GET", "/ui/", NULL, &untrusted, NULL, NULL), 401);
  /* a trusted one: in, and its page gets a session for the CSRF token */
  trusted.cert_trusted = true;
  assert_int_equal (gate (f, "GET", "/ui/", NULL, &trusted, NULL, NULL), 200);
  assert_int_equal (gate (f, "POST", "/1.0/instances", NULL, &trusted, NULL, NULL), 0);
  trusted.origin = "https://evil.test";
  assert_int_equal (gate (f, "POST", "/1.0/instances", NULL, &trusted, NULL, NULL), 403);
  trusted.origin = NULL;
  assert_true (cl_api_ui_gate (f->ui, &req, &trusted, &resp));
  assert_int_equal (resp.status, 200);
  assert_non_null (strstr (resp.headers, "Set-Cookie: cloison_session="));
  cl_api_response_clear (&resp);
}

static void
test_files (void **state)
{
  struct fixture *f = *state;
  struct cl_api_http local = { .accept_encoding = "gzip, deflate" };
  struct cl_api_request req = { .method = "GET", .path = "/ui/app.0123456789ab.js" };
  struct cl_api_response resp;
  static const char *const bad[] = { "/ui/../x.js",      "/ui/.x.js", "/ui/a//b.js",
                                     "/ui/a/../../b.js", "/ui/x.exe", "/ui/none.js" };

  assert_true (cl_api_ui_gate (f->ui, &req, &local, &resp));
  assert_int_equal (resp.status, 200);
  assert_string_equal (resp.content_type, "text/javascript; charset=utf-8");
  assert_int_equal (resp.raw_len, 2); /* the .gz twin */
  assert_non_null (strstr (resp.headers, "Content-Encoding: gzip"));
  assert_non_null (strstr (resp.headers, "immutable"));
  cl_api_response_clear (&resp);
  local.accept_encoding = NULL;
  assert_true (cl_api_ui_gate (f->ui, &req, &local, &resp));
  assert_int_equal (resp.raw_len, strlen ("export const x = 1;"));
  assert_null (strstr (resp.headers, "Content-Encoding"));
  cl_api_response_clear (&resp);
  req.path = "/ui/";
  assert_true (cl_api_ui_gate (f->ui, &req, &local, &resp));
  assert_string_equal (resp.content_type, "text/html; charset=utf-8");
  assert_non_null (strstr (resp.headers, "Cache-Control: no-cache"));
  cl_api_response_clear (&resp);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      req.path = bad[i];
      assert_true (cl_api_ui_gate (f->ui, &req, &local, &resp));
      assert_int_equal (resp.status, 404);
      cl_api_response_clear (&resp);
    }
}

static void
test_idle_sessions_end (void **state)
{
  struct fixture *f = *state;
  struct cl_api_http plain = { .remote = true, .host = "h:1" }, s;

  login (f, &plain); /* plain HTTP: no Secure flag */
  s = plain;
  s.cookie = f->cookie;
  assert_int_equal (gate (f, "GET", "/1.0/instances", NULL, &s, NULL, NULL), 0);
  sleep (2);
  assert_int_equal (gate (f, "GET", "/1.0/instances", NULL, &s, NULL, NULL), 401);
}

static void
test_no_listener_no_links (void **state)
{
  struct fixture *f = *state;
  struct cl_api_request req = { .method = "POST", .path = "/1.0/ui/links" };
  struct cl_api_response resp;

  cl_api_ctx_set_ui (f->ctx, NULL);
  cl_api_handle (f->ctx, &req, &resp);
  assert_int_equal (resp.status, 503);
  cl_api_response_clear (&resp);
  cl_api_ctx_set_ui (f->ctx, f->ui);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_rules, setup, teardown),
    cmocka_unit_test_setup_teardown (test_certificates, setup, teardown),
    cmocka_unit_test_setup_teardown (test_files, setup, teardown),
    cmocka_unit_test_setup_teardown (test_idle_sessions_end, setup_short, teardown),
    cmocka_unit_test_setup_teardown (test_no_listener_no_links, setup, teardown),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
