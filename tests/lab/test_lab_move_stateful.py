# SPDX-License-Identifier: Apache-2.0
"""Stateful `cloison move` of a running container in the VM lab (the 6.1
kernel, where Debian's criu works): two cloisonds on two state roots,
each with a TLS listener on loopback, the second a trusted remote of the
first.

A container (no network) counts in a shell loop, every value appended to
a file it holds open (fd 3) and written to /root/count.  It moves while
it counts: on the destination it runs and counts on from where it was
checkpointed, in the same open file: no value lost, none repeated; the
source no longer has it.  Then a move the destination cannot finish (its
daemon gone) is undone: the container runs here again, restored from its
checkpoint, still counting on."""
import re

import pytest

import lab_criu
from lab_cli import HTTP_SH, MOVE_HELPERS, NETWORK_FILES, NETWORK_MODULES, PROLOGUE, move_files

# its stdio as the manager gives it: stdin a pipe, stdout the console
COUNTER = ("exec 3>>/root/log; i=0; "
           "while :; do i=$((i+1)); echo $i > /root/count.t; mv /root/count.t /root/count; echo $i >&3; echo tick $i; sleep 0.5; done")

# a counter and an HTTP server (a listening socket) on its network
SERVER = ("mkdir -p /www; echo hello-ctrnet > /www/index.html; httpd -p 8080 -h /www; "
          "i=0; while :; do i=$((i+1)); echo $i > /root/count.t; mv /root/count.t /root/count; sleep 0.5; done")

PAYLOAD = PROLOGUE + lab_criu.PROLOGUE + HTTP_SH + MOVE_HELPERS + r"""
A="$C --root /tmp/ra"; B="$C --root /tmp/rb"
daemon /tmp/ra 127.0.0.1:8441
daemon /tmp/rb 127.0.0.1:8442
check remote sh -c "tok=\$($B config trust add mover) && $A remote add hb https://127.0.0.1:8442 --token \$tok"
check launch $A launch busybox ctr --no-network -- sh -c '%(counter)s'
sleep 5
echo "lab: before $($A exec ctr -- cat /root/count)"
echo "lab: source cgroup $(cut -d: -f3 /proc/$($A info ctr | grep '"pid"' | tr -dc 0-9)/cgroup | head -1)"
check move $A move ctr hb:
echo "lab: dest cgroup $(cut -d: -f3 /proc/$($B info ctr | grep '"pid"' | tr -dc 0-9)/cgroup | head -1)"
echo "lab: source list: $($A list --format json | tr -d ' \n')"
echo "lab: dest status $($B info ctr | grep '"status"' | tr -d ' ,')"
sleep 3
echo "lab: dest count $($B exec ctr -- cat /root/count)"
sleep 2
echo "lab: dest count2 $($B exec ctr -- cat /root/count)"
echo "lab: dest log $($B exec ctr -- cat /root/log | tr '\n' ' ')"
echo "lab: dest console $(grep tick /tmp/rb/instances/ctr/console.log | head -1) .. $(grep tick /tmp/rb/instances/ctr/console.log | tail -1)"
ls -d /tmp/rb/instances/ctr/checkpoint /tmp/ra/instances/ctr 2>&1 | sed 's/^/lab: left: /'
# back to a, then a move the destination's daemon is gone for: undone
check remote_back sh -c "tok=\$($A config trust add mover2) && $B remote add ha https://127.0.0.1:8441 --token \$tok"
check back $B move ctr ha:
# the destination's daemon dies once it has extracted the archive (the
# test build's crash point): the move fails after the checkpoint
kill $(cat /tmp/rb.pid); sleep 1; rm -f /tmp/rb.sock
CLOISON_MOVE_TEST_CRASH_AT=receive-extracted daemon /tmp/rb 127.0.0.1:8442
echo "lab: before-fail $($A exec ctr -- cat /root/count)"
echo "lab: pid before-fail $($A info ctr | grep '"pid"' | tr -dc 0-9)"
check move_fail $A move ctr hb:
kill -0 $(cat /tmp/rb.pid) 2>/dev/null && echo "lab: rb alive" || echo "lab: rb dead"
echo "lab: pid after-fail $($A info ctr | grep '"pid"' | tr -dc 0-9)"
echo "lab: after-fail status $($A info ctr | grep '"status"' | tr -d ' ,')"
sleep 2
echo "lab: after-fail log $($A exec ctr -- cat /root/log | tr '\n' ' ')"
for f in /tmp/ra/instances/ctr/checkpoint.log/*.log /tmp/rb/instances/ctr/checkpoint.log/*.log; do
    [ -f $f ] && grep -E "Error" $f | head -8 | sed "s|^|lab: $f: |"
done
tail -5 /tmp/rb.log | sed 's/^/lab: rb.log: /'
$A delete --force ctr
# a container with a network moves with it: the destination's daemon in a
# network namespace of its own (a veth to this one carries the move), so
# that both hosts have network ctrnet with the same subnet and address
IP=/usr/sbin/ip
$IP netns add mvnet && $IP link add mv-h type veth peer name mv-c netns mvnet &&
    $IP addr add 10.99.0.1/24 dev mv-h && $IP link set mv-h up &&
    $IP -n mvnet addr add 10.99.0.2/24 dev mv-c && $IP -n mvnet link set mv-c up &&
    $IP -n mvnet link set lo up && echo "lab: mvnet ok"
NS="nsenter --net=/run/netns/mvnet"
Cc="$C --root /tmp/rc"
daemon /tmp/rc 10.99.0.2:8443 mvnet
check net_a $A network create ctrnet --subnet 10.88.5.0/24
check net_c $NS $Cc network create ctrnet --subnet 10.88.5.0/24
check remote_c sh -c "tok=\$($Cc config trust add mover3) && $A remote add hc https://10.99.0.2:8443 --token \$tok"
check launch_net $A launch busybox netc --network ctrnet@10.88.5.7 -- sh -c '%(server)s'
sleep 5
echo "lab: net before $($A exec netc -- cat /root/count)"
echo "lab: net http-before $(http 10.88.5.7)"
check move_net $A move netc hc:
sleep 3
echo "lab: net dest count $($Cc exec netc -- cat /root/count)"
echo "lab: net dest http $($NS sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 10.88.5.7 8080 | tail -1")"
echo "lab: net dest mac $($Cc exec netc -- cat /sys/class/net/eth0/address)"
echo "lab: net source http $(http 10.88.5.7)"
for f in /tmp/ra/instances/netc/checkpoint.log/*.log /tmp/rc/instances/netc/checkpoint.log/*.log; do
    [ -f $f ] && grep -E "Error" $f | head -8 | sed "s|^|lab: $f: |"
done
tail -5 /tmp/rc.log | sed 's/^/lab: rc.log: /'
true
""" % {"counter": COUNTER, "server": SERVER}


@pytest.fixture(scope="module")
def run(lab):
    return lab.run(PAYLOAD, files=move_files() + lab_criu.criu_files() + NETWORK_FILES,
                   timeout=900, stream=print, modules=lab_criu.MODULES + NETWORK_MODULES)


def value(out, key):
    m = re.search(r"^lab: %s (\d+)\s*$" % re.escape(key), out, re.M)
    assert m, "no `lab: %s N` line:\n%s" % (key, out)
    return int(m.group(1))


def continuous(out, key):
    m = re.search(r"^lab: %s (.*)$" % re.escape(key), out, re.M)
    assert m, out
    log = [int(x) for x in m.group(1).split()]
    assert log == list(range(1, len(log) + 1)), "values lost or repeated: %s" % log
    return log


def test_moved_container_counts_on_there_with_no_value_lost(run):
    assert "lab: criu check ok" in run.output, run.output
    run.assert_check("remote")
    run.assert_check("launch")
    out = run.assert_check("move").output
    assert "ctr moved to hb:ctr" in out, out
    assert '"status":"running"' in re.search(r"^lab: dest status (.*)$", run.output,
                                               re.M).group(1), run.output
    before, c1, c2 = (value(run.output, k) for k in ("before", "dest count", "dest count2"))
    assert before < c1 < c2, run.output
    log = continuous(run.output, "dest log")
    assert len(log) >= c2, log
    # its console there (a new console.log, handed to CRIU's restore) gets
    # the count from where it was moved on
    m = re.search(r"^lab: dest console tick (\d+) \.\. tick (\d+)\s*$", run.output, re.M)
    assert m, run.output
    assert before < int(m.group(1)) <= c1 <= int(m.group(2)), run.output


def test_moved_container_in_a_cgroup_of_the_destination(run):
    """The restored processes are in the destination's cgroup of the
    instance (named with the destination's tag), not the source's."""
    out = run.output
    src, dst = (lab_criu.line(out, k) for k in ("source cgroup", "dest cgroup"))
    assert src.endswith("-ctr") and dst.endswith("-ctr") and src != dst, out


def test_source_no_longer_has_it(run):
    src = re.search(r"^lab: source list: (.*)$", run.output, re.M).group(1)
    assert '"ctr"' not in src, run.output
    assert "lab: left: ls: /tmp/rb/instances/ctr/checkpoint" in run.output.replace(
        "ls: cannot access '/tmp/rb", "ls: /tmp/rb"), run.output


def test_moved_back(run):
    out = run.assert_check("back").output
    assert "ctr moved to ha:ctr" in out, out


def test_failed_move_is_undone_and_counts_on_here(run):
    c = run.check("move_fail")
    assert c.rc not in (0, None), c.output
    assert '"status":"running"' in run.output.split("lab: after-fail status")[1].splitlines()[0], \
        run.output
    # the destination's daemon died at its crash point (so the
    # container had been checkpointed and sent), and the container here
    # is a restored one (a new init pid)
    assert "lab: rb dead" in run.output, run.output
    assert value(run.output, "pid before-fail") != value(run.output, "pid after-fail"), run.output
    log = continuous(run.output, "after-fail log")
    assert log[-1] > value(run.output, "before-fail"), log


def test_container_with_a_network_moves_with_it(run):
    """The destination attaches its network to the namespace the
    processes are restored into: the count goes on there, the server
    answers at the same address (from the destination's namespace), with
    the same MAC; the source no longer answers."""
    assert "lab: mvnet ok" in run.output, run.output
    for c in ("net_a", "net_c", "remote_c", "launch_net"):
        run.assert_check(c)
    assert re.search(r"^lab: net http-before hello-ctrnet$", run.output, re.M), run.output
    out = run.assert_check("move_net").output
    assert "netc moved to hc:netc" in out, out
    assert value(run.output, "net dest count") > value(run.output, "net before"), run.output
    assert re.search(r"^lab: net dest http hello-ctrnet$", run.output, re.M), run.output
    assert re.search(r"^lab: net dest mac 0a:58:0a:58:05:07$", run.output, re.M), run.output
    assert re.search(r"^lab: net source http down$", run.output, re.M), run.output
