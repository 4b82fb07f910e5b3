# SPDX-License-Identifier: Apache-2.0
"""Any image as a VM: cloison image vm-disk builds an ext4 root disk from
an image's merged layers (mkfs.ext4 -d), and the built-in Debian cloud
kernel + our initramfs boot it (QEMU TCG, as in the VM lab)."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import BUILD
from test_image_helpers import cloison, umoci_two_layers

IMAGE_BUILD = os.path.join(BUILD, "src", "image")


def debugfs(disk, request):
    return subprocess.run(["debugfs", "-R", request, disk], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, check=True)


@pytest.fixture(scope="module")
def vm_pieces():
    """The built-in kernel and initramfs (`ninja vm-image`: fetches the
    Debian kernel package once, then cached)."""
    p = subprocess.run(["ninja", "-C", BUILD, "vm-image"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=600)
    assert p.returncode == 0, p.stdout
    return os.path.join(IMAGE_BUILD, "vmlinuz"), os.path.join(IMAGE_BUILD, "initramfs.cpio.gz")


@pytest.fixture
def vm_image(tmp_path, busybox_rootfs):
    """A two-layer image: busybox, then a layer that removes /bin/ls and
    adds an /sbin/init that reports and powers off."""
    root = tmp_path / "root"
    init = tmp_path / "init"
    init.write_text("#!/bin/sh\nmount -t proc proc /proc\n"
                    "echo CLOISON-VM-BOOTED $(cat /etc/hostname)\n"
                    "grep -q ' / ext4 ' /proc/mounts && echo ROOT-IS-EXT4\n"
                    "[ -e /bin/ls ] || echo LS-WHITED-OUT\npoweroff -f\n")
    init.chmod(0o755)

    def top(rootfs):
        os.unlink(rootfs + "/bin/ls")
        os.makedirs(rootfs + "/sbin", exist_ok=True)
        shutil.copy(str(init), rootfs + "/sbin/init")

    lay = umoci_two_layers(tmp_path, busybox_rootfs, top)
    cloison(root, "import", lay, "vmtest:1")
    assert len(json.loads(cloison(root, "inspect", "vmtest:1").stdout)["Layers"]) == 2
    return root


def test_vm_disk_holds_the_merged_rootfs(tmp_path, vm_image):
    disk = str(tmp_path / "disk.img")
    p = cloison(vm_image, "vm-disk", "vmtest:1", disk)
    assert p.stdout.strip() == disk
    assert os.stat(disk).st_size >= 64 << 20
    assert "init" in debugfs(disk, "ls /sbin").stdout
    assert "File not found" in debugfs(disk, "stat /bin/ls").stderr
    assert "busybox" in debugfs(disk, "ls /bin").stdout
    # The overlay was mounted in a private namespace: nothing stays mounted.
    assert str(vm_image) not in open("/proc/mounts").read()
    assert os.listdir(os.path.join(str(vm_image), "images", "tmp")) == []


def test_vm_disk_bad_input(tmp_path, vm_image):
    disk = tmp_path / "exists.img"
    disk.write_text("keep")
    p = cloison(vm_image, "vm-disk", "vmtest:1", str(disk), check=False)
    assert p.returncode == 1 and "exists.img" in p.stderr and "File exists" in p.stderr
    assert disk.read_text() == "keep"
    small = str(tmp_path / "small.img")
    p = cloison(vm_image, "vm-disk", "vmtest:1", small, "--size", "1M", check=False)
    assert p.returncode == 1 and "small.img" in p.stderr, p.stderr
    assert sorted(os.listdir(str(tmp_path))) == sorted(
        f for f in os.listdir(str(tmp_path)) if "small" not in f)
    p = cloison(vm_image, "vm-disk", "nope:1", str(tmp_path / "n.img"), check=False)
    assert p.returncode == 1 and "image `nope:1` not found" in p.stderr
    p = cloison(vm_image, "vm-disk", "vmtest:1", str(tmp_path / "x.img"), "--size", "12X",
                check=False)
    assert p.returncode == 1 and "12X" in p.stderr


def test_container_image_boots_as_vm(tmp_path, vm_image, vm_pieces):
    kernel, initramfs = vm_pieces
    disk = str(tmp_path / "boot.img")
    cloison(vm_image, "vm-disk", "vmtest:1", disk)
    p = subprocess.run(["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "512",
                        "-kernel", kernel, "-initrd", initramfs,
                        "-drive", "file=%s,if=virtio,format=raw" % disk,
                        "-append", "console=ttyS0 panic=-1 quiet",
                        "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180,
                       stdin=subprocess.DEVNULL)
    out = p.stdout.decode(errors="replace")
    assert "CLOISON-VM-BOOTED cloison" in out, out[-3000:]
    assert "ROOT-IS-EXT4" in out and "LS-WHITED-OUT" in out, out[-3000:]
