#!/bin/bash
# long_series.sh - the daemon's memory over a long checkpoint series (a
# benchmark, not a test): does RSS stay bounded while a training run keeps
# saving checkpoints and deleting old ones?
#
#   tools/bench/long_series.sh [-n VERSIONS] [-s MIB] [-k KEEP] [-o OPTS] BIN
#
# A bf16 safetensors checkpoint of about MIB MiB (default 128: the corpus's
# bf16.bin tiled, each tile with its lowest bit flipped at random so tiles
# do not dedup); each next version moves 30% of the elements in their 2
# lowest bits (a training step).  VERSIONS (default 40) versions are written
# into one directory of a fresh mount of BIN (mount options OPTS), each with
# torch-style write + fsync, and only the newest KEEP (default 3) are kept
# (the older ones deleted, as a trainer's save_total_limit does).  After
# every version the daemon's VmRSS, RssAnon and VmHWM and the pack bytes on
# disk are printed; at the end, once the daemon is idle and again one gc
# interval (65 s) later, and the
# surviving versions are compared with their SHA-256 taken while writing.
# Inputs are generated on the fly (numpy); the base is cached in
# $BENCH_CACHE/long-series/.  Root (FUSE).
set -euo pipefail

N=40 SIZE=128 KEEP=3 OPTS=
while getopts "n:s:k:o:h" o; do
	case $o in
	n) N=$OPTARG ;;
	s) SIZE=$OPTARG ;;
	k) KEEP=$OPTARG ;;
	o) OPTS=$OPTARG ;;
	*) sed -n '2,20p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
BIN=$1

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
CACHE=${BENCH_CACHE:-$HOME/.cache/mixfs-bench}
[ -r "$CACHE/bf16.bin" ] || { echo "no $CACHE/bf16.bin: run tools/bench/corpus.py $CACHE first" >&2; exit 1; }
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"

bench_workdir longser

# status KEY: a field of /proc/PID/status in MiB
status_mib() { awk -v k="$1:" '$1 == k { printf "%.0f", $2 / 1024 }' /proc/"$PID"/status; }
row() {
	printf "| %s | %s | %s | %s | %.1f | %.1f |\n" "$1" "$(status_mib VmRSS)" "$(status_mib RssAnon)" \
		"$(status_mib VmHWM)" "$(du -sb "$W/store/packs" | awk '{ print $1 / 1048576 }')" "$(daemon_cpu)"
}

echo "command: $0 -n $N -s $SIZE -k $KEEP ${OPTS:+-o $OPTS} $BIN"
echo "$(nproc) cpus; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$BIN" mkfs "$W/store" >/dev/null
fuse_mount "$W/log" "$BIN" mount -f ${OPTS:+-o "$OPTS"} "$W/store" "$MNT"
mkdir "$MNT/run"
echo "| after | VmRSS MiB | RssAnon MiB | VmHWM MiB | packs MiB | daemon CPU s |"
echo "|---|---:|---:|---:|---:|---:|"
row "mount"
# the writer: one python process per version (its memory is not the
# daemon's); the state (the newest version) lives in $W/state.npy
for v in $(seq 1 "$N"); do
	"$PY" - "$CACHE/bf16.bin" "$W/state.npy" "$MNT/run/ckpt-$(printf %05d "$v").safetensors" \
		"$SIZE" "$v" >>"$W/sha" <<'PYEOF'
import hashlib, json, os, struct, sys
import numpy as np
src_path, state, out, mib, v = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(v)
if v == 1:
    src = np.fromfile(src_path, dtype="<u2")
    tiles = -(-mib * 2**20 // (2 * src.size))
    a = np.concatenate([src if k == 0 else src ^ rng.integers(0, 2, src.size, dtype=np.uint16)
                        for k in range(tiles)])[: mib * 2**19]
else:
    a = np.load(state)
    m = rng.random(a.size) < 0.3
    a[m] ^= rng.integers(1, 4, int(m.sum()), dtype=np.uint16)
np.save(state, a)
h = json.dumps({"w": {"dtype": "BF16", "shape": [a.size], "data_offsets": [0, 2 * a.size]}}).encode()
h += b" " * (-len(h) % 8)
blob = struct.pack("<Q", len(h)) + h + a.tobytes()
with open(out, "wb") as f:
    f.write(blob)
    f.flush()
    os.fsync(f.fileno())
print(hashlib.sha256(blob).hexdigest(), os.path.basename(out))
PYEOF
	old=$((v - KEEP))
	[ "$old" -lt 1 ] || rm -f "$MNT/run/ckpt-$(printf %05d "$old").safetensors"
	row "version $v"
done
wait_quiet
row "idle"
sleep 65 # one online gc interval (gc_interval=60 by default)
row "idle + 65 s"
(cd "$MNT/run" && tail -n "$KEEP" "$W/sha" | sha256sum -c --quiet) || { echo "surviving versions differ" >&2; exit 1; }
echo
echo "the newest $KEEP versions read back equal (SHA-256)"
fuse_umount
