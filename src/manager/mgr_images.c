/* SPDX-License-Identifier: Apache-2.0 */
/* Image resolution for instances, over the image store (src/image). */
#include "common/cleanup.h"
#include "common/util.h"
#include "image/image.h"
#include "manager/mgr_images.h"
#include "manager/mgr_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
cl_mgr_image_free (struct mgr_image *img)
{
  if (img == NULL)
    return;
  free (img->ref);
  free (img->id);
  cl_strv_free (img->layers);
  cl_strv_free (img->env);
  cl_strv_free (img->cmd);
  free (img->cwd);
  free (img->kernel);
  free (img->initrd);
  free (img->disk);
  free (img->cmdline);
  free (img);
}

void
cl_mgr_image_freep (struct mgr_image **img)
{
  cl_mgr_image_free (*img);
}

static void
store_closep (struct cl_image_store **s)
{
  cl_img_store_close (*s);
}
#define cleanup_store __attribute__ ((cleanup (store_closep)))

static int
store_open (struct cl_manager *m, struct cl_image_store **out, cl_error_t *err)
{
  return cl_img_store_open_with_db (m->root, m->db, out, err);
}

static char **
strv_dup (char **v, size_t extra)
{
  size_t n = 0;
  char **d;
  while (v && v[n])
    n++;
  d = cl_xmalloc0 ((n + extra + 1) * sizeof *d);
  for (size_t i = 0; i < n; i++)
    d[i] = cl_xstrdup (v[i]);
  return d;
}

int
cl_mgr_image_resolve (struct cl_manager *m, const char *ref, struct mgr_image **out,
                      cl_error_t *err)
{
  cleanup_store struct cl_image_store *store = NULL;
  struct cl_image *ci = NULL;
  struct mgr_image *img;
  size_t n_ep = 0, n_cmd = 0;

  if (store_open (m, &store, err) < 0 || cl_img_resolve (store, ref, &ci, err) < 0)
    return -1;
  img = cl_xmalloc0 (sizeof *img);
  img->ref = cl_xstrdup (ci->name ? ci->name : ci->id);
  img->id = cl_xstrdup (ci->id);
  img->layers = cl_xmalloc0 ((ci->n_layers + 1) * sizeof (char *));
  for (size_t i = 0; i < ci->n_layers; i++)
    img->layers[i] = cl_xstrdup (ci->layers[i]);
  img->env = strv_dup (ci->config.env, 0);
  /* the command is the entrypoint followed by cmd, as the OCI image spec says */
  while (ci->config.entrypoint && ci->config.entrypoint[n_ep])
    n_ep++;
  while (ci->config.cmd && ci->config.cmd[n_cmd])
    n_cmd++;
  img->cmd = strv_dup (ci->config.entrypoint, n_cmd);
  for (size_t i = 0; i < n_cmd; i++)
    img->cmd[n_ep + i] = cl_xstrdup (ci->config.cmd[i]);
  img->cwd = cl_xstrdup (ci->config.working_dir ? ci->config.working_dir : "/");
  cl_img_free (ci);
  *out = img;
  return 0;
}

int
cl_mgr_image_use (struct cl_manager *m, const char *id, const char *instance, cl_error_t *err)
{
  cleanup_store struct cl_image_store *store = NULL;

  if (store_open (m, &store, err) < 0)
    return -1;
  return cl_img_use (store, id, instance, err);
}

int
cl_mgr_image_receive (struct cl_manager *m, const char *dir, char **layers, const char *id,
                      cl_error_t *err)
{
  cleanup_store struct cl_image_store *store = NULL;
  cleanup_free char *got = NULL;

  if (store_open (m, &store, err) < 0 || cl_img_receive (store, dir, layers, &got, err) < 0)
    return -1;
  if (strcmp (got, id) != 0)
    return cl_error_make (err, 0, "the image sent is %.12s, not %.12s", got, id);
  return 0;
}

void
cl_mgr_image_unuse (struct cl_manager *m, const char *id, const char *instance)
{
  cleanup_store struct cl_image_store *store = NULL;
  cl_error_t err = NULL;

  if (store_open (m, &store, &err) < 0 || cl_img_release (store, id, instance, &err) < 0)
    cl_error_release (&err);
}

int
cl_mgr_image_vm_disk (struct cl_manager *m, struct mgr_image *img, char **path, cl_error_t *err)
{
  cleanup_store struct cl_image_store *store = NULL;
  cleanup_free char *dir = cl_strdup_printf ("%s/manager/vm-disks", m->root);
  cleanup_free char *disk = cl_strdup_printf ("%s/%s.img", dir, img->id);
  struct cl_image *ci = NULL;
  int r;

  if (access (disk, F_OK) == 0)
    {
      *path = steal_pointer (&disk);
      return 0;
    }
  if (cl_mkdir_p (dir, 0700, err) < 0 || store_open (m, &store, err) < 0
      || cl_img_resolve (store, img->id, &ci, err) < 0)
    return -1;
  /* built to a temporary then renamed by the store: concurrent launches
     of one image both succeed */
  r = cl_img_build_vm_disk (store, ci, disk, 0, err);
  cl_img_free (ci);
  if (r < 0 && access (disk, F_OK) != 0)
    return -1;
  if (r < 0)
    cl_error_release (err);
  *path = steal_pointer (&disk);
  return 0;
}
