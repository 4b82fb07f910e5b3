/* ACPI tables for guests without MP-table support (Debian's cloud kernel
   has no CONFIG_X86_MPPARSE): RSDP, XSDT, a FADT (reset register 0xCF9,
   PM1 control for poweroff), a DSDT with the
   PCI host bridge (PNP0A03 with its bus, I/O and MMIO windows) and \_S5,
   and a MADT listing the vCPUs and the IOAPIC; the PM1 and PM timer
   ports behind the FADT. */
#ifndef CLOISON_VMM_ACPI_H
#define CLOISON_VMM_ACPI_H

#include "common/error.h"
#include "vmm/guest_mem.h"

#include <stddef.h>
#include <stdint.h>

#define ACPI_RSDP_ADDR 0xE0000
#define ACPI_PM1_EVT_PORT 0x600 /* status, enable */
#define ACPI_PM1_CNT_PORT 0x604 /* SLP_TYP 5 | SLP_EN: poweroff */
#define ACPI_PM_TMR_PORT 0x608

struct vm;

/* Builds the tables into buf as they will lie at guest address `base`
   (RSDP first).  Returns the size, 0 if buf is too small. */
size_t acpi_build (uint8_t *buf, size_t buflen, uint64_t base, unsigned ncpus);
int acpi_write (const struct guest_mem *mem, unsigned ncpus, cl_error_t *err);
/* The PM1 event/control and PM timer ports. */
int acpi_pm_create (struct vm *vm, cl_error_t *err);

#endif
