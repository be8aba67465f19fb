#!/bin/bash
# A truncate to zero keeps the file's previous version as an unlinked
# shadow inode (the rewrite's series reference) until the last close.  A
# truncate(2) by path with the file open nowhere has no close to come: it
# must keep no shadow, or the old bytes stay live (mixfs stats counts them,
# gc cannot free them) until the next mount.  With the file open, the
# shadow goes at the last close.  fsck of the unmounted store finds no
# unlinked inode left over.
. "$(dirname "$0")/lib.sh"
it_start
need_mixfs

rand_file "$WORK/ref" 4 7
cp "$WORK/ref" "$MNT/a"
cp "$WORK/ref" "$MNT/b"
rand_file "$WORK/ref2" 2 8
sync -f "$MNT"
# Let the kernel forget the inodes too (then nothing is left to drop a shadow).
echo 2 >/proc/sys/vm/drop_caches

# a: truncated by path, never open.  b: truncated through an open
# descriptor and rewritten, closed.
python3 - "$MNT" "$WORK/ref2" <<'PYEOF'
import os, sys
d, ref2 = sys.argv[1], sys.argv[2]
os.truncate(os.path.join(d, "a"), 0)
with open(os.path.join(d, "b"), "r+b") as f:
    os.ftruncate(f.fileno(), 0)
    f.write(open(ref2, "rb").read())
PYEOF
sync -f "$MNT"
echo 2 >/proc/sys/vm/drop_caches
check_eq "size of a" 0 "$(stat -c %s "$MNT/a")"
check_cmp "$WORK/ref2" "$MNT/b"
# Only b's new 2 MiB are live.
wait_stats "$WORK/s.json" 20 's["file_count"] == 2 and s["logical_bytes"] == 2 * 1048576 and s["unique_bytes"] == 2 * 1048576' ||
	fail "stats after the truncates: $(cat "$WORK/s.json")"
rm "$MNT/a" "$MNT/b"
wait_stats "$WORK/s.json" 20 's["file_count"] == 0 and s["chunks"] == 0' ||
	fail "stats after rm: $(cat "$WORK/s.json")"
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.log" 2>&1 || fail "fsck: $(cat "$WORK/fsck.log")"
if grep -q "unlinked inodes" "$WORK/fsck.log"; then
	fail "fsck: $(grep "unlinked inodes" "$WORK/fsck.log")"
fi
log PASS
