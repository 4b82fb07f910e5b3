# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the VM lab tests (tests/lab/test_lab_*.py).

`lab` is the harness module (tests/lab/lab.py); a test file usually boots
the lab once with a module-scoped fixture whose payload runs several
`check NAME CMD...` and lets each test assert on one check:

    @pytest.fixture(scope="module")
    def run(lab):
        return lab.run(PAYLOAD, files=[...], timeout=300, stream=print)

    def test_x(run):
        run.assert_check("x")
"""
import os
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build")
sys.path.insert(0, HERE)

import lab as lab_module  # noqa: E402


@pytest.fixture(scope="session")
def lab():
    """The lab harness module, once QEMU and the kernel are available."""
    if shutil.which(lab_module.QEMU) is None:
        pytest.skip("qemu-system-x86_64 is not installed on this machine")
    lab_module.kernel_path()  # fetches and caches the Debian kernel once
    return lab_module


def built(name):
    """Path of a built cloison binary, or None if it is not built."""
    p = os.path.join(BUILD, "src", "cli", name)
    return p if os.path.exists(p) else None


@pytest.fixture
def tmp_guest_initramfs(lab, tmp_path):
    """A factory: script text -> path of a nested guest initramfs."""
    def make(script, **kw):
        out = str(tmp_path / ("guest-%d.cpio" % len(os.listdir(tmp_path))))
        lab.build_guest_initramfs(out, script, **kw)
        return out
    return make
