#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Seed corpus for fuzz-api-router: one file per request that the API
answers (method byte, then path, query, If-Match, body split by NULs).
Usage: seed_api_router.py DIR"""
import json
import os
import sys

METHODS = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}

SEEDS = [
    ("GET", "/", "", "", ""),
    ("GET", "/1.0", "", "", ""),
    ("GET", "/1.0/instances", "recursion=1", "", ""),
    ("GET", "/1.0/instances", "recursion=0&filter=status%3Drunning", "", ""),
    ("POST", "/1.0/instances", "", "", json.dumps(
        {"name": "c1", "source": {"type": "image", "image": "busybox"}, "type": "container",
         "config": {"limits.memory": "128M", "limits.cpu": 1}, "environment": {"A": "b"},
         "command": ["sh", "-c", "true"], "no_network": True})),
    ("POST", "/1.0/instances", "", "", json.dumps(
        {"name": "c2", "source": {"type": "copy", "source": "c1"}})),
    ("GET", "/1.0/instances/c1", "", "", ""),
    ("PATCH", "/1.0/instances/c1", "", '"abc"', json.dumps({"config": {"limits.memory": "64M"}})),
    ("PUT", "/1.0/instances/c1", "", '"abc"', json.dumps({"name": "c1", "config": {"limits.cpu": 1}})),
    ("DELETE", "/1.0/instances/c1", "force=1", "", ""),
    ("GET", "/1.0/instances/c1/state", "", "", ""),
    ("PUT", "/1.0/instances/c1/state", "", "", json.dumps(
        {"action": "stop", "timeout": 5, "force": False})),
    ("GET", "/1.0/instances/c1/logs", "", "", ""),
    ("POST", "/1.0/instances/c1/exec", "", "", json.dumps(
        {"command": ["sh"], "environment": {"T": "x"}, "interactive": True, "width": 80,
         "height": 24, "user": 0, "group": 0, "cwd": "/", "wait-for-websocket": True})),
    ("GET", "/1.0/instances/c1/console", "type=console&width=80&height=24", "", ""),
    ("GET", "/1.0/instances/c1/snapshots", "recursion=1", "", ""),
    ("POST", "/1.0/instances/c1/snapshots", "", "", json.dumps({"name": "s1", "stateful": True})),
    ("GET", "/1.0/instances/c1/snapshots/s1", "", "", ""),
    ("POST", "/1.0/instances/c1/snapshots/s1", "", "", json.dumps({"restore": True})),
    ("DELETE", "/1.0/instances/c1/snapshots/s1", "", "", ""),
    ("GET", "/1.0/images", "recursion=1", "", ""),
    ("POST", "/1.0/images", "", "", json.dumps(
        {"source": {"type": "registry", "image": "127.0.0.1:1/x:latest"}, "name": "x"})),
    ("GET", "/1.0/images/busybox", "", "", ""),
    ("DELETE", "/1.0/images/busybox", "", "", ""),
    ("GET", "/1.0/networks", "recursion=1", "", ""),
    ("GET", "/1.0/networks/n1", "", "", ""),
    ("DELETE", "/1.0/networks/n1", "", "", ""),
    ("GET", "/1.0/operations", "recursion=1", "", ""),
    ("GET", "/1.0/operations/00000000-0000-4000-8000-000000000000", "", "", ""),
    ("GET", "/1.0/operations/00000000-0000-4000-8000-000000000000/wait", "timeout=0", "", ""),
    ("GET", "/1.0/operations/00000000-0000-4000-8000-000000000000/websocket", "secret=ab", "",
     ""),
    ("DELETE", "/1.0/operations/00000000-0000-4000-8000-000000000000", "", "", ""),
    ("GET", "/1.0/events", "type=lifecycle,operation", "", ""),
    ("GET", "/1.0/metrics", "", "", ""),
    ("GET", "/1.0/instances/%zz/state", "", "", ""),
    ("POST", "/1.0/instances", "", "", '{"name": [1, {"a": null}], "x": 1e400}'),
]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for i, (method, path, query, if_match, body) in enumerate(SEEDS):
        data = bytes([METHODS[method]]) + b"\0".join(
            s.encode() for s in (path, query, if_match, body))
        with open(os.path.join(out, "seed-%02d" % i), "wb") as f:
            f.write(data)


main()
