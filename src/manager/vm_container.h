/* SPDX-License-Identifier: Apache-2.0 */
/* VM-isolated containers, the host side (vm_container.c): what
   cloison-vmctr runs for cloison-runtime (src/container/vm_isolation.h). */
#ifndef CLOISON_MANAGER_VM_CONTAINER_H
#define CLOISON_MANAGER_VM_CONTAINER_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* `cloison-vmctr create DIR`: the container's process on the host, from
   DIR/vm-spec.json (written by the runtime's create).  Reports on ready_fd
   "R<cid>" once the guest agent answers, or "E<message>"; then waits for
   `start`, runs the process and returns its exit status. */
int cl_mgr_vmctr_create (const char *dir, int ready_fd);
/* `cloison-vmctr exec CID FILE [SOCKET]`: a process (FILE: {"process",
   "seccomp"}, removed once read) in the running VM of CID; "R" on
   ready_fd (if >= 0) once it runs; returns its exit status. */
int cl_mgr_vmctr_exec (uint32_t cid, const char *spec_file, const char *console_socket,
                       int ready_fd);
/* The VM's memory and vCPUs from the spec's limits. */
void cl_mgr_vmctr_size (json_t *config, uint64_t *memory, unsigned *cpus);

/* Helpers the VM instances' templates share (mgr_vm_template.c): a
   vsock CID taken host-wide near one derived from id (*fd: its
   reservation); the agent's "ready" line awaited in the console log
   while the VMM child vmm lives; `bytes` random bytes as hex into out
   (room for 2 * bytes + 1, at most 64 bytes); a 'J' request then 'R'. */
int cl_mgr_vm_cid_reserve (const char *id, uint32_t *cid, int *fd, cl_error_t *err);
int cl_mgr_vm_wait_ready_line (const char *log, pid_t vmm, cl_error_t *err);
void cl_mgr_vm_hex_random (char *out, size_t bytes);
int cl_mgr_vm_send_request (int conn, json_t *spec, bool tty, cl_error_t *err);
/* A template's cache entry `tdir` (its state.json inside): 1 when it is
   there (its mtime set to now: used), 0 when the caller must build it,
   holding *lock_fd (flock of `tdir.lock`, concurrent builders wait for
   the first), -1 when its parent cannot be made or a build failed less
   than CL_MGR_VM_TEMPLATE_RETRY_S ago (`tdir.failed.log`): a build that
   failed lately would fail again, and every VM would pay a boot for
   nothing. */
#define CL_MGR_VM_TEMPLATE_RETRY_S 600
int cl_mgr_vm_template_claim (const char *tdir, int *lock_fd, cl_error_t *err);
/* The template VM vmm, booted with its console in tdir.tmp/console.log
   and its API on tdir.tmp/api.sock: once its agent says ready (and 1 s
   idle), snapshotted into tdir.tmp/snap, stopped (always), and the
   snapshot, its boot log inside, renamed to tdir. */
int cl_mgr_vm_template_take (const char *tdir, pid_t vmm, cl_error_t *err);
/* After a build that returned r: a failed one's console log kept as
   tdir.failed.log (for people, and the retry delay), tdir.tmp removed; a
   new one's cache (tdir's directory) pruned to its cap. */
void cl_mgr_vm_template_built (const char *tdir, int r);
/* SIGKILL to the VMM child vmm (if > 0), and its end awaited. */
void cl_mgr_vm_stop (pid_t vmm);

/* The network (vm_container_net.c): with a network namespace path in the
   spec, the shim joins it, creates a tap there and joins it to the
   container's interface with tc redirects both ways; the guest takes the
   interface's MAC, addresses and default route (`guest`, for the agent). */
struct cl_mgr_vmctr_net
{
  char *tap; /* NULL: no network namespace given, the guest has only lo */
  uint8_t mac[6];
  json_t *guest;  /* [{"mac", "addrs", "gateway"}] */
  char *hostname; /* of the UTS namespace the spec joins (a pod's), or NULL */
};
int cl_mgr_vmctr_net_setup (json_t *linux_obj, const char *id, struct cl_mgr_vmctr_net *net,
                            cl_error_t *err);
/* Removes the tap (best effort) and frees. */
void cl_mgr_vmctr_net_release (struct cl_mgr_vmctr_net *net);

#endif
