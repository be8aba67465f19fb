/*
 * faultshim.c - LD_PRELOAD fault injection for it_pack_errors.sh and
 * it_index_errors.sh.
 *
 * Only the pread/pwrite/fdatasync fallback of fs/pack.c goes through libc
 * (run the daemon with MIXFS_PACK_NO_URING=1).  Environment:
 *   FAULT_OPS      comma list of "pwrite", "fdatasync": calls to fail
 *   FAULT_MATCH    path substring of the file a call must be on (/packs/)
 *   FAULT_TRIGGER  fail only while this file exists
 *   FAULT_COUNT    fail at most this many calls (0: no limit)
 *   FAULT_ERRNO    errno to fail with (default EIO)
 *   FAULT_MAXOFF   pwrite: fail only below this file offset (LMDB's meta
 *                  pages are the first two pages of data.mdb)
 * or, to stall a thread copying frames out of an old pack (online gc):
 *   FAULT_SRC      path substring of that pack
 *   FAULT_DELAY_AT the thread's pread number (from FAULT_SRC) that sleeps
 *   FAULT_SLEEP_MS how long; the first pwrite to FAULT_MATCH by any thread
 *                  while it sleeps fails with FAULT_ERRNO.
 * Every injected failure is logged on stderr ("faultshim: ...").
 */
/* pwrite and pwrite64 are two symbols here, both interposed */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_long failed;
static atomic_bool sleeping, stall_done;
static __thread long src_reads;

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? atol(v) : def;
}

static int on_file(int fd, const char *match)
{
	char link[64], path[4096];
	ssize_t n;

	if (!match)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return 0;
	path[n] = '\0';
	return strstr(path, match) != NULL;
}

/* Fail this call?  Sets errno when it says yes. */
static int inject(const char *op, int fd)
{
	const char *ops = getenv("FAULT_OPS"), *trig = getenv("FAULT_TRIGGER");
	const char *match = getenv("FAULT_MATCH") ? getenv("FAULT_MATCH") : "/packs/";
	long count = env_long("FAULT_COUNT", 0);
	int err = (int)env_long("FAULT_ERRNO", EIO);

	if (!on_file(fd, match))
		return 0;
	if (atomic_load(&sleeping) && !strcmp(op, "pwrite") && !atomic_exchange(&stall_done, true))
		goto fail;
	if (!ops || !strstr(ops, op) || (trig && access(trig, F_OK) != 0))
		return 0;
	if (count && atomic_fetch_add(&failed, 1) >= count)
		return 0;
fail:
	fprintf(stderr, "faultshim: %s on fd %d: %s\n", op, fd, strerror(err));
	errno = err;
	return 1;
}

static void stall(int fd)
{
	long at = env_long("FAULT_DELAY_AT", 0);

	if (!at || atomic_load(&stall_done) || !on_file(fd, getenv("FAULT_SRC")) || ++src_reads != at)
		return;
	fprintf(stderr, "faultshim: read %ld of %s stalls\n", src_reads, getenv("FAULT_SRC"));
	atomic_store(&sleeping, true);
	usleep((useconds_t)env_long("FAULT_SLEEP_MS", 2000) * 1000);
	atomic_store(&sleeping, false);
	atomic_store(&stall_done, true);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "pwrite64");
	long maxoff = env_long("FAULT_MAXOFF", -1);

	if (maxoff >= 0 && off >= maxoff)
		return real(fd, buf, n, off);
	return inject("pwrite", fd) ? -1 : real(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite64(fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, void *, size_t, off_t);

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "pread64");
	stall(fd);
	return real(fd, buf, n, off);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	return pread64(fd, buf, n, off);
}

int fdatasync(int fd)
{
	static int (*real)(int);

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "fdatasync");
	return inject("fdatasync", fd) ? -1 : real(fd);
}
