# SPDX-License-Identifier: Apache-2.0
"""Bad input to cloison-runtime create/run: one line naming the field or
path (with line/column for JSON syntax), a non-zero exit, and nothing
left behind: no state dir, cgroup, mount or process."""
import json
import os

import pytest

from test_runtime_util import Runtime, assert_nothing_left, unique_id


@pytest.fixture
def rt(tmp_path):
    return Runtime(tmp_path / "state")


def set_path(cfg, path, value):
    node = cfg
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


CASES = {
    "uid_wrong_type": (lambda c: set_path(c, ["process", "user", "uid"], "zero"),
                       "process.user.uid: expected an unsigned integer, got string"),
    "args_wrong_type": (lambda c: set_path(c, ["process", "args"], "sh"),
                        "process.args: expected an array, got string"),
    "unknown_namespace": (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}),
                          "linux.namespaces[6].type: unknown namespace `bogus`"),
    "mapping_without_userns": (lambda c: set_path(c, ["linux", "uidMappings"],
                                                  [{"containerID": 0, "hostID": 1000, "size": 1}]),
                               "linux.uidMappings: mappings need a `user` namespace"),
    "mapping_size_zero": (lambda c: (c["linux"]["namespaces"].append({"type": "user"}),
                                     set_path(c, ["linux", "uidMappings"],
                                              [{"containerID": 0, "hostID": 100000, "size": 0}])),
                          "linux.uidMappings[0].size: must be at least 1"),
    "mapping_wrong_type": (lambda c: (c["linux"]["namespaces"].append({"type": "user"}),
                                      set_path(c, ["linux", "uidMappings"],
                                               [{"containerID": 0, "hostID": "x", "size": 1}])),
                           "linux.uidMappings[0].hostID: expected an unsigned integer, got string"),
    "bad_seccomp_action": (lambda c: set_path(c, ["linux", "seccomp"],
                                              {"defaultAction": "SCMP_ACT_ALLOW",
                                               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_FOO"}]}),
                           "linux.seccomp.syscalls[0].action"),
    "unknown_rlimit": (lambda c: set_path(c, ["process", "rlimits"], [{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]),
                       "process.rlimits[0].type: unknown rlimit `RLIMIT_BOGUS`"),
    "bad_io_class": (lambda c: set_path(c, ["process", "ioPriority"], {"class": "IOPRIO_CLASS_FAST", "priority": 1}),
                     "process.ioPriority.class: unknown class `IOPRIO_CLASS_FAST`"),
    "time_offsets_without_ns": (lambda c: set_path(c, ["linux", "timeOffsets"], {"boottime": {"secs": 1}}),
                                "linux.timeOffsets: needs a `time` namespace"),
    "bad_sched_policy": (lambda c: set_path(c, ["process", "scheduler"], {"policy": "SCHED_FAST"}),
                         "process.scheduler.policy: unknown policy `SCHED_FAST`"),
    "idmapped_mount": (lambda c: c["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/tmp",
                                                     "options": ["bind"], "uidMappings": []}),
                       "idmapped mounts are not supported"),
    "host_sysctl": (lambda c: set_path(c, ["linux", "sysctl"], {"vm.swappiness": "10"}),
                    "linux.sysctl.vm.swappiness: not namespaced"),
    "relative_cwd": (lambda c: set_path(c, ["process", "cwd"], "tmp"),
                     "process.cwd: must be an absolute path"),
    "missing_rootfs": (lambda c: set_path(c, ["root", "path"], "/nonexistent-cloison-rootfs"),
                       "root.path: `/nonexistent-cloison-rootfs`: No such file or directory"),
    "bad_capability": (lambda c: c["process"]["capabilities"]["bounding"].append("CAP_BOGUS"),
                       "CAP_BOGUS"),
    "bad_memory_type": (lambda c: set_path(c, ["linux", "resources", "memory"], {"limit": "lots"}),
                        "linux.resources.memory.limit"),
    "missing_program": (lambda c: set_path(c, ["process", "args"], ["/no/such/program"]),
                        "exec `/no/such/program`: No such file or directory"),
    # A missing cwd is created (as runc does); one under a file cannot be.
    "cwd_under_file": (lambda c: set_path(c, ["process", "cwd"], "/etc/passwd/dir"),
                       "process.cwd: open `/etc/passwd` in the container root: Not a directory"),
}


def check_failure(p, want):
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert want in lines[0], lines[0]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("cmd", ["create", "run"])
def test_bad_config(rt, bundle, case, cmd):
    edit, want = CASES[case]
    b = bundle()
    path = os.path.join(b, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    edit(cfg)
    with open(path, "w") as f:
        json.dump(cfg, f)
    cid = unique_id("bad")
    try:
        check_failure(rt(cmd, "--bundle", b, cid, check=False), want)
        assert_nothing_left(rt, cid, b)
    finally:
        rt.cleanup(cid)


def test_missing_config(rt, tmp_path):
    b = tmp_path / "empty"
    b.mkdir()
    cid = unique_id("bad")
    check_failure(rt("create", "--bundle", b, cid, check=False),
                  "%s/config.json" % b)
    assert_nothing_left(rt, cid)


def test_malformed_json_has_line_and_column(rt, bundle):
    b = bundle()
    with open(os.path.join(b, "config.json"), "w") as f:
        f.write('{\n  "ociVersion": "1.2.0",\n  "process": {,}\n}\n')
    cid = unique_id("bad")
    check_failure(rt("create", "--bundle", b, cid, check=False), "config.json:3:")
    assert_nothing_left(rt, cid, b)


def test_bundle_not_a_directory(rt, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    cid = unique_id("bad")
    check_failure(rt("create", "--bundle", f, cid, check=False), "bundle `%s`: Not a directory" % f)
    assert_nothing_left(rt, cid)


@pytest.mark.parametrize("cid", ["a/b", "..", "../x", "x/../y", ".hidden"])
def test_bad_id(rt, bundle, cid):
    b = bundle()
    check_failure(rt("create", "--bundle", b, cid, check=False), "container id")
    assert not os.path.exists(rt.root) or os.listdir(rt.root) == []


def test_duplicate_id_leaves_first_intact(rt, bundle):
    b = bundle(args=["sleep", "30"])
    cid = unique_id("dup")
    try:
        rt("create", "--bundle", b, cid)
        first = rt.state(cid)
        check_failure(rt("create", "--bundle", b, cid, check=False), "container `%s` already exists" % cid)
        again = rt.state(cid)
        assert again["pid"] == first["pid"] and again["status"] == "created"
        rt("delete", "--force", cid)
        assert_nothing_left(rt, cid, b)
    finally:
        rt.cleanup(cid)


def test_unknown_container(rt):
    for args in (["state", "nope"], ["start", "nope"], ["kill", "nope"], ["delete", "nope"]):
        check_failure(rt(*args, check=False), "container `nope` does not exist")


def test_bad_exec_process_file(rt, bundle, tmp_path):
    b = bundle(args=["sleep", "30"])
    cid = unique_id("bad")
    proc = tmp_path / "process.json"
    try:
        rt("run", "--detach", "--bundle", b, cid)
        proc.write_text(json.dumps({"args": ["true"], "cwd": "/", "user": {"uid": "root"}}))
        check_failure(rt("exec", "--process", proc, cid, check=False),
                      "`%s`: process.user.uid: expected an unsigned integer, got string" % proc)
        proc.write_text('{"args": ["true"],\n "cwd": }')
        check_failure(rt("exec", "--process", proc, cid, check=False), "%s:2:" % proc)
        check_failure(rt("exec", cid, "/no/such/program", check=False), "/no/such/program")
        pids = json.loads(rt("ps", "--format", "json", cid).stdout)
        assert len(pids) == 1  # nothing left of the failed execs
    finally:
        rt.cleanup(cid)
