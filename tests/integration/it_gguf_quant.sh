#!/bin/bash
# GGUF K-quants through the mount: a GGUF of Q4_K and Q6_K tensors (as
# llama.cpp's Q4_K_M mixes them; tests/integration/ggufquant.py) reads back
# equal after a remount, whole and by 4 KiB reads at odd offsets, and
# level mix stores it in at most 98.5% of what level fast stores (the
# blocks way: each super-block's scales under the previous block's, Q6_K's
# quants, split over two places, coded whole as values: 0.949 of fast;
# without the K layouts mix stores these tensors as fast does, 0.9999 of
# it on this file).  lazy=off: each chunk is coded once, by the mount that
# wrote it.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "GGUF K-quants"
command -v python3 >/dev/null || skip "python3 missing"

python3 "$(dirname "$0")/ggufquant.py" "$WORK/q.gguf" 4 1024 3

for lvl in fast mix; do
	rm -rf "$STORE"
	mixfs_mkfs
	mixfs_mount fg "lazy=off,level=$lvl"
	mkdir -p "$MNT/models"
	cp "$WORK/q.gguf" "$MNT/models/q4_k_m.gguf"
	sync
	mixfs_umount
	mixfs_mount fg "level=$lvl"
	check_cmp "$WORK/q.gguf" "$MNT/models/q4_k_m.gguf"
	size=$(stat -c %s "$WORK/q.gguf")
	for off in 1 4095 100001 262143 400000 $((size - 4096)); do
		a=$(dd if="$WORK/q.gguf" iflag=skip_bytes,count_bytes skip=$off count=4096 bs=4096 status=none | sha256sum)
		b=$(dd if="$MNT/models/q4_k_m.gguf" iflag=skip_bytes,count_bytes skip=$off count=4096 bs=4096 status=none | sha256sum)
		check_eq "$lvl: 4 KiB at $off" "$a" "$b"
	done
	eval "s_$lvl=$(stored_bytes q4_k_m.gguf)"
	mixfs_umount
	"$MIXFS" fsck "$STORE" >"$WORK/fsck.txt" 2>&1 || fail "fsck ($lvl): $(cat "$WORK/fsck.txt")"
done
log "stored: fast $s_fast, mix $s_mix of $size bytes"
[ $((s_mix * 1000)) -le $((s_fast * 985)) ] ||
	fail "level mix stored $s_mix bytes, level fast $s_fast: expected 1.5% less (the K-quants' blocks way)"
log PASS
