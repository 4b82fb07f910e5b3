# SPDX-License-Identifier: Apache-2.0
"""containerd's CRI path with the VM runtime handler (issue 12,
docs/cri.md and docs/vm-isolation.md), in the VM lab where nested KVM
exists: a containerd 1.6 (Debian's) whose runtime handler `cloison-vm`
runs cloison-runtime under its `-vm` name (what a Kubernetes RuntimeClass
names), a pod of two containers on it, spoken to over CRI by the same
client as tests/integration/test_runtime_cri.py (cri_env.CriEnv: the
registry, the CNI bridge, containerd, all in a network namespace of the
run's own), run by python3 inside the lab.

What it shows: the sandbox (pause) stays an ordinary container; each of
the pod's two containers runs in a microVM of its own (two kernels: two
boot ids, the guest's memory); the first holds the pod's address (the CNI
veth joined to its tap) and serves HTTP on it to the pod network; the
second, in the same network namespace, is created and runs with no NIC
of its own (one interface, one VM); exec in each, the CRI logs of each,
stop and remove, and nothing left (runtime state, cgroups, VMMs, taps).
One lab boot; each test asserts on one check of it."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from lab_cli import VM_INITRAMFS, VM_KERNEL
import runtimes

ROOT = runtimes.ROOT
VMCTR = os.path.join(runtimes.BUILD, "src", "manager", "cloison-vmctr")
PY = "/usr/lib/python3.%d" % sys.version_info[1]
DIST = "/usr/lib/python3/dist-packages"
# Parts of the standard library the CRI client never imports.
PY_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "pydoc_data",
           "site-packages", "dist-packages", "distutils", "config-3.%d-x86_64-linux-gnu"
           % sys.version_info[1], "sqlite3", "curses", "dbm", "unittest", "xmlrpc"}

DRIVER = r'''
import os, re, socket, sys, time, traceback
L = os.environ.get("CRI_LAB", "/lab")
sys.path.insert(0, L + "/src/tests/integration")
import cri_env

def check(name, fn):
    print("@@CHECK-BEGIN %s@@" % name, flush=True)
    rc = 0
    try:
        fn()
    except BaseException:
        traceback.print_exc(file=sys.stdout)
        rc = 1
    print("@@CHECK-END %s %d@@" % (name, rc), flush=True)
    return rc == 0

S = {}
def setup():
    S["env"] = e = cri_env.CriEnv(L + "/layout", {"cloison-vm": L + "/rt-vm"},
                                        tag=os.environ.get("CRI_TAG", "lab"))
    e.cri.PullImage(image=e.pb.ImageSpec(image=e.busybox), timeout=300)
    print("containerd ready, busybox pulled")

def pod():
    e = S["env"]; c = e.cri
    p, cfg = e.run_pod("vmpod", handler="cloison-vm")
    S["pod"], S["cfg"] = p, cfg
    st = c.PodSandboxStatus(pod_sandbox_id=p).status
    print("pod ip", st.network.ip, "handler", st.runtime_handler)
    state = open(os.path.join(e.work, "runtime-cloison-vm", "k8s.io", p, "state.json")).read()
    print("sandbox is a VM:", '"vm"' in state)
    ids = []
    for name, args in (("web", ["sh", "-c", "echo hello from web; mkdir -p /www; echo served-by-web > /www/index.html; exec httpd -f -p 8080 -h /www"]),
                       ("side", ["sh", "-c", "echo hello from side; exec sleep 100000"])):
        t = time.time()
        ids.append(e.start_container(p, cfg, name, args))
        print("started", name, "in %.1f s" % (time.time() - t))
    S["ids"] = ids
    for cid in ids:
        print("state", c.ContainerStatus(container_id=cid).status.state)
    pid = re.search(r'"pid": *(\d+)', state).group(1)
    links = os.popen("nsenter --net=/proc/%s/ns/net ip -o link" % pid).read()
    print("pod links:", " ".join(sorted(re.findall(r"^\d+: ([^:@]+)", links, re.M))))

def execs():
    c = S["env"].cri
    for name, cid in zip(("web", "side"), S["ids"]):
        r = c.ExecSync(container_id=cid, cmd=["sh", "-c", "echo exec-in-$(hostname); cat /proc/sys/kernel/random/boot_id; grep MemTotal /proc/meminfo; ip -4 addr show eth0 2>/dev/null | grep inet || echo no-nic; exit 3"], timeout=120)
        print("== %s rc=%d" % (name, r.exit_code))
        print(r.stdout.decode() + r.stderr.decode())

def net():
    e = S["env"]
    ip = e.cri.PodSandboxStatus(pod_sandbox_id=S["pod"]).status.network.ip
    for i in range(60):
        try:
            s = e.connect(ip, 8080, timeout=5)
            break
        except OSError:
            time.sleep(1)
    s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
    print("http from the pod address:", data.decode(errors="replace").splitlines()[-1])

def logs():
    e = S["env"]
    d = S["cfg"].log_directory
    for n in ("web", "side"):
        print("== log %s" % n)
        print(open(os.path.join(d, n + ".log")).read())

def teardown():
    e = S["env"]; c = e.cri; pb = e.pb
    for cid in S["ids"]:
        t = time.time()
        c.StopContainer(container_id=cid, timeout=10)
        st = c.ContainerStatus(container_id=cid).status
        print("stopped in %.1f s exit %d state %d" % (time.time() - t, st.exit_code, st.state))
        c.RemoveContainer(container_id=cid)
    e.remove_pod(S["pod"])
    print("pods left:", len(c.ListPodSandbox().items), "containers left:", len(c.ListContainers().containers))
    root = os.path.join(e.work, "runtime-cloison-vm", "k8s.io")
    # (the warm templates' cache, .templates, stays on purpose: docs/templates.md)
    print("runtime state left:", sorted(d for d in os.listdir(root) if d != ".templates")
          if os.path.isdir(root) else [])
    cg = "/sys/fs/cgroup" + e.cgroup_parent
    left = [d for d, _, _ in os.walk(cg)][1:] if os.path.isdir(cg) else []
    print("cgroups left:", left)
    time.sleep(1)
    vmms = [p for p in os.listdir("/proc") if p.isdigit() and b"cloison-vmctr" in open("/proc/%s/cmdline" % p, "rb").read()]
    print("shims/VMMs left:", vmms)

ok = check("setup", setup)
if ok and check("pod", pod):
    check("exec", execs)
    check("net", net)
    check("logs", logs)
    check("teardown", teardown)
if "env" in S:
    S["env"].close()
print("cri driver done")
'''

PAYLOAD = r"""#!/bin/sh
export CLOISON_IMAGE_DATA=/lab/image-data CLOISON_VMCTR=/lab/cloison-vmctr
mkdir -p /lab/image-data /lab/bin /var/lib/cni /var/tmp /root /etc/containers
touch /etc/resolv.conf
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > /etc/containers/policy.json
cp /lab/vmlinuz /lab/initramfs.cpio.gz /lab/image-data/
ln -s cloison-runtime /lab/cloison-runtime-vm
# containerd's shim passes the runtime containerd's environment: the
# wrapper gives ours and keeps the -vm name (VM isolation for the handler).
printf '#!/bin/sh\nexport CLOISON_IMAGE_DATA=/lab/image-data CLOISON_VMCTR=/lab/cloison-vmctr\nexec /lab/cloison-runtime-vm "$@"\n' > /lab/rt-vm
chmod +x /lab/rt-vm
ln -s /usr/sbin/ip-full /lab/bin/ip
export PATH=/lab/bin:$PATH HOME=/root
/usr/bin/python3 /lab/cri_vm.py 2>&1
"""


def python_files(work):
    """python3, the parts of its standard library and of grpc/protobuf the
    CRI client needs, and their shared libraries."""
    import lab
    std = os.path.join(work, "py")
    shutil.copytree(PY, std, symlinks=True,
                    ignore=lambda d, names: [n for n in names if n in PY_SKIP and d == PY])
    files = [(os.path.realpath("/usr/bin/python3"), "/usr/bin/python3"), (std, PY)]
    for pkg in ("grpc", "google"):
        files.append((os.path.join(DIST, pkg), os.path.join(DIST, pkg)))
    libs = set()
    for d in (os.path.join(PY, "lib-dynload"), os.path.join(DIST, "grpc"), os.path.join(DIST, "google")):
        for dd, _, names in os.walk(d):
            for n in names:
                if n.endswith(".so"):
                    libs.update(lab.shared_libraries(os.path.join(dd, n)))
    return files + [(l, l) for l in sorted(libs)]


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import cri_env
    why = cri_env.missing()
    if why:
        pytest.skip(why)
    for p in (VMCTR, VM_KERNEL, VM_INITRAMFS):
        if not os.path.exists(p):
            pytest.fail("%s is not built (ninja -C build vm-image for the VM pieces)" % p)
    work = str(tmp_path_factory.mktemp("crivm"))
    rootfs = os.path.join(work, "rootfs")
    subprocess.run([os.path.join(ROOT, "scripts", "mkrootfs-busybox.sh"), rootfs], check=True)
    layout = os.path.join(work, "layout")
    # In a process of its own: the registry helpers import tests/integration's
    # conftest, which pytest has as tests/lab's here.
    subprocess.run([sys.executable, "-c", "import sys, cri_env; cri_env.write_layout(sys.argv[1], "
                    "sys.argv[2], cri_env.IMAGES)", layout, rootfs],
                   cwd=os.path.join(ROOT, "tests", "integration"), check=True)
    driver = os.path.join(work, "cri_vm.py")
    with open(driver, "w") as f:
        f.write(DRIVER)
    files = python_files(work) + runtimes.runtime_files(["cloison"]) + [
        (driver, "/lab/cri_vm.py"), (layout, "/lab/layout"),
        (os.path.join(ROOT, "tests", "integration", "cri_env.py"),
         "/lab/src/tests/integration/cri_env.py"),
        (cri_env.PROTO, "/lab/src/tests/cri/api.proto"),
        (VMCTR, "/lab/cloison-vmctr"), (VM_KERNEL, "/lab/vmlinuz"),
        (VM_INITRAMFS, "/lab/initramfs.cpio.gz"), ("/bin/ip", "/usr/sbin/ip-full")]
    for tool in ("containerd", "containerd-shim-runc-v2", "docker-registry", "skopeo", "protoc"):
        files.append((shutil.which(tool), "/usr/bin/" + tool))
    for plugin in ("bridge", "host-local", "loopback"):
        files.append(("/usr/lib/cni/" + plugin, "/usr/lib/cni/" + plugin))
    modules = lab.LAB_MODULES + ["sch_ingress", "cls_matchall", "act_mirred"]
    return lab.run(PAYLOAD, files=files, timeout=1500, memory=4096, modules=modules,
                   stream=print)


def test_sandbox_is_an_ordinary_container_and_both_containers_start(run):
    out = run.assert_check("pod").output
    assert "handler cloison-vm" in out and "sandbox is a VM: False" in out, out
    assert "started web" in out and "started side" in out, out
    assert out.count("state 1") == 2, out  # CONTAINER_RUNNING


def exec_blocks(run):
    out = run.assert_check("exec").output
    blocks = {}
    for part in out.split("== ")[1:]:
        name = part.split()[0]
        blocks[name] = part
    assert set(blocks) == {"web", "side"}, out
    return blocks


def test_each_container_runs_in_a_vm_of_its_own(run):
    b = exec_blocks(run)
    boot = {}
    for name, text in b.items():
        assert "rc=3" in text and "exec-in-vmpod" in text, text
        kib = int(text.split("MemTotal:")[1].split()[0])
        assert kib < 1024 * 1024, text  # the guest's memory, not the lab's 4 GiB
        boot[name] = [l for l in text.splitlines() if len(l) == 36 and l.count("-") == 4]
    assert boot["web"] and boot["side"] and boot["web"] != boot["side"], b


def test_first_container_holds_the_pod_address_the_second_has_no_nic(run):
    b = exec_blocks(run)
    ip = run.check("pod").output.split("pod ip ")[1].split()[0]
    assert ip + "/24" in b["web"], b["web"]
    assert "no-nic" in b["side"], b["side"]
    # one tap in the pod's namespace, named after the first container
    links = [l for l in run.check("pod").output.splitlines() if l.startswith("pod links:")]
    assert links and re.search(r" tap[0-9a-f]{8}_cl\b", links[0]), run.check("pod").output
    assert links[0].count("_cl") == 1, links


def test_pod_address_reaches_the_first_vm(run):
    out = run.assert_check("net").output
    assert "http from the pod address: served-by-web" in out, out


def test_logs_of_both_containers(run):
    out = run.assert_check("logs").output
    assert " stdout F hello from web" in out and " stdout F hello from side" in out, out


def test_stop_and_remove_leave_nothing(run):
    out = run.assert_check("teardown").output
    assert out.count("stopped in") == 2, out
    for want in ("pods left: 0 containers left: 0", "runtime state left: []", "cgroups left: []",
                 "shims/VMMs left: []"):
        assert want in out, out
