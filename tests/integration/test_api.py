# SPDX-License-Identifier: Apache-2.0
"""cloisond's REST API through its real Unix socket, with curl and with a
Python http.client over AF_UNIX: every resource and verb, a container
launched and deleted through the API, async operations and their wait,
events for lifecycle changes, bad input (400 with the field's path, 404,
405, 409, 413), a stalled client, and a daemon killed with -9 during an
operation.  Each daemon runs in a network namespace of its own (unshare
--net), so networks made through the API never touch the host's."""
import base64
import hashlib
import http.client
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.parse

import pytest
import yaml

from cloison_cli import ROOT, binary, pid_alive
from test_image_registry import registry  # noqa: F401 (fixture)


# $CLOISOND: another build of the daemon to test (an ASan build, say)
CLOISOND = os.environ.get("CLOISOND")


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Daemon:
    """A cloisond on a state root and socket of the test's own."""

    def __init__(self, tmp_path, extra=(), netns=True):
        self.netns = netns
        self.root = str(tmp_path / "root")
        self.sock = str(tmp_path / "api.sock")
        self.log = str(tmp_path / "cloisond.log")
        self.extra = list(extra)
        self.proc = None

    def start(self):
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                (["unshare", "--net"] if self.netns else [])
                + [CLOISOND or binary("cloisond"), "--root", self.root,
                 "--socket", self.sock, "--debug"] + self.extra,
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.request("GET", "/1.0")[0] == 200:
                    return
            except OSError:
                pass
            assert self.proc.poll() is None, open(self.log).read()
            assert time.monotonic() < deadline, "cloisond did not answer"
            time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def request(self, method, path, body=None, raw=None, timeout=60):
        """(status, decoded body, headers); JSON bodies are decoded."""
        c = UnixHTTPConnection(self.sock, timeout=timeout)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        c.request(method, path, body=data,
                  headers={"Content-Type": "application/json"} if data is not None else {})
        r = c.getresponse()
        payload = r.read()
        c.close()
        if r.getheader("Content-Type", "").startswith("application/json"):
            payload = json.loads(payload)
        return r.status, payload, r.headers

    def ok(self, method, path, body=None, status=200):
        st, j, _ = self.request(method, path, body)
        assert st == status, (method, path, st, j)
        return j["metadata"]

    def wait(self, op_url, timeout=60):
        st, j, _ = self.request("GET", op_url + "/wait?timeout=%d" % timeout, timeout=timeout + 10)
        assert st == 200, j
        return j["metadata"]

    def run_op(self, method, path, body=None):
        """An async request run to its end; returns the ended operation."""
        st, j, h = self.request(method, path, body)
        assert st == 202, (method, path, st, j)
        assert j["type"] == "async" and h["Location"] == j["operation"]
        op = self.wait(j["operation"])
        assert op["status"] == "success", op
        return op

    def delete_instances(self):
        """Whatever instances a test left (a failing one, say), then its
        networks: their dnsmasq would outlive the daemon (and keep its
        network namespace, when it has one of its own)."""
        if self.proc.poll() is None:
            for url in self.ok("GET", "/1.0/instances"):
                st, j, _ = self.request("DELETE", url + "?force=1")
                if st == 202:
                    self.wait(j["operation"])
            if os.path.isdir(os.path.join(self.root, "net")):  # (listing would make one)
                for url in self.ok("GET", "/1.0/networks"):
                    self.request("DELETE", url)

    def curl(self, *args):
        p = subprocess.run(["curl", "-sS", "--unix-socket", self.sock] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout


def container_body(name, command=None, **extra):
    body = {"name": name, "source": {"type": "image", "image": "busybox"}, "no_network": True}
    if command:
        body["command"] = command
    body.update(extra)
    return body


@pytest.fixture
def api(tmp_path):
    d = Daemon(tmp_path)
    d.start()
    yield d
    # whatever a failing test left: its instances, then the daemon
    try:
        d.delete_instances()
    finally:
        d.stop()
        subprocess.run([binary("cloison"), "--root", d.root, "list"], capture_output=True)


class Events:
    """Reads /1.0/events in a thread, one JSON object per line."""

    def __init__(self, daemon, query=""):
        self.items = []
        self.conn = UnixHTTPConnection(daemon.sock, timeout=120)
        self.conn.request("GET", "/1.0/events" + query)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        assert self.resp.getheader("Content-Type") == "application/x-ndjson"
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for line in self.resp:
                if line.strip():
                    self.items.append(json.loads(line))
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            # AttributeError: close() from the test while a read waits
            pass

    def actions(self):
        return [(e["metadata"]["action"], e["metadata"]["source"]) for e in self.items
                if e["type"] == "lifecycle"]

    def wait_for(self, action, source, timeout=10):
        deadline = time.monotonic() + timeout
        while (action, source) not in self.actions():
            assert time.monotonic() < deadline, (action, source, self.actions())
            time.sleep(0.05)

    def close(self):
        self.conn.close()


def test_server_info_through_curl(api):
    info = json.loads(api.curl("http://cloison/1.0"))
    assert info["type"] == "sync" and info["status_code"] == 200
    meta = info["metadata"]
    assert meta["api_version"] == "1.0" and "operations" in meta["api_extensions"]
    assert meta["environment"]["storage_root"] == api.root
    assert json.loads(api.curl("http://cloison/"))["metadata"] == ["/1.0"]
    # the socket: a file of mode 0660
    assert oct(os.stat(api.sock).st_mode & 0o777) == "0o660"


def test_container_through_the_api(api):
    ev = Events(api)
    url = "/1.0/instances/web"
    op = api.run_op("POST", "/1.0/instances", container_body(
        "web", ["sh", "-c", "echo hello from web; trap 'exit 3' TERM; while true; do sleep 0.1; done"],
        config={"limits.memory": "128M", "limits.cpu": 1}, environment={"GREETING": "hi"}))
    assert op["resources"] == {"instances": [url]}
    ev.wait_for("instance-created", url)
    assert api.ok("GET", "/1.0/instances") == [url]
    [inst] = api.ok("GET", "/1.0/instances?recursion=1")
    assert inst["name"] == "web" and inst["status"] == "running" and inst["kind"] == "container"
    info = api.ok("GET", url)
    assert info["config"]["memory"] == 128 << 20 and info["config"]["env"] == ["GREETING=hi"]
    state = api.ok("GET", url + "/state")
    assert state["status"] == "running" and pid_alive(state["pid"])

    # limits, live; If-Match keeps two clients from overwriting each other
    etag = api.request("GET", url)[2]["ETag"]
    c = UnixHTTPConnection(api.sock)
    c.request("PATCH", url, body=json.dumps({"config": {"limits.memory": "256M",
                                                        "limits.cpu": "2"}}),
              headers={"If-Match": etag})
    r = c.getresponse()
    patched = json.loads(r.read())["metadata"]
    assert r.status == 200 and r.getheader("ETag") != etag
    assert patched["config"]["memory"] == 256 << 20 and patched["config"]["cpus"] == 2
    ev.wait_for("instance-updated", url)
    c.request("PATCH", url, body=json.dumps({"config": {"limits.cpu": "1"}}),
              headers={"If-Match": etag})  # stale: the config changed since
    r = c.getresponse()
    assert r.status == 412 and "changed since" in json.loads(r.read())["error"]
    c.close()
    assert api.ok("GET", url)["config"]["cpus"] == 2

    # logs: the console output, as text
    deadline = time.monotonic() + 5
    while "hello from web" not in api.request("GET", url + "/logs")[1].decode():
        assert time.monotonic() < deadline
        time.sleep(0.1)

    # the state verbs
    api.run_op("PUT", url + "/state", {"action": "stop", "timeout": 10})
    ev.wait_for("instance-stopped", url)
    state = api.ok("GET", url + "/state")
    assert state["status"] == "stopped" and state["exit_code"] == 3
    api.run_op("PUT", url + "/state", {"action": "start"})
    ev.wait_for("instance-started", url)
    pid = api.ok("GET", url + "/state")["pid"]
    api.run_op("PUT", url + "/state", {"action": "restart", "force": True})
    ev.wait_for("instance-restarted", url)
    assert api.ok("GET", url + "/state")["pid"] != pid

    # snapshots: create, list, get, restore, delete
    api.run_op("POST", url + "/snapshots", {"name": "s1"})
    snap = url + "/snapshots/s1"
    ev.wait_for("instance-snapshot-created", snap)
    assert api.ok("GET", url + "/snapshots") == [snap]
    assert [s["name"] for s in api.ok("GET", url + "/snapshots?recursion=1")] == ["s1"]
    assert api.ok("GET", snap)["stateful"] is False
    api.run_op("POST", snap)
    ev.wait_for("instance-snapshot-restored", snap)
    api.run_op("DELETE", snap)
    ev.wait_for("instance-snapshot-deleted", snap)
    assert api.request("GET", snap)[0] == 404

    # a copy-on-write copy, stopped, of the running instance
    api.run_op("POST", "/1.0/instances", {"name": "web2", "source": {"type": "copy",
                                                                      "instance": "web"}})
    ev.wait_for("instance-created", "/1.0/instances/web2")
    copy = api.ok("GET", "/1.0/instances/web2")
    assert copy["status"] == "stopped" and copy["config"]["memory"] == 256 << 20
    api.run_op("DELETE", "/1.0/instances/web2")

    # delete: refused while running, then forced
    st, j, _ = api.request("DELETE", url)
    assert st == 409 and "running" in j["error"]
    api.run_op("DELETE", url + "?force=1")
    ev.wait_for("instance-deleted", url)
    assert api.request("GET", url)[0] == 404
    assert api.ok("GET", "/1.0/instances") == []
    assert not os.path.exists(os.path.join(api.root, "instances", "web"))

    # the watcher told none of these again
    assert [e for e in ev.items if "context" in e["metadata"]] == []
    # operation events carried each status
    statuses = [e["metadata"]["status"] for e in ev.items if e["type"] == "operation"]
    assert {"pending", "running", "success"} <= set(statuses)
    ev.close()


def test_changes_made_outside_the_api_are_events(api):
    """A workload that ends by itself, and the CLI's launch and delete on
    the daemon's state root, in-process (--local, not through the
    daemon): each is an event ("observed")."""
    ev = Events(api, "?type=lifecycle")
    api.run_op("POST", "/1.0/instances", container_body("brief", ["sh", "-c", "sleep 1"]))
    cli = [binary("cloison"), "--root", api.root, "--local"]
    subprocess.run(cli + ["launch", "--no-network", "busybox", "bycli", "--", "sleep", "100"],
                   check=True, capture_output=True)
    ev.wait_for("instance-created", "/1.0/instances/bycli")
    ev.wait_for("instance-stopped", "/1.0/instances/brief")
    assert api.ok("GET", "/1.0/instances/brief/state")["exit_code"] == 0
    subprocess.run(cli + ["delete", "--force", "bycli"], check=True, capture_output=True)
    ev.wait_for("instance-deleted", "/1.0/instances/bycli")
    observed = [(e["metadata"]["action"], e["metadata"]["source"]) for e in ev.items
                if e["metadata"].get("context") == {"observed": True}]
    assert sorted(observed) == sorted([("instance-created", "/1.0/instances/bycli"),
                                       ("instance-stopped", "/1.0/instances/brief"),
                                       ("instance-deleted", "/1.0/instances/bycli")])
    ev.close()


def test_operations_run_in_order_and_pending_ones_cancel(api):
    url = "/1.0/instances/slow"
    # TERM is ignored: a stop waits its whole timeout
    api.run_op("POST", "/1.0/instances", container_body(
        "slow", ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]))
    st, stop, _ = api.request("PUT", url + "/state", {"action": "stop", "timeout": 2})
    assert st == 202
    st, start, _ = api.request("PUT", url + "/state", {"action": "restart"})
    assert st == 202
    st, snap, _ = api.request("POST", url + "/snapshots", {"name": "later"})
    assert st == 202
    # the restart waits for the stop: it is pending and may be cancelled
    time.sleep(0.3)
    st, j, _ = api.request("GET", "/1.0/operations/%s/wait?timeout=0" % stop["metadata"]["id"])
    assert st == 200 and j["metadata"]["status"] == "running"
    st, j, _ = api.request("DELETE", start["operation"])
    assert st == 200 and j["metadata"]["status"] == "cancelled"
    st, j, _ = api.request("DELETE", stop["operation"])
    assert st == 409 and "running" in j["error"]
    t = time.monotonic()
    assert api.wait(stop["operation"])["status"] == "success"
    assert time.monotonic() - t < 10
    assert api.wait(snap["operation"])["status"] == "success"
    assert api.ok("GET", start["operation"])["status"] == "cancelled"
    assert api.ok("GET", url + "/state")["status"] == "stopped"
    # the list, as URLs and as objects
    ids = [o["id"] for o in api.ok("GET", "/1.0/operations?recursion=1")]
    assert stop["metadata"]["id"] in ids and start["metadata"]["id"] in ids
    assert "/1.0/operations/" + snap["metadata"]["id"] in api.ok("GET", "/1.0/operations")
    # a failing operation carries the library's message
    st, j, _ = api.request("PUT", url + "/state", {"action": "start"})
    assert st == 202
    st, j, _ = api.request("POST", url + "/snapshots", {"name": "later"})
    op = api.wait(j["operation"])
    assert op["status"] == "failure" and "later" in op["err"]
    assert api.request("GET", "/1.0/operations/nosuchid")[0] == 404


@pytest.mark.skipif(not os.path.exists("/dev/kvm"), reason="no /dev/kvm on this host")
def test_vm_through_the_api(api):
    """A tiny test guest (the host's KVM runs no stock kernel): created,
    run to its end, started again, deleted."""
    from test_cli_vm import guest
    url = "/1.0/instances/vm1"
    api.run_op("POST", "/1.0/instances", container_body(
        "vm1", type="virtual-machine", kernel=guest("hello"), config={"limits.memory": "64M"}))
    deadline = time.monotonic() + 20
    while api.ok("GET", url + "/state")["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert api.ok("GET", url)["kind"] == "vm"
    assert api.ok("GET", url + "/state")["exit_code"] == 0
    assert b"hello from the cloison guest" in api.request("GET", url + "/logs")[1]
    api.run_op("PUT", url + "/state", {"action": "start"})
    api.run_op("DELETE", url + "?force=1")
    assert api.request("GET", url)[0] == 404


def test_bad_requests(api):
    def err(method, path, body=None, raw=None, status=400):
        st, j, h = api.request(method, path, body, raw)
        assert st == status, (method, path, st, j)
        assert j["type"] == "error" and j["error_code"] == status and j["error"]
        return j, h

    j, _ = err("POST", "/1.0/instances", raw='{"name": "x", ')
    assert "request body:1:" in j["error"]
    j, _ = err("POST", "/1.0/instances", raw='["not", "an object"]')
    assert "expected a JSON object" in j["error"]
    j, _ = err("POST", "/1.0/instances", {"name": "x", "source": {"type": "image", "image": "busybox", "tag": 1}})
    assert j["path"] == "source.tag" and "unknown field" in j["error"]
    j, _ = err("POST", "/1.0/instances", container_body("x", config={"limits.cpu": True}))
    assert j["path"] == 'config["limits.cpu"]' and "got boolean" in j["error"]
    j, _ = err("POST", "/1.0/instances", container_body("x", config={"limits.disk": "1G"}))
    assert j["path"] == 'config["limits.disk"]'
    j, _ = err("POST", "/1.0/instances", container_body("x", command=["sleep", 5]))
    assert j["path"] == "command[1]" and "expected a string, got integer" in j["error"]
    j, _ = err("POST", "/1.0/instances", container_body("x", environment={"A": 1}))
    assert j["path"] == "environment.A"
    j, _ = err("POST", "/1.0/instances", {"source": {"type": "image", "image": "busybox"}})
    assert j["path"] == "name" and "required" in j["error"]
    j, _ = err("POST", "/1.0/instances", container_body("bad/name"))
    assert j["path"] == "name"
    j, _ = err("POST", "/1.0/instances", container_body("x", type="pod"))
    assert j["path"] == "type"
    j, _ = err("POST", "/1.0/instances", {"name": "x", "source": {"type": "image", "image": "nosuchimage"}})
    assert j["path"] == "source.image" and "nosuchimage" in j["error"]
    j, _ = err("POST", "/1.0/instances", {"name": "x", "source": {"type": "copy"}})
    assert j["path"] == "source.instance"
    j, _ = err("POST", "/1.0/instances", {"name": "x", "source": {"type": "copy", "instance": "ghost"}})
    assert j["path"] == "source.instance" and "ghost" in j["error"]
    j, _ = err("POST", "/1.0/instances", {"name": "x", "source": {"type": "copy", "instance": "a"},
                                          "command": ["true"]})
    assert j["path"] == "command"
    j, _ = err("POST", "/1.0/instances", {"name": "x", "source": {"type": "image"}})
    assert j["path"] == "source.image"
    j, _ = err("POST", "/1.0/instances", {"name": "x", "source": {"type": "snapshot"}})
    assert j["path"] == "source.type"
    j, _ = err("POST", "/1.0/instances", container_body("x", config={"limits.memory": "12Q"}))
    assert j["path"] == 'config["limits.memory"]'
    j, _ = err("GET", "/1.0/instances?recursion=2")
    assert "recursion" in j["error"]
    # nothing was made by any of these
    assert api.ok("GET", "/1.0/instances") == []
    assert api.ok("GET", "/1.0/operations") == []

    j, _ = err("GET", "/1.0/instances/ghost", status=404)
    assert "ghost" in j["error"]
    err("PUT", "/1.0/instances/ghost/state", {"action": "start"}, status=404)
    err("DELETE", "/1.0/instances/ghost", status=404)
    err("GET", "/1.0/instances/ghost/snapshots", status=404)
    err("GET", "/1.0/nothing", status=404)
    err("GET", "/1.0/images/nosuchimage", status=404)
    j, h = err("PUT", "/1.0/instances", {}, status=405)
    assert h["Allow"] == "GET, POST"
    j, _ = err("PUT", "/1.0/instances/ghost/state", {"action": "fly"})
    assert j["path"] == "action"
    j, _ = err("PUT", "/1.0/instances/ghost/state", {"action": "stop", "timeout": "5"})
    assert j["path"] == "timeout"
    j, _ = err("PATCH", "/1.0/instances/ghost", {"config": {"limits.swap": "1G"}})
    assert j["path"] == 'config["limits.swap"]'

    # 409: a second instance of one name, a start of a running one
    api.run_op("POST", "/1.0/instances", container_body("dup", ["sleep", "1000"]))
    err("POST", "/1.0/instances", container_body("dup"), status=409)
    err("PUT", "/1.0/instances/dup/state", {"action": "start"}, status=409)
    j, _ = err("PATCH", "/1.0/instances/dup", {"config": {"limits.cpu": "0"}})
    assert j["path"] == 'config["limits.cpu"]'


def test_library_errors_get_their_kinds_status(api):
    """The status of an error the library raises comes from its kind, set
    where it was raised (not from words of its message)."""
    def status(method, path, body=None):
        st, j, _ = api.request(method, path, body)
        assert j["type"] == "error" and j["error_code"] == st, j
        return st, j

    api.run_op("POST", "/1.0/instances", container_body("user", ["sleep", "1000"]))
    # not found (the store, the image store, networks)
    assert status("GET", "/1.0/instances/ghost")[0] == 404
    assert status("GET", "/1.0/images/nosuchimage")[0] == 404
    assert status("DELETE", "/1.0/networks/ghost")[0] == 404
    # conflict: an image in use
    st, j = status("DELETE", "/1.0/images/busybox:latest")
    assert st == 409 and "is used by instance `user`" in j["error"]
    # invalid: a value the manager refuses, named by its field
    st, j = status("PATCH", "/1.0/instances/user", {"config": {"limits.memory": "1M"}})
    assert st == 400 and j["path"] == 'config["limits.memory"]' and "at least 4M" in j["error"]
    api.run_op("DELETE", "/1.0/instances/user?force=1")


def test_oversized_bodies_get_413(api, tmp_path):
    big = tmp_path / "big.json"
    big.write_text('{"name": "%s"}' % ("a" * (2 << 20)))
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
        out = api.curl("-X", "POST", "-H", "Content-Type: application/json", *extra,
                       "--data-binary", "@" + str(big), "-w", "\n%{http_code}",
                       "http://cloison/1.0/instances")
        body, code = out.rsplit("\n", 1)
        assert code == "413", out[:300]
        assert json.loads(body)["error_code"] == 413
    # the daemon still serves
    assert api.ok("GET", "/1.0")["api_version"] == "1.0"


def test_images_through_the_api(api):
    [img] = api.ok("GET", "/1.0/images?recursion=1")
    assert img["names"] == ["busybox:latest"] and img["uses"] == 0
    assert api.ok("GET", "/1.0/images") == ["/1.0/images/" + img["id"]]
    assert img["id"] in json.dumps(api.ok("GET", "/1.0/images/busybox"))
    api.run_op("POST", "/1.0/instances", container_body("user", ["sleep", "1000"]))
    st, j, _ = api.request("DELETE", "/1.0/images/" + img["id"])
    assert st == 409 and "user" in j["error"]
    api.run_op("DELETE", "/1.0/instances/user?force=1")
    api.ok("DELETE", "/1.0/images/" + img["id"])
    assert api.ok("GET", "/1.0/images") == []
    assert api.request("DELETE", "/1.0/images/" + img["id"])[0] == 404


def test_image_import_from_a_server_path(api, tmp_path, busybox_rootfs):
    tar = str(tmp_path / "rootfs.tar")
    subprocess.run(["tar", "-C", busybox_rootfs, "-cf", tar, "."], check=True)
    ev = Events(api, "?type=operation")
    op = api.run_op("POST", "/1.0/images", {"source": {"type": "path", "path": tar},
                                            "name": "mybox:1"})
    image_id = op["metadata"]["id"]
    assert api.ok("GET", "/1.0/images/mybox:1")["Id"] == image_id
    # progress came as operation events
    progress = [e["metadata"]["metadata"]["progress"] for e in ev.items
                if (e["metadata"]["metadata"] or {}).get("progress")]
    assert progress and progress[-1]["finished"]
    ev.close()
    # and an instance runs from it
    api.run_op("POST", "/1.0/instances", {"name": "fromtar", "no_network": True,
                                          "source": {"type": "image", "image": "mybox:1"},
                                          "command": ["sleep", "100"]})
    api.run_op("DELETE", "/1.0/instances/fromtar?force=1")
    for body, path in (({"source": {"type": "path", "path": "rel/x.tar"}}, "source.path"),
                       ({"source": {"type": "path"}}, "source.path"),
                       ({"source": {"type": "registry", "ref": "UPPER/x"}}, "source.ref"),
                       ({"source": {"type": "ftp"}}, "source.type"),
                       ({"source": {"type": "path", "path": tar}, "name": "Bad:Name:"}, "name")):
        st, j, _ = api.request("POST", "/1.0/images", body)
        assert st == 400 and j["path"] == path, (body, j)
    logs = Events(api, "?type=logging")
    st, j, _ = api.request("POST", "/1.0/images", {"source": {"type": "path",
                                                              "path": "/nonexistent.tar"}})
    op = api.wait(j["operation"])
    assert op["status"] == "failure" and "nonexistent.tar" in op["err"]
    # the daemon's log line about it is a `logging` event
    deadline = time.monotonic() + 10
    while not any("nonexistent.tar" in e["metadata"]["message"] for e in logs.items):
        assert time.monotonic() < deadline, logs.items
        time.sleep(0.05)
    e = next(e for e in logs.items if "nonexistent.tar" in e["metadata"]["message"])
    assert e["type"] == "logging" and e["metadata"]["level"] == "info", e
    assert e["metadata"]["message"].startswith("operation %s " % op["id"]), e
    assert {x["type"] for x in logs.items} == {"logging"}
    logs.close()
    st, j, _ = api.request("GET", "/1.0/events?type=gossip")
    assert st == 400 and "unknown event type `gossip` (lifecycle, operation, logging)" in j["error"]


def test_image_pull_from_a_registry(tmp_path, registry):
    # the registry listens on the host's loopback: this daemon stays in
    # the host's network namespace (it makes no network)
    d = Daemon(tmp_path, netns=False)
    d.start()
    try:
        ref = registry["open"] + "/test/single:v1"
        op = d.run_op("POST", "/1.0/images", {"source": {"type": "registry", "ref": ref}})
        assert op["metadata"]["id"] == registry["single_config"]
        # a reference holds '/': percent-encoded in the path
        assert d.ok("GET", "/1.0/images/" + urllib.parse.quote(ref, safe=""))["Id"] == \
            registry["single_config"]
        st, j, _ = d.request("POST", "/1.0/images", {"source": {
            "type": "registry", "ref": registry["open"] + "/test/nosuch:v1"}})
        op = d.wait(j["operation"])
        assert op["status"] == "failure" and "nosuch" in op["err"]
    finally:
        d.stop()


def test_networks_through_the_api(api):
    name = "apinet%d" % (os.getpid() % 10000)
    ev = Events(api, "?type=lifecycle")
    net = api.ok("POST", "/1.0/networks", {"name": name, "subnet": "10.231.7.0/24",
                                            "mode": "isolated", "mtu": 1400}, status=201)
    assert net["name"] == name and net["subnet"] == "10.231.7.0/24" and net["mode"] == "isolated"
    ev.wait_for("network-created", "/1.0/networks/" + name)
    assert "/1.0/networks/" + name in api.ok("GET", "/1.0/networks")
    assert [n["name"] for n in api.ok("GET", "/1.0/networks?recursion=1")] == [name]
    assert api.ok("GET", "/1.0/networks/" + name)["mtu"] == 1400
    st, j, _ = api.request("POST", "/1.0/networks", {"name": name + "b", "mode": "bridge"})
    assert st == 400 and j["path"] == "mode"
    st, j, _ = api.request("POST", "/1.0/networks", {"name": name + "b", "vlan": 5000})
    assert st == 400 and j["path"] == "vlan"
    st, j, _ = api.request("POST", "/1.0/networks", {"name": name})
    assert st == 409, j
    api.ok("DELETE", "/1.0/networks/" + name)
    ev.wait_for("network-deleted", "/1.0/networks/" + name)
    assert api.request("GET", "/1.0/networks/" + name)[0] == 404
    assert api.request("DELETE", "/1.0/networks/" + name)[0] == 404
    # only lifecycle events on this stream
    assert {e["type"] for e in ev.items} == {"lifecycle"}
    ev.close()


def test_events_stream_through_curl(api):
    p = subprocess.Popen(["curl", "-sSN", "--unix-socket", api.sock,
                          "http://cloison/1.0/events?type=lifecycle"],
                         stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        api.run_op("POST", "/1.0/instances", container_body("ev", ["sleep", "1000"]))
        api.run_op("DELETE", "/1.0/instances/ev?force=1")
        lines = [json.loads(p.stdout.readline()) for _ in range(2)]
        assert [l["metadata"]["action"] for l in lines] == ["instance-created", "instance-deleted"]
        assert all(l["timestamp"].endswith("Z") for l in lines)
    finally:
        p.kill()
        p.wait()
    st, j, _ = api.request("GET", "/1.0/events?type=nonsense")
    assert st == 400


class WebSocket:
    """The least of RFC 6455 a test needs, over the Unix socket."""

    def __init__(self, sock_path, path, conn=None):
        """conn: a connected socket to use instead (a TLS one, say)."""
        if conn is None:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(20)
            conn.connect(sock_path)
        self.s = conn
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: cloison\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.s.recv(1)
            assert chunk, head
            head += chunk
        lines = head.decode().split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101"), head
        headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if l}
        want = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert headers["sec-websocket-accept"] == want and headers["upgrade"] == "websocket"

    def _exact(self, n):
        b = b""
        while len(b) < n:
            chunk = self.s.recv(n - len(b))
            assert chunk, "websocket closed"
            b += chunk
        return b

    def recv(self):
        """(opcode, payload) of the next frame from the server."""
        h = self._exact(2)
        assert not h[1] & 0x80  # the server does not mask
        n = h[1] & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._exact(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._exact(8))[0]
        return h[0] & 0x0F, self._exact(n)

    def send(self, opcode, payload=b""):
        mask = os.urandom(4)
        self.s.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
                       + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def test_events_as_a_websocket(api):
    ws = WebSocket(api.sock, "/1.0/events?type=lifecycle")
    ws.send(9, b"hi")
    assert ws.recv() == (10, b"hi")  # ping, pong
    api.run_op("POST", "/1.0/instances", container_body("wsev", ["sleep", "1000"]))
    op, payload = ws.recv()
    ev = json.loads(payload)
    assert op == 1 and ev["metadata"] == {"action": "instance-created",
                                          "source": "/1.0/instances/wsev"}
    ws.send(8, b"\x03\xe8")
    assert ws.recv()[0] == 8  # the close is answered
    ws.s.close()
    # a daemon stopping closes its websockets with 1001
    ws = WebSocket(api.sock, "/1.0/events")
    api.run_op("DELETE", "/1.0/instances/wsev?force=1")
    api.stop()
    frames = []
    while True:
        op, payload = ws.recv()
        frames.append(op)
        if op == 8:
            assert payload == b"\x03\xe9"
            break
    assert frames[-1] == 8


def test_stalled_client_does_not_block_others(tmp_path):
    d = Daemon(tmp_path, ["--timeout", "2"])
    d.start()
    try:
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stalled.connect(d.sock)
        stalled.sendall(b"POST /1.0/instances HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        t = time.monotonic()
        assert d.request("GET", "/1.0")[0] == 200
        assert time.monotonic() - t < 1
        # the stalled one is dropped after the timeout
        stalled.settimeout(10)
        t = time.monotonic()
        assert stalled.recv(100) == b""
        assert 1 < time.monotonic() - t < 8
    finally:
        d.stop()


def nofile_limits(pid):
    for line in open("/proc/%d/limits" % pid):
        if line.startswith("Max open files"):
            return [int(x) for x in line.split()[3:5]]


def test_thousand_idle_connections_do_not_stop_the_api(tmp_path):
    """The daemon starts with a soft open-files limit of 256 and raises it
    to the hard limit itself."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 1100:
        pytest.skip("the hard open-files limit is %d: 1000 connections cannot be held" % hard)
    # the test's own clients need the descriptors too
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    d = Daemon(tmp_path)
    real_popen = subprocess.Popen

    def low_popen(*a, **kw):
        kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        return real_popen(*a, **kw)

    subprocess.Popen = low_popen
    try:
        d.start()
    finally:
        subprocess.Popen = real_popen
    idle = []
    try:
        assert nofile_limits(d.proc.pid) == [hard, hard]
        for _ in range(1000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            idle.append(s)
        times = []
        for _ in range(50):
            t = time.monotonic()
            assert d.request("GET", "/1.0")[0] == 200
            times.append(time.monotonic() - t)
        assert sorted(times)[25] < 0.05, times
    finally:
        for s in idle:
            s.close()
        d.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_kill9_during_operation_then_restart(tmp_path):
    d = Daemon(tmp_path)
    d.start()
    try:
        url = "/1.0/instances/survivor"
        d.run_op("POST", "/1.0/instances", container_body(
            "survivor", ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]))
        pid = d.ok("GET", url + "/state")["pid"]
        st, j, _ = d.request("PUT", url + "/state", {"action": "stop", "timeout": 60})
        assert st == 202
        op = j["operation"]
        time.sleep(0.5)
        assert d.ok("GET", op)["status"] == "running"
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        assert os.path.exists(d.sock)  # stale: the restart replaces it
        d.start()
        state = d.ok("GET", url + "/state")
        assert state["status"] == "running" and state["pid"] == pid and pid_alive(pid)
        failed = d.ok("GET", op)
        assert failed["status"] == "failure" and "interrupted" in failed["err"]
        assert "interrupted" in open(d.log).read()
        d.run_op("DELETE", url + "?force=1")
        assert not pid_alive(pid)
    finally:
        d.stop()


@pytest.mark.parametrize("delay", [0.02, 0.08, 0.2])
def test_kill9_during_create_leaves_a_consistent_state(tmp_path, delay):
    """Killed at some point of a create: after the restart, either the
    operation succeeded and the instance runs, or it failed and nothing
    of the instance is left (the manager's intents undo it)."""
    d = Daemon(tmp_path)
    d.start()
    try:
        st, j, _ = d.request("POST", "/1.0/instances", container_body("half", ["sleep", "1000"]))
        assert st == 202
        time.sleep(delay)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        d.start()
        op = d.ok("GET", j["operation"])
        print("killed after %.2f s: %s" % (delay, op["status"]))
        st, info, _ = d.request("GET", "/1.0/instances/half")
        if op["status"] == "success":
            assert st == 200 and info["metadata"]["status"] == "running"
            d.run_op("DELETE", "/1.0/instances/half?force=1")
        else:
            assert op["status"] == "failure" and "interrupted" in op["err"]
            assert st == 404, info
            assert not os.path.exists(os.path.join(d.root, "instances", "half"))
        assert d.ok("GET", "/1.0/instances") == []
    finally:
        d.stop()


def test_sigterm_ends_the_daemon_cleanly(tmp_path):
    d = Daemon(tmp_path)
    d.start()
    ev = subprocess.Popen(["curl", "-sSN", "--unix-socket", d.sock, "http://cloison/1.0/events"],
                          stdout=subprocess.PIPE)
    time.sleep(0.3)
    t = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=15) == 0
    assert time.monotonic() - t < 10
    assert not os.path.exists(d.sock)
    assert ev.wait(timeout=10) == 0  # the stream ended, not cut
    # a second daemon on a socket already served is refused
    d.start()
    other = subprocess.run([binary("cloisond"), "--root", d.root, "--socket", d.sock],
                           capture_output=True, text=True, timeout=30)
    assert other.returncode != 0 and "another cloisond" in other.stderr
    # nor when the first one does not answer (stopped): its lock says it lives
    d.proc.send_signal(signal.SIGSTOP)
    try:
        other = subprocess.run([binary("cloisond"), "--root", d.root, "--socket", d.sock],
                               capture_output=True, text=True, timeout=30)
    finally:
        d.proc.send_signal(signal.SIGCONT)
    assert other.returncode != 0 and other.stderr == (
        "cloisond: another cloisond serves `%s` (it holds `%s.lock`)\n" % (d.sock, d.sock))
    assert d.ok("GET", "/1.0")["api_version"] == "1.0"
    d.stop()
    assert not os.path.exists(d.sock + ".lock")


def test_socket_activation(tmp_path):
    """As cloisond.socket starts it: the listening socket is fd 3."""
    sock = str(tmp_path / "activated.sock")
    p = subprocess.Popen(["systemd-socket-activate", "-l", sock, CLOISOND or binary("cloisond"),
                          "--root", str(tmp_path / "root")], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        c = UnixHTTPConnection(sock)
        c.request("GET", "/1.0")
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["metadata"]["api_version"] == "1.0"
        c.close()
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=15) == 0
    assert "the socket systemd passed" in p.stderr.read()


def openapi_routes():
    with open(os.path.join(ROOT, "docs", "api", "openapi.yaml")) as f:
        spec = yaml.safe_load(f)
    assert spec["openapi"].startswith("3.")
    return {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops
            if m in ("get", "put", "post", "patch", "delete")}


def test_openapi_lists_every_route_and_only_those(api):
    served = set()
    for line in subprocess.run([binary("cloisond"), "--routes"], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        method, path = line.split()
        served.add((method, path))
    listed = openapi_routes()
    assert served == listed, ("served, not listed: %s; listed, not served: %s"
                              % (sorted(served - listed), sorted(listed - served)))
    # and the daemon answers each one (a missing resource is fine, a
    # missing route is not)
    for method, path in sorted(listed):
        concrete = (path.replace("{name}", "ghost").replace("{snapshot}", "s")
                    .replace("{image}", "ghost").replace("{network}", "ghost")
                    .replace("{id}", "ghost"))
        if concrete.endswith("/events"):
            continue  # a stream: seen in test_events_stream_through_curl
        st, j, _ = api.request(method, concrete, {} if method in ("POST", "PUT", "PATCH") else None)
        assert st != 405, (method, path, j)
        assert not (st == 404 and "unknown API path" in j["error"]), (method, path, j)
