#!/bin/bash
# Corruption test: a store of tensor-like files (safetensors bf16, fp32,
# fp16, random, text, and copies sharing chunks) is damaged on purpose:
# random bit flips in pack files (every pack byte belongs to a frame the
# index references) and truncated packs.  In each round:
#   - fsck exits 1 and every injected fault lies in a frame it reports;
#   - through a mount, every read of damaged data fails with EIO and every
#     read that succeeds returns the original bytes (never wrong bytes);
#   - the files fsck names are exactly the files whose reads fail.
# The pristine packs are restored after each round.
#
# Short form: IT_CORRUPT_ROUNDS (10) rounds of IT_CORRUPT_FAULTS (10)
# faults; MIXFS_LONG=1: 100 rounds (1000 faults).  IT_CORRUPT_SEED replays.
. "$(dirname "$0")/lib.sh"
need_mixfs "mixfs fsck and pack files"
command -v python3 >/dev/null || skip "python3 missing"
it_init
mixfs_mkfs

ROUNDS=${IT_CORRUPT_ROUNDS:-$(by_length 10 100)}
FAULTS=${IT_CORRUPT_FAULTS:-10}
SEED=${IT_CORRUPT_SEED:-$(date +%s)}
log "seed $SEED, $ROUNDS rounds of $FAULTS faults"

# The data set, in $WORK/orig.
mkdir "$WORK/orig"
python3 - "$WORK/orig" <<'EOF'
import json, random, struct, sys
out = sys.argv[1]
rng = random.Random(5)

def floats(n, sd):
    return [rng.gauss(0, sd) for _ in range(n)]

def bf16(vals):
    b = struct.pack('<%df' % len(vals), *vals)
    return b''.join(b[i + 2:i + 4] for i in range(0, len(b), 4))

def safetensors(path, tensors):
    header, data = {}, b''
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {'dtype': dtype, 'shape': shape,
                        'data_offsets': [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + data)

for i in range(6):  # bf16 checkpoints, 2 to 4 tensors each
    t = {}
    for k in range(rng.randrange(2, 5)):
        rows = rng.choice((64, 128, 256))
        cols = rng.choice((256, 512, 1024))
        t['layer%d.weight' % k] = ('BF16', [rows, cols], bf16(floats(rows * cols, 0.02)))
    safetensors('%s/model%d.safetensors' % (out, i), t)
for i in range(4):
    n = rng.randrange(64, 128) << 10
    with open('%s/adam%d.fp32' % (out, i), 'wb') as f:
        f.write(struct.pack('<%df' % n, *floats(n, 1e-3)))
for i in range(3):
    n = rng.randrange(64, 256) << 10
    with open('%s/act%d.fp16' % (out, i), 'wb') as f:
        f.write(struct.pack('<%de' % n, *floats(n, 0.5)))
for i in range(3):
    with open('%s/rng%d.bin' % (out, i), 'wb') as f:
        f.write(rng.randbytes(rng.randrange(16, 512) << 10))
for i in range(2):
    with open('%s/log%d.txt' % (out, i), 'w') as f:
        for s in range(rng.randrange(2000, 8000)):
            f.write('step %d loss %.5f lr %.3e grad_norm %.4f\n' %
                    (s, 3 * 0.999 ** s + rng.random() * 0.1, 3e-4, rng.random()))
# Shared chunks: a full copy, and a file that starts like another.
with open('%s/model0.safetensors' % out, 'rb') as f:
    m0 = f.read()
with open('%s/copy_of_model0.safetensors' % out, 'wb') as f:
    f.write(m0)
with open('%s/model0_resumed.safetensors' % out, 'wb') as f:
    f.write(m0[:len(m0) // 2] + rng.randbytes(len(m0) // 2))
EOF
mixfs_mount
cp "$WORK"/orig/* "$MNT/"
mixfs_umount

# Baseline: clean, and every pack byte is a live frame (so each fault hits
# data some file uses).
"$MIXFS" fsck "$STORE" >"$WORK/fsck0.out" 2>&1 || fail "fsck of the fresh store: $(cat "$WORK/fsck0.out")"
grep -q "dead 0 B, orphan 0 B" "$WORK/fsck0.out" ||
	fail "fresh store has unreferenced pack bytes: $(grep '^packs:' "$WORK/fsck0.out")"
cp -a "$STORE/packs" "$WORK/packs.orig"
log "store: $(du -sb "$WORK/orig" | cut -f1) bytes in $(ls "$WORK/orig" | wc -l) files," \
	"$(du -sb "$STORE/packs" | cut -f1) bytes of packs"

# inject.py PACKDIR SEED N: N faults, at most one truncation; prints one
# line per fault: "flip PACK OFF BIT" or "trunc PACK NEWSIZE".
cat >"$WORK/inject.py" <<'EOF'
import os, random, sys
d, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
packs = sorted(p for p in os.listdir(d) if p.endswith('.pack'))
size = {p: os.path.getsize(os.path.join(d, p)) for p in packs}
total = sum(size.values())
for i in range(n):
    x = rng.randrange(total)  # a byte, uniform over all pack bytes
    for p in packs:
        if x < size[p]:
            break
        x -= size[p]
    path = os.path.join(d, p)
    if i == 0 and rng.random() < 0.3:
        os.truncate(path, x)
        total -= size[p] - x  # later faults land in what is left
        size[p] = x
        print('trunc', p[:8], x)
        continue
    bit = rng.randrange(8)
    with open(path, 'r+b') as f:
        f.seek(x)
        b = f.read(1)[0] ^ (1 << bit)
        f.seek(x)
        f.write(bytes([b]))
    print('flip', p[:8], x, bit)
EOF

# readall.py ORIG MNT: reads every file in 64 KiB requests; what a read
# returns must equal the original (a short read stops before a damaged
# page), a read that fails must fail with EIO (then the next 64 KiB block
# is tried).  Prints the names of files with a failed read, one a line.
cat >"$WORK/readall.py" <<'EOF'
import errno, os, sys
orig, mnt = sys.argv[1], sys.argv[2]
B = 65536
bad = 0
for name in sorted(os.listdir(orig)):
    with open(os.path.join(orig, name), 'rb') as f:
        want = f.read()
    fd = os.open(os.path.join(mnt, name), os.O_RDONLY)
    eio = False
    off = 0
    while off < len(want):
        try:
            got = os.pread(fd, B, off)
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            eio = True
            off = (off // B + 1) * B
            continue
        if not got or got != want[off:off + len(got)]:
            print('WRONG BYTES: %s at %d (%d bytes read)' % (name, off, len(got)), file=sys.stderr)
            bad += 1
            break
        off += len(got)
    if os.pread(fd, B, len(want)) != b'':
        print('WRONG BYTES: %s longer than %d' % (name, len(want)), file=sys.stderr)
        bad += 1
    os.close(fd)
    if eio:
        print(name)
sys.exit(1 if bad else 0)
EOF

INJECTED=0
DETECTED=0
DAMAGED_FILES=0
for round in $(seq 1 "$ROUNDS"); do
	python3 "$WORK/inject.py" "$STORE/packs" "$((SEED * 1000 + round))" "$FAULTS" >"$WORK/faults"
	rc=0
	"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || rc=$?
	[ "$rc" = 1 ] || fail "round $round: fsck exit $rc, expected 1: $(tail -n 5 "$WORK/fsck.out")"
	# Every fault inside a frame fsck reports damaged.
	read -r n d < <(python3 - "$WORK/faults" "$WORK/fsck.out" <<'EOF'
import re, sys
frames = [(m.group(1), int(m.group(2)), int(m.group(3))) for m in
          re.finditer(r'in pack ([0-9a-f]{8}) at (\d+) \((\d+) bytes\)', open(sys.argv[2]).read())]
n = d = 0
for line in open(sys.argv[1]):
    kind, pack, off = line.split()[:3]
    off = int(off)
    n += 1
    if kind == 'flip':
        hit = any(p == pack and o <= off < o + l for p, o, l in frames)
    else:  # truncation: some frame of that pack now ends past the cut
        hit = any(p == pack and o + l > off for p, o, l in frames)
    if hit:
        d += 1
    else:
        print('undetected fault:', line.strip(), file=sys.stderr)
print(n, d)
EOF
	)
	INJECTED=$((INJECTED + n))
	DETECTED=$((DETECTED + d))
	[ "$d" = "$n" ] || fail "round $round: $((n - d)) of $n faults not detected by fsck"
	sed -n 's/^damaged file: \///p' "$WORK/fsck.out" | sort >"$WORK/named"
	mixfs_mount
	python3 "$WORK/readall.py" "$WORK/orig" "$MNT" | sort >"$WORK/eio" ||
		fail "round $round: a read returned wrong bytes"
	mixfs_umount
	diff "$WORK/named" "$WORK/eio" >"$WORK/diff" ||
		fail "round $round: fsck names other files than those that fail to read: $(cat "$WORK/diff")"
	[ -s "$WORK/named" ] || fail "round $round: faults injected but no file damaged"
	DAMAGED_FILES=$((DAMAGED_FILES + $(wc -l <"$WORK/named")))
	log "round $round: $n faults ($(cut -d' ' -f1 "$WORK/faults" | sort | uniq -c | xargs)), all" \
		"detected; $(wc -l <"$WORK/named") files damaged = files failing with EIO"
	rm -rf "$STORE/packs"
	cp -a "$WORK/packs.orig" "$STORE/packs"
done

# Restored: clean again, every file intact.
"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || fail "fsck after restoring the packs: $(tail -n 5 "$WORK/fsck.out")"
mixfs_mount
python3 "$WORK/readall.py" "$WORK/orig" "$MNT" >"$WORK/eio" || fail "wrong bytes after restore"
[ ! -s "$WORK/eio" ] || fail "EIO after restoring the packs: $(cat "$WORK/eio")"
mixfs_umount
log "PASS: $INJECTED faults injected, $DETECTED detected by fsck; $DAMAGED_FILES damaged" \
	"files named, each exactly the set whose reads fail with EIO; 0 wrong bytes read"
