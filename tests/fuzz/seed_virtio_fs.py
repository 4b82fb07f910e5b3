#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes seeds for fuzz-virtio-fs: programs of FUSE requests (after the
target's own FUSE_INIT) that look up, open, read, write, list, create,
link and rename in the fuzz tree, so that the fuzzer starts from requests
the server accepts.  Each record: u16 length, u8 reply room (0xff: full),
then the request.  Usage: seed_virtio_fs.py DIR"""
import os
import struct
import sys

LOOKUP, GETATTR, SETATTR, READLINK, SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR = 1, 3, 4, 5, 6, 8, 9, 10, 11
RENAME, LINK, OPEN, READ, WRITE, STATFS, RELEASE, FSYNC = 12, 13, 14, 15, 16, 17, 18, 20
SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR, FLUSH = 21, 22, 23, 24, 25
OPENDIR, READDIR, RELEASEDIR, ACCESS, CREATE = 27, 28, 29, 34, 35
DESTROY, FALLOCATE, READDIRPLUS, RENAME2 = 38, 43, 44, 45

unique = 1


def req(opcode, nodeid, body=b"", room=0xFF):
    global unique
    unique += 1
    hdr = struct.pack("<IIQQIIIHH", 40 + len(body), opcode, unique, nodeid, 0, 0, 1, 0, 0)
    r = hdr + body
    return struct.pack("<HB", len(r), room) + r


def name(s):
    return s.encode() + b"\0"


# Node ids: the server hands out 2, 3, ... in lookup order; file handles
# are (generation << 32) | slot, generations counting inodes and handles.
def fh(gen, slot):
    return (gen << 32) | slot


seeds = {
    "lookup-read": [
        req(LOOKUP, 1, name("file")),  # node 2, gen 2
        req(GETATTR, 2, struct.pack("<IIQ", 0, 0, 0)),
        req(OPEN, 2, struct.pack("<II", os.O_RDWR, 0)),  # fh gen 3 slot 1
        req(READ, 2, struct.pack("<QQIIQII", fh(3, 1), 0, 4096, 0, 0, 0, 0)),
        req(WRITE, 2, struct.pack("<QQIIQII", fh(3, 1), 2, 3, 0, 0, 0, 0) + b"abc"),
        req(FLUSH, 2, struct.pack("<QIIQ", fh(3, 1), 0, 0, 0)),
        req(FSYNC, 2, struct.pack("<QII", fh(3, 1), 0, 0)),
        req(RELEASE, 2, struct.pack("<QIIQ", fh(3, 1), 0, 0, 0)),
    ],
    "readdir": [
        req(LOOKUP, 1, name("dir")),
        req(OPENDIR, 2, struct.pack("<II", 0, 0)),
        req(READDIRPLUS, 2, struct.pack("<QQIIQII", fh(3, 1), 0, 4096, 0, 0, 0, 0)),
        req(READDIR, 1, struct.pack("<QQIIQII", fh(3, 1), 0, 200, 0, 0, 0, 0), 8),
        req(RELEASEDIR, 2, struct.pack("<QIIQ", fh(3, 1), 0, 0, 0)),
    ],
    "create-rename": [
        req(CREATE, 1, struct.pack("<IIII", os.O_RDWR | os.O_CREAT, 0o100644, 0, 0) + name("new")),
        req(MKDIR, 1, struct.pack("<II", 0o755, 0) + name("d")),
        req(RENAME, 1, struct.pack("<Q", 3) + name("new") + name("moved")),
        req(RENAME2, 3, struct.pack("<QII", 1, 1, 0) + name("moved") + name("file")),
        req(LINK, 1, struct.pack("<Q", 2) + name("hard")),
        req(SYMLINK, 1, name("sl") + name("../../etc")),
        req(MKNOD, 1, struct.pack("<IIII", 0o10644, 0, 0, 0) + name("fifo")),
        req(UNLINK, 1, name("hard")),
        req(RMDIR, 1, name("d")),
        req(FALLOCATE, 2, struct.pack("<QQQII", fh(3, 1), 0, 100, 0, 0)),
    ],
    "escape": [
        req(LOOKUP, 1, name("up")),
        req(LOOKUP, 2, name("outside")),
        req(LOOKUP, 1, name("..")),
        req(LOOKUP, 1, name("out")),
        req(CREATE, 1, struct.pack("<IIII", os.O_WRONLY | os.O_TRUNC, 0o644, 0, 0) + name("secretlink")),
        req(READLINK, 2),
        req(OPEN, 2, struct.pack("<II", 0, 0)),
    ],
    "attrs": [
        req(LOOKUP, 1, name("file")),
        req(SETATTR, 2, struct.pack("<IIQQQQQQIIIIIII", 1 | 8 | 16 | 32, 0, 0, 5, 0, 1, 2, 3, 0, 0, 0, 0o600, 0, 0, 0)),
        req(SETXATTR, 2, struct.pack("<II", 3, 0) + name("user.a") + b"xyz"),
        req(GETXATTR, 2, struct.pack("<II", 0, 0) + name("user.a")),
        req(GETXATTR, 2, struct.pack("<II", 64, 0) + name("user.a")),
        req(LISTXATTR, 2, struct.pack("<II", 64, 0)),
        req(REMOVEXATTR, 2, name("user.a")),
        req(STATFS, 1),
        req(ACCESS, 2, struct.pack("<II", 2, 0)),
        req(DESTROY, 0),
    ],
}

os.makedirs(sys.argv[1], exist_ok=True)
for n, records in seeds.items():
    with open(os.path.join(sys.argv[1], "seed-" + n), "wb") as f:
        f.write(b"".join(records))
