/* SPDX-License-Identifier: Apache-2.0 */
#include "container/process.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "container/caps.h"
#include "container/console.h"
#include "container/seccomp.h"
#include "container/spec.h"
#include "container/sync.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEYCTL_JOIN_SESSION_KEYRING 1

static int
cmp_int (const void *a, const void *b)
{
  return *(const int *)a - *(const int *)b;
}

void
cl_ctr_process_close_fds (int preserve, const int *keep, int nkeep)
{
  int sorted[16], n = 0, from = 3 + (preserve > 0 ? preserve : 0);

  for (int i = 0; i < nkeep && n < 16; i++)
    if (keep[i] >= from)
      sorted[n++] = keep[i];
  qsort (sorted, n, sizeof sorted[0], cmp_int);
  for (int i = 0; i < n; i++)
    {
      if (sorted[i] > from)
        syscall (SYS_close_range, from, sorted[i] - 1, 0);
      from = sorted[i] + 1;
    }
  syscall (SYS_close_range, from, ~0U, 0);
}

static const char *
env_get (json_t *env, const char *name)
{
  size_t i, len = strlen (name);
  json_t *v;
  json_array_foreach (env, i, v)
  {
    const char *s = json_string_value (v);
    if (s && strncmp (s, name, len) == 0 && s[len] == '=')
      return s + len + 1;
  }
  return NULL;
}

static int
find_exe (json_t *process, char **out, cl_error_t *err)
{
  const char *arg0 = json_string_value (json_array_get (json_object_get (process, "args"), 0));
  const char *path = env_get (json_object_get (process, "env"), "PATH");
  const char *p, *end;
  struct stat st;

  if (strchr (arg0, '/'))
    {
      if (stat (arg0, &st) < 0)
        return cl_error_errno (err, "exec `%s`", arg0);
      *out = cl_xstrdup (arg0);
      return 0;
    }
  if (path == NULL)
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (p = path; *p; p = *end ? end + 1 : end)
    {
      cleanup_free char *cand = NULL;
      end = strchrnul (p, ':');
      cand = cl_strdup_printf ("%.*s/%s", (int)(end - p), p, arg0);
      if (stat (cand, &st) == 0 && S_ISREG (st.st_mode) && (st.st_mode & 0111))
        {
          *out = steal_pointer (&cand);
          return 0;
        }
    }
  return cl_error_make (err, 0, "exec `%s`: executable file not found in $PATH", arg0);
}

static int
set_stdio (struct process_setup *ps, cl_error_t *err)
{
  /* A session (and process group) of its own, terminal or not, as runc's
     nsexec gives every container process, exec'd ones included. */
  setsid ();
  if (ps->console_slave >= 0)
    {
      if (ioctl (ps->console_slave, TIOCSCTTY, 0) < 0)
        return cl_error_errno (err, "set the controlling terminal");
      for (int i = 0; i < 3; i++)
        if (dup2 (ps->console_slave, i) < 0)
          return cl_error_errno (err, "dup2 the terminal");
      if (ps->console_slave > 2)
        close (ps->console_slave);
      return 0;
    }
  if (ps->stdio)
    for (int i = 0; i < 3; i++)
      if (ps->stdio[i] >= 0 && ps->stdio[i] != i && dup2 (ps->stdio[i], i) < 0)
        return cl_error_errno (err, "dup2 stdio");
  return 0;
}

static int
set_rlimits (json_t *process, cl_error_t *err)
{
  json_t *rl = json_object_get (process, "rlimits"), *v;
  size_t i;
  json_array_foreach (rl, i, v)
  {
    const char *type = json_string_value (json_object_get (v, "type"));
    uint64_t hard = 0, soft = 0;
    struct rlimit r;
    cl_json_uint64 (v, "", "hard", &hard, NULL);
    cl_json_uint64 (v, "", "soft", &soft, NULL);
    r.rlim_cur = soft;
    r.rlim_max = hard;
    if (setrlimit (cl_ctr_spec_rlimit_resource (type), &r) < 0)
      return cl_error_errno (err, "process.rlimits[%zu]: setrlimit %s", i, type);
  }
  return 0;
}

#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_SHIFT 13

static int
set_io_priority (json_t *process, cl_error_t *err)
{
  json_t *io = json_object_get (process, "ioPriority");
  const char *cls;
  int prio;
  if (io == NULL)
    return 0;
  cls = json_string_value (json_object_get (io, "class"));
  prio = (int)json_integer_value (json_object_get (io, "priority"));
  if (syscall (SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0,
               (cl_ctr_spec_ioprio_class (cls) << IOPRIO_CLASS_SHIFT) | prio)
      < 0)
    return cl_error_errno (err, "process.ioPriority: ioprio_set %s %d", cls, prio);
  return 0;
}

struct sched_attr_v1
{
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
};

static int
set_scheduler (json_t *process, cl_error_t *err)
{
  json_t *sc = json_object_get (process, "scheduler"), *f;
  struct sched_attr_v1 attr = { .size = sizeof attr };
  size_t i;

  if (sc == NULL)
    return 0;
  attr.sched_policy
      = (uint32_t)cl_ctr_spec_sched_policy (json_string_value (json_object_get (sc, "policy")));
  attr.sched_nice = (int32_t) json_integer_value (json_object_get (sc, "nice"));
  attr.sched_priority = (uint32_t) json_integer_value (json_object_get (sc, "priority"));
  attr.sched_runtime = (uint64_t) json_integer_value (json_object_get (sc, "runtime"));
  attr.sched_deadline = (uint64_t) json_integer_value (json_object_get (sc, "deadline"));
  attr.sched_period = (uint64_t) json_integer_value (json_object_get (sc, "period"));
  json_array_foreach (json_object_get (sc, "flags"), i, f) attr.sched_flags
      |= (uint64_t)cl_ctr_spec_sched_flag (json_string_value (f));
  if (syscall (SYS_sched_setattr, 0, &attr, 0) < 0)
    return cl_error_errno (err, "process.scheduler: sched_setattr");
  return 0;
}

static int
set_user (json_t *process, cl_error_t *err)
{
  json_t *user = json_object_get (process, "user");
  json_t *gids = json_object_get (user, "additionalGids"), *v;
  uid_t uid = (uid_t)json_integer_value (json_object_get (user, "uid"));
  gid_t gid = (gid_t)json_integer_value (json_object_get (user, "gid"));
  cleanup_free gid_t *groups = cl_xmalloc0 ((json_array_size (gids) + 1) * sizeof *groups);
  size_t i, n = 0;

  json_array_foreach (gids, i, v) groups[n++] = (gid_t)json_integer_value (v);
  /* setgroups is denied in a user namespace whose gid map was written
     with setgroups=deny; only call it when it matters. */
  if (setgroups (n, groups) < 0 && (n > 0 || errno != EPERM))
    return cl_error_errno (err, "process.user.additionalGids: setgroups");
  if (setresgid (gid, gid, gid) < 0)
    return cl_error_errno (err, "process.user.gid: setresgid %u", gid);
  if (setresuid (uid, uid, uid) < 0)
    return cl_error_errno (err, "process.user.uid: setresuid %u", uid);
  return 0;
}

static int
load_seccomp (struct process_setup *ps, cl_error_t *err)
{
  int notify_fd = -1, r = 0;
  if (ps->seccomp == NULL)
    return 0;
  if (cl_ctr_seccomp_load_program (ps->seccomp_prog, &notify_fd, err) < 0)
    return -1;
  if (notify_fd < 0)
    return 0;
  if (cl_ctr_sync_send (ps->sync_fd, SYNC_SECCOMP, 0, NULL) < 0
      || cl_ctr_console_send_fd (ps->sync_fd, notify_fd, "seccomp") < 0)
    r = cl_error_errno (err, "linux.seccomp: pass the listener fd to the runtime");
  close (notify_fd);
  return r;
}

/* With a listener the filter is loaded before `start`, while the runtime
   still listens on the sync socket. */
static bool
seccomp_early (struct process_setup *ps)
{
  return !json_is_true (json_object_get (ps->process, "noNewPrivileges"))
         || json_object_get (ps->seccomp, "listenerPath") != NULL;
}

/* HOME when process.env has none, as runc: the home field of the uid's
   entry in the container's /etc/passwd, `/` without an entry or with an
   empty field.  Read in the container's mount namespace, before setuid. */
static void
set_home (json_t *process)
{
  json_t *env = json_object_get (process, "env");
  uid_t uid
      = (uid_t)json_integer_value (json_object_get (json_object_get (process, "user"), "uid"));
  cleanup_free char *line = NULL, *home = NULL;
  size_t cap = 0;
  FILE *f;

  if (env_get (env, "HOME"))
    return;
  f = fopen ("/etc/passwd", "re");
  while (f && home == NULL && getline (&line, &cap, f) > 0)
    {
      char *field[7] = { 0 }, *s = line;
      int n = 0;
      line[strcspn (line, "\n")] = '\0';
      while (n < 7 && (field[n] = strsep (&s, ":")) != NULL)
        n++;
      if (n >= 6 && *field[2] && strtoul (field[2], NULL, 10) == uid && *field[5])
        home = cl_xstrdup (field[5]);
      else if (n >= 6 && *field[2] && strtoul (field[2], NULL, 10) == uid)
        home = cl_xstrdup ("/");
    }
  if (f)
    fclose (f);
  if (env == NULL)
    json_object_set_new (process, "env", env = json_array ());
  json_array_append_new (env, json_sprintf ("HOME=%s", home ? home : "/"));
}

int
cl_ctr_process_prepare (struct process_setup *ps, char **exe, cl_error_t *err)
{
  json_t *process = ps->process, *caps = json_object_get (process, "capabilities");
  json_t *user = json_object_get (process, "user"), *oom;
  const char *cwd = json_string_value (json_object_get (process, "cwd"));
  bool nnp = json_is_true (json_object_get (process, "noNewPrivileges"));
  char buf[PATH_MAX];
  cleanup_json json_t *no_caps = NULL;

  set_home (process);
  if (set_stdio (ps, err) < 0 || set_rlimits (process, err) < 0
      || set_io_priority (process, err) < 0 || set_scheduler (process, err) < 0)
    return -1;
  oom = json_object_get (process, "oomScoreAdj");
  if (oom)
    {
      char v[16];
      int n = snprintf (v, sizeof v, "%d", (int)json_integer_value (oom));
      if (cl_write_file ("/proc/self/oom_score_adj", v, n, 0, err) < 0)
        return cl_error_wrap (err, "process.oomScoreAdj");
    }
  if (!ps->no_new_keyring && ps->id)
    {
      /* A private session keyring: the container cannot read the host's
         keys.  EPERM/ENOSYS mean keyrings are off: not fatal. */
      cleanup_free char *name = cl_strdup_printf ("_ses.%s", ps->id);
      syscall (SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name);
    }
  if (seccomp_early (ps) && load_seccomp (ps, err) < 0)
    return -1;
  if (caps == NULL)
    caps = no_caps = json_object ();
  if (cl_ctr_caps_drop_bounding (caps, err) < 0)
    return -1;
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return cl_error_errno (err, "prctl PR_SET_KEEPCAPS");
  if (set_user (process, err) < 0)
    return -1;
  if (cl_ctr_caps_apply (caps, err) < 0)
    return -1;
  umask (json_object_get (user, "umask")
             ? (mode_t)json_integer_value (json_object_get (user, "umask"))
             : 022);
  if (nnp && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return cl_error_errno (err, "process.noNewPrivileges: prctl");
  if (cwd == NULL)
    cwd = "/";
  if (chdir (cwd) < 0)
    return cl_error_errno (err, "process.cwd: chdir `%s`", cwd);
  /* CVE-2024-21626: the cwd must be inside the container's root; a
     directory reached through a leaked host fd reads "(unreachable)". */
  if (getcwd (buf, sizeof buf) == NULL || buf[0] != '/')
    return cl_error_make (err, 0, "process.cwd: `%s` is outside the container", cwd);
  return find_exe (process, exe, err);
}

int
cl_ctr_process_exec (struct process_setup *ps, const char *exe, cl_error_t *err)
{
  json_t *process = ps->process, *args = json_object_get (process, "args");
  json_t *env = json_object_get (process, "env");
  size_t i, n = json_array_size (args), ne = json_array_size (env);
  char **argv = cl_xmalloc0 ((n + 1) * sizeof *argv);
  char **envp = cl_xmalloc0 ((ne + 1) * sizeof *envp);

  for (i = 0; i < n; i++)
    argv[i] = (char *)json_string_value (json_array_get (args, i));
  for (i = 0; i < ne; i++)
    envp[i] = (char *)json_string_value (json_array_get (env, i));
  if (!seccomp_early (ps) && load_seccomp (ps, err) < 0)
    return -1;
  execve (exe, argv, envp);
  return cl_error_errno (err, "exec `%s`", argv[0]);
}
