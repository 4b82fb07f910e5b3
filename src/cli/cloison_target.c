/* SPDX-License-Identifier: Apache-2.0 */
/* The CLI's API requests and the user's client configuration (target.h). */
#include "api/tls.h"
#include "cli/target.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/cloison/cloison.sock"

char *
cli_config_dir (void)
{
  const char *d = getenv ("CLOISON_CONFIG"), *home;
  struct passwd *pw;

  if (d && *d)
    return cl_xstrdup (d);
  if ((d = getenv ("XDG_CONFIG_HOME")) && *d)
    return cl_strdup_printf ("%s/cloison", d);
  home = getenv ("HOME");
  if ((home == NULL || *home == '\0') && (pw = getpwuid (getuid ())))
    home = pw->pw_dir;
  return cl_strdup_printf ("%s/.config/cloison", home ? home : "/");
}

int
cli_config_load (json_t **out, cl_error_t *err)
{
  cleanup_free char *dir = cli_config_dir ();
  cleanup_free char *path = cl_strdup_printf ("%s/config.json", dir);
  json_t *cfg = NULL;

  if (access (path, F_OK) != 0)
    cfg = json_object ();
  else if (cl_json_load_file (path, &cfg, err) < 0)
    return -1;
  if (!json_is_object (cfg))
    {
      json_decref (cfg);
      return cl_error_make (err, 0, "`%s`: expected a JSON object", path);
    }
  if (!json_is_object (json_object_get (cfg, "remotes")))
    json_object_set_new (cfg, "remotes", json_object ());
  if (!json_is_string (json_object_get (cfg, "default_remote")))
    json_object_set_new (cfg, "default_remote", json_string ("local"));
  *out = cfg;
  return 0;
}

int
cli_config_save (json_t *cfg, cl_error_t *err)
{
  cleanup_free char *dir = cli_config_dir ();
  cleanup_free char *path = cl_strdup_printf ("%s/config.json", dir);
  cleanup_free char *s = NULL;

  if (cl_mkdir_p (dir, 0700, err) < 0)
    return -1;
  s = json_dumps (cfg, JSON_INDENT (2) | JSON_SORT_KEYS);
  return cl_write_file (path, s, strlen (s), 1, err);
}

int
cli_client_keypair (char **crt, char **key, cl_error_t *err)
{
  cleanup_free char *dir = cli_config_dir ();
  char host[200] = "host", cn[300];
  struct passwd *pw = getpwuid (getuid ());

  gethostname (host, sizeof host - 1);
  snprintf (cn, sizeof cn, "%s@%s", pw ? pw->pw_name : "user", host);
  if (cl_api_tls_keypair (dir, "client", cn, NULL, err) < 0)
    return -1;
  *crt = cl_strdup_printf ("%s/client.crt", dir);
  *key = cl_strdup_printf ("%s/client.key", dir);
  return 0;
}

int
cli_selected_remote (struct cloison_globals *g, const char **name, cl_error_t *err)
{
  cleanup_json json_t *cfg = NULL;
  const char *n = g->remote;

  *name = NULL;
  if (n && strcmp (n, "local") == 0)
    return 0;
  if (cli_config_load (&cfg, err) < 0)
    return -1;
  if (n == NULL)
    n = json_string_value (json_object_get (cfg, "default_remote"));
  if (strcmp (n, "local") == 0)
    return 0;
  if (json_object_get (json_object_get (cfg, "remotes"), n) == NULL)
    return cl_error_make (err, 0, "remote `%s`: no such remote (see cloison remote list)", n);
  /* a string that lives as long as the process: argv or the cache */
  *name = g->remote && strcmp (g->remote, n) == 0 ? g->remote : (g->remote = cl_xstrdup (n));
  return 0;
}

/* A daemon that serves this state root on the local socket? */
static bool
local_daemon (struct cloison_globals *g, struct cli_target *t)
{
  const char *sock = getenv ("CLOISON_SOCKET");
  struct cl_api_request req = { .method = "GET", .path = "/1.0" };
  struct cl_api_response resp;
  char want[PATH_MAX], have[PATH_MAX];
  const char *root;
  cl_error_t err = NULL;
  bool same;

  if (sock == NULL || *sock == '\0')
    sock = DEFAULT_SOCKET;
  if (access (sock, F_OK) != 0 || realpath (g->root, want) == NULL)
    return false;
  t->socket = cl_xstrdup (sock);
  t->remote.unix_socket = t->socket;
  t->remote.timeout_s = 5;
  if (cl_api_remote_request (&t->remote, &req, &resp, &err) < 0)
    {
      cl_error_release (&err);
      return false;
    }
  root = json_string_value (json_object_get (
      json_object_get (json_object_get (resp.json, "metadata"), "environment"), "storage_root"));
  same = root && realpath (root, have) && strcmp (want, have) == 0;
  cl_api_response_clear (&resp);
  t->remote.timeout_s = 0;
  return same;
}

int
cli_target_open (struct cloison_globals *g, const char *remote, struct cli_target *t,
                 cl_error_t *err)
{
  cleanup_json json_t *cfg = NULL;
  json_t *r;

  memset (t, 0, sizeof *t);
  t->name = "local";
  if (remote == NULL || strcmp (remote, "local") == 0)
    {
      if (local_daemon (g, t))
        return 0;
      free (t->socket);
      memset (t, 0, sizeof *t);
      t->name = "local";
      return cl_api_ctx_new (g->root, NULL, &t->ctx, err);
    }
  if (cli_config_load (&cfg, err) < 0)
    return -1;
  r = json_object_get (json_object_get (cfg, "remotes"), remote);
  if (!json_is_string (json_object_get (r, "addr"))
      || !json_is_string (json_object_get (r, "certificate")))
    return cl_error_make (err, 0, "remote `%s`: no such remote (see cloison remote list)", remote);
  if (cli_client_keypair (&t->client_cert, &t->client_key, err) < 0)
    return -1;
  t->name = remote;
  t->url = cl_xstrdup (json_string_value (json_object_get (r, "addr")));
  t->server_cert = cl_xstrdup (json_string_value (json_object_get (r, "certificate")));
  t->remote.url = t->url;
  t->remote.server_cert = t->server_cert;
  t->remote.client_cert = t->client_cert;
  t->remote.client_key = t->client_key;
  return 0;
}

void
cli_target_close (struct cli_target *t)
{
  /* in-process operations still running end first */
  if (t->ctx && !cl_api_ctx_free (t->ctx, 3600 * 1000))
    fprintf (stderr, "cloison: operations still running at exit\n");
  free (t->url);
  free (t->server_cert);
  free (t->client_cert);
  free (t->client_key);
  free (t->socket);
  memset (t, 0, sizeof *t);
}

static int
target_send (struct cli_target *t, const struct cl_api_request *req, struct cl_api_response *resp,
             cl_error_t *err)
{
  if (t->ctx)
    {
      cl_api_handle (t->ctx, req, resp);
      return 0;
    }
  if (cl_api_remote_request (&t->remote, req, resp, err) < 0)
    return strcmp (t->name, "local") ? cl_error_wrap (err, "remote `%s`", t->name) : -1;
  return 0;
}

/* An error envelope (or a body that is none) as an error. */
static int
reply_error (struct cli_target *t, const struct cl_api_response *resp, cl_error_t *err)
{
  const char *msg = json_string_value (json_object_get (resp->json, "error"));
  const char *prefix = strcmp (t->name, "local") ? t->name : NULL;

  if (msg == NULL)
    return cl_error_make (err, 0, "%s%sunexpected answer: HTTP %d", prefix ? prefix : "",
                          prefix ? ": " : "", resp->status);
  return cl_error_make (err, 0, "%s%s%s", prefix ? prefix : "", prefix ? ": " : "", msg);
}

int
cli_target_call (struct cli_target *t, const char *method, const char *path, const char *query,
                 json_t *body, json_t **metadata, cl_error_t *err)
{
  cleanup_free char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
  cleanup_free char *wait = NULL;
  struct cl_api_request req = { .method = method,
                                .path = path,
                                .query = query,
                                .body = text,
                                .body_len = text ? strlen (text) : 0 };
  struct cl_api_response resp;
  json_t *md;
  int ret = 0;

  json_decref (body);
  if (metadata)
    *metadata = NULL;
  if (target_send (t, &req, &resp, err) < 0)
    return -1;
  if (resp.status == 202 && json_is_string (json_object_get (resp.json, "operation")))
    {
      wait = cl_strdup_printf ("%s/wait",
                               json_string_value (json_object_get (resp.json, "operation")));
      cl_api_response_clear (&resp);
      req = (struct cl_api_request){ .method = "GET", .path = wait, .query = "timeout=-1" };
      if (target_send (t, &req, &resp, err) < 0)
        return -1;
      md = json_object_get (resp.json, "metadata");
      if (resp.status != 200)
        ret = reply_error (t, &resp, err);
      else if (strcmp (json_string_value (json_object_get (md, "status")) ?: "", "success") != 0)
        ret = cl_error_make (err, 0, "%s%s%s", strcmp (t->name, "local") ? t->name : "",
                             strcmp (t->name, "local") ? ": " : "",
                             json_string_value (json_object_get (md, "err")) ?: "failed");
      else if (metadata)
        *metadata = json_incref (json_object_get (md, "metadata"));
    }
  else if (resp.status >= 300 || resp.json == NULL)
    ret = reply_error (t, &resp, err);
  else if (metadata)
    *metadata = json_incref (json_object_get (resp.json, "metadata"));
  cl_api_response_clear (&resp);
  return ret;
}
