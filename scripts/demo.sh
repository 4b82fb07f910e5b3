#!/bin/bash
# The main job: set up, build, then launch a container from the built-in
# busybox image (offline) and print from inside it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
work=$(mktemp -d /tmp/cloison-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
scripts/mkrootfs-busybox.sh "$work/rootfs" >/dev/null
build/src/cli/cloison-runtime spec --bundle "$work" --rootless=false >/dev/null 2>&1 || \
  build/src/cli/cloison-runtime spec --bundle "$work"
sed -i 's/"sh"/"sh", "-c", "echo hello from $(hostname), pid $$, in an isolated container"/' "$work/config.json"
build/src/cli/cloison-runtime --root "$work/state" run --bundle "$work" demo
