/* SPDX-License-Identifier: Apache-2.0 */
/* Attachments: containers (veth into their netns) and microVMs (taps),
   addresses reserved in the database, detach. */
#include "common/cleanup.h"
#include "common/db.h"
#include "common/log.h"
#include "common/util.h"
#include "net/dnsmasq.h"
#include "net/net_internal.h"
#include "net/ipam.h"
#include "net/netlink.h"
#include "net/nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fixed address asked for (`want`, not 0): inside the subnet, not its
   network, gateway or broadcast address, and free. */
static int
check_wanted (const struct net_row *n, uint32_t want, const uint32_t *used, size_t n_used,
              cl_error_t *err)
{
  uint32_t mask = cl_net_ipam_mask (n->prefix);
  char a[16], s[16];

  cl_net_ipam_format (want, a);
  cl_net_ipam_format (n->subnet, s);
  if ((want & mask) != n->subnet || want == n->subnet || want == cl_net_ipam_gateway (n->subnet)
      || want == (n->subnet | ~mask))
    return cl_error_raise (err, CL_ERR_INVALID,
                           "network `%s`: address %s is not one for an instance in %s/%d", n->name,
                           a, s, n->prefix);
  for (size_t i = 0; i < n_used; i++)
    if (used[i] == want)
      return cl_error_raise (err, CL_ERR_CONFLICT, "network `%s`: address %s is in use", n->name,
                             a);
  return 0;
}

/* Reserves the address `want` (0: the next free one) and inserts the
   attachment row with its host-side link name; fills `a`. */
static int
reserve (struct net_ctx *c, const struct net_row *n, const char *instance, const char *kind,
         const char *ifname, pid_t pid, uint32_t want, struct att_row *a, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  cleanup_free uint32_t *used = NULL;
  size_t n_used = 0, cap = 0;

  if (cl_db_begin (c->db, err) < 0)
    return -1;
  if (cl_db_prepare (c->db,
                     "SELECT instance FROM net_attachments WHERE network_id = ? AND instance = ?",
                     &st, err)
      < 0)
    goto fail;
  sqlite3_bind_int64 (st, 1, n->id);
  sqlite3_bind_text (st, 2, instance, -1, SQLITE_STATIC);
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` is already attached to network `%s`",
                      instance, n->name);
      goto fail;
    }
  sqlite3_finalize (steal_pointer (&st));
  if (cl_db_prepare (c->db,
                     "SELECT address FROM net_attachments WHERE network_id = ? ORDER BY address",
                     &st, err)
      < 0)
    goto fail;
  sqlite3_bind_int64 (st, 1, n->id);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      if (n_used == cap)
        {
          cap = cap ? cap * 2 : 64;
          used = realloc (used, cap * sizeof *used);
          if (used == NULL)
            abort ();
        }
      used[n_used++] = (uint32_t)sqlite3_column_int64 (st, 0);
    }
  sqlite3_finalize (steal_pointer (&st));
  memset (a, 0, sizeof *a);
  if (want && check_wanted (n, want, used, n_used, err) < 0)
    goto fail;
  a->address = want ? want : cl_net_ipam_next_free (n->subnet, n->prefix, used, n_used);
  if (a->address == 0)
    {
      char s[16];
      cl_net_ipam_format (n->subnet, s);
      cl_error_raise (err, CL_ERR_CONFLICT, "network `%s`: no free address left in %s/%d", n->name,
                      s, n->prefix);
      goto fail;
    }
  a->network_id = n->id;
  a->pid = pid;
  snprintf (a->instance, sizeof a->instance, "%s", instance);
  snprintf (a->kind, sizeof a->kind, "%s", kind);
  snprintf (a->ifname, sizeof a->ifname, "%s", ifname);
  /* Locally administered, unique per address: VMs 52:54:<ip>, containers
     0a:58:<ip> (the convention of Kubernetes' bridge plugin). */
  snprintf (a->mac, sizeof a->mac, "%s:%02x:%02x:%02x:%02x",
            strcmp (kind, "vm") == 0 ? "52:54" : "0a:58", a->address >> 24,
            (a->address >> 16) & 0xff, (a->address >> 8) & 0xff, a->address & 0xff);
  if (cl_db_prepare (
          c->db,
          "INSERT INTO net_attachments (network_id, instance, kind, ifname, address, mac, pid)"
          " VALUES (?, ?, ?, ?, ?, ?, ?)",
          &st, err)
      < 0)
    goto fail;
  sqlite3_bind_int64 (st, 1, n->id);
  sqlite3_bind_text (st, 2, instance, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 4, ifname, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 5, a->address);
  sqlite3_bind_text (st, 6, a->mac, -1, SQLITE_STATIC);
  sqlite3_bind_int (st, 7, pid);
  if (cl_db_step_done (c->db, st, err) < 0)
    goto fail;
  a->id = sqlite3_last_insert_rowid (c->db);
  snprintf (a->host_ifname, sizeof a->host_ifname, "cl%c-%s-%lld",
            strcmp (kind, "vm") == 0 ? 't' : 'v', c->tag, (long long)a->id);
  if (cl_net_exec_bound (c->db, "UPDATE net_attachments SET host_ifname = ?2 WHERE id = ?1", a->id,
                         a->host_ifname, err)
          < 0
      || cl_db_commit (c->db, err) < 0)
    goto fail;
  return 0;
fail:
  cl_db_rollback (c->db);
  return -1;
}

static void
fill_out (const struct net_row *n, const struct att_row *a, struct cl_net_attachment *out)
{
  if (out == NULL)
    return;
  memset (out, 0, sizeof *out);
  snprintf (out->network, sizeof out->network, "%s", n->name);
  snprintf (out->ifname, sizeof out->ifname, "%s", a->ifname);
  snprintf (out->host_ifname, sizeof out->host_ifname, "%s", a->host_ifname);
  snprintf (out->bridge, sizeof out->bridge, "%s", n->l3);
  snprintf (out->mac, sizeof out->mac, "%s", a->mac);
  cl_net_ipam_format (a->address, out->address);
  out->prefix_len = n->prefix;
  cl_net_ipam_format (cl_net_ipam_gateway (n->subnet), out->gateway);
}

static int
parse_mac (const char *s, uint8_t mac[6])
{
  unsigned v[6];
  if (sscanf (s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
    return -1;
  for (int i = 0; i < 6; i++)
    mac[i] = (uint8_t)v[i];
  return 0;
}

/* The bridge a port of network n joins (the trunk for VLAN networks). */
static int
port_master (struct net_ctx *c, const struct net_row *n, cl_error_t *err)
{
  cleanup_free char *trunk = n->vlan ? cl_net_trunk_name (c) : NULL;
  int idx = cl_net_nl_link_index (c->nl, n->vlan ? trunk : n->l3, err);
  if (idx == 0)
    return cl_error_make (
        err, 0, "network `%s`: bridge `%s` is missing (run `cloison network list` to repair)",
        n->name, n->vlan ? trunk : n->l3);
  return idx;
}

static int
port_vlan (struct net_ctx *c, const struct net_row *n, const char *port, cl_error_t *err)
{
  int idx;
  if (n->vlan == 0)
    return 0;
  idx = cl_net_nl_link_index (c->nl, port, err);
  if (idx <= 0)
    return idx < 0 ? -1 : cl_error_make (err, 0, "link `%s` vanished", port);
  return cl_net_nl_bridge_vlan (c->nl, idx, n->vlan, 1, 0, 0, err);
}

/* Inside the container: lo and the interface up, its address, and (for
   its first network only, as Docker does) the default route. */
static int
configure_inside (int nsfd, const char *ifname, const struct net_row *n, uint32_t addr,
                  int default_route, cl_error_t *err)
{
  struct nl_sock *inside = NULL;
  int idx, r = -1;

  if (cl_net_nl_open_in_netns (nsfd, &inside, err) < 0)
    return -1;
  idx = cl_net_nl_link_index (inside, ifname, err);
  if (idx == 0)
    cl_error_make (err, 0, "link `%s` missing in the instance", ifname);
  else if (idx > 0 && cl_net_nl_link_set (inside, 1, 1, 0, 0, err) == 0 /* lo is always ifindex 1 */
           && cl_net_nl_link_set (inside, idx, 1, 0, 0, err) == 0
           && cl_net_nl_addr_add (inside, idx, addr, n->prefix, err) == 0
           && (!default_route
               || cl_net_nl_route_add_default (inside, cl_net_ipam_gateway (n->subnet), err) == 0))
    r = 0;
  cl_net_nl_close (inside);
  return r;
}

static int
resolve_network (struct net_ctx *c, const char *net_name, struct net_row *n, cl_error_t *err)
{
  if (net_name == NULL)
    {
      if (cl_net_ensure_default_locked (c, err) < 0)
        return -1;
      net_name = CL_NET_DEFAULT;
    }
  return cl_net_load (c->db, net_name, n, err);
}

static void
unreserve (struct net_ctx *c, const struct att_row *a)
{
  if (a->host_ifname[0])
    cl_net_nl_link_del (c->nl, a->host_ifname, NULL);
  cl_net_exec_bound (c->db, "DELETE FROM net_attachments WHERE id = ?", a->id, NULL, NULL);
}

static int
count_attachments (sqlite3 *db, const char *instance)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  int n = 0;
  if (cl_db_prepare (db, "SELECT count(*) FROM net_attachments WHERE instance = ?", &st, NULL) == 0)
    {
      sqlite3_bind_text (st, 1, instance, -1, SQLITE_STATIC);
      if (sqlite3_step (st) == SQLITE_ROW)
        n = sqlite3_column_int (st, 0);
    }
  return n;
}

/* eth0 for an instance's first network, eth1 for its second... */
static void
default_ifname (sqlite3 *db, const char *instance, char out[16])
{
  snprintf (out, 16, "eth%d", count_attachments (db, instance));
}

/* What both kinds of attach check and look up first: the names, the
   network (the default one when net_name is NULL; NAME@ADDRESS: a fixed
   address in *want), the bridge to join. */
static int
attach_prepare (sqlite3 *db, const char *net_name, const char *instance, const char **ifname,
                char auto_ifname[16], struct net_ctx *c, struct net_row *n, int *master,
                uint32_t *want, cl_error_t *err)
{
  cleanup_free char *name = NULL;

  *want = 0;
  if (net_name && strchr (net_name, '@'))
    {
      struct in_addr in;
      name = cl_xstrdup (net_name);
      *strchr (name, '@') = '\0';
      if (inet_pton (AF_INET, strchr (net_name, '@') + 1, &in) != 1)
        return cl_error_raise (err, CL_ERR_INVALID, "network `%s`: `%s` is not an IPv4 address",
                               name, strchr (net_name, '@') + 1);
      *want = ntohl (in.s_addr);
      net_name = name;
    }
  if (*ifname == NULL)
    {
      if (cl_net_schema (db, err) < 0)
        return -1;
      default_ifname (db, instance, auto_ifname);
      *ifname = auto_ifname;
    }
  if (cl_validate_name (instance, "instance name", err) < 0
      || cl_validate_name (*ifname, "interface name", err) < 0)
    return -1;
  if (strlen (*ifname) > 15)
    return cl_error_raise (err, CL_ERR_INVALID,
                           "invalid interface name `%s`: longer than 15 characters", *ifname);
  if (cl_net_ctx_open (db, c, err) < 0 || resolve_network (c, net_name, n, err) < 0)
    return -1;
  *master = port_master (c, n, err);
  return *master < 0 ? -1 : 0;
}

int
cl_net_attach_container (sqlite3 *db, const char *net_name, const char *instance, pid_t pid,
                         const char *ifname, struct cl_net_attachment *out, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c = { .lock_fd = -1 };
  cleanup_close int nsfd = -1;
  cleanup_free char *ns_path = cl_strdup_printf ("/proc/%d/ns/net", (int)pid);
  struct net_row n;
  struct att_row a;
  uint8_t mac[6];
  char auto_ifname[16];
  int master, first;
  uint32_t want;

  if (attach_prepare (db, net_name, instance, &ifname, auto_ifname, &c, &n, &master, &want, err)
      < 0)
    return -1;
  nsfd = open (ns_path, O_RDONLY | O_CLOEXEC);
  if (pid <= 0 || nsfd < 0)
    return cl_error_errno (err, "open `%s`", ns_path);
  first = count_attachments (db, instance) == 0;
  if (reserve (&c, &n, instance, "container", ifname, pid, want, &a, err) < 0)
    return -1;
  parse_mac (a.mac, mac);
  if (cl_net_nl_veth_add (c.nl, a.host_ifname, master, ifname, mac, nsfd, n.mtu, err) < 0
      || port_vlan (&c, &n, a.host_ifname, err) < 0
      || configure_inside (nsfd, ifname, &n, a.address, first, err) < 0
      || cl_net_publish_hosts (&c, &n, 0, err) < 0)
    {
      unreserve (&c, &a);
      cl_net_publish_hosts (&c, &n, 0, NULL);
      return cl_error_wrap (err, "attach `%s` to network `%s`", instance, n.name);
    }
  fill_out (&n, &a, out);
  return 0;
}

int
cl_net_attach_vm (sqlite3 *db, const char *net_name, const char *instance, uid_t owner,
                  const char *ifname, struct cl_net_attachment *out, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c = { .lock_fd = -1 };
  struct net_row n;
  struct att_row a;
  char auto_ifname[16];
  int master, tap;
  uint32_t want;

  if (attach_prepare (db, net_name, instance, &ifname, auto_ifname, &c, &n, &master, &want, err) < 0
      || reserve (&c, &n, instance, "vm", ifname, 0, want, &a, err) < 0)
    return -1;
  if (cl_net_nl_tap_create (a.host_ifname, owner, err) < 0
      || (tap = cl_net_nl_link_index (c.nl, a.host_ifname, err)) <= 0
      || cl_net_nl_link_set (c.nl, tap, 1, master, n.mtu, err) < 0
      || port_vlan (&c, &n, a.host_ifname, err) < 0 || cl_net_publish_hosts (&c, &n, 1, err) < 0)
    {
      unreserve (&c, &a);
      cl_net_publish_hosts (&c, &n, 1, NULL);
      return cl_error_wrap (err, "attach `%s` to network `%s`", instance, n.name);
    }
  fill_out (&n, &a, out);
  return 0;
}

/* Removes one attachment: its forwards, its link, its row. */
int
cl_net_detach_one (struct net_ctx *c, const struct att_row *a, struct net_row *n, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (cl_net_by_id (c->db, a->network_id, n, err) < 0)
    return -1;
  if (cl_db_prepare (c->db, "SELECT proto, host_port FROM net_forwards WHERE attachment_id = ?",
                     &st, err)
      < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, a->id);
  while (sqlite3_step (st) == SQLITE_ROW)
    cl_net_nft_forward_set (c->tag, n->name, (const char *)sqlite3_column_text (st, 0),
                            (uint16_t)sqlite3_column_int (st, 1), 0, 0, 0, NULL);
  if (cl_net_nl_link_del (c->nl, a->host_ifname, err) < 0)
    return -1;
  return cl_net_exec_bound (c->db, "DELETE FROM net_attachments WHERE id = ?", a->id, NULL, err);
}

/* Detaches every attachment matching `where`, bound to text_arg (if not
   NULL) or int_arg. */
int
cl_net_detach_where (struct net_ctx *c, const char *where, const char *text_arg, int64_t int_arg,
                     cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  cleanup_free char *sql
      = cl_strdup_printf ("SELECT " ATT_COLUMNS " FROM net_attachments WHERE %s", where);
  struct att_row *rows = NULL;
  size_t n_rows = 0;
  int r = 0;

  if (cl_db_prepare (c->db, sql, &st, err) < 0)
    return -1;
  if (text_arg)
    sqlite3_bind_text (st, 1, text_arg, -1, SQLITE_STATIC);
  else
    sqlite3_bind_int64 (st, 1, int_arg);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      rows = realloc (rows, (n_rows + 1) * sizeof *rows);
      if (rows == NULL)
        abort ();
      cl_net_att_from_stmt (st, &rows[n_rows++]);
    }
  sqlite3_finalize (steal_pointer (&st));
  for (size_t i = 0; i < n_rows && r == 0; i++)
    {
      struct net_row n;
      r = cl_net_detach_one (c, &rows[i], &n, err);
      if (r == 0)
        cl_net_publish_hosts (c, &n, 1, NULL); /* DNS/DHCP only: never fails a detach */
    }
  free (rows);
  return r;
}

int
cl_net_detach (sqlite3 *db, const char *instance, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c = { .lock_fd = -1 };
  if (cl_net_ctx_open (db, &c, err) < 0)
    return -1;
  return cl_net_detach_where (&c, "instance = ?", instance, 0, err);
}

int
cl_net_info (sqlite3 *db, const char *instance, json_t **out, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  json_t *ifaces;

  if (cl_net_schema (db, err) < 0
      || cl_db_prepare (
             db, "SELECT " ATT_COLUMNS " FROM net_attachments WHERE instance = ? ORDER BY id", &st,
             err)
             < 0)
    return -1;
  sqlite3_bind_text (st, 1, instance, -1, SQLITE_STATIC);
  ifaces = json_array ();
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      struct att_row a;
      struct net_row n;
      struct cl_net_attachment out_a;
      cl_net_att_from_stmt (st, &a);
      if (cl_net_by_id (db, a.network_id, &n, NULL) < 0)
        continue;
      fill_out (&n, &a, &out_a);
      json_array_append_new (
          ifaces, json_pack ("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:o}", "network",
                             out_a.network, "kind", a.kind, "ifname", out_a.ifname, "host_ifname",
                             out_a.host_ifname, "address", out_a.address, "prefix_len",
                             out_a.prefix_len, "gateway", out_a.gateway, "mac", out_a.mac,
                             "port_forwards", cl_net_forwards_json (db, a.id)));
    }
  *out = json_pack ("{s:s, s:o}", "instance", instance, "interfaces", ifaces);
  return 0;
}
