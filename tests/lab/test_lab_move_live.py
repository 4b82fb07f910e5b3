# SPDX-License-Identifier: Apache-2.0
"""`cloison move` of a running VM, live, in the VM lab (nested KVM): two
cloisonds on two state roots, each with a TLS listener on loopback, each
a trusted remote of the other.

A VM writes a marker to its disk and then ticks every 0.5 s on its
console with its uptime.  It moves from a to b while it ticks: on b it
runs (b's monitor, b's console) and ticks on with no reboot (its uptime
goes on from where it was, the tick count too), a has nothing left, and
the marker is on b's disk (block migration) once b stops it.  Its
migration stream went through b's TLS API (the default: docs/move.md
"The stream").  Then a
move back that cannot finish (the destination's daemon killed -9 while
the migration runs): the VM still runs on b, ticking on, and a, its
daemon restarted, has nothing of it.  Then a move back cancelled with
Ctrl-C while the migration runs: the same.  Before all that, a move with a
volume attached is refused with one line, nothing changed.  The move's total time and the
pause the guest saw (the largest gap between two ticks' uptimes, less the
0.5 s the guest sleeps) are printed."""
import re

import pytest

from lab_cli import MOVE_HELPERS, PROLOGUE, move_files

# no quotes inside: the command goes through the kernel command line
TICKER = "echo moved-marker > /marker; sync; i=0; while :; do i=$((i+1)); " \
         "read u r < /proc/uptime; echo tick $i $u; sleep 0.5; done"

PAYLOAD = PROLOGUE + MOVE_HELPERS + r"""
A="$C --root /tmp/ra"; B="$C --root /tmp/rb"
after_failed() {  # LABEL: after a move back that failed: vm1 on b, a without it
    i=0; while $A list --format json | grep -q '"vm1"' && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done
    echo "lab: $1 a list: $($A list --format json | tr -d ' \n')"
    ls /tmp/ra/instances/vm1 2>&1 | sed "s/^/lab: $1 a-left: /"
    echo "lab: $1 b status $($B info vm1 | grep '"status"' | tr -d ' ,')"
    n=$(ticks rb | tail -1 | cut -d' ' -f2)
    wait_tick rb $((${n:-0} + 4))
    ticks rb | tail -1 | sed "s/^/lab: $1 /"
}
daemon /tmp/ra 127.0.0.1:8441
daemon /tmp/rb 127.0.0.1:8442
check remote remotes https://127.0.0.1:8441 https://127.0.0.1:8442
check launch $A launch busybox vm1 --vm --no-network --memory 128M -- sh -c '%(ticker)s'
wait_tick ra 6
# a volume attached: refused before anything changes, then detached
$A volume create vdata
$A volume attach vdata vm1 /data > /dev/null
$A move vm1 hb: > /tmp/vol.out 2>&1; echo "lab: vol rc=$?"
sed 's/^/lab: vol: /' /tmp/vol.out
$A volume detach vdata vm1 > /dev/null
echo "lab: before $(ticks ra | tail -1)"
timed_move
echo "lab: source list: $($A list --format json | tr -d ' \n')"
wait_moved_ticks 6
ticks ra /tmp/src.log | tail -3 | sed 's/^/lab: src /'
ticks rb | head -3 | sed 's/^/lab: dst /'
ticks rb | tail -1 | sed 's/^/lab: dst /'
ls /tmp/ra/instances/vm1 2>&1 | sed 's/^/lab: left: /'
# b's monitor is the instance's own now: exec (the guest agent over vsock,
# under b's CID) and list work on it
check dest_exec $B exec vm1 -- cat /marker
check dest_list $B list
ps -ef | grep -c '[c]loison-vmmon' | sed 's/^/lab: vmmons /'
grep -a 'cloison-vmm\|cloison:' /tmp/rb/instances/vm1/console.log | tail -5 | sed 's/^/lab: dst-log: /'

# a move back the destination's daemon dies in: the VM stays on b
$B move vm1 ha: > /tmp/back.out 2>&1 &
mover=$!
i=0; while [ ! -e /tmp/ra/instances/vm1/disk.img ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
sleep 1
kill -9 $(cat /tmp/ra.pid)
wait $mover; echo "lab: back rc=$?"
sed 's/^/lab: back: /' /tmp/back.out
rm -f /tmp/ra.sock
daemon /tmp/ra 127.0.0.1:8441
after_failed after-fail
ps -ef | grep -c '[c]loison-vmmon' | sed 's/^/lab: vmmons after-fail /'

# a move back cancelled (SIGINT to the mover) once the migration runs,
# the guest dirtying memory and disk meanwhile so that it runs a while
$B exec vm1 -- sh -c 'echo $$ > /dpid; while :; do dd if=/dev/urandom of=/d bs=1M count=8 2>/dev/null; done' >/dev/null 2>&1 &
dirtier=$!
sleep 2
$B move vm1 ha: > /tmp/cancel.out 2>&1 &
mover=$!
wait_migrating rb
kill -INT $mover
wait $mover; echo "lab: cancel rc=$?"
sed 's/^/lab: cancel: /' /tmp/cancel.out
echo "lab: cancel vmm $(/lab/uhttp /tmp/rb/instances/vm1/api.sock GET /migration | tail -1 | grep -o '"state":"[a-z]*"')"
$B exec vm1 -- sh -c 'kill $(cat /dpid)'; kill $dirtier 2>/dev/null
after_failed cancel

check dest_stop $B stop vm1
echo "lab: marker $(debugfs -R 'cat /marker' /tmp/rb/instances/vm1/disk.img 2>/dev/null)"
$B delete --force vm1
tail -5 /tmp/ra.log | sed 's/^/lab: ra.log: /'
tail -5 /tmp/rb.log | sed 's/^/lab: rb.log: /'
true
""" % {"ticker": TICKER}


@pytest.fixture(scope="module")
def run(lab):
    return lab.run(PAYLOAD, files=move_files(), timeout=900, stream=print)


def ticks(out, prefix):
    return [(int(m.group(1)), float(m.group(2)))
            for m in re.finditer(r"^lab: %s tick (\d+) ([\d.]+)\s*$" % prefix, out, re.M)]


def test_running_vm_moves_live_and_ticks_on_without_reboot(run):
    run.assert_check("remote")
    run.assert_check("launch")
    out = run.assert_check("move").output
    assert "vm1 moved to hb:vm1" in out, run.output
    assert '"status":"running"' in re.search(r"^lab: dest status (.*)$", run.output,
                                               re.M).group(1), run.output
    src, dst = ticks(run.output, "src"), ticks(run.output, "dst")
    assert src and len(dst) >= 2, run.output
    # the count and the uptime go on where they were: no reboot
    last = src[-1]
    first = dst[0]
    assert first[0] == last[0] + 1, (src, dst)
    assert first[1] > last[1], (src, dst)
    assert dst[-1][0] > first[0] + 4, (src, dst)
    pause = first[1] - last[1] - 0.5
    took = re.search(r"^lab: move took ([\d.]+) s", run.output, re.M)
    figures = re.search(r"^cloison: vm1 moved live in .*$", out, re.M)
    assert figures and figures.group(0).endswith("; the stream through TLS)"), out
    print("live move: total %s s, guest-seen pause %.2f s (uptime %.2f -> %.2f); %s"
          % (took.group(1) if took else "?", pause, last[1], first[1], figures.group(0)))


def test_volume_attached_refused_before_anything_changes(run):
    assert "lab: vol rc=1" in run.output, run.output
    assert re.search(r"^lab: vol: cloison: live move of `vm1`: volume `vdata` is attached \(a VM"
                     r" moves live with its own disk only\); stop it first, or detach the volume$",
                     run.output, re.M), run.output


def test_exec_and_list_work_on_the_destination(run):
    assert "moved-marker" in run.assert_check("dest_exec").output, run.output
    out = run.assert_check("dest_list").output
    assert re.search(r"^vm1\s.*running", out, re.M), out


def test_source_has_nothing_left(run):
    src = re.search(r"^lab: source list: (.*)$", run.output, re.M).group(1)
    assert '"vm1"' not in src, run.output
    assert re.search(r"^lab: left: ls: .*/tmp/ra/instances/vm1", run.output, re.M), run.output


def test_disk_came_by_block_migration(run):
    run.assert_check("dest_stop")
    assert "lab: marker moved-marker" in run.output, run.output


def test_destination_daemon_killed_mid_migration_leaves_it_running_here(run):
    m = re.search(r"^lab: back rc=(\d+)", run.output, re.M)
    assert m and m.group(1) != "0", run.output
    assert '"vm1"' not in re.search(r"^lab: after-fail a list: (.*)$", run.output,
                                     re.M).group(1), run.output
    assert re.search(r"^lab: after-fail a-left: ls: .*/tmp/ra/instances/vm1", run.output,
                     re.M), run.output
    assert '"status":"running"' in re.search(r"^lab: after-fail b status (.*)$", run.output,
                                               re.M).group(1), run.output
    # still ticking on b after the failed move
    after = ticks(run.output, "after-fail")
    dst = ticks(run.output, "dst")
    assert after and after[-1][0] > dst[-1][0] + 2, run.output


def test_cancelled_move_leaves_it_running_here(run):
    """Ctrl-C of the mover while the migration runs: the source's
    migration operation is cancelled (DELETE), so its VMM's migration;
    the VM runs on here, ticking, and the destination undid its receive."""
    m = re.search(r"^lab: cancel rc=(\d+)", run.output, re.M)
    assert m and m.group(1) != "0", run.output
    assert re.search(r"^lab: cancel: cloison: move of `vm1` interrupted \(signal 2\): undone "
                     r"\(it runs on here\)$", run.output, re.M), run.output
    assert 'lab: cancel vmm "state":"cancelled"' in run.output, run.output
    assert '"vm1"' not in re.search(r"^lab: cancel a list: (.*)$", run.output, re.M).group(1)
    assert re.search(r"^lab: cancel a-left: ls: .*/tmp/ra/instances/vm1", run.output, re.M)
    assert '"status":"running"' in re.search(r"^lab: cancel b status (.*)$", run.output,
                                               re.M).group(1), run.output
    after, before = ticks(run.output, "cancel"), ticks(run.output, "after-fail")
    assert after and after[-1][0] > before[-1][0] + 2, run.output
