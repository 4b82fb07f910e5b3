# SPDX-License-Identifier: Apache-2.0
"""microVM instances through the real `cloison` CLI, with the tiny test
guests on the host's /dev/kvm (stock Linux guests run in the VM lab)."""
import os
import select
import signal
import subprocess
import time

import pytest

from cloison_cli import BUILD, cl, pid_alive  # noqa: F401 (cl: fixture)

GUESTS = os.path.join(BUILD, "tests", "guests")

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/kvm"), reason="no /dev/kvm on this host")


def guest(name):
    p = os.path.join(GUESTS, name + ".elf")
    if not os.path.exists(p):
        pytest.fail("%s is not built" % p)
    return p


def wait_status(cl, name, status, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = cl.info(name)
        if info["status"] == status:
            return info
        time.sleep(0.05)
    raise AssertionError("%s never became %s: %s" % (name, status, cl.info(name)))


def disk_ls(disk, path):
    out = subprocess.run(["debugfs", "-R", "ls -l " + path, disk], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, check=True).stdout
    return out


def disk_write(disk, src, dst):
    subprocess.run(["debugfs", "-w", "-R", "write %s %s" % (src, dst), disk],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def test_vm_guest_runs_to_completion(cl):
    cl("launch", "busybox", "vm1", "--vm", "--kernel", guest("hello"))
    info = wait_status(cl, "vm1", "stopped")
    assert info["kind"] == "vm" and info["exit_code"] == 0
    assert "hello from the cloison guest" in cl("logs", "vm1").stdout
    # started again from its disk and kernel
    cl("start", "vm1")
    wait_status(cl, "vm1", "stopped")
    assert cl("logs", "vm1").stdout.count("hello from the cloison guest") == 2


def test_vm_idle_stop_delete_leaves_nothing(cl):
    cl("launch", "busybox", "vm2", "--vm", "--kernel", guest("echo"), "--memory", "64M",
       "--disk-size", "300M")
    info = cl.info("vm2")
    assert info["status"] == "running"
    vmm, monitor = info["pid"], info["monitor_pid"]
    assert pid_alive(vmm) and pid_alive(monitor)
    assert os.path.getsize(os.path.join(cl.root, "instances", "vm2", "disk.img")) == 300 << 20
    p = cl("exec", "vm2", "--", "true", check=False)
    assert p.returncode != 0 and "vsock" in p.stderr and p.stderr.count("\n") == 1
    if not os.path.exists("/dev/vhost-vsock"):
        assert p.stderr == ("cloison: instance `vm2`: exec in a VM goes through the guest agent "
                            "over vsock, and this host has no /dev/vhost-vsock\n"), p.stderr
    cl("stop", "--timeout", "2", "vm2")
    assert cl.info("vm2")["status"] == "stopped"
    p = cl("exec", "vm2", "--", "true", check=False)
    assert p.returncode == 1 and p.stderr == "cloison: instance `vm2` is not running\n", p.stderr
    assert not pid_alive(vmm) and not pid_alive(monitor)
    cl("start", "vm2")
    vmm = cl.info("vm2")["pid"]
    cl("delete", "--force", "vm2")
    assert not pid_alive(vmm)
    assert cl.list() == []
    assert not os.path.exists(os.path.join(cl.root, "instances", "vm2"))


def test_vm_run_attached(cl):
    p = cl("run", "--vm", "--kernel", guest("hello"), "busybox")
    assert p.returncode == 0 and "hello from the cloison guest" in p.stdout
    p = cl("run", "--vm", "--kernel", guest("echo"), "busybox", input="typed line\n")
    assert "echo: typed line" in p.stdout
    p = cl("run", "--vm", "--kernel", guest("triple"), "busybox", check=False)
    assert p.returncode != 0 and p.stderr.count("\n") == 1
    # the guest's exit status (cloison-vmm's status port, as cloison-init
    # reports its command's) is run's
    p = cl("run", "--vm", "--kernel", guest("status"), "busybox", check=False)
    assert p.returncode == 42 and "status 42" in p.stdout, p
    assert cl.list() == []


def test_vm_disk_snapshot_restore_and_copy(cl, tmp_path):
    cl("launch", "busybox", "vm3", "--vm", "--kernel", guest("hello"))
    wait_status(cl, "vm3", "stopped")
    disk = os.path.join(cl.root, "instances", "vm3", "disk.img")
    marker = tmp_path / "marker"
    marker.write_text("written after the snapshot\n")
    cl("snapshot", "create", "vm3", "clean")
    disk_write(disk, str(marker), "/root/later")
    assert "later" in disk_ls(disk, "/root")
    cl("copy", "vm3", "vm3copy")
    copy_disk = os.path.join(cl.root, "instances", "vm3copy", "disk.img")
    assert "later" in disk_ls(copy_disk, "/root")
    cl("snapshot", "restore", "vm3", "clean")
    assert "later" not in disk_ls(disk, "/root")
    assert "later" in disk_ls(copy_disk, "/root")  # the copy is its own
    assert "clean" in cl("snapshot", "list", "vm3").stdout


def test_vm_bad_input(cl):
    p = cl("launch", "busybox", "vm4", "--vm", "--kernel", "/nonexistent/guest", check=False)
    assert p.returncode != 0 and p.stderr.count("\n") == 1 and "/nonexistent/guest" in p.stderr
    p = cl("launch", "busybox", "vm4", "--vm", "--disk-size", "12Q", check=False)
    assert p.returncode != 0 and "--disk-size" in p.stderr
    p = cl("launch", "busybox", "vm4", "--vm", "--kernel", guest("hello"), "--disk-size", "1M",
           check=False)
    assert p.returncode != 0 and "--disk-size" in p.stderr
    assert cl.list() == []
    assert os.listdir(os.path.join(cl.root, "instances")) == []


def test_vm_killed_monitor_reconciled(cl):
    cl("launch", "busybox", "vm5", "--vm", "--kernel", guest("echo"))
    info = cl.info("vm5")
    os.kill(info["monitor_pid"], signal.SIGKILL)
    time.sleep(0.2)
    assert cl.list()[0]["status"] == "stopped"
    deadline = time.monotonic() + 5  # a VMM's vCPU threads leave KVM_RUN first
    while pid_alive(info["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(info["pid"])


def test_vm_stateful_snapshot_restore_resumes(cl):
    """The counter guest counts 40 timer ticks then stops.  A stateful
    snapshot taken mid-way, restored after it stopped, brings it back
    running from that count: it finishes again without counting from 1."""
    cl("launch", "busybox", "vm6", "--vm", "--kernel", guest("counter"), "--memory", "32M")
    log = os.path.join(cl.root, "instances", "vm6", "console.log")
    deadline = time.monotonic() + 10
    while "count 5\n" not in open(log).read():
        assert time.monotonic() < deadline, open(log).read()
        time.sleep(0.05)
    cl("snapshot", "create", "--stateful", "vm6", "mid")
    wait_status(cl, "vm6", "stopped", timeout=20)
    first = open(log).read()
    assert first.count("count 40\n") == 1
    p = cl("snapshot", "create", "--stateful", "vm6", "again", check=False)
    assert p.returncode != 0 and "not running" in p.stderr
    cl("snapshot", "restore", "vm6", "mid")
    assert cl.info("vm6")["status"] == "running"
    wait_status(cl, "vm6", "stopped", timeout=20)
    after = open(log).read()[len(first):]
    assert "count 40\n" in after and "count 1\n" not in after, after
    assert "stateful" in cl("snapshot", "list", "vm6").stdout.splitlines()[0].lower()
    assert " yes " in cl("snapshot", "list", "vm6").stdout


def wait_log(cl, name, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in cl("logs", name).stdout:
            return
        time.sleep(0.05)
    raise AssertionError("no %r in the console of %s: %r" % (text, name, cl("logs", name).stdout))


def test_vm_console_interactive(cl):
    """`console` writes stdin to the detached VM's serial input and relays
    its output; it ends when the VM stops.  The upper guest echoes its
    input upper-cased and powers off at `#`."""
    cl("launch", "busybox", "vmc", "--vm", "--kernel", guest("upper"))
    wait_status(cl, "vmc", "running")
    wait_log(cl, "vmc", "ready")
    p = subprocess.Popen([cl.bin, "--root", cl.root, "console", "vmc"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"hello, console\n")
        p.stdin.flush()
        seen = b""
        deadline = time.monotonic() + 10
        while b"HELLO, CONSOLE" not in seen and time.monotonic() < deadline:
            if select.select([p.stdout], [], [], 0.5)[0]:
                seen += os.read(p.stdout.fileno(), 4096)
        assert b"HELLO, CONSOLE" in seen
        assert b"ready" not in seen  # new output only
        # one client at a time
        second = cl("console", "vmc", check=False, input="")
        assert second.returncode != 0 and second.stderr.count("\n") == 1
        assert "attached elsewhere" in second.stderr
        p.stdin.write(b"more#")
        p.stdin.flush()
        out, err = p.communicate(timeout=10)  # the VM stopped: console ends
        assert p.returncode == 0, err
        assert b"MORE" in seen + out and b"bye" in seen + out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    wait_status(cl, "vmc", "stopped")
    assert "HELLO, CONSOLE" in cl("logs", "vmc").stdout


def test_vm_console_stdin_pipe_until_eof(cl):
    """Without a terminal: stdin relayed until EOF, output until it goes
    quiet or the VM stops."""
    cl("launch", "busybox", "vmp", "--vm", "--kernel", guest("upper"))
    wait_log(cl, "vmp", "ready")
    p = cl("console", "vmp", input="piped line\n")
    assert p.returncode == 0 and "PIPED LINE" in p.stdout
    assert cl.info("vmp")["status"] == "running"  # EOF detaches, the VM goes on
    p = cl("console", "vmp", input="again#")
    assert "AGAIN" in p.stdout
    wait_status(cl, "vmp", "stopped")
    p = cl("console", "vmp", check=False, input="x\n")
    assert p.returncode != 0
    assert p.stderr.strip() == "cloison: instance `vmp` is not running"


def test_vm_console_tty_detach(cl):
    """On a terminal: raw mode while attached (bytes go as typed), Ctrl-]
    detaches with the VM still running, and the terminal is restored."""
    import pty
    import termios
    cl("launch", "busybox", "vmt", "--vm", "--kernel", guest("upper"))
    wait_log(cl, "vmt", "ready")
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    p = subprocess.Popen([cl.bin, "--root", cl.root, "console", "vmt"], stdin=slave, stdout=slave,
                         stderr=slave)
    try:
        seen = b""
        deadline = time.monotonic() + 10
        sent = False
        while b"TYPED" not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 4096)
            if not sent and b"Ctrl-]" in seen:
                os.write(master, b"typed\r")
                sent = True
        assert b"Connected to `vmt`" in seen and b"TYPED" in seen, seen
        os.write(master, b"\x1d")
        assert p.wait(timeout=10) == 0
        assert termios.tcgetattr(slave) == before
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
        os.close(slave)
    assert cl.info("vmt")["status"] == "running"
    cl("stop", "vmt")


def test_vm_console_after_stateful_restore(cl):
    """The restored VMM reads the console input too (a new FIFO, the UART's
    state from the snapshot)."""
    cl("launch", "busybox", "vmr", "--vm", "--kernel", guest("upper"))
    wait_log(cl, "vmr", "ready")
    cl("snapshot", "create", "--stateful", "vmr", "warm")
    cl("snapshot", "restore", "vmr", "warm")
    wait_status(cl, "vmr", "running")
    p = cl("console", "vmr", input="restored#")
    assert "RESTORED" in p.stdout and "bye" in p.stdout, p.stdout
    wait_status(cl, "vmr", "stopped")
