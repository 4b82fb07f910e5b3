# SPDX-License-Identifier: Apache-2.0
"""The `cloison` CLI in the VM lab (issue 4): a stock Debian kernel booted
as a VM instance from the busybox image's disk under the lab's nested KVM,
and container instances on a pure cgroup2 host.  One lab boot; each test
asserts on one check of it."""
import pytest

from lab_cli import PROLOGUE, cli_files
CMDLINE = "console=ttyS0 reboot=k panic=-1 pci=conf1 i8042.noaux quiet"

# The guest mounts its disk (the instance's copy of the image's ext4
# disk), shows that it holds the busybox image, counts its boots in a file
# of the disk, and stops.
GUEST = r"""#!/bin/sh
i=0; while [ ! -e /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 /dev/vda /mnt || { echo "guest: no disk"; exit 1; }
test -x /mnt/bin/busybox && echo "guest: rootfs has busybox"
echo "guest: disk blocks=$(df -k /mnt | tail -1 | awk '{print $2}')"
echo boot >> /mnt/root/boots; echo "guest: boots=$(wc -l < /mnt/root/boots)"
sync; umount /mnt
"""

PAYLOAD = PROLOGUE + r"""printf '#!/bin/sh\ni=0; while [ $i -lt 600 ]; do /lab/cloison list | grep -q "^$1 .* stopped" && exit 0; sleep 0.1; i=$((i+1)); done; exit 1\n' > /lab/wait_stopped
chmod +x /lab/wait_stopped
check vm_launch sh -c "$C launch busybox vm1 --vm --no-network --memory 256M --disk-size 300M \
    --kernel /guest/vmlinuz --initrd /guest/initrd --cmdline '%(cmdline)s' && $C list"
check vm_ran sh -c "/lab/wait_stopped vm1; $C list; cat /tmp/cl/instances/vm1/console.log"
check vm_snapshot sh -c "$C snapshot create vm1 s0 && $C start vm1 && /lab/wait_stopped vm1 &&
    $C snapshot restore vm1 s0 && $C start vm1 && /lab/wait_stopped vm1 && $C snapshot list vm1 &&
    grep 'guest: boots=' /tmp/cl/instances/vm1/console.log"
check vm_delete sh -c "$C delete vm1 && $C list && ls /tmp/cl/instances"
check vm_image sh -c "$C launch busybox vm2 --vm --no-network --memory 256M --disk-size 300M -- \
    sh -c 'echo hello from the image as a VM; cat /etc/hostname; echo written-before-exit > /data; exit 3' &&
    /lab/wait_stopped vm2 && $C list && cat /tmp/cl/instances/vm2/console.log &&
    debugfs -R 'cat /data' /tmp/cl/instances/vm2/disk.img && $C delete vm2"
check vm_stop sh -c "$C launch busybox vm3 --vm --no-network --memory 128M -- \
    sh -c 'echo written-before-stop > /state; echo waiting; exec sleep 100000' &&
    i=0; while ! grep -q '^waiting' /tmp/cl/instances/vm3/console.log && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done;
    s=\$(date +%%s); $C stop vm3 && echo stop-took=\$((\$(date +%%s) - s)) && $C list &&
    cat /tmp/cl/instances/vm3/console.log && debugfs -R 'cat /state' /tmp/cl/instances/vm3/disk.img &&
    $C delete vm3"
check vm_run_code sh -c "$C run --vm --no-network --memory 128M busybox -- sh -c 'echo in-run; exit 5' </dev/null;
    echo rc=\$?; $C list"
check ct_launch sh -c "$C launch busybox c1 --no-network --memory 64M -- sleep 100000 &&
    $C exec c1 -- cat /proc/self/cgroup && $C list"
check ct_limits sh -c "$C config set c1 limits.memory=96M limits.cpu=1 &&
    cat /sys/fs/cgroup/cloison/cl-*-c1/memory.max /sys/fs/cgroup/cloison/cl-*-c1/cpu.max"
check ct_delete sh -c "$C delete --force c1; $C list; ls -d /sys/fs/cgroup/cloison/cl-* 2>&1; true"
""" % {"cmdline": CMDLINE}


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    initrd = str(tmp_path_factory.mktemp("cli") / "guest.cpio")
    lab.build_guest_initramfs(initrd, GUEST)
    files = lab.guest_files(initrd) + cli_files() + [("/sbin/debugfs", "/usr/sbin/debugfs")]
    return lab.run(PAYLOAD, files=files, timeout=400, stream=print)


def test_vm_instance_boots_stock_kernel_from_image_disk(run):
    run.assert_check("vm_launch")
    out = run.assert_check("vm_ran").output
    assert "guest: rootfs has busybox" in out, out
    assert "cloison-guest: exit 0" in out, out
    blocks = [l for l in out.splitlines() if "guest: disk blocks=" in l]
    assert blocks and int(blocks[0].split("=")[1]) > 250000, out  # grown to --disk-size


def test_vm_disk_snapshot_restore(run):
    """Boot 1 counts 1, snapshot, boot 2 counts 2, restore: boot 3 counts 2
    again (what boot 2 wrote after the snapshot is gone)."""
    out = run.assert_check("vm_snapshot").output
    assert "s0" in out
    boots = [l.split("=")[1] for l in out.splitlines() if l.startswith("guest: boots=")]
    assert boots == ["1", "2", "2"], out


def test_vm_delete(run):
    out = run.assert_check("vm_delete").output
    assert "vm1" not in out


def test_vm_instance_from_image_pieces(run):
    """No --kernel: the image's VM pieces (Debian kernel, our initramfs),
    the busybox rootfs on /dev/vda, the instance's command (found through
    PATH) under cloison-init: when it exits, its status is on the console,
    what it wrote is on the disk, and the VM powers off cleanly."""
    out = run.assert_check("vm_image").output
    assert "hello from the image as a VM" in out, out
    assert "vm2" in out and "stopped" in out, out
    assert "cloison-init: exit 3" in out and "reboot: Power down" in out, out
    assert "Kernel panic" not in out, out
    assert "written-before-exit" in out, out


def test_vm_stop_presses_the_power_button(run):
    """`cloison stop` on a VM: the ACPI power button, cloison-init sends
    SIGTERM to the command, syncs and powers off: what the command wrote a
    moment before is on the disk, and stop does not wait for its timeout."""
    out = run.assert_check("vm_stop").output
    assert "cloison-init: stopping" in out and "cloison-init: exit 143" in out, out
    assert "reboot: Power down" in out and "written-before-stop" in out, out
    took = [int(l.split("=")[1]) for l in out.splitlines() if l.startswith("stop-took=")]
    assert took and took[0] < 8, out


def test_vm_run_returns_the_command_exit_code(run):
    c = run.check("vm_run_code")
    assert "in-run" in c.output and "rc=5" in c.output, c.output


def test_container_on_cgroup2(run):
    out = run.assert_check("ct_launch").output
    assert "0::/" in out and "c1" in out


def test_container_limits_live_on_cgroup2(run):
    out = run.assert_check("ct_limits").output.split()
    assert str(96 << 20) in out and "100000" in out


def test_container_delete_leaves_no_cgroup(run):
    out = run.check("ct_delete").output
    assert "cl-" not in out.replace("ls: ", "").split("No such file")[0] or "No such file" in out
