/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-vsock (virtio 1.2, 5.10) with the kernel's vhost-vsock doing the
   data path: the rx and tx queues are handed to /dev/vhost-vsock (their
   ioeventfds become its kick fds, their MSI-X irqfds its call fds); the
   VMM keeps only the event queue, used after a restore to tell the guest
   that its connections are gone (TRANSPORT_RESET). */
#include "vmm/virtio.h"
#include "vmm/virtio_pci.h"

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "vmm/vmm_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define RXQ 0
#define TXQ 1
#define EVQ 2
#define QUEUE_SIZE 256
#define VSOCK_EVENT_TRANSPORT_RESET 0

struct vsock_config
{
  uint64_t guest_cid;
} __attribute__ ((packed));

struct virtio_vsock
{
  struct virtio_device vdev;
  struct virtio_device_ops ops;
  struct vsock_config config;
  int vhost_fd;
  uint64_t vhost_features;
  uint64_t cid; /* the one vhost serves: config.guest_cid after a restore too */
  bool running;
  bool reset_event_due; /* restored: tell the guest its connections died */
  bool restoring;       /* between restore and restored */
  struct virtq_chain chain;
};

static int
vhost_set_mem (struct virtio_vsock *vs, cl_error_t *err)
{
  const struct guest_mem *mem = cl_vmm_vm_guest_mem (vs->vdev.vm);
  cleanup_free struct vhost_memory *table
      = cl_xmalloc0 (sizeof *table + mem->nregions * sizeof (struct vhost_memory_region));

  table->nregions = mem->nregions;
  for (int i = 0; i < mem->nregions; i++)
    {
      table->regions[i].guest_phys_addr = mem->regions[i].gpa;
      table->regions[i].memory_size = mem->regions[i].size;
      table->regions[i].userspace_addr = (uintptr_t) mem->regions[i].host;
    }
  if (ioctl (vs->vhost_fd, VHOST_SET_MEM_TABLE, table) < 0)
    return cl_error_errno (err, "vhost-vsock: VHOST_SET_MEM_TABLE");
  return 0;
}

static int
vhost_start_queue (struct virtio_vsock *vs, unsigned q, cl_error_t *err)
{
  struct virtio_queue_state *qs = &vs->vdev.queues[q];
  struct vhost_vring_state num = { .index = q, .num = qs->vq.size };
  struct vhost_vring_state base = { .index = q, .num = qs->vq.last_avail_idx };
  struct vhost_vring_addr addr = {
    .index = q,
    .desc_user_addr = (uintptr_t) qs->vq.desc,
    .avail_user_addr = (uintptr_t) qs->vq.avail,
    .used_user_addr = (uintptr_t) qs->vq.used,
  };
  struct vhost_vring_file kick = { .index = q, .fd = qs->kick_fd };
  struct vhost_vring_file call = { .index = q, .fd = -1 };

  if (qs->msix_vector < vs->vdev.nvectors)
    call.fd = vs->vdev.vectors[qs->msix_vector].efd;
  if (ioctl (vs->vhost_fd, VHOST_SET_VRING_NUM, &num) < 0
      || ioctl (vs->vhost_fd, VHOST_SET_VRING_BASE, &base) < 0
      || ioctl (vs->vhost_fd, VHOST_SET_VRING_ADDR, &addr) < 0
      || ioctl (vs->vhost_fd, VHOST_SET_VRING_KICK, &kick) < 0
      || ioctl (vs->vhost_fd, VHOST_SET_VRING_CALL, &call) < 0)
    return cl_error_errno (err, "vhost-vsock: queue %u", q);
  return 0;
}

static void
post_reset_event (struct virtio_vsock *vs)
{
  struct virtio_device *dev = &vs->vdev;
  uint32_t id = VSOCK_EVENT_TRANSPORT_RESET;
  const char *why;
  int r = cl_vmm_virtq_pop (&dev->queues[EVQ].vq, &vs->chain, &why);

  if (r < 0)
    cl_vmm_virtio_device_fail (dev, EVQ, why);
  if (r <= 0)
    return;
  cl_vmm_virtio_queue_complete (dev, EVQ, vs->chain.head,
                                cl_vmm_virtq_chain_write (&vs->chain, 0, &id, 4));
  vs->reset_event_due = false;
}

static int
vsock_activate (struct virtio_device *dev, cl_error_t *err)
{
  struct virtio_vsock *vs = (struct virtio_vsock *) dev;
  uint64_t features = dev->driver_features & vs->vhost_features;
  int on = 1;

  if (ioctl (vs->vhost_fd, VHOST_SET_FEATURES, &features) < 0)
    return cl_error_errno (err, "vhost-vsock: VHOST_SET_FEATURES");
  if (vhost_set_mem (vs, err) < 0)
    return -1;
  for (unsigned q = RXQ; q <= TXQ; q++)
    if (dev->queues[q].vq.ready && vhost_start_queue (vs, q, err) < 0)
      return -1;
  if (ioctl (vs->vhost_fd, VHOST_VSOCK_SET_RUNNING, &on) < 0)
    return cl_error_errno (err, "vhost-vsock: VHOST_VSOCK_SET_RUNNING");
  vs->running = true;
  /* restoring: the event waits for the LAPICs (vsock_restored) */
  if (vs->reset_event_due && !vs->restoring)
    post_reset_event (vs);
  return 0;
}

static void
vsock_restored (struct virtio_device *dev)
{
  struct virtio_vsock *vs = (struct virtio_vsock *) dev;

  vs->restoring = false;
  if (vs->reset_event_due)
    post_reset_event (vs);
}

static void
vsock_reset (struct virtio_device *dev)
{
  struct virtio_vsock *vs = (struct virtio_vsock *) dev;
  int off = 0;

  if (vs->running && ioctl (vs->vhost_fd, VHOST_VSOCK_SET_RUNNING, &off) < 0)
    cl_warn ("%s: vhost-vsock stop: %s", dev->name, strerror (errno));
  vs->running = false;
}

static void
vsock_notify (struct virtio_device *dev, unsigned q)
{
  struct virtio_vsock *vs = (struct virtio_vsock *) dev;

  /* Only the event queue reaches us: the guest posted event buffers. */
  if (q == EVQ && vs->reset_event_due)
    post_reset_event (vs);
}

/* The rings' positions live in vhost: record them so that a restored VM
   resumes where vhost stopped. */
static json_t *
vsock_save (struct virtio_device *dev)
{
  struct virtio_vsock *vs = (struct virtio_vsock *) dev;
  json_t *bases = json_array ();

  for (unsigned q = RXQ; q <= TXQ; q++)
    {
      struct vhost_vring_state st = { .index = q };
      if (!vs->running || ioctl (vs->vhost_fd, VHOST_GET_VRING_BASE, &st) < 0)
        st.num = dev->queues[q].vq.last_avail_idx;
      json_array_append_new (bases, json_integer (st.num));
    }
  return json_pack ("{s:o}", "vring_base", bases);
}

static int
vsock_restore (struct virtio_device *dev, json_t *state, cl_error_t *err)
{
  struct virtio_vsock *vs = (struct virtio_vsock *) dev;
  json_t *bases = json_object_get (state, "vring_base");

  if (json_array_size (bases) != 2)
    return cl_error_make (err, 0, "%s: snapshot state: vring_base", dev->name);
  for (unsigned q = RXQ; q <= TXQ; q++)
    {
      uint16_t base = json_integer_value (json_array_get (bases, q));
      dev->queues[q].vq.last_avail_idx = base;
      dev->queues[q].vq.used_idx = base;
    }
  /* the snapshot's config bytes carry the CID the guest had; a clone of
     a template runs under another: the guest reads it back at the
     transport reset */
  vs->config.guest_cid = vs->cid;
  vs->reset_event_due = true;
  vs->restoring = true;
  return 0;
}

static void
vsock_release (struct virtio_device *dev)
{
  struct virtio_vsock *vs = (struct virtio_vsock *)dev;

  close (vs->vhost_fd);
  free (vs);
}

static int
vsock_check_cid (uint64_t guest_cid, cl_error_t *err)
{
  if (guest_cid < 3 || guest_cid > UINT32_MAX - 1)
    return cl_error_make (err, 0, "vsock cid %llu: must be in 3..4294967294",
                          (unsigned long long) guest_cid);
  return 0;
}

int
cl_vmm_vsock_reserve (uint32_t cid, cl_error_t *err)
{
  uint64_t guest_cid = cid;
  cleanup_close int fd = -1;

  if (vsock_check_cid (guest_cid, err) < 0)
    return -1;
  fd = open ("/dev/vhost-vsock", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return cl_error_errno (err, "vsock: open `/dev/vhost-vsock` (modprobe vhost_vsock)");
  /* The CID is taken host-wide from here on; VHOST_SET_OWNER is left to
     the process that runs the VM (vhost works in its owner's memory). */
  if (ioctl (fd, VHOST_VSOCK_SET_GUEST_CID, &guest_cid) < 0)
    return cl_error_errno (err, "vsock cid %llu: VHOST_VSOCK_SET_GUEST_CID%s",
                           (unsigned long long) guest_cid,
                           errno == EADDRINUSE ? " (in use by another VM on this host)" : "");
  return steal_fd (&fd);
}

int
cl_vmm_virtio_vsock_create (struct vm *vm, uint64_t guest_cid, int reserved_fd, cl_error_t *err)
{
  cleanup_close int fd = reserved_fd;
  struct virtio_vsock *vs;
  uint64_t features;

  if (fd < 0 && (fd = cl_vmm_vsock_reserve (guest_cid, err)) < 0)
    return -1;
  if (vsock_check_cid (guest_cid, err) < 0)
    return -1;
  if (ioctl (fd, VHOST_SET_OWNER) < 0)
    return cl_error_errno (err, "vsock: VHOST_SET_OWNER");
  if (ioctl (fd, VHOST_GET_FEATURES, &features) < 0)
    return cl_error_errno (err, "vsock: VHOST_GET_FEATURES");
  vs = cl_xmalloc0 (sizeof *vs);
  vs->vhost_fd = steal_fd (&fd);
  vs->vhost_features = features;
  vs->config.guest_cid = vs->cid = guest_cid;
  vs->ops = (struct virtio_device_ops){
    .kind = "vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .class_code = 0x088000,
    .num_queues = 3,
    .queue_max_size = QUEUE_SIZE,
    /* Device bits vhost knows (SEQPACKET...), below the transport's. */
    .features = features & 0xffffffull,
    .activate = vsock_activate,
    .reset = vsock_reset,
    .queue_notify = vsock_notify,
    .save = vsock_save,
    .restore = vsock_restore,
    .restored = vsock_restored,
    .own_kick_mask = (1u << RXQ) | (1u << TXQ),
    .release = vsock_release,
  };
  vs->vdev.ops = &vs->ops;
  vs->vdev.config = (uint8_t *) &vs->config;
  vs->vdev.config_size = sizeof vs->config;
  return cl_vmm_virtio_device_init (&vs->vdev, vm, err);
}
