/* SPDX-License-Identifier: Apache-2.0 */
/* The guest agent's 'J' requests (protocol.h): VM-isolated containers. */
#ifndef CLOISON_AGENT_SPEC_H
#define CLOISON_AGENT_SPEC_H

#include <jansson.h>
#include <stdbool.h>

/* Mounts the virtio-fs share `tag` on root (read-only if the spec's
   "rootfs_readonly"), unless a FUSE filesystem is there already;
   `mounted`: the agent mounted it at its start, read-write, and a
   read-only rootfs becomes a read-only bind mount on it. */
void cl_agent_spec_mount_root (json_t *spec, const char *tag, const char *root, bool mounted);
/* What the request changes in the whole guest: the clock, the RNG, the
   spec's non-bind mounts under root, the hostname, the network.
   Problems are reported on stderr (the console) and do not stop it. */
void cl_agent_spec_global (json_t *spec, const char *root);
/* In the command's child, chrooted with stdio in place: applies
   spec.process through the container engine and execs it.  Never
   returns (exit 127: not found, 126: any other failure, told on
   stderr). */
void cl_agent_spec_exec (json_t *spec) __attribute__ ((noreturn));

#endif
