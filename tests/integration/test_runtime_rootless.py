# SPDX-License-Identifier: Apache-2.0
"""cloison-runtime run by an unprivileged user (setpriv to nobody, no
capabilities) with `spec --rootless`: user namespace mapping the caller,
no cgroup of its own, the host's /sys bound, state under the given root."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import binary
from test_runtime_util import unique_id

NOBODY = 65534
pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing")


def as_nobody(*args, cwd=None):
    with tempfile.TemporaryFile("w+") as out:
        p = subprocess.run(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups",
                            binary("cloison-runtime")] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                           stdout=out, stderr=subprocess.STDOUT, text=True, timeout=30)
        out.seek(0)
        p.stdout = out.read()
    return p


@pytest.fixture
def work(busybox_rootfs):
    d = tempfile.mkdtemp(prefix="cloison-rt-rootless-")
    os.chmod(d, 0o755)
    shutil.copytree(busybox_rootfs, os.path.join(d, "bundle", "rootfs"), symlinks=True)
    os.makedirs(os.path.join(d, "state"))
    for base, dirs, files in os.walk(d):
        for n in dirs + files:
            os.lchown(os.path.join(base, n), NOBODY, NOBODY)
    os.lchown(d, NOBODY, NOBODY)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_rootless_run_exec_delete(work):
    b = os.path.join(work, "bundle")
    state = os.path.join(work, "state")
    assert as_nobody("spec", "--rootless", "--bundle", b).returncode == 0
    with open(os.path.join(b, "config.json")) as f:
        cfg = json.load(f)
    assert any(n["type"] == "user" for n in cfg["linux"]["namespaces"])
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "id -u; cat /proc/self/uid_map"]
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(cfg, f)
    cid = unique_id("rl")
    p = as_nobody("--root", state, "run", "--bundle", b, cid)
    assert p.returncode == 0, p.stdout
    assert p.stdout.split() == ["0", "0", str(NOBODY), "1"]

    cfg["process"]["args"] = ["sleep", "30"]
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(cfg, f)
    try:
        assert as_nobody("--root", state, "run", "--detach", "--bundle", b, cid).returncode == 0
        p = as_nobody("--root", state, "exec", cid, "sh", "-c", "echo exec-as $(id -u)")
        assert p.stdout.strip() == "exec-as 0", p.stdout
    finally:
        assert as_nobody("--root", state, "delete", "--force", cid).returncode == 0
    assert os.listdir(state) == []
