/* SPDX-License-Identifier: Apache-2.0 */
/* Modern virtio-PCI transport (virtio 1.2, 4.1): one 64-bit memory BAR
   holds the common, ISR, device and notify regions and the MSI-X table and
   PBA.  Vendor-specific capabilities point the driver at each region.
   Kicks arrive on ioeventfds and are served in the VM's I/O thread;
   interrupts leave through one irqfd per MSI-X vector. */
#include "vmm/virtio_pci.h"

#include "common/log.h"
#include "common/util.h"
#include "vmm/vmm_vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_PCI_SUBSYS 0x1100

#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11
#define CAP_COMMON_CFG 1
#define CAP_NOTIFY_CFG 2
#define CAP_ISR_CFG 3
#define CAP_DEVICE_CFG 4
#define CAP_PCI_CFG 5

/* Layout of BAR 0. */
#define BAR_INDEX 0
#define REGION_COMMON 0x0000 /* must stay 0: offsets below are compared from it */
#define REGION_COMMON_LEN 0x40
#define REGION_ISR 0x1000
#define REGION_DEVICE 0x2000
#define REGION_DEVICE_MAX 0x1000
#define REGION_NOTIFY 0x3000
#define NOTIFY_MULTIPLIER 4
#define REGION_MSIX_TABLE 0x4000
#define REGION_MSIX_PBA 0x6000
#define BAR_SIZE 0x8000
#define MSIX_MAX_VECTORS ((REGION_MSIX_PBA - REGION_MSIX_TABLE) / 16)

#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FMASK 0x4000

struct virtio_pci_cap
{
  uint8_t cap_vndr, cap_next, cap_len, cfg_type, bar, id, padding[2];
  uint32_t offset, length;
};

struct virtio_pci_notify_cap
{
  struct virtio_pci_cap cap;
  uint32_t notify_off_multiplier;
};

/* A window onto the BARs through config space (firmware uses it). */
struct virtio_pci_cfg_cap
{
  struct virtio_pci_cap cap;
  uint8_t data[4];
};

struct msix_cap
{
  uint8_t cap_id, cap_next;
  uint16_t ctrl;
  uint32_t table, pba;
};

static uint64_t
device_features (const struct virtio_device *dev)
{
  return dev->ops->features | (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX)
         | (1ull << VIRTIO_F_INDIRECT_DESC);
}

static uint64_t
bar_base (const struct virtio_device *dev)
{
  return dev->pci.bars[BAR_INDEX].addr;
}

/* ---------------------------------------------------------------- MSI-X */

static uint16_t
msix_ctrl (const struct virtio_device *dev)
{
  uint16_t v;
  memcpy (&v, &dev->pci.cfg[dev->msix_cap + 2], 2);
  return v;
}

static bool
msix_masked (const struct virtio_device *dev, const struct virtio_msix_vector *v)
{
  uint16_t ctrl = msix_ctrl (dev);
  return !(ctrl & MSIX_CTRL_ENABLE) || (ctrl & MSIX_CTRL_FMASK) || (v->ctrl & 1);
}

static void
raise_efd (int efd)
{
  uint64_t one = 1;
  if (write (efd, &one, sizeof one) < 0 && errno != EAGAIN)
    cl_warn ("virtio: eventfd write: %s", strerror (errno));
}

/* Brings vector `i` in line with its table entry and the mask bits: an
   unmasked vector has its route and an attached irqfd; a masked one has
   its irqfd detached, and what fires meanwhile is left pending. */
static void
msix_vector_sync (struct virtio_device *dev, unsigned i)
{
  struct virtio_msix_vector *v = &dev->vectors[i];
  cl_error_t err = NULL;

  if (msix_masked (dev, v))
    {
      if (v->attached && cl_vmm_vm_irqfd (dev->vm, v->efd, v->gsi, false, &err) == 0)
        v->attached = false;
    }
  else
    {
      uint64_t addr = ((uint64_t) v->addr_hi << 32) | v->addr_lo;
      if (cl_vmm_vm_msi_route_set (dev->vm, v->gsi, addr, v->data, &err) < 0)
        goto fail;
      if (!v->attached)
        {
          if (cl_vmm_vm_irqfd (dev->vm, v->efd, v->gsi, true, &err) < 0)
            goto fail;
          v->attached = true;
        }
      if (v->pending)
        {
          v->pending = false;
          raise_efd (v->efd);
        }
    }
fail:
  if (err)
    {
      cl_warn ("%s: MSI-X vector %u: %s", dev->name, i, err->msg);
      cl_error_release (&err);
    }
}

static void
msix_sync_all (struct virtio_device *dev)
{
  for (unsigned i = 0; i < dev->nvectors; i++)
    msix_vector_sync (dev, i);
}

static void
signal_vector (struct virtio_device *dev, uint16_t vector)
{
  struct virtio_msix_vector *v;

  if (vector >= dev->nvectors)
    return;
  v = &dev->vectors[vector];
  cl_vmm_vm_metric_add (dev->vm, dev->name, "interrupts", 1);
  if (msix_masked (dev, v) || !v->attached)
    v->pending = true;
  else
    raise_efd (v->efd);
}

static void
msix_table_access (struct virtio_device *dev, uint64_t off, void *data, unsigned len, bool write)
{
  unsigned entry = off / 16, field = off % 16;
  struct virtio_msix_vector *v;

  if (entry >= dev->nvectors || field + len > 16)
    {
      if (!write)
        memset (data, 0, len);
      return;
    }
  v = &dev->vectors[entry];
  if (!write)
    {
      memcpy (data, (uint8_t *) &v->addr_lo + field, len);
      return;
    }
  memcpy ((uint8_t *) &v->addr_lo + field, data, len);
  v->ctrl &= 1; /* only the mask bit is defined */
  msix_vector_sync (dev, entry);
}

static void
msix_pba_read (struct virtio_device *dev, uint64_t off, void *data, unsigned len)
{
  uint8_t *out = data;
  for (unsigned b = 0; b < len; b++)
    {
      out[b] = 0;
      for (unsigned bit = 0; bit < 8; bit++)
        {
          uint64_t i = (off + b) * 8 + bit;
          if (i < dev->nvectors && dev->vectors[i].pending)
            out[b] |= 1u << bit;
        }
    }
}

/* ---------------------------------------------------------- status, queues */

void
cl_vmm_virtio_config_changed (struct virtio_device *dev)
{
  dev->config_generation++;
  dev->isr |= 2;
  signal_vector (dev, dev->config_msix_vector);
}

void
cl_vmm_virtio_device_fail (struct virtio_device *dev, unsigned q, const char *why)
{
  if (!dev->broken_logged)
    cl_warn ("%s: queue %u: %s; device needs reset", dev->name, q, why);
  dev->broken_logged = true;
  cl_vmm_vm_metric_add (dev->vm, dev->name, "queue_errors", 1);
  if (dev->status & VIRTIO_STATUS_NEEDS_RESET)
    return;
  dev->status |= VIRTIO_STATUS_NEEDS_RESET;
  if (dev->status & VIRTIO_STATUS_DRIVER_OK)
    cl_vmm_virtio_config_changed (dev);
}

void
cl_vmm_virtio_queue_interrupt (struct virtio_device *dev, unsigned q)
{
  dev->isr |= 1;
  signal_vector (dev, dev->queues[q].msix_vector);
}

void
cl_vmm_virtio_queue_flush (struct virtio_device *dev, unsigned q)
{
  if (cl_vmm_virtq_should_notify (&dev->queues[q].vq))
    cl_vmm_virtio_queue_interrupt (dev, q);
}

void
cl_vmm_virtio_queue_complete (struct virtio_device *dev, unsigned q, uint16_t head,
                              uint32_t written)
{
  cl_vmm_virtq_push (&dev->queues[q].vq, head, written);
  cl_vmm_virtio_queue_flush (dev, q);
}

void
cl_vmm_virtio_queue_serve (struct virtio_device *dev, unsigned q, struct virtq_chain *chain,
                           virtio_chain_fn fn)
{
  struct virtq *vq = &dev->queues[q].vq;
  const char *why;
  int r;

  do
    {
      while ((r = cl_vmm_virtq_pop (vq, chain, &why)) > 0)
        {
          int64_t written = fn (dev, q, chain);
          if (written < 0)
            {
              cl_vmm_virtq_unpop (vq, 1);
              cl_vmm_virtio_queue_flush (dev, q);
              return;
            }
          cl_vmm_virtq_push (vq, chain->head, written);
          if (!virtio_device_running (dev))
            break; /* the request itself broke the rules */
        }
      if (r < 0)
        {
          cl_vmm_virtio_device_fail (dev, q, why);
          return;
        }
      cl_vmm_virtio_queue_flush (dev, q);
    }
  while (cl_vmm_virtq_enable_notify (vq));
}

static void
device_reset (struct virtio_device *dev)
{
  if (dev->ops->reset && (dev->status & VIRTIO_STATUS_DRIVER_OK))
    dev->ops->reset (dev);
  for (unsigned q = 0; q < dev->ops->num_queues; q++)
    {
      cl_vmm_virtq_reset (&dev->queues[q].vq);
      dev->queues[q].vq.size = dev->ops->queue_max_size;
      dev->queues[q].msix_vector = VIRTIO_MSI_NO_VECTOR;
    }
  dev->status = 0;
  dev->isr = 0;
  dev->driver_features = 0;
  dev->device_feature_select = dev->driver_feature_select = 0;
  dev->queue_select = 0;
  dev->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
  dev->broken_logged = false;
}

static void
activate (struct virtio_device *dev)
{
  cl_error_t err = NULL;

  if (dev->ops->activate && dev->ops->activate (dev, &err) < 0)
    {
      cl_warn ("%s: cannot start: %s", dev->name, err->msg);
      cl_error_release (&err);
      dev->status |= VIRTIO_STATUS_NEEDS_RESET;
      return;
    }
  /* Buffers made available before DRIVER_OK are served now. */
  for (unsigned q = 0; q < dev->ops->num_queues; q++)
    if (dev->queues[q].vq.ready && !(dev->ops->own_kick_mask & (1u << q)))
      raise_efd (dev->queues[q].kick_fd);
}

static void
set_status (struct virtio_device *dev, uint8_t v)
{
  uint8_t old = dev->status;

  if (v == 0)
    {
      device_reset (dev);
      return;
    }
  if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK))
    {
      uint64_t f = dev->driver_features;
      if ((f & ~device_features (dev)) || !(f & (1ull << VIRTIO_F_VERSION_1)))
        v &= ~VIRTIO_STATUS_FEATURES_OK; /* the driver reads it back and gives up */
    }
  dev->status = v | (old & VIRTIO_STATUS_NEEDS_RESET);
  if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)
      && !(dev->status & VIRTIO_STATUS_NEEDS_RESET))
    activate (dev);
}

static void
queue_enable (struct virtio_device *dev, struct virtio_queue_state *qs)
{
  const char *why;

  if (qs->vq.ready)
    return;
  qs->vq.event_idx = virtio_has_feature (dev, VIRTIO_F_EVENT_IDX);
  if (cl_vmm_virtq_start (&qs->vq, cl_vmm_vm_guest_mem (dev->vm), &why) < 0)
    {
      cl_vmm_virtio_device_fail (dev, qs->index, why);
      return;
    }
  qs->vq.ready = true;
}

static uint16_t
valid_vector (const struct virtio_device *dev, uint16_t vector)
{
  return vector < dev->nvectors ? vector : VIRTIO_MSI_NO_VECTOR;
}

/* The common configuration structure, as the driver sees it now. */
struct common_cfg
{
  uint32_t device_feature_select, device_feature, driver_feature_select, driver_feature;
  uint16_t config_msix_vector, num_queues;
  uint8_t device_status, config_generation;
  uint16_t queue_select, queue_size, queue_msix_vector, queue_enable, queue_notify_off;
  uint64_t queue_desc, queue_driver, queue_device;
  uint16_t queue_notify_data, queue_reset;
  uint8_t pad[4];
} __attribute__ ((packed));

_Static_assert (sizeof (struct common_cfg) == REGION_COMMON_LEN, "common cfg layout");

static void
common_read (struct virtio_device *dev, uint64_t off, void *data, unsigned len)
{
  struct common_cfg c = { 0 };
  uint64_t feats = device_features (dev);

  c.device_feature_select = dev->device_feature_select;
  c.device_feature = dev->device_feature_select == 0   ? (uint32_t) feats
                     : dev->device_feature_select == 1 ? (uint32_t) (feats >> 32)
                                                       : 0;
  c.driver_feature_select = dev->driver_feature_select;
  c.driver_feature = dev->driver_feature_select == 0   ? (uint32_t) dev->driver_features
                     : dev->driver_feature_select == 1 ? (uint32_t) (dev->driver_features >> 32)
                                                       : 0;
  c.config_msix_vector = dev->config_msix_vector;
  c.num_queues = dev->ops->num_queues;
  c.device_status = dev->status;
  c.config_generation = dev->config_generation;
  c.queue_select = dev->queue_select;
  if (dev->queue_select < dev->ops->num_queues)
    {
      struct virtio_queue_state *qs = &dev->queues[dev->queue_select];
      c.queue_size = qs->vq.size;
      c.queue_msix_vector = qs->msix_vector;
      c.queue_enable = qs->vq.ready;
      c.queue_notify_off = dev->queue_select;
      c.queue_desc = qs->vq.desc_addr;
      c.queue_driver = qs->vq.avail_addr;
      c.queue_device = qs->vq.used_addr;
    }
  memcpy (data, (uint8_t *) &c + off, len);
}

static void
set_u64_part (uint64_t *field, uint64_t off_in_field, uint64_t val, unsigned len)
{
  uint8_t *p = (uint8_t *) field;
  memcpy (p + off_in_field, &val, len);
}

static void
common_write (struct virtio_device *dev, uint64_t off, uint64_t val, unsigned len)
{
  struct virtio_queue_state *qs = NULL;
  bool queue_locked;

  if (dev->queue_select < dev->ops->num_queues)
    qs = &dev->queues[dev->queue_select];
  /* Queue layout is frozen once the queue is enabled or the device runs. */
  queue_locked = qs == NULL || qs->vq.ready || (dev->status & VIRTIO_STATUS_DRIVER_OK);

  switch (off)
    {
    case offsetof (struct common_cfg, device_feature_select):
      dev->device_feature_select = val;
      break;
    case offsetof (struct common_cfg, driver_feature_select):
      dev->driver_feature_select = val;
      break;
    case offsetof (struct common_cfg, driver_feature):
      if (dev->status & VIRTIO_STATUS_FEATURES_OK)
        break;
      if (dev->driver_feature_select == 0)
        dev->driver_features = (dev->driver_features & ~0xffffffffull) | (uint32_t) val;
      else if (dev->driver_feature_select == 1)
        dev->driver_features = (dev->driver_features & 0xffffffffull) | (val << 32);
      break;
    case offsetof (struct common_cfg, config_msix_vector):
      dev->config_msix_vector = valid_vector (dev, val);
      break;
    case offsetof (struct common_cfg, device_status):
      set_status (dev, val);
      break;
    case offsetof (struct common_cfg, queue_select):
      dev->queue_select = val;
      break;
    case offsetof (struct common_cfg, queue_size):
      if (!queue_locked)
        qs->vq.size = val > dev->ops->queue_max_size ? 0 : val;
      break;
    case offsetof (struct common_cfg, queue_msix_vector):
      if (qs)
        qs->msix_vector = valid_vector (dev, val);
      break;
    case offsetof (struct common_cfg, queue_enable):
      if (qs && val == 1 && !(dev->status & VIRTIO_STATUS_DRIVER_OK))
        queue_enable (dev, qs);
      break;
    default:
      if (off >= offsetof (struct common_cfg, queue_desc)
          && off + len <= offsetof (struct common_cfg, queue_notify_data) && !queue_locked)
        {
          uint64_t rel = off - offsetof (struct common_cfg, queue_desc);
          uint64_t *fields[] = { &qs->vq.desc_addr, &qs->vq.avail_addr, &qs->vq.used_addr };
          if (rel % 8 + len <= 8)
            set_u64_part (fields[rel / 8], rel % 8, val, len);
        }
      break;
    }
}

/* ------------------------------------------------------------ BAR access */

static void
bar_read (struct pci_device *pdev, int bar, uint64_t off, void *data, unsigned len)
{
  struct virtio_device *dev = pdev->opaque;

  memset (data, 0, len);
  if (bar != BAR_INDEX || len > 8)
    return;
  pthread_mutex_lock (&dev->lock);
  if (off + len <= REGION_COMMON + REGION_COMMON_LEN)
    common_read (dev, off - REGION_COMMON, data, len);
  else if (off == REGION_ISR)
    {
      /* Reading ISR acknowledges the interrupt. */
      *(uint8_t *) data = dev->isr;
      dev->isr = 0;
    }
  else if (off >= REGION_DEVICE && off + len <= REGION_DEVICE + dev->config_size)
    memcpy (data, dev->config + (off - REGION_DEVICE), len);
  else if (off >= REGION_MSIX_TABLE && off < REGION_MSIX_PBA)
    msix_table_access (dev, off - REGION_MSIX_TABLE, data, len, false);
  else if (off >= REGION_MSIX_PBA && off + len <= BAR_SIZE)
    msix_pba_read (dev, off - REGION_MSIX_PBA, data, len);
  pthread_mutex_unlock (&dev->lock);
}

static void
bar_write (struct pci_device *pdev, int bar, uint64_t off, const void *data, unsigned len)
{
  struct virtio_device *dev = pdev->opaque;
  uint64_t val = 0;

  if (bar != BAR_INDEX || len > 8)
    return;
  memcpy (&val, data, len);
  if (off >= REGION_NOTIFY && off < REGION_NOTIFY + NOTIFY_MULTIPLIER * dev->ops->num_queues)
    {
      /* Only when no ioeventfd caught the write: hand it to the I/O thread. */
      unsigned q = (off - REGION_NOTIFY) / NOTIFY_MULTIPLIER;
      raise_efd (dev->queues[q].kick_fd);
      return;
    }
  pthread_mutex_lock (&dev->lock);
  if (off + len <= REGION_COMMON + REGION_COMMON_LEN)
    common_write (dev, off - REGION_COMMON, val, len);
  else if (off >= REGION_DEVICE && off + len <= REGION_DEVICE + dev->config_size)
    {
      if (dev->ops->config_write)
        dev->ops->config_write (dev, off - REGION_DEVICE, data, len);
    }
  else if (off >= REGION_MSIX_TABLE && off < REGION_MSIX_PBA)
    msix_table_access (dev, off - REGION_MSIX_TABLE, &val, len, true);
  pthread_mutex_unlock (&dev->lock);
}

static bool
overlaps (unsigned a, unsigned alen, unsigned b, unsigned blen)
{
  return a < b + blen && b < a + alen;
}

/* VIRTIO_PCI_CAP_PCI_CFG: writing the data field writes the BAR at the
   window; setting the window reads the BAR into the data field. */
static void
pci_cfg_window (struct virtio_device *dev, unsigned offset, unsigned len)
{
  struct virtio_pci_cfg_cap w;
  unsigned base = dev->pci_cfg_cap;
  unsigned data_off = base + offsetof (struct virtio_pci_cfg_cap, data);

  memcpy (&w, &dev->pci.cfg[base], sizeof w);
  if (w.cap.bar != BAR_INDEX || (w.cap.length != 1 && w.cap.length != 2 && w.cap.length != 4)
      || w.cap.offset % w.cap.length != 0)
    return;
  if (overlaps (offset, len, data_off, 4))
    bar_write (&dev->pci, BAR_INDEX, w.cap.offset, w.data, w.cap.length);
  else if (overlaps (offset, len, base + 4, 12))
    bar_read (&dev->pci, BAR_INDEX, w.cap.offset, &dev->pci.cfg[data_off], w.cap.length);
}

static void
cfg_write (struct pci_device *pdev, unsigned offset, unsigned len)
{
  struct virtio_device *dev = pdev->opaque;
  unsigned ctrl = dev->msix_cap + 2;

  if (overlaps (offset, len, dev->pci_cfg_cap, sizeof (struct virtio_pci_cfg_cap)))
    {
      pci_cfg_window (dev, offset, len);
      return;
    }

  if (offset < ctrl + 2 && offset + len > ctrl)
    {
      pthread_mutex_lock (&dev->lock);
      msix_sync_all (dev);
      pthread_mutex_unlock (&dev->lock);
    }
}

/* ------------------------------------------------------------- doorbells */

static void
kick_register (struct virtio_device *dev, unsigned q, uint64_t base)
{
  struct virtio_queue_state *qs = &dev->queues[q];
  uint64_t addr = base + REGION_NOTIFY + (uint64_t) q * NOTIFY_MULTIPLIER;
  cl_error_t err = NULL;

  if (base == 0)
    return;
  /* Linux writes the queue index as 16 bits. */
  if (cl_vmm_vm_ioeventfd (dev->vm, addr, 2, false, -1, qs->kick_fd, true, &err) < 0)
    {
      cl_debug ("%s: no ioeventfd for queue %u (kicks trap instead): %s", dev->name, q, err->msg);
      cl_error_release (&err);
      return;
    }
  qs->kick_addr = addr;
}

static void
kick_unregister (struct virtio_device *dev, unsigned q)
{
  struct virtio_queue_state *qs = &dev->queues[q];
  cl_error_t err = NULL;

  if (qs->kick_addr == 0)
    return;
  if (cl_vmm_vm_ioeventfd (dev->vm, qs->kick_addr, 2, false, -1, qs->kick_fd, false, &err) < 0)
    cl_error_release (&err);
  qs->kick_addr = 0;
}

static void
bar_moved (struct pci_device *pdev, int bar, uint64_t old_addr, uint64_t new_addr)
{
  struct virtio_device *dev = pdev->opaque;

  (void) old_addr;
  if (bar != BAR_INDEX)
    return;
  for (unsigned q = 0; q < dev->ops->num_queues; q++)
    {
      kick_unregister (dev, q);
      kick_register (dev, q, new_addr);
    }
}

static void
on_kick (void *opaque, uint32_t events)
{
  struct virtio_queue_state *qs = opaque;
  struct virtio_device *dev = qs->dev;
  uint64_t n;

  (void) events;
  if (read (qs->kick_fd, &n, sizeof n) < 0)
    return;
  pthread_mutex_lock (&dev->lock);
  cl_vmm_vm_metric_add (dev->vm, dev->name, "kicks", 1);
  if (virtio_device_running (dev) && qs->vq.ready && dev->ops->queue_notify)
    dev->ops->queue_notify (dev, qs->index);
  pthread_mutex_unlock (&dev->lock);
}

/* ------------------------------------------------------------- snapshot */

static json_t *
persist_save (void *opaque)
{
  struct virtio_device *dev = opaque;
  json_t *queues = json_array (), *vectors = json_array (), *state;

  for (unsigned q = 0; q < dev->ops->num_queues; q++)
    {
      const struct virtio_queue_state *qs = &dev->queues[q];
      json_array_append_new (
          queues,
          json_pack ("{s:i, s:b, s:I, s:I, s:I, s:i, s:i, s:i, s:b, s:i}", "size", qs->vq.size,
                     "ready", qs->vq.ready, "desc", (json_int_t) qs->vq.desc_addr, "avail",
                     (json_int_t) qs->vq.avail_addr, "used", (json_int_t) qs->vq.used_addr,
                     "last_avail", qs->vq.last_avail_idx, "used_idx", qs->vq.used_idx,
                     "signalled_used", qs->vq.signalled_used, "signalled_valid",
                     qs->vq.signalled_used_valid, "vector", qs->msix_vector));
    }
  for (unsigned i = 0; i < dev->nvectors; i++)
    {
      const struct virtio_msix_vector *v = &dev->vectors[i];
      json_array_append_new (
          vectors, json_pack ("{s:I, s:I, s:I, s:I, s:b}", "addr_lo", (json_int_t) v->addr_lo,
                              "addr_hi", (json_int_t) v->addr_hi, "data", (json_int_t) v->data,
                              "ctrl", (json_int_t) v->ctrl, "pending", v->pending));
    }
  state = json_pack ("{s:i, s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:o}", "status",
                     dev->status, "features", (json_int_t) dev->driver_features, "dfselect",
                     dev->device_feature_select, "drfselect", dev->driver_feature_select,
                     "queue_select", dev->queue_select, "config_vector", dev->config_msix_vector,
                     "isr", dev->isr, "generation", dev->config_generation, "msix_ctrl",
                     msix_ctrl (dev), "queues", queues, "msix", vectors);
  {
    /* Device config bytes as hex: some devices let the driver write it. */
    char *hex = malloc (dev->config_size * 2 + 1);
    for (unsigned i = 0; i < dev->config_size; i++)
      sprintf (hex + 2 * i, "%02x", dev->config[i]);
    hex[dev->config_size * 2] = '\0';
    json_object_set_new (state, "config", json_string (hex));
    free (hex);
  }
  if (dev->ops->save)
    json_object_set_new (state, "device", dev->ops->save (dev));
  return state;
}

static int
persist_restore (void *opaque, json_t *state, cl_error_t *err)
{
  struct virtio_device *dev = opaque;
  json_t *queues = NULL, *vectors = NULL, *device = NULL;
  json_error_t jerr;
  int status, dfs, drfs, qsel, cvec, isr, gen, ctrl;
  json_int_t feats;
  const char *hex = NULL;
  uint16_t ctrl16;

  if (json_unpack_ex (state, &jerr, 0,
                      "{s:i, s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:o, s?s, s?o}", "status",
                      &status, "features", &feats, "dfselect", &dfs, "drfselect", &drfs,
                      "queue_select", &qsel, "config_vector", &cvec, "isr", &isr, "generation",
                      &gen, "msix_ctrl", &ctrl, "queues", &queues, "msix", &vectors, "config", &hex,
                      "device", &device)
          < 0
      || json_array_size (queues) != dev->ops->num_queues
      || json_array_size (vectors) != dev->nvectors)
    return cl_error_make (err, 0, "%s: snapshot state: %s", dev->name,
                          jerr.text[0] ? jerr.text : "queue or vector count differs");

  dev->status = status;
  dev->driver_features = feats;
  dev->device_feature_select = dfs;
  dev->driver_feature_select = drfs;
  dev->queue_select = qsel;
  dev->config_msix_vector = valid_vector (dev, cvec);
  dev->isr = isr;
  dev->config_generation = gen;
  ctrl16 = ctrl;
  memcpy (&dev->pci.cfg[dev->msix_cap + 2], &ctrl16, 2);
  /* Config bytes that no driver has seen are the device's own: this
     device's, made from the machine being restored, may differ (a
     template's clone given its own disk and MAC before its guest probes
     them, docs/templates.md). */
  if (hex && strlen (hex) == dev->config_size * 2 && (status & VIRTIO_STATUS_DRIVER))
    for (unsigned i = 0; i < dev->config_size; i++)
      sscanf (hex + 2 * i, "%2hhx", &dev->config[i]);

  for (unsigned i = 0; i < dev->nvectors; i++)
    {
      struct virtio_msix_vector *v = &dev->vectors[i];
      json_int_t lo, hi, data, vctrl;
      int pending;
      if (json_unpack (json_array_get (vectors, i), "{s:I, s:I, s:I, s:I, s:b}", "addr_lo", &lo,
                       "addr_hi", &hi, "data", &data, "ctrl", &vctrl, "pending", &pending)
          < 0)
        return cl_error_make (err, 0, "%s: snapshot state: msix[%u]", dev->name, i);
      v->addr_lo = lo;
      v->addr_hi = hi;
      v->data = data;
      v->ctrl = vctrl & 1;
      v->pending = pending;
    }
  for (unsigned q = 0; q < dev->ops->num_queues; q++)
    {
      struct virtio_queue_state *qs = &dev->queues[q];
      int size, ready, last, used, sig, sigv, vec;
      json_int_t desc, avail, usedaddr;
      const char *why;
      if (json_unpack (json_array_get (queues, q),
                       "{s:i, s:b, s:I, s:I, s:I, s:i, s:i, s:i, s:b, s:i}", "size", &size, "ready",
                       &ready, "desc", &desc, "avail", &avail, "used", &usedaddr, "last_avail",
                       &last, "used_idx", &used, "signalled_used", &sig, "signalled_valid", &sigv,
                       "vector", &vec)
          < 0)
        return cl_error_make (err, 0, "%s: snapshot state: queues[%u]", dev->name, q);
      cl_vmm_virtq_reset (&qs->vq);
      qs->vq.size = size;
      qs->vq.desc_addr = desc;
      qs->vq.avail_addr = avail;
      qs->vq.used_addr = usedaddr;
      qs->vq.last_avail_idx = last;
      qs->vq.used_idx = used;
      qs->vq.signalled_used = sig;
      qs->vq.signalled_used_valid = sigv;
      qs->vq.event_idx = virtio_has_feature (dev, VIRTIO_F_EVENT_IDX);
      qs->msix_vector = valid_vector (dev, vec);
      if (ready)
        {
          if (cl_vmm_virtq_start (&qs->vq, cl_vmm_vm_guest_mem (dev->vm), &why) < 0)
            return cl_error_make (err, 0, "%s: snapshot state: queue %u: %s", dev->name, q, why);
          qs->vq.ready = true;
        }
    }
  if (device && dev->ops->restore && dev->ops->restore (dev, device, err) < 0)
    return -1;
  msix_sync_all (dev);
  if (virtio_device_running (dev))
    activate (dev);
  return 0;
}

static int
persist_save_check (void *opaque, cl_error_t *err)
{
  struct virtio_device *dev = opaque;

  return dev->ops->save_check ? dev->ops->save_check (dev, err) : 0;
}

/* The rings of the queues a kernel backend (vhost) serves: it writes
   their used rings where no one sees it. */
static void
persist_mark_dirty (void *opaque)
{
  struct virtio_device *dev = opaque;

  for (unsigned q = 0; q < dev->ops->num_queues; q++)
    {
      struct virtq *vq = &dev->queues[q].vq;
      if ((dev->ops->own_kick_mask & (1u << q)) && vq->ready && vq->used)
        cl_vmm_guest_mem_mark_dirty (vq->mem, vq->used, 6ull + 8ull * vq->size);
    }
}

/* Every ready queue's vector once more: an MSI sent through an irqfd just
   before the save may not have reached the saved LAPIC. */
static void
persist_resumed (void *opaque)
{
  struct virtio_device *dev = opaque;

  if (!(dev->status & VIRTIO_STATUS_DRIVER_OK))
    return;
  for (unsigned q = 0; q < dev->ops->num_queues; q++)
    if (dev->queues[q].vq.ready)
      cl_vmm_virtio_queue_interrupt (dev, q);
  if (dev->ops->restored && virtio_device_running (dev))
    dev->ops->restored (dev);
}

static const struct vm_persist_ops virtio_persist_ops = {
  .save = persist_save,
  .save_check = persist_save_check,
  .restore = persist_restore,
  .mark_dirty = persist_mark_dirty,
  .resumed = persist_resumed,
};

/* ----------------------------------------------------------------- init */

static const struct pci_device_ops virtio_pci_ops = {
  .bar_read = bar_read,
  .bar_write = bar_write,
  .cfg_write = cfg_write,
  .bar_moved = bar_moved,
};

/* Names the device "virtio-<kind><n>", n counting the devices of that kind
   already on this VM, and registers its snapshot state under that name:
   the VM's persist registry refuses duplicates, so the first free n wins.
   A restoring process that builds the same devices in the same order gets
   the same names. */
static int
name_and_register (struct virtio_device *dev, cl_error_t *err)
{
  for (unsigned n = 0; n < 64; n++)
    {
      cl_error_t dup = NULL;
      snprintf (dev->name, sizeof dev->name, "virtio-%s%u", dev->ops->kind, n);
      if (cl_vmm_vm_persist_register (dev->vm, dev->name, &virtio_persist_ops, dev, &dup) == 0)
        return 0;
      cl_error_release (&dup);
    }
  return cl_error_make (err, 0, "virtio-%s: too many devices of this kind", dev->ops->kind);
}

static void
add_virtio_cap (struct virtio_device *dev, uint8_t type, uint32_t offset, uint32_t length)
{
  struct virtio_pci_cap cap = {
    .cap_vndr = PCI_CAP_ID_VNDR,
    .cap_len = sizeof cap,
    .cfg_type = type,
    .bar = BAR_INDEX,
    .offset = offset,
    .length = length,
  };
  cl_vmm_pci_add_capability (&dev->pci, &cap, sizeof cap);
}

static int
add_capabilities (struct virtio_device *dev, cl_error_t *err)
{
  struct virtio_pci_notify_cap notify = {
    .cap = {
      .cap_vndr = PCI_CAP_ID_VNDR,
      .cap_len = sizeof notify,
      .cfg_type = CAP_NOTIFY_CFG,
      .bar = BAR_INDEX,
      .offset = REGION_NOTIFY,
      .length = NOTIFY_MULTIPLIER * dev->ops->num_queues,
    },
    .notify_off_multiplier = NOTIFY_MULTIPLIER,
  };
  struct msix_cap msix = {
    .cap_id = PCI_CAP_ID_MSIX,
    .ctrl = dev->nvectors - 1,
    .table = REGION_MSIX_TABLE | BAR_INDEX,
    .pba = REGION_MSIX_PBA | BAR_INDEX,
  };
  struct virtio_pci_cfg_cap window = {
    .cap = { .cap_vndr = PCI_CAP_ID_VNDR, .cap_len = sizeof window, .cfg_type = CAP_PCI_CFG },
  };
  int off;

  add_virtio_cap (dev, CAP_COMMON_CFG, REGION_COMMON, REGION_COMMON_LEN);
  if (cl_vmm_pci_add_capability (&dev->pci, &notify, sizeof notify) < 0)
    return cl_error_make (err, 0, "%s: PCI capability space full", dev->name);
  add_virtio_cap (dev, CAP_ISR_CFG, REGION_ISR, 4);
  if (dev->config_size > 0)
    add_virtio_cap (dev, CAP_DEVICE_CFG, REGION_DEVICE, dev->config_size);
  off = cl_vmm_pci_add_capability (&dev->pci, &msix, sizeof msix);
  if (off < 0)
    return cl_error_make (err, 0, "%s: PCI capability space full", dev->name);
  dev->msix_cap = off;
  dev->pci.wmask[off + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8;

  off = cl_vmm_pci_add_capability (&dev->pci, &window, sizeof window);
  if (off < 0)
    return cl_error_make (err, 0, "%s: PCI capability space full", dev->name);
  dev->pci_cfg_cap = off;
  /* bar, offset, length and data are the driver's to write */
  memset (&dev->pci.wmask[off + offsetof (struct virtio_pci_cap, bar)], 0xff, 1);
  memset (&dev->pci.wmask[off + offsetof (struct virtio_pci_cap, offset)], 0xff, 8);
  memset (&dev->pci.wmask[off + offsetof (struct virtio_pci_cfg_cap, data)], 0xff, 4);
  return 0;
}

/* VM teardown: every thread that could touch the device has stopped. */
static void
virtio_device_destroy (void *opaque)
{
  struct virtio_device *dev = opaque;
  for (unsigned i = 0; dev->vectors && i < dev->nvectors; i++)
    if (dev->vectors[i].efd >= 0)
      close (dev->vectors[i].efd);
  free (dev->vectors);
  for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
    if (dev->queues[q].kick_fd >= 0)
      close (dev->queues[q].kick_fd);
  pthread_mutex_destroy (&dev->lock);
  dev->ops->release (dev);
}

int
cl_vmm_virtio_device_init (struct virtio_device *dev, struct vm *vm, cl_error_t *err)
{
  const struct virtio_device_ops *ops = dev->ops;

  dev->vm = vm;
  pthread_mutex_init (&dev->lock, NULL);
  for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
    dev->queues[q].kick_fd = -1;
  cl_vmm_vm_add_destructor (vm, virtio_device_destroy, dev);
  if (name_and_register (dev, err) < 0)
    return -1;
  if (ops->num_queues > VIRTIO_MAX_QUEUES || dev->config_size > REGION_DEVICE_MAX)
    return cl_error_make (err, 0, "%s: too many queues or too large a config", dev->name);

  dev->vectors = cl_xmalloc0 ((ops->num_queues + 1) * sizeof *dev->vectors);
  for (unsigned i = 0; i < ops->num_queues + 1; i++)
    dev->vectors[i].efd = -1;
  dev->nvectors = ops->num_queues + 1;
  for (unsigned i = 0; i < dev->nvectors; i++)
    {
      struct virtio_msix_vector *v = &dev->vectors[i];
      v->ctrl = 1; /* masked until the driver says otherwise */
      v->efd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (v->efd < 0)
        return cl_error_errno (err, "%s: eventfd", dev->name);
      v->gsi = cl_vmm_vm_gsi_alloc (vm, err);
      if (v->gsi < 0)
        return cl_error_wrap (err, "%s", dev->name);
    }
  for (unsigned q = 0; q < ops->num_queues; q++)
    {
      struct virtio_queue_state *qs = &dev->queues[q];
      qs->dev = dev;
      qs->index = q;
      qs->kick_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (qs->kick_fd < 0)
        return cl_error_errno (err, "%s: eventfd", dev->name);
    }
  device_reset (dev);

  cl_vmm_pci_device_init (&dev->pci, VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_BASE + ops->device_id,
                          VIRTIO_PCI_VENDOR, VIRTIO_PCI_SUBSYS + ops->device_id, ops->class_code,
                          1);
  dev->pci.ops = &virtio_pci_ops;
  dev->pci.opaque = dev;
  dev->pci.bars[BAR_INDEX].size = BAR_SIZE;
  dev->pci.bars[BAR_INDEX].is_64bit = true;
  if (add_capabilities (dev, err) < 0)
    return -1;
  if (cl_vmm_pci_register (vm, &dev->pci, err) < 0)
    return cl_error_wrap (err, "%s", dev->name);

  for (unsigned q = 0; q < ops->num_queues; q++)
    {
      kick_register (dev, q, bar_base (dev));
      if (ops->own_kick_mask & (1u << q))
        continue;
      if (cl_vmm_vm_event_add (vm, dev->queues[q].kick_fd, EPOLLIN, on_kick, &dev->queues[q], err)
          < 0)
        return cl_error_wrap (err, "%s", dev->name);
    }
  return 0;
}
