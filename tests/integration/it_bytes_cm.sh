#!/bin/bash
# -o bytes=cm: at level mix, text that is not a float tensor is also coded
# by the context-mixing byte model.  Two texts of the same kind, one
# written under the default (bytes=light), one under bytes=cm: the second
# is stored in at most 88% of the first's bytes; both read back equal
# after a remount under the other option (decoding needs no option), and
# a bad value is refused naming the option.  lazy=off: each chunk is coded
# once, by the mount that wrote it.
. "$(dirname "$0")/lib.sh"
it_init
mixfs_mkfs
need_mixfs

# prose of a small vocabulary (2 MiB each, different seeds): every 64 KiB
# chunk has words, lines and repeats to model, nothing to dedup
gen_text() {
	python3 - "$1" "$2" <<'PYEOF'
import random, sys
rng = random.Random(int(sys.argv[2]))
words = ("the model weights of a layer are saved in each checkpoint with the "
         "optimizer state learning rate schedule for every step tensor shape "
         "dtype gradient norm loss batch training evaluation attention head "
         "embedding token sequence").split()
out, lines, size = [], [], 0
while size < 2 * 1048576:
    if lines and rng.random() < 0.05:
        line = rng.choice(lines)
    else:
        n = rng.randint(4, 14)
        line = " ".join(words[min(int(rng.expovariate(0.15)), len(words) - 1)]
                        for _ in range(n)) + " %d" % rng.randint(0, 99999)
        lines.append(line)
    out.append(line + "\n")
    size += len(line) + 1
open(sys.argv[1], "w").write("".join(out)[:2 * 1048576])
PYEOF
}
gen_text "$WORK/light.txt" 1
gen_text "$WORK/cm.txt" 2

mixfs_mount fg lazy=off
cp "$WORK/light.txt" "$MNT/light.txt"
mixfs_umount
mixfs_mount fg lazy=off,bytes=cm
cp "$WORK/cm.txt" "$MNT/cm.txt"
check_cmp "$WORK/cm.txt" "$MNT/cm.txt"
mixfs_umount

mixfs_mount fg
check_cmp "$WORK/light.txt" "$MNT/light.txt"
check_cmp "$WORK/cm.txt" "$MNT/cm.txt"
stats_json "$WORK/s.json" --files "$MNT"
python3 - "$WORK/s.json" <<'PYEOF' || fail "bytes=cm did not store the text smaller"
import json, sys
rows = {r["path"].rsplit("/", 1)[-1]: r["stored_bytes"] for r in json.load(open(sys.argv[1]))["files"]}
light, cm = rows["light.txt"], rows["cm.txt"]
print("stored: light %d, cm %d (%.3f)" % (light, cm, cm / light), file=sys.stderr)
if not cm <= 0.88 * light:
    sys.exit("light %d, cm %d" % (light, cm))
PYEOF
mixfs_umount
mixfs_mount fg bytes=cm
check_cmp "$WORK/light.txt" "$MNT/light.txt"
mixfs_umount
if "$MIXFS" mount -f -o bytes=zstd "$STORE" "$MNT" 2>"$WORK/err"; then
	fail "bytes=zstd was accepted"
fi
grep -q 'bytes' "$WORK/err" || fail "bytes=zstd: the message does not name the option: $(cat "$WORK/err")"
log PASS
