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

struct cl_manager
{
  char *root;
  sqlite3 *db;
  /* 8 hex digits from the root's path: global names (cgroups, container
     ids) carry it so that two state roots never collide. */
  char tag[9];
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
  char *status; /* creating, stopped, running, error */
  json_t *config;
  int64_t created;
  pid_t monitor_pid;
  uint64_t monitor_start; /* /proc start time, so a reused pid is not ours */
  pid_t init_pid;
  uint64_t init_start;
  bool has_exit_code;
  int exit_code;
};

/* --- store.c: tables, rows, intents --- */
int store_init (struct cl_manager *m, cl_error_t *err);
/* Error "instance `NAME` not found" when absent. */
int store_get (struct cl_manager *m, const char *name, struct instance **out, cl_error_t *err);
void instance_free (struct instance *inst);
#define cleanup_instance __attribute__ ((cleanup (instance_freep)))
void instance_freep (struct instance **p);
/* The image's id (config image_id), else the name it was made from. */
const char *instance_image_id (struct instance *inst);
/* Inserts the row (status creating) and an intent owned by this process,
   in one transaction.  Error "instance `NAME` already exists". */
int store_create (struct cl_manager *m, const struct instance *inst, const char *op,
                  int64_t *intent, cl_error_t *err);
int store_set_status (struct cl_manager *m, const char *name, const char *status, cl_error_t *err);
int store_set_running (struct cl_manager *m, const char *name, pid_t monitor, uint64_t mstart,
                       pid_t init, uint64_t istart, cl_error_t *err);
/* Status stopped with an exit code (has_code false: unknown). */
int store_set_stopped (struct cl_manager *m, const char *name, bool has_code, int code,
                       cl_error_t *err);
int store_set_config (struct cl_manager *m, const char *name, json_t *config, cl_error_t *err);
int store_delete (struct cl_manager *m, const char *name, cl_error_t *err);
/* Names of every instance (NULL terminated, caller frees all). */
int store_names (struct cl_manager *m, char ***out, cl_error_t *err);

int intent_begin (struct cl_manager *m, const char *op, const char *instance, const char *arg,
                  int64_t *id, cl_error_t *err);
int intent_set_arg (struct cl_manager *m, int64_t id, const char *arg, cl_error_t *err);
void intent_end (struct cl_manager *m, int64_t id);

int store_snapshot_add (struct cl_manager *m, const char *instance, const char *snap, bool stateful,
                        cl_error_t *err);
int store_snapshot_ready (struct cl_manager *m, const char *instance, const char *snap,
                          cl_error_t *err);
/* 1 found (ready), 0 absent; *stateful optional. */
int store_snapshot_get (struct cl_manager *m, const char *instance, const char *snap,
                        bool *stateful, cl_error_t *err);
int store_snapshot_del (struct cl_manager *m, const char *instance, const char *snap,
                        cl_error_t *err);

/* --- proc.c: processes we do not own as children --- */
bool proc_alive (pid_t pid, uint64_t start);
/* Waits up to timeout_ms for a process (not our child) to exit; 1 exited,
   0 still alive. */
int proc_wait_exit (pid_t pid, uint64_t start, int timeout_ms);
/* Exit status to shell convention (128 + signal). */
int proc_exit_code (int wstatus);

/* --- manager.c --- */
/* Opens without reconciling (monitors, which must not undo others' work). */
int manager_open_raw (const char *root, struct cl_manager **out, cl_error_t *err);
/* Settings of our connections (see store.c). */
void db_tune (sqlite3 *db);
char *instance_dir (struct cl_manager *m, const char *name);
/* "cl-TAG-NAME": cgroups and engine ids. */
char *instance_global_id (struct cl_manager *m, const char *name);
/* The container engine's state directory: ROOT/containers. */
char *engine_root (struct cl_manager *m);

/* --- reconcile.c --- */
int reconcile_intents (struct cl_manager *m, cl_error_t *err);
/* Checks a running/creating instance against the processes; updates it. */
int reconcile_instance (struct cl_manager *m, struct instance *inst, cl_error_t *err);
/* Stops whatever runs for the instance and removes its files and rows. */
int instance_destroy (struct cl_manager *m, const char *name, cl_error_t *err);

/* --- monitor.c --- */
/* Starts the instance's monitor process (container or VM), which records
   status running then, at exit, stopped.  attached: the workload gets our
   stdio and the monitor stays our child (*monitor receives its pid). */
int monitor_spawn (struct cl_manager *m, struct instance *inst, bool attached, pid_t *monitor,
                   cl_error_t *err);

/* --- fscopy.c --- */
/* Copies a tree preserving owners, modes, xattrs (overlay whiteouts),
   with reflinks where the filesystem has them. */
int tree_copy (const char *src, const char *dst, cl_error_t *err);
/* Clones a file (FICLONE), else copies it sparsely; then sets its size to
   `size` when size > 0. */
int file_clone (const char *src, const char *dst, uint64_t size, cl_error_t *err);

#endif
