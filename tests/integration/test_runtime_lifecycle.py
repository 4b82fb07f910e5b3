# SPDX-License-Identifier: Apache-2.0
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


def recv_fds(conn, size=256):
    """One message and the fds it carries (SCM_RIGHTS)."""
    msg, anc, _, _ = conn.recvmsg(size, socket.CMSG_SPACE(4 * 4))
    fds = array.array("i")
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % 4])
    return msg, list(fds)


def read_until(fd, token, timeout=5):
    out = b""
    end = time.time() + timeout
    while time.time() < end and token not in out:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


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
        # containerd's shim recognises this wording as "already finished".
        p = rt("kill", cid, "KILL", check=False)
        assert p.returncode != 0 and "container not running" in p.stderr
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
        _, fds = recv_fds(conn)
        assert len(fds) == 1
        rt("start", cid)
        out = read_until(fds[0], b"100")
        os.close(fds[0])
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


@pytest.mark.parametrize("nnp", [True, False])
def test_seccomp_errno_rule(rt, bundle, nnp):
    def edit(cfg):
        cfg["process"]["noNewPrivileges"] = nnp
        cfg["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
        }
    b = bundle(args=["sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?"], config_edit=edit)
    out = rt("run", "--bundle", b, unique_id()).stdout
    assert "Operation not permitted" in out and "rc=1" in out


def test_kill_all_and_exec_refused_when_paused(rt, bundle):
    b = bundle(args=["sh", "-c", "sleep 30 & sleep 30 & wait"])
    cid = unique_id()
    try:
        rt("run", "--detach", "--bundle", b, cid)
        end = time.time() + 5
        while len(json.loads(rt("ps", "--format", "json", cid).stdout)) < 3 and time.time() < end:
            time.sleep(0.02)
        rt("pause", cid)
        p = rt("exec", cid, "true", check=False)
        assert p.returncode != 0 and "paused" in p.stderr
        rt("resume", cid)
        rt("kill", "--all", cid, "KILL")
        wait_status(rt, cid, "stopped")
        rt("delete", cid)
        assert_nothing_left(rt, cid, b)
    finally:
        rt.cleanup(cid)


def test_exec_tty_through_console_socket(rt, bundle, tmp_path):
    b = bundle(args=["sleep", "30"])
    cid = unique_id()
    sock_path = str(tmp_path / "exec-console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    try:
        rt("run", "--detach", "--bundle", b, cid)
        rt("exec", "--tty", "--detach", "--console-socket", sock_path, cid, "sh", "-c", "tty; sleep 1")
        conn, _ = srv.accept()
        _, fds = recv_fds(conn)
        assert len(fds) == 1
        out = read_until(fds[0], b"/dev/pts/")
        os.close(fds[0])
        assert b"/dev/pts/" in out
    finally:
        srv.close()
        rt.cleanup(cid)


def test_io_priority(rt, bundle):
    def edit(cfg):
        cfg["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    b = bundle(args=["ionice"], config_edit=edit)
    assert "idle" in rt("run", "--bundle", b, unique_id()).stdout


def test_seccomp_notify_listener_gets_fd_and_state(rt, bundle, tmp_path):
    sock_path = str(tmp_path / "seccomp.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)

    def edit(cfg):
        cfg["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock_path,
            "listenerMetadata": "cloison-test",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
        }
    b = bundle(args=["sh", "-c", "mkdir /tmp/x 2>&1; echo done"], config_edit=edit)
    cid = unique_id()
    try:
        rt("create", "--bundle", b, cid)
        srv.settimeout(5)
        conn, _ = srv.accept()
        msg, fds = recv_fds(conn, 65536)
        assert len(fds) == 1
        st = json.loads(msg)
        assert st["metadata"] == "cloison-test" and st["state"]["id"] == cid
        # Closing the listener makes the notified syscall fail (ENOSYS).
        os.close(fds[0])
        conn.close()
        rt("start", cid)
        wait_status(rt, cid, "stopped")
    finally:
        srv.close()
        rt.cleanup(cid)


def test_time_namespace_offsets(rt, bundle):
    def edit(cfg):
        cfg["linux"]["namespaces"].append({"type": "time"})
        cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 864000, "nanosecs": 0}}
    b = bundle(args=["cat", "/proc/uptime"], config_edit=edit)
    up = float(rt("run", "--bundle", b, unique_id()).stdout.split()[0])
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    assert 864000 - 5 < up - host < 864000 + 5


def test_scheduler_nice(rt, bundle):
    def edit(cfg):
        cfg["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    b = bundle(args=["sh", "-c", "cut -d' ' -f19,41 /proc/self/stat"], config_edit=edit)
    assert rt("run", "--bundle", b, unique_id()).stdout.split() == ["7", "3"]  # nice 7, SCHED_BATCH


def test_global_flags(rt, bundle):
    p = rt("--systemd-cgroup", "list", check=False)
    assert p.returncode != 0 and "systemd cgroup driver is not supported" in p.stderr
    assert rt("--rootless", "false", "--debug", "--log-format=text", "list").returncode == 0
    b = bundle(args=["true"])
    cid = unique_id()
    rt("create", "--no-new-keyring", "--no-pivot", "--bundle", b, cid)
    assert cid in rt("list").stdout  # the text table
    assert rt("list", "-q").stdout.split() == [cid]
    rt("delete", cid)
    assert_nothing_left(rt, cid, b)


def test_personality_linux32(rt, bundle):
    def edit(cfg):
        cfg["linux"]["personality"] = {"domain": "LINUX32"}
    b = bundle(args=["uname", "-m"], config_edit=edit)
    assert rt("run", "--bundle", b, unique_id()).stdout.strip() in ("i686", "i386")


def test_foreground_terminal_proxied(rt, bundle):
    """run and exec with a terminal but no console socket: the runtime
    copies between its own stdio and the container's pty."""
    def edit(cfg):
        cfg["process"]["terminal"] = True
    b = bundle(args=["sh", "-c", "tty; echo run-ok"], config_edit=edit)
    cid = unique_id()
    cmd = "%s --root %s run --bundle %s %s" % (rt.bin, rt.root, b, cid)
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    assert p.returncode == 0 and "/dev/pts/0" in p.stdout and "run-ok" in p.stdout, p.stdout
    b2 = bundle(args=["sleep", "30"], name="second")
    try:
        rt("run", "--detach", "--bundle", b2, cid)
        cmd = "%s --root %s exec --tty %s sh -c 'tty; echo exec-ok'" % (rt.bin, rt.root, cid)
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
        assert p.returncode == 0 and "/dev/pts/" in p.stdout and "exec-ok" in p.stdout, p.stdout
    finally:
        rt.cleanup(cid)


def test_one_mib_memory_limit(rt, bundle):
    def edit(cfg):
        cfg["linux"]["resources"]["memory"] = {"limit": 1 << 20}
        cfg["linux"]["resources"]["pids"] = {"limit": 10}
    b = bundle(args=["/bin/true"], config_edit=edit)
    cid = unique_id()
    assert rt("run", "--bundle", b, cid).returncode == 0
    assert_nothing_left(rt, cid, b)


def test_force_delete_of_missing_or_aborted_container(rt):
    assert rt("delete", "--force", "never-created").returncode == 0
    os.makedirs(os.path.join(rt.root, "half-made"))  # a create that died before its state
    assert rt("delete", "--force", "half-made").returncode == 0
    assert not os.path.exists(os.path.join(rt.root, "half-made"))
    assert rt("delete", "never-created", check=False).returncode != 0


def test_create_start_as_unprivileged_user(rt, bundle):
    """The init reopens exec.fifo after switching to the process's user."""
    def edit(cfg):
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    b = bundle(args=["sleep", "30"], config_edit=edit)
    cid = unique_id()
    try:
        rt("create", "--bundle", b, cid)
        rt("start", cid)
        wait_status(rt, cid, "running")
    finally:
        rt.cleanup(cid)
