/*
 * test_engine.c - the engine driven directly, without FUSE.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/falloc.h>

#include "codec/codec.h"
#include "fs/engine.h"
#include "fs/engine_i.h" /* t_read_retry_ref: a read on a held snapshot */
#include "fs/gc.h"
#include "fs/pool.h"
#include "index/idx.h"
#include "index/idx_test_i.h" /* t_reap_retry_damaged: a damaged inode record */

struct fx {
	char dir[64];
	char store[96];
	struct eng *e;
};

static int rm_rf(const char *p)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
	return system(cmd);
}

static void open_store(struct fx *f, int level)
{
	struct eng_opts o;
	eng_opts_default(&o);
	o.level = level;
	o.cache_bytes = 8u << 20;
	o.dirty_bytes = 8u << 20; /* small: exercises partial flushes */
	o.workers = 2;
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/mixfs-teng-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
	assert_int_equal(eng_mkfs(f->store, CODEC_LEVEL_FAST), 0);
	open_store(f, CODEC_LEVEL_FAST);
	*state = f;
	return 0;
}

static _Atomic uint64_t fault_ino; /* append_hook: this inode's batches fail */

static int teardown(void **state)
{
	struct fx *f = *state;
	atomic_store(&fault_ino, 0); /* a failed test leaves no fault behind */
	assert_int_equal(eng_store_close(f->e), 0);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static void reopen(struct fx *f)
{
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	open_store(f, CODEC_LEVEL_FAST);
}

static uint64_t new_file(struct fx *f, uint64_t dir, const char *name)
{
	struct eng_attr a;
	struct eng_cred cr = { 0, 0, 022 };
	assert_int_equal(eng_create(f->e, dir, name, 0644, O_RDWR, &cr, &a), 0);
	return a.st.st_ino;
}

static uint64_t new_dir(struct fx *f, uint64_t parent, const char *name)
{
	struct eng_attr a;
	struct eng_cred cr = { 0, 0, 022 };
	assert_int_equal(eng_mkdir(f->e, parent, name, 0755, &cr, &a), 0);
	return a.st.st_ino;
}

/* du of the store's packs: how (-b apparent bytes, -B1 allocated bytes). */
static uint64_t du_of_packs(struct fx *f, const char *how)
{
	char cmd[256];
	unsigned long long v = 0;
	snprintf(cmd, sizeof(cmd), "du -s %s '%s/packs' | cut -f1", how, f->store);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%llu", &v), 1);
	pclose(p);
	return v;
}

static uint64_t du_packs(struct fx *f)
{
	return du_of_packs(f, "-b");
}

static void fill_random(uint8_t *b, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)x;
	}
}

static void write_all(struct fx *f, uint64_t ino, uint64_t off, const uint8_t *b, size_t n,
                      size_t step)
{
	for (size_t p = 0; p < n; p += step) {
		size_t k = n - p < step ? n - p : step;
		assert_int_equal(eng_write(f->e, ino, off + p, b + p, k), (ssize_t)k);
	}
}

static void check_read(struct fx *f, uint64_t ino, uint64_t off, const uint8_t *want, size_t n)
{
	uint8_t *got = malloc(n + 1);
	size_t p = 0;
	while (p < n) {
		size_t k = n - p < 131072 ? n - p : 131072;
		ssize_t r = eng_read(f->e, ino, off + p, k, got + p);
		assert_true(r > 0);
		p += (size_t)r;
	}
	assert_memory_equal(got, want, n);
	free(got);
}

/* NAME in the root reads back as want[0..n). */
static void check_file(struct fx *f, const char *name, const uint8_t *want, size_t n)
{
	struct eng_attr at;

	assert_int_equal(eng_lookup(f->e, 1, name, &at), 0);
	check_read(f, at.st.st_ino, 0, want, n);
	eng_forget(f->e, at.st.st_ino, 1);
}

static void t_write_read_remount(void **state)
{
	struct fx *f = *state;
	size_t n = (20u << 20) + 12345;
	uint8_t *b = malloc(n);
	fill_random(b, n, 1);
	uint64_t ino = new_file(f, 1, "a.bin");
	write_all(f, ino, 0, b, n, 1 << 20);
	check_read(f, ino, 0, b, n); /* part still dirty */
	assert_int_equal(eng_release(f->e, ino), 0);
	check_read(f, ino, 7, b + 7, n - 7);
	struct eng_attr a;
	assert_int_equal(eng_getattr(f->e, ino, &a), 0);
	assert_int_equal(a.st.st_size, n);
	eng_forget(f->e, ino, 1);
	reopen(f);
	assert_int_equal(eng_lookup(f->e, 1, "a.bin", &a), 0);
	assert_int_equal(a.st.st_size, n);
	check_read(f, a.st.st_ino, 0, b, n);
	eng_forget(f->e, a.st.st_ino, 1);
	free(b);
}

static void t_dedup(void **state)
{
	struct fx *f = *state;
	size_t n = 16u << 20;
	uint8_t *b = malloc(n);
	fill_random(b, n, 2);
	uint64_t i1 = new_file(f, 1, "one");
	write_all(f, i1, 0, b, n, 1 << 20);
	assert_int_equal(eng_release(f->e, i1), 0);
	uint64_t before = du_packs(f);
	assert_true(before >= n); /* random data does not compress */
	uint64_t i2 = new_file(f, 1, "two");
	write_all(f, i2, 0, b, n, 128 << 10);
	assert_int_equal(eng_release(f->e, i2), 0);
	uint64_t after = du_packs(f);
	assert_true(after - before < 64 * 1024);
	check_read(f, i2, 0, b, n);
	/* unlink one: the other must still read back */
	assert_int_equal(eng_unlink(f->e, 1, "one"), 0);
	eng_forget(f->e, i1, 1);
	check_read(f, i2, 0, b, n);
	eng_forget(f->e, i2, 1);
	free(b);
}

static void t_random_overwrite_truncate(void **state)
{
	struct fx *f = *state;
	size_t n = 3u << 20;
	uint8_t *model = calloc(1, n), *tmp = malloc(1 << 20);
	uint64_t size = 0;
	uint64_t ino = new_file(f, 1, "rnd");
	srand(7);
	for (int op = 0; op < 400; op++) {
		int kind = rand() % 10;
		if (kind < 7) {
			uint64_t off = (uint64_t)rand() % (n - 1);
			size_t len = (size_t)rand() % (1 << 17) + 1;
			if (off + len > n)
				len = n - off;
			fill_random(tmp, len, (uint64_t)op + 100);
			assert_int_equal(eng_write(f->e, ino, off, tmp, len), (ssize_t)len);
			memcpy(model + off, tmp, len);
			if (off + len > size)
				size = off + len;
		} else if (kind < 8) {
			uint64_t ns = (uint64_t)rand() % n;
			struct eng_setattr sa = { .valid = ENG_SET_SIZE, .size = ns };
			assert_int_equal(eng_setattr(f->e, ino, &sa, NULL), 0);
			if (ns < size)
				memset(model + ns, 0, size - ns);
			size = ns;
		} else if (kind < 9) {
			assert_int_equal(eng_flush(f->e, ino), 0);
		} else {
			uint64_t off = (uint64_t)rand() % n;
			size_t len = (size_t)rand() % (1 << 18);
			if (off + len > n)
				len = n - off;
			assert_int_equal(eng_fallocate(f->e, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len), 0);
			memset(model + off, 0, len);
		}
		if (op % 50 == 49) {
			struct eng_attr a;
			assert_int_equal(eng_getattr(f->e, ino, &a), 0);
			assert_int_equal(a.st.st_size, size);
			if (size)
				check_read(f, ino, 0, model, size);
		}
	}
	assert_int_equal(eng_release(f->e, ino), 0);
	eng_forget(f->e, ino, 1);
	reopen(f);
	struct eng_attr a;
	assert_int_equal(eng_lookup(f->e, 1, "rnd", &a), 0);
	assert_int_equal(a.st.st_size, size);
	if (size)
		check_read(f, a.st.st_ino, 0, model, size);
	eng_forget(f->e, a.st.st_ino, 1);
	free(model);
	free(tmp);
}

static void t_namespace(void **state)
{
	struct fx *f = *state;
	struct eng_attr a, b;
	struct eng_cred cr = { 0, 0, 022 };
	char name[300];
	assert_int_equal(eng_mkdir(f->e, 1, "d", 0755, &cr, &a), 0);
	uint64_t d = a.st.st_ino;
	assert_int_equal(eng_mkdir(f->e, 1, "d", 0755, &cr, &b), -EEXIST);
	uint64_t x = new_file(f, d, "x");
	assert_int_equal(eng_write(f->e, x, 0, "hello", 5), 5);
	assert_int_equal(eng_release(f->e, x), 0);
	assert_int_equal(eng_link(f->e, x, 1, "xlink", &b), 0);
	assert_int_equal(b.st.st_nlink, 2);
	assert_int_equal(eng_symlink(f->e, 1, "sl", "d/x", &cr, &b), 0);
	char tgt[16];
	assert_int_equal(eng_readlink(f->e, b.st.st_ino, tgt, sizeof(tgt)), 3);
	assert_memory_equal(tgt, "d/x", 3);
	assert_int_equal(eng_rmdir(f->e, 1, "d"), -ENOTEMPTY);
	/* rename over an existing file: the atomic-save pattern */
	uint64_t y = new_file(f, d, "y.tmp");
	assert_int_equal(eng_write(f->e, y, 0, "world!", 6), 6);
	assert_int_equal(eng_release(f->e, y), 0);
	assert_int_equal(eng_rename(f->e, d, "y.tmp", 1, "xlink", 0), 0);
	assert_int_equal(eng_lookup(f->e, 1, "xlink", &b), 0);
	assert_int_equal(b.st.st_ino, y);
	assert_int_equal(eng_getattr(f->e, x, &b), 0);
	assert_int_equal(b.st.st_nlink, 1);
	assert_int_equal(eng_rename(f->e, d, "x", 1, "xlink", RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(eng_rename(f->e, d, "x", 1, "xlink", RENAME_EXCHANGE), 0);
	assert_int_equal(eng_lookup(f->e, 1, "xlink", &b), 0);
	assert_int_equal(b.st.st_ino, x);
	/* long names */
	memset(name, 'n', sizeof(name));
	name[255] = 0;
	assert_int_equal(eng_mknod(f->e, 1, name, S_IFREG | 0600, 0, &cr, &b), 0);
	name[255] = 'n';
	name[256] = 0;
	assert_int_equal(eng_mknod(f->e, 1, name, S_IFREG | 0600, 0, &cr, &b), -ENAMETOOLONG);
	/* xattrs */
	assert_int_equal(eng_setxattr(f->e, x, "user.k", "v1", 2, 0), 0);
	char v[64];
	assert_int_equal(eng_getxattr(f->e, x, "user.k", v, sizeof(v)), 2);
	assert_true(eng_getxattr(f->e, x, "user.mixfs.stored_bytes", v, sizeof(v)) > 0);
	assert_int_equal(eng_removexattr(f->e, x, "user.k"), 0);
	assert_int_equal(eng_getxattr(f->e, x, "user.k", v, sizeof(v)), -ENODATA);
}

static int count_cb(void *arg, const char *name, const struct stat *st, int64_t next)
{
	(void)name;
	(void)st;
	(void)next;
	(*(int *)arg)++;
	return 0;
}

static void t_readdir_many(void **state)
{
	struct fx *f = *state;
	struct eng_attr a;
	struct eng_cred cr = { 0, 0, 022 };
	char name[32];
	assert_int_equal(eng_mkdir(f->e, 1, "many", 0755, &cr, &a), 0);
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		assert_int_equal(eng_mknod(f->e, a.st.st_ino, name, S_IFREG | 0644, 0, &cr, NULL), 0);
	}
	int n = 0;
	assert_int_equal(eng_readdir(f->e, a.st.st_ino, 0, count_cb, &n), 0);
	assert_int_equal(n, 3002);
}

static void t_unlink_open(void **state)
{
	struct fx *f = *state;
	uint8_t b[100000];
	fill_random(b, sizeof(b), 9);
	uint64_t ino = new_file(f, 1, "gone");
	write_all(f, ino, 0, b, sizeof(b), 4096);
	assert_int_equal(eng_flush(f->e, ino), 0);
	assert_int_equal(eng_unlink(f->e, 1, "gone"), 0);
	check_read(f, ino, 0, b, sizeof(b)); /* still open: readable */
	assert_int_equal(eng_release(f->e, ino), 0);
	assert_int_equal(eng_fsyncdir(f->e, 1), 0); /* its batches hold it till they commit */
	eng_forget(f->e, ino, 1);
	struct eng_attr a;
	assert_int_equal(eng_getattr(f->e, ino, &a), -ENOENT);
}

static void t_sparse_large(void **state)
{
	struct fx *f = *state;
	uint64_t ino = new_file(f, 1, "sparse");
	uint64_t far = 5ull << 30;
	assert_int_equal(eng_write(f->e, ino, far, "tail", 4), 4);
	assert_int_equal(eng_release(f->e, ino), 0);
	uint8_t buf[8];
	assert_int_equal(eng_read(f->e, ino, far - 4, 8, buf), 8);
	assert_memory_equal(buf, "\0\0\0\0tail", 8);
	assert_int_equal(eng_read(f->e, ino, 1ull << 30, 8, buf), 8);
	assert_memory_equal(buf, "\0\0\0\0\0\0\0\0", 8);
	assert_int_equal(eng_lseek(f->e, ino, 0, SEEK_DATA), (int64_t)far);
	assert_int_equal(eng_lseek(f->e, ino, 0, SEEK_HOLE), 0);
	assert_int_equal(eng_lseek(f->e, ino, (int64_t)far + 4, SEEK_DATA), -ENXIO);
	eng_forget(f->e, ino, 1);
}

/* Create name in the root directory with n bytes of b, closed and
 * committed (a close does not wait for the commit; fsync of a directory
 * does, for every file closed before it). */
static void put_file(struct fx *f, const char *name, const uint8_t *b, size_t n)
{
	uint64_t ino = new_file(f, 1, name);
	write_all(f, ino, 0, b, n, 1 << 20);
	assert_int_equal(eng_release(f->e, ino), 0);
	assert_int_equal(eng_fsyncdir(f->e, 1), 0);
	eng_forget(f->e, ino, 1);
}

/* A small safetensors file: one BF16 tensor of n elements, values from
 * a drifting random walk so successive versions differ in low bits. */
/* A bf16 safetensors file of tensor "w" (n values, rows of 256), after an
 * optional __metadata__ {"step": step} and a zero tensor "b" of pre bytes
 * (both move "w" and change the header: another layout, same tensor). */
/* w[0..n) rounded to bf16 (nearest even), little-endian, into d. */
static void bf16_store(uint8_t *d, const float *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &w[i], 4);
		u = (u + 0x7fff + ((u >> 16) & 1)) >> 16;
		d[2 * i] = (uint8_t)u;
		d[2 * i + 1] = (uint8_t)(u >> 8);
	}
}

static size_t make_st_ext(uint8_t *out, const float *w, size_t n, const char *step, size_t pre)
{
	char hdr[256];
	int hl = snprintf(hdr, sizeof(hdr), "{");
	if (step)
		hl += snprintf(hdr + hl, sizeof(hdr) - (size_t)hl, "\"__metadata__\":{\"step\":\"%s\"},", step);
	if (pre)
		hl += snprintf(hdr + hl, sizeof(hdr) - (size_t)hl,
		               "\"b\":{\"dtype\":\"BF16\",\"shape\":[%zu],\"data_offsets\":[0,%zu]},", pre / 2, pre);
	hl += snprintf(hdr + hl, sizeof(hdr) - (size_t)hl,
	               "\"w\":{\"dtype\":\"BF16\",\"shape\":[%zu,256],\"data_offsets\":[%zu,%zu]}}",
	               n / 256, pre, pre + 2 * n);
	assert_true(hl > 0 && (size_t)hl + 8 < sizeof(hdr));
	while (hl % 8)
		hdr[hl++] = ' ';
	uint64_t h = (uint64_t)hl;
	memcpy(out, &h, 8);
	memcpy(out + 8, hdr, (size_t)hl);
	memset(out + 8 + hl, 0, pre);
	bf16_store(out + 8 + hl + pre, w, n);
	return 8 + (size_t)hl + pre + 2 * n;
}

static size_t make_st(uint8_t *out, const float *w, size_t n)
{
	return make_st_ext(out, w, n, NULL, 0);
}

/* Where version v of a series goes: ckptNN.safetensors in the root, or
 * with dirs stepNN/model.safetensors (one directory per checkpoint, the
 * directory keeping its lookup like a kernel dentry).  Returns the parent. */
static uint64_t series_dir(struct fx *f, int v, bool dirs, bool make, char *name, size_t n)
{
	struct eng_attr a;
	struct eng_cred cr = { 0, 0, 022 };

	if (!dirs) {
		snprintf(name, n, "ckpt%02d.safetensors", v);
		return 1;
	}
	snprintf(name, n, "step%02d", v);
	if (make)
		assert_int_equal(eng_mkdir(f->e, 1, name, 0755, &cr, &a), 0);
	else
		assert_int_equal(eng_lookup(f->e, 1, name, &a), 0);
	snprintf(name, n, "model.safetensors");
	return a.st.st_ino;
}

/* Seeded weights of a training run: n small values, then training steps
 * that move every stride-th value a little. */
static float *weights_new(size_t n, uint64_t *seed)
{
	float *w = malloc(n * sizeof(float));
	assert_non_null(w);
	for (size_t i = 0; i < n; i++) {
		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
		w[i] = (float)((int64_t)(*seed >> 11) % 2000000 - 1000000) * 1e-8f;
	}
	return w;
}

static void weights_step(float *w, size_t n, size_t stride, uint64_t *seed)
{
	for (size_t i = 0; i < n; i += stride) {
		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
		w[i] *= 1.0f + (float)((int64_t)(*seed >> 40) % 200 - 100) * 1e-4f;
	}
}

/* Write V versions of a drifting bf16 safetensors file (series_dir);
 * *first: pack bytes after the first one. */
static size_t series_write_in(struct fx *f, int V, uint8_t **files, uint64_t *first, bool dirs)
{
	enum { N = 1 << 20 };
	uint64_t seed = 5;
	float *w = weights_new(N, &seed);
	size_t len = 0;
	char name[32];

	for (int v = 0; v < V; v++) {
		if (v == 1 && first)
			*first = du_packs(f);
		files[v] = malloc(8 + 160 + 2 * N);
		len = make_st(files[v], w, N);
		uint64_t dir = series_dir(f, v, dirs, true, name, sizeof(name));
		uint64_t ino = new_file(f, dir, name);
		write_all(f, ino, 0, files[v], len, 1 << 20);
		assert_int_equal(eng_release(f->e, ino), 0);
		eng_forget(f->e, ino, 1);
		weights_step(w, N, 7, &seed); /* a training step */
	}
	assert_int_equal(eng_fsyncdir(f->e, 1), 0); /* all committed */
	free(w);
	return len;
}

static size_t series_write(struct fx *f, int V, uint8_t **files, uint64_t *first)
{
	return series_write_in(f, V, files, first, false);
}

/* Every version still there reads back exactly. */
static void series_check_in(struct fx *f, int V, uint8_t *const *files, size_t len, bool dirs)
{
	char name[32];

	for (int v = 0; v < V; v++) {
		struct eng_attr a;
		if (!files[v])
			continue;
		uint64_t dir = series_dir(f, v, dirs, false, name, sizeof(name));
		assert_int_equal(eng_lookup(f->e, dir, name, &a), 0);
		check_read(f, a.st.st_ino, 0, files[v], len);
		eng_forget(f->e, a.st.st_ino, 1);
	}
}

static void series_check(struct fx *f, int V, uint8_t *const *files, size_t len)
{
	series_check_in(f, V, files, len, false);
}

static void series_opts(struct eng_opts *o, unsigned idle_ms)
{
	eng_opts_default(o);
	o->level = CODEC_LEVEL_MIX;
	o->max_ref_chain = 3; /* short chain bound for these tests */
	o->workers = 2;
	o->rebase_idle_ms = idle_ms;
}

static void series_open(struct fx *f, struct eng_opts *o, unsigned idle_ms)
{
	assert_int_equal(eng_store_close(f->e), 0);
	series_opts(o, idle_ms);
	assert_int_equal(eng_store_open(f->store, o, &f->e), 0);
}

/* A max_ref_chain above ENG_MAX_REF_CHAIN is capped: 70 versions written
 * without rebase (each coded against the one before) keep their chains
 * under what reads and fsck walk (IDX_REF_DEPTH_MAX), so the newest reads
 * after a remount, its chunks cold, and fsck finds nothing (at 100, the
 * chains grew to 69 links and that read failed EIO). */
static void t_ref_chain_cap(void **state)
{
	struct fx *f = *state;
	enum { N = 1 << 16, V = 70 };
	struct eng_opts o;
	struct eng_attr a;
	struct gc_fsck_opts fo = { .threads = 2 };
	struct gc_fsck_stats fs;
	uint64_t seed = 5;
	float *w = weights_new(N, &seed);
	uint8_t *file = malloc(8 + 256 + 2 * N);
	char name[32];
	size_t len = 0;

	assert_non_null(file);
	assert_int_equal(eng_store_close(f->e), 0);
	series_opts(&o, 0);
	o.max_ref_chain = 100;
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	for (int v = 0; v < V; v++) {
		uint64_t ino;

		len = make_st(file, w, N);
		snprintf(name, sizeof(name), "ckpt%02d.safetensors", v);
		ino = new_file(f, 1, name);
		write_all(f, ino, 0, file, len, 1 << 20);
		assert_int_equal(eng_release(f->e, ino), 0);
		assert_int_equal(eng_fsyncdir(f->e, 1), 0);
		eng_forget(f->e, ino, 1);
		weights_step(w, N, 7, &seed);
	}
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	memset(&fs, 0, sizeof(fs));
	assert_int_equal(gc_fsck(f->store, &fo, &fs), 0);
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	assert_int_equal(eng_lookup(f->e, 1, name, &a), 0);
	check_read(f, a.st.st_ino, 0, file, len);
	eng_forget(f->e, a.st.st_ino, 1);
	free(w);
	free(file);
}

static void t_series(void **state)
{
	struct fx *f = *state;
	enum { V = 12 };
	uint8_t *files[V];
	uint64_t first = 0;
	char name[32];
	struct eng_opts o;

	series_open(f, &o, 2000);
	size_t len = series_write(f, V, files, &first);
	/* later versions were coded against their predecessors: each costs far
	 * less than the first (without references they cost the same) */
	uint64_t all = du_packs(f);
	print_message("series: first %llu bytes, all %d versions %llu bytes\n",
	              (unsigned long long)first, V, (unsigned long long)all);
	assert_true(all - first < (V - 1) * first / 2);
	/* the rewrite of one file in place (truncate + write) uses its old self */
	{
		struct eng_attr a;
		assert_int_equal(eng_lookup(f->e, 1, "ckpt11.safetensors", &a), 0);
		assert_int_equal(eng_open(f->e, a.st.st_ino, O_RDWR | O_TRUNC), 0);
		uint64_t before = du_packs(f);
		files[11][8 + 200] ^= 1; /* one changed element: the rest dedups */
		write_all(f, a.st.st_ino, 0, files[11], len, 1 << 20);
		assert_int_equal(eng_release(f->e, a.st.st_ino), 0);
		assert_true(du_packs(f) - before < 65536);
		eng_forget(f->e, a.st.st_ino, 1);
	}
	/* delete every ancestor in a scrambled order, remount (cold cache),
	 * all survivors still read back exactly */
	int order[V - 1] = { 3, 0, 7, 1, 9, 4, 10, 2, 6, 5, 8 };
	for (int k = 0; k < V - 1; k++) {
		snprintf(name, sizeof(name), "ckpt%02d.safetensors", order[k]);
		assert_int_equal(eng_unlink(f->e, 1, name), 0);
		free(files[order[k]]);
		files[order[k]] = NULL;
		if (k % 3 == 2) {
			assert_int_equal(eng_store_close(f->e), 0);
			assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
		}
		series_check(f, V, files, len);
	}
	free(files[V - 1]);
}

/* Per file of the series: the longest reference chain of its chunks, and
 * how many of them are reverse deltas; read from the index (engine closed). */
struct chain_walk {
	struct idx_txn *t;
	unsigned depth, reversed, chunks;
};

static int chain_cb(void *arg, const struct idx_extent *x)
{
	struct chain_walk *w = arg;
	struct idx_chunk c;
	unsigned d = 0;

	assert_int_equal(idx_chunk_get(w->t, x->fp, &c), 0);
	w->chunks++;
	w->reversed += (c.flags & IDX_CHUNK_REVERSED) != 0;
	while (c.flags & IDX_CHUNK_HAS_REF) {
		d++;
		assert_true(d <= 64);
		assert_int_equal(idx_chunk_get(w->t, c.ref_fp, &c), 0);
	}
	if (d > w->depth)
		w->depth = d;
	return 0;
}

static void series_chains(struct fx *f, int V, struct chain_walk *out, struct idx_stats *st)
{
	char ip[128], name[32];
	struct idx *x;
	struct idx_txn *t;

	snprintf(ip, sizeof(ip), "%s/index", f->store);
	assert_int_equal(idx_open(ip, IDX_RDONLY, NULL, 0, &x), 0);
	assert_int_equal(idx_txn_begin(x, true, &t), 0);
	for (int v = 0; v < V; v++) {
		uint64_t ino;
		uint8_t type;

		snprintf(name, sizeof(name), "ckpt%02d.safetensors", v);
		memset(&out[v], 0, sizeof(out[v]));
		out[v].t = t;
		assert_int_equal(idx_dirent_lookup(t, 1, name, strlen(name), &ino, &type), 0);
		assert_int_equal(idx_extent_iter(t, ino, 0, UINT64_MAX, chain_cb, &out[v]), 0);
	}
	assert_int_equal(idx_stats_get(t, st), 0);
	idx_txn_abort(t);
	idx_close(x);
}

/* The store's counters (engine closed: read from the index). */
static void store_stats(struct fx *f, struct idx_stats *st)
{
	series_chains(f, 0, NULL, st); /* no files: the counters only */
}

/* Rewrite ckpt00 in place (O_TRUNC, then every element moved a little). */
static void rewrite_in_place(struct fx *f, uint8_t *file, size_t len, uint64_t seed)
{
	struct eng_attr a;
	for (size_t i = 8 + 160; i + 1 < len; i += 2) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		file[i] ^= (uint8_t)(seed >> 62); /* the 2 low mantissa bits */
	}
	assert_int_equal(eng_lookup(f->e, 1, "ckpt00.safetensors", &a), 0);
	assert_int_equal(eng_open(f->e, a.st.st_ino, O_RDWR | O_TRUNC), 0);
	write_all(f, a.st.st_ino, 0, file, len, 1 << 20);
	assert_int_equal(eng_release(f->e, a.st.st_ino), 0);
	eng_forget(f->e, a.st.st_ino, 1);
}

/* A file rewritten in place is cut like its previous version, but coded
 * against it only where another file keeps that version's chunks too: the
 * previous version goes at the last close, and a delta against it would
 * keep it alive for nothing (delta + old > new alone).  A copy of the old
 * version elsewhere makes the reference worth it again. */
static void t_rewrite_in_place(void **state)
{
	struct fx *f = *state;
	uint8_t *files[1];
	struct idx_stats st;
	struct eng_opts o;
	char name[32];

	series_open(f, &o, 0); /* no rebase: the state the writer leaves */
	size_t len = series_write(f, 1, files, NULL);
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	store_stats(f, &st);
	uint64_t one = st.chunks;
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);

	rewrite_in_place(f, files[0], len, 1);
	series_check(f, 1, files, len);
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	store_stats(f, &st);
	print_message("rewrite in place: %llu chunks, %llu coded against a reference "
	              "(one version: %llu chunks)\n", (unsigned long long)st.chunks,
	              (unsigned long long)st.ref_chunks, (unsigned long long)one);
	assert_int_equal(st.ref_chunks, 0);
	assert_true(st.chunks <= one + 1); /* the old version is gone */

	/* a copy of the current version, then another rewrite: coded against it */
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	{
		uint64_t ino = new_file(f, 1, "copy.safetensors");
		write_all(f, ino, 0, files[0], len, 1 << 20);
		assert_int_equal(eng_release(f->e, ino), 0);
		eng_forget(f->e, ino, 1);
	}
	uint8_t *old = malloc(len);
	memcpy(old, files[0], len);
	rewrite_in_place(f, files[0], len, 2);
	series_check(f, 1, files, len);
	{
		struct eng_attr a;
		assert_int_equal(eng_lookup(f->e, 1, "copy.safetensors", &a), 0);
		check_read(f, a.st.st_ino, 0, old, len);
		eng_forget(f->e, a.st.st_ino, 1);
	}
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	store_stats(f, &st);
	print_message("rewrite in place with a copy: %llu chunks, %llu coded against a reference\n",
	              (unsigned long long)st.chunks, (unsigned long long)st.ref_chunks);
	assert_true(st.ref_chunks >= one / 2);
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	snprintf(name, sizeof(name), "copy.safetensors");
	assert_int_equal(eng_unlink(f->e, 1, name), 0);
	series_check(f, 1, files, len); /* its references live on */
	free(old);
	free(files[0]);
}

/* Rebase turns the forward deltas around: the newest version ends up full
 * (read at 1x), older ones decode through newer ones within the chain
 * bound, the store does not grow much, and every version, then every
 * survivor of scrambled deletes, reads back exactly. */
/* A log appended to all along (a training job's) must not keep the
 * store from being quiet for rebase: the rebase thread turns a series
 * around beside it.  (Any write kept the store busy: with a log written
 * every 0.3 s in the mount, deleted checkpoints stayed referenced by the
 * newer ones, ~3.7x the space of the kept ones.) */
struct log_writer {
	struct fx *f;
	uint64_t ino;
	atomic_bool stop;
	uint64_t off;
};

static void *log_main(void *p)
{
	struct log_writer *l = p;
	static const char line[] = "step 100 loss 2.345 lr 3e-4 tokens/s 12345\n";

	while (!atomic_load(&l->stop)) {
		if (eng_write(l->f->e, l->ino, l->off, line, sizeof(line) - 1) > 0)
			l->off += sizeof(line) - 1;
		usleep(20000);
	}
	return NULL;
}

static uint64_t fwd_chunks(struct fx *f)
{
	struct idx_txn *t;
	struct idx_stats st;

	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_stats_get(t, &st), 0);
	idx_txn_abort(t);
	return st.ref_fwd_chunks;
}

static void t_rebase_beside_log(void **state)
{
	struct fx *f = *state;
	enum { V = 4 };
	uint8_t *files[V];
	struct eng_opts o;
	struct log_writer l = { .f = f };
	pthread_t th;
	uint64_t fwd = 1, fwd0;

	series_open(f, &o, 100);
	l.ino = new_file(f, 1, "train.log");
	atomic_init(&l.stop, false);
	assert_int_equal(pthread_create(&th, NULL, log_main, &l), 0);
	size_t len = series_write(f, V, files, NULL);
	fwd0 = fwd_chunks(f);
	for (int i = 0; i < 100 && fwd; i++) {
		usleep(50000);
		fwd = fwd_chunks(f);
	}
	atomic_store(&l.stop, true);
	pthread_join(th, NULL);
	print_message("forward deltas beside a log: %llu after writing, %llu 5 s later\n",
	              (unsigned long long)fwd0, (unsigned long long)fwd);
	assert_true(fwd0 > 0);
	assert_int_equal(fwd, 0);
	assert_int_equal(eng_release(f->e, l.ino), 0);
	eng_forget(f->e, l.ino, 1);
	series_check_in(f, V, files, len, false);
	for (int v = 0; v < V; v++)
		free(files[v]);
}

static void t_series_rebase(void **state)
{
	struct fx *f = *state;
	enum { V = 6 };
	struct chain_walk cw[V];
	uint8_t *files[V];
	uint64_t turned = 0;
	struct idx_stats before, after;
	char name[32];
	struct eng_opts o;
	struct gc_fsck_stats fs;

	series_open(f, &o, 0); /* no thread: eng_rebase only */
	size_t len = series_write(f, V, files, NULL);
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	series_chains(f, V, cw, &before);
	/* forward: each version on the previous, a new chain past the bound */
	assert_int_equal(cw[3].depth, 3);
	assert_true(cw[V - 1].depth >= 1);
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	assert_true(turned > 0);
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	series_chains(f, V, cw, &after);
	print_message("rebase: %llu chunks turned, stored %llu -> %llu bytes, saved by series "
	              "coding %llu\n", (unsigned long long)turned,
	              (unsigned long long)before.stored_bytes,
	              (unsigned long long)after.stored_bytes,
	              (unsigned long long)after.ref_saved_bytes);
	/* forward deltas are not measured; every reverse delta is */
	assert_int_equal(before.ref_fwd_chunks, before.ref_chunks);
	assert_int_equal(before.ref_saved_bytes, 0);
	assert_int_equal(after.ref_fwd_chunks, 0);
	assert_true(after.ref_saved_bytes > after.ref_stored_bytes);
	assert_int_equal(cw[V - 1].depth, 0); /* newest: all full */
	for (int v = 0; v < V; v++)
		assert_true(cw[v].depth <= o.max_ref_chain);
	assert_true(cw[V - 2].reversed > 0);
	assert_true(after.stored_bytes <= before.stored_bytes + before.stored_bytes / 10);
	/* a second pass finds nothing left to do */
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	assert_int_equal(turned, 0);
	/* Training resumes from version 4 after the newest is deleted: the
	 * new version 5 codes against 4, a reverse delta; rebase makes the
	 * new one full rather than leave it reading through 4's chain. */
	assert_int_equal(eng_unlink(f->e, 1, "ckpt05.safetensors"), 0);
	for (size_t i = 8 + 160; i + 1 < len; i += 6)
		files[V - 1][i] ^= 1; /* other low bits than the old 5 */
	put_file(f, "ckpt05.safetensors", files[V - 1], len);
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	assert_true(turned > 0);
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	series_chains(f, V, cw, &after);
	assert_int_equal(cw[V - 1].depth, 0);
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	int order[V] = { 5, 2, 0, 4, 1, 3 };
	for (int k = 0; k < V; k++) {
		series_check(f, V, files, len);
		snprintf(name, sizeof(name), "ckpt%02d.safetensors", order[k]);
		assert_int_equal(eng_unlink(f->e, 1, name), 0);
		free(files[order[k]]);
		files[order[k]] = NULL;
		assert_int_equal(eng_store_close(f->e), 0); /* cold cache */
		f->e = NULL;
		struct gc_fsck_opts fo = { .threads = 2 };
		assert_int_equal(gc_fsck(f->store, &fo, &fs), 0);
		assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	}
}

/* The store reopened with max_ref_chain chain. */
static void series_reopen_chain(struct fx *f, struct eng_opts *o, unsigned chain)
{
	assert_int_equal(eng_store_close(f->e), 0);
	o->max_ref_chain = chain;
	assert_int_equal(eng_store_open(f->store, o, &f->e), 0);
}

/* Version v of a bf16 series (ckptVV.safetensors, from w[0..n)) into a new
 * *file, written, then w moved a training step.  Returns its length. */
static size_t put_version(struct fx *f, int v, uint8_t **file, float *w, size_t n,
                          uint64_t *seed)
{
	char name[32];
	size_t len;

	*file = malloc(8 + 160 + 2 * n);
	assert_non_null(*file);
	len = make_st(*file, w, n);
	snprintf(name, sizeof(name), "ckpt%02d.safetensors", v);
	put_file(f, name, *file, len);
	weights_step(w, n, 7, seed);
	return len;
}

/* The versions still there read back, fsck finds nothing, and they read
 * back again after a remount (cold). */
static void series_check_fsck(struct fx *f, const struct eng_opts *o, int V, uint8_t *const *files,
                              size_t len)
{
	struct gc_fsck_opts fo = { .threads = 2 };
	struct gc_fsck_stats fs;

	series_check(f, V, files, len);
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	memset(&fs, 0, sizeof(fs));
	assert_int_equal(gc_fsck(f->store, &fo, &fs), 0);
	assert_int_equal(eng_store_open(f->store, o, &f->e), 0);
	series_check(f, V, files, len);
}

/* A checkpoint kept out of a rotation (the "best" one) is a reverse delta
 * through the newer versions; once those are deleted only its chain held
 * them, and rebase splices them out (the best one codes against what is
 * still kept): the store holds about the kept files' chunks, not every
 * version between them (before: 1 + up to max_ref_chain versions more). */
static void t_best_kept(void **state)
{
	struct fx *f = *state;
	enum { N = 1 << 18, V = 14, BEST = 2 };
	uint8_t *files[V] = { 0 };
	struct idx_stats st;
	struct eng_opts o;
	uint64_t seed = 9, turned;
	float *w = weights_new(N, &seed);
	char name[32];
	size_t len = 0;

	series_open(f, &o, 0); /* eng_rebase when "idle" */
	series_reopen_chain(f, &o, 8);
	for (int v = 0; v < V; v++) {
		len = put_version(f, v, &files[v], w, N, &seed);
		/* keep the last two and the best */
		if (v >= 2 && v - 2 != BEST) {
			snprintf(name, sizeof(name), "ckpt%02d.safetensors", v - 2);
			assert_int_equal(eng_unlink(f->e, 1, name), 0);
			free(files[v - 2]);
			files[v - 2] = NULL;
		}
		assert_int_equal(eng_rebase(f->e, &turned), 0);
	}
	store_stats(f, &st);
	print_message("best kept: %llu unique bytes in %llu chunks for 3 files of %zu bytes, "
	              "stored %llu\n", (unsigned long long)st.unique_bytes,
	              (unsigned long long)st.chunks, len, (unsigned long long)st.stored_bytes);
	assert_true(st.unique_bytes <= 3 * len + len / 2);
	series_check_fsck(f, &o, V, files, len);
	for (int v = 0; v < V; v++)
		free(files[v]);
	free(w);
}

/* V versions of one series (weights from seed) written and turned, each
 * a reverse delta through the newer ones (max_ref_chain 8). */
/* ckpt<v>.safetensors: its st_blocks in bytes, its record's stored_bytes and
 * what its extents charge it now. */
struct charge {
	uint64_t blocks, stored, now;
};

static struct charge ckpt_charge(struct fx *f, int v)
{
	char name[32];
	struct eng_attr a;
	struct idx_inode in;
	struct idx_txn *t;
	struct charge c;

	snprintf(name, sizeof(name), "ckpt%02d.safetensors", v);
	assert_int_equal(eng_lookup(f->e, 1, name, &a), 0);
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_inode_get(t, a.st.st_ino, &in), 0);
	assert_true(idx_file_charge(t, a.st.st_ino, &c.now) > 0);
	idx_txn_abort(t);
	c.blocks = (uint64_t)a.st.st_blocks * 512;
	c.stored = in.stored_bytes;
	eng_forget(f->e, a.st.st_ino, 1);
	return c;
}

/* A file's stored_bytes (st_blocks, du) is what its chunks take now: rebase
 * re-encodes the previous version against the new one (a reverse delta) and
 * the new one alone, so the two files' shares change; the idle sweep
 * (rb_charges) recomputes them.  Before it, du showed each file as written:
 * the old version whole, the new one a small delta, the wrong way round. */
static void t_charges_after_rebase(void **state)
{
	struct fx *f = *state;
	enum { N = 1 << 18, V = 3 };
	struct eng_opts o;
	struct idx_stats st;
	uint64_t seed = 77, turned = 0, sum = 0, was[V], nowv[V];
	float *w = weights_new(N, &seed);
	uint8_t *files[V];

	series_open(f, &o, 0);
	for (int v = 0; v < V; v++) {
		put_version(f, v, &files[v], w, N, &seed);
		free(files[v]);
	}
	for (int v = 0; v < V; v++)
		was[v] = ckpt_charge(f, v).blocks;
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	assert_true(turned > 0);
	for (int v = 0; v < V; v++) {
		struct charge c = ckpt_charge(f, v);
		print_message("v%d: du %llu before rebase, %llu after; its chunks take %llu\n", v,
		              (unsigned long long)was[v], (unsigned long long)c.blocks,
		              (unsigned long long)c.now);
		assert_int_equal(c.stored, c.now);
		assert_int_equal(c.blocks, (c.now + 511) / 512 * 512);
		sum += c.now;
		nowv[v] = c.now;
	}
	/* written: the oldest whole, the others deltas; now the newest */
	assert_true(was[0] > was[V - 1]);
	assert_true(nowv[V - 1] > nowv[0]);
	{
		struct idx_txn *t;
		assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
		assert_int_equal(idx_stats_get(t, &st), 0);
		idx_txn_abort(t);
	}
	print_message("files charged %llu, frames %llu\n", (unsigned long long)sum,
	              (unsigned long long)st.stored_bytes);
	/* shared chunks (the same header) are charged to each file */
	assert_true(sum >= st.stored_bytes && sum <= st.stored_bytes + st.stored_bytes / 100);
	/* the rebase thread, once idle: a fourth version, every charge right */
	series_open(f, &o, 50);
	put_version(f, V, &files[0], w, N, &seed);
	free(files[0]);
	int stale = V + 1, tries = 0;
	for (; stale && tries < 200; tries++) {
		usleep(50000);
		stale = 0;
		for (int v = 0; v <= V; v++) {
			struct charge c = ckpt_charge(f, v);
			stale += c.stored != c.now || (v == V - 1 && c.now > nowv[0] * 2);
		}
	}
	print_message("the rebase thread: %d files' charges stale after %d polls of 50 ms\n", stale,
	              tries);
	assert_int_equal(stale, 0);
	/* a sweep done: no mark (removed just after the charges are right);
	 * a mark left by a mount that stopped before its sweep (made here by
	 * hand, with a charge spoiled) makes the next mount sweep; without it
	 * a mount does not */
	char mark[512];
	snprintf(mark, sizeof(mark), "%s/index/charges", f->store);
	for (tries = 0; access(mark, F_OK) == 0 && tries < 100; tries++)
		usleep(50000);
	assert_int_equal(access(mark, F_OK), -1);
	for (int marked = 0; marked < 2; marked++) {
		struct idx_txn *t;
		struct idx_inode in;
		struct eng_attr a;
		assert_int_equal(eng_lookup(f->e, 1, "ckpt00.safetensors", &a), 0);
		assert_int_equal(eng_wtxn_begin(f->e, &t), 0);
		assert_int_equal(idx_inode_get(t, a.st.st_ino, &in), 0);
		in.stored_bytes += 12345;
		assert_int_equal(idx_inode_put(t, &in), 0);
		assert_int_equal(eng_wtxn_end(f->e, t, 0), 0);
		eng_forget(f->e, a.st.st_ino, 1);
		if (marked)
			close(open(mark, O_WRONLY | O_CREAT, 0600));
		series_open(f, &o, 50);
		struct charge c = ckpt_charge(f, 0);
		for (tries = 0; c.stored != c.now && tries < 40; tries++) {
			usleep(50000);
			c = ckpt_charge(f, 0);
		}
		print_message("%s: charge %s after %d polls\n", marked ? "marked" : "no mark",
		              c.stored == c.now ? "right" : "still spoiled", tries);
		assert_int_equal(c.stored == c.now, marked);
		for (tries = 0; access(mark, F_OK) == 0 && tries < 100; tries++)
			usleep(50000);
		assert_int_equal(access(mark, F_OK), -1);
	}
	free(w);
}

static size_t best_series(struct fx *f, struct eng_opts *o, int V, uint8_t **files, uint64_t seed)
{
	enum { N = 1 << 18 };
	uint64_t turned;
	float *w = weights_new(N, &seed);
	size_t len = 0;

	series_open(f, o, 0);
	series_reopen_chain(f, o, 8);
	for (int v = 0; v < V; v++) {
		len = put_version(f, v, &files[v], w, N, &seed);
		assert_int_equal(eng_rebase(f->e, &turned), 0);
	}
	free(w);
	return len;
}

/* Several consecutive versions of a chain deleted at once: their chunks
 * are loose together, spliced in one group (one of them a dependent of
 * another), and the store ends with the kept files' chunks only (a mark
 * dropped while another splice of the group changed its chunk left the
 * chunk held, unmarked: 1582330 unique bytes for these 2 files of
 * 524368, then 1324667 with dependents freed by the group skipped). */
static void t_best_kept_gap(void **state)
{
	struct fx *f = *state;
	enum { V = 7 };
	uint8_t *files[V] = { 0 };
	struct idx_stats st;
	struct idx_txn *t;
	struct eng_opts o;
	uint64_t turned;
	char name[32];
	size_t len = best_series(f, &o, V, files, 11);

	for (int v = 1; v < V - 1; v++) { /* keep the first and the last */
		snprintf(name, sizeof(name), "ckpt%02d.safetensors", v);
		assert_int_equal(eng_unlink(f->e, 1, name), 0);
		free(files[v]);
		files[v] = NULL;
	}
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_stats_get(t, &st), 0);
	{
		uint8_t l[4][FP_LEN];
		assert_int_equal(idx_loose_list(t, l, 4), 0); /* none left behind */
	}
	idx_txn_abort(t);
	print_message("gap of %d versions: %llu unique bytes for 2 files of %zu bytes\n", V - 2,
	              (unsigned long long)st.unique_bytes, len);
	assert_true(st.unique_bytes <= 2 * len + len / 4);
	series_check_fsck(f, &o, V, files, len);
	for (int v = 0; v < V; v++)
		free(files[v]);
}

/* Loose chunks in the index (f->e open): marked = loose marks; loose =
 * chunks held only by the chunks coded against them, at most
 * RB_SPLICE_DEPS (4) of them (what rebase would splice out). */
struct loose_count {
	struct idx_txn *t;
	unsigned loose;
};

static int loose_count_cb(void *arg, const struct idx_chunk *c)
{
	struct loose_count *l = arg;
	uint8_t deps[4][FP_LEN];
	int n;

	if (c->refcount == 0 || c->refcount > 4)
		return 0;
	n = idx_refby_list(l->t, c->fp, deps, 4);
	assert_true(n >= 0);
	l->loose += (uint32_t)n == c->refcount;
	return 0;
}

static void loose_state(struct fx *f, unsigned *marked, unsigned *loose)
{
	static uint8_t fps[4096][FP_LEN];
	struct loose_count l = { 0 };
	int n;

	assert_int_equal(idx_txn_begin(f->e->idx, true, &l.t), 0);
	n = idx_loose_list(l.t, fps, 4096);
	assert_true(n >= 0);
	*marked = (unsigned)n;
	assert_int_equal(idx_chunk_iter(l.t, loose_count_cb, &l), 0);
	*loose = l.loose;
	idx_txn_abort(l.t);
}

/* An unmount that comes while rebase splices (bg_urgent: the idle
 * encodes are skipped) must leave the loose marks for the next mount;
 * dropped, the chunks they name are kept for good. */
static void t_splice_close_keeps_marks(void **state)
{
	struct fx *f = *state;
	enum { V = 4 };
	uint8_t *files[V] = { 0 };
	struct eng_opts o;
	uint64_t turned;
	unsigned marked, loose, marked2, loose2;
	size_t len = best_series(f, &o, V, files, 9);

	assert_int_equal(eng_unlink(f->e, 1, "ckpt01.safetensors"), 0);
	free(files[1]);
	files[1] = NULL;
	loose_state(f, &marked, &loose);
	print_message("after the delete: %u marked, %u loose\n", marked, loose);
	assert_true(marked > 0);
	atomic_store(&f->e->bg_urgent, true); /* eng_store_close's first step */
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	atomic_store(&f->e->bg_urgent, false);
	loose_state(f, &marked2, &loose2);
	print_message("after a rebase cut short by a close: %u marked, %u loose\n", marked2, loose2);
	assert_int_equal(loose2, loose); /* nothing was spliced */
	assert_int_equal(marked2, marked); /* were dropped: 8 -> 0 */
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	loose_state(f, &marked2, &loose2);
	print_message("after the next rebase: %u marked, %u loose\n", marked2, loose2);
	assert_int_equal(marked2, 0);
	assert_true(loose2 < loose);
	series_check(f, V, files, len);
	for (int v = 0; v < V; v++)
		free(files[v]);
}

/* First extent of ino whose chunk (on snapshot t) is coded against a
 * reference: its offset, length and record. */
struct ref_find {
	struct idx_txn *t;
	uint64_t off, len;
	struct idx_chunk c;
	bool found;
};

static int ref_find_cb(void *arg, const struct idx_extent *x)
{
	struct ref_find *r = arg;

	assert_int_equal(idx_chunk_get(r->t, x->fp, &r->c), 0);
	if (!(r->c.flags & IDX_CHUNK_HAS_REF))
		return 0;
	r->off = x->off;
	r->len = x->len;
	r->found = true;
	return 1;
}

/* A reader whose snapshot names a forward delta X -> Y while rebase makes
 * X full and frees Y (the only other file holding Y was deleted), and gc
 * then punches Y's dead frame: Y fails on the old snapshot and is gone
 * from a fresh one, but X changed, so the read must retry X on a fresh
 * snapshot (it returned EIO: the retry was only tried for the chunk whose
 * own frame failed, never for the one coded against it). */
static void t_read_retry_ref(void **state)
{
	struct fx *f = *state;
	uint8_t *files[2];
	struct eng_opts o;
	struct eng_attr a;
	struct idx_txn *t, *t2;
	struct idx_chunk y, now;
	struct ref_find r = { 0 };
	uint64_t turned = 0;
	char path[256];

	assert_int_equal(eng_store_close(f->e), 0);
	series_opts(&o, 0); /* no rebase thread: eng_rebase only */
	o.cache_bytes = 1;  /* nothing stays decoded: reads go to the packs */
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	size_t len = series_write(f, 2, files, NULL);
	assert_int_equal(eng_unlink(f->e, 1, "ckpt00.safetensors"), 0);
	assert_int_equal(eng_lookup(f->e, 1, "ckpt01.safetensors", &a), 0);

	/* the reader's snapshot */
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	r.t = t;
	assert_true(idx_extent_iter(t, a.st.st_ino, 0, UINT64_MAX, ref_find_cb, &r) >= 0);
	assert_true(r.found);
	assert_int_equal(idx_chunk_get(t, r.c.ref_fp, &y), 0);

	assert_int_equal(eng_rebase(f->e, &turned), 0);
	assert_true(turned > 0);
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t2), 0);
	assert_int_equal(idx_chunk_get(t2, r.c.ref_fp, &now), -ENOENT); /* Y freed */
	idx_txn_abort(t2);

	/* what gc does to a dead frame: punch it */
	snprintf(path, sizeof(path), "%s/packs/%08x.pack", f->store, (unsigned)y.pack_id);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)y.pack_off,
	                           (off_t)y.frame_len), 0);
	close(fd);

	uint8_t *buf = malloc(r.len);
	assert_int_equal(eng_read_stored(f->e, t, a.st.st_ino, r.off, r.len, buf), 0);
	assert_memory_equal(buf, files[1] + r.off, r.len);
	idx_txn_abort(t);
	check_read(f, a.st.st_ino, 0, files[1], len);
	eng_forget(f->e, a.st.st_ino, 1);
	free(buf);
	free(files[0]);
	free(files[1]);
}

static uint64_t du_alloc(struct fx *f)
{
	return du_of_packs(f, "-B1"); /* punched holes do not count */
}

/* Polls du_alloc every 100 ms for up to ms until the packs take at most
 * limit bytes (the online gc freed them); returns the last value. */
static uint64_t wait_du_at_most(struct fx *f, uint64_t limit, unsigned ms)
{
	uint64_t du = du_alloc(f);

	for (unsigned t = 0; t < ms && du > limit; t += 100) {
		usleep(100000);
		du = du_alloc(f);
	}
	return du;
}

/* Close the engine and open its index (flags as idx_open's). */
static struct idx *closed_idx(struct fx *f, unsigned flags)
{
	char ip[160];
	struct idx *x;

	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	snprintf(ip, sizeof(ip), "%s/index", f->store);
	assert_int_equal(idx_open(ip, flags, NULL, 0, &x), 0);
	return x;
}

/* The store's stats with the engine closed; then opened again with o. */
static void closed_stats(struct fx *f, const struct eng_opts *o, struct idx_stats *st)
{
	struct idx *x = closed_idx(f, IDX_RDONLY);
	struct idx_txn *t;

	assert_int_equal(idx_txn_begin(x, true, &t), 0);
	assert_int_equal(idx_stats_get(t, st), 0);
	idx_txn_abort(t);
	idx_close(x);
	assert_int_equal(eng_store_open(f->store, o, &f->e), 0);
}

/* One checkpoint per directory (step00/model.safetensors, step01/...):
 * each version finds the previous one in the newest sibling directory and
 * is coded against it; all read back exactly, also after a remount. */
static void t_series_dirs(void **state)
{
	struct fx *f = *state;
	enum { V = 4 };
	uint8_t *files[V];
	struct eng_opts o;
	struct idx_stats st;

	series_open(f, &o, 0);
	size_t len = series_write_in(f, V, files, NULL, true);
	series_check_in(f, V, files, len, true);
	closed_stats(f, &o, &st);
	print_message("series in directories: %llu of %llu chunks coded against a reference\n",
	              (unsigned long long)st.ref_chunks, (unsigned long long)st.chunks);
	/* versions 1..3 against their predecessors: most of their chunks */
	assert_true(st.ref_chunks >= st.chunks / 2);
	series_check_in(f, V, files, len, true);
	for (int v = 0; v < V; v++)
		free(files[v]);
}

/* References by tensor name: versions of a safetensors file whose headers
 * differ (a step in __metadata__; from version 2 on a new tensor before
 * "w", which moves it by 4 KiB) are still coded against their
 * predecessor, "w" against "w" wherever it lies.  Without the rule no
 * chunk had a reference (the heads differ). */
static void t_series_names(void **state)
{
	struct fx *f = *state;
	enum { V = 4, N = 1 << 20, PRE = 4096 };
	static const char *steps[V] = { "1", "10", "100", "1000" };
	uint8_t *files[V];
	size_t lens[V];
	struct eng_opts o;
	struct idx_stats st;
	char name[32];
	uint64_t seed = 9;
	float *w = weights_new(N, &seed);

	series_open(f, &o, 0);
	for (int v = 0; v < V; v++) {
		files[v] = malloc(8 + 256 + PRE + 2 * N);
		assert_non_null(files[v]);
		lens[v] = make_st_ext(files[v], w, N, steps[v], v >= 2 ? PRE : 0);
		snprintf(name, sizeof(name), "m%d.safetensors", v);
		uint64_t ino = new_file(f, 1, name);
		write_all(f, ino, 0, files[v], lens[v], 1 << 20);
		assert_int_equal(eng_release(f->e, ino), 0);
		eng_forget(f->e, ino, 1);
		weights_step(w, N, 7, &seed);
	}
	free(w);
	closed_stats(f, &o, &st);
	print_message("series by tensor name: %llu of %llu chunks coded against a reference\n",
	              (unsigned long long)st.ref_chunks, (unsigned long long)st.chunks);
	assert_true(st.ref_chunks >= st.chunks / 2);
	for (int v = 0; v < V; v++) {
		struct eng_attr a;
		snprintf(name, sizeof(name), "m%d.safetensors", v);
		assert_int_equal(eng_lookup(f->e, 1, name, &a), 0);
		check_read(f, a.st.st_ino, 0, files[v], lens[v]);
		eng_forget(f->e, a.st.st_ino, 1);
		free(files[v]);
	}
}

/* Raw arrays (no header mixfs knows, nothing to compare layouts by): the
 * same name in the newest sibling directory (stepNN/w.bin), and in one
 * directory the name that differs in digit runs and matches best: shard k
 * of a step follows shard k of the step before, not another shard of its
 * own step (unrelated weights: a reference that does not pay is dropped,
 * so a wrong pick shows as fewer chunks coded against a reference), with
 * more shards a step than the candidates compared.  Without these rules
 * no chunk had a reference; picking the newest of the names with fewest
 * differing runs, 39 of 104 (two shards). */
static void t_series_raw(void **state)
{
	struct fx *f = *state;
	enum { V = 4, S = 6, N = 1 << 18 };
	uint64_t seed[S];
	float *w[S];
	uint8_t *files[V][S];
	struct eng_opts o;
	struct idx_stats st;
	char name[48];

	for (int k = 0; k < S; k++) {
		seed[k] = 21 + (uint64_t)k;
		w[k] = weights_new(N, &seed[k]);
	}
	series_open(f, &o, 0);
	for (int v = 0; v < V; v++) {
		snprintf(name, sizeof(name), "step%02d", v);
		uint64_t dir = new_dir(f, 1, name);
		for (int k = 0; k < S; k++) {
			files[v][k] = malloc(2 * N);
			assert_non_null(files[v][k]);
			bf16_store(files[v][k], w[k], N);
			/* shard k of step v, flat; shard 0 also as stepNN/w.bin */
			snprintf(name, sizeof(name), "ck-%d-shard%d.bin", (v + 1) * 40, k);
			put_file(f, name, files[v][k], 2 * N);
			if (k == 0) {
				uint64_t ino = new_file(f, dir, "w.bin");
				write_all(f, ino, 0, files[v][k], 2 * N, 1 << 20);
				assert_int_equal(eng_release(f->e, ino), 0);
				eng_forget(f->e, ino, 1);
			}
			weights_step(w[k], N, 7, &seed[k]);
		}
		eng_forget(f->e, dir, 1);
	}
	closed_stats(f, &o, &st);
	print_message("raw series: %llu of %llu chunks coded against a reference\n",
	              (unsigned long long)st.ref_chunks, (unsigned long long)st.chunks);
	/* shard 0 and w.bin share their chunks (dedup); every version after
	 * the first of each shard is coded against its predecessor: 3 of 4 */
	assert_true(st.ref_chunks * 8 >= st.chunks * 5);
	for (int v = 0; v < V; v++) {
		for (int k = 0; k < S; k++) {
			snprintf(name, sizeof(name), "ck-%d-shard%d.bin", (v + 1) * 40, k);
			check_file(f, name, files[v][k], 2 * N);
			free(files[v][k]);
		}
	}
	for (int k = 0; k < S; k++)
		free(w[k]);
}

/* Step (4) of the reference rule: a file that matches no directory rule
 * (another name, in an unrelated directory, another header) finds the
 * newest file holding its tensors through the index's tensors table; a
 * deleted file's entries go with it, so the next one finds the survivor. */
static void t_series_lookup(void **state)
{
	struct fx *f = *state;
	enum { V = 3, N = 1 << 19 };
	static const char *const dirs[V] = { "x", "y", "q" };
	static const char *const names[V] = { "base.safetensors", "tuned.safetensors", "other.safetensors" };
	static const char *const paths[V] = { "x/base", "y/z/tuned", "q/other" };
	uint8_t *files[V];
	size_t lens[V];
	uint64_t dino[V], refs[V];
	struct eng_opts o;
	struct eng_attr a;
	struct idx_stats st;
	uint64_t seed = 11;
	float *w = weights_new(N, &seed);

	series_open(f, &o, 0);
	for (int v = 0; v < V; v++) {
		dino[v] = new_dir(f, 1, dirs[v]);
		if (v == 1) /* y/z/tuned.safetensors: two levels down */
			dino[v] = new_dir(f, dino[v], "z");
	}
	for (int v = 0; v < V; v++) {
		files[v] = malloc(8 + 256 + 2 * N);
		assert_non_null(files[v]);
		lens[v] = make_st_ext(files[v], w, N, v == 0 ? NULL : v == 1 ? "10" : "100", 0);
		uint64_t ino = new_file(f, dino[v], names[v]);
		write_all(f, ino, 0, files[v], lens[v], 1 << 20);
		assert_int_equal(eng_release(f->e, ino), 0);
		eng_forget(f->e, ino, 1);
		closed_stats(f, &o, &st);
		refs[v] = st.ref_chunks;
		print_message("lookup: after %s %llu of %llu chunks coded against a reference\n", paths[v],
		              (unsigned long long)st.ref_chunks, (unsigned long long)st.chunks);
		if (v == 1) {
			/* the base goes: the next file must find the tuned one */
			assert_int_equal(eng_unlink(f->e, dino[0], names[0]), 0);
			free(files[0]);
			files[0] = NULL;
		}
		weights_step(w, N, 5, &seed);
	}
	free(w);
	/* each later file: most of its ~16 chunks against the one before */
	assert_int_equal(refs[0], 0);
	assert_true(refs[1] >= 8);
	assert_true(refs[2] >= refs[1] + 8);
	for (int v = 1; v < V; v++) {
		assert_int_equal(eng_lookup(f->e, dino[v], names[v], &a), 0);
		check_read(f, a.st.st_ino, 0, files[v], lens[v]);
		eng_forget(f->e, a.st.st_ino, 1);
		free(files[v]);
	}
}

/* np.save writes a 128-byte header, then fallocates the data's range
 * (fsync would do the same): the short head is cut and committed alone
 * before any data.  The reference is then chosen by the first segment of
 * the data, at its offset; before, such a series got none. */
static void t_series_raw_late(void **state)
{
	struct fx *f = *state;
	enum { V = 3, N = 1 << 18, HDR = 128 };
	uint64_t seed = 31;
	float *w = weights_new(N, &seed);
	uint8_t *files[V];
	struct eng_opts o;
	struct idx_stats st;
	char name[32];

	series_open(f, &o, 0);
	for (int v = 0; v < V; v++) {
		files[v] = malloc(HDR + 2 * N);
		assert_non_null(files[v]);
		memset(files[v], ' ', HDR);
		snprintf((char *)files[v], HDR, "\x93NUMPY v%d {'descr': '<u2', 'shape': (%d,)}", v, N);
		bf16_store(files[v] + HDR, w, N);
		snprintf(name, sizeof(name), "w-%d.npy", (v + 1) * 100);
		uint64_t ino = new_file(f, 1, name);
		assert_int_equal(eng_write(f->e, ino, 0, files[v], HDR), HDR);
		assert_int_equal(eng_fallocate(f->e, ino, FALLOC_FL_KEEP_SIZE, HDR, 2 * N), 0);
		write_all(f, ino, HDR, files[v] + HDR, 2 * N, 1 << 20);
		assert_int_equal(eng_release(f->e, ino), 0);
		eng_forget(f->e, ino, 1);
		weights_step(w, N, 7, &seed);
	}
	closed_stats(f, &o, &st);
	print_message("raw series, short heads: %llu of %llu chunks coded against a reference\n",
	              (unsigned long long)st.ref_chunks, (unsigned long long)st.chunks);
	assert_true(st.ref_chunks * 2 >= st.chunks); /* versions 2 and 3 of 3 */
	for (int v = 0; v < V; v++) {
		snprintf(name, sizeof(name), "w-%d.npy", (v + 1) * 100);
		check_file(f, name, files[v], HDR + 2 * N);
		free(files[v]);
	}
	free(w);
}

/* From a review: a raw file whose first version had a short head (ref_raw_late)
 * is rewritten in place (open O_TRUNC keeps a shadow, ein_new_head): its
 * reference must be its own previous version, the shadow, as for any
 * other file.  ref_raw_late is never reset, so ref_find takes the late
 * path, which ignores shadow_ino. */
static void t_series_raw_late_shadow(void **state)
{
	struct fx *f = *state;
	enum { N = 1 << 18, HDR = 128 };
	uint64_t seed = 31;
	float *w = weights_new(N, &seed);
	uint8_t *b = malloc(HDR + 2 * N);
	struct eng_opts o;
	assert_non_null(b);
	series_open(f, &o, 0);
	memset(b, ' ', HDR);
	snprintf((char *)b, HDR, "\x93NUMPY {'descr': '<u2', 'shape': (%d,)}", N);
	uint64_t ino = new_file(f, 1, "w.npy");
	for (int v = 0; v < 2; v++) {
		if (v == 1)
			assert_int_equal(eng_open(f->e, ino, O_RDWR | O_TRUNC), 0);
		bf16_store(b + HDR, w, N);
		assert_int_equal(eng_write(f->e, ino, 0, b, HDR), HDR);
		assert_int_equal(eng_fallocate(f->e, ino, FALLOC_FL_KEEP_SIZE, HDR, 2 * N), 0);
		write_all(f, ino, HDR, b + HDR, 2 * N, 1 << 20);
		assert_int_equal(eng_fsync(f->e, ino, false), 0);
		struct einode *ei = ein_get(f->e, ino, false, 0, 0);
		assert_non_null(ei);
		print_message("v%d: shadow %llu ref %llu raw_late %d\n", v,
		              (unsigned long long)ei->shadow_ino, (unsigned long long)ei->ref_ino,
		              (int)ei->ref_raw_late);
		if (v == 1) {
			assert_true(ei->shadow_ino != 0);
			assert_int_equal(ei->ref_ino, ei->shadow_ino);
		}
		ein_put(f->e, ei, 0, 0);
		assert_int_equal(eng_release(f->e, ino), 0);
		weights_step(w, N, 7, &seed);
	}
	eng_forget(f->e, ino, 1);
	free(b);
	free(w);
}

/* From a review: a raw file under REF_RAW_MIN (48 KiB) in checkpoint-2/ had rule
 * (3) before 9984ae5 (the same name in the sibling checkpoint-1/): it now
 * goes to ref_raw_late, which never fires for a file that small. */
static void t_series_raw_small(void **state)
{
	struct fx *f = *state;
	enum { L = 48 << 10 };
	uint8_t *b = malloc(L);
	struct eng_opts o;
	uint64_t ino[2];
	assert_non_null(b);
	series_open(f, &o, 0);
	for (int v = 0; v < 2; v++) {
		char dn[32];
		snprintf(dn, sizeof(dn), "checkpoint-%d", v + 1);
		uint64_t dir = new_dir(f, 1, dn);
		fill_random(b, L, 7);
		b[100 + v] ^= 1;
		ino[v] = new_file(f, dir, "opt.bin");
		write_all(f, ino[v], 0, b, L, 1 << 20);
		assert_int_equal(eng_fsync(f->e, ino[v], false), 0);
		struct einode *ei = ein_get(f->e, ino[v], false, 0, 0);
		assert_non_null(ei);
		print_message("v%d: ino %llu ref %llu raw_late %d\n", v, (unsigned long long)ino[v],
		              (unsigned long long)ei->ref_ino, (int)ei->ref_raw_late);
		uint64_t ref = ei->ref_ino;
		ein_put(f->e, ei, 0, 0);
		if (v == 1)
			assert_int_equal(ref, ino[0]);
		assert_int_equal(eng_release(f->e, ino[v]), 0);
	}
	free(b);
}

/* From a review: a whole copy of a file over ENG_COPY_MAX (1 GiB: checkpoints)
 * takes two calls; the first is not "whole" (len != src.size), so the
 * destination gets no tensors at all. */
static unsigned file_tensors(struct fx *f, uint64_t ino)
{
	struct idx_txn *t;
	struct idx_tensor tv[IDX_TENSORS_MAX];
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	int n = idx_tensors_get(t, ino, tv, IDX_TENSORS_MAX);
	idx_txn_abort(t);
	assert_true(n >= 0);
	return (unsigned)n;
}

static void t_copy_range_big_tensors(void **state)
{
	struct fx *f = *state;
	const uint64_t N = (600ull << 20); /* bf16 elements: 1.2 GB per tensor */
	struct eng_opts o;
	char json[256];
	uint8_t head[1024];
	series_open(f, &o, 0);
	int jl = snprintf(json, sizeof(json),
	                  "{\"a\":{\"dtype\":\"BF16\",\"shape\":[%llu],\"data_offsets\":[0,%llu]}}",
	                  (unsigned long long)N, (unsigned long long)(2 * N));
	size_t hl = ((size_t)jl + 7) & ~(size_t)7;
	memset(head, ' ', sizeof(head));
	for (int i = 0; i < 8; i++)
		head[i] = (uint8_t)((uint64_t)hl >> (8 * i));
	memcpy(head + 8, json, (size_t)jl);
	uint64_t total = 8 + hl + 2 * N;
	uint8_t *data = malloc(4 << 20);
	assert_non_null(data);
	fill_random(data, 4 << 20, 3);
	uint64_t src = new_file(f, 1, "big.safetensors");
	assert_int_equal(eng_write(f->e, src, 0, head, 8 + hl), (ssize_t)(8 + hl));
	write_all(f, src, 8 + hl, data, 4 << 20, 1 << 20);
	assert_int_equal(eng_release(f->e, src), 0);
	struct eng_setattr sa = { .valid = ENG_SET_SIZE, .size = total };
	struct eng_attr at;
	assert_int_equal(eng_setattr(f->e, src, &sa, &at), 0);
	print_message("src tensors %u\n", file_tensors(f, src));
	assert_true(file_tensors(f, src) > 0);
	uint64_t dst = new_file(f, 1, "copy.safetensors");
	uint64_t off = 0;
	while (off < total) {
		ssize_t r = eng_copy_range(f->e, src, off, dst, off, total - off, 0);
		assert_true(r > 0);
		off += (uint64_t)r;
	}
	print_message("dst tensors %u\n", file_tensors(f, dst));
	assert_int_equal(file_tensors(f, dst), file_tensors(f, src));
	assert_int_equal(eng_release(f->e, dst), 0);
	eng_forget(f->e, src, 1);
	eng_forget(f->e, dst, 1);
	free(data);
}

static void sched_job(void *arg, void *local)
{
	(void)local;
	*(int *)arg = sched_getscheduler(0);
}

/* The scheduling policy of a job run by pool p. */
static int pool_policy(struct pool *p)
{
	struct pool_group *g = pool_group_create();
	int pol = -1;
	assert_non_null(g);
	assert_int_equal(pool_submit(p, g, sched_job, &pol), 0);
	pool_group_wait(g);
	pool_group_free(g);
	return pol;
}

/* Threads of this process whose policy is SCHED_IDLE. */
static unsigned idle_threads(void)
{
	char cmd[64];
	unsigned n = 0;
	FILE *ls;
	long tid;
	snprintf(cmd, sizeof(cmd), "ls /proc/%d/task", (int)getpid());
	ls = popen(cmd, "r");
	assert_non_null(ls);
	while (fscanf(ls, "%ld", &tid) == 1)
		n += sched_getscheduler((pid_t)tid) == SCHED_IDLE;
	pclose(ls);
	return n;
}

/* Rebase's encodes run at idle CPU priority (SCHED_IDLE) on the background
 * pool unless bg_idle is off; the thread opening the store, the write and
 * read paths' pool keep the daemon's own.  (A first version set the policy
 * in the pool's init, which runs on the thread creating the pool: the
 * opening thread and every thread created after it went idle.) */
static void t_bg_idle(void **state)
{
	struct fx *f = *state;
	enum { V = 2 };
	uint8_t *files[V];
	struct eng_opts o;

	for (int pass = 0; pass < 2; pass++) {
		series_open(f, &o, 0);
		if (pass == 1) { /* bg=normal */
			assert_int_equal(eng_store_close(f->e), 0);
			o.bg_idle = false;
			assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
		}
		assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
		assert_int_equal(idle_threads(), 0);
		size_t len = series_write(f, V, files, NULL);
		uint64_t turned = 0;
		assert_int_equal(eng_rebase(f->e, &turned), 0);
		assert_true(turned > 0);
		print_message("bg_idle %d: %llu chunks turned, %u idle threads\n", pass == 0,
		              (unsigned long long)turned, idle_threads());
		if (pass == 0)
			assert_true(idle_threads() >= 1);
		else
			assert_int_equal(idle_threads(), 0);
		assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
		assert_int_equal(pool_policy(f->e->pool), SCHED_OTHER);
		series_check(f, V, files, len);
		for (int v = 0; v < V; v++)
			free(files[v]);
		/* a fresh store for the second pass */
		assert_int_equal(eng_store_close(f->e), 0);
		rm_rf(f->store);
		assert_int_equal(eng_mkfs(f->store, CODEC_LEVEL_FAST), 0);
		open_store(f, CODEC_LEVEL_FAST);
	}
	/* the threads of the closed engines are gone */
	assert_int_equal(idle_threads(), 0);
}

/* A whole copy (copy_file_range) holds the source's tensors in the index:
 * after the source is deleted, a new version written elsewhere under
 * another name finds the copy by them and is coded against it. */
static void t_copy_range_tensors(void **state)
{
	struct fx *f = *state;
	enum { N = 1 << 19 };
	uint8_t *v0 = malloc(8 + 256 + 2 * N), *v1 = malloc(8 + 256 + 2 * N);
	struct eng_opts o;
	struct eng_attr a;
	struct idx_stats st;
	uint64_t seed = 13;
	float *w = weights_new(N, &seed);

	series_open(f, &o, 0);
	size_t len = make_st_ext(v0, w, N, NULL, 0);
	uint64_t x = new_dir(f, 1, "x"), y = new_dir(f, 1, "y"), q = new_dir(f, 1, "q");
	uint64_t src = new_file(f, x, "base.safetensors");
	write_all(f, src, 0, v0, len, 1 << 20);
	assert_int_equal(eng_release(f->e, src), 0);
	uint64_t cp = new_file(f, y, "kept.safetensors");
	assert_int_equal(eng_copy_range(f->e, src, 0, cp, 0, 1ull << 40, 0), (ssize_t)len);
	assert_int_equal(eng_release(f->e, cp), 0);
	eng_forget(f->e, cp, 1);
	assert_int_equal(eng_unlink(f->e, x, "base.safetensors"), 0);
	eng_forget(f->e, src, 1);
	weights_step(w, N, 5, &seed);
	size_t len1 = make_st_ext(v1, w, N, "10", 0); /* another header */
	uint64_t nv = new_file(f, q, "next.safetensors");
	write_all(f, nv, 0, v1, len1, 1 << 20);
	assert_int_equal(eng_release(f->e, nv), 0);
	eng_forget(f->e, nv, 1);
	closed_stats(f, &o, &st);
	print_message("copy's tensors: %llu of %llu chunks coded against a reference\n",
	              (unsigned long long)st.ref_chunks, (unsigned long long)st.chunks);
	assert_true(st.ref_chunks >= 8); /* most of next's ~16 chunks */
	assert_int_equal(eng_lookup(f->e, q, "next.safetensors", &a), 0);
	check_read(f, a.st.st_ino, 0, v1, len1);
	eng_forget(f->e, a.st.st_ino, 1);
	assert_int_equal(eng_lookup(f->e, y, "kept.safetensors", &a), 0);
	check_read(f, a.st.st_ino, 0, v0, len);
	eng_forget(f->e, a.st.st_ino, 1);
	free(w);
	free(v0);
	free(v1);
}

/* Lazy coding: with lazy=all every new chunk without a reference is coded
 * at fast, a reference still gets its forward delta at mix; rebase then
 * recompresses the fast chunks alone at mix (turning the deltas around
 * after them), the store shrinks and every version reads back exactly. */
static void t_lazy_recompress(void **state)
{
	struct fx *f = *state;
	enum { V = 3 };
	struct chain_walk cw[V];
	uint8_t *files[V];
	uint64_t turned = 0;
	struct idx_stats before, after;
	struct eng_opts o;

	assert_int_equal(eng_store_close(f->e), 0);
	series_opts(&o, 0); /* no thread: eng_rebase only */
	o.lazy = ENG_LAZY_ALL;
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	size_t len = series_write(f, V, files, NULL);
	series_check(f, V, files, len);
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	series_chains(f, V, cw, &before);
	/* version 0 at fast but for its small header chunk */
	assert_true(before.level_raw[CODEC_LEVEL_FAST] >= len - 4096);
	/* the later versions too, alone: their references wait in the rebase
	 * queue as hints (before 2026-11-27 they were coded as deltas at mix) */
	assert_true(before.level_raw[CODEC_LEVEL_FAST] >= V * (len - 4096));
	assert_int_equal(before.ref_chunks, 0);
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	assert_true(turned > 0);
	series_check(f, V, files, len);
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	series_chains(f, V, cw, &after);
	print_message("lazy: %llu chunks rewritten, stored %llu -> %llu bytes, fast %llu -> %llu\n",
	              (unsigned long long)turned, (unsigned long long)before.stored_bytes,
	              (unsigned long long)after.stored_bytes,
	              (unsigned long long)before.level_raw[CODEC_LEVEL_FAST],
	              (unsigned long long)after.level_raw[CODEC_LEVEL_FAST]);
	assert_int_equal(after.level_raw[CODEC_LEVEL_FAST], 0);
	assert_true(after.stored_bytes < before.stored_bytes);
	assert_int_equal(cw[V - 1].depth, 0); /* the newest full, as without lazy */
	assert_int_equal(after.ref_fwd_chunks, 0);
	/* nothing left: a second pass rewrites nothing */
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	assert_int_equal(turned, 0);
	series_check(f, V, files, len);
	for (int v = 0; v < V; v++)
		free(files[v]);
	/* the store ends as it would have without lazy coding: the same bytes
	 * written with lazy=off into a second store, then rebased (fast frames
	 * keep their row lengths, so recompression codes with them too) */
	{
		struct idx_stats ref;
		char keep[sizeof(f->store)];

		assert_int_equal(eng_store_close(f->e), 0);
		f->e = NULL;
		memcpy(keep, f->store, sizeof(keep));
		snprintf(f->store, sizeof(f->store), "%s/store-off", f->dir);
		assert_int_equal(eng_mkfs(f->store, CODEC_LEVEL_MIX), 0);
		o.lazy = ENG_LAZY_OFF;
		assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
		series_write(f, V, files, NULL);
		assert_int_equal(eng_rebase(f->e, &turned), 0);
		assert_int_equal(eng_store_close(f->e), 0);
		f->e = NULL;
		series_chains(f, V, cw, &ref);
		print_message("lazy: stored %llu bytes, without lazy coding %llu\n",
		              (unsigned long long)after.stored_bytes,
		              (unsigned long long)ref.stored_bytes);
		assert_int_equal(after.stored_bytes, ref.stored_bytes);
		memcpy(f->store, keep, sizeof(keep));
		assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
		for (int v = 0; v < V; v++)
			free(files[v]);
	}
}

/* Deleted data of earlier mounts is freed by the online gc while mounted,
 * and what is left still reads back. */
static void t_online_gc(void **state)
{
	struct fx *f = *state;
	size_t n = 8u << 20;
	uint8_t *a = malloc(n), *b = malloc(n);
	fill_random(a, n, 11);
	fill_random(b, n, 12);
	put_file(f, "a", a, n);
	put_file(f, "b", b, n);
	assert_int_equal(eng_store_close(f->e), 0);
	struct eng_opts o;
	eng_opts_default(&o);
	o.level = CODEC_LEVEL_FAST;
	o.gc_interval_s = 1;
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	uint64_t before = du_alloc(f);
	assert_int_equal(eng_unlink(f->e, 1, "a"), 0);
	assert_true(wait_du_at_most(f, before - n / 2, 10000) <= before - n / 2);
	check_file(f, "b", b, n);
	free(a);
	free(b);
}

/* The default options at level fast, for the reopen_* helpers. */
static struct eng_opts fast_opts(void)
{
	struct eng_opts o;

	eng_opts_default(&o);
	o.level = CODEC_LEVEL_FAST;
	return o;
}

/* Close f's store and open it again with o. */
static void reopen_with(struct fx *f, const struct eng_opts *o)
{
	assert_int_equal(eng_store_close(f->e), 0);
	assert_int_equal(eng_store_open(f->store, o, &f->e), 0);
}

/* Reopen at level fast with the online gc every interval_s seconds and
 * packs of max_pack bytes. */
static void reopen_gc(struct fx *f, uint64_t max_pack, unsigned interval_s)
{
	struct eng_opts o = fast_opts();

	o.gc_interval_s = interval_s;
	o.max_pack_bytes = max_pack;
	reopen_with(f, &o);
}

/* The same for packs written by this mount: once they are sealed (a later
 * pack receives the appends) and nothing is in flight, the online gc
 * frees their dead bytes without a remount, while writes go on. */
static void t_online_gc_same_mount(void **state)
{
	struct fx *f = *state;
	size_t n = 8u << 20;
	uint8_t *a = malloc(n), *b = malloc(n), *c = malloc(n);

	reopen_gc(f, 4u << 20, 1); /* several packs */
	fill_random(a, n, 21);
	fill_random(b, n, 22);
	fill_random(c, n, 23);
	put_file(f, "a", a, n);
	put_file(f, "b", b, n);
	uint64_t before = du_alloc(f);
	assert_int_equal(eng_unlink(f->e, 1, "a"), 0);
	put_file(f, "c", c, n); /* keep writing meanwhile: c lands in new packs */
	/* a's 8 MiB went, c's came */
	assert_true(wait_du_at_most(f, before + n / 2, 10000) <= before + n / 2);
	check_file(f, "b", b, n);
	check_file(f, "c", c, n);
	free(a);
	free(b);
	free(c);
}

/* The committer is held (a group between the queue and its commit: the
 * engine is not quiet, so the online gc may not collect this mount's
 * packs) until gc_busy_until (monotonic ns). */
static int64_t gc_busy_until;

static void hold_commit_until(struct eng *e)
{
	(void)e;
	while (eng_mono_ns() < gc_busy_until)
		usleep(50000);
}

/* A pass that finds a batch in flight cannot collect this mount's packs;
 * the gc looks again every second until it is quiet, rather than at the
 * next interval.  The interval is 8 s and the committer is busy through
 * the first pass (0-9.5 s; a file is deleted meanwhile: an early pass
 * that cannot collect it either); the dead bytes must go within 4 s
 * after that, well before the second pass (16 s on). */
static void t_online_gc_after_busy(void **state)
{
	struct fx *f = *state;
	size_t n = 8u << 20, k = 256u << 10;
	uint8_t *a = malloc(n), *c = malloc(k);

	fill_random(a, n, 24);
	fill_random(c, k, 25);
	int64_t t0 = eng_mono_ns();
	reopen_gc(f, 4u << 20, 8); /* a's bytes fill sealed packs */
	put_file(f, "a", a, n);
	uint64_t before = du_alloc(f);
	gc_busy_until = t0 + 9500000000ll;
	pthread_mutex_lock(&f->e->plock);
	f->e->commit_hook = hold_commit_until;
	pthread_mutex_unlock(&f->e->plock);
	put_file(f, "c", c, k); /* its group waits in the hook */
	assert_int_equal(eng_unlink(f->e, 1, "a"), 0);
	while (eng_mono_ns() < gc_busy_until)
		usleep(100000);
	assert_true(du_alloc(f) > before - n / 2); /* the first pass could not */
	uint64_t du = wait_du_at_most(f, before - n / 2, 4000);
	print_message("gc after a busy pass: %llu -> %llu bytes allocated %.1f s after the "
	              "committer went quiet\n", (unsigned long long)before,
	              (unsigned long long)du, (double)(eng_mono_ns() - gc_busy_until) / 1e9);
	assert_true(du <= before - n / 2);
	pthread_mutex_lock(&f->e->plock);
	f->e->commit_hook = NULL;
	pthread_mutex_unlock(&f->e->plock);
	check_file(f, "c", c, k);
	free(a);
	free(c);
}

/* Dead bytes do not wait for the interval: once a quarter pack's worth
 * (eng_seal_dead_bytes) died since the last pass, the gc runs one.  With
 * a 60 s interval, a deleted 8 MiB file in sealed 4 MiB packs must be
 * freed within 5 s. */
static void t_online_gc_early(void **state)
{
	struct fx *f = *state;
	size_t n = 8u << 20;
	uint8_t *a = malloc(n), *b = malloc(n);

	reopen_gc(f, 4u << 20, 60);
	fill_random(a, n, 26);
	fill_random(b, n, 27);
	put_file(f, "a", a, n);
	put_file(f, "b", b, n);
	uint64_t before = du_alloc(f);
	int64_t t0 = eng_mono_ns();
	assert_int_equal(eng_unlink(f->e, 1, "a"), 0);
	uint64_t du = wait_du_at_most(f, before - n / 2, 5000);
	print_message("gc of a deleted file, 60 s interval: %llu -> %llu bytes allocated after "
	              "%.1f s\n", (unsigned long long)before, (unsigned long long)du,
	              (double)(eng_mono_ns() - t0) / 1e9);
	assert_true(du <= before - n / 2);
	check_file(f, "b", b, n);
	free(a);
	free(b);
}

/* Checkpoint rotation: a file deleted from the pack being appended to
 * frees its bytes while mounted and with no further write (the pack is
 * sealed once a quarter of it is dead; it used to stay open until it
 * filled up).  keep: another file stays in that pack (its dead bytes are
 * punched), else the whole pack goes (it is removed though still the
 * store's open pack: that failed every gc pass with EBUSY). */
static void gc_current_case(struct fx *f, bool keep)
{
	size_t n = 8u << 20;
	uint8_t *a = malloc(n), *b = malloc(n);

	reopen_gc(f, 32u << 20, 1); /* sealed past 8 MiB dead */
	fill_random(a, n, 31);
	fill_random(b, n, 32);
	put_file(f, "a", a, n);
	if (keep)
		put_file(f, "b", b, n);
	uint64_t before = du_alloc(f);
	assert_int_equal(eng_unlink(f->e, 1, "a"), 0);
	assert_true(wait_du_at_most(f, before - n / 2, 10000) <= before - n / 2);
	if (keep)
		check_file(f, "b", b, n);
	/* the store goes on: a new file lands in a new pack */
	put_file(f, "c", b, n);
	check_file(f, "c", b, n);
	free(a);
	free(b);
}

static void t_online_gc_current(void **state)
{
	gc_current_case(*state, true);
}

static void t_online_gc_current_dead(void **state)
{
	gc_current_case(*state, false);
}

/* The online gc must not take a group the committer holds (off the queue,
 * not yet committed) for garbage: a file whose first frames fill the tail
 * of one pack and whose rest rolls over to the next is held 2.5 s between
 * its batches leaving the queue and their commit while the gc runs every
 * second; afterwards it must read back whole.  (The gc once punched those
 * frames: EIO.) */
static void hold_commit(struct eng *e)
{
	(void)e;
	usleep(2500000);
}

static uint64_t inflight_max;

static void sample_inflight(struct eng *e)
{
	pthread_mutex_lock(&e->plock);
	if (e->inflight_bytes > inflight_max)
		inflight_max = e->inflight_bytes;
	pthread_mutex_unlock(&e->plock);
}

/* inflight= bounds the batches queued for coding and commit: a writer
 * faster than the coder waits once they pass it (before, only the sum
 * with the buffered bytes was bounded, by dirty=: inflight= was accepted
 * and ignored).  One writer: at most the bound plus the batch it cut. */
static void t_inflight_bound(void **state)
{
	struct fx *f = *state;
	enum { N = 32u << 20 };
	uint64_t seed = 9;
	float *w = weights_new(N, &seed);
	uint8_t *buf = malloc(8 + 160 + 2 * (size_t)N);
	struct eng_opts o;

	assert_non_null(buf);
	size_t len = make_st(buf, w, N);
	free(w);
	assert_int_equal(eng_store_close(f->e), 0);
	eng_opts_default(&o);
	o.level = CODEC_LEVEL_MIX;
	o.lazy = ENG_LAZY_OFF; /* every chunk coded at mix: slower than the writer */
	o.workers = 2;
	o.inflight_bytes = 8u << 20;
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	inflight_max = 0;
	f->e->commit_hook = sample_inflight;
	uint64_t ino = new_file(f, 1, "big.safetensors");
	write_all(f, ino, 0, buf, len, 1 << 20);
	assert_int_equal(eng_fsync(f->e, ino, false), 0);
	f->e->commit_hook = NULL;
	print_message("inflight=8M: at most %llu bytes queued (flush unit %llu, %zu written)\n",
	              (unsigned long long)inflight_max, (unsigned long long)f->e->flush_unit, len);
	assert_true(inflight_max > 0);
	assert_true(inflight_max <= o.inflight_bytes + f->e->flush_unit);
	check_read(f, ino, 0, buf, len);
	assert_int_equal(eng_release(f->e, ino), 0);
	eng_forget(f->e, ino, 1);
	free(buf);
}

static void t_online_gc_commit_race(void **state)
{
	struct fx *f = *state;
	size_t n1 = 12u << 20, n2 = 8u << 20;
	uint8_t *a = malloc(n1), *b = malloc(n2);

	reopen_gc(f, 16u << 20, 1); /* b's first 4 MiB close pack 1 */
	fill_random(a, n1, 41);
	fill_random(b, n2, 42);
	put_file(f, "a", a, n1);
	f->e->commit_hook = hold_commit;
	put_file(f, "b", b, n2);
	f->e->commit_hook = NULL;
	sleep(2); /* a gc pass after the commit too */
	check_file(f, "b", b, n2);
	check_file(f, "a", a, n1);
	free(a);
	free(b);
}

/* A reader overlays the batches of its file that are in flight when it
 * starts; one of them may commit while it reads.  That commit frees the
 * chunks the reader's snapshot still names (the file's old bytes there),
 * and the online gc may then punch or move them before the reader gets to
 * them.  The reader must still return the new bytes (its overlay), never
 * EIO.  Deterministic: the committer is held until the reader has its
 * snapshot; the reader then waits (read_hook) until the batch committed
 * and the gc freed the old frame of the chunk at offset 0. */
static struct {
	sem_t go;                /* releases the held commit */
	atomic_int held;         /* the committer is in the hook */
	atomic_bool arm_commit, arm_read;
	char path[256];          /* pack of the old chunk at offset 0 */
	uint64_t off;            /* and its frame there */
	uint32_t len;
	bool freed;              /* gc freed that frame (seen by the hook) */
} rr;

static void rr_commit_hook(struct eng *e)
{
	(void)e;
	if (!atomic_exchange(&rr.arm_commit, false))
		return;
	atomic_store(&rr.held, 1);
	sem_wait(&rr.go);
}

static bool rr_frame_gone(void)
{
	int fd = open(rr.path, O_RDONLY);
	if (fd < 0)
		return true; /* compacted: the old pack was removed */
	struct stat st;
	bool gone = fstat(fd, &st) == 0 && (uint64_t)st.st_size < rr.off + rr.len; /* tail cut */
	off_t h = gone ? 0 : lseek(fd, (off_t)rr.off, SEEK_HOLE);
	close(fd);
	return gone || (h >= 0 && h < (off_t)(rr.off + rr.len)); /* or a part punched */
}

static void rr_read_hook(struct eng *e)
{
	if (!atomic_exchange(&rr.arm_read, false))
		return;
	sem_post(&rr.go); /* the batch commits after our snapshot */
	for (int i = 0; i < 1500; i++) { /* gc passes every second */
		pthread_mutex_lock(&e->plock);
		bool busy = e->committing || e->qhead != NULL;
		pthread_mutex_unlock(&e->plock);
		if (!busy && rr_frame_gone()) {
			rr.freed = true;
			return;
		}
		usleep(20000);
	}
}

struct first_chunk {
	struct idx_txn *t;
	struct idx_chunk c;
	bool found;
};

static int first_chunk_cb(void *arg, const struct idx_extent *x)
{
	struct first_chunk *r = arg;
	assert_int_equal(idx_chunk_get(r->t, x->fp, &r->c), 0);
	r->found = true;
	return 1;
}

/* Replace the record of chunk c->fp by c, behind the engine's back. */
static void plant_chunk(struct fx *f, const struct idx_chunk *c)
{
	struct idx *x = closed_idx(f, 0);
	struct idx_txn *t;

	assert_int_equal(idx_txn_begin(x, false, &t), 0);
	assert_int_equal(idx_chunk_relocate(t, c), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	idx_close(x);
	open_store(f, CODEC_LEVEL_FAST);
}

/* A damaged chunk record that points at another valid frame (its pack
 * offset, length, level or reference flag changed) must read EIO, never
 * that frame's bytes: the frame checks its own checksum and decodes
 * fine.  Before gc_frame_fits in the read path, each of these returned
 * the other file's 8 KiB (fsck caught them by the header check or the
 * SHA-256).  A record pointing at a frame equal in all the fields it
 * keeps is not caught: it keeps no checksum (docs/RELIABILITY.md). */
static void t_chunk_misdirected(void **state)
{
	struct fx *f = *state;
	enum { N = 8192 };
	static const char *names[] = { "r", "t", "t2", "g", "tail" };
	uint8_t b[5][N], got[N];
	uint64_t ino[5];
	struct idx_chunk c[5], bad;
	struct idx_txn *t;
	struct eng_attr a;

	fill_random(b[0], N, 11); /* stored raw */
	for (size_t i = 0, s = 0; i < N; s++) { /* a training log: fast */
		char line[64];
		int l = snprintf(line, sizeof(line), "step %zu loss %.4f\n", s, 3.0 / (double)(s + 1));
		size_t k = N - i < (size_t)l ? N - i : (size_t)l;
		memcpy(b[1] + i, line, k);
		i += k;
	}
	memcpy(b[2], b[1], N); /* the same log, a few digits changed */
	for (size_t i = 100; i < N; i += 1000)
		b[2][i] = (uint8_t)(b[2][i] == '7' ? '8' : '7');
	for (size_t i = 0; i < N; i += 2) { /* bf16 weights near 0.02 */
		uint32_t r = (uint32_t)(i * 2654435761u) >> 20;
		b[3][i] = (uint8_t)r;
		b[3][i + 1] = (uint8_t)((r & 1 ? 0xbc : 0x3c) | ((r >> 1) & 1));
	}
	fill_random(b[4], N, 12);
	for (int i = 0; i < 5; i++) {
		ino[i] = new_file(f, 1, names[i]);
		write_all(f, ino[i], 0, b[i], N, N);
		assert_int_equal(eng_fsync(f->e, ino[i], false), 0);
		assert_int_equal(eng_release(f->e, ino[i]), 0);
	}
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	for (int i = 0; i < 5; i++) {
		struct first_chunk fc = { .t = t };

		assert_true(idx_extent_iter(t, ino[i], 0, UINT64_MAX, first_chunk_cb, &fc) >= 0);
		assert_true(fc.found);
		c[i] = fc.c;
		assert_int_equal(c[i].raw_len, N);
		eng_forget(f->e, ino[i], 1);
	}
	idx_txn_abort(t);
	/* the cases below need these kinds of frames */
	assert_int_equal(c[0].level, CODEC_LEVEL_RAW);
	assert_int_equal(c[1].level, CODEC_LEVEL_FAST);
	assert_int_equal(c[2].level, CODEC_LEVEL_FAST);
	assert_int_equal(c[1].dtype, c[2].dtype);
	assert_int_equal(c[3].level, CODEC_LEVEL_FAST);
	assert_int_not_equal(c[3].dtype, c[1].dtype);
	assert_int_equal(c[2].pack_id, c[3].pack_id); /* t2 is not its pack's last frame */
	/* r and tail: frames alike in every field but the checksum */
	assert_int_equal(c[4].level, CODEC_LEVEL_RAW);
	assert_int_equal(c[4].dtype, c[0].dtype);
	assert_int_equal(c[4].frame_len, c[0].frame_len);
	assert_true(c[0].has_sum && c[4].has_sum && c[0].sum != c[4].sum);

	for (int v = 0; v < 5; v++) {
		int victim = v == 0 || v == 4 ? 0 : 1, other;
		bad = c[victim];
		switch (v) {
		case 0: /* r -> t's frame: a raw record on a fast frame */
			other = 1;
			bad.pack_id = c[other].pack_id;
			bad.pack_off = c[other].pack_off;
			bad.frame_len = c[other].frame_len;
			break;
		case 1: /* t -> t2's frame and one byte after it */
			other = 2;
			bad.pack_id = c[other].pack_id;
			bad.pack_off = c[other].pack_off;
			bad.frame_len = c[other].frame_len + 1;
			break;
		case 2: /* t -> g's frame: same level, another dtype */
			other = 3;
			bad.pack_id = c[other].pack_id;
			bad.pack_off = c[other].pack_off;
			bad.frame_len = c[other].frame_len;
			break;
		case 4: /* r -> tail's frame: raw, as long; only the checksum tells */
			other = 4;
			bad.pack_id = c[other].pack_id;
			bad.pack_off = c[other].pack_off;
			break;
		default: /* 3: t, coded against r, -> t2's full frame */
			other = 2;
			bad.pack_id = c[other].pack_id;
			bad.pack_off = c[other].pack_off;
			bad.frame_len = c[other].frame_len;
			bad.flags = IDX_CHUNK_HAS_REF;
			memcpy(bad.ref_fp, c[0].fp, FP_LEN);
			break;
		}
		plant_chunk(f, &bad);
		assert_int_equal(eng_lookup(f->e, 1, names[victim], &a), 0);
		memset(got, 0, N);
		ssize_t r = eng_read(f->e, a.st.st_ino, 0, N, got);
		if (r >= 0)
			print_error("case %d: read %zd bytes, %s\n", v, r,
			            memcmp(got, b[other], N) == 0 ? "the other file's" : "?");
		assert_int_equal(r, -EIO);
		eng_forget(f->e, a.st.st_ino, 1);
		plant_chunk(f, &c[victim]);
		check_file(f, names[victim], b[victim], N);
	}
}

static void t_read_overlay_gc(void **state)
{
	struct fx *f = *state;
	size_t n = 8u << 20, m = 4u << 20;
	uint8_t *a = malloc(n), *b = malloc(m), *got = malloc(131072);
	struct eng_opts o;
	struct eng_attr at;
	struct idx_txn *t;

	fill_random(a, n, 51);
	fill_random(b, m, 52);
	put_file(f, "a", a, n); /* in a pack of this mount: below the next one's */
	assert_int_equal(eng_store_close(f->e), 0);
	eng_opts_default(&o);
	o.level = CODEC_LEVEL_FAST;
	o.gc_interval_s = 1;
	o.cache_bytes = 1;         /* nothing stays decoded: reads go to the packs */
	o.readahead_chunks = 0;
	o.dirty_bytes = 8u << 20;  /* flush_unit 4 MiB: the write below is cut at once */
	o.workers = 2;
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);

	assert_int_equal(eng_lookup(f->e, 1, "a", &at), 0);
	uint64_t ino = at.st.st_ino;
	struct first_chunk r = { 0 };
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	r.t = t;
	assert_true(idx_extent_iter(t, ino, 0, 1, first_chunk_cb, &r) >= 0);
	assert_true(r.found);
	idx_txn_abort(t);
	snprintf(rr.path, sizeof(rr.path), "%s/packs/%08x.pack", f->store, (unsigned)r.c.pack_id);
	rr.off = r.c.pack_off;
	rr.len = r.c.frame_len;
	assert_false(rr_frame_gone());

	assert_int_equal(sem_init(&rr.go, 0, 0), 0);
	atomic_store(&rr.held, 0);
	rr.freed = false;
	atomic_store(&rr.arm_commit, true);
	f->e->commit_hook = rr_commit_hook;
	assert_int_equal(eng_open(f->e, ino, O_RDWR), 0);
	/* 4 MiB over the first half: one batch, queued without waiting */
	assert_int_equal(eng_write(f->e, ino, 0, b, m), (ssize_t)m);
	for (int i = 0; i < 500 && !atomic_load(&rr.held); i++)
		usleep(20000);
	assert_true(atomic_load(&rr.held));
	atomic_store(&rr.arm_read, true);
	f->e->read_hook = rr_read_hook;
	ssize_t got_n = eng_read(f->e, ino, 0, 131072, got);
	f->e->read_hook = NULL;
	f->e->commit_hook = NULL;
	assert_true(rr.freed); /* the window was hit: the old frame was gone */
	assert_int_equal(got_n, 131072);
	assert_memory_equal(got, b, 131072);
	assert_int_equal(eng_release(f->e, ino), 0);
	check_read(f, ino, 0, b, m);
	check_read(f, ino, m, a + m, n - m);
	eng_forget(f->e, ino, 1);
	sem_destroy(&rr.go);
	free(a);
	free(b);
	free(got);
}

/* Two opens of a file rewritten in place (truncated to zero: its previous
 * version kept as a shadow), closed at the same time: the second release
 * to finish is the last and must drop the shadow.  Each release decided
 * "last" from the open count before the other's count went down, so both
 * could think another open remained: the shadow (an orphan holding the
 * whole previous version) stayed until the next mount. */
struct rel_arg {
	struct eng *e;
	uint64_t ino;
	pthread_barrier_t *bar;
	int rc;
};

static void *rel_thread(void *arg)
{
	struct rel_arg *r = arg;
	pthread_barrier_wait(r->bar);
	r->rc = eng_release(r->e, r->ino);
	return NULL;
}

static int orphan_count_cb(void *arg, uint64_t ino)
{
	(void)ino;
	(*(unsigned *)arg)++;
	return 0;
}

static unsigned orphans(struct fx *f)
{
	struct idx_txn *t;
	unsigned n = 0;
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_orphan_iter(t, orphan_count_cb, &n), 0);
	idx_txn_abort(t);
	return n;
}

static void t_release_shadow_race(void **state)
{
	struct fx *f = *state;
	size_t n = 256u << 10;
	uint8_t *a = malloc(n);
	struct eng_opts o;
	unsigned left = 0;

	series_open(f, &o, 0);
	uint64_t ino = new_file(f, 1, "ckpt");
	assert_int_equal(eng_release(f->e, ino), 0); /* eng_create's open */
	for (int round = 0; round < 100; round++) {
		struct eng_setattr sa = { .valid = ENG_SET_SIZE, .size = 0 };
		pthread_barrier_t bar;
		pthread_t th[2];
		struct rel_arg ra[2];

		fill_random(a, n, 60 + (uint64_t)round);
		assert_int_equal(eng_open(f->e, ino, O_RDWR), 0);
		assert_int_equal(eng_open(f->e, ino, O_RDWR), 0);
		assert_int_equal(eng_setattr(f->e, ino, &sa, NULL), 0); /* a shadow when not empty */
		write_all(f, ino, 0, a, n, 65536);
		pthread_barrier_init(&bar, NULL, 2);
		for (int i = 0; i < 2; i++) {
			ra[i] = (struct rel_arg){ f->e, ino, &bar, -1 };
			assert_int_equal(pthread_create(&th[i], NULL, rel_thread, &ra[i]), 0);
		}
		for (int i = 0; i < 2; i++) {
			pthread_join(th[i], NULL);
			assert_int_equal(ra[i].rc, 0);
		}
		pthread_barrier_destroy(&bar);
		left += orphans(f); /* no shadow once both are closed */
	}
	print_message("shadows left after the last close: %u of 100\n", left);
	assert_int_equal(left, 0);
	eng_forget(f->e, ino, 1);
	check_file(f, "ckpt", a, n);
	free(a);
}

/* Rebase replaces frames in the pack being appended to; once enough are
 * dead that pack is sealed, so the online gc frees them while the mount
 * goes on (the pack would otherwise stay open until it filled up). */
static void rb_gone_hook(struct eng *e)
{
	e->rb_hook = NULL;
	assert_int_equal(eng_unlink(e, 1, "ckpt00.safetensors"), 0);
}

/* A lazily coded chunk whose hinted reference is deleted while rebase
 * encodes the pair (the previous checkpoint removed meanwhile) still gets
 * its mix frame: before, the pair was dropped whole and the chunk stayed
 * at fast until a later mount's scan. */
static void t_rebase_ref_gone(void **state)
{
	struct fx *f = *state;
	enum { N = 1 << 20 };
	uint64_t seed = 5, turned = 0;
	float *w = weights_new(N, &seed);
	uint8_t *files[2];
	size_t len = 0;
	struct eng_opts o;
	struct idx_stats before, after;

	for (int v = 0; v < 2; v++) {
		char name[32];

		/* version 0 coded at mix, version 1 at fast with hints to it */
		assert_int_equal(eng_store_close(f->e), 0);
		series_opts(&o, 0);
		o.lazy = v ? ENG_LAZY_ALL : ENG_LAZY_OFF;
		assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
		files[v] = malloc(8 + 160 + 2 * N);
		len = make_st(files[v], w, N);
		snprintf(name, sizeof(name), "ckpt%02d.safetensors", v);
		uint64_t ino = new_file(f, 1, name);
		write_all(f, ino, 0, files[v], len, 1 << 20);
		assert_int_equal(eng_release(f->e, ino), 0);
		eng_forget(f->e, ino, 1);
		weights_step(w, N, 7, &seed);
	}
	free(w);
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	store_stats(f, &before);
	assert_true(before.level_raw[CODEC_LEVEL_FAST] >= len - 4096);
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	f->e->rb_hook = rb_gone_hook;
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	assert_null(f->e->rb_hook); /* it ran */
	free(files[0]);
	files[0] = NULL;
	series_check(f, 2, files, len);
	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	store_stats(f, &after);
	print_message("reference gone: %llu turned, fast %llu -> %llu bytes\n",
	              (unsigned long long)turned,
	              (unsigned long long)before.level_raw[CODEC_LEVEL_FAST],
	              (unsigned long long)after.level_raw[CODEC_LEVEL_FAST]);
	assert_int_equal(after.level_raw[CODEC_LEVEL_FAST], 0);
	assert_int_equal(after.ref_chunks, 0);
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	free(files[1]);
}

static void t_rebase_seal(void **state)
{
	struct fx *f = *state;
	enum { V = 12 };
	uint8_t *files[V];
	struct eng_opts o;
	uint64_t turned = 0;

	assert_int_equal(eng_store_close(f->e), 0);
	series_opts(&o, 0);
	o.max_pack_bytes = 32u << 20; /* seal after 8 MiB replaced */
	o.gc_interval_s = 1;
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	size_t len = series_write(f, V, files, NULL);
	/* Rebase writes about as many bytes again as it replaces: without the
	 * seal and the online gc the packs would end ~12 MB over this (with
	 * them ~2 MB: the newest version whole, the open pack).  The
	 * gc runs during the rebase too (each second), so compare the end
	 * with the packs before it, not with a size measured in between. */
	uint64_t before = du_alloc(f);
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	assert_true(turned > 0);
	uint64_t after = du_alloc(f), now = after;
	/* one sample judged: the gc goes on compacting (copies first, the old
	 * pack removed after), so a second sample may catch it in between */
	for (int i = 0; i < 300 && (now = du_alloc(f)) > before + (4u << 20); i++)
		usleep(200000); /* up to 60 s: a sanitizer build on a busy machine */
	print_message("rebase seal: packs %llu bytes before rebase, %llu after it, %llu after gc\n",
	              (unsigned long long)before, (unsigned long long)after, (unsigned long long)now);
	assert_true(now <= before + (4u << 20));
	series_check(f, V, files, len);
	for (int v = 0; v < V; v++)
		free(files[v]);
}

/* Cold sequential reads, as the kernel sends them: several requests in
 * flight at once (two threads taking alternate 128 KiB pieces in order).
 * Readahead must decode each chunk once: the count of a single reader
 * without readahead is the reference. */
struct rd_half {
	struct fx *f;
	uint64_t ino;
	uint8_t *got;
	size_t n;
	int which;
	int rc;
};

static void *read_half(void *arg)
{
	struct rd_half *h = arg;
	const size_t piece = 131072;
	for (size_t p = (size_t)h->which * piece; p < h->n; p += 2 * piece) {
		size_t k = h->n - p < piece ? h->n - p : piece;
		if (eng_read(h->f->e, h->ino, p, k, h->got + p) != (ssize_t)k)
			h->rc = -1;
	}
	return NULL;
}

static void reopen_readahead(struct fx *f, unsigned chunks)
{
	struct eng_opts o = fast_opts();

	o.cache_bytes = 64u << 20; /* the whole file: nothing evicted */
	o.workers = 2;
	o.readahead_chunks = chunks;
	reopen_with(f, &o);
}

static void t_readahead_once(void **state)
{
	struct fx *f = *state;
	const size_t n = 12u << 20;
	uint8_t *want = malloc(n), *got = malloc(n);
	fill_random(want, n, 77);
	for (size_t i = 0; i < n; i++)
		want[i] &= 0x1F; /* compressible: frames are decoded, not stored raw */
	/* such bytes are cut coarser by default (bytes_chunk): the store's
	 * chunks here, many for the readers to race for */
	struct eng_opts o = fast_opts();
	o.bytes_chunk = 0;
	reopen_with(f, &o);
	uint64_t ino = new_file(f, 1, "seq");
	write_all(f, ino, 0, want, n, 1u << 20);
	assert_int_equal(eng_fsync(f->e, ino, false), 0);

	reopen_readahead(f, 0);
	uint64_t before = eng_frames_loaded(f->e);
	check_read(f, ino, 0, want, n);
	uint64_t chunks = eng_frames_loaded(f->e) - before;
	assert_true(chunks >= n / (256u << 10)); /* at least one per max chunk size */

	for (int round = 0; round < 3; round++) {
		reopen_readahead(f, 16);
		before = eng_frames_loaded(f->e);
		struct rd_half h[2];
		pthread_t th[2];
		memset(got, 0, n);
		for (int i = 0; i < 2; i++) {
			h[i] = (struct rd_half){ .f = f, .ino = ino, .got = got, .n = n, .which = i };
			assert_int_equal(pthread_create(&th[i], NULL, read_half, &h[i]), 0);
		}
		for (int i = 0; i < 2; i++) {
			pthread_join(th[i], NULL);
			assert_int_equal(h[i].rc, 0);
		}
		assert_memory_equal(got, want, n);
		print_message("readahead: %llu chunks, %llu frames loaded by two readers\n",
		              (unsigned long long)chunks,
		              (unsigned long long)(eng_frames_loaded(f->e) - before));
		assert_int_equal(eng_frames_loaded(f->e) - before, chunks);
	}
	free(want);
	free(got);
}

/* The store's counters as recorded and as a walk counts them (engine
 * closed): they must agree. */
static void stats_consistent(struct fx *f, struct idx_stats *st)
{
	char ip[128], diff[256];
	struct idx *x;
	struct idx_txn *t;
	struct idx_stats counted;

	snprintf(ip, sizeof(ip), "%s/index", f->store);
	assert_int_equal(idx_open(ip, IDX_RDONLY, NULL, 0, &x), 0);
	assert_int_equal(idx_txn_begin(x, true, &t), 0);
	assert_int_equal(idx_stats_get(t, st), 0);
	assert_int_equal(idx_stats_count(t, &counted), 0);
	if (idx_stats_diff(st, &counted, diff, sizeof(diff)) != 0)
		fail_msg("stats differ from a walk: %s", diff);
	idx_txn_abort(t);
	idx_close(x);
}

/* copy_file_range maps the source's chunks: a whole file, unaligned
 * ranges into the middle of a file and past its end, a hole, buffered
 * bytes on either side, one file onto itself.  Nothing new is stored,
 * every copy outlives its source and a remount, and deleting all files
 * leaves no chunk behind (no reference leaked or lost). */
static void t_copy_range(void **state)
{
	struct fx *f = *state;
	size_t n = (6u << 20) + 4321, cn = 2 * n + 200000;
	uint8_t *src = malloc(n), *model = calloc(1, cn), *got = malloc(64);
	struct eng_attr at;
	struct idx_stats st;
	fill_random(src, n, 7);
	uint64_t a = new_file(f, 1, "a");
	write_all(f, a, 0, src, n, 1 << 20);
	assert_int_equal(eng_release(f->e, a), 0);
	uint64_t c = new_file(f, 1, "c");
	fill_random(model, 2 * n, 8);
	write_all(f, c, 0, model, 2 * n, 1 << 20);
	assert_int_equal(eng_release(f->e, c), 0);
	uint64_t packs = du_packs(f);

	/* the whole file, as cp asks: a huge length, until 0 */
	uint64_t b = new_file(f, 1, "b");
	assert_int_equal(eng_copy_range(f->e, a, 0, b, 0, 1ull << 62, 0), (ssize_t)n);
	assert_int_equal(eng_copy_range(f->e, a, n, b, n, 1ull << 62, 0), 0);
	assert_int_equal(eng_getattr(f->e, b, &at), 0);
	assert_int_equal(at.st.st_size, n);
	check_read(f, b, 0, src, n);
	/* unaligned into the middle of c, then past its end (a gap of zeros) */
	assert_int_equal(eng_copy_range(f->e, a, 12345, c, 777777, 3000001, 0), 3000001);
	memcpy(model + 777777, src + 12345, 3000001);
	assert_int_equal(eng_copy_range(f->e, a, n - 5000, c, 2 * n + 100000, 1 << 20, 0), 5000);
	memcpy(model + 2 * n + 100000, src + n - 5000, 5000);
	cn = 2 * n + 105000;
	assert_int_equal(eng_getattr(f->e, c, &at), 0);
	assert_int_equal(at.st.st_size, cn);
	check_read(f, c, 0, model, cn);
	assert_true(du_packs(f) - packs < 4096); /* no chunk was stored again */

	/* a hole stays a hole */
	uint64_t h = new_file(f, 1, "h"), h2 = new_file(f, 1, "h2");
	assert_int_equal(eng_write(f->e, h, 0, "x", 1), 1);
	assert_int_equal(eng_write(f->e, h, 3u << 20, "y", 1), 1);
	assert_int_equal(eng_release(f->e, h), 0);
	assert_int_equal(eng_copy_range(f->e, h, 0, h2, 0, 8u << 20, 0), (3 << 20) + 1);
	assert_int_equal(eng_lseek(f->e, h2, 1, SEEK_HOLE), 1);
	assert_int_equal(eng_lseek(f->e, h2, 1, SEEK_DATA), 3 << 20);
	assert_int_equal(eng_read(f->e, h2, (3u << 20) - 1, 8, got), 2);
	assert_memory_equal(got, "\0y", 2);

	/* buffered bytes: the source's are copied, the destination's are
	 * overwritten by the copy and a later write overwrites the copy */
	assert_int_equal(eng_write(f->e, a, 100, "AAAA", 4), 4);
	memcpy(src + 100, "AAAA", 4);
	assert_int_equal(eng_write(f->e, c, 50, "CCCCCCCC", 8), 8);
	assert_int_equal(eng_copy_range(f->e, a, 98, c, 48, 16, 0), 16);
	memcpy(model + 48, src + 98, 16);
	assert_int_equal(eng_write(f->e, c, 60, "D", 1), 1);
	model[60] = 'D';
	check_read(f, c, 0, model, cn);

	/* one file onto itself: apart is fine, overlapping is EINVAL */
	assert_int_equal(eng_copy_range(f->e, a, 0, a, n + 10, 70000, 0), 70000);
	assert_int_equal(eng_copy_range(f->e, a, 0, a, 100, 200, 0), -EINVAL);
	assert_int_equal(eng_copy_range(f->e, a, 0, b, 0, 10, 1), -EINVAL);
	assert_int_equal(eng_copy_range(f->e, a, 0, 1, 0, 10, 0), -EISDIR);
	uint8_t *a2 = calloc(1, n + 70010);
	memcpy(a2, src, n);
	memcpy(a2 + n + 10, src, 70000);
	check_read(f, a, 0, a2, n + 70010);
	assert_int_equal(eng_release(f->e, a), 0);
	assert_int_equal(eng_release(f->e, c), 0);

	/* the sources go; the copies stay, also after a remount */
	assert_int_equal(eng_unlink(f->e, 1, "a"), 0);
	assert_int_equal(eng_unlink(f->e, 1, "h"), 0);
	eng_forget(f->e, a, 1);
	eng_forget(f->e, h, 1);
	eng_forget(f->e, b, 1);
	eng_forget(f->e, c, 1);
	eng_forget(f->e, h2, 1);
	reopen(f);
	fill_random(src, n, 7); /* b was copied before the AAAA write */
	check_file(f, "b", src, n);
	check_file(f, "c", model, cn);
	assert_int_equal(eng_store_close(f->e), 0);
	stats_consistent(f, &st);
	assert_int_equal(st.files, 3);
	open_store(f, CODEC_LEVEL_FAST);
	assert_int_equal(eng_unlink(f->e, 1, "b"), 0);
	assert_int_equal(eng_unlink(f->e, 1, "c"), 0);
	assert_int_equal(eng_unlink(f->e, 1, "h2"), 0);
	assert_int_equal(eng_store_close(f->e), 0);
	stats_consistent(f, &st);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.chunks, 0);
	assert_int_equal(st.stored_bytes, 0);
	open_store(f, CODEC_LEVEL_FAST);
	free(a2);
	free(src);
	free(model);
	free(got);
}

/* copy_file_range(2) shortens the count to the source's end before it
 * checks for overlap (generic_copy_file_checks): a copy "until 0" of a
 * file's tail to past its end is not an overlap. */
static void t_copy_range_self_eof(void **state)
{
	struct fx *f = *state;
	uint8_t buf[1000];
	memset(buf, 'q', sizeof(buf));
	uint64_t a = new_file(f, 1, "a");
	assert_int_equal(eng_write(f->e, a, 0, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	/* [500, 1000) onto [2000, 2500): apart once clamped to the size */
	assert_int_equal(eng_copy_range(f->e, a, 500, a, 2000, 1ull << 62, 0), 500);
	assert_int_equal(eng_release(f->e, a), 0);
}

/* A stat while the file's close stores its bytes: the stat's snapshot of
 * the index is taken before the batch commits, then it waits for the
 * inode lock the close holds, and by then nothing is pending any more.
 * st_blocks must not come out 0 for a file with bytes (tar --sparse takes
 * that for one hole and archives zeros; the kernel caches it for 1 s). */
static struct {
	atomic_bool arm;
	sem_t held;
} sb;

static void sb_commit_hook(struct eng *e)
{
	(void)e;
	if (!atomic_exchange(&sb.arm, false))
		return;
	sem_post(&sb.held);
	usleep(300000); /* the stat takes its snapshot meanwhile */
}

static void t_blocks_during_close(void **state)
{
	struct fx *f = *state;
	size_t n = 5u << 20;
	uint8_t *a = malloc(n);
	struct eng_attr at;
	pthread_t th;

	fill_random(a, n, 90);
	uint64_t ino = new_file(f, 1, "ckpt");
	write_all(f, ino, 0, a, n, 1 << 20);
	sem_init(&sb.held, 0, 0);
	atomic_store(&sb.arm, true);
	f->e->commit_hook = sb_commit_hook;
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 1);
	struct rel_arg ra = { f->e, ino, &bar, -1 };
	assert_int_equal(pthread_create(&th, NULL, rel_thread, &ra), 0);
	sem_wait(&sb.held); /* the close holds the inode, its batch is about to commit */
	assert_int_equal(eng_getattr(f->e, ino, &at), 0);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&bar);
	f->e->commit_hook = NULL;
	assert_int_equal(ra.rc, 0);
	print_message("stat during the close: st_size %lld, st_blocks %lld\n",
	              (long long)at.st.st_size, (long long)at.st.st_blocks);
	assert_true(at.st.st_size == 0 || at.st.st_blocks > 0);
	sem_destroy(&sb.held);
	eng_forget(f->e, ino, 1);
	check_file(f, "ckpt", a, n);
	free(a);
}

/* --- failed write-back of a closed file ------------------------------------
 * A batch of inode fault_ino (FAULT_ALL: of every inode) fails as if the
 * store's disk were full (append_hook, before its frames are appended). */
#define FAULT_ALL UINT64_MAX
static atomic_uint fault_calls;

static int fault_hook(struct eng *e, uint64_t ino)
{
	uint64_t fi = atomic_load(&fault_ino);
	(void)e;
	if (fi == 0 || (fi != ino && fi != FAULT_ALL))
		return 0;
	atomic_fetch_add(&fault_calls, 1);
	return -ENOSPC;
}

/* Anonymous resident memory (the index's map is file-backed). */
static long rss_anon_kib(void)
{
	char line[128];
	long kib = 0;
	FILE *fp = fopen("/proc/self/status", "r");

	while (fp && fgets(line, sizeof(line), fp))
		if (sscanf(line, "RssAnon: %ld kB", &kib) == 1)
			break;
	if (fp)
		fclose(fp);
	return kib;
}

/* One byte written at each of 40000 random pages of a 20 GiB file under
 * dirty=1M, inflight=1M: each run took 64 KiB of buffer and ~14 KiB of
 * batch records that neither budget counted (anonymous RSS +160 MiB,
 * growing with the number of writes; an audit measured ~800 MiB at
 * 200000 through a mount).  Now a run takes a page, inflight= counts a
 * batch's memory, and a file of more than 1024 runs is queued whole
 * (+8.6 MiB). */
static void t_sparse_writes_bounded(void **state)
{
	struct fx *f = *state;
	enum { N = 40000 };
	struct eng_opts o;
	uint64_t seed = 17, ino, *offs = malloc(N * sizeof(*offs));
	long rss0, grown;
	uint8_t got;

	assert_non_null(offs);
	assert_int_equal(eng_store_close(f->e), 0);
	eng_opts_default(&o);
	o.level = CODEC_LEVEL_RAW;
	o.workers = 2;
	o.dirty_bytes = 1u << 20;
	o.inflight_bytes = 1u << 20;
	o.rebase = false;
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	ino = new_file(f, 1, "sparse");
	rss0 = rss_anon_kib();
	for (int i = 0; i < N; i++) {
		uint8_t v = (uint8_t)(i | 1);

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		offs[i] = (seed >> 33) % (5u << 20) * 4096; /* 20 GiB */
		assert_int_equal(eng_write(f->e, ino, offs[i], &v, 1), 1);
	}
	grown = rss_anon_kib() - rss0;
	print_message("%d one-byte writes far apart: RSS +%ld KiB\n", N, grown);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* the sanitizers' allocators hold freed memory back (quarantine)
	 * and shadow every byte: anonymous RSS says nothing of ours */
	(void)grown;
#else
	assert_true(grown < 48 * 1024);
#endif
	assert_int_equal(eng_release(f->e, ino), 0);
	for (int i = N - 100; i < N; i++) { /* the last write of each offset wins */
		int last = i;

		for (int k = i + 1; k < N; k++)
			if (offs[k] == offs[i])
				last = k;
		assert_int_equal(eng_read(f->e, ino, offs[i], 1, &got), 1);
		assert_int_equal(got, (uint8_t)(last | 1));
	}
	eng_forget(f->e, ino, 1);
	free(offs);
}

/* A safetensors file of nt bf16 tensors of 64 elements into out (cap
 * bytes), values from seed; returns its length. */
static size_t many_tensors_st(uint8_t *out, size_t cap, unsigned nt, uint64_t seed)
{
	size_t hl = 0, hcap = 64 + (size_t)nt * 80, len;
	char *h = malloc(hcap);

	assert_non_null(h);
	hl += (size_t)snprintf(h + hl, hcap - hl, "{");
	for (unsigned i = 0; i < nt; i++)
		hl += (size_t)snprintf(h + hl, hcap - hl,
		                       "%s\"t%u\":{\"dtype\":\"BF16\",\"shape\":[64],\"data_offsets\":[%u,%u]}",
		                       i ? "," : "", i, i * 128, i * 128 + 128);
	hl += (size_t)snprintf(h + hl, hcap - hl, "}");
	while (hl % 8)
		h[hl++] = ' ';
	len = 8 + hl + (size_t)nt * 128;
	assert_true(len <= cap);
	for (unsigned k = 0; k < 8; k++)
		out[k] = (uint8_t)((uint64_t)hl >> (8 * k));
	memcpy(out + 8, h, hl);
	fill_random(out + 8 + hl, (size_t)nt * 128, seed);
	free(h);
	return len;
}

/* The hints (tensor tables) of closed files are kept for their later
 * writes, but all together within hints_mem: 24 files of 3000 tensors
 * (~130 KiB of hints each) under 1 MiB keep some, not all; a file whose
 * hints went takes a later write all the same.  (Kept until the kernel
 * forgot the inode, 100 files of 100000 tensors held ~470 MiB.) */
static void t_hints_budget(void **state)
{
	struct fx *f = *state;
	enum { NF = 24, NT = 3000 };
	size_t cap = 8 + 64 + NT * 80 + NT * 128, len = 0;
	uint8_t *file = malloc(cap), patch[300];
	struct eng_opts o;
	struct eng_attr at;
	char name[32];
	uint64_t inos[NF];

	assert_non_null(file);
	assert_int_equal(eng_store_close(f->e), 0);
	eng_opts_default(&o);
	o.level = CODEC_LEVEL_FAST;
	o.hints_mem = 1u << 20;
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	for (int i = 0; i < NF; i++) {
		uint64_t ino;

		len = many_tensors_st(file, cap, NT, 100 + (uint64_t)i);
		snprintf(name, sizeof(name), "st%02d.safetensors", i);
		ino = new_file(f, 1, name);
		write_all(f, ino, 0, file, len, 1 << 20);
		assert_int_equal(eng_release(f->e, ino), 0);
		assert_true(atomic_load(&f->e->hints_mem) <= o.hints_mem);
		inos[i] = ino; /* still looked up (the kernel's inode cache) */
	}
	print_message("hints of %d closed files of %d tensors: %llu KiB kept (at most %llu)\n", NF,
	              NT, (unsigned long long)atomic_load(&f->e->hints_mem) >> 10,
	              (unsigned long long)o.hints_mem >> 10);
	assert_true(atomic_load(&f->e->hints_mem) > 0);
	/* the last file's hints went (the first ones filled the budget):
	 * it is patched in its middle and reads back right */
	memset(patch, 0x5a, sizeof(patch));
	assert_int_equal(eng_lookup(f->e, 1, name, &at), 0);
	assert_int_equal(eng_open(f->e, at.st.st_ino, O_RDWR), 0);
	assert_int_equal(eng_write(f->e, at.st.st_ino, len / 2, patch, sizeof(patch)), (ssize_t)sizeof(patch));
	assert_int_equal(eng_release(f->e, at.st.st_ino), 0);
	memcpy(file + len / 2, patch, sizeof(patch));
	eng_forget(f->e, at.st.st_ino, 1);
	for (int i = 0; i < NF; i++)
		eng_forget(f->e, inos[i], 1);
	assert_int_equal(atomic_load(&f->e->hints_mem), 0); /* gone with their inodes */
	reopen(f);
	check_file(f, name, file, len);
	free(file);
}

/* Times outside what int64 nanoseconds hold (1677 to 2262) are clamped
 * to its ends, not wrapped (touch -d 2300-01-01 showed 1715). */
static void t_times_clamped(void **state)
{
	struct fx *f = *state;
	struct eng_setattr sa = { .valid = ENG_SET_MTIME | ENG_SET_ATIME };
	struct eng_attr at;
	uint64_t ino = new_file(f, 1, "old");

	sa.mtime.tv_sec = 10413792000;  /* 2300-01-01 */
	sa.atime.tv_sec = -11676096000; /* 1600-01-01 */
	assert_int_equal(eng_setattr(f->e, ino, &sa, &at), 0);
	assert_int_equal(at.st.st_mtim.tv_sec, 9223372035);
	assert_int_equal(at.st.st_atim.tv_sec, -9223372035);
	assert_int_equal(eng_release(f->e, ino), 0);
	eng_forget(f->e, ino, 1);
	reopen(f);
	assert_int_equal(eng_lookup(f->e, 1, "old", &at), 0);
	assert_int_equal(at.st.st_mtim.tv_sec, 9223372035);
	assert_int_equal(at.st.st_atim.tv_sec, -9223372035);
	eng_forget(f->e, at.st.st_ino, 1);
}

/* A truncate whose write-back fails (the disk full) changes nothing:
 * bytes written before it past the new size, still buffered, stay (they
 * were dropped before the sync and read back as the old stored bytes). */
static void t_truncate_fails(void **state)
{
	struct fx *f = *state;
	size_t n = 1u << 20, w = 65536;
	uint8_t *a = malloc(n), *x = malloc(w), *got = malloc(w);
	struct eng_setattr sa = { .valid = ENG_SET_SIZE, .size = 32768 };
	struct eng_attr at;
	uint64_t ino;

	fill_random(a, n, 5);
	memset(x, 0xab, w);
	put_file(f, "t", a, n);
	assert_int_equal(eng_lookup(f->e, 1, "t", &at), 0);
	ino = at.st.st_ino;
	assert_int_equal(eng_open(f->e, ino, O_RDWR), 0);
	assert_int_equal(eng_write(f->e, ino, 0, x, w), (ssize_t)w); /* buffered */
	f->e->append_hook = fault_hook;
	atomic_store(&fault_ino, ino);
	assert_int_equal(eng_setattr(f->e, ino, &sa, NULL), -ENOSPC);
	assert_int_equal(eng_getattr(f->e, ino, &at), 0);
	assert_int_equal(at.st.st_size, (off_t)n);
	assert_int_equal(eng_read(f->e, ino, 0, w, got), (ssize_t)w);
	assert_memory_equal(got, x, w);
	atomic_store(&fault_ino, 0); /* space is back */
	f->e->append_hook = NULL;
	assert_int_equal(eng_release(f->e, ino), 0);
	eng_forget(f->e, ino, 1);
	memcpy(a, x, w);
	reopen(f);
	check_file(f, "t", a, n);
	free(a);
	free(x);
	free(got);
}

/* A new file NAME of n bytes of a whose write-back fails at its close:
 * the close reports ENOSPC, the bytes stay buffered. */
static uint64_t failed_file(struct fx *f, const char *name, const uint8_t *a, size_t n)
{
	f->e->append_hook = fault_hook;
	uint64_t ino = new_file(f, 1, name);
	if (atomic_load(&fault_ino) != FAULT_ALL)
		atomic_store(&fault_ino, ino);
	write_all(f, ino, 0, a, n, 1 << 20);
	assert_int_equal(eng_release(f->e, ino), -ENOSPC);
	assert_true(atomic_load(&f->e->dirty_total) >= n);
	return ino;
}

/* Buffered bytes of the engine, polled for up to ms until none are left
 * and nothing is queued or being committed. */
static uint64_t dirty_after(struct fx *f, unsigned ms)
{
	struct eng *e = f->e;
	for (unsigned t = 0; t < ms; t += 100) {
		/* both under plock: a batch is cut (dirty_total drops) and
		 * queued in one critical section */
		pthread_mutex_lock(&e->plock);
		bool busy = e->qhead || e->committing || atomic_load(&e->dirty_total) > 0;
		pthread_mutex_unlock(&e->plock);
		if (!busy)
			break;
		usleep(100000);
	}
	return atomic_load(&e->dirty_total);
}

/* The bytes of a file whose close failed (full disk) are stored once the
 * space is back, without a further write, close or unmount; its error was
 * reported once, by the close. */
static void t_wb_retry(void **state)
{
	struct fx *f = *state;
	size_t n = 3u << 20;
	uint8_t *a = malloc(n), *got = malloc(n);
	struct idx_txn *t;

	fill_random(a, n, 70);
	uint64_t ino = failed_file(f, "ckpt", a, n);
	atomic_store(&fault_ino, 0); /* space is back (another file deleted, gc) */
	uint64_t left = dirty_after(f, 10000);
	print_message("failed close: %llu of %zu bytes still buffered 10 s after the space came back\n",
	              (unsigned long long)left, n);
	assert_int_equal(left, 0);
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(eng_read_stored(f->e, t, ino, 0, n, got), 0);
	idx_txn_abort(t);
	assert_memory_equal(got, a, n); /* in the index, not only in memory */
	assert_int_equal(eng_fsync(f->e, ino, false), 0); /* reported once, at the close */
	eng_forget(f->e, ino, 1);
	check_file(f, "ckpt", a, n);
	free(a);
	free(got);
}

/* A file whose close failed is deleted (no name, no open, no lookup): its
 * buffered bytes go at once, with the inode; nothing of it is written
 * later (not even at the unmount). */
static void t_wb_parked_unlink(void **state)
{
	struct fx *f = *state;
	size_t n = 3u << 20;
	uint8_t *a = malloc(n);
	struct idx_txn *t;
	struct idx_inode in;

	fill_random(a, n, 71);
	uint64_t ino = failed_file(f, "ckpt", a, n);
	assert_int_equal(eng_unlink(f->e, 1, "ckpt"), 0);
	eng_forget(f->e, ino, 1);
	unsigned calls = atomic_load(&fault_calls);
	uint64_t left = atomic_load(&f->e->dirty_total);
	print_message("deleted after a failed close: %llu bytes still buffered\n",
	              (unsigned long long)left);
	assert_int_equal(left, 0);
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_inode_get(t, ino, &in), -ENOENT); /* not an orphan until the next mount */
	idx_txn_abort(t);
	reopen(f); /* the unmount stores nothing of it (the fault still holds) */
	assert_int_equal(atomic_load(&fault_calls), calls);
	free(a);
}

/* The deletion of an unlinked file fails (the index cannot grow on a full
 * disk): it is tried again, after 1 s and then at doubling delays, until
 * it works; its bytes are freed without a remount. */
static atomic_int reap_fails;

static int reap_fail_hook(struct eng *e)
{
	(void)e;
	return atomic_fetch_sub(&reap_fails, 1) > 0 ? -ENOSPC : 0;
}

/* Polls (every 100 ms, at most tries times) until inode ino has no
 * record: the last idx_inode_get result (-ENOENT once it is gone). */
static int wait_inode_gone(struct fx *f, uint64_t ino, int tries)
{
	struct idx_txn *t;
	struct idx_inode in;
	int rc = 0;

	for (int i = 0; i < tries; i++) {
		assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
		rc = idx_inode_get(t, ino, &in);
		idx_txn_abort(t);
		if (rc == -ENOENT)
			break;
		usleep(100000);
	}
	return rc;
}

static void t_reap_retry(void **state)
{
	struct fx *f = *state;
	size_t n = 1u << 20;
	uint8_t *a = malloc(n);
	struct idx_stats st;
	struct idx_txn *t;
	int rc = 0;

	fill_random(a, n, 75);
	put_file(f, "gone", a, n);
	struct eng_attr at;
	assert_int_equal(eng_lookup(f->e, 1, "gone", &at), 0);
	uint64_t ino = at.st.st_ino;
	atomic_store(&reap_fails, 2);
	f->e->reap_hook = reap_fail_hook;
	assert_int_equal(eng_unlink(f->e, 1, "gone"), 0);
	eng_forget(f->e, ino, 1); /* the last reference: deleted (queued), and fails */
	int64_t t0 = eng_mono_ns();
	rc = wait_inode_gone(f, ino, 100); /* 1 s, then 2 s */
	print_message("a deletion failing twice: done after %.1f s\n",
	              (double)(eng_mono_ns() - t0) / 1e9);
	assert_int_equal(rc, -ENOENT); /* before: an orphan until the next mount */
	assert_int_equal(atomic_load(&reap_fails), -1);
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_stats_get(t, &st), 0);
	idx_txn_abort(t);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.stored_bytes, 0);
	f->e->reap_hook = NULL;
	free(a);
}

/* The tests of work in steps: n pieces of 4 KiB, random from seed, the
 * i-th written at i * 64 KiB of ino (holes between): n extents. */
enum { PIECE = 4096 };
static const uint64_t piece_stride = 65536;

static void pieces_fill(uint8_t (*pieces)[PIECE], unsigned n, uint64_t seed)
{
	for (unsigned i = 0; i < n; i++)
		fill_random(pieces[i], PIECE, seed + i);
}

static void pieces_write(struct fx *f, uint64_t ino, uint8_t (*pieces)[PIECE], unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		write_all(f, ino, i * piece_stride, pieces[i], PIECE, PIECE);
}

/* A deleted file with many extents goes in steps of reap_step extents,
 * each its own transaction (one for a million extents kept ~300 MiB of
 * LMDB pages dirty); the steps done stay done when a later one fails (the
 * orphan keeps what is left) and the next mount finishes it.  A small
 * file's deletion stays one transaction. */
static atomic_int step_calls, step_fail_from;

static int step_hook(struct eng *e)
{
	(void)e;
	return atomic_fetch_add(&step_calls, 1) >= atomic_load(&step_fail_from) ? -ENOSPC : 0;
}

static int extents_of(struct fx *f, uint64_t ino)
{
	struct idx_txn *t;
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	int n = idx_extent_count(t, ino, 100000);
	idx_txn_abort(t);
	return n;
}

static void t_delete_in_steps(void **state)
{
	struct fx *f = *state;
	enum { PIECES = 600, STEP = 64 };
	static uint8_t pieces[PIECES][PIECE];
	const uint8_t *piece = pieces[PIECES - 1]; /* the last written */
	struct idx_stats st;
	struct idx_txn *t;
	uint64_t ino;
	int n = 0;

	ino = new_file(f, 1, "big");
	pieces_fill(pieces, PIECES, 1000);
	pieces_write(f, ino, pieces, PIECES);
	assert_int_equal(eng_release(f->e, ino), 0);
	assert_int_equal(eng_fsyncdir(f->e, 1), 0);
	int before = extents_of(f, ino);
	assert_true(before >= PIECES);
	/* steps 1 and 2 commit, every later call fails */
	f->e->reap_step = STEP;
	atomic_store(&step_calls, 0);
	atomic_store(&step_fail_from, 2);
	f->e->reap_hook = step_hook;
	assert_int_equal(eng_unlink(f->e, 1, "big"), 0);
	eng_forget(f->e, ino, 1); /* the last reference */
	for (int i = 0; i < 100 && atomic_load(&step_calls) < 3; i++)
		usleep(20000);
	n = extents_of(f, ino);
	print_message("deleting %d extents in steps of %d, a step failing: %d left\n", before, STEP,
	              n);
	assert_int_equal(n, before - 2 * STEP);
	f->e->reap_hook = NULL;
	reopen(f); /* the mount deletes the orphan, in steps */
	assert_int_equal(wait_inode_gone(f, ino, 10), -ENOENT);
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_stats_get(t, &st), 0);
	idx_txn_abort(t);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.mapped_bytes, 0);
	assert_int_equal(st.chunks, 0);
	/* a large file rewritten in place (O_TRUNC while open, level mix
	 * with series references: its previous version is kept as a shadow
	 * inode until the close): the shadow goes in steps too */
	{
		struct eng_opts o;
		struct eng_attr a;

		series_open(f, &o, 0);
		ino = new_file(f, 1, "big2");
		pieces_fill(pieces, PIECES, 5000);
		pieces_write(f, ino, pieces, PIECES);
		assert_int_equal(eng_release(f->e, ino), 0);
		assert_int_equal(eng_fsyncdir(f->e, 1), 0);
		eng_forget(f->e, ino, 1);
		assert_int_equal(eng_lookup(f->e, 1, "big2", &a), 0);
		assert_int_equal(eng_open(f->e, a.st.st_ino, O_RDWR | O_TRUNC), 0);
		write_all(f, a.st.st_ino, 0, piece, PIECE, PIECE);
		f->e->reap_step = STEP;
		atomic_store(&step_calls, 0);
		atomic_store(&step_fail_from, 1000);
		f->e->reap_hook = step_hook;
		assert_int_equal(eng_release(f->e, a.st.st_ino), 0);
		print_message("a shadow of %d extents deleted in %d steps\n", PIECES,
		              atomic_load(&step_calls));
		assert_true(atomic_load(&step_calls) >= PIECES / STEP - 1);
		f->e->reap_hook = NULL;
		check_read(f, a.st.st_ino, 0, piece, PIECE);
		eng_forget(f->e, a.st.st_ino, 1);
		assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
		assert_int_equal(idx_stats_get(t, &st), 0);
		idx_txn_abort(t);
		assert_int_equal(st.mapped_bytes, PIECE);
		assert_int_equal(eng_unlink(f->e, 1, "big2"), 0);
		/* gone before the count below starts (its deletion's batch
		 * called the hook too: 2 != 1 under ASan) */
		assert_int_equal(wait_inode_gone(f, a.st.st_ino, 50), -ENOENT);
	}
	/* a small file: one transaction, as before */
	ino = new_file(f, 1, "small");
	write_all(f, ino, 0, piece, PIECE, PIECE);
	assert_int_equal(eng_release(f->e, ino), 0);
	assert_int_equal(eng_fsyncdir(f->e, 1), 0);
	f->e->reap_step = STEP;
	atomic_store(&step_calls, 0);
	atomic_store(&step_fail_from, 1000);
	f->e->reap_hook = step_hook;
	assert_int_equal(eng_unlink(f->e, 1, "small"), 0);
	eng_forget(f->e, ino, 1);
	assert_int_equal(wait_inode_gone(f, ino, 50), -ENOENT);
	assert_int_equal(atomic_load(&step_calls), 1);
	f->e->reap_hook = NULL;
}

/* Close the store, fsck must find nothing, open it again with o. */
static void fsck_reopen(struct fx *f, const struct eng_opts *o)
{
	struct gc_fsck_opts fo = { .threads = 2 };
	struct gc_fsck_stats fs;

	assert_int_equal(eng_store_close(f->e), 0);
	f->e = NULL;
	memset(&fs, 0, sizeof(fs));
	assert_int_equal(gc_fsck(f->store, &fo, &fs), 0);
	assert_int_equal(eng_store_open(f->store, o, &f->e), 0);
}

static uint64_t mapped_bytes(struct fx *f)
{
	struct idx_stats st;
	struct idx_txn *t;
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_stats_get(t, &st), 0);
	idx_txn_abort(t);
	return st.mapped_bytes;
}

static uint64_t size_of(struct fx *f, uint64_t ino)
{
	struct eng_attr a;
	assert_int_equal(eng_getattr(f->e, ino, &a), 0);
	return (uint64_t)a.st.st_size;
}

/* A truncate or a hole punched over many extents goes in steps of
 * reap_step extents, each its own transaction, from the end (before, one
 * transaction: 300k extents kept 40 MB dirty and every commit waiting for
 * ~3 s).  A step that fails leaves the file consistent, partly done: a
 * truncate at the size its steps reached, every byte below it as it was.
 * An O_TRUNC rewrite's previous version (the shadow) gets all of them. */
static void t_truncate_in_steps(void **state)
{
	struct fx *f = *state;
	enum { PIECES = 600, STEP = 64 };
	const uint64_t stride = piece_stride, cut = 100 * 65536 + 1000;
	static uint8_t pieces[PIECES][PIECE];
	struct eng_setattr sa = { .valid = ENG_SET_SIZE };
	struct eng_opts o;
	uint64_t ino;

	pieces_fill(pieces, PIECES, 7000);
	series_open(f, &o, 0);
	ino = new_file(f, 1, "big");
	pieces_write(f, ino, pieces, PIECES);
	assert_int_equal(eng_fsync(f->e, ino, false), 0);
	assert_int_equal(extents_of(f, ino), PIECES);
	f->e->reap_step = STEP;
	f->e->reap_hook = step_hook;
	/* steps 1 and 2 commit, the third fails */
	atomic_store(&step_calls, 0);
	atomic_store(&step_fail_from, 2);
	sa.size = cut;
	assert_int_equal(eng_setattr(f->e, ino, &sa, NULL), -ENOSPC);
	print_message("truncate of %d extents, its third step failing: size %llu, %d extents\n",
	              PIECES, (unsigned long long)size_of(f, ino), extents_of(f, ino));
	assert_int_equal(size_of(f, ino), (PIECES - 2 * STEP) * stride);
	assert_int_equal(extents_of(f, ino), PIECES - 2 * STEP);
	assert_int_equal(mapped_bytes(f), (PIECES - 2 * STEP) * PIECE);
	check_read(f, ino, (PIECES - 2 * STEP - 1) * stride, pieces[PIECES - 2 * STEP - 1], PIECE);
	/* again, nothing failing: the rest */
	atomic_store(&step_calls, 0);
	atomic_store(&step_fail_from, 1000);
	assert_int_equal(eng_setattr(f->e, ino, &sa, NULL), 0);
	print_message("then the rest in %d steps\n", atomic_load(&step_calls));
	assert_true(atomic_load(&step_calls) >= (PIECES - 2 * STEP - 101) / STEP - 1);
	assert_int_equal(size_of(f, ino), cut);
	assert_int_equal(extents_of(f, ino), 101);
	assert_int_equal(mapped_bytes(f), 100 * PIECE + 1000);
	for (unsigned i = 0; i < 100; i += 33)
		check_read(f, ino, i * stride, pieces[i], PIECE);
	check_read(f, ino, 100 * stride, pieces[100], 1000);
	/* a hole over pieces 10..89 (and into the 90th), from its end */
	atomic_store(&step_calls, 0);
	assert_int_equal(eng_fallocate(f->e, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	                               10 * stride, 80 * stride + 100), 0);
	print_message("a hole over 81 extents in %d steps of %d\n", atomic_load(&step_calls), STEP);
	assert_int_equal(atomic_load(&step_calls), 1);
	assert_int_equal(extents_of(f, ino), 101 - 80);
	assert_int_equal(size_of(f, ino), cut);
	check_read(f, ino, 9 * stride, pieces[9], PIECE);
	check_read(f, ino, 90 * stride + 100, pieces[90] + 100, PIECE - 100);
	{
		static const uint8_t zero[PIECE];
		check_read(f, ino, 50 * stride, zero, PIECE);
	}
	assert_int_equal(eng_release(f->e, ino), 0);
	eng_forget(f->e, ino, 1);
	assert_int_equal(eng_unlink(f->e, 1, "big"), 0);

	/* open O_TRUNC of a large file for its rewrite: every extent ends in
	 * the shadow, the one of the steps and the last transaction */
	f->e->reap_hook = NULL;
	ino = new_file(f, 1, "big2");
	pieces_write(f, ino, pieces, PIECES);
	assert_int_equal(eng_release(f->e, ino), 0);
	f->e->reap_hook = step_hook;
	atomic_store(&step_calls, 0);
	assert_int_equal(eng_open(f->e, ino, O_RDWR | O_TRUNC), 0);
	{
		struct einode *ei = ein_get(f->e, ino, false, 0, 0);
		assert_non_null(ei);
		uint64_t sh = ei->shadow_ino;
		ein_put(f->e, ei, 0, 0);
		print_message("O_TRUNC of %d extents: %d steps, shadow %llu with %d extents\n",
		              PIECES, atomic_load(&step_calls), (unsigned long long)sh,
		              sh ? extents_of(f, sh) : -1);
		assert_true(atomic_load(&step_calls) >= PIECES / STEP - 1);
		assert_true(sh != 0);
		assert_int_equal(extents_of(f, sh), PIECES);
		assert_int_equal(extents_of(f, ino), 0);
		assert_int_equal(size_of(f, ino), 0);
		assert_int_equal(orphans(f), 1);
		assert_int_equal(mapped_bytes(f), PIECES * PIECE);
	}
	write_all(f, ino, 0, pieces[0], PIECE, PIECE);
	assert_int_equal(eng_release(f->e, ino), 0); /* drops the shadow */
	f->e->reap_hook = NULL;
	assert_int_equal(orphans(f), 0);
	assert_int_equal(mapped_bytes(f), PIECE);
	check_read(f, ino, 0, pieces[0], PIECE);
	eng_forget(f->e, ino, 1);
	fsck_reopen(f, &o);
}


/* From an audit (session 26): a truncate whose third step fails while
 * the file has bytes buffered above the new size.  wb_truncate took those
 * bytes out, the steps lowered the record's size; the failure put them all
 * back (wb_truncate_end), and their commit regrew the file to its old size
 * with every piece the two steps punched read as zeros.  Now only those
 * below the size the steps reached go back: the file is a prefix. */
static void t_truncate_fail_buffered(void **state)
{
	struct fx *f = *state;
	enum { PIECES = 600, STEP = 64 };
	const uint64_t stride = piece_stride;
	static uint8_t pieces[PIECES][PIECE], fresh[PIECE];
	struct eng_setattr sa = { .valid = ENG_SET_SIZE, .size = 100 * 65536 };
	struct eng_opts o;
	struct eng_attr a;
	uint64_t ino;

	pieces_fill(pieces, PIECES, 9000);
	fill_random(fresh, PIECE, 9999);
	series_open(f, &o, 0);
	ino = new_file(f, 1, "big");
	pieces_write(f, ino, pieces, PIECES);
	assert_int_equal(eng_fsync(f->e, ino, false), 0);
	/* the last piece rewritten, still buffered */
	write_all(f, ino, (PIECES - 1) * stride, fresh, PIECE, PIECE);
	f->e->reap_step = STEP;
	f->e->reap_hook = step_hook;
	atomic_store(&step_calls, 0);
	atomic_store(&step_fail_from, 2);
	assert_int_equal(eng_setattr(f->e, ino, &sa, NULL), -ENOSPC);
	f->e->reap_hook = NULL;
	assert_int_equal(eng_getattr(f->e, ino, &a), 0);
	print_message("after the failed truncate: st_size %llu (record %llu), %d extents\n",
	              (unsigned long long)a.st.st_size, (unsigned long long)size_of(f, ino),
	              extents_of(f, ino));
	assert_int_equal(eng_fsync(f->e, ino, false), 0);
	assert_int_equal(eng_getattr(f->e, ino, &a), 0);
	print_message("after fsync: st_size %llu, %d extents\n", (unsigned long long)a.st.st_size,
	              extents_of(f, ino));
	/* a prefix: the size the two steps reached, nothing below it lost */
	assert_int_equal(a.st.st_size, (PIECES - 2 * STEP) * stride);
	check_read(f, ino, (PIECES - 2 * STEP - 1) * stride, pieces[PIECES - 2 * STEP - 1], PIECE);
	assert_int_equal(extents_of(f, ino), PIECES - 2 * STEP);
	eng_release(f->e, ino);
	eng_forget(f->e, ino, 1);
}

/* From an audit (session 26): an O_TRUNC whose third step fails while another handle holds
 * the file open; a second O_TRUNC then succeeds; the last close must leave
 * no shadow (orphan), every byte mapped by the file alone, fsck clean. */
static void t_otrunc_fail_shadow(void **state)
{
	struct fx *f = *state;
	enum { PIECES = 600, STEP = 64 };
	const uint64_t stride = piece_stride;
	static uint8_t pieces[PIECES][PIECE];
	struct eng_opts o;
	uint64_t ino, sh1, sh2;

	pieces_fill(pieces, PIECES, 5000);
	series_open(f, &o, 0);
	ino = new_file(f, 1, "big"); /* open once (the other handle) */
	pieces_write(f, ino, pieces, PIECES);
	assert_int_equal(eng_fsync(f->e, ino, false), 0);
	f->e->reap_step = STEP;
	f->e->reap_hook = step_hook;
	atomic_store(&step_calls, 0);
	atomic_store(&step_fail_from, 2);
	assert_int_equal(eng_open(f->e, ino, O_RDWR | O_TRUNC), -ENOSPC);
	{
		struct einode *ei = ein_get(f->e, ino, false, 0, 0);
		sh1 = ei->shadow_ino;
		ein_put(f->e, ei, 0, 0);
	}
	print_message("failed O_TRUNC: size %llu, shadow %llu (%d extents), orphans %u\n",
	              (unsigned long long)size_of(f, ino), (unsigned long long)sh1,
	              sh1 ? extents_of(f, sh1) : -1, orphans(f));
	check_read(f, ino, (PIECES - 2 * STEP - 1) * stride, pieces[PIECES - 2 * STEP - 1], PIECE);
	atomic_store(&step_fail_from, 100000);
	assert_int_equal(eng_open(f->e, ino, O_RDWR | O_TRUNC), 0);
	{
		struct einode *ei = ein_get(f->e, ino, false, 0, 0);
		sh2 = ei->shadow_ino;
		ein_put(f->e, ei, 0, 0);
	}
	print_message("second O_TRUNC: shadow %llu (%d extents), orphans %u\n",
	              (unsigned long long)sh2, sh2 ? extents_of(f, sh2) : -1, orphans(f));
	write_all(f, ino, 0, pieces[0], PIECE, PIECE);
	assert_int_equal(eng_release(f->e, ino), 0);
	assert_int_equal(eng_release(f->e, ino), 0);
	f->e->reap_hook = NULL;
	print_message("after the last close: orphans %u, mapped %llu\n", orphans(f),
	              (unsigned long long)mapped_bytes(f));
	assert_int_equal(orphans(f), 0);
	assert_int_equal(mapped_bytes(f), PIECE);
	eng_forget(f->e, ino, 1);
	fsck_reopen(f, &o);
}

/* From an audit (session 26): rb_charges resumes from ch_from, which was
 * not reset when new re-encoding made charges stale again (ch_mark resets
 * it now).  State of an idle sweep cut short
 * by a writer (rb_charges returned 0: ch_from = the next inode, ch_stale
 * set again), then a rebase turning an older file, below ch_from: the next
 * sweep goes from ch_from to the end, says "done", and the older file's
 * charge stays stale for good (until a remount). */
static void t_charges_resume(void **state)
{
	struct fx *f = *state;
	enum { N = 1 << 18, V = 2 };
	struct eng_opts o;
	struct eng_attr a;
	uint64_t seed = 77, turned = 0, z;
	float *w = weights_new(N, &seed);
	uint8_t *file, small[100] = { 1 };

	series_open(f, &o, 0);
	for (int v = 0; v < V; v++) {
		put_version(f, v, &file, w, N, &seed);
		free(file);
	}
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	for (int v = 0; v < V; v++) {
		struct charge c = ckpt_charge(f, v);
		assert_int_equal(c.stored, c.now);
	}
	/* a file made after v1: where the interrupted sweep stopped */
	put_file(f, "z", small, sizeof(small));
	assert_int_equal(eng_lookup(f->e, 1, "z", &a), 0);
	z = a.st.st_ino;
	eng_forget(f->e, z, 1);
	atomic_store(&f->e->ch_from, z);
	atomic_store(&f->e->ch_stale, true);
	/* v2: rebase turns v1 (below z) into a delta against it */
	put_version(f, V, &file, w, N, &seed);
	free(file);
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	assert_true(turned > 0);
	int stale = 0;
	for (int v = 0; v <= V; v++) {
		struct charge c = ckpt_charge(f, v);
		print_message("v%d: stored %llu, its chunks take %llu\n", v,
		              (unsigned long long)c.stored, (unsigned long long)c.now);
		stale += c.stored != c.now;
	}
	print_message("charges stale after the sweep said done: %d (ch_stale %d)\n", stale,
	              (int)atomic_load(&f->e->ch_stale));
	assert_int_equal(stale, 0);
	free(w);
}

/* From an audit (session 26): the sweep's write transactions were lazy
 * without waking the nsync thread (only eng_wtxn_begin_ns does, which
 * they use now): on an idle store the index stayed unsynced, its pin on
 * the last synced commit held (LMDB reuses no page freed since), long
 * after ns_sync_ms, until some other synced commit or the unmount.
 * Empty files whose charge is off by one, a sweep, then 3 x ns_sync_ms
 * of idle. */
static void t_sweep_synced(void **state)
{
	struct fx *f = *state;
	enum { FILES = 600 };
	struct eng_opts o;
	char name[32];
	uint64_t first = 0, turned;

	series_open(f, &o, 0);
	for (unsigned i = 0; i < FILES; i++) {
		snprintf(name, sizeof(name), "f%06u", i);
		uint64_t ino = new_file(f, 1, name);
		if (!first)
			first = ino;
		eng_release(f->e, ino);
		eng_forget(f->e, ino, 1);
	}
	{
		struct idx_txn *t;
		assert_int_equal(eng_wtxn_begin(f->e, &t), 0);
		for (uint64_t k = 0; k < FILES; k++) {
			struct idx_inode in;
			assert_int_equal(idx_inode_get(t, first + k, &in), 0);
			in.stored_bytes = 1;
			assert_int_equal(idx_inode_put(t, &in), 0);
		}
		assert_int_equal(eng_wtxn_end(f->e, t, 0), 0);
	}
	assert_int_equal(eng_fsyncdir(f->e, 1), 0);
	usleep(3 * o.ns_sync_ms * 1000);
	assert_int_equal(idx_unsynced_since(f->e->idx), 0);
	atomic_store(&f->e->ch_stale, true);
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	usleep(3 * o.ns_sync_ms * 1000);
	print_message("ns_sync_ms %u; %u ms after the sweep: unsynced since %lld ms ago\n",
	              o.ns_sync_ms, 3 * o.ns_sync_ms,
	              idx_unsynced_since(f->e->idx)
	                      ? (long long)((eng_mono_ns() - idx_unsynced_since(f->e->idx)) / 1000000)
	                      : 0ll);
	assert_int_equal(idx_unsynced_since(f->e->idx), 0);
}
/* One unlinked inode whose records cannot be read (a damaged index: its
 * deletion fails with EIO at every attempt) must not hold back the
 * deletion of the others queued with it: before, the failed batch was
 * queued again whole, every later deletion joined it, and none was done
 * until the unmount (the files' bytes stayed live). */
static void t_reap_retry_damaged(void **state)
{
	struct fx *f = *state;
	size_t n = 256u << 10;
	uint8_t *a = malloc(n), junk[5] = { 1, 2, 3, 4, 5 }, k[8];
	struct idx_txn *t;
	struct eng_attr at;
	uint64_t bad, good;
	int rc = 0;

	fill_random(a, n, 76);
	put_file(f, "bad", a, n);
	fill_random(a, n, 77);
	put_file(f, "good", a, n);
	assert_int_equal(eng_lookup(f->e, 1, "bad", &at), 0);
	bad = at.st.st_ino;
	assert_int_equal(eng_lookup(f->e, 1, "good", &at), 0);
	good = at.st.st_ino;
	assert_int_equal(eng_unlink(f->e, 1, "bad"), 0);
	assert_int_equal(eng_unlink(f->e, 1, "good"), 0);
	/* bad's record damaged while it is an orphan still in use */
	for (int i = 0; i < 8; i++)
		k[i] = (uint8_t)(bad >> (56 - 8 * i));
	assert_int_equal(eng_wtxn_begin(f->e, &t), 0);
	assert_int_equal(idx_raw_put(t, "inodes", k, sizeof(k), junk, sizeof(junk)), 0);
	assert_int_equal(eng_wtxn_end(f->e, t, 0), 0);
	eng_forget(f->e, bad, 1);  /* its deletion fails (EIO) */
	eng_forget(f->e, good, 1); /* queued behind it */
	int64_t t0 = eng_mono_ns();
	rc = wait_inode_gone(f, good, 40); /* 4 s: before, retried with bad at 1 s and 3 s */
	print_message("deletion behind a damaged inode: %s after %.1f s\n",
	              rc == -ENOENT ? "done" : "not done", (double)(eng_mono_ns() - t0) / 1e9);
	assert_int_equal(rc, -ENOENT);
	free(a);
}

/* While the disk stays full, the bytes of failed closes do not pile up
 * past the dirty budget (8 MiB here): new writes fail with ENOSPC once
 * they fill it, and take bytes again once the retry stored them. */
static void t_wb_parked_budget(void **state)
{
	struct fx *f = *state;
	size_t n = 1u << 20;
	uint8_t *a = malloc(n);
	uint64_t most = 0;
	unsigned refused = 0;
	char name[16];

	fill_random(a, n, 74);
	atomic_store(&fault_ino, FAULT_ALL);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		f->e->append_hook = fault_hook;
		uint64_t ino = new_file(f, 1, name);
		ssize_t w = eng_write(f->e, ino, 0, a, n);
		if (w == (ssize_t)n) {
			assert_int_equal(eng_release(f->e, ino), -ENOSPC);
		} else {
			assert_int_equal(w, -ENOSPC);
			assert_int_equal(eng_release(f->e, ino), 0);
			refused++;
		}
		eng_forget(f->e, ino, 1);
		if (atomic_load(&f->e->dirty_total) > most)
			most = atomic_load(&f->e->dirty_total);
	}
	print_message("disk full: 20 files of 1 MiB, %u writes refused, at most %llu bytes buffered\n",
	              refused, (unsigned long long)most);
	assert_true(most <= f->e->o.dirty_bytes + n);
	atomic_store(&fault_ino, 0);
	assert_int_equal(dirty_after(f, 10000), 0);
	put_file(f, "after", a, n);
	check_file(f, "after", a, n);
	free(a);
}

/* Level-fast chunks in the store (lazy coding's, waiting for rebase). */
static uint64_t fast_raw(struct fx *f)
{
	struct idx_txn *t;
	struct idx_stats st;
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_stats_get(t, &st), 0);
	idx_txn_abort(t);
	return st.level_raw[CODEC_LEVEL_FAST];
}

/* While the bytes of a failed close wait for space (the fault holds), the
 * online gc frees a deleted file's bytes and rebase recompresses a lazily
 * coded file: background work is not held back by them. */
static void t_wb_parked_bg(void **state)
{
	struct fx *f = *state;
	size_t n = 8u << 20, m = 2u << 20, k = 1u << 20;
	uint8_t *a = malloc(n), *txt = malloc(m), *b = malloc(k);
	struct eng_opts o;

	fill_random(a, n, 72);
	fill_random(b, k, 73);
	for (size_t p = 0, i = 0; p < m; i++) { /* a training log: compresses */
		char line[64];
		int l = snprintf(line, sizeof(line), "step %zu loss %.4f lr %.6f\n", i,
		                 2.0 / (1.0 + (double)i / 100), 1e-4 * (double)(i % 97));
		size_t c = m - p < (size_t)l ? m - p : (size_t)l;
		memcpy(txt + p, line, c);
		p += c;
	}
	put_file(f, "old", a, n); /* a pack of an earlier mount */
	series_open(f, &o, 100);
	o.lazy = ENG_LAZY_ALL;
	o.gc_interval_s = 1;
	assert_int_equal(eng_store_close(f->e), 0);
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	uint64_t ino = failed_file(f, "failed", b, k);
	eng_forget(f->e, ino, 1); /* closed and forgotten; the file stays */
	put_file(f, "log", txt, m); /* coded at fast: rebase recompresses it */
	uint64_t fast0 = fast_raw(f), before = du_alloc(f);
	assert_int_equal(eng_unlink(f->e, 1, "old"), 0);
	uint64_t fast = fast0, du = before;
	for (int i = 0; i < 150 && (fast > 0 || du > before - n / 2); i++) {
		usleep(100000);
		fast = fast_raw(f);
		du = du_alloc(f);
	}
	print_message("with a failed close parked: level-fast bytes %llu -> %llu (rebase), packs "
	              "%llu -> %llu bytes (gc of an 8 MiB file)\n",
	              (unsigned long long)fast0, (unsigned long long)fast, (unsigned long long)before,
	              (unsigned long long)du);
	assert_true(du <= before - n / 2);
	assert_int_equal(fast, 0);
	/* still buffered: no space yet.  A retry moves the bytes out of
	 * dirty_total into a batch until the fault parks them again, so
	 * poll for a moment (a slow build, TSan, caught that window) */
	bool buffered = false;
	for (int i = 0; i < 50 && !buffered; i++) {
		buffered = atomic_load(&f->e->dirty_total) >= k;
		if (!buffered)
			usleep(100000);
	}
	assert_true(buffered);
	atomic_store(&fault_ino, 0); /* the unmount stores it */
	check_file(f, "log", txt, m);
	free(a);
	free(txt);
	free(b);
}

/* Size of ino in the index (what is committed), or 0 if not there. */
static uint64_t committed_size(struct fx *f, uint64_t ino)
{
	struct idx_txn *t;
	struct idx_inode in;
	uint64_t size = 0;
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	if (idx_inode_get(t, ino, &in) == 0)
		size = in.size;
	idx_txn_abort(t);
	return size;
}

/* A close returns once its bytes are coded and written to the pack, not
 * committed (no durability is promised): they are read from the batches
 * meanwhile; fsync of a directory commits every file closed before it.
 * (Each close used to wait for a synced commit: 20000 small files took
 * 2x as long as with this.) */
static void t_close_nowait(void **state)
{
	struct fx *f = *state;
	struct eng_opts o;
	enum { N = 3, SZ = 5000 };
	uint8_t b[N][SZ];
	uint64_t ino[N];
	char name[16];

	assert_int_equal(eng_store_close(f->e), 0);
	eng_opts_default(&o);
	o.level = CODEC_LEVEL_FAST;
	o.commit_ms = 3600 * 1000; /* nothing commits on its own */
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	uint64_t packs0 = du_packs(f);
	for (int i = 0; i < N; i++) {
		fill_random(b[i], SZ, 80 + (uint64_t)i);
		snprintf(name, sizeof(name), "s%d", i);
		ino[i] = new_file(f, 1, name);
		write_all(f, ino[i], 0, b[i], SZ, 1000);
		assert_int_equal(eng_flush(f->e, ino[i]), 0);
		assert_int_equal(eng_release(f->e, ino[i]), 0);
	}
	/* coded and written, not committed */
	assert_true(du_packs(f) >= packs0 + N * SZ);
	for (int i = 0; i < N; i++) {
		struct eng_attr a;
		assert_int_equal(committed_size(f, ino[i]), 0);
		assert_int_equal(eng_getattr(f->e, ino[i], &a), 0);
		assert_int_equal(a.st.st_size, SZ);
		check_read(f, ino[i], 0, b[i], SZ);
	}
	assert_int_equal(eng_fsyncdir(f->e, 1), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(committed_size(f, ino[i]), SZ);
		eng_forget(f->e, ino[i], 1);
	}
	/* a checkpoint-sized file (flush_unit written since its open) is
	 * committed when its close returns: it survives a kill -9 */
	size_t big = (size_t)f->e->flush_unit + 4096;
	uint8_t *c = malloc(big);
	fill_random(c, big, 89);
	uint64_t ck = new_file(f, 1, "ckpt");
	write_all(f, ck, 0, c, big / 2, 1 << 20);
	struct eng_setattr mo = { .valid = ENG_SET_MODE, .mode = 0600 }; /* not a close */
	assert_int_equal(eng_setattr(f->e, ck, &mo, NULL), 0);
	write_all(f, ck, big / 2, c + big / 2, big - big / 2, 1 << 20);
	assert_int_equal(eng_release(f->e, ck), 0);
	assert_int_equal(committed_size(f, ck), big);
	eng_forget(f->e, ck, 1);
	free(c);
	reopen(f);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		check_file(f, name, b[i], SZ);
	}
}

static _Atomic int unlink_once; /* unlink_hook: 1 = unlink "a" at the next commit */

static void unlink_hook(struct eng *e)
{
	int one = 1;
	if (atomic_compare_exchange_strong(&unlink_once, &one, 0))
		assert_int_equal(eng_unlink(e, 1, "a"), 0);
}

/* The same failed commit, then at once an fsync of the directory (what
 * mixfs stats does): it returns with the file stored again, not while the
 * retry thread has yet to take it. */
/* "a" of the n bytes of a committed, then "b" of the same bytes (all
 * dedup) closed with unlink_hook armed: b's commit fails when it comes
 * (its dedup target deleted, -EAGAIN) with nobody waiting.  Returns b. */
static uint64_t close_failing_commit(struct fx *f, const uint8_t *a, size_t n)
{
	put_file(f, "a", a, n);
	f->e->commit_hook = unlink_hook;
	atomic_store(&unlink_once, 1);
	uint64_t ino = new_file(f, 1, "b");
	write_all(f, ino, 0, a, n, 1 << 20);
	assert_int_equal(eng_release(f->e, ino), 0);
	return ino;
}

/* After close_failing_commit: "b" reads back as a after a remount. */
static void check_failed_commit_stored(struct fx *f, uint64_t ino, const uint8_t *a, size_t n)
{
	f->e->commit_hook = NULL;
	eng_forget(f->e, ino, 1);
	reopen(f);
	check_file(f, "b", a, n);
}

static void t_fsyncdir_recheck(void **state)
{
	struct fx *f = *state;
	size_t n = 1u << 20;
	uint8_t *a = malloc(n);

	fill_random(a, n, 91);
	uint64_t ino = close_failing_commit(f, a, n);
	assert_int_equal(eng_fsyncdir(f->e, 1), 0);
	assert_int_equal(atomic_load(&unlink_once), 0); /* the hook ran */
	assert_int_equal(committed_size(f, ino), n);
	check_failed_commit_stored(f, ino, a, n);
	free(a);
}

/* rsync, tar and cp -a set times and modes after the close: such a setattr
 * waits for no commit either, and the batches that commit after it keep
 * the times it set (their commit used to set mtime to the write's time:
 * rsync -a would see every file as changed).  Its reply and getattr show
 * the size in memory; a write after it moves mtime again. */
static void t_setattr_nowait(void **state)
{
	struct fx *f = *state;
	struct eng_opts o;
	struct eng_attr a;
	enum { SZ = 100000 };
	static uint8_t b[SZ];
	struct eng_setattr sa = { .valid = ENG_SET_MTIME | ENG_SET_MODE, .mode = 0600 };
	struct idx_txn *t;
	struct idx_inode in;

	assert_int_equal(eng_store_close(f->e), 0);
	eng_opts_default(&o);
	o.level = CODEC_LEVEL_FAST;
	o.commit_ms = 3600 * 1000; /* nothing commits on its own */
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	fill_random(b, SZ, 95);
	uint64_t ino = new_file(f, 1, "kept");
	write_all(f, ino, 0, b, SZ, 4096);
	assert_int_equal(eng_release(f->e, ino), 0);
	sa.mtime.tv_sec = 1000000000; /* 2001, as rsync restores it */
	assert_int_equal(eng_setattr(f->e, ino, &sa, &a), 0);
	assert_int_equal(a.st.st_size, SZ);
	assert_int_equal(a.st.st_mtim.tv_sec, 1000000000);
	assert_true(a.unsettled);
	assert_int_equal(committed_size(f, ino), 0); /* nothing waited for the commit */
	assert_int_equal(eng_getattr(f->e, ino, &a), 0);
	assert_int_equal(a.st.st_size, SZ);
	assert_int_equal(a.st.st_mtim.tv_sec, 1000000000);
	assert_int_equal(a.st.st_mode & 07777, 0600);
	check_read(f, ino, 0, b, SZ);
	assert_int_equal(eng_fsyncdir(f->e, 1), 0);
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_inode_get(t, ino, &in), 0);
	idx_txn_abort(t);
	assert_int_equal(in.size, SZ);
	assert_int_equal(in.mtime_ns, 1000000000ll * 1000000000ll);
	assert_int_equal(in.mode & 07777, 0600);
	/* a later write moves mtime again, and a chmod before its commit
	 * leaves that (a chmod sets no mtime) */
	assert_int_equal(eng_write(f->e, ino, 0, b, 10), 10);
	assert_int_equal(eng_release(f->e, ino), 0);
	struct eng_setattr mo = { .valid = ENG_SET_MODE, .mode = 0644 };
	assert_int_equal(eng_setattr(f->e, ino, &mo, &a), 0);
	assert_true(a.st.st_mtim.tv_sec > 1000000000);
	assert_true(a.unsettled);
	assert_int_equal(eng_fsyncdir(f->e, 1), 0);
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_inode_get(t, ino, &in), 0);
	idx_txn_abort(t);
	assert_true(in.mtime_ns > 1000000000ll * 1000000000ll);
	assert_int_equal(in.mode & 07777, 0644);
	assert_int_equal(eng_getattr(f->e, ino, &a), 0);
	assert_true(a.st.st_mtim.tv_sec > 1000000000);
	assert_int_equal(committed_size(f, ino), SZ);
	eng_forget(f->e, ino, 1);
	reopen(f);
	check_file(f, "kept", b, SZ);
}

/* A batch of a file still being written fails -EAGAIN (the chunk it
 * deduplicated against was deleted before its commit): the next write
 * takes it back, so the file's later batches commit as they come instead
 * of failing behind it, their bytes held by no budget until the close
 * (64 MiB written under dirty=16M: 0 bytes were committed before the
 * close, all 64 MiB held in memory). */
static void t_eagain_while_writing(void **state)
{
	struct fx *f = *state;
	enum { MIB = 1 << 20, TOTAL = 64 };
	uint8_t *file = malloc((size_t)TOTAL * MIB);
	struct eng_opts o;
	uint64_t ino, size = 0;

	assert_non_null(file);
	assert_int_equal(eng_store_close(f->e), 0);
	eng_opts_default(&o);
	o.level = CODEC_LEVEL_RAW;
	o.workers = 2;
	o.dirty_bytes = 16u << 20;
	o.inflight_bytes = 8u << 20;
	o.commit_ms = 20;
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	fill_random(file, (size_t)TOTAL * MIB, 92);
	put_file(f, "a", file, MIB); /* w's first MiB dedups against it */
	f->e->commit_hook = unlink_hook;
	atomic_store(&unlink_once, 1);
	ino = new_file(f, 1, "w");
	write_all(f, ino, 0, file, (size_t)TOTAL * MIB, MIB);
	for (int i = 0; i < 50 && size < (uint64_t)(TOTAL - 32) * MIB; i++) {
		usleep(20000);
		size = committed_size(f, ino);
	}
	print_message("after %d MiB written, one batch failed -EAGAIN: %llu MiB committed before the close\n",
	              TOTAL, (unsigned long long)(size / MIB));
	assert_int_equal(atomic_load(&unlink_once), 0); /* the hook ran */
	assert_true(size >= (uint64_t)(TOTAL - 32) * MIB);
	assert_int_equal(eng_release(f->e, ino), 0);
	f->e->commit_hook = NULL;
	eng_forget(f->e, ino, 1);
	reopen(f);
	check_file(f, "w", file, (size_t)TOTAL * MIB);
	free(file);
}

/* A commit that fails after the close that queued it returned (here: the
 * chunks its batch deduplicated against were deleted meanwhile, -EAGAIN)
 * has nobody to take its bytes back: the retry thread does, and stores
 * them again without a further write or fsync; the next fsync reports
 * nothing (the bytes were stored). */
static void t_close_commit_fails(void **state)
{
	struct fx *f = *state;
	size_t n = 1u << 20;
	uint8_t *a = malloc(n);
	struct eng_attr at;

	fill_random(a, n, 90);
	uint64_t ino = close_failing_commit(f, a, n);
	uint64_t size = 0;
	for (int i = 0; i < 100 && size != n; i++) {
		usleep(100000);
		size = committed_size(f, ino);
	}
	print_message("a close's commit failed (dedup target deleted): committed %llu of %zu "
	              "bytes by the retry\n", (unsigned long long)size, n);
	assert_int_equal(atomic_load(&unlink_once), 0); /* the hook ran */
	assert_int_equal(eng_lookup(f->e, 1, "a", &at), -ENOENT);
	assert_int_equal(size, n);
	assert_int_equal(eng_fsync(f->e, ino, false), 0);
	check_failed_commit_stored(f, ino, a, n);
	free(a);
}

/* A batch cut by the writes of a file still open for writing fails (the
 * disk is full) with nobody waiting: the writer's next writes fail with
 * the error (fail fast) and the bytes wait for its close or fsync.  The
 * retry thread is for the batches of closed files (recheck): taking these
 * back cleared the failure, so the writer went on filling the whole dirty
 * budget without an error while every failed batch had the retry thread
 * cut and code the file's buffered bytes again. */
static void t_write_fails_fast(void **state)
{
	struct fx *f = *state;
	size_t n = 1u << 20;
	uint8_t *a = malloc(n);
	struct eng_opts o;
	int i;
	ssize_t w = 0;

	fill_random(a, n, 78);
	assert_int_equal(eng_store_close(f->e), 0);
	eng_opts_default(&o);
	o.level = CODEC_LEVEL_FAST;
	o.workers = 2;
	o.dirty_bytes = 64u << 20; /* flush_unit 16 MiB */
	o.commit_ms = 50;
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	f->e->append_hook = fault_hook;
	uint64_t ino = new_file(f, 1, "w");
	atomic_store(&fault_calls, 0);
	atomic_store(&fault_ino, ino);
	for (i = 0; i < 48; i++) {
		w = eng_write(f->e, ino, (uint64_t)i * n, a, n);
		if (w != (ssize_t)n)
			break;
		usleep(20000);
	}
	print_message("disk full while writing: %d MiB accepted, then %zd; %u batches failed\n", i,
	              w, atomic_load(&fault_calls));
	assert_int_equal(w, -ENOSPC);
	assert_true(i < 32);
	assert_true(atomic_load(&fault_calls) <= 2);
	assert_int_equal(eng_release(f->e, ino), -ENOSPC);
	atomic_store(&fault_ino, 0);
	f->e->append_hook = NULL;
	eng_forget(f->e, ino, 1);
	free(a);
}

static int64_t st_ctime_ns(const struct stat *st)
{
	return (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

/* A file renamed after its close returned, before its bytes commit (the
 * usual write-to-a-temporary-name-then-rename): its ctime is the
 * rename's, while the commit is pending and after it.  The commit used to
 * set ctime to the time of the last write, and the pending overlay showed
 * that too: ctime went back. */
static void t_close_rename_ctime(void **state)
{
	struct fx *f = *state;
	struct eng_opts o;
	struct eng_attr a;
	uint8_t b[5000];

	assert_int_equal(eng_store_close(f->e), 0);
	eng_opts_default(&o);
	o.level = CODEC_LEVEL_FAST;
	o.commit_ms = 3600 * 1000; /* nothing commits on its own */
	assert_int_equal(eng_store_open(f->store, &o, &f->e), 0);
	fill_random(b, sizeof(b), 81);
	uint64_t ino = new_file(f, 1, "tmp");
	write_all(f, ino, 0, b, sizeof(b), 1000);
	assert_int_equal(eng_flush(f->e, ino), 0);
	assert_int_equal(eng_release(f->e, ino), 0);
	usleep(20000);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t before = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	assert_int_equal(eng_rename(f->e, 1, "tmp", 1, "final", 0), 0);
	assert_int_equal(eng_getattr(f->e, ino, &a), 0);
	int64_t pending = st_ctime_ns(&a.st);
	assert_int_equal(eng_fsyncdir(f->e, 1), 0);
	assert_int_equal(eng_getattr(f->e, ino, &a), 0);
	int64_t committed = st_ctime_ns(&a.st);
	print_message("ctime - rename time: %lld ns pending, %lld ns committed\n",
	              (long long)(pending - before), (long long)(committed - before));
	assert_true(pending >= before);
	assert_true(committed >= before);
	eng_forget(f->e, ino, 1);
	check_file(f, "final", b, sizeof(b));
}

/* Stored bytes of the store (its counters, engine open). */
static uint64_t stored_now(struct fx *f)
{
	struct idx_txn *t;
	struct idx_stats st;
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_stats_get(t, &st), 0);
	idx_txn_abort(t);
	return st.stored_bytes;
}

static void inode_times(struct fx *f, uint64_t ino, int64_t *mtime, int64_t *ctime)
{
	struct idx_txn *t;
	struct idx_inode in;
	assert_int_equal(idx_txn_begin(f->e->idx, true, &t), 0);
	assert_int_equal(idx_inode_get(t, ino, &in), 0);
	idx_txn_abort(t);
	*mtime = in.mtime_ns;
	*ctime = in.ctime_ns;
}

/* The defrag tests' store: level fast, 2 workers, the rebase thread after
 * rebase_idle_ms (0: none, eng_rebase does the idle work). */
static void reopen_defrag(struct fx *f, unsigned rebase_idle_ms)
{
	struct eng_opts o = fast_opts();

	o.workers = 2;
	o.rebase_idle_ms = rebase_idle_ms;
	reopen_with(f, &o);
}

/* The next of a series of random patches: len bytes (fill_random(fill))
 * into p, at a random offset of a file of sz bytes, also applied to its
 * expected bytes b; returns the offset. */
static uint64_t random_patch(uint64_t *seed, uint8_t *b, size_t sz, uint8_t *p, size_t len,
                             uint64_t fill)
{
	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	uint64_t off = (*seed >> 33) % (sz - len + 1);
	fill_random(p, len, fill);
	memcpy(b + off, p, len);
	return off;
}

/* Overwrite amplification: a file patched in place many times (pwrite into
 * its middle, dd conv=notrunc) cuts new chunks for the written ranges
 * only; the old chunks they cover in part stay whole as long as a piece
 * of them is mapped.  The idle work rewrites the partially mapped ranges
 * (same bytes, new chunks) so the file costs about what a fresh copy
 * does; its times stay, its bytes (by both names of a hard link) too,
 * across a remount. */
static void t_overwrite_defrag(void **state)
{
	struct fx *f = *state;
	enum { SZ = 149 << 10, PATCH = 100 << 10, PATCHES = 50 };
	uint8_t *b = malloc(SZ), *p = malloc(PATCH);
	struct eng_attr a;
	uint64_t turned, seed = 11;
	int64_t mt0, ct0, mt1, ct1;

	reopen_defrag(f, 0); /* no thread: eng_rebase does the idle work */
	fill_random(b, SZ, 70);
	put_file(f, "patched", b, SZ);
	assert_int_equal(eng_lookup(f->e, 1, "patched", &a), 0);
	uint64_t ino = a.st.st_ino;
	assert_int_equal(eng_link(f->e, ino, 1, "link", NULL), 0);
	for (int i = 0; i < PATCHES; i++) {
		uint64_t off = random_patch(&seed, b, SZ, p, PATCH, 1000 + (uint64_t)i);
		assert_int_equal(eng_open(f->e, ino, O_RDWR), 0);
		write_all(f, ino, off, p, PATCH, 32 << 10);
		assert_int_equal(eng_release(f->e, ino), 0);
		assert_int_equal(eng_fsyncdir(f->e, 1), 0); /* one commit a patch */
	}
	check_read(f, ino, 0, b, SZ);
	uint64_t before = stored_now(f);
	inode_times(f, ino, &mt0, &ct0);

	/* what the same bytes cost written at once, in a store of their own */
	uint64_t fresh;
	{
		struct fx g = *f;
		snprintf(g.store, sizeof(g.store), "%s/fresh", f->dir);
		assert_int_equal(eng_mkfs(g.store, CODEC_LEVEL_FAST), 0);
		open_store(&g, CODEC_LEVEL_FAST);
		put_file(&g, "copy", b, SZ);
		fresh = stored_now(&g);
		assert_int_equal(eng_store_close(g.e), 0);
	}

	usleep(20000); /* a time set by the repair would differ */
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	uint64_t after = stored_now(f);
	print_message("overwrite: %d patches of %d KiB into %d KiB: stored %llu -> %llu bytes "
	              "(a fresh copy: %llu)\n", PATCHES, PATCH >> 10, SZ >> 10,
	              (unsigned long long)before, (unsigned long long)after,
	              (unsigned long long)fresh);
	assert_true(before > 2 * fresh); /* the amplification this repairs */
	assert_true(after <= fresh + fresh / 2);
	inode_times(f, ino, &mt1, &ct1);
	assert_int_equal(mt1, mt0);
	assert_int_equal(ct1, ct0);
	check_read(f, ino, 0, b, SZ);
	assert_int_equal(eng_getattr(f->e, ino, &a), 0);
	assert_int_equal(a.st.st_size, SZ);

	/* nothing left to do: a second pass changes nothing */
	assert_int_equal(eng_rebase(f->e, &turned), 0);
	assert_int_equal(stored_now(f), after);
	eng_forget(f->e, ino, 1);
	reopen(f);
	check_file(f, "patched", b, SZ);
	check_file(f, "link", b, SZ);
	assert_int_equal(eng_lookup(f->e, 1, "patched", &a), 0);
	inode_times(f, a.st.st_ino, &mt1, &ct1);
	assert_int_equal(mt1, mt0);
	assert_int_equal(ct1, ct0);
	eng_forget(f->e, a.st.st_ino, 1);
	free(b);
	free(p);
}

struct df_race {
	struct fx *f;
	atomic_bool done;
	int rc;
};

static void *df_race_thread(void *arg)
{
	struct df_race *r = arg;
	uint64_t turned;
	r->rc = eng_rebase(r->f->e, &turned);
	atomic_store(&r->done, true);
	return NULL;
}

/* The rewrite of a large file overwritten in place goes a piece at a time
 * (several pieces here) while the file is read and written: readers see
 * the file's bytes throughout, a write that comes during the rewrite wins
 * (its range is skipped or rewritten before it), and afterwards the file
 * is compact, exact, after a remount too. */
static void t_overwrite_defrag_race(void **state)
{
	struct fx *f = *state;
	enum { SZ = 12 << 20, PATCH = 64 << 10 };
	uint8_t *b = malloc(SZ), *p = malloc(PATCH);
	uint64_t seed = 5, turned;
	struct eng_attr a;
	struct df_race r = { .f = f };
	pthread_t th;

	reopen_defrag(f, 0);
	fill_random(b, SZ, 71);
	put_file(f, "big", b, SZ);
	assert_int_equal(eng_lookup(f->e, 1, "big", &a), 0);
	uint64_t ino = a.st.st_ino;
	for (int i = 0; i < 200; i++) {
		uint64_t off = random_patch(&seed, b, SZ, p, PATCH, 2000 + (uint64_t)i);
		assert_int_equal(eng_open(f->e, ino, O_RDWR), 0);
		write_all(f, ino, off, p, PATCH, PATCH);
		assert_int_equal(eng_release(f->e, ino), 0);
		if (i % 4 == 3)
			assert_int_equal(eng_fsyncdir(f->e, 1), 0);
	}
	assert_int_equal(eng_fsyncdir(f->e, 1), 0);
	uint64_t before = stored_now(f);

	assert_int_equal(pthread_create(&th, NULL, df_race_thread, &r), 0);
	int reads = 0, writes = 0;
	for (int i = 0; !atomic_load(&r.done); i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t off = (seed >> 33) % (SZ - PATCH + 1);
		if (i % 8 == 7 && writes < 16) { /* now and then a patch */
			fill_random(p, PATCH, 3000 + (uint64_t)i);
			memcpy(b + off, p, PATCH);
			assert_int_equal(eng_open(f->e, ino, O_RDWR), 0);
			write_all(f, ino, off, p, PATCH, 4096);
			assert_int_equal(eng_release(f->e, ino), 0);
			writes++;
		} else {
			check_read(f, ino, off, b + off, PATCH);
			reads++;
		}
	}
	pthread_join(th, NULL);
	assert_int_equal(r.rc, 0);
	check_read(f, ino, 0, b, SZ);
	assert_int_equal(eng_rebase(f->e, &turned), 0); /* what the writes left */
	uint64_t after = stored_now(f);
	print_message("overwrite, 12 MiB: stored %llu -> %llu bytes, %llu files rewritten, "
	              "%d reads and %d writes during the rewrite\n", (unsigned long long)before,
	              (unsigned long long)after, (unsigned long long)atomic_load(&f->e->df_files),
	              reads, writes);
	assert_true(before > SZ + SZ / 2);
	assert_true(after <= SZ + SZ / 4);
	eng_forget(f->e, ino, 1);
	reopen(f);
	check_file(f, "big", b, SZ);
	free(b);
	free(p);
}

struct part_ctx {
	struct idx_txn *t;
	uint64_t bytes;
};

static int part_cb(void *arg, const struct idx_extent *x)
{
	struct part_ctx *c = arg;
	struct idx_chunk ch;
	assert_int_equal(idx_chunk_get(c->t, x->fp, &ch), 0);
	if (x->len < ch.raw_len)
		c->bytes += x->len;
	return 0;
}

/* Bytes of ino mapped by extents that map part of their chunk. */
static uint64_t partial_bytes(struct fx *f, uint64_t ino)
{
	struct part_ctx c = { 0 };
	assert_int_equal(idx_txn_begin(f->e->idx, true, &c.t), 0);
	assert_int_equal(idx_extent_iter(c.t, ino, 0, UINT64_MAX, part_cb, &c), 0);
	idx_txn_abort(c.t);
	return c.bytes;
}

static _Atomic unsigned dw_commits; /* commit_hook: groups committed */

static void dw_commit_hook(struct eng *e)
{
	(void)e;
	atomic_fetch_add(&dw_commits, 1);
}

/* The idle rewrite of a file overwritten in place goes a piece (4 MiB)
 * at a time, each with the file's lock held: a write to the file that
 * comes meanwhile waits for that piece, not for the whole file.  The
 * writer blocks on the lock before it can make the store busy
 * (last_write_ms), so the rewrite must see it waiting. */
static void t_defrag_writer_waits(void **state)
{
	struct fx *f = *state;
	enum { SZ = 48 << 20, PATCH = 64 << 10 };
	uint8_t *b = malloc(SZ), *p = malloc(PATCH);
	uint64_t seed = 9;
	struct eng_attr a;

	reopen_defrag(f, 300); /* the rebase thread does the idle work */
	fill_random(b, SZ, 72);
	put_file(f, "big", b, SZ);
	assert_int_equal(eng_lookup(f->e, 1, "big", &a), 0);
	uint64_t ino = a.st.st_ino;
	for (int i = 0; i < 900; i++) {
		uint64_t off = random_patch(&seed, b, SZ, p, PATCH, 4000 + (uint64_t)i);
		write_all(f, ino, off, p, PATCH, PATCH);
		if (i % 8 == 7)
			assert_int_equal(eng_fsync(f->e, ino, false), 0);
	}
	assert_int_equal(eng_fsync(f->e, ino, false), 0);
	uint64_t p0 = partial_bytes(f, ino);
	/* from here on only the rewrite commits: wait for its first piece */
	atomic_store(&dw_commits, 0);
	pthread_mutex_lock(&f->e->plock); /* the committer is running */
	f->e->commit_hook = dw_commit_hook;
	pthread_mutex_unlock(&f->e->plock);
	for (int i = 0; i < 2000 && atomic_load(&dw_commits) == 0; i++)
		usleep(2000);
	pthread_mutex_lock(&f->e->plock);
	f->e->commit_hook = NULL;
	pthread_mutex_unlock(&f->e->plock);
	assert_true(atomic_load(&dw_commits) > 0);
	fill_random(p, 4096, 4999);
	memcpy(b + 4096, p, 4096);
	assert_int_equal(eng_write(f->e, ino, 4096, p, 4096), 4096);
	uint64_t p1 = partial_bytes(f, ino);
	print_message("defrag: %llu bytes of partial extents, %llu left when the write came in\n",
	              (unsigned long long)p0, (unsigned long long)p1);
	assert_int_equal(eng_fsync(f->e, ino, false), 0);
	check_read(f, ino, 0, b, SZ);
	/* the write waited for the piece it came in, maybe one more: not
	 * for the rest of the file */
	assert_true(p0 > 4 * (4u << 20));
	assert_true(p1 + 2 * (4u << 20) >= p0);
	eng_forget(f->e, ino, 1);
	free(b);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_write_read_remount, setup, teardown),
		cmocka_unit_test_setup_teardown(t_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(t_random_overwrite_truncate, setup, teardown),
		cmocka_unit_test_setup_teardown(t_namespace, setup, teardown),
		cmocka_unit_test_setup_teardown(t_readdir_many, setup, teardown),
		cmocka_unit_test_setup_teardown(t_unlink_open, setup, teardown),
		cmocka_unit_test_setup_teardown(t_sparse_large, setup, teardown),
		cmocka_unit_test_setup_teardown(t_series, setup, teardown),
		cmocka_unit_test_setup_teardown(t_ref_chain_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(t_series_rebase, setup, teardown),
		cmocka_unit_test_setup_teardown(t_rebase_beside_log, setup, teardown),
		cmocka_unit_test_setup_teardown(t_best_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(t_splice_close_keeps_marks, setup, teardown),
		cmocka_unit_test_setup_teardown(t_best_kept_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(t_read_retry_ref, setup, teardown),
		cmocka_unit_test_setup_teardown(t_chunk_misdirected, setup, teardown),
		cmocka_unit_test_setup_teardown(t_reap_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(t_delete_in_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(t_truncate_in_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(t_truncate_fail_buffered, setup, teardown),
		cmocka_unit_test_setup_teardown(t_charges_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(t_otrunc_fail_shadow, setup, teardown),
		cmocka_unit_test_setup_teardown(t_sweep_synced, setup, teardown),
		cmocka_unit_test_setup_teardown(t_charges_after_rebase, setup, teardown),
		cmocka_unit_test_setup_teardown(t_reap_retry_damaged, setup, teardown),
		cmocka_unit_test_setup_teardown(t_series_dirs, setup, teardown),
		cmocka_unit_test_setup_teardown(t_series_names, setup, teardown),
		cmocka_unit_test_setup_teardown(t_series_raw, setup, teardown),
		cmocka_unit_test_setup_teardown(t_series_raw_late, setup, teardown),
		cmocka_unit_test_setup_teardown(t_series_raw_late_shadow, setup, teardown),
		cmocka_unit_test_setup_teardown(t_series_raw_small, setup, teardown),
		cmocka_unit_test_setup_teardown(t_copy_range_big_tensors, setup, teardown),
		cmocka_unit_test_setup_teardown(t_series_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(t_lazy_recompress, setup, teardown),
		cmocka_unit_test_setup_teardown(t_rebase_ref_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(t_inflight_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(t_online_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(t_online_gc_same_mount, setup, teardown),
		cmocka_unit_test_setup_teardown(t_online_gc_after_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(t_online_gc_early, setup, teardown),
		cmocka_unit_test_setup_teardown(t_online_gc_current, setup, teardown),
		cmocka_unit_test_setup_teardown(t_online_gc_current_dead, setup, teardown),
		cmocka_unit_test_setup_teardown(t_online_gc_commit_race, setup, teardown),
		cmocka_unit_test_setup_teardown(t_read_overlay_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(t_release_shadow_race, setup, teardown),
		cmocka_unit_test_setup_teardown(t_rebase_seal, setup, teardown),
		cmocka_unit_test_setup_teardown(t_readahead_once, setup, teardown),
		cmocka_unit_test_setup_teardown(t_rewrite_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(t_bg_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(t_copy_range, setup, teardown),
		cmocka_unit_test_setup_teardown(t_copy_range_self_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(t_copy_range_tensors, setup, teardown),
		cmocka_unit_test_setup_teardown(t_wb_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(t_wb_parked_unlink, setup, teardown),
		cmocka_unit_test_setup_teardown(t_wb_parked_bg, setup, teardown),
		cmocka_unit_test_setup_teardown(t_wb_parked_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(t_close_nowait, setup, teardown),
		cmocka_unit_test_setup_teardown(t_close_commit_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(t_setattr_nowait, setup, teardown),
		cmocka_unit_test_setup_teardown(t_fsyncdir_recheck, setup, teardown),
		cmocka_unit_test_setup_teardown(t_blocks_during_close, setup, teardown),
		cmocka_unit_test_setup_teardown(t_write_fails_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(t_eagain_while_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(t_truncate_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(t_times_clamped, setup, teardown),
		cmocka_unit_test_setup_teardown(t_sparse_writes_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(t_hints_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(t_close_rename_ctime, setup, teardown),
		cmocka_unit_test_setup_teardown(t_overwrite_defrag, setup, teardown),
		cmocka_unit_test_setup_teardown(t_overwrite_defrag_race, setup, teardown),
		cmocka_unit_test_setup_teardown(t_defrag_writer_waits, setup, teardown),
	};
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
