/* SPDX-License-Identifier: Apache-2.0 */
/* Networks: create (bridge, gateway, nftables table, dnsmasq), delete,
   the default network, reports. */
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
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
write_ip_forward (cl_error_t *err)
{
  const char *path = "/proc/sys/net/ipv4/ip_forward";
  cleanup_free char *cur = NULL;
  if (cl_read_file (path, &cur, NULL, NULL) == 0 && cur[0] == '1')
    return 0;
  return cl_write_file (path, "1\n", 2, 0, err);
}

/* Removes every kernel object and file of a network; best effort, as it
   also undoes half-made networks. */
void
cl_net_teardown (struct net_ctx *c, const struct net_row *n)
{
  cleanup_free char *dir = cl_net_dir (c, n->name);
  cl_error_t err = NULL;

  cl_net_dnsmasq_stop (dir);
  cl_net_crash_point ("teardown:dnsmasq");
  if (cl_net_nft_network_remove (c->tag, n->name, &err) < 0)
    cl_warn ("network %s: %s", n->name, err->msg);
  cl_error_release (&err);
  cl_net_crash_point ("teardown:nft");
  if (n->l3[0] && cl_net_nl_link_del (c->nl, n->l3, &err) < 0)
    cl_warn ("network %s: %s", n->name, err->msg);
  cl_error_release (&err);
  if (n->vlan)
    {
      cleanup_free char *trunk = cl_net_trunk_name (c);
      int idx = cl_net_nl_link_index (c->nl, trunk, NULL);
      cleanup_stmt sqlite3_stmt *st = NULL;
      int others = 0;
      if (idx > 0)
        cl_net_nl_bridge_vlan (c->nl, idx, n->vlan, 0, 1, 1, NULL);
      if (cl_db_prepare (c->db, "SELECT count(*) FROM networks WHERE vlan > 0 AND id != ?", &st,
                         NULL)
          == 0)
        {
          sqlite3_bind_int64 (st, 1, n->id);
          if (sqlite3_step (st) == SQLITE_ROW)
            others = sqlite3_column_int (st, 0);
        }
      if (others == 0)
        cl_net_nl_link_del (c->nl, trunk, NULL);
    }
  cl_rm_rf (dir, NULL);
}

/* The VLAN-filtering bridge shared by every --vlan network of this root. */
static int
ensure_trunk (struct net_ctx *c, cl_error_t *err)
{
  cleanup_free char *trunk = cl_net_trunk_name (c);
  int idx = cl_net_nl_link_index (c->nl, trunk, err);
  if (idx != 0)
    return idx;
  /* Its own MTU is the largest: each VLAN's ports and interface carry the
     network's. */
  if (cl_net_nl_bridge_add (c->nl, trunk, 1, CL_NET_MTU_MAX, err) < 0)
    return -1;
  return cl_net_nl_link_index (c->nl, trunk, err);
}

static int
net_build (struct net_ctx *c, const struct net_row *n, cl_error_t *err)
{
  cleanup_free char *dir = cl_net_dir (c, n->name);
  int idx;

  if (n->vlan == 0)
    {
      if (cl_net_nl_bridge_add (c->nl, n->l3, 0, n->mtu, err) < 0)
        return -1;
    }
  else
    {
      int trunk = ensure_trunk (c, err);
      if (trunk < 0)
        return -1;
      /* The bridge itself carries the VLAN tagged up to the VLAN
         interface that holds the gateway. */
      if (cl_net_nl_bridge_vlan (c->nl, trunk, n->vlan, 0, 1, 0, err) < 0
          || cl_net_nl_vlan_add (c->nl, n->l3, trunk, n->vlan, n->mtu, err) < 0)
        return -1;
    }
  idx = cl_net_nl_link_index (c->nl, n->l3, err);
  if (idx <= 0)
    return idx < 0 ? -1 : cl_error_make (err, 0, "link `%s` vanished", n->l3);
  if (cl_net_nl_addr_add (c->nl, idx, cl_net_ipam_gateway (n->subnet), n->prefix, err) < 0)
    return -1;
  cl_net_crash_point ("create:bridge");
  if (n->mode != CL_NET_ISOLATED && write_ip_forward (err) < 0)
    return -1;
  if (cl_net_nft_network_add (n, c->tag, err) < 0)
    return -1;
  cl_net_crash_point ("create:nft");
  if (cl_mkdir_p (dir, 0700, err) < 0 || cl_net_dnsmasq_start (dir, n, err) < 0)
    return -1;
  cl_net_crash_point ("create:dnsmasq");
  return 0;
}

/* Does the subnet overlap an IPv4 address of this namespace (another
   state root's bridge, a host interface)?  Loopback aside.  link (if not
   NULL, IFNAMSIZ bytes) gets the interface's name. */
static int
used_by_host (uint32_t net, int prefix, char *link)
{
  struct ifaddrs *ifs, *i;
  int used = 0;
  if (getifaddrs (&ifs) < 0)
    return 0;
  for (i = ifs; i && !used; i = i->ifa_next)
    {
      uint32_t a, m;
      int len = 0;
      if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET || i->ifa_netmask == NULL)
        continue;
      a = ntohl (((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
      m = ntohl (((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
      if ((a >> 24) == 127)
        continue;
      while (len < 32 && (m & (0x80000000u >> len)))
        len++;
      used = cl_net_ipam_overlap (net, prefix, a & m, len);
      if (used && link)
        snprintf (link, 16, "%s", i->ifa_name);
    }
  freeifaddrs (ifs);
  return used;
}

/* Picks 10.87.N.0/24, the first N free in the database and in the
   namespace (from first_third: 0 is kept for `default`). */
static int
pick_subnet (sqlite3 *db, uint32_t first_third, uint32_t *net, int *prefix, cl_error_t *err)
{
  for (uint32_t third = first_third; third < 256; third++)
    {
      cleanup_stmt sqlite3_stmt *st = NULL;
      uint32_t cand = (10u << 24) | (87u << 16) | (third << 8);
      int clash = 0;
      if (cl_db_prepare (db, "SELECT subnet, prefix FROM networks", &st, err) < 0)
        return -1;
      while (!clash && sqlite3_step (st) == SQLITE_ROW)
        clash = cl_net_ipam_overlap (cand, 24, (uint32_t)sqlite3_column_int64 (st, 0),
                                     sqlite3_column_int (st, 1));
      clash = clash || used_by_host (cand, 24, NULL);
      if (!clash)
        {
          *net = cand;
          *prefix = 24;
          return 0;
        }
    }
  return cl_error_raise (err, CL_ERR_CONFLICT, "--subnet: no free 10.87.N.0/24 left, give one");
}

static int
net_create_locked (struct net_ctx *c, const struct cl_net_config *cfg, cl_error_t *err)
{
  struct net_row n = { 0 };
  cleanup_stmt sqlite3_stmt *st = NULL;
  int r;

  if (cl_validate_name (cfg->name, "network name", err) < 0)
    return -1;
  if (strlen (cfg->name) > 64)
    return cl_error_raise (err, CL_ERR_INVALID,
                           "invalid network name `%s`: longer than 64 characters", cfg->name);
  if (cfg->vlan < 0 || cfg->vlan > 4094)
    return cl_error_raise (err, CL_ERR_INVALID, "--vlan: VLAN id must be 1-4094, got %d",
                           cfg->vlan);
  if (cfg->mtu != 0 && (cfg->mtu < CL_NET_MTU_MIN || cfg->mtu > CL_NET_MTU_MAX))
    return cl_error_raise (err, CL_ERR_INVALID, "--mtu: must be %d-%d, got %d", CL_NET_MTU_MIN,
                           CL_NET_MTU_MAX, cfg->mtu);
  snprintf (n.name, sizeof n.name, "%s", cfg->name);
  n.mode = cfg->mode;
  n.vlan = cfg->vlan;
  n.mtu = cfg->mtu ? cfg->mtu : 1500;
  r = cl_net_find (c->db, cfg->name, &n, err);
  if (r != 0)
    return r < 0 ? -1
                 : cl_error_raise (err, CL_ERR_CONFLICT, "network `%s` already exists", cfg->name);
  if (cfg->subnet)
    {
      if (cl_net_ipam_parse_cidr (cfg->subnet, "--subnet", &n.subnet, &n.prefix, err) < 0)
        return -1;
    }
  else if (pick_subnet (c->db, strcmp (cfg->name, CL_NET_DEFAULT) == 0 ? 0 : 1, &n.subnet,
                        &n.prefix, err)
           < 0)
    return -1;
  if (cl_db_prepare (c->db, "SELECT name, subnet, prefix, vlan FROM networks", &st, err) < 0)
    return -1;
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      char a[16];
      if (cl_net_ipam_overlap (n.subnet, n.prefix, (uint32_t)sqlite3_column_int64 (st, 1),
                               sqlite3_column_int (st, 2)))
        {
          cl_net_ipam_format ((uint32_t)sqlite3_column_int64 (st, 1), a);
          return cl_error_raise (err, CL_ERR_CONFLICT, "--subnet: %s overlaps network `%s` (%s/%d)",
                                 cfg->subnet ? cfg->subnet : "", sqlite3_column_text (st, 0), a,
                                 sqlite3_column_int (st, 2));
        }
      if (n.vlan && sqlite3_column_int (st, 3) == n.vlan)
        return cl_error_raise (err, CL_ERR_CONFLICT,
                               "--vlan: VLAN %d is already used by network `%s`", n.vlan,
                               sqlite3_column_text (st, 0));
    }
  sqlite3_finalize (steal_pointer (&st));
  {
    /* another state root's bridge, a host interface */
    char link[16];
    if (cfg->subnet && used_by_host (n.subnet, n.prefix, link))
      return cl_error_raise (err, CL_ERR_CONFLICT, "--subnet: %s overlaps an address of link `%s`",
                             cfg->subnet, link);
  }

  /* The row comes first, marked `creating`: a crash from here on leaves a
     row that the next command's clean-up tears down. */
  if (cl_db_prepare (c->db,
                     "INSERT INTO networks (name, subnet, prefix, mode, vlan, mtu, state)"
                     " VALUES (?, ?, ?, ?, ?, ?, 'creating')",
                     &st, err)
      < 0)
    return -1;
  sqlite3_bind_text (st, 1, n.name, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, n.subnet);
  sqlite3_bind_int (st, 3, n.prefix);
  sqlite3_bind_text (st, 4, cl_net_mode_name (n.mode), -1, SQLITE_STATIC);
  sqlite3_bind_int (st, 5, n.vlan);
  sqlite3_bind_int (st, 6, n.mtu);
  if (cl_db_step_done (c->db, st, err) < 0)
    return -1;
  n.id = sqlite3_last_insert_rowid (c->db);
  cl_net_crash_point ("create:row");
  snprintf (n.l3, sizeof n.l3, "clb-%s-%lld", c->tag, (long long)n.id);
  if (cl_net_exec_bound (c->db, "UPDATE networks SET l3 = ?2 WHERE id = ?1", n.id, n.l3, err) < 0)
    return -1;
  cl_net_crash_point ("create:named");

  if (net_build (c, &n, err) < 0)
    {
      cl_net_teardown (c, &n);
      cl_net_exec_bound (c->db, "DELETE FROM networks WHERE id = ?", n.id, NULL, NULL);
      return cl_error_wrap (err, "network `%s`", n.name);
    }
  return cl_net_exec_bound (c->db, "UPDATE networks SET state = 'ready' WHERE id = ?", n.id, NULL,
                            err);
}

int
cl_net_create (sqlite3 *db, const struct cl_net_config *cfg, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c = { .lock_fd = -1 };
  if (cl_net_ctx_open (db, &c, err) < 0)
    return -1;
  return net_create_locked (&c, cfg, err);
}

int
cl_net_ensure_default_locked (struct net_ctx *c, cl_error_t *err)
{
  struct net_row n;
  struct cl_net_config cfg = { .name = CL_NET_DEFAULT, .mode = CL_NET_NAT };
  int r = cl_net_find (c->db, CL_NET_DEFAULT, &n, err);
  if (r != 0)
    return r < 0 ? -1 : 0;
  /* 10.87.0.0/24, or the first free 10.87.N.0/24 if a user took it. */
  return net_create_locked (c, &cfg, err);
}

int
cl_net_ensure_default (sqlite3 *db, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c = { .lock_fd = -1 };
  if (cl_net_ctx_open (db, &c, err) < 0)
    return -1;
  return cl_net_ensure_default_locked (&c, err);
}

int
cl_net_delete (sqlite3 *db, const char *name, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c = { .lock_fd = -1 };
  cleanup_stmt sqlite3_stmt *st = NULL;
  struct net_row n;

  if (cl_net_ctx_open (db, &c, err) < 0 || cl_net_load (db, name, &n, err) < 0)
    return -1;
  if (cl_db_prepare (
          db,
          "SELECT count(*), group_concat(instance, ', ') FROM net_attachments WHERE network_id = ?",
          &st, err)
      < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, n.id);
  if (sqlite3_step (st) == SQLITE_ROW && sqlite3_column_int (st, 0) > 0)
    return cl_error_raise (err, CL_ERR_CONFLICT, "network `%s` is in use by %s", name,
                           sqlite3_column_text (st, 1));
  if (cl_net_exec_bound (db, "UPDATE networks SET state = 'deleting' WHERE id = ?", n.id, NULL, err)
      < 0)
    return -1;
  cl_net_teardown (&c, &n);
  return cl_net_exec_bound (db, "DELETE FROM networks WHERE id = ?", n.id, NULL, err);
}

static void
add_attachment_json (const struct att_row *a, const char *ip, void *data)
{
  json_array_append_new (data, json_pack ("{s:s, s:s, s:s, s:s, s:s}", "instance", a->instance,
                                          "kind", a->kind, "address", ip, "mac", a->mac,
                                          "host_ifname", a->host_ifname));
}

static json_t *
net_json (sqlite3 *db, const struct net_row *n, int with_attachments)
{
  char subnet[24], gw[16];
  json_t *o, *atts = json_array ();

  cl_net_ipam_format (n->subnet, subnet);
  snprintf (subnet + strlen (subnet), sizeof subnet - strlen (subnet), "/%d", n->prefix);
  cl_net_ipam_format (cl_net_ipam_gateway (n->subnet), gw);
  o = json_pack ("{s:s, s:s, s:s, s:s, s:s}", "name", n->name, "subnet", subnet, "gateway", gw,
                 "mode", cl_net_mode_name (n->mode), "bridge", n->l3);
  json_object_set_new (o, "vlan", n->vlan ? json_integer (n->vlan) : json_null ());
  json_object_set_new (o, "mtu", json_integer (n->mtu));
  cl_net_foreach_attachment (db, n->id, add_attachment_json, atts, NULL);
  json_object_set_new (o, "instances", json_integer ((json_int_t)json_array_size (atts)));
  if (with_attachments)
    json_object_set_new (o, "attachments", atts);
  else
    json_decref (atts);
  return o;
}

int
cl_net_list (sqlite3 *db, json_t **out, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  json_t *arr;

  if (cl_net_schema (db, err) < 0
      || cl_db_prepare (db,
                        "SELECT " NET_COLUMNS " FROM networks WHERE state = 'ready' ORDER BY name",
                        &st, err)
             < 0)
    return -1;
  arr = json_array ();
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      struct net_row n;
      cl_net_row_from_stmt (st, &n);
      json_array_append_new (arr, net_json (db, &n, 0));
    }
  *out = arr;
  return 0;
}

int
cl_net_show (sqlite3 *db, const char *name, json_t **out, cl_error_t *err)
{
  struct net_row n;
  json_t *o, *atts;
  size_t i;
  json_t *a;

  if (cl_net_schema (db, err) < 0 || cl_net_load (db, name, &n, err) < 0)
    return -1;
  o = net_json (db, &n, 1);
  atts = json_object_get (o, "attachments");
  json_array_foreach (atts, i, a)
  {
    cleanup_stmt sqlite3_stmt *st = NULL;
    if (cl_db_prepare (db, "SELECT id FROM net_attachments WHERE network_id = ? AND instance = ?",
                       &st, NULL)
        == 0)
      {
        sqlite3_bind_int64 (st, 1, n.id);
        sqlite3_bind_text (st, 2, json_string_value (json_object_get (a, "instance")), -1,
                           SQLITE_STATIC);
        if (sqlite3_step (st) == SQLITE_ROW)
          json_object_set_new (a, "port_forwards",
                               cl_net_forwards_json (db, sqlite3_column_int64 (st, 0)));
      }
  }
  *out = o;
  return 0;
}
