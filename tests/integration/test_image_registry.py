# SPDX-License-Identifier: Apache-2.0
"""cloison image pull against Debian's docker-registry started by the test
on a loopback port, filled with skopeo from OCI layouts made offline; token
(Bearer) auth through a small token server of the test's own, and basic
(htpasswd) auth."""
import base64
import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse

import pytest

from test_image_helpers import cloison, inspect, store_files

USER, PASSWORD = "cloison", "s3cret-image"
SERVICE, ISSUER = "cloison-image-test", "cloison-image-token-issuer"


def names(root):
    return [n for i in json.loads(cloison(root, "list", "--format", "json").stdout)
            for n in i["Names"]]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def put_blob(lay, data):
    blobs = os.path.join(lay, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, h), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + h, "size": len(data)}


def put_image(lay, raw, gz, conf, arch="amd64"):
    """Stores a single-layer image: layer `gz` (the gzip of the tar `raw`),
    `conf` as the "config" part of its image config.  Returns the
    manifest's, the config's and the layer's descriptors."""
    layer = dict(put_blob(lay, gz), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
    config = put_blob(lay, json.dumps({
        "architecture": arch, "os": "linux", "config": conf,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
    }).encode())
    manifest = put_blob(lay, json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [layer]}).encode())
    return manifest, config, layer


def image_manifest(lay, rootfs, arch, extra_file=None):
    """Adds one single-layer image (gzip layer of rootfs) to the layout;
    returns (manifest descriptor, config digest)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add(rootfs, arcname=".")
        if extra_file:
            ti = tarfile.TarInfo(extra_file[0])
            ti.size = len(extra_file[1])
            t.addfile(ti, io.BytesIO(extra_file[1]))
    raw = buf.getvalue()
    gz = subprocess.run(["gzip", "-n", "-c"], input=raw, stdout=subprocess.PIPE,
                        check=True).stdout
    manifest, config, layer = put_image(lay, raw, gz, {"Cmd": ["/bin/sh"], "Env": ["ARCH=" + arch]}, arch)
    return (dict(manifest, mediaType="application/vnd.oci.image.manifest.v1+json",
                 platform={"os": "linux", "architecture": arch}),
            config["digest"], layer["digest"])


def write_index(lay, entries):
    with open(os.path.join(lay, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(lay, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": entries}, f)


def start_registry(workdir, name, storage, port, auth=None, tls=None):
    cfg = {"version": 0.1, "log": {"level": "error"},
           "storage": {"filesystem": {"rootdirectory": storage}, "delete": {"enabled": True}},
           "http": {"addr": "127.0.0.1:%d" % port, "secret": "cloison-test"}}
    if auth:
        cfg["auth"] = auth
    if tls:
        cfg["http"]["tls"] = tls
    path = os.path.join(workdir, name + ".yml")
    with open(path, "w") as f:
        json.dump(cfg, f)  # YAML is a superset of JSON
    log = open(os.path.join(workdir, name + ".log"), "w")
    proc = subprocess.Popen(["docker-registry", "serve", path], stdout=log, stderr=log)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("docker-registry did not start on port %d" % port)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues registry JWTs (RS256, certificate in x5c) to USER:PASSWORD,
    signed with openssl, on a loopback port."""

    def __init__(self, workdir):
        self.key = os.path.join(workdir, "token.key")
        self.cert = os.path.join(workdir, "token.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=cloison-image-token", "-keyout", self.key, "-out", self.cert],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"],
                             stdout=subprocess.PIPE, check=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                server.requests.append(q)
                want = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
                if self.headers.get("Authorization") != want:
                    self.send_response(401)
                    self.end_headers()
                    return
                access = []
                for scope in q.get("scope", []):
                    typ, name, actions = scope.split(":")
                    access.append({"type": typ, "name": name, "actions": actions.split(",")})
                body = json.dumps({"token": server.sign(access)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def sign(self, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 600,
                  "nbf": now - 60, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                             input=signing_input.encode(), stdout=subprocess.PIPE,
                             check=True).stdout
        return signing_input + "." + b64url(sig)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory, busybox_rootfs):
    """Three registries over one storage: open, token-auth, basic-auth."""
    work = str(tmp_path_factory.mktemp("image-registry"))
    storage = os.path.join(work, "storage")
    procs, token = [], None
    try:
        open_port = free_port()
        procs.append(start_registry(work, "open", storage, open_port))
        base = "127.0.0.1:%d" % open_port
        # A multi-platform image (an OCI index) and a plain one, pushed with skopeo.
        lay = os.path.join(work, "layout")
        amd64, amd64_config, amd64_layer = image_manifest(lay, busybox_rootfs, "amd64")
        arm64, arm64_config, _ = image_manifest(lay, busybox_rootfs, "arm64",
                                                ("arch", b"arm64\n"))
        index = put_blob(lay, json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [arm64, amd64]}).encode())
        single, single_config, _ = image_manifest(lay, busybox_rootfs, "amd64",
                                                  ("single", b"1\n"))
        bad, _, bad_layer = image_manifest(lay, busybox_rootfs, "amd64", ("bad", b"1\n"))
        write_index(lay, [
            dict(index, mediaType="application/vnd.oci.image.index.v1+json",
                 annotations={"org.opencontainers.image.ref.name": "multi"}),
            dict(single, annotations={"org.opencontainers.image.ref.name": "single"}),
            dict(bad, annotations={"org.opencontainers.image.ref.name": "bad"}),
        ])
        for tag, repo, extra in (("multi", "test/multi:v1", ["--all"]),
                                 ("single", "test/single:v1", []),
                                 ("bad", "test/bad:v1", [])):
            subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false"] + extra +
                           ["oci:%s:%s" % (lay, tag), "docker://%s/%s" % (base, repo)],
                           check=True)
        # Corrupt the stored layer of test/bad (the registry serves it as is).
        h = bad_layer[7:]
        data_path = os.path.join(storage, "docker/registry/v2/blobs/sha256", h[:2], h, "data")
        data = bytearray(open(data_path, "rb").read())
        data[100] ^= 0xFF
        open(data_path, "wb").write(bytes(data))

        token = TokenServer(work)
        token_port = free_port()
        procs.append(start_registry(work, "token", storage, token_port, {"token": {
            "realm": "http://127.0.0.1:%d/token" % token.port, "service": SERVICE,
            "issuer": ISSUER, "rootcertbundle": token.cert}}))
        htpasswd = os.path.join(work, "htpasswd")
        subprocess.run(["htpasswd", "-Bbc", htpasswd, USER, PASSWORD], check=True,
                       stderr=subprocess.DEVNULL)
        basic_port = free_port()
        procs.append(start_registry(work, "basic", storage, basic_port, {"htpasswd": {
            "realm": "cloison-test", "path": htpasswd}}))
        tls_key, tls_cert = os.path.join(work, "tls.key"), os.path.join(work, "tls.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", tls_key, "-out", tls_cert], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tls_port = free_port()
        procs.append(start_registry(work, "tls", storage, tls_port,
                                    tls={"certificate": tls_cert, "key": tls_key}))
        yield {"open": base, "token": "127.0.0.1:%d" % token_port,
               "tls": "127.0.0.1:%d" % tls_port, "tls_ca": tls_cert,
               "basic": "localhost:%d" % basic_port, "token_server": token,
               "amd64_config": amd64_config[7:], "arm64_config": arm64_config[7:],
               "single_config": single_config[7:], "single_manifest": single["digest"],
               "amd64_layer": amd64_layer, "bad_layer": bad_layer, "work": work}
    finally:
        if token:
            token.stop()
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_pull_plain_http_localhost(tmp_path, registry):
    root = tmp_path / "root"
    ref = registry["open"] + "/test/single:v1"
    p = cloison(root, "pull", ref)
    assert p.stdout.split()[-1] == registry["single_config"]
    assert "done" in p.stdout and "\r" not in p.stdout  # plain lines, not a terminal
    info = inspect(root, ref)
    assert info["Names"] == [ref]
    assert info["ManifestDigest"] == registry["single_manifest"]
    layer = info["Layers"][0]
    assert open(os.path.join(layer, "single")).read() == "1\n"
    assert os.path.isfile(os.path.join(layer, "bin", "busybox"))
    # Again: nothing downloaded, same image.
    p = cloison(root, "pull", ref, "--name", "again:1")
    assert inspect(root, "again:1")["Id"] == registry["single_config"]


def test_pull_by_digest(tmp_path, registry):
    root = tmp_path / "root"
    ref = "%s/test/single@%s" % (registry["open"], registry["single_manifest"])
    p = cloison(root, "pull", ref, "--name", "bydigest:1")
    assert p.stdout.split()[-1] == registry["single_config"]


def test_pull_index_picks_linux_amd64(tmp_path, registry):
    root = tmp_path / "root"
    ref = registry["open"] + "/test/multi:v1"
    assert cloison(root, "pull", ref).stdout.split()[-1] == registry["amd64_config"]
    assert "ARCH=amd64" in inspect(root, ref)["Config"]["config"]["Env"]
    p = cloison(root, "pull", ref, "--platform", "linux/arm64", "--name", "multi:arm64")
    assert p.stdout.split()[-1] == registry["arm64_config"]
    p = cloison(root, "pull", ref, "--platform", "linux/s390x", "--name", "multi:s390x",
                check=False)
    assert p.returncode == 1 and "no manifest for platform linux/s390x" in p.stderr, p.stderr
    assert "linux/arm64" in p.stderr and "linux/amd64" in p.stderr


def test_pull_unknown_and_unreachable(tmp_path, registry):
    root = tmp_path / "root"
    before = store_files(root)
    p = cloison(root, "pull", registry["open"] + "/test/nope:v1", check=False)
    assert p.returncode == 1
    assert "test/nope" in p.stderr and "404" in p.stderr and "MANIFEST_UNKNOWN" in p.stderr
    port = free_port()
    p = cloison(root, "pull", "127.0.0.1:%d/test/single:v1" % port, check=False)
    assert p.returncode == 1 and "127.0.0.1:%d" % port in p.stderr, p.stderr
    p = cloison(root, "pull", "127.0.0.1:1/Bad/Name", check=False)
    assert p.returncode == 1 and "invalid image reference" in p.stderr
    assert store_files(root) == before
    assert names(root) == ["busybox:latest"]


def test_pull_corrupted_blob_refused(tmp_path, registry):
    root = tmp_path / "root"
    before = store_files(root)
    p = cloison(root, "pull", registry["open"] + "/test/bad:v1", check=False)
    assert p.returncode == 1
    assert registry["bad_layer"] in p.stderr and "mismatch" in p.stderr, p.stderr
    assert store_files(root) == before
    assert names(root) == ["busybox:latest"]


def test_pull_bearer_token_auth(tmp_path, registry):
    root = tmp_path / "root"
    ref = registry["token"] + "/test/single:v1"
    p = cloison(root, "pull", ref, check=False)
    assert p.returncode == 1 and "token server" in p.stderr and "401" in p.stderr, p.stderr
    p = cloison(root, "pull", ref, "--creds", USER + ":wrong", check=False)
    assert p.returncode == 1 and "401" in p.stderr
    n = len(registry["token_server"].requests)
    p = cloison(root, "pull", ref, "--creds", "%s:%s" % (USER, PASSWORD))
    assert p.stdout.split()[-1] == registry["single_config"]
    req = registry["token_server"].requests[n]
    assert req["service"] == [SERVICE] and req["scope"] == ["repository:test/single:pull"]


def test_pull_basic_auth(tmp_path, registry):
    root = tmp_path / "root"
    ref = registry["basic"] + "/test/multi:v1"
    p = cloison(root, "pull", ref, check=False)
    assert p.returncode == 1 and "authentication required" in p.stderr, p.stderr
    p = cloison(root, "pull", ref, "--creds", USER + ":nope", check=False)
    assert p.returncode == 1 and "credentials refused" in p.stderr, p.stderr
    p = cloison(root, "pull", ref, "--creds", "%s:%s" % (USER, PASSWORD))
    assert p.stdout.split()[-1] == registry["amd64_config"]


def test_pull_https_with_ca_file(tmp_path, registry):
    root = tmp_path / "root"
    ref = registry["tls"] + "/test/single:v1"
    p = cloison(root, "pull", ref, "--ca-file", registry["tls_ca"])
    assert p.stdout.split()[-1] == registry["single_config"]
    # Another CA: the certificate is refused.
    p = cloison(root, "pull", ref, "--name", "other:1", "--ca-file",
                registry["token_server"].cert, check=False)
    assert p.returncode == 1 and "https://" + registry["tls"] in p.stderr, p.stderr
    assert "certificate" in p.stderr.lower() or "SSL" in p.stderr, p.stderr
    assert "other:1" not in names(root)


def test_skopeo_written_layouts_import_as_pulled(tmp_path, registry):
    """skopeo copies the registry's image into an OCI layout and an OCI
    archive; importing either gives the image that pull gives."""
    root = tmp_path / "root"
    src = "docker://%s/test/single:v1" % registry["open"]
    lay, arch = str(tmp_path / "sk-layout"), str(tmp_path / "sk.tar")
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", src, "oci:%s:v9" % lay],
                   check=True)
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", src,
                    "oci-archive:%s:sk/arch:2" % arch], check=True)
    assert cloison(root, "import", lay).stdout.split()[-1] == registry["single_config"]
    assert cloison(root, "import", arch).stdout.split()[-1] == registry["single_config"]
    assert {"sk-layout:v9", "sk/arch:2"} <= set(names(root))
