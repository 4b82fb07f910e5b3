/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/guest_mem.h"

#include <string.h>

void *
cl_vmm_guest_mem_ptr (const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
  uint64_t end;

  if (__builtin_add_overflow (gpa, len, &end))
    return NULL;
  for (int i = 0; i < mem->nregions; i++)
    {
      const struct guest_mem_region *r = &mem->regions[i];
      if (gpa >= r->gpa && end <= r->gpa + r->size)
        return r->host + (gpa - r->gpa);
    }
  return NULL;
}

bool
cl_vmm_guest_mem_read (const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
  void *p = cl_vmm_guest_mem_ptr (mem, gpa, len);
  if (p == NULL)
    return false;
  memcpy (dst, p, len);
  return true;
}

bool
cl_vmm_guest_mem_write (const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
  void *p = cl_vmm_guest_mem_ptr (mem, gpa, len);
  if (p == NULL)
    return false;
  memcpy (p, src, len);
  cl_vmm_guest_mem_mark_dirty (mem, p, len);
  return true;
}

void
cl_vmm_guest_mem_mark_dirty (const struct guest_mem *mem, const void *host, uint64_t len)
{
  const uint8_t *h = host;

  if (len == 0 || !__atomic_load_n (&mem->dirty_log, __ATOMIC_ACQUIRE))
    return;
  for (int i = 0; i < mem->nregions; i++)
    {
      const struct guest_mem_region *r = &mem->regions[i];
      if (r->dirty == NULL || h < r->host || h >= r->host + r->size)
        continue;
      uint64_t first = (uint64_t)(h - r->host) >> 12;
      uint64_t end = (uint64_t)(h - r->host) + len;
      uint64_t last = ((end < r->size ? end : r->size) - 1) >> 12;
      for (uint64_t p = first; p <= last; p++)
        __atomic_fetch_or (&r->dirty[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
      return;
    }
}
