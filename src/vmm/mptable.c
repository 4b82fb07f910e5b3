/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/mptable.h"

#include "vmm/boot.h"

#include <string.h>

struct mpf_intel
{
  char signature[4];
  uint32_t physptr;
  uint8_t length;
  uint8_t specification;
  uint8_t checksum;
  uint8_t feature[5];
} __attribute__ ((packed));

struct mpc_table
{
  char signature[4];
  uint16_t length;
  uint8_t spec;
  uint8_t checksum;
  char oem[8];
  char productid[12];
  uint32_t oemptr;
  uint16_t oemsize;
  uint16_t oemcount;
  uint32_t lapic;
  uint16_t ext_length;
  uint8_t ext_checksum;
  uint8_t reserved;
} __attribute__ ((packed));

struct mpc_cpu
{
  uint8_t type, apicid, apicver, cpuflag;
  uint32_t cpufeature, featureflag;
  uint32_t reserved[2];
} __attribute__ ((packed));

struct mpc_bus
{
  uint8_t type, busid;
  char bustype[6];
} __attribute__ ((packed));

struct mpc_ioapic
{
  uint8_t type, apicid, apicver, flags;
  uint32_t apicaddr;
} __attribute__ ((packed));

struct mpc_intsrc
{
  uint8_t type, irqtype;
  uint16_t irqflag;
  uint8_t srcbus, srcbusirq, dstapic, dstirq;
} __attribute__ ((packed));

enum
{
  MP_PROCESSOR = 0,
  MP_BUS,
  MP_IOAPIC,
  MP_INTSRC,
  MP_LINTSRC
};
enum
{
  MP_INT = 0,
  MP_NMI,
  MP_SMI,
  MP_EXTINT
};
#define BUS_PCI 0
#define BUS_ISA 1

size_t
cl_vmm_mptable_build (uint8_t *buf, size_t buflen, uint32_t base, unsigned ncpus)
{
  size_t need = sizeof (struct mpf_intel) + sizeof (struct mpc_table)
                + ncpus * sizeof (struct mpc_cpu) + 2 * sizeof (struct mpc_bus)
                + sizeof (struct mpc_ioapic) + 18 * sizeof (struct mpc_intsrc);
  if (buflen < need)
    return 0;
  memset (buf, 0, need);
  struct mpf_intel *mpf = (void *)buf;
  struct mpc_table *mpc = (void *)(mpf + 1);
  uint8_t *p = (uint8_t *)(mpc + 1);
  uint16_t count = 0;
  uint8_t ioapic_id = ncpus;

  for (unsigned i = 0; i < ncpus; i++, count++)
    {
      struct mpc_cpu c = {
        .type = MP_PROCESSOR,
        .apicid = i,
        .apicver = 0x14,
        .cpuflag = 1 | (i == 0 ? 2 : 0), /* enabled, bootstrap */
        .cpufeature = 0x600,
        .featureflag = 0x201, /* FPU, APIC */
      };
      memcpy (p, &c, sizeof c);
      p += sizeof c;
    }
  struct mpc_bus buses[2] = { { MP_BUS, BUS_PCI, "PCI   " }, { MP_BUS, BUS_ISA, "ISA   " } };
  memcpy (p, buses, sizeof buses);
  p += sizeof buses;
  count += 2;
  struct mpc_ioapic io = { MP_IOAPIC, ioapic_id, 0x11, 1, MPTABLE_IOAPIC_ADDR };
  memcpy (p, &io, sizeof io);
  p += sizeof io;
  count++;
  for (int irq = 0; irq < 16; irq++, count++)
    {
      struct mpc_intsrc s
          = { MP_INTSRC, irq == 0 ? MP_EXTINT : MP_INT, 0, BUS_ISA, irq, ioapic_id, irq };
      if (irq == 0)
        s.srcbusirq = 0;
      memcpy (p, &s, sizeof s);
      p += sizeof s;
    }
  /* The timer also arrives on pin 2 (ISA IRQ 0 override, as on PCs). */
  struct mpc_intsrc lint[2] = {
    { MP_LINTSRC, MP_EXTINT, 0, BUS_ISA, 0, 0xFF, 0 },
    { MP_LINTSRC, MP_NMI, 0, BUS_ISA, 0, 0xFF, 1 },
  };
  memcpy (p, lint, sizeof lint);
  p += sizeof lint;
  count += 2;

  memcpy (mpc->signature, "PCMP", 4);
  mpc->length = p - (uint8_t *)mpc;
  mpc->spec = 4;
  memcpy (mpc->oem, "CLOISON ", 8);
  memcpy (mpc->productid, "MICROVM     ", 12);
  mpc->oemcount = count;
  mpc->lapic = MPTABLE_LAPIC_ADDR;
  mpc->checksum = cl_vmm_boot_table_checksum (mpc, mpc->length);

  memcpy (mpf->signature, "_MP_", 4);
  mpf->physptr = base + sizeof (*mpf);
  mpf->length = 1;
  mpf->specification = 4;
  mpf->checksum = cl_vmm_boot_table_checksum (mpf, sizeof (*mpf));
  return p - buf;
}

int
cl_vmm_mptable_write (const struct guest_mem *mem, uint32_t base, unsigned ncpus, cl_error_t *err)
{
  uint8_t buf[1024];
  size_t n = cl_vmm_mptable_build (buf, sizeof buf, base, ncpus);
  if (n == 0 || n > 1024 || !cl_vmm_guest_mem_write (mem, base, buf, n))
    return cl_error_make (err, 0, "MP table for %u vCPUs does not fit at 0x%x", ncpus, base);
  return 0;
}
