/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the files of src/manager only. */
#ifndef CLOISON_MANAGER_INTERNAL_H
#define CLOISON_MANAGER_INTERNAL_H

#include "common/db.h"
#include "common/error.h"
#include "manager/manager.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define MANAGER_MAX_LOCKS 4

struct cl_manager
{
  char *root;
  sqlite3 *db;
  /* 8 hex digits from the root's path: global names (cgroups, container
     ids) carry it so that two state roots never collide. */
  char tag[9];
  /* instance locks held (lock.c), -1 when free */
  int locks[MANAGER_MAX_LOCKS];
  char *lock_names[MANAGER_MAX_LOCKS];
  /* cl_mgr_store_each's statements (all, running), prepared once: a
     daemon lists with the same handle again and again */
  sqlite3_stmt *each_stmt[2];
  uint32_t serial; /* this handle's, unique in the process */
};

enum
{
  KIND_CONTAINER,
  KIND_VM,
};

struct instance
{
  char *name;
  int kind;
  char *image;
  char *status; /* creating, stopped, running, frozen (running, paused), error */
  json_t *config;
  int64_t created;
  pid_t monitor_pid;
  uint64_t monitor_start; /* /proc start time, so a reused pid is not ours */
  pid_t init_pid;
  uint64_t init_start;
  bool has_exit_code;
  int exit_code;
};

/* --- mgr_store.c: tables, rows, intents --- */
int cl_mgr_store_init (struct cl_manager *m, cl_error_t *err);
/* Error "instance `NAME` not found" when absent. */
int cl_mgr_store_get (struct cl_manager *m, const char *name, struct instance **out,
                      cl_error_t *err);
void cl_mgr_instance_free (struct instance *inst);
#define cleanup_instance __attribute__ ((cleanup (cl_mgr_instance_freep)))
void cl_mgr_instance_freep (struct instance **p);
/* running or frozen: a workload exists */
bool cl_mgr_instance_is_running (const struct instance *inst);
bool cl_mgr_instance_is_frozen (const struct instance *inst);
/* The image's id (config image_id), else the name it was made from. */
const char *cl_mgr_instance_image_id (struct instance *inst);
/* Inserts the row (status creating) and an intent owned by this process,
   in one transaction.  Error "instance `NAME` already exists". */
int cl_mgr_store_create (struct cl_manager *m, const struct instance *inst, const char *op,
                         int64_t *intent, cl_error_t *err);
int cl_mgr_store_set_status (struct cl_manager *m, const char *name, const char *status,
                             cl_error_t *err);
int cl_mgr_store_set_running (struct cl_manager *m, const char *name, pid_t monitor,
                              uint64_t mstart, pid_t init, uint64_t istart, cl_error_t *err);
/* Status stopped with an exit code (has_code false: unknown). */
int cl_mgr_store_set_stopped (struct cl_manager *m, const char *name, bool has_code, int code,
                              cl_error_t *err);
int cl_mgr_store_set_config (struct cl_manager *m, const char *name, json_t *config,
                             cl_error_t *err);
/* Removes the row, and the intent `intent` (> 0) in the same transaction. */
int cl_mgr_store_delete (struct cl_manager *m, const char *name, int64_t intent, cl_error_t *err);
/* Runs one statement with no result rows; `types` has one letter per
   argument: s (const char *), i (int64_t), anything else NULL. */
int cl_mgr_store_run (struct cl_manager *m, const char *sql, const char *types, cl_error_t *err,
                      ...);
/* Every instance by name (or those recorded running or frozen, in no
   order), in one SELECT, without a copy: fn gets each row as an
   instance whose strings are the statement's (valid during the call,
   not to be freed or kept), its config NULL. */
typedef void (*cl_mgr_store_fn) (void *opaque, struct instance *inst);
int cl_mgr_store_each (struct cl_manager *m, bool running_only, cl_mgr_store_fn fn, void *opaque,
                       cl_error_t *err);

int cl_mgr_intent_begin (struct cl_manager *m, const char *op, const char *instance,
                         const char *arg, int64_t *id, cl_error_t *err);
int cl_mgr_intent_set_arg (struct cl_manager *m, int64_t id, const char *arg, cl_error_t *err);
/* The operation is done: a failure to record it fails the operation. */
int cl_mgr_intent_end (struct cl_manager *m, int64_t id, cl_error_t *err);
/* On a failure path: best effort (a left intent is undone by recovery). */
void cl_mgr_intent_abandon (struct cl_manager *m, int64_t id);
/* 1 with its owner, 0 gone: read afresh, not from an older snapshot. */
int cl_mgr_intent_exists (struct cl_manager *m, int64_t id, pid_t *owner, uint64_t *owner_start,
                          cl_error_t *err);

int cl_mgr_store_snapshot_add (struct cl_manager *m, const char *instance, const char *snap,
                               bool stateful, cl_error_t *err);
int cl_mgr_store_snapshot_ready (struct cl_manager *m, const char *instance, const char *snap,
                                 cl_error_t *err);
/* 1 found (ready), 0 absent; *stateful optional. */
int cl_mgr_store_snapshot_get (struct cl_manager *m, const char *instance, const char *snap,
                               bool *stateful, cl_error_t *err);
int cl_mgr_store_snapshot_del (struct cl_manager *m, const char *instance, const char *snap,
                               cl_error_t *err);

/* --- lock.c: one command at a time changes an instance --- */
struct instance_lock
{
  struct cl_manager *m;
  int fd;
};
/* Waits (up to 2 minutes, then an EBUSY error naming the instance). */
int cl_mgr_instance_lock (struct cl_manager *m, const char *name, struct instance_lock *l,
                          cl_error_t *err);
/* 1 taken, 0 held by another command, -1 error. */
int cl_mgr_instance_trylock (struct cl_manager *m, const char *name, struct instance_lock *l,
                             cl_error_t *err);
void cl_mgr_instance_unlock (struct instance_lock *l);
bool cl_mgr_instance_lock_held (struct cl_manager *m, const char *name);
#define cleanup_instance_lock __attribute__ ((cleanup (cl_mgr_instance_unlock)))
/* In a forked child that outlives the operation: drop its copies. */
void cl_mgr_locks_close (struct cl_manager *m);

/* --- mgr_move_out.c: recovery of a move out of this root --- */
/* The intent "move-out" of `name` at `stage` (its arg) whose owner died:
   started again when the move had stopped it and no copy can run
   elsewhere (CL_MGR_MOVE_STOPPED), else left as it is; the intent ends. */
int cl_mgr_move_out_recover (struct cl_manager *m, const char *name, const char *stage, int64_t id,
                             cl_error_t *err);

/* --- proc.c: processes we do not own as children --- */
bool cl_mgr_proc_alive (pid_t pid, uint64_t start);
/* Waits up to timeout_ms for a process (not our child) to exit; 1 exited,
   0 still alive. */
int cl_mgr_proc_wait_exit (pid_t pid, uint64_t start, int timeout_ms);
/* Exit status to shell convention (128 + signal). */
int cl_mgr_proc_exit_code (int wstatus);

/* --- manager.c --- */
/* Opens without reconciling (monitors, which must not undo others' work). */
int cl_mgr_open_raw (const char *root, struct cl_manager **out, cl_error_t *err);
/* Settings of our connections (see mgr_store.c). */
void cl_mgr_db_tune (sqlite3 *db);
char *cl_mgr_instance_dir (struct cl_manager *m, const char *name);
/* "cl-TAG-NAME": cgroups and engine ids. */
char *cl_mgr_instance_global_id (struct cl_manager *m, const char *name);
/* The container engine's state directory: ROOT/containers. */
char *cl_mgr_engine_root (struct cl_manager *m);

/* --- the kinds: what differs between a container and a VM ---
   Each kind fills one table (kind_container.c, mgr_vm.c); the operations
   above (lifecycle.c, mgr_snapshot.c, instance.c) call through it and the
   kinds never call back up.  A NULL entry means the kind has no such
   step. */
struct mgr_image;
struct monitor_args;

/* How one start goes: passed down as arguments, never kept in the
   instance's saved config. */
/* INSTANCE/checkpoint: a container's processes saved by
   cl_mgr_instance_checkpoint (a stateful move), restored by its next
   start. */
#define CL_MGR_CHECKPOINT_DIR "checkpoint"

struct start_opts
{
  /* run: the workload gets our stdio and the monitor stays our child */
  bool attached;
  /* resume the state saved by a stateful snapshot (its `state`
     directory) instead of booting (VMs) or starting (containers: CRIU's
     images) */
  const char *restore_dir;
  /* VMs: a listening TCP socket (>= 0; -1 or 0: none) a live migration
     comes in on, instead of a boot (a stateful move's destination) */
  int incoming_fd;
  const char *incoming_token; /* the token the source's stream carries */
};

/* How long a stop waits for a workload it has killed (or, after a VM's
   power button went unheard, for the one it signals). */
#define FORCED_STOP_WAIT_MS 10000

struct instance_ops
{
  const char *kind; /* "container", "vm": as `list` and `info` say it */
  /* launch: the instance's files under cl_mgr_instance_dir (containers the
     overlay's upper, work and mount point; VMs the disk from the image) */
  int (*create) (struct cl_manager *m, struct instance *inst, struct mgr_image *img,
                 cl_error_t *err);
  /* copy: copy-on-write copy of `from`'s files (stopped or running) from
     its directory sdir into ddir (made already) */
  int (*copy) (struct cl_manager *m, struct instance *from, const char *sdir, const char *ddir,
               cl_error_t *err);
  /* start: the kind's part of the monitor's arguments */
  int (*prepare) (struct cl_manager *m, struct instance *inst, struct mgr_image *img,
                  const struct start_opts *o, struct monitor_args *a, cl_error_t *err);
  /* stop: makes a workload that may be frozen take signals again */
  void (*wake) (struct cl_manager *m, struct instance *inst);
  /* stop, graceful: asks the workload to end and waits, up to
     *timeout_ms; true when it ended, else *timeout_ms is what SIGTERM
     gets next (NULL: SIGTERM at once) */
  bool (*shutdown) (struct cl_manager *m, struct instance *inst, int *timeout_ms);
  /* freeze: pauses (freeze true) or resumes the running workload
     (containers: the cgroup freezer; VMs: the VMM's vCPUs) */
  int (*freeze) (struct cl_manager *m, struct instance *inst, bool freeze, cl_error_t *err);
  /* stop: removes what the gone workload left (containers: the engine's
     container and cgroup) */
  int (*halt) (struct cl_manager *m, struct instance *inst, cl_error_t *err);
  /* snapshot: copies the instance's state from its directory dir into
     the snapshot's directory sdir (stateful: VMs also the VMM's memory
     and devices) */
  int (*snapshot) (struct cl_manager *m, struct instance *inst, const char *dir, const char *sdir,
                   bool stateful, cl_error_t *err);
  /* checkpoint: the running workload's processes into the directory
     images (CRIU), left running or not (NULL: the kind cannot) */
  int (*checkpoint) (struct cl_manager *m, struct instance *inst, const char *dir,
                     const char *images, bool leave_running, cl_error_t *err);
  /* restore: copies the snapshot's copy `from` (restore_paths) to `staged` */
  int (*restore) (const char *from, const char *staged, cl_error_t *err);
  /* the caller holds the instance's lock `held`: released once the
     command runs (a snapshot or restore may then go on) */
  int (*exec) (struct cl_manager *m, struct instance *inst, const struct cl_exec_spec *spec,
               struct instance_lock *held, int *exit_code, cl_error_t *err);
  /* interactive console of a running instance (NULL: a shell through exec) */
  int (*console) (struct cl_manager *m, struct instance *inst, int *exit_code, cl_error_t *err);
  /* live limits of a running instance (0 leaves one alone,
     CL_MGR_LIMIT_NONE lifts it) */
  int (*set_limits) (struct cl_manager *m, struct instance *inst, uint64_t memory, unsigned cpus,
                     cl_error_t *err);
  /* live migration of the running workload to `uri` (a destination's
     VMM, docs/move.md; `token`: what it expects in the stream's header,
     or NULL), to its end: 0 once it runs there and stopped
     here (*figures: the VMM's last status), else it runs on here (NULL:
     the kind cannot) */
  int (*migrate) (struct cl_manager *m, struct instance *inst, const char *uri, const char *token,
                  json_t **figures, cl_error_t *err);
};

extern const struct instance_ops container_ops; /* kind_container.c */
extern const struct instance_ops vm_ops;        /* mgr_vm.c */

/* --- kinds.c --- */
const struct instance_ops *cl_mgr_instance_ops (const struct instance *inst);

/* --- monitor.c --- */
/* Starts the instance's monitor process (container or VM), which records
   status running then, at exit, stopped.  o->attached: the workload gets
   our stdio and the monitor stays our child (*monitor receives its pid). */
int cl_mgr_monitor_spawn (struct cl_manager *m, struct instance *inst, const struct start_opts *o,
                          pid_t *monitor, cl_error_t *err);

/* --- lifecycle.c: start, stop and destroy any kind --- */
/* The row, checked against what runs (cl_mgr_reconcile_instance). */
int cl_mgr_instance_load (struct cl_manager *m, const char *name, struct instance **out,
                          cl_error_t *err);
/* Checks a running/creating instance against the processes; updates it. */
int cl_mgr_reconcile_instance (struct cl_manager *m, struct instance *inst, cl_error_t *err);
/* The caller holds the instance's lock (cl_mgr_instance_start_locked and
   cl_mgr_instance_stop_locked too). */
int cl_mgr_instance_start_locked (struct cl_manager *m, const char *name,
                                  const struct start_opts *o, cl_error_t *err);
int cl_mgr_instance_stop_locked (struct cl_manager *m, const char *name, int timeout_s, bool force,
                                 cl_error_t *err);
/* Stops whatever runs for the instance; graceful for timeout_ms first
   (0: forced at once). */
int cl_mgr_instance_halt (struct cl_manager *m, struct instance *inst, int timeout_ms,
                          cl_error_t *err);
/* Stops whatever runs for the instance and removes its files and rows;
   its row goes with the intent `intent` (> 0) in one transaction. */
int cl_mgr_instance_destroy (struct cl_manager *m, const char *name, int64_t intent,
                             cl_error_t *err);

/* --- reconcile.c: after a crash --- */
/* Returns how many intents of dead owners it found (0: no crash to
   clean after), or -1. */
int cl_mgr_reconcile_intents (struct cl_manager *m, cl_error_t *err);

/* Fault injection (-Dfault_injection=true, the test build only): SIGKILLs
   the process at STEP when $CLOISON_MOVE_TEST_CRASH_AT names it, to check
   the recovery of a move's receive.  Nothing in a default build. */
#ifdef CLOISON_FAULT_INJECTION
#define cl_mgr_crash_point(step) cl_crash_point ("CLOISON_MOVE_TEST_CRASH_AT", step)
#else
#define cl_mgr_crash_point(step) ((void)0)
#endif
/* --- volume_store.c: volumes as the kinds and launch see them --- */
/* "SOURCE:/PATH[:ro|:rw]" (volumes, shared folders); `what` names the
   option in errors.  Caller frees *source and *path. */
int cl_mgr_mount_spec_parse (const char *spec, const char *what, char **source, char **path,
                             bool *ro, cl_error_t *err);
/* ROOT/volumes/NAME */
char *cl_mgr_volume_dir (struct cl_manager *m, const char *name);
/* "volume `NAME` not found" when absent; type and size optional. */
int cl_mgr_volume_type (struct cl_manager *m, const char *name, char **type, uint64_t *size,
                        cl_error_t *err);
/* Records an attachment (an image volume: one instance at a time). */
int cl_mgr_volume_add_attachment (struct cl_manager *m, const char *volume, const char *instance,
                                  const char *path, bool readonly, cl_error_t *err);
/* Launch: the "VOLUME:PATH[:ro]" entries. */
int cl_mgr_volume_attach_specs (struct cl_manager *m, const char *instance, const char **specs,
                                size_t n, cl_error_t *err);
/* What the instance has attached: [{name, type (dir, image), source (the
   directory or image), path, readonly}]. */
int cl_mgr_volume_mounts (struct cl_manager *m, const char *instance, json_t **out,
                          cl_error_t *err);

/* --- fscopy.c --- */
/* Runs argv (searched in PATH) and waits; a non-zero exit is an error
   naming argv[0].  quiet: its stdout and stderr go to /dev/null. */
int cl_mgr_spawn_wait (char **argv, bool quiet, cl_error_t *err);
/* Copies a tree preserving owners, modes, xattrs (overlay whiteouts),
   with reflinks where the filesystem has them. */
int cl_mgr_tree_copy (const char *src, const char *dst, cl_error_t *err);
/* Clones a file (FICLONE), else copies it sparsely; then sets its size to
   `size` when size > 0. */
int cl_mgr_file_clone (const char *src, const char *dst, uint64_t size, cl_error_t *err);
/* Extracts a tar archive (compressed or not, sparse files kept) into dir,
   owners, modes and xattrs kept. */
int cl_mgr_tree_extract (const char *archive, const char *dir, cl_error_t *err);

#endif
