/* SPDX-License-Identifier: Apache-2.0 */
/* Instances: containers and microVMs behind one set of operations, with
   their state in the SQLite state database (ROOT/cloison.db) and their
   files under ROOT/instances/NAME.

   Every multi-step operation records an intent row first (operation,
   instance, owner pid); when its owner dies in the middle (kill -9), the
   next cl_mgr_open finds the intent and removes or completes the half
   done work, and recorded statuses are checked against what really runs
   (monitor process alive, container init alive). */
#ifndef CLOISON_MANAGER_H
#define CLOISON_MANAGER_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cl_manager;

/* Opens the state root (creating it) and reconciles interrupted work. */
int cl_mgr_open (const char *root, struct cl_manager **out, cl_error_t *err);
void cl_mgr_close (struct cl_manager *m);
void cl_mgr_closep (struct cl_manager **m);
#define cleanup_mgr __attribute__ ((cleanup (cl_mgr_closep)))

struct cl_launch_opts
{
  const char *image;
  const char *name;
  bool vm;
  unsigned cpus;      /* 0: default (1) */
  uint64_t memory;    /* bytes; 0: default (no limit for containers, 256M for VMs) */
  uint64_t disk_size; /* bytes; 0: the image disk's size (VMs) */
  const char **env;   /* "K=V" */
  size_t n_env;
  const char **networks;
  size_t n_networks;
  bool no_network;
  bool cold;          /* VMs: boot, never a clone of the warm template (docs/templates.md) */
  const char **ports; /* "HOSTPORT:PORT[/tcp|udp]" */
  size_t n_ports;
  char **argv; /* NULL: the image's command */
  size_t argc;
  /* VMs: boot this kernel (and initrd, command line) instead of the
     image's (tiny test guests) */
  const char *kernel;
  const char *initrd;
  const char *cmdline;
  /* shared folders "HOSTDIR:PATH[:ro]": bind mounts in containers,
     virtio-fs shares mounted by the guest's init in VMs */
  const char **mounts;
  size_t n_mounts;
  /* volumes attached at launch "VOLUME:PATH[:ro]" (volume.h) */
  const char **volumes;
  size_t n_volumes;
  /* "KEY=VALUE", kept in the config (a Cloisonfile's project) */
  const char **labels;
  size_t n_labels;
};

/* Creates and starts an instance; returns once it runs. */
int cl_mgr_instance_launch (struct cl_manager *m, const struct cl_launch_opts *o, cl_error_t *err);
/* Ephemeral and attached: the command's stdio is ours; *exit_code is the
   command's exit status (128 + signal when killed).  Nothing is left. */
int cl_mgr_instance_run (struct cl_manager *m, const struct cl_launch_opts *o, int *exit_code,
                         cl_error_t *err);

/* Array of objects {name, kind, image, status, created, pid,
   exit_code}, by name. */
int cl_mgr_instance_list (struct cl_manager *m, json_t **out, cl_error_t *err);

/* The same, one instance at a time, without building JSON (a list of
   thousands answered as text by the API).  Strings live until fn
   returns. */
struct cl_instance_summary
{
  const char *name, *kind, *image, *status;
  int64_t created;
  int pid; /* the workload's init; 0 when not running */
  bool has_exit_code;
  int exit_code;
};
typedef void (*cl_mgr_instance_fn) (void *opaque, const struct cl_instance_summary *s);
int cl_mgr_instance_each (struct cl_manager *m, cl_mgr_instance_fn fn, void *opaque,
                          cl_error_t *err);
/* cl_mgr_instance_each in two steps, for a caller that keeps what it
   made of a list: check brings the instances recorded running up to
   date with their processes and gives the state's version (*version:
   the same value while nothing in the state changed since, this
   handle's changes and others'; 0 when unknown); rows then lists. */
int cl_mgr_instance_check (struct cl_manager *m, uint64_t *version, cl_error_t *err);
int cl_mgr_instance_rows (struct cl_manager *m, cl_mgr_instance_fn fn, void *opaque,
                          cl_error_t *err);
int cl_mgr_instance_info (struct cl_manager *m, const char *name, json_t **out, cl_error_t *err);
/* The error for a command that needs a running instance: "is not running"
   when stopped, "is frozen, not running" and the like otherwise. */
int cl_mgr_not_running (cl_error_t *err, const char *name, const char *status);

int cl_mgr_instance_start (struct cl_manager *m, const char *name, cl_error_t *err);
/* Graceful (SIGTERM; ACPI-less VMs: the monitor's shutdown), then forced
   after timeout_s seconds; force: at once. */
int cl_mgr_instance_stop (struct cl_manager *m, const char *name, int timeout_s, bool force,
                          cl_error_t *err);
int cl_mgr_instance_restart (struct cl_manager *m, const char *name, int timeout_s,
                             cl_error_t *err);
/* Freezes (freeze true) a running instance, whose status reads "frozen"
   then, or thaws a frozen one back to running: containers through the
   cgroup freezer, VMs by pausing the VMM.  Anything else: a conflict. */
int cl_mgr_instance_freeze (struct cl_manager *m, const char *name, bool freeze, cl_error_t *err);
/* A running instance is refused unless force. */
int cl_mgr_instance_delete (struct cl_manager *m, const char *name, bool force, cl_error_t *err);

/* exec's terminal (VMs): a pty in the guest when our stdin and stdout are
   terminals (auto), or forced on or off.  Containers run the command on
   our own stdio, or with `on` on a pty of the container's proxied to it. */
enum cl_exec_tty
{
  CL_EXEC_TTY_AUTO,
  CL_EXEC_TTY_ON,
  CL_EXEC_TTY_OFF,
};
/* Runs argv inside the instance with our stdio (a VM's command gets our
   stdin streamed, and a pty per `tty`); *exit_code as for run. */
int cl_mgr_instance_exec (struct cl_manager *m, const char *name, char **argv, const char **env,
                          size_t n_env, enum cl_exec_tty tty, int *exit_code, cl_error_t *err);
/* The same with a working directory and a user (containers only: a VM's
   guest agent runs commands as root in /). */
struct cl_exec_spec
{
  char **argv;
  const char **env; /* "K=V", added to the instance's own */
  size_t n_env;
  enum cl_exec_tty tty;
  const char *cwd;  /* NULL: the instance's */
  const char *user; /* "UID[:GID]"; NULL: the instance's */
};
int cl_mgr_instance_exec_spec (struct cl_manager *m, const char *name,
                               const struct cl_exec_spec *spec, int *exit_code, cl_error_t *err);
/* The instance's console output log (container stdout/stderr, VM serial). */
int cl_mgr_instance_log_path (struct cl_manager *m, const char *name, char **path, cl_error_t *err);
/* Interactive: containers get a shell, VMs their serial console. */
int cl_mgr_instance_console (struct cl_manager *m, const char *name, int *exit_code,
                             cl_error_t *err);

/* key: limits.memory, limits.cpu.  Applied live when running (a
   container's; a VM's at its next start).  value NULL: back to the
   default, no limit. */
#define CL_MGR_LIMIT_NONE UINT64_MAX /* set_limits: a limit lifted */
int cl_mgr_instance_config_set (struct cl_manager *m, const char *name, const char *key,
                                const char *value, cl_error_t *err);
/* Copy-on-write clone of a stopped or running instance's files (stopped
   result). */
int cl_mgr_instance_copy (struct cl_manager *m, const char *src, const char *dst, cl_error_t *err);
/* An instance moved from another host (docs/move.md): a new stopped
   instance `name` of kind "container" or "vm" with `config` (its image_id
   names an image this host has), its files extracted from `archive` (a
   tar, zstd-compressed or not, of the source's instance directory: upper/
   or disk.img).  image_layers (NULL-terminated, lowest first; NULL: the
   image must be here): the archive also holds the image, in image/ (see
   cl_img_receive).  Undone on failure, and by the recovery when the
   process dies midway (intent "receive").  volumes (NULL-terminated
   "VOLUME:/PATH[:ro]", NULL: none): this host's volumes it is attached to,
   as launch's --volume.  live (NULL: none): a running VM's live migration
   comes in instead of its disk (docs/move.md). */
struct cl_mgr_live_in
{
  int listen_fd;      /* a listening TCP socket: the source's VMM connects */
  uint64_t disk_size; /* the disk's, made sparse here and filled by the
                         block migration */
  const char *token;  /* the source's stream header must carry it */
  /* called once the instance is made, just before its monitor accepts
     on listen_fd: the caller tells the source where to send */
  void (*listening) (void *opaque);
  void *opaque;
};
int cl_mgr_instance_receive (struct cl_manager *m, const char *name, const char *kind,
                             json_t *config, const char *archive, char **image_layers,
                             char **volumes, const struct cl_mgr_live_in *live, cl_error_t *err);

/* A stateful move's first step: the running container's processes into
   INSTANCE/checkpoint (CRIU), which ends them; the instance is stopped
   then, and its next start restores them (and drops the checkpoint). */
int cl_mgr_instance_checkpoint (struct cl_manager *m, const char *name, cl_error_t *err);
/* Whether containers can be checkpointed here: `criu check` as their
   checkpoints run it (one line when it fails; a pass remembered). */
int cl_mgr_checkpoint_check (struct cl_manager *m, cl_error_t *err);

/* A live move's source side: the running VM's live migration (its disk
   too) to `uri`, where a destination's monitor waits (docs/move.md), with
   the `token` it expects (NULL: none).
   0 when it runs there: it is stopped here then (*figures: the VMM's
   last migration status, caller frees); -1: it runs on here. */
int cl_mgr_instance_migrate (struct cl_manager *m, const char *name, const char *uri,
                             const char *token, json_t **figures, cl_error_t *err);

/* A move out of this root (docs/move.md), as its mover (the API's move
   operation) goes: an intent whose stage tells the recovery what to do
   if the mover's process dies before cl_mgr_move_out_end. */
#define CL_MGR_MOVE_HERE "here"       /* nothing changed here yet: nothing to do */
#define CL_MGR_MOVE_STOPPED "stopped" /* stopped or checkpointed by the move, no
                                         copy can run elsewhere: start it again */
#define CL_MGR_MOVE_HANDED "handed"   /* the destination may run it (its start
                                         asked, or a live migration under way):
                                         leave it as it is */
int cl_mgr_move_out_begin (struct cl_manager *m, const char *name, int64_t *id, cl_error_t *err);
int cl_mgr_move_out_stage (struct cl_manager *m, const char *name, int64_t id, const char *stage,
                           cl_error_t *err);
void cl_mgr_move_out_end (struct cl_manager *m, const char *name, int64_t id);

int cl_mgr_snapshot_create (struct cl_manager *m, const char *instance, const char *snap,
                            bool stateful, cl_error_t *err);
/* Array of {name, created, stateful}. */
int cl_mgr_snapshot_list (struct cl_manager *m, const char *instance, json_t **out,
                          cl_error_t *err);
int cl_mgr_snapshot_restore (struct cl_manager *m, const char *instance, const char *snap,
                             cl_error_t *err);
int cl_mgr_snapshot_delete (struct cl_manager *m, const char *instance, const char *snap,
                            cl_error_t *err);

/* For the image store: is any instance using `image`?  1 yes (name of the
   first in *user, caller frees), 0 no. */
int cl_mgr_instance_image_in_use (struct cl_manager *m, const char *image, char **user,
                                  cl_error_t *err);

#endif
