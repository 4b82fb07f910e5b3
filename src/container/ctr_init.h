/* SPDX-License-Identifier: Apache-2.0 */
/* The container's init, between clone and the user's program: joins and
   creates namespaces, builds the root (mounts, devices, console, masked
   and read-only paths, sysctl), pivots into it, sets the process up and
   waits for `start`. */
#ifndef CLOISON_CONTAINER_INIT_H
#define CLOISON_CONTAINER_INIT_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct cl_seccomp_program;

struct init_args
{
  json_t *config;
  const char *rootfs; /* absolute, resolved */
  const char *bundle;
  const char *id;
  int sync_fd;
  int fifo_fd; /* O_PATH fd of exec.fifo; -1: wait for SYNC_START instead */
  int preserve_fds;
  bool no_pivot, no_new_keyring;
  int ns_new;   /* CLONE_NEW* flags created by clone */
  const int *stdio;
  /* Files the init writes "0" to, to join its cgroups itself: v1 `tasks`
     files (moving one thread skips the global lock whose RCU grace
     period costs milliseconds), and a v2 cgroup.procs when clone could
     not place it there (CLONE_INTO_CGROUP). */
  char **cgroup_join;
  /* linux.seccomp compiled by the runtime (NULL: none). */
  const struct cl_seccomp_program *seccomp;
};

__attribute__ ((noreturn)) void cl_ctr_init_run (struct init_args *a);
/* True when the init forks the real init (a pid namespace joined by
   path, a new time namespace) and reports its pid with SYNC_PID. */
bool cl_ctr_init_forks_real_init (json_t *linux_obj);

/* Files to write "0" to so that the caller joins the cgroups of `saved`
   (cl_ctr_cgroup_save's form); the v2 directory, when there is one, comes
   back as an fd for CLONE_INTO_CGROUP instead (*v2_fd, else -1).  The
   vector and strings are freed by the caller. */
char **cl_ctr_cgroup_join_files (json_t *saved, int *v2_fd, char **v2_procs);
/* Writes "0" into each file: the caller's thread joins those cgroups. */
int cl_ctr_cgroup_join_self (char **files, cl_error_t *err);

#endif
