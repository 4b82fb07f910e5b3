/* SPDX-License-Identifier: Apache-2.0 */
/* The virtio-PCI transport and devices, driven the way a guest driver
   would: through config space and BAR 0, against a fake VM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_driver.h"
#include "fake_vm.h"
#include "vmm/disk_track.h"
#include "vmm/virtio.h"
#include "vmm/virtio_pci.h"

/* A virtio-blk request: header, data, status byte. */
static uint8_t
blk_req (struct drv *d, uint32_t type, uint64_t sector, uint8_t *data, uint32_t len, bool in)
{
  uint8_t *ram = d->vm->ram;
  struct
  {
    uint32_t type, reserved;
    uint64_t sector;
  } h = { type, 0, sector };
  uint64_t addr[3] = { BUF, BUF + 0x100, BUF + 0x100 + len };
  uint32_t lens[3] = { 16, len, 1 };
  uint16_t flags[3] = { 0, in ? VIRTQ_DESC_F_WRITE : 0, VIRTQ_DESC_F_WRITE };

  memcpy (ram + BUF, &h, sizeof h);
  if (!in && len > 0)
    memcpy (ram + BUF + 0x100, data, len);
  ram[BUF + 0x100 + len] = 0xee;
  if (len == 0)
    {
      addr[1] = addr[2];
      lens[1] = 1;
      flags[1] = VIRTQ_DESC_F_WRITE;
      submit (d, 0, 2, addr, lens, flags);
    }
  else
    submit (d, 0, 3, addr, lens, flags);
  if (in && len > 0)
    memcpy (data, ram + BUF + 0x100, len);
  return ram[BUF + 0x100 + len];
}

struct blk_fixture
{
  struct vm *vm;
  char path[64];
  int fd;
};

static int
blk_setup (void **state)
{
  struct blk_fixture *f = calloc (1, sizeof *f);
  cl_error_t err = NULL;

  strcpy (f->path, "/tmp/virtio-unit-XXXXXX");
  f->fd = mkstemp (f->path);
  assert_true (f->fd >= 0);
  assert_int_equal (ftruncate (f->fd, 64 * 512), 0);
  f->vm = fake_vm_new ();
  assert_int_equal (cl_vmm_virtio_blk_create (f->vm, f->path, false, "serial-123", &err), 0);
  *state = f;
  return 0;
}

static int
blk_teardown (void **state)
{
  struct blk_fixture *f = *state;
  unlink (f->path);
  close (f->fd);
  fake_vm_free (f->vm);
  free (f);
  return 0;
}

static void
test_pci_identity (void **state)
{
  struct blk_fixture *f = *state;
  struct drv d = { .vm = f->vm, .pci = f->vm->pci[0] };
  uint16_t vendor, device;

  memcpy (&vendor, &d.pci->cfg[0], 2);
  memcpy (&device, &d.pci->cfg[2], 2);
  assert_int_equal (vendor, 0x1af4);
  assert_int_equal (device, 0x1042);
  assert_true (d.pci->cfg[8] >= 1);
  find_caps (&d);
  assert_int_equal (d.mult, 4);
  assert_true (d.msix_cap != 0);
  assert_true (d.pci->bars[0].is_64bit);
  assert_int_equal (f->vm->ioeventfds, 1);
  assert_string_equal (f->vm->persist_id[0] + 0, "virtio-blk0");
}

/* A config write as the PCI core does it: through the write mask. */
static void
cfg_write_masked (struct drv *d, unsigned off, uint32_t v, unsigned len)
{
  for (unsigned i = 0; i < len; i++)
    {
      uint8_t m = d->pci->wmask[off + i], b = v >> (8 * i);
      d->pci->cfg[off + i] = (d->pci->cfg[off + i] & ~m) | (b & m);
    }
  d->pci->ops->cfg_write (d->pci, off, len);
}

static void
test_pci_cfg_window (void **state)
{
  struct blk_fixture *f = *state;
  struct drv d = { .vm = f->vm, .pci = f->vm->pci[0] };
  unsigned w = 0;
  uint16_t nq;

  find_caps (&d);
  for (unsigned p = d.pci->cfg[0x34]; p; p = d.pci->cfg[p + 1])
    if (d.pci->cfg[p] == 0x09 && d.pci->cfg[p + 3] == 5)
      w = p;
  assert_true (w != 0);
  /* Read num_queues (common + 0x12, 2 bytes) through the window. */
  cfg_write_masked (&d, w + 4, 0, 1);
  cfg_write_masked (&d, w + 12, 2, 4);
  cfg_write_masked (&d, w + 8, d.common + 0x12, 4);
  memcpy (&nq, &d.pci->cfg[w + 16], 2);
  assert_int_equal (nq, 1);
  /* Write device_status (1 byte) through it. */
  cfg_write_masked (&d, w + 12, 1, 4);
  cfg_write_masked (&d, w + 8, d.common + 0x14, 4);
  cfg_write_masked (&d, w + 16, 1, 1);
  assert_int_equal (rd (&d, d.common + 0x14, 1), 1);
  /* The capability header itself stays read-only. */
  cfg_write_masked (&d, w, 0xffffffff, 4);
  assert_int_equal (d.pci->cfg[w], 0x09);
  assert_int_equal (d.pci->cfg[w + 3], 5);
}

static void
test_features_need_version_1 (void **state)
{
  struct blk_fixture *f = *state;
  struct drv d = { .vm = f->vm, .pci = f->vm->pci[0] };

  find_caps (&d);
  wr (&d, d.common + 0x14, 1 | 2, 1);
  wr (&d, d.common + 0x08, 1, 4);
  wr (&d, d.common + 0x0c, 0, 4); /* no VERSION_1: a legacy driver */
  wr (&d, d.common + 0x14, 1 | 2 | 8, 1);
  assert_int_equal (rd (&d, d.common + 0x14, 1) & 8, 0);
  /* Bits the device never offered are refused too. */
  wr (&d, d.common + 0x14, 0, 1);
  wr (&d, d.common + 0x14, 1 | 2, 1);
  wr (&d, d.common + 0x08, 1, 4);
  wr (&d, d.common + 0x0c, 1 | (1u << 30), 4);
  wr (&d, d.common + 0x14, 1 | 2 | 8, 1);
  assert_int_equal (rd (&d, d.common + 0x14, 1) & 8, 0);
}

static void
test_blk_read_write (void **state)
{
  struct blk_fixture *f = *state;
  struct drv d;
  uint8_t buf[1024], back[1024];

  drv_init (&d, f->vm, 0, 1, (1u << 9) | (1ull << 29) /* FLUSH, EVENT_IDX */);
  assert_int_equal (rd (&d, d.device + 0, 8), 64); /* capacity in sectors */
  wr (&d, d.device + 0, 1u << 30, 8);              /* read-only: the guest cannot grow the disk */
  assert_int_equal (rd (&d, d.device + 0, 8), 64);
  for (unsigned i = 0; i < sizeof buf; i++)
    buf[i] = i * 7;
  assert_int_equal (blk_req (&d, 1, 3, buf, sizeof buf, false), 0);
  assert_int_equal (pread (f->fd, back, sizeof back, 3 * 512), (ssize_t)sizeof back);
  assert_memory_equal (buf, back, sizeof buf);
  assert_int_equal (used_len (&d, 0), 1);
  assert_int_equal (interrupts (&d, 1), 1);

  memset (back, 0, sizeof back);
  assert_int_equal (blk_req (&d, 0, 3, back, sizeof back, true), 0);
  assert_memory_equal (buf, back, sizeof buf);
  assert_int_equal (used_len (&d, 0), sizeof back + 1);

  assert_int_equal (blk_req (&d, 4, 0, NULL, 0, false), 0); /* flush */
  memset (back, 0, sizeof back);
  assert_int_equal (blk_req (&d, 8, 0, back, 20, true), 0); /* get id */
  assert_string_equal ((char *)back, "serial-123");
  assert_int_equal (used_idx (&d, 0), 4);
}

static void
test_blk_bad_requests (void **state)
{
  struct blk_fixture *f = *state;
  struct drv d;
  uint8_t buf[1024] = { 0 };

  drv_init (&d, f->vm, 0, 1, 0);
  assert_int_equal (blk_req (&d, 0, 64, buf, 512, true), 1);         /* past the end: IOERR */
  assert_int_equal (blk_req (&d, 0, UINT64_MAX, buf, 512, true), 1); /* overflowing sector */
  assert_int_equal (blk_req (&d, 1, 63, buf, 1024, false), 1);       /* straddles the end */
  assert_int_equal (blk_req (&d, 0, 0, buf, 100, true), 1);          /* not whole sectors */
  assert_int_equal (blk_req (&d, 99, 0, buf, 512, true), 2);         /* unknown: UNSUPP */
  /* The device still serves good requests. */
  assert_int_equal (blk_req (&d, 0, 0, buf, 512, true), 0);
  assert_int_equal (rd (&d, d.common + 0x14, 1) & 0x40, 0);
}

static void
test_blk_discard_write_zeroes (void **state)
{
  struct blk_fixture *f = *state;
  struct drv d;
  uint8_t buf[1024], back[1024];
  struct
  {
    uint64_t sector;
    uint32_t num, flags;
  } seg = { 10, 2, 0 };

  drv_init (&d, f->vm, 0, 1, (1u << 13) | (1u << 14));
  memset (buf, 0xab, sizeof buf);
  assert_int_equal (blk_req (&d, 1, 10, buf, sizeof buf, false), 0);
  assert_int_equal (blk_req (&d, 13, 0, (uint8_t *)&seg, sizeof seg, false), 0);
  assert_int_equal (pread (f->fd, back, sizeof back, 10 * 512), (ssize_t)sizeof back);
  memset (buf, 0, sizeof buf);
  assert_memory_equal (buf, back, sizeof back);
  seg.sector = 63; /* past the end */
  assert_int_equal (blk_req (&d, 11, 0, (uint8_t *)&seg, sizeof seg, false), 2);
}

/* Block migration: with tracking on, what the guest writes, discards or
   zeroes is marked (64 KiB chunks); reads are not; with tracking off,
   nothing. */
static void
test_blk_tracks_writes (void **state)
{
  struct blk_fixture *f = *state;
  struct drv d;
  uint8_t buf[1024];
  uint64_t bm[1] = { 0 };
  struct
  {
    uint64_t sector;
    uint32_t num, flags;
  } seg = { 10, 2, 0 };
  struct vm_disk *t = f->vm->disks[0];

  assert_int_equal (f->vm->ndisks, 1);
  assert_int_equal (t->size, 64 * 512);
  drv_init (&d, f->vm, 0, 1, (1u << 13) | (1u << 14));
  memset (buf, 0xab, sizeof buf);
  assert_int_equal (blk_req (&d, 1, 3, buf, sizeof buf, false), 0);
  assert_int_equal (cl_vmm_disk_track_harvest (t, bm), 0);
  cl_vmm_disk_track_set (t, true);
  assert_int_equal (blk_req (&d, 0, 3, buf, sizeof buf, true), 0);
  assert_int_equal (cl_vmm_disk_track_harvest (t, bm), 0);
  assert_int_equal (blk_req (&d, 1, 3, buf, sizeof buf, false), 0);
  assert_int_equal (cl_vmm_disk_track_harvest (t, bm), 1);
  bm[0] = 0;
  assert_int_equal (cl_vmm_disk_track_harvest (t, bm), 0);
  assert_int_equal (blk_req (&d, 13, 0, (uint8_t *)&seg, sizeof seg, false), 0);
  assert_int_equal (cl_vmm_disk_track_harvest (t, bm), 1);
  cl_vmm_disk_track_set (t, false);
  bm[0] = 0;
  assert_int_equal (blk_req (&d, 1, 3, buf, sizeof buf, false), 0);
  assert_int_equal (cl_vmm_disk_track_harvest (t, bm), 0);
}

static void
test_disk_track_chunks (void **state)
{
  (void)state;
  struct vm_disk *t = cl_vmm_disk_track_new (-1, 100 * VM_DISK_CHUNK + 1);
  uint64_t bm[2] = { 0, 0 };

  assert_int_equal (t->words, 2); /* 101 chunks */
  cl_vmm_vm_disk_written (t, 0, 4096);
  assert_int_equal (cl_vmm_disk_track_harvest (t, bm), 0); /* not tracking */
  cl_vmm_disk_track_set (t, true);
  cl_vmm_vm_disk_written (t, VM_DISK_CHUNK - 1, 2);             /* chunks 0 and 1 */
  cl_vmm_vm_disk_written (t, 2 * VM_DISK_CHUNK, VM_DISK_CHUNK); /* chunk 2 only */
  cl_vmm_vm_disk_written (t, 100 * VM_DISK_CHUNK, 1);           /* the last, partial */
  cl_vmm_vm_disk_written (t, 200 * VM_DISK_CHUNK, 1);           /* past the end: ignored */
  assert_int_equal (cl_vmm_disk_track_harvest (t, bm), 4);
  assert_int_equal (bm[0], 7);
  assert_int_equal (bm[1], 1ull << 36);
  cl_vmm_vm_disk_written (t, 0, 1);
  cl_vmm_disk_track_set (t, true); /* a new migration starts clean */
  bm[0] = bm[1] = 0;
  assert_int_equal (cl_vmm_disk_track_harvest (t, bm), 0);
  cl_vmm_disk_track_free (t);
}

static void
test_blk_malformed_chain_needs_reset (void **state)
{
  struct blk_fixture *f = *state;
  struct drv d;
  uint16_t *avail;
  uint8_t buf[512];

  drv_init (&d, f->vm, 0, 1, 0);
  /* desc 0 -> 1 -> 0 ... */
  *desc (&d, 0, 0) = (struct virtq_desc){ BUF, 16, VIRTQ_DESC_F_NEXT, 1 };
  *desc (&d, 0, 1) = (struct virtq_desc){ BUF, 16, VIRTQ_DESC_F_NEXT, 0 };
  avail = (uint16_t *)(f->vm->ram + AVAIL);
  avail[2] = 0;
  avail[1] = ++d.avail_idx[0];
  wr (&d, d.notify, 0, 2);
  fake_vm_poll (f->vm);
  assert_int_equal (rd (&d, d.common + 0x14, 1) & 0x40, 0x40);
  assert_int_equal (used_idx (&d, 0), 0);
  assert_int_equal (interrupts (&d, 0), 1); /* config change */
  /* Broken until reset; after reset it works again. */
  assert_int_equal (blk_req (&d, 0, 0, buf, 512, true), 0xee);
  wr (&d, d.common + 0x14, 0, 1);
  assert_int_equal (rd (&d, d.common + 0x14, 1), 0);
  drv_init (&d, f->vm, 0, 1, 0);
  assert_int_equal (blk_req (&d, 0, 0, buf, 512, true), 0);
}

static void
test_blk_status_in_readable_buffer (void **state)
{
  struct blk_fixture *f = *state;
  struct drv d;
  uint64_t addr[2] = { BUF, BUF + 0x100 };
  uint32_t lens[2] = { 16, 1 };
  uint16_t flags[2] = { 0, 0 }; /* status byte not device-writable */

  drv_init (&d, f->vm, 0, 1, 0);
  memset (f->vm->ram + BUF, 0, 16);
  submit (&d, 0, 2, addr, lens, flags);
  assert_int_equal (rd (&d, d.common + 0x14, 1) & 0x40, 0x40);
}

static void
test_msix_mask_pending (void **state)
{
  struct blk_fixture *f = *state;
  struct drv d;
  struct virtio_device *vd;
  uint8_t buf[512];
  int efd;

  drv_init (&d, f->vm, 0, 1, 0);
  vd = d.pci->opaque;
  efd = vd->vectors[1].efd;
  assert_int_equal (f->vm->irqfd_gsi[efd], vd->vectors[1].gsi + 1);
  assert_int_equal (f->vm->msi_data[vd->vectors[1].gsi], 0x41);
  wr (&d, 0x4000 + 16 + 12, 1, 4); /* mask vector 1 */
  assert_int_equal (f->vm->irqfd_gsi[efd], 0);
  assert_int_equal (blk_req (&d, 0, 0, buf, 512, true), 0);
  assert_int_equal (interrupts (&d, 1), 0);
  assert_int_equal (rd (&d, 0x6000, 8), 2); /* PBA bit 1 */
  wr (&d, 0x4000 + 16 + 12, 0, 4);          /* unmask: delivered now */
  assert_int_equal (interrupts (&d, 1), 1);
  assert_int_equal (rd (&d, 0x6000, 8), 0);
  /* Function mask behaves the same. */
  cfg_write16 (&d, d.msix_cap + 2, 0xc000);
  assert_int_equal (blk_req (&d, 0, 0, buf, 512, true), 0);
  assert_int_equal (interrupts (&d, 1), 0);
  cfg_write16 (&d, d.msix_cap + 2, 0x8000);
  assert_int_equal (interrupts (&d, 1), 1);
}

/* The fixture's device saved and restored in a new process (same devices
   in the same order, memory copied): its machine, and *d2 the driver of
   d on it (caller frees the machine). */
static struct vm *
blk_restored (struct blk_fixture *f, const struct drv *d, struct drv *d2)
{
  struct vm *vm2 = fake_vm_new ();
  cl_error_t err = NULL;
  json_t *saved = f->vm->persist_ops[0]->save (f->vm->persist_opaque[0]);

  assert_non_null (saved);
  memcpy (vm2->ram, f->vm->ram, FAKE_MEM_SIZE);
  assert_int_equal (cl_vmm_virtio_blk_create (vm2, f->path, false, NULL, &err), 0);
  assert_int_equal (vm2->persist_ops[0]->restore (vm2->persist_opaque[0], saved, &err), 0);
  json_decref (saved);
  *d2 = *d;
  d2->vm = vm2;
  d2->pci = vm2->pci[0];
  return vm2;
}

static void
test_persist_roundtrip (void **state)
{
  struct blk_fixture *f = *state;
  struct drv d, d2;
  uint8_t buf[512];
  struct vm *vm2;

  drv_init (&d, f->vm, 0, 1, 0);
  assert_int_equal (blk_req (&d, 0, 0, buf, 512, true), 0);
  assert_int_equal (blk_req (&d, 0, 0, buf, 512, true), 0);
  vm2 = blk_restored (f, &d, &d2);
  assert_int_equal (rd (&d2, d2.common + 0x14, 1), 1 | 2 | 4 | 8);
  wr (&d2, d2.common + 0x16, 0, 2);
  assert_int_equal (rd (&d2, d2.common + 0x20, 8), DESC);
  assert_int_equal (rd (&d2, d2.common + 0x1a, 2), 1);
  /* The queue goes on where it stopped, interrupts included. */
  assert_int_equal (blk_req (&d2, 0, 0, buf, 512, true), 0);
  assert_int_equal (used_idx (&d2, 0), 3);
  assert_int_equal (interrupts (&d2, 1), 1);
  fake_vm_free (vm2);
}

/* A request the guest offered and kicked while the saving side's I/O
   thread was parking: the kick stays behind with that side.  The
   restored device kicks its ready queues itself (activate), so it is
   served, once. */
static void
test_persist_restore_serves_a_lost_kick (void **state)
{
  struct blk_fixture *f = *state;
  struct drv d, d2;
  uint8_t buf[512];
  struct vm *vm2;
  struct
  {
    uint32_t type, reserved;
    uint64_t sector;
  } h = { 0, 0, 0 };
  uint64_t addr[3] = { BUF, BUF + 0x100, BUF + 0x300 };
  uint32_t lens[3] = { 16, 512, 1 };
  uint16_t flags[3] = { 0, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_WRITE };

  drv_init (&d, f->vm, 0, 1, 0);
  assert_int_equal (blk_req (&d, 0, 0, buf, 512, true), 0);
  memcpy (f->vm->ram + BUF, &h, sizeof h);
  f->vm->ram[BUF + 0x300] = 0xee;
  offer (&d, 0, 3, addr, lens, flags); /* its kick never reaches the device */
  vm2 = blk_restored (f, &d, &d2);
  assert_int_equal (used_idx (&d2, 0), 1);
  fake_vm_poll (vm2);
  assert_int_equal (used_idx (&d2, 0), 2);
  assert_int_equal (vm2->ram[BUF + 0x300], 0);
  /* and the resume's own kicks find nothing more to do */
  vm2->persist_ops[0]->resumed (vm2->persist_opaque[0]);
  fake_vm_poll (vm2);
  assert_int_equal (used_idx (&d2, 0), 2);
  fake_vm_free (vm2);
}

static void
test_rng (void **state)
{
  struct vm *vm = fake_vm_new ();
  cl_error_t err = NULL;
  struct drv d;
  uint64_t addr[1] = { BUF };
  uint32_t lens[1] = { 64 };
  uint16_t flags[1] = { VIRTQ_DESC_F_WRITE };
  static const uint8_t zero[64];

  (void)state;
  assert_int_equal (cl_vmm_virtio_rng_create (vm, &err), 0);
  drv_init (&d, vm, 0, 1, 0);
  submit (&d, 0, 1, addr, lens, flags);
  assert_int_equal (used_idx (&d, 0), 1);
  assert_int_equal (used_len (&d, 0), 64);
  assert_memory_not_equal (vm->ram + BUF, zero, 64);
  fake_vm_free (vm);
}

/* Input is held for a grace period after DRIVER_OK (see virtio_console.c). */
static void
wait_console_grace (struct vm *vm)
{
  usleep (600 * 1000);
  fake_vm_poll (vm);
}

static void
test_console (void **state)
{
  struct vm *vm = fake_vm_new ();
  cl_error_t err = NULL;
  struct drv d;
  int in[2], out[2];
  char got[16] = { 0 };
  uint64_t addr[1] = { BUF };
  uint32_t lens[1] = { 5 };
  uint16_t flags[1] = { 0 };

  (void)state;
  assert_int_equal (pipe (in), 0);
  assert_int_equal (pipe (out), 0);
  assert_int_equal (cl_vmm_virtio_console_create (vm, in[0], out[1], &err), 0);
  drv_init (&d, vm, 0, 2, 0);
  wait_console_grace (vm);
  /* Emergency write through the config space. */
  wr (&d, d.device + 8, 'E', 4);
  assert_int_equal (read (out[0], got, sizeof got), 1);
  assert_int_equal (got[0], 'E');
  /* Guest output. */
  memcpy (vm->ram + BUF, "hello", 5);
  submit (&d, 1, 1, addr, lens, flags);
  assert_int_equal (read (out[0], got, sizeof got), 5);
  assert_memory_equal (got, "hello", 5);
  /* Host input waits for a receive buffer, then lands in it. */
  assert_int_equal (write (in[1], "hi!", 3), 3);
  addr[0] = BUF + 0x100;
  lens[0] = 64;
  flags[0] = VIRTQ_DESC_F_WRITE;
  submit (&d, 0, 1, addr, lens, flags);
  fake_vm_poll (vm);
  assert_int_equal (used_idx (&d, 0), 1);
  assert_int_equal (used_len (&d, 0), 3);
  assert_memory_equal (vm->ram + BUF + 0x100, "hi!", 3);
  close (in[1]);
  fake_vm_poll (vm); /* EOF: no crash, input dropped from the loop */
  fake_vm_free (vm);
}

/* A regular file as input (stdin redirected from a file): read whole at
   creation, handed over when the guest posts receive buffers. */
static void
test_console_file_input (void **state)
{
  struct vm *vm = fake_vm_new ();
  cl_error_t err = NULL;
  struct drv d;
  char path[] = "/tmp/virtio-unit-in-XXXXXX";
  int in = mkstemp (path), out[2];
  uint64_t addr[1] = { BUF };
  uint32_t lens[1] = { 64 };
  uint16_t flags[1] = { VIRTQ_DESC_F_WRITE };

  (void)state;
  assert_int_equal (write (in, "typed\n", 6), 6);
  assert_int_equal (lseek (in, 0, SEEK_SET), 0);
  assert_int_equal (pipe (out), 0);
  assert_int_equal (cl_vmm_virtio_console_create (vm, in, out[1], &err), 0);
  drv_init (&d, vm, 0, 2, 0);
  wait_console_grace (vm);
  assert_int_equal (used_idx (&d, 0), 0);
  submit (&d, 0, 1, addr, lens, flags);
  assert_int_equal (used_idx (&d, 0), 1);
  assert_int_equal (used_len (&d, 0), 6);
  assert_memory_equal (vm->ram + BUF, "typed\n", 6);
  unlink (path);
  fake_vm_free (vm);
}

static void
test_parse_mac (void **state)
{
  uint8_t mac[6];
  cl_error_t err = NULL;

  (void)state;
  assert_int_equal (cl_vmm_virtio_net_parse_mac ("52:54:00:12:34:ab", mac, &err), 0);
  assert_int_equal (mac[5], 0xab);
  assert_int_equal (cl_vmm_virtio_net_parse_mac ("52:54:00:12:34", mac, &err), -1);
  assert_non_null (strstr (err->msg, "52:54:00:12:34"));
  cl_error_release (&err);
  assert_int_equal (cl_vmm_virtio_net_parse_mac ("01:00:00:00:00:01", mac, &err), -1);
  cl_error_release (&err);
  assert_int_equal (cl_vmm_virtio_net_parse_mac ("52:54:00:12:34:56x", mac, &err), -1);
  cl_error_release (&err);
}

static void
test_bad_input_errors (void **state)
{
  struct vm *vm = fake_vm_new ();
  cl_error_t err = NULL;

  (void)state;
  assert_int_equal (cl_vmm_virtio_blk_create (vm, "/nonexistent/disk.img", false, NULL, &err), -1);
  assert_non_null (strstr (err->msg, "/nonexistent/disk.img"));
  cl_error_release (&err);
  assert_int_equal (cl_vmm_virtio_blk_create (vm, "/tmp", false, NULL, &err), -1);
  cl_error_release (&err);
  assert_int_equal (cl_vmm_virtio_net_create (vm, "cloisonnotap0", NULL, &err), -1);
  assert_non_null (strstr (err->msg, "cloisonnotap0"));
  cl_error_release (&err);
  assert_int_equal (cl_vmm_virtio_vsock_create (vm, 2, -1, &err), -1);
  cl_error_release (&err);
  assert_int_equal (vm->npci, 0);
  fake_vm_free (vm);
}

#define B(fn) cmocka_unit_test_setup_teardown (fn, blk_setup, blk_teardown)

int
main (void)
{
  const struct CMUnitTest tests[] = {
    B (test_pci_identity),
    B (test_pci_cfg_window),
    B (test_features_need_version_1),
    B (test_blk_read_write),
    B (test_blk_bad_requests),
    B (test_blk_discard_write_zeroes),
    B (test_blk_tracks_writes),
    cmocka_unit_test (test_disk_track_chunks),
    B (test_blk_malformed_chain_needs_reset),
    B (test_blk_status_in_readable_buffer),
    B (test_msix_mask_pending),
    B (test_persist_roundtrip),
    B (test_persist_restore_serves_a_lost_kick),
    cmocka_unit_test (test_rng),
    cmocka_unit_test (test_console),
    cmocka_unit_test (test_console_file_input),
    cmocka_unit_test (test_parse_mac),
    cmocka_unit_test (test_bad_input_errors),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
