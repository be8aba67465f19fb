#!/bin/bash
# Index damage: bytes of STORE/index/data.mdb (LMDB, no page checksums)
# flipped, or whole 4 KiB pages overwritten with random bytes or zeros, in
# the two meta pages and in the data pages.  For each damaged copy of a
# small store (bf16 safetensors, random, text, a copy, a tree, a symlink,
# xattrs): mixfs fsck, stats and gc -n, then a mount reading every file.
#   - no tool is killed by a signal or hangs (a fault in LMDB's map is
#     reported by idx_guard naming data.mdb, exit 2 for fsck, 1 else);
#   - a tool that fails names index/data.mdb (fsck exit 1 lists problems);
#   - a mount is refused naming data.mdb, or serves the files: every read
#     returns the written bytes or fails (EIO), except where fsck reported
#     the store damaged (a page LMDB takes for an empty leaf drops records
#     without an error: files read as holes; fsck reports refcounts);
#   - a meta page LMDB refuses (fsck exit 2, "index/data.mdb) is damaged")
#     is mended by fsck --repair when the other one is sound, and the mount
#     then reads the mended store under the same rules.
# Short form: IT_IDXDMG_CASES (40) cases; MIXFS_LONG=1: 400.  The seed is
# fixed (IT_IDXDMG_SEED replays another).
. "$(dirname "$0")/lib.sh"
need_mixfs "LMDB index of a mixfs store"
command -v python3 >/dev/null || skip "python3 missing"
it_init
mixfs_mkfs
CASES=${IT_IDXDMG_CASES:-$(by_length 40 400)}
SEED=${IT_IDXDMG_SEED:-1}
log "seed $SEED, $CASES cases"

mixfs_mount
python3 - "$MNT" <<'PY'
import os, random, struct, json, sys
m = sys.argv[1]; rng = random.Random(7)
def bf16(n):
    b = struct.pack('<%df' % n, *(rng.gauss(0, .02) for _ in range(n)))
    return b''.join(b[i+2:i+4] for i in range(0, len(b), 4))
os.makedirs(m + '/a/b/c')
for i in range(3):
    raw = bf16(rng.choice((128, 256)) * 1024)
    h = json.dumps({'w': {'dtype': 'BF16', 'shape': [len(raw)//2048, 1024], 'data_offsets': [0, len(raw)]}}).encode()
    h += b' ' * (-len(h) % 8)
    open('%s/a/model%d.safetensors' % (m, i), 'wb').write(struct.pack('<Q', len(h)) + h + raw)
open(m + '/a/b/rand.bin', 'wb').write(rng.randbytes(700 << 10))
with open(m + '/a/b/c/log.txt', 'w') as f:
    for s in range(6000): f.write('step %d loss %.5f\n' % (s, rng.random()))
open(m + '/small.txt', 'w').write('hello\n')
open(m + '/copy.safetensors', 'wb').write(open(m + '/a/model0.safetensors', 'rb').read())
os.symlink('a/b/rand.bin', m + '/link')
os.setxattr(m + '/a/b/rand.bin', 'user.tag', b'v1')
PY
mkdir "$WORK/orig"
cp -a "$MNT/." "$WORK/orig/"
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck0.out" 2>&1 || fail "fsck of the fresh store: $(cat "$WORK/fsck0.out")"
cp -a "$STORE" "$WORK/pristine"

python3 - "$MIXFS" "$WORK" "$SEED" "$CASES" <<'PY'
import errno, os, random, shutil, subprocess, sys, time
mixfs, work, seed, cases = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store, mnt, orig = work + '/store', work + '/mnt', work + '/orig'
PG, T = 4096, 60
fails, counts = [], {}

def inject(path, rng):
    size = os.path.getsize(path)
    kind = rng.choice(['flip', 'page_rand', 'page_zero'])
    region = rng.choice(['meta', 'data'])
    with open(path, 'r+b') as f:
        if kind == 'flip':
            off = (rng.randrange(2) * PG + rng.randrange(160) if region == 'meta'
                   else rng.randrange(2 * PG, size))
            f.seek(off); b = f.read(1)[0]
            f.seek(off); f.write(bytes([b ^ rng.randrange(1, 256)]))
            return '%s %s off=%d' % (kind, region, off)
        pg = rng.randrange(2) if region == 'meta' else rng.randrange(2, size // PG)
        f.seek(pg * PG); f.write(rng.randbytes(PG) if kind == 'page_rand' else bytes(PG))
        return '%s %s page=%d' % (kind, region, pg)

def run(args):
    try:
        p = subprocess.run(args, capture_output=True, timeout=T)
    except subprocess.TimeoutExpired:
        return 'hang', ''
    return p.returncode, (p.stdout + p.stderr).decode(errors='replace')

def mounted():
    return any(l.split()[1] == mnt for l in open('/proc/mounts'))

def read_all():
    """'ok', 'errors' (EIO or others, never other bytes), or 'WRONG ...'."""
    out = 'ok'
    for d, dirs, files in os.walk(orig):
        for n in dirs + files:
            rel = os.path.relpath(os.path.join(d, n), orig)
            po, pm = os.path.join(orig, rel), os.path.join(mnt, rel)
            try:
                if os.path.islink(po):
                    if os.readlink(pm) != os.readlink(po):
                        return 'WRONG symlink ' + rel
                elif os.path.isfile(po):
                    want = open(po, 'rb').read()
                    fd = os.open(pm, os.O_RDONLY)
                    try:
                        off = 0
                        while True:
                            try:
                                got = os.pread(fd, 65536, off)
                            except OSError as e:
                                if e.errno != errno.EIO:
                                    raise
                                out = 'errors'
                                break
                            if got != want[off:off + len(got)]:
                                return 'WRONG bytes %s at %d' % (rel, off)
                            if not got:
                                if off != len(want):
                                    return 'WRONG size %s: %d' % (rel, off)
                                break
                            off += len(got)
                    finally:
                        os.close(fd)
                    if os.getxattr(pm, 'user.tag') != os.getxattr(po, 'user.tag') \
                            if 'user.tag' in os.listxattr(po) else False:
                        return 'WRONG xattr ' + rel
            except OSError:
                out = 'errors'
    return out

def count(k):
    counts[k] = counts.get(k, 0) + 1

for i in range(cases):
    rng = random.Random(seed * 100000 + i)
    subprocess.run(['fusermount3', '-uz', mnt], capture_output=True)
    shutil.rmtree(store)
    shutil.copytree(work + '/pristine', store, symlinks=True)
    what = '%d: %s' % (i, inject(store + '/index/data.mdb', rng))
    rcs, outs = {}, {}
    for tool, args, ok in (('fsck', ['fsck'], (0, 1, 2)), ('stats', ['stats'], (0, 1)),
                           ('gc', ['gc', '-n'], (0, 1))):
        rc, out = run([mixfs] + args + [store])
        rcs[tool], outs[tool] = rc, out
        count('%s %s' % (tool, rc))
        if rc not in ok:
            fails.append('%s: %s exit %s: %s' % (what, tool, rc, out[-300:]))
        elif rc != 0 and 'data.mdb' not in out and not (tool == 'fsck' and 'PROBLEM' in out):
            fails.append('%s: %s exit %s names no file: %s' % (what, tool, rc, out[-300:]))
    rolled = False
    if rcs['fsck'] == 2 and 'LMDB refuses its meta pages' in outs['fsck']:
        # a meta page LMDB refuses: fsck --repair mends it from the other
        # one when it can; the mount below then reads the mended store,
        # judged by a fresh fsck
        rc, out = run([mixfs, 'fsck', '--repair', store])
        if rc not in (0, 1, 2):
            fails.append('%s: fsck --repair exit %s: %s' % (what, rc, out[-300:]))
        elif rc == 2:
            count('meta repair: not possible')
        elif 'a meta page was damaged' not in out:
            fails.append('%s: fsck --repair exit %s without mending the meta page: %s'
                         % (what, rc, out[-300:]))
        else:
            rolled = 'its changes are lost' in out
            count('meta repair: %s, fsck --repair exit %s'
                  % ('copied from the other' if rolled else 'header restored', rc))
            rcs['fsck'], _ = run([mixfs, 'fsck', store])
    log = open(work + '/mount.log', 'w+')
    p = subprocess.Popen([mixfs, 'mount', '-f', store, mnt], stdout=log, stderr=subprocess.STDOUT)
    t0 = time.time()
    while not mounted() and p.poll() is None and time.time() - t0 < T:
        time.sleep(0.05)
    if p.poll() is not None:
        log.seek(0); out = log.read()
        count('mount refused')
        if p.returncode != 1 or 'data.mdb' not in out:
            fails.append('%s: mount exit %s: %s' % (what, p.returncode, out[-300:]))
        continue
    if not mounted():
        p.kill(); p.wait()
        fails.append(what + ': mount hangs')
        continue
    r = read_all()
    alive = p.poll() is None
    subprocess.run(['fusermount3', '-u', mnt], capture_output=True)
    try:
        rc = p.wait(timeout=T)
    except subprocess.TimeoutExpired:
        p.kill(); rc = 'hang'
    log.seek(0); out = log.read()
    count('mount read ' + r.split()[0])
    if not alive and rc == 1 and 'crashed reading it' in out and 'data.mdb' in out:
        count('mount crashed naming data.mdb')  # LMDB on a damaged page: idx_guard
    elif not alive or rc not in (0, 1):
        fails.append('%s: daemon exit %s: %s' % (what, rc, out[-300:]))
    if r.startswith('WRONG') and rolled:
        count('mount read older: the repair said the last commit is lost')
    elif r.startswith('WRONG') and rcs['fsck'] == 0:
        fails.append('%s: %s, and fsck found nothing' % (what, r))
print('index damage: %d cases: %s' % (cases, ', '.join('%s: %d' % kv for kv in sorted(counts.items()))),
      file=sys.stderr)
for f in fails:
    print('FAIL', f, file=sys.stderr)
sys.exit(1 if fails else 0)
PY
log "PASS: $CASES damaged indexes; no crash or hang of a tool or the daemon, every failure names" \
	"data.mdb, no read returned other bytes than written unless fsck reported damage"
