/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-blk end to end: find the device by PCI enumeration, bring it up
   through the modern virtio-PCI capabilities, route its queue to an MSI-X
   vector (LAPIC vector 0x30), then read sector 0, write sector 1, flush,
   and read sector 1 back, each completion signalled by MSI-X.  Prints one
   line per step; the host test checks them and the disk file.  With
   `virtio-wait` on the command line it ticks for a second (20 LAPIC timer
   ticks) between the write and the read-back and then writes sector 2: a
   snapshot taken meanwhile must resume with a working device. */
#include "lib.h"

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_BLK_DEVICE 0x1042
#define QSIZE 8
#define MSI_VECTOR 0x30
#define TIMER_VECTOR 0x21 /* watchdog per request, or the wait's ticks */
#define WAIT_TICKS 20

struct desc
{
  u64 addr;
  u32 len;
  u16 flags, next;
};

struct req
{
  u32 type, reserved;
  u64 sector;
};

static struct desc descs[QSIZE] __attribute__ ((aligned (16)));
static struct
{
  u16 flags, idx, ring[QSIZE], used_event;
} avail __attribute__ ((aligned (2)));
static struct
{
  u16 flags, idx;
  struct
  {
    u32 id, len;
  } ring[QSIZE];
  u16 avail_event;
} used __attribute__ ((aligned (4)));
static struct req hdr;
static u8 data[512];
static volatile u8 status;

static volatile u8 *common, *notify, *isr;
static volatile u32 *msix;
static u32 notify_mult;
static volatile u32 msi_count, timer_fires;

void isr_timer (void);
void isr_uart (void);

/* isr_timer/isr_uart are lib's stubs: they call these. */
void on_timer (void)
{
  msi_count++;
  lapic_eoi ();
}

void on_uart (void)
{
  timer_fires++;
  lapic_eoi ();
}

static void timer_start (u32 ns, int periodic)
{
  LAPIC[0x3E0 / 4] = 0xB; /* divide by 1: 1 tick = 1 ns under KVM */
  LAPIC[0x320 / 4] = TIMER_VECTOR | (periodic ? 1 << 17 : 0);
  LAPIC[0x380 / 4] = ns;
}

static void timer_stop (void)
{
  LAPIC[0x320 / 4] = 1 << 16;
  LAPIC[0x380 / 4] = 0;
}

static int has_word (const char *s, const char *w)
{
  for (; *s; s++)
    {
      int i = 0;
      while (w[i] && s[i] == w[i])
        i++;
      if (!w[i])
        return 1;
    }
  return 0;
}

static u8 pci_read8 (int slot, int off)
{
  return pci_read32 (slot, off & ~3) >> (8 * (off & 3));
}

static int find_device (void)
{
  for (int slot = 0; slot < 32; slot++)
    if (pci_read32 (slot, 0) == (VIRTIO_BLK_DEVICE << 16 | VIRTIO_VENDOR))
      return slot;
  return -1;
}

/* Reads the capability list: BAR-relative regions of the virtio
   structures and the MSI-X table. */
static int map_device (int slot)
{
  u64 bar[6];
  int have = 0;

  pci_write32 (slot, 4, pci_read32 (slot, 4) | 0x6); /* memory space, bus master */
  for (int i = 0; i < 6; i++)
    bar[i] = pci_read32 (slot, 0x10 + 4 * i);
  for (int p = pci_read8 (slot, 0x34); p; p = pci_read8 (slot, p + 1))
    {
      int id = pci_read8 (slot, p);
      if (id == 0x11)
        {
          u32 t = pci_read32 (slot, p + 4);
          int b = t & 7;
          u64 base = (bar[b] & ~0xfUL) | (b < 5 ? (u64) bar[b + 1] << 32 : 0);
          msix = (volatile u32 *) (base + (t & ~7u));
          pci_write32 (slot, p, pci_read32 (slot, p) | (1u << 31)); /* MSI-X enable */
          have |= 16;
          continue;
        }
      if (id != 0x09)
        continue;
      int type = pci_read8 (slot, p + 3), b = pci_read8 (slot, p + 4);
      u64 base = (bar[b] & ~0xfUL) | ((bar[b] & 4) ? (u64) bar[b + 1] << 32 : 0);
      volatile u8 *region = (volatile u8 *) (base + pci_read32 (slot, p + 8));
      if (type == 1)
        common = region, have |= 1;
      else if (type == 2)
        {
          notify = region;
          notify_mult = pci_read32 (slot, p + 16);
          have |= 2;
        }
      else if (type == 3)
        isr = region, have |= 4;
      else if (type == 4)
        have |= 8;
    }
  return have == 31 ? 0 : -1;
}

#define C8(off) (*(volatile u8 *) (common + (off)))
#define C16(off) (*(volatile u16 *) (common + (off)))
#define C32(off) (*(volatile u32 *) (common + (off)))

static int virtio_init (void)
{
  C8 (0x14) = 0; /* reset */
  C8 (0x14) = 1 | 2;
  C32 (0x00) = 1;
  if (!(C32 (0x04) & 1)) /* VERSION_1 */
    return -1;
  C32 (0x08) = 0;
  C32 (0x0c) = 0;
  C32 (0x08) = 1;
  C32 (0x0c) = 1;
  C8 (0x14) = 1 | 2 | 8;
  if (!(C8 (0x14) & 8))
    return -1;

  /* MSI-X entry 1 -> LAPIC 0, vector 0x30, unmasked. */
  msix[4 + 0] = 0xfee00000;
  msix[4 + 1] = 0;
  msix[4 + 2] = MSI_VECTOR;
  msix[4 + 3] = 0;
  C16 (0x10) = 0xffff; /* no config vector */

  C16 (0x16) = 0;
  if (C16 (0x18) < QSIZE)
    return -1;
  C16 (0x18) = QSIZE;
  C16 (0x1a) = 1;
  if (C16 (0x1a) != 1)
    return -1;
  C32 (0x20) = (u64) descs;
  C32 (0x24) = 0;
  C32 (0x28) = (u64) &avail;
  C32 (0x2c) = 0;
  C32 (0x30) = (u64) &used;
  C32 (0x34) = 0;
  C16 (0x1c) = 1;
  C8 (0x14) = 1 | 2 | 8 | 4; /* DRIVER_OK */
  return (C8 (0x14) & 0x40) ? -1 : 0;
}

/* One request: header, optional data, status; waits for its MSI-X. */
static int blk_request (u32 type, u64 sector, int data_in, int has_data)
{
  u32 before = msi_count;
  u16 used_before = used.idx;
  int n = 0;

  hdr.type = type;
  hdr.sector = sector;
  status = 0xff;
  descs[n] = (struct desc){ (u64) &hdr, sizeof hdr, 1, n + 1 };
  n++;
  if (has_data)
    {
      descs[n] = (struct desc){ (u64) data, sizeof data, 1 | (data_in ? 2 : 0), n + 1 };
      n++;
    }
  descs[n] = (struct desc){ (u64) &status, 1, 2, 0 };
  avail.ring[avail.idx % QSIZE] = 0;
  __asm__ volatile ("" ::: "memory");
  avail.idx++;
  __asm__ volatile ("mfence" ::: "memory");
  *(volatile u16 *) (notify + 0 * notify_mult) = 0;

  u32 fires = timer_fires;
  timer_start (2000000000u, 0); /* 2 s watchdog */
  __asm__ volatile ("cli");
  while (msi_count == before && timer_fires == fires)
    __asm__ volatile ("sti; hlt; cli");
  __asm__ volatile ("sti");
  timer_stop ();
  if (timer_fires != fires)
    {
      puts ("virtio-blk: no interrupt (watchdog)\n");
      return -1;
    }
  if (used.idx != (u16) (used_before + 1) || used.ring[used_before % QSIZE].id != 0)
    {
      puts ("virtio-blk: used ring not updated\n");
      return -1;
    }
  return status;
}

static int fail (const char *why)
{
  puts (why);
  return 1;
}

int main (const u8 *bp)
{
  static const char msg[] = "cloison virtio-blk guest wrote this sector";
  static const char late[] = "written after the wait";
  const char *cmdline = (const char *) (u64) * (const u32 *) (bp + 0x228);
  int wait = cmdline && has_word (cmdline, "virtio-wait");
  int slot = find_device ();

  if (slot < 0)
    {
      puts ("virtio-blk: device not found\n");
      return 1;
    }
  puts ("virtio-blk: found at slot ");
  put_dec (slot);
  putc ('\n');
  if (map_device (slot) < 0 || virtio_init () < 0)
    {
      puts ("virtio-blk: init failed\n");
      return 1;
    }
  idt_set (MSI_VECTOR, isr_timer);
  idt_set (TIMER_VECTOR, isr_uart);
  idt_load ();
  lapic_enable ();
  __asm__ volatile ("sti");
  puts ("virtio-blk: driver ok\n");

  if (blk_request (0, 0, 1, 1) != 0)
    return fail ("virtio-blk: read failed\n");
  puts ("virtio-blk: sector 0 says: ");
  data[40] = 0;
  puts ((const char *) data);
  putc ('\n');

  memset (data, 0, sizeof data);
  memcpy (data, msg, sizeof msg);
  if (blk_request (1, 1, 0, 1) != 0)
    return fail ("virtio-blk: write failed\n");
  if (blk_request (4, 0, 0, 0) != 0)
    return fail ("virtio-blk: flush failed\n");
  if (wait)
    {
      u32 seen = 0;
      timer_start (50 * 1000 * 1000, 1);
      while (seen < WAIT_TICKS)
        {
          __asm__ volatile ("hlt");
          while (seen < timer_fires && seen < WAIT_TICKS)
            {
              seen++;
              puts ("virtio-blk: tick ");
              put_dec (seen);
              putc ('\n');
            }
        }
      timer_stop ();
      timer_fires = 0;
    }
  memset (data, 0, sizeof data);
  if (blk_request (0, 1, 1, 1) != 0 || memcmp (data, msg, sizeof msg) != 0)
    return fail ("virtio-blk: read back failed\n");
  puts ("virtio-blk: write + read back ok\n");
  if (wait)
    {
      memset (data, 0, sizeof data);
      memcpy (data, late, sizeof late);
      if (blk_request (1, 2, 0, 1) != 0)
        return fail ("virtio-blk: late write failed\n");
      puts ("virtio-blk: sector 2 written after the wait\n");
    }
  /* An out-of-range sector is refused with IOERR, not a crash. */
  if (blk_request (0, 1u << 30, 1, 1) != 1)
    return fail ("virtio-blk: out-of-range read not refused\n");
  puts ("virtio-blk: out-of-range read refused\n");
  puts ("virtio-blk: msi-x interrupts ");
  put_dec (msi_count);
  putc ('\n');
  return 0;
}
