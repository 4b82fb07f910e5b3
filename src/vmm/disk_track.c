/* SPDX-License-Identifier: Apache-2.0 */
/* Disk write tracking for block migration (disk_track.h). */
#include "vmm/disk_track.h"

#include "common/util.h"
#include "vmm/vmm_vm.h"

#include <stdlib.h>

struct vm_disk *
cl_vmm_disk_track_new (int fd, uint64_t size)
{
  struct vm_disk *d = cl_xmalloc0 (sizeof (*d));
  d->fd = fd;
  d->size = size;
  d->words = ((size + VM_DISK_CHUNK - 1) / VM_DISK_CHUNK + 63) / 64;
  d->dirty = cl_xmalloc0 ((d->words ? d->words : 1) * sizeof (uint64_t));
  atomic_init (&d->track, false);
  return d;
}

void
cl_vmm_disk_track_free (struct vm_disk *d)
{
  if (d == NULL)
    return;
  free (d->dirty);
  free (d);
}

void
cl_vmm_disk_track_set (struct vm_disk *d, bool on)
{
  if (on)
    for (size_t w = 0; w < d->words; w++)
      __atomic_store_n (&d->dirty[w], 0, __ATOMIC_RELAXED);
  atomic_store (&d->track, on);
}

/* Called after the change reached the file: a migration that cleared the
   chunk's bit before this reads it again (it may have read it before the
   change), one that clears it after reads the change. */
void
cl_vmm_vm_disk_written (struct vm_disk *d, uint64_t off, uint64_t len)
{
  if (d == NULL || len == 0 || !atomic_load (&d->track))
    return;
  uint64_t first = off / VM_DISK_CHUNK, last = (off + len - 1) / VM_DISK_CHUNK;
  for (uint64_t c = first; c <= last && c / 64 < d->words; c++)
    __atomic_fetch_or (&d->dirty[c / 64], 1ull << (c % 64), __ATOMIC_SEQ_CST);
}

uint64_t
cl_vmm_disk_track_harvest (struct vm_disk *d, uint64_t *bm)
{
  uint64_t n = 0;
  for (size_t w = 0; w < d->words; w++)
    {
      bm[w] |= __atomic_exchange_n (&d->dirty[w], 0, __ATOMIC_SEQ_CST);
      n += __builtin_popcountll (bm[w]);
    }
  return n;
}
