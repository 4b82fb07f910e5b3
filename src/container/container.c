/* SPDX-License-Identifier: Apache-2.0 */
/* The engine's commands: create/start/run through the init (ctr_init.c),
   later commands through the state directory (ctr_state.c). */
#include "container/container.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "container/cgroup.h"
#include "container/console.h"
#include "container/ctr_engine.h"
#include "container/hooks.h"
#include "container/netdev.h"
#include "container/ctr_init.h"
#include "container/process.h"
#include "container/seccomp.h"
#include "container/spec.h"
#include "container/ctr_state.h"
#include "container/sync.h"
#include "container/vm_isolation.h"

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
#include <sys/ioctl.h>
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
  struct cl_seccomp_program *seccomp;
  json_t *config;
  int sync_fd;
  int master; /* pty master kept for a foreground run, else -1 */
  bool vm;    /* VM-isolated: st.pid is the shim (vm_isolation.h) */
};

static void
created_release (struct created *c)
{
  cl_ctr_state_release (&c->st);
  cl_ctr_cgroup_free (c->cg);
  cl_ctr_seccomp_program_free (c->seccomp);
  json_decref (c->config);
  if (c->sync_fd >= 0)
    close (c->sync_fd);
  if (c->master >= 0)
    close (c->master);
}

int
cl_ctr_engine_write_pid_file (const char *path, pid_t pid, cl_error_t *err)
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
  /* Unprivileged, a gid map may only be written once setgroups is off. */
  if (strcmp (file, "gid_map") == 0 && geteuid () != 0)
    {
      cleanup_free char *sg = cl_strdup_printf ("/proc/%d/setgroups", pid);
      if (cl_write_file (sg, "deny", 4, 0, err) < 0)
        return cl_error_wrap (err, "linux.gidMappings");
    }
  json_array_foreach (maps, i, m)
  {
    int n = snprintf (buf + len, sizeof buf - len, "%lld %lld %lld\n",
                      json_integer_value (json_object_get (m, "containerID")),
                      json_integer_value (json_object_get (m, "hostID")),
                      json_integer_value (json_object_get (m, "size")));
    if (n < 0 || (size_t)n >= sizeof buf - len)
      return cl_error_make (err, 0, "linux.%s: too many mappings",
                            strcmp (file, "uid_map") == 0 ? "uidMappings" : "gidMappings");
    len += (size_t)n;
  }
  if (cl_write_file (path, buf, len, 0, err) < 0)
    return cl_error_wrap (err, "linux.%s",
                          strcmp (file, "uid_map") == 0 ? "uidMappings" : "gidMappings");
  return 0;
}

/* fork with namespaces; with cgroup_fd >= 0 the child starts in that
   cgroup v2 directory (*placed tells whether the kernel did it). */
pid_t
cl_ctr_engine_clone (int flags, int cgroup_fd, bool *placed)
{
  struct clone_args args = { .flags = (uint64_t)flags, .exit_signal = SIGCHLD };
  pid_t pid;

  *placed = false;
  if (cgroup_fd >= 0)
    {
      args.flags |= CLONE_INTO_CGROUP;
      args.cgroup = (uint64_t)cgroup_fd;
      pid = (pid_t)syscall (SYS_clone3, &args, sizeof args);
      if (pid >= 0)
        {
          *placed = true;
          return pid;
        }
      args.flags &= ~(uint64_t)CLONE_INTO_CGROUP;
    }
  return (pid_t)syscall (SYS_clone3, &args, sizeof args);
}

char **
cl_ctr_engine_strv_append (char **v, char *s)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  v = realloc (v, (n + 2) * sizeof *v);
  v[n] = s;
  v[n + 1] = NULL;
  return v;
}

void
cl_ctr_engine_kill_and_reap (pid_t pid)
{
  if (pid <= 0)
    return;
  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);
}

static json_t *
creating_state (struct created *c, const char *status)
{
  json_t *s = cl_ctr_state_public (&c->st);
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
  /* runc runs these from the bundle directory. */
  return cl_ctr_hooks_run (hooks, kind, s, NULL, json_string_value (json_object_get (s, "bundle")),
                           err);
}

/* The init's seccomp listener fd follows on `sync_fd`: hand it to
   linux.seccomp.listenerPath with the state, as the spec says. */
int
cl_ctr_engine_forward_seccomp_listener (int sync_fd, json_t *seccomp, json_t *state,
                                        cl_error_t *err)
{
  int fd = cl_ctr_console_recv_fd (sync_fd), r;
  if (fd < 0)
    return cl_error_errno (err, "linux.seccomp: receive the listener fd");
  r = cl_ctr_seccomp_send_listener (seccomp, fd, state, err);
  close (fd);
  return r;
}

int
cl_ctr_engine_compile_seccomp (const char *root, json_t *seccomp, struct cl_seccomp_program **prog,
                               cl_error_t *err)
{
  cleanup_free char *cache = NULL;

  *prog = NULL;
  if (seccomp == NULL || json_is_null (seccomp))
    return 0;
  cache = cl_strdup_printf ("%s/.seccomp", cl_ctr_state_root (root));
  return cl_ctr_seccomp_compile (seccomp, cache, prog, err);
}

/* CLONE_NEW* flags of the namespaces the spec creates (not joined). */
static int
new_namespaces (json_t *linux_obj)
{
  json_t *ns = json_object_get (linux_obj, "namespaces"), *v;
  size_t i;
  int flags = 0;
  json_array_foreach (ns, i, v)
  {
    if (json_object_get (v, "path") == NULL)
      flags |= cl_ctr_spec_namespace_flag (json_string_value (json_object_get (v, "type")));
  }
  return flags;
}

/* Those the init gets from clone.  cgroup comes later (it must start at
   the container's cgroup); a new time namespace applies to children
   only, so the init then makes the pid namespace the same way and forks
   the real init. */
static int
clone_flags (json_t *linux_obj)
{
  int flags = new_namespaces (linux_obj);
  if (flags & CLONE_NEWTIME)
    flags &= ~CLONE_NEWPID;
  return flags & ~(CLONE_NEWCGROUP | CLONE_NEWTIME);
}

/* Resources other than device rules (which a rootless container cannot
   have enforced anyway). */
static bool
wants_limits (json_t *linux_obj)
{
  json_t *res = json_object_get (linux_obj, "resources"), *v;
  const char *key;
  json_object_foreach (res, key, v)
  {
    if (strcmp (key, "devices") != 0)
      return true;
  }
  return false;
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
  bool placed = false, prewritten = false;
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
  else if (cl_ctr_spec_load (opts->bundle, &c->config, err) < 0)
    return -1;
  bundle = cl_xstrdup (realpath (opts->bundle, resolved) ? resolved : opts->bundle);
  if (cl_ctr_spec_validate (c->config, bundle, &rootfs, err) < 0)
    return -1;
  linux_obj = json_object_get (c->config, "linux");
  process = json_object_get (c->config, "process");
  terminal = json_is_true (json_object_get (process, "terminal"));
  if (terminal && opts->console_socket == NULL && !(for_run && !opts->detach))
    return cl_error_make (err, 0, "process.terminal is true: --console-socket is required");
  if ((clone_flags (linux_obj) & CLONE_NEWUSER)
      && json_array_size (json_object_get (linux_obj, "uidMappings")) == 0)
    return cl_error_make (err, 0, "linux.uidMappings: required with a new user namespace");
  switch (cl_ctr_vm_wanted (c->config, opts->vm_isolation, err))
    {
    case -1:
      return -1;
    case 1:
      c->vm = true;
      if (cl_ctr_vm_create (root, id, opts, c->config, bundle, rootfs, &c->st, &c->cg, err) < 0)
        {
          created_release (c);
          return -1;
        }
      return 0;
    }

  c->st.id = cl_xstrdup (id);
  if (cl_ctr_state_dir_create (root, id, &c->st.dir, err) < 0)
    return -1;
  if (!for_run)
    {
      fifo = cl_strdup_printf ("%s/exec.fifo", c->st.dir);
      /* Writable by all: the init reopens it after switching to the
         process's user (the 0700 state dir keeps others out). */
      if (mkfifo (fifo, 0622) < 0 || chmod (fifo, 0622) < 0)
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
  /* The init inherits the program: it only loads it.  This also checks
     the profile (cl_ctr_spec_validate leaves it to the compiler, or to the
     cache, which only holds profiles that compiled). */
  if (cl_ctr_engine_compile_seccomp (root, json_object_get (linux_obj, "seccomp"), &c->seccomp, err)
      < 0)
    goto fail;
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      cl_error_errno (err, "socketpair");
      goto fail;
    }
  /* The cgroup first, limits applied while it is empty; the init joins
     it on its own (see ctr_init.h). */
  cl_debug ("phase %.3f ms: cgroup", cl_now_ns () / 1e6);
  if (cl_ctr_cgroup_enter (id, linux_obj, 0, &c->cg, err) < 0)
    {
      /* Rootless, as runc: without permission on the cgroup tree and
         without limits to apply, run without a cgroup of our own. */
      if (geteuid () == 0
          || ((*err)->status != EACCES && (*err)->status != EPERM && (*err)->status != EROFS)
          || wants_limits (linux_obj))
        goto fail;
      cl_debug ("rootless: no cgroup: %s", (*err)->msg);
      cl_error_release (err);
      c->cg = NULL;
    }
  cg_saved = c->cg ? cl_ctr_cgroup_save (c->cg) : NULL;
  join = cl_ctr_cgroup_join_files (cg_saved, &v2_fd, &v2_procs);
  flags = clone_flags (linux_obj);
  cl_debug ("phase %.3f ms: clone", cl_now_ns () / 1e6);
  pid = cl_ctr_engine_clone (flags, v2_fd, &placed);
  if (!placed && v2_procs)
    join = cl_ctr_engine_strv_append (join, steal_pointer (&v2_procs));
  if (pid < 0)
    {
      cl_error_errno (err, "clone the container init");
      goto fail;
    }
  if (pid == 0)
    {
      struct init_args a = { .config = c->config,
                             .rootfs = rootfs,
                             .bundle = bundle,
                             .id = id,
                             .sync_fd = sv[1],
                             .fifo_fd = fifo_fd,
                             .preserve_fds = opts->preserve_fds,
                             .no_pivot = opts->no_pivot,
                             .no_new_keyring = opts->no_new_keyring,
                             .ns_new = flags,
                             .stdio = opts->stdio,
                             .cgroup_join = join,
                             .seccomp = c->seccomp };
      close (sv[0]);
      cl_ctr_init_run (&a);
    }
  close (sv[1]);
  sv[1] = -1;
  c->sync_fd = sv[0];
  c->st.pid = pid;
  if (flags & CLONE_NEWUSER)
    {
      if (write_id_map (pid, "gid_map", json_object_get (linux_obj, "gidMappings"), err) < 0
          || write_id_map (pid, "uid_map", json_object_get (linux_obj, "uidMappings"), err) < 0)
        goto fail;
    }
  /* GO at once: the init waits for it before its cgroup mounts; the state
     document below is built meanwhile.  The init may already have failed
     (it does not wait for GO to build the root): its message is read
     below either way. */
  cl_ctr_sync_send (c->sync_fd, SYNC_GO, 0, NULL);

  /* State document, needed by hooks already. */
  created_at = cl_ctr_state_now_rfc3339 ();
  c->st.doc
      = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:O, s:O*, s:O*, s:O*}", "id", id, "bundle", bundle,
                   "rootfs", rootfs, "created", created_at, "owner", geteuid () == 0 ? "root" : "",
                   "process", process, "seccomp", json_object_get (linux_obj, "seccomp"), "hooks",
                   json_object_get (c->config, "hooks"), "annotations",
                   json_object_get (c->config, "annotations"));
  json_object_set_new (c->st.doc, "ownPidns",
                       json_boolean (new_namespaces (linux_obj) & CLONE_NEWPID));
  if (cg_saved)
    json_object_set_new (c->st.doc, "cgroup", steal_pointer (&cg_saved));
  if (json_object_get (linux_obj, "netDevices")) /* moved back by delete */
    json_object_set (c->st.doc, "netDevices", json_object_get (linux_obj, "netDevices"));
  /* Written while the init builds its root; made state.json once it is
     ready.  Not when the real init is a forked child: its pid comes later. */
  prewritten = !cl_ctr_init_forks_real_init (linux_obj);
  if (prewritten)
    {
      c->st.pid_start = cl_proc_start_time (c->st.pid);
      if (cl_ctr_state_save_begin (&c->st, err) < 0)
        goto fail;
    }
  /* The real init's READY may come before its parent's PID message:
     wait for both. */
  for (bool ready = false, pid_known = !cl_ctr_init_forks_real_init (linux_obj);
       !ready || !pid_known;)
    {
      if (cl_ctr_sync_recv (c->sync_fd, 0, &msg, err) < 0)
        goto fail;
      switch (msg.type)
        {
        case SYNC_READY:
          ready = true;
          break;
        case SYNC_PID:
          waitpid (c->st.pid, NULL, 0);
          c->st.pid = msg.value;
          pid_known = true;
          break;
        case SYNC_HOOKS:
          if (run_hooks (c, "prestart", "creating", err) < 0
              || run_hooks (c, "createRuntime", "creating", err) < 0)
            goto fail;
          cl_ctr_sync_send (c->sync_fd, SYNC_HOOKS_DONE, 0, NULL);
          break;
        case SYNC_CONSOLE:
          c->master = cl_ctr_console_recv_fd (c->sync_fd);
          if (c->master < 0)
            {
              cl_error_errno (err, "receive the terminal from the init");
              goto fail;
            }
          if (opts->console_socket)
            {
              int r = cl_ctr_console_send_to_socket (opts->console_socket, c->master, err);
              close (c->master);
              c->master = -1;
              if (r < 0)
                goto fail;
            }
          break;
        case SYNC_SECCOMP:
          {
            json_t *s = creating_state (c, "creating");
            int r = cl_ctr_engine_forward_seccomp_listener (
                c->sync_fd, json_object_get (linux_obj, "seccomp"), s, err);
            json_decref (s);
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
  if (json_object_get (linux_obj, "netDevices"))
    {
      if (cl_ctr_netdev_move_in (json_object_get (linux_obj, "netDevices"), c->st.pid, err) < 0)
        {
          cl_ctr_netdev_move_out (json_object_get (linux_obj, "netDevices"), c->st.pid);
          goto fail;
        }
    }
  if (!prewritten)
    c->st.pid_start = cl_proc_start_time (c->st.pid);
  if ((prewritten ? cl_ctr_state_save_commit (&c->st, err) : cl_ctr_state_save (&c->st, err)) < 0)
    goto fail;
  if (cl_ctr_engine_write_pid_file (opts->pid_file, c->st.pid, err) < 0)
    goto fail;
  if (!for_run)
    {
      close (c->sync_fd);
      c->sync_fd = -1;
    }
  cl_strv_free (join);
  return 0;

fail:
  cl_strv_free (join);
  if (sv[1] >= 0)
    close (sv[1]);
  if (c->st.pid > 0)
    cl_ctr_engine_kill_and_reap (c->st.pid);
  if (c->cg)
    {
      cl_error_t e = NULL;
      if (cl_ctr_cgroup_destroy (c->cg, &e) < 0)
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
cl_ctr_create (const char *root, const char *id, const struct cl_container_create_opts *opts,
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
  return cl_ctr_cgroup_load (saved, cg, err);
}

/* State, status and cgroup of a container, for the commands that act on
   its cgroup; the status must be one of `allowed` ("running|paused"),
   else the error says what it is and what `action` could not be done. */
static int
load_for (const char *root, const char *id, const char *allowed, const char *action,
          struct container_state *st, const char **status, struct cl_cgroup **cg, cl_error_t *err)
{
  *cg = NULL;
  if (cl_ctr_state_load (root, id, st, err) < 0)
    return -1;
  *status = cl_ctr_state_status (st);
  if (allowed && !strstr (allowed, *status))
    {
      cl_error_make (err, 0, "container `%s` is %s: %s", id, *status, action);
      cl_ctr_state_release (st);
      return -1;
    }
  if (load_cgroup (st, cg, err) < 0)
    {
      cl_ctr_state_release (st);
      return -1;
    }
  return 0;
}

/* Removes what a container left: processes, cgroup, state dir; runs the
   poststop hooks. */
static int
destroy (struct container_state *st, struct cl_cgroup *cg, cl_error_t *err)
{
  json_t *hooks = json_object_get (st->doc, "hooks");
  cl_error_t e = NULL;

  /* Lent interfaces go back while the namespace still lives. */
  if (cl_ctr_state_pid_alive (st))
    cl_ctr_netdev_move_out (json_object_get (st->doc, "netDevices"), st->pid);
  /* With its own pid namespace, the container's processes died with its
     init: no need to sweep the cgroup. */
  if (cg && (cl_ctr_state_pid_alive (st) || !json_is_true (json_object_get (st->doc, "ownPidns"))))
    {
      if (cl_ctr_cgroup_kill_all (cg, SIGKILL, &e) < 0)
        cl_error_release (&e);
    }
  if (cl_ctr_state_pid_alive (st))
    {
      int pidfd = (int)syscall (SYS_pidfd_open, st->pid, 0);
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
  if (cg && cl_ctr_cgroup_destroy (cg, err) < 0)
    return -1;
  if (json_object_get (hooks, "poststop"))
    {
      json_t *s = cl_ctr_state_public (st);
      json_object_set_new (s, "status", json_string ("stopped"));
      cl_ctr_hooks_run (hooks, "poststop", s, NULL,
                        json_string_value (json_object_get (s, "bundle")), &e);
      json_decref (s);
    }
  return cl_ctr_state_dir_remove (st->dir, err);
}

/* Signals during a foreground run/exec go to the container's process. */
static volatile pid_t forward_pid;
static volatile int forward_master = -1;

static void
forward_signal (int sig)
{
  struct winsize ws;
  /* A terminal we proxy: its size follows ours (the kernel then signals
     the container's foreground group itself). */
  if (sig == SIGWINCH && forward_master >= 0)
    {
      if (ioctl (0, TIOCGWINSZ, &ws) == 0)
        ioctl (forward_master, TIOCSWINSZ, &ws);
      return;
    }
  if (forward_pid > 0)
    kill (forward_pid, sig);
}

void
cl_ctr_engine_set_forwarding (pid_t pid, int master, bool on)
{
  static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
  struct sigaction sa = { .sa_handler = on ? forward_signal : SIG_DFL, .sa_flags = SA_RESTART };
  forward_pid = pid;
  forward_master = on ? master : -1;
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaction (sigs[i], &sa, NULL);
}

int
cl_ctr_engine_wait_exit_status (pid_t pid)
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
cl_ctr_run (const char *root, const char *id, const struct cl_container_create_opts *opts,
            int *exit_status, cl_error_t *err)
{
  struct created c;
  int status, r = 0;

  *exit_status = 0;
  if (create_common (root, id, opts, true, &c, err) < 0)
    return -1;
  if (c.vm)
    {
      /* the shim waits on exec.fifo like an init: start it the same way */
      if (cl_ctr_start (root, id, err) < 0)
        {
          destroy (&c.st, c.cg, NULL);
          created_release (&c);
          return -1;
        }
      if (opts->detach)
        {
          created_release (&c);
          return 0;
        }
      cl_ctr_engine_set_forwarding (c.st.pid, -1, true);
      *exit_status = cl_ctr_engine_wait_exit_status (c.st.pid);
      cl_ctr_engine_set_forwarding (0, -1, false);
      r = destroy (&c.st, c.cg, err);
      created_release (&c);
      return r;
    }
  if (cl_ctr_sync_send (c.sync_fd, SYNC_START, 0, NULL) < 0)
    {
      cl_error_errno (err, "start the container");
      destroy (&c.st, c.cg, NULL);
      created_release (&c);
      return -1;
    }
  close (c.sync_fd);
  c.sync_fd = -1;
  /* A failing poststart hook: runc kills and removes the container, and
     the command fails. */
  if (run_hooks (&c, "poststart", "running", err) < 0)
    {
      destroy (&c.st, c.cg, NULL);
      created_release (&c);
      return -1;
    }
  if (opts->detach)
    {
      created_release (&c);
      return 0;
    }
  cl_ctr_engine_set_forwarding (c.st.pid, c.master, true);
  if (c.master >= 0)
    cl_ctr_console_proxy (c.master);
  cl_debug ("phase %.3f ms: started", cl_now_ns () / 1e6);
  status = cl_ctr_engine_wait_exit_status (c.st.pid);
  cl_debug ("phase %.3f ms: exited", cl_now_ns () / 1e6);
  cl_ctr_engine_set_forwarding (0, -1, false);
  *exit_status = status;
  r = destroy (&c.st, c.cg, err);
  cl_debug ("phase %.3f ms: destroyed", cl_now_ns () / 1e6);
  created_release (&c);
  return r;
}

int
cl_ctr_start (const char *root, const char *id, cl_error_t *err)
{
  struct container_state st;
  cleanup_free char *fifo = NULL;
  cleanup_close int fd = -1;
  const char *status;
  char buf[8];
  int r = -1;

  if (cl_ctr_state_load (root, id, &st, err) < 0)
    return -1;
  status = cl_ctr_state_status (&st);
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
      if (!cl_ctr_state_pid_alive (&st))
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
        json_t *s = cl_ctr_state_public (&st);
        int hr = cl_ctr_hooks_run (hooks, "poststart", s, NULL,
                                   json_string_value (json_object_get (s, "bundle")), err);
        json_decref (s);
        if (hr < 0)
          {
            struct cl_cgroup *cg = NULL;
            cl_error_t e = NULL;
            if (load_cgroup (&st, &cg, &e) < 0 || destroy (&st, cg, &e) < 0)
              cl_error_release (&e);
            cl_ctr_cgroup_free (cg);
            goto out;
          }
      }
  }
  r = 0;
out:
  cl_ctr_state_release (&st);
  return r;
}

int
cl_ctr_state (const char *root, const char *id, json_t **out, cl_error_t *err)
{
  struct container_state st;
  if (cl_ctr_state_load (root, id, &st, err) < 0)
    return -1;
  *out = cl_ctr_state_public (&st);
  cl_ctr_state_release (&st);
  return 0;
}

int
cl_ctr_list (const char *root, json_t **out, cl_error_t *err)
{
  cleanup_dir DIR *d = opendir (cl_ctr_state_root (root));
  struct dirent *de;

  *out = json_array ();
  if (d == NULL)
    return errno == ENOENT ? 0 : cl_error_errno (err, "open `%s`", cl_ctr_state_root (root));
  while ((de = readdir (d)))
    {
      struct container_state st;
      cl_error_t e = NULL;
      if (de->d_name[0] == '.')
        continue;
      if (cl_ctr_state_load (root, de->d_name, &st, &e) < 0)
        {
          cl_error_release (&e);
          continue;
        }
      json_array_append_new (*out, cl_ctr_state_public (&st));
      cl_ctr_state_release (&st);
    }
  return 0;
}

int
cl_ctr_kill (const char *root, const char *id, int signo, bool all, cl_error_t *err)
{
  struct container_state st;
  struct cl_cgroup *cg = NULL;
  const char *status;
  int r = -1;

  /* --all reaches a stopped container too, as runc's: what its init left
     in the cgroup (a shared pid namespace keeps orphans alive) still gets
     the signal.  containerd's shim sends that SIGKILL to every container
     it deletes, and takes a failure for an error. */
  if (load_for (root, id, all ? NULL : "created|running|paused",
                "container not running, cannot signal it", &st, &status, &cg, err)
      < 0)
    return -1;
  if (all && cg && cl_ctr_cgroup_kill_all (cg, signo, err) < 0)
    goto out;
  if (strcmp (status, "stopped") != 0 && kill (st.pid, signo) < 0 && !(all && errno == ESRCH))
    {
      cl_error_errno (err, "kill container `%s` (pid %d)", id, st.pid);
      goto out;
    }
  r = 0;
out:
  cl_ctr_cgroup_free (cg);
  cl_ctr_state_release (&st);
  return r;
}

int
cl_ctr_delete (const char *root, const char *id, bool force, cl_error_t *err)
{
  struct container_state st;
  struct cl_cgroup *cg = NULL;
  const char *status;
  int r = -1;

  if (force)
    {
      /* Already gone (or a create aborted before its state was written):
         nothing to stop; remove what is left, as runc does.  A create
         killed in its middle (in a hook, say) left state.json.new, written
         before the hooks with the pid and the cgroup: made the state, it
         lets the delete below end the half-made container's processes and
         remove its cgroup, which runc leaves behind. */
      cleanup_free char *dir = NULL, *file = NULL, *half = NULL;
      if (cl_validate_name (id, "container id", err) < 0)
        return -1;
      dir = cl_strdup_printf ("%s/%s", cl_ctr_state_root (root), id);
      file = cl_strdup_printf ("%s/state.json", dir);
      half = cl_strdup_printf ("%s.new", file);
      if (access (file, F_OK) < 0 && errno == ENOENT && rename (half, file) < 0)
        return access (dir, F_OK) == 0 ? cl_rm_rf (dir, err) : 0;
    }
  if (load_for (root, id, force ? NULL : "created|stopped", "stop it first or use --force", &st,
                &status, &cg, err)
      < 0)
    return -1;
  /* thawed whatever the state says: a pause killed between freezing the
     cgroup and recording it leaves frozen tasks, which take no SIGKILL
     under cgroup v1 */
  if (cg)
    {
      cl_error_t e = NULL;
      if (cl_ctr_cgroup_freeze (cg, false, &e) < 0)
        cl_error_release (&e);
    }
  r = destroy (&st, cg, err);
  cl_ctr_cgroup_free (cg);
  cl_ctr_state_release (&st);
  return r;
}

/* Freezes or thaws the container's cgroup.  `allowed`: the states it may
   be in (NULL: any, and having no cgroup is no error). */
static int
set_frozen (const char *root, const char *id, bool frozen, const char *allowed, cl_error_t *err)
{
  struct container_state st;
  struct cl_cgroup *cg = NULL;
  const char *status;
  int r = -1;

  if (load_for (root, id, allowed, frozen ? "cannot pause it" : "cannot resume it", &st, &status,
                &cg, err)
      < 0)
    return -1;
  if (cg == NULL)
    {
      if (allowed == NULL)
        r = 0;
      else
        cl_error_make (err, 0, "container `%s` has no cgroup", id);
      goto out;
    }
  if (json_object_get (st.doc, "vm") ? cl_ctr_vm_set_paused (&st, frozen, err) < 0
                                      : cl_ctr_cgroup_freeze (cg, frozen, err) < 0)
    goto out;
  r = 0;
  if (json_is_true (json_object_get (st.doc, "paused")) != frozen)
    {
      json_object_set_new (st.doc, "paused", json_boolean (frozen));
      r = cl_ctr_state_save (&st, err);
    }
out:
  cl_ctr_cgroup_free (cg);
  cl_ctr_state_release (&st);
  return r;
}

int
cl_ctr_thaw (const char *root, const char *id, cl_error_t *err)
{
  return set_frozen (root, id, false, NULL, err);
}

int
cl_ctr_pause (const char *root, const char *id, cl_error_t *err)
{
  return set_frozen (root, id, true, "running", err);
}

int
cl_ctr_resume (const char *root, const char *id, cl_error_t *err)
{
  return set_frozen (root, id, false, "paused", err);
}

int
cl_ctr_pids (const char *root, const char *id, pid_t **pids, size_t *n, cl_error_t *err)
{
  struct container_state st;
  struct cl_cgroup *cg = NULL;
  int r = -1;

  *pids = NULL;
  *n = 0;
  if (cl_ctr_state_load (root, id, &st, err) < 0)
    return -1;
  if (load_cgroup (&st, &cg, err) < 0)
    goto out;
  if (cg)
    r = cl_ctr_cgroup_pids (cg, pids, n, err);
  else
    {
      r = 0;
      if (cl_ctr_state_pid_alive (&st))
        {
          *pids = cl_xmalloc0 (sizeof **pids);
          (*pids)[0] = st.pid;
          *n = 1;
        }
    }
out:
  cl_ctr_cgroup_free (cg);
  cl_ctr_state_release (&st);
  return r;
}

int
cl_ctr_update (const char *root, const char *id, json_t *resources, cl_error_t *err)
{
  struct container_state st;
  struct cl_cgroup *cg = NULL;
  cleanup_json json_t *wrap = NULL;
  int r = -1;

  if (cl_ctr_state_load (root, id, &st, err) < 0)
    return -1;
  wrap = json_pack ("{s:O}", "resources", resources);
  if (cl_ctr_cgroup_validate (wrap, err) < 0 || load_cgroup (&st, &cg, err) < 0)
    goto out;
  if (cg == NULL)
    {
      cl_error_make (err, 0, "container `%s` has no cgroup", id);
      goto out;
    }
  r = cl_ctr_cgroup_update (cg, resources, err);
out:
  cl_ctr_cgroup_free (cg);
  cl_ctr_state_release (&st);
  return r;
}

/* -------------------------------------------------------------------- */

json_t *
cl_ctr_default_spec (bool rootless)
{
  return cl_ctr_spec_default (rootless);
}

json_t *
cl_ctr_features (void)
{
  return cl_ctr_spec_features ();
}

int
cl_ctr_parse_signal (const char *s, int *signo, cl_error_t *err)
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
      *signo = (int)n;
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
