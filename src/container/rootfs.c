/* SPDX-License-Identifier: Apache-2.0 */
#include "container/rootfs.h"
#include "container/init_ctx.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "container/cgroup.h"
#include "container/console.h"
#include "container/hooks.h"
#include "container/spec.h"
#include "container/sync.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static char *
fd_path (int fd)
{
  return cl_strdup_printf ("/proc/self/fd/%d", fd);
}

/* mkdir -p inside the root: each level is resolved in the root so that a
   symlink in the image cannot send us onto the host. */
static int
mkdir_in_root (int rootfd, const char *path, cl_error_t *err)
{
  cleanup_free char *p = cl_xstrdup (path);
  char *s = p;

  while (*s == '/')
    s++;
  for (;;)
    {
      char *slash = strchr (s, '/');
      int fd;
      if (slash)
        *slash = '\0';
      fd = cl_ctr_open_in_root (rootfd, p, O_PATH | O_DIRECTORY, 0);
      if (fd < 0 && errno == ENOENT)
        {
          char *last = strrchr (p, '/');
          cleanup_close int parent = -1;
          const char *name = p;
          if (last && last != p)
            {
              *last = '\0';
              parent = cl_ctr_open_in_root (rootfd, p, O_PATH | O_DIRECTORY, 0);
              *last = '/';
              name = last + 1;
            }
          else
            {
              parent = dup (rootfd);
              name = last ? last + 1 : p;
            }
          if (parent < 0 || (mkdirat (parent, name, 0755) < 0 && errno != EEXIST))
            return cl_error_errno (err, "mkdir `%s` in the container root", p);
        }
      else if (fd < 0)
        return cl_error_errno (err, "open `%s` in the container root", p);
      else
        close (fd);
      if (slash == NULL)
        return 0;
      *slash = '/';
      s = slash + 1;
    }
}

/* Creates (if needed) and opens the mount point `dest` in the root: a
   directory, or an empty file when the source is not a directory. */
int
cl_ctr_rootfs_make_target (int rootfd, const char *dest, bool dir, cl_error_t *err)
{
  int fd;

  /* Usually the image has it already: one lookup. */
  fd = cl_ctr_open_in_root (rootfd, dest, O_PATH, 0);
  if (fd >= 0)
    return fd;
  if (dir)
    {
      if (mkdir_in_root (rootfd, dest, err) < 0)
        return -1;
    }
  else
    {
      cleanup_free char *parent = cl_xstrdup (dest);
      char *slash = strrchr (parent, '/');
      if (slash && slash != parent)
        {
          *slash = '\0';
          if (mkdir_in_root (rootfd, parent, err) < 0)
            return -1;
        }
      fd = cl_ctr_open_in_root (rootfd, dest, O_CREAT | O_WRONLY | O_NOFOLLOW, 0644);
      if (fd >= 0)
        close (fd);
      else if (errno != EEXIST && errno != EISDIR && errno != ETXTBSY && errno != ELOOP)
        return cl_error_errno (err, "create `%s` in the container root", dest);
    }
  fd = cl_ctr_open_in_root (rootfd, dest, O_PATH, 0);
  if (fd < 0)
    return cl_error_errno (err, "open `%s` in the container root", dest);
  return fd;
}

static unsigned long
locked_flags (const char *path)
{
  struct statvfs s;
  unsigned long f = 0;
  if (statvfs (path, &s) < 0)
    return 0;
  if (s.f_flag & ST_NOSUID)
    f |= MS_NOSUID;
  if (s.f_flag & ST_NODEV)
    f |= MS_NODEV;
  if (s.f_flag & ST_NOEXEC)
    f |= MS_NOEXEC;
  return f;
}

/* Remount the mount on top of `fd`'s path with `flags` (a bind mount
   takes its read-only and no* flags only at remount). */
static int
remount_fd (int fd, unsigned long flags, bool keep_locked, const char *what, cl_error_t *err)
{
  cleanup_free char *p = fd_path (fd);
  if (keep_locked)
    flags |= locked_flags (p);
  if (mount (NULL, p, NULL, MS_BIND | MS_REMOUNT | flags, NULL) < 0)
    return cl_error_errno (err, "%s: remount", what);
  return 0;
}

static bool
has_namespace (struct init_ctx *c, const char *type)
{
  json_t *ns = json_object_get (c->linux_obj, "namespaces"), *v;
  size_t i;
  json_array_foreach (ns, i, v)
  {
    if (strcmp (json_string_value (json_object_get (v, "type")), type) == 0)
      return true;
  }
  return false;
}

/* Without a cgroup namespace the container must still see its own
   cgroups at /sys/fs/cgroup, not the host's roots (as runc): mount them
   from a short-lived child in a cgroup namespace rooted at the
   container's cgroups; the mounts land in our mount namespace. */
static int
mount_cgroups (struct init_ctx *c, const char *target, unsigned long flags, cl_error_t *err)
{
  int pipefd[2], status = 0;
  char msg[1024];
  ssize_t n;
  pid_t pid;

  if (has_namespace (c, "cgroup"))
    return cl_ctr_cgroup_mount (target, flags, err);
  if (pipe2 (pipefd, O_CLOEXEC) < 0)
    return cl_error_errno (err, "pipe");
  pid = fork ();
  if (pid < 0)
    return cl_error_errno (err, "fork");
  if (pid == 0)
    {
      cl_error_t e = NULL;
      close (pipefd[0]);
      if (unshare (CLONE_NEWCGROUP) < 0)
        cl_error_errno (&e, "unshare a cgroup namespace");
      else
        cl_ctr_cgroup_mount (target, flags, &e);
      if (e)
        dprintf (pipefd[1], "%s", e->msg);
      _exit (e ? 1 : 0);
    }
  close (pipefd[1]);
  n = read (pipefd[0], msg, sizeof msg - 1);
  close (pipefd[0]);
  waitpid (pid, &status, 0);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  msg[n > 0 ? n : 0] = '\0';
  return cl_error_make (err, 0, "%s", n > 0 ? msg : "cgroup mount failed");
}

/* A bind mount of `source` (relative: to the bundle) on `dest` in the
   root, made read-only etc. as mo says.  Returns an O_PATH fd of the new
   mount's top. */
static int
bind_mount (int rootfd, const char *bundle, const char *dest, const char *source,
            const struct mount_options *mo, bool userns, const char *what, cl_error_t *err)
{
  cleanup_free char *src_abs = NULL, *target_path = NULL;
  cleanup_close int target = -1;
  struct stat st;

  if (source == NULL)
    return cl_error_make (err, 0, "%s: a bind mount needs a source", what);
  src_abs = source[0] == '/' ? cl_xstrdup (source) : cl_strdup_printf ("%s/%s", bundle, source);
  if (stat (src_abs, &st) < 0)
    return cl_error_errno (err, "%s: source `%s`", what, src_abs);
  target = cl_ctr_rootfs_make_target (rootfd, dest, S_ISDIR (st.st_mode), err);
  if (target < 0)
    return -1;
  target_path = fd_path (target);
  if (mount (src_abs, target_path, NULL, MS_BIND | (mo->rbind ? MS_REC : 0), NULL) < 0)
    return cl_error_errno (err, "%s: bind `%s`", what, src_abs);
  /* The fd still names the covered directory: reopen the new top. */
  close (target);
  target = cl_ctr_open_in_root (rootfd, dest, O_PATH, 0);
  if (target < 0)
    return cl_error_errno (err, "%s: reopen", what);
  if ((mo->flags & ~MS_REC) && remount_fd (target, mo->flags, userns, what, err) < 0)
    return -1;
  return steal_fd (&target);
}

int
cl_ctr_rootfs_bind_mounts (int rootfd, const char *bundle, json_t *mounts, cl_error_t *err)
{
  json_t *m;
  size_t i;

  json_array_foreach (mounts, i, m)
  {
    const char *dest = json_string_value (json_object_get (m, "destination"));
    const char *type = json_string_value (json_object_get (m, "type"));
    cleanup_free char *what = cl_strdup_printf ("mounts[%zu] `%s`", i, dest);
    struct mount_options mo;
    int fd;

    cl_ctr_spec_mount_options (json_object_get (m, "options"), &mo);
    if (type && strcmp (type, "bind") == 0)
      mo.bind = true;
    if (!mo.bind)
      {
        free (mo.data);
        continue;
      }
    fd = bind_mount (rootfd, bundle, dest, json_string_value (json_object_get (m, "source")), &mo,
                     false, what, err);
    free (mo.data);
    if (fd < 0)
      return -1;
    close (fd);
  }
  return 0;
}

static int
do_mount (struct init_ctx *c, json_t *m, size_t index, cl_error_t *err)
{
  const char *dest = json_string_value (json_object_get (m, "destination"));
  const char *type = json_string_value (json_object_get (m, "type"));
  const char *source = json_string_value (json_object_get (m, "source"));
  cleanup_free char *what = cl_strdup_printf ("mounts[%zu] `%s`", index, dest);
  cleanup_free char *target_path = NULL;
  cleanup_close int target = -1;
  struct mount_options mo;
  bool userns = c->a->ns_new & CLONE_NEWUSER;
  int r = -1;

  cl_ctr_spec_mount_options (json_object_get (m, "options"), &mo);
  if (type == NULL)
    type = mo.bind ? "bind" : "none";
  if (strcmp (type, "bind") == 0)
    mo.bind = true;
  if (strcmp (type, "sysfs") == 0 && !(c->a->ns_new & CLONE_NEWNET))
    {
      /* Without its own network namespace a container may not mount
         sysfs: give it the host's, read-only as asked. */
      mo.bind = mo.rbind = true;
      source = "/sys";
    }
  if (mo.bind)
    {
      target = bind_mount (c->rootfd, c->a->bundle, dest, source, &mo, userns, what, err);
      if (target < 0)
        goto out;
    }
  else
    {
      target = cl_ctr_rootfs_make_target (c->rootfd, dest, true, err);
      if (target < 0)
        goto out;
      target_path = fd_path (target);
      if (strcmp (type, "cgroup") == 0)
        {
          if (cl_ctr_init_wait_go (c, err) < 0)
            goto out;
          /* The module mounts below the target by name: give it the
             real path, not the fd's. */
          char real[PATH_MAX];
          ssize_t n = readlink (target_path, real, sizeof real - 1);
          if (n < 0)
            {
              cl_error_errno (err, "%s: readlink", what);
              goto out;
            }
          real[n] = '\0';
          if (mount_cgroups (c, real, mo.flags, err) < 0)
            {
              cl_error_wrap (err, "%s", what);
              goto out;
            }
        }
      else if (mount (source ? source : type, target_path, type, mo.flags, mo.data) < 0)
        {
          cl_error_errno (err, "%s: mount %s", what, type);
          goto out;
        }
      if (strcmp (dest, "/dev") == 0)
        c->dev_is_tmpfs = true;
      if (mo.propagation)
        {
          close (target);
          target = cl_ctr_open_in_root (c->rootfd, dest, O_PATH, 0);
        }
    }
  if (mo.propagation)
    {
      free (target_path);
      target_path = fd_path (target);
      if (mount (NULL, target_path, NULL, mo.propagation, NULL) < 0)
        {
          cl_error_errno (err, "%s: set propagation", what);
          goto out;
        }
    }
  r = 0;
out:
  free (mo.data);
  return r;
}

static const struct
{
  const char *path;
  unsigned major, minor;
} default_devices[] = {
  { "/dev/null", 1, 3 },   { "/dev/zero", 1, 5 },    { "/dev/full", 1, 7 },
  { "/dev/random", 1, 8 }, { "/dev/urandom", 1, 9 }, { "/dev/tty", 5, 0 },
};

static int
make_device (struct init_ctx *c, const char *path, char type, unsigned major, unsigned minor,
             mode_t mode, uid_t uid, gid_t gid, cl_error_t *err)
{
  cleanup_free char *dir = cl_xstrdup (path);
  cleanup_close int parent = -1;
  char *slash = strrchr (dir, '/');
  const char *name = slash + 1;
  mode_t kind = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;

  *slash = '\0';
  if (mkdir_in_root (c->rootfd, *dir ? dir : "/", err) < 0)
    return -1;
  parent = cl_ctr_open_in_root (c->rootfd, *dir ? dir : "/", O_PATH | O_DIRECTORY, 0);
  if (parent < 0)
    return cl_error_errno (err, "device `%s`: open parent", path);
  if (c->a->ns_new & CLONE_NEWUSER)
    {
      /* mknod is not allowed in a user namespace: bind the host's node. */
      cleanup_close int t = cl_ctr_rootfs_make_target (c->rootfd, path, false, err);
      cleanup_free char *tp = NULL;
      if (t < 0)
        return -1;
      tp = fd_path (t);
      if (mount (path, tp, NULL, MS_BIND, NULL) < 0)
        return cl_error_errno (err, "device `%s`: bind from the host", path);
      return 0;
    }
  unlinkat (parent, name, 0);
  if (mknodat (parent, name, kind | (mode & 07777), makedev (major, minor)) < 0)
    return cl_error_errno (err, "device `%s`: mknod", path);
  if (fchmodat (parent, name, mode & 07777, 0) < 0
      || fchownat (parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
    return cl_error_errno (err, "device `%s`: set owner and mode", path);
  return 0;
}

static int
setup_devices (struct init_ctx *c, cl_error_t *err)
{
  json_t *devs = json_object_get (c->linux_obj, "devices"), *d;
  size_t i, j;
  static const char *const links[][2] = { { "/proc/self/fd", "dev/fd" },
                                          { "/proc/self/fd/0", "dev/stdin" },
                                          { "/proc/self/fd/1", "dev/stdout" },
                                          { "/proc/self/fd/2", "dev/stderr" },
                                          { "pts/ptmx", "dev/ptmx" } };

  if (c->dev_is_tmpfs)
    {
      for (i = 0; i < sizeof default_devices / sizeof default_devices[0]; i++)
        {
          bool overridden = false;
          json_array_foreach (devs, j, d)
          {
            cleanup_free char *p
                = cl_ctr_spec_clean_path (json_string_value (json_object_get (d, "path")));
            overridden |= strcmp (p, default_devices[i].path) == 0;
          }
          if (!overridden
              && make_device (c, default_devices[i].path, 'c', default_devices[i].major,
                              default_devices[i].minor, 0666, 0, 0, err)
                     < 0)
            return -1;
        }
      for (i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlinkat (links[i][0], c->rootfd, links[i][1]) < 0 && errno != EEXIST)
          return cl_error_errno (err, "symlink `/%s`", links[i][1]);
    }
  json_array_foreach (devs, i, d)
  {
    const char *type = json_string_value (json_object_get (d, "type"));
    json_t *mode = json_object_get (d, "fileMode");
    /* "/dev/fuse/" is /dev/fuse, as runc (filepath.Clean) makes it. */
    cleanup_free char *path
        = cl_ctr_spec_clean_path (json_string_value (json_object_get (d, "path")));
    if (make_device (c, path, type[0] == 'u' ? 'c' : type[0],
                     (unsigned)json_integer_value (json_object_get (d, "major")),
                     (unsigned)json_integer_value (json_object_get (d, "minor")),
                     mode ? (mode_t)json_integer_value (mode) : 0666,
                     (uid_t)json_integer_value (json_object_get (d, "uid")),
                     (gid_t)json_integer_value (json_object_get (d, "gid")), err)
        < 0)
      return cl_error_wrap (err, "linux.devices[%zu]", i);
  }
  return 0;
}

static int
setup_console (struct init_ctx *c, cl_error_t *err)
{
  json_t *process = json_object_get (c->a->config, "process");
  cleanup_close int ptmx = -1, console = -1, master = -1;
  cleanup_free char *ptmx_path = NULL, *slave_path = NULL, *console_path = NULL;

  if (!json_is_true (json_object_get (process, "terminal")))
    return 0;
  ptmx = cl_ctr_open_in_root (c->rootfd, "/dev/pts/ptmx", O_PATH, 0);
  if (ptmx < 0)
    return cl_error_errno (
        err, "process.terminal: open /dev/pts/ptmx in the container (is devpts mounted?)");
  ptmx_path = fd_path (ptmx);
  if (cl_ctr_console_open_pty (ptmx_path, json_object_get (process, "consoleSize"), &master,
                               &c->console_slave, err)
      < 0)
    return -1;
  /* CVE-2025-52565: never follow a link here (the pty must not be bound
     over some other file, e.g. in /proc); take a regular file or a node. */
  {
    int fd = cl_ctr_open_in_root (c->rootfd, "/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW, 0600);
    struct stat st;
    if (fd >= 0)
      close (fd);
    console = cl_ctr_open_in_root (c->rootfd, "/dev/console", O_PATH | O_NOFOLLOW, 0);
    if (console < 0 || fstat (console, &st) < 0)
      return cl_error_errno (err, "process.terminal: /dev/console in the container");
    if (!S_ISREG (st.st_mode) && !S_ISCHR (st.st_mode))
      return cl_error_make (err, 0,
                            "process.terminal: /dev/console in the container is not a file");
  }
  slave_path = fd_path (c->console_slave);
  console_path = fd_path (console);
  if (mount (slave_path, console_path, NULL, MS_BIND, NULL) < 0)
    return cl_error_errno (err, "bind the terminal on /dev/console");
  if (cl_ctr_sync_send (c->a->sync_fd, SYNC_CONSOLE, 0, NULL) < 0
      || cl_ctr_console_send_fd (c->a->sync_fd, master, "console") < 0)
    return cl_error_errno (err, "send the terminal to the runtime");
  return 0;
}

/* CVE-2025-31133: the node bound over masked files must be the real
   /dev/null, opened from the host before the container could touch
   anything, and mounted through its fd (no path to swap). */
int
cl_ctr_rootfs_open_host_devnull (struct init_ctx *c, cl_error_t *err)
{
  struct stat st;
  c->devnull = open ("/dev/null", O_PATH | O_CLOEXEC);
  if (c->devnull < 0 || fstat (c->devnull, &st) < 0)
    return cl_error_errno (err, "open the host's /dev/null");
  if (!S_ISCHR (st.st_mode) || st.st_rdev != makedev (1, 3))
    return cl_error_make (err, 0, "the host's /dev/null is not the 1:3 character device");
  return 0;
}

static int
mask_paths (struct init_ctx *c, cl_error_t *err)
{
  json_t *masked = json_object_get (c->linux_obj, "maskedPaths"), *v;
  cleanup_free char *null_path = fd_path (c->devnull);
  size_t i;

  json_array_foreach (masked, i, v)
  {
    const char *p = json_string_value (v);
    cleanup_close int fd = cl_ctr_open_in_root (c->rootfd, p, O_PATH | O_NOFOLLOW, 0);
    cleanup_free char *tp = NULL;
    struct stat st;
    int r;
    if (fd < 0)
      {
        if (errno == ENOENT || errno == ENOTDIR)
          continue;
        return cl_error_errno (err, "linux.maskedPaths[%zu] `%s`", i, p);
      }
    if (fstat (fd, &st) < 0)
      return cl_error_errno (err, "linux.maskedPaths[%zu] `%s`", i, p);
    tp = fd_path (fd);
    if (S_ISDIR (st.st_mode))
      r = mount ("tmpfs", tp, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 "size=0k,nr_inodes=1");
    else
      r = mount (null_path, tp, NULL, MS_BIND, NULL);
    if (r < 0)
      return cl_error_errno (err, "linux.maskedPaths[%zu] `%s`: mount", i, p);
  }
  return 0;
}

static int
readonly_paths (struct init_ctx *c, cl_error_t *err)
{
  json_t *ro = json_object_get (c->linux_obj, "readonlyPaths"), *v;
  size_t i;

  json_array_foreach (ro, i, v)
  {
    const char *p = json_string_value (v);
    cleanup_close int fd = cl_ctr_open_in_root (c->rootfd, p, O_PATH | O_NOFOLLOW, 0);
    cleanup_close int top = -1;
    cleanup_free char *tp = NULL, *what = NULL;
    if (fd < 0)
      {
        if (errno == ENOENT || errno == ENOTDIR)
          continue;
        return cl_error_errno (err, "linux.readonlyPaths[%zu] `%s`", i, p);
      }
    tp = fd_path (fd);
    if (mount (tp, tp, NULL, MS_BIND | MS_REC, NULL) < 0)
      return cl_error_errno (err, "linux.readonlyPaths[%zu] `%s`: bind", i, p);
    top = cl_ctr_open_in_root (c->rootfd, p, O_PATH | O_NOFOLLOW, 0);
    what = cl_strdup_printf ("linux.readonlyPaths[%zu] `%s`", i, p);
    if (top < 0)
      return cl_error_errno (err, "%s", what);
    if (remount_fd (top, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, true, what, err) < 0)
      return -1;
  }
  return 0;
}

static int
set_sysctls (struct init_ctx *c, cl_error_t *err)
{
  json_t *sysctl = json_object_get (c->linux_obj, "sysctl"), *v;
  const char *key;

  json_object_foreach (sysctl, key, v)
  {
    cleanup_free char *path = cl_strdup_printf ("/proc/sys/%s", key);
    const char *val = json_string_value (v);
    struct statfs fs;
    cleanup_close int fd = -1;
    for (char *p = path + 10; *p; p++)
      if (*p == '.')
        *p = '/';
    fd = cl_ctr_open_in_root (c->rootfd, path, O_WRONLY | O_TRUNC, 0);
    if (fd < 0)
      fd = open (path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
      return cl_error_errno (err, "linux.sysctl.%s", key);
    /* The image cannot steer the write elsewhere than procfs
       (CVE-2025-52881). */
    if (fstatfs (fd, &fs) < 0 || fs.f_type != PROC_SUPER_MAGIC)
      return cl_error_make (err, 0, "linux.sysctl.%s: `%s` is not on procfs", key, path);
    if (cl_write_all (fd, val, strlen (val)) < 0)
      return cl_error_errno (err, "linux.sysctl.%s", key);
  }
  return 0;
}

static int
do_pivot (struct init_ctx *c, cl_error_t *err)
{
  cleanup_close int oldroot = -1;

  if (c->a->no_pivot)
    {
      if (fchdir (c->rootfd) < 0 || mount (".", "/", NULL, MS_MOVE, NULL) < 0 || chroot (".") < 0
          || chdir ("/") < 0)
        return cl_error_errno (err, "move into the root (--no-pivot)");
      return 0;
    }
  oldroot = open ("/", O_DIRECTORY | O_PATH | O_CLOEXEC);
  if (oldroot < 0 || fchdir (c->rootfd) < 0)
    return cl_error_errno (err, "pivot_root: open roots");
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    return cl_error_errno (err, "pivot_root (retry with --no-pivot on a ramfs root)");
  /* The old root sits under the new one: detach it without propagating
     the unmount to the host. */
  if (fchdir (oldroot) < 0 || mount (NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0
      || umount2 (".", MNT_DETACH) < 0 || chdir ("/") < 0)
    return cl_error_errno (err, "pivot_root: detach the old root");
  return 0;
}

/* The mount point that holds `path` (the longest one that is a prefix of
   it in /proc/self/mountinfo), made private if it is shared. */
static int
make_parent_mount_private (const char *path, cl_error_t *err)
{
  cleanup_free char *line = NULL, *best = NULL;
  bool best_shared = false;
  size_t cap = 0, best_len = 0;
  FILE *f = fopen ("/proc/self/mountinfo", "re");

  if (f == NULL)
    return cl_error_errno (err, "open /proc/self/mountinfo");
  while (getline (&line, &cap, f) > 0)
    {
      char *save = NULL, *field = strtok_r (line, " ", &save), *mp = NULL;
      bool shared = false;
      for (int n = 0; field; n++, field = strtok_r (NULL, " ", &save))
        {
          if (n == 4)
            mp = field;
          else if (n >= 6 && strcmp (field, "-") == 0)
            break;
          else if (n >= 6 && strncmp (field, "shared:", 7) == 0)
            shared = true;
        }
      size_t len = mp ? strlen (mp) : 0;
      if (mp
          && (strcmp (mp, "/") == 0
              || (strncmp (path, mp, len) == 0 && (path[len] == '/' || path[len] == '\0')))
          && len >= best_len)
        {
          free (best);
          best = cl_xstrdup (mp);
          best_len = len;
          best_shared = shared;
        }
    }
  fclose (f);
  if (best && best_shared && mount (NULL, best, NULL, MS_PRIVATE, NULL) < 0)
    return cl_error_errno (err, "make `%s` private", best);
  return 0;
}

int
cl_ctr_rootfs_setup (struct init_ctx *c, cl_error_t *err)
{
  json_t *config = c->a->config, *mounts = json_object_get (config, "mounts"), *m;
  json_t *root = json_object_get (config, "root");
  const char *prop = json_string_value (json_object_get (c->linux_obj, "rootfsPropagation"));
  unsigned long propagation = MS_SLAVE | MS_REC;
  size_t i;

  if (prop)
    {
      struct mount_options mo;
      json_t *o = json_pack ("[s]", prop);
      cl_ctr_spec_mount_options (o, &mo);
      json_decref (o);
      free (mo.data);
      if (mo.propagation == 0)
        return cl_error_make (err, 0, "linux.rootfsPropagation: unknown value `%s`", prop);
      propagation = mo.propagation;
    }
  /* As runc: / takes the propagation asked for; the mount holding the
     root is then made private if that made it shared (pivot_root refuses
     a shared parent), and the root bound onto itself. */
  if (mount (NULL, "/", NULL, propagation, NULL) < 0)
    return cl_error_errno (err, "linux.rootfsPropagation: make / %s", prop ? prop : "rslave");
  if ((propagation & MS_SHARED) && make_parent_mount_private (c->a->rootfs, err) < 0)
    return -1;
  if (mount (c->a->rootfs, c->a->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return cl_error_errno (
        err, "root.path: bind `%s`%s", c->a->rootfs,
        (propagation & MS_UNBINDABLE) ? " (linux.rootfsPropagation is unbindable)" : "");
  c->rootfd = open (c->a->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (c->rootfd < 0)
    return cl_error_errno (err, "root.path: open `%s`", c->a->rootfs);

  json_array_foreach (mounts, i, m)
  {
    if (do_mount (c, m, i, err) < 0)
      return -1;
  }
  if (setup_devices (c, err) < 0 || setup_console (c, err) < 0)
    return -1;

  if (json_array_size (json_object_get (json_object_get (config, "hooks"), "prestart"))
      || json_array_size (json_object_get (json_object_get (config, "hooks"), "createRuntime")))
    {
      struct sync_msg msg;
      if (cl_ctr_init_wait_go (c, err) < 0)
        return -1;
      if (cl_ctr_sync_send (c->a->sync_fd, SYNC_HOOKS, 0, NULL) < 0)
        return cl_error_errno (err, "sync with the runtime");
      if (cl_ctr_sync_recv (c->a->sync_fd, SYNC_HOOKS_DONE, &msg, err) < 0)
        return -1;
    }
  if (json_object_get (json_object_get (config, "hooks"), "createContainer"))
    {
      json_t *st;
      if (cl_ctr_init_wait_go (c, err) < 0)
        return -1;
      st = json_pack ("{s:s, s:s, s:s, s:i, s:s}", "ociVersion", OCI_SPEC_VERSION, "id", c->a->id,
                      "status", "creating", "pid", (int)getpid (), "bundle", c->a->bundle);
      /* As runc: from the root (not yet pivoted), with the process's env. */
      int r = cl_ctr_hooks_run (json_object_get (config, "hooks"), "createContainer", st,
                                json_object_get (json_object_get (config, "process"), "env"),
                                c->a->rootfs, err);
      json_decref (st);
      if (r < 0)
        return -1;
    }
  /* A process.cwd missing from the image is created (mode 0755, owned by
     root), as runc does, before the root may turn read-only. */
  const char *cwd
      = json_string_value (json_object_get (json_object_get (config, "process"), "cwd"));
  if (cwd && mkdir_in_root (c->rootfd, cwd, err) < 0)
    return cl_error_wrap (err, "process.cwd");
  if (set_sysctls (c, err) < 0 || mask_paths (c, err) < 0 || readonly_paths (c, err) < 0)
    return -1;
  if (json_is_true (json_object_get (root, "readonly"))
      && remount_fd (c->rootfd, MS_RDONLY, true, "root.readonly", err) < 0)
    return -1;
  return do_pivot (c, err);
}
