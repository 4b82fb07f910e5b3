# SPDX-License-Identifier: Apache-2.0
"""Stock Linux (Debian's cloud kernel, virtio drivers as modules) finds and
uses every cloison-vmm virtio device, under the lab's real nested KVM:
virtio-blk (serial, read-only, ext4 written then read back after a reboot,
discard), virtio-rng, virtio-net (TCP both ways through a tap on the lab
host), virtio-vsock (vhost-vsock, both ways), virtio-console (output and
input on hvc0).  One lab boot, two nested boots."""
import os
import subprocess

import pytest

# A static helper for both sides: sends or receives N bytes over TCP or
# vsock, with deadlines so that a broken device fails instead of hanging.
VTOOL_C = r"""
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int sock (int vsock) { return socket (vsock ? AF_VSOCK : AF_INET, SOCK_STREAM, 0); }

static socklen_t addr (int vsock, const char *host, int port, struct sockaddr_storage *ss)
{
  memset (ss, 0, sizeof *ss);
  if (vsock)
    {
      struct sockaddr_vm *a = (struct sockaddr_vm *) ss;
      a->svm_family = AF_VSOCK;
      a->svm_port = port;
      a->svm_cid = host ? strtoul (host, NULL, 10) : VMADDR_CID_ANY;
      return sizeof *a;
    }
  struct sockaddr_in *a = (struct sockaddr_in *) ss;
  a->sin_family = AF_INET;
  a->sin_port = htons (port);
  if (host)
    inet_pton (AF_INET, host, &a->sin_addr);
  return sizeof *a;
}

int main (int argc, char **argv)
{
  if (argc < 3)
    return 2;
  if (strcmp (argv[1], "tap") == 0) /* busybox ip has no tuntap */
    {
      struct ifreq ifr = { 0 };
      int fd = open ("/dev/net/tun", O_RDWR);
      strncpy (ifr.ifr_name, argv[2], IFNAMSIZ - 1);
      ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
      if (fd < 0 || ioctl (fd, TUNSETIFF, &ifr) < 0 || ioctl (fd, TUNSETPERSIST, 1) < 0)
        { perror ("tap"); return 1; }
      return 0;
    }
  int vsock = strstr (argv[1], "vsock") != NULL, send_mode = strstr (argv[1], "send") != NULL;
  struct sockaddr_storage ss;
  char buf[65536];
  alarm (100);
  if (send_mode)
    {
      long n = atol (argv[4]), sent = 0;
      socklen_t len = addr (vsock, argv[2], atoi (argv[3]), &ss);
      int fd;
      for (int tries = 0;; tries++)
        {
          fd = sock (vsock);
          if (connect (fd, (struct sockaddr *) &ss, len) == 0)
            break;
          close (fd);
          if (tries > 400)
            { perror ("connect"); return 1; }
          usleep (200000);
        }
      for (int i = 0; i < (int) sizeof buf; i++)
        buf[i] = 'a' + i % 26;
      while (sent < n)
        {
          long at = sent % sizeof buf, chunk = sizeof buf - at;
          if (chunk > n - sent)
            chunk = n - sent;
          ssize_t w = write (fd, buf + at, chunk);
          if (w <= 0) { perror ("write"); return 1; }
          sent += w;
        }
      shutdown (fd, SHUT_WR);
      ssize_t r = read (fd, buf, sizeof buf - 1);
      buf[r > 0 ? r : 0] = 0;
      printf ("sent %ld reply %s\n", sent, buf);
      return 0;
    }
  socklen_t len = addr (vsock, NULL, atoi (argv[2]), &ss);
  int one = 1, lfd = sock (vsock);
  setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (lfd, (struct sockaddr *) &ss, len) < 0 || listen (lfd, 1) < 0)
    { perror ("listen"); return 1; }
  int fd = accept (lfd, NULL, NULL);
  long got = 0, bad = 0;
  ssize_t r;
  while ((r = read (fd, buf, sizeof buf)) > 0)
    {
      for (ssize_t i = 0; i < r; i++)
        bad += buf[i] != 'a' + (got + i) % sizeof buf % 26;
      got += r;
    }
  char reply[64];
  snprintf (reply, sizeof reply, "got=%ld", got);
  write (fd, reply, strlen (reply));
  close (fd);
  printf ("received %ld bad %ld\n", got, bad);
  return bad != 0;
}
"""

GUEST = r"""#!/bin/sh
phase=$(sed -n 's/.*phase=\([a-z]*\).*/\1/p' /proc/cmdline)
if [ "$phase" = two ]; then
  exec > /dev/hvc0 2>&1
  echo "g: hello on hvc0"
  mount -t ext4 /dev/vda /mnt && echo "g: file=$(cat /mnt/hello.txt)"
  umount /mnt
  read line < /dev/hvc0
  echo "g: console got: $line"
  exit 0
fi
for d in /sys/bus/virtio/devices/*; do
  echo "g: device $(cat $d/device) driver=$(basename $(readlink $d/driver))"
done
echo "g: msix=$(grep -c PCI-MSI /proc/interrupts)"
echo "g: serial=$(cat /sys/block/vda/serial)"
echo "g: vdb ro=$(cat /sys/block/vdb/ro)"
dd if=/dev/zero of=/dev/vdb bs=512 count=1 conv=notrunc 2>/dev/null || echo "g: vdb write refused"
echo "g: vdb says $(head -c 11 /dev/vdb)"
mount -t ext4 -o discard /dev/vda /mnt && echo "persist me" > /mnt/hello.txt \
  && dd if=/dev/urandom of=/mnt/big bs=64k count=32 2>/dev/null && sync \
  && cmp /mnt/big /mnt/big && rm /mnt/big && sync && umount /mnt && echo "g: ext4 written"
echo "g: rng=$(cat /sys/class/misc/hw_random/rng_current)"
echo "g: rng bytes=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | wc -c)"
echo "g: mac=$(cat /sys/class/net/eth0/address)"
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0
echo "g: tcp $(/bin/vtool tcp-send 10.0.2.1 5000 4194304)"
echo "g: tcp $(/bin/vtool tcp-recv 6000)"
echo "g: vsock $(/bin/vtool vsock-send 2 1234 1048576)"
echo "g: vsock $(/bin/vtool vsock-recv 1235)"
"""

CMDLINE = "console=ttyS0 reboot=k panic=-1 pci=conf1 i8042.noaux quiet"
VMM = "/usr/bin/cloison-vmm --kernel /guest/vmlinuz --initrd /guest/initrd --memory 256M"

PAYLOAD = r"""#!/bin/sh
. /lab/lib.sh
dd if=/dev/zero of=/tmp/disk.img bs=1M count=32 2>/dev/null
/sbin/mke2fs -q -t ext4 -F /tmp/disk.img
printf 'read-only!!' > /tmp/ro.img; dd if=/dev/zero bs=1k count=63 >> /tmp/ro.img 2>/dev/null
/lab/vtool tap vtap0 && ip addr add 10.0.2.1/24 dev vtap0 && ip link set vtap0 up
/lab/vtool tcp-recv 5000 > /tmp/tcp-recv.out 2>&1 &
/lab/vtool tcp-send 10.0.2.15 6000 4194304 > /tmp/tcp-send.out 2>&1 &
/lab/vtool vsock-recv 1234 > /tmp/vsock-recv.out 2>&1 &
/lab/vtool vsock-send 5 1235 1048576 > /tmp/vsock-send.out 2>&1 &
check vmm_one /lab/stamp -t 120 -- %(vmm)s --cmdline "%(cmdline)s phase=one" \
  --disk /tmp/disk.img,serial=labdisk --disk /tmp/ro.img,ro \
  --net tap=vtap0,mac=52:54:00:12:34:56 --rng --vsock 5
wait
check tcp_host_recv cat /tmp/tcp-recv.out
check tcp_host_send cat /tmp/tcp-send.out
check vsock_host_recv cat /tmp/vsock-recv.out
check vsock_host_send cat /tmp/vsock-send.out
check ro_untouched sh -c 'head -c 11 /tmp/ro.img; echo'
printf 'typed on the host\n' > /tmp/console.in
check vmm_two /lab/stamp -t 120 -- sh -c '%(vmm)s --cmdline "%(cmdline)s phase=two" \
  --disk /tmp/disk.img --console virtio < /tmp/console.in'
""" % {"vmm": VMM, "cmdline": CMDLINE}


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    from conftest import ROOT  # tests/lab/conftest.py
    vmm = os.path.join(ROOT, "build", "src", "cli", "cloison-vmm")
    if not os.path.exists(vmm):
        pytest.fail("%s is not built" % vmm)
    d = tmp_path_factory.mktemp("virtio")
    src = d / "vtool.c"
    src.write_text(VTOOL_C)
    vtool = str(d / "vtool")
    subprocess.run(["cc", "-O2", "-static", "-o", vtool, str(src)], check=True)
    initrd = str(d / "guest.cpio")
    lab.build_guest_initramfs(initrd, GUEST, files=[(vtool, "/bin/vtool")])
    files = lab.guest_files(initrd) + [
        (vmm, "/usr/bin/cloison-vmm"), (vtool, "/lab/vtool"), ("/sbin/mke2fs", "/sbin/mke2fs"),
        (lab.tool("stamp"), "/lab/stamp")]
    return lab.run(PAYLOAD, files=files, timeout=400, stream=print)


def out(run, name):
    return run.assert_check(name).output


def test_linux_binds_every_virtio_driver(run):
    o = out(run, "vmm_one")
    for dev_id, driver in (("0x0002", "virtio_blk"), ("0x0001", "virtio_net"),
                           ("0x0004", "virtio_rng"), ("0x0013", "vmw_vsock_virtio_transport")):
        assert "g: device %s driver=%s" % (dev_id, driver) in o, o
    assert "g: msix=0" not in o
    assert "cloison-guest: exit 0" in o
    assert "stamp: exit 0 after" in o  # reboot=k -> the VMM exits 0


def test_virtio_blk_serial_read_only_and_ext4(run):
    o = out(run, "vmm_one")
    assert "g: serial=labdisk" in o
    assert "g: vdb ro=1" in o
    assert "g: vdb write refused" in o
    assert "g: vdb says read-only!!" in o
    assert "g: ext4 written" in o
    assert out(run, "ro_untouched").strip() == "read-only!!"


def test_virtio_blk_file_survives_reboot(run):
    assert "g: file=persist me" in out(run, "vmm_two")


def test_virtio_rng(run):
    o = out(run, "vmm_one")
    assert "g: rng=virtio_rng.0" in o
    assert "g: rng bytes=32" in o


def test_virtio_net_tcp_both_ways(run):
    o = out(run, "vmm_one")
    assert "g: mac=52:54:00:12:34:56" in o
    assert "g: tcp sent 4194304 reply got=4194304" in o
    assert "g: tcp received 4194304 bad 0" in o
    assert "received 4194304 bad 0" in out(run, "tcp_host_recv")
    assert "sent 4194304 reply got=4194304" in out(run, "tcp_host_send")


def test_virtio_vsock_both_ways(run):
    o = out(run, "vmm_one")
    assert "g: vsock sent 1048576 reply got=1048576" in o
    assert "g: vsock received 1048576 bad 0" in o
    assert "received 1048576 bad 0" in out(run, "vsock_host_recv")


def test_virtio_console_output_and_input(run):
    o = out(run, "vmm_two")
    assert "g: hello on hvc0" in o
    assert "g: console got: typed on the host" in o
    assert "stamp: exit 0 after" in o
