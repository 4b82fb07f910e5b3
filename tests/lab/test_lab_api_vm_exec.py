# SPDX-License-Identifier: Apache-2.0
"""exec and console of a VM through cloisond's API (issue 10) in the VM
lab, where nested KVM and /dev/vhost-vsock exist: cloisond serves a state
root in the lab with two busybox VMs, and tests/lab/wsexec.c (a websocket
client in C: busybox has none) runs commands through POST
/1.0/instances/NAME/exec and its websockets, and types into GET
/1.0/instances/NAME/console.  (The VMs are launched by the CLI: see
PAYLOAD.)  One lab boot; each test asserts on one check of it."""
import os

import pytest

from lab_cli import BUILD, PROLOGUE, cli_files

CLOISOND = os.path.join(BUILD, "src", "cli", "cloisond")

PAYLOAD = PROLOGUE + r"""U=/lab/uhttp; W=/lab/wsexec; S=/tmp/api.sock
/lab/cloisond --root /tmp/cl --socket $S > /tmp/cloisond.log 2>&1 &
# ready once its link to the socket is made too (after the socket)
i=0; while { [ ! -S $S ] || [ ! -e /tmp/cl/cloisond.sock ]; } && [ $i -lt 300 ]; do
    usleep 100000; i=$((i+1)); done
launch_both() {
    [ -e /tmp/cl/cloisond.sock ] || { echo no daemon link; return 1; }
    $C launch busybox vm --vm --no-network --memory 256M -- /bin/sleep 100000 &&
    $C launch busybox con --vm --no-network --memory 256M -- /bin/sh && $C list &&
    echo "vmmon=$(monitors | grep -c '^cloison-vmmon$')"
}
# The monitors (comm cloison-vmmon; their VMM children are cloison-vmm)
# by their argv[0]: an exec'd program's own, not the daemon's.
monitors() {
    for p in /proc/[0-9]*; do
        [ "$(cat $p/comm 2>/dev/null)" = cloison-vmmon ] && tr '\0' '\n' < $p/cmdline | head -1
    done
}
check launch launch_both
streams() { echo hello-stdin | $W $S vm -- sh -c 'read x; echo got=$x; echo to-err >&2; exit 3'; }
pty() { $W $S vm -i -s 81x23 -r 99x33 -d 8 -- sh -c 'tty; stty size; sleep 20; stty size; exit 5'; }
typed() {
    i=0
    while [ $i -lt 30 ]; do
        printf 'echo marker-$((6*7))\n' | $W $S con -c -d 4 > /tmp/out 2>&1
        grep -q "marker-42" /tmp/out && break
        i=$((i+1))
    done
    tr -d '\033' < /tmp/out; echo
}
check streams streams
check pty pty
check signal $W $S vm -k 15 -d 5 -- sleep 100
check plain $W $S vm -- true
# the CLI's own exec: through the daemon serving /tmp/cl (its websockets)
cli_exec() {
    echo via-cli | $C exec vm -- sh -c 'cat; echo cli-err >&2; exit 6' 2>/tmp/err
    echo "rc=$? err=$(cat /tmp/err)"
    $U $S GET '/1.0/operations?recursion=1' | grep -o '"return":6' | head -1
}
check cli_exec cli_exec
check console typed
delete_both() {
    for n in vm con; do
        op=$($U $S DELETE "/1.0/instances/$n?force=1" | sed -n 's/.*"operation":"\([^"]*\)".*/\1/p')
        $U $S GET "$op/wait?timeout=300" | grep -o '"status":"[a-z]*"' | head -1
    done
    $C list
}
check delete delete_both
tail -20 /tmp/cloisond.log
"""


@pytest.fixture(scope="module")
def run(lab):
    if not os.path.exists(CLOISOND):
        pytest.fail("%s is not built" % CLOISOND)
    files = cli_files() + [(CLOISOND, "/lab/cloisond"), (lab.tool("uhttp"), "/lab/uhttp"),
                           (lab.tool("wsexec"), "/lab/wsexec")]
    return lab.run(PAYLOAD, files=files, timeout=900, stream=print)


def test_vms_created(run):
    out = run.assert_check("launch").output
    rows = [l.split()[:3] for l in out.splitlines()[1:] if not l.startswith("vmmon=")]
    assert "vmmon=2" in out, out  # both monitors are exec'd programs
    assert sorted(rows) == [["con", "vm", "running"], ["vm", "vm", "running"]], out


def test_exec_stdin_stdout_stderr_and_exit_code(run):
    c = run.check("streams")
    assert c.rc == 3, c.output
    assert "got=hello-stdin" in c.output and "to-err" in c.output and "return=3" in c.output, c


def test_exec_interactive_pty_size_and_resize(run):
    c = run.check("pty")
    assert c.rc == 5, c.output
    assert "/dev/pts/" in c.output and "23 81" in c.output and "33 99" in c.output, c


def test_exec_signal_ends_the_session(run):
    c = run.check("signal")
    assert c.rc == 143 and "return=143" in c.output, c.output


def test_exec_plain(run):
    assert run.check("plain").rc == 0, run.check("plain").output


def test_cli_exec_goes_through_the_daemon(run):
    out = run.assert_check("cli_exec").output
    assert "via-cli" in out and "rc=6 err=cli-err" in out and '"return":6' in out, out


def test_console_websocket_reaches_the_serial_shell(run):
    out = run.assert_check("console").output
    assert "marker-42" in out, out


def test_deleted(run):
    out = run.assert_check("delete").output
    assert out.count('"status":"success"') == 2, out
    assert out.splitlines()[-1].startswith("NAME"), out  # no instance left
