# SPDX-License-Identifier: Apache-2.0
"""containerd drives cloison-runtime through its runc shim: a containerd
started by the test on a private socket, root and state, and
`ctr run --runc-binary <ours>`: run, exec, kill, delete."""
import os
import shutil
import signal
import subprocess
import threading
import tempfile
import time
import uuid

import pytest

from conftest import binary
from test_runtime_util import mounts_under

pytestmark = pytest.mark.skipif(shutil.which("containerd") is None or shutil.which("ctr") is None,
                                reason="containerd/ctr not installed")


class Containerd:
    def __init__(self, work, rootfs):
        self.work = work
        self.rootfs = rootfs
        self.ns = "cloison-rt-" + uuid.uuid4().hex[:8]
        self.sock = os.path.join(work, "containerd.sock")
        conf = os.path.join(work, "config.toml")
        with open(conf, "w") as f:
            f.write("""version = 2
root = "{w}/root"
state = "{w}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{w}/containerd.sock"
[ttrpc]
  address = "{w}/containerd-ttrpc.sock"
""".format(w=work))
        self.log = open(os.path.join(work, "containerd.log"), "w")
        self.proc = subprocess.Popen(["containerd", "--config", conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        end = time.time() + 20
        while time.time() < end:
            if os.path.exists(self.sock) and self.ctr("version", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("containerd did not start")

    def ctr(self, *args, check=True, timeout=60):
        with tempfile.TemporaryFile("w+") as out:
            p = subprocess.run(["ctr", "--address", self.sock, "-n", self.ns] + list(args),
                               stdout=out, stderr=subprocess.STDOUT, text=True, timeout=timeout)
            out.seek(0)
            p.stdout = out.read()
        if check and p.returncode != 0:
            raise AssertionError("ctr %s: exit %d: %s" % (" ".join(args), p.returncode, p.stdout))
        return p

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def ctd(busybox_rootfs):
    work = tempfile.mkdtemp(prefix="cloison-rt-ctd-")
    c = Containerd(work, busybox_rootfs)
    try:
        yield c
    finally:
        for cid in c.ctr("container", "ls", "-q", check=False).stdout.split():
            c.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
            c.ctr("task", "delete", "-f", cid, check=False)
            c.ctr("container", "delete", cid, check=False)
        c.stop()
        for line in mounts_under(work):
            subprocess.run(["umount", "-l", line.split()[4]], check=False)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(os.path.join("/run/containerd/runc", c.ns), ignore_errors=True)


def run_args(ctd):
    return ["--runc-binary", binary("cloison-runtime"), "--rootfs", ctd.rootfs]


def test_ctr_run_rm(ctd):
    p = ctd.ctr("run", "--rm", *run_args(ctd), "ctd-run", "sh", "-c", "echo hello from $$")
    assert p.stdout.strip() == "hello from 1"


def test_ctr_detach_exec_kill_delete(ctd):
    cid = "ctd-life"
    try:
        ctd.ctr("run", "-d", *run_args(ctd), cid, "sleep", "100")
        # Our runtime's state, not runc's, backs the task.
        assert "pidStart" in open("/run/containerd/runc/%s/%s/state.json" % (ctd.ns, cid)).read()
        assert "RUNNING" in ctd.ctr("task", "ls").stdout
        p = ctd.ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo exec-ok; exit 3", check=False)
        assert "exec-ok" in p.stdout and p.returncode == 3
        assert len(ctd.ctr("task", "ps", cid).stdout.strip().splitlines()) >= 2
        ctd.ctr("task", "pause", cid)
        assert "PAUSED" in ctd.ctr("task", "ls").stdout
        ctd.ctr("task", "resume", cid)
        assert "RUNNING" in ctd.ctr("task", "ls").stdout
        ctd.ctr("task", "kill", "-s", "SIGKILL", cid)
        end = time.time() + 10
        while "STOPPED" not in ctd.ctr("task", "ls").stdout and time.time() < end:
            time.sleep(0.05)
        assert "STOPPED" in ctd.ctr("task", "ls").stdout
        ctd.ctr("task", "delete", cid)
        ctd.ctr("container", "delete", cid)
        assert not os.path.exists("/run/containerd/runc/%s/%s" % (ctd.ns, cid))
    finally:
        ctd.ctr("task", "delete", "-f", cid, check=False)
        ctd.ctr("container", "delete", cid, check=False)


def test_ctr_run_tty(ctd):
    cmd = "ctr --address %s -n %s run --rm -t --runc-binary %s --rootfs %s ctd-tty sh -c 'tty; echo tty-ok'" % (
        ctd.sock, ctd.ns, binary("cloison-runtime"), ctd.rootfs)
    # script's stdin stays open while the container runs: at EOF on it,
    # script sends EOF into the terminal, ctr closes the task's stdin, and
    # under load the console could be torn down before the output drained.
    p = subprocess.Popen(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killer = threading.Timer(60, p.kill)
    killer.start()
    try:
        out = p.stdout.read()
        p.stdin.close()
        rc = p.wait()
    finally:
        killer.cancel()
    assert rc == 0 and "/dev/pts/0" in out and "tty-ok" in out, out
