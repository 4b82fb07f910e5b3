/* SPDX-License-Identifier: Apache-2.0 */
/* The rtnetlink calls cloison needs, over libmnl: links (bridge, veth,
   vlan), addresses, routes, bridge VLAN entries.  One socket acts on the
   network namespace it was opened in. */
#ifndef CLOISON_NET_NETLINK_H
#define CLOISON_NET_NETLINK_H

#include "common/error.h"

#include <stdint.h>
#include <sys/types.h>

struct nl_sock;

int cl_net_nl_open (struct nl_sock **out, cl_error_t *err);
/* A socket in the network namespace behind `nsfd`: the calling thread
   enters it only for the socket() call. */
int cl_net_nl_open_in_netns (int nsfd, struct nl_sock **out, cl_error_t *err);
void cl_net_nl_close (struct nl_sock *nl);

/* > 0 the index, 0 no such link, < 0 error. */
int cl_net_nl_link_index (struct nl_sock *nl, const char *name, cl_error_t *err);
/* mtu: > 0 sets it, 0 the kernel's default (here and below). */
int cl_net_nl_bridge_add (struct nl_sock *nl, const char *name, int vlan_filtering, int mtu,
                          cl_error_t *err);
/* Host end `name` (up, enslaved to master_index when > 0); peer `peer_name`
   created (down) directly in the netns of peer_nsfd with MAC peer_mac. */
int cl_net_nl_veth_add (struct nl_sock *nl, const char *name, int master_index,
                        const char *peer_name, const uint8_t peer_mac[6], int peer_nsfd, int mtu,
                        cl_error_t *err);
/* An 802.1Q interface `name` on top of link_index, up. */
int cl_net_nl_vlan_add (struct nl_sock *nl, const char *name, int link_index, int vlan_id, int mtu,
                        cl_error_t *err);
/* up: 1 up, 0 down, -1 unchanged; master_index: > 0 set, 0 unchanged. */
int cl_net_nl_link_set (struct nl_sock *nl, int ifindex, int up, int master_index, int mtu,
                        cl_error_t *err);
/* Absent link: 0. */
int cl_net_nl_link_del (struct nl_sock *nl, const char *name, cl_error_t *err);
/* addr and gateways in host byte order. */
int cl_net_nl_addr_add (struct nl_sock *nl, int ifindex, uint32_t addr, int prefix_len,
                        cl_error_t *err);
int cl_net_nl_route_add_default (struct nl_sock *nl, uint32_t gateway, cl_error_t *err);
/* Adds (or, with del, removes) VLAN vid on a bridge port (or the bridge
   itself with self); pvid_untagged: the port's untagged native VLAN. */
int cl_net_nl_bridge_vlan (struct nl_sock *nl, int ifindex, int vid, int pvid_untagged, int self,
                           int del, cl_error_t *err);
/* Calls fn for every link name of the namespace. */
int cl_net_nl_link_foreach (struct nl_sock *nl, void (*fn) (const char *name, void *data),
                            void *data, cl_error_t *err);

/* A persistent tap (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR) that `owner` may open
   by name; removed with cl_net_nl_link_del. */
int cl_net_nl_tap_create (const char *name, uid_t owner, cl_error_t *err);

/* Everything that arrives on link `from` leaves by link `to` (an ingress
   qdisc on `from` with a matchall filter whose action is mirred egress
   redirect to `to`): call it both ways to join a VM's tap to a
   container's interface, as Kata Containers does.  An ingress qdisc
   already on `from` is replaced (a join whose VM ended left it). */
int cl_net_nl_tc_redirect (struct nl_sock *nl, int from, int to, cl_error_t *err);

#endif
