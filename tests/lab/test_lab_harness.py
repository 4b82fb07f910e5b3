# SPDX-License-Identifier: Apache-2.0
"""The lab harness itself: the lab host has what lab tests rely on."""
import os

import pytest

PAYLOAD = r"""#!/bin/sh
. /lab/lib.sh
check kvm sh -c 'test -c /dev/kvm && grep -q "^kvm_amd " /proc/modules'
check root_tmpfs sh -c 'grep -q "^labroot / tmpfs" /proc/mounts'
check pivot_root unshare -m sh -c '
    mkdir -p /tmp/pr && mount -t tmpfs pr /tmp/pr && mkdir /tmp/pr/old &&
    cp /usr/bin/busybox /tmp/pr/ && cd /tmp/pr && pivot_root . old && /busybox test -d /old/lab'
check cgroup2 sh -c 'grep -q "^cgroup2 /sys/fs/cgroup cgroup2" /proc/mounts &&
    cat /sys/fs/cgroup/cgroup.subtree_control'
check tun test -c /dev/net/tun
check host_binary sh -c '/usr/bin/qemu-system-x86_64 --version | head -1'
check file_dest cat /srv/hello.txt
check lib sh -c 'test -f /lab/lib.sh'
echo "payload: stdout works"
exit 7
"""


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    hello = tmp_path_factory.mktemp("harness") / "hello.txt"
    hello.write_text("hello from the host\n")
    return lab.run(PAYLOAD, files=[("/usr/bin/qemu-system-x86_64", None), (str(hello), "/srv/hello.txt")],
                   timeout=180, stream=print)


def test_payload_status_and_output(run):
    assert run.status == 7, run.console
    assert "payload: stdout works" in run.output
    assert not os.path.exists(run.tmpdir)


def test_nested_kvm(run):
    run.assert_check("kvm")


def test_root_is_tmpfs_and_pivot_root_works(run):
    run.assert_check("root_tmpfs")
    run.assert_check("pivot_root")


def test_cgroup2_controllers_enabled(run):
    out = run.assert_check("cgroup2").output.split()
    for c in ("cpu", "memory", "pids", "io", "cpuset"):
        assert c in out


def test_tun(run):
    run.assert_check("tun")


def test_host_files_with_libraries(run):
    assert "QEMU emulator version" in run.assert_check("host_binary").output
    assert run.assert_check("file_dest").output.strip() == "hello from the host"


def test_timeout_kills_qemu(lab):
    # The deadline counts the boot too, which takes longer when the machine
    # is loaded (the suite runs the lab beside the other tests): a deadline
    # met before the payload printed is a timeout all the same, so each try
    # checks the kill and the clean-up, and the next try waits longer.
    for timeout in (15, 45, 120):
        res = lab.run("#!/bin/sh\necho sleeping\nsleep 600\n", timeout=timeout)
        assert res.timed_out and res.status is None
        assert not os.path.exists("/proc/%d" % res.pid)  # killed and reaped
        assert not os.path.exists(res.tmpdir)
        if "sleeping" in res.output:
            break
    assert "sleeping" in res.output


def test_modules_in_dependency_order(lab):
    names = [os.path.basename(p) for p in lab.resolve_modules(["virtio_blk", "kvm_amd"])]
    for dep, mod in (("virtio.ko", "virtio_blk.ko"), ("virtio_ring.ko", "virtio_blk.ko"),
                     ("irqbypass.ko", "kvm.ko"), ("kvm.ko", "kvm-amd.ko")):
        assert names.index(dep) < names.index(mod), names
    with pytest.raises(lab.LabError, match="no module"):
        lab.resolve_modules(["no_such_module_here"])


def test_guest_initramfs_contents(lab, tmp_path):
    import subprocess
    out = tmp_path / "g.cpio"
    lab.build_guest_initramfs(str(out), "echo hi\n")
    listing = subprocess.run(["cpio", "-it", "--quiet"], stdin=open(out, "rb"),
                             capture_output=True, text=True, check=True).stdout.split()
    for p in ("init", "guest-script", "bin/busybox", "bin/sh", "dev/console", "modules.order"):
        assert p in listing, p
    assert any(p.endswith("/virtio_pci.ko") for p in listing)
    assert any(p.endswith("/vmw_vsock_virtio_transport.ko") for p in listing)
