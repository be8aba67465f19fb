#!/bin/bash
# Pack write and sync errors through a mount, injected into fs/pack.c's
# pwrite/fdatasync fallback (MIXFS_PACK_NO_URING=1) by faultshim.so:
#  1. one failed pack write, 2. one failed pack fdatasync: the writer of
#     the file being stored gets EIO, the log names its inode, and files
#     written after it in the same mount are stored (a write error once
#     stayed sticky: every later write of the mount failed with it);
#  3. the online gc stalls while copying frames out of an old pack, and the
#     committer's write of the buffer holding its copies fails: the gc must
#     not commit the lost copies (it once did, and removed the old pack).
#  4. rebase's pack write fails: its candidates are kept and turned at a
#     later idle spell (they were dropped until the next mount).
#  5. a write of an LMDB meta page fails (index/data.mdb below 8 KiB):
#     LMDB then refuses every transaction (MDB_PANIC); the index reopens
#     its environment, so the mount goes on (every later operation failed
#     with EIO until a remount).
# After each: fsck clean, every acknowledged file bit-exact after a remount.
. "$(dirname "$0")/lib.sh"
need_mixfs "faults injected into the mixfs daemon"
command -v python3 >/dev/null || skip "python3 missing"
[ -n "${FAULTSHIM:-}" ] && [ -f "$FAULTSHIM" ] || skip "FAULTSHIM (faultshim.so) not built"
it_init
# A sanitizer runtime would otherwise insist on coming first.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
mkdir "$WORK/src"
: >"$WORK/sums"

# put NAME...: copy each $WORK/src/NAME into the mount with fsync; prints
# "NAME ok" or "NAME failed: ERROR"; acknowledged files go to $WORK/sums.
put() {
	local n err
	for n; do
		if err=$(dd if="$WORK/src/$n" of="$MNT/$n" bs=1M conv=fsync status=none 2>&1); then
			echo "$n ok"
			echo "$(sha "$WORK/src/$n")  $n" >>"$WORK/sums"
		else
			echo "$n failed: ${err##*: }"
		fi
	done
}

# mount_faulty OPTS VAR=VALUE...: mount with the shim and the fallback.
mount_faulty() {
	local opts=$1
	shift
	env MIXFS_PACK_NO_URING=1 LD_PRELOAD="$FAULTSHIM" "$@" "$MIXFS" mount -f -o "$opts" \
		"$STORE" "$MNT" >"$WORK/faulty.log" 2>&1 &
	MOUNT_PID=$!
	MOUNT_LOG=$WORK/faulty.log
	MOUNTED=1
	wait_mounted
}

check_store() {
	"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || fail "$1: fsck: $(tail -n 8 "$WORK/fsck.out")"
	mixfs_mount fg
	(cd "$MNT" && sha256sum --quiet -c "$WORK/sums") || fail "$1: acknowledged files differ after a remount"
	mixfs_umount
}

# --- 1, 2: one failed pack write, one failed pack sync ------------------------
mixfs_mkfs
for op in pwrite fdatasync; do
	for i in 1 2 3 4 5; do head -c 1500000 /dev/urandom >"$WORK/src/$op$i"; done
	mount_faulty level=fast,gc_interval=0,rebase_idle=0 FAULT_OPS=$op FAULT_COUNT=1 \
		FAULT_TRIGGER="$WORK/trigger"
	check_eq "$op: before the fault" "${op}1 ok" "$(put "${op}1")"
	touch "$WORK/trigger"
	check_eq "$op: the file stored when $op fails" "${op}2 failed: Input/output error" "$(put "${op}2")"
	rm "$WORK/trigger"
	grep -q "faultshim: $op" "$WORK/faulty.log" || fail "$op: no fault injected"
	grep -q "mixfs: pack .*failed: Input/output error" "$WORK/faulty.log" ||
		fail "$op: the pack error is not logged: $(cat "$WORK/faulty.log")"
	grep -q "inode $(stat -c %i "$MNT/${op}2"): storing .* failed: Input/output error" "$WORK/faulty.log" ||
		fail "$op: the log does not name the file: $(cat "$WORK/faulty.log")"
	out=$(put "${op}3" "${op}4" "${op}5" | tr '\n' ' ')
	check_eq "$op: files written after the fault" "${op}3 ok ${op}4 ok ${op}5 ok " "$out"
	mixfs_umount
	check_store "$op"
	log "$op: one failure reported to its writer, later writes stored, fsck clean"
done

# --- 3: the committer's pack write fails under the online gc's copies ---------
STORE=$WORK/store3
mixfs_mkfs
mixfs_mount fg level=fast,gc_interval=0
for i in 1 2 3 4 5 6; do head -c 1000000 /dev/urandom >"$WORK/src/gc$i"; done
: >"$WORK/sums"
check_eq "gc: files" "gc1 ok gc2 ok gc3 ok gc4 ok gc5 ok gc6 ok " "$(put gc1 gc2 gc3 gc4 gc5 gc6 | tr '\n' ' ')"
# gc1 and gc6 stay: the tail cannot be cut, the pack is 2/3 dead
rm "$MNT/gc2" "$MNT/gc3" "$MNT/gc4" "$MNT/gc5"
sed -i '/ gc[2345]$/d' "$WORK/sums"
mixfs_umount
old=$(ls "$STORE/packs")
[ "$(echo "$old" | wc -l)" = 1 ] || fail "gc: expected one pack, got: $old"
# The gc's 4th read of the old pack stalls 3 s; meanwhile a file whose chunks
# are all stored already commits, and the committer's sync writes the buffer
# holding the gc's first copies: that write fails.
mount_faulty level=fast,gc_interval=1,rebase_idle=0 FAULT_SRC="$old" FAULT_DELAY_AT=4 \
	FAULT_SLEEP_MS=3000
for i in $(seq 1 100); do
	grep -q "faultshim: read 4 of" "$WORK/faulty.log" && break
	[ "$i" = 100 ] && fail "gc: the online gc never read the old pack: $(cat "$WORK/faulty.log")"
	sleep 0.1
done
cp "$WORK/src/gc1" "$WORK/src/dup"
put dup >/dev/null # may fail: the pack error is the store's, not the file's
grep -q "faultshim: pwrite" "$WORK/faulty.log" || fail "gc: no pack write failed under the gc"
for i in $(seq 1 200); do
	grep -q "online gc of .*packs compacted" "$WORK/faulty.log" && break
	[ "$i" = 200 ] && fail "gc: the old pack was never compacted: $(cat "$WORK/faulty.log")"
	sleep 0.1
done
(cd "$MNT" && sha256sum --quiet -c "$WORK/sums") || fail "gc: acknowledged files differ after the online gc"
mixfs_umount
check_store "gc"
# --- 4: rebase's pack write fails -------------------------------------------
STORE=$WORK/store4
mixfs_mkfs
series_files "$WORK/src/ser" 3 2097152 7
: >"$WORK/sums"
mount_faulty level=mix,lazy=off,gc_interval=0,rebase_idle=300 FAULT_OPS=pwrite FAULT_COUNT=1 \
	FAULT_TRIGGER="$WORK/trigger4"
check_eq "rebase: the first versions" "ser0.safetensors ok ser1.safetensors ok " \
	"$(put ser0.safetensors ser1.safetensors | tr '\n' ' ')"
# the mount's own scan of the chunk table is done with this spell (it would
# find dropped candidates again)
wait_stats "$WORK/s4.json" 60 's["ref_fwd_chunks"] == 0 and s["ref_chunks"] > 0' ||
	fail "rebase: forward deltas left: $(cat "$WORK/s4.json")"
check_eq "rebase: the third version" "ser2.safetensors ok" "$(put ser2.safetensors)"
touch "$WORK/trigger4" # the next pack write, rebase's (300 ms idle after the write), fails
for i in $(seq 1 100); do
	grep -q "faultshim: pwrite" "$WORK/faulty.log" && break
	[ "$i" = 100 ] && fail "rebase: no pack write failed: $(cat "$WORK/faulty.log")"
	sleep 0.1
done
grep -q "rebase in .*: Input/output error" "$WORK/faulty.log" ||
	fail "rebase: its failure is not logged: $(cat "$WORK/faulty.log")"
# retried after 10 idle periods (3 s): no forward delta left
wait_stats "$WORK/s4.json" 60 's["ref_fwd_chunks"] == 0 and s["ref_chunks"] > 0' ||
	fail "rebase: forward deltas left after its failed group: $(cat "$WORK/s4.json")"
mixfs_umount
check_store "rebase"
log "rebase: a failed group is retried in the same mount"

# --- 5: a meta page write of the index fails -----------------------------------
STORE=$WORK/store5
mixfs_mkfs
for n in ix1 ix2 ix3 ix4; do head -c 1500000 /dev/urandom >"$WORK/src/$n"; done
: >"$WORK/sums"
mount_faulty level=fast,gc_interval=0,rebase_idle=0 FAULT_OPS=pwrite FAULT_MATCH=/index/data.mdb \
	FAULT_MAXOFF=8192 FAULT_COUNT=1 FAULT_TRIGGER="$WORK/trigger5"
check_eq "index: before the fault" "ix1 ok" "$(put ix1)"
touch "$WORK/trigger5"
put ix2 >/dev/null # the commit that fails: its writer may get EIO
rm "$WORK/trigger5"
grep -q "faultshim: pwrite" "$WORK/faulty.log" || fail "index: no meta page write failed"
# the same mount: new files, listing, reads, stats
check_eq "index: files after the fault" "ix3 ok ix4 ok " "$(put ix3 ix4 | tr '\n' ' ')"
ls "$MNT" >/dev/null || fail "index: ls fails after the fault"
(cd "$MNT" && sha256sum --quiet -c "$WORK/sums") || fail "index: acknowledged files differ in the mount"
stats_json "$WORK/s5.json" "$STORE"
grep -q "reopened after a failed meta page write" "$WORK/faulty.log" ||
	fail "index: no reopen logged: $(cat "$WORK/faulty.log")"
mixfs_umount
check_store "index"
log "index: a failed meta page write reopened the index, the mount went on"

log "PASS: pack write and sync failures reported and recovered from; online gc kept every" \
	"acknowledged file through a failed pack write; a failed index meta write recovered in the mount"
