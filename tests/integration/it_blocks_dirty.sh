#!/bin/bash
# st_blocks of a file whose data is still buffered (written, not yet cut
# into chunks and committed) must not be 0: GNU tar --sparse (1.34) takes a
# file with st_blocks == 0 and a non-zero size for one hole and archives no
# data at all, and the kernel caches the attributes for attr_timeout, so a
# stat while writing followed by close and tar loses the file's bytes.
# ext4 counts delayed-allocation blocks in st_blocks for this reason.
. "$(dirname "$0")/lib.sh"
it_start

rand_file "$WORK/ref" 5

# 1. the user-visible consequence: write, fstat, close, then at once tar --sparse.
python3 - "$MNT/b" "$WORK/ref" <<'PY'
import os, sys
data = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data)
os.fstat(fd)
os.close(fd)
PY
tar --sparse -C "$MNT" -cf "$WORK/b.tar" b
mkdir "$WORK/x"
tar -C "$WORK/x" -xf "$WORK/b.tar"
check_cmp "$WORK/ref" "$WORK/x/b"
check_cmp "$WORK/ref" "$MNT/b"
# 2. fstat of a file with 5 MiB written and nothing committed yet.
blocks=$(python3 - "$MNT/a" "$WORK/ref" <<'PY'
import os, sys
data = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data)
print(os.fstat(fd).st_blocks)
os.close(fd)
PY
)
log "st_blocks of 5 MiB of buffered random bytes: $blocks"
[ "$blocks" -gt 0 ] || fail "fstat of a file with 5 MiB buffered: st_blocks 0 (looks like one hole)"

mixfs_umount
log "PASS"
