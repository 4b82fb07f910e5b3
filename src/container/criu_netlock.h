/* SPDX-License-Identifier: Apache-2.0 */
/* CRIU's nftables network lock left in an external network namespace
   after a restore (criu_netlock.c). */
#ifndef CLOISON_CONTAINER_CRIU_NETLOCK_H
#define CLOISON_CONTAINER_CRIU_NETLOCK_H

#include <sys/types.h>

/* Removes the table `inet CRIU-DUMPED_ROOT` from the network namespace
   netns_fd (none there: success); -errno on failure. */
int cl_ctr_criu_unlock_netns (int netns_fd, pid_t dumped_root);

#endif
