/* SPDX-License-Identifier: Apache-2.0 */
/* What the guest changes on its disks while a block migration runs
   (docs/migration.md): one bit per 64 KiB chunk of the image, set by the
   device once the change is in the file, taken by the migration thread.
   The device writes from the I/O thread, the migration reads from its
   own: the bits are atomic, the bitmap lives as long as the VM. */
#ifndef CLOISON_VMM_DISK_TRACK_H
#define CLOISON_VMM_DISK_TRACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_DISK_CHUNK (64u * 1024u)

struct vm_disk
{
  int fd;        /* the image: the device's own descriptor */
  uint64_t size; /* bytes */
  _Atomic bool track;
  size_t words;    /* of dirty */
  uint64_t *dirty; /* one bit per VM_DISK_CHUNK, while track is set */
};

struct vm_disk *cl_vmm_disk_track_new (int fd, uint64_t size);
void cl_vmm_disk_track_free (struct vm_disk *d);
/* Tracking on (bitmap cleared first) or off. */
void cl_vmm_disk_track_set (struct vm_disk *d, bool on);
/* ORs the chunks changed since the last call into bm (d->words words),
   clearing them; returns how many chunks bm holds now. */
uint64_t cl_vmm_disk_track_harvest (struct vm_disk *d, uint64_t *bm);

#endif
