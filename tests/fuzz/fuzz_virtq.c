/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target on the split-virtqueue chain parser.  The input is
   guest memory: a queue header (size, ring offsets, avail index), then the
   bytes of one 64 KiB region holding descriptor table, rings, indirect
   tables and buffers.  The parser must never read or write outside that
   region, loop forever, or crash; ASan and UBSan watch. */
#include "vmm/virtq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MEM_GPA 0x10000ull
#define MEM_SIZE 0x10000ull

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static uint8_t *ram;
  static struct virtq_chain chain;
  struct guest_mem mem = { .nregions = 1 };
  struct virtq vq = { 0 };
  const char *why;
  uint16_t hdr[4];

  if (size < sizeof hdr)
    return 0;
  if (ram == NULL)
    ram = malloc (MEM_SIZE);
  memcpy (hdr, data, sizeof hdr);
  data += sizeof hdr;
  size -= sizeof hdr;
  memset (ram, 0, MEM_SIZE);
  memcpy (ram, data, size < MEM_SIZE ? size : MEM_SIZE);
  mem.regions[0] = (struct guest_mem_region){ MEM_GPA, MEM_SIZE, ram, NULL };

  /* Offsets come from the input too, so the rings may overlap, straddle
     the end, or point nowhere. */
  vq.size = 1u << (hdr[0] % 9); /* 1..256 */
  vq.desc_addr = MEM_GPA + ((uint64_t) hdr[1] & ~15ull);
  vq.avail_addr = MEM_GPA + ((uint64_t) hdr[2] & ~1ull);
  vq.used_addr = MEM_GPA + ((uint64_t) hdr[3] & ~3ull);
  vq.event_idx = hdr[0] & 0x8000;
  if (cl_vmm_virtq_start (&vq, &mem, &why) < 0)
    return 0;
  vq.ready = true;

  for (unsigned i = 0; i < 2u * vq.size; i++)
    {
      uint8_t scratch[64];
      int r = cl_vmm_virtq_pop (&vq, &chain, &why);
      if (r <= 0)
        break;
      /* Touch every buffer the parser handed out: ASan flags any that
         escaped the region. */
      cl_vmm_virtq_chain_read (&chain, 0, scratch, sizeof scratch);
      for (unsigned s = 0; s < chain.nout + chain.nin; s++)
        if (chain.iov[s].iov_len)
          {
            volatile uint8_t *p = chain.iov[s].iov_base;
            (void) p[0];
            (void) p[chain.iov[s].iov_len - 1];
          }
      cl_vmm_virtq_chain_write (&chain, 0, scratch, sizeof scratch);
      cl_vmm_virtq_push (&vq, chain.head, chain.in_len > 64 ? 64 : chain.in_len);
      cl_vmm_virtq_should_notify (&vq);
    }
  cl_vmm_virtq_enable_notify (&vq);
  return 0;
}
