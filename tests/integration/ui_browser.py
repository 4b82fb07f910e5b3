# SPDX-License-Identifier: Apache-2.0
"""What the web console's browser tests and bench/ui share: a cloisond
serving the console on a loopback port inside a network namespace of its
own, the test's thread moved into that namespace (so the browser it
starts and the requests it makes reach that loopback, and nothing
else), one-time login links, and headless Chromium driven by Selenium."""
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

CLONE_NEWNET = 0x40000000
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


class ConsoleDaemon:
    """cloisond with its TLS listener on 127.0.0.1:8443 in a fresh network
    namespace (lo up: the port is the namespace's own).  enter() moves the calling thread into that namespace, leave()
    back; child processes started in between (the browser) are in it."""

    def __init__(self, workdir, extra=()):
        self.dir = str(workdir)
        self.root = os.path.join(self.dir, "root")
        self.sock = os.path.join(self.dir, "api.sock")
        self.log = os.path.join(self.dir, "cloisond.log")
        self.extra = list(extra)
        self.proc = None
        self.base = None
        self._home_ns = None

    def start(self):
        cloisond = os.environ.get("CLOISOND") or os.path.join(BUILD, "src", "cli", "cloisond")
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', cloisond,
                 "--root", self.root, "--socket", self.sock, "--listen", "127.0.0.1:8443",
                 "--debug"] + self.extra, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            m = re.search(r"web console is at (\S+)/ui/", open(self.log).read())
            # "serving": the Unix socket listens too (TLS starts first)
            if m and "cloisond: serving" in open(self.log).read():
                self.base = m.group(1)
                break
            assert self.proc.poll() is None, open(self.log).read()
            assert time.monotonic() < deadline, "cloisond did not start: " + open(self.log).read()
            time.sleep(0.05)
        self.enter()

    def enter(self):
        if self._home_ns is None:
            self._home_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        _setns("/proc/%d/ns/net" % self.proc.pid)

    def leave(self):
        if self._home_ns is not None:
            if _libc.setns(self._home_ns, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
            os.close(self._home_ns)
            self._home_ns = None

    def stop(self):
        self.leave()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # ---- the trusted side: the Unix socket ----

    def unix(self, method, path, body=None, timeout=60):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock)
        c = http.client.HTTPConnection("localhost", timeout=timeout)
        c.sock = s
        c.request(method, path, body=json.dumps(body) if body is not None else None)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (json.loads(data) if data[:1] in (b"{", b"[") else data)

    def ok(self, method, path, body=None):
        st, j = self.unix(method, path, body)
        assert st in (200, 201, 202), (method, path, st, j)
        if st == 202:
            op = self.unix("GET", j["operation"] + "/wait?timeout=120", timeout=130)[1]
            assert op["metadata"]["status"] == "success", op
            return op["metadata"]
        return j["metadata"]

    def link(self):
        """A one-time login link, as `cloison ui-link` prints it."""
        p = subprocess.run([os.path.join(BUILD, "src", "cli", "cloison"), "--root", self.root,
                            "ui-link"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    def cleanup_instances(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        for url in self.unix("GET", "/1.0/instances")[1]["metadata"]:
            st, j = self.unix("DELETE", url + "?force=1")
            if st == 202:
                self.unix("GET", j["operation"] + "/wait?timeout=60", timeout=70)
        # and the networks (`default`, made on first use): their dnsmasq
        # would keep the daemon's network namespace alive after it
        if os.path.isdir(os.path.join(self.root, "net")):  # (listing would make one)
            for url in self.unix("GET", "/1.0/networks")[1]["metadata"]:
                self.unix("DELETE", url)

    # ---- the browser's side: TCP on the namespace's loopback ----

    def tls_context(self):
        """Trusts the daemon's own certificate (self-signed, ROOT/tls)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def connect(self):
        """A TCP (and TLS) connection to the listener, for raw requests."""
        host, port = self.base.split("//")[1].rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=20)
        if self.base.startswith("https:"):
            s = self.tls_context().wrap_socket(s, server_hostname=host.strip("[]"))
        return s

    def http(self, method, path, headers=None, body=None):
        host, port = self.base.split("//")[1].rsplit(":", 1)
        if self.base.startswith("https:"):
            c = http.client.HTTPSConnection(host, int(port), timeout=30,
                                            context=self.tls_context())
        else:
            c = http.client.HTTPConnection(host, int(port), timeout=30)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, r.headers, data


def chromium(profile_dir, width=1280, height=900):
    """Headless Chromium through chromedriver, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    o = webdriver.ChromeOptions()
    for a in CHROMIUM_FLAGS:
        o.add_argument(a)
    o.add_argument("--window-size=%d,%d" % (width, height))
    # the daemon's certificate is its own, self-signed: the tests trust it
    o.add_argument("--ignore-certificate-errors")
    o.add_argument("--user-data-dir=%s" % tempfile.mkdtemp(prefix="profile-", dir=str(profile_dir)))
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = shutil.which("chromium") or "/usr/bin/chromium"
    o.binary_location = chrome
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                            options=o)
