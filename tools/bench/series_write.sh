#!/bin/bash
# series_write.sh - what writing the next checkpoint of a series costs the
# writer (a benchmark, not a test).
#
#   tools/bench/series_write.sh [-s MIB] BIN...
#
# Two versions of a bf16 safetensors checkpoint of about MIB MiB (default
# 256): version 1 tiles the corpus's bf16.bin (each tile with its lowest bit
# flipped at random so tiles do not dedup), version 2 moves 30% of its
# elements in their 2 lowest bits (a training step).  For each BIN (mixfs
# binaries, side by side in one run): fresh store, mount with the defaults,
# write version 1 into a directory (dd bs=1M conv=fsync), wait until the
# daemon is idle (rebase and lazy recompression done), then time version 2
# written next to it, wait until idle again, unmount, and print the write
# MB/s, the CPU seconds of the idle work after it, the pack bytes on disk
# then (frames rebase replaced included: dead until gc) and the store's
# stored bytes after mixfs gc -t 0.  Inputs are cached in $BENCH_CACHE/series-write/.  Root (FUSE).
set -euo pipefail

SIZE=256
while getopts "s:h" o; do
	case $o in
	s) SIZE=$OPTARG ;;
	*) sed -n '2,18p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,18p' "$0" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
CACHE=${BENCH_CACHE:-$HOME/.cache/mixfs-bench}
IN=$CACHE/series-write/$SIZE
[ -r "$CACHE/bf16.bin" ] || { echo "no $CACHE/bf16.bin: run tools/bench/corpus.py $CACHE first" >&2; exit 1; }
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"

if [ ! -s "$IN/v2.safetensors" ]; then
	mkdir -p "$IN"
	"$PY" - "$CACHE/bf16.bin" "$IN" "$SIZE" <<'PYEOF'
import json, struct, sys
import numpy as np
src = np.fromfile(sys.argv[1], dtype="<u2")
out, mib = sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(1)
tiles = -(-mib * 2**20 // (2 * src.size))
base = np.concatenate([src if k == 0 else src ^ rng.integers(0, 2, src.size, dtype=np.uint16)
                       for k in range(tiles)])[: mib * 2**19]
def save(a, path):
    h = json.dumps({"w": {"dtype": "BF16", "shape": [a.size], "data_offsets": [0, 2 * a.size]}}).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + a.tobytes())
save(base, out + "/v1.safetensors")
m = rng.random(base.size) < 0.3
v2 = base.copy()
v2[m] ^= rng.integers(1, 4, int(m.sum()), dtype=np.uint16)
save(v2, out + "/v2.safetensors")
PYEOF
fi
bytes=$(stat -c %s "$IN/v2.safetensors")

bench_workdir serw
echo "command: $0 -s $SIZE $*"
echo "input: 2 versions of $bytes bytes; $(nproc) cpus; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| binary | version 2 write MB/s | idle work after it, CPU s | pack bytes before gc | stored bytes |"
echo "|---|---:|---:|---:|---:|"
for bin in "$@"; do
	rm -rf "${W:?}/store"
	"$bin" mkfs "$W/store" >/dev/null
	fuse_mount "$W/log" "$bin" mount -f "$W/store" "$MNT"
	mkdir "$MNT/run"
	cat "$IN"/v1.safetensors "$IN"/v2.safetensors >/dev/null
	dd if="$IN/v1.safetensors" of="$MNT/run/ckpt-1.safetensors" bs=1M conv=fsync status=none
	wait_quiet
	t0=$(now)
	dd if="$IN/v2.safetensors" of="$MNT/run/ckpt-2.safetensors" bs=1M conv=fsync status=none
	t1=$(now)
	c0=$(daemon_cpu)
	wait_quiet
	c1=$(daemon_cpu)
	cmp "$IN/v2.safetensors" "$MNT/run/ckpt-2.safetensors"
	fuse_umount
	written=$(du -sb "$W/store/packs" | cut -f1)
	"$bin" gc -t 0 "$W/store" >/dev/null
	stored=$(du -sb "$W/store/packs" | cut -f1)
	awk -v b="$bin" -v n="$bytes" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v s="$stored" \
		-v w="$written" 'BEGIN { printf "| %s | %.1f | %.2f | %d | %d |\n", b, n / (t1 - t0) / 1e6, c1 - c0, w, s }'
done
