/* SPDX-License-Identifier: Apache-2.0 */
/* Seccomp from the spec's linux.seccomp through libseccomp: every action
   (including SCMP_ACT_ERRNO with errnoRet, KILL_PROCESS, LOG, TRACE,
   NOTIFY), architectures, flags, argument conditions. */
#ifndef CLOISON_CONTAINER_SECCOMP_H
#define CLOISON_CONTAINER_SECCOMP_H

#include "common/error.h"

#include <jansson.h>

/* Checks linux.seccomp (may be NULL) without loading it: unknown actions,
   architectures, flags, bad operators, syscall names libseccomp knows on
   no architecture at all (names of other architectures are accepted and
   skipped at load, as runc does: podman's profile lists them).  Errors name the field
   ("linux.seccomp.syscalls[3].action: unknown action `SCMP_ACT_FOO`"). */
int cl_ctr_seccomp_validate (json_t *seccomp, cl_error_t *err);

/* Loads the filter into the calling process (the container's init, last
   step before exec; no_new_privs or CAP_SYS_ADMIN already in place).
   With a NOTIFY action, *notify_fd receives the listener fd, else -1. */
int cl_ctr_seccomp_load (json_t *seccomp, int *notify_fd, cl_error_t *err);

/* The same in two steps, so that the slow part runs in the runtime on
   the host before clone, and only the kernel call in the container's init
   (which inherits the program's memory):
   - cl_ctr_seccomp_compile: the profile (may be NULL: *out = NULL) as a BPF
     program.  With a cache_dir (e.g. "<runtime root>/seccomp", created
     0700 if missing; NULL for none) a profile compiled before is read back
     instead of regenerated (podman's default profile for three
     architectures: about 9 ms with libseccomp 2.5, 0.04 ms cached).
   - cl_ctr_seccomp_load_program: seccomp(SECCOMP_SET_MODE_FILTER) with the
     profile's flags; prog NULL is a no-op.  *notify_fd as above. */
struct cl_seccomp_program;
int cl_ctr_seccomp_compile (json_t *seccomp, const char *cache_dir, struct cl_seccomp_program **out,
                            cl_error_t *err);
int cl_ctr_seccomp_load_program (const struct cl_seccomp_program *prog, int *notify_fd,
                                 cl_error_t *err);
void cl_ctr_seccomp_program_free (struct cl_seccomp_program *prog);

/* Sends the listener fd to linux.seccomp.listenerPath with the container
   state, as the spec describes: one SCM_RIGHTS message whose data is
   {"ociVersion", "fds": ["seccompFd"], "pid": state.pid, "metadata":
   listenerMetadata, "state": state}.  A no-op without listenerPath or
   with notify_fd < 0.  Call it where listenerPath is reachable (the
   runtime on the host). */
int cl_ctr_seccomp_send_listener (json_t *seccomp, int notify_fd, json_t *state, cl_error_t *err);

#endif
