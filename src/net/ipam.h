/* SPDX-License-Identifier: Apache-2.0 */
/* IPv4 address arithmetic for IPAM: CIDRs, overlap, the next free address.
   Addresses are uint32_t in host byte order. */
#ifndef CLOISON_NET_IPAM_H
#define CLOISON_NET_IPAM_H

#include "common/error.h"

#include <stddef.h>
#include <stdint.h>

/* "10.87.0.0/24": the network address (host bits must be zero) and a
   prefix of 8-30 (room for a gateway and instances).  `what` names the
   field in errors ("--subnet"). */
int cl_net_ipam_parse_cidr (const char *s, const char *what, uint32_t *net, int *prefix,
                            cl_error_t *err);
uint32_t cl_net_ipam_mask (int prefix);
int cl_net_ipam_overlap (uint32_t a, int pa, uint32_t b, int pb);
void cl_net_ipam_format (uint32_t addr, char out[16]);
/* The gateway is the first address of the subnet. */
uint32_t cl_net_ipam_gateway (uint32_t net);
/* Lowest address after the gateway, before the broadcast, not in `used`
   (sorted ascending).  0 when the subnet is full. */
uint32_t cl_net_ipam_next_free (uint32_t net, int prefix, const uint32_t *used, size_t n_used);

#endif
