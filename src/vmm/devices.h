/* SPDX-License-Identifier: Apache-2.0 */
/* Legacy platform devices, one short file each, and the PCI host bridge.
   Each registers its ports with cl_vmm_vm_io_register and its snapshot state with
   cl_vmm_vm_persist_register; the VM frees them through vm_devices_free. */
#ifndef CLOISON_VMM_DEVICES_H
#define CLOISON_VMM_DEVICES_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct uart;

#define UART_COM1_BASE 0x3F8
#define UART_COM1_IRQ 4

/* uart.c: 16550A on COM1.  in_fd -1: no input; out_fd -1: output dropped.
   A "Kernel panic - not syncing" line stops the VM as a panic. */
int cl_vmm_uart_create (struct vm *vm, int in_fd, int out_fd, struct uart **out, cl_error_t *err);
void cl_vmm_uart_free (struct uart *u);

/* Pure register model for unit tests: no VM, no fds. */
struct uart *cl_vmm_uart_new_detached (void);
uint8_t cl_vmm_uart_reg_read (struct uart *u, unsigned reg);
void cl_vmm_uart_reg_write (struct uart *u, unsigned reg, uint8_t value);
/* Bytes the guest wrote (detached UART: kept for the test), and RX. */
size_t cl_vmm_uart_take_output (struct uart *u, char *buf, size_t len);
void cl_vmm_uart_feed_input (struct uart *u, const char *buf, size_t len);
bool cl_vmm_uart_irq_pending (struct uart *u);

/* i8042.c: enough of the keyboard controller for reboot=k. */
int cl_vmm_i8042_create (struct vm *vm, cl_error_t *err);
/* rtc.c: MC146818 CMOS clock with the host's UTC date. */
int cl_vmm_rtc_create (struct vm *vm, cl_error_t *err);
/* legacy.c: silent handlers for ports Linux probes (0x80, ELCR, VGA...). */
int cl_vmm_legacy_ports_create (struct vm *vm, cl_error_t *err);
/* pci.c: host bridge on 0xCF8/0xCFC; cl_vmm_pci_register() adds devices. */
int cl_vmm_pci_bus_create (struct vm *vm, cl_error_t *err);
void cl_vmm_pci_bus_free (struct vm *vm);
struct pci_bus;
struct pci_device;
/* A guest write of config space (through 0xCFC), exposed for unit tests. */
void cl_vmm_pci_config_write (struct pci_bus *bus, struct pci_device *dev, unsigned off,
                              const uint8_t *data, unsigned len);
/* After a restore put the saved config spaces back: map BARs there. */
void cl_vmm_pci_bus_restore_bars (struct vm *vm);

#endif
