/* SPDX-License-Identifier: Apache-2.0 */
/* linux.netDevices: host interfaces lent to a container. */
#ifndef CLOISON_CONTAINER_NETDEV_H
#define CLOISON_CONTAINER_NETDEV_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

/* Names valid, interfaces present here, and a network namespace of the
   container's own. */
int cl_ctr_netdev_validate (json_t *linux_obj, bool own_netns, cl_error_t *err);
/* Into the network namespace of `pid`, each under its `name`. */
int cl_ctr_netdev_move_in (json_t *devs, pid_t pid, cl_error_t *err);
/* Back into ours under their host names (while `pid` still lives);
   failures are warnings: delete goes on. */
void cl_ctr_netdev_move_out (json_t *devs, pid_t pid);
/* `lo` up in our network namespace, or in that of `pid`: 0 or -errno. */
int cl_ctr_netdev_loopback_up (void);
int cl_ctr_netdev_loopback_up_in (pid_t pid);

#endif
