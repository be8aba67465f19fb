#!/bin/bash
# copy_file_range(2) inside the mount (cp of coreutils 9 uses it for a
# file whose st_blocks cover its size, as random bytes at level fast do;
# cat for any): the copy maps the source's chunks.  The
# daemon reads none of the copied bytes from the kernel (its read count
# stays far below the file size), stores nothing new even for ragged
# ranges that a read-and-write copy would chunk anew, and every copy
# reads back right, outlives its source, a remount and fsck.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "copy_file_range mapping"
mixfs_mkfs
mixfs_mount fg level=fast
MIB=${IT_COPY_MIB:-64}

# bytes the daemon has read (from /dev/fuse and files); 0 where the kernel
# keeps no I/O accounting (then only the pack-byte checks below apply)
rchar() { awk '/^rchar:/ {print $2}' "/proc/$MOUNT_PID/io" 2>/dev/null || echo 0; }

rand_file "$WORK/a" "$MIB" 51
cp "$WORK/a" "$MNT/a"
sync -f "$MNT/a"
p0=$(pack_bytes)
r0=$(rchar)
cp "$MNT/a" "$MNT/b"
r1=$(rchar)
check_cmp "$WORK/a" "$MNT/b"
log "cp of $MIB MiB inside the mount: daemon read $((r1 - r0)) bytes"
# A copy through read and write would hand the daemon all $MIB MiB as
# write requests (and read them back from packs).
[ $((r1 - r0)) -lt 1048576 ] ||
	fail "cp inside the mount made the daemon read $((r1 - r0)) bytes (not a mapped copy)"

# Ragged ranges into the middle of a file and past its end, and a file
# onto itself; a model of each destination in $WORK.
python3 - "$MNT" "$WORK" <<'PY' || fail "os.copy_file_range cases failed"
import os, sys
mnt, work = sys.argv[1], sys.argv[2]
src = open(os.path.join(work, "a"), "rb").read()
n = len(src)
def cfr(fin, oin, fout, oout, ln):
    done = 0
    while done < ln:
        k = os.copy_file_range(fin, fout, ln - done, oin + done, oout + done)
        if k == 0:
            break
        done += k
    return done
model = bytearray(os.urandom(3 << 20))
with open(os.path.join(mnt, "c"), "wb") as f:
    f.write(model)
fa = os.open(os.path.join(mnt, "a"), os.O_RDONLY)
fc = os.open(os.path.join(mnt, "c"), os.O_RDWR)
assert cfr(fa, 12345, fc, 777777, 1000001) == 1000001
model[777777:777777 + 1000001] = src[12345:12345 + 1000001]
end = len(model) + 70000
assert cfr(fa, n - 5000, fc, end, 1 << 20) == 5000   # short: the source ends
model += bytes(70000) + src[n - 5000:]
os.fsync(fc)
os.close(fc)
fd = os.open(os.path.join(mnt, "d"), os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, src[:200000])
assert cfr(fd, 0, fd, 300000, 150000) == 150000
try:
    os.copy_file_range(fd, fd, 1000, 0, 100)
    sys.exit("overlapping copy onto itself did not fail")
except OSError as e:
    assert e.errno == 22, e
os.close(fd)
os.close(fa)
with open(os.path.join(work, "c.model"), "wb") as f:
    f.write(model)
with open(os.path.join(work, "d.model"), "wb") as f:
    f.write(src[:200000] + bytes(100000) + src[:150000])
PY
check_cmp "$WORK/c.model" "$MNT/c"
check_cmp "$WORK/d.model" "$MNT/d"
p1=$(pack_bytes)
log "pack bytes: $p0 before the copies, $p1 after (c's own 3 MiB and d's head are new)"
# c (3 MiB) and d's first 200000 bytes were written; the copies add
# nothing: well below what the chunks of the copied ranges would take.
[ $((p1 - p0)) -lt $((3 * 1048576 + 200000 + 262144)) ] ||
	fail "copies stored $((p1 - p0)) new pack bytes"

# The source goes; copies stay, through a remount and fsck.
rm "$MNT/a"
check_cmp "$WORK/a" "$MNT/b"
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.log" 2>&1 || fail "fsck exited $?: $(tail -n 20 "$WORK/fsck.log")"
mixfs_mount fg level=fast
check_cmp "$WORK/a" "$MNT/b"
check_cmp "$WORK/c.model" "$MNT/c"
check_cmp "$WORK/d.model" "$MNT/d"
mixfs_umount

# A compressed file looks sparse (st_blocks below its size: du shows what
# it takes), so plain cp reads and writes it; with -o blocks=logical it
# does not, and cp maps it.
float_file "$WORK/w" 4 9
SZ=$(stat -c %s "$WORK/w")
mixfs_mount fg level=mix
cp "$WORK/w" "$MNT/w"
sync "$MNT/w" # committed (until then st_blocks counts the bytes as written)
blocks=$(stat -c %b "$MNT/w")
[ "$blocks" -lt $((SZ / 512)) ] || fail "default: st_blocks $blocks of a compressed $SZ-byte file"
mixfs_umount
mixfs_mount fg level=mix,blocks=logical
blocks=$(stat -c %b "$MNT/w")
[ "$blocks" -ge $((SZ / 512)) ] || fail "blocks=logical: st_blocks $blocks < size $SZ / 512"
r0=$(rchar)
cp "$MNT/w" "$MNT/w2"
r1=$(rchar)
check_cmp "$WORK/w" "$MNT/w2"
log "blocks=logical: cp of a compressed $SZ-byte file made the daemon read $((r1 - r0)) bytes"
[ $((r1 - r0)) -lt 262144 ] || fail "blocks=logical: cp was not a mapped copy ($((r1 - r0)) bytes read)"
log PASS
