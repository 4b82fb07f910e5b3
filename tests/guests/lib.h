/* SPDX-License-Identifier: Apache-2.0 */
/* Freestanding helpers for the test guests: port I/O, COM1 output, PCI
   config reads, an IDT, the local APIC and IOAPIC. */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

#define LAPIC ((volatile u32 *) 0xFEE00000UL)
#define IOAPIC ((volatile u32 *) 0xFEC00000UL)

static inline void outb (u16 port, u8 v) { __asm__ volatile ("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw (u16 port, u16 v) { __asm__ volatile ("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb (u16 port) { u8 v; __asm__ volatile ("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outl (u16 port, u32 v) { __asm__ volatile ("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u32 inl (u16 port) { u32 v; __asm__ volatile ("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void cpuid (u32 leaf, u32 sub, u32 r[4])
{
  __asm__ volatile ("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

void putc (char c);
void puts (const char *s);
void put_dec (u64 v);
void put_hex (u64 v, int digits);
u32 pci_read32 (int slot, int off);
void pci_write32 (int slot, int off, u32 v);
int memcmp (const void *a, const void *b, u64 n);
void *memset (void *d, int c, u64 n);
void *memcpy (void *d, const void *s, u64 n);

/* IDT with gates for the given vectors only. */
void idt_set (int vector, void (*isr) (void));
void idt_load (void);
void lapic_enable (void);
void lapic_eoi (void);
/* Periodic LAPIC timer on `vector` every `ns` (KVM: 1 tick = 1 ns). */
void lapic_timer_periodic (int vector, u32 ns);
void ioapic_route (int pin, int vector, int apic_id);

#endif
