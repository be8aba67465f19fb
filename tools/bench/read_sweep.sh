#!/bin/bash
# read_sweep.sh - cold sequential reads of one stored file under several
# mount option sets, side by side in one run (a benchmark, not a test).
#
#   tools/bench/read_sweep.sh [-l LEVEL] [-s MIB] [-r RUNS] OPTS...
#   e.g. tools/bench/read_sweep.sh -l mix -s 256 readahead=4 readahead=16 workers=1
#
# The input (fs_throughput.sh's tensor file, $BENCH_CACHE/fs/tensors-NM.bin,
# made by that script) is written once into a fresh store at LEVEL, the
# mount is left to go idle (lazy coding's recompression) and gc'd; then for
# each OPTS, RUNS times: mount -o OPTS, drop caches, dd bs=1M to /dev/null,
# unmount.  Prints the best and all MB/s (10^6 bytes per second) per OPTS.
# Runs alternate between option sets so that drifting machine load hits
# them alike.  An OPTS of the form B:opts mounts with the binary $MIXFS_B
# instead (two builds side by side on the same store; "B:" alone for its
# defaults); a leading "ra=KB:" sets the mount's kernel readahead
# (/sys/class/bdi/MAJ:MIN/read_ahead_kb) to KB after mounting, before the
# read (mixfs raises it to 4096 only from below):
#   tools/bench/read_sweep.sh -l mix -s 512 -r 4 ra=1024: ra=4096:
# Root (drop_caches).  Environment: MIXFS, MIXFS_B, BENCH_CACHE, PYTHON.
set -euo pipefail

LEVEL=mix SIZE=256 RUNS=3
while getopts "l:s:r:h" o; do
	case $o in
	l) LEVEL=$OPTARG ;;
	s) SIZE=$OPTARG ;;
	r) RUNS=$OPTARG ;;
	*) sed -n '2,21p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,21p' "$0" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MIXFS=${MIXFS:-$REPO/build/tools/mixfs}
PY=${PYTHON:-/usr/bin/python3}
IN=${BENCH_CACHE:-$HOME/.cache/mixfs-bench}/fs/tensors-${SIZE}M.bin
[ -r "$IN" ] || { echo "no $IN: run tools/bench/fs_throughput.sh -s $SIZE once" >&2; exit 1; }
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"

bench_workdir sweep
STORE=$W/store

echo "command: $0 -l $LEVEL -s $SIZE -r $RUNS $*"
echo "mixfs: $MIXFS${MIXFS_B:+, B: $MIXFS_B} (repo $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)); $(nproc) cpus; load $(cut -d' ' -f1-3 /proc/loadavg)"
"$MIXFS" mkfs "$STORE" >/dev/null
fuse_mount "$W/log" "$MIXFS" mount -f -o "level=$LEVEL" "$STORE" "$MNT"
cp "$IN" "$MNT/f"
sync -f "$MNT"
wait_quiet
fuse_umount
"$MIXFS" gc -t 0 "$STORE" >/dev/null
bytes=$(stat -c %s "$IN")

declare -A ALL BEST
for ((r = 1; r <= RUNS; r++)); do
	for o in "$@"; do
		bin=$MIXFS mo=$o ra=
		if [[ $mo =~ ^ra=([0-9]+):(.*)$ ]]; then
			ra=${BASH_REMATCH[1]} mo=${BASH_REMATCH[2]}
		fi
		if [ "${mo#B:}" != "$mo" ]; then
			bin=${MIXFS_B:?B: needs MIXFS_B} mo=${mo#B:}
		fi
		fuse_mount "$W/log" "$bin" mount -f ${mo:+-o "$mo"} "$STORE" "$MNT"
		if [ -n "$ra" ]; then
			dev=$(awk -v m="$(realpath "$MNT")" '$5 == m { print $3 }' /proc/self/mountinfo)
			echo "$ra" >"/sys/class/bdi/$dev/read_ahead_kb"
		fi
		drop_caches
		t0=$(now)
		dd if="$MNT/f" of=/dev/null bs=1M 2>/dev/null
		t1=$(now)
		fuse_umount
		mbs=$(awk -v a="$t0" -v b="$t1" -v n="$bytes" 'BEGIN { printf "%.1f", n / (b - a) / 1e6 }')
		ALL[$o]="${ALL[$o]:+${ALL[$o]}, }$mbs"
		BEST[$o]=$(awk -v a="${BEST[$o]:-0}" -v b="$mbs" 'BEGIN { print (b > a) ? b : a }')
	done
done
echo
echo "| mount options | cold read MB/s, best | runs |"
echo "|---|---:|---|"
for o in "$@"; do
	echo "| $o | ${BEST[$o]} | ${ALL[$o]} |"
done
