/* SPDX-License-Identifier: Apache-2.0 */
/* PCI host bridge, configuration mechanism #1: config space semantics
   (write masks, BAR sizing and relocation, capability list), BAR address
   assignment from the VM's windows, BAR access dispatch, and the reset
   control register at 0xCF9 that shares the address port's dword. */
#include "vmm/pci.h"

#include "common/util.h"
#include "vmm/devices.h"
#include "vmm/machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCI_SLOTS 32
#define PCI_CFG_BAR0 0x10
#define PCI_CFG_COMMAND 0x04
#define PCI_CFG_STATUS 0x06
#define PCI_CFG_CAP_PTR 0x34
#define PCI_STATUS_CAP_LIST 0x10

struct pci_bar_ref
{
  struct pci_device *dev;
  int bar;
  bool mapped;
};

struct pci_bus
{
  struct vm *vm;
  pthread_mutex_t lock;
  uint32_t address; /* 0xCF8 */
  struct pci_device *devs[PCI_SLOTS];
  struct pci_bar_ref bars[PCI_SLOTS][PCI_NUM_BARS];
  struct pci_device host;
  uint64_t next_mmio;
  uint32_t next_pio;
};

static void
put16 (uint8_t *p, uint16_t v)
{
  memcpy (p, &v, 2);
}

static void
put32 (uint8_t *p, uint32_t v)
{
  memcpy (p, &v, 4);
}

static uint32_t
get32 (const uint8_t *p)
{
  uint32_t v;
  memcpy (&v, p, 4);
  return v;
}

void
cl_vmm_pci_device_init (struct pci_device *dev, uint16_t vendor, uint16_t device,
                        uint16_t subsys_vendor, uint16_t subsys_id, uint32_t class_code,
                        uint8_t revision)
{
  memset (dev->cfg, 0, sizeof dev->cfg);
  memset (dev->wmask, 0, sizeof dev->wmask);
  put16 (dev->cfg + 0x00, vendor);
  put16 (dev->cfg + 0x02, device);
  dev->cfg[0x08] = revision;
  dev->cfg[0x09] = class_code & 0xFF;
  dev->cfg[0x0A] = (class_code >> 8) & 0xFF;
  dev->cfg[0x0B] = (class_code >> 16) & 0xFF;
  put16 (dev->cfg + 0x2C, subsys_vendor);
  put16 (dev->cfg + 0x2E, subsys_id);
  put16 (dev->wmask + PCI_CFG_COMMAND, 0x0547); /* I/O, memory, master, parity, SERR, INTx off */
  dev->wmask[0x0C] = 0xFF;                      /* cache line size */
  dev->wmask[0x0D] = 0xFF;                      /* latency timer */
  dev->wmask[0x3C] = 0xFF;                      /* interrupt line */
  dev->next_cap = 0x40;
}

int
cl_vmm_pci_add_capability (struct pci_device *dev, const void *cap, unsigned len)
{
  unsigned off = (dev->next_cap + 3) & ~3u;
  if (len < 2 || off < 0x40 || off + len > sizeof dev->cfg)
    return -1;
  memcpy (dev->cfg + off, cap, len);
  dev->cfg[off + 1] = 0;
  if (dev->cfg[PCI_CFG_CAP_PTR] == 0)
    dev->cfg[PCI_CFG_CAP_PTR] = off;
  else
    {
      unsigned p = dev->cfg[PCI_CFG_CAP_PTR];
      while (dev->cfg[p + 1])
        p = dev->cfg[p + 1];
      dev->cfg[p + 1] = off;
    }
  dev->cfg[PCI_CFG_STATUS] |= PCI_STATUS_CAP_LIST;
  dev->next_cap = off + len;
  return off;
}

/* The address a BAR's config dword(s) hold now. */
static uint64_t
pci_bar_cfg_addr (const struct pci_device *dev, int bar)
{
  uint32_t lo = get32 (dev->cfg + PCI_CFG_BAR0 + 4 * bar);
  if (dev->bars[bar].is_pio)
    return lo & ~3u;
  uint64_t a = lo & ~0xFu;
  if (dev->bars[bar].is_64bit && bar + 1 < PCI_NUM_BARS)
    a |= (uint64_t)get32 (dev->cfg + PCI_CFG_BAR0 + 4 * (bar + 1)) << 32;
  return a;
}

static void
pci_bar_io (void *opaque, uint64_t offset, void *data, unsigned len, bool write)
{
  struct pci_bar_ref *ref = opaque;
  struct pci_device *dev = ref->dev;
  if (write)
    {
      if (dev->ops && dev->ops->bar_write)
        dev->ops->bar_write (dev, ref->bar, offset, data, len);
    }
  else if (dev->ops && dev->ops->bar_read)
    dev->ops->bar_read (dev, ref->bar, offset, data, len);
  else
    memset (data, 0xFF, len);
}

static int
pci_bar_map (struct pci_bus *bus, struct pci_device *dev, int bar, cl_error_t *err)
{
  struct pci_bar_ref *ref = &bus->bars[dev->slot][bar];
  ref->dev = dev;
  ref->bar = bar;
  if (cl_vmm_vm_io_register (bus->vm, dev->bars[bar].is_pio, dev->bars[bar].addr,
                             dev->bars[bar].size, pci_bar_io, ref, err)
      < 0)
    return -1;
  ref->mapped = true;
  return 0;
}

/* After a BAR write: follow the guest's new address (sizing writes of all
   ones are not moves). */
static void
pci_bar_follow (struct pci_bus *bus, struct pci_device *dev, int bar)
{
  uint64_t old = dev->bars[bar].addr;
  uint64_t now = pci_bar_cfg_addr (dev, bar);
  struct pci_bar_ref *ref = &bus->bars[dev->slot][bar];
  if (now == old)
    return;
  if (ref->mapped)
    cl_vmm_vm_io_unregister (bus->vm, dev->bars[bar].is_pio, old);
  ref->mapped = false;
  dev->bars[bar].addr = now;
  if (now != 0)
    {
      cl_error_t err = NULL;
      if (pci_bar_map (bus, dev, bar, &err) < 0)
        {
          /* an overlapping address: the BAR stays unmapped, as on real
             hardware with a conflict */
          cl_vmm_vm_metric_add (bus->vm, "pci", "bar_conflicts", 1);
          cl_error_release (&err);
        }
    }
  if (dev->ops && dev->ops->bar_moved)
    dev->ops->bar_moved (dev, bar, old, now);
}

static int
pci_bar_of_offset (const struct pci_device *dev, unsigned off)
{
  if (off < PCI_CFG_BAR0 || off >= PCI_CFG_BAR0 + 4 * PCI_NUM_BARS)
    return -1;
  int bar = (off - PCI_CFG_BAR0) / 4;
  if (bar > 0 && dev->bars[bar].size == 0 && dev->bars[bar - 1].is_64bit)
    return bar - 1;
  return dev->bars[bar].size ? bar : -1;
}

static struct pci_device *
pci_selected (struct pci_bus *bus, unsigned *reg)
{
  uint32_t a = bus->address;
  if (!(a & 0x80000000u) || ((a >> 16) & 0xFF) != 0 || ((a >> 8) & 7) != 0)
    return NULL;
  *reg = a & 0xFC;
  return bus->devs[(a >> 11) & 0x1F];
}

void
cl_vmm_pci_config_write (struct pci_bus *bus, struct pci_device *dev, unsigned off,
                         const uint8_t *data, unsigned len)
{
  bool all_ones = true;
  for (unsigned i = 0; i < len && off + i < sizeof dev->cfg; i++)
    {
      uint8_t m = dev->wmask[off + i];
      dev->cfg[off + i] = (dev->cfg[off + i] & ~m) | (data[i] & m);
      all_ones &= data[i] == 0xFF;
    }
  int bar = pci_bar_of_offset (dev, off);
  if (bar >= 0 && !all_ones)
    pci_bar_follow (bus, dev, bar);
  if (dev->ops && dev->ops->cfg_write)
    dev->ops->cfg_write (dev, off, len);
}

static void
pci_data_pio (void *opaque, uint64_t offset, void *data, unsigned len, bool write)
{
  struct pci_bus *bus = opaque;
  unsigned reg;
  pthread_mutex_lock (&bus->lock);
  struct pci_device *dev = pci_selected (bus, &reg);
  unsigned off = reg + offset;
  if (!write)
    {
      if (dev && off + len <= sizeof dev->cfg)
        memcpy (data, dev->cfg + off, len);
      else
        memset (data, 0xFF, len);
    }
  else if (dev && off + len <= sizeof dev->cfg)
    cl_vmm_pci_config_write (bus, dev, off, data, len);
  pthread_mutex_unlock (&bus->lock);
}

static void
pci_address_pio (void *opaque, uint64_t offset, void *data, unsigned len, bool write)
{
  struct pci_bus *bus = opaque;
  uint8_t *b = data;
  if (offset == 0 && len == 4)
    {
      pthread_mutex_lock (&bus->lock);
      if (write)
        memcpy (&bus->address, data, 4);
      else
        memcpy (data, &bus->address, 4);
      pthread_mutex_unlock (&bus->lock);
      return;
    }
  if (offset == 1 && len == 1 && write && (b[0] & 0x04)) /* 0xCF9: reset control */
    {
      cl_vmm_vm_request_stop (bus->vm, VM_STOP_RESET, "guest reboot (reset control register)");
      return;
    }
  if (!write)
    memset (data, offset == 1 ? 0 : 0xFF, len);
}

static uint64_t
align_up (uint64_t v, uint64_t a)
{
  return (v + a - 1) & ~(a - 1);
}

static int
pci_assign_bars (struct pci_bus *bus, struct pci_device *dev, cl_error_t *err)
{
  for (int i = 0; i < PCI_NUM_BARS; i++)
    {
      struct pci_bar *b = &dev->bars[i];
      uint8_t *reg = dev->cfg + PCI_CFG_BAR0 + 4 * i;
      if (b->size == 0)
        continue;
      if (b->size & (b->size - 1))
        return cl_error_make (err, 0, "PCI %02x.0 BAR %d: size 0x%llx is not a power of two",
                              dev->slot, i, (unsigned long long)b->size);
      if (b->is_pio)
        {
          if (b->size < 4)
            b->size = 4;
          uint64_t a = align_up (bus->next_pio, b->size);
          if (a + b->size > VM_PCI_PIO_END)
            return cl_error_make (err, 0, "PCI %02x.0 BAR %d: no port space left", dev->slot, i);
          b->addr = a;
          bus->next_pio = a + b->size;
          put32 (reg, a | 1);
          put32 (dev->wmask + PCI_CFG_BAR0 + 4 * i, ~(uint32_t)(b->size - 1) & ~3u);
        }
      else
        {
          if (b->size < 16)
            b->size = 16;
          if (b->is_64bit && i == PCI_NUM_BARS - 1)
            return cl_error_make (err, 0, "PCI %02x.0 BAR %d: 64-bit BAR in the last slot",
                                  dev->slot, i);
          uint64_t a = align_up (bus->next_mmio, b->size);
          if (a + b->size > VM_PCI_MMIO_END)
            return cl_error_make (err, 0, "PCI %02x.0 BAR %d: no MMIO window left", dev->slot, i);
          b->addr = a;
          bus->next_mmio = a + b->size;
          put32 (reg, (uint32_t)a | (b->is_64bit ? 0x4 : 0));
          put32 (dev->wmask + PCI_CFG_BAR0 + 4 * i, ~(uint32_t)(b->size - 1) & ~0xFu);
          if (b->is_64bit)
            {
              put32 (reg + 4, a >> 32);
              put32 (dev->wmask + PCI_CFG_BAR0 + 4 * (i + 1), 0xFFFFFFFF);
            }
        }
      if (pci_bar_map (bus, dev, i, err) < 0)
        return -1;
      if (b->is_64bit)
        i++;
    }
  return 0;
}

static json_t *
pci_dev_save (void *opaque)
{
  struct pci_device *dev = opaque;
  char hex[sizeof dev->cfg * 2 + 1];
  for (size_t i = 0; i < sizeof dev->cfg; i++)
    snprintf (hex + 2 * i, 3, "%02x", dev->cfg[i]);
  return json_pack ("{s:s}", "cfg", hex);
}

static int
pci_dev_restore (void *opaque, json_t *state, cl_error_t *err)
{
  struct pci_device *dev = opaque;
  const char *hex;
  if (json_unpack (state, "{s:s}", "cfg", &hex) < 0 || strlen (hex) != sizeof dev->cfg * 2)
    return cl_error_make (err, 0, "PCI %02x.0 state: bad config space", dev->slot);
  for (size_t i = 0; i < sizeof dev->cfg; i++)
    {
      unsigned b;
      sscanf (hex + 2 * i, "%2x", &b);
      dev->cfg[i] = b;
    }
  return 0;
}

static const struct vm_persist_ops pci_dev_persist = { .save = pci_dev_save, .restore = pci_dev_restore };

/* After every device restored its config space: move BARs to where the
   guest had put them. */
void
cl_vmm_pci_bus_restore_bars (struct vm *vm)
{
  struct pci_bus *bus = vm->pci;
  for (int s = 0; s < PCI_SLOTS; s++)
    for (int i = 0; bus->devs[s] && i < PCI_NUM_BARS; i++)
      if (bus->devs[s]->bars[i].size)
        pci_bar_follow (bus, bus->devs[s], i);
}

int
cl_vmm_pci_register (struct vm *vm, struct pci_device *dev, cl_error_t *err)
{
  struct pci_bus *bus = vm->pci;
  int slot = -1;
  char id[32];

  for (int s = 1; s < PCI_SLOTS; s++)
    if (bus->devs[s] == NULL)
      {
        slot = s;
        break;
      }
  if (slot < 0)
    return cl_error_make (err, 0, "no free PCI slot");
  dev->slot = slot;
  if (pci_assign_bars (bus, dev, err) < 0)
    return -1;
  bus->devs[slot] = dev;
  snprintf (id, sizeof id, "pci0:%02x.0", slot);
  return cl_vmm_vm_persist_register (vm, id, &pci_dev_persist, dev, err);
}

int
cl_vmm_pci_bus_create (struct vm *vm, cl_error_t *err)
{
  struct pci_bus *bus = cl_xmalloc0 (sizeof (*bus));
  pthread_mutex_init (&bus->lock, NULL);
  bus->vm = vm;
  bus->next_mmio = VM_PCI_MMIO_START;
  bus->next_pio = VM_PCI_PIO_START;
  vm->pci = bus;
  /* 00:00.0 host bridge: Linux's conf1 sanity check looks for one. */
  cl_vmm_pci_device_init (&bus->host, 0x8086, 0x29C0, 0x1AF4, 0x1100, 0x060000, 0);
  bus->host.slot = 0;
  bus->devs[0] = &bus->host;
  if (cl_vmm_vm_io_register (vm, true, 0xCF8, 4, pci_address_pio, bus, err) < 0)
    return -1;
  return cl_vmm_vm_io_register (vm, true, 0xCFC, 4, pci_data_pio, bus, err);
}

void
cl_vmm_pci_bus_free (struct vm *vm)
{
  free (vm->pci);
  vm->pci = NULL;
}
