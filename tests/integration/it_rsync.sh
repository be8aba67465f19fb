#!/bin/bash
# rsync -a a tree in and out, diff -r; a second rsync transfers nothing.
. "$(dirname "$0")/lib.sh"
it_start
command -v rsync >/dev/null || skip "rsync missing"

SRC=$WORK/src
mkdir -p "$SRC/ckpt/step1" "$SRC/ckpt/step2" "$SRC/misc"
float_file "$SRC/ckpt/step1/model.bin" 2 5
float_file "$SRC/ckpt/step2/model.bin" 2 6
rand_file "$SRC/misc/r" 1 8
ln -s step2 "$SRC/ckpt/latest"
for i in $(seq 1 50); do printf '%d\n' "$i" >"$SRC/misc/f$i"; done

rsync -a "$SRC/" "$MNT/tree/"
diff -r --no-dereference "$SRC" "$MNT/tree" || fail "diff -r after rsync in"

n=$(rsync -a --itemize-changes "$SRC/" "$MNT/tree/" | wc -l)
check_eq "items changed by a second rsync in" 0 "$n"

rsync -a "$MNT/tree/" "$WORK/out/"
diff -r --no-dereference "$SRC" "$WORK/out" || fail "diff -r after rsync out"
n=$(rsync -a --itemize-changes "$MNT/tree/" "$WORK/out/" | wc -l)
check_eq "items changed by a second rsync out" 0 "$n"

# Delta transfer over an existing file (rsync writes a temp file and renames).
# -I: rsync's quick check compares whole seconds, and the dd above may land
# in the same second as the first copy; the transfer must happen anyway.
dd if=/dev/urandom of="$SRC/ckpt/step1/model.bin" bs=4096 seek=100 count=3 conv=notrunc status=none
rsync -a -I --no-whole-file "$SRC/" "$MNT/tree/"
check_cmp "$SRC/ckpt/step1/model.bin" "$MNT/tree/ckpt/step1/model.bin"
# In-place delta as well.
dd if=/dev/urandom of="$SRC/ckpt/step2/model.bin" bs=1000 seek=7 count=2 conv=notrunc status=none
rsync -a -I --inplace --no-whole-file "$SRC/" "$MNT/tree/"
diff -r --no-dereference "$SRC" "$MNT/tree" || fail "diff -r after delta rsync"
rsync -a --checksum --delete "$SRC/" "$MNT/tree/"
n=$(rsync -a --checksum --itemize-changes "$SRC/" "$MNT/tree/" | wc -l)
check_eq "items changed by rsync --checksum" 0 "$n"

# Checkpoints copied in by rsync (a temp name, .model.safetensors.XXXXXX,
# renamed at the end: no directory rule finds the previous checkpoint by
# name) are still series-coded: the index's tensors table finds it.
python3 - "$WORK/hf" <<'PY'
import array, json, os, random, struct, sys
rng, n = random.Random(3), 1 << 20
w = array.array("f", (rng.gauss(0.0, 0.02) for _ in range(n)))
h = json.dumps({"w": {"dtype": "BF16", "shape": [n // 1024, 1024], "data_offsets": [0, 2 * n]}}).encode()
h += b" " * (-len(h) % 8)
for step in (500, 1000):
    d = os.path.join(sys.argv[1], "checkpoint-%d" % step)
    os.makedirs(d)
    b, out = w.tobytes(), bytearray(2 * n)
    out[0::2], out[1::2] = b[2::4], b[3::4]
    open(os.path.join(d, "model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + out)
    for i in range(0, n, 3):
        w[i] *= 1.0 + rng.gauss(0.0, 0.004)
PY
mkdir "$MNT/hf"
rsync -a "$WORK/hf/checkpoint-500" "$MNT/hf/"
sync -f "$MNT"
rsync -a "$WORK/hf/checkpoint-1000" "$MNT/hf/"
sync -f "$MNT"
diff -r "$WORK/hf" "$MNT/hf" || fail "diff -r of the rsynced checkpoints"
stats_json "$WORK/hf.json" "$MNT/hf/checkpoint-1000"
python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); sys.exit(not s["ref_chunks"] >= s["chunks"] // 2)' \
	"$WORK/hf.json" || fail "rsynced checkpoint-1000 not coded against checkpoint-500: $(cat "$WORK/hf.json")"
log PASS
