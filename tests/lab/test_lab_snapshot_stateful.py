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
under one freeze).

Then the same for a container on a cloison network at a fixed address,
serving HTTP: its network namespace is not dumped; the restore attaches
the network to a new one (same bridge, address and MAC) and CRIU restores
the processes into it: the count resumes, the server answers at the same
address from the lab host (docs/checkpoint.md)."""
import re

import pytest

import lab_criu
from lab_cli import HTTP_SH, NETWORK_FILES, NETWORK_MODULES, PROLOGUE, cli_files

# its stdio as the manager gives it (stdin a pipe, stdout and stderr the
# instance's console.log)
COUNTER = ("exec 3>>/root/log; i=0; "
           "while :; do i=$((i+1)); echo $i > /root/count.t; mv /root/count.t /root/count; echo $i >&3; echo tick $i; sleep 0.5; done")
# netc: on a cloison network at a fixed address, a counter and an HTTP
# server (a listening TCP socket)
ADDR = "10.88.5.7"
SERVER = ("mkdir -p /www; echo hello-ctrnet > /www/index.html; httpd -p 8080 -h /www; "
          "i=0; while :; do i=$((i+1)); echo $i > /root/count.t; mv /root/count.t /root/count; sleep 0.5; done")

PAYLOAD = PROLOGUE + lab_criu.PROLOGUE + HTTP_SH + r"""
count() { $C exec $1 -- cat /root/count; }
# NAME: a stateful snapshot while it counts, counting on, the restore
cycle() {
    n=$1
    echo "lab: $n before $(count $n)"
    check $n-snap $C snapshot create --stateful $n warm
    echo "lab: $n after-snap $(count $n)"
    echo "lab: $n snap-value $(cat /tmp/cl/instances/$n/snapshots/warm/upper/root/count)"
    sleep 6
    echo "lab: $n later $(count $n)"
    check $n-restore $C snapshot restore $n warm
    sleep 0.5
    echo "lab: $n restored-first $(count $n)"
    sleep 3
    echo "lab: $n restored $(count $n)"
    echo "lab: $n status $($C info $n | grep '"status"' | tr -d ' ,')"
    for f in /tmp/cl/instances/$n/snapshots/warm/state.log/*.log; do
        [ -f $f ] && grep -E "Error|Warn" $f | head -8 | sed "s|^|lab: $n $(basename $f): |"
    done
}
check launch $C launch busybox ctr --no-network -- sh -c '%(counter)s'
sleep 5
cycle ctr
echo "lab: log $($C exec ctr -- cat /root/log | tr '\n' ' ')"
echo "lab: console $(grep tick /tmp/cl/instances/ctr/console.log | tail -1)"
check list $C snapshot list ctr
check delete $C delete --force ctr
# with a network: its namespace is not dumped, the restore attaches the
# network to a new one (same bridge, address, MAC) and restores into it
mac() { $C exec netc -- cat /sys/class/net/eth0/address; }
check net $C network create ctrnet --subnet 10.88.5.0/24
check net-launch $C launch busybox netc --network ctrnet@%(addr)s -- sh -c '%(server)s'
sleep 5
echo "lab: netc http-before $(http %(addr)s)"
echo "lab: netc mac-before $(mac)"
cycle netc
echo "lab: netc http-after $(http %(addr)s)"
echo "lab: netc mac-after $(mac)"
check net-info $C info netc
check net-delete $C delete --force netc
true
""" % {"counter": COUNTER, "server": SERVER, "addr": ADDR}


@pytest.fixture(scope="module")
def run(lab):
    files = cli_files() + lab_criu.criu_files() + NETWORK_FILES
    return lab.run(PAYLOAD, files=files, timeout=900, stream=print,
                   modules=lab_criu.MODULES + NETWORK_MODULES)


def value(out, key):
    m = re.search(r"^lab: %s (\d+)\s*$" % re.escape(key), out, re.M)
    assert m, "no `lab: %s N` line:\n%s" % (key, out)
    return int(m.group(1))


def assert_resumes(run, n):
    """NAME's cycle: the count resumes from the snapshot's value (not 0,
    not the value it had reached) and goes on."""
    assert "lab: criu check ok" in run.output, run.output
    run.assert_check(n + "-snap")
    v = lambda k: value(run.output, "%s %s" % (n, k))  # noqa: E731
    before, after, later = v("before"), v("after-snap"), v("later")
    assert later > after + 5, run.output
    run.assert_check(n + "-restore")
    first, restored = v("restored-first"), v("restored")
    # the value the snapshot's files hold: the one in memory at the
    # snapshot (both saved under one freeze)
    snap = v("snap-value")
    assert before <= snap <= after, run.output
    # on from the snapshot's value (a tick or a few after the restore),
    # not from 0, not from where it had counted to
    assert snap < first <= snap + 6 and first < later, run.output
    assert restored > first, "the restored container does not count:\n" + run.output
    assert re.search(r'^lab: %s status "status":"running"' % n, run.output, re.M), run.output


def test_restore_resumes_the_count_from_the_snapshot(run):
    run.assert_check("launch")
    assert_resumes(run, "ctr")


def test_with_a_network_the_server_answers_at_the_same_address(run):
    """A container on a network: the count resumes, the listening socket
    is restored and answers at the same address, with the same MAC."""
    run.assert_check("net")
    run.assert_check("net-launch")
    line = lambda k: re.search(r"^lab: netc %s (.*)$" % k, run.output, re.M).group(1)  # noqa
    assert line("http-before") == "hello-ctrnet", run.output
    assert_resumes(run, "netc")
    assert line("http-after") == "hello-ctrnet", run.output
    assert line("mac-after") == line("mac-before") == "0a:58:0a:58:05:07", run.output
    assert ADDR in run.check("net-info").output, run.check("net-info").output
    run.assert_check("net-delete")


def test_log_has_the_snapshot_lines_then_the_new_ones(run):
    m = re.search(r"^lab: log (.*)$", run.output, re.M)
    assert m, run.output
    log = [int(x) for x in m.group(1).split()]
    # the file as the snapshot copied it (up to the snapshot's value),
    # then what the restored process appended through its open fd
    assert log == list(range(1, len(log) + 1)), log
    assert log[-1] >= value(run.output, "ctr restored"), log


def test_console_kept(run):
    """Its stdout, the instance's console.log (a file outside the
    container: external for CRIU), still gets the restored count."""
    m = re.search(r"^lab: console tick (\d+)\s*$", run.output, re.M)
    assert m, run.output
    assert int(m.group(1)) >= value(run.output, "ctr restored"), run.output


def test_snapshot_listed_stateful_and_delete(run):
    out = run.assert_check("list").output
    assert "warm" in out and "yes" in out, out
    run.assert_check("delete")
