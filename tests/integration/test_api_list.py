# SPDX-License-Identifier: Apache-2.0
"""GET /1.0/instances keeps its last text while the state does not
change (src/api/instances.c, cl_mgr_instance_check): what it answers must
follow every change all the same, made by the daemon, by another
process on the same state root (`cloison --local`, a direct SQLite
write), or by a monitor that died (kill -9), seen through its pidfd."""
import os
import signal
import sqlite3
import time

from cloison_cli import cl, pid_alive  # noqa: F401 (cl: fixture)
from test_api import Daemon


def names(d, recursion=1):
    got = d.ok("GET", "/1.0/instances?recursion=%d" % recursion)
    return got if recursion == 0 else {i["name"]: i["status"] for i in got}


def test_list_follows_every_change(cl, tmp_path):
    d = Daemon(tmp_path, netns=False)
    d.root = cl.root
    d.start()
    try:
        assert names(d) == {} and names(d, 0) == []
        cl("launch", "busybox", "a", "--", "sleep", "100000")   # through the daemon
        assert names(d) == names(d) == {"a": "running"}
        assert names(d, 0) == ["/1.0/instances/a"]
        # another process, another connection to the database
        cl("--local", "launch", "busybox", "b", "--", "sleep", "100000")
        assert names(d) == {"a": "running", "b": "running"}
        cl("--local", "stop", "--timeout", "0", "b")
        assert names(d) == {"a": "running", "b": "stopped"}
        assert names(d, 0) == ["/1.0/instances/a", "/1.0/instances/b"]
        db = sqlite3.connect(os.path.join(cl.root, "cloison.db"), timeout=30)
        with db:
            db.execute("INSERT INTO instances (name, kind, image, status, config, created)"
                       " SELECT 'c', kind, image, status, config, created FROM instances"
                       " WHERE name = 'b'")
        db.close()
        assert names(d) == {"a": "running", "b": "stopped", "c": "stopped"}
        # a monitor killed: the next list sees it gone and says so
        monitor = cl.info("a")["monitor_pid"]
        os.kill(monitor, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(monitor):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert names(d)["a"] == "stopped"
        for n in ("a", "b", "c"):
            cl("delete", "--force", n)
        assert names(d) == {}
    finally:
        d.stop()


def test_list_filters(cl, tmp_path):
    """filter=: Incus's "KEY eq|ne VALUE [and ...]" on name, status, kind
    (type) and image; a filtered list is not the kept one, nor kept."""
    d = Daemon(tmp_path, netns=False)
    d.root = cl.root
    d.start()
    try:
        cl("launch", "busybox", "a", "--", "sleep", "100000")
        cl("launch", "busybox", "b", "--", "sleep", "100000")
        cl("stop", "--timeout", "0", "b")
        q = "/1.0/instances?recursion=1&filter="
        assert names(d) == {"a": "running", "b": "stopped"}
        got = d.ok("GET", q + "status+eq+running")
        assert [i["name"] for i in got] == ["a"]
        assert d.ok("GET", "/1.0/instances?filter=status%20ne%20running") == ["/1.0/instances/b"]
        got = d.ok("GET", q + "type+eq+container+and+name+ne+a+and+image+eq+busybox:latest")
        assert [i["name"] for i in got] == ["b"], got
        assert d.ok("GET", q + "kind+eq+vm") == []
        assert names(d) == {"a": "running", "b": "stopped"}  # the whole list still
        for f, msg in (("colour+eq+red", "unknown key `colour` (name, status, kind, image)"),
                       ("status+is+running", 'expected "KEY eq|ne VALUE [and ...]"'),
                       ("status+eq", 'expected "KEY eq|ne VALUE [and ...]"'),
                       ("name+eq+a+or+name+eq+b", 'expected "KEY eq|ne VALUE [and ...]"')):
            st, j, _ = d.request("GET", q + f)
            assert st == 400 and j["error"].startswith("query parameter filter: " + msg), (f, j)
    finally:
        d.stop()
