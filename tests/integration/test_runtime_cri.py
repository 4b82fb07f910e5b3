# SPDX-License-Identifier: Apache-2.0
"""The Kubernetes path: containerd's CRI plugin drives cloison-runtime.

A containerd started by the test (private socket, root and state, inside a
network namespace of the test's own, where its CNI bridge lives too) has
four runc.v2 runtime handlers: the default one ("runc", BinaryName = our
runtime, as a node switching runtimes would have it), "cloison" (a second
handler for the same binary: what a RuntimeClass names), "crashy" (a
wrapper that is killed -9 in the middle of a create) and "hooked" (a base
runtime spec whose hook holds the runtime inside its create, to kill it
there).  A small CRI client (tests/cri/api.proto, grpcio) pulls from a
docker-registry started by the test and drives pods and containers as the
kubelet would.  Every test runs twice: on cloison-runtime, then on runc in
its place (the peer).  See docs/cri.md."""
import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

import cri_env
from conftest import binary

pytestmark = pytest.mark.skipif(cri_env.missing() is not None, reason=str(cri_env.missing()))


@pytest.fixture(scope="module", params=["cloison-runtime", "runc"])
def env(request, busybox_rootfs, tmp_path_factory):
    """The whole file runs twice: with cloison-runtime as every handler's
    BinaryName, then with runc (the peer) in its place, so that each check
    is seen to hold for runc too (or, where we differ, how)."""
    ours = binary("cloison-runtime") if request.param == "cloison-runtime" else shutil.which("runc")
    if ours is None:
        pytest.skip("runc (the peer) not installed")
    wrap_dir = tmp_path_factory.mktemp("cri-crashy")
    wrapper = os.path.join(str(wrap_dir), "crashy-runtime")
    # `create` while the MARK file exists: do the real create, then say so
    # and wait to be killed, so containerd is still waiting on the call.
    with open(wrapper, "w") as f:
        f.write("""#!/bin/sh
for a; do
  if [ "$a" = create ] && [ -e {d}/MARK ]; then
    {ours} "$@"
    echo $$ > {d}/created.pid
    exec sleep 600
  fi
done
exec {ours} "$@"
""".format(d=wrap_dir, ours=ours))
    os.chmod(wrapper, 0o755)
    # "hooked": containerd's default spec plus a createRuntime hook that,
    # while HOOK_MARK exists, holds the runtime inside its create.
    spec = json.loads(subprocess.run(["ctr", "oci", "spec"], stdout=subprocess.PIPE, check=True).stdout)
    spec["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": [
        "sh", "-c", "[ -e {d}/HOOK_MARK ] || exit 0; echo $$ > {d}/hook.pid; exec sleep 600".format(d=wrap_dir)]}]}
    base = os.path.join(str(wrap_dir), "hooked-spec.json")
    with open(base, "w") as f:
        json.dump(spec, f)
    e = cri_env.CriEnv(busybox_rootfs, {"runc": ours, "cloison": ours, "crashy": wrapper,
                                        "hooked": (ours, base)})
    e.crashy_dir = str(wrap_dir)
    e.peer = request.param == "runc"
    e.runtime_name = os.path.basename(ours)
    try:
        e.cri.PullImage(image=e.pb.ImageSpec(image=e.busybox))
        yield e
    finally:
        e.close()


def runtime_root(env, handler):
    return os.path.join(env.work, "runtime-" + handler, "k8s.io")


def cgroup_v1(env, ctrl, pod_or_ctr):
    return os.path.join("/sys/fs/cgroup", ctrl, env.cgroup_parent.lstrip("/"), pod_or_ctr)


def wait_state(env, cid, state, timeout=20):
    end = time.time() + timeout
    while True:
        st = env.cri.ContainerStatus(container_id=cid).status
        if st.state == state or time.time() > end:
            return st
        time.sleep(0.05)


def assert_gone(env, handler, ids):
    """Nothing of these pods/containers left: no runtime state, no cgroup."""
    root = runtime_root(env, handler)
    left = [i for i in ids if os.path.exists(os.path.join(root, i))]
    assert left == [], "runtime state left in %s: %s" % (root, left)
    for i in ids:
        assert not os.path.exists(cgroup_v1(env, "pids", i)), i


def test_version_status_pull(env):
    c, pb = env.cri, env.pb
    assert c.Version().runtime_api_version == "v1"
    assert all(cond.status for cond in c.Status().status.conditions)
    c.RemoveImage(image=pb.ImageSpec(image=env.busybox))
    assert not c.ImageStatus(image=pb.ImageSpec(image=env.busybox)).HasField("image")
    ref = c.PullImage(image=pb.ImageSpec(image=env.busybox)).image_ref
    assert ref.startswith("sha256:")
    img = c.ImageStatus(image=pb.ImageSpec(image=env.busybox)).image
    assert img.id == ref and env.busybox in img.repo_tags
    assert any(i.id == ref for i in c.ListImages().images)


def test_pod_and_container_life_cycle(env):
    """Everything the kubelet does to one container, in order, on the
    default handler (BinaryName = cloison-runtime)."""
    c, pb = env.cri, env.pb
    pod, cfg = env.run_pod("life")
    st = c.PodSandboxStatus(pod_sandbox_id=pod).status
    assert st.state == pb.SANDBOX_READY and st.runtime_handler == ""
    assert re.match(r"10\.89\.0\.\d+$", st.network.ip), st.network.ip
    # The handler's runtime holds the sandbox (ours: its state has our own fields).
    state = open(os.path.join(runtime_root(env, "runc"), pod, "state.json")).read()
    assert env.peer or "pidStart" in state

    ccfg = env.container_config("app", ["sh", "-c", "echo out-line; echo err-line >&2; exec sleep 1000"],
                                envs=[pb.KeyValue(key="GREETING", value="bonjour")], working_dir="/tmp")
    cid = c.CreateContainer(pod_sandbox_id=pod, config=ccfg, sandbox_config=cfg).container_id
    assert c.ContainerStatus(container_id=cid).status.state == pb.CONTAINER_CREATED
    c.StartContainer(container_id=cid)
    st = c.ContainerStatus(container_id=cid).status
    assert st.state == pb.CONTAINER_RUNNING and st.started_at > 0

    r = c.ExecSync(container_id=cid, cmd=["sh", "-c", "echo $GREETING $PWD $(hostname); echo e >&2; exit 7"],
                   timeout=20)
    assert (r.stdout, r.stderr, r.exit_code) == (b"bonjour /tmp life\n", b"e\n", 7)
    # The container's network is the pod's: eth0 holds the pod's IP.
    ip = c.PodSandboxStatus(pod_sandbox_id=pod).status.network.ip
    assert ip in c.ExecSync(container_id=cid, cmd=["ip", "addr"], timeout=20).stdout.decode()

    # The log, in the CRI format: "TIME STREAM F|P TEXT".
    log = st.log_path
    end = time.time() + 10
    while time.time() < end and open(log).read().count("\n") < 2:
        time.sleep(0.05)
    lines = open(log).read().splitlines()
    pat = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) (stdout|stderr) (F|P) (.*)$")
    parsed = sorted((m.group(2), m.group(3), m.group(4)) for m in map(pat.match, lines) if m)
    assert parsed == [("stderr", "F", "err-line"), ("stdout", "F", "out-line")], lines

    # Resources: runc's `update --resources` under the shim.
    c.UpdateContainerResources(container_id=cid, linux=pb.LinuxContainerResources(
        memory_limit_in_bytes=96 << 20, cpu_shares=512, cpu_period=100000, cpu_quota=50000))
    if os.path.isdir("/sys/fs/cgroup/memory"):
        assert int(open(os.path.join(cgroup_v1(env, "memory", cid), "memory.limit_in_bytes")).read()) == 96 << 20
        assert open(os.path.join(cgroup_v1(env, "cpu", cid), "cpu.shares")).read().strip() == "512"
        assert open(os.path.join(cgroup_v1(env, "cpu", cid), "cpu.cfs_quota_us")).read().strip() == "50000"
    res = c.ContainerStatus(container_id=cid).status.resources.linux
    assert res.memory_limit_in_bytes == 96 << 20 and res.cpu_shares == 512

    # Stats, read by the shim from the container's cgroups.
    c.ExecSync(container_id=cid, cmd=["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"],
               timeout=60)
    stats = c.ContainerStats(container_id=cid).stats
    assert stats.attributes.id == cid
    assert stats.cpu.usage_core_nano_seconds.value > 0 and stats.memory.working_set_bytes.value > 0
    assert cid in [s.attributes.id for s in c.ListContainerStats(
        filter=pb.ContainerStatsFilter(pod_sandbox_id=pod)).stats]

    # Lists and their filters.
    listed = c.ListContainers(filter=pb.ContainerFilter(pod_sandbox_id=pod)).containers
    assert [(x.id, x.state) for x in listed] == [(cid, pb.CONTAINER_RUNNING)]
    running = c.ListContainers(filter=pb.ContainerFilter(
        state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING))).containers
    assert cid in [x.id for x in running]
    pods = c.ListPodSandbox(filter=pb.PodSandboxFilter(label_selector={"cloison-test": env.tag})).items
    assert pod in [p.id for p in pods]

    # Stop: `sleep` as its pid namespace's init ignores SIGTERM, so the
    # grace period runs out and SIGKILL ends it (exit 137).
    t0 = time.time()
    c.StopContainer(container_id=cid, timeout=1)
    st = c.ContainerStatus(container_id=cid).status
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 137 and st.finished_at > 0
    assert time.time() - t0 < 15
    c.RemoveContainer(container_id=cid)
    assert len(c.ListContainers(filter=pb.ContainerFilter(id=cid)).containers) == 0
    c.StopPodSandbox(pod_sandbox_id=pod)
    assert c.PodSandboxStatus(pod_sandbox_id=pod).status.state == pb.SANDBOX_NOTREADY
    c.RemovePodSandbox(pod_sandbox_id=pod)
    assert pod not in [p.id for p in c.ListPodSandbox().items]
    assert_gone(env, "runc", [pod, cid])
    assert os.listdir(os.path.join(env.work, "state", "io.containerd.grpc.v1.cri", "netns")) == []


def test_container_exit_code_and_remove_running(env):
    """A container that exits on its own is EXITED with its code; removing
    a pod whose container still runs stops it first."""
    c, pb = env.cri, env.pb
    pod, cfg = env.run_pod("exits")
    done = env.start_container(pod, cfg, "done", ["sh", "-c", "exit 42"])
    st = wait_state(env, done, pb.CONTAINER_EXITED)
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 42 and st.reason == "Error"
    busy = env.start_container(pod, cfg, "busy", ["sleep", "1000"])
    env.remove_pod(pod)
    assert len(c.ListContainers(filter=pb.ContainerFilter(pod_sandbox_id=pod)).containers) == 0
    assert_gone(env, "runc", [pod, done, busy])


def test_exec_and_attach_streaming(env):
    """Exec and Attach return a URL of containerd's streaming server; the
    WebSocket form of the remotecommand protocol carries the streams."""
    c = env.cri
    pod, cfg = env.run_pod("stream")
    try:
        cid = env.start_container(pod, cfg, "talker", [
            "sh", "-c", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done"])
        url = c.Exec(container_id=cid, cmd=["sh", "-c", "echo to-out; echo to-err >&2; exit 3"],
                     stdout=True, stderr=True).url
        chans = env.stream(url)
        assert chans.get(1) == b"to-out\n" and chans.get(2) == b"to-err\n", chans
        status = json.loads(chans[3])
        assert status["status"] == "Failure" and status["details"]["causes"][0]["message"] == "3", status
        # stdin reaches the exec'd process.
        url = c.Exec(container_id=cid, cmd=["head", "-n", "1"], stdin=True, stdout=True).url
        chans = env.stream(url, stdin=b"through-stdin\n")
        assert chans.get(1) == b"through-stdin\n" and json.loads(chans[3])["status"] == "Success", chans
        # Attach: the running container's own output.
        url = c.Attach(container_id=cid, stdout=True, stderr=True).url
        chans = env.stream(url, until=lambda ch: ch.get(1, b"").count(b"tick-") >= 2)
        assert re.search(rb"tick-\d+\n", chans[1]), chans
    finally:
        env.remove_pod(pod)


def test_tty_container_and_exec(env):
    """A container with `tty: true` gets its terminal through the shim's
    --console-socket; what it writes there reaches the CRI log; an
    interactive Exec with tty gets a terminal of its own, ExecSync none."""
    c = env.cri
    pod, cfg = env.run_pod("tty")
    try:
        cid = env.start_container(pod, cfg, "term", ["sh", "-c", "tty; echo tty-ok; exec sleep 1000"],
                                  tty=True, stdin=True)
        log = c.ContainerStatus(container_id=cid).status.log_path
        end = time.time() + 10
        while time.time() < end and "tty-ok" not in open(log).read():
            time.sleep(0.05)
        text = open(log).read()
        assert re.search(r" stdout F /dev/pts/\d+", text) and "tty-ok" in text, text
        # As `kubectl exec -it`: stdin and a terminal.  (containerd 1.6
        # often loses the output of a tty exec without stdin, with runc as
        # with us.)
        url = c.Exec(container_id=cid, cmd=["sh"], tty=True, stdin=True, stdout=True).url
        chans = env.stream(url, stdin=b"tty; exit\n")
        assert re.search(rb"\n/dev/pts/\d+\r\n", chans.get(1, b"")), chans
        assert json.loads(chans[3])["status"] == "Success", chans
        r = c.ExecSync(container_id=cid, cmd=["tty"], timeout=20)
        assert r.exit_code == 1 and b"not a tty" in r.stdout, r
    finally:
        env.remove_pod(pod)


def test_two_containers_share_the_pod_network(env):
    """Two containers of one pod: one serves on 127.0.0.1:8080, the other
    reaches it over localhost (one network namespace, the pod's)."""
    c = env.cri
    pod, cfg = env.run_pod("share")
    try:
        srv = env.start_container(pod, cfg, "server", ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/etc"])
        cli = env.start_container(pod, cfg, "client", ["sleep", "1000"])
        out = b""
        for _ in range(50):
            r = c.ExecSync(container_id=cli, cmd=["timeout", "5", "wget", "-q", "-O", "-",
                                                  "http://127.0.0.1:8080/hostname"], timeout=20)
            out = r.stdout
            if r.exit_code == 0:
                break
            time.sleep(0.1)
        assert out == b"share\n"
        ns = [c.ExecSync(container_id=x, cmd=["readlink", "/proc/self/ns/net"], timeout=20).stdout
              for x in (srv, cli)]
        assert ns[0] == ns[1] and ns[0].startswith(b"net:[")
    finally:
        env.remove_pod(pod)


def test_pod_without_pod_network(env):
    """A host-network pod (NamespaceMode NODE) runs in containerd's own
    network namespace: the test's, with no CNI address."""
    c, pb = env.cri, env.pb
    pod, cfg = env.run_pod("hostnet", network=False)
    try:
        assert c.PodSandboxStatus(pod_sandbox_id=pod).status.network.ip == ""
        cid = env.start_container(pod, cfg, "app", ["sleep", "1000"])
        r = c.ExecSync(container_id=cid, cmd=["readlink", "/proc/self/ns/net"], timeout=20)
        assert r.stdout.decode().strip() == "net:[%d]" % os.stat(env.netns_path).st_ino
        assert c.ContainerStatus(container_id=cid).status.state == pb.CONTAINER_RUNNING
    finally:
        env.remove_pod(pod)


def test_second_runtime_handler(env):
    """A RuntimeClass's handler ("cloison"): the pod and its containers run
    under it, with their state in that handler's runtime root."""
    c, pb = env.cri, env.pb
    pod, cfg = env.run_pod("rtclass", handler="cloison")
    try:
        assert c.PodSandboxStatus(pod_sandbox_id=pod).status.runtime_handler == "cloison"
        assert c.ListPodSandbox(filter=pb.PodSandboxFilter(id=pod)).items[0].runtime_handler == "cloison"
        cid = env.start_container(pod, cfg, "app", ["sleep", "1000"])
        for x in (pod, cid):
            state = open(os.path.join(runtime_root(env, "cloison"), x, "state.json")).read()
            assert env.peer or "pidStart" in state
        assert not os.path.exists(os.path.join(runtime_root(env, "runc"), cid))
        r = c.ExecSync(container_id=cid, cmd=["cat", "/proc/1/cmdline"], timeout=20)
        assert r.stdout == b"sleep\x001000\x00"
    finally:
        env.remove_pod(pod)
    assert_gone(env, "cloison", [pod, cid])
    with pytest.raises(c.grpc.RpcError):
        env.run_pod("nohandler", handler="no-such-handler")


def start_in_background(c, cid):
    """StartContainer in a thread (the test kills the runtime meanwhile):
    returns the thread and a dict that gets "ok" or "error"."""
    result = {}

    def start():
        try:
            c.StartContainer(container_id=cid, timeout=60)
            result["ok"] = True
        except c.grpc.RpcError as e:
            result["error"] = e.details()
    t = threading.Thread(target=start)
    t.start()
    return t, result


def test_runtime_killed_mid_create(env):
    """The runtime is killed -9 while containerd waits on its `create` of
    a container (the create itself done): StartContainer fails, and the
    pod can still be stopped and removed, with nothing left behind (the
    shim's cleanup runs `delete --force` on what the create made)."""
    c, pb = env.cri, env.pb
    d = env.crashy_dir
    pod, cfg = env.run_pod("crash", handler="crashy")
    mark = os.path.join(d, "MARK")
    cid = None
    try:
        cid = c.CreateContainer(pod_sandbox_id=pod, config=env.container_config("victim", ["sleep", "1000"]),
                                sandbox_config=cfg).container_id
        open(mark, "w").close()
        t, result = start_in_background(c, cid)
        pidfile = os.path.join(d, "created.pid")
        end = time.time() + 30
        while not os.path.exists(pidfile) and time.time() < end:
            time.sleep(0.02)
        assert os.path.exists(pidfile), "the wrapped create never finished"
        time.sleep(0.1)  # the wrapper has exec'd sleep: containerd still waits
        os.kill(int(open(pidfile).read()), 9)
        t.join(60)
        assert not t.is_alive() and "error" in result, result
        os.unlink(mark)
        st = c.ContainerStatus(container_id=cid).status
        assert st.state in (pb.CONTAINER_CREATED, pb.CONTAINER_EXITED, pb.CONTAINER_UNKNOWN), st
        c.StopPodSandbox(pod_sandbox_id=pod)
        c.RemovePodSandbox(pod_sandbox_id=pod)
        assert len(c.ListContainers(filter=pb.ContainerFilter(id=cid)).containers) == 0
        assert_gone(env, "crashy", [pod, cid])
        # No process of the killed container survives.
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    environ = open("/proc/%s/cgroup" % p).read()
                except OSError:
                    continue
                assert cid not in environ, "process %s still in the container's cgroup" % p
    finally:
        if os.path.exists(mark):
            os.unlink(mark)
    # The handler works again afterwards.
    pod, cfg = env.run_pod("crash-after", handler="crashy")
    try:
        cid = env.start_container(pod, cfg, "fine", ["sleep", "1000"])
        assert wait_state(env, cid, pb.CONTAINER_RUNNING).state == pb.CONTAINER_RUNNING
    finally:
        env.remove_pod(pod)


def test_runtime_killed_inside_a_hook(env):
    """The runtime is killed -9 in the middle of a container's create, while
    a createRuntime hook holds it (a base runtime spec gives the handler's
    containers that hook): the half-made container (namespaces and cgroup
    made, no state yet or a state of a create that never ended) does not
    keep containerd from stopping and removing the pod, and nothing of it
    is left."""
    c, pb = env.cri, env.pb
    d = env.crashy_dir
    mark, hook_pid = os.path.join(d, "HOOK_MARK"), os.path.join(d, "hook.pid")
    pod, cfg = env.run_pod("hooked", handler="hooked")
    try:
        cid = c.CreateContainer(pod_sandbox_id=pod, config=env.container_config("held", ["sleep", "1000"]),
                                sandbox_config=cfg).container_id
        open(mark, "w").close()
        t, result = start_in_background(c, cid)
        end = time.time() + 30
        while not os.path.exists(hook_pid) and time.time() < end:
            time.sleep(0.02)
        assert os.path.exists(hook_pid), "the hook never ran"
        # The runtime processes working on this container: kill them all.
        runtimes = [int(p) for p in os.listdir("/proc") if p.isdigit() and is_runtime_for(env, int(p), cid)]
        assert runtimes, "no %s process for %s" % (env.runtime_name, cid)
        for p in runtimes:
            os.kill(p, 9)
        os.kill(int(open(hook_pid).read()), 9)
        t.join(60)
        assert not t.is_alive() and "error" in result, result
        os.unlink(mark)
        c.StopPodSandbox(pod_sandbox_id=pod)
        c.RemovePodSandbox(pod_sandbox_id=pod)
        assert len(c.ListContainers(filter=pb.ContainerFilter(id=cid)).containers) == 0
        end = time.time() + 10
        while time.time() < end and any(os.path.exists(cgroup_v1(env, "pids", x)) for x in (pod, cid)):
            time.sleep(0.1)
        if env.peer:
            # runc 1.1 removes the state only: the half-made container's
            # cgroup stays (see test_runtime_dropin.py).
            assert_gone(env, "hooked", [pod])
            assert not os.path.exists(os.path.join(runtime_root(env, "hooked"), cid))
            assert os.path.exists(cgroup_v1(env, "pids", cid))
        else:
            assert_gone(env, "hooked", [pod, cid])
    finally:
        for f in (mark, hook_pid):
            if os.path.exists(f):
                os.unlink(f)


def is_runtime_for(env, pid, cid):
    # By its argv: the runtime re-executes itself from a sealed memfd, so
    # /proc/PID/exe names no file.
    try:
        args = open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")
    except OSError:
        return False
    return (args[0].endswith(env.runtime_name.encode()) and b"create" in args
            and cid.encode() in args)

