# SPDX-License-Identifier: Apache-2.0
"""Instances on networks through the real `cloison` CLI: a network of the
test's own, two containers that reach each other, a port forward through
the network's gateway address, and nothing left after delete.  Traffic
stays between the test's own namespaces and its own bridge."""
import json
import os
import socket
import subprocess
import time

import pytest

from cloison_cli import cl  # noqa: F401 (cl: fixture)


@pytest.fixture
def network(cl):
    name = "mgrnet%d" % (os.getpid() % 100000)
    subnet = "10.213.%d.0/24" % (os.getpid() % 250 + 1)
    cl("network", "create", name, "--subnet", subnet)
    yield name, subnet
    # the instances first: a network with instances attached stays
    for inst in cl.list():
        cl("delete", "--force", inst["name"], check=False)
    cl("network", "delete", name)


def links():
    return subprocess.run(["ip", "-o", "link"], stdout=subprocess.PIPE, text=True).stdout


def recv_all(addr, port, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((addr, port), timeout=2) as s:
                return s.recv(100).decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_network_attach_port_forward_and_cleanup(cl, network):
    name, subnet = network
    port = 20000 + os.getpid() % 10000
    cl("launch", "busybox", "srv", "--network", name, "-p", "%d:8080" % port, "--",
       "sh", "-c", "while true; do echo hello | nc -l -p 8080; done")
    cl("launch", "busybox", "cli", "--network", name, "--", "sleep", "100000")
    srv = cl.info("srv")["network"][0]
    assert srv["network"] == name and srv["ifname"] == "eth0"
    assert srv["address"].startswith(subnet.rsplit(".", 2)[0])
    host_if = srv["host_ifname"]
    assert host_if in links()
    out = cl("exec", "cli", "--", "sh", "-c", "ip -4 addr show eth0; nc %s 8080" % srv["address"]
             ).stdout
    assert "inet " + subnet.rsplit(".", 1)[0] in out and out.endswith("hello\n")
    assert recv_all(srv["gateway"], port) == "hello\n"
    # a restart gets its network again
    cl("restart", "--timeout", "0", "srv")
    assert cl.info("srv")["network"][0]["address"] == srv["address"]
    cl("delete", "--force", "srv")
    assert host_if not in links()
    info = json.loads(cl("network", "show", name).stdout) if cl(
        "network", "show", name, check=False).returncode == 0 else {}
    assert "srv" not in json.dumps(info)


def test_unknown_network_leaves_nothing(cl):
    # (no default network either: --network names the only one wanted)
    p = cl("launch", "busybox", "lost", "--network", "nosuchnet", "--", "sleep", "1", check=False)
    assert p.returncode != 0 and p.stderr.count("\n") == 1 and "nosuchnet" in p.stderr
    assert cl.list() == []
    assert "lost" not in links()


@pytest.mark.skipif(not os.path.exists("/dev/kvm"), reason="no /dev/kvm on this host")
def test_vm_gets_a_tap_on_its_network(cl, network):
    from test_cli_vm import guest
    name, subnet = network
    cl("launch", "busybox", "vmnet", "--vm", "--network", name, "--kernel", guest("echo"))
    nic = cl.info("vmnet")["network"][0]
    assert nic["kind"] == "vm" and nic["address"].startswith(subnet.rsplit(".", 2)[0])
    tap = nic["host_ifname"]
    assert tap in links()
    cl("delete", "--force", "vmnet")
    assert tap not in links()
