/* SPDX-License-Identifier: Apache-2.0 */
/* Remotes on the client side (remote_client.h). */
#include "cli/remote_client.h"
#include "api/tls.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
  if (g->local && n && strcmp (n, "local") != 0)
    return cl_error_make (err, 0, "--local and remote `%s`: one or the other", n);
  if (g->local || (n && strcmp (n, "local") == 0))
    return 0;
  if (cli_config_load (&cfg, err) < 0)
    return -1;
  if (n == NULL)
    n = json_string_value (json_object_get (cfg, "default_remote"));
  if (strcmp (n, "local") == 0)
    return 0;
  if (json_object_get (json_object_get (cfg, "remotes"), n) == NULL)
    return cl_error_make (err, 0, "remote `%s`: no such remote (see cloison remote list)", n);
  if (g->remote == NULL)
    g->remote = cl_xstrdup (n); /* lives as long as the process */
  *name = g->remote;
  return 0;
}

int
cli_remote_get (const char *name, struct cli_remote *r, cl_error_t *err)
{
  cleanup_json json_t *cfg = NULL;
  json_t *e;

  memset (r, 0, sizeof *r);
  if (cli_config_load (&cfg, err) < 0)
    return -1;
  e = json_object_get (json_object_get (cfg, "remotes"), name);
  if (!json_is_string (json_object_get (e, "addr"))
      || !json_is_string (json_object_get (e, "certificate")))
    return cl_error_make (err, 0, "remote `%s`: no such remote (see cloison remote list)", name);
  if (cli_client_keypair (&r->client_cert, &r->client_key, err) < 0)
    return -1;
  r->url = cl_xstrdup (json_string_value (json_object_get (e, "addr")));
  r->server_cert = cl_xstrdup (json_string_value (json_object_get (e, "certificate")));
  r->api.url = r->url;
  r->api.server_cert = r->server_cert;
  r->api.client_cert = r->client_cert;
  r->api.client_key = r->client_key;
  r->api.timeout_s = json_integer_value (json_object_get (e, "timeout")); /* 0: the default */
  return 0;
}

void
cli_remote_clear (struct cli_remote *r)
{
  free (r->url);
  free (r->server_cert);
  free (r->client_cert);
  free (r->client_key);
  memset (r, 0, sizeof *r);
}

/* ---- the HTTPS transport ---- */

static int
https_request (void *state, const struct cl_api_request *req, struct cl_api_response *resp,
               cl_error_t *err)
{
  struct cli_remote *r = state;
  return cl_api_remote_request (&r->api, req, resp, err);
}

static void
https_close (void *state)
{
  struct cli_remote *r = state;
  cl_api_remote_share_free (r->api.share);
  cli_remote_clear (state);
  free (state);
}

static const struct cl_api_remote *
https_remote (void *state)
{
  return &((struct cli_remote *)state)->api;
}

static const struct cli_transport https = {
  .name = "https",
  .request = https_request,
  .close = https_close,
  .remote = https_remote,
};

int
cli_remote_client_open (const char *name, struct cli_client **out, cl_error_t *err)
{
  struct cli_remote *r = cl_xmalloc0 (sizeof *r);

  if (cli_remote_get (name, r, err) < 0)
    {
      https_close (r);
      return cl_error_wrap (err, "remote `%s`", name);
    }
  /* the CLI's requests are one thread's: they keep one connection */
  r->api.share = cl_api_remote_share_new ();
  *out = cli_client_new (&https, r);
  return 0;
}

struct cli_client *
cli_client_of (struct cloison_globals *g, cl_error_t *err)
{
  const char *remote = NULL;

  if (g->client)
    return g->client;
  if (cli_selected_remote (g, &remote, err) < 0)
    return NULL;
  if (remote ? cli_remote_client_open (remote, &g->client, err) < 0
             : cli_client_open (g->root, g->local, &g->client, err) < 0)
    return NULL;
  return g->client;
}

int
cli_remote_prefixes (struct cloison_globals *g, int *argc, char **argv, cl_error_t *err)
{
  cleanup_json json_t *cfg = NULL;
  json_t *remotes;
  int out = 1;

  if (cli_config_load (&cfg, err) < 0)
    return -1;
  remotes = json_object_get (cfg, "remotes");
  for (int i = 1; i < *argc; i++)
    {
      const char *a = argv[i], *colon = strchr (a, ':');
      cleanup_free char *r = colon ? strndup (a, (size_t)(colon - a)) : NULL;
      bool digits = r && *r && strspn (r, "0123456789") == strlen (r);

      if (strcmp (a, "--") == 0)
        {
          /* a command: left as it is */
          while (i < *argc)
            argv[out++] = argv[i++];
          break;
        }
      /* -p 8080:80 is not a remote, nor an option's own value */
      if (r == NULL || a[0] == '-' || digits
          || (strcmp (r, "local") != 0 && json_object_get (remotes, r) == NULL))
        {
          argv[out++] = argv[i];
          continue;
        }
      if (g->remote && strcmp (g->remote, r) != 0)
        return cl_error_make (err, 0, "`%s`: names remote `%s`, but this command is for `%s`", a, r,
                              g->remote);
      g->remote = steal_pointer (&r);
      if (colon[1])
        argv[out++] = (char *)colon + 1;
    }
  argv[out] = NULL;
  *argc = out;
  return 0;
}
