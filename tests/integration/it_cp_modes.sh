#!/bin/bash
# cp -a keeps modes.  coreutils' cp (libacl) sets the mode of a copy by
# writing system.posix_acl_access (fsetxattr) after creating the file with
# its group and other bits masked; a file system without POSIX ACLs must
# refuse that xattr (EOPNOTSUPP) so that cp falls back to fchmod, else the
# ACL is stored as an opaque xattr and the mode stays 0600/0700.
. "$(dirname "$0")/lib.sh"
it_start

SRC=$WORK/src
mkdir -p "$SRC/d/e"
printf 'a\n' >"$SRC/d/f644"
printf 'b\n' >"$SRC/d/e/f755"
printf 'c\n' >"$SRC/d/f640"
chmod 644 "$SRC/d/f644"
chmod 755 "$SRC/d/e/f755" "$SRC/d" "$SRC/d/e"
chmod 640 "$SRC/d/f640"

cp -a "$SRC/d" "$MNT/d"
for p in d d/e d/f644 d/e/f755 d/f640; do
	check_eq "mode of $p after cp -a" "$(stat -c %a "$SRC/$p")" "$(stat -c %a "$MNT/$p")"
done
# and after the group commit and a remount
sleep 2
mixfs_umount
mixfs_mount
for p in d d/e d/f644 d/e/f755 d/f640; do
	check_eq "mode of $p after remount" "$(stat -c %a "$SRC/$p")" "$(stat -c %a "$MNT/$p")"
done
log PASS
