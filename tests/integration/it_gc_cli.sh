#!/bin/bash
# mixfs gc and fsck as an operator runs them (found by a command-line hunt):
# gc -n must report what gc then does.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "mixfs gc and fsck command line"

# gc_summary OUT: the packs compacted and emptied and the bytes copied of a
# gc report, or of a gc -n plan ("would compact N, empty N", "copy X").
gc_summary() {
	sed -n 's/.*scanned; \([0-9]*\) compacted, \([0-9]*\) emptied.*/\1 \2/p
		s/.*scanned; would compact \([0-9]*\), empty \([0-9]*\).*/\1 \2/p
		s/.*freed in place, \(.*\) copied.*/\1/p
		s/^would free .* in place, copy \(.*\) (.*/\1/p' "$1" | tr '\n' ' '
}

# 1. A pack whose dead bytes are its tail: gc cuts the tail and then judges
# the pack by what is left (nothing dead: no compaction).  gc -n must say the
# same, not that it would compact the pack by its size before the cut.
"$MIXFS" mkfs -l raw "$STORE" >/dev/null
mixfs_mount fg gc_interval=0
rand_file "$MNT/keep" 3 1
rand_file "$MNT/del" 10 2
sync -f "$MNT"
rm "$MNT/del"
mixfs_umount
"$MIXFS" stats "$STORE" >"$WORK/st1.out" 2>&1 || fail "stats exited $?"
grep -q "dead; .* on disk: mixfs gc frees dead bytes)" "$WORK/st1.out" ||
	fail "stats before gc: no hint to run gc: $(grep 'pack bytes' "$WORK/st1.out")"
"$MIXFS" gc -n "$STORE" >"$WORK/gcn.out" 2>&1 || fail "gc -n exited $?: $(cat "$WORK/gcn.out")"
"$MIXFS" gc "$STORE" >"$WORK/gc.out" 2>&1 || fail "gc exited $?: $(cat "$WORK/gc.out")"
# the records still count the dead tail gc cut: stats must not send the
# user to gc again for bytes already freed (a review found it did)
"$MIXFS" stats "$STORE" >"$WORK/st2.out" 2>&1 || fail "stats exited $?"
log "stats after gc: $(grep 'pack bytes' "$WORK/st2.out")"
grep -q "dead bytes freed in place)" "$WORK/st2.out" ||
	fail "stats after gc: $(grep 'pack bytes' "$WORK/st2.out")"
log "gc -n: $(gc_summary "$WORK/gcn.out")"
log "gc:    $(gc_summary "$WORK/gc.out")"
check_eq "gc -n predicts what gc does (tail of dead bytes)" "$(gc_summary "$WORK/gc.out")" \
	"$(gc_summary "$WORK/gcn.out")"
"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || fail "fsck after gc: $(cat "$WORK/fsck.out")"

# 2. gc -n beside a mount (mixfs-gc(8)): it runs, exit 0, and words its
# report as a plan ("would compact"), not as what was done.
mixfs_mount fg gc_interval=0
rand_file "$MNT/del2" 4 3
sync -f "$MNT"
rm "$MNT/del2"
"$MIXFS" gc -n "$STORE" >"$WORK/gcn2.out" 2>&1 ||
	fail "gc -n beside a mount exited $?: $(cat "$WORK/gcn2.out")"
grep -q '^dry run, .*; would compact [0-9]*, empty [0-9]*, remove [0-9]* unreferenced' "$WORK/gcn2.out" &&
	grep -q '^would free .* in place, copy ' "$WORK/gcn2.out" ||
	fail "gc -n beside a mount: not worded as a plan: $(cat "$WORK/gcn2.out")"
! grep -qE 'compacted|emptied|removed|freed|copied' "$WORK/gcn2.out" ||
	fail "gc -n words its plan in the past tense: $(cat "$WORK/gcn2.out")"
mixfs_umount

log "PASS"
