/* SPDX-License-Identifier: Apache-2.0 */
/* The manager's side of networking: attaching instances to the networks
   their config names (src/net when built in) and removing them. */
#ifndef CLOISON_MANAGER_NETGLUE_H
#define CLOISON_MANAGER_NETGLUE_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct cl_manager;
struct instance;

/* Does the instance get networks (then its container is attached between
   create and start)? */
bool cl_mgr_netglue_wanted (struct instance *inst);
/* Frees what instances that are gone (no row) left. */
int cl_mgr_netglue_cleanup (struct cl_manager *m, cl_error_t *err);
/* "HOSTPORT:PORT[/tcp|udp]". */
int cl_mgr_netglue_check_port (const char *spec, cl_error_t *err);
/* Attaches the container of `pid` to its networks and adds its port
   forwards (none asked: nothing). */
int cl_mgr_netglue_attach_container (struct cl_manager *m, struct instance *inst, pid_t pid,
                                     cl_error_t *err);
/* For a VM: the tap of its first network (*tap NULL: no network). */
int cl_mgr_netglue_attach_vm (struct cl_manager *m, struct instance *inst, char **tap,
                              uint8_t mac[6], bool *has_mac, cl_error_t *err);
int cl_mgr_netglue_detach (struct cl_manager *m, const char *name, cl_error_t *err);
/* Interfaces of the instance, or null. */
json_t *cl_mgr_netglue_info (struct cl_manager *m, const char *name);

#endif
