# SPDX-License-Identifier: Apache-2.0
"""`cloison snapshot create --stateful` of a container in the VM lab (the
6.1 kernel, where Debian's criu works; on the 6.18 hosts it fails, see
tests/integration/test_snapshot_stateful.py).

A container (no network) counts in a shell loop: the value in memory,
written to /root/count, to /root/log (a file it holds open) and to its
console every 0.5 s.  A
stateful snapshot is taken while it counts, it counts on for a while,
then the snapshot is restored: the container runs again and its count
goes on from the snapshot's value (not from 0, not from the value it had
reached), and the log holds the snapshot's lines then the new ones, with
no value missing nor repeated (the files and the processes are saved
under one freeze)."""
import re

import pytest

import lab_criu
from lab_cli import PROLOGUE, cli_files

# its stdio as the manager gives it (stdin a pipe, stdout and stderr the
# instance's console.log)
COUNTER = ("exec 3>>/root/log; i=0; "
           "while :; do i=$((i+1)); echo $i > /root/count; echo $i >&3; echo tick $i; sleep 0.5; done")

PAYLOAD = PROLOGUE + lab_criu.PROLOGUE + r"""
count() { $C exec ctr -- cat /root/count; }
check launch $C launch busybox ctr --no-network -- sh -c '%(counter)s'
sleep 5
echo "lab: before $(count)"
check snap $C snapshot create --stateful ctr warm
echo "lab: after-snap $(count)"
echo "lab: snap-value $(cat /tmp/cl/instances/ctr/snapshots/warm/upper/root/count)"
ls /tmp/cl/instances/ctr/snapshots/warm /tmp/cl/instances/ctr/snapshots/warm/state | head -30
sleep 6
echo "lab: later $(count)"
check restore $C snapshot restore ctr warm
sleep 0.5
echo "lab: restored-first $(count)"
sleep 3
echo "lab: restored $(count)"
echo "lab: status $($C info ctr | grep '"status"' | tr -d ' ,')"
echo "lab: log $($C exec ctr -- cat /root/log | tr '\n' ' ')"
echo "lab: console $(grep tick /tmp/cl/instances/ctr/console.log | tail -1)"
check list $C snapshot list ctr
check delete $C delete --force ctr
for f in /tmp/cl/instances/ctr/snapshots/warm/state.log/*.log; do
    [ -f $f ] && grep -E "Error|Warn" $f | head -8 | sed "s|^|lab: $(basename $f): |"
done
true
""" % {"counter": COUNTER}


@pytest.fixture(scope="module")
def run(lab):
    files = cli_files() + lab_criu.criu_files()
    return lab.run(PAYLOAD, files=files, timeout=900, stream=print, modules=lab_criu.MODULES)


def value(out, key):
    m = re.search(r"^lab: %s (\d+)\s*$" % re.escape(key), out, re.M)
    assert m, "no `lab: %s N` line:\n%s" % (key, out)
    return int(m.group(1))


def test_restore_resumes_the_count_from_the_snapshot(run):
    assert "lab: criu check ok" in run.output, run.output
    run.assert_check("launch")
    run.assert_check("snap")
    before, after, later = (value(run.output, k) for k in ("before", "after-snap", "later"))
    assert later > after + 5, run.output
    run.assert_check("restore")
    first, restored = value(run.output, "restored-first"), value(run.output, "restored")
    # the value the snapshot's files hold: the one in memory at the
    # snapshot (both saved under one freeze)
    snap = value(run.output, "snap-value")
    assert before <= snap <= after, run.output
    # on from the snapshot's value (a tick or a few after the restore),
    # not from 0, not from where it had counted to
    assert snap < first <= snap + 6 and first < later, run.output
    assert restored > first, "the restored container does not count:\n" + run.output
    assert '"status":"running"' in run.output, run.output


def test_log_has_the_snapshot_lines_then_the_new_ones(run):
    m = re.search(r"^lab: log (.*)$", run.output, re.M)
    assert m, run.output
    log = [int(x) for x in m.group(1).split()]
    # the file as the snapshot copied it (up to the snapshot's value),
    # then what the restored process appended through its open fd
    assert log == list(range(1, len(log) + 1)), log
    assert log[-1] >= value(run.output, "restored"), log


def test_console_kept(run):
    """Its stdout, the instance's console.log (a file outside the
    container: external for CRIU), still gets the restored count."""
    m = re.search(r"^lab: console tick (\d+)\s*$", run.output, re.M)
    assert m, run.output
    assert int(m.group(1)) >= value(run.output, "restored"), run.output


def test_snapshot_listed_stateful_and_delete(run):
    out = run.assert_check("list").output
    assert "warm" in out and "yes" in out, out
    run.assert_check("delete")
