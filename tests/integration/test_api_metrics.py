# SPDX-License-Identifier: Apache-2.0
"""/1.0/metrics in the Prometheus text format: per-instance CPU, memory,
disk and network counters and the server's own, checked by promtool and
scraped by a real Prometheus (Debian's package).  Prometheus speaks TCP
and the API a Unix socket: the test bridges a free loopback port to the
socket (127.0.0.1 only)."""
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from test_api import api, container_body  # noqa: F401 (fixture)


def parse(text):
    """{(metric, frozenset(labels)): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        pairs = frozenset(tuple(kv.split("=", 1)) for kv in labels.rstrip("}").split(",") if kv)
        out[(name, frozenset((k, v.strip('"')) for k, v in pairs))] = float(value)
    return out


def value(samples, metric, **labels):
    want = set(labels.items())
    found = [v for (m, l), v in samples.items() if m == metric and want <= set(l)]
    assert found, (metric, labels, sorted(k[0] for k in samples))
    return sum(found)


def metrics(api):
    st, body, h = api.request("GET", "/1.0/metrics")
    assert st == 200 and h["Content-Type"].startswith("text/plain; version=0.0.4")
    return body.decode()


def test_metrics_per_instance_and_server(api):
    net = "apimet%d" % (os.getpid() % 10000)
    api.ok("POST", "/1.0/networks", {"name": net, "subnet": "10.231.9.0/24",
                                      "mode": "isolated"}, status=201)
    api.run_op("POST", "/1.0/instances", dict(container_body(
        "busy", ["sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done;"
                 " ping -c 3 -W 1 10.231.9.1; head -c 4000000 /dev/zero > /big; sleep 1000"]),
        no_network=False, networks=[net]))
    api.run_op("POST", "/1.0/instances", container_body("idle", ["sleep", "1000"]))
    api.run_op("POST", "/1.0/instances", container_body("gone", ["true"]))
    deadline = time.monotonic() + 120  # a loaded machine runs the loop slowly
    while True:
        text = metrics(api)
        s = parse(text)
        try:
            if (value(s, "cloison_cpu_seconds_total", name="busy") > 0.05
                    and value(s, "cloison_network_transmit_packets_total", name="busy") >= 3
                    and value(s, "cloison_memory_usage_bytes", name="busy") > 100000):
                break
        except AssertionError:
            pass
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
    # promtool lints the exposition
    p = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                       capture_output=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert value(s, "cloison_memory_usage_bytes", name="busy", type="container") > 100000
    assert value(s, "cloison_cpu_seconds_total", name="idle") < value(
        s, "cloison_cpu_seconds_total", name="busy")
    assert value(s, "cloison_network_receive_bytes_total", name="busy") > 0
    devs = {dict(l)["device"] for (m, l) in s if m == "cloison_network_receive_bytes_total"
            and dict(l)["name"] == "busy"}
    assert devs and "lo" not in devs
    value(s, "cloison_disk_written_bytes_total", name="busy")  # present
    assert value(s, "cloison_instance_running", name="busy") == 1
    assert value(s, "cloison_instance_running", name="gone") == 0
    assert ("cloison_cpu_seconds_total", frozenset({("name", "gone"), ("type", "container")})) \
        not in s
    # the server's own
    assert value(s, "cloison_api_requests_total", code="202") >= 3
    assert value(s, "cloison_api_operations", status="success") >= 3
    assert value(s, "cloison_daemon_threads") >= 2
    assert value(s, "cloison_daemon_uptime_seconds") > 0
    st, _, _ = api.request("GET", "/1.0/nope")
    assert value(parse(metrics(api)), "cloison_api_requests_total", code="404") >= 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bridge:
    """127.0.0.1:PORT -> the API's Unix socket, one thread pair a
    connection."""

    def __init__(self, unix_path):
        self.unix_path = unix_path
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX)
            u.connect(self.unix_path)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.srv.close()


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus not installed")
def test_prometheus_scrapes_the_api(api, tmp_path):
    api.run_op("POST", "/1.0/instances", container_body(
        "scraped", ["sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; sleep 1000"]))
    bridge = Bridge(api.sock)
    web = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: cloison\n    metrics_path: /1.0/metrics\n"
        "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % bridge.port)
    log = open(tmp_path / "prometheus.log", "w")
    prom = subprocess.Popen(
        ["prometheus", "--config.file=%s" % (tmp_path / "prometheus.yml"),
         "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
         "--web.listen-address=127.0.0.1:%d" % web], stdout=log, stderr=subprocess.STDOUT)

    def query(q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (web, urllib.parse.urlencode({"query": q}))
        with urllib.request.urlopen(url, timeout=5) as r:
            j = json.load(r)
        assert j["status"] == "success", j
        return j["data"]["result"]

    try:
        deadline = time.monotonic() + 90
        result = []
        while not result:
            assert prom.poll() is None, open(tmp_path / "prometheus.log").read()
            assert time.monotonic() < deadline, open(tmp_path / "prometheus.log").read()[-3000:]
            time.sleep(1)
            try:
                result = query('cloison_cpu_seconds_total{name="scraped"}')
            except OSError:
                pass  # not listening yet
        [r] = result
        assert r["metric"]["type"] == "container" and r["metric"]["job"] == "cloison"
        assert float(r["value"][1]) > 0
        [up] = query('up{job="cloison"}')
        assert up["value"][1] == "1"
        assert float(query("cloison_daemon_uptime_seconds")[0]["value"][1]) > 0
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        bridge.close()
        log.close()
