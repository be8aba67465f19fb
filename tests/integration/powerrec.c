/*
 * powerrec.c - LD_PRELOAD recorder of the file system calls a mixfs daemon
 * makes under its store, for it_powerloss.sh (power-loss crash states,
 * CrashMonkey/ALICE style; the states are built by powerloss.py).
 *
 * Run the daemon with MIXFS_PACK_NO_URING=1 so pack I/O goes through libc.
 * Every call on a file or directory whose path starts with POWERREC_DIR
 * (an absolute, canonical path) is appended, in order, as one text line to
 * POWERREC_LOG (O_APPEND, one write(2) per line, so lines of other writers
 * of the log, the workload's markers, interleave in a real order); the
 * bytes of each write go to POWERREC_BLOB.  Lines (INO = st_ino):
 *   W INO OFF LEN BLOBOFF DSYNC   a write, logged before it is made
 *   WE INO RC                     that write failed (rare; informational)
 *   T INO LEN                     ftruncate, after it succeeded
 *   F INO MODE OFF LEN            fallocate, after it succeeded
 *   SB ID INO ISDIR PATH          fsync/fdatasync begins (nothing written
 *                                 after this line is covered by it)
 *   SE ID RC                      ... and returned RC (0: durable)
 *   C INO ISDIR PATH              a new file created by open(O_CREAT) / mkdir
 *   U INO PATH                    unlink, after it succeeded
 *   X WHAT PATH                   a call the model does not cover (rename,
 *                                 link, msync, ...): the checker refuses
 * Writes are logged before they are made and syncs when they begin, so a
 * crash point between the line and the call is covered conservatively (the
 * write may or may not be on disk, the sync covers nothing yet).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* pwrite and pwrite64 (and the other *64 calls) are two symbols here */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t rec_once = PTHREAD_ONCE_INIT;
static int log_fd = -1, blob_fd = -1;
static const char *rec_dir;
static size_t rec_dir_len;
static unsigned long long blob_off;
static atomic_ulong sync_ids;

#define REAL(ret, name, args)                                                   \
	static ret(*real_##name) args;                                          \
	if (!real_##name)                                                       \
		*(void **)&real_##name = dlsym(RTLD_NEXT, #name)

static void rec_init(void)
{
	const char *l = getenv("POWERREC_LOG"), *b = getenv("POWERREC_BLOB");

	rec_dir = getenv("POWERREC_DIR");
	if (!rec_dir || !l || !b)
		return;
	rec_dir_len = strlen(rec_dir);
	log_fd = (int)syscall(SYS_openat, AT_FDCWD, l, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	blob_fd = (int)syscall(SYS_openat, AT_FDCWD, b, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (log_fd < 0 || blob_fd < 0)
		abort(); /* a recorder that records nothing must not pass */
	blob_off = (unsigned long long)lseek(blob_fd, 0, SEEK_END);
}

static bool active(void)
{
	pthread_once(&rec_once, rec_init);
	return log_fd >= 0;
}

static bool under(const char *path)
{
	return !strncmp(path, rec_dir, rec_dir_len) && (path[rec_dir_len] == '/' || !path[rec_dir_len]);
}

/* Is fd a file under the store?  path gets its name. */
static bool fd_under(int fd, char *path, size_t cap)
{
	char link[64];
	ssize_t n;

	if (!active() || fd < 0)
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, cap - 1);
	if (n <= 0)
		return false;
	path[n] = '\0';
	return under(path);
}

/* Absolute form of (dirfd, path) without resolving the last component. */
static bool abs_under(int dirfd, const char *p, char *out, size_t cap)
{
	char base[PATH_MAX];

	if (!active())
		return false;
	if (p[0] == '/') {
		snprintf(out, cap, "%s", p);
	} else {
		if (dirfd == AT_FDCWD) {
			if (!getcwd(base, sizeof(base)))
				return false;
		} else {
			char link[64];
			ssize_t n;

			snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
			n = readlink(link, base, sizeof(base) - 1);
			if (n <= 0)
				return false;
			base[n] = '\0';
		}
		if ((size_t)snprintf(out, cap, "%.*s/%s", PATH_MAX / 2, base, p) >= cap)
			return false;
	}
	return under(out);
}

/* One line, one write(2); called with rec_lock. */
static void put_line(const char *fmt, ...)
{
	char line[PATH_MAX + 256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(line) - 1)
		abort();
	line[n++] = '\n';
	if (syscall(SYS_write, log_fd, line, (size_t)n) != n)
		abort();
}

static void put_blob(const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		long n = syscall(SYS_write, blob_fd, p, len);
		if (n <= 0)
			abort();
		p += n;
		len -= (size_t)n;
		blob_off += (unsigned long long)n;
	}
}

static unsigned long fd_ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

static bool fd_dsync(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & (O_DSYNC | O_SYNC));
}

/* Log a write of iov at off (off < 0: the fd's position). */
static void log_write(int fd, const struct iovec *iov, int n, long long off)
{
	char path[PATH_MAX];
	size_t len = 0;
	unsigned long ino;

	if (!fd_under(fd, path, sizeof(path)))
		return;
	ino = fd_ino(fd);
	if (off < 0) {
		int fl = fcntl(fd, F_GETFL);
		struct stat st;

		if (fl >= 0 && (fl & O_APPEND) && fstat(fd, &st) == 0)
			off = st.st_size;
		else
			off = (long long)syscall(SYS_lseek, fd, 0L, SEEK_CUR);
	}
	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	pthread_mutex_lock(&rec_lock);
	put_line("W %lu %lld %zu %llu %d", ino, off, len, blob_off, fd_dsync(fd) ? 1 : 0);
	for (int i = 0; i < n; i++)
		put_blob(iov[i].iov_base, iov[i].iov_len);
	pthread_mutex_unlock(&rec_lock);
}

static void log_write_err(int fd, ssize_t rc, size_t want)
{
	char path[PATH_MAX];

	if ((rc < 0 || (size_t)rc != want) && fd_under(fd, path, sizeof(path))) {
		pthread_mutex_lock(&rec_lock);
		put_line("WE %lu %zd", fd_ino(fd), rc < 0 ? -(ssize_t)errno : rc);
		pthread_mutex_unlock(&rec_lock);
	}
}

static void log_unsupported(const char *what, const char *path)
{
	pthread_mutex_lock(&rec_lock);
	put_line("X %s %s", what, path);
	pthread_mutex_unlock(&rec_lock);
}

/* ---- writes ---- */

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	REAL(ssize_t, pwrite64, (int, const void *, size_t, off_t));
	struct iovec v = { (void *)buf, n };
	ssize_t rc;

	log_write(fd, &v, 1, off);
	rc = real_pwrite64(fd, buf, n, off);
	log_write_err(fd, rc, n);
	return rc;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite64(fd, buf, n, off);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(ssize_t, write, (int, const void *, size_t));
	struct iovec v = { (void *)buf, n };
	ssize_t rc;

	log_write(fd, &v, 1, -1);
	rc = real_write(fd, buf, n);
	log_write_err(fd, rc, n);
	return rc;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(ssize_t, writev, (int, const struct iovec *, int));
	size_t len = 0;
	ssize_t rc;

	for (int i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	log_write(fd, iov, cnt, -1);
	rc = real_writev(fd, iov, cnt);
	log_write_err(fd, rc, len);
	return rc;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(ssize_t, pwritev64, (int, const struct iovec *, int, off_t));
	size_t len = 0;
	ssize_t rc;

	for (int i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	log_write(fd, iov, cnt, off);
	rc = real_pwritev64(fd, iov, cnt, off);
	log_write_err(fd, rc, len);
	return rc;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev64(fd, iov, cnt, off);
}

int ftruncate64(int fd, off_t len)
{
	REAL(int, ftruncate64, (int, off_t));
	char path[PATH_MAX];
	int rc = real_ftruncate64(fd, len);

	if (rc == 0 && fd_under(fd, path, sizeof(path))) {
		pthread_mutex_lock(&rec_lock);
		put_line("T %lu %lld", fd_ino(fd), (long long)len);
		pthread_mutex_unlock(&rec_lock);
	}
	return rc;
}

int ftruncate(int fd, off_t len)
{
	return ftruncate64(fd, len);
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
	REAL(int, fallocate64, (int, int, off_t, off_t));
	char path[PATH_MAX];
	int rc = real_fallocate64(fd, mode, off, len);

	if (rc == 0 && fd_under(fd, path, sizeof(path))) {
		pthread_mutex_lock(&rec_lock);
		put_line("F %lu %d %lld %lld", fd_ino(fd), mode, (long long)off, (long long)len);
		pthread_mutex_unlock(&rec_lock);
	}
	return rc;
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	return fallocate64(fd, mode, off, len);
}

/* ---- syncs ---- */

static int do_sync(int fd, bool data)
{
	REAL(int, fsync, (int));
	REAL(int, fdatasync, (int));
	char path[PATH_MAX];
	unsigned long id = 0;
	bool rec = fd_under(fd, path, sizeof(path));
	int rc, err;

	if (rec) {
		struct stat st = { 0 };
		bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);

		id = atomic_fetch_add(&sync_ids, 1) + 1;
		pthread_mutex_lock(&rec_lock);
		put_line("SB %lu %lu %d %s", id, (unsigned long)st.st_ino, dir ? 1 : 0, path);
		pthread_mutex_unlock(&rec_lock);
	}
	rc = data ? real_fdatasync(fd) : real_fsync(fd);
	err = errno;
	if (rec) {
		pthread_mutex_lock(&rec_lock);
		put_line("SE %lu %d", id, rc < 0 ? -err : 0);
		pthread_mutex_unlock(&rec_lock);
	}
	errno = err;
	return rc;
}

int fsync(int fd)
{
	return do_sync(fd, false);
}

int fdatasync(int fd)
{
	return do_sync(fd, true);
}

int msync(void *addr, size_t len, int flags)
{
	REAL(int, msync, (void *, size_t, int));

	if (active())
		log_unsupported("msync", "?");
	return real_msync(addr, len, flags);
}

int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags)
{
	REAL(int, sync_file_range, (int, off64_t, off64_t, unsigned int));
	char path[PATH_MAX];

	if (fd_under(fd, path, sizeof(path)))
		log_unsupported("sync_file_range", path);
	return real_sync_file_range(fd, off, n, flags);
}

/* ---- names ---- */

static int do_open(const char *name, int dirfd, const char *p, int flags, mode_t mode)
{
	REAL(int, openat64, (int, const char *, int, ...));
	char path[PATH_MAX];
	struct stat st;
	bool rec = (flags & O_CREAT) && abs_under(dirfd, p, path, sizeof(path));
	bool existed = rec && fstatat(dirfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0;
	int fd, err;

	(void)name;
	fd = real_openat64(dirfd, p, flags, mode);
	err = errno;
	if (fd >= 0 && rec && !existed) {
		pthread_mutex_lock(&rec_lock);
		put_line("C %lu 0 %s", fd_ino(fd), path);
		pthread_mutex_unlock(&rec_lock);
	}
	errno = err;
	return fd;
}

#define OPEN_MODE(flags) \
	mode_t mode = 0; \
	if ((flags) & (O_CREAT | __O_TMPFILE)) { \
		va_list ap; \
		va_start(ap, flags); \
		mode = (mode_t)va_arg(ap, int); \
		va_end(ap); \
	}

int open64(const char *p, int flags, ...)
{
	OPEN_MODE(flags);
	return do_open("open64", AT_FDCWD, p, flags, mode);
}

int open(const char *p, int flags, ...)
{
	OPEN_MODE(flags);
	return do_open("open", AT_FDCWD, p, flags, mode);
}

int openat64(int dirfd, const char *p, int flags, ...)
{
	OPEN_MODE(flags);
	return do_open("openat64", dirfd, p, flags, mode);
}

int openat(int dirfd, const char *p, int flags, ...)
{
	OPEN_MODE(flags);
	return do_open("openat", dirfd, p, flags, mode);
}

int creat64(const char *p, mode_t mode)
{
	return do_open("creat", AT_FDCWD, p, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int creat(const char *p, mode_t mode)
{
	return creat64(p, mode);
}

static int do_unlink(int dirfd, const char *p, int flags)
{
	REAL(int, unlinkat, (int, const char *, int));
	char path[PATH_MAX];
	struct stat st;
	bool rec = abs_under(dirfd, p, path, sizeof(path));
	bool known = rec && fstatat(dirfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0;
	int rc = real_unlinkat(dirfd, p, flags), err = errno;

	if (rc == 0 && rec) {
		pthread_mutex_lock(&rec_lock);
		if (known && !S_ISDIR(st.st_mode))
			put_line("U %lu %s", (unsigned long)st.st_ino, path);
		else
			put_line("X rmdir %s", path);
		pthread_mutex_unlock(&rec_lock);
	}
	errno = err;
	return rc;
}

int unlink(const char *p)
{
	return do_unlink(AT_FDCWD, p, 0);
}

int unlinkat(int dirfd, const char *p, int flags)
{
	return do_unlink(dirfd, p, flags);
}

int mkdir(const char *p, mode_t mode)
{
	REAL(int, mkdir, (const char *, mode_t));
	char path[PATH_MAX];
	struct stat st;
	bool rec = abs_under(AT_FDCWD, p, path, sizeof(path));
	int rc = real_mkdir(p, mode), err = errno;

	if (rc == 0 && rec) {
		pthread_mutex_lock(&rec_lock);
		put_line("C %lu 1 %s", lstat(p, &st) == 0 ? (unsigned long)st.st_ino : 0, path);
		pthread_mutex_unlock(&rec_lock);
	}
	errno = err;
	return rc;
}

#define UNSUPPORTED2(fn, args, call, a, b)                                      \
	int fn args                                                             \
	{                                                                       \
		REAL(int, fn, args);                                            \
		char path[PATH_MAX];                                            \
		int rc = real_##fn call, err = errno;                           \
		if (rc == 0 && (abs_under(AT_FDCWD, a, path, sizeof(path)) ||    \
		                abs_under(AT_FDCWD, b, path, sizeof(path))))     \
			log_unsupported(#fn, path);                             \
		errno = err;                                                    \
		return rc;                                                      \
	}

UNSUPPORTED2(rename, (const char *o, const char *n), (o, n), o, n)
UNSUPPORTED2(link, (const char *o, const char *n), (o, n), o, n)
UNSUPPORTED2(symlink, (const char *o, const char *n), (o, n), n, n)
UNSUPPORTED2(renameat, (int od, const char *o, int nd, const char *n), (od, o, nd, n), o, n)
UNSUPPORTED2(renameat2, (int od, const char *o, int nd, const char *n, unsigned f), (od, o, nd, n, f), o, n)
