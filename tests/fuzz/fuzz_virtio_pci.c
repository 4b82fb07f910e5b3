/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target on the virtio-PCI transport and the devices behind it:
   the input is a program of guest actions (BAR reads and writes, config
   space writes through the write mask, guest memory writes that craft
   rings and requests, I/O-thread rounds) played against virtio-blk,
   virtio-rng and virtio-console on a fake VM.  Whatever the guest does,
   the VMM must not crash, hang or touch memory it does not own. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "../unit/virtio/fake_vm.h"
#include "vmm/virtio.h"
#include "vmm/virtio_pci.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static struct vm *vm;

static void
setup (void)
{
  cl_error_t err = NULL;
  int disk = memfd_create ("fuzz-disk", 0), null = open ("/dev/null", O_WRONLY);
  char path[64];

  if (ftruncate (disk, 64 * 1024) < 0)
    abort ();
  snprintf (path, sizeof path, "/proc/self/fd/%d", disk);
  vm = fake_vm_new ();
  if (cl_vmm_virtio_blk_create (vm, path, false, "fuzz", &err) < 0
      || cl_vmm_virtio_rng_create (vm, &err) < 0
      || cl_vmm_virtio_console_create (vm, -1, null, &err) < 0)
    abort ();
}

struct reader
{
  const uint8_t *p;
  size_t left;
};

static uint64_t
take (struct reader *r, unsigned n)
{
  uint64_t v = 0;
  for (unsigned i = 0; i < n && r->left; i++, r->left--)
    v |= (uint64_t) *r->p++ << (8 * i);
  return v;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct reader r = { data, size };
  static const unsigned lens[4] = { 1, 2, 4, 8 };

  if (vm == NULL)
    setup ();
  memset (vm->ram, 0, FAKE_MEM_SIZE);
  for (int i = 0; i < vm->npci; i++)
    {
      uint64_t zero = 0;
      vm->pci[i]->ops->bar_write (vm->pci[i], 0, 0x14, &zero, 1); /* device reset */
    }
  for (unsigned steps = 0; r.left && steps < 256; steps++)
    {
      unsigned op = take (&r, 1);
      struct pci_device *dev = vm->pci[(op >> 4) % vm->npci];
      switch (op & 7)
        {
        case 0: /* BAR write */
          {
            uint64_t off = take (&r, 2) % 0x8000;
            unsigned len = lens[take (&r, 1) & 3];
            uint64_t v = take (&r, 8);
            dev->ops->bar_write (dev, 0, off, &v, len);
            break;
          }
        case 1: /* BAR read */
          {
            uint64_t off = take (&r, 2) % 0x8000, v;
            dev->ops->bar_read (dev, 0, off, &v, lens[take (&r, 1) & 3]);
            break;
          }
        case 2: /* config write, as the PCI core applies it */
          {
            unsigned off = take (&r, 1), len = lens[take (&r, 1) % 3];
            uint32_t v = take (&r, 4);
            if (off + len > 256)
              break;
            for (unsigned i = 0; i < len; i++)
              dev->cfg[off + i] = (dev->cfg[off + i] & ~dev->wmask[off + i])
                                  | ((v >> (8 * i)) & dev->wmask[off + i]);
            dev->ops->cfg_write (dev, off, len);
            break;
          }
        case 3: /* small guest memory write */
          {
            uint64_t gpa = (take (&r, 2) * 8) % FAKE_MEM_SIZE;
            uint64_t v = take (&r, 8);
            memcpy (vm->ram + gpa, &v, gpa + 8 <= FAKE_MEM_SIZE ? 8 : FAKE_MEM_SIZE - gpa);
            break;
          }
        case 4: /* a block of guest memory */
          {
            uint64_t gpa = (take (&r, 2) * 16) % FAKE_MEM_SIZE;
            size_t n = take (&r, 1);
            if (n > r.left)
              n = r.left;
            if (gpa + n > FAKE_MEM_SIZE)
              n = FAKE_MEM_SIZE - gpa;
            memcpy (vm->ram + gpa, r.p, n);
            r.p += n;
            r.left -= n;
            break;
          }
        default: /* the I/O thread runs */
          fake_vm_poll (vm);
          break;
        }
    }
  fake_vm_poll (vm);
  return 0;
}
