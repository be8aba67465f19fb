#!/bin/bash
# bytes_bench.sh - what mixfs makes of the non-tensor files around a model
# and a training set (a benchmark, not a test): source text, a tokenizer
# JSON, uint16 and uint32 token ids (tools/bench/text_pack.py), at level
# mix with the default byte models (bytes=light) and with bytes=cm, next
# to zstd, xz and zpaq on the same files in the same run.
#
#   MIXFS=build/tools/mixfs CODEC_BENCH=build/tools/bench/codec_bench \
#       tools/bench/bytes_bench.sh
#
# mixfs rows: codec_bench on content-defined chunks of 64 KiB (the
# store's) and of 512 KiB on average (bytes_chunk's default, what the
# write path cuts such files into) (ratio; MB/s = CPU time of one
# thread), and "store" with bytes_chunk=0 and 512K: the file copied
# into a fresh mount (lazy=off), its stored bytes from `mixfs stats
# --files`, read back and compared after a remount.  Peers: the whole file
# and each 64 KiB piece on its own (what a chunk store can use), one
# thread, MB/s from wall time.  Root (FUSE); Debian's python3-numpy, zstd,
# xz-utils, zpaq (rows skipped without it).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
MIXFS=${MIXFS:-build/tools/mixfs}
CODEC_BENCH=${CODEC_BENCH:-build/tools/bench/codec_bench}
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"

bench_workdir bytes
mkdir "$W/in" "$W/sp"
"$PY" "$HERE/text_pack.py" "$W/in" >/dev/null
FILES="source.txt tokenizer.json tokens.u16 tokens.u32"

echo "command: $0"
echo "$(nproc) cpus; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| file | size | tool | ratio | enc MB/s | dec MB/s |"
echo "|---|---:|---|---:|---:|---:|"
row() { awk -v f="$1" -v r="$2" -v t="$3" -v s="$4" -v e="$5" -v d="$6" 'BEGIN {
	printf "| %s | %d | %s | %.4f | %s | %s |\n", f, r, t, s / r, e, d }'; }
mbs() { awk -v r="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", r / (b - a) / 1e6 }'; }
# peer NAME CMD DECMD FILE RAW: whole file, then per 64 KiB piece
peer() {
	local name=$1 c=$2 d=$3 f=$4 raw=$5 t0 t1 t2 n p tot=0
	t0=$(now)
	$c <"$f" >"$W/z"
	t1=$(now)
	$d <"$W/z" >/dev/null
	t2=$(now)
	n=$(stat -c %s "$W/z")
	row "${f##*/}" "$raw" "$name" "$n" "$(mbs "$raw" "$t0" "$t1")" "$(mbs "$raw" "$t1" "$t2")"
	for p in "$W/sp"/x*; do tot=$((tot + $($c <"$p" | wc -c))); done
	row "${f##*/}" "$raw" "$name, per 64 KiB" "$tot" - -
}
for f in $FILES; do
	raw=$(stat -c %s "$W/in/$f")
	rm -f "$W/sp"/x*
	split -b 65536 "$W/in/$f" "$W/sp/x"
	for c in 0 524288; do
		# 0: the store's chunks (16-256 KiB); 524288: bytes_chunk's default
		opt=() && [ $c = 0 ] || opt=(-c $c)
		"$CODEC_BENCH" "${opt[@]}" -l mix,mixcm "$W/in/$f" | while IFS=$'\t' read -r _ coder _ r _ s _ e d _; do
			row "$f" "$r" "$coder, $([ $c = 0 ] && echo "64" || echo $((c >> 10))) KiB chunks" "$s" "$e" "$d"
		done
	done
	peer "zstd -3" "zstd -q -T1 -3 -c" "zstd -q -d -c" "$W/in/$f" "$raw"
	peer "zstd -19" "zstd -q -T1 -19 -c" "zstd -q -d -c" "$W/in/$f" "$raw"
	peer "xz -9" "xz -q -T1 -9 -c" "xz -q -d -c" "$W/in/$f" "$raw"
	if command -v zpaq >/dev/null; then
		for m in 4 5; do
			rm -rf "$W/zp" "$W/a.zpaq"
			mkdir "$W/zp"
			t0=$(now)
			(cd "$W/in" && zpaq a "$W/a.zpaq" "$f" -m$m -t1 >/dev/null 2>&1)
			t1=$(now)
			(cd "$W/zp" && zpaq x "$W/a.zpaq" -t1 >/dev/null 2>&1)
			t2=$(now)
			cmp -s "$W/in/$f" "$W/zp/$f" || { echo "zpaq -m$m: $f differs" >&2; exit 1; }
			row "$f" "$raw" "zpaq -m$m" "$(stat -c %s "$W/a.zpaq")" \
				"$(mbs "$raw" "$t0" "$t1")" "$(mbs "$raw" "$t1" "$t2")"
		done
	fi
done
for mode in light cm; do
for bc in 0 512K; do
	rm -rf "$W/store"
	"$MIXFS" mkfs "$W/store" >/dev/null
	fuse_mount "$W/log" "$MIXFS" mount -f -o "lazy=off,bytes=$mode,bytes_chunk=$bc" "$W/store" "$MNT"
	for f in $FILES; do cp "$W/in/$f" "$MNT/$f"; done
	fuse_umount
	fuse_mount "$W/log" "$MIXFS" mount -f "$W/store" "$MNT"
	"$MIXFS" stats --json --files "$MNT" >"$W/s.json"
	for f in $FILES; do
		cmp "$W/in/$f" "$MNT/$f" || { echo "store bytes=$mode: $f differs" >&2; exit 1; }
		s=$("$PY" -c 'import json, sys
for r in json.load(open(sys.argv[1]))["files"]:
    if r["path"].rsplit("/", 1)[-1] == sys.argv[2]:
        print(r["stored_bytes"])' "$W/s.json" "$f")
		row "$f" "$(stat -c %s "$W/in/$f")" "mixfs store, bytes=$mode, bytes_chunk=$bc" "$s" - -
	done
	fuse_umount
done
done
