/* SPDX-License-Identifier: Apache-2.0 */
#include "container/spec.h"
#include "container/netdev.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "container/caps.h"
#include "container/cgroup.h"
#include "container/seccomp.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

int
cl_ctr_spec_load (const char *bundle, json_t **config, cl_error_t *err)
{
  struct stat st;
  cleanup_free char *path = NULL;

  if (stat (bundle, &st) < 0)
    return cl_error_errno (err, "bundle `%s`", bundle);
  if (!S_ISDIR (st.st_mode))
    return cl_error_make (err, ENOTDIR, "bundle `%s`", bundle);
  path = cl_strdup_printf ("%s/config.json", bundle);
  if (cl_json_load_file (path, config, err) < 0)
    return -1;
  if (!json_is_object (*config))
    {
      json_decref (*config);
      *config = NULL;
      return cl_error_make (err, 0, "%s: expected a JSON object", path);
    }
  return 0;
}

static const struct
{
  const char *name;
  int flag;
  const char *proc;
} namespaces[] = {
  { "pid", CLONE_NEWPID, "pid" },          { "network", CLONE_NEWNET, "net" },
  { "mount", CLONE_NEWNS, "mnt" },         { "ipc", CLONE_NEWIPC, "ipc" },
  { "uts", CLONE_NEWUTS, "uts" },          { "user", CLONE_NEWUSER, "user" },
  { "cgroup", CLONE_NEWCGROUP, "cgroup" }, { "time", CLONE_NEWTIME, "time" },
};

int
cl_ctr_spec_namespace_flag (const char *type)
{
  for (size_t i = 0; i < sizeof namespaces / sizeof namespaces[0]; i++)
    if (strcmp (namespaces[i].name, type) == 0)
      return namespaces[i].flag;
  return 0;
}

const char *
cl_ctr_spec_namespace_proc_name (int flag)
{
  for (size_t i = 0; i < sizeof namespaces / sizeof namespaces[0]; i++)
    if (namespaces[i].flag == flag)
      return namespaces[i].proc;
  return NULL;
}

json_t *
cl_ctr_spec_namespace (json_t *linux_obj, const char *type)
{
  json_t *ns;
  size_t i;

  json_array_foreach (json_object_get (linux_obj, "namespaces"), i, ns)
  {
    const char *t = json_string_value (json_object_get (ns, "type"));
    if (t && strcmp (t, type) == 0)
      return ns;
  }
  return NULL;
}

const char *
cl_ctr_spec_namespace_path (json_t *linux_obj, const char *type)
{
  return json_string_value (json_object_get (cl_ctr_spec_namespace (linux_obj, type), "path"));
}

static const struct
{
  const char *name;
  int resource;
} rlimits[] = {
  { "RLIMIT_AS", RLIMIT_AS },
  { "RLIMIT_CORE", RLIMIT_CORE },
  { "RLIMIT_CPU", RLIMIT_CPU },
  { "RLIMIT_DATA", RLIMIT_DATA },
  { "RLIMIT_FSIZE", RLIMIT_FSIZE },
  { "RLIMIT_LOCKS", RLIMIT_LOCKS },
  { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
  { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
  { "RLIMIT_NICE", RLIMIT_NICE },
  { "RLIMIT_NOFILE", RLIMIT_NOFILE },
  { "RLIMIT_NPROC", RLIMIT_NPROC },
  { "RLIMIT_RSS", RLIMIT_RSS },
  { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
  { "RLIMIT_RTTIME", RLIMIT_RTTIME },
  { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
  { "RLIMIT_STACK", RLIMIT_STACK },
};

int
cl_ctr_spec_rlimit_resource (const char *name)
{
  for (size_t i = 0; i < sizeof rlimits / sizeof rlimits[0]; i++)
    if (strcmp (rlimits[i].name, name) == 0)
      return rlimits[i].resource;
  return -1;
}

int
cl_ctr_spec_ioprio_class (const char *name)
{
  static const char *const classes[] = { "IOPRIO_CLASS_NONE", "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE",
                                         "IOPRIO_CLASS_IDLE" };
  for (int i = 0; i < 4; i++)
    if (strcmp (classes[i], name) == 0)
      return i;
  return -1;
}

static const char *const sched_policies[]
    = { "SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE" };
static const char *const sched_flag_names[]
    = { "SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_KEEP_POLICY",
        "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_UTIL_CLAMP_MIN", "SCHED_FLAG_UTIL_CLAMP_MAX" };

int
cl_ctr_spec_sched_policy (const char *name)
{
  for (int i = 0; i < (int) (sizeof sched_policies / sizeof sched_policies[0]); i++)
    if (i != 4 && strcmp (sched_policies[i], name) == 0)
      return i;
  return -1;
}

int
cl_ctr_spec_sched_flag (const char *name)
{
  for (int i = 0; i < (int) (sizeof sched_flag_names / sizeof sched_flag_names[0]); i++)
    if (strcmp (sched_flag_names[i], name) == 0)
      return 1 << i;
  return -1;
}

/* Mount options: flag set, flag cleared, or propagation. */
static const struct
{
  const char *name;
  unsigned long set, clear, propagation;
} mount_opts[] = {
  { "ro", MS_RDONLY, 0, 0 },
  { "rw", 0, MS_RDONLY, 0 },
  { "nosuid", MS_NOSUID, 0, 0 },
  { "suid", 0, MS_NOSUID, 0 },
  { "nodev", MS_NODEV, 0, 0 },
  { "dev", 0, MS_NODEV, 0 },
  { "noexec", MS_NOEXEC, 0, 0 },
  { "exec", 0, MS_NOEXEC, 0 },
  { "sync", MS_SYNCHRONOUS, 0, 0 },
  { "async", 0, MS_SYNCHRONOUS, 0 },
  { "dirsync", MS_DIRSYNC, 0, 0 },
  { "remount", MS_REMOUNT, 0, 0 },
  { "mand", MS_MANDLOCK, 0, 0 },
  { "nomand", 0, MS_MANDLOCK, 0 },
  { "atime", 0, MS_NOATIME, 0 },
  { "noatime", MS_NOATIME, 0, 0 },
  { "diratime", 0, MS_NODIRATIME, 0 },
  { "nodiratime", MS_NODIRATIME, 0, 0 },
  { "relatime", MS_RELATIME, 0, 0 },
  { "norelatime", 0, MS_RELATIME, 0 },
  { "strictatime", MS_STRICTATIME, 0, 0 },
  { "nostrictatime", 0, MS_STRICTATIME, 0 },
  { "private", 0, 0, MS_PRIVATE },
  { "rprivate", 0, 0, MS_PRIVATE | MS_REC },
  { "shared", 0, 0, MS_SHARED },
  { "rshared", 0, 0, MS_SHARED | MS_REC },
  { "slave", 0, 0, MS_SLAVE },
  { "rslave", 0, 0, MS_SLAVE | MS_REC },
  { "unbindable", 0, 0, MS_UNBINDABLE },
  { "runbindable", 0, 0, MS_UNBINDABLE | MS_REC },
};

void
cl_ctr_spec_mount_options (json_t *options, struct mount_options *out)
{
  size_t i, j;
  json_t *v;
  char *data = NULL;

  memset (out, 0, sizeof *out);
  json_array_foreach (options, i, v)
  {
    const char *o = json_string_value (v);
    bool known = false;
    if (o == NULL)
      continue;
    if (strcmp (o, "bind") == 0 || strcmp (o, "rbind") == 0)
      {
        out->bind = true;
        out->rbind |= o[0] == 'r';
        continue;
      }
    /* Options runc accepts that change nothing here. */
    if (strcmp (o, "tmpcopyup") == 0 || strcmp (o, "defaults") == 0)
      continue;
    for (j = 0; j < sizeof mount_opts / sizeof mount_opts[0]; j++)
      if (strcmp (mount_opts[j].name, o) == 0)
        {
          out->flags |= mount_opts[j].set;
          out->flags &= ~mount_opts[j].clear;
          out->clear |= mount_opts[j].clear;
          out->propagation |= mount_opts[j].propagation;
          known = true;
          break;
        }
    if (known)
      continue;
    if (data == NULL)
      data = cl_strdup_printf ("%s", o);
    else
      {
        char *d = cl_strdup_printf ("%s,%s", data, o);
        free (data);
        data = d;
      }
  }
  out->data = data;
}

/* -------------------------------------------------------------------- */
/* Validation                                                             */

static int
check_string_array (json_t *obj, const char *ctx, const char *key, cl_error_t *err)
{
  const char **v = NULL;
  int r = cl_json_string_array (obj, ctx, key, &v, NULL, err);
  free (v);
  return r < 0 ? -1 : 0;
}

static int
field_error (const char *ctx, const char *key, cl_error_t *err, const char *fmt, const char *arg)
{
  cleanup_free char *path = cl_json_path (ctx, key);
  cleanup_free char *msg = cl_strdup_printf (fmt, arg);
  return cl_error_make (err, 0, "%s: %s", path, msg);
}

static int
check_uint32 (json_t *obj, const char *ctx, const char *key, bool required, cl_error_t *err)
{
  uint64_t v;
  int r = cl_json_uint64 (obj, ctx, key, &v, err);
  if (r < 0)
    return -1;
  if (r == 0 && required)
    return field_error (ctx, key, err, "%s", "missing (required)");
  if (r > 0 && v > UINT32_MAX)
    return field_error (ctx, key, err, "%s", "out of range (32 bits)");
  return 0;
}

/* process.scheduler, checked as the kernel's sched_setattr would (so that
   nothing is created for a combination it would refuse), with runc 1.2's
   rules on top: priority only for the real-time policies, runtime,
   deadline and period only for SCHED_DEADLINE. */
static int
validate_scheduler (json_t *process, const char *ctx, cl_error_t *err)
{
  json_t *sc = NULL, *flags = NULL, *f;
  cleanup_free char *c = cl_json_path (ctx, "scheduler");
  const char *policy = NULL;
  int64_t nice = 0, prio = 0, runtime = 0, deadline = 0, period = 0;
  bool rt, dl;
  size_t i;

  if (cl_json_object (process, ctx, "scheduler", &sc, err) < 0)
    return -1;
  if (sc == NULL)
    return 0;
  if (cl_json_string (sc, c, "policy", &policy, err) < 0)
    return -1;
  if (policy == NULL || cl_ctr_spec_sched_policy (policy) < 0)
    return field_error (c, "policy", err, "unknown policy `%s`", policy ? policy : "");
  if (cl_json_int64 (sc, c, "nice", &nice, err) < 0
      || cl_json_int64 (sc, c, "priority", &prio, err) < 0
      || cl_json_int64 (sc, c, "runtime", &runtime, err) < 0
      || cl_json_int64 (sc, c, "deadline", &deadline, err) < 0
      || cl_json_int64 (sc, c, "period", &period, err) < 0
      || cl_json_array (sc, c, "flags", &flags, err) < 0)
    return -1;
  rt = strcmp (policy, "SCHED_FIFO") == 0 || strcmp (policy, "SCHED_RR") == 0;
  dl = strcmp (policy, "SCHED_DEADLINE") == 0;
  if (nice < -20 || nice > 19)
    return field_error (c, "nice", err, "%s", "must be between -20 and 19");
  if (rt && (prio < 1 || prio > 99))
    return field_error (c, "priority", err, "must be between 1 and 99 for %s", policy);
  if (!rt && prio != 0)
    return field_error (c, "priority", err, "%s", "is for SCHED_FIFO and SCHED_RR only");
  if (!dl && (runtime || deadline || period))
    return cl_error_make (err, 0, "%s: runtime, deadline and period are for SCHED_DEADLINE only",
                          c);
  if (dl)
    {
      if (runtime < 1024)
        return field_error (c, "runtime", err, "%s", "must be at least 1024 ns for SCHED_DEADLINE");
      if (deadline < runtime)
        return field_error (c, "deadline", err, "%s", "must be at least the runtime");
      if (period != 0 && period < deadline)
        return field_error (c, "period", err, "%s", "must be at least the deadline (or 0)");
    }
  json_array_foreach (flags, i, f)
  {
    cleanup_free char *fc = cl_json_path (c, "flags");
    const char *name = json_string_value (f);
    if (!json_is_string (f) || cl_ctr_spec_sched_flag (name) < 0)
      return cl_error_make (err, 0, "%s[%zu]: unknown flag", fc, i);
    if (strncmp (name, "SCHED_FLAG_UTIL_CLAMP", 21) == 0)
      return cl_error_make (err, 0,
                            "%s[%zu]: `%s` needs clamp values, which process.scheduler has no "
                            "field for",
                            fc, i, name);
    if (!dl
        && (strcmp (name, "SCHED_FLAG_RECLAIM") == 0
            || strcmp (name, "SCHED_FLAG_DL_OVERRUN") == 0))
      return cl_error_make (err, 0, "%s[%zu]: `%s` is for SCHED_DEADLINE only", fc, i, name);
  }
  return 0;
}

int
cl_ctr_spec_validate_process (json_t *process, const char *ctx, cl_error_t *err)
{
  const char **args = NULL;
  size_t nargs = 0;
  const char *cwd = NULL;
  json_t *user = NULL, *caps = NULL, *rl = NULL, *v, *cs = NULL, *io = NULL;
  bool b;
  int64_t oom;
  size_t i;
  int r;

  if (!json_is_object (process))
    return cl_error_make (err, 0, "%s: expected an object", ctx);
  r = cl_json_string_array (process, ctx, "args", &args, &nargs, err);
  free (args);
  if (r < 0)
    return -1;
  if (r == 0 || nargs == 0)
    return field_error (ctx, "args", err, "%s", "must list at least the program to run");
  if (check_string_array (process, ctx, "env", err) < 0)
    return -1;
  if (cl_json_string (process, ctx, "cwd", &cwd, err) < 0)
    return -1;
  if (cwd && cwd[0] != '/')
    return field_error (ctx, "cwd", err, "must be an absolute path, got `%s`", cwd);
  if (cl_json_bool (process, ctx, "terminal", &b, err) < 0
      || cl_json_bool (process, ctx, "noNewPrivileges", &b, err) < 0)
    return -1;
  if (cl_json_object (process, ctx, "consoleSize", &cs, err) < 0)
    return -1;
  if (cs)
    {
      cleanup_free char *c = cl_json_path (ctx, "consoleSize");
      if (check_uint32 (cs, c, "height", false, err) < 0
          || check_uint32 (cs, c, "width", false, err) < 0)
        return -1;
    }
  if (cl_json_object (process, ctx, "user", &user, err) < 0)
    return -1;
  if (user)
    {
      cleanup_free char *u = cl_json_path (ctx, "user");
      json_t *gids = NULL;
      if (check_uint32 (user, u, "uid", false, err) < 0
          || check_uint32 (user, u, "gid", false, err) < 0
          || check_uint32 (user, u, "umask", false, err) < 0)
        return -1;
      if (cl_json_array (user, u, "additionalGids", &gids, err) < 0)
        return -1;
      json_array_foreach (gids, i, v)
      {
        if (!json_is_integer (v) || json_integer_value (v) < 0
            || json_integer_value (v) > UINT32_MAX)
          {
            cleanup_free char *g = cl_json_path (u, "additionalGids");
            return cl_error_make (err, 0, "%s[%zu]: expected an unsigned 32-bit integer", g, i);
          }
      }
    }
  if (cl_json_object (process, ctx, "capabilities", &caps, err) < 0)
    return -1;
  if (caps && cl_ctr_caps_validate (caps, err) < 0)
    return -1;
  if (cl_json_array (process, ctx, "rlimits", &rl, err) < 0)
    return -1;
  json_array_foreach (rl, i, v)
  {
    cleanup_free char *base = cl_json_path (ctx, "rlimits");
    cleanup_free char *c = cl_json_path_index (base, i);
    const char *type = NULL;
    uint64_t n;
    if (cl_json_string (v, c, "type", &type, err) < 0)
      return -1;
    if (type == NULL)
      return field_error (c, "type", err, "%s", "missing (required)");
    if (cl_ctr_spec_rlimit_resource (type) < 0)
      return field_error (c, "type", err, "unknown rlimit `%s`", type);
    if (cl_json_uint64 (v, c, "hard", &n, err) < 0 || cl_json_uint64 (v, c, "soft", &n, err) < 0)
      return -1;
  }
  if (cl_json_object (process, ctx, "ioPriority", &io, err) < 0)
    return -1;
  if (io)
    {
      cleanup_free char *c = cl_json_path (ctx, "ioPriority");
      const char *cls = NULL;
      int64_t prio = 0;
      if (cl_json_string (io, c, "class", &cls, err) < 0
          || cl_json_int64 (io, c, "priority", &prio, err) < 0)
        return -1;
      if (cls == NULL || cl_ctr_spec_ioprio_class (cls) < 0)
        return field_error (c, "class", err, "unknown class `%s`", cls ? cls : "");
      if (prio < 0 || prio > 7)
        return field_error (c, "priority", err, "%s", "must be between 0 and 7");
    }
  if (validate_scheduler (process, ctx, err) < 0)
    return -1;
  r = cl_json_int64 (process, ctx, "oomScoreAdj", &oom, err);
  if (r < 0)
    return -1;
  if (r > 0 && (oom < -1000 || oom > 1000))
    return field_error (ctx, "oomScoreAdj", err, "%s", "must be between -1000 and 1000");
  return 0;
}

static int
validate_namespaces (json_t *linux_obj, int *flags, cl_error_t *err)
{
  json_t *ns = NULL, *v;
  size_t i;
  int seen = 0;

  *flags = 0;
  if (cl_json_array (linux_obj, "linux", "namespaces", &ns, err) < 0)
    return -1;
  json_array_foreach (ns, i, v)
  {
    cleanup_free char *c = cl_strdup_printf ("linux.namespaces[%zu]", i);
    const char *type = NULL, *path = NULL;
    int flag;
    if (cl_json_string (v, c, "type", &type, err) < 0
        || cl_json_string (v, c, "path", &path, err) < 0)
      return -1;
    if (type == NULL)
      return field_error (c, "type", err, "%s", "missing (required)");
    flag = cl_ctr_spec_namespace_flag (type);
    if (flag == 0)
      return field_error (c, "type", err, "unknown namespace `%s`", type);
    if (seen & flag)
      return field_error (c, "type", err, "namespace `%s` listed twice", type);
    seen |= flag;
    if (path)
      {
        struct stat st;
        if (path[0] != '/')
          return field_error (c, "path", err, "must be an absolute path, got `%s`", path);
        if (stat (path, &st) < 0)
          {
            cleanup_free char *p = cl_json_path (c, "path");
            return cl_error_errno (err, "%s: `%s`", p, path);
          }
      }
  }
  *flags = seen;
  return 0;
}

static int
validate_mappings (json_t *linux_obj, const char *key, int ns_flags, cl_error_t *err)
{
  json_t *maps = NULL, *v;
  size_t i;

  if (cl_json_array (linux_obj, "linux", key, &maps, err) < 0)
    return -1;
  if (maps == NULL || json_array_size (maps) == 0)
    return 0;
  if (!(ns_flags & CLONE_NEWUSER))
    return field_error ("linux", key, err, "%s",
                        "mappings need a `user` namespace in linux.namespaces");
  json_array_foreach (maps, i, v)
  {
    cleanup_free char *c = cl_strdup_printf ("linux.%s[%zu]", key, i);
    uint64_t size = 0;
    if (!json_is_object (v))
      return cl_error_make (err, 0, "%s: expected an object", c);
    if (check_uint32 (v, c, "containerID", true, err) < 0
        || check_uint32 (v, c, "hostID", true, err) < 0
        || check_uint32 (v, c, "size", true, err) < 0)
      return -1;
    cl_json_uint64 (v, c, "size", &size, err);
    if (size == 0)
      return field_error (c, "size", err, "%s", "must be at least 1");
  }
  return 0;
}

static int
validate_mounts (json_t *config, cl_error_t *err)
{
  json_t *mounts = NULL, *v;
  size_t i;

  if (cl_json_array (config, "", "mounts", &mounts, err) < 0)
    return -1;
  json_array_foreach (mounts, i, v)
  {
    cleanup_free char *c = cl_strdup_printf ("mounts[%zu]", i);
    const char *dest = NULL, *s;
    if (!json_is_object (v))
      return cl_error_make (err, 0, "%s: expected an object", c);
    if (cl_json_string (v, c, "destination", &dest, err) < 0
        || cl_json_string (v, c, "type", &s, err) < 0
        || cl_json_string (v, c, "source", &s, err) < 0
        || check_string_array (v, c, "options", err) < 0)
      return -1;
    if (dest == NULL)
      return field_error (c, "destination", err, "%s", "missing (required)");
    if (dest[0] != '/')
      return field_error (c, "destination", err, "must be an absolute path, got `%s`", dest);
    if (json_object_get (v, "uidMappings") || json_object_get (v, "gidMappings"))
      return field_error (c, "uidMappings", err, "%s", "idmapped mounts are not supported");
  }
  return 0;
}

char *
cl_ctr_spec_clean_path (const char *path)
{
  char *out = cl_xmalloc0 (strlen (path) + 2);
  size_t len = 0;
  const char *p = path;

  while (*p)
    {
      size_t n;
      while (*p == '/')
        p++;
      n = strcspn (p, "/");
      if (n == 0 || (n == 1 && p[0] == '.'))
        ;
      else if (n == 2 && p[0] == '.' && p[1] == '.')
        {
          while (len > 0 && out[len - 1] != '/')
            len--;
          if (len > 0)
            len--;
        }
      else
        {
          out[len++] = '/';
          memcpy (out + len, p, n);
          len += n;
        }
      p += n;
    }
  if (len == 0)
    out[len++] = '/';
  out[len] = '\0';
  return out;
}

static int
validate_devices (json_t *linux_obj, cl_error_t *err)
{
  json_t *devs = NULL, *v;
  size_t i;

  if (cl_json_array (linux_obj, "linux", "devices", &devs, err) < 0)
    return -1;
  json_array_foreach (devs, i, v)
  {
    cleanup_free char *c = cl_strdup_printf ("linux.devices[%zu]", i);
    const char *type = NULL, *path = NULL;
    int64_t n;
    if (cl_json_string (v, c, "type", &type, err) < 0
        || cl_json_string (v, c, "path", &path, err) < 0)
      return -1;
    if (path == NULL || path[0] != '/')
      return field_error (c, "path", err, "%s", "must be an absolute path");
    cleanup_free char *clean = cl_ctr_spec_clean_path (path);
    if (strcmp (clean, "/") == 0)
      return field_error (c, "path", err, "`%s` names no file", path);
    if (type == NULL || strlen (type) != 1 || strchr ("cbup", type[0]) == NULL)
      return field_error (c, "type", err, "must be one of c, b, u, p, got `%s`", type ? type : "");
    if (cl_json_int64 (v, c, "major", &n, err) < 0 || cl_json_int64 (v, c, "minor", &n, err) < 0
        || check_uint32 (v, c, "fileMode", false, err) < 0
        || check_uint32 (v, c, "uid", false, err) < 0 || check_uint32 (v, c, "gid", false, err) < 0)
      return -1;
  }
  return 0;
}

static const char *const hook_list[]
    = { "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
        NULL };

static int
validate_hooks (json_t *config, cl_error_t *err)
{
  json_t *hooks = NULL, *list, *h;
  const char *key;
  size_t i;

  if (cl_json_object (config, "", "hooks", &hooks, err) < 0)
    return -1;
  json_object_foreach (hooks, key, list)
  {
    bool known = false;
    for (i = 0; hook_list[i]; i++)
      known |= strcmp (hook_list[i], key) == 0;
    if (!known)
      return field_error ("hooks", key, err, "%s", "unknown hook kind");
    if (cl_json_array (hooks, "hooks", key, &list, err) < 0)
      return -1;
    json_array_foreach (list, i, h)
    {
      cleanup_free char *c = cl_strdup_printf ("hooks.%s[%zu]", key, i);
      const char *path = NULL;
      int64_t t = 1;
      if (!json_is_object (h))
        return cl_error_make (err, 0, "%s: expected an object", c);
      if (cl_json_string (h, c, "path", &path, err) < 0
          || check_string_array (h, c, "args", err) < 0 || check_string_array (h, c, "env", err) < 0
          || cl_json_int64 (h, c, "timeout", &t, err) < 0)
        return -1;
      if (path == NULL || path[0] != '/')
        return field_error (c, "path", err, "%s", "must be an absolute path");
      if (t <= 0)
        return field_error (c, "timeout", err, "%s", "must be greater than zero");
    }
  }
  return 0;
}

static int
validate_time_offsets (json_t *linux_obj, int ns_flags, cl_error_t *err)
{
  json_t *offsets = NULL, *v;
  const char *clock;

  if (cl_json_object (linux_obj, "linux", "timeOffsets", &offsets, err) < 0)
    return -1;
  if (offsets == NULL)
    return 0;
  if (!(ns_flags & CLONE_NEWTIME))
    return cl_error_make (err, 0,
                          "linux.timeOffsets: needs a `time` namespace in linux.namespaces");
  json_object_foreach (offsets, clock, v)
  {
    cleanup_free char *c = cl_json_path ("linux.timeOffsets", clock);
    int64_t n;
    if (strcmp (clock, "monotonic") != 0 && strcmp (clock, "boottime") != 0)
      return cl_error_make (err, 0, "%s: unknown clock (monotonic or boottime)", c);
    if (!json_is_object (v))
      return cl_error_make (err, 0, "%s: expected an object", c);
    if (cl_json_int64 (v, c, "secs", &n, err) < 0 || cl_json_int64 (v, c, "nanosecs", &n, err) < 0)
      return -1;
  }
  return 0;
}

/* "0-2,5" -> bits; false on bad syntax or a node above 63. */
static bool
parse_node_list (const char *s, uint64_t *out)
{
  *out = 0;
  while (*s)
    {
      char *end;
      unsigned long a = strtoul (s, &end, 10), b = a;
      if (end == s)
        return false;
      if (*end == '-')
        {
          s = end + 1;
          b = strtoul (s, &end, 10);
          if (end == s || b < a)
            return false;
        }
      if (b > 63)
        return false;
      for (unsigned long n = a; n <= b; n++)
        *out |= 1ULL << n;
      s = end;
      if (*s == ',')
        s++;
      else if (*s)
        return false;
    }
  return true;
}

int
cl_ctr_spec_memory_policy (json_t *linux_obj, struct spec_mempolicy *out, cl_error_t *err)
{
  static const char *const modes[] = {
    "MPOL_DEFAULT",        "MPOL_PREFERRED",          "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_LOCAL",
    "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE"
  };
  static const struct
  {
    const char *name;
    int bit;
  } flag_names[] = { { "MPOL_F_NUMA_BALANCING", 1 << 13 },
                     { "MPOL_F_RELATIVE_NODES", 1 << 14 },
                     { "MPOL_F_STATIC_NODES", 1 << 15 } };
  const char *ctx = "linux.memoryPolicy", *mode = NULL, *nodes = NULL;
  json_t *mp = NULL, *flags = NULL, *f;
  cleanup_free char *online_s = NULL;
  uint64_t online = 0;
  size_t i, len = 0;
  int m = -1;

  memset (out, 0, sizeof *out);
  if (cl_json_object (linux_obj, "linux", "memoryPolicy", &mp, err) < 0)
    return -1;
  if (mp == NULL)
    return 0;
  if (cl_json_string (mp, ctx, "mode", &mode, err) < 0
      || cl_json_string (mp, ctx, "nodes", &nodes, err) < 0
      || cl_json_array (mp, ctx, "flags", &flags, err) < 0)
    return -1;
  for (i = 0; mode && i < sizeof modes / sizeof modes[0]; i++)
    if (strcmp (mode, modes[i]) == 0)
      m = (int)i;
  if (m < 0)
    return field_error (ctx, "mode", err, "unknown mode `%s`", mode ? mode : "");
  if (nodes && *nodes && !parse_node_list (nodes, &out->nodes))
    return field_error (ctx, "nodes", err, "`%s` is not a node list like 0-1,3", nodes);
  if ((m == 0 || m == 4) && out->nodes)
    return field_error (ctx, "nodes", err, "must be empty for %s", mode);
  if (m != 0 && m != 4 && m != 1 && out->nodes == 0)
    return field_error (ctx, "nodes", err, "%s needs at least one node", mode);
  /* The kernel would refuse a node this host does not have (EINVAL). */
  if (out->nodes
      && (cl_read_file ("/sys/devices/system/node/online", &online_s, &len, NULL) < 0
          || !parse_node_list (strtok (online_s, "\n"), &online)))
    online = 1; /* no NUMA sysfs: node 0 only */
  if (out->nodes & ~online)
    return field_error (ctx, "nodes", err, "`%s` names a node that is not online on this host",
                        nodes);
  out->mode = m;
  json_array_foreach (flags, i, f)
  {
    cleanup_free char *fc = cl_strdup_printf ("%s.flags[%zu]", ctx, i);
    const char *name = json_string_value (f);
    int bit = 0;
    for (size_t k = 0; name && k < sizeof flag_names / sizeof flag_names[0]; k++)
      if (strcmp (name, flag_names[k].name) == 0)
        bit = flag_names[k].bit;
    if (bit == 0)
      return cl_error_make (err, 0, "%s: unknown flag `%s`", fc, name ? name : "");
    if (m == 0 || m == 4)
      return cl_error_make (err, 0, "%s: %s takes no flags", fc, mode);
    if (bit == 1 << 13 && m != 2 && m != 5 && m != 6)
      return cl_error_make (err, 0,
                            "%s: %s is for MPOL_BIND, MPOL_PREFERRED_MANY and "
                            "MPOL_WEIGHTED_INTERLEAVE",
                            fc, name);
    out->mode |= bit;
  }
  if ((out->mode & (1 << 14)) && (out->mode & (1 << 15)))
    return cl_error_make (err, 0,
                          "%s.flags: MPOL_F_RELATIVE_NODES and MPOL_F_STATIC_NODES "
                          "exclude each other",
                          ctx);
  out->present = true;
  return 0;
}

/* Only sysctls that belong to one of the container's namespaces: any
   other would change the host (as runc). */
static int
check_sysctl_namespaced (const char *key, int ns_flags, cl_error_t *err)
{
  static const char *const ipc[]
      = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",          "kernel.sem", "kernel.shmall",
          "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", NULL };
  if (strncmp (key, "net.", 4) == 0)
    {
      if (ns_flags & CLONE_NEWNET)
        return 0;
      return field_error ("linux.sysctl", key, err, "%s", "needs a `network` namespace of its own");
    }
  if (strcmp (key, "kernel.hostname") == 0 || strcmp (key, "kernel.domainname") == 0)
    {
      if (ns_flags & CLONE_NEWUTS)
        return 0;
      return field_error ("linux.sysctl", key, err, "%s", "needs a `uts` namespace");
    }
  for (size_t i = 0; ipc[i]; i++)
    if (strcmp (key, ipc[i]) == 0)
      goto ipc_ns;
  if (strncmp (key, "fs.mqueue.", 10) == 0)
    goto ipc_ns;
  return field_error ("linux.sysctl", key, err, "%s",
                      "not namespaced: setting it would change the host");
ipc_ns:
  if (ns_flags & CLONE_NEWIPC)
    return 0;
  return field_error ("linux.sysctl", key, err, "%s", "needs an `ipc` namespace");
}

int
cl_ctr_spec_validate (json_t *config, const char *bundle, char **rootfs_out, cl_error_t *err)
{
  json_t *root = NULL, *process = NULL, *linux_obj = NULL, *sysctl = NULL, *seccomp = NULL, *v;
  const char *version = NULL, *path = NULL, *s;
  cleanup_free char *joined = NULL;
  char resolved[PATH_MAX];
  struct stat st;
  const char *key;
  bool b;
  int ns_flags = 0;

  if (cl_json_string (config, "", "ociVersion", &version, err) < 0)
    return -1;
  if (version == NULL)
    return cl_error_make (err, 0, "ociVersion: missing (required)");
  if (strncmp (version, "1.", 2) != 0)
    return cl_error_make (err, 0, "ociVersion: unsupported version `%s` (1.x expected)", version);
  if (cl_json_object (config, "", "root", &root, err) < 0)
    return -1;
  if (root == NULL)
    return cl_error_make (err, 0, "root: missing (required)");
  if (cl_json_string (root, "root", "path", &path, err) < 0
      || cl_json_bool (root, "root", "readonly", &b, err) < 0)
    return -1;
  if (path == NULL)
    return cl_error_make (err, 0, "root.path: missing (required)");
  joined
      = path[0] == '/' ? cl_strdup_printf ("%s", path) : cl_strdup_printf ("%s/%s", bundle, path);
  if (realpath (joined, resolved) == NULL || stat (resolved, &st) < 0)
    return cl_error_errno (err, "root.path: `%s`", joined);
  if (!S_ISDIR (st.st_mode))
    return cl_error_make (err, ENOTDIR, "root.path: `%s`", joined);

  if (cl_json_object (config, "", "process", &process, err) < 0)
    return -1;
  if (process == NULL)
    return cl_error_make (err, 0, "process: missing (required)");
  if (cl_ctr_spec_validate_process (process, "process", err) < 0)
    return -1;
  if (cl_json_string (config, "", "hostname", &s, err) < 0
      || cl_json_string (config, "", "domainname", &s, err) < 0)
    return -1;
  if (validate_mounts (config, err) < 0 || validate_hooks (config, err) < 0)
    return -1;
  if (cl_json_object (config, "", "annotations", &v, err) < 0)
    return -1;

  if (cl_json_object (config, "", "linux", &linux_obj, err) < 0)
    return -1;
  if (validate_namespaces (linux_obj, &ns_flags, err) < 0)
    return -1;
  if (!(ns_flags & CLONE_NEWNS))
    return cl_error_make (err, 0, "linux.namespaces: a `mount` namespace is required");
  if ((json_object_get (config, "hostname") || json_object_get (config, "domainname"))
      && !(ns_flags & CLONE_NEWUTS))
    return cl_error_make (err, 0,
                          "hostname: setting it needs a `uts` namespace in linux.namespaces");
  if (validate_mappings (linux_obj, "uidMappings", ns_flags, err) < 0
      || validate_mappings (linux_obj, "gidMappings", ns_flags, err) < 0
      || validate_devices (linux_obj, err) < 0
      || check_string_array (linux_obj, "linux", "maskedPaths", err) < 0
      || check_string_array (linux_obj, "linux", "readonlyPaths", err) < 0)
    return -1;
  if (cl_json_object (linux_obj, "linux", "sysctl", &sysctl, err) < 0)
    return -1;
  json_object_foreach (sysctl, key, v)
  {
    if (!json_is_string (v))
      return field_error ("linux.sysctl", key, err, "%s", "expected a string");
    if (strstr (key, "..") || strchr (key, '/') == key)
      return field_error ("linux.sysctl", key, err, "%s", "invalid sysctl name");
    if (check_sysctl_namespaced (key, ns_flags, err) < 0)
      return -1;
    /* runc: the OCI field and the sysctl would fight over the name. */
    if ((strcmp (key, "kernel.hostname") == 0 && json_object_get (config, "hostname"))
        || (strcmp (key, "kernel.domainname") == 0 && json_object_get (config, "domainname")))
      return field_error ("linux.sysctl", key, err, "conflicts with the OCI `%s` field", key + 7);
  }
  if (cl_json_string (linux_obj, "linux", "rootfsPropagation", &s, err) < 0)
    return -1;
  if (validate_time_offsets (linux_obj, ns_flags, err) < 0)
    return -1;
  {
    struct spec_mempolicy mp;
    if (cl_ctr_spec_memory_policy (linux_obj, &mp, err) < 0)
      return -1;
  }
  if (json_object_get (linux_obj, "intelRdt"))
    {
      if (access ("/sys/fs/resctrl/info", F_OK) < 0)
        return cl_error_make (err, 0,
                              "linux.intelRdt: this host has no resctrl filesystem "
                              "(no Intel RDT / AMD QoS, or /sys/fs/resctrl not mounted)");
      return cl_error_make (err, 0, "linux.intelRdt: not supported by cloison-runtime");
    }
  {
    /* A new network namespace: not one joined by path. */
    bool own_netns = false;
    json_t *ns;
    size_t k;
    json_array_foreach (json_object_get (linux_obj, "namespaces"), k, ns) own_netns
        |= strcmp (json_string_value (json_object_get (ns, "type")), "network") == 0
           && json_object_get (ns, "path") == NULL;
    if (cl_ctr_netdev_validate (linux_obj, own_netns, err) < 0)
      return -1;
  }
  {
    json_t *pers = NULL;
    const char *domain = NULL;
    if (cl_json_object (linux_obj, "linux", "personality", &pers, err) < 0
        || cl_json_string (pers, "linux.personality", "domain", &domain, err) < 0)
      return -1;
    if (domain && strcmp (domain, "LINUX") != 0 && strcmp (domain, "LINUX32") != 0)
      return cl_error_make (
          err, 0, "linux.personality.domain: unknown domain `%s` (LINUX or LINUX32)", domain);
  }
  if (cl_json_object (linux_obj, "linux", "seccomp", &seccomp, err) < 0)
    return -1;
  /* The profile itself is checked when it is compiled (create, right
     after the state directory): compiling runs the same checks, and a
     profile found in the compiled-filter cache passed them before
     (podman's default profile took ~0.3 ms to check by name on every
     architecture, every time). */
  (void)seccomp;
  if (cl_ctr_cgroup_validate (linux_obj, err) < 0)
    return -1;
  *rootfs_out = cl_xstrdup (resolved);
  return 0;
}

/* -------------------------------------------------------------------- */
/* Default spec and features                                              */

static const char default_spec[]
    = "{"
      "\"ociVersion\":\"" OCI_SPEC_VERSION "\","
      "\"process\":{\"terminal\":true,\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"sh\"],"
      "\"env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/"
      "bin\",\"TERM=xterm\"],"
      "\"cwd\":\"/\","
      "\"capabilities\":{\"bounding\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
      "\"effective\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
      "\"permitted\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"]},"
      "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}],"
      "\"noNewPrivileges\":true},"
      "\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
      "\"hostname\":\"cloison\","
      "\"mounts\":["
      "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
      "{\"destination\":\"/"
      "dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":[\"nosuid\",\"strictatime\","
      "\"mode=755\",\"size=65536k\"]},"
      "{\"destination\":\"/dev/"
      "pts\",\"type\":\"devpts\",\"source\":\"devpts\",\"options\":[\"nosuid\",\"noexec\","
      "\"newinstance\",\"ptmxmode=0666\",\"mode=0620\",\"gid=5\"]},"
      "{\"destination\":\"/dev/"
      "shm\",\"type\":\"tmpfs\",\"source\":\"shm\",\"options\":[\"nosuid\",\"noexec\",\"nodev\","
      "\"mode=1777\",\"size=65536k\"]},"
      "{\"destination\":\"/dev/"
      "mqueue\",\"type\":\"mqueue\",\"source\":\"mqueue\",\"options\":[\"nosuid\",\"noexec\","
      "\"nodev\"]},"
      "{\"destination\":\"/"
      "sys\",\"type\":\"sysfs\",\"source\":\"sysfs\",\"options\":[\"nosuid\",\"noexec\",\"nodev\","
      "\"ro\"]},"
      "{\"destination\":\"/sys/fs/"
      "cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\",\"options\":[\"nosuid\",\"noexec\","
      "\"nodev\",\"relatime\",\"ro\"]}],"
      "\"linux\":{\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]},"
      "\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":\"ipc\"},{\"type\":"
      "\"uts\"},{\"type\":\"mount\"},{\"type\":\"cgroup\"}],"
      "\"maskedPaths\":[\"/proc/acpi\",\"/proc/asound\",\"/proc/kcore\",\"/proc/keys\",\"/proc/"
      "latency_stats\","
      "\"/proc/timer_list\",\"/proc/timer_stats\",\"/proc/sched_debug\",\"/sys/firmware\",\"/proc/"
      "scsi\"],"
      "\"readonlyPaths\":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\",\"/proc/"
      "sysrq-trigger\"]}}";

/* As runc's rootless spec: the host's /sys bound read-only (sysfs and
   cgroup cannot be mounted from a user namespace without its own network
   namespace), and devpts without gid=5 (unmapped). */
static void
rootless_mounts (json_t *mounts)
{
  size_t i;
  json_t *m;

  for (i = json_array_size (mounts); i-- > 0;)
    {
      const char *dest;
      m = json_array_get (mounts, i);
      dest = json_string_value (json_object_get (m, "destination"));
      if (strcmp (dest, "/sys/fs/cgroup") == 0)
        json_array_remove (mounts, i);
      else if (strcmp (dest, "/sys") == 0)
        json_array_set_new (mounts, i,
                            json_pack ("{s:s, s:s, s:s, s:[s,s,s,s,s]}", "destination", "/sys",
                                       "type", "none", "source", "/sys", "options", "rbind",
                                       "nosuid", "noexec", "nodev", "ro"));
      else if (strcmp (dest, "/dev/pts") == 0)
        {
          json_t *opts = json_object_get (m, "options"), *o;
          size_t j;
          json_array_foreach (opts, j, o)
          {
            if (strcmp (json_string_value (o), "gid=5") == 0)
              {
                json_array_remove (opts, j);
                break;
              }
          }
        }
    }
}

json_t *
cl_ctr_spec_default (bool rootless)
{
  json_t *spec = json_loads (default_spec, 0, NULL);
  if (spec && rootless)
    {
      json_t *linux_obj = json_object_get (spec, "linux");
      json_t *ns = json_object_get (linux_obj, "namespaces");
      json_t *map;
      json_array_remove (ns, 1); /* the network namespace: rootless keeps the host's */
      json_array_append_new (ns, json_pack ("{s:s}", "type", "user"));
      map = json_pack ("[{s:i, s:i, s:i}]", "containerID", 0, "hostID", (int)getuid (), "size", 1);
      json_object_set_new (linux_obj, "uidMappings", map);
      map = json_pack ("[{s:i, s:i, s:i}]", "containerID", 0, "hostID", (int)getgid (), "size", 1);
      json_object_set_new (linux_obj, "gidMappings", map);
      json_object_del (linux_obj, "resources");
      rootless_mounts (json_object_get (spec, "mounts"));
    }
  return spec;
}

static json_t *
strv_json (const char *const *v)
{
  json_t *a = json_array ();
  for (; *v; v++)
    json_array_append_new (a, json_string (*v));
  return a;
}

static const char *const all_caps[] = { "CAP_CHOWN",
                                        "CAP_DAC_OVERRIDE",
                                        "CAP_DAC_READ_SEARCH",
                                        "CAP_FOWNER",
                                        "CAP_FSETID",
                                        "CAP_KILL",
                                        "CAP_SETGID",
                                        "CAP_SETUID",
                                        "CAP_SETPCAP",
                                        "CAP_LINUX_IMMUTABLE",
                                        "CAP_NET_BIND_SERVICE",
                                        "CAP_NET_BROADCAST",
                                        "CAP_NET_ADMIN",
                                        "CAP_NET_RAW",
                                        "CAP_IPC_LOCK",
                                        "CAP_IPC_OWNER",
                                        "CAP_SYS_MODULE",
                                        "CAP_SYS_RAWIO",
                                        "CAP_SYS_CHROOT",
                                        "CAP_SYS_PTRACE",
                                        "CAP_SYS_PACCT",
                                        "CAP_SYS_ADMIN",
                                        "CAP_SYS_BOOT",
                                        "CAP_SYS_NICE",
                                        "CAP_SYS_RESOURCE",
                                        "CAP_SYS_TIME",
                                        "CAP_SYS_TTY_CONFIG",
                                        "CAP_MKNOD",
                                        "CAP_LEASE",
                                        "CAP_AUDIT_WRITE",
                                        "CAP_AUDIT_CONTROL",
                                        "CAP_SETFCAP",
                                        "CAP_MAC_OVERRIDE",
                                        "CAP_MAC_ADMIN",
                                        "CAP_SYSLOG",
                                        "CAP_WAKE_ALARM",
                                        "CAP_BLOCK_SUSPEND",
                                        "CAP_AUDIT_READ",
                                        "CAP_PERFMON",
                                        "CAP_BPF",
                                        "CAP_CHECKPOINT_RESTORE",
                                        NULL };
static const char *const seccomp_actions[] = { "SCMP_ACT_ALLOW",       "SCMP_ACT_ERRNO",
                                               "SCMP_ACT_KILL",        "SCMP_ACT_KILL_PROCESS",
                                               "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                                               "SCMP_ACT_NOTIFY",      "SCMP_ACT_TRACE",
                                               "SCMP_ACT_TRAP",        NULL };
static const char *const seccomp_operators[]
    = { "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",        "SCMP_CMP_EQ",
        "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ", NULL };
json_t *
cl_ctr_spec_features (void)
{
  json_t *f = json_object (), *ns = json_array (), *opts = json_array (), *linux_obj;
  size_t i;

  json_object_set_new (f, "ociVersionMin", json_string ("1.0.0"));
  json_object_set_new (f, "ociVersionMax", json_string (OCI_SPEC_VERSION));
  json_object_set_new (f, "hooks", strv_json (hook_list));
  for (i = 0; i < sizeof mount_opts / sizeof mount_opts[0]; i++)
    json_array_append_new (opts, json_string (mount_opts[i].name));
  json_array_append_new (opts, json_string ("bind"));
  json_array_append_new (opts, json_string ("rbind"));
  json_array_append_new (opts, json_string ("tmpcopyup"));
  json_object_set_new (f, "mountOptions", opts);
  for (i = 0; i < sizeof namespaces / sizeof namespaces[0]; i++)
    json_array_append_new (ns, json_string (namespaces[i].name));
  linux_obj
      = json_pack ("{s:o, s:o, s:{s:b, s:b, s:b}, s:{s:b, s:o, s:o}, s:{s:b}, s:{s:b}, s:{s:b}}",
                   "namespaces", ns, "capabilities", strv_json (all_caps), "cgroup", "v1", 1, "v2",
                   1, "systemd", 0, "seccomp", "enabled", 1, "actions", strv_json (seccomp_actions),
                   "operators", strv_json (seccomp_operators), "apparmor", "enabled", 0, "selinux",
                   "enabled", 0, "intelRdt", "enabled", 0);
  /* Runtime-spec 1.2/1.3 additions: what we do and what we refuse. */
  json_object_set_new (linux_obj, "memoryPolicy",
                       json_pack ("{s:[s,s,s,s,s,s,s], s:[s,s,s]}", "modes", "MPOL_DEFAULT",
                                  "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
                                  "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL", "flags",
                                  "MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES",
                                  "MPOL_F_STATIC_NODES"));
  json_object_set_new (linux_obj, "netDevices", json_pack ("{s:b}", "enabled", 1));
  json_object_set_new (linux_obj, "mountExtensions",
                       json_pack ("{s:{s:b}}", "idmap", "enabled", 0));
  json_object_set_new (f, "linux", linux_obj);
  json_object_set_new (f, "annotations",
                       json_pack ("{s:s}", "org.cloison.runtime.version", CLOISON_VERSION));
  return f;
}
