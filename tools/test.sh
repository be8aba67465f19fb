#!/usr/bin/env bash
# Installs dependencies, builds mixfs and runs every test (unit, fuzz-corpus
# replay, integration tests that mount real stores).  Needs root or sudo
# (apt-get, /dev/fuse).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
BUILD=${BUILD:-build}
[ -d "$BUILD" ] || meson setup "$BUILD" -Dwerror=true
meson compile -C "$BUILD"
meson test -C "$BUILD" --print-errorlogs "$@"
