/* SPDX-License-Identifier: Apache-2.0 */
/* Linux x86-64 boot protocol (Documentation/arch/x86/boot.rst), 64-bit
   entry: no BIOS and no real-mode setup code runs. */
#include "vmm/boot.h"

#include "common/cleanup.h"
#include "vmm/machine.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

uint8_t
cl_vmm_boot_table_checksum (const void *table, size_t len)
{
  uint8_t sum = 0;
  for (size_t i = 0; i < len; i++)
    sum += ((const uint8_t *)table)[i];
  return -sum;
}

int
cl_vmm_boot_e820_build (uint64_t mem_size, struct boot_e820_entry *table, int max)
{
  uint64_t low_end = mem_size < VM_LOW_MEM_LIMIT ? mem_size : VM_LOW_MEM_LIMIT;
  int n = 0;
#define E820_ADD(a, s, t)                                                                          \
  do                                                                                               \
    {                                                                                              \
      if (n < max)                                                                                 \
        table[n++] = (struct boot_e820_entry){ .addr = (a), .size = (s), .type = (t) };            \
    }                                                                                              \
  while (0)
  E820_ADD (0, BOOT_E820_RESERVED_START, 1);
  E820_ADD (BOOT_E820_RESERVED_START, BOOT_KERNEL_ADDR - BOOT_E820_RESERVED_START, 2);
  E820_ADD (BOOT_KERNEL_ADDR, low_end - BOOT_KERNEL_ADDR, 1);
  if (mem_size > low_end)
    E820_ADD (VM_HIGH_MEM_START, mem_size - low_end, 1);
#undef E820_ADD
  return n;
}

void
cl_vmm_boot_params_fill (struct boot_params *bp, const struct setup_header *hdr, uint64_t mem_size,
                         uint64_t cmdline_addr, uint32_t cmdline_size, uint64_t initrd_addr,
                         uint64_t initrd_size)
{
  memset (bp, 0, sizeof (*bp));
  if (hdr)
    bp->hdr = *hdr;
  else
    {
      bp->hdr.boot_flag = 0xAA55;
      bp->hdr.header = 0x53726448; /* "HdrS" */
      bp->hdr.kernel_alignment = 0x1000000;
    }
  bp->hdr.type_of_loader = 0xFF;
  bp->hdr.vid_mode = 0xFFFF;
  bp->hdr.loadflags |= CAN_USE_HEAP | LOADED_HIGH;
  bp->hdr.heap_end_ptr = 0xFE00;
  bp->hdr.cmd_line_ptr = (uint32_t)cmdline_addr;
  bp->ext_cmd_line_ptr = cmdline_addr >> 32;
  bp->hdr.cmdline_size = cmdline_size;
  bp->hdr.ramdisk_image = (uint32_t)initrd_addr;
  bp->ext_ramdisk_image = initrd_addr >> 32;
  bp->hdr.ramdisk_size = (uint32_t)initrd_size;
  bp->ext_ramdisk_size = initrd_size >> 32;
  bp->acpi_rsdp_addr = BOOT_ACPI_RSDP_ADDR;
  bp->e820_entries = cl_vmm_boot_e820_build (mem_size, bp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);
}

/* Reads [off, off + len) of fd into guest memory at gpa. */
static int
load_into_guest (const struct guest_mem *mem, int fd, const char *path, uint64_t off, uint64_t gpa,
                 uint64_t len, cl_error_t *err)
{
  uint8_t *dst = cl_vmm_guest_mem_ptr (mem, gpa, len);
  if (dst == NULL)
    return cl_error_make (err, 0, "`%s`: 0x%llx bytes at 0x%llx do not fit in guest memory", path,
                          (unsigned long long)len, (unsigned long long)gpa);
  while (len > 0)
    {
      ssize_t n = pread (fd, dst, len, off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return cl_error_errno (err, "read `%s`", path);
      if (n == 0)
        return cl_error_make (err, 0, "`%s`: truncated", path);
      dst += n;
      off += n;
      len -= n;
    }
  return 0;
}

static int
load_elf (const struct guest_mem *mem, int fd, const char *path, uint64_t *entry,
          uint64_t *kernel_end, cl_error_t *err)
{
  Elf64_Ehdr eh;
  if (pread (fd, &eh, sizeof eh, 0) != sizeof eh || eh.e_ident[EI_CLASS] != ELFCLASS64
      || eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof (Elf64_Phdr) || eh.e_phnum == 0
      || eh.e_phnum > 64)
    return cl_error_make (err, 0, "`%s`: not an x86-64 ELF64 executable", path);
  Elf64_Phdr ph[64];
  size_t phsize = eh.e_phnum * sizeof (Elf64_Phdr);
  if (pread (fd, ph, phsize, eh.e_phoff) != (ssize_t)phsize)
    return cl_error_make (err, 0, "`%s`: truncated program headers", path);
  *kernel_end = 0;
  int loaded = 0;
  for (int i = 0; i < eh.e_phnum; i++)
    {
      if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
        continue;
      if (ph[i].p_filesz > ph[i].p_memsz)
        return cl_error_make (err, 0, "`%s`: segment %d: file size above memory size", path, i);
      uint8_t *seg = cl_vmm_guest_mem_ptr (mem, ph[i].p_paddr, ph[i].p_memsz);
      if (seg == NULL)
        return cl_error_make (err, 0, "`%s`: segment %d at 0x%llx does not fit in guest memory",
                              path, i, (unsigned long long)ph[i].p_paddr);
      if (load_into_guest (mem, fd, path, ph[i].p_offset, ph[i].p_paddr, ph[i].p_filesz, err) < 0)
        return -1;
      memset (seg + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
      if (ph[i].p_paddr + ph[i].p_memsz > *kernel_end)
        *kernel_end = ph[i].p_paddr + ph[i].p_memsz;
      loaded++;
    }
  if (loaded == 0)
    return cl_error_make (err, 0, "`%s`: no loadable segment", path);
  *entry = eh.e_entry;
  /* vmlinux is linked at 0xffffffff8xxxxxxx with its entry given
     physically; tiny guests are linked where they run. */
  if (*entry >= 0xFFFFFFFF80000000ULL)
    *entry -= 0xFFFFFFFF80000000ULL;
  return 0;
}

static int
load_bzimage (const struct guest_mem *mem, int fd, const char *path, uint64_t file_size,
              struct setup_header *hdr, uint64_t *entry, uint64_t *kernel_end, cl_error_t *err)
{
  if (pread (fd, hdr, sizeof (*hdr), 0x1F1) != sizeof (*hdr))
    return cl_error_make (err, 0, "`%s`: truncated setup header", path);
  if (hdr->version < 0x20C || !(hdr->xloadflags & XLF_KERNEL_64))
    return cl_error_make (err, 0,
                          "`%s`: boot protocol %u.%02u without a 64-bit entry point (needs 2.12 "
                          "and XLF_KERNEL_64)",
                          path, hdr->version >> 8, hdr->version & 0xFF);
  unsigned setup_sects = hdr->setup_sects ? hdr->setup_sects : 4;
  uint64_t off = (setup_sects + 1) * 512ULL;
  if (off >= file_size)
    return cl_error_make (err, 0, "`%s`: no protected-mode kernel after the setup code", path);
  uint64_t len = file_size - off;
  if (load_into_guest (mem, fd, path, off, BOOT_KERNEL_ADDR, len, err) < 0)
    return -1;
  hdr->code32_start = BOOT_KERNEL_ADDR;
  *entry = BOOT_KERNEL_ADDR + 0x200; /* startup_64 */
  uint64_t need = hdr->init_size > len ? hdr->init_size : len;
  *kernel_end = BOOT_KERNEL_ADDR + need;
  return 0;
}

static void
write_page_tables_and_gdt (const struct guest_mem *mem)
{
  uint64_t *pml4 = cl_vmm_guest_mem_ptr (mem, BOOT_PML4_ADDR, 4096);
  uint64_t *pdpt = cl_vmm_guest_mem_ptr (mem, BOOT_PDPT_ADDR, 4096);
  uint64_t *pd = cl_vmm_guest_mem_ptr (mem, BOOT_PD_ADDR, 4 * 4096);
  memset (pml4, 0, 4096);
  memset (pdpt, 0, 4096);
  pml4[0] = BOOT_PDPT_ADDR | 0x3;
  for (int i = 0; i < 4; i++)
    pdpt[i] = (BOOT_PD_ADDR + i * 4096) | 0x3;
  for (uint64_t j = 0; j < 4 * 512; j++)
    pd[j] = (j << 21) | 0x83; /* present, writable, 2 MiB */

  uint64_t gdt[5] = {
    0,
    0,
    0x00AF9B000000FFFFULL, /* 0x10: 64-bit code (__BOOT_CS) */
    0x00CF93000000FFFFULL, /* 0x18: data (__BOOT_DS) */
    0x00808B000000FFFFULL, /* 0x20: TSS */
  };
  cl_vmm_guest_mem_write (mem, BOOT_GDT_ADDR, gdt, sizeof gdt);
  uint64_t idt = 0;
  cl_vmm_guest_mem_write (mem, BOOT_IDT_ADDR, &idt, sizeof idt);
}

int
cl_vmm_boot_load (const struct guest_mem *mem, uint64_t mem_size, const char *kernel,
                  const char *initrd, const char *cmdline, uint64_t *entry, cl_error_t *err)
{
  cleanup_close int fd = open (kernel, O_RDONLY | O_CLOEXEC);
  struct setup_header hdr;
  bool is_bzimage = false;
  uint64_t kernel_end = 0;
  uint8_t magic[0x206];
  struct stat st;

  if (fd < 0)
    return cl_error_errno (err, "open kernel `%s`", kernel);
  if (fstat (fd, &st) < 0)
    return cl_error_errno (err, "stat `%s`", kernel);
  if (!S_ISREG (st.st_mode))
    return cl_error_make (err, 0, "kernel `%s`: not a regular file", kernel);
  ssize_t got = pread (fd, magic, sizeof magic, 0);
  if (got >= 4 && memcmp (magic, ELFMAG, SELFMAG) == 0)
    {
      if (load_elf (mem, fd, kernel, entry, &kernel_end, err) < 0)
        return -1;
    }
  else if (got == sizeof magic && magic[0x1FE] == 0x55 && magic[0x1FF] == 0xAA
           && memcmp (magic + 0x202, "HdrS", 4) == 0)
    {
      is_bzimage = true;
      if (load_bzimage (mem, fd, kernel, st.st_size, &hdr, entry, &kernel_end, err) < 0)
        return -1;
    }
  else
    return cl_error_make (err, 0, "kernel `%s`: neither a bzImage nor an ELF64 kernel", kernel);

  size_t cmdline_len = strlen (cmdline) + 1;
  uint32_t cmdline_max = is_bzimage && hdr.cmdline_size ? hdr.cmdline_size + 1 : BOOT_CMDLINE_MAX;
  if (cmdline_len > cmdline_max || cmdline_len > BOOT_CMDLINE_MAX)
    return cl_error_make (err, 0, "kernel command line: %zu bytes, the kernel takes at most %u",
                          cmdline_len - 1, cmdline_max - 1);
  cl_vmm_guest_mem_write (mem, BOOT_CMDLINE_ADDR, cmdline, cmdline_len);

  uint64_t initrd_addr = 0, initrd_size = 0;
  if (initrd)
    {
      cleanup_close int ifd = open (initrd, O_RDONLY | O_CLOEXEC);
      struct stat ist;
      if (ifd < 0)
        return cl_error_errno (err, "open initrd `%s`", initrd);
      if (fstat (ifd, &ist) < 0)
        return cl_error_errno (err, "stat `%s`", initrd);
      uint64_t top = mem_size < VM_LOW_MEM_LIMIT ? mem_size : VM_LOW_MEM_LIMIT;
      uint64_t max = is_bzimage ? (uint64_t)hdr.initrd_addr_max + 1 : 0x80000000ULL;
      if (top > max)
        top = max;
      initrd_size = ist.st_size;
      if (initrd_size + kernel_end > top)
        return cl_error_make (err, 0, "initrd `%s` (%llu MiB) does not fit in guest memory", initrd,
                              (unsigned long long)(initrd_size >> 20));
      initrd_addr = (top - initrd_size) & ~0xFFFULL;
      if (load_into_guest (mem, ifd, initrd, 0, initrd_addr, initrd_size, err) < 0)
        return -1;
    }

  struct boot_params *bp = cl_vmm_guest_mem_ptr (mem, BOOT_ZERO_PAGE_ADDR, sizeof (*bp));
  cl_vmm_boot_params_fill (bp, is_bzimage ? &hdr : NULL, mem_size, BOOT_CMDLINE_ADDR,
                           cmdline_len - 1, initrd_addr, initrd_size);
  write_page_tables_and_gdt (mem);
  return 0;
}

int
cl_vmm_boot_setup_vcpu (int vcpu_fd, uint64_t entry, cl_error_t *err)
{
  struct kvm_sregs sregs;
  if (ioctl (vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
    return cl_error_errno (err, "KVM_GET_SREGS");
  struct kvm_segment code = {
    .base = 0,
    .limit = 0xFFFFFFFF,
    .selector = 0x10,
    .type = 0xB,
    .present = 1,
    .dpl = 0,
    .db = 0,
    .s = 1,
    .l = 1,
    .g = 1,
  };
  struct kvm_segment data = code;
  data.selector = 0x18;
  data.type = 0x3;
  data.l = 0;
  data.db = 1;
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = (struct kvm_segment){
    .base = 0, .limit = 0xFFFFF, .selector = 0x20, .type = 0xB, .present = 1, .s = 0, .g = 1
  };
  sregs.gdt.base = BOOT_GDT_ADDR;
  sregs.gdt.limit = 5 * 8 - 1;
  sregs.idt.base = BOOT_IDT_ADDR;
  sregs.idt.limit = 7;
  sregs.cr0 = (1u << 0) | (1u << 4) | (1u << 5) | (1u << 31); /* PE ET NE PG */
  sregs.cr3 = BOOT_PML4_ADDR;
  sregs.cr4 = 1u << 5;                 /* PAE */
  sregs.efer = (1u << 8) | (1u << 10); /* LME LMA */
  if (ioctl (vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
    return cl_error_errno (err, "KVM_SET_SREGS");

  struct kvm_regs regs = {
    .rip = entry,
    .rsi = BOOT_ZERO_PAGE_ADDR,
    .rsp = BOOT_STACK_TOP,
    .rbp = BOOT_STACK_TOP,
    .rflags = 0x2,
  };
  if (ioctl (vcpu_fd, KVM_SET_REGS, &regs) < 0)
    return cl_error_errno (err, "KVM_SET_REGS");

  struct kvm_fpu fpu = { .fcw = 0x37F, .mxcsr = 0x1F80 };
  if (ioctl (vcpu_fd, KVM_SET_FPU, &fpu) < 0)
    return cl_error_errno (err, "KVM_SET_FPU");
  return 0;
}
