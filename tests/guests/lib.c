/* SPDX-License-Identifier: Apache-2.0 */
#include "lib.h"

void putc (char c)
{
  outb (0x3F8, c); /* the VMM's THR is always empty */
}

void puts (const char *s)
{
  while (*s)
    putc (*s++);
}

void put_dec (u64 v)
{
  char b[21];
  int i = 20;
  b[i] = 0;
  do
    b[--i] = '0' + v % 10;
  while ((v /= 10) && i > 0);
  puts (b + i);
}

void put_hex (u64 v, int digits)
{
  for (int i = digits - 1; i >= 0; i--)
    putc ("0123456789abcdef"[(v >> (4 * i)) & 0xF]);
}

u32 pci_read32 (int slot, int off)
{
  outl (0xCF8, 0x80000000u | (slot << 11) | (off & 0xFC));
  return inl (0xCFC);
}

void pci_write32 (int slot, int off, u32 v)
{
  outl (0xCF8, 0x80000000u | (slot << 11) | (off & 0xFC));
  outl (0xCFC, v);
}

int memcmp (const void *a, const void *b, u64 n)
{
  const u8 *x = a, *y = b;
  for (u64 i = 0; i < n; i++)
    if (x[i] != y[i])
      return x[i] - y[i];
  return 0;
}

void *memset (void *d, int c, u64 n)
{
  u8 *p = d;
  while (n--)
    *p++ = c;
  return d;
}

void *memcpy (void *d, const void *s, u64 n)
{
  u8 *p = d;
  const u8 *q = s;
  while (n--)
    *p++ = *q++;
  return d;
}

struct idt_gate
{
  u16 off0, sel;
  u8 ist, type;
  u16 off1;
  u32 off2, zero;
} __attribute__ ((packed));

static struct idt_gate idt[64] __attribute__ ((aligned (16)));

void idt_set (int vector, void (*isr) (void))
{
  u64 a = (u64) isr;
  idt[vector] = (struct idt_gate){ (u16) a, 0x10, 0, 0x8E, (u16) (a >> 16), (u32) (a >> 32), 0 };
}

void idt_load (void)
{
  struct
  {
    u16 limit;
    u64 base;
  } __attribute__ ((packed)) d = { sizeof idt - 1, (u64) idt };
  __asm__ volatile ("lidt %0" : : "m"(d));
}

void lapic_enable (void)
{
  LAPIC[0xF0 / 4] = 0x1FF; /* software enable, spurious vector 0xFF */
}

void lapic_eoi (void)
{
  LAPIC[0xB0 / 4] = 0;
}

void lapic_timer_periodic (int vector, u32 ns)
{
  LAPIC[0x3E0 / 4] = 0xB; /* divide by 1 */
  LAPIC[0x320 / 4] = vector | (1 << 17);
  LAPIC[0x380 / 4] = ns;
}

void ioapic_route (int pin, int vector, int apic_id)
{
  IOAPIC[0] = 0x10 + 2 * pin + 1;
  IOAPIC[4] = (u32) apic_id << 24;
  IOAPIC[0] = 0x10 + 2 * pin;
  IOAPIC[4] = vector; /* fixed, physical, edge, active high, unmasked */
}

/* Weak defaults for guests without interrupts. */
__attribute__ ((weak)) void on_timer (void) { lapic_eoi (); }
__attribute__ ((weak)) void on_uart (void) { lapic_eoi (); }
