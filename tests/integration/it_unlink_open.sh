#!/bin/bash
# Unlink of an open file: data stays readable (and writable) until the last close.
. "$(dirname "$0")/lib.sh"
it_start

rand_file "$WORK/ref" 3 31
cp "$WORK/ref" "$MNT/f"
exec 3<"$MNT/f"
rm "$MNT/f"
[ ! -e "$MNT/f" ] || fail "f still exists after rm"
check_eq "ls after rm" "" "$(lsA "$MNT")"
# Drop cached pages so the read goes to the daemon.
dd if=/dev/fd/3 iflag=nocache of=/dev/null bs=1M status=none
check_cmp "$WORK/ref" /dev/fd/3
exec 3<&-

# Same from Python: read, write and fstat through the descriptor after unlink,
# with a new file of the same name created meanwhile.
/usr/bin/python3 - "$MNT" "$WORK/ref" <<'PYEOF'
import os, sys
d, ref = sys.argv[1], sys.argv[2]
want = open(ref, "rb").read()
p = os.path.join(d, "g")
with open(p, "wb") as f:
    f.write(want)
fd = os.open(p, os.O_RDWR)
os.unlink(p)
if os.path.exists(p):
    sys.exit("g exists after unlink")
with open(p, "wb") as f:
    f.write(b"new file")
st = os.fstat(fd)
if st.st_size != len(want):
    sys.exit(f"fstat size after unlink {st.st_size} != {len(want)}")
if st.st_nlink != 0 and not os.environ.get("MIXFS_STANDIN"):
    sys.exit(f"st_nlink after unlink is {st.st_nlink}, expected 0")
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
if os.pread(fd, len(want), 0) != want:
    sys.exit("read after unlink differs")
os.pwrite(fd, b"X" * 5000, 777)
if os.pread(fd, 5000, 777) != b"X" * 5000:
    sys.exit("write+read on an unlinked file differs")
os.ftruncate(fd, 1000)
if os.fstat(fd).st_size != 1000:
    sys.exit("ftruncate of an unlinked file")
os.close(fd)
if open(p, "rb").read() != b"new file":
    sys.exit("the new file of the same name was disturbed")
PYEOF

check_eq "ls at end" "g" "$(lsA "$MNT")"
# The daemon must survive an unmount with nothing open, and remount clean.
mixfs_umount
mixfs_mount
check_eq "ls after remount" "g" "$(lsA "$MNT")"
check_eq "g after remount" "new file" "$(cat "$MNT/g")"
log PASS
