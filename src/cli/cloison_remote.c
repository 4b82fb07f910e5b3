/* SPDX-License-Identifier: Apache-2.0 */
/* cloison remote, cloison monitor, and the server's own settings
   (cloison config trust ..., config set core.https_address): thin
   layers over the API (client.h, remote_client.h). */
#include "api/tls.h"
#include "cli/client.h"
#include "cli/remote_client.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <getopt.h>
#include <gnutls/gnutls.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int
usage_error (cl_error_t *err, const char *usage)
{
  return cl_error_make (err, 0, "usage: cloison %s", usage);
}

static void
print_json (json_t *j)
{
  char *s = json_dumps (j, JSON_INDENT (2) | JSON_ENCODE_ANY);
  puts (s);
  free (s);
}

/* ---- remote ---- */

/* A trust token's content; errors name the token. */
static int
token_decode (const char *token, json_t **out, cl_error_t *err)
{
  gnutls_datum_t in = { (unsigned char *)token, (unsigned)strlen (token) }, raw = { NULL, 0 };
  json_t *j = NULL;

  if (*token && gnutls_base64_decode2 (&in, &raw) >= 0)
    {
      j = json_loadb ((const char *)raw.data, raw.size, 0, NULL);
      gnutls_free (raw.data);
    }
  if (!json_is_object (j) || !json_is_string (json_object_get (j, "fingerprint"))
      || !json_is_string (json_object_get (j, "secret")))
    {
      json_decref (j);
      return cl_error_make (err, 0,
                            "--token: not a trust token (the base64 text that"
                            " `cloison config trust add NAME` prints on the server)");
    }
  *out = j;
  return 0;
}

static int
remote_add (int argc, char **argv, cl_error_t *err)
{
  static const char usage[] = "remote add NAME https://HOST:PORT --token TOKEN [--timeout S]";
  static const struct option opts[] = { { "token", required_argument, NULL, 't' },
                                        { "timeout", required_argument, NULL, 'T' },
                                        { NULL, 0, NULL, 0 } };
  cleanup_json json_t *cfg = NULL, *tok = NULL, *answer = NULL;
  cleanup_free char *crt = NULL, *key = NULL, *server = NULL, *body = NULL;
  struct cl_api_remote r = { 0 };
  struct cl_api_request req = { .method = "POST", .path = "/1.0/certificates" };
  struct cl_api_response resp;
  char fp[CL_API_FINGERPRINT_LEN];
  const char *token = NULL, *name, *url, *want;
  long timeout = 0;
  int c;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1)
    if (c == 't')
      token = optarg;
    else if (c == 'T')
      {
        if (cli_parse_long (optarg, "--timeout", 1, 86400, &timeout, err) < 0)
          return -1;
      }
    else
      return usage_error (err, usage);
  if (argc - optind != 2 || token == NULL)
    return usage_error (err, usage);
  name = argv[optind];
  url = argv[optind + 1];
  if (cl_validate_name (name, "remote name", err) < 0)
    return -1;
  if (strcmp (name, "local") == 0)
    return cl_error_make (err, 0, "remote name `local`: names the local server");
  if (strncmp (url, "https://", 8) != 0 || url[8] == '\0')
    return cl_error_make (err, 0, "URL `%s`: expected https://HOST:PORT", url);
  if (token_decode (token, &tok, err) < 0 || cli_config_load (&cfg, err) < 0)
    return -1;
  if (json_object_get (json_object_get (cfg, "remotes"), name))
    return cl_error_make (err, 0, "remote `%s` exists already", name);
  if (cli_client_keypair (&crt, &key, err) < 0)
    return -1;
  r.url = url;
  r.client_cert = crt;
  r.client_key = key;
  /* the first contact: the certificate is checked against the token's
     fingerprint before the token is sent */
  if (cl_api_remote_server_cert (&r, &server, err) < 0
      || cl_api_tls_fingerprint_pem (server, fp, err) < 0)
    return -1;
  want = json_string_value (json_object_get (tok, "fingerprint"));
  if (strcmp (fp, want) != 0)
    return cl_error_make (err, 0,
                          "--token: issued by the server with certificate %.16s..., but `%s`"
                          " presents %.16s...: not sent",
                          want, url, fp);
  r.server_cert = server;
  answer = json_pack ("{s:s}", "trust_token", token);
  body = json_dumps (answer, JSON_COMPACT);
  req.body = body;
  req.body_len = strlen (body);
  if (cl_api_remote_request (&r, &req, &resp, err) < 0)
    return -1;
  if (resp.status != 200
      && !(resp.status == 409
           && strstr (json_string_value (json_object_get (resp.json, "error")) ?: "",
                      "trusted already")))
    {
      cl_error_make (err, 0, "remote `%s`: %s", name,
                     json_string_value (json_object_get (resp.json, "error"))
                         ?: "the server refused the token");
      cl_api_response_clear (&resp);
      return -1;
    }
  cl_api_response_clear (&resp);
  json_object_set_new (json_object_get (cfg, "remotes"), name,
                       json_pack ("{s:s, s:s}", "addr", url, "certificate", server));
  if (timeout)
    json_object_set_new (json_object_get (json_object_get (cfg, "remotes"), name), "timeout",
                         json_integer (timeout));
  if (cli_config_save (cfg, err) < 0)
    return -1;
  fprintf (stderr, "remote `%s` added: %s (certificate %.16s...)\n", name, url, fp);
  return 0;
}

static int
remote_list (int argc, char **argv, cl_error_t *err)
{
  static const struct option opts[]
      = { { "format", required_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
  cleanup_json json_t *cfg = NULL, *list = json_array ();
  const char *format = "table", *def, *key;
  json_t *v, *e;
  size_t i;
  int c;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "f:", opts, NULL)) != -1)
    if (c == 'f')
      format = optarg;
    else
      return usage_error (err, "remote list [--format table|json]");
  if (argc != optind || cli_check_format (format, err) < 0 || cli_config_load (&cfg, err) < 0)
    return argc != optind ? usage_error (err, "remote list [--format table|json]") : -1;
  def = json_string_value (json_object_get (cfg, "default_remote"));
  json_array_append_new (list,
                         json_pack ("{s:s, s:s, s:s, s:b}", "name", "local", "addr", "unix://",
                                    "fingerprint", "", "default", strcmp (def, "local") == 0));
  json_object_foreach (json_object_get (cfg, "remotes"), key, v)
  {
    char fp[CL_API_FINGERPRINT_LEN] = "";
    cl_error_t e2 = NULL;
    if (cl_api_tls_fingerprint_pem (json_string_value (json_object_get (v, "certificate")) ?: "",
                                    fp, &e2)
        < 0)
      cl_error_release (&e2);
    json_array_append_new (list, json_pack ("{s:s, s:s, s:s, s:b}", "name", key, "addr",
                                            json_string_value (json_object_get (v, "addr")) ?: "",
                                            "fingerprint", fp, "default", strcmp (def, key) == 0));
  }
  if (strcmp (format, "json") == 0)
    {
      print_json (list);
      return 0;
    }
  printf ("%-20s %-40s %-14s %s\n", "NAME", "URL", "FINGERPRINT", "DEFAULT");
  json_array_foreach (list, i, e)
      printf ("%-20s %-40s %-14.12s %s\n", json_string_value (json_object_get (e, "name")),
              json_string_value (json_object_get (e, "addr")),
              json_string_value (json_object_get (e, "fingerprint")),
              json_is_true (json_object_get (e, "default")) ? "*" : "");
  return 0;
}

/* remove, switch: one configured remote's name. */
static int
remote_edit (int argc, char **argv, cl_error_t *err)
{
  cleanup_json json_t *cfg = NULL;
  const char *verb = argv[0], *name;
  json_t *remotes;

  if (argc != 2)
    return cl_error_make (err, 0, "usage: cloison remote %s NAME", verb);
  name = argv[1];
  if (cli_config_load (&cfg, err) < 0)
    return -1;
  remotes = json_object_get (cfg, "remotes");
  if (strcmp (verb, "switch") == 0 && strcmp (name, "local") == 0)
    ;
  else if (json_object_get (remotes, name) == NULL)
    return cl_error_make (err, 0, "remote `%s`: no such remote", name);
  if (strcmp (verb, "switch") == 0)
    json_object_set_new (cfg, "default_remote", json_string (name));
  else
    {
      if (strcmp (json_string_value (json_object_get (cfg, "default_remote")), name) == 0)
        json_object_set_new (cfg, "default_remote", json_string ("local"));
      json_object_del (remotes, name);
    }
  return cli_config_save (cfg, err);
}

static int
cmd_remote (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[] = "remote add|list|remove|switch|get-default ...";
  cleanup_json json_t *cfg = NULL;
  (void)g;

  if (argc < 2)
    return usage_error (err, usage);
  argc--, argv++;
  optind = 0;
  if (strcmp (argv[0], "add") == 0)
    return remote_add (argc, argv, err);
  if (strcmp (argv[0], "list") == 0 || strcmp (argv[0], "ls") == 0)
    return remote_list (argc, argv, err);
  if (strcmp (argv[0], "remove") == 0 || strcmp (argv[0], "rm") == 0
      || strcmp (argv[0], "switch") == 0)
    {
      argv[0] = strcmp (argv[0], "rm") == 0 ? "remove" : argv[0];
      return remote_edit (argc, argv, err);
    }
  if (strcmp (argv[0], "get-default") == 0 && argc == 1)
    {
      if (cli_config_load (&cfg, err) < 0)
        return -1;
      puts (json_string_value (json_object_get (cfg, "default_remote")));
      return 0;
    }
  return usage_error (err, usage);
}

/* ---- monitor ---- */

static int
print_event (const char *line, void *data)
{
  (void)data;
  if (fputs (line, stdout) == EOF || fputc ('\n', stdout) == EOF || fflush (stdout) == EOF)
    return 1; /* the reader went away */
  return 0;
}

static volatile sig_atomic_t monitor_stop;

static void
on_monitor_signal (int sig)
{
  (void)sig;
  monitor_stop = 1;
}

static int
cmd_monitor (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[] = "monitor [--type lifecycle,operation,logging] [--remote NAME]";
  static const struct option opts[] = { { "type", required_argument, NULL, 't' },
                                        { "remote", required_argument, NULL, 'r' },
                                        { NULL, 0, NULL, 0 } };
  cleanup_free char *query = NULL;
  const char *types = NULL, *remote = NULL, *sock;
  struct cl_api_request req = { .method = "GET", .path = "/1.0/events" };
  struct cl_api_response resp;
  struct cli_client *client;
  struct cl_api_ctx *ctx = NULL;
  int c;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1)
    if (c == 't')
      types = optarg;
    else if (c == 'r')
      g->remote = optarg;
    else
      return usage_error (err, usage);
  if (argc != optind)
    return usage_error (err, usage);
  if (types)
    {
      cleanup_free char *copy = cl_xstrdup (types);
      for (char *s = copy, *tok; (tok = strsep (&s, ","));)
        if (strcmp (tok, "lifecycle") && strcmp (tok, "operation") && strcmp (tok, "logging"))
          return cl_error_make (err, 0, "--type `%s`: expected lifecycle, operation, logging", tok);
      query = cl_strdup_printf ("type=%s", types);
    }
  if (cli_selected_remote (g, &remote, err) < 0)
    return -1;
  setvbuf (stdout, NULL, _IOLBF, 0);
  if (remote)
    {
      struct cli_remote r;
      int ret;
      if (cli_remote_get (remote, &r, err) < 0)
        return -1;
      ret = cl_api_remote_events (&r.api, query, print_event, NULL, err);
      cli_remote_clear (&r);
      return ret;
    }
  if ((client = cli_client_of (g, err)) == NULL)
    return -1;
  if ((sock = cli_client_socket (client)) != NULL)
    {
      struct cl_api_remote local = { .unix_socket = sock };
      return cl_api_remote_events (&local, query, print_event, NULL, err);
    }
  /* no daemon: the router in-process, with operations in threads and its
     watcher reporting what the other processes do */
  if (cl_api_ctx_new (g->root, NULL, &ctx, err) < 0)
    return -1;
  if (cl_api_watch_start (ctx, 500, err) < 0)
    {
      cl_api_ctx_free (ctx, 0);
      return -1;
    }
  req.query = query;
  cl_api_handle (ctx, &req, &resp);
  if (resp.events == NULL)
    {
      cl_error_make (err, 0, "events: %s",
                     json_string_value (json_object_get (resp.json, "error")) ?: "refused");
      cl_api_response_clear (&resp);
      cl_api_ctx_free (ctx, 0);
      return -1;
    }
  signal (SIGINT, on_monitor_signal);
  signal (SIGTERM, on_monitor_signal);
  while (!monitor_stop)
    {
      char *line = NULL;
      int r = cl_api_events_next (resp.events, 500, &line);
      if (r < 0)
        break;
      if (r == 1)
        {
          line[strcspn (line, "\n")] = '\0';
          r = print_event (line, NULL);
          free (line);
          if (r)
            break;
        }
    }
  cl_api_response_clear (&resp);
  cl_api_ctx_free (ctx, 10000);
  return 0;
}

const struct cloison_cmd cloison_remote_cmds[] = {
  { "remote", cmd_remote, "remotes: add, list, remove, switch, get-default" },
  { "monitor", cmd_monitor, "stream events as JSON lines" },
  { NULL, NULL, NULL },
};
