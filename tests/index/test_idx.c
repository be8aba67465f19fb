/*
 * test_idx.c - the LMDB index: records, stats exactness, refcounts, errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "index/idx.h"
#include "index/idx_test_i.h"

struct fixture {
	char dir[64];
	struct idx *x;
};

static void super_default(struct idx_super *s)
{
	memset(s, 0, sizeof(*s));
	s->format_version = IDX_FORMAT_VERSION;
	memcpy(s->uuid, "0123456789abcdef", 16);
	cdc_params_default(&s->cdc);
	s->default_level = 2;
	s->next_ino = 2;
	s->next_pack = 1;
	s->created_ns = 1234567890123456789ll;
}

static void rm_store(const char *dir)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/lock.mdb", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/unsynced", dir);
	unlink(p);
	rmdir(dir);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct idx_super s;

	assert_non_null(f);
	strcpy(f->dir, "/tmp/mixfs-idx-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	super_default(&s);
	assert_int_equal(idx_open(f->dir, IDX_CREATE, &s, 0, &f->x), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	idx_close(f->x);
	rm_store(f->dir);
	free(f);
	return 0;
}

static void reopen(struct fixture *f)
{
	idx_close(f->x);
	f->x = NULL;
	assert_int_equal(idx_open(f->dir, 0, NULL, 0, &f->x), 0);
}

static struct idx_txn *wtxn(struct fixture *f)
{
	struct idx_txn *t;

	assert_int_equal(idx_txn_begin(f->x, false, &t), 0);
	return t;
}

static struct idx_txn *rtxn(struct fixture *f)
{
	struct idx_txn *t;

	assert_int_equal(idx_txn_begin(f->x, true, &t), 0);
	return t;
}

static void make_fp(uint8_t fp[FP_LEN], unsigned i)
{
	memset(fp, 0xa5, FP_LEN);
	fp[0] = (uint8_t)(i >> 24);
	fp[1] = (uint8_t)(i >> 16);
	fp[2] = (uint8_t)(i >> 8);
	fp[3] = (uint8_t)i;
}

static unsigned fp_id(const uint8_t fp[FP_LEN])
{
	return (unsigned)fp[0] << 24 | (unsigned)fp[1] << 16 | (unsigned)fp[2] << 8 | fp[3];
}

static void make_chunk(struct idx_chunk *c, unsigned i)
{
	memset(c, 0, sizeof(*c));
	make_fp(c->fp, i);
	c->pack_id = 1 + i % 3;
	c->pack_off = (uint64_t)i * 100000;
	c->raw_len = 4096 + i * 100;
	c->frame_len = c->raw_len / 2 + i;
	c->level = (uint8_t)(i % IDX_LEVEL_COUNT);
	c->dtype = (uint8_t)(i % IDX_DTYPE_COUNT);
}

static void make_file(struct idx_inode *in, uint64_t ino, uint64_t size)
{
	memset(in, 0, sizeof(*in));
	in->ino = ino;
	in->mode = S_IFREG | 0644;
	in->nlink = 1;
	in->size = size;
	in->mtime_ns = 42;
}

/* --- open / create / format ------------------------------------------------ */

static void test_open_create(void **state)
{
	struct fixture *f = *state;
	struct idx_super s, got, init;
	struct idx_stats st, zero;
	struct idx_txn *t;
	struct idx *y;
	uint64_t ino;
	uint32_t pack;

	super_default(&init);
	assert_int_equal(idx_open(f->dir, IDX_CREATE, &init, 0, &y), -EEXIST);
	assert_int_equal(idx_open("/tmp/mixfs-idx-does-not-exist", 0, NULL, 0, &y), -ENOENT);
	assert_null(y);

	t = rtxn(f);
	assert_int_equal(idx_super_get(t, &got), 0);
	assert_int_equal(got.format_version, IDX_FORMAT_VERSION);
	assert_memory_equal(got.uuid, init.uuid, 16);
	assert_int_equal(got.cdc.avg_size, init.cdc.avg_size);
	assert_int_equal(got.next_ino, 2);
	assert_int_equal(got.created_ns, init.created_ns);
	memset(&zero, 0, sizeof(zero));
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_memory_equal(&st, &zero, sizeof(st));
	/* The root inode is the engine's business, not idx's. */
	assert_int_equal(idx_inode_get(t, IDX_ROOT_INO, &(struct idx_inode){ 0 }), -ENOENT);
	assert_int_equal(idx_ino_alloc(t, &ino), -EROFS);
	idx_txn_abort(t);

	t = wtxn(f);
	assert_int_equal(idx_ino_alloc(t, &ino), 0);
	assert_int_equal(ino, 2);
	assert_int_equal(idx_ino_alloc(t, &ino), 0);
	assert_int_equal(ino, 3);
	assert_int_equal(idx_pack_alloc(t, &pack), 0);
	assert_int_equal(pack, 1);
	assert_int_equal(idx_txn_commit(t), 0);

	/* An aborted allocation is not persisted. */
	t = wtxn(f);
	assert_int_equal(idx_ino_alloc(t, &ino), 0);
	assert_int_equal(ino, 4);
	idx_txn_abort(t);

	reopen(f);
	t = rtxn(f);
	assert_int_equal(idx_super_get(t, &s), 0);
	assert_int_equal(s.next_ino, 4);
	assert_int_equal(s.next_pack, 2);
	assert_int_equal(idx_txn_commit(t), 0);

	/* Read-only open next to a writer. */
	assert_int_equal(idx_open(f->dir, IDX_RDONLY, NULL, 0, &y), 0);
	assert_int_equal(idx_txn_begin(y, false, &t), -EROFS);
	assert_int_equal(idx_txn_begin(y, true, &t), 0);
	assert_int_equal(idx_super_get(t, &s), 0);
	assert_int_equal(s.next_ino, 4);
	idx_txn_abort(t);
	idx_close(y);
	idx_close(NULL);
	idx_txn_abort(NULL);
}

static void test_format_version(void **state)
{
	struct fixture *f = *state;
	struct idx_super s;
	struct idx_txn *t;
	struct idx *y = NULL;

	t = wtxn(f);
	assert_int_equal(idx_super_get(t, &s), 0);
	s.format_version = IDX_FORMAT_VERSION + 1;
	assert_int_equal(idx_super_put(t, &s), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	idx_close(f->x);
	f->x = NULL;
	assert_int_equal(idx_open(f->dir, 0, NULL, 0, &y), -EPROTONOSUPPORT);
	assert_int_equal(idx_open(f->dir, IDX_RDONLY, NULL, 0, &y), -EPROTONOSUPPORT);
	assert_null(y);
	/* teardown closes f->x: give it a valid store again. */
	rm_store(f->dir);
	super_default(&s);
	assert_int_equal(idx_open(f->dir, IDX_CREATE, &s, 0, &f->x), 0);
}

static void test_not_a_store(void **state)
{
	struct fixture *f = *state;
	char dir[64], p[128];
	struct idx_super s;
	struct idx *y = NULL;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 3, "key" }, v = { 3, "val" };
	int fd;

	(void)f;
	/* An LMDB environment that is not ours. */
	strcpy(dir, "/tmp/mixfs-idx-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	assert_int_equal(idx_open(dir, 0, NULL, 0, &y), -EINVAL);
	rm_store(dir);

	/* A data.mdb that is not LMDB at all. */
	assert_non_null(mkdtemp(strcpy(dir, "/tmp/mixfs-idx-XXXXXX")));
	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "this is not an lmdb file, not at all....", 40), 40);
	close(fd);
	assert_int_equal(idx_open(dir, 0, NULL, 0, &y), -EINVAL);
	rm_store(dir);

	/* An empty directory; bad create parameters. */
	assert_non_null(mkdtemp(strcpy(dir, "/tmp/mixfs-idx-XXXXXX")));
	assert_int_equal(idx_open(dir, 0, NULL, 0, &y), -ENOENT);
	assert_int_equal(idx_open(dir, IDX_CREATE, NULL, 0, &y), -EINVAL);
	super_default(&s);
	s.cdc.avg_size = 3000;
	assert_int_equal(idx_open(dir, IDX_CREATE, &s, 0, &y), -EINVAL);
	assert_null(y);
	rm_store(dir);
}

/* Write raw bytes into a named database, behind idx's back. */
static void raw_put(struct fixture *f, const char *db, const void *k, size_t klen,
                    const void *v, size_t vlen)
{
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	idx_close(f->x);
	f->x = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, f->dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	reopen(f);
}

static int never_cb(void *arg, const struct idx_inode *in)
{
	return 0;
}

static void test_malformed(void **state)
{
	struct fixture *f = *state;
	static const uint8_t ino7[8] = { 0, 0, 0, 0, 0, 0, 0, 7 };
	uint8_t fp[FP_LEN], chunk[27];
	struct idx_inode in;
	struct idx_chunk c;
	struct idx_stats st;
	struct idx_txn *t;

	raw_put(f, "inodes", ino7, 8, "short", 5);
	make_fp(fp, 3);
	make_chunk(&c, 3);
	memset(chunk, 0, sizeof(chunk));
	chunk[19] = 1;   /* raw_len 1 */
	chunk[24] = 200; /* level out of range: would index past the stats */
	raw_put(f, "chunks", fp, FP_LEN, chunk, sizeof(chunk));
	t = rtxn(f);
	assert_int_equal(idx_inode_get(t, 7, &in), -EIO);
	assert_int_equal(idx_inode_iter(t, never_cb, NULL), -EIO);
	assert_int_equal(idx_chunk_get(t, fp, &c), -EIO);
	idx_txn_abort(t);
	raw_put(f, "super", "stats", 5, "nope", 4);
	t = rtxn(f);
	assert_int_equal(idx_stats_get(t, &st), -EIO);
	idx_txn_abort(t);
}

/* --- inodes ------------------------------------------------------------------- */

static void test_inode(void **state)
{
	struct fixture *f = *state;
	struct idx_inode in, got, dir;
	struct idx_stats st;
	struct idx_txn *t;

	t = wtxn(f);
	make_file(&in, 10, 1000);
	in.uid = 7;
	in.gid = 8;
	in.rdev = 99;
	in.atime_ns = -5;
	in.ctime_ns = 77;
	in.dtype = 3;
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_inode_get(t, 10, &got), 0);
	assert_memory_equal(&got, &in, sizeof(in));
	memset(&dir, 0, sizeof(dir));
	dir.ino = 11;
	dir.mode = S_IFDIR | 0755;
	dir.size = 4096;
	assert_int_equal(idx_inode_put(t, &dir), 0);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.files, 1);
	assert_int_equal(st.logical_bytes, 1000);
	/* Replace: size change, then a type change. */
	in.size = 5000;
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_txn_commit(t), 0);

	t = rtxn(f);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.files, 1);
	assert_int_equal(st.logical_bytes, 5000);
	idx_txn_abort(t);

	t = wtxn(f);
	make_file(&in, 12, 300);
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_inode_delete(t, 10), 0);
	assert_int_equal(idx_inode_get(t, 10, &got), -ENOENT);
	assert_int_equal(idx_inode_delete(t, 10), -ENOENT);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.files, 1);
	assert_int_equal(st.logical_bytes, 300);
	in.mode = S_IFLNK | 0777;
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.logical_bytes, 0);
	in.ino = 0;
	assert_int_equal(idx_inode_put(t, &in), -EINVAL);
	assert_int_equal(idx_txn_commit(t), 0);
}

static int count_inode(void *arg, const struct idx_inode *in)
{
	uint64_t *prev = arg;

	assert_true(in->ino > prev[0]);
	prev[0] = in->ino;
	prev[1]++;
	return 0;
}

static void test_inode_iter(void **state)
{
	struct fixture *f = *state;
	struct idx_inode in;
	struct idx_txn *t;
	uint64_t acc[2] = { 0, 0 };
	unsigned i;

	t = wtxn(f);
	for (i = 0; i < 300; i++) {
		make_file(&in, 1 + (i * 7919) % 1000, i);
		assert_int_equal(idx_inode_put(t, &in), 0);
	}
	assert_int_equal(idx_inode_iter(t, count_inode, acc), 0);
	assert_int_equal(acc[1], 300);
	assert_int_equal(idx_txn_commit(t), 0);
}

/* --- directories ---------------------------------------------------------- */

struct dir_walk {
	uint64_t last_seq;
	unsigned n, stop_after;
	bool seen[10000];
};

static int walk_cb(void *arg, const char *name, size_t namelen, uint64_t ino, uint8_t type,
                   uint64_t seq)
{
	struct dir_walk *w = arg;
	unsigned i;

	assert_true(w->n == 0 || seq > w->last_seq);
	assert_int_equal(strlen(name), namelen);
	assert_int_equal(sscanf(name, "file-%u", &i), 1);
	assert_int_equal(ino, 100000 + i);
	assert_int_equal(type, i % 2 ? 4 : 8);
	assert_false(w->seen[i]);
	w->seen[i] = true;
	w->last_seq = seq;
	w->n++;
	if (w->stop_after && w->n == w->stop_after)
		return 12345;
	return 0;
}

static void test_dirents(void **state)
{
	struct fixture *f = *state;
	struct idx_inode dir;
	struct idx_txn *t;
	struct dir_walk *w = calloc(1, sizeof(*w));
	char name[300];
	uint64_t ino, resume;
	uint8_t type;
	unsigned i, n;

	assert_non_null(w);
	memset(&dir, 0, sizeof(dir));
	dir.ino = 5;
	dir.mode = S_IFDIR | 0755;
	dir.dir_seq = 3; /* the engine may reserve 0..2 for itself */
	t = wtxn(f);
	assert_int_equal(idx_dir_is_empty(t, 5), 1);
	for (i = 0; i < 10000; i++) {
		n = (unsigned)snprintf(name, sizeof(name), "file-%u", i);
		assert_int_equal(idx_dirent_add(t, &dir, name, n, 100000 + i, i % 2 ? 4 : 8), 0);
	}
	assert_int_equal(dir.dir_seq, 10003);
	assert_int_equal(idx_dirent_add(t, &dir, "file-7", 6, 1, 8), -EEXIST);
	assert_int_equal(dir.dir_seq, 10003);
	assert_int_equal(idx_inode_put(t, &dir), 0);
	assert_int_equal(idx_dir_is_empty(t, 5), 0);
	assert_int_equal(idx_dir_is_empty(t, 4), 1);
	assert_int_equal(idx_dir_is_empty(t, 6), 1);
	assert_int_equal(idx_txn_commit(t), 0);

	t = rtxn(f);
	assert_int_equal(idx_dirent_lookup(t, 5, "file-4242", 9, &ino, &type), 0);
	assert_int_equal(ino, 104242);
	assert_int_equal(type, 8);
	assert_int_equal(idx_dirent_lookup(t, 5, "file-10000", 10, &ino, &type), -ENOENT);
	assert_int_equal(idx_dirent_lookup(t, 4, "file-1", 6, &ino, &type), -ENOENT);
	memset(name, 'a', sizeof(name));
	assert_int_equal(idx_dirent_lookup(t, 5, name, 256, &ino, &type), -ENAMETOOLONG);
	assert_int_equal(idx_dirent_lookup(t, 5, name, 0, &ino, &type), -EINVAL);
	assert_int_equal(idx_dirent_lookup(t, 5, "a/b", 3, &ino, &type), -EINVAL);
	assert_int_equal(idx_dir_iter(t, 5, 0, walk_cb, w), 0);
	assert_int_equal(w->n, 10000);
	idx_txn_abort(t);

	/* Read half, delete entries on both sides of the resume point, add new
	 * ones: the resumed walk sees each survivor exactly once, plus the new. */
	memset(w, 0, sizeof(*w));
	w->stop_after = 5000;
	t = rtxn(f);
	assert_int_equal(idx_dir_iter(t, 5, 0, walk_cb, w), 12345);
	idx_txn_abort(t);
	resume = w->last_seq + 1;
	t = wtxn(f);
	assert_int_equal(idx_inode_get(t, 5, &dir), 0);
	for (i = 0; i < 10000; i += 3) {
		n = (unsigned)snprintf(name, sizeof(name), "file-%u", i);
		assert_int_equal(idx_dirent_del(t, 5, name, n), 0);
	}
	assert_int_equal(idx_dirent_del(t, 5, "file-0", 6), -ENOENT);
	/* Re-add two deleted names: they get new seqs, after the resume point. */
	assert_int_equal(idx_dirent_add(t, &dir, "file-3", 6, 100003, 4), 0);
	assert_int_equal(idx_dirent_add(t, &dir, "file-9999", 9, 109999, 4), 0);
	assert_int_equal(idx_inode_put(t, &dir), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	w->stop_after = 0;
	w->seen[3] = false; /* deleted and added again: a new entry */
	t = rtxn(f);
	assert_int_equal(idx_dir_iter(t, 5, resume, walk_cb, w), 0);
	idx_txn_abort(t);
	for (i = 0; i < 10000; i++) {
		bool want = i < 5000 || i % 3 != 0 || i == 3 || i == 9999;

		assert_true(w->seen[i] == want);
	}

	/* Empty it. */
	t = wtxn(f);
	for (i = 0; i < 10000; i++) {
		int rc;

		n = (unsigned)snprintf(name, sizeof(name), "file-%u", i);
		rc = idx_dirent_del(t, 5, name, n);
		assert_true(rc == 0 || (rc == -ENOENT && i % 3 == 0));
	}
	assert_int_equal(idx_dir_is_empty(t, 5), 1);
	assert_int_equal(idx_txn_commit(t), 0);
	free(w);
}

/* --- extents, chunks, packs ----------------------------------------------- */

struct ext_list {
	struct idx_extent e[64];
	unsigned n;
};

static int ext_collect(void *arg, const struct idx_extent *e)
{
	struct ext_list *l = arg;

	assert_true(l->n < 64);
	l->e[l->n++] = *e;
	return 0;
}

static unsigned chunk_refs(struct idx_txn *t, unsigned id)
{
	struct idx_chunk c;
	uint8_t fp[FP_LEN];
	int rc;

	make_fp(fp, id);
	rc = idx_chunk_get(t, fp, &c);
	if (rc == -ENOENT)
		return 0;
	assert_int_equal(rc, 0);
	return c.refcount;
}

static bool chunk_exists(struct idx_txn *t, unsigned id)
{
	struct idx_chunk c;
	uint8_t fp[FP_LEN];

	make_fp(fp, id);
	return idx_chunk_get(t, fp, &c) == 0;
}

static void test_extents(void **state)
{
	struct fixture *f = *state;
	struct idx_chunk c, got;
	struct idx_inode in;
	struct idx_extent e;
	struct idx_stats st;
	struct idx_pack p;
	struct ext_list l;
	struct idx_txn *t;
	uint64_t charge;

	t = wtxn(f);
	make_file(&in, 20, 1 << 20);
	make_chunk(&c, 1); /* raw 4196, frame 2099, pack 2 */
	assert_int_equal(idx_chunk_insert(t, &c), 0);
	assert_int_equal(idx_chunk_insert(t, &c), -EEXIST);
	assert_int_equal(idx_chunk_get(t, c.fp, &got), 0);
	assert_memory_equal(&got, &c, sizeof(c));
	assert_int_equal(idx_pack_get(t, 2, &p), 0);
	assert_int_equal(p.live_bytes, c.frame_len);

	/* Map the whole chunk at 0 and the second half of it at 10000. */
	assert_int_equal(idx_file_map(t, &in, 0, c.raw_len, c.fp, 0), 0);
	assert_int_equal(idx_file_map(t, &in, 10000, 2000, c.fp, 2196), 0);
	assert_int_equal(idx_file_map(t, &in, 10000, 10, c.fp, 0), -EEXIST);
	assert_int_equal(idx_file_map(t, &in, 9000, 1001, c.fp, 0), -EEXIST);
	assert_int_equal(idx_file_map(t, &in, 11999, 1, c.fp, 0), -EEXIST);
	assert_int_equal(idx_file_map(t, &in, 20000, 2001, c.fp, 2196), -EINVAL);
	assert_int_equal(idx_file_map(t, &in, 20000, 0, c.fp, 0), -EINVAL);
	make_fp(e.fp, 999);
	assert_int_equal(idx_file_map(t, &in, 20000, 1, e.fp, 0), -ENOENT);
	assert_int_equal(chunk_refs(t, 1), 2);
	charge = (uint64_t)c.frame_len * c.raw_len / c.raw_len +
	         (uint64_t)c.frame_len * 2000 / c.raw_len;
	assert_int_equal(in.stored_bytes, charge);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.mapped_bytes, c.raw_len + 2000);

	assert_int_equal(idx_extent_find(t, 20, 0, &e), 0);
	assert_int_equal(e.off, 0);
	assert_int_equal(idx_extent_find(t, 20, 4195, &e), 0);
	assert_int_equal(e.off, 0);
	assert_int_equal(idx_extent_find(t, 20, 4196, &e), 0);
	assert_int_equal(e.off, 10000);
	assert_int_equal(idx_extent_find(t, 20, 11000, &e), 0);
	assert_int_equal(e.off, 10000);
	assert_int_equal(e.chunk_off, 2196);
	assert_int_equal(idx_extent_find(t, 20, 12000, &e), -ENOENT);
	assert_int_equal(idx_extent_find(t, 19, 0, &e), -ENOENT); /* not another file's */
	assert_int_equal(idx_extent_find(t, 21, 0, &e), -ENOENT);

	/* Split the first extent: [0,1000) [1000,1100) gone [1100,4196). */
	assert_int_equal(idx_file_punch(t, &in, 1000, 1100), 0);
	assert_int_equal(chunk_refs(t, 1), 3);
	memset(&l, 0, sizeof(l));
	assert_int_equal(idx_extent_iter(t, 20, 0, UINT64_MAX, ext_collect, &l), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.e[0].off, 0);
	assert_int_equal(l.e[0].len, 1000);
	assert_int_equal(l.e[0].chunk_off, 0);
	assert_int_equal(l.e[1].off, 1100);
	assert_int_equal(l.e[1].len, 3096);
	assert_int_equal(l.e[1].chunk_off, 1100);
	assert_int_equal(l.e[2].off, 10000);
	memset(&l, 0, sizeof(l));
	assert_int_equal(idx_extent_iter(t, 20, 1050, 1101, ext_collect, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.e[0].off, 1100);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.mapped_bytes, c.raw_len + 2000 - 100);

	/* Re-map the hole and punch it again: charge is exactly restored. */
	charge = in.stored_bytes;
	assert_int_equal(idx_file_map(t, &in, 1000, 100, c.fp, 1000), 0);
	assert_int_equal(idx_file_punch(t, &in, 1000, 1100), 0);
	assert_int_equal(in.stored_bytes, charge);

	/* Trim the left end and right end, then drop everything. */
	assert_int_equal(idx_file_punch(t, &in, 900, 1200), 0);
	assert_int_equal(idx_file_punch(t, &in, 11000, 50000), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(idx_extent_iter(t, 20, 0, UINT64_MAX, ext_collect, &l), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.e[0].len, 900);
	assert_int_equal(l.e[1].off, 1200);
	assert_int_equal(l.e[1].chunk_off, 1200);
	assert_int_equal(l.e[1].len, 2996);
	assert_int_equal(l.e[2].len, 1000);
	assert_int_equal(chunk_refs(t, 1), 3);
	assert_int_equal(idx_file_punch(t, &in, 0, UINT64_MAX), 0);
	assert_int_equal(in.stored_bytes, 0);
	/* At zero the chunk lives on until commit: an overwrite with the same
	 * data punches, then maps it again. */
	assert_int_equal(chunk_refs(t, 1), 0);
	assert_true(chunk_exists(t, 1));
	assert_int_equal(idx_file_map(t, &in, 0, 10, c.fp, 0), 0);
	assert_int_equal(idx_file_punch(t, &in, 0, 10), 0);
	assert_int_equal(idx_txn_commit(t), 0);

	t = wtxn(f);
	assert_false(chunk_exists(t, 1));
	assert_int_equal(idx_pack_get(t, 2, &p), 0);
	assert_int_equal(p.live_bytes, 0);
	assert_int_equal(p.dead_bytes, c.frame_len);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.mapped_bytes, 0);
	assert_int_equal(st.chunks, 0);
	assert_int_equal(st.unique_bytes, 0);
	assert_int_equal(st.stored_bytes, 0);
	assert_int_equal(idx_chunk_unref(t, c.fp), -ENOENT);
	assert_int_equal(idx_txn_commit(t), 0);
}

static void test_chunk_refs(void **state)
{
	struct fixture *f = *state;
	struct idx_chunk a, b, b2, got;
	struct idx_inode in;
	struct idx_stats st, st2;
	struct idx_pack p;
	struct idx_txn *t;

	t = wtxn(f);
	make_file(&in, 30, 100000);
	assert_int_equal(idx_inode_put(t, &in), 0);
	make_chunk(&a, 10);
	make_chunk(&b, 11);
	b.flags = IDX_CHUNK_HAS_REF;
	memcpy(b.ref_fp, a.fp, FP_LEN);
	assert_int_equal(idx_chunk_insert(t, &b), -ENOENT); /* ref missing */
	assert_int_equal(idx_chunk_insert(t, &a), 0);
	assert_int_equal(idx_chunk_insert(t, &b), 0);
	assert_int_equal(chunk_refs(t, 10), 1);
	assert_int_equal(idx_chunk_get(t, b.fp, &got), 0);
	assert_memory_equal(got.ref_fp, a.fp, FP_LEN);
	assert_int_equal(got.flags, IDX_CHUNK_HAS_REF);
	assert_int_equal(idx_file_map(t, &in, 0, b.raw_len, b.fp, 0), 0);
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.ref_chunks, 1);
	assert_int_equal(st.ref_raw_bytes, b.raw_len);
	assert_int_equal(st.ref_stored_bytes, b.frame_len);
	assert_int_equal(st.chunks, 2);
	assert_int_equal(st.level_raw[a.level], a.raw_len);
	assert_int_equal(st.level_raw[b.level], b.raw_len);
	assert_int_equal(st.dtype_stored[b.dtype], b.frame_len);
	/* default level 2: level 1 (fast) is pending, raw (0) is not. */
	assert_int_equal(st.pending_bytes, a.level == 1 ? a.raw_len : b.raw_len);
	assert_int_equal(idx_txn_commit(t), 0);

	/* The recount from the records agrees with the kept counters; a
	 * refcount can be set (fsck's repair), 0 deletes at commit. */
	t = wtxn(f);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(idx_stats_count(t, &st2), 0);
	assert_memory_equal(&st, &st2, sizeof(st));
	assert_int_equal(idx_chunk_refcount_set(t, b.fp, 7), 0);
	assert_int_equal(chunk_refs(t, 11), 7);
	assert_int_equal(idx_chunk_refcount_set(t, b.fp, 1), 0);
	make_fp(got.fp, 999);
	assert_int_equal(idx_chunk_refcount_set(t, got.fp, 1), -ENOENT);
	make_chunk(&b2, 12); /* a leak: counted once, used by nothing */
	b2.refcount = 1;
	b2.flags = IDX_CHUNK_HAS_REF;
	memcpy(b2.ref_fp, a.fp, FP_LEN);
	assert_int_equal(idx_chunk_insert(t, &b2), 0);
	assert_int_equal(chunk_refs(t, 10), 2);
	assert_int_equal(idx_chunk_refcount_set(t, b2.fp, 0), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	t = wtxn(f);
	assert_false(chunk_exists(t, 12));
	assert_int_equal(chunk_refs(t, 10), 1);
	assert_int_equal(idx_stats_count(t, &st2), 0);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_memory_equal(&st, &st2, sizeof(st));
	assert_int_equal(idx_txn_commit(t), 0);
	t = rtxn(f);
	assert_int_equal(idx_chunk_refcount_set(t, b.fp, 3), -EROFS);
	idx_txn_abort(t);

	/* Relocate b: recompressed to mix, no reference, another pack. */
	t = wtxn(f);
	b2 = b;
	b2.level = 2;
	b2.flags = 0;
	b2.pack_id = 7;
	b2.frame_len = 1000;
	b2.refcount = 12345; /* ignored */
	assert_int_equal(idx_chunk_relocate(t, &b2), 0);
	assert_int_equal(chunk_refs(t, 10), 0); /* a lost its only user */
	assert_int_equal(chunk_refs(t, 11), 1);
	b2.raw_len++;
	assert_int_equal(idx_chunk_relocate(t, &b2), -EINVAL);
	assert_int_equal(idx_txn_commit(t), 0);

	t = wtxn(f);
	assert_false(chunk_exists(t, 10));
	assert_int_equal(idx_pack_get(t, 7, &p), 0);
	assert_int_equal(p.live_bytes, 1000);
	assert_int_equal(idx_pack_get(t, b.pack_id, &p), 0);
	assert_int_equal(p.dead_bytes, b.frame_len + (a.pack_id == b.pack_id ? a.frame_len : 0));
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.chunks, 1);
	assert_int_equal(st.ref_chunks, 0);
	assert_int_equal(st.ref_raw_bytes, 0);
	assert_int_equal(st.ref_stored_bytes, 0);
	assert_int_equal(st.stored_bytes, 1000);
	assert_int_equal(st.pending_bytes, 0);
	assert_int_equal(st.level_raw[2], b.raw_len);
	assert_int_equal(idx_txn_commit(t), 0);

	/* Deleting the inode releases everything. */
	t = wtxn(f);
	assert_int_equal(idx_inode_delete(t, 30), 0);
	assert_int_equal(chunk_refs(t, 11), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	t = wtxn(f);
	assert_false(chunk_exists(t, 11));
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.chunks, 0);
	assert_int_equal(st.mapped_bytes, 0);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.stored_bytes, 0);
	assert_int_equal(idx_pack_get(t, 7, &p), 0);
	assert_int_equal(p.live_bytes, 0);
	assert_int_equal(p.dead_bytes, 1000);
	assert_int_equal(idx_pack_del(t, 7), 0);
	assert_int_equal(idx_pack_get(t, 7, &p), -ENOENT);
	assert_int_equal(idx_txn_commit(t), 0);
}

static void test_chunk_ref_chain(void **state)
{
	struct fixture *f = *state;
	struct idx_chunk c[4];
	struct idx_inode in;
	struct idx_stats st;
	struct idx_txn *t;
	unsigned i;

	t = wtxn(f);
	make_file(&in, 40, 0);
	for (i = 0; i < 4; i++) {
		make_chunk(&c[i], 50 + i);
		if (i) {
			c[i].flags = IDX_CHUNK_HAS_REF;
			memcpy(c[i].ref_fp, c[i - 1].fp, FP_LEN);
		}
		assert_int_equal(idx_chunk_insert(t, &c[i]), 0);
	}
	/* Heights count reverse deltas only: forward ones leave them 0. */
	for (i = 0; i < 4; i++) {
		struct idx_chunk g;

		assert_int_equal(idx_chunk_get(t, c[i].fp, &g), 0);
		assert_int_equal(g.height, 0);
	}
	/* A forward delta turned around against the same reference (only
	 * the flag changes) raises that reference's height as a new reverse
	 * delta does (an audit found it skipped: rebase never does this) */
	{
		struct idx_chunk r = c[1], g;

		r.flags = IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED;
		assert_int_equal(idx_chunk_relocate(t, &r), 0);
		assert_int_equal(idx_chunk_get(t, c[0].fp, &g), 0);
		assert_int_equal(g.height, 1);
		r = c[1];
		assert_int_equal(idx_chunk_relocate(t, &r), 0);
	}
	/* A reference that would close a loop is refused; reversing the
	 * chain's top link (3 becomes full, 2 codes against 3) is not. */
	{
		struct idx_chunk r = c[0], g;

		r.flags = IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED;
		memcpy(r.ref_fp, c[3].fp, FP_LEN);
		assert_int_equal(idx_chunk_relocate(t, &r), -ELOOP);
		r = c[3];
		r.flags = 0;
		assert_int_equal(idx_chunk_relocate(t, &r), 0);
		r = c[2];
		r.flags = IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED;
		memcpy(r.ref_fp, c[3].fp, FP_LEN);
		assert_int_equal(idx_chunk_relocate(t, &r), 0);
		assert_int_equal(idx_chunk_get(t, c[3].fp, &g), 0);
		assert_int_equal(g.height, 1);
		assert_int_equal(idx_chunk_get(t, c[2].fp, &g), 0);
		assert_int_equal(g.flags, IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED);
		/* 1 -> 2 -> 3 as reverse deltas: 3 is two links above 1 */
		r = c[1];
		r.flags = IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED;
		memcpy(r.ref_fp, c[2].fp, FP_LEN);
		assert_int_equal(idx_chunk_relocate(t, &r), 0);
		assert_int_equal(idx_chunk_get(t, c[3].fp, &g), 0);
		assert_int_equal(g.height, 2);
		r = c[1];
		assert_int_equal(idx_chunk_relocate(t, &r), 0);
		r = c[2];
		r.flags = IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED;
		memcpy(r.ref_fp, c[3].fp, FP_LEN);
		r.flags = IDX_CHUNK_REVERSED;
		assert_int_equal(idx_chunk_relocate(t, &r), -EINVAL);
		/* back as it was */
		r = c[2];
		assert_int_equal(idx_chunk_relocate(t, &r), 0);
		r = c[3];
		assert_int_equal(idx_chunk_relocate(t, &r), 0);
	}
	/* Map the head of the chain and chunk 1 directly too. */
	assert_int_equal(idx_file_map(t, &in, 0, 100, c[3].fp, 0), 0);
	assert_int_equal(idx_file_map(t, &in, 100, 100, c[1].fp, 0), 0);
	assert_int_equal(chunk_refs(t, 51), 2);
	assert_int_equal(idx_file_punch(t, &in, 0, 100), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	t = wtxn(f);
	assert_false(chunk_exists(t, 53));
	assert_false(chunk_exists(t, 52));
	assert_int_equal(chunk_refs(t, 51), 1);
	assert_int_equal(chunk_refs(t, 50), 1);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.ref_chunks, 1);
	assert_int_equal(st.ref_raw_bytes, c[1].raw_len);
	assert_int_equal(st.ref_stored_bytes, c[1].frame_len);
	assert_int_equal(idx_file_punch(t, &in, 0, 1000), 0);
	/* Inserted, never mapped: swept at commit too. */
	make_chunk(&c[0], 60);
	assert_int_equal(idx_chunk_insert(t, &c[0]), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	t = wtxn(f);
	assert_false(chunk_exists(t, 50));
	assert_false(chunk_exists(t, 60));
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.chunks, 0);
	assert_int_equal(st.ref_chunks, 0);
	assert_int_equal(st.ref_raw_bytes, 0);
	assert_int_equal(st.ref_stored_bytes, 0);
	assert_int_equal(idx_txn_commit(t), 0);
}

/* The stats record as written before ref_raw_bytes / ref_stored_bytes: the
 * first 22 counters (files .. pending_bytes), big-endian. */
static void stats_put_v1(struct fixture *f, const struct idx_stats *s)
{
	uint64_t v[22];
	uint8_t b[22 * 8];
	unsigned i, n = 0;

	v[n++] = s->files;
	v[n++] = s->logical_bytes;
	v[n++] = s->mapped_bytes;
	v[n++] = s->chunks;
	v[n++] = s->unique_bytes;
	v[n++] = s->stored_bytes;
	v[n++] = s->ref_chunks;
	for (i = 0; i < IDX_LEVEL_COUNT; i++)
		v[n++] = s->level_raw[i];
	for (i = 0; i < IDX_LEVEL_COUNT; i++)
		v[n++] = s->level_stored[i];
	for (i = 0; i < IDX_DTYPE_COUNT; i++)
		v[n++] = s->dtype_raw[i];
	for (i = 0; i < IDX_DTYPE_COUNT; i++)
		v[n++] = s->dtype_stored[i];
	v[n++] = s->pending_bytes;
	assert_int_equal(n, 22);
	for (i = 0; i < n; i++)
		for (unsigned k = 0; k < 8; k++)
			b[8 * i + k] = (uint8_t)(v[i] >> (56 - 8 * k));
	raw_put(f, "super", "stats", 5, b, sizeof(b));
}

/* An older, shorter stats record still reads: the two ref byte counters
 * are recounted from the chunk records (read-only and write transactions
 * alike), a write transaction stores the full record, and deleting the
 * series-coded chunks afterwards brings every counter back to zero. */
static void put_be(uint8_t *b, uint64_t v, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		b[k] = (uint8_t)(v >> (8 * (n - 1 - k)));
}

/* Format 1 chunk records (no height, no alone_len: 27 bytes, 59 with a
 * reference) still read, as height 0 and alone_len 0; so do format 2
 * records with a reference but no alone_len (60 bytes, written before
 * 35f208e added it); other lengths are -EIO. */
static void test_chunk_v1_record(void **state)
{
	struct fixture *f = *state;
	struct idx_chunk c, got;
	struct idx_txn *t;
	uint8_t b[64];

	memset(b, 0, sizeof(b));
	make_chunk(&c, 90);
	c.refcount = 3;
	c.flags = IDX_CHUNK_HAS_REF;
	make_fp(c.ref_fp, 91);
	put_be(b, c.pack_id, 4);
	put_be(b + 4, c.pack_off, 8);
	put_be(b + 12, c.frame_len, 4);
	put_be(b + 16, c.raw_len, 4);
	put_be(b + 20, c.refcount, 4);
	b[24] = c.level;
	b[25] = c.dtype;
	b[26] = c.flags;
	memcpy(b + 27, c.ref_fp, FP_LEN);
	t = wtxn(f);
	assert_int_equal(idx_raw_put(t, "chunks", c.fp, FP_LEN, b, 27 + FP_LEN), 0);
	assert_int_equal(idx_chunk_get(t, c.fp, &got), 0);
	assert_memory_equal(&got, &c, sizeof(c)); /* height, alone_len 0 */
	b[26] = 0;
	assert_int_equal(idx_raw_put(t, "chunks", c.fp, FP_LEN, b, 27), 0);
	assert_int_equal(idx_chunk_get(t, c.fp, &got), 0);
	assert_int_equal(got.flags, 0);
	assert_int_equal(got.height, 0);
	assert_int_equal(idx_raw_put(t, "chunks", c.fp, FP_LEN, b, 26), 0);
	assert_int_equal(idx_chunk_get(t, c.fp, &got), -EIO);
	b[26] = IDX_CHUNK_HAS_REF; /* 61 bytes: no format */
	assert_int_equal(idx_raw_put(t, "chunks", c.fp, FP_LEN, b, 61), 0);
	assert_int_equal(idx_chunk_get(t, c.fp, &got), -EIO);
	/* 60: the height byte, then the reference, no alone_len */
	c.height = 2;
	b[27] = c.height;
	memcpy(b + 28, c.ref_fp, FP_LEN);
	assert_int_equal(idx_raw_put(t, "chunks", c.fp, FP_LEN, b, 28 + FP_LEN), 0);
	assert_int_equal(idx_chunk_get(t, c.fp, &got), 0);
	assert_memory_equal(&got, &c, sizeof(c)); /* alone_len 0 */
	idx_txn_abort(t);
}

/* Format 3 chunk records keep the frame's checksum (36 bytes, 72 with a
 * reference); a record without one (relocated from an older store before
 * gc learnt it) is still written in the format 2 layout (28/64), and reads
 * back with has_sum false. */
static void test_chunk_sum(void **state)
{
	struct fixture *f = *state;
	struct idx_chunk c, r, got;
	struct idx_txn *t;
	uint8_t b[128];

	make_chunk(&c, 95);
	c.sum = 0x0123456789abcdefull;
	c.has_sum = true;
	make_chunk(&r, 96);
	r.flags = IDX_CHUNK_HAS_REF;
	make_fp(r.ref_fp, 95);
	r.sum = 0xfedcba9876543210ull;
	r.has_sum = true;
	t = wtxn(f);
	assert_int_equal(idx_chunk_insert(t, &c), 0);
	assert_int_equal(idx_chunk_insert(t, &r), 0);
	assert_int_equal(idx_raw_get(t, "chunks", c.fp, FP_LEN, b, sizeof(b)), 36);
	assert_int_equal(b[28], 0x01);
	assert_int_equal(b[35], 0xef);
	assert_int_equal(idx_raw_get(t, "chunks", r.fp, FP_LEN, b, sizeof(b)), 72);
	assert_int_equal(idx_chunk_get(t, c.fp, &got), 0);
	assert_true(got.has_sum);
	assert_true(got.sum == c.sum);
	assert_int_equal(idx_chunk_get(t, r.fp, &got), 0);
	assert_true(got.has_sum && got.sum == r.sum && (got.flags & IDX_CHUNK_HAS_REF));
	assert_memory_equal(got.ref_fp, r.ref_fp, FP_LEN);
	/* relocated without a checksum: the format 2 layout */
	assert_int_equal(idx_chunk_get(t, r.fp, &got), 0);
	got.has_sum = false;
	got.sum = 0;
	assert_int_equal(idx_chunk_relocate(t, &got), 0);
	assert_int_equal(idx_raw_get(t, "chunks", r.fp, FP_LEN, b, sizeof(b)), 64);
	assert_int_equal(idx_chunk_get(t, r.fp, &got), 0);
	assert_false(got.has_sum);
	assert_true(got.sum == 0);
	idx_txn_abort(t);
}

static void test_stats_v1_record(void **state)
{
	struct fixture *f = *state;
	struct idx_chunk c[3];
	struct idx_inode in;
	struct idx_stats st, want, zero;
	struct idx_txn *t;
	unsigned i;

	t = wtxn(f);
	make_file(&in, 70, 3 * 4096);
	for (i = 0; i < 3; i++) {
		make_chunk(&c[i], 80 + i);
		if (i) {
			c[i].flags = IDX_CHUNK_HAS_REF;
			memcpy(c[i].ref_fp, c[i - 1].fp, FP_LEN);
		}
		assert_int_equal(idx_chunk_insert(t, &c[i]), 0);
		assert_int_equal(idx_file_map(t, &in, 4096 * i, 100, c[i].fp, 0), 0);
	}
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_stats_get(t, &want), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	assert_int_equal(want.ref_chunks, 2);
	assert_int_equal(want.ref_raw_bytes, c[1].raw_len + c[2].raw_len);
	assert_int_equal(want.ref_stored_bytes, c[1].frame_len + c[2].frame_len);

	/* Old record with series-coded chunks: recounted. */
	stats_put_v1(f, &want);
	t = rtxn(f);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_memory_equal(&st, &want, sizeof(st));
	idx_txn_abort(t);
	t = wtxn(f);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_memory_equal(&st, &want, sizeof(st));
	assert_int_equal(idx_txn_commit(t), 0); /* writes the full record */
	reopen(f);
	t = rtxn(f);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_memory_equal(&st, &want, sizeof(st));
	idx_txn_abort(t);

	/* Old record, then deletes in the same transaction: no underflow. */
	stats_put_v1(f, &want);
	t = wtxn(f);
	assert_int_equal(idx_file_punch(t, &in, 4096 * 2, 4096 * 3), 0);
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	t = rtxn(f);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_int_equal(st.ref_chunks, 1);
	assert_int_equal(st.ref_raw_bytes, c[1].raw_len);
	assert_int_equal(st.ref_stored_bytes, c[1].frame_len);
	idx_txn_abort(t);
	t = wtxn(f);
	assert_int_equal(idx_inode_delete(t, 70), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	t = rtxn(f);
	memset(&zero, 0, sizeof(zero));
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_memory_equal(&st, &zero, sizeof(st));
	idx_txn_abort(t);

	/* Old record without series-coded chunks: the counters are zero. */
	stats_put_v1(f, &zero);
	t = rtxn(f);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_memory_equal(&st, &zero, sizeof(st));
	idx_txn_abort(t);

	/* Neither length: corrupt. */
	raw_put(f, "super", "stats", 5, "0123456789abcdef", 16);
	t = rtxn(f);
	assert_int_equal(idx_stats_get(t, &st), -EIO);
	idx_txn_abort(t);
}

/* --- random operations, stats checked against a recount ------------------- */

#define R_INODES 6
#define R_CHUNKS 40
#define R_SPAN (256u << 10)

struct recount {
	struct idx_txn *t;
	struct idx_stats st;
	unsigned refs[R_CHUNKS];
	uint64_t pack_live[4];
	uint64_t ino;
	uint64_t charge;
};

static int rc_extent(void *arg, const struct idx_extent *e)
{
	struct recount *r = arg;
	struct idx_chunk c;

	assert_int_equal(idx_chunk_get(r->t, e->fp, &c), 0);
	assert_true(e->chunk_off + e->len <= c.raw_len);
	r->refs[fp_id(e->fp)]++;
	r->st.mapped_bytes += e->len;
	r->charge += (uint64_t)c.frame_len * e->len / c.raw_len;
	return 0;
}

static int rc_inode(void *arg, const struct idx_inode *in)
{
	struct recount *r = arg;

	if (S_ISREG(in->mode)) {
		r->st.files++;
		r->st.logical_bytes += in->size;
	}
	r->charge = 0;
	assert_int_equal(idx_extent_iter(r->t, in->ino, 0, UINT64_MAX, rc_extent, r), 0);
	assert_int_equal(in->stored_bytes, r->charge);
	return 0;
}

static int rc_chunk_refs(void *arg, const struct idx_chunk *c)
{
	struct recount *r = arg;

	if (c->flags & IDX_CHUNK_HAS_REF)
		r->refs[fp_id(c->ref_fp)]++;
	return 0;
}

static int rc_chunk(void *arg, const struct idx_chunk *c)
{
	struct recount *r = arg;

	assert_int_equal(c->refcount, r->refs[fp_id(c->fp)]);
	r->refs[fp_id(c->fp)] = 0;
	r->st.chunks++;
	r->st.unique_bytes += c->raw_len;
	r->st.stored_bytes += c->frame_len;
	if (c->flags & IDX_CHUNK_HAS_REF) {
		r->st.ref_chunks++;
		r->st.ref_raw_bytes += c->raw_len;
		r->st.ref_stored_bytes += c->frame_len;
		if (c->alone_len > c->frame_len)
			r->st.ref_saved_bytes += c->alone_len - c->frame_len;
		r->st.ref_fwd_chunks += !(c->flags & IDX_CHUNK_REVERSED);
	}
	r->st.level_raw[c->level] += c->raw_len;
	r->st.level_stored[c->level] += c->frame_len;
	r->st.dtype_raw[c->dtype] += c->raw_len;
	r->st.dtype_stored[c->dtype] += c->frame_len;
	if (c->level == 1)
		r->st.pending_bytes += c->raw_len;
	r->pack_live[c->pack_id] += c->frame_len;
	return 0;
}

static int rc_pack(void *arg, const struct idx_pack *p)
{
	struct recount *r = arg;

	assert_true(p->id < 4);
	assert_int_equal(p->live_bytes, r->pack_live[p->id]);
	r->pack_live[p->id] = 0;
	return 0;
}

static void check_recount(struct idx_txn *t, const uint64_t inserted[4])
{
	struct recount r;
	struct idx_stats st;
	struct idx_pack p;
	unsigned i;

	memset(&r, 0, sizeof(r));
	r.t = t;
	assert_int_equal(idx_inode_iter(t, rc_inode, &r), 0);
	assert_int_equal(idx_chunk_iter(t, rc_chunk_refs, &r), 0);
	assert_int_equal(idx_chunk_iter(t, rc_chunk, &r), 0);
	for (i = 0; i < R_CHUNKS; i++)
		assert_int_equal(r.refs[i], 0); /* no reference to a missing chunk */
	for (i = 1; i < 4; i++) {
		if (idx_pack_get(t, i, &p) == 0)
			assert_int_equal(p.dead_bytes, inserted[i] - r.pack_live[i]);
	}
	assert_int_equal(idx_pack_iter(t, rc_pack, &r), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(r.pack_live[i], 0);
	assert_int_equal(idx_stats_get(t, &st), 0);
	assert_memory_equal(&st, &r.st, sizeof(st));
}

static uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Byte-level model of a file map: (chunk id + 1) << 16 | offset in chunk,
 * 0 for a hole. */
#define M_LEN (R_SPAN + (32u << 10))

struct model_check {
	const uint32_t *m;
	uint64_t mapped;
};

static int model_extent(void *arg, const struct idx_extent *e)
{
	struct model_check *mc = arg;
	uint32_t i, want = (fp_id(e->fp) + 1) << 16 | e->chunk_off;

	assert_true(e->off + e->len <= M_LEN);
	for (i = 0; i < e->len; i++)
		assert_int_equal(mc->m[e->off + i], want + i);
	mc->mapped += e->len;
	return 0;
}

static void model_check(struct idx_txn *t, uint64_t ino, const uint32_t *m)
{
	struct model_check mc = { m, 0 };
	uint64_t i, want = 0;

	for (i = 0; i < M_LEN; i++)
		want += m[i] != 0;
	assert_int_equal(idx_extent_iter(t, ino, 0, UINT64_MAX, model_extent, &mc), 0);
	assert_int_equal(mc.mapped, want);
}

static void model_punch(uint32_t *m, uint64_t start, uint64_t end)
{
	if (end > M_LEN)
		end = M_LEN;
	if (start < end)
		memset(m + start, 0, (end - start) * sizeof(*m));
}

static void test_random_stats(void **state)
{
	struct fixture *f = *state;
	struct idx_inode in[R_INODES];
	struct idx_chunk c;
	struct idx_txn *t;
	uint64_t rs = 12345, inserted[4] = { 0 };
	uint32_t *model = calloc(R_INODES, M_LEN * sizeof(uint32_t));
	unsigned step, i;

	assert_non_null(model);
	t = wtxn(f);
	for (i = 0; i < R_INODES; i++) {
		make_file(&in[i], 100 + i, 0);
		assert_int_equal(idx_inode_put(t, &in[i]), 0);
	}
	for (step = 0; step < 4000; step++) {
		unsigned op = (unsigned)(rnd_next(&rs) % 100);
		unsigned which = (unsigned)(rnd_next(&rs) % R_INODES);
		struct idx_inode *ip = &in[which];
		uint32_t *m = model + (size_t)which * M_LEN;
		uint64_t off = rnd_next(&rs) % R_SPAN;

		if (op < 55) {
			unsigned id = (unsigned)(rnd_next(&rs) % R_CHUNKS);
			uint32_t coff, len;

			make_chunk(&c, id);
			coff = (uint32_t)(rnd_next(&rs) % c.raw_len);
			len = 1 + (uint32_t)(rnd_next(&rs) % (c.raw_len - coff));
			if (idx_chunk_get(t, c.fp, &c) == -ENOENT) {
				/* Some chunks are coded against the previous one. */
				if (id % 3 == 1 && chunk_refs(t, id - 1) > 0) {
					uint8_t rfp[FP_LEN];

					make_fp(rfp, id - 1);
					c.flags = IDX_CHUNK_HAS_REF;
					memcpy(c.ref_fp, rfp, FP_LEN);
					/* half of them with a measured alone size */
					c.alone_len = id % 2 ? c.frame_len + id : 0;
				}
				assert_int_equal(idx_chunk_insert(t, &c), 0);
				inserted[c.pack_id] += c.frame_len;
			}
			assert_int_equal(idx_file_punch(t, ip, off, off + len), 0);
			assert_int_equal(idx_file_map(t, ip, off, len, c.fp, coff), 0);
			for (i = 0; i < len; i++)
				m[off + i] = (id + 1) << 16 | (coff + i);
			if (off + len > ip->size)
				ip->size = off + len;
		} else if (op < 85) {
			uint64_t len = 1 + rnd_next(&rs) % 20000;

			assert_int_equal(idx_file_punch(t, ip, off, off + len), 0);
			model_punch(m, off, off + len);
		} else if (op < 92) {
			/* truncate */
			assert_int_equal(idx_file_punch(t, ip, off, UINT64_MAX), 0);
			model_punch(m, off, M_LEN);
			ip->size = off;
		} else if (op < 95) {
			assert_int_equal(idx_inode_delete(t, ip->ino), 0);
			model_punch(m, 0, M_LEN);
			make_file(ip, ip->ino, 0);
		} else if (op < 97) {
			assert_int_equal(idx_inode_put(t, ip), 0);
			assert_int_equal(idx_txn_commit(t), 0);
			t = wtxn(f);
			for (i = 0; i < R_INODES; i++)
				assert_int_equal(idx_inode_get(t, in[i].ino, &in[i]), 0);
			continue;
		}
		assert_int_equal(idx_inode_put(t, ip), 0);
		if (step % 500 == 499) {
			check_recount(t, inserted);
			for (i = 0; i < R_INODES; i++)
				model_check(t, in[i].ino, model + (size_t)i * M_LEN);
		}
	}
	check_recount(t, inserted);
	for (i = 0; i < R_INODES; i++)
		model_check(t, in[i].ino, model + (size_t)i * M_LEN);
	free(model);
	assert_int_equal(idx_txn_commit(t), 0);
	reopen(f);
	t = rtxn(f);
	check_recount(t, inserted);
	idx_txn_abort(t);

	/* Delete everything: all counters go back to zero. */
	t = wtxn(f);
	for (i = 0; i < R_INODES; i++)
		assert_int_equal(idx_inode_delete(t, in[i].ino), 0);
	check_recount(t, inserted);
	assert_int_equal(idx_txn_commit(t), 0);
	t = rtxn(f);
	{
		struct idx_stats st, zero;

		memset(&zero, 0, sizeof(zero));
		assert_int_equal(idx_stats_get(t, &st), 0);
		assert_memory_equal(&st, &zero, sizeof(st));
	}
	idx_txn_abort(t);
}

/* --- xattrs, symlinks, orphans -------------------------------------------- */

static void test_xattrs(void **state)
{
	struct fixture *f = *state;
	struct idx_inode in;
	struct idx_txn *t;
	char buf[256], name[300];
	static uint8_t big[(64 << 10) + 1];
	int n;

	t = wtxn(f);
	make_file(&in, 60, 0);
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_xattr_get(t, 60, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(idx_xattr_set(t, 60, "user.b", "hello", 5, 0), 0);
	assert_int_equal(idx_xattr_set(t, 60, "user.a", "", 0, XATTR_CREATE), 0);
	assert_int_equal(idx_xattr_set(t, 60, "user.a", "x", 1, XATTR_CREATE), -EEXIST);
	assert_int_equal(idx_xattr_set(t, 60, "user.c", "x", 1, XATTR_REPLACE), -ENODATA);
	assert_int_equal(idx_xattr_set(t, 60, "user.b", "world!", 6, XATTR_REPLACE), 0);
	assert_int_equal(idx_xattr_set(t, 61, "user.other", "o", 1, 0), 0);
	assert_int_equal(idx_xattr_get(t, 60, "user.b", NULL, 0), 6);
	assert_int_equal(idx_xattr_get(t, 60, "user.b", buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "world!", 6);
	assert_int_equal(idx_xattr_get(t, 60, "user.a", buf, sizeof(buf)), 0);
	assert_int_equal(idx_xattr_list(t, 60, NULL, 0), 14);
	assert_int_equal(idx_xattr_list(t, 60, buf, 13), -ERANGE);
	assert_int_equal(idx_xattr_list(t, 60, buf, sizeof(buf)), 14);
	assert_memory_equal(buf, "user.a\0user.b\0", 14);
	assert_int_equal(idx_xattr_list(t, 62, buf, sizeof(buf)), 0);
	memset(big, 'v', sizeof(big));
	assert_int_equal(idx_xattr_set(t, 60, "user.big", big, sizeof(big), 0), -E2BIG);
	assert_int_equal(idx_xattr_set(t, 60, "user.big", big, sizeof(big) - 1, 0), 0);
	n = idx_xattr_get(t, 60, "user.big", NULL, 0);
	assert_int_equal(n, 64 << 10);
	memset(name, 'n', sizeof(name));
	name[255] = '\0';
	assert_int_equal(idx_xattr_set(t, 60, name, "1", 1, 0), 0);
	name[255] = 'n';
	name[256] = '\0';
	assert_int_equal(idx_xattr_set(t, 60, name, "1", 1, 0), -ERANGE);
	assert_int_equal(idx_xattr_set(t, 60, "", "1", 1, 0), -EINVAL);
	assert_int_equal(idx_xattr_del(t, 60, "user.a"), 0);
	assert_int_equal(idx_xattr_del(t, 60, "user.a"), -ENODATA);
	assert_int_equal(idx_txn_commit(t), 0);

	t = wtxn(f);
	assert_int_equal(idx_inode_delete(t, 60), 0);
	assert_int_equal(idx_xattr_list(t, 60, NULL, 0), 0);
	assert_int_equal(idx_xattr_get(t, 61, "user.other", buf, sizeof(buf)), 1);
	assert_int_equal(idx_txn_commit(t), 0);
}

static void test_symlink_orphan(void **state)
{
	struct fixture *f = *state;
	struct idx_inode in;
	struct idx_txn *t;
	char buf[5000];
	static char target[4097];

	t = wtxn(f);
	memset(&in, 0, sizeof(in));
	in.ino = 70;
	in.mode = S_IFLNK | 0777;
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_symlink_get(t, 70, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(idx_symlink_put(t, 70, "../x/y", 6), 0);
	assert_int_equal(idx_symlink_get(t, 70, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "../x/y", 6);
	assert_int_equal(idx_symlink_get(t, 70, buf, 3), 6);
	memset(target, 't', sizeof(target));
	assert_int_equal(idx_symlink_put(t, 70, target, 4096), -ENAMETOOLONG);
	assert_int_equal(idx_symlink_put(t, 70, target, 4095), 0);
	assert_int_equal(idx_symlink_put(t, 70, target, 0), -EINVAL);
	assert_int_equal(idx_orphan_add(t, 70), 0);
	assert_int_equal(idx_orphan_add(t, 3), 0);
	assert_int_equal(idx_orphan_add(t, 90), 0);
	assert_int_equal(idx_orphan_del(t, 90), 0);
	assert_int_equal(idx_orphan_del(t, 90), -ENOENT);
	assert_int_equal(idx_txn_commit(t), 0);

	t = wtxn(f);
	assert_int_equal(idx_inode_delete(t, 70), 0);
	assert_int_equal(idx_symlink_get(t, 70, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(idx_orphan_del(t, 70), -ENOENT);
	assert_int_equal(idx_orphan_del(t, 3), 0);
	assert_int_equal(idx_txn_commit(t), 0);
}

struct orphans {
	uint64_t ino[8];
	unsigned n;
};

static int orphan_cb(void *arg, uint64_t ino)
{
	struct orphans *o = arg;

	assert_true(o->n < 8);
	o->ino[o->n++] = ino;
	return ino == 1000 ? 7 : 0;
}

static void test_orphan_iter(void **state)
{
	struct fixture *f = *state;
	struct orphans o = { .n = 0 };
	struct idx_txn *t;

	t = wtxn(f);
	assert_int_equal(idx_orphan_add(t, 500), 0);
	assert_int_equal(idx_orphan_add(t, 4), 0);
	assert_int_equal(idx_orphan_add(t, 1ull << 40), 0);
	assert_int_equal(idx_orphan_iter(t, orphan_cb, &o), 0);
	assert_int_equal(o.n, 3);
	assert_int_equal(o.ino[0], 4);
	assert_int_equal(o.ino[1], 500);
	assert_int_equal(o.ino[2], 1ull << 40);
	assert_int_equal(idx_orphan_add(t, 1000), 0);
	o.n = 0;
	assert_int_equal(idx_orphan_iter(t, orphan_cb, &o), 7);
	assert_int_equal(o.n, 3);
	assert_int_equal(idx_txn_commit(t), 0);
}

/* Tensors by name and size: newest file first, a file's entries replaced
 * by its next set, dropped with the inode. */
static void test_tensors(void **state)
{
	struct fixture *f = *state;
	struct idx_inode in;
	struct idx_txn *t;
	uint64_t inos[8];
	static const struct idx_tensor a[2] = { { 77, 4096 }, { 78, 8192 } };
	static const struct idx_tensor b[1] = { { 77, 4096 } };
	static struct idx_tensor many[IDX_TENSORS_MAX + 1];

	t = wtxn(f);
	memset(&in, 0, sizeof(in));
	in.mode = S_IFREG | 0644;
	for (uint64_t ino = 40; ino <= 42; ino++) {
		in.ino = ino;
		assert_int_equal(idx_inode_put(t, &in), 0);
	}
	assert_int_equal(idx_tensor_find(t, 77, 4096, inos, 8), 0);
	assert_int_equal(idx_tensors_set(t, 40, a, 2), 0);
	assert_int_equal(idx_tensors_set(t, 42, a, 2), 0);
	assert_int_equal(idx_tensors_set(t, 41, b, 1), 0);
	assert_int_equal(idx_tensor_find(t, 77, 4096, inos, 8), 3);
	assert_int_equal(inos[0], 42);
	assert_int_equal(inos[1], 41);
	assert_int_equal(inos[2], 40);
	assert_int_equal(idx_tensor_find(t, 77, 4096, inos, 2), 2); /* the newest two */
	assert_int_equal(inos[1], 41);
	assert_int_equal(idx_tensor_find(t, 77, 4095, inos, 8), 0); /* the size counts */
	assert_int_equal(idx_tensor_find(t, 78, 8192, inos, 8), 2);
	/* a rewrite replaces: 42 no longer holds tensor 78 */
	assert_int_equal(idx_tensors_set(t, 42, b, 1), 0);
	assert_int_equal(idx_tensor_find(t, 78, 8192, inos, 8), 1);
	assert_int_equal(inos[0], 40);
	assert_int_equal(idx_tensors_set(t, 42, many, IDX_TENSORS_MAX + 1), -EINVAL);
	assert_int_equal(idx_txn_commit(t), 0);
	t = wtxn(f);
	assert_int_equal(idx_inode_delete(t, 40), 0);
	assert_int_equal(idx_tensor_find(t, 78, 8192, inos, 8), 0);
	assert_int_equal(idx_tensor_find(t, 77, 4096, inos, 8), 2);
	assert_int_equal(idx_tensors_set(t, 41, NULL, 0), 0);
	assert_int_equal(idx_tensor_find(t, 77, 4096, inos, 8), 1);
	assert_int_equal(inos[0], 42);
	assert_int_equal(idx_txn_commit(t), 0);
}

/* Hints (lazy coding): set, read, replaced, dropped; gone with their chunk
 * when it is freed at commit; a hint of a missing chunk is refused only
 * when it names itself. */
/* The refby table lists what codes against a chunk, kept by insert,
 * relocate and deletion; a chunk that only chunks coded against it hold
 * (its file deleted) is marked loose, and the mark goes with the chunk. */
static bool refby_sound(struct idx_txn *t)
{
	struct idx_refby_check r;

	assert_int_equal(idx_refby_verify(t, &r), 0);
	return r.edges == r.refs && r.stray == 0 && r.loose_stray == 0;
}

static void test_refby_loose(void **state)
{
	struct fixture *f = *state;
	struct idx_chunk a, b, c, g;
	struct idx_inode fa, fb;
	uint8_t deps[4][FP_LEN], loose[4][FP_LEN];
	struct idx_refby_check r;
	struct idx_txn *t = wtxn(f);

	make_file(&fa, 70, 100);
	make_file(&fb, 71, 100);
	make_chunk(&a, 80);
	make_chunk(&b, 81);
	make_chunk(&c, 82);
	b.flags = IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED; /* b -> a */
	memcpy(b.ref_fp, a.fp, FP_LEN);
	assert_int_equal(idx_chunk_insert(t, &a), 0);
	assert_int_equal(idx_chunk_insert(t, &b), 0);
	assert_int_equal(idx_chunk_insert(t, &c), 0);
	assert_int_equal(idx_file_map(t, &fa, 0, 100, a.fp, 0), 0);
	assert_int_equal(idx_file_map(t, &fb, 0, 100, b.fp, 0), 0);
	assert_int_equal(idx_file_map(t, &fb, 100, 100, c.fp, 0), 0);
	assert_int_equal(idx_inode_put(t, &fa), 0);
	assert_int_equal(idx_inode_put(t, &fb), 0);
	assert_int_equal(idx_refby_list(t, a.fp, deps, 4), 1);
	assert_memory_equal(deps[0], b.fp, FP_LEN);
	assert_int_equal(idx_refby_list(t, b.fp, deps, 4), 0);
	assert_true(refby_sound(t));
	/* b now codes against c: the edge moves */
	memcpy(b.ref_fp, c.fp, FP_LEN);
	assert_int_equal(idx_chunk_relocate(t, &b), 0);
	assert_int_equal(idx_refby_list(t, a.fp, deps, 4), 0);
	assert_int_equal(idx_refby_list(t, c.fp, deps, 4), 1);
	assert_true(refby_sound(t));
	/* ... and back to a */
	memcpy(b.ref_fp, a.fp, FP_LEN);
	assert_int_equal(idx_chunk_relocate(t, &b), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	/* a's file goes: only b holds a now, a is loose */
	t = wtxn(f);
	assert_int_equal(idx_loose_list(t, loose, 4), 0);
	assert_int_equal(idx_inode_delete(t, 70), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	t = rtxn(f);
	assert_int_equal(idx_loose_list(t, loose, 4), 1);
	assert_memory_equal(loose[0], a.fp, FP_LEN);
	assert_true(refby_sound(t));
	idx_txn_abort(t);
	/* b's file goes: b is deleted, then a; their edges and the mark too */
	t = wtxn(f);
	assert_int_equal(idx_inode_delete(t, 71), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	t = rtxn(f);
	assert_false(chunk_exists(t, 80));
	assert_false(chunk_exists(t, 81));
	assert_int_equal(idx_loose_list(t, loose, 4), 0);
	assert_int_equal(idx_refby_list(t, a.fp, deps, 4), 0);
	assert_int_equal(idx_refby_verify(t, &r), 0);
	assert_int_equal(r.refs, 0);
	assert_int_equal(r.edges + r.stray, 0);
	idx_txn_abort(t);
	/* a damaged table is found and rebuilt */
	t = wtxn(f);
	make_chunk(&a, 90);
	make_chunk(&b, 91);
	b.flags = IDX_CHUNK_HAS_REF;
	memcpy(b.ref_fp, a.fp, FP_LEN);
	b.refcount = a.refcount = 1; /* held without a file: stays */
	assert_int_equal(idx_chunk_insert(t, &a), 0);
	assert_int_equal(idx_chunk_insert(t, &b), 0);
	{
		uint8_t k[2 * FP_LEN];

		memcpy(k, b.fp, FP_LEN); /* an edge the other way round */
		memcpy(k + FP_LEN, a.fp, FP_LEN);
		assert_int_equal(idx_raw_put(t, "refby", k, sizeof(k), "", 0), 0);
		assert_int_equal(idx_raw_put(t, "loose", c.fp, FP_LEN, "", 0), 0);
		memcpy(k, a.fp, FP_LEN); /* b's edge lost */
		memcpy(k + FP_LEN, b.fp, FP_LEN);
		assert_int_equal(idx_raw_del(t, "refby", k, sizeof(k)), 0);
	}
	assert_int_equal(idx_refby_verify(t, &r), 0);
	assert_int_equal(r.refs, 1);
	assert_int_equal(r.edges, 0);
	assert_int_equal(r.stray, 1);
	assert_int_equal(r.loose_stray, 1); /* c was deleted with file 71 */
	assert_int_equal(idx_chunk_get(t, a.fp, &g), 0);
	assert_int_equal(idx_refby_rebuild(t), 0);
	assert_true(refby_sound(t));
	assert_int_equal(idx_refby_list(t, a.fp, deps, 4), 1);
	/* a's refcount is 2 (b's, and the 1 it was inserted with): not loose */
	assert_int_equal(idx_loose_list(t, loose, 4), 0);
	assert_int_equal(idx_txn_commit(t), 0);
}

/* A damaged refby entry (a key of another size under a chunk's prefix)
 * must not stop deletions: refby_del tolerates a damaged table, and the
 * loose check every unref makes is only a hint. */
static void test_loose_damaged_refby(void **state)
{
	struct fixture *f = *state;
	struct idx_chunk a;
	struct idx_inode fa, fb;
	uint8_t k[FP_LEN + 1];
	struct idx_txn *t = wtxn(f);

	make_file(&fa, 70, 100);
	make_file(&fb, 71, 100);
	make_chunk(&a, 80);
	assert_int_equal(idx_chunk_insert(t, &a), 0);
	assert_int_equal(idx_file_map(t, &fa, 0, 100, a.fp, 0), 0);
	assert_int_equal(idx_file_map(t, &fb, 0, 100, a.fp, 0), 0);
	assert_int_equal(idx_inode_put(t, &fa), 0);
	assert_int_equal(idx_inode_put(t, &fb), 0);
	memcpy(k, a.fp, FP_LEN);
	k[FP_LEN] = 1;
	assert_int_equal(idx_raw_put(t, "refby", k, sizeof(k), "", 0), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	t = wtxn(f);
	assert_int_equal(idx_inode_delete(t, 70), 0); /* a: 2 -> 1 */
	assert_int_equal(idx_txn_commit(t), 0);
}

/* fsck's refcount repair lowers a count that was too high: a chunk only
 * chunks coded against it hold is loose then, and gets its mark. */
static void test_loose_refcount_set(void **state)
{
	struct fixture *f = *state;
	struct idx_chunk a, b;
	uint8_t loose[4][FP_LEN];
	struct idx_txn *t = wtxn(f);

	make_chunk(&a, 80);
	make_chunk(&b, 81);
	a.refcount = 3; /* a leaked count: only b holds it */
	b.refcount = 1;
	b.flags = IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED;
	memcpy(b.ref_fp, a.fp, FP_LEN);
	assert_int_equal(idx_chunk_insert(t, &a), 0);
	assert_int_equal(idx_chunk_insert(t, &b), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	t = wtxn(f);
	assert_int_equal(idx_chunk_refcount_set(t, a.fp, 1), 0); /* fsck --repair */
	assert_int_equal(idx_txn_commit(t), 0);
	t = rtxn(f);
	assert_int_equal(idx_loose_list(t, loose, 4), 1);
	idx_txn_abort(t);
}

/* A file deleted in steps: idx_file_punch_last takes the last extents of
 * its inode only (not the next inode's, whose keys follow), and
 * idx_extent_count stops counting where asked. */
static void test_punch_last(void **state)
{
	struct fixture *f = *state;
	struct idx_inode a, b;
	struct idx_chunk c;
	struct idx_txn *t = wtxn(f);

	make_file(&a, 200, 10 * 4096);
	make_file(&b, 201, 4096);
	make_chunk(&c, 300);
	assert_int_equal(idx_chunk_insert(t, &c), 0);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(idx_file_map(t, &a, (uint64_t)i * 4096, 100, c.fp, 0), 0);
	assert_int_equal(idx_file_map(t, &b, 0, 100, c.fp, 0), 0);
	assert_int_equal(idx_extent_count(t, 200, 100), 10);
	assert_int_equal(idx_extent_count(t, 200, 4), 4);
	assert_int_equal(idx_extent_count(t, 202, 4), 0);
	{
		/* a's extents: 100 bytes at every 4096 */
		uint64_t from = 1;
		assert_int_equal(idx_extent_tail(t, 200, 5 * 4096 + 50, UINT64_MAX, 3, &from), 3);
		assert_int_equal(from, 7 * 4096); /* more below */
		assert_int_equal(idx_extent_tail(t, 200, 5 * 4096 + 50, UINT64_MAX, 10, &from), 5);
		assert_int_equal(from, 5 * 4096 + 50); /* all of them */
		assert_int_equal(idx_extent_tail(t, 200, 0, 3 * 4096 + 50, 10, &from), 4);
		assert_int_equal(from, 0);
		assert_int_equal(idx_extent_tail(t, 200, 2 * 4096 + 200, UINT64_MAX, 8, &from), 8);
		assert_int_equal(from, 2 * 4096 + 200);
		assert_int_equal(idx_extent_tail(t, 200, 3 * 4096, 3 * 4096, 8, &from), 0);
		assert_int_equal(idx_extent_tail(t, 201, 0, UINT64_MAX, 8, &from), 1); /* b only */
		assert_int_equal(idx_extent_tail(t, 202, 0, UINT64_MAX, 8, &from), 0);
		assert_int_equal(from, 0);
	}
	/* b's one extent, not a's before it */
	assert_int_equal(idx_file_punch_last(t, &b, 4), 1);
	assert_int_equal(idx_file_map(t, &b, 0, 100, c.fp, 0), 0);
	assert_int_equal(idx_file_punch_last(t, &a, 4), 4);
	assert_int_equal(idx_extent_count(t, 200, 100), 6);
	assert_int_equal(idx_extent_count(t, 201, 100), 1);
	{
		struct idx_extent e;
		assert_int_equal(idx_extent_find(t, 200, 5 * 4096, &e), 0);
		assert_int_equal(e.off, 5 * 4096); /* the first 6 are left */
		assert_int_equal(idx_extent_find(t, 200, 6 * 4096, &e), -ENOENT);
	}
	assert_int_equal(idx_file_punch_last(t, &a, 100), 6);
	assert_int_equal(idx_file_punch_last(t, &a, 100), 0);
	assert_int_equal(idx_extent_count(t, 201, 100), 1);
	assert_int_equal(chunk_refs(t, 300), 1);
	assert_int_equal(idx_txn_commit(t), 0);
}

/* A store of format 3 (no refby table) gets one at its first rw open. */
static void test_refby_upgrade(void **state)
{
	struct fixture *f = *state;
	struct idx_chunk a, b;
	struct idx_super s;
	struct idx_txn *t = wtxn(f);
	uint8_t deps[4][FP_LEN], k[2 * FP_LEN];

	make_chunk(&a, 95);
	make_chunk(&b, 96);
	b.flags = IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED;
	memcpy(b.ref_fp, a.fp, FP_LEN);
	b.refcount = 1;
	assert_int_equal(idx_chunk_insert(t, &a), 0);
	assert_int_equal(idx_chunk_insert(t, &b), 0);
	memcpy(k, a.fp, FP_LEN);
	memcpy(k + FP_LEN, b.fp, FP_LEN);
	assert_int_equal(idx_raw_del(t, "refby", k, sizeof(k)), 0);
	assert_int_equal(idx_super_get(t, &s), 0);
	s.format_version = 3;
	assert_int_equal(idx_super_put(t, &s), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	reopen(f);
	t = rtxn(f);
	assert_int_equal(idx_super_get(t, &s), 0);
	assert_int_equal(s.format_version, IDX_FORMAT_VERSION);
	assert_true(refby_sound(t));
	assert_int_equal(idx_refby_list(t, a.fp, deps, 4), 1);
	/* a is held only by b: loose */
	assert_int_equal(idx_loose_list(t, deps, 4), 1);
	assert_memory_equal(deps[0], a.fp, FP_LEN);
	idx_txn_abort(t);
}

static void test_hints(void **state)
{
	struct fixture *f = *state;
	struct idx_chunk a, b;
	struct idx_inode in;
	struct idx_txn *t;
	uint8_t ref[FP_LEN];

	t = wtxn(f);
	make_file(&in, 40, 100000);
	assert_int_equal(idx_inode_put(t, &in), 0);
	make_chunk(&a, 20);
	make_chunk(&b, 21);
	assert_int_equal(idx_chunk_insert(t, &a), 0);
	assert_int_equal(idx_chunk_insert(t, &b), 0);
	assert_int_equal(idx_file_map(t, &in, 0, a.raw_len, a.fp, 0), 0);
	assert_int_equal(idx_file_map(t, &in, 10000, b.raw_len, b.fp, 0), 0);
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_hint_get(t, b.fp, ref), -ENOENT);
	assert_int_equal(idx_hint_set(t, b.fp, b.fp), -EINVAL);
	assert_int_equal(idx_hint_set(t, b.fp, a.fp), 0);
	assert_int_equal(idx_hint_get(t, b.fp, ref), 0);
	assert_memory_equal(ref, a.fp, FP_LEN);
	assert_int_equal(idx_hint_drop(t, b.fp), 0);
	assert_int_equal(idx_hint_get(t, b.fp, ref), -ENOENT);
	assert_int_equal(idx_hint_drop(t, b.fp), 0); /* none: fine */
	assert_int_equal(idx_hint_set(t, b.fp, a.fp), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	/* a hint carries no reference: a goes with its file's extent, and
	 * b's hint stays (rebase ignores a hint whose reference is gone) */
	t = wtxn(f);
	assert_int_equal(idx_file_punch(t, &in, 0, 10000), 0);
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	t = wtxn(f);
	assert_int_equal(idx_chunk_get(t, a.fp, &a), -ENOENT);
	assert_int_equal(idx_hint_get(t, b.fp, ref), 0);
	/* freeing b at commit drops its hint */
	assert_int_equal(idx_file_punch(t, &in, 0, UINT64_MAX), 0);
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	t = wtxn(f);
	assert_int_equal(idx_chunk_get(t, b.fp, &b), -ENOENT);
	assert_int_equal(idx_hint_get(t, b.fp, ref), -ENOENT);
	idx_txn_abort(t);
}

/* A store made before the tensors table: a read-only open (mixfs stats on
 * a store not mounted since) reads it as empty; a read-write one adds it. */
static void test_tensors_old_store(void **state)
{
	struct fixture *f = *state;
	struct idx_txn *t;
	uint64_t inos[2];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi d;

	t = wtxn(f);
	assert_int_equal(idx_tensors_set(t, 1, (const struct idx_tensor[]){ { 5, 65536 } }, 1), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	idx_close(f->x);
	f->x = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
	assert_int_equal(mdb_env_open(env, f->dir, MDB_NOTLS, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "tensors", 0, &d), 0);
	assert_int_equal(mdb_drop(txn, d, 1), 0);
	assert_int_equal(mdb_dbi_open(txn, "tensorino", 0, &d), 0);
	assert_int_equal(mdb_drop(txn, d, 1), 0);
	assert_int_equal(mdb_dbi_open(txn, "hints", 0, &d), 0);
	assert_int_equal(mdb_drop(txn, d, 1), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	assert_int_equal(idx_open(f->dir, IDX_RDONLY, NULL, 0, &f->x), 0);
	assert_int_equal(idx_txn_begin(f->x, true, &t), 0);
	assert_int_equal(idx_tensor_find(t, 5, 65536, inos, 2), 0);
	{
		uint8_t fp[FP_LEN] = { 1 }, ref[FP_LEN];
		assert_int_equal(idx_hint_get(t, fp, ref), -ENOENT);
	}
	idx_txn_abort(t);
	idx_close(f->x);
	assert_int_equal(idx_open(f->dir, 0, NULL, 0, &f->x), 0);
	t = wtxn(f);
	assert_int_equal(idx_tensors_set(t, 1, (const struct idx_tensor[]){ { 5, 65536 } }, 1), 0);
	assert_int_equal(idx_tensor_find(t, 5, 65536, inos, 2), 1);
	assert_int_equal(idx_txn_commit(t), 0);
}

/* --- threads: a read txn is a snapshot any one thread may use (MDB_NOTLS) */

struct reader_arg {
	struct idx_txn *t;
	uint64_t size, logical;
	int rc;
};

static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	struct idx_inode in;
	struct idx_stats st;

	a->rc = idx_inode_get(a->t, 80, &in);
	if (a->rc == 0)
		a->rc = idx_stats_get(a->t, &st);
	a->size = in.size;
	a->logical = st.logical_bytes;
	return NULL;
}

static void test_snapshot_threads(void **state)
{
	struct fixture *f = *state;
	struct reader_arg a = { 0 };
	struct idx_inode in;
	struct idx_txn *t;
	pthread_t th;

	t = wtxn(f);
	make_file(&in, 80, 100);
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	a.t = rtxn(f);
	/* The same thread holds a read txn and writes. */
	t = wtxn(f);
	in.size = 200;
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	assert_int_equal(idx_sync(f->x), 0);
	assert_int_equal(pthread_create(&th, NULL, reader_main, &a), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.size, 100);
	assert_int_equal(a.logical, 100);
	assert_int_equal(idx_txn_commit(a.t), 0);
	a.t = rtxn(f);
	reader_main(&a);
	assert_int_equal(a.size, 200);
	assert_int_equal(a.logical, 200);
	idx_txn_abort(a.t);
}

/* --- map full ------------------------------------------------------------------ */

static void test_map_full(void **state)
{
	char dir[64];
	static uint8_t val[60 << 10];
	struct idx_super s;
	struct idx_txn *t;
	struct idx *y;
	unsigned i;
	int rc = 0;

	(void)state;
	assert_non_null(mkdtemp(strcpy(dir, "/tmp/mixfs-idx-XXXXXX")));
	super_default(&s);
	assert_int_equal(idx_open(dir, IDX_CREATE, &s, 1 << 20, &y), 0);
	assert_int_equal(idx_txn_begin(y, false, &t), 0);
	for (i = 0; i < 100; i++) {
		char name[32];

		snprintf(name, sizeof(name), "user.%u", i);
		rc = idx_xattr_set(t, 2, name, val, sizeof(val), 0);
		if (rc < 0)
			break;
	}
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(idx_txn_commit(t), -ENOSPC);
	/* The store is intact and usable. */
	assert_int_equal(idx_txn_begin(y, false, &t), 0);
	assert_int_equal(idx_xattr_set(t, 2, "user.small", "x", 1, 0), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	idx_close(y);
	rm_store(dir);
}

/* A full disk: the index keeps IDX_RESERVE (1 MiB) allocated past the end
 * of data.mdb, so a transaction that needs new pages (an unlink, the
 * deletion of a file's records) still commits once nothing else has room.
 * A store on a 4 MiB tmpfs (root only), filled up by another file. */
static void test_full_disk_reserve(void **state)
{
	char dir[64], sub[80], fill[80];
	static uint8_t buf[64 << 10];
	struct idx_super s;
	struct idx_chunk c;
	struct idx_txn *t;
	struct idx *y;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(strcpy(dir, "/tmp/mixfs-idx-XXXXXX")));
	if (mount("tmpfs", dir, "tmpfs", 0, "size=4m") != 0) {
		rmdir(dir);
		skip();
	}
	snprintf(sub, sizeof(sub), "%s/index", dir);
	snprintf(fill, sizeof(fill), "%s/filler", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	super_default(&s);
	assert_int_equal(idx_open(sub, IDX_CREATE, &s, 0, &y), 0);
	assert_int_equal(idx_txn_begin(y, false, &t), 0);
	make_chunk(&c, 1);
	c.refcount = 1; /* a chunk at 0 is swept at commit */
	assert_int_equal(idx_chunk_insert(t, &c), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	fd = open(fill, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	while (write(fd, buf, sizeof(buf)) > 0)
		;
	while (write(fd, buf, 512) > 0) /* the last blocks too */
		;
	close(fd);
	/* 2000 new records: ~50 new pages, none free in the file */
	assert_int_equal(idx_txn_begin(y, false, &t), 0);
	for (unsigned i = 2; i < 2002; i++) {
		make_chunk(&c, i);
		c.refcount = 1;
		assert_int_equal(idx_chunk_insert(t, &c), 0);
	}
	int rc = idx_txn_commit(t);
	print_message("a commit needing new pages on a full disk: %d\n", rc);
	assert_int_equal(rc, 0);
	assert_int_equal(idx_txn_begin(y, true, &t), 0);
	assert_int_equal(idx_chunk_get(t, c.fp, &c), 0);
	idx_txn_abort(t);
	idx_close(y);
	assert_int_equal(unlink(fill), 0);
	rm_store(sub);
	assert_int_equal(umount(dir), 0);
	rmdir(dir);
}

/* A damaged meta page (LMDB refuses the file: -EUCLEAN) is rewritten from
 * the other one: damaging the older page loses nothing, damaging the newer
 * rolls the store back to the commit before; both damaged stays -EUCLEAN. */
static uint64_t meta_txnid(int fd, unsigned slot)
{
	uint8_t b[8];
	uint64_t v = 0;

	assert_int_equal(pread(fd, b, 8, (off_t)slot * 4096 + 144), 8);
	for (int k = 7; k >= 0; k--)
		v = v << 8 | b[k];
	return v;
}

static void damage_meta(int fd, unsigned slot)
{
	uint8_t m;

	assert_int_equal(pread(fd, &m, 1, (off_t)slot * 4096 + 16), 1); /* the magic */
	m ^= 0x40;
	assert_int_equal(pwrite(fd, &m, 1, (off_t)slot * 4096 + 16), 1);
}

static void insert_one(struct fixture *f, unsigned i)
{
	struct idx_chunk c;
	struct idx_txn *t = wtxn(f);

	make_chunk(&c, i);
	c.refcount = 1;
	assert_int_equal(idx_chunk_insert(t, &c), 0);
	assert_int_equal(idx_txn_commit(t), 0);
}

static int has_chunk(struct fixture *f, unsigned i)
{
	struct idx_chunk c;
	struct idx_txn *t;
	int rc;

	make_chunk(&c, i);
	assert_int_equal(idx_txn_begin(f->x, true, &t), 0);
	rc = idx_chunk_get(t, c.fp, &c);
	idx_txn_abort(t);
	return rc;
}

static void zero_meta(int fd, unsigned slot)
{
	static const uint8_t z[4096];

	assert_int_equal(pwrite(fd, z, sizeof(z), (off_t)slot * 4096), 4096);
}

/* Damage, -EUCLEAN, repair; returns the slot idx_repair_meta names and
 * checks the commit it reports. */
static unsigned repair_round(struct fixture *f, int fd, bool zero_newer, bool older,
                             uint64_t want_txn)
{
	uint64_t t0 = meta_txnid(fd, 0), t1 = meta_txnid(fd, 1), txn;
	unsigned newer = t1 > t0, victim = older ? 1 - newer : newer;
	bool in_place;

	assert_true(t0 != t1);
	if (zero_newer)
		zero_meta(fd, victim);
	else
		damage_meta(fd, victim);
	assert_int_equal(idx_open(f->dir, 0, NULL, 0, &f->x), -EUCLEAN);
	assert_int_equal(idx_repair_meta(f->dir, &in_place, &txn), 0);
	assert_true(txn == (want_txn ? want_txn : (t0 > t1 ? t0 : t1)));
	assert_int_equal(idx_open(f->dir, 0, NULL, 0, &f->x), 0);
	return in_place;
}

static void test_repair_meta(void **state)
{
	struct fixture *f = *state;
	char path[128];
	bool in_place;
	uint64_t txn;
	int fd;

	insert_one(f, 41);
	insert_one(f, 42);
	idx_close(f->x);
	f->x = NULL;
	snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);

	/* a flipped bit in the older page's magic: fixed in place */
	assert_true(repair_round(f, fd, false, true, 0));
	assert_int_equal(has_chunk(f, 42), 0);
	insert_one(f, 43);
	idx_close(f->x);
	f->x = NULL;

	/* in the newer page's: fixed in place, the last commit kept */
	assert_true(repair_round(f, fd, false, false, 0));
	assert_int_equal(has_chunk(f, 43), 0);
	insert_one(f, 44);
	idx_close(f->x);
	f->x = NULL;

	/* the newer page zeroed: copied from the older one, one commit
	 * back (44 gone, 43 there), and the store takes commits again */
	uint64_t t0 = meta_txnid(fd, 0), t1 = meta_txnid(fd, 1);
	assert_false(repair_round(f, fd, true, false, t0 < t1 ? t0 : t1));
	assert_int_equal(has_chunk(f, 43), 0);
	assert_int_equal(has_chunk(f, 44), -ENOENT);
	insert_one(f, 44);
	assert_int_equal(has_chunk(f, 44), 0);
	idx_close(f->x);
	f->x = NULL;

	/* both: not repairable this way */
	damage_meta(fd, 0);
	damage_meta(fd, 1);
	assert_int_equal(idx_open(f->dir, 0, NULL, 0, &f->x), -EUCLEAN);
	assert_int_equal(idx_repair_meta(f->dir, &in_place, &txn), -EUCLEAN);
	close(fd);
	f->x = NULL;
}

/* Another program with another LMDB lock format (mti_format, the second
 * word of lock.mdb) holding the environment open: LMDB refuses the lock
 * file with MDB_VERSION_MISMATCH, which used to be reported as a damaged
 * data.mdb (-EUCLEAN).  The store is in use (-EBUSY); once that program is
 * gone the store opens again. */
static void test_lock_other_lmdb(void **state)
{
	struct fixture *f = *state;
	char path[128], c;
	int ready[2];
	pid_t pid;

	insert_one(f, 45);
	idx_close(f->x);
	f->x = NULL;
	snprintf(path, sizeof(path), "%s/lock.mdb", f->dir);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* the other program: a shared lock on byte 0, as LMDB's
		 * readers of an environment in use hold */
		struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_len = 1 };
		uint32_t fmt = 0x7e57f0f0;
		int fd = open(path, O_RDWR);

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || fd < 0 || pwrite(fd, &fmt, 4, 4) != 4 || fcntl(fd, F_SETLK, &fl) < 0 ||
		    write(ready[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	assert_int_equal(idx_open(f->dir, 0, NULL, 0, &f->x), -EBUSY);
	assert_int_equal(idx_open(f->dir, IDX_RDONLY, NULL, 0, &f->x), -EBUSY);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* nobody holds it: LMDB writes the lock file anew */
	assert_int_equal(idx_open(f->dir, 0, NULL, 0, &f->x), 0);
	assert_int_equal(has_chunk(f, 45), 0);
}

/* idx_stats_diff names each counter that differs, arrays with their
 * index, and counts all 26 (fsck's "stats counters differ" message). */
static void test_stats_diff(void **state)
{
	struct idx_stats a, b;
	char out[512];

	(void)state;
	memset(&a, 0, sizeof(a));
	b = a;
	assert_int_equal(idx_stats_diff(&a, &b, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	b.pending_bytes = 1;
	b.level_raw[2] = 5;
	assert_int_equal(idx_stats_diff(&a, &b, out, sizeof(out)), 2);
	assert_string_equal(out, "level_raw[2], pending_bytes");
	b = a;
	b.files = b.ref_fwd_chunks = b.dtype_stored[3] = 1;
	assert_int_equal(idx_stats_diff(&a, &b, out, sizeof(out)), 3);
	assert_string_equal(out, "files, dtype_stored[3], ref_fwd_chunks");
	memset(&b, 0xff, sizeof(b));
	assert_int_equal(idx_stats_diff(&a, &b, out, sizeof(out)), 26);
	/* cut at the buffer, still counted */
	assert_int_equal(idx_stats_diff(&a, &b, out, 12), 26);
	assert_true(strlen(out) < 12);
}

/* idx_guard catches faults inside an index's map only: SIGSEGV or
 * SIGBUS sent by kill(2) (no fault: it does not happen again when the
 * handler returns) must still take the previous action, here the
 * default one, instead of being swallowed. */
static void test_guard_kill(void **state)
{
	int sigs[2] = { SIGSEGV, SIGBUS }, st;

	(void)state;
	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			signal(sigs[i], SIG_DFL); /* not cmocka's handler */
			idx_guard(3);
			kill(getpid(), sigs[i]);
			_exit(0); /* survived */
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			print_error("signal %d sent by kill: swallowed\n", sigs[i]);
		/* killed (or, under a sanitizer's handler, its exit) */
		assert_false(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		if (WIFSIGNALED(st))
			assert_int_equal(WTERMSIG(st), sigs[i]);
	}
}


/* --- unsynced commits ------------------------------------------------------ */

static void lazy_insert(struct fixture *f, unsigned i)
{
	struct idx_chunk c;
	struct idx_txn *t;

	assert_int_equal(idx_txn_begin_lazy(f->x, &t), 0);
	make_chunk(&c, i);
	c.refcount = 1;
	assert_int_equal(idx_chunk_insert(t, &c), 0);
	assert_int_equal(idx_txn_commit(t), 0);
}

/* dir's data.mdb and marker as the disk would hold them after a power cut
 * (what the page cache holds: every write made so far), copied to a new
 * directory; with torn set, every page past the last page of the commit
 * a valid marker names is zeroed (the writes since the sync that did not
 * make it).  Returns the copy's directory in out. */
static bool marker_valid(const char *dir);

static void crash_copy(const char *dir, bool torn, char out[64])
{
	static const char *names[] = { "data.mdb", "unsynced" };
	char from[128], to[128];
	static uint8_t buf[1 << 16];

	strcpy(out, "/tmp/mixfs-idx-XXXXXX");
	assert_non_null(mkdtemp(out));
	for (unsigned i = 0; i < 2; i++) {
		snprintf(from, sizeof(from), "%s/%s", dir, names[i]);
		snprintf(to, sizeof(to), "%s/%s", out, names[i]);
		int a = open(from, O_RDONLY), b;
		if (a < 0)
			continue;
		b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(b >= 0);
		for (ssize_t n; (n = read(a, buf, sizeof(buf))) > 0;)
			assert_int_equal(write(b, buf, (size_t)n), n);
		close(a);
		close(b);
	}
	if (torn && marker_valid(out)) {
		uint8_t m[128 + 4096];
		uint64_t last = 0;
		snprintf(to, sizeof(to), "%s/unsynced", out);
		int fd = open(to, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, m, sizeof(m), 0), sizeof(m));
		close(fd);
		for (int i = 7; i >= 0; i--)
			last = last << 8 | m[128 + 16 + 120 + i]; /* meta last_pg */
		snprintf(to, sizeof(to), "%s/data.mdb", out);
		fd = open(to, O_RDWR);
		assert_true(fd >= 0);
		struct stat st;
		assert_int_equal(fstat(fd, &st), 0);
		memset(buf, 0, 4096);
		for (uint64_t p = last + 1; p * 4096 < (uint64_t)st.st_size; p++)
			assert_int_equal(pwrite(fd, buf, 4096, (off_t)(p * 4096)), 4096);
		close(fd);
	}
}

static bool marker_valid(const char *dir)
{
	char p[128];
	uint8_t m[8] = { 0 };

	snprintf(p, sizeof(p), "%s/unsynced", dir);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return false;
	assert_int_equal(pread(fd, m, 8, 0), 8);
	close(fd);
	return memcmp(m, "MIXFSUS1", 8) == 0;
}

/* f's store as a power cut leaves it (crash_copy), opened in g as the
 * next boot would. */
static void power_cut(struct fixture *f, bool torn, struct fixture *g)
{
	crash_copy(f->dir, torn, g->dir);
	setenv("MIXFS_BOOT_ID", "another-boot", 1);
	assert_int_equal(idx_open(g->dir, 0, NULL, 0, &g->x), 0);
	unsetenv("MIXFS_BOOT_ID");
}

/* Namespace commits go unsynced (idx_txn_begin_lazy).  After a power cut
 * (another boot id) the store is back at the last sync, even with every
 * page written since then lost; after a crash of the process (this boot)
 * nothing is lost; idx_sync makes all durable. */
static void test_unsynced(void **state)
{
	struct fixture *f = *state;
	struct fixture g = { .x = NULL };

	insert_one(f, 1);
	assert_int_equal(idx_unsynced_since(f->x), 0);
	assert_false(marker_valid(f->dir));
	for (unsigned i = 2; i < 400; i++)
		lazy_insert(f, i);
	assert_true(idx_unsynced_since(f->x) > 0);
	assert_true(marker_valid(f->dir));

	/* power cut, all pages written since the sync lost */
	power_cut(f, true, &g);
	assert_false(marker_valid(g.dir));
	assert_int_equal(has_chunk(&g, 1), 0);
	assert_int_equal(has_chunk(&g, 2), -ENOENT);
	assert_int_equal(has_chunk(&g, 399), -ENOENT);
	insert_one(&g, 500); /* and it takes commits again */
	lazy_insert(&g, 501);
	reopen(&g);
	assert_int_equal(has_chunk(&g, 500), 0);
	assert_int_equal(has_chunk(&g, 501), 0);
	idx_close(g.x);
	rm_store(g.dir);

	/* power cut, everything reached the disk: the same (the marker
	 * cannot tell) */
	power_cut(f, false, &g);
	assert_int_equal(has_chunk(&g, 1), 0);
	assert_int_equal(has_chunk(&g, 2), -ENOENT);
	idx_close(g.x);
	rm_store(g.dir);

	/* the process died, the kernel kept every write: nothing lost */
	crash_copy(f->dir, false, g.dir);
	assert_int_equal(idx_open(g.dir, 0, NULL, 0, &g.x), 0);
	assert_false(marker_valid(g.dir));
	assert_int_equal(has_chunk(&g, 2), 0);
	assert_int_equal(has_chunk(&g, 399), 0);
	idx_close(g.x);
	rm_store(g.dir);

	/* a read-only open (tools on a mounted store) leaves the marker */
	crash_copy(f->dir, false, g.dir);
	assert_int_equal(idx_open(g.dir, IDX_RDONLY, NULL, 0, &g.x), 0);
	assert_true(marker_valid(g.dir));
	assert_int_equal(has_chunk(&g, 399), 0);
	idx_close(g.x);
	rm_store(g.dir);

	/* idx_sync: durable, the marker cleared, then armed again */
	assert_int_equal(idx_sync(f->x), 0);
	assert_int_equal(idx_unsynced_since(f->x), 0);
	assert_false(marker_valid(f->dir));
	power_cut(f, true, &g);
	assert_int_equal(has_chunk(&g, 399), 0);
	idx_close(g.x);
	rm_store(g.dir);
	lazy_insert(f, 600);
	assert_true(marker_valid(f->dir));
	insert_one(f, 601); /* a synced commit does not make them durable */
	power_cut(f, true, &g);
	assert_int_equal(has_chunk(&g, 399), 0);
	assert_int_equal(has_chunk(&g, 600), -ENOENT);
	assert_int_equal(has_chunk(&g, 601), -ENOENT);
	idx_close(g.x);
	rm_store(g.dir);

	/* a clean close syncs */
	reopen(f);
	assert_false(marker_valid(f->dir));
	assert_int_equal(has_chunk(f, 600), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_diff),
		cmocka_unit_test_setup_teardown(test_open_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunk_sum, setup, teardown),
		cmocka_unit_test(test_full_disk_reserve),
		cmocka_unit_test_setup_teardown(test_repair_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_other_lmdb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsynced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inode_iter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dirents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunk_refs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunk_ref_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats_v1_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunk_v1_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xattrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_orphan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orphan_iter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tensors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refby_loose, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refby_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_punch_last, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loose_damaged_refby, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loose_refcount_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tensors_old_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_threads, setup, teardown),
		cmocka_unit_test(test_map_full),
		cmocka_unit_test(test_guard_kill),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
