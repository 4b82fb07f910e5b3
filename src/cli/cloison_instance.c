/* SPDX-License-Identifier: Apache-2.0 */
/* cloison instance commands: argument parsing and printing; every verb
   is a request to the API (cli/client.h); exec, console and run take the
   API's websockets when a daemon or a remote serves them (exec_client.h)
   and call src/manager/manager.h directly in-process. */
#include "cli/client.h"
#include "cli/cloison.h"
#include "cli/exec_client.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "manager/manager.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
manager_closep (struct cl_manager **m)
{
  cl_mgr_close (*m);
}
#define cleanup_manager __attribute__ ((cleanup (manager_closep)))

/* Splits argv at a literal "--": options and positionals before it are
   parsed by getopt, the rest is a command.  Returns the argc to give
   getopt; cmd and ncmd receive the command (NULL/0 when absent). */
static int
split_command (int argc, char **argv, char ***cmd, size_t *ncmd)
{
  for (int i = 1; i < argc; i++)
    if (strcmp (argv[i], "--") == 0)
      {
        *cmd = argv + i + 1;
        *ncmd = (size_t)(argc - i - 1);
        return i;
      }
  *cmd = NULL;
  *ncmd = 0;
  return argc;
}

static int
usage_error (cl_error_t *err, const char *usage)
{
  return cl_error_make (err, 0, "usage: cloison %s", usage);
}

/* Appends to a growing vector of borrowed strings. */
static void
push (const char ***v, size_t *n, const char *s)
{
  *v = realloc (*v, (*n + 1) * sizeof **v);
  if (*v == NULL)
    abort ();
  (*v)[(*n)++] = s;
}

enum
{
  OPT_VM = 256,
  OPT_CPUS,
  OPT_MEMORY,
  OPT_DISK,
  OPT_ENV,
  OPT_NETWORK,
  OPT_NO_NETWORK,
  OPT_PORT,
  OPT_KERNEL,
  OPT_INITRD,
  OPT_CMDLINE,
  OPT_COLD,
};

static const struct option launch_options[] = {
  { "vm", no_argument, NULL, OPT_VM },
  { "cpus", required_argument, NULL, OPT_CPUS },
  { "memory", required_argument, NULL, OPT_MEMORY },
  { "disk-size", required_argument, NULL, OPT_DISK },
  { "env", required_argument, NULL, OPT_ENV },
  { "network", required_argument, NULL, OPT_NETWORK },
  { "no-network", no_argument, NULL, OPT_NO_NETWORK },
  { "publish", required_argument, NULL, OPT_PORT },
  { "kernel", required_argument, NULL, OPT_KERNEL },
  { "initrd", required_argument, NULL, OPT_INITRD },
  { "cmdline", required_argument, NULL, OPT_CMDLINE },
  { "cold", no_argument, NULL, OPT_COLD },
  { NULL, 0, NULL, 0 },
};

/* Parses launch/run options into o; positionals stay from optind. */
static int
parse_launch_options (int argc, char **argv, struct cl_launch_opts *o, cl_error_t *err)
{
  int c;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "e:p:", launch_options, NULL)) != -1)
    switch (c)
      {
      case OPT_VM:
        o->vm = true;
        break;
      case OPT_CPUS:
        {
          char *end;
          unsigned long v = strtoul (optarg, &end, 10);
          if (*optarg == '\0' || *end || v == 0 || v > 256)
            return cl_error_make (err, 0, "invalid --cpus `%s`: expected 1-256", optarg);
          o->cpus = (unsigned)v;
          break;
        }
      case OPT_MEMORY:
        if (cl_parse_size (optarg, "--memory", &o->memory, err) < 0)
          return -1;
        break;
      case OPT_DISK:
        if (cl_parse_size (optarg, "--disk-size", &o->disk_size, err) < 0)
          return -1;
        break;
      case 'e':
      case OPT_ENV:
        push (&o->env, &o->n_env, optarg);
        break;
      case OPT_NETWORK:
        push (&o->networks, &o->n_networks, optarg);
        break;
      case OPT_NO_NETWORK:
        o->no_network = true;
        break;
      case 'p':
      case OPT_PORT:
        push (&o->ports, &o->n_ports, optarg);
        break;
      case OPT_KERNEL:
        o->kernel = optarg;
        break;
      case OPT_INITRD:
        o->initrd = optarg;
        break;
      case OPT_CMDLINE:
        o->cmdline = optarg;
        break;
      case OPT_COLD:
        o->cold = true;
        break;
      default:
        return cl_error_make (err, 0, "unknown option `%s`", argv[optind - 1]);
      }
  return 0;
}

/* POST /1.0/instances's body for launch options; -1 on a bad --env. */
static int
launch_body (const struct cl_launch_opts *o, json_t **out, cl_error_t *err)
{
  json_t *body, *config = json_object (), *env = json_object ();

  for (size_t i = 0; i < o->n_env; i++)
    {
      const char *eq = strchr (o->env[i], '=');
      cleanup_free char *key = NULL;
      if (eq == NULL || eq == o->env[i])
        {
          json_decref (config);
          json_decref (env);
          return cl_error_make (err, 0, "--env `%s`: expected KEY=VALUE", o->env[i]);
        }
      key = cl_strdup_printf ("%.*s", (int)(eq - o->env[i]), o->env[i]);
      json_object_set_new (env, key, json_string (eq + 1));
    }
  if (o->cpus)
    json_object_set_new (config, "limits.cpu", json_integer (o->cpus));
  if (o->memory)
    json_object_set_new (config, "limits.memory", json_integer ((json_int_t)o->memory));
  if (o->disk_size)
    json_object_set_new (config, "root.size", json_integer ((json_int_t)o->disk_size));
  body = json_pack ("{s:s, s:s, s:{s:s, s:s}, s:o, s:o, s:o, s:b, s:o}", "name", o->name, "type",
                    o->vm ? "virtual-machine" : "container", "source", "type", "image", "image",
                    o->image, "config", config, "environment", env, "networks",
                    cl_json_strings (o->networks, o->n_networks), "no_network", o->no_network,
                    "ports", cl_json_strings (o->ports, o->n_ports));
  if (o->argc)
    json_object_set_new (body, "command", cl_json_strings ((const char *const *)o->argv, o->argc));
  if (o->kernel)
    json_object_set_new (body, "kernel", json_string (o->kernel));
  if (o->initrd)
    json_object_set_new (body, "initrd", json_string (o->initrd));
  if (o->cmdline)
    json_object_set_new (body, "cmdline", json_string (o->cmdline));
  if (o->cold)
    json_object_set_new (body, "cold", json_true ());
  *out = body;
  return 0;
}

static int
cmd_launch (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[]
      = "launch IMAGE NAME [--vm [--cold]] [--cpus N] [--memory SIZE] [--disk-size SIZE] [--env "
        "K=V]..."
        " [--network NAME]... [--no-network] [-p HOSTPORT:PORT[/tcp|udp]]... [-- CMD...]";
  struct cli_client *c;
  struct cl_launch_opts o = { 0 };
  cleanup_json json_t *body = NULL;
  char **cmd;
  size_t ncmd;
  int n = split_command (argc, argv, &cmd, &ncmd), r = -1;

  if (parse_launch_options (n, argv, &o, err) < 0)
    goto out;
  if (n - optind != 2)
    {
      usage_error (err, usage);
      goto out;
    }
  o.image = argv[optind];
  o.name = argv[optind + 1];
  o.argv = ncmd ? cmd : NULL;
  o.argc = ncmd;
  if (launch_body (&o, &body, err) < 0 || (c = cli_client_of (g, err)) == NULL)
    goto out;
  r = cli_call (c, "POST", "/1.0/instances", NULL, body, NULL, err);
out:
  free (o.env);
  free (o.networks);
  free (o.ports);
  return r;
}

static int
cmd_run (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_manager struct cl_manager *m = NULL;
  cleanup_json json_t *body = NULL;
  struct cl_launch_opts o = { 0 };
  struct cli_client *c;
  char name[64], **cmd;
  size_t ncmd;
  int n = split_command (argc, argv, &cmd, &ncmd), code = 0, r = -1;

  if (parse_launch_options (n, argv, &o, err) < 0)
    goto out;
  if (n - optind != 1)
    {
      usage_error (err, "run [--vm] [launch options] IMAGE [-- CMD...]");
      goto out;
    }
  snprintf (name, sizeof name, "run-%d-%lx", (int)getpid (), (unsigned long)time (NULL));
  o.image = argv[optind];
  o.name = name;
  o.argv = ncmd ? cmd : NULL;
  o.argc = ncmd;
  if ((c = cli_client_of (g, err)) == NULL)
    goto out;
  if (cli_client_remote (c))
    {
      /* the daemon's (or the remote's) own run, which names the instance;
         the workload's terminal a pty when ours is one */
      if (launch_body (&o, &body, err) == 0 && json_object_del (body, "name") == 0
          && cli_run_api (c, body, isatty (0) && isatty (1), &code, err) == 0)
        r = code;
    }
  else if (cl_mgr_open (g->root, &m, err) == 0 && cl_mgr_instance_run (m, &o, &code, err) == 0)
    r = code;
out:
  free (o.env);
  free (o.networks);
  free (o.ports);
  return r;
}

static void
print_table (json_t *list)
{
  size_t i;
  json_t *e;

  printf ("%-24s %-10s %-8s %-16s %-8s %s\n", "NAME", "KIND", "STATUS", "IMAGE", "PID", "CREATED");
  json_array_foreach (list, i, e)
  {
    char when[32], pid[16] = "-";
    time_t t = (time_t)json_integer_value (json_object_get (e, "created"));
    struct tm tm;
    strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r (&t, &tm));
    if (json_is_integer (json_object_get (e, "pid")))
      snprintf (pid, sizeof pid, "%lld", json_integer_value (json_object_get (e, "pid")));
    printf ("%-24s %-10s %-8s %-16s %-8s %s\n", json_string_value (json_object_get (e, "name")),
            json_string_value (json_object_get (e, "kind")),
            json_string_value (json_object_get (e, "status")),
            json_string_value (json_object_get (e, "image")), pid, when);
  }
}

static int
cmd_list (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const struct option opts[]
      = { { "format", required_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
  struct cli_client *client;
  cleanup_json json_t *list = NULL;
  const char *format = "table";
  int c;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "f:", opts, NULL)) != -1)
    if (c == 'f')
      format = optarg;
    else
      return usage_error (err, "list [--format table|json]");
  if (cli_check_format (format, err) < 0)
    return -1;
  if ((client = cli_client_of (g, err)) == NULL
      || cli_call (client, "GET", "/1.0/instances", "recursion=1", NULL, &list, err) < 0)
    return -1;
  if (strcmp (format, "json") == 0)
    {
      char *s = json_dumps (list, JSON_INDENT (2));
      puts (s);
      free (s);
    }
  else
    print_table (list);
  return 0;
}

/* Commands of the form `cloison CMD NAME` with no options. */
static int
one_name (int argc, char **argv, const char *usage, const char **name, cl_error_t *err)
{
  if (argc != 2 || argv[1][0] == '-')
    return usage_error (err, usage);
  *name = argv[1];
  return 0;
}

/* "/1.0/instances/NAME" + suffix (caller frees). */
static char *
instance_path (const char *name, const char *suffix)
{
  cleanup_free char *url = cl_api_url ("/1.0/instances/", name);
  return cl_strdup_printf ("%s%s", url, suffix);
}

/* A request on one instance run to its end: body stolen, *out as for
   cli_call. */
static int
instance_call (struct cloison_globals *g, const char *method, const char *name, const char *suffix,
               const char *query, json_t *body, json_t **out, cl_error_t *err)
{
  cleanup_free char *path = instance_path (name, suffix);
  struct cli_client *c = cli_client_of (g, err);
  int r = c ? cli_call (c, method, path, query, body, out, err) : -1;
  json_decref (body);
  return r;
}

static int
cmd_info (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_json json_t *info = NULL;
  const char *name = NULL;
  char *s;

  if (one_name (argc, argv, "info NAME", &name, err) < 0
      || instance_call (g, "GET", name, "", NULL, NULL, &info, err) < 0)
    return -1;
  s = json_dumps (info, JSON_INDENT (2));
  puts (s);
  free (s);
  return 0;
}

/* start, freeze, unfreeze: PUT .../state {"action": ACTION} */
static int
name_action (struct cloison_globals *g, int argc, char **argv, const char *usage,
             const char *action, cl_error_t *err)
{
  const char *name = NULL;

  if (one_name (argc, argv, usage, &name, err) < 0)
    return -1;
  return instance_call (g, "PUT", name, "/state", NULL, json_pack ("{s:s}", "action", action), NULL,
                        err);
}

static int
cmd_start (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  return name_action (g, argc, argv, "start NAME", "start", err);
}

static int
cmd_freeze (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  return name_action (g, argc, argv, "freeze NAME", "freeze", err);
}

static int
cmd_unfreeze (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  return name_action (g, argc, argv, "unfreeze NAME", "unfreeze", err);
}

static int
parse_timeout (const char *s, int *out, cl_error_t *err)
{
  char *end;
  long v = strtol (s, &end, 10);
  if (*s == '\0' || *end || v < 0 || v > 3600)
    return cl_error_make (err, 0, "invalid --timeout `%s`: seconds, 0-3600", s);
  *out = (int)v;
  return 0;
}

/* stop, restart, delete: NAME plus --timeout/--force. */
static int
parse_stop_options (int argc, char **argv, const char *usage, int *timeout, bool *force,
                    const char **name, cl_error_t *err)
{
  static const struct option opts[] = { { "timeout", required_argument, NULL, 't' },
                                        { "force", no_argument, NULL, 'f' },
                                        { NULL, 0, NULL, 0 } };
  int c;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "t:f", opts, NULL)) != -1)
    switch (c)
      {
      case 't':
        if (parse_timeout (optarg, timeout, err) < 0)
          return -1;
        break;
      case 'f':
        *force = true;
        break;
      default:
        return usage_error (err, usage);
      }
  if (argc - optind != 1)
    return usage_error (err, usage);
  *name = argv[optind];
  return 0;
}

/* stop and restart: PUT .../state */
static int
state_action (struct cloison_globals *g, int argc, char **argv, const char *action, cl_error_t *err)
{
  cleanup_free char *usage = cl_strdup_printf ("%s [--timeout SECONDS] [--force] NAME", action);
  const char *name = NULL;
  int timeout = 10;
  bool force = false;

  if (parse_stop_options (argc, argv, usage, &timeout, &force, &name, err) < 0)
    return -1;
  return instance_call (
      g, "PUT", name, "/state", NULL,
      json_pack ("{s:s, s:i, s:b}", "action", action, "timeout", timeout, "force", force), NULL,
      err);
}

static int
cmd_stop (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  return state_action (g, argc, argv, "stop", err);
}

static int
cmd_restart (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  return state_action (g, argc, argv, "restart", err);
}

static int
cmd_delete (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  const char *name = NULL;
  int timeout = 0;
  bool force = false;

  if (parse_stop_options (argc, argv, "delete [--force] NAME", &timeout, &force, &name, err) < 0)
    return -1;
  return instance_call (g, "DELETE", name, "", force ? "force=1" : NULL, NULL, NULL, err);
}

static int
cmd_exec (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const struct option opts[] = { { "env", required_argument, NULL, 'e' },
                                        { "tty", no_argument, NULL, 't' },
                                        { "no-tty", no_argument, NULL, 'T' },
                                        { NULL, 0, NULL, 0 } };
  static const char usage[] = "exec [--env K=V]... [-t|--tty|-T|--no-tty] NAME -- CMD...";
  cleanup_manager struct cl_manager *m = NULL;
  cleanup_free const char **env = NULL;
  enum cl_exec_tty tty = CL_EXEC_TTY_AUTO;
  struct cli_client *c_api;
  size_t n_env = 0, ncmd;
  char **cmd;
  int n = split_command (argc, argv, &cmd, &ncmd), c, code = 0;

  opterr = 0;
  while ((c = getopt_long (n, argv, "e:tT", opts, NULL)) != -1)
    if (c == 'e' && strchr (optarg, '='))
      push (&env, &n_env, optarg);
    else if (c == 't' || c == 'T')
      tty = c == 't' ? CL_EXEC_TTY_ON : CL_EXEC_TTY_OFF;
    else
      return usage_error (err, usage);
  if (n - optind != 1 || ncmd == 0)
    return usage_error (err, usage);
  if ((c_api = cli_client_of (g, err)) == NULL)
    return -1;
  if (cli_client_remote (c_api))
    {
      bool want_tty = tty == CL_EXEC_TTY_AUTO ? isatty (0) && isatty (1) : tty == CL_EXEC_TTY_ON;
      return cli_exec_api (c_api, argv[optind], cmd, ncmd, env, n_env, want_tty, &code, err) < 0
                 ? -1
                 : code;
    }
  if (cl_mgr_open (g->root, &m, err) < 0
      || cl_mgr_instance_exec (m, argv[optind], cmd, env, n_env, tty, &code, err) < 0)
    return -1;
  return code;
}

static int
cmd_console (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_manager struct cl_manager *m = NULL;
  struct cli_client *c;
  const char *name = NULL;
  int code = 0;

  if (one_name (argc, argv, "console NAME", &name, err) < 0 || (c = cli_client_of (g, err)) == NULL)
    return -1;
  if (cli_client_remote (c))
    return cli_console_api (c, name, &code, err) < 0 ? -1 : code;
  if (cl_mgr_open (g->root, &m, err) < 0 || cl_mgr_instance_console (m, name, &code, err) < 0)
    return -1;
  return code;
}

/* The log from byte `from` (GET .../logs?offset=), written to stdout;
 *next: the offset after it.  A reader gone away is not an error. */
static int
logs_from (struct cli_client *c, const char *path, uint64_t from, uint64_t *next, cl_error_t *err)
{
  for (;;)
    {
      char query[40];
      struct cl_api_request req = { .method = "GET", .path = path, .query = query };
      struct cl_api_response resp;
      int r = 0;

      snprintf (query, sizeof query, "offset=%llu", (unsigned long long)from);
      if (cli_request (c, &req, &resp, err) < 0)
        return -1;
      if (resp.status != 200)
        {
          const char *msg = json_string_value (json_object_get (resp.json, "error"));
          r = cl_error_make (err, 0, "%s", msg ? msg : "logs: no answer");
        }
      else if (resp.raw_len && cl_write_all (1, resp.raw, resp.raw_len) < 0)
        r = 1;
      from += resp.raw_len;
      *next = from;
      /* a reply shorter than the API's limit: the end for now */
      if (r != 0 || resp.raw_len < CL_API_LOG_LIMIT)
        {
          cl_api_response_clear (&resp);
          return r < 0 ? -1 : r;
        }
      cl_api_response_clear (&resp);
    }
}

static int
cmd_logs (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const struct option opts[]
      = { { "follow", no_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
  struct cli_client *client;
  cleanup_free char *path = NULL;
  bool follow = false;
  uint64_t at = 0;
  int c, r;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "f", opts, NULL)) != -1)
    if (c == 'f')
      follow = true;
    else
      return usage_error (err, "logs [--follow] NAME");
  if (argc - optind != 1)
    return usage_error (err, "logs [--follow] NAME");
  if ((client = cli_client_of (g, err)) == NULL)
    return -1;
  path = instance_path (argv[optind], "/logs");
  for (;;)
    {
      cleanup_json json_t *state = NULL;
      if ((r = logs_from (client, path, at, &at, err)) != 0)
        return r < 0 ? -1 : 0; /* error, or the reader went away */
      if (!follow)
        return 0;
      if (instance_call (g, "GET", argv[optind], "/state", NULL, NULL, &state, err) < 0)
        return -1;
      if (strcmp (json_string_value (json_object_get (state, "status")), "running") != 0)
        return logs_from (client, path, at, &at, err) < 0 ? -1 : 0;
      usleep (200000);
    }
}

static int
cmd_config (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[] = "config set NAME limits.memory=SIZE|limits.cpu=N...";
  json_t *config;

  if (argc < 4 || strcmp (argv[1], "set") != 0)
    return usage_error (err, usage);
  config = json_object ();
  for (int i = 3; i < argc; i++)
    {
      cleanup_free char *key = cl_xstrdup (argv[i]);
      char *eq = strchr (key, '=');
      if (eq == NULL)
        {
          json_decref (config);
          return cl_error_make (err, 0, "`%s`: expected KEY=VALUE", argv[i]);
        }
      *eq = '\0';
      json_object_set_new (config, key, json_string (eq + 1));
    }
  /* PATCH checks every value before it applies any */
  return instance_call (g, "PATCH", argv[2], "", NULL, json_pack ("{s:o}", "config", config), NULL,
                        err);
}

static int
cmd_copy (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  struct cli_client *c;
  cleanup_json json_t *body = NULL;

  if (argc != 3)
    return usage_error (err, "copy SRC NEW");
  if ((c = cli_client_of (g, err)) == NULL)
    return -1;
  body = json_pack ("{s:s, s:{s:s, s:s}}", "name", argv[2], "source", "type", "copy", "instance",
                    argv[1]);
  return cli_call (c, "POST", "/1.0/instances", NULL, body, NULL, err);
}

static int
cmd_snapshot (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[] = "snapshot create [--stateful]|list|restore|delete NAME [SNAP]";
  static const struct option opts[]
      = { { "stateful", no_argument, NULL, 's' }, { NULL, 0, NULL, 0 } };
  cleanup_free char *snap = NULL;
  const char *verb;
  bool stateful = false;
  int c;

  if (argc < 2)
    return usage_error (err, usage);
  verb = argv[1];
  argc--, argv++;
  opterr = 0;
  optind = 0;
  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1)
    if (c == 's' && strcmp (verb, "create") == 0)
      stateful = true;
    else
      return usage_error (err, usage);
  argc -= optind;
  argv += optind;
  if (strcmp (verb, "list") == 0)
    {
      cleanup_json json_t *list = NULL;
      size_t i;
      json_t *e;
      if (argc != 1)
        return usage_error (err, usage);
      if (instance_call (g, "GET", argv[0], "/snapshots", "recursion=1", NULL, &list, err) < 0)
        return -1;
      printf ("%-24s %-9s %s\n", "NAME", "STATEFUL", "CREATED");
      json_array_foreach (list, i, e)
      {
        char when[32];
        time_t t = (time_t)json_integer_value (json_object_get (e, "created"));
        struct tm tm;
        strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r (&t, &tm));
        printf ("%-24s %-9s %s\n", json_string_value (json_object_get (e, "name")),
                json_is_true (json_object_get (e, "stateful")) ? "yes" : "no", when);
      }
      return 0;
    }
  if (argc != 2)
    return usage_error (err, usage);
  if (strcmp (verb, "create") == 0)
    return instance_call (g, "POST", argv[0], "/snapshots", NULL,
                          json_pack ("{s:s, s:b}", "name", argv[1], "stateful", stateful), NULL,
                          err);
  if (strcmp (verb, "restore") != 0 && strcmp (verb, "delete") != 0)
    return usage_error (err, usage);
  snap = cl_api_url ("/snapshots/", argv[1]);
  return instance_call (g, strcmp (verb, "restore") == 0 ? "POST" : "DELETE", argv[0], snap, NULL,
                        NULL, NULL, err);
}

const struct cloison_cmd cloison_instance_cmds[] = {
  { "launch", cmd_launch, "create and start an instance (container, or --vm)" },
  { "run", cmd_run, "run a command in an ephemeral instance, attached" },
  { "list", cmd_list, "list instances" },
  { "info", cmd_info, "show an instance (JSON)" },
  { "start", cmd_start, "start a stopped instance" },
  { "stop", cmd_stop, "stop an instance (graceful, then forced)" },
  { "restart", cmd_restart, "stop then start an instance" },
  { "freeze", cmd_freeze, "freeze a running instance (pause its processes or vCPUs)" },
  { "unfreeze", cmd_unfreeze, "thaw a frozen instance" },
  { "delete", cmd_delete, "delete an instance" },
  { "exec", cmd_exec, "run a command in a running instance" },
  { "console", cmd_console, "attach to an instance's console" },
  { "logs", cmd_logs, "print an instance's console output" },
  { "config", cmd_config, "set an instance's limits (live when running)" },
  { "copy", cmd_copy, "copy an instance (copy-on-write)" },
  { "snapshot", cmd_snapshot, "create, list, restore, delete snapshots" },
  { NULL, NULL, NULL },
};
