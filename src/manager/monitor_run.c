/* SPDX-License-Identifier: Apache-2.0 */
/* The monitor's own life: it starts the workload, records it running,
   reaps it (and, as subreaper, any orphan of it), records its exit
   status, and cleans up.  Shared by cloison-monitor (containers) and
   cloison-vmmon (VMs). */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "manager/mgr_engine.h"
#include "manager/mgr_internal.h"
#include "manager/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void report (int fd, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void
report (int fd, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  int n;

  va_start (ap, fmt);
  n = vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  if (n > 0 && cl_write_all (fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1) < 0)
    return;
}

static void
record_exit (const char *root, const char *name, bool has_code, int code)
{
  struct cl_manager *m;
  cl_error_t err = NULL;

  if (cl_mgr_open_raw (root, &m, &err) < 0
      || cl_mgr_store_set_stopped (m, name, has_code, code, &err) < 0)
    cl_error_release (&err);
  cl_mgr_close (m);
}

static int
record_running (const char *root, const char *name, pid_t init, cl_error_t *err)
{
  struct cl_manager *m;
  int r;

  if (cl_mgr_open_raw (root, &m, err) < 0)
    return -1;
  r = cl_mgr_store_set_running (m, name, getpid (), cl_proc_start_time (getpid ()), init,
                                cl_proc_start_time (init), err);
  cl_mgr_close (m);
  return r;
}

static int
pause_for_network (void *opaque, pid_t pid, cl_error_t *err)
{
  struct monitor_args *a = opaque;
  char go = 0;

  report (a->readyfd, "P%d", (int)pid);
  if (read (a->gofd, &go, 1) != 1 || go != 'g')
    return cl_error_make (err, 0, "instance `%s`: launch abandoned before its networks were up",
                          a->name);
  return 0;
}

/* The network namespace a checkpoint of a container with networks is
   restored into (its own was not dumped): a child of ours holds a new one
   while the manager attaches the networks to it (the same protocol as a
   start's, "P<pid>" then 'g'), until CRIU has put the processes in it.
   The holder's pid (to kill and reap) or -1. */
static pid_t
netns_for_restore (struct monitor_args *a, cl_error_t *err)
{
  int ready[2];
  char c;
  pid_t holder;

  if (pipe2 (ready, O_CLOEXEC) < 0)
    return cl_error_errno (err, "pipe");
  holder = fork ();
  if (holder == 0)
    {
      close (ready[0]);
      close (a->readyfd); /* the manager sees EOF when the monitor dies */
      close (a->gofd);
      if (unshare (CLONE_NEWNET) < 0)
        _exit (1);
      (void)!write (ready[1], "n", 1);
      for (;;)
        pause ();
    }
  close (ready[1]);
  if (holder < 0 || read (ready[0], &c, 1) != 1)
    {
      close (ready[0]);
      if (holder > 0)
        waitpid (holder, NULL, 0);
      return holder < 0 ? cl_error_errno (err, "fork")
                        : cl_error_make (err, 0,
                                         "instance `%s`: no network namespace to "
                                         "restore into",
                                         a->name);
    }
  close (ready[0]);
  if (pause_for_network (a, holder, err) < 0)
    {
      kill (holder, SIGKILL);
      waitpid (holder, NULL, 0);
      return -1;
    }
  return holder;
}

/* An image volume (an ext4 file) on a loop device, mounted at `target`;
   the loop device goes away with the mount (autoclear), and the mount
   with the monitor's mount namespace. */
static int
loop_mount (const char *image, const char *target, bool readonly, cl_error_t *err)
{
  cleanup_close int ctl = open ("/dev/loop-control", O_RDWR | O_CLOEXEC);
  cleanup_close int file = -1, dev = -1;
  struct loop_config cfg = { 0 };
  char path[64];
  int n;

  if (ctl < 0)
    return cl_error_errno (err, "open /dev/loop-control");
  file = open (image, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (file < 0)
    return cl_error_errno (err, "open `%s`", image);
  for (int tries = 0;; tries++)
    {
      n = ioctl (ctl, LOOP_CTL_GET_FREE);
      if (n < 0)
        return cl_error_errno (err, "get a free loop device");
      snprintf (path, sizeof path, "/dev/loop%d", n);
      dev = open (path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
      if (dev < 0)
        return cl_error_errno (err, "open `%s`", path);
      cfg.fd = (uint32_t)file;
      cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (readonly ? LO_FLAGS_READ_ONLY : 0);
      if (ioctl (dev, LOOP_CONFIGURE, &cfg) == 0)
        break;
      /* another process took it between: the next free one */
      if (errno != EBUSY || tries > 16)
        return cl_error_errno (err, "set up `%s` on `%s`", image, path);
      close (dev);
      dev = -1;
    }
  if (cl_mkdir_p (target, 0755, err) < 0)
    return -1;
  if (mount (path, target, "ext4", readonly ? MS_RDONLY : 0, NULL) < 0)
    return cl_error_errno (err, "mount volume `%s` on `%s`", image, target);
  return 0;
}

/* In the monitor's mount namespace: image volumes are mounted under
   INSTANCE/volumes/NAME, which their bind mounts then take as source. */
static int
mount_image_volumes (struct monitor_args *a, cl_error_t *err)
{
  json_t *e;
  size_t i;

  json_array_foreach (a->spec.mounts, i, e)
  {
    const char *vol = json_string_value (json_object_get (e, "image_volume"));
    const char *src = json_string_value (json_object_get (e, "source"));
    if (vol == NULL || src == NULL)
      continue;
    cleanup_free char *target = cl_strdup_printf ("%s/volumes/%s", a->dir, vol);
    if (loop_mount (src, target, json_is_true (json_object_get (e, "readonly")), err) < 0)
      return -1;
    json_object_set_new (e, "source", json_string (target));
  }
  return 0;
}

pid_t
cl_mgr_monitor_start_container (struct monitor_args *a, int *stdin_keep, cl_error_t *err)
{
  cleanup_free char *log = cl_strdup_printf ("%s/console.log", a->dir);
  cleanup_free char *netns = NULL;
  cleanup_close int logfd = -1;
  int inpipe[2] = { -1, -1 };
  pid_t init, holder = -1;

  if (unshare (CLONE_NEWNS) < 0)
    return cl_error_errno (err, "unshare the mount namespace");
  if (mount (NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    return cl_error_errno (err, "make mounts slave");
  if (mount ("overlay", a->spec.rootfs, "overlay", 0, a->overlay_opts) < 0)
    return cl_error_errno (err, "mount overlayfs on `%s`", a->spec.rootfs);
  if (mount_image_volumes (a, err) < 0)
    return -1;
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
  if (a->net_pause && a->checkpoint_dir)
    {
      holder = netns_for_restore (a, err);
      if (holder < 0)
        return -1;
      netns = cl_strdup_printf ("/proc/%d/ns/net", (int)holder);
      a->spec.netns = netns;
    }
  else if (a->net_pause)
    {
      a->spec.before_exec = pause_for_network;
      a->spec.opaque = a;
    }
  int r = a->checkpoint_dir ? cl_mgr_engine_restore (&a->spec, a->checkpoint_dir, &init, err)
                            : cl_mgr_engine_start (&a->spec, &init, err);
  if (holder > 0)
    {
      /* the restored processes hold the namespace now */
      kill (holder, SIGKILL);
      waitpid (holder, NULL, 0);
      a->spec.netns = NULL;
    }
  if (r < 0)
    return -1;
  if (inpipe[0] >= 0)
    close (inpipe[0]);
  *stdin_keep = inpipe[1];
  return init;
}

void
cl_mgr_monitor_main (struct monitor_args *a, int readyfd, monitor_start_fn start)
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
  a->readyfd = readyfd;
  if (a->vm)
    a->vm_launch.readyfd = readyfd;
  init = start (a, &stdin_keep, &err);
  if (init < 0 || record_running (a->root, a->name, init, &err) < 0)
    {
      if (init > 0)
        {
          kill (init, SIGKILL);
          waitpid (init, NULL, 0);
          cl_error_t ignored = NULL;
          if (!a->vm && cl_mgr_engine_destroy (a->spec.root, a->id, &ignored) < 0)
            cl_error_release (&ignored);
        }
      report (readyfd, "E%s", err ? err->msg : "unknown error");
      _exit (1);
    }
  /* a VMM child reports its own failure on readyfd, or closes it by
     exiting; one that took a live migration in reported to us */
  if (!a->vm || a->vm_launch.incoming)
    report (readyfd, "R%d", (int)init);
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
  code = st < 0 ? -1 : cl_mgr_proc_exit_code (st);
  if (a->vm)
    unlink (a->vm_launch.api_socket);
  else if (cl_mgr_engine_destroy (a->spec.root, a->id, &err) < 0)
    cl_error_release (&err);
  if (stdin_keep >= 0)
    close (stdin_keep);
  record_exit (a->root, a->name, code >= 0, code);
  _exit (0);
}

static json_t *
strv_to_json (char **v)
{
  json_t *a = json_array ();
  for (; v && *v; v++)
    json_array_append_new (a, json_string (*v));
  return a;
}

char **
cl_mgr_json_to_strv (json_t *arr)
{
  size_t n = json_array_size (arr), i;
  char **v = cl_xmalloc0 ((n + 1) * sizeof *v);
  json_t *e;

  json_array_foreach (arr, i, e) v[i]
      = cl_xstrdup (json_string_value (e) ? json_string_value (e) : "");
  return v;
}

static json_t *
opt_string (const char *s)
{
  return s ? json_string (s) : json_null ();
}

static char *
opt_strdup (json_t *v)
{
  return json_is_string (v) ? cl_xstrdup (json_string_value (v)) : NULL;
}

static json_t *
vm_launch_to_json (const struct vm_launch *l)
{
  json_t *vols = json_array (), *fs = json_array ();
  char mac[13];

  for (size_t i = 0; i < l->nvolumes; i++)
    json_array_append_new (vols, json_pack ("{s:s, s:b, s:o}", "path", l->volumes[i].path,
                                            "readonly", l->volumes[i].readonly, "serial",
                                            opt_string (l->volumes[i].serial)));
  for (size_t i = 0; i < l->nfs; i++)
    json_array_append_new (fs, json_pack ("{s:s, s:s, s:b}", "tag", l->fs[i].tag, "path",
                                          l->fs[i].path, "readonly", l->fs[i].readonly));
  for (int i = 0; i < 6; i++)
    snprintf (mac + 2 * i, 3, "%02x", l->mac[i]);
  json_t *j = json_pack (
      "{s:s, s:o, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:b, "
      "s:i, s:I, s:I, s:i, s:b}",
      "kernel", l->kernel, "initrd", opt_string (l->initrd), "cmdline", l->cmdline, "disk", l->disk,
      "console_log", l->console_log, "api_socket", l->api_socket, "restore_dir",
      opt_string (l->restore_dir), "incoming", opt_string (l->incoming), "incoming_token",
      opt_string (l->incoming_token), "tap", opt_string (l->tap), "volumes", vols, "fs", fs, "mac",
      mac, "has_mac", l->has_mac, "cpus", (int)l->cpus, "memory", (json_int_t)l->memory,
      "vsock_cid", (json_int_t)l->vsock_cid, "vsock_fd", l->vsock_fd, "attached", l->attached);
  json_object_set_new (j, "restore_clone", json_boolean (l->restore_clone));
  json_object_set_new (j, "go", opt_string (l->go));
  json_object_set_new (j, "warm_root", opt_string (l->warm_root));
  json_object_set_new (j, "warm_command", opt_string (l->warm_command));
  return j;
}

static int
vm_launch_from_json (json_t *j, struct vm_launch *l, cl_error_t *err)
{
  const char *kernel, *cmdline, *disk, *log, *sock, *mac;
  json_t *initrd, *restore, *incoming, *token, *tap, *vols, *fs, *e;
  json_int_t memory, cid;
  int has_mac, cpus, fd, attached;
  size_t i;

  if (json_unpack (j,
                   "{s:s, s:o, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:b, "
                   "s:i, s:I, s:I, s:i, s:b}",
                   "kernel", &kernel, "initrd", &initrd, "cmdline", &cmdline, "disk", &disk,
                   "console_log", &log, "api_socket", &sock, "restore_dir", &restore, "incoming",
                   &incoming, "incoming_token", &token, "tap", &tap, "volumes", &vols, "fs", &fs,
                   "mac", &mac, "has_mac", &has_mac, "cpus", &cpus, "memory", &memory, "vsock_cid",
                   &cid, "vsock_fd", &fd, "attached", &attached)
          < 0
      || !json_is_array (vols) || !json_is_array (fs) || strlen (mac) != 12)
    return cl_error_make (err, 0, "cloison-monitor: malformed arguments (vm_launch)");
  l->kernel = cl_xstrdup (kernel);
  l->initrd = opt_strdup (initrd);
  l->cmdline = cl_xstrdup (cmdline);
  l->disk = cl_xstrdup (disk);
  l->console_log = cl_xstrdup (log);
  l->api_socket = cl_xstrdup (sock);
  l->restore_dir = opt_strdup (restore);
  l->incoming = opt_strdup (incoming);
  l->incoming_token = opt_strdup (token);
  l->incoming_fd = -1;
  l->restore_clone = json_is_true (json_object_get (j, "restore_clone"));
  l->go = opt_strdup (json_object_get (j, "go"));
  l->warm_root = opt_strdup (json_object_get (j, "warm_root"));
  l->warm_command = opt_strdup (json_object_get (j, "warm_command"));
  l->tap = opt_strdup (tap);
  l->volumes = cl_xmalloc0 ((json_array_size (vols) + 1) * sizeof *l->volumes);
  json_array_foreach (vols, i, e)
  {
    struct cl_vmm_disk *d = &l->volumes[l->nvolumes++];
    d->path = opt_strdup (json_object_get (e, "path"));
    d->readonly = json_is_true (json_object_get (e, "readonly"));
    d->serial = opt_strdup (json_object_get (e, "serial"));
    if (d->path == NULL)
      return cl_error_make (err, 0, "cloison-monitor: malformed arguments (volume %zu)", i);
  }
  l->fs = cl_xmalloc0 ((json_array_size (fs) + 1) * sizeof *l->fs);
  json_array_foreach (fs, i, e)
  {
    struct cl_vmm_fs *f = &l->fs[l->nfs++];
    f->tag = opt_strdup (json_object_get (e, "tag"));
    f->path = opt_strdup (json_object_get (e, "path"));
    f->readonly = json_is_true (json_object_get (e, "readonly"));
    if (f->tag == NULL || f->path == NULL)
      return cl_error_make (err, 0, "cloison-monitor: malformed arguments (share %zu)", i);
  }
  for (i = 0; i < 6; i++)
    {
      unsigned b;
      if (sscanf (mac + 2 * i, "%2x", &b) != 1)
        return cl_error_make (err, 0, "cloison-monitor: malformed arguments (mac)");
      l->mac[i] = (uint8_t)b;
    }
  l->has_mac = has_mac;
  l->cpus = (unsigned)cpus;
  l->memory = (uint64_t)memory;
  l->vsock_cid = (uint32_t)cid;
  l->vsock_fd = fd;
  l->readyfd = -1;
  l->attached = attached;
  return 0;
}

json_t *
cl_mgr_monitor_args_to_json (const struct monitor_args *a)
{
  json_t *j = json_pack ("{s:s, s:s, s:s, s:s, s:b, s:b, s:b}", "root", a->root, "name", a->name,
                         "id", a->id, "dir", a->dir, "attached", a->attached, "net_pause",
                         a->net_pause, "vm", a->vm);
  if (a->vm)
    json_object_set_new (j, "vm_launch", vm_launch_to_json (&a->vm_launch));
  else
    json_object_update_new (
        j, json_pack ("{s:s, s:s, s:o, s:o, s:s, s:I, s:i, s:s, s:O}", "engine_root", a->spec.root,
                      "rootfs", a->spec.rootfs, "argv", strv_to_json (a->spec.argv), "env",
                      strv_to_json (a->spec.env), "cwd", a->spec.cwd ? a->spec.cwd : "/", "memory",
                      (json_int_t)a->spec.memory, "cpus", (int)a->spec.cpus, "overlay",
                      a->overlay_opts, "mounts", a->spec.mounts ? a->spec.mounts : json_null ()));
  if (!a->vm && a->checkpoint_dir)
    json_object_set_new (j, "checkpoint", json_string (a->checkpoint_dir));
  return j;
}

int
cl_mgr_monitor_args_from_json (json_t *j, struct monitor_args *a, cl_error_t *err)
{
  const char *root, *name, *id, *dir, *eroot, *rootfs, *cwd, *overlay;
  json_t *argv, *env, *mounts = NULL, *vm_launch = NULL, *checkpoint = NULL;
  json_int_t memory;
  int attached, net_pause, vm = 0, cpus;

  memset (a, 0, sizeof *a);
  a->gofd = -1;
  a->vm_launch.vsock_fd = -1;
  if (json_unpack (j, "{s:s, s:s, s:s, s:s, s:b, s:b, s?b, s?o}", "root", &root, "name", &name,
                   "id", &id, "dir", &dir, "attached", &attached, "net_pause", &net_pause, "vm",
                   &vm, "vm_launch", &vm_launch)
      < 0)
    return cl_error_make (err, 0, "cloison-monitor: malformed arguments");
  if (vm)
    {
      if (vm_launch == NULL)
        return cl_error_make (err, 0, "cloison-monitor: malformed arguments (vm_launch)");
    }
  else if (json_unpack (j, "{s:s, s:s, s:o, s:o, s:s, s:I, s:i, s:s, s?o, s?o}", "engine_root",
                        &eroot, "rootfs", &rootfs, "argv", &argv, "env", &env, "cwd", &cwd,
                        "memory", &memory, "cpus", &cpus, "overlay", &overlay, "mounts", &mounts,
                        "checkpoint", &checkpoint)
           < 0)
    return cl_error_make (err, 0, "cloison-monitor: malformed arguments");
  a->root = cl_xstrdup (root);
  a->name = cl_xstrdup (name);
  a->id = cl_xstrdup (id);
  a->dir = cl_xstrdup (dir);
  a->attached = attached;
  a->net_pause = net_pause;
  a->vm = vm;
  if (vm)
    {
      if (vm_launch_from_json (vm_launch, &a->vm_launch, err) < 0)
        {
          cl_mgr_monitor_args_clear (a);
          return -1;
        }
      return 0;
    }
  a->spec.root = cl_xstrdup (eroot);
  a->spec.bundle = a->dir;
  a->spec.id = a->id;
  a->spec.hostname = a->name;
  a->spec.rootfs = cl_xstrdup (rootfs);
  a->spec.argv = cl_mgr_json_to_strv (argv);
  a->spec.env = cl_mgr_json_to_strv (env);
  a->spec.cwd = cl_xstrdup (cwd);
  a->spec.memory = (uint64_t)memory;
  a->spec.cpus = (unsigned)cpus;
  a->overlay_opts = cl_xstrdup (overlay);
  a->spec.mounts = json_is_array (mounts) ? json_incref (mounts) : NULL;
  a->checkpoint_dir = opt_strdup (checkpoint);
  return 0;
}

void
cl_mgr_monitor_args_clear (struct monitor_args *a)
{
  free (a->root);
  free (a->name);
  free (a->id);
  free (a->dir);
  free ((char *)a->spec.root);
  free ((char *)a->spec.rootfs);
  cl_strv_free (a->spec.argv);
  cl_strv_free (a->spec.env);
  free ((char *)a->spec.cwd);
  free (a->overlay_opts);
  free (a->checkpoint_dir);
  json_decref (a->spec.mounts);
  free (a->vm_launch.kernel);
  free (a->vm_launch.initrd);
  free (a->vm_launch.cmdline);
  free (a->vm_launch.disk);
  free (a->vm_launch.console_log);
  free (a->vm_launch.api_socket);
  free (a->vm_launch.restore_dir);
  free (a->vm_launch.incoming);
  free (a->vm_launch.incoming_token);
  free (a->vm_launch.go);
  free (a->vm_launch.warm_root);
  free (a->vm_launch.warm_command);
  free (a->vm_launch.tap);
  for (size_t i = 0; i < a->vm_launch.nvolumes; i++)
    {
      free ((char *)a->vm_launch.volumes[i].path);
      free ((char *)a->vm_launch.volumes[i].serial);
    }
  free (a->vm_launch.volumes);
  for (size_t i = 0; i < a->vm_launch.nfs; i++)
    {
      free ((char *)a->vm_launch.fs[i].tag);
      free ((char *)a->vm_launch.fs[i].path);
    }
  free (a->vm_launch.fs);
  memset (a, 0, sizeof *a);
}
