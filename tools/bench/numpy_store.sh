#!/bin/bash
# numpy_store.sh - what a mount stores of the codec corpora saved by NumPy
# (a benchmark, not a test), for one or more mixfs binaries side by side.
#
#   tools/bench/numpy_store.sh [-c fp32,fp16,bf16] BIN [BIN...]
#
# Each corpus of tools/bench/corpus.py is saved with np.savez straight
# into a fresh mount of each BIN at level mix (np_pack.py: one .npy entry
# per tensor; Python's zipfile writes each entry's sizes after its data),
# the store is left idle until lazy coding's recompression is done, and
# the file's stored bytes (`mixfs stats --json`) are printed over the
# corpus bytes (zip and .npy headers excluded), with the chunks coded as
# each dtype, and the index's size (LMDB pages in use, `mdb_stat -e`).  After a remount the file must read back equal to the same
# corpus saved outside the mount.  For comparison, each BIN also stores
# the same tensors as one safetensors file (st_pack.py, copied in with
# cp).  Root (FUSE); Debian's python3-numpy.
set -euo pipefail

CORPORA=fp32,fp16,bf16
while getopts "c:h" o; do
	case $o in
	c) CORPORA=$OPTARG ;;
	*) sed -n '2,16p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,16p' "$0" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
CACHE=${BENCH_CACHE:-$HOME/.cache/mixfs-bench}
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"
need_corpus

bench_workdir npstore

echo "command: $0 -c $CORPORA $*"
echo "$(nproc) cpus; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| corpus | binary: file | raw | stored | ratio | chunks | index | (stored + index) / raw | coded as fp32 / fp16 / bf16 / other |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
# one_store BIN CORPUS FILE HOW: a fresh store, FILE written by HOW (np =
# np.savez into the mount, cp = a copy of $W/FILE), idle, remounted,
# compared with $W/FILE, its stats row printed
one_store() {
	local bin=$1 c=$2 f=$3 how=$4
	rm -rf "$W/store"
	"$bin" mkfs "$W/store" >/dev/null
	fuse_mount "$W/log" "$bin" mount -f -o level=mix "$W/store" "$MNT"
	case $how in
	np) "$PY" "$HERE/np_pack.py" "$CACHE" "$c" "$MNT/$f" ;;
	cp) cp "$W/$f" "$MNT/$f" ;;
	esac
	sync
	wait_quiet
	fuse_umount
	fuse_mount "$W/log" "$bin" mount -f -o level=mix "$W/store" "$MNT"
	cmp "$W/$f" "$MNT/$f" || { echo "$bin: $f reads back different bytes" >&2; exit 1; }
	"$bin" stats -j "$MNT/$f" >"$W/stats.json"
	fuse_umount
	# the index's pages in use (LMDB's high-water mark, free pages too)
	idx=$(mdb_stat -e "$W/store/index" | awk '/Number of pages used/ { print $5 * 4096 }')
	"$PY" - "$W/stats.json" "$c" "$bin: $f" "$(stat -c %s "$CACHE/$c.bin")" "$idx" <<'PY'
import json, sys
s, c, b, raw, idx = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
d = s["by_dtype"]
print("| %s | %s | %d | %d | %.4f | %d | %d | %.4f | %s |" % (
    c, b, raw, s["stored_bytes"], s["stored_bytes"] / raw, s["chunks"], idx,
    (s["stored_bytes"] + idx) / raw,
    " / ".join("%.1f%%" % (100.0 * d[k]["unique_bytes"] / max(1, s["unique_bytes"]))
               for k in ("fp32", "fp16", "bf16", "other"))))
PY
}

for c in ${CORPORA//,/ }; do
	"$PY" "$HERE/np_pack.py" "$CACHE" "$c" "$W/$c.npz"
	"$PY" "$HERE/st_pack.py" "$CACHE" "$c" "$W/$c.safetensors"
	for bin in "$@"; do
		one_store "$bin" "$c" "$c.npz" np
		one_store "$bin" "$c" "$c.safetensors" cp
	done
done
