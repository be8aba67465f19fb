#!/bin/bash
# Dedup: the same 100 MiB written twice costs no new pack bytes; 100 MiB of
# fresh random data costs about 100 MiB.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "pack byte accounting"
mixfs_mkfs
# Dedup does not depend on the codec; raw keeps the test fast and makes
# "random data costs its size" exact.
mixfs_mount fg level=raw
MIB=${IT_DEDUP_MIB:-100}

rand_file "$WORK/a" "$MIB" 41
p0=$(pack_bytes)
cp "$WORK/a" "$MNT/a1"
p1=$(pack_bytes)
cp "$WORK/a" "$MNT/a2"
p2=$(pack_bytes)
check_cmp "$WORK/a" "$MNT/a1"
check_cmp "$WORK/a" "$MNT/a2"
log "pack bytes: empty $p0, after first copy $p1 (+$((p1 - p0))), after second $p2 (+$((p2 - p1)))"
size=$((MIB * 1048576))
# Random data does not compress: the first copy costs about its size
# (frames add headers; allow 0.95x .. 1.05x).
[ $((p1 - p0)) -ge $((size * 95 / 100)) ] || fail "first copy of $MIB MiB random added only $((p1 - p0)) pack bytes"
[ $((p1 - p0)) -le $((size * 105 / 100)) ] || fail "first copy of $MIB MiB random added $((p1 - p0)) pack bytes (> 1.05x)"
# The second copy is all duplicate chunks: at most 1% new bytes.
[ $((p2 - p1)) -le $((size / 100)) ] || fail "second copy of the same $MIB MiB added $((p2 - p1)) pack bytes (expected ~0)"

# Same data written at a shifted offset (a 1000-byte header in front):
# content-defined chunking finds the same chunks after the first one or two.
{ head -c 1000 /dev/urandom; cat "$WORK/a"; } >"$MNT/shifted"
p3=$(pack_bytes)
tail -c +1001 "$MNT/shifted" | cmp - "$WORK/a" || fail "shifted copy reads back wrong"
log "shifted copy added $((p3 - p2)) pack bytes"
[ $((p3 - p2)) -le $((size / 50)) ] || fail "copy shifted by 1000 bytes added $((p3 - p2)) pack bytes (expected < 2%)"

# Stored bytes survive a remount and the files are intact.
mixfs_umount
mixfs_mount fg level=raw
check_cmp "$WORK/a" "$MNT/a2"
check_eq "pack bytes after remount" "$p3" "$(pack_bytes)"
log PASS
