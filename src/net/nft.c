/* SPDX-License-Identifier: Apache-2.0 */
#include "net/nft.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "net/ipam.h"

#include <errno.h>
#include <jansson.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <nftables/libnftables.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 0 when nfnetlink answers a GETGEN for the subsystem, else the errno. */
int
cl_net_nft_probe_subsys (unsigned subsys)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct mnl_socket *nl = mnl_socket_open2 (NETLINK_NETFILTER, SOCK_CLOEXEC);
  struct nlmsghdr *h;
  struct nfgenmsg *g;
  uint32_t seq = (uint32_t)time (NULL);
  ssize_t got;
  int r = 0;

  if (nl == NULL)
    return errno ? errno : EPROTONOSUPPORT;
  /* What libnftables asks first (the ruleset generation): where the
     kernel cannot answer it, libnftables exits the process (status 3). */
  h = mnl_nlmsg_put_header (buf);
  h->nlmsg_type = (uint16_t)((subsys << 8) | NFT_MSG_GETGEN);
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  h->nlmsg_seq = seq;
  g = mnl_nlmsg_put_extra_header (h, sizeof *g);
  g->nfgen_family = AF_UNSPEC;
  g->version = NFNETLINK_V0;
  g->res_id = 0;
  if (mnl_socket_bind (nl, 0, MNL_SOCKET_AUTOPID) < 0
      || mnl_socket_sendto (nl, h, h->nlmsg_len) < 0)
    r = errno;
  while (r == 0 && (got = mnl_socket_recvfrom (nl, buf, sizeof buf)) != 0)
    {
      int cb = got < 0 ? -1
                       : mnl_cb_run (buf, (size_t)got, seq, mnl_socket_get_portid (nl), NULL, NULL);
      if (cb < 0)
        r = errno ? errno : EIO;
      else if (cb == MNL_CB_STOP)
        break;
    }
  mnl_socket_close (nl);
  return r;
}

/* Probed once per process: 0, or the one-line error naming nftables. */
int
cl_net_nft_available (cl_error_t *err)
{
  static int probed, status;
  if (!probed)
    {
      unsigned subsys = NFNL_SUBSYS_NFTABLES;
#ifdef CLOISON_FAULT_INJECTION
      /* Tests stand for a kernel without nf_tables by asking a subsystem
         that no kernel has. */
      if (getenv ("CLOISON_NET_TEST_NO_NFTABLES"))
        subsys = NFNL_SUBSYS_COUNT + 7;
#endif
      status = cl_net_nft_probe_subsys (subsys);
      probed = 1;
    }
  if (status == 0)
    return 0;
  return cl_error_make (err, status, "nftables: the kernel has no nf_tables (module nf_tables)");
}

int
cl_net_nft_run (const char *cmds, cl_error_t *err)
{
  struct nft_ctx *ctx;
  int r;

  if (cl_net_nft_available (err) < 0)
    return -1;
  ctx = nft_ctx_new (NFT_CTX_DEFAULT);
  if (ctx == NULL)
    return cl_error_make (err, 0, "nftables: cannot create a context");
  nft_ctx_buffer_output (ctx);
  nft_ctx_buffer_error (ctx);
  r = nft_run_cmd_from_buffer (ctx, cmds);
  if (r != 0)
    {
      const char *e = nft_ctx_get_error_buffer (ctx);
      size_t len = e ? strcspn (e, "\n") : 0;
      cl_error_make (err, 0, "nftables: %.*s", (int)len, len ? e : "command failed");
    }
  nft_ctx_free (ctx);
  return r != 0 ? -1 : 0;
}

/* Appends printf output to a growing string. */
static void __attribute__ ((format (printf, 2, 3))) append (char **buf, const char *fmt, ...)
{
  va_list ap;
  char *more, *joined;
  va_start (ap, fmt);
  if (vasprintf (&more, fmt, ap) < 0)
    abort ();
  va_end (ap);
  joined = cl_strdup_printf ("%s%s", *buf ? *buf : "", more);
  free (more);
  free (*buf);
  *buf = joined;
}

char *
cl_net_nft_table_name (const char *tag, const char *name)
{
  return cl_strdup_printf ("cloison-%s-%s", tag, name);
}

char *
cl_net_nft_network_script (const struct net_row *n, const char *tag)
{
  cleanup_free char *t = cl_net_nft_table_name (tag, n->name);
  const char *br = n->l3;
  char subnet[16], gateway[16], *s = NULL;
  static const char *const protos[] = { "tcp", "udp" };

  cl_net_ipam_format (n->subnet, subnet);
  cl_net_ipam_format (cl_net_ipam_gateway (n->subnet), gateway);
  append (&s, "add table ip %s\n", t);
  append (&s, "add chain ip %s owner_%s\n", t, tag);
  for (int i = 0; i < 2; i++)
    append (&s, "add map ip %s fwd_%s { type inet_service : ipv4_addr . inet_service; }\n", t,
            protos[i]);
  append (&s, "add chain ip %s prerouting { type nat hook prerouting priority dstnat; }\n", t);
  append (&s, "add chain ip %s output { type nat hook output priority -100; }\n", t);
  for (int i = 0; i < 2; i++)
    {
      append (&s,
              "add rule ip %s prerouting fib daddr type local dnat ip to %s dport map "
              "@fwd_%s\n",
              t, protos[i], protos[i]);
      /* Loopback destinations cannot be DNATed onto a bridge (martian
         source), so only the host's other addresses forward locally. */
      append (&s,
              "add rule ip %s output ip daddr != 127.0.0.0/8 fib daddr type local dnat ip "
              "to %s dport map @fwd_%s\n",
              t, protos[i], protos[i]);
    }
  append (&s, "add chain ip %s forward { type filter hook forward priority filter; }\n", t);
  /* The forward rules match the network's own link by index (`iif`,
     `oif`: a number compare, where a name match copies and compares a
     string on every packet), and the first rule lets through at once what
     enters and leaves by that link: the frames bridged from instance to
     instance, which br_netfilter passes through this hook as well, and
     which no rule below would match anyway.  The link exists before the
     table and goes after it. */
  append (&s, "add rule ip %s forward iif \"%s\" oif \"%s\" accept\n", t, br, br);
  /* Networks never reach each other, whatever their modes. */
  append (&s, "add rule ip %s forward iif \"%s\" oif != \"%s\" oifname \"clb-*\" drop\n", t,
          br, br);
  append (&s, "add chain ip %s input { type filter hook input priority filter; }\n", t);
  append (&s, "add chain ip %s postrouting { type nat hook postrouting priority srcnat; }\n", t);
  /* Instance-to-instance traffic never needs NAT or state; where the
     kernel passes bridged frames through the IP hooks (br_netfilter),
     tracking it costs about a fifth of the bridge's throughput. */
  append (&s, "add chain ip %s raw { type filter hook prerouting priority raw; }\n", t);
  append (&s, "add rule ip %s raw ip saddr %s/%d ip daddr %s/%d ip daddr != %s notrack\n", t,
          subnet, n->prefix, subnet, n->prefix, gateway);
  switch (n->mode)
    {
    case CL_NET_ISOLATED:
      append (&s, "add rule ip %s forward iif \"%s\" oif != \"%s\" drop\n", t, br, br);
      append (&s, "add rule ip %s forward oif \"%s\" iif != \"%s\" drop\n", t, br, br);
      /* The host itself only serves DHCP and DNS to an isolated network. */
      append (&s, "add rule ip %s input iifname \"%s\" udp dport { 53, 67 } accept\n", t, br);
      append (&s, "add rule ip %s input iifname \"%s\" tcp dport 53 accept\n", t, br);
      append (&s, "add rule ip %s input iifname \"%s\" drop\n", t, br);
      break;
    case CL_NET_NAT:
      /* From outside only replies and port forwards come in. */
      append (&s,
              "add rule ip %s forward oif \"%s\" iif != \"%s\" ct state "
              "established,related accept\n",
              t, br, br);
      append (&s, "add rule ip %s forward oif \"%s\" iif != \"%s\" ct status dnat accept\n", t,
              br, br);
      append (&s, "add rule ip %s forward oif \"%s\" iif != \"%s\" drop\n", t, br, br);
      append (&s, "add rule ip %s postrouting ip saddr %s/%d oifname != \"%s\" masquerade\n", t,
              subnet, n->prefix, br);
      /* Hairpin: an instance reaching a port forward of its own network
         gets its answer through the gateway, not straight from the peer. */
      append (&s,
              "add rule ip %s postrouting ip saddr %s/%d oifname \"%s\" ct status dnat "
              "masquerade\n",
              t, subnet, n->prefix, br);
      break;
    case CL_NET_ROUTED:
      break;
    }
  return s;
}

int
cl_net_nft_network_add (const struct net_row *n, const char *tag, cl_error_t *err)
{
  char *s = cl_net_nft_network_script (n, tag);
  int r = cl_net_nft_run (s, err);
  free (s);
  return r;
}

/* Runs one command with JSON output; *out is the parsed output or NULL
   when the command failed. */
static int nft_run_json (const char *cmd, json_t **out, cl_error_t *err);

/* Does table ip TABLE hold root TAG's owner chain? */
static int
owned_by (const char *table, const char *tag)
{
  json_t *chain = NULL;
  char *cmd = cl_strdup_printf ("list chain ip %s owner_%s", table, tag);
  nft_run_json (cmd, &chain, NULL);
  free (cmd);
  json_decref (chain);
  return chain != NULL;
}

int
cl_net_nft_network_remove (const char *tag, const char *name, cl_error_t *err)
{
  cleanup_free char *table = NULL, *legacy = NULL;
  char *s;
  int r;
  /* Without nf_tables there is no table to remove. */
  if (cl_net_nft_available (NULL) < 0)
    return 0;
  table = cl_net_nft_table_name (tag, name);
  /* `add` first makes `delete` succeed when the table is already gone. */
  s = cl_strdup_printf ("add table ip %s\ndelete table ip %s\n", table, table);
  r = cl_net_nft_run (s, err);
  free (s);
  /* Before tables carried the root's tag they were `cloison-NAME`. */
  legacy = cl_strdup_printf ("cloison-%s", name);
  if (r == 0 && owned_by (legacy, tag))
    {
      s = cl_strdup_printf ("delete table ip %s\n", legacy);
      r = cl_net_nft_run (s, err);
      free (s);
    }
  return r;
}

int
cl_net_nft_forward_set (const char *tag, const char *net, const char *proto, uint16_t host_port,
                        uint32_t addr, uint16_t port, int add, cl_error_t *err)
{
  cleanup_free char *table = cl_net_nft_table_name (tag, net);
  char a[16], *s;
  int r;
  cl_net_ipam_format (addr, a);
  if (add)
    s = cl_strdup_printf ("add element ip %s fwd_%s { %u : %s . %u }\n", table, proto, host_port, a,
                          port);
  else
    s = cl_strdup_printf ("delete element ip %s fwd_%s { %u }\n", table, proto, host_port);
  r = cl_net_nft_run (s, err);
  free (s);
  return r;
}

static int
nft_run_json (const char *cmd, json_t **out, cl_error_t *err)
{
  struct nft_ctx *ctx;
  if (cl_net_nft_available (err) < 0)
    return -1;
  ctx = nft_ctx_new (NFT_CTX_DEFAULT);
  if (ctx == NULL)
    return cl_error_make (err, 0, "nftables: cannot create a context");
  nft_ctx_output_set_flags (ctx, NFT_CTX_OUTPUT_JSON);
  nft_ctx_buffer_output (ctx);
  nft_ctx_buffer_error (ctx);
  *out = nft_run_cmd_from_buffer (ctx, cmd) == 0
             ? json_loads (nft_ctx_get_output_buffer (ctx), 0, NULL)
             : NULL;
  nft_ctx_free (ctx);
  return 0;
}

int
cl_net_nft_foreach_owned (const char *tag, void (*fn) (const char *table, void *data), void *data,
                          cl_error_t *err)
{
  json_t *tables = NULL, *item;
  size_t i;

  /* Without nf_tables there are no tables, and nothing to ask. */
  if (cl_net_nft_available (NULL) < 0)
    return 0;
  if (nft_run_json ("list tables ip", &tables, err) < 0)
    return -1;
  json_array_foreach (json_object_get (tables, "nftables"), i, item)
  {
    json_t *t = json_object_get (item, "table");
    const char *name = json_string_value (json_object_get (t, "name"));
    if (name && strncmp (name, "cloison-", 8) == 0 && owned_by (name, tag))
      fn (name, data);
  }
  json_decref (tables);
  return 0;
}

/* Is `port` a key of the map fwd_PROTO of table? */
static int
map_has_port (const char *table, const char *proto, uint16_t port)
{
  json_t *out = NULL, *item, *elem;
  size_t i, j;
  int found = 0;
  char *cmd = cl_strdup_printf ("list map ip %s fwd_%s", table, proto);
  nft_run_json (cmd, &out, NULL);
  free (cmd);
  json_array_foreach (json_object_get (out, "nftables"), i, item)
  {
    json_array_foreach (json_object_get (json_object_get (item, "map"), "elem"), j, elem)
    {
      json_t *key = json_array_get (elem, 0);
      if (json_is_integer (key) && json_integer_value (key) == port)
        found = 1;
    }
  }
  json_decref (out);
  return found;
}

int
cl_net_nft_port_mapped_elsewhere (const char *tag, const char *proto, uint16_t port, char **table,
                                  cl_error_t *err)
{
  cleanup_free char *ours = cl_net_nft_table_name (tag, "");
  json_t *tables = NULL, *item;
  size_t i;
  int found = 0;

  if (nft_run_json ("list tables ip", &tables, err) < 0)
    return -1;
  json_array_foreach (json_object_get (tables, "nftables"), i, item)
  {
    const char *name
        = json_string_value (json_object_get (json_object_get (item, "table"), "name"));
    if (found || name == NULL || strncmp (name, "cloison-", 8) != 0
        || strncmp (name, ours, strlen (ours)) == 0 || !map_has_port (name, proto, port)
        || owned_by (name, tag))
      continue;
    *table = cl_xstrdup (name);
    found = 1;
  }
  json_decref (tables);
  return found;
}
