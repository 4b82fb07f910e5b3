/* The engine's commands: create/start/run through the init (init.c),
   later commands through the state directory (state.c). */
#include "container/container.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "container/cgroup.h"
#include "container/console.h"
#include "container/hooks.h"
#include "container/init.h"
#include "container/process.h"
#include "container/spec.h"
#include "container/state.h"
#include "container/sync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* What create hands to run/start. */
struct created
{
  struct container_state st;
  struct cl_cgroup *cg;
  json_t *config;
  int sync_fd;
  int master; /* pty master kept for a foreground run, else -1 */
};

static void
created_release (struct created *c)
{
  state_release (&c->st);
  cl_cgroup_free (c->cg);
  json_decref (c->config);
  if (c->sync_fd >= 0)
    close (c->sync_fd);
  if (c->master >= 0)
    close (c->master);
}

static char *
now_rfc3339 (void)
{
  struct timespec ts;
  struct tm tm;
  char buf[64];
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  strftime (buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return cl_strdup_printf ("%s.%09ldZ", buf, ts.tv_nsec);
}

static int
write_pid_file (const char *path, pid_t pid, cl_error_t *err)
{
  char buf[32];
  int n = snprintf (buf, sizeof buf, "%d", pid);
  if (path == NULL)
    return 0;
  return cl_write_file (path, buf, n, 1, err);
}

static int
write_id_map (pid_t pid, const char *file, json_t *maps, cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("/proc/%d/%s", pid, file);
  char buf[4096];
  size_t i, len = 0;
  json_t *m;

  if (json_array_size (maps) == 0)
    return 0;
  json_array_foreach (maps, i, m)
  {
    int n = snprintf (buf + len, sizeof buf - len, "%lld %lld %lld\n",
                      json_integer_value (json_object_get (m, "containerID")),
                      json_integer_value (json_object_get (m, "hostID")),
                      json_integer_value (json_object_get (m, "size")));
    if (n < 0 || (size_t) n >= sizeof buf - len)
      return cl_error_make (err, 0, "linux.%s: too many mappings",
                            strcmp (file, "uid_map") == 0 ? "uidMappings" : "gidMappings");
    len += (size_t) n;
  }
  if (cl_write_file (path, buf, len, 0, err) < 0)
    return cl_error_wrap (err, "linux.%s", strcmp (file, "uid_map") == 0 ? "uidMappings" : "gidMappings");
  return 0;
}

/* fork with namespaces; with cgroup_fd >= 0 the child starts in that
   cgroup v2 directory (*placed tells whether the kernel did it). */
static pid_t
clone_fork (int flags, int cgroup_fd, bool *placed)
{
  struct clone_args args = { .flags = (uint64_t) flags, .exit_signal = SIGCHLD };
  pid_t pid;

  *placed = false;
  if (cgroup_fd >= 0)
    {
      args.flags |= CLONE_INTO_CGROUP;
      args.cgroup = (uint64_t) cgroup_fd;
      pid = (pid_t) syscall (SYS_clone3, &args, sizeof args);
      if (pid >= 0)
        {
          *placed = true;
          return pid;
        }
      args.flags &= ~(uint64_t) CLONE_INTO_CGROUP;
    }
  return (pid_t) syscall (SYS_clone3, &args, sizeof args);
}

static char **
strv_append (char **v, char *s)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  v = realloc (v, (n + 2) * sizeof *v);
  v[n] = s;
  v[n + 1] = NULL;
  return v;
}

static void
strv_free (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

static void
kill_and_reap (pid_t pid)
{
  if (pid <= 0)
    return;
  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);
}

static json_t *
creating_state (struct created *c, const char *status)
{
  json_t *s = state_public (&c->st);
  json_object_set_new (s, "status", json_string (status));
  json_object_set_new (s, "pid", json_integer (c->st.pid));
  return s;
}

static int
run_hooks (struct created *c, const char *kind, const char *status, cl_error_t *err)
{
  json_t *hooks = json_object_get (c->st.doc, "hooks");
  cleanup_json json_t *s = NULL;
  if (!json_object_get (hooks, kind))
    return 0;
  s = creating_state (c, status);
  return hooks_run (hooks, kind, s, err);
}

/* Namespaces the init creates with clone; cgroup and time come later
   (the cgroup namespace must start at the container's cgroup). */
static int
clone_flags (json_t *linux_obj)
{
  json_t *ns = json_object_get (linux_obj, "namespaces"), *v;
  size_t i;
  int flags = 0;
  json_array_foreach (ns, i, v)
  {
    if (json_object_get (v, "path") == NULL)
      flags |= spec_namespace_flag (json_string_value (json_object_get (v, "type")));
  }
  return flags & ~(CLONE_NEWCGROUP | CLONE_NEWTIME);
}

static int
create_common (const char *root, const char *id, const struct cl_container_create_opts *opts,
               bool for_run, struct created *c, cl_error_t *err)
{
  cleanup_free char *rootfs = NULL, *bundle = NULL, *fifo = NULL, *created_at = NULL;
  cleanup_close int fifo_fd = -1, v2_fd = -1;
  cleanup_json json_t *cg_saved = NULL;
  cleanup_free char *v2_procs = NULL;
  char **join = NULL;
  bool placed = false;
  json_t *linux_obj, *process;
  int sv[2] = { -1, -1 }, flags;
  bool terminal;
  pid_t pid = -1;
  struct sync_msg msg;
  char resolved[PATH_MAX];

  memset (c, 0, sizeof *c);
  c->sync_fd = c->master = -1;
  cl_debug ("phase %.3f ms: create", cl_now_ns () / 1e6);
  if (cl_validate_name (id, "container id", err) < 0)
    return -1;
  if (opts->bundle == NULL)
    return cl_error_make (err, 0, "bundle: missing");
  if (opts->config)
    {
      struct stat st;
      if (stat (opts->bundle, &st) < 0)
        return cl_error_errno (err, "bundle `%s`", opts->bundle);
      c->config = json_incref (opts->config);
    }
  else if (spec_load (opts->bundle, &c->config, err) < 0)
    return -1;
  bundle = strdup (realpath (opts->bundle, resolved) ? resolved : opts->bundle);
  if (spec_validate (c->config, bundle, &rootfs, err) < 0)
    return -1;
  linux_obj = json_object_get (c->config, "linux");
  process = json_object_get (c->config, "process");
  terminal = json_is_true (json_object_get (process, "terminal"));
  if (terminal && opts->console_socket == NULL && !(for_run && !opts->detach))
    return cl_error_make (err, 0, "process.terminal is true: --console-socket is required");
  if ((clone_flags (linux_obj) & CLONE_NEWUSER)
      && json_array_size (json_object_get (linux_obj, "uidMappings")) == 0)
    return cl_error_make (err, 0, "linux.uidMappings: required with a new user namespace");

  c->st.id = strdup (id);
  if (state_dir_create (root, id, &c->st.dir, err) < 0)
    return -1;
  if (!for_run)
    {
      fifo = cl_strdup_printf ("%s/exec.fifo", c->st.dir);
      if (mkfifo (fifo, 0600) < 0)
        {
          cl_error_errno (err, "mkfifo `%s`", fifo);
          goto fail;
        }
      fifo_fd = open (fifo, O_PATH | O_CLOEXEC);
      if (fifo_fd < 0)
        {
          cl_error_errno (err, "open `%s`", fifo);
          goto fail;
        }
    }
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      cl_error_errno (err, "socketpair");
      goto fail;
    }
  /* The cgroup first, limits applied while it is empty; the init joins
     it on its own (see init.h). */
  cl_debug ("phase %.3f ms: cgroup", cl_now_ns () / 1e6);
  if (cl_cgroup_enter (id, linux_obj, 0, &c->cg, err) < 0)
    goto fail;
  cg_saved = cl_cgroup_save (c->cg);
  join = cgroup_join_files (cg_saved, &v2_fd, &v2_procs);
  flags = clone_flags (linux_obj);
  cl_debug ("phase %.3f ms: clone", cl_now_ns () / 1e6);
  pid = clone_fork (flags, v2_fd, &placed);
  if (!placed && v2_procs)
    join = strv_append (join, steal_pointer (&v2_procs));
  if (pid < 0)
    {
      cl_error_errno (err, "clone the container init");
      goto fail;
    }
  if (pid == 0)
    {
      struct init_args a = { .config = c->config, .rootfs = rootfs, .bundle = bundle, .id = id,
                             .sync_fd = sv[1], .fifo_fd = fifo_fd, .preserve_fds = opts->preserve_fds,
                             .no_pivot = opts->no_pivot, .no_new_keyring = opts->no_new_keyring,
                             .ns_new = flags, .stdio = opts->stdio, .cgroup_join = join };
      close (sv[0]);
      init_run (&a);
    }
  close (sv[1]);
  sv[1] = -1;
  c->sync_fd = sv[0];
  c->st.pid = pid;

  /* State document, needed by hooks already. */
  created_at = now_rfc3339 ();
  c->st.doc = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:O, s:O*, s:O*, s:O*}", "id", id, "bundle", bundle,
                         "rootfs", rootfs, "created", created_at, "owner", geteuid () == 0 ? "root" : "",
                         "process", process, "seccomp", json_object_get (linux_obj, "seccomp"),
                         "hooks", json_object_get (c->config, "hooks"),
                         "annotations", json_object_get (c->config, "annotations"));
  json_object_set_new (c->st.doc, "ownPidns", json_boolean (flags & CLONE_NEWPID));
  if (flags & CLONE_NEWUSER)
    {
      if (write_id_map (pid, "gid_map", json_object_get (linux_obj, "gidMappings"), err) < 0
          || write_id_map (pid, "uid_map", json_object_get (linux_obj, "uidMappings"), err) < 0)
        goto fail;
    }
  if (sync_send (c->sync_fd, SYNC_GO, 0, NULL) < 0)
    {
      cl_error_errno (err, "sync with the container init");
      goto fail;
    }
  for (;;)
    {
      if (sync_recv (c->sync_fd, 0, &msg, err) < 0)
        goto fail;
      if (msg.type == SYNC_READY)
        break;
      switch (msg.type)
        {
        case SYNC_PID:
          waitpid (c->st.pid, NULL, 0);
          c->st.pid = msg.value;
          break;
        case SYNC_HOOKS:
          if (run_hooks (c, "prestart", "creating", err) < 0
              || run_hooks (c, "createRuntime", "creating", err) < 0)
            goto fail;
          sync_send (c->sync_fd, SYNC_HOOKS_DONE, 0, NULL);
          break;
        case SYNC_CONSOLE:
          c->master = console_recv_fd (c->sync_fd);
          if (c->master < 0)
            {
              cl_error_errno (err, "receive the terminal from the init");
              goto fail;
            }
          if (opts->console_socket)
            {
              int r = console_send_to_socket (opts->console_socket, c->master, err);
              close (c->master);
              c->master = -1;
              if (r < 0)
                goto fail;
            }
          break;
        default:
          cl_error_make (err, 0, "container init: unexpected message %d", msg.type);
          goto fail;
        }
    }
  cl_debug ("phase %.3f ms: ready", cl_now_ns () / 1e6);
  c->st.pid_start = state_pid_start (c->st.pid);
  if (cg_saved)
    json_object_set_new (c->st.doc, "cgroup", steal_pointer (&cg_saved));
  if (state_save (&c->st, err) < 0 || write_pid_file (opts->pid_file, c->st.pid, err) < 0)
    goto fail;
  if (!for_run)
    {
      close (c->sync_fd);
      c->sync_fd = -1;
    }
  strv_free (join);
  return 0;

fail:
  strv_free (join);
  if (sv[1] >= 0)
    close (sv[1]);
  if (c->st.pid > 0)
    kill_and_reap (c->st.pid);
  if (c->cg)
    {
      cl_error_t e = NULL;
      if (cl_cgroup_destroy (c->cg, &e) < 0)
        cl_error_release (&e);
    }
  if (c->st.dir)
    {
      cl_error_t e = NULL;
      if (cl_rm_rf (c->st.dir, &e) < 0)
        cl_error_release (&e);
    }
  created_release (c);
  return -1;
}

int
cl_container_create (const char *root, const char *id, const struct cl_container_create_opts *opts,
                     cl_error_t *err)
{
  struct created c;
  if (create_common (root, id, opts, false, &c, err) < 0)
    return -1;
  created_release (&c);
  return 0;
}

static int
load_cgroup (struct container_state *st, struct cl_cgroup **cg, cl_error_t *err)
{
  json_t *saved = json_object_get (st->doc, "cgroup");
  *cg = NULL;
  if (saved == NULL)
    return 0;
  return cl_cgroup_load (saved, cg, err);
}

/* Removes what a container left: processes, cgroup, state dir; runs the
   poststop hooks. */
static int
destroy (struct container_state *st, struct cl_cgroup *cg, cl_error_t *err)
{
  json_t *hooks = json_object_get (st->doc, "hooks");
  cl_error_t e = NULL;

  /* With its own pid namespace, the container's processes died with its
     init: no need to sweep the cgroup. */
  if (cg && (state_pid_alive (st) || !json_is_true (json_object_get (st->doc, "ownPidns"))))
    {
      if (cl_cgroup_kill_all (cg, SIGKILL, &e) < 0)
        cl_error_release (&e);
    }
  if (state_pid_alive (st))
    {
      int pidfd = (int) syscall (SYS_pidfd_open, st->pid, 0);
      kill (st->pid, SIGKILL);
      if (pidfd >= 0)
        {
          struct pollfd p = { .fd = pidfd, .events = POLLIN };
          poll (&p, 1, 5000);
          close (pidfd);
        }
      /* Our own child (run, or the manager's create) must be reaped. */
      waitpid (st->pid, NULL, WNOHANG);
    }
  if (cg && cl_cgroup_destroy (cg, err) < 0)
    return -1;
  if (json_object_get (hooks, "poststop"))
    {
      json_t *s = state_public (st);
      json_object_set_new (s, "status", json_string ("stopped"));
      hooks_run (hooks, "poststop", s, &e);
      json_decref (s);
    }
  return cl_rm_rf (st->dir, err);
}

/* Signals during a foreground run/exec go to the container's process. */
static volatile pid_t forward_pid;

static void
forward_signal (int sig)
{
  if (forward_pid > 0)
    kill (forward_pid, sig);
}

static void
set_forwarding (pid_t pid, bool on)
{
  static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
  struct sigaction sa = { .sa_handler = on ? forward_signal : SIG_DFL, .sa_flags = SA_RESTART };
  forward_pid = pid;
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaction (sigs[i], &sa, NULL);
}

static int
wait_exit_status (pid_t pid)
{
  int status = 0;
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return 255;
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return WEXITSTATUS (status);
}

int
cl_container_run (const char *root, const char *id, const struct cl_container_create_opts *opts,
                  int *exit_status, cl_error_t *err)
{
  struct created c;
  int status, r = 0;

  *exit_status = 0;
  if (create_common (root, id, opts, true, &c, err) < 0)
    return -1;
  if (sync_send (c.sync_fd, SYNC_START, 0, NULL) < 0)
    {
      cl_error_errno (err, "start the container");
      destroy (&c.st, c.cg, NULL);
      created_release (&c);
      return -1;
    }
  close (c.sync_fd);
  c.sync_fd = -1;
  run_hooks (&c, "poststart", "running", err);
  if (opts->detach)
    {
      created_release (&c);
      return 0;
    }
  set_forwarding (c.st.pid, true);
  if (c.master >= 0)
    console_proxy (c.master);
  cl_debug ("phase %.3f ms: started", cl_now_ns () / 1e6);
  status = wait_exit_status (c.st.pid);
  cl_debug ("phase %.3f ms: exited", cl_now_ns () / 1e6);
  set_forwarding (0, false);
  *exit_status = status;
  r = destroy (&c.st, c.cg, err);
  cl_debug ("phase %.3f ms: destroyed", cl_now_ns () / 1e6);
  created_release (&c);
  return r;
}

int
cl_container_start (const char *root, const char *id, cl_error_t *err)
{
  struct container_state st;
  cleanup_free char *fifo = NULL;
  cleanup_close int fd = -1;
  const char *status;
  char buf[8];
  int r = -1;

  if (state_load (root, id, &st, err) < 0)
    return -1;
  status = state_status (&st);
  if (strcmp (status, "created") != 0)
    {
      cl_error_make (err, 0, "container `%s` is %s, not created: cannot start it", id, status);
      goto out;
    }
  fifo = cl_strdup_printf ("%s/exec.fifo", st.dir);
  fd = open (fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    {
      cl_error_errno (err, "open `%s`", fifo);
      goto out;
    }
  /* The init writes one byte once it has the fifo open; if it dies
     first, say so instead of waiting forever. */
  for (;;)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      ssize_t n;
      if (poll (&p, 1, 100) > 0)
        {
          n = read (fd, buf, sizeof buf);
          if (n > 0)
            break;
        }
      if (!state_pid_alive (&st))
        {
          cl_error_make (err, 0, "container `%s`: init exited before start", id);
          goto out;
        }
    }
  unlink (fifo);
  {
    json_t *hooks = json_object_get (st.doc, "hooks");
    if (json_object_get (hooks, "poststart"))
      {
        json_t *s = state_public (&st);
        hooks_run (hooks, "poststart", s, err);
        json_decref (s);
      }
  }
  r = 0;
out:
  state_release (&st);
  return r;
}

int
cl_container_state (const char *root, const char *id, json_t **out, cl_error_t *err)
{
  struct container_state st;
  if (state_load (root, id, &st, err) < 0)
    return -1;
  *out = state_public (&st);
  state_release (&st);
  return 0;
}

int
cl_container_list (const char *root, json_t **out, cl_error_t *err)
{
  cleanup_dir DIR *d = opendir (state_root (root));
  struct dirent *de;

  *out = json_array ();
  if (d == NULL)
    return errno == ENOENT ? 0 : cl_error_errno (err, "open `%s`", state_root (root));
  while ((de = readdir (d)))
    {
      struct container_state st;
      cl_error_t e = NULL;
      if (de->d_name[0] == '.')
        continue;
      if (state_load (root, de->d_name, &st, &e) < 0)
        {
          cl_error_release (&e);
          continue;
        }
      json_array_append_new (*out, state_public (&st));
      state_release (&st);
    }
  return 0;
}

int
cl_container_kill (const char *root, const char *id, int signo, bool all, cl_error_t *err)
{
  struct container_state st;
  struct cl_cgroup *cg = NULL;
  int r = -1;

  if (state_load (root, id, &st, err) < 0)
    return -1;
  if (!state_pid_alive (&st))
    {
      cl_error_make (err, 0, "container `%s` is not running", id);
      goto out;
    }
  if (all)
    {
      if (load_cgroup (&st, &cg, err) < 0 || (cg && cl_cgroup_kill_all (cg, signo, err) < 0))
        goto out;
    }
  if (kill (st.pid, signo) < 0 && !(all && errno == ESRCH))
    {
      cl_error_errno (err, "kill container `%s` (pid %d)", id, st.pid);
      goto out;
    }
  r = 0;
out:
  cl_cgroup_free (cg);
  state_release (&st);
  return r;
}

int
cl_container_delete (const char *root, const char *id, bool force, cl_error_t *err)
{
  struct container_state st;
  struct cl_cgroup *cg = NULL;
  const char *status;
  int r = -1;

  if (state_load (root, id, &st, err) < 0)
    return -1;
  status = state_status (&st);
  if (!force && (strcmp (status, "running") == 0 || strcmp (status, "paused") == 0))
    {
      cl_error_make (err, 0, "container `%s` is %s: stop it first or use --force", id, status);
      goto out;
    }
  if (load_cgroup (&st, &cg, err) < 0)
    goto out;
  if (strcmp (status, "paused") == 0)
    {
      cl_error_t e = NULL;
      if (cl_cgroup_freeze (cg, false, &e) < 0)
        cl_error_release (&e);
    }
  r = destroy (&st, cg, err);
out:
  cl_cgroup_free (cg);
  state_release (&st);
  return r;
}

static int
set_frozen (const char *root, const char *id, bool frozen, cl_error_t *err)
{
  struct container_state st;
  struct cl_cgroup *cg = NULL;
  const char *status;
  int r = -1;

  if (state_load (root, id, &st, err) < 0)
    return -1;
  status = state_status (&st);
  if (strcmp (status, frozen ? "running" : "paused") != 0)
    {
      cl_error_make (err, 0, "container `%s` is %s: cannot %s it", id, status,
                     frozen ? "pause" : "resume");
      goto out;
    }
  if (load_cgroup (&st, &cg, err) < 0)
    goto out;
  if (cg == NULL)
    {
      cl_error_make (err, 0, "container `%s` has no cgroup", id);
      goto out;
    }
  if (cl_cgroup_freeze (cg, frozen, err) < 0)
    goto out;
  json_object_set_new (st.doc, "paused", json_boolean (frozen));
  r = state_save (&st, err);
out:
  cl_cgroup_free (cg);
  state_release (&st);
  return r;
}

int
cl_container_pause (const char *root, const char *id, cl_error_t *err)
{
  return set_frozen (root, id, true, err);
}

int
cl_container_resume (const char *root, const char *id, cl_error_t *err)
{
  return set_frozen (root, id, false, err);
}

int
cl_container_pids (const char *root, const char *id, pid_t **pids, size_t *n, cl_error_t *err)
{
  struct container_state st;
  struct cl_cgroup *cg = NULL;
  int r = -1;

  *pids = NULL;
  *n = 0;
  if (state_load (root, id, &st, err) < 0)
    return -1;
  if (load_cgroup (&st, &cg, err) < 0)
    goto out;
  if (cg)
    r = cl_cgroup_pids (cg, pids, n, err);
  else
    {
      r = 0;
      if (state_pid_alive (&st))
        {
          *pids = cl_xmalloc0 (sizeof **pids);
          (*pids)[0] = st.pid;
          *n = 1;
        }
    }
out:
  cl_cgroup_free (cg);
  state_release (&st);
  return r;
}

int
cl_container_update (const char *root, const char *id, json_t *resources, cl_error_t *err)
{
  struct container_state st;
  struct cl_cgroup *cg = NULL;
  cleanup_json json_t *wrap = NULL;
  int r = -1;

  if (state_load (root, id, &st, err) < 0)
    return -1;
  wrap = json_pack ("{s:O}", "resources", resources);
  if (cl_cgroup_validate (wrap, err) < 0 || load_cgroup (&st, &cg, err) < 0)
    goto out;
  if (cg == NULL)
    {
      cl_error_make (err, 0, "container `%s` has no cgroup", id);
      goto out;
    }
  r = cl_cgroup_update (cg, resources, err);
out:
  cl_cgroup_free (cg);
  state_release (&st);
  return r;
}

/* -------------------------------------------------------------------- */
/* exec                                                                   */

static int
exec_process (struct container_state *st, const struct cl_container_exec_opts *opts, json_t **out,
              cl_error_t *err)
{
  json_t *p;

  if (opts->process_file)
    {
      if (cl_json_load_file (opts->process_file, &p, err) < 0)
        return -1;
    }
  else if (opts->process)
    p = json_deep_copy (opts->process);
  else
    {
      json_t *args = json_array ();
      p = json_deep_copy (json_object_get (st->doc, "process"));
      if (p == NULL)
        p = json_object ();
      for (const char *const *a = opts->args; a && *a; a++)
        json_array_append_new (args, json_string (*a));
      json_object_set_new (p, "args", args);
      json_object_set_new (p, "terminal", json_boolean (opts->tty));
      json_object_del (p, "consoleSize");
    }
  if (opts->cwd)
    json_object_set_new (p, "cwd", json_string (opts->cwd));
  if (opts->env)
    {
      json_t *env = json_object_get (p, "env");
      if (env == NULL)
        json_object_set_new (p, "env", env = json_array ());
      for (const char *const *e = opts->env; *e; e++)
        json_array_append_new (env, json_string (*e));
    }
  if (opts->user)
    {
      unsigned uid = 0, gid = 0;
      int n = sscanf (opts->user, "%u:%u", &uid, &gid);
      json_t *user = json_object ();
      if (n < 1)
        {
          json_decref (p);
          json_decref (user);
          return cl_error_make (err, 0, "--user: expected UID[:GID], got `%s`", opts->user);
        }
      json_object_set_new (user, "uid", json_integer (uid));
      json_object_set_new (user, "gid", json_integer (n == 2 ? gid : 0));
      json_object_set_new (p, "user", user);
    }
  if (opts->tty)
    json_object_set_new (p, "terminal", json_true ());
  if (spec_validate_process (p, opts->process_file ? opts->process_file : "process", err) < 0)
    {
      json_decref (p);
      return -1;
    }
  *out = p;
  return 0;
}

static const int join_order[] = { CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET,
                                  CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWTIME, CLONE_NEWNS };

__attribute__ ((noreturn)) static void
exec_child (struct container_state *st, json_t *process, const struct cl_container_exec_opts *opts,
            char **cgroup_join, int sync_fd)
{
  cl_error_t err = NULL;
  int fds[8], n = 0, keep[5] = { sync_fd, -1, -1, -1, -1 };
  struct sync_msg msg;
  struct process_setup ps = { .process = process, .seccomp = json_object_get (st->doc, "seccomp"),
                              .id = NULL, .no_new_keyring = true, .console_slave = -1,
                              .stdio = opts->stdio };
  cleanup_free char *exe = NULL;
  struct stat self, other;
  pid_t pid;

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  prctl (PR_SET_DUMPABLE, 0);
  if (opts->stdio)
    for (int i = 0; i < 3; i++)
      keep[1 + i] = opts->stdio[i];
  process_close_fds (opts->preserve_fds, keep, 4);
  if (sync_recv (sync_fd, SYNC_GO, &msg, &err) < 0)
    _exit (1);
  if (cgroup_join_self (cgroup_join, &err) < 0)
    sync_fail (sync_fd, &err);
  /* Open every namespace first: after joining the mount namespace the
     host's /proc is gone. */
  for (size_t i = 0; i < sizeof join_order / sizeof join_order[0]; i++)
    {
      const char *name = spec_namespace_proc_name (join_order[i]);
      char a[64], b[64];
      snprintf (a, sizeof a, "/proc/self/ns/%s", name);
      snprintf (b, sizeof b, "/proc/%d/ns/%s", st->pid, name);
      fds[i] = -1;
      if (stat (a, &self) < 0 || stat (b, &other) < 0 || self.st_ino == other.st_ino)
        continue;
      fds[i] = open (b, O_RDONLY | O_CLOEXEC);
      if (fds[i] < 0)
        {
          cl_error_errno (&err, "open `%s`", b);
          sync_fail (sync_fd, &err);
        }
      n++;
    }
  for (size_t i = 0; i < sizeof join_order / sizeof join_order[0]; i++)
    if (fds[i] >= 0)
      {
        if (setns (fds[i], join_order[i]) < 0)
          {
            cl_error_errno (&err, "join the container's %s namespace", spec_namespace_proc_name (join_order[i]));
            sync_fail (sync_fd, &err);
          }
        close (fds[i]);
      }
  if (fds[4] >= 0 || fds[6] >= 0) /* pid, time */
    {
      /* pid and time namespaces apply to children. */
      pid = (pid_t) syscall (SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
      if (pid < 0)
        {
          cl_error_errno (&err, "fork into the container");
          sync_fail (sync_fd, &err);
        }
      if (pid > 0)
        {
          sync_send (sync_fd, SYNC_PID, pid, NULL);
          _exit (0);
        }
      prctl (PR_SET_PDEATHSIG, SIGKILL);
    }
  if (json_is_true (json_object_get (process, "terminal")))
    {
      int master;
      if (console_open_pty ("/dev/pts/ptmx", json_object_get (process, "consoleSize"), &master,
                            &ps.console_slave, &err) < 0)
        sync_fail (sync_fd, &err);
      if (sync_send (sync_fd, SYNC_CONSOLE, 0, NULL) < 0 || console_send_fd (sync_fd, master, "console") < 0)
        {
          cl_error_errno (&err, "send the terminal");
          sync_fail (sync_fd, &err);
        }
      close (master);
    }
  if (process_prepare (&ps, &exe, &err) < 0)
    sync_fail (sync_fd, &err);
  prctl (PR_SET_PDEATHSIG, 0);
  sync_send (sync_fd, SYNC_READY, 0, NULL);
  process_exec (&ps, exe, &err);
  sync_fail (sync_fd, &err);
}

int
cl_container_exec (const char *root, const char *id, const struct cl_container_exec_opts *opts,
                   int *exit_status, cl_error_t *err)
{
  struct container_state st;
  cleanup_json json_t *process = NULL;
  const char *status;
  int sv[2] = { -1, -1 }, master = -1, r = -1;
  cleanup_close int v2_fd = -1;
  cleanup_free char *v2_procs = NULL;
  char **join = NULL;
  bool placed = false;
  pid_t helper = -1, pid = -1;
  struct sync_msg msg;

  *exit_status = 0;
  if (state_load (root, id, &st, err) < 0)
    return -1;
  status = state_status (&st);
  if (strcmp (status, "running") != 0 && strcmp (status, "created") != 0)
    {
      cl_error_make (err, 0, "container `%s` is %s: cannot exec in it", id, status);
      goto out;
    }
  if (exec_process (&st, opts, &process, err) < 0)
    goto out;
  if (json_is_true (json_object_get (process, "terminal")) && opts->console_socket == NULL && opts->detach)
    {
      cl_error_make (err, 0, "process.terminal is true: --console-socket is required with --detach");
      goto out;
    }
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      cl_error_errno (err, "socketpair");
      goto out;
    }
  join = cgroup_join_files (json_object_get (st.doc, "cgroup"), &v2_fd, &v2_procs);
  helper = clone_fork (0, v2_fd, &placed);
  if (!placed && v2_procs)
    join = strv_append (join, steal_pointer (&v2_procs));
  if (helper < 0)
    {
      cl_error_errno (err, "fork");
      goto out;
    }
  if (helper == 0)
    {
      close (sv[0]);
      exec_child (&st, process, opts, join, sv[1]);
    }
  close (sv[1]);
  sv[1] = -1;
  pid = helper;
  sync_send (sv[0], SYNC_GO, 0, NULL);
  for (;;)
    {
      if (sync_recv (sv[0], 0, &msg, err) < 0)
        goto fail;
      if (msg.type == SYNC_READY)
        break;
      if (msg.type == SYNC_PID)
        {
          waitpid (helper, NULL, 0);
          pid = msg.value;
        }
      else if (msg.type == SYNC_CONSOLE)
        {
          master = console_recv_fd (sv[0]);
          if (master < 0)
            {
              cl_error_errno (err, "receive the terminal");
              goto fail;
            }
          if (opts->console_socket)
            {
              int rr = console_send_to_socket (opts->console_socket, master, err);
              close (master);
              master = -1;
              if (rr < 0)
                goto fail;
            }
        }
    }
  /* After READY: end of stream means execve succeeded. */
  {
    ssize_t n = recv (sv[0], &msg, sizeof msg - 1, 0);
    if (n > 0 && msg.type == SYNC_ERROR)
      {
        ((char *) &msg)[n] = '\0';
        cl_error_make (err, 0, "%s", msg.text);
        goto fail;
      }
  }
  if (write_pid_file (opts->pid_file, pid, err) < 0)
    goto fail;
  if (!opts->detach)
    {
      set_forwarding (pid, true);
      if (master >= 0)
        console_proxy (master);
      *exit_status = wait_exit_status (pid);
      set_forwarding (0, false);
    }
  r = 0;
  goto out;
fail:
  kill_and_reap (pid);
  if (helper != pid)
    waitpid (helper, NULL, WNOHANG);
out:
  if (master >= 0)
    close (master);
  if (sv[0] >= 0)
    close (sv[0]);
  if (sv[1] >= 0)
    close (sv[1]);
  strv_free (join);
  state_release (&st);
  return r;
}

/* -------------------------------------------------------------------- */

json_t *
cl_container_default_spec (bool rootless)
{
  return spec_default (rootless);
}

json_t *
cl_container_features (void)
{
  return spec_features ();
}

int
cl_container_parse_signal (const char *s, int *signo, cl_error_t *err)
{
  char *end;
  long n;

  if (s == NULL || *s == '\0')
    return cl_error_make (err, 0, "signal: empty");
  n = strtol (s, &end, 10);
  if (*end == '\0')
    {
      if (n <= 0 || n >= NSIG)
        return cl_error_make (err, 0, "signal: `%s` out of range", s);
      *signo = (int) n;
      return 0;
    }
  const char *bare = strncasecmp (s, "SIG", 3) == 0 ? s + 3 : s;
  for (int i = 1; i < NSIG; i++)
    {
      const char *name = sigabbrev_np (i);
      if (name && strcasecmp (name, bare) == 0)
        {
          *signo = i;
          return 0;
        }
    }
  return cl_error_make (err, 0, "signal: unknown signal `%s`", s);
}
