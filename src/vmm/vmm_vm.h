/* SPDX-License-Identifier: Apache-2.0 */
/* The services a VM offers its devices: guest memory, interrupts (MSI
   through KVM GSI routing + irqfd, legacy lines), ioeventfd doorbells, an
   I/O event loop, and per-device snapshot state.  The VM core (kvm.c,
   vcpu.c, ...) implements this; devices only use it. */
#ifndef CLOISON_VMM_VM_H
#define CLOISON_VMM_VM_H

#include "common/error.h"
#include "vmm/guest_mem.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

const struct guest_mem *cl_vmm_vm_guest_mem (struct vm *vm);

/* --- interrupts --- */
/* A fresh GSI number for an MSI route, or -1 (error set) when none is left. */
int cl_vmm_vm_gsi_alloc (struct vm *vm, cl_error_t *err);
/* Points `gsi` at an MSI message (address, data); the routing table is
   pushed to KVM at once.  (A masked MSI-X vector is the transport's
   business: it detaches the irqfd and records the pending bit.) */
int cl_vmm_vm_msi_route_set (struct vm *vm, int gsi, uint64_t addr, uint32_t data, cl_error_t *err);
/* Attaches (assign) or detaches an eventfd to a GSI: writes to the fd then
   inject the interrupt without leaving the kernel. */
int cl_vmm_vm_irqfd (struct vm *vm, int eventfd, int gsi, bool assign, cl_error_t *err);
/* Raises (level 1) or lowers a legacy IOAPIC line (UART: 4). */
int cl_vmm_vm_irq_line (struct vm *vm, int irq, int level);

/* --- doorbells --- */
/* Registers an ioeventfd for an MMIO (is_pio false) or port range; with
   datamatch >= 0 only writes of that value fire it. */
int cl_vmm_vm_ioeventfd (struct vm *vm, uint64_t addr, unsigned len, bool is_pio, int64_t datamatch,
                         int eventfd, bool assign, cl_error_t *err);

/* --- I/O thread --- */
/* The VM's single I/O thread runs an epoll loop; callbacks run there, one
   at a time.  Device state touched both there and from vCPU threads (MMIO
   handlers) is guarded by the device's own mutex. */
typedef void (*vm_event_fn) (void *opaque, uint32_t events);
int cl_vmm_vm_event_add (struct vm *vm, int fd, uint32_t events, vm_event_fn fn, void *opaque,
                         cl_error_t *err);
void cl_vmm_vm_event_del (struct vm *vm, int fd);

/* --- MMIO and port I/O dispatch (vCPU threads) --- */
typedef void (*vm_io_fn) (void *opaque, uint64_t offset, void *data, unsigned len, bool write);
/* Claims [base, base + len) of the MMIO (is_pio false) or port space. */
int cl_vmm_vm_io_register (struct vm *vm, bool is_pio, uint64_t base, uint64_t len, vm_io_fn fn,
                           void *opaque, cl_error_t *err);
void cl_vmm_vm_io_unregister (struct vm *vm, bool is_pio, uint64_t base);

/* --- snapshot state, kept beside each device's logic --- */
struct vm_persist_ops
{
  /* Called with every vCPU stopped and the I/O thread idle. */
  json_t *(*save) (void *opaque);
  /* Optional, called before anything is written: -1 (err set) refuses
     the snapshot, e.g. while a device holds host state it cannot save. */
  int (*save_check) (void *opaque, cl_error_t *err);
  /* Called on a freshly built device, before any vCPU runs. */
  int (*restore) (void *opaque, json_t *state, cl_error_t *err);
  /* A snapshot taken before the device saved any state restores with the
     device as it was built (instead of failing). */
  bool absent_ok;
  /* Optional, for live migration: marks dirty (cl_vmm_guest_mem_mark_dirty)
     the guest memory a backend outside the VMM may have written (vhost's
     rings), which neither KVM nor the VMM saw. */
  void (*mark_dirty) (void *opaque);
  /* Optional: called once the whole machine is restored (irqchip, vCPUs),
     before any vCPU runs.  Raises again the interrupts the device may
     owe the guest: one sent just before the save can be missing from the
     saved interrupt controllers; a spurious one is harmless.  Also what
     must reach the guest only after its interrupt controllers are back
     (an interrupt raised in `restore` would be lost when the vCPUs'
     LAPICs are restored). */
  void (*resumed) (void *opaque);
};
/* `id` is unique per VM ("uart0", "virtio-blk0", "pci0:03.0"). */
int cl_vmm_vm_persist_register (struct vm *vm, const char *id, const struct vm_persist_ops *ops,
                                void *opaque, cl_error_t *err);

/* --- disks, for block migration (disk_track.h) --- */
struct vm_disk;
/* The VM's record of a disk image (fd: the device's descriptor, size in
   bytes), in the order the disks are created; it lives as long as the VM. */
struct vm_disk *cl_vmm_vm_disk_add (struct vm *vm, int fd, uint64_t size);
/* After the device changed [off, off + len) of the image (write, discard,
   write-zeroes): marks it for a block migration in progress; nothing
   otherwise.  Any thread. */
void cl_vmm_vm_disk_written (struct vm_disk *d, uint64_t off, uint64_t len);

/* --- teardown --- */
/* fn(opaque) runs when the VM is destroyed, after the vCPUs and the I/O
   thread have stopped, last added first: how a device frees itself. */
void cl_vmm_vm_add_destructor (struct vm *vm, void (*fn) (void *), void *opaque);

/* Counters shown by GET /metrics, per device: name -> value. */
void cl_vmm_vm_metric_add (struct vm *vm, const char *device, const char *name, uint64_t delta);

#endif
