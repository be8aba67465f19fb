#!/bin/bash
# soak.sh - random-operation soak of a mount under pressure (not a test:
# run by hand, for as long as you like; docs/RELIABILITY.md records runs).
#
#   tools/soak.sh [-d SECONDS] [-b BUILD]
#
# Rounds of three fsx processes with random seeds (3000 operations, two
# files of up to 6 MiB each, in their own directories) side by side on one
# mount whose budgets are tiny and whose background work runs all the time
# (1 MiB cache, 2 MiB dirty, 1 MiB in flight, 16 MiB packs, gc every
# second, rebase after 50 ms idle, lazy=all, commits every 10 ms).  Every
# 5 rounds: unmount, fsck (must find no problem), mount again.  Stops at
# the first failure, keeping the logs and the store in the work directory.
set -euo pipefail
DUR=1800 BUILD=build
while getopts "d:b:h" o; do
	case $o in
	d) DUR=$OPTARG ;;
	b) BUILD=$OPTARG ;;
	*) sed -n '2,13p' "$0" >&2; exit 2 ;;
	esac
done
M=$BUILD/tools/mixfs FSX=$BUILD/tests/integration/fsx
[ -x "$M" ] && [ -x "$FSX" ] || { echo "no $M or $FSX: build first (ninja -C $BUILD)" >&2; exit 1; }
W=$(mktemp -d /var/tmp/mixfs-soak.XXXXXX)
S=$W/store MNT=$W/mnt
OPTS=cache=1M,dirty=2M,inflight=1M,readahead=2,pack_size=16M,gc_interval=1,rebase_idle=50,lazy=all,commit_ms=10,ns_sync_ms=5
mkdir "$MNT"
"$M" mkfs "$S" >/dev/null
"$M" mount -o "$OPTS" "$S" "$MNT"
trap 'mountpoint -q "$MNT" && fusermount3 -u "$MNT"' EXIT
echo "soak in $W for $DUR s"
round=0
end=$(($(date +%s) + DUR))
while [ "$(date +%s)" -lt "$end" ]; do
	round=$((round + 1))
	pids=()
	for i in 1 2 3; do
		mkdir -p "$MNT/d$i"
		"$FSX" -r -N 3000 -l 6M -n 2 "$MNT/d$i" >"$W/fsx.$round.$i.log" 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || { echo "round $round: fsx failed (logs in $W)" >&2; exit 1; }
	done
	rm -f "$W"/fsx.$round.*.log
	if [ $((round % 5)) = 0 ]; then
		fusermount3 -u "$MNT"
		"$M" fsck "$S" >"$W/fsck.log" 2>&1 || { echo "round $round: fsck found problems ($W/fsck.log)" >&2; exit 1; }
		"$M" mount -o "$OPTS" "$S" "$MNT"
	fi
done
echo "$round rounds, no mismatch, fsck clean"
fusermount3 -u "$MNT"
trap - EXIT
rm -rf "$W"
