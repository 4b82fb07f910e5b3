/* SPDX-License-Identifier: Apache-2.0 */
/* Split virtqueues (virtio 1.2, section 2.7), device side.  The rings live
   in guest memory and are reached only through cl_vmm_guest_mem_ptr(); every
   descriptor is copied once, then checked (bounds, direction, loops,
   lengths) before a device sees a host pointer. */
#ifndef CLOISON_VMM_VIRTQ_H
#define CLOISON_VMM_VIRTQ_H

#include "vmm/guest_mem.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* The largest split queue the spec allows. */
#define VIRTQ_MAX_SIZE 32768
/* Buffers in one chain, indirect tables included: our devices advertise
   limits below this (seg_max), so a longer chain is hostile or broken. */
#define VIRTQ_MAX_SEGS 1024

struct virtq_desc
{
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

struct virtq_used_elem
{
  uint32_t id;
  uint32_t len;
};

struct virtq
{
  /* Set by the driver through the transport. */
  uint16_t size;
  bool ready;
  uint64_t desc_addr, avail_addr, used_addr;
  bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
  /* Device-side cursors: saved and restored with the device. */
  uint16_t last_avail_idx;
  uint16_t used_idx;
  uint16_t signalled_used;
  bool signalled_used_valid;
  /* Host views of the rings, resolved by cl_vmm_virtq_start(). */
  const struct guest_mem *mem;
  struct virtq_desc *desc;
  uint16_t *avail; /* flags, idx, ring[size], used_event */
  uint8_t *used;   /* flags, idx, ring[size], avail_event */
};

/* One chain popped from the avail ring: device-readable buffers first
   (`out`), then device-writable ones (`in`), as host iovecs. */
struct virtq_chain
{
  uint16_t head;
  unsigned nout, nin;
  uint64_t out_len, in_len;
  struct iovec iov[VIRTQ_MAX_SEGS]; /* out buffers, then in buffers */
};

/* Resolves the rings (size, alignment, guest memory).  0, or -1 with a
   reason in *why (a static string). */
int cl_vmm_virtq_start (struct virtq *vq, const struct guest_mem *mem, const char **why);
/* Forgets everything (device reset). */
void cl_vmm_virtq_reset (struct virtq *vq);

/* 1 with a chain, 0 when the ring is empty, -1 when the driver broke the
   rules (*why says how): the caller marks the device NEEDS_RESET. */
int cl_vmm_virtq_pop (struct virtq *vq, struct virtq_chain *chain, const char **why);
/* Gives back the last `n` popped chains unused (e.g. rx with no room). */
void cl_vmm_virtq_unpop (struct virtq *vq, uint16_t n);
/* Publishes a used element (head, bytes written) and its index. */
void cl_vmm_virtq_push (struct virtq *vq, uint16_t head, uint32_t written);
/* Whether the driver wants an interrupt for what was pushed since the
   last one (EVENT_IDX or NO_INTERRUPT).  Call after a batch of pushes. */
bool cl_vmm_virtq_should_notify (struct virtq *vq);
/* With EVENT_IDX: asks to be kicked at the next avail entry and tells
   whether entries arrived meanwhile (true: pop again). */
bool cl_vmm_virtq_enable_notify (struct virtq *vq);

/* Copies between a chain's buffers and flat memory. */
uint64_t cl_vmm_virtq_chain_read (const struct virtq_chain *chain, uint64_t offset, void *dst,
                                  uint64_t len);
uint64_t cl_vmm_virtq_chain_write (const struct virtq_chain *chain, uint64_t offset,
                                   const void *src, uint64_t len);

#endif
