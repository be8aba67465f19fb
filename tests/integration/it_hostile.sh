#!/bin/bash
# Hostile input: names with every byte value but '/' and NUL (one byte
# each, three bytes each, and one name holding all 254), names of 255 bytes
# (fine) and 256 bytes (ENAMETOOLONG everywhere), a directory chain deeper
# than PATH_MAX, sparse files with data at 2^62 and past, zero- and 1-byte
# files, two writers racing with O_APPEND, and model files with hostile
# heads (GGUF, safetensors, torch zip).  Everything must read back
# the same before and after a remount, and fsck must find nothing wrong.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 missing"
it_start

# hostile.py MNT create|check: builds the tree (create) or checks it
# (check; after a remount).  Exit 1 with a message on any difference.
cat >"$WORK/hostile.py" <<'EOF'
import errno, os, sys
mnt, mode = sys.argv[1].encode(), sys.argv[2]
bad = []

def expect(cond, what):
    if not cond:
        bad.append(what)

def content(name):
    return b'<' + name + b'>' * 3

# --- every byte value -------------------------------------------------
d = os.path.join(mnt, b'bytes')
singles = [bytes([b]) for b in range(1, 256) if b not in (0x2f, 0x2e)]
triples = [b'a' + bytes([b]) + b'z' for b in range(1, 256) if b != 0x2f]
allbytes = bytes(b for b in range(1, 256) if b != 0x2f)  # 254 bytes
names = set(singles + triples + [allbytes, b'.x', b'..x', b'...'])
if mode == 'create':
    os.mkdir(d)
    for n in sorted(names):
        with open(os.path.join(d, n), 'wb') as f:
            f.write(content(n))
    for n in (b'.', b'..'):
        try:
            os.mkdir(os.path.join(d, n))
            bad.append('mkdir %r succeeded' % n)
        except OSError as e:
            expect(e.errno == errno.EEXIST, 'mkdir %r: %s' % (n, e))
    # rename through every byte and back
    for n in triples[::7]:
        os.rename(os.path.join(d, n), os.path.join(d, n + b'\n\x01\xff'))
        os.rename(os.path.join(d, n + b'\n\x01\xff'), os.path.join(d, n))
got = set(os.listdir(d))
expect(got == names, 'listing of bytes/: %d names, %d expected; missing %r, extra %r' %
       (len(got), len(names), sorted(names - got)[:5], sorted(got - names)[:5]))
for n in sorted(names & got):
    with open(os.path.join(d, n), 'rb') as f:
        expect(f.read() == content(n), 'content of %r' % n)

# --- 255 and 256 bytes ---------------------------------------------------
d = os.path.join(mnt, b'long')
n255, n256 = b'L' * 254 + b'\xe9', b'M' * 256
if mode == 'create':
    os.mkdir(d)
    with open(os.path.join(d, n255), 'wb') as f:
        f.write(b'255')
    os.mkdir(os.path.join(d, b'D' * 255))
    os.symlink(n255, os.path.join(d, b'S' * 255))
    os.link(os.path.join(d, n255), os.path.join(d, b'H' * 255))
    for what, fn in (
            ('create', lambda p: os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))),
            ('mkdir', lambda p: os.mkdir(p)),
            ('symlink', lambda p: os.symlink(b'x', p)),
            ('link', lambda p: os.link(os.path.join(d, n255), p)),
            ('rename', lambda p: os.rename(os.path.join(d, n255), p)),
            ('mknod', lambda p: os.mkfifo(p))):
        try:
            fn(os.path.join(d, n256))
            bad.append('%s of a 256-byte name succeeded' % what)
        except OSError as e:
            expect(e.errno == errno.ENAMETOOLONG, '%s of a 256-byte name: %s' % (what, e))
expect(sorted(os.listdir(d)) == sorted([n255, b'D' * 255, b'S' * 255, b'H' * 255]),
       'listing of long/')
with open(os.path.join(d, b'H' * 255), 'rb') as f:
    expect(f.read() == b'255', 'hard link with a 255-byte name')
expect(os.readlink(os.path.join(d, b'S' * 255)) == n255, 'symlink to a 255-byte name')
try:
    os.stat(os.path.join(d, n256))
    bad.append('stat of a 256-byte name succeeded')
except OSError as e:
    expect(e.errno == errno.ENAMETOOLONG, 'stat of a 256-byte name: %s' % e)

# --- deeper than PATH_MAX, walked with directory descriptors ------------
DEPTH, seg = 1200, b'level-%04d'
fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
for i in range(DEPTH):
    if mode == 'create':
        os.mkdir(seg % i, dir_fd=fd)
    nfd = os.open(seg % i, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
if mode == 'create':
    wfd = os.open(b'bottom', os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
    os.write(wfd, b'deep' * 1000)
    os.close(wfd)
rfd = os.open(b'bottom', os.O_RDONLY, dir_fd=fd)
expect(os.read(rfd, 8192) == b'deep' * 1000, 'file at depth %d' % DEPTH)
os.close(rfd)
os.close(fd)

# --- sparse files at huge offsets -----------------------------------------
p = os.path.join(mnt, b'sparse62')
if mode == 'create':
    wfd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    os.pwrite(wfd, b'X', 1 << 62)
    os.pwrite(wfd, b'head', 0)
    os.close(wfd)
expect(os.stat(p).st_size == (1 << 62) + 1, 'size of sparse62: %d' % os.stat(p).st_size)
rfd = os.open(p, os.O_RDONLY)
expect(os.pread(rfd, 1, 1 << 62) == b'X', 'byte at 2^62')
expect(os.pread(rfd, 4, 0) == b'head', 'head of sparse62')
expect(os.pread(rfd, 65536, 1 << 61) == bytes(65536), 'hole at 2^61 reads as zeros')
expect(os.pread(rfd, 16, (1 << 62) + 1) == b'', 'read past EOF at 2^62 + 1')
try:
    expect(os.lseek(rfd, 4096, os.SEEK_DATA) == 1 << 62, 'SEEK_DATA from 4096')
except OSError as e:
    expect(e.errno in (errno.EINVAL, errno.ENXIO), 'SEEK_DATA: %s' % e)
os.close(rfd)
p = os.path.join(mnt, b'trunc62')
if mode == 'create':
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    os.truncate(p, 1 << 62)
expect(os.stat(p).st_size == 1 << 62, 'size of trunc62')
with open(p, 'rb') as f:
    f.seek((1 << 62) - 3)
    expect(f.read() == bytes(3), 'tail of trunc62')
# The last byte an off_t can address: writing it is allowed or EFBIG, and
# whatever happens must stick.
p = os.path.join(mnt, b'sparsemax')
if mode == 'create':
    wfd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.pwrite(wfd, b'Z', (1 << 63) - 2)
    except OSError as e:
        expect(e.errno in (errno.EFBIG, errno.EINVAL), 'write at 2^63 - 2: %s' % e)
    os.close(wfd)
sz = os.stat(p).st_size
expect(sz in (0, (1 << 63) - 1), 'size of sparsemax: %d' % sz)
if sz:
    # (a longer read would overflow off_t: the kernel says EINVAL)
    rfd = os.open(p, os.O_RDONLY)
    expect(os.pread(rfd, 1, (1 << 63) - 2) == b'Z', 'byte at 2^63 - 2')
    os.close(rfd)

# --- zero and one byte ------------------------------------------------------
for n, data in ((b'zero', b''), (b'one', b'\x00'), (b'one-x', b'x')):
    p = os.path.join(mnt, n)
    if mode == 'create':
        with open(p, 'wb') as f:
            f.write(data)
    with open(p, 'rb') as f:
        expect(f.read() == data, 'content of %r' % n)
p = os.path.join(mnt, b'one-grown')
if mode == 'create':
    with open(p, 'wb') as f:
        f.write(b'y')
    os.truncate(p, 0)
    os.truncate(p, 1)
with open(p, 'rb') as f:
    expect(f.read() == b'\x00', 'truncated to 0 and back to 1 reads a zero byte')

# --- hostile model-file heads: one directory, so every new file tries the
# ones before as series references (by name too) and the hints parser and
# the tensors index see them all; each must read back as written ----------
import struct
def gs(x):
    return struct.pack('<Q', len(x)) + x
def gguf(nt, kvs, infos, tail):
    return b'GGUF' + struct.pack('<IQQ', 3, nt, len(kvs)) + b''.join(kvs) + b''.join(infos) + tail
info = lambda name, ne0, off, t=30: gs(name) + struct.pack('<IQQIQ', 2, ne0, 256, t, off)
body = bytes(range(256)) * 1024  # 256 KiB of tensor-like bytes
models = {
    # array counts far beyond the file, nested arrays past the depth limit
    b'huge-array.gguf': gguf(1, [gs(b'a') + struct.pack('<IIQ', 9, 8, 1 << 40)], [], body),
    b'deep.gguf': gguf(1, [gs(b'd') + struct.pack('<IIQIIQ', 9, 9, 1, 9, 9, 1) + b'\0' * 64], [], body),
    # tensors past the end, overlapping, and the same name and size twice
    b'past-end.gguf': gguf(1, [], [info(b't', 1 << 40, 0)], body),
    b'overlap.gguf': gguf(2, [], [info(b'a', 256, 0), info(b'b', 256, 64)], body),
    b'twins-1.gguf': gguf(2, [], [info(b'w', 256, 0), info(b'w', 256, 131072)], body),
    b'twins-2.gguf': gguf(2, [gs(b'x') + struct.pack('<I', 8) + gs(b'longer')],
                          [info(b'w', 256, 0), info(b'w', 256, 131072)], body[::-1]),
    # a safetensors header that claims 100 MiB, and one whose tensors overlap
    b'claim.safetensors': struct.pack('<Q', 100 << 20) + b'{"a":' + body,
    b'overlap.safetensors': (lambda h: struct.pack('<Q', len(h)) + h + body)(
        b'{"a":{"dtype":"BF16","shape":[1024,64],"data_offsets":[0,131072]},'
        b'"b":{"dtype":"BF16","shape":[1024,64],"data_offsets":[65536,196608]}}'),
    # a zip whose first entry (a "data.pkl") never ends
    b'endless.pt': b'PK\3\4' + struct.pack('<HHHHHIIIHH', 20, 8, 0, 0, 0, 0, 0, 0, 12, 0)
                   + b'arc/data.pkl' + body,
}
d = os.path.join(mnt, b'models')
if mode == 'create':
    os.mkdir(d)
    for n, data in models.items():
        with open(os.path.join(d, n), 'wb') as f:
            f.write(data)
for n, data in models.items():
    with open(os.path.join(d, n), 'rb') as f:
        expect(f.read() == data, 'content of models/%r' % n)

if bad:
    for b in bad[:20]:
        print('hostile:', b, file=sys.stderr)
    sys.exit(1)
EOF

# append.py PATH TAG N: N records of 64 bytes with O_APPEND, one write each.
cat >"$WORK/append.py" <<'EOF'
import os, sys
path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for i in range(n):
    rec = ('%s %08d ' % (tag, i)).encode()
    rec += tag.encode() * (63 - len(rec)) + b'\n'
    assert os.write(fd, rec) == 64
os.close(fd)
EOF
# checkappend.py PATH N: both writers' records whole, each once, in order.
cat >"$WORK/checkappend.py" <<'EOF'
import sys
data, n = open(sys.argv[1], 'rb').read(), int(sys.argv[2])
if len(data) != 2 * n * 64:
    sys.exit('size %d, expected %d' % (len(data), 2 * n * 64))
seen = {'A': [], 'B': []}
for off in range(0, len(data), 64):
    rec = data[off:off + 64].decode('latin-1')
    tag, num = rec[0], rec[2:10]
    want = ('%s %s ' % (tag, num))
    want += tag * (63 - len(want)) + '\n'
    if tag not in seen or rec != want:
        sys.exit('torn or overwritten record at %d: %r' % (off, rec))
    seen[tag].append(int(num))
for tag in 'AB':
    if seen[tag] != list(range(n)):
        sys.exit('writer %s: records missing, doubled or out of order' % tag)
EOF

python3 "$WORK/hostile.py" "$MNT" create || fail "hostile tree (create)"
N=3000
python3 "$WORK/append.py" "$MNT/appended" A $N &
a=$!
python3 "$WORK/append.py" "$MNT/appended" B $N &
b=$!
wait "$a" || fail "appender A"
wait "$b" || fail "appender B"
python3 "$WORK/checkappend.py" "$MNT/appended" $N || fail "O_APPEND race"
python3 "$WORK/hostile.py" "$MNT" check || fail "hostile tree (check before remount)"

mixfs_umount
need_mixfs "fsck of the store"
mixfs_mount
python3 "$WORK/hostile.py" "$MNT" check || fail "hostile tree after remount"
python3 "$WORK/checkappend.py" "$MNT/appended" $N || fail "O_APPEND file after remount"
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || fail "fsck of the hostile tree: $(tail -n 20 "$WORK/fsck.out")"
SUMMARY=$(grep -m1 inodes "$WORK/fsck.out" | sed 's/^[^:]*: //')

# fsck prints hostile names escaped: a damaged file whose name holds a
# newline and an escape sequence must come out as one harmless line.
mixfs_mount
rand_file "$WORK/evil" 1 9
cp "$WORK/evil" "$MNT/$(printf 'evil\nname\033[31m')"
mixfs_umount
newest=$(ls "$STORE/packs" | sort | tail -n 1)
size=$(stat -c %s "$STORE/packs/$newest")
printf '\xff' | dd of="$STORE/packs/$newest" bs=1 seek=$((size / 2)) conv=notrunc status=none
rc=0
"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "fsck of a damaged file: exit $rc"
grep -qx 'damaged file: /evil\\012name\\033\[31m' "$WORK/fsck.out" ||
	fail "damaged hostile name not printed escaped: $(grep -a damaged "$WORK/fsck.out")"
[ "$(grep -c '^damaged file:' "$WORK/fsck.out")" = 1 ] || fail "other files reported damaged"
log "PASS: $SUMMARY; fsck clean, and a damaged file's hostile name printed escaped"
