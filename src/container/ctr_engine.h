/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the engine's command files (container.c, exec.c). */
#ifndef CLOISON_CONTAINER_ENGINE_H
#define CLOISON_CONTAINER_ENGINE_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct cl_seccomp_program;

int cl_ctr_engine_write_pid_file (const char *path, pid_t pid, cl_error_t *err);
/* fork with CLONE_NEW* `flags`; with cgroup_fd >= 0 the child starts in
   that cgroup v2 directory (*placed says whether the kernel did it). */
pid_t cl_ctr_engine_clone (int flags, int cgroup_fd, bool *placed);
char **cl_ctr_engine_strv_append (char **v, char *s);
void cl_ctr_engine_kill_and_reap (pid_t pid);
/* The seccomp listener fd follows on `sync_fd`: hand it to
   linux.seccomp.listenerPath with the state. */
int cl_ctr_engine_forward_seccomp_listener (int sync_fd, json_t *seccomp, json_t *state,
                                            cl_error_t *err);
/* linux.seccomp compiled on the host, before clone, through the
   compiled-filter cache `<state root>/.seccomp` (root-owned, 0700; a
   leading dot is no valid container id); *prog NULL without a profile. */
int cl_ctr_engine_compile_seccomp (const char *root, json_t *seccomp,
                                   struct cl_seccomp_program **prog, cl_error_t *err);
/* Signals to the runtime go to `pid` while on; with a proxied terminal
   (`master` >= 0) SIGWINCH resizes it instead. */
void cl_ctr_engine_set_forwarding (pid_t pid, int master, bool on);
/* Waits for `pid`: its exit code, or 128+signal. */
int cl_ctr_engine_wait_exit_status (pid_t pid);

#endif
