#!/bin/bash
# bg_contention.sh - what mixfs's background recoding takes from a CPU-bound
# job that shares the machine (a training job's data loader, say), with
# -o bg=idle (the default: SCHED_IDLE threads) and -o bg=normal, side by
# side in one run (a benchmark, not a test).
#
#   tools/bench/bg_contention.sh [-s MIB] [-r RUNS] [-d WORKDIR]
#
# Per run and setting (the order alternates between runs): a fresh store
# mounted with -o bg=SETTING; the tensor file (fs_throughput.sh's input,
# tensors-MIBM.bin) written with dd conv=fsync: with lazy=auto most chunks
# go to fast and are recompressed at mix once the mount has been idle for
# rebase_idle (2 s); 2.5 s after the write the "job" starts: one python
# busy loop of fixed work per CPU.  Printed: the job's wall time (and the
# same job on the quiet machine before), the daemon's CPU seconds while
# the job ran, and how long after the job the daemon took to go idle with
# pending bytes 0 (the recompression done).  Root (drop_caches is not
# needed).  Environment: MIXFS, BENCH_CACHE.
set -euo pipefail

SIZE_MIB=256 RUNS=2 BASE=/var/tmp
while getopts "s:r:d:h" o; do
	case $o in
	s) SIZE_MIB=$OPTARG ;;
	r) RUNS=$OPTARG ;;
	d) BASE=$OPTARG ;;
	*) sed -n '2,18p' "$0" >&2; exit 2 ;;
	esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MIXFS=${MIXFS:-$REPO/build/tools/mixfs}
PY=python3
IN=${BENCH_CACHE:-$HOME/.cache/mixfs-bench}/fs/tensors-${SIZE_MIB}M.bin
[ -r "$IN" ] || { echo "no $IN: run tools/bench/fs_throughput.sh -s $SIZE_MIB once" >&2; exit 1; }
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"
W=$(mktemp -d "$BASE/mixfs-bgbench.XXXXXX")
MNT=$W/mnt
mkdir -p "$MNT"
PID=
trap 'fuse_cleanup; rm -rf "$W"' EXIT
NCPU=$(nproc)
echo "command: $0 $*"
echo "mixfs: $MIXFS ($(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)); $NCPU cpus; input $IN"

job() { # wall seconds of one busy loop per CPU
	local t0 i
	t0=$(now)
	for i in $(seq 1 "$NCPU"); do
		"$PY" -c 'x = 0
for i in range(75 * 10**6): x += i' &
	done
	wait
	awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'
}
pending() { "$MIXFS" stats --json "$W/store" | json_get /dev/stdin pending_bytes; }

declare -A JOB CPU TAIL
ALONE=$(job)
for r in $(seq 1 "$RUNS"); do
	if [ $((r % 2)) = 1 ]; then order="idle normal"; else order="normal idle"; fi
	for bg in $order; do
		rm -rf "$W/store"
		"$MIXFS" mkfs "$W/store" >/dev/null
		fuse_mount "$W/log" "$MIXFS" mount -f -o "bg=$bg" "$W/store" "$MNT"
		dd if="$IN" of="$MNT/f" bs=1M conv=fsync status=none
		sleep 2.5
		c0=$(daemon_cpu)
		JOB[$bg.$r]=$(job)
		CPU[$bg.$r]=$(awk -v a="$c0" -v b="$(daemon_cpu)" 'BEGIN { printf "%.2f", b - a }')
		t0=$(now)
		wait_quiet
		TAIL[$bg.$r]="$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s, pending $(pending)"
		fuse_umount
	done
done
echo
echo "The job alone: $ALONE s."
echo
echo "| bg= | run | job wall s | / alone | daemon CPU s during the job | then idle after (incl. 4.5 s of quiet checks) |"
echo "|---|---:|---:|---:|---:|---|"
for bg in idle normal; do
	for r in $(seq 1 "$RUNS"); do
		echo "| $bg | $r | ${JOB[$bg.$r]} | $(awk -v a="${JOB[$bg.$r]}" -v b="$ALONE" 'BEGIN { printf "%.2fx", a / b }') | ${CPU[$bg.$r]} | ${TAIL[$bg.$r]} |"
	done
done
