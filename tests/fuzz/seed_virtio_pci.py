#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes a seed for fuzz-virtio-pci: a guest that brings virtio-blk up
(features, MSI-X, one queue, DRIVER_OK) and reads sector 0, so that the
fuzzer starts from a working device instead of having to find one."""
import struct
import sys

LENSEL = {1: 0, 2: 1, 4: 2, 8: 3}


def bar(off, value, size):
    return bytes([0]) + struct.pack("<HB", off, LENSEL[size]) + struct.pack("<Q", value)


def cfg(off, value, size):
    return bytes([2]) + struct.pack("<BB", off, {1: 0, 2: 1, 4: 2}[size]) + struct.pack("<I", value)


def mem(gpa, data):
    assert gpa % 16 == 0 and len(data) < 256
    return bytes([4]) + struct.pack("<HB", gpa // 16, len(data)) + data


def desc(addr, length, flags, nxt):
    return struct.pack("<QIHH", addr, length, flags, nxt)


prog = b"".join([
    bar(0x14, 3, 1), bar(0x08, 1, 4), bar(0x0C, 1, 4), bar(0x14, 11, 1),
    cfg(0x86, 0x8000, 2), bar(0x4000 + 16 + 12, 0, 4),
    bar(0x16, 0, 2), bar(0x18, 8, 2), bar(0x1A, 1, 2),
    bar(0x20, 0x1000, 8), bar(0x28, 0x2000, 8), bar(0x30, 0x3000, 8), bar(0x1C, 1, 2),
    bar(0x14, 15, 1),
    mem(0x1000, desc(0x10000, 16, 1, 1) + desc(0x10100, 512, 3, 2) + desc(0x10400, 1, 2, 0)),
    mem(0x2000, struct.pack("<HHH", 0, 1, 0)),
    mem(0x10000, struct.pack("<IIQ", 0, 0, 0)),
    bar(0x3000, 0, 2), bytes([5]),
])
with open(sys.argv[1], "wb") as f:
    f.write(prog)
