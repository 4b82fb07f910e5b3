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
#include "common/util.h"
#include "manager/engine.h"
#include "manager/images.h"
#include "manager/internal.h"
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

/* Without an API socket to tell that a VM runs, a VMM that has not
   failed within this time is taken as running. */
#define VM_READY_WAIT_MS 300

struct monitor_args
{
  char *root;
  char *name;
  char *id;
  char *dir;
  bool attached;
  bool vm;
  struct engine_spec spec;
  char *overlay_opts;
  struct vm_launch vm_launch;
};

static char **
strv_from_json (json_t *arr)
{
  size_t n = json_array_size (arr), i;
  char **v = cl_xmalloc0 ((n + 1) * sizeof *v);
  json_t *e;

  json_array_foreach (arr, i, e)
    v[i] = strdup (json_string_value (e) ? json_string_value (e) : "");
  return v;
}

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
  for (i = 0; i < n; i++)
    if (strncmp (env[i], "HOSTNAME=", 9) == 0)
      break;
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
monitor_prepare (struct cl_manager *m, struct instance *inst, bool attached,
                 struct monitor_args *a, cl_error_t *err)
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
  a->spec.argv = json_array_size (cmd) ? strv_from_json (cmd) : NULL;
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
  a->spec.memory = (uint64_t) memory;
  a->spec.cpus = (unsigned) cpus;
  a->overlay_opts = overlay_options (img, a->dir);
  return 0;
}

static void
report (int fd, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void
report (int fd, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  int n;

  va_start (ap, fmt);
  n = vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  if (n > 0 && cl_write_all (fd, buf, (size_t) n < sizeof buf ? (size_t) n : sizeof buf - 1) < 0)
    return;
}

static void
record_exit (const char *root, const char *name, bool has_code, int code)
{
  struct cl_manager *m;
  cl_error_t err = NULL;

  if (manager_open_raw (root, &m, &err) < 0 || store_set_stopped (m, name, has_code, code, &err) < 0)
    cl_error_release (&err);
  cl_manager_close (m);
}

static int
record_running (const char *root, const char *name, pid_t init, cl_error_t *err)
{
  struct cl_manager *m;
  int r;

  if (manager_open_raw (root, &m, err) < 0)
    return -1;
  r = store_set_running (m, name, getpid (), proc_start_time (getpid ()), init,
                         proc_start_time (init), err);
  cl_manager_close (m);
  return r;
}

/* The container half of the monitor.  Returns the init's pid or -1. */
static pid_t
monitor_start_container (struct monitor_args *a, int *stdin_keep, cl_error_t *err)
{
  cleanup_free char *log = cl_strdup_printf ("%s/console.log", a->dir);
  cleanup_close int logfd = -1;
  int inpipe[2] = { -1, -1 };
  pid_t init;

  if (unshare (CLONE_NEWNS) < 0)
    return cl_error_errno (err, "unshare the mount namespace");
  if (mount (NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    return cl_error_errno (err, "make mounts slave");
  if (mount ("overlay", a->spec.rootfs, "overlay", 0, a->overlay_opts) < 0)
    return cl_error_errno (err, "mount overlayfs on `%s`", a->spec.rootfs);
  if (!a->attached)
    {
      logfd = open (log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
      if (logfd < 0)
        return cl_error_errno (err, "open `%s`", log);
      if (pipe2 (inpipe, O_CLOEXEC) < 0)
        return cl_error_errno (err, "pipe");
      a->spec.stdio[0] = inpipe[0];
      a->spec.stdio[1] = a->spec.stdio[2] = logfd;
    }
  else
    for (int i = 0; i < 3; i++)
      a->spec.stdio[i] = i;
  if (engine_start (&a->spec, &init, err) < 0)
    return -1;
  if (inpipe[0] >= 0)
    close (inpipe[0]);
  *stdin_keep = inpipe[1];
  return init;
}

static void __attribute__ ((noreturn))
monitor_main (struct monitor_args *a, int readyfd)
{
  cl_error_t err = NULL;
  int stdin_keep = -1, st, code;
  pid_t init, p;

  prctl (PR_SET_NAME, a->vm ? "cloison-vmmon" : "cloison-mon");
  prctl (PR_SET_CHILD_SUBREAPER, 1);
  signal (SIGHUP, SIG_IGN);
  signal (SIGPIPE, SIG_IGN);
  if (!a->attached)
    {
      int null = open ("/dev/null", O_RDWR);
      signal (SIGINT, SIG_IGN);
      if (null >= 0)
        {
          dup2 (null, 0);
          dup2 (null, 1);
          dup2 (null, 2);
          if (null > 2)
            close (null);
        }
    }
  if (a->vm)
    a->vm_launch.readyfd = readyfd;
  init = a->vm ? vm_monitor_start (&a->vm_launch, &err)
               : monitor_start_container (a, &stdin_keep, &err);
  if (init < 0 || record_running (a->root, a->name, init, &err) < 0)
    {
      if (init > 0)
        {
          kill (init, SIGKILL);
          waitpid (init, NULL, 0);
          cl_error_t ignored = NULL;
          if (!a->vm && engine_destroy (a->spec.root, a->id, &ignored) < 0)
            cl_error_release (&ignored);
        }
      report (readyfd, "E%s", err ? err->msg : "unknown error");
      _exit (1);
    }
  /* a VMM child reports its own failure on readyfd, or closes it by
     exiting */
  if (!a->vm)
    report (readyfd, "R%d", (int) init);
  close (readyfd);
  malloc_trim (0);

  for (;;)
    {
      p = waitpid (-1, &st, 0);
      if (p < 0 && errno == EINTR)
        continue;
      if (p < 0)
        {
          st = -1;
          break;
        }
      if (p == init)
        break;
    }
  code = st < 0 ? -1 : proc_exit_code (st);
  if (a->vm)
    vm_monitor_stopped (&a->vm_launch);
  else if (engine_destroy (a->spec.root, a->id, &err) < 0)
    cl_error_release (&err);
  if (stdin_keep >= 0)
    close (stdin_keep);
  record_exit (a->root, a->name, code >= 0, code);
  _exit (0);
}

int
monitor_spawn (struct cl_manager *m, struct instance *inst, bool attached, pid_t *monitor,
               cl_error_t *err)
{
  struct monitor_args a = { 0 };
  int ready[2], st;
  char buf[1024];
  ssize_t n, got = 0;
  pid_t child;

  if (monitor_prepare (m, inst, attached, &a, err) < 0)
    return -1;
  if (pipe2 (ready, O_CLOEXEC) < 0)
    return cl_error_errno (err, "pipe");
  fflush (NULL);
  /* SQLite's per-process lock bookkeeping must not cross fork(): the
     monitor opens its own connection, from a clean slate */
  cl_db_close (m->db);
  m->db = NULL;
  child = fork ();
  if (child != 0 && cl_db_open (m->root, &m->db, err) < 0)
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
      if (!attached)
        {
          /* detach: the monitor outlives this command */
          setsid ();
          child = fork ();
          if (child != 0)
            _exit (child < 0 ? 1 : 0);
        }
      monitor_main (&a, ready[1]);
    }
  close (ready[1]);
  if (!attached)
    while (waitpid (child, &st, 0) < 0 && errno == EINTR)
      ;
  if (a.vm)
    got = vm_wait_ready (ready[0], a.vm_launch.api_socket, buf, sizeof buf, VM_READY_WAIT_MS);
  else
    while ((n = read (ready[0], buf + got, sizeof buf - 1 - got)) != 0)
      {
        if (n < 0 && errno == EINTR)
          continue;
        if (n < 0)
          break;
        got += n;
        if ((size_t) got >= sizeof buf - 1)
          break;
      }
  close (ready[0]);
  buf[got] = '\0';
  if (a.vm && (got == 0 || buf[0] != 'E'))
    {
      if (monitor)
        *monitor = attached ? child : 0;
      return 0;
    }
  if (got > 0 && buf[0] == 'R')
    {
      if (monitor)
        *monitor = attached ? child : 0;
      return 0;
    }
  if (attached)
    waitpid (child, NULL, 0);
  if (got > 1 && buf[0] == 'E')
    return cl_error_make (err, 0, "%s", buf + 1);
  return cl_error_make (err, 0, "instance `%s`: the monitor exited before it started",
                        inst->name);
}
