# SPDX-License-Identifier: Apache-2.0
"""`cloison run` through the API (POST /1.0/instances with "attach": true,
src/api/api_exec.c; the CLI's side src/cli/exec_client.c) when a cloisond
serves the state root: stdout and stderr apart, the exit code, stdin
piped, a pty, the daemon's request log showing the route, nothing left
behind, a client killed mid-run (its instance stopped and removed), bad
input in one line.  With --local run stays in-process
(test_cli_instances.py).  Run on a remote over TLS: test_api_remote.py
(test_run_on_a_remote)."""
import os
import signal
import subprocess
import time

import pytest

from cloison_cli import cl  # noqa: F401 (cl: fixture)
from test_cli_exec_api import log_has, read_until, serve, spawn_on_pty


@pytest.fixture
def served(cl, tmp_path):
    """cl's root served by a cloisond."""
    d = serve(cl, tmp_path)
    try:
        yield cl, d
    finally:
        for i in d.ok("GET", "/1.0/instances"):
            cl("delete", "--force", i.rsplit("/", 1)[-1], check=False)
        d.stop()


def test_run_goes_through_the_daemon(served):
    cl, d = served
    p = cl("--debug", "run", "busybox", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
           check=False)
    # the daemon's route, and the streams apart (the CLI's debug lines on stderr)
    assert (p.returncode, p.stdout) == (3, "out\n"), p.stderr
    assert "through the daemon serving" in p.stderr and log_has(d, "POST /1.0/instances: 202")
    assert "err\n" in p.stderr and "out" not in p.stderr
    assert cl.list() == []
    ops = d.ok("GET", "/1.0/operations?recursion=1")
    assert any(o["status"] == "success" and o["metadata"].get("return") == 3 for o in ops), ops


def test_run_stdin_is_piped(served):
    cl, d = served
    p = cl("run", "busybox", "--", "cat", input="hi\n")
    assert p.stdout == "hi\n"
    p = subprocess.run("echo hi | '%s' --root '%s' run --no-network busybox -- cat"
                       % (cl.bin, cl.root), shell=True, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and p.stdout == "hi\n", p.stderr
    assert cl.list() == []


def test_run_on_a_pty(served):
    cl, d = served
    pid, fd = spawn_on_pty([cl.bin, "--root", cl.root, "run", "--no-network", "busybox", "--",
                            "sh", "-c", "stty size; exit 5"])
    out = read_until(fd, b"exit-never", timeout=30)
    _, st = os.waitpid(pid, 0)
    os.close(fd)
    assert os.WEXITSTATUS(st) == 5, out
    assert b"30 100" in out, out
    assert cl.list() == []


def test_run_client_killed_leaves_nothing(served):
    cl, d = served
    proc = subprocess.Popen([cl.bin, "--root", cl.root, "run", "--no-network", "busybox", "--",
                             "sh", "-c", "echo ready; sleep 1000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    assert len(cl.list()) == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 20
    while cl.list() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cl.list() == [], open(d.log).read()[-3000:]
    assert log_has(d, "went away")


def test_run_bad_input_is_one_line(served):
    cl, d = served
    p = cl("run", "ghost-image", "--", "true", check=False)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p.stderr
    assert "ghost-image" in p.stderr and "source.image" in p.stderr, p.stderr
    assert cl.list() == []
    # the fields of an attached run only with "attach"
    st, body, _ = d.request("POST", "/1.0/instances",
                            {"name": "x", "source": {"type": "image", "image": "busybox"},
                             "interactive": True})
    assert st == 400 and body.get("path") == "interactive", body
    assert cl.list() == []


def test_run_local_stays_in_process(served):
    cl, d = served
    p = cl("--local", "--debug", "run", "busybox", "--", "sh", "-c", "exit 4", check=False)
    assert p.returncode == 4, p.stderr
    assert "through the daemon serving" not in p.stderr
    assert cl.list() == []
