# SPDX-License-Identifier: Apache-2.0
"""Freeze and unfreeze of a container through cloisond (docs/freeze.md):
the status reads frozen and the workload's counter stands still, then
moves again once unfrozen; the CLI's freeze/unfreeze in-process; the
conflicts (not running, not frozen) and an unknown instance; stop and
delete --force of a frozen instance.  VMs: the lab (no /dev/kvm here)."""
import subprocess
import time

from cloison_cli import binary
from test_api import Events, api, container_body  # noqa: F401 (fixture)

COUNTER = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done"]


def ticks(api, url):
    return api.request("GET", url + "/logs")[1].decode().count("tick ")


def wait_ticks(api, url, more_than, timeout=10):
    deadline = time.monotonic() + timeout
    while ticks(api, url) <= more_than:
        assert time.monotonic() < deadline, (more_than, ticks(api, url))
        time.sleep(0.1)


def status(api, url):
    return api.ok("GET", url + "/state")["status"]


def test_freeze_and_unfreeze_a_container(api):
    ev = Events(api, "?type=lifecycle")
    url = "/1.0/instances/ctr"
    api.run_op("POST", "/1.0/instances", container_body("ctr", COUNTER))
    wait_ticks(api, url, 2)
    pid = api.ok("GET", url + "/state")["pid"]

    api.run_op("PUT", url + "/state", {"action": "freeze"})
    ev.wait_for("instance-paused", url)
    assert status(api, url) == "frozen"
    [inst] = api.ok("GET", "/1.0/instances?recursion=1")
    assert inst["status"] == "frozen" and api.ok("GET", url)["status"] == "frozen"
    n = ticks(api, url)
    time.sleep(1)
    assert ticks(api, url) == n, "the counter went on while frozen"

    # frozen: a second freeze, a start and an exec are conflicts
    for body in ({"action": "freeze"}, {"action": "start"}):
        st, j, _ = api.request("PUT", url + "/state", body)
        assert st == 409 and "`ctr`" in j["error"], (body, st, j)
    st, j, _ = api.request("POST", url + "/exec", {"command": ["true"]})
    assert st == 409, (st, j)

    api.run_op("PUT", url + "/state", {"action": "unfreeze"})
    ev.wait_for("instance-resumed", url)
    assert status(api, url) == "running"
    assert api.ok("GET", url + "/state")["pid"] == pid
    wait_ticks(api, url, n)
    st, j, _ = api.request("PUT", url + "/state", {"action": "unfreeze"})
    assert st == 409 and "`ctr` is running, not frozen" in j["error"], (st, j)

    # the CLI, in-process (--local)
    cli = [binary("cloison"), "--root", api.root, "--local"]
    subprocess.run(cli + ["freeze", "ctr"], check=True, capture_output=True)
    assert status(api, url) == "frozen"
    p = subprocess.run(cli + ["list"], check=True, capture_output=True, text=True)
    assert "frozen" in p.stdout
    p = subprocess.run(cli + ["freeze", "ctr"], capture_output=True, text=True)
    assert p.returncode != 0 and "`ctr`" in p.stderr, p.stderr
    subprocess.run(cli + ["unfreeze", "ctr"], check=True, capture_output=True)
    assert status(api, url) == "running"
    n = ticks(api, url)
    wait_ticks(api, url, n)

    # stop of a frozen instance: thawed, then stopped
    api.run_op("PUT", url + "/state", {"action": "freeze"})
    t = time.monotonic()
    api.run_op("PUT", url + "/state", {"action": "stop", "timeout": 5})
    assert status(api, url) == "stopped"
    assert time.monotonic() - t < 30

    # stopped: freeze and unfreeze are conflicts naming it
    for action in ("freeze", "unfreeze"):
        st, j, _ = api.request("PUT", url + "/state", {"action": action})
        assert st == 409 and "`ctr` is stopped" in j["error"], (action, st, j)

    # delete --force of a frozen instance
    api.run_op("PUT", url + "/state", {"action": "start"})
    api.run_op("PUT", url + "/state", {"action": "freeze"})
    st, j, _ = api.request("DELETE", url)
    assert st == 409, (st, j)
    api.run_op("DELETE", url + "?force=1")
    assert api.request("GET", url)[0] == 404
    ev.close()


def test_freeze_errors(api):
    st, j, _ = api.request("PUT", "/1.0/instances/nope/state", {"action": "freeze"})
    assert st == 404 and "nope" in j["error"], (st, j)
    st, j, _ = api.request("PUT", "/1.0/instances/nope/state", {"action": "thaw"})
    assert st == 400 and "freeze, unfreeze, checkpoint or migrate, got `thaw`" in j["error"], (st, j)
    cli = [binary("cloison"), "--root", api.root, "--local"]
    p = subprocess.run(cli + ["unfreeze", "nope"], capture_output=True, text=True)
    assert p.returncode != 0 and "nope" in p.stderr, p.stderr
    p = subprocess.run(cli + ["freeze"], capture_output=True, text=True)
    assert p.returncode != 0 and "freeze NAME" in p.stderr, p.stderr
