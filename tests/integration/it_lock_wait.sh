#!/bin/bash
# Commands run right after an unmount.  fusermount3 -u returns as soon as the
# kernel lets go of the mount point; the daemon then commits and only then
# lets go of the store's lock (STORE/lock).  mount, gc and fsck --repair wait
# for a lock held by a process with no mount of the store (MIXFS_LOCK_WAIT
# seconds, default 60), and fail at once while the store is mounted.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "lock wait after unmount"
mixfs_mkfs

# A holder without a mount: the state of a daemon still committing.  The
# mount waits for it, says so, and then mounts.
flock "$STORE/lock" sleep 3 &
holder=$!
sleep 0.5
rc=0
timeout 60 "$MIXFS" mount "$STORE" "$MNT" 2>"$WORK/wait.err" || rc=$?
wait "$holder"
check_eq "mount while an unmounted holder has the lock: exit status ($(cat "$WORK/wait.err"))" 0 "$rc"
mountpoint -q "$MNT" || fail "not mounted after waiting"
grep -q "waiting" "$WORK/wait.err" || fail "the mount waited without saying so: $(cat "$WORK/wait.err")"
MOUNTED=1
printf 'kept' >"$MNT/f"

# Mounted: a second mount fails at once, without waiting.
mkdir -p "$WORK/mnt2"
rc=0
MIXFS_LOCK_WAIT=600 timeout 30 "$MIXFS" mount "$STORE" "$WORK/mnt2" 2>"$WORK/second.err" || rc=$?
if mountpoint -q "$WORK/mnt2"; then
	fusermount3 -u "$WORK/mnt2"
	fail "the same store was mounted twice"
fi
check_eq "second mount of a mounted store: exit status" 1 "$rc"
if grep -q "waiting" "$WORK/second.err"; then fail "a mounted store's second mount waited"; fi
grep -q "in use" "$WORK/second.err" || fail "second mount: $(cat "$WORK/second.err")"
mixfs_umount

# The real case, several times: data written, unmounted, and at once mounted
# (daemonized), collected (gc) or repaired (fsck --repair).
want=
for round in 1 2 3; do
	"$MIXFS" mount "$STORE" "$MNT" 2>"$WORK/m.err" ||
		fail "round $round: mount right after an unmount: $(cat "$WORK/m.err")"
	rand_file "$MNT/r$round" 48 "$round"
	rm -f "$MNT/r$((round - 1))"
	want=$(sha "$MNT/r$round")
	fusermount3 -u "$MNT"
	case $round in
	2) "$MIXFS" gc "$STORE" >"$WORK/gc.out" 2>&1 ||
		fail "gc right after an unmount: $(cat "$WORK/gc.out")" ;;
	3) "$MIXFS" fsck --repair "$STORE" >"$WORK/fsck.out" 2>&1 ||
		fail "fsck --repair right after an unmount: $(cat "$WORK/fsck.out")" ;;
	esac
done
"$MIXFS" mount "$STORE" "$MNT" 2>"$WORK/m.err" || fail "last mount: $(cat "$WORK/m.err")"
MOUNTED=1
check_eq "file after the rounds" "$want" "$(sha "$MNT/r3")"
check_eq "first file" "kept" "$(cat "$MNT/f")"
mixfs_umount

# A holder that outlasts the wait: the mount gives up with the old message.
flock "$STORE/lock" sleep 5 &
holder=$!
sleep 0.5
rc=0
MIXFS_LOCK_WAIT=1 timeout 30 "$MIXFS" mount "$STORE" "$MNT" 2>"$WORK/late.err" || rc=$?
check_eq "mount after the wait ran out: exit status" 1 "$rc"
grep -q "in use" "$WORK/late.err" || fail "after the wait: $(cat "$WORK/late.err")"
if mountpoint -q "$MNT"; then fail "mounted while another process held the lock"; fi
wait "$holder"
log PASS
