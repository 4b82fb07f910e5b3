/* SPDX-License-Identifier: Apache-2.0 */
/* One dnsmasq per network: DHCP (static leases for VMs, from
   DIR/dhcp-hosts) and DNS names of instances (DIR/hosts), where DIR is the
   network's state directory ROOT/net/NAME. */
#ifndef CLOISON_NET_DNSMASQ_H
#define CLOISON_NET_DNSMASQ_H

#include "net/net_internal.h"

#include <sys/types.h>

int cl_net_dnsmasq_start (const char *dir, const struct net_row *n, cl_error_t *err);
/* Our dnsmasq's pid for that directory, or 0. */
pid_t cl_net_dnsmasq_pid (const char *dir);
void cl_net_dnsmasq_stop (const char *dir);
/* Calls fn for every dnsmasq of this network namespace whose pid file is
   NETROOT/NAME/dnsmasq.pid (the state root's own, found by their command
   line: also those whose pid file was never written or is gone). */
void cl_net_dnsmasq_foreach (const char *netroot,
                             void (*fn) (pid_t pid, const char *name, void *data), void *data);
/* Re-reads the hosts files (SIGHUP). */
void cl_net_dnsmasq_reload (const char *dir);

#endif
