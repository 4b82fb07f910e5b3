# SPDX-License-Identifier: Apache-2.0
"""`cloison move NAME REMOTE:[NEW]` between two cloisonds (docs/move.md).

Two "hosts": two network namespaces of the test's own joined by a veth
pair, a daemon in each (its own state root, TLS on its veth address), the
CLI in the source's namespace with the destination as a trusted remote.
Networks (bridges, dnsmasq, nftables) live in those namespaces only.

Covers: a container moved stateless with a file written in its rootfs and
its address on a named network kept, moved back; a missing network refused
with nothing made on either side; a stateful move refused here with a
clear error (criu fails on this kernel) and nothing changed; a stopped
VM moved (its disk; seeded through the receive route, as no VM boots
without /dev/kvm); an image the destination lacks sent along; the
destination daemon killed (-9) during
the transfer: the source's instance runs again, the destination has none
after its restart; the source daemon killed (it drives the move: its
restart starts the instance here again); the mover killed (the daemon
finishes); the link cut; the mover interrupted; the move route's bad
input, and its refusal over TLS."""
import json
import os
import shutil
import sqlite3
import subprocess
import time
import uuid

import pytest

from cloison_cli import BUILD, binary
from test_api import Daemon

SUBNET = "10.88.231.0/24"
# a workload that stops at once on SIGTERM (a bare `sleep` as PID 1 ignores
# it, and each stop would wait for its timeout)
WORKLOAD = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), check=check, capture_output=True, text=True)


class Host(Daemon):
    """A cloisond in its own network namespace, TLS on `addr`:8443."""

    def __init__(self, tmp_path, name, ns, addr):
        d = tmp_path / name
        d.mkdir()
        self.ns = ns
        self.url = "https://%s:8443" % addr
        super().__init__(d, ["--listen", "%s:8443" % addr], netns=False)

    def start(self, env=None):
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                ["nsenter", "--net=/run/netns/" + self.ns, binary("cloisond"), "--root", self.root,
                 "--socket", self.sock, "--debug"] + self.extra,
                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})))
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.request("GET", "/1.0")[0] == 200:
                    break
            except OSError:
                pass
            assert self.proc.poll() is None, open(self.log).read()
            assert time.monotonic() < deadline, "cloisond did not answer"
            time.sleep(0.05)
        host, port = self.url[8:].split(":")
        while subprocess.run(["nsenter", "--net=/run/netns/" + self.ns, "bash", "-c",
                              "exec 3<>/dev/tcp/%s/%s" % (host, port)],
                             capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, open(self.log).read()
            time.sleep(0.05)

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)

    def cli(self, *args, check=True, timeout=120, config=None):
        """cloison on this host's root, run in its namespace."""
        env = dict(os.environ, CLOISON_CONFIG=config or "/nonexistent-config")
        p = subprocess.run(["nsenter", "--net=/run/netns/" + self.ns, binary("cloison"), "--root",
                            self.root] + [str(a) for a in args],
                           env=env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("cloison %s: exit %d: %s" % (" ".join(map(str, args)),
                                                              p.returncode, p.stderr))
        return p

    def names(self):
        return sorted(i["name"] for i in json.loads(self.cli("list", "--format", "json").stdout))

    def info(self, name):
        return json.loads(self.cli("info", name).stdout)


@pytest.fixture
def hosts(tmp_path):
    tag = uuid.uuid4().hex[:6]
    na, nb = "move-a-" + tag, "move-b-" + tag
    for ns in (na, nb):
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
    ip("link", "add", "mva" + tag, "netns", na, "type", "veth", "peer", "name", "mvb" + tag,
       "netns", nb)
    ip("-n", na, "addr", "add", "10.253.0.1/30", "dev", "mva" + tag)
    ip("-n", nb, "addr", "add", "10.253.0.2/30", "dev", "mvb" + tag)
    ip("-n", na, "link", "set", "mva" + tag, "up")
    ip("-n", nb, "link", "set", "mvb" + tag, "up")
    a = Host(tmp_path, "a", na, "10.253.0.1")
    b = Host(tmp_path, "b", nb, "10.253.0.2")
    a.start()
    b.start()
    config = str(tmp_path / "cfg")
    tok = b.cli("config", "trust", "add", "mover").stdout.strip()
    a.cli("remote", "add", "hb", b.url, "--token", tok, config=config)
    tok = a.cli("config", "trust", "add", "mover").stdout.strip()
    b.cli("remote", "add", "ha", a.url, "--token", tok, config=config)
    for h in (a, b):
        h.cli("network", "create", "lab", "--subnet", SUBNET)
    a.link = "mva" + tag
    try:
        yield a, b, config
    finally:
        for h in (a, b):
            if h.proc.poll() is None:
                h.delete_instances()
                h.cli("network", "delete", "lab", check=False)
            h.stop()
        for ns in (na, nb):
            ip("netns", "delete", ns, check=False)


def address(info):
    return [(i["network"], i["address"], i["mac"]) for i in info["network"]]


def test_container_moves_stateless_with_its_files_and_address(hosts):
    a, b, cfg = hosts
    # another instance on lab first, so that c1's address is not the first
    a.cli("launch", "busybox", "pad", "--network", "lab", "--", *WORKLOAD)
    a.cli("launch", "busybox", "c1", "--network", "lab", "--", *WORKLOAD)
    a.cli("exec", "c1", "--", "sh", "-c", "echo moved-data > /data.txt")
    before = address(a.info("c1"))
    assert before[0][1] != "10.88.231.2"
    a.cli("move", "--stateless", "c1", "hb:", config=cfg)
    assert "c1" not in a.names()
    info = b.info("c1")
    assert info["status"] == "running"
    assert address(info) == before
    assert b.cli("exec", "c1", "--", "cat", "/data.txt").stdout == "moved-data\n"
    # and back, under a new name
    b.cli("exec", "c1", "--", "sh", "-c", "echo back >> /data.txt")
    b.cli("move", "--stateless", "c1", "ha:c2", config=cfg)
    assert b.names() == []
    info = a.info("c2")
    assert info["status"] == "running" and address(info) == before
    assert a.cli("exec", "c2", "--", "cat", "/data.txt").stdout == "moved-data\nback\n"
    # nothing left in transit on either side
    for h in (a, b):
        assert not os.listdir(os.path.join(h.root, "incoming"))


def test_missing_network_refused_with_nothing_made(hosts):
    a, b, cfg = hosts
    a.cli("network", "create", "only-a", "--subnet", "10.88.232.0/24")
    a.cli("launch", "busybox", "c1", "--network", "only-a", "--", *WORKLOAD)
    p = a.cli("move", "--stateless", "c1", "hb:", config=cfg, check=False)
    assert p.returncode != 0
    assert p.stderr.strip().count("\n") == 0, p.stderr
    assert "network `only-a` does not exist on remote `hb`" in p.stderr
    assert a.info("c1")["status"] == "running"
    assert b.names() == []
    assert not os.path.exists(os.path.join(b.root, "incoming", "c1.tar"))
    a.cli("delete", "--force", "c1")
    a.cli("network", "delete", "only-a")


def test_existing_name_refused(hosts):
    a, b, cfg = hosts
    a.cli("launch", "--no-network", "busybox", "c1", "--", *WORKLOAD)
    b.cli("launch", "--no-network", "busybox", "c1", "--", *WORKLOAD)
    p = a.cli("move", "--stateless", "c1", "hb:", config=cfg, check=False)
    assert p.returncode != 0 and "instance `c1` already exists on remote `hb`" in p.stderr
    assert a.info("c1")["status"] == "running"


def test_image_goes_along_when_the_remote_lacks_it(hosts, tmp_path):
    a, b, cfg = hosts
    # busybox with one more file: an image b has never seen
    tar = str(tmp_path / "mybox.tar")
    shutil.copy(os.path.join(BUILD, "src", "image", "busybox-rootfs.tar"), tar)
    os.makedirs(str(tmp_path / "m" / "etc"))
    with open(str(tmp_path / "m" / "etc" / "mybox-release"), "w") as f:
        f.write("mybox 1\n")
    subprocess.run(["tar", "--append", "-f", tar, "-C", str(tmp_path / "m"),
                    "etc/mybox-release"], check=True)
    a.cli("image", "import", tar, "mybox:1")
    image_id = json.loads(a.cli("image", "inspect", "mybox:1").stdout)["Id"]
    assert b.cli("image", "inspect", image_id, check=False).returncode != 0
    a.cli("launch", "--no-network", "mybox:1", "c1", "--", *WORKLOAD)
    a.cli("exec", "c1", "--", "sh", "-c", "echo mine > /mine")
    a.cli("move", "--stateless", "c1", "hb:", config=cfg)
    assert b.cli("exec", "c1", "--", "cat", "/etc/mybox-release", "/mine").stdout \
        == "mybox 1\nmine\n"
    on_b = json.loads(b.cli("image", "inspect", image_id).stdout)
    assert on_b["Id"] == image_id and on_b["UsedBy"] == ["c1"]
    # a second instance of that image moves without sending it again
    a.cli("launch", "--no-network", "mybox:1", "c2", "--", *WORKLOAD)
    a.cli("move", "--stateless", "c2", "hb:", config=cfg)
    assert b.cli("exec", "c2", "--", "cat", "/etc/mybox-release").stdout == "mybox 1\n"


def criu_works():
    try:
        return subprocess.run(["criu", "check"], capture_output=True).returncode == 0
    except OSError:
        return False


def test_stateful_refused_here_with_nothing_changed(hosts):
    a, b, cfg = hosts
    if criu_works():
        pytest.skip("criu works on this kernel: the refusal is for kernels where it fails")
    a.cli("launch", "--no-network", "busybox", "c1", "--", *WORKLOAD)
    p = a.cli("move", "c1", "hb:", config=cfg, check=False)
    assert p.returncode != 0
    assert p.stderr.strip().count("\n") == 0, p.stderr
    assert "stateful move of container `c1`" in p.stderr and "--stateless" in p.stderr
    assert a.info("c1")["status"] == "running"
    assert b.names() == []
    assert not os.path.exists(os.path.join(b.root, "incoming"))


def seed_stopped_vm(h, tmp_path, name):
    """A stopped VM on h without booting one (no /dev/kvm here): made by
    h's own receive route, from a sparse 64 MiB disk with a marker at
    4 MB.  Returns the disk's size."""
    work = tmp_path / ("seed-" + name)
    work.mkdir()
    disk = str(work / "disk.img")
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
        f.seek(4096 * 1000)
        f.write(b"marker-of-" + name.encode())
    tar = str(work / "a.tar")
    subprocess.run(["tar", "--create", "--zstd", "--sparse", "-f", tar, "-C", str(work),
                    "disk.img"], check=True)
    image_id = json.loads(h.cli("image", "inspect", "busybox").stdout)["Id"]
    raw = open(tar, "rb").read()
    st, j, _ = h.request("PUT", "/1.0/instances/%s/upload?offset=0" % name, raw=raw)
    assert st == 200, j
    config = {"cpus": 1, "memory": 256 << 20, "disk_size": 0, "env": [], "networks": [],
              "no_network": True, "ports": [], "image_id": image_id}
    h.run_op("POST", "/1.0/instances/%s/receive" % name,
             {"type": "virtual-machine", "config": config, "size": len(raw)})
    return 64 << 20


def test_stopped_vm_moves_with_its_disk(hosts, tmp_path):
    a, b, cfg = hosts
    size = seed_stopped_vm(a, tmp_path, "v1")
    assert a.info("v1")["kind"] == "vm" and a.info("v1")["status"] == "stopped"
    # stopped: nothing to keep alive, so no --stateless needed
    a.cli("move", "v1", "hb:", config=cfg)
    assert "v1" not in a.names()
    info = b.info("v1")
    assert info["kind"] == "vm" and info["status"] == "stopped"
    moved = os.path.join(info["path"], "disk.img")
    assert os.path.getsize(moved) == size
    assert os.stat(moved).st_blocks * 512 < (8 << 20)  # still sparse
    with open(moved, "rb") as f:
        f.seek(4096 * 1000)
        assert f.read(13) == b"marker-of-v1\0"


def start_big_move(a, b, cfg, local=False):
    """c1 with 200 MiB that zstd cannot shrink (the transfer takes
    seconds), its move started and seen halfway on b: (mover, address of
    c1, path of b's archive).  local: the move runs in the CLI's process
    (--local), not in a's daemon."""
    a.cli("launch", "busybox", "c1", "--network", "lab", "--", *WORKLOAD)
    before = address(a.info("c1"))
    a.cli("exec", "c1", "--", "sh", "-c", "head -c 209715200 /dev/urandom > /big")
    env = dict(os.environ, CLOISON_CONFIG=cfg)
    mover = subprocess.Popen(["nsenter", "--net=/run/netns/" + a.ns, binary("cloison"), "--root",
                              a.root] + (["--local"] if local else [])
                             + ["move", "--stateless", "c1", "hb:"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = os.path.join(b.root, "incoming", "c1.tar")
    deadline = time.monotonic() + 60
    while not (os.path.exists(part) and os.path.getsize(part) > (8 << 20)):
        assert mover.poll() is None, mover.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return mover, before, part


def end_of_move(mover, expect):
    """The mover's end: it failed, saying `expect`."""
    _, errout = mover.communicate(timeout=180)
    assert mover.returncode != 0 and expect in errout, errout


def runs_on(h, before):
    info = h.info("c1")
    assert info["status"] == "running" and address(info) == before


def test_mover_interrupted_undoes(hosts):
    a, b, cfg = hosts
    mover, before, _ = start_big_move(a, b, cfg)
    mover.terminate()
    end_of_move(mover, "interrupted")
    runs_on(a, before)
    assert b.names() == []


def test_in_process_move_interrupted_undoes(hosts):
    """Without the daemon (--local) the move operation runs in the CLI:
    its signal cancels it there, and it is undone the same way."""
    a, b, cfg = hosts
    mover, before, part = start_big_move(a, b, cfg, local=True)
    mover.send_signal(2)
    end_of_move(mover, "move of `c1` interrupted (signal 2): undone (it runs on here)")
    runs_on(a, before)
    assert b.names() == []


def test_destination_killed_mid_transfer(hosts):
    a, b, cfg = hosts
    mover, before, part = start_big_move(a, b, cfg)
    b.kill()
    end_of_move(mover, "remote `hb`")
    # the source has its instance, running again, same address
    runs_on(a, before)
    # the destination, restarted, has no instance and no half archive
    b.start()
    assert b.names() == []
    assert not os.path.exists(part)
    # and the move, tried again, goes through
    t0 = time.monotonic()
    a.cli("move", "--stateless", "c1", "hb:", config=cfg, timeout=300)
    print("move of a container with 200 MiB of random data: %.2f s" % (time.monotonic() - t0))
    assert a.names() == [] and b.info("c1")["status"] == "running"
    assert address(b.info("c1")) == before


def test_source_daemon_killed_mid_transfer(hosts):
    """The source's daemon drives the move: killed (-9) midway, the move
    dies with it; its restart's recovery (the intent `move-out` at stage
    `stopped`) starts the instance here again; the destination has no
    instance, and its half archive goes at its next start."""
    a, b, cfg = hosts
    mover, before, part = start_big_move(a, b, cfg)
    a.kill()
    _, errout = mover.communicate(timeout=60)
    assert mover.returncode != 0, errout
    a.start()
    runs_on(a, before)
    assert "recovering interrupted `move-out` of instance `c1`" in open(a.log).read()
    assert b.names() == []
    b.stop()
    b.start()
    assert b.names() == [] and not os.path.exists(part)


def test_mover_killed_the_daemon_finishes(hosts):
    """The CLI killed (-9) midway: the source's daemon, which drives the
    move, finishes it: the instance runs there, nothing is left here."""
    a, b, cfg = hosts
    mover, before, _ = start_big_move(a, b, cfg)
    mover.kill()
    mover.wait(timeout=30)
    deadline = time.monotonic() + 180
    while a.names() != []:
        assert time.monotonic() < deadline, a.names()
        time.sleep(0.2)
    runs_on(b, before)


def test_move_route_refuses_bad_input_and_tls(hosts):
    """POST /1.0/instances/NAME/move: fields checked (named), an unknown
    instance 404, nothing changed; over TLS it is refused (the body holds
    the mover's client key)."""
    a, b, cfg = hosts
    a.cli("launch", "busybox", "c1", "--network", "lab", "--", *WORKLOAD)
    target = {"remote": "hb", "url": b.url, "certificate": "x", "client_certificate": "x",
              "client_key": "x"}
    for body, field in (({}, "target"),
                        ({"target": dict(target, url="http://x")}, "target.url"),
                        ({"target": dict(target, timeout=-1)}, "target.timeout"),
                        ({"target": {"remote": "hb"}}, "target.url"),
                        ({"target": target, "name": "no/slash"}, "name"),
                        ({"target": target, "stateless": "yes"}, "stateless"),
                        ({"target": target, "plain_stream": 1}, "plain_stream")):
        status, reply, _ = a.request("POST", "/1.0/instances/c1/move", body)
        assert status == 400 and field in reply["error"], (body, reply)
    status, reply, _ = a.request("POST", "/1.0/instances/nope/move", {"target": target})
    assert status == 404, reply
    p = b.cli("move", "c1", "ha:", config=cfg, check=False)  # c1 is not on b
    assert p.returncode != 0 and "c1" in p.stderr, p.stderr
    p = b.cli("move", "--encrypted", "c1", "ha:", config=cfg, check=False)
    assert p.returncode != 0 and "usage: cloison move [--stateless] [--plain-stream]" in p.stderr, \
        p.stderr
    assert a.info("c1")["status"] == "running" and b.names() == []
    # over TLS, with the trusted client's certificate: refused
    crt, key = os.path.join(cfg, "client.crt"), os.path.join(cfg, "client.key")
    p = subprocess.run(["nsenter", "--net=/run/netns/" + a.ns, "curl", "-sk", "--cert", crt,
                        "--key", key, "-X", "POST", "-d", json.dumps({"target": target}),
                        a.url + "/1.0/instances/c1/move"], capture_output=True, text=True)
    reply = json.loads(p.stdout)
    assert reply["error_code"] == 403 and "only over the local socket" in reply["error"], reply
    assert a.info("c1")["status"] == "running" and b.names() == []


def test_link_cut_mid_transfer(hosts):
    a, b, cfg = hosts
    # the remote's request timeout, as `remote add --timeout 10` writes it
    p = a.cli("remote", "add", "hc", b.url, "--token", "x", "--timeout", "0", config=cfg,
              check=False)
    assert p.returncode != 0 and p.stderr == (
        "cloison: --timeout: expected an integer 1-86400, got `0`\n"), p.stderr
    with open(os.path.join(cfg, "config.json")) as f:
        conf = json.load(f)
    conf["remotes"]["hb"]["timeout"] = 10
    with open(os.path.join(cfg, "config.json"), "w") as f:
        json.dump(conf, f)
    mover, before, part = start_big_move(a, b, cfg)
    # the link cut: a piece in flight waits for its request's timeout
    # (10 s here, 60 s by default), the next finds no route
    ip("-n", a.ns, "link", "set", a.link, "down")
    end_of_move(mover, "remote `hb`")
    runs_on(a, before)
    assert b.names() == []
    b.stop()
    b.start()
    assert b.names() == [] and not os.path.exists(part)


def test_destination_killed_during_receive(hosts):
    """The destination's daemon dies while it makes the instance (the
    files extracted, the image use not yet): the mover starts the
    instance here again, and the restarted daemon's recovery removes the
    half-made one (its intent `receive`)."""
    a, b, cfg = hosts
    b.stop()
    b.start(env={"CLOISON_MOVE_TEST_CRASH_AT": "receive-extracted"})
    a.cli("launch", "busybox", "c1", "--network", "lab", "--", *WORKLOAD)
    before = address(a.info("c1"))
    p = a.cli("move", "--stateless", "c1", "hb:", config=cfg, check=False)
    assert p.returncode != 0 and "remote `hb`" in p.stderr, p.stderr
    info = a.info("c1")
    assert info["status"] == "running" and address(info) == before
    b.proc.wait(timeout=30)  # killed at the crash point
    b.start()
    assert b.names() == []
    assert not os.path.exists(os.path.join(b.root, "instances", "c1"))
    assert "recovering interrupted `receive` of instance `c1`" in open(b.log).read()


def live_receive(h, tmp_path, name, tunnel=False):
    """A live move's receive on h, as a mover starts it (an empty archive,
    stateful, a 64 MiB disk): (operation URL, the migration's uri, the
    token its stream must carry), and with tunnel, the stream's route."""
    tar = str(tmp_path / ("empty-%s.tar" % name))
    subprocess.run(["tar", "--create", "--zstd", "-f", tar, "--files-from=/dev/null"], check=True)
    raw = open(tar, "rb").read()
    st, j, _ = h.request("PUT", "/1.0/instances/%s/upload?offset=0" % name, raw=raw)
    assert st == 200, j
    image_id = json.loads(h.cli("image", "inspect", "busybox").stdout)["Id"]
    config = {"cpus": 1, "memory": 256 << 20, "disk_size": 0, "env": [], "networks": [],
              "no_network": True, "ports": [], "image_id": image_id}
    st, j, _ = h.request("POST", "/1.0/instances/%s/receive" % name,
                         {"type": "virtual-machine", "config": config, "size": len(raw),
                          "stateful": True, "disk_size": 64 << 20, "tunnel": tunnel})
    assert st == 202, j
    deadline = time.monotonic() + 30
    while True:
        st, o, _ = h.request("GET", j["operation"])
        assert st == 200, o
        mig = (o["metadata"].get("metadata") or {}).get("migration") or {}
        if mig.get("uri") and tunnel:
            return j["operation"], mig["uri"], mig.get("token"), mig.get("tunnel")
        if mig.get("uri"):
            return j["operation"], mig["uri"], mig.get("token")
        assert o["metadata"]["status"] in ("pending", "running"), o
        assert time.monotonic() < deadline, o
        time.sleep(0.05)


# A stream's start as a source VMM sends it (src/vmm/migrate.c): magic,
# version, then the header's JSON as a message (status, length, text);
# the destination's answer is a message too.
SEND_HEADER = r"""
import json, socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
if sys.argv[2] == "garbage":
    s.sendall(b"not-a-migration-stream\n")
else:
    text = json.dumps({"config": {}, "token": sys.argv[2]}).encode()
    s.sendall(b"CLMIGRAT" + struct.pack("<I", 1) + struct.pack("<II", 0, len(text)) + text)
s.settimeout(20)
got = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
except OSError:
    pass
print(got[8:].decode(errors="replace"))
"""


@pytest.mark.parametrize("stream,error", [
    ("garbage", "not a cloison migration stream"),
    ("0123456789abcdef0123456789abcdef", "migration header: wrong token: not the source"),
])
def test_live_receive_undone_when_the_stream_is_not_the_source(hosts, tmp_path, stream, error):
    """The destination's half of a live move, which needs no KVM until the
    stream's header: the instance is made (an empty sparse disk of the
    size given), its monitor waits on the uri the operation tells, for a
    stream whose header carries the one-time token the operation tells
    too; a connection that is no migration, or one with another token,
    fails it (and is told why), and the receive undoes itself: no
    instance, no directory."""
    _, b, _ = hosts
    op, uri, token = live_receive(b, tmp_path, "v9")
    assert uri.startswith("tcp:") and int(uri.rsplit(":", 1)[1]) > 0, uri
    assert len(token) == 32 and token != stream, token
    disk = os.path.join(b.root, "instances", "v9", "disk.img")
    assert os.path.getsize(disk) == 64 << 20 and os.stat(disk).st_blocks == 0
    # the request came over the Unix socket: it listens on every address
    port = uri.rsplit(":", 1)[1]
    told = subprocess.run(["nsenter", "--net=/run/netns/" + b.ns, "/usr/bin/python3", "-c",
                           SEND_HEADER, port, stream], check=True, capture_output=True,
                          text=True, timeout=60).stdout
    if stream != "garbage":
        assert error in told, told
    ended = b.wait(op)
    assert ended["status"] == "failure", ended
    assert error in ended["err"], ended
    assert b.names() == []
    assert not os.path.exists(os.path.join(b.root, "instances", "v9"))


# The same start, sent through the destination's TLS API as a mover's
# daemon relays it (src/api/tunnel.c): a websocket to the route, with the
# mover's client certificate; the stream's bytes as binary frames.
# Prints the handshake's status line, then what came back.
WS_SEND = r"""
import json, os, socket, ssl, struct, sys
host, path, cfg, what, here = sys.argv[1:6]
sys.path.insert(0, here)
import ws_client
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.load_cert_chain(cfg + "/client.crt", cfg + "/client.key")
s = ctx.wrap_socket(socket.create_connection((host, 8443)))
head = ws_client.handshake(s, path, host, upgrade=what != "plain")
print(head.split(b"\r\n")[0].decode())
if b" 101 " not in head:
    s.settimeout(5)
    try:
        print(s.recv(4096).decode(errors="replace"))
    except OSError:
        pass
    sys.exit(0)
def frame(op, data):
    m = os.urandom(4)
    n = len(data)
    h = bytes([0x80 | op]) + (bytes([0x80 | n]) if n < 126 else bytes([0xfe]) + struct.pack(">H", n))
    return h + m + bytes(b ^ m[i % 4] for i, b in enumerate(data))
if what == "garbage":
    s.sendall(frame(2, b"not-a-migration-stream\n"))
else:
    text = json.dumps({"config": {}, "token": what}).encode()
    s.sendall(frame(2, b"CLMIGRAT" + struct.pack("<I", 1) + struct.pack("<II", 0, len(text)) + text))
s.settimeout(20)
buf, got = b"", b""
def need(n):
    global buf
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            raise EOFError
        buf += d
try:
    while True:
        need(2)
        op, n, k = buf[0] & 15, buf[1] & 127, 2
        if n == 126:
            need(4); n, k = struct.unpack(">H", buf[2:4])[0], 4
        elif n == 127:
            need(10); n, k = struct.unpack(">Q", buf[2:10])[0], 10
        need(k + n)
        data, buf = buf[k:k + n], buf[k + n:]
        if op == 8:
            break
        got += data
except (EOFError, OSError):
    pass
print(got[8:].decode(errors="replace"))
"""


def tunnel_send(a, b, cfg, path, what):
    """WS_SEND from a's namespace to b's TLS API: its output."""
    return subprocess.run(["nsenter", "--net=/run/netns/" + a.ns, "/usr/bin/python3", "-c",
                           WS_SEND, b.url[8:].split(":")[0], path, cfg, what,
                           os.path.dirname(os.path.abspath(__file__))], check=True,
                          capture_output=True, text=True, timeout=60).stdout


def test_live_receive_through_the_tls_api(hosts, tmp_path):
    """A live move's stream through the destination's TLS API (docs/move.md
    "The stream"): the receive asked for the tunnel makes its monitor wait
    on the loopback only, and offers GET .../migration?token=T, a websocket
    for the mover's certificate, relayed to that monitor.  A wrong token,
    a request without the upgrade are refused; a stream with the wrong
    token goes through to the monitor, which refuses it and says why back
    through the tunnel; the receive undoes itself; the route is gone."""
    a, b, cfg = hosts
    op, uri, token, tunnel = live_receive(b, tmp_path, "v7", tunnel=True)
    assert uri.startswith("tcp:127.0.0.1:"), uri
    assert tunnel == "/1.0/instances/v7/migration?token=" + token, tunnel
    base = tunnel.split("?")[0]
    out = tunnel_send(a, b, cfg, base + "?token=" + "0" * 32, "garbage")
    assert " 404 " in out and "token: no live move of `v7` waits for this token" in out, out
    out = tunnel_send(a, b, cfg, tunnel, "plain")
    assert " 400 " in out and "a websocket upgrade is needed" in out, out
    wrong = "0123456789abcdef0123456789abcdef"
    out = tunnel_send(a, b, cfg, tunnel, wrong)
    assert " 101 " in out and "migration header: wrong token: not the source" in out, out
    ended = b.wait(op)
    assert ended["status"] == "failure", ended
    assert "wrong token" in ended["err"], ended
    assert b.names() == []
    assert not os.path.exists(os.path.join(b.root, "instances", "v7"))
    out = tunnel_send(a, b, cfg, tunnel, wrong)
    assert " 404 " in out, out


def test_live_receive_daemon_killed_while_waiting(hosts, tmp_path):
    """The destination's daemon killed (-9) while its monitor waits for the
    migration: the monitor kills its VMM (nothing can arrive any more),
    and the restarted daemon's recovery of the `receive` removes the
    instance; the port no longer listens."""
    _, b, _ = hosts
    _, uri, _ = live_receive(b, tmp_path, "v8")
    port = uri.rsplit(":", 1)[1]
    b.kill()
    deadline = time.monotonic() + 20
    while subprocess.run(["nsenter", "--net=/run/netns/" + b.ns, "bash", "-c",
                          "exec 3<>/dev/tcp/127.0.0.1/%s" % port],
                         capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "the migration port still listens"
        time.sleep(0.1)
    b.start()
    assert b.names() == []
    assert not os.path.exists(os.path.join(b.root, "instances", "v8"))


def test_live_move_routes_refuse_bad_input(hosts):
    a, b, _ = hosts
    image_id = json.loads(b.cli("image", "inspect", "busybox").stdout)["Id"]
    config = {"image_id": image_id, "no_network": True}
    for body, field in (({"type": "container", "stateful": True}, "stateful"),
                        ({"type": "virtual-machine", "stateful": True}, "disk_size"),
                        ({"type": "virtual-machine", "stateful": True, "disk_size": 1,
                          "volumes": ["data:/data"]}, "volumes"),
                        ({"type": "container", "volumes": "data:/data"}, "volumes")):
        body.update(config=config, size=10)
        st, j, _ = b.request("POST", "/1.0/instances/x1/receive", body)
        assert st == 400 and j["error"].startswith(field + ":"), j
    a.cli("launch", "--no-network", "busybox", "c1", "--", *WORKLOAD)
    for body, want in (({"action": "migrate"}, "uri: migrate: required"),
                       ({"action": "stop", "uri": "tcp:1.2.3.4:5"}, "uri: only the action migrate"),
                       ({"action": "migrate", "uri": "udp:x"}, "uri: expected tcp:HOST:PORT")):
        st, j, _ = a.request("PUT", "/1.0/instances/c1/state", body)
        assert st == 400 and j["error"].startswith(want), j
    st, j, _ = a.request("PUT", "/1.0/instances/c1/state",
                         {"action": "migrate", "uri": "tcp:127.0.0.1:9"})
    assert st == 202, j
    ended = a.wait(j["operation"])
    assert ended["status"] == "failure" and "only VMs migrate live" in ended["err"], ended
    assert a.info("c1")["status"] == "running"
    assert b.names() == []


def test_live_move_of_a_running_vm_needs_kvm(hosts, tmp_path):
    """Where the host has no /dev/kvm (this one): the one-line refusal,
    nothing changed.  No VM boots here, so the VM's row is made to say
    running, with a stand-in process as its monitor (what the manager
    checks a running instance by)."""
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("this host has /dev/kvm: the live move itself is tested in the VM lab")
    a, b, cfg = hosts
    seed_stopped_vm(a, tmp_path, "v1")
    stand = subprocess.Popen(["sleep", "600"])
    db = sqlite3.connect(os.path.join(a.root, "cloison.db"), timeout=30)
    try:
        with open("/proc/%d/stat" % stand.pid) as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        with db:
            db.execute("UPDATE instances SET status = 'running', monitor_pid = ?,"
                       " monitor_start = ? WHERE name = 'v1'", (stand.pid, start))
        assert a.info("v1")["status"] == "running"
        p = a.cli("move", "v1", "hb:", config=cfg, check=False)
        assert p.returncode != 0
        assert p.stderr.strip().count("\n") == 0, p.stderr
        assert "stateful move of VM `v1`: no /dev/kvm on this host" in p.stderr, p.stderr
        assert "--stateless" in p.stderr
        assert a.info("v1")["status"] == "running"
        assert b.names() == []
        assert not os.path.exists(os.path.join(b.root, "incoming"))
    finally:
        with db:
            db.execute("UPDATE instances SET status = 'stopped', monitor_pid = NULL,"
                       " monitor_start = NULL WHERE name = 'v1'")
        db.close()
        stand.kill()
        stand.wait()


def test_volumes_are_the_destinations_own(hosts):
    """A container's volumes: the remote's volumes of the same names and
    types take their places at the same paths and modes (a volume does
    not move with an instance); a missing one, or one of another type, is
    refused before anything changes."""
    a, b, cfg = hosts
    a.cli("volume", "create", "data")
    a.cli("volume", "create", "conf")
    a.cli("launch", "busybox", "c1", "--network", "lab", "--", *WORKLOAD)
    a.cli("volume", "attach", "data", "c1", "/data")
    a.cli("volume", "attach", "--readonly", "conf", "c1", "/etc/app")
    a.cli("restart", "--timeout", "0", "c1")
    a.cli("exec", "c1", "--", "sh", "-c", "echo here > /data/f")
    p = a.cli("move", "--stateless", "c1", "hb:", config=cfg, check=False)
    assert p.returncode != 0 and p.stderr == (
        "cloison: volume `data` (attached to `c1` at /data) does not exist on remote `hb`"
        " (create it there first, with its data: a volume does not move with an instance)\n"
    ), p.stderr
    b.cli("volume", "create", "data", "--size", "16M")
    p = a.cli("move", "--stateless", "c1", "hb:", config=cfg, check=False)
    assert p.returncode != 0 and p.stderr == (
        "cloison: volume `data` on remote `hb` is of type image, `c1`'s is dir\n"), p.stderr
    assert a.info("c1")["status"] == "running" and b.names() == []
    b.cli("volume", "delete", "data")
    b.cli("volume", "create", "data")
    b.cli("volume", "create", "conf")
    vols = {v["name"]: v for v in json.loads(b.cli("volume", "list", "--format",
                                                   "json").stdout)}
    with open(os.path.join(vols["data"]["path"], "f"), "w") as f:
        f.write("there\n")
    a.cli("move", "--stateless", "c1", "hb:", config=cfg)
    info = b.info("c1")
    assert info["status"] == "running"
    assert sorted((v["name"], v["path"], v["readonly"]) for v in info["volumes"]) == [
        ("conf", "/etc/app", True), ("data", "/data", False)]
    assert b.cli("exec", "c1", "--", "cat", "/data/f").stdout == "there\n"
    assert b.cli("exec", "c1", "--", "touch", "/etc/app/x", check=False).returncode != 0
    # here: the instance gone, its volumes detached and kept with their data
    assert a.names() == []
    here = {v["name"]: v for v in json.loads(a.cli("volume", "list", "--format",
                                                   "json").stdout)}
    assert here["data"]["attachments"] == [] and here["conf"]["attachments"] == []
    with open(os.path.join(here["data"]["path"], "f")) as f:
        assert f.read() == "here\n"
    b.cli("delete", "--force", "c1")
