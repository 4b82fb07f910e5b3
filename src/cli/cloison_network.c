/* SPDX-License-Identifier: Apache-2.0 */
/* cloison network: create, list, info, delete, requests to the API
   (cli/client.h); plus internal commands (attach, attach-vm, detach,
   forward, unforward, instance, cleanup) over src/net/net.h, that stand
   in for `cloison launch` in tests and benchmarks. */
#include "cli/client.h"
#include "cli/cloison.h"
#include "common/cleanup.h"
#include "common/db.h"
#include "common/json.h"
#include "common/util.h"
#include "net/net.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[]
    = "usage: cloison network create NAME [--subnet CIDR] [--nat | --routed | --isolated] [--vlan "
      "ID]\n"
      "                                     [--mtu BYTES]\n"
      "       cloison network list [--format table|json]\n"
      "       cloison network info NAME\n"
      "       cloison network delete NAME\n"
      "internal (tests, until `cloison launch` attaches instances itself):\n"
      "       cloison network attach [NAME] --instance X --pid PID [--ifname eth0]\n"
      "       cloison network attach-vm [NAME] --instance X [--owner UID]\n"
      "       cloison network detach --instance X\n"
      "       cloison network forward --instance X [--network NAME] HOSTPORT:PORT[/tcp|udp]\n"
      "       cloison network unforward --instance X HOSTPORT[/tcp|udp]\n"
      "       cloison network instance X\n"
      "       cloison network cleanup [--live NAME,NAME...]\n";

static void
cleanup_dbp (sqlite3 **db)
{
  if (*db)
    cl_db_close (*db);
}
#define cleanup_db __attribute__ ((cleanup (cleanup_dbp)))

static int
print_json (json_t *j)
{
  char *s = json_dumps (j, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  printf ("%s\n", s);
  free (s);
  json_decref (j);
  return 0;
}

/* Options shared by the subcommands; each uses the ones it needs. */
struct net_opts
{
  const char *subnet, *instance, *ifname, *network, *format, *live;
  enum cl_net_mode mode;
  int modes_given, vlan, mtu, have_pid;
  long pid, owner;
  int npos;
  char *pos[4];
};

static int
parse_opts (int argc, char **argv, struct net_opts *o, cl_error_t *err)
{
  static const struct option opts[] = {
    { "subnet", required_argument, NULL, 's' },
    { "nat", no_argument, NULL, 'N' },
    { "routed", no_argument, NULL, 'R' },
    { "isolated", no_argument, NULL, 'I' },
    { "vlan", required_argument, NULL, 'v' },
    { "format", required_argument, NULL, 'f' },
    { "instance", required_argument, NULL, 'i' },
    { "pid", required_argument, NULL, 'p' },
    { "ifname", required_argument, NULL, 'n' },
    { "owner", required_argument, NULL, 'o' },
    { "network", required_argument, NULL, 'w' },
    { "live", required_argument, NULL, 'l' },
    { "mtu", required_argument, NULL, 'm' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int c;
  long v;

  memset (o, 0, sizeof *o);
  o->format = "table";
  optind = 0; /* full re-initialisation: options may follow NAME */
  opterr = 0;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1)
    switch (c)
      {
      case 's':
        o->subnet = optarg;
        break;
      case 'N':
      case 'R':
      case 'I':
        o->mode = c == 'N' ? CL_NET_NAT : c == 'R' ? CL_NET_ROUTED : CL_NET_ISOLATED;
        o->modes_given++;
        break;
      case 'v':
        if (cli_parse_long (optarg, "--vlan", 1, 4094, &v, NULL) < 0)
          return cl_error_make (err, 0, "--vlan: VLAN id must be 1-4094, got `%s`", optarg);
        o->vlan = (int)v;
        break;
      case 'm':
        if (cli_parse_long (optarg, "--mtu", CL_NET_MTU_MIN, CL_NET_MTU_MAX, &v, err) < 0)
          return -1;
        o->mtu = (int)v;
        break;
      case 'f':
        if (strcmp (optarg, "table") != 0 && strcmp (optarg, "json") != 0)
          return cl_error_make (err, 0, "--format: expected table or json, got `%s`", optarg);
        o->format = optarg;
        break;
      case 'i':
        o->instance = optarg;
        break;
      case 'p':
        if (cli_parse_long (optarg, "--pid", 1, 1L << 30, &o->pid, err) < 0)
          return -1;
        o->have_pid = 1;
        break;
      case 'n':
        o->ifname = optarg;
        break;
      case 'o':
        if (cli_parse_long (optarg, "--owner", 0, 0xfffffffeL, &o->owner, err) < 0)
          return -1;
        break;
      case 'w':
        o->network = optarg;
        break;
      case 'l':
        o->live = optarg;
        break;
      case 'h':
        fputs (usage_text, stdout);
        exit (0);
      default:
        return cl_error_make (err, 0,
                              "network %s: unknown option `%s` (see cloison network --help)",
                              argv[0], argv[optind - 1]);
      }
  if (o->modes_given > 1)
    return cl_error_make (err, 0, "network %s: --nat, --routed and --isolated exclude each other",
                          argv[0]);
  for (; optind < argc; optind++)
    {
      if (o->npos == (int)(sizeof o->pos / sizeof o->pos[0]))
        return cl_error_make (err, 0, "network %s: too many arguments", argv[0]);
      o->pos[o->npos++] = argv[optind];
    }
  return 0;
}

static int
need_args (const struct net_opts *o, const char *cmd, int min, int max, const char *what,
           cl_error_t *err)
{
  if (o->npos < min || o->npos > max)
    return cl_error_make (err, 0, "network %s: expected %s", cmd, what);
  return 0;
}

static int
need_instance (const struct net_opts *o, const char *cmd, cl_error_t *err)
{
  if (o->instance == NULL)
    return cl_error_make (err, 0, "network %s: --instance is required", cmd);
  return 0;
}

static const char *const mode_names[] = {
  [CL_NET_NAT] = "nat",
  [CL_NET_ROUTED] = "routed",
  [CL_NET_ISOLATED] = "isolated",
};

static int
cmd_create (struct cli_client *c, struct net_opts *o, cl_error_t *err)
{
  cleanup_json json_t *body = NULL;

  if (need_args (o, "create", 1, 1, "NAME", err) < 0)
    return -1;
  body = json_pack ("{s:s, s:s}", "name", o->pos[0], "mode", mode_names[o->mode]);
  if (o->subnet)
    json_object_set_new (body, "subnet", json_string (o->subnet));
  if (o->vlan)
    json_object_set_new (body, "vlan", json_integer (o->vlan));
  if (o->mtu)
    json_object_set_new (body, "mtu", json_integer (o->mtu));
  return cli_call (c, "POST", "/1.0/networks", NULL, body, NULL, err);
}

static int
cmd_list (struct cli_client *c, struct net_opts *o, cl_error_t *err)
{
  json_t *arr = NULL, *n;
  size_t i;
  bool has_default = false;

  if (need_args (o, "list", 0, 0, "no arguments", err) < 0
      || cli_call (c, "GET", "/1.0/networks", "recursion=1", NULL, &arr, err) < 0)
    return -1;
  json_array_foreach (arr, i, n) has_default
      |= strcmp (json_string_value (json_object_get (n, "name")), CL_NET_DEFAULT) == 0;
  if (!has_default)
    {
      /* the list shows the default network, made on first sight (another
         command making it at the same time is as good) */
      cleanup_json json_t *body = json_pack ("{s:s}", "name", CL_NET_DEFAULT);
      cl_error_t ignored = NULL;
      if (cli_call (c, "POST", "/1.0/networks", NULL, body, NULL, &ignored) < 0)
        cl_error_release (&ignored);
      json_decref (arr);
      if (cli_call (c, "GET", "/1.0/networks", "recursion=1", NULL, &arr, err) < 0)
        return -1;
    }
  if (strcmp (o->format, "json") == 0)
    return print_json (arr);
  printf ("%-16s %-18s %-15s %-8s %-5s %-15s %s\n", "NAME", "SUBNET", "GATEWAY", "MODE", "VLAN",
          "BRIDGE", "INSTANCES");
  json_array_foreach (arr, i, n)
  {
    json_t *vlan = json_object_get (n, "vlan");
    char vlan_s[8] = "-";
    if (json_is_integer (vlan))
      snprintf (vlan_s, sizeof vlan_s, "%lld", (long long)json_integer_value (vlan));
    printf ("%-16s %-18s %-15s %-8s %-5s %-15s %lld\n",
            json_string_value (json_object_get (n, "name")),
            json_string_value (json_object_get (n, "subnet")),
            json_string_value (json_object_get (n, "gateway")),
            json_string_value (json_object_get (n, "mode")), vlan_s,
            json_string_value (json_object_get (n, "bridge")),
            (long long)json_integer_value (json_object_get (n, "instances")));
  }
  json_decref (arr);
  return 0;
}

static int
cmd_info (struct cli_client *c, struct net_opts *o, cl_error_t *err)
{
  cleanup_free char *path = NULL;
  json_t *j;
  if (need_args (o, "info", 1, 1, "NAME", err) < 0)
    return -1;
  path = cl_api_url ("/1.0/networks/", o->pos[0]);
  if (cli_call (c, "GET", path, NULL, NULL, &j, err) < 0)
    return -1;
  return print_json (j);
}

static int
cmd_delete (struct cli_client *c, struct net_opts *o, cl_error_t *err)
{
  cleanup_free char *path = NULL;
  if (need_args (o, "delete", 1, 1, "NAME", err) < 0)
    return -1;
  path = cl_api_url ("/1.0/networks/", o->pos[0]);
  return cli_call (c, "DELETE", path, NULL, NULL, NULL, err);
}

static int
print_attachment (const struct cl_net_attachment *a, uint64_t ns)
{
  json_t *j = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:I}", "network", a->network,
                         "ifname", a->ifname, "host_ifname", a->host_ifname, "bridge", a->bridge,
                         "mac", a->mac, "address", a->address, "prefix_len", a->prefix_len,
                         "gateway", a->gateway, "setup_ns", (json_int_t)ns);
  return print_json (j);
}

static int
cmd_attach (sqlite3 *db, struct net_opts *o, cl_error_t *err)
{
  struct cl_net_attachment a;
  uint64_t t0;
  if (need_args (o, "attach", 0, 1, "[NAME]", err) < 0 || need_instance (o, "attach", err) < 0)
    return -1;
  if (!o->have_pid)
    return cl_error_make (err, 0, "network attach: --pid is required");
  t0 = cl_now_ns ();
  if (cl_net_attach_container (db, o->npos ? o->pos[0] : NULL, o->instance, (pid_t)o->pid,
                               o->ifname, &a, err)
      < 0)
    return -1;
  return print_attachment (&a, cl_now_ns () - t0);
}

static int
cmd_attach_vm (sqlite3 *db, struct net_opts *o, cl_error_t *err)
{
  struct cl_net_attachment a;
  uint64_t t0;
  if (need_args (o, "attach-vm", 0, 1, "[NAME]", err) < 0
      || need_instance (o, "attach-vm", err) < 0)
    return -1;
  t0 = cl_now_ns ();
  if (cl_net_attach_vm (db, o->npos ? o->pos[0] : NULL, o->instance, (uid_t)o->owner, o->ifname, &a,
                        err)
      < 0)
    return -1;
  return print_attachment (&a, cl_now_ns () - t0);
}

static int
cmd_detach (sqlite3 *db, struct net_opts *o, cl_error_t *err)
{
  if (need_args (o, "detach", 0, 0, "no arguments", err) < 0
      || need_instance (o, "detach", err) < 0)
    return -1;
  return cl_net_detach (db, o->instance, err);
}

static int
cmd_forward (sqlite3 *db, struct net_opts *o, cl_error_t *err)
{
  uint16_t hp, ip;
  const char *proto;
  if (need_args (o, "forward", 1, 1, "HOSTPORT:PORT[/tcp|udp]", err) < 0
      || need_instance (o, "forward", err) < 0
      || cl_net_parse_port_forward (o->pos[0], &hp, &ip, &proto, err) < 0)
    return -1;
  return cl_net_port_forward_add (db, o->network, o->instance, hp, ip, proto, err);
}

static int
cmd_unforward (sqlite3 *db, struct net_opts *o, cl_error_t *err)
{
  cleanup_free char *spec = NULL;
  uint16_t hp, ip;
  const char *proto, *slash;
  if (need_args (o, "unforward", 1, 1, "HOSTPORT[/tcp|udp]", err) < 0
      || need_instance (o, "unforward", err) < 0)
    return -1;
  /* Reuse the forward parser with a dummy instance port. */
  slash = strchr (o->pos[0], '/');
  spec = cl_strdup_printf ("%.*s:1%s", slash ? (int)(slash - o->pos[0]) : (int)strlen (o->pos[0]),
                           o->pos[0], slash ? slash : "");
  if (cl_net_parse_port_forward (spec, &hp, &ip, &proto, err) < 0)
    return -1;
  return cl_net_port_forward_remove (db, o->instance, hp, proto, err);
}

static int
cmd_instance (sqlite3 *db, struct net_opts *o, cl_error_t *err)
{
  json_t *j;
  if (need_args (o, "instance", 1, 1, "INSTANCE", err) < 0
      || cl_net_info (db, o->pos[0], &j, err) < 0)
    return -1;
  return print_json (j);
}

struct live_list
{
  const char **names;
  size_t n;
};

static bool
in_live_list (void *opaque, const char *instance)
{
  struct live_list *l = opaque;
  for (size_t i = 0; i < l->n; i++)
    if (strcmp (l->names[i], instance) == 0)
      return true;
  return false;
}

static int
cmd_cleanup (sqlite3 *db, struct net_opts *o, cl_error_t *err)
{
  cleanup_free char *copy = o->live ? cl_xstrdup (o->live) : NULL;
  cleanup_free const char **live = NULL;
  size_t n = 0;
  char *save = NULL;
  if (need_args (o, "cleanup", 0, 0, "no arguments", err) < 0)
    return -1;
  if (copy)
    {
      live = calloc (strlen (copy) + 1, sizeof *live);
      for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
        live[n++] = t;
    }
  struct live_list l = { live, n };
  return cl_net_cleanup_stale (db, copy ? in_live_list : NULL, &l, err);
}

struct net_subcmd
{
  const char *name;
  int (*fn) (sqlite3 *db, struct net_opts *o, cl_error_t *err);
  int recover; /* run crash recovery first */
  /* or through the API (which recovers first) */
  int (*api) (struct cli_client *c, struct net_opts *o, cl_error_t *err);
};

static const struct net_subcmd subcmds[] = {
  { "create", NULL, 0, cmd_create },       { "list", NULL, 0, cmd_list },
  { "info", NULL, 0, cmd_info },           { "delete", NULL, 0, cmd_delete },
  { "attach", cmd_attach, 0, NULL },       { "attach-vm", cmd_attach_vm, 0, NULL },
  { "detach", cmd_detach, 1, NULL },       { "forward", cmd_forward, 0, NULL },
  { "unforward", cmd_unforward, 0, NULL }, { "instance", cmd_instance, 0, NULL },
  { "cleanup", cmd_cleanup, 0, NULL },     { NULL, NULL, 0, NULL },
};

static int
cmd_network (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_db sqlite3 *db = NULL;
  struct net_opts o;

  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      fputs (usage_text, argc < 2 ? stderr : stdout);
      return argc < 2 ? 2 : 0;
    }
  for (const struct net_subcmd *s = subcmds; s->name; s++)
    if (strcmp (s->name, argv[1]) == 0)
      {
        struct cli_client *c;
        if (parse_opts (argc - 1, argv + 1, &o, err) < 0)
          return -1;
        if (s->api)
          return (c = cli_client_of (g, err)) == NULL || s->api (c, &o, err) < 0 ? -1 : 0;
        if (cl_db_open (g->root, &db, err) < 0)
          return -1;
        /* Checkpointing at every close would reset the WAL, and the next
           command's first commit would then sync a new WAL header: leave
           checkpoints to SQLite's automatic ones. */
        sqlite3_db_config (db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        if (s->recover && cl_net_cleanup_stale (db, NULL, NULL, err) < 0)
          return -1;
        return s->fn (db, &o, err) < 0 ? -1 : 0;
      }
  return cl_error_make (err, 0, "network: unknown subcommand `%s` (see cloison network --help)",
                        argv[1]);
}

const struct cloison_cmd cloison_network_cmds[] = {
  { "network", cmd_network, "virtual networks: create, list, info, delete" },
  { NULL, NULL, NULL },
};
