#!/bin/bash
# Deleting files on a full disk works and gives the space back: the store on
# a tmpfs of its own is filled through the mount until a write fails (no
# online gc, so no orphan bytes are freed behind the test's back), then
# files are removed and a directory made: each must succeed (they need new
# index pages when LMDB has no free ones: the index keeps 1 MiB allocated
# past its end, test_full_disk_reserve), and after the unmount an offline
# gc frees their bytes; the other files stay bit-exact.
. "$(dirname "$0")/lib.sh"
need_mixfs "a store on its own small file system"
tmpfs_init 48m
mixfs_mkfs
mixfs_mount fg level=raw,gc_interval=0

n=0
for i in $(seq 1 40); do
	head -c 4M /dev/urandom >"$WORK/src" 2>/dev/null || fail "no room in $WORK"
	if ! cp "$WORK/src" "$MNT/f$i" 2>"$WORK/cp.err"; then
		break
	fi
	sync -f "$MNT/f$i" 2>>"$WORK/cp.err" || break
	sha "$WORK/src" >"$WORK/f$i.sha"
	n=$i
done
[ "$n" -lt 40 ] || fail "the disk never filled up"
[ "$n" -ge 4 ] || fail "only $n files fit"
log "full after $n files of 4 MiB: $(tr '\n' ' ' <"$WORK/cp.err"); $(df -k --output=avail "$FS" | tail -n 1) KiB free"

for i in 1 2 3; do
	rm "$MNT/f$i" 2>"$WORK/rm.err" || fail "rm f$i on the full disk: $(cat "$WORK/rm.err")"
	rm -f "$WORK/f$i.sha"
done
# the file whose close failed: its bytes wait, parked, for room; deleted,
# they go (else the unmount would try them and exit 1)
rm -f "$MNT/f$((n + 1))" 2>"$WORK/rm.err" || fail "rm f$((n + 1)) on the full disk: $(cat "$WORK/rm.err")"
mkdir "$MNT/d" 2>"$WORK/mkdir.err" || fail "mkdir on the full disk: $(cat "$WORK/mkdir.err")"
sleep 1 # the deletions are queued for the retry thread
mixfs_umount
"$MIXFS" gc "$STORE" >"$WORK/gc.out" 2>&1 || fail "gc: $(cat "$WORK/gc.out")"
avail=$(df -B1 --output=avail "$FS" | tail -n 1)
log "after gc: $(tr '\n' ' ' <"$WORK/gc.out"); $avail bytes free"
[ "$avail" -ge $((12 * 1048576)) ] || fail "only $avail bytes free after deleting 3 files of 4 MiB and gc"
"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || fail "fsck: $(tail -n 5 "$WORK/fsck.out")"
mixfs_mount fg level=raw,gc_interval=0
for i in $(seq 4 "$n"); do
	[ "$(sha "$MNT/f$i")" = "$(cat "$WORK/f$i.sha")" ] || fail "f$i differs after the deletions"
done
for i in 1 2 3; do
	[ ! -e "$MNT/f$i" ] || fail "f$i is back after the remount"
done
mixfs_umount
log "PASS: $n files filled the disk; 3 removed on it; gc gave back $avail bytes; the rest bit-exact"
