/* SPDX-License-Identifier: Apache-2.0 */
/* The container engine's public API: what `cloison-runtime` (the OCI CLI)
   and the manager call.  Every call takes the state root (the runtime's
   `--root`, NULL for CL_CONTAINER_DEFAULT_ROOT, or for a non-root caller
   $XDG_RUNTIME_DIR/cloison-runtime) where each container keeps
   <root>/<id>/state.json.

   Process model: `create` forks the container's init, which prepares
   everything (namespaces, mounts, limits) and then waits on
   <root>/<id>/exec.fifo until `start`.  The init is a child of the
   calling process: a long-lived caller (the manager) reaps it with
   waitpid() or sets SIGCHLD to SIG_IGN; the CLI exits, so it is reparented
   to the caller's subreaper (conmon, containerd-shim) as with runc. */
#ifndef CLOISON_CONTAINER_H
#define CLOISON_CONTAINER_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CL_CONTAINER_DEFAULT_ROOT "/run/cloison-runtime"

struct cl_container_create_opts
{
  const char *bundle;         /* directory of config.json (required) */
  json_t *config;             /* borrowed; when set, used instead of bundle/config.json */
  const char *pid_file;       /* written with the init's host pid */
  const char *console_socket; /* AF_UNIX path that receives the pty master */
  int preserve_fds;           /* fds 3 .. 3+N-1 are passed to the container */
  bool no_pivot;              /* MS_MOVE + chroot instead of pivot_root */
  bool no_new_keyring;
  bool detach;      /* run only: return once started instead of waiting */
  const int *stdio; /* int[3] for the container's stdin/out/err; NULL: inherit */
  /* Run in a microVM whatever the annotation says (cloison-runtime-vm;
     see vm_isolation.h); the annotation org.cloison.isolation=vm asks
     for it too. */
  bool vm_isolation;
};

/* Validates the bundle and prepares the container up to its user process,
   which starts at cl_ctr_start.  On failure nothing is left (no
   state directory, cgroup, mount or process). */
int cl_ctr_create (const char *root, const char *id, const struct cl_container_create_opts *opts,
                   cl_error_t *err);
int cl_ctr_start (const char *root, const char *id, cl_error_t *err);
/* create + start; without opts->detach waits for the process, fills
   *exit_status (a shell-style code: 128+signal when killed) and deletes
   the container. */
int cl_ctr_run (const char *root, const char *id, const struct cl_container_create_opts *opts,
                int *exit_status, cl_error_t *err);

/* The spec's state object: ociVersion, id, status (creating, created,
   running, stopped, paused), pid, bundle, annotations, plus rootfs,
   created (RFC 3339) and owner.  Caller decrefs *out. */
int cl_ctr_state (const char *root, const char *id, json_t **out, cl_error_t *err);
/* Array of state objects, one per container under root. */
int cl_ctr_list (const char *root, json_t **out, cl_error_t *err);

/* Checkpoint/restore with CRIU (checkpoint.c), runc's options. */
struct cl_container_checkpoint_opts
{
  const char *criu;                /* the criu binary, NULL: "criu" in PATH */
  const char *image_path;          /* required */
  const char *work_path;           /* logs and work files, NULL: image_path */
  const char *parent_path;         /* a pre-dump's images (incremental) */
  const char *manage_cgroups_mode; /* soft (default), full, strict, ignore */
  bool leave_running, tcp_established, ext_unix_sk, shell_job, file_locks;
  bool pre_dump;
  const char *bundle;   /* restore: NULL: the checkpointed container's */
  const char *pid_file; /* restore: written with the new init's pid */
  json_t *config;       /* the OCI config (borrowed); NULL: BUNDLE/config.json */
  const char *rootfs;   /* restore: NULL: the checkpointed container's */
  char **extra_args;    /* more criu options (NULL-terminated; NULL: none) */
  /* as runc does for podman's conmon: at dump, the init's stdio recorded
     (descriptors.json) and its files outside the container external; at
     restore, our stdin/stdout/stderr take the place of its pipes and of
     those files, and missing mount points are made in the root */
  bool runc_compat;
  /* dump: the init's network namespace is external even though the
     config creates it (the manager's: its veth is attached again at
     restore); restore: the namespace to restore it into (NULL: the
     config's path, if it gives one) */
  bool external_netns;
  const char *netns;
  /* restore (runc_compat) of a process that was on a terminal: a new pty
     is made, its master sent to this AF_UNIX path as at create, and its
     slave takes the dumped one's place (CRIU's external tty) */
  const char *console_socket;
};
/* `criu check` (criu NULL: "criu" in PATH), a pass remembered under
   root: one line when it fails on this kernel, or when criu cannot run. */
int cl_ctr_criu_check (const char *criu, const char *root, cl_error_t *err);
/* Dumps the running container into image_path; without leave_running (or
   pre_dump) the container is then gone, as with runc.  Fails with one
   line when `criu check` fails on this kernel. */
int cl_ctr_checkpoint (const char *root, const char *id,
                       const struct cl_container_checkpoint_opts *opts, cl_error_t *err);
/* Brings a checkpoint back as container `id`, running, under `root`. */
int cl_ctr_restore (const char *root, const char *id,
                    const struct cl_container_checkpoint_opts *opts, cl_error_t *err);

/* Signals the init, or (all) every process of the container. */
int cl_ctr_kill (const char *root, const char *id, int signo, bool all, cl_error_t *err);
/* Removes a stopped (or, with force, any: killed first) container: its
   processes, cgroup, state directory, and runs poststop hooks.  With
   force, a container that does not exist is not an error. */
int cl_ctr_delete (const char *root, const char *id, bool force, cl_error_t *err);
int cl_ctr_pause (const char *root, const char *id, cl_error_t *err);
int cl_ctr_resume (const char *root, const char *id, cl_error_t *err);
/* Thaws the container's cgroup whatever its recorded state (resume needs
   `paused`; a pause killed before it recorded the state leaves the cgroup
   frozen all the same). */
int cl_ctr_thaw (const char *root, const char *id, cl_error_t *err);
/* Host pids of the container's processes (caller frees *pids). */
int cl_ctr_pids (const char *root, const char *id, pid_t **pids, size_t *n, cl_error_t *err);
/* Applies a LinuxResources object to the running container. */
int cl_ctr_update (const char *root, const char *id, json_t *resources, cl_error_t *err);

struct cl_container_exec_opts
{
  const char *process_file; /* a process.json, as `exec --process` */
  json_t *process;          /* borrowed; used when process_file is NULL */
  const char *const *args;  /* NULL-terminated; used when neither is given */
  /* Overrides on top of the container's own process settings: */
  const char *cwd;
  const char *const *env; /* NULL-terminated KEY=VALUE, appended */
  const char *user;       /* "uid[:gid]" */
  bool tty;
  bool detach;
  const char *console_socket;
  const char *pid_file;
  int preserve_fds;
  const int *stdio; /* int[3]; NULL: inherit */
  /* runc's `exec --cgroup`: "SUB" (every hierarchy) or "CTRL[,CTRL]:SUB"
     (cgroup v1), an existing sub-cgroup of the container's; NULL-ended. */
  const char *const *cgroups;
  /* Called once the process runs inside the container, before the wait
     (a caller's lock can be released there). */
  void (*started) (void *opaque);
  void *started_opaque;
};

/* Runs a new process inside the running container (setns into its
   namespaces, same cgroup, capabilities, seccomp and rlimits as the
   process description says).  Without detach it waits and fills
   *exit_status; with detach *exit_status is 0 and the pid is in pid_file. */
int cl_ctr_exec (const char *root, const char *id, const struct cl_container_exec_opts *opts,
                 int *exit_status, cl_error_t *err);

/* A default config.json (as `runc spec`); caller decrefs. */
json_t *cl_ctr_default_spec (bool rootless);
/* The `features` document (runtime-spec features.md); caller decrefs. */
json_t *cl_ctr_features (void);

/* "SIGKILL", "KILL", "9" -> signal number. */
int cl_ctr_parse_signal (const char *s, int *signo, cl_error_t *err);

/* CVE-2019-5736: re-executes the calling program from a file that cannot
   be written (a read-only bind mount of itself made in a private mount
   namespace, which the new image leaves at once; else a sealed memfd),
   unless it already runs from one, so that a container process can never
   reach (and overwrite) the binary on the host through /proc/PID/exe.
   Call first thing in main() of any program that creates containers.
   Returns 0 when already protected; on success of the re-exec it does
   not return. */
int cl_ctr_ensure_sealed_exe (int argc, char **argv, cl_error_t *err);

#endif
