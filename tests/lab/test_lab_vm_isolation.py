# SPDX-License-Identifier: Apache-2.0
"""VM-isolated containers (issue 12, docs/vm-isolation.md) in the VM lab,
where nested KVM and /dev/vhost-vsock exist: cloison-runtime runs busybox
bundles whose config carries org.cloison.isolation=vm (and any bundle
under the name cloison-runtime-vm) in a microVM of their own: the guest
boots our kernel + initramfs, the bundle's rootfs comes over virtio-fs,
the guest agent (PID 1) applies the process (user, capabilities, rlimits,
no_new_privs, seccomp, cwd, env, terminal) and the mounts, and the shim
relays stdio, signals and the exit status.  The network: a veth pair whose
container end is in a namespace given by path, joined to the VM's tap by
tc redirects.  Every VM is a clone of a warm template (docs/templates.md;
one with a NIC for the network bundle) unless its bundle says
org.cloison.vm.boot=cold.
One lab boot; each test asserts on one check of it."""
import copy
import json
import os
import shutil

import pytest

from lab_cli import IMAGE_DATA, VM_INITRAMFS, VM_KERNEL
import runtimes

BUILD = runtimes.BUILD
VMCTR = os.path.join(BUILD, "src", "manager", "cloison-vmctr")

PAYLOAD = r"""#!/bin/sh
. /lab/lib.sh
export CLOISON_IMAGE_DATA=/lab/image-data CLOISON_VMCTR=/lab/cloison-vmctr
mkdir -p /lab/image-data && cp /lab/vmlinuz /lab/initramfs.cpio.gz /lab/image-data/
ln -s cloison-runtime /lab/cloison-runtime-vm
R="/lab/cloison-runtime --root /run/rt-vm"
RV="/lab/cloison-runtime-vm --root /run/rt-vm"
echo "lab host secret" > /secret-of-the-lab
ln -s /secret-of-the-lab /rwroot/evil-abs
ln -s ../../../secret-of-the-lab /rwroot/evil-rel
dump() { for f in /run/rt-vm/*/console.log; do [ -f "$f" ] && { echo "== $f"; tail -20 "$f"; }; done; }

check echo sh -c "$R run -b /bundles/echo echo1; echo rc=\$?"
check exit7 $R run -b /bundles/exit7 exit7
check plain_is_container sh -c "$R run -b /bundles/plain plain1; echo rc=\$?"
check by_name sh -c "$RV run -b /bundles/plain plain2; echo rc=\$?"
check process $R run -b /bundles/process proc1
check seccomp $R run -b /bundles/seccomp sec1
check escape $R run -b /bundles/escape esc1
check lifecycle sh -c "$R create -b /bundles/sleeper --pid-file /tmp/s.pid s1 >/tmp/s1.out 2>&1 </dev/null;
    echo create=\$?; $R state s1 | grep -E '\"(status|pid)\"';
    echo pidfile=\$(cat /tmp/s.pid); $R start s1; echo start=\$?;
    $R state s1 | grep status;
    i=0; while ! $R exec s1 test -f /dev/shm/mark && [ \$i -lt 50 ]; do usleep 100000; i=\$((i+1)); done;
    $R exec s1 cat /dev/shm/mark; echo exec=\$?;
    $R exec s1 sh -c 'exit 5'; echo exec_rc=\$?;
    $R exec --user 1000:1000 s1 id -u; $R exec --cwd /etc s1 pwd;
    $R ps s1 >/dev/null; echo ps=\$?;
    $R pause s1 && $R state s1 | grep status; $R resume s1 && $R state s1 | grep status;
    $R kill s1 TERM; i=0; while $R state s1 | grep -q running && [ \$i -lt 600 ]; do usleep 100000; i=\$((i+1)); done;
    $R state s1 | grep status; cat /tmp/s1.out; $R delete s1; echo delete=\$?;
    ls /run/rt-vm; ls /sys/fs/cgroup/cloison 2>/dev/null | grep -c s1; true"
IP=/usr/sbin/ip-full
check kill_term sh -c "$R create -b /bundles/sleeper k1 </dev/null >/dev/null 2>&1; $R start k1;
    $R exec k1 true; $R kill k1 TERM; i=0;
    while $R state k1 | grep -q running && [ \$i -lt 600 ]; do usleep 100000; i=\$((i+1)); done;
    $R state k1 | grep status; echo waited=\$i; $R delete -f k1"
check net sh -c "$IP netns add vmiso-c && $IP link add vmiso-h type veth peer name eth0 netns vmiso-c &&
    $IP addr add 10.77.0.1/24 dev vmiso-h && $IP link set vmiso-h up &&
    $IP -n vmiso-c addr add 10.77.0.2/24 dev eth0 && $IP -n vmiso-c link set eth0 up &&
    $IP -n vmiso-c route add default via 10.77.0.1 &&
    n0=\$(ls /run/rt-vm/.templates | grep -c -v -e lock -e failed);
    $R run -b /bundles/net net1; echo rc=\$?; $R run -b /bundles/net net2; echo rc2=\$?;
    echo templates \$n0 \$(ls /run/rt-vm/.templates | grep -c -v -e lock -e failed);
    echo veth \$($IP -n vmiso-c link show eth0 | grep -o 'ether [0-9a-f:]*');
    $IP netns del vmiso-c"
check terminal /lab/ptyrun 33x101 $R run -b /bundles/tty tty1
# warm templates (docs/templates.md): every run above was a clone; two runs draw different bytes; the annotation's cold boots
check clones sh -c "$R run -b /bundles/rand r1 > /tmp/r1; $R run -b /bundles/rand r2 > /tmp/r2;
    cat /tmp/r1 /tmp/r2; cat /run/rt-vm/.templates/*/console.log; ls -d /run/rt-vm/.templates/*;
    ls /run/rt-vm/.templates | grep -c -v lock"
check boots sh -c "$R create -b /bundles/sleeper w1 </dev/null >/dev/null 2>&1; cat /run/rt-vm/w1/vm-boot;
    $R delete -f w1; $R create -b /bundles/cold c1 </dev/null >/dev/null 2>&1; cat /run/rt-vm/c1/vm-boot;
    $R delete -f c1; $R create -b /bundles/small m1 </dev/null >/dev/null 2>&1; cat /run/rt-vm/m1/vm-boot;
    $R delete -f m1; echo failed=\$(ls /run/rt-vm/.templates | grep -c failed)"
check bad_boot $R run -b /bundles/tepid tepid1
# ten clones of one template at once: each its own CID and random bytes
ten() {
    for i in 0 1 2 3 4 5 6 7 8 9; do
        $R create -b /bundles/ten t$i </dev/null >/dev/null 2>&1 && $R start t$i
    done
    for i in 0 1 2 3 4 5 6 7 8 9; do
        cid=$(grep -o '"cid": *[0-9]*' /run/rt-vm/t$i/state.json | tr -dc 0-9)
        rnd=$($R exec t$i head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
        echo "t$i $(cut -d' ' -f1 /run/rt-vm/t$i/vm-boot) $cid $rnd"
    done
    $R list | grep -c running
    for i in 0 1 2 3 4 5 6 7 8 9; do $R delete -f t$i; done
}
check ten ten
# podman drives the runtime unchanged, with the annotation
mkdir -p /etc/containers /var/tmp /tmp/pm
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > /etc/containers/policy.json
printf '[containers]\ndefault_ulimits = ["nofile=4096:4096"]\nlog_driver = "k8s-file"\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\nruntime = "cloison"\n[engine.runtimes]\ncloison = ["/lab/rt-wrapper"]\n' > /tmp/pm/containers.conf
# podman passes the runtime a clean environment: the wrapper gives ours
printf '#!/bin/sh\nexport CLOISON_IMAGE_DATA=/lab/image-data CLOISON_VMCTR=/lab/cloison-vmctr\nexec /lab/cloison-runtime "$@"\n' > /lab/rt-wrapper
chmod +x /lab/rt-wrapper
export CONTAINERS_CONF=/tmp/pm/containers.conf
P="podman --root /tmp/pm/root --runroot /tmp/pm/runroot --storage-driver vfs --tmpdir /tmp/pm/tmp"
A="--annotation org.cloison.isolation=vm --network none"
check pm_import sh -c "tar -C /rootfs -c . | $P import - localhost/bb:vm"
check pm_echo sh -c "$P run --rm $A localhost/bb:vm sh -c 'echo podman-in-vm; grep MemTotal /proc/meminfo'; echo rc=\$?"
check pm_exit sh -c "$P run --rm $A localhost/bb:vm sh -c 'exit 3'; echo rc=\$?"
check pm_memory sh -c "$P run --rm $A --memory 200m localhost/bb:vm grep MemTotal /proc/meminfo"
check pm_detach sh -c "$P run -d --name p1 $A localhost/bb:vm sleep 1000 >/dev/null; echo run=\$?;
    $P exec p1 sh -c 'echo exec-ok; exit 4'; echo exec=\$?; $P stop -t 2 p1 >/dev/null; echo stop=\$?;
    $P rm p1 >/dev/null; echo rm=\$?; $P ps -a --format '{{.Names}}'"
check pm_tty /lab/ptyrun 24x80 $P run -it --rm $A localhost/bb:vm sh -c 'tty; stty size'
dump
"""


def vm(cfg):
    cfg = copy.deepcopy(cfg)
    cfg.setdefault("annotations", {})["org.cloison.isolation"] = "vm"
    return cfg


def bundles():
    c = runtimes.config
    configs = {
        "echo": vm(c(["sh", "-c", "echo hello from the VM; hostname; grep MemTotal /proc/meminfo"],
                     memory=192 << 20)),
        "exit7": vm(c(["sh", "-c", "exit 7"])),
        "plain": c(["sh", "-c", "grep -c . /proc/meminfo >/dev/null; echo plain-run; "
                    "grep MemTotal /proc/meminfo"]),
        "process": vm(c(["sh", "-c", "id; pwd; echo HOME=$HOME GREETING=$GREETING; ulimit -n; "
                         "grep -E 'CapEff|CapBnd|NoNewPrivs' /proc/self/status; "
                         "mount | grep -E ' /(proc|dev/shm|sys) '"])),
        "seccomp": vm(c(["sh", "-c", "mkdir /dev/shm/d 2>&1; echo mkdir=$?; "
                         "grep Seccomp: /proc/self/status"])),
        "escape": vm(c(["sh", "-c", "for p in /evil-abs /evil-rel /../../secret-of-the-lab "
                        "/secret-of-the-lab; do cat $p >/dev/null 2>&1 && echo READ $p || "
                        "echo cannot $p; done; ls / | tr '\\n' ' '; echo"])),
        "sleeper": vm(c(["sh", "-c", "echo started > /dev/shm/mark; exec sleep 1000"])),
        "net": vm(c(["sh", "-c", "ip addr show eth0 | grep -E 'inet |ether'; ip route; "
                     "ping -c 2 -W 5 10.77.0.1 | grep -c 'bytes from'"])),
        "tty": vm(c(["sh", "-c", "tty; stty size; exit 3"])),
        "rand": vm(c(["sh", "-c", "head -c 16 /dev/urandom | od -An -tx1"])),
        "cold": vm(c(["sleep", "1000"])),
        "ten": vm(c(["sleep", "1000"])),
        # the memory limit is the guest's RAM: the template must not be
        # charged to this container (it was OOM-killed while snapshotting)
        "small": vm(c(["sleep", "1000"], memory=128 << 20)),
    }
    configs["cold"]["annotations"]["org.cloison.vm.boot"] = "cold"
    configs["tepid"] = copy.deepcopy(configs["exit7"])
    configs["tepid"]["annotations"]["org.cloison.vm.boot"] = "tepid"
    configs["process"]["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10]}
    configs["process"]["process"]["cwd"] = "/tmp"
    configs["process"]["process"]["env"].append("GREETING=hi")
    configs["seccomp"]["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 1}]}
    for name in ("escape",):
        configs[name]["root"] = {"path": "/rwroot", "readonly": False}
    configs["net"]["linux"]["namespaces"] = [
        {"type": "network", "path": "/run/netns/vmiso-c"} if n["type"] == "network" else n
        for n in configs["net"]["linux"]["namespaces"]]
    for k in ("bounding", "effective", "permitted"):
        configs["net"]["process"]["capabilities"][k].append("CAP_NET_RAW")
    configs["tty"]["process"]["terminal"] = True
    configs["tty"]["process"]["consoleSize"] = {"height": 33, "width": 101}
    return configs


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    for p in (VMCTR, VM_KERNEL, VM_INITRAMFS):
        if not os.path.exists(p):
            pytest.fail("%s is not built (ninja -C build vm-image for the VM pieces)" % p)
    d = str(tmp_path_factory.mktemp("vmiso"))
    files = runtimes.write_bundles(os.path.join(d, "bundles"), bundles())
    files += [(os.path.join(d, "bundles") + "-rootfs", "/rwroot")]
    files += runtimes.runtime_files(["cloison"]) + [
        (VMCTR, "/lab/cloison-vmctr"), (VM_KERNEL, "/lab/vmlinuz"),
        (VM_INITRAMFS, "/lab/initramfs.cpio.gz"), (lab.tool("ptyrun"), "/lab/ptyrun"),
        ("/bin/ip", "/usr/sbin/ip-full")]
    for tool in ("podman", "conmon"):
        path = shutil.which(tool) or "/usr/libexec/podman/" + tool
        if os.path.exists(path):
            files.append((path, "/usr/bin/" + tool))
    modules = lab.LAB_MODULES + ["sch_ingress", "cls_matchall", "act_mirred"]
    return lab.run(PAYLOAD, files=files, timeout=1500, modules=modules, stream=print)


def test_echo_runs_in_a_vm_sized_by_the_memory_limit(run):
    out = run.assert_check("echo").output
    assert "hello from the VM" in out and "rc=0" in out, out
    assert "cloison" in out.split(), out  # the spec's hostname
    kib = int(out.split("MemTotal:")[1].split()[0])
    assert 100 * 1024 < kib <= 192 * 1024, out  # the guest's memory, not the lab's 2 GiB


def test_exit_status(run):
    assert run.check("exit7").rc == 7, run.check("exit7")


def test_without_the_annotation_an_ordinary_container(run):
    out = run.assert_check("plain_is_container").output
    kib = int(out.split("MemTotal:")[1].split()[0])
    assert "plain-run" in out and kib > 1024 * 1024, out


def test_runtime_named_vm_isolates_every_container(run):
    out = run.assert_check("by_name").output
    kib = int(out.split("MemTotal:")[1].split()[0])
    assert "rc=0" in out and kib < 1024 * 1024, out


def test_process_spec_applied_in_the_guest(run):
    out = run.assert_check("process").output
    assert "uid=1000 gid=1000 groups=10" in out or "uid=1000 gid=1000 groups=1000,10" in out, out
    assert "/tmp" in out.splitlines() and "HOME=/ GREETING=hi" in out, out
    assert "1024" in out.splitlines(), out
    assert "NoNewPrivs:\t1" in out, out
    assert "CapBnd:\t00000000200004a0" in out or "CapBnd:\t0000000020000420" in out, out
    for m in (" /proc ", " /dev/shm ", " /sys "):
        assert m in out, out


def test_seccomp_profile_applied(run):
    out = run.assert_check("seccomp").output
    assert "Operation not permitted" in out and "Seccomp:\t2" in out, out


def test_guest_cannot_read_a_lab_file_outside_the_rootfs(run):
    out = run.assert_check("escape").output
    assert "READ" not in out and out.count("cannot") == 4, out


def test_create_start_exec_pause_kill_delete(run):
    out = run.assert_check("lifecycle").output
    assert "create=0" in out and '"status": "created"' in out, out
    assert "start=0" in out and '"status": "running"' in out, out
    assert "started" in out and "exec=0" in out, out  # the init's tmpfs: the same VM
    assert "exec_rc=5" in out and "1000" in out.splitlines() and "/etc" in out.splitlines(), out
    assert "ps=0" in out and '"status": "paused"' in out, out
    assert '"status": "stopped"' in out and "delete=0" in out, out
    assert out.strip().splitlines()[-1] == "0", out  # no cgroup left


def test_network_joined_through_the_tap(run):
    out = run.assert_check("net").output
    assert "10.77.0.2/24" in out and "default via 10.77.0.1" in out, out
    assert "rc=0" in out and "rc2=0" in out and out.count("\n2\n") == 2, out
    # the first run made a template with a NIC (built on its tap), the
    # second is a clone of it: both guests took the veth's MAC
    n0, n1 = [int(x) for x in out.split("templates ")[1].split()[:2]]
    assert n1 == n0 + 1, out
    mac = out.split("veth ether ")[1].split()[0]
    assert out.count("link/ether " + mac) == 2, out


def test_terminal(run):
    c = run.check("terminal")
    assert c.rc == 3 and "/dev/pts/" in c.output and "33 101" in c.output, c


def test_clones_of_one_template_draw_different_random_bytes(run):
    out = run.assert_check("clones").output
    lines = [l.strip() for l in out.splitlines() if len(l.split()) == 16]
    assert len(lines) == 2 and lines[0] != lines[1], out
    # one template per machine (so far): echo's 192 MiB, the default size,
    # and the default size with a NIC
    assert "/run/rt-vm/.templates/" in out and out.strip().splitlines()[-1] == "3", out


def test_warm_clone_by_default_cold_on_request(run):
    out = run.assert_check("boots").output.splitlines()
    assert out[0].startswith("clone /run/rt-vm/.templates/") and out[1] == "cold", out
    # a 128 MiB container (its limit = the guest's RAM) is a clone too
    assert out[2].startswith("clone /run/rt-vm/.templates/") and out[3] == "failed=0", out


def test_bad_boot_annotation_refused(run):
    c = run.check("bad_boot")
    assert c.rc not in (None, 0) and "org.cloison.vm.boot" in c.output and "tepid" in c.output, c


def test_ten_clones_at_once_distinct_cids_and_random_bytes(run):
    out = run.assert_check("ten").output
    rows = [l.split() for l in out.splitlines() if l.startswith("t") and len(l.split()) == 4]
    assert len(rows) == 10, out
    assert all(r[1] == "clone" for r in rows), out
    assert len({r[2] for r in rows}) == 10, out  # vsock CIDs
    assert all(len(r[3]) == 32 for r in rows) and len({r[3] for r in rows}) == 10, out
    assert "10" in out.splitlines(), out  # all running at once


def podman_check(run, name):
    if run.check("pm_import").rc != 0:
        pytest.fail("podman does not run in the lab: %s" % run.check("pm_import"))
    return run.assert_check(name).output


def test_podman_runs_with_the_annotation(run):
    out = podman_check(run, "pm_echo")
    kib = int(out.split("MemTotal:")[1].split()[0])
    assert "podman-in-vm" in out and "rc=0" in out and kib < 1024 * 1024, out


def test_podman_exit_status(run):
    assert "rc=3" in podman_check(run, "pm_exit")


def test_podman_memory_sizes_the_vm(run):
    out = podman_check(run, "pm_memory")
    kib = int(out.split("MemTotal:")[1].split()[0])
    assert 150 * 1024 < kib <= 200 * 1024, out


def test_podman_detach_exec_stop_rm(run):
    out = podman_check(run, "pm_detach")
    for want in ("run=0", "exec-ok", "exec=4", "stop=0", "rm=0"):
        assert want in out, out
    assert "p1" not in out.replace("exec", ""), out


def test_podman_tty(run):
    out = podman_check(run, "pm_tty")
    assert "/dev/pts/" in out and "24 80" in out, out


def test_kill_signals_the_process_in_the_guest(run):
    out = run.assert_check("kill_term").output
    assert '"status": "stopped"' in out, out
