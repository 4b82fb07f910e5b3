/* SPDX-License-Identifier: Apache-2.0 */
/* Where the cgroup hierarchies are (/proc/self/mountinfo) and where this
   process sits in each (/proc/self/cgroup): shared by the container's
   cgroup life cycle (cgroup.c) and the `cgroup` mounts (cgroup_mount.c). */
#include "common/cleanup.h"
#include "common/util.h"
#include "container/cgroup_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Is `name` one of the words of `list` (separated by `sep`)? */
bool
cl_ctr_list_has (const char *list, const char *name, char sep)
{
  size_t len = strlen (name);
  for (const char *p = list; p && *p;)
    {
      const char *end = strchr (p, sep);
      size_t n = end ? (size_t) (end - p) : strlen (p);
      if (n == len && strncmp (p, name, len) == 0)
        return true;
      p = end ? end + 1 : NULL;
    }
  return false;
}

static bool
is_v1_controller (const char *opt)
{
  static const char *const known[]
      = { "cpu",     "cpuacct",  "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio",
          "blkio",   "perf_event", "hugetlb", "pids", "rdma", "misc", "debug" };
  if (strncmp (opt, "name=", 5) == 0)
    return true;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp (opt, known[i]) == 0)
      return true;
  return false;
}


/* Unescapes mountinfo's octal escapes (\040 for a space) in place. */
static void
unescape (char *s)
{
  char *w = s;
  for (char *r = s; *r;)
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] && r[3])
      {
        *w++ = (char) (((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
        r += 4;
      }
    else
      *w++ = *r++;
  *w = '\0';
}

/* Reads the cgroup mounts of /proc/self/mountinfo (first mount of each
   hierarchy wins). */
int
cl_ctr_hierarchies_read (struct cl_hierarchy **out, size_t *n_out, cl_error_t *err)
{
  /* Declared before `f`, so freed after it is closed; not zeroed: only
     the bytes read touch its pages. */
  cleanup_free char *stdio_buf = malloc (1 << 16);
  cleanup_file FILE *f = fopen ("/proc/self/mountinfo", "re");
  cleanup_free char *line = NULL;
  size_t cap = 0, n = 0;
  struct cl_hierarchy *h = NULL;

  if (f == NULL)
    return cl_error_errno (err, "open `/proc/self/mountinfo`");
  /* procfs says st_blksize 1024: with stdio's default buffer each 1 KiB
     read makes the kernel walk the mount table again. */
  if (stdio_buf)
    setvbuf (f, stdio_buf, _IOFBF, 1 << 16);
  while (getline (&line, &cap, f) > 0)
    {
      char root[256], mnt[256], fstype[32], super[512];
      char *sep = strstr (line, " - ");
      struct cl_hierarchy cur = { 0 };
      bool dup = false;

      if (sep == NULL
          || sscanf (line, "%*s %*s %*s %255s %255s", root, mnt) != 2
          || sscanf (sep + 3, "%31s %*s %511s", fstype, super) != 2)
        continue;
      if (strcmp (fstype, "cgroup2") == 0)
        cur.v2 = true;
      else if (strcmp (fstype, "cgroup") != 0)
        continue;
      unescape (root);
      unescape (mnt);
      snprintf (cur.root, sizeof cur.root, "%s", root);
      snprintf (cur.mount, sizeof cur.mount, "%s", mnt);
      if (!cur.v2)
        {
          char *save = NULL;
          for (char *opt = strtok_r (super, ",", &save); opt; opt = strtok_r (NULL, ",", &save))
            if (is_v1_controller (opt))
              {
                size_t len = strlen (cur.controllers);
                snprintf (cur.controllers + len, sizeof cur.controllers - len, "%s%s",
                          len ? "," : "", opt);
              }
          if (cur.controllers[0] == '\0')
            continue;
        }
      for (size_t i = 0; i < n; i++)
        if (h[i].v2 == cur.v2 && strcmp (h[i].controllers, cur.controllers) == 0)
          dup = true;
      if (dup)
        continue;
      h = realloc (h, (n + 1) * sizeof *h);
      if (h == NULL)
        abort ();
      h[n++] = cur;
    }
  *out = h;
  *n_out = n;
  return 0;
}

enum cl_cgroup_mode
cl_ctr_hierarchies_mode (const struct cl_hierarchy *h, size_t n)
{
  bool v1 = false, v2 = false;
  for (size_t i = 0; i < n; i++)
    {
      v1 |= !h[i].v2;
      v2 |= h[i].v2;
    }
  return v1 ? (v2 ? CL_CGROUP_HYBRID : CL_CGROUP_V1) : CL_CGROUP_V2;
}

int
cl_ctr_cgroup_detect_mode (enum cl_cgroup_mode *mode, cl_error_t *err)
{
  cleanup_free struct cl_hierarchy *h = NULL;
  size_t n = 0;
  if (cl_ctr_hierarchies_read (&h, &n, err) < 0)
    return -1;
  if (n == 0)
    return cl_error_make (err, 0, "no cgroup hierarchy is mounted (see /proc/self/mountinfo)");
  *mode = cl_ctr_hierarchies_mode (h, n);
  return 0;
}


/* This process's cgroup in the hierarchy `h`, relative to the mount's root,
   found in `self_cgroup`, the text of /proc/self/cgroup (caller frees). */
char *
cl_ctr_hierarchy_own_cgroup_in (const char *self_cgroup, const struct cl_hierarchy *h)
{
  size_t rootlen = strlen (h->root);

  for (const char *line = self_cgroup; line && *line;)
    {
      const char *eol = strchrnul (line, '\n');
      const char *c1 = memchr (line, ':', (size_t) (eol - line));
      const char *c2 = c1 ? memchr (c1 + 1, ':', (size_t) (eol - c1 - 1)) : NULL;
      const char *next = *eol ? eol + 1 : eol;
      size_t ctl_len, path_len;
      const char *path;

      line = next;
      if (c2 == NULL)
        continue;
      ctl_len = (size_t) (c2 - c1 - 1);
      if (h->v2 ? ctl_len != 0
                : ctl_len != strlen (h->controllers) || strncmp (c1 + 1, h->controllers, ctl_len) != 0)
        continue;
      path = c2 + 1;
      path_len = (size_t) (eol - path);
      /* A hierarchy mounted from a sub-directory shows our path below it. */
      if (strcmp (h->root, "/") != 0 && path_len >= rootlen && strncmp (path, h->root, rootlen) == 0
          && (path_len == rootlen || path[rootlen] == '/'))
        {
          path += rootlen;
          path_len -= rootlen;
        }
      return path_len ? strndup (path, path_len) : cl_xstrdup ("/");
    }
  return cl_xstrdup ("/");
}

/* /proc/self/cgroup (caller frees; NULL when unreadable). */
char *
cl_ctr_cgroup_read_self (void)
{
  cleanup_free char *text = NULL;
  cl_error_t e = NULL;

  if (cl_read_file ("/proc/self/cgroup", &text, NULL, &e) < 0)
    {
      cl_error_release (&e);
      return NULL;
    }
  return steal_pointer (&text);
}

char *
cl_ctr_hierarchy_own_cgroup (const struct cl_hierarchy *h)
{
  cleanup_free char *text = cl_ctr_cgroup_read_self ();
  return cl_ctr_hierarchy_own_cgroup_in (text, h);
}


/* "/a//b/" + "c" joined with single slashes (caller frees). */
char *
cl_ctr_path_join_clean (const char *a, const char *b, const char *c)
{
  cleanup_free char *raw = cl_strdup_printf ("%s/%s/%s", a, b, c ? c : "");
  char *out = cl_xmalloc0 (strlen (raw) + 2), *w = out;
  for (char *r = raw; *r; r++)
    if (!(*r == '/' && w > out && w[-1] == '/'))
      *w++ = *r;
  if (w > out + 1 && w[-1] == '/')
    w--;
  *w = '\0';
  return out;
}
