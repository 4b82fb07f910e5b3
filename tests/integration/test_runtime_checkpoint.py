# SPDX-License-Identifier: Apache-2.0
"""cloison-runtime checkpoint / restore (CRIU) on this host: the flags
runc takes, bad input, and the one-line error when Debian's criu cannot
work on the running kernel (criu 3.17 on 6.18: `criu check` fails in its
vDSO parser).  The real checkpoint and restore run in the VM lab's 6.1
kernel (docs/migration.md)."""
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
                     "--work-path", tmp_path / "work", cid],
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
