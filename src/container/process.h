/* SPDX-License-Identifier: Apache-2.0 */
/* The last steps before a container process runs, shared by the init and
   `exec`: stdio/terminal, rlimits, OOM score, keyring, capabilities, user
   and groups, umask, no_new_privs, cwd (checked inside the root), seccomp,
   then execve. */
#ifndef CLOISON_CONTAINER_PROCESS_H
#define CLOISON_CONTAINER_PROCESS_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>

struct cl_seccomp_program;

struct process_setup
{
  json_t *process; /* validated process object */
  json_t *seccomp; /* linux.seccomp or NULL */
  /* linux.seccomp compiled by the runtime before clone (cl_ctr_seccomp_compile,
     from its cache); NULL with seccomp NULL.  Only the kernel call is left
     for the container process. */
  const struct cl_seccomp_program *seccomp_prog;
  json_t *state;   /* for a seccomp listener; may be NULL */
  const char *id;
  bool no_new_keyring;
  int console_slave; /* -1: none */
  const int *stdio;  /* int[3] or NULL */
  /* A seccomp listener fd goes to the runtime through this socket (the
     listenerPath is a host path, out of reach after pivot_root). */
  int sync_fd;
};

/* Closes every fd >= 3 except 3 .. 3+preserve-1 and those in keep[]
   (CVE-2024-21626: nothing of the host leaks into the container). */
void cl_ctr_process_close_fds (int preserve, const int *keep, int nkeep);
/* Everything that needs no start signal; *exe receives the program path
   resolved with the process's PATH. */
int cl_ctr_process_prepare (struct process_setup *ps, char **exe, cl_error_t *err);
/* Loads seccomp when it had to wait (noNewPrivileges) and execs.  Returns
   only on failure. */
int cl_ctr_process_exec (struct process_setup *ps, const char *exe, cl_error_t *err);

#endif
