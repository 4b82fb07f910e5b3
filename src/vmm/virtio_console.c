/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-console (virtio 1.2, 5.3), port 0 only (hvc0): guest output is
   written to out_fd, host input read from in_fd when the guest has posted
   receive buffers.  Input waits in a staging buffer while the guest has no
   room; the fd is then dropped from the event loop (it is level-triggered)
   and taken back when the guest kicks the receive queue.

   Input starts INPUT_GRACE_MS after DRIVER_OK: Linux posts the receive
   buffers of port 0 (and kicks) a moment before it lists the port, and
   drops whatever arrives in between (in_intr: no port -> flush_bufs). */
#include "vmm/virtio.h"
#include "vmm/virtio_pci.h"

#include "common/log.h"
#include "common/util.h"
#include "vmm/vmm_vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define RXQ 0
#define TXQ 1
#define CONSOLE_F_EMERG_WRITE 2
#define STAGING_SIZE 4096
#define INPUT_GRACE_MS 500
/* Input taken from a file that cannot be polled (/dev/zero never ends). */
#define FILE_INPUT_MAX (1u << 20)

struct console_config
{
  uint16_t cols, rows;
  uint32_t max_nr_ports;
  uint32_t emerg_wr;
} __attribute__ ((packed));

struct virtio_console
{
  struct virtio_device vdev;
  struct console_config config;
  int in_fd, out_fd;
  bool in_pollable, in_watched, in_eof;
  bool input_open;  /* the grace period after DRIVER_OK is over */
  int grace_fd;     /* timerfd ending the grace period */
  uint8_t *staging; /* input not yet given to the guest */
  size_t staging_len, staging_off, staging_cap;
  struct virtq_chain chain;
};

static void on_input (void *opaque, uint32_t events);

static void
watch_input (struct virtio_console *con, bool on)
{
  cl_error_t err = NULL;

  if (!con->in_pollable || con->in_eof || on == con->in_watched)
    return;
  if (!on)
    cl_vmm_vm_event_del (con->vdev.vm, con->in_fd);
  else if (cl_vmm_vm_event_add (con->vdev.vm, con->in_fd, EPOLLIN, on_input, con, &err) < 0)
    {
      cl_warn ("%s: input: %s", con->vdev.name, err->msg);
      cl_error_release (&err);
      return;
    }
  con->in_watched = on;
}

/* Gives staged input to the guest; false when it has no buffer left. */
static bool
deliver_staged (struct virtio_console *con)
{
  struct virtio_device *dev = &con->vdev;
  struct virtq *vq = &dev->queues[RXQ].vq;
  const char *why;

  while (con->staging_off < con->staging_len)
    {
      int r = cl_vmm_virtq_pop (vq, &con->chain, &why);
      uint64_t n;
      if (r < 0)
        {
          cl_vmm_virtio_device_fail (dev, RXQ, why);
          return false;
        }
      if (r == 0)
        {
          if (cl_vmm_virtq_enable_notify (vq))
            continue;
          return false;
        }
      n = cl_vmm_virtq_chain_write (&con->chain, 0, con->staging + con->staging_off,
                                    con->staging_len - con->staging_off);
      con->staging_off += n;
      cl_vmm_virtq_push (vq, con->chain.head, n);
      cl_vmm_vm_metric_add (dev->vm, dev->name, "rx_bytes", n);
    }
  con->staging_off = con->staging_len = 0;
  return true;
}

static void
serve_input (struct virtio_console *con)
{
  bool room;

  if (!con->input_open)
    return;
  room = deliver_staged (con);

  cl_vmm_virtio_queue_flush (&con->vdev, RXQ);
  watch_input (con, room && virtio_device_running (&con->vdev));
}

static void
on_input (void *opaque, uint32_t events)
{
  struct virtio_console *con = opaque;
  ssize_t n;

  (void) events;
  pthread_mutex_lock (&con->vdev.lock);
  if (con->staging_len == 0 && virtio_device_running (&con->vdev))
    {
      n = read (con->in_fd, con->staging, STAGING_SIZE);
      if (n > 0)
        con->staging_len = n;
      else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        {
          watch_input (con, false);
          con->in_eof = true;
        }
    }
  serve_input (con);
  pthread_mutex_unlock (&con->vdev.lock);
}

static int64_t
write_output (struct virtio_device *dev, unsigned q, const struct virtq_chain *c)
{
  struct virtio_console *con = (struct virtio_console *) dev;

  (void) q;
  for (unsigned i = 0; i < c->nout; i++)
    if (cl_write_all (con->out_fd, c->iov[i].iov_base, c->iov[i].iov_len) < 0)
      break;
  cl_vmm_vm_metric_add (dev->vm, dev->name, "tx_bytes", c->out_len);
  return 0;
}

static void
console_notify (struct virtio_device *dev, unsigned q)
{
  struct virtio_console *con = (struct virtio_console *) dev;

  if (q == TXQ)
    cl_vmm_virtio_queue_serve (dev, q, &con->chain, write_output);
  else
    serve_input (con);
}

static void
console_config_write (struct virtio_device *dev, unsigned offset, const void *data, unsigned len)
{
  struct virtio_console *con = (struct virtio_console *) dev;

  /* An emergency write: one character, usable before the queues are up.
     The rest of the config space is read-only. */
  if (offset == offsetof (struct console_config, emerg_wr) && len >= 1
      && cl_write_all (con->out_fd, data, 1) < 0)
    cl_debug ("%s: emergency write failed", dev->name);
}

static void
on_grace_over (void *opaque, uint32_t events)
{
  struct virtio_console *con = opaque;
  uint64_t n;

  (void) events;
  if (read (con->grace_fd, &n, sizeof n) < 0)
    return;
  pthread_mutex_lock (&con->vdev.lock);
  if (virtio_device_running (&con->vdev))
    {
      con->input_open = true;
      serve_input (con);
    }
  pthread_mutex_unlock (&con->vdev.lock);
}

static int
console_activate (struct virtio_device *dev, cl_error_t *err)
{
  struct virtio_console *con = (struct virtio_console *) dev;
  struct itimerspec grace = { .it_value = { 0, INPUT_GRACE_MS * 1000000L } };

  if (con->input_open)
    {
      serve_input (con); /* restored: the port was already listed */
      return 0;
    }
  if (timerfd_settime (con->grace_fd, 0, &grace, NULL) < 0)
    return cl_error_errno (err, "%s: timerfd_settime", dev->name);
  return 0;
}

static void
console_reset (struct virtio_device *dev)
{
  struct virtio_console *con = (struct virtio_console *) dev;
  struct itimerspec off = { 0 };

  watch_input (con, false);
  con->input_open = false;
  timerfd_settime (con->grace_fd, 0, &off, NULL);
}

static json_t *
console_save (struct virtio_device *dev)
{
  return json_pack ("{s:b}", "input_open", ((struct virtio_console *) dev)->input_open);
}

static int
console_restore (struct virtio_device *dev, json_t *state, cl_error_t *err)
{
  struct virtio_console *con = (struct virtio_console *) dev;
  int open = 0;

  if (json_unpack (state, "{s:b}", "input_open", &open) < 0)
    return cl_error_make (err, 0, "%s: snapshot state: input_open", dev->name);
  con->input_open = open;
  return 0;
}

/* The in/out fds stay the caller's. */
static void
console_free (struct virtio_console *con)
{
  if (con->grace_fd >= 0)
    close (con->grace_fd);
  free (con->staging);
  free (con);
}

static void
console_release (struct virtio_device *dev)
{
  console_free ((struct virtio_console *)dev);
}

static const struct virtio_device_ops console_ops = {
  .kind = "console",
  .device_id = VIRTIO_ID_CONSOLE,
  .class_code = 0x078000,
  .num_queues = 2,
  .queue_max_size = 128,
  .features = 1ull << CONSOLE_F_EMERG_WRITE,
  .config_write = console_config_write,
  .activate = console_activate,
  .reset = console_reset,
  .queue_notify = console_notify,
  .save = console_save,
  .restore = console_restore,
  .release = console_release,
};

/* A regular file (or /dev/null) cannot be polled: it is read once, whole,
   and handed to the guest as if typed. */
static int
stage_whole_file (struct virtio_console *con, cl_error_t *err)
{
  for (;;)
    {
      ssize_t n;
      if (con->staging_len == con->staging_cap)
        {
          con->staging_cap *= 2;
          con->staging = realloc (con->staging, con->staging_cap);
          if (con->staging == NULL)
            return cl_error_errno (err, "console input");
        }
      n = read (con->in_fd, con->staging + con->staging_len, con->staging_cap - con->staging_len);
      if (n < 0)
        return cl_error_errno (err, "read console input");
      if (n == 0)
        break;
      con->staging_len += n;
      if (con->staging_len >= FILE_INPUT_MAX)
        break;
    }
  con->in_eof = true;
  return 0;
}

int
cl_vmm_virtio_console_create (struct vm *vm, int in_fd, int out_fd, cl_error_t *err)
{
  struct virtio_console *con = cl_xmalloc0 (sizeof *con);
  struct stat st;

  con->in_fd = in_fd;
  con->out_fd = out_fd;
  con->grace_fd = -1;
  con->staging_cap = STAGING_SIZE;
  con->staging = cl_xmalloc0 (con->staging_cap);
  con->config.max_nr_ports = 1;
  if (in_fd < 0)
    con->in_eof = true;
  else if (fstat (in_fd, &st) == 0 && (S_ISREG (st.st_mode) || S_ISCHR (st.st_mode)))
    {
      /* Character devices other than ttys (/dev/null) do not poll either. */
      if (S_ISREG (st.st_mode) || !isatty (in_fd))
        {
          if (stage_whole_file (con, err) < 0)
            {
              console_free (con);
              return -1;
            }
        }
      else
        con->in_pollable = true;
    }
  else
    con->in_pollable = true;
  con->grace_fd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (con->grace_fd < 0)
    {
      cl_error_errno (err, "virtio-console: timerfd_create");
      console_free (con);
      return -1;
    }
  con->vdev.ops = &console_ops;
  con->vdev.config = (uint8_t *) &con->config;
  con->vdev.config_size = sizeof con->config;
  if (cl_vmm_virtio_device_init (&con->vdev, vm, err) < 0)
    return -1;
  return cl_vmm_vm_event_add (vm, con->grace_fd, EPOLLIN, on_grace_over, con, err);
}
