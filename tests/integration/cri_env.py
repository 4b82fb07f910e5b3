# SPDX-License-Identifier: Apache-2.0
"""Kubernetes' CRI over containerd, for test_runtime_cri.py and bench/cri
(no tests here).

CriEnv builds, all private to one run: a network namespace (containerd,
its CNI bridge, the registry and the streaming server live there), a
docker-registry holding a busybox image and a "pause" image, a CNI
conflist (bridge + host-local, a bridge name of the run's own) and a
containerd whose CRI plugin has one runc.v2 runtime handler per entry of
`handlers` (name -> BinaryName), each with its own runtime root.  Cri is a
small CRI client: protobuf classes compiled at run time by protoc from
tests/cri/api.proto, gRPC calls made with grpcio's generic stubs."""
import base64
import contextlib
import ctypes
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO = os.path.join(ROOT, "tests", "cri", "api.proto")
REGISTRY_PORT = 5000  # inside the run's own network namespace
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def missing():
    """Why this machine cannot run the CRI tests, or None."""
    for tool in ("containerd", "protoc", "docker-registry", "skopeo", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return "%s not installed" % tool
    if not os.path.exists("/usr/lib/cni/bridge"):
        return "containernetworking-plugins not installed (/usr/lib/cni/bridge)"
    try:
        __import__("grpc")
        __import__("google.protobuf")
    except ImportError as e:
        return "python3-grpcio / python3-protobuf not installed (%s)" % e
    return None


@contextlib.contextmanager
def in_netns(path):
    """Runs the body with this thread in the network namespace at `path`:
    sockets made there stay there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns %s" % path)
        yield
    finally:
        _libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


def compile_proto(out_dir):
    """api_pb2 compiled from tests/cri/api.proto by this machine's protoc
    (its runtime matches python3-protobuf: both are Debian's)."""
    subprocess.run(["protoc", "-I", os.path.dirname(PROTO), "--python_out", out_dir, PROTO],
                   check=True)
    sys.path.insert(0, out_dir)
    try:
        import api_pb2
    finally:
        sys.path.remove(out_dir)
    return api_pb2


class Cri:
    """runtime.v1 RuntimeService and ImageService over containerd's socket."""

    IMAGE_METHODS = ("ListImages", "ImageStatus", "PullImage", "RemoveImage")

    def __init__(self, sock, pb):
        import grpc
        self.grpc = grpc
        self.pb = pb
        self.channel = grpc.insecure_channel("unix://" + sock)

    def call(self, method, timeout=120, **fields):
        service = "ImageService" if method in self.IMAGE_METHODS else "RuntimeService"
        req = getattr(self.pb, method + "Request")(**fields)
        resp = getattr(self.pb, method + "Response")
        stub = self.channel.unary_unary("/runtime.v1.%s/%s" % (service, method),
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=resp.FromString)
        return stub(req, timeout=timeout)

    def __getattr__(self, method):
        if method[:1].isupper():
            return lambda timeout=120, **fields: self.call(method, timeout, **fields)
        raise AttributeError(method)

    def close(self):
        self.channel.close()


def _tar_gz(rootfs):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add(rootfs, arcname=".")
    raw = buf.getvalue()
    gz = subprocess.run(["gzip", "-n", "-1", "-c"], input=raw, stdout=subprocess.PIPE,
                        check=True).stdout
    return raw, gz


def write_layout(lay, rootfs, images):
    """An OCI layout holding one image per (ref name, image config "config"
    part) over one layer: the busybox rootfs."""
    from test_image_registry import put_image, write_index  # not needed in the VM lab
    raw, gz = _tar_gz(rootfs)
    entries = []
    for name, conf in images.items():
        manifest = put_image(lay, raw, gz, conf)[0]
        entries.append(dict(manifest, mediaType="application/vnd.oci.image.manifest.v1+json",
                            annotations={"org.opencontainers.image.ref.name": name}))
    write_index(lay, entries)


PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGES = {
    "busybox": {"Cmd": ["/bin/sh"], "Env": [PATH_ENV]},
    # The sandbox's process only holds the namespaces; containerd stops it
    # with SIGKILL.
    "pause": {"Entrypoint": ["/bin/sleep", "2147483647"], "Env": [PATH_ENV]},
}


class CriEnv:
    """`rootfs`: the busybox rootfs the images are made of, or an OCI
    layout holding them already (write_layout's)."""

    def __init__(self, rootfs, handlers, default=None, tag=None):
        self.tag = tag or uuid.uuid4().hex[:6]
        self.work = tempfile.mkdtemp(prefix="cloison-cri-%s-" % self.tag)
        self.netns = "cri-" + self.tag
        self.netns_path = "/run/netns/" + self.netns
        self.bridge = "cri-br-" + self.tag
        self.cgroup_parent = "/cri-" + self.tag
        self.handlers = dict(handlers)
        self.registry = "127.0.0.1:%d" % REGISTRY_PORT
        self.busybox = self.registry + "/cloison/busybox:1"
        self.pause = self.registry + "/cloison/pause:1"
        self.procs = []
        self.cri = None
        self.sock = os.path.join(self.work, "containerd.sock")
        try:
            subprocess.run(["ip", "netns", "add", self.netns], check=True)
            subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
            self.pb = compile_proto(self.work)
            self._start_registry(rootfs)
            self._start_containerd(default or next(iter(self.handlers)))
        except BaseException:
            self.close()
            raise

    def nsenter(self, argv):
        return ["nsenter", "--net=" + self.netns_path] + list(argv)

    def connect(self, host, port, timeout=30):
        with in_netns(self.netns_path):
            return socket.create_connection((host, port), timeout=timeout)

    def _wait_port(self, port, proc, what):
        end = time.time() + 30
        while time.time() < end:
            if proc.poll() is not None:
                raise AssertionError("%s exited: see %s" % (what, self.work))
            try:
                self.connect("127.0.0.1", port, timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("%s did not listen on port %d" % (what, port))

    def _start_registry(self, rootfs):
        cfg = os.path.join(self.work, "registry.yml")
        with open(cfg, "w") as f:
            json.dump({"version": 0.1, "log": {"level": "error"},
                       "storage": {"filesystem": {"rootdirectory": os.path.join(self.work, "registry")}},
                       "http": {"addr": self.registry, "secret": "cloison-cri"}}, f)
        log = open(os.path.join(self.work, "registry.log"), "w")
        proc = subprocess.Popen(self.nsenter(["docker-registry", "serve", cfg]), stdout=log,
                                stderr=log)
        self.procs.append(proc)
        self._wait_port(REGISTRY_PORT, proc, "docker-registry")
        if os.path.exists(os.path.join(rootfs, "index.json")):
            lay = rootfs  # a layout write_layout made already (tests/lab/test_lab_cri_vm.py)
        else:
            lay = os.path.join(self.work, "layout")
            write_layout(lay, rootfs, IMAGES)
        for name in IMAGES:
            subprocess.run(self.nsenter(["skopeo", "copy", "-q", "--dest-tls-verify=false",
                                         "oci:%s:%s" % (lay, name),
                                         "docker://%s/cloison/%s:1" % (self.registry, name)]),
                           check=True)

    def _start_containerd(self, default):
        w = self.work
        os.makedirs(os.path.join(w, "cni"))
        with open(os.path.join(w, "cni", "10-cloison.conflist"), "w") as f:
            json.dump({"cniVersion": "0.4.0", "name": "cloison-cri-" + self.tag, "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
                 "ipam": {"type": "host-local", "dataDir": os.path.join(w, "ipam"),
                          "ranges": [[{"subnet": "10.89.0.0/24"}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}}]}, f)
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        runtimes = ""
        for name, binary in self.handlers.items():
            # A handler is a BinaryName, or (BinaryName, base runtime spec).
            binary, base = binary if isinstance(binary, tuple) else (binary, None)
            runtimes += """
[{cri}.containerd.runtimes.{name}]
  runtime_type = "io.containerd.runc.v2"
  {base}
[{cri}.containerd.runtimes.{name}.options]
  BinaryName = "{binary}"
  Root = "{w}/runtime-{name}"
""".format(cri=cri, name=name, binary=binary, w=w,
           base='base_runtime_spec = "%s"' % base if base else "")
        conf = os.path.join(w, "config.toml")
        with open(conf, "w") as f:
            f.write("""version = 2
root = "{w}/root"
state = "{w}/state"
[grpc]
  address = "{w}/containerd.sock"
[ttrpc]
  address = "{w}/containerd-ttrpc.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{w}/opt"
[{cri}]
  sandbox_image = "{pause}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  # Some of our machines run root without CAP_SYS_RESOURCE: the sandbox's
  # oomScoreAdj -998 is then refused by every runtime (runc included).
  # This keeps containerd's adjustments at or above its own score.
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "{default}"
{runtimes}
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{w}/cni"
[{cri}.registry.mirrors."{reg}"]
  endpoint = ["http://{reg}"]
""".format(w=w, cri=cri, pause=self.pause, default=default, runtimes=runtimes,
           reg=self.registry))
        self.log_path = os.path.join(w, "containerd.log")
        log = open(self.log_path, "w")
        proc = subprocess.Popen(self.nsenter(["containerd", "--config", conf]), stdout=log,
                                stderr=subprocess.STDOUT)
        self.procs.append(proc)
        self.containerd = proc
        self.cri = Cri(self.sock, self.pb)
        end = time.time() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError("containerd exited: " + open(self.log_path).read()[-3000:])
            try:
                st = self.cri.Status(timeout=2)
                if all(c.status for c in st.status.conditions):
                    return
            except self.cri.grpc.RpcError:
                pass
            if time.time() > end:
                raise AssertionError("containerd's CRI not ready: " + open(self.log_path).read()[-3000:])
            time.sleep(0.1)

    # -- the objects the tests make --------------------------------------

    def sandbox_config(self, name, network=True, extra=None):
        pb = self.pb
        ns = pb.NamespaceOption(network=pb.POD if network else pb.NODE, pid=pb.CONTAINER)
        uid = uuid.uuid4().hex
        cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace="cloison-test"),
            # As the kubelet: a host-network pod has the node's hostname
            # (no UTS namespace: runc, like us, refuses a hostname then).
            hostname=name if network else "", log_directory=os.path.join(self.work, "logs", name + "-" + uid[:6]),
            labels={"cloison-test": self.tag},
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns)))
        if extra:
            extra(cfg)
        return cfg

    def container_config(self, name, args, **kw):
        pb = self.pb
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=self.busybox),
            command=list(args), log_path=name + ".log", labels={"cloison-test": self.tag},
            linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
                namespace_options=pb.NamespaceOption(pid=pb.CONTAINER))), **kw)

    def run_pod(self, name, handler="", network=True):
        cfg = self.sandbox_config(name, network)
        pod = self.cri.RunPodSandbox(config=cfg, runtime_handler=handler).pod_sandbox_id
        return pod, cfg

    def start_container(self, pod, pod_cfg, name, args, **kw):
        cid = self.cri.CreateContainer(pod_sandbox_id=pod, config=self.container_config(name, args, **kw),
                                       sandbox_config=pod_cfg).container_id
        self.cri.StartContainer(container_id=cid)
        return cid

    def remove_pod(self, pod):
        self.cri.StopPodSandbox(pod_sandbox_id=pod)
        self.cri.RemovePodSandbox(pod_sandbox_id=pod)

    # -- streaming (Exec/Attach URLs) over WebSocket ---------------------

    def stream(self, url, stdin=b"", until=None, timeout=30):
        """Speaks the streaming server's WebSocket form of the remotecommand
        protocol (v4.channel.k8s.io: each binary message starts with its
        channel, 0 stdin, 1 stdout, 2 stderr, 3 the JSON status).  Returns
        {channel: bytes}; stops at the close, or once `until(chans)`."""
        assert url.startswith("http://"), url
        hostport, path = url[len("http://"):].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        s = self.connect(host, int(port), timeout=timeout)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n" % (path, hostport, key)).encode())
            f = s.makefile("rb")
            status = f.readline()
            assert b" 101 " in status, status + f.read(2000)
            while f.readline() not in (b"\r\n", b""):
                pass
            if stdin:
                self._ws_send(s, 2, b"\0" + stdin)
            chans = {}
            while True:
                op, payload = self._ws_recv(f)
                if op is None or op == 8:
                    break
                if op == 9:
                    self._ws_send(s, 10, payload)
                elif op in (1, 2) and payload:
                    chans[payload[0]] = chans.get(payload[0], b"") + payload[1:]
                    if until and until(chans):
                        break
            return chans
        finally:
            s.close()

    @staticmethod
    def _ws_send(s, op, data):
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x80 | op])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    @staticmethod
    def _ws_recv(f):
        head = f.read(2)
        if len(head) < 2:
            return None, b""
        op, n = head[0] & 0x0F, head[1] & 0x7F
        if n == 126:
            n = struct.unpack(">H", f.read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", f.read(8))[0]
        mask = f.read(4) if head[1] & 0x80 else None
        data = f.read(n)
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return op, data

    # -- teardown ----------------------------------------------------------

    def close(self):
        if self.cri is not None:
            try:
                for p in self.cri.ListPodSandbox(timeout=30).items:
                    try:
                        self.remove_pod(p.id)
                    except self.cri.grpc.RpcError:
                        pass
            except self.cri.grpc.RpcError:
                pass
            self.cri.close()
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # Shims outlive containerd by design: end this run's own.
        for pid in self.shim_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # A pod left behind (a failed run) keeps its processes: end those
        # in the run's cgroups, and drop the CNI results cached for them.
        pods = self.sweep_cgroup_processes()
        for name in os.listdir("/var/lib/cni/results") if os.path.isdir("/var/lib/cni/results") else []:
            if name.startswith("cloison-cri-%s-" % self.tag) or any(p in name for p in pods):
                os.unlink(os.path.join("/var/lib/cni/results", name))
        for line in reversed(open("/proc/self/mountinfo").read().splitlines()):
            mnt = line.split()[4]
            if mnt.startswith(self.work):
                subprocess.run(["umount", "-l", mnt], check=False)
        subprocess.run(["ip", "netns", "del", self.netns], check=False, stderr=subprocess.DEVNULL)
        for top in os.listdir("/sys/fs/cgroup"):
            d = os.path.join("/sys/fs/cgroup", top, self.cgroup_parent.lstrip("/"))
            if os.path.isdir(d):
                for sub, _, _ in sorted(os.walk(d), key=lambda x: -len(x[0])):
                    try:
                        os.rmdir(sub)
                    except OSError:
                        pass
        keep = os.environ.get("CLOISON_CRI_KEEP_LOG")  # a path, to look at containerd's log
        if keep and os.path.exists(os.path.join(self.work, "containerd.log")):
            shutil.copy(os.path.join(self.work, "containerd.log"), keep)
        shutil.rmtree(self.work, ignore_errors=True)

    def sweep_cgroup_processes(self):
        """SIGKILLs what is left in the run's cgroups; returns the names of
        the cgroups under its parent (the pods' and containers' ids)."""
        names = set()
        for top in os.listdir("/sys/fs/cgroup"):
            base = os.path.join("/sys/fs/cgroup", top, self.cgroup_parent.lstrip("/"))
            for d, subs, files in os.walk(base):
                names.update(subs)
                if "cgroup.procs" in files:
                    for pid in open(os.path.join(d, "cgroup.procs")).read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
        if names:
            time.sleep(0.2)
        return names

    def shim_pids(self):
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"containerd-shim-runc-v2") and self.sock.encode() in cmd:
                out.append(int(pid))
        return out
