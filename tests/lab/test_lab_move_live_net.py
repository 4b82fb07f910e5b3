# SPDX-License-Identifier: Apache-2.0
"""`cloison move` of a running VM on a network, live, in the VM lab.

Two "hosts": the network namespaces mn-a and mn-b, a cloisond in each
(its own state root, TLS on its end of a veth pair, which the migration
stream takes too), each a trusted remote of the other, each with a
network `lab` of the same subnet.  The two `lab` bridges are one
segment: each is joined by a veth to a bridge in a third namespace,
mn-c, where the client is (10.88.240.250).  A filler takes a's first
address, so that vm1's (the next one) is not the one b would give.

vm1 (the busybox VM image) sets its address from its MAC (cloison's
52:54:<IPv4> of the address it reserved), serves HTTP, streams numbered
lines with its uptime to the client over TCP (0.2 s apart) and ticks on
its console.  It moves live from a to b while the client reads the
stream (with --plain-stream: the migration stream on a port of b's own,
in the clear): on b it keeps its address and MAC, b's bridge holds its tap, the
VMM announced it (RARP frames, which mn-c's bridge forwards) so that
mn-c's bridge learns it behind b's uplink, the client fetches the page
at the same address, and the TCP connection opened before the move goes
on with no line missing.  a has no tap and no
address of vm1 left.  Printed: the move's total time, the
guest-seen pause (uptime gap) and the client-seen gap (the largest time
between two lines it received).  Then a move back with the hosts' link
cut while the migration runs (its stream through a's TLS API, the
default): the VM runs on at b."""
import json
import re

import pytest

from lab_cli import MOVE_HELPERS, PROLOGUE, move_files

SUBNET = "10.88.240.0/24"

# no quotes inside: the command goes through the kernel command line
GUEST = ("k=0; while [ ! -e /sys/class/net/eth0 ] && [ $k -lt 100 ]; do "
         "sleep 0.1; k=$((k+1)); done; ip link set lo up; ip link set eth0 up; "
         "IFS=: read x y p q r s < /sys/class/net/eth0/address; "
         "a=$((0x$p)).$((0x$q)).$((0x$r)).$((0x$s)); ip addr add $a/24 dev eth0; echo addr $a; "
         "mkdir -p /www; echo hello-vm1 > /www/index.html; httpd -p 80 -h /www; "
         "(j=0; while :; do j=$((j+1)); read u z < /proc/uptime; echo line $j $u; sleep 0.2; done)"
         " | nc -l -p 7000 & "
         "i=0; while :; do i=$((i+1)); read u z < /proc/uptime; echo tick $i $u; sleep 0.5; done")

PAYLOAD = PROLOGUE + MOVE_HELPERS + r"""
IP=/usr/sbin/ip
NS="nsenter --net=/run/netns"
A="$NS/mn-a $C --root /tmp/ra"; B="$NS/mn-b $C --root /tmp/rb"
for n in mn-a mn-b mn-c; do $IP netns add $n; $IP -n $n link set lo up; done
# the hosts' link: the daemons' TLS and the migration stream
$IP link add mva netns mn-a type veth peer name mvb netns mn-b
$IP -n mn-a addr add 10.253.0.1/30 dev mva; $IP -n mn-a link set mva up
$IP -n mn-b addr add 10.253.0.2/30 dev mvb; $IP -n mn-b link set mvb up
daemon /tmp/ra 10.253.0.1:8441 mn-a
daemon /tmp/rb 10.253.0.2:8442 mn-b
check remote remotes https://10.253.0.1:8441 https://10.253.0.2:8442
check networks sh -c "$A network create lab --subnet %(subnet)s && $B network create lab --subnet %(subnet)s"
bridge_of() { $IP -n $1 -o link show type bridge | cut -d: -f2 | tr -d ' ' | head -1; }
bra=$(bridge_of mn-a); brb=$(bridge_of mn-b)
echo "lab: bridges $bra $brb"
# one segment: a's and b's lab bridges joined through mn-c's bridge
$IP -n mn-c link add brc type bridge
$IP -n mn-c addr add 10.88.240.250/24 dev brc; $IP -n mn-c link set brc up
$IP link add upa netns mn-a type veth peer name ca netns mn-c
$IP link add upb netns mn-b type veth peer name cb netns mn-c
$IP -n mn-a link set upa master $bra up; $IP -n mn-b link set upb master $brb up
$IP -n mn-c link set ca master brc up; $IP -n mn-c link set cb master brc up
# a's first address taken, so that vm1's is not b's first free one
/usr/bin/unshare -n sleep 100000 >/dev/null 2>&1 &
check filler $A network attach lab --instance filler --pid $!
# mn-c's bridge counts the RARP frames it forwards (only a VMM resuming
# a guest, b's, sends them)
NFT="$NS/mn-c /usr/sbin/nft"
check rarp_counter sh -c "$NFT add table bridge mn &&
    $NFT add chain bridge mn pass '{ type filter hook forward priority 0; }' &&
    $NFT add rule bridge mn pass ether type 0x8035 counter"

check launch $A launch busybox vm1 --vm --network lab --memory 128M -- sh -c '%(guest)s'
wait_tick ra 4
vip=$(grep -a '^addr ' /tmp/ra/instances/vm1/console.log | head -1 | cut -d' ' -f2 | tr -d '\r')
echo "lab: guest address $vip"
echo "lab: a-info $($A info vm1 | tr -d ' \n')"
http() { $NS/mn-c sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 $vip 80" | tr -d '\r' | tail -1; }
echo "lab: http before $(http)"
# the client: the guest's stream, each line stamped as it comes
$NS/mn-c /lab/stamp -t 900 -- sh -c "tail -f /dev/null | nc $vip 7000" > /tmp/stream.out 2>&1 &
sleep 3
echo "lab: stream before move: $(grep -c ' line ' /tmp/stream.out) lines"
timed_move --plain-stream
echo "lab: b-info $($B info vm1 | tr -d ' \n')"
wait_moved_ticks 6
echo "lab: http after $(http)"
ticks ra /tmp/src.log | tail -1 | sed 's/^/lab: src /'
ticks rb | head -1 | sed 's/^/lab: dst /'
mac=$($B info vm1 | tr -d ' \n' | grep -o '"mac":"[0-9a-f:]*"' | head -1 | cut -d'"' -f4)
$NS/mn-c /usr/sbin/bridge fdb show br brc | grep -i "$mac" | sed 's/^/lab: fdb-c: /'
$IP -n mn-b -o link show master $brb | cut -d: -f2 | sed 's/^/lab: b-port:/'
$IP -n mn-a -o link show | cut -d: -f2 | sed 's/^/lab: a-link:/'
echo "lab: a-net $($A network info lab | tr -d ' \n')"
echo "lab: b-net $($B network info lab | tr -d ' \n')"
echo "lab: rarp forwarded $($NFT list chain bridge mn pass | grep -o 'packets [0-9]*')"
echo "lab: announces $(/lab/uhttp /tmp/rb/instances/vm1/api.sock GET /metrics | tail -1 | grep -o '"announces":[0-9]*')"
echo "lab: source list: $($A list --format json | tr -d ' \n')"
sed 's/^/lab: stream: /' /tmp/stream.out

# a move back with the hosts' link cut (API and stream alike) while the
# migration runs, for 40 s: the VM runs on at b, a undoes its receive
$B move vm1 ha: > /tmp/cut.out 2>&1 &
mover=$!
(sleep 400; kill -9 $mover 2>/dev/null) &
wait_migrating rb
$IP -n mn-a link set mva down
echo "lab: cut at $(cut -d' ' -f1 /proc/uptime)"
sleep 40
$IP -n mn-a link set mva up
wait $mover; echo "lab: cut rc=$? at $(cut -d' ' -f1 /proc/uptime)"
sed 's/^/lab: cut: /' /tmp/cut.out
echo "lab: cut vmm $(/lab/uhttp /tmp/rb/instances/vm1/api.sock GET /migration | tail -1 | grep -o '"state":"[a-z]*"')"
i=0; while $A list --format json | grep -q '"vm1"' && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done
echo "lab: cut a list: $($A list --format json | tr -d ' \n')"
echo "lab: cut b status $($B info vm1 | grep '"status"' | tr -d ' ,')"
n=$(ticks rb | tail -1 | cut -d' ' -f2)
wait_tick rb $((${n:-0} + 4))
echo "lab: cut ticks $n $(ticks rb | tail -1 | cut -d' ' -f2)"
echo "lab: http after cut $(http)"
check dest_stop $B stop vm1
$B delete --force vm1
tail -5 /tmp/ra.log | sed 's/^/lab: ra.log: /'
tail -5 /tmp/rb.log | sed 's/^/lab: rb.log: /'
true
""" % {"guest": GUEST, "subnet": SUBNET}

NET_MODULES = ["nf_tables", "nft_ct", "nft_nat", "nft_masq", "nft_chain_nat", "nft_fib_ipv4",
               "nft_meta_bridge"]


@pytest.fixture(scope="module")
def run(lab):
    files = move_files() + [
        ("/usr/sbin/ip", "/usr/sbin/ip"), ("/usr/sbin/bridge", "/usr/sbin/bridge"),
        ("/usr/bin/nsenter", "/usr/bin/nsenter"), ("/usr/bin/unshare", "/usr/bin/unshare"),
        ("/usr/sbin/dnsmasq", "/usr/sbin/dnsmasq"), ("/usr/sbin/nft", "/usr/sbin/nft"),
        (lab.tool("stamp"), "/lab/stamp")]
    return lab.run(PAYLOAD, files=files, timeout=900, stream=print,
                   modules=lab.LAB_MODULES + NET_MODULES)


def line(out, what):
    m = re.search(r"^lab: %s (.*)$" % what, out, re.M)
    assert m, out
    return m.group(1).strip()


def addresses(out, which):
    info = json.loads(line(out, which))
    return [(i["network"], i["address"], i["mac"]) for i in info["network"]]


def stream(out):
    """The client's lines: (seconds it got it at, number, guest uptime)."""
    return [(float(m.group(1)), int(m.group(2)), float(m.group(3)))
            for m in re.finditer(r"^lab: stream: \[\s*([\d.]+)\] line (\d+) ([\d.]+)\s*$", out,
                                 re.M)]


def test_vm_on_a_network_moves_live_keeping_address_and_mac(run):
    for c in ("remote", "networks", "filler", "launch"):
        run.assert_check(c)
    out = run.assert_check("move").output
    assert "vm1 moved to hb:vm1" in out, run.output
    assert '"status":"running"' in line(run.output, "dest status"), run.output
    assert re.search(r"^cloison: vm1 moved live in .*; the stream in the clear\)$", out, re.M), out
    before, after = addresses(run.output, "a-info"), addresses(run.output, "b-info")
    assert before and before == after, (before, after)
    # the guest's own address is the one cloison reserved, not b's first
    assert before[0][1] == line(run.output, "guest address"), run.output
    assert before[0][1] != "10.88.240.2", before


def test_traffic_follows_to_the_same_address(run):
    assert line(run.output, "http before") == "hello-vm1", run.output
    assert line(run.output, "http after") == "hello-vm1", run.output
    # b's bridge holds vm1's tap; mn-c's bridge learnt its MAC behind b's
    # uplink (the VMM's announcement, then its traffic)
    assert re.search(r"^lab: b-port: clt-", run.output, re.M), run.output
    assert re.search(r"^lab: fdb-c: \S+ dev cb ", run.output, re.M), run.output
    assert not re.search(r"^lab: fdb-c: \S+ dev ca ", run.output, re.M), run.output
    m = re.search(r'^lab: announces "announces":(\d+)', run.output, re.M)
    assert m and int(m.group(1)) > 0, run.output
    # and they crossed the segment: mn-c's bridge forwarded them
    run.assert_check("rarp_counter")
    rarp = re.search(r"^lab: rarp forwarded packets (\d+)", run.output, re.M)
    assert rarp and int(rarp.group(1)) >= int(m.group(1)), run.output


def test_tcp_connection_opened_before_the_move_survives(run):
    lines = stream(run.output)
    src = re.search(r"^lab: src tick (\d+) ([\d.]+)", run.output, re.M)
    assert src and lines, run.output
    moved_at = float(src.group(2))  # the guest's uptime at its last tick on a
    assert lines[0][2] < moved_at < lines[-1][2] - 2, (moved_at, lines[0], lines[-1])
    nums = [n for _, n, _ in lines]
    assert nums == list(range(nums[0], nums[0] + len(nums))), nums
    guest_gap = max(b[2] - a[2] for a, b in zip(lines, lines[1:])) - 0.2
    client_gap = max(b[0] - a[0] for a, b in zip(lines, lines[1:]))
    took = line(run.output, "move took")
    figures = re.search(r"^cloison: vm1 moved live in .*$", run.check("move").output, re.M)
    print("live move on a network: total %s, guest-seen pause %.2f s, client-seen gap %.2f s, "
          "%d lines in order over the move; %s"
          % (took, guest_gap, client_gap, len(lines), figures.group(0) if figures else "?"))


def test_source_has_no_tap_or_address_left(run):
    links = re.findall(r"^lab: a-link: (\S+)", run.output, re.M)
    assert links and not [l for l in links if l.startswith("clt-")], links
    net = json.loads(line(run.output, "a-net"))
    assert '"vm1"' not in json.dumps(net), net
    assert '"vm1"' not in line(run.output, "source list:"), run.output
    assert "vm1" in line(run.output, "b-net"), run.output
    run.assert_check("dest_stop")


def test_link_cut_mid_migration_leaves_it_running_here(run):
    """The hosts' only link down for 40 s while the migration runs (the
    source's VMM finds the stream silent, the destination's too): the
    move fails, the VM runs on at b and serves at its address, a has
    nothing of it."""
    out = run.output
    m = re.search(r"^lab: cut rc=(\d+)", out, re.M)
    assert m and m.group(1) != "0", out
    assert re.search(r"^lab: cut: cloison: .*vm1.*\(it runs on here\)", out, re.M), out
    assert '"vm1"' not in line(out, "cut a list:"), out
    assert '"status":"running"' in line(out, "cut b status"), out
    before, after = (int(x) for x in line(out, "cut ticks").split())
    assert after > before, out
    assert line(out, "http after cut") == "hello-vm1", out
