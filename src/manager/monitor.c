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
#include "manager/engine.h"
#include "manager/images.h"
#include "manager/internal.h"
#include "manager/monitor.h"
#include "manager/netglue.h"
#include "manager/vm.h"

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

/* Image env, then the instance's --env entries replacing same keys. */
static char **
merge_env (char **image_env, json_t *inst_env)
{
  size_t n = 0, i, cap;
  char **env;
  json_t *e;

  while (image_env && image_env[n])
    n++;
  cap = n + json_array_size (inst_env) + 2;
  env = cl_xmalloc0 (cap * sizeof *env);
  for (i = 0; i < n; i++)
    env[i] = strdup (image_env[i]);
  json_array_foreach (inst_env, i, e)
  {
    const char *kv = json_string_value (e), *eq = kv ? strchr (kv, '=') : NULL;
    size_t k;
    if (eq == NULL)
      continue;
    for (k = 0; k < n; k++)
      if (strncmp (env[k], kv, eq - kv + 1) == 0)
        break;
    free (env[k]);
    env[k] = strdup (kv);
    if (k == n)
      n++;
  }
  return env;
}

static char *
overlay_options (struct mgr_image *img, const char *dir)
{
  size_t n = 0, len = 0;
  char *lower, *p, *opts;

  while (img->layers[n])
    len += strlen (img->layers[n++]) + 1;
  lower = p = cl_xmalloc0 (len + 1);
  /* overlayfs lists the uppermost lower layer first */
  for (size_t i = n; i-- > 0;)
    p += sprintf (p, "%s%s", p == lower ? "" : ":", img->layers[i]);
  opts = cl_strdup_printf ("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower, dir, dir);
  free (lower);
  return opts;
}

static int
monitor_prepare (struct cl_manager *m, struct instance *inst, bool attached, struct monitor_args *a,
                 cl_error_t *err)
{
  cleanup_image struct mgr_image *img = NULL;
  json_t *cmd = json_object_get (inst->config, "command");
  json_int_t memory = json_integer_value (json_object_get (inst->config, "memory"));
  json_int_t cpus = json_integer_value (json_object_get (inst->config, "cpus"));

  if (image_resolve (m, instance_image_id (inst), &img, err) < 0)
    return -1;
  a->root = strdup (m->root);
  a->name = strdup (inst->name);
  a->id = instance_global_id (m, inst->name);
  a->dir = instance_dir (m, inst->name);
  a->attached = attached;
  a->vm = inst->kind == KIND_VM;
  if (a->vm)
    {
      if (vm_launch_prepare (m, inst, img, &a->vm_launch, err) < 0)
        return -1;
      a->vm_launch.attached = attached;
      return 0;
    }
  a->spec.root = engine_root (m);
  a->spec.bundle = a->dir;
  a->spec.id = a->id;
  a->spec.hostname = a->name;
  a->spec.rootfs = cl_strdup_printf ("%s/rootfs", a->dir);
  a->spec.argv = json_array_size (cmd) ? json_to_strv (cmd) : NULL;
  if (a->spec.argv == NULL)
    {
      size_t n = 0;
      while (img->cmd && img->cmd[n])
        n++;
      if (n == 0)
        return cl_error_make (err, 0, "image `%s` has no command: give one after `--`",
                              inst->image);
      a->spec.argv = cl_xmalloc0 ((n + 1) * sizeof (char *));
      for (size_t i = 0; i < n; i++)
        a->spec.argv[i] = strdup (img->cmd[i]);
    }
  a->spec.env = merge_env (img->env, json_object_get (inst->config, "env"));
  a->spec.cwd = img->cwd ? strdup (img->cwd) : NULL;
  a->spec.memory = (uint64_t)memory;
  a->spec.cpus = (unsigned)cpus;
  a->overlay_opts = overlay_options (img, a->dir);
  a->net_pause = netglue_wanted (inst);
  return 0;
}

/* Where cloison-monitor is: installed in libexecdir/cloison (see
   common/paths.h). */
static char *
monitor_program (cl_error_t *err)
{
  char *p = cl_piece_path (CL_PIECE_MONITOR);
  if (access (p, X_OK) == 0)
    return p;
  cl_error_errno (err, "cloison-monitor `%s`", p);
  free (p);
  return NULL;
}

/* In the (grandchild) monitor process of a container: exec
   cloison-monitor with its arguments on fd 3 and the ready pipe on fd 4. */
static void __attribute__ ((noreturn))
exec_container_monitor (const char *program, const char *args, int readyfd, int gofd)
{
  int p[2];
  size_t len = strlen (args);

  /* the arguments fit in the pipe's buffer (64 KiB), so no reader is
     needed before exec */
  if (len >= 65536 || pipe (p) < 0 || cl_write_all (p[1], args, len) < 0)
    goto fail;
  close (p[1]);
  /* move them out of the way of 3, 4, 5 first */
  int a = fcntl (p[0], F_DUPFD, 10), r = fcntl (readyfd, F_DUPFD, 10);
  int g = gofd >= 0 ? fcntl (gofd, F_DUPFD, 10) : -1;
  if (a < 0 || r < 0 || dup2 (a, 3) < 0 || dup2 (r, 4) < 0 || (g >= 0 && dup2 (g, 5) < 0))
    goto fail;
  cl_close_fds_from (g >= 0 ? 6 : 5);
  execl (program, "cloison-monitor", (char *)NULL);
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

int
monitor_spawn (struct cl_manager *m, struct instance *inst, bool attached, pid_t *monitor,
               cl_error_t *err)
{
  struct monitor_args a = { 0 };
  cleanup_free char *program = NULL, *args = NULL;
  int ready[2], go[2] = { -1, -1 }, st;
  char buf[1024];
  ssize_t got = 0;
  pid_t child;

  if (monitor_prepare (m, inst, attached, &a, err) < 0)
    return -1;
  if (!a.vm)
    {
      json_t *j = monitor_args_to_json (&a);
      program = monitor_program (err);
      if (program == NULL)
        return -1;
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
    db_tune (m->db);
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
      manager_locks_close (m);
      if (!attached)
        {
          /* detach: the monitor outlives this command */
          setsid ();
          child = fork ();
          if (child != 0)
            _exit (child < 0 ? 1 : 0);
        }
      if (a.vm)
        monitor_main (&a, ready[1], vm_monitor_start_fn);
      if (go[1] >= 0)
        close (go[1]);
      exec_container_monitor (program, args, ready[1], go[0]);
    }
  close (ready[1]);
  if (go[0] >= 0)
    close (go[0]);
  if (a.vm && a.vm_launch.vsock_fd >= 0)
    close (a.vm_launch.vsock_fd); /* the monitor hands it to the VMM */
  if (!attached)
    while (waitpid (child, &st, 0) < 0 && errno == EINTR)
      ;
  if (a.vm)
    got = vm_wait_ready (ready[0], buf, sizeof buf);
  else
    {
      got = read_message (ready[0], buf, sizeof buf);
      if (got > 0 && buf[0] == 'P')
        {
          /* created, not started: its networks come now */
          cl_error_t neterr = NULL;
          pid_t init = (pid_t)atoi (buf + 1);
          if (netglue_attach_container (m, inst, init, &neterr) == 0
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
