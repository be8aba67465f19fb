#!/bin/bash
# ns_ops.sh MIXFS OPTS|bindfs [N] - a benchmark, not a test (root, fuse3,
# bindfs for the comparison): seconds to create N small files (python
# open/write/close, 1 B - 4 KiB), rename their directory, rm -rf it, on a
# fresh mixfs store mounted with -o OPTS ("" = defaults), or on bindfs
# over the same disk.  Prints "create rename rm (OPTS)".  Run the variants
# one after the other in one session and compare ratios, e.g.
#   for o in ns_sync_ms=0 "" bindfs; do tools/bench/ns_ops.sh build/tools/mixfs "$o" 3000; done
set -e
MIXFS=$1; OPTS=$2; N=${3:-3000}
W=$(mktemp -d "${TMPDIR:-/var/tmp}/mixfs-ns.XXXX"); mkdir -p $W/store $W/mnt $W/src
if [ "$OPTS" = bindfs ]; then
  bindfs --multithreaded --no-allow-other $W/src $W/mnt
else
  $MIXFS mkfs $W/store >/dev/null; $MIXFS mount ${OPTS:+-o $OPTS} $W/store $W/mnt
fi
t() { local a=$(date +%s.%N); "$@"; local b=$(date +%s.%N); awk -v a=$a -v b=$b 'BEGIN{printf "%.2f ", b-a}'; }
t /usr/bin/python3 -c "
import os,sys
d=sys.argv[1]; os.makedirs(d+'/c')
b=os.urandom(4096)
for i in range(int(sys.argv[2])):
    with open(f'{d}/c/f{i}','wb') as f: f.write(b[:1+i%4096])
" $W/mnt $N
t mv $W/mnt/c $W/mnt/d
t rm -rf $W/mnt/d
echo " ($OPTS)"
fusermount3 -u $W/mnt
# the daemon's last commit comes after fusermount3 returns: wait for it
while pgrep -f "mount .*$W/store" >/dev/null; do sleep 0.1; done
rm -rf $W
