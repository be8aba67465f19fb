#!/usr/bin/env bash
# Installs dependencies, builds mixfs and runs every test (unit, fuzz-corpus
# replay, integration tests that mount real stores), then the same tests
# again in an AddressSanitizer + UBSan build.  Needs root or sudo (apt-get,
# /dev/fuse).  SANITIZE=0 skips the sanitizer pass; extra arguments go to
# `meson test` (e.g. a test name or --suite integration).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
BUILD=${BUILD:-build}
[ -d "$BUILD" ] || meson setup "$BUILD" -Dwerror=true
meson compile -C "$BUILD"
meson test -C "$BUILD" --print-errorlogs "$@"
if [ "${SANITIZE:-1}" != 0 ]; then
	ASAN_BUILD="$BUILD-asan"
	[ -d "$ASAN_BUILD" ] || meson setup "$ASAN_BUILD" -Dwerror=true \
		-Db_sanitize=address,undefined -Db_lundef=false
	meson compile -C "$ASAN_BUILD"
	UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 \
		meson test -C "$ASAN_BUILD" --print-errorlogs --timeout-multiplier 4 "$@"
fi
