#!/bin/bash
# soak_series.sh - a checkpoint-series soak (not a test: run by hand, for
# as long as you like; docs/RELIABILITY.md records runs).
#
#   tools/soak_series.sh [-d SECONDS] [-b BUILD] [-s SEED]
#
# A training run's saves, at random, onto one mount whose background work
# runs all the time at normal priority (series references with chains of
# at most 3, rebase after 50 ms idle, lazy=all, gc every second, 16 MiB
# packs, tiny caches):
# each round writes the next version of a bf16 checkpoint (two tensors,
# ~6 MiB; 30% of the elements moved in their low bits, now and then a
# tensor left alone or rewritten whole) in one of four ways: a new file in
# a new sibling directory (checkpoint-N/model.safetensors), a new file in
# one directory (run/ckpt-N.safetensors), a file written under a
# temporary name and renamed over the last one (rsync's way), or the same
# file overwritten in place.  Each write ends with fsync.  Old versions are
# deleted as a trainer's save_total_limit does (the newest 3 kept), and
# now and then one from the middle.  After every round every file kept
# is read back and compared (SHA-256), and in one round of three the
# writer pauses up to 0.9 s (idle spells for rebase, lazy recompression
# and gc to start in, and be cut short); every 4th round the daemon is
# either unmounted or killed with SIGKILL, the store checked by fsck (must
# find no problem) and mounted again.  Stops at the first failure, keeping
# the logs and the store in the work directory.
set -euo pipefail
DUR=1800 BUILD=build SEED=$RANDOM
while getopts "d:b:s:h" o; do
	case $o in
	d) DUR=$OPTARG ;;
	b) BUILD=$OPTARG ;;
	s) SEED=$OPTARG ;;
	*) sed -n '2,25p' "$0" >&2; exit 2 ;;
	esac
done
M=$(realpath "$BUILD/tools/mixfs")
PY=${PYTHON:-/usr/bin/python3}
[ -x "$M" ] || { echo "no $M: build first (ninja -C $BUILD)" >&2; exit 1; }
"$PY" -c 'import numpy' 2>/dev/null || { echo "$PY has no numpy (apt-get install python3-numpy)" >&2; exit 1; }
W=$(mktemp -d /var/tmp/mixfs-sersoak.XXXXXX)
S=$W/store MNT=$W/mnt
OPTS=cache=2M,dirty=4M,inflight=2M,readahead=2,pack_size=16M,gc_interval=1,rebase_idle=50,lazy=all,bg=normal,commit_ms=10,ns_sync_ms=5,max_ref_chain=3
mkdir "$MNT"
"$M" mkfs "$S" >/dev/null
PID=
mount_it() {
	"$M" mount -f -o "$OPTS" "$S" "$MNT" >>"$W/daemon.log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do mountpoint -q "$MNT" && return 0; sleep 0.1; done
	echo "mount did not come up ($W/daemon.log)" >&2
	exit 1
}
stop_it() { # $1: umount or kill
	if [ "$1" = kill ]; then
		kill -9 "$PID"
		wait "$PID" 2>/dev/null || true
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
	else
		fusermount3 -u "$MNT"
		wait "$PID" || { echo "daemon exited $? ($W/daemon.log)" >&2; exit 1; }
	fi
}
mount_it
trap 'mountpoint -q "$MNT" && fusermount3 -u "$MNT"' EXIT
echo "series soak in $W for $DUR s, seed $SEED"
: >"$W/manifest"
round=0
end=$(($(date +%s) + DUR))
while [ "$(date +%s)" -lt "$end" ]; do
	round=$((round + 1))
	# the writer: writes version $round, keeps the manifest (path sha) of
	# the files that must exist, deletes the old ones
	"$PY" - "$MNT" "$W" "$round" "$SEED" <<'PYEOF' || { echo "round $round: writer failed (logs in $W)" >&2; exit 1; }
import hashlib, json, os, struct, sys
import numpy as np
mnt, w, v, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng([seed, v])
state = os.path.join(w, "state.npz")
shapes = {"a": (768, 2048), "b": (1024, 1536)}
if v == 1:
    st = {k: (rng.standard_normal(s, dtype=np.float32) * 0.02).view(np.uint32) >> 16 for k, s in shapes.items()}
    st = {k: a.astype(np.uint16) for k, a in st.items()}
else:
    st = dict(np.load(state))
for k, a in st.items():
    r = rng.random()
    if r < 0.15:
        continue  # a frozen tensor: dedups whole
    if r < 0.2:
        a[...] = ((rng.standard_normal(a.shape, dtype=np.float32) * 0.02).view(np.uint32) >> 16).astype(np.uint16)
        continue
    m = rng.random(a.shape) < 0.3
    a[m] ^= rng.integers(1, 4, int(m.sum()), dtype=np.uint16)
np.savez(state, **st)
hdr = {"__metadata__": {"step": str(v * 40)}}
off = 0
for k, a in st.items():
    hdr[k] = {"dtype": "BF16", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
    off += a.nbytes
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
blob = struct.pack("<Q", len(h)) + h + b"".join(a.tobytes() for a in st.values())
sha = hashlib.sha256(blob).hexdigest()
man = {}
with open(os.path.join(w, "manifest")) as f:
    for line in f:
        p, s = line.split()
        man[p] = s
def put(path, data, inplace=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (0 if inplace else os.O_TRUNC), 0o644)
    try:
        step = int(rng.choice([4096, 65536, 1 << 20, len(data)]))
        for i in range(0, len(data), step):
            os.pwrite(fd, data[i:i + step], i)
        if inplace:
            os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)
way = int(rng.integers(4))
if way == 0:
    p = f"ck/checkpoint-{v * 40}/model.safetensors"
elif way == 1:
    p = f"run/ckpt-{v:05d}.safetensors"
elif way == 2:
    p = "sync/model.safetensors"
    tmp = f"sync/.model.safetensors.{v}"
    put(os.path.join(mnt, tmp), blob)
    os.rename(os.path.join(mnt, tmp), os.path.join(mnt, p))
    dfd = os.open(os.path.join(mnt, "sync"), os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
else:
    p = "live/latest.safetensors"
if way in (0, 1):
    put(os.path.join(mnt, p), blob)
elif way == 3:
    put(os.path.join(mnt, p), blob, inplace=True)
man[p] = sha
# save_total_limit: the newest 3 of each numbered series, now and then
# one from the middle
for prefix in ("ck/", "run/"):
    ps = sorted((q for q in man if q.startswith(prefix)), key=lambda q: int("".join(c for c in q if c.isdigit())))
    drop = ps[:-3]
    if len(ps) >= 3 and rng.random() < 0.2:
        drop.append(ps[int(rng.integers(len(ps) - 1))])
    for q in set(drop):
        os.unlink(os.path.join(mnt, q))
        if q.startswith("ck/"):
            os.rmdir(os.path.dirname(os.path.join(mnt, q)))
        del man[q]
with open(os.path.join(w, "manifest.new"), "w") as f:
    for q, s in sorted(man.items()):
        print(q, s, file=f)
os.replace(os.path.join(w, "manifest.new"), os.path.join(w, "manifest"))
print(f"round {v}: way {way}, {p}, {len(man)} files", flush=True)
PYEOF
	(cd "$MNT" && awk '{ print $2 "  " $1 }' "$W/manifest" | sha256sum -c --quiet) >"$W/check.log" 2>&1 ||
		{ echo "round $round: a file kept reads back different ($W/check.log)" >&2; exit 1; }
	# an idle spell now and then: rebase turns deltas around, lazy
	# chunks are recompressed, gc compacts (while the next round writes)
	[ $((RANDOM % 3)) != 0 ] || sleep 0.$((RANDOM % 9 + 1))
	if [ $((round % 4)) = 0 ]; then
		how=umount
		[ $(((round / 4) % 2)) = 0 ] || how=kill
		stop_it "$how"
		"$M" fsck "$S" >"$W/fsck.log" 2>&1 || { echo "round $round: fsck after $how found problems ($W/fsck.log)" >&2; exit 1; }
		mount_it
		(cd "$MNT" && awk '{ print $2 "  " $1 }' "$W/manifest" | sha256sum -c --quiet) >"$W/check.log" 2>&1 ||
			{ echo "round $round: after $how, a file kept reads back different ($W/check.log)" >&2; exit 1; }
	fi
done
"$M" stats "$MNT" | head -n 12
echo "$round rounds, no mismatch, fsck clean"
stop_it umount
trap - EXIT
rm -rf "$W"
