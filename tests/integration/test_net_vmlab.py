# SPDX-License-Identifier: Apache-2.0
"""cloison networks in the VM lab (tests/lab/lab.py): what this machine's
kernel cannot show.

One lab boot (a Debian kernel with bridge VLAN filtering and 802.1Q) runs:
  - VLAN separation: two `--vlan` networks on the shared VLAN-filtering
    bridge; a port of VLAN 20 given an address in VLAN 10's subnet still
    cannot reach VLAN 10;
  - container <-> microVM: a stock Linux guest under cloison-vmm with
    virtio-net on the tap `cloison network attach-vm` made, leasing its
    reserved address from the network's dnsmasq, fetching a page from a
    container and serving one back, resolving the container by name.
Traffic stays inside the lab VM.
"""
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))

try:
    import lab as lab_module  # noqa: E402
except ImportError:  # the lab harness is not merged in this tree
    lab_module = None

NET_MODULES = ["8021q", "nf_tables", "nft_ct", "nft_nat", "nft_masq", "nft_chain_nat",
               "nft_fib_ipv4"]

GUEST = r"""#!/bin/sh
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip link set lo up; ip link set eth0 up
cat > /tmp/dhcp.sh <<'EOF'
#!/bin/sh
if [ "$1" = bound ]; then
  ip addr add $ip/$mask dev $interface && ip route add default via $router && echo $ip > /tmp/lease
fi
exit 0
EOF
chmod +x /tmp/dhcp.sh
busybox udhcpc -i eth0 -s /tmp/dhcp.sh -n -q -t 20 -T 1 -A 1 >/dev/null 2>&1
echo "g: lease=$(cat /tmp/lease 2>/dev/null)"
echo "g: mac=$(cat /sys/class/net/eth0/address)"
echo "g: http=$(printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 5 10.88.20.2 80 | tail -1)"
echo "g: dns=$(busybox nslookup box 10.88.20.1 2>&1 | tr '\n' ' ')"
mkdir -p /www && echo hello-from-vm > /www/index.html && busybox httpd -p 80 -h /www
echo "g: serving"
i=0; while [ ! -e /tmp/stop ] && [ $i -lt 40 ]; do sleep 0.5; i=$((i+1)); done
echo "g: done"
"""

PAYLOAD = r"""#!/bin/sh
. /lab/lib.sh
grep -q '^root:' /etc/passwd 2>/dev/null || echo 'root:x:0:0:root:/root:/bin/sh' >> /etc/passwd
grep -q '^root:' /etc/group 2>/dev/null || echo 'root:x:0:' >> /etc/group
C="/usr/bin/cloison --root /tmp/cl"
ctr() { /usr/bin/unshare -n sleep 1000 >/dev/null 2>&1 & echo $!; }
get() { /usr/bin/nsenter -t $1 -n sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $2 80 | tail -1"; }
serve() { mkdir -p /tmp/www-$1; echo "$2" > /tmp/www-$1/index.html; /usr/bin/nsenter -t $1 -n httpd -p 80 -h /tmp/www-$1; }

# a kernel without nf_tables (libnftables would exit(3) inside cloison):
# unload it, check the clean failure, load it again
NFT=$(grep -E '/(nft_[a-z0-9_]+|nf_tables)\.ko$' /lab/modules.order)
for m in $(echo "$NFT" | sed '1!G;h;$!d'); do b=${m##*/}; rmmod ${b%%.ko}; done
check nonft_unloaded sh -c "! grep -q '^nf_tables ' /proc/modules"
check nonft_create $C network create nonft --subnet 10.88.30.0/24
check nonft_left sh -c "ip -o link; ls /tmp/cl/net; for p in /proc/[0-9]*; do tr '\\0' ' ' < \$p/cmdline 2>/dev/null; echo; done | grep -c '[d]nsmasq --conf' || true"
check nonft_cleanup $C network cleanup
for m in $NFT; do insmod $m; done
rm -rf /tmp/cl

check vlan_create sh -c "$C network create v10 --vlan 10 --subnet 10.88.11.0/24 && $C network create v20 --vlan 20 --subnet 10.88.12.0/24 && $C network list"
A=$(ctr); A2=$(ctr); B=$(ctr); sleep 0.5
check vlan_attach sh -c "$C network attach v10 --instance va --pid $A && $C network attach v10 --instance va2 --pid $A2 && $C network attach v20 --instance vb --pid $B"
serve $A hello-va
check vlan_same get $A2 10.88.11.2
/usr/bin/nsenter -t $B -n ip addr add 10.88.11.99/24 dev eth0
check vlan_cross get $B 10.88.11.2
check vlan_show /usr/sbin/bridge vlan show
check vlan_gateway /usr/bin/nsenter -t $A -n ping -c 1 -W 3 10.88.11.1
check vlan_dns sh -c "for i in 1 2 3 4 5 6 7 8 9 10; do /usr/bin/nsenter -t $A -n nslookup va2 10.88.11.1 && break; sleep 0.3; done"
kill $A $A2 $B; killall httpd; sleep 0.5
check vlan_cleanup sh -c "$C network detach --instance va && $C network detach --instance va2 && $C network detach --instance vb && $C network delete v10 && $C network delete v20 && $C network delete default && ip -o link"

check vm_create $C network create vmnet --subnet 10.88.20.0/24
BOX=$(ctr); sleep 0.3
check vm_box $C network attach vmnet --instance box --pid $BOX
serve $BOX hello-from-box
$C network attach-vm vmnet --instance vm1 > /tmp/vm1.json 2>&1
check vm_attach cat /tmp/vm1.json
TAP=$(sed -n 's/.*"host_ifname": "\(.*\)".*/\1/p' /tmp/vm1.json)
MAC=$(sed -n 's/.*"mac": "\(.*\)".*/\1/p' /tmp/vm1.json)
/lab/stamp -t 240 -- /usr/bin/cloison-vmm --kernel /guest/vmlinuz --initrd /guest/initrd \
  --memory 256M --cmdline "%(cmdline)s" --net tap=$TAP,mac=$MAC > /tmp/vmm.out 2>&1 &
VMM=$!
i=0; while [ $i -lt 200 ] && ! grep -q "g: serving" /tmp/vmm.out; do sleep 1; i=$((i+1)); done
check vm_from_box get $BOX 10.88.20.3
wait $VMM
check vm_guest cat /tmp/vmm.out
kill $BOX; killall httpd; sleep 0.3
check vm_cleanup sh -c "$C network detach --instance vm1 && $C network detach --instance box && $C network delete vmnet && ip -o link && ls /tmp/cl/net"
""" % {"cmdline": "console=ttyS0 reboot=k panic=-1 pci=conf1 i8042.noaux quiet"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if lab_module is None:
        pytest.skip("the VM lab harness (tests/lab/lab.py) is not in this tree")
    import shutil
    if shutil.which(lab_module.QEMU) is None:
        pytest.skip("qemu-system-x86_64 is not installed on this machine")
    build = os.path.join(ROOT, "build", "src", "cli")
    for b in ("cloison", "cloison-vmm"):
        if not os.path.exists(os.path.join(build, b)):
            pytest.fail("%s is not built" % b)
    d = tmp_path_factory.mktemp("netlab")
    initrd = str(d / "guest.cpio")
    lab_module.build_guest_initramfs(initrd, GUEST)
    files = lab_module.guest_files(initrd) + [
        (os.path.join(build, "cloison"), "/usr/bin/cloison"),
        (os.path.join(build, "cloison-vmm"), "/usr/bin/cloison-vmm"),
        ("/usr/sbin/dnsmasq", "/usr/sbin/dnsmasq"),
        ("/usr/bin/unshare", "/usr/bin/unshare"),
        ("/usr/bin/nsenter", "/usr/bin/nsenter"),
        ("/usr/sbin/bridge", "/usr/sbin/bridge"),
        (lab_module.tool("stamp"), "/lab/stamp")]
    return lab_module.run(PAYLOAD, files=files, timeout=500, stream=print,
                          modules=lab_module.LAB_MODULES + NET_MODULES)


def out(run, name):
    return run.assert_check(name).output


def test_vlan_networks_on_one_filtering_bridge(run):
    o = out(run, "vlan_create")
    assert "v10" in o and "v20" in o
    out(run, "vlan_attach")
    assert "hello-va" in out(run, "vlan_same")
    # same subnet address, other VLAN: no frame crosses
    assert "hello-va" not in run.check("vlan_cross").output
    show = out(run, "vlan_show")
    assert "clq-" in show  # the bridge itself carries both VLANs, tagged, to the gateways
    assert "10 PVID Egress Untagged" in show and "20 PVID Egress Untagged" in show
    # the gateway lives on an 802.1Q interface of the shared bridge
    assert "1 packets received" in out(run, "vlan_gateway")
    assert "10.88.11.3" in out(run, "vlan_dns")
    links = out(run, "vlan_cleanup")
    assert "clq-" not in links and "clb-" not in links and "clv-" not in links


def test_no_nf_tables_fails_cleanly(run):
    """In the lab kernel with nf_tables unloaded: a one-line error naming
    nftables, no bridge, directory or dnsmasq left; recovery (which needs
    no rule) works."""
    if not run.check("nonft_unloaded").ok:
        pytest.skip("could not unload nf_tables in the lab")
    c = run.check("nonft_create")
    assert c.rc == 1, c
    lines = [l for l in c.output.splitlines() if l.strip()]
    assert len(lines) == 1 and "nftables: the kernel has no nf_tables" in lines[0], c.output
    left = out(run, "nonft_left")
    assert "clb-" not in left, left
    assert left.strip().splitlines()[-1] == "0", left  # no dnsmasq
    out(run, "nonft_cleanup")


def test_microvm_leases_its_address_and_talks_to_a_container(run):
    vm = json.loads(out(run, "vm_attach"))
    assert vm["address"] == "10.88.20.3"
    g = out(run, "vm_guest")
    assert "g: lease=10.88.20.3" in g, g
    assert "g: mac=%s" % vm["mac"] in g
    assert "g: http=hello-from-box" in g
    assert "Address: 10.88.20.2" in g.split("g: dns=")[1].split("\n")[0]
    assert "hello-from-vm" in out(run, "vm_from_box")
    links = out(run, "vm_cleanup")
    assert "clt-" not in links and "clb-" not in links and "clv-" not in links
