/* SPDX-License-Identifier: Apache-2.0 */
#include "container/ctr_init.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "container/cgroup.h"
#include "container/console.h"
#include "container/hooks.h"
#include "container/process.h"
#include "container/init_ctx.h"
#include "container/netdev.h"
#include "container/rootfs.h"
#include "container/spec.h"
#include "container/sync.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

char **
cl_ctr_cgroup_join_files (json_t *saved, int *v2_fd, char **v2_procs)
{
  json_t *dirs = json_object_get (saved, "dirs"), *d;
  char **files = cl_xmalloc0 ((json_array_size (dirs) + 1) * sizeof *files);
  size_t i, n = 0;

  *v2_fd = -1;
  *v2_procs = NULL;
  json_array_foreach (dirs, i, d)
  {
    const char *path = json_string_value (json_object_get (d, "path"));
    if (path == NULL)
      continue;
    if (json_is_true (json_object_get (d, "v2")))
      {
        *v2_fd = open (path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        *v2_procs = cl_strdup_printf ("%s/cgroup.procs", path);
      }
    else
      files[n++] = cl_strdup_printf ("%s/tasks", path);
  }
  return files;
}

int
cl_ctr_cgroup_join_self (char **files, cl_error_t *err)
{
  for (size_t i = 0; files && files[i]; i++)
    {
      int fd = open (files[i], O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write (fd, "0", 1) != 1)
        {
          cl_error_errno (err, "join cgroup `%s`", files[i]);
          if (fd >= 0)
            close (fd);
          return -1;
        }
      close (fd);
    }
  return 0;
}

static int
join_namespaces (struct init_ctx *c, bool user_pass, cl_error_t *err)
{
  json_t *ns = json_object_get (c->linux_obj, "namespaces"), *v;
  size_t i;

  json_array_foreach (ns, i, v)
  {
    const char *path = json_string_value (json_object_get (v, "path"));
    int flag = cl_ctr_spec_namespace_flag (json_string_value (json_object_get (v, "type")));
    int fd;
    if (path == NULL || (flag == CLONE_NEWUSER) != user_pass)
      continue;
    fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return cl_error_errno (err, "linux.namespaces[%zu].path `%s`", i, path);
    if (setns (fd, flag) < 0)
      {
        close (fd);
        return cl_error_errno (err, "linux.namespaces[%zu]: join `%s`", i, path);
      }
    close (fd);
  }
  return 0;
}

/* A pid namespace joined by path, or a new time namespace, only applies
   to children: fork the real init as a sibling (CLONE_PARENT) so that the
   runtime can still wait for it, and report its pid. */
static int
fork_real_init (struct init_ctx *c, cl_error_t *err)
{
  pid_t pid = (pid_t)syscall (SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
  if (pid < 0)
    return cl_error_errno (err, "fork the container init");
  if (pid == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      return 0;
    }
  cl_ctr_sync_send (c->a->sync_fd, SYNC_PID, pid, NULL);
  _exit (0);
}

bool
cl_ctr_init_forks_real_init (json_t *linux_obj)
{
  json_t *ns = json_object_get (linux_obj, "namespaces"), *v;
  size_t i;
  json_array_foreach (ns, i, v)
  {
    const char *type = json_string_value (json_object_get (v, "type"));
    if (strcmp (type, "time") == 0 || (strcmp (type, "pid") == 0 && json_object_get (v, "path")))
      return true;
  }
  return false;
}

/* A user namespace needs its maps first; an extra fork must happen after
   the time namespace exists. */
static bool
needs_go_early (struct init_ctx *c)
{
  json_t *ns = json_object_get (c->linux_obj, "namespaces"), *v;
  size_t i;
  if (c->a->ns_new & CLONE_NEWUSER || cl_ctr_init_forks_real_init (c->linux_obj))
    return true;
  json_array_foreach (ns, i, v)
  {
    if (strcmp (json_string_value (json_object_get (v, "type")), "user") == 0)
      return true;
  }
  return false;
}

static int
init_setup (struct init_ctx *c, char **exe, struct process_setup *ps, cl_error_t *err)
{
  struct init_args *a = c->a;
  json_t *process = json_object_get (a->config, "process");
  const char *hostname = json_string_value (json_object_get (a->config, "hostname"));
  const char *domainname = json_string_value (json_object_get (a->config, "domainname"));
  int keep[6] = { a->sync_fd, a->fifo_fd, -1, -1, -1 };

  if (a->stdio)
    for (int i = 0; i < 3; i++)
      keep[2 + i] = a->stdio[i];
  cl_ctr_process_close_fds (a->preserve_fds, keep, 5);
  if (cl_ctr_cgroup_join_self (a->cgroup_join, err) < 0)
    return -1;
  /* The runtime moves us into the cgroup meanwhile (a cgroup v1
     migration may wait for an RCU grace period): build the root in
     parallel, and wait for it only where it matters. */
  if (needs_go_early (c) && cl_ctr_init_wait_go (c, err) < 0)
    return -1;
  if (join_namespaces (c, true, err) < 0)
    return -1;
  if (a->ns_new & CLONE_NEWUSER)
    {
      if (setresgid (0, 0, 0) < 0 || setresuid (0, 0, 0) < 0)
        return cl_error_errno (err, "linux.uidMappings: become root in the user namespace");
    }
  if (join_namespaces (c, false, err) < 0)
    return -1;
  if (cl_ctr_init_forks_real_init (c->linux_obj) && fork_real_init (c, err) < 0)
    return -1;
  if (a->ns_new & CLONE_NEWNET)
    {
      int r = cl_ctr_netdev_loopback_up ();
      if (r < 0)
        return cl_error_make (err, -r, "linux.namespaces: network: bring up `lo`");
    }
  if (hostname && sethostname (hostname, strlen (hostname)) < 0)
    return cl_error_errno (err, "hostname: sethostname `%s`", hostname);
  if (domainname && setdomainname (domainname, strlen (domainname)) < 0)
    return cl_error_errno (err, "domainname: setdomainname `%s`", domainname);
  if (cl_ctr_rootfs_open_host_devnull (c, err) < 0 || cl_ctr_rootfs_setup (c, err) < 0)
    return -1;

  {
    const char *domain = json_string_value (
        json_object_get (json_object_get (c->linux_obj, "personality"), "domain"));
    if (domain && personality (strcmp (domain, "LINUX32") == 0 ? PER_LINUX32 : PER_LINUX) < 0)
      return cl_error_errno (err, "linux.personality: %s", domain);
  }
  {
    /* linux.memoryPolicy (checked by cl_ctr_spec_validate): the init's, which
       its children inherit. */
    struct spec_mempolicy mp;
    if (cl_ctr_spec_memory_policy (c->linux_obj, &mp, err) < 0)
      return -1;
    if (mp.present
        && syscall (SYS_set_mempolicy, mp.mode, mp.nodes ? &mp.nodes : NULL, mp.nodes ? 65UL : 0UL)
               < 0)
      return cl_error_errno (err, "linux.memoryPolicy: set_mempolicy");
  }
  ps->process = process;
  ps->seccomp = json_object_get (c->linux_obj, "seccomp");
  ps->seccomp_prog = a->seccomp;
  ps->id = a->id;
  ps->no_new_keyring = a->no_new_keyring;
  ps->console_slave = c->console_slave;
  ps->stdio = a->stdio;
  ps->sync_fd = a->sync_fd;
  ps->state = json_pack ("{s:s, s:s, s:s, s:i, s:s}", "ociVersion", OCI_SPEC_VERSION, "id", a->id,
                         "status", "creating", "pid", (int)getpid (), "bundle", a->bundle);
  close (c->rootfd);
  close (c->devnull);
  if (cl_ctr_init_wait_go (c, err) < 0)
    return -1;
  return cl_ctr_process_prepare (ps, exe, err);
}

void
cl_ctr_init_run (struct init_args *a)
{
  struct init_ctx c = { .a = a, .rootfd = -1, .devnull = -1, .console_slave = -1 };
  struct process_setup ps = { 0 };
  cl_error_t err = NULL;
  cleanup_free char *exe = NULL;
  struct sync_msg msg;

  /* Until `create` returns, the init dies with the runtime; and no
     process of the container may open our /proc/PID/exe meanwhile. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  /* An unprivileged runtime must still write our uid/gid maps (it owns
     our /proc files only while we are dumpable): later then. */
  if (!(a->ns_new & CLONE_NEWUSER))
    prctl (PR_SET_DUMPABLE, 0);
  c.linux_obj = json_object_get (a->config, "linux");
  if (init_setup (&c, &exe, &ps, &err) < 0)
    cl_ctr_sync_fail (a->sync_fd, &err);

  prctl (PR_SET_PDEATHSIG, 0);
  if (cl_ctr_sync_send (a->sync_fd, SYNC_READY, 0, NULL) < 0)
    _exit (1);
  if (a->fifo_fd >= 0)
    {
      char path[64];
      int fd;
      snprintf (path, sizeof path, "/proc/self/fd/%d", a->fifo_fd);
      /* Blocks until `start` opens the fifo for reading. */
      fd = open (path, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write (fd, "0", 1) != 1)
        {
          dprintf (2, "container init: wait for start: %s\n", strerror (errno));
          _exit (1);
        }
      close (fd);
      close (a->sync_fd);
    }
  else if (cl_ctr_sync_recv (a->sync_fd, SYNC_START, &msg, &err) < 0)
    _exit (1);

  if (json_object_get (json_object_get (a->config, "hooks"), "startContainer"))
    {
      json_t *st
          = json_pack ("{s:s, s:s, s:s, s:i, s:s}", "ociVersion", OCI_SPEC_VERSION, "id", a->id,
                       "status", "created", "pid", (int)getpid (), "bundle", a->bundle);
      /* In the process's cwd, with its environment (HOME included). */
      if (cl_ctr_hooks_run (json_object_get (a->config, "hooks"), "startContainer", st,
                            json_object_get (ps.process, "env"), NULL, &err)
          < 0)
        {
          dprintf (2, "%s\n", err->msg);
          _exit (1);
        }
      json_decref (st);
    }
  cl_ctr_process_exec (&ps, exe, &err);
  dprintf (2, "%s\n", err->msg);
  _exit (127);
}
