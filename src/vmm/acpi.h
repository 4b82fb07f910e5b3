/* SPDX-License-Identifier: Apache-2.0 */
/* ACPI tables for guests without MP-table support (Debian's cloud kernel
   has no CONFIG_X86_MPPARSE): RSDP, XSDT, a FADT (reset register 0xCF9,
   PM1 control for poweroff), a DSDT with the
   PCI host bridge (PNP0A03 with its bus, I/O and MMIO windows) and \_S5,
   and a MADT listing the vCPUs, the IOAPIC and the SCI's override (GSI 9,
   level, active high); the PM1 and PM timer ports behind the FADT, with
   the fixed-feature power button (graceful shutdown); and a VM
   Generation ID device (VMGENCTR: a 16-byte GUID in reserved memory,
   its ADDR, and GPE 5 whose _E05 method notifies it) that a restore
   from a snapshot changes, so that a guest with the vmgenid driver
   reseeds its RNG by itself. */
#ifndef CLOISON_VMM_ACPI_H
#define CLOISON_VMM_ACPI_H

#include "common/error.h"
#include "vmm/guest_mem.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_RSDP_ADDR 0xE0000
#define ACPI_PM1_EVT_PORT 0x600 /* status, enable */
#define ACPI_PM1_CNT_PORT 0x604 /* SLP_TYP 5 | SLP_EN: poweroff */
#define ACPI_PM_TMR_PORT 0x608
#define ACPI_GPE0_PORT 0x60C /* GPE0 status (2 bytes), enable (2 bytes) */
#define ACPI_SCI_IRQ 9       /* FADT SCI_INT: ISA IRQ = GSI 9 */
/* the VM Generation ID's 16 bytes, after the tables (E820 reserved) */
#define ACPI_VMGENID_ADDR (ACPI_RSDP_ADDR + 0xF00)
#define ACPI_VMGENID_GPE 5

struct vm;
struct acpi_pm;

/* Builds the tables into buf as they will lie at guest address `base`
   (RSDP first).  Returns the size, 0 if buf is too small. */
size_t cl_vmm_acpi_build (uint8_t *buf, size_t buflen, uint64_t base, unsigned ncpus);
int cl_vmm_acpi_write (const struct guest_mem *mem, unsigned ncpus, cl_error_t *err);
/* The PM1 event/control and PM timer ports; *out is freed with the VM. */
int cl_vmm_acpi_pm_create (struct vm *vm, struct acpi_pm **out, cl_error_t *err);
/* Presses the power button: PWRBTN_STS, and the SCI if the guest enabled
   it (Linux then reports KEY_POWER and, by default, shuts down). */
void cl_vmm_acpi_pm_power_button (struct acpi_pm *pm);
/* Whether the SCI line is raised now (for unit tests). */
bool cl_vmm_acpi_pm_sci_level (struct acpi_pm *pm);
/* A new generation (a restore from a snapshot: a template's clone, a
   VM rolled back): a new random GUID in guest memory, and GPE 5 raised
   (the SCI if the guest enabled it) so that its driver reads it. */
int cl_vmm_acpi_vmgenid_new (struct acpi_pm *pm, const struct guest_mem *mem, cl_error_t *err);

#endif
