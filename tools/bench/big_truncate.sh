#!/bin/bash
# big_truncate.sh MIXFS [N] - a benchmark, not a test (root, fuse3): a file
# of N extents (4 KiB every 64 KiB, default 300000: a 19 GB sparse file) on
# a fresh store at the default level, truncated three ways: truncate(2)
# to a tenth of its size, open(O_TRUNC) while another writer commits (a
# rewrite: the previous version kept as a shadow), and a hole punched over
# half of it.  While each runs, a second process writes and fsyncs 4 KiB
# files in a loop; printed: the operation's seconds, the slowest of those
# fsyncs (how long other commits waited) and the growth of the daemon's
# anonymous memory (RssAnon, its peak sampled every 5 ms: LMDB's dirty
# pages; the index's mapped pages are not counted).  Run two binaries one after the other and compare, e.g.
#   tools/bench/big_truncate.sh /tmp/oldbuild/tools/mixfs; tools/bench/big_truncate.sh build/tools/mixfs
set -e
MIXFS=$1; N=${2:-300000}
W=$(mktemp -d "${TMPDIR:-/var/tmp}/mixfs-trunc.XXXX"); mkdir -p $W/store $W/mnt
trap 'mountpoint -q $W/mnt && fusermount3 -u $W/mnt; rm -rf $W' EXIT
$MIXFS mkfs $W/store >/dev/null
$MIXFS mount $W/store $W/mnt
PID=$(pgrep -nf "mount $W/store")
make_file() {
	/usr/bin/python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
b = bytearray(os.urandom(4096))
for i in range(int(sys.argv[2])):
    b[:8] = i.to_bytes(8, 'little')
    os.pwrite(fd, b, i * 65536)
os.fsync(fd); os.close(fd)" "$1" "$N"
}
# run NAME PYTHON-STATEMENT: the statement timed, fsyncs of small files beside it
run() {
	/usr/bin/python3 -c "
import os, sys, time, threading
d, stmt, pid = sys.argv[1], sys.argv[2], sys.argv[4]
stop, worst, n = False, 0.0, 0
def anon():
    with open(f'/proc/{pid}/status') as f:
        return next(int(l.split()[1]) for l in f if l.startswith('RssAnon:'))
base = peak = anon()
def sampler():
    global peak
    while not stop:
        peak = max(peak, anon()); time.sleep(0.005)
def writer():
    global worst, n
    while not stop:
        t0 = time.monotonic()
        fd = os.open(f'{d}/small-{n % 50}', os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, os.urandom(4096)); os.fsync(fd); os.close(fd)
        worst = max(worst, time.monotonic() - t0); n += 1
th = threading.Thread(target=writer); th.start()
sm = threading.Thread(target=sampler); sm.start(); time.sleep(0.5)
t0 = time.monotonic(); exec(stmt); dt = time.monotonic() - t0
time.sleep(0.5); stop = True; th.join(); sm.join()
print(f'{sys.argv[3]:<24} {dt:6.2f} s   slowest fsync beside it {worst:5.2f} s ({n:3} fsyncs)'
      f'   daemon memory +{(peak - base) / 1024:.0f} MB')
" $W/mnt "$2" "$1" $PID
}
make_file $W/mnt/big
run "truncate to 1/10" "os.truncate(d + '/big', $N * 65536 // 10)"
make_file $W/mnt/big
run "open O_TRUNC (rewrite)" "fd = os.open(d + '/big', os.O_WRONLY | os.O_TRUNC); os.write(fd, b'x' * 4096); os.close(fd)"
make_file $W/mnt/big
run "hole over half" "import fcntl, ctypes; libc = ctypes.CDLL(None, use_errno=True); fd = os.open(d + '/big', os.O_WRONLY); assert libc.fallocate(fd, 3, ctypes.c_long(0), ctypes.c_long($N * 65536 // 2)) == 0; os.close(fd)"
echo "($MIXFS, $N extents)"
