/* SPDX-License-Identifier: Apache-2.0 */
/* Two vCPUs: the MP table lists them, CPUID leaf 0xB counts them, and the
   AP starts through INIT/SIPI (handled by KVM's in-kernel LAPIC) into the
   real-mode trampoline below, then long mode. */
#include "lib.h"

volatile u32 ap_started;
volatile u32 ap_apic_id;
static u8 ap_stack[4096] __attribute__ ((aligned (16)));
u64 ap_stack_top = (u64) (ap_stack + sizeof ap_stack);

void ap_main (void)
{
  ap_apic_id = LAPIC[0x20 / 4] >> 24;
  __atomic_store_n (&ap_started, 1, __ATOMIC_SEQ_CST);
}

__asm__ (".section .trampoline, \"ax\"\n"
         ".code16\n"
         "ap_trampoline:\n"
         "  cli\n"
         "  mov %cs, %ax\n"
         "  mov %ax, %ds\n"
         "  lgdtl ap_gdtr - ap_trampoline\n"
         "  mov %cr4, %eax\n"
         "  or $0x20, %eax\n"
         "  mov %eax, %cr4\n"
         "  mov $0x9000, %eax\n"
         "  mov %eax, %cr3\n"
         "  mov $0xC0000080, %ecx\n"
         "  rdmsr\n"
         "  or $0x100, %eax\n"
         "  wrmsr\n"
         "  mov %cr0, %eax\n"
         "  or $0x80000001, %eax\n"
         "  mov %eax, %cr0\n"
         "  ljmpl $0x08, $ap_long\n"
         ".code64\n"
         "ap_long:\n"
         "  mov $0x10, %ax\n"
         "  mov %ax, %ds\n"
         "  mov %ax, %ss\n"
         "  mov %ax, %es\n"
         "  mov ap_stack_top, %rsp\n"
         "  call ap_main\n"
         "1: hlt\n"
         "  jmp 1b\n"
         ".align 8\n"
         "ap_gdt: .quad 0, 0x00af9a000000ffff, 0x00cf92000000ffff\n"
         "ap_gdtr: .word 23\n"
         "  .long ap_gdt\n"
         ".text\n");

static int mp_table_cpus (void)
{
  for (const u8 *p = (const u8 *) 0x9FC00; p < (const u8 *) 0xA0000; p += 16)
    if (memcmp (p, "_MP_", 4) == 0)
      {
        const u8 *t = (const u8 *) (u64) * (const u32 *) (p + 4);
        u8 sum = 0;
        for (int i = 0; i < *(const u16 *) (t + 4); i++)
          sum += t[i];
        if (memcmp (t, "PCMP", 4) != 0 || sum != 0)
          return -1;
        int cpus = 0, n = *(const u16 *) (t + 34);
        const u8 *e = t + 44;
        for (int i = 0; i < n; i++)
          {
            cpus += e[0] == 0;
            e += e[0] == 0 ? 20 : 8;
          }
        return cpus;
      }
  return -1;
}

int main (void)
{
  u32 r[4];
  cpuid (0xB, 1, r);
  puts ("cpuid 0xb cpus: ");
  put_dec (r[1] & 0xFFFF);
  puts ("\nmp table cpus: ");
  int n = mp_table_cpus ();
  put_dec (n < 0 ? 999 : n);
  puts ("\nbsp apic id: ");
  put_dec (LAPIC[0x20 / 4] >> 24);
  putc ('\n');
  if (n < 2)
    return 0;
  lapic_enable ();
  LAPIC[0x310 / 4] = 1u << 24;
  LAPIC[0x300 / 4] = 0x4500; /* INIT */
  LAPIC[0x310 / 4] = 1u << 24;
  LAPIC[0x300 / 4] = 0x4600 | 0x10; /* SIPI, vector 0x10 -> 0x10000 */
  for (int i = 0; i < 200000 && !__atomic_load_n (&ap_started, __ATOMIC_SEQ_CST); i++)
    inb (0x80); /* an exit per spin: few instructions, some time */
  if (ap_started)
    {
      puts ("ap online, apic id ");
      put_dec (ap_apic_id);
      putc ('\n');
    }
  else
    puts ("ap did not start\n");
  return 0;
}
