/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/acpi.h"

#include "vmm/boot.h"
#include "vmm/devices.h"
#include "vmm/machine.h"
#include "vmm/mptable.h"

#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct sdt_header
{
  char signature[4];
  uint32_t length;
  uint8_t revision, checksum;
  char oem_id[6], oem_table_id[8];
  uint32_t oem_revision;
  char creator_id[4];
  uint32_t creator_revision;
} __attribute__ ((packed));

struct gas
{
  uint8_t space_id, bit_width, bit_offset, access_width;
  uint64_t address;
} __attribute__ ((packed));

struct rsdp
{
  char signature[8];
  uint8_t checksum;
  char oem_id[6];
  uint8_t revision;
  uint32_t rsdt;
  uint32_t length;
  uint64_t xsdt;
  uint8_t ext_checksum, reserved[3];
} __attribute__ ((packed));

struct fadt
{
  struct sdt_header h;
  uint32_t facs, dsdt;
  uint8_t model, pm_profile;
  uint16_t sci_int;
  uint32_t smi_cmd;
  uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
  uint32_t pm1a_evt, pm1b_evt, pm1a_cnt, pm1b_cnt, pm2_cnt, pm_tmr, gpe0, gpe1;
  uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len, gpe0_len, gpe1_len, gpe1_base, cst_cnt;
  uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
  uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
  uint16_t iapc_boot_arch;
  uint8_t reserved;
  uint32_t flags;
  struct gas reset_reg;
  uint8_t reset_value;
  uint16_t arm_boot_arch;
  uint8_t minor_revision;
  uint64_t x_facs, x_dsdt;
  struct gas x_pm1a_evt, x_pm1b_evt, x_pm1a_cnt, x_pm1b_cnt, x_pm2_cnt, x_pm_tmr, x_gpe0, x_gpe1;
  struct gas sleep_control, sleep_status;
  uint64_t hypervisor_id;
} __attribute__ ((packed));

_Static_assert(sizeof (struct fadt) == 276, "FADT layout");
_Static_assert(sizeof (struct rsdp) == 36, "RSDP layout");

#define FADT_WBINVD (1u << 0)
/* PWR_BUTTON and SLP_BUTTON set mean "control method or none": left clear
   for the power button, the guest registers the fixed-feature button
   (PM1 PWRBTN_STS/PWRBTN_EN) that PUT /vm/state "shutdown" presses. */
#define FADT_SLP_BUTTON (1u << 5) /* no sleep button */
#define FADT_RESET_REG_SUP (1u << 10)
#define MADT_ACTIVE_HIGH 0x1
#define MADT_LEVEL_TRIGGERED (0x3 << 2)
#define BOOT_ARCH_8042 (1u << 1)
#define BOOT_ARCH_NO_VGA (1u << 2)

static void
header (struct sdt_header *h, const char *sig, uint32_t len, uint8_t rev)
{
  memcpy (h->signature, sig, 4);
  h->length = len;
  h->revision = rev;
  memcpy (h->oem_id, "CLOISN", 6);
  memcpy (h->oem_table_id, "CLOISONV", 8);
  h->oem_revision = 1;
  memcpy (h->creator_id, "CLSN", 4);
  h->creator_revision = 1;
}

/* --- a few AML encodings, enough for the DSDT below --- */
struct aml
{
  uint8_t buf[1024];
  size_t len;
};

static void
aml_bytes (struct aml *a, const void *p, size_t n)
{
  if (a->len + n <= sizeof a->buf)
    memcpy (a->buf + a->len, p, n);
  a->len += n;
}

/* Wraps [start, end) in `op` + PkgLength (which counts itself). */
static void
aml_package (struct aml *a, size_t start, const uint8_t *op, size_t oplen)
{
  size_t body = a->len - start;
  uint8_t pkg[3];
  size_t pl;
  if (body + 1 < 64)
    {
      pl = 1;
      pkg[0] = body + 1;
    }
  else
    {
      pl = 2;
      size_t total = body + 2;
      pkg[0] = 0x40 | (total & 0xF);
      pkg[1] = total >> 4;
    }
  if (a->len + oplen + pl > sizeof a->buf)
    {
      a->len += oplen + pl;
      return;
    }
  memmove (a->buf + start + oplen + pl, a->buf + start, body);
  memcpy (a->buf + start, op, oplen);
  memcpy (a->buf + start + oplen, pkg, pl);
  a->len += oplen + pl;
}

static void
aml_name_int (struct aml *a, const char *name, uint32_t v)
{
  uint8_t b[10] = { 0x08 };
  memcpy (b + 1, name, 4);
  if (v == 0)
    {
      b[5] = 0x00;
      aml_bytes (a, b, 6);
    }
  else
    {
      b[5] = 0x0C; /* DWordPrefix */
      memcpy (b + 6, &v, 4);
      aml_bytes (a, b, 10);
    }
}

/* Name (NAME, "STRING") */
static void
aml_name_string (struct aml *a, const char *name, const char *s)
{
  aml_bytes (a, "\x08", 1);
  aml_bytes (a, name, 4);
  aml_bytes (a, "\x0D", 1);
  aml_bytes (a, s, strlen (s) + 1);
}

/* Device (VGEN): the VM Generation ID (Microsoft's "Virtual Machine
   Generation ID" paper; QEMU's vmgenid): ADDR is the Package of the
   GUID's address, low and high 32 bits, which Linux's driver reads. */
static void
aml_vmgenid (struct aml *a, uint64_t guid_addr)
{
  size_t dev = a->len, pkg;
  uint8_t dword[5] = { 0x0C };

  aml_bytes (a, "VGEN", 4);
  aml_name_string (a, "_HID", "VMGENCTR");
  aml_name_string (a, "_CID", "VM_Gen_Counter");
  aml_name_string (a, "_DDN", "VM_Gen_Counter");
  aml_bytes (a, "\x08" "ADDR", 5);
  pkg = a->len;
  aml_bytes (a, "\x02", 1); /* NumElements */
  for (int half = 0; half < 2; half++)
    {
      uint32_t v = (uint32_t)(guid_addr >> (32 * half));
      memcpy (dword + 1, &v, 4);
      aml_bytes (a, dword, 5);
    }
  aml_package (a, pkg, (const uint8_t[]){ 0x12 }, 1);
  aml_package (a, dev, (const uint8_t[]){ 0x5B, 0x82 }, 2);
}

/* Scope (\_GPE) { Method (_E05) { Notify (\_SB.VGEN, 0x80) } }: the GPE
   a new generation raises. */
static void
aml_gpe_scope (struct aml *a)
{
  static const uint8_t notify[]
      = { 0x86, '\\', 0x2E, '_', 'S', 'B', '_', 'V', 'G', 'E', 'N', 0x0A, 0x80 };
  size_t scope = a->len, method;
  char name[5];

  aml_bytes (a, "\\_GPE", 5);
  method = a->len;
  snprintf (name, sizeof name, "_E%02X", ACPI_VMGENID_GPE);
  aml_bytes (a, name, 4);
  aml_bytes (a, "\x00", 1); /* no argument, not serialized */
  aml_bytes (a, notify, sizeof notify);
  aml_package (a, method, (const uint8_t[]){ 0x14 }, 1);
  aml_package (a, scope, (const uint8_t[]){ 0x10 }, 1);
}

static size_t
build_dsdt (uint8_t *out, size_t max, uint64_t guid_addr)
{
  static const uint8_t crs[] = {
    /* WordBusNumber: bus 0 only */
    0x88,
    0x0D,
    0x00,
    0x02,
    0x0C,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x01,
    0x00,
    /* IO: the configuration ports 0xCF8-0xCFF */
    0x47,
    0x01,
    0xF8,
    0x0C,
    0xF8,
    0x0C,
    0x01,
    0x08,
    /* WordIO 0x0000-0x0CF7 and 0x0D00-0xFFFF */
    0x88,
    0x0D,
    0x00,
    0x01,
    0x0C,
    0x03,
    0x00,
    0x00,
    0x00,
    0x00,
    0xF7,
    0x0C,
    0x00,
    0x00,
    0xF8,
    0x0C,
    0x88,
    0x0D,
    0x00,
    0x01,
    0x0C,
    0x03,
    0x00,
    0x00,
    0x00,
    0x0D,
    0xFF,
    0xFF,
    0x00,
    0x00,
    0x00,
    0xF3,
    /* DWordMemory: the BAR window 0xC0000000-0xFEBFFFFF */
    0x87,
    0x17,
    0x00,
    0x00,
    0x0C,
    0x01,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0xC0,
    0xFF,
    0xFF,
    0xBF,
    0xFE,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0xC0,
    0x3E,
    /* EndTag */
    0x79,
    0x00,
  };
  struct aml a = { .len = 0 };
  struct sdt_header h = { 0 };

  aml_bytes (&a, &h, sizeof h);
  /* Scope (\_SB) { Device (PCI0) { ... } } */
  size_t scope = a.len;
  aml_bytes (&a, "\\_SB_", 5);
  size_t dev = a.len;
  aml_bytes (&a, "PCI0", 4);
  aml_name_int (&a, "_HID", 0x030AD041); /* EISAID ("PNP0A03") */
  aml_name_int (&a, "_UID", 0);
  aml_name_int (&a, "_SEG", 0);
  aml_name_int (&a, "_BBN", 0);
  aml_name_int (&a, "_ADR", 0);
  /* Name (_CRS, Buffer () {...}) */
  aml_bytes (&a, "\x08_CRS", 5);
  size_t buf = a.len;
  uint8_t size[2] = { 0x0A, sizeof crs };
  aml_bytes (&a, size, 2);
  aml_bytes (&a, crs, sizeof crs);
  aml_package (&a, buf, (const uint8_t[]){ 0x11 }, 1);
  aml_package (&a, dev, (const uint8_t[]){ 0x5B, 0x82 }, 2);
  aml_vmgenid (&a, guid_addr);
  aml_package (&a, scope, (const uint8_t[]){ 0x10 }, 1);
  aml_gpe_scope (&a);
  /* Name (\_S5, Package () { 5, 0, 0, 0 }): SLP_TYP for poweroff */
  static const uint8_t s5[]
      = { 0x08, '\\', '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0A, 0x05, 0x00, 0x00, 0x00 };
  aml_bytes (&a, s5, sizeof s5);

  if (a.len > max || a.len > sizeof a.buf)
    return 0;
  header ((struct sdt_header *)a.buf, "DSDT", a.len, 2);
  ((struct sdt_header *)a.buf)->checksum = cl_vmm_boot_table_checksum (a.buf, a.len);
  memcpy (out, a.buf, a.len);
  return a.len;
}

static size_t
build_madt (uint8_t *out, size_t max, unsigned ncpus)
{
  size_t len = sizeof (struct sdt_header) + 8 + ncpus * 8 + 12 + 10 + 6;
  if (len > max)
    return 0;
  memset (out, 0, len);
  uint8_t *p = out + sizeof (struct sdt_header);
  uint32_t lapic = MPTABLE_LAPIC_ADDR, flags = 0;
  memcpy (p, &lapic, 4);
  memcpy (p + 4, &flags, 4);
  p += 8;
  for (unsigned i = 0; i < ncpus; i++, p += 8)
    {
      p[0] = 0; /* processor local APIC */
      p[1] = 8;
      p[2] = i; /* ACPI processor UID */
      p[3] = i; /* APIC id */
      p[4] = 1; /* enabled */
    }
  uint32_t ioapic = MPTABLE_IOAPIC_ADDR, gsi_base = 0;
  p[0] = 1;
  p[1] = 12;
  p[2] = ncpus; /* IOAPIC id */
  memcpy (p + 4, &ioapic, 4);
  memcpy (p + 8, &gsi_base, 4);
  p += 12;
  /* Interrupt source override for the SCI: ISA IRQ 9 = GSI 9, level
     triggered, active high (as QEMU's PC machines describe it).  Without
     it Linux takes the SCI as level, active low. */
  uint32_t sci_gsi = ACPI_SCI_IRQ;
  uint16_t sci_flags = MADT_ACTIVE_HIGH | MADT_LEVEL_TRIGGERED;
  p[0] = 2;
  p[1] = 10;
  p[2] = 0; /* ISA bus */
  p[3] = ACPI_SCI_IRQ;
  memcpy (p + 4, &sci_gsi, 4);
  memcpy (p + 8, &sci_flags, 2);
  p += 10;
  p[0] = 4; /* local APIC NMI on LINT1 of every processor */
  p[1] = 6;
  p[2] = 0xFF;
  p[5] = 1;
  header ((struct sdt_header *)out, "APIC", len, 5);
  ((struct sdt_header *)out)->checksum = cl_vmm_boot_table_checksum (out, len);
  return len;
}

size_t
cl_vmm_acpi_build (uint8_t *buf, size_t buflen, uint64_t base, unsigned ncpus)
{
  const size_t rsdp_off = 0, xsdt_off = 64, fadt_off = 128, dsdt_off = 512, madt_off = 1536;
  const size_t end = ACPI_VMGENID_ADDR - ACPI_RSDP_ADDR; /* the GUID's place */
  if (buflen < end)
    return 0;
  memset (buf, 0, end);

  size_t dsdt_len = build_dsdt (buf + dsdt_off, madt_off - dsdt_off, base + end);
  size_t madt_len = build_madt (buf + madt_off, end - madt_off, ncpus);
  if (dsdt_len == 0 || madt_len == 0)
    return 0;

  struct fadt *f = (struct fadt *)(buf + fadt_off);
  header (&f->h, "FACP", sizeof (*f), 6);
  f->minor_revision = 5;
  f->dsdt = base + dsdt_off;
  f->x_dsdt = base + dsdt_off;
  /* A full (not hardware-reduced) FADT: hardware-reduced mode drops the
     legacy PIC and with it Linux's ISA IRQ mappings (COM1's IRQ 4). */
  f->sci_int = ACPI_SCI_IRQ;
  f->pm1a_evt = ACPI_PM1_EVT_PORT;
  f->pm1_evt_len = 4;
  f->pm1a_cnt = ACPI_PM1_CNT_PORT;
  f->pm1_cnt_len = 2;
  f->pm_tmr = ACPI_PM_TMR_PORT;
  f->pm_tmr_len = 4;
  f->gpe0 = ACPI_GPE0_PORT;
  f->gpe0_len = 4; /* 16 GPEs: status, then enable */
  f->flags = FADT_WBINVD | FADT_SLP_BUTTON | FADT_RESET_REG_SUP;
  f->iapc_boot_arch = BOOT_ARCH_8042 | BOOT_ARCH_NO_VGA;
  f->reset_reg = (struct gas){ .space_id = 1, .bit_width = 8, .address = 0xCF9 };
  f->reset_value = 0x06;
  memcpy (&f->hypervisor_id, "CLOISON", 7);
  f->h.checksum = cl_vmm_boot_table_checksum (f, sizeof (*f));

  struct sdt_header *x = (struct sdt_header *)(buf + xsdt_off);
  uint64_t entries[2] = { base + fadt_off, base + madt_off };
  header (x, "XSDT", sizeof (*x) + sizeof entries, 1);
  memcpy (x + 1, entries, sizeof entries);
  x->checksum = cl_vmm_boot_table_checksum (x, x->length);

  struct rsdp *r = (struct rsdp *)(buf + rsdp_off);
  memcpy (r->signature, "RSD PTR ", 8);
  memcpy (r->oem_id, "CLOISN", 6);
  r->revision = 2;
  r->length = sizeof (*r);
  r->xsdt = base + xsdt_off;
  r->checksum = cl_vmm_boot_table_checksum (r, 20);
  r->ext_checksum = cl_vmm_boot_table_checksum (r, sizeof (*r));
  return madt_off + madt_len;
}

static int
write_guid (const struct guest_mem *mem, cl_error_t *err)
{
  uint8_t guid[16];

  if (getrandom (guid, sizeof guid, 0) != (ssize_t)sizeof guid)
    return cl_error_errno (err, "vmgenid: getrandom");
  if (!cl_vmm_guest_mem_write (mem, ACPI_VMGENID_ADDR, guid, sizeof guid))
    return cl_error_make (err, 0, "vmgenid: guest memory at 0x%x", ACPI_VMGENID_ADDR);
  return 0;
}

int
cl_vmm_acpi_write (const struct guest_mem *mem, unsigned ncpus, cl_error_t *err)
{
  uint8_t buf[4096];
  size_t n = cl_vmm_acpi_build (buf, sizeof buf, ACPI_RSDP_ADDR, ncpus);
  if (n == 0 || !cl_vmm_guest_mem_write (mem, ACPI_RSDP_ADDR, buf, n))
    return cl_error_make (err, 0, "ACPI tables for %u vCPUs do not fit", ncpus);
  return write_guid (mem, err);
}

/* PM1a event (status, enable), PM1a control (SCI_EN always set: ACPI mode
   from the start; SLP_TYP 5 + SLP_EN = poweroff), and the 24-bit PM timer
   at 3.579545 MHz, and the GPE0 block (status, enable; GPE 5: a new VM
   generation).  Events: the fixed power button (a press sets PWRBTN_STS)
   and GPE 5; the SCI line (level) is up while a status bit is set whose
   enable bit is set, until the guest writes 1 to the status bit. */
#define PM1_PWRBTN (1u << 8) /* PWRBTN_STS in status, PWRBTN_EN in enable */
#define PM1_SCI_EN 1u

struct acpi_pm
{
  struct vm *vm;
  pthread_mutex_t lock; /* vCPU threads (ports) vs the I/O thread (API) */
  uint16_t status, enable;
  uint16_t gpe_status, gpe_enable;
  bool sci;
};

/* With pm->lock held: the SCI follows status & enable. */
static void
pm_update_sci (struct acpi_pm *pm)
{
  bool level = (pm->status & pm->enable) != 0 || (pm->gpe_status & pm->gpe_enable) != 0;
  if (level != pm->sci)
    cl_vmm_vm_irq_line (pm->vm, ACPI_SCI_IRQ, level);
  pm->sci = level;
}

/* An access of `len` bytes at byte `at` of a 4-byte event block, PM1's
   or GPE0's (status at 0, enable at 2): status bits are
   write-1-to-clear. */
static void
evt_access (struct acpi_pm *pm, uint16_t *status, uint16_t *enable, unsigned at, uint32_t *v,
            unsigned len, bool write)
{
  unsigned shift = 8 * at;
  uint32_t bytes = len >= 4 ? 0xFFFFFFFFu : (1u << (8 * len)) - 1;
  uint32_t mask = (uint32_t)((uint64_t)bytes << shift);
  if (!write)
    {
      *v = (((uint32_t)*enable << 16 | *status) & mask) >> shift;
      return;
    }
  uint32_t w = (uint32_t)((uint64_t)*v << shift) & mask;
  *status &= ~(w & 0xFFFF);
  *enable = (*enable & ~(mask >> 16)) | (w >> 16);
  pm_update_sci (pm);
}

static void
pm_pio (void *opaque, uint64_t offset, void *data, unsigned len, bool write)
{
  struct acpi_pm *pm = opaque;
  uint64_t port = ACPI_PM1_EVT_PORT + offset;
  uint32_t v = 0;
  if (len > 4)
    len = 4;
  memcpy (&v, data, len);
  if (port < ACPI_PM1_EVT_PORT + 4 && offset + len <= 4)
    {
      pthread_mutex_lock (&pm->lock);
      evt_access (pm, &pm->status, &pm->enable, offset, &v, len, write);
      pthread_mutex_unlock (&pm->lock);
    }
  else if (port >= ACPI_GPE0_PORT && port + len <= ACPI_GPE0_PORT + 4)
    {
      pthread_mutex_lock (&pm->lock);
      evt_access (pm, &pm->gpe_status, &pm->gpe_enable, port - ACPI_GPE0_PORT, &v, len, write);
      pthread_mutex_unlock (&pm->lock);
    }
  else if (write)
    {
      if (port == ACPI_PM1_CNT_PORT && (v & (1u << 13)) && ((v >> 10) & 7) == 5)
        cl_vmm_vm_request_stop (pm->vm, VM_STOP_POWEROFF, "guest powered off (ACPI S5)");
      return;
    }
  else if (port == ACPI_PM1_CNT_PORT)
    v = PM1_SCI_EN;
  else if (port >= ACPI_PM_TMR_PORT && port < ACPI_GPE0_PORT)
    v = (uint32_t)((unsigned __int128)cl_now_ns () * 3579545 / 1000000000) & 0xFFFFFF;
  else
    v = 0;
  if (!write)
    memcpy (data, &v, len);
}

void
cl_vmm_acpi_pm_power_button (struct acpi_pm *pm)
{
  pthread_mutex_lock (&pm->lock);
  pm->status |= PM1_PWRBTN;
  pm_update_sci (pm);
  pthread_mutex_unlock (&pm->lock);
  cl_vmm_vm_metric_add (pm->vm, "acpi", "power_button_presses", 1);
}

int
cl_vmm_acpi_vmgenid_new (struct acpi_pm *pm, const struct guest_mem *mem, cl_error_t *err)
{
  if (write_guid (mem, err) < 0)
    return -1;
  pthread_mutex_lock (&pm->lock);
  pm->gpe_status |= 1u << ACPI_VMGENID_GPE;
  pm_update_sci (pm);
  pthread_mutex_unlock (&pm->lock);
  cl_vmm_vm_metric_add (pm->vm, "acpi", "vmgenid_changes", 1);
  return 0;
}

bool
cl_vmm_acpi_pm_sci_level (struct acpi_pm *pm)
{
  pthread_mutex_lock (&pm->lock);
  bool level = pm->sci;
  pthread_mutex_unlock (&pm->lock);
  return level;
}

static json_t *
pm_save (void *opaque)
{
  struct acpi_pm *pm = opaque;
  return json_pack ("{s:i,s:i,s:i,s:i}", "status", pm->status, "enable", pm->enable,
                    "gpe_status", pm->gpe_status, "gpe_enable", pm->gpe_enable);
}

static int
pm_restore (void *opaque, json_t *state, cl_error_t *err)
{
  struct acpi_pm *pm = opaque;
  int status, enable, gpe_status = 0, gpe_enable = 0;
  json_error_t je;
  /* the GPE block: absent from snapshots made before it */
  if (json_unpack_ex (state, &je, 0, "{s:i,s:i,s?i,s?i}", "status", &status, "enable", &enable,
                      "gpe_status", &gpe_status, "gpe_enable", &gpe_enable)
      < 0)
    return cl_error_make (err, 0, "acpi_pm state: %s", je.text);
  pthread_mutex_lock (&pm->lock);
  pm->status = status & PM1_PWRBTN;
  pm->enable = enable;
  pm->gpe_status = gpe_status & (1u << ACPI_VMGENID_GPE);
  pm->gpe_enable = gpe_enable;
  pm->sci = false;
  pm_update_sci (pm);
  pthread_mutex_unlock (&pm->lock);
  return 0;
}

/* absent_ok: snapshots from before the power button had no PM state */
static const struct vm_persist_ops pm_persist
    = { .save = pm_save, .restore = pm_restore, .absent_ok = true };

static void
pm_free (void *opaque)
{
  struct acpi_pm *pm = opaque;
  pthread_mutex_destroy (&pm->lock);
  free (pm);
}

int
cl_vmm_acpi_pm_create (struct vm *vm, struct acpi_pm **out, cl_error_t *err)
{
  struct acpi_pm *pm = cl_xmalloc0 (sizeof (*pm));
  pm->vm = vm;
  pthread_mutex_init (&pm->lock, NULL);
  cl_vmm_vm_add_destructor (vm, pm_free, pm);
  *out = pm;
  if (cl_vmm_vm_io_register (vm, true, ACPI_PM1_EVT_PORT, ACPI_GPE0_PORT + 4 - ACPI_PM1_EVT_PORT,
                             pm_pio, pm, err)
      < 0)
    return -1;
  return cl_vmm_vm_persist_register (vm, "acpi_pm", &pm_persist, pm, err);
}
