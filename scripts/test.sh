#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite: set-up, build, unit tests, integration and lab tests.
# Ends with one line "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec /usr/bin/python3 scripts/run_tests.py "$@"
