#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Refreshes ui/vendor/ (committed) from the npm registry: the web console's
# npm packages (xterm.js and its fit add-on) at the versions that
# ui/package-lock.json pins.  Run it by hand after changing ui/package.json;
# builds and tests never fetch anything (ui/vendor is in the tree).
set -euo pipefail
ui=$(cd "$(dirname "$0")/../ui" && pwd)
npm ci --prefix "$ui" --no-audit --no-fund >/dev/null
m=$ui/node_modules/@xterm
cp "$m/xterm/lib/xterm.mjs" "$m/xterm/css/xterm.css" "$m/addon-fit/lib/addon-fit.mjs" "$ui/vendor/"
cp "$m/xterm/LICENSE" "$ui/vendor/LICENSE.xterm"
sed -i '/^\/\/# sourceMappingURL=/d' "$ui/vendor/xterm.mjs" "$ui/vendor/addon-fit.mjs"
echo "ui/vendor: xterm $(node -p "require('$m/xterm/package.json').version"), addon-fit $(node -p "require('$m/addon-fit/package.json').version")"
