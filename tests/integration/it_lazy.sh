#!/bin/bash
# Lazy coding through a real mount: with -o lazy=all a file is stored at
# level fast as it is written (pending work), reads back exactly at once,
# and once the mount has been idle the rebase thread recompresses it to
# mix: nothing pending, fewer stored bytes, the same bytes read back, fsck
# clean, and the same after a remount.  Then the default, lazy=auto: a
# 96 MiB file written faster than the encoders code it leaves part of it at
# fast (the backlog passed three batches) and none once idle.  A bad lazy=
# value refuses to mount.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "lazy coding"
command -v python3 >/dev/null || skip "python3 missing"
mixfs_mkfs
expect_fail "mount with lazy=sometimes" "$MIXFS" mount -f -o lazy=sometimes "$STORE" "$MNT"
mountpoint -q "$MNT" && fail "mounted with a bad lazy= value"

float_file "$WORK/w.bin" 8 7
SIZE=$(stat -c %s "$WORK/w.bin")
# 4 s of idleness before recompression: room for the checks below
mixfs_mount fg lazy=all,rebase_idle=4000
cp "$WORK/w.bin" "$MNT/w.bin"
sync -f "$MNT/w.bin"
stats_json "$WORK/s0.json" "$STORE"
check_cmp "$WORK/w.bin" "$MNT/w.bin"
python3 - "$WORK/s0.json" "$SIZE" <<'PY' || fail "before recompression: $(cat "$WORK/s0.json")"
import json, sys
s, size = json.load(open(sys.argv[1])), int(sys.argv[2])
fast = s["by_level"]["fast"]["unique_bytes"]
assert s["pending_bytes"] == fast and fast >= size * 9 // 10, (s["pending_bytes"], fast)
PY
wait_stats "$WORK/s1.json" 200 's["pending_bytes"] == 0' ||
	fail "still pending after 60 s: $(cat "$WORK/s1.json")"
python3 - "$WORK/s0.json" "$WORK/s1.json" "$SIZE" <<'PY' || fail "after recompression: $(cat "$WORK/s1.json")"
import json, sys
a, b, size = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
assert b["by_level"]["mix"]["unique_bytes"] >= size * 9 // 10, b["by_level"]
assert b["stored_bytes"] < a["stored_bytes"], (a["stored_bytes"], b["stored_bytes"])
assert b["logical_bytes"] == a["logical_bytes"] == size
PY
check_cmp "$WORK/w.bin" "$MNT/w.bin"
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.txt" 2>&1 || fail "fsck: $(cat "$WORK/fsck.txt")"
mixfs_mount
check_cmp "$WORK/w.bin" "$MNT/w.bin"

# lazy=auto (the default): twelve versions of w.bin, each with other low
# mantissa bytes (nothing dedups), in one 96 MiB file written at once
python3 - "$WORK/w.bin" "$WORK/big.bin" <<'EOF'
import random, sys
w = open(sys.argv[1], "rb").read()
rng = random.Random(3)
with open(sys.argv[2], "wb") as f:
    for k in range(12):
        b = bytearray(w)
        b[0::4] = rng.randbytes(len(w) // 4)
        f.write(b)
EOF
BIG=$(stat -c %s "$WORK/big.bin")
cp "$WORK/big.bin" "$MNT/big.bin"
sync -f "$MNT/big.bin"
stats_json "$WORK/s2.json" "$STORE"
wait_stats "$WORK/s3.json" 300 's["pending_bytes"] == 0' ||
	fail "lazy=auto: still pending after 90 s: $(cat "$WORK/s3.json")"
python3 - "$WORK/s2.json" "$WORK/s3.json" "$BIG" <<'PY' || fail "lazy=auto: $(cat "$WORK/s2.json")"
import json, sys
a, b, big = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
print("it_lazy: lazy=auto left %d of %d bytes at fast" % (a["pending_bytes"], big), file=sys.stderr)
assert a["pending_bytes"] > 0, "nothing coded lazily"
assert b["stored_bytes"] < a["stored_bytes"], (a["stored_bytes"], b["stored_bytes"])
PY
check_cmp "$WORK/big.bin" "$MNT/big.bin"
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.txt" 2>&1 || fail "fsck: $(cat "$WORK/fsck.txt")"
# A series under lazy=all: the second version's chunks, cut for the
# first's, are coded at fast alone too (nothing series-coded yet); the
# references they were cut for are kept in the index as hints, so they
# survive the remount below; once idle, rebase recompresses them and makes
# the first version a reverse delta against the second, as it would have
# without lazy coding: the newest whole, the older series-coded.
series_files "$WORK/s" 2 $((2 << 20)) 11
mixfs_mount fg lazy=all,rebase_idle=600000
mkdir "$MNT/run"
for v in 0 1; do
	cp "$WORK/s$v.safetensors" "$MNT/run/"
	sync -f "$MNT/run/s$v.safetensors"
done
stats_json "$WORK/s4.json" "$STORE"
python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); sys.exit(not (s["ref_chunks"] == 0 and s["pending_bytes"] > 0))' \
	"$WORK/s4.json" || fail "series under lazy=all, before rebase: $(cat "$WORK/s4.json")"
mixfs_umount
mixfs_mount fg lazy=all,rebase_idle=50
wait_stats "$WORK/s5.json" 300 's["pending_bytes"] == 0 and s["ref_fwd_chunks"] == 0' ||
	fail "series under lazy=all: still pending after 90 s: $(cat "$WORK/s5.json")"
stats_json "$WORK/old.json" "$MNT/run/s0.safetensors"
stats_json "$WORK/new.json" "$MNT/run/s1.safetensors"
python3 - "$WORK/old.json" "$WORK/new.json" "$WORK/s4.json" "$WORK/s5.json" <<'PY' ||
import json, sys
old, new, a, b = (json.load(open(p)) for p in sys.argv[1:])
assert old["ref_chunks"] >= old["chunks"] // 2, "the older version is not a reverse delta: %r" % old
assert new["ref_chunks"] == 0, "the newest version is not whole: %r" % new
assert b["stored_bytes"] < a["stored_bytes"], (a["stored_bytes"], b["stored_bytes"])
print("it_lazy: series stored %d -> %d bytes, %d of %d chunks of the older version series-coded"
      % (a["stored_bytes"], b["stored_bytes"], old["ref_chunks"], old["chunks"]), file=sys.stderr)
PY
	fail "series under lazy=all, after rebase: $(cat "$WORK/old.json")"
for v in 0 1; do
	check_cmp "$WORK/s$v.safetensors" "$MNT/run/s$v.safetensors"
done
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.txt" 2>&1 || fail "fsck: $(cat "$WORK/fsck.txt")"

log "ok: $(python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); print("stored", a["stored_bytes"], "->", b["stored_bytes"])' "$WORK/s0.json" "$WORK/s1.json")"
