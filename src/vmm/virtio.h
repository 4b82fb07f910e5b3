/* SPDX-License-Identifier: Apache-2.0 */
/* virtio devices over the modern (1.x) virtio-PCI transport: the whole
   public surface.  Each constructor builds one PCI function on `vm`
   (cl_vmm_pci_register), wires its doorbells (ioeventfd), interrupts (MSI-X via
   GSI routing + irqfd) and I/O-thread handlers, and registers its snapshot
   state under "virtio-<kind><n>" (n counts this VM's devices of that kind
   in creation order, so a restoring process must create them in the same
   order).
   All return 0, or -1 with `err` set naming the file, tap or device.

   The device lives as long as the VM: cl_vmm_vm_destroy frees it. */
#ifndef CLOISON_VMM_VIRTIO_H
#define CLOISON_VMM_VIRTIO_H

#include "common/error.h"

#include <stdbool.h>
#include <stdint.h>

struct vm;

/* A raw disk image.  `serial` (NULL: none) is what VIRTIO_BLK_T_GET_ID
   returns (/sys/block/vdX/serial), at most 20 bytes.  The capacity is the
   file size rounded down to 512-byte sectors. */
int cl_vmm_virtio_blk_create (struct vm *vm, const char *path, bool read_only, const char *serial,
                              cl_error_t *err);

/* An existing tap interface (`ip tuntap add NAME mode tap`), opened through
   /dev/net/tun with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR.  `mac` NULL: a random
   locally administered address. */
int cl_vmm_virtio_net_create (struct vm *vm, const char *tap_name, const uint8_t mac[6],
                              cl_error_t *err);
/* "52:54:00:12:34:56" -> bytes; the error names the input. */
int cl_vmm_virtio_net_parse_mac (const char *text, uint8_t mac[6], cl_error_t *err);

/* Console port 0 (hvc0 in the guest).  Guest output goes to `out_fd`;
   `in_fd` (-1: none) is read when readable (a pipe, tty or socket; a
   regular file is read once, whole).  The fds stay the caller's. */
int cl_vmm_virtio_console_create (struct vm *vm, int in_fd, int out_fd, cl_error_t *err);

/* Entropy from getrandom(2). */
int cl_vmm_virtio_rng_create (struct vm *vm, cl_error_t *err);

/* A vsock device backed by the kernel's vhost-vsock (/dev/vhost-vsock).
   `guest_cid` >= 3. */
/* reserved_fd: -1, or a vhost-vsock fd that cl_vmm_vsock_reserve() gave
   for guest_cid (taken over: closed on failure too). */
int cl_vmm_virtio_vsock_create (struct vm *vm, uint64_t guest_cid, int reserved_fd,
                                cl_error_t *err);

/* A host directory shared over virtio-fs: the guest mounts it with
   `mount -t virtiofs TAG DIR`.  `tag` is 1 to 36 bytes.  With read_only
   every change is refused (EROFS).  The guest never reaches a host file
   outside `dir`.  A snapshot saves the files the guest holds by path and
   is refused when one of them left the share (see docs/virtiofs.md). */
int cl_vmm_virtio_fs_create (struct vm *vm, const char *tag, const char *dir, bool read_only,
                             cl_error_t *err);

#endif
