/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between cgroup*.c (not part of the public contract). */
#ifndef CLOISON_CONTAINER_CGROUP_INTERNAL_H
#define CLOISON_CONTAINER_CGROUP_INTERNAL_H

#include "container/cgroup.h"

#include <linux/bpf.h>
#include <stdint.h>

/* One hierarchy's directory for this container. */
struct cl_cgroup_dir
{
  char *controllers; /* "memory", "cpu,cpuacct", "name=systemd"; "" for the unified one */
  char *mount;       /* where the hierarchy is mounted */
  char *path;        /* the container's directory in it */
  int created;       /* trailing path components mkdir'ed by us (removed on destroy) */
  bool v2;
};

struct cl_cgroup
{
  enum cl_cgroup_mode mode;
  struct cl_cgroup_dir *dirs;
  size_t n_dirs;
  char *unified_controllers; /* cgroup.controllers at the unified root ("" if none) */
};

/* One mounted hierarchy, as seen from this process. */
struct cl_hierarchy
{
  char controllers[128]; /* "memory", "cpu,cpuacct", "name=systemd"; "" for cgroup2 */
  char mount[256];
  char root[256]; /* the mount's root inside the hierarchy ("/.." seen from another cgroupns) */
  bool v2;
};

/* The cgroup mounts of /proc/self/mountinfo, first mount of each
   hierarchy (caller frees *out). */
int cl_ctr_hierarchies_read (struct cl_hierarchy **out, size_t *n, cl_error_t *err);
enum cl_cgroup_mode cl_ctr_hierarchies_mode (const struct cl_hierarchy *h, size_t n);
/* This process's cgroup in `h`, relative to the mount's root (caller
   frees). */
char *cl_ctr_hierarchy_own_cgroup (const struct cl_hierarchy *h);
/* The same from the text of /proc/self/cgroup read once by
   cl_ctr_cgroup_read_self (NULL: "/"), for callers that walk every
   hierarchy. */
char *cl_ctr_cgroup_read_self (void);
char *cl_ctr_hierarchy_own_cgroup_in (const char *self_cgroup, const struct cl_hierarchy *h);
/* "/a//b/" + "c" (+ "d") joined with single slashes (caller frees). */
char *cl_ctr_path_join_clean (const char *a, const char *b, const char *c);
/* Is `name` one of the words of `list`, separated by `sep`? */
bool cl_ctr_list_has (const char *list, const char *name, char sep);

/* The files of the container's directories (cgroup_files.c). */
/* DIR/FILE (caller frees). */
char *cl_ctr_cgroup_dir_file (struct cl_cgroup_dir *d, const char *file);
/* Makes each ancestor of MOUNT/REL delegate the `wanted` controllers
   (space-separated) to its children, from the top down. */
void cl_ctr_cgroup_enable_v2_controllers (const char *mount, const char *rel, const char *wanted);
/* The directory holding `controller` (v1 hierarchy first, then the unified
   one when it offers that controller); NULL when nowhere. */
struct cl_cgroup_dir *cl_ctr_cgroup_dir_for (struct cl_cgroup *cg, const char *controller);
/* Writes `value` to `file` of the directory holding `controller`; `field`
   names the spec field in errors. */
int cl_ctr_cgroup_write (struct cl_cgroup *cg, const char *controller, const char *file,
                         const char *value, const char *field, cl_error_t *err);
bool cl_ctr_cgroup_has_file (struct cl_cgroup *cg, const char *controller, const char *file);
int cl_ctr_cgroup_read (struct cl_cgroup *cg, const char *controller, const char *file, char **out,
                        cl_error_t *err);

/* linux.resources: with cg == NULL only checks (types, ranges), else
   checks and writes. */
int cl_ctr_cgroup_resources (struct cl_cgroup *cg, json_t *resources, const char *ctx,
                             cl_error_t *err);

/* Device rules, reduced the way the v1 kernel does (and runc's emulator):
   a default verdict plus exceptions that all carry the opposite verdict. */
#define CL_DEV_WILDCARD (-1)
enum
{
  CL_DEV_ACC_MKNOD = 1,
  CL_DEV_ACC_READ = 2,
  CL_DEV_ACC_WRITE = 4,
  CL_DEV_ACC_ALL = 7
};
struct cl_dev_rule
{
  char type; /* 'a', 'c', 'b' */
  int64_t major, minor; /* CL_DEV_WILDCARD for '*' */
  unsigned access;      /* CL_DEV_ACC_* */
  bool allow;
};
struct cl_dev_policy
{
  bool default_allow;
  struct cl_dev_rule *exceptions;
  size_t n;
};

/* Parses linux.resources.devices (may be NULL) and linux.devices (may be
   NULL), appends the runtime's default allowed devices like runc, and
   reduces the whole to *policy (caller frees policy->exceptions). */
int cl_ctr_dev_policy_build (json_t *resource_devices, json_t *linux_devices,
                             struct cl_dev_policy *policy, cl_error_t *err);
/* Applies one rule to a policy (the emulator step). */
int cl_ctr_dev_policy_apply (struct cl_dev_policy *policy, const struct cl_dev_rule *rule,
                             const char *ctx, cl_error_t *err);
/* The BPF_PROG_TYPE_CGROUP_DEVICE program for a policy (caller frees). */
int cl_ctr_dev_bpf_build (const struct cl_dev_policy *policy, struct bpf_insn **insns, size_t *n,
                          cl_error_t *err);
/* Loads the program and attaches it to the cgroup v2 directory, replacing
   programs attached earlier by us. */
int cl_ctr_dev_bpf_attach (const struct bpf_insn *insns, size_t n, const char *dir,
                           cl_error_t *err);
/* v1: devices.deny / devices.allow writes for a policy. */
int cl_ctr_dev_v1_apply (const struct cl_dev_policy *policy, const char *dir, cl_error_t *err);

#endif
