#!/bin/bash
# A training job on a disk too small for its checkpoints: each step saves a
# 6 MiB checkpoint (cp + sync); when the save fails (ENOSPC), the job
# deletes its oldest checkpoint and tries again a second later, as rotating
# savers do.  Every save must go through after some deletions (they commit
# on the full disk, and the online gc gives their bytes back: at the
# default interval of 60 s, a failed write-back for lack of space has it
# run as soon as bytes died; before, saves failed for up to a minute), the
# kept checkpoints read back equal, fsck is clean and the daemon exits 0.
. "$(dirname "$0")/lib.sh"
need_mixfs "a store on its own small file system"
tmpfs_init 48m
mixfs_mkfs
mixfs_mount fg level=fast

STEPS=${IT_ROTATE_STEPS:-16}
kept=()
failed=0
deleted=0
for step in $(seq 1 "$STEPS"); do
	head -c 6M /dev/urandom >"$WORK/src" # incompressible: stored raw
	sha "$WORK/src" >"$WORK/ckpt-$step.sha"
	saved=0
	for _ in $(seq 1 12); do
		if cp "$WORK/src" "$MNT/ckpt-$step" 2>/dev/null && sync "$MNT/ckpt-$step" 2>/dev/null; then
			saved=1
			break
		fi
		failed=$((failed + 1))
		rm -f "$MNT/ckpt-$step" || fail "step $step: removing the failed save failed"
		if [ ${#kept[@]} -gt 0 ]; then
			rm "$MNT/ckpt-${kept[0]}" 2>"$WORK/rm.err" ||
				fail "step $step: rm ckpt-${kept[0]} on the full disk: $(cat "$WORK/rm.err")"
			kept=("${kept[@]:1}")
			deleted=$((deleted + 1))
		fi
		sleep 1
	done
	[ "$saved" = 1 ] || fail "step $step: not saved after 12 tries (${#kept[@]} checkpoints kept)"
	kept+=("$step")
	[ "$(sha "$MNT/ckpt-$step")" = "$(cat "$WORK/ckpt-$step.sha")" ] || fail "step $step: read back differs"
done
[ "$failed" -gt 0 ] || fail "the disk never filled up ($STEPS saves of 6 MiB on 48 MiB)"
for s in "${kept[@]}"; do
	[ "$(sha "$MNT/ckpt-$s")" = "$(cat "$WORK/ckpt-$s.sha")" ] || fail "ckpt-$s differs at the end"
done
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.out" 2>&1 || fail "fsck: $(tail -n 5 "$WORK/fsck.out")"
log "PASS: $STEPS saves, $failed failed with the disk full, $deleted oldest deleted, ${#kept[@]} kept and equal; fsck clean"
