# SPDX-License-Identifier: Apache-2.0
"""podman's `container checkpoint` / `container restore` with
cloison-runtime as its OCI runtime (issue 13, docs/checkpoint.md), in the
VM lab where Debian's criu works (6.1 kernel).

podman runs a busybox container on a network namespace given by path
(`--network ns:/run/netns/...`, a veth to the lab host): it counts to its
stdout (conmon's pipe) and to /n, and serves HTTP (busybox httpd) on its
address.  `podman container checkpoint` (the runtime dumps it with the
netns external and its stdio in descriptors.json), then `podman container
restore` (conmon gives new pipes: the runtime hands them and the netns
opened from the new config's path to criu): the count goes on from where
it stopped (no reset), the log keeps every value, the server answers at the
same address.  Then the same through `--export` / `--import`.  Then a
container on a terminal (`podman run -dt`): its init's stdio is a pty
whose master conmon holds; the dump makes the slave an external tty, the
restore makes a new pty, sends its master to conmon's console socket and
gives criu the slave: it counts on, on a terminal, into podman's log.
One lab boot; each test asserts on one check."""
import os
import re

import pytest

import lab_criu
import lab_podman
import runtimes

PAYLOAD = r"""#!/bin/sh
. /lab/lib.sh
""" + lab_podman.setup("PATH=/usr/sbin:/usr/bin:/sbin:/bin") + r"""IP=/usr/sbin/ip
$IP netns add ctrnet-pm && $IP link add ctrnet-h type veth peer name eth0 netns ctrnet-pm &&
    $IP addr add 10.89.7.1/24 dev ctrnet-h && $IP link set ctrnet-h up &&
    $IP -n ctrnet-pm addr add 10.89.7.2/24 dev eth0 && $IP -n ctrnet-pm link set eth0 up &&
    $IP -n ctrnet-pm link set lo up && echo "lab: netns ok"
cat > /rootfs/counter.sh <<'EOF'
mkdir -p /www; echo hello-ctrnet > /www/index.html; httpd -p 8080 -h /www
i=0; while :; do i=$((i+1)); echo $i; echo $i > /n.t; mv /n.t /n; sleep 0.5; done
EOF
check pm_import sh -c "tar -C /rootfs -c . | $P import - localhost/bb:ck"
# the lab's busybox wget crashes here: HTTP/1.0 by hand over nc
http() {
    r=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w "$1" 10.89.7.2 8080 2>/dev/null | tail -1)
    echo "${r:-down}"
}
logseq() {  # the log's values: 1, 2, ... with no gap and no repeat
    $P logs c1 2>&1 | awk 'NR != $1 { bad = NR ": " $0; exit } END { print (bad ? "broken at " bad : "continuous " NR) }'
}
ckdir() { ls -d /tmp/pm/root/vfs-containers/*/userdata | head -1; }
pm_checkpoint() {
    $P run -d --name c1 --network ns:/run/netns/ctrnet-pm localhost/bb:ck sh /counter.sh >/dev/null
    echo lab: run $?
    sleep 4; echo lab: before $($P exec c1 cat /n)
    echo lab: http_before $(http 5)
    $P container checkpoint c1; echo lab: checkpoint $?
    echo lab: status $($P inspect -f '{{.State.Status}}' c1)
    ls $(ckdir)/checkpoint/ | tr '\n' ' '; echo
    cat $(ckdir)/checkpoint/descriptors.json; echo
    echo lab: http_down $(http 3)
    sleep 2
    $P container restore c1; echo lab: restore $?
    sleep 3; echo lab: after $($P exec c1 cat /n)
    echo lab: status $($P inspect -f '{{.State.Status}}' c1)
    echo lab: http_after $(http 5)
    echo "lab: nft: $($IP netns exec ctrnet-pm nft list tables 2>&1 | tr '\n' ' ')"
    echo lab: log $(logseq)
}
dumplogs() {
    for f in $(ckdir)/dump.log $(ckdir)/restore.log; do
        [ -f "$f" ] || continue
        grep -E 'Error|Warn' "$f" | head -8 | sed "s|^|lab: $(basename $f): |"
    done
}
check pm_checkpoint pm_checkpoint
dumplogs
pm_export() {
    $P container checkpoint --export /tmp/c1.tar.gz c1; echo lab: checkpoint $?
    $P rm -f c1 >/dev/null; echo lab: rm $?
    $P container restore --import /tmp/c1.tar.gz; echo lab: restore $?
    sleep 3; echo lab: after $($P exec c1 cat /n)
    echo lab: http_after $(http 5)
    $P rm -f c1 >/dev/null; echo lab: rm $?
}
check pm_export pm_export
dumplogs
pm_tty() {  # a container on a terminal (-t): conmon holds the pty master
    $P run -dt --name c2 --network none localhost/bb:ck sh -c 'i=0; while :; do i=$((i+1)); echo t$i; echo $i > /n.t; mv /n.t /n; sleep 0.5; done' >/dev/null
    echo lab: run $?
    sleep 3; echo lab: before $($P exec c2 cat /n)
    echo lab: tty_before $($P exec c2 sh -c '[ -c /proc/1/fd/1 ] && echo tty || echo notty')
    $P container checkpoint c2; echo lab: checkpoint $?
    cat $(ckdir)/checkpoint/descriptors.json; echo
    sleep 1
    $P container restore c2; echo lab: restore $?
    sleep 3; echo lab: after $($P exec c2 cat /n)
    echo lab: status $($P inspect -f '{{.State.Status}}' c2)
    echo lab: tty_after $($P exec c2 sh -c '[ -c /proc/1/fd/1 ] && echo tty || echo notty')
    echo lab: log_tail $($P logs c2 2>&1 | tail -1 | tr -d '\r')
    # and through an export: a new container, its own console socket
    $P container checkpoint --export /tmp/c2.tar.gz c2; echo lab: tty_export $?
    $P rm -f c2 >/dev/null
    $P container restore --import /tmp/c2.tar.gz; echo lab: tty_import $?
    sleep 3; echo lab: tty_imported $($P exec c2 sh -c 'cat /n; [ -c /proc/1/fd/1 ] && echo tty')
    $P rm -f c2 >/dev/null; echo lab: rm $?
}
check pm_tty pm_tty
dumplogs
"""


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pmck") / "bundles")
    # the busybox rootfs (at /rootfs), imported as podman's image
    files = runtimes.write_bundles(d, {})[:1] + runtimes.runtime_files(["cloison"])
    files += lab_criu.criu_files()
    if os.path.exists("/usr/sbin/nft"):  # to show criu's lock is gone
        files.append(("/usr/sbin/nft", "/usr/sbin/nft"))
    if len(lab_podman.files()) < 2:
        pytest.skip("podman and conmon are not both installed on this host")
    files += lab_podman.files()
    payload = PAYLOAD.replace(". /lab/lib.sh\n", ". /lab/lib.sh\n" + lab_criu.PROLOGUE, 1)
    return lab.run(payload, files=files, timeout=1200, stream=print,
                   modules=lab_criu.MODULES)


field = lab_criu.line


def test_checkpoint_restore_keeps_counting_and_serving(run):
    assert "lab: criu check ok" in run.output, run.output
    assert "lab: netns ok" in run.output, run.output
    run.assert_check("pm_import")
    out = run.check("pm_checkpoint").output
    assert field(out, "run") == "0", out
    before = int(field(out, "before"))
    assert field(out, "http_before") == "hello-ctrnet", out
    assert field(out, "checkpoint") == "0", out
    assert "descriptors.json" in out, out
    assert field(out, "http_down") == "down", out
    assert field(out, "restore") == "0", out
    after = int(field(out, "after"))
    assert after > before, "the restored container does not count on:\n" + out
    assert re.findall(r"^lab: status (.*)$", out, re.M) == ["exited", "running"], out
    assert field(out, "http_after") == "hello-ctrnet", out
    # criu's network lock of the dump (table inet CRIU-<pid>) was removed
    assert "CRIU" not in field(out, "nft:"), out
    # stdout (conmon's new pipe) got every value: no reset, no gap
    assert field(out, "log").startswith("continuous"), out


def test_export_import_round_trip(run):
    out = run.check("pm_export").output
    assert field(out, "checkpoint") == "0", out
    assert field(out, "restore") == "0", out
    assert int(field(out, "after")) > 1, out
    assert field(out, "http_after") == "hello-ctrnet", out


def test_terminal_container_restored_on_a_new_pty(run):
    out = run.check("pm_tty").output
    assert field(out, "run") == "0", out
    before = int(field(out, "before"))
    assert field(out, "tty_before") == "tty", out
    assert field(out, "checkpoint") == "0", out
    assert field(out, "restore") == "0", out
    after = int(field(out, "after"))
    assert after > before, "the restored container does not count on:\n" + out
    assert field(out, "status") == "running", out
    assert field(out, "tty_after") == "tty", out
    # conmon reads the new pty's master: the log goes on past the dump
    tail = field(out, "log_tail")
    assert tail.startswith("t") and int(tail[1:]) > before, out
    assert field(out, "tty_export") == "0" and field(out, "tty_import") == "0", out
    n, tty = field(out, "tty_imported").split()
    assert int(n) > after and tty == "tty", out
