/* SPDX-License-Identifier: Apache-2.0 */
/* A cache of warm templates: a directory of KEY/ snapshots (16 hex
   digits), each with KEY.lock and maybe KEY.failed.log beside it, and a
   cap (DIR/cap, a size; TEMPLATE_CACHE_CAP without).  The VM instances'
   cache (ROOT/manager/vm-templates, mgr_vm_template.c) and the
   VM-isolated containers' (STATE_ROOT/.templates, vm_container.c) are
   two of them: a build prunes the one it went into. */
#include "manager/template_cache.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *
cl_mgr_template_key_files (const char *kernel, const char *initrd, cl_error_t *err)
{
  struct stat ks, is, xs;

  if (stat (kernel, &ks) < 0 || stat (initrd, &is) < 0)
    {
      cl_error_errno (err, "the VM's kernel or initramfs");
      return NULL;
    }
  if (stat ("/proc/self/exe", &xs) < 0)
    {
      cl_error_errno (err, "this program (/proc/self/exe)");
      return NULL;
    }
  return cl_strdup_printf ("%s:%lld:%lld|%s:%lld:%lld|vmm:%lld:%lld", kernel, (long long)ks.st_size,
                           (long long)ks.st_mtime, initrd, (long long)is.st_size,
                           (long long)is.st_mtime, (long long)xs.st_size, (long long)xs.st_mtime);
}

/* Bytes the template takes on disk. */
static uint64_t
template_size (const char *tdir)
{
  cleanup_dir DIR *d = opendir (tdir);
  struct dirent *e;
  uint64_t sum = 0;

  while (d && (e = readdir (d)))
    {
      struct stat st;
      if (fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG (st.st_mode))
        sum += (uint64_t)st.st_blocks * 512;
    }
  return sum;
}

static bool
template_name (const char *n)
{
  return strlen (n) == 16 && strspn (n, "0123456789abcdef") == 16;
}

/* The templates of the cache `dir`. */
json_t *
cl_mgr_template_cache_list (const char *dir)
{
  cleanup_dir DIR *d = opendir (dir);
  json_t *arr = json_array ();
  struct dirent *e;

  while (d && (e = readdir (d)))
    {
      cleanup_free char *path = NULL;
      struct stat st;
      if (!template_name (e->d_name))
        continue;
      path = cl_strdup_printf ("%s/%s", dir, e->d_name);
      if (stat (path, &st) < 0 || !S_ISDIR (st.st_mode))
        continue;
      /* the directory's mtime: its last use (touched by every clone) */
      json_array_append_new (arr, json_pack ("{s:s, s:I, s:I}", "name", e->d_name, "size",
                                             (json_int_t)template_size (path), "used",
                                             (json_int_t)st.st_mtime));
    }
  return arr;
}

int
cl_mgr_template_cache_remove (const char *dir, const char *name, cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("%s/%s", dir, name);
  cleanup_free char *lock = cl_strdup_printf ("%s.lock", path);
  cleanup_free char *failed = cl_strdup_printf ("%s.failed.log", path);

  if (!template_name (name) || access (path, F_OK) < 0)
    return cl_error_raise (err, CL_ERR_NOT_FOUND, "template `%s` not found", name);
  /* a clone that restores it meanwhile keeps its mapping of the files */
  if (cl_rm_rf (path, err) < 0)
    return -1;
  unlink (lock);
  unlink (failed);
  return 0;
}

int
cl_mgr_template_cache_cap (const char *dir, uint64_t *cap, cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("%s/cap", dir);
  cleanup_free char *text = NULL;
  size_t len;
  cl_error_t e = NULL;

  *cap = TEMPLATE_CACHE_CAP;
  if (cl_read_file (path, &text, &len, &e) < 0)
    {
      cl_error_release (&e);
      return 0;
    }
  text[strcspn (text, "\n")] = '\0';
  if (cl_parse_size (text, path, cap, err) < 0)
    return -1;
  return 0;
}

int
cl_mgr_template_cache_prune (const char *dir, const char *keep, cl_error_t *err)
{
  cleanup_json json_t *list = NULL;
  uint64_t cap, total = 0;
  size_t i;
  json_t *t;

  if (cl_mgr_template_cache_cap (dir, &cap, err) < 0)
    return -1;
  list = cl_mgr_template_cache_list (dir);
  json_array_foreach (list, i, t) total
      += (uint64_t)json_integer_value (json_object_get (t, "size"));
  while (total > cap)
    {
      json_t *oldest = NULL;
      const char *kb = keep ? strrchr (keep, '/') : NULL;
      json_array_foreach (list, i, t)
      {
        const char *n = json_string_value (json_object_get (t, "name"));
        if ((kb && strcmp (kb + 1, n) == 0) || json_object_get (t, "gone"))
          continue;
        if (oldest == NULL
            || json_integer_value (json_object_get (t, "used"))
                   < json_integer_value (json_object_get (oldest, "used")))
          oldest = t;
      }
      if (oldest == NULL)
        break;
      if (cl_mgr_template_cache_remove (dir, json_string_value (json_object_get (oldest, "name")), err) < 0)
        return -1;
      cl_debug ("template cache over %llu bytes: removed `%s`", (unsigned long long)cap,
                json_string_value (json_object_get (oldest, "name")));
      total -= (uint64_t)json_integer_value (json_object_get (oldest, "size"));
      json_object_set_new (oldest, "gone", json_true ());
    }
  return 0;
}

