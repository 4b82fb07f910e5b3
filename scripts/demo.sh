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
rt=build/src/cli/cloison-runtime
"$rt" spec --bundle "$work"
# No terminal (the demo may run without one) and a command that shows the
# isolation: its own hostname, pid 1, only a loopback interface.
sed -i -e 's/"terminal": true/"terminal": false/' \
  -e 's|"sh"$|"sh", "-c", "echo hello from $(hostname), pid $$, network: $(ls /sys/class/net), in an isolated container"|' \
  "$work/config.json"
"$rt" --root "$work/state" run --bundle "$work" "demo-$$"
