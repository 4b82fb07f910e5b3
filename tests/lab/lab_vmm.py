# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the cloison-vmm lab tests (test_lab_vmm.py) and
bench/vmm-boot."""
import subprocess


def extract_vmlinux(bzimage, out):
    """Writes to `out` the ELF vmlinux inside Debian's bzImage (LZ4, legacy
    frame): the same kernel build, without the self-decompression."""
    data = open(bzimage, "rb").read()
    at = data.find(b"\x02\x21\x4c\x18")
    if at < 0:
        raise ValueError("no LZ4 payload in %s" % bzimage)
    elf = subprocess.run(["lz4", "-d", "-c"], input=data[at:], capture_output=True).stdout
    if elf[:4] != b"\x7fELF":
        raise ValueError("the LZ4 payload of %s is not an ELF file" % bzimage)
    with open(out, "wb") as f:
        f.write(elf)
