/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-net (virtio 1.2, 5.1) on a tap interface.  The tap carries the
   same 12-byte virtio_net_hdr as the guest (IFF_VNET_HDR), so checksum and
   TSO offloads pass through untouched.  Receive runs in the I/O thread
   when the tap is readable (edge-triggered: drained until EAGAIN or until
   the guest has no buffer, then resumed by the guest's next rx kick);
   transmit runs on the guest's tx kick. */
#include "vmm/virtio.h"
#include "vmm/virtio_pci.h"

#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/vmm_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#define RXQ 0
#define TXQ 1
#define QUEUE_SIZE 256

#define NET_F_CSUM 0
#define NET_F_GUEST_CSUM 1
#define NET_F_MAC 5
#define NET_F_GUEST_TSO4 7
#define NET_F_GUEST_TSO6 8
#define NET_F_HOST_TSO4 11
#define NET_F_HOST_TSO6 12
#define NET_F_MRG_RXBUF 15
#define NET_F_STATUS 16
#define NET_S_LINK_UP 1

#define NET_HDR_LEN 12 /* struct virtio_net_hdr_v1, num_buffers included */
#define NUM_BUFFERS_OFF 10
/* A 64 KiB GSO frame plus its Ethernet and virtio headers. */
#define RX_FRAME_MAX (65536 + 14 + 4 + NET_HDR_LEN)
/* Mergeable buffers used by one frame: Linux posts at least 1.5 KiB each. */
#define RX_MAX_CHAINS 64

struct net_config
{
  uint8_t mac[6];
  uint16_t status;
  uint16_t max_virtqueue_pairs;
} __attribute__ ((packed));

struct virtio_net
{
  struct virtio_device vdev;
  struct net_config config;
  int tap_fd;
  char tap_name[IFNAMSIZ];
  uint8_t rx_frame[RX_FRAME_MAX]; /* read from the tap, not yet delivered */
  size_t rx_len;
  uint16_t rx_heads[RX_MAX_CHAINS];
  uint32_t rx_lens[RX_MAX_CHAINS];
  struct virtq_chain first, chain;
};

/* Copies the waiting frame into as many rx chains as it needs (one unless
   MRG_RXBUF).  False when the guest has not posted enough room yet (the
   frame keeps waiting); a frame that can never fit is dropped. */
static bool
deliver_frame (struct virtio_net *net)
{
  struct virtio_device *dev = &net->vdev;
  struct virtq *vq = &dev->queues[RXQ].vq;
  bool mergeable = virtio_has_feature (dev, NET_F_MRG_RXBUF);
  size_t done = 0;
  uint16_t n = 0;
  const char *why;

  while (done < net->rx_len)
    {
      struct virtq_chain *c = n == 0 ? &net->first : &net->chain;
      int r;

      if (n == RX_MAX_CHAINS)
        goto drop;
      r = cl_vmm_virtq_pop (vq, c, &why);
      if (r < 0)
        {
          cl_vmm_virtio_device_fail (dev, RXQ, why);
          return false;
        }
      if (r == 0)
        {
          cl_vmm_virtq_unpop (vq, n);
          return false;
        }
      n++;
      if (n == 1 && (c->in_len < NET_HDR_LEN || (!mergeable && c->in_len < net->rx_len)))
        goto drop;
      net->rx_heads[n - 1] = c->head;
      net->rx_lens[n - 1]
          = cl_vmm_virtq_chain_write (c, 0, net->rx_frame + done, net->rx_len - done);
      done += net->rx_lens[n - 1];
    }
  cl_vmm_virtq_chain_write (&net->first, NUM_BUFFERS_OFF, &n, sizeof n);
  for (uint16_t i = 0; i < n; i++)
    cl_vmm_virtq_push (vq, net->rx_heads[i], net->rx_lens[i]);
  cl_vmm_vm_metric_add (dev->vm, dev->name, "rx_packets", 1);
  cl_vmm_vm_metric_add (dev->vm, dev->name, "rx_bytes", net->rx_len - NET_HDR_LEN);
  net->rx_len = 0;
  return true;

drop:
  cl_vmm_virtq_unpop (vq, n);
  cl_vmm_vm_metric_add (dev->vm, dev->name, "rx_dropped", 1);
  net->rx_len = 0;
  return true;
}

static void
receive (struct virtio_net *net)
{
  struct virtio_device *dev = &net->vdev;

  if (!virtio_device_running (dev) || !dev->queues[RXQ].vq.ready)
    return;
  for (;;)
    {
      if (net->rx_len == 0)
        {
          ssize_t r = read (net->tap_fd, net->rx_frame, sizeof net->rx_frame);
          if (r <= 0)
            break; /* EAGAIN: drained; the next edge wakes us */
          if (r <= NET_HDR_LEN)
            continue;
          net->rx_len = r;
        }
      if (!deliver_frame (net))
        {
          /* No room: ask for a kick when the guest posts buffers. */
          if (virtio_device_running (dev) && cl_vmm_virtq_enable_notify (&dev->queues[RXQ].vq))
            continue;
          break;
        }
    }
  cl_vmm_virtio_queue_flush (dev, RXQ);
}

static void
on_tap_readable (void *opaque, uint32_t events)
{
  struct virtio_net *net = opaque;

  (void) events;
  pthread_mutex_lock (&net->vdev.lock);
  receive (net);
  pthread_mutex_unlock (&net->vdev.lock);
}

static int64_t
transmit (struct virtio_device *dev, unsigned q, const struct virtq_chain *c)
{
  struct virtio_net *net = (struct virtio_net *) dev;

  (void) q;
  if (c->out_len < NET_HDR_LEN || writev (net->tap_fd, c->iov, c->nout) < 0)
    cl_vmm_vm_metric_add (dev->vm, dev->name, "tx_dropped", 1);
  else
    {
      cl_vmm_vm_metric_add (dev->vm, dev->name, "tx_packets", 1);
      cl_vmm_vm_metric_add (dev->vm, dev->name, "tx_bytes", c->out_len - NET_HDR_LEN);
    }
  return 0;
}

static void
net_notify (struct virtio_device *dev, unsigned q)
{
  struct virtio_net *net = (struct virtio_net *) dev;

  if (q == TXQ)
    cl_vmm_virtio_queue_serve (dev, q, &net->chain, transmit);
  else
    receive (net);
}

static int
net_activate (struct virtio_device *dev, cl_error_t *err)
{
  struct virtio_net *net = (struct virtio_net *) dev;
  unsigned offload = 0;

  /* Offloads the guest accepts on receive are what the tap may send. */
  if (virtio_has_feature (dev, NET_F_GUEST_CSUM))
    {
      offload |= TUN_F_CSUM;
      if (virtio_has_feature (dev, NET_F_GUEST_TSO4))
        offload |= TUN_F_TSO4;
      if (virtio_has_feature (dev, NET_F_GUEST_TSO6))
        offload |= TUN_F_TSO6;
    }
  if (ioctl (net->tap_fd, TUNSETOFFLOAD, offload) < 0)
    return cl_error_errno (err, "tap `%s`: TUNSETOFFLOAD", net->tap_name);
  receive (net);
  return 0;
}

/* After a restore (a migration's destination, or a snapshot resumed):
   the guest has no control queue for VIRTIO_NET_F_GUEST_ANNOUNCE, so the
   VMM announces its MAC itself, as QEMU does: broadcast RARP frames,
   from which the switches and bridges learn where the guest now is. */
static void
announce (struct virtio_net *net)
{
  uint8_t frame[NET_HDR_LEN + 60] = { 0 };
  uint8_t *eth = frame + NET_HDR_LEN;
  static const uint8_t rarp[] = { 0x80, 0x35, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x03 };

  memset (eth, 0xff, 6);
  memcpy (eth + 6, net->config.mac, 6);
  memcpy (eth + 12, rarp, sizeof rarp);
  memcpy (eth + 22, net->config.mac, 6); /* sender hardware address */
  memcpy (eth + 32, net->config.mac, 6); /* target hardware address */
  for (int i = 0; i < 3; i++)
    if (write (net->tap_fd, frame, sizeof frame) == (ssize_t)sizeof frame)
      cl_vmm_vm_metric_add (net->vdev.vm, net->vdev.name, "announces", 1);
}

/* Nothing of its own to keep (the tap is the host's): an empty object, so
   that restore runs and announces. */
static json_t *
net_save (struct virtio_device *dev)
{
  (void)dev;
  return json_object ();
}

static int
net_restore (struct virtio_device *dev, json_t *state, cl_error_t *err)
{
  (void)state;
  (void)err;
  announce ((struct virtio_net *)dev);
  return 0;
}

static void
net_release (struct virtio_device *dev)
{
  struct virtio_net *net = (struct virtio_net *)dev;

  close (net->tap_fd);
  free (net);
}

static const struct virtio_device_ops net_ops = {
  .kind = "net",
  .device_id = VIRTIO_ID_NET,
  .class_code = 0x020000,
  .num_queues = 2,
  .queue_max_size = QUEUE_SIZE,
  .features = (1ull << NET_F_CSUM) | (1ull << NET_F_GUEST_CSUM) | (1ull << NET_F_MAC)
              | (1ull << NET_F_GUEST_TSO4) | (1ull << NET_F_GUEST_TSO6) | (1ull << NET_F_HOST_TSO4)
              | (1ull << NET_F_HOST_TSO6) | (1ull << NET_F_MRG_RXBUF) | (1ull << NET_F_STATUS),
  .activate = net_activate,
  .queue_notify = net_notify,
  .save = net_save,
  .restore = net_restore,
  .release = net_release,
};

int
cl_vmm_virtio_net_parse_mac (const char *text, uint8_t mac[6], cl_error_t *err)
{
  int end = -1;

  if (sscanf (text, "%2hhx:%2hhx:%2hhx:%2hhx:%2hhx:%2hhx%n", &mac[0], &mac[1], &mac[2], &mac[3],
              &mac[4], &mac[5], &end)
          != 6
      || end != 17 || text[end] != '\0')
    return cl_error_make (err, 0, "mac `%s`: expected six hex bytes like 52:54:00:12:34:56", text);
  if (mac[0] & 1)
    return cl_error_make (err, 0, "mac `%s`: a multicast address", text);
  return 0;
}

static int
open_tap (const char *name, cl_error_t *err)
{
  cleanup_close int fd = -1;
  struct ifreq ifr = { 0 };
  int hdr_len = NET_HDR_LEN;

  if (strlen (name) >= IFNAMSIZ)
    return cl_error_make (err, 0, "tap `%s`: name longer than %d bytes", name, IFNAMSIZ - 1);
  /* TUNSETIFF would create a missing tap: refuse instead, the caller made
     a typo or forgot `ip tuntap add`. */
  if (if_nametoindex (name) == 0)
    return cl_error_make (err, 0, "tap `%s`: no such network interface", name);
  fd = open ("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return cl_error_errno (err, "open `/dev/net/tun`");
  strcpy (ifr.ifr_name, name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl (fd, TUNSETIFF, &ifr) < 0)
    return cl_error_errno (err, "tap `%s`: TUNSETIFF (not a tap, or in use)", name);
  if (ioctl (fd, TUNSETVNETHDRSZ, &hdr_len) < 0)
    return cl_error_errno (err, "tap `%s`: TUNSETVNETHDRSZ", name);
  if (ioctl (fd, TUNSETOFFLOAD, 0) < 0)
    return cl_error_errno (err, "tap `%s`: TUNSETOFFLOAD", name);
  return steal_fd (&fd);
}

int
cl_vmm_virtio_net_create (struct vm *vm, const char *tap_name, const uint8_t mac[6],
                          cl_error_t *err)
{
  struct virtio_net *net;
  uint8_t addr[6];
  int fd;

  if (mac)
    memcpy (addr, mac, 6);
  else
    {
      if (getrandom (addr, 6, 0) != 6)
        return cl_error_errno (err, "tap `%s`: random mac", tap_name);
      addr[0] = (addr[0] & 0xfe) | 0x02; /* local, unicast */
    }
  fd = open_tap (tap_name, err);
  if (fd < 0)
    return -1;
  net = cl_xmalloc0 (sizeof *net);
  net->tap_fd = fd;
  snprintf (net->tap_name, sizeof net->tap_name, "%s", tap_name);
  memcpy (net->config.mac, addr, 6);
  net->config.status = NET_S_LINK_UP;
  net->config.max_virtqueue_pairs = 1;
  net->vdev.ops = &net_ops;
  net->vdev.config = (uint8_t *) &net->config;
  net->vdev.config_size = sizeof net->config;
  if (cl_vmm_virtio_device_init (&net->vdev, vm, err) < 0)
    return cl_error_wrap (err, "tap `%s`", tap_name);
  if (cl_vmm_vm_event_add (vm, fd, EPOLLIN | EPOLLET, on_tap_readable, net, err) < 0)
    return cl_error_wrap (err, "tap `%s`", tap_name);
  return 0;
}
