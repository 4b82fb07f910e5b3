/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the VM core's pure parts: e820 and boot_params building,
   the MP table, the UART register model, PCI config space semantics
   (through the real 0xCF8/0xCFC dispatch, on a VM without KVM). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/acpi.h"
#include "vmm/boot.h"
#include "vmm/devices.h"
#include "vmm/machine.h"
#include "vmm/mptable.h"
#include "vmm/pci.h"
#include "vmm/vmm.h"
#include "vmm/vmm_internal.h"

/* ---------------------------------------------------------------- boot */

static void
test_e820_small (void **state)
{
  struct boot_e820_entry t[8];
  (void)state;
  int n = cl_vmm_boot_e820_build (256ULL << 20, t, 8);
  assert_int_equal (n, 3);
  assert_true (t[0].addr == 0 && t[0].size == BOOT_MPTABLE_ADDR && t[0].type == 1);
  assert_true (t[1].addr == BOOT_MPTABLE_ADDR && t[1].type == 2);
  assert_true (t[1].addr + t[1].size == 0x100000);
  assert_true (t[2].addr == 0x100000 && t[2].addr + t[2].size == (256ULL << 20));
}

static void
test_e820_split_around_pci_hole (void **state)
{
  struct boot_e820_entry t[8];
  (void)state;
  int n = cl_vmm_boot_e820_build (4ULL << 30, t, 8);
  assert_int_equal (n, 4);
  assert_true (t[2].addr + t[2].size == 0xC0000000ULL);
  assert_true (t[3].addr == 0x100000000ULL && t[3].size == (1ULL << 30) && t[3].type == 1);
}

static void
test_boot_params_fill (void **state)
{
  struct boot_params *bp = calloc (1, sizeof (*bp));
  struct setup_header hdr = { 0 };
  (void)state;
  hdr.version = 0x20F;
  hdr.initrd_addr_max = 0x7FFFFFFF;
  hdr.header = 0x53726448;
  cl_vmm_boot_params_fill (bp, &hdr, 512ULL << 20, 0x20000, 42, 0x1F000000, 0x123456);
  assert_int_equal (bp->hdr.type_of_loader, 0xFF);
  assert_int_equal (bp->hdr.cmd_line_ptr, 0x20000);
  assert_int_equal (bp->hdr.cmdline_size, 42);
  assert_int_equal (bp->hdr.ramdisk_image, 0x1F000000);
  assert_int_equal (bp->hdr.ramdisk_size, 0x123456);
  assert_int_equal (bp->hdr.version, 0x20F);
  assert_true (bp->hdr.loadflags & CAN_USE_HEAP);
  assert_int_equal (bp->e820_entries, 3);
  /* ELF kernels get a synthesized header */
  cl_vmm_boot_params_fill (bp, NULL, 64ULL << 20, 0x20000, 1, 0, 0);
  assert_int_equal (bp->hdr.boot_flag, 0xAA55);
  assert_int_equal (bp->hdr.header, 0x53726448);
  free (bp);
}

/* ------------------------------------------------------------ MP table */

static uint8_t
sum (const uint8_t *p, size_t n)
{
  uint8_t s = 0;
  while (n--)
    s += *p++;
  return s;
}

static void
test_mptable (void **state)
{
  uint8_t buf[1024];
  (void)state;
  for (unsigned cpus = 1; cpus <= 32; cpus *= 2)
    {
      size_t n = cl_vmm_mptable_build (buf, sizeof buf, 0x9FC00, cpus);
      assert_true (n > 0 && n <= 1024);
      assert_memory_equal (buf, "_MP_", 4);
      assert_int_equal (sum (buf, 16), 0);
      uint32_t phys;
      memcpy (&phys, buf + 4, 4);
      assert_int_equal (phys, 0x9FC00 + 16);
      const uint8_t *t = buf + 16;
      uint16_t len, count;
      memcpy (&len, t + 4, 2);
      memcpy (&count, t + 34, 2);
      assert_memory_equal (t, "PCMP", 4);
      assert_int_equal (sum (t, len), 0);
      unsigned seen = 0;
      const uint8_t *e = t + 44;
      for (unsigned i = 0; i < count; i++)
        {
          if (e[0] == 0)
            {
              assert_int_equal (e[1], seen);             /* APIC id */
              assert_int_equal (e[3] & 2, seen ? 0 : 2); /* BSP flag */
              seen++;
            }
          e += e[0] == 0 ? 20 : 8;
        }
      assert_int_equal (seen, cpus);
      assert_ptr_equal (e, t + len);
    }
  assert_int_equal (cl_vmm_mptable_build (buf, 10, 0, 1), 0);
}

/* ---------------------------------------------------------------- ACPI */

static void
test_acpi_tables (void **state)
{
  static uint8_t buf[4096];
  (void)state;
  for (unsigned cpus = 1; cpus <= 32; cpus *= 4)
    {
      size_t n = cl_vmm_acpi_build (buf, sizeof buf, 0xE0000, cpus);
      assert_true (n > 0);
      assert_memory_equal (buf, "RSD PTR ", 8);
      assert_int_equal (sum (buf, 20), 0);
      assert_int_equal (sum (buf, 36), 0);
      uint64_t xsdt;
      memcpy (&xsdt, buf + 24, 8);
      const uint8_t *x = buf + (xsdt - 0xE0000);
      uint32_t xlen;
      memcpy (&xlen, x + 4, 4);
      assert_memory_equal (x, "XSDT", 4);
      assert_int_equal (sum (x, xlen), 0);
      int seen_cpus = -1, sci_overrides = 0;
      bool dsdt_ok = false;
      for (uint32_t off = 36; off < xlen; off += 8)
        {
          uint64_t a;
          memcpy (&a, x + off, 8);
          const uint8_t *t = buf + (a - 0xE0000);
          uint32_t len;
          memcpy (&len, t + 4, 4);
          assert_int_equal (sum (t, len), 0);
          if (memcmp (t, "FACP", 4) == 0)
            {
              uint32_t dsdt;
              memcpy (&dsdt, t + 40, 4);
              const uint8_t *d = buf + (dsdt - 0xE0000);
              uint32_t dlen;
              memcpy (&dlen, d + 4, 4);
              assert_memory_equal (d, "DSDT", 4);
              assert_int_equal (sum (d, dlen), 0);
              assert_non_null (memmem (d, dlen, "PCI0", 4));
              assert_non_null (memmem (d, dlen, "_S5_", 4));
              /* the VM Generation ID: its ids, ADDR = Package { the
                 GUID's address, 0 }, and GPE 5's method */
              assert_non_null (memmem (d, dlen, "VGEN", 4));
              assert_non_null (memmem (d, dlen, "\x0DVMGENCTR", 10));
              assert_non_null (memmem (d, dlen, "\x0DVM_Gen_Counter", 16));
              const uint8_t addr_pkg[] = { 'A', 'D', 'D', 'R', 0x12, 0x0C, 0x02, 0x0C,
                                           0x00, 0x0F, 0x0E, 0x00, 0x0C, 0x00, 0x00, 0x00,
                                           0x00 };
              assert_non_null (memmem (d, dlen, addr_pkg, sizeof addr_pkg));
              assert_non_null (memmem (d, dlen, "\\_GPE\x14", 6) ? memmem (d, dlen, "_E05", 4)
                                                                    : NULL);
              const uint8_t notify[] = { 0x86, '\\', 0x2E, '_', 'S', 'B', '_', 'V', 'G', 'E', 'N',
                                         0x0A, 0x80 };
              assert_non_null (memmem (d, dlen, notify, sizeof notify));
              dsdt_ok = true;
              /* SCI_INT 9; PWR_BUTTON clear: the power button is the
                 fixed feature of PM1 (ACPI 6.5 table 5.10). */
              uint16_t sci;
              uint32_t flags;
              memcpy (&sci, t + 46, 2);
              memcpy (&flags, t + 112, 4);
              assert_int_equal (sci, ACPI_SCI_IRQ);
              uint32_t gpe0;
              memcpy (&gpe0, t + 80, 4);
              assert_int_equal (gpe0, ACPI_GPE0_PORT);
              assert_int_equal (t[92], 4); /* GPE0_BLK_LEN */
              assert_int_equal (flags & (1u << 4), 0);
              assert_int_not_equal (flags & (1u << 5), 0);
            }
          if (memcmp (t, "APIC", 4) == 0)
            {
              seen_cpus = 0;
              for (uint32_t e = 44; e < len; e += t[e + 1])
                {
                  seen_cpus += t[e] == 0 && (t[e + 4] & 1);
                  if (t[e] == 2 && t[e + 3] == ACPI_SCI_IRQ)
                    {
                      /* ISA IRQ 9 -> GSI 9, level (0b11 << 2), active high (0b01) */
                      uint32_t gsi;
                      uint16_t iflags;
                      memcpy (&gsi, t + e + 4, 4);
                      memcpy (&iflags, t + e + 8, 2);
                      assert_int_equal (t[e + 1], 10);
                      assert_int_equal (gsi, ACPI_SCI_IRQ);
                      assert_int_equal (iflags, 0x000D);
                      sci_overrides++;
                    }
                }
            }
        }
      assert_true (dsdt_ok);
      assert_int_equal (seen_cpus, cpus);
      assert_int_equal (sci_overrides, 1);
    }
}

/* ---------------------------------------------------------------- UART */

static void
test_uart_output_and_thre_interrupt (void **state)
{
  struct uart *u = cl_vmm_uart_new_detached ();
  char out[16];
  (void)state;
  assert_int_equal (cl_vmm_uart_reg_read (u, 5) & 0x60, 0x60); /* THRE, TEMT */
  assert_int_equal (cl_vmm_uart_reg_read (u, 2) & 0x0F, 0x01); /* no interrupt */
  cl_vmm_uart_reg_write (u, 1, 0x02);                          /* IER: THRE */
  assert_true (cl_vmm_uart_irq_pending (u));
  assert_int_equal (cl_vmm_uart_reg_read (u, 2) & 0x0F, 0x02);
  assert_false (cl_vmm_uart_irq_pending (u)); /* reading IIR acknowledged it */
  cl_vmm_uart_reg_write (u, 0, 'h');
  cl_vmm_uart_reg_write (u, 0, 'i');
  assert_true (cl_vmm_uart_irq_pending (u));
  assert_int_equal (cl_vmm_uart_take_output (u, out, sizeof out), 2);
  assert_memory_equal (out, "hi", 2);
  cl_vmm_uart_free (u);
}

static void
test_uart_input (void **state)
{
  struct uart *u = cl_vmm_uart_new_detached ();
  (void)state;
  cl_vmm_uart_reg_write (u, 1, 0x01); /* IER: received data */
  assert_false (cl_vmm_uart_irq_pending (u));
  cl_vmm_uart_feed_input (u, "ab", 2);
  assert_true (cl_vmm_uart_irq_pending (u));
  assert_int_equal (cl_vmm_uart_reg_read (u, 2) & 0x0F, 0x04);
  assert_int_equal (cl_vmm_uart_reg_read (u, 5) & 1, 1);
  assert_int_equal (cl_vmm_uart_reg_read (u, 0), 'a');
  assert_int_equal (cl_vmm_uart_reg_read (u, 0), 'b');
  assert_int_equal (cl_vmm_uart_reg_read (u, 5) & 1, 0);
  assert_false (cl_vmm_uart_irq_pending (u));
  cl_vmm_uart_free (u);
}

static void
test_uart_registers (void **state)
{
  struct uart *u = cl_vmm_uart_new_detached ();
  char out[4];
  (void)state;
  cl_vmm_uart_reg_write (u, 7, 0x5A);
  assert_int_equal (cl_vmm_uart_reg_read (u, 7), 0x5A); /* scratch */
  cl_vmm_uart_reg_write (u, 3, 0x83);                   /* DLAB, 8N1 */
  cl_vmm_uart_reg_write (u, 0, 0x01);
  cl_vmm_uart_reg_write (u, 1, 0x00);
  assert_int_equal (cl_vmm_uart_reg_read (u, 0), 0x01); /* divisor latch, not RX */
  assert_int_equal (cl_vmm_uart_take_output (u, out, sizeof out), 0);
  cl_vmm_uart_reg_write (u, 3, 0x03);
  assert_int_equal (cl_vmm_uart_reg_read (u, 3), 0x03);
  cl_vmm_uart_reg_write (u, 2, 0x07); /* FIFO on */
  assert_int_equal (cl_vmm_uart_reg_read (u, 2) & 0xC0, 0xC0);
  /* loopback as Linux's probe checks it: MCR 0x1A -> MSR 0x90 */
  cl_vmm_uart_reg_write (u, 4, 0x1A);
  assert_int_equal (cl_vmm_uart_reg_read (u, 6) & 0xF0, 0x90);
  cl_vmm_uart_reg_write (u, 0, 'x');
  assert_int_equal (cl_vmm_uart_take_output (u, out, sizeof out), 0);
  assert_int_equal (cl_vmm_uart_reg_read (u, 0), 'x');
  cl_vmm_uart_free (u);
}

/* ----------------------------------------------------------------- PCI */

static struct vm *
vm_without_kvm (void)
{
  struct vm *vm = calloc (1, sizeof (*vm));
  pthread_rwlock_init (&vm->io_lock, NULL);
  pthread_mutex_init (&vm->event_lock, NULL);
  pthread_mutex_init (&vm->metric_lock, NULL);
  pthread_mutex_init (&vm->state_lock, NULL);
  pthread_cond_init (&vm->state_cond, NULL);
  vm->metrics = calloc (256, sizeof (*vm->metrics));
  vm->kvm_fd = vm->vm_fd = vm->epoll_fd = vm->wake_fd = -1;
  return vm;
}

/* The same teardown as cl_vmm_run's: the bus, then the VM (I/O ranges,
   persist ids, metrics). */
static void
vm_without_kvm_free (struct vm *vm)
{
  cl_vmm_pci_bus_free (vm);
  cl_vmm_vm_destroy (vm);
}

static int moved_bar = -1;
static uint64_t moved_old, moved_new, last_read_off;

static void
test_bar_read (struct pci_device *dev, int bar, uint64_t offset, void *data, unsigned len)
{
  (void)dev;
  (void)bar;
  last_read_off = offset;
  memset (data, 0xAB, len);
}

static void
test_bar_moved (struct pci_device *dev, int bar, uint64_t old, uint64_t new)
{
  (void)dev;
  moved_bar = bar;
  moved_old = old;
  moved_new = new;
}

static const struct pci_device_ops test_ops
    = { .bar_read = test_bar_read, .bar_moved = test_bar_moved };

static uint32_t
cfg_read (struct vm *vm, int slot, int off)
{
  uint32_t a = 0x80000000u | (slot << 11) | (off & 0xFC), v;
  cl_vmm_vm_io_dispatch (vm, true, 0xCF8, &a, 4, true);
  cl_vmm_vm_io_dispatch (vm, true, 0xCFC, &v, 4, false);
  return v;
}

static void
cfg_write (struct vm *vm, int slot, int off, uint32_t v)
{
  uint32_t a = 0x80000000u | (slot << 11) | (off & 0xFC);
  cl_vmm_vm_io_dispatch (vm, true, 0xCF8, &a, 4, true);
  cl_vmm_vm_io_dispatch (vm, true, 0xCFC, &v, 4, true);
}

static void
test_pci_config_space (void **state)
{
  struct vm *vm = vm_without_kvm ();
  struct pci_device dev = { 0 };
  cl_error_t err = NULL;
  (void)state;

  assert_int_equal (cl_vmm_pci_bus_create (vm, &err), 0);
  cl_vmm_pci_device_init (&dev, 0x1AF4, 0x1042, 0x1AF4, 2, 0x010000, 1);
  dev.ops = &test_ops;
  dev.bars[0] = (struct pci_bar){ .size = 0x4000, .is_64bit = true };
  dev.bars[2] = (struct pci_bar){ .size = 0x100, .is_pio = true };
  uint8_t cap1[4] = { 0x11, 0, 0x34, 0x12 }, cap2[8] = { 0x09, 0, 8 };
  int off1 = cl_vmm_pci_add_capability (&dev, cap1, sizeof cap1);
  int off2 = cl_vmm_pci_add_capability (&dev, cap2, sizeof cap2);
  assert_int_equal (off1, 0x40);
  assert_int_equal (off2, 0x44);
  assert_int_equal (cl_vmm_pci_register (vm, &dev, &err), 0);
  assert_int_equal (dev.slot, 1);

  /* identity, read-only */
  assert_int_equal (cfg_read (vm, 1, 0), 0x10421AF4);
  cfg_write (vm, 1, 0, 0xFFFFFFFF);
  assert_int_equal (cfg_read (vm, 1, 0), 0x10421AF4);
  assert_int_equal (cfg_read (vm, 1, 8) >> 8, 0x010000);
  assert_int_equal (cfg_read (vm, 0, 8) >> 8, 0x060000); /* host bridge */
  assert_int_equal (cfg_read (vm, 5, 0), 0xFFFFFFFF);    /* empty slot */

  /* capability list */
  assert_true (cfg_read (vm, 1, 4) & (0x10 << 16));
  assert_int_equal (cfg_read (vm, 1, 0x34) & 0xFF, 0x40);
  assert_int_equal ((cfg_read (vm, 1, 0x40) >> 8) & 0xFF, 0x44);
  assert_int_equal ((cfg_read (vm, 1, 0x44) >> 8) & 0xFF, 0);

  /* BARs in the windows, sizing, relocation */
  uint64_t a0 = dev.bars[0].addr;
  assert_true (a0 >= VM_PCI_MMIO_START && a0 + 0x4000 <= VM_PCI_MMIO_END);
  assert_int_equal (cfg_read (vm, 1, 0x10), (uint32_t)a0 | 0x4);
  assert_int_equal (dev.bars[2].addr, VM_PCI_PIO_START);
  assert_int_equal (cfg_read (vm, 1, 0x18), VM_PCI_PIO_START | 1);
  cfg_write (vm, 1, 0x10, 0xFFFFFFFF);
  assert_int_equal (cfg_read (vm, 1, 0x10), 0xFFFFC004);
  assert_int_equal (moved_bar, -1); /* sizing is not a move */
  cfg_write (vm, 1, 0x10, (uint32_t)a0);
  assert_int_equal (moved_bar, -1);
  cfg_write (vm, 1, 0x18, 0xFFFFFFFF);
  assert_int_equal (cfg_read (vm, 1, 0x18), 0xFFFFFF01);
  cfg_write (vm, 1, 0x18, VM_PCI_PIO_START | 1);

  uint8_t b[4];
  assert_true (cl_vmm_vm_io_dispatch (vm, false, a0 + 0x10, b, 4, false));
  assert_int_equal (last_read_off, 0x10);
  cfg_write (vm, 1, 0x10, 0xD0000000);
  assert_int_equal (moved_bar, 0);
  assert_int_equal (moved_old, a0);
  assert_int_equal (moved_new, 0xD0000000);
  assert_false (cl_vmm_vm_io_dispatch (vm, false, a0 + 0x10, b, 4, false));
  assert_true (cl_vmm_vm_io_dispatch (vm, false, 0xD0000020, b, 4, false));
  assert_int_equal (last_read_off, 0x20);

  /* interrupt line writable, header type not */
  cfg_write (vm, 1, 0x3C, 0x0000000B);
  assert_int_equal (cfg_read (vm, 1, 0x3C) & 0xFF, 0x0B);
  cfg_write (vm, 1, 0x0C, 0x00FF0000);
  assert_int_equal ((cfg_read (vm, 1, 0x0C) >> 16) & 0xFF, 0);
  vm_without_kvm_free (vm);
}

/* Guest-controlled config writes of every size at every offset, through
   the real ports, on random functions: nothing crashes, the identity stays
   read-only, BARs that land on each other stay unmapped, not corrupt. */
static void
test_pci_odd_config_writes (void **state)
{
  struct vm *vm = vm_without_kvm ();
  struct pci_device a = { 0 }, b = { 0 };
  cl_error_t err = NULL;
  (void)state;
  assert_int_equal (cl_vmm_pci_bus_create (vm, &err), 0);
  cl_vmm_pci_device_init (&a, 0x1AF4, 0x1041, 0x1AF4, 1, 0x020000, 1);
  cl_vmm_pci_device_init (&b, 0x1AF4, 0x1042, 0x1AF4, 2, 0x010000, 1);
  a.ops = b.ops = &test_ops;
  a.bars[0] = (struct pci_bar){ .size = 0x1000 };
  b.bars[0] = (struct pci_bar){ .size = 0x1000 };
  b.bars[4] = (struct pci_bar){ .size = 0x4000, .is_64bit = true };
  assert_int_equal (cl_vmm_pci_register (vm, &a, &err), 0);
  assert_int_equal (cl_vmm_pci_register (vm, &b, &err), 0);

  srandom (42);
  for (int i = 0; i < 200000; i++)
    {
      uint32_t addr = (random () & 1 ? 0x80000000u : 0) | (random () & 0x00FFFFFC);
      if (random () & 1)
        addr = 0x80000000u | ((1 + random () % 3) << 11) | (random () & 0xFC);
      cl_vmm_vm_io_dispatch (vm, true, 0xCF8, &addr, 4, true);
      static const unsigned lens[] = { 1, 2, 4 };
      unsigned len = lens[random () % 3];
      unsigned off = random () % (5 - len);
      uint32_t v = random ();
      cl_vmm_vm_io_dispatch (vm, true, 0xCFC + off, &v, len, random () & 1);
      uint8_t scratch[8];
      cl_vmm_vm_io_dispatch (vm, false, 0xC0000000u + (random () & 0xFFFFF), scratch,
                             1 + random () % 8, random () & 1);
    }
  assert_int_equal (cfg_read (vm, 1, 0), 0x10411AF4);
  assert_int_equal (cfg_read (vm, 2, 0), 0x10421AF4);
  assert_int_equal (cfg_read (vm, 2, 8) >> 8, 0x010000);
  vm_without_kvm_free (vm);
}

/* ----------------------------------------------------- ACPI PM device */

static uint32_t
pm_in (struct vm *vm, uint16_t port, unsigned len)
{
  uint32_t v = 0;
  cl_vmm_vm_io_dispatch (vm, true, port, &v, len, false);
  return v;
}

static void
pm_out (struct vm *vm, uint16_t port, uint32_t v, unsigned len)
{
  cl_vmm_vm_io_dispatch (vm, true, port, &v, len, true);
}

#define PWRBTN (1u << 8)

/* The power button through the real port dispatch: PWRBTN_STS is set by
   a press, the SCI is up only while status & enable, status bits are
   write-1-to-clear, and the state survives save/restore. */
static void
test_acpi_power_button (void **state)
{
  struct vm *vm = vm_without_kvm (), *vm2 = vm_without_kvm ();
  struct acpi_pm *pm, *pm2;
  cl_error_t err = NULL;
  (void)state;
  assert_int_equal (cl_vmm_acpi_pm_create (vm, &pm, &err), 0);
  assert_int_equal (pm_in (vm, ACPI_PM1_CNT_PORT, 2) & 1, 1); /* SCI_EN */
  assert_int_equal (pm_in (vm, ACPI_PM1_EVT_PORT, 4), 0);

  /* A press before the guest enabled the event: status only. */
  cl_vmm_acpi_pm_power_button (pm);
  assert_int_equal (pm_in (vm, ACPI_PM1_EVT_PORT, 2), PWRBTN);
  assert_false (cl_vmm_acpi_pm_sci_level (pm));
  /* Linux clears every status bit at start, then enables the button. */
  pm_out (vm, ACPI_PM1_EVT_PORT, 0xFFFF, 2);
  assert_int_equal (pm_in (vm, ACPI_PM1_EVT_PORT, 2), 0);
  pm_out (vm, ACPI_PM1_EVT_PORT + 2, PWRBTN, 2);
  assert_int_equal (pm_in (vm, ACPI_PM1_EVT_PORT + 2, 2), PWRBTN);
  assert_int_equal (pm_in (vm, ACPI_PM1_EVT_PORT, 4), PWRBTN << 16);
  assert_false (cl_vmm_acpi_pm_sci_level (pm));

  cl_vmm_acpi_pm_power_button (pm);
  assert_true (cl_vmm_acpi_pm_sci_level (pm));
  assert_int_equal (pm_in (vm, ACPI_PM1_EVT_PORT, 4), PWRBTN << 16 | PWRBTN);
  assert_int_equal (pm_in (vm, ACPI_PM1_EVT_PORT + 1, 1), PWRBTN >> 8);
  /* Writing 0 (or other bits) clears nothing: the line stays up. */
  pm_out (vm, ACPI_PM1_EVT_PORT, 0x0001, 2);
  assert_true (cl_vmm_acpi_pm_sci_level (pm));
  /* Masking the event lowers the line; the status stays. */
  pm_out (vm, ACPI_PM1_EVT_PORT + 2, 0, 2);
  assert_false (cl_vmm_acpi_pm_sci_level (pm));
  assert_int_equal (pm_in (vm, ACPI_PM1_EVT_PORT, 2), PWRBTN);
  pm_out (vm, ACPI_PM1_EVT_PORT + 2, PWRBTN, 2);
  assert_true (cl_vmm_acpi_pm_sci_level (pm));

  /* Saved with the line up, restored in a new VM: the line comes back. */
  assert_int_equal (cl_vmm_acpi_pm_create (vm2, &pm2, &err), 0);
  json_t *saved = vm->persist[0].ops->save (vm->persist[0].opaque);
  assert_string_equal (vm->persist[0].id, "acpi_pm");
  assert_int_equal (vm2->persist[0].ops->restore (vm2->persist[0].opaque, saved, &err), 0);
  json_decref (saved);
  assert_true (cl_vmm_acpi_pm_sci_level (pm2));
  assert_int_equal (pm_in (vm2, ACPI_PM1_EVT_PORT, 4), PWRBTN << 16 | PWRBTN);

  /* The guest's acknowledgement: write 1 to PWRBTN_STS (a 1-byte write
     of the high byte does it too). */
  pm_out (vm, ACPI_PM1_EVT_PORT, PWRBTN, 2);
  assert_false (cl_vmm_acpi_pm_sci_level (pm));
  assert_int_equal (pm_in (vm, ACPI_PM1_EVT_PORT, 4), PWRBTN << 16);
  pm_out (vm2, ACPI_PM1_EVT_PORT + 1, PWRBTN >> 8, 1);
  assert_false (cl_vmm_acpi_pm_sci_level (pm2));
  /* A 4-byte write: W1C the status, set the enable half. */
  cl_vmm_acpi_pm_power_button (pm);
  pm_out (vm, ACPI_PM1_EVT_PORT, PWRBTN, 4);
  assert_false (cl_vmm_acpi_pm_sci_level (pm));
  assert_int_equal (pm_in (vm, ACPI_PM1_EVT_PORT, 4), 0);
  assert_int_equal (cl_vmm_vm_metric_get (vm, "acpi", "power_button_presses"), 3);

  json_t *empty = json_object ();
  assert_int_equal (vm2->persist[0].ops->restore (vm2->persist[0].opaque, empty, &err), -1);
  json_decref (empty);
  assert_non_null (strstr (err->msg, "acpi_pm state"));
  cl_error_release (&err);
  vm_without_kvm_free (vm);
  vm_without_kvm_free (vm2);
}

/* A new VM generation: a new GUID at its address in guest memory, GPE 5
   raised (the SCI once the guest enabled it), write-1-to-clear, the GPE
   state kept by save/restore (and absent from older snapshots). */
static void
test_acpi_vmgenid (void **state)
{
  struct vm *vm = vm_without_kvm (), *vm2 = vm_without_kvm ();
  struct acpi_pm *pm, *pm2;
  static uint8_t ram[1 << 20];
  struct guest_mem mem = { .regions = { { .gpa = 0, .size = sizeof ram, .host = ram } },
                           .nregions = 1 };
  uint8_t first[16], second[16], zero[16] = { 0 };
  cl_error_t err = NULL;
  (void)state;
  assert_int_equal (cl_vmm_acpi_pm_create (vm, &pm, &err), 0);
  assert_int_equal (cl_vmm_acpi_write (&mem, 2, &err), 0);
  memcpy (first, ram + ACPI_VMGENID_ADDR, 16);
  assert_memory_not_equal (first, zero, 16);
  assert_int_equal (pm_in (vm, ACPI_GPE0_PORT, 4), 0);

  /* before the guest enabled GPE 5: status only */
  assert_int_equal (cl_vmm_acpi_vmgenid_new (pm, &mem, &err), 0);
  memcpy (second, ram + ACPI_VMGENID_ADDR, 16);
  assert_memory_not_equal (first, second, 16);
  assert_int_equal (pm_in (vm, ACPI_GPE0_PORT, 2), 1u << ACPI_VMGENID_GPE);
  assert_false (cl_vmm_acpi_pm_sci_level (pm));
  pm_out (vm, ACPI_GPE0_PORT + 2, 1u << ACPI_VMGENID_GPE, 2);
  assert_true (cl_vmm_acpi_pm_sci_level (pm));
  assert_int_equal (pm_in (vm, ACPI_GPE0_PORT, 4),
                    (1u << ACPI_VMGENID_GPE) << 16 | 1u << ACPI_VMGENID_GPE);

  /* saved with the line up: restored in a new VM, it comes back */
  assert_int_equal (cl_vmm_acpi_pm_create (vm2, &pm2, &err), 0);
  json_t *saved = vm->persist[0].ops->save (vm->persist[0].opaque);
  assert_int_equal (vm2->persist[0].ops->restore (vm2->persist[0].opaque, saved, &err), 0);
  json_decref (saved);
  assert_true (cl_vmm_acpi_pm_sci_level (pm2));

  /* the guest's acknowledgement (a 1-byte write of the status) */
  pm_out (vm, ACPI_GPE0_PORT, 1u << ACPI_VMGENID_GPE, 1);
  assert_false (cl_vmm_acpi_pm_sci_level (pm));
  assert_int_equal (pm_in (vm, ACPI_GPE0_PORT + 2, 2), 1u << ACPI_VMGENID_GPE);
  assert_int_equal (cl_vmm_vm_metric_get (vm, "acpi", "vmgenid_changes"), 1);

  /* a snapshot from before the GPE block: no GPE state, no line */
  json_t *old = json_pack ("{s:i,s:i}", "status", 0, "enable", 0);
  assert_int_equal (vm2->persist[0].ops->restore (vm2->persist[0].opaque, old, &err), 0);
  json_decref (old);
  assert_false (cl_vmm_acpi_pm_sci_level (pm2));
  assert_int_equal (pm_in (vm2, ACPI_GPE0_PORT, 4), 0);
  vm_without_kvm_free (vm);
  vm_without_kvm_free (vm2);
}

/* ----------------------------------------------------------- CLI specs */

static void
test_parse_disk_and_net (void **state)
{
  struct cl_vmm_disk d;
  struct cl_vmm_net n;
  cl_error_t err = NULL;
  (void)state;
  assert_int_equal (cl_vmm_parse_disk ("/x.img,ro,serial=abc", &d, &err), 0);
  assert_string_equal (d.path, "/x.img");
  assert_true (d.readonly);
  assert_string_equal (d.serial, "abc");
  cl_vmm_disk_clear (&d);
  assert_int_equal (cl_vmm_parse_disk ("/y.img", &d, &err), 0);
  assert_false (d.readonly);
  assert_null (d.serial);
  cl_vmm_disk_clear (&d);
  /* On failure nothing is left in *out (LeakSanitizer checks the rest). */
  assert_int_equal (cl_vmm_parse_disk ("/y.img,rw", &d, &err), -1);
  assert_non_null (strstr (err->msg, "`rw`"));
  assert_null (d.path);
  cl_error_release (&err);
  assert_int_equal (cl_vmm_parse_disk ("/y.img,serial=123456789012345678901", &d, &err), -1);
  assert_null (d.path);
  cl_error_release (&err);
  assert_int_equal (cl_vmm_parse_disk ("/z.img,serial=a,serial=b", &d, &err), 0);
  assert_string_equal (d.serial, "b");
  cl_vmm_disk_clear (&d);
  assert_int_equal (cl_vmm_parse_net ("tap=tap0,mac=52:54:00:ab:cd:ef", &n, &err), 0);
  assert_string_equal (n.tap, "tap0");
  assert_true (n.has_mac);
  assert_int_equal (n.mac[3], 0xab);
  cl_vmm_net_clear (&n);
  assert_int_equal (cl_vmm_parse_net ("tap=tap0,mac=52:54:00:ab:cd", &n, &err), -1);
  assert_null (n.tap);
  cl_error_release (&err);
  assert_int_equal (cl_vmm_parse_net ("mac=52:54:00:ab:cd:ef", &n, &err), -1);
  assert_non_null (strstr (err->msg, "tap=NAME"));
  cl_error_release (&err);
}

/* The saved config of a template made of t's devices: kernel /k, CID
   1234. */
static json_t *
template_json (struct cl_vmm_config *t)
{
  t->kernel = "/k";
  t->vsock_cid = 1234;
  return cl_vmm_config_to_json (t);
}

/* A clone's config (set its devices after): CID 99. */
static void
clone_init (struct cl_vmm_config *user)
{
  cl_vmm_config_init (user);
  user->vsock_cid = 99;
  user->restore_clone = true;
}

/* user's config against the template's: refused, the error naming `what`. */
static void
assert_clone_refused (json_t *saved, struct cl_vmm_config *user, const char *what)
{
  struct cl_vmm_config out;
  cl_error_t err = NULL;

  assert_int_equal (cl_vmm_config_from_json (saved, user, &out, &err), -1);
  assert_non_null (strstr (err->msg, what));
  cl_error_release (&err);
  cl_vmm_config_free_arrays (&out);
}

/* A template's clone (restore_clone): the snapshot's machine, this VM's
   shared directories, taps and vsock CID; another layout is refused. */
static void
test_config_clone_retarget (void **state)
{
  struct cl_vmm_fs tfs = { .tag = "rootfs", .path = "/tmp/template-share" };
  struct cl_vmm_fs cfs = { .tag = "rootfs", .path = "/bundle/rootfs", .readonly = true };
  struct cl_vmm_fs other = { .tag = "data", .path = "/x" };
  struct cl_vmm_config t, user, out;
  cl_error_t err = NULL;
  json_t *saved;
  (void)state;

  cl_vmm_config_init (&t);
  t.memory = 512ull << 20;
  t.fs = &tfs;
  t.nfs = 1;
  saved = template_json (&t);
  clone_init (&user);
  user.fs = &cfs;
  user.nfs = 1;
  assert_int_equal (cl_vmm_config_from_json (saved, &user, &out, &err), 0);
  assert_int_equal (out.memory, 512ull << 20);
  assert_int_equal (out.vsock_cid, 99);
  assert_string_equal (out.fs[0].path, "/bundle/rootfs");
  assert_true (out.fs[0].readonly);
  cl_vmm_config_free_arrays (&out);
  /* a plain restore keeps the snapshot's */
  user.restore_clone = false;
  assert_int_equal (cl_vmm_config_from_json (saved, &user, &out, &err), 0);
  assert_int_equal (out.vsock_cid, 1234);
  assert_string_equal (out.fs[0].path, "/tmp/template-share");
  cl_vmm_config_free_arrays (&out);
  /* another tag, another count: refused */
  user.restore_clone = true;
  user.fs = &other;
  assert_clone_refused (saved, &user, "tag");
  user.nfs = 0;
  assert_clone_refused (saved, &user, "template");
  json_decref (saved);
}

/* A VM instance's template (docs/templates.md): the clone takes this
   VM's disk, tap and MAC; a plain restore keeps the snapshot's disk and
   MAC but takes the taps its caller made. */
static void
test_config_clone_disk_and_nic (void **state)
{
  struct cl_vmm_disk td = { .path = "/tpl/placeholder.img" }, cd = { .path = "/inst/disk.img" };
  struct cl_vmm_net tn = { .tap = "clt-old", .has_mac = true, .mac = { 0x52, 0x54, 0, 0, 0, 1 } };
  struct cl_vmm_net cn = { .tap = "clt-new", .has_mac = true, .mac = { 0x52, 0x54, 0, 0, 0, 2 } };
  struct cl_vmm_config t, user, out;
  cl_error_t err = NULL;
  json_t *saved;
  (void)state;

  cl_vmm_config_init (&t);
  t.disks = &td;
  t.ndisks = 1;
  t.nets = &tn;
  t.nnets = 1;
  saved = template_json (&t);
  clone_init (&user);
  user.disks = &cd;
  user.ndisks = 1;
  user.nets = &cn;
  user.nnets = 1;
  assert_int_equal (cl_vmm_config_from_json (saved, &user, &out, &err), 0);
  assert_string_equal (out.disks[0].path, "/inst/disk.img");
  assert_string_equal (out.nets[0].tap, "clt-new");
  assert_int_equal (out.nets[0].mac[5], 2);
  cl_vmm_config_free_arrays (&out);
  user.restore_clone = false;
  assert_int_equal (cl_vmm_config_from_json (saved, &user, &out, &err), 0);
  assert_string_equal (out.disks[0].path, "/tpl/placeholder.img");
  assert_string_equal (out.nets[0].tap, "clt-new");
  assert_int_equal (out.nets[0].mac[5], 1);
  cl_vmm_config_free_arrays (&out);
  /* a clone without the template's disk: refused */
  user.restore_clone = true;
  user.ndisks = 0;
  assert_clone_refused (saved, &user, "disks");
  json_decref (saved);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_e820_small),
    cmocka_unit_test (test_config_clone_retarget),
    cmocka_unit_test (test_config_clone_disk_and_nic),
    cmocka_unit_test (test_e820_split_around_pci_hole),
    cmocka_unit_test (test_boot_params_fill),
    cmocka_unit_test (test_mptable),
    cmocka_unit_test (test_acpi_tables),
    cmocka_unit_test (test_acpi_power_button),
    cmocka_unit_test (test_acpi_vmgenid),
    cmocka_unit_test (test_uart_output_and_thre_interrupt),
    cmocka_unit_test (test_uart_input),
    cmocka_unit_test (test_uart_registers),
    cmocka_unit_test (test_pci_config_space),
    cmocka_unit_test (test_parse_disk_and_net),
    cmocka_unit_test (test_pci_odd_config_writes),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
