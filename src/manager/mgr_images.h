/* SPDX-License-Identifier: Apache-2.0 */
/* The images an instance is made from, as the manager needs them: the
   ordered layer directories (overlayfs lowerdirs), the image's process
   defaults, and the VM pieces.  Behind this interface: the image store
   (src/image/image.h). */
#ifndef CLOISON_MANAGER_IMAGES_H
#define CLOISON_MANAGER_IMAGES_H

#include "common/error.h"

struct cl_manager;

struct mgr_image
{
  char *ref;     /* as stored in the instance row (a name, for people) */
  char *id;      /* the store's id: what uses and later starts refer to */
  char **layers; /* lowest first, NULL terminated */
  char **env;    /* "K=V", NULL terminated */
  char **cmd;    /* entrypoint + cmd, NULL terminated */
  char *cwd;
  /* VM pieces (NULL when the image has none) */
  char *kernel;
  char *initrd;
  char *disk;
  char *cmdline;
};

/* Error "image `REF` not found" when unknown.  REF: a name or an id. */
int cl_mgr_image_resolve (struct cl_manager *m, const char *ref, struct mgr_image **out,
                          cl_error_t *err);
void cl_mgr_image_free (struct mgr_image *img);
void cl_mgr_image_freep (struct mgr_image **img);
#define cleanup_image __attribute__ ((cleanup (cl_mgr_image_freep)))

/* Use records, so that the store refuses to remove an image in use. */
int cl_mgr_image_use (struct cl_manager *m, const char *id, const char *instance, cl_error_t *err);
void cl_mgr_image_unuse (struct cl_manager *m, const char *id, const char *instance);
/* An image sent with a moved instance (cl_img_receive); its id must be
   `id`. */
int cl_mgr_image_receive (struct cl_manager *m, const char *dir, char **layers, const char *id,
                          cl_error_t *err);
/* The image's ext4 disk for VMs, built once per image and cached
   (ROOT/manager/vm-disks/ID.img). */
int cl_mgr_image_vm_disk (struct cl_manager *m, struct mgr_image *img, char **path,
                          cl_error_t *err);

#endif
