#!/bin/bash
# Stores written by earlier versions of mixfs stay readable and writable:
# each golden store under tests/golden/stores/ (see the README there: which
# commit wrote it, with what) is unpacked, checked with fsck and stats,
# mounted, every entry compared with the manifest the old mount wrote, then
# written to (a new series version, a rewrite in place, new files, links,
# xattrs, a delete, a rename), fsck'd, gc'd, fsck'd, remounted and compared
# again.
. "$(dirname "$0")/lib.sh"
need_mixfs
it_init
GOLDEN=$(cd "$(dirname "$0")/../golden/stores" && pwd)
command -v xz >/dev/null || skip "xz missing"
command -v getfattr >/dev/null || skip "getfattr missing (Debian package attr)"

# manifest DIR: the entry list of tests/golden/stores/manifest.sh.
manifest() { bash "$GOLDEN/manifest.sh" "$1"; }

run_fsck() { # run_fsck TAG
	"$MIXFS" fsck "$STORE" >"$WORK/fsck.$1" 2>&1 ||
		fail "$NAME: fsck ($1) exited $?: $(tail -n 20 "$WORK/fsck.$1")"
	grep -q '^problems: 0 found' "$WORK/fsck.$1" || fail "$NAME: fsck ($1): $(tail -n 3 "$WORK/fsck.$1")"
}

OPTS=rebase_idle=200,gc_interval=1
n=0
for tarball in "$GOLDEN"/*.tar.xz; do
	NAME=$(basename "$tarball" .tar.xz)
	D=$WORK/$NAME
	mkdir -p "$D"
	tar -C "$D" -xJf "$tarball" || fail "$NAME: cannot unpack $tarball"
	STORE=$D/store
	log "$NAME: fsck, stats"
	run_fsck old
	"$MIXFS" stats "$STORE" >"$WORK/stats" 2>&1 || fail "$NAME: stats exited $?: $(cat "$WORK/stats")"
	"$MIXFS" stats --json "$STORE" >"$WORK/stats.json" 2>&1 || fail "$NAME: stats --json exited $?"
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/stats.json" || fail "$NAME: stats --json is not JSON"

	log "$NAME: mount, compare every entry"
	mixfs_mount fg "$OPTS"
	manifest "$MNT" >"$D/M.1"
	diff "$GOLDEN/$NAME.manifest" "$D/M.1" >&2 || fail "$NAME: the mounted old store differs from its manifest"
	check_eq "$NAME: symlink target" tree/a/b/c/rand2.bin "$(readlink "$MNT/symlink")"
	check_cmp "$MNT/symlink" "$MNT/tree/a/b/c/rand2.bin"
	check_eq "$NAME: hard link inode" "$(stat -c %i "$MNT/tree/a/text.txt")" "$(stat -c %i "$MNT/hardlink.txt")"

	log "$NAME: write more"
	# ckpt-4 continues the series the old binary wrote (same generator,
	# sizes and seed as tests/golden/stores/README.md says).
	series_files "$D/ckpt-" 5 65536 7
	check_cmp "$D/ckpt-3.safetensors" "$MNT/series/ckpt-3.safetensors"
	cp "$D/ckpt-4.safetensors" "$MNT/series/ckpt-4.safetensors"
	sync -f "$MNT"
	cp "$D/ckpt-4.safetensors" "$MNT/series/latest.safetensors" # in place
	rand_file "$D/new.bin" 1 $((90 + n))
	cp "$D/new.bin" "$MNT/tree/new.bin"
	head -c 5000 "$D/new.bin" >>"$MNT/rand1.bin"
	printf 'more' | dd of="$MNT/inplace.bin" bs=1 seek=7 conv=notrunc status=none
	rm "$MNT/series/ckpt-0.safetensors"
	ln "$MNT/tree/new.bin" "$MNT/new-link"
	ln -s new-link "$MNT/new-sym"
	mkdir "$MNT/newdir"
	setfattr -n user.compat -v new "$MNT/tree/new.bin"
	setfattr -x user.compat "$MNT/tree/d/w.f32"
	mv "$MNT/tree/d/w.f32" "$MNT/tree/w-renamed.f32"
	sync -f "$MNT"
	check_cmp "$D/ckpt-4.safetensors" "$MNT/series/ckpt-4.safetensors"
	check_cmp "$D/ckpt-4.safetensors" "$MNT/series/latest.safetensors"
	check_cmp "$D/new.bin" "$MNT/tree/new.bin"
	check_eq "$NAME: rand1.bin size" 29000 "$(stat -c %s "$MNT/rand1.bin")"
	sleep 1 # rebase (rebase_idle=200) turns the new version's deltas around
	manifest "$MNT" >"$D/M.2"
	# Entries the writes did not touch are as the old binary left them.
	grep -v -e ckpt-0 -e latest -e rand1.bin -e w.f32 -e inplace.bin -e '^D ./tree ' \
		"$GOLDEN/$NAME.manifest" | while IFS= read -r l; do
		grep -qxF -- "$l" "$D/M.2" || fail "$NAME: lost after writing: $l"
	done
	mixfs_umount

	log "$NAME: fsck, gc, fsck, remount"
	run_fsck written
	"$MIXFS" gc "$STORE" >"$WORK/gc" 2>&1 || fail "$NAME: gc exited $?: $(cat "$WORK/gc")"
	run_fsck gc
	mixfs_mount fg "$OPTS"
	manifest "$MNT" >"$D/M.3"
	diff "$D/M.2" "$D/M.3" >&2 || fail "$NAME: entries changed across gc + remount"
	mixfs_umount
	run_fsck final
	n=$((n + 1))
	rm -rf "$D"
done
[ "$n" -ge 2 ] || fail "only $n golden stores found under $GOLDEN"
log "$n golden stores read, written, gc'd and read again"
