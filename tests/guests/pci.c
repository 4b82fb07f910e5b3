/* SPDX-License-Identifier: Apache-2.0 */
/* PCI enumeration through configuration mechanism #1, and read-only
   config fields staying read-only. */
#include "lib.h"

int main (void)
{
  int found = 0;
  for (int slot = 0; slot < 32; slot++)
    {
      u32 id = pci_read32 (slot, 0);
      if (id == 0xFFFFFFFF)
        continue;
      found++;
      puts ("pci 00:");
      put_hex (slot, 2);
      puts (".0 ");
      put_hex (id & 0xFFFF, 4);
      putc (':');
      put_hex (id >> 16, 4);
      puts (" class ");
      put_hex (pci_read32 (slot, 8) >> 8, 6);
      putc ('\n');
    }
  u32 before = pci_read32 (0, 0);
  pci_write32 (0, 0, 0x12345678);
  puts (pci_read32 (0, 0) == before ? "vendor id read-only: ok\n" : "vendor id read-only: BROKEN\n");
  /* a function other than 0, and bus 1: nothing there */
  outl (0xCF8, 0x80000000u | (1 << 8));
  u32 f1 = inl (0xCFC);
  outl (0xCF8, 0x80010000u);
  u32 b1 = inl (0xCFC);
  puts (f1 == 0xFFFFFFFF && b1 == 0xFFFFFFFF ? "empty functions: ok\n" : "empty functions: BROKEN\n");
  puts ("devices: ");
  put_dec (found);
  putc ('\n');
  return 0;
}
