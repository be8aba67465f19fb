#!/bin/bash
# tools/demo.sh as the README says, and again: "Safe to run again: an
# existing demo store is reused, a stale mount is unmounted first".  Each run
# unmounts the previous run's mount and mounts the store again at once.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "tools/demo.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=$(realpath --relative-to="$SRC" "$(dirname "$MIXFS")/..")
DEMO=$WORK/demo
# it_cleanup unmounts $MNT: make it the demo's.
MNT=$DEMO/mnt
MOUNTED=1
for run in 1 2 3 4 5 6; do
	rc=0
	MIXFS_DEMO=$DEMO BUILD=$BUILD_DIR bash "$SRC/tools/demo.sh" >"$WORK/demo.$run" 2>&1 || rc=$?
	[ "$rc" = 0 ] || fail "demo.sh run $run exited $rc: $(grep -v '^INFO\|^ninja' "$WORK/demo.$run" | head -3)"
	mountpoint -q "$DEMO/mnt" || fail "demo.sh run $run: $DEMO/mnt not mounted"
	printf 'run %s\n' "$run" >"$DEMO/mnt/run$run"
done
check_eq "files of the six runs" "run1 run2 run3 run4 run5 run6" "$(ls "$DEMO/mnt" | tr '\n' ' ' | sed 's/ $//')"
log "PASS"
