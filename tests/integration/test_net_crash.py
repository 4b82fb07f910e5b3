# SPDX-License-Identifier: Apache-2.0
"""cloison networks after a kill -9 in the middle of `network create` or
`network delete`, and on a kernel without nf_tables: the next command
leaves no bridge, nftables table or dnsmasq of the half-made network, and
never touches another state root's objects.  Each test builds its own
namespaces (test_net_lab)."""
import json
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest

from test_net_lab import dnsmasq_pids, lab  # noqa: F401
from conftest import binary

CREATE_STEPS = ["create:row", "create:named", "create:bridge", "create:nft", "create:dnsmasq"]
DELETE_STEPS = ["teardown:dnsmasq", "teardown:nft"]


def run_env(lab, env, *args, root=None):
    """cloison in the lab's host namespace with extra environment."""
    e = dict(os.environ, **env)
    return subprocess.run(["ip", "netns", "exec", lab.host, binary("cloison"), "--root",
                           root or lab.root] + list(args),
                          env=e, capture_output=True, text=True, timeout=60)


def rows(root):
    db = sqlite3.connect(os.path.join(root, "cloison.db"))
    try:
        return sorted(db.execute("SELECT name, state FROM networks").fetchall())
    finally:
        db.close()


def tag_of(lab, root=None):
    db = sqlite3.connect(os.path.join(root or lab.root, "cloison.db"))
    try:
        return db.execute("SELECT value FROM net_meta WHERE key = 'tag'").fetchone()[0]
    finally:
        db.close()


def dnsmasqs(root):
    """Pids of the dnsmasqs of one state root (by their pid file)."""
    return dnsmasq_pids("--pid-file=%s/net/" % root)


def objects(lab, root=None):
    """(links, tables, dnsmasqs) of one state root in the host namespace."""
    root = root or lab.root
    tag = tag_of(lab, root)
    links = [n for n in lab.links() if n.startswith(("clb-" + tag, "clv-" + tag,
                                                      "clt-" + tag, "clq-" + tag))]
    tables = [t.split()[-1] for t in lab.nft_tables() if t.startswith("table ip cloison-")]
    owned = [t for t in tables
             if lab.ns(lab.host, "nft", "list", "chain", "ip", t, "owner_" + tag,
                       check=False).returncode == 0]
    return sorted(links), sorted(owned), dnsmasqs(root)


@pytest.mark.parametrize("step", CREATE_STEPS)
def test_kill9_during_create(lab, step):
    lab.cloison("network", "list")  # the default network exists
    before = objects(lab)
    r = run_env(lab, {"CLOISON_NET_TEST_CRASH_AT": step},
                "network", "create", "half", "--subnet", "10.88.40.0/24")
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr)
    lab.cloison("network", "list")
    assert objects(lab) == before
    assert rows(lab.root) == [("default", "ready")]
    # the name and the subnet are free again
    lab.cloison("network", "create", "half", "--subnet", "10.88.40.0/24")
    lab.cloison("network", "delete", "half")
    assert objects(lab) == before


@pytest.mark.parametrize("step", DELETE_STEPS)
def test_kill9_during_delete(lab, step):
    lab.cloison("network", "list")
    before = objects(lab)
    lab.cloison("network", "create", "gone", "--subnet", "10.88.41.0/24")
    r = run_env(lab, {"CLOISON_NET_TEST_CRASH_AT": step}, "network", "delete", "gone")
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr)
    lab.cloison("network", "list")
    assert objects(lab) == before
    assert rows(lab.root) == [("default", "ready")]


def test_kill9_race_during_create(lab):
    """SIGKILL at random moments of `network create` (the hooks above stop
    between steps; this also lands inside them, dnsmasq's start included)."""
    lab.cloison("network", "list")
    before = objects(lab)
    rnd = random.Random(5)
    for i in range(6):
        p = subprocess.Popen(["ip", "netns", "exec", lab.host, binary("cloison"), "--root",
                              lab.root, "network", "create", "race", "--subnet", "10.88.42.0/24"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.0, 0.03))
        # ip netns exec execs cloison in place: p.pid is cloison
        p.send_signal(signal.SIGKILL)
        p.wait()
        lab.cloison("network", "list")
        if ("race", "ready") in rows(lab.root):
            lab.cloison("network", "delete", "race")
        assert objects(lab) == before, i
        assert rows(lab.root) == [("default", "ready")]


def test_no_nftables_fails_cleanly(lab):
    """Where the kernel has no nf_tables libnftables would exit(3) inside
    cloison: the probe stands for such a kernel by asking a subsystem that
    no kernel has (CLOISON_NET_TEST_NO_NFTABLES)."""
    no_nft = {"CLOISON_NET_TEST_NO_NFTABLES": "1"}
    links = lab.links()
    tables = lab.nft_tables()
    r = run_env(lab, no_nft, "network", "create", "nonft", "--subnet", "10.88.43.0/24")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("cloison: network `nonft`: nftables: the kernel has no nf_tables")
    # nothing left: no bridge, table, dnsmasq or row
    assert lab.links() == links and lab.nft_tables() == tables
    assert dnsmasqs(lab.root) == []
    assert rows(lab.root) == []
    # `list` is a read: it makes no default network, so it needs no nftables
    r = run_env(lab, no_nft, "network", "list")
    assert r.returncode == 0 and r.stderr == "" and len(r.stdout.splitlines()) == 1, r
    assert lab.links() == links and rows(lab.root) == []
    # commands that need no rule never call libnftables: recovery of a
    # half-made network still removes its bridge
    lab.cloison("network", "create", "keep", "--subnet", "10.88.44.0/24")
    r = run_env(lab, {"CLOISON_NET_TEST_CRASH_AT": "create:bridge"},
                "network", "create", "half", "--subnet", "10.88.45.0/24")
    assert r.returncode == -signal.SIGKILL
    r = run_env(lab, no_nft, "network", "cleanup")
    assert r.returncode == 0, r.stderr
    assert ("half", "creating") not in rows(lab.root)
    r = run_env(lab, no_nft, "network", "info", "keep")
    assert r.returncode == 0, r.stderr
    tag = tag_of(lab)
    assert [n for n in lab.links() if n.startswith("clb-" + tag)] == \
        [json.loads(r.stdout)["bridge"]]


def test_two_state_roots_in_one_namespace(lab):
    """Two state roots share the host namespace: their default networks get
    different subnets, and neither's recovery removes the other's half-made
    network, tables or dnsmasqs."""
    root_b = os.path.join(lab.tmp, "root-b")
    try:
        lab.cloison("network", "list")
        assert run_env(lab, {}, "network", "list", root=root_b).returncode == 0
        assert tag_of(lab) != tag_of(lab, root_b)
        a = lab.cloison_json("network", "info", "default")
        b = json.loads(run_env(lab, {}, "network", "info", "default", root=root_b).stdout)
        assert a["subnet"] == "10.87.0.0/24" and b["subnet"] == "10.87.1.0/24"
        objs_a = objects(lab)
        objs_b = objects(lab, root_b)
        assert len(objs_a[0]) == len(objs_b[0]) == 1 and len(objs_a[1]) == len(objs_b[1]) == 1
        # root B dies making a network, with bridge, table and dnsmasq made
        r = run_env(lab, {"CLOISON_NET_TEST_CRASH_AT": "create:dnsmasq"},
                    "network", "create", "half", "--subnet", "10.88.46.0/24", root=root_b)
        assert r.returncode == -signal.SIGKILL
        half_b = objects(lab, root_b)
        assert len(half_b[0]) == 2 and len(half_b[1]) == 2 and len(half_b[2]) == 2
        # root A's recovery leaves it alone
        lab.cloison("network", "cleanup")
        lab.cloison("network", "list")
        assert objects(lab, root_b) == half_b and objects(lab) == objs_a
        # root B's own recovery removes it, and nothing of root A
        assert run_env(lab, {}, "network", "list", root=root_b).returncode == 0
        assert objects(lab, root_b) == objs_b and objects(lab) == objs_a
        # deleting B's default leaves A's default whole
        assert run_env(lab, {}, "network", "delete", "default", root=root_b).returncode == 0
        assert objects(lab) == objs_a
        assert objects(lab, root_b) == ([], [], [])
    finally:
        run_env(lab, {}, "network", "delete", "half", root=root_b)
        run_env(lab, {}, "network", "delete", "default", root=root_b)
        for pid in dnsmasqs(root_b):
            os.kill(pid, signal.SIGKILL)


def test_half_made_network_without_row(lab):
    """The state reported from a crash: bridge, table and dnsmasq of a
    network whose row is gone (and whose directory, pid file included, may
    be gone too): the next command recognises them as this root's by name,
    owner chain and dnsmasq's --pid-file, and removes them."""
    lab.cloison("network", "list")
    before = objects(lab)
    r = run_env(lab, {"CLOISON_NET_TEST_CRASH_AT": "create:dnsmasq"},
                "network", "create", "norow", "--subnet", "10.88.47.0/24")
    assert r.returncode == -signal.SIGKILL
    made = objects(lab)
    assert [len(x) for x in made] == [2, 2, 2]
    db = sqlite3.connect(os.path.join(lab.root, "cloison.db"))
    db.execute("DELETE FROM networks WHERE name = 'norow'")
    db.commit()
    db.close()
    os.unlink(os.path.join(lab.root, "net", "norow", "dnsmasq.pid"))
    lab.cloison("network", "list")
    assert objects(lab) == before
    assert not os.path.exists(os.path.join(lab.root, "net", "norow"))


def test_dnsmasq_without_pid_file_is_replaced(lab):
    """A network's dnsmasq that its pid file does not name (the file was
    lost): stopped, and one dnsmasq started in its place."""
    lab.cloison("network", "create", "pidless", "--subnet", "10.88.48.0/24")
    lab.cloison("network", "list")
    old = set(dnsmasqs(lab.root))
    os.unlink(os.path.join(lab.root, "net", "pidless", "dnsmasq.pid"))
    lab.cloison("network", "list")
    now = set(dnsmasqs(lab.root))
    assert len(now) == len(old) == 2 and len(now - old) == 1
    c = lab.container("p1", "pidless")
    assert "10.88.48.2" in c.resolve("p1", "10.88.48.1")


def test_two_state_roots_one_host_port(lab):
    """A host port one state root forwards is refused to another root of
    the same namespace (the first table's DNAT would win)."""
    root_b = os.path.join(lab.tmp, "root-b")
    try:
        lab.cloison("network", "attach-vm", "--instance", "va")
        lab.cloison("network", "forward", "--instance", "va", "8080:80")
        assert run_env(lab, {}, "network", "attach-vm", "--instance", "vb",
                       root=root_b).returncode == 0
        r = run_env(lab, {}, "network", "forward", "--instance", "vb", "8080:80", root=root_b)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
        assert "host port 8080/tcp is already forwarded by nftables table `cloison-%s-default`" \
            % tag_of(lab) in r.stderr
        # udp, and another port, are free
        for spec in ("8080:80/udp", "8081:80"):
            r = run_env(lab, {}, "network", "forward", "--instance", "vb", spec, root=root_b)
            assert r.returncode == 0, r.stderr
        # the same root's own check is unchanged
        r = lab.cloison("network", "forward", "--instance", "va", "8080:81", check=False)
        assert r.returncode == 1 and "already forwarded to `va`" in r.stderr
    finally:
        run_env(lab, {}, "network", "detach", "--instance", "vb", root=root_b)
        run_env(lab, {}, "network", "delete", "default", root=root_b)
        lab.cloison("network", "detach", "--instance", "va", check=False)
        for pid in dnsmasqs(root_b):
            os.kill(pid, signal.SIGKILL)
