# lib.sh - common helpers for the mixfs integration tests (sourced by it_*.sh).
#
# Environment (set by tests/integration/meson.build):
#   MIXFS            path to the mixfs binary (build/tools/mixfs)
#   FSX              path to the fsx verifier (build/tests/integration/fsx)
#   MIXFS_STANDIN    "bindfs": run the scripts on a bindfs passthrough instead
#                    of mixfs (to debug the scripts themselves); checks that
#                    only make sense on mixfs call need_mixfs and are skipped.
#   IT_MOUNT_OPTS    extra "-o" options for every mixfs mount (comma list).
#   IT_KEEP          1: keep the work directory after the test.
#   TMPDIR           where the work directory goes (default /tmp).
#
# Exit status follows meson/automake: 0 pass, 1 fail, 77 skip.
# Every check must be able to fail: use fail/check_* and never "|| true".

set -Eeuo pipefail
# A command failing under set -e says which one, where.
trap 'printf "%s: FAIL: line %s: \"%s\" exited %s\n" "$IT_NAME" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR

IT_NAME=$(basename "$0" .sh)
WORK=
STORE=
MNT=
MOUNT_PID=
MOUNT_LOG=
MOUNTED=0
IT_UMOUNT=() # other mounts a test made under $WORK (bind mounts): unmounted at exit

log() { printf '%s: %s\n' "$IT_NAME" "$*" >&2; }

fail() {
	printf '%s: FAIL: %s\n' "$IT_NAME" "$*" >&2
	exit 1
}

skip() {
	printf '%s: SKIP: %s\n' "$IT_NAME" "$*" >&2
	exit 77
}

is_standin() { [ -n "${MIXFS_STANDIN:-}" ]; }

# Skip the rest of the test when it checks something only mixfs has.
need_mixfs() {
	if is_standin; then
		log "SKIP: mixfs-only checks under MIXFS_STANDIN=$MIXFS_STANDIN: $*"
		exit 77
	fi
}

# check_eq WHAT EXPECTED GOT
check_eq() {
	[ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

# check_cmp REF FILE: byte-identical, with the first difference on failure.
check_cmp() {
	local out
	if ! out=$(cmp -- "$1" "$2" 2>&1); then
		fail "cmp $1 $2: $out"
	fi
}

# expect_fail WHAT CMD...: CMD must exit non-zero.
expect_fail() {
	local what=$1
	shift
	if "$@" 2>/dev/null; then
		fail "$what: '$*' succeeded, expected failure"
	fi
}

# ls -A, without bindfs's .fuse_hidden* files under the stand-in (mixfs has none).
lsA() {
	if is_standin; then
		ls -A "$@" | grep -v '^\.fuse_hidden' || [ $? = 1 ]
	else
		ls -A "$@"
	fi
}

sha() { sha256sum -- "$1" | cut -d' ' -f1; }

# by_length SHORT LONG: the count for this run, LONG with MIXFS_LONG=1 (the
# long form of the stress tests), else SHORT
by_length() { if [ "${MIXFS_LONG:-0}" = 1 ]; then echo "$2"; else echo "$1"; fi; }

# Bytes under STORE/packs (the stored file data), after a sync of the mount.
pack_bytes() {
	sync -f "$MNT"
	du -sb "$STORE/packs" | cut -f1
}

it_cleanup() {
	local rc=$?
	set +e
	trap - ERR
	if [ "$MOUNTED" = 1 ] && mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || { sleep 1; fusermount3 -uz "$MNT"; }
	fi
	if [ -n "$MOUNT_PID" ] && kill -0 "$MOUNT_PID" 2>/dev/null; then
		sleep 1
		kill "$MOUNT_PID" 2>/dev/null
		wait "$MOUNT_PID" 2>/dev/null
	fi
	for m in "${IT_UMOUNT[@]}"; do
		mountpoint -q "$m" 2>/dev/null && { umount "$m" 2>/dev/null || umount -l "$m"; }
	done
	if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -n "$MOUNT_LOG" ] && [ -s "$MOUNT_LOG" ]; then
		echo "---- $IT_NAME: daemon log ($MOUNT_LOG) ----" >&2
		tail -n 50 "$MOUNT_LOG" >&2
	fi
	if [ -n "$WORK" ]; then
		if [ "${IT_KEEP:-0}" = 1 ]; then
			log "kept $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}

# it_init: prerequisites and the work directory; no store yet.
it_init() {
	[ -c /dev/fuse ] || skip "/dev/fuse missing"
	command -v fusermount3 >/dev/null || skip "fusermount3 missing"
	if is_standin; then
		[ "$MIXFS_STANDIN" = bindfs ] || fail "unknown MIXFS_STANDIN=$MIXFS_STANDIN"
		command -v bindfs >/dev/null || skip "bindfs missing"
	else
		[ -n "${MIXFS:-}" ] || fail "MIXFS (path to the mixfs binary) is not set"
		[ -x "$MIXFS" ] || fail "MIXFS=$MIXFS is not executable"
	fi
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/mixfs-$IT_NAME.XXXXXX")
	STORE=$WORK/store
	MNT=$WORK/mnt
	mkdir -p "$MNT"
	trap it_cleanup EXIT
	trap 'exit 130' INT TERM
}

# tmpfs_init SIZE: it_init, then a tmpfs of SIZE (e.g. 64m) at FS=$WORK/fs
# with STORE on it (skips without root), unmounted at exit after the store's
# mount (IT_KEEP=1 keeps it).
tmpfs_init() {
	[ "$(id -u)" = 0 ] || skip "mount -t tmpfs needs root"
	it_init
	FS=$WORK/fs
	mkdir "$FS"
	mount -t tmpfs -o "size=$1,mode=0700" tmpfs "$FS" 2>/dev/null || skip "cannot mount a tmpfs here"
	trap tmpfs_cleanup EXIT
	STORE=$FS/store
}

tmpfs_cleanup() {
	local rc=$?
	set +e
	trap - ERR
	# (mountpoint -q fails on the mount of a crashed daemon: unmount anyway)
	if [ "$MOUNTED" = 1 ]; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
		MOUNTED=0
	fi
	[ -n "$MOUNT_PID" ] && wait "$MOUNT_PID" 2>/dev/null
	MOUNT_PID=
	if [ "${IT_KEEP:-0}" = 1 ]; then
		log "kept the tmpfs mounted at $FS"
	else
		umount "$FS" 2>/dev/null || umount -l "$FS"
	fi
	(exit "$rc")
	it_cleanup
}

mixfs_mkfs() {
	if is_standin; then
		mkdir -p "$STORE/data" "$STORE/packs"
		return
	fi
	"$MIXFS" mkfs "$STORE" >"$WORK/mkfs.log" 2>&1 ||
		fail "mixfs mkfs $STORE failed: $(cat "$WORK/mkfs.log")"
}

# Wait for MNT to become a mount point (up to 30 s); fail if the daemon died.
wait_mounted() {
	local i
	for i in $(seq 1 300); do
		mountpoint -q "$MNT" && return 0
		if [ -n "$MOUNT_PID" ] && ! kill -0 "$MOUNT_PID" 2>/dev/null; then
			wait "$MOUNT_PID" 2>/dev/null || true # status reported by the message below
			fail "mount daemon exited before $MNT was mounted: $(tail -n 20 "$MOUNT_LOG")"
		fi
		sleep 0.1
	done
	fail "$MNT not mounted after 30 s"
}

# mixfs_mount [fg|daemon] [extra -o options]
mixfs_mount() {
	local mode=${1:-fg} opts=${2:-}
	[ -n "${IT_MOUNT_OPTS:-}" ] && opts=${opts:+$opts,}$IT_MOUNT_OPTS
	MOUNT_LOG=$WORK/mount.$(date +%s%N).log
	MOUNT_PID=
	if is_standin; then
		bindfs -f --no-allow-other ${opts:+-o "$opts"} "$STORE/data" "$MNT" >"$MOUNT_LOG" 2>&1 &
		MOUNT_PID=$!
	elif [ "$mode" = daemon ]; then
		"$MIXFS" mount ${opts:+-o "$opts"} "$STORE" "$MNT" >"$MOUNT_LOG" 2>&1 ||
			fail "mixfs mount (daemon) exited $?: $(cat "$MOUNT_LOG")"
	else
		"$MIXFS" mount -f ${opts:+-o "$opts"} "$STORE" "$MNT" >"$MOUNT_LOG" 2>&1 &
		MOUNT_PID=$!
	fi
	MOUNTED=1
	wait_mounted
}

# Unmount cleanly; a foreground daemon must then exit with status 0.
mixfs_umount() {
	local i rc
	sync -f "$MNT" 2>/dev/null || sync
	for i in $(seq 1 50); do
		fusermount3 -u "$MNT" 2>"$WORK/umount.err" && break
		[ "$i" = 50 ] && fail "fusermount3 -u $MNT: $(cat "$WORK/umount.err")"
		sleep 0.2
	done
	MOUNTED=0
	if [ -n "$MOUNT_PID" ]; then
		rc=0
		wait "$MOUNT_PID" || rc=$?
		MOUNT_PID=
		check_eq "mount daemon exit status after unmount" 0 "$rc"
	else
		# Daemonized: wait for the process to let go of the store.
		for i in $(seq 1 100); do
			pgrep -f -- "mount.*$STORE" >/dev/null || break
			sleep 0.1
		done
	fi
}

# it_start: init + mkfs + mount (foreground daemon in the background).
it_start() {
	it_init
	mixfs_mkfs
	mixfs_mount "$@"
}

# Deterministic pseudo-random bytes: rand_file PATH MIB [SEED]
rand_file() {
	local seed=${3:-1}
	head -c "$(($2 * 1048576))" /dev/zero |
		openssl enc -aes-128-ctr -nosalt -pass "pass:mixfs$seed" -pbkdf2 >"$1" 2>/dev/null
	[ "$(stat -c %s "$1")" = $(($2 * 1048576)) ] || fail "rand_file $1 short"
}

# Float-like bytes (fp32 weights of a small normal distribution): float_file PATH MIB [SEED]
float_file() {
	python3 - "$1" "$2" "${3:-1}" <<'EOF'
import random, struct, sys
path, mib, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
n = mib * 1048576 // 4
with open(path, "wb") as f:
    block = 65536
    for i in range(0, n, block):
        k = min(block, n - i)
        f.write(struct.pack("<%df" % k, *(rng.gauss(0.0, 0.02) for _ in range(k))))
EOF
}

# series_files PREFIX VERSIONS ELEMS SEED: PREFIX0.safetensors ..., one
# bf16 tensor of ELEMS seeded N(0, 0.02) weights, a third of which drift in
# their low bits from one version to the next (a training step).
series_files() {
	python3 - "$@" <<'EOF'
import array, json, random, struct, sys
prefix, nv, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
w = array.array("f", (rng.gauss(0.0, 0.02) for _ in range(n)))
h = json.dumps({"w": {"dtype": "BF16", "shape": [n // 1024, 1024],
                      "data_offsets": [0, 2 * n]}}).encode()
h += b" " * (-len(h) % 8)
for v in range(nv):
    b = w.tobytes()
    out = bytearray(2 * n)
    out[0::2] = b[2::4]
    out[1::2] = b[3::4]
    with open("%s%d.safetensors" % (prefix, v), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + out)
    for i in range(0, n, 3):
        w[i] *= 1.0 + rng.gauss(0.0, 0.004)
EOF
}

# stats_json OUT PATH [--files]: run mixfs stats --json; the output must be
# one valid JSON object.
stats_json() {
	local out=$1
	shift
	"$MIXFS" stats --json "$@" >"$out" 2>"$WORK/stats.err" ||
		fail "mixfs stats --json $*: exit $?: $(cat "$WORK/stats.err")"
	python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$out" ||
		fail "mixfs stats --json $*: not JSON: $(head -c 500 "$out")"
}

# stored_bytes NAME: the bytes stored for the file named NAME (its last
# path element) under $MNT, from mixfs stats --json --files.
stored_bytes() {
	stats_json "$WORK/files.json" --files "$MNT"
	python3 - "$WORK/files.json" "$1" <<'PYEOF'
import json, sys
rows = {r["path"].rsplit("/", 1)[-1]: r["stored_bytes"] for r in json.load(open(sys.argv[1]))["files"]}
print(rows[sys.argv[2]])
PYEOF
}

# wait_stats OUT TRIES COND: write the store's mixfs stats --json to OUT
# until the Python expression COND holds for it (s: the JSON object),
# trying TRIES times 0.3 s apart; status 1 if it never did.
wait_stats() {
	local out=$1 tries=$2 cond=$3 i
	for i in $(seq 1 "$tries"); do
		stats_json "$out" "$STORE"
		python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); sys.exit(not eval(sys.argv[2]))' \
			"$out" "$cond" && return 0
		sleep 0.3
	done
	return 1
}
