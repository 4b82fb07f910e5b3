/* SPDX-License-Identifier: Apache-2.0 */
/* Counts on LAPIC timer ticks (sleeping in hlt between them), one line per
   tick: the guest a snapshot is taken of and restored from. */
#include "lib.h"

#define TICKS 40
volatile u32 ticks;

void isr_timer (void);

void on_timer (void)
{
  ticks++;
  lapic_eoi ();
}

int main (void)
{
  idt_set (0x20, isr_timer);
  idt_load ();
  lapic_enable ();
  lapic_timer_periodic (0x20, 50 * 1000 * 1000); /* 50 ms */
  __asm__ volatile ("sti");
  u32 seen = 0;
  while (seen < TICKS)
    {
      __asm__ volatile ("hlt");
      while (seen < ticks && seen < TICKS)
        {
          seen++;
          puts ("count ");
          put_dec (seen);
          putc ('\n');
        }
    }
  LAPIC[0x320 / 4] = 1 << 16; /* mask the timer */
  puts ("done\n");
  return 0;
}
