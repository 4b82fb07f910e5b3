/* SPDX-License-Identifier: Apache-2.0 */
/* How the manager runs a container: the only interface between instance
   logic and the container engine.  Implemented in mgr_engine.c over the
   engine library (src/container/container.h); `root` is that engine's
   state directory (ROOT/containers) and `id` the container's global id. */
#ifndef CLOISON_MANAGER_ENGINE_H
#define CLOISON_MANAGER_ENGINE_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct engine_spec
{
  const char *root;
  const char *id;
  const char *bundle;   /* the instance directory */
  const char *hostname; /* the instance name */
  const char *rootfs;   /* already mounted */
  char **argv;
  char **env;
  const char *cwd;
  int stdio[3];
  uint64_t memory; /* bytes, 0: no limit */
  unsigned cpus;   /* 0: no limit */
  /* bind mounts [{source, path, readonly}]: shared folders and volumes
     (an image volume's source is where the monitor mounted it) */
  json_t *mounts;
  /* Called once the init exists (namespaces, cgroup) and before it
     execs: networking goes here.  May be NULL. */
  int (*before_exec) (void *opaque, pid_t pid, cl_error_t *err);
  void *opaque;
  /* checkpoint: the container's network namespace is external (its
     networks are attached again at restore); restore: the namespace,
     with its networks, to restore it into (NULL: a new one by CRIU) */
  bool net_external;
  const char *netns;
};

/* Creates the container's init as a child of the caller, in new
   namespaces (pid, mount, uts, ipc, net, cgroup) and its own cgroup, and
   lets it exec.  On failure nothing is left (no process, no cgroup). */
int cl_mgr_engine_start (const struct engine_spec *spec, pid_t *pid, cl_error_t *err);

/* Runs argv in the running container with the caller's stdio; env adds
   to the container's own.  *exit_code: shell style (128 + signal).
   started (NULL: none) is called once the process runs in the container. */
struct engine_exec
{
  char **argv;
  char **env;
  const char *cwd;  /* NULL: the container's */
  const char *user; /* "UID[:GID]"; NULL: the container's */
  bool tty;         /* a pty of the container's, proxied to our stdio */
  void (*started) (void *);
  void *opaque;
};
int cl_mgr_engine_exec (const char *root, const char *id, const struct engine_exec *e,
                        int *exit_code, cl_error_t *err);

/* Live limits (memory bytes, cpus; 0 leaves the value alone). */
int cl_mgr_engine_set_limits (const char *root, const char *id, uint64_t memory, unsigned cpus,
                              cl_error_t *err);

/* Kills whatever is left and removes the container (cgroup, state).
   Absent: success. */
int cl_mgr_engine_destroy (const char *root, const char *id, cl_error_t *err);

/* Freezes or thaws the container (consistent snapshots of a running one). */
int cl_mgr_engine_freeze (const char *root, const char *id, int frozen, cl_error_t *err);
/* Thaws it whatever its recorded state (before stopping it). */
int cl_mgr_engine_thaw (const char *root, const char *id, cl_error_t *err);

/* `criu check` as checkpoints run it (a pass remembered under root). */
int cl_mgr_engine_criu_check (const char *root, cl_error_t *err);
/* Checkpoints the running container with CRIU into image_dir, leaving
   it running (stateful snapshots) or not (moves: CRIU kills it, the
   container goes).  s: root, id, rootfs and mounts as it was started
   with.  One line when `criu check` fails on this kernel. */
int cl_mgr_engine_checkpoint (const struct engine_spec *s, const char *image_dir,
                              bool leave_running, cl_error_t *err);
/* Brings image_dir's checkpoint back as the container s->id, its init a
   child of the caller (CRIU's --restore-sibling); the rootfs mounted
   already. */
int cl_mgr_engine_restore (const struct engine_spec *s, const char *image_dir, pid_t *pid,
                           cl_error_t *err);

#endif
