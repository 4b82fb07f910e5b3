# SPDX-License-Identifier: Apache-2.0
"""virtio over PCI on the host's /dev/kvm, with a tiny freestanding guest
(tests/guests/virtio_blk.c) as the driver: PCI enumeration, modern
virtio-PCI bring-up, MSI-X completions, sector read/write/flush, and the
device's state across snapshot + restore into a new process.  Bad device
flags fail with one line naming the culprit."""
import os
import subprocess

import pytest

from conftest import BUILD, binary
from test_vmm_guests import Running, api, wait_for

GUEST = os.path.join(BUILD, "tests", "guests", "virtio_blk.elf")
SECTOR0 = b"hello from the host disk, sector zero!!!"
WRITTEN = b"cloison virtio-blk guest wrote this sector"


def run_vmm(*args, timeout=60):
    return subprocess.run([binary("cloison-vmm"), "--memory", "64M", *args],
                          capture_output=True, timeout=timeout)


@pytest.fixture
def disk(tmp_path):
    p = tmp_path / "disk.img"
    p.write_bytes(SECTOR0.ljust(512, b"\0") + b"\xa5" * 512 * 63)
    return p


def need_kvm():
    if not os.path.exists("/dev/kvm"):
        pytest.skip("no /dev/kvm on this machine")


def test_guest_reads_writes_flushes_with_msix(disk):
    need_kvm()
    r = run_vmm("--kernel", GUEST, "--disk", "%s,serial=vtest" % disk)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out + r.stderr.decode(errors="replace")
    assert "virtio-blk: driver ok" in out
    assert "sector 0 says: " + SECTOR0.decode() in out
    assert "write + read back ok" in out
    assert "out-of-range read refused" in out
    # one MSI-X interrupt per request, five requests
    assert "msi-x interrupts 5" in out
    data = disk.read_bytes()
    assert data[512:512 + len(WRITTEN)] == WRITTEN
    assert data[512 + len(WRITTEN):1024] == b"\0" * (512 - len(WRITTEN))
    assert data[1024:] == b"\xa5" * 512 * 62  # nothing else touched
    assert len(data) == 64 * 512


def test_read_only_disk_refuses_writes(disk):
    need_kvm()
    before = disk.read_bytes()
    r = run_vmm("--kernel", GUEST, "--disk", "%s,ro" % disk)
    out = r.stdout.decode(errors="replace")
    assert "sector 0 says: " + SECTOR0.decode() in out
    assert "virtio-blk: write failed" in out
    assert r.returncode != 0  # the guest gives up by triple-faulting
    assert disk.read_bytes() == before


@pytest.mark.parametrize("flag,value,culprit", [
    ("--disk", "/nonexistent/cloison-virtio.img", "/nonexistent/cloison-virtio.img"),
    ("--net", "tap=cloisonvtnone0", "cloisonvtnone0"),
])
def test_bad_device_flags_name_the_culprit(flag, value, culprit):
    need_kvm()
    r = run_vmm("--kernel", GUEST, flag, value, timeout=20)
    err = r.stderr.decode(errors="replace").strip()
    assert r.returncode != 0
    assert culprit in err
    assert len(err.splitlines()) == 1, err


def test_vsock_needs_vhost_vsock():
    need_kvm()
    r = run_vmm("--kernel", GUEST, "--vsock", "7", timeout=20)
    err = r.stderr.decode(errors="replace").strip()
    if os.path.exists("/dev/vhost-vsock"):
        # with vhost the device is built; the guest does not use it
        assert r.returncode == 0, err
    else:
        assert r.returncode != 0
        assert "/dev/vhost-vsock" in err
        assert len(err.splitlines()) == 1, err


def test_device_resumes_after_snapshot_restore(disk, tmp_path):
    """Snapshot between two writes; the restored process finishes the
    workload: queue indices, MSI-X routing and the disk all carry over."""
    need_kvm()
    sock = str(tmp_path / "api.sock")
    snap = str(tmp_path / "snap")
    late = b"written after the wait"
    r = Running(tmp_path, "--kernel", GUEST, "--memory", "64M", "--disk", str(disk),
                "--cmdline", "virtio-wait", "--api-socket", sock)
    try:
        wait_for(lambda: "virtio-blk: tick 3\n" in r.text())
        assert api(sock, "PUT", "/vm/state", {"state": "paused"})[0] == 204
        status, body = api(sock, "PUT", "/snapshot/create", {"dir": snap})
        assert status == 200, body
        assert api(sock, "PUT", "/vm/state", {"state": "stopped"})[0] == 204
        r.wait()
    finally:
        r.kill()
    first = r.text()
    assert "sector 2 written" not in first
    assert disk.read_bytes()[1024:1024 + len(late)] != late

    r2 = subprocess.run([binary("cloison-vmm"), "--restore", snap], capture_output=True,
                        timeout=60)
    out = r2.stdout.decode(errors="replace")
    assert r2.returncode == 0, out + r2.stderr.decode(errors="replace")
    assert "virtio-blk: tick 20" in out
    assert "write + read back ok" in out
    assert "sector 2 written after the wait" in out
    assert "msi-x interrupts 6" in out  # counted across both processes
    data = disk.read_bytes()
    assert data[512:512 + len(WRITTEN)] == WRITTEN
    assert data[1024:1024 + len(late)] == late
