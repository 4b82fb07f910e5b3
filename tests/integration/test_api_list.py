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
