/* A small container engine of the manager's own: namespaces, a cgroup per
   container (v1, v2 or hybrid, detected at run time), pivot_root into an
   already mounted rootfs.  It stands behind engine.h so that instance
   logic does not depend on which engine runs the container. */
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP_PARENT "cloison"

/* Controllers used on a v1 (or hybrid) host, where each is mounted. */
static const char *const v1_controllers[] = { "memory", "cpu", "pids", "freezer", NULL };

static bool
cgroup_unified (void)
{
  return access (CGROUP_ROOT "/cgroup.controllers", F_OK) == 0;
}

/* The directories of the container's cgroup: one (v2) or one per v1
   controller present.  NULL terminated; caller frees. */
static char **
cgroup_dirs (const char *id)
{
  char **dirs = cl_xmalloc0 (8 * sizeof *dirs);
  size_t n = 0;

  if (cgroup_unified ())
    dirs[n++] = cl_strdup_printf (CGROUP_ROOT "/" CGROUP_PARENT "/%s", id);
  else
    for (const char *const *c = v1_controllers; *c; c++)
      {
        char *mnt = cl_strdup_printf (CGROUP_ROOT "/%s", *c);
        if (access (mnt, F_OK) == 0)
          dirs[n++] = cl_strdup_printf ("%s/" CGROUP_PARENT "/%s", mnt, id);
        free (mnt);
      }
  return dirs;
}

static void
strv_free (char **v)
{
  if (v == NULL)
    return;
  for (char **p = v; *p; p++)
    free (*p);
  free (v);
}

static void
strv_freep (char ***v)
{
  strv_free (*v);
}
#define cleanup_strv __attribute__ ((cleanup (strv_freep)))

static int
write_str (const char *dir, const char *file, const char *value, cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("%s/%s", dir, file);
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);

  if (fd < 0)
    return cl_error_errno (err, "open `%s`", path);
  if (write (fd, value, strlen (value)) < 0)
    return cl_error_errno (err, "write `%s` to `%s`", value, path);
  return 0;
}

/* The v1 directory of one controller, or NULL. */
static const char *
dir_of (char **dirs, const char *controller)
{
  cleanup_free char *needle = cl_strdup_printf (CGROUP_ROOT "/%s/", controller);
  for (char **d = dirs; *d; d++)
    if (strncmp (*d, needle, strlen (needle)) == 0)
      return *d;
  return NULL;
}

int
engine_set_limits (const char *id, uint64_t memory, unsigned cpus, cl_error_t *err)
{
  cleanup_strv char **dirs = cgroup_dirs (id);
  char value[64];
  const char *d;

  if (cgroup_unified ())
    {
      if (memory && (snprintf (value, sizeof value, "%llu", (unsigned long long) memory),
                     write_str (dirs[0], "memory.max", value, err) < 0))
        return -1;
      if (cpus && (snprintf (value, sizeof value, "%u 100000", cpus * 100000),
                   write_str (dirs[0], "cpu.max", value, err) < 0))
        return -1;
      return 0;
    }
  if (memory && (d = dir_of (dirs, "memory")))
    {
      snprintf (value, sizeof value, "%llu", (unsigned long long) memory);
      if (write_str (d, "memory.limit_in_bytes", value, err) < 0)
        return -1;
    }
  if (cpus && (d = dir_of (dirs, "cpu")))
    {
      snprintf (value, sizeof value, "%u", cpus * 100000);
      if (write_str (d, "cpu.cfs_period_us", "100000", err) < 0
          || write_str (d, "cpu.cfs_quota_us", value, err) < 0)
        return -1;
    }
  return 0;
}

static int
cgroup_create (const char *id, cl_error_t *err)
{
  cleanup_strv char **dirs = cgroup_dirs (id);

  if (dirs[0] == NULL)
    return cl_error_make (err, 0, "no cgroup controller mounted under " CGROUP_ROOT);
  if (cgroup_unified ())
    {
      cl_error_t ignored = NULL;
      /* best effort: a parent may already delegate them */
      if (cl_mkdir_p (CGROUP_ROOT "/" CGROUP_PARENT, 0755, &ignored) < 0
          || write_str (CGROUP_ROOT, "cgroup.subtree_control", "+memory +cpu +pids", &ignored) < 0
          || write_str (CGROUP_ROOT "/" CGROUP_PARENT, "cgroup.subtree_control",
                        "+memory +cpu +pids", &ignored)
                 < 0)
        cl_error_release (&ignored);
    }
  for (char **d = dirs; *d; d++)
    if (cl_mkdir_p (*d, 0755, err) < 0)
      {
        cl_error_t ignored = NULL;
        engine_destroy (id, &ignored);
        cl_error_release (&ignored);
        return cl_error_wrap (err, "cgroup");
      }
  return 0;
}

static int
cgroup_join (const char *id, pid_t pid, cl_error_t *err)
{
  cleanup_strv char **dirs = cgroup_dirs (id);
  char value[32];

  snprintf (value, sizeof value, "%d", (int) pid);
  for (char **d = dirs; *d; d++)
    if (write_str (*d, "cgroup.procs", value, err) < 0)
      return -1;
  return 0;
}

int
engine_freeze (const char *id, int frozen, cl_error_t *err)
{
  cleanup_strv char **dirs = cgroup_dirs (id);
  const char *d;

  if (cgroup_unified ())
    return write_str (dirs[0], "cgroup.freeze", frozen ? "1" : "0", err);
  d = dir_of (dirs, "freezer");
  if (d == NULL)
    return 0;
  if (write_str (d, "freezer.state", frozen ? "FROZEN" : "THAWED", err) < 0)
    return -1;
  /* FREEZING becomes FROZEN once every task stopped */
  for (int i = 0; frozen && i < 200; i++)
    {
      cleanup_free char *path = cl_strdup_printf ("%s/freezer.state", d);
      cleanup_free char *state = NULL;
      if (cl_read_file (path, &state, NULL, err) < 0)
        return -1;
      if (strncmp (state, "FROZEN", 6) == 0)
        break;
      usleep (5000);
    }
  return 0;
}

static int
cgroup_kill (const char *dir)
{
  cleanup_free char *path = cl_strdup_printf ("%s/cgroup.procs", dir);
  cleanup_file FILE *f = fopen (path, "re");
  int pid, n = 0;

  if (f == NULL)
    return 0;
  while (fscanf (f, "%d", &pid) == 1)
    {
      kill (pid, SIGKILL);
      n++;
    }
  return n;
}

int
engine_destroy (const char *id, cl_error_t *err)
{
  cleanup_strv char **dirs = cgroup_dirs (id);

  for (char **d = dirs; *d; d++)
    {
      int i;
      if (access (*d, F_OK) != 0)
        continue;
      /* a frozen cgroup holds its tasks: thaw before killing */
      if (strstr (*d, "/freezer/"))
        {
          cl_error_t ignored = NULL;
          if (write_str (*d, "freezer.state", "THAWED", &ignored) < 0)
            cl_error_release (&ignored);
        }
      for (i = 0; i < 400; i++)
        {
          cgroup_kill (*d);
          if (rmdir (*d) == 0 || errno == ENOENT)
            break;
          if (errno != EBUSY)
            return cl_error_errno (err, "remove cgroup `%s`", *d);
          usleep (5000);
        }
      if (i == 400)
        return cl_error_make (err, EBUSY, "remove cgroup `%s`", *d);
    }
  return 0;
}

/* --- the container's init, between clone and exec --- */

/* Reports a failure to the parent through the error pipe, then exits. */
static void __attribute__ ((noreturn, format (printf, 2, 3)))
child_fail (int errfd, const char *fmt, ...)
{
  char msg[512];
  int saved = errno, n;
  va_list ap;

  va_start (ap, fmt);
  n = vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (n > 0 && (size_t) n < sizeof msg - 32)
    snprintf (msg + n, sizeof msg - n, ": %s", strerror (saved));
  if (cl_write_all (errfd, msg, strlen (msg)) < 0)
    _exit (126);
  _exit (127);
}

static void
mount_in (int errfd, const char *rootfs, const char *target, const char *type, unsigned long flags,
          const char *data)
{
  char path[4096];
  snprintf (path, sizeof path, "%s%s", rootfs, target);
  mkdir (path, 0755);
  if (mount (type, path, type, flags, data) < 0)
    child_fail (errfd, "mount %s on `%s`", type, target);
}

static void
populate_dev (int errfd, const char *rootfs)
{
  static const struct
  {
    const char *name;
    unsigned major, minor;
  } nodes[] = {
    { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 },
    { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
  };
  static const char *const links[][2] = {
    { "/proc/self/fd", "fd" },          { "/proc/self/fd/0", "stdin" },
    { "/proc/self/fd/1", "stdout" },    { "/proc/self/fd/2", "stderr" },
    { "pts/ptmx", "ptmx" },
  };
  char path[4096];

  mount_in (errfd, rootfs, "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++)
    {
      snprintf (path, sizeof path, "%s/dev/%s", rootfs, nodes[i].name);
      if (mknod (path, S_IFCHR | 0666, makedev (nodes[i].major, nodes[i].minor)) < 0)
        child_fail (errfd, "mknod `/dev/%s`", nodes[i].name);
      chmod (path, 0666);
    }
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    {
      snprintf (path, sizeof path, "%s/dev/%s", rootfs, links[i][1]);
      if (symlink (links[i][0], path) < 0)
        child_fail (errfd, "symlink `/dev/%s`", links[i][1]);
    }
  mount_in (errfd, rootfs, "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620");
  mount_in (errfd, rootfs, "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "mode=1777,size=65536k");
}

static void __attribute__ ((noreturn))
container_init (const struct engine_spec *s, int syncfd, int errfd)
{
  char c;

  if (read (syncfd, &c, 1) != 1)
    _exit (1); /* the parent gave up */
  close (syncfd);
  if (unshare (CLONE_NEWCGROUP) < 0)
    child_fail (errfd, "unshare cgroup namespace");
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    child_fail (errfd, "make mounts private");
  mount_in (errfd, s->rootfs, "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_in (errfd, s->rootfs, "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
            NULL);
  populate_dev (errfd, s->rootfs);
  if (sethostname (s->hostname, strlen (s->hostname)) < 0)
    child_fail (errfd, "sethostname");
  if (chdir (s->rootfs) < 0)
    child_fail (errfd, "chdir `%s`", s->rootfs);
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    child_fail (errfd, "pivot_root");
  if (umount2 (".", MNT_DETACH) < 0)
    child_fail (errfd, "detach the old root");
  if (chdir (s->cwd ? s->cwd : "/") < 0)
    child_fail (errfd, "chdir `%s`", s->cwd ? s->cwd : "/");
  setsid ();
  for (int i = 0; i < 3; i++)
    if (s->stdio[i] != i && dup2 (s->stdio[i], i) < 0)
      child_fail (errfd, "dup2");
  /* errfd is close-on-exec like the rest: EOF tells the parent exec worked */
  cl_cloexec_fds_from (3);
  environ = s->env;
  execvp (s->argv[0], s->argv);
  child_fail (errfd, "exec `%s`", s->argv[0]);
}

int
engine_start (const struct engine_spec *spec, pid_t *pid_out, cl_error_t *err)
{
  int syncp[2], errp[2];
  char msg[512];
  ssize_t n;
  pid_t pid;

  if (cgroup_create (spec->id, err) < 0)
    return -1;
  if (pipe2 (syncp, O_CLOEXEC) < 0 || pipe2 (errp, O_CLOEXEC) < 0)
    {
      engine_destroy (spec->id, err);
      return cl_error_errno (err, "pipe");
    }
  pid = (pid_t) syscall (SYS_clone,
                         CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET
                             | SIGCHLD,
                         NULL, NULL, NULL, NULL);
  if (pid < 0)
    {
      cl_error_errno (err, "clone the container's init");
      goto fail_pipes;
    }
  if (pid == 0)
    {
      close (syncp[1]);
      close (errp[0]);
      container_init (spec, syncp[0], errp[1]);
    }
  close (syncp[0]);
  close (errp[1]);
  if (cgroup_join (spec->id, pid, err) < 0
      || engine_set_limits (spec->id, spec->memory, spec->cpus, err) < 0
      || (spec->before_exec && spec->before_exec (spec->opaque, pid, err) < 0))
    goto fail_child;
  if (write (syncp[1], "g", 1) != 1)
    {
      cl_error_errno (err, "start the container's init");
      goto fail_child;
    }
  close (syncp[1]);
  /* EOF: the init reached exec (its end is close-on-exec or closed) */
  do
    n = read (errp[0], msg, sizeof msg - 1);
  while (n < 0 && errno == EINTR);
  close (errp[0]);
  if (n > 0)
    {
      msg[n] = '\0';
      waitpid (pid, NULL, 0);
      cl_error_make (err, 0, "container init: %s", msg);
      engine_destroy (spec->id, err);
      return -1;
    }
  *pid_out = pid;
  return 0;

fail_child:
  close (syncp[1]);
  close (errp[0]);
  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);
  engine_destroy (spec->id, err);
  return -1;
fail_pipes:
  close (syncp[0]);
  close (syncp[1]);
  close (errp[0]);
  close (errp[1]);
  engine_destroy (spec->id, err);
  return -1;
}

int
engine_exec (const char *id, pid_t init, char **argv, char **env, const char *cwd, int *wstatus,
             cl_error_t *err)
{
  /* cgroup before mnt: after joining the mount namespace /proc is the
     container's */
  static const char *const ns_names[] = { "ipc", "uts", "net", "pid", "cgroup", "mnt" };
  int fds[6], rootfd;
  pid_t child;

  for (size_t i = 0; i < 6; i++)
    {
      cleanup_free char *path = cl_strdup_printf ("/proc/%d/ns/%s", (int) init, ns_names[i]);
      fds[i] = open (path, O_RDONLY | O_CLOEXEC);
      if (fds[i] < 0)
        {
          cl_error_errno (err, "open `%s`", path);
          while (i-- > 0)
            close (fds[i]);
          return -1;
        }
    }
  {
    cleanup_free char *path = cl_strdup_printf ("/proc/%d/root", (int) init);
    rootfd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
      {
        cl_error_errno (err, "open `%s`", path);
        for (size_t i = 0; i < 6; i++)
          close (fds[i]);
        return -1;
      }
  }
  child = fork ();
  if (child < 0)
    {
      cl_error_errno (err, "fork");
      goto out;
    }
  if (child == 0)
    {
      cl_error_t cerr = NULL;
      pid_t inner;
      int st;
      if (cgroup_join (id, getpid (), &cerr) < 0)
        cl_error_release (&cerr); /* still run: limits are best effort here */
      for (size_t i = 0; i < 6; i++)
        if (setns (fds[i], 0) < 0)
          {
            dprintf (2, "cloison: join the %s namespace: %s\n", ns_names[i], strerror (errno));
            _exit (126);
          }
      if (fchdir (rootfd) < 0 || chroot (".") < 0 || chdir (cwd ? cwd : "/") < 0)
        {
          dprintf (2, "cloison: enter the container's root: %s\n", strerror (errno));
          _exit (126);
        }
      inner = fork (); /* the pid namespace applies to children */
      if (inner < 0)
        _exit (126);
      if (inner == 0)
        {
          environ = env;
          execvp (argv[0], argv);
          dprintf (2, "cloison: exec `%s`: %s\n", argv[0], strerror (errno));
          _exit (127);
        }
      signal (SIGINT, SIG_IGN);
      signal (SIGQUIT, SIG_IGN);
      while (waitpid (inner, &st, 0) < 0)
        if (errno != EINTR)
          _exit (126);
      _exit (WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st));
    }
  signal (SIGINT, SIG_IGN);
  signal (SIGQUIT, SIG_IGN);
  while (waitpid (child, wstatus, 0) < 0)
    if (errno != EINTR)
      {
        cl_error_errno (err, "waitpid");
        child = -1;
        break;
      }
out:
  for (size_t i = 0; i < 6; i++)
    close (fds[i]);
  close (rootfd);
  return child < 0 ? -1 : 0;
}
