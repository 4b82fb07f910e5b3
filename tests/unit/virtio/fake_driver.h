/* SPDX-License-Identifier: Apache-2.0 */
/* A guest virtio driver in miniature for the unit tests: it reaches a
   device through config space and BAR 0 of the fake VM, the way Linux's
   virtio_pci does, and offers chains on queues laid out in fake RAM. */
#ifndef FAKE_DRIVER_H
#define FAKE_DRIVER_H

#include "fake_vm.h"
#include "vmm/virtq.h"

#include <stdbool.h>
#include <stdint.h>

#define QSZ 16
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define BUF 0x10000

struct drv
{
  struct vm *vm;
  struct pci_device *pci;
  unsigned common, notify, isr, device, mult, msix_cap;
  uint16_t avail_idx[4];
  uint64_t qbase[4];
};

uint64_t rd (struct drv *d, uint64_t off, unsigned len);
void wr (struct drv *d, uint64_t off, uint64_t v, unsigned len);
void cfg_write16 (struct drv *d, unsigned off, uint16_t v);
void find_caps (struct drv *d);
/* Guest driver bring-up: features (VERSION_1 + `extra`), queues, MSI-X on
   (vector q+1 for queue q, 0 for config), DRIVER_OK. */
void drv_init (struct drv *d, struct vm *vm, int index, unsigned nq, uint64_t extra);
struct virtq_desc *desc (struct drv *d, unsigned q, unsigned i);
/* Offers descriptors 0..n-1 of queue q as one chain and kicks. */
void offer (struct drv *d, unsigned q, unsigned n, const uint64_t *addr, const uint32_t *len,
            const uint16_t *flags);
void submit (struct drv *d, unsigned q, unsigned n, const uint64_t *addr, const uint32_t *len,
             const uint16_t *flags);
uint16_t used_idx (struct drv *d, unsigned q);
uint32_t used_len (struct drv *d, unsigned q);
/* Interrupts raised on `vector` since the last call. */
uint64_t interrupts (struct drv *d, unsigned vector);

#endif
