"""cgroup v2 for the limits code, in the VM lab (pure cgroup2 hierarchy):
the limits unit tests as root (cgroup create/limits/freeze/kill/destroy,
the BPF device program enforcing, seccomp, capabilities), then nothing
left in /sys/fs/cgroup."""
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, "build", "tests", "unit", "limits", "test-limits")

PAYLOAD = r"""#!/bin/sh
. /lab/lib.sh
check mode sh -c 'grep -c " - cgroup " /proc/self/mountinfo; grep " - cgroup2 " /proc/self/mountinfo'
check unit env CMOCKA_MESSAGE_OUTPUT=stdout /srv/test-limits
check leftovers sh -c 'find /sys/fs/cgroup -mindepth 1 -type d'
"""


@pytest.fixture(scope="module")
def run(lab):
    if not os.path.exists(UNIT):
        pytest.fail("%s is not built: run scripts/build.sh" % UNIT)
    return lab.run(PAYLOAD, files=[(UNIT, "/srv/test-limits")], timeout=240, stream=print)


def test_lab_is_pure_cgroup2(run):
    out = run.assert_check("mode").output.splitlines()
    assert out[0].strip() == "0", out
    assert "/sys/fs/cgroup" in out[1]


def test_limits_unit_tests_under_cgroup2(run):
    out = run.assert_check("unit").output
    assert "test_cgroup_lifecycle" in out and "test_cgroup_devices_enforced" in out
    assert "FAILED" not in out


def test_no_cgroup_left(run):
    assert run.assert_check("leftovers").output.strip() == ""
