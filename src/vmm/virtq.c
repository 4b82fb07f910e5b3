/* SPDX-License-Identifier: Apache-2.0 */
/* Split virtqueue, device side.  The driver owns the descriptor table and
   the avail ring and may rewrite them at any moment, so each descriptor is
   copied once into a local before it is checked, and the avail index is
   re-read with acquire semantics before the entries it covers.  The host
   is x86-64 (little-endian, like virtio 1.x), so fields are read as is. */
#include "vmm/virtq.h"

#include <stdlib.h>
#include <string.h>

#define AVAIL_FLAGS(vq) (&(vq)->avail[0])
#define AVAIL_IDX(vq) (&(vq)->avail[1])
#define AVAIL_RING(vq, i) (&(vq)->avail[2 + (i)])
#define USED_EVENT(vq) (&(vq)->avail[2 + (vq)->size])

static uint16_t *
used_idx_ptr (struct virtq *vq)
{
  return (uint16_t *) (vq->used + 2);
}

static struct virtq_used_elem *
used_elem (struct virtq *vq, uint16_t i)
{
  return (struct virtq_used_elem *) (vq->used + 4 + 8 * (uint32_t) i);
}

static uint16_t *
avail_event_ptr (struct virtq *vq)
{
  return (uint16_t *) (vq->used + 4 + 8 * (uint32_t) vq->size);
}

int
cl_vmm_virtq_start (struct virtq *vq, const struct guest_mem *mem, const char **why)
{
  uint32_t n = vq->size;

  if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)) != 0)
    {
      *why = "queue size is not a power of two in 1..32768";
      return -1;
    }
  if ((vq->desc_addr & 15) || (vq->avail_addr & 1) || (vq->used_addr & 3))
    {
      *why = "misaligned ring address";
      return -1;
    }
  vq->desc = cl_vmm_guest_mem_ptr (mem, vq->desc_addr, 16ull * n);
  vq->avail = cl_vmm_guest_mem_ptr (mem, vq->avail_addr, 6ull + 2ull * n);
  vq->used = cl_vmm_guest_mem_ptr (mem, vq->used_addr, 6ull + 8ull * n);
  if (vq->desc == NULL || vq->avail == NULL || vq->used == NULL)
    {
      vq->desc = NULL;
      vq->avail = NULL;
      vq->used = NULL;
      *why = "ring outside guest memory";
      return -1;
    }
  vq->mem = mem;
  return 0;
}

void
cl_vmm_virtq_reset (struct virtq *vq)
{
  memset (vq, 0, sizeof *vq);
}

static int
chain_fail (const char **why, const char *reason)
{
  *why = reason;
  return -1;
}

/* Walks the chain starting at `head`.  Bounded: at most VIRTQ_MAX_SEGS
   descriptors are accepted, and a table is never visited more times than
   it has entries. */
static int
walk_chain (struct virtq *vq, uint16_t head, struct virtq_chain *chain, const char **why)
{
  const struct virtq_desc *table = vq->desc;
  uint32_t table_size = vq->size;
  uint32_t idx = head;
  uint32_t visited = 0;
  bool in_indirect = false;
  unsigned nseg = 0;

  chain->head = head;
  chain->nout = chain->nin = 0;
  chain->out_len = chain->in_len = 0;

  for (;;)
    {
      struct virtq_desc d;
      void *host;

      if (idx >= table_size)
        return chain_fail (why, "descriptor index out of range");
      if (++visited > table_size)
        return chain_fail (why, "descriptor chain loops");
      memcpy (&d, &table[idx], sizeof d);
      __atomic_signal_fence (__ATOMIC_SEQ_CST); /* use the copy, never re-read */

      if (d.flags & VIRTQ_DESC_F_INDIRECT)
        {
          if (in_indirect)
            return chain_fail (why, "nested indirect descriptor");
          if (d.flags & VIRTQ_DESC_F_NEXT)
            return chain_fail (why, "indirect descriptor with NEXT");
          if (d.len == 0 || d.len % sizeof (struct virtq_desc) != 0)
            return chain_fail (why, "indirect table length not a multiple of 16");
          if (d.len / sizeof (struct virtq_desc) > VIRTQ_MAX_SEGS)
            return chain_fail (why, "indirect table too long");
          table = cl_vmm_guest_mem_ptr (vq->mem, d.addr, d.len);
          if (table == NULL)
            return chain_fail (why, "indirect table outside guest memory");
          table_size = d.len / sizeof (struct virtq_desc);
          in_indirect = true;
          idx = 0;
          visited = 0;
          continue;
        }

      if (nseg >= VIRTQ_MAX_SEGS)
        return chain_fail (why, "descriptor chain too long");
      host = cl_vmm_guest_mem_ptr (vq->mem, d.addr, d.len);
      if (host == NULL)
        return chain_fail (why, "buffer outside guest memory");
      if (d.flags & VIRTQ_DESC_F_WRITE)
        {
          chain->in_len += d.len;
          chain->nin++;
        }
      else
        {
          if (chain->nin > 0)
            return chain_fail (why, "device-readable buffer after a writable one");
          chain->out_len += d.len;
          chain->nout++;
        }
      if (chain->out_len > UINT32_MAX || chain->in_len > UINT32_MAX)
        return chain_fail (why, "chain longer than 4 GiB");
      chain->iov[nseg].iov_base = host;
      chain->iov[nseg].iov_len = d.len;
      nseg++;

      if (!(d.flags & VIRTQ_DESC_F_NEXT))
        return 0;
      idx = d.next;
    }
}

int
cl_vmm_virtq_pop (struct virtq *vq, struct virtq_chain *chain, const char **why)
{
  uint16_t avail_idx, pending, head;

  if (!vq->ready || vq->avail == NULL)
    return 0;
  avail_idx = __atomic_load_n (AVAIL_IDX (vq), __ATOMIC_ACQUIRE);
  pending = (uint16_t) (avail_idx - vq->last_avail_idx);
  if (pending == 0)
    return 0;
  if (pending > vq->size)
    return chain_fail (why, "avail index ran more than a queue ahead");
  head = __atomic_load_n (AVAIL_RING (vq, vq->last_avail_idx & (vq->size - 1)), __ATOMIC_RELAXED);
  if (walk_chain (vq, head, chain, why) < 0)
    return -1;
  vq->last_avail_idx++;
  return 1;
}

void
cl_vmm_virtq_unpop (struct virtq *vq, uint16_t n)
{
  vq->last_avail_idx -= n;
}

/* A migration in progress must resend what the device wrote: the chain's
   writable buffers and the used ring (KVM only sees the guest's writes). */
static void
mark_written (struct virtq *vq, uint16_t head)
{
  struct virtq_chain *chain;
  const char *why;

  if (!__atomic_load_n (&vq->mem->dirty_log, __ATOMIC_ACQUIRE))
    return;
  chain = malloc (sizeof *chain);
  if (chain && walk_chain (vq, head, chain, &why) == 0)
    for (unsigned i = chain->nout; i < chain->nout + chain->nin; i++)
      cl_vmm_guest_mem_mark_dirty (vq->mem, chain->iov[i].iov_base, chain->iov[i].iov_len);
  free (chain);
  cl_vmm_guest_mem_mark_dirty (vq->mem, vq->used, 6ull + 8ull * vq->size);
}

void
cl_vmm_virtq_push (struct virtq *vq, uint16_t head, uint32_t written)
{
  struct virtq_used_elem *e;

  if (vq->used == NULL)
    return;
  mark_written (vq, head);
  e = used_elem (vq, vq->used_idx & (vq->size - 1));
  __atomic_store_n (&e->id, head, __ATOMIC_RELAXED);
  __atomic_store_n (&e->len, written, __ATOMIC_RELAXED);
  vq->used_idx++;
  /* The element must be visible before the index that publishes it. */
  __atomic_store_n (used_idx_ptr (vq), vq->used_idx, __ATOMIC_RELEASE);
}

bool
cl_vmm_virtq_should_notify (struct virtq *vq)
{
  uint16_t old, new_idx, used_event;
  bool valid;

  if (vq->avail == NULL)
    return false;
  /* Our used index store must be ordered before reading the driver's
     suppression fields (a full barrier: store then load). */
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
  old = vq->signalled_used;
  valid = vq->signalled_used_valid;
  new_idx = vq->used_idx;
  if (new_idx == old)
    return false; /* nothing pushed since the last interrupt */
  vq->signalled_used = new_idx;
  vq->signalled_used_valid = true;
  if (!vq->event_idx)
    return !(__atomic_load_n (AVAIL_FLAGS (vq), __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);
  if (!valid)
    return true;
  used_event = __atomic_load_n (USED_EVENT (vq), __ATOMIC_RELAXED);
  /* vring_need_event(): did new_idx move past used_event since old? */
  return (uint16_t) (new_idx - used_event - 1) < (uint16_t) (new_idx - old);
}

bool
cl_vmm_virtq_enable_notify (struct virtq *vq)
{
  if (vq->avail == NULL)
    return false;
  if (vq->event_idx)
    {
      __atomic_store_n (avail_event_ptr (vq), vq->last_avail_idx, __ATOMIC_RELAXED);
      cl_vmm_guest_mem_mark_dirty (vq->mem, avail_event_ptr (vq), 2);
    }
  /* Publish avail_event before looking at the avail index again, or a
     kick could fall between the two. */
  __atomic_thread_fence (__ATOMIC_SEQ_CST);
  return __atomic_load_n (AVAIL_IDX (vq), __ATOMIC_ACQUIRE) != vq->last_avail_idx;
}

static uint64_t
chain_copy (const struct iovec *iov, unsigned n, uint64_t offset, void *flat, uint64_t len,
            bool to_chain)
{
  uint64_t done = 0;

  for (unsigned i = 0; i < n && done < len; i++)
    {
      uint64_t seg = iov[i].iov_len, chunk;

      if (offset >= seg)
        {
          offset -= seg;
          continue;
        }
      chunk = seg - offset;
      if (chunk > len - done)
        chunk = len - done;
      if (to_chain)
        memcpy ((uint8_t *) iov[i].iov_base + offset, (const uint8_t *) flat + done, chunk);
      else
        memcpy ((uint8_t *) flat + done, (const uint8_t *) iov[i].iov_base + offset, chunk);
      done += chunk;
      offset = 0;
    }
  return done;
}

uint64_t
cl_vmm_virtq_chain_read (const struct virtq_chain *chain, uint64_t offset, void *dst, uint64_t len)
{
  return chain_copy (chain->iov, chain->nout, offset, dst, len, false);
}

uint64_t
cl_vmm_virtq_chain_write (const struct virtq_chain *chain, uint64_t offset, const void *src,
                          uint64_t len)
{
  return chain_copy (chain->iov + chain->nout, chain->nin, offset, (void *) src, len, true);
}
