/* SPDX-License-Identifier: Apache-2.0 */
/* Interrupt-driven serial input: IRQ 4 through the IOAPIC; prints the
   first line it receives. */
#include "lib.h"

static char line[128];
static volatile u32 len;
static volatile int complete;

void isr_uart (void);

void on_uart (void)
{
  while (inb (0x3FD) & 1)
    {
      char c = inb (0x3F8);
      if (c == '\n' || c == '\r')
        complete = 1;
      else if (len < sizeof line - 1)
        line[len++] = c;
    }
  lapic_eoi ();
}

int main (void)
{
  idt_set (0x24, isr_uart);
  idt_load ();
  lapic_enable ();
  /* KVM's BSP LAPIC starts in virtual-wire mode: the 8259 would deliver
     IRQ 4 too, as vector 4 of its reset state.  Mask it, as Linux does. */
  outb (0x21, 0xFF);
  outb (0xA1, 0xFF);
  ioapic_route (4, 0x24, 0);
  outb (0x3F9, 0x01); /* IER: received data */
  outb (0x3FC, 0x08); /* MCR: OUT2 */
  puts ("ready\n");
  /* Check with interrupts off, then sleep with sti; hlt (sti's shadow):
     an interrupt between the check and hlt would be a lost wake-up. */
  __asm__ volatile ("cli");
  while (!complete)
    __asm__ volatile ("sti; hlt; cli");
  __asm__ volatile ("sti");
  line[len] = 0;
  puts ("echo: ");
  puts (line);
  putc ('\n');
  return 0;
}
