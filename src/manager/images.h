/* The images an instance is made from, as the manager needs them: the
   ordered layer directories (overlayfs lowerdirs), the image's process
   defaults, and the VM pieces.  Behind this interface: the image store
   (src/image) when built in, else the built-in `busybox` image made here
   from busybox-static. */
#ifndef CLOISON_MANAGER_IMAGES_H
#define CLOISON_MANAGER_IMAGES_H

#include "common/error.h"

struct cl_manager;

struct mgr_image
{
  char *ref;     /* as stored in the instance row */
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

/* Error "image `REF` not found" when unknown. */
int image_resolve (struct cl_manager *m, const char *ref, struct mgr_image **out,
                   cl_error_t *err);
void image_free (struct mgr_image *img);
void image_freep (struct mgr_image **img);
#define cleanup_image __attribute__ ((cleanup (image_freep)))

/* Use records, so that the store refuses to remove an image in use. */
int image_use (struct cl_manager *m, const char *ref, const char *instance, cl_error_t *err);
void image_unuse (struct cl_manager *m, const char *ref, const char *instance);

#endif
