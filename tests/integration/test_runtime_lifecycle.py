"""cloison-runtime lifecycle against the real binary: run, create/start/
state/kill/delete, exec, pause/resume, ps, list, update, console socket,
preserve-fds, hooks, and what `delete` leaves (nothing)."""
import array
import json
import os
import socket
import subprocess
import shutil
import tempfile
import time

import pytest

from conftest import make_bundle
from test_runtime_util import Runtime, assert_nothing_left, unique_id


@pytest.fixture
def rt(tmp_path):
    return Runtime(tmp_path / "state")


def wait_status(rt, cid, want, timeout=5):
    end = time.time() + timeout
    while time.time() < end:
        st = rt.state(cid)
        if st["status"] == want:
            return st
        time.sleep(0.02)
    raise AssertionError("status %s, wanted %s" % (st["status"], want))


def test_version_prints_spec():
    rt = Runtime("/tmp")
    out = rt("--version").stdout
    assert "cloison-runtime version" in out and "spec: 1.2.0" in out


def test_run_prints_and_exits_with_status(rt, bundle):
    b = bundle(args=["sh", "-c", "echo hello from $(hostname); exit 3"])
    cid = unique_id()
    p = rt("run", "--bundle", b, cid, check=False)
    assert p.stdout == "hello from cloison\n"
    assert p.returncode == 3
    assert_nothing_left(rt, cid, b)


def test_isolation(rt, bundle):
    b = bundle(args=["sh", "-c", "echo $$; ls /sys/class/net; cat /proc/self/status | grep CapEff;"
                     " touch /x 2>&1 || echo ro; cat /proc/keys | wc -c"])
    cid = unique_id()
    p = rt("run", "--bundle", b, cid)
    lines = p.stdout.splitlines()
    assert lines[0] == "1"  # pid namespace
    assert lines[1] == "lo"  # network namespace
    assert lines[2].split()[1] == "0000000020000420"  # AUDIT_WRITE, KILL, NET_BIND_SERVICE
    assert "ro" in lines[-2] or "Read-only" in p.stdout
    assert lines[-1].strip() == "0"  # masked with /dev/null


def test_create_start_state_kill_delete(rt, bundle, tmp_path):
    b = bundle(args=["sleep", "30"])
    cid = unique_id()
    pidfile = tmp_path / "pid"
    try:
        rt("create", "--bundle", b, "--pid-file", pidfile, cid)
        st = rt.state(cid)
        assert st["status"] == "created"
        assert st["id"] == cid and st["bundle"] == b and st["ociVersion"]
        assert int(pidfile.read_text()) == st["pid"]
        rt("start", cid)
        wait_status(rt, cid, "running")
        assert [c["id"] for c in json.loads(rt("list", "--format", "json").stdout)] == [cid]
        assert st["pid"] in json.loads(rt("ps", "--format", "json", cid).stdout)
        p = rt("delete", cid, check=False)
        assert p.returncode != 0 and "running" in p.stderr
        rt("kill", cid, "KILL")
        wait_status(rt, cid, "stopped")
        rt("delete", cid)
        assert_nothing_left(rt, cid, b)
    finally:
        rt.cleanup(cid)


def test_exec_and_pause_resume(rt, bundle, tmp_path):
    b = bundle(args=["sleep", "30"])
    cid = unique_id()
    try:
        rt("run", "--detach", "--bundle", b, cid)
        p = rt("exec", "--env", "FOO=bar", "--cwd", "/tmp", cid, "sh", "-c", "echo $FOO $(pwd) $$")
        assert p.stdout.split()[:2] == ["bar", "/tmp"]
        assert int(p.stdout.split()[2]) > 1  # inside the pid namespace
        proc = tmp_path / "process.json"
        proc.write_text(json.dumps({"args": ["sh", "-c", "exit 7"], "cwd": "/", "env": [],
                                    "user": {"uid": 1, "gid": 1}}))
        assert rt("exec", "--process", proc, cid, check=False).returncode == 7
        pidfile = tmp_path / "exec.pid"
        rt("exec", "--detach", "--pid-file", pidfile, cid, "sleep", "5")
        assert int(pidfile.read_text()) in json.loads(rt("ps", "--format", "json", cid).stdout)
        rt("pause", cid)
        assert rt.state(cid)["status"] == "paused"
        rt("resume", cid)
        assert rt.state(cid)["status"] == "running"
        res = tmp_path / "res.json"
        res.write_text(json.dumps({"pids": {"limit": 50}}))
        rt("update", "--resources", res, cid)
        rt("delete", "--force", cid)
        assert_nothing_left(rt, cid, b)
    finally:
        rt.cleanup(cid)


def test_console_socket_receives_pty(rt, bundle, tmp_path):
    def edit(cfg):
        cfg["process"]["terminal"] = True
        cfg["process"]["consoleSize"] = {"height": 24, "width": 100}
    b = bundle(args=["sh", "-c", "tty; stty size"], config_edit=edit)
    cid = unique_id()
    sock_path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    try:
        rt("create", "--bundle", b, "--console-socket", sock_path, cid)
        conn, _ = srv.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(256, socket.CMSG_SPACE(4))
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(data[:4])
        assert len(fds) == 1
        master = fds[0]
        rt("start", cid)
        out = b""
        end = time.time() + 5
        while time.time() < end and b"100" not in out:
            try:
                chunk = os.read(master, 1024)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        assert b"/dev/pts/0" in out and b"24 100" in out
    finally:
        srv.close()
        rt.cleanup(cid)


def test_preserve_fds_and_no_leak(rt, bundle, tmp_path):
    b = bundle(args=["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '; cat <&3"])
    cid = unique_id()
    r, w = os.pipe()
    os.write(w, b"through fd 3\n")
    os.close(w)
    extra = os.open("/etc/hostname", os.O_RDONLY)  # must not leak (not preserved)
    try:
        p = subprocess.run([rt.bin, "--root", rt.root, "run", "--preserve-fds", "1", "--bundle", b, cid],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           pass_fds=(3, 4), preexec_fn=lambda: (os.dup2(r, 3), os.dup2(extra, 4)))
    finally:
        os.close(r)
        os.close(extra)
    assert p.returncode == 0, p.stderr
    fds = p.stdout.split("through")[0].split()
    assert fds == ["0", "1", "2", "3", "4"] or fds == ["0", "1", "2", "3"]  # 4: ls's own dir fd
    assert "through fd 3" in p.stdout


def test_hooks_get_state_on_stdin(rt, bundle, tmp_path):
    log = tmp_path / "hooks.log"
    script = tmp_path / "hook.sh"
    script.write_text("#!/bin/sh\nread s; echo \"$1 $s\" >> %s\n" % log)
    script.chmod(0o755)

    def edit(cfg):
        cfg["hooks"] = {k: [{"path": str(script), "args": ["hook.sh", k], "timeout": 5}]
                        for k in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}
    b = bundle(args=["true"], config_edit=edit)
    cid = unique_id()
    rt("run", "--bundle", b, cid)
    lines = log.read_text().splitlines()
    kinds = [l.split()[0] for l in lines]
    assert kinds == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    st = json.loads(lines[0].split(" ", 1)[1])
    assert st["id"] == cid and st["pid"] > 0


def test_hook_timeout_fails_create(rt, bundle, tmp_path):
    def edit(cfg):
        cfg["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]}
    b = bundle(args=["true"], config_edit=edit)
    cid = unique_id()
    p = rt("create", "--bundle", b, cid, check=False)
    assert p.returncode != 0 and "timed out" in p.stderr
    assert_nothing_left(rt, cid, b)


def test_features_and_spec(rt, tmp_path):
    f = json.loads(rt("features").stdout)
    assert f["ociVersionMax"] == "1.2.0" and "pid" in f["linux"]["namespaces"]
    rt("spec", "--bundle", tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["process"]["args"] == ["sh"]
    assert rt("spec", "--bundle", tmp_path, check=False).returncode != 0


def test_json_log_on_failure(rt, tmp_path):
    log = tmp_path / "log.json"
    p = subprocess.run([rt.bin, "--root", rt.root, "--log-format", "json", "--log", str(log),
                        "state", "nonexistent"], stderr=subprocess.PIPE, text=True)
    assert p.returncode != 0
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "does not exist" in entry["msg"] and entry["time"]


def test_user_namespace_sysctl_rlimits(rt, busybox_rootfs):
    # The container's root (host uid 100000) must reach the rootfs: the
    # bundle goes to a world-searchable directory, not the 0700 tmp_path.
    work = tempfile.mkdtemp(prefix="cloison-rt-userns-")
    os.chmod(work, 0o755)

    def edit(cfg):
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10], "umask": 63}
    b = os.path.join(work, "bundle")
    make_bundle(b, busybox_rootfs, ["sh", "-c", "id -u; id -G; cat /proc/self/uid_map;"
                                    " cat /proc/sys/net/ipv4/ip_forward; ulimit -n; ulimit -Hn; umask"],
                edit, copy_rootfs=True)
    os.chmod(b, 0o755)
    cid = unique_id()
    try:
        out = rt("run", "--bundle", b, cid).stdout.split("\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert out[0] == "1000"
    assert out[1].split() == ["1000", "10"]
    assert out[2].split() == ["0", "100000", "65536"]
    assert out[3:7] == ["1", "256", "512", "0077"]
    assert_nothing_left(rt, cid, b)


def test_join_namespace_by_path_and_no_pivot(rt, bundle):
    b1 = bundle(args=["sleep", "30"], name="first")
    c1, c2 = unique_id(), unique_id()
    try:
        rt("run", "--detach", "--bundle", b1, c1)
        pid = rt.state(c1)["pid"]

        def edit(cfg):
            cfg["linux"]["namespaces"] = [n if n["type"] not in ("network", "uts")
                                          else {"type": n["type"], "path": "/proc/%d/ns/%s" % (
                                              pid, "net" if n["type"] == "network" else "uts")}
                                          for n in cfg["linux"]["namespaces"]]
            del cfg["hostname"]
        b2 = bundle(args=["readlink", "/proc/self/ns/net"], config_edit=edit, name="second")
        out = rt("run", "--no-pivot", "--bundle", b2, c2).stdout.strip()
        assert out == os.readlink("/proc/%d/ns/net" % pid)
    finally:
        rt.cleanup(c1)
        rt.cleanup(c2)


def test_pid_namespace_joined_by_path(rt, bundle):
    b1 = bundle(args=["sleep", "30"], name="first")
    c1, c2 = unique_id(), unique_id()
    try:
        rt("run", "--detach", "--bundle", b1, c1)
        pid = rt.state(c1)["pid"]

        def edit(cfg):
            cfg["linux"]["namespaces"] = [n if n["type"] != "pid"
                                          else {"type": "pid", "path": "/proc/%d/ns/pid" % pid}
                                          for n in cfg["linux"]["namespaces"]]
        b2 = bundle(args=["sh", "-c", "echo $$; readlink /proc/self/ns/pid"], config_edit=edit, name="second")
        out = rt("run", "--bundle", b2, c2).stdout.split()
        assert int(out[0]) > 1  # the first container's init is 1
        assert out[1] == os.readlink("/proc/%d/ns/pid" % pid)
    finally:
        rt.cleanup(c1)
        rt.cleanup(c2)
