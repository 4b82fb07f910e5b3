/* SPDX-License-Identifier: Apache-2.0 */
/* linux.resources -> cgroup files, for v1 and v2 hierarchies.  Every
   section reads and checks its fields first; with cg == NULL that is all
   (validation), else it writes, picking v1 or v2 file names by where the
   controller lives (on a hybrid host that is decided per controller). */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "container/cgroup_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FMT_I64(v) cl_strdup_printf ("%" PRId64, (int64_t)(v))
#define FMT_U64(v) cl_strdup_printf ("%" PRIu64, (uint64_t)(v))

/* Is the controller in a v2 hierarchy for this container? */
static bool
is_v2 (struct cl_cgroup *cg, const char *controller)
{
  struct cl_cgroup_dir *d = cl_ctr_cgroup_dir_for (cg, controller);
  return d && d->v2;
}

static int
put (struct cl_cgroup *cg, const char *controller, const char *file, char *value, const char *ctx,
     const char *key, cl_error_t *err)
{
  cleanup_free char *owned = value;
  cleanup_free char *field = cl_json_path (ctx, key);
  return cl_ctr_cgroup_write (cg, controller, file, value, field, err);
}

/* -1 (unlimited) or a positive amount. */
static int
read_limit (json_t *obj, const char *ctx, const char *key, int64_t *out, bool *set, cl_error_t *err)
{
  int r = cl_json_int64 (obj, ctx, key, out, err);
  if (r < 0)
    return -1;
  *set = r == 1;
  if (*set && *out < -1)
    return cl_error_make (err, 0, "%s.%s: %" PRId64 " is out of range (-1 means unlimited)", ctx,
                          key, *out);
  return 0;
}

static char *
v2_limit (int64_t v)
{
  return v < 0 ? cl_xstrdup ("max") : FMT_I64 (v);
}

/* memory */

static int
memory_v1_limit_and_swap (struct cl_cgroup *cg, const char *ctx, bool has_limit, int64_t limit,
                          bool has_swap, int64_t swap, cl_error_t *err)
{
  bool swap_file = cl_ctr_cgroup_has_file (cg, "memory", "memory.memsw.limit_in_bytes");
  bool swap_first = false;

  /* An unlimited memory limit drags swap along, as in runc. */
  if (has_limit && limit == -1 && !has_swap && swap_file)
    has_swap = true, swap = -1;
  if (has_swap && !swap_file)
    has_swap = false; /* swap accounting is off in this kernel */
  /* The kernel keeps limit <= memsw at every step: order the writes. */
  if (has_limit && has_swap)
    {
      cleanup_free char *cur = NULL;
      if (cl_ctr_cgroup_read (cg, "memory", "memory.limit_in_bytes", &cur, err) < 0)
        return -1;
      swap_first = swap == -1 || strtoull (cur, NULL, 10) < (uint64_t)swap;
    }
  if (has_swap && swap_first
      && put (cg, "memory", "memory.memsw.limit_in_bytes", FMT_I64 (swap), ctx, "swap", err) < 0)
    return -1;
  if (has_limit
      && put (cg, "memory", "memory.limit_in_bytes", FMT_I64 (limit), ctx, "limit", err) < 0)
    return -1;
  if (has_swap && !swap_first
      && put (cg, "memory", "memory.memsw.limit_in_bytes", FMT_I64 (swap), ctx, "swap", err) < 0)
    return -1;
  return 0;
}

static int
res_memory (struct cl_cgroup *cg, json_t *res, const char *parent, cl_error_t *err)
{
  cleanup_free char *ctx = cl_json_path (parent, "memory");
  json_t *mem = NULL;
  int64_t limit = 0, reservation = 0, swap = 0, kernel = 0, kernel_tcp = 0;
  bool has_limit, has_res, has_swap, has_kernel, has_tcp, oom_off = false, hier = false;
  int has_oom, has_hier;
  uint64_t swappiness = 0;
  int has_swappiness;

  int present = cl_json_object (res, parent, "memory", &mem, err);
  if (present <= 0)
    return present;
  if (read_limit (mem, ctx, "limit", &limit, &has_limit, err) < 0
      || read_limit (mem, ctx, "reservation", &reservation, &has_res, err) < 0
      || read_limit (mem, ctx, "swap", &swap, &has_swap, err) < 0
      || read_limit (mem, ctx, "kernel", &kernel, &has_kernel, err) < 0
      || read_limit (mem, ctx, "kernelTCP", &kernel_tcp, &has_tcp, err) < 0)
    return -1;
  if ((has_swappiness = cl_json_uint64 (mem, ctx, "swappiness", &swappiness, err)) < 0)
    return -1;
  if (has_swappiness && swappiness > 100 && swappiness != UINT64_MAX)
    return cl_error_make (err, 0, "%s.swappiness: %" PRIu64 " is out of range (0-100)", ctx,
                          swappiness);
  if ((has_oom = cl_json_bool (mem, ctx, "disableOOMKiller", &oom_off, err)) < 0
      || (has_hier = cl_json_bool (mem, ctx, "useHierarchy", &hier, err)) < 0)
    return -1;
  bool check_before = false;
  if (cl_json_bool (mem, ctx, "checkBeforeUpdate", &check_before, err) < 0)
    return -1;
  if (has_limit && limit == 0)
    has_limit = false; /* 0 means "not set" for runc */
  if (has_swap && swap == 0)
    has_swap = false;
  if (has_limit && has_swap && limit > 0 && swap != -1 && swap < limit)
    return cl_error_make (err, 0,
                          "%s.swap: %" PRId64 " is below memory.limit %" PRId64
                          " (swap counts memory plus swap, so it must be at least the limit)",
                          ctx, swap, limit);
  if (cg == NULL)
    return 0;

  if (!is_v2 (cg, "memory"))
    {
      if (memory_v1_limit_and_swap (cg, ctx, has_limit, limit, has_swap, swap, err) < 0)
        return -1;
      if (has_res
          && put (cg, "memory", "memory.soft_limit_in_bytes", FMT_I64 (reservation), ctx,
                  "reservation", err)
                 < 0)
        return -1;
      if (has_tcp && kernel_tcp
          && put (cg, "memory", "memory.kmem.tcp.limit_in_bytes", FMT_I64 (kernel_tcp), ctx,
                  "kernelTCP", err)
                 < 0)
        return -1;
      if (has_swappiness && swappiness <= 100
          && put (cg, "memory", "memory.swappiness", FMT_U64 (swappiness), ctx, "swappiness", err)
                 < 0)
        return -1;
      if (has_oom && oom_off
          && put (cg, "memory", "memory.oom_control", cl_xstrdup ("1"), ctx, "disableOOMKiller",
                  err)
                 < 0)
        return -1;
      return 0;
    }

  /* v2: memory.swap.max counts swap alone. */
  if (has_swap && swap != -1 && (!has_limit || limit == -1))
    return cl_error_make (err, 0, "%s.swap: a swap limit needs a memory limit on cgroup v2", ctx);
  if (check_before && has_limit && limit > 0)
    {
      /* A limit below the current usage would make the kernel reclaim or
         kill at once: refuse it instead, as the spec allows. */
      cleanup_free char *cur = NULL;
      if (cl_ctr_cgroup_read (cg, "memory", "memory.current", &cur, err) < 0)
        return -1;
      if (strtoull (cur, NULL, 10) > (uint64_t)limit)
        return cl_error_make (err, 0, "%s.limit: %" PRId64 " is below the current usage %s", ctx,
                              limit, strtok (cur, "\n"));
    }
  if (has_limit && put (cg, "memory", "memory.max", v2_limit (limit), ctx, "limit", err) < 0)
    return -1;
  if (has_swap
      && put (cg, "memory", "memory.swap.max", v2_limit (swap == -1 ? -1 : swap - limit), ctx,
              "swap", err)
             < 0)
    return -1;
  if (has_res
      && put (cg, "memory", "memory.low", v2_limit (reservation), ctx, "reservation", err) < 0)
    return -1;
  return 0;
}

/* cpu and cpuset */

/* runc's mapping of shares [2, 262144] onto weight [1, 10000]. */
static uint64_t
shares_to_weight (uint64_t shares)
{
  if (shares == 0)
    return 0;
  if (shares < 2)
    shares = 2;
  if (shares > 262144)
    shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

static int
res_cpu (struct cl_cgroup *cg, json_t *res, const char *parent, cl_error_t *err)
{
  cleanup_free char *ctx = cl_json_path (parent, "cpu");
  json_t *cpu = NULL;
  uint64_t shares = 0, period = 0, rt_period = 0, burst = 0;
  int64_t quota = 0, rt_runtime = 0, idle = 0;
  const char *cpus = NULL, *mems = NULL;
  int has_shares, has_period, has_rt_period, has_burst, has_quota, has_rt_runtime, has_idle;

  int present = cl_json_object (res, parent, "cpu", &cpu, err);
  if (present <= 0)
    return present;
  if ((has_shares = cl_json_uint64 (cpu, ctx, "shares", &shares, err)) < 0
      || (has_quota = cl_json_int64 (cpu, ctx, "quota", &quota, err)) < 0
      || (has_period = cl_json_uint64 (cpu, ctx, "period", &period, err)) < 0
      || (has_burst = cl_json_uint64 (cpu, ctx, "burst", &burst, err)) < 0
      || (has_rt_runtime = cl_json_int64 (cpu, ctx, "realtimeRuntime", &rt_runtime, err)) < 0
      || (has_rt_period = cl_json_uint64 (cpu, ctx, "realtimePeriod", &rt_period, err)) < 0
      || (has_idle = cl_json_int64 (cpu, ctx, "idle", &idle, err)) < 0
      || cl_json_string (cpu, ctx, "cpus", &cpus, err) < 0
      || cl_json_string (cpu, ctx, "mems", &mems, err) < 0)
    return -1;
  if (has_period && period != 0 && (period < 1000 || period > 1000000))
    return cl_error_make (err, 0, "%s.period: %" PRIu64 " is out of range (1000-1000000 us)", ctx,
                          period);
  if (has_quota && quota > 0 && quota < 1000)
    return cl_error_make (err, 0, "%s.quota: %" PRId64 " is below the kernel's minimum of 1000 us",
                          ctx, quota);
  if (has_idle && idle != 0 && idle != 1)
    return cl_error_make (err, 0, "%s.idle: expected 0 or 1, got %" PRId64, ctx, idle);
  for (int k = 0; k < 2; k++)
    {
      const char *list = k ? mems : cpus;
      if (list && list[strspn (list, "0123456789,- \n")] != '\0')
        return cl_error_make (err, 0, "%s.%s: `%s` is not a list like 0-2,4", ctx,
                              k ? "mems" : "cpus", list);
    }
  if (cg == NULL)
    return 0;

  if (cpus && *cpus && put (cg, "cpuset", "cpuset.cpus", cl_xstrdup (cpus), ctx, "cpus", err) < 0)
    return -1;
  if (mems && *mems && put (cg, "cpuset", "cpuset.mems", cl_xstrdup (mems), ctx, "mems", err) < 0)
    return -1;
  if (!is_v2 (cg, "cpu"))
    {
      if (has_shares && shares
          && put (cg, "cpu", "cpu.shares", FMT_U64 (shares), ctx, "shares", err) < 0)
        return -1;
      if (has_period && period
          && put (cg, "cpu", "cpu.cfs_period_us", FMT_U64 (period), ctx, "period", err) < 0)
        return -1;
      if (has_quota && quota
          && put (cg, "cpu", "cpu.cfs_quota_us", FMT_I64 (quota), ctx, "quota", err) < 0)
        return -1;
      if (has_burst && put (cg, "cpu", "cpu.cfs_burst_us", FMT_U64 (burst), ctx, "burst", err) < 0)
        return -1;
      if (has_rt_period && rt_period
          && put (cg, "cpu", "cpu.rt_period_us", FMT_U64 (rt_period), ctx, "realtimePeriod", err)
                 < 0)
        return -1;
      if (has_rt_runtime && rt_runtime
          && put (cg, "cpu", "cpu.rt_runtime_us", FMT_I64 (rt_runtime), ctx, "realtimeRuntime", err)
                 < 0)
        return -1;
    }
  else
    {
      if ((has_rt_runtime && rt_runtime) || (has_rt_period && rt_period))
        return cl_error_make (err, 0,
                              "%s.realtimeRuntime: realtime scheduling limits do not "
                              "exist in cgroup v2",
                              ctx);
      if (has_shares && shares
          && put (cg, "cpu", "cpu.weight", FMT_U64 (shares_to_weight (shares)), ctx, "shares", err)
                 < 0)
        return -1;
      if ((has_quota && quota) || (has_period && period))
        {
          char *max = (has_quota && quota > 0) ? FMT_I64 (quota) : cl_xstrdup ("max");
          if (has_period && period)
            {
              char *both = cl_strdup_printf ("%s %" PRIu64, max, period);
              free (max);
              max = both;
            }
          if (put (cg, "cpu", "cpu.max", max, ctx, "quota", err) < 0)
            return -1;
        }
      if (has_burst && put (cg, "cpu", "cpu.max.burst", FMT_U64 (burst), ctx, "burst", err) < 0)
        return -1;
    }
  if (has_idle && cl_ctr_cgroup_has_file (cg, "cpu", "cpu.idle")
      && put (cg, "cpu", "cpu.idle", FMT_I64 (idle), ctx, "idle", err) < 0)
    return -1;
  return 0;
}

/* pids */

static int
res_pids (struct cl_cgroup *cg, json_t *res, const char *parent, cl_error_t *err)
{
  cleanup_free char *ctx = cl_json_path (parent, "pids");
  json_t *pids = NULL;
  int64_t limit = 0;
  int r;

  int present = cl_json_object (res, parent, "pids", &pids, err);
  if (present <= 0)
    return present;
  r = cl_json_int64 (pids, ctx, "limit", &limit, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return cl_error_make (err, 0, "%s.limit: missing", ctx);
  if (cg == NULL)
    return 0;
  /* 0 and below mean unlimited, as in runc. */
  return put (cg, "pids", "pids.max", limit > 0 ? FMT_I64 (limit) : cl_xstrdup ("max"), ctx,
              "limit", err);
}

/* blockIO */

struct dev_value
{
  int64_t major, minor;
  uint64_t value;
};

static int
read_dev_values (json_t *obj, const char *ctx, const char *key, const char *value_key,
                 struct dev_value **out, size_t *n, cl_error_t *err)
{
  json_t *arr = NULL, *e;
  size_t i;
  *out = NULL;
  *n = 0;
  if (cl_json_array (obj, ctx, key, &arr, err) < 0)
    return -1;
  if (arr == NULL)
    return 0;
  *out = cl_xmalloc0 ((json_array_size (arr) + 1) * sizeof **out);
  json_array_foreach (arr, i, e)
  {
    cleanup_free char *ectx = cl_strdup_printf ("%s.%s[%zu]", ctx, key, i);
    struct dev_value *v = &(*out)[i];
    int rm, rn, rv;
    if (!json_is_object (e))
      return cl_error_make (err, 0, "%s: expected an object", ectx);
    if ((rm = cl_json_int64 (e, ectx, "major", &v->major, err)) < 0
        || (rn = cl_json_int64 (e, ectx, "minor", &v->minor, err)) < 0
        || (rv = cl_json_uint64 (e, ectx, value_key, &v->value, err)) < 0)
      return -1;
    if (rm == 0 || rn == 0)
      return cl_error_make (err, 0, "%s: major and minor are required", ectx);
    if (rv == 0 && strcmp (value_key, "weight") != 0)
      return cl_error_make (err, 0, "%s.%s: missing", ectx, value_key);
    if (rv == 0)
      v->value = 0; /* leafWeight-only entry: nothing to write */
  }
  *n = json_array_size (arr);
  return 0;
}

static int
res_blockio (struct cl_cgroup *cg, json_t *res, const char *parent, cl_error_t *err)
{
  static const struct
  {
    const char *key, *v1_file, *v2_key;
  } throttles[] = {
    { "throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps" },
    { "throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps" },
    { "throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops" },
    { "throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops" },
  };
  cleanup_free char *ctx = cl_json_path (parent, "blockIO");
  cleanup_free struct dev_value *weights = NULL;
  json_t *bio = NULL;
  uint64_t weight = 0, leaf = 0;
  size_t n_weights = 0;
  int has_weight;
  bool v2;

  int present = cl_json_object (res, parent, "blockIO", &bio, err);
  if (present <= 0)
    return present;
  if ((has_weight = cl_json_uint64 (bio, ctx, "weight", &weight, err)) < 0
      || cl_json_uint64 (bio, ctx, "leafWeight", &leaf, err) < 0)
    return -1;
  if (has_weight && weight != 0 && (weight < 10 || weight > 1000))
    return cl_error_make (err, 0, "%s.weight: %" PRIu64 " is out of range (10-1000)", ctx, weight);
  if (read_dev_values (bio, ctx, "weightDevice", "weight", &weights, &n_weights, err) < 0)
    return -1;
  for (size_t t = 0; t < 4; t++)
    {
      cleanup_free struct dev_value *v = NULL;
      size_t n = 0;
      if (read_dev_values (bio, ctx, throttles[t].key, "rate", &v, &n, err) < 0)
        return -1;
      if (cg == NULL)
        continue;
      v2 = is_v2 (cg, "blkio") || (!cl_ctr_cgroup_dir_for (cg, "blkio") && is_v2 (cg, "io"));
      for (size_t i = 0; i < n; i++)
        {
          char *line = v2 ? cl_strdup_printf ("%" PRId64 ":%" PRId64 " %s=%" PRIu64, v[i].major,
                                              v[i].minor, throttles[t].v2_key, v[i].value)
                          : cl_strdup_printf ("%" PRId64 ":%" PRId64 " %" PRIu64, v[i].major,
                                              v[i].minor, v[i].value);
          if (put (cg, v2 ? "io" : "blkio", v2 ? "io.max" : throttles[t].v1_file, line, ctx,
                   throttles[t].key, err)
              < 0)
            return -1;
        }
    }
  if (cg == NULL)
    return 0;

  v2 = !cl_ctr_cgroup_dir_for (cg, "blkio") && is_v2 (cg, "io");
  const char *ctrl = v2 ? "io" : "blkio";
  bool bfq = cl_ctr_cgroup_has_file (cg, ctrl, v2 ? "io.bfq.weight" : "blkio.bfq.weight");
  bool weights_needed = has_weight && weight;
  for (size_t i = 0; i < n_weights; i++)
    weights_needed |= weights[i].value != 0;
  if (weights_needed && !bfq && !v2 && !cl_ctr_cgroup_has_file (cg, ctrl, "blkio.weight"))
    return cl_error_make (err, 0,
                          "%s.weight%s: this host's blkio controller has neither blkio.weight "
                          "nor blkio.bfq.weight (no CFQ or BFQ I/O scheduler): I/O weights "
                          "are not supported here",
                          ctx, has_weight && weight ? "" : "Device");
  if (has_weight && weight)
    {
      /* BFQ takes the v1 range as is; io.weight has its own scale. */
      if (bfq)
        {
          if (put (cg, ctrl, v2 ? "io.bfq.weight" : "blkio.bfq.weight", FMT_U64 (weight), ctx,
                   "weight", err)
              < 0)
            return -1;
        }
      else if (put (cg, ctrl, v2 ? "io.weight" : "blkio.weight",
                    FMT_U64 (v2 ? 1 + (weight - 10) * 9999 / 990 : weight), ctx, "weight", err)
               < 0)
        return -1;
    }
  for (size_t i = 0; i < n_weights; i++)
    {
      const char *file = v2    ? "io.bfq.weight"
                         : bfq ? "blkio.bfq.weight_device"
                               : "blkio.weight_device";
      if (weights[i].value == 0)
        continue;
      if (put (cg, ctrl, file,
               cl_strdup_printf ("%" PRId64 ":%" PRId64 " %" PRIu64, weights[i].major,
                                 weights[i].minor, weights[i].value),
               ctx, "weightDevice", err)
          < 0)
        return -1;
    }
  return 0;
}

/* hugepageLimits */

static int
res_hugetlb (struct cl_cgroup *cg, json_t *res, const char *parent, cl_error_t *err)
{
  json_t *arr = NULL, *e;
  size_t i;
  if (cl_json_array (res, parent, "hugepageLimits", &arr, err) < 0)
    return -1;
  json_array_foreach (arr, i, e)
  {
    cleanup_free char *ctx = cl_strdup_printf ("%s.hugepageLimits[%zu]", parent, i);
    cleanup_free char *file = NULL;
    const char *size = NULL;
    uint64_t limit = 0;
    if (!json_is_object (e))
      return cl_error_make (err, 0, "%s: expected an object", ctx);
    if (cl_json_string (e, ctx, "pageSize", &size, err) < 0
        || cl_json_uint64 (e, ctx, "limit", &limit, err) < 0)
      return -1;
    if (size == NULL || !*size || size[strspn (size, "0123456789KMGB")] != '\0')
      return cl_error_make (err, 0, "%s.pageSize: expected a size like 2MB or 1GB", ctx);
    if (cg == NULL)
      continue;
    file = is_v2 (cg, "hugetlb") ? cl_strdup_printf ("hugetlb.%s.max", size)
                                 : cl_strdup_printf ("hugetlb.%s.limit_in_bytes", size);
    if (put (cg, "hugetlb", file, FMT_U64 (limit), ctx, "limit", err) < 0)
      return -1;
  }
  return 0;
}

/* network (v1 net_cls / net_prio) */

static int
res_network (struct cl_cgroup *cg, json_t *res, const char *parent, cl_error_t *err)
{
  cleanup_free char *ctx = cl_json_path (parent, "network");
  json_t *net = NULL, *prios = NULL, *e;
  uint64_t classid = 0;
  int has_classid;
  size_t i;

  int present = cl_json_object (res, parent, "network", &net, err);
  if (present <= 0)
    return present;
  if ((has_classid = cl_json_uint64 (net, ctx, "classID", &classid, err)) < 0
      || cl_json_array (net, ctx, "priorities", &prios, err) < 0)
    return -1;
  if (cg && has_classid
      && put (cg, "net_cls", "net_cls.classid", FMT_U64 (classid), ctx, "classID", err) < 0)
    return -1;
  json_array_foreach (prios, i, e)
  {
    cleanup_free char *ectx = cl_strdup_printf ("%s.priorities[%zu]", ctx, i);
    const char *name = NULL;
    uint64_t prio = 0;
    if (cl_json_string (e, ectx, "name", &name, err) < 0
        || cl_json_uint64 (e, ectx, "priority", &prio, err) < 0)
      return -1;
    if (name == NULL)
      return cl_error_make (err, 0, "%s.name: missing", ectx);
    if (cg
        && put (cg, "net_prio", "net_prio.ifpriomap", cl_strdup_printf ("%s %" PRIu64, name, prio),
                ctx, "priorities", err)
               < 0)
      return -1;
  }
  return 0;
}

/* unified: raw cgroup v2 files */

static int
res_unified (struct cl_cgroup *cg, json_t *res, const char *parent, cl_error_t *err)
{
  json_t *unified = NULL, *v;
  const char *key;

  if (cl_json_object (res, parent, "unified", &unified, err) < 0)
    return -1;
  json_object_foreach (unified, key, v)
  {
    cleanup_free char *ctx = cl_strdup_printf ("%s.unified.%s", parent, key);
    cleanup_free char *controller = NULL;
    const char *dot = strchr (key, '.');
    if (!json_is_string (v))
      return cl_error_make (err, 0, "%s: expected a string", ctx);
    if (dot == NULL || dot == key || strchr (key, '/') || strstr (key, ".."))
      return cl_error_make (err, 0, "%s: not a cgroup v2 file name like `memory.high`", ctx);
    if (cg == NULL)
      continue;
    controller = strndup (key, (size_t)(dot - key));
    if (!is_v2 (cg, controller))
      return cl_error_make (err, 0, "%s: needs the %s controller in a cgroup v2 hierarchy", ctx,
                            controller);
    if (cl_ctr_cgroup_write (cg, controller, key, json_string_value (v), ctx, err) < 0)
      return -1;
  }
  return 0;
}

int
cl_ctr_cgroup_resources (struct cl_cgroup *cg, json_t *res, const char *ctx, cl_error_t *err)
{
  json_t *ignored = NULL;
  if (res == NULL)
    return 0;
  if (!json_is_object (res))
    return cl_error_make (err, 0, "%s: expected an object", ctx);
  if (cl_json_object (res, ctx, "rdma", &ignored, err) < 0)
    return -1;
  if (res_memory (cg, res, ctx, err) < 0 || res_cpu (cg, res, ctx, err) < 0
      || res_pids (cg, res, ctx, err) < 0 || res_blockio (cg, res, ctx, err) < 0
      || res_hugetlb (cg, res, ctx, err) < 0 || res_network (cg, res, ctx, err) < 0
      || res_unified (cg, res, ctx, err) < 0)
    return -1;
  return 0;
}
