/*
 * test_idx_reopen.c - MDB_PANIC recovery (env_recover) when the reopen
 * itself fails: the index must keep failing cleanly (and retry), not
 * dereference a NULL environment.  A failed meta page write is injected
 * by interposing pwrite; the reopen is made to fail by moving the index
 * directory away for one attempt.
 */
#undef _FILE_OFFSET_BITS /* pwrite and pwrite64 are two symbols here */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "index/idx.h"

static int fail_meta;

static int fail_this(int fd, off_t off)
{
	char link[64], path[4096];
	ssize_t n;
	if (!fail_meta || off >= 8192)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return 0;
	path[n] = 0;
	if (!strstr(path, "data.mdb"))
		return 0;
	fail_meta--;
	errno = EIO;
	return 1;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "pwrite64");
	return fail_this(fd, off) ? -1 : real(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite64(fd, buf, n, off);
}

#define CHECK(c)                                                                   \
	do {                                                                       \
		if (!(c)) {                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			exit(1);                                                   \
		}                                                                  \
	} while (0)

static void run(const char *dir)
{
	char moved[128];
	struct idx *x;
	struct idx_txn *t;
	int rc;

	CHECK(idx_open(dir, 0, NULL, 0, &x) == 0);
	/* a commit whose meta page write fails: LMDB panics */
	CHECK(idx_txn_begin(x, false, &t) == 0);
	CHECK(idx_orphan_add(t, 77) == 0);
	fail_meta = 1;
	rc = idx_txn_commit(t);
	fprintf(stderr, "commit with failed meta write: %d\n", rc);
	CHECK(rc < 0);
	fail_meta = 0;
	/* the reopen fails once (here: the directory is away; on a failing
	 * disk: EIO reading the meta pages, EMFILE, ENOMEM for the map) */
	snprintf(moved, sizeof(moved), "%s.away", dir);
	CHECK(rename(dir, moved) == 0);
	rc = idx_txn_begin(x, true, &t);
	fprintf(stderr, "begin while the reopen fails: %d\n", rc);
	CHECK(rc < 0);
	CHECK(rename(moved, dir) == 0);
	/* the next caller must retry the reopen (or fail cleanly) */
	rc = idx_sync(x);
	fprintf(stderr, "sync after the failed reopen: %d\n", rc);
	rc = idx_txn_begin(x, false, &t);
	fprintf(stderr, "begin after the failed reopen: %d\n", rc);
	CHECK(rc == 0);
	CHECK(idx_orphan_add(t, 78) == 0);
	CHECK(idx_txn_commit(t) == 0);
	idx_close(x);
	exit(0);
}

int main(void)
{
	char dir[64] = "/tmp/mixfs-reopen-XXXXXX", cmd[160];
	struct idx_super s;
	struct idx *x;
	int status;
	pid_t pid;

	CHECK(mkdtemp(dir));
	memset(&s, 0, sizeof(s));
	s.format_version = IDX_FORMAT_VERSION;
	memcpy(s.uuid, "0123456789abcdef", 16);
	cdc_params_default(&s.cdc);
	s.default_level = 2;
	s.next_ino = 2;
	s.next_pack = 1;
	CHECK(idx_open(dir, IDX_CREATE, &s, 0, &x) == 0);
	idx_close(x);
	pid = fork();
	if (pid == 0)
		run(dir);
	CHECK(waitpid(pid, &status, 0) == pid);
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s.away", dir, dir);
	(void)system(cmd);
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "FAIL: killed by signal %d (%s)\n", WTERMSIG(status),
		        strsignal(WTERMSIG(status)));
		return 1;
	}
	if (WEXITSTATUS(status) != 0) {
		fprintf(stderr, "FAIL: exit %d\n", WEXITSTATUS(status));
		return 1;
	}
	fprintf(stderr, "PASS\n");
	return 0;
}
