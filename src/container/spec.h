/* SPDX-License-Identifier: Apache-2.0 */
/* config.json: loading, validation with errors that name the field, the
   default spec, and the translations both the creator and the init need
   (namespace types, mount options, rlimits, I/O and scheduler classes). */
#ifndef CLOISON_CONTAINER_SPEC_H
#define CLOISON_CONTAINER_SPEC_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Loads BUNDLE/config.json ("bundle `B`: Not a directory" etc.). */
int cl_ctr_spec_load (const char *bundle, json_t **config, cl_error_t *err);
/* Checks everything create will read, before anything is touched.
   rootfs_out receives the absolute, resolved root.path (caller frees). */
int cl_ctr_spec_validate (json_t *config, const char *bundle, char **rootfs_out, cl_error_t *err);
/* Checks a process object (config.process or an exec process.json). */
int cl_ctr_spec_validate_process (json_t *process, const char *ctx, cl_error_t *err);

/* "pid" -> CLONE_NEWPID; 0 when unknown. */
int cl_ctr_spec_namespace_flag (const char *type);
/* Namespace file name under /proc/PID/ns for a CLONE_NEW* flag. */
const char *cl_ctr_spec_namespace_proc_name (int flag);
/* The entry of `type` in linux_obj's `namespaces`, or NULL. */
json_t *cl_ctr_spec_namespace (json_t *linux_obj, const char *type);
/* The `path` of the namespace of `type` in linux_obj's `namespaces` (as
   given, possibly ""), or NULL (none of that type, or no path). */
const char *cl_ctr_spec_namespace_path (json_t *linux_obj, const char *type);

struct mount_options
{
  unsigned long flags;       /* MS_* applied at mount time */
  unsigned long clear;       /* flags explicitly cleared (rw, suid...) */
  unsigned long propagation; /* MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (| MS_REC) */
  bool bind, rbind;
  char *data; /* the remaining comma-joined options (mode=755...) */
};
/* Parses a mount's options (`options` may be NULL). */
void cl_ctr_spec_mount_options (json_t *options, struct mount_options *out);

/* An absolute path made canonical without the filesystem, as Go's
   filepath.Clean under runc: "//dev/./fuse/" -> "/dev/fuse", ".." stops at
   "/".  Caller frees. */
char *cl_ctr_spec_clean_path (const char *path);

/* linux.memoryPolicy -> set_mempolicy's mode (with its flags) and node
   mask (nodes 0-63).  *present is false when the config has none. */
struct spec_mempolicy
{
  bool present;
  int mode;
  uint64_t nodes;
};
int cl_ctr_spec_memory_policy (json_t *linux_obj, struct spec_mempolicy *out, cl_error_t *err);

/* "RLIMIT_NOFILE" -> RLIMIT_NOFILE, -1 when unknown. */
int cl_ctr_spec_rlimit_resource (const char *name);

/* "IOPRIO_CLASS_BE" -> 2; -1 when unknown. */
int cl_ctr_spec_ioprio_class (const char *name);
/* "SCHED_RR" -> SCHED_RR, "SCHED_FLAG_RECLAIM" -> its bit; -1 when
   unknown. */
int cl_ctr_spec_sched_policy (const char *name);
int cl_ctr_spec_sched_flag (const char *name);

json_t *cl_ctr_spec_default (bool rootless);
json_t *cl_ctr_spec_features (void);

#endif
