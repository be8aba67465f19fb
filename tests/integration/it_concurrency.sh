#!/bin/bash
# Two writers to different files at once, then four concurrent readers of one
# file; checksums agree.  Also concurrent writers to disjoint ranges of one file.
. "$(dirname "$0")/lib.sh"
it_start

rand_file "$WORK/a" 16 61
float_file "$WORK/b" 8 62
cp "$WORK/a" "$MNT/a" &
p1=$!
dd if="$WORK/b" of="$MNT/b" bs=65536 status=none &
p2=$!
wait $p1 || fail "writer 1 (cp)"
wait $p2 || fail "writer 2 (dd)"
check_cmp "$WORK/a" "$MNT/a"
check_cmp "$WORK/b" "$MNT/b"

want=$(sha "$WORK/a")
pids=()
for i in 1 2 3 4; do
	(
		# Different block sizes and starting points per reader.
		case $i in
		1) sha256sum "$MNT/a" ;;
		2) dd if="$MNT/a" bs=4097 status=none | sha256sum ;;
		3) cat "$MNT/a" | sha256sum ;;
		4) dd if="$MNT/a" iflag=nocache bs=1M status=none | sha256sum ;;
		esac | cut -d' ' -f1 >"$WORK/r$i"
	) &
	pids+=($!)
done
for i in 1 2 3 4; do
	wait "${pids[$((i - 1))]}" || fail "reader $i"
	check_eq "reader $i sha256" "$want" "$(cat "$WORK/r$i")"
done

# Readers while a writer rewrites another file.
dd if="$WORK/b" of="$MNT/c" bs=1M status=none &
w=$!
for i in 1 2 3; do
	check_eq "read during a write, pass $i" "$want" "$(sha "$MNT/a")"
done
wait $w || fail "concurrent writer"
check_cmp "$WORK/b" "$MNT/c"

# Four writers to disjoint 2 MiB ranges of one file (conv=notrunc).
truncate -s 8M "$MNT/shared"
cp "$WORK/a" "$WORK/shared.ref"
truncate -s 8M "$WORK/shared.ref"
pids=()
for i in 0 1 2 3; do
	dd if="$WORK/a" of="$MNT/shared" bs=1M skip=$((i * 2)) seek=$((i * 2)) count=2 conv=notrunc status=none &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "range writer $p"; done
check_cmp "$WORK/shared.ref" "$MNT/shared"
if [ -n "${FSX:-}" ] && [ -x "$FSX" ]; then
	# Two verifiers on separate files at the same time.
	"$FSX" -S 11 -N 1000 -l 4M "$MNT" >"$WORK/fsx1" 2>&1 &
	f1=$!
	"$FSX" -S 12 -N 1000 -l 4M "$MNT" >"$WORK/fsx2" 2>&1 &
	f2=$!
	wait $f1 || fail "fsx -S 11 in parallel: $(tail -30 "$WORK/fsx1")"
	wait $f2 || fail "fsx -S 12 in parallel: $(tail -30 "$WORK/fsx2")"
fi
log PASS
