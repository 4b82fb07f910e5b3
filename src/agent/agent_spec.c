/* SPDX-License-Identifier: Apache-2.0 */
/* The guest agent's part of VM-isolated containers: a request's 'J'
   object (protocol.h) applied in the guest.  The process is set up by
   the container engine's own code (src/container/process.c: user and
   groups, capabilities, rlimits, no_new_privs, cwd, HOME, seccomp), the
   same as for an ordinary container; what the VM as a whole takes (the
   spec's non-bind mounts, hostname, network, entropy, clock) is applied
   once, by the connection that carries it. */
#include "agent/agent_spec.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "container/process.h"
#include "container/seccomp.h"
#include "container/spec.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Filesystems the guest mounts itself; binds were made by the host in
   the shared tree. */
static bool
guest_type (const char *type)
{
  static const char *const types[]
      = { "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "devtmpfs", NULL };
  for (size_t i = 0; types[i]; i++)
    if (type && strcmp (type, types[i]) == 0)
      return true;
  return false;
}

static void
mount_one (const char *root, json_t *m)
{
  const char *type = json_string_value (json_object_get (m, "type"));
  const char *dest = json_string_value (json_object_get (m, "destination"));
  const char *src = json_string_value (json_object_get (m, "source"));
  struct mount_options o = { 0 };
  cleanup_free char *target = NULL;
  cl_error_t err = NULL;

  if (!guest_type (type) || dest == NULL || dest[0] != '/')
    return;
  cl_ctr_spec_mount_options (json_object_get (m, "options"), &o);
  target = cl_strdup_printf ("%s%s", root, dest);
  if (cl_mkdir_p (target, 0755, &err) < 0)
    {
      dprintf (2, "cloison-agent: mount %s: %s\n", dest, err->msg);
      cl_error_release (&err);
      free (o.data);
      return;
    }
  /* /dev: the guest's own devices (a VM has only the ones it was given) */
  if (strcmp (dest, "/dev") == 0 && strcmp (type, "tmpfs") == 0)
    type = "devtmpfs", src = "devtmpfs";
  /* one cgroup v2 tree in the guest, whatever the host has */
  if (strcmp (type, "cgroup") == 0)
    type = "cgroup2", src = "cgroup2";
  if (strcmp (type, "devpts") == 0)
    {
      free (o.data);
      o.data = cl_xstrdup ("newinstance,ptmxmode=0666,mode=0620,gid=5");
    }
  if (mount (src ? src : type, target, type, o.flags & ~(unsigned long)MS_RDONLY, o.data) < 0)
    dprintf (2, "cloison-agent: mount %s on %s: %s\n", type, dest, strerror (errno));
  else if ((o.flags & MS_RDONLY)
           && mount (NULL, target, NULL, MS_REMOUNT | MS_RDONLY | (o.flags & ~MS_RDONLY), o.data)
                  < 0)
    dprintf (2, "cloison-agent: remount %s read-only: %s\n", dest, strerror (errno));
  free (o.data);
}

/* Runs a program of the initramfs (busybox's ip), not of the container. */
static int
run (char *const argv[])
{
  int st;
  pid_t pid = fork ();

  if (pid == 0)
    {
      execv (argv[0], argv);
      _exit (127);
    }
  if (pid < 0 || waitpid (pid, &st, 0) < 0)
    return -1;
  return WIFEXITED (st) && WEXITSTATUS (st) == 0 ? 0 : -1;
}

/* The interface whose MAC is `mac` ("aa:bb:..."), from /sys/class/net. */
static char *
iface_by_mac (const char *mac)
{
  const char *names[] = { "eth0", "eth1", "eth2", "eth3", NULL };
  for (size_t i = 0; names[i]; i++)
    {
      cleanup_free char *path = cl_strdup_printf ("/sys/class/net/%s/address", names[i]);
      char buf[64] = "";
      int fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        continue;
      ssize_t n = read (fd, buf, sizeof buf - 1);
      close (fd);
      if (n > 0 && strncasecmp (buf, mac, 17) == 0)
        return cl_xstrdup (names[i]);
    }
  return NULL;
}

/* A template's clone: its I-th interface still has the MAC of the VM
   the template was booted for; it takes this VM's (virtio-net commits a
   MAC change in the guest alone: the tap does not filter). */
static char *
iface_take_mac (size_t i, const char *mac)
{
  char *dev = cl_strdup_printf ("eth%zu", i);
  char *set[] = { "/bin/ip", "link", "set", "dev", dev, "address", (char *)mac, NULL };

  if (run (set) < 0)
    {
      free (dev);
      return NULL;
    }
  return dev;
}

static void
network (json_t *nets)
{
  size_t i, j;
  json_t *n, *a;
  char *lo_up[] = { "/bin/ip", "link", "set", "lo", "up", NULL };

  run (lo_up);
  json_array_foreach (nets, i, n)
  {
    const char *mac = json_string_value (json_object_get (n, "mac"));
    const char *gw = json_string_value (json_object_get (n, "gateway"));
    cleanup_free char *dev = mac ? iface_by_mac (mac) : NULL;
    if (dev == NULL && mac)
      dev = iface_take_mac (i, mac);
    if (dev == NULL)
      {
        dprintf (2, "cloison-agent: no interface with MAC %s\n", mac ? mac : "(none)");
        continue;
      }
    char *up[] = { "/bin/ip", "link", "set", dev, "up", NULL };
    run (up);
    json_array_foreach (json_object_get (n, "addrs"), j, a)
    {
      char *add[] = { "/bin/ip", "addr", "add", (char *)json_string_value (a), "dev", dev, NULL };
      if (add[3] && run (add) < 0)
        dprintf (2, "cloison-agent: address %s on %s failed\n", add[3], dev);
    }
    if (gw)
      {
        char *route[] = { "/bin/ip", "route", "add", "default", "via", (char *)gw, NULL };
        if (run (route) < 0)
          dprintf (2, "cloison-agent: default route via %s failed\n", gw);
      }
  }
}

/* Bytes from the host mixed into the guest's RNG, credited: a clone of a
   template must not repeat its siblings' random numbers. */
static void
entropy (const char *hex)
{
  size_t n = strlen (hex) / 2;
  struct
  {
    struct rand_pool_info info;
    unsigned char buf[512];
  } e = { 0 };
  int fd;

  if (n > sizeof e.buf)
    n = sizeof e.buf;
  for (size_t i = 0; i < n; i++)
    {
      unsigned v;
      if (sscanf (hex + 2 * i, "%2x", &v) != 1)
        return;
      e.buf[i] = (unsigned char)v;
    }
  e.info.entropy_count = (int)(n * 8);
  e.info.buf_size = (int)n;
  fd = open ("/dev/urandom", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    fd = open ("/newroot/dev/urandom", O_RDWR | O_CLOEXEC);
  if (fd >= 0 && ioctl (fd, RNDADDENTROPY, &e) < 0)
    dprintf (2, "cloison-agent: RNDADDENTROPY: %s\n", strerror (errno));
  /* a ready crng would take the new bytes only at its next periodic
     reseed: clones of one template would draw the same numbers until
     then (what a vmgenid driver's notification does, done here) */
  if (fd >= 0 && ioctl (fd, RNDRESEEDCRNG) < 0)
    dprintf (2, "cloison-agent: RNDRESEEDCRNG: %s\n", strerror (errno));
  if (fd >= 0)
    close (fd);
}

#define FUSE_SUPER_MAGIC 0x65735546

void
cl_agent_spec_mount_root (json_t *spec, const char *tag, const char *root)
{
  struct statfs sf;
  bool ro = json_is_true (json_object_get (spec, "rootfs_readonly"));

  if (statfs (root, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC)
    return; /* mounted by an earlier request */
  if (mount (tag, root, "virtiofs", ro ? MS_RDONLY : 0, NULL) < 0)
    dprintf (2, "cloison-agent: mount the virtio-fs share %s on %s: %s\n", tag, root,
             strerror (errno));
}

void
cl_agent_spec_global (json_t *spec, const char *root)
{
  json_t *mounts = json_object_get (spec, "mounts"), *m, *t;
  const char *host = json_string_value (json_object_get (spec, "hostname"));
  const char *hex = json_string_value (json_object_get (spec, "entropy"));
  size_t i;

  if ((t = json_object_get (spec, "time")) && json_is_number (t))
    {
      double now = json_number_value (t);
      struct timespec ts
          = { .tv_sec = (time_t)now, .tv_nsec = (long)((now - (double)(time_t)now) * 1e9) };
      if (clock_settime (CLOCK_REALTIME, &ts) < 0)
        dprintf (2, "cloison-agent: clock_settime: %s\n", strerror (errno));
    }
  if (hex)
    entropy (hex);
  json_array_foreach (mounts, i, m) mount_one (root, m);
  if (host && sethostname (host, strlen (host)) < 0)
    dprintf (2, "cloison-agent: sethostname: %s\n", strerror (errno));
  if (json_object_get (spec, "network"))
    network (json_object_get (spec, "network"));
}

void
cl_agent_spec_exec (json_t *spec)
{
  json_t *seccomp = json_object_get (spec, "seccomp");
  struct cl_seccomp_program *prog = NULL;
  struct process_setup ps = { .process = json_object_get (spec, "process"),
                              .seccomp = json_is_object (seccomp) ? seccomp : NULL,
                              .no_new_keyring = true,
                              .console_slave = -1,
                              .sync_fd = -1 };
  cl_error_t err = NULL;
  char *exe = NULL;

  if (!json_is_object (ps.process))
    {
      dprintf (2, "cloison-agent: the request's \"process\" is not an object\n");
      _exit (126);
    }
  if (ps.seccomp && cl_ctr_seccomp_compile (ps.seccomp, NULL, &prog, &err) < 0)
    goto fail;
  ps.seccomp_prog = prog;
  if (cl_ctr_process_prepare (&ps, &exe, &err) < 0)
    goto fail;
  cl_ctr_process_exec (&ps, exe, &err);
fail:
  dprintf (2, "cloison-agent: %s\n", err ? err->msg : "process setup failed");
  _exit (err && err->status == ENOENT ? 127 : 126);
}
