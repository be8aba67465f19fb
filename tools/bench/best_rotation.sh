#!/bin/bash
# best_rotation.sh - a "best" checkpoint kept out of a rotation (a
# benchmark, not a test): what does the store hold when a training run keeps
# the newest KEEP checkpoints plus one best checkpoint and deletes the rest?
#
#   tools/bench/best_rotation.sh [-n CKPTS] [-e STEPS] [-s SEED] [-k KEEP]
#       [-b BEST] [-t full|bf16] [-o OPTS] [-d DIR] [-K] [BIN...]
#
#   -n CKPTS  checkpoints written (default 20)
#   -e STEPS  training steps between checkpoints (default 20)
#   -s SEED   training seed (default 1234)
#   -k KEEP   newest checkpoints kept (default 3)
#   -b BEST   the checkpoint kept out of the rotation: its number (1 = the
#             first saved; default 3), or "loss": the one with the lowest
#             training loss so far (train_series.py's last-batch loss), which
#             replaces the previous best as a trainer's best-model tracking does
#   -t KIND   full: fp32 model + AdamW state, torch.save to ckpt-STEP.pt
#             (default); bf16: the model as bf16 safetensors, model-STEP.safetensors
#   -o OPTS   more mount options (after the bench's own, so they win)
#   -d DIR    work directory (default /var/tmp)
#   -K        keep the work directory (stores, logs)
#   BIN...    mixfs binaries, each measured on the same checkpoints, one
#             table row each (default: $MIXFS, which may name several
#             separated by spaces, else build/tools/mixfs)
#
# The checkpoints: tools/bench/train_series.py (Debian python3-torch, seeded
# and deterministic: the 0.93 M parameter GPT of ckpt.py trained with AdamW,
# a checkpoint every STEPS steps), trained once and cached in
# $BENCH_CACHE/best_rotation/KEY, so every binary gets the same bytes.
# Each binary gets a fresh store, mounted with
# rebase_idle=500,max_ref_chain=8 (gc_interval and the rest at their
# defaults) and OPTS.  The checkpoints are written one at a time into one
# directory of the mount (train_series.py --resave: torch.save itself for
# .pt files, each fsynced); after each the rotation deletes every checkpoint
# that is neither among the newest KEEP nor the best, and the bench waits for
# the daemon to go quiet (lib.sh wait_quiet: rebase turns the series deltas
# around, and, since 96c8c16, splices the deleted checkpoints out of the best
# one's chain of reverse deltas), then notes `mixfs stats --json`.  At the
# end: stored bytes and chunks (mixfs stats --json), pack bytes on disk while
# mounted and after unmount + mixfs gc -t 0 (du -sb STORE/packs), every kept
# file read back and compared with the SHA-256 of its source, mixfs fsck of
# the store.
#
# Environment: MIXFS, PYTHON (default /usr/bin/python3), BENCH_CACHE (default
# ~/.cache/mixfs-bench).  Root (FUSE, the daemons' /proc entries).
set -euo pipefail

usage() { sed -n '5,26p' "$0" | sed 's/^# \{0,1\}//'; }

N=20 EVERY=20 SEED=1234 KEEP=3 BEST=3 KIND=full OPTS='' BASE=/var/tmp KEEPDIR=0
while getopts "n:e:s:k:b:t:o:d:Kh" o; do
	case $o in
	n) N=$OPTARG ;;
	e) EVERY=$OPTARG ;;
	s) SEED=$OPTARG ;;
	k) KEEP=$OPTARG ;;
	b) BEST=$OPTARG ;;
	t) KIND=$OPTARG ;;
	o) OPTS=$OPTARG ;;
	d) BASE=$OPTARG ;;
	K) KEEPDIR=1 ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
case $KIND in full | bf16) ;; *) echo "-t: full or bf16" >&2; exit 2 ;; esac
case $BEST in loss) ;; *[!0-9]* | '') echo "-b: a checkpoint number or loss" >&2; exit 2 ;; esac
if [ "$KEEP" -lt 1 ] || [ "$N" -lt 2 ]; then echo "need -k >= 1 and -n >= 2" >&2; exit 2; fi

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
CACHE=${BENCH_CACHE:-$HOME/.cache/mixfs-bench}
# shellcheck disable=SC2206
BINS=("$@")
# shellcheck disable=SC2206
[ ${#BINS[@]} -gt 0 ] || BINS=(${MIXFS:-$REPO/build/tools/mixfs})
for b in "${BINS[@]}"; do
	[ -x "$b" ] || { echo "mixfs binary not found: $b (build first, or set MIXFS)" >&2; exit 1; }
done
command -v fusermount3 >/dev/null || { echo "fusermount3 missing (apt-get install fuse3)" >&2; exit 1; }
"$PY" -c 'import torch' 2>/dev/null || { echo "$PY cannot import torch (apt-get install python3-torch)" >&2; exit 1; }
MOPTS=rebase_idle=500,max_ref_chain=8${OPTS:+,$OPTS}

log() { printf 'best_rotation: %s\n' "$*" >&2; }
# shellcheck source=tools/bench/lib.sh
. "$HERE/lib.sh"
# the commit a binary was built from: that of the tree it sits in
commit_of() { git -C "$(dirname "$1")" rev-parse --short HEAD 2>/dev/null || echo "?"; }
mb() { awk -v a="$1" 'BEGIN { printf "%.1f", a / 1e6 }'; }

echo "command: $0 -n $N -e $EVERY -s $SEED -k $KEEP -b $BEST -t $KIND${OPTS:+ -o $OPTS} ${BINS[*]}"
echo "mount options: $MOPTS; torch $("$PY" -c 'import torch; print(torch.__version__)'); kernel $(uname -r); $(nproc) cpus; load $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- checkpoints (trained once, cached) ----
KEY=n$N-e$EVERY-s$SEED-$( (cat "$HERE/train_series.py" "$HERE/ckpt.py"; echo) | sha256sum | cut -c1-12)
SRC=$CACHE/best_rotation/$KEY
if [ ! -e "$SRC/done" ]; then
	log "training into $SRC (once; cached)"
	rm -rf "$SRC"
	mkdir -p "$SRC"/{full,bf16}
	t0=$(now)
	"$PY" "$HERE/train_series.py" --ckpts "$N" --every "$EVERY" --seed "$SEED" "$SRC" >/dev/null 2>"$SRC/train.log" ||
		{ tail -5 "$SRC/train.log" >&2; exit 1; }
	log "trained in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s"
	touch "$SRC/done"
fi
mapfile -t FILES < <(ls "$SRC/$KIND"/*)
mapfile -t LOSS < <(awk '/pretrain step/ { print $NF }' "$SRC/train.log")
if [ ${#FILES[@]} -ne "$N" ] || [ ${#LOSS[@]} -ne "$N" ]; then echo "$SRC: not $N checkpoints and losses" >&2; exit 1; fi
declare -A SHA
for f in "${FILES[@]}"; do SHA[$(basename "$f")]=$(sha256sum "$f" | cut -d' ' -f1); done
echo "checkpoints: $SRC/$KIND (train_series.py --ckpts $N --every $EVERY --seed $SEED), $(stat -c %s "${FILES[0]}") bytes each"

# ---- work directory ----
mkdir -p "$BASE"
W=$(mktemp -d "$BASE/mixfs-bestrot.XXXXXX")
MNT=$W/mnt PID=
mkdir "$MNT"
cleanup() {
	set +e
	fuse_cleanup
	if [ "$KEEPDIR" = 1 ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT

# ---- one store per binary ----
declare -A R    # R[binary index.key]
declare -A STEP # STEP[save v.binary index]: stored bytes after save v
BESTS=()        # the best checkpoint after each save (the same for every binary)
KEPT=()         # the checkpoints kept after each save
for bi in "${!BINS[@]}"; do
	bin=${BINS[bi]}
	store=$W/store-$bi
	"$bin" mkfs "$store" >/dev/null
	fuse_mount "$W/mixfs-$bi.log" "$bin" mount -f -o "$MOPTS" "$store" "$MNT"
	mkdir "$MNT/run"
	log "$bin ($(commit_of "$bin")): $N checkpoints into $store"
	t0=$(now)
	best=0
	for v in $(seq 1 "$N"); do
		f=${FILES[v - 1]}
		"$PY" "$HERE/train_series.py" --resave "$f" "$MNT/run/$(basename "$f")" 2>>"$W/resave.log" ||
			{ tail -5 "$W/resave.log" >&2; exit 1; }
		if [ "$BEST" = loss ]; then
			if [ "$best" -lt 1 ] || awk -v a="${LOSS[v - 1]}" -v b="${LOSS[best - 1]}" 'BEGIN { exit !(a < b) }'; then
				best=$v
			fi
		else
			best=$BEST
		fi
		kept=
		for u in $(seq 1 "$v"); do
			g=$MNT/run/$(basename "${FILES[u - 1]}")
			if [ "$u" -gt $((v - KEEP)) ] || [ "$u" = "$best" ]; then
				kept+=" $u"
			elif [ -e "$g" ]; then
				rm "$g"
			fi
		done
		BESTS[v]=$best KEPT[v]=${kept# }
		wait_quiet
		"$bin" stats --json "$MNT" >"$W/stats-$bi-$v.json"
		STEP[$v.$bi]=$(json_get "$W/stats-$bi-$v.json" stored_bytes)
		log "save $v (best $best, kept ${kept# }): stored $(mb "${STEP[$v.$bi]}") MB, packs $(mb "$(du -sb "$store/packs" | cut -f1)") MB on disk"
	done
	R[$bi.wall]=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
	R[$bi.cpu]=$(daemon_cpu)
	# settled: quiet once more (rebase, splicing, lazy recompression), then the numbers
	wait_quiet
	"$bin" stats --json "$MNT" >"$W/stats-$bi.json"
	read -r a b c d e f < <(json_get "$W/stats-$bi.json" stored_bytes unique_bytes chunks ref_chunks logical_bytes file_count)
	R[$bi.stored]=$a R[$bi.unique]=$b R[$bi.chunks]=$c R[$bi.ref]=$d R[$bi.logical]=$e R[$bi.files]=$f
	R[$bi.packs_mounted]=$(du -sb "$store/packs" | cut -f1)
	# every kept file read back through the mount, against its source's SHA-256
	R[$bi.readback]=ok
	for g in "$MNT"/run/*; do
		[ "$(sha256sum "$g" | cut -d' ' -f1)" = "${SHA[$(basename "$g")]}" ] ||
			{ R[$bi.readback]=DIFFERS; log "$g differs from its source"; }
	done
	R[$bi.kept]=$(cd "$MNT/run" && echo *)
	fuse_umount
	"$bin" gc -t 0 "$store" >>"$W/gc-$bi.log" 2>&1 || { cat "$W/gc-$bi.log" >&2; exit 1; }
	R[$bi.packs_gc]=$(du -sb "$store/packs" | cut -f1)
	set +e
	"$bin" fsck "$store" >"$W/fsck-$bi.log" 2>&1
	rc=$?
	set -e
	R[$bi.fsck]="exit $rc, $(sed -n 's/^problems: //p' "$W/fsck-$bi.log")"
	log "fsck: ${R[$bi.fsck]}"
	sed 's/^/  /' "$W/fsck-$bi.log" >&2
done

# ---- tables ----
echo
echo "After $N saves (kept: ${KEPT[N]}; best: checkpoint ${BESTS[N]}), once the daemon was quiet; MB = 10^6 bytes:"
echo
echo "| mixfs | kept files, raw MB | stored MB (mixfs stats) | after dedup MB | chunks (series-coded) | packs MB, mounted | packs MB after gc -t 0 | stored / raw | read back | fsck | write + idle waits: wall s / daemon CPU s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|"
for bi in "${!BINS[@]}"; do
	echo "| $(commit_of "${BINS[bi]}") (${BINS[bi]}) | ${R[$bi.files]} files, $(mb "${R[$bi.logical]}") | **$(mb "${R[$bi.stored]}")** | $(mb "${R[$bi.unique]}") | ${R[$bi.chunks]} (${R[$bi.ref]}) | $(mb "${R[$bi.packs_mounted]}") | $(mb "${R[$bi.packs_gc]}") | $(awk -v a="${R[$bi.stored]}" -v b="${R[$bi.logical]}" 'BEGIN { printf "%.2f", a / b }') | ${R[$bi.readback]} | ${R[$bi.fsck]} | ${R[$bi.wall]} / ${R[$bi.cpu]} |"
done
echo
echo "Stored MB (mixfs stats) after each save and the rotation's deletes, the daemon quiet:"
echo
hdr="| save | best | kept | raw kept MB"
sep="|---:|---:|---|---:"
for bi in "${!BINS[@]}"; do
	hdr+=" | $(commit_of "${BINS[bi]}")"
	sep+="|---:"
done
echo "$hdr |"
echo "$sep|"
for v in $(seq 1 "$N"); do
	raw=0
	for u in ${KEPT[v]}; do raw=$((raw + $(stat -c %s "${FILES[u - 1]}"))); done
	row="| $v | ${BESTS[v]} | ${KEPT[v]// /, } | $(mb "$raw")"
	for bi in "${!BINS[@]}"; do row+=" | $(mb "${STEP[$v.$bi]}")"; done
	echo "$row |"
done
