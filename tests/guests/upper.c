/* SPDX-License-Identifier: Apache-2.0 */
/* An interactive serial console: echoes what it receives (IRQ 4 through
   the IOAPIC) upper-cased, until a `#`, then stops the VM. */
#include "lib.h"

static char ring[256];
static volatile u8 head, tail; /* the ISR writes head, main reads tail */

void isr_uart (void);

void on_uart (void)
{
  while (inb (0x3FD) & 1)
    {
      char c = inb (0x3F8);
      if ((u8)(head + 1) != tail)
        ring[head++] = c;
    }
  lapic_eoi ();
}

int main (void)
{
  idt_set (0x24, isr_uart);
  idt_load ();
  lapic_enable ();
  outb (0x21, 0xFF); /* 8259 masked: IRQ 4 comes through the IOAPIC only */
  outb (0xA1, 0xFF);
  ioapic_route (4, 0x24, 0);
  outb (0x3F9, 0x01); /* IER: received data */
  outb (0x3FC, 0x08); /* MCR: OUT2 */
  puts ("ready\n");
  for (;;)
    {
      __asm__ volatile ("cli");
      if (head == tail)
        {
          __asm__ volatile ("sti; hlt"); /* sti's shadow: no wake-up lost */
          continue;
        }
      __asm__ volatile ("sti");
      char c = ring[tail++];
      if (c == '#')
        break;
      putc (c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
  puts ("\nbye\n");
  return 0;
}
