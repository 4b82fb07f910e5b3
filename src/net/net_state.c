/* SPDX-License-Identifier: Apache-2.0 */
/* The state of networks in the database: tables, rows, the per-root tag
   and lock, and the DNS/DHCP files published from the rows.  The database
   is the source of truth and every kernel object is named after a row
   (clb-TAG-ID bridges, clv-TAG-ID veths, clt-TAG-ID taps, table ip
   cloison-NAME), where TAG is a random word fixed per state root, so that
   stale objects can be told apart from another root's. */
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
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
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
      " vlan INTEGER NOT NULL DEFAULT 0, mtu INTEGER NOT NULL DEFAULT 1500, l3 TEXT NOT NULL "
      "DEFAULT '',"
      " state TEXT NOT NULL, created INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
      "CREATE TABLE IF NOT EXISTS net_attachments ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " network_id INTEGER NOT NULL REFERENCES networks(id),"
      " instance TEXT NOT NULL, kind TEXT NOT NULL, ifname TEXT NOT NULL,"
      " host_ifname TEXT NOT NULL DEFAULT '', address INTEGER NOT NULL, mac TEXT NOT NULL DEFAULT "
      "'',"
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
cl_net_mode_name (enum cl_net_mode mode)
{
  return mode_names[mode];
}

static enum cl_net_mode
mode_from_name (const char *s)
{
  for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++)
    if (strcmp (s, mode_names[i]) == 0)
      return (enum cl_net_mode)i;
  return CL_NET_NAT;
}

void
cl_net_ctx_release (struct net_ctx *c)
{
  cl_net_nl_close (c->nl);
  if (c->lock_fd >= 0)
    close (c->lock_fd); /* releases the flock */
  free (c->root);
}

struct tag_probe
{
  const char *tag;
  int used;
};

/* clb-TAG-N, clv-TAG-N, clt-TAG-N, clq-TAG: a link of root TAG. */
static void
check_tag_used (const char *name, void *data)
{
  struct tag_probe *p = data;
  size_t len = strlen (p->tag);
  if (strncmp (name, "cl", 2) == 0 && name[2] && strchr ("bvtq", name[2]) && name[3] == '-'
      && strncmp (name + 4, p->tag, len) == 0 && (name[4 + len] == '-' || name[4 + len] == '\0'))
    p->used = 1;
}

static int
load_tag (struct net_ctx *c, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  uint8_t rnd[2];

  if (cl_db_prepare (c->db, "SELECT value FROM net_meta WHERE key = 'tag'", &st, err) < 0)
    return -1;
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      snprintf (c->tag, sizeof c->tag, "%s", (const char *)sqlite3_column_text (st, 0));
      return 0;
    }
  /* Random, and not the tag of another root's links in this namespace. */
  for (int tries = 0;; tries++)
    {
      struct tag_probe p = { c->tag, 0 };
      if (getrandom (rnd, sizeof rnd, 0) != sizeof rnd)
        return cl_error_errno (err, "getrandom");
      snprintf (c->tag, sizeof c->tag, "%02x%02x", rnd[0], rnd[1]);
      if (cl_net_nl_link_foreach (c->nl, check_tag_used, &p, err) < 0)
        return -1;
      if (!p.used || tries == 64)
        break;
    }
  sqlite3_finalize (steal_pointer (&st));
  if (cl_db_prepare (c->db, "INSERT INTO net_meta (key, value) VALUES ('tag', ?)", &st, err) < 0)
    return -1;
  sqlite3_bind_text (st, 1, c->tag, -1, SQLITE_STATIC);
  if (cl_db_step_done (c->db, st, err) < 0)
    return -1;
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

int
cl_net_schema (sqlite3 *db, cl_error_t *err)
{
  if (cl_db_exec (db, schema, err) < 0)
    return -1;
  return migrate (db, err);
}

/* Serialises network changes across processes on one root (flock on
   ROOT/net.lock), creates the tables, opens netlink. */
int
cl_net_ctx_open (sqlite3 *db, struct net_ctx *c, cl_error_t *err)
{
  const char *file = sqlite3_db_filename (db, "main");
  cleanup_free char *copy = NULL, *lock = NULL;

  memset (c, 0, sizeof *c);
  c->db = db;
  c->lock_fd = -1;
  if (file == NULL || *file == '\0')
    return cl_error_make (err, 0, "state database: no file");
  copy = cl_xstrdup (file);
  c->root = cl_xstrdup (dirname (copy));
  lock = cl_strdup_printf ("%s/net.lock", c->root);
  c->lock_fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (c->lock_fd < 0)
    return cl_error_errno (err, "open `%s`", lock);
  if (flock (c->lock_fd, LOCK_EX) < 0)
    return cl_error_errno (err, "lock `%s`", lock);
  if (cl_net_schema (db, err) < 0 || cl_net_nl_open (&c->nl, err) < 0)
    return -1;
  return load_tag (c, err);
}

char *
cl_net_dir (struct net_ctx *c, const char *name)
{
  return cl_strdup_printf ("%s/net/%s", c->root, name);
}

char *
cl_net_trunk_name (struct net_ctx *c)
{
  return cl_strdup_printf ("clq-%s", c->tag);
}

void
cl_net_row_from_stmt (sqlite3_stmt *st, struct net_row *n)
{
  memset (n, 0, sizeof *n);
  n->id = sqlite3_column_int64 (st, 0);
  snprintf (n->name, sizeof n->name, "%s", (const char *)sqlite3_column_text (st, 1));
  n->subnet = (uint32_t)sqlite3_column_int64 (st, 2);
  n->prefix = sqlite3_column_int (st, 3);
  n->mode = mode_from_name ((const char *)sqlite3_column_text (st, 4));
  n->vlan = sqlite3_column_int (st, 5);
  snprintf (n->l3, sizeof n->l3, "%s", (const char *)sqlite3_column_text (st, 6));
  snprintf (n->state, sizeof n->state, "%s", (const char *)sqlite3_column_text (st, 7));
  n->mtu = sqlite3_column_int (st, 8);
}

/* 1 found, 0 absent, -1 error. */
int
cl_net_find (sqlite3 *db, const char *name, struct net_row *n, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (cl_db_prepare (db, "SELECT " NET_COLUMNS " FROM networks WHERE name = ?", &st, err) < 0)
    return -1;
  sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW)
    return 0;
  cl_net_row_from_stmt (st, n);
  return 1;
}

int
cl_net_load (sqlite3 *db, const char *name, struct net_row *n, cl_error_t *err)
{
  int r = cl_net_find (db, name, n, err);
  if (r < 0)
    return -1;
  if (r == 0 || strcmp (n->state, "ready") != 0)
    return cl_error_raise (err, CL_ERR_NOT_FOUND, "network `%s` does not exist", name);
  return 0;
}

int
cl_net_exec_bound (sqlite3 *db, const char *sql, int64_t a, const char *b, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (cl_db_prepare (db, sql, &st, err) < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, a);
  if (b)
    sqlite3_bind_text (st, 2, b, -1, SQLITE_STATIC);
  if (cl_db_step_done (db, st, err) < 0)
    return -1;
  return 0;
}

void
cl_net_att_from_stmt (sqlite3_stmt *st, struct att_row *a)
{
  memset (a, 0, sizeof *a);
  a->id = sqlite3_column_int64 (st, 0);
  a->network_id = sqlite3_column_int64 (st, 1);
  snprintf (a->instance, sizeof a->instance, "%s", (const char *)sqlite3_column_text (st, 2));
  snprintf (a->kind, sizeof a->kind, "%s", (const char *)sqlite3_column_text (st, 3));
  snprintf (a->ifname, sizeof a->ifname, "%s", (const char *)sqlite3_column_text (st, 4));
  snprintf (a->host_ifname, sizeof a->host_ifname, "%s", (const char *)sqlite3_column_text (st, 5));
  a->address = (uint32_t)sqlite3_column_int64 (st, 6);
  snprintf (a->mac, sizeof a->mac, "%s", (const char *)sqlite3_column_text (st, 7));
  a->pid = sqlite3_column_int (st, 8);
}

int
cl_net_by_id (sqlite3 *db, int64_t id, struct net_row *n, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (cl_db_prepare (db, "SELECT " NET_COLUMNS " FROM networks WHERE id = ?", &st, err) < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, id);
  if (sqlite3_step (st) != SQLITE_ROW)
    return cl_error_raise (err, CL_ERR_NOT_FOUND, "network #%lld does not exist", (long long)id);
  cl_net_row_from_stmt (st, n);
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
  if (cl_write_all (fd, data, len) < 0 || ftruncate (fd, (off_t)len) < 0)
    return cl_error_errno (err, "write `%s`", path);
  return 0;
}

int
cl_net_foreach_attachment (sqlite3 *db, int64_t network_id,
                           void (*fn) (const struct att_row *a, const char *ip, void *data),
                           void *data, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (cl_db_prepare (
          db, "SELECT " ATT_COLUMNS " FROM net_attachments WHERE network_id = ? ORDER BY address",
          &st, err)
      < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, network_id);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      struct att_row a;
      char ip[16];
      cl_net_att_from_stmt (st, &a);
      cl_net_ipam_format (a.address, ip);
      fn (&a, ip, data);
    }
  return 0;
}

struct hosts_files
{
  FILE *hosts, *dhcp;
};

static void
add_host_lines (const struct att_row *a, const char *ip, void *data)
{
  struct hosts_files *f = data;
  fprintf (f->hosts, "%s %s\n", ip, a->instance);
  if (strcmp (a->kind, "vm") == 0)
    fprintf (f->dhcp, "%s,%s,%s\n", a->mac, ip, a->instance);
}

/* Rewrites the network's DNS (hosts) and, with dhcp_too, DHCP (dhcp-hosts)
   files from the database and tells its dnsmasq. */
int
cl_net_publish_hosts (struct net_ctx *c, const struct net_row *n, int dhcp_too, cl_error_t *err)
{
  cleanup_free char *dir = cl_net_dir (c, n->name), *hosts_path = NULL, *dhcp_path = NULL;
  cleanup_free char *hosts = NULL, *dhcp = NULL;
  size_t hosts_len = 0, dhcp_len = 0;
  cleanup_file FILE *hf = open_memstream (&hosts, &hosts_len);
  cleanup_file FILE *df = open_memstream (&dhcp, &dhcp_len);
  struct hosts_files files = { hf, df };

  if (hf == NULL || df == NULL)
    return cl_error_errno (err, "open_memstream");
  if (cl_net_foreach_attachment (c->db, n->id, add_host_lines, &files, err) < 0)
    return -1;
  fclose (steal_pointer (&hf));
  fclose (steal_pointer (&df));
  hosts_path = cl_strdup_printf ("%s/hosts", dir);
  dhcp_path = cl_strdup_printf ("%s/dhcp-hosts", dir);
  if (write_in_place (hosts_path, hosts, hosts_len, err) < 0
      || (dhcp_too && write_in_place (dhcp_path, dhcp, dhcp_len, err) < 0))
    return -1;
  cl_net_dnsmasq_reload (dir);
  return 0;
}

json_t *
cl_net_forwards_json (sqlite3 *db, int64_t attachment_id)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  json_t *arr = json_array ();
  if (cl_db_prepare (db,
                     "SELECT proto, host_port, inst_port FROM net_forwards WHERE attachment_id = ? "
                     "ORDER BY host_port",
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

