/*
 * test_pack.c - pack store: round trips across rollovers, reads served
 * from write buffers, reopen, truncated and missing packs, concurrent
 * readers, batched reads, ENOSPC on a tiny tmpfs, remove.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fs/pack.h"

#define NFRAMES 3000
#define MAX_FRAME 8000

struct ctx {
	char base[64]; /* the temp dir teardown removes */
	char dir[96];  /* where the store lives: base or a mount below it */
	uint32_t next_id;
	struct pack_loc locs[NFRAMES];
	uint32_t npacks;
};

static int alloc_id(void *arg, uint32_t *id)
{
	struct ctx *c = arg;

	*id = c->next_id++;
	c->npacks++;
	return 0;
}

/* Frame i's bytes are a function of i alone, so checks need no copy. */
static void frame_fill(uint8_t *buf, uint32_t len, uint32_t i)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL * (i + 1);

	for (uint32_t k = 0; k < len; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[k] = (uint8_t)x;
	}
}

static uint32_t frame_len(uint32_t i)
{
	return 1 + (uint32_t)((i * 2654435761u) % MAX_FRAME);
}

static void frame_check(const uint8_t *buf, uint32_t len, uint32_t i)
{
	uint8_t want[MAX_FRAME];

	frame_fill(want, len, i);
	assert_memory_equal(buf, want, len);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	strcpy(c->base, "/tmp/mixfs-packtest-XXXXXX");
	if (!mkdtemp(c->base))
		return -1;
	strcpy(c->dir, c->base);
	c->next_id = 1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "%s/tiny", c->base);
	umount2(cmd, MNT_DETACH); /* in case test_enospc failed mounted */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", c->base);
	if (system(cmd))
		return -1;
	free(c);
	return 0;
}

static const struct pack_opts small_opts = {
	.max_pack_bytes = 256 << 10, .write_buf_bytes = 32 << 10, .write_bufs = 3
};

static struct pack_store *open_store(struct ctx *c, const struct pack_opts *o)
{
	struct pack_store *ps = NULL;

	assert_int_equal(pack_store_open(c->dir, o, alloc_id, c, &ps), 0);
	assert_non_null(ps);
	return ps;
}

static void append_all(struct pack_store *ps, struct ctx *c, uint32_t n)
{
	uint8_t buf[MAX_FRAME];

	for (uint32_t i = 0; i < n; i++) {
		uint32_t len = frame_len(i);
		frame_fill(buf, len, i);
		assert_int_equal(pack_append(ps, buf, len, &c->locs[i]), 0);
		assert_int_equal(c->locs[i].len, len);
	}
}

static void read_all(struct pack_store *ps, struct ctx *c, uint32_t n)
{
	uint8_t buf[MAX_FRAME];

	for (uint32_t i = 0; i < n; i++) {
		memset(buf, 0, sizeof(buf));
		assert_int_equal(pack_read(ps, &c->locs[i], buf), 0);
		frame_check(buf, c->locs[i].len, i);
	}
}

static void test_round_trip_rollover(void **state)
{
	struct ctx *c = *state;
	struct pack_store *ps = open_store(c, &small_opts);
	uint64_t total = 0;

	append_all(ps, c, NFRAMES);
	assert_int_equal(pack_sync(ps), 0);
	for (uint32_t i = 0; i < NFRAMES; i++) {
		/* Frames never straddle packs and stay under the limit. */
		assert_true(c->locs[i].off + c->locs[i].len <= small_opts.max_pack_bytes);
		total += c->locs[i].len;
	}
	assert_true(c->npacks > 10);
	read_all(ps, c, NFRAMES);
	{
		uint64_t sum = 0;
		for (uint32_t id = 1; id < c->next_id; id++) {
			int64_t sz = pack_file_size(ps, id);
			assert_true(sz > 0);
			sum += (uint64_t)sz;
		}
		assert_true(sum == total);
	}
	pack_store_close(ps);
}

/* pack_store_seal: the next append goes to a new pack (the current one
 * is then sealed: pack_store_current names the new one); sealing before
 * anything was appended to the current pack changes nothing. */
static void test_seal(void **state)
{
	struct ctx *c = *state;
	struct pack_store *ps = open_store(c, NULL);
	uint8_t buf[64] = { 1 };
	struct pack_loc a, b, d;

	assert_int_equal(pack_store_current(ps), 0);
	pack_store_seal(ps);
	assert_int_equal(pack_append(ps, buf, sizeof(buf), &a), 0);
	assert_int_equal(a.off, 0); /* the seal of no pack was a no-op */
	assert_int_equal(pack_store_current(ps), a.pack_id);
	pack_store_seal(ps);
	assert_int_equal(pack_store_current(ps), a.pack_id + 1); /* a.pack_id is sealed */
	assert_int_equal(pack_append(ps, buf, sizeof(buf), &b), 0);
	assert_true(b.pack_id > a.pack_id);
	assert_int_equal(b.off, 0);
	assert_int_equal(pack_append(ps, buf, sizeof(buf), &d), 0);
	assert_int_equal(d.pack_id, b.pack_id); /* once */
	assert_int_equal(pack_sync(ps), 0);
	assert_int_equal(pack_read(ps, &a, buf), 0);
	assert_int_equal(pack_read(ps, &b, buf), 0);
	pack_store_close(ps);
}

static void test_read_before_sync(void **state)
{
	struct ctx *c = *state;
	/* Big buffers: nothing reaches the disk before sync. */
	struct pack_opts o = { .max_pack_bytes = 1 << 30, .write_buf_bytes = 1 << 20, .write_bufs = 2 };
	struct pack_store *ps = open_store(c, &o);
	uint8_t buf[MAX_FRAME], got[MAX_FRAME];

	for (uint32_t i = 0; i < 500; i++) {
		uint32_t len = frame_len(i);
		frame_fill(buf, len, i);
		assert_int_equal(pack_append(ps, buf, len, &c->locs[i]), 0);
		assert_int_equal(pack_read(ps, &c->locs[i], got), 0);
		assert_memory_equal(got, buf, len);
		if (i > 0) { /* an older frame, possibly in a submitted buffer */
			uint32_t j = i / 2;
			assert_int_equal(pack_read(ps, &c->locs[j], got), 0);
			frame_check(got, c->locs[j].len, j);
		}
	}
	/* a damaged record: an offset whose end wraps past 2^64 names no
	 * buffered bytes (nothing copied from before the buffer) */
	struct pack_loc bad = c->locs[499];
	bad.off = UINT64_MAX - bad.len / 2;
	assert_true(pack_read(ps, &bad, got) < 0);
	pack_store_close(ps);
}

static void test_read_right_after_append_small_bufs(void **state)
{
	struct ctx *c = *state;
	struct pack_store *ps = open_store(c, &small_opts);
	uint8_t buf[MAX_FRAME], got[MAX_FRAME];

	for (uint32_t i = 0; i < NFRAMES; i++) {
		uint32_t len = frame_len(i);
		frame_fill(buf, len, i);
		assert_int_equal(pack_append(ps, buf, len, &c->locs[i]), 0);
		assert_int_equal(pack_read(ps, &c->locs[i], got), 0);
		assert_memory_equal(got, buf, len);
	}
	pack_store_close(ps);
}

static void test_reopen(void **state)
{
	struct ctx *c = *state;
	struct pack_store *ps = open_store(c, &small_opts);

	append_all(ps, c, NFRAMES);
	assert_int_equal(pack_sync(ps), 0);
	pack_store_close(ps);
	ps = open_store(c, NULL);
	read_all(ps, c, NFRAMES);
	pack_store_close(ps);
}

static void test_oversized_frame(void **state)
{
	struct ctx *c = *state;
	struct pack_opts o = { .max_pack_bytes = 1 << 20, .write_buf_bytes = 4096, .write_bufs = 2 };
	struct pack_store *ps = open_store(c, &o);
	uint32_t len = 3 * 4096 + 17;
	uint8_t *a = malloc(len), *b = malloc(len);
	struct pack_loc l1, l2;

	assert_non_null(a);
	assert_non_null(b);
	for (uint32_t k = 0; k < len; k++)
		a[k] = (uint8_t)(k * 7);
	assert_int_equal(pack_append(ps, a, 100, &l1), 0);
	assert_int_equal(pack_append(ps, a, len, &l2), 0);
	assert_int_equal(l2.off, 100);
	assert_int_equal(pack_read(ps, &l2, b), 0);
	assert_memory_equal(a, b, len);
	assert_int_equal(pack_sync(ps), 0);
	memset(b, 0, len);
	assert_int_equal(pack_read(ps, &l2, b), 0);
	assert_memory_equal(a, b, len);
	free(a);
	free(b);
	pack_store_close(ps);
}

static void test_truncated(void **state)
{
	struct ctx *c = *state;
	struct pack_store *ps = open_store(c, NULL);
	uint8_t buf[MAX_FRAME];
	char path[PATH_MAX];
	uint32_t last = 99;

	append_all(ps, c, 100);
	assert_int_equal(pack_sync(ps), 0);
	pack_store_close(ps);

	pack_path(c->dir, c->locs[last].pack_id, path, sizeof(path));
	assert_int_equal(truncate(path, (off_t)(c->locs[last].off + c->locs[last].len / 2)), 0);
	ps = open_store(c, NULL);
	assert_int_equal(pack_read(ps, &c->locs[last], buf), -EIO);
	/* Earlier frames are still fine. */
	assert_int_equal(pack_read(ps, &c->locs[0], buf), 0);
	frame_check(buf, c->locs[0].len, 0);
	pack_store_close(ps);
}

static void test_missing(void **state)
{
	struct ctx *c = *state;
	struct pack_store *ps = open_store(c, NULL);
	struct pack_loc l = { .pack_id = 0xdead, .len = 10, .off = 0 };
	uint8_t buf[16];
	int res[1];
	void *bufs[1] = { buf };

	assert_int_equal(pack_read(ps, &l, buf), -ENOENT);
	assert_int_equal(pack_read_many(ps, &l, bufs, 1, res), -ENOENT);
	assert_int_equal(res[0], -ENOENT);
	assert_int_equal(pack_file_size(ps, 0xdead), -ENOENT);
	pack_store_close(ps);
}

static void test_read_many(void **state)
{
	struct ctx *c = *state;
	struct pack_store *ps = open_store(c, &small_opts);
	enum { N = 300 };
	void *bufs[N];
	int res[N];
	struct pack_loc locs[N];

	append_all(ps, c, NFRAMES);
	/* No sync: some frames come from buffers, most from the files. */
	for (int i = 0; i < N; i++) {
		uint32_t j = (uint32_t)(i * 10);
		locs[i] = c->locs[j];
		bufs[i] = malloc(MAX_FRAME);
		assert_non_null(bufs[i]);
	}
	locs[N - 1] = c->locs[NFRAMES - 1];
	assert_int_equal(pack_read_many(ps, locs, bufs, N, res), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(res[i], 0);
		frame_check(bufs[i], locs[i].len, i == N - 1 ? NFRAMES - 1 : (uint32_t)(i * 10));
	}
	/* One bad location fails alone. */
	locs[5].pack_id = 0xbeef;
	assert_int_equal(pack_read_many(ps, locs, bufs, N, res), -ENOENT);
	assert_int_equal(res[5], -ENOENT);
	assert_int_equal(res[4], 0);
	assert_int_equal(res[6], 0);
	for (int i = 0; i < N; i++)
		free(bufs[i]);
	pack_store_close(ps);
}

struct reader_arg {
	struct pack_store *ps;
	struct ctx *c;
	unsigned seed;
	int failures;
};

static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	uint8_t buf[MAX_FRAME], want[MAX_FRAME];

	for (int n = 0; n < 3000; n++) {
		uint32_t i = (uint32_t)rand_r(&a->seed) % NFRAMES;
		uint32_t len = a->c->locs[i].len;
		if (pack_read(a->ps, &a->c->locs[i], buf)) {
			a->failures++;
			continue;
		}
		frame_fill(want, len, i);
		if (memcmp(buf, want, len))
			a->failures++;
	}
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	struct ctx *c = *state;
	struct pack_store *ps = open_store(c, &small_opts);
	pthread_t t[4];
	struct reader_arg a[4];

	append_all(ps, c, NFRAMES);
	assert_int_equal(pack_sync(ps), 0);
	for (int i = 0; i < 4; i++) {
		a[i] = (struct reader_arg){ .ps = ps, .c = c, .seed = (unsigned)i + 1 };
		assert_int_equal(pthread_create(&t[i], NULL, reader_main, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	pack_store_close(ps);
}

/* Readers running while the writer appends (and rolls over). */
struct live_arg {
	struct pack_store *ps;
	struct ctx *c;
	volatile uint32_t *published;
	int failures;
	unsigned seed;
};

static void *live_reader(void *p)
{
	struct live_arg *a = p;
	uint8_t buf[MAX_FRAME], want[MAX_FRAME];

	while (__atomic_load_n(a->published, __ATOMIC_ACQUIRE) < NFRAMES) {
		uint32_t n = __atomic_load_n(a->published, __ATOMIC_ACQUIRE);
		uint32_t i;
		if (!n)
			continue;
		i = n - 1 - (uint32_t)rand_r(&a->seed) % (n < 50 ? n : 50);
		if (pack_read(a->ps, &a->c->locs[i], buf)) {
			a->failures++;
			continue;
		}
		frame_fill(want, a->c->locs[i].len, i);
		if (memcmp(buf, want, a->c->locs[i].len))
			a->failures++;
	}
	return NULL;
}

static void test_read_while_writing(void **state)
{
	struct ctx *c = *state;
	struct pack_store *ps = open_store(c, &small_opts);
	volatile uint32_t published = 0;
	pthread_t t[3];
	struct live_arg a[3];
	uint8_t buf[MAX_FRAME];

	for (int i = 0; i < 3; i++) {
		a[i] = (struct live_arg){ .ps = ps, .c = c, .published = &published, .seed = (unsigned)i + 7 };
		assert_int_equal(pthread_create(&t[i], NULL, live_reader, &a[i]), 0);
	}
	for (uint32_t i = 0; i < NFRAMES; i++) {
		uint32_t len = frame_len(i);
		frame_fill(buf, len, i);
		assert_int_equal(pack_append(ps, buf, len, &c->locs[i]), 0);
		__atomic_store_n(&published, i + 1, __ATOMIC_RELEASE);
		if (i % 700 == 0)
			assert_int_equal(pack_sync(ps), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	pack_store_close(ps);
}

static void test_remove(void **state)
{
	struct ctx *c = *state;
	struct pack_store *ps = open_store(c, &small_opts);
	uint8_t buf[MAX_FRAME];

	append_all(ps, c, NFRAMES);
	assert_int_equal(pack_sync(ps), 0);
	/* Cache a read fd for pack 1, then remove the pack. */
	assert_int_equal(pack_read(ps, &c->locs[0], buf), 0);
	assert_int_equal(pack_remove(ps, c->locs[0].pack_id), 0);
	assert_int_equal(pack_read(ps, &c->locs[0], buf), -ENOENT);
	/* The pack being appended to cannot go. */
	assert_int_equal(pack_remove(ps, c->locs[NFRAMES - 1].pack_id), -EBUSY);
	assert_int_equal(pack_remove(ps, 0xdead), -ENOENT);
	pack_store_close(ps);
}

/* Readers of a pack while it is removed must not leave its fd cached:
 * the deleted file's space would stay taken until the store is closed. */
struct rm_arg {
	struct pack_store *ps;
	struct ctx *c;
	atomic_uint target; /* frame to read, NFRAMES: stop */
};

static void *rm_reader(void *p)
{
	struct rm_arg *a = p;
	uint8_t buf[MAX_FRAME];
	unsigned i;

	while ((i = atomic_load(&a->target)) < NFRAMES)
		(void)pack_read(a->ps, &a->c->locs[i], buf); /* -ENOENT once removed */
	return NULL;
}

static unsigned deleted_fds(const char *dir)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	char p[300], t[512];
	unsigned n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		ssize_t k;

		snprintf(p, sizeof(p), "/proc/self/fd/%s", de->d_name);
		k = readlink(p, t, sizeof(t) - 1);
		if (k > 0) {
			t[k] = 0;
			n += strstr(t, dir) && strstr(t, " (deleted)");
		}
	}
	closedir(d);
	return n;
}

static void test_remove_racing_readers(void **state)
{
	struct ctx *c = *state;
	struct pack_store *ps = open_store(c, &small_opts);
	struct rm_arg a = { .ps = ps, .c = c };
	pthread_t t[2];
	uint32_t last, removed = 0;

	append_all(ps, c, NFRAMES);
	assert_int_equal(pack_sync(ps), 0);
	last = c->locs[NFRAMES - 1].pack_id;
	atomic_init(&a.target, 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, rm_reader, &a), 0);
	/* each pack but the current one: readers on one of its frames, then
	 * it goes from under them */
	for (uint32_t i = 0; i < NFRAMES; i++) {
		uint32_t id = c->locs[i].pack_id;

		if (id == last || (i > 0 && c->locs[i - 1].pack_id == id))
			continue;
		atomic_store(&a.target, i);
		usleep(200);
		assert_int_equal(pack_remove(ps, id), 0);
		removed++;
		usleep(50);
	}
	atomic_store(&a.target, NFRAMES);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_true(removed >= 20);
	assert_int_equal(deleted_fds(c->dir), 0);
	pack_store_close(ps);
}

/* Fill a 2 MiB tmpfs with frames of flen bytes under options o. */
static void enospc_run(struct ctx *c, const struct pack_opts *o, uint32_t flen)
{
	char mnt[96];
	struct pack_store *ps;
	struct pack_loc first, l;
	uint8_t *buf = malloc(flen), *got = malloc(flen);
	int rc = 0, i;

	assert_non_null(buf);
	assert_non_null(got);
	snprintf(mnt, sizeof(mnt), "%s/tiny", c->base);
	mkdir(mnt, 0700);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=2m")) {
		free(buf);
		free(got);
		skip();
	}
	strcpy(c->dir, mnt); /* the store lives on the tiny fs */
	frame_fill(buf, flen, 1);
	ps = open_store(c, o);
	assert_int_equal(pack_append(ps, buf, flen, &first), 0);
	assert_int_equal(pack_sync(ps), 0);
	for (i = 0; i < 2000 && rc == 0; i++) {
		rc = pack_append(ps, buf, flen, &l);
		if (!rc && i % 64 == 63)
			rc = pack_sync(ps);
	}
	if (!rc)
		rc = pack_sync(ps);
	assert_int_equal(rc, -ENOSPC);
	/* Sticky, and the store is still usable for reading synced data. */
	assert_int_equal(pack_append(ps, buf, 100, &l), -ENOSPC);
	assert_int_equal(pack_sync(ps), -ENOSPC);
	assert_int_equal(pack_read(ps, &first, got), 0);
	assert_memory_equal(got, buf, flen);

	/* Clear, free space (gc would drop a dead pack; unsynced packs are
	 * busy until the clear), and carry on in a fresh pack. */
	assert_int_equal(pack_store_clear_error(ps), -ENOSPC);
	assert_int_equal(pack_store_clear_error(ps), 0);
	assert_int_equal(pack_remove(ps, first.pack_id), 0);
	pack_store_seal(ps); /* the emptied pack: nothing to seal */
	assert_int_equal(pack_append(ps, buf, flen, &l), 0);
	assert_int_equal(pack_sync(ps), 0);
	assert_true(l.pack_id > first.pack_id && l.off == 0);
	struct pack_loc l2;
	assert_int_equal(pack_append(ps, buf, 100, &l2), 0);
	assert_int_equal(l2.pack_id, l.pack_id); /* no seal left behind */
	assert_int_equal(pack_sync(ps), 0);
	memset(got, 0, flen);
	assert_int_equal(pack_read(ps, &l, got), 0);
	assert_memory_equal(got, buf, flen);
	pack_store_close(ps);
	assert_int_equal(umount(mnt), 0);
	strcpy(c->dir, c->base);
	free(buf);
	free(got);
}

static void test_enospc(void **state)
{
	/* One buffer's write fails at a time... */
	struct pack_opts a = { .max_pack_bytes = 1 << 20, .write_buf_bytes = 64 << 10, .write_bufs = 2 };
	/* ...and several writes in flight when the disk fills. */
	struct pack_opts b = { .max_pack_bytes = 4 << 20, .write_buf_bytes = 48 << 10, .write_bufs = 6 };

	enospc_run(*state, &a, 60000);
	enospc_run(*state, &b, 16000);
}

/* One buffer: every append past it waits for the previous write. */
static void test_single_buffer(void **state)
{
	struct ctx *c = *state;
	struct pack_opts o = { .max_pack_bytes = 1 << 20, .write_buf_bytes = 8192, .write_bufs = 1 };
	struct pack_store *ps = open_store(c, &o);

	append_all(ps, c, 1000);
	read_all(ps, c, 1000);
	assert_int_equal(pack_sync(ps), 0);
	read_all(ps, c, 1000);
	pack_store_close(ps);
}

/* A pack per frame: more rolled-over packs than stay open unsynced, and
 * more packs read than the read-fd table keeps. */
static void test_many_packs(void **state)
{
	struct ctx *c = *state;
	struct pack_opts o = { .max_pack_bytes = 2048, .write_buf_bytes = 4096, .write_bufs = 2 };
	struct pack_store *ps = open_store(c, &o);
	enum { N = 600 };

	append_all(ps, c, N);
	assert_true(c->npacks > 300);
	read_all(ps, c, N);
	assert_int_equal(pack_sync(ps), 0);
	read_all(ps, c, N);
	pack_store_close(ps);
	ps = open_store(c, &o);
	read_all(ps, c, N);
	pack_store_close(ps);
}

/* A leftover file at the allocated id is skipped, never overwritten. */
static void test_existing_id(void **state)
{
	struct ctx *c = *state;
	char path[PATH_MAX];
	struct pack_store *ps;
	int fd;

	pack_path(c->dir, 1, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "orphan", 6), 6);
	close(fd);
	ps = open_store(c, &small_opts);
	append_all(ps, c, 100);
	assert_int_equal(pack_sync(ps), 0);
	assert_int_equal(c->locs[0].pack_id, 2);
	assert_int_equal(pack_file_size(ps, 1), 6);
	read_all(ps, c, 100);
	pack_store_close(ps);
}

/* The pread/pwrite path used when io_uring is unavailable. */
static void test_fallback(void **state)
{
	struct ctx *c = *state;
	struct pack_store *ps;

	setenv("MIXFS_PACK_NO_URING", "1", 1);
	ps = open_store(c, &small_opts);
	unsetenv("MIXFS_PACK_NO_URING");
	append_all(ps, c, NFRAMES);
	read_all(ps, c, NFRAMES); /* partly from buffers, partly from files */
	assert_int_equal(pack_sync(ps), 0);
	pack_store_close(ps);
	ps = open_store(c, NULL);
	read_all(ps, c, NFRAMES);
	pack_store_close(ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_rollover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_before_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_right_after_append_small_bufs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_while_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_racing_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enospc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_existing_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_single_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_packs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
