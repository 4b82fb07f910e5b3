/* SPDX-License-Identifier: Apache-2.0 */
/* i8042 keyboard controller, only as much as Linux needs to probe it and
   to reboot through it (reboot=k: command 0xFE pulses the reset line). */
#include "vmm/devices.h"
#include "vmm/machine.h"

#include "common/util.h"

#include <string.h>

struct i8042
{
  struct vm *vm;
  pthread_mutex_t lock;
  uint8_t ctr; /* controller configuration byte */
  uint8_t outbuf;
  bool out_full;
  uint8_t pending; /* command waiting for its data byte: 0x60 or 0xD1 */
};

static void
i8042_reply (struct i8042 *k, uint8_t v)
{
  k->outbuf = v;
  k->out_full = true;
}

static void
i8042_reset_machine (struct i8042 *k)
{
  cl_vmm_vm_request_stop (k->vm, VM_STOP_RESET, "guest reboot (i8042 reset)");
}

static void
i8042_command (struct i8042 *k, uint8_t cmd)
{
  switch (cmd)
    {
    case 0x20: /* read CTR */
      i8042_reply (k, k->ctr);
      break;
    case 0x60: /* write CTR */
    case 0xD1: /* write output port */
      k->pending = cmd;
      break;
    case 0xAA: /* self test */
      i8042_reply (k, 0x55);
      break;
    case 0xAB: /* keyboard interface test */
      i8042_reply (k, 0x00);
      break;
    case 0xA9: /* aux interface test */
      /* No mouse behind this controller: "clock line stuck low".  Linux
         then drops the AUX port at once; answering 0x00 made it wait
         250 ms for an IRQ 12 that no device raises (i8042_check_aux),
         a quarter of a second of every boot without i8042.noaux. */
      i8042_reply (k, 0x01);
      break;
    case 0xD0: /* read output port: A20 on, not in reset */
      i8042_reply (k, 0x03);
      break;
    case 0xFE: /* pulse the reset line */
      i8042_reset_machine (k);
      break;
    case 0xA7: /* disable / enable the aux port, as seen in the CTR */
      k->ctr |= 0x20;
      break;
    case 0xA8:
      k->ctr &= ~0x20;
      break;
    case 0xAD: /* disable / enable the keyboard */
      k->ctr |= 0x10;
      break;
    case 0xAE:
      k->ctr &= ~0x10;
      break;
    default:
      break;
    }
}

static void
i8042_pio (void *opaque, uint64_t offset, void *data, unsigned len, bool write)
{
  struct i8042 *k = opaque;
  uint8_t *b = data;
  unsigned port = 0x60 + offset;

  pthread_mutex_lock (&k->lock);
  if (!write)
    {
      memset (b, 0, len);
      if (port == 0x64)
        b[0] = (k->out_full ? 0x01 : 0) | 0x04 | 0x10; /* OBF, system flag, not locked */
      else if (port == 0x60)
        {
          b[0] = k->outbuf;
          k->out_full = false;
        }
    }
  else if (port == 0x64)
    i8042_command (k, b[0]);
  else if (port == 0x60)
    {
      if (k->pending == 0x60)
        k->ctr = b[0];
      else if (k->pending == 0xD1 && !(b[0] & 1))
        i8042_reset_machine (k);
      else if (k->pending == 0)
        i8042_reply (k, 0xFA); /* keyboard command: ACK */
      k->pending = 0;
    }
  pthread_mutex_unlock (&k->lock);
}

static json_t *
i8042_save (void *opaque)
{
  struct i8042 *k = opaque;
  return json_pack ("{s:i,s:i,s:b,s:i}", "ctr", k->ctr, "outbuf", k->outbuf, "out_full",
                    k->out_full, "pending", k->pending);
}

static int
i8042_restore (void *opaque, json_t *state, cl_error_t *err)
{
  struct i8042 *k = opaque;
  int ctr, outbuf, full, pending;
  if (json_unpack (state, "{s:i,s:i,s:b,s:i}", "ctr", &ctr, "outbuf", &outbuf, "out_full", &full,
                   "pending", &pending)
      < 0)
    return cl_error_make (err, 0, "i8042 state: bad format");
  k->ctr = ctr;
  k->outbuf = outbuf;
  k->out_full = full;
  k->pending = pending;
  return 0;
}

static const struct vm_persist_ops i8042_persist = { .save = i8042_save, .restore = i8042_restore };

int
cl_vmm_i8042_create (struct vm *vm, cl_error_t *err)
{
  struct i8042 *k = cl_xmalloc0 (sizeof (*k));
  k->vm = vm;
  k->ctr = 0x47; /* interrupts on, system flag, translation */
  pthread_mutex_init (&k->lock, NULL);
  cl_vmm_vm_add_destructor (vm, free, k);
  if (cl_vmm_vm_io_register (vm, true, 0x60, 5, i8042_pio, k, err) < 0)
    return -1;
  return cl_vmm_vm_persist_register (vm, "i8042", &i8042_persist, k, err);
}
