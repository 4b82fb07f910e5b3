# SPDX-License-Identifier: Apache-2.0
"""cloisond under stress and faults, beyond test_api.py's (413 bodies, a
stalled client, 1000 idle connections, kill -9 during a stop): slow body
and header senders are dropped without slowing others, and an exec
survives a kill -9 of the daemon (the command and its instance keep
running, the operation is marked failed on restart) and ends cleanly at
SIGTERM."""
import signal
import socket
import threading
import time

from cloison_cli import pid_alive
from test_api import Daemon, container_body
from test_api_exec import start_exec


def cleanup(d):
    if d.proc and d.proc.poll() is None:
        for url in d.ok("GET", "/1.0/instances"):
            st, j, _ = d.request("DELETE", url + "?force=1")
            if st == 202:
                d.wait(j["operation"])
    d.stop()


def test_slow_body_senders_time_out_and_block_nobody(tmp_path):
    d = Daemon(tmp_path, ["--timeout", "2"])
    d.start()
    slow = []
    stop = threading.Event()

    def trickle(s):
        # one byte every 3 s: each gap is longer than the timeout
        try:
            while not stop.is_set():
                s.sendall(b"{")
                stop.wait(3)
        except OSError:
            pass

    try:
        for _ in range(20):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            s.sendall(b"POST /1.0/instances HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            slow.append(s)
            threading.Thread(target=trickle, args=(s,), daemon=True).start()
        for _ in range(20):
            t = time.monotonic()
            assert d.request("GET", "/1.0")[0] == 200
            assert time.monotonic() - t < 1
        # all dropped by the timeout (EOF, or a reset on the next byte)
        t = time.monotonic()
        for s in slow:
            s.settimeout(10)
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
        assert time.monotonic() - t < 10
        # a header that never ends is dropped too
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.sock)
        s.sendall(b"GET /1.0 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        s.settimeout(10)
        t = time.monotonic()
        assert s.recv(100) == b""
        assert 1 < time.monotonic() - t < 8
    finally:
        stop.set()
        for s in slow:
            s.close()
        d.stop()


def test_kill9_during_exec_then_restart(tmp_path):
    d = Daemon(tmp_path)
    d.start()
    try:
        d.run_op("POST", "/1.0/instances", container_body("ex9", ["sleep", "1000"]))
        pid = d.ok("GET", "/1.0/instances/ex9/state")["pid"]
        op, fds, ws = start_exec(d, "ex9", {"command": ["sh", "-c", "echo started; sleep 1000"]})
        assert ws["1"].recv() == (2, b"started\n")
        assert d.ok("GET", op)["status"] == "running"
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        d.start()
        state = d.ok("GET", "/1.0/instances/ex9/state")
        assert state["status"] == "running" and state["pid"] == pid and pid_alive(pid)
        failed = d.ok("GET", op)
        assert failed["status"] == "failure" and "interrupted" in failed["err"], failed
        # exec works again on the new daemon
        op, fds, ws = start_exec(d, "ex9", {"command": ["sh", "-c", "exit 4"]})
        assert d.wait(op)["metadata"]["return"] == 4
    finally:
        cleanup(d)


def test_sigterm_during_exec_and_console(tmp_path):
    d = Daemon(tmp_path)
    d.start()
    try:
        d.run_op("POST", "/1.0/instances", container_body("exst", ["sleep", "1000"]))
        op, fds, ws = start_exec(d, "exst", {"command": ["sleep", "1000"]})
        from test_api_exec import WS
        con = WS(d.sock, "/1.0/instances/exst/console")
        time.sleep(0.5)
        t = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(timeout=20)
        assert time.monotonic() - t < 10
        assert ws["control"].read_until_close() == b""
        con.s.settimeout(5)
        con.read_until_close()
        d.start()
        ended = d.ok("GET", op)
        assert ended["status"] == "failure" and "stopped" in ended["err"], ended
    finally:
        cleanup(d)
