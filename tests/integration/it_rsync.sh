#!/bin/bash
# rsync -a a tree in and out, diff -r; a second rsync transfers nothing.
. "$(dirname "$0")/lib.sh"
it_start
command -v rsync >/dev/null || skip "rsync missing"

SRC=$WORK/src
mkdir -p "$SRC/ckpt/step1" "$SRC/ckpt/step2" "$SRC/misc"
float_file "$SRC/ckpt/step1/model.bin" 2 5
float_file "$SRC/ckpt/step2/model.bin" 2 6
rand_file "$SRC/misc/r" 1 8
ln -s step2 "$SRC/ckpt/latest"
for i in $(seq 1 50); do printf '%d\n' "$i" >"$SRC/misc/f$i"; done

rsync -a "$SRC/" "$MNT/tree/"
diff -r --no-dereference "$SRC" "$MNT/tree" || fail "diff -r after rsync in"

n=$(rsync -a --itemize-changes "$SRC/" "$MNT/tree/" | wc -l)
check_eq "items changed by a second rsync in" 0 "$n"

rsync -a "$MNT/tree/" "$WORK/out/"
diff -r --no-dereference "$SRC" "$WORK/out" || fail "diff -r after rsync out"
n=$(rsync -a --itemize-changes "$MNT/tree/" "$WORK/out/" | wc -l)
check_eq "items changed by a second rsync out" 0 "$n"

# Delta transfer over an existing file (rsync writes a temp file and renames).
# -I: rsync's quick check compares whole seconds, and the dd above may land
# in the same second as the first copy; the transfer must happen anyway.
dd if=/dev/urandom of="$SRC/ckpt/step1/model.bin" bs=4096 seek=100 count=3 conv=notrunc status=none
rsync -a -I --no-whole-file "$SRC/" "$MNT/tree/"
check_cmp "$SRC/ckpt/step1/model.bin" "$MNT/tree/ckpt/step1/model.bin"
# In-place delta as well.
dd if=/dev/urandom of="$SRC/ckpt/step2/model.bin" bs=1000 seek=7 count=2 conv=notrunc status=none
rsync -a -I --inplace --no-whole-file "$SRC/" "$MNT/tree/"
diff -r --no-dereference "$SRC" "$MNT/tree" || fail "diff -r after delta rsync"
rsync -a --checksum --delete "$SRC/" "$MNT/tree/"
n=$(rsync -a --checksum --itemize-changes "$SRC/" "$MNT/tree/" | wc -l)
check_eq "items changed by rsync --checksum" 0 "$n"
log PASS
