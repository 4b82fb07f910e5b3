# SPDX-License-Identifier: Apache-2.0
"""cloison-runtime as a drop-in for runc: each behaviour runs the same
bundle under runc 1.1 (the peer, Debian's) and under ours, and compares
what the container sees.  See docs/runtime-dropin.md."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import binary, make_bundle
from test_runtime_util import cgroup_dirs, unique_id

pytestmark = pytest.mark.skipif(shutil.which("runc") is None, reason="runc (the peer) not installed")


class Tool:
    """One runtime (ours or runc) with a private --root and a log file."""

    def __init__(self, name, argv0, root):
        self.name, self.argv0, self.root = name, argv0, root
        self.log = root + ".log"
        self.ids = []

    def __call__(self, *args, check=True, timeout=60, **kw):
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([self.argv0, "--root", self.root, "--log", self.log] + [str(a) for a in args],
                               stdout=out, stderr=err, text=True, timeout=timeout,
                               stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError("%s %s: exit %d: %s%s" % (self.name, " ".join(map(str, args)),
                                                           p.returncode, p.stdout, p.stderr))
        return p

    def new_id(self):
        cid = unique_id("dropin-" + self.name[:4])
        self.ids.append(cid)
        return cid

    def log_text(self):
        return open(self.log).read() if os.path.exists(self.log) else ""

    def cleanup(self):
        for cid in self.ids:
            self("delete", "--force", cid, check=False)


@pytest.fixture
def tools(tmp_path):
    both = [Tool("cloison", binary("cloison-runtime"), str(tmp_path / "state-cloison")),
            Tool("runc", shutil.which("runc"), str(tmp_path / "state-runc"))]
    yield both
    for t in both:
        t.cleanup()


def runc_spec_bundle(path, rootfs, args, edit=None, copy_rootfs=False):
    """A bundle whose config.json is what `runc spec` writes, with only the
    root path, the command and the terminal changed (no tty here)."""
    os.makedirs(path)
    subprocess.run(["runc", "spec", "--bundle", path], check=True)
    cfg = json.load(open(os.path.join(path, "config.json")))
    if copy_rootfs:
        shutil.copytree(rootfs, os.path.join(path, "rootfs"), symlinks=True)
    else:
        cfg["root"]["path"] = rootfs
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = list(args)
    if edit:
        edit(cfg)
    json.dump(cfg, open(os.path.join(path, "config.json"), "w"), indent=2)
    return path


def run_both(tools, tmp_path, rootfs, args, edit=None, copy_rootfs=False, spec="runc"):
    """Runs the same bundle (one copy per runtime) under both; returns
    {name: CompletedProcess}."""
    out = {}
    for t in tools:
        d = str(tmp_path / ("bundle-" + t.name))
        if spec == "runc":
            runc_spec_bundle(d, rootfs, args, edit, copy_rootfs)
        else:
            make_bundle(d, rootfs, args, edit, copy_rootfs)
        out[t.name] = t("run", "--bundle", d, t.new_id(), check=False)
    return out


def test_runc_spec_bundle_runs_unchanged(tools, tmp_path, busybox_rootfs):
    """runc's default spec lists CAP_AUDIT_WRITE, CAP_KILL and
    CAP_NET_BIND_SERVICE as ambient but not inheritable: not raised, with a
    warning on our log, and the container runs."""
    r = run_both(tools, tmp_path, busybox_rootfs, ["sh", "-c", "grep -E '^Cap(Amb|Prm)' /proc/self/status"])
    assert r["runc"].returncode == 0, r["runc"].stderr
    assert r["cloison"].returncode == 0, r["cloison"].stderr
    assert r["cloison"].stdout == r["runc"].stdout
    assert "CapAmb:\t0000000000000000" in r["cloison"].stdout
    log = tools[0].log_text()
    assert "process.capabilities.ambient" in log and "CAP_KILL" in log and "not raised" in log, log


def test_ambient_raised_when_permitted_and_inheritable(tools, tmp_path, busybox_rootfs):
    def edit(cfg):
        caps = cfg["process"]["capabilities"]
        caps["inheritable"] = ["CAP_KILL"]
        caps["ambient"] = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    r = run_both(tools, tmp_path, busybox_rootfs, ["grep", "CapAmb", "/proc/self/status"], edit)
    assert r["runc"].returncode == 0 and r["cloison"].returncode == 0, r
    assert r["cloison"].stdout == r["runc"].stdout == "CapAmb:\t0000000000000020\n"


def test_missing_cwd_is_created(tools, tmp_path, busybox_rootfs):
    def edit(cfg):
        cfg["process"]["cwd"] = "/work/deep/dir"
    r = run_both(tools, tmp_path, busybox_rootfs, ["sh", "-c", "pwd; stat -c '%a %u' /work/deep /work/deep/dir"],
                 edit, copy_rootfs=True)
    assert r["runc"].returncode == 0, r["runc"].stderr
    assert r["cloison"].returncode == 0, r["cloison"].stderr
    assert r["cloison"].stdout == r["runc"].stdout == "/work/deep/dir\n755 0\n755 0\n"


@pytest.mark.parametrize("uid,env_home,expected", [
    (0, None, "/root"),            # root's entry
    (1, None, "/usr/sbin"),        # daemon's entry
    (4242, None, "/"),             # no entry
    (1, "/custom", "/custom"),     # HOME given: kept
])
def test_home_from_passwd(tools, tmp_path, busybox_rootfs, uid, env_home, expected):
    def edit(cfg):
        cfg["process"]["user"] = {"uid": uid, "gid": uid}
        if env_home:
            cfg["process"]["env"].append("HOME=" + env_home)
    r = run_both(tools, tmp_path, busybox_rootfs, ["sh", "-c", 'echo "$HOME"'], edit)
    assert r["runc"].stdout == r["cloison"].stdout == expected + "\n", r


def test_home_empty_passwd_field_is_slash(tools, tmp_path, busybox_rootfs):
    """An entry with an empty home field gives `/` (runc 1.1 leaves HOME
    empty there; runc 1.2 and crun give `/`, as we do)."""
    d = str(tmp_path / "b")
    runc_spec_bundle(d, busybox_rootfs, ["sh", "-c", 'echo "[$HOME]"'], copy_rootfs=True,
                     edit=lambda cfg: cfg["process"].update(user={"uid": 777, "gid": 777}))
    with open(os.path.join(d, "rootfs", "etc", "passwd"), "a") as f:
        f.write("nohome:x:777:777:::/bin/sh\n")
    ours = tools[0]
    p = ours("run", "--bundle", d, ours.new_id())
    assert p.stdout == "[/]\n"


def test_exec_home_process_group_and_session(tools, tmp_path, busybox_rootfs):
    """exec: HOME from the exec'd user's entry; the process leads its own
    session and process group, terminal or not, as under runc."""
    show = ["sh", "-c", 'echo "$HOME"; read -r s < /proc/self/stat; set -- $s; '
            'read -r p < /proc/$$/stat; set -- $p; echo "pid=$1 pgrp=$5 sid=$6"']
    seen = {}
    for t in tools:
        d = str(tmp_path / ("bundle-" + t.name))
        runc_spec_bundle(d, busybox_rootfs, ["sleep", "60"])
        cid = t.new_id()
        t("run", "-d", "--bundle", d, cid)
        a = t("exec", cid, *show).stdout.split("\n")
        b = t("exec", "--user", "1:1", cid, *show).stdout.split("\n")
        # With a terminal: through `script`, which gives our stdin a pty.
        c = subprocess.run(["script", "-qec", " ".join([t.argv0, "--root", t.root, "--log", t.log, "exec", "-t", cid, "sh", "-c",
                                                        "'echo pgrp=$(cut -d\" \" -f5 /proc/$$/stat) pid=$$'"]),
                            "/dev/null"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        seen[t.name] = (a, b, c.stdout)
    for name, (a, b, tty) in seen.items():
        assert a[0] == "/root" and b[0] == "/usr/sbin", (name, a, b)
        for line in (a[1], b[1]):
            kv = dict(x.split("=") for x in line.split())
            assert kv["pid"] == kv["pgrp"] == kv["sid"], (name, line)
        m = re.search(r"pgrp=(\d+) pid=(\d+)", tty)
        assert m and m.group(1) == m.group(2), (name, tty)


def own_cgroups(pid):
    out = {}
    for line in open("/proc/%d/cgroup" % pid):
        _, ctrls, path = line.rstrip("\n").split(":", 2)
        out[ctrls] = path
    return out


def run_sleeper_in_own_cgroup(t, tmp_path, rootfs):
    """A detached `sleep 60` whose cgroups are /ID in every hierarchy."""
    cid = t.new_id()
    runc_spec_bundle(str(tmp_path / ("bundle-" + t.name)), rootfs, ["sleep", "60"],
                     edit=lambda cfg: cfg["linux"].update(cgroupsPath="/" + cid))
    t("run", "-d", "--bundle", str(tmp_path / ("bundle-" + t.name)), cid)
    return cid


def remove_with_subs(t, cid, subs):
    """The sub-cgroups go first (a cgroup with children cannot be removed):
    kill everything, then rmdir them, then delete."""
    t("kill", "--all", cid, "KILL", check=False)
    for m in subs:
        for _ in range(100):
            try:
                os.rmdir(m)
                break
            except OSError:
                time.sleep(0.05)
    t("delete", "--force", cid, check=False)
    assert cgroup_dirs(cid) == [], t.name


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/memory"), reason="cgroup v1 form (the v2 form is in the lab)")
def test_exec_cgroup_sub_path(tools, tmp_path, busybox_rootfs):
    """exec --cgroup memory:SUB (v1) joins the sub-cgroup in that hierarchy
    only; --cgroup SUB in every one; a missing one is refused."""
    for t in tools:
        cid = run_sleeper_in_own_cgroup(t, tmp_path, busybox_rootfs)
        made = []
        try:
            for top in os.listdir("/sys/fs/cgroup"):
                base = os.path.join("/sys/fs/cgroup", top, cid)
                if os.path.isdir(base):
                    os.mkdir(os.path.join(base, "sub"))
                    made.append(os.path.join(base, "sub"))
                    for f in ("cpuset.cpus", "cpuset.mems"):  # an empty cpuset takes no task
                        if os.path.exists(os.path.join(base, f)):
                            open(os.path.join(base, "sub", f), "w").write(open(os.path.join(base, f)).read())
            # cat's own /proc/self/cgroup, from inside (no cgroup namespace
            # shows the host paths: runc spec has a cgroup namespace, so
            # look at the exec'd process from the host instead).
            p = t("exec", "-d", "--pid-file", str(tmp_path / (t.name + ".pid")), "--cgroup", "memory:sub",
                  cid, "sleep", "30")
            pid = int(open(str(tmp_path / (t.name + ".pid"))).read())
            cg = own_cgroups(pid)
            assert cg["memory"] == "/%s/sub" % cid, (t.name, cg)
            assert cg["pids"] == "/" + cid, (t.name, cg)
            os.kill(pid, 9)
            t("exec", "-d", "--pid-file", str(tmp_path / (t.name + ".pid2")), "--cgroup", "sub", cid, "sleep", "30")
            pid = int(open(str(tmp_path / (t.name + ".pid2"))).read())
            cg = own_cgroups(pid)
            assert cg["memory"] == cg["pids"] == "/%s/sub" % cid, (t.name, cg)
            if "" in cg and os.path.isdir("/sys/fs/cgroup/unified/" + cid):  # hybrid: the v2 line too
                assert cg[""] == "/%s/sub" % cid, (t.name, cg)
            os.kill(pid, 9)
            p = t("exec", "--cgroup", "nosuch", cid, "true", check=False)
            assert p.returncode != 0, t.name
            p = t("exec", "--cgroup", "memory:a", "--cgroup", "memory:b", cid, "true", check=False)
            assert p.returncode != 0, t.name
        finally:
            remove_with_subs(t, cid, made)


def unified_controllers():
    try:
        return open("/sys/fs/cgroup/unified/cgroup.controllers").read().split()
    except OSError:
        return []


@pytest.mark.skipif(not unified_controllers(), reason="no hybrid cgroup v2 mount holding a controller "
                    "(the pure v2 form is in the lab: tests/lab/test_lab_limits_v2.py)")
def test_exec_cgroup_controller_of_v2_hierarchy(tools, tmp_path, busybox_rootfs):
    """On a hybrid host the v2 mount holds a few controllers (hugetlb here):
    `exec --cgroup hugetlb:SUB` puts the process in SUB of the v2
    hierarchy, where runc 1.1 refuses the controller ("unknown controller
    hugetlb in SubCgroupPaths").  A controller no hierarchy holds is refused
    by both."""
    ctrl = unified_controllers()[0]
    for t in tools:
        cid = run_sleeper_in_own_cgroup(t, tmp_path, busybox_rootfs)
        sub = os.path.join("/sys/fs/cgroup/unified", cid, "sub")
        try:
            os.mkdir(sub)
            pid_file = str(tmp_path / (t.name + ".pid"))
            p = t("exec", "-d", "--pid-file", pid_file, "--cgroup", ctrl + ":sub", cid, "sleep", "30",
                  check=False)
            if t.name == "runc":
                assert p.returncode != 0 and "unknown controller" in p.stderr, p.stderr
            else:
                assert p.returncode == 0, p.stderr
                pid = int(open(pid_file).read())
                cg = own_cgroups(pid)
                assert cg[""] == "/%s/sub" % cid and cg["memory"] == "/" + cid, cg
                os.kill(pid, 9)
            p = t("exec", "--cgroup", "net_cls:sub", cid, "true", check=False)
            assert p.returncode != 0 and "net_cls" in p.stderr, (t.name, p.stderr)
        finally:
            remove_with_subs(t, cid, [sub])


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/pids"), reason="reads the cgroup v1 pids hierarchy")
def test_kill_all_reaches_a_stopped_containers_leftovers(tools, tmp_path, busybox_rootfs):
    """`kill --all` of a stopped container signals what its init left in the
    cgroup and succeeds, as runc's (containerd's shim sends it to every
    container it deletes); a plain `kill` of it is refused by both."""
    for t in tools:
        cid = t.new_id()

        def edit(cfg):
            cfg["linux"]["cgroupsPath"] = "/" + cid
            cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
        b = runc_spec_bundle(str(tmp_path / ("bundle-" + t.name)), busybox_rootfs,
                             ["sh", "-c", "sleep 300 </dev/null >/dev/null 2>&1 & exit 0"], edit=edit)
        t("run", "-d", "--bundle", b, cid)
        procs = "/sys/fs/cgroup/pids/%s/cgroup.procs" % cid
        end = time.time() + 10
        while time.time() < end and not ('"stopped"' in t("state", cid).stdout
                                         and len(open(procs).read().split()) == 1):
            time.sleep(0.05)
        assert '"stopped"' in t("state", cid).stdout and len(open(procs).read().split()) == 1, t.name
        t("kill", "--all", cid, "KILL")
        while time.time() < end and open(procs).read().split():
            time.sleep(0.05)
        assert open(procs).read().split() == [], t.name
        p = t("kill", cid, "KILL", check=False)
        assert p.returncode != 0 and "not running" in p.stderr + t.log_text(), (t.name, p.stderr)
        t("delete", cid)
        assert cgroup_dirs(cid) == [], t.name


def sweep_cgroups(cid):
    """Kills what is left in the cgroups named cid, removes them."""
    for d in sorted(cgroup_dirs(cid), key=len, reverse=True):
        for sub, _, _ in sorted(os.walk(d), key=lambda x: -len(x[0])):
            procs = os.path.join(sub, "cgroup.procs")
            for pid in (open(procs).read().split() if os.path.exists(procs) else []):
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
    time.sleep(0.2)
    for d in sorted(cgroup_dirs(cid), key=len, reverse=True):
        for sub, _, _ in sorted(os.walk(d), key=lambda x: -len(x[0])):
            try:
                os.rmdir(sub)
            except OSError:
                pass


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/pids"), reason="reads the cgroup v1 pids hierarchy")
def test_delete_force_after_create_killed_in_a_hook(tools, tmp_path, busybox_rootfs):
    """`create` killed -9 while a createRuntime hook holds it, then `delete
    --force` (what containerd's shim runs after a runtime died): both remove
    the state; ours also ends the half-made container's processes and
    removes its cgroup, from the state it wrote before the hooks; runc 1.1
    writes its state only once create ends and leaves the cgroup."""
    for t in tools:
        cid = t.new_id()
        flag = str(tmp_path / (t.name + ".hook"))

        def edit(cfg):
            cfg["linux"]["cgroupsPath"] = "/" + cid
            cfg["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": [
                "sh", "-c", "echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 600" % (flag, flag, flag)]}]}
        b = runc_spec_bundle(str(tmp_path / ("bundle-" + t.name)), busybox_rootfs, ["sleep", "60"], edit=edit)
        proc = subprocess.Popen([t.argv0, "--root", t.root, "create", "--bundle", b, cid],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            end = time.time() + 20
            while not os.path.exists(flag) and time.time() < end:
                time.sleep(0.02)
            assert os.path.exists(flag), t.name
            proc.kill()
            proc.wait()
            os.kill(int(open(flag).read()), 9)
            assert cgroup_dirs(cid) != [], t.name  # the cgroup was made before the hooks
            t("delete", "--force", cid)
            assert not os.path.exists(os.path.join(t.root, cid)), t.name
            end = time.time() + 10
            while t.name == "cloison" and cgroup_dirs(cid) and time.time() < end:
                time.sleep(0.05)
            left = cgroup_dirs(cid)
            assert (left == []) if t.name == "cloison" else (left != []), (t.name, left)
        finally:
            if proc.poll() is None:
                proc.kill()
            sweep_cgroups(cid)


def hook(tmp_path, script):
    return {"path": "/bin/sh", "args": ["sh", "-c", script]}


def test_hook_env_is_its_own_or_the_runtimes(tools, tmp_path, busybox_rootfs):
    """A hook with `env` gets exactly that; without, the runtime's own
    environment (runc runs hooks with Go's exec.Cmd, Env nil = inherit)."""
    seen = {}
    for t in tools:
        out = tmp_path / ("env-" + t.name)
        os.mkdir(str(out))
        d = str(tmp_path / ("bundle-" + t.name))
        runc_spec_bundle(d, busybox_rootfs, ["true"], edit=lambda cfg: cfg.update(hooks={
            "createRuntime": [hook(tmp_path, "env > %s/inherited; pwd -P > %s/cwd" % (out, out))],
            "poststop": [dict(hook(tmp_path, "/usr/bin/env > %s/own" % out), env=["ONLY=this"])]}))
        env = dict(os.environ, DROPIN_MARK="from-the-caller")
        t("run", "--bundle", d, t.new_id(), env=env)
        inherited = open(str(out / "inherited")).read().split("\n")
        own = [l for l in open(str(out / "own")) if not l.startswith("PWD=")]  # sh's own
        seen[t.name] = ("DROPIN_MARK=from-the-caller" in inherited, own,
                        open(str(out / "cwd")).read().strip() == os.path.realpath(d))
    assert seen["cloison"] == seen["runc"] == (True, ["ONLY=this\n"], True), seen


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "poststart"])
def test_failing_hook_fails_the_command_and_removes_the_container(tools, tmp_path, busybox_rootfs, kind):
    """runc 1.1: the first failing hook stops the list; create/run/start
    fails with the hook's output in the message; the container is gone
    (a failing poststart kills it)."""
    for t in tools:
        second = tmp_path / ("second-" + t.name)
        d = str(tmp_path / ("bundle-" + t.name))
        runc_spec_bundle(d, busybox_rootfs, ["sleep", "30"], edit=lambda cfg: cfg.update(hooks={
            kind: [hook(tmp_path, "echo to-stdout; echo to-stderr >&2; exit 3"),
                   hook(tmp_path, "touch %s" % second)]}))
        cid = t.new_id()
        p = t("run", "-d", "--bundle", d, cid, check=False)
        assert p.returncode == 1, (t.name, p.stderr)
        assert not second.exists(), t.name
        assert t("state", cid, check=False).returncode != 0, t.name
        if t.name == "cloison":
            assert p.stderr.count("\n") == 1, p.stderr
            assert "hooks.%s[0]" % kind in p.stderr and "status 3" in p.stderr, p.stderr
            assert "stdout: to-stdout" in p.stderr and "stderr: to-stderr" in p.stderr, p.stderr
        assert cgroup_dirs(cid) == [], t.name
    # create then start: a failing poststart makes start fail and removes
    # the container.  (runc 1.1 runs poststart hooks at the end of
    # `create`, against the spec; runc 1.2 and crun run them in `start`,
    # as we do: no comparison here.)
    if kind == "poststart":
        ours = tools[0]
        cid = ours.new_id()
        ours("create", "--bundle", str(tmp_path / "bundle-cloison"), cid)
        assert ours("start", cid, check=False).returncode == 1
        assert ours("state", cid, check=False).returncode != 0
        assert cgroup_dirs(cid) == []


def test_failing_poststop_hook_warns_and_delete_succeeds(tools, tmp_path, busybox_rootfs):
    for t in tools:
        second = tmp_path / ("second-" + t.name)
        d = str(tmp_path / ("bundle-" + t.name))
        runc_spec_bundle(d, busybox_rootfs, ["sleep", "30"], edit=lambda cfg: cfg.update(hooks={
            "poststop": [hook(tmp_path, "echo oops >&2; exit 3"), hook(tmp_path, "touch %s" % second)]}))
        cid = t.new_id()
        t("run", "-d", "--bundle", d, cid)
        p = t("delete", "--force", cid, check=False)
        assert p.returncode == 0, (t.name, p.stderr)
        assert t("state", cid, check=False).returncode != 0, t.name
        assert not second.exists(), t.name
        assert "oops" in t.log_text(), t.name


V1 = "/sys/fs/cgroup"
v1_only = pytest.mark.skipif(not os.path.isdir(os.path.join(V1, "memory")),
                             reason="cgroup v1 files (cgroup v2: tests/lab/test_lab_limits_v2.py)")


def v1_read(controller, cid, name):
    return open(os.path.join(V1, controller, cid, name)).read().strip()


UPDATE_FILES = [("memory", "memory.limit_in_bytes"), ("memory", "memory.soft_limit_in_bytes"),
                ("cpu", "cpu.shares"), ("cpu", "cpu.cfs_period_us"), ("cpu", "cpu.cfs_quota_us"),
                ("cpu", "cpu.rt_period_us"), ("cpu", "cpu.rt_runtime_us"), ("cpuset", "cpuset.cpus"),
                ("cpuset", "cpuset.mems"), ("pids", "pids.max")]


@v1_only
def test_update_takes_runcs_flags(tools, tmp_path, busybox_rootfs):
    """`update --memory 64m --cpu-share 512 ...` as runc's: the same cgroup
    files, in the same order of writes (runc's and ours pass on the same
    kernel checks), and the same refusals."""
    flags = ["--memory", "64m", "--memory-swap", "-1", "--memory-reservation", "32M", "--cpu-share", "512",
             "--cpu-period", "50000", "--cpu-quota", "25000", "--cpu-rt-period", "1000000",
             "--cpu-rt-runtime", "10000", "--cpuset-cpus", "0", "--cpuset-mems", "0", "--pids-limit", "77"]
    seen = {}
    for t in tools:
        cid = t.new_id()
        d = str(tmp_path / ("bundle-" + t.name))
        runc_spec_bundle(d, busybox_rootfs, ["sleep", "60"],
                         edit=lambda cfg: cfg["linux"].update(cgroupsPath="/" + cid))
        t("run", "-d", "--bundle", d, cid)
        t("update", *flags, cid)
        seen[t.name] = [v1_read(c, cid, f) for c, f in UPDATE_FILES]
        # A bad value is refused, and changes nothing.
        assert t("update", "--memory", "lots", cid, check=False).returncode != 0, t.name
        assert v1_read("memory", cid, "memory.limit_in_bytes") == str(64 << 20), t.name
        # The weight: on a host without CFQ/BFQ both fail (no weight file).
        w = t("update", "--blkio-weight", "300", cid, check=False)
        if os.path.exists(os.path.join(V1, "blkio", cid, "blkio.weight")) or \
                os.path.exists(os.path.join(V1, "blkio", cid, "blkio.bfq.weight")):
            assert w.returncode == 0, (t.name, w.stderr)
        else:
            assert w.returncode != 0, t.name
        t("delete", "--force", cid)
    assert seen["cloison"] == seen["runc"], seen
    assert seen["cloison"][0] == str(64 << 20) and seen["cloison"][-1] == "77"


@v1_only
def test_v1_realtime_cpu_and_idle(tools, tmp_path, busybox_rootfs):
    """cpu.realtimePeriod/realtimeRuntime on v1 (a SCHED_FIFO process can
    then run inside), compared with runc; cpu.idle where the kernel has it."""
    if not os.path.exists(os.path.join(V1, "cpu", "cpu.rt_runtime_us")):
        pytest.skip("kernel without CONFIG_RT_GROUP_SCHED")
    seen = {}
    for t in tools:
        cid = t.new_id()
        d = str(tmp_path / ("bundle-" + t.name))

        def edit(cfg):
            cfg["linux"]["cgroupsPath"] = "/" + cid
            cfg["linux"]["resources"]["cpu"] = {"realtimePeriod": 1000000, "realtimeRuntime": 20000}
        runc_spec_bundle(d, busybox_rootfs, ["sleep", "60"], edit=edit)
        t("run", "-d", "--bundle", d, cid)
        # The container's init may go SCHED_FIFO only with realtime time
        # in its cgroup (busybox has no chrt: the host's, on its pid).
        pid = str(json.loads(t("state", cid).stdout)["pid"])
        fifo = subprocess.run(["chrt", "-f", "-p", "10", pid], capture_output=True, text=True)
        policy = subprocess.run(["chrt", "-p", pid], capture_output=True, text=True).stdout
        seen[t.name] = (v1_read("cpu", cid, "cpu.rt_period_us"), v1_read("cpu", cid, "cpu.rt_runtime_us"),
                        fifo.returncode, "SCHED_FIFO" in policy)
        t("delete", "--force", cid)
    assert seen["cloison"] == seen["runc"] == ("1000000", "20000", 0, True), seen
    if os.path.exists(os.path.join(V1, "cpu", "cpu.idle")):
        ours = tools[0]
        cid = ours.new_id()
        d = str(tmp_path / "bundle-idle")
        runc_spec_bundle(d, busybox_rootfs, ["sleep", "60"], edit=lambda cfg: cfg["linux"].update(
            cgroupsPath="/" + cid, resources={"cpu": {"idle": 1}}))
        ours("run", "-d", "--bundle", d, cid)
        assert v1_read("cpu", cid, "cpu.idle") == "1"
        ours("update", "--cpu-idle", "0", cid)
        assert v1_read("cpu", cid, "cpu.idle") == "0"
        ours("delete", "--force", cid)


def test_device_path_non_canonical_is_cleaned(tools, tmp_path, busybox_rootfs):
    """linux.devices[].path "/dev/mynull/" or "//dev/./x/../mynull2": the
    node made at the clean path, as runc (filepath.Clean) does, and no
    directory left half-made."""
    def edit(cfg):
        cfg["linux"]["devices"] = [
            {"path": "/dev/mynull/", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666},
            {"path": "//dev/./x/../mynull2", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640}]
    r = run_both(tools, tmp_path, busybox_rootfs, ["sh", "-c", "stat -c '%n %F %a %t:%T' /dev/mynull /dev/mynull2; "
                                                   "ls -d /dev/x 2>&1 | head -1; echo hi > /dev/mynull"], edit)
    assert r["runc"].returncode == 0, r["runc"].stderr
    assert r["cloison"].returncode == 0, r["cloison"].stderr
    assert r["cloison"].stdout == r["runc"].stdout
    assert "/dev/mynull character special file 666 1:3" in r["cloison"].stdout
    assert "/dev/mynull2 character special file 640 1:3" in r["cloison"].stdout


def test_device_path_naming_the_root_is_refused(tools, tmp_path, busybox_rootfs):
    ours = tools[0]
    d = str(tmp_path / "b")
    runc_spec_bundle(d, busybox_rootfs, ["true"], edit=lambda cfg: cfg["linux"].update(
        devices=[{"path": "/dev/..", "type": "c", "major": 1, "minor": 3}]))
    cid = ours.new_id()
    p = ours("create", "--bundle", d, cid, check=False)
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert "linux.devices[0].path: `/dev/..` names no file" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(ours.root, cid)) and cgroup_dirs(cid) == []


BAD_SCHEDULERS = [
    ({"policy": "SCHED_FIFO"}, "priority: must be between 1 and 99"),
    ({"policy": "SCHED_RR", "priority": 100}, "priority: must be between 1 and 99"),
    ({"policy": "SCHED_OTHER", "priority": 5}, "priority: is for SCHED_FIFO and SCHED_RR only"),
    ({"policy": "SCHED_BATCH", "nice": 20}, "nice: must be between -20 and 19"),
    ({"policy": "SCHED_OTHER", "runtime": 10000}, "runtime, deadline and period are for SCHED_DEADLINE only"),
    ({"policy": "SCHED_DEADLINE", "runtime": 100, "deadline": 1000000}, "runtime: must be at least 1024 ns"),
    ({"policy": "SCHED_DEADLINE", "runtime": 2000000, "deadline": 1000000}, "deadline: must be at least the runtime"),
    ({"policy": "SCHED_DEADLINE", "runtime": 100000, "deadline": 1000000, "period": 500000},
     "period: must be at least the deadline"),
    ({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_RECLAIM"]}, "is for SCHED_DEADLINE only"),
    ({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_UTIL_CLAMP_MIN"]}, "needs clamp values"),
    ({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_NOPE"]}, "flags[0]: unknown flag"),
    ({"policy": "SCHED_NOPE"}, "unknown policy `SCHED_NOPE`"),
]


@pytest.mark.parametrize("sched,message", BAD_SCHEDULERS, ids=[str(i) for i in range(len(BAD_SCHEDULERS))])
def test_scheduler_invalid_refused_before_anything_exists(tools, tmp_path, busybox_rootfs, sched, message):
    assert_refused_leaving_nothing(tools[0], tmp_path, busybox_rootfs,
                                   lambda cfg: cfg["process"].update(scheduler=sched),
                                   ["process.scheduler", message])


def assert_refused_leaving_nothing(ours, tmp_path, rootfs, edit, parts):
    """`run` of a bundle made with `edit` fails with one line holding every
    one of `parts`, and leaves no state and no cgroup."""
    d = str(tmp_path / "b")
    runc_spec_bundle(d, rootfs, ["true"], edit=edit)
    cid = ours.new_id()
    p = ours("run", "--bundle", d, cid, check=False)
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert all(part in p.stderr for part in parts), p.stderr
    assert not os.path.exists(os.path.join(ours.root, cid)) and cgroup_dirs(cid) == []


@pytest.mark.parametrize("sched,shown", [
    ({"policy": "SCHED_BATCH", "nice": 5}, "SCHED_BATCH"),
    ({"policy": "SCHED_IDLE"}, "SCHED_IDLE"),
    ({"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}, "SCHED_FIFO|SCHED_RESET_ON_FORK"),
    ({"policy": "SCHED_RR", "priority": 3}, "SCHED_RR"),
])
def test_scheduler_applied(tools, tmp_path, busybox_rootfs, sched, shown):
    """runc 1.1 has no process.scheduler (1.2 has): ours only, seen from
    the host with chrt."""
    ours = tools[0]
    cid = ours.new_id()
    d = str(tmp_path / "b")

    def edit(cfg):
        cfg["process"]["scheduler"] = sched
        cfg["linux"]["cgroupsPath"] = "/" + cid
        if os.path.exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"):  # v1 real-time group scheduling
            cfg["linux"]["resources"]["cpu"] = {"realtimeRuntime": 10000, "realtimePeriod": 1000000}
    runc_spec_bundle(d, busybox_rootfs, ["sleep", "30"], edit=edit)
    ours("run", "-d", "--bundle", d, cid)
    pid = str(json.loads(ours("state", cid).stdout)["pid"])
    out = subprocess.run(["chrt", "-p", pid], capture_output=True, text=True).stdout
    assert "policy: %s" % shown in out, out
    if "nice" in sched:
        assert open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[16] == str(sched["nice"])


@pytest.mark.parametrize("policy,shown", [
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0"}, "interleave:0"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "bind=static:0"),
    ({"mode": "MPOL_PREFERRED", "nodes": "0"}, "prefer:0"),
    ({"mode": "MPOL_DEFAULT"}, "default"),
])
def test_memory_policy_applied(tools, tmp_path, busybox_rootfs, policy, shown):
    """linux.memoryPolicy (runtime-spec 1.3; runc 1.1 has none): the
    container's processes run under it (/proc/self/numa_maps)."""
    if not os.path.exists("/proc/self/numa_maps"):
        pytest.skip("kernel without NUMA")
    ours = tools[0]
    d = str(tmp_path / "b")
    runc_spec_bundle(d, busybox_rootfs, ["sh", "-c", "head -1 /proc/self/numa_maps"],
                     edit=lambda cfg: cfg["linux"].update(memoryPolicy=policy))
    out = ours("run", "--bundle", d, ours.new_id()).stdout
    assert out.split()[1] == shown, out


@pytest.mark.parametrize("policy,message", [
    ({"mode": "MPOL_NOPE"}, "mode: unknown mode `MPOL_NOPE`"),
    ({"mode": "MPOL_DEFAULT", "nodes": "0"}, "nodes: must be empty for MPOL_DEFAULT"),
    ({"mode": "MPOL_BIND"}, "nodes: MPOL_BIND needs at least one node"),
    ({"mode": "MPOL_BIND", "nodes": "0-x"}, "is not a node list"),
    ({"mode": "MPOL_BIND", "nodes": "63"}, "names a node that is not online"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]},
     "exclude each other"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}, "is for MPOL_BIND"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NOPE"]}, "unknown flag"),
])
def test_memory_policy_invalid_refused(tools, tmp_path, busybox_rootfs, policy, message):
    assert_refused_leaving_nothing(tools[0], tmp_path, busybox_rootfs,
                                   lambda cfg: cfg["linux"].update(memoryPolicy=policy),
                                   ["linux.memoryPolicy", message])


def test_intel_rdt_refused_clearly_without_resctrl(tools, tmp_path, busybox_rootfs):
    if os.path.exists("/sys/fs/resctrl/info"):
        pytest.skip("host has resctrl")
    r = run_both(tools, tmp_path, busybox_rootfs, ["true"],
                 lambda cfg: cfg["linux"].update(intelRdt={"closID": "x", "l3CacheSchema": "L3:0=f"}))
    assert r["runc"].returncode != 0  # runc: "Intel RDT is not supported or enabled"
    p = r["cloison"]
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert "linux.intelRdt: this host has no resctrl filesystem" in p.stderr, p.stderr


def test_loopback_up_in_own_network_namespace(tools, tmp_path, busybox_rootfs):
    """As runc (and crun): `lo` of a network namespace the runtime makes is
    up when the process starts, so 127.0.0.1 answers."""
    r = run_both(tools, tmp_path, busybox_rootfs, ["cat", "/sys/class/net/lo/flags"])
    assert r["runc"].returncode == 0, r["runc"].stderr
    assert r["cloison"].returncode == 0, r["cloison"].stderr
    assert r["cloison"].stdout == r["runc"].stdout
    assert int(r["cloison"].stdout, 16) & 1, r["cloison"].stdout  # IFF_UP


@pytest.fixture
def test_netns():
    """A network namespace of the test's own, with two veth pairs in it:
    the interfaces lent to containers (never the host's).  (No dummy: some
    of our kernels lack the module.)"""
    name = unique_id("runtime-nd")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        run = ["ip", "-n", name, "link", "add"]
        subprocess.run(run + ["nd-a0", "type", "veth", "peer", "name", "nd-a1"], check=True)
        subprocess.run(run + ["nd-b0", "type", "veth", "peer", "name", "nd-b1"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def links(netns):
    out = subprocess.run(["ip", "-n", netns, "-o", "link", "show"], capture_output=True, text=True).stdout
    return sorted(l.split(":")[1].strip().split("@")[0] for l in out.splitlines())


def test_net_devices_moved_in_and_back(tools, tmp_path, busybox_rootfs, test_netns):
    """linux.netDevices (spec 1.2; runc 1.1 has none): two veth ends go
    into the container (one renamed), and back under their own names on
    delete.  The runtime runs inside the test's namespace."""
    ours = tools[0]
    d = str(tmp_path / "b")
    runc_spec_bundle(d, busybox_rootfs, ["sleep", "30"], edit=lambda cfg: cfg["linux"].update(
        netDevices={"nd-a1": {"name": "eth7"}, "nd-b1": {}}))
    cid = ours.new_id()
    enter = ["nsenter", "--net=/run/netns/" + test_netns, ours.argv0, "--root", ours.root, "--log", ours.log]
    subprocess.run(enter + ["run", "-d", "--bundle", d, cid], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, timeout=60)
    try:
        inside = subprocess.run(enter + ["exec", cid, "ip", "-o", "link", "show"], capture_output=True,
                                text=True, timeout=60).stdout
        assert "eth7" in inside and "nd-b1" in inside, inside
        assert links(test_netns) == ["lo", "nd-a0", "nd-b0"]
    finally:
        subprocess.run(enter + ["delete", "--force", cid], check=True, timeout=60)
    assert links(test_netns) == ["lo", "nd-a0", "nd-a1", "nd-b0", "nd-b1"]


def test_net_devices_invalid_refused(tools, tmp_path, busybox_rootfs):
    for devs, message in (({"nd-none-here": {}}, "no interface `nd-none-here` here"),
                          ({"lo": {"name": "a/b"}}, "`a/b` is not an interface name")):
        assert_refused_leaving_nothing(tools[0], tmp_path / message[:5], busybox_rootfs,
                                       lambda cfg: cfg["linux"].update(netDevices=devs),
                                       ["linux.netDevices", message])


def test_sysctls_runc_accepts(tools, tmp_path, busybox_rootfs):
    """kernel.domainname (uts), net.* (network), kernel.shm*/msg*/sem and
    fs.mqueue.* (ipc): set inside, as runc does; a host-wide one refused by
    both.  kernel.hostname: runc 1.1 always refuses it (the OCI hostname
    field exists); crun and we accept it unless that field is set too."""
    sysctls = {"kernel.domainname": "dom.example",
               "net.ipv4.ip_forward": "1", "net.ipv4.ping_group_range": "0 1000",
               "kernel.shmmax": "123456789", "kernel.msgmax": "9000", "kernel.sem": "250 32000 32 128",
               "fs.mqueue.msg_max": "20"}
    show = "; ".join("cat /proc/sys/%s" % k.replace(".", "/") for k in sysctls)
    r = run_both(tools, tmp_path, busybox_rootfs, ["sh", "-c", show],
                 lambda cfg: cfg["linux"].update(sysctl=sysctls))
    assert r["runc"].returncode == 0, r["runc"].stderr
    assert r["cloison"].returncode == 0, r["cloison"].stderr
    assert r["cloison"].stdout == r["runc"].stdout
    lines = [" ".join(l.split()) for l in r["cloison"].stdout.splitlines()]
    assert lines == [" ".join(v.split()) for v in sysctls.values()], lines
    r = run_both(tools, tmp_path / "host", busybox_rootfs, ["true"],
                 lambda cfg: cfg["linux"].update(sysctl={"vm.swappiness": "10"}))
    assert r["runc"].returncode != 0 and r["cloison"].returncode == 1
    assert "linux.sysctl.vm.swappiness: not namespaced" in r["cloison"].stderr, r["cloison"].stderr
    # kernel.hostname: ours only.
    ours = tools[0]
    for name, with_field in (("h1", False), ("h2", True)):
        d = str(tmp_path / name)

        def edit(cfg):
            if not with_field:
                del cfg["hostname"]
            cfg["linux"]["sysctl"] = {"kernel.hostname": "from-sysctl"}
        runc_spec_bundle(d, busybox_rootfs, ["hostname"], edit=edit)
        p = ours("run", "--bundle", d, ours.new_id(), check=False)
        if with_field:
            assert p.returncode == 1
            assert "linux.sysctl.kernel.hostname: conflicts with the OCI `hostname` field" in p.stderr
        else:
            assert p.returncode == 0 and p.stdout == "from-sysctl\n", p.stderr


def mount_propagation(mountinfo, target):
    """The propagation of `target` in a mountinfo text: a sorted tuple of
    shared / master / unbindable (peer numbers vary between runs)."""
    for line in mountinfo.splitlines():
        f = line.split()
        if f[4] == target:
            opt = f[6:f.index("-")]
            return tuple(sorted(o.split(":")[0] for o in opt)) or ("private",)
    return None


@pytest.mark.parametrize("root_prop", ["shared", "slave", "private", "unbindable", "rshared", "rslave",
                                       "rprivate"])
def test_rootfs_and_mount_propagation(tools, tmp_path, busybox_rootfs, root_prop):
    """linux.rootfsPropagation and per-mount propagation options, read from
    /proc/self/mountinfo inside, as under runc."""
    src = tmp_path / "src"
    for n in ("a", "b", "c", "d"):
        (src / n).mkdir(parents=True, exist_ok=True)

    def edit(cfg):
        cfg["linux"]["rootfsPropagation"] = root_prop
        for n, opt in (("a", "rshared"), ("b", "rslave"), ("c", "rprivate"), ("d", "runbindable")):
            cfg["mounts"].append({"destination": "/mnt/" + n, "type": "bind", "source": str(src / n),
                                  "options": ["rbind", opt]})
    # Make the sources' parent a shared mount, so that slave and shared
    # have a peer to follow.
    subprocess.run(["mount", "--bind", "--make-shared", str(src), str(src)], check=True)
    try:
        r = run_both(tools, tmp_path, busybox_rootfs, ["cat", "/proc/self/mountinfo"], edit)
    finally:
        subprocess.run(["umount", "-l", str(src)], check=False)
    if root_prop == "unbindable":
        # An unbindable / cannot be bound as the root: runc fails too.
        assert r["runc"].returncode != 0
        assert r["cloison"].returncode == 1 and "unbindable" in r["cloison"].stderr, r["cloison"].stderr
        return
    assert r["runc"].returncode == 0, r["runc"].stderr
    assert r["cloison"].returncode == 0, r["cloison"].stderr
    for target in ("/", "/mnt/a", "/mnt/b", "/mnt/c", "/mnt/d"):
        ours = mount_propagation(r["cloison"].stdout, target)
        theirs = mount_propagation(r["runc"].stdout, target)
        assert ours == theirs, (target, ours, theirs)
    assert mount_propagation(r["cloison"].stdout, "/mnt/d") == ("unbindable",)
    assert mount_propagation(r["cloison"].stdout, "/mnt/c") == ("private",)


CAP_NUMBERS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
               "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
               "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
               "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
               "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
               "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
               "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]


def features():
    return json.loads(subprocess.run([binary("cloison-runtime"), "features"], capture_output=True, text=True,
                                     check=True).stdout)


def test_features_superset_of_runcs_where_it_should_be():
    """What runc 1.1 lists, we list too (hooks, mount options, namespaces,
    capabilities, seccomp actions and operators), except the systemd
    cgroup driver, apparmor and selinux, which we report as absent."""
    ours, runc = features(), json.loads(subprocess.run(["runc", "features"], capture_output=True, text=True,
                                                       check=True).stdout)
    assert set(runc["hooks"]) <= set(ours["hooks"])
    assert set(runc["linux"]["namespaces"]) <= set(ours["linux"]["namespaces"])
    assert set(runc["linux"]["capabilities"]) <= set(ours["linux"]["capabilities"])
    for k in ("actions", "operators"):
        assert set(runc["linux"]["seccomp"][k]) <= set(ours["linux"]["seccomp"][k]), k
    assert ours["linux"]["cgroup"]["systemd"] is False
    assert ours["linux"]["apparmor"] == {"enabled": False} and ours["linux"]["selinux"] == {"enabled": False}
    assert ours["linux"]["intelRdt"] == {"enabled": False} and ours["linux"]["netDevices"] == {"enabled": True}


def test_features_listed_are_supported(tools, tmp_path, busybox_rootfs):
    """Every hook, mount option, namespace, capability, seccomp action and
    operator, and memory policy mode and flag that `features` lists is
    accepted and works in a container (one run per family)."""
    f = features()
    ours = tools[0]
    marks = tmp_path / "marks"
    marks.mkdir()

    def run(name, edit, args=("true",)):
        d = str(tmp_path / name)
        runc_spec_bundle(d, busybox_rootfs, list(args), edit=edit)
        p = ours("run", "--bundle", d, ours.new_id(), check=False)
        assert p.returncode == 0, (name, p.stderr)
        return p

    # Hooks: each writes its mark (in-container ones into a bound dir).
    def hooks(cfg):
        cfg["hooks"] = {h: [{"path": "/bin/sh", "args": ["sh", "-c", "touch %s/%s || touch /marks/%s" % (marks, h, h)]}]
                        for h in f["hooks"]}
        cfg["mounts"].append({"destination": "/marks", "type": "bind", "source": str(marks), "options": ["rbind"]})
        cfg["root"]["readonly"] = False
    run("hooks", hooks)
    assert sorted(os.listdir(str(marks))) == sorted(f["hooks"])

    # Mount options: a tmpfs (or a bind for the bind-only ones) per option.
    def mounts(cfg):
        for i, o in enumerate(f["mountOptions"]):
            if o in ("bind", "rbind", "remount", "tmpcopyup"):
                m = {"type": "bind", "source": str(marks), "options": [o] if o != "remount" else ["bind", "remount"]}
                if o == "tmpcopyup":
                    m = {"type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}
            else:
                m = {"type": "tmpfs", "source": "tmpfs", "options": [o]}
            m["destination"] = "/opt%d" % i
            cfg["mounts"].append(m)
        cfg["root"]["readonly"] = False
    run("mounts", mounts)

    # Namespaces: all at once (user with a mapping of root).
    def namespaces(cfg):
        cfg["linux"]["namespaces"] = [{"type": n} for n in f["linux"]["namespaces"]]
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
        cfg["mounts"] = [dict(m, options=[o for o in m.get("options", []) if o != "gid=5"]) for m in cfg["mounts"]]
        del cfg["linux"]["resources"]
    out = run("namespaces", namespaces, ["sh", "-c", "ls /proc/self/ns | wc -l"]).stdout
    assert int(out) >= len(f["linux"]["namespaces"])

    # Capabilities: all of them in the bounding set; in the others, those
    # this host's root holds (6.18 hosts run root without CAP_SYS_RESOURCE).
    bnd = int([l for l in open("/proc/self/status") if l.startswith("CapBnd")][0].split()[1], 16)
    names = f["linux"]["capabilities"]
    held = [c for c in names if bnd >> CAP_NUMBERS.index(c) & 1]

    def caps(cfg):
        cfg["process"]["capabilities"] = {s: held for s in ("effective", "permitted", "inheritable", "ambient")}
        cfg["process"]["capabilities"]["bounding"] = names
    out = run("caps", caps, ["grep", "CapAmb", "/proc/self/status"]).stdout
    assert int(out.split()[1], 16) == sum(1 << CAP_NUMBERS.index(c) for c in held)

    # Seccomp: one rule per action and per operator, on syscalls the
    # container does not make.
    def seccomp(cfg):
        actions = [a for a in f["linux"]["seccomp"]["actions"] if a not in ("SCMP_ACT_ALLOW", "SCMP_ACT_NOTIFY")]
        rare = ["acct", "swapon", "swapoff", "reboot", "kexec_load", "init_module", "delete_module", "pivot_root"]
        syscalls = [{"names": [rare[i]], "action": a} for i, a in enumerate(actions)]
        for i, op in enumerate(f["linux"]["seccomp"]["operators"]):
            syscalls.append({"names": ["setns"], "action": "SCMP_ACT_ERRNO",
                             "args": [{"index": i % 6, "value": 12345, "valueTwo": 12345 if "MASKED" in op else 0,
                                       "op": op}]})
        cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls}
    run("seccomp", seccomp)

    # Memory policy: each mode (nodes where it needs some) and each flag.
    if os.path.exists("/proc/self/numa_maps"):
        mp = f["linux"]["memoryPolicy"]
        for mode in mp["modes"]:
            policy = {"mode": mode}
            if mode not in ("MPOL_DEFAULT", "MPOL_LOCAL"):
                policy["nodes"] = "0"
            run("mp-" + mode, lambda cfg: cfg["linux"].update(memoryPolicy=policy))
        for flag in mp["flags"]:
            run("mpf-" + flag, lambda cfg: cfg["linux"].update(memoryPolicy={"mode": "MPOL_BIND", "nodes": "0",
                                                                             "flags": [flag]}))


def test_in_container_hooks_env_and_cwd(tools, tmp_path, busybox_rootfs):
    """createContainer and startContainer hooks without `env` get the
    container process's environment (startContainer with HOME too), never
    the runtime's; createContainer runs from the root (not yet pivoted),
    startContainer from process.cwd; as under runc."""
    seen = {}
    for t in tools:
        out = tmp_path / ("out-" + t.name)
        out.mkdir()

        def edit(cfg):
            cfg["root"]["readonly"] = False
            cfg["process"]["cwd"] = "/tmp"
            cfg["hooks"] = {
                "createContainer": [hook(tmp_path, "env | sort > %s/env; pwd -P > %s/pwd" % (out, out))],
                "startContainer": [hook(tmp_path, "env | sort > /tmp/env; pwd > /tmp/pwd")]}
        d = str(tmp_path / ("bundle-" + t.name))
        runc_spec_bundle(d, busybox_rootfs, ["true"], edit=edit, copy_rootfs=True)
        t("run", "--bundle", d, t.new_id(), env=dict(os.environ, DROPIN_MARK="runtime-env"))
        strip = lambda lines: [l for l in lines if not l.startswith(("PWD=", "SHLVL=", "OLDPWD="))]  # the shell's
        seen[t.name] = (strip(open(str(out / "env")).read().splitlines()),
                        open(str(out / "pwd")).read().strip() == os.path.realpath(os.path.join(d, "rootfs")),
                        strip(open(os.path.join(d, "rootfs", "tmp", "env")).read().splitlines()),
                        open(os.path.join(d, "rootfs", "tmp", "pwd")).read().strip())
    assert seen["cloison"] == seen["runc"], seen
    assert not any("DROPIN_MARK" in l for l in seen["cloison"][0] + seen["cloison"][2])
    assert "HOME=/root" in seen["cloison"][2] and seen["cloison"][3] == "/tmp"
