# SPDX-License-Identifier: Apache-2.0
"""`cloison up` over a Cloisonfile: a web + database project on a private
network, a port forward reached from a client network namespace of the
test's own, provisioning, a second `up` with nothing to do, a memory
limit changed live, an image change recreated with --recreate, down and
down --destroy; and every refused file with its FILE:LINE:COL error and
nothing made."""
import glob
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tarfile
import textwrap
import time
import urllib.request

import pytest

from cloison_cli import cl  # noqa: F401 (cl: fixture)

PID = os.getpid()


def networks(cl):
    """The root's networks, read from its database (`network list` would
    make the default one)."""
    db = os.path.join(cl.root, "cloison.db")
    if not os.path.exists(db):
        return []
    with sqlite3.connect("file:%s?mode=ro" % db, uri=True) as c:
        try:
            return [r[0] for r in c.execute("SELECT name FROM networks")]
        except sqlite3.OperationalError:
            return []


@pytest.fixture(autouse=True)
def no_network_left(cl):
    """Networks are host-wide (bridge, nftables, dnsmasq): whatever a test
    made (machines without `networks` join `default`) goes with it."""
    yield
    for inst in cl.list():
        cl("delete", "--force", inst["name"], check=False)
    for name in networks(cl):
        cl("network", "delete", name, check=False)


def free_port():
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def write_project(d, text):
    d.mkdir(parents=True, exist_ok=True)
    (d / "Cloisonfile").write_text(textwrap.dedent(text))
    return d


def run(*args):
    return subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def client_netns():
    """A network namespace standing for a client machine: a veth to the
    host, addresses of its own; yields (netns, host side address)."""
    ns, host_if, ns_if = "upcli%d" % PID, "upch%d" % (PID % 100000), "upcn%d" % (PID % 100000)
    net = "10.216.%d" % (PID % 250 + 1)
    for cmd in (["ip", "netns", "add", ns],
                ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
                ["ip", "link", "set", ns_if, "netns", ns],
                ["ip", "addr", "add", net + ".1/30", "dev", host_if],
                ["ip", "link", "set", host_if, "up"],
                ["ip", "-n", ns, "addr", "add", net + ".2/30", "dev", ns_if],
                ["ip", "-n", ns, "link", "set", ns_if, "up"],
                ["ip", "-n", ns, "link", "set", "lo", "up"]):
        p = run(*cmd)
        assert p.returncode == 0, (cmd, p.stderr)
    yield ns, net + ".1"
    run("ip", "link", "del", host_if)
    run("ip", "netns", "del", ns)


def fetch_from(ns, url, timeout=10):
    """GET url from inside the namespace (nsenter: `ip netns exec` would
    remount /sys)."""
    code = ("import sys, urllib.request\n"
            "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end='')")
    deadline = time.monotonic() + timeout
    while True:
        p = run("nsenter", "--net=/run/netns/" + ns, "/usr/bin/python3", "-c", code, url)
        if p.returncode == 0 or time.monotonic() > deadline:
            return p
        time.sleep(0.2)


def busybox2_tar(tmp_path):
    """A second image: busybox with a marker file, as a rootfs tarball."""
    root = tmp_path / "bb2"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "tmp").mkdir()
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "cat", "nc", "echo", "test", "mkdir", "sleep", "httpd", "true"):
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc" / "marker").write_text("v2\n")
    out = tmp_path / "bb2.tar"
    with tarfile.open(out, "w") as t:
        for child in sorted(root.iterdir()):
            t.add(child, arcname=child.name)
    return out


PROJECT = """\
    name: shop
    networks:
      back:
        subnet: {subnet}
    machines:
      db:
        image: busybox
        memory: 64M
        networks:
          - {{name: back, address: {db_addr}}}
        command: ["/bin/sh", "-c", "touch /tmp/ready; while true; do echo db-ok | nc -l -p 5432; done"]
        healthcheck:
          command: test -e /tmp/ready
          interval: 100ms
      web:
        image: {web_image}
        networks: [back]
        depends_on: [db]
        folders: ["./site:/www:ro"]
        command: ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]
        ports:
          - {{host: {port}, port: 80}}
        provision:
          - shell: echo provisioned >> /tmp/prov
"""


def memory_limit(cl, instance):
    for d in cl.cgroups_of(instance):
        for f in ("memory.limit_in_bytes", "memory.max"):
            if os.path.exists(os.path.join(d, f)):
                with open(os.path.join(d, f)) as fh:
                    return int(fh.read())
    raise AssertionError("no memory cgroup for " + instance)


def test_web_db_project(cl, tmp_path, client_netns):
    ns, host_addr = client_netns
    port = free_port()
    subnet = "10.214.%d.0/24" % (PID % 250 + 1)
    db_fixed = subnet.rsplit(".", 1)[0] + ".50"
    proj = tmp_path / "shop"
    (proj / "site").mkdir(parents=True)
    (proj / "site" / "index.html").write_text("hello from web\n")
    write_project(proj, PROJECT.format(subnet=subnet, port=port, web_image="busybox", db_addr=db_fixed))

    def up(*args, check=True):
        return cl("up", *args, cwd=str(proj), check=check, timeout=120)

    out = up().stdout
    assert "network back: created" in out
    assert re.search(r"^db: created$", out, re.M) and re.search(r"^web: created$", out, re.M)
    # db's health check passed before web started
    assert out.index("db: created") < out.index("web: created")
    assert "web: provisioning (step 1)" in out

    status = json.loads(cl("status", "--format", "json", cwd=str(proj)).stdout)
    by = {r["machine"]: r for r in status}
    assert by["db"]["status"] == by["web"]["status"] == "running"
    assert by["web"]["ports"] == ["%d:80/tcp" % port]
    db_addr = by["db"]["addresses"][0]
    assert db_addr == db_fixed  # the file's fixed address
    assert by["web"]["addresses"][0].startswith(subnet.rsplit(".", 1)[0])
    # instances are named and labelled by project
    inst = cl.info(by["web"]["instance"])
    assert inst["name"].startswith("shop-") and inst["name"].endswith("-web")
    assert inst["config"]["labels"]["cloison.machine"] == "web"

    # the web machine reaches the database on the private network; exec
    # takes the machine's name within the project
    p = cl("exec", "web", "--", "nc", db_addr, "5432", cwd=str(proj))
    assert p.stdout == "db-ok\n"
    assert cl("exec", "web", "--", "cat", "/tmp/prov", cwd=str(proj)).stdout == "provisioned\n"
    # the shared folder, read-only, and the project at /project
    assert cl("exec", "web", "--", "cat", "/project/Cloisonfile", cwd=str(proj)).stdout.startswith(
        "name: shop")
    assert cl("exec", "web", "--", "touch", "/www/x", cwd=str(proj), check=False).returncode != 0

    # the port forward, from a client machine
    p = fetch_from(ns, "http://%s:%d/index.html" % (host_addr, port))
    assert p.returncode == 0 and p.stdout == "hello from web\n", p.stderr

    # nothing changed: nothing done, and said so
    out = up().stdout
    assert out.strip() == "nothing to do: 2 machines up to date"
    assert cl("exec", "web", "--", "cat", "/tmp/prov", cwd=str(proj)).stdout == "provisioned\n"

    # a memory limit changed: applied live, the same process goes on
    pid_before = cl.info(by["db"]["instance"])["pid"]
    (proj / "Cloisonfile").write_text((proj / "Cloisonfile").read_text().replace(
        "memory: 64M", "memory: 96M"))
    out = up().stdout
    assert out.strip() == "db: changed live"
    assert memory_limit(cl, by["db"]["instance"]) == 96 << 20
    assert cl.info(by["db"]["instance"])["pid"] == pid_before

    # a changed image: refused without --recreate, done with it
    cl("image", "import", str(busybox2_tar(tmp_path)), "busybox2")
    write_project(proj, PROJECT.format(subnet=subnet, port=port, web_image="busybox2", db_addr=db_fixed).replace(
        "memory: 64M", "memory: 96M"))
    p = up(check=False)
    assert p.returncode == 1
    assert "web: must be recreated (image changed): run `cloison up --recreate`" in p.stdout
    assert cl("exec", "web", "--", "cat", "/etc/marker", cwd=str(proj), check=False).returncode != 0
    out = up("--recreate").stdout
    assert "web: recreated" in out and "db:" not in out
    assert cl("exec", "web", "--", "cat", "/etc/marker", cwd=str(proj)).stdout == "v2\n"
    p = fetch_from(ns, "http://%s:%d/index.html" % (host_addr, port))
    assert p.stdout == "hello from web\n", p.stderr
    assert up().stdout.strip() == "nothing to do: 2 machines up to date"

    # logs by machine name
    cl("logs", "web", cwd=str(proj))

    # down: stopped, kept; up starts them again
    out = cl("down", cwd=str(proj)).stdout
    assert "web: stopped" in out and "db: stopped" in out
    assert {r["status"] for r in json.loads(
        cl("status", "--format", "json", cwd=str(proj)).stdout)} == {"stopped"}
    out = up().stdout
    assert "db: started" in out and "web: started" in out
    p = fetch_from(ns, "http://%s:%d/index.html" % (host_addr, port))
    assert p.stdout == "hello from web\n", p.stderr

    # down --destroy: no instance, no network, no state
    assert [n for n in networks(cl) if n.startswith("shop-")]
    cl("down", "--destroy", cwd=str(proj))
    assert cl.list() == []
    assert not [n for n in networks(cl) if n.startswith("shop-")]
    assert {r["status"] for r in json.loads(
        cl("status", "--format", "json", cwd=str(proj)).stdout)} == {"absent"}


def test_provisioning_once_always_and_again(cl, tmp_path):
    proj = write_project(tmp_path / "prov", """\
        machines:
          box:
            image: busybox
            project_folder: false
            networks: []
            command: sleep 100000
            provision:
              - shell: echo once >> /tmp/log
              - {script: setup.sh, run: always}
        """)
    (proj / "setup.sh").write_text("echo always >> /tmp/log\n")
    try:
        cl("up", cwd=str(proj))
        log = lambda: cl("exec", "box", "--", "cat", "/tmp/log", cwd=str(proj)).stdout.split()
        assert log() == ["once", "always"]
        out = cl("up", cwd=str(proj)).stdout
        assert "nothing to do" in out  # the machine is as the file says
        assert log() == ["once", "always", "always"]
        cl("provision", "box", cwd=str(proj))
        assert log() == ["once", "always", "always", "once", "always"]
    finally:
        cl("down", "--destroy", cwd=str(proj), check=False)


def test_up_continues_after_a_failure(cl, tmp_path):
    """A machine that fails leaves the others up and its dependants
    unstarted; the next `up` goes on from there."""
    proj = write_project(tmp_path / "half", """\
        machines:
          good:
            image: busybox
            project_folder: false
            networks: []
            command: sleep 100000
          bad:
            image: busybox
            project_folder: false
            networks: []
            command: sleep 100000
            provision:
              - shell: test -e /tmp/fixed
          after:
            image: busybox
            project_folder: false
            networks: []
            command: sleep 100000
            depends_on: [bad]
        """)
    try:
        p = cl("up", cwd=str(proj), check=False, timeout=120)
        assert p.returncode == 1
        assert "bad: failed: machine `bad`: provisioning step 1 exited 1" in p.stderr
        assert "after: not started: a machine it depends on failed" in p.stderr
        st = {r["machine"]: r["status"] for r in json.loads(
            cl("status", "--format", "json", cwd=str(proj)).stdout)}
        assert st == {"good": "running", "bad": "running", "after": "absent"}
        cl("exec", "bad", "--", "touch", "/tmp/fixed", cwd=str(proj))
        out = cl("up", cwd=str(proj), timeout=120).stdout
        assert "after: created" in out and "good:" not in out
    finally:
        cl("down", "--destroy", cwd=str(proj), check=False)


REFUSED = {
    "unknown key": ("""\
        machines:
          web:
            image: busybox
            memroy: 64M
        """, r"Cloisonfile:4:5: machines\.web\.memroy: unknown key \(known: image, kind, "),
    "wrong type": ("""\
        machines:
          web:
            image: busybox
            cpus: two
        """, r"Cloisonfile:4:11: machines\.web\.cpus: expected an integer 0-256, got `two`$"),
    "a list for a mapping": ("""\
        machines:
          - web
        """, r"Cloisonfile:2:3: machines: expected a mapping, got a list$"),
    "unknown network": ("""\
        networks:
          back: {}
        machines:
          web:
            image: busybox
            networks: [back, front]
        """, r"Cloisonfile:6:22: machines\.web\.networks\[1\]: unknown network `front` "
             r"\(declare it under `networks`\)$"),
    "address outside the subnet": ("""\
        networks:
          back: {subnet: 10.9.9.0/24}
        machines:
          web:
            image: busybox
            networks:
              - {name: back, address: 10.9.10.5}
        """, r"Cloisonfile:7:9: machines\.web\.networks\[0\]: address 10\.9\.10\.5 is outside "
             r"the network's subnet 10\.9\.9\.0/24$"),
    "depends_on cycle": ("""\
        machines:
          a:
            image: busybox
            depends_on: [c]
          b:
            image: busybox
            depends_on: [a]
          c:
            image: busybox
            depends_on: b
        """, r"Cloisonfile:7:17: machines\.b\.depends_on: a cycle: a -> c -> b -> a$"),
    "unknown dependency": ("""\
        machines:
          a:
            image: busybox
            depends_on: [z]
        """, r"Cloisonfile:3:5: machines\.a\.depends_on: unknown machine `z`$"),
    "missing folder": ("""\
        machines:
          web:
            image: busybox
            folders:
              - ./nowhere:/srv
        """, r"Cloisonfile:5:9: machines\.web\.folders\[0\]: folder `\./nowhere`: "
             r"No such file or directory$"),
    "unknown volume": ("""\
        machines:
          web:
            image: busybox
            volumes: ["data:/data"]
        """, r"Cloisonfile:4:15: machines\.web\.volumes\[0\]: unknown volume `data`"),
    "bad YAML": ("""\
        machines:
          web: [image
        """, r"Cloisonfile:3:1: did not find expected ',' or ']'"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_file_makes_nothing(cl, tmp_path, case):
    text, want = REFUSED[case]
    proj = write_project(tmp_path / "bad", text)
    # a network and a volume declared before the error must not be made
    (proj / "Cloisonfile").write_text("volumes:\n  keep: {}\n" + (proj / "Cloisonfile").read_text()
                                      if "networks" not in text and "YAML" not in case
                                      else (proj / "Cloisonfile").read_text())
    shift = 2 if "networks" not in text and "YAML" not in case else 0
    if shift:
        want = re.sub(r"Cloisonfile:(\d+)", lambda m: "Cloisonfile:%d" % (int(m.group(1)) + shift),
                      want)
    p = cl("up", cwd=str(proj), check=False)
    assert p.returncode == 1
    err = p.stderr.strip().splitlines()
    assert len(err) == 1, p.stderr
    assert re.search(want, err[0].replace("cloison: ", "", 1)), err[0]
    assert cl.list() == []
    assert json.loads(cl("volume", "list", "--format", "json").stdout) == []
    assert networks(cl) == []
    # -f names the file as given
    p = cl("up", "-f", str(proj / "Cloisonfile"), check=False)
    assert str(proj / "Cloisonfile") + ":" in p.stderr


def test_no_cloisonfile(cl, tmp_path):
    p = cl("up", cwd=str(tmp_path), check=False)
    assert p.returncode == 1
    assert "no Cloisonfile in this directory or its parents (or give -f FILE)" in p.stderr


def test_two_checkouts_do_not_collide(cl, tmp_path):
    text = """\
        name: same
        machines:
          box:
            image: busybox
            project_folder: false
            networks: []
            command: sleep 100000
        """
    a = write_project(tmp_path / "a" / "same", text)
    b = write_project(tmp_path / "b" / "same", text)
    try:
        cl("up", cwd=str(a))
        cl("up", cwd=str(b))
        names = sorted(i["name"] for i in cl.list())
        assert len(names) == 2 and names[0] != names[1]
        # from a subdirectory, the nearest Cloisonfile
        (a / "sub").mkdir()
        assert cl("up", cwd=str(a / "sub")).stdout.startswith("nothing to do")
    finally:
        cl("down", "--destroy", cwd=str(a), check=False)
        cl("down", "--destroy", cwd=str(b), check=False)


def test_up_through_the_daemon(cl, tmp_path):
    """With cloisond serving the root, up, status, provision and down are
    its operations (/1.0/projects/ID/...), printing what the planner does
    in-process; a second up says there is nothing to do.  The daemon
    checks the project it is sent again: a wrong field is a 400 naming
    it."""
    from test_api import Daemon
    proj = write_project(tmp_path / "viad", """\
        name: viad
        machines:
          db:
            image: busybox
            networks: []
            project_folder: false
            command: ["/bin/sh", "-c", "touch /tmp/ready; sleep 100000"]
            healthcheck:
              command: test -e /tmp/ready
              interval: 100ms
          web:
            image: busybox
            networks: []
            depends_on: [db]
            command: sleep 100000
            provision:
              - shell: echo provisioned; echo to-stderr >&2
        """)
    status = lambda *a: [{k: r[k] for k in ("machine", "instance", "status", "changed")}
                         for r in json.loads(cl(*a, "status", "--format", "json",
                                                cwd=str(proj)).stdout)]
    # in-process first (--local: even with a daemon), for the reference
    d = Daemon(tmp_path, netns=False)
    d.root = cl.root
    d.start()
    try:
        local = cl("--local", "--debug", "up", cwd=str(proj))
        assert "in-process" in local.stderr
        local_status = status("--local")
        cl("--local", "down", "--destroy", cwd=str(proj))
        assert not [o for o in d.ok("GET", "/1.0/operations?recursion=1")
                    if o["description"].startswith("Bringing a project")]
        p = cl("--debug", "up", cwd=str(proj))
        assert "through the daemon serving" in p.stderr and "in-process" not in p.stderr
        assert p.stdout == local.stdout, (p.stdout, local.stdout)
        assert p.stdout.splitlines() == ["db: created", "web: created",
                                         "web: provisioning (step 1)", "provisioned"]
        assert "to-stderr" in p.stderr
        assert status() == local_status
        assert {r["status"] for r in local_status} == {"running"}
        ops = [o for o in d.ok("GET", "/1.0/operations?recursion=1")
               if o["description"] == "Bringing a project up"]
        assert len(ops) == 1 and ops[0]["status"] == "success", ops
        assert ops[0]["metadata"]["output"] == p.stdout.splitlines()
        assert ops[0]["metadata"]["exit_code"] == 0
        pid = re.sub(r"-db$", "", local_status[0]["instance"])
        assert ops[0]["resources"] == {"projects": ["/1.0/projects/" + pid]}
        assert [x["id"] for x in d.ok("GET", "/1.0/projects?recursion=1")] == [pid]
        assert sorted(d.ok("GET", "/1.0/projects/" + pid)["machines"]) == ["db", "web"]
        # nothing to do, through the daemon too
        p = cl("up", cwd=str(proj))
        assert p.stdout == "nothing to do: 2 machines up to date\n", p.stdout
        p = cl("provision", "web", cwd=str(proj))
        assert p.stdout.splitlines() == ["web: provisioning (step 1)", "provisioned"]
        # the daemon checks what it is sent
        st, j, _ = d.request("POST", "/1.0/projects/%s/up" % pid, {"project": {"name": "viad"}})
        assert st == 400 and j["error"] == "project.id: expected a string", j
        machine = {"name": "db", "instance": pid + "-db", "depends_on": [], "provision": [],
                   "spec": {"kind": "box", "image": "busybox", "cpus": 0, "memory": 0,
                            "disk": 0, "env": [], "networks": [], "mounts": [], "volumes": [],
                            "ports": []}}
        project = {"name": "viad", "id": pid, "file": str(proj.resolve() / "Cloisonfile"),
                   "dir": str(proj.resolve()), "networks": {}, "volumes": {},
                   "machines": [machine]}
        st, j, _ = d.request("POST", "/1.0/projects/%s/up" % pid, {"project": project})
        assert st == 400 and j["path"] == "project.machines[0].spec.kind", j
        assert j["error"] == ("project.machines[0].spec.kind: expected container or vm,"
                              " got `box`"), j
        machine["spec"]["kind"] = "container"
        project["dir"] = "/elsewhere"
        st, j, _ = d.request("POST", "/1.0/projects/%s/up" % pid, {"project": project})
        assert st == 400 and j["path"] == "project.id", j
        p = cl("up", "nosuch", cwd=str(proj), check=False)
        assert p.returncode != 0 and "no machine `nosuch`" in p.stderr
        p = cl("down", cwd=str(proj))
        assert p.stdout.splitlines() == ["web: stopped", "db: stopped"]
        assert {r["status"] for r in status()} == {"stopped"}
        p = cl("down", "--destroy", cwd=str(proj))
        assert {r["status"] for r in status()} == {"absent"}
        assert d.ok("GET", "/1.0/projects") == []
        ended = {(o["description"], o["status"]) for o in d.ok("GET", "/1.0/operations?recursion=1")}
        assert {("Bringing a project up", "success"), ("Provisioning a project", "success"),
                ("Bringing a project down", "success")} <= ended, ended
    finally:
        cl("--local", "down", "--destroy", cwd=str(proj), check=False)
        d.stop()
