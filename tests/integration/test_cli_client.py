# SPDX-License-Identifier: Apache-2.0
"""The CLI's verbs go through the REST API (src/cli/client.c): to the
cloisond serving the state root when there is one, found by the link
ROOT/cloisond.sock it makes to its socket, else through the router
in-process.  Seen from the daemon's side: its operations list and its
request log show the CLI's verbs; with no daemon, they run in-process."""
import os
import shutil
import tarfile

from cloison_cli import cl  # noqa: F401 (cl: fixture)
from test_api import Daemon


def ran(p):
    assert p.returncode == 0, p.stderr
    return p


def test_without_a_daemon_verbs_run_in_process(cl):
    p = ran(cl("--debug", "launch", "--no-network", "busybox", "solo", "--", "sleep", "100000"))
    assert "in-process: no daemon serves" in p.stderr
    assert not os.path.lexists(os.path.join(cl.root, "cloisond.sock"))
    p = ran(cl("--debug", "list", "--format", "json"))
    assert "in-process" in p.stderr and '"solo"' in p.stdout
    ran(cl("stop", "--timeout", "0", "solo"))
    assert cl.info("solo")["status"] == "stopped"
    # an operation's error is the command's, on one line
    p = cl("stop", "solo", check=False)
    assert p.returncode == 1 and p.stderr == "cloison: instance `solo` is not running\n"
    ran(cl("delete", "solo"))


def test_with_a_daemon_verbs_go_through_it(cl, tmp_path):
    d = Daemon(tmp_path, netns=False)
    d.root = cl.root
    d.start()
    try:
        link = os.path.join(cl.root, "cloisond.sock")
        assert os.readlink(link) == os.path.realpath(d.sock)
        p = ran(cl("--debug", "launch", "--no-network", "busybox", "viad", "--",
                   "sleep", "100000"))
        assert "through the daemon serving" in p.stderr and "in-process" not in p.stderr
        listed = cl.list()
        assert [i["name"] for i in listed] == ["viad"] and listed[0]["status"] == "running"
        ran(cl("stop", "--timeout", "0", "viad"))
        p = cl("stop", "viad", check=False)
        assert p.returncode == 1 and p.stderr == "cloison: instance `viad` is not running\n"
        # the daemon made and ran them: its operations, its request log
        ops = d.ok("GET", "/1.0/operations?recursion=1")
        done = {(o["description"], o["status"]) for o in ops}
        assert ("Creating instance", "success") in done and \
            ("Stopping instance", "success") in done, ops
        log = open(d.log).read()
        assert "POST /1.0/instances: 202" in log
        assert "GET /1.0/instances?recursion=1: 200" in log
        assert "PUT /1.0/instances/viad/state: 409" in log
        ran(cl("delete", "viad"))
        assert d.ok("GET", "/1.0/instances") == []
        # an import by the daemon (the file uploaded to it), its progress
        # read from the event stream
        rootfs = tmp_path / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy(shutil.which("busybox"), str(rootfs / "bin"))
        with tarfile.open(str(tmp_path / "rootfs.tar.gz"), "w:gz") as t:
            t.add(str(rootfs), arcname=".")
        p = ran(cl("image", "import", str(tmp_path / "rootfs.tar.gz"), "viad:1"))
        assert "done" in p.stdout and len(p.stdout.splitlines()[-1]) == 64, p.stdout
        assert "Importing uploaded image" in {o["description"]
                                    for o in d.ok("GET", "/1.0/operations?recursion=1")}
    finally:
        d.stop()
    # the daemon gone, its link is too, and the CLI works on its own
    assert not os.path.lexists(os.path.join(cl.root, "cloisond.sock"))
    p = ran(cl("--debug", "list"))
    assert "in-process" in p.stderr


def test_a_dead_daemons_link_is_passed_over(cl, tmp_path):
    """kill -9 leaves the link and the socket file: nothing answers there,
    so the CLI works in-process."""
    d = Daemon(tmp_path, netns=False)
    d.root = cl.root
    d.start()
    d.proc.kill()
    d.proc.wait()
    assert os.path.lexists(os.path.join(cl.root, "cloisond.sock"))
    p = ran(cl("--debug", "launch", "--no-network", "busybox", "after", "--", "sleep", "100000"))
    assert "in-process" in p.stderr
    ran(cl("delete", "--force", "after"))


def test_a_daemon_of_another_root_is_not_used(cl, tmp_path):
    """A link that leads to a daemon serving another root (copied, or a
    socket path reused) is not followed."""
    other = tmp_path / "other"
    other.mkdir()
    d = Daemon(other, netns=False)
    d.start()
    try:
        os.makedirs(cl.root, exist_ok=True)
        os.symlink(os.path.realpath(d.sock), os.path.join(cl.root, "cloisond.sock"))
        p = ran(cl("--debug", "list"))
        assert "in-process" in p.stderr and "not `" in p.stderr
    finally:
        d.stop()
