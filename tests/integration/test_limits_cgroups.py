# SPDX-License-Identifier: Apache-2.0
"""cgroup limits through the real runtime on this host (hybrid: v1
controllers + a unified mount with hugetlb only): memory (down to 1 MiB),
pids, cpu, cpuset, devices, freeze, update, and nothing left behind.  The
same logic under pure cgroup v2 runs in tests/lab/test_lab_limits_v2.py."""
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

V1 = "/sys/fs/cgroup"
RUNTIME = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "build", "src", "cli", "cloison-runtime")


def hybrid_or_v1():
    return os.path.isdir(os.path.join(V1, "memory"))


pytestmark = pytest.mark.skipif(not hybrid_or_v1(), reason="host has no cgroup v1 memory hierarchy "
                                "(cgroup v2 is covered by tests/lab/test_lab_limits_v2.py)")


class Runtime:
    """cloison-runtime with a private --root; tracks containers to delete."""

    def __init__(self, root):
        if not os.path.exists(RUNTIME):
            pytest.fail("%s is not built: run scripts/build.sh" % RUNTIME)
        self.root = root
        self.ids = []

    def __call__(self, *args, check=False, timeout=30, input=None):
        # Files, not pipes: a detached container keeps its stdio open.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([RUNTIME, "--root", self.root] + list(args),
                               stdout=out, stderr=err, text=True, timeout=timeout, input=input,
                               stdin=None if input is not None else subprocess.DEVNULL)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError("cloison-runtime %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr))
        return p

    def new_id(self):
        cid = "limits-" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        return cid

    def cleanup(self):
        for cid in self.ids:
            self("delete", "--force", cid)


@pytest.fixture
def rt(tmp_path):
    r = Runtime(str(tmp_path / "state"))
    yield r
    r.cleanup()


def resources(res, cgroups_path=None, extra=None):
    def edit(cfg):
        cfg["linux"]["resources"] = res
        if cgroups_path:
            cfg["linux"]["cgroupsPath"] = cgroups_path
        if extra:
            extra(cfg)
    return edit


def cg_file(controller, path, name):
    return os.path.join(V1, controller, path.lstrip("/"), name)


def read(path):
    with open(path) as f:
        return f.read().strip()


def assert_no_cgroup(path):
    left = [c for c in os.listdir(V1) if os.path.exists(os.path.join(V1, c, path.lstrip("/")))]
    assert left == [], "cgroup %s left in %s" % (path, left)


def test_memory_pids_cpu_files_and_delete_leaves_nothing(rt, bundle):
    cid = rt.new_id()
    path = "/" + cid
    b = bundle(args=["sleep", "30"], config_edit=resources(
        {"memory": {"limit": 33554432, "reservation": 16777216, "swap": 67108864},
         "pids": {"limit": 42},
         "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
         "devices": [{"allow": False, "access": "rwm"}]}, path))
    rt("create", "--bundle", b, cid, check=True)
    assert read(cg_file("memory", path, "memory.limit_in_bytes")) == "33554432"
    assert read(cg_file("memory", path, "memory.soft_limit_in_bytes")) == "16777216"
    if os.path.exists(cg_file("memory", path, "memory.memsw.limit_in_bytes")):
        assert read(cg_file("memory", path, "memory.memsw.limit_in_bytes")) == "67108864"
    assert read(cg_file("pids", path, "pids.max")) == "42"
    assert read(cg_file("cpu", path, "cpu.shares")) == "512"
    assert read(cg_file("cpu", path, "cpu.cfs_quota_us")) == "20000"
    assert read(cg_file("cpu", path, "cpu.cfs_period_us")) == "100000"
    assert read(cg_file("cpuset", path, "cpuset.cpus")) == "0"
    devices = read(cg_file("devices", path, "devices.list")).splitlines()
    assert "c 1:3 rwm" in devices and "a *:* rwm" not in devices
    state = json.loads(rt("state", cid, check=True).stdout)
    procs = read(cg_file("memory", path, "cgroup.procs")).split()
    assert str(state["pid"]) in procs
    # Also joined in the other hierarchies (freezer, name=systemd, unified).
    assert str(state["pid"]) in read(cg_file("freezer", path, "cgroup.procs")).split()
    if os.path.exists(os.path.join(V1, "unified", path.lstrip("/"))):
        assert str(state["pid"]) in read(cg_file("unified", path, "cgroup.procs")).split()
    rt("start", cid, check=True)
    rt("delete", "--force", cid, check=True)
    assert_no_cgroup(path)


def blkio_weight_file():
    """The weight file this host's blkio controller has: BFQ's, CFQ's
    (kernels before 5.0), or None (a 6.x kernel without BFQ)."""
    for name in ("blkio.bfq.weight", "blkio.weight"):
        if os.path.exists(os.path.join(V1, "blkio", name)):
            return name
    return None


def test_block_io_weight(rt, bundle, tmp_path):
    cid = rt.new_id()
    path = "/" + cid
    b = bundle(args=["true"], config_edit=resources({"blockIO": {"weight": 300}}, path))
    name = blkio_weight_file()
    p = rt("create", "--bundle", b, cid)
    if name is None:
        # No weight-aware I/O scheduler: a one-line error naming the field,
        # nothing created.  runc fails here too (ENOENT on blkio.bfq.weight).
        assert p.returncode != 0
        assert p.stderr.count("\n") == 1 and "linux.resources.blockIO.weight" in p.stderr, p.stderr
        assert "blkio.bfq.weight" in p.stderr and "not supported" in p.stderr, p.stderr
        assert_no_cgroup(path)
        assert rt("state", cid).returncode != 0
        runc = subprocess.run(["runc", "--root", str(tmp_path / "runc"), "run", "--bundle", b,
                               "runtime-" + cid], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=60)
        assert runc.returncode != 0 and "blkio" in runc.stderr, runc.stderr
        return
    assert p.returncode == 0, p.stderr
    assert read(cg_file("blkio", path, name)).split()[-1] == "300"
    rt("delete", "--force", cid, check=True)
    assert_no_cgroup(path)


def test_limits_seen_from_inside(rt, bundle):
    cid = rt.new_id()
    b = bundle(args=["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"],
               config_edit=resources({"memory": {"limit": 16777216}, "pids": {"limit": 9}}, extra=lambda cfg:
               cfg["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                                     "options": ["ro", "nosuid", "noexec", "nodev"]})))
    p = rt("run", "--bundle", b, cid)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["16777216", "9"]


@pytest.fixture
def public_rootfs(busybox_rootfs):
    """A copy of the rootfs that the mapped root (uid 100000) can reach
    (pytest's temp dirs are 0700)."""
    d = tempfile.mkdtemp(prefix="limits-userns-")
    os.chmod(d, 0o755)
    shutil.copytree(busybox_rootfs, os.path.join(d, "rootfs"), symlinks=True)
    yield os.path.join(d, "rootfs")
    shutil.rmtree(d)


def test_cgroup_mount_in_a_user_namespace_binds_the_containers_own_cgroup(rt, bundle, public_rootfs):
    """v1 cannot be mounted from a user namespace: the container's own
    directories are bound instead, as runc does."""
    def edit(cfg):
        cfg["linux"]["resources"] = {"memory": {"limit": 33554432}}
        cfg["linux"]["namespaces"] = [{"type": t} for t in ("pid", "mount", "ipc", "uts", "user")]
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/sys"] + [
            {"destination": "/sys", "type": "bind", "source": "/sys",
             "options": ["rbind", "ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]}]
    cid = rt.new_id()
    b = bundle(args=["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"], config_edit=edit)
    with open(os.path.join(b, "config.json")) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = public_rootfs   # the fixture sets its own path after config_edit
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(cfg, f)
    p = rt("run", "--bundle", b, cid)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "33554432"


def test_one_mib_memory_limit_runs_true(rt, bundle):
    cid = rt.new_id()
    b = bundle(args=["/bin/true"], config_edit=resources({"memory": {"limit": 1048576, "swap": 1048576}}))
    p = rt("run", "--bundle", b, cid)
    assert p.returncode == 0, p.stderr


def test_memory_limit_kills_a_hog(rt, bundle):
    cid = rt.new_id()
    # busybox sh holds the 64 MiB string in memory: far above 8 MiB.
    b = bundle(args=["sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived"],
               config_edit=resources({"memory": {"limit": 8388608, "swap": 8388608}}))
    p = rt("run", "--bundle", b, cid, timeout=60)
    assert "survived" not in p.stdout
    assert p.returncode != 0


def test_pids_limit_stops_forks(rt, bundle):
    cid = rt.new_id()
    b = bundle(args=["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait; echo end"],
               config_edit=resources({"pids": {"limit": 4}}))
    p = rt("run", "--bundle", b, cid, timeout=60)
    assert "can't fork" in p.stderr + p.stdout or "Resource temporarily unavailable" in p.stderr + p.stdout


TUN = ["mknod", "/dev/tun", "c", "10", "200"]


def with_mknod(cfg):
    for k in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][k].append("CAP_MKNOD")


@pytest.mark.parametrize("rules,opens", [
    ([{"allow": False, "access": "rwm"}], False),
    ([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"}], True),
    ([{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 10, "access": "r"}], False),
])
def test_device_rules(rt, bundle, rules, opens):
    cid = rt.new_id()
    b = bundle(args=["sh", "-c", "mknod /dev/tun c 10 200 && cat /dev/tun; echo status=$?"],
               config_edit=resources({"devices": rules}, extra=with_mknod))
    p = rt("run", "--bundle", b, cid)
    out = p.stdout + p.stderr
    assert "status=" in out, out
    if opens:
        # The device opens; reading an unattached tun fails with EBADFD.
        assert "Operation not permitted" not in out, out
    else:
        assert "Operation not permitted" in out, out


def test_pause_resume_freezes(rt, bundle):
    cid = rt.new_id()
    path = "/" + cid
    b = bundle(args=["sleep", "30"], config_edit=resources({"pids": {"limit": 10}}, path))
    rt("run", "--detach", "--bundle", b, cid, check=True)
    rt("pause", cid, check=True)
    assert read(cg_file("freezer", path, "freezer.state")) == "FROZEN"
    assert json.loads(rt("state", cid, check=True).stdout)["status"] == "paused"
    rt("resume", cid, check=True)
    assert read(cg_file("freezer", path, "freezer.state")) == "THAWED"
    rt("kill", cid, "KILL", check=True)
    rt("delete", "--force", cid, check=True)
    assert_no_cgroup(path)


def test_update_resources(rt, bundle, tmp_path):
    cid = rt.new_id()
    path = "/" + cid
    b = bundle(args=["sleep", "30"], config_edit=resources({"memory": {"limit": 33554432}, "pids": {"limit": 10}}, path))
    rt("run", "--detach", "--bundle", b, cid, check=True)
    upd = tmp_path / "res.json"
    upd.write_text(json.dumps({"memory": {"limit": 67108864, "swap": 134217728}, "pids": {"limit": 20},
                               "cpu": {"quota": 50000, "period": 100000}}))
    rt("update", "--resources", str(upd), cid, check=True)
    assert read(cg_file("memory", path, "memory.limit_in_bytes")) == "67108864"
    assert read(cg_file("pids", path, "pids.max")) == "20"
    assert read(cg_file("cpu", path, "cpu.cfs_quota_us")) == "50000"
    p = rt("update", "--resources", "-", cid, input=json.dumps({"memory": {"limit": "lots"}}))
    assert p.returncode != 0
    assert "memory.limit: expected an integer, got string" in p.stderr
    rt("delete", "--force", cid, check=True)
    assert_no_cgroup(path)


def test_relative_cgroups_path_nests_under_the_callers_cgroup(rt, bundle):
    cid = rt.new_id()
    rel = "limits-rel/" + cid
    b = bundle(args=["sleep", "30"], config_edit=resources({"pids": {"limit": 10}}, rel))
    rt("create", "--bundle", b, cid, check=True)
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrl, p = line.strip().split(":", 2)
            own[ctrl] = p
    mem = os.path.join(V1, "memory", own["memory"].lstrip("/"), rel)
    assert os.path.isdir(mem), mem
    rt("delete", "--force", cid, check=True)
    assert not os.path.exists(mem)
    assert not os.path.exists(os.path.dirname(mem)), "the parent we made is removed too"


@pytest.mark.parametrize("edit,message", [
    (lambda c: c["linux"].update(resources={"memory": {"limit": "1M"}}),
     "linux.resources.memory.limit: expected an integer, got string"),
    (lambda c: c["linux"].update(resources={"devices": [{"allow": False}, {"allow": True, "type": "q"}]}),
     "linux.resources.devices[1].type: unknown device type `q`"),
    (lambda c: c["linux"].update(resources={"memory": {"limit": 8388608, "swap": 4194304}}),
     "linux.resources.memory.swap"),
    (lambda c: c["linux"].update(cgroupsPath="system.slice:cloison:x"), "--systemd-cgroup"),
])
def test_bad_resources_name_the_field_and_leave_nothing(rt, bundle, edit, message):
    cid = rt.new_id()
    b = bundle(config_edit=edit)
    p = rt("run", "--bundle", b, cid)
    assert p.returncode != 0
    assert message in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert json.loads(rt("list", "--format", "json").stdout or "[]") == []
    assert_no_cgroup("/" + cid)
