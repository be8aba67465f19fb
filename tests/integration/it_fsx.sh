#!/bin/bash
# The random-operation verifier on the mount: a fixed seed, then a random one
# (its seed printed first, to reproduce a failure with fsx -S).
. "$(dirname "$0")/lib.sh"
[ -n "${FSX:-}" ] && [ -x "$FSX" ] || { echo "FSX (path to fsx) is not set" >&2; exit 1; }
it_start
N_FIXED=${IT_FSX_OPS:-5000}
N_RANDOM=${IT_FSX_RANDOM_OPS:-2000}

log "fixed seed, $N_FIXED ops"
"$FSX" -S 1 -N "$N_FIXED" -l 8M "$MNT" || fail "fsx fixed seed (see the report above)"
log "random seed, $N_RANDOM ops"
"$FSX" -r -N "$N_RANDOM" -l 8M "$MNT" || fail "fsx random seed (the seed is printed above)"
log "3 files interleaved"
"$FSX" -S 3 -n 3 -N 800 -l 4M "$MNT" || fail "fsx 3 files"
log "offsets beyond 4 GiB"
"$FSX" -S 4 -b -N 300 -o 256K "$MNT" || fail "fsx -b (offsets > 4 GiB)"
# The verifier must still catch a wrong byte here (its -X self test).
if "$FSX" -S 5 -N 300 -X 150 -l 2M "$MNT" >"$WORK/x.out" 2>&1; then
	fail "fsx -X did not report the injected mismatch"
fi
grep -q MISMATCH "$WORK/x.out" || fail "fsx -X failed without a MISMATCH report: $(tail -5 "$WORK/x.out")"
rm -f "$MNT"/fsx.*.dat
# Everything fsx left must survive a remount.
"$FSX" -S 6 -N 500 -l 4M -k "$MNT" >/dev/null || fail "fsx -S 6"
f=$(ls "$MNT"/fsx.*.dat)
sha=$(sha "$f")
mixfs_umount
mixfs_mount
check_eq "fsx file after remount" "$sha" "$(sha "$f")"
log PASS
