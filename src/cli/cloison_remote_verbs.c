/* SPDX-License-Identifier: Apache-2.0 */
/* Instance verbs on a remote (--remote NAME, NAME:INSTANCE, or the
   default remote) through the API: list, info, launch, start, stop,
   delete.  The local verbs (cloison_instance.c) call the library
   directly; these speak to the remote's daemon with target.h. */
#include "cli/target.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "REMOTE:NAME" selects REMOTE when it is a configured remote; *name is
   then what follows the colon. */
static int
split_remote (struct cloison_globals *g, const char **name, cl_error_t *err)
{
  cleanup_json json_t *cfg = NULL;
  const char *colon = strchr (*name, ':');
  cleanup_free char *r = NULL;

  if (colon == NULL)
    return 0;
  r = strndup (*name, (size_t)(colon - *name));
  if (cli_config_load (&cfg, err) < 0)
    return -1;
  if (strcmp (r, "local") != 0 && json_object_get (json_object_get (cfg, "remotes"), r) == NULL)
    return cl_error_make (err, 0, "`%s`: no remote named `%s` (see cloison remote list)", *name, r);
  g->remote = steal_pointer (&r);
  *name = colon + 1;
  return 0;
}

static int
open_target (struct cloison_globals *g, struct cli_target *t, cl_error_t *err)
{
  const char *remote = NULL;
  if (cli_selected_remote (g, &remote, err) < 0)
    return -1;
  return cli_target_open (g, remote, t, err);
}

static int
usage_error (cl_error_t *err, const char *usage)
{
  return cl_error_make (err, 0, "usage: cloison %s", usage);
}

static int
rv_list (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[] = "list [REMOTE:] [--format table|json]";
  static const struct option opts[]
      = { { "format", required_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
  cleanup_target struct cli_target t = { 0 };
  cleanup_json json_t *list = NULL;
  const char *format = "table";
  size_t i;
  json_t *e;
  int c;

  while ((c = getopt_long (argc, argv, "f:", opts, NULL)) != -1)
    if (c == 'f')
      format = optarg;
    else
      return usage_error (err, usage);
  if (argc - optind > 1)
    return usage_error (err, usage);
  if (argc - optind == 1)
    {
      const char *rest = argv[optind];
      if (split_remote (g, &rest, err) < 0)
        return -1;
      if (*rest)
        return usage_error (err, usage);
    }
  if (strcmp (format, "table") != 0 && strcmp (format, "json") != 0)
    return cl_error_make (err, 0, "invalid --format `%s`: table or json", format);
  if (open_target (g, &t, err) < 0
      || cli_target_call (&t, "GET", "/1.0/instances", "recursion=1", NULL, &list, err) < 0)
    return -1;
  if (strcmp (format, "json") == 0)
    {
      char *s = json_dumps (list, JSON_INDENT (2));
      puts (s);
      free (s);
      return 0;
    }
  printf ("%-24s %-10s %-8s %s\n", "NAME", "KIND", "STATUS", "IMAGE");
  json_array_foreach (list, i, e)
      printf ("%-24s %-10s %-8s %s\n", json_string_value (json_object_get (e, "name")),
              json_string_value (json_object_get (e, "kind")),
              json_string_value (json_object_get (e, "status")),
              json_string_value (json_object_get (e, "image")) ?: "");
  return 0;
}

/* info, start: one instance name. */
static int
rv_one (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_target struct cli_target t = { 0 };
  cleanup_json json_t *md = NULL;
  cleanup_free char *path = NULL;
  bool info = strcmp (argv[0], "info") == 0;
  const char *name;

  if (argc != 2 || argv[1][0] == '-')
    return cl_error_make (err, 0, "usage: cloison %s [REMOTE:]NAME", argv[0]);
  name = argv[1];
  if (split_remote (g, &name, err) < 0 || cl_validate_name (name, "instance name", err) < 0
      || open_target (g, &t, err) < 0)
    return -1;
  path = cl_strdup_printf ("/1.0/instances/%s%s", name, info ? "" : "/state");
  if (info)
    {
      char *s;
      if (cli_target_call (&t, "GET", path, NULL, NULL, &md, err) < 0)
        return -1;
      s = json_dumps (md, JSON_INDENT (2));
      puts (s);
      free (s);
      return 0;
    }
  return cli_target_call (&t, "PUT", path, NULL, json_pack ("{s:s}", "action", "start"), NULL, err);
}

/* stop and delete: NAME, --timeout (stop), --force. */
static int
rv_stop (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const struct option opts[] = { { "timeout", required_argument, NULL, 't' },
                                        { "force", no_argument, NULL, 'f' },
                                        { NULL, 0, NULL, 0 } };
  cleanup_target struct cli_target t = { 0 };
  cleanup_free char *path = NULL;
  bool stop = strcmp (argv[0], "stop") == 0, force = false;
  const char *usage = stop ? "stop [REMOTE:]NAME [--timeout SECONDS] [--force]"
                           : "delete [REMOTE:]NAME [--force]";
  const char *name;
  long timeout = 10;
  int c;

  while ((c = getopt_long (argc, argv, "t:f", opts, NULL)) != -1)
    if (c == 'f')
      force = true;
    else if (c == 't' && stop)
      {
        char *end;
        timeout = strtol (optarg, &end, 10);
        if (*optarg == '\0' || *end || timeout < 0 || timeout > 3600)
          return cl_error_make (err, 0, "invalid --timeout `%s`: seconds, 0-3600", optarg);
      }
    else
      return usage_error (err, usage);
  if (argc - optind != 1)
    return usage_error (err, usage);
  name = argv[optind];
  if (split_remote (g, &name, err) < 0 || cl_validate_name (name, "instance name", err) < 0
      || open_target (g, &t, err) < 0)
    return -1;
  if (!stop)
    {
      path = cl_strdup_printf ("/1.0/instances/%s", name);
      return cli_target_call (&t, "DELETE", path, force ? "force=1" : NULL, NULL, NULL, err);
    }
  path = cl_strdup_printf ("/1.0/instances/%s/state", name);
  return cli_target_call (&t, "PUT", path, NULL,
                          json_pack ("{s:s, s:I, s:b}", "action", "stop", "timeout",
                                     (json_int_t)timeout, "force", force),
                          NULL, err);
}

static int
rv_launch (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[]
      = "launch IMAGE [REMOTE:]NAME [--memory SIZE] [--cpus N] [--env K=V]..."
        " [--network NAME]... [--no-network] [-p HOSTPORT:PORT]... [-- CMD...]";
  static const struct option opts[] = {
    { "memory", required_argument, NULL, 'm' },
    { "cpus", required_argument, NULL, 'c' },
    { "env", required_argument, NULL, 'e' },
    { "network", required_argument, NULL, 'n' },
    { "no-network", no_argument, NULL, 'N' },
    { "publish", required_argument, NULL, 'p' },
    { NULL, 0, NULL, 0 },
  };
  cleanup_target struct cli_target t = { 0 };
  json_t *body = json_object (), *config = json_object (), *env = json_object ();
  json_t *nets = json_array (), *ports = json_array (), *cmd = json_array ();
  const char *name;
  int c, n = argc;

  for (int i = 1; i < argc; i++)
    if (strcmp (argv[i], "--") == 0)
      {
        for (int k = i + 1; k < argc; k++)
          json_array_append_new (cmd, json_string (argv[k]));
        n = i;
        break;
      }
  while ((c = getopt_long (n, argv, "e:p:", opts, NULL)) != -1)
    {
      char *eq;
      switch (c)
        {
        case 'm':
          json_object_set_new (config, "limits.memory", json_string (optarg));
          break;
        case 'c':
          json_object_set_new (config, "limits.cpu", json_string (optarg));
          break;
        case 'e':
          eq = strchr (optarg, '=');
          if (eq == NULL)
            {
              json_decref (body), json_decref (config), json_decref (env);
              json_decref (nets), json_decref (ports), json_decref (cmd);
              return cl_error_make (err, 0, "--env `%s`: expected KEY=VALUE", optarg);
            }
          {
            cleanup_free char *k = strndup (optarg, (size_t)(eq - optarg));
            json_object_set_new (env, k, json_string (eq + 1));
          }
          break;
        case 'n':
          json_array_append_new (nets, json_string (optarg));
          break;
        case 'N':
          json_object_set_new (body, "no_network", json_true ());
          break;
        case 'p':
          json_array_append_new (ports, json_string (optarg));
          break;
        default:
          n = -1;
        }
      if (n < 0)
        break;
    }
  if (n < 0 || n - optind != 2)
    {
      json_decref (body), json_decref (config), json_decref (env);
      json_decref (nets), json_decref (ports), json_decref (cmd);
      return usage_error (err, usage);
    }
  name = argv[optind + 1];
  json_object_set_new (body, "name", json_string (name));
  json_object_set_new (body, "source",
                       json_pack ("{s:s, s:s}", "type", "image", "image", argv[optind]));
  json_object_set_new (body, "config", config);
  json_object_set_new (body, "environment", env);
  json_object_set_new (body, "command", cmd);
  json_object_set_new (body, "ports", ports);
  if (json_array_size (nets))
    json_object_set_new (body, "networks", nets);
  else
    json_decref (nets);
  if (json_array_size (cmd) == 0)
    json_object_del (body, "command");
  if (split_remote (g, &name, err) < 0 || open_target (g, &t, err) < 0)
    {
      json_decref (body);
      return -1;
    }
  json_object_set_new (body, "name", json_string (name));
  return cli_target_call (&t, "POST", "/1.0/instances", NULL, body, NULL, err);
}

bool
cli_remote_wanted (struct cloison_globals *g, int argc, char **argv)
{
  cleanup_json json_t *cfg = NULL;
  cl_error_t err = NULL;
  const char *def;

  if (g->remote)
    return strcmp (g->remote, "local") != 0;
  if (cli_config_load (&cfg, &err) < 0)
    {
      cl_error_release (&err); /* a broken file: the remote commands say so */
      return false;
    }
  def = json_string_value (json_object_get (cfg, "default_remote"));
  if (strcmp (def, "local") != 0)
    return true;
  /* REMOTE:NAME, in the verbs that take one */
  for (const struct cloison_cmd *c = cli_remote_verbs; c->name; c++)
    if (strcmp (c->name, argv[0]) == 0)
      for (int i = 1; i < argc; i++)
        {
          const char *colon = strchr (argv[i], ':');
          cleanup_free char *r = colon ? strndup (argv[i], (size_t)(colon - argv[i])) : NULL;
          if (r && argv[i][0] != '-' && json_object_get (json_object_get (cfg, "remotes"), r))
            return true;
        }
  return false;
}

const struct cloison_cmd cli_remote_verbs[] = {
  { "list", rv_list, NULL }, { "info", rv_one, NULL },    { "start", rv_one, NULL },
  { "stop", rv_stop, NULL }, { "delete", rv_stop, NULL }, { "launch", rv_launch, NULL },
  { NULL, NULL, NULL },
};
