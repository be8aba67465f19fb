#!/bin/bash
# The atomic-save pattern: write a temp file, rename it over the old one.
. "$(dirname "$0")/lib.sh"
it_start

rand_file "$WORK/old" 3 21
rand_file "$WORK/new" 2 22
cp "$WORK/old" "$MNT/ckpt.pt"
old_ino=$(stat -c %i "$MNT/ckpt.pt")

# Keep the old file open: its content must stay readable after the rename.
exec 3<"$MNT/ckpt.pt"
cp "$WORK/new" "$MNT/.ckpt.pt.tmp"
sync "$MNT/.ckpt.pt.tmp"
mv -f "$MNT/.ckpt.pt.tmp" "$MNT/ckpt.pt"
check_cmp "$WORK/new" "$MNT/ckpt.pt"
[ ! -e "$MNT/.ckpt.pt.tmp" ] || fail "temp name still exists after rename"
check_eq "entries after rename" "ckpt.pt" "$(lsA "$MNT")"
check_cmp "$WORK/old" /dev/fd/3
exec 3<&-
[ "$(stat -c %i "$MNT/ckpt.pt")" != "$old_ino" ] || fail "inode unchanged after rename-over"

# Python's os.replace, the same pattern as torch.save to a temp + replace.
/usr/bin/python3 - "$MNT" <<'PYEOF'
import os, sys
d = sys.argv[1]
for i in range(20):
    tmp = os.path.join(d, f"step.tmp")
    with open(tmp, "wb") as f:
        f.write(bytes([i]) * (100000 + i)); f.flush(); os.fsync(f.fileno())
    os.replace(tmp, os.path.join(d, "step.bin"))
    with open(os.path.join(d, "step.bin"), "rb") as f:
        if f.read() != bytes([i]) * (100000 + i):
            sys.exit(f"step.bin wrong after replace {i}")
if os.path.exists(os.path.join(d, "step.tmp")):
    sys.exit("step.tmp left behind")
PYEOF

# Rename across directories and over a file in another directory.
mkdir "$MNT/a" "$MNT/b"
cp "$WORK/old" "$MNT/a/x"
cp "$WORK/new" "$MNT/b/x"
mv "$MNT/a/x" "$MNT/b/x"
check_cmp "$WORK/old" "$MNT/b/x"
check_eq "a/ empty" "" "$(lsA "$MNT/a")"
# Rename a directory over an empty directory; not over a non-empty one.
mkdir "$MNT/c"
mv -T "$MNT/a" "$MNT/c"
[ -d "$MNT/c" ] && [ ! -e "$MNT/a" ] || fail "directory rename over an empty directory"
mkdir "$MNT/d"
expect_fail "rename directory over a non-empty directory" mv -T "$MNT/d" "$MNT/b"

# RENAME_NOREPLACE (mv --no-clobber uses renameat2 with it).
printf 'keep\n' >"$MNT/keep"
printf 'other\n' >"$MNT/other"
# (mv -n exits 0 or 1 here depending on the coreutils version; the content checks decide.)
if ! mv -n "$MNT/other" "$MNT/keep"; then log "mv -n returned non-zero (coreutils >= 9.2 does)"; fi
check_eq "target kept by mv -n" keep "$(cat "$MNT/keep")"
check_eq "source kept by mv -n" other "$(cat "$MNT/other")"
/usr/bin/python3 - "$MNT" <<'PYEOF'
import ctypes, errno, os, sys
d = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE, AT_FDCWD = 1, 2, -100
r = libc.renameat2(AT_FDCWD, os.path.join(d, "other").encode(), AT_FDCWD, os.path.join(d, "keep").encode(), RENAME_NOREPLACE)
if r == 0 or ctypes.get_errno() != errno.EEXIST:
    sys.exit(f"renameat2 NOREPLACE over an existing file: r={r} errno={ctypes.get_errno()}, expected EEXIST")
r = libc.renameat2(AT_FDCWD, os.path.join(d, "other").encode(), AT_FDCWD, os.path.join(d, "new").encode(), RENAME_NOREPLACE)
if r != 0 and os.environ.get("MIXFS_STANDIN") and ctypes.get_errno() == errno.EINVAL:
    print("stand-in: renameat2 flags unsupported; skipping the rest")
    sys.exit(0)
if r != 0:
    sys.exit(f"renameat2 NOREPLACE to a new name failed: errno {ctypes.get_errno()}")
r = libc.renameat2(AT_FDCWD, os.path.join(d, "new").encode(), AT_FDCWD, os.path.join(d, "keep").encode(), RENAME_EXCHANGE)
if r != 0:
    e = ctypes.get_errno()
    if e not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        sys.exit(f"renameat2 EXCHANGE failed: errno {e}")
    print("RENAME_EXCHANGE not supported (errno %d)" % e)
else:
    if open(os.path.join(d, "keep")).read() != "other\n" or open(os.path.join(d, "new")).read() != "keep\n":
        sys.exit("RENAME_EXCHANGE did not swap")
PYEOF
log PASS
