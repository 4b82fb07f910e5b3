/* SPDX-License-Identifier: Apache-2.0 */
/* cloison-runtime: the OCI runtime CLI, argument-compatible with runc as
   podman/conmon and containerd's go-runc call it.  Parsing and printing
   only: the work is in src/container/container.h. */
#include "common/cleanup.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "container/container.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *prog = "cloison-runtime";

struct global
{
  const char *criu; /* --criu PATH */
  const char *root;
  const char *log;
  const char *log_format;
  bool debug;
  bool systemd_cgroup;
  bool vm; /* run under a name ending in -vm: every container in a microVM */
};

/* One option of a command.  `arg`: takes a value. */
struct opt
{
  const char *name;
  char short_name;
  bool arg;
};

/* Parsed options: value per option index (last wins), and every
   occurrence in order for options that accumulate (--env, --cgroup). */
struct parsed
{
  const char *value[24];
  bool set[24];
  const char *all[64];
  int all_opt[64];
  size_t nall;
  char **pos; /* positional arguments */
  int npos;
};

/* The values given for option k, NULL-terminated (NULL if none); free. */
static const char **
repeated (const struct parsed *p, int k)
{
  const char **v = cl_xmalloc0 ((p->nall + 1) * sizeof *v);
  size_t n = 0;
  for (size_t i = 0; i < p->nall; i++)
    if (p->all_opt[i] == k)
      v[n++] = p->all[i];
  if (n == 0)
    {
      free (v);
      return NULL;
    }
  return v;
}

/* Parses argv against `opts`.  With stop_after > 0, everything after
   that many positionals is positional (exec ID CMD ARGS...). */
static int
parse_opts (int argc, char **argv, const struct opt *opts, int stop_after, struct parsed *p,
            cl_error_t *err)
{
  int i;
  bool only_pos = false;

  p->pos = cl_xmalloc0 ((size_t)(argc + 1) * sizeof *p->pos);
  for (i = 0; i < argc; i++)
    {
      char *a = argv[i];
      const char *name = NULL, *val = NULL;
      char shortn = 0;
      int k;

      if (only_pos || a[0] != '-' || a[1] == '\0' || (stop_after > 0 && p->npos >= stop_after))
        {
          p->pos[p->npos++] = a;
          continue;
        }
      if (strcmp (a, "--") == 0)
        {
          only_pos = true;
          continue;
        }
      if (a[1] == '-' || strlen (a) > 2)
        {
          /* --name, --name=value, and Go's single-dash -name. */
          char *eq;
          name = a + (a[1] == '-' ? 2 : 1);
          eq = strchr (name, '=');
          if (eq)
            {
              *eq = '\0';
              val = eq + 1;
            }
        }
      else
        shortn = a[1];
      for (k = 0; opts[k].name; k++)
        if ((name && strcmp (opts[k].name, name) == 0) || (shortn && opts[k].short_name == shortn))
          break;
      if (opts[k].name == NULL)
        return cl_error_make (err, 0, "unknown option `%s`", a);
      if (opts[k].arg && val == NULL)
        {
          if (i + 1 >= argc)
            return cl_error_make (err, 0, "option `%s` needs a value", a);
          val = argv[++i];
        }
      if (!opts[k].arg)
        {
          /* --detach=false and the like. */
          if (val && (strcmp (val, "false") == 0 || strcmp (val, "0") == 0))
            continue;
          val = "true";
        }
      p->value[k] = val;
      p->set[k] = true;
      if (p->nall < 64)
        {
          p->all_opt[p->nall] = k;
          p->all[p->nall++] = val;
        }
    }
  return 0;
}

static int
want_id (struct parsed *p, const char *cmd, cl_error_t *err)
{
  if (p->npos < 1)
    return cl_error_make (err, 0, "%s: missing container id", cmd);
  return 0;
}

static int
parse_int (const char *s, const char *what, int *out, cl_error_t *err)
{
  char *end;
  long v;
  errno = 0;
  v = strtol (s, &end, 10);
  if (errno || *end || v < 0 || v > 1 << 20)
    return cl_error_make (err, 0, "%s: expected a number, got `%s`", what, s);
  *out = (int)v;
  return 0;
}

static void
print_json (json_t *j, bool pretty)
{
  char *s = json_dumps (j, pretty ? JSON_INDENT (2) : JSON_COMPACT);
  if (s)
    puts (s);
  free (s);
}

/* ------------------------------------------------------------------ */

enum
{
  C_BUNDLE,
  C_PIDFILE,
  C_CONSOLE,
  C_PRESERVE,
  C_NOPIVOT,
  C_NOKEYRING,
  C_DETACH,
  C_NOSUBREAPER,
  C_KEEP,
};
static const struct opt create_opts[] = {
  [C_BUNDLE] = { "bundle", 'b', true },
  [C_PIDFILE] = { "pid-file", 0, true },
  [C_CONSOLE] = { "console-socket", 0, true },
  [C_PRESERVE] = { "preserve-fds", 0, true },
  [C_NOPIVOT] = { "no-pivot", 0, false },
  [C_NOKEYRING] = { "no-new-keyring", 0, false },
  [C_DETACH] = { "detach", 'd', false },
  [C_NOSUBREAPER] = { "no-subreaper", 0, false },
  [C_KEEP] = { "keep", 0, false },
  { NULL, 0, false },
};

static int
cmd_create_or_run (struct global *g, int argc, char **argv, bool run, cl_error_t *err)
{
  struct parsed p = { 0 };
  struct cl_container_create_opts o = { 0 };
  cleanup_free char *cwd = NULL;
  int status = 0, r;

  if (parse_opts (argc, argv, create_opts, 0, &p, err) < 0
      || want_id (&p, run ? "run" : "create", err) < 0)
    goto fail;
  o.bundle = p.value[C_BUNDLE];
  if (o.bundle == NULL)
    o.bundle = cwd = getcwd (NULL, 0);
  o.pid_file = p.value[C_PIDFILE];
  o.console_socket = p.value[C_CONSOLE];
  if (p.value[C_PRESERVE]
      && parse_int (p.value[C_PRESERVE], "--preserve-fds", &o.preserve_fds, err) < 0)
    goto fail;
  o.no_pivot = p.set[C_NOPIVOT];
  o.no_new_keyring = p.set[C_NOKEYRING];
  o.detach = p.set[C_DETACH];
  o.vm_isolation = g->vm;
  if (!run)
    r = cl_ctr_create (g->root, p.pos[0], &o, err);
  else
    r = cl_ctr_run (g->root, p.pos[0], &o, &status, err);
  free (p.pos);
  if (r < 0)
    return -1;
  return status;
fail:
  free (p.pos);
  return -1;
}

static int
cmd_simple (struct global *g, int argc, char **argv, const char *cmd, cl_error_t *err)
{
  static const struct opt none[] = { { NULL, 0, false } };
  struct parsed p = { 0 };
  json_t *state = NULL;
  int r = -1;

  if (parse_opts (argc, argv, none, 0, &p, err) < 0 || want_id (&p, cmd, err) < 0)
    goto out;
  if (strcmp (cmd, "start") == 0)
    r = cl_ctr_start (g->root, p.pos[0], err);
  else if (strcmp (cmd, "pause") == 0)
    r = cl_ctr_pause (g->root, p.pos[0], err);
  else if (strcmp (cmd, "resume") == 0)
    r = cl_ctr_resume (g->root, p.pos[0], err);
  else if ((r = cl_ctr_state (g->root, p.pos[0], &state, err)) == 0)
    {
      print_json (state, true);
      json_decref (state);
    }
out:
  free (p.pos);
  return r;
}

static int
cmd_kill (struct global *g, int argc, char **argv, cl_error_t *err)
{
  static const struct opt opts[] = { { "all", 'a', false }, { NULL, 0, false } };
  struct parsed p = { 0 };
  int signo = 15, r = -1;

  if (parse_opts (argc, argv, opts, 0, &p, err) < 0 || want_id (&p, "kill", err) < 0)
    goto out;
  if (p.npos > 1 && cl_ctr_parse_signal (p.pos[1], &signo, err) < 0)
    goto out;
  r = cl_ctr_kill (g->root, p.pos[0], signo, p.set[0], err);
out:
  free (p.pos);
  return r;
}

enum
{
  K_IMAGE,
  K_WORK,
  K_PARENT,
  K_CGMODE,
  K_LEAVE,
  K_TCP,
  K_EXTUNIX,
  K_SHELL,
  K_LOCKS,
  K_PREDUMP,
  K_BUNDLE,
  K_PIDFILE,
  K_DETACH,
  K_CONSOLE,
  K_PAGESERVER,
  K_NOSUBREAPER,
  K_EMPTYNS,
};
static const struct opt checkpoint_opts[] = {
  [K_IMAGE] = { "image-path", 0, true },
  [K_WORK] = { "work-path", 0, true },
  [K_PARENT] = { "parent-path", 0, true },
  [K_CGMODE] = { "manage-cgroups-mode", 0, true },
  [K_LEAVE] = { "leave-running", 0, false },
  [K_TCP] = { "tcp-established", 0, false },
  [K_EXTUNIX] = { "ext-unix-sk", 0, false },
  [K_SHELL] = { "shell-job", 0, false },
  [K_LOCKS] = { "file-locks", 0, false },
  [K_PREDUMP] = { "pre-dump", 0, false },
  [K_BUNDLE] = { "bundle", 'b', true },
  [K_PIDFILE] = { "pid-file", 0, true },
  [K_DETACH] = { "detach", 'd', false },
  [K_CONSOLE] = { "console-socket", 0, true },
  [K_PAGESERVER] = { "page-server", 0, true },
  [K_NOSUBREAPER] = { "no-subreaper", 0, false },
  [K_EMPTYNS] = { "empty-ns", 0, true },
  { NULL, 0, false },
};

/* checkpoint ID / restore ID, with runc's flags (docs/migration.md). */
static int
cmd_checkpoint (struct global *g, int argc, char **argv, bool restore, cl_error_t *err)
{
  struct parsed p = { 0 };
  struct cl_container_checkpoint_opts o = { 0 };
  const char *cmd = restore ? "restore" : "checkpoint";
  int r = -1;

  /* podman asks `RUNTIME checkpoint --help` whether the runtime
     checkpoints at all */
  for (int k = 0; k < argc; k++)
    if (strcmp (argv[k], "--help") == 0 || strcmp (argv[k], "-h") == 0)
      {
        printf ("usage: %s %s [OPTION]... ID\noptions:", prog, cmd);
        for (int n = 0; checkpoint_opts[n].name; n++)
          printf (" --%s", checkpoint_opts[n].name);
        printf ("\n");
        return 0;
      }
  if (parse_opts (argc, argv, checkpoint_opts, 0, &p, err) < 0 || want_id (&p, cmd, err) < 0)
    goto out;
  if (p.value[K_PAGESERVER])
    {
      cl_error_make (err, 0, "%s: --page-server is not supported", cmd);
      goto out;
    }
  /* restore: a terminal's new pty master goes there, as at create */
  if (p.value[K_CONSOLE] && !restore)
    {
      cl_error_make (err, 0, "checkpoint: --console-socket is for restore");
      goto out;
    }
  /* runc's own default, always: a network namespace of the container's
     own is made empty at restore; CRIU has no other kind */
  if (p.value[K_EMPTYNS] && strcmp (p.value[K_EMPTYNS], "network") != 0)
    {
      cl_error_make (err, 0, "%s: --empty-ns `%s`: only `network` can be left empty", cmd,
                     p.value[K_EMPTYNS]);
      goto out;
    }
  o.criu = g->criu;
  /* runc's default: ./checkpoint */
  o.image_path = p.value[K_IMAGE] ? p.value[K_IMAGE] : "checkpoint";
  o.work_path = p.value[K_WORK];
  o.parent_path = p.value[K_PARENT];
  o.manage_cgroups_mode = p.value[K_CGMODE];
  o.leave_running = p.set[K_LEAVE];
  o.tcp_established = p.set[K_TCP];
  o.ext_unix_sk = p.set[K_EXTUNIX];
  o.shell_job = p.set[K_SHELL];
  o.file_locks = p.set[K_LOCKS];
  o.pre_dump = p.set[K_PREDUMP];
  o.bundle = p.value[K_BUNDLE];
  o.pid_file = p.value[K_PIDFILE];
  o.console_socket = p.value[K_CONSOLE];
  o.runc_compat = true;
  r = restore ? cl_ctr_restore (g->root, p.pos[0], &o, err)
              : cl_ctr_checkpoint (g->root, p.pos[0], &o, err);
out:
  free (p.pos);
  return r;
}

static int
cmd_delete (struct global *g, int argc, char **argv, cl_error_t *err)
{
  static const struct opt opts[] = { { "force", 'f', false }, { NULL, 0, false } };
  struct parsed p = { 0 };
  int r = -1;

  if (parse_opts (argc, argv, opts, 0, &p, err) < 0 || want_id (&p, "delete", err) < 0)
    goto out;
  r = cl_ctr_delete (g->root, p.pos[0], p.set[0], err);
out:
  free (p.pos);
  return r;
}

enum
{
  E_PROCESS,
  E_DETACH,
  E_PIDFILE,
  E_TTY,
  E_CONSOLE,
  E_CWD,
  E_ENV,
  E_USER,
  E_PRESERVE,
  E_CAP,
  E_NONNP,
  E_CGROUP,
};
static const struct opt exec_opts[] = {
  [E_PROCESS] = { "process", 'p', true },
  [E_DETACH] = { "detach", 'd', false },
  [E_PIDFILE] = { "pid-file", 0, true },
  [E_TTY] = { "tty", 't', false },
  [E_CONSOLE] = { "console-socket", 0, true },
  [E_CWD] = { "cwd", 0, true },
  [E_ENV] = { "env", 'e', true },
  [E_USER] = { "user", 'u', true },
  [E_PRESERVE] = { "preserve-fds", 0, true },
  [E_CAP] = { "cap", 'c', true },
  [E_NONNP] = { "no-new-privs", 0, false },
  [E_CGROUP] = { "cgroup", 0, true },
  { NULL, 0, false },
};

static int
cmd_exec (struct global *g, int argc, char **argv, cl_error_t *err)
{
  struct parsed p = { 0 };
  cleanup_free const char **env = NULL, **cgroups = NULL;
  struct cl_container_exec_opts o = { 0 };
  int status = 0, r = -1;

  if (parse_opts (argc, argv, exec_opts, 1, &p, err) < 0 || want_id (&p, "exec", err) < 0)
    goto out;
  o.process_file = p.value[E_PROCESS];
  if (o.process_file == NULL && p.npos < 2)
    {
      cl_error_make (err, 0, "exec: give a command or --process FILE");
      goto out;
    }
  o.args = (const char *const *)p.pos + 1;
  o.detach = p.set[E_DETACH];
  o.pid_file = p.value[E_PIDFILE];
  o.tty = p.set[E_TTY];
  o.console_socket = p.value[E_CONSOLE];
  o.cwd = p.value[E_CWD];
  o.env = env = repeated (&p, E_ENV);
  o.cgroups = cgroups = repeated (&p, E_CGROUP);
  o.user = p.value[E_USER];
  if (p.value[E_PRESERVE]
      && parse_int (p.value[E_PRESERVE], "--preserve-fds", &o.preserve_fds, err) < 0)
    goto out;
  if (cl_ctr_exec (g->root, p.pos[0], &o, &status, err) == 0)
    r = status;
out:
  free (p.pos);
  return r;
}

static int
cmd_list (struct global *g, int argc, char **argv, cl_error_t *err)
{
  static const struct opt opts[]
      = { { "format", 'f', true }, { "quiet", 'q', false }, { NULL, 0, false } };
  struct parsed p = { 0 };
  cleanup_json json_t *list = NULL;
  json_t *s;
  size_t i;
  int r = -1;

  if (parse_opts (argc, argv, opts, 0, &p, err) < 0 || cl_ctr_list (g->root, &list, err) < 0)
    goto out;
  if (p.value[0] && strcmp (p.value[0], "json") == 0)
    print_json (list, false);
  else if (p.set[1])
    json_array_foreach (list, i, s) puts (json_string_value (json_object_get (s, "id")));
  else
    {
      printf ("%-20s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
              "OWNER");
      json_array_foreach (list, i, s)
      {
        printf ("%-20s %-8lld %-10s %-40s %-32s %s\n",
                json_string_value (json_object_get (s, "id")),
                json_integer_value (json_object_get (s, "pid")),
                json_string_value (json_object_get (s, "status")),
                json_string_value (json_object_get (s, "bundle")),
                json_string_value (json_object_get (s, "created")),
                json_string_value (json_object_get (s, "owner")));
      }
    }
  r = 0;
out:
  free (p.pos);
  return r;
}

static int
cmd_ps (struct global *g, int argc, char **argv, cl_error_t *err)
{
  static const struct opt opts[] = { { "format", 'f', true }, { NULL, 0, false } };
  struct parsed p = { 0 };
  cleanup_free pid_t *pids = NULL;
  size_t n = 0;
  int r = -1;

  if (parse_opts (argc, argv, opts, 1, &p, err) < 0 || want_id (&p, "ps", err) < 0
      || cl_ctr_pids (g->root, p.pos[0], &pids, &n, err) < 0)
    goto out;
  if (p.value[0] && strcmp (p.value[0], "json") == 0)
    {
      printf ("[");
      for (size_t i = 0; i < n; i++)
        printf ("%s%d", i ? "," : "", pids[i]);
      printf ("]\n");
    }
  else
    {
      printf ("%-8s %s\n", "PID", "CMD");
      for (size_t i = 0; i < n; i++)
        {
          cleanup_free char *path = cl_strdup_printf ("/proc/%d/cmdline", pids[i]);
          cleanup_free char *cmd = NULL;
          size_t len = 0;
          cl_error_t e = NULL;
          if (cl_read_file (path, &cmd, &len, &e) < 0)
            {
              cl_error_release (&e);
              continue;
            }
          for (size_t k = 0; k + 1 < len; k++)
            if (cmd[k] == '\0')
              cmd[k] = ' ';
          printf ("%-8d %s\n", pids[i], cmd);
        }
    }
  r = 0;
out:
  free (p.pos);
  return r;
}

static int
cmd_spec (int argc, char **argv, cl_error_t *err)
{
  static const struct opt opts[]
      = { { "bundle", 'b', true }, { "rootless", 0, false }, { NULL, 0, false } };
  struct parsed p = { 0 };
  cleanup_free char *path = NULL, *s = NULL;
  cleanup_json json_t *spec = NULL;
  int r = -1;

  if (parse_opts (argc, argv, opts, 0, &p, err) < 0)
    goto out;
  path = cl_strdup_printf ("%s/config.json", p.value[0] ? p.value[0] : ".");
  if (access (path, F_OK) == 0)
    {
      cl_error_make (err, EEXIST, "`%s`", path);
      goto out;
    }
  spec = cl_ctr_default_spec (p.set[1]);
  s = json_dumps (spec, JSON_INDENT (2));
  r = cl_write_file (path, s, strlen (s), 0, err);
out:
  free (p.pos);
  return r;
}

/* runc's memory sizes (go-units RAMInBytes): 1024-based, "64m", "1g",
   "512KiB", or -1 for unlimited. */
static int
parse_memory (const char *flag, const char *s, int64_t *out, cl_error_t *err)
{
  static const char units[] = "bkmgtp";
  char *end;
  double v;
  errno = 0;
  if (strcmp (s, "-1") == 0)
    {
      *out = -1;
      return 0;
    }
  v = strtod (s, &end);
  if (errno || end == s || v < 0)
    return cl_error_make (err, 0, "--%s: expected a size like 64m, got `%s`", flag, s);
  if (*end)
    {
      const char *u = strchr (units, tolower ((unsigned char)*end));
      if (u == NULL
          || (end[1] && strcasecmp (end + 1, "b") != 0 && strcasecmp (end + 1, "ib") != 0))
        return cl_error_make (err, 0, "--%s: expected a size like 64m, got `%s`", flag, s);
      for (const char *k = units; k < u; k++)
        v *= 1024;
    }
  if (v > (double)INT64_MAX)
    return cl_error_make (err, 0, "--%s: `%s` is too large", flag, s);
  *out = (int64_t)v;
  return 0;
}

static int
parse_int64 (const char *flag, const char *s, int64_t *out, cl_error_t *err)
{
  char *end;
  errno = 0;
  *out = strtoll (s, &end, 10);
  if (errno || end == s || *end)
    return cl_error_make (err, 0, "--%s: expected a number, got `%s`", flag, s);
  return 0;
}

enum
{
  U_RESOURCES,
  U_MEMORY,
  U_MEMSWAP,
  U_MEMRES,
  U_CPUSHARE,
  U_CPUSHARES,
  U_CPUPERIOD,
  U_CPUQUOTA,
  U_RTPERIOD,
  U_RTRUNTIME,
  U_CPUS,
  U_MEMS,
  U_PIDS,
  U_BLKIO,
  U_CPUIDLE,
};
/* runc's `update` flags -> linux.resources: section, key, kind. */
static const struct
{
  struct opt opt;
  const char *section, *key;
  char kind; /* m: memory size, i: integer, s: string */
} update_flags[] = {
  [U_RESOURCES] = { { "resources", 'r', true }, NULL, NULL, 0 },
  [U_MEMORY] = { { "memory", 0, true }, "memory", "limit", 'm' },
  [U_MEMSWAP] = { { "memory-swap", 0, true }, "memory", "swap", 'm' },
  [U_MEMRES] = { { "memory-reservation", 0, true }, "memory", "reservation", 'm' },
  [U_CPUSHARE] = { { "cpu-share", 0, true }, "cpu", "shares", 'i' },
  [U_CPUSHARES] = { { "cpu-shares", 0, true }, "cpu", "shares", 'i' },
  [U_CPUPERIOD] = { { "cpu-period", 0, true }, "cpu", "period", 'i' },
  [U_CPUQUOTA] = { { "cpu-quota", 0, true }, "cpu", "quota", 'i' },
  [U_RTPERIOD] = { { "cpu-rt-period", 0, true }, "cpu", "realtimePeriod", 'i' },
  [U_RTRUNTIME] = { { "cpu-rt-runtime", 0, true }, "cpu", "realtimeRuntime", 'i' },
  [U_CPUS] = { { "cpuset-cpus", 0, true }, "cpu", "cpus", 's' },
  [U_MEMS] = { { "cpuset-mems", 0, true }, "cpu", "mems", 's' },
  [U_PIDS] = { { "pids-limit", 0, true }, "pids", "limit", 'i' },
  [U_BLKIO] = { { "blkio-weight", 0, true }, "blockIO", "weight", 'i' },
  [U_CPUIDLE] = { { "cpu-idle", 0, true }, "cpu", "idle", 'i' },
};
#define N_UPDATE_FLAGS (sizeof update_flags / sizeof update_flags[0])

static int
cmd_update (struct global *g, int argc, char **argv, cl_error_t *err)
{
  struct opt opts[N_UPDATE_FLAGS + 1] = { 0 };
  struct parsed p = { 0 };
  cleanup_json json_t *res = NULL;
  bool any_flag = false;
  int r = -1;

  for (size_t k = 0; k < N_UPDATE_FLAGS; k++)
    opts[k] = update_flags[k].opt;
  if (parse_opts (argc, argv, opts, 0, &p, err) < 0 || want_id (&p, "update", err) < 0)
    goto out;
  for (size_t k = 1; k < N_UPDATE_FLAGS; k++)
    any_flag |= p.set[k];
  if (p.value[U_RESOURCES] == NULL && !any_flag)
    {
      cl_error_make (err, 0, "update: give --resources FILE|- or runc's flags (--memory, ...)");
      goto out;
    }
  if (p.value[U_RESOURCES] && strcmp (p.value[U_RESOURCES], "-") == 0)
    {
      json_error_t je;
      res = json_loadf (stdin, 0, &je);
      if (res == NULL)
        {
          cl_error_make (err, 0, "<stdin>:%d:%d: %s", je.line, je.column, je.text);
          goto out;
        }
    }
  else if (p.value[U_RESOURCES] && cl_json_load_file (p.value[U_RESOURCES], &res, err) < 0)
    goto out;
  if (res == NULL)
    res = json_object ();
  /* The flags go on top of the file, each into its section. */
  for (size_t k = 1; k < N_UPDATE_FLAGS; k++)
    {
      const char *v = p.value[k], *name = update_flags[k].opt.name;
      json_t *section, *value;
      int64_t n = 0;
      if (!p.set[k])
        continue;
      if (update_flags[k].kind == 'm' && parse_memory (name, v, &n, err) < 0)
        goto out;
      if (update_flags[k].kind == 'i' && parse_int64 (name, v, &n, err) < 0)
        goto out;
      value = update_flags[k].kind == 's' ? json_string (v) : json_integer (n);
      section = json_object_get (res, update_flags[k].section);
      if (!json_is_object (section))
        json_object_set_new (res, update_flags[k].section, section = json_object ());
      json_object_set_new (section, update_flags[k].key, value);
    }
  r = cl_ctr_update (g->root, p.pos[0], res, err);
out:
  free (p.pos);
  return r;
}

static void
usage (FILE *f)
{
  fprintf (f,
           "usage: %s [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND ...\n"
           "commands: create start run state kill delete exec pause resume ps list update\n"
           "          checkpoint restore spec features; --version\n",
           prog);
}

int
main (int argc, char **argv)
{
  struct global g = { 0 };
  cl_error_t err = NULL;
  const char *cmd, *base = argc > 0 ? strrchr (argv[0], '/') : NULL;
  size_t blen;
  int i, r;

  /* cloison-runtime-vm (a symlink, for a containerd runtime handler or a
     podman --runtime): VM isolation for every container */
  base = base ? base + 1 : argc > 0 ? argv[0] : "";
  blen = strlen (base);
  g.vm = blen > 3 && strcmp (base + blen - 3, "-vm") == 0;
  for (i = 1; i < argc && argv[i][0] == '-'; i++)
    {
      char *a = argv[i], *val = NULL, *eq, key[32];
      const char *name = a + (a[1] == '-' ? 2 : 1);
      size_t len = strlen (name);
      eq = strchr (name, '=');
      if (eq)
        {
          len = (size_t)(eq - name);
          val = eq + 1; /* points into argv: lives as long as we do */
        }
      snprintf (key, sizeof key, "%.*s", (int)len, name);
#define TAKE_VALUE()                                                                               \
  do                                                                                               \
    {                                                                                              \
      if (val == NULL)                                                                             \
        {                                                                                          \
          if (i + 1 >= argc)                                                                       \
            {                                                                                      \
              cl_error_make (&err, 0, "option `%s` needs a value", a);                             \
              return cl_error_report (&err, prog);                                                 \
            }                                                                                      \
          val = argv[++i];                                                                         \
        }                                                                                          \
    }                                                                                              \
  while (0)
      if (strcmp (key, "version") == 0 || strcmp (key, "v") == 0)
        {
          printf ("%s version %s\nspec: %s\n", prog, CLOISON_VERSION, OCI_SPEC_VERSION);
          return 0;
        }
      else if (strcmp (key, "help") == 0 || strcmp (key, "h") == 0)
        {
          usage (stdout);
          return 0;
        }
      else if (strcmp (key, "root") == 0)
        {
          TAKE_VALUE ();
          g.root = val;
        }
      else if (strcmp (key, "log") == 0)
        {
          TAKE_VALUE ();
          g.log = val;
        }
      else if (strcmp (key, "log-format") == 0)
        {
          TAKE_VALUE ();
          g.log_format = val;
        }
      else if (strcmp (key, "debug") == 0)
        g.debug = true;
      else if (strcmp (key, "systemd-cgroup") == 0)
        g.systemd_cgroup = !val || strcmp (val, "false") != 0;
      else if (strcmp (key, "rootless") == 0)
        {
          /* runc takes true|false|auto, as `--rootless=V` or a separate
             word; rootless mode is detected from the spec either way. */
          if (val == NULL && i + 1 < argc
              && (strcmp (argv[i + 1], "true") == 0 || strcmp (argv[i + 1], "false") == 0
                  || strcmp (argv[i + 1], "auto") == 0))
            i++;
        }
      else if (strcmp (key, "criu") == 0)
        {
          TAKE_VALUE ();
          g.criu = val;
        }
      else
        {
          cl_error_make (&err, 0, "unknown global option `%s`", a);
          return cl_error_report (&err, prog);
        }
    }
  if (g.log_format && strcmp (g.log_format, "json") != 0 && strcmp (g.log_format, "text") != 0)
    {
      cl_error_make (&err, 0, "--log-format: expected text or json, got `%s`", g.log_format);
      return cl_error_report (&err, prog);
    }
  if (cl_log_init (g.log, g.log_format && strcmp (g.log_format, "json") == 0, g.debug) < 0)
    {
      cl_error_errno (&err, "--log `%s`", g.log);
      return cl_error_report (&err, prog);
    }
  if (i >= argc)
    {
      usage (stderr);
      return 1;
    }
  if (g.systemd_cgroup)
    {
      cl_error_make (&err, 0,
                     "--systemd-cgroup: the systemd cgroup driver is not supported; use cgroupfs");
      return cl_error_report (&err, prog);
    }
  cmd = argv[i];
  argc -= i + 1;
  argv += i + 1;

  if (strcmp (cmd, "create") == 0 || strcmp (cmd, "run") == 0 || strcmp (cmd, "exec") == 0)
    {
      /* CVE-2019-5736: from here on the runtime enters containers. */
      if (cl_ctr_ensure_sealed_exe (argc, argv - i - 1, &err) < 0)
        return cl_error_report (&err, prog);
    }
  if (strcmp (cmd, "create") == 0)
    r = cmd_create_or_run (&g, argc, argv, false, &err);
  else if (strcmp (cmd, "run") == 0)
    r = cmd_create_or_run (&g, argc, argv, true, &err);
  else if (strcmp (cmd, "start") == 0 || strcmp (cmd, "state") == 0 || strcmp (cmd, "pause") == 0
           || strcmp (cmd, "resume") == 0)
    r = cmd_simple (&g, argc, argv, cmd, &err);
  else if (strcmp (cmd, "kill") == 0)
    r = cmd_kill (&g, argc, argv, &err);
  else if (strcmp (cmd, "delete") == 0)
    r = cmd_delete (&g, argc, argv, &err);
  else if (strcmp (cmd, "checkpoint") == 0 || strcmp (cmd, "restore") == 0)
    r = cmd_checkpoint (&g, argc, argv, cmd[0] == 'r', &err);
  else if (strcmp (cmd, "exec") == 0)
    r = cmd_exec (&g, argc, argv, &err);
  else if (strcmp (cmd, "list") == 0)
    r = cmd_list (&g, argc, argv, &err);
  else if (strcmp (cmd, "ps") == 0)
    r = cmd_ps (&g, argc, argv, &err);
  else if (strcmp (cmd, "spec") == 0)
    r = cmd_spec (argc, argv, &err);
  else if (strcmp (cmd, "update") == 0)
    r = cmd_update (&g, argc, argv, &err);
  else if (strcmp (cmd, "features") == 0)
    {
      json_t *f = cl_ctr_features ();
      print_json (f, true);
      json_decref (f);
      r = 0;
    }
  else if (strcmp (cmd, "version") == 0)
    {
      printf ("%s version %s\nspec: %s\n", prog, CLOISON_VERSION, OCI_SPEC_VERSION);
      r = 0;
    }
  else
    {
      cl_error_make (&err, 0, "unknown command `%s`", cmd);
      r = -1;
    }
  if (r < 0)
    return cl_error_report (&err, prog);
  return r;
}
