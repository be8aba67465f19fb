#!/usr/bin/env bash
# test_cli.sh MIXFS - exit statuses and messages of the mixfs command line,
# without mounting anything (the mount.mixfs -f "fake" mode checks options).
# Exit: 0 pass, 1 fail.
set -uo pipefail
MIXFS=$1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mixfs-cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failures=0

# expect STATUS PATTERN CMD...: CMD exits with STATUS and its output
# (stdout and stderr) matches the grep -E PATTERN ('' = any output).
expect() {
	local want=$1 pat=$2 rc=0
	shift 2
	"$@" >"$WORK/out" 2>&1 || rc=$?
	if [ "$rc" != "$want" ]; then
		echo "FAIL: '$*' exited $rc, expected $want: $(head -3 "$WORK/out")"
		failures=$((failures + 1))
	elif [ -n "$pat" ] && ! grep -Eq -- "$pat" "$WORK/out"; then
		echo "FAIL: '$*' output does not match '$pat': $(head -3 "$WORK/out")"
		failures=$((failures + 1))
	fi
}

mkdir "$WORK/mnt"
ln -s "$(realpath "$MIXFS")" "$WORK/mount.mixfs"
HELPER=$WORK/mount.mixfs

expect 0 '^mixfs [0-9]' "$MIXFS" --version
expect 0 'commands:' "$MIXFS" --help
expect 2 'usage: mixfs' "$MIXFS"
expect 2 "unknown command 'frob'" "$MIXFS" frob
expect 0 'usage: mixfs mkfs' "$MIXFS" mkfs --help
expect 2 'usage: mixfs mkfs' "$MIXFS" mkfs
expect 2 "unknown level 'zip'" "$MIXFS" mkfs -l zip "$WORK/s"
expect 0 'cache=SIZE' "$MIXFS" mount --help
expect 2 'usage: mixfs mount' "$MIXFS" mount "$WORK/s"
expect 1 "cannot open store $WORK/nope" "$MIXFS" mount "$WORK/nope" "$WORK/mnt"

expect 0 'created mixfs store' "$MIXFS" mkfs -l fast "$WORK/s"
expect 1 "cannot create store $WORK/s" "$MIXFS" mkfs "$WORK/s"
expect 1 "mount point $WORK/nomnt" "$MIXFS" mount "$WORK/s" "$WORK/nomnt"

# Option values, checked by the mount helper's fake mode (-f).
expect 0 '' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o cache=1G,dirty=64MiB,workers=4,level=mix
expect 0 '' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o readahead=0,pack_size=16M,commit_ms=5,writeback
expect 0 '' "$HELPER" "$WORK/s" "$WORK/mnt" -n -f -o defaults,_netdev,noauto,comment=x,ro
expect 2 'bad size cache=64Q' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o cache=64Q
expect 2 'bad size cache=-1' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o cache=-1
expect 2 'bad size dirty=99999999999T' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o dirty=99999999999T
expect 2 'bad size pack_size=1M' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o pack_size=1M
# the minimums mixfs(8) states: 1M for the memory limits, 4K for kernel_ra
expect 0 '' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o cache=1M,dirty=1M,inflight=1M,kernel_ra=4K
expect 2 'at least 1048576 bytes' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o cache=1048575
expect 2 'at least 1048576 bytes' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o dirty=1023K
expect 2 'at least 1048576 bytes' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o inflight=512K
expect 2 'bad size kernel_ra=4095' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o kernel_ra=4095
expect 2 'bad value workers=x' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o workers=x
expect 2 'bad value commit_ms=0' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o commit_ms=0
expect 2 'bad value level=best' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o level=best
# lazy=all recompresses in rebase's idle spells: without them the data
# stayed at level fast for good
expect 2 'lazy=all needs rebase_idle > 0' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o lazy=all,rebase_idle=0
expect 2 'lazy=all needs rebase_idle > 0' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o rebase_idle=0 -o lazy=all
expect 0 '' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o lazy=all,rebase_idle=500
expect 0 '' "$HELPER" "$WORK/s" "$WORK/mnt" -f -o lazy=auto,rebase_idle=0
# max_read: the kernel took it, libfuse's INIT refused it after the mount
# had said 0; the daemon's own files under its mount: it hung on itself
expect 2 'max_read=131072 is not supported' "$MIXFS" mount -o max_read=131072 "$WORK/s" "$WORK/mnt"
expect 1 "lies in the store's packs directory" "$MIXFS" mount "$WORK/s" "$WORK/s/packs"
expect 1 'lies under the mount point' "$MIXFS" mount "$WORK/s" "$WORK"

# fsck and gc of a directory that exists but is not a store: the message
# must say so, not "No such file or directory" (the index inside is missing).
mkdir "$WORK/notastore"
expect 2 'notastore: (no mixfs store there|not a mixfs store)' "$MIXFS" fsck "$WORK/notastore"
expect 1 'notastore: (no mixfs store there|not a mixfs store)' "$MIXFS" gc "$WORK/notastore"
expect 1 'notastore: (no mixfs store there|not a mixfs store)' "$MIXFS" gc -n "$WORK/notastore"
# ...and leaves nothing there (lock files made mkfs refuse it as not empty)
expect 0 'created mixfs store' "$MIXFS" mkfs "$WORK/notastore"
# a mistyped command with a path is no mount
expect 2 "unknown command 'stat'" "$MIXFS" stat "$WORK/s" "$WORK/mnt"
expect 0 'dry run' "$MIXFS" gc -n "$WORK/s"
# a dry run's report is a plan ("1 compacted" read as done)
expect 0 '^would free .* in place, copy .* \(0 chunks\)' "$MIXFS" gc -n "$WORK/s"

# messages name the command as "mixfs CMD" (getopt's said "mkfs: ...")
expect 2 "^mixfs mkfs: invalid option -- 'x'" "$MIXFS" mkfs -x "$WORK/s2"
expect 2 "^mixfs stats: unrecognized option '--frob'" "$MIXFS" stats --frob "$WORK/s"
expect 2 "^mixfs fsck: invalid option -- 'x'" "$MIXFS" fsck -x "$WORK/s"
expect 2 "^mixfs gc: invalid option -- 'x'" "$MIXFS" gc -x "$WORK/s"
expect 2 "^mixfs mount: invalid option -- 'x'" "$MIXFS" mount -x "$WORK/s" "$WORK/mnt"
mkdir "$WORK/empty"
expect 1 "^mixfs mount: cannot open store $WORK/empty: not a mixfs store" \
	"$MIXFS" mount "$WORK/empty" "$WORK/mnt"
expect 0 '^usage: mixfs bench ' "$MIXFS" bench --help
expect 2 '^mixfs bench: unknown option -x' "$MIXFS" bench -x
if "$MIXFS" bench --help 2>&1 | grep -q 'codec_bench\.sh'; then
	echo "FAIL: mixfs bench --help names codec_bench.sh"
	failures=$((failures + 1))
fi

for cmd in stats fsck gc bench; do
	rc=0
	"$MIXFS" "$cmd" --help >/dev/null 2>&1 || rc=$?
	case $rc in
	0 | 2) ;;
	*)
		echo "FAIL: mixfs $cmd --help exited $rc"
		failures=$((failures + 1))
		;;
	esac
done

[ "$failures" -eq 0 ] || exit 1
echo "test_cli: PASS"
