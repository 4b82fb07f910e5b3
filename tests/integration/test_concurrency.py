# SPDX-License-Identifier: Apache-2.0
"""Many `cloison` commands at once on one state root (issue 16): eight
clients launching and deleting, mixed with exec, snapshots, copies,
stop/start, networks and image pulls; pairs of commands racing on one
object; a 1000-cycle churn.  Every command either does what it says (and
the effect is checked) or fails with one clear line; nothing that a
command reported made goes missing; nothing is left once everything is
deleted.  Network parts run in a network namespace of the test's own
(`nsenter --net`, which keeps the cgroup mounts visible); image pulls go
to the loopback docker-registry of test_image_registry."""
import concurrent.futures
import glob
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from cloison_cli import Cloison, binary, mounts_under
from test_image_registry import registry  # noqa: F401 (fixture)

WORKERS = 8
# what a command racing another may answer, besides success (one line each)
BUSY = r"is busy|busy"
ROW_TABLES = ("instances", "instance_intents", "instance_snapshots", "instance_vsock",
              "image_uses", "net_attachments", "net_forwards", "networks")


class Root:
    """A state root of the test's own.  Commands run with the root as their
    working directory, so that the monitors they start (which keep it) are
    found by their cwd; `netns` runs them in a network namespace."""

    def __init__(self, path, netns=None):
        os.makedirs(path, exist_ok=True)
        self.path = os.path.realpath(path)
        self.netns = netns
        self.bin = binary("cloison")
        self.cl = Cloison(self.path)
        self.log = []  # every command: (argv, rc, stdout, stderr)
        self.lock = threading.Lock()

    def in_netns(self, argv):
        return (["nsenter", "--net=/run/netns/" + self.netns] if self.netns else []) + argv

    def argv(self, args, netns=True):
        argv = [self.bin, "--root", self.path] + [str(a) for a in args]
        return self.in_netns(argv) if netns else argv

    def run(self, *args, netns=True, timeout=180):
        p = subprocess.run(self.argv(args, netns), cwd=self.path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout)
        with self.lock:
            self.log.append((list(args), p.returncode, p.stdout, p.stderr))
        return p

    def ok(self, *args, **kw):
        p = self.run(*args, **kw)
        if p.returncode != 0:
            raise AssertionError("cloison %s: exit %d: %s" % (" ".join(map(str, args)),
                                                              p.returncode, p.stderr))
        return p

    def popen(self, *args):
        return subprocess.Popen(self.argv(args), cwd=self.path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def info(self, name):
        p = self.run("info", name)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def names(self):
        return sorted(i["name"] for i in json.loads(self.ok("list", "--format", "json").stdout))

    def tag(self):
        return self.cl.tag()

    def net_tag(self):
        try:
            return self.query("SELECT value FROM net_meta WHERE key = 'tag'")[0][0]
        except (sqlite3.OperationalError, IndexError):
            return None

    def query(self, sql):
        db = sqlite3.connect(os.path.join(self.path, "cloison.db"), timeout=30)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def rows(self):
        out = {}
        for t in ROW_TABLES:
            try:
                out[t] = self.query("SELECT count(*) FROM %s" % t)[0][0]
            except sqlite3.OperationalError:  # a table this root never made
                out[t] = 0
        return out

    def processes(self):
        """Pids (not ours) whose cwd, open files or command line are in the root:
        monitors, container inits, dnsmasqs, stuck commands."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            d = "/proc/" + pid
            try:
                paths = [os.readlink(d + "/cwd")]
                paths += [os.readlink(d + "/fd/" + f) for f in os.listdir(d + "/fd")]
                with open(d + "/cmdline", "rb") as f:
                    paths.append(f.read().decode(errors="replace"))
            except OSError:
                continue
            if any(p == self.path or self.path + "/" in p for p in paths):
                found.append(int(pid))
        return found

    def monitors(self):
        """{pid: open fd count} of the monitors started for this root."""
        out = {}
        for pid in self.processes():
            try:
                with open("/proc/%d/comm" % pid) as f:
                    if not f.read().startswith("cloison-mon"):
                        continue
                out[pid] = len(os.listdir("/proc/%d/fd" % pid))
            except OSError:
                pass
        return out

    def cgroups(self):
        pat = "cl-%s-*" % self.tag()
        return (glob.glob("/sys/fs/cgroup/*/cloison/" + pat)
                + glob.glob("/sys/fs/cgroup/cloison/" + pat))

    def links(self):
        tags = [t for t in (self.tag(), self.net_tag()) if t]
        out = subprocess.run(self.in_netns(["ip", "-o", "link"]), stdout=subprocess.PIPE,
                             text=True).stdout
        return [l.split(":")[1].strip().split("@")[0] for l in out.splitlines()
                if any(re.search(r"\bcl[a-z]-%s" % t, l) for t in tags)]

    def nft_tables(self):
        tags = [t for t in (self.tag(), self.net_tag()) if t]
        out = subprocess.run(self.in_netns(["nft", "list", "tables"]), stdout=subprocess.PIPE,
                             text=True).stdout
        return [l for l in out.splitlines() if any("cloison-" + t in l for t in tags)]

    def leftovers(self):
        """What would be left behind by an empty root: {} when nothing."""
        left = {
            "mounts": mounts_under(self.path),
            "cgroups": self.cgroups(),
            "processes": [" ".join(open("/proc/%d/cmdline" % p).read().split("\0"))
                          for p in self.processes() if os.path.exists("/proc/%d" % p)],
            "links": self.links(),
            "nft tables": self.nft_tables(),
            "rows": {t: n for t, n in self.rows().items() if n},
            "instance dirs": os.listdir(os.path.join(self.path, "instances"))
            if os.path.isdir(os.path.join(self.path, "instances")) else [],
        }
        return {k: v for k, v in left.items() if v}

    def delete_everything(self):
        for name in json.loads(self.run("list", "--format", "json").stdout or "[]"):
            self.run("delete", "--force", name["name"])
        p = self.run("network", "list", "--format", "json") if self.netns else None
        if p is not None and p.returncode == 0:
            for n in json.loads(p.stdout):
                self.run("network", "delete", n["name"])


def one_line_error(p, pattern):
    """A failure that says what happened in one line matching pattern."""
    return (p.returncode != 0 and p.stderr.count("\n") == 1 and p.stderr.startswith("cloison: ")
            and re.search(pattern, p.stderr) is not None)


def said(*procs):
    """What commands did, for assertion messages."""
    return "; ".join("`%s` -> %d %r" % (" ".join(p.args[p.args.index("--root") + 2:]),
                                        p.returncode, p.stderr) for p in procs)


def parallel(fn, n=WORKERS):
    """fn(w) for w in range(n) at once; their results in order."""
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        return list(ex.map(fn, range(n)))


def kill_leftover_dnsmasqs(root):
    for pid in root.processes():
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == "dnsmasq":
                    os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture
def root(tmp_path):
    r = Root(str(tmp_path / "root"))
    yield r
    r.delete_everything()


@pytest.fixture
def netroot(tmp_path):
    """A root whose commands run in a network namespace made for the test."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    ns = "conctests" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
    r = Root(str(tmp_path / "root"), netns=ns)
    r.subnet = "10.%d.%d" % (180 + os.getpid() % 20, secrets.randbelow(250) + 1)
    try:
        yield r
    finally:
        r.delete_everything()
        kill_leftover_dnsmasqs(r)
        subprocess.run(["ip", "netns", "del", ns])


# --- a. the reproduction -------------------------------------------------------------

def test_parallel_launch_delete_loses_nothing(root):
    """8 workers x 25 launch + delete --force cycles: every command
    succeeds and prints nothing (no instance judged orphaned while live)."""
    def worker(w):
        bad = []
        for i in range(25):
            name = "w%d-%d" % (w, i)
            a = root.run("launch", "busybox", name, "--no-network", "--", "sleep", "100")
            d = root.run("delete", "--force", name)
            if a.returncode or d.returncode or a.stdout + a.stderr + d.stdout + d.stderr:
                bad.append("%s launch rc=%d [%s] delete rc=%d [%s]" % (
                    name, a.returncode, (a.stdout + a.stderr).strip(), d.returncode,
                    (d.stdout + d.stderr).strip()))
        return bad

    bad = sum(parallel(worker), [])
    assert root.names() == []
    assert bad == [], "\n".join(bad)
    assert root.leftovers() == {}


# --- b. everything at once ----------------------------------------------------------------------

# shared instances: another worker may have stopped, restored or be
# snapshotting them; these one-line answers are acceptable
SHARED_ALLOWED = {
    "exec": r"is not running|" + BUSY,
    "stop": r"is not running|" + BUSY,
    "start": r"is already running|" + BUSY,
    "snapshot": BUSY,
    "copy": BUSY,
    "list": BUSY,
}


def test_mixed_workload_every_effect_visible_nothing_left(netroot, registry):  # noqa: F811
    r = netroot
    net = "mix"
    ref = registry["open"] + "/test/single:v1"
    r.ok("network", "create", net, "--subnet", r.subnet + ".0/24")
    r.ok("launch", "busybox", "shared-a", "--no-network", "--", "sleep", "100000")
    r.ok("launch", "busybox", "shared-n", "--network", net, "--", "sleep", "100000")
    problems, launched = [], set()
    plock = threading.Lock()

    def problem(msg):
        with plock:
            problems.append(msg)

    def expect(p, what):
        if p.returncode != 0:
            problem("%s: exit %d: %s" % (what, p.returncode, p.stderr.strip()))
            return False
        return True

    def expect_out(p, want, what):
        if expect(p, what) and p.stdout != want:
            problem("%s: printed %r, expected %r" % (what, p.stdout, want))

    def shared(*args):
        p = r.run(*args)
        # a stop or restore from another worker kills what runs in the
        # instance, an exec's process included (as `docker exec` sees it)
        killed = args[0] == "exec" and p.returncode == 137 and p.stderr == ""
        if p.returncode != 0 and not killed and not one_line_error(p, SHARED_ALLOWED[args[0]]):
            problem("shared: %s: exit %d: %r" % (" ".join(args), p.returncode, p.stderr))
        return p

    def check_running(name, on_net):
        info = r.info(name)
        if info is None or info["status"] != "running":
            problem("%s: not running after a successful command: %s" % (name, info))
            return
        if on_net:
            nics = info.get("network") or []
            if not nics or nics[0]["network"] != net or not nics[0].get("address"):
                problem("%s: no address on %s: %s" % (name, net, nics))
            elif nics[0]["host_ifname"] not in r.links():
                problem("%s: its veth %s is gone" % (name, nics[0]["host_ifname"]))

    def worker(w):
        # two pulls of one image at once (eight, in fact), then a launch of it
        p = r.run("image", "pull", ref, netns=False)
        if expect(p, "pull %s" % ref):
            name = "p%d" % w
            if expect(r.run("launch", ref, name, "--no-network", "--", "sleep", "100000"),
                      "launch " + name):
                launched.add(name)
                expect_out(r.run("exec", name, "--", "cat", "/single"), "1\n", "exec " + name)
                expect(r.run("delete", "--force", name), "delete " + name)
        for i in range(3):
            name, copy = "m%d-%d" % (w, i), "m%d-%d-c" % (w, i)
            on_net = (w + i) % 2 == 1
            netarg = ["--network", net] if on_net else ["--no-network"]
            if not expect(r.run("launch", "busybox", name, *netarg, "--", "sleep", "100000"),
                          "launch " + name):
                continue
            launched.add(name)
            check_running(name, on_net)
            expect(r.run("exec", name, "--", "sh", "-c", "echo %s > /root/mark" % name),
                   "exec " + name)
            expect(r.run("snapshot", "create", name, "s1"), "snapshot create " + name)
            expect(r.run("exec", name, "--", "sh", "-c", "echo later > /root/mark"),
                   "exec " + name)
            expect(r.run("snapshot", "restore", name, "s1"), "snapshot restore " + name)
            check_running(name, on_net)
            expect_out(r.run("exec", name, "--", "cat", "/root/mark"), name + "\n",
                       "restored " + name)
            if expect(r.run("copy", name, copy), "copy %s %s" % (name, copy)):
                launched.add(copy)
                expect(r.run("start", copy), "start " + copy)
                check_running(copy, on_net)
                expect_out(r.run("exec", copy, "--", "cat", "/root/mark"), name + "\n",
                           "exec " + copy)
            expect(r.run("stop", "--timeout", "0", name), "stop " + name)
            info = r.info(name)
            if info is None or info["status"] != "stopped":
                problem("%s: not stopped after stop: %s" % (name, info))
            expect(r.run("start", name), "start " + name)
            check_running(name, on_net)
            # the shared instances, which the other workers use as well
            shared("exec", "shared-a", "--", "true")
            shared("exec", "shared-n", "--", "true")
            snap = "s%d-%d" % (w, i)
            if shared("snapshot", "create", "shared-a", snap).returncode == 0:
                shared("snapshot", "restore", "shared-a", snap)
            if shared("copy", "shared-a", "c%d-%d" % (w, i)).returncode == 0:
                expect(r.run("delete", "--force", "c%d-%d" % (w, i)), "delete copy of shared")
            if w % 4 == 0:
                shared("stop", "--timeout", "0", "shared-n")
                shared("start", "shared-n")
            shared("list")
            for n in (copy, name):
                if n in launched:
                    expect(r.run("delete", "--force", n), "delete " + n)
                    if r.run("info", n).returncode == 0:
                        problem("%s: still listed after delete" % n)

    parallel(worker)
    # the shared instances are whole: running, or stopped by the last stop
    for name, on_net in (("shared-a", False), ("shared-n", True)):
        info = r.info(name)
        assert info is not None, "%s is missing" % name
        if info["status"] != "running":
            r.ok("start", name)
        check_running(name, on_net)
    # every snapshot of a shared instance that a create reported is listed
    made = {argv[3] for argv, rc, _, _ in r.log if argv[:3] == ["snapshot", "create", "shared-a"]
            and rc == 0}
    listed = set(r.ok("snapshot", "list", "shared-a").stdout.split())
    assert made <= listed, made - listed
    # everything deleted, nothing left (checked before the problems, so
    # that a failure reports both)
    r.delete_everything()
    r.ok("image", "rm", ref, netns=False)
    if r.names() != []:
        problem("instances left after deleting everything: %s" % r.names())
    left = r.leftovers()
    if left:
        problem("left behind: %s" % left)
    if r.query("SELECT count(*) FROM image_uses") != [(0,)]:
        problem("image uses left: %s" % r.query("SELECT * FROM image_uses"))
    assert problems == [], "\n".join(problems)


# --- c. two commands on one object at once -----------------------------------------------------

def race(*procs):
    """Waits for commands started at once; their CompletedProcess-like results."""
    out = []
    for p in procs:
        o, e = p.communicate(timeout=180)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, o, e))
    return out


def test_two_deletes_of_one_instance(root):
    for i in range(6):
        name = "dd%d" % i
        root.ok("launch", "busybox", name, "--no-network", "--", "sleep", "100000")
        a, b = race(root.popen("delete", "--force", name), root.popen("delete", "--force", name))
        codes = sorted([a.returncode, b.returncode])
        assert codes[0] == 0, said(a, b)
        loser = b if b.returncode else a
        if codes[1] != 0:
            assert one_line_error(loser, r"instance `%s` not found|%s" % (name, BUSY)), said(a, b)
        assert (a.stderr if a.returncode == 0 else "") == "" and \
            (b.stderr if b.returncode == 0 else "") == "", said(a, b)
        assert root.names() == []
    assert root.leftovers() == {}


def test_delete_during_start(root):
    for i in range(6):
        name = "ds%d" % i
        root.ok("launch", "busybox", name, "--no-network", "--", "sleep", "100000")
        root.ok("stop", "--timeout", "0", name)
        s, d = race(root.popen("start", name), root.popen("delete", "--force", name))
        if s.returncode:
            assert one_line_error(s, r"not found|was deleted|%s" % BUSY), said(s, d)
        assert s.stderr == "" or s.returncode, said(s, d)
        if d.returncode:
            assert one_line_error(d, BUSY), said(s, d)
            info = root.info(name)
            assert info and info["status"] in ("running", "stopped"), info
            root.ok("delete", "--force", name)
        else:
            assert d.stderr == "", said(s, d)
        assert root.names() == []
        assert root.leftovers() == {}, i


def test_snapshot_create_and_restore_at_once(root):
    root.ok("launch", "busybox", "sr", "--no-network", "--", "sleep", "100000")
    root.ok("exec", "sr", "--", "sh", "-c", "echo zero > /root/f")
    root.ok("snapshot", "create", "sr", "s0")
    for i in range(1, 6):
        root.ok("exec", "sr", "--", "sh", "-c", "echo %d > /root/f" % i)
        c, rs = race(root.popen("snapshot", "create", "sr", "s%d" % i),
                     root.popen("snapshot", "restore", "sr", "s0"))
        for p in (c, rs):
            assert p.returncode == 0 and p.stderr == "" or one_line_error(p, BUSY), said(c, rs)
        info = root.info("sr")
        assert info["status"] == "running", info
        snaps = root.ok("snapshot", "list", "sr").stdout
        sdir = os.path.join(root.path, "instances", "sr", "snapshots", "s%d" % i)
        assert (("s%d " % i) in snaps) == (c.returncode == 0) == os.path.isdir(sdir), \
            (snaps, said(c, rs))
        f = root.ok("exec", "sr", "--", "cat", "/root/f").stdout
        assert f == ("zero\n" if rs.returncode == 0 else "%d\n" % i), (f, said(c, rs))
        if c.returncode == 0:
            # the snapshot holds one whole state: before or after the restore
            copy = open(os.path.join(sdir, "upper", "root", "f")).read()
            assert copy in ("zero\n", "%d\n" % i), copy
    root.ok("delete", "--force", "sr")
    assert root.leftovers() == {}


def test_snapshot_delete_during_create(root):
    root.ok("launch", "busybox", "sd", "--no-network", "--", "sleep", "100000")
    root.ok("exec", "sd", "--", "sh", "-c",
            "dd if=/dev/zero of=/root/big bs=1M count=8 2>/dev/null")
    for i in range(5):
        snap = "x%d" % i
        c = root.popen("snapshot", "create", "sd", snap)
        time.sleep(0.01 * i)
        d = root.popen("snapshot", "delete", "sd", snap)
        c, d = race(c, d)
        assert c.returncode == 0 and c.stderr == "" or one_line_error(c, BUSY), said(c, d)
        assert d.returncode == 0 and d.stderr == "" or one_line_error(
            d, r"snapshot `%s` of instance `sd` not found|%s" % (snap, BUSY)), said(c, d)
        snaps = root.ok("snapshot", "list", "sd").stdout
        sdir = os.path.join(root.path, "instances", "sd", "snapshots", snap)
        listed = (snap + " ") in snaps
        assert listed == os.path.isdir(sdir), (snaps, said(c, d))
        assert listed == (c.returncode == 0 and d.returncode != 0), (snaps, said(c, d))
    assert root.info("sd")["status"] == "running"
    root.ok("delete", "--force", "sd")
    assert root.leftovers() == {}


def test_image_rm_during_launch(root):
    root.ok("image", "list")  # the built-in busybox is imported
    for i in range(6):
        name = "ir%d" % i
        la = root.popen("launch", "busybox", name, "--no-network", "--", "sleep", "100000")
        time.sleep(0.005 * i)
        rm = root.popen("image", "rm", "busybox")
        la, rm = race(la, rm)
        assert la.returncode == 0 and la.stderr == "" or one_line_error(
            la, r"image `busybox` not found|%s|busybox" % BUSY), said(la, rm)
        assert rm.returncode == 0 and rm.stderr == "" or one_line_error(
            rm, r"image `busybox` is used by instance `%s`|%s" % (name, BUSY)), said(la, rm)
        if la.returncode == 0:
            # a launched instance keeps its image
            info = root.info(name)
            assert info["status"] == "running", (info, said(la, rm))
            image_id = info["config"]["image_id"]
            assert root.query("SELECT count(*) FROM image_images WHERE id = '%s'" % image_id) \
                == [(1,)], said(la, rm)
            assert root.query("SELECT user FROM image_uses WHERE id = '%s'" % image_id) \
                == [(name,)]
            root.ok("exec", name, "--", "true")
            root.ok("delete", "--force", name)
        else:
            assert root.names() == []
    root.run("image", "rm", "busybox")
    assert root.leftovers() == {}


def test_two_pulls_of_one_image(tmp_path, registry):  # noqa: F811
    root = Root(str(tmp_path / "root"))
    ref = registry["open"] + "/test/single:v1"
    for _ in range(3):
        ps = race(*[root.popen("image", "pull", ref) for _ in range(4)])
        for p in ps:
            assert p.returncode == 0, said(p)
            assert p.stdout.split()[-1] == registry["single_config"], said(p)
        imgs = json.loads(root.ok("image", "list", "--format", "json").stdout)
        assert [i for i in imgs if registry["single_config"] in i["Id"]], imgs
        assert os.listdir(os.path.join(root.path, "images", "tmp")) == []
        root.ok("image", "rm", ref)
    assert root.query("SELECT count(*) FROM image_images WHERE id LIKE '%%%s%%'"
                      % registry["single_config"]) == [(0,)]


def test_two_network_creates_of_one_name(netroot):
    r = netroot
    for i in range(4):
        subnet = "%s.0/24" % r.subnet
        a, b = race(r.popen("network", "create", "twin", "--subnet", subnet),
                    r.popen("network", "create", "twin", "--subnet", subnet))
        assert sorted([a.returncode == 0, b.returncode == 0]) == [False, True], said(a, b)
        loser = a if a.returncode else b
        assert one_line_error(loser, r"twin.*already exists|already exists|%s" % BUSY), said(a, b)
        info = json.loads(r.ok("network", "info", "twin").stdout)
        assert info["bridge"] in r.links()
        assert len(r.nft_tables()) == 1, r.nft_tables()
        a, b = race(r.popen("network", "delete", "twin"), r.popen("network", "delete", "twin"))
        assert sorted([a.returncode == 0, b.returncode == 0]) == [False, True], said(a, b)
        loser = a if a.returncode else b
        assert one_line_error(loser, r"network `twin` does not exist|%s" % BUSY), said(a, b)
        assert r.links() == [] and r.nft_tables() == [], i
    kill = [p for p in r.processes()]
    assert kill == [], kill


def test_list_during_networked_launches_keeps_their_networks(netroot):
    """`list` frees the network attachments of instances that no longer
    exist: an instance launching meanwhile must keep its own."""
    r = netroot
    r.ok("network", "create", "ln", "--subnet", r.subnet + ".0/24")
    stop = threading.Event()

    def lister():
        while not stop.is_set():
            r.run("list")

    t = threading.Thread(target=lister)
    t.start()
    try:
        launches = parallel(lambda w: r.run("launch", "busybox", "ln%d" % w, "--network", "ln",
                                            "--", "sleep", "100000"))
    finally:
        stop.set()
        t.join()
    assert [p.returncode for p in launches] == [0] * WORKERS, [p.stderr for p in launches]
    lost = []
    for w in range(WORKERS):
        nics = r.info("ln%d" % w)["network"] or []
        if not nics or nics[0]["host_ifname"] not in r.links():
            lost.append("ln%d: %s" % (w, nics))
        else:
            addr = nics[0]["address"]
            out = r.ok("exec", "ln%d" % w, "--", "ip", "-4", "-o", "addr", "show", "eth0").stdout
            if addr not in out:
                lost.append("ln%d: eth0 lacks %s: %s" % (w, addr, out))
    assert lost == [], "\n".join(lost)
    r.delete_everything()
    assert r.leftovers() == {}


# --- d. churn -------------------------------------------------------------------------------------

# The 1000 cycles; CLOISON_CHURN_CYCLES=N runs fewer by hand.
CHURN_CYCLES = int(os.environ.get("CLOISON_CHURN_CYCLES", "1000"))


def db_pages(root):
    """(file size, used pages) of the database after a full checkpoint."""
    db = sqlite3.connect(os.path.join(root.path, "cloison.db"), timeout=30)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        used = db.execute("PRAGMA page_count").fetchone()[0] - \
            db.execute("PRAGMA freelist_count").fetchone()[0]
    finally:
        db.close()
    return os.path.getsize(os.path.join(root.path, "cloison.db")), used


def test_churn_returns_to_where_it_started(root):
    """1000 launch/delete cycles from 8 clients beside two long-lived
    instances: their monitors' fds, the monitor count, the database's size
    after a checkpoint and its rows end where they started."""
    for name in ("resident-a", "resident-b"):
        root.ok("launch", "busybox", name, "--no-network", "--", "sleep", "1000000")

    def cycle(w, count):
        errors = []
        for i in range(count):
            name = "ch%d-%d" % (w, i)
            a = root.run("launch", "busybox", name, "--no-network", "--", "sleep", "100")
            d = root.run("delete", "--force", name)
            if a.returncode or d.returncode or a.stderr or d.stderr:
                errors.append("%s: %r %r" % (name, a.stderr, d.stderr))
        root.log.clear()  # 2000 entries: not needed
        return errors

    parallel(lambda w: cycle(w, 1))  # the tables and pages a cycle needs exist
    before_procs = sorted(root.processes())
    before_mon = root.monitors()
    before_db = db_pages(root)
    before_rows = root.rows()
    t = time.monotonic()
    per = CHURN_CYCLES // WORKERS
    errors = sum(parallel(lambda w: cycle(100 + w, per + (w < CHURN_CYCLES % WORKERS))), [])
    elapsed = time.monotonic() - t
    print("churn: %d cycles from %d clients in %.1f s (%.1f cycles/s), %d errors"
          % (CHURN_CYCLES, WORKERS, elapsed, CHURN_CYCLES / elapsed, len(errors)))
    after = {"procs": sorted(root.processes()), "monitors": root.monitors(),
             "db": db_pages(root), "rows": root.rows(), "names": root.names()}
    print("  monitors (pid: fds) %s -> %s; db (bytes, used pages) %s -> %s"
          % (before_mon, after["monitors"], before_db, after["db"]))
    wrong = []
    if errors:
        wrong.append("%d cycles failed or warned, the first: %s" % (len(errors), errors[:5]))
    if after["names"] != ["resident-a", "resident-b"]:
        wrong.append("instances: %s" % after["names"])
    if after["procs"] != before_procs:
        wrong.append("processes in the root: %s -> %s" % (before_procs, after["procs"]))
    if after["monitors"] != before_mon or len(before_mon) != 2:
        wrong.append("monitors (pid: fds): %s -> %s" % (before_mon, after["monitors"]))
    if after["rows"] != before_rows:
        wrong.append("rows: %s -> %s" % (before_rows, after["rows"]))
    # the same rows use the same pages; the file keeps at most the
    # high-water mark of 8 instances in flight (free pages are reused)
    if after["db"][1] != before_db[1] or after["db"][0] > before_db[0] + 16 * 4096:
        wrong.append("database (bytes, used pages) after a checkpoint: %s -> %s"
                     % (before_db, after["db"]))
    assert wrong == [], "\n".join(wrong)
    root.ok("delete", "--force", "resident-a")
    root.ok("delete", "--force", "resident-b")
    assert root.leftovers() == {}


@pytest.mark.skipif(not os.path.exists("/dev/kvm"), reason="no /dev/kvm on this host")
def test_vm_launch_stop_snapshot_from_two_shells(root):
    """A microVM (the tiny `echo` guest) driven from two shells: two
    launches of one name, stop during a snapshot, two stops, delete during
    a snapshot."""
    from test_cli_vm import guest
    vm = ["--vm", "--kernel", guest("echo"), "--memory", "64M", "--disk-size", "64M"]
    a, b = race(root.popen("launch", "busybox", "v1", *vm),
                root.popen("launch", "busybox", "v1", *vm))
    assert sorted([a.returncode == 0, b.returncode == 0]) == [False, True], said(a, b)
    loser = a if a.returncode else b
    assert one_line_error(loser, r"instance `v1` already exists|%s" % BUSY), said(a, b)
    assert root.info("v1")["status"] == "running"
    for i in range(3):
        s, st = race(root.popen("snapshot", "create", "v1", "s%d" % i),
                     root.popen("stop", "--force", "v1"))
        assert s.returncode == 0 and s.stderr == "" or one_line_error(s, BUSY), said(s, st)
        assert st.returncode == 0 and st.stderr == "" or one_line_error(
            st, r"is not running|%s" % BUSY), said(s, st)
        info = root.info("v1")
        assert info["status"] == "stopped", (info, said(s, st))
        snaps = root.ok("snapshot", "list", "v1").stdout
        sdir = os.path.join(root.path, "instances", "v1", "snapshots", "s%d" % i)
        assert (("s%d " % i) in snaps) == (s.returncode == 0) == os.path.isdir(sdir), \
            (snaps, said(s, st))
        root.ok("start", "v1")
        a, b = race(root.popen("stop", "--force", "v1"), root.popen("stop", "--force", "v1"))
        assert sorted([a.returncode, b.returncode])[0] == 0, said(a, b)
        for p in (a, b):
            assert p.returncode == 0 and p.stderr == "" or one_line_error(
                p, r"instance `v1` is not running|%s" % BUSY), said(a, b)
        assert root.info("v1")["status"] == "stopped"
        root.ok("start", "v1")
    s, d = race(root.popen("snapshot", "create", "v1", "last"),
                root.popen("delete", "--force", "v1"))
    assert d.returncode == 0 and d.stderr == "", said(s, d)
    assert s.returncode == 0 and s.stderr == "" or one_line_error(
        s, r"instance `v1` not found|%s" % BUSY), said(s, d)
    assert root.names() == []
    assert root.leftovers() == {}
