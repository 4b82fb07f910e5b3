# SPDX-License-Identifier: Apache-2.0
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
check stdin_lines sh -c "printf 'a\nb\n' | $C exec vm -- wc -l"
check stdin_read sh -c "echo hello-stdin | $C exec vm -- sh -c 'read x; echo got=\$x'"
check stdin_big sh -c "head -c 1048576 /dev/urandom > /tmp/big && md5sum < /tmp/big &&
    $C exec vm -- cat < /tmp/big | md5sum && $C exec vm -- sh -c 'cat > /root/big' < /tmp/big &&
    $C exec vm -- md5sum /root/big"
check stdin_unread sh -c "timeout 120 $C exec vm -- true < /dev/zero; echo rc=\$?;
    timeout 120 $C exec vm -- sh -c 'sleep 1; echo done' < /dev/zero; echo rc=\$?"
P=/lab/ptyrun
check tty env TERM=vt-lab $P 33x101 $C exec vm -- sh -c 'tty; stty size; echo TERM=$TERM; exit 4'
check tty_interactive $P -i 'echo $((6*7))\nexit 3\n' 24x80 $C exec vm -- sh
check tty_resize $P -w 50x132 24x80 $C exec vm -- sh -c 'echo R; i=0;
    while [ "$(stty size)" = "24 80" ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done; stty size'
check tty_ctrl_c $P -i '\x03' 24x80 $C exec vm -- sh -c 'echo R; sleep 60; echo not-interrupted'
check tty_restored $P 24x80 env C=$C sh -c 'a=$(stty -g); $C exec vm -- true;
    [ "$(stty -g)" = "$a" ] && echo restored-after-exit; $C exec vm -- sleep 60 </dev/tty & i=0;
    while [ "$(stty -g)" = "$a" ] && [ $i -lt 300 ]; do usleep 100000; i=$((i + 1)); done;
    [ "$(stty -g)" != "$a" ] && echo raw-meanwhile; kill $!; wait $!; echo rc=$?;
    [ "$(stty -g)" = "$a" ] && echo restored-after-sigterm'
check no_tty $P 24x80 $C exec -T vm -- sh -c 'tty; echo rc=$?'
check forced_tty $C exec --tty vm -- sh -c 'tty; stty size'
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
    files = cli_files() + [(lab.tool("ptyrun"), "/lab/ptyrun"),
        (initramfs_without_agent(str(tmp_path_factory.mktemp("vmexec") / "plain.cpio.gz")),
         "/lab/plain.cpio.gz")]
    return lab.run(PAYLOAD, files=files, timeout=700, stream=print)


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


def test_exec_stdin_piped(run):
    assert run.assert_check("stdin_lines").output.split()[-1] == "2"


def test_exec_stdin_read_by_the_command(run):
    assert "got=hello-stdin" in run.assert_check("stdin_read").output


def test_exec_stdin_megabyte_round_trip(run):
    """1 MiB of random bytes through cat (stdin to stdout) and into a file
    of the guest: the same checksum three times."""
    sums = [l.split()[0] for l in run.assert_check("stdin_big").output.splitlines()
            if len(l.split()) == 2 and len(l.split()[0]) == 32]
    assert len(sums) == 3 and len(set(sums)) == 1, run.check("stdin_big")


def test_exec_unread_stdin_does_not_hang(run):
    """Endless stdin (/dev/zero) to commands that never read it: they end,
    with their status and output."""
    out = run.assert_check("stdin_unread").output
    assert out.count("rc=0") == 2 and "done" in out, out


def test_exec_tty(run):
    """On a terminal: a pty of the guest's devpts, the outer terminal's
    size, the host's TERM, and the exit status."""
    c = run.check("tty")
    assert c.rc == 4, c
    assert "/dev/pts/" in c.output and "33 101" in c.output and "TERM=vt-lab" in c.output, c


def test_exec_tty_interactive_shell(run):
    c = run.check("tty_interactive")
    assert c.rc == 3 and "42" in c.output, c


def test_exec_tty_resize(run):
    c = run.check("tty_resize")
    assert c.rc == 0 and "50 132" in c.output, c


def test_exec_tty_ctrl_c_goes_to_the_command(run):
    c = run.check("tty_ctrl_c")
    assert c.rc == 130 and "not-interrupted" not in c.output, c


def test_exec_tty_restores_the_terminal(run):
    """Raw while the command runs, as it was after it ends and after a
    SIGTERM to cloison (which ends the session with 128+15)."""
    out = run.assert_check("tty_restored").output
    for word in ("restored-after-exit", "raw-meanwhile", "rc=143", "restored-after-sigterm"):
        assert word in out, out


def test_exec_no_tty_flag(run):
    out = run.assert_check("no_tty").output
    assert "not a tty" in out and "rc=1" in out, out


def test_exec_forced_tty_without_a_terminal(run):
    out = run.assert_check("forced_tty").output
    assert "/dev/pts/" in out, out


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
