/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the files of src/net (not for other modules). */
#ifndef CLOISON_NET_INTERNAL_H
#define CLOISON_NET_INTERNAL_H

#include "net/net.h"
#include "net/netlink.h"

#include <jansson.h>
#include <sqlite3.h>

#include <stdint.h>

/* One row of the networks table. */
struct net_row
{
  int64_t id;
  char name[129];
  uint32_t subnet;
  int prefix;
  enum cl_net_mode mode;
  int vlan;
  int mtu;
  char l3[16]; /* the interface holding the gateway: bridge or VLAN interface */
  char state[16];
};

const char *cl_net_mode_name (enum cl_net_mode mode);

/* A session: the lock, the root, the tag, one netlink socket. */
struct net_ctx
{
  sqlite3 *db;
  char *root;
  char tag[5];
  int lock_fd;
  struct nl_sock *nl;
};

void cl_net_ctx_release (struct net_ctx *c);
#define cleanup_ctx __attribute__ ((cleanup (cl_net_ctx_release)))

/* Takes ROOT/net.lock, makes the tables, opens netlink. */
int cl_net_ctx_open (sqlite3 *db, struct net_ctx *c, cl_error_t *err);
/* The tables (and their migrations), without the lock. */
int cl_net_schema (sqlite3 *db, cl_error_t *err);
char *cl_net_dir (struct net_ctx *c, const char *name);
char *cl_net_trunk_name (struct net_ctx *c);

#define NET_COLUMNS "id, name, subnet, prefix, mode, vlan, l3, state, mtu"
void cl_net_row_from_stmt (sqlite3_stmt *st, struct net_row *n);
/* 1 found, 0 absent, -1 error. */
int cl_net_find (sqlite3 *db, const char *name, struct net_row *n, cl_error_t *err);
/* A ready network, or "network `X` does not exist". */
int cl_net_load (sqlite3 *db, const char *name, struct net_row *n, cl_error_t *err);
int cl_net_by_id (sqlite3 *db, int64_t id, struct net_row *n, cl_error_t *err);
/* Runs SQL binding ?1 = a and, if b != NULL, ?2 = b. */
int cl_net_exec_bound (sqlite3 *db, const char *sql, int64_t a, const char *b, cl_error_t *err);

/* One row of net_attachments. */
struct att_row
{
  int64_t id, network_id;
  char instance[129], kind[16], ifname[16], host_ifname[16], mac[18];
  uint32_t address;
  pid_t pid;
};
#define ATT_COLUMNS "id, network_id, instance, kind, ifname, host_ifname, address, mac, pid"
void cl_net_att_from_stmt (sqlite3_stmt *st, struct att_row *a);
/* Calls fn for each attachment of the network, by address (ip: dotted). */
int cl_net_foreach_attachment (sqlite3 *db, int64_t network_id,
                               void (*fn) (const struct att_row *a, const char *ip, void *data),
                               void *data, cl_error_t *err);
/* Rewrites the hosts (and with dhcp_too the dhcp-hosts) file of the
   network and makes its dnsmasq re-read them. */
int cl_net_publish_hosts (struct net_ctx *c, const struct net_row *n, int dhcp_too,
                          cl_error_t *err);
json_t *cl_net_forwards_json (sqlite3 *db, int64_t attachment_id);

/* Fault injection (-Dfault_injection=true, the test build only): SIGKILLs
   the process at STEP when $CLOISON_NET_TEST_CRASH_AT names it, to check
   crash recovery at each step.  Nothing in a default build. */
#ifdef CLOISON_FAULT_INJECTION
#define cl_net_crash_point(step) cl_crash_point ("CLOISON_NET_TEST_CRASH_AT", step)
#else
#define cl_net_crash_point(step) ((void)0)
#endif

/* network.c */
void cl_net_teardown (struct net_ctx *c, const struct net_row *n);
int cl_net_ensure_default_locked (struct net_ctx *c, cl_error_t *err);

/* attach.c */
int cl_net_detach_one (struct net_ctx *c, const struct att_row *a, struct net_row *n,
                       cl_error_t *err);
int cl_net_detach_where (struct net_ctx *c, const char *where, const char *text_arg,
                         int64_t int_arg, cl_error_t *err);

#endif
