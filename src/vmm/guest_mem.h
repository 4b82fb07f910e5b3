/* SPDX-License-Identifier: Apache-2.0 */
/* Guest physical memory as the VMM sees it.  Every address or length that
   comes from the guest (descriptor tables, buffers, boot structures read
   back) goes through cl_vmm_guest_mem_ptr(), the one bounds check at the guest
   boundary. */
#ifndef CLOISON_VMM_GUEST_MEM_H
#define CLOISON_VMM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 4

struct guest_mem_region
{
  uint64_t gpa;  /* guest physical start */
  uint64_t size; /* bytes */
  uint8_t *host; /* where it is mapped in the VMM */
  /* While a migration runs: one bit per 4 KiB page the VMM itself wrote
     (virtio rings and buffers), which KVM's dirty log does not see. */
  uint64_t *dirty;
};

struct guest_mem
{
  struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
  int nregions;
  int dirty_log; /* non-zero: the VMM's writes are recorded in `dirty` */
};

/* Host pointer for [gpa, gpa + len) when that range lies inside one region,
   NULL otherwise (including on overflow).  len 0 is allowed. */
void *cl_vmm_guest_mem_ptr (const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* Copies; false when the range is not all guest memory. */
bool cl_vmm_guest_mem_read (const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len);
bool cl_vmm_guest_mem_write (const struct guest_mem *mem, uint64_t gpa, const void *src,
                             uint64_t len);
/* Records that the VMM wrote [host, host + len) (a pointer from
   cl_vmm_guest_mem_ptr), for a migration in progress; nothing otherwise. */
void cl_vmm_guest_mem_mark_dirty (const struct guest_mem *mem, const void *host, uint64_t len);

#endif
