/* SPDX-License-Identifier: Apache-2.0 */
/* Serial output, boot_params (command line, e820 map) and the CMOS date. */
#include "lib.h"

static u8 rtc (u8 reg)
{
  outb (0x70, reg);
  u8 v = inb (0x71);
  return (v >> 4) * 10 + (v & 0xF);
}

int main (const u8 *bp)
{
  puts ("hello from the cloison guest\n");
  puts ("cmdline: ");
  puts ((const char *) (u64) * (const u32 *) (bp + 0x228));
  puts ("\ne820:");
  for (int i = 0; i < bp[0x1E8]; i++)
    {
      const u8 *e = bp + 0x2D0 + 20 * i;
      puts (" ");
      put_hex (*(const u64 *) e, 9);
      puts ("+");
      put_hex (*(const u64 *) (e + 8), 9);
      puts (":");
      put_dec (*(const u32 *) (e + 16));
    }
  puts ("\nrtc: ");
  put_dec (rtc (0x32) * 100 + rtc (9));
  putc ('-');
  put_dec (rtc (8));
  putc ('-');
  put_dec (rtc (7));
  puts ("\nbye\n");
  return 0;
}
