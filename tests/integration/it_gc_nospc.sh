#!/bin/bash
# gc on a nearly full disk with small packs: the live frames of all the
# candidate packs together (one batch of up to 256 MiB) do not fit in the
# free space, those of one pack do.  A store on a 128 MiB tmpfs gets 96
# files of 1 MiB in packs of 16 MiB (pack_size=16M); two files of every
# three are deleted, so each pack is two thirds dead; gc -t 1 frees the
# dead bytes in place; then a filler file leaves IT_GCNOSPC_FREE MiB free
# (default 16: less than the 32 MiB live, more than one pack's 5.3 MiB).
# gc must compact every pack, one at a time once the batch did not fit
# (before, it stopped with "no space left" and compacted none), with fsck
# clean, every surviving file bit-exact, and nothing left for a second gc.
# Then with 2 MiB free (less than one pack's live bytes) gc must stop with
# "no space left", naming the store, and lose nothing.  Last, on a copy of
# the store made before, the sync of the first batch's copies fails with
# ENOSPC (faultshim): the same retry, one pack at a time.
# (Needs root for the tmpfs mount; skipped otherwise.)
. "$(dirname "$0")/lib.sh"
need_mixfs "a store on its own small file system"
command -v python3 >/dev/null || skip "python3 missing"
tmpfs_init 128m
FREE_MIB=${IT_GCNOSPC_FREE:-16}
mixfs_mkfs
# no online gc: the offline gc below is what is tested
mixfs_mount fg level=raw,pack_size=16M,gc_interval=0

# k000 d000 e000 k001 ...: 1 MiB random files (seeded by name), in this
# order, each fsync'd; the sums of the k files go to SUMS.
python3 - "$MNT" "$WORK/sums" <<'EOF'
import hashlib, os, random, sys
d, sums = sys.argv[1], sys.argv[2]
with open(sums, 'w') as out:
    for i in range(32):
        for p in 'kde':
            name = '%s%03d' % (p, i)
            data = random.Random(name).randbytes(1 << 20)
            fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            if p == 'k':
                out.write('%s  %s\n' % (hashlib.sha256(data).hexdigest(), name))
EOF
rm "$MNT"/d* "$MNT"/e*
mixfs_umount
"$MIXFS" gc -t 1 "$STORE" >"$WORK/gc0.out" 2>&1 || fail "gc -t 1: $(cat "$WORK/gc0.out")"
log "gc -t 1: $(tr '\n' ' ' <"$WORK/gc0.out")"
NPACKS=$(ls "$STORE/packs" | wc -l)
[ "$NPACKS" -ge 5 ] || fail "expected at least 5 packs of 16 MiB, got $NPACKS"
cp -a --sparse=always "$STORE" "$WORK/store2"
cp "$WORK/sums" "$WORK/sums2"

# Leave FREE_MIB MiB free.
avail() { df -B1 --output=avail "$FS" | tail -n 1; }
FILL=$(($(avail) - FREE_MIB * 1048576))
[ "$FILL" -gt 0 ] || fail "only $(avail) bytes free on the tmpfs before the filler"
head -c "$FILL" /dev/zero >"$FS/filler"
log "$NPACKS packs, $(du -sb "$STORE/packs" | cut -f1) bytes apparent," \
	"$(du -sB1 "$STORE/packs" | cut -f1) on disk; $(avail) bytes free"

FREE_BEFORE=$(avail)
rc=0
"$MIXFS" gc "$STORE" >"$WORK/gc1.out" 2>&1 || rc=$?
FREE_AFTER=$(avail)
log "gc with $FREE_MIB MiB free: exit $rc: $(tr '\n' ' ' <"$WORK/gc1.out")"
log "free bytes $FREE_BEFORE -> $FREE_AFTER; packs $NPACKS -> $(ls "$STORE/packs" | wc -l)"
[ "$rc" = 0 ] || fail "gc with $FREE_MIB MiB free (one pack's live bytes fit): exit $rc:" \
	"$(cat "$WORK/gc1.out")"
# compacted_all OUT STORE WHAT: gc's output says every pack was compacted,
# fsck is clean with nothing dead, orphan or unreferenced, a second gc
# finds nothing to do.
compacted_all() {
	local n
	n=$(sed -n 's/.* \([0-9]*\) compacted.*/\1/p' "$1")
	[ "${n:-0}" = "$NPACKS" ] || fail "$3: gc compacted ${n:-0} of $NPACKS packs: $(cat "$1")"
	"$MIXFS" fsck "$2" >"$WORK/fsck.out" 2>&1 || fail "$3: fsck after gc: $(tail -n 5 "$WORK/fsck.out")"
	grep -q 'dead 0 B, orphan 0 B$' "$WORK/fsck.out" ||
		fail "$3: dead, orphan or unreferenced bytes left: $(grep '^packs:' "$WORK/fsck.out")"
	"$MIXFS" gc "$2" >"$WORK/gc2.out" 2>&1 || fail "$3: second gc: $(cat "$WORK/gc2.out")"
	grep -q ' 0 compacted, 0 emptied, 0 unreferenced removed' "$WORK/gc2.out" ||
		fail "$3: second gc found work left: $(cat "$WORK/gc2.out")"
}
compacted_all "$WORK/gc1.out" "$STORE" "$FREE_MIB MiB free"
COMPACTED=$NPACKS

# One pack's live bytes do not fit either: gc stops with "no space left",
# names the store, and loses nothing.  (Make every pack a candidate again:
# delete a third of the files.)
mixfs_mount fg level=raw,gc_interval=0
(cd "$MNT" && sha256sum --quiet -c "$WORK/sums") || fail "files differ after gc"
n=0
while read -r _ name; do
	n=$((n + 1))
	[ $((n % 3)) = 0 ] || continue
	rm "$MNT/$name"
	sed -i "/  $name\$/d" "$WORK/sums"
done < <(cat "$WORK/sums")
mixfs_umount
"$MIXFS" gc -t 1 "$STORE" >"$WORK/gc3.out" 2>&1 || fail "gc -t 1: $(cat "$WORK/gc3.out")"
rm "$FS/filler"
FILL=$(($(avail) - 2 * 1048576))
head -c "$FILL" /dev/zero >"$FS/filler"
FREE_BEFORE=$(avail)
rc=0
"$MIXFS" gc -t 0 "$STORE" >"$WORK/gc4.out" 2>&1 || rc=$?
FREE_AFTER=$(avail)
log "gc with 2 MiB free: exit $rc: $(tr '\n' ' ' <"$WORK/gc4.out"); free $FREE_BEFORE -> $FREE_AFTER"
[ "$rc" = 1 ] || fail "gc with 2 MiB free: exit $rc, expected 1: $(cat "$WORK/gc4.out")"
grep -q "mixfs gc: $STORE: no space left" "$WORK/gc4.out" ||
	fail "gc with 2 MiB free: not 'no space left' naming the store: $(cat "$WORK/gc4.out")"
# the partial copies are gone (the index may have grown a little)
[ "$FREE_AFTER" -ge $((FREE_BEFORE - 262144)) ] ||
	fail "gc stopped on ENOSPC left $((FREE_BEFORE - FREE_AFTER)) bytes of partial copies"
rm "$FS/filler"
"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || fail "fsck after ENOSPC: $(tail -n 5 "$WORK/fsck.out")"
grep -q 'unreferenced' "$WORK/fsck.out" && fail "gc stopped on ENOSPC left a pack file: $(grep '^packs:' "$WORK/fsck.out")"
mixfs_mount fg level=raw,gc_interval=0
(cd "$MNT" && sha256sum --quiet -c "$WORK/sums") || fail "files differ after gc stopped on ENOSPC"
mixfs_umount

# The sync of the copies fails with ENOSPC (the pwrite/fdatasync fallback,
# faultshim's first fdatasync of a pack file).
if [ -n "${FAULTSHIM:-}" ] && [ -f "$FAULTSHIM" ]; then
	rc=0
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 MIXFS_PACK_NO_URING=1 \
		LD_PRELOAD="$FAULTSHIM" FAULT_OPS=fdatasync FAULT_COUNT=1 FAULT_ERRNO=28 \
		"$MIXFS" gc "$WORK/store2" >"$WORK/gc5.out" 2>&1 || rc=$?
	log "gc with a failed sync: exit $rc: $(tr '\n' ' ' <"$WORK/gc5.out")"
	[ "$rc" = 0 ] || fail "gc with a failed sync: exit $rc: $(cat "$WORK/gc5.out")"
	grep -q '^faultshim: fdatasync' "$WORK/gc5.out" || fail "faultshim failed no fdatasync"
	compacted_all "$WORK/gc5.out" "$WORK/store2" "a failed sync"
	STORE=$WORK/store2
	mixfs_mount fg level=raw,gc_interval=0
	(cd "$MNT" && sha256sum --quiet -c "$WORK/sums2") || fail "files differ after gc with a failed sync"
	mixfs_umount
else
	log "no faultshim: the failed sync is not tested"
fi
log "PASS: $NPACKS packs of 16 MiB, 2/3 dead, $FREE_MIB MiB free: $COMPACTED compacted," \
	"fsck clean, second gc idle; with 2 MiB free: no space left, nothing lost"
