#!/bin/bash
# -o bytes_chunk=SIZE: a file of text in no tensor format is cut into
# chunks of SIZE/2 to 2*SIZE (default 512K) instead of the store's ~64 KiB,
# so the byte models learn across more bytes.
# - a text (words of a 6000-word vocabulary, lines repeated from the last
#   ~300 KB) in two stores: the default mount cuts it into at most 4 MiB /
#   256 KiB chunks and stores it in at most 98.5% of what bytes_chunk=0
#   (the store's chunks) stores (real text gains more: docs/BENCHMARKS.md);
# - uint16 token ids, raw or in an .npy (read at random offsets by
#   training), float weights and random bytes keep the store's chunks
#   (more than 4 MiB / 128 KiB chunks each);
# - everything reads back equal after a remount, whole and by 4 KiB reads
#   at odd offsets; an edit in the middle of the coarse text re-stores
#   one or two of its chunks, not the file;
# - bad values are refused naming the option.
# lazy=off: each chunk is coded once, by the mount that wrote it.
. "$(dirname "$0")/lib.sh"
it_init
mixfs_mkfs
need_mixfs

# prose of a small vocabulary, 4 MiB, and uint16 token ids of the same
gen_text() {
	python3 - "$1" "$2" "$3" <<'PYEOF'
import random, struct, sys
path, seed, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(seed)
syl = ["ka", "to", "ri", "en", "mo", "sa", "lu", "ne", "di", "po", "ar", "ve", "shi", "qu", "el", "zo"]
vocab = sorted({"".join(rng.choice(syl) for _ in range(rng.randint(1, 4))) for _ in range(6000)})
rng.shuffle(vocab)
size = 4 * 1048576
out, lines, n = [], [], 0
while n < size:
    if lines and rng.random() < 0.3:  # a line seen in the last ~300 KB
        line = rng.choice(lines[-5000:])
    else:
        k = rng.randint(4, 14)
        line = [min(int(rng.expovariate(0.004)), len(vocab) - 1) for _ in range(k)]
        lines.append(line)
    if kind == "text":
        s = " ".join(vocab[w] for w in line) + "\n"
        out.append(s)
        n += len(s)
    else:  # token ids: a word is id 1000 + its rank, a line ends with id 13
        out.append(struct.pack("<%dH" % (len(line) + 1), *[1000 + w for w in line], 13))
        n += 2 * (len(line) + 1)
data = "".join(out).encode() if kind == "text" else b"".join(out)
open(path, "wb").write(data[:size])
PYEOF
}
chunks() {
	stats_json "$WORK/c.json" "$MNT"
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["chunks"])' "$WORK/c.json"
}
gen_text "$WORK/coarse.txt" 2 text
gen_text "$WORK/tokens.bin" 3 tokens
# other ids as a NumPy .npy (hints: one uint16 range, no float tensor)
gen_text "$WORK/ids.bin" 7 tokens
python3 - "$WORK/ids.bin" "$WORK/tokens.npy" <<'PYEOF'
import sys
data = open(sys.argv[1], "rb").read()
d = "{'descr': '<u2', 'fortran_order': False, 'shape': (%d,), }" % (len(data) // 2)
d += " " * (-(10 + len(d) + 1) % 64) + "\n"
open(sys.argv[2], "wb").write(b"\x93NUMPY\x01\x00" + len(d).to_bytes(2, "little") + d.encode() + data)
PYEOF
float_file "$WORK/floats.bin" 4 5
rand_file "$WORK/random.bin" 4 6

# the store's chunks (a store of its own: the same text, nothing to dedup)
mixfs_mount fg lazy=off,bytes_chunk=0
cp "$WORK/coarse.txt" "$MNT/fine.txt"
sync
n_fine=$(chunks)
[ "$n_fine" -ge 40 ] || fail "bytes_chunk=0: 4 MiB of text in only $n_fine chunks"
s_fine=$(stored_bytes fine.txt)
mixfs_umount
rm -rf "$STORE"
mixfs_mkfs

# the default (512K): text coarse; token ids, floats and random bytes not
mixfs_mount fg lazy=off
for f in coarse.txt tokens.bin tokens.npy floats.bin random.bin; do
	before=$(chunks)
	cp "$WORK/$f" "$MNT/$f"
	sync
	n=$(( $(chunks) - before ))
	log "$f: $n chunks"
	case $f in
	*.txt) [ "$n" -le 16 ] || fail "$f: $n chunks, expected at most 16 (256 KiB or more each)" ;;
	*) [ "$n" -ge 32 ] || fail "$f: $n chunks, expected the store's (32 or more)" ;;
	esac
done
s_coarse=$(stored_bytes coarse.txt)
log "stored: store's chunks $s_fine, coarse $s_coarse"
[ $((s_coarse * 1000)) -le $((s_fine * 985)) ] ||
	fail "coarse chunks stored $s_coarse bytes, the store's $s_fine: expected 1.5% less"
mixfs_umount

mixfs_mount fg
for f in coarse.txt tokens.bin tokens.npy floats.bin random.bin; do
	check_cmp "$WORK/$f" "$MNT/$f"
done
# 4 KiB reads at odd offsets (each decodes one chunk of up to 1 MiB)
for off in 1 262143 1048577 2097151 3000001 4190000; do
	a=$(dd if="$WORK/coarse.txt" bs=1 skip=$off count=4096 status=none | sha256sum)
	b=$(dd if="$MNT/coarse.txt" iflag=skip_bytes,count_bytes skip=$off count=4096 bs=4096 status=none | sha256sum)
	check_eq "coarse.txt at $off" "$a" "$b"
done
# an edit in the middle: the chunks around it are new, the others dedup
before=$(chunks)
printf 'EDITED' | dd of="$WORK/coarse.txt" bs=1 seek=2000000 conv=notrunc status=none
printf 'EDITED' | dd of="$MNT/coarse.txt" bs=1 seek=2000000 conv=notrunc status=none
sync
check_cmp "$WORK/coarse.txt" "$MNT/coarse.txt"
mixfs_umount
mixfs_mount fg
check_cmp "$WORK/coarse.txt" "$MNT/coarse.txt"
added=$(( $(chunks) - before ))
log "edit: $added chunks more"
[ "$added" -le 2 ] || fail "a 6-byte edit added $added chunks (expected 1 or 2: the rest dedups)"
mixfs_umount

for bad in 3K 96K 8M x; do
	if "$MIXFS" mount -f -o "bytes_chunk=$bad" "$STORE" "$MNT" 2>"$WORK/err"; then
		fail "bytes_chunk=$bad was accepted"
	fi
	grep -q 'bytes_chunk' "$WORK/err" || fail "bytes_chunk=$bad: the message does not name the option: $(cat "$WORK/err")"
done
log PASS
