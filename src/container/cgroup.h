/* SPDX-License-Identifier: Apache-2.0 */
/* cgroups for containers: v1, v2 and hybrid hosts, detected at run time.
   The runtime hands over the spec's `linux` object as parsed JSON; this
   module reads cgroupsPath and resources from it.  On a hybrid host (v1
   controllers plus a v2 mount holding few controllers) each controller is
   used where it is mounted. */
#ifndef CLOISON_CONTAINER_CGROUP_H
#define CLOISON_CONTAINER_CGROUP_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

enum cl_cgroup_mode
{
  CL_CGROUP_V1,     /* only legacy hierarchies */
  CL_CGROUP_HYBRID, /* legacy hierarchies + a unified mount */
  CL_CGROUP_V2,     /* unified only */
};

struct cl_cgroup; /* the container's cgroup(s): paths per hierarchy */

int cl_ctr_cgroup_detect_mode (enum cl_cgroup_mode *mode, cl_error_t *err);

/* Checks linux.cgroupsPath and linux.resources without touching the
   system: types, ranges, device rules.  Errors name the field
   ("linux.resources.memory.limit: ..."). */
int cl_ctr_cgroup_validate (json_t *linux_obj, cl_error_t *err);

/* Creates the container's cgroup in every mounted hierarchy, applies
   linux.resources (and the device rules: linux.resources.devices, then
   runc's default allowed devices, then linux.devices), and moves `pid`
   into it last (pid <= 0: create only, move later with
   cl_ctr_cgroup_add_pid, e.g. right before the container's exec so that
   little is charged to a small memory limit).  On failure nothing is
   left behind.
   Paths as runc's cgroupfs driver: an absolute cgroupsPath from each
   hierarchy's root; a relative one below the caller's own cgroup (v1) or
   below its parent (v2); absent, the relative `cloison/<id>`.  The
   systemd form "slice:prefix:name" is refused (no --systemd-cgroup). */
int cl_ctr_cgroup_enter (const char *id, json_t *linux_obj, pid_t pid, struct cl_cgroup **out,
                         cl_error_t *err);
/* Moves a process (the container's init, or an `exec`ed one) into every
   hierarchy's directory of the container. */
int cl_ctr_cgroup_add_pid (struct cl_cgroup *cg, pid_t pid, cl_error_t *err);

/* Applies a LinuxResources object (the form `update --resources` reads). */
int cl_ctr_cgroup_update (struct cl_cgroup *cg, json_t *resources, cl_error_t *err);
int cl_ctr_cgroup_freeze (struct cl_cgroup *cg, bool frozen, cl_error_t *err);
/* Pids in the cgroup (caller frees *pids). */
int cl_ctr_cgroup_pids (struct cl_cgroup *cg, pid_t **pids, size_t *n, cl_error_t *err);
/* Signals every process in the cgroup (kill --all, delete --force):
   cgroup.kill for SIGKILL on v2, else freeze, signal each, thaw. */
int cl_ctr_cgroup_kill_all (struct cl_cgroup *cg, int signo, cl_error_t *err);
/* Removes the cgroup directories and any sub-cgroups, retrying for up to
   about 2 s while members exit (SIGKILLs stragglers), then the parents
   enter created if they are empty.  NULL is a no-op. */
int cl_ctr_cgroup_destroy (struct cl_cgroup *cg, cl_error_t *err);
void cl_ctr_cgroup_free (struct cl_cgroup *cg);

/* State file round trip, so that later commands find the cgroup.  The
   saved form is stable (the runtime reads it to join at clone time):
   {"mode": "v1"|"hybrid"|"v2", "dirs": [{"controllers": "memory" |
   "cpu,cpuacct" | "name=systemd" | "" (unified), "mount": MOUNTPOINT,
   "path": ABSOLUTE_DIR, "created": N, "v2": BOOL}, ...]}. */
json_t *cl_ctr_cgroup_save (struct cl_cgroup *cg);
int cl_ctr_cgroup_load (json_t *saved, struct cl_cgroup **out, cl_error_t *err);

/* For a `cgroup` mount in the spec: called in the container's mount
   namespace (after its cgroup namespace exists), mounts the hierarchy or
   hierarchies at `target` (an absolute path in the new root, before
   pivot_root) with `flags` (MS_RDONLY etc.). */
int cl_ctr_cgroup_mount (const char *target, unsigned long flags, cl_error_t *err);

/* Memory usage and limits, for `cloison info` and tests:
   {"memory": {"usage", "limit", "max_usage", "swap_limit"},
    "pids": {"current", "limit"}, "cpu": {"usage_ns"}} (-1 = unlimited). */
int cl_ctr_cgroup_stats (struct cl_cgroup *cg, json_t **out, cl_error_t *err);

#endif
