#!/bin/bash
# Command errors: mount of a missing store and of a non-store directory exit 1
# with a message; mkfs on a non-empty directory fails; a mount point in use.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "mixfs command-line errors"

# run_expect WHAT STATUS CMD...: exit status must be STATUS and stderr not empty.
run_expect() {
	local what=$1 want=$2 rc=0
	shift 2
	timeout 30 "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	check_eq "$what: exit status of '$*'" "$want" "$rc"
	[ -s "$WORK/err" ] || fail "$what: no message on stderr"
	log "$what: $(head -1 "$WORK/err")"
	if mountpoint -q "$MNT"; then fail "$what: $MNT got mounted"; fi
}

run_expect "missing store" 1 "$MIXFS" mount "$WORK/nonexistent" "$MNT"
run_expect "missing store (-f)" 1 "$MIXFS" mount -f "$WORK/nonexistent" "$MNT"
grep -q "$WORK/nonexistent" "$WORK/err" || fail "message does not name the store: $(cat "$WORK/err")"
mkdir "$WORK/foreign"
printf 'x' >"$WORK/foreign/file"
run_expect "non-store directory" 1 "$MIXFS" mount "$WORK/foreign" "$MNT"
mkdir "$WORK/emptydir"
run_expect "empty non-store directory" 1 "$MIXFS" mount "$WORK/emptydir" "$MNT"
run_expect "mkfs on a non-empty directory" 1 "$MIXFS" mkfs "$WORK/foreign"
check_eq "non-empty dir untouched" "file" "$(ls "$WORK/foreign")"
printf 'x' >"$WORK/plainfile"
run_expect "mkfs on a file" 1 "$MIXFS" mkfs "$WORK/plainfile"

mixfs_mkfs
run_expect "mkfs on an existing store" 1 "$MIXFS" mkfs "$STORE"
run_expect "missing mount point" 1 "$MIXFS" mount "$STORE" "$WORK/nomnt"
run_expect "no arguments (usage error)" 2 "$MIXFS" mount
rc=0
"$MIXFS" no-such-command >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "unknown subcommand exited 0"

# The store still mounts after all that, and one store cannot be mounted twice.
mixfs_mount
mkdir "$WORK/mnt2"
rc=0
timeout 30 "$MIXFS" mount "$STORE" "$WORK/mnt2" >"$WORK/out" 2>"$WORK/err" || rc=$?
if mountpoint -q "$WORK/mnt2"; then
	fusermount3 -u "$WORK/mnt2"
	fail "the same store was mounted twice"
fi
check_eq "second mount of a mounted store: exit status" 1 "$rc"
log "second mount: $(head -1 "$WORK/err")"
printf 'still works' >"$MNT/f"
check_eq "mount works" "still works" "$(cat "$MNT/f")"

# A store seen read-only (a read-only bind mount): fsck and gc -n work (a
# shared lock needs no write access; fsck used to fail with EROFS), gc
# refuses with a message, a mount with -o ro reads.
mixfs_umount
mkdir "$WORK/ro"
IT_UMOUNT+=("$WORK/ro")
mount --bind "$STORE" "$WORK/ro"
mount -o remount,bind,ro "$WORK/ro"
fsck_rc=0 gcn_rc=0 gc_rc=0 ro_rc=0
"$MIXFS" fsck "$WORK/ro" >"$WORK/fsck.out" 2>&1 || fsck_rc=$?
"$MIXFS" gc -n "$WORK/ro" >"$WORK/gcn.out" 2>&1 || gcn_rc=$?
"$MIXFS" gc "$WORK/ro" >"$WORK/gc.out" 2>&1 || gc_rc=$?
if "$MIXFS" mount -o ro "$WORK/ro" "$MNT" 2>"$WORK/ro.err"; then
	cat "$MNT/f" >"$WORK/ro.f" 2>&1 || ro_rc=$?
	fusermount3 -u "$MNT"
else
	ro_rc=$?
fi
# the daemon exits just after the unmount: until then it holds the store
for i in $(seq 1 100); do
	umount "$WORK/ro" 2>/dev/null && break
	[ "$i" = 100 ] && fail "the read-only bind mount stays busy"
	sleep 0.1
done
check_eq "fsck of a read-only store: exit status ($(tail -1 "$WORK/fsck.out"))" 0 "$fsck_rc"
grep -q 'problems: 0 found' "$WORK/fsck.out" || fail "fsck of a read-only store: $(cat "$WORK/fsck.out")"
check_eq "gc -n of a read-only store: exit status ($(tail -1 "$WORK/gcn.out"))" 0 "$gcn_rc"
[ "$gc_rc" != 0 ] || fail "gc of a read-only store succeeded"
grep -q 'Read-only' "$WORK/gc.out" || fail "gc of a read-only store: no clear message: $(cat "$WORK/gc.out")"
check_eq "mount -o ro of a read-only store: status" 0 "$ro_rc"
check_eq "read through a read-only mount" "still works" "$(cat "$WORK/ro.f")"
log PASS
