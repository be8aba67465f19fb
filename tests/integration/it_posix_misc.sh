#!/bin/bash
# Hard links, symlinks, chmod/chown/touch, statfs, user.* xattrs, mkdir/rmdir,
# a directory of 10,000 entries, name length limits, a sparse file > 4 GiB,
# append with >>.
. "$(dirname "$0")/lib.sh"
it_start
cd "$MNT"

# Hard links.
printf 'data\n' >h1
ln h1 h2
ln h1 h3
is_standin || check_eq "nlink after 2 links" 3 "$(stat -c %h h1)"
check_eq "same inode" "$(stat -c %i h1)" "$(stat -c %i h3)"
printf 'more\n' >>h2
is_standin || check_eq "write via one link seen via another" "$(printf 'data\nmore')" "$(cat h3)"
rm h1
is_standin || check_eq "nlink after rm" 2 "$(stat -c %h h2)"
expect_fail "hard link to a directory" ln "$MNT" "$MNT/dirlink"

# Symlinks.
ln -s h2 s1
ln -s /nonexistent/target dangling
ln -s "$(printf 'x%.0s' $(seq 1 1000))" longlink
check_eq "readlink" h2 "$(readlink s1)"
check_eq "cat through symlink" "$(cat h2)" "$(cat s1)"
check_eq "dangling readlink" /nonexistent/target "$(readlink dangling)"
check_eq "long symlink length" 1000 "$(readlink longlink | tr -d '\n' | wc -c)"
check_eq "lstat type" "symbolic link" "$(stat -c %F s1)"
[ ! -e dangling ] || fail "dangling symlink resolves"

# chmod / chown / touch.
printf 'x' >perm
chmod 0741 perm
check_eq "chmod" 741 "$(stat -c %a perm)"
chmod u+s,g+s perm
check_eq "chmod setuid/setgid" 6741 "$(stat -c %a perm)"
chown 1234:5678 perm
check_eq "chown" "1234:5678" "$(stat -c %u:%g perm)"
chown :4321 perm
check_eq "chgrp" "1234:4321" "$(stat -c %u:%g perm)"
touch -d '2010-05-06 07:08:09.123456789' perm
check_eq "touch -d mtime" "2010-05-06 07:08:09.123456789" "$(stat -c %y perm | cut -c1-29)"
touch -a -d '2011-01-01 00:00:00' perm
is_standin || check_eq "touch -a atime" "2011-01-01 00:00:00" "$(stat -c %x perm | cut -c1-19)"
check_eq "touch -a kept mtime" "2010-05-06 07:08:09" "$(stat -c %y perm | cut -c1-19)"
before=$(stat -c %Z perm)
sleep 1.1
chmod 0600 perm
[ "$(stat -c %Z perm)" -gt "$before" ] || fail "ctime not updated by chmod"
touch -h -d '2012-01-01' s1
check_eq "touch -h on a symlink" 2012 "$(stat -c %y s1 | cut -c1-4)"
check_eq "touch -h left the target alone" "$(stat -c %Y h2)" "$(stat -c %Y h2)"

# mknod of a FIFO.
mkfifo fifo
check_eq "fifo type" fifo "$(stat -c %F fifo)"

# statfs.
df -P "$MNT" >/dev/null || fail "df $MNT"
[ "$(stat -f -c %b "$MNT")" -gt 0 ] || fail "statfs reports 0 blocks"
[ "$(stat -f -c %l "$MNT")" -ge 255 ] || fail "statfs name max $(stat -f -c %l "$MNT") < 255"

# xattrs.
if command -v setfattr >/dev/null; then
	printf 'x' >xa
	setfattr -n user.test -v hello xa
	setfattr -n user.bin -v 0x00ff10 xa
	check_eq "getfattr" hello "$(getfattr --only-values -n user.test xa)"
	check_eq "getfattr hex" "0x00ff10" "$(getfattr -e hex -n user.bin xa | sed -n 's/^user.bin=//p')"
	getfattr -d xa | grep -q '^user.test="hello"' || fail "user.test not listed by getfattr -d"
	setfattr -n user.test -v world xa
	check_eq "xattr replaced" world "$(getfattr --only-values -n user.test xa)"
	setfattr -x user.test xa
	expect_fail "getfattr of a removed xattr" getfattr -n user.test xa
	big=$(head -c 3000 /dev/zero | tr '\0' 'v')
	setfattr -n user.big -v "$big" xa
	check_eq "3000-byte xattr" "$big" "$(getfattr --only-values -n user.big xa)"
	# copies that keep xattrs: the file's own, not mixfs's virtual ones
	# (read by name only: copied, setting them failed with EPERM)
	cp --preserve=xattr xa xa2 || fail "cp --preserve=xattr within the mount"
	check_eq "xattr kept by cp --preserve=xattr" "$big" "$(getfattr --only-values -n user.big xa2)"
	if command -v rsync >/dev/null; then
		rsync -aX xa xa3 || fail "rsync -aX within the mount"
	fi
	mkdir xdir
	setfattr -n user.d -v dirval xdir
	check_eq "xattr on a directory" dirval "$(getfattr --only-values -n user.d xdir)"
else
	log "setfattr missing (apt-get install attr): xattr checks skipped"
fi

# mkdir / rmdir.
mkdir -p d1/d2/d3
check_eq "dir nlink" 3 "$(stat -c %h d1)"
expect_fail "rmdir non-empty" rmdir d1
rmdir d1/d2/d3 d1/d2 d1
[ ! -e d1 ] || fail "rmdir left d1"
expect_fail "mkdir existing" mkdir h2
expect_fail "rmdir a file" rmdir h2
expect_fail "rm a directory without -r" rm xdir 2>/dev/null

# 10,000 entries in one directory.
mkdir many
(cd many && seq -f 'entry_%05g' 1 10000 | xargs touch)
check_eq "readdir of 10000 entries" 10000 "$(ls -f many | grep -c '^entry_')"
check_eq "sorted listing" "$(seq -f 'entry_%05g' 1 10000 | sha256sum)" "$(ls many | sha256sum)"
check_eq "find count" 10000 "$(find many -type f | wc -l)"
rm -r many
[ ! -e many ] || fail "rm -r of 10000 entries"

# Name length: 255 bytes OK, 256 bytes ENAMETOOLONG.
n255=$(printf 'a%.0s' $(seq 1 255))
n256=${n255}b
printf 'ok' >"$n255"
check_eq "255-byte name" ok "$(cat "$n255")"
err=$(printf 'no' 2>&1 >"$n256") && fail "a 256-byte name was accepted"
case $err in *"too long"*) ;; *) fail "256-byte name: expected 'File name too long', got '$err'" ;; esac
/usr/bin/python3 - "$n256" <<'PYEOF'
import errno, os, sys
for f in (lambda n: os.open(n, os.O_CREAT | os.O_WRONLY), os.mkdir, lambda n: os.symlink("x", n),
          lambda n: os.rename("h2", n), os.stat):
    try:
        f(sys.argv[1])
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            sys.exit(f"256-byte name gave errno {e.errno}, expected ENAMETOOLONG")
    else:
        sys.exit("256-byte name accepted")
PYEOF

# Sparse file > 4 GiB: truncate + dd seek, read back zeros + data.
truncate -s 5G big
check_eq "sparse size" 5368709120 "$(stat -c %s big)"
printf 'AT4G' | dd of=big bs=1 seek=4294967294 conv=notrunc status=none  # straddles 2^32
printf 'END!' | dd of=big bs=1 seek=5368709116 conv=notrunc status=none
check_eq "bytes across 4 GiB" AT4G "$(dd if=big bs=1 skip=4294967294 count=4 status=none)"
check_eq "bytes at the end" 'END!' "$(dd if=big bs=1 skip=5368709116 count=4 status=none)"
check_eq "zeros before" "$(head -c 1048576 /dev/zero | sha256sum)" \
	"$(dd if=big bs=1M skip=4094 count=1 status=none | sha256sum)"
check_eq "zeros at start" "$(head -c 1048576 /dev/zero | sha256sum)" \
	"$(dd if=big bs=1M count=1 status=none | sha256sum)"
[ "$(stat -c %b big)" -lt 65536 ] || is_standin ||
	fail "sparse 5 GiB file uses $(stat -c %b big) blocks"
truncate -s 4294967296 big
check_eq "truncated across the data" "$(printf 'AT')" "$(dd if=big bs=1 skip=4294967294 count=4 status=none)"
rm big

# Append with >>.
printf 'one\n' >ap
printf 'two\n' >>ap
echo three >>ap
check_eq "append" "$(printf 'one\ntwo\nthree')" "$(cat ap)"
head -c 100000 /dev/urandom >"$WORK/apref"
cat "$WORK/apref" >>ap
check_eq "append size" $((14 + 100000)) "$(stat -c %s ap)"
check_eq "appended tail" "$(sha "$WORK/apref")" "$(tail -c 100000 ap | sha256sum | cut -d' ' -f1)"

# fsync / fdatasync / sync -f work.
sync ap
sync -d ap
sync -f ap
cd /
log PASS
