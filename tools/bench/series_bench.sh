#!/bin/bash
# series_bench.sh - checkpoint series (issue 6): what a whole training run's
# checkpoints cost on a mixfs mount, next to per-file compressors and
# deduplicating backup tools on the very same files, in one run.
#
# A benchmark, not a test: run it by hand, as root (drop_caches), e.g.
#   tools/bench/series_bench.sh > series.md          # 10 checkpoints a series
#   MIXFS=build-rel/tools/mixfs tools/bench/series_bench.sh -n 12
#
# Checkpoints (tools/bench/train_series.py, Debian python3-torch, seeded and
# deterministic; trained once, cached in $BENCH_CACHE/series/KEY): a 0.93 M
# parameter GPT (tools/bench/ckpt.py) trained with AdamW on synthetic Markov
# tokens, a checkpoint every -e steps, -n per series:
#   full      torch.save of model + optimizer (fp32 weights, exp_avg,
#             exp_avg_sq) to ckpt-STEP.pt
#   full-tmp  the same, saved to ckpt.tmp and renamed to ckpt-STEP.pt
#             (torch.save names the zip entries after the file it writes,
#             so these files share one zip layout; full's do not)
#   full-names the same, saved to ckpt-STEP.pt with STEP not zero-padded
#             (ckpt-40.pt, ckpt-80.pt, ckpt-120.pt ...): the entry names
#             grow, so the tensors move between checkpoints
#   latest    the same, saved over one name, latest.pt (in place: O_TRUNC
#             of the previous version)
#   bf16      model weights as bfloat16 safetensors, model-STEP.safetensors
#   bf16-dirs the same, one directory per checkpoint (as Hugging Face's
#             Trainer saves): checkpoint-STEP/model.safetensors
#   bf16-meta the same with "step" in each header's __metadata__ (as
#             training scripts that record their progress there write):
#             every header differs, and the tensors move when it grows
#   bf16-raw  the same tensor bytes without the safetensors header (raw
#             arrays, no format mixfs parses), model-STEP.bin
#   ft        a fine-tune of the final model with all but the last block
#             and the final norm frozen (model + optimizer, fp32), ft-STEP.pt
#   ft-tmp    the same, saved to ckpt.tmp and renamed
#
# mixfs: every series goes to its own fresh store, mounted with default
# options (level mix, max_ref_chain=8; -o changes them) but for the online
# gc (gc_interval=0: the pack bytes then are those written); full, bf16 and ft
# once more to a store mounted with -o max_ref_chain=0 (series coding off:
# dedup + mix only).  The files are written in step order by torch.save itself (train_series.py --resave:
# torch.save(torch.load(cached file)), the same bytes) or, for safetensors,
# by one write of the cached bytes; each is fsynced before the next, as
# checkpoints minutes apart would be committed.  Then the bench waits for
# the daemon to go quiet (rebase turns the series deltas around once writes
# stop), unmounts and runs mixfs gc -t 0 (rebase leaves the frames it
# replaced as dead bytes; the online gc frees them after a remount).
# Stored = bytes of the pack files then (du -sb STORE/packs), except for
# latest.pt, whose older versions gc frees: there every frame written
# (rebase's rewrites included).  Every file is compared with its source
# through the mount afterwards.
#
# Peers, on the cached files in step order, each of full, bf16 and ft
# separately (the other series hold the same tensors; -P skips borg,
# restic and zpaq):
#   zstd -3        per file (zstd 1.5, -T1)
#   ZipNN-style    per file: codec_bench -l zipnn FILE:DTYPE (byte planes of
#                  each 64 KiB CDC chunk, zstd -3 per plane, stored raw when
#                  it does not shrink)
#   XOR + ZipNN    each file XORed with the previous one of its series (the
#                  first as is), then ZipNN-style
#   borg           borg 1.2 repository (init -e none), one archive per
#                  checkpoint, defaults: buzhash chunker 19,23,21,4095,
#                  lz4; growth of the repository directory
#   restic         restic repository (its defaults: repository version and
#                  compression as printed in the header), one snapshot per
#                  checkpoint; growth of the repository directory
#   zpaq -m4       zpaq 7.15 "a ARCH FILE -m4" per checkpoint (each a new
#                  version of the archive); archive size
#
# Cold read: for the newest checkpoint of each series, the oldest (with
# rebase, the end of the longest chain of reverse deltas) and checkpoint
# max_ref_chain + 1 (without rebase, the end of the longest forward chain)
# when the series is longer, unmount, drop the page cache, mount, cat the file
# to /dev/null; best of 3.  MB/s = 10^6 bytes per wall second; "CPU" = the
# CPU time of the daemon's threads during the read (/proc/PID/task/*/
# schedstat), the decode cost the issue bounds at 2x a chunk without
# reference: the same file in the max_ref_chain=0 store is that baseline.
#
# Environment: MIXFS (default build/tools/mixfs), CODEC_BENCH (default next
# to MIXFS: ../tools/bench/codec_bench), PYTHON (default /usr/bin/python3),
# BENCH_CACHE (default ~/.cache/mixfs-bench).
set -euo pipefail

usage() {
	cat <<EOF
usage: $0 [-n CKPTS] [-e STEPS] [-s SEED] [-T ARGS] [-o OPTS] [-d WORKDIR] [-P] [-k]
  -n CKPTS   checkpoints per series (default 10)
  -e STEPS   training steps between checkpoints (default 40)
  -s SEED    training seed (default 1234)
  -T ARGS    more train_series.py options, e.g. "--lr 1e-4 --beta2 0.999"
  -o OPTS    mount options of the series-coding stores (default: none, the
             engine's defaults), e.g. max_ref_chain=1
  -d DIR     work directory (default /var/tmp)
  -P         skip the slow peers (borg, restic, zpaq)
  -k         keep the work directory
EOF
}

N=10
EVERY=40
SEED=1234
TRAIN_ARGS=
OPTS=
BASE=/var/tmp
PEERS=1
KEEP=0
while getopts "n:e:s:T:o:d:Pkh" o; do
	case $o in
	n) N=$OPTARG ;;
	e) EVERY=$OPTARG ;;
	s) SEED=$OPTARG ;;
	T) TRAIN_ARGS=$OPTARG ;;
	o) OPTS=$OPTARG ;;
	d) BASE=$OPTARG ;;
	P) PEERS=0 ;;
	k) KEEP=1 ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
[ "$N" -ge 2 ] || { echo "need at least 2 checkpoints" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MIXFS=${MIXFS:-$REPO/build/tools/mixfs}
CODEC_BENCH=${CODEC_BENCH:-$(dirname "$MIXFS")/bench/codec_bench}
PY=${PYTHON:-/usr/bin/python3}
CACHE=${BENCH_CACHE:-$HOME/.cache/mixfs-bench}
MAXREF=8 # the mount's default max_ref_chain (mixfs mount --help)
case ",$OPTS," in *,max_ref_chain=*) MAXREF=$(echo ",$OPTS," | sed 's/.*,max_ref_chain=\([0-9]*\),.*/\1/') ;; esac
[ -x "$MIXFS" ] || { echo "mixfs binary not found: $MIXFS (build first or set MIXFS)" >&2; exit 1; }
need=(fusermount3 zstd)
[ "$PEERS" = 1 ] && need+=(borg restic zpaq)
for c in "${need[@]}"; do
	command -v "$c" >/dev/null || { echo "$c missing (apt-get install ${c/fusermount3/fuse3})" >&2; exit 1; }
done
[ -x "$CODEC_BENCH" ] ||
	{ echo "codec_bench not found: $CODEC_BENCH (ninja tools/bench/codec_bench, or set CODEC_BENCH)" >&2; exit 1; }
"$PY" -c 'import torch' 2>/dev/null || { echo "$PY cannot import torch (apt-get install python3-torch)" >&2; exit 1; }

log() { printf 'series_bench: %s\n' "$*" >&2; }
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"

echo "command: $0 $*"
echo "mixfs: $MIXFS ($(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)), series stores mounted with ${OPTS:-default options} (max_ref_chain=$MAXREF)"
echo "torch: $("$PY" -c 'import torch; print(torch.__version__)'); kernel $(uname -r); $(nproc) cpus; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "peers: $(zstd --version | sed 's/^\*\** *//; s/, by.*//')$([ "$PEERS" = 1 ] &&
	echo "; $(borg --version); $(restic version | cut -d' ' -f1-2); $(zpaq 2>&1 | head -1 | cut -d' ' -f1-2)")"

# ---- checkpoints (cached) ----
KEY=n$N-e$EVERY-s$SEED-$( (cat "$HERE/train_series.py" "$HERE/ckpt.py"; echo "$TRAIN_ARGS") | sha256sum | cut -c1-12)
SRC=$CACHE/series/$KEY
if [ ! -e "$SRC/done" ]; then
	log "training into $SRC (once; cached)"
	rm -rf "$SRC"
	mkdir -p "$SRC"/{full,bf16,ft}
	t0=$(now)
	# shellcheck disable=SC2086
	"$PY" "$HERE/train_series.py" --ckpts "$N" --every "$EVERY" --seed "$SEED" $TRAIN_ARGS "$SRC"
	log "trained in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s"
	touch "$SRC/done"
fi
echo "checkpoints: $SRC (train_series.py --ckpts $N --every $EVERY --seed $SEED${TRAIN_ARGS:+ $TRAIN_ARGS})"

declare -A FILES DTYPE BASE_OF LABEL TARGET
FILES[full]=$(ls "$SRC"/full/ckpt-*.pt)
FILES[bf16]=$(ls "$SRC"/bf16/model-*.safetensors)
FILES[ft]=$(ls "$SRC"/ft/ft-*.pt)
# Every series: its source files are those of its base series.
SERIES="full full-tmp full-names latest bf16 bf16-dirs bf16-meta bf16-raw ft ft-tmp"
BASE_OF=([full]=full [full-tmp]=full [full-names]=full [latest]=full [bf16]=bf16 [bf16-dirs]=bf16
	[bf16-meta]=bf16 [bf16-raw]=bf16 [ft]=ft [ft-tmp]=ft)
DTYPE=([full]=fp32 [bf16]=bf16 [ft]=fp32)
LABEL=([full]="fp32 model + AdamW, torch.save to ckpt-STEP.pt"
	[full-tmp]="the same, torch.save to ckpt.tmp, renamed to ckpt-STEP.pt"
	[full-names]="the same, torch.save to ckpt-STEP.pt without zero padding (ckpt-40.pt ... ckpt-400.pt: longer entry names move the tensors)"
	[latest]="the same, torch.save over latest.pt"
	[bf16]="bf16 model, safetensors"
	[bf16-dirs]="the same, checkpoint-STEP/model.safetensors"
	[bf16-meta]="the same with the step in the header's __metadata__ (another header every time)"
	[bf16-raw]="the same tensor bytes without the header (raw arrays), model-STEP.bin; peers of bf16"
	[ft]="fine-tune, last block trains, torch.save to ft-STEP.pt"
	[ft-tmp]="the same, torch.save to ckpt.tmp, renamed")
TARGET=([full]="<= 0.65" [full-tmp]="<= 0.65" [full-names]="<= 0.65" [latest]="<= 0.65" [bf16]="<= 0.40"
	[bf16-dirs]="<= 0.40" [bf16-meta]="<= 0.40" [bf16-raw]="<= 0.40")
BASES="full bf16 ft" # series with peers and a series-off store
raw_bytes() { local n=0 f; for f in $1; do n=$((n + $(stat -c %s "$f"))); done; echo "$n"; }

# ---- work directory, mounts ----
mkdir -p "$BASE"
W=$(mktemp -d "$BASE/mixfs-series.XXXXXX")
MNT=$W/mnt
mkdir -p "$MNT"
PID=
cleanup() {
	set +e
	fuse_cleanup
	if [ "$KEEP" = 1 ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT

do_mount() { fuse_mount "$W/mixfs.log" "$MIXFS" mount -f ${2:+-o "$2"} "$1" "$MNT"; } # store opts
do_umount() { fuse_umount; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }

# Where checkpoint $2 of series $1 goes, under directory $3 (default: the mount).
dest() {
	local dir=${3:-$MNT/$1} step
	case $1 in
	latest) echo "$dir/latest.pt" ;;
	*-dirs)
		step=$(basename "$2" .safetensors)
		echo "$dir/checkpoint-${step#model-}/model.safetensors"
		;;
	*-raw) echo "$dir/$(basename "$2" .safetensors).bin" ;;
	full-names)
		step=$(basename "$2" .pt)
		step=${step#ckpt-}
		echo "$dir/ckpt-$((10#$step)).pt"
		;;
	*) echo "$dir/$(basename "$2")" ;;
	esac
}

# resave SERIES DIR: write the series into DIR, in step order.
resave() {
	local s=$1 dir=$2 f i pairs=() via=()
	for f in ${FILES[${BASE_OF[$s]}]}; do pairs+=("$f" "$(dest "$s" "$f" "$dir")"); done
	for ((i = 1; i < ${#pairs[@]}; i += 2)); do mkdir -p "$(dirname "${pairs[i]}")"; done
	case $s in *-tmp) via=(--via ckpt.tmp) ;; *-meta) via=(--st-step) ;; *-raw) via=(--raw) ;; esac
	"$PY" "$HERE/train_series.py" --resave "${via[@]}" "${pairs[@]}"
}

# The bytes each series should read back: the cached files, or for the
# series whose zip entry names differ, the same written to local disk.
declare -A EXPECT
for s in $SERIES; do
	EXPECT[$s]=$SRC/${BASE_OF[$s]}
	[ "$s" = "${BASE_OF[$s]}" ] && continue
	EXPECT[$s]=$W/expect/$s
	mkdir -p "${EXPECT[$s]}"
	resave "$s" "${EXPECT[$s]}"
done

# ---- mixfs: write each series to its own store ----
declare -A MX # MX[cfg.series.key]
configs() { if [ "$1" = "${BASE_OF[$1]}" ]; then echo "series noref"; else echo series; fi; }
# gc_interval=0: the online gc would free dead frames while the series is
# written (since affa83a, once 64 MiB died), so the packs would no longer
# show what was written; gc -t 0 below frees them all the same
cfg_opts() { if [ "$1" = noref ]; then echo gc_interval=0,max_ref_chain=0; else echo "gc_interval=0${OPTS:+,$OPTS}"; fi; }
for s in $SERIES; do
	for cfg in $(configs "$s"); do
		store=$W/store-$cfg-$s
		"$MIXFS" mkfs "$store" >/dev/null
		do_mount "$store" "$(cfg_opts "$cfg")"
		mkdir "$MNT/$s"
		c0=$(daemon_cpu)
		t0=$(now)
		resave "$s" "$MNT/$s"
		sync -f "$MNT"
		t1=$(now)
		MX[$cfg.$s.wcpu]=$(sub "$c0" "$(daemon_cpu)")
		# what the daemon does once writes stop: rebase (reverse deltas
		# after rebase_idle ms), until its threads are quiet
		c0=$(daemon_cpu)
		wait_quiet
		MX[$cfg.$s.rbcpu]=$(sub "$c0" "$(daemon_cpu)")
		do_umount
		MX[$cfg.$s.wall]=$(sub "$t0" "$t1")
		MX[$cfg.$s.written]=$(du -sb "$store/packs" | cut -f1)
		# frames rebase replaced are dead bytes: count the store as gc
		# leaves it (the online gc does the same after a remount)
		"$MIXFS" gc -t 0 "$store" >/dev/null
		MX[$cfg.$s.packs]=$(du -sb "$store/packs" | cut -f1)
		# latest keeps one version: gc frees the others, so its cost
		# of the series is what was written (rebase's rewrites too)
		[ "$s" = latest ] && MX[$cfg.$s.packs]=${MX[$cfg.$s.written]}
		MX[$cfg.$s.index]=$(du -sB1 "$store/index" | cut -f1)
		"$MIXFS" stats --json "$store" >"$W/stats-$cfg-$s.json"
		for k in stored_bytes unique_bytes chunks ref_chunks ref_raw_bytes ref_stored_bytes; do
			MX[$cfg.$s.$k]=$(json_get "$W/stats-$cfg-$s.json" "$k")
		done
		log "$cfg $s: packs ${MX[$cfg.$s.packs]} bytes, live chunks ${MX[$cfg.$s.chunks]} (${MX[$cfg.$s.ref_chunks]} series-coded), written in ${MX[$cfg.$s.wall]} s"
	done
done

# ---- cold reads (best of READS), then every file compared ----
READS=3
declare -A RD # RD[cfg.series.pos.key]
for s in $SERIES; do
	last=$(echo "${FILES[${BASE_OF[$s]}]}" | wc -l)
	deep=$((MAXREF + 1 < last ? MAXREF + 1 : last))
	RD[$s.positions]=$last
	# the oldest too: with rebase it ends the longest chain of reverse deltas
	[ "$s" != latest ] && [ "$deep" != "$last" ] && RD[$s.positions]="1 $deep $last"
	for cfg in $(configs "$s"); do
		store=$W/store-$cfg-$s
		for pos in ${RD[$s.positions]}; do
			f=$(echo "${FILES[${BASE_OF[$s]}]}" | sed -n "${pos}p")
			target=$(dest "$s" "$f")
			for _ in $(seq 1 "$READS"); do
				drop_caches
				do_mount "$store" "$(cfg_opts "$cfg")"
				c0=$(daemon_cpu)
				t0=$(now)
				cat "$target" >/dev/null
				t1=$(now)
				c1=$(daemon_cpu)
				bytes=$(stat -c %s "$target")
				do_umount
				mbs=$(awk -v b="$bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.1f", b / (c - a) / 1e6 }')
				cpu=$(sub "$c0" "$c1")
				RD[$cfg.$s.$pos.bytes]=$bytes
				RD[$cfg.$s.$pos.mbs]=$(awk -v a="${RD[$cfg.$s.$pos.mbs]:-0}" -v b="$mbs" 'BEGIN { print (b > a) ? b : a }')
				RD[$cfg.$s.$pos.cpu]=$(awk -v a="${RD[$cfg.$s.$pos.cpu]:-1e9}" -v b="$cpu" 'BEGIN { print (b < a) ? b : a }')
			done
		done
		do_mount "$store" "$(cfg_opts "$cfg")"
		if [ "$s" = latest ]; then
			f=$(echo "${FILES[full]}" | tail -n 1)
			cmp "$(dest "$s" "$f" "${EXPECT[$s]}")" "$(dest "$s" "$f")" ||
				{ echo "$cfg $s: latest.pt differs" >&2; exit 1; }
		else
			for f in ${FILES[${BASE_OF[$s]}]}; do
				cmp "$(dest "$s" "$f" "${EXPECT[$s]}")" "$(dest "$s" "$f")" ||
					{ echo "$cfg $s: $(basename "$f") differs" >&2; exit 1; }
			done
		fi
		do_umount
	done
done
log "every file read back equal to its source"

# ---- peers ----
declare -A PR # PR[peer.series]
for s in $BASES; do
	files=${FILES[$s]}
	t0=$(now)
	n=0
	for f in $files; do n=$((n + $(zstd -3 -T1 -q -c "$f" | wc -c))); done
	PR[zstd.$s]=$n
	# shellcheck disable=SC2086
	PR[zipnn.$s]=$("$CODEC_BENCH" -l zipnn $(for f in $files; do printf '%s:%s ' "$f" "${DTYPE[$s]}"; done) |
		awk -F'\t' '{ n += $6 } END { print n }')
	mkdir -p "$W/xor/$s"
	"$PY" - "$W/xor/$s" $files <<'EOF'
import os, sys
out, files = sys.argv[1], sys.argv[2:]
prev = None
for f in files:
    cur = open(f, "rb").read()
    if prev is None:
        x = cur
    else:
        p = prev[:len(cur)].ljust(len(cur), b"\0")
        x = (int.from_bytes(cur, "little") ^ int.from_bytes(p, "little")).to_bytes(len(cur), "little")
    open(os.path.join(out, os.path.basename(f)), "wb").write(x)
    prev = cur
EOF
	# shellcheck disable=SC2086
	PR[xor.$s]=$("$CODEC_BENCH" -l zipnn $(for f in $files; do printf '%s:%s ' "$W/xor/$s/$(basename "$f")" "${DTYPE[$s]}"; done) |
		awk -F'\t' '{ n += $6 } END { print n }')
	PR[time.$s]=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "zstd + ZipNN + XOR %.0f s", b - a }')
done
if [ "$PEERS" = 1 ]; then
	export BORG_BASE_DIR=$W/borg-base BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
	export RESTIC_PASSWORD=series-bench RESTIC_CACHE_DIR=$W/restic-cache
	echo "borg: borg init -e none REPO; borg create REPO::NAME FILE per checkpoint (defaults: chunker buzhash,19,23,21,4095, compression lz4)"
	restic -r "$W/restic-probe" init >/dev/null 2>&1
	echo "restic: restic init (repository version $(restic -r "$W/restic-probe" cat config 2>/dev/null |
		"$PY" -c 'import json,sys; print(json.load(sys.stdin)["version"])'), compression auto: defaults); restic -r REPO backup FILE per checkpoint"
	echo "zpaq: zpaq a ARCH FILE -m4 per checkpoint"
	for s in $BASES; do
		files=${FILES[$s]}
		t1=$(now)
		borg init -e none "$W/borg-$s" >/dev/null 2>&1
		b0=$(du -sb "$W/borg-$s" | cut -f1)
		for f in $files; do
			(cd "$(dirname "$f")" && borg create "$W/borg-$s::$(basename "$f")" "$(basename "$f")")
		done
		PR[borg.$s]=$(($(du -sb "$W/borg-$s" | cut -f1) - b0))
		t2=$(now)
		restic -r "$W/restic-$s" init >/dev/null 2>&1
		r0=$(du -sb "$W/restic-$s" | cut -f1)
		for f in $files; do
			(cd "$(dirname "$f")" && restic -r "$W/restic-$s" backup -q "$(basename "$f")")
		done
		PR[restic.$s]=$(($(du -sb "$W/restic-$s" | cut -f1) - r0))
		t3=$(now)
		for f in $files; do
			(cd "$(dirname "$f")" && zpaq a "$W/zpaq-$s.zpaq" "$(basename "$f")" -m4 >/dev/null 2>&1)
		done
		PR[zpaq.$s]=$(stat -c %s "$W/zpaq-$s.zpaq")
		t4=$(now)
		PR[time.$s]+=$(awk -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" \
			'BEGIN { printf ", borg %.0f s, restic %.0f s, zpaq %.0f s", c - b, d - c, e - d }')
		log "peers $s: ${PR[time.$s]}"
	done
fi

# ---- tables ----
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == 0) print "-"; else printf "%.4f", a / b }'; }
mb() { awk -v a="$1" 'BEGIN { printf "%.1f MB", a / 1e6 }'; }
PEER_NAMES="zstd zipnn xor borg restic zpaq"
echo
echo "Whole series, stored / raw ($N checkpoints each, every $EVERY training steps):"
echo
echo "| series | raw | mixfs | mixfs, series off | zstd -3 | ZipNN-style | XOR prev + ZipNN | borg | restic | zpaq -m4 | target |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for s in $SERIES; do
	b=${BASE_OF[$s]}
	raw=$(raw_bytes "${FILES[$b]}")
	own=$raw # a -raw series holds fewer bytes than its base (no headers)
	case $s in *-raw) own=$(raw_bytes "$(ls "${EXPECT[$s]}"/*)") ;; esac
	row="| $s: ${LABEL[$s]} | $(mb "$own") | **$(ratio "${MX[series.$s.packs]}" "$own")** | $(ratio "${MX[noref.$b.packs]}" "$raw")"
	for peer in $PEER_NAMES; do row+=" | $(ratio "${PR[$peer.$b]:-}" "$raw")"; done
	echo "$row | ${TARGET[$s]:-} |"
done
echo
echo "Series whose name ends in -tmp, -names, -dirs, -meta or -raw, and latest, hold the same tensors as their base series (full, bf16, ft): their peers and series-off columns are the base's (ratios to the base's raw bytes; -raw's mixfs ratio to its own).  mixfs = pack bytes once the daemon went quiet (rebase done), unmounted and mixfs gc -t 0 compacted the packs; for latest every frame written (its replaced versions are gone after gc)."
echo
echo "mixfs per series (${OPTS:-default options}), after the whole series:"
echo
echo "| series | pack bytes written | after gc | live stored | live chunks | series-coded chunks | series-coded raw -> stored | index | write: wall / daemon CPU | rebase CPU after |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for s in $SERIES; do
	rr=${MX[series.$s.ref_raw_bytes]}
	rs=${MX[series.$s.ref_stored_bytes]}
	echo "| $s | ${MX[series.$s.written]} | ${MX[series.$s.packs]} | ${MX[series.$s.stored_bytes]} | ${MX[series.$s.chunks]} | ${MX[series.$s.ref_chunks]} | $(mb "$rr") -> $(mb "$rs") ($(ratio "$rs" "$rr")) | $(mb "${MX[series.$s.index]}") | ${MX[series.$s.wall]} s / ${MX[series.$s.wcpu]} s | ${MX[series.$s.rbcpu]} s |"
done
echo
echo "Cold read of one checkpoint (unmount, drop caches, mount, cat; best of $READS); CPU = daemon CPU seconds for the read; series off = the same file in the max_ref_chain=0 store:"
echo
echo "| series | checkpoint | size | mixfs MB/s | CPU s | series off MB/s | CPU s | CPU mixfs / series off |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for s in $SERIES; do
	b=${BASE_OF[$s]}
	for pos in ${RD[$s.positions]}; do
		what="$pos of $N"
		[ "$pos" = "$N" ] && what="$pos of $N (newest)"
		[ "$pos" = 1 ] && what="1 of $N (oldest)"
		echo "| $s | $what | $(mb "${RD[series.$s.$pos.bytes]}") | ${RD[series.$s.$pos.mbs]} | ${RD[series.$s.$pos.cpu]} | ${RD[noref.$b.$pos.mbs]:--} | ${RD[noref.$b.$pos.cpu]:--} | $(ratio "${RD[series.$s.$pos.cpu]}" "${RD[noref.$b.$pos.cpu]:-0}") |"
	done
done
echo
for s in $BASES; do echo "peer wall time, $s: ${PR[time.$s]}"; done
