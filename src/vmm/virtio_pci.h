/* SPDX-License-Identifier: Apache-2.0 */
/* The contract between a virtio device and the modern virtio-PCI
   transport (virtio 1.2, section 4.1), kvmtool-style: a device embeds
   struct virtio_device and fills a struct virtio_device_ops with designated
   initializers; the transport does the rest (capabilities, feature
   negotiation, status, queues, MSI-X, doorbells, snapshot state). */
#ifndef CLOISON_VMM_VIRTIO_PCI_H
#define CLOISON_VMM_VIRTIO_PCI_H

#include "common/error.h"
#include "vmm/pci.h"
#include "vmm/virtq.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_VSOCK 19
#define VIRTIO_ID_FS 26

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VIRTIO_MSI_NO_VECTOR 0xffff
#define VIRTIO_MAX_QUEUES 8

struct virtio_device;

struct virtio_device_ops
{
  const char *kind;    /* "blk": names the device in logs, metrics, snapshots */
  uint16_t device_id;  /* VIRTIO_ID_* */
  uint32_t class_code; /* PCI class, e.g. 0x018000 */
  unsigned num_queues;
  uint16_t queue_max_size;
  uint64_t features; /* device-specific bits; the transport adds its own */
  /* Guest wrote the device config space.  Nothing is stored for it: the
     device keeps the fields its spec lets the driver write (optional; without
     it the config space is read-only). */
  void (*config_write) (struct virtio_device *dev, unsigned offset, const void *data, unsigned len);
  /* DRIVER_OK: features and queues are final; start the backend. */
  int (*activate) (struct virtio_device *dev, cl_error_t *err);
  /* Device reset (status 0): stop the backend, forget requests. */
  void (*reset) (struct virtio_device *dev);
  /* The driver kicked queue `q` (I/O thread, device lock held). */
  void (*queue_notify) (struct virtio_device *dev, unsigned q);
  /* Device-specific snapshot state (optional). */
  json_t *(*save) (struct virtio_device *dev);
  /* Refuses a snapshot (optional): state the device cannot save right
     now, e.g. host descriptors the guest holds.  0, or -1 with `err`. */
  int (*save_check) (struct virtio_device *dev, cl_error_t *err);
  int (*restore) (struct virtio_device *dev, json_t *state, cl_error_t *err);
  /* Optional: the whole VM is restored (vCPUs included), none runs yet:
     interrupts for the guest may be raised now (vm_persist_ops.restored). */
  void (*restored) (struct virtio_device *dev);
  /* Queues whose kicks the device takes over itself (vhost): bit q set. */
  uint32_t own_kick_mask;
  /* Required: frees the device's own resources and the struct embedding
     `dev` (the transport has closed its fds).  Runs once, at VM teardown,
     also for a device whose cl_vmm_virtio_device_init failed half-way. */
  void (*release) (struct virtio_device *dev);
};

struct virtio_msix_vector
{
  uint32_t addr_lo, addr_hi, data, ctrl;
  int gsi;
  int efd;       /* irqfd: written to raise the vector */
  bool attached; /* irqfd currently attached to gsi */
  bool pending;  /* PBA bit */
};

struct virtio_queue_state
{
  struct virtq vq;
  struct virtio_device *dev;
  unsigned index;
  uint16_t msix_vector;
  int kick_fd;        /* eventfd behind the queue's ioeventfd */
  uint64_t kick_addr; /* where the ioeventfd is registered, 0: none */
};

struct virtio_device
{
  struct pci_device pci;
  struct vm *vm;
  const struct virtio_device_ops *ops;
  char name[32]; /* "virtio-blk0" */
  pthread_mutex_t lock;

  uint8_t *config; /* device config space, owned by the device */
  unsigned config_size;

  uint8_t status;
  uint8_t isr;
  uint8_t config_generation;
  uint32_t device_feature_select, driver_feature_select;
  uint64_t driver_features;
  uint16_t queue_select;
  uint16_t config_msix_vector;
  bool broken_logged;

  struct virtio_queue_state queues[VIRTIO_MAX_QUEUES];

  unsigned msix_cap;    /* config-space offset of the MSI-X capability */
  unsigned pci_cfg_cap; /* ... and of the VIRTIO_PCI_CAP_PCI_CFG window */
  unsigned nvectors;
  struct virtio_msix_vector *vectors;
};

/* Builds the PCI function, registers it, its doorbells, interrupts and
   snapshot state.  `dev->ops`, `dev->config`, `dev->config_size` must be
   set.  `name` is filled.  From this call on, even when it fails, the
   device belongs to the VM, which releases it when destroyed. */
int cl_vmm_virtio_device_init (struct virtio_device *dev, struct vm *vm, cl_error_t *err);

static inline bool
virtio_has_feature (const struct virtio_device *dev, unsigned bit)
{
  return (dev->driver_features >> bit) & 1;
}

/* The driver broke the rules on queue `q`: log once, set NEEDS_RESET,
   raise a config interrupt; the device stops serving until reset. */
void cl_vmm_virtio_device_fail (struct virtio_device *dev, unsigned q, const char *why);
/* Raises the queue's vector (after cl_vmm_virtq_should_notify). */
void cl_vmm_virtio_queue_interrupt (struct virtio_device *dev, unsigned q);
/* Pushes then interrupts when the driver wants it: the common tail. */
void cl_vmm_virtio_queue_complete (struct virtio_device *dev, unsigned q, uint16_t head,
                                   uint32_t written);
/* Interrupts once for a batch of pushes if the driver wants it. */
void cl_vmm_virtio_queue_flush (struct virtio_device *dev, unsigned q);
/* Serves queue `q` until it is empty: pops each chain into `chain`,
   calls `fn`, which returns the bytes it wrote into the chain (pushed as
   used) or -1 to give the chain back and stop (backend full).  Interrupts
   as the driver asks; with EVENT_IDX re-arms and re-checks.  A malformed
   chain fails the device. */
typedef int64_t (*virtio_chain_fn) (struct virtio_device *dev, unsigned q,
                                    const struct virtq_chain *chain);
void cl_vmm_virtio_queue_serve (struct virtio_device *dev, unsigned q, struct virtq_chain *chain,
                                virtio_chain_fn fn);
/* The device's config changed (bumps config_generation, config vector). */
void cl_vmm_virtio_config_changed (struct virtio_device *dev);
/* DRIVER_OK and not broken: the device serves its queues. */
static inline bool
virtio_device_running (const struct virtio_device *dev)
{
  return (dev->status & VIRTIO_STATUS_DRIVER_OK) && !(dev->status & VIRTIO_STATUS_NEEDS_RESET);
}

#endif
