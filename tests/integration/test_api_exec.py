# SPDX-License-Identifier: Apache-2.0
"""exec and console through cloisond's API (Incus-style): POST
/1.0/instances/NAME/exec makes an operation whose websockets carry the
command's stdin, stdout and stderr (or one pty) and a control channel
(window-resize, signal); the operation ends with metadata.return, the exit
code.  GET /1.0/instances/NAME/console is a websocket on a pty.  Real
containers (busybox) through the real socket."""
import hashlib
import json
import os
import struct
import time

import pytest

from test_api import WebSocket, api, container_body  # noqa: F401 (fixture)
from test_api_remote import pair, trusted  # noqa: F401 (fixtures)


class WS(WebSocket):
    def send(self, opcode, payload=b""):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, 0x80 | n])
        elif n < 65536:
            head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack(">H", n)
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack(">Q", n)
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def read_until_close(self):
        data = b""
        while True:
            op, payload = self.recv()
            if op == 8:
                return data
            data += payload

    def read_until(self, needle, timeout=20):
        data = b""
        deadline = time.monotonic() + timeout
        while needle not in data:
            assert time.monotonic() < deadline, data
            op, payload = self.recv()
            assert op != 8, data
            data += payload
        return data


def start_exec(api, name, body):
    st, j, h = api.request("POST", "/1.0/instances/%s/exec" % name, body)
    assert st == 202, j
    op = j["operation"]
    meta = j["metadata"]
    assert meta["class"] == "websocket" and h["Location"] == op
    fds = meta["metadata"]["fds"]
    socks = {k: WS(api.sock, "%s/websocket?secret=%s" % (op, v)) for k, v in fds.items()}
    return op, fds, socks


def test_exec_pipes_exit_code_env_cwd_user(api):
    api.run_op("POST", "/1.0/instances", container_body("ex", ["sleep", "1000"]))
    op, fds, ws = start_exec(api, "ex", {
        "command": ["sh", "-c", "read x; echo out:$x:$GREETING:$(pwd):$(id -u):$(id -g);"
                    " echo err >&2; exit 7"],
        "environment": {"GREETING": "hi"}, "cwd": "/tmp", "user": 1000, "group": 1001,
        "wait-for-websocket": True, "interactive": False})
    assert sorted(fds) == ["0", "1", "2", "control"]
    ws["0"].send(2, b"hello\n")
    ws["0"].send(2, b"")  # the end of stdin
    assert ws["1"].read_until_close() == b"out:hello:hi:/tmp:1000:1001\n"
    assert ws["2"].read_until_close() == b"err\n"
    done = api.wait(op)
    assert done["status"] == "success" and done["metadata"]["return"] == 7, done
    # a large stdin goes through whole
    blob = os.urandom(300000)
    op, fds, ws = start_exec(api, "ex", {"command": ["sh", "-c", "cat | md5sum"]})
    ws["0"].send(2, blob)
    ws["0"].send(2, b"")
    assert ws["1"].read_until_close().split()[0].decode() == hashlib.md5(blob).hexdigest()
    assert api.wait(op)["metadata"]["return"] == 0


def test_exec_signal_through_the_control_socket(api):
    api.run_op("POST", "/1.0/instances", container_body("sig", ["sleep", "1000"]))
    for sig, code in ((15, 143), (9, 137)):
        op, fds, ws = start_exec(api, "sig", {"command": ["sleep", "1000"]})
        time.sleep(0.5)
        assert api.ok("GET", op)["status"] == "running"
        ws["control"].send(1, json.dumps({"command": "signal", "signal": sig}).encode())
        done = api.wait(op, timeout=20)
        assert done["metadata"]["return"] == code, done


def test_exec_interactive_pty_and_resize(api):
    api.run_op("POST", "/1.0/instances", container_body("tty", ["sleep", "1000"]))
    op, fds, ws = start_exec(api, "tty", {"command": ["sh"], "interactive": True,
                                          "width": 90, "height": 30})
    assert sorted(fds) == ["0", "control"]
    ws["0"].send(2, b"stty size; tty\n")
    out = ws["0"].read_until(b"/dev/pts/")  # the container's own pty
    assert b"30 90" in out, out
    ws["control"].send(1, json.dumps({"command": "window-resize",
                                      "args": {"width": "120", "height": "40"}}).encode())
    time.sleep(0.2)
    ws["0"].send(2, b"stty size\n")
    assert b"40 120" in ws["0"].read_until(b"40 120")
    ws["0"].send(2, b"exit 3\n")
    done = api.wait(op, timeout=20)
    assert done["metadata"]["return"] == 3, done


def test_exec_bad_requests(api):
    api.run_op("POST", "/1.0/instances", container_body("bad", ["sleep", "1000"]))
    st, j, _ = api.request("POST", "/1.0/instances/nope/exec", {"command": ["true"]})
    assert st == 404, j
    st, j, _ = api.request("POST", "/1.0/instances/bad/exec", {})
    assert st == 400 and j["path"] == "command", j
    st, j, _ = api.request("POST", "/1.0/instances/bad/exec", {"command": []})
    assert st == 400 and j["path"] == "command", j
    st, j, _ = api.request("POST", "/1.0/instances/bad/exec", {"command": ["true"], "width": -1})
    assert st == 400 and j["path"] == "width", j
    st, j, _ = api.request("POST", "/1.0/instances/bad/exec", {"command": ["true"], "bogus": 1})
    assert st == 400 and j["path"] == "bogus", j
    st, j, _ = api.request("POST", "/1.0/instances/bad/exec", {"command": ["true"]})
    assert st == 202
    op = j["operation"]
    st, j, _ = api.request("GET", op + "/websocket?secret=wrong")
    assert st == 403, j
    secret = j and api.ok("GET", op)["metadata"]["fds"]["0"]
    st, j, _ = api.request("GET", op + "/websocket?secret=" + secret)
    assert st == 400 and "websocket" in j["error"], j
    # a command that does not exist: the operation fails with its reason
    op, fds, ws = start_exec(api, "bad", {"command": ["/no/such/thing"]})
    done = api.wait(op)
    assert done["status"] == "failure" and "/no/such/thing" in done["err"], done
    # a stopped instance: 409 at once
    api.run_op("PUT", "/1.0/instances/bad/state", {"action": "stop", "force": True})
    st, j, _ = api.request("POST", "/1.0/instances/bad/exec", {"command": ["true"]})
    assert st == 409, j


def test_exec_without_websockets_runs_at_once(api):
    api.run_op("POST", "/1.0/instances", container_body("nows", ["sleep", "1000"]))
    st, j, _ = api.request("POST", "/1.0/instances/nows/exec",
                           {"command": ["sh", "-c", "exit 5"], "wait-for-websocket": False})
    assert st == 202
    assert api.wait(j["operation"])["metadata"]["return"] == 5


def test_console_websocket(api):
    api.run_op("POST", "/1.0/instances", container_body("con", ["sleep", "1000"]))
    ws = WS(api.sock, "/1.0/instances/con/console?width=100&height=20")
    ws.send(2, b"echo hi$((40+2)); stty size\n")
    out = ws.read_until(b"20 100")
    assert b"hi42" in out, out
    ws.send(1, json.dumps({"command": "window-resize",
                           "args": {"width": 70, "height": 10}}).encode())
    time.sleep(0.2)
    ws.send(2, b"stty size; exit\n")
    assert b"10 70" in ws.read_until(b"10 70")
    st, j, _ = api.request("GET", "/1.0/instances/con/console?type=vga")
    assert st == 400, j
    st, j, _ = api.request("GET", "/1.0/instances/con/console")
    assert st == 400 and "websocket" in j["error"], j


def test_exec_over_tls_and_read_only_refused(pair, trusted):
    """The same websockets through the TLS listener (MHD forwards an
    upgraded TLS connection in its own thread): a trusted certificate
    runs a command; a read-only one gets no exec or console."""
    from test_api_remote import TLSWebSocket, curl

    class TLSWS(TLSWebSocket, WS):
        pass

    a, _ = pair
    u = trusted
    u.run("--remote", "ra", "launch", "busybox", "tl", "--no-network", "--", "sleep", "600")
    st, j = curl(a, "/1.0/instances/tl/exec", u, "POST",
                 {"command": ["sh", "-c", "read x; echo tls:$x; exit 6"]})
    assert st == 202, j
    op = j["operation"]
    ws = {k: TLSWS(a, u, "%s/websocket?secret=%s" % (op, v))
          for k, v in j["metadata"]["metadata"]["fds"].items()}
    ws["0"].send(2, b"over\n")
    ws["0"].send(2, b"")
    assert ws["1"].read_until_close() == b"tls:over\n"
    st, j = curl(a, op + "/wait?timeout=30", u)
    assert j["metadata"]["metadata"]["return"] == 6, j
    u.run("config", "trust", "restrict", "alice", "--read-only", daemon=a)
    st, j = curl(a, "/1.0/instances/tl/exec", u, "POST", {"command": ["true"]})
    assert st == 403, j
    with pytest.raises(AssertionError, match="403"):
        TLSWS(a, u, "/1.0/instances/tl/console")
    u.run("config", "trust", "restrict", "alice", "--read-only=false", daemon=a)
    u.run("delete", "ra:tl", "--force")
