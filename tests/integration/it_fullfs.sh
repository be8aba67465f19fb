#!/bin/bash
# Full disk: a store on a 64 MiB tmpfs is filled with incompressible files
# until a write fails.  The failure must be ENOSPC, the daemon must stay up
# and keep serving the files written before, which stay bit-exact.  After
# deleting half of them and a gc the store must take new writes again.
# (Needs root for the tmpfs mount; skipped otherwise.)
. "$(dirname "$0")/lib.sh"
need_mixfs "a store on its own small file system"
command -v python3 >/dev/null || skip "python3 missing"
tmpfs_init 64m
mixfs_mkfs
# online gc off: since a write-back failing with ENOSPC makes it run as
# soon as any bytes died, it could free the deleted files' bytes before
# the unmount below, which checks what the offline gc gives back
# (it_fullfs_rotate covers the online gc on a full store)
mixfs_mount fg level=fast,gc_interval=0

# fill.py DIR PREFIX N SUMS: writes N files of 4 MiB (random, seeded by
# name) until one fails; appends "sha256  name" of each completed file to
# SUMS; prints "ok N errno E" (E = 0 if none failed).
cat >"$WORK/fill.py" <<'EOF'
import errno, hashlib, os, random, sys
d, prefix, n, sums = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ok, err = 0, 0
with open(sums, 'a') as out:
    for i in range(n):
        name = '%s%03d' % (prefix, i)
        data = random.Random(name).randbytes(4 << 20)
        try:
            fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                for off in range(0, len(data), 1 << 20):
                    os.write(fd, data[off:off + (1 << 20)])
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            err = e.errno
            break
        out.write('%s  %s\n' % (hashlib.sha256(data).hexdigest(), name))
        ok += 1
print('ok', ok, 'errno', err)
EOF

: >"$WORK/sums"
read -r _ FILLED _ ERR < <(python3 "$WORK/fill.py" "$MNT" old 64 "$WORK/sums")
log "filled: $FILLED files of 4 MiB written before the first failure (errno $ERR)"
[ "$ERR" = 28 ] || fail "filling 64 MiB: expected ENOSPC (28), got errno $ERR after $FILLED files"
[ "$FILLED" -ge 8 ] || fail "only $FILLED files of 4 MiB fit in 64 MiB"
kill -0 "$MOUNT_PID" 2>/dev/null || fail "daemon died when the disk filled up"
mountpoint -q "$MNT" || fail "mount gone when the disk filled up"

# Still full: more writes fail cleanly, the daemon keeps serving reads,
# and failed attempts do not leave a new (empty) pack file each.
PACKS=$(ls "$STORE/packs" | wc -l)
read -r _ n _ err < <(python3 "$WORK/fill.py" "$MNT" more 2 /dev/null)
[ "$n" = 0 ] && [ "$err" = 28 ] || fail "write on a full store: $n files, errno $err"
[ "$(ls "$STORE/packs" | wc -l)" -le $((PACKS + 1)) ] ||
	fail "2 failed writes on a full store: $PACKS pack files before, $(ls "$STORE/packs" | wc -l) after"
(cd "$MNT" && sha256sum --quiet -c "$WORK/sums") || fail "files written before the disk filled up changed"
ls -l "$MNT" >/dev/null
kill -0 "$MOUNT_PID" 2>/dev/null || fail "daemon died"

# Delete half, unmount, gc: the space comes back.
n=0
while read -r _ name; do
	n=$((n + 1))
	[ $((n % 2)) = 0 ] || continue
	rm "$MNT/$name" || fail "rm $name on a full store"
	sed -i "/  $name\$/d" "$WORK/sums"
done < <(cat "$WORK/sums")
DELETED=$((n / 2))
# The failed writes' data is still buffered and still does not fit: the
# daemon may report that at unmount (exit 1), as long as it says why.
sync -f "$MNT" 2>/dev/null || true # fails with ENOSPC: that is the point
fusermount3 -u "$MNT" || fail "fusermount3 -u of the full store"
MOUNTED=0
rc=0
wait "$MOUNT_PID" || rc=$?
MOUNT_PID=
[ "$rc" = 0 ] || { [ "$rc" = 1 ] && grep -q "No space left" "$MOUNT_LOG"; } ||
	fail "daemon exit $rc at unmount of the full store: $(tail -n 5 "$MOUNT_LOG")"
FREE_BEFORE=$(df -B1 --output=avail "$FS" | tail -n 1)
"$MIXFS" gc "$STORE" >"$WORK/gc.out" 2>&1 || fail "gc on the full store: $(cat "$WORK/gc.out")"
FREE_AFTER=$(df -B1 --output=avail "$FS" | tail -n 1)
log "gc: $(tr '\n' ' ' <"$WORK/gc.out")"
[ "$FREE_AFTER" -ge $((FREE_BEFORE + DELETED * 4 * 1048576 * 9 / 10)) ] ||
	fail "gc freed $((FREE_AFTER - FREE_BEFORE)) bytes after deleting $DELETED files of 4 MiB"
"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || fail "fsck after gc: $(tail -n 5 "$WORK/fsck.out")"

# Writes work again, old files intact.
mixfs_mount fg level=fast
read -r _ NEW _ err < <(python3 "$WORK/fill.py" "$MNT" new $((DELETED - 1)) "$WORK/sums")
[ "$NEW" = $((DELETED - 1)) ] && [ "$err" = 0 ] ||
	fail "after rm + gc: $NEW of $((DELETED - 1)) new files written (errno $err)"
(cd "$MNT" && sha256sum --quiet -c "$WORK/sums") || fail "files differ after gc and new writes"
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || fail "final fsck: $(tail -n 5 "$WORK/fsck.out")"

# A file whose fsync failed on the full disk is stored once space is back,
# without a further write or the unmount: fill up again (packs of 16 MiB,
# the online gc every second), delete every other file, wait, kill -9 the
# daemon, remount: the failed file reads back as the daemon served it.
# (Before the background retry its bytes stayed buffered until the
# unmount: lost to the kill.)
mixfs_mount fg level=fast,gc_interval=1,pack_size=16M
: >"$WORK/sums2"
read -r _ F2 _ ERR2 < <(python3 "$WORK/fill.py" "$MNT" late 64 "$WORK/sums2")
[ "$ERR2" = 28 ] || fail "second fill: expected ENOSPC (28), got errno $ERR2 after $F2 files"
LATE=$(printf 'late%03d' "$F2")
[ -f "$MNT/$LATE" ] || fail "the file whose fsync failed is gone: $LATE"
# read it, and close: the close of a read-only descriptor reports no
# write-back error (before, it tried the parked bytes again and returned
# ENOSPC to the reader while the disk was full)
sha_read() {
	python3 -c 'import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
h = hashlib.sha256()
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    h.update(b)
os.close(fd)
print(h.hexdigest())' "$1"
}
WANT=$(sha_read "$MNT/$LATE") || fail "reading $LATE before the space came back"
cat "$WORK/sums" "$WORK/sums2" | while read -r _ name; do rm "$MNT/$name"; done
for i in $(seq 1 40); do # retries 1, 2, 4, 8, 16 s after the failure
	sleep 1
	grep -q "online gc of" "$MOUNT_LOG" && [ "$i" -ge 20 ] && break
done
kill -9 "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true # killed: status 137 is the point
MOUNT_PID=
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
MOUNTED=0
mixfs_mount fg level=fast
GOT=$(sha "$MNT/$LATE")
[ "$GOT" = "$WANT" ] || fail "$LATE (fsync failed with ENOSPC, then files deleted) not stored" \
	"without the unmount: sha256 $GOT after kill -9, $WANT before ($(stat -c %s "$MNT/$LATE") bytes)"
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || fail "fsck after the retry: $(tail -n 5 "$WORK/fsck.out")"
log "PASS: full at $FILLED x 4 MiB (ENOSPC, daemon up, data intact); $DELETED deleted," \
	"gc freed $((FREE_AFTER - FREE_BEFORE)) bytes; $NEW new files written; 0 bytes lost;" \
	"$LATE (fsync ENOSPC) stored in the background once space was back"
