/* SPDX-License-Identifier: Apache-2.0 */
/* The container's tmpfs mounts that hold no file data: its masked
   directories, an empty /dev/shm, /dev with its device nodes and links.
   CRIU saves each tmpfs with tar at dump and unpacks it with tar at
   restore, a process each way: under emulation, most of an idle
   container's checkpoint and restore.  For these the runtime writes a
   manifest instead (each entry's type, mode, owner, device number, link
   target and times), declares the mount external at dump, and at restore
   makes the tmpfs again with the same options, fills it from the
   manifest, and gives it to CRIU as the external mount's source.  It does
   so in the child that becomes CRIU, in a mount namespace of that child's
   own: the host never sees the mount.

   Anything else leaves the mount to CRIU: a file with data, a socket, a
   hard link, an extended attribute (or ACL), more than MAX_ENTRIES
   entries or MAX_DEPTH levels, an inode the tree does not
   reach (open but unlinked, or hidden under another mount: the count of
   inodes in use must match), a tmpfs also mounted in the runtime's own
   namespace (a bind of the host's), a mount stacked on another, and a
   container with a user namespace. */
#include "container/checkpoint_tmpfs.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "container/spec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MANIFEST "cloison-tmpfs.json"
#define KEY "cloison-tmpfs"
#define MAX_ENTRIES 4096
#define MAX_DEPTH 32

struct mount_line
{
  unsigned major, minor;
  char *root, *mp, *opts, *fstype, *super;
};

/* One line of mountinfo, split in place; false when malformed. */
static bool
parse_line (char *line, struct mount_line *m)
{
  char *save = NULL, *f;
  int n = 0, after = -1;

  memset (m, 0, sizeof *m);
  for (f = strtok_r (line, " ", &save); f; f = strtok_r (NULL, " ", &save), n++)
    {
      if (after >= 0)
        {
          if (after == 0)
            m->fstype = f;
          else if (after == 2)
            m->super = f;
          after++;
        }
      else if (n == 2 && sscanf (f, "%u:%u", &m->major, &m->minor) != 2)
        return false;
      else if (n == 3)
        m->root = f;
      else if (n == 4)
        m->mp = f;
      else if (n == 5)
        m->opts = f;
      else if (n >= 6 && strcmp (f, "-") == 0)
        after = 0;
    }
  return m->root && m->mp && m->opts && m->fstype && m->super;
}

/* The lines of /proc/PID/mountinfo (pid 0: ours), split; *text holds
   them.  The count, or -1. */
static int
read_mounts (pid_t pid, char **text, struct mount_line **out)
{
  cleanup_free char *path = pid ? cl_strdup_printf ("/proc/%d/mountinfo", (int)pid)
                                : cl_xstrdup ("/proc/self/mountinfo");
  cl_error_t ignored = NULL;
  size_t len;
  int n = 0;

  *out = NULL;
  if (cl_read_file (path, text, &len, &ignored) < 0)
    {
      cl_error_release (&ignored);
      return -1;
    }
  for (char *l = *text, *next; l && *l; l = next)
    {
      next = strchr (l, '\n');
      if (next)
        *next++ = 0;
      *out = realloc (*out, (n + 1) * sizeof **out);
      if (*out == NULL)
        abort ();
      if (parse_line (l, &(*out)[n]))
        n++;
    }
  return n;
}

struct walk
{
  dev_t dev;
  json_t *entries;
  int depth;
};

static json_t *
times (const struct timespec *t)
{
  return json_pack ("[I, I]", (json_int_t)t->tv_sec, (json_int_t)t->tv_nsec);
}

/* A manifest entry: path, type, and what `st` says of the rest. */
static json_t *
entry_of (const char *path, const char *type, const struct stat *st)
{
  return json_pack ("{s:s, s:s, s:i, s:I, s:I, s:o, s:o}", "path", path, "type", type, "mode",
                    (int)(st->st_mode & 07777), "uid", (json_int_t)st->st_uid, "gid",
                    (json_int_t)st->st_gid, "atime", times (&st->st_atim), "mtime",
                    times (&st->st_mtim));
}

static bool
has_xattrs (int at, const char *name)
{
  char path[64 + NAME_MAX];
  snprintf (path, sizeof path, "/proc/self/fd/%d/%s", at, name);
  return llistxattr (path, NULL, 0) != 0;
}

/* Appends the entries under `at` (at `rel`) to w->entries, parents
   first; false where one cannot be made again from a manifest. */
static bool
walk (struct walk *w, int at, const char *rel)
{
  int fd = openat (at, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_dir DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *de;

  if (d == NULL || w->depth >= MAX_DEPTH)
    {
      if (d == NULL && fd >= 0)
        close (fd);
      return false;
    }
  while ((de = readdir (d)))
    {
      const char *name = de->d_name;
      struct stat st;
      if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
        continue;
      if (json_array_size (w->entries) >= MAX_ENTRIES
          || fstatat (dirfd (d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return false;
      cleanup_free char *path = *rel ? cl_strdup_printf ("%s/%s", rel, name) : cl_xstrdup (name);
      if (st.st_dev != w->dev)
        {
          /* a mount point: what it covers was made by the runtime for
             that mount, an empty directory or file */
          json_array_append_new (w->entries,
                                 json_pack ("{s:s, s:s}", "path", path, "type",
                                            S_ISDIR (st.st_mode) ? "mountdir" : "mountfile"));
          continue;
        }
      const char *type = S_ISDIR (st.st_mode)    ? "dir"
                         : S_ISCHR (st.st_mode)  ? "chr"
                         : S_ISBLK (st.st_mode)  ? "blk"
                         : S_ISLNK (st.st_mode)  ? "link"
                         : S_ISFIFO (st.st_mode) ? "fifo"
                         : S_ISREG (st.st_mode)  ? "file"
                                                 : NULL;
      if (type == NULL || (!S_ISDIR (st.st_mode) && st.st_nlink != 1)
          || (S_ISREG (st.st_mode) && st.st_size != 0) || has_xattrs (dirfd (d), name))
        return false;
      json_t *e = entry_of (path, type, &st);
      json_array_append_new (w->entries, e);
      if (S_ISCHR (st.st_mode) || S_ISBLK (st.st_mode))
        json_object_set_new (e, "rdev", json_integer ((json_int_t)st.st_rdev));
      if (S_ISLNK (st.st_mode))
        {
          char target[4096];
          ssize_t n = readlinkat (dirfd (d), name, target, sizeof target - 1);
          if (n < 0)
            return false;
          target[n] = 0;
          json_object_set_new (e, "target", json_string (target));
        }
      if (S_ISDIR (st.st_mode))
        {
          cleanup_close int sub
              = openat (dirfd (d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          w->depth++;
          bool ok = sub >= 0 && walk (w, sub, path);
          w->depth--;
          if (!ok)
            return false;
        }
    }
  return true;
}

/* The manifest of the tmpfs at `m` in `pid`'s root, or NULL when it
   holds what a manifest cannot make again. */
static json_t *
record_mount (pid_t pid, const struct mount_line *m)
{
  cleanup_free char *path = cl_strdup_printf ("/proc/%d/root%s", (int)pid, m->mp);
  cleanup_close int fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat sb;
  struct statfs sf;

  if (fd < 0 || fstat (fd, &sb) < 0 || sb.st_dev != makedev (m->major, m->minor)
      || fstatfs (fd, &sf) < 0 || sf.f_files == 0 || has_xattrs (fd, "."))
    return NULL;
  struct walk w = { .dev = sb.st_dev, .entries = json_array () };
  json_array_append_new (w.entries, entry_of ("", "dir", &sb));
  /* every inode in use reached: none unlinked but open, none hidden */
  if (!walk (&w, fd, "") || (unsigned long long)(sf.f_files - sf.f_ffree)
                                != (unsigned long long)json_array_size (w.entries))
    {
      json_decref (w.entries);
      return NULL;
    }
  return json_pack ("{s:s, s:s, s:s, s:o}", "path", m->mp, "options", m->opts, "super", m->super,
                    "entries", w.entries);
}

static void
add_arg (char ***args, size_t *n, char *s)
{
  *args = realloc (*args, (*n + 2) * sizeof **args);
  if (*args == NULL)
    abort ();
  (*args)[(*n)++] = s;
  (*args)[*n] = NULL;
}

/* How many of the `n` mounts have device major:minor, or mount point mp. */
static int
count_same (const struct mount_line *v, int n, const struct mount_line *m, bool by_mp)
{
  int c = 0;
  for (int i = 0; i < n; i++)
    c += by_mp ? strcmp (v[i].mp, m->mp) == 0 : v[i].major == m->major && v[i].minor == m->minor;
  return c;
}

int
cl_ctr_ckpt_tmpfs_dump (json_t *config, pid_t pid, const char *image_dir, char ***args,
                        cl_error_t *err)
{
  cleanup_free char *text = NULL, *ours_text = NULL;
  cleanup_free struct mount_line *theirs = NULL, *ours = NULL;
  cleanup_json json_t *mounts = json_array ();
  size_t nargs = 0;

  *args = NULL;
  if (cl_ctr_spec_namespace (json_object_get (config, "linux"), "user"))
    return 0;
  int n = read_mounts (pid, &text, &theirs), nours = read_mounts (0, &ours_text, &ours);
  for (int i = 0; i < n && nours >= 0; i++)
    {
      const struct mount_line *m = &theirs[i];
      if (strcmp (m->fstype, "tmpfs") != 0 || strcmp (m->root, "/") != 0
          || strcmp (m->mp, "/") == 0 || strchr (m->mp, '\\') || count_same (theirs, n, m, true) > 1
          || count_same (theirs, n, m, false) > 1 || count_same (ours, nours, m, false) > 0)
        continue;
      json_t *rec = record_mount (pid, m);
      if (rec == NULL)
        continue;
      json_array_append_new (mounts, rec);
      add_arg (args, &nargs, cl_strdup_printf ("--external=mnt[%s]:" KEY "%s", m->mp, m->mp));
    }
  cleanup_free char *path = cl_strdup_printf ("%s/" MANIFEST, image_dir);
  if (json_array_size (mounts) == 0)
    {
      /* none of an earlier dump into the same directory */
      if (unlink (path) < 0 && errno != ENOENT)
        return cl_error_errno (err, "checkpoint: `%s`", path);
      return 0;
    }
  cleanup_json json_t *doc = json_pack ("{s:O}", "mounts", mounts);
  char *dump = json_dumps (doc, JSON_COMPACT);
  int r = cl_write_file (path, dump, strlen (dump), 1, err);
  free (dump);
  if (r < 0)
    {
      cl_strv_free (*args);
      *args = NULL;
    }
  return r;
}

/* A manifest's entry path: names joined by '/', none empty, `.` or
   `..`, its parent a directory of the manifest made before it: the
   filling never follows a link out of the new tmpfs. */
static bool
entry_path_ok (json_t *dirs, const char *path)
{
  const char *slash = strrchr (path, '/');
  const char *name = slash ? slash + 1 : path;
  cleanup_free char *parent = slash ? strndup (path, slash - path) : cl_xstrdup ("");
  return *path && *name && strcmp (name, ".") != 0 && strcmp (name, "..") != 0
         && json_object_get (dirs, parent) != NULL;
}

static int
manifest_error (const char *manifest, const char *what, cl_error_t *err)
{
  return cl_error_make (err, 0, "restore: `%s`: %s", manifest, what);
}

int
cl_ctr_ckpt_tmpfs_plan (const char *image_dir, const char *dir, json_t **plan, char ***args,
                        cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("%s/" MANIFEST, image_dir);
  json_error_t je;
  json_t *m;
  size_t i, nargs = 0;

  *plan = NULL;
  *args = NULL;
  if (access (path, F_OK) < 0 && errno == ENOENT)
    return 0;
  cleanup_json json_t *doc = json_load_file (path, 0, &je);
  json_t *mounts = json_object_get (doc, "mounts");
  if (doc == NULL)
    return cl_error_make (err, 0, "restore: %s:%d:%d: %s", path, je.line, je.column, je.text);
  if (!json_is_array (mounts))
    return manifest_error (path, "`mounts`: not an array", err);
  json_array_foreach (mounts, i, m)
  {
    const char *mp = json_string_value (json_object_get (m, "path"));
    json_t *entries = json_object_get (m, "entries"), *e;
    cleanup_json json_t *dirs = json_pack ("{s:b}", "", 1);
    size_t k;
    if (mp == NULL || mp[0] != '/' || !json_is_string (json_object_get (m, "options"))
        || !json_is_string (json_object_get (m, "super")) || !json_is_array (entries)
        || json_array_size (entries) == 0 || json_array_size (entries) > MAX_ENTRIES)
      return manifest_error (path, "a mount without path, options, super or entries", err);
    json_array_foreach (entries, k, e)
    {
      const char *p = json_string_value (json_object_get (e, "path"));
      const char *t = json_string_value (json_object_get (e, "type"));
      if (p == NULL || t == NULL || (k == 0) != (*p == 0) || (k > 0 && !entry_path_ok (dirs, p)))
        return manifest_error (path, "an entry's path is not below its mount", err);
      if (strcmp (t, "dir") == 0 || strcmp (t, "mountdir") == 0)
        json_object_set_new (dirs, p, json_true ());
    }
  }
  json_array_foreach (mounts, i, m)
  {
    cleanup_free char *scratch = cl_strdup_printf ("%s/tmpfs-%zu", dir, i);
    if (mkdir (scratch, 0700) < 0 && errno != EEXIST)
      {
        cl_error_errno (err, "restore: `%s`", scratch);
        cl_ctr_ckpt_tmpfs_done (doc);
        cl_strv_free (*args);
        *args = NULL;
        return -1;
      }
    json_object_set_new (m, "scratch", json_string (scratch));
    add_arg (args, &nargs,
             cl_strdup_printf ("--external=mnt[" KEY "%s]:%s",
                               json_string_value (json_object_get (m, "path")), scratch));
  }
  *plan = json_incref (doc);
  return 0;
}

void
cl_ctr_ckpt_tmpfs_done (json_t *plan)
{
  json_t *m;
  size_t i;
  json_array_foreach (json_object_get (plan, "mounts"), i, m)
  {
    const char *scratch = json_string_value (json_object_get (m, "scratch"));
    if (scratch)
      rmdir (scratch);
  }
}

/* mountinfo's per-mount options -> MS_* flags; *ro: read-only. */
static unsigned long
mount_flags (const char *opts, bool *ro)
{
  static const struct
  {
    const char *name;
    unsigned long flag;
  } known[] = { { "nosuid", MS_NOSUID },     { "nodev", MS_NODEV },         { "noexec", MS_NOEXEC },
                { "noatime", MS_NOATIME },   { "nodiratime", MS_NODIRATIME }, { "relatime", MS_RELATIME } };
  cleanup_free char *copy = cl_xstrdup (opts);
  char *save = NULL;
  unsigned long flags = 0;

  *ro = false;
  for (char *o = strtok_r (copy, ",", &save); o; o = strtok_r (NULL, ",", &save))
    {
      *ro |= strcmp (o, "ro") == 0;
      for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp (o, known[i].name) == 0)
          flags |= known[i].flag;
    }
  if (!(flags & (MS_NOATIME | MS_RELATIME)))
    flags |= MS_STRICTATIME;
  return flags;
}

/* mountinfo's super options -> tmpfs's mount data (less rw/ro); *ro. */
static char *
mount_data (const char *super, bool *ro)
{
  cleanup_free char *copy = cl_xstrdup (super);
  char *save = NULL, *data = cl_xstrdup ("");
  *ro = false;
  for (char *o = strtok_r (copy, ",", &save); o; o = strtok_r (NULL, ",", &save))
    {
      if (strcmp (o, "ro") == 0)
        *ro = true;
      if (strcmp (o, "ro") == 0 || strcmp (o, "rw") == 0 || strcmp (o, "seclabel") == 0)
        continue;
      char *next = cl_strdup_printf ("%s%s%s", data, *data ? "," : "", o);
      free (data);
      data = next;
    }
  return data;
}

static int
make_entry (int root, json_t *e)
{
  const char *p = json_string_value (json_object_get (e, "path"));
  const char *t = json_string_value (json_object_get (e, "type"));
  mode_t mode = (mode_t)json_integer_value (json_object_get (e, "mode")) & 07777;
  dev_t rdev = (dev_t)json_integer_value (json_object_get (e, "rdev"));
  int r;

  if (*p == 0)
    r = 0; /* the mount's root */
  else if (strcmp (t, "dir") == 0 || strcmp (t, "mountdir") == 0)
    r = mkdirat (root, p, strcmp (t, "dir") == 0 ? mode : 0755);
  else if (strcmp (t, "chr") == 0 || strcmp (t, "blk") == 0 || strcmp (t, "fifo") == 0)
    r = mknodat (root, p,
                 mode | (t[0] == 'c' ? S_IFCHR : t[0] == 'b' ? S_IFBLK : S_IFIFO), rdev);
  else if (strcmp (t, "link") == 0)
    r = symlinkat (json_string_value (json_object_get (e, "target")) ?: "", root, p);
  else if (strcmp (t, "file") == 0 || strcmp (t, "mountfile") == 0)
    {
      r = openat (root, p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  strcmp (t, "file") == 0 ? mode : 0644);
      if (r >= 0)
        r = close (r);
    }
  else
    {
      errno = EINVAL;
      return -1;
    }
  if (r < 0 || strncmp (t, "mount", 5) == 0)
    return r;
  /* the owner, then the mode (a new owner drops the set-id bits) */
  if (fchownat (root, *p ? p : ".", (uid_t)json_integer_value (json_object_get (e, "uid")),
                (gid_t)json_integer_value (json_object_get (e, "gid")), AT_SYMLINK_NOFOLLOW)
      < 0)
    return -1;
  return strcmp (t, "link") == 0 ? 0 : fchmodat (root, *p ? p : ".", mode, 0);
}

static void
set_times (int root, json_t *e)
{
  const char *p = json_string_value (json_object_get (e, "path"));
  json_t *a = json_object_get (e, "atime"), *m = json_object_get (e, "mtime");
  if (a == NULL || m == NULL)
    return;
  struct timespec ts[2] = {
    { json_integer_value (json_array_get (a, 0)), json_integer_value (json_array_get (a, 1)) },
    { json_integer_value (json_array_get (m, 0)), json_integer_value (json_array_get (m, 1)) },
  };
  utimensat (root, *p ? p : ".", ts, AT_SYMLINK_NOFOLLOW);
}

/* In the child that becomes CRIU: its one-line reason on stderr (its
   output is the runtime's error), and -1. */
static int
fail (const char *mp, const char *what, const char *path)
{
  fprintf (stderr, "cloison: restore: tmpfs %s: %s%s%s: %s\n", mp, what, path ? " " : "",
           path ? path : "", strerror (errno));
  return -1;
}

static int
make_mount (json_t *m)
{
  const char *mp = json_string_value (json_object_get (m, "path"));
  const char *scratch = json_string_value (json_object_get (m, "scratch"));
  json_t *entries = json_object_get (m, "entries"), *e;
  bool ro_mnt, ro_sb;
  unsigned long flags = mount_flags (json_string_value (json_object_get (m, "options")), &ro_mnt);
  cleanup_free char *data = mount_data (json_string_value (json_object_get (m, "super")), &ro_sb);
  size_t i;

  if (mount ("tmpfs", scratch, "tmpfs", flags, data) < 0)
    return fail (mp, "mount with", data);
  cleanup_close int root = open (scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return fail (mp, "open", scratch);
  json_array_foreach (entries, i, e)
  {
    if (make_entry (root, e) < 0)
      return fail (mp, "make", json_string_value (json_object_get (e, "path")));
  }
  json_array_foreach (entries, i, e)
    set_times (root, e);
  if ((ro_sb && mount (NULL, scratch, NULL, MS_REMOUNT | MS_RDONLY | flags, NULL) < 0)
      || (ro_mnt && mount (NULL, scratch, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL) < 0))
    return fail (mp, "make read-only", NULL);
  return 0;
}

int
cl_ctr_ckpt_tmpfs_make (json_t *plan)
{
  json_t *mounts = json_object_get (plan, "mounts"), *m;
  size_t i;

  if (json_array_size (mounts) == 0)
    return 0;
  umask (0);
  if (unshare (CLONE_NEWNS) < 0 || mount (NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    return fail ("mounts", "a mount namespace of their own", NULL);
  json_array_foreach (mounts, i, m)
  {
    if (make_mount (m) < 0)
      return -1;
  }
  return 0;
}
