/* SPDX-License-Identifier: Apache-2.0 */
/* Intel MultiProcessor Specification 1.4 table: how a guest without ACPI
   learns its CPUs (one processor entry per vCPU, APIC id = index), the
   IOAPIC, and the ISA interrupt wiring. */
#ifndef CLOISON_VMM_MPTABLE_H
#define CLOISON_VMM_MPTABLE_H

#include "common/error.h"
#include "vmm/guest_mem.h"

#include <stddef.h>
#include <stdint.h>

#define MPTABLE_IOAPIC_ADDR 0xFEC00000u
#define MPTABLE_LAPIC_ADDR 0xFEE00000u

/* Builds the floating pointer and configuration table into buf as they
   will lie at guest address `base`.  Returns the size, 0 if buf is too
   small. */
size_t cl_vmm_mptable_build (uint8_t *buf, size_t buflen, uint32_t base, unsigned ncpus);
int cl_vmm_mptable_write (const struct guest_mem *mem, uint32_t base, unsigned ncpus,
                          cl_error_t *err);

#endif
