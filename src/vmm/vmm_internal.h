/* SPDX-License-Identifier: Apache-2.0 */
/* What cl_vmm_run shares with the snapshot, API and sandbox code. */
#ifndef CLOISON_VMM_VMM_INTERNAL_H
#define CLOISON_VMM_VMM_INTERNAL_H

#include "vmm/machine.h"
#include "vmm/vmm.h"

#include <jansson.h>

struct uart;
struct acpi_pm;
struct MHD_Daemon;

struct vmm
{
  const struct cl_vmm_config *cfg; /* the user's, or rebuilt from a snapshot */
  struct vm *vm;
  struct uart *uart;
  struct acpi_pm *pm; /* the power button */
  int console_file_fd;
  int signal_fd;
  json_t *saved; /* restore: the snapshot's state.json */
  _Atomic uint64_t restore_ns;

  /* API */
  struct MHD_Daemon *api;
  int api_fd;
  char *api_path;

  /* virtio devices built from the config (opaque to the core) */
  void *virtio;

  /* live migration (migrate.c), NULL until the first one */
  struct vmm_migration *mig;
};

/* Named pieces of machine state (vcpuN, machine, state.json): files of a
   snapshot directory, records of a migration stream. */
struct vmm_blob
{
  char *name;
  void *data;
  size_t len;
};

struct vmm_blobs
{
  struct vmm_blob *v;
  size_t n;
};

void cl_vmm_blobs_add (struct vmm_blobs *b, const char *name, void *data, size_t len);
const struct vmm_blob *cl_vmm_blobs_get (const struct vmm_blobs *b, const char *name);
void cl_vmm_blobs_free (struct vmm_blobs *b);

/* config.c: the machine part of a config as JSON, and back.  Strings of
 *out point into `json` (keep it alive). */
json_t *cl_vmm_config_to_json (const struct cl_vmm_config *cfg);
int cl_vmm_config_from_json (json_t *json, const struct cl_vmm_config *user,
                             struct cl_vmm_config *out, cl_error_t *err);
void cl_vmm_config_free_arrays (struct cl_vmm_config *cfg);

/* vmm_snapshot.c */
/* Reads DIR/state.json: the machine's config (console and API from
   `user`) and the saved state, kept in *saved for cl_vmm_snapshot_restore. */
int cl_vmm_snapshot_load_config (const char *dir, const struct cl_vmm_config *user,
                                 struct cl_vmm_config *out, json_t **saved, cl_error_t *err);
/* vCPUs must be paused (cl_vmm_vm_pause). */
int cl_vmm_snapshot_create (struct vmm *m, const char *dir, cl_error_t *err);
int cl_vmm_snapshot_restore (struct vmm *m, const char *dir, cl_error_t *err);
/* Work done ahead of a save, while the guest still runs (which MSRs read
   back), so that the stop-and-copy is shorter. */
void cl_vmm_state_prepare (struct vmm *m);
/* Whether every device can save its state now (err says which cannot). */
int cl_vmm_state_save_check (struct vmm *m, cl_error_t *err);
/* The machine's state but its memory, with the vCPUs paused and the I/O
   thread idle: blobs vcpuN, machine and state.json (config + devices). */
int cl_vmm_state_save (struct vmm *m, struct vmm_blobs *out, cl_error_t *err);
/* Back into a freshly built machine; m->saved holds the parsed state.json.
   `where` names the source in errors; `live`: the guest clock advances by
   the real time elapsed since the save (migration), else it resumes where
   it stopped (snapshot). */
int cl_vmm_state_restore (struct vmm *m, const struct vmm_blobs *in, const char *where, bool live,
                          cl_error_t *err);

/* migrate.c: live migration (docs/migration.md).  The API's side: */
/* Starts sending to `uri` (tcp:HOST:PORT or fd:N) in a thread of its own;
   0, or -1 when one is already running or the request is bad. */
int cl_vmm_migration_send (struct vmm *m, json_t *body, cl_error_t *err);
json_t *cl_vmm_migration_status (struct vmm *m);
int cl_vmm_migration_cancel (struct vmm *m, cl_error_t *err);
/* Waits for the sending thread (at VMM exit). */
void cl_vmm_migration_free (struct vmm *m);
/* The destination's side, before anything is built: opens cfg->incoming,
   reads the header (machine config and CPUID), checks it.  *out gets the
   machine's config (its strings live as long as *in). */
struct vmm_incoming;
int cl_vmm_incoming_open (const struct cl_vmm_config *user, struct vmm_incoming **in,
                          struct cl_vmm_config *out, cl_error_t *err);
/* With the machine built (not running): the source CPUID checked against
   ours and set for the vCPUs to be created. */
int cl_vmm_incoming_cpuid (struct vmm_incoming *in, struct vm *vm, cl_error_t *err);
/* Memory, then the state restored into m; the source is told the
   destination took over. */
int cl_vmm_incoming_receive (struct vmm_incoming *in, struct vmm *m, cl_error_t *err);
/* Once the vCPUs run: tells a source that waits for it (it stops only
   then, so that its teardown does not compete with the guest's start). */
void cl_vmm_incoming_resumed (struct vmm_incoming *in);
/* Closes; `failure` (NULL: none) is told to the source, which goes on
   running. */
void cl_vmm_incoming_close (struct vmm_incoming *in, cl_error_t failure);

/* vmm_api.c */
int cl_vmm_api_start (struct vmm *m, const char *path, cl_error_t *err);
void cl_vmm_api_stop (struct vmm *m);

/* sandbox.c: the process filter (none with CL_VMM_SECCOMP_OFF), then
   each vCPU thread's own. */
int cl_vmm_sandbox_apply (enum cl_vmm_seccomp mode, cl_error_t *err);
int cl_vmm_sandbox_apply_vcpu_thread (cl_error_t *err);

/* vmm_virtio.c: the --disk/--net/--vsock/--rng/--console virtio devices. */
int cl_vmm_build_virtio (struct vmm *m, cl_error_t *err);
void cl_vmm_free_virtio (struct vmm *m);

#endif
