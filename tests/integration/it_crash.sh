#!/bin/bash
# Crash test: a writer creates, rewrites, appends to, copies (copy_file_range)
# and deletes files with random sizes and contents, fsyncs each one and only
# then records it as
# acknowledged (with its SHA-256); the daemon (mixfs mount -f) is killed with
# SIGKILL at a random moment.  After every kill: fsck of the dead store must
# exit 0, and after the remount every acknowledged file must be bit-exact
# and new writes must work.  Then gc is cut short after each of its steps
# (MIXFS_GC_STOP) and killed at random moments, with the same checks.
#
# Short form: IT_CRASH_CYCLES (default 5) cycles.  Long form: MIXFS_LONG=1
# (default 50 cycles, IT_CRASH_CYCLES overrides).  IT_CRASH_SEED replays a
# run (the seed is printed).
. "$(dirname "$0")/lib.sh"
need_mixfs "kill -9 of the mixfs daemon"
command -v python3 >/dev/null || skip "python3 missing"
it_init
mixfs_mkfs

CYCLES=${IT_CRASH_CYCLES:-$(by_length 5 50)}
SEED=${IT_CRASH_SEED:-$(date +%s)}
RANDOM=$SEED
log "seed $SEED, $CYCLES cycles"
ACK=$WORK/ack.log
: >"$ACK"
acks() { grep -c "$1" "$ACK" || true; } # lines of the log matching $1 (0: not an error)

# The acknowledgement log: "A NAME SHA256 SIZE" once NAME is durable with
# that content, "D NAME" before NAME is deleted or changed.
cat >"$WORK/acklib.py" <<'EOF'
def load(ack):
    files = {}  # name -> (sha, size) of what is acknowledged
    for line in open(ack):
        p = line.split()
        if p[0] == 'A':
            files[p[1]] = (p[2], int(p[3]))
        elif p[0] == 'D':
            files.pop(p[1], None)
    return files
EOF

# writer.py MNT ACK SEED: runs until the file system goes away (exit 0) or
# something other than a dead connection fails (exit 2).
cat >"$WORK/writer.py" <<'EOF'
import errno, hashlib, os, random, struct, sys
from acklib import load
mnt, ack, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
GONE = (errno.ENOTCONN, errno.ECONNABORTED, errno.EIO, errno.ENODEV)
LIMIT = 24 << 20  # bytes kept acknowledged: verification stays quick

files = load(ack)
log = open(ack, 'a')

def record(line):
    log.write(line + '\n')
    log.flush()
    os.fsync(log.fileno())

def content(size):
    kind = rng.randrange(4)
    r = random.Random(rng.randrange(24))  # few seeds: identical chunks recur (dedup)
    if kind == 0:
        return r.randbytes(size)
    if kind == 1:  # bf16-like weights (python is slow at this: capped)
        size = min(size, 512 << 10)
        n = size // 2 + 1
        v = struct.pack('<%df' % n, *(r.gauss(0, 0.02) for _ in range(n)))
        return b''.join(v[i + 2:i + 4] for i in range(0, 4 * n, 4))[:size]
    if kind == 2:  # mostly zeros
        b = bytearray(size)
        for _ in range(size // 4096):
            b[r.randrange(size)] = r.randrange(256)
        return bytes(b)
    return (r.randbytes(4096) * (size // 4096 + 1))[:size]

def size():
    c = rng.random()
    if c < 0.1:
        return rng.choice((0, 1))
    if c < 0.4:
        return rng.randrange(2, 65536)
    return rng.randrange(65536, 3 << 20)

def write_fd(fd, data):
    off = 0
    while off < len(data):
        n = min(len(data) - off, rng.choice((4096, 65536, 131072, 1 << 20)))
        off += os.write(fd, data[off:off + n])

def ack(name, data):
    record('A %s %s %d' % (name, hashlib.sha256(data).hexdigest(), len(data)))
    files[name] = (hashlib.sha256(data).hexdigest(), len(data))

def read_checked(name, before):
    # an acknowledged file, read back and checked first
    with open(os.path.join(mnt, name), 'rb') as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != files[name][0]:
        print('writer: %s reads back wrong before %s' % (name, before), file=sys.stderr)
        sys.exit(2)
    return data

def create(name, data, tmp):
    path = os.path.join(mnt, name)
    target = path + '.tmp' if tmp else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_fd(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if tmp:  # the checkpoint pattern: temp file, rename, fsync the directory
        os.rename(target, path)
        dfd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
    ack(name, data)

i = 0
try:
    while True:
        i += 1
        total = sum(s for _, s in files.values())
        op = rng.random()
        names = sorted(files)
        if names and (total > LIMIT or op < 0.1):
            name = rng.choice(names)
            record('D ' + name)  # not guaranteed any more from here on
            del files[name]
            os.unlink(os.path.join(mnt, name))
        elif names and op < 0.25:
            # Append: the old bytes are read back (and checked) first.
            name = rng.choice(names)
            old = read_checked(name, 'append')
            record('D ' + name)
            del files[name]
            add = content(rng.randrange(1, 1 << 20))
            fd = os.open(os.path.join(mnt, name), os.O_WRONLY | os.O_APPEND)
            try:
                write_fd(fd, add)
                os.fsync(fd)
            finally:
                os.close(fd)
            ack(name, old + add)
        elif names and op < 0.35:
            name = rng.choice(names)  # rewrite in place (truncate + write)
            record('D ' + name)
            del files[name]
            create(name, content(size()), False)
        elif op < 0.5:
            # The next checkpoint of a training run: bf16 weights = a fixed
            # base + fresh noise, the same file rewritten (directly or via
            # temp + rename): what series coding against the previous
            # version is for.
            k = rng.randrange(3)
            name = 'series%d' % k
            base = random.Random(1000 + k)
            n = 96 << 10
            vals = [base.gauss(0, 0.02) + rng.gauss(0, 0.0005) for _ in range(n)]
            b = struct.pack('<%df' % n, *vals)
            if name in files:
                record('D ' + name)
                del files[name]
            create(name, b''.join(b[j + 2:j + 4] for j in range(0, len(b), 4)),
                   rng.random() < 0.5)
        elif names and op < 0.6:
            # A copy inside the mount (copy_file_range: the copy maps the
            # source's chunks): the source from an offset on, after a
            # prefix written first; the source is read back (and checked).
            src = rng.choice(names)
            old = read_checked(src, 'a copy')
            off = rng.randrange(len(old) + 1) if rng.random() < 0.5 else 0
            pre = content(rng.choice((0, 4096, 12345)))
            name = 'c%d_%d' % (seed, i)
            fd = os.open(os.path.join(mnt, name), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            fin = os.open(os.path.join(mnt, src), os.O_RDONLY)
            try:
                write_fd(fd, pre)
                done = 0
                while done < len(old) - off:
                    k = os.copy_file_range(fin, fd, len(old) - off - done, off + done,
                                           len(pre) + done)
                    if k == 0:
                        break
                    done += k
                os.fsync(fd)
            finally:
                os.close(fin)
                os.close(fd)
            ack(name, pre + old[off:off + done])
        else:
            create('f%d_%d' % (seed, i), content(size()), rng.random() < 0.3)
except OSError as e:
    if e.errno in GONE:
        sys.exit(0)
    raise
EOF

# verify.py MNT ACK: every acknowledged file bit-exact.  Prints
# "FILES BYTES LOST_FILES LOST_BYTES".
cat >"$WORK/verify.py" <<'EOF'
import hashlib, os, sys
from acklib import load
mnt, ack = sys.argv[1], sys.argv[2]
files = load(ack)
nb = lost = lostb = 0
for name, (sha, size) in sorted(files.items()):
    try:
        with open(os.path.join(mnt, name), 'rb') as f:
            data = f.read()
        ok = len(data) == size and hashlib.sha256(data).hexdigest() == sha
        why = 'size %d, want %d' % (len(data), size) if len(data) != size else 'content differs'
    except OSError as e:
        ok, why = False, str(e)
    if not ok:
        print('LOST %s: %s' % (name, why), file=sys.stderr)
        lost += 1
        lostb += size
    nb += size
print(len(files), nb, lost, lostb)
EOF

FSCK_RUNS=0
# fsck must exit 0 on the store as the crash left it.
check_fsck() {
	local rc=0
	"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || rc=$?
	FSCK_RUNS=$((FSCK_RUNS + 1))
	if [ "$rc" != 0 ]; then
		cat "$WORK/fsck.out" >&2
		fail "fsck after $1 exited $rc"
	fi
}

verify() {
	local out n b lost lostb
	out=$(python3 "$WORK/verify.py" "$MNT" "$ACK") || fail "verify.py failed"
	read -r n b lost lostb <<<"$out"
	[ "$lost" = 0 ] || fail "$1: $lost acknowledged files ($lostb bytes) lost or wrong"
	VERIFIED_FILES=$n
	VERIFIED_BYTES=$b
}

# Kill the daemon, wait for the writer to see the dead connection
# (ENOTCONN; after the unmount below its paths would silently lead into
# the empty mount point instead), then drop the dead mount.
crash() {
	kill -9 "$MOUNT_PID"
	wait "$MOUNT_PID" 2>/dev/null || true # killed: status 137 is the point
	MOUNT_PID=
	local wrc=0
	wait "$WRITER_PID" || wrc=$?
	fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
	MOUNTED=0
	[ "$wrc" = 0 ] || fail "writer failed (exit $wrc) in cycle $1: $(tail -n 5 "$WORK/writer.err")"
}

LEVELS=(raw fast mix)
for cycle in $(seq 1 "$CYCLES"); do
	# rebase_idle=20: the series files get turned around (reverse deltas)
	# between the writer's files, so kills land in rebase too; every other
	# cycle with lazy=all: new chunks at fast, series chunks with hints,
	# recompressed (and their references turned into reverse deltas) by
	# the same rebase
	LAZY=auto
	[ $((cycle % 2)) = 0 ] && LAZY=all
	mixfs_mount fg "level=${LEVELS[cycle % 3]},rebase_idle=20,lazy=$LAZY"
	verify "remount before cycle $cycle"
	python3 "$WORK/writer.py" "$MNT" "$ACK" "$cycle" 2>"$WORK/writer.err" &
	WRITER_PID=$!
	# 0.3 .. 3.3 s: sometimes mid-file, sometimes between files.
	sleep "$((RANDOM % 3)).$((RANDOM % 10))$((RANDOM % 10))"
	# fsck next to the running mount, read-only, while the writer writes.
	"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 ||
		fail "read-only fsck next to the mount in cycle $cycle: $(grep -v '^  ' "$WORK/fsck.out" | head -n 20)"
	grep -q "store in use" "$WORK/fsck.out" || fail "fsck did not notice the mount"
	FSCK_RUNS=$((FSCK_RUNS + 1))
	kill -0 "$WRITER_PID" 2>/dev/null || { cat "$WORK/writer.err" >&2; fail "writer died early"; }
	crash "$cycle"
	check_fsck "kill -9 in cycle $cycle"
	log "cycle $cycle: killed, fsck clean ($(acks '^A') acknowledgements so far)"
done
[ "$(acks '^A')" -gt 0 ] || fail "the writer never got a file acknowledged"

# gc crash-safety on the store the kills left: delete files cleanly (so gc
# has frames to move), then kill gc at growing delays until one run
# finishes, and cut it after each of its steps.
delete_some() { # every Nth acknowledged file
	mixfs_mount fg
	verify "remount before deleting"
	PYTHONPATH=$WORK python3 - "$MNT" "$ACK" "$1" <<'EOF'
import os, sys
from acklib import load
mnt, ack, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
live = load(ack)
with open(ack, 'a') as log:
    for i, name in enumerate(sorted(live)):
        if i % nth == 0:
            log.write('D %s\n' % name)
            os.unlink(os.path.join(mnt, name))
EOF
	mixfs_umount
	check_fsck "deleting files"
}

delete_some 3
# --verify decodes every frame it copies: slower, easier to hit mid-way.
GC_KILLS=0
for d in 0.02 0.05 0.1 0.2 0.4 0.8 1.6 3.2; do
	"$MIXFS" gc -t 0 --verify "$STORE" >"$WORK/gc.out" 2>&1 &
	gpid=$!
	sleep "$d"
	kill -9 "$gpid" 2>/dev/null || true # it may have finished already
	wait "$gpid" 2>/dev/null || true    # 137 when killed
	check_fsck "gc killed after $d s"
	grep -q "packs scanned" "$WORK/gc.out" && break # finished before the kill
	GC_KILLS=$((GC_KILLS + 1))
done
delete_some 2
for stop in copy sync commit; do
	rc=0
	MIXFS_GC_STOP=$stop "$MIXFS" gc -t 0 "$STORE" >"$WORK/gc.out" 2>&1 || rc=$?
	[ "$rc" = 1 ] && grep -q "test hook" "$WORK/gc.out" ||
		fail "gc with MIXFS_GC_STOP=$stop: exit $rc: $(cat "$WORK/gc.out")"
	check_fsck "gc stopped after $stop"
done
"$MIXFS" gc -t 0 "$STORE" >"$WORK/gc.out" 2>&1 || fail "gc: $(cat "$WORK/gc.out")"
check_fsck "a complete gc"
grep -q "dead 0 B, orphan 0 B" "$WORK/fsck.out" ||
	fail "space left after a complete gc: $(grep '^packs:' "$WORK/fsck.out")"

# Everything acknowledged is still there, and the store takes new writes.
mixfs_mount fg
verify "the last gc"
rand_file "$WORK/new" 3 77
cp "$WORK/new" "$MNT/new-after-crashes"
sync -f "$MNT"
check_cmp "$WORK/new" "$MNT/new-after-crashes"
mixfs_umount
check_fsck "the final unmount"
log "PASS: $CYCLES kill -9 cycles survived, $GC_KILLS gc kills + 3 gc step cuts;" \
	"$VERIFIED_FILES files ($VERIFIED_BYTES bytes) verified at the end," \
	"$(acks '^A') acknowledgements in all ($(acks '^A c') of copies)," \
	"$FSCK_RUNS fsck runs clean, 0 bytes lost"
