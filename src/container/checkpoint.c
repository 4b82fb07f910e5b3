/* SPDX-License-Identifier: Apache-2.0 */
/* Checkpoint and restore of a running container with CRIU, through its
   command line (criu dump / pre-dump / restore), with runc's options.
   The bind mounts of the spec (and the files masked with /dev/null) are
   external mounts for CRIU: named by their destination at dump, given
   their host source again at restore.  The container's state.json goes
   into the image directory so that restore brings the container back
   under the same runtime with a new init pid.  As runc: a network
   namespace joined by path (podman's) is external (keyed extRootNetNS,
   the one at the new config's path given back at restore), and the init's
   stdio is recorded in descriptors.json, its pipes given back at restore
   from the restoring runtime's own stdio (podman's conmon gives new
   pipes).  docs/migration.md, docs/checkpoint.md. */
#include "container/container.h"

#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "container/criu_netlock.h"
#include "container/cgroup.h"
#include "container/checkpoint_tmpfs.h"
#include "container/console.h"
#include "container/ctr_state.h"
#include "container/netdev.h"
#include "container/rootfs.h"
#include "container/spec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define STATE_COPY "cloison-state.json"
#define DESCRIPTORS "descriptors.json"
#define STDIO_KEYS "cloison-stdio.json"
#define NETNS_KEY "extRootNetNS"

struct argv_builder
{
  char **v;
  size_t n;
};

static void
arg (struct argv_builder *a, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
arg (struct argv_builder *a, const char *fmt, ...)
{
  va_list ap;
  char *s;
  va_start (ap, fmt);
  if (vasprintf (&s, fmt, ap) < 0)
    abort ();
  va_end (ap);
  a->v = realloc (a->v, (a->n + 2) * sizeof (*a->v));
  if (a->v == NULL)
    abort ();
  a->v[a->n++] = s;
  a->v[a->n] = NULL;
}

/* Appends each of v, then frees v. */
static void
args_take (struct argv_builder *a, char **v)
{
  for (char **x = v; x && *x; x++)
    arg (a, "%s", *x);
  cl_strv_free (v);
}

static void
argv_free (struct argv_builder *a)
{
  for (size_t i = 0; i < a->n; i++)
    free (a->v[i]);
  free (a->v);
}

/* What the child that becomes CRIU does first, at restore: the tmpfs
   mounts it makes (checkpoint_tmpfs.c), the cgroup it joins (so the
   processes it restores start there, as runc does).  NULL members:
   none. */
struct criu_child
{
  json_t *tmpfs;
  struct cl_cgroup *cg;
};

/* Runs criu; its output (stdout and stderr) in *out.  `child`: NULL, or
   what its process does before it execs.  The exit status, or -1 (err
   set) when it could not run. */
static int
run_criu (const char *criu, struct argv_builder *a, const struct criu_child *child, char **out,
          cl_error_t *err)
{
  int pipefd[2], status;
  pid_t pid;
  size_t len = 0, cap = 4096;
  char *buf = cl_xmalloc0 (cap);

  *out = buf;
  if (pipe2 (pipefd, O_CLOEXEC) < 0)
    return cl_error_errno (err, "criu: pipe");
  pid = fork ();
  if (pid < 0)
    {
      close (pipefd[0]);
      close (pipefd[1]);
      return cl_error_errno (err, "criu: fork");
    }
  if (pid == 0)
    {
      dup2 (pipefd[1], 1);
      dup2 (pipefd[1], 2);
      cl_error_t e = NULL;
      if (child && child->cg && cl_ctr_cgroup_add_pid (child->cg, getpid (), &e) < 0)
        {
          fprintf (stderr, "cloison: restore: %s\n", e ? e->msg : "cgroup");
          _exit (125);
        }
      if (child && child->tmpfs && cl_ctr_ckpt_tmpfs_make (child->tmpfs) < 0)
        _exit (125);
      execvp (criu, a->v);
      fprintf (stderr, "exec: %s\n", strerror (errno));
      _exit (127);
    }
  close (pipefd[1]);
  for (;;)
    {
      if (len + 1024 > cap)
        {
          cap *= 2;
          buf = *out = realloc (buf, cap);
          if (buf == NULL)
            abort ();
        }
      ssize_t r = read (pipefd[0], buf + len, cap - len - 1);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      len += r;
    }
  buf[len] = 0;
  close (pipefd[0]);
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return cl_error_errno (err, "criu: wait");
  if (WIFEXITED (status) && WEXITSTATUS (status) == 127 && strstr (buf, "exec: "))
    return cl_error_make (err, 0, "criu `%s`: not found (install Debian's criu, or --criu PATH)",
                          criu);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* CRIU's first "Error (...)" line, or its last line: what went wrong.
   `log` (NULL: none): the log file, where CRIU writes when given one. */
static char *
criu_reason (const char *out, const char *log)
{
  cleanup_free char *text = NULL;
  size_t len;
  cl_error_t ignored = NULL;
  if (log && cl_read_file (log, &text, &len, &ignored) == 0 && strstr (text, "Error ("))
    out = text;
  cl_error_release (&ignored);
  const char *p = strstr (out, "Error (");
  if (p == NULL)
    {
      p = out + strlen (out);
      while (p > out && (p[-1] == '\n' || p[-1] == ' '))
        p--;
      while (p > out && p[-1] != '\n')
        p--;
    }
  size_t n = strcspn (p, "\n");
  return n ? strndup (p, n) : cl_xstrdup ("no output");
}

/* What a passed `criu check` holds for: this boot (the kernel) and this
   criu binary (its resolved path, size and mtime).  NULL: unknown. */
static char *
check_key (const char *criu)
{
  cleanup_free char *boot = NULL, *found = NULL;
  const char *path = criu;
  size_t len;
  struct stat sb;
  cl_error_t ignored = NULL;

  if (cl_read_file ("/proc/sys/kernel/random/boot_id", &boot, &len, &ignored) < 0)
    {
      cl_error_release (&ignored);
      return NULL;
    }
  boot[strcspn (boot, "\n")] = 0;
  if (strchr (criu, '/') == NULL)
    {
      const char *dirs = getenv ("PATH") ? getenv ("PATH") : "/usr/sbin:/usr/bin:/sbin:/bin";
      for (const char *d = dirs; found == NULL && *d;
           d += strcspn (d, ":") + (d[strcspn (d, ":")] != 0))
        {
          char *p = cl_strdup_printf ("%.*s/%s", (int)strcspn (d, ":"), d, criu);
          if (access (p, X_OK) == 0)
            found = p;
          else
            free (p);
        }
      path = found;
    }
  if (path == NULL || stat (path, &sb) < 0)
    return NULL;
  return cl_strdup_printf ("%s %s %lld %lld\n", boot, path, (long long)sb.st_size,
                           (long long)sb.st_mtime);
}

/* `criu check`: on kernels CRIU does not support (Debian's 3.17 on 6.18:
   its vDSO parser fails), one line saying so.  A pass is remembered in
   ROOT/criu-check (check_key): it costs a second or more under emulation,
   each checkpoint and restore would pay it. */
int
cl_ctr_criu_check (const char *criu, const char *root, cl_error_t *err)
{
  struct argv_builder a = { 0 };
  cleanup_free char *out = NULL, *key = NULL, *stamp = NULL, *seen = NULL;
  size_t len;
  cl_error_t ignored = NULL;

  if (criu == NULL)
    criu = "criu";
  key = check_key (criu);
  stamp = cl_strdup_printf ("%s/criu-check", root);
  if (key && cl_read_file (stamp, &seen, &len, &ignored) == 0 && strcmp (seen, key) == 0)
    return 0;
  cl_error_release (&ignored);
  arg (&a, "%s", criu);
  arg (&a, "check");
  int rc = run_criu (criu, &a, NULL, &out, err);
  argv_free (&a);
  if (rc < 0)
    return -1;
  if (rc != 0)
    {
      struct utsname u;
      cleanup_free char *why = criu_reason (out, NULL);
      uname (&u);
      return cl_error_make (err, 0,
                            "criu check failed on this kernel (Linux %s): %s: checkpoint/restore "
                            "is not available here",
                            u.release, why);
    }
  if (key
      && (cl_mkdir_p (root, 0700, &ignored) < 0
          || cl_write_file (stamp, key, strlen (key), 1, &ignored) < 0))
    cl_error_release (&ignored);
  return 0;
}

/* A terminal's /dev/console: a bind mount of the pty slave, whose master
   conmon holds.  CRIU's command line cannot dump a devpts bind mount
   without its master (only its RPC has --orphan-pts-master): it is
   external, and the restore binds the new pty's slave there. */
#define CONSOLE_KEY "/dev/console"

/* The spec's bind mounts and /dev/null-masked files: (destination, host
   source) pairs for CRIU's --external mnt[KEY]:VALUE.  `pid` (dump): the
   container's init, to tell masked files from masked directories (those
   are tmpfs mounts that CRIU saves itself); 0 at restore, where a key
   with no such mount in the image is not used. */
static void
external_mounts (json_t *config, const char *bundle, struct argv_builder *a, pid_t pid)
{
  bool restore = pid == 0;
  json_t *mounts = json_object_get (config, "mounts"), *m;
  size_t i;
  if (!restore && json_is_true (json_object_get (json_object_get (config, "process"), "terminal")))
    arg (a, "--external=mnt[" CONSOLE_KEY "]:" CONSOLE_KEY);
  json_array_foreach (mounts, i, m)
    {
      const char *dest = json_string_value (json_object_get (m, "destination"));
      const char *src = json_string_value (json_object_get (m, "source"));
      const char *type = json_string_value (json_object_get (m, "type"));
      json_t *opts = json_object_get (m, "options"), *o;
      size_t k;
      bool bind = type && strcmp (type, "bind") == 0;
      json_array_foreach (opts, k, o)
        {
          const char *s = json_string_value (o);
          bind |= s && (strcmp (s, "bind") == 0 || strcmp (s, "rbind") == 0);
        }
      if (!bind || dest == NULL || src == NULL)
        continue;
      if (!restore)
        arg (a, "--external=mnt[%s]:%s", dest, dest);
      else if (src[0] == '/')
        arg (a, "--external=mnt[%s]:%s", dest, src);
      else
        arg (a, "--external=mnt[%s]:%s/%s", dest, bundle, src);
    }
  json_t *masked = json_object_get (json_object_get (config, "linux"), "maskedPaths");
  json_array_foreach (masked, i, m)
    {
      const char *p = json_string_value (m);
      struct stat sb;
      if (p == NULL)
        continue;
      if (restore)
        arg (a, "--external=mnt[%s]:/dev/null", p);
      else
        {
          cleanup_free char *in = cl_strdup_printf ("/proc/%d/root%s", (int)pid, p);
          if (stat (in, &sb) == 0 && S_ISCHR (sb.st_mode))
            arg (a, "--external=mnt[%s]:%s", p, p);
        }
    }
}

/* At restore: CRIU's cgroup root of each hierarchy of `saved` (the new
   cgroup, in cl_ctr_cgroup_save's form): its path below the hierarchy's
   mount ("CONTROLLERS:PATH"; the unified hierarchy's unnamed). */
static void
cgroup_roots (json_t *saved, struct argv_builder *a)
{
  json_t *d;
  size_t i;
  json_array_foreach (json_object_get (saved, "dirs"), i, d)
  {
    const char *ctl = json_string_value (json_object_get (d, "controllers"));
    const char *mnt = json_string_value (json_object_get (d, "mount"));
    const char *path = json_string_value (json_object_get (d, "path"));
    size_t n = mnt ? strlen (mnt) : 0;
    if (ctl == NULL || path == NULL || n == 0 || strncmp (path, mnt, n) != 0)
      continue;
    const char *rel = path[n] ? path + n : "/";
    if (*ctl)
      arg (a, "--cgroup-root=%s:%s", ctl, rel);
    else
      arg (a, "--cgroup-root=%s", rel);
  }
}

/* At dump: the container's tmpfs mounts that hold no data, kept out of
   CRIU's tar (checkpoint_tmpfs.c). */
static int
tmpfs_externals (json_t *config, pid_t pid, const char *image_dir, struct argv_builder *a,
                 cl_error_t *err)
{
  char **v = NULL;
  if (cl_ctr_ckpt_tmpfs_dump (config, pid, image_dir, &v, err) < 0)
    return -1;
  args_take (a, v);
  return 0;
}

/* At restore, as runc: the mount points of the config's mounts made in
   the root if missing (a new rootfs, podman's restore --import, lacks the
   files the runtime created at the container's creation, e.g. the
   target of /run/.containerenv), where CRIU mounts them again.  Best
   effort: CRIU names what is still missing. */
static void
restore_mountpoints (json_t *config, const char *bundle, const char *rootfs)
{
  cleanup_close int rootfd = open (rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  json_t *m;
  size_t i;
  if (rootfd < 0)
    return;
  json_array_foreach (json_object_get (config, "mounts"), i, m)
  {
    const char *dest = json_string_value (json_object_get (m, "destination"));
    const char *src = json_string_value (json_object_get (m, "source"));
    struct stat sb;
    cl_error_t ignored = NULL;
    if (dest == NULL || strncmp (dest, "/proc/", 6) == 0 || strncmp (dest, "/sys/", 5) == 0)
      continue;
    cleanup_free char *host = src && src[0] != '/' ? cl_strdup_printf ("%s/%s", bundle, src) : NULL;
    bool dir = src == NULL || stat (host ? host : src, &sb) < 0 || S_ISDIR (sb.st_mode);
    int fd = cl_ctr_rootfs_make_target (rootfd, dest, dir, &ignored);
    if (fd >= 0)
      close (fd);
    cl_error_release (&ignored);
  }
}

/* The container's freezer cgroup (v2: its cgroup; v1: the freezer
   controller's directory), for CRIU's --freeze-cgroup as runc gives it:
   CRIU freezes the tree by the cgroup, and a tree frozen already (paused)
   is dumped and left frozen.  NULL: none recorded. */
static char *
freezer_path (json_t *doc)
{
  json_t *cg = json_object_get (doc, "cgroup"), *d;
  const char *mode = json_string_value (json_object_get (cg, "mode"));
  bool v2 = mode && strcmp (mode, "v2") == 0;
  size_t i;

  json_array_foreach (json_object_get (cg, "dirs"), i, d)
  {
    const char *path = json_string_value (json_object_get (d, "path"));
    const char *ctl = json_string_value (json_object_get (d, "controllers"));
    /* absolute paths; hybrid: v1's freezer, not the unified tree's */
    if (path && (v2 ? json_is_true (json_object_get (d, "v2")) : ctl && strstr (ctl, "freezer")))
      return cl_xstrdup (path);
  }
  return NULL;
}

/* The path of the network namespace the config joins (linux.namespaces
   `network` with a path), or NULL. */
static const char *
netns_path (json_t *config)
{
  const char *path = cl_ctr_spec_namespace_path (json_object_get (config, "linux"), "network");
  return path && *path ? path : NULL;
}

/* A network namespace the runtime made (none joined by path, none the
   caller saves itself): as runc does by default, CRIU makes a fresh one at
   restore and saves none of its configuration (`--empty-ns net`: no `ip`
   and iptables runs at dump and at restore).  The runtime configured only
   its loopback, which restore brings up again. */
static bool
own_netns (json_t *config, bool external)
{
  return !external && netns_path (config) == NULL
         && cl_ctr_spec_namespace (json_object_get (config, "linux"), "network") != NULL;
}

/* At dump: a network namespace joined by path is not the container's to
   save: external, by the inode of the one its init is in. */
static int
external_netns (json_t *config, bool external, pid_t pid, struct argv_builder *a, cl_error_t *err)
{
  struct stat sb;
  if (own_netns (config, external))
    arg (a, "--empty-ns=net");
  if (!external && netns_path (config) == NULL)
    return 0;
  cleanup_free char *ns = cl_strdup_printf ("/proc/%d/ns/net", (int)pid);
  if (stat (ns, &sb) < 0)
    return cl_error_errno (err, "checkpoint: `%s`", ns);
  arg (a, "--external=net[%llu]:" NETNS_KEY, (unsigned long long)sb.st_ino);
  return 0;
}

static int
save_json (const char *path, json_t *doc, cl_error_t *err)
{
  char *text = json_dumps (doc, JSON_COMPACT);
  int r = cl_write_file (path, text, strlen (text), 1, err);
  free (text);
  return r;
}

/* Is mount `id` one of the process's (its mount namespace's)? */
static bool
own_mount (pid_t pid, unsigned long id)
{
  cleanup_free char *path = cl_strdup_printf ("/proc/%d/mountinfo", (int)pid), *text = NULL;
  size_t len;
  cl_error_t ignored = NULL;
  if (cl_read_file (path, &text, &len, &ignored) < 0)
    {
      cl_error_release (&ignored);
      return false;
    }
  for (char *l = text; l && *l; l = strchr (l, '\n') ? strchr (l, '\n') + 1 : NULL)
    if (strtoul (l, NULL, 10) == id)
      return true;
  return false;
}

/* Linux's pty slaves: majors 136-143 (UNIX98_PTY_SLAVE_MAJOR, 8 of them) */
#define PTY_SLAVE_MAJOR 136
#define PTY_SLAVE_MAJORS 8

static bool
key_is_tty (const char *key)
{
  return key && strncmp (key, "tty[", 4) == 0;
}

/* CRIU's key of a file the process holds as `fd` on a mount that is not
   one of its own (the host's /dev/null conmon gives as stdin, a log file):
   "file[MNT_ID:INODE]"; or of a pty slave whose master is not the
   container's (conmon holds it): "tty[RDEV:DEV]", as LXC gives CRIU its
   console; unless shell_job (CRIU's own way with a terminal).  External
   at dump, inherited at restore.  NULL: none (a pipe, a socket, a file of
   the container's). */
static char *
outside_file_key (pid_t pid, int fd, bool shell_job)
{
  cleanup_free char *path = cl_strdup_printf ("/proc/%d/fd/%d", (int)pid, fd);
  cleanup_free char *info = cl_strdup_printf ("/proc/%d/fdinfo/%d", (int)pid, fd);
  cleanup_free char *text = NULL;
  cl_error_t ignored = NULL;
  struct stat sb;
  size_t len;
  const char *mnt;

  if (stat (path, &sb) < 0 || !(S_ISREG (sb.st_mode) || S_ISCHR (sb.st_mode)))
    return NULL;
  if (S_ISCHR (sb.st_mode) && major (sb.st_rdev) >= PTY_SLAVE_MAJOR
      && major (sb.st_rdev) < PTY_SLAVE_MAJOR + PTY_SLAVE_MAJORS)
    return shell_job ? NULL
                     : cl_strdup_printf ("tty[%llx:%llx]", (unsigned long long)sb.st_rdev,
                                         (unsigned long long)sb.st_dev);
  if (cl_read_file (info, &text, &len, &ignored) < 0)
    {
      cl_error_release (&ignored);
      return NULL;
    }
  mnt = strstr (text, "mnt_id:");
  if (mnt == NULL || own_mount (pid, strtoul (mnt + 7, NULL, 10)))
    return NULL;
  return cl_strdup_printf ("file[%x:%llx]", (unsigned)strtoul (mnt + 7, NULL, 10),
                           (unsigned long long)sb.st_ino);
}

/* At dump: what the init's stdio is, in descriptors.json as runc writes
   it (readlink of /proc/PID/fd/0..2: "pipe:[INODE]", "/dev/null"...),
   and in STDIO_KEYS the CRIU keys of those that are files outside the
   container (outside_file_key; null for the others), made external
   (each once: a terminal is all three). */
static int
record_stdio (pid_t pid, const char *dir, bool shell_job, struct argv_builder *a,
              cl_error_t *err)
{
  json_t *fds = json_array (), *keys = json_array ();
  for (int i = 0; i < 3; i++)
    {
      char link[64], target[4096];
      ssize_t n;
      char *key = outside_file_key (pid, i, shell_job);
      bool seen = false;
      snprintf (link, sizeof link, "/proc/%d/fd/%d", (int)pid, i);
      n = readlink (link, target, sizeof target - 1);
      target[n < 0 ? 0 : n] = 0;
      for (int j = 0; key && j < i; j++)
        seen |= strcmp (json_string_value (json_array_get (keys, j)) ?: "", key) == 0;
      json_array_append_new (fds, json_string (target));
      json_array_append_new (keys, key ? json_string (key) : json_null ());
      if (key && !seen)
        arg (a, "--external=%s", key);
      free (key);
    }
  cleanup_free char *path = cl_strdup_printf ("%s/" DESCRIPTORS, dir);
  cleanup_free char *kpath = cl_strdup_printf ("%s/" STDIO_KEYS, dir);
  int r = save_json (path, fds, err) < 0 || save_json (kpath, keys, err) < 0 ? -1 : 0;
  json_decref (fds);
  json_decref (keys);
  return r;
}

/* Descriptors the restore opened for criu to inherit (closed after it). */
struct inherited
{
  int fd[4];
  size_t n;
  int netns; /* one of fd, or -1 */
};

static void
inherited_close (struct inherited *h)
{
  for (size_t i = 0; i < h->n; i++)
    close (h->fd[i]);
  h->n = 0;
}

/* A terminal's new pty at restore: its master goes to the console socket
   (as at create), its slave is inherited by criu in the dumped slave's
   place (`key`), for the three stdio of the init that were on it. */
static int
inherit_pty (json_t *config, const struct cl_container_checkpoint_opts *o, const char *key,
             struct argv_builder *a, struct inherited *h, cl_error_t *err)
{
  int master, slave, r, index;

  if (o->console_socket == NULL)
    return cl_error_make (err, 0,
                          "restore: the checkpoint's process is on a terminal (%s):"
                          " --console-socket is required",
                          key);
  if (cl_ctr_console_open_pty ("/dev/ptmx",
                               json_object_get (json_object_get (config, "process"), "consoleSize"),
                               &master, &slave, err)
      < 0)
    return -1;
  h->fd[h->n++] = slave; /* not O_CLOEXEC: criu inherits it */
  if (ioctl (master, TIOCGPTN, &index) < 0)
    {
      close (master);
      return cl_error_errno (err, "restore: the new pty's number");
    }
  r = cl_ctr_console_send_to_socket (o->console_socket, master, err);
  close (master);
  if (r < 0)
    return -1;
  arg (a, "--inherit-fd=fd[%d]:%s", slave, key);
  arg (a, "--external=mnt[" CONSOLE_KEY "]:/dev/pts/%d", index);
  return 0;
}

/* At restore: criu inherits (no O_CLOEXEC) the network namespace at the
   new config's path for the dump's extRootNetNS, and, with stdio, our own
   stdin/stdout/stderr for the init's pipes of descriptors.json (runc does
   the same: the pipes a new conmon gave us take the dumped ones' place),
   for its files outside the container (STDIO_KEYS), and a new pty for
   its terminal (inherit_pty). */
static int
inherit_fds (json_t *config, const struct cl_container_checkpoint_opts *o, struct argv_builder *a,
             struct inherited *h, cl_error_t *err)
{
  const char *ns = o->netns ? o->netns : netns_path (config);
  const char *image_dir = o->image_path;
  if (ns)
    {
      int fd = open (ns, O_RDONLY);
      if (fd < 0)
        return cl_error_errno (err, "restore: network namespace `%s`", ns);
      h->fd[h->n++] = h->netns = fd;
      arg (a, "--inherit-fd=fd[%d]:" NETNS_KEY, fd);
    }
  if (!o->runc_compat)
    return 0;
  cleanup_free char *path = cl_strdup_printf ("%s/" DESCRIPTORS, image_dir);
  cleanup_free char *kpath = cl_strdup_printf ("%s/" STDIO_KEYS, image_dir);
  cleanup_json json_t *fds = json_load_file (path, 0, NULL);
  cleanup_json json_t *keys = json_load_file (kpath, 0, NULL);
  bool tty = false;
  for (size_t i = 0; i < 3; i++)
    {
      const char *s = json_string_value (json_array_get (fds, i));
      const char *key = json_string_value (json_array_get (keys, i));
      if (key == NULL && s && strncmp (s, "pipe:", 5) == 0)
        key = s;
      if (key == NULL || (key_is_tty (key) && tty))
        continue;
      if (key_is_tty (key))
        {
          tty = true;
          if (inherit_pty (config, o, key, a, h, err) < 0)
            return -1;
          continue;
        }
      int fd = fcntl ((int)i, F_DUPFD, 3);
      if (fd < 0)
        return cl_error_errno (err, "restore: stdio %zu (%s, %s)", i, key, path);
      h->fd[h->n++] = fd;
      arg (a, "--inherit-fd=fd[%d]:%s", fd, key);
    }
  if (o->console_socket && !tty)
    return cl_error_make (err, 0,
                          "restore: --console-socket: the checkpoint's process was not on a"
                          " terminal (%s)",
                          path);
  return 0;
}

static void
common_flags (const struct cl_container_checkpoint_opts *o, struct argv_builder *a)
{
  if (o->tcp_established)
    arg (a, "--tcp-established");
  if (o->ext_unix_sk)
    arg (a, "--ext-unix-sk");
  if (o->shell_job)
    arg (a, "--shell-job");
  if (o->file_locks)
    arg (a, "--file-locks");
  arg (a, "--manage-cgroups=%s", o->manage_cgroups_mode ? o->manage_cgroups_mode : "soft");
  for (char **x = o->extra_args; x && *x; x++)
    arg (a, "%s", *x);
}

static int
check_opts (const struct cl_container_checkpoint_opts *o, cl_error_t *err)
{
  static const char *const modes[] = { "soft", "full", "strict", "ignore", NULL };
  if (o->manage_cgroups_mode)
    {
      bool ok = false;
      for (int i = 0; modes[i]; i++)
        ok |= strcmp (o->manage_cgroups_mode, modes[i]) == 0;
      if (!ok)
        return cl_error_make (err, 0, "--manage-cgroups-mode `%s`: expected soft, full, strict "
                                      "or ignore",
                              o->manage_cgroups_mode);
    }
  if (o->image_path == NULL || *o->image_path == 0)
    return cl_error_make (err, 0, "--image-path: required");
  return 0;
}

static json_t *
load_config (const struct cl_container_checkpoint_opts *o, const char *bundle, cl_error_t *err)
{
  if (o->config)
    return json_incref (o->config);
  cleanup_free char *path = cl_strdup_printf ("%s/config.json", bundle);
  json_error_t je;
  json_t *c = json_load_file (path, 0, &je);
  if (c == NULL)
    cl_error_make (err, 0, "%s:%d:%d: %s", path, je.line, je.column, je.text);
  return c;
}

int
cl_ctr_checkpoint (const char *root, const char *id, const struct cl_container_checkpoint_opts *o,
                   cl_error_t *err)
{
  const char *criu = o->criu ? o->criu : "criu";
  struct container_state st = { 0 };
  struct argv_builder a = { 0 };
  /* every cleanup variable before the first goto */
  cleanup_free char *out = NULL, *copy = NULL, *freezer = NULL;
  json_t *config = NULL;
  struct cl_cgroup *cg = NULL;
  cl_error_t ignored = NULL;
  bool froze = false;
  int ret = -1;

  if (check_opts (o, err) < 0 || cl_ctr_criu_check (criu, root, err) < 0)
    return -1;
  if (cl_ctr_state_load (root, id, &st, err) < 0)
    return -1;
  const char *status = cl_ctr_state_status (&st);
  if (strcmp (status, "running") != 0 && strcmp (status, "paused") != 0)
    {
      cl_error_make (err, 0, "checkpoint: container `%s` is %s, not running", id, status);
      goto out;
    }
  const char *bundle = json_string_value (json_object_get (st.doc, "bundle"));
  const char *rootfs = json_string_value (json_object_get (st.doc, "rootfs"));
  config = bundle ? load_config (o, bundle, err) : NULL;
  if (config == NULL || rootfs == NULL)
    {
      if (config)
        cl_error_make (err, 0, "checkpoint: container `%s`: no rootfs in its state", id);
      goto out;
    }
  if (cl_mkdir_p (o->image_path, 0700, err) < 0
      || (o->work_path && cl_mkdir_p (o->work_path, 0700, err) < 0))
    goto out;

  arg (&a, "%s", criu);
  arg (&a, o->pre_dump ? "pre-dump" : "dump");
  arg (&a, "--tree=%d", (int)st.pid);
  arg (&a, "--images-dir=%s", o->image_path);
  arg (&a, "--work-dir=%s", o->work_path ? o->work_path : o->image_path);
  arg (&a, "--log-file=%s", o->pre_dump ? "pre-dump.log" : "dump.log");
  arg (&a, "-v4");
  arg (&a, "--root=%s", rootfs);
  if (o->parent_path)
    arg (&a, "--prev-images-dir=%s", o->parent_path);
  if (o->pre_dump || o->parent_path)
    arg (&a, "--track-mem");
  if (o->leave_running && !o->pre_dump)
    arg (&a, "--leave-running");
  freezer = freezer_path (st.doc);
  if (freezer)
    arg (&a, "--freeze-cgroup=%s", freezer);
  common_flags (o, &a);
  external_mounts (config, bundle, &a, st.pid);
  /* The tmpfs walk sees what CRIU dumps only if nothing runs in between:
     a paused container is frozen already, a running one frozen now (and
     CRIU leaves it so: thawed below).  No cgroup to freeze: CRIU's tar. */
  bool still = strcmp (status, "paused") == 0;
  json_t *saved_cg = json_object_get (st.doc, "cgroup");
  if (!o->pre_dump && !still && saved_cg && cl_ctr_cgroup_load (saved_cg, &cg, &ignored) == 0
      && cl_ctr_cgroup_freeze (cg, true, &ignored) == 0)
    froze = still = true;
  cl_error_release (&ignored);
  if ((!o->pre_dump && still && tmpfs_externals (config, st.pid, o->image_path, &a, err) < 0)
      || external_netns (config, o->external_netns, st.pid, &a, err) < 0
      || (o->runc_compat && !o->pre_dump
          && record_stdio (st.pid, o->image_path, o->shell_job, &a, err) < 0))
    goto out;
  int rc = run_criu (criu, &a, NULL, &out, err);
  if (froze && cl_ctr_cgroup_freeze (cg, false, &ignored) == 0)
    froze = false;
  cl_error_release (&ignored);
  if (rc < 0)
    goto out;
  if (rc != 0)
    {
      cleanup_free char *log
          = cl_strdup_printf ("%s/%s", o->work_path ? o->work_path : o->image_path,
                              o->pre_dump ? "pre-dump.log" : "dump.log");
      cleanup_free char *why = criu_reason (out, log);
      cl_error_make (err, 0, "criu %s of `%s` failed (see %s): %s",
                     o->pre_dump ? "pre-dump" : "dump", id, log, why);
      goto out;
    }
  /* what restore needs to bring the container back under this runtime */
  copy = cl_strdup_printf ("%s/" STATE_COPY, o->image_path);
  ret = save_json (copy, st.doc, err);
  if (ret == 0 && !o->leave_running && !o->pre_dump)
    {
      /* the processes are gone (criu killed them): as runc, the container
         goes too */
      cl_ctr_state_release (&st);
      memset (&st, 0, sizeof st);
      ret = cl_ctr_delete (root, id, true, err);
    }
out:
  if (froze && cl_ctr_cgroup_freeze (cg, false, &ignored) < 0)
    cl_error_release (&ignored);
  cl_ctr_cgroup_free (cg);
  argv_free (&a);
  json_decref (config);
  cl_ctr_state_release (&st);
  return ret;
}

int
cl_ctr_restore (const char *root, const char *id, const struct cl_container_checkpoint_opts *o,
                cl_error_t *err)
{
  const char *criu = o->criu ? o->criu : "criu";
  struct argv_builder a = { 0 };
  struct container_state st = { 0 };
  /* every cleanup variable before the first goto */
  cleanup_free char *out = NULL, *pidfile = NULL, *saved_path = NULL, *dir = NULL, *pidtext = NULL;
  cleanup_free char *new_rootfs = NULL;
  json_t *saved = NULL, *config = NULL, *tmpfs = NULL, *cg_saved = NULL;
  struct cl_cgroup *cg = NULL;
  cl_error_t ignored = NULL;
  json_error_t je;
  struct inherited inh = { .n = 0, .netns = -1 };
  int ret = -1;

  if (check_opts (o, err) < 0 || cl_ctr_criu_check (criu, root, err) < 0)
    return -1;
  saved_path = cl_strdup_printf ("%s/" STATE_COPY, o->image_path);
  saved = json_load_file (saved_path, 0, &je);
  if (saved == NULL)
    return cl_error_make (err, 0, "restore: `%s`: %s (not a cloison-runtime checkpoint?)",
                          saved_path, je.text);
  const char *bundle
      = o->bundle ? o->bundle : json_string_value (json_object_get (saved, "bundle"));
  config = bundle ? load_config (o, bundle, err) : NULL;
  /* the new config's root (podman's restore --import: another container,
     another rootfs), else the checkpointed container's */
  const char *root_path
      = json_string_value (json_object_get (json_object_get (config, "root"), "path"));
  if (o->rootfs == NULL && o->bundle && root_path)
    new_rootfs = root_path[0] == '/' ? cl_xstrdup (root_path)
                                     : cl_strdup_printf ("%s/%s", bundle, root_path);
  const char *rootfs = o->rootfs    ? o->rootfs
                       : new_rootfs ? new_rootfs
                                    : json_string_value (json_object_get (saved, "rootfs"));
  if (config == NULL || rootfs == NULL)
    {
      if (config)
        cl_error_make (err, 0, "restore: `%s`: no rootfs", saved_path);
      goto out;
    }
  if (cl_ctr_state_dir_create (root, id, &dir, err) < 0)
    goto out;
  pidfile = cl_strdup_printf ("%s/criu.pid", dir);
  arg (&a, "%s", criu);
  arg (&a, "restore");
  arg (&a, "--images-dir=%s", o->image_path);
  arg (&a, "--work-dir=%s", o->work_path ? o->work_path : o->image_path);
  arg (&a, "--log-file=restore.log");
  arg (&a, "-v4");
  arg (&a, "--root=%s", rootfs);
  arg (&a, "--restore-detached");
  arg (&a, "--restore-sibling");
  arg (&a, "--pidfile=%s", pidfile);
  common_flags (o, &a);
  bool own_ns = own_netns (config, o->netns != NULL);
  if (own_ns)
    arg (&a, "--empty-ns=net");
  external_mounts (config, bundle, &a, 0);
  if (o->runc_compat)
    restore_mountpoints (config, bundle, rootfs);
  if (inherit_fds (config, o, &a, &inh, err) < 0)
    goto fail;
  char **targs = NULL;
  if (cl_ctr_ckpt_tmpfs_plan (o->image_path, dir, &tmpfs, &targs, err) < 0)
    goto fail;
  args_take (&a, targs);
  /* as runc: the restored processes go into the cgroup of this config
     (its cgroupsPath and resources, made here), not the dumped one's (a
     moved container's is named after the destination's instance) */
  if (cl_ctr_cgroup_enter (id, json_object_get (config, "linux"), 0, &cg, err) < 0)
    goto fail;
  cg_saved = cl_ctr_cgroup_save (cg);
  cgroup_roots (cg_saved, &a);
  struct criu_child child = { .tmpfs = tmpfs, .cg = cg };
  int rc = run_criu (criu, &a, &child, &out, err);
  cl_ctr_ckpt_tmpfs_done (tmpfs);
  if (rc == 0 && inh.netns >= 0)
    {
      /* the network lock of the dump, which criu 3.17 leaves there */
      int r = cl_ctr_criu_unlock_netns (inh.netns,
                                        (pid_t)json_integer_value (json_object_get (saved, "pid")));
      if (r < 0)
        cl_warn ("restore of `%s`: criu's network lock could stay in its network "
                 "namespace: %s",
                 id, strerror (-r));
    }
  inherited_close (&inh);
  if (rc < 0)
    goto fail;
  if (rc != 0)
    {
      cleanup_free char *log = cl_strdup_printf (
          "%s/restore.log", o->work_path ? o->work_path : o->image_path);
      cleanup_free char *why = criu_reason (out, log);
      cl_error_make (err, 0, "criu restore of `%s` failed (see %s): %s", id, log, why);
      goto fail;
    }
  size_t plen;
  if (cl_read_file (pidfile, &pidtext, &plen, err) < 0)
    goto fail;
  unlink (pidfile);
  st.id = cl_xstrdup (id);
  st.dir = steal_pointer (&dir);
  st.doc = json_deep_copy (saved);
  json_object_set (st.doc, "cgroup", cg_saved);
  st.pid = atoi (pidtext);
  st.pid_start = cl_proc_start_time (st.pid);
  if (own_ns)
    {
      int r = cl_ctr_netdev_loopback_up_in (st.pid);
      if (r < 0)
        cl_warn ("restore of `%s`: `lo` of its network namespace stays down: %s", id,
                 strerror (-r));
    }
  json_object_set_new (st.doc, "id", json_string (id));
  json_object_set_new (st.doc, "bundle", json_string (bundle));
  json_object_set_new (st.doc, "rootfs", json_string (rootfs));
  if (cl_ctr_state_save (&st, err) < 0)
    goto out;
  if (o->pid_file)
    {
      cleanup_free char *t = cl_strdup_printf ("%d", (int)st.pid);
      if (cl_write_file (o->pid_file, t, strlen (t), 1, err) < 0)
        goto out;
    }
  ret = 0;
  goto out;
fail:
  cl_ctr_ckpt_tmpfs_done (tmpfs);
  if (cg && cl_ctr_cgroup_destroy (cg, &ignored) < 0)
    cl_error_release (&ignored);
  if (dir)
    {
      cl_error_t e = NULL;
      if (cl_ctr_state_dir_remove (dir, &e) < 0)
        cl_error_release (&e);
    }
out:
  inherited_close (&inh);
  argv_free (&a);
  json_decref (saved);
  json_decref (config);
  json_decref (tmpfs);
  json_decref (cg_saved);
  cl_ctr_cgroup_free (cg);
  cl_ctr_state_release (&st);
  return ret;
}
