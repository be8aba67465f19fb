#!/bin/bash
# quant_store.sh - what a mount stores of quantized weights and token ids
# (a benchmark, not a test), for one or more mixfs binaries side by side,
# next to zstd and xz on the same files.
#
#   tools/bench/quant_store.sh [-l mix,fast] BIN [BIN...]
#
# tools/bench/quant_pack.py makes, from the fp32 corpus of
# tools/bench/corpus.py, an fp8 e4m3 safetensors file (128 x 128 tiles
# scaled to 448), an int8 one (a scale per column), ~10.5 MB each, and
# GGUF files of Q8_0, Q4_0, Q4_1 and Q5_0 blocks (5.9-11.1 MB; q8_0.bin,
# the Q8_0 blocks alone, is left out), of the K-quants Q2_K .. Q6_K
# (3.5-8.6 MB), a Q4_K_M-like mix of Q4_K and Q6_K tensors (6.4 MB),
# IQ4_XS (5.6 MB) and MXFP4 blocks (5.6 MB, as gpt-oss stores its experts);
# tok_pack.py a uint16 token
# stream (nanoGPT's train.bin layout, 4.7 MB).  Each file is copied into a
# fresh store of its own for each BIN at each level (-l), left idle until
# lazy coding's recompression is done, remounted, compared, and the file's
# stored bytes (`mixfs stats --json`) printed over its size.  Root (FUSE);
# Debian's python3-numpy, zstd and xz-utils.
set -euo pipefail

LEVELS=mix
while getopts "l:h" o; do
	case $o in
	l) LEVELS=$OPTARG ;;
	*) sed -n '2,20p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,20p' "$0" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
CACHE=${BENCH_CACHE:-$HOME/.cache/mixfs-bench}
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"
need_corpus

bench_workdir quant
mkdir "$W/in"
"$PY" "$HERE/quant_pack.py" "$CACHE" "$W/in"
"$PY" "$HERE/tok_pack.py" "$W/in/tokens.u16"
FILES="fp8.safetensors int8.safetensors q8_0.gguf q4_0.gguf q4_1.gguf q5_0.gguf q2_k.gguf q3_k.gguf q4_k.gguf q5_k.gguf q6_k.gguf q4_k_m.gguf iq4_xs.gguf mxfp4.gguf tokens.u16"

echo "command: $0 -l $LEVELS $*"
echo "$(nproc) cpus; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| file | tool | size | stored | ratio |"
echo "|---|---|---:|---:|---:|"
row() { awk -v f="$1" -v t="$2" -v r="$3" -v s="$4" 'BEGIN { printf "| %s | %s | %d | %d | %.4f |\n", f, t, r, s, s / r }'; }
for f in $FILES; do
	raw=$(stat -c %s "$W/in/$f")
	row "$f" "zstd -3" "$raw" "$(zstd -q -T1 -3 -c "$W/in/$f" | wc -c)"
	row "$f" "zstd -19" "$raw" "$(zstd -q -T1 -19 -c "$W/in/$f" | wc -c)"
	row "$f" "xz -9" "$raw" "$(xz -q -T1 -9 -c "$W/in/$f" | wc -c)"
done
for bin in "$@"; do
	for lvl in ${LEVELS//,/ }; do
		for f in $FILES; do
			# a store per file: q4_k_m.gguf holds q4_k.gguf's and
			# q6_k.gguf's tensors, which one store would dedup
			rm -rf "$W/store"
			"$bin" mkfs "$W/store" >/dev/null
			fuse_mount "$W/log" "$bin" mount -f -o "level=$lvl" "$W/store" "$MNT"
			cp "$W/in/$f" "$MNT/$f"
			sync
			wait_quiet
			fuse_umount
			fuse_mount "$W/log" "$bin" mount -f -o "level=$lvl" "$W/store" "$MNT"
			cmp -s "$W/in/$f" "$MNT/$f" || { echo "$bin: $f reads back different bytes" >&2; exit 1; }
			"$bin" stats -j "$MNT/$f" >"$W/stats.json"
			row "$f" "mixfs $lvl: $bin" "$(stat -c %s "$W/in/$f")" "$(json_get "$W/stats.json" stored_bytes)"
			fuse_umount
		done
	done
done
