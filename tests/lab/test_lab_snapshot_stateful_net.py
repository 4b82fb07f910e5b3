# SPDX-License-Identifier: Apache-2.0
"""`cloison snapshot create --stateful` of a container WITH a network
(issue 13, docs/checkpoint.md), in the VM lab (6.1 kernel: criu works).

The container is on a cloison network (a bridge, its veth) at a fixed
address; it counts in a shell loop (/root/count) and serves HTTP (busybox
httpd, a listening TCP socket) on that address.  A stateful snapshot
dumps its processes with its network namespace external (not dumped);
the restore attaches the networks to a new namespace (same bridge, same
address and MAC) and CRIU restores the processes into it: the count goes
on from the snapshot's value, and the server answers at the same address
from the lab host."""
import re

import pytest

import lab_criu
from lab_cli import PROLOGUE, cli_files

ADDR = "10.88.5.7"
# a cloison network's nftables (NAT chains, masquerade, fib, ct)
MODULES = lab_criu.MODULES + ["nft_chain_nat", "nft_nat", "nft_masq", "nft_ct", "nft_fib_inet",
                              "nft_fib_ipv4", "nft_fib_ipv6", "nft_reject_inet", "nft_redir"]
COUNTER = ("mkdir -p /www; echo hello-ctrnet > /www/index.html; httpd -p 8080 -h /www; "
           "i=0; while :; do i=$((i+1)); echo $i > /root/count; sleep 0.5; done")

PAYLOAD = PROLOGUE + lab_criu.PROLOGUE + r"""
count() { $C exec ctr -- cat /root/count; }
# the lab's busybox wget crashes here: HTTP/1.0 by hand over nc
http() {
    r=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %(addr)s 8080 2>/dev/null | tail -1)
    echo "${r:-down}"
}
mac() { $C exec ctr -- cat /sys/class/net/eth0/address; }
check net $C network create ctrnet --subnet 10.88.5.0/24
check launch $C launch busybox ctr --network ctrnet@%(addr)s -- sh -c '%(counter)s'
sleep 5
echo "lab: before $(count)"
echo "lab: http-before $(http)"
echo "lab: mac-before $(mac)"
check snap $C snapshot create --stateful ctr warm
echo "lab: after-snap $(count)"
echo "lab: snap-value $(cat /tmp/cl/instances/ctr/snapshots/warm/upper/root/count)"
sleep 4
echo "lab: later $(count)"
check restore $C snapshot restore ctr warm
sleep 0.5
echo "lab: restored-first $(count)"
sleep 3
echo "lab: restored $(count)"
echo "lab: http-after $(http)"
echo "lab: mac-after $(mac)"
echo "lab: status $($C info ctr | grep '"status"' | tr -d ' ,')"
check info $C info ctr
check delete $C delete --force ctr
for f in /tmp/cl/instances/ctr/snapshots/warm/state.log/*.log; do
    [ -f $f ] && grep -E "Error|Warn" $f | head -8 | sed "s|^|lab: $(basename $f): |"
done
true
""" % {"counter": COUNTER, "addr": ADDR}


@pytest.fixture(scope="module")
def run(lab):
    # a network runs dnsmasq (its DHCP and DNS)
    files = cli_files() + lab_criu.criu_files() + [("/usr/sbin/dnsmasq", "/usr/sbin/dnsmasq")]
    return lab.run(PAYLOAD, files=files, timeout=900, stream=print, modules=MODULES)


def value(out, key):
    m = re.search(r"^lab: %s (\S+)\s*$" % re.escape(key), out, re.M)
    assert m, "no `lab: %s` line:\n%s" % (key, out)
    return m.group(1)


def test_restore_resumes_the_count_and_the_server(run):
    assert "lab: criu check ok" in run.output, run.output
    run.assert_check("net")
    run.assert_check("launch")
    assert value(run.output, "http-before") == "hello-ctrnet", run.output
    run.assert_check("snap")
    after, later = int(value(run.output, "after-snap")), int(value(run.output, "later"))
    snap = int(value(run.output, "snap-value"))
    assert later > after, run.output
    run.assert_check("restore")
    first, restored = int(value(run.output, "restored-first")), int(value(run.output, "restored"))
    # on from the snapshot's value, not from 0 nor from where it had got to
    assert snap < first <= snap + 6 and first < later, run.output
    assert restored > first, "the restored container does not count:\n" + run.output
    assert '"status":"running"' in run.output, run.output
    # the listening socket restored, at the same address, same MAC
    assert value(run.output, "http-after") == "hello-ctrnet", run.output
    assert value(run.output, "mac-after") == value(run.output, "mac-before"), run.output
    assert ADDR in run.check("info").output, run.check("info").output
    run.assert_check("delete")
