/* Networks and attachments: the state database is the source of truth and
   every kernel object is named after a row (clb-TAG-ID bridges, clv-TAG-ID
   veths, clt-TAG-ID taps, table ip cloison-NAME), where TAG is a random
   word fixed per state root, so that stale objects can be told apart from
   another root's. */
#include "net/net.h"
#include "common/cleanup.h"
#include "common/db.h"
#include "common/log.h"
#include "common/util.h"
#include "net/dnsmasq.h"
#include "net/internal.h"
#include "net/ipam.h"
#include "net/netlink.h"
#include "net/nft.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

static const char schema[]
    = "CREATE TABLE IF NOT EXISTS net_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS networks ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
      " subnet INTEGER NOT NULL, prefix INTEGER NOT NULL, mode TEXT NOT NULL,"
      " vlan INTEGER NOT NULL DEFAULT 0, mtu INTEGER NOT NULL DEFAULT 1500, l3 TEXT NOT NULL DEFAULT '',"
      " state TEXT NOT NULL, created INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
      "CREATE TABLE IF NOT EXISTS net_attachments ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " network_id INTEGER NOT NULL REFERENCES networks(id),"
      " instance TEXT NOT NULL, kind TEXT NOT NULL, ifname TEXT NOT NULL,"
      " host_ifname TEXT NOT NULL DEFAULT '', address INTEGER NOT NULL, mac TEXT NOT NULL DEFAULT '',"
      " pid INTEGER NOT NULL DEFAULT 0,"
      " UNIQUE (network_id, address), UNIQUE (network_id, instance));"
      "CREATE TABLE IF NOT EXISTS net_forwards ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " attachment_id INTEGER NOT NULL REFERENCES net_attachments(id) ON DELETE CASCADE,"
      " proto TEXT NOT NULL, host_port INTEGER NOT NULL, inst_port INTEGER NOT NULL,"
      " UNIQUE (proto, host_port));";

static const char *const mode_names[] = {
  [CL_NET_NAT] = "nat",
  [CL_NET_ROUTED] = "routed",
  [CL_NET_ISOLATED] = "isolated",
};

const char *
net_mode_name (enum cl_net_mode mode)
{
  return mode_names[mode];
}

static enum cl_net_mode
mode_from_name (const char *s)
{
  for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++)
    if (strcmp (s, mode_names[i]) == 0)
      return (enum cl_net_mode) i;
  return CL_NET_NAT;
}

/* A session: the lock, the root, the tag, one netlink socket. */
struct net_ctx
{
  sqlite3 *db;
  char *root;
  char tag[5];
  int lock_fd;
  struct nl_sock *nl;
};

static void
ctx_release (struct net_ctx *c)
{
  nl_close (c->nl);
  if (c->lock_fd >= 0)
    close (c->lock_fd); /* releases the flock */
  free (c->root);
}
#define cleanup_ctx __attribute__ ((cleanup (ctx_release)))

static int
load_tag (struct net_ctx *c, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  uint8_t rnd[2];

  if (cl_db_prepare (c->db, "SELECT value FROM net_meta WHERE key = 'tag'", &st, err) < 0)
    return -1;
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      snprintf (c->tag, sizeof c->tag, "%s", (const char *) sqlite3_column_text (st, 0));
      return 0;
    }
  if (getrandom (rnd, sizeof rnd, 0) != sizeof rnd)
    return cl_error_errno (err, "getrandom");
  snprintf (c->tag, sizeof c->tag, "%02x%02x", rnd[0], rnd[1]);
  sqlite3_finalize (steal_pointer (&st));
  if (cl_db_prepare (c->db, "INSERT INTO net_meta (key, value) VALUES ('tag', ?)", &st, err) < 0)
    return -1;
  sqlite3_bind_text (st, 1, c->tag, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_DONE)
    return cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (c->db));
  return 0;
}

/* Databases made before networks had an MTU. */
static int
migrate (sqlite3 *db, cl_error_t *err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (db, "SELECT mtu FROM networks LIMIT 0", -1, &st, NULL) == SQLITE_OK)
    {
      sqlite3_finalize (st);
      return 0;
    }
  return cl_db_exec (db, "ALTER TABLE networks ADD COLUMN mtu INTEGER NOT NULL DEFAULT 1500", err);
}

/* Serialises network changes across processes on one root (flock on
   ROOT/net.lock), creates the tables, opens netlink. */
static int
ctx_open (sqlite3 *db, struct net_ctx *c, cl_error_t *err)
{
  const char *file = sqlite3_db_filename (db, "main");
  cleanup_free char *copy = NULL, *lock = NULL;

  memset (c, 0, sizeof *c);
  c->db = db;
  c->lock_fd = -1;
  if (file == NULL || *file == '\0')
    return cl_error_make (err, 0, "state database: no file");
  copy = strdup (file);
  c->root = strdup (dirname (copy));
  lock = cl_strdup_printf ("%s/net.lock", c->root);
  c->lock_fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (c->lock_fd < 0)
    return cl_error_errno (err, "open `%s`", lock);
  if (flock (c->lock_fd, LOCK_EX) < 0)
    return cl_error_errno (err, "lock `%s`", lock);
  if (cl_db_exec (db, schema, err) < 0 || migrate (db, err) < 0 || load_tag (c, err) < 0)
    return -1;
  return nl_open (&c->nl, err);
}

static char *
net_dir (struct net_ctx *c, const char *name)
{
  return cl_strdup_printf ("%s/net/%s", c->root, name);
}

static char *
trunk_name (struct net_ctx *c)
{
  return cl_strdup_printf ("clq-%s", c->tag);
}

static void
row_from_stmt (sqlite3_stmt *st, struct net_row *n)
{
  memset (n, 0, sizeof *n);
  n->id = sqlite3_column_int64 (st, 0);
  snprintf (n->name, sizeof n->name, "%s", (const char *) sqlite3_column_text (st, 1));
  n->subnet = (uint32_t) sqlite3_column_int64 (st, 2);
  n->prefix = sqlite3_column_int (st, 3);
  n->mode = mode_from_name ((const char *) sqlite3_column_text (st, 4));
  n->vlan = sqlite3_column_int (st, 5);
  snprintf (n->l3, sizeof n->l3, "%s", (const char *) sqlite3_column_text (st, 6));
  snprintf (n->state, sizeof n->state, "%s", (const char *) sqlite3_column_text (st, 7));
  n->mtu = sqlite3_column_int (st, 8);
}

#define NET_COLUMNS "id, name, subnet, prefix, mode, vlan, l3, state, mtu"

/* 1 found, 0 absent, -1 error. */
static int
net_find (sqlite3 *db, const char *name, struct net_row *n, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (cl_db_prepare (db, "SELECT " NET_COLUMNS " FROM networks WHERE name = ?", &st, err) < 0)
    return -1;
  sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW)
    return 0;
  row_from_stmt (st, n);
  return 1;
}

static int
net_load (sqlite3 *db, const char *name, struct net_row *n, cl_error_t *err)
{
  int r = net_find (db, name, n, err);
  if (r < 0)
    return -1;
  if (r == 0 || strcmp (n->state, "ready") != 0)
    return cl_error_make (err, 0, "network `%s` does not exist", name);
  return 0;
}

static int
exec_bound (sqlite3 *db, const char *sql, int64_t a, const char *b, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (cl_db_prepare (db, sql, &st, err) < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, a);
  if (b)
    sqlite3_bind_text (st, 2, b, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_DONE)
    return cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (db));
  return 0;
}

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
static void
net_teardown (struct net_ctx *c, const struct net_row *n)
{
  cleanup_free char *dir = net_dir (c, n->name);
  cl_error_t err = NULL;

  dnsmasq_stop (dir);
  if (nft_network_remove (n->name, &err) < 0)
    cl_warn ("network %s: %s", n->name, err->msg);
  cl_error_release (&err);
  if (n->l3[0] && nl_link_del (c->nl, n->l3, &err) < 0)
    cl_warn ("network %s: %s", n->name, err->msg);
  cl_error_release (&err);
  if (n->vlan)
    {
      cleanup_free char *trunk = trunk_name (c);
      int idx = nl_link_index (c->nl, trunk, NULL);
      cleanup_stmt sqlite3_stmt *st = NULL;
      int others = 0;
      if (idx > 0)
        nl_bridge_vlan (c->nl, idx, n->vlan, 0, 1, 1, NULL);
      if (cl_db_prepare (c->db, "SELECT count(*) FROM networks WHERE vlan > 0 AND id != ?", &st,
                         NULL)
          == 0)
        {
          sqlite3_bind_int64 (st, 1, n->id);
          if (sqlite3_step (st) == SQLITE_ROW)
            others = sqlite3_column_int (st, 0);
        }
      if (others == 0)
        nl_link_del (c->nl, trunk, NULL);
    }
  cl_rm_rf (dir, NULL);
}

/* The VLAN-filtering bridge shared by every --vlan network of this root. */
static int
ensure_trunk (struct net_ctx *c, cl_error_t *err)
{
  cleanup_free char *trunk = trunk_name (c);
  int idx = nl_link_index (c->nl, trunk, err);
  if (idx != 0)
    return idx;
  /* Its own MTU is the largest: each VLAN's ports and interface carry the
     network's. */
  if (nl_bridge_add (c->nl, trunk, 1, CL_NET_MTU_MAX, err) < 0)
    return -1;
  return nl_link_index (c->nl, trunk, err);
}

static int
net_build (struct net_ctx *c, const struct net_row *n, cl_error_t *err)
{
  cleanup_free char *dir = net_dir (c, n->name);
  int idx;

  if (n->vlan == 0)
    {
      if (nl_bridge_add (c->nl, n->l3, 0, n->mtu, err) < 0)
        return -1;
    }
  else
    {
      int trunk = ensure_trunk (c, err);
      if (trunk < 0)
        return -1;
      /* The bridge itself carries the VLAN tagged up to the VLAN
         interface that holds the gateway. */
      if (nl_bridge_vlan (c->nl, trunk, n->vlan, 0, 1, 0, err) < 0
          || nl_vlan_add (c->nl, n->l3, trunk, n->vlan, n->mtu, err) < 0)
        return -1;
    }
  idx = nl_link_index (c->nl, n->l3, err);
  if (idx <= 0)
    return idx < 0 ? -1 : cl_error_make (err, 0, "link `%s` vanished", n->l3);
  if (nl_addr_add (c->nl, idx, ipam_gateway (n->subnet), n->prefix, err) < 0)
    return -1;
  if (n->mode != CL_NET_ISOLATED && write_ip_forward (err) < 0)
    return -1;
  if (nft_network_add (n, err) < 0)
    return -1;
  if (cl_mkdir_p (dir, 0700, err) < 0)
    return -1;
  return dnsmasq_start (dir, n, err);
}

/* Picks 10.87.N.0/24, the first N free (from first_third: 0 is kept for
   `default`). */
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
        clash = ipam_overlap (cand, 24, (uint32_t) sqlite3_column_int64 (st, 0),
                              sqlite3_column_int (st, 1));
      if (!clash)
        {
          *net = cand;
          *prefix = 24;
          return 0;
        }
    }
  return cl_error_make (err, 0, "--subnet: no free 10.87.N.0/24 left, give one");
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
    return cl_error_make (err, 0, "invalid network name `%s`: longer than 64 characters",
                          cfg->name);
  if (cfg->vlan < 0 || cfg->vlan > 4094)
    return cl_error_make (err, 0, "--vlan: VLAN id must be 1-4094, got %d", cfg->vlan);
  if (cfg->mtu != 0 && (cfg->mtu < CL_NET_MTU_MIN || cfg->mtu > CL_NET_MTU_MAX))
    return cl_error_make (err, 0, "--mtu: must be %d-%d, got %d", CL_NET_MTU_MIN, CL_NET_MTU_MAX,
                          cfg->mtu);
  snprintf (n.name, sizeof n.name, "%s", cfg->name);
  n.mode = cfg->mode;
  n.vlan = cfg->vlan;
  n.mtu = cfg->mtu ? cfg->mtu : 1500;
  r = net_find (c->db, cfg->name, &n, err);
  if (r != 0)
    return r < 0 ? -1 : cl_error_make (err, 0, "network `%s` already exists", cfg->name);
  if (cfg->subnet)
    {
      if (ipam_parse_cidr (cfg->subnet, "--subnet", &n.subnet, &n.prefix, err) < 0)
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
      if (ipam_overlap (n.subnet, n.prefix, (uint32_t) sqlite3_column_int64 (st, 1),
                        sqlite3_column_int (st, 2)))
        {
          ipam_format ((uint32_t) sqlite3_column_int64 (st, 1), a);
          return cl_error_make (err, 0, "--subnet: %s overlaps network `%s` (%s/%d)",
                                cfg->subnet ? cfg->subnet : "", sqlite3_column_text (st, 0), a,
                                sqlite3_column_int (st, 2));
        }
      if (n.vlan && sqlite3_column_int (st, 3) == n.vlan)
        return cl_error_make (err, 0, "--vlan: VLAN %d is already used by network `%s`", n.vlan,
                              sqlite3_column_text (st, 0));
    }
  sqlite3_finalize (steal_pointer (&st));

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
  sqlite3_bind_text (st, 4, net_mode_name (n.mode), -1, SQLITE_STATIC);
  sqlite3_bind_int (st, 5, n.vlan);
  sqlite3_bind_int (st, 6, n.mtu);
  if (sqlite3_step (st) != SQLITE_DONE)
    return cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (c->db));
  n.id = sqlite3_last_insert_rowid (c->db);
  snprintf (n.l3, sizeof n.l3, "clb-%s-%lld", c->tag, (long long) n.id);
  if (exec_bound (c->db, "UPDATE networks SET l3 = ?2 WHERE id = ?1", n.id, n.l3, err) < 0)
    return -1;

  if (net_build (c, &n, err) < 0)
    {
      net_teardown (c, &n);
      exec_bound (c->db, "DELETE FROM networks WHERE id = ?", n.id, NULL, NULL);
      return cl_error_wrap (err, "network `%s`", n.name);
    }
  return exec_bound (c->db, "UPDATE networks SET state = 'ready' WHERE id = ?", n.id, NULL, err);
}

int
cl_net_create (sqlite3 *db, const struct cl_net_config *cfg, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c;
  if (ctx_open (db, &c, err) < 0)
    return -1;
  return net_create_locked (&c, cfg, err);
}

static int
ensure_default_locked (struct net_ctx *c, cl_error_t *err)
{
  struct net_row n;
  struct cl_net_config cfg = { .name = CL_NET_DEFAULT, .mode = CL_NET_NAT };
  int r = net_find (c->db, CL_NET_DEFAULT, &n, err);
  if (r != 0)
    return r < 0 ? -1 : 0;
  /* 10.87.0.0/24, or the first free 10.87.N.0/24 if a user took it. */
  return net_create_locked (c, &cfg, err);
}

int
cl_net_ensure_default (sqlite3 *db, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c;
  if (ctx_open (db, &c, err) < 0)
    return -1;
  return ensure_default_locked (&c, err);
}

int
cl_net_delete (sqlite3 *db, const char *name, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c;
  cleanup_stmt sqlite3_stmt *st = NULL;
  struct net_row n;

  if (ctx_open (db, &c, err) < 0 || net_load (db, name, &n, err) < 0)
    return -1;
  if (cl_db_prepare (db, "SELECT count(*), group_concat(instance, ', ') FROM net_attachments WHERE network_id = ?",
                     &st, err)
      < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, n.id);
  if (sqlite3_step (st) == SQLITE_ROW && sqlite3_column_int (st, 0) > 0)
    return cl_error_make (err, 0, "network `%s` is in use by %s", name, sqlite3_column_text (st, 1));
  if (exec_bound (db, "UPDATE networks SET state = 'deleting' WHERE id = ?", n.id, NULL, err) < 0)
    return -1;
  net_teardown (&c, &n);
  return exec_bound (db, "DELETE FROM networks WHERE id = ?", n.id, NULL, err);
}

/* ---- attachments ---- */

struct att_row
{
  int64_t id, network_id;
  char instance[129], kind[16], ifname[16], host_ifname[16], mac[18];
  uint32_t address;
  pid_t pid;
};

#define ATT_COLUMNS "id, network_id, instance, kind, ifname, host_ifname, address, mac, pid"

static void
att_from_stmt (sqlite3_stmt *st, struct att_row *a)
{
  memset (a, 0, sizeof *a);
  a->id = sqlite3_column_int64 (st, 0);
  a->network_id = sqlite3_column_int64 (st, 1);
  snprintf (a->instance, sizeof a->instance, "%s", (const char *) sqlite3_column_text (st, 2));
  snprintf (a->kind, sizeof a->kind, "%s", (const char *) sqlite3_column_text (st, 3));
  snprintf (a->ifname, sizeof a->ifname, "%s", (const char *) sqlite3_column_text (st, 4));
  snprintf (a->host_ifname, sizeof a->host_ifname, "%s", (const char *) sqlite3_column_text (st, 5));
  a->address = (uint32_t) sqlite3_column_int64 (st, 6);
  snprintf (a->mac, sizeof a->mac, "%s", (const char *) sqlite3_column_text (st, 7));
  a->pid = sqlite3_column_int (st, 8);
}

static int
net_by_id (sqlite3 *db, int64_t id, struct net_row *n, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (cl_db_prepare (db, "SELECT " NET_COLUMNS " FROM networks WHERE id = ?", &st, err) < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, id);
  if (sqlite3_step (st) != SQLITE_ROW)
    return cl_error_make (err, 0, "network #%lld does not exist", (long long) id);
  row_from_stmt (st, n);
  return 0;
}

/* Overwrites in place, then trims: dnsmasq reads the file only on the
   SIGHUP that follows, under our lock, and ext4 flushes a file replaced by
   rename or truncated to zero at once (auto_da_alloc), which costs a
   millisecond per attach. */
static int
write_in_place (const char *path, const char *data, size_t len, cl_error_t *err)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return cl_error_errno (err, "open `%s`", path);
  if (cl_write_all (fd, data, len) < 0 || ftruncate (fd, (off_t) len) < 0)
    return cl_error_errno (err, "write `%s`", path);
  return 0;
}

/* Rewrites the network's DNS (hosts) and, with dhcp_too, DHCP (dhcp-hosts)
   files from the database and tells its dnsmasq. */
static int
publish_hosts (struct net_ctx *c, const struct net_row *n, int dhcp_too, cl_error_t *err)
{
  cleanup_free char *dir = net_dir (c, n->name), *hosts_path = NULL, *dhcp_path = NULL;
  cleanup_free char *hosts = NULL, *dhcp = NULL;
  size_t hosts_len = 0, dhcp_len = 0;
  cleanup_file FILE *hf = open_memstream (&hosts, &hosts_len);
  cleanup_file FILE *df = open_memstream (&dhcp, &dhcp_len);
  cleanup_stmt sqlite3_stmt *st = NULL;

  if (hf == NULL || df == NULL)
    return cl_error_errno (err, "open_memstream");
  if (cl_db_prepare (c->db, "SELECT " ATT_COLUMNS " FROM net_attachments WHERE network_id = ? ORDER BY address",
                     &st, err)
      < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, n->id);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      struct att_row a;
      char ip[16];
      att_from_stmt (st, &a);
      ipam_format (a.address, ip);
      fprintf (hf, "%s %s\n", ip, a.instance);
      if (strcmp (a.kind, "vm") == 0)
        fprintf (df, "%s,%s,%s\n", a.mac, ip, a.instance);
    }
  fclose (steal_pointer (&hf));
  fclose (steal_pointer (&df));
  hosts_path = cl_strdup_printf ("%s/hosts", dir);
  dhcp_path = cl_strdup_printf ("%s/dhcp-hosts", dir);
  if (write_in_place (hosts_path, hosts, hosts_len, err) < 0
      || (dhcp_too && write_in_place (dhcp_path, dhcp, dhcp_len, err) < 0))
    return -1;
  dnsmasq_reload (dir);
  return 0;
}

/* Reserves the next free address and inserts the attachment row with its
   host-side link name; fills `a`. */
static int
reserve (struct net_ctx *c, const struct net_row *n, const char *instance, const char *kind,
         const char *ifname, pid_t pid, struct att_row *a, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  cleanup_free uint32_t *used = NULL;
  size_t n_used = 0, cap = 0;

  if (cl_db_begin (c->db, err) < 0)
    return -1;
  if (cl_db_prepare (c->db, "SELECT instance FROM net_attachments WHERE network_id = ? AND instance = ?",
                     &st, err)
      < 0)
    goto fail;
  sqlite3_bind_int64 (st, 1, n->id);
  sqlite3_bind_text (st, 2, instance, -1, SQLITE_STATIC);
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      cl_error_make (err, 0, "instance `%s` is already attached to network `%s`", instance,
                     n->name);
      goto fail;
    }
  sqlite3_finalize (steal_pointer (&st));
  if (cl_db_prepare (c->db, "SELECT address FROM net_attachments WHERE network_id = ? ORDER BY address",
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
      used[n_used++] = (uint32_t) sqlite3_column_int64 (st, 0);
    }
  sqlite3_finalize (steal_pointer (&st));
  memset (a, 0, sizeof *a);
  a->address = ipam_next_free (n->subnet, n->prefix, used, n_used);
  if (a->address == 0)
    {
      char s[16];
      ipam_format (n->subnet, s);
      cl_error_make (err, 0, "network `%s`: no free address left in %s/%d", n->name, s, n->prefix);
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
  if (cl_db_prepare (c->db,
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
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (c->db));
      goto fail;
    }
  a->id = sqlite3_last_insert_rowid (c->db);
  snprintf (a->host_ifname, sizeof a->host_ifname, "cl%c-%s-%lld",
            strcmp (kind, "vm") == 0 ? 't' : 'v', c->tag, (long long) a->id);
  if (exec_bound (c->db, "UPDATE net_attachments SET host_ifname = ?2 WHERE id = ?1", a->id,
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
  ipam_format (a->address, out->address);
  out->prefix_len = n->prefix;
  ipam_format (ipam_gateway (n->subnet), out->gateway);
}

static int
parse_mac (const char *s, uint8_t mac[6])
{
  unsigned v[6];
  if (sscanf (s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
    return -1;
  for (int i = 0; i < 6; i++)
    mac[i] = (uint8_t) v[i];
  return 0;
}

/* The bridge a port of network n joins (the trunk for VLAN networks). */
static int
port_master (struct net_ctx *c, const struct net_row *n, cl_error_t *err)
{
  cleanup_free char *trunk = n->vlan ? trunk_name (c) : NULL;
  int idx = nl_link_index (c->nl, n->vlan ? trunk : n->l3, err);
  if (idx == 0)
    return cl_error_make (err, 0, "network `%s`: bridge `%s` is missing (run `cloison network list` to repair)",
                          n->name, n->vlan ? trunk : n->l3);
  return idx;
}

static int
port_vlan (struct net_ctx *c, const struct net_row *n, const char *port, cl_error_t *err)
{
  int idx;
  if (n->vlan == 0)
    return 0;
  idx = nl_link_index (c->nl, port, err);
  if (idx <= 0)
    return idx < 0 ? -1 : cl_error_make (err, 0, "link `%s` vanished", port);
  return nl_bridge_vlan (c->nl, idx, n->vlan, 1, 0, 0, err);
}

/* Inside the container: lo and the interface up, its address, and (for
   its first network only, as Docker does) the default route. */
static int
configure_inside (int nsfd, const char *ifname, const struct net_row *n, uint32_t addr,
                  int default_route, cl_error_t *err)
{
  struct nl_sock *inside = NULL;
  int idx, r = -1;

  if (nl_open_in_netns (nsfd, &inside, err) < 0)
    return -1;
  idx = nl_link_index (inside, ifname, err);
  if (idx == 0)
    cl_error_make (err, 0, "link `%s` missing in the instance", ifname);
  else if (idx > 0 && nl_link_set (inside, 1, 1, 0, 0, err) == 0 /* lo is always ifindex 1 */
           && nl_link_set (inside, idx, 1, 0, 0, err) == 0 && nl_addr_add (inside, idx, addr, n->prefix, err) == 0
           && (!default_route || nl_route_add_default (inside, ipam_gateway (n->subnet), err) == 0))
    r = 0;
  nl_close (inside);
  return r;
}

static int
resolve_network (struct net_ctx *c, const char *net_name, struct net_row *n, cl_error_t *err)
{
  if (net_name == NULL)
    {
      if (ensure_default_locked (c, err) < 0)
        return -1;
      net_name = CL_NET_DEFAULT;
    }
  return net_load (c->db, net_name, n, err);
}

static void
unreserve (struct net_ctx *c, const struct att_row *a)
{
  if (a->host_ifname[0])
    nl_link_del (c->nl, a->host_ifname, NULL);
  exec_bound (c->db, "DELETE FROM net_attachments WHERE id = ?", a->id, NULL, NULL);
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

int
cl_net_attach_container (sqlite3 *db, const char *net_name, const char *instance, pid_t pid,
                         const char *ifname, struct cl_net_attachment *out, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c;
  cleanup_close int nsfd = -1;
  cleanup_free char *ns_path = cl_strdup_printf ("/proc/%d/ns/net", (int) pid);
  struct net_row n;
  struct att_row a;
  uint8_t mac[6];
  char auto_ifname[16];
  int master, first;

  if (ifname == NULL)
    {
      if (cl_db_exec (db, schema, err) < 0)
        return -1;
      default_ifname (db, instance, auto_ifname);
      ifname = auto_ifname;
    }
  if (cl_validate_name (instance, "instance name", err) < 0
      || cl_validate_name (ifname, "interface name", err) < 0)
    return -1;
  if (strlen (ifname) > 15)
    return cl_error_make (err, 0, "invalid interface name `%s`: longer than 15 characters", ifname);
  nsfd = open (ns_path, O_RDONLY | O_CLOEXEC);
  if (pid <= 0 || nsfd < 0)
    return cl_error_errno (err, "open `%s`", ns_path);
  if (ctx_open (db, &c, err) < 0 || resolve_network (&c, net_name, &n, err) < 0)
    return -1;
  first = count_attachments (db, instance) == 0;
  master = port_master (&c, &n, err);
  if (master < 0 || reserve (&c, &n, instance, "container", ifname, pid, &a, err) < 0)
    return -1;
  parse_mac (a.mac, mac);
  if (nl_veth_add (c.nl, a.host_ifname, master, ifname, mac, nsfd, n.mtu, err) < 0
      || port_vlan (&c, &n, a.host_ifname, err) < 0
      || configure_inside (nsfd, ifname, &n, a.address, first, err) < 0
      || publish_hosts (&c, &n, 0, err) < 0)
    {
      unreserve (&c, &a);
      publish_hosts (&c, &n, 0, NULL);
      return cl_error_wrap (err, "attach `%s` to network `%s`", instance, n.name);
    }
  fill_out (&n, &a, out);
  return 0;
}

int
cl_net_attach_vm (sqlite3 *db, const char *net_name, const char *instance, uid_t owner,
                  const char *ifname, struct cl_net_attachment *out, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c;
  struct net_row n;
  struct att_row a;
  char auto_ifname[16];
  int master, tap;

  if (ifname == NULL)
    {
      if (cl_db_exec (db, schema, err) < 0)
        return -1;
      default_ifname (db, instance, auto_ifname);
      ifname = auto_ifname;
    }
  if (cl_validate_name (instance, "instance name", err) < 0
      || cl_validate_name (ifname, "interface name", err) < 0)
    return -1;
  if (strlen (ifname) > 15)
    return cl_error_make (err, 0, "invalid interface name `%s`: longer than 15 characters", ifname);
  if (ctx_open (db, &c, err) < 0 || resolve_network (&c, net_name, &n, err) < 0)
    return -1;
  master = port_master (&c, &n, err);
  if (master < 0 || reserve (&c, &n, instance, "vm", ifname, 0, &a, err) < 0)
    return -1;
  if (nl_tap_create (a.host_ifname, owner, err) < 0
      || (tap = nl_link_index (c.nl, a.host_ifname, err)) <= 0
      || nl_link_set (c.nl, tap, 1, master, n.mtu, err) < 0 || port_vlan (&c, &n, a.host_ifname, err) < 0
      || publish_hosts (&c, &n, 1, err) < 0)
    {
      unreserve (&c, &a);
      publish_hosts (&c, &n, 1, NULL);
      return cl_error_wrap (err, "attach `%s` to network `%s`", instance, n.name);
    }
  fill_out (&n, &a, out);
  return 0;
}

/* Removes one attachment: its forwards, its link, its row. */
static int
detach_one (struct net_ctx *c, const struct att_row *a, struct net_row *n, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (net_by_id (c->db, a->network_id, n, err) < 0)
    return -1;
  if (cl_db_prepare (c->db, "SELECT proto, host_port FROM net_forwards WHERE attachment_id = ?", &st,
                     err)
      < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, a->id);
  while (sqlite3_step (st) == SQLITE_ROW)
    nft_forward_set (n->name, (const char *) sqlite3_column_text (st, 0),
                     (uint16_t) sqlite3_column_int (st, 1), 0, 0, 0, NULL);
  if (nl_link_del (c->nl, a->host_ifname, err) < 0)
    return -1;
  return exec_bound (c->db, "DELETE FROM net_attachments WHERE id = ?", a->id, NULL, err);
}

/* Detaches every attachment matching `where`, bound to text_arg (if not
   NULL) or int_arg. */
static int
detach_where (struct net_ctx *c, const char *where, const char *text_arg, int64_t int_arg,
              cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  cleanup_free char *sql = cl_strdup_printf ("SELECT " ATT_COLUMNS " FROM net_attachments WHERE %s", where);
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
      att_from_stmt (st, &rows[n_rows++]);
    }
  sqlite3_finalize (steal_pointer (&st));
  for (size_t i = 0; i < n_rows && r == 0; i++)
    {
      struct net_row n;
      r = detach_one (c, &rows[i], &n, err);
      if (r == 0)
        publish_hosts (c, &n, 1, NULL); /* DNS/DHCP only: never fails a detach */
    }
  free (rows);
  return r;
}

int
cl_net_detach (sqlite3 *db, const char *instance, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c;
  if (ctx_open (db, &c, err) < 0)
    return -1;
  return detach_where (&c, "instance = ?", instance, 0, err);
}

/* ---- port forwards ---- */

int
cl_net_parse_port_forward (const char *spec, uint16_t *host_port, uint16_t *inst_port,
                           const char **proto, cl_error_t *err)
{
  unsigned long hp, ip;
  char *end;
  const char *colon = strchr (spec, ':');

  if (colon == NULL)
    return cl_error_make (err, 0, "port forward: expected HOSTPORT:PORT[/tcp|udp], got `%s`", spec);
  errno = 0;
  hp = strtoul (spec, &end, 10);
  if (end != colon || spec == colon || hp == 0 || hp > 65535)
    return cl_error_make (err, 0, "port forward `%s`: host port must be 1-65535", spec);
  ip = strtoul (colon + 1, &end, 10);
  if (end == colon + 1 || ip == 0 || ip > 65535)
    return cl_error_make (err, 0, "port forward `%s`: instance port must be 1-65535", spec);
  if (*end == '\0' || strcmp (end, "/tcp") == 0)
    *proto = "tcp";
  else if (strcmp (end, "/udp") == 0)
    *proto = "udp";
  else
    return cl_error_make (err, 0, "port forward `%s`: protocol must be tcp or udp", spec);
  *host_port = (uint16_t) hp;
  *inst_port = (uint16_t) ip;
  return 0;
}

static int
check_proto (const char *proto, cl_error_t *err)
{
  if (proto == NULL || (strcmp (proto, "tcp") != 0 && strcmp (proto, "udp") != 0))
    return cl_error_make (err, 0, "port forward: protocol must be tcp or udp, got `%s`",
                          proto ? proto : "");
  return 0;
}

int
cl_net_port_forward_add (sqlite3 *db, const char *net_name, const char *instance,
                         uint16_t host_port, uint16_t inst_port, const char *proto,
                         cl_error_t *err)
{
  cleanup_ctx struct net_ctx c;
  cleanup_stmt sqlite3_stmt *st = NULL;
  struct att_row a;
  struct net_row n;
  int64_t fwd_id;

  if (check_proto (proto, err) < 0)
    return -1;
  if (host_port == 0 || inst_port == 0)
    return cl_error_make (err, 0, "port forward: ports must be 1-65535");
  if (ctx_open (db, &c, err) < 0)
    return -1;
  if (cl_db_prepare (db,
                     "SELECT a.id, a.network_id, a.instance, a.kind, a.ifname, a.host_ifname, a.address, a.mac, a.pid"
                     " FROM net_attachments a JOIN networks n ON n.id = a.network_id"
                     " WHERE a.instance = ?1 AND (?2 IS NULL OR n.name = ?2) ORDER BY a.id LIMIT 1",
                     &st, err)
      < 0)
    return -1;
  sqlite3_bind_text (st, 1, instance, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, net_name, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW)
    return net_name ? cl_error_make (err, 0, "instance `%s` is not attached to network `%s`",
                                     instance, net_name)
                    : cl_error_make (err, 0, "instance `%s` has no network", instance);
  att_from_stmt (st, &a);
  sqlite3_finalize (steal_pointer (&st));
  if (net_by_id (db, a.network_id, &n, err) < 0)
    return -1;
  if (n.mode == CL_NET_ISOLATED)
    return cl_error_make (err, 0, "port forward %u/%s: network `%s` is isolated", host_port, proto,
                          n.name);
  if (cl_db_prepare (db,
                     "SELECT a.instance FROM net_forwards f JOIN net_attachments a ON a.id = f.attachment_id"
                     " WHERE f.proto = ? AND f.host_port = ?",
                     &st, err)
      < 0)
    return -1;
  sqlite3_bind_text (st, 1, proto, -1, SQLITE_STATIC);
  sqlite3_bind_int (st, 2, host_port);
  if (sqlite3_step (st) == SQLITE_ROW)
    return cl_error_make (err, 0, "port forward: host port %u/%s is already forwarded to `%s`",
                          host_port, proto, sqlite3_column_text (st, 0));
  sqlite3_finalize (steal_pointer (&st));
  if (cl_db_prepare (db, "INSERT INTO net_forwards (attachment_id, proto, host_port, inst_port) VALUES (?, ?, ?, ?)",
                     &st, err)
      < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, a.id);
  sqlite3_bind_text (st, 2, proto, -1, SQLITE_STATIC);
  sqlite3_bind_int (st, 3, host_port);
  sqlite3_bind_int (st, 4, inst_port);
  if (sqlite3_step (st) != SQLITE_DONE)
    return cl_error_make (err, 0, "state database: %s", sqlite3_errmsg (db));
  fwd_id = sqlite3_last_insert_rowid (db);
  if (nft_forward_set (n.name, proto, host_port, a.address, inst_port, 1, err) < 0)
    {
      exec_bound (db, "DELETE FROM net_forwards WHERE id = ?", fwd_id, NULL, NULL);
      return cl_error_wrap (err, "port forward %u/%s", host_port, proto);
    }
  return 0;
}

int
cl_net_port_forward_remove (sqlite3 *db, const char *instance, uint16_t host_port,
                            const char *proto, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c;
  cleanup_stmt sqlite3_stmt *st = NULL;
  int64_t id;
  cleanup_free char *net = NULL;

  if (check_proto (proto, err) < 0 || ctx_open (db, &c, err) < 0)
    return -1;
  if (cl_db_prepare (db,
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
    return cl_error_make (err, 0, "port forward: instance `%s` has no forward of host port %u/%s",
                          instance, host_port, proto);
  id = sqlite3_column_int64 (st, 0);
  net = strdup ((const char *) sqlite3_column_text (st, 1));
  if (nft_forward_set (net, proto, host_port, 0, 0, 0, err) < 0)
    return -1;
  return exec_bound (db, "DELETE FROM net_forwards WHERE id = ?", id, NULL, err);
}

/* ---- crash recovery ---- */

struct stale_links
{
  struct net_ctx *c;
  char **names;
  size_t n;
};

static void
collect_ours (const char *name, void *data)
{
  struct stale_links *s = data;
  cleanup_free char *prefix = cl_strdup_printf ("-%s-", s->c->tag);
  /* clb-TAG-N, clv-TAG-N, clt-TAG-N: links this root made. */
  if (strncmp (name, "cl", 2) != 0 || strchr ("bvt", name[2]) == NULL || name[2] == '\0'
      || strncmp (name + 3, prefix, strlen (prefix)) != 0)
    return;
  s->names = realloc (s->names, (s->n + 1) * sizeof *s->names);
  if (s->names == NULL)
    abort ();
  s->names[s->n++] = strdup (name);
}

static int
known_link (sqlite3 *db, const char *name)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (cl_db_prepare (db,
                     "SELECT 1 FROM networks WHERE l3 = ?1 UNION ALL SELECT 1 FROM net_attachments WHERE host_ifname = ?1",
                     &st, NULL)
      < 0)
    return 1;
  sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
  return sqlite3_step (st) == SQLITE_ROW;
}

static int
is_live (const char *instance, const char *const *live, size_t n_live)
{
  for (size_t i = 0; i < n_live; i++)
    if (strcmp (live[i], instance) == 0)
      return 1;
  return 0;
}

int
cl_net_cleanup_stale (sqlite3 *db, const char *const *live_instances, size_t n_live,
                      cl_error_t *err)
{
  cleanup_ctx struct net_ctx c;
  cleanup_stmt sqlite3_stmt *st = NULL;
  struct stale_links links = { &c, NULL, 0 };
  cleanup_free char *netroot = NULL;
  cleanup_dir DIR *d = NULL;
  struct dirent *de;

  if (ctx_open (db, &c, err) < 0)
    return -1;

  /* Networks a crash left half made or half deleted. */
  for (;;)
    {
      struct net_row n;
      if (cl_db_prepare (db, "SELECT " NET_COLUMNS " FROM networks WHERE state != 'ready' LIMIT 1", &st,
                         err)
          < 0)
        return -1;
      if (sqlite3_step (st) != SQLITE_ROW)
        break;
      row_from_stmt (st, &n);
      sqlite3_finalize (steal_pointer (&st));
      cl_info ("network %s: removing what a crash left (%s)", n.name, n.state);
      detach_where (&c, "network_id = ?", NULL, n.id, NULL);
      net_teardown (&c, &n);
      if (exec_bound (db, "DELETE FROM networks WHERE id = ?", n.id, NULL, err) < 0)
        return -1;
    }
  sqlite3_finalize (steal_pointer (&st));

  /* Attachments whose instance is gone: a container's veth vanishes with
     its netns; the manager's list covers the rest. */
  {
    cleanup_stmt sqlite3_stmt *q = NULL;
    struct att_row *gone = NULL;
    size_t n_gone = 0;
    if (cl_db_prepare (db, "SELECT " ATT_COLUMNS " FROM net_attachments", &q, err) < 0)
      return -1;
    while (sqlite3_step (q) == SQLITE_ROW)
      {
        struct att_row a;
        int stale;
        att_from_stmt (q, &a);
        stale = live_instances && !is_live (a.instance, live_instances, n_live);
        if (!stale && strcmp (a.kind, "container") == 0)
          stale = nl_link_index (c.nl, a.host_ifname, NULL) == 0;
        if (!stale)
          continue;
        gone = realloc (gone, (n_gone + 1) * sizeof *gone);
        if (gone == NULL)
          abort ();
        gone[n_gone++] = a;
      }
    for (size_t i = 0; i < n_gone; i++)
      {
        struct net_row n;
        cl_info ("instance %s: freeing %s on a network it left", gone[i].instance,
                 gone[i].host_ifname);
        if (detach_one (&c, &gone[i], &n, NULL) == 0)
          publish_hosts (&c, &n, 1, NULL);
      }
    free (gone);
  }

  /* Links named by this root that no row knows. */
  if (nl_link_foreach (c.nl, collect_ours, &links, err) < 0)
    return -1;
  for (size_t i = 0; i < links.n; i++)
    {
      if (!known_link (db, links.names[i]))
        {
          cl_info ("removing stale link %s", links.names[i]);
          nl_link_del (c.nl, links.names[i], NULL);
        }
      free (links.names[i]);
    }
  free (links.names);

  /* The VLAN trunk outlives its last network only through a crash. */
  {
    cleanup_stmt sqlite3_stmt *q = NULL;
    cleanup_free char *trunk = trunk_name (&c);
    if (cl_db_prepare (db, "SELECT 1 FROM networks WHERE vlan > 0", &q, err) < 0)
      return -1;
    if (sqlite3_step (q) != SQLITE_ROW && nl_link_index (c.nl, trunk, NULL) > 0)
      nl_link_del (c.nl, trunk, NULL);
  }

  /* dnsmasq: restarted where it died, stopped where its network went. */
  netroot = cl_strdup_printf ("%s/net", c.root);
  d = opendir (netroot);
  while (d && (de = readdir (d)))
    {
      struct net_row n;
      cleanup_free char *dir = NULL;
      if (de->d_name[0] == '.')
        continue;
      dir = cl_strdup_printf ("%s/%s", netroot, de->d_name);
      if (net_find (db, de->d_name, &n, NULL) != 1)
        {
          dnsmasq_stop (dir);
          cl_rm_rf (dir, NULL);
        }
    }
  if (cl_db_prepare (db, "SELECT " NET_COLUMNS " FROM networks", &st, err) < 0)
    return -1;
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      struct net_row n;
      cleanup_free char *dir = NULL;
      row_from_stmt (st, &n);
      dir = net_dir (&c, n.name);
      if (dnsmasq_pid (dir) == 0 && nl_link_index (c.nl, n.l3, NULL) > 0)
        {
          cl_error_t e = NULL;
          cl_info ("network %s: restarting dnsmasq", n.name);
          if (cl_mkdir_p (dir, 0700, &e) < 0 || dnsmasq_start (dir, &n, &e) < 0)
            cl_warn ("network %s: %s", n.name, e->msg);
          cl_error_release (&e);
        }
    }
  return 0;
}

/* ---- reports ---- */

static json_t *
net_json (sqlite3 *db, const struct net_row *n, int with_attachments)
{
  char subnet[24], gw[16];
  json_t *o;
  cleanup_stmt sqlite3_stmt *st = NULL;
  int count = 0;

  ipam_format (n->subnet, subnet);
  snprintf (subnet + strlen (subnet), sizeof subnet - strlen (subnet), "/%d", n->prefix);
  ipam_format (ipam_gateway (n->subnet), gw);
  o = json_pack ("{s:s, s:s, s:s, s:s, s:s}", "name", n->name, "subnet", subnet, "gateway", gw,
                 "mode", net_mode_name (n->mode), "bridge", n->l3);
  json_object_set_new (o, "vlan", n->vlan ? json_integer (n->vlan) : json_null ());
  json_object_set_new (o, "mtu", json_integer (n->mtu));
  if (cl_db_prepare (db, "SELECT " ATT_COLUMNS " FROM net_attachments WHERE network_id = ? ORDER BY address",
                     &st, NULL)
      == 0)
    {
      json_t *atts = json_array ();
      sqlite3_bind_int64 (st, 1, n->id);
      while (sqlite3_step (st) == SQLITE_ROW)
        {
          struct att_row a;
          char ip[16];
          att_from_stmt (st, &a);
          ipam_format (a.address, ip);
          json_array_append_new (atts, json_pack ("{s:s, s:s, s:s, s:s, s:s}", "instance",
                                                  a.instance, "kind", a.kind, "address", ip,
                                                  "mac", a.mac, "host_ifname", a.host_ifname));
          count++;
        }
      if (with_attachments)
        json_object_set_new (o, "attachments", atts);
      else
        json_decref (atts);
    }
  json_object_set_new (o, "instances", json_integer (count));
  return o;
}

int
cl_net_list (sqlite3 *db, json_t **out, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  json_t *arr;

  if (cl_db_exec (db, schema, err) < 0
      || cl_db_prepare (db, "SELECT " NET_COLUMNS " FROM networks WHERE state = 'ready' ORDER BY name",
                        &st, err)
             < 0)
    return -1;
  arr = json_array ();
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      struct net_row n;
      row_from_stmt (st, &n);
      json_array_append_new (arr, net_json (db, &n, 0));
    }
  *out = arr;
  return 0;
}

static json_t *
forwards_json (sqlite3 *db, int64_t attachment_id)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  json_t *arr = json_array ();
  if (cl_db_prepare (db, "SELECT proto, host_port, inst_port FROM net_forwards WHERE attachment_id = ? ORDER BY host_port",
                     &st, NULL)
      < 0)
    return arr;
  sqlite3_bind_int64 (st, 1, attachment_id);
  while (sqlite3_step (st) == SQLITE_ROW)
    json_array_append_new (arr, json_pack ("{s:s, s:i, s:i}", "proto", sqlite3_column_text (st, 0),
                                           "host_port", sqlite3_column_int (st, 1), "port",
                                           sqlite3_column_int (st, 2)));
  return arr;
}

int
cl_net_show (sqlite3 *db, const char *name, json_t **out, cl_error_t *err)
{
  struct net_row n;
  json_t *o, *atts;
  size_t i;
  json_t *a;

  if (cl_db_exec (db, schema, err) < 0 || net_load (db, name, &n, err) < 0)
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
            json_object_set_new (a, "port_forwards", forwards_json (db, sqlite3_column_int64 (st, 0)));
        }
    }
  *out = o;
  return 0;
}

int
cl_net_info (sqlite3 *db, const char *instance, json_t **out, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  json_t *ifaces;

  if (cl_db_exec (db, schema, err) < 0
      || cl_db_prepare (db, "SELECT " ATT_COLUMNS " FROM net_attachments WHERE instance = ? ORDER BY id",
                        &st, err)
             < 0)
    return -1;
  sqlite3_bind_text (st, 1, instance, -1, SQLITE_STATIC);
  ifaces = json_array ();
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      struct att_row a;
      struct net_row n;
      struct cl_net_attachment out_a;
      att_from_stmt (st, &a);
      if (net_by_id (db, a.network_id, &n, NULL) < 0)
        continue;
      fill_out (&n, &a, &out_a);
      json_array_append_new (
          ifaces, json_pack ("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:o}", "network",
                             out_a.network, "kind", a.kind, "ifname", out_a.ifname, "host_ifname",
                             out_a.host_ifname, "address", out_a.address, "prefix_len",
                             out_a.prefix_len, "gateway", out_a.gateway, "mac", out_a.mac,
                             "port_forwards", forwards_json (db, a.id)));
    }
  *out = json_pack ("{s:s, s:o}", "instance", instance, "interfaces", ifaces);
  return 0;
}
