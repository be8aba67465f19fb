#!/bin/bash
# cp/cat/cmp/sha256sum of random and float-like data; ls; stat sizes.
. "$(dirname "$0")/lib.sh"
it_start

REF=$WORK/ref
mkdir -p "$REF"
rand_file "$REF/random.bin" 5 1
float_file "$REF/float.bin" 3 2
printf 'hello mixfs\n' >"$REF/small.txt"
: >"$REF/empty"
head -c 1 /dev/zero >"$REF/one"
head -c 65537 "$REF/random.bin" >"$REF/odd.bin"

for f in random.bin float.bin small.txt empty one odd.bin; do
	cp "$REF/$f" "$MNT/$f"
done
for f in random.bin float.bin small.txt empty one odd.bin; do
	check_cmp "$REF/$f" "$MNT/$f"
	check_eq "sha256 of $f" "$(sha "$REF/$f")" "$(sha "$MNT/$f")"
	check_eq "stat size of $f" "$(stat -c %s "$REF/$f")" "$(stat -c %s "$MNT/$f")"
	check_eq "type of $f" "regular file" "$(stat -c %F "$MNT/$f" | sed 's/regular empty file/regular file/')"
done
check_eq "cat small.txt" "hello mixfs" "$(cat "$MNT/small.txt")"
cat "$MNT/random.bin" "$MNT/float.bin" >"$WORK/cat.out"
cat "$REF/random.bin" "$REF/float.bin" >"$WORK/cat.ref"
check_cmp "$WORK/cat.ref" "$WORK/cat.out"

check_eq "ls" "empty float.bin odd.bin one random.bin small.txt" "$(ls "$MNT" | tr '\n' ' ' | sed 's/ $//')"
check_eq "ls -a count" 8 "$(ls -a "$MNT" | wc -l)"

# Copy within the mount, and a copy out again after dropping the page cache
# of the file (fadvise via dd iflag=nocache), to read through the daemon.
cp "$MNT/float.bin" "$MNT/float2.bin"
check_cmp "$REF/float.bin" "$MNT/float2.bin"
dd if="$MNT/random.bin" iflag=nocache of=/dev/null bs=1M status=none
cp "$MNT/random.bin" "$WORK/out.bin"
check_cmp "$REF/random.bin" "$WORK/out.bin"

# Overwrite a file with shorter content: no stale tail.
cp "$REF/small.txt" "$MNT/random.bin"
check_cmp "$REF/small.txt" "$MNT/random.bin"
check_eq "size after shorter overwrite" 12 "$(stat -c %s "$MNT/random.bin")"

# st_blocks is reported (du works) and the tree is listable recursively.
mkdir -p "$MNT/d/e/f"
cp "$REF/odd.bin" "$MNT/d/e/f/x"
check_cmp "$REF/odd.bin" "$MNT/d/e/f/x"
du -s "$MNT" >/dev/null
check_eq "find count" 12 "$(find "$MNT" | wc -l)"
log PASS
