#!/bin/bash
# tar a tree into the mount, tar it back out, diff -r.
. "$(dirname "$0")/lib.sh"
it_start

SRC=$WORK/src
mkdir -p "$SRC/a/b/c" "$SRC/empty_dir" "$SRC/x y"
rand_file "$SRC/a/r1" 2 3
float_file "$SRC/a/b/f1" 1 4
cp "$SRC/a/r1" "$SRC/a/b/c/r1_dup"
printf 'text\n' >"$SRC/x y/name with spaces"
: >"$SRC/a/empty"
ln -s ../a/r1 "$SRC/a/b/link"
ln "$SRC/a/r1" "$SRC/a/hard"
for i in $(seq 1 200); do printf 'file %d\n' "$i" >"$SRC/a/b/c/small$i"; done
chmod 0600 "$SRC/a/b/f1"
chmod 0751 "$SRC/a/b"
touch -d '2001-02-03 04:05:06' "$SRC/a/r1"

tar -C "$SRC" -cf - . | tar -C "$MNT" -xpf -
diff -r --no-dereference "$SRC" "$MNT" || fail "diff -r after tar into the mount"

mkdir "$WORK/out"
tar -C "$MNT" -cf "$WORK/out.tar" .
tar -C "$WORK/out" -xpf "$WORK/out.tar"
diff -r --no-dereference "$SRC" "$WORK/out" || fail "diff -r after tar out of the mount"
check_eq "mode of f1" 600 "$(stat -c %a "$MNT/a/b/f1")"
check_eq "mode of a/b" 751 "$(stat -c %a "$MNT/a/b")"
# bindfs loses a futimens() on a hard-linked file; mixfs must not.
is_standin || check_eq "mtime of r1" "$(stat -c %Y "$SRC/a/r1")" "$(stat -c %Y "$MNT/a/r1")"
check_eq "symlink" "../a/r1" "$(readlink "$MNT/a/b/link")"
check_eq "hard link inode" "$(stat -c %i "$MNT/a/r1")" "$(stat -c %i "$MNT/a/hard")"

# A tarball stored on the mount, extracted from there.
tar -C "$SRC" -czf "$MNT/tree.tgz" .
mkdir "$WORK/out2"
tar -C "$WORK/out2" -xzf "$MNT/tree.tgz"
diff -r --no-dereference "$SRC" "$WORK/out2" || fail "diff -r of a .tgz stored on the mount"
log PASS
