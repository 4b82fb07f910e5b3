# SPDX-License-Identifier: Apache-2.0
"""The microVM side of a network: a persistent tap on the bridge, an address
reserved for the VM's MAC and handed out by the network's dnsmasq.

No VMM here: a small Python "guest" opens the tap by name the way a VMM's
virtio-net does (TUNSETIFF on the existing device), asks for a lease with
DHCP, then answers ARP and ICMP echo for its address so that a container on
the same network can ping it.
"""
import os
import subprocess
import sys

from test_net_lab import BUSYBOX, lab  # noqa: F401

FAKE_GUEST = r'''
import fcntl, os, select, socket, struct, sys, time

TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454ca, 0x0002, 0x1000
tap, mac_s, mode = sys.argv[1], sys.argv[2], sys.argv[3]
mac = bytes(int(x, 16) for x in mac_s.split(":"))
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", tap.encode(), IFF_TAP | IFF_NO_PI))

def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def ipv4(src, dst, proto, payload):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload

def frame(dst, ethertype, payload):
    return dst + mac + struct.pack("!H", ethertype) + payload

def frames(deadline):
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            yield os.read(fd, 65536)

def dhcp(msg_type, xid, extra=b""):
    bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4,
                        b"\0" * 4, b"\0" * 4, b"\0" * 4, mac + b"\0" * 10, b"", b"")
    opts = b"\x63\x82\x53\x63" + bytes([53, 1, msg_type]) + extra + b"\x37\x03\x01\x03\x06\xff"
    udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp + opts), 0) + bootp + opts
    os.write(fd, frame(b"\xff" * 6, 0x0800, ipv4(b"\0" * 4, b"\xff" * 4, 17, udp)))

def dhcp_reply(xid, deadline, last=True):
    for f in frames(deadline):
        if f[12:14] != b"\x08\x00" or f[23] != 17: continue
        ihl = (f[14] & 15) * 4
        udp = f[14 + ihl:]
        if struct.unpack("!H", udp[2:4])[0] != 68: continue
        bootp = udp[8:]
        if bootp[0] != 2 or struct.unpack("!I", bootp[4:8])[0] != xid: continue
        opts, i, found = bootp[240:], 0, {}
        while i < len(opts) and opts[i] != 255:
            if opts[i] == 0: i += 1; continue
            found[opts[i]] = opts[i + 2:i + 2 + opts[i + 1]]; i += 2 + opts[i + 1]
        return bootp[16:20], found
    if last:
        sys.exit("no DHCP reply")
    return None, None

xid = 0x1234abcd
t0 = time.time()
# DISCOVER, retried like a real client: the first frame may be lost while the
# kernel's linkwatch (up to 1 s) turns the new carrier into a forwarding port
for attempt in range(5):
    dhcp(1, xid)
    offer, opts = dhcp_reply(xid, time.time() + 1, attempt == 4)
    if offer:
        break
assert opts[53] == b"\x02", opts
dhcp(3, xid, bytes([50, 4]) + offer + bytes([54, 4]) + opts[54])  # REQUEST
acked, opts = dhcp_reply(xid, time.time() + 5)
assert opts[53] == b"\x05", opts               # ACK
me = acked
print("lease", socket.inet_ntoa(me), "router", socket.inet_ntoa(opts.get(3, b"\0\0\0\0")),
      flush=True)
print("after %.2f s" % (time.time() - t0), file=sys.stderr, flush=True)
if mode != "serve":
    sys.exit(0)
# answer ARP and ping for our address until killed
for f in frames(time.time() + 60):
    if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x01" and f[38:42] == me:
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + mac + me + f[22:28] + f[28:32]
        os.write(fd, frame(f[6:12], 0x0806, arp))
    elif f[12:14] == b"\x08\x00" and f[23] == 1 and f[30:34] == me:
        ihl = (f[14] & 15) * 4
        icmp = f[14 + ihl:14 + struct.unpack("!H", f[16:18])[0]]
        if icmp[0] != 8: continue
        reply = b"\x00\x00\x00\x00" + icmp[4:]
        reply = reply[:2] + struct.pack("!H", csum(reply)) + reply[4:]
        os.write(fd, frame(f[6:12], 0x0800, ipv4(me, f[26:30], 1, reply)))
'''


def start_guest(lab, tap, mac, mode):
    p = subprocess.Popen(["ip", "netns", "exec", lab.host, sys.executable, "-c", FAKE_GUEST,
                          tap, mac, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    lab.procs.append(p)
    return p


def test_vm_tap_dhcp_and_container_to_vm(lab):
    lab.cloison("network", "create", "mixed", "--subnet", "10.88.20.0/24")
    c = lab.container("box", "mixed")
    vm = lab.cloison_json("network", "attach-vm", "mixed", "--instance", "vm1", "--owner", "65534")
    tap = vm["host_ifname"]
    assert vm["address"] == "10.88.20.3" and vm["mac"] == "52:54:0a:58:14:03"
    # a persistent tap on the bridge, owned by the VMM's user, with a vnet header
    base = "/sys/class/net/%s/" % tap
    show = lab.ns(lab.host, "ip", "-d", "link", "show", tap).stdout
    assert "tap" in show and "master " + vm["bridge"] in show
    assert lab.ns(lab.host, "cat", base + "owner").stdout.strip() == "65534"
    flags = int(lab.ns(lab.host, "cat", base + "tun_flags").stdout.strip(), 16)
    assert flags & 0x0002 and flags & 0x1000 and flags & 0x4000  # TAP, NO_PI, VNET_HDR
    # the guest gets its reserved address (and the gateway) over DHCP
    guest = start_guest(lab, tap, vm["mac"], "serve")
    line = guest.stdout.readline()
    if not line:
        guest.wait(timeout=10)
    assert line.split() == ["lease", "10.88.20.3", "router", "10.88.20.1"], \
        (line, guest.stderr.read() if guest.poll() is not None else "")
    # container -> VM through the bridge and the tap (ARP + ICMP both ways)
    r = c.run(BUSYBOX, "ping", "-c", "2", "-W", "2", "10.88.20.3", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    # DNS names for both kinds of instance
    assert "10.88.20.3" in c.resolve("vm1", "10.88.20.1")
    info = lab.cloison_json("network", "instance", "vm1")
    assert info["interfaces"][0]["kind"] == "vm"
    guest.kill()
    guest.wait()
    lab.cloison("network", "detach", "--instance", "vm1")
    assert tap not in lab.links()


def test_vm_address_reserved_by_mac_only(lab):
    """Another MAC on the bridge gets no lease: addresses are static."""
    lab.cloison("network", "create", "static", "--subnet", "10.88.21.0/24")
    vm = lab.cloison_json("network", "attach-vm", "static", "--instance", "vm2")
    guest = start_guest(lab, vm["host_ifname"], "52:54:00:de:ad:01", "lease")
    out, err = guest.communicate(timeout=30)
    assert guest.returncode != 0 and "no DHCP reply" in err
    lab.cloison("network", "detach", "--instance", "vm2")
    assert os.path.exists(os.path.join(lab.root, "net", "static", "dhcp-hosts"))
