#!/bin/bash
# A torch.save checkpoint larger than the first batch (16 MiB) keeps its
# tensor hints to the end: two 30 MiB checkpoints with the same 20 tensors
# whose zip entry names differ (archive "aaaa" and "bbbb", as torch.save
# names them after the file), in different directories (no series
# reference), share every tensor byte, because chunks are cut at every
# tensor's start and end (tests/integration/torchzip.py writes them;
# torch.load reads them).  Without the hints past the head, the chunk
# around each later tensor's start holds its entry header and does not
# dedup.  Then a series of two checkpoints whose pickles differ.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "torch.save hints"
command -v python3 >/dev/null || skip "python3 missing"
mixfs_mkfs
mixfs_mount

N=20 ROWS=384 COLS=1024
TENSORS=$((N * ROWS * COLS * 4))
python3 "$(dirname "$0")/torchzip.py" "$WORK/a.pt" aaaa $N $ROWS $COLS 5
python3 "$(dirname "$0")/torchzip.py" "$WORK/b.pt" bbbb $N $ROWS $COLS 5
mkdir "$MNT/d1" "$MNT/d2"
cp "$WORK/a.pt" "$MNT/d1/a.pt"
sync -f "$MNT"
cp "$WORK/b.pt" "$MNT/d2/b.pt"
sync -f "$MNT"
check_cmp "$WORK/a.pt" "$MNT/d1/a.pt"
check_cmp "$WORK/b.pt" "$MNT/d2/b.pt"
stats_json "$WORK/s.json" "$STORE"
python3 - "$WORK/s.json" "$TENSORS" <<'PY' || fail "tensor bytes not shared: $(cat "$WORK/s.json")"
import json, sys
s, tensors = json.load(open(sys.argv[1])), int(sys.argv[2])
print("it_torch: dedup saved %d of %d tensor bytes" % (s["dedup_saved_bytes"], tensors), file=sys.stderr)
assert s["dedup_saved_bytes"] >= tensors - tensors // 500, s["dedup_saved_bytes"]
PY

# Two checkpoints of one training run whose pickles differ (step 255 then
# 70000, another lr) in one directory, the second saved under a longer name
# (torch.save names the entries after the file: every tensor moves, by
# a few hundred bytes here): the second is coded against the first tensor by
# tensor (references by name; its head differs, so no reference at all
# without them).  Their data.pkl holds a 100 KB configuration string: the
# first's head must be read past 64 KiB to find its tensors.
S=8 SR=256
python3 "$(dirname "$0")/torchzip.py" "$WORK/c1.pt" c1 $S $SR $COLS 9 255 0.001 0 100000
python3 "$(dirname "$0")/torchzip.py" "$WORK/c2.pt" checkpoint_step_0070000 $S $SR $COLS 9 70000 0.00095 0.001 100000
cmp -s -n 4096 "$WORK/c1.pt" "$WORK/c2.pt" && fail "the two checkpoints' heads are equal"
mkdir "$MNT/run"
stats_json "$WORK/s0.json" "$STORE"
cp "$WORK/c1.pt" "$MNT/run/c1.pt"
sync -f "$MNT"
cp "$WORK/c2.pt" "$MNT/run/c2.pt"
sync -f "$MNT"
check_cmp "$WORK/c1.pt" "$MNT/run/c1.pt"
check_cmp "$WORK/c2.pt" "$MNT/run/c2.pt"
stats_json "$WORK/s1.json" "$STORE"
python3 - "$WORK/s0.json" "$WORK/s1.json" $((S * SR * COLS * 4)) <<'PY' || fail "no series coding by tensor name"
import json, sys
a, b, tensors = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
refs = b["ref_chunks"] - a["ref_chunks"]
raw = b["ref_raw_bytes"] - a["ref_raw_bytes"]
stored = b["ref_stored_bytes"] - a["ref_stored_bytes"]
print("it_torch: second checkpoint: %d chunks (%d of %d tensor bytes) coded against the first, "
      "stored %d (alone: ~0.83 of raw)" % (refs, raw, tensors, stored), file=sys.stderr)
assert raw >= tensors // 2, raw
assert stored < raw * 0.65, stored
PY
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.txt" 2>&1 || fail "fsck: $(cat "$WORK/fsck.txt")"
log PASS
