/* The last steps before a container process runs, shared by the init and
   `exec`: stdio/terminal, rlimits, OOM score, keyring, capabilities, user
   and groups, umask, no_new_privs, cwd (checked inside the root), seccomp,
   then execve. */
#ifndef CLOISON_CONTAINER_PROCESS_H
#define CLOISON_CONTAINER_PROCESS_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>

struct process_setup
{
  json_t *process; /* validated process object */
  json_t *seccomp; /* linux.seccomp or NULL */
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
void process_close_fds (int preserve, const int *keep, int nkeep);
/* "IOPRIO_CLASS_BE" -> 2; -1 when unknown. */
int process_ioprio_class (const char *name);
/* "SCHED_RR" -> SCHED_RR, "SCHED_FLAG_RECLAIM" -> its bit; -1 when
   unknown. */
int process_sched_policy (const char *name);
int process_sched_flag (const char *name);
/* Everything that needs no start signal; *exe receives the program path
   resolved with the process's PATH. */
int process_prepare (struct process_setup *ps, char **exe, cl_error_t *err);
/* Loads seccomp when it had to wait (noNewPrivileges) and execs.  Returns
   only on failure. */
int process_exec (struct process_setup *ps, const char *exe, cl_error_t *err);

#endif
