#!/bin/bash
# Readers against the online gc and rebase (ARCHITECTURE.md, "Read" and
# "Online gc"): a reader whose snapshot names a frame that gc moved or
# punched, or that rebase re-encoded, retries on a fresh chunk record; only
# a failure of the current frame is EIO.
#
# Mount with gc_interval=1, rebase_idle=100, 16 MiB packs, a 4 MiB decoded
# chunk cache and no readahead (reads decode from the packs), write 28
# distinct random files of 1-2 MiB and 4 bf16 safetensors series of 3
# versions (gcreaders.py setup), then for IT_GCR_SECONDS (35; 180 with
# MIXFS_LONG=1): 3 reader processes loop over random files, each read after
# dropping the file's page cache (mixfs opens with keep_cache): whole files,
# random ranges with pread, dd skip/count and mmap, compared with a copy
# outside the mount; one writer in waves deletes a third of the random files
# and writes as many new ones (half-dead packs for the online gc), writes a
# new version of each series and deletes old versions, sometimes the one the
# new version is coded against (rebase makes the new one full and frees it);
# until the daemon has logged both a compacting gc pass and a rebase group,
# the writer waits up to 10 s after a wave for them (a slow build codes a
# wave's batches for longer than the usual 0.5-1.5 s pause), and the run
# goes on past IT_GCR_SECONDS (90 s at most) until they are there.
# Any wrong byte, or any error on a file the reader opened, fails.  The
# daemon log must show online gc passes that compacted packs and rebase
# groups during the run, and no "unreadable" chunk.  Then fsck is clean, and
# after a remount every surviving file reads back equal.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "online gc and rebase under readers"
PY=$(dirname "$0")/gcreaders.py
SEED=${IT_GCR_SEED:-$(( $(date +%s) % 100000 ))}
SECS=${IT_GCR_SECONDS:-$(by_length 35 180)}
READERS=${IT_GCR_READERS:-3}
log "seed $SEED (IT_GCR_SEED), $SECS s, $READERS readers"
# numpy: the first python3 that has it (PATH may name one without)
PY3=
for p in "${IT_PYTHON:-}" python3 /usr/bin/python3; do
	[ -n "$p" ] && "$p" -c 'import numpy' 2>/dev/null && { PY3=$p; break; }
done
[ -n "$PY3" ] || skip "no python3 with numpy"

OPTS=gc_interval=1,rebase_idle=100,pack_size=16M,cache=4M,readahead=0
mixfs_mkfs
mixfs_mount fg "$OPTS"
"$PY3" "$PY" setup "$MNT" "$WORK/ref" "$SEED" || fail "setup failed"
sync -f "$MNT"
# what the log held before the run: gc and rebase must work during it
mark=$(wc -l <"$MOUNT_LOG")
# the writer reads the log from here on: until a gc pass has compacted a
# pack and rebase has re-encoded, it waits for a quiet spell after a wave
export IT_GCR_LOG=$MOUNT_LOG IT_GCR_LOG_AT=$(stat -c %s "$MOUNT_LOG")

rc=0
"$PY3" "$PY" run "$MNT" "$WORK/ref" "$SEED" "$SECS" "$READERS" 2>"$WORK/run.log" || rc=$?
cat "$WORK/run.log" >&2
[ "$rc" = 0 ] || fail "readers or writer failed (IT_GCR_SEED=$SEED): $(grep -m3 FAIL "$WORK/run.log")"

tail -n +"$((mark + 1))" "$MOUNT_LOG" >"$WORK/run.mlog"
if grep -E "unreadable|extent beyond|Input/output" "$WORK/run.mlog" >"$WORK/bad.log"; then
	fail "daemon logged $(wc -l <"$WORK/bad.log") read errors during the run: $(head -n 3 "$WORK/bad.log")"
fi
# online gc passes that moved frames (compacted packs) under the readers
compacted=$(grep -oE "online gc of .*: [0-9]+ packs compacted" "$WORK/run.mlog" |
	grep -oE "[0-9]+ packs compacted" | awk '$1 > 0 { n++; s += $1 } END { printf "%d %d", n, s }')
punched=$(grep -cE "online gc of .* [1-9][0-9]* bytes freed in place" "$WORK/run.mlog" || true)
rebased=$(grep -oE "rebase in .*: [0-9]+ chunks made full" "$WORK/run.mlog" |
	grep -oE "[0-9]+ chunks made full" | awk '{ n++; s += $1 } END { printf "%d %d", n, s }')
log "online gc passes that compacted packs / packs: $compacted; passes that punched: $punched;" \
	"rebase groups / chunks re-encoded: $rebased"
[ "${compacted%% *}" -ge 1 ] || fail "no online gc pass compacted a pack during the run"
[ "${rebased%% *}" -ge 1 ] || fail "rebase re-encoded nothing during the run"

"$PY3" "$PY" verify "$MNT" "$WORK/ref" || fail "files differ after the run"
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck.log" 2>&1 || fail "fsck after the run: $(tail -n 20 "$WORK/fsck.log")"
mixfs_mount fg "$OPTS"
"$PY3" "$PY" verify "$MNT" "$WORK/ref" || fail "files differ after the remount"
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck2.log" 2>&1 || fail "fsck after the remount: $(tail -n 20 "$WORK/fsck2.log")"
# a sanitizer build's reports (UBSan goes on after one)
if grep -hE "runtime error|AddressSanitizer|LeakSanitizer" "$WORK"/mount.*.log >"$WORK/san.log"; then
	fail "sanitizer reports in the daemon logs: $(head -n 3 "$WORK/san.log")"
fi
log "PASS"
