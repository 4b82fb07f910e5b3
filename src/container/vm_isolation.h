/* SPDX-License-Identifier: Apache-2.0 */
/* VM-isolated containers, the runtime's side (see docs/vm-isolation.md):
   a bundle whose config carries the annotation org.cloison.isolation=vm
   (or any bundle, when the runtime runs as cloison-runtime-vm) runs in a
   microVM of its own.  The container's process on the host is the shim
   cloison-vmctr (src/manager/vm_container.c): its pid is the container's
   pid, it lives as long as the container and exits with its status, so
   that state, kill, pause/resume (the cgroup freezer), ps and delete work
   as for any container through the state directory and the cgroup. */
#ifndef CLOISON_CONTAINER_VM_ISOLATION_H
#define CLOISON_CONTAINER_VM_ISOLATION_H

#include "common/error.h"
#include "container/container.h"
#include "container/ctr_state.h"

#include <jansson.h>
#include <stdbool.h>

#define CL_CTR_VM_ANNOTATION "org.cloison.isolation"
/* In the state directory: what the shim needs, written by create; the
   VMM's API socket. */
#define CL_CTR_VM_SPEC_FILE "vm-spec.json"
#define CL_CTR_VM_API_SOCKET "api.sock"
/* The cgroup's memory limit is the guest's plus this, for the VMM
   process itself (its own memory, virtio-fs, vsock). */
#define CL_CTR_VM_MEMORY_OVERHEAD (64ll << 20)

struct cl_cgroup;

/* Whether the config asks for VM isolation (or `forced`).  A value of the
   annotation other than "vm" or "container" is an error (-1). */
int cl_ctr_vm_wanted (json_t *config, bool forced, cl_error_t *err);
/* create of a VM-isolated container: state directory, exec.fifo, the
   cgroup (limits applied, the memory limit raised by the overhead), the
   shim started in it, which boots the VM and reports ready; then
   state.json and the pid file.  Fills st (dir, doc, pid) and *cg.  On
   failure nothing is left. */
int cl_ctr_vm_create (const char *root, const char *id, const struct cl_container_create_opts *opts,
                      json_t *config, const char *bundle, const char *rootfs,
                      struct container_state *st, struct cl_cgroup **cg, cl_error_t *err);
/* exec in a VM-isolated container: starts a shim that runs `process` in
   the container's VM through the guest agent; returns once the process
   runs, with *pid (written to the pid file).  The caller waits for it
   unless detached. */
int cl_ctr_vm_exec (struct container_state *st, json_t *process,
                    const struct cl_container_exec_opts *opts, pid_t *pid, cl_error_t *err);

/* pause/resume: the VM's vCPUs stop (the VMM's API), not the cgroup
   freezer (the vhost kernel threads of the VMM's cgroup never freeze). */
int cl_ctr_vm_set_paused (struct container_state *st, bool paused, cl_error_t *err);

#endif
