#!/bin/bash
# GGUF (llama.cpp) files get hints from their tensor infos: BF16 tensors are
# coded as bf16 (the dtype stats say so) with their row length, and a
# fine-tune saved in an unrelated directory under another name and with
# another header (general.name is longer: every tensor moves by 32 bytes)
# is coded against its base tensor by tensor: the index's tensors table
# finds the base, the names line the tensors up
# (tests/integration/ggufgen.py writes the files).
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "GGUF hints"
command -v python3 >/dev/null || skip "python3 missing"
mixfs_mkfs
mixfs_mount

N=8 ROWS=256 COLS=1024
TENSORS=$((N * ROWS * COLS * 2))
python3 "$(dirname "$0")/ggufgen.py" "$WORK/base.gguf" $N $ROWS $COLS 5 tiny-base
python3 "$(dirname "$0")/ggufgen.py" "$WORK/ft.gguf" $N $ROWS $COLS 5 tiny-base-finetuned-v2 0.01
mkdir -p "$MNT/models/tiny" "$MNT/finetunes/run1"
cp "$WORK/base.gguf" "$MNT/models/tiny/tiny.gguf"
sync -f "$MNT"
cp "$WORK/ft.gguf" "$MNT/finetunes/run1/tiny-ft-v2.gguf"
sync -f "$MNT"
check_cmp "$WORK/base.gguf" "$MNT/models/tiny/tiny.gguf"
check_cmp "$WORK/ft.gguf" "$MNT/finetunes/run1/tiny-ft-v2.gguf"
stats_json "$WORK/all.json" "$STORE"
stats_json "$WORK/ft.json" "$MNT/finetunes"
python3 - "$WORK/all.json" "$WORK/ft.json" "$TENSORS" <<'PY' || fail "GGUF hints or series coding missing"
import json, sys
a, f, tensors = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
bf16 = a["by_dtype"]["bf16"]["unique_bytes"]
print("it_gguf: %d of %d tensor bytes coded as bf16; fine-tune: %d of %d chunks against the base, "
      "%d -> %d bytes" % (bf16, 2 * tensors, f["ref_chunks"], f["chunks"], f["ref_raw_bytes"],
                         f["ref_stored_bytes"]), file=sys.stderr)
assert bf16 >= 2 * tensors * 0.9, bf16
assert f["ref_chunks"] >= f["chunks"] // 2, f
assert f["ref_stored_bytes"] < 0.5 * f["ref_raw_bytes"], f
PY
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.txt" 2>&1 || fail "fsck: $(cat "$WORK/fsck.txt")"
log PASS
