#!/usr/bin/env bash
# Installs dependencies, builds mixfs, creates a demo store and mounts it:
#   store  /tmp/mixfs-demo/store   (MIXFS_DEMO=DIR to put it elsewhere)
#   mount  /tmp/mixfs-demo/mnt
# Safe to run again: an existing demo store is reused, a stale mount is
# unmounted first.  Needs root or sudo for apt-get (tools/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
BUILD=${BUILD:-build}
[ -d "$BUILD" ] || meson setup "$BUILD"
meson compile -C "$BUILD" mixfs
MIXFS=$(pwd)/$BUILD/tools/mixfs

DEMO=${MIXFS_DEMO:-/tmp/mixfs-demo}
STORE=$DEMO/store
MNT=$DEMO/mnt
mkdir -p "$MNT"
if mountpoint -q "$MNT"; then
	# (the old daemon commits after this returns; mixfs mount below waits
	# for it to let go of the store: mixfs(8))
	fusermount3 -u "$MNT"
fi
# index/ is what marks a directory as a store (see ARCHITECTURE.md).
if [ ! -d "$STORE/index" ]; then
	"$MIXFS" mkfs "$STORE"
fi
"$MIXFS" mount "$STORE" "$MNT"

cat <<EOF

mixfs is mounted: store $STORE, mount point $MNT

Try:
  cp some-checkpoint.safetensors $MNT/
  cmp some-checkpoint.safetensors $MNT/some-checkpoint.safetensors
  ls -ls $MNT                 # first column: blocks actually stored
  getfattr -n user.mixfs.stored_bytes $MNT/some-checkpoint.safetensors
  du -sh $STORE               # what the store uses on disk

Options and commands:
  $MIXFS mount --help
  man -l $(pwd)/man/mixfs.8

Unmount:
  fusermount3 -u $MNT
Remove the demo:
  fusermount3 -u $MNT; rm -rf $DEMO
EOF
