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
  return true;
}
