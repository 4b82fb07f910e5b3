/* SPDX-License-Identifier: Apache-2.0 */
/* The engine's commands: exec, joining a running container. */
#include "container/container.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "container/cgroup_internal.h"
#include "container/console.h"
#include "container/ctr_engine.h"
#include "container/ctr_init.h"
#include "container/process.h"
#include "container/seccomp.h"
#include "container/spec.h"
#include "container/ctr_state.h"
#include "container/sync.h"
#include "container/vm_isolation.h"

#include <errno.h>
#include <fcntl.h>
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
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

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
  if (cl_ctr_spec_validate_process (p, "process", err) < 0)
    {
      if (opts->process_file)
        cl_error_wrap (err, "`%s`", opts->process_file);
      json_decref (p);
      return -1;
    }
  *out = p;
  return 0;
}

/* The controllers a saved cgroup directory's hierarchy holds, comma
   separated: a v1 directory lists them in the state; a v2 hierarchy holds
   what its root's cgroup.controllers lists (all of them on a v2 host, the
   few left to it on a hybrid one). */
static char *
exec_hierarchy_controllers (json_t *d)
{
  const char *mount = json_string_value (json_object_get (d, "mount"));
  const char *listed = json_string_value (json_object_get (d, "controllers"));
  cleanup_free char *path = NULL;
  char *list = NULL;
  cl_error_t e = NULL;

  if (!json_is_true (json_object_get (d, "v2")) || mount == NULL)
    return cl_xstrdup (listed ? listed : "");
  path = cl_strdup_printf ("%s/cgroup.controllers", mount);
  if (cl_read_file (path, &list, NULL, &e) < 0)
    {
      cl_error_release (&e);
      return cl_xstrdup ("");
    }
  for (char *c = list; *c; c++)
    if (*c == ' ' || *c == '\n')
      *c = ',';
  return list;
}

/* Checks the --cgroup entries against runc's rules (one bare SUB, or
   CTRL[,CTRL]:SUB entries naming each controller once) and against the
   controllers the container's hierarchies hold (`all`, comma separated):
   a controller no hierarchy holds is refused, as runc does. */
static int
exec_check_cgroup_specs (const char *const *specs, const char *all, cl_error_t *err)
{
  size_t n = 0;
  for (const char *const *s = specs; s && *s; s++)
    n++;
  for (const char *const *s = specs; s && *s; s++)
    {
      const char *colon = strchr (*s, ':');
      if (colon == NULL)
        {
          if (n != 1)
            return cl_error_make (err, 0, "--cgroup `%s`: missing the CONTROLLER: prefix", *s);
          continue;
        }
      cleanup_free char *ctrls = strndup (*s, (size_t)(colon - *s));
      if (strchr (colon + 1, ':'))
        return cl_error_make (err, 0, "--cgroup `%s`: expected [CONTROLLER[,CONTROLLER]:]PATH", *s);
      if (*ctrls == '\0' || strstr (ctrls, ",,") || *ctrls == ','
          || ctrls[strlen (ctrls) - 1] == ',')
        return cl_error_make (err, 0, "--cgroup `%s`: empty controller name", *s);
      for (char *c = ctrls, *save = NULL, *t; (t = strtok_r (c, ",", &save)); c = NULL)
        {
          if (!cl_ctr_list_has (all, t, ','))
            return cl_error_make (err, 0,
                                  "--cgroup `%s`: no cgroup hierarchy of the container holds "
                                  "controller `%s`",
                                  *s, t);
          for (const char *const *o = s + 1; *o; o++)
            {
              const char *oc = strchr (*o, ':');
              cleanup_free char *others = oc ? strndup (*o, (size_t)(oc - *o)) : NULL;
              if (others && cl_ctr_list_has (others, t, ','))
                return cl_error_make (err, 0, "--cgroup: controller `%s` given twice", t);
            }
        }
    }
  return 0;
}

/* Which sub-cgroup the (checked) --cgroup entries ask for in the hierarchy
   holding `controllers`: the bare SUB, or the SUB of a CTRL:SUB entry
   naming one of them.  One cgroup v2 hierarchy holds every controller, so
   there `memory:SUB` means SUB for the process as a whole; two different
   SUBs for one hierarchy cannot both be joined and are refused. */
static int
exec_sub_cgroup (const char *const *specs, const char *controllers, const char **sub,
                 const char **by, cl_error_t *err)
{
  *sub = *by = NULL;
  for (const char *const *s = specs; s && *s; s++)
    {
      const char *colon = strchr (*s, ':'), *want = NULL;
      if (colon == NULL)
        want = *s;
      else
        {
          cleanup_free char *ctrls = strndup (*s, (size_t)(colon - *s));
          for (char *c = ctrls, *save = NULL, *t; (t = strtok_r (c, ",", &save)); c = NULL)
            if (cl_ctr_list_has (controllers, t, ','))
              want = colon + 1;
        }
      if (want == NULL)
        continue;
      if (*sub && strcmp (*sub, want) != 0)
        return cl_error_make (err, 0,
                              "--cgroup `%s` and `%s`: one cgroup hierarchy (%s) cannot hold the "
                              "process in two sub-cgroups",
                              *by, *s, controllers);
      *sub = want;
      *by = *s;
    }
  return 0;
}

/* The cgroup directories the exec'd process joins: the container's, or
   existing sub-cgroups of them with --cgroup. */
static int
exec_cgroup (json_t *saved, const char *const *specs, json_t **out, cl_error_t *err)
{
  cleanup_json json_t *copy = json_deep_copy (saved);
  json_t *dirs = json_object_get (copy, "dirs"), *d;
  size_t i, n = json_array_size (dirs);
  cleanup_free char *all = cl_xstrdup ("");
  char **held = calloc (n + 1, sizeof *held);
  int r = -1;

  if (held == NULL)
    return cl_error_make (err, ENOMEM, "out of memory");
  json_array_foreach (dirs, i, d)
  {
    char *both;
    held[i] = exec_hierarchy_controllers (d);
    both = cl_strdup_printf ("%s,%s", all, held[i]);
    free (all);
    all = both;
  }
  if (specs && exec_check_cgroup_specs (specs, all, err) < 0)
    goto out;
  json_array_foreach (dirs, i, d)
  {
    const char *path = json_string_value (json_object_get (d, "path")), *sub = NULL, *by;
    struct stat sb;
    if (path == NULL || exec_sub_cgroup (specs, held[i], &sub, &by, err) < 0)
      goto out;
    if (sub == NULL)
      continue;
    cleanup_free char *full = cl_strdup_printf ("%s/%s", path, sub);
    if (strstr (sub, "..") || stat (full, &sb) < 0 || !S_ISDIR (sb.st_mode))
      {
        cl_error_make (err, 0, "--cgroup: `%s` is not an existing sub-cgroup of the container's",
                       full);
        goto out;
      }
    json_object_set_new (d, "path", json_string (full));
  }
  *out = steal_pointer (&copy);
  r = 0;
out:
  for (i = 0; i < n; i++)
    free (held[i]);
  free (held);
  return r;
}

static const int join_order[] = { CLONE_NEWUSER, CLONE_NEWIPC,    CLONE_NEWUTS,  CLONE_NEWNET,
                                  CLONE_NEWPID,  CLONE_NEWCGROUP, CLONE_NEWTIME, CLONE_NEWNS };

__attribute__ ((noreturn)) static void
exec_child (struct container_state *st, json_t *process, const struct cl_container_exec_opts *opts,
            const struct cl_seccomp_program *seccomp, char **cgroup_join, int sync_fd)
{
  cl_error_t err = NULL;
  int fds[8], n = 0, keep[5] = { sync_fd, -1, -1, -1, -1 };
  struct sync_msg msg;
  struct process_setup ps = { .process = process,
                              .seccomp = json_object_get (st->doc, "seccomp"),
                              .seccomp_prog = seccomp,
                              .id = NULL,
                              .no_new_keyring = true,
                              .console_slave = -1,
                              .stdio = opts->stdio,
                              .sync_fd = sync_fd };
  cleanup_free char *exe = NULL;
  struct stat self, other;
  pid_t pid;

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  prctl (PR_SET_DUMPABLE, 0);
  if (opts->stdio)
    for (int i = 0; i < 3; i++)
      keep[1 + i] = opts->stdio[i];
  cl_ctr_process_close_fds (opts->preserve_fds, keep, 4);
  if (cl_ctr_sync_recv (sync_fd, SYNC_GO, &msg, &err) < 0)
    _exit (1);
  if (cl_ctr_cgroup_join_self (cgroup_join, &err) < 0)
    cl_ctr_sync_fail (sync_fd, &err);
  /* Open every namespace first: after joining the mount namespace the
     host's /proc is gone. */
  for (size_t i = 0; i < sizeof join_order / sizeof join_order[0]; i++)
    {
      const char *name = cl_ctr_spec_namespace_proc_name (join_order[i]);
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
          cl_ctr_sync_fail (sync_fd, &err);
        }
      n++;
    }
  for (size_t i = 0; i < sizeof join_order / sizeof join_order[0]; i++)
    if (fds[i] >= 0)
      {
        if (setns (fds[i], join_order[i]) < 0)
          {
            cl_error_errno (&err, "join the container's %s namespace",
                            cl_ctr_spec_namespace_proc_name (join_order[i]));
            cl_ctr_sync_fail (sync_fd, &err);
          }
        close (fds[i]);
      }
  if (fds[4] >= 0 || fds[6] >= 0) /* pid, time */
    {
      /* pid and time namespaces apply to children.  The child speaks on
         the sync socket only after our SYNC_PID is in (our exit closes
         `order`): else SYNC_PID could land between its SYNC_CONSOLE and
         the terminal's fd. */
      int order[2];
      char c;
      if (pipe2 (order, O_CLOEXEC) < 0)
        {
          cl_error_errno (&err, "pipe");
          cl_ctr_sync_fail (sync_fd, &err);
        }
      pid = (pid_t)syscall (SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
      if (pid < 0)
        {
          cl_error_errno (&err, "fork into the container");
          cl_ctr_sync_fail (sync_fd, &err);
        }
      if (pid > 0)
        {
          cl_ctr_sync_send (sync_fd, SYNC_PID, pid, NULL);
          _exit (0);
        }
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      close (order[1]);
      while (read (order[0], &c, 1) < 0 && errno == EINTR)
        ;
      close (order[0]);
    }
  else
    cl_ctr_sync_send (sync_fd, SYNC_PID, 0, NULL); /* no fork: the runtime's child is the process */
  if (json_is_true (json_object_get (process, "terminal")))
    {
      int master;
      if (cl_ctr_console_open_pty ("/dev/pts/ptmx", json_object_get (process, "consoleSize"),
                                   &master, &ps.console_slave, &err)
          < 0)
        cl_ctr_sync_fail (sync_fd, &err);
      if (cl_ctr_sync_send (sync_fd, SYNC_CONSOLE, 0, NULL) < 0
          || cl_ctr_console_send_fd (sync_fd, master, "console") < 0)
        {
          cl_error_errno (&err, "send the terminal");
          cl_ctr_sync_fail (sync_fd, &err);
        }
      close (master);
    }
  if (cl_ctr_process_prepare (&ps, &exe, &err) < 0)
    cl_ctr_sync_fail (sync_fd, &err);
  prctl (PR_SET_PDEATHSIG, 0);
  cl_ctr_sync_send (sync_fd, SYNC_READY, 0, NULL);
  cl_ctr_process_exec (&ps, exe, &err);
  cl_ctr_sync_fail (sync_fd, &err);
}

int
cl_ctr_exec (const char *root, const char *id, const struct cl_container_exec_opts *opts,
             int *exit_status, cl_error_t *err)
{
  struct container_state st;
  cleanup_json json_t *process = NULL, *cgroup = NULL;
  const char *status;
  int sv[2] = { -1, -1 }, master = -1, r = -1;
  cleanup_close int v2_fd = -1;
  cleanup_free char *v2_procs = NULL;
  char **join = NULL;
  bool placed = false;
  pid_t helper = -1, pid = -1;
  struct cl_seccomp_program *seccomp = NULL;
  struct sync_msg msg;

  *exit_status = 0;
  if (cl_ctr_state_load (root, id, &st, err) < 0)
    return -1;
  status = cl_ctr_state_status (&st);
  if (strcmp (status, "running") != 0 && strcmp (status, "created") != 0)
    {
      cl_error_make (err, 0, "container `%s` is %s: cannot exec in it", id, status);
      goto out;
    }
  if (exec_process (&st, opts, &process, err) < 0)
    goto out;
  if (json_is_true (json_object_get (process, "terminal")) && opts->console_socket == NULL
      && opts->detach)
    {
      cl_error_make (err, 0,
                     "process.terminal is true: --console-socket is required with --detach");
      goto out;
    }
  if (json_object_get (st.doc, "vm"))
    {
      /* a VM-isolated container: the process runs in its VM, relayed by
         a shim of its own (vm_isolation.h) */
      if (cl_ctr_vm_exec (&st, process, opts, &pid, err) < 0)
        goto out;
      if (opts->started)
        opts->started (opts->started_opaque);
      if (!opts->detach)
        {
          cl_ctr_engine_set_forwarding (pid, -1, true);
          *exit_status = cl_ctr_engine_wait_exit_status (pid);
          cl_ctr_engine_set_forwarding (0, -1, false);
        }
      r = 0;
      goto out;
    }
  if (cl_ctr_engine_compile_seccomp (root, json_object_get (st.doc, "seccomp"), &seccomp, err) < 0)
    goto out;
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    {
      cl_error_errno (err, "socketpair");
      goto out;
    }
  if (exec_cgroup (json_object_get (st.doc, "cgroup"), opts->cgroups, &cgroup, err) < 0)
    goto out;
  join = cl_ctr_cgroup_join_files (cgroup, &v2_fd, &v2_procs);
  helper = cl_ctr_engine_clone (0, v2_fd, &placed);
  if (!placed && v2_procs)
    join = cl_ctr_engine_strv_append (join, steal_pointer (&v2_procs));
  if (helper < 0)
    {
      cl_error_errno (err, "fork");
      goto out;
    }
  if (helper == 0)
    {
      close (sv[0]);
      exec_child (&st, process, opts, seccomp, join, sv[1]);
    }
  close (sv[1]);
  sv[1] = -1;
  pid = helper;
  cl_ctr_sync_send (sv[0], SYNC_GO, 0, NULL);
  /* The helper always says whether it forked (SYNC_PID, 0: no); the
     process's READY may come first. */
  for (bool ready = false, pid_known = false; !ready || !pid_known;)
    {
      if (cl_ctr_sync_recv (sv[0], 0, &msg, err) < 0)
        goto fail;
      if (msg.type == SYNC_READY)
        ready = true;
      else if (msg.type == SYNC_PID)
        {
          if (msg.value > 0)
            {
              waitpid (helper, NULL, 0);
              pid = msg.value;
            }
          pid_known = true;
        }
      else if (msg.type == SYNC_SECCOMP)
        {
          json_t *s = cl_ctr_state_public (&st);
          int rr = cl_ctr_engine_forward_seccomp_listener (
              sv[0], json_object_get (st.doc, "seccomp"), s, err);
          json_decref (s);
          if (rr < 0)
            goto fail;
        }
      else if (msg.type == SYNC_CONSOLE)
        {
          master = cl_ctr_console_recv_fd (sv[0]);
          if (master < 0)
            {
              cl_error_errno (err, "receive the terminal");
              goto fail;
            }
          if (opts->console_socket)
            {
              int rr = cl_ctr_console_send_to_socket (opts->console_socket, master, err);
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
        ((char *)&msg)[n] = '\0';
        cl_error_make (err, 0, "%s", msg.text);
        goto fail;
      }
  }
  if (cl_ctr_engine_write_pid_file (opts->pid_file, pid, err) < 0)
    goto fail;
  if (opts->started)
    opts->started (opts->started_opaque);
  if (!opts->detach)
    {
      cl_ctr_engine_set_forwarding (pid, master, true);
      if (master >= 0)
        cl_ctr_console_proxy (master);
      *exit_status = cl_ctr_engine_wait_exit_status (pid);
      cl_ctr_engine_set_forwarding (0, -1, false);
    }
  r = 0;
  goto out;
fail:
  cl_ctr_engine_kill_and_reap (pid);
  if (helper != pid)
    waitpid (helper, NULL, WNOHANG);
out:
  if (master >= 0)
    close (master);
  if (sv[0] >= 0)
    close (sv[0]);
  if (sv[1] >= 0)
    close (sv[1]);
  cl_strv_free (join);
  cl_ctr_seccomp_program_free (seccomp);
  cl_ctr_state_release (&st);
  return r;
}
