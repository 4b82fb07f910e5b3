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
};

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
