#!/bin/bash
# dd with odd bs/seek/skip and conv=notrunc against a reference file in $WORK.
. "$(dirname "$0")/lib.sh"
it_start

REF=$WORK/ref.bin
SRC=$WORK/src.bin
rand_file "$SRC" 3 7
T=$MNT/t.bin

# Apply the same dd to the reference and to the file on the mount.
both() {
	dd if="$SRC" of="$REF" status=none "$@"
	dd if="$SRC" of="$T" status=none "$@"
	check_cmp "$REF" "$T"
	check_eq "size after dd $*" "$(stat -c %s "$REF")" "$(stat -c %s "$T")"
}

both bs=1M count=2
both bs=4097 seek=3 skip=5 count=17 conv=notrunc
both bs=1 seek=1000003 skip=77 count=513 conv=notrunc
both bs=65535 seek=40 skip=1 count=3 conv=notrunc   # extends the file
both bs=13 seek=500000 count=1 conv=notrunc          # far beyond EOF: a hole
both bs=131071 seek=1 skip=2 count=4                 # truncates at the end of the write
both bs=512 seek=7 count=0                           # truncate only
both bs=1000 seek=3000 skip=1 count=1 conv=notrunc
both bs=262147 count=5 seek=2 conv=notrunc,fsync
both bs=1 seek=0 count=1 conv=notrunc

# Reads at odd offsets and sizes.
for spec in "1 0 1" "4097 3 9" "65537 1 5" "7 99999 100" "1048575 1 2"; do
	set -- $spec
	a=$(dd if="$REF" bs="$1" skip="$2" count="$3" status=none | sha256sum)
	b=$(dd if="$T" bs="$1" skip="$2" count="$3" status=none | sha256sum)
	check_eq "dd read bs=$1 skip=$2 count=$3" "$a" "$b"
done
log PASS
