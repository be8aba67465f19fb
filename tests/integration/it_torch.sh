#!/bin/bash
# A torch.save checkpoint larger than the first batch (16 MiB) keeps its
# tensor hints to the end: two 30 MiB checkpoints with the same 20 tensors
# whose zip entry names differ (archive "aaaa" and "bbbb", as torch.save
# names them after the file), in different directories (no series
# reference), share every tensor byte, because chunks are cut at every
# tensor's start and end (tests/integration/torchzip.py writes them;
# torch.load reads them).  Without the hints past the head, the chunk
# around each later tensor's start holds its entry header and does not
# dedup.
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
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.txt" 2>&1 || fail "fsck: $(cat "$WORK/fsck.txt")"
log PASS
