#!/bin/bash
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
for t in fuzz-virtq; do
  mkdir -p "$out/corpus-$t"
  "$out/$t" -max_total_time="$secs" -max_len=70000 -print_final_stats=1 "$out/corpus-$t"
done
