/* SPDX-License-Identifier: Apache-2.0 */
/* Split virtqueue parsing against well-formed and hostile chains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "vmm/virtq.h"

#define MEM_GPA 0x100000ull
#define MEM_SIZE 0x100000ull
#define DESC_GPA (MEM_GPA + 0x0000)
#define AVAIL_GPA (MEM_GPA + 0x8000)
#define USED_GPA (MEM_GPA + 0x9000)
#define IND_GPA (MEM_GPA + 0x10000)
#define BUF_GPA (MEM_GPA + 0x40000)
#define QSIZE 16
/* A huge region that is never touched: for length-overflow tests. */
#define HUGE_GPA (1ull << 36)
#define HUGE_SIZE (1ull << 34)

struct fixture
{
  struct guest_mem mem;
  uint8_t *ram;
  void *huge;
  struct virtq vq;
  struct virtq_chain chain;
};

static struct virtq_desc *
desc_at (struct fixture *f, uint64_t gpa)
{
  return (struct virtq_desc *) (f->ram + (gpa - MEM_GPA));
}

static uint16_t *
avail (struct fixture *f)
{
  return (uint16_t *) (f->ram + (AVAIL_GPA - MEM_GPA));
}

static uint8_t *
used (struct fixture *f)
{
  return f->ram + (USED_GPA - MEM_GPA);
}

static void
set_desc (struct fixture *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
          uint16_t flags, uint16_t next)
{
  struct virtq_desc *d = desc_at (f, table) + i;
  d->addr = addr;
  d->len = len;
  d->flags = flags;
  d->next = next;
}

/* Offers head `head` in the next avail slot. */
static void
offer (struct fixture *f, uint16_t head)
{
  uint16_t idx = avail (f)[1];
  avail (f)[2 + idx % QSIZE] = head;
  avail (f)[1] = idx + 1;
}

static int
setup (void **state)
{
  struct fixture *f = calloc (1, sizeof *f);
  const char *why = NULL;

  f->ram = calloc (1, MEM_SIZE);
  f->huge = mmap (NULL, HUGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  assert_true (f->huge != MAP_FAILED);
  f->mem.regions[0] = (struct guest_mem_region){ MEM_GPA, MEM_SIZE, f->ram, NULL };
  f->mem.regions[1] = (struct guest_mem_region){ HUGE_GPA, HUGE_SIZE, f->huge, NULL };
  f->mem.nregions = 2;
  f->vq.size = QSIZE;
  f->vq.desc_addr = DESC_GPA;
  f->vq.avail_addr = AVAIL_GPA;
  f->vq.used_addr = USED_GPA;
  assert_int_equal (cl_vmm_virtq_start (&f->vq, &f->mem, &why), 0);
  f->vq.ready = true;
  *state = f;
  return 0;
}

static int
teardown (void **state)
{
  struct fixture *f = *state;
  munmap (f->huge, HUGE_SIZE);
  free (f->ram);
  free (f);
  return 0;
}

static void
expect_error (struct fixture *f, const char *fragment)
{
  const char *why = NULL;
  assert_int_equal (cl_vmm_virtq_pop (&f->vq, &f->chain, &why), -1);
  assert_non_null (why);
  assert_non_null (strstr (why, fragment));
}

static void
test_empty (void **state)
{
  struct fixture *f = *state;
  const char *why = NULL;
  assert_int_equal (cl_vmm_virtq_pop (&f->vq, &f->chain, &why), 0);
}

static void
test_simple_chain (void **state)
{
  struct fixture *f = *state;
  const char *why = NULL;
  uint8_t out[4];

  memcpy (f->ram + (BUF_GPA - MEM_GPA), "abcd", 4);
  set_desc (f, DESC_GPA, 3, BUF_GPA, 2, VIRTQ_DESC_F_NEXT, 5);
  set_desc (f, DESC_GPA, 5, BUF_GPA + 2, 2, VIRTQ_DESC_F_NEXT, 7);
  set_desc (f, DESC_GPA, 7, BUF_GPA + 0x100, 64, VIRTQ_DESC_F_WRITE, 0);
  offer (f, 3);
  assert_int_equal (cl_vmm_virtq_pop (&f->vq, &f->chain, &why), 1);
  assert_int_equal (f->chain.head, 3);
  assert_int_equal (f->chain.nout, 2);
  assert_int_equal (f->chain.nin, 1);
  assert_int_equal (f->chain.out_len, 4);
  assert_int_equal (f->chain.in_len, 64);
  assert_int_equal (cl_vmm_virtq_chain_read (&f->chain, 0, out, 4), 4);
  assert_memory_equal (out, "abcd", 4);
  assert_int_equal (cl_vmm_virtq_chain_write (&f->chain, 60, "wxyz!", 5), 4);
  assert_memory_equal (f->ram + (BUF_GPA + 0x100 + 60 - MEM_GPA), "wxyz", 4);

  cl_vmm_virtq_push (&f->vq, 3, 64);
  assert_int_equal (*(uint16_t *) (used (f) + 2), 1);
  assert_int_equal (*(uint32_t *) (used (f) + 4), 3);
  assert_int_equal (*(uint32_t *) (used (f) + 8), 64);
  assert_int_equal (cl_vmm_virtq_pop (&f->vq, &f->chain, &why), 0);
}

static void
test_loop (void **state)
{
  struct fixture *f = *state;
  set_desc (f, DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
  set_desc (f, DESC_GPA, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
  offer (f, 0);
  expect_error (f, "loops");
}

static void
test_self_loop_zero_length (void **state)
{
  struct fixture *f = *state;
  set_desc (f, DESC_GPA, 4, BUF_GPA, 0, VIRTQ_DESC_F_NEXT, 4);
  offer (f, 4);
  expect_error (f, "loops");
}

static void
test_next_out_of_range (void **state)
{
  struct fixture *f = *state;
  set_desc (f, DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, QSIZE);
  offer (f, 0);
  expect_error (f, "out of range");
}

static void
test_head_out_of_range (void **state)
{
  struct fixture *f = *state;
  offer (f, 0xffff);
  expect_error (f, "out of range");
}

static void
test_address_outside_memory (void **state)
{
  struct fixture *f = *state;
  set_desc (f, DESC_GPA, 0, MEM_GPA + MEM_SIZE - 4, 8, 0, 0);
  offer (f, 0);
  expect_error (f, "outside guest memory");
}

static void
test_address_wraps (void **state)
{
  struct fixture *f = *state;
  set_desc (f, DESC_GPA, 0, UINT64_MAX - 3, 16, VIRTQ_DESC_F_WRITE, 0);
  offer (f, 0);
  expect_error (f, "outside guest memory");
}

static void
test_chain_over_4g (void **state)
{
  struct fixture *f = *state;
  set_desc (f, DESC_GPA, 0, HUGE_GPA, 0xffffffff, VIRTQ_DESC_F_NEXT, 1);
  set_desc (f, DESC_GPA, 1, HUGE_GPA, 0xffffffff, 0, 0);
  offer (f, 0);
  expect_error (f, "4 GiB");
}

static void
test_wrong_direction (void **state)
{
  struct fixture *f = *state;
  set_desc (f, DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
  set_desc (f, DESC_GPA, 1, BUF_GPA, 8, 0, 0);
  offer (f, 0);
  expect_error (f, "readable buffer after a writable");
}

static void
test_avail_runs_ahead (void **state)
{
  struct fixture *f = *state;
  avail (f)[1] = QSIZE + 1;
  expect_error (f, "ahead");
}

static void
test_indirect (void **state)
{
  struct fixture *f = *state;
  const char *why = NULL;

  set_desc (f, IND_GPA, 0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
  set_desc (f, IND_GPA, 1, BUF_GPA + 16, 16, VIRTQ_DESC_F_NEXT, 2);
  set_desc (f, IND_GPA, 2, BUF_GPA + 32, 1, VIRTQ_DESC_F_WRITE, 0);
  set_desc (f, DESC_GPA, 2, IND_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
  offer (f, 2);
  assert_int_equal (cl_vmm_virtq_pop (&f->vq, &f->chain, &why), 1);
  assert_int_equal (f->chain.head, 2);
  assert_int_equal (f->chain.nout, 2);
  assert_int_equal (f->chain.nin, 1);
  assert_int_equal (f->chain.out_len, 32);
}

static void
test_indirect_loop (void **state)
{
  struct fixture *f = *state;
  set_desc (f, IND_GPA, 0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
  set_desc (f, IND_GPA, 1, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
  set_desc (f, DESC_GPA, 0, IND_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
  offer (f, 0);
  expect_error (f, "loops");
}

static void
test_indirect_nested (void **state)
{
  struct fixture *f = *state;
  set_desc (f, IND_GPA, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
  set_desc (f, DESC_GPA, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
  offer (f, 0);
  expect_error (f, "nested");
}

static void
test_indirect_huge (void **state)
{
  struct fixture *f = *state;
  set_desc (f, DESC_GPA, 0, HUGE_GPA, (VIRTQ_MAX_SEGS + 1) * 16, VIRTQ_DESC_F_INDIRECT, 0);
  offer (f, 0);
  expect_error (f, "too long");
}

static void
test_indirect_bad_length (void **state)
{
  struct fixture *f = *state;
  set_desc (f, DESC_GPA, 0, IND_GPA, 24, VIRTQ_DESC_F_INDIRECT, 0);
  offer (f, 0);
  expect_error (f, "multiple of 16");
}

static void
test_indirect_with_next (void **state)
{
  struct fixture *f = *state;
  set_desc (f, DESC_GPA, 0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
  offer (f, 0);
  expect_error (f, "NEXT");
}

static void
test_indirect_outside_memory (void **state)
{
  struct fixture *f = *state;
  set_desc (f, DESC_GPA, 0, MEM_GPA + MEM_SIZE, 32, VIRTQ_DESC_F_INDIRECT, 0);
  offer (f, 0);
  expect_error (f, "outside guest memory");
}

/* A full indirect table (VIRTQ_MAX_SEGS) is fine; one direct descriptor
   more makes the chain too long. */
static void
test_segment_limit (void **state)
{
  struct fixture *f = *state;
  const char *why = NULL;

  for (unsigned i = 0; i < VIRTQ_MAX_SEGS; i++)
    set_desc (f, IND_GPA, i, BUF_GPA, 1, i + 1 < VIRTQ_MAX_SEGS ? VIRTQ_DESC_F_NEXT : 0, i + 1);
  set_desc (f, DESC_GPA, 0, IND_GPA, VIRTQ_MAX_SEGS * 16, VIRTQ_DESC_F_INDIRECT, 0);
  offer (f, 0);
  assert_int_equal (cl_vmm_virtq_pop (&f->vq, &f->chain, &why), 1);
  assert_int_equal (f->chain.nout, VIRTQ_MAX_SEGS);

  set_desc (f, DESC_GPA, 1, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 0);
  offer (f, 1);
  expect_error (f, "too long");
}

static void
test_unpop (void **state)
{
  struct fixture *f = *state;
  const char *why = NULL;

  set_desc (f, DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_WRITE, 0);
  offer (f, 0);
  assert_int_equal (cl_vmm_virtq_pop (&f->vq, &f->chain, &why), 1);
  cl_vmm_virtq_unpop (&f->vq, 1);
  assert_int_equal (cl_vmm_virtq_pop (&f->vq, &f->chain, &why), 1);
  assert_int_equal (f->chain.head, 0);
}

static void
test_event_idx (void **state)
{
  struct fixture *f = *state;
  uint16_t *used_event = &avail (f)[2 + QSIZE];
  uint16_t *avail_event = (uint16_t *) (used (f) + 4 + 8 * QSIZE);

  f->vq.event_idx = true;
  /* The first interrupt is always sent. */
  cl_vmm_virtq_push (&f->vq, 0, 0);
  assert_true (cl_vmm_virtq_should_notify (&f->vq));
  /* The driver wants one when used idx passes 3. */
  *used_event = 3;
  cl_vmm_virtq_push (&f->vq, 0, 0); /* used idx 2 */
  assert_false (cl_vmm_virtq_should_notify (&f->vq));
  cl_vmm_virtq_push (&f->vq, 0, 0); /* 3 */
  assert_false (cl_vmm_virtq_should_notify (&f->vq));
  cl_vmm_virtq_push (&f->vq, 0, 0); /* 4: crossed 3 */
  assert_true (cl_vmm_virtq_should_notify (&f->vq));

  /* Re-arming publishes avail_event and sees late entries. */
  assert_false (cl_vmm_virtq_enable_notify (&f->vq));
  assert_int_equal (*avail_event, f->vq.last_avail_idx);
  set_desc (f, DESC_GPA, 0, BUF_GPA, 8, 0, 0);
  offer (f, 0);
  assert_true (cl_vmm_virtq_enable_notify (&f->vq));
}

/* No push, no interrupt (a kick that found nothing to do). */
static void
test_no_push_no_interrupt (void **state)
{
  struct fixture *f = *state;
  assert_false (cl_vmm_virtq_should_notify (&f->vq));
  f->vq.event_idx = true;
  assert_false (cl_vmm_virtq_should_notify (&f->vq));
  cl_vmm_virtq_push (&f->vq, 0, 0);
  assert_true (cl_vmm_virtq_should_notify (&f->vq));
  assert_false (cl_vmm_virtq_should_notify (&f->vq));
}

static void
test_no_interrupt_flag (void **state)
{
  struct fixture *f = *state;
  cl_vmm_virtq_push (&f->vq, 0, 0);
  assert_true (cl_vmm_virtq_should_notify (&f->vq));
  avail (f)[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
  cl_vmm_virtq_push (&f->vq, 0, 0);
  assert_false (cl_vmm_virtq_should_notify (&f->vq));
}

static void
test_start_rejects (void **state)
{
  struct fixture *f = *state;
  struct virtq vq
      = { .size = 12, .desc_addr = DESC_GPA, .avail_addr = AVAIL_GPA, .used_addr = USED_GPA };
  const char *why = NULL;

  assert_int_equal (cl_vmm_virtq_start (&vq, &f->mem, &why), -1); /* not a power of two */
  vq.size = 16;
  vq.desc_addr = DESC_GPA + 8;
  assert_int_equal (cl_vmm_virtq_start (&vq, &f->mem, &why), -1); /* misaligned */
  vq.desc_addr = MEM_GPA + MEM_SIZE - 16;
  assert_int_equal (cl_vmm_virtq_start (&vq, &f->mem, &why), -1); /* outside */
  assert_non_null (strstr (why, "outside"));
  vq.size = 0;
  assert_int_equal (cl_vmm_virtq_start (&vq, &f->mem, &why), -1);
}

/* While a migration runs, what the device wrote (the chain's writable
   buffers, the used ring) is marked dirty at push; nothing else is, and
   nothing at all when no migration runs. */
static void
test_push_marks_dirty (void **state)
{
  struct fixture *f = *state;
  const char *why = NULL;
  uint64_t *dirty = calloc (MEM_SIZE / 4096 / 64, sizeof (uint64_t));
  f->mem.regions[0].dirty = dirty;

#define DIRTY(gpa) ((dirty[((gpa)-MEM_GPA) / 4096 / 64] >> (((gpa)-MEM_GPA) / 4096 % 64)) & 1)
  set_desc (f, DESC_GPA, 0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
  set_desc (f, DESC_GPA, 1, BUF_GPA + 0x3000, 0x1001, VIRTQ_DESC_F_WRITE, 0);
  offer (f, 0);
  assert_int_equal (cl_vmm_virtq_pop (&f->vq, &f->chain, &why), 1);
  cl_vmm_virtq_push (&f->vq, 0, 8);
  assert_false (DIRTY (BUF_GPA + 0x3000)); /* no migration: nothing recorded */

  f->mem.dirty_log = 1;
  offer (f, 0);
  assert_int_equal (cl_vmm_virtq_pop (&f->vq, &f->chain, &why), 1);
  cl_vmm_virtq_push (&f->vq, 0, 8);
  assert_false (DIRTY (BUF_GPA));         /* device-readable */
  assert_true (DIRTY (BUF_GPA + 0x3000)); /* writable, both pages */
  assert_true (DIRTY (BUF_GPA + 0x4000));
  assert_false (DIRTY (BUF_GPA + 0x5000));
  assert_true (DIRTY (USED_GPA));
  assert_false (DIRTY (DESC_GPA));
#undef DIRTY
  f->mem.dirty_log = 0;
  f->mem.regions[0].dirty = NULL;
  free (dirty);
}

#define T(fn) cmocka_unit_test_setup_teardown (fn, setup, teardown)

int
main (void)
{
  const struct CMUnitTest tests[] = {
    T (test_empty),
    T (test_push_marks_dirty),
    T (test_simple_chain),
    T (test_loop),
    T (test_self_loop_zero_length),
    T (test_next_out_of_range),
    T (test_head_out_of_range),
    T (test_address_outside_memory),
    T (test_address_wraps),
    T (test_chain_over_4g),
    T (test_wrong_direction),
    T (test_avail_runs_ahead),
    T (test_indirect),
    T (test_indirect_loop),
    T (test_indirect_nested),
    T (test_indirect_huge),
    T (test_indirect_bad_length),
    T (test_indirect_with_next),
    T (test_indirect_outside_memory),
    T (test_segment_limit),
    T (test_unpop),
    T (test_event_idx),
    T (test_no_push_no_interrupt),
    T (test_no_interrupt_flag),
    T (test_start_rejects),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
