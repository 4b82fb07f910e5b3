#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# a while.  Usage: tests/fuzz/run.sh [SECONDS per target, default 60]
# The corpus grows in build-fuzz/corpus-<target>/ across runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
out=build-fuzz
mkdir -p "$out"
flags=(-g -O1 -std=gnu11 -D_GNU_SOURCE -Isrc -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined)
clang "${flags[@]}" tests/fuzz/fuzz_virtq.c src/vmm/virtq.c src/vmm/guest_mem.c \
  -o "$out/fuzz-virtq"
clang "${flags[@]}" -Itests/unit/virtio tests/fuzz/fuzz_virtio_pci.c tests/unit/virtio/fake_vm.c \
  src/vmm/virtq.c src/vmm/guest_mem.c src/vmm/virtio_pci.c src/vmm/virtio_blk.c \
  src/vmm/disk_track.c \
  src/vmm/virtio_rng.c src/vmm/virtio_console.c src/vmm/virtio_net.c src/vmm/virtio_vsock.c \
  src/common/error.c src/common/util.c src/common/log.c src/common/cleanup.c src/common/json.c \
  -ljansson -lpthread -o "$out/fuzz-virtio-pci"
clang "${flags[@]}" tests/fuzz/fuzz_virtio_fs.c src/vmm/fuse_server.c \
  src/common/error.c src/common/util.c src/common/log.c src/common/cleanup.c src/common/json.c \
  -ljansson -o "$out/fuzz-virtio-fs"
export ASAN_OPTIONS=detect_leaks=0
mkdir -p "$out/corpus-fuzz-virtio-pci"
python3 tests/fuzz/seed_virtio_pci.py "$out/corpus-fuzz-virtio-pci/seed-blk-read"
python3 tests/fuzz/seed_virtio_fs.py "$out/corpus-fuzz-virtio-fs"
for t in fuzz-virtq fuzz-virtio-pci fuzz-virtio-fs; do
  mkdir -p "$out/corpus-$t"
  "$out/$t" -max_total_time="$secs" -max_len=70000 -print_final_stats=1 "$out/corpus-$t"
done
