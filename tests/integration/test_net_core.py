# SPDX-License-Identifier: Apache-2.0
"""cloison networks: bridges, addresses, NAT, port forwards, isolation,
bad input, clean-up.  Each test builds its own namespaces (test_net_lab)."""
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from test_net_lab import BUSYBOX, CLIENT, HOST_CLIENT, HOST_UP, UPSTREAM, lab, sh  # noqa: F401


def test_create_list_info_delete(lab):
    lab.cloison("network", "create", "red", "--subnet", "10.88.1.0/24")
    lab.cloison("network", "create", "blue", "--isolated")
    nets = {n["name"]: n for n in lab.cloison_json("network", "list", "--format", "json")}
    assert set(nets) == {"default", "red", "blue"}
    assert nets["default"]["subnet"] == "10.87.0.0/24" and nets["default"]["mode"] == "nat"
    assert nets["red"]["gateway"] == "10.88.1.1"
    assert nets["blue"]["mode"] == "isolated"
    table = lab.cloison("network", "list").stdout
    assert table.splitlines()[0].split()[:3] == ["NAME", "SUBNET", "GATEWAY"]
    info = lab.cloison_json("network", "info", "red")
    assert info["attachments"] == [] and info["bridge"] in lab.links()
    addrs = lab.ns(lab.host, "ip", "-4", "-o", "addr", "show", "dev", info["bridge"]).stdout
    assert "10.88.1.1/24" in addrs
    assert lab.table("red") in lab.nft_tables()
    assert len(lab.our_dnsmasqs()) == 3
    lab.cloison("network", "delete", "red")
    assert info["bridge"] not in lab.links()
    assert lab.table("red") not in lab.nft_tables()
    assert len(lab.our_dnsmasqs()) == 2
    r = lab.cloison("network", "info", "red", check=False)
    assert r.returncode != 0 and r.stderr.strip() == "cloison: network `red` does not exist"


def test_container_to_container_same_network(lab):
    lab.cloison("network", "create", "app", "--subnet", "10.88.2.0/24")
    c1 = lab.container("web", "app")
    c2 = lab.container("cli", "app")
    assert c1.address == "10.88.2.2" and c2.address == "10.88.2.3"
    assert c1.attachment["gateway"] == "10.88.2.1"
    # inside: the address, lo up, the default route
    out = c1.run("ip", "-4", "-o", "addr").stdout
    assert "10.88.2.2/24" in out and "127.0.0.1/8" in out
    assert "default via 10.88.2.1" in c1.run("ip", "route").stdout
    c1.httpd(80)
    assert c2.wget("http://10.88.2.2/") == "hello from web\n"
    # TCP both ways with nc
    # The listener's stdin stays open until the exchange is over: at EOF on
    # stdin busybox nc half-closes the connection, and a client that sees
    # that FIN before it has sent would exit without sending.
    p = c2.spawn(BUSYBOX, "nc", "-l", "-p", "7000", stdin=subprocess.PIPE)
    lab.wait_port(c2, 7000)
    c1.run("sh", "-c", "echo ping-over-nc | %s nc -w 2 10.88.2.3 7000" % BUSYBOX)
    out, err = p.communicate(timeout=10)
    assert out == "ping-over-nc\n", (p.returncode, err)
    # frames bridged from instance to instance (which br_netfilter shows to
    # the IP forward hook) leave the network's forward chain at its first
    # rule, matched by interface index
    br = lab.cloison_json("network", "info", "app")["bridge"]
    chain = lab.ns(lab.host, "nft", "list", "chain", "ip", lab.table("app").split()[-1],
                   "forward").stdout
    rules = [line.strip() for line in chain.splitlines() if "if" in line]
    assert rules[0] == 'iif "%s" oif "%s" accept' % (br, br), chain
    assert not any("iifname \"%s\"" % br in r or "oifname \"%s\"" % br in r for r in rules)
    # instances have DNS names from the network's dnsmasq
    assert "10.88.2.2" in c2.resolve("web", "10.88.2.1")
    # the host-side info
    info = lab.cloison_json("network", "instance", "web")
    assert info["interfaces"][0]["address"] == "10.88.2.2"


def test_addresses_are_unique_and_freed(lab):
    lab.cloison("network", "create", "small", "--subnet", "10.88.3.0/29")  # .2-.6
    cs = [lab.container("c%d" % i, "small") for i in range(5)]
    assert [c.address for c in cs] == ["10.88.3.%d" % i for i in range(2, 7)]
    from test_net_lab import Container
    spare = Container(lab, "spare")
    lab.containers.append(spare)
    r = lab.cloison("network", "attach", "small", "--instance", "spare", "--pid", str(spare.pid),
                    check=False)
    assert r.returncode != 0 and "no free address" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # detach frees; the next instance takes the freed address
    lab.cloison("network", "detach", "--instance", "c1")
    again = lab.container("again", "small")
    assert again.address == "10.88.3.3"
    # an instance whose netns died gives its address back at the next command
    cs[3].kill()
    time.sleep(0.2)
    lab.cloison("network", "list")
    info = lab.cloison_json("network", "info", "small")
    assert "10.88.3.5" not in [a["address"] for a in info["attachments"]]


def test_nat_to_upstream(lab):
    lab.cloison("network", "create", "natnet", "--subnet", "10.88.4.0/24", "--nat")
    c = lab.container("n1", "natnet")
    lab.echo_peer(lab.upstream, 9000)
    r = c.run(BUSYBOX, "nc", "-w", "3", UPSTREAM, "9000")
    # the upstream sees the host's address, not the container's
    assert r.stdout.strip() == HOST_UP
    # and the upstream cannot open connections into the network
    up = sh("ip", "netns", "exec", lab.upstream, "ip", "route", "add", "10.88.4.0/24", "via",
            HOST_UP, check=False)
    assert up.returncode == 0
    c.httpd(80)
    assert lab.wget_from(lab.upstream, "http://10.88.4.2/", timeout=2) is None


def test_port_forward_from_client(lab):
    lab.cloison("network", "create", "pf", "--subnet", "10.88.5.0/24")
    c = lab.container("www", "pf")
    c.httpd(80, body="forwarded page\n")
    lab.cloison("network", "forward", "--instance", "www", "8080:80")
    assert lab.wget_from(lab.client, "http://%s:8080/" % HOST_CLIENT) == "forwarded page\n"
    # from the host itself, to one of its own addresses (output chain)
    assert lab.wget_from(lab.host, "http://%s:8080/" % HOST_UP) == "forwarded page\n"
    info = lab.cloison_json("network", "instance", "www")
    assert info["interfaces"][0]["port_forwards"] == [{"proto": "tcp", "host_port": 8080,
                                                       "port": 80}]
    # the same host port twice: refused, one line, nothing added
    other = lab.container("other", "pf")
    # hairpin: an instance of the same network through the host's address
    assert other.wget("http://%s:8080/" % HOST_UP) == "forwarded page\n"
    r = lab.cloison("network", "forward", "--instance", "other", "8080:80", check=False)
    assert r.returncode != 0
    assert r.stderr.strip() == "cloison: port forward: host port 8080/tcp is already forwarded to `www`"
    lab.cloison("network", "unforward", "--instance", "www", "8080")
    assert lab.wget_from(lab.client, "http://%s:8080/" % HOST_CLIENT, timeout=2) is None
    assert other.address


def test_no_reach_across_networks(lab):
    lab.cloison("network", "create", "neta", "--subnet", "10.88.6.0/24")
    lab.cloison("network", "create", "netb", "--subnet", "10.88.7.0/24")
    a = lab.container("a1", "neta")
    a2 = lab.container("a2", "neta")
    b = lab.container("b1", "netb")
    a.httpd(80)
    b.httpd(80)
    assert a2.wget("http://%s/" % a.address) == "hello from a1\n"
    assert b.wget("http://%s/" % a.address, timeout=2) is None
    assert a.wget("http://%s/" % b.address, timeout=2) is None
    r = b.run(BUSYBOX, "ping", "-c", "1", "-W", "1", a.address, check=False)
    assert r.returncode != 0


def test_isolated_network_has_no_way_out(lab):
    lab.cloison("network", "create", "iso", "--subnet", "10.88.8.0/24", "--isolated")
    lab.cloison("network", "create", "open", "--subnet", "10.88.9.0/24")
    i = lab.container("i1", "iso")
    i2 = lab.container("i2", "iso")
    o = lab.container("o1", "open")
    lab.echo_peer(lab.upstream, 9001)
    # control: the NAT network reaches the upstream
    assert o.run(BUSYBOX, "nc", "-w", "3", UPSTREAM, "9001").stdout.strip() == HOST_UP
    r = i.run(BUSYBOX, "nc", "-w", "2", UPSTREAM, "9001", check=False)
    assert r.stdout.strip() == ""
    # nor the host's other addresses
    lab.echo_peer(lab.host, 9002)
    assert o.run(BUSYBOX, "nc", "-w", "3", HOST_UP, "9002").stdout.strip() == "10.88.9.2"
    r = i.run(BUSYBOX, "nc", "-w", "2", HOST_UP, "9002", check=False)
    assert r.stdout.strip() == ""
    # but the instances of the isolated network reach each other and its DNS
    i2.httpd(80)
    assert i.wget("http://%s/" % i2.address) == "hello from i2\n"
    assert "10.88.8.3" in i.resolve("i2", "10.88.8.1")
    # no port forwards into an isolated network
    r = lab.cloison("network", "forward", "--instance", "i2", "8081:80", check=False)
    assert r.returncode != 0 and "isolated" in r.stderr


BAD = [
    (["network", "create", "x", "--subnet", "10.88.1.0/33"], "--subnet: prefix length must be 8-30"),
    (["network", "create", "x", "--subnet", "10.88.1/24"], "--subnet: `10.88.1` is not an IPv4 address"),
    (["network", "create", "x", "--subnet", "banana"], "--subnet: expected an IPv4 CIDR"),
    (["network", "create", "x", "--subnet", "10.88.1.5/24"], "has host bits set"),
    (["network", "create", "x", "--vlan", "0"], "--vlan: VLAN id must be 1-4094, got `0`"),
    (["network", "create", "x", "--vlan", "4095"], "--vlan: VLAN id must be 1-4094, got `4095`"),
    (["network", "create", "x", "--vlan", "ten"], "--vlan: VLAN id must be 1-4094"),
    (["network", "create", "x", "--nat", "--isolated"], "exclude each other"),
    (["network", "create", "bad/name"], "invalid network name `bad/name`"),
    (["network", "create", "wider", "--subnet", "10.0.0.0/8"], "overlaps network `taken`"),
    (["network", "create", "inner", "--subnet", "10.99.7.0/24"], "overlaps network `taken`"),
    (["network", "create", "taken", "--subnet", "10.98.0.0/24"], "network `taken` already exists"),
    # the host's own link to the upstream namespace holds 198.51.100.1/24
    (["network", "create", "x", "--subnet", "198.51.100.0/24"], "overlaps an address of link `nu"),
    (["network", "info", "nosuch"], "network `nosuch` does not exist"),
    (["network", "delete", "nosuch"], "network `nosuch` does not exist"),
    (["network", "attach", "nosuch", "--instance", "z", "--pid", str(os.getpid())], "network `nosuch` does not exist"),
    (["network", "attach", "--instance", "bad/x", "--pid", str(os.getpid())], "invalid instance name `bad/x`"),
    (["network", "attach-vm", "taken", "--instance", "v", "--ifname", "averyveryverylongname"],
     "longer than 15 characters"),
    (["network", "attach", "taken", "--instance", "z", "--pid", "999999999"], "open `/proc/999999999/ns/net`"),
    (["network", "forward", "--instance", "ghost", "80:80"], "instance `ghost` has no network"),
    (["network", "forward", "--instance", "ghost", "80"], "expected HOSTPORT:PORT"),
    (["network", "forward", "--instance", "ghost", "70000:80"], "host port must be 1-65535"),
    (["network", "forward", "--instance", "ghost", "80:80/sctp"], "protocol must be tcp or udp"),
]


def test_bad_input_one_line_and_nothing_left(lab):
    lab.cloison("network", "create", "taken", "--subnet", "10.99.0.0/16")
    lab.cloison("network", "list")  # makes `default`
    links, tables = lab.links(), lab.nft_tables()
    dnsmasqs = sorted(lab.our_dnsmasqs())
    for args, msg in BAD:
        r = lab.cloison(*args, check=False)
        assert r.returncode != 0, args
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cloison: ") and msg in lines[0], \
            (args, r.stderr)
    assert lab.links() == links
    assert lab.nft_tables() == tables
    assert sorted(lab.our_dnsmasqs()) == dnsmasqs
    nets = [n["name"] for n in lab.cloison_json("network", "list", "--format", "json")]
    assert sorted(nets) == ["default", "taken"]


def test_delete_refused_while_in_use(lab):
    lab.cloison("network", "create", "busy", "--subnet", "10.88.10.0/24")
    lab.container("u1", "busy")
    r = lab.cloison("network", "delete", "busy", check=False)
    assert r.returncode != 0 and r.stderr.strip() == "cloison: network `busy` is in use by u1"
    lab.cloison("network", "detach", "--instance", "u1")
    lab.cloison("network", "delete", "busy")


def test_vlan(lab):
    from test_net_lab import vlan_filtering_supported
    before = lab.links()
    if not vlan_filtering_supported(lab):
        # The kernel lacks bridge VLAN filtering: a one-line error, nothing made.
        r = lab.cloison("network", "create", "v10", "--vlan", "10", "--subnet", "10.88.11.0/24",
                        check=False)
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
        assert "Operation not supported" in r.stderr
        assert lab.links() == before
        assert lab.table("v10") not in lab.nft_tables()
        pytest.skip("this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING); "
                    "checked the clean failure only")
    lab.cloison("network", "create", "v10", "--vlan", "10", "--subnet", "10.88.11.0/24")
    lab.cloison("network", "create", "v20", "--vlan", "20", "--subnet", "10.88.12.0/24")
    a = lab.container("va", "v10")
    a2 = lab.container("va2", "v10")
    b = lab.container("vb", "v20")
    a.httpd(80)
    assert a2.wget("http://%s/" % a.address) == "hello from va\n"
    # a port on VLAN 20 given an address of VLAN 10's subnet still cannot
    # reach it: the frames never cross VLANs on the shared bridge
    b.run("ip", "addr", "add", "10.88.11.99/24", "dev", "eth0")
    assert b.wget("http://%s/" % a.address, timeout=2) is None
    vl = lab.ns(lab.host, "bridge", "vlan", "show").stdout
    assert a.attachment["host_ifname"] in vl


def test_cleanup_leaves_nothing(lab):
    base_links, base_tables = lab.links(), lab.nft_tables()
    lab.cloison("network", "create", "tmp1", "--subnet", "10.88.13.0/24")
    lab.cloison("network", "create", "tmp2", "--subnet", "10.88.14.0/24", "--isolated")
    c = lab.container("t1", "tmp1")
    lab.cloison("network", "forward", "--instance", "t1", "9090:80")
    lab.cloison("network", "attach-vm", "tmp2", "--instance", "vm1")
    lab.cloison("network", "detach", "--instance", "t1")
    lab.cloison("network", "detach", "--instance", "vm1")
    assert "9090" not in lab.ns(lab.host, "nft", "list", "table", "ip",
                                "cloison-%s-tmp1" % lab.tag()).stdout
    for n in ("tmp1", "tmp2", "default"):
        lab.cloison("network", "delete", n, check=n != "default")
    assert lab.links() == base_links
    assert [t for t in lab.nft_tables() if "cloison" in t] == []
    assert lab.nft_tables() == base_tables
    assert lab.our_dnsmasqs() == []
    assert not os.listdir(os.path.join(lab.root, "net"))
    # the container kept only lo
    assert c.run("ip", "-o", "link").stdout.count("\n") == 1


def test_crash_recovery(lab):
    lab.cloison("network", "create", "crash", "--subnet", "10.88.15.0/24")
    info = lab.cloison_json("network", "info", "crash")
    tag = info["bridge"].split("-")[1]
    # a link of ours that no row knows (a crash between link and row)
    lab.ns(lab.host, "ip", "link", "add", "clv-%s-999" % tag, "type", "bridge")
    # a dnsmasq that died
    for pid in lab.our_dnsmasqs():
        os.kill(pid, 9)
    time.sleep(0.2)
    # a network row a crash left half made, with its bridge and table
    db = sqlite3.connect(os.path.join(lab.root, "cloison.db"))
    db.execute("INSERT INTO networks (name, subnet, prefix, mode, vlan, l3, state)"
               " VALUES ('half', %d, 24, 'nat', 0, 'clb-%s-77', 'creating')"
               % ((10 << 24) | (88 << 16) | (16 << 8), tag))
    db.commit()
    db.close()
    lab.ns(lab.host, "ip", "link", "add", "clb-%s-77" % tag, "type", "bridge")
    lab.ns(lab.host, "nft", "add", "table", "ip", "cloison-%s-half" % tag)
    # tables this root made for networks the database forgot (tagged, and
    # untagged from before tables carried the tag), and someone else's (no
    # owner chain of ours, or another root's tag): only ours go
    for t in ("cloison-%s-ghost" % tag, "cloison-ghost"):
        lab.ns(lab.host, "nft", "add", "table", "ip", t)
        lab.ns(lab.host, "nft", "add", "chain", "ip", t, "owner_" + tag)
    lab.ns(lab.host, "nft", "add", "table", "ip", "cloison-foreign")
    other = "cloison-%s-x" % ("0000" if tag != "0000" else "1111")
    lab.ns(lab.host, "nft", "add", "table", "ip", other)
    lab.cloison("network", "list")
    tables = lab.nft_tables()
    assert lab.table("ghost") not in tables and "table ip cloison-ghost" not in tables
    assert "table ip cloison-foreign" in tables and "table ip " + other in tables
    lab.ns(lab.host, "nft", "delete", "table", "ip", "cloison-foreign")
    lab.ns(lab.host, "nft", "delete", "table", "ip", other)
    links = lab.links()
    assert "clv-%s-999" % tag not in links and "clb-%s-77" % tag not in links
    assert lab.table("half") not in lab.nft_tables()
    names = [n["name"] for n in lab.cloison_json("network", "list", "--format", "json")]
    assert "half" not in names
    assert len(lab.our_dnsmasqs()) == 2  # crash (restarted) and default
    # the restarted dnsmasq serves names
    c = lab.container("after", "crash")
    assert "10.88.15.2" in c.resolve("after", "10.88.15.1")


def test_container_on_two_networks(lab):
    lab.cloison("network", "create", "front", "--subnet", "10.88.17.0/24")
    lab.cloison("network", "create", "back", "--subnet", "10.88.18.0/24")
    c = lab.container("two", "front")
    second = lab.cloison_json("network", "attach", "back", "--instance", "two", "--pid", str(c.pid))
    assert c.attachment["ifname"] == "eth0" and second["ifname"] == "eth1"
    out = c.run("ip", "-4", "-o", "addr").stdout
    assert "eth0" in out and "10.88.17.2/24" in out and "eth1" in out and "10.88.18.2/24" in out
    # the default route stays on the first network
    assert "default via 10.88.17.1 dev eth0" in c.run("ip", "route").stdout
    r = lab.cloison("network", "attach", "back", "--instance", "two", "--pid", str(c.pid),
                    check=False)
    assert r.returncode != 0
    assert r.stderr.strip() == "cloison: instance `two` is already attached to network `back`"
    info = lab.cloison_json("network", "instance", "two")
    assert [i["network"] for i in info["interfaces"]] == ["front", "back"]
    lab.cloison("network", "detach", "--instance", "two")
    assert lab.cloison_json("network", "instance", "two")["interfaces"] == []


def test_mtu(lab):
    lab.cloison("network", "create", "jumbo", "--subnet", "10.88.19.0/24", "--mtu", "9000")
    c = lab.container("j1", "jumbo")
    info = lab.cloison_json("network", "info", "jumbo")
    assert info["mtu"] == 9000
    for link in (info["bridge"], c.attachment["host_ifname"]):
        assert "mtu 9000" in lab.ns(lab.host, "ip", "link", "show", link).stdout
    assert "mtu 9000" in c.run("ip", "link", "show", "eth0").stdout
    vm = lab.cloison_json("network", "attach-vm", "jumbo", "--instance", "jvm")
    assert "mtu 9000" in lab.ns(lab.host, "ip", "link", "show", vm["host_ifname"]).stdout
    for bad in ("100", "70000", "big"):
        r = lab.cloison("network", "create", "x", "--mtu", bad, check=False)
        assert r.returncode != 0 and r.stderr.startswith("cloison: --mtu: ")


def test_parallel_attaches_get_distinct_addresses(lab):
    import subprocess
    from test_net_lab import Container
    from conftest import binary
    lab.cloison("network", "create", "par", "--subnet", "10.88.22.0/24")
    cs = []
    for i in range(8):
        c = Container(lab, "p%d" % i)
        lab.containers.append(c)
        cs.append(c)
    procs = [subprocess.Popen(["ip", "netns", "exec", lab.host, binary("cloison"), "--root",
                               lab.root, "network", "attach", "par", "--instance", c.name,
                               "--pid", str(c.pid)], stdout=subprocess.PIPE, text=True)
             for c in cs]
    addrs = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        addrs.append(json.loads(out)["address"])
    assert sorted(addrs) == sorted("10.88.22.%d" % i for i in range(2, 10))


def test_udp_port_forward(lab):
    lab.cloison("network", "create", "udp", "--subnet", "10.88.23.0/24")
    c = lab.container("dns", "udp")
    lab.cloison("network", "forward", "--instance", "dns", "5353:53/udp")
    # busybox nc has no UDP: Python on both ends
    p = c.spawn(sys.executable, "-c",
                "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                "s.bind(('0.0.0.0', 53)); print('ready', flush=True); "
                "d, a = s.recvfrom(100); print(d.decode(), a[0], flush=True)")
    assert p.stdout.readline().strip() == "ready"
    lab.ns(lab.client, sys.executable, "-c",
           "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
           ".sendto(b'udp-through', ('%s', 5353))" % HOST_CLIENT)
    out = p.communicate(timeout=10)[0]
    assert out.split() == ["udp-through", CLIENT]
    info = lab.cloison_json("network", "instance", "dns")
    assert info["interfaces"][0]["port_forwards"] == [{"proto": "udp", "host_port": 5353, "port": 53}]


def test_failed_attach_leaves_nothing(lab):
    lab.cloison("network", "create", "n1", "--subnet", "10.88.24.0/24")
    lab.cloison("network", "create", "n2", "--subnet", "10.88.25.0/24")
    c = lab.container("dup", "n1")
    links = lab.links()
    # eth0 is taken inside the container: the second veth cannot be made
    r = lab.cloison("network", "attach", "n2", "--instance", "dup", "--pid", str(c.pid),
                    "--ifname", "eth0", check=False)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "attach `dup` to network `n2`" in r.stderr and "File exists" in r.stderr
    assert lab.links() == links
    assert lab.cloison_json("network", "info", "n2")["attachments"] == []
    assert [i["network"] for i in lab.cloison_json("network", "instance", "dup")["interfaces"]] == ["n1"]
    # the address it had reserved is free again
    other = lab.container("next", "n2")
    assert other.address == "10.88.25.2"
