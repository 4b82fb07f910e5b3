/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-net against a real tap, in a network namespace of its own (the
   test unshares one: nothing it sends can leave it).  Frames use the local
   experimental EtherType 0x88b5, which no protocol stack answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_driver.h"
#include "fake_vm.h"
#include "vmm/virtio.h"

#define TAP "vtunit0"
#define ETHERTYPE_LOCAL 0x88b5
#define NET_F_MAC 5
#define NET_F_MRG_RXBUF 15
#define HDR 12

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

struct fixture
{
  struct vm *vm;
  struct drv d;
  int pkt; /* AF_PACKET socket on the tap: the host side of the wire */
};

static int
setup (void **state)
{
  struct fixture *f = calloc (1, sizeof *f);
  struct ifreq ifr = { 0 };
  struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons (ETH_P_ALL) };
  cl_error_t err = NULL;
  int fd, s;

  if (unshare (CLONE_NEWNET) < 0)
    {
      free (f);
      skip (); /* not root: no namespace, no tap */
    }
  /* No IPv6 autoconf chatter (MLD, router solicitations) on the wire. */
  fd = open ("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY);
  if (fd >= 0)
    {
      assert_int_equal (write (fd, "1", 1), 1);
      close (fd);
    }
  fd = open ("/dev/net/tun", O_RDWR);
  assert_true (fd >= 0);
  strcpy (ifr.ifr_name, TAP);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  assert_int_equal (ioctl (fd, TUNSETIFF, &ifr), 0);
  assert_int_equal (ioctl (fd, TUNSETPERSIST, 1), 0);
  close (fd);
  s = socket (AF_INET, SOCK_DGRAM, 0);
  ifr.ifr_flags = IFF_UP;
  assert_int_equal (ioctl (s, SIOCSIFFLAGS, &ifr), 0);
  close (s);

  f->vm = fake_vm_new ();
  assert_int_equal (cl_vmm_virtio_net_create (f->vm, TAP, mac, &err), 0);
  drv_init (&f->d, f->vm, 0, 2, (1u << NET_F_MAC) | (1u << NET_F_MRG_RXBUF));

  f->pkt = socket (AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons (ETH_P_ALL));
  assert_true (f->pkt >= 0);
  sll.sll_ifindex = if_nametoindex (TAP);
  assert_int_equal (bind (f->pkt, (struct sockaddr *) &sll, sizeof sll), 0);
  *state = f;
  return 0;
}

static int
teardown (void **state)
{
  struct fixture *f = *state;
  close (f->pkt);
  fake_vm_free (f->vm);
  free (f);
  return 0;
}

static size_t
make_frame (uint8_t *out, const uint8_t src[6], const char *payload)
{
  memset (out, 0xff, 6);
  memcpy (out + 6, src, 6);
  out[12] = ETHERTYPE_LOCAL >> 8;
  out[13] = ETHERTYPE_LOCAL & 0xff;
  strcpy ((char *) out + 14, payload);
  return 14 + strlen (payload) + 1 < 60 ? 60 : 14 + strlen (payload) + 1;
}

static void
test_mac_in_config (void **state)
{
  struct fixture *f = *state;
  for (int i = 0; i < 6; i++)
    assert_int_equal (rd (&f->d, f->d.device + i, 1), mac[i]);
  assert_int_equal (rd (&f->d, f->d.device + 6, 2), 1); /* link up */
}

/* The device's config bytes (the MAC) as read by a driver of vm. */
static void
read_mac (struct vm *vm, uint8_t out[6])
{
  struct drv d = { .vm = vm, .pci = vm->pci[0] };

  find_caps (&d);
  for (int i = 0; i < 6; i++)
    out[i] = (uint8_t)rd (&d, d.device + i, 1);
}

/* Restored on a NIC made with `with`: the MAC the guest then reads. */
static void
restore_on (json_t *saved, const uint8_t with[6], uint8_t out[6])
{
  struct vm *vm = fake_vm_new ();
  cl_error_t err = NULL;

  assert_int_equal (cl_vmm_virtio_net_create (vm, TAP, with, &err), 0);
  assert_int_equal (vm->persist_ops[0]->restore (vm->persist_opaque[0], saved, &err), 0);
  read_mac (vm, out);
  fake_vm_free (vm);
}

/* A snapshot's config bytes come back only where a driver had seen them:
   a template's NIC, which its guest had not probed, takes its clone's
   MAC (docs/templates.md); a driven one keeps the MAC its guest knows. */
static void
test_restore_keeps_the_config_of_an_undriven_device (void **state)
{
  struct fixture *f = *state;
  static const uint8_t other[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x77 };
  struct vm *vm;
  cl_error_t err = NULL;
  json_t *driven, *undriven;
  uint8_t got[6];

  driven = f->vm->persist_ops[0]->save (f->vm->persist_opaque[0]);
  fake_vm_free (f->vm); /* the tap takes one device at a time */
  vm = fake_vm_new ();
  assert_int_equal (cl_vmm_virtio_net_create (vm, TAP, mac, &err), 0);
  undriven = vm->persist_ops[0]->save (vm->persist_opaque[0]);
  fake_vm_free (vm);

  restore_on (driven, other, got);
  assert_memory_equal (got, mac, 6);
  restore_on (undriven, other, got);
  assert_memory_equal (got, other, 6);
  json_decref (driven);
  json_decref (undriven);
  f->vm = fake_vm_new (); /* for teardown */
}

static void
test_transmit_reaches_the_tap (void **state)
{
  struct fixture *f = *state;
  uint8_t *ram = f->vm->ram, got[2048];
  uint64_t addr[2] = { BUF, BUF + 0x100 };
  uint32_t lens[2] = { HDR, 0 };
  uint16_t flags[2] = { 0, 0 };
  ssize_t n = -1;

  memset (ram + BUF, 0, HDR);
  lens[1] = make_frame (ram + BUF + 0x100, mac, "hello from the guest");
  submit (&f->d, 1, 2, addr, lens, flags);
  assert_int_equal (used_idx (&f->d, 1), 1);
  for (int tries = 0; tries < 100 && n < 0; tries++)
    {
      n = recv (f->pkt, got, sizeof got, 0);
      if (n >= 14 && (got[12] << 8 | got[13]) != ETHERTYPE_LOCAL)
        n = -1; /* not ours (e.g. IPv6 autoconf) */
      if (n < 0)
        usleep (10000);
    }
  assert_true (n >= 14);
  assert_string_equal ((char *) got + 14, "hello from the guest");
}

static void
test_receive_from_the_tap (void **state)
{
  struct fixture *f = *state;
  uint8_t *ram = f->vm->ram, frame[128];
  const uint8_t host_mac[6] = { 0x02, 0, 0, 0, 0, 1 };
  uint64_t addr[1] = { BUF + 0x1000 };
  uint32_t lens[1] = { 1536 };
  uint16_t flags[1] = { VIRTQ_DESC_F_WRITE };
  size_t len = make_frame (frame, host_mac, "hello from the host");
  uint16_t num_buffers;

  /* The frame waits in the tap until the guest posts a buffer. */
  assert_int_equal (send (f->pkt, frame, len, 0), (ssize_t) len);
  usleep (20000);
  fake_vm_poll (f->vm);
  assert_int_equal (used_idx (&f->d, 0), 0);
  submit (&f->d, 0, 1, addr, lens, flags);
  fake_vm_poll (f->vm);
  assert_int_equal (used_idx (&f->d, 0), 1);
  assert_int_equal (used_len (&f->d, 0), HDR + len);
  memcpy (&num_buffers, ram + BUF + 0x1000 + 10, 2);
  assert_int_equal (num_buffers, 1);
  assert_string_equal ((char *) ram + BUF + 0x1000 + HDR + 14, "hello from the host");
  assert_true (interrupts (&f->d, 1) >= 1);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_mac_in_config, setup, teardown),
    cmocka_unit_test_setup_teardown (test_restore_keeps_the_config_of_an_undriven_device, setup,
                                     teardown),
    cmocka_unit_test_setup_teardown (test_transmit_reaches_the_tap, setup, teardown),
    cmocka_unit_test_setup_teardown (test_receive_from_the_tap, setup, teardown),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
