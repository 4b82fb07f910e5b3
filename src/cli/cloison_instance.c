/* SPDX-License-Identifier: Apache-2.0 */
/* cloison instance commands: argument parsing and printing over
   src/manager/manager.h. */
#include "cli/cloison.h"
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
      default:
        return cl_error_make (err, 0, "unknown option `%s`", argv[optind - 1]);
      }
  return 0;
}

static int
cmd_launch (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[]
      = "launch IMAGE NAME [--vm] [--cpus N] [--memory SIZE] [--disk-size SIZE] [--env K=V]..."
        " [--network NAME]... [--no-network] [-p HOSTPORT:PORT[/tcp|udp]]... [-- CMD...]";
  cleanup_manager struct cl_manager *m = NULL;
  struct cl_launch_opts o = { 0 };
  char **cmd;
  size_t ncmd;
  int n = split_command (argc, argv, &cmd, &ncmd), r;

  if (parse_launch_options (n, argv, &o, err) < 0)
    return -1;
  if (n - optind != 2)
    return usage_error (err, usage);
  o.image = argv[optind];
  o.name = argv[optind + 1];
  o.argv = ncmd ? cmd : NULL;
  o.argc = ncmd;
  if (cl_mgr_open (g->root, &m, err) < 0)
    return -1;
  r = cl_mgr_instance_launch (m, &o, err);
  free (o.env);
  free (o.networks);
  free (o.ports);
  return r;
}

static int
cmd_run (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_manager struct cl_manager *m = NULL;
  struct cl_launch_opts o = { 0 };
  char name[64], **cmd;
  size_t ncmd;
  int n = split_command (argc, argv, &cmd, &ncmd), code = 0;

  if (parse_launch_options (n, argv, &o, err) < 0)
    return -1;
  if (n - optind != 1)
    return usage_error (err, "run [--vm] [launch options] IMAGE [-- CMD...]");
  snprintf (name, sizeof name, "run-%d-%lx", (int)getpid (), (unsigned long)time (NULL));
  o.image = argv[optind];
  o.name = name;
  o.argv = ncmd ? cmd : NULL;
  o.argc = ncmd;
  if (cl_mgr_open (g->root, &m, err) < 0 || cl_mgr_instance_run (m, &o, &code, err) < 0)
    return -1;
  return code;
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
  cleanup_manager struct cl_manager *m = NULL;
  cleanup_json json_t *list = NULL;
  const char *format = "table";
  int c;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "f:", opts, NULL)) != -1)
    if (c == 'f')
      format = optarg;
    else
      return usage_error (err, "list [--format table|json]");
  if (strcmp (format, "table") != 0 && strcmp (format, "json") != 0)
    return cl_error_make (err, 0, "invalid --format `%s`: table or json", format);
  if (cl_mgr_open (g->root, &m, err) < 0 || cl_mgr_instance_list (m, &list, err) < 0)
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

static int
cmd_info (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_manager struct cl_manager *m = NULL;
  cleanup_json json_t *info = NULL;
  const char *name = NULL;
  char *s;

  if (one_name (argc, argv, "info NAME", &name, err) < 0 || cl_mgr_open (g->root, &m, err) < 0
      || cl_mgr_instance_info (m, name, &info, err) < 0)
    return -1;
  s = json_dumps (info, JSON_INDENT (2));
  puts (s);
  free (s);
  return 0;
}

static int
cmd_start (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_manager struct cl_manager *m = NULL;
  const char *name = NULL;

  if (one_name (argc, argv, "start NAME", &name, err) < 0 || cl_mgr_open (g->root, &m, err) < 0)
    return -1;
  return cl_mgr_instance_start (m, name, err);
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

static int
cmd_stop (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_manager struct cl_manager *m = NULL;
  const char *name = NULL;
  int timeout = 10;
  bool force = false;

  if (parse_stop_options (argc, argv, "stop [--timeout SECONDS] [--force] NAME", &timeout, &force,
                          &name, err)
          < 0
      || cl_mgr_open (g->root, &m, err) < 0)
    return -1;
  return cl_mgr_instance_stop (m, name, timeout, force, err);
}

static int
cmd_restart (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_manager struct cl_manager *m = NULL;
  const char *name = NULL;
  int timeout = 10;
  bool force = false;

  if (parse_stop_options (argc, argv, "restart [--timeout SECONDS] [--force] NAME", &timeout,
                          &force, &name, err)
          < 0
      || cl_mgr_open (g->root, &m, err) < 0)
    return -1;
  return cl_mgr_instance_restart (m, name, force ? 0 : timeout, err);
}

static int
cmd_delete (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_manager struct cl_manager *m = NULL;
  const char *name = NULL;
  int timeout = 0;
  bool force = false;

  if (parse_stop_options (argc, argv, "delete [--force] NAME", &timeout, &force, &name, err) < 0
      || cl_mgr_open (g->root, &m, err) < 0)
    return -1;
  return cl_mgr_instance_delete (m, name, force, err);
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
  if (cl_mgr_open (g->root, &m, err) < 0
      || cl_mgr_instance_exec (m, argv[optind], cmd, env, n_env, tty, &code, err) < 0)
    return -1;
  return code;
}

static int
cmd_console (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_manager struct cl_manager *m = NULL;
  const char *name = NULL;
  int code = 0;

  if (one_name (argc, argv, "console NAME", &name, err) < 0 || cl_mgr_open (g->root, &m, err) < 0
      || cl_mgr_instance_console (m, name, &code, err) < 0)
    return -1;
  return code;
}

static int
cmd_logs (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const struct option opts[]
      = { { "follow", no_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
  cleanup_manager struct cl_manager *m = NULL;
  cleanup_free char *path = NULL;
  cleanup_close int fd = -1;
  bool follow = false;
  char buf[65536];
  ssize_t n;
  int c;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "f", opts, NULL)) != -1)
    if (c == 'f')
      follow = true;
    else
      return usage_error (err, "logs [--follow] NAME");
  if (argc - optind != 1)
    return usage_error (err, "logs [--follow] NAME");
  if (cl_mgr_open (g->root, &m, err) < 0
      || cl_mgr_instance_log_path (m, argv[optind], &path, err) < 0)
    return -1;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno != ENOENT)
    return cl_error_errno (err, "open `%s`", path);
  for (;;)
    {
      while (fd >= 0 && (n = read (fd, buf, sizeof buf)) > 0)
        if (cl_write_all (1, buf, (size_t)n) < 0)
          return 0; /* reader went away */
      if (!follow)
        return 0;
      {
        cleanup_json json_t *info = NULL;
        if (cl_mgr_instance_info (m, argv[optind], &info, err) < 0)
          return -1;
        if (strcmp (json_string_value (json_object_get (info, "status")), "running") != 0)
          {
            while (fd >= 0 && (n = read (fd, buf, sizeof buf)) > 0)
              if (cl_write_all (1, buf, (size_t)n) < 0)
                break;
            return 0;
          }
      }
      if (fd < 0)
        fd = open (path, O_RDONLY | O_CLOEXEC);
      usleep (200000);
    }
}

static int
cmd_config (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[] = "config set NAME limits.memory=SIZE|limits.cpu=N...";
  cleanup_manager struct cl_manager *m = NULL;

  if (argc < 4 || strcmp (argv[1], "set") != 0)
    return usage_error (err, usage);
  if (cl_mgr_open (g->root, &m, err) < 0)
    return -1;
  for (int i = 3; i < argc; i++)
    {
      cleanup_free char *key = cl_xstrdup (argv[i]);
      char *eq = strchr (key, '=');
      if (eq == NULL)
        return cl_error_make (err, 0, "`%s`: expected KEY=VALUE", argv[i]);
      *eq = '\0';
      if (cl_mgr_instance_config_set (m, argv[2], key, eq + 1, err) < 0)
        return -1;
    }
  return 0;
}

static int
cmd_copy (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_manager struct cl_manager *m = NULL;

  if (argc != 3)
    return usage_error (err, "copy SRC NEW");
  if (cl_mgr_open (g->root, &m, err) < 0)
    return -1;
  return cl_mgr_instance_copy (m, argv[1], argv[2], err);
}

static int
cmd_snapshot (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[] = "snapshot create [--stateful]|list|restore|delete NAME [SNAP]";
  static const struct option opts[]
      = { { "stateful", no_argument, NULL, 's' }, { NULL, 0, NULL, 0 } };
  cleanup_manager struct cl_manager *m = NULL;
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
      if (cl_mgr_open (g->root, &m, err) < 0 || cl_mgr_snapshot_list (m, argv[0], &list, err) < 0)
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
  if (cl_mgr_open (g->root, &m, err) < 0)
    return -1;
  if (strcmp (verb, "create") == 0)
    return cl_mgr_snapshot_create (m, argv[0], argv[1], stateful, err);
  if (strcmp (verb, "restore") == 0)
    return cl_mgr_snapshot_restore (m, argv[0], argv[1], err);
  if (strcmp (verb, "delete") == 0)
    return cl_mgr_snapshot_delete (m, argv[0], argv[1], err);
  return usage_error (err, usage);
}

const struct cloison_cmd cloison_instance_cmds[] = {
  { "launch", cmd_launch, "create and start an instance (container, or --vm)" },
  { "run", cmd_run, "run a command in an ephemeral instance, attached" },
  { "list", cmd_list, "list instances" },
  { "info", cmd_info, "show an instance (JSON)" },
  { "start", cmd_start, "start a stopped instance" },
  { "stop", cmd_stop, "stop an instance (graceful, then forced)" },
  { "restart", cmd_restart, "stop then start an instance" },
  { "delete", cmd_delete, "delete an instance" },
  { "exec", cmd_exec, "run a command in a running instance" },
  { "console", cmd_console, "attach to an instance's console" },
  { "logs", cmd_logs, "print an instance's console output" },
  { "config", cmd_config, "set an instance's limits (live when running)" },
  { "copy", cmd_copy, "copy an instance (copy-on-write)" },
  { "snapshot", cmd_snapshot, "create, list, restore, delete snapshots" },
  { NULL, NULL, NULL },
};
