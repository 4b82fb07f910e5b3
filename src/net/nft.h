/* SPDX-License-Identifier: Apache-2.0 */
/* nftables through libnftables: one table `ip cloison-TAG-NAME` per
   network (TAG: the state root's) holding its NAT, port forward maps and
   isolation rules. */
#ifndef CLOISON_NET_NFT_H
#define CLOISON_NET_NFT_H

#include "net/net_internal.h"

#include <stdint.h>

/* libnftables exits the process where the kernel has no nf_tables: every
   call goes through this probe first (one netlink request per process).
   0, or "nftables: the kernel has no nf_tables ...". */
int cl_net_nft_available (cl_error_t *err);
/* 0 when nfnetlink answers a GETGEN request for that subsystem, else the
   errno (for tests). */
int cl_net_nft_probe_subsys (unsigned subsys);
/* Runs nft commands as one transaction; the error is nft's first line. */
int cl_net_nft_run (const char *cmds, cl_error_t *err);
/* "cloison-TAG-NAME" (to free). */
char *cl_net_nft_table_name (const char *tag, const char *name);
/* The commands that create the network's table (for tests).  The table
   holds an empty chain `owner_TAG` naming the state root that made it. */
char *cl_net_nft_network_script (const struct net_row *n, const char *tag);
int cl_net_nft_network_add (const struct net_row *n, const char *tag, cl_error_t *err);
/* Calls fn with every `ip cloison-*` table that holds root tag's owner
   chain (none without nf_tables). */
int cl_net_nft_foreach_owned (const char *tag, void (*fn) (const char *table, void *data),
                              void *data, cl_error_t *err);
/* Removes the network's table (and its untagged `cloison-NAME` from
   before tables were tagged, if this root made it).  Absent table (or no
   nf_tables at all): 0. */
int cl_net_nft_network_remove (const char *tag, const char *name, cl_error_t *err);
/* Adds or removes host_port -> addr:port in the network's forward map. */
int cl_net_nft_forward_set (const char *tag, const char *net, const char *proto, uint16_t host_port,
                            uint32_t addr, uint16_t port, int add, cl_error_t *err);

/* 1 (and *table, to free) when a table of another state root (a
   `cloison-*` table without this root's owner chain) forwards host port
   `port`/proto, else 0. */
int cl_net_nft_port_mapped_elsewhere (const char *tag, const char *proto, uint16_t port,
                                      char **table, cl_error_t *err);

#endif
