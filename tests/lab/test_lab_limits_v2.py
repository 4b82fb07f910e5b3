# SPDX-License-Identifier: Apache-2.0
"""cgroup v2 for the limits code, in the VM lab (pure cgroup2 hierarchy),
and, in a second boot, a pure cgroup v1 host (the lab's controllers moved
to v1 hierarchies), the third mode beside the hybrid development host.

1. The limits unit tests as root: cgroup create/limits/freeze/kill/destroy,
   the BPF device program enforcing, seccomp, capabilities, cgroup mounts.
2. cloison-runtime containers: memory/pids/cpu files (shares -> weight,
   quota -> cpu.max), a 1 MiB memory limit, pids and device rules biting,
   pause/resume through cgroup.freeze, update, and no cgroup left."""
import copy
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
UNIT = os.path.join(BUILD, "tests", "unit", "limits", "test-limits")
RUNTIME = os.path.join(BUILD, "src", "cli", "cloison-runtime")

PAYLOAD = r"""#!/bin/sh
. /lab/lib.sh
R="/srv/cloison-runtime --root /run/limits"
check mode sh -c 'grep -c " - cgroup " /proc/self/mountinfo; grep " - cgroup2 " /proc/self/mountinfo'
check unit env CMOCKA_MESSAGE_OUTPUT=stdout /srv/test-limits
check inside $R run --bundle /srv/b/inside limits-inside
check one_mib $R run --bundle /srv/b/one_mib limits-one-mib
check pids $R run --bundle /srv/b/pids limits-pids
check dev_denied $R run --bundle /srv/b/dev_denied limits-dev-denied
check dev_allowed $R run --bundle /srv/b/dev_allowed limits-dev-allowed
check seccomp $R run --bundle /srv/b/seccomp limits-seccomp
$R run --detach --bundle /srv/b/sleeper limits-sleeper </dev/null >/dev/null 2>&1
D=/sys/fs/cgroup/limits-lab/sleeper
check files sh -c "cat $D/memory.max $D/memory.swap.max $D/memory.low $D/pids.max $D/cpu.weight $D/cpu.max $D/cpuset.cpus $D/hugetlb.2MB.max $D/memory.high"
check pause sh -c "$R pause limits-sleeper && cat $D/cgroup.freeze && grep frozen $D/cgroup.events && $R state limits-sleeper"
check resume sh -c "$R resume limits-sleeper && grep frozen $D/cgroup.events && $R state limits-sleeper"
check update sh -c "$R update --resources /srv/b/update.json limits-sleeper && cat $D/memory.max $D/pids.max $D/cpu.max"
check update_flags sh -c "$R update --memory 48m --pids-limit 9 --cpu-quota 30000 --cpu-period 100000 limits-sleeper && cat $D/memory.max $D/pids.max $D/cpu.max"
check exec_cgroup sh -c "mkdir $D/sub && $R exec --cgroup sub limits-sleeper cat /proc/self/cgroup; r=\$?; rmdir $D/sub; exit \$r"
check exec_cgroup_ctrl_form sh -c "mkdir $D/sub $D/other && $R exec --cgroup memory:sub limits-sleeper cat /proc/self/cgroup; r=\$?; $R exec --cgroup memory:sub --cgroup pids:other limits-sleeper true 2>&1; echo conflict=\$?; rmdir $D/sub $D/other; exit \$r"
check delete sh -c "$R delete --force limits-sleeper && ! test -e $D && ! test -e /sys/fs/cgroup/limits-lab"
check leftovers sh -c 'find /sys/fs/cgroup -mindepth 1 -type d'
"""


V1_SETUP = r"""
cd /sys/fs/cgroup
for c in $(cat cgroup.subtree_control); do echo "-$c" > cgroup.subtree_control; done
cd /
umount /sys/fs/cgroup
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for c in cpu,cpuacct cpuset memory pids freezer devices blkio hugetlb; do
    mkdir /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
done
"""

V1_PAYLOAD = r"""#!/bin/sh
. /lab/lib.sh
""" + V1_SETUP + r"""
R="/srv/cloison-runtime --root /run/limits"
check mode sh -c 'grep -c " - cgroup2 " /proc/self/mountinfo; grep -c " - cgroup " /proc/self/mountinfo'
check unit env CMOCKA_MESSAGE_OUTPUT=stdout /srv/test-limits
check one_mib $R run --bundle /srv/b/one_mib limits-one-mib
check dev_denied $R run --bundle /srv/b/dev_denied limits-dev-denied
check dev_allowed $R run --bundle /srv/b/dev_allowed limits-dev-allowed
check unified_refused $R run --bundle /srv/b/sleeper limits-unified
$R run --detach --bundle /srv/b/sleeper_v1 limits-sleeper </dev/null >/dev/null 2>&1
C=/sys/fs/cgroup; P=limits-lab/sleeper
check files sh -c "cat $C/memory/$P/memory.limit_in_bytes $C/pids/$P/pids.max $C/cpu,cpuacct/$P/cpu.shares $C/cpu,cpuacct/$P/cpu.cfs_quota_us $C/hugetlb/$P/hugetlb.2MB.limit_in_bytes"
check pause sh -c "$R pause limits-sleeper && cat $C/freezer/$P/freezer.state && $R resume limits-sleeper && cat $C/freezer/$P/freezer.state"
check delete sh -c "$R delete --force limits-sleeper && ! ls -d $C/*/limits-lab 2>/dev/null"
"""


def make_spec(tmp):
    subprocess.run([RUNTIME, "spec"], cwd=tmp, check=True, capture_output=True)
    with open(os.path.join(tmp, "config.json")) as f:
        cfg = json.load(f)
    os.unlink(os.path.join(tmp, "config.json"))
    cfg["root"] = {"path": "/srv/rootfs", "readonly": True}
    cfg["process"]["terminal"] = False
    cfg["linux"].pop("cgroupsPath", None)
    return cfg


def bundles(tmp):
    spec = make_spec(tmp)
    mk = {}

    def add(name, args, res=None, path=None, edit=None):
        cfg = copy.deepcopy(spec)
        cfg["process"]["args"] = args
        if res is not None:
            cfg["linux"]["resources"] = res
        if path:
            cfg["linux"]["cgroupsPath"] = path
        if edit:
            edit(cfg)
        mk[name] = cfg

    def cgroup_mount(cfg):
        cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                              "options": ["ro", "nosuid", "noexec", "nodev"]})

    def mknod_cap(cfg):
        for k in ("bounding", "effective", "permitted"):
            cfg["process"]["capabilities"].setdefault(k, []).append("CAP_MKNOD")

    tun = ["sh", "-c", "mknod /dev/tun c 10 200 && cat /dev/tun; echo status=$?"]
    add("inside", ["sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"],
        {"memory": {"limit": 16777216}, "pids": {"limit": 9}}, edit=cgroup_mount)
    add("one_mib", ["/bin/true"], {"memory": {"limit": 1048576, "swap": 1048576}})
    add("pids", ["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait; echo end"],
        {"pids": {"limit": 4}})
    add("dev_denied", tun, {"devices": [{"allow": False, "access": "rwm"}]}, edit=mknod_cap)
    add("dev_allowed", tun, {"devices": [{"allow": False, "access": "rwm"},
                                         {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"}]},
        edit=mknod_cap)
    add("seccomp", ["mkdir", "/tmp/x"], edit=lambda c: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]}))
    add("sleeper", ["sleep", "60"],
        {"memory": {"limit": 33554432, "swap": 67108864, "reservation": 8388608}, "pids": {"limit": 42},
         "cpu": {"shares": 1024, "quota": 20000, "period": 100000, "cpus": "0"},
         "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
         "unified": {"memory.high": "30408704"},
         "devices": [{"allow": False, "access": "rwm"}]},
        path="/limits-lab/sleeper")
    v1 = copy.deepcopy(mk["sleeper"])
    del v1["linux"]["resources"]["unified"]   # v2 only: refused on v1, tested below
    mk["sleeper_v1"] = v1
    out = os.path.join(tmp, "b")
    for name, cfg in mk.items():
        os.makedirs(os.path.join(out, name))
        with open(os.path.join(out, name, "config.json"), "w") as f:
            json.dump(cfg, f)
    with open(os.path.join(out, "update.json"), "w") as f:
        json.dump({"memory": {"limit": 67108864}, "pids": {"limit": 7}, "cpu": {"quota": 50000}}, f)
    return out


@pytest.fixture(scope="module")
def lab_files(tmp_path_factory):
    for p in (UNIT, RUNTIME):
        if not os.path.exists(p):
            pytest.fail("%s is not built: run scripts/build.sh" % p)
    tmp = str(tmp_path_factory.mktemp("limits-lab"))
    rootfs = os.path.join(tmp, "rootfs")
    subprocess.run([os.path.join(ROOT, "scripts", "mkrootfs-busybox.sh"), rootfs], check=True,
                   capture_output=True)
    b = bundles(tmp)
    return [(UNIT, "/srv/test-limits"), (RUNTIME, "/srv/cloison-runtime"), (rootfs, "/srv/rootfs"),
            (b, "/srv/b")]


@pytest.fixture(scope="module")
def run(lab, lab_files):
    return lab.run(PAYLOAD, files=lab_files, timeout=300, stream=print)


@pytest.fixture(scope="module")
def run_v1(lab, lab_files):
    return lab.run(V1_PAYLOAD, files=lab_files, timeout=300, stream=print)


def test_lab_is_pure_cgroup2(run):
    out = run.assert_check("mode").output.splitlines()
    assert out[0].strip() == "0", out
    assert "/sys/fs/cgroup" in out[1]


def test_limits_unit_tests_under_cgroup2(run):
    out = run.assert_check("unit").output
    assert "test_cgroup_lifecycle" in out and "test_cgroup_devices_enforced" in out
    assert "FAILED" not in out


def test_limits_seen_inside_with_cgroup_namespace(run):
    out = run.assert_check("inside").output.split()
    assert out == ["0::/", "16777216", "9"], out


def test_one_mib_memory_limit(run):
    run.assert_check("one_mib")


def test_pids_limit(run):
    out = run.check("pids").output
    assert "can't fork" in out or "Resource temporarily unavailable" in out, out


def test_bpf_device_program(run):
    assert "Operation not permitted" in run.check("dev_denied").output
    out = run.check("dev_allowed").output
    assert "status=" in out and "Operation not permitted" not in out, out


def test_seccomp_errno(run):
    assert "Invalid cross-device link" in run.check("seccomp").output


def test_v2_files(run):
    out = run.assert_check("files").output.splitlines()
    # swap.max = swap - limit; weight = 1 + (1024 - 2) * 9999 / 262142
    assert out == ["33554432", "33554432", "8388608", "42", "39", "20000 100000", "0", "4194304", "30408704"], out


def test_pause_resume(run):
    out = run.assert_check("pause").output
    assert out.startswith("1\nfrozen 1") and '"paused"' in out, out
    out = run.assert_check("resume").output
    assert "frozen 0" in out and '"running"' in out, out


def test_update(run):
    assert run.assert_check("update").output.split() == ["67108864", "7", "50000", "100000"]


def test_update_runc_flags(run):
    assert run.assert_check("update_flags").output.split() == ["50331648", "9", "30000", "100000"]


def test_exec_cgroup_sub(run):
    """exec --cgroup SUB joins the container's existing sub-cgroup; so does
    CTRL:SUB for a controller of the v2 hierarchy (runc 1.1 refuses it);
    two different sub-cgroups for the one v2 hierarchy are refused."""
    out = run.assert_check("exec_cgroup").output.strip()
    assert out.startswith("0::") and out.endswith("/sub"), out
    out = run.assert_check("exec_cgroup_ctrl_form").output.strip().splitlines()
    assert out[0].startswith("0::") and out[0].endswith("/sub"), out
    assert "cannot hold the process in two sub-cgroups" in out[1] and out[2] != "conflict=0", out


def test_delete_leaves_nothing(run):
    run.assert_check("delete")
    assert run.assert_check("leftovers").output.strip() == ""


# Pure cgroup v1 (second boot).

def test_v1_lab_is_pure_v1(run_v1):
    assert run_v1.assert_check("mode").output.split()[0] == "0"


def test_v1_unit_tests(run_v1):
    out = run_v1.assert_check("unit").output
    assert "test_cgroup_lifecycle" in out and "FAILED" not in out


def test_v1_one_mib_and_devices(run_v1):
    run_v1.assert_check("one_mib")
    assert "Operation not permitted" in run_v1.check("dev_denied").output
    out = run_v1.check("dev_allowed").output
    assert "status=" in out and "Operation not permitted" not in out, out


def test_v1_refuses_unified(run_v1):
    c = run_v1.check("unified_refused")
    assert c.rc != 0
    assert "linux.resources.unified.memory.high: needs the memory controller in a cgroup v2 hierarchy" in c.output


def test_v1_files_freezer_delete(run_v1):
    assert run_v1.assert_check("files").output.split() == ["33554432", "42", "1024", "20000", "4194304"]
    assert run_v1.assert_check("pause").output.split() == ["FROZEN", "THAWED"]
    run_v1.assert_check("delete")
