#!/bin/bash
# Python mmap: reads, MAP_SHARED writes + flush, visible to read() and after
# reopen; a write extending via truncate + mmap; a safetensors-style reader
# that jumps between tensors.
. "$(dirname "$0")/lib.sh"
it_start
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || skip "python3 missing"

rand_file "$WORK/ref.bin" 4 11
cp "$WORK/ref.bin" "$MNT/m.bin"

"$PY" - "$MNT/m.bin" "$WORK/ref.bin" <<'PYEOF'
import mmap, os, random, sys
path, ref = sys.argv[1], sys.argv[2]
want = bytearray(open(ref, "rb").read())
rng = random.Random(42)

def check(where):
    with open(path, "rb") as f:
        got = f.read()
    if got != want:
        i = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))
        sys.exit(f"mmap: {where}: mismatch at offset {i} (sizes {len(got)} vs {len(want)}): "
                 f"expected {bytes(want[i:i+8]).hex()} got {got[i:i+8].hex()}")

# Read through a private read-only map at random places.
with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
    if len(m) != len(want):
        sys.exit(f"mmap: map length {len(m)} != {len(want)}")
    for _ in range(300):
        o = rng.randrange(len(want)); n = rng.randrange(1, 70000)
        if m[o:o + n] != want[o:o + n]:
            sys.exit(f"mmap read mismatch at {o}+{n}")
    if m[:] != want:
        sys.exit("mmap full read mismatch")

# Shared writes at odd offsets, flushed, then checked with read().
with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
    for _ in range(200):
        o = rng.randrange(len(want)); n = rng.randrange(1, 9000)
        n = min(n, len(want) - o)
        data = os.urandom(n)
        m[o:o + n] = data
        want[o:o + n] = data
    m.flush()
check("after shared writes + flush")

# Mixed: write() through a descriptor, then read it through a fresh map.
with open(path, "r+b") as f:
    f.seek(123457); data = os.urandom(100000); f.write(data); f.flush(); os.fsync(f.fileno())
    want[123457:123457 + len(data)] = data
with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
    if m[:] != want:
        sys.exit("map after write() does not see the write")

# Extend with ftruncate, fill the new part through the map.
with open(path, "r+b") as f:
    old = len(want)
    f.truncate(old + 300001)
    want += bytes(300001)
    with mmap.mmap(f.fileno(), 0) as m:
        data = os.urandom(250000)
        m[old + 17:old + 17 + len(data)] = data
        want[old + 17:old + 17 + len(data)] = data
        m.flush()
check("after truncate-extend + mmap write")
open(ref, "wb").write(want)
PYEOF

# Still right after the page cache is gone: remount.
mixfs_umount
mixfs_mount
check_cmp "$WORK/ref.bin" "$MNT/m.bin"

# A safetensors file read by jumping between tensors through mmap.
"$PY" - "$MNT/model.safetensors" <<'PYEOF'
import json, mmap, random, struct, sys
path = sys.argv[1]
rng = random.Random(7)
tensors, blobs, off = {}, [], 0
for i in range(40):
    n = rng.randrange(1000, 60000)
    b = struct.pack("<%df" % n, *(rng.gauss(0, 0.02) for _ in range(n)))
    tensors[f"layer{i}.weight"] = {"dtype": "F32", "shape": [n], "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
hdr = json.dumps(tensors).encode()
hdr += b" " * (-len(hdr) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(hdr))); f.write(hdr)
    for b in blobs: f.write(b)
with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
    (hl,) = struct.unpack("<Q", m[:8])
    meta = json.loads(m[8:8 + hl])
    names = list(meta); rng.shuffle(names)
    for name in names:
        s, e = meta[name]["data_offsets"]
        i = int(name[5:name.index(".")])
        if m[8 + hl + s:8 + hl + e] != blobs[i]:
            sys.exit(f"safetensors tensor {name} differs")
PYEOF
log PASS
