#!/bin/bash
# it_powerloss.sh - power-loss crash consistency (CrashMonkey / ALICE style).
#
# The daemon runs with powerrec.so (LD_PRELOAD) and MIXFS_PACK_NO_URING=1:
# every write, truncate, fallocate, fsync/fdatasync, creation and unlink it
# makes under the store (packs and LMDB's data.mdb alike) is logged in
# order, with the bytes written.  The workload adds "B PATH" before it
# changes a file of the mount and "M PATH SHA256" after fsync returned 0.
# Afterwards powerloss.py rebuilds, from a copy of the store taken before
# the mount, crash states at chosen points of the log: what was synced by
# then, plus a random part of what was not (whole, in order, or torn into
# 4 KiB blocks), never anything later; each state must pass mixfs fsck,
# mount, read every fsync'd file bit-exact, unmount, and pass fsck again.
#
# Workloads: files written with dd conv=fsync (new, rewritten, appended,
# written in the middle, copied inside the mount with copy_file_range); a
# checkpoint series with rebase running (rebase_idle=200); deletes with the
# online gc (gc_interval=1); namespace operations, committed unsynced,
# between fsync'd files (ns; the states run with another MIXFS_BOOT_ID, as
# after a real power cut).
# Environment: IT_POWERLOSS_STATES (crash states per workload; default 25,
# 150 with MIXFS_LONG=1), IT_POWERLOSS_SEED (replay), IT_POWERLOSS_ONLY
# (dd, series, gc: one workload), IT_KEEP=1 to keep the failing states.
source "$(dirname "$0")/lib.sh"

it_init
need_mixfs
[ -n "${POWERREC:-}" ] && [ -f "$POWERREC" ] || fail "POWERREC (powerrec.so) not set"
# A sanitizer runtime would otherwise insist on coming first.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
PY=$(dirname "$0")/powerloss.py
STATES=${IT_POWERLOSS_STATES:-$(by_length 25 150)}
SEED=${IT_POWERLOSS_SEED:-$(date +%s)}
log "seed $SEED (IT_POWERLOSS_SEED=$SEED replays), $STATES crash states per workload"
SRC=$WORK/src
mkdir -p "$SRC"
RLOG=
TOTAL=0

begin() { echo "B $1" >>"$RLOG"; }
# synced PATH SRCFILE: PATH (under the mount) was fsync'd with SRCFILE's bytes
synced() { echo "M $1 $(sha "$2")" >>"$RLOG"; }

# put SRCFILE PATH [dd options]: write through the mount, fsync, mark
put() {
	begin "$2"
	dd if="$1" of="$MNT/$2" bs=256k conv=fsync status=none "${@:3}" ||
		fail "dd $1 -> $2 failed"
}

wl_dd() {
	rand_file "$SRC/r1" 1 11
	float_file "$SRC/f2" 2 12
	head -c 3000 "$SRC/r1" >"$SRC/small"
	rand_file "$SRC/r3" 1 13
	put "$SRC/r1" a
	synced a "$SRC/r1"
	put "$SRC/f2" b
	synced b "$SRC/f2"
	put "$SRC/small" c
	synced c "$SRC/small"
	# rewritten under the same name (dd truncates first)
	put "$SRC/r3" a
	synced a "$SRC/r3"
	# appended
	cat "$SRC/small" "$SRC/r1" >"$SRC/c2"
	put "$SRC/r1" c oflag=append conv=notrunc
	synced c "$SRC/c2"
	# 64 KiB in the middle of b
	head -c 65536 "$SRC/r3" >"$SRC/mid"
	python3 - "$SRC/f2" "$SRC/mid" "$SRC/b2" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
m = open(sys.argv[2], "rb").read()
b[700000:700000 + len(m)] = m
open(sys.argv[3], "wb").write(b)
EOF
	begin b
	dd if="$SRC/mid" of="$MNT/b" bs=64k seek=700000 oflag=seek_bytes conv=notrunc,fsync status=none ||
		fail "dd into the middle of b failed"
	synced b "$SRC/b2"
	put "$SRC/f2" d
	synced d "$SRC/f2"
	# a copy inside the mount (copy_file_range maps b's chunks), fsync'd
	begin e
	python3 - "$MNT/b" "$MNT/e" <<'EOF' || fail "copy_file_range b -> e failed"
import os, sys
src = os.open(sys.argv[1], os.O_RDONLY)
dst = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
while os.copy_file_range(src, dst, 1 << 30) > 0:
    pass
os.fsync(dst)
EOF
	synced e "$SRC/b2"
}

wl_series() {
	series_files "$SRC/s" 5 524288 7
	mkdir "$MNT/ckpt"
	for v in 0 1 2 3 4; do
		put "$SRC/s$v.safetensors" "ckpt/v$v.safetensors"
		synced "ckpt/v$v.safetensors" "$SRC/s$v.safetensors"
		# the same series rewritten under one name, as trainers do
		put "$SRC/s$v.safetensors" ckpt/latest.safetensors
		synced ckpt/latest.safetensors "$SRC/s$v.safetensors"
		sleep 0.5 # rebase_idle=200: rebase turns the deltas around now
	done
	sleep 2
}

wl_gc() {
	local i
	for i in 1 2 3 4 5 6; do
		rand_file "$SRC/g$i" 3 $((20 + i))
		put "$SRC/g$i" "g$i"
		synced "g$i" "$SRC/g$i"
	done
	for i in 1 2 3 4; do
		begin "g$i"
		rm "$MNT/g$i"
	done
	sleep 3 # gc_interval=1: the pack is sealed, then compacted
	for i in 7 8; do
		rand_file "$SRC/g$i" 2 $((20 + i))
		put "$SRC/g$i" "g$i"
		synced "g$i" "$SRC/g$i"
	done
	sleep 2.5
}

# Namespace operations commit unsynced (ns_sync_ms): creates, renames,
# unlinks, chmod, rm -rf between fsync'd files, across the sync timer.
wl_ns() {
	local i
	mkdir -p "$MNT/t/d/e"
	for i in $(seq 1 120); do echo "f$i" >"$MNT/t/f$i"; done
	rand_file "$SRC/n1" 1 31
	put "$SRC/n1" n1
	synced n1 "$SRC/n1"
	for i in $(seq 1 120); do
		case $((i % 3)) in
		0) rm "$MNT/t/f$i" ;;
		1) mv "$MNT/t/f$i" "$MNT/t/g$i" ;;
		2) chmod 600 "$MNT/t/f$i" ;;
		esac
	done
	for i in $(seq 1 60); do echo "h$i" >"$MNT/t/d/e/h$i"; done
	rand_file "$SRC/n2" 1 32
	put "$SRC/n2" n2
	synced n2 "$SRC/n2"
	sleep 1.5 # ns_sync_ms=1000: the timer syncs
	rm -rf "$MNT/t/d"
	for i in $(seq 1 40); do mv "$MNT/t/g$((3 * i - 2))" "$MNT/t/d$i"; done
	rand_file "$SRC/n3" 1 33
	put "$SRC/n3" n3
	synced n3 "$SRC/n3"
	for i in $(seq 121 200); do echo "f$i" >"$MNT/t/f$i"; done
}

# count KIND: lines of that kind in the recorder's log
count() { awk -v k="$1" '$1 == k { n++ } END { print n + 0 }' "$RLOG"; }

# workload NAME MOUNT_OPTIONS
workload() {
	local name=$1 opts=$2 d=$WORK/$1 rc=0 real
	STORE=$d/store
	mkdir -p "$d"
	mixfs_mkfs
	real=$(realpath "$STORE")
	cp -a "$STORE" "$d/init"
	(cd "$STORE" && find . -type f -printf '%i %P\n') >"$d/inos"
	RLOG=$d/log
	: >"$RLOG"
	MOUNT_LOG=$d/mount.log
	LD_PRELOAD=$POWERREC POWERREC_DIR=$real POWERREC_LOG=$RLOG POWERREC_BLOB=$d/blob \
		MIXFS_PACK_NO_URING=1 "$MIXFS" mount -f -o "$opts" "$STORE" "$MNT" >"$MOUNT_LOG" 2>&1 &
	MOUNT_PID=$!
	MOUNTED=1
	wait_mounted
	"wl_$name"
	mixfs_umount
	[ -s "$d/blob" ] || fail "$name: the recorder logged no write"
	log "$name: $(count W) writes, $(count SB) syncs, $(count C) creations, $(count U) unlinks," \
		"$(count F) punches/fallocates, $(count T) truncates, $(count M) fsync'd files"
	# the states are power cuts: another boot for the index's marker
	MIXFS_BOOT_ID=powerloss-state python3 "$PY" --log "$RLOG" --blob "$d/blob" --init "$d/init" --inos "$d/inos" \
		--store "$real" --mixfs "$MIXFS" --work "$d" --states "$STATES" --seed "$SEED" \
		|| rc=$?
	[ "$rc" = 0 ] || fail "$name: crash states failed (powerloss.py exit $rc; IT_POWERLOSS_SEED=$SEED)"
	TOTAL=$((TOTAL + STATES))
	rm -rf "$d/blob" "$d/init"
}

for w in dd series gc ns; do
	[ -n "${IT_POWERLOSS_ONLY:-}" ] && [ "$IT_POWERLOSS_ONLY" != "$w" ] && continue
	case $w in
	dd) workload dd level=fast ;;
	series) workload series rebase_idle=200 ;;
	gc) workload gc level=fast,gc_interval=1,pack_size=16M ;;
	ns) workload ns level=fast ;;
	esac
done
log "PASS: about $TOTAL crash states"
