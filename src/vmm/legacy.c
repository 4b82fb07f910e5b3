/* SPDX-License-Identifier: Apache-2.0 */
/* Ports Linux touches on a PC that have nothing behind them here: answer
   quietly instead of counting them as unknown. */
#include "vmm/devices.h"
#include "vmm/machine.h"
#include "vmm/vmm.h"

#include <stdatomic.h>
#include <string.h>

static void
quiet_pio (void *opaque, uint64_t offset, void *data, unsigned len, bool write)
{
  (void)opaque;
  (void)offset;
  if (!write)
    memset (data, 0, len);
}

/* The guest's exit status (like QEMU's isa-debug-exit, at the port the
   x86 test kernels use): a byte written here before the guest powers off
   becomes the VMM's exit status (cloison-init reports its command's). */
static void
status_pio (void *opaque, uint64_t offset, void *data, unsigned len, bool write)
{
  struct vm *vm = opaque;
  (void)offset;
  if (write)
    atomic_store (&vm->guest_status, *(uint8_t *)data);
  else
    memset (data, 0, len);
}

int
cl_vmm_legacy_ports_create (struct vm *vm, cl_error_t *err)
{
  if (cl_vmm_vm_io_register (vm, true, CL_VMM_STATUS_PORT, 1, status_pio, vm, err) < 0)
    return -1;
  static const struct
  {
    uint16_t base, len;
  } quiet[] = {
    { 0x80, 1 },   /* POST code / I/O delay */
    { 0x87, 1 },   /* DMA page */
    { 0xED, 1 },   /* alternative I/O delay */
    { 0xF0, 2 },   /* FPU error */
    { 0x3C0, 32 }, /* VGA */
  };
  for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
    if (cl_vmm_vm_io_register (vm, true, quiet[i].base, quiet[i].len, quiet_pio, NULL, err) < 0)
      return -1;
  return 0;
}
