#!/bin/bash
# The words of mixfs stats and fsck as an operator reads them (found by a
# user-level review): counts pluralized ("1 chunk"), no "pending" line for
# a store whose level leaves nothing to recompress (made at raw: it read
# "stored below level raw"), file names escaped alike for every byte that
# is not printable UTF-8 (a newline was \x0a, a 0xff byte went out raw),
# and fsck's frame count saying how many were damaged (it said "N
# verified" with damaged frames among them).
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "mixfs stats and fsck text output"

"$MIXFS" mkfs -l raw "$STORE" >/dev/null
mixfs_mount fg gc_interval=0
# one chunk (the chunker cuts at 16 KiB at the least)
head -c 8192 /dev/urandom >"$MNT/one"
sync -f "$MNT"
"$MIXFS" stats "$MNT" >"$WORK/st1.out" 2>&1 || fail "stats exited $?: $(cat "$WORK/st1.out")"
grep -q '^  after dedup .*(1 chunk)$' "$WORK/st1.out" ||
	fail "stats of one chunk: $(grep 'after dedup' "$WORK/st1.out")"
! grep -q 'pending' "$WORK/st1.out" ||
	fail "stats of a raw store has a pending line: $(grep pending "$WORK/st1.out")"

# names: a newline, a 0xff byte, a C1 control (U+009B, a terminal's CSI),
# a backslash; valid printable UTF-8 (U+00E9) passes
nl=$'a\nb' ff=$'c\xffd' c1=$'e\xc2\x9bf' bs='g\h' ok=$'\xc3\xa9t\xc3\xa9'
for n in "$nl" "$ff" "$c1" "$bs" "$ok"; do
	head -c 100 /dev/urandom >"$MNT/$n"
done
sync -f "$MNT"
"$MIXFS" stats --files "$MNT" >"$WORK/st2.out" 2>&1 || fail "stats --files exited $?: $(cat "$WORK/st2.out")"
for want in '/a\x0ab' '/c\xffd' '/e\xc2\x9bf' '/g\x5ch' $'/\xc3\xa9t\xc3\xa9'; do
	grep -qF -- "  $want" "$WORK/st2.out" || fail "stats --files: no row '$want': $(cat -v "$WORK/st2.out")"
done
LC_ALL=C grep -q $'[\x7f-\x9f\xff]' <(grep -v $'\xc3\xa9t' "$WORK/st2.out") &&
	fail "stats --files: a raw unprintable byte: $(cat -v "$WORK/st2.out")"
grep -q '^  after dedup .*(6 chunks)$' "$WORK/st2.out" ||
	fail "stats of six chunks: $(grep 'after dedup' "$WORK/st2.out")"
mixfs_umount

# fsck: the frame line says how many of the checked frames are damaged
"$MIXFS" fsck "$STORE" >"$WORK/fsck1.out" 2>&1 || fail "fsck exited $?: $(cat "$WORK/fsck1.out")"
grep -q '^frames: 6 checked, 0 damaged (' "$WORK/fsck1.out" ||
	fail "fsck of a sound store: $(grep '^frames' "$WORK/fsck1.out")"
pack=$(ls "$STORE"/packs/*.pack | head -n 1)
# a byte in the middle of the first frame (the 8 KiB file's, header first)
python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4096)
    b = f.read(1)[0]
    f.seek(4096)
    f.write(bytes([b ^ 0xff]))' "$pack"
rc=0
"$MIXFS" fsck "$STORE" >"$WORK/fsck2.out" 2>&1 || rc=$?
check_eq "fsck of a damaged frame: exit status ($(grep '^frames' "$WORK/fsck2.out"))" 1 "$rc"
grep -q '^frames: 6 checked, 1 damaged (' "$WORK/fsck2.out" ||
	fail "fsck of a damaged frame: $(grep '^frames' "$WORK/fsck2.out")"

log "PASS"
