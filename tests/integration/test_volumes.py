# SPDX-License-Identifier: Apache-2.0
"""`cloison volume`: volumes attached to containers (a directory, and a
filesystem image whose size holds), data kept across the deletion of
the instance, delete refused while attached, snapshots and restore,
copies, and volumes declared in a Cloisonfile.  (VMs: tests/lab.)"""
import json
import os
import subprocess
import textwrap

import pytest

from cloison_cli import cl  # noqa: F401 (cl: fixture)
from test_up import no_network_left  # noqa: F401 (autouse fixture)


def volumes(cl):
    return {v["name"]: v for v in json.loads(cl("volume", "list", "--format", "json").stdout)}


def test_directory_volume_outlives_its_instance(cl):
    cl("volume", "create", "data")
    v = volumes(cl)["data"]
    assert v["type"] == "dir" and v["attachments"] == [] and os.path.isdir(v["path"])
    cl("launch", "busybox", "c1", "--", "sleep", "100000")
    p = cl("volume", "attach", "data", "c1", "/data")
    assert p.stdout == "instance `c1` runs: the change applies at its next start\n"
    cl("restart", "--timeout", "0", "c1")
    cl("exec", "c1", "--", "sh", "-c", "echo kept > /data/f")
    assert cl.info("c1")["volumes"][0]["path"] == "/data"
    # refused while attached
    p = cl("volume", "delete", "data", check=False)
    assert p.returncode == 1
    assert p.stderr == "cloison: volume `data` is attached to `c1`: detach it first\n"
    # the instance goes, the volume stays (detached)
    cl("delete", "--force", "c1")
    assert volumes(cl)["data"]["attachments"] == []
    with open(os.path.join(v["path"], "f")) as f:
        assert f.read() == "kept\n"
    # another instance finds the data; read-only when asked
    cl("launch", "busybox", "c2", "--", "sleep", "100000")
    cl("volume", "attach", "--readonly", "data", "c2", "/srv/data")
    cl("restart", "--timeout", "0", "c2")
    assert cl("exec", "c2", "--", "cat", "/srv/data/f").stdout == "kept\n"
    assert cl("exec", "c2", "--", "touch", "/srv/data/g", check=False).returncode != 0
    p = cl("volume", "detach", "data", "c2")
    assert "applies at its next start" in p.stdout
    cl("stop", "--timeout", "0", "c2")
    cl("volume", "delete", "data")
    assert "data" not in volumes(cl) and not os.path.exists(v["path"])


def test_sized_volume_is_an_image_whose_size_holds(cl):
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("no /dev/loop-control: no loop devices on this host")
    cl("volume", "create", "small", "--size", "8M")
    v = volumes(cl)["small"]
    assert v["type"] == "image" and v["size"] == 8 << 20 and v["path"].endswith("/disk.img")
    cl("launch", "busybox", "c1", "--", "sleep", "100000")
    cl("volume", "attach", "small", "c1", "/data")
    cl("restart", "--timeout", "0", "c1")
    out = cl("exec", "c1", "--", "sh", "-c",
             "dd if=/dev/zero of=/data/big bs=1M count=32 2>&1; echo rc=$?").stdout
    assert "No space left on device" in out and "rc=1" in out
    cl("exec", "c1", "--", "sh", "-c", "rm /data/big; echo hello > /data/f; sync")
    # an image is attached to one instance at a time
    cl("launch", "busybox", "c2", "--", "sleep", "100000")
    p = cl("volume", "attach", "small", "c2", "/data", check=False)
    assert p.returncode == 1 and "attached to one instance at a time" in p.stderr
    cl("delete", "--force", "c1")
    cl("volume", "attach", "small", "c2", "/data")
    cl("restart", "--timeout", "0", "c2")
    assert cl("exec", "c2", "--", "cat", "/data/f").stdout == "hello\n"
    cl("delete", "--force", "c2")
    # no loop device left behind
    with open("/proc/mounts") as f:
        assert v["path"].rsplit("/", 1)[0] not in f.read()


def test_snapshot_restore_and_copy(cl):
    cl("volume", "create", "db")
    path = volumes(cl)["db"]["path"]
    with open(os.path.join(path, "row"), "w") as f:
        f.write("v1\n")
    cl("volume", "snapshot", "create", "db", "before")
    with open(os.path.join(path, "row"), "w") as f:
        f.write("v2 broken\n")
    cl("launch", "busybox", "c1", "--", "sleep", "100000")
    cl("volume", "attach", "db", "c1", "/var/db")
    cl("restart", "--timeout", "0", "c1")
    p = cl("volume", "snapshot", "restore", "db", "before", check=False)
    assert p.returncode == 1
    assert p.stderr == "cloison: volume `db` is in use by `c1`, which runs: stop it first\n"
    cl("stop", "--timeout", "0", "c1")
    cl("volume", "snapshot", "restore", "db", "before")
    cl("start", "c1")
    assert cl("exec", "c1", "--", "cat", "/var/db/row").stdout == "v1\n"
    assert volumes(cl)["db"]["snapshots"] == ["before"]
    # a copy is a volume of its own
    cl("volume", "copy", "db", "db2")
    with open(os.path.join(volumes(cl)["db2"]["path"], "row")) as f:
        assert f.read() == "v1\n"
    p = cl("volume", "snapshot", "restore", "db", "nope", check=False)
    assert p.stderr == "cloison: volume `db`: snapshot `nope` not found\n"
    cl("volume", "snapshot", "delete", "db", "before")
    assert volumes(cl)["db"]["snapshots"] == []
    p = cl("volume", "create", "db", check=False)
    assert p.stderr == "cloison: volume `db` already exists\n"
    p = cl("volume", "create", "bad/name", check=False)
    assert p.returncode == 1 and "volume name" in p.stderr
    p = cl("volume", "info", "none", check=False)
    assert p.stderr == "cloison: volume `none` not found\n"


def test_cloisonfile_volumes(cl, tmp_path):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "Cloisonfile").write_text(textwrap.dedent("""\
        volumes:
          data: {}
        machines:
          app:
            image: busybox
            project_folder: false
            networks: []
            command: sleep 100000
            volumes:
              - {name: data, path: /data}
        """))
    try:
        out = cl("up", cwd=str(proj)).stdout
        assert "volume data: created" in out
        cl("exec", "app", "--", "sh", "-c", "echo 1 > /data/n", cwd=str(proj))
        cl("down", "--destroy", cwd=str(proj))
        # the volume outlives the project's instances...
        (name,) = [n for n in volumes(cl) if n.endswith("-data")]
        cl("up", cwd=str(proj))
        assert cl("exec", "app", "--", "cat", "/data/n", cwd=str(proj)).stdout == "1\n"
        # ...unless asked
        cl("down", "--destroy", "--volumes", cwd=str(proj))
        assert name not in volumes(cl)
    finally:
        cl("down", "--destroy", "--volumes", cwd=str(proj), check=False)


def test_volumes_through_the_api(tmp_path):
    """/1.0/volumes in cloisond: the same calls, the library's errors as
    404 and 409."""
    from test_api import Daemon
    d = Daemon(tmp_path)
    d.start()
    try:
        j = d.ok("POST", "/1.0/volumes", {"name": "v", "size": "8M"}, status=201)
        assert j["type"] == "image" and j["size"] == 8 << 20
        d.ok("POST", "/1.0/volumes", {"name": "w"}, status=201)
        assert d.ok("GET", "/1.0/volumes") == ["/1.0/volumes/v", "/1.0/volumes/w"]
        assert d.request("POST", "/1.0/volumes", {"name": "w"})[0] == 409
        assert d.request("POST", "/1.0/volumes", {"name": "x", "size": "lots"})[0] == 400
        assert d.request("GET", "/1.0/volumes/none")[0] == 404
        subprocess.run([os.path.join(os.path.dirname(__file__), "..", "..", "build", "src", "cli",
                                     "cloison"), "--root", d.root, "launch", "--no-network",
                        "busybox", "c", "--", "sleep", "100000"], check=True)
        assert d.ok("POST", "/1.0/volumes/w/attachments",
                    {"instance": "c", "path": "/w"}) == {"pending": True}
        st, j, _ = d.request("DELETE", "/1.0/volumes/w")
        assert st == 409 and "attached" in j["error"]
        d.ok("POST", "/1.0/volumes/w/snapshots", {"name": "s"}, status=201)
        assert d.request("POST", "/1.0/volumes/w/snapshots/s")[0] == 409  # c runs
        assert d.ok("DELETE", "/1.0/volumes/w/attachments/c") == {"pending": True}
        d.ok("DELETE", "/1.0/volumes/w/snapshots/s")
        assert d.request("DELETE", "/1.0/volumes/w/snapshots/s")[0] == 404
        d.ok("DELETE", "/1.0/volumes/w")
        assert [v["name"] for v in d.ok("GET", "/1.0/volumes?recursion=1")] == ["v"]
    finally:
        subprocess.run([os.path.join(os.path.dirname(__file__), "..", "..", "build", "src", "cli",
                                     "cloison"), "--root", d.root, "delete", "--force", "c"],
                       capture_output=True)
        d.stop()
