#!/bin/bash
# mkstore.sh MIXFS OUTDIR LEVEL MOUNTOPTS SETTLE_S
# The workload of the golden stores (README.md): run with an OLD mixfs
# binary (a worktree build of an earlier commit); leaves OUTDIR/store,
# OUTDIR/MANIFEST (manifest.sh of the mount before the unmount), the old
# binary's stats and fsck output.  GC=1 also runs the old mixfs gc.
# Then: tar --sparse --sort=name --owner=0 --group=0 --numeric-owner
#   --exclude=lock.mdb -C OUTDIR -cf - store | xz -9e > NAME.tar.xz
set -euo pipefail
MIXFS=$1 OUT=$2 LEVEL=$3 OPTS=$4 SETTLE=${5:-1}
HERE=$(dirname "$(readlink -f "$0")")
LIB=${LIB:-$HERE/../../integration/lib.sh}
IT_NAME=mkstore
source "$LIB"
set -euo pipefail
STORE=$OUT/store MNT=$OUT/mnt SRC=$OUT/src
rm -rf "$OUT"; mkdir -p "$MNT" "$SRC"
"$MIXFS" mkfs -l "$LEVEL" "$STORE" > "$OUT/mkfs.log" 2>&1 || "$MIXFS" mkfs "$STORE" > "$OUT/mkfs.log" 2>&1
"$MIXFS" mount -f ${OPTS:+-o "$OPTS"} "$STORE" "$MNT" > "$OUT/mount.log" 2>&1 &
PID=$!
for i in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT"
cd "$SRC"
series_files "$SRC/ckpt-" 4 65536 7
python3 -c "
import random; r=random.Random(3)
open('rand1.bin','wb').write(bytes(r.getrandbits(8) for _ in range(24000)))
open('rand2.bin','wb').write(bytes(r.getrandbits(8) for _ in range(9000)))"
python3 -c "import random,struct; r=random.Random(5); open('$SRC/w.f32','wb').write(struct.pack('<16384f',*(r.gauss(0,0.02) for _ in range(16384))))"
seq 1 3000 > "$SRC/text.txt"
cd "$MNT"
mkdir -p series tree/a/b/c tree/d empty
for v in 0 1 2 3; do cp "$SRC/ckpt-$v.safetensors" series/ckpt-$v.safetensors; sync -f .; sleep 0.3; done
# one name rewritten in place (truncate + write) with each version
for v in 0 1 2 3; do cp "$SRC/ckpt-$v.safetensors" series/latest.safetensors; sync -f .; sleep 0.3; done
cp "$SRC/rand1.bin" rand1.bin
cp "$SRC/rand2.bin" tree/a/b/c/rand2.bin
cp "$SRC/w.f32" tree/d/w.f32
cp "$SRC/text.txt" tree/a/text.txt
cp "$SRC/rand1.bin" tree/copy-of-rand1.bin      # dedup
cp "$SRC/text.txt" deleted.txt; sync -f .; rm deleted.txt
ln tree/a/text.txt hardlink.txt
ln -s tree/a/b/c/rand2.bin symlink
ln -s /nonexistent/dangling dangling
setfattr -n user.compat -v "written-by-old" tree/d/w.f32
setfattr -n user.empty -v "" rand1.bin
truncate -s 1M sparse.bin
printf 'middle' | dd of=sparse.bin bs=1 seek=500000 conv=notrunc status=none
printf 'tail' | dd of=sparse.bin bs=1 seek=1048572 conv=notrunc status=none
cp "$SRC/rand2.bin" inplace.bin
sync -f .
dd if=/dev/zero of=inplace.bin bs=4096 seek=3 count=2 conv=notrunc status=none
printf 'rewritten' | dd of=tree/a/text.txt bs=1 seek=100 conv=notrunc status=none
chmod 640 tree/a/text.txt
sync -f .
sleep "$SETTLE"
cd /
bash "$HERE/manifest.sh" "$MNT" > "$OUT/MANIFEST"
fusermount3 -u "$MNT"
wait $PID; echo "daemon exit $?"
[ "${GC:-0}" = 1 ] && "$MIXFS" gc "$STORE" > "$OUT/gc-old.txt" 2>&1
"$MIXFS" stats "$STORE" > "$OUT/stats-old.txt" 2>&1 || true
"$MIXFS" fsck "$STORE" > "$OUT/fsck-old.txt" 2>&1 || echo "old fsck rc=$?"
du -sh --apparent-size "$STORE"; du -sh "$STORE"
