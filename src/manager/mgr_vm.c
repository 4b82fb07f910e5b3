/* SPDX-License-Identifier: Apache-2.0 */
/* microVM instances (see mgr_vm.h): a disk cloned from the image's ext4 disk,
   and the VMM library run in a child of the instance's monitor, with the
   serial console appended to INSTANCE/console.log.  The kind's table of
   operations (vm_ops, mgr_internal.h) is at the end; exec is in vm_agent.c. */
#include "common/cancel.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "image/image.h"
#include "manager/mgr_images.h"
#include "manager/mgr_internal.h"
#include "manager/monitor.h"
#include "manager/netglue.h"
#include "manager/mgr_vm.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define POWER_BUTTON_REPEAT_MS 2000

/* The instance's disk, cloned from the image's (at launch). */
static int
vm_disk_create (struct cl_manager *m, struct instance *inst, struct mgr_image *img, cl_error_t *err)
{
  cleanup_free char *dir = cl_mgr_instance_dir (m, inst->name);
  cleanup_free char *disk = cl_strdup_printf ("%s/disk.img", dir);
  cleanup_free char *base = NULL;
  uint64_t size = (uint64_t)json_integer_value (json_object_get (inst->config, "disk_size"));
  struct stat st;

  if (cl_mkdir_p (dir, 0700, err) < 0 || cl_mgr_image_vm_disk (m, img, &base, err) < 0)
    return -1;
  if (stat (base, &st) < 0)
    return cl_error_errno (err, "stat `%s`", base);
  if (size && size < (uint64_t)st.st_size)
    return cl_error_raise (err, CL_ERR_INVALID,
                           "--disk-size %llu: smaller than the image's disk (%lld bytes)",
                           (unsigned long long)size, (long long)st.st_size);
  if (cl_mgr_file_clone (base, disk, size, err) < 0)
    return -1;
  if (size > (uint64_t)st.st_size)
    {
      char *argv[] = { "resize2fs", "-f", disk, NULL };
      /* resize2fs talks even when it succeeds */
      int r = cl_mgr_spawn_wait (argv, true, err);
      if (r < 0)
        return cl_error_wrap (err, "grow `%s` to --disk-size", disk);
    }
  return 0;
}

static int
vm_disk_copy (struct cl_manager *m, struct instance *from, const char *sdir, const char *ddir,
              cl_error_t *err)
{
  cleanup_free char *src = cl_strdup_printf ("%s/disk.img", sdir);
  cleanup_free char *out = cl_strdup_printf ("%s/disk.img", ddir);

  (void)m;
  (void)from;
  return cl_mgr_file_clone (src, out, 0, err);
}

/* The kernel command line that boots the image's disk and runs the
   instance's command, if it has one, as the init (our initramfs takes
   cloison.init= and passes what follows `--` to it). */
static char *
init_cmdline (const char *name, json_t *command)
{
  size_t i, n = json_array_size (command);
  char *s = cl_strdup_printf ("%s cloison.hostname=%s", VM_DEFAULT_DISK_CMDLINE, name), *t;
  json_t *e;

  json_array_foreach (command, i, e)
  {
    const char *arg = json_string_value (e);
    if (i == 0)
      t = cl_strdup_printf ("%s cloison.init=%s%s", s, arg, n > 1 ? " --" : "");
    else
      t = cl_strdup_printf (strpbrk (arg, " \t") ? "%s \"%s\"" : "%s %s", s, arg);
    free (s);
    s = t;
  }
  return s;
}

static char *
config_string (struct instance *inst, const char *key)
{
  const char *s = json_string_value (json_object_get (inst->config, key));
  return s ? cl_xstrdup (s) : NULL;
}

static int
must_exist (const char *what, const char *path, cl_error_t *err)
{
  if (access (path, R_OK) < 0)
    return cl_error_errno (err, "%s `%s`", what, path);
  return 0;
}

/* A virtio-fs tag or a disk letter per folder and volume, and the
   guest's mounts on the command line (cmdline NULL: a kernel of the
   user's, which our init does not serve: devices only). */
static void
vm_add_share (struct vm_launch *l, const char *source, const char *path, bool ro, char **cmdline)
{
  char *tag = cl_strdup_printf ("cl%zu", l->nfs), *t;

  l->fs = realloc (l->fs, (l->nfs + 1) * sizeof *l->fs);
  if (l->fs == NULL)
    abort ();
  l->fs[l->nfs++] = (struct cl_vmm_fs){ .tag = tag, .path = cl_xstrdup (source), .readonly = ro };
  if (*cmdline == NULL)
    return;
  t = cl_strdup_printf ("%s cloison.fs=%s:%s%s", *cmdline, tag, path, ro ? ":ro" : "");
  free (*cmdline);
  *cmdline = t;
}

static int
vm_mounts (struct cl_manager *m, struct instance *inst, struct vm_launch *l, char **cmdline,
           cl_error_t *err)
{
  json_t *folders = json_object_get (inst->config, "mounts"), *vols = NULL, *e;
  size_t i;

  json_array_foreach (folders, i, e)
      vm_add_share (l, json_string_value (json_object_get (e, "source")),
                    json_string_value (json_object_get (e, "path")),
                    json_is_true (json_object_get (e, "readonly")), cmdline);
  if (cl_mgr_volume_mounts (m, inst->name, &vols, err) < 0)
    return -1;
  json_array_foreach (vols, i, e)
  {
    const char *src = json_string_value (json_object_get (e, "source"));
    const char *path = json_string_value (json_object_get (e, "path"));
    bool ro = json_is_true (json_object_get (e, "readonly"));
    if (strcmp (json_string_value (json_object_get (e, "type")), "image") != 0)
      {
        vm_add_share (l, src, path, ro, cmdline);
        continue;
      }
    if (l->nvolumes >= 24)
      {
        json_decref (vols);
        return cl_error_make (err, 0, "instance `%s`: at most 24 volumes with a size", inst->name);
      }
    l->volumes = realloc (l->volumes, (l->nvolumes + 1) * sizeof *l->volumes);
    if (l->volumes == NULL)
      abort ();
    l->volumes[l->nvolumes] = (struct cl_vmm_disk){ .path = cl_xstrdup (src), .readonly = ro };
    /* the root disk is vda: volumes follow in order */
    if (*cmdline)
      {
        char *t = cl_strdup_printf ("%s cloison.vol=vd%c:%s%s", *cmdline, (char)('b' + l->nvolumes),
                                    path, ro ? ":ro" : "");
        free (*cmdline);
        *cmdline = t;
      }
    l->nvolumes++;
  }
  json_decref (vols);
  return 0;
}

static pid_t vm_monitor_start (struct vm_launch *l, cl_error_t *err);

/* In the monitor: a clone of the warm template of its machine, when
   the VM boots our kernel and initramfs on its disk alone
   (docs/templates.md); a template that cannot be built: a cold boot,
   said on the console.  Here and not in the manager, whose process may
   be the threaded daemon: the template's VMM is a fork of this process,
   which runs the whole VMM (the monitors are exec'd for that reason). */
static void
vm_warm_start (struct vm_launch *l)
{
  cleanup_json json_t *command = json_loads (l->warm_command, JSON_DECODE_ANY, NULL);
  cl_error_t why = NULL;

  if (cl_mgr_vm_template_use (l->warm_root, l, command, vm_monitor_start, &why) == 0)
    return;
  int fd = open (l->console_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd >= 0)
    {
      dprintf (fd, "cloison: booting cold: %s\n", why->msg);
      close (fd);
    }
  cl_warn ("booting cold: %s", why->msg);
  cl_error_release (&why);
}

/* The VMM's arguments; restore_dir: resume a stateful snapshot's state. */
static int
vm_launch_prepare (struct cl_manager *m, struct instance *inst, const char *restore_dir,
                   int incoming_fd, bool attached, struct vm_launch *l, cl_error_t *err)
{
  cleanup_free char *dir = cl_mgr_instance_dir (m, inst->name);
  json_int_t cpus = json_integer_value (json_object_get (inst->config, "cpus"));
  json_int_t memory = json_integer_value (json_object_get (inst->config, "memory"));
  const char *path;
  bool mounted = false, warm;

  memset (l, 0, sizeof *l);
  l->vsock_fd = -1;
  l->incoming_fd = -1;
  l->attached = attached;
  l->kernel = config_string (inst, "kernel");
  l->initrd = config_string (inst, "initrd");
  l->cmdline = config_string (inst, "cmdline");
  if (l->kernel == NULL)
    {
      /* the image's rootfs on /dev/vda, booted by our kernel + initramfs */
      if (cl_img_vm_kernel (&path, err) < 0)
        return -1;
      l->kernel = cl_xstrdup (path);
      if (l->initrd == NULL)
        {
          if (cl_img_vm_initramfs (&path, err) < 0)
            return -1;
          l->initrd = cl_xstrdup (path);
        }
      if (l->cmdline == NULL)
        {
          /* the folders go before the command's `--` */
          char *folders = cl_xstrdup ("");
          if (vm_mounts (m, inst, l, &folders, err) < 0)
            {
              free (folders);
              return -1;
            }
          mounted = true;
          char *base = init_cmdline (inst->name, json_object_get (inst->config, "command"));
          char *dd = strstr (base, " cloison.init=");
          l->cmdline = dd ? cl_strdup_printf ("%.*s%s%s", (int)(dd - base), base, folders, dd)
                          : cl_strdup_printf ("%s%s", base, folders);
          free (base);
          free (folders);
        }
    }
  if (!mounted)
    {
      char *none = NULL;
      if (vm_mounts (m, inst, l, &none, err) < 0)
        return -1;
    }
  if (must_exist ("kernel", l->kernel, err) < 0
      || (l->initrd && must_exist ("initrd", l->initrd, err) < 0))
    return -1;
  l->disk = cl_strdup_printf ("%s/disk.img", dir);
  l->console_log = cl_strdup_printf ("%s/console.log", dir);
  l->api_socket = cl_strdup_printf ("%s/api.sock", dir);
  l->restore_dir = restore_dir ? cl_xstrdup (restore_dir) : NULL;
  if (incoming_fd > 0)
    {
      l->incoming_fd = incoming_fd;
      l->incoming = cl_strdup_printf ("fd:%d", MONITOR_INCOMING_FD);
    }
  l->cpus = cpus > 0 ? (unsigned)cpus : 1;
  l->memory = memory > 0 ? (uint64_t)memory : CL_VMM_DEFAULT_MEMORY;
  l->readyfd = -1;
  /* built-in kernel, initramfs and command line, the disk alone, not
     resuming a snapshot or a live move, not --cold, and a vsock for the go */
  warm = json_object_get (inst->config, "kernel") == NULL
         && json_object_get (inst->config, "initrd") == NULL
         && json_object_get (inst->config, "cmdline") == NULL && l->nfs == 0 && l->nvolumes == 0
         && restore_dir == NULL && incoming_fd <= 0
         && !json_is_true (json_object_get (inst->config, "cold"))
         && !attached /* `run --vm`: its exit status, below */
         && cl_mgr_vm_host_has_vsock ();
  /* a vsock device for `cloison exec` (the guest agent) where the host
     can give one; the CID is the instance's for its whole life */
  if (cl_mgr_vm_host_has_vsock ()
      && cl_mgr_vm_vsock_take (m, inst->name, l->restore_dir != NULL, &l->vsock_cid, &l->vsock_fd,
                               err)
             < 0)
    return -1;
  unlink (l->api_socket);
  if (warm)
    {
      l->warm_root = cl_xstrdup (m->root);
      l->warm_command = json_dumps (json_object_get (inst->config, "command") ?: json_null (),
                                    JSON_COMPACT | JSON_ENCODE_ANY);
    }
  if (cl_mgr_netglue_attach_vm (m, inst, &l->tap, l->mac, &l->has_mac, err) < 0)
    {
      if (l->vsock_fd >= 0)
        close (l->vsock_fd);
      l->vsock_fd = -1;
      return -1;
    }
  return 0;
}

/* The serial console's input while the VM runs detached: a FIFO beside
   the log, which `cloison console` writes.  The VMM holds it open for
   reading and writing, so that a writer going away is no EOF and a
   writer finding no reader knows the VM is not running (ENXIO). */
static char *
console_input_path (const char *console_log)
{
  const char *slash = strrchr (console_log, '/');
  int dirlen = slash ? (int)(slash - console_log) : 1;
  return cl_strdup_printf ("%.*s/" VM_CONSOLE_INPUT, dirlen, slash ? console_log : ".");
}

static int
console_input_open (const char *console_log)
{
  cleanup_free char *path = console_input_path (console_log);

  unlink (path);
  if (mkfifo (path, 0600) < 0)
    return -1; /* no input: the console stays read-only */
  return open (path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
}

/* A clone of a warm template reports its command's exit status on its
   console only (cloison-init skips the status port there, see
   src/agent/init.c): the last "cloison-init: exit N" line, else -1. */
static int
clone_exit_status (const char *console_log, off_t from)
{
  cleanup_free char *text = NULL;
  size_t len = 0;
  cl_error_t err = NULL;
  const char *p, *last = NULL;

  if (cl_read_file (console_log, &text, &len, &err) < 0)
    {
      cl_error_release (&err);
      return -1;
    }
  /* this run's lines only: the log keeps the earlier runs' */
  for (p = text + ((size_t)from <= len ? (size_t)from : len);
       (p = strstr (p, "cloison-init: exit ")) != NULL; p++)
    last = p;
  return last ? atoi (last + strlen ("cloison-init: exit ")) : -1;
}

/* In the monitor: forks the VMM child.  Returns its pid or -1. */
static pid_t
vm_monitor_start (struct vm_launch *l, cl_error_t *err)
{
  pid_t pid = fork ();

  if (pid < 0)
    return cl_error_errno (err, "fork the VMM");
  if (pid == 0)
    {
      struct cl_vmm_config cfg;
      struct cl_vmm_disk *disks = cl_xmalloc0 ((l->nvolumes + 1) * sizeof *disks);
      struct cl_vmm_net net = { .tap = l->tap, .has_mac = l->has_mac };
      cl_error_t verr = NULL;
      struct stat logst;
      off_t log_start = stat (l->console_log, &logst) == 0 ? logst.st_size : 0;

      prctl (PR_SET_NAME, "cloison-vmm");
      prctl (PR_SET_PDEATHSIG, SIGKILL); /* never outlive the monitor */
      if (!l->attached)
        {
          /* the VMM's own messages land beside the guest's output */
          int logfd = open (l->console_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
          if (logfd >= 0)
            dup2 (logfd, 2), close (logfd);
        }
      cl_vmm_config_init (&cfg);
      cfg.kernel = l->kernel;
      cfg.initrd = l->initrd;
      cfg.cmdline = l->cmdline;
      cfg.cpus = l->cpus;
      cfg.memory = l->memory;
      disks[0] = (struct cl_vmm_disk){ .path = l->disk };
      for (size_t i = 0; i < l->nvolumes; i++)
        disks[i + 1] = l->volumes[i];
      cfg.disks = disks;
      cfg.ndisks = l->nvolumes + 1;
      cfg.fs = l->fs;
      cfg.nfs = l->nfs;
      if (l->tap)
        {
          memcpy (net.mac, l->mac, 6);
          cfg.nets = &net;
          cfg.nnets = 1;
        }
      cfg.rng = true;
      cfg.vsock_cid = l->vsock_cid;
      cfg.vsock_fd = l->vsock_fd;
      if (l->attached)
        {
          cfg.console = CL_VMM_CONSOLE_SERIAL;
          cfg.console_in_fd = 0;
          cfg.console_out_fd = 1;
        }
      else
        {
          cfg.console = CL_VMM_CONSOLE_FILE;
          cfg.console_path = l->console_log;
          cfg.console_in_fd = console_input_open (l->console_log);
        }
      cfg.api_socket = l->api_socket;
      cfg.ready_fd = l->readyfd; /* 'R' once the vCPUs run */
      cfg.restore_dir = l->restore_dir;
      cfg.incoming = l->incoming;
      cfg.incoming_token = l->incoming_token;
      cfg.restore_clone = l->restore_clone;
      int status = -1;
      cfg.guest_status = &status; /* cloison-init's report of the command's */
      if (cl_vmm_run (&cfg, &verr) < 0)
        {
          char msg[1024];
          int n = snprintf (msg, sizeof msg, "E%s", verr ? verr->msg : "the VMM failed");
          /* nobody reads readyfd once the VM was taken as running: then
             the message goes to stderr (the console log, or the user's
             terminal for `run`) */
          if (cl_write_all (l->readyfd, msg, n > 0 && (size_t)n < sizeof msg ? (size_t)n : 0) < 0)
            dprintf (2, "cloison: %s\n", msg + 1);
          _exit (1);
        }
      if (status < 0 && l->restore_clone)
        status = clone_exit_status (l->console_log, log_start);
      _exit (status > 0 ? status : 0);
    }
  /* the VMM child holds the CID now */
  if (l->vsock_fd >= 0)
    close (l->vsock_fd);
  l->vsock_fd = -1;
  if (l->go)
    cl_mgr_vm_template_go (l, pid);
  return pid;
}

/* A live migration in: the VMM's report comes to the monitor first,
   which returns once the guest runs here ('R'), and meanwhile watches
   the command that started it (the daemon's receive): when that one is
   gone (its end of the ready pipe closed: killed), the VMM is killed
   before the migration can end, so that the source runs on and the
   daemon's recovery of the `receive` finds nothing running. */
static pid_t
vm_incoming_wait (struct vm_launch *l, int daemon_fd, cl_error_t *err)
{
  int p[2];
  pid_t pid;
  char buf[1024];
  ssize_t n = 0;

  if (pipe2 (p, O_CLOEXEC) < 0)
    return cl_error_errno (err, "pipe");
  l->readyfd = p[1];
  pid = vm_monitor_start (l, err);
  close (p[1]);
  l->readyfd = daemon_fd;
  close (MONITOR_INCOMING_FD); /* the VMM child has it */
  for (; pid > 0;)
    {
      struct pollfd w[2] = { { .fd = p[0], .events = POLLIN }, { .fd = daemon_fd, .events = 0 } };
      if (poll (w, 2, -1) < 0 && errno != EINTR)
        break;
      if (w[1].revents & (POLLERR | POLLHUP))
        {
          cl_error_make (err, 0, "the receiving command is gone: migration abandoned");
          break;
        }
      if (w[0].revents)
        {
          n = read (p[0], buf, sizeof buf - 1);
          if (n < 0 && errno == EINTR)
            continue;
          buf[n > 0 ? n : 0] = '\0';
          if (n > 0 && buf[0] == 'R')
            {
              close (p[0]);
              return pid;
            }
          cl_error_make (err, 0, "%s", n > 1 ? buf + 1 : "the VMM exited during the migration");
          break;
        }
    }
  close (p[0]);
  if (pid > 0)
    {
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
    }
  return -1;
}

/* cloison-vmmon's start: the VMM in a child of the monitor. */
pid_t
cl_mgr_monitor_start_vm (struct monitor_args *a, int *stdin_keep, cl_error_t *err)
{
  *stdin_keep = -1;
  if (a->vm_launch.warm_root)
    vm_warm_start (&a->vm_launch);
  if (a->vm_launch.incoming)
    return vm_incoming_wait (&a->vm_launch, a->readyfd, err);
  return vm_monitor_start (&a->vm_launch, err);
}

/* Ctrl-]: leaves `cloison console` when stdin is a terminal (as telnet
   and virsh console do). */
#define CONSOLE_DETACH_KEY 0x1d
/* After stdin's EOF (no terminal), how long the guest's output is still
   relayed once it goes quiet. */
#define CONSOLE_EOF_LINGER_NS (1000ull * 1000 * 1000)

/* Appends what the guest wrote since the last call.  -1: stdout is gone. */
static int
console_relay_output (int log_fd, bool *got)
{
  char buf[4096];
  ssize_t n;

  while ((n = read (log_fd, buf, sizeof buf)) > 0)
    {
      *got = true;
      if (cl_write_all (1, buf, (size_t)n) < 0)
        return -1;
    }
  return 0;
}

static int
vm_console (struct cl_manager *m, struct instance *inst, int *exit_code, cl_error_t *err)
{
  cleanup_free char *log = cl_strdup_printf ("%s/instances/%s/console.log", m->root, inst->name);
  cleanup_free char *in_path = console_input_path (log);
  cleanup_close int log_fd = -1, in_fd = -1;
  struct termios saved;
  bool tty = isatty (0) && tcgetattr (0, &saved) == 0;
  bool stdin_open = true, got;
  char pending[4096];
  size_t npending = 0;
  uint64_t quiet_since = 0;
  int ret = 0;

  /* input: the FIFO the VMM reads (ENXIO: no VMM holds it, the VM is
     not running); one client at a time, by a lock on it */
  in_fd = open (in_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (in_fd < 0 && errno == ENXIO)
    return cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` is not running", inst->name);
  if (in_fd < 0 && errno == ENOENT)
    return cl_error_raise (err, CL_ERR_CONFLICT,
                           "instance `%s`: no serial console input `%s` (restart it)", inst->name,
                           in_path);
  if (in_fd < 0)
    return cl_error_errno (err, "open `%s`", in_path);
  if (flock (in_fd, LOCK_EX | LOCK_NB) < 0)
    return cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s`: its console is attached elsewhere",
                           inst->name);
  /* output: the serial log, from its current end (new output only) */
  log_fd = open (log, O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || lseek (log_fd, 0, SEEK_END) < 0)
    return cl_error_errno (err, "open `%s`", log);
  *exit_code = 0;
  /* the VMM exiting while we type, or stdout closed: EPIPE ends the loop
     (and restores the terminal) instead of killing us */
  signal (SIGPIPE, SIG_IGN);
  if (tty)
    {
      struct termios raw = saved;
      cfmakeraw (&raw);
      tcsetattr (0, TCSADRAIN, &raw);
      fprintf (stderr, "Connected to `%s` (detach: Ctrl-])\r\n", inst->name);
    }

  for (;;)
    {
      struct pollfd p[2] = { { .fd = stdin_open && npending == 0 ? 0 : -1, .events = POLLIN },
                             { .fd = npending ? in_fd : -1, .events = POLLOUT } };
      bool alive = cl_mgr_proc_alive (inst->monitor_pid, inst->monitor_start);

      got = false;
      if (console_relay_output (log_fd, &got) < 0)
        break;
      if (!alive)
        break; /* the VM stopped: its last output was just relayed */
      if (!stdin_open && npending == 0)
        {
          uint64_t now = cl_now_ns ();
          if (got || quiet_since == 0)
            quiet_since = now;
          else if (now - quiet_since >= CONSOLE_EOF_LINGER_NS)
            break;
        }
      if (poll (p, 2, 50) < 0 && errno != EINTR)
        {
          ret = cl_error_errno (err, "poll");
          break;
        }
      if (p[0].revents)
        {
          ssize_t n = read (0, pending, sizeof pending);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            stdin_open = false;
          else
            {
              char *key = tty ? memchr (pending, CONSOLE_DETACH_KEY, (size_t)n) : NULL;
              npending = key ? (size_t)(key - pending) : (size_t)n;
              if (key)
                stdin_open = false;
              if (key && npending == 0)
                break;
            }
        }
      if (npending)
        {
          ssize_t n = write (in_fd, pending, npending);
          if (n < 0 && errno != EAGAIN && errno != EINTR)
            break; /* the VMM went away (EPIPE): the loop's end says so */
          if (n > 0)
            {
              memmove (pending, pending + n, npending - (size_t)n);
              npending -= (size_t)n;
            }
          if (npending == 0 && !stdin_open && tty)
            break; /* Ctrl-] after some input */
        }
    }
  if (tty)
    {
      tcsetattr (0, TCSADRAIN, &saved);
      fprintf (stderr, "\r\n");
    }
  return ret;
}

/* --- the VMM's API (HTTP over its Unix socket) --- */

static int
api_put_state (const char *socket, const char *state, cl_error_t *err)
{
  cleanup_json json_t *j = json_pack ("{s:s}", "state", state);
  cleanup_free char *body = json_dumps (j, JSON_COMPACT);
  return cl_unix_http_request (socket, "PUT", "/vm/state", body, err);
}

static int
vm_api_pause (const char *socket, bool pause, cl_error_t *err)
{
  return api_put_state (socket, pause ? "paused" : "running", err);
}

static int
vm_api_snapshot (const char *socket, const char *dir, cl_error_t *err)
{
  cleanup_json json_t *j = json_pack ("{s:s}", "dir", dir);
  cleanup_free char *body = json_dumps (j, JSON_COMPACT);
  return cl_unix_http_request (socket, "PUT", "/snapshot/create", body, err);
}

/* Presses the VM's ACPI power button: the guest shuts down if it will
   (cloison-init stops the instance's command, a distribution's init
   powers off). */
static int
vm_api_power_button (const char *socket, cl_error_t *err)
{
  return api_put_state (socket, "shutdown", err);
}

/* --- the kind's operations --- */

static int
vm_prepare (struct cl_manager *m, struct instance *inst, struct mgr_image *img,
            const struct start_opts *o, struct monitor_args *a, cl_error_t *err)
{
  (void)img;
  if (vm_launch_prepare (m, inst, o->restore_dir, o->incoming_fd, o->attached, &a->vm_launch, err)
      < 0)
    return -1;
  if (o->incoming_fd > 0 && o->incoming_token)
    a->vm_launch.incoming_token = cl_xstrdup (o->incoming_token);
  return 0;
}

static bool
vm_power_button (struct cl_manager *m, struct instance *inst)
{
  cleanup_free char *dir = cl_mgr_instance_dir (m, inst->name);
  cleanup_free char *sock = cl_strdup_printf ("%s/api.sock", dir);
  cl_error_t err = NULL;

  if (vm_api_power_button (sock, &err) == 0)
    return true;
  cl_debug ("instance `%s`: power button: %s", inst->name, err->msg);
  cl_error_release (&err);
  return false;
}

/* Through the power button: SIGTERM would stop the VMM at once, before
   the guest wrote back its disk.  Pressed again every 2 s: a guest still
   booting has not enabled it yet. */
static bool
vm_shutdown (struct cl_manager *m, struct instance *inst, int *timeout_ms)
{
  if (!vm_power_button (m, inst))
    return false;
  for (int left = *timeout_ms; left > 0; left -= POWER_BUTTON_REPEAT_MS)
    {
      int wait = left < POWER_BUTTON_REPEAT_MS ? left : POWER_BUTTON_REPEAT_MS;
      if (cl_mgr_proc_wait_exit (inst->monitor_pid, inst->monitor_start, wait))
        return true;
      vm_power_button (m, inst); /* fails once the VM is stopping */
    }
  cl_warn ("instance `%s`: the guest did not shut down within %d s; stopping the VM", inst->name,
           *timeout_ms / 1000);
  *timeout_ms = FORCED_STOP_WAIT_MS;
  return false;
}

static int
vm_freeze (struct cl_manager *m, struct instance *inst, bool freeze, cl_error_t *err)
{
  cleanup_free char *dir = cl_mgr_instance_dir (m, inst->name);
  cleanup_free char *sock = cl_strdup_printf ("%s/api.sock", dir);

  return vm_api_pause (sock, freeze, err);
}

/* A paused VM hears no power button: resumed before a stop. */
static void
vm_wake (struct cl_manager *m, struct instance *inst)
{
  cl_error_t ignored = NULL;

  if (cl_mgr_instance_is_frozen (inst) && vm_freeze (m, inst, false, &ignored) < 0)
    cl_error_release (&ignored);
}

static int
vm_snapshot (struct cl_manager *m, struct instance *inst, const char *dir, const char *sdir,
             bool stateful, cl_error_t *err)
{
  cleanup_free char *disk = cl_strdup_printf ("%s/disk.img", dir);
  cleanup_free char *copy = cl_strdup_printf ("%s/disk.img", sdir);
  cleanup_free char *sock = cl_strdup_printf ("%s/api.sock", dir);
  cleanup_free char *state = cl_strdup_printf ("%s/state", sdir);
  /* frozen by the user: stays paused */
  bool running = strcmp (inst->status, "running") == 0;
  cl_error_t ignored = NULL;
  int r;

  (void)m;
  /* paused, the disk does not change under the copy */
  if (running && vm_api_pause (sock, true, err) < 0)
    return -1;
  r = cl_mgr_file_clone (disk, copy, 0, err);
  if (r == 0 && stateful)
    r = vm_api_snapshot (sock, state, err);
  if (running && vm_api_pause (sock, false, &ignored) < 0)
    cl_error_release (&ignored);
  return r;
}

static int
vm_restore (const char *from, const char *staged, cl_error_t *err)
{
  return cl_mgr_file_clone (from, staged, 0, err);
}

/* The agent's session needs no lock: a paused VM only delays it. */
static int
vm_exec_unlocked (struct cl_manager *m, struct instance *inst, const struct cl_exec_spec *spec,
                  struct instance_lock *held, int *exit_code, cl_error_t *err)
{
  cl_mgr_instance_unlock (held);
  if (spec->cwd || spec->user)
    return cl_error_make (err, 0,
                          "instance `%s`: exec in a VM takes no %s (the guest agent runs "
                          "commands as root in /)",
                          inst->name, spec->cwd ? "working directory" : "user");
  return cl_mgr_vm_exec (m, inst, spec->argv, spec->env, spec->n_env, spec->tty, exit_code,
                         err); /* vm_agent.c */
}

/* The migration's poll: GET /migration of the VMM every 200 ms. */
#define MIGRATE_POLL_MS 200
#define MIGRATED_LINE "cloison-vmm: migrated: "

/* The final figures a completed source VMM wrote on its stderr (the
   console log) as it exited, which the poll may have missed, of the
   migration to uri (not an older one's); NULL: none. */
static json_t *
migrated_figures (const char *console_log, const char *uri)
{
  cleanup_file FILE *f = fopen (console_log, "re");
  cleanup_free char *line = NULL;
  size_t cap = 0;
  json_t *last = NULL;

  if (f == NULL)
    return NULL;
  /* the end of the log only: the line is among the last ones */
  if (fseek (f, -65536, SEEK_END) < 0)
    rewind (f);
  while (getline (&line, &cap, f) > 0)
    {
      char *at = strstr (line, MIGRATED_LINE);
      json_t *j
          = at ? json_loads (at + strlen (MIGRATED_LINE), JSON_DISABLE_EOF_CHECK, NULL) : NULL;
      const char *to = json_string_value (json_object_get (j, "uri"));
      if (j && (to == NULL || strcmp (to, uri) != 0))
        {
          json_decref (j);
          j = NULL;
        }
      if (j)
        {
          json_decref (last);
          last = j;
        }
    }
  return last;
}

/* The VMM's migration to uri, with its disk (block: the destination has
   an empty one), then its end: a completed source exits 0. */
static int
vm_migrate (struct cl_manager *m, struct instance *inst, const char *uri, const char *token,
            json_t **figures, cl_error_t *err)
{
  cleanup_free char *dir = cl_mgr_instance_dir (m, inst->name);
  cleanup_free char *sock = cl_strdup_printf ("%s/api.sock", dir);
  cleanup_json json_t *j = json_pack ("{s:s, s:b, s:s?}", "uri", uri, "block", 1, "token", token);
  cleanup_free char *body = json_dumps (j, JSON_COMPACT);
  json_t *last = NULL;
  cl_error_t gone = NULL;
  bool cancelled = false;

  *figures = NULL;
  if (cl_unix_http_request (sock, "PUT", "/migration/send", body, err) < 0)
    return cl_error_wrap (err, "instance `%s`: migrate", inst->name);
  for (;;)
    {
      cleanup_free char *text = NULL;
      json_t *st;
      const char *state;
      struct timespec ts = { 0, MIGRATE_POLL_MS * 1000000L };

      nanosleep (&ts, NULL);
      /* the operation cancelled: so is the VMM's migration, which ends
         `cancelled` (or `completed`, if it was too late) */
      if (!cancelled && cl_cancelled ())
        {
          cl_error_t e = NULL;
          cancelled = true;
          if (cl_unix_http_request (sock, "PUT", "/migration/cancel", NULL, &e) < 0)
            cl_error_release (&e);
        }
      if (cl_unix_http_request_body (sock, "GET", "/migration", NULL, &text, &gone) < 0)
        break; /* the VMM is gone: completed (it exits 0), or died */
      st = json_loads (text, 0, NULL);
      state = json_string_value (json_object_get (st, "state"));
      if (state && strcmp (state, "active") != 0 && strcmp (state, "none") != 0)
        {
          json_decref (last);
          last = st;
          if (strcmp (state, "completed") == 0)
            break;
          cl_error_make (err, 0, "instance `%s`: migration %s: %s", inst->name, state,
                         json_string_value (json_object_get (last, "error"))
                             ? json_string_value (json_object_get (last, "error"))
                             : "(no reason given)");
          json_decref (last);
          return -1;
        }
      json_decref (last);
      last = st;
    }
  cl_error_release (&gone);
  /* completed: the VMM stops, its monitor records the instance stopped */
  if (!cl_mgr_proc_wait_exit (inst->monitor_pid, inst->monitor_start, FORCED_STOP_WAIT_MS))
    cl_warn ("instance `%s`: its VMM did not exit after the migration", inst->name);
  cleanup_instance struct instance *now = NULL;
  if (cl_mgr_store_get (m, inst->name, &now, err) < 0)
    {
      json_decref (last);
      return -1;
    }
  if (strcmp (json_string_value (json_object_get (last, "state")) ?: "", "completed") != 0)
    {
      cleanup_free char *log = cl_strdup_printf ("%s/console.log", dir);
      json_t *final = migrated_figures (log, uri);
      if (final)
        {
          json_decref (last);
          last = final;
        }
      else if (!(now->has_exit_code && now->exit_code == 0))
        {
          json_decref (last);
          return cl_error_make (err, 0, "instance `%s`: its VMM stopped during the migration",
                                inst->name);
        }
    }
  *figures = last;
  return 0;
}

const struct instance_ops vm_ops = {
  .kind = "vm",
  .create = vm_disk_create,
  .copy = vm_disk_copy,
  .prepare = vm_prepare,
  .wake = vm_wake,
  .freeze = vm_freeze,
  .shutdown = vm_shutdown, /* the ACPI power button */
  .halt = NULL,            /* the monitor's VMM child is all there is */
  .snapshot = vm_snapshot,
  .checkpoint = NULL, /* a running VM moves by live migration */
  .restore = vm_restore,
  .exec = vm_exec_unlocked,
  .console = vm_console,
  .set_limits = NULL, /* applied at the next start */
  .migrate = vm_migrate,
};
