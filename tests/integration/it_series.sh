#!/bin/bash
# Checkpoint series through a real mount, with the daemon's background work
# racing the readers: 8 versions of a bf16 safetensors file are written one
# after the other while every earlier version is read back in a loop; rebase
# (rebase_idle=50) turns the forward deltas around between the writes and
# the online gc (gc_interval=1, 16 MiB packs) collects what rebase replaced,
# also in this mount's sealed packs.  Every read of every version must equal
# its source (a read on a snapshot whose frame moved is retried, never EIO);
# at the end the newest version is stored whole, the older ones as reverse
# deltas, "saved by series coding" is known exactly, fsck is clean, and a
# remount reads everything back.  Then a series with one checkpoint per
# directory (checkpoint-0/model.safetensors, checkpoint-1/...) is coded
# against the sibling directory's file.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "series coding, rebase and stats"
mixfs_mkfs
mixfs_mount fg level=mix,rebase_idle=50,gc_interval=1,pack_size=16M

V=8
# version K: 6 Mi bf16 weights (12 MiB: rebase rewrites fill several 16 MiB
# packs)
series_files "$WORK/v" "$V" $((6 << 20)) 7

mkdir "$MNT/ckpt"
# reader K: read versions 0..K-1 through the mount until told to stop
reader() {
	local k=$1 stop=$2 i
	while [ ! -e "$stop" ]; do
		for i in $(seq 0 $((k - 1))); do
			cmp -s "$WORK/v$i.safetensors" "$MNT/ckpt/v$i.safetensors" ||
				{ echo "version $i read back different or failed" >"$WORK/reader.err"; return 1; }
		done
	done
}
for v in $(seq 0 $((V - 1))); do
	stop=$WORK/stop.$v
	if [ "$v" -gt 0 ]; then
		reader "$v" "$stop" &
		rpid=$!
	fi
	cp "$WORK/v$v.safetensors" "$MNT/ckpt/"
	sync -f "$MNT"
	sleep 0.3 # rebase and the readers overlap
	if [ "$v" -gt 0 ]; then
		touch "$stop"
		wait "$rpid" || fail "reader during version $v: $(cat "$WORK/reader.err")"
	fi
done

# rebase done: no forward delta left (the newest is whole)
wait_stats "$WORK/s.json" 100 's["ref_fwd_chunks"] == 0' ||
	fail "rebase left forward deltas: $(cat "$WORK/s.json")"
# The frames rebase replaced are dead bytes; the online gc frees those in
# this mount's sealed packs (all but the one being appended to, 16 MiB):
# without it the packs would hold ~5x what is live.
wait_stats "$WORK/s.json" 50 \
	's["packs"]["live_bytes"] + s["packs"]["dead_bytes"] <= s["stored_bytes"] + (32 << 20)' ||
	fail "online gc left the dead bytes of sealed packs: $(cat "$WORK/s.json")"
stats_json "$WORK/new.json" "$MNT/ckpt/v$((V - 1)).safetensors"
stats_json "$WORK/old.json" "$MNT/ckpt/v0.safetensors"
python3 - "$WORK/s.json" "$WORK/new.json" "$WORK/old.json" <<'EOF' || fail "series counters"
import json, sys
s, new, old = (json.load(open(p)) for p in sys.argv[1:4])
assert s["ref_fwd_chunks"] == 0, "rebase left forward deltas: %r" % s
assert new["ref_chunks"] == 0, "the newest version is not stored whole: %r" % new
assert old["ref_chunks"] > 0, "the oldest version is not a reverse delta: %r" % old
assert s["ref_saved_bytes"] > s["ref_stored_bytes"], "series coding saved too little: %r" % s
# 8 versions cost much less than 8 alone (bf16 alone is ~0.66 of raw)
assert s["stored_bytes"] < 0.5 * s["logical_bytes"], s
EOF
for v in $(seq 0 $((V - 1))); do
	check_cmp "$WORK/v$v.safetensors" "$MNT/ckpt/v$v.safetensors"
done
log "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("logical %d stored %d saved by series coding %d packs %s" % (s["logical_bytes"], s["stored_bytes"], s["ref_saved_bytes"], s["packs"]))' "$WORK/s.json")"
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.txt" 2>&1 || fail "fsck: $(cat "$WORK/fsck.txt")"
mixfs_mount fg
for v in $(seq 0 $((V - 1))); do
	check_cmp "$WORK/v$v.safetensors" "$MNT/ckpt/v$v.safetensors"
done

# One checkpoint per directory (Hugging Face Trainer style): the second
# model.safetensors finds the first in the sibling directory and is coded
# against it (new weights here, so nothing dedups against the ones above).
# Then a fine-tune in an unrelated directory, found through the index.
series_files "$WORK/hf" 2 $((1 << 20)) 8
for v in 0 1; do
	mkdir -p "$MNT/hf/checkpoint-$v"
	cp "$WORK/hf$v.safetensors" "$MNT/hf/checkpoint-$v/model.safetensors"
	sync -f "$MNT"
done
stats_json "$WORK/hf.json" "$MNT/hf"
python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); sys.exit(not s["ref_chunks"] >= s["chunks"] // 3)' \
	"$WORK/hf.json" || fail "checkpoint-1 not coded against checkpoint-0: $(cat "$WORK/hf.json")"
for v in 0 1; do
	check_cmp "$WORK/hf$v.safetensors" "$MNT/hf/checkpoint-$v/model.safetensors"
done

# A fine-tune saved elsewhere under another name (no directory rule finds
# the base): the index's tensors table does.
series_files "$WORK/ft" 2 $((1 << 20)) 9
mkdir -p "$MNT/models/base" "$MNT/runs/exp7"
cp "$WORK/ft0.safetensors" "$MNT/models/base/model.safetensors"
sync -f "$MNT"
cp "$WORK/ft1.safetensors" "$MNT/runs/exp7/final.safetensors"
sync -f "$MNT"
stats_json "$WORK/ft.json" "$MNT/runs"
python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); sys.exit(not s["ref_chunks"] >= s["chunks"] // 3)' \
	"$WORK/ft.json" || fail "runs/exp7/final not coded against models/base/model: $(cat "$WORK/ft.json")"
check_cmp "$WORK/ft0.safetensors" "$MNT/models/base/model.safetensors"
check_cmp "$WORK/ft1.safetensors" "$MNT/runs/exp7/final.safetensors"
log PASS
