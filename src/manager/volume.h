/* SPDX-License-Identifier: Apache-2.0 */
/* Storage volumes: data that lives apart from any instance (OpenStack's
   volumes, docker's named volumes).  A volume is a directory
   (ROOT/volumes/NAME/data) or, with a size, an ext4 filesystem image
   (ROOT/volumes/NAME/disk.img) so that the size limit holds.

   Attached to an instance at a path: containers get a bind mount (an
   image is loop-mounted by the instance's monitor first); VMs get an image
   as a virtio-blk disk and a directory as a virtio-fs share, mounted by
   the guest's init.  Attachments take effect at the instance's next
   start.  Deleting an instance detaches its volumes and never deletes
   them; a volume is deleted only when nothing has it attached.
   Snapshots are copy-on-write (reflinks where the filesystem has them). */
#ifndef CLOISON_MANAGER_VOLUME_H
#define CLOISON_MANAGER_VOLUME_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct cl_manager;

/* size 0: a directory; else an ext4 image of that many bytes. */
int cl_mgr_volume_create (struct cl_manager *m, const char *name, uint64_t size, cl_error_t *err);
/* Array of {name, type, size, created, attachments: [{instance, path,
   readonly}], snapshots: [NAME...]}. */
int cl_mgr_volume_list (struct cl_manager *m, json_t **out, cl_error_t *err);
int cl_mgr_volume_info (struct cl_manager *m, const char *name, json_t **out, cl_error_t *err);
/* Refused while attached. */
int cl_mgr_volume_delete (struct cl_manager *m, const char *name, cl_error_t *err);
/* *pending: the instance runs, so the change applies at its next start. */
int cl_mgr_volume_attach (struct cl_manager *m, const char *name, const char *instance,
                          const char *path, bool readonly, bool *pending, cl_error_t *err);
int cl_mgr_volume_detach (struct cl_manager *m, const char *name, const char *instance,
                          bool *pending, cl_error_t *err);
int cl_mgr_volume_snapshot_create (struct cl_manager *m, const char *name, const char *snap,
                                   cl_error_t *err);
/* Refused while the volume is attached to a running instance. */
int cl_mgr_volume_snapshot_restore (struct cl_manager *m, const char *name, const char *snap,
                                    cl_error_t *err);
int cl_mgr_volume_snapshot_delete (struct cl_manager *m, const char *name, const char *snap,
                                   cl_error_t *err);
/* A new volume with a copy-on-write copy of src's data. */
int cl_mgr_volume_copy (struct cl_manager *m, const char *src, const char *dst, cl_error_t *err);

#endif
