# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the test_runtime_* files (no tests here): a runtime
wrapper with a private --root, and the "nothing left behind" check."""
import json
import os
import subprocess
import tempfile
import uuid

from conftest import binary


def unique_id(prefix="rt"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


class Runtime:
    """cloison-runtime with a private state root under tmp_path."""

    def __init__(self, root):
        self.root = str(root)
        self.bin = binary("cloison-runtime")

    def __call__(self, *args, check=True, timeout=30, **kw):
        # Files, not pipes: a detached container keeps its stdio open
        # after the runtime exits.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([self.bin, "--root", self.root] + [str(a) for a in args],
                               timeout=timeout, stdout=out, stderr=err, text=True, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout = out.read()
            p.stderr = err.read()
        if check and p.returncode != 0:
            raise AssertionError("cloison-runtime %s: exit %d: %s%s" % (
                " ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
        return p

    def state(self, cid):
        return json.loads(self("state", cid).stdout)

    def cleanup(self, cid):
        self("delete", "--force", cid, check=False)


def cgroup_dirs(cid):
    """Directories named after the container under every hierarchy."""
    found = []
    for top in os.listdir("/sys/fs/cgroup"):
        base = os.path.join("/sys/fs/cgroup", top)
        if not os.path.isdir(base):
            continue
        for dirpath, dirnames, _ in os.walk(base):
            if dirpath.count("/") > 10:
                dirnames[:] = []
                continue
            if os.path.basename(dirpath) == cid:
                found.append(dirpath)
    return found


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if path in l.split()[4]]


def processes_with_root(path):
    """Host pids whose root directory is inside `path`."""
    pids = []
    real = os.path.realpath(path)
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            root = os.readlink("/proc/%s/root" % p)
        except OSError:
            continue
        if root.startswith(real) and root != "/":
            pids.append(int(p))
    return pids


def assert_nothing_left(rt, cid, bundle_dir=None):
    assert not os.path.exists(os.path.join(rt.root, cid)), "state dir left"
    assert cgroup_dirs(cid) == [], "cgroup left: %s" % cgroup_dirs(cid)
    if bundle_dir:
        assert mounts_under(bundle_dir) == [], "mounts left"
        rootfs = bundle_dir
        try:
            with open(os.path.join(bundle_dir, "config.json")) as f:
                rootfs = json.load(f)["root"]["path"]
        except (OSError, ValueError, KeyError):
            pass
        if not os.path.isabs(rootfs):
            rootfs = os.path.join(bundle_dir, rootfs)
        assert processes_with_root(rootfs) == [], "processes left"
