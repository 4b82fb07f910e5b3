# SPDX-License-Identifier: Apache-2.0
"""What Debian's criu needs in the VM lab, shared by the lab tests of
checkpoint/restore (test_lab_checkpoint.py, test_lab_snapshot_stateful.py,
bench/checkpoint): its binary and the tools it runs, the kernel modules
its feature detection and dumps use, and a payload prologue line that
configures its network lock."""
import os
import re

import pytest

import lab as lab_module

# The network lock of a dump: nftables (libnftables, linked into criu)
# for criu's command line (cloison-runtime), from default.conf.  Not for
# runc: criu 3.17's RPC (`criu swrk`, runc's way) segfaults on any
# `network-lock` line of the config file runc hands it (runc.conf) -
# runc's "read unixpacket @->@: EOF"; without one, criu locks runc's
# netns with iptables-restore (xtables-nft: nft_compat, xt_mark).
PROLOGUE = r"""mkdir -p /etc/criu
echo "network-lock nftables" > /etc/criu/default.conf
criu check >/dev/null 2>&1 && echo "lab: criu check ok" || echo "lab: criu check failed: $(criu check 2>&1 | tail -1)"
"""

# criu's kernel feature detection tries an nftables concatenated set;
# its dump collects sockets through sock_diag
MODULES = lab_module.LAB_MODULES + [
    "ip_tables", "ip6_tables", "iptable_filter", "ip6table_filter", "nf_conntrack_netlink",
    "nf_tables", "unix_diag", "inet_diag", "tcp_diag", "udp_diag", "af_packet_diag", "raw_diag",
    "netlink_diag", "nft_compat", "xt_mark"]


def criu_files():
    """(host, lab) pairs: criu and what it runs; skips when criu is not
    installed on this host."""
    if not os.path.exists("/usr/sbin/criu"):
        pytest.skip("criu is not installed on this host (apt-get install criu)")
    # criu saves tmpfs mounts (the container's /dev, /dev/shm) with GNU
    # tar's options, which busybox tar lacks, and a network namespace with
    # iproute2 (`ip addr save`...) and iptables-save/-restore
    # (xtables-nft-multi answers to its name)
    xt = os.path.realpath("/usr/sbin/iptables-save")
    files = [("/usr/sbin/criu", "/usr/sbin/criu"), ("/usr/bin/tar", "/usr/bin/tar"),
             (os.path.realpath("/usr/sbin/ip"), "/usr/sbin/ip")]
    files += [(xt, "/usr/sbin/" + n) for n in ("iptables-save", "ip6tables-save",
                                               "iptables-restore", "ip6tables-restore")]
    # criu 3.17 runs the legacy ones (iptables-legacy-save -V first)
    files += [("/usr/sbin/xtables-legacy-multi", "/usr/sbin/%s%s-legacy-%s" % (v, "tables", op))
              for v in ("ip", "ip6") for op in ("save", "restore")]
    return files


def line(out, key):
    """What follows `lab: KEY` on its line of the payload's output."""
    m = re.search(r"^lab: %s ?(.*)$" % re.escape(key), out, re.M)
    assert m, "no `lab: %s` line:\n%s" % (key, out)
    return m.group(1)
