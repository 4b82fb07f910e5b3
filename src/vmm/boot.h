/* SPDX-License-Identifier: Apache-2.0 */
/* Linux x86-64 boot protocol, entered directly in 64-bit mode: kernel
   loading (bzImage, ELF vmlinux, tiny ELF64 guests), the boot_params "zero
   page", identity page tables and GDT. */
#ifndef CLOISON_VMM_BOOT_H
#define CLOISON_VMM_BOOT_H

#include "common/error.h"
#include "vmm/guest_mem.h"

#include <asm/bootparam.h>
#include <stddef.h>
#include <stdint.h>

/* Fixed low-memory layout (guest physical). */
#define BOOT_GDT_ADDR 0x500
#define BOOT_IDT_ADDR 0x528
#define BOOT_ZERO_PAGE_ADDR 0x7000
#define BOOT_STACK_TOP 0x8FF0
#define BOOT_PML4_ADDR 0x9000
#define BOOT_PDPT_ADDR 0xA000
#define BOOT_PD_ADDR 0xB000 /* four pages: 4 GiB identity-mapped with 2 MiB pages */
#define BOOT_MPTABLE_ADDR 0x9FC00
#define BOOT_ACPI_RSDP_ADDR 0xE0000 /* acpi.h: ACPI_RSDP_ADDR */
#define BOOT_CMDLINE_ADDR 0x20000
#define BOOT_CMDLINE_MAX 0x10000
#define BOOT_KERNEL_ADDR 0x100000
#define BOOT_E820_RESERVED_START BOOT_MPTABLE_ADDR

struct vcpu;

/* The byte that makes a firmware table (MP table, ACPI) sum to zero. */
uint8_t cl_vmm_boot_table_checksum (const void *table, size_t len);

/* The e820 map for `mem_size` bytes of RAM (layout of machine.h).
   Returns the number of entries. */
int cl_vmm_boot_e820_build (uint64_t mem_size, struct boot_e820_entry *table, int max);

/* Fills a zero page: `hdr` is the kernel's setup header (NULL for ELF
   kernels), the rest where the loader put things. */
void cl_vmm_boot_params_fill (struct boot_params *bp, const struct setup_header *hdr,
                              uint64_t mem_size, uint64_t cmdline_addr, uint32_t cmdline_size,
                              uint64_t initrd_addr, uint64_t initrd_size);

/* Loads the kernel (and initrd, command line) into guest memory, writes
   the zero page, page tables and GDT.  *entry gets the 64-bit entry. */
int cl_vmm_boot_load (const struct guest_mem *mem, uint64_t mem_size, const char *kernel,
                      const char *initrd, const char *cmdline, uint64_t *entry, cl_error_t *err);

/* Registers of the boot vCPU: long mode, paging on with the identity map,
   rip = entry, rsi = zero page. */
int cl_vmm_boot_setup_vcpu (int vcpu_fd, uint64_t entry, cl_error_t *err);

#endif
