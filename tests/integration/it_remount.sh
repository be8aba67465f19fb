#!/bin/bash
# Files, directories, links and attributes survive unmount + mount (also the
# daemonized mount), and a file written just before unmount is complete.
. "$(dirname "$0")/lib.sh"
it_start

rand_file "$WORK/r" 6 51
float_file "$WORK/f" 2 52
mkdir -p "$MNT/run/step1" "$MNT/run/step2"
cp "$WORK/r" "$MNT/run/step1/model.bin"
cp "$WORK/f" "$MNT/run/step2/model.bin"
cp "$WORK/f" "$MNT/run/step2/copy.bin"
ln -s step2 "$MNT/run/latest"
ln "$MNT/run/step1/model.bin" "$MNT/run/hard"
printf 'meta\n' >"$MNT/run/meta.txt"
chmod 640 "$MNT/run/meta.txt"
touch -d '2020-01-02 03:04:05' "$MNT/run/meta.txt"
truncate -s 5000000 "$MNT/sparse"
printf 'tail' | dd of="$MNT/sparse" bs=1 seek=4999996 conv=notrunc status=none
# No sync: unmount must flush what is buffered.
(cd "$MNT" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$WORK/sums"
(cd "$MNT" && find . -printf '%p %y %s %m %n %l\n' | sort) >"$WORK/tree"

mixfs_umount
mountpoint -q "$MNT" && fail "still mounted after fusermount3 -u"
mixfs_mount
(cd "$MNT" && sha256sum --quiet -c "$WORK/sums") || fail "sha256sum -c after remount"
(cd "$MNT" && find . -printf '%p %y %s %m %n %l\n' | sort) >"$WORK/tree2"
diff "$WORK/tree" "$WORK/tree2" || fail "tree listing changed across remount"
check_eq "mtime of meta.txt" "$(date -d '2020-01-02 03:04:05' +%s)" "$(stat -c %Y "$MNT/run/meta.txt")"
check_cmp "$WORK/r" "$MNT/run/hard"

# Modify after remount, remount daemonized, check again.
printf 'more' >>"$MNT/run/meta.txt"
rm "$MNT/run/step2/copy.bin"
mixfs_umount
mixfs_mount daemon
check_eq "appended meta.txt" "$(printf 'meta\nmore')" "$(cat "$MNT/run/meta.txt")"
[ ! -e "$MNT/run/step2/copy.bin" ] || fail "deleted file back after remount"
check_cmp "$WORK/f" "$MNT/run/step2/model.bin"
mixfs_umount
mixfs_mount
check_cmp "$WORK/r" "$MNT/run/step1/model.bin"
log PASS
