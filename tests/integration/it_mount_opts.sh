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
# kernel_ra=: the mount's backing device gets that readahead window
# (default 4M); a bad size is refused before mounting.
bdi_ra() { cat "/sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb"; }
check_eq "default kernel readahead (KiB)" 4096 "$(bdi_ra)"
mixfs_umount
mixfs_mount fg kernel_ra=128K
check_eq "kernel_ra=128K (KiB)" 128 "$(bdi_ra)"
check_eq "read under kernel_ra=128K" hello "$(cat "$MNT/afterrw")"
mixfs_umount
if "$MIXFS" mount -f -o kernel_ra=2G "$STORE" "$MNT" 2>"$WORK/err"; then
	fail "kernel_ra=2G was accepted"
fi
grep -q 'kernel_ra' "$WORK/err" || fail "kernel_ra=2G: the message does not name the option: $(cat "$WORK/err")"
# max_ref_chain: at most 32 (reads and fsck take a chain of 64 links for
# a loop; 100 was accepted once and its chains read EIO after a remount)
if "$MIXFS" mount -f -o max_ref_chain=33 "$STORE" "$MNT" 2>"$WORK/err"; then
	fail "max_ref_chain=33 was accepted"
fi
grep -q 'max_ref_chain' "$WORK/err" || fail "max_ref_chain=33: the message does not name the option: $(cat "$WORK/err")"
mixfs_mount fg max_ref_chain=32
check_eq "read under max_ref_chain=32" hello "$(cat "$MNT/afterrw")"
log "PASS"
