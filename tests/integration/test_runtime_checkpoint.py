# SPDX-License-Identifier: Apache-2.0
"""cloison-runtime checkpoint / restore (CRIU) on this host: the flags
runc takes, bad input, and the one-line error when Debian's criu cannot
work on the running kernel (criu 3.17 on 6.18: `criu check` fails in its
vDSO parser).  The real checkpoint and restore run in the VM lab's 6.1
kernel (docs/migration.md)."""
import json
import os
import re
import shutil
import subprocess

import pytest

from test_runtime_util import Runtime, assert_nothing_left, unique_id


@pytest.fixture
def rt(tmp_path):
    return Runtime(tmp_path / "state")


def criu_works():
    criu = shutil.which("criu")
    if criu is None:
        return None
    return subprocess.run([criu, "check"], capture_output=True).returncode == 0


def test_unsupported_kernel_is_one_clear_line(rt, tmp_path, bundle):
    works = criu_works()
    if works is None:
        pytest.skip("criu is not installed")
    if works:
        pytest.skip("criu check passes on this kernel: tests/lab covers checkpoint/restore")
    cid = unique_id("ckpt")
    rt("run", "-d", "--bundle", bundle(args=["sleep", "60"]), cid)
    try:
        img = tmp_path / "img"
        for cmd in (["checkpoint", "--image-path", img, "--leave-running", "--tcp-established",
                     "--ext-unix-sk", "--shell-job", "--file-locks", "--manage-cgroups-mode", "soft",
                     "--empty-ns", "network", "--work-path", tmp_path / "work", cid],
                    ["restore", "--image-path", img, "--bundle", tmp_path, "-d", cid + "x"]):
            p = rt(*cmd, check=False)
            assert p.returncode == 1, p
            lines = p.stderr.strip().splitlines()
            assert len(lines) == 1, p.stderr
            assert re.match(r"cloison-runtime: criu check failed on this kernel \(Linux %s\): "
                            r"Error \(criu/.*: checkpoint/restore is not available here$"
                            % re.escape(os.uname().release), lines[0]), lines[0]
        # the container is untouched
        assert rt.state(cid)["status"] == "running"
        assert not img.exists()
    finally:
        rt.cleanup(cid)
    assert_nothing_left(rt, cid)


@pytest.mark.parametrize("args,msg", [
    (["--manage-cgroups-mode", "bogus", "x"],
     "--manage-cgroups-mode `bogus`: expected soft, full, strict or ignore"),
    (["--page-server", "1.2.3.4:5", "x"], "checkpoint: --page-server is not supported"),
    (["--empty-ns", "pid", "x"], "checkpoint: --empty-ns `pid`: only `network` can be left empty"),
    (["--console-socket", "/tmp/s", "x"], "checkpoint: --console-socket is for restore"),
    ([], "checkpoint: missing container id"),
])
def test_checkpoint_bad_input(rt, args, msg):
    p = rt("checkpoint", *args, check=False)
    assert p.returncode == 1 and p.stderr.strip() == "cloison-runtime: " + msg, p.stderr


def test_missing_criu_binary(rt):
    p = rt.__class__(rt.root)
    r = subprocess.run([p.bin, "--root", rt.root, "--criu", "/nonexistent/criu", "checkpoint", "x"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == ("cloison-runtime: criu `/nonexistent/criu`: not found "
                                "(install Debian's criu, or --criu PATH)"), r.stderr


FAKE_CRIU = r"""#!/bin/sh
# `criu check` and `dump` pass; `restore` reports what its process sees
# at each scratch directory (the tmpfs mounts the runtime made for it)
# into $OUT, and fails.
case "$1" in check|dump) exit 0;; esac
for a in "$@"; do
    case "$a" in --external=mnt\[cloison-tmpfs*)
        d=${a#*]:}; key=${a#*[}; key=${key%%]*}
        echo "== $key $(grep " $d " /proc/self/mountinfo | cut -d' ' -f6)"
        ls -ln "$d";;
    --cgroup-root=*) echo "cgroup-root ${a#*=}";;
    esac
done > "$OUT" 2>&1
echo "in $(tr '\n' ' ' < /proc/self/cgroup)" >> "$OUT"
echo "Error (fake): restore refused"
exit 3
"""


def test_tmpfs_manifest_instead_of_tar(rt, tmp_path, bundle):
    """The container's tmpfs mounts that hold no data (/dev) are written
    to a manifest at dump (the container frozen meanwhile), and made again for CRIU's child at restore, in
    a mount namespace of its own: the host never sees them, and a restore
    that fails leaves nothing.  A tmpfs with a file in it (/dev/shm) is
    left to CRIU's tar, and so is a tree deeper than the walk goes.  CRIU
    runs in the cgroup of the restored
    container (its new id), which a failed restore removes.  A manifest
    whose path leaves its mount is
    refused with one line.  (criu itself is a stand-in: the real one
    runs in tests/lab/test_lab_checkpoint.py.)"""
    fake = tmp_path / "criu"
    fake.write_text(FAKE_CRIU)
    fake.chmod(0o755)
    seen = tmp_path / "seen"
    env = dict(os.environ, OUT=str(seen))
    b = bundle(args=["sleep", "60"])
    cid = unique_id("ckpt")
    rt("run", "-d", "--bundle", b, cid)
    img = tmp_path / "img"

    def runtime(*args):
        return subprocess.run([rt.bin, "--root", rt.root, "--criu", str(fake)] + list(args),
                              capture_output=True, text=True, env=env)
    try:
        rt("exec", cid, "sh", "-c", "echo data > /dev/shm/f")
        p = runtime("checkpoint", "--leave-running", "--image-path", str(img), cid)
        assert p.returncode == 0, p.stderr
        # frozen for the walk and the dump, running again after
        assert subprocess.run([rt.bin, "--root", rt.root, "exec", cid, "true"],
                              timeout=30).returncode == 0
        with open(img / "cloison-tmpfs.json") as f:
            manifest = json.load(f)
        mounts = {m["path"]: m for m in manifest["mounts"]}
        assert "/dev" in mounts and "/dev/shm" not in mounts, list(mounts)
        null = [e for e in mounts["/dev"]["entries"] if e["path"] == "null"][0]
        assert null["type"] == "chr" and null["rdev"] == os.makedev(1, 3) and null["mode"] == 0o666

        new = unique_id("ckpt")
        p = runtime("restore", "-d", "--image-path", str(img), "--bundle", b, new)
        assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
        assert "restore refused" in p.stderr, p.stderr
        text = seen.read_text()
        assert re.search(r"^== cloison-tmpfs/dev rw,nosuid", text, re.M), text
        assert re.search(r"^crw-rw-rw- +1 0 +0 +1, +3 .* null$", text, re.M), text
        # as runc: CRIU runs in the new container's cgroup, named after it
        assert re.search(r"^cgroup-root (\S+:)?/\S*/%s$" % new, text, re.M), text
        assert re.search(r"^in .*/%s " % new, text, re.M), text
        assert_nothing_left(rt, new)
        with open("/proc/self/mountinfo") as f:
            assert "tmpfs-0" not in f.read()

        # a tree deeper than the walk goes: /dev left to CRIU's tar
        rt("exec", cid, "mkdir", "-p", "/dev/" + "/".join(["d"] * 40))
        deep = tmp_path / "img-deep"
        p = runtime("checkpoint", "--leave-running", "--image-path", str(deep), cid)
        assert p.returncode == 0, p.stderr
        assert not (deep / "cloison-tmpfs.json").exists() or "/dev" not in [
            m["path"] for m in json.load(open(deep / "cloison-tmpfs.json"))["mounts"]]

        for bad in ("../escape", "fd/x"):  # fd: a link of the manifest
            mounts["/dev"]["entries"].append({"path": bad, "type": "dir", "mode": 0o755})
            with open(img / "cloison-tmpfs.json", "w") as f:
                json.dump(manifest, f)
            p = runtime("restore", "-d", "--image-path", str(img), "--bundle", b, new)
            assert p.returncode == 1 and p.stderr.strip() == (
                "cloison-runtime: restore: `%s/cloison-tmpfs.json`: an entry's path is not below "
                "its mount" % img), p.stderr
            assert_nothing_left(rt, new)
            mounts["/dev"]["entries"].pop()
    finally:
        rt("delete", "-f", cid, check=False)
