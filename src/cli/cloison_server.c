/* SPDX-License-Identifier: Apache-2.0 */
/* The server's own settings: `cloison config trust add|list|remove|
   restrict` (the trust store of client certificates) and `cloison config
   set|get|unset core.KEY`, through the API (client.h): the local server
   by default, a remote with --remote. */
#include "api/tls.h"
#include "cli/client.h"
#include "cli/cloison.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One request to the server the command addresses; body borrowed. */
static int
call (struct cloison_globals *g, const char *method, const char *path, const char *query,
      json_t *body, json_t **out, cl_error_t *err)
{
  struct cli_client *c = cli_client_of (g, err);
  return c ? cli_call (c, method, path, query, body, out, err) : -1;
}

bool
cli_server_config_wants (int argc, char **argv)
{
  if (argc < 2)
    return false;
  if (strcmp (argv[1], "trust") == 0 || strcmp (argv[1], "get") == 0
      || strcmp (argv[1], "unset") == 0)
    return true;
  /* `config set core.KEY VALUE`, not `config set INSTANCE KEY=VALUE...` */
  return strcmp (argv[1], "set") == 0 && argc == 4 && strncmp (argv[2], "core.", 5) == 0
         && strchr (argv[3], '=') == NULL;
}

/* "90", "90s", "15m", "2h", "7d" into seconds. */
static int
parse_duration (const char *s, long *out, cl_error_t *err)
{
  char *end;
  long v = strtol (s, &end, 10), mul = 1;

  if (*end == 's')
    end++;
  else if (*end == 'm')
    mul = 60, end++;
  else if (*end == 'h')
    mul = 3600, end++;
  else if (*end == 'd')
    mul = 86400, end++;
  if (end == s || *end || v < 1 || v > 365L * 86400 / mul)
    return cl_error_make (err, 0, "invalid --expires `%s`: a duration such as 90s, 15m, 2h, 7d", s);
  *out = v * mul;
  return 0;
}

static int
trust_add (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[] = "usage: cloison config trust add NAME [--expires DURATION]";
  static const struct option opts[]
      = { { "expires", required_argument, NULL, 'e' }, { NULL, 0, NULL, 0 } };
  cleanup_json json_t *md = NULL, *body = NULL;
  long ttl = 0;
  int c;

  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1)
    if (c != 'e')
      return cl_error_make (err, 0, usage);
    else if (parse_duration (optarg, &ttl, err) < 0)
      return -1;
  if (argc - optind != 1)
    return cl_error_make (err, 0, usage);
  if (cl_validate_name (argv[optind], "certificate name", err) < 0)
    return -1;
  body = json_pack ("{s:s, s:b}", "name", argv[optind], "token", 1);
  if (ttl)
    json_object_set_new (body, "expires", json_integer (ttl));
  if (call (g, "POST", "/1.0/certificates", NULL, body, &md, err) < 0)
    return -1;
  puts (json_string_value (json_object_get (md, "token")));
  fprintf (stderr,
           "a one-time token for `%s`, valid until %s: on the client, run\n"
           "  cloison remote add REMOTE https://%s --token TOKEN\n",
           argv[optind], json_string_value (json_object_get (md, "expires_at")),
           json_string_value (json_array_get (json_object_get (md, "addresses"), 0))
               ?: "HOST:PORT");
  return 0;
}

static int
trust_list (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[] = "usage: cloison config trust list [--format table|json]";
  static const struct option opts[]
      = { { "format", required_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
  cleanup_json json_t *list = NULL;
  const char *format = "table";
  size_t i;
  json_t *e;
  int c;

  while ((c = getopt_long (argc, argv, "f:", opts, NULL)) != -1)
    if (c == 'f')
      format = optarg;
    else
      return cl_error_make (err, 0, usage);
  if (argc != optind)
    return cl_error_make (err, 0, usage);
  if (cli_check_format (format, err) < 0)
    return -1;
  if (call (g, "GET", "/1.0/certificates", "recursion=1", NULL, &list, err) < 0)
    return -1;
  if (strcmp (format, "json") == 0)
    {
      json_array_foreach (list, i, e) json_object_del (e, "certificate");
      char *s = json_dumps (list, JSON_INDENT (2));
      puts (s);
      free (s);
      return 0;
    }
  printf ("%-24s %-14s %-10s %s\n", "NAME", "FINGERPRINT", "ACCESS", "ADDED");
  json_array_foreach (list, i, e)
  {
    char when[32];
    time_t when_t = (time_t)json_integer_value (json_object_get (e, "created"));
    struct tm tm;
    strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r (&when_t, &tm));
    printf ("%-24s %-14.12s %-10s %s\n", json_string_value (json_object_get (e, "name")),
            json_string_value (json_object_get (e, "fingerprint")),
            json_is_true (json_object_get (e, "restricted")) ? "read-only" : "full", when);
  }
  return 0;
}

/* remove and restrict: one certificate by fingerprint (or a prefix) or
   name. */
static int
trust_edit (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const struct option opts[]
      = { { "read-only", optional_argument, NULL, 'r' }, { NULL, 0, NULL, 0 } };
  cleanup_json json_t *body = NULL;
  cleanup_free char *path = NULL;
  bool restrict_ = strcmp (argv[0], "restrict") == 0, read_only = true, seen = false;
  const char *usage = restrict_ ? "usage: cloison config trust restrict NAME|FINGERPRINT"
                                  " --read-only[=true|false]"
                                : "usage: cloison config trust remove NAME|FINGERPRINT";
  int c;

  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1)
    {
      if (c != 'r' || !restrict_)
        return cl_error_make (err, 0, "%s", usage);
      seen = true;
      if (optarg == NULL || strcmp (optarg, "true") == 0)
        read_only = true;
      else if (strcmp (optarg, "false") == 0)
        read_only = false;
      else
        return cl_error_make (err, 0, "invalid --read-only `%s`: true or false", optarg);
    }
  if (argc - optind != 1 || (restrict_ && !seen))
    return cl_error_make (err, 0, "%s", usage);
  /* names and fingerprints need no escaping in a path */
  if (cl_validate_name (argv[optind], "certificate", err) < 0)
    return -1;
  path = cl_strdup_printf ("/1.0/certificates/%s", argv[optind]);
  if (!restrict_)
    return call (g, "DELETE", path, NULL, NULL, NULL, err);
  body = json_pack ("{s:b}", "restricted", read_only);
  return call (g, "PATCH", path, NULL, body, NULL, err);
}

static int
server_setting (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_json json_t *md = NULL, *body = NULL;
  const char *verb = argv[1];

  if ((strcmp (verb, "get") == 0 || strcmp (verb, "unset") == 0) && argc != 3)
    return cl_error_make (err, 0, "usage: cloison config %s KEY", verb);
  if (strcmp (verb, "get") == 0)
    {
      const char *v;
      if (call (g, "GET", "/1.0", NULL, NULL, &md, err) < 0)
        return -1;
      v = json_string_value (json_object_get (json_object_get (md, "config"), argv[2]));
      if (v)
        puts (v);
      return 0;
    }
  body = json_pack ("{s:{s:s}}", "config", argv[2], strcmp (verb, "set") == 0 ? argv[3] : "");
  return call (g, "PATCH", "/1.0", NULL, body, NULL, err);
}

int
cli_server_config (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[] = "usage: cloison config trust add|list|remove|restrict ...";

  opterr = 0;
  if (strcmp (argv[1], "trust") != 0)
    return server_setting (g, argc, argv, err);
  if (argc < 3)
    return cl_error_make (err, 0, usage);
  argc -= 2;
  argv += 2;
  optind = 0;
  if (strcmp (argv[0], "add") == 0)
    return trust_add (g, argc, argv, err);
  if (strcmp (argv[0], "list") == 0 || strcmp (argv[0], "ls") == 0)
    return trust_list (g, argc, argv, err);
  if (strcmp (argv[0], "remove") == 0 || strcmp (argv[0], "rm") == 0
      || strcmp (argv[0], "restrict") == 0)
    return trust_edit (g, argc, argv, err);
  return cl_error_make (err, 0, usage);
}
