# SPDX-License-Identifier: Apache-2.0
"""cgroup v2 in the lab (pure cgroup2 hierarchy): cloison-runtime and, on
the same bundles beside it, crun 1.8.1.  One lab boot runs every check for
both runtimes; each test asserts on one check."""
import pytest

import runtimes

RUNTIMES = ["cloison", "crun"]
CG = "/sys/fs/cgroup/cloison-lab"
MiB = 1 << 20


def configs():
    c = {}
    for rt in RUNTIMES:
        c[rt + "-limits"] = runtimes.config(["sleep", "60"], memory=64 * MiB, pids=32,
                                            cpu_quota=50000, cgroups_path="/cloison-lab/%s-limits" % rt)
        c[rt + "-oom"] = runtimes.config(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                                         memory=16 * MiB, cgroups_path="/cloison-lab/%s-oom" % rt)
        c[rt + "-pids"] = runtimes.config(
            ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done; echo all-forked"],
            pids=8, cgroups_path="/cloison-lab/%s-pids" % rt)
        c[rt + "-pause"] = runtimes.config(["sleep", "60"], cgroups_path="/cloison-lab/%s-pause" % rt)
    return c


SUITE = r"""
suite() {
    rt=$1; R=$2
    if [ ! -x "${R%% *}" ]; then
        for c in limits oom pids pause delete; do
            check ${rt}_$c sh -c "echo '${R%% *} is not in the lab (not built?)'; exit 1"
        done
        return
    fi
    check ${rt}_limits sh -c "
        $R run -d --bundle /bundles/$rt-limits $rt-limits || exit 1
        echo memory.max=\$(cat $CG/$rt-limits/memory.max)
        echo pids.max=\$(cat $CG/$rt-limits/pids.max)
        echo cpu.max=\$(cat $CG/$rt-limits/cpu.max)
        echo procs=\$(cat $CG/$rt-limits/cgroup.procs | wc -l)
        $R state $rt-limits"
    check ${rt}_oom sh -c "
        $R run --bundle /bundles/$rt-oom $rt-oom; echo status=\$?
        $R delete -f $rt-oom 2>/dev/null
        echo oom_kills=\$(dmesg | grep -c 'oom_memcg=/cloison-lab/$rt-oom,')"
    check ${rt}_pids sh -c "
        $R run --bundle /bundles/$rt-pids $rt-pids; echo status=\$?
        $R delete -f $rt-pids 2>/dev/null; true"
    check ${rt}_pause sh -c "
        $R run -d --bundle /bundles/$rt-pause $rt-pause || exit 1
        $R pause $rt-pause || exit 1
        echo paused: \$($R state $rt-pause | grep -o '\"status\": *\"[a-z]*\"')
        echo freeze=\$(cat $CG/$rt-pause/cgroup.freeze) \$(grep frozen $CG/$rt-pause/cgroup.events)
        echo sleep_state=\$(grep State: /proc/\$(head -1 $CG/$rt-pause/cgroup.procs)/status)
        $R resume $rt-pause || exit 1
        echo resumed: \$($R state $rt-pause | grep -o '\"status\": *\"[a-z]*\"')
        echo thawed=\$(grep frozen $CG/$rt-pause/cgroup.events)"
    check ${rt}_delete sh -c "
        $R delete -f $rt-limits; echo delete-limits=\$?
        $R delete -f $rt-pause; echo delete-pause=\$?
        sleep 0.2
        echo left: \$(ls -d $CG/$rt-* 2>/dev/null) \$($R list -q 2>/dev/null)
        echo state-left: \$(ls /run/rt-$rt 2>/dev/null)"
}
"""


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("cgroup2") / "bundles")
    files = runtimes.write_bundles(d, configs()) + runtimes.runtime_files(RUNTIMES)
    payload = "#!/bin/sh\n. /lab/lib.sh\nCG=%s\n%s\n" % (CG, SUITE)
    for rt in RUNTIMES:
        payload += "suite %s '%s'\n" % (rt, runtimes.RUNTIMES[rt])
    return lab.run(payload, files=files, timeout=400, stream=print)


def after(output, label):
    """The rest of the first line of `output` that starts with `label`."""
    for line in output.splitlines():
        if line.startswith(label):
            return line[len(label):].strip()
    raise AssertionError("no %r line in:\n%s" % (label, output))


def kv(output):
    out = {}
    for line in output.splitlines():
        k, sep, v = line.partition("=")
        if sep and " " not in k:
            out[k.strip()] = v.strip()
    return out


@pytest.mark.parametrize("rt", RUNTIMES)
def test_limits_in_cgroup_files(run, rt):
    c = run.assert_check(rt + "_limits")
    v = kv(c.output)
    assert v.get("memory.max") == str(64 * MiB), c.output
    assert v.get("pids.max") == "32", c.output
    assert v.get("cpu.max") == "50000 100000", c.output
    assert v.get("procs") == "1", c.output
    assert '"running"' in c.output


@pytest.mark.parametrize("rt", RUNTIMES)
def test_oom_kill_under_memory_max(run, rt):
    c = run.assert_check(rt + "_oom")
    v = kv(c.output)
    assert v.get("status") == "137", c.output
    assert int(v.get("oom_kills", "0")) >= 1, c.output


@pytest.mark.parametrize("rt", RUNTIMES)
def test_pids_max_enforced(run, rt):
    c = run.assert_check(rt + "_pids")
    assert "all-forked" not in c.output, c.output
    assert "can't fork" in c.output or "Resource temporarily unavailable" in c.output, c.output
    assert kv(c.output).get("status") != "0", c.output


@pytest.mark.parametrize("rt", RUNTIMES)
def test_pause_resume_freezes_cgroup(run, rt):
    c = run.assert_check(rt + "_pause")
    assert '"paused"' in after(c.output, "paused:"), c.output
    assert "freeze=1 frozen 1" in c.output, c.output
    assert '"running"' in after(c.output, "resumed:"), c.output
    assert "thawed=frozen 0" in c.output, c.output


@pytest.mark.parametrize("rt", RUNTIMES)
def test_delete_leaves_no_cgroup(run, rt):
    c = run.assert_check(rt + "_delete")
    v = kv(c.output)
    assert v.get("delete-limits") == "0" and v.get("delete-pause") == "0", c.output
    assert after(c.output, "left:") == "", c.output
    assert after(c.output, "state-left:") == "", c.output
