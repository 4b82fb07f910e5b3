/* SPDX-License-Identifier: Apache-2.0 */
/* The container's cgroups: where the hierarchies are, which directory the
   container gets in each, and the life of those directories (create, join,
   freeze, signal, remove, save).  Resource files are written by
   cgroup_resources.c (through cgroup_files.c), device rules by cgroup_devices.c.

   Paths follow runc's cgroupfs driver: an absolute linux.cgroupsPath is
   taken from each hierarchy's root; a relative one from the caller's own
   cgroup in v1 hierarchies and from its parent in the unified one (whose
   own cgroup already holds processes, so it cannot delegate controllers).
   Without cgroupsPath the container goes to the relative `cloison/<id>`,
   so that it stays inside whatever limits its caller lives under. */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "container/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void
sleep_ms (long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep (&ts, NULL);
}

static void
dir_clear (struct cl_cgroup_dir *d)
{
  free (d->controllers);
  free (d->mount);
  free (d->path);
}

void
cl_ctr_cgroup_free (struct cl_cgroup *cg)
{
  if (cg == NULL)
    return;
  for (size_t i = 0; i < cg->n_dirs; i++)
    dir_clear (&cg->dirs[i]);
  free (cg->dirs);
  free (cg->unified_controllers);
  free (cg);
}

static struct cl_cgroup_dir *
dir_add (struct cl_cgroup *cg)
{
  cg->dirs = realloc (cg->dirs, (cg->n_dirs + 1) * sizeof *cg->dirs);
  if (cg->dirs == NULL)
    abort ();
  memset (&cg->dirs[cg->n_dirs], 0, sizeof *cg->dirs);
  return &cg->dirs[cg->n_dirs++];
}

static bool
list_has (const char *list, const char *name)
{
  return cl_ctr_list_has (list, name, ',');
}


/* runc's systemd form "slice:prefix:name" (never a path). */
static bool
is_systemd_form (const char *path)
{
  int colons = 0;
  for (const char *p = path; *p; p++)
    colons += *p == ':';
  return path[0] != '/' && colons == 2;
}

static int
check_cgroups_path (const char *path, cl_error_t *err)
{
  if (is_systemd_form (path))
    return cl_error_make (err, 0,
                          "linux.cgroupsPath: `%s` is in systemd's slice:prefix:name form, which "
                          "needs --systemd-cgroup (not supported: cloison drives cgroupfs itself)",
                          path);
  if (path[strspn (path, "/")] == '\0')
    return cl_error_make (err, 0, "linux.cgroupsPath: `%s` names no cgroup below the root", path);
  for (const char *p = path; *p;)
    {
      size_t len = strcspn (p, "/");
      if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
        return cl_error_make (err, 0, "linux.cgroupsPath: `%s` must not contain `.` or `..`",
                              path);
      p += len;
      p += strspn (p, "/");
    }
  return 0;
}

static char *
parent_of (const char *path)
{
  char *p = cl_xstrdup (path), *slash = strrchr (p, '/');
  if (slash && slash != p)
    *slash = '\0';
  else
    strcpy (p, "/");
  return p;
}

/* v1 cpuset directories start empty and refuse tasks until filled. */
static void
cpuset_fill (const char *dir)
{
  static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
  for (size_t i = 0; i < 2; i++)
    {
      cleanup_free char *mine = NULL, *parent_file = NULL, *value = NULL, *dirparent = NULL;
      cleanup_free char *path = cl_strdup_printf ("%s/%s", dir, files[i]);
      cl_error_t e = NULL;
      if (cl_read_file (path, &mine, NULL, &e) < 0)
        {
          cl_error_release (&e);
          continue;
        }
      if (mine[0] != '\n' && mine[0] != '\0')
        continue;
      dirparent = parent_of (dir);
      parent_file = cl_strdup_printf ("%s/%s", dirparent, files[i]);
      if (cl_read_file (parent_file, &value, NULL, &e) == 0)
        cl_write_file (path, value, strlen (value), 0, &e);
      cl_error_release (&e);
    }
}

/* mkdir -p of `rel` under `mount`; counts the components it made. */
static int
make_dirs (const char *mount, const char *rel, bool cpuset, int *created, cl_error_t *err)
{
  cleanup_free char *full = cl_ctr_path_join_clean (mount, rel, NULL);
  size_t base = strlen (mount);
  *created = 0;
  if (strlen (full) <= base + 1)
    return cl_error_make (err, 0, "cgroup `%s`: not below the hierarchy's root", full);
  for (int attempt = 0;; attempt++)
    {
      bool failed = false;
      for (char *p = full + base + 1;; p++)
        {
          if (*p == '/' || *p == '\0')
            {
              char saved = *p;
              *p = '\0';
              if (mkdir (full, 0755) == 0)
                (*created)++;
              else if (errno != EEXIST)
                failed = true;
              if (!failed && cpuset)
                cpuset_fill (full);
              *p = saved;
              if (failed || saved == '\0')
                break;
            }
        }
      if (!failed)
        return 0;
      /* A parent removed at that instant by another container's destroy. */
      if (errno != ENOENT || attempt >= 3)
        return cl_error_errno (err, "mkdir `%s`", full);
    }
}

static int
read_unified_controllers (struct cl_cgroup *cg, const char *mount)
{
  cleanup_free char *path = cl_strdup_printf ("%s/cgroup.controllers", mount);
  cl_error_t e = NULL;
  free (cg->unified_controllers);
  cg->unified_controllers = NULL;
  if (cl_read_file (path, &cg->unified_controllers, NULL, &e) < 0)
    {
      cl_error_release (&e);
      cg->unified_controllers = cl_xstrdup ("");
    }
  cg->unified_controllers[strcspn (cg->unified_controllers, "\n")] = '\0';
  return 0;
}

int
cl_ctr_cgroup_validate (json_t *linux_obj, cl_error_t *err)
{
  const char *path = NULL;
  json_t *resources = NULL, *devices = NULL, *linux_devices = NULL;
  struct cl_dev_policy policy;

  if (linux_obj == NULL)
    return 0;
  if (cl_json_string (linux_obj, "linux", "cgroupsPath", &path, err) < 0)
    return -1;
  if (path && check_cgroups_path (path, err) < 0)
    return -1;
  if (cl_json_object (linux_obj, "linux", "resources", &resources, err) < 0)
    return -1;
  if (resources && cl_ctr_cgroup_resources (NULL, resources, "linux.resources", err) < 0)
    return -1;
  if (cl_json_array (resources, "linux.resources", "devices", &devices, err) < 0
      || cl_json_array (linux_obj, "linux", "devices", &linux_devices, err) < 0)
    return -1;
  if (cl_ctr_dev_policy_build (devices, linux_devices, &policy, err) < 0)
    return -1;
  free (policy.exceptions);
  return 0;
}

static int
move_pid (struct cl_cgroup *cg, pid_t pid, cl_error_t *err)
{
  char buf[24];
  snprintf (buf, sizeof buf, "%d", (int) pid);
  for (size_t i = 0; i < cg->n_dirs; i++)
    {
      cleanup_free char *path = cl_ctr_cgroup_dir_file (&cg->dirs[i], "cgroup.procs");
      cl_error_t e = NULL;
      if (cl_write_file (path, buf, strlen (buf), 0, &e) < 0)
        {
          cl_error_release (&e);
          return cl_error_errno (err, "move process %d into `%s`", (int) pid, path);
        }
    }
  return 0;
}

int
cl_ctr_cgroup_add_pid (struct cl_cgroup *cg, pid_t pid, cl_error_t *err)
{
  return move_pid (cg, pid, err);
}

static int
apply_devices (struct cl_cgroup *cg, json_t *resource_devices, json_t *linux_devices,
               cl_error_t *err)
{
  struct cl_dev_policy policy;
  struct cl_cgroup_dir *d;
  int r;

  d = cl_ctr_cgroup_dir_for (cg, "devices");
  if (d == NULL)
    for (size_t i = 0; i < cg->n_dirs; i++)
      if (cg->dirs[i].v2)
        d = &cg->dirs[i];
  if (d == NULL)
    return 0; /* no devices controller and no cgroup v2: nothing can enforce it */
  if (cl_ctr_dev_policy_build (resource_devices, linux_devices, &policy, err) < 0)
    return -1;
  if (!d->v2)
    r = cl_ctr_dev_v1_apply (&policy, d->path, err);
  else
    {
      struct bpf_insn *insns = NULL;
      size_t n = 0;
      r = cl_ctr_dev_bpf_build (&policy, &insns, &n, err);
      if (r == 0)
        r = cl_ctr_dev_bpf_attach (insns, n, d->path, err);
      free (insns);
    }
  free (policy.exceptions);
  return r;
}

int
cl_ctr_cgroup_enter (const char *id, json_t *linux_obj, pid_t pid, struct cl_cgroup **out,
                     cl_error_t *err)
{
  struct cl_hierarchy *h = NULL;
  size_t n = 0;
  const char *path = NULL;
  cleanup_free char *default_path = NULL, *self_cgroup = NULL;
  json_t *resources = NULL, *devices = NULL, *linux_devices = NULL;
  struct cl_cgroup *cg;
  cl_error_t ignored = NULL;

  *out = NULL;
  if (cl_ctr_cgroup_validate (linux_obj, err) < 0)
    return -1;
  cl_json_string (linux_obj, "linux", "cgroupsPath", &path, err);
  cl_json_object (linux_obj, "linux", "resources", &resources, err);
  cl_json_array (resources, "linux.resources", "devices", &devices, err);
  cl_json_array (linux_obj, "linux", "devices", &linux_devices, err);
  if (path == NULL)
    path = default_path = cl_strdup_printf ("cloison/%s", id);

  if (cl_ctr_hierarchies_read (&h, &n, err) < 0)
    return -1;
  if (n == 0)
    {
      free (h);
      return cl_error_make (err, 0, "no cgroup hierarchy is mounted (see /proc/self/mountinfo)");
    }
  cg = cl_xmalloc0 (sizeof *cg);
  cg->mode = cl_ctr_hierarchies_mode (h, n);
  /* Read once for every hierarchy: most of this phase's cost was
     re-reading it per hierarchy. */
  if (path[0] != '/')
    self_cgroup = cl_ctr_cgroup_read_self ();
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *rel = NULL;
      struct cl_cgroup_dir *d = dir_add (cg);
      d->controllers = cl_xstrdup (h[i].v2 ? "" : h[i].controllers);
      d->mount = cl_xstrdup (h[i].mount);
      d->v2 = h[i].v2;
      if (path[0] == '/')
        rel = cl_xstrdup (path);
      else
        {
          cleanup_free char *own = cl_ctr_hierarchy_own_cgroup_in (self_cgroup, &h[i]);
          cleanup_free char *base = h[i].v2 ? parent_of (own) : cl_xstrdup (own);
          rel = cl_ctr_path_join_clean (base, path, NULL);
        }
      d->path = cl_ctr_path_join_clean (d->mount, rel, NULL);
      if (d->v2)
        read_unified_controllers (cg, d->mount);
      if (make_dirs (d->mount, rel, !d->v2 && list_has (d->controllers, "cpuset"), &d->created,
                     err)
          < 0)
        goto fail;
      /* The shared `cloison` parent of default paths goes with its last
         container, whoever made it. */
      if (default_path && d->created < 2)
        d->created = 2;
      if (d->v2 && cg->mode == CL_CGROUP_V2)
        cl_ctr_cgroup_enable_v2_controllers (d->mount, rel, cg->unified_controllers);
    }
  free (h);
  h = NULL;

  /* Limits first, while the cgroup is empty (a 1 MiB memory limit cannot
     be set under a process that already uses more); the process last. */
  if (resources && cl_ctr_cgroup_resources (cg, resources, "linux.resources", err) < 0)
    goto fail;
  if (apply_devices (cg, devices, linux_devices, err) < 0)
    goto fail;
  if (pid > 0 && move_pid (cg, pid, err) < 0)
    goto fail;
  *out = cg;
  return 0;

fail:
  free (h);
  cl_ctr_cgroup_destroy (cg, &ignored);
  cl_error_release (&ignored);
  cl_ctr_cgroup_free (cg);
  return -1;
}

int
cl_ctr_cgroup_update (struct cl_cgroup *cg, json_t *resources, cl_error_t *err)
{
  json_t *devices = NULL;
  if (resources == NULL)
    return 0;
  if (!json_is_object (resources))
    return cl_error_make (err, 0, "resources: expected an object");
  if (cl_ctr_cgroup_resources (NULL, resources, "linux.resources", err) < 0
      || cl_ctr_cgroup_resources (cg, resources, "linux.resources", err) < 0)
    return -1;
  /* Device rules stay as created, as with runc's update: the nodes of
     linux.devices are not known here and would lose access. */
  if (cl_json_array (resources, "linux.resources", "devices", &devices, err) < 0)
    return -1;
  if (devices)
    cl_debug ("update: linux.resources.devices ignored (set at create)");
  return 0;
}

/* The directory to read members from: pids, else the unified one, else
   the first. */
static struct cl_cgroup_dir *
members_dir (struct cl_cgroup *cg)
{
  struct cl_cgroup_dir *d = cl_ctr_cgroup_dir_for (cg, "pids");
  if (d)
    return d;
  for (size_t i = 0; i < cg->n_dirs; i++)
    if (cg->dirs[i].v2)
      return &cg->dirs[i];
  return cg->n_dirs ? &cg->dirs[0] : NULL;
}

static int
read_pids (const char *dir, pid_t **pids, size_t *n, cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("%s/cgroup.procs", dir);
  cleanup_free char *text = NULL;
  size_t count = 0, cap = 16;
  pid_t *v;

  *pids = NULL;
  *n = 0;
  if (cl_read_file (path, &text, NULL, err) < 0)
    return -1;
  v = cl_xmalloc0 (cap * sizeof *v);
  for (char *p = text, *end; *p; p = end)
    {
      long pid = strtol (p, &end, 10);
      if (end == p)
        break;
      if (count == cap)
        {
          cap *= 2;
          v = realloc (v, cap * sizeof *v);
          if (v == NULL)
            abort ();
        }
      v[count++] = (pid_t) pid;
    }
  *pids = v;
  *n = count;
  return 0;
}

int
cl_ctr_cgroup_pids (struct cl_cgroup *cg, pid_t **pids, size_t *n, cl_error_t *err)
{
  struct cl_cgroup_dir *d = members_dir (cg);
  *pids = NULL;
  *n = 0;
  if (d == NULL)
    return 0;
  return read_pids (d->path, pids, n, err);
}

/* Waits for a v1 freezer to reach `want` (FROZEN may need several writes
   while tasks fork). */
static int
freeze_v1 (struct cl_cgroup_dir *d, bool frozen, cl_error_t *err)
{
  cleanup_free char *path = cl_ctr_cgroup_dir_file (d, "freezer.state");
  const char *want = frozen ? "FROZEN" : "THAWED";
  for (int i = 0; i < 2000; i++)
    {
      cleanup_free char *state = NULL;
      cl_error_t e = NULL;
      if (cl_write_file (path, want, strlen (want), 0, &e) < 0)
        {
          cl_error_release (&e);
          return cl_error_errno (err, "write `%s` to `%s`", want, path);
        }
      if (cl_read_file (path, &state, NULL, err) < 0)
        return -1;
      if (strncmp (state, want, strlen (want)) == 0)
        return 0;
      sleep_ms (i < 10 ? 1 : 5);
    }
  if (frozen)
    {
      cl_error_t e = NULL;
      cl_write_file (path, "THAWED", 6, 0, &e);
      cl_error_release (&e);
    }
  return cl_error_make (err, ETIMEDOUT, "cgroup `%s`: freezer did not reach %s", d->path, want);
}

static int
freeze_v2 (struct cl_cgroup_dir *d, bool frozen, cl_error_t *err)
{
  cleanup_free char *path = cl_ctr_cgroup_dir_file (d, "cgroup.freeze");
  cleanup_free char *events = cl_ctr_cgroup_dir_file (d, "cgroup.events");
  const char *want = frozen ? "frozen 1" : "frozen 0";
  cl_error_t e = NULL;

  if (cl_write_file (path, frozen ? "1" : "0", 1, 0, &e) < 0)
    {
      cl_error_release (&e);
      return cl_error_errno (err, "write `%s`", path);
    }
  for (int i = 0; i < 2000; i++)
    {
      cleanup_free char *text = NULL;
      if (cl_read_file (events, &text, NULL, err) < 0)
        return -1;
      if (strstr (text, want))
        return 0;
      sleep_ms (i < 10 ? 1 : 5);
    }
  return cl_error_make (err, ETIMEDOUT, "cgroup `%s`: did not reach `%s`", d->path, want);
}

int
cl_ctr_cgroup_freeze (struct cl_cgroup *cg, bool frozen, cl_error_t *err)
{
  struct cl_cgroup_dir *d = NULL;
  for (size_t i = 0; i < cg->n_dirs && d == NULL; i++)
    if (!cg->dirs[i].v2 && list_has (cg->dirs[i].controllers, "freezer"))
      d = &cg->dirs[i];
  if (d)
    return freeze_v1 (d, frozen, err);
  for (size_t i = 0; i < cg->n_dirs; i++)
    if (cg->dirs[i].v2)
      return freeze_v2 (&cg->dirs[i], frozen, err);
  return cl_error_make (err, ENOTSUP, "no freezer: neither a v1 freezer hierarchy nor cgroup v2");
}

int
cl_ctr_cgroup_kill_all (struct cl_cgroup *cg, int signo, cl_error_t *err)
{
  pid_t *pids = NULL;
  size_t n = 0;
  bool frozen;
  cl_error_t ignored = NULL;

  if (signo == SIGKILL)
    for (size_t i = 0; i < cg->n_dirs; i++)
      if (cg->dirs[i].v2)
        {
          cleanup_free char *path = cl_ctr_cgroup_dir_file (&cg->dirs[i], "cgroup.kill");
          if (access (path, F_OK) == 0 && cl_write_file (path, "1", 1, 0, &ignored) == 0)
            return 0;
          cl_error_release (&ignored);
        }
  /* Frozen, nobody forks a child that escapes the signal. */
  frozen = cl_ctr_cgroup_freeze (cg, true, &ignored) == 0;
  cl_error_release (&ignored);
  if (cl_ctr_cgroup_pids (cg, &pids, &n, err) < 0)
    {
      if (frozen)
        cl_ctr_cgroup_freeze (cg, false, &ignored);
      cl_error_release (&ignored);
      return -1;
    }
  for (size_t i = 0; i < n; i++)
    if (kill (pids[i], signo) < 0 && errno != ESRCH)
      cl_debug ("kill %d: %s", (int) pids[i], strerror (errno));
  free (pids);
  if (frozen && cl_ctr_cgroup_freeze (cg, false, err) < 0)
    return -1;
  return 0;
}

/* rmdir of a directory and the sub-cgroups the container made in it. */
static int
remove_tree (const char *path)
{
  cleanup_dir DIR *dir = NULL;
  struct dirent *de;

  /* Usually the container made no sub-cgroups: one rmdir, no listing. */
  if (rmdir (path) == 0 || errno == ENOENT)
    return 0;
  if (errno != EBUSY && errno != ENOTEMPTY)
    return -1;
  dir = opendir (path);
  if (dir == NULL)
    return errno == ENOENT ? 0 : -1;
  while ((de = readdir (dir)))
    if (de->d_type == DT_DIR && strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
      {
        cleanup_free char *sub = cl_strdup_printf ("%s/%s", path, de->d_name);
        remove_tree (sub);
      }
  if (rmdir (path) < 0 && errno != ENOENT)
    return -1;
  return 0;
}

static void
kill_members (const char *dir)
{
  pid_t *pids = NULL;
  size_t n = 0;
  cl_error_t e = NULL;
  if (read_pids (dir, &pids, &n, &e) == 0)
    for (size_t i = 0; i < n; i++)
      kill (pids[i], SIGKILL);
  cl_error_release (&e);
  free (pids);
}

int
cl_ctr_cgroup_destroy (struct cl_cgroup *cg, cl_error_t *err)
{
  int ret = 0;
  if (cg == NULL)
    return 0;
  for (size_t i = 0; i < cg->n_dirs; i++)
    {
      struct cl_cgroup_dir *d = &cg->dirs[i];
      cleanup_free char *up = NULL;
      int attempt;

      bool removed = false;

      for (attempt = 0; attempt < 400; attempt++)
        {
          if (remove_tree (d->path) == 0)
            {
              removed = true;
              break;
            }
          if (errno != EBUSY && errno != ENOTEMPTY)
            break;
          /* Stragglers (a container without its own pid namespace, or
             processes still exiting). */
          if (attempt % 20 == 5)
            kill_members (d->path);
          sleep_ms (attempt < 20 ? 1 : 5);
        }
      if (!removed && access (d->path, F_OK) == 0)
        {
          cl_error_errno (err, "rmdir `%s`", d->path);
          ret = -1;
          continue;
        }
      /* Parents we made, if nobody else uses them now. */
      up = cl_xstrdup (d->path);
      for (int k = 1; k < d->created; k++)
        {
          char *slash = strrchr (up, '/');
          if (slash == NULL || slash == up)
            break;
          *slash = '\0';
          if (rmdir (up) < 0)
            break;
        }
    }
  return ret;
}

json_t *
cl_ctr_cgroup_save (struct cl_cgroup *cg)
{
  static const char *const modes[] = { "v1", "hybrid", "v2" };
  json_t *dirs = json_array ();
  for (size_t i = 0; i < cg->n_dirs; i++)
    json_array_append_new (dirs, json_pack ("{s:s, s:s, s:s, s:i, s:b}", "controllers",
                                            cg->dirs[i].controllers, "mount", cg->dirs[i].mount,
                                            "path", cg->dirs[i].path, "created",
                                            cg->dirs[i].created, "v2", cg->dirs[i].v2));
  return json_pack ("{s:s, s:o}", "mode", modes[cg->mode], "dirs", dirs);
}

int
cl_ctr_cgroup_load (json_t *saved, struct cl_cgroup **out, cl_error_t *err)
{
  const char *mode = NULL;
  json_t *dirs = NULL, *entry;
  struct cl_cgroup *cg;
  size_t i;

  *out = NULL;
  if (cl_json_string (saved, "cgroup", "mode", &mode, err) < 0
      || cl_json_array (saved, "cgroup", "dirs", &dirs, err) < 0)
    return -1;
  if (mode == NULL || dirs == NULL)
    return cl_error_make (err, 0, "cgroup: saved state lacks `mode` or `dirs`");
  cg = cl_xmalloc0 (sizeof *cg);
  cg->mode = strcmp (mode, "v2") == 0       ? CL_CGROUP_V2
             : strcmp (mode, "hybrid") == 0 ? CL_CGROUP_HYBRID
                                            : CL_CGROUP_V1;
  json_array_foreach (dirs, i, entry)
  {
    const char *controllers = NULL, *mount = NULL, *path = NULL;
    int64_t created = 0;
    bool v2 = false;
    struct cl_cgroup_dir *d;
    if (cl_json_string (entry, "cgroup.dirs", "controllers", &controllers, err) < 0
        || cl_json_string (entry, "cgroup.dirs", "mount", &mount, err) < 0
        || cl_json_string (entry, "cgroup.dirs", "path", &path, err) < 0
        || cl_json_int64 (entry, "cgroup.dirs", "created", &created, err) < 0
        || cl_json_bool (entry, "cgroup.dirs", "v2", &v2, err) < 0)
      goto fail;
    if (controllers == NULL || mount == NULL || path == NULL)
      {
        cl_error_make (err, 0, "cgroup.dirs[%zu]: incomplete", i);
        goto fail;
      }
    d = dir_add (cg);
    d->controllers = cl_xstrdup (controllers);
    d->mount = cl_xstrdup (mount);
    d->path = cl_xstrdup (path);
    d->created = (int) created;
    d->v2 = v2;
    if (v2)
      read_unified_controllers (cg, mount);
  }
  *out = cg;
  return 0;

fail:
  cl_ctr_cgroup_free (cg);
  return -1;
}

static void
stat_put (json_t *obj, const char *key, struct cl_cgroup *cg, const char *controller,
          const char *file)
{
  cleanup_free char *text = NULL;
  cl_error_t e = NULL;
  if (cl_ctr_cgroup_read (cg, controller, file, &text, &e) < 0)
    {
      cl_error_release (&e);
      return;
    }
  if (strncmp (text, "max", 3) == 0)
    json_object_set_new (obj, key, json_integer (-1));
  else
    json_object_set_new (obj, key, json_integer (strtoll (text, NULL, 10)));
}

int
cl_ctr_cgroup_stats (struct cl_cgroup *cg, json_t **out, cl_error_t *err)
{
  json_t *stats = json_object (), *memory = json_object (), *pids = json_object (),
         *cpu = json_object ();
  struct cl_cgroup_dir *m = cl_ctr_cgroup_dir_for (cg, "memory");
  (void) err;
  if (m && !m->v2)
    {
      stat_put (memory, "usage", cg, "memory", "memory.usage_in_bytes");
      stat_put (memory, "limit", cg, "memory", "memory.limit_in_bytes");
      stat_put (memory, "max_usage", cg, "memory", "memory.max_usage_in_bytes");
      stat_put (memory, "swap_limit", cg, "memory", "memory.memsw.limit_in_bytes");
    }
  else if (m)
    {
      stat_put (memory, "usage", cg, "memory", "memory.current");
      stat_put (memory, "limit", cg, "memory", "memory.max");
      stat_put (memory, "max_usage", cg, "memory", "memory.peak");
      stat_put (memory, "swap_limit", cg, "memory", "memory.swap.max");
    }
  stat_put (pids, "current", cg, "pids", "pids.current");
  stat_put (pids, "limit", cg, "pids", "pids.max");
  if (cl_ctr_cgroup_dir_for (cg, "cpuacct"))
    stat_put (cpu, "usage_ns", cg, "cpuacct", "cpuacct.usage");
  else if (cl_ctr_cgroup_dir_for (cg, "cpu"))
    {
      cleanup_free char *text = NULL;
      cl_error_t e = NULL;
      if (cl_ctr_cgroup_read (cg, "cpu", "cpu.stat", &text, &e) == 0
          && strstr (text, "usage_usec "))
        json_object_set_new (
            cpu, "usage_ns",
            json_integer (strtoll (strstr (text, "usage_usec ") + 11, NULL, 10) * 1000));
      cl_error_release (&e);
    }
  json_object_set_new (stats, "memory", memory);
  json_object_set_new (stats, "pids", pids);
  json_object_set_new (stats, "cpu", cpu);
  *out = stats;
  return 0;
}
