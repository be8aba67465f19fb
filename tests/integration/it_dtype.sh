#!/bin/bash
# A file's dominant dtype (user.mixfs.dtype, the dtype column of mixfs
# stats --files) is the element type of most of the bytes it maps: a copy
# of a bf16 file (every chunk deduplicated) is bf16 too, and a bf16 file
# whose last write is a small fp32 tail (the last batch holds little else)
# stays bf16.  Also after a remount.
. "$(dirname "$0")/lib.sh"
it_start
need_mixfs

# 17 MiB: the first batch is cut at 16 MiB, the tail follows at close.
python3 - "$MNT" <<'PYEOF'
import array, json, random, struct, sys
d = sys.argv[1]
rng = random.Random(3)
n = 17 * 1048576 // 2
w = array.array("f", (rng.gauss(0.0, 0.02) for _ in range(n))).tobytes()
bf = bytearray(2 * n)
bf[0::2] = w[2::4]
bf[1::2] = w[3::4]
h = json.dumps({"w": {"dtype": "BF16", "shape": [n // 1024, 1024],
                      "data_offsets": [0, 2 * n]}}).encode()
h += b" " * (-len(h) % 8)
with open(d + "/a.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + bf)
# bf16 weights, then 1 MiB of fp32 (a tail the last batch is mostly made of)
tail = array.array("f", (rng.gauss(0.0, 1.0) for _ in range(262144))).tobytes()
with open(d + "/b.bin", "wb") as f:
    f.write(bf)
    f.write(tail)
PYEOF
cp "$MNT/a.safetensors" "$MNT/copy.safetensors"
sync -f "$MNT"

check_dtypes() {
	local f
	for f in a.safetensors copy.safetensors b.bin; do
		check_eq "user.mixfs.dtype of $f ($1)" bf16 \
			"$(getfattr --only-values -n user.mixfs.dtype "$MNT/$f")"
	done
	stats_json "$WORK/s.json" --files "$MNT"
	python3 - "$WORK/s.json" "$1" <<'PYEOF' || fail "stats --files dtypes ($1)"
import json, sys
rows = {r["path"]: r["dtype"] for r in json.load(open(sys.argv[1]))["files"]}
bad = {p: t for p, t in rows.items() if t != "bf16"}
if bad or len(rows) != 3:
    sys.exit("%s: dtypes %s" % (sys.argv[2], rows))
PYEOF
}
check_dtypes mounted
mixfs_umount
mixfs_mount
check_dtypes "after remount"
log PASS
