/* SPDX-License-Identifier: Apache-2.0 */
/* One monitor process per running instance, like podman's conmon: it is
   the parent (and subreaper) of the container's init, so that it reaps it
   and records its exit status in the state database after `cloison
   launch` has returned.

   The monitor lives in a mount namespace of its own where it mounts the
   instance's overlayfs root: the mount exists only as long as the
   monitor and the container do, so no kill -9 can leave it behind on the
   host.  Console output goes to INSTANCE/console.log, written by the
   container directly (no copying loop in the monitor); the container's
   stdin is a pipe that the monitor holds open, so an image whose command
   is a shell idles like `podman run -di`. */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/util.h"
#include "manager/mgr_engine.h"
#include "manager/mgr_images.h"
#include "manager/mgr_internal.h"
#include "manager/monitor.h"
#include "manager/netglue.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* The monitor's arguments: the instance's, then its kind's. */
static int
monitor_prepare (struct cl_manager *m, struct instance *inst, const struct start_opts *o,
                 struct monitor_args *a, cl_error_t *err)
{
  cleanup_image struct mgr_image *img = NULL;

  if (cl_mgr_image_resolve (m, cl_mgr_instance_image_id (inst), &img, err) < 0)
    return -1;
  a->root = cl_xstrdup (m->root);
  a->name = cl_xstrdup (inst->name);
  a->id = cl_mgr_instance_global_id (m, inst->name);
  a->dir = cl_mgr_instance_dir (m, inst->name);
  a->attached = o->attached;
  a->vm = inst->kind == KIND_VM;
  return cl_mgr_instance_ops (inst)->prepare (m, inst, img, o, a, err);
}

/* Where the monitor program of the kind is (cloison-monitor, or
   cloison-vmmon for VMs): installed in libexecdir/cloison (see
   common/paths.h). */
static char *
monitor_program (bool vm, cl_error_t *err)
{
  char *p = cl_piece_path (vm ? CL_PIECE_VMMON : CL_PIECE_MONITOR);
  if (access (p, X_OK) == 0)
    return p;
  cl_error_errno (err, "%s `%s`", vm ? "cloison-vmmon" : "cloison-monitor", p);
  free (p);
  return NULL;
}

/* A VM's vsock reservation in the monitor (after the arguments, the
   ready pipe and the go pipe: 3, 4, 5). */
#define MONITOR_VSOCK_FD 6

/* In the (grandchild) monitor process: exec the monitor program with
   its arguments on fd 3, the ready pipe on fd 4, a container's go pipe
   on fd 5, a VM's vsock reservation on fd 6 and a live migration's
   listening socket on fd 7, without CLOEXEC (dup2 clears it); every
   other descriptor is closed. */
static void __attribute__ ((noreturn))
exec_monitor (const char *program, const char *args, int readyfd, int gofd, int vsockfd,
              int incomingfd)
{
  int p[2];
  size_t len = strlen (args);

  /* the arguments fit in the pipe's buffer (64 KiB), so no reader is
     needed before exec */
  if (len >= 65536 || pipe (p) < 0 || cl_write_all (p[1], args, len) < 0)
    goto fail;
  close (p[1]);
  /* move them out of the way of 3 to 6 first */
  int a = fcntl (p[0], F_DUPFD, 10), r = fcntl (readyfd, F_DUPFD, 10);
  int g = gofd >= 0 ? fcntl (gofd, F_DUPFD, 10) : -1;
  int v = vsockfd >= 0 ? fcntl (vsockfd, F_DUPFD, 10) : -1;
  int in = incomingfd >= 0 ? fcntl (incomingfd, F_DUPFD, 10) : -1;
  if (a < 0 || r < 0 || (gofd >= 0 && g < 0) || (vsockfd >= 0 && v < 0)
      || (incomingfd >= 0 && in < 0) || dup2 (a, 3) < 0 || dup2 (r, 4) < 0
      || (g >= 0 && dup2 (g, 5) < 0) || (v >= 0 && dup2 (v, MONITOR_VSOCK_FD) < 0)
      || (in >= 0 && dup2 (in, MONITOR_INCOMING_FD) < 0))
    goto fail;
  cl_close_fds_from (in >= 0  ? MONITOR_INCOMING_FD + 1
                     : v >= 0 ? MONITOR_VSOCK_FD + 1
                     : g >= 0 ? 6
                              : 5);
  const char *base = strrchr (program, '/');
  execl (program, base ? base + 1 : program, (char *)NULL);
  readyfd = 4;
fail:
  dprintf (readyfd, "Estart the monitor `%s`: %s", program, strerror (errno));
  _exit (1);
}

/* One message of the monitor (it writes each at once and waits). */
static ssize_t
read_message (int fd, char *buf, size_t size)
{
  ssize_t n;
  do
    n = read (fd, buf, size - 1);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    n = 0;
  buf[n] = '\0';
  return n;
}

static void
args_clearp (struct monitor_args *a)
{
  cl_mgr_monitor_args_clear (a);
}

int
cl_mgr_monitor_spawn (struct cl_manager *m, struct instance *inst, const struct start_opts *o,
                      pid_t *monitor, cl_error_t *err)
{
  bool attached = o->attached;
  /* the parent's copy of the monitor's arguments, freed on every return
     (the child never returns: it execs the monitor) */
  __attribute__ ((cleanup (args_clearp))) struct monitor_args a = { 0 };
  cleanup_free char *program = NULL, *args = NULL;
  int ready[2], go[2] = { -1, -1 }, st;
  char buf[1024];
  ssize_t got = 0;
  pid_t child;

  if (monitor_prepare (m, inst, o, &a, err) < 0)
    return -1;
  program = monitor_program (a.vm, err);
  if (program == NULL)
    {
      if (a.vm && a.vm_launch.vsock_fd >= 0)
        close (a.vm_launch.vsock_fd);
      return -1;
    }
  {
    /* the monitor finds the vsock reservation at its own number */
    int vsock_fd = a.vm_launch.vsock_fd;
    if (a.vm && vsock_fd >= 0)
      a.vm_launch.vsock_fd = MONITOR_VSOCK_FD;
    json_t *j = cl_mgr_monitor_args_to_json (&a);
    a.vm_launch.vsock_fd = vsock_fd;
    args = json_dumps (j, JSON_COMPACT);
    json_decref (j);
  }
  if (pipe2 (ready, O_CLOEXEC) < 0)
    return cl_error_errno (err, "pipe");
  if (a.net_pause && pipe2 (go, O_CLOEXEC) < 0)
    {
      close (ready[0]);
      close (ready[1]);
      return cl_error_errno (err, "pipe");
    }
  fflush (NULL);
  /* SQLite's per-process lock bookkeeping must not cross fork(): the
     monitor opens its own connection, from a clean slate */
  cl_db_close (m->db);
  m->db = NULL;
  child = fork ();
  if (child != 0 && cl_db_open (m->root, &m->db, err) == 0)
    cl_mgr_db_tune (m->db);
  else if (child != 0)
    {
      if (child > 0)
        kill (child, SIGKILL);
      close (ready[0]);
      close (ready[1]);
      return -1;
    }
  if (child < 0)
    {
      close (ready[0]);
      close (ready[1]);
      return cl_error_errno (err, "fork the monitor");
    }
  if (child == 0)
    {
      close (ready[0]);
      /* the monitor outlives this command: our instance locks must not */
      cl_mgr_locks_close (m);
      if (!attached)
        {
          /* detach: the monitor outlives this command */
          setsid ();
          child = fork ();
          if (child != 0)
            _exit (child < 0 ? 1 : 0);
        }
      if (go[1] >= 0)
        close (go[1]);
      exec_monitor (program, args, ready[1], go[0], a.vm ? a.vm_launch.vsock_fd : -1,
                    a.vm ? a.vm_launch.incoming_fd : -1);
    }
  close (ready[1]);
  if (go[0] >= 0)
    close (go[0]);
  if (a.vm && a.vm_launch.vsock_fd >= 0)
    close (a.vm_launch.vsock_fd); /* the monitor hands it to the VMM */
  if (!attached)
    while (waitpid (child, &st, 0) < 0 && errno == EINTR)
      ;
  /* containers: "R<pid>", "E<message>", or "P<pid>" (created, waiting
     for its networks); VMs: 'R' from the VMM once its vCPUs run, "E..."
     from the VMM child when it failed, EOF when it ran and stopped
     already */
  got = read_message (ready[0], buf, sizeof buf);
  if (!a.vm && got > 0 && buf[0] == 'P')
    {
      /* created, not started: its networks come now */
      cl_error_t neterr = NULL;
      pid_t init = (pid_t)atoi (buf + 1);
      if (cl_mgr_netglue_attach_container (m, inst, init, &neterr) == 0
          && cl_write_all (go[1], "g", 1) == 0)
        got = read_message (ready[0], buf, sizeof buf);
      else
        {
          close (go[1]);
          go[1] = -1;
          read_message (ready[0], buf, sizeof buf);
          close (ready[0]);
          if (attached)
            waitpid (child, NULL, 0);
          if (neterr == NULL)
            return cl_error_errno (err, "start instance `%s`", inst->name);
          *err = neterr;
          return -1;
        }
    }
  if (go[1] >= 0)
    close (go[1]);
  close (ready[0]);
  buf[got] = '\0';
  if ((a.vm && (got == 0 || buf[0] != 'E')) || (got > 0 && buf[0] == 'R'))
    {
      if (monitor)
        *monitor = attached ? child : 0;
      return 0;
    }
  if (attached)
    waitpid (child, NULL, 0);
  if (got > 1 && buf[0] == 'E')
    return cl_error_make (err, 0, "%s", buf + 1);
  return cl_error_make (err, 0, "instance `%s`: the monitor exited before it started", inst->name);
}
