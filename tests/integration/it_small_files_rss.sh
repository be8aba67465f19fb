#!/bin/bash
# Memory of the daemon after many small files were written and deleted.
# Since closes leave their batches to the group commit, thousands of
# batches are allocated by the FUSE threads and freed by the committer in
# bulk; glibc keeps the freed memory in its arenas (60,000 files of 100
# bytes left ~90 MiB resident with 11 MiB in use; it was ~13 MiB when
# every close waited).  Once idle, the daemon must give it back.
. "$(dirname "$0")/lib.sh"
need_mixfs "daemon memory"
# a sanitizer build's allocator keeps freed memory in quarantine
ldd "$MIXFS" 2>/dev/null | grep -q 'libasan\|libtsan' && skip "sanitizer build: its allocator is not glibc's"
it_start -o cache=8M,rebase_idle=500
command -v python3 >/dev/null || skip "python3 missing"
for r in 1 2 3; do
	python3 - "$MNT/many" <<'PY'
import os, sys
d = sys.argv[1]
os.makedirs(d)
for i in range(20000):
    with open(f"{d}/f{i}", "wb") as f:
        f.write(os.urandom(100) + str(i).encode())
PY
	rm -rf "$MNT/many"
done
sleep 7 # an idle spell, and 5 s more for the deletions
rss=$(awk '/^RssAnon:/ {print $2}' "/proc/$MOUNT_PID/status")
log "daemon RssAnon after 60000 small files written and deleted: $rss kB"
[ "$rss" -lt 40960 ] || fail "daemon keeps $rss kB of anonymous memory once idle (expected < 40 MiB)"
log PASS
