# SPDX-License-Identifier: Apache-2.0
"""What the `cloison` CLI tests share: the built binaries, a `Cloison`
runner bound to a state root of the test's own, and the `cl` fixture that
deletes whatever instances a test leaves behind, even when it fails."""
import glob
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")


def binary(name):
    """A built cloison binary.  (Not `from conftest import binary`: with
    tests/lab in the same pytest run, `conftest` may be the lab's.)"""
    p = os.path.join(BUILD, "src", "cli", name)
    if not os.path.exists(p):
        pytest.fail("%s is not built: run scripts/build.sh" % p)
    return p


class Cloison:
    def __init__(self, root):
        self.root = root
        self.bin = binary("cloison")

    def __call__(self, *args, check=True, timeout=60, **kw):
        args = list(args)
        # instances stay off networks unless the test asks for one: a network
        # is host-wide (bridge, nftables, dnsmasq), and most tests have no
        # use for it (the verb may follow global options: --debug, --local)
        verb = next((i for i, a in enumerate(args) if not str(a).startswith("--")), None)
        if verb is not None and args[verb] in ("launch", "run") and not any(
                str(a).startswith(("--network", "--no-network", "-p")) for a in args):
            args.insert(verb + 1, "--no-network")
        p = subprocess.run([self.bin, "--root", self.root] + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout, **kw)
        if check and p.returncode != 0:
            raise AssertionError("cloison %s: exit %d: %s" % (" ".join(map(str, args)),
                                                              p.returncode, p.stderr))
        return p

    def list(self):
        return json.loads(self("list", "--format", "json").stdout)

    def info(self, name):
        return json.loads(self("info", name).stdout)

    def tag(self):
        """The 8-hex tag global names of this root carry (FNV-1a of its path)."""
        h = 2166136261
        for b in os.path.realpath(self.root).encode():
            h = ((h ^ b) * 16777619) & 0xFFFFFFFF
        return "%08x" % h

    def cgroups_of(self, name):
        leaf = "cl-%s-%s" % (self.tag(), name)
        return (glob.glob("/sys/fs/cgroup/*/cloison/" + leaf)
                + glob.glob("/sys/fs/cgroup/cloison/" + leaf))


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if path in l]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


@pytest.fixture
def cl(tmp_path):
    c = Cloison(str(tmp_path / "root"))
    yield c
    # cleanup even when the test failed
    p = c("list", "--format", "json", check=False)
    if p.returncode == 0:
        for inst in json.loads(p.stdout):
            c("delete", "--force", inst["name"], check=False)
    drop_networks(c)


def drop_networks(c):
    """Deletes the networks of c's root (ROOT/net/NAME; `default` too, made
    on first use): their bridges, nftables tables and dnsmasq are the
    host's and would outlive the test's temporary root."""
    d = os.path.join(c.root, "net")
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if os.path.isdir(os.path.join(d, name)):
            c("network", "delete", name, check=False)
