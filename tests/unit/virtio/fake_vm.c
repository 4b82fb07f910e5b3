/* SPDX-License-Identifier: Apache-2.0 */
#include "fake_vm.h"

#include "vmm/disk_track.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

struct vm *
fake_vm_new (void)
{
  struct vm *vm = calloc (1, sizeof *vm);
  vm->ram = calloc (1, FAKE_MEM_SIZE);
  vm->mem.regions[0] = (struct guest_mem_region){ 0, FAKE_MEM_SIZE, vm->ram, NULL };
  vm->mem.nregions = 1;
  vm->next_gsi = 24;
  return vm;
}

void
fake_vm_free (struct vm *vm)
{
  while (vm->ndestructors > 0)
    {
      vm->ndestructors--;
      vm->destructor_fn[vm->ndestructors](vm->destructor_opaque[vm->ndestructors]);
    }
  for (int i = 0; i < vm->ndisks; i++)
    cl_vmm_disk_track_free (vm->disks[i]);
  free (vm->ram);
  free (vm);
}

int
fake_vm_poll (struct vm *vm)
{
  int ran = 0;
  for (int i = 0; i < vm->nevents; i++)
    {
      struct pollfd p = { .fd = vm->events[i].fd, .events = POLLIN };
      if (vm->events[i].fd >= 0 && poll (&p, 1, 0) == 1)
        {
          vm->events[i].fn (vm->events[i].opaque, p.revents);
          ran++;
        }
    }
  return ran;
}

void
cl_vmm_vm_add_destructor (struct vm *vm, void (*fn) (void *), void *opaque)
{
  if (vm->ndestructors < FAKE_MAX)
    {
      vm->destructor_fn[vm->ndestructors] = fn;
      vm->destructor_opaque[vm->ndestructors++] = opaque;
    }
}

struct vm_disk *
cl_vmm_vm_disk_add (struct vm *vm, int fd, uint64_t size)
{
  if (vm->ndisks == FAKE_MAX)
    return NULL;
  return vm->disks[vm->ndisks++] = cl_vmm_disk_track_new (fd, size);
}

const struct guest_mem *
cl_vmm_vm_guest_mem (struct vm *vm)
{
  return &vm->mem;
}

int
cl_vmm_vm_gsi_alloc (struct vm *vm, cl_error_t *err)
{
  (void)err;
  return vm->next_gsi++;
}

int
cl_vmm_vm_msi_route_set (struct vm *vm, int gsi, uint64_t addr, uint32_t data, cl_error_t *err)
{
  (void)err;
  if (gsi < FAKE_MAX)
    {
      vm->msi_addr[gsi] = addr;
      vm->msi_data[gsi] = data;
    }
  return 0;
}

int
cl_vmm_vm_irqfd (struct vm *vm, int eventfd, int gsi, bool assign, cl_error_t *err)
{
  (void)err;
  if (eventfd >= 0 && eventfd < 1024)
    vm->irqfd_gsi[eventfd] = assign ? gsi + 1 : 0;
  return 0;
}

int
cl_vmm_vm_irq_line (struct vm *vm, int irq, int level)
{
  (void)vm, (void)irq, (void)level;
  return 0;
}

int
cl_vmm_vm_ioeventfd (struct vm *vm, uint64_t addr, unsigned len, bool is_pio, int64_t datamatch,
                     int eventfd, bool assign, cl_error_t *err)
{
  (void)addr, (void)len, (void)is_pio, (void)datamatch, (void)eventfd, (void)err;
  vm->ioeventfds += assign ? 1 : -1;
  return 0;
}

int
cl_vmm_vm_event_add (struct vm *vm, int fd, uint32_t events, vm_event_fn fn, void *opaque,
                     cl_error_t *err)
{
  (void)events;
  for (int i = 0; i < vm->nevents; i++)
    if (vm->events[i].fd == fd)
      return cl_error_make (err, 17, "fd %d already watched", fd);
  vm->events[vm->nevents++] = (struct fake_event){ fd, fn, opaque };
  return 0;
}

void
cl_vmm_vm_event_del (struct vm *vm, int fd)
{
  for (int i = 0; i < vm->nevents; i++)
    if (vm->events[i].fd == fd)
      vm->events[i] = vm->events[--vm->nevents];
}

int
cl_vmm_vm_io_register (struct vm *vm, bool is_pio, uint64_t base, uint64_t len, vm_io_fn fn,
                       void *opaque, cl_error_t *err)
{
  (void)vm, (void)is_pio, (void)base, (void)len, (void)fn, (void)opaque, (void)err;
  return 0;
}

void
cl_vmm_vm_io_unregister (struct vm *vm, bool is_pio, uint64_t base)
{
  (void)vm, (void)is_pio, (void)base;
}

int
cl_vmm_vm_persist_register (struct vm *vm, const char *id, const struct vm_persist_ops *ops,
                            void *opaque, cl_error_t *err)
{
  for (int i = 0; i < vm->npersist; i++)
    if (strcmp (vm->persist_id[i], id) == 0)
      return cl_error_make (err, 0, "device state `%s` registered twice", id);
  vm->persist_ops[vm->npersist] = ops;
  vm->persist_opaque[vm->npersist] = opaque;
  strncpy (vm->persist_id[vm->npersist], id, 31);
  vm->npersist++;
  return 0;
}

void
cl_vmm_vm_metric_add (struct vm *vm, const char *device, const char *name, uint64_t delta)
{
  (void)vm, (void)device, (void)name, (void)delta;
}

void
cl_vmm_pci_device_init (struct pci_device *dev, uint16_t vendor, uint16_t device,
                        uint16_t subsys_vendor, uint16_t subsys_id, uint32_t class_code,
                        uint8_t revision)
{
  memcpy (&dev->cfg[0], &vendor, 2);
  memcpy (&dev->cfg[2], &device, 2);
  dev->cfg[8] = revision;
  dev->cfg[9] = class_code & 0xff;
  dev->cfg[10] = (class_code >> 8) & 0xff;
  dev->cfg[11] = (class_code >> 16) & 0xff;
  memcpy (&dev->cfg[0x2c], &subsys_vendor, 2);
  memcpy (&dev->cfg[0x2e], &subsys_id, 2);
  dev->cfg[6] |= 0x10; /* capability list */
  dev->next_cap = 0x40;
}

int
cl_vmm_pci_add_capability (struct pci_device *dev, const void *cap, unsigned len)
{
  unsigned off = dev->next_cap;
  if (off + len > 256)
    return -1;
  memcpy (&dev->cfg[off], cap, len);
  /* Chain: the new capability goes last. */
  if (dev->cfg[0x34] == 0)
    dev->cfg[0x34] = off;
  else
    {
      unsigned p = dev->cfg[0x34];
      while (dev->cfg[p + 1])
        p = dev->cfg[p + 1];
      dev->cfg[p + 1] = off;
    }
  dev->cfg[off + 1] = 0;
  dev->next_cap = (off + len + 3) & ~3u;
  return off;
}

int
cl_vmm_pci_register (struct vm *vm, struct pci_device *dev, cl_error_t *err)
{
  (void)err;
  dev->slot = vm->npci + 1;
  dev->bars[0].addr = FAKE_BAR_BASE + (uint64_t)vm->npci * 0x100000;
  vm->pci[vm->npci++] = dev;
  return 0;
}
