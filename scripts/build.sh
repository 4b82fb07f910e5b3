#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Configures (once) and builds a test build of cloison: the default
# configuration plus the test switches (fault injection, build-tree
# paths; see docs/building.md).
#   scripts/build.sh                    build/
#   scripts/build.sh DIR [OPTION]...    DIR, OPTIONs given to its first `meson setup`
# A build directory configured before the switches existed gets them
# through `meson configure`.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift $(($# > 0 ? 1 : 0))
test_options=(-Dfault_injection=true -Dbuild_tree_paths=true)

# Whether DIR is configured with every -DNAME=VALUE given (meson configure
# would make the next build reconfigure even when nothing changes).
options_set() {
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
try:
    with open(sys.argv[1] + "/meson-info/intro-buildoptions.json") as f:
        have = {o["name"]: o["value"] for o in json.load(f)}
except (OSError, ValueError):
    sys.exit(1)
for arg in sys.argv[2:]:
    name, _, value = arg[2:].partition("=")
    v = have.get(name)
    if (str(v).lower() if isinstance(v, bool) else str(v)) != value:
        sys.exit(1)
PY
}

if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" --buildtype=debugoptimized "${test_options[@]}" "$@" >/dev/null
elif ! options_set "$dir" "${test_options[@]}"; then
  # a directory configured before the options existed must regenerate
  # first, or meson configure refuses them as unknown
  ninja -C "$dir" build.ninja >/dev/null
  meson configure "$dir" "${test_options[@]}" >/dev/null
fi
ninja -C "$dir" >/dev/null
