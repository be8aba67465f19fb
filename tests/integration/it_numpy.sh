#!/bin/bash
# NumPy files get hints from their headers: np.save's .npy (one array) and
# np.savez's .npz (a zip of .npy entries, written by Python's zipfile, which
# seeks back to write each entry's sizes after its data) are coded with the
# arrays' dtype (the dtype stats say fp16 / fp32), and a fine-tune saved as
# an .npz in an unrelated directory under another name, whose arrays all
# moved (a longer array before them), is coded against its base array by
# array: the index's tensors table finds the base, the entry names line
# the arrays up.  A sharded .npy series finds each shard's previous
# version by name and bytes (as raw arrays do: every shard has the same
# header).  Every file reads back byte for byte; fsck is clean.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "NumPy hints"
PY=/usr/bin/python3
$PY -c "import numpy" 2>/dev/null || skip "python3-numpy missing"
mixfs_mkfs
mixfs_mount

mkdir -p "$MNT/base/run0" "$MNT/finetunes/x"
# 8 arrays of 256 x 1024 float16 (4 MiB) and a 512 x 512 float32 one (1 MiB)
$PY - "$WORK" "$MNT" <<'PY' || fail "numpy could not write to the mount"
import os, subprocess, sys
import numpy as np
work, mnt = sys.argv[1:3]
rng = np.random.default_rng(3)
arrays = {"meta": np.arange(3, dtype=np.int64)}
for k in range(8):
    arrays["layer%d.weight" % k] = (rng.standard_normal((256, 1024)) * 0.02).astype(np.float16)
np.savez(os.path.join(work, "base.npz"), **arrays)
np.savez(os.path.join(mnt, "base/run0/params.npz"), **arrays)
# the fine-tune: a third of the values moved a little, a longer meta array
# first (every array's offset in the file moves by 16 bytes)
arrays["meta"] = np.arange(5, dtype=np.int64)
for k in range(8):
    w = arrays["layer%d.weight" % k].astype(np.float32)
    m = rng.random(w.shape) < 0.33
    w[m] *= 1 + 0.01 * rng.standard_normal(int(m.sum()))
    arrays["layer%d.weight" % k] = w.astype(np.float16)
subprocess.run(["sync", "-f", mnt], check=True)  # the base committed first
np.savez(os.path.join(work, "ft.npz"), **arrays)
np.savez(os.path.join(mnt, "finetunes/x/ft-step100.npz"), **arrays)
emb = rng.standard_normal((512, 512)).astype(np.float32)
np.save(os.path.join(work, "emb.npy"), emb)
np.save(os.path.join(mnt, "emb.npy"), emb)
# a sharded .npy series in one directory: two shards of the same shape
# (the same header) per step; the next step moves a tenth of the values
os.mkdir(os.path.join(mnt, "shards"))
sh = [rng.standard_normal((512, 512)).astype(np.float32) for _ in range(2)]
for step in (100, 200):
    for k in range(2):
        np.save(os.path.join(work, "shard%d-%d.npy" % (k, step)), sh[k])
        np.save(os.path.join(mnt, "shards/shard%d-%d.npy" % (k, step)), sh[k])
        m = rng.random(sh[k].shape) < 0.1
        sh[k][m] *= np.float32(1.001)
    subprocess.run(["sync", "-f", mnt], check=True)
PY
sync -f "$MNT"
check_cmp "$WORK/base.npz" "$MNT/base/run0/params.npz"
check_cmp "$WORK/ft.npz" "$MNT/finetunes/x/ft-step100.npz"
check_cmp "$WORK/emb.npy" "$MNT/emb.npy"
for k in 0 1; do
	for step in 100 200; do
		check_cmp "$WORK/shard$k-$step.npy" "$MNT/shards/shard$k-$step.npy"
	done
	stats_json "$WORK/shard$k.json" "$MNT/shards/shard$k-200.npy"
done
stats_json "$WORK/all.json" "$STORE"
stats_json "$WORK/ft.json" "$MNT/finetunes"
$PY - "$WORK/all.json" "$WORK/ft.json" "$WORK/shard0.json" "$WORK/shard1.json" <<'PY' || fail "NumPy hints or series coding missing"
import json, sys
a, f = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
# each shard of step 200 is coded against the same shard of step 100 (not
# against the other shard of its own step, whose header is the same)
for p in sys.argv[3:5]:
    s = json.load(open(p))
    print("it_numpy: %s: %d of %d chunks against a reference, %d -> %d bytes"
          % (p, s["ref_chunks"], s["chunks"], s["ref_raw_bytes"], s["ref_stored_bytes"]),
          file=sys.stderr)
    assert s["ref_chunks"] >= s["chunks"] // 2, s
    assert s["ref_stored_bytes"] < 0.5 * s["ref_raw_bytes"], s
fp16, fp32 = a["by_dtype"]["fp16"]["unique_bytes"], a["by_dtype"]["fp32"]["unique_bytes"]
arrays16 = 2 * 8 * 256 * 1024 * 2
print("it_numpy: %d of %d float16 bytes coded as fp16, %d of %d float32 bytes as fp32; "
      "fine-tune: %d of %d chunks against the base, %d -> %d bytes"
      % (fp16, arrays16, fp32, 5 * 512 * 512 * 4, f["ref_chunks"], f["chunks"],
         f["ref_raw_bytes"], f["ref_stored_bytes"]), file=sys.stderr)
assert fp16 >= arrays16 * 0.95, fp16
assert fp32 >= 5 * 512 * 512 * 4 * 0.95, fp32
assert f["ref_chunks"] >= f["chunks"] // 2, f
assert f["ref_stored_bytes"] < 0.6 * f["ref_raw_bytes"], f
PY
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.txt" 2>&1 || fail "fsck: $(cat "$WORK/fsck.txt")"
log PASS
