/* SPDX-License-Identifier: Apache-2.0 */
/* Port forwards: one element per forward in the network's nftables map. */
#include "common/cleanup.h"
#include "common/db.h"
#include "common/log.h"
#include "common/util.h"
#include "net/dnsmasq.h"
#include "net/net_internal.h"
#include "net/ipam.h"
#include "net/netlink.h"
#include "net/nft.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
cl_net_parse_port_forward (const char *spec, uint16_t *host_port, uint16_t *inst_port,
                           const char **proto, cl_error_t *err)
{
  unsigned long hp, ip;
  char *end;
  const char *colon = strchr (spec, ':');

  if (colon == NULL)
    return cl_error_raise (err, CL_ERR_INVALID,
                           "port forward: expected HOSTPORT:PORT[/tcp|udp], got `%s`", spec);
  errno = 0;
  hp = strtoul (spec, &end, 10);
  if (end != colon || spec == colon || hp == 0 || hp > 65535)
    return cl_error_raise (err, CL_ERR_INVALID, "port forward `%s`: host port must be 1-65535",
                           spec);
  ip = strtoul (colon + 1, &end, 10);
  if (end == colon + 1 || ip == 0 || ip > 65535)
    return cl_error_raise (err, CL_ERR_INVALID, "port forward `%s`: instance port must be 1-65535",
                           spec);
  if (*end == '\0' || strcmp (end, "/tcp") == 0)
    *proto = "tcp";
  else if (strcmp (end, "/udp") == 0)
    *proto = "udp";
  else
    return cl_error_raise (err, CL_ERR_INVALID, "port forward `%s`: protocol must be tcp or udp",
                           spec);
  *host_port = (uint16_t)hp;
  *inst_port = (uint16_t)ip;
  return 0;
}

static int
check_proto (const char *proto, cl_error_t *err)
{
  if (proto == NULL || (strcmp (proto, "tcp") != 0 && strcmp (proto, "udp") != 0))
    return cl_error_raise (err, CL_ERR_INVALID,
                           "port forward: protocol must be tcp or udp, got `%s`",
                           proto ? proto : "");
  return 0;
}

int
cl_net_port_forward_add (sqlite3 *db, const char *net_name, const char *instance,
                         uint16_t host_port, uint16_t inst_port, const char *proto, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c = { .lock_fd = -1 };
  cleanup_stmt sqlite3_stmt *st = NULL;
  struct att_row a;
  struct net_row n;
  int64_t fwd_id;

  if (check_proto (proto, err) < 0)
    return -1;
  if (host_port == 0 || inst_port == 0)
    return cl_error_raise (err, CL_ERR_INVALID, "port forward: ports must be 1-65535");
  if (cl_net_ctx_open (db, &c, err) < 0)
    return -1;
  if (cl_db_prepare (db,
                     "SELECT a.id, a.network_id, a.instance, a.kind, a.ifname, a.host_ifname, "
                     "a.address, a.mac, a.pid"
                     " FROM net_attachments a JOIN networks n ON n.id = a.network_id"
                     " WHERE a.instance = ?1 AND (?2 IS NULL OR n.name = ?2) ORDER BY a.id LIMIT 1",
                     &st, err)
      < 0)
    return -1;
  sqlite3_bind_text (st, 1, instance, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, net_name, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW)
    return net_name
               ? cl_error_raise (err, CL_ERR_CONFLICT,
                                 "instance `%s` is not attached to network `%s`", instance,
                                 net_name)
               : cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` has no network", instance);
  cl_net_att_from_stmt (st, &a);
  sqlite3_finalize (steal_pointer (&st));
  if (cl_net_by_id (db, a.network_id, &n, err) < 0)
    return -1;
  if (n.mode == CL_NET_ISOLATED)
    return cl_error_raise (err, CL_ERR_CONFLICT, "port forward %u/%s: network `%s` is isolated",
                           host_port, proto, n.name);
  if (cl_db_prepare (
          db,
          "SELECT a.instance FROM net_forwards f JOIN net_attachments a ON a.id = f.attachment_id"
          " WHERE f.proto = ? AND f.host_port = ?",
          &st, err)
      < 0)
    return -1;
  sqlite3_bind_text (st, 1, proto, -1, SQLITE_STATIC);
  sqlite3_bind_int (st, 2, host_port);
  if (sqlite3_step (st) == SQLITE_ROW)
    return cl_error_raise (err, CL_ERR_CONFLICT,
                           "port forward: host port %u/%s is already forwarded to `%s`", host_port,
                           proto, sqlite3_column_text (st, 0));
  sqlite3_finalize (steal_pointer (&st));
  {
    /* another state root of this namespace */
    cleanup_free char *table = NULL;
    int r = cl_net_nft_port_mapped_elsewhere (c.tag, proto, host_port, &table, err);
    if (r < 0)
      return -1;
    if (r > 0)
      return cl_error_make (err, 0,
                            "port forward: host port %u/%s is already forwarded by nftables "
                            "table `%s` (another state root)",
                            host_port, proto, table);
  }
  if (cl_db_prepare (db,
                     "INSERT INTO net_forwards (attachment_id, proto, host_port, inst_port) VALUES "
                     "(?, ?, ?, ?)",
                     &st, err)
      < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, a.id);
  sqlite3_bind_text (st, 2, proto, -1, SQLITE_STATIC);
  sqlite3_bind_int (st, 3, host_port);
  sqlite3_bind_int (st, 4, inst_port);
  if (cl_db_step_done (db, st, err) < 0)
    return -1;
  fwd_id = sqlite3_last_insert_rowid (db);
  if (cl_net_nft_forward_set (c.tag, n.name, proto, host_port, a.address, inst_port, 1, err) < 0)
    {
      cl_net_exec_bound (db, "DELETE FROM net_forwards WHERE id = ?", fwd_id, NULL, NULL);
      return cl_error_wrap (err, "port forward %u/%s", host_port, proto);
    }
  return 0;
}

int
cl_net_port_forward_remove (sqlite3 *db, const char *instance, uint16_t host_port,
                            const char *proto, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c = { .lock_fd = -1 };
  cleanup_stmt sqlite3_stmt *st = NULL;
  int64_t id;
  cleanup_free char *net = NULL;

  if (check_proto (proto, err) < 0 || cl_net_ctx_open (db, &c, err) < 0)
    return -1;
  if (cl_db_prepare (
          db,
          "SELECT f.id, n.name FROM net_forwards f JOIN net_attachments a ON a.id = f.attachment_id"
          " JOIN networks n ON n.id = a.network_id"
          " WHERE a.instance = ? AND f.proto = ? AND f.host_port = ?",
          &st, err)
      < 0)
    return -1;
  sqlite3_bind_text (st, 1, instance, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, proto, -1, SQLITE_STATIC);
  sqlite3_bind_int (st, 3, host_port);
  if (sqlite3_step (st) != SQLITE_ROW)
    return cl_error_raise (err, CL_ERR_NOT_FOUND,
                           "port forward: instance `%s` has no forward of host port %u/%s",
                           instance, host_port, proto);
  id = sqlite3_column_int64 (st, 0);
  net = cl_xstrdup ((const char *)sqlite3_column_text (st, 1));
  if (cl_net_nft_forward_set (c.tag, net, proto, host_port, 0, 0, 0, err) < 0)
    return -1;
  return cl_net_exec_bound (db, "DELETE FROM net_forwards WHERE id = ?", id, NULL, err);
}
