# SPDX-License-Identifier: Apache-2.0
"""`cloison console` on a VM instance (issue 4) in the VM lab: the busybox
image booted as a VM (Debian kernel, our initramfs) with `/bin/sh` as its
init on ttyS0, driven through `cloison console` with stdin from a pipe.
One lab boot; each test asserts on one check of it."""
import pytest

from lab_cli import PROLOGUE, assert_no_instance, assert_not_running_one_line, cli_files

# The shell reads the serial console only once it runs: until then the
# guest kernel drops what arrives on a ttyS0 nobody opened, so the command
# is typed again until its output shows up.  busybox sh's line editing
# asks the terminal for the cursor position (ESC [6n): the escape is
# stripped, and a newline added, so that the check's end marker stays a
# line of its own.
PAYLOAD = PROLOGUE + r"""check launch sh -c "$C launch busybox vm --vm --no-network --memory 256M -- /bin/sh && $C list"
check typed sh -c 'i=0; while [ $i -lt 60 ]; do
    printf "echo marker-\$((6*7)) \$(cat /etc/hostname)\n" | /lab/cloison console vm > /tmp/out 2>&1
    grep -q "marker-42 cloison" /tmp/out && break; sleep 2; i=$((i+1)); done
    tr -d "\\033" < /tmp/out; echo'
check state sh -c "printf 'echo 1 > /root/typed; sync\n' | $C console vm >/dev/null && $C list"
check poweroff sh -c "printf 'reboot -f\n' | $C console vm; echo rc=\$?; $C list"
check stopped sh -c "$C console vm < /dev/null; echo rc=\$?"
check delete sh -c "$C delete --force vm; $C list"
tail -20 /tmp/cl/instances/vm/console.log 2>/dev/null
"""


@pytest.fixture(scope="module")
def run(lab):
    files = cli_files()
    return lab.run(PAYLOAD, files=files, timeout=400, stream=print)


def test_launch(run):
    assert "vm" in run.assert_check("launch").output


def test_typed_command_runs_in_the_guest_shell(run):
    """A line piped into `console` reaches sh on ttyS0; its output (the
    expansion, and the image's /etc/hostname) comes back."""
    out = run.assert_check("typed").output
    assert "marker-42 cloison" in out, out


def test_console_detaches_at_eof_vm_keeps_running(run):
    out = run.assert_check("state").output
    assert "running" in out, out


def test_console_ends_when_the_vm_stops(run):
    out = run.assert_check("poweroff").output
    assert "rc=0" in out and "stopped" in out, out


def test_console_on_stopped_vm_is_one_line(run):
    assert_not_running_one_line(run.assert_check("stopped").output)


def test_delete(run):
    assert_no_instance(run.assert_check("delete").output)
