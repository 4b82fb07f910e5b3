# SPDX-License-Identifier: Apache-2.0
"""A websocket handshake by hand (RFC 6455), for the tests that check
what a server answers to one: the console's origin checks (test_ui.py)
and a live move's migration stream route (test_move.py, which runs it in
another network namespace: python3 -c, this folder on sys.path)."""
import base64
import os


def handshake(s, path, host, headers=(), upgrade=True):
    """Sends the request for path on the connected socket s; returns the
    answer's head (bytes, up to its blank line)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade"]
    lines += ["Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13"]
    lines += ["%s: %s" % kv for kv in headers]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            break
        head += chunk
    return head
