# SPDX-License-Identifier: Apache-2.0
"""Network namespaces for the network tests (no tests here, only the lab).

Every test gets its own namespaces with a random suffix and removes them:
  host      where `cloison network ...` runs: bridges, nft tables, dnsmasq
  upstream  the world: veth to host, 198.51.100.2 (host side .1)
  client    a port-forward user: veth to host, 203.0.113.2 (host side .1)
Stand-in containers are `unshare --net` processes started in the host
namespace and attached with the internal `cloison network attach`.
Traffic only ever goes between these namespaces.
"""
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import binary  # noqa: E402

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
HOST_UP, UPSTREAM = "198.51.100.1", "198.51.100.2"
HOST_CLIENT, CLIENT = "203.0.113.1", "203.0.113.2"

# A TCP server that answers every connection with the peer's address: how
# the upstream shows which source address it saw.
ECHO_PEER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8)
print("ready", flush=True)
while True:
    c, a = s.accept(); c.sendall((a[0] + "\n").encode()); c.close()
"""


def http_get(run, url, timeout=3):
    """GET url with busybox nc (busybox's wget crashes here); the body, or
    None when nothing answered.  run(*argv) runs in the caller's netns."""
    m = re.match(r"http://([^:/]+)(?::(\d+))?(/.*)?$", url)
    host, port, path = m.group(1), m.group(2) or "80", m.group(3) or "/"
    r = run("sh", "-c", "printf 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n' | %s nc -w %d %s %s"
            % (path, host, BUSYBOX, timeout, host, port))
    if r.returncode != 0 or "\n\n" not in r.stdout:  # text mode turned \r\n into \n
        return None
    return r.stdout.split("\n\n", 1)[1]


def sh(*args, check=True, timeout=30, **kw):
    return subprocess.run(list(args), check=check, timeout=timeout, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)



def dnsmasq_pids(marker):
    """Pids of the dnsmasqs whose command line holds `marker` (a state
    root's path, or its pid-file folder)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if "dnsmasq" in cmd and marker in cmd:
            found.append(int(pid))
    return found

class Container:
    """A process in its own network namespace, standing for a container."""

    def __init__(self, lab, name):
        self.lab, self.name = lab, name
        self.proc = subprocess.Popen(["ip", "netns", "exec", lab.host, "unshare", "--net",
                                      BUSYBOX, "sleep", "100000"])
        self.pid = self.proc.pid
        lab.procs.append(self.proc)
        # unshare has run once the process's netns differs from the host's
        host_ns = os.stat("/run/netns/" + lab.host).st_ino
        for _ in range(200):
            try:
                if os.stat("/proc/%d/ns/net" % self.pid).st_ino != host_ns and \
                        os.readlink("/proc/%d/exe" % self.pid).endswith("busybox"):
                    break
            except OSError:
                pass
            time.sleep(0.01)
        self.address = None

    def run(self, *args, check=True, timeout=30):
        return sh("nsenter", "-t", str(self.pid), "-n", *args, check=check, timeout=timeout)

    def spawn(self, *args, stdin=None):
        p = subprocess.Popen(["nsenter", "-t", str(self.pid), "-n"] + list(args), stdin=stdin,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lab.procs.append(p)
        return p

    def httpd(self, port=80, body=None):
        d = tempfile.mkdtemp(prefix="net-www-", dir=self.lab.tmp)
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write(body or "hello from %s\n" % self.name)
        p = self.spawn(BUSYBOX, "httpd", "-f", "-p", str(port), "-h", d)
        self.lab.wait_port(self, port)
        return p

    def wget(self, url, timeout=3):
        return http_get(lambda *a: self.run(*a, check=False, timeout=timeout + 10), url, timeout)

    def resolve(self, name, server):
        """busybox nslookup's output once `name` resolves (dnsmasq re-reads
        its hosts file on the SIGHUP cloison sends: asynchronously)."""
        r = None
        for _ in range(30):
            r = self.run(BUSYBOX, "nslookup", name, server, check=False)
            if r.returncode == 0 and "Name:" in r.stdout:
                break
            time.sleep(0.1)
        return r.stdout

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class NetLab:
    def __init__(self, tmp):
        sfx = secrets.token_hex(3)
        self.host, self.upstream, self.client = ("nethost" + sfx, "netup" + sfx, "netcli" + sfx)
        self.tmp = str(tmp)
        self.root = os.path.join(self.tmp, "root")
        self.procs = []
        self.containers = []
        for ns in (self.host, self.upstream, self.client):
            sh("ip", "netns", "add", ns)
            self.ns(ns, "ip", "link", "set", "lo", "up")
        self._wire(self.upstream, "nu" + sfx, HOST_UP, UPSTREAM)
        self._wire(self.client, "nc" + sfx, HOST_CLIENT, CLIENT)

    def _wire(self, other, name, host_addr, other_addr):
        sh("ip", "link", "add", name, "netns", self.host, "type", "veth",
           "peer", "name", "eth0", "netns", other)
        self.ns(self.host, "ip", "addr", "add", host_addr + "/24", "dev", name)
        self.ns(self.host, "ip", "link", "set", name, "up")
        self.ns(other, "ip", "addr", "add", other_addr + "/24", "dev", "eth0")
        self.ns(other, "ip", "link", "set", "eth0", "up")
        self.ns(other, "ip", "route", "add", "default", "via", host_addr)

    @staticmethod
    def ns(ns, *args, check=True, timeout=30):
        return sh("ip", "netns", "exec", ns, *args, check=check, timeout=timeout)

    def cloison(self, *args, check=True):
        r = self.ns(self.host, binary("cloison"), "--root", self.root, *args, check=False)
        if check and r.returncode != 0:
            raise AssertionError("cloison %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                                 r.stderr))
        return r

    def cloison_json(self, *args):
        return json.loads(self.cloison(*args).stdout)

    def container(self, name, network=None, ifname=None):
        c = Container(self, name)
        self.containers.append(c)
        args = ["network", "attach"] + ([network] if network else []) + \
            ["--instance", name, "--pid", str(c.pid)] + (["--ifname", ifname] if ifname else [])
        c.attachment = self.cloison_json(*args)
        c.address = c.attachment["address"]
        return c

    def wait_port(self, c, port):
        for _ in range(100):
            r = c.run("sh", "-c", "cat /proc/net/tcp /proc/net/tcp6", check=False)
            if re.search(r":%04X 0+:0000 0A" % port, r.stdout):
                return
            time.sleep(0.05)
        raise AssertionError("nothing listens on port %d in %s" % (port, c.name))

    def wget_from(self, ns, url, timeout=3):
        return http_get(lambda *a: self.ns(ns, *a, check=False, timeout=timeout + 10), url, timeout)

    def echo_peer(self, ns, port):
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", ECHO_PEER,
                              str(port)], stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert p.stdout.readline().strip() == "ready"
        return p

    def links(self, ns=None):
        out = self.ns(ns or self.host, "ip", "-o", "link", "show").stdout
        return sorted(re.findall(r"^\d+: ([^:@]+)", out, re.M))

    def nft_tables(self):
        return self.ns(self.host, "nft", "list", "tables").stdout.split("\n")

    def tag(self):
        """The state root's tag (links clb-TAG-N, tables cloison-TAG-NAME)."""
        db = sqlite3.connect(os.path.join(self.root, "cloison.db"))
        try:
            return db.execute("SELECT value FROM net_meta WHERE key = 'tag'").fetchone()[0]
        finally:
            db.close()

    def table(self, network):
        """`table ip cloison-TAG-NETWORK` as nft lists it."""
        return "table ip cloison-%s-%s" % (self.tag(), network)

    def our_dnsmasqs(self):
        return dnsmasq_pids(self.root + "/")

    def close(self):
        for c in self.containers:
            c.kill()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if os.path.exists(os.path.join(self.root, "cloison.db")):
            r = self.cloison("network", "list", "--format", "json", check=False)
            if r.returncode == 0:
                for n in json.loads(r.stdout):
                    info = self.cloison("network", "info", n["name"], check=False)
                    if info.returncode == 0:
                        for a in json.loads(info.stdout).get("attachments", []):
                            self.cloison("network", "detach", "--instance", a["instance"],
                                         check=False)
                    self.cloison("network", "delete", n["name"], check=False)
        for pid in self.our_dnsmasqs():  # only if cloison failed to stop its own
            os.kill(pid, signal.SIGKILL)
        for ns in (self.host, self.upstream, self.client):
            sh("ip", "netns", "del", ns, check=False)


@pytest.fixture
def lab(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("network tests need root (network namespaces)")
    lab = NetLab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


def vlan_filtering_supported(lab):
    """Bridge VLAN filtering is a kernel option (CONFIG_BRIDGE_VLAN_FILTERING)."""
    r = lab.ns(lab.host, "ip", "link", "add", "netvfprobe", "type", "bridge",
               "vlan_filtering", "1", check=False)
    lab.ns(lab.host, "ip", "link", "del", "netvfprobe", check=False)
    return r.returncode == 0
