# SPDX-License-Identifier: Apache-2.0
"""What the `cloison` CLI needs in the VM lab, shared by the
test_lab_cli_*.py files: the built binaries, the built-in busybox image
with its VM pieces (`ninja -C build vm-image`), and the payload prologue
that installs the image data where cloison looks for it."""
import os

import pytest

import lab

BUILD = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "build")
CLOISON = os.path.join(BUILD, "src", "cli", "cloison")
MONITOR = os.path.join(BUILD, "src", "manager", "cloison-monitor")
VMMON = os.path.join(BUILD, "src", "manager", "cloison-vmmon")
PROJECT = os.path.join(BUILD, "src", "manager", "cloison-project")
IMAGE_DATA = os.path.join(BUILD, "src", "image", "busybox-rootfs.tar")
VM_KERNEL = os.path.join(BUILD, "src", "image", "vmlinuz")
VM_INITRAMFS = os.path.join(BUILD, "src", "image", "initramfs.cpio.gz")

# Start of every CLI payload: the lab's check helpers, a state root, and
# the built-in image's data; $C is the cloison binary.  The test build
# (-Dbuild_tree_paths=true) takes its monitor and image data from the
# environment: the lab has no build tree.
PROLOGUE = r"""#!/bin/sh
. /lab/lib.sh
export CLOISON_ROOT=/tmp/cl CLOISON_IMAGE_DATA=/lab/image-data CLOISON_MONITOR=/lab/cloison-monitor
export CLOISON_VMMON=/lab/cloison-vmmon CLOISON_PROJECT=/lab/cloison-project
C=/lab/cloison
mkdir -p /lab/image-data && cp /lab/busybox-rootfs.tar /lab/vmlinuz /lab/initramfs.cpio.gz /lab/image-data/
"""


def cli_files():
    """The (host path, lab path) pairs a CLI payload needs; fails the test
    module when something is not built."""
    for p in (CLOISON, MONITOR, VMMON, PROJECT, IMAGE_DATA):
        if not os.path.exists(p):
            pytest.fail("%s is not built" % p)
    for p in (VM_KERNEL, VM_INITRAMFS):
        if not os.path.exists(p):
            pytest.fail("%s is not built: ninja -C build vm-image" % p)
    return [
        (CLOISON, "/lab/cloison"), (MONITOR, "/lab/cloison-monitor"),
        (VMMON, "/lab/cloison-vmmon"), (PROJECT, "/lab/cloison-project"),
        (IMAGE_DATA, "/lab/busybox-rootfs.tar"), (VM_KERNEL, "/lab/vmlinuz"),
        (VM_INITRAMFS, "/lab/initramfs.cpio.gz"),
        ("/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"), ("/sbin/resize2fs", "/usr/sbin/resize2fs")]


# After PROLOGUE in the `cloison move` payloads: two cloisonds, each a
# trusted remote of the other ($A and $B run the CLI on their roots).
#   daemon ROOT ADDR:PORT [NETNS]   a cloisond on ROOT (its socket ROOT.sock,
#                                   its pid in ROOT.pid), TLS on ADDR:PORT,
#                                   in the network namespace NETNS if given
#   remotes URL_A URL_B             hb (b at URL_B) a remote of a, ha of b
#   ticks ROOT [FILE]               the `tick N UPTIME` lines of vm1's console
#   wait_tick ROOT N                until vm1 on ROOT has ticked N times
#   wait_migrating ROOT             until vm1's VMM under ROOT migrates
#   wait_moved_ticks K              until vm1 ticked K times on b past its
#                                   last tick on a (after timed_move: b's
#                                   console may have no tick yet)
#   timed_move [OPTION...]          check `move`: $A moves vm1 to hb:, timed
#                                   ("lab: move took S s"), a's console kept
#                                   in /tmp/src.log (the move deletes it)
MOVE_HELPERS = r"""
export CLOISON_CONFIG=/tmp/cfg
daemon() {
    ${3:+nsenter --net=/run/netns/$3} /lab/cloisond --root $1 --socket $1.sock --listen $2 >>$1.log 2>&1 &
    echo $! > $1.pid
    i=0; while [ ! -S $1.sock ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
    sleep 1
}
remotes() {
    tok=$($B config trust add mover) && $A remote add hb $2 --token $tok &&
        tok=$($A config trust add mover2) && $B remote add ha $1 --token $tok
}
ticks() { grep -a '^tick' ${2:-/tmp/$1/instances/vm1/console.log} 2>/dev/null | tr -d '\r'; }
wait_tick() {
    i=0; while [ "$(ticks $1 | tail -1 | cut -d' ' -f2)" -lt $2 ] 2>/dev/null || [ -z "$(ticks $1)" ]; do
        [ $i -gt 900 ] && break; sleep 0.2; i=$((i+1)); done
}
wait_migrating() {  # ROOT: until vm1's VMM there migrates (its pre-copy runs)
    i=0; until /lab/uhttp /tmp/$1/instances/vm1/api.sock GET /migration 2>/dev/null | grep -q '"state":"active"'; do
        [ $i -gt 1200 ] && break; sleep 0.05; i=$((i+1)); done
}
wait_moved_ticks() {  # K: until vm1 ticked K times on b past its last tick on a
    n=$(ticks ra /tmp/src.log | tail -1 | cut -d' ' -f2)
    wait_tick rb $((${n:-0} + $1))
}
timed_move() {
    tail -n +1 -f /tmp/ra/instances/vm1/console.log > /tmp/src.log &
    tailer=$!
    s=$(cut -d' ' -f1 /proc/uptime)
    check move $A move "$@" vm1 hb:
    echo "lab: move took $(echo "$(cut -d' ' -f1 /proc/uptime) $s" | awk '{print $1 - $2}') s"
    sleep 0.5; kill $tailer
    echo "lab: dest status $($B info vm1 | grep '"status"' | tr -d ' ,')"
}
"""


def move_files():
    """cli_files() and what a `cloison move` payload needs besides: the
    daemon, the archive's tools, debugfs to read a disk image, uhttp to
    ask a VMM's API socket."""
    return cli_files() + [(BUILD + "/src/cli/cloisond", "/lab/cloisond"),
                          (lab.tool("uhttp"), "/lab/uhttp"),
                          ("/usr/bin/zstd", "/usr/bin/zstd"), ("/usr/bin/tar", "/usr/bin/tar"),
                          ("/sbin/debugfs", "/usr/sbin/debugfs")]


def assert_not_running_one_line(out, name="vm"):
    """A check's output: the command on a stopped instance failed (its
    payload printed rc=1) with exactly one error line."""
    assert "rc=1" in out, out
    errs = [l for l in out.splitlines() if l.startswith("cloison:")]
    assert errs == ["cloison: instance `%s` is not running" % name], out


def assert_no_instance(out, name="vm"):
    """A check's `cloison list` output no longer names the instance."""
    assert name not in out.replace("NAME", ""), out


# What a cloison network needs in the lab: the modules of its nftables
# (NAT chains, masquerade, fib, ct, the nf_tables core that lab_criu.MODULES
# has) and dnsmasq (its DHCP and DNS).
NETWORK_MODULES = ["nf_tables", "nft_chain_nat", "nft_nat", "nft_masq", "nft_ct", "nft_fib_inet",
                   "nft_fib_ipv4", "nft_fib_ipv6", "nft_reject_inet", "nft_redir"]
NETWORK_FILES = [("/usr/sbin/dnsmasq", "/usr/sbin/dnsmasq")]
# HTTP/1.0 by hand over nc (the lab's busybox wget crashes): `http ADDR`
# prints the body's last line, or `down`
HTTP_SH = r"""http() {
    r=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 "$1" 8080 2>/dev/null | tail -1)
    echo "${r:-down}"
}
"""
