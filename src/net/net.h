/* SPDX-License-Identifier: Apache-2.0 */
/* Virtual networks for instances: one Linux bridge per network (or one VLAN
   of a shared VLAN-filtering bridge), veth pairs for containers, persistent
   taps for microVMs, IPAM in the state database, one nftables table per
   network (NAT, port forwards, isolation) and one dnsmasq per network (DHCP
   for VMs, DNS names for every instance).

   Everything acts on the network namespace the calling thread is in (the
   "host" side); a container's side is configured in the netns of its pid.
   Every mutating call takes ROOT/net.lock, so concurrent cloison processes
   on one state root are serialised, and undoes its kernel changes when it
   fails.  Instances are named by the manager; one instance may hold one
   attachment per network.  Call these outside a transaction of your own
   on `db` (they run their own). */
#ifndef CLOISON_NET_H
#define CLOISON_NET_H

#include "common/error.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CL_NET_DEFAULT "default"
#define CL_NET_DEFAULT_SUBNET "10.87.0.0/24"
#define CL_NET_MTU_MIN 1280
#define CL_NET_MTU_MAX 65520

enum cl_net_mode
{
  CL_NET_NAT,      /* masquerade out of the bridge (the default) */
  CL_NET_ROUTED,   /* forwarded without NAT */
  CL_NET_ISOLATED, /* no forwarding out of the bridge, only DHCP/DNS to the host */
};

struct cl_net_config
{
  const char *name;
  const char *subnet; /* "10.88.1.0/24"; NULL: the first free 10.87.N.0/24 */
  enum cl_net_mode mode;
  int vlan; /* 0: own bridge; 1-4094: a VLAN of the shared trunk bridge */
  int mtu;  /* of the bridge and every link of the network; 0: 1500 */
};

/* What the manager needs to know about one interface of an instance. */
struct cl_net_attachment
{
  char network[129];
  char ifname[16];      /* inside the instance: "eth0" (container) or the guest's name */
  char host_ifname[16]; /* host side: veth peer, or the tap a VMM opens by name */
  char bridge[16];      /* the bridge (or VLAN interface) the network lives on */
  char mac[18];         /* of the instance's interface, "0a:58:0a:57:00:02" */
  char address[16];     /* dotted IPv4, reserved for the instance */
  int prefix_len;
  char gateway[16]; /* also the DNS server */
};

/* Networks. */
int cl_net_create (sqlite3 *db, const struct cl_net_config *cfg, cl_error_t *err);
/* Creates `default` (NAT, 10.87.0.0/24) unless it exists. */
int cl_net_ensure_default (sqlite3 *db, cl_error_t *err);
/* Refused while an instance is attached. */
int cl_net_delete (sqlite3 *db, const char *name, cl_error_t *err);
/* JSON array of networks / one network object (with its attachments and
   port forwards).  Unknown name: error "network `X` does not exist". */
int cl_net_list (sqlite3 *db, json_t **out, cl_error_t *err);
int cl_net_show (sqlite3 *db, const char *name, json_t **out, cl_error_t *err);

/* net_name may be NAME@ADDRESS: that address (dotted IPv4, in the
   network's subnet, free) instead of the next free one. */
/* Attaches a container: a veth pair whose peer is created directly in the
   network namespace of `pid`, named `ifname` (NULL: "eth0" for the
   instance's first network, "eth1" for its second...), given its
   address, a default route through the gateway, and `lo` up.  NULL
   net_name: the default network (created if needed). */
int cl_net_attach_container (sqlite3 *db, const char *net_name, const char *instance, pid_t pid,
                             const char *ifname, struct cl_net_attachment *out, cl_error_t *err);
/* Attaches a microVM: a persistent tap (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR)
   owned by `owner` (so an unprivileged VMM may open it by name) on the
   bridge, an address reserved and handed out by the network's dnsmasq to
   out->mac.  `ifname` is only recorded (the guest's name, NULL: "ethN"). */
int cl_net_attach_vm (sqlite3 *db, const char *net_name, const char *instance, uid_t owner,
                      const char *ifname, struct cl_net_attachment *out, cl_error_t *err);
/* Removes every attachment of the instance (links, DHCP/DNS entries, port
   forwards) and frees its addresses.  An instance with none: 0. */
int cl_net_detach (sqlite3 *db, const char *instance, cl_error_t *err);

/* proto: "tcp" or "udp".  net_name NULL: the instance's first network.
   A host port is forwarded at most once per proto. */
int cl_net_port_forward_add (sqlite3 *db, const char *net_name, const char *instance,
                             uint16_t host_port, uint16_t inst_port, const char *proto,
                             cl_error_t *err);
int cl_net_port_forward_remove (sqlite3 *db, const char *instance, uint16_t host_port,
                                const char *proto, cl_error_t *err);
/* Parses "HOSTPORT:PORT[/tcp|udp]" (docker's -p). */
int cl_net_parse_port_forward (const char *spec, uint16_t *host_port, uint16_t *inst_port,
                               const char **proto, cl_error_t *err);

/* Crash recovery, cheap enough for every command: finishes or undoes
   half-made networks, removes links of ours that the database does not
   know, frees attachments whose container is gone (its veth vanished with
   its netns), restarts a dead dnsmasq, kills one whose network is gone.
   With live != NULL, also detaches every instance for which live() says
   false: it is asked under the networks' lock, so that an instance
   attached meanwhile is never taken for a gone one. */
typedef bool (*cl_net_live_fn) (void *opaque, const char *instance);
int cl_net_cleanup_stale (sqlite3 *db, cl_net_live_fn live, void *opaque, cl_error_t *err);

/* {"instance": X, "interfaces": [{network, ifname, host_ifname, mac,
   address, prefix_len, gateway, kind, port_forwards: [...]}]} */
int cl_net_info (sqlite3 *db, const char *instance, json_t **out, cl_error_t *err);

#endif
