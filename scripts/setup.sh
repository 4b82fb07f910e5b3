#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Installs every build and test dependency with apt-get (Debian 12, root).
# Idempotent: when everything is there it asks apt nothing and returns at once.
# Usage: scripts/setup.sh [build|test]   (default: both lists)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lists=("$here/packages/build.txt")
[ "${1:-test}" = build ] || lists+=("$here"/packages/*.txt)

mapfile -t wanted < <(cat "${lists[@]}" | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
missing=()
for p in "${wanted[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done
# The web console's npm packages (xterm.js), pinned by ui/package-lock.json,
# from the npm registry, when ui/node_modules does not hold that lock's set.
npm_setup() {
  local lock="$here/../ui/package-lock.json" got="$here/../ui/node_modules/.package-lock.json"
  [ -f "$lock" ] || return 0
  if [ -f "$got" ] && [ "$got" -nt "$lock" ]; then return 0; fi
  command -v npm >/dev/null || { echo "setup: npm is needed for the console's xterm.js" >&2; return 1; }
  echo "setup: npm ci --prefix ui"
  npm ci --prefix "$here/../ui" --no-audit --no-fund >/dev/null
}
npm_setup
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
