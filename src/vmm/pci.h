/* SPDX-License-Identifier: Apache-2.0 */
/* PCI: a host bridge on configuration mechanism #1 (ports 0xCF8/0xCFC),
   bus 0, one function per device.  The core owns config-space semantics
   (read-only fields, BAR sizing and relocation, the capability list);
   devices supply BAR handlers and hear about config writes. */
#ifndef CLOISON_VMM_PCI_H
#define CLOISON_VMM_PCI_H

#include "common/error.h"

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct pci_device;

#define PCI_NUM_BARS 6

struct pci_bar
{
  uint64_t size; /* power of two, 0: BAR unused */
  bool is_pio;   /* I/O space rather than memory */
  bool is_64bit; /* memory BAR taking two slots */
  uint64_t addr; /* current guest address (assigned by the core, moved by the guest) */
};

struct pci_device_ops
{
  /* Accesses inside a BAR: offset from the BAR's start, len 1/2/4/8. */
  void (*bar_read) (struct pci_device *dev, int bar, uint64_t offset, void *data, unsigned len);
  void (*bar_write) (struct pci_device *dev, int bar, uint64_t offset, const void *data,
                     unsigned len);
  /* After the guest wrote config space at [offset, offset + len) (already
     stored in dev->cfg); e.g. MSI-X enable, bus master, BAR moves. */
  void (*cfg_write) (struct pci_device *dev, unsigned offset, unsigned len);
  /* Before a BAR moves (old address) and after (new), so that a device can
     re-register its ioeventfds. */
  void (*bar_moved) (struct pci_device *dev, int bar, uint64_t old_addr, uint64_t new_addr);
};

struct pci_device
{
  uint8_t cfg[256];   /* type 0 header + capabilities */
  uint8_t wmask[256]; /* bits the guest may write (set by pci core + device) */
  struct pci_bar bars[PCI_NUM_BARS];
  const struct pci_device_ops *ops;
  void *opaque;
  uint8_t slot;     /* device number on bus 0, set by cl_vmm_pci_register */
  uint8_t next_cap; /* where the next capability goes (core use) */
};

/* Fills the header fields the core manages (vendor/device ids, class). */
void cl_vmm_pci_device_init (struct pci_device *dev, uint16_t vendor, uint16_t device,
                             uint16_t subsys_vendor, uint16_t subsys_id, uint32_t class_code,
                             uint8_t revision);
/* Appends a capability (cap[0] = id, cap[1] is overwritten with the next
   pointer).  Returns its config-space offset, or -1 if it does not fit. */
int cl_vmm_pci_add_capability (struct pci_device *dev, const void *cap, unsigned len);
/* Gives the device a slot and assigns BAR addresses from the VMM's PCI
   windows; raises no interrupt. */
int cl_vmm_pci_register (struct vm *vm, struct pci_device *dev, cl_error_t *err);

#endif
