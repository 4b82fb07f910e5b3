/* SPDX-License-Identifier: Apache-2.0 */
/* Reports an exit status on cloison-vmm's status port, then powers off
   through ACPI (PM1a control: SLP_TYP 5 | SLP_EN): the VMM exits 42. */
#include "lib.h"

int main (void)
{
  puts ("status 42\n");
  outb (0xF4, 42);
  outw (0x604, (5 << 10) | (1 << 13));
  for (;;)
    __asm__ volatile ("hlt");
}
