# SPDX-License-Identifier: Apache-2.0
"""Known container escapes stay closed: CVE-2019-5736 (runtime binary
reachable through /proc/PID/exe), CVE-2024-21626 (leaked fds and a cwd
outside the root), CVE-2025-31133 (masked paths through a swapped
/dev/null)."""
import errno
import fcntl
import hashlib
import json
import os
import time

import pytest

from test_runtime_util import Runtime, unique_id


@pytest.fixture
def rt(tmp_path):
    return Runtime(tmp_path / "state")


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def try_write(path):
    """Opens `path` for writing and writes: the errno it fails with, or 0."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        return e.errno
    try:
        os.write(fd, b"pwned")
        return 0
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)


@pytest.mark.parametrize("method", ["ro-bind", "memfd"])
def test_cve_2019_5736_runtime_binary_unwritable(rt, bundle, method, monkeypatch):
    """The original exploit keeps an O_PATH fd on /proc/PID/exe of a
    runtime process in the container and reopens it for writing once the
    process is gone.  The init must run from a file that stays unwritable:
    a read-only bind mount of the runtime, or a sealed memfd."""
    if method == "memfd":
        monkeypatch.setenv("CLOISON_SEALED_EXE_MEMFD", "1")
    before = sha(rt.bin)
    b = bundle(args=["true"])
    cid = unique_id("esc")
    try:
        rt("create", "--bundle", b, cid)
        pid = rt.state(cid)["pid"]
        held = os.open("/proc/%d/exe" % pid, os.O_PATH)
        try:
            if method == "memfd":
                assert os.readlink("/proc/%d/exe" % pid).startswith("/memfd:cloison-runtime")
                fd = os.open("/proc/%d/exe" % pid, os.O_RDONLY)
                seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
                os.close(fd)
                assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SEAL
            else:
                assert os.statvfs("/proc/%d/exe" % pid).f_flag & os.ST_RDONLY
            assert try_write("/proc/%d/exe" % pid) in (errno.ETXTBSY, errno.EPERM, errno.EROFS)
            rt("delete", "--force", cid)
            assert try_write("/proc/self/fd/%d" % held) in (errno.EPERM, errno.EROFS)
        finally:
            os.close(held)
    finally:
        rt.cleanup(cid)
    assert sha(rt.bin) == before
    # The read-only bind never reaches the host's mount table.
    assert not [l for l in open("/proc/self/mountinfo") if "cloison-runtime" in l]


def test_cve_2019_5736_exec_of_proc_self_exe_cannot_reach_host_binary(rt, bundle):
    """The original exploit: the image's program is `#!/proc/self/exe`,
    so `exec` makes the runtime run itself inside the container; a
    container process then opens it for writing.  With the memfd there is
    nothing on the host to overwrite."""
    before = sha(rt.bin)

    def edit(cfg):
        cfg["root"]["readonly"] = False
    b = bundle(args=["sleep", "30"], config_edit=edit, copy_rootfs=True)
    with open(os.path.join(b, "rootfs", "bin", "evil"), "w") as f:
        f.write("#!/proc/self/exe\n")
    os.chmod(os.path.join(b, "rootfs", "bin", "evil"), 0o755)
    cid = unique_id("esc")
    try:
        rt("run", "--detach", "--bundle", b, cid)
        rt("exec", cid, "/bin/evil", check=False)
        # From inside: every /proc/*/exe the container can see is either
        # its own busybox or not writable.
        p = rt("exec", cid, "sh", "-c",
               "for e in /proc/[0-9]*/exe; do readlink $e; (echo x >> $e) 2>/dev/null && echo WROTE $e; done; true")
        assert "WROTE" not in p.stdout
    finally:
        rt.cleanup(cid)
    assert sha(rt.bin) == before


def test_cve_2024_21626_no_leaked_fds(rt, bundle):
    b = bundle(args=["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"])
    cid = unique_id("esc")
    extra = os.open("/sys/fs/cgroup", os.O_RDONLY | os.O_DIRECTORY)  # inheritable on purpose
    os.set_inheritable(extra, True)
    try:
        p = rt("run", "--bundle", b, cid, close_fds=False)
    finally:
        os.close(extra)
    fds = p.stdout.split()
    # 0-2, plus the directory fd `ls` itself opens.
    assert len(fds) <= 4 and set(fds) <= {"0", "1", "2", "3"}, fds


@pytest.mark.parametrize("fd", [3, 4, 5, 6, 7, 8])
def test_cve_2024_21626_cwd_through_proc_fd_refused(rt, bundle, fd):
    def edit(cfg):
        cfg["process"]["cwd"] = "/proc/self/fd/%d" % fd
    b = bundle(args=["sh", "-c", "pwd; ls .."], config_edit=edit)
    cid = unique_id("esc")
    p = rt("run", "--bundle", b, cid, check=False)
    assert p.returncode != 0
    assert "process.cwd" in p.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_cve_2024_21626_exec_cwd_refused(rt, bundle):
    b = bundle(args=["sleep", "30"])
    cid = unique_id("esc")
    try:
        rt("run", "--detach", "--bundle", b, cid)
        for fd in range(3, 8):
            p = rt("exec", "--cwd", "/proc/self/fd/%d" % fd, cid, "ls", "..", check=False)
            assert p.returncode != 0, p.stdout
        p = rt("exec", cid, "sh", "-c", "ls /proc/self/fd | tr '\\n' ' '")
        assert set(p.stdout.split()) <= {"0", "1", "2", "3"}, p.stdout
    finally:
        rt.cleanup(cid)


def test_cve_2025_31133_masked_paths_use_the_real_dev_null(rt, bundle):
    """The image's /dev/null is a symlink to a sysctl: masking must not
    follow it (that would bind core_pattern writable over /proc/keys)."""
    def edit(cfg):
        cfg["root"]["readonly"] = False
        cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
        cfg["linux"]["maskedPaths"] = ["/proc/keys"]
    b = bundle(args=["sh", "-c", "stat -L -c '%F %t:%T' /proc/keys; cat /proc/keys | wc -c"],
               config_edit=edit, copy_rootfs=True)
    devnull = os.path.join(b, "rootfs", "dev", "null")
    if os.path.lexists(devnull):
        os.unlink(devnull)
    os.symlink("/proc/sys/kernel/core_pattern", devnull)
    cid = unique_id("esc")
    p = rt("run", "--bundle", b, cid)
    lines = p.stdout.splitlines()
    assert lines[0] == "character special file 1:3", lines
    assert lines[1].strip() == "0"


def test_cve_2025_52565_console_symlink_not_followed(rt, bundle, tmp_path):
    """An image whose /dev/console points into /proc must not get the pty
    bound over that file."""
    def edit(cfg):
        cfg["root"]["readonly"] = False
        cfg["process"]["terminal"] = True
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/dev",)]
    b = bundle(args=["true"], config_edit=edit, copy_rootfs=True)
    console = os.path.join(b, "rootfs", "dev", "console")
    if os.path.lexists(console):
        os.unlink(console)
    os.symlink("/proc/sysrq-trigger", console)
    cid = unique_id("esc")
    sock = str(tmp_path / "c.sock")
    import socket
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock)
    srv.listen(1)
    try:
        p = rt("create", "--console-socket", sock, "--bundle", b, cid, check=False)
        assert p.returncode != 0 and "/dev/console" in p.stderr, p.stderr
        assert not os.path.exists(os.path.join(rt.root, cid))
    finally:
        srv.close()
        rt.cleanup(cid)


def test_cve_2025_52881_sysctl_only_on_procfs(rt, bundle):
    """A sysctl write goes to procfs, even if the image makes /proc a
    link into a directory of its own."""
    def edit(cfg):
        cfg["root"]["readonly"] = False
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/proc"]
        cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        cfg["linux"]["maskedPaths"] = []
        cfg["linux"]["readonlyPaths"] = []
    b = bundle(args=["true"], config_edit=edit, copy_rootfs=True)
    proc = os.path.join(b, "rootfs", "proc")
    os.rmdir(proc)
    os.makedirs(os.path.join(b, "rootfs", "fake", "sys", "net", "ipv4"))
    open(os.path.join(b, "rootfs", "fake", "sys", "net", "ipv4", "ip_forward"), "w").close()
    os.symlink("/fake", proc)
    p = rt("run", "--bundle", b, unique_id("esc"), check=False)
    # Either refused, or written to the container's own procfs (the
    # fallback is the runtime's /proc): never to the image's file.
    assert open(os.path.join(b, "rootfs", "fake", "sys", "net", "ipv4", "ip_forward")).read() == ""
    if p.returncode != 0:
        assert "linux.sysctl.net.ipv4.ip_forward" in p.stderr
