# SPDX-License-Identifier: Apache-2.0
"""cloisond over TLS 1.3 with client certificates, through the real TLS:
two daemons on one machine (two state roots, two free loopback ports),
curl with --cert/--key, a Python ssl client, and the `cloison` CLI as a
remote client (`remote add`, `--remote`, `NAME:INSTANCE`, `monitor`).
Untrusted clients, trust tokens (used, expired, from another server),
read-only and revoked certificates, TLS 1.2 refused, bad tokens.

The daemons listen on 127.0.0.1 in the host's network namespace (the
CLI, curl and Python must reach both), and every instance is launched
with --no-network, so nothing host-wide is made."""
import base64
import hashlib
import json
import os
import socket
import sqlite3
import ssl
import subprocess
import threading
import time

import pytest

from cloison_cli import binary
from test_api import Daemon, WebSocket


def server_cert(daemon):
    return open(os.path.join(daemon.root, "tls", "server.crt")).read()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TLSDaemon(Daemon):
    """A cloisond serving its Unix socket and TLS on a free loopback port."""

    def __init__(self, tmp_path, name):
        d = tmp_path / name
        d.mkdir()
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.url = "https://" + self.addr
        super().__init__(d, ["--listen", self.addr], netns=False)

    def start(self):
        super().start()
        deadline = time.monotonic() + 10
        while True:  # the TLS listener comes up after the socket
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, open(self.log).read()
                time.sleep(0.05)



class User:
    """A client: its own config dir (client.crt, client.key, config.json)."""

    def __init__(self, tmp_path, name):
        self.config = str(tmp_path / ("cfg-" + name))

    def env(self):
        return dict(os.environ, CLOISON_CONFIG=self.config)

    def run(self, *args, daemon=None, check=True, timeout=120):
        root = ["--root", daemon.root] if daemon else []
        p = subprocess.run([binary("cloison")] + root + [str(a) for a in args],
                           env=self.env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("cloison %s: exit %d: %s" % (" ".join(map(str, args)),
                                                              p.returncode, p.stderr))
        return p

    @property
    def cert(self):
        return os.path.join(self.config, "client.crt")

    @property
    def key(self):
        return os.path.join(self.config, "client.key")

    def remotes(self):
        path = os.path.join(self.config, "config.json")
        if not os.path.exists(path):
            return {}
        return json.load(open(path))["remotes"]


def token(daemon, name, *extra):
    p = User.__new__(User)
    p.config = "/nonexistent-config"
    return p.run("config", "trust", "add", name, *extra, daemon=daemon).stdout.strip()


def curl(daemon, path, user=None, method="GET", body=None):
    """(http status, decoded body) over TLS with the user's certificate."""
    # -k: the name is not checked, the pinned key is
    args = ["curl", "-sS", "--tlsv1.3", "-k", "--pinnedpubkey", pin(server_cert(daemon)),
            "-o", "-", "-w", "\n%{http_code}", "-X", method]
    if user:
        args += ["--cert", user.cert, "--key", user.key]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    p = subprocess.run(args + [daemon.url + path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    text, _, code = p.stdout.rpartition("\n")
    return int(code), json.loads(text)


def pin(pem):
    """curl's --pinnedpubkey of a PEM certificate."""
    der = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem, text=True,
                         stdout=subprocess.PIPE, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=der.encode(),
                          stdout=subprocess.PIPE, check=True).stdout
    return "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def self_signed(tmp_path, name):
    """A certificate of a stranger, made with openssl."""
    crt, key = str(tmp_path / (name + ".crt")), str(tmp_path / (name + ".key"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                    "-subj", "/CN=" + name, "-days", "2"], check=True, capture_output=True)
    return crt, key


def tls_context(user=None, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the server's certificate is checked by pin below
    if max_version:
        ctx.maximum_version = max_version
    if user:
        ctx.load_cert_chain(user.cert, user.key)
    return ctx


class TLSWebSocket(WebSocket):
    """The events websocket over TLS, with the Python ssl module."""

    def __init__(self, daemon, user, path):
        raw = socket.create_connection(("127.0.0.1", daemon.port), timeout=20)
        conn = tls_context(user).wrap_socket(raw)
        assert conn.version() == "TLSv1.3"
        super().__init__(None, path, conn=conn)

    def recv(self):
        """(opcode, payload), or None when the connection is closed."""
        try:
            return super().recv()
        except (AssertionError, ssl.SSLError, ConnectionError):
            return None


@pytest.fixture
def pair(tmp_path):
    """Two TLS daemons, a and b."""
    a, b = TLSDaemon(tmp_path, "a"), TLSDaemon(tmp_path, "b")
    a.start()
    b.start()
    yield a, b
    try:
        a.delete_instances()
        b.delete_instances()
    finally:
        a.stop()
        b.stop()


@pytest.fixture
def trusted(pair, tmp_path):
    """A user trusted by daemon a as remote `ra` (and by b as `rb`)."""
    a, b = pair
    u = User(tmp_path, "alice")
    u.run("remote", "add", "ra", a.url, "--token", token(a, "alice"))
    u.run("remote", "add", "rb", b.url, "--token", token(b, "alice"))
    return u


def test_untrusted_clients_see_only_server_info(pair, tmp_path):
    a, _ = pair
    crt, key = self_signed(tmp_path, "stranger")
    stranger = User.__new__(User)
    stranger.config = str(tmp_path)
    os.rename(crt, str(tmp_path / "client.crt"))
    os.rename(key, str(tmp_path / "client.key"))
    st, j = curl(a, "/1.0", stranger)
    assert st == 200 and j["metadata"]["auth"] == "untrusted"
    assert "environment" not in j["metadata"] and "config" not in j["metadata"]
    for method, path in [("GET", "/1.0/instances"), ("POST", "/1.0/instances"),
                         ("GET", "/1.0/certificates"), ("GET", "/1.0/events"),
                         ("DELETE", "/1.0/certificates/x"), ("GET", "/1.0/nothing-here"),
                         ("PATCH", "/1.0")]:
        st, j = curl(a, path, stranger, method=method, body={} if method != "GET" else None)
        assert st == 403 and "not trusted" in j["error"], (method, path, st, j)
    # a client with no certificate at all: the same
    st, j = curl(a, "/1.0")
    assert st == 200 and j["metadata"]["auth"] == "untrusted"
    assert curl(a, "/1.0/instances")[0] == 403
    # posting anything but a token is refused too
    st, j = curl(a, "/1.0/certificates", stranger, "POST", {"name": "me", "token": True})
    assert st == 403, j
    # the Unix socket stays fully trusted
    assert a.ok("GET", "/1.0")["auth"] == "trusted"


def test_tls_1_2_is_refused(pair):
    a, _ = pair
    raw = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    with pytest.raises(ssl.SSLError):
        tls_context(max_version=ssl.TLSVersion.TLSv1_2).wrap_socket(raw)
    raw.close()
    p = subprocess.run(["curl", "-sS", "-k", "--tls-max", "1.2", a.url + "/1.0"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    # and 1.3 is what is spoken
    raw = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    s = tls_context().wrap_socket(raw)
    assert s.version() == "TLSv1.3"
    s.close()


def test_token_adds_the_client_once(pair, tmp_path):
    a, _ = pair
    alice, mallory = User(tmp_path, "alice"), User(tmp_path, "mallory")
    t = token(a, "alice")
    content = json.loads(base64.b64decode(t))
    assert content["client_name"] == "alice" and len(content["secret"]) == 64
    assert content["fingerprint"] == a.ok("GET", "/1.0")["environment"]["certificate_fingerprint"]
    alice.run("remote", "add", "ra", a.url, "--token", t)
    assert alice.remotes()["ra"]["addr"] == a.url
    assert alice.remotes()["ra"]["certificate"] == server_cert(a)  # pinned
    st, j = curl(a, "/1.0", alice)
    assert st == 200 and j["metadata"]["auth"] == "trusted"
    certs = a.ok("GET", "/1.0/certificates?recursion=1")
    assert [(c["name"], c["restricted"]) for c in certs] == [("alice", False)]
    # the token is spent: another client cannot use it, and nothing is stored
    p = mallory.run("remote", "add", "ra", a.url, "--token", t, check=False)
    assert p.returncode != 0 and "used already" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert mallory.remotes() == {}
    assert len(a.ok("GET", "/1.0/certificates")) == 1
    # the same through the API: a Python ssl client with mallory's certificate
    st, j = curl(a, "/1.0/certificates", mallory, "POST", {"trust_token": t})
    assert st == 403 and "used already" in j["error"]


def test_expired_token_is_refused(pair, tmp_path):
    a, _ = pair
    u = User(tmp_path, "late")
    t = token(a, "late", "--expires", "1s")
    time.sleep(2.2)
    p = u.run("remote", "add", "ra", a.url, "--token", t, check=False)
    assert p.returncode != 0 and "expired" in p.stderr, p.stderr
    assert u.remotes() == {} and a.ok("GET", "/1.0/certificates") == []
    # tokens nobody redeems go when the next one is made
    token(a, "never", "--expires", "1s")
    time.sleep(2.2)  # whole seconds: past its expiry for sure
    token(a, "later")
    db = sqlite3.connect(os.path.join(a.root, "cloison.db"))
    assert db.execute("SELECT name FROM api_trust_tokens").fetchall() == [("later",)]
    db.close()


def test_token_of_another_server_is_not_sent(pair, tmp_path):
    a, b = pair
    u = User(tmp_path, "eve")
    t = token(a, "eve")
    p = u.run("remote", "add", "rb", b.url, "--token", t, check=False)
    assert p.returncode != 0 and "--token" in p.stderr and "not sent" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert u.remotes() == {}
    assert b.ok("GET", "/1.0/certificates") == []
    # the server refuses it as well when a client sends it anyway
    u.run("remote", "list")  # makes the client pair
    st, j = curl(b, "/1.0/certificates", u, "POST", {"trust_token": t})
    assert st == 403 and "another server" in j["error"], j
    # not sent, so still good where it belongs
    u.run("remote", "add", "ra", a.url, "--token", t)


@pytest.mark.parametrize("bad", ["garbage", "", base64.b64encode(b"[1,2]").decode(),
                                 base64.b64encode(b'{"secret": "x"}').decode()])
def test_bad_token_is_one_line_naming_it(pair, tmp_path, bad):
    a, _ = pair
    u = User(tmp_path, "bad")
    p = u.run("remote", "add", "ra", a.url, "--token", bad, check=False)
    assert p.returncode != 0
    assert len(p.stderr.strip().splitlines()) == 1 and "--token" in p.stderr, p.stderr
    assert u.remotes() == {} and a.ok("GET", "/1.0/certificates") == []
    st, j = a.request("POST", "/1.0/certificates", {"trust_token": bad})[:2]
    assert st == 400 and j["path"] == "trust_token", j


def test_remote_verbs_on_two_daemons(pair, trusted):
    a, b = pair
    u = trusted
    u.run("--remote", "ra", "launch", "busybox", "c1", "--no-network", "--", "sleep", "600")
    u.run("launch", "busybox", "rb:c2", "--no-network", "--", "sleep", "600")
    la = json.loads(u.run("--remote", "ra", "list", "--format", "json").stdout)
    lb = json.loads(u.run("list", "rb:", "--format", "json").stdout)
    assert [(i["name"], i["status"]) for i in la] == [("c1", "running")]
    assert [(i["name"], i["status"]) for i in lb] == [("c2", "running")]
    # the table, and each daemon's own view
    assert "c1" in u.run("--remote", "ra", "list").stdout
    assert [i["name"] for i in a.ok("GET", "/1.0/instances?recursion=1")] == ["c1"]
    u.run("stop", "ra:c1", "--timeout", "1")
    assert json.loads(u.run("info", "ra:c1").stdout)["status"] == "stopped"
    u.run("--remote", "ra", "start", "c1")
    assert json.loads(u.run("info", "ra:c1").stdout)["status"] == "running"
    # the default remote
    u.run("remote", "switch", "rb")
    assert u.run("remote", "get-default").stdout.strip() == "rb"
    assert [i["name"] for i in json.loads(u.run("list", "--format", "json").stdout)] == ["c2"]
    rl = json.loads(u.run("remote", "list", "--format", "json").stdout)
    assert {r["name"]: r["default"] for r in rl} == {"local": False, "ra": False, "rb": True}
    u.run("remote", "switch", "local")
    # errors come back as one line
    p = u.run("info", "ra:ghost", check=False)
    assert p.returncode != 0 and "ghost" in p.stderr and len(p.stderr.splitlines()) == 1
    p = u.run("info", "nowhere:c1", check=False)
    assert p.returncode != 0 and "nowhere" in p.stderr
    # images and networks go through the API too: the remote's
    assert "busybox" in u.run("--remote", "ra", "image", "list").stdout
    # verbs that do not go through the API yet are refused, not run locally
    p = u.run("--remote", "ra", "down", check=False)
    assert p.returncode != 0 and "not available on a remote" in p.stderr, p.stderr
    p = u.run("--remote", "ra", "--local", "list", check=False)
    assert p.returncode != 0 and "--local" in p.stderr, p.stderr
    u.run("delete", "ra:c1", "--force")
    u.run("delete", "rb:c2", "--force")
    u.run("remote", "remove", "rb")
    assert list(u.remotes()) == ["ra"]


def test_exec_and_console_on_a_remote(pair, trusted):
    """`cloison exec` and `console` on a remote: the API's websockets over
    TLS (src/cli/exec_client.c), stdin, stdout and stderr apart, the exit
    code; the remote's instance, not a local one."""
    a, b = pair
    u = trusted
    u.run("launch", "busybox", "ra:c1", "--no-network", "--", "sleep", "600")
    p = subprocess.run([binary("cloison"), "exec", "ra:c1", "--", "sh", "-c",
                        "cat; echo err >&2; hostname; exit 3"], input="over tls\n",
                       env=u.env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 3, p.stderr
    assert p.stdout == "over tls\nc1\n" and p.stderr == "err\n"
    p = u.run("--remote", "ra", "exec", "c1", "--", "sh", "-c", "kill -9 $$", check=False)
    assert p.returncode == 137, p.stderr
    big = "x" * 300000
    p = subprocess.run([binary("cloison"), "exec", "ra:c1", "--", "wc", "-c"], input=big,
                       env=u.env(), capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "300000", p.stderr
    # the console, piped
    p = subprocess.run([binary("cloison"), "console", "ra:c1"], input="echo via$((2+3))\nexit\n",
                       env=u.env(), capture_output=True, text=True, timeout=60)
    assert "via5" in p.stdout, p.stderr
    # b has no c1: one line
    p = u.run("exec", "rb:c1", "--", "true", check=False)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1 and "c1" in p.stderr
    u.run("stop", "ra:c1", "--timeout", "0")
    p = u.run("exec", "ra:c1", "--", "true", check=False)
    assert p.returncode == 1 and p.stderr == "cloison: instance `c1` is not running\n"
    ops = a.ok("GET", "/1.0/operations?recursion=1")
    assert sum(1 for o in ops if o["metadata"] and "return" in o["metadata"]) >= 3, ops
    u.run("delete", "ra:c1", "--force")


def test_run_on_a_remote(pair, trusted):
    """`cloison run` on a remote: POST /1.0/instances with "attach" and the
    exec's websockets over TLS; the remote's image and instance, stdin,
    stdout and stderr apart, the exit code, nothing left on either side."""
    a, b = pair
    u = trusted
    p = subprocess.run([binary("cloison"), "run", "--no-network", "ra:busybox", "--", "sh", "-c",
                        "cat; echo err >&2; hostname; exit 3"], input="over tls\n",
                       env=u.env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 3, p.stderr
    out = p.stdout.splitlines()
    assert out[0] == "over tls" and out[1].startswith("run-") and p.stderr == "err\n", p
    p = u.run("--remote", "rb", "run", "--no-network", "busybox", "--", "true")
    assert p.returncode == 0
    p = u.run("run", "--no-network", "ra:ghost-image", "--", "true", check=False)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1 and "ghost-image" in p.stderr
    assert a.ok("GET", "/1.0/instances") == [] and b.ok("GET", "/1.0/instances") == []


def test_read_only_certificate(pair, trusted):
    a, _ = pair
    u = trusted
    u.run("--remote", "ra", "launch", "busybox", "ro1", "--no-network", "--", "sleep", "600")
    u.run("config", "trust", "restrict", "alice", "--read-only", daemon=a)
    certs = a.ok("GET", "/1.0/certificates?recursion=1")
    assert certs[0]["restricted"] is True
    assert "read-only" in u.run("config", "trust", "list", daemon=a).stdout
    st, j = curl(a, "/1.0/instances", u, "POST", {"name": "x", "source": {"type": "image",
                                                                          "image": "busybox"}})
    assert st == 403 and "read-only" in j["error"]
    assert curl(a, "/1.0/instances/ro1/state", u, "PUT", {"action": "stop"})[0] == 403
    assert curl(a, "/1.0/certificates/alice", u, "DELETE")[0] == 403
    st, j = curl(a, "/1.0/instances", u)
    assert st == 200 and j["metadata"] == ["/1.0/instances/ro1"]
    assert curl(a, "/1.0", u)[1]["metadata"]["auth_read_only"] is True
    p = u.run("stop", "ra:ro1", check=False)
    assert p.returncode != 0 and "read-only" in p.stderr
    u.run("config", "trust", "restrict", "alice", "--read-only=false", daemon=a)
    u.run("delete", "ra:ro1", "--force")


def read_stream_lines(daemon, user, path, out, ready):
    """GET path as an HTTP stream over TLS; appends lines to out, then None
    when the server closes the connection."""
    raw = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
    s = tls_context(user).wrap_socket(raw)
    s.sendall(("GET %s HTTP/1.1\r\nHost: cloison\r\n\r\n" % path).encode())
    ready.set()
    buf = b""
    while True:
        try:
            chunk = s.recv(4096)
        except (ssl.SSLError, OSError):
            chunk = b""
        if not chunk:
            out.append(None)
            return
        buf += chunk
        out.append(chunk)


def test_revocation_closes_open_connections(pair, trusted):
    a, _ = pair
    u = trusted
    fp = a.ok("GET", "/1.0/certificates")[0].rsplit("/", 1)[1]
    ws = TLSWebSocket(a, u, "/1.0/events")
    out, ready = [], threading.Event()
    t = threading.Thread(target=read_stream_lines, args=(a, u, "/1.0/events", out, ready),
                         daemon=True)
    t.start()
    ready.wait(10)
    time.sleep(0.5)
    start = time.monotonic()
    # revoked through the daemon (the CLI goes through its socket)
    u.run("config", "trust", "remove", fp[:12], daemon=a)
    frames = []
    while True:
        f = ws.recv()
        if f is None:
            break
        frames.append(f)
    assert time.monotonic() - start < 3
    # cut at once (the TCP connection is shut down), or closed with 1008
    assert all(f == (8, b"\x03\xf0revoked") for f in frames), frames
    t.join(5)
    assert not t.is_alive() and out[-1] is None
    assert time.monotonic() - start < 5
    assert a.ok("GET", "/1.0/certificates") == []
    assert curl(a, "/1.0/instances", u)[0] == 403


def test_revocation_by_another_process(pair, trusted, tmp_path):
    """`config trust remove` with no daemon between (in-process on the
    state root): the daemon sees the change and closes the stream."""
    a, _ = pair
    u = trusted
    ws = TLSWebSocket(a, u, "/1.0/events")
    start = time.monotonic()
    # --local: the router in the CLI's own process, not through the daemon
    p = User(tmp_path, "admin").run("--debug", "--local", "config", "trust", "remove", "alice",
                                    daemon=a)
    assert "in-process" in p.stderr, p.stderr
    while ws.recv() is not None:
        pass
    assert time.monotonic() - start < 5


def test_monitor_sees_a_start(pair, trusted):
    a, _ = pair
    u = trusted
    u.run("--remote", "ra", "launch", "busybox", "m1", "--no-network", "--", "sleep", "600")
    u.run("stop", "ra:m1", "--timeout", "1")
    mon = subprocess.Popen([binary("cloison"), "monitor", "--remote", "ra", "--type", "lifecycle"],
                           env=u.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    local = subprocess.Popen([binary("cloison"), "--root", a.root, "monitor"],
                             env=u.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        time.sleep(1.5)
        u.run("start", "ra:m1")
        for m in (mon, local):
            deadline = time.monotonic() + 20
            seen = []
            while time.monotonic() < deadline:
                line = m.stdout.readline()
                assert line, m.stderr.read() if m.poll() is not None else "eof"
                ev = json.loads(line)
                seen.append(ev)
                if (ev["type"] == "lifecycle"
                        and ev["metadata"]["action"] == "instance-started"
                        and ev["metadata"]["source"] == "/1.0/instances/m1"):
                    break
            else:
                pytest.fail("no instance-started: %r" % seen)
            if m is mon:
                assert all(e["type"] == "lifecycle" for e in seen)
    finally:
        for m in (mon, local):
            m.terminate()
            m.wait(10)
    p = u.run("monitor", "--type", "nonsense", check=False)
    assert p.returncode != 0 and "--type" in p.stderr
    u.run("delete", "ra:m1", "--force")


def test_https_address_setting_is_read_at_start(tmp_path):
    d = Daemon(tmp_path, netns=False)
    port = free_port()
    u = User(tmp_path, "op")
    os.makedirs(d.root, exist_ok=True)
    u.run("config", "set", "core.https_address", "127.0.0.1:%d" % port, daemon=d)
    assert u.run("config", "get", "core.https_address", daemon=d).stdout.strip() == \
        "127.0.0.1:%d" % port
    p = u.run("config", "set", "core.https_address", "nope", daemon=d, check=False)
    assert p.returncode != 0 and "core.https_address" in p.stderr
    d.start()
    try:
        d.port, d.url = port, "https://127.0.0.1:%d" % port
        st, j = curl(d, "/1.0")
        assert st == 200 and j["metadata"]["auth"] == "untrusted"
        # the token carries the address
        t = json.loads(base64.b64decode(token(d, "op")))
        assert t["addresses"] == ["127.0.0.1:%d" % port]
        u.run("remote", "add", "here", d.url, "--token",
              base64.b64encode(json.dumps(t).encode()).decode())
        assert curl(d, "/1.0", u)[1]["metadata"]["auth"] == "trusted"
    finally:
        d.stop()


def test_certificate_routes(pair, tmp_path):
    """Trusting a PEM directly, and a certificate named by its name, its
    fingerprint or a prefix of it (a name wins over another's prefix)."""
    a, _ = pair
    pems = []
    for name in ("one", "two"):
        crt, _ = self_signed(tmp_path, name)
        pems.append(open(crt).read())
    j = a.ok("POST", "/1.0/certificates", {"name": "one", "certificate": pems[0]})
    fp1 = j["fingerprint"]
    assert len(fp1) == 64 and j["restricted"] is False
    # the second is named as the first's fingerprint starts
    j = a.ok("POST", "/1.0/certificates", {"name": fp1[:8], "certificate": pems[1],
                                           "restricted": True})
    fp2 = j["fingerprint"]
    assert a.ok("GET", "/1.0/certificates/one")["fingerprint"] == fp1
    assert a.ok("GET", "/1.0/certificates/" + fp1[:8])["fingerprint"] == fp2
    assert a.ok("GET", "/1.0/certificates/" + fp1[:12])["fingerprint"] == fp1
    assert a.ok("GET", "/1.0/certificates/" + fp2)["restricted"] is True
    assert a.request("GET", "/1.0/certificates/" + fp1[:4])[0] == 404  # too short a prefix
    assert a.request("GET", "/1.0/certificates/nobody")[0] == 404
    st, j, _ = a.request("POST", "/1.0/certificates", {"name": "again", "certificate": pems[0]})
    assert st == 409 and "trusted already" in j["error"]
    st, j, _ = a.request("POST", "/1.0/certificates", {"name": "bad", "certificate": "nope"})
    assert st == 400 and j["path"] == "certificate"
    st, j, _ = a.request("PATCH", "/1.0/certificates/one", {"name": fp1[:8]})
    assert st == 409
    st, j, _ = a.request("PATCH", "/1.0/certificates/one", {"restricted": "yes"})
    assert st == 400 and j["path"] == "restricted"
    assert a.ok("PATCH", "/1.0/certificates/one", {"name": "uno", "restricted": True}) \
        ["restricted"] is True
    assert a.ok("DELETE", "/1.0/certificates/uno")["fingerprint"] == fp1
    assert a.ok("GET", "/1.0/certificates") == ["/1.0/certificates/" + fp2]
