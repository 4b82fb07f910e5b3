/* SPDX-License-Identifier: Apache-2.0 */
#include "fake_driver.h"

#include "vmm/virtio_pci.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

uint64_t
rd (struct drv *d, uint64_t off, unsigned len)
{
  uint64_t v = 0;
  d->pci->ops->bar_read (d->pci, 0, off, &v, len);
  return v;
}

void
wr (struct drv *d, uint64_t off, uint64_t v, unsigned len)
{
  d->pci->ops->bar_write (d->pci, 0, off, &v, len);
}

void
cfg_write16 (struct drv *d, unsigned off, uint16_t v)
{
  memcpy (&d->pci->cfg[off], &v, 2);
  d->pci->ops->cfg_write (d->pci, off, 2);
}

void
find_caps (struct drv *d)
{
  for (unsigned p = d->pci->cfg[0x34]; p; p = d->pci->cfg[p + 1])
    {
      uint32_t off;
      if (d->pci->cfg[p] == 0x11)
        {
          d->msix_cap = p;
          continue;
        }
      assert_int_equal (d->pci->cfg[p], 0x09);
      memcpy (&off, &d->pci->cfg[p + 8], 4);
      switch (d->pci->cfg[p + 3])
        {
        case 1:
          d->common = off;
          break;
        case 2:
          d->notify = off;
          memcpy (&d->mult, &d->pci->cfg[p + 16], 4);
          break;
        case 3:
          d->isr = off;
          break;
        case 4:
          d->device = off;
          break;
        }
    }
}

/* Guest driver bring-up: features (VERSION_1 + `extra`), queues, MSI-X on
   (vector q+1 for queue q, 0 for config), DRIVER_OK. */
void
drv_init (struct drv *d, struct vm *vm, int index, unsigned nq, uint64_t extra)
{
  uint64_t feats;

  memset (d, 0, sizeof *d);
  d->vm = vm;
  d->pci = vm->pci[index];
  find_caps (d);
  assert_true (d->common != d->notify);
  wr (d, d->common + 0x14, 0, 1);
  wr (d, d->common + 0x14, 1 | 2, 1);
  wr (d, d->common + 0x00, 1, 4);
  feats = rd (d, d->common + 0x04, 4);
  assert_true (feats & 1); /* VERSION_1 */
  wr (d, d->common + 0x08, 0, 4);
  wr (d, d->common + 0x0c, (uint32_t) extra, 4);
  wr (d, d->common + 0x08, 1, 4);
  wr (d, d->common + 0x0c, 1 | (uint32_t) (extra >> 32), 4);
  wr (d, d->common + 0x14, 1 | 2 | 8, 1);
  assert_int_equal (rd (d, d->common + 0x14, 1), 1 | 2 | 8);
  assert_int_equal (rd (d, d->common + 0x12, 2), nq);
  /* MSI-X on, every vector unmasked with a distinct message. */
  cfg_write16 (d, d->msix_cap + 2, 0x8000 | (nq));
  for (unsigned v = 0; v <= nq; v++)
    {
      wr (d, 0x4000 + 16 * v + 0, 0xfee00000, 4);
      wr (d, 0x4000 + 16 * v + 8, 0x40 + v, 4);
      wr (d, 0x4000 + 16 * v + 12, 0, 4);
    }
  wr (d, d->common + 0x10, 0, 2);
  for (unsigned q = 0; q < nq; q++)
    {
      uint64_t base = q * 0x4000;
      d->qbase[q] = base;
      memset (vm->ram + base + DESC, 0, 0x3000);
      wr (d, d->common + 0x16, q, 2);
      assert_true (rd (d, d->common + 0x18, 2) >= QSZ);
      wr (d, d->common + 0x18, QSZ, 2);
      wr (d, d->common + 0x1a, q + 1, 2);
      assert_int_equal (rd (d, d->common + 0x1a, 2), q + 1);
      wr (d, d->common + 0x20, base + DESC, 8);
      wr (d, d->common + 0x28, base + AVAIL, 4); /* split 32-bit writes */
      wr (d, d->common + 0x2c, 0, 4);
      wr (d, d->common + 0x30, base + USED, 8);
      wr (d, d->common + 0x1c, 1, 2);
      assert_int_equal (rd (d, d->common + 0x1c, 2), 1);
    }
  wr (d, d->common + 0x14, 1 | 2 | 8 | 4, 1);
}

struct virtq_desc *
desc (struct drv *d, unsigned q, unsigned i)
{
  return (struct virtq_desc *) (d->vm->ram + d->qbase[q] + DESC) + i;
}

/* Offers descriptors 0..n-1 of queue q as one chain, without a kick. */
void
offer (struct drv *d, unsigned q, unsigned n, const uint64_t *addr, const uint32_t *len,
       const uint16_t *flags)
{
  uint16_t *avail = (uint16_t *) (d->vm->ram + d->qbase[q] + AVAIL);
  for (unsigned i = 0; i < n; i++)
    *desc (d, q, i) = (struct virtq_desc){ addr[i], len[i],
                                           flags[i] | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0), i + 1 };
  avail[2 + d->avail_idx[q] % QSZ] = 0;
  avail[1] = ++d->avail_idx[q];
}

/* Offers them and kicks. */
void
submit (struct drv *d, unsigned q, unsigned n, const uint64_t *addr, const uint32_t *len,
        const uint16_t *flags)
{
  offer (d, q, n, addr, len, flags);
  wr (d, d->notify + q * d->mult, q, 2);
  fake_vm_poll (d->vm);
}

uint16_t
used_idx (struct drv *d, unsigned q)
{
  return *(uint16_t *) (d->vm->ram + d->qbase[q] + USED + 2);
}

uint32_t
used_len (struct drv *d, unsigned q)
{
  uint16_t i = used_idx (d, q) - 1;
  return *(uint32_t *) (d->vm->ram + d->qbase[q] + USED + 4 + 8 * (i % QSZ) + 4);
}

uint64_t
interrupts (struct drv *d, unsigned vector)
{
  struct virtio_device *vd = d->pci->opaque;
  uint64_t n = 0;
  if (read (vd->vectors[vector].efd, &n, sizeof n) < 0)
    return 0;
  return n;
}
