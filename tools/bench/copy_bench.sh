#!/bin/bash
# copy_bench.sh - copying a checkpoint inside a mixfs mount, side by side
# in one run on the same store: copies through read and write (dd; and cp
# with its defaults: Debian 12's coreutils 9.1 takes a file whose st_blocks
# are below its size, as a compressed file's are, for sparse and copies
# its data with read and write) against copy_file_range, which mixfs
# answers by mapping the source's chunks (cat of coreutils 9, cp
# --sparse=never).
#
# A benchmark, not a test: run it by hand as root (drop_caches), e.g.
#   tools/bench/copy_bench.sh -s 512 -r 2
#
# Input: ~/.cache/mixfs-bench/fs/tensors-SIZEM.bin, the tensor bytes that
# tools/bench/fs_throughput.sh builds (run it once with -s SIZE first).
# Method: mkfs; mount (level mix unless -l); write the input with dd
# conv=fsync; wait until the daemon is idle (lazy coding's recompression
# done).  Then per run and per method, in turn (the order rotates from run
# to run): unmount, drop the page cache, mount (the source is cold), copy
# src to a new file and sync it (timed: wall seconds and the daemon's CPU
# seconds), compare (not timed), note the pack bytes the copy added,
# delete the copy.
set -euo pipefail

usage() {
	cat <<EOF
usage: $0 [-l raw|fast|mix] [-s MIB] [-r RUNS] [-d WORKDIR]
  -l LEVEL   codec level of the mount (default mix)
  -s MIB     file size in MiB (default 512)
  -r RUNS    runs of each method (default 2)
  -d DIR     work directory (default /var/tmp)
EOF
}

LEVEL=mix
SIZE_MIB=512
RUNS=2
BASE=/var/tmp
while getopts "l:s:r:d:h" o; do
	case $o in
	l) LEVEL=$OPTARG ;;
	s) SIZE_MIB=$OPTARG ;;
	r) RUNS=$OPTARG ;;
	d) BASE=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MIXFS=${MIXFS:-$REPO/build/tools/mixfs}
CACHE=${BENCH_CACHE:-$HOME/.cache/mixfs-bench}
INPUT=$CACHE/fs/tensors-${SIZE_MIB}M.bin
PY=python3
[ -x "$MIXFS" ] || { echo "mixfs binary not found: $MIXFS (build first or set MIXFS)" >&2; exit 1; }
[ -s "$INPUT" ] || { echo "$INPUT missing: run tools/bench/fs_throughput.sh -s $SIZE_MIB once" >&2; exit 1; }
BYTES=$(stat -c %s "$INPUT")

echo "command: $0 $*"
echo "mixfs: $MIXFS ($(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)), level $LEVEL"
echo "kernel: $(uname -r), cpus: $(nproc), coreutils: $(cp --version | head -1)"
echo "input: $INPUT ($BYTES bytes)"

# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"
W=$(mktemp -d "$BASE/mixfs-copybench.XXXXXX")
MNT=$W/mnt
STORE=$W/store
mkdir -p "$MNT"
PID=
trap 'fuse_cleanup; rm -rf "$W"' EXIT
pack_bytes() { du -sb "$STORE/packs" | cut -f1; }
mount_cold() {
	drop_caches
	fuse_mount "$W/daemon.log" "$MIXFS" mount -f -o "level=$LEVEL" "$STORE" "$MNT"
}

"$MIXFS" mkfs "$STORE" >/dev/null
mount_cold
dd if="$INPUT" of="$MNT/src" bs=1M conv=fsync status=none
wait_quiet
fuse_umount

declare -A WALL CPU ADDED
copy_with() { # copy_with METHOD RUN
	local m=$1 r=$2 t0 t1 c0 c1 p0 p1
	mount_cold
	p0=$(pack_bytes)
	c0=$(daemon_cpu)
	t0=$(now)
	case $m in
	dd) dd if="$MNT/src" of="$MNT/dst" bs=1M status=none ;;
	cp) cp "$MNT/src" "$MNT/dst" ;;
	cp-sparse-never) cp --sparse=never "$MNT/src" "$MNT/dst" ;;
	cat) cat "$MNT/src" >"$MNT/dst" ;;
	esac
	sync -f "$MNT/dst"
	t1=$(now)
	c1=$(daemon_cpu)
	p1=$(pack_bytes)
	cmp "$INPUT" "$MNT/dst" || { echo "$m: the copy differs from the input" >&2; exit 1; }
	rm "$MNT/dst"
	fuse_umount
	WALL[$m.$r]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	CPU[$m.$r]=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }')
	ADDED[$m.$r]=$((p1 - p0))
}

METHODS=(dd cp cp-sparse-never cat)
for r in $(seq 1 "$RUNS"); do
	for i in "${!METHODS[@]}"; do
		copy_with "${METHODS[$(((i + r - 1) % ${#METHODS[@]}))]}" "$r"
	done
done

echo
echo "| method | run | wall s | MB/s | daemon CPU s | pack bytes added |"
echo "|---|---:|---:|---:|---:|---:|"
for m in "${METHODS[@]}"; do
	for r in $(seq 1 "$RUNS"); do
		echo "| $m | $r | ${WALL[$m.$r]} | $(awk -v b="$BYTES" -v s="${WALL[$m.$r]}" 'BEGIN { printf "%.1f", b / s / 1e6 }') | ${CPU[$m.$r]} | ${ADDED[$m.$r]} |"
	done
done
