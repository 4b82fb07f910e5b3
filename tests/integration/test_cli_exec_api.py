# SPDX-License-Identifier: Apache-2.0
"""`cloison exec` and `cloison console` through the API's websockets
(src/cli/exec_client.c) when a cloisond serves the state root (its link
ROOT/cloisond.sock): stdin piped and its end, stdout and stderr apart,
exit codes (0, 3, 137 when killed), a pty with its size and a resize
(SIGWINCH), the console, one-line errors; the daemon's request log shows
they went through it.  With no daemon (and with --local) exec runs
in-process as before.  Exec on a remote over TLS is in
test_api_remote.py (test_exec_and_console_on_a_remote)."""
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from cloison_cli import cl  # noqa: F401 (cl: fixture)
from test_api import Daemon


def serve(cl, tmp_path):
    """A cloisond serving cl's root (started)."""
    d = Daemon(tmp_path, netns=False)
    d.root = cl.root
    d.start()
    return d


@pytest.fixture
def served(cl, tmp_path):
    """cl's root served by a cloisond, with a running container `c`."""
    d = serve(cl, tmp_path)
    try:
        cl("launch", "busybox", "c", "--", "sleep", "100000")
        yield cl, d
    finally:
        cl("delete", "--force", "c", check=False)
        d.stop()


def log_has(d, text):
    return text in open(d.log).read()


def test_exec_goes_through_the_daemon(served):
    cl, d = served
    p = cl("--debug", "exec", "c", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
           check=False)
    assert p.returncode == 3, p.stderr
    assert p.stdout == "out\n"
    assert "err\n" in p.stderr and "out" not in p.stderr
    assert "through the daemon serving" in p.stderr
    assert log_has(d, "POST /1.0/instances/c/exec: 202")
    ops = d.ok("GET", "/1.0/operations?recursion=1")
    assert any(o["description"].lower().startswith("exec") and o["status"] == "success"
               and o["metadata"].get("return") == 3 for o in ops), ops
    assert cl("exec", "c", "--", "true").returncode == 0


def test_exec_stdin_is_forwarded_and_ended(served):
    cl, d = served
    p = cl("exec", "c", "--", "cat", input="hi\n")
    assert p.stdout == "hi\n"
    big = "".join("line %d\n" % i for i in range(20000))
    p = cl("exec", "c", "--", "sh", "-c", "wc -l; echo done >&2", input=big)
    assert p.stdout.strip() == "20000" and p.stderr == "done\n"
    # no stdin at all
    p = cl("exec", "c", "--", "cat", stdin=subprocess.DEVNULL)
    assert p.stdout == ""


def test_exec_reader_gone_gives_the_command_sigpipe(served):
    cl, d = served
    # `| head -1`: our stdout closes, the command gets SIGPIPE, we end
    p = subprocess.run("'%s' --root '%s' exec c -- yes | head -1" % (cl.bin, cl.root),
                       shell=True, capture_output=True, text=True, timeout=60)
    assert p.stdout == "y\n", p.stderr


def test_exec_killed_gives_137(served):
    cl, d = served
    p = cl("exec", "c", "--", "sh", "-c", "kill -9 $$", check=False)
    assert p.returncode == 137, p.stderr


def test_exec_signal_to_the_cli_is_forwarded(served):
    cl, d = served
    proc = subprocess.Popen([cl.bin, "--root", cl.root, "exec", "c", "--", "sh", "-c",
                             "echo ready; exec sleep 100"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM, proc.stderr.read()


def test_exec_errors_are_one_line(served):
    cl, d = served
    p = cl("exec", "ghost", "--", "true", check=False)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1 and "ghost" in p.stderr
    cl("stop", "--timeout", "0", "c")
    p = cl("exec", "c", "--", "true", check=False)
    assert p.returncode == 1 and p.stderr == "cloison: instance `c` is not running\n", p.stderr
    p = cl("console", "c", check=False)
    assert p.returncode == 1 and p.stderr == "cloison: instance `c` is not running\n", p.stderr


def read_until(fd, want, timeout=30):
    out = b""
    deadline = time.monotonic() + timeout
    while want not in out:
        left = deadline - time.monotonic()
        assert left > 0, out
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def spawn_on_pty(args, rows=30, cols=100):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(args[0], args)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return pid, fd


def test_exec_on_a_pty_with_resize(served):
    cl, d = served
    pid, fd = spawn_on_pty([cl.bin, "--root", cl.root, "exec", "c", "--", "sh"])
    try:
        time.sleep(0.3)  # the size set before the exec reads it
        os.write(fd, b"stty size; tty\n")
        out = read_until(fd, b"/dev/pts/")
        assert b"30 100" in out, out
        # our terminal resized: SIGWINCH, a window-resize, the new size there
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.kill(pid, signal.SIGWINCH)
        time.sleep(0.5)
        os.write(fd, b"stty size\n")
        assert b"40 120" in read_until(fd, b"40 120")
        os.write(fd, b"exit 5\n")
        read_until(fd, b"\xff", timeout=10)  # to its end
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 5
    finally:
        os.close(fd)
    assert log_has(d, "POST /1.0/instances/c/exec: 202")


def test_console_through_the_daemon(served):
    cl, d = served
    pid, fd = spawn_on_pty([cl.bin, "--root", cl.root, "console", "c"])
    try:
        assert b"Connected to `c`" in read_until(fd, b"detach")
        os.write(fd, b"echo con$((6*7))sole\n")
        assert b"con42sole" in read_until(fd, b"con42sole")
        os.write(fd, b"exit\n")
        read_until(fd, b"\xff", timeout=15)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)
    assert log_has(d, "GET /1.0/instances/c/console")
    # piped: the shell reads its commands and ends
    p = cl("console", "c", input="echo piped$((1+1))\nexit\n", timeout=30)
    assert "piped2" in p.stdout


def test_without_a_daemon_exec_runs_in_process(cl):
    cl("launch", "busybox", "solo", "--", "sleep", "100000")
    p = cl("--debug", "exec", "solo", "--", "sh", "-c", "cat; exit 4", input="x\n",
           check=False)
    assert p.returncode == 4 and p.stdout == "x\n"
    assert "through the daemon" not in p.stderr
    cl("delete", "--force", "solo")


def test_local_flag_keeps_exec_in_process(served):
    cl, d = served
    p = cl("--local", "exec", "c", "--", "sh", "-c", "echo here; exit 2", check=False)
    assert p.returncode == 2 and p.stdout == "here\n"
    assert not log_has(d, "/exec")
