"""`cloison exec` on a VM instance (issue 4) in the VM lab, where nested
KVM and /dev/vhost-vsock exist: the busybox image booted as a VM with the
image's VM pieces (Debian kernel, our initramfs with the guest agent), a
vsock device with the instance's CID, and commands run by the guest agent
in the instance's root filesystem.  A VM of another state root holds CID 3
first: the instances of this one get others (CIDs are reserved host-wide).  One lab boot; each test asserts on one
check of it."""
import os
import shutil
import subprocess

import pytest

from lab_cli import (PROLOGUE, VM_INITRAMFS, assert_no_instance, assert_not_running_one_line,
                     cli_files)

PAYLOAD = PROLOGUE + r"""O="env CLOISON_ROOT=/tmp/cl-other $C"
check launch sh -c "$O launch busybox other --vm --no-network --memory 128M -- /bin/sleep 100000 &&
    $C launch busybox vm --vm --no-network --memory 256M -- /bin/sleep 100000 &&
    $C launch busybox vm2 --vm --no-network --memory 128M -- /bin/sleep 100000 && $C list"
check hostname $C exec vm -- cat /etc/hostname
check exit7 $C exec vm -- sh -c 'exit 7'
check streams sh -c "$C exec vm -- sh -c 'echo to-out; echo to-err >&2; exit 3' >/tmp/out 2>/tmp/err;
    echo rc=\$?; echo OUT=\$(cat /tmp/out); echo ERR=\$(cat /tmp/err)"
check env $C exec --env GREETING=hi vm -- sh -c 'echo greeting=$GREETING path=$PATH'
check rootfs_write sh -c "$C exec vm -- sh -c 'echo written-by-exec > /root/mark' &&
    $C exec vm -- cat /root/mark && $C exec vm2 -- sh -c 'cat /root/mark 2>&1; true'"
check big sh -c "$C exec vm -- dd if=/dev/zero bs=1024 count=1024 2>/dev/null | wc -c"
check missing_cmd $C exec vm -- /nonexistent/cmd
check second_vm $C exec vm2 -- echo from vm2
check other_root sh -c "$O exec other -- echo from the other state root && $O delete --force other"
check stateful sh -c "$C snapshot create --stateful vm live && $C exec vm -- sh -c 'echo after-snap > /root/later' &&
    $C snapshot restore vm live && $C list && $C exec vm -- sh -c 'cat /root/later 2>&1; echo restored-ok'"
check stopped sh -c "$C stop --timeout 2 vm && $C exec vm -- true; echo rc=\$?"
check own_kernel sh -c "$C launch busybox vm3 --vm --no-network --memory 128M --kernel /lab/vmlinuz \
    --initrd /lab/plain.cpio.gz --cmdline 'console=ttyS0 panic=-1 quiet' -- /bin/sleep 100000 &&
    $C exec vm3 -- true"
check delete sh -c "$C delete --force vm && $C delete --force vm2 && $C delete --force vm3; $C list"
cat /tmp/cl/instances/vm/console.log 2>/dev/null | tail -5
"""


def initramfs_without_agent(out):
    """The built-in initramfs minus /sbin/cloison-agent: a VM booted with
    an initrd of its own that has no agent."""
    d = out + ".d"
    os.makedirs(d)
    subprocess.run("zcat %s | cpio -id --quiet" % VM_INITRAMFS, shell=True, cwd=d, check=True)
    os.unlink(os.path.join(d, "sbin", "cloison-agent"))
    subprocess.run("find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1 > %s" % out,
                   shell=True, cwd=d, check=True)
    shutil.rmtree(d)
    return out


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    files = cli_files() + [
        (initramfs_without_agent(str(tmp_path_factory.mktemp("vmexec") / "plain.cpio.gz")),
         "/lab/plain.cpio.gz")]
    return lab.run(PAYLOAD, files=files, timeout=400, stream=print)


def test_exec_runs_in_the_instance_rootfs(run):
    run.assert_check("launch")
    assert run.assert_check("hostname").output.strip() == "cloison"


def test_exec_exit_code(run):
    assert run.check("exit7").rc == 7, run.check("exit7")


def test_exec_relays_stdout_and_stderr_apart(run):
    out = run.assert_check("streams").output
    assert "rc=3" in out and "OUT=to-out" in out and "ERR=to-err" in out, out


def test_exec_env_and_default_path(run):
    out = run.assert_check("env").output
    assert "greeting=hi" in out and "path=/usr/local/sbin:" in out, out


def test_exec_writes_the_instance_disk_only(run):
    out = run.assert_check("rootfs_write").output
    assert out.count("written-by-exec") == 1, out  # vm2 has its own disk
    assert "No such file" in out, out


def test_exec_large_output(run):
    assert run.assert_check("big").output.split()[-1] == str(1 << 20)


def test_exec_missing_command(run):
    c = run.check("missing_cmd")
    assert c.rc == 127 and "/nonexistent/cmd" in c.output, c


def test_exec_in_a_second_vm(run):
    assert "from vm2" in run.assert_check("second_vm").output


def test_vsock_cid_held_elsewhere_on_the_host_is_skipped(run):
    # `other` (another state root) took CID 3 first; vm and vm2 launched
    # (checked above) on other CIDs, and `other` still answers on its own.
    run.assert_check("launch")
    assert "from the other state root" in run.assert_check("other_root").output


def test_exec_after_stateful_restore(run):
    """The agent survives a stateful snapshot and restore (the vsock device's
    state goes with the VM's), and exec sees the restored disk."""
    out = run.assert_check("stateful").output
    assert "restored-ok" in out and "No such file" in out, out


def test_exec_own_kernel_without_agent(run):
    c = run.check("own_kernel")
    assert c.rc == 1, c
    errs = [l for l in c.output.splitlines() if l.startswith("cloison:")]
    assert len(errs) == 1 and "no guest agent on vsock" in errs[0], c.output


def test_exec_on_stopped_vm_is_one_line(run):
    assert_not_running_one_line(run.assert_check("stopped").output)


def test_delete(run):
    assert_no_instance(run.assert_check("delete").output)
