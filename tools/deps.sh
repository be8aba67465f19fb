#!/usr/bin/env bash
# Installs the Debian 12 packages mixfs needs to build, test and benchmark.
# Used by tools/demo.sh, tools/test.sh and .ci/run; safe to run again.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS=(build-essential meson ninja-build pkg-config
      libfuse3-dev fuse3 liburing-dev liblmdb-dev lmdb-utils libcmocka-dev
      libssl-dev libxxhash-dev libzstd-dev
      attr rsync xz-utils zstd man-db python3 python3-numpy clang libclang-rt-14-dev)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq "${missing[@]}"
fi
