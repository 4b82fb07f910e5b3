/* How the manager runs a container: the only interface between instance
   logic and the container engine, so that the engine behind it can be
   swapped (the runtime library in src/container, or the small built-in
   one in engine_local.c) without touching instance code. */
#ifndef CLOISON_MANAGER_ENGINE_H
#define CLOISON_MANAGER_ENGINE_H

#include "common/error.h"

#include <stdint.h>
#include <sys/types.h>

struct engine_spec
{
  const char *id;       /* global id (cgroup leaf name) */
  const char *hostname; /* the instance name */
  const char *rootfs;   /* already mounted */
  char **argv;
  char **env;
  const char *cwd;
  int stdio[3];
  uint64_t memory; /* bytes, 0: no limit */
  unsigned cpus;   /* 0: no limit */
  /* Called once the init exists (namespaces, cgroup) and before it
     execs: networking goes here.  May be NULL. */
  int (*before_exec) (void *opaque, pid_t pid, cl_error_t *err);
  void *opaque;
};

/* Creates the container's init as a child of the caller, in new
   namespaces (pid, mount, uts, ipc, net, cgroup) and its own cgroup, and
   lets it exec.  On failure nothing is left (no process, no cgroup). */
int engine_start (const struct engine_spec *spec, pid_t *pid, cl_error_t *err);

/* Runs argv in the container of `init` (setns into its namespaces, its
   cgroup, its root) with the caller's stdio; *wstatus as from waitpid. */
int engine_exec (const char *id, pid_t init, char **argv, char **env, const char *cwd,
                 int *wstatus, cl_error_t *err);

/* Live limits (memory bytes, cpus; 0 leaves the value alone). */
int engine_set_limits (const char *id, uint64_t memory, unsigned cpus, cl_error_t *err);

/* Kills whatever is left in the cgroup and removes it.  Absent: success. */
int engine_destroy (const char *id, cl_error_t *err);

/* Freezes or thaws the cgroup (consistent snapshots of a running one). */
int engine_freeze (const char *id, int frozen, cl_error_t *err);

#endif
