"""cloison-vmm boots Debian's cloud kernel in the VM lab (nested KVM that
behaves): 1 and 2 vCPUs, bzImage and the ELF vmlinux inside it, every virtio device a stock kernel drives from
modules in its initramfs (blk on ext4 across a reboot, net to the lab host
through a tap, console, rng), reboot/poweroff exits 0, a panic is reported,
and a workload snapshotted mid-way finishes after a restore in a new
process, its disk still working.  One lab boot, one nested boot per check.
"""
import os
import re
import subprocess

import pytest

from conftest import built

GUEST = r"""#!/bin/sh
mode=$(sed -n 's/.*cloison.mode=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
echo "mode: $mode"
case "$mode" in
basic)
  echo "guest: cpus=$(grep -c ^processor /proc/cpuinfo)"
  echo "guest: date=$(date -u +%Y-%m-%d)"
  echo "guest: rng=$(cat /sys/class/misc/hw_random/rng_current) $(head -c 16 /dev/hwrng | wc -c) bytes"
  ;;
disk1)
  mount -t ext4 /dev/vda /mnt && echo "token-$(cat /sys/block/vda/serial)" > /mnt/file && sync
  umount /mnt && echo "guest: wrote"
  ;;
disk2)
  mount -t ext4 -o ro /dev/vda /mnt && echo "guest: read $(cat /mnt/file)"
  ;;
net)
  ip link set eth0 up && ip addr add 10.77.0.2/24 dev eth0
  echo "guest: reply=$(echo hello-from-guest | nc -w 5 10.77.0.1 7777)"
  ;;
console)
  echo "hello on hvc0" > /dev/hvc0
  ;;
poweroff)
  poweroff -f
  ;;
panic)
  echo c > /proc/sysrq-trigger
  ;;
work)
  mount -t ext4 /dev/vda /mnt
  i=0; sum=0
  while [ $i -lt 25 ]; do i=$((i+1)); sum=$((sum+i)); echo "work $i"; sleep 0.2; done
  echo "after-restore" > /mnt/after && sync && echo "guest: disk $(cat /mnt/after)"
  echo "work done sum=$sum"
  ;;
esac
"""

PAYLOAD = r"""#!/bin/sh
. /lab/lib.sh
V="/lab/stamp -t 120 -- /lab/cloison-vmm --kernel /guest/vmlinuz --initrd /guest/initrd"
C="console=ttyS0 reboot=k panic=-1 i8042.noaux quiet"
check boot1 $V --rng --cmdline "$C cloison.mode=basic"
check boot2 $V --cpus 2 --cmdline "$C cloison.mode=basic"
check vmlinux /lab/stamp -t 120 -- /lab/cloison-vmm --kernel /guest/vmlinux --initrd /guest/initrd \
    --cpus 2 --cmdline "$C cloison.mode=basic"
check disk1 $V --disk /tmp/disk.img,serial=vmmcore --cmdline "$C cloison.mode=disk1"
check disk2 $V --disk /tmp/disk.img,ro,serial=vmmcore --cmdline "$C cloison.mode=disk2"
ip tuntap add vmmcore0 mode tap && ip addr add 10.77.0.1/24 dev vmmcore0 && ip link set vmmcore0 up
(echo pong-from-lab | nc -l -p 7777 > /tmp/got) &
check net $V --net tap=vmmcore0,mac=52:54:00:12:34:56 --cmdline "$C cloison.mode=net"
check net_host cat /tmp/got
check console $V --console virtio --cmdline "$C cloison.mode=console"
check poweroff $V --cmdline "$C cloison.mode=poweroff"
check panic $V --cmdline "$C cloison.mode=panic"
# snapshot mid-workload, restore in a new process
/lab/cloison-vmm --kernel /guest/vmlinuz --initrd /guest/initrd --disk /tmp/work.img \
    --api-socket /tmp/api.sock --cmdline "$C cloison.mode=work" > /tmp/work1.txt 2>&1 &
pid=$!
wait_for_line /tmp/work1.txt "work 5" 120
check snapshot sh -c "/lab/curl -s --unix-socket /tmp/api.sock -X PUT -d '{\"dir\":\"/tmp/snap\"}' http://vmm/snapshot/create; echo"
kill -TERM $pid; wait $pid; echo "first vmm exit $?"
check first_run cat /tmp/work1.txt
check restore /lab/stamp -t 120 -- /lab/cloison-vmm --restore /tmp/snap
"""


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    vmm = built("cloison-vmm")
    if vmm is None:
        pytest.fail("cloison-vmm is not built")
    d = tmp_path_factory.mktemp("vmmlab")
    initrd = str(d / "guest.cpio")
    lab.build_guest_initramfs(initrd, GUEST)
    files = lab.guest_files(initrd) + [(lab.tool("stamp"), "/lab/stamp"), (vmm, "/lab/cloison-vmm"),
                                       ("/usr/bin/curl", "/lab/curl"), ("/usr/sbin/ip", "/lab/ip")]
    vmlinux = str(d / "vmlinux")
    extract_vmlinux(lab.guest_kernel(), vmlinux)
    files.append((vmlinux, "/guest/vmlinux"))
    for name in ("disk.img", "work.img"):
        img = str(d / name)
        subprocess.run(["mkfs.ext4", "-q", "-F", img, "16M"], check=True)
        files.append((img, "/tmp/" + name))
    payload = PAYLOAD.replace("ip tuntap", "/lab/ip tuntap").replace("&& ip ", "&& /lab/ip ")
    return lab.run(payload, files=files, timeout=600, stream=print)


def extract_vmlinux(bzimage, out):
    """The ELF vmlinux inside Debian's bzImage (LZ4, legacy frame)."""
    data = open(bzimage, "rb").read()
    at = data.find(b"\x02\x21\x4c\x18")
    assert at > 0, "no LZ4 payload in %s" % bzimage
    elf = subprocess.run(["lz4", "-d", "-c"], input=data[at:], capture_output=True).stdout
    assert elf[:4] == b"\x7fELF"
    with open(out, "wb") as f:
        f.write(elf)


def stamp_exit(out):
    m = re.search(r"stamp: exit (\d+) after ([0-9.]+)", out)
    assert m, out
    return int(m.group(1)), float(m.group(2))


def test_boot_one_vcpu_to_init_and_reboot_exits_zero(run, lab):
    out = run.check("boot1").output
    assert lab.GUEST_FIRST_LINE in out
    assert "guest: cpus=1" in out
    assert "cloison-guest: exit 0" in out
    code, end = stamp_exit(out)
    assert code == 0
    # the monitor is gone within 1 s of the guest's reboot
    rebooted = float(re.search(r"\[\s*([0-9.]+)\] cloison-guest: exit 0", out).group(1))
    assert end - rebooted < 1.0, out


def test_boot_uncompressed_elf_vmlinux(run):
    out = run.check("vmlinux").output
    assert "guest: cpus=2" in out
    assert stamp_exit(out)[0] == 0


def test_guest_date_and_rng(run):
    out = run.check("boot1").output
    assert re.search(r"guest: date=20\d\d-\d\d-\d\d", out)
    assert "guest: rng=virtio_rng.0 16 bytes" in out


def test_boot_two_vcpus(run):
    out = run.check("boot2").output
    assert "guest: cpus=2" in out
    assert stamp_exit(out)[0] == 0


def test_disk_survives_reboot_read_only_and_serial(run):
    assert "guest: wrote" in run.check("disk1").output
    out = run.check("disk2").output
    assert "guest: read token-vmmcore" in out
    assert stamp_exit(out)[0] == 0


def test_net_tcp_to_lab_host_through_tap(run):
    assert "guest: reply=pong-from-lab" in run.check("net").output
    assert "hello-from-guest" in run.check("net_host").output


def test_virtio_console(run):
    out = run.check("console").output
    assert "hello on hvc0" in out
    assert stamp_exit(out)[0] == 0


def test_poweroff_exits_zero(run):
    out = run.check("poweroff").output
    assert "mode: poweroff" in out
    assert stamp_exit(out)[0] == 0


def test_panic_is_reported(run):
    out = run.check("panic").output
    code, _ = stamp_exit(out)
    assert code != 0
    assert "cloison-vmm: guest kernel panic" in out


def test_snapshot_restore_workload_finishes(run):
    assert '"dir":"/tmp/snap"' in run.check("snapshot").output
    first = run.check("first_run").output
    done = [int(n) for n in re.findall(r"^work (\d+)", first, re.M)]
    assert done and "work done" not in first
    out = run.check("restore").output
    resumed = [int(n) for n in re.findall(r"work (\d+)", out)]
    assert resumed and resumed[0] <= max(done) + 1
    assert "guest: disk after-restore" in out
    assert "work done sum=325" in out
    assert stamp_exit(out)[0] == 0
