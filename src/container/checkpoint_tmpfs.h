/* SPDX-License-Identifier: Apache-2.0 */
/* The container's tmpfs mounts that hold no file data, saved by the
   runtime instead of by CRIU's tar (checkpoint_tmpfs.c). */
#ifndef CLOISON_CONTAINER_CHECKPOINT_TMPFS_H
#define CLOISON_CONTAINER_CHECKPOINT_TMPFS_H

#include "common/error.h"

#include <jansson.h>
#include <sys/types.h>

/* At dump: the manifest of each such mount of `pid`'s mount namespace
   (IMAGE_DIR/cloison-tmpfs.json, none without such mounts) and, in
   *args (a NULL-ended list, NULL for none), CRIU's `--external` options
   that keep them out of the dump.  `config`: the container's; nothing
   for a container with a user namespace, or for a mount of the spec. */
int cl_ctr_ckpt_tmpfs_dump (json_t *config, pid_t pid, const char *image_dir, char ***args,
                            cl_error_t *err);

/* At restore: in *plan the manifest of IMAGE_DIR (NULL: none), with a
   scratch directory made for each mount under `dir` (the container's
   state directory), and in *args CRIU's `--external` options that name
   them. */
int cl_ctr_ckpt_tmpfs_plan (const char *image_dir, const char *dir, json_t **plan, char ***args,
                            cl_error_t *err);
/* In the child that becomes CRIU (its own mount namespace, a slave of
   ours): each mount of `plan` made and filled at its scratch directory.
   0, or -1 with a one-line reason on stderr. */
int cl_ctr_ckpt_tmpfs_make (json_t *plan);
/* The scratch directories removed (NULL plan: nothing). */
void cl_ctr_ckpt_tmpfs_done (json_t *plan);

#endif
