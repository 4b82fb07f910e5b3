# SPDX-License-Identifier: Apache-2.0
"""`cloison launch --vm` from a warm template (issue 12, docs/templates.md)
in the VM lab: the first launch of a machine shape builds the template
(our kernel and initramfs booted up to the init's wait for the "go",
snapshotted), every launch restores it with the instance's own disk, tap,
MAC and vsock CID and sends the go; `--cold` boots.  Two clones and a cold
VM on one network: each runs, exec works, each has its own hostname, MAC,
DHCP address and random bytes, and only the clones carry the template's
command line (`cloison.template`).  Every VM has the VM Generation ID
device (ACPI VMGENCTR); each restore (a clone, a stateful snapshot
restored) raised its GPE 5 once more, a cold boot never.  Stop/start of a clone is a clone
again; a stateful snapshot of a clone restores; the cache's cap removes
the least recently used template.  One lab boot; each test asserts on
one check of it."""
import re

import pytest

from lab_cli import PROLOGUE, cli_files

NET_MODULES = ["nf_tables", "nft_ct", "nft_nat", "nft_masq", "nft_chain_nat", "nft_fib_ipv4"]

PAYLOAD = PROLOGUE + r"""
now() { cut -d' ' -f1 /proc/uptime; }
# seconds from launch until `exec` answers
launch_timed() {
  n=$1; shift; t0=$(now)
  $C launch busybox $n --vm --network tplnet --memory 192M "$@" -- ${CMD:-/bin/sleep 100000} || return 1
  i=0; while ! $C exec $n -- true >/dev/null 2>&1 && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  echo "took=$(awk -v a=$t0 -v b=$(now) 'BEGIN { printf "%.2f", b - a }')"
}
launch_sh() { CMD=/bin/sh launch_timed "$@"; }
printf '#!/bin/sh\n[ "$1" = bound ] && ip addr add $ip/$mask dev $interface && echo $ip > /lease\nexit 0\n' > /lab/dhcp.sh
about() {
  $C exec $1 -- sh -c 'cat > /dhcp.sh; chmod +x /dhcp.sh' < /lab/dhcp.sh
  $C exec $1 -- sh -c 'echo host=$(hostname); echo mac=$(cat /sys/class/net/eth0/address);
    ip link set eth0 up; udhcpc -i eth0 -s /dhcp.sh -n -q -t 20 -T 1 -A 1 >/dev/null 2>&1;
    echo lease=$(cat /lease); echo rand=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n");
    grep -q cloison.template /proc/cmdline && echo boot=clone || echo boot=cold;
    echo disk=$(cat /sys/block/vda/size);
    echo vgen=$(cat /sys/bus/acpi/devices/VMGENCTR:00/path 2>/dev/null || echo none);
    echo gpe=$(awk "{print \$1}" /sys/firmware/acpi/interrupts/gpe05 2>/dev/null || echo none)'
}
gpe() { $C exec $1 -- awk '{print "gpe=" $1}' /sys/firmware/acpi/interrupts/gpe05; }
check net $C network create tplnet --subnet 10.88.40.0/24
check first launch_timed w1
check tpl_ls $C template ls
check second launch_sh w2
check cold launch_timed c1 --cold
check about_w1 about w1
check about_w2 about w2
check about_c1 about c1
check logs_w1 sh -c "$C logs w1 | tail -5"
check restart sh -c "$C stop w1 && $C start w1 && $C exec w1 -- sh -c 'hostname; grep -c cloison.template /proc/cmdline'"
check gpe_before gpe w2
check stateful sh -c "$C snapshot create --stateful w2 live && $C exec w2 -- sh -c 'echo after > /root/later' &&
    $C snapshot restore w2 live && $C exec w2 -- sh -c 'cat /root/later 2>&1; echo restored-ok'"
check gpe_after gpe w2
check console sh -c "printf 'echo console-\$((6*7))\n' | $C console w2; r=\$?; echo; exit \$r"
check delete sh -c "$C delete --force w1 && $C delete --force w2 && $C delete --force c1 && $C list"
# the cap: 1 byte; the next template (another memory size) is kept, the old one goes
check cap sh -c "$C template cap 1 && $C template ls --format json &&
    $C launch busybox w3 --vm --no-network --memory 128M -- /bin/sleep 100000 &&
    $C exec w3 -- grep -c cloison.template /proc/cmdline && $C template ls --format json &&
    $C delete --force w3"
# a command's exit status, from a clone: cloison-init says it on the console
check exit_code sh -c "$C launch busybox e1 --vm --no-network --memory 128M -- sh -c 'exit 7' &&
    i=0; while ! $C list | grep -q '^e1 .* stopped' && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i+1)); done;
    $C info e1 | grep -E 'exit_code|status'; tail -3 /tmp/cl/instances/e1/console.log; $C delete e1"
check rm sh -c "$C template rm --all && $C template ls && ls /tmp/cl/manager/vm-templates"
"""


@pytest.fixture(scope="module")
def run(lab):
    files = cli_files() + [("/usr/sbin/dnsmasq", "/usr/sbin/dnsmasq")]
    return lab.run(PAYLOAD, files=files, timeout=900, stream=print,
                   modules=lab.LAB_MODULES + NET_MODULES)


def fields(out):
    return dict(re.findall(r"^(\w+)=(.*)$", out, re.M))


def test_first_launch_builds_the_template_then_clones_boot_warm(run):
    for name in ("first", "second", "cold"):
        run.assert_check(name)
    assert re.search(r"^[0-9a-f]{16} ", run.assert_check("tpl_ls").output, re.M)
    w1, w2, c1 = (fields(run.assert_check(n).output) for n in ("about_w1", "about_w2", "about_c1"))
    assert w1["boot"] == "clone" and w2["boot"] == "clone" and c1["boot"] == "cold"
    # each its own hostname, MAC, address, random bytes
    assert (w1["host"], w2["host"], c1["host"]) == ("w1", "w2", "c1")
    assert len({w1["mac"], w2["mac"], c1["mac"]}) == 3
    assert all(v["lease"].startswith("10.88.40.") for v in (w1, w2, c1)), (w1, w2, c1)
    assert len({w1["lease"], w2["lease"], c1["lease"]}) == 3
    assert len({w1["rand"], w2["rand"], c1["rand"]}) == 3
    # its own disk: the image's disk, not the template's placeholder (1 MiB)
    assert int(w1["disk"]) > 2048 and w1["disk"] == c1["disk"]


def test_a_clone_stops_starts_snapshots_and_has_a_console(run):
    out = run.assert_check("restart").output
    assert "w1" in out and out.strip().splitlines()[-1] == "1"
    out = run.assert_check("stateful").output
    assert "restored-ok" in out and "after" not in out.replace("restored-ok", "")
    assert "console-42" in run.assert_check("console").output


def test_a_clones_command_exit_status(run):
    out = run.assert_check("exit_code").output
    assert re.search(r'"exit_code":\s*7', out), out
    assert "reboot: Power down" in out and "Kernel panic" not in out, out


def test_the_cap_removes_the_least_recently_used_template(run):
    out = run.assert_check("cap").output
    # the first listing: the cap removed the 192M template at once
    assert out.split("]", 1)[0].strip().endswith("["), out
    after = out.split("]", 1)[1]
    assert after.count('"name"') == 1, out
    assert "\n1\n" in out  # w3 is a clone of the new template
    out = run.assert_check("rm").output
    assert not re.search(r"^[0-9a-f]{16}", out, re.M), out


def test_vmgenid_device_and_a_new_generation_per_restore(run):
    """The guest's kernel has no vmgenid driver (docs/templates.md), so
    what it shows is the ACPI device (VMGENCTR, \\_SB_.VGEN) and how often
    its GPE fired: once in a clone (the restore of the template), never
    in a cold boot, once more after a stateful snapshot is restored."""
    w1, w2, c1 = (fields(run.assert_check(n).output) for n in ("about_w1", "about_w2", "about_c1"))
    for v in (w1, w2, c1):
        assert v["vgen"] == "\\_SB_.VGEN", v
    assert (w1["gpe"], w2["gpe"], c1["gpe"]) == ("1", "1", "0"), (w1, w2, c1)
    before = int(fields(run.assert_check("gpe_before").output)["gpe"])
    after = int(fields(run.assert_check("gpe_after").output)["gpe"])
    assert after == before + 1, (before, after)
