#!/bin/sh
# overwrite.sh MIXFS [PATCHES] - overwrite amplification: a 149 KiB file
# of random bytes patched PATCHES times (default 50) with 100 KiB of new
# random bytes at random offsets (dd conv=notrunc, one process each),
# then stored bytes (mixfs stats --json) right after the patches and once
# the mount has been idle (rebase_idle=2000 ms: defrag rewrites the
# partially covered ranges), and a fresh copy's.  Root, /dev/fuse.
set -eu
MIXFS=$(realpath "$1")
N=${2:-50}
PY=python3
. "$(dirname "$0")/lib.sh"
W=$(mktemp -d /tmp/mixfs-ow-XXXXXX)
MNT=$W/mnt
PID=
trap 'fuse_cleanup; rm -rf "$W"' EXIT
mkdir "$MNT"
"$MIXFS" mkfs "$W/store" > /dev/null
fuse_mount "$W/log" "$MIXFS" mount -f "$W/store" "$MNT"
stored() { "$MIXFS" stats --json "$W/store" | json_get /dev/stdin stored_bytes; }
"$PY" -c 'import random, sys; random.seed(1); sys.stdout.buffer.write(random.randbytes(149 * 1024))' > "$W/f"
cp "$W/f" "$MNT/f"
i=0
while [ $i -lt "$N" ]; do
	off=$("$PY" -c "import random; random.seed($i + 100); print(random.randrange(149 * 1024 - 100 * 1024 + 1))")
	"$PY" -c "import random, sys; random.seed($i + 1000); sys.stdout.buffer.write(random.randbytes(100 * 1024))" > "$W/p"
	dd if="$W/p" of="$MNT/f" bs=100K seek="$off" oflag=seek_bytes conv=notrunc status=none
	dd if="$W/p" of="$W/f" bs=100K seek="$off" oflag=seek_bytes conv=notrunc status=none
	i=$((i + 1))
done
sync "$MNT/f"
before=$(stored)
# idle: rebase_idle (2 s), then the rewrite; poll until it settles
last=$before; same=0
for _ in $(seq 1 60); do
	sleep 1
	now=$(stored)
	if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; fi
	last=$now
	[ $same -lt 5 ] || break
done
cmp "$W/f" "$MNT/f"
fuse_umount
# the final bytes written at once, in a store of their own
rm -rf "$W/store"
"$MIXFS" mkfs "$W/store" > /dev/null
fuse_mount "$W/log" "$MIXFS" mount -f "$W/store" "$MNT"
cp "$W/f" "$MNT/f"
sync "$MNT/f"
fresh=$(stored)
fuse_umount
echo "overwrite: $N patches of 100 KiB into 149 KiB: stored $before bytes after the patches, $last when idle; a fresh copy $fresh"
