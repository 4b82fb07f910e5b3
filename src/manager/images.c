/* Image resolution for instances.  Until the image store is linked in,
   the one image known is the built-in `busybox`, made once per state root
   from Debian's busybox-static (ROOT/manager/busybox/rootfs). */
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/images.h"
#include "manager/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUSYBOX_BINARY "/bin/busybox"

static char **
strv_new (const char *first, ...)
{
  char **v = cl_xmalloc0 (8 * sizeof *v);
  va_list ap;
  size_t n = 0;

  va_start (ap, first);
  for (const char *s = first; s && n < 7; s = va_arg (ap, const char *))
    v[n++] = strdup (s);
  va_end (ap);
  return v;
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

void
image_free (struct mgr_image *img)
{
  if (img == NULL)
    return;
  free (img->ref);
  strv_free (img->layers);
  strv_free (img->env);
  strv_free (img->cmd);
  free (img->cwd);
  free (img->kernel);
  free (img->initrd);
  free (img->disk);
  free (img->cmdline);
  free (img);
}

void
image_freep (struct mgr_image **img)
{
  image_free (*img);
}

static int
busybox_populate (const char *dir, cl_error_t *err)
{
  static const char *const dirs[]
      = { "bin", "sbin", "etc", "dev", "proc", "sys", "tmp", "root", "home", "var/log", "run",
          "usr/bin", "usr/sbin" };
  static const char etc_passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                                   "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
  static const char etc_group[] = "root:x:0:\nnogroup:x:65534:\n";
  cleanup_free char *bin = NULL, *data = NULL, *cmd = NULL;
  cleanup_file FILE *list = NULL;
  size_t len;
  char applet[256];

  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    {
      cleanup_free char *p = cl_strdup_printf ("%s/%s", dir, dirs[i]);
      if (cl_mkdir_p (p, 0755, err) < 0)
        return -1;
    }
  {
    cleanup_free char *tmp = cl_strdup_printf ("%s/tmp", dir);
    chmod (tmp, 01777);
  }
  if (cl_read_file (BUSYBOX_BINARY, &data, &len, err) < 0)
    return cl_error_wrap (err, "built-in image `busybox` (package busybox-static)");
  bin = cl_strdup_printf ("%s/bin/busybox", dir);
  if (cl_write_file (bin, data, len, 0, err) < 0 || chmod (bin, 0755) < 0)
    return cl_error_make (err, errno, "write `%s`", bin);
  cmd = cl_strdup_printf ("%s --list", BUSYBOX_BINARY);
  list = popen (cmd, "re");
  if (list == NULL)
    return cl_error_errno (err, "run `%s`", cmd);
  while (fscanf (list, "%255s", applet) == 1)
    if (strcmp (applet, "busybox") != 0)
      {
        cleanup_free char *link = cl_strdup_printf ("%s/bin/%s", dir, applet);
        if (symlink ("busybox", link) < 0 && errno != EEXIST)
          return cl_error_errno (err, "symlink `%s`", link);
      }
  pclose (steal_pointer (&list));
  {
    cleanup_free char *p = cl_strdup_printf ("%s/etc/passwd", dir);
    cleanup_free char *g = cl_strdup_printf ("%s/etc/group", dir);
    cleanup_free char *h = cl_strdup_printf ("%s/etc/hosts", dir);
    if (cl_write_file (p, etc_passwd, strlen (etc_passwd), 0, err) < 0
        || cl_write_file (g, etc_group, strlen (etc_group), 0, err) < 0
        || cl_write_file (h, "127.0.0.1 localhost\n", 20, 0, err) < 0)
      return -1;
  }
  return 0;
}

/* Builds ROOT/manager/busybox/rootfs once; concurrent builders race
   harmlessly (the first rename wins). */
static int
busybox_rootfs (struct cl_manager *m, char **out, cl_error_t *err)
{
  cleanup_free char *base = cl_strdup_printf ("%s/manager/busybox", m->root);
  cleanup_free char *final = cl_strdup_printf ("%s/rootfs", base);
  cleanup_free char *tmp = NULL;
  struct stat st;

  if (stat (final, &st) == 0)
    {
      *out = steal_pointer (&final);
      return 0;
    }
  tmp = cl_strdup_printf ("%s/.rootfs-%d", base, (int) getpid ());
  if (cl_mkdir_p (tmp, 0755, err) < 0 || busybox_populate (tmp, err) < 0)
    {
      cl_error_t ignored = NULL;
      cl_rm_rf (tmp, &ignored);
      cl_error_release (&ignored);
      return -1;
    }
  if (rename (tmp, final) < 0)
    {
      cl_error_t ignored = NULL;
      int saved = errno;
      cl_rm_rf (tmp, &ignored);
      cl_error_release (&ignored);
      if (saved != EEXIST && saved != ENOTEMPTY)
        return cl_error_make (err, saved, "rename to `%s`", final);
    }
  *out = steal_pointer (&final);
  return 0;
}

int
image_resolve (struct cl_manager *m, const char *ref, struct mgr_image **out, cl_error_t *err)
{
  struct mgr_image *img;
  char *rootfs = NULL;

  if (strcmp (ref, "busybox") != 0 && strcmp (ref, "busybox:latest") != 0)
    return cl_error_make (err, 0, "image `%s` not found", ref);
  if (busybox_rootfs (m, &rootfs, err) < 0)
    return -1;
  img = cl_xmalloc0 (sizeof *img);
  img->ref = strdup ("busybox");
  img->layers = strv_new (rootfs, NULL);
  free (rootfs);
  img->env = strv_new ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL);
  img->cmd = strv_new ("sh", NULL);
  img->cwd = strdup ("/");
  *out = img;
  return 0;
}

int
image_use (struct cl_manager *m, const char *ref, const char *instance, cl_error_t *err)
{
  (void) m;
  (void) ref;
  (void) instance;
  (void) err;
  return 0;
}

void
image_unuse (struct cl_manager *m, const char *ref, const char *instance)
{
  (void) m;
  (void) ref;
  (void) instance;
}
