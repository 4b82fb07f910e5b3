# SPDX-License-Identifier: Apache-2.0
"""QEMU as the inner VMM: proves the lab's nested KVM and the guest pieces
(kernel, guest initramfs) that cloison-vmm's lab tests use, and is the
baseline of bench/vmm-boot."""
import re

import pytest

GUEST = r"""#!/bin/sh
echo "guest: cpus=$(grep -c ^processor /proc/cpuinfo)"
echo "guest: virtio=$(ls /sys/bus/virtio/devices | wc -l)"
echo "guest: modules=$(cut -d' ' -f1 /proc/modules | sort | tr '\n' ,)"
"""

CMDLINE = "console=ttyS0 panic=-1 quiet"
QEMU = ("qemu-system-x86_64 -enable-kvm -cpu host -m 256 -kernel /guest/vmlinuz "
        "-initrd /guest/initrd -nographic -no-reboot -monitor none -nic none")

PAYLOAD = r"""#!/bin/sh
. /lab/lib.sh
check qemu_pc /lab/stamp -t 90 -- sh -c "%(qemu)s -append '%(cmdline)s' -M pc -vga none -smp 2 \
    -drive file=/tmp/disk.img,format=raw,if=virtio -device virtio-rng-pci"
# microvm has no i8042 and its firmware cannot take a reset: the guest
# reboots by triple fault, which -no-reboot turns into an exit.
check qemu_microvm /lab/stamp -t 90 -- sh -c "%(qemu)s -append '%(cmdline)s reboot=t' -M microvm"
""" % {"qemu": QEMU, "cmdline": CMDLINE}


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("qemu")
    initrd = str(d / "guest.cpio")
    lab.build_guest_initramfs(initrd, GUEST)
    disk = d / "disk.img"
    disk.write_bytes(b"\0" * (1 << 20))
    files = lab.qemu_files() + lab.guest_files(initrd) + [
        (lab.tool("stamp"), "/lab/stamp"), (str(disk), "/tmp/disk.img")]
    return lab.run(PAYLOAD, files=files, timeout=300, stream=print)


def test_qemu_pc_boots_nested_guest(run, lab):
    out = run.assert_check("qemu_pc").output
    assert lab.GUEST_FIRST_LINE in out
    assert "guest: cpus=2" in out
    assert re.search(r"guest: virtio=2\b", out), out  # the disk and the rng
    assert "virtio_blk" in out and "virtio_pci" in out
    assert "cloison-guest: exit 0" in out
    assert "stamp: exit 0 after" in out


def test_qemu_microvm_boots_nested_guest(run, lab):
    out = run.assert_check("qemu_microvm").output
    assert lab.GUEST_FIRST_LINE in out
    assert "stamp: exit 0 after" in out
