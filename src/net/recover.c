/* SPDX-License-Identifier: Apache-2.0 */
/* Crash recovery: what a crash (of cloison or of an instance) left. */
#include "common/cleanup.h"
#include "common/db.h"
#include "common/log.h"
#include "common/util.h"
#include "net/dnsmasq.h"
#include "net/net_internal.h"
#include "net/ipam.h"
#include "net/netlink.h"
#include "net/nft.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct stale_links
{
  struct net_ctx *c;
  char **names;
  size_t n;
};

static void
push_name (char ***names, size_t *n, const char *name)
{
  *names = realloc (*names, (*n + 1) * sizeof **names);
  if (*names == NULL)
    abort ();
  (*names)[(*n)++] = cl_xstrdup (name);
}

static void
collect_ours (const char *name, void *data)
{
  struct stale_links *s = data;
  cleanup_free char *prefix = cl_strdup_printf ("-%s-", s->c->tag);
  /* clb-TAG-N, clv-TAG-N, clt-TAG-N: links this root made. */
  if (strncmp (name, "cl", 2) != 0 || strchr ("bvt", name[2]) == NULL || name[2] == '\0'
      || strncmp (name + 3, prefix, strlen (prefix)) != 0)
    return;
  push_name (&s->names, &s->n, name);
}

struct stale_tables
{
  struct net_ctx *c;
  char **names;
  size_t n;
};

static void
collect_table (const char *name, void *data)
{
  struct stale_tables *t = data;
  push_name (&t->names, &t->n, name);
}

static int
known_link (sqlite3 *db, const char *name)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (cl_db_prepare (db,
                     "SELECT 1 FROM networks WHERE l3 = ?1 UNION ALL SELECT 1 FROM net_attachments "
                     "WHERE host_ifname = ?1",
                     &st, NULL)
      < 0)
    return 1;
  sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
  return sqlite3_step (st) == SQLITE_ROW;
}

struct orphan_dnsmasq
{
  struct net_ctx *c;
  pid_t *pids;
  size_t n;
};

/* A dnsmasq of this root is an orphan unless it is the one its network's
   pid file names (cl_net_dnsmasq_start waits for the pid file, under the lock). */
static void
collect_orphan_dnsmasq (pid_t pid, const char *name, void *data)
{
  struct orphan_dnsmasq *o = data;
  struct net_row n;
  cleanup_free char *dir = cl_net_dir (o->c, name);
  if (cl_net_find (o->c->db, name, &n, NULL) == 1 && cl_net_dnsmasq_pid (dir) == pid)
    return;
  o->pids = realloc (o->pids, (o->n + 1) * sizeof *o->pids);
  if (o->pids == NULL)
    abort ();
  o->pids[o->n++] = pid;
}

int
cl_net_cleanup_stale (sqlite3 *db, cl_net_live_fn live, void *opaque, cl_error_t *err)
{
  cleanup_ctx struct net_ctx c = { .lock_fd = -1 };
  cleanup_stmt sqlite3_stmt *st = NULL;
  struct stale_links links = { &c, NULL, 0 };
  cleanup_free char *netroot = NULL;
  cleanup_dir DIR *d = NULL;
  struct dirent *de;

  if (cl_net_ctx_open (db, &c, err) < 0)
    return -1;

  /* Networks a crash left half made or half deleted. */
  for (;;)
    {
      struct net_row n;
      if (cl_db_prepare (db, "SELECT " NET_COLUMNS " FROM networks WHERE state != 'ready' LIMIT 1",
                         &st, err)
          < 0)
        return -1;
      if (sqlite3_step (st) != SQLITE_ROW)
        break;
      cl_net_row_from_stmt (st, &n);
      sqlite3_finalize (steal_pointer (&st));
      cl_info ("network %s: removing what a crash left (%s)", n.name, n.state);
      cl_net_detach_where (&c, "network_id = ?", NULL, n.id, NULL);
      cl_net_teardown (&c, &n);
      if (cl_net_exec_bound (db, "DELETE FROM networks WHERE id = ?", n.id, NULL, err) < 0)
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
        cl_net_att_from_stmt (q, &a);
        stale = live && !live (opaque, a.instance);
        if (!stale && strcmp (a.kind, "container") == 0)
          stale = cl_net_nl_link_index (c.nl, a.host_ifname, NULL) == 0;
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
        if (cl_net_detach_one (&c, &gone[i], &n, NULL) == 0)
          cl_net_publish_hosts (&c, &n, 1, NULL);
      }
    free (gone);
  }

  /* Links named by this root that no row knows. */
  if (cl_net_nl_link_foreach (c.nl, collect_ours, &links, err) < 0)
    return -1;
  for (size_t i = 0; i < links.n; i++)
    {
      if (!known_link (db, links.names[i]))
        {
          cl_info ("removing stale link %s", links.names[i]);
          cl_net_nl_link_del (c.nl, links.names[i], NULL);
        }
      free (links.names[i]);
    }
  free (links.names);

  /* Tables this root made for networks it no longer knows (the database
     was lost or restored from before they were made). */
  {
    struct stale_tables t = { &c, NULL, 0 };
    cleanup_free char *prefix = cl_net_nft_table_name (c.tag, "");
    if (cl_net_nft_foreach_owned (c.tag, collect_table, &t, err) < 0)
      return -1;
    for (size_t i = 0; i < t.n; i++)
      {
        struct net_row n;
        /* cloison-TAG-NAME, or cloison-NAME from before tables were tagged */
        const char *name = strncmp (t.names[i], prefix, strlen (prefix)) == 0
                               ? t.names[i] + strlen (prefix)
                               : t.names[i] + strlen ("cloison-");
        if (cl_net_find (db, name, &n, NULL) == 0)
          {
            cleanup_free char *cmd = cl_strdup_printf ("delete table ip %s\n", t.names[i]);
            cl_info ("removing stale nftables table %s", t.names[i]);
            cl_net_nft_run (cmd, NULL);
          }
        free (t.names[i]);
      }
    free (t.names);
  }

  /* The VLAN trunk outlives its last network only through a crash. */
  {
    cleanup_stmt sqlite3_stmt *q = NULL;
    cleanup_free char *trunk = cl_net_trunk_name (&c);
    if (cl_db_prepare (db, "SELECT 1 FROM networks WHERE vlan > 0", &q, err) < 0)
      return -1;
    if (sqlite3_step (q) != SQLITE_ROW && cl_net_nl_link_index (c.nl, trunk, NULL) > 0)
      cl_net_nl_link_del (c.nl, trunk, NULL);
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
      if (cl_net_find (db, de->d_name, &n, NULL) != 1)
        {
          cl_net_dnsmasq_stop (dir);
          cl_rm_rf (dir, NULL);
        }
    }
  {
    /* Those no pid file names: a crash while one was starting. */
    struct orphan_dnsmasq o = { &c, NULL, 0 };
    cl_net_dnsmasq_foreach (netroot, collect_orphan_dnsmasq, &o);
    for (size_t i = 0; i < o.n; i++)
      {
        cl_info ("stopping stale dnsmasq %d", (int)o.pids[i]);
        kill (o.pids[i], SIGTERM);
      }
    /* Gone before a dnsmasq is restarted on the same bridge (~1 s at most). */
    for (size_t i = 0; i < o.n; i++)
      for (int k = 0; k < 200 && kill (o.pids[i], 0) == 0; k++)
        {
          struct timespec ts = { 0, 5 * 1000 * 1000 };
          nanosleep (&ts, NULL);
        }
    free (o.pids);
  }
  if (cl_db_prepare (db, "SELECT " NET_COLUMNS " FROM networks", &st, err) < 0)
    return -1;
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      struct net_row n;
      cleanup_free char *dir = NULL;
      cl_net_row_from_stmt (st, &n);
      dir = cl_net_dir (&c, n.name);
      if (cl_net_dnsmasq_pid (dir) == 0 && cl_net_nl_link_index (c.nl, n.l3, NULL) > 0)
        {
          cl_error_t e = NULL;
          cl_info ("network %s: restarting dnsmasq", n.name);
          if (cl_mkdir_p (dir, 0700, &e) < 0 || cl_net_dnsmasq_start (dir, &n, &e) < 0)
            cl_warn ("network %s: %s", n.name, e->msg);
          cl_error_release (&e);
        }
    }
  return 0;
}
