/* SPDX-License-Identifier: Apache-2.0 */
/* MMIO and port I/O dispatch for exits that no in-kernel device took.
   Ranges are sorted; a handler runs outside the lock so that it may itself
   (re)register ranges, as a PCI BAR move does. */
#include "vmm/machine.h"

#include <stdlib.h>
#include <string.h>

static struct vm_io_space *
io_space (struct vm *vm, bool is_pio)
{
  return is_pio ? &vm->pio : &vm->mmio;
}

int
cl_vmm_vm_io_register (struct vm *vm, bool is_pio, uint64_t base, uint64_t len, vm_io_fn fn,
                       void *opaque, cl_error_t *err)
{
  struct vm_io_space *s = io_space (vm, is_pio);
  size_t i;
  int ret = 0;

  if (len == 0 || base + len < base)
    return cl_error_make (err, 0, "I/O range 0x%llx+0x%llx is empty or wraps",
                          (unsigned long long)base, (unsigned long long)len);
  pthread_rwlock_wrlock (&vm->io_lock);
  for (i = 0; i < s->n && s->ranges[i].base < base; i++)
    ;
  if ((i > 0 && s->ranges[i - 1].base + s->ranges[i - 1].len > base)
      || (i < s->n && base + len > s->ranges[i].base))
    {
      ret = cl_error_make (err, 0, "%s range 0x%llx+0x%llx overlaps another device",
                           is_pio ? "port" : "MMIO", (unsigned long long)base,
                           (unsigned long long)len);
      goto out;
    }
  if (s->n == s->cap)
    {
      s->cap = s->cap ? s->cap * 2 : 16;
      s->ranges = realloc (s->ranges, s->cap * sizeof (*s->ranges));
      if (s->ranges == NULL)
        abort ();
    }
  memmove (&s->ranges[i + 1], &s->ranges[i], (s->n - i) * sizeof (*s->ranges));
  s->ranges[i] = (struct vm_io_range){ base, len, fn, opaque };
  s->n++;
out:
  pthread_rwlock_unlock (&vm->io_lock);
  return ret;
}

void
cl_vmm_vm_io_unregister (struct vm *vm, bool is_pio, uint64_t base)
{
  struct vm_io_space *s = io_space (vm, is_pio);
  pthread_rwlock_wrlock (&vm->io_lock);
  for (size_t i = 0; i < s->n; i++)
    if (s->ranges[i].base == base)
      {
        memmove (&s->ranges[i], &s->ranges[i + 1], (s->n - i - 1) * sizeof (*s->ranges));
        s->n--;
        break;
      }
  pthread_rwlock_unlock (&vm->io_lock);
}

bool
cl_vmm_vm_io_dispatch (struct vm *vm, bool is_pio, uint64_t addr, void *data, unsigned len,
                       bool write)
{
  struct vm_io_space *s = io_space (vm, is_pio);
  struct vm_io_range found = { 0 };
  size_t lo = 0, hi;

  pthread_rwlock_rdlock (&vm->io_lock);
  hi = s->n;
  while (lo < hi)
    {
      size_t mid = (lo + hi) / 2;
      const struct vm_io_range *r = &s->ranges[mid];
      if (addr < r->base)
        hi = mid;
      else if (addr >= r->base + r->len)
        lo = mid + 1;
      else
        {
          found = *r;
          break;
        }
    }
  pthread_rwlock_unlock (&vm->io_lock);
  if (found.fn == NULL)
    return false;
  found.fn (found.opaque, addr - found.base, data, len, write);
  return true;
}
