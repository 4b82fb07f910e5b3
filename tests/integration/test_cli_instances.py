# SPDX-License-Identifier: Apache-2.0
"""The `cloison` instance commands on containers, driven through the real
CLI with a state root of the test's own."""
import os
import signal
import subprocess
import time

import pytest

from cloison_cli import cl, mounts_under, pid_alive  # noqa: F401 (cl: fixture)


def assert_gone(cl, name, pids=()):
    assert name not in [i["name"] for i in cl.list()]
    assert not os.path.exists(os.path.join(cl.root, "instances", name))
    assert cl.cgroups_of(name) == []
    assert mounts_under(os.path.join(cl.root, "instances", name)) == []
    for p in pids:
        assert not pid_alive(p), "pid %d still alive" % p


def test_launch_exec_stop_start_delete(cl):
    cl("launch", "busybox", "c1", "--env", "GREETING=hello", "--", "sleep", "100000")
    info = cl.info("c1")
    assert info["status"] == "running" and info["kind"] == "container"
    pid, monitor = info["pid"], info["monitor_pid"]
    assert pid_alive(pid) and pid_alive(monitor)
    out = cl("exec", "c1", "--", "sh", "-c", "echo $GREETING $(hostname); cat /proc/1/cmdline").stdout
    assert out.startswith("hello c1\nsleep")
    assert cl("exec", "c1", "--", "sh", "-c", "exit 5", check=False).returncode == 5
    # the rootfs is an overlay over the image, visible only to the instance
    assert mounts_under(os.path.join(cl.root, "instances", "c1")) == []
    assert cl.cgroups_of("c1") != []
    t = time.monotonic()
    cl("stop", "--timeout", "1", "c1")
    assert time.monotonic() - t < 5
    info = cl.info("c1")
    assert info["status"] == "stopped" and info["exit_code"] == 137
    assert not pid_alive(pid) and not pid_alive(monitor)
    assert cl.cgroups_of("c1") == []
    cl("start", "c1")
    pid = cl.info("c1")["pid"]
    p = cl("delete", "c1", check=False)
    assert p.returncode != 0 and "is running" in p.stderr
    cl("delete", "--force", "c1")
    assert_gone(cl, "c1", [pid, monitor])


def test_graceful_stop_records_exit_code(cl):
    cl("launch", "busybox", "g1", "--", "sh", "-c",
       "trap 'echo bye; exit 3' TERM; echo up; while true; do sleep 0.1; done")
    time.sleep(0.3)
    t = time.monotonic()
    cl("stop", "--timeout", "10", "g1")
    assert time.monotonic() - t < 5
    assert cl.info("g1")["exit_code"] == 3
    assert cl("logs", "g1").stdout == "up\nbye\n"


def test_default_command_idles_and_list_formats(cl):
    cl("launch", "busybox", "idle")  # the image's `sh`, with stdin held open
    time.sleep(0.2)
    lst = cl.list()
    assert [(i["name"], i["status"], i["image"]) for i in lst] == [
        ("idle", "running", "busybox:latest")]
    table = cl("list").stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "KIND", "STATUS", "IMAGE"]
    assert table[1].split()[:4] == ["idle", "container", "running", "busybox:latest"]
    restarted = cl("restart", "--timeout", "0", "idle")
    assert restarted.returncode == 0 and cl.info("idle")["status"] == "running"


def test_run_is_attached_ephemeral_and_propagates_exit(cl):
    p = cl("run", "busybox", "--", "sh", "-c", "echo out; echo err >&2; exit 42", check=False)
    assert p.returncode == 42 and p.stdout == "out\n" and "err" in p.stderr
    p = cl("run", "busybox", "--", "sh", "-c", "read x; echo got $x", input="line\n")
    assert p.stdout == "got line\n"
    assert cl.list() == []
    assert os.listdir(os.path.join(cl.root, "instances")) == []


@pytest.mark.parametrize("args, message", [
    (["launch", "nosuchimage", "x1"], "image `nosuchimage` not found"),
    (["launch", "busybox", "bad/name"], "invalid instance name `bad/name`"),
    (["launch", "busybox", "..x"], "invalid instance name"),
    (["launch", "busybox", "x1", "--memory", "512X"], "--memory"),
    (["launch", "busybox", "x1", "--disk-size", "12Q"], "--disk-size"),
    (["launch", "busybox", "x1", "--env", "NOEQUALS"], "--env `NOEQUALS`"),
    (["launch", "busybox", "x1", "-p", "80"], "80"),
    (["launch", "busybox", "x1", "--no-network", "-p", "80:80"], "-p needs a network"),
    (["launch", "busybox", "x1", "--network", "nosuchnet"], "nosuchnet"),
    (["info", "ghost"], "instance `ghost` not found"),
    (["stop", "ghost"], "instance `ghost` not found"),
    (["delete", "ghost"], "instance `ghost` not found"),
    (["exec", "ghost", "--", "true"], "instance `ghost` not found"),
    (["snapshot", "create", "ghost", "s"], "instance `ghost` not found"),
    (["config", "set", "ghost", "limits.memory=64M"], "instance `ghost` not found"),
])
def test_bad_input_one_line_nothing_created(cl, args, message):
    p = cl(*args, check=False)
    assert p.returncode != 0
    assert p.stderr.count("\n") == 1 and message in p.stderr, p.stderr
    assert cl.list() == []
    inst = os.path.join(cl.root, "instances")
    assert not os.path.exists(inst) or os.listdir(inst) == []
    assert cl.cgroups_of("x1") == []


def test_duplicate_name_and_bad_values(cl):
    cl("launch", "busybox", "d1", "--", "sleep", "100000")
    pid = cl.info("d1")["pid"]
    p = cl("launch", "busybox", "d1", check=False)
    assert p.returncode != 0 and p.stderr == "cloison: instance `d1` already exists\n"
    assert cl.info("d1")["pid"] == pid and pid_alive(pid)
    p = cl("config", "set", "d1", "limits.memory=12Z", check=False)
    assert p.returncode != 0 and "limits.memory" in p.stderr
    p = cl("config", "set", "d1", "limits.nothing=1", check=False)
    assert p.returncode != 0 and "unknown key `limits.nothing`" in p.stderr
    p = cl("snapshot", "restore", "d1", "nosnap", check=False)
    assert p.returncode != 0 and "snapshot `nosnap` of instance `d1` not found" in p.stderr
    p = cl("copy", "d1", "d1", check=False)
    assert p.returncode != 0 and "already exists" in p.stderr
    p = cl("launch", "busybox", "d2", "--", "/no/such/binary", check=False)
    assert p.returncode != 0 and "/no/such/binary" in p.stderr and p.stderr.count("\n") == 1
    assert [i["name"] for i in cl.list()] == ["d1"]
    assert cl.cgroups_of("d2") == []


def limit_file(cl, name, v1, v2):
    for d in cl.cgroups_of(name):
        if os.path.exists(os.path.join(d, v1)):
            return open(os.path.join(d, v1)).read().strip()
        if os.path.exists(os.path.join(d, v2)):
            return open(os.path.join(d, v2)).read().strip()
    return None


def test_limits_at_launch_and_live(cl):
    cl("launch", "busybox", "l1", "--memory", "64M", "--cpus", "1", "--", "sleep", "100000")
    assert limit_file(cl, "l1", "memory.limit_in_bytes", "memory.max") == str(64 << 20)
    cl("config", "set", "l1", "limits.memory=96M", "limits.cpu=2")
    assert limit_file(cl, "l1", "memory.limit_in_bytes", "memory.max") == str(96 << 20)
    assert limit_file(cl, "l1", "cpu.cfs_quota_us", "cpu.max").split()[0] == "200000"
    assert cl.info("l1")["config"]["memory"] == 96 << 20
    # kept for the next start
    cl("stop", "--force", "l1")
    cl("start", "l1")
    assert limit_file(cl, "l1", "memory.limit_in_bytes", "memory.max") == str(96 << 20)


def test_snapshot_restore_round_trip(cl):
    cl("launch", "busybox", "s1", "--", "sleep", "100000")
    cl("exec", "s1", "--", "sh", "-c", "echo before > /root/kept; rm /etc/hosts")
    cl("snapshot", "create", "s1", "snap0")
    cl("exec", "s1", "--", "sh", "-c", "echo after > /root/later; echo changed > /root/kept")
    assert "snap0" in cl("snapshot", "list", "s1").stdout
    cl("snapshot", "restore", "s1", "snap0")
    assert cl.info("s1")["status"] == "running"
    out = cl("exec", "s1", "--", "sh", "-c",
             "cat /root/kept; ls /root; test -e /etc/hosts && echo hosts; true").stdout
    assert out == "before\nkept\n"  # later is gone, the whiteout of /etc/hosts kept
    # restore on a stopped instance leaves it stopped
    cl("stop", "--force", "s1")
    cl("snapshot", "restore", "s1", "snap0")
    assert cl.info("s1")["status"] == "stopped"
    cl("snapshot", "delete", "s1", "snap0")
    assert "snap0" not in cl("snapshot", "list", "s1").stdout
    assert not os.path.exists(os.path.join(cl.root, "instances", "s1", "snapshots", "snap0"))


def test_copy_is_independent(cl):
    cl("launch", "busybox", "src", "--", "sleep", "100000")
    cl("exec", "src", "--", "sh", "-c", "echo orig > /root/f")
    cl("copy", "src", "dst")
    assert cl.info("dst")["status"] == "stopped"
    cl("start", "dst")
    assert cl("exec", "dst", "--", "cat", "/root/f").stdout == "orig\n"
    cl("exec", "dst", "--", "sh", "-c", "echo copy > /root/f")
    assert cl("exec", "src", "--", "cat", "/root/f").stdout == "orig\n"


def test_killed_monitor_is_reconciled(cl):
    cl("launch", "busybox", "k1", "--", "sleep", "100000")
    info = cl.info("k1")
    os.kill(info["monitor_pid"], signal.SIGKILL)
    time.sleep(0.1)
    lst = cl.list()
    assert lst[0]["status"] == "stopped"
    time.sleep(0.1)
    assert not pid_alive(info["pid"])
    assert cl.cgroups_of("k1") == []
    cl("start", "k1")
    assert cl.info("k1")["status"] == "running"


def test_kill9_during_launch_leaves_consistent_state(cl):
    cl("list")  # the state root exists and the busybox image is made
    cl("run", "busybox", "--", "true")
    names = []
    for i, delay in enumerate([0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05]):
        name = "crash%d" % i
        names.append(name)
        p = subprocess.Popen([cl.bin, "--root", cl.root, "launch", "busybox", name,
                              "--no-network", "--", "sleep", "100000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.kill()
        p.wait()
    lst = {i["name"]: i for i in cl.list()}
    for name in names:
        d = os.path.join(cl.root, "instances", name)
        if name in lst:
            assert lst[name]["status"] in ("running", "stopped"), lst[name]
            assert os.path.isdir(d)
            if lst[name]["status"] == "running":
                assert cl("exec", name, "--", "true", check=False).returncode == 0
        else:
            assert not os.path.exists(d), name
            # a monitor whose launch was abandoned before it was recorded
            # (the CLI killed, its go pipe closed) removes its cgroups
            # itself as it aborts, which a loaded machine may delay
            deadline = time.monotonic() + 20
            while cl.cgroups_of(name) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert cl.cgroups_of(name) == []
    for name in lst:
        cl("delete", "--force", name)
        assert_gone(cl, name)


def test_image_in_use_cannot_be_removed(cl):
    cl("launch", "busybox", "user1", "--", "sleep", "100000")
    p = cl("image", "rm", "busybox", check=False)
    assert p.returncode != 0 and p.stderr.count("\n") == 1
    assert "busybox" in p.stderr and "user1" in p.stderr
    cl("delete", "--force", "user1")
    cl("image", "rm", "busybox")


def test_delete_force_of_a_container_frozen_behind_our_back(cl):
    """A snapshot killed between freezing the cgroup and recording it
    leaves frozen tasks, which take no SIGKILL under cgroup v1: stop and
    delete thaw first, whatever the recorded state."""
    cl("launch", "busybox", "frz", "--", "sleep", "100000")
    pid = cl.info("frz")["pid"]
    frozen = [c for c in cl.cgroups_of("frz") if os.path.exists(os.path.join(c, "freezer.state"))
              or os.path.exists(os.path.join(c, "cgroup.freeze"))]
    assert frozen, cl.cgroups_of("frz")
    for c in frozen:
        if os.path.exists(os.path.join(c, "freezer.state")):
            open(os.path.join(c, "freezer.state"), "w").write("FROZEN")
        else:
            open(os.path.join(c, "cgroup.freeze"), "w").write("1")
    t = time.monotonic()
    cl("delete", "--force", "frz")
    assert time.monotonic() - t < 5
    assert_gone(cl, "frz", [pid])


def test_kill9_during_delete_and_snapshot_is_completed_or_undone(cl):
    names = ["del%d" % i for i in range(5)]
    for name in names:
        cl("launch", "busybox", name, "--", "sleep", "100000")
        cl("exec", name, "--", "sh", "-c", "echo x > /root/f")
    for i, name in enumerate(names):
        # a snapshot killed at some point, then a delete killed at some point
        p = subprocess.Popen([cl.bin, "--root", cl.root, "snapshot", "create", name, "s"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.003 * i)
        p.kill()
        p.wait()
        p = subprocess.Popen([cl.bin, "--root", cl.root, "delete", "--force", name],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.004 * i)
        p.kill()
        p.wait()
    lst = {i["name"]: i for i in cl.list()}
    for name in names:
        d = os.path.join(cl.root, "instances", name)
        if name not in lst:
            assert not os.path.exists(d) and cl.cgroups_of(name) == []
            continue
        # survived: whole, and its snapshot either listed and complete or absent
        assert lst[name]["status"] in ("running", "stopped")
        snaps = cl("snapshot", "list", name).stdout
        sdir = os.path.join(d, "snapshots", "s")
        assert ("s " in snaps) == os.path.isdir(sdir), (snaps, os.path.exists(sdir))
        cl("delete", "--force", name)
        assert_gone(cl, name)
