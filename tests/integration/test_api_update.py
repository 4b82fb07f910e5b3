# SPDX-License-Identifier: Apache-2.0
"""Issue 10's last points, through cloisond's real Unix socket: PUT of a
whole instance (the same change as PATCH, with If-Match), image import
by upload (curl and the CLI streaming the archive, a size cap, a digest
check, a client gone mid-body: nothing left under the root), and the
cancel of running operations (a pull from a registry that stalls, the
test's own HTTP server speaking the distribution API)."""
import glob
import gzip
import hashlib
import http.server
import json
import os
import socket
import subprocess
import tarfile
import threading
import time

import pytest

from cloison_cli import binary
from test_api import Daemon, Events, UnixHTTPConnection, api, container_body  # noqa: F401
from test_image_registry import free_port


def tag(root):
    h = 2166136261
    for b in os.path.realpath(root).encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return "%08x" % h


def limit_file(root, name, v1, v2):
    leaf = "cl-%s-%s" % (tag(root), name)
    for d in glob.glob("/sys/fs/cgroup/*/cloison/" + leaf) + \
            glob.glob("/sys/fs/cgroup/cloison/" + leaf):
        for f in (v1, v2):
            if os.path.exists(os.path.join(d, f)):
                return open(os.path.join(d, f)).read().strip()
    return None


def put(d, url, body, if_match=None):
    c = UnixHTTPConnection(d.sock)
    c.request("PUT", url, body=json.dumps(body),
              headers=dict({"Content-Type": "application/json"},
                           **({"If-Match": if_match} if if_match else {})))
    r = c.getresponse()
    j = json.loads(r.read())
    c.close()
    return r.status, j, r.getheader("ETag")


# ---- PUT /1.0/instances/NAME ----

def test_put_replaces_the_writable_config(api):
    d = api
    url = "/1.0/instances/p"
    ev = Events(d, "?type=lifecycle")
    d.run_op("POST", "/1.0/instances", container_body(
        "p", ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"],
        config={"limits.memory": "128M", "limits.cpu": 1}))
    info = d.ok("GET", url)
    assert info["config"]["memory"] == 128 << 20 and info["config"]["cpus"] == 1
    etag = d.request("GET", url)[2]["ETag"]

    # limits.memory replaced, limits.cpu left out: back to no limit; live
    st, j, etag2 = put(d, url, {"config": {"limits.memory": "256M"}}, etag)
    assert st == 200, j
    assert j["metadata"]["config"]["memory"] == 256 << 20
    assert j["metadata"]["config"]["cpus"] == 0
    assert etag2 and etag2 != etag
    ev.wait_for("instance-updated", url)
    mem = limit_file(d.root, "p", "memory.limit_in_bytes", "memory.max")
    if mem is not None:
        assert mem == str(256 << 20)
        quota = limit_file(d.root, "p", "cpu.cfs_quota_us", "cpu.max")
        assert quota.split()[0] in ("-1", "max"), quota

    # the same ETag again: the config changed since -> 412, nothing changed
    st, j, _ = put(d, url, {"config": {"limits.cpu": 2}}, etag)
    assert st == 412 and "changed since" in j["error"], j
    assert d.ok("GET", url)["config"]["cpus"] == 0

    # an empty document: every writable key to its default, lifted live
    st, j, etag3 = put(d, url, {}, etag2)
    assert st == 200, j
    assert j["metadata"]["config"]["memory"] == 0 and j["metadata"]["config"]["cpus"] == 0
    mem = limit_file(d.root, "p", "memory.limit_in_bytes", "memory.max")
    if mem is not None:
        assert mem == "max" or int(mem) > 1 << 40, mem

    # GET's document sent back with a change of config: its read-only
    # fields are accepted as they are
    doc = d.ok("GET", url)
    doc["config"] = {"limits.cpu": "2", "limits.memory": "64M"}
    st, j, _ = put(d, url, doc)
    assert st == 200, j
    assert j["metadata"]["config"]["cpus"] == 2
    assert j["metadata"]["config"]["memory"] == 64 << 20

    # read-only fields changed, unknown fields, bad keys and values: 400
    # naming the field, and nothing applied
    for body, path in [({"name": "other"}, "name"),
                       ({"status": "stopped", "config": {}}, "status"),
                       ({"kind": "vm"}, "kind"),
                       ({"colour": "blue"}, "colour"),
                       ({"config": {"limits.swap": "1G"}}, 'config["limits.swap"]'),
                       ({"config": {"limits.cpu": "0"}}, 'config["limits.cpu"]'),
                       ({"config": {"limits.memory": True}}, 'config["limits.memory"]'),
                       ({"config": "x"}, "config")]:
        st, j, _ = put(d, url, body)
        assert st == 400 and j["path"] == path, (body, j)
    assert d.ok("GET", url)["config"]["cpus"] == 2
    st, j, _ = put(d, "/1.0/instances/ghost", {})
    assert st == 404, j

    # a running stop (TERM ignored: it waits its timeout) has no
    # cancellation point: 409, and it says so
    st, stop, _ = d.request("PUT", url + "/state", {"action": "stop", "timeout": 3})
    assert st == 202
    time.sleep(0.3)
    op = d.ok("GET", stop["operation"])
    assert op["status"] == "running" and op["may_cancel"] is False
    st, j, _ = d.request("DELETE", stop["operation"])
    assert st == 409 and "cannot be cancelled" in j["error"], j
    assert d.wait(stop["operation"])["status"] == "success"
    ev.close()


# ---- image upload ----

@pytest.fixture
def rootfs_tar(tmp_path, busybox_rootfs):
    path = str(tmp_path / "mybox.tar")
    with tarfile.open(path, "w") as t:
        t.add(busybox_rootfs, arcname=".")
    return path


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def left_under(root):
    """What uploads left: files under ROOT/uploads and the store's tmp/."""
    return (sorted(glob.glob(os.path.join(root, "uploads", "**"), recursive=True))[1:]
            + sorted(glob.glob(os.path.join(root, "images", "tmp", "*"))))


def curl_upload(d, path, query="", headers=()):
    args = ["curl", "-sS", "--unix-socket", d.sock, "-X", "POST",
            "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + path,
            "-w", "\n%{http_code}", "http://cloison/1.0/images" + query]
    for h in headers:
        args[1:1] = ["-H", h]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    body, code = p.stdout.rsplit("\n", 1)
    return int(code), json.loads(body)


def test_image_upload(rootfs_tar, tmp_path):
    d = Daemon(tmp_path, extra=["--upload-limit", "8M"])
    d.start()
    try:
        upload_checks(d, rootfs_tar, tmp_path)
    finally:
        d.stop()


def upload_checks(d, rootfs_tar, tmp_path):
    size = os.path.getsize(rootfs_tar)
    assert size < 8 << 20
    digest = "sha256:" + sha(rootfs_tar)

    # curl through the socket: 202, an operation importing it
    code, j = curl_upload(d, rootfs_tar, "?name=up:1", ["X-Cloison-Digest: " + digest])
    assert code == 202, j
    assert j["metadata"]["metadata"] == {"sha256": digest[7:], "size": size}
    op = d.wait(j["operation"])
    assert op["status"] == "success", op
    image_id = op["metadata"]["id"]
    assert "up:1" in d.ok("GET", "/1.0/images/" + image_id)["Names"]
    assert left_under(d.root) == []

    # the CLI, through the daemon serving its root: the file is uploaded
    # (the daemon's log shows the upload request), named after the file
    p = subprocess.run([binary("cloison"), "--root", d.root, "image", "import", rootfs_tar],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == image_id
    assert "POST /1.0/images?filename=mybox.tar: 202" in open(d.log).read()
    assert "mybox:latest" in d.ok("GET", "/1.0/images/" + image_id)["Names"]
    assert left_under(d.root) == []

    # a wrong digest: 400 naming it, nothing left; a malformed one too
    code, j = curl_upload(d, rootfs_tar, "", ["X-Cloison-Digest: sha256:" + "0" * 64])
    assert code == 400 and j["path"] == "X-Cloison-Digest" and digest in j["error"], j
    code, j = curl_upload(d, rootfs_tar, "?digest=sha256:" + "1" * 64)
    assert code == 400 and j["path"] == "digest", j
    code, j = curl_upload(d, rootfs_tar, "", ["X-Cloison-Digest: md5:abc"])
    assert code == 400 and j["path"] == "X-Cloison-Digest", j
    assert left_under(d.root) == []

    # over the cap: 413 (announced, or found on the way when chunked) and
    # nothing left
    big = str(tmp_path / "big.tar")
    with open(big, "wb") as f:
        f.write(os.urandom(9 << 20))
    code, j = curl_upload(d, big)
    assert code == 413 and "--upload-limit" in j["error"], j
    code, j = curl_upload(d, big, "", ["Transfer-Encoding: chunked"])
    assert code == 413 and "--upload-limit" in j["error"], j
    assert left_under(d.root) == []

    # an ordinary JSON body keeps its limit (1 MiB)
    js = str(tmp_path / "big.json")
    with open(js, "wb") as f:
        f.write(b"{" + b" " * (2 << 20) + b"}")
    code, j = curl_upload(d, js, "", ["Content-Type: application/json"])
    assert code == 413 and "request body" in j["error"], j

    # a client gone mid-body: nothing left, and the daemon answers
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.sock)
    s.sendall(b"POST /1.0/images HTTP/1.1\r\nHost: cloison\r\n"
              b"Content-Type: application/octet-stream\r\nContent-Length: 4000000\r\n\r\n")
    s.sendall(os.urandom(1 << 20))
    deadline = time.monotonic() + 10
    while not glob.glob(os.path.join(d.root, "uploads", "*", "*")):
        assert time.monotonic() < deadline, "the upload's file never appeared"
        time.sleep(0.05)
    s.close()
    deadline = time.monotonic() + 10
    while left_under(d.root):
        assert time.monotonic() < deadline, left_under(d.root)
        time.sleep(0.05)
    assert d.ok("GET", "/1.0")["api_version"] == "1.0"


# ---- cancel of a running pull ----

class StallingRegistry:
    """The distribution API for one image, test/stall:v1, whose layer blob
    sends its first 64 KiB and then nothing (until the test ends)."""

    def __init__(self):
        layer = gzip.compress(os.urandom(4 << 20))
        self.layer = layer
        self.layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
        self.config = config
        self.config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": self.config_digest, "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": self.layer_digest, "size": len(layer)}]}).encode()
        self.stalled = threading.Event()
        self.done = threading.Event()
        reg = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, body, ctype):
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Content-Digest",
                                 "sha256:" + hashlib.sha256(body).hexdigest())
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(body)

            def do_GET(self):
                p = self.path
                if p == "/v2/":
                    self.send(b"{}", "application/json")
                elif p == "/v2/test/stall/manifests/v1":
                    self.send(reg.manifest, "application/vnd.oci.image.manifest.v1+json")
                elif p == "/v2/test/stall/blobs/" + reg.config_digest:
                    self.send(reg.config, "application/octet-stream")
                elif p == "/v2/test/stall/blobs/" + reg.layer_digest:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(reg.layer)))
                    self.end_headers()
                    self.wfile.write(reg.layer[:64 << 10])
                    self.wfile.flush()
                    reg.stalled.set()
                    reg.done.wait(120)
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            do_HEAD = do_GET

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.done.set()
        self.server.shutdown()
        self.server.server_close()


def test_cancel_a_running_pull(tmp_path):
    reg = StallingRegistry()
    # the registry listens on the host's loopback: this daemon stays in
    # the host's network namespace (it makes no network)
    d = Daemon(tmp_path, netns=False)
    d.start()
    try:
        ev = Events(d, "?type=operation")
        ref = "127.0.0.1:%d/test/stall:v1" % reg.port
        st, j, _ = d.request("POST", "/1.0/images", {"source": {"type": "registry", "ref": ref}})
        assert st == 202, j
        assert reg.stalled.wait(30), "the pull never asked for the layer"
        # (the store made at the pull's start holds the built-in busybox)
        layers = sorted(glob.glob(os.path.join(d.root, "images", "layers", "*")))
        op = d.ok("GET", j["operation"])
        assert op["status"] == "running" and op["may_cancel"] is True, op
        # a partial blob exists while it downloads
        assert glob.glob(os.path.join(d.root, "images", "tmp", "*"))
        t = time.monotonic()
        st, c, _ = d.request("DELETE", j["operation"])
        assert st == 200 and c["metadata"]["status"] == "cancelled", c
        assert c["metadata"]["may_cancel"] is False
        assert time.monotonic() - t < 10
        assert d.ok("GET", j["operation"])["status"] == "cancelled"
        # the operation event of its end, and nothing left behind
        deadline = time.monotonic() + 10
        while not any(e["metadata"]["id"] == op["id"] and e["metadata"]["status"] == "cancelled"
                      for e in ev.items):
            assert time.monotonic() < deadline, ev.items
            time.sleep(0.05)
        assert glob.glob(os.path.join(d.root, "images", "tmp", "*")) == []
        assert sorted(glob.glob(os.path.join(d.root, "images", "layers", "*"))) == layers
        assert not os.path.exists(os.path.join(d.root, "images", "blobs", "sha256",
                                               reg.layer_digest[7:]))
        assert d.ok("GET", "/1.0/images") == [] or \
            all(reg.config_digest[7:] not in u for u in d.ok("GET", "/1.0/images"))
        # cancelled already: 409; the daemon still answers
        st, j2, _ = d.request("DELETE", j["operation"])
        assert st == 409 and "ended" in j2["error"], j2
        assert d.ok("GET", "/1.0")["api_version"] == "1.0"
        ev.close()
    finally:
        d.stop()
        reg.close()


def test_image_upload_through_a_remote(tmp_path, rootfs_tar):
    """`cloison --remote R image import FILE` uploads over HTTPS; an
    untrusted TLS client's upload is refused before anything is written."""
    from test_api_remote import TLSDaemon, User, token
    a = TLSDaemon(tmp_path, "a")
    a.start()
    try:
        u = User(tmp_path, "alice")
        u.run("remote", "add", "ra", a.url, "--token", token(a, "alice"))
        p = u.run("--remote", "ra", "image", "import", rootfs_tar, "far:1")
        image_id = p.stdout.strip().splitlines()[-1]
        assert "far:1" in a.ok("GET", "/1.0/images/" + image_id)["Names"]
        assert "POST /1.0/images?filename=mybox.tar&name=far%3A1 from" in open(a.log).read()
        assert left_under(a.root) == []
        # no client certificate: not streamed, its body held under
        # --body-limit (413 here, before it is read; 403 when smaller)
        p = subprocess.run(["curl", "-sS", "-k", "-X", "POST", "-H",
                            "Content-Type: application/octet-stream", "--data-binary",
                            "@" + rootfs_tar, a.url + "/1.0/images"],
                           capture_output=True, text=True, timeout=60)
        assert json.loads(p.stdout)["error_code"] == 413, p.stdout
        assert left_under(a.root) == []
    finally:
        a.stop()


def test_cancel_a_running_copy(api):
    """A copy whose tree takes a while: its cp is killed, the copy undone."""
    d = api
    d.run_op("POST", "/1.0/instances", container_body("big", ["sleep", "600"]))
    d.run_op("PUT", "/1.0/instances/big/state", {"action": "stop", "force": True})
    # many small files in its writable layer: cp -a takes seconds
    many = os.path.join(d.root, "instances", "big", "upper", "many")
    os.makedirs(many)
    blob = os.urandom(4096)
    for i in range(15000):
        with open(os.path.join(many, "f%d" % i), "wb") as f:
            f.write(blob)
    ev = Events(d, "?type=operation")
    st, j, _ = d.request("POST", "/1.0/instances",
                         {"name": "big2", "source": {"type": "copy", "instance": "big"}})
    assert st == 202, j
    deadline = time.monotonic() + 20
    while not os.path.isdir(os.path.join(d.root, "instances", "big2", "upper", "many")):
        assert time.monotonic() < deadline, "the copy never began"
        time.sleep(0.01)
    op = d.ok("GET", j["operation"])
    assert op["status"] == "running" and op["may_cancel"] is True, op
    st, c, _ = d.request("DELETE", j["operation"])
    assert st == 200 and c["metadata"]["status"] == "cancelled", c
    deadline = time.monotonic() + 10
    while not any(e["metadata"]["id"] == op["id"] and e["metadata"]["status"] == "cancelled"
                  for e in ev.items):
        assert time.monotonic() < deadline, ev.items
        time.sleep(0.05)
    ev.close()
    # nothing of it left: no instance, no directory; the source intact
    assert d.request("GET", "/1.0/instances/big2")[0] == 404
    assert not os.path.exists(os.path.join(d.root, "instances", "big2"))
    assert d.ok("GET", "/1.0/instances") == ["/1.0/instances/big"]
    assert len(os.listdir(many)) == 15000
    assert d.ok("GET", "/1.0")["api_version"] == "1.0"


def test_cancel_an_upload_import(tmp_path, busybox_rootfs):
    """An uploaded archive being imported: cancelled while it unpacks (or
    before it began), nothing of it is left, neither the upload nor a
    layer."""
    big = str(tmp_path / "big.tar")
    with tarfile.open(big, "w") as t:
        t.add(busybox_rootfs, arcname=".")
        for i in range(6):
            data = str(tmp_path / ("blob%d" % i))
            with open(data, "wb") as f:
                f.write(os.urandom(16 << 20))
            t.add(data, arcname="data/blob%d" % i)
            os.unlink(data)
    d = Daemon(tmp_path)
    d.start()
    try:
        d.ok("GET", "/1.0/images")  # the store made, with the built-in busybox
        layers = sorted(glob.glob(os.path.join(d.root, "images", "layers", "*")))
        code, j = curl_upload(d, big, "?name=big:1")
        assert code == 202, j
        while True:
            op = d.ok("GET", j["operation"])
            if op["status"] != "pending" or op["may_cancel"] is False:
                break
            time.sleep(0.01)
        assert op["status"] == "running" and op["may_cancel"] is True, op
        st, c, _ = d.request("DELETE", j["operation"])
        assert st == 200 and c["metadata"]["status"] == "cancelled", c
        assert left_under(d.root) == []
        assert sorted(glob.glob(os.path.join(d.root, "images", "layers", "*"))) == layers
        assert d.request("GET", "/1.0/images/big:1")[0] == 404
    finally:
        d.stop()
