#!/bin/bash
# Mount options as mount(8) and libfuse read them: of "ro" and "rw", the last
# one wins, for the kernel's mount flags and for the store alike.
. "$(dirname "$0")/lib.sh"
it_start fg

mixfs_umount
# -o ro,rw: the kernel mounts read-write (libfuse takes the last); the store
# must then be writable too, not opened read-only under a rw mount.
mixfs_mount fg ro,rw
flags=$(awk -v m="$MNT" '$2 == m { print $4 }' /proc/mounts)
case ",$flags," in
*,rw,*) ;;
*) fail "-o ro,rw: kernel mount flags '$flags', expected rw" ;;
esac
{ echo hello >"$MNT/afterrw"; } 2>"$WORK/err" || fail "-o ro,rw: mounted rw, but a write fails: $(cat "$WORK/err")"
mixfs_umount
# -o rw,ro: read-only everywhere.
mixfs_mount fg rw,ro
if echo x >"$MNT/afterro" 2>/dev/null; then fail "-o rw,ro: a write succeeded"; fi
mixfs_umount
mixfs_mount fg
check_eq "file written under -o ro,rw" hello "$(cat "$MNT/afterrw")"
log "PASS"
