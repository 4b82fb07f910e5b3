/* SPDX-License-Identifier: Apache-2.0 */
/* 8250/16550A UART on COM1, interrupt driven on IRQ 4: THR/RBR, IER,
   IIR/FCR, LCR, MCR (with loopback, which Linux's probe uses), LSR, MSR,
   scratch, a receive FIFO fed from the console fd by the I/O thread. */
#include "vmm/devices.h"
#include "vmm/machine.h"

#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UART_RX_FIFO 64
#define UART_OUT_KEEP 4096

enum
{
  IER_RDA = 0x01,
  IER_THRE = 0x02,
  IER_RLS = 0x04,
  IER_MS = 0x08,
  IIR_NONE = 0x01,
  IIR_MS = 0x00,
  IIR_THRE = 0x02,
  IIR_RDA = 0x04,
  IIR_RLS = 0x06,
  IIR_FIFO = 0xC0,
  LCR_DLAB = 0x80,
  MCR_LOOP = 0x10,
  LSR_DR = 0x01,
  LSR_ERRORS = 0x1E,
  LSR_THRE = 0x20,
  LSR_TEMT = 0x40,
};

struct uart
{
  struct vm *vm; /* NULL: detached (unit tests) */
  pthread_mutex_t lock;
  int in_fd, out_fd;
  bool rx_watched;

  uint8_t ier, iir_fifo, lcr, mcr, lsr, msr, scr, dll, dlm;
  bool thr_pending; /* THR-empty interrupt latched */
  bool irq_level;
  uint8_t rx[UART_RX_FIFO];
  unsigned rx_head, rx_count;

  char line[160]; /* current output line, for the panic pattern */
  size_t line_len;
  char *kept; /* detached: output kept for the test */
  size_t kept_len;
};

static uint8_t
uart_iir (struct uart *u)
{
  if ((u->ier & IER_RLS) && (u->lsr & LSR_ERRORS))
    return IIR_RLS;
  if ((u->ier & IER_RDA) && (u->lsr & LSR_DR))
    return IIR_RDA;
  if ((u->ier & IER_THRE) && u->thr_pending)
    return IIR_THRE;
  if ((u->ier & IER_MS) && (u->msr & 0x0F))
    return IIR_MS;
  return IIR_NONE;
}

/* Edge-triggered ISA line: follow the pending state. */
static void
uart_update_irq (struct uart *u)
{
  bool level = uart_iir (u) != IIR_NONE;
  if (level == u->irq_level)
    return;
  u->irq_level = level;
  if (u->vm)
    cl_vmm_vm_irq_line (u->vm, UART_COM1_IRQ, level);
}

static void uart_rx_watch (struct uart *u, bool on);

static void
uart_check_line (struct uart *u, char c)
{
  if (c != '\n' && u->line_len < sizeof u->line - 1)
    {
      u->line[u->line_len++] = c;
      return;
    }
  u->line[u->line_len] = 0;
  if (u->vm && strstr (u->line, "Kernel panic - not syncing"))
    {
      char *msg = cl_strdup_printf ("guest kernel panic: %s", strstr (u->line, "Kernel panic"));
      size_t n = strlen (msg);
      if (n && msg[n - 1] == '\r')
        msg[n - 1] = 0;
      cl_vmm_vm_request_stop (u->vm, VM_STOP_PANIC, msg);
      free (msg);
    }
  u->line_len = 0;
}

static void
uart_transmit (struct uart *u, uint8_t c)
{
  if (u->mcr & MCR_LOOP)
    {
      if (u->rx_count < UART_RX_FIFO)
        {
          u->rx[(u->rx_head + u->rx_count++) % UART_RX_FIFO] = c;
          u->lsr |= LSR_DR;
        }
      return;
    }
  if (u->vm == NULL)
    {
      if (u->kept_len < UART_OUT_KEEP)
        u->kept[u->kept_len++] = c;
    }
  else if (u->out_fd >= 0)
    cl_write_all (u->out_fd, &c, 1);
  if (u->vm)
    cl_vmm_vm_metric_add (u->vm, "uart0", "tx_bytes", 1);
  uart_check_line (u, c);
}

static uint8_t
uart_msr (struct uart *u)
{
  if (u->mcr & MCR_LOOP)
    {
      /* RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD */
      uint8_t m = u->mcr;
      return ((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4);
    }
  return u->msr;
}

uint8_t
cl_vmm_uart_reg_read (struct uart *u, unsigned reg)
{
  uint8_t v = 0xFF;
  switch (reg)
    {
    case 0:
      if (u->lcr & LCR_DLAB)
        v = u->dll;
      else
        {
          v = 0;
          if (u->rx_count)
            {
              v = u->rx[u->rx_head];
              u->rx_head = (u->rx_head + 1) % UART_RX_FIFO;
              u->rx_count--;
            }
          if (u->rx_count == 0)
            {
              u->lsr &= ~LSR_DR;
              uart_rx_watch (u, true);
            }
        }
      break;
    case 1:
      v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
      break;
    case 2:
      v = uart_iir (u);
      if (v == IIR_THRE)
        u->thr_pending = false;
      v |= u->iir_fifo;
      break;
    case 3:
      v = u->lcr;
      break;
    case 4:
      v = u->mcr;
      break;
    case 5:
      v = u->lsr;
      u->lsr &= ~LSR_ERRORS;
      break;
    case 6:
      v = uart_msr (u);
      u->msr &= 0xF0;
      break;
    case 7:
      v = u->scr;
      break;
    }
  uart_update_irq (u);
  return v;
}

void
cl_vmm_uart_reg_write (struct uart *u, unsigned reg, uint8_t value)
{
  switch (reg)
    {
    case 0:
      if (u->lcr & LCR_DLAB)
        u->dll = value;
      else
        {
          uart_transmit (u, value);
          u->thr_pending = true;
          u->lsr |= LSR_THRE | LSR_TEMT;
        }
      break;
    case 1:
      if (u->lcr & LCR_DLAB)
        u->dlm = value;
      else
        {
          uint8_t old = u->ier;
          u->ier = value & 0x0F;
          if ((u->ier & IER_THRE) && !(old & IER_THRE) && (u->lsr & LSR_THRE))
            u->thr_pending = true;
        }
      break;
    case 2: /* FCR */
      u->iir_fifo = (value & 0x01) ? IIR_FIFO : 0;
      if (value & 0x02)
        {
          u->rx_count = 0;
          u->lsr &= ~LSR_DR;
          uart_rx_watch (u, true);
        }
      break;
    case 3:
      u->lcr = value;
      break;
    case 4:
      u->mcr = value & 0x1F;
      break;
    case 7:
      u->scr = value;
      break;
    default: /* LSR, MSR: read-only */
      break;
    }
  uart_update_irq (u);
}

static void
uart_reset (struct uart *u)
{
  u->ier = u->iir_fifo = u->lcr = u->scr = u->dlm = 0;
  u->mcr = 0x08; /* OUT2 */
  u->lsr = LSR_THRE | LSR_TEMT;
  u->msr = 0xB0; /* DCD, DSR, CTS */
  u->dll = 0x0C; /* 9600 baud */
}

struct uart *
cl_vmm_uart_new_detached (void)
{
  struct uart *u = cl_xmalloc0 (sizeof (*u));
  pthread_mutex_init (&u->lock, NULL);
  u->in_fd = u->out_fd = -1;
  u->kept = cl_xmalloc0 (UART_OUT_KEEP);
  uart_reset (u);
  return u;
}

size_t
cl_vmm_uart_take_output (struct uart *u, char *buf, size_t len)
{
  size_t n = u->kept_len < len ? u->kept_len : len;
  memcpy (buf, u->kept, n);
  memmove (u->kept, u->kept + n, u->kept_len - n);
  u->kept_len -= n;
  return n;
}

void
cl_vmm_uart_feed_input (struct uart *u, const char *buf, size_t len)
{
  for (size_t i = 0; i < len && u->rx_count < UART_RX_FIFO; i++)
    {
      u->rx[(u->rx_head + u->rx_count++) % UART_RX_FIFO] = buf[i];
      u->lsr |= LSR_DR;
    }
  uart_update_irq (u);
}

bool
cl_vmm_uart_irq_pending (struct uart *u)
{
  return uart_iir (u) != IIR_NONE;
}

static void
uart_pio (void *opaque, uint64_t offset, void *data, unsigned len, bool write)
{
  struct uart *u = opaque;
  uint8_t *b = data;
  pthread_mutex_lock (&u->lock);
  if (write)
    cl_vmm_uart_reg_write (u, offset, b[0]);
  else
    {
      b[0] = cl_vmm_uart_reg_read (u, offset);
      memset (b + 1, 0, len - 1);
    }
  pthread_mutex_unlock (&u->lock);
}

static void
uart_on_input (void *opaque, uint32_t events)
{
  struct uart *u = opaque;
  char buf[UART_RX_FIFO];
  (void)events;

  pthread_mutex_lock (&u->lock);
  size_t room = UART_RX_FIFO - u->rx_count;
  ssize_t n = room ? read (u->in_fd, buf, room) : 0;
  if (n > 0)
    {
      cl_vmm_uart_feed_input (u, buf, n);
      cl_vmm_vm_metric_add (u->vm, "uart0", "rx_bytes", n);
    }
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || u->rx_count == UART_RX_FIFO)
    {
      /* EOF or full: stop watching until the guest drains the FIFO */
      uart_rx_watch (u, false);
      if (n <= 0 && room)
        u->in_fd = -1;
    }
  pthread_mutex_unlock (&u->lock);
}

static void
uart_rx_watch (struct uart *u, bool on)
{
  if (u->vm == NULL || u->in_fd < 0 || on == u->rx_watched)
    return;
  if (on)
    {
      cl_error_t err = NULL;
      if (cl_vmm_vm_event_add (u->vm, u->in_fd, EPOLLIN, uart_on_input, u, &err) == 0)
        u->rx_watched = true;
      cl_error_release (&err);
    }
  else
    {
      cl_vmm_vm_event_del (u->vm, u->in_fd);
      u->rx_watched = false;
    }
}

static json_t *
uart_save (void *opaque)
{
  struct uart *u = opaque;
  char rx[UART_RX_FIFO * 2 + 1] = "";
  for (unsigned i = 0; i < u->rx_count; i++)
    snprintf (rx + 2 * i, 3, "%02x", u->rx[(u->rx_head + i) % UART_RX_FIFO]);
  return json_pack ("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:b,s:s}", "ier", u->ier, "fcr",
                    u->iir_fifo, "lcr", u->lcr, "mcr", u->mcr, "lsr", u->lsr, "msr", u->msr, "scr",
                    u->scr, "dll", u->dll, "dlm", u->dlm, "thr_pending", u->thr_pending, "rx", rx);
}

static int
uart_restore (void *opaque, json_t *state, cl_error_t *err)
{
  struct uart *u = opaque;
  int ier, fcr, lcr, mcr, lsr, msr, scr, dll, dlm, thr;
  const char *rx;
  json_error_t je;
  if (json_unpack_ex (state, &je, 0, "{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:b,s:s}", "ier", &ier,
                      "fcr", &fcr, "lcr", &lcr, "mcr", &mcr, "lsr", &lsr, "msr", &msr, "scr", &scr,
                      "dll", &dll, "dlm", &dlm, "thr_pending", &thr, "rx", &rx)
      < 0)
    return cl_error_make (err, 0, "uart0 state: %s", je.text);
  pthread_mutex_lock (&u->lock);
  u->ier = ier;
  u->iir_fifo = fcr;
  u->lcr = lcr;
  u->mcr = mcr;
  u->lsr = lsr & ~LSR_DR;
  u->msr = msr;
  u->scr = scr;
  u->dll = dll;
  u->dlm = dlm;
  u->thr_pending = thr;
  u->rx_head = u->rx_count = 0;
  for (size_t i = 0; rx[2 * i] && rx[2 * i + 1] && i < UART_RX_FIFO; i++)
    {
      unsigned b;
      if (sscanf (rx + 2 * i, "%2x", &b) == 1)
        u->rx[u->rx_count++] = b;
    }
  if (u->rx_count)
    u->lsr |= LSR_DR;
  u->irq_level = false;
  uart_update_irq (u);
  pthread_mutex_unlock (&u->lock);
  return 0;
}

/* The line raised by uart_restore went into a fresh irqchip that the
   saved one then replaced: a new edge if an interrupt is pending. */
static void
uart_resumed (void *opaque)
{
  struct uart *u = opaque;
  pthread_mutex_lock (&u->lock);
  if (u->irq_level && u->vm)
    cl_vmm_vm_irq_line (u->vm, UART_COM1_IRQ, 0);
  u->irq_level = false;
  uart_update_irq (u);
  pthread_mutex_unlock (&u->lock);
}

static const struct vm_persist_ops uart_persist
    = { .save = uart_save, .restore = uart_restore, .resumed = uart_resumed };

int
cl_vmm_uart_create (struct vm *vm, int in_fd, int out_fd, struct uart **out, cl_error_t *err)
{
  struct uart *u = cl_xmalloc0 (sizeof (*u));
  pthread_mutex_init (&u->lock, NULL);
  u->vm = vm;
  u->in_fd = in_fd;
  u->out_fd = out_fd;
  uart_reset (u);
  *out = u;
  if (cl_vmm_vm_io_register (vm, true, UART_COM1_BASE, 8, uart_pio, u, err) < 0)
    return -1;
  if (cl_vmm_vm_persist_register (vm, "uart0", &uart_persist, u, err) < 0)
    return -1;
  pthread_mutex_lock (&u->lock);
  uart_rx_watch (u, true);
  pthread_mutex_unlock (&u->lock);
  return 0;
}

void
cl_vmm_uart_free (struct uart *u)
{
  if (u == NULL)
    return;
  free (u->kept);
  free (u);
}
