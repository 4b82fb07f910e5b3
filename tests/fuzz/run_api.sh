#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds fuzz-api-router (clang, ASan + UBSan; build-fuzz/), seeds its
# corpus and runs it in a network namespace of its own (a request may
# create a network).  Usage: tests/fuzz/run_api.sh [RUNS, default 10^7]
# [libFuzzer options...]; the corpus grows in build-fuzz/corpus-api-router.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-10000000}
shift $(($# > 0 ? 1 : 0))
if [ ! -d build-fuzz ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Dwerror=false
fi
ninja -C build-fuzz src/api/fuzz-api-router
corpus=build-fuzz/corpus-api-router
python3 tests/fuzz/seed_api_router.py "$corpus"
export ASAN_OPTIONS=detect_leaks=0
exec unshare --net build-fuzz/src/api/fuzz-api-router -runs="$runs" -max_len=4096 \
  -dict=tests/fuzz/api_router.dict -print_final_stats=1 "$@" "$corpus"
