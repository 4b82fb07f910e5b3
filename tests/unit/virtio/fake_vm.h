/* SPDX-License-Identifier: Apache-2.0 */
/* A stand-in for the VM core (vm.h, pci.h) in virtio unit tests: guest
   memory is a calloc'd buffer, the I/O thread is fake_vm_poll(), and every
   service records what the device asked for. */
#ifndef FAKE_VM_H
#define FAKE_VM_H

#include "vmm/pci.h"
#include "vmm/vmm_vm.h"

#define FAKE_MEM_SIZE (4u << 20)
#define FAKE_BAR_BASE 0xe0000000ull
#define FAKE_MAX 32

struct fake_event
{
  int fd;
  vm_event_fn fn;
  void *opaque;
};

struct vm
{
  struct guest_mem mem;
  uint8_t *ram;
  int next_gsi;
  struct pci_device *pci[FAKE_MAX];
  int npci;
  struct fake_event events[FAKE_MAX];
  int nevents;
  int irqfd_gsi[1024]; /* eventfd number -> attached gsi + 1 */
  uint64_t msi_addr[FAKE_MAX];
  uint32_t msi_data[FAKE_MAX];
  int ioeventfds;
  const struct vm_persist_ops *persist_ops[FAKE_MAX];
  void *persist_opaque[FAKE_MAX];
  char persist_id[FAKE_MAX][32];
  int npersist;
  void (*destructor_fn[FAKE_MAX]) (void *);
  void *destructor_opaque[FAKE_MAX];
  int ndestructors;
  struct vm_disk *disks[FAKE_MAX];
  int ndisks;
};

struct vm *fake_vm_new (void);
/* Runs the destructors (the devices' release), as cl_vmm_vm_destroy does. */
void fake_vm_free (struct vm *vm);
/* One round of the I/O thread: every readable registered fd gets its
   callback.  Returns how many ran. */
int fake_vm_poll (struct vm *vm);

#endif
