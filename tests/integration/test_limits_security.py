# SPDX-License-Identifier: Apache-2.0
"""Seccomp profiles and capability sets through the real runtime: the
errno a filtered syscall returns, a killed process, argument conditions,
the capability sets seen in /proc/self/status, and bad profiles refused
with the field named."""
import json
import os

import pytest

from test_limits_cgroups import Runtime


@pytest.fixture
def rt(tmp_path):
    r = Runtime(str(tmp_path / "state"))
    yield r
    r.cleanup()


def seccomp(profile, caps=None):
    def edit(cfg):
        cfg["linux"]["seccomp"] = profile
        if caps:
            cfg["process"]["capabilities"] = caps
    return edit


ALLOW_BUT = lambda *rules: {"defaultAction": "SCMP_ACT_ALLOW",  # noqa: E731
                            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                            "syscalls": list(rules)}


def test_errno_ret(rt, bundle):
    cid = rt.new_id()
    b = bundle(args=["mkdir", "/tmp/x"], config_edit=seccomp(ALLOW_BUT(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18})))
    p = rt("run", "--bundle", b, cid)
    assert p.returncode != 0
    assert "Invalid cross-device link" in p.stderr, p.stderr


def test_default_errno_ret(rt, bundle):
    cid = rt.new_id()
    # Deny by default with ENOSYS; allow what the runtime's last steps and
    # a static busybox need, but not rmdir.
    allowed = ["execve", "brk", "arch_prctl", "set_tid_address", "mmap", "munmap", "mprotect",
               "read", "write", "writev", "exit_group", "exit", "getuid", "geteuid", "getpid",
               "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "open", "openat", "close",
               "fstat", "newfstatat", "stat", "lstat", "statx", "ioctl", "getcwd", "prlimit64",
               "getppid", "getgid", "getegid", "getrandom", "fcntl", "dup2", "dup3", "rseq",
               "set_robust_list", "futex", "sigaltstack", "capget", "capset", "prctl",
               "setgroups", "setresuid", "setresgid", "chdir", "umask", "keyctl", "close_range",
               "fchdir", "lseek", "poll", "ppoll", "access", "faccessat", "faccessat2"]
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
               "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]}
    b = bundle(args=["rmdir", "/tmp"], config_edit=seccomp(profile))
    p = rt("run", "--bundle", b, cid)
    assert p.returncode != 0
    assert "Function not implemented" in p.stderr, p.stderr


def test_kill_process(rt, bundle):
    cid = rt.new_id()
    b = bundle(args=["uname"], config_edit=seccomp(ALLOW_BUT(
        {"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"})))
    p = rt("run", "--bundle", b, cid)
    assert p.returncode == 128 + 31, (p.returncode, p.stderr)   # SIGSYS


def test_argument_condition(rt, bundle):
    cid = rt.new_id()
    # kill(pid, 0) is refused, real signals pass: `kill -0` fails, `kill -CONT` works.
    b = bundle(args=["sh", "-c", "kill -0 $$ && echo zero-ok; kill -CONT $$ && echo cont-ok"],
               config_edit=seccomp(ALLOW_BUT({"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                                              "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]})))
    p = rt("run", "--bundle", b, cid)
    assert "zero-ok" not in p.stdout and "cont-ok" in p.stdout, p.stdout + p.stderr


def test_podman_default_profile_loads(rt, bundle):
    """Podman's profile names syscalls of every architecture."""
    try:
        with open("/usr/share/containers/seccomp.json") as f:
            prof = json.load(f)
    except FileNotFoundError:
        pytest.skip("containers-common's seccomp.json is not installed")
    syscalls = []
    for s in prof["syscalls"]:
        inc, exc = s.get("includes", {}), s.get("excludes", {})
        if inc.get("arches") and not {"amd64", "x86_64"} & set(inc["arches"]):
            continue
        if inc.get("caps") or inc.get("minKernel") or exc:
            continue
        syscalls.append({k: v for k, v in s.items() if k in ("names", "action", "errnoRet", "args")})
    profile = {"defaultAction": prof["defaultAction"], "defaultErrnoRet": prof.get("defaultErrnoRet", 1),
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": syscalls}
    cid = rt.new_id()
    b = bundle(args=["sh", "-c", "echo inside"], config_edit=seccomp(profile))
    p = rt("run", "--bundle", b, cid)
    assert p.returncode == 0 and "inside" in p.stdout, p.stderr


@pytest.mark.parametrize("profile,message", [
    ({"defaultAction": "SCMP_ACT_FOO"}, "linux.seccomp.defaultAction: unknown action `SCMP_ACT_FOO`"),
    (ALLOW_BUT({"names": ["getpid", "no_such_syscall"], "action": "SCMP_ACT_ERRNO"}),
     "linux.seccomp.syscalls[0].names[1]: unknown syscall `no_such_syscall`"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]},
     "linux.seccomp.architectures[0]: unknown architecture `SCMP_ARCH_PDP11`"),
    (ALLOW_BUT({"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}),
     "linux.seccomp.syscalls[0].args[0].op: unknown operator `SCMP_CMP_ABOUT`"),
])
def test_bad_profiles_name_the_field(rt, bundle, profile, message):
    cid = rt.new_id()
    b = bundle(config_edit=seccomp(profile))
    p = rt("run", "--bundle", b, cid)
    assert p.returncode != 0
    assert message in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def caps_status(rt, bundle, caps, user=None):
    def edit(cfg):
        cfg["process"]["capabilities"] = caps
        if user:
            cfg["process"]["user"] = user
    cid = rt.new_id()
    b = bundle(args=["grep", "^Cap", "/proc/self/status"], config_edit=edit)
    p = rt("run", "--bundle", b, cid)
    assert p.returncode == 0, p.stderr
    return {line.split(":")[0]: int(line.split()[1], 16) for line in p.stdout.splitlines()}


def test_capability_sets(rt, bundle):
    # CAP_CHOWN 0, CAP_KILL 5, CAP_NET_BIND_SERVICE 10, CAP_SYS_ADMIN 21
    st = caps_status(rt, bundle, {"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                                  "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN", "CAP_KILL"],
                                  "inheritable": ["CAP_KILL"]})
    assert st["CapBnd"] == (1 << 0) | (1 << 5) | (1 << 10)
    # uid 0 without file capabilities: execve makes the effective set the
    # permitted one (runc shows the same).
    assert st["CapPrm"] == (1 << 0) | (1 << 5)
    assert st["CapEff"] == st["CapPrm"]
    assert st["CapInh"] == 1 << 5
    assert st["CapAmb"] == 0


def test_ambient_for_a_non_root_user(rt, bundle):
    nbs = ["CAP_NET_BIND_SERVICE"]
    st = caps_status(rt, bundle, {"bounding": nbs, "effective": nbs, "permitted": nbs,
                                  "inheritable": nbs, "ambient": nbs}, user={"uid": 1000, "gid": 1000})
    assert st["CapAmb"] == 1 << 10 and st["CapEff"] == 1 << 10 and st["CapBnd"] == 1 << 10


def test_dropped_capability_bites(rt, bundle):
    cid = rt.new_id()
    caps = {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted")}
    b = bundle(args=["sh", "-c", "mknod /dev/n c 1 3 && echo made"],
               config_edit=lambda c: c["process"].update(capabilities=caps))
    p = rt("run", "--bundle", b, cid)
    assert "made" not in p.stdout
    assert "Operation not permitted" in p.stderr, p.stderr


def test_unknown_capability_names_set_and_entry(rt, bundle):
    cid = rt.new_id()
    b = bundle(config_edit=lambda c: c["process"]["capabilities"].update(ambient=["CAP_KILL", "CAP_TELEPORT"]))
    p = rt("run", "--bundle", b, cid)
    assert p.returncode != 0
    assert "process.capabilities.ambient[1]: unknown capability `CAP_TELEPORT`" in p.stderr, p.stderr


def test_notify_listener_gets_fd_and_state(rt, bundle, tmp_path):
    """SCMP_ACT_NOTIFY: the listener at listenerPath (a host path) receives
    the notify fd and the container process state, then answers."""
    import array
    import socket
    import threading

    sock_path = str(tmp_path / "listener.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    srv.settimeout(10)
    got = {}

    def listen():
        try:
            conn, _ = srv.accept()
            fds = array.array("i")
            msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            got["msg"] = json.loads(msg.decode())
            got["fds"] = list(fds)
            # Closing the listener fd makes the notified syscall fail with ENOSYS.
            for fd in fds:
                os.close(fd)
            conn.close()
        except OSError as e:
            got["error"] = str(e)

    t = threading.Thread(target=listen)
    t.start()
    cid = rt.new_id()
    b = bundle(args=["mkdir", "/tmp/n"], config_edit=seccomp({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock_path, "listenerMetadata": "limits-meta",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}))
    p = rt("run", "--bundle", b, cid)
    t.join(15)
    srv.close()
    assert "msg" in got, (got, p.stderr)
    assert got["msg"]["fds"] == ["seccompFd"] and got["msg"]["metadata"] == "limits-meta"
    assert got["msg"]["state"]["id"] == cid
    assert len(got["fds"]) == 1
    assert p.returncode != 0
