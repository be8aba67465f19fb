# lib.sh - shell helpers the bench scripts share (sourced, not run):
# mounting a FUSE file system in the background and waiting for it, cold
# caches, the daemon's CPU time, numbers from `mixfs stats --json`.
#
# The caller sets MNT (mount point) and PY (a python3 with json), and keeps
# PID empty until a mount (bench_workdir sets MNT and PID); fuse_mount sets
# PID, fuse_umount clears it.

now() { date +%s.%N; }

# bench_workdir NAME: a fresh work directory W=/var/tmp/mixfs-NAME.XXXXXX
# holding the mount point MNT (PID cleared), unmounted and removed at exit.
bench_workdir() {
	W=$(mktemp -d "/var/tmp/mixfs-$1.XXXXXX")
	MNT=$W/mnt PID=
	mkdir "$MNT"
	trap 'fuse_cleanup; rm -rf "$W"' EXIT
}

# need_corpus: exit unless $CACHE holds the codec corpora of corpus.py.
need_corpus() {
	[ -r "$CACHE/corpus.json" ] || { echo "no $CACHE/corpus.json: run tools/bench/corpus.py $CACHE first" >&2; exit 1; }
}

# fuse_mount LOG CMD...: run CMD (a FUSE daemon in the foreground, mounting
# on $MNT) in the background, its stderr appended to LOG; wait up to 30 s
# for the mount.  Exits the script when the daemon dies or never mounts.
fuse_mount() {
	local log=$1
	shift
	"$@" 2>>"$log" &
	PID=$!
	for _ in $(seq 1 300); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$PID" 2>/dev/null || { echo "mount failed: $(tail -5 "$log")" >&2; exit 1; }
		sleep 0.1
	done
	echo "not mounted on $MNT after 30 s" >&2
	exit 1
}

# fuse_umount: unmount $MNT; the daemon must exit with status 0.
fuse_umount() {
	fusermount3 -u "$MNT"
	wait "$PID" || { echo "daemon exited with status $? at unmount" >&2; exit 1; }
	PID=
}

# fuse_cleanup: for an EXIT trap (never fails).
fuse_cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	[ -z "$PID" ] || wait "$PID" 2>/dev/null
	PID=
	return 0
}

# drop_caches: sync and empty the page cache (root only); warns once when
# it cannot, since reads are then not cold.
COLD=1
drop_caches() {
	sync
	if ! echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
		[ "$COLD" = 1 ] && echo "warning: cannot drop caches (not root?): reads are not cold" >&2
		COLD=0
	fi
	return 0
}

# daemon_cpu: CPU seconds the daemon's threads have run so far.
daemon_cpu() {
	cat /proc/"$PID"/task/*/schedstat 2>/dev/null | awk '{ n += $1 } END { printf "%.4f", n / 1e9 }'
}

# wait_quiet: wait until the daemon has been idle for rebase_idle (2 s)
# and then used less than 0.05 CPU seconds in 2 s (at most 30 minutes).
wait_quiet() {
	local a b
	sleep 2.5
	for _ in $(seq 1 900); do
		a=$(daemon_cpu)
		sleep 2
		b=$(daemon_cpu)
		awk -v a="$a" -v b="$b" 'BEGIN { exit !(b - a < 0.05) }' && return 0
	done
}

# json_get FILE KEY: a top-level value from mixfs stats --json.
# json_get FILE KEY...: the values of KEYs (a.b for nested ones) in the
# JSON object of FILE, space-separated
json_get() {
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
out = []
for k in sys.argv[2:]:
    v = d
    for p in k.split("."):
        v = v[p]
    out.append(str(v))
print(" ".join(out))' "$@"
}
