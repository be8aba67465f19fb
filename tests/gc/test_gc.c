/*
 * test_gc.c - fsck and gc (fs/gc.h) on stores written through the engine,
 * then damaged on purpose: frames, pack files, index records.  Each gc step
 * is also cut short (GC_STOP_*) as a crash would, and the store must check
 * clean and read back before and after a second gc finishes the work.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "codec/codec.h"
#include "fs/engine.h"
#include "fs/gc.h"
#include "fs/pack.h"
#include "index/idx.h"
#include "index/idx_test_i.h"

#define MIB (1u << 20)

struct fx {
	char dir[64];
	char store[96];
	char pack1[160];
	uint8_t *a, *b; /* contents of /a and /d/b */
	size_t alen, blen;
};

/* What fsck reported. */
struct seen {
	unsigned kinds[GC_P_KIND_COUNT];
	unsigned repaired;
	char lost[8][256]; /* paths of files whose data is lost */
	unsigned nlost;
};

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static struct eng *eopen(struct fx *f)
{
	struct eng_opts o;
	struct eng *e;

	eng_opts_default(&o);
	o.level = CODEC_LEVEL_FAST;
	o.workers = 2;
	o.cache_bytes = 4 * MIB;
	assert_int_equal(eng_store_open(f->store, &o, &e), 0);
	return e;
}

static uint64_t lookup(struct eng *e, uint64_t dir, const char *name)
{
	struct eng_attr a;

	assert_int_equal(eng_lookup(e, dir, name, &a), 0);
	eng_forget(e, a.st.st_ino, 1);
	return a.st.st_ino;
}

static uint64_t put_file(struct eng *e, uint64_t dir, const char *name, const uint8_t *b, size_t n)
{
	struct eng_cred cr = { 0, 0, 022 };
	struct eng_attr a;
	uint64_t ino;

	assert_int_equal(eng_create(e, dir, name, 0644, O_RDWR, &cr, &a), 0);
	ino = a.st.st_ino;
	for (size_t p = 0; p < n; p += 65536) {
		size_t k = n - p < 65536 ? n - p : 65536;

		assert_int_equal(eng_write(e, ino, p, b + p, k), (ssize_t)k);
	}
	assert_int_equal(eng_fsync(e, ino, false), 0);
	assert_int_equal(eng_release(e, ino), 0);
	eng_forget(e, ino, 1);
	return ino;
}

/* 0 if the file reads back as want, -EIO if some read failed; a read that
 * succeeds with other bytes fails the test. */
static int read_file(struct eng *e, uint64_t ino, const uint8_t *want, size_t n)
{
	uint8_t *got = malloc(65536);
	int rc = 0;

	assert_non_null(got);
	for (size_t p = 0; p < n; p += 65536) {
		size_t k = n - p < 65536 ? n - p : 65536;
		ssize_t r = eng_read(e, ino, p, k, got);

		if (r < 0) {
			assert_int_equal(r, -EIO);
			rc = -EIO;
			continue;
		}
		assert_int_equal(r, (ssize_t)k);
		assert_memory_equal(got, want + p, k);
	}
	free(got);
	return rc;
}

static void on_problem(void *arg, const struct gc_problem *p)
{
	struct seen *s = arg;

	s->kinds[p->kind]++;
	if (getenv("TEST_GC_VERBOSE"))
		fprintf(stderr, "%s%s: %s\n", p->repaired ? "repaired " : "", gc_problem_kind_name(p->kind), p->msg);
	s->repaired += p->repaired;
	for (size_t i = 0; p->data_lost && i < p->nfiles; i++) {
		bool dup = false;

		for (unsigned k = 0; k < s->nlost; k++)
			dup |= p->files[i].path && strcmp(s->lost[k], p->files[i].path) == 0;
		if (!dup && s->nlost < 8 && p->files[i].path)
			snprintf(s->lost[s->nlost++], sizeof(s->lost[0]), "%s", p->files[i].path);
	}
}

static int fsck(struct fx *f, bool repair, struct seen *s, struct gc_fsck_stats *st)
{
	struct gc_fsck_opts o = { .repair = repair, .threads = 2, .problem = on_problem,
	                          .problem_arg = s };

	memset(s, 0, sizeof(*s));
	return gc_fsck(f->store, &o, st);
}

/* Store with /a (1 MiB random), /d/b (768 KiB, half of it /a's first
 * chunks again: dedup), /d/link (hard link to /d/b), /empty. */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct eng_cred cr = { 0, 0, 022 };
	struct eng_attr at;
	struct eng *e;
	uint64_t d, b;

	assert_non_null(f);
	strcpy(f->dir, "/tmp/mixfs-tgc-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
	snprintf(f->pack1, sizeof(f->pack1), "%s/packs/00000001.pack", f->store);
	assert_int_equal(eng_mkfs(f->store, CODEC_LEVEL_FAST), 0);
	f->alen = MIB;
	f->blen = 768u << 10;
	f->a = malloc(f->alen);
	f->b = malloc(f->blen);
	assert_non_null(f->a);
	assert_non_null(f->b);
	fill(f->a, f->alen, 1);
	memcpy(f->b, f->a, 384u << 10);
	fill(f->b + (384u << 10), f->blen - (384u << 10), 2);
	e = eopen(f);
	put_file(e, IDX_ROOT_INO, "a", f->a, f->alen);
	assert_int_equal(eng_mkdir(e, IDX_ROOT_INO, "d", 0755, &cr, &at), 0);
	d = at.st.st_ino;
	eng_forget(e, d, 1);
	b = put_file(e, d, "b", f->b, f->blen);
	assert_int_equal(eng_link(e, b, d, "link", &at), 0);
	eng_forget(e, b, 1);
	put_file(e, IDX_ROOT_INO, "empty", f->a, 0);
	assert_int_equal(eng_store_close(e), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f->a);
	free(f->b);
	free(f);
	return 0;
}

static void t_clean(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st;
	struct seen s;

	assert_int_equal(fsck(f, false, &s, &st), 0);
	assert_int_equal(st.problems, 0);
	assert_true(st.chunks > 0);
	assert_int_equal(st.frames_verified, st.chunks);
	assert_int_equal(st.inodes, 5); /* root, a, d, b (two names), empty */
	assert_int_equal(st.dirents, 5); /* a, d, empty, d/b, d/link */
	assert_int_equal(st.orphan_bytes, 0);
	assert_int_equal(st.dead_bytes, 0);
	assert_int_equal(st.pack_bytes, st.live_bytes);
	assert_int_equal(st.damaged_files, 0);
}

/* Flip one bit of one frame: exactly the files using that chunk are named,
 * and the engine reads EIO there (never other bytes). */
static void t_flip(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st;
	struct seen s;
	struct eng *e;
	uint8_t byte;
	int fd;

	fd = open(f->pack1, O_RDWR);
	assert_true(fd >= 0);
	/* 700 KiB into the pack: a chunk of /a beyond the part /d/b shares. */
	assert_int_equal(pread(fd, &byte, 1, 700u << 10), 1);
	byte ^= 0x10;
	assert_int_equal(pwrite(fd, &byte, 1, 700u << 10), 1);
	close(fd);
	assert_true(fsck(f, false, &s, &st) > 0);
	assert_true(s.kinds[GC_P_FRAME] >= 1);
	assert_int_equal(st.damaged_chunks, 1);
	assert_int_equal(st.damaged_files, 1);
	assert_int_equal(s.nlost, 1);
	assert_string_equal(s.lost[0], "/a");
	e = eopen(f);
	assert_int_equal(read_file(e, lookup(e, IDX_ROOT_INO, "a"), f->a, f->alen), -EIO);
	assert_int_equal(read_file(e, lookup(e, lookup(e, IDX_ROOT_INO, "d"), "b"), f->b, f->blen), 0);
	assert_int_equal(eng_store_close(e), 0);
}

/* Cut the pack inside /d/b's own data: /d/b and its link are damaged,
 * /a (written first) is not. */
static void t_truncate(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st;
	struct stat sb;
	struct seen s;

	assert_int_equal(stat(f->pack1, &sb), 0);
	assert_int_equal(truncate(f->pack1, sb.st_size - 1000), 0);
	assert_true(fsck(f, false, &s, &st) > 0);
	assert_true(st.damaged_chunks >= 1);
	assert_int_equal(st.damaged_files, 1); /* one inode, two names */
	assert_int_equal(s.nlost, 1);
	assert_true(strcmp(s.lost[0], "/d/b") == 0 || strcmp(s.lost[0], "/d/link") == 0);
}

static struct idx *iopen(struct fx *f)
{
	char ip[160];
	struct idx *x;

	snprintf(ip, sizeof(ip), "%s/index", f->store);
	assert_int_equal(idx_open(ip, 0, NULL, 0, &x), 0);
	return x;
}

static void unlink_a(struct fx *f)
{
	struct eng *e = eopen(f);

	assert_int_equal(eng_unlink(e, IDX_ROOT_INO, "a"), 0);
	assert_int_equal(eng_store_close(e), 0);
}

static void check_b(struct fx *f)
{
	struct eng *e = eopen(f);
	uint64_t d = lookup(e, IDX_ROOT_INO, "d");

	assert_int_equal(read_file(e, lookup(e, d, "b"), f->b, f->blen), 0);
	assert_int_equal(read_file(e, lookup(e, d, "link"), f->b, f->blen), 0);
	assert_int_equal(eng_store_close(e), 0);
}

/* gc with o (after unlink_a) compacts pack 1 wholly: removed, nothing
 * kept, fsck clean with no dead or orphan bytes, /d/b intact. */
static void gc_compacts_pack1(struct fx *f, const struct gc_opts *o, struct gc_stats *gs)
{
	struct gc_fsck_stats st;
	struct seen s;

	assert_int_equal(gc_run(f->store, o, gs), 0);
	assert_int_equal(gs->packs_compacted, 1);
	assert_int_equal(gs->packs_kept, 0);
	assert_int_equal(access(f->pack1, F_OK), -1);
	assert_int_equal(fsck(f, false, &s, &st), 0);
	assert_int_equal(st.dead_bytes + st.orphan_bytes, 0);
	assert_int_equal(st.pack_bytes, st.live_bytes);
	assert_true(gs->bytes_after < gs->bytes_before);
	check_b(f);
}

static void t_gc(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st;
	struct gc_stats gs;
	struct gc_opts o;
	struct seen s;

	unlink_a(f);
	assert_int_equal(fsck(f, false, &s, &st), 0);
	assert_true(st.dead_bytes > 0);
	gc_opts_default(&o);
	o.threshold = 0.2;
	o.dry_run = true;
	assert_int_equal(gc_run(f->store, &o, &gs), 0);
	assert_int_equal(gs.packs_compacted, 1);
	assert_true(gs.bytes_after < gs.bytes_before);
	o.dry_run = false;
	o.verify = true;
	gc_compacts_pack1(f, &o, &gs);
	assert_true(gs.chunks_moved > 0);
	/* Nothing left to do. */
	assert_int_equal(gc_run(f->store, &o, &gs), 0);
	assert_int_equal(gs.packs_compacted + gs.packs_emptied + gs.orphan_packs, 0);
}

/* gc --verify on a pack with a damaged frame keeps the pack (the bad
 * frame stays where it is) and moves the others out: the moved ones are
 * freed in place in the same run (they were left for the next run, so a
 * store grew by what gc copied: 43.9 -> 68.8 MiB in a user's run). */
static void t_gc_verify_kept(void **state)
{
	struct fx *f = *state;
	struct gc_stats gs, gs2;
	struct gc_opts o;
	struct stat sb;
	uint8_t byte;
	int fd;

	unlink_a(f);
	assert_int_equal(stat(f->pack1, &sb), 0);
	fd = open(f->pack1, O_RDWR);
	assert_true(fd >= 0);
	/* inside /d/b's own data (the pack's last 384 KiB) */
	assert_int_equal(pread(fd, &byte, 1, sb.st_size - (100u << 10)), 1);
	byte ^= 0x10;
	assert_int_equal(pwrite(fd, &byte, 1, sb.st_size - (100u << 10)), 1);
	close(fd);
	gc_opts_default(&o);
	o.threshold = 0.2;
	o.verify = true;
	assert_int_equal(gc_run(f->store, &o, &gs), 0);
	print_message("gc --verify: %llu kept, %llu moved, %llu copied, %llu punched, "
	              "%llu -> %llu bytes on disk\n", (unsigned long long)gs.packs_kept,
	              (unsigned long long)gs.chunks_moved, (unsigned long long)gs.bytes_copied,
	              (unsigned long long)gs.bytes_punched, (unsigned long long)gs.bytes_before,
	              (unsigned long long)gs.bytes_after);
	assert_int_equal(gs.packs_kept, 1);
	assert_true(gs.chunks_moved > 0);
	assert_int_equal(access(f->pack1, F_OK), 0);
	/* nothing left to free in place: a second run punches nothing */
	o.verify = false;
	assert_int_equal(gc_run(f->store, &o, &gs2), 0);
	print_message("then gc: %llu punched\n", (unsigned long long)gs2.bytes_punched);
	assert_int_equal(gs2.bytes_punched, 0);
	assert_true(gs.bytes_after < gs.bytes_before);
}

/* Batches of at most 2 moves: the pack's live chunks move over several
 * batches, the pack kept until the last one moved, then removed; the data
 * reads back and fsck is clean.  (A batch held every live chunk of its
 * packs: ~150 bytes each, GBs for a pack of millions of small frames.) */
static void t_gc_small_batches(void **state)
{
	struct fx *f = *state;
	struct gc_stats gs;
	struct gc_opts o;

	unlink_a(f);
	gc_opts_default(&o);
	o.threshold = 0.2;
	o.batch_moves = 2;
	gc_compacts_pack1(f, &o, &gs);
	assert_true(gs.chunks_moved > 2); /* more than one batch */
}

/* Threshold 1: nothing is copied, the dead bytes are punched out in place
 * (and an unlinked-while-open inode left by the engine is reaped). */
static void t_punch(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st, st0;
	struct gc_stats gs;
	struct gc_opts o;
	struct seen s;
	struct idx_txn *t;
	struct idx *x;
	uint64_t a;
	uint8_t type;

	unlink_a(f);
	/* An orphan as a kill -9 leaves it: nlink 0, only the mark. */
	x = iopen(f);
	assert_int_equal(idx_txn_begin(x, false, &t), 0);
	assert_int_equal(idx_dirent_lookup(t, IDX_ROOT_INO, "empty", 5, &a, &type), 0);
	assert_int_equal(idx_dirent_del(t, IDX_ROOT_INO, "empty", 5), 0);
	{
		struct idx_inode in;

		assert_int_equal(idx_inode_get(t, a, &in), 0);
		in.nlink = 0;
		assert_int_equal(idx_inode_put(t, &in), 0);
	}
	assert_int_equal(idx_orphan_add(t, a), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	idx_close(x);
	assert_int_equal(fsck(f, false, &s, &st0), 0);
	assert_int_equal(st0.orphan_inodes, 1);
	assert_true(st0.dead_bytes > 0);
	gc_opts_default(&o);
	o.threshold = 1;
	assert_int_equal(gc_run(f->store, &o, &gs), 0);
	assert_int_equal(gs.orphan_inodes, 1);
	assert_int_equal(gs.packs_compacted, 0);
	assert_false(gs.punch_unsupported);
	assert_true(gs.bytes_punched > 0);
	assert_int_equal(gs.bytes_before - gs.bytes_after, gs.bytes_punched);
	assert_int_equal(access(f->pack1, F_OK), 0);
	assert_int_equal(fsck(f, false, &s, &st), 0);
	assert_int_equal(st.dead_bytes + st.orphan_bytes, 0);
	assert_int_equal(st.orphan_inodes, 0);
	assert_int_equal(st.inodes, st0.inodes - 1);
	assert_true(st.disk_bytes < st0.disk_bytes);
	check_b(f);
}

/* A crash after each step: consistent, readable, and the next gc ends
 * with no dead or orphan byte left. */
static void gc_stop_at(struct fx *f, enum gc_stop stop)
{
	struct gc_fsck_stats st;
	struct gc_stats gs;
	struct gc_opts o;
	struct seen s;

	unlink_a(f);
	gc_opts_default(&o);
	o.threshold = 0;
	o.stop = stop;
	assert_int_equal(gc_run(f->store, &o, &gs), -ECANCELED);
	assert_int_equal(fsck(f, false, &s, &st), 0);
	check_b(f);
	o.stop = GC_STOP_NONE;
	assert_int_equal(gc_run(f->store, &o, &gs), 0);
	assert_int_equal(fsck(f, false, &s, &st), 0);
	assert_int_equal(st.dead_bytes + st.orphan_bytes, 0);
	assert_int_equal(st.pack_bytes, st.live_bytes);
	check_b(f);
}

static void t_stop_copy(void **state)
{
	gc_stop_at(*state, GC_STOP_AFTER_COPY);
}

static void t_stop_sync(void **state)
{
	gc_stop_at(*state, GC_STOP_AFTER_SYNC);
}

static void t_stop_commit(void **state)
{
	gc_stop_at(*state, GC_STOP_AFTER_COMMIT);
}

/* gc_compact as gc_run drives it (its own pack store, the packs it
 * creates left alone), with a host whose first commit after a pack sync
 * fails as LMDB's on a full disk does (EIO): the batch's copies must go
 * again, and gc compact the packs one at a time. */
struct tight_host {
	struct idx *x;
	uint32_t new_ids[16];
	unsigned nnew, syncs, fails;
	struct pack_store *ps;
};

static int tight_alloc(void *arg, uint32_t *id)
{
	struct tight_host *th = arg;
	struct idx_txn *t;

	assert_true(th->nnew < 16);
	assert_int_equal(idx_txn_begin(th->x, false, &t), 0);
	assert_int_equal(idx_pack_alloc(t, id), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	th->new_ids[th->nnew++] = *id;
	return 0;
}

static bool tight_is_new(void *arg, uint32_t id)
{
	struct tight_host *th = arg;

	for (unsigned i = 0; i < th->nnew; i++)
		if (th->new_ids[i] == id)
			return true;
	return false;
}

static int tight_sync(void *arg)
{
	struct tight_host *th = arg;

	th->syncs++;
	return pack_sync(th->ps);
}

static int tight_txn_begin(void *arg, struct idx_txn **t)
{
	struct tight_host *th = arg;

	return idx_txn_begin(th->x, false, t);
}

static int tight_txn_end(void *arg, struct idx_txn *t, int rc)
{
	struct tight_host *th = arg;

	if (rc >= 0 && th->syncs && !th->fails) {
		th->fails++;
		rc = -EIO;
	}
	if (rc < 0) {
		idx_txn_abort(t);
		return rc;
	}
	return idx_txn_commit(t);
}

static void t_batch_nospc(void **state)
{
	struct fx *f = *state;
	struct tight_host th = { 0 };
	struct gc_fsck_stats st;
	struct gc_stats gs;
	struct gc_opts o;
	struct gc_host h;
	struct seen s;
	char ip[160], pp[160];
	uint8_t *x = malloc(MIB);

	assert_non_null(x);
	unlink_a(f);
	/* two more packs (one per open), each half dead: their heads (a
	 * dead tail would be cut in place, leaving nothing to compact) */
	for (int k = 0; k < 2; k++) {
		struct eng *e = eopen(f);
		char name[8];

		fill(x, MIB, 10 + (uint64_t)k);
		snprintf(name, sizeof(name), "y%d", k);
		put_file(e, IDX_ROOT_INO, name, x + MIB / 2, MIB / 2);
		assert_int_equal(eng_unlink(e, IDX_ROOT_INO, name), 0);
		snprintf(name, sizeof(name), "x%d", k);
		put_file(e, IDX_ROOT_INO, name, x, MIB / 2);
		assert_int_equal(eng_store_close(e), 0);
	}
	snprintf(ip, sizeof(ip), "%s/index", f->store);
	snprintf(pp, sizeof(pp), "%s/packs", f->store);
	assert_int_equal(idx_open(ip, 0, NULL, 0, &th.x), 0);
	assert_int_equal(pack_store_open(pp, NULL, tight_alloc, &th, &th.ps), 0);
	memset(&h, 0, sizeof(h));
	h.idx = th.x;
	h.ps = th.ps;
	h.pack_dir = pp;
	h.pack_id_limit = UINT32_MAX;
	h.pack_is_new = tight_is_new;
	h.txn_begin = tight_txn_begin;
	h.txn_end = tight_txn_end;
	h.pack_sync = tight_sync;
	h.arg = &th;
	gc_opts_default(&o);
	o.threshold = 0.2;
	assert_int_equal(gc_compact(&h, &o, &gs), 0);
	pack_store_close(th.ps);
	idx_close(th.x);
	assert_int_equal(th.fails, 1);
	assert_int_equal(gs.packs_compacted, 3);
	assert_int_equal(gs.packs_kept, 0);
	/* the failed batch's copies are gone: no orphan byte left */
	assert_int_equal(fsck(f, false, &s, &st), 0);
	assert_int_equal(st.dead_bytes + st.orphan_bytes, 0);
	assert_int_equal(st.pack_bytes, st.live_bytes);
	assert_int_equal(st.orphan_packs, 0);
	assert_int_equal(gs.bytes_copied, st.live_bytes);
	check_b(f);
	{
		struct eng *e = eopen(f);

		for (int k = 0; k < 2; k++) {
			char name[8];

			fill(x, MIB, 10 + (uint64_t)k);
			snprintf(name, sizeof(name), "x%d", k);
			assert_int_equal(read_file(e, lookup(e, IDX_ROOT_INO, name), x, MIB / 2), 0);
		}
		assert_int_equal(eng_store_close(e), 0);
	}
	free(x);
}

/* The first chunk with at least min_refs references. */
struct first_chunk {
	uint32_t min_refs;
	struct idx_chunk c;
	bool found;
};

static int take_first(void *arg, const struct idx_chunk *c)
{
	struct first_chunk *fc = arg;

	if (c->refcount < fc->min_refs)
		return 0;
	fc->c = *c;
	fc->found = true;
	return 1;
}

/* Index damage of every repairable kind, then --repair, then clean. */
static void t_repair(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st;
	struct idx_inode root, in;
	struct first_chunk fc = { 0 };
	struct idx_pack pk;
	struct idx_txn *t;
	struct idx *x = iopen(f);
	struct seen s;
	struct eng *e;
	uint64_t a, lost;
	uint8_t type;

	assert_int_equal(idx_txn_begin(x, false, &t), 0);
	assert_int_equal(idx_dirent_lookup(t, IDX_ROOT_INO, "a", 1, &a, &type), 0);
	/* wrong link count */
	assert_int_equal(idx_inode_get(t, a, &in), 0);
	in.nlink = 3;
	assert_int_equal(idx_inode_put(t, &in), 0);
	/* entry naming a missing inode */
	assert_int_equal(idx_inode_get(t, IDX_ROOT_INO, &root), 0);
	assert_int_equal(idx_dirent_add(t, &root, "ghost", 5, 424242, 8), 0);
	assert_int_equal(idx_inode_put(t, &root), 0);
	/* inode without a name */
	assert_int_equal(idx_ino_alloc(t, &lost), 0);
	in.ino = lost;
	in.nlink = 1;
	in.size = 0;
	in.stored_bytes = 0;
	assert_int_equal(idx_inode_put(t, &in), 0);
	/* orphan mark on a linked file: the next mount would delete it */
	assert_int_equal(idx_orphan_add(t, a), 0);
	/* pack record off by 100 */
	assert_int_equal(idx_pack_get(t, 1, &pk), 0);
	pk.live_bytes += 100;
	assert_int_equal(idx_pack_put(t, &pk), 0);
	/* a chunk nothing uses, with refcount 2, whose bytes are another's */
	assert_int_equal(idx_chunk_iter(t, take_first, &fc), 1);
	assert_true(fc.found);
	fc.c.fp[0] ^= 1;
	fc.c.refcount = 2;
	fc.c.flags = 0;
	assert_int_equal(idx_chunk_insert(t, &fc.c), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	idx_close(x);

	assert_true(fsck(f, false, &s, &st) > 0);
	assert_int_equal(s.kinds[GC_P_NLINK], 1);
	assert_int_equal(s.kinds[GC_P_DIRENT], 1);
	assert_int_equal(s.kinds[GC_P_LOST], 1);
	assert_int_equal(s.kinds[GC_P_ORPHAN], 1);
	assert_int_equal(s.kinds[GC_P_PACK], 2); /* live bytes; the fake overlaps the real */
	assert_int_equal(s.kinds[GC_P_REFCOUNT], 1);
	assert_int_equal(s.kinds[GC_P_FRAME], 1); /* its bytes do not match its SHA-256 */
	assert_int_equal(s.repaired, 0);

	/* The fake chunk's frame and overlap problems are not repaired as
	 * such: the chunk goes with its (fake) references, so the next check
	 * is clean. */
	assert_int_equal(fsck(f, true, &s, &st), 2);
	assert_int_equal(s.repaired, 6);
	assert_int_equal(fsck(f, false, &s, &st), 0);

	e = eopen(f);
	assert_int_equal(read_file(e, lookup(e, IDX_ROOT_INO, "a"), f->a, f->alen), 0);
	{
		char name[32];

		snprintf(name, sizeof(name), "#%llu", (unsigned long long)lost);
		lookup(e, lookup(e, IDX_ROOT_INO, "lost+found"), name);
	}
	assert_int_equal(eng_store_close(e), 0);
}

/* An inode without a name (/a) and a superblock whose next inode number
 * is in use (/d/b's): --repair mends the counter before it makes
 * /lost+found, which took that number and overwrote /d/b (a directory
 * then, its data unreachable, and "repaired").  A /lost+found that is a
 * user's file stays one: lost+found.1 takes the lost inode. */
static void t_repair_lost_order(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st;
	struct seen s;
	struct idx_txn *t;
	struct idx_inode root;
	struct idx_super sb;
	struct eng_attr at;
	struct idx *x = iopen(f);
	uint64_t a, d, b, empty;
	uint8_t type;
	struct eng *e;
	char name[32];

	assert_int_equal(idx_txn_begin(x, false, &t), 0);
	assert_int_equal(idx_dirent_lookup(t, IDX_ROOT_INO, "a", 1, &a, &type), 0);
	assert_int_equal(idx_dirent_lookup(t, IDX_ROOT_INO, "d", 1, &d, &type), 0);
	assert_int_equal(idx_dirent_lookup(t, d, "b", 1, &b, &type), 0);
	assert_int_equal(idx_dirent_lookup(t, IDX_ROOT_INO, "empty", 5, &empty, &type), 0);
	assert_int_equal(idx_dirent_del(t, IDX_ROOT_INO, "a", 1), 0);
	/* the user's lost+found: /empty under that name */
	assert_int_equal(idx_inode_get(t, IDX_ROOT_INO, &root), 0);
	assert_int_equal(idx_dirent_del(t, IDX_ROOT_INO, "empty", 5), 0);
	assert_int_equal(idx_dirent_add(t, &root, "lost+found", 10, empty, 8), 0);
	assert_int_equal(idx_inode_put(t, &root), 0);
	assert_int_equal(idx_super_get(t, &sb), 0);
	sb.next_ino = b;
	assert_int_equal(idx_super_put(t, &sb), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	idx_close(x);

	assert_true(fsck(f, false, &s, &st) > 0);
	assert_int_equal(s.kinds[GC_P_LOST], 1);
	assert_int_equal(fsck(f, true, &s, &st), 0);
	assert_int_equal(fsck(f, false, &s, &st), 0);
	e = eopen(f);
	assert_int_equal(read_file(e, lookup(e, lookup(e, IDX_ROOT_INO, "d"), "b"), f->b, f->blen), 0);
	snprintf(name, sizeof(name), "#%llu", (unsigned long long)a);
	assert_int_equal(read_file(e, lookup(e, lookup(e, IDX_ROOT_INO, "lost+found.1"), name), f->a,
	                           f->alen), 0);
	assert_int_equal(eng_getattr(e, lookup(e, IDX_ROOT_INO, "lost+found"), &at), 0);
	assert_true(S_ISREG(at.st.st_mode)); /* the user's file, left alone */
	assert_int_equal(eng_store_close(e), 0);
}

/* The tensors tables: an entry of a file that does not exist, one of a
 * directory, and half of a pair are reported and dropped by --repair;
 * a whole entry of a regular file is left alone. */
static void t_tensors(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st;
	struct seen s;
	struct idx_txn *t;
	struct idx *x = iopen(f);
	const struct idx_tensor one = { 0x77, 65536 };
	uint64_t a, d, inos[4];
	uint8_t type;
	uint8_t k[24] = { 0 };

	assert_int_equal(idx_txn_begin(x, false, &t), 0);
	assert_int_equal(idx_dirent_lookup(t, IDX_ROOT_INO, "a", 1, &a, &type), 0);
	assert_int_equal(idx_dirent_lookup(t, IDX_ROOT_INO, "d", 1, &d, &type), 0);
	assert_int_equal(idx_tensors_set(t, a, &one, 1), 0);      /* fine */
	assert_int_equal(idx_tensors_set(t, 987654, &one, 1), 0); /* no such inode */
	assert_int_equal(idx_tensors_set(t, d, &one, 1), 0);      /* a directory */
	k[7] = 0x78;  /* key 0x78 */
	k[13] = 1;    /* length 65536 */
	k[23] = (uint8_t)a; /* inode a: no twin in tensorino */
	assert_true(a < 256);
	assert_int_equal(idx_raw_put(t, "tensors", k, sizeof(k), "", 0), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	idx_close(x);

	assert_true(fsck(f, false, &s, &st) > 0);
	assert_int_equal(s.kinds[GC_P_TENSORS], 3);
	assert_int_equal(fsck(f, true, &s, &st), 0); /* all repaired */
	assert_int_equal(s.repaired, 3);
	assert_int_equal(fsck(f, false, &s, &st), 0);
	x = iopen(f);
	assert_int_equal(idx_txn_begin(x, true, &t), 0);
	assert_int_equal(idx_tensor_find(t, 0x77, 65536, inos, 4), 1);
	assert_int_equal(inos[0], a);
	assert_int_equal(idx_tensor_find(t, 0x78, 65536, inos, 4), 0);
	idx_txn_abort(t);
	idx_close(x);
}

/* A lazy-coding hint of a chunk that does not exist is reported and
 * dropped by --repair; one of an existing chunk (whose reference is gone,
 * even) is left alone. */
static void t_hints(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st;
	struct seen s;
	struct idx_txn *t;
	struct idx *x = iopen(f);
	struct first_chunk fc = { 0 };
	uint8_t some[FP_LEN], none[FP_LEN], ref[FP_LEN];
	int found = 0;

	assert_int_equal(idx_txn_begin(x, false, &t), 0);
	assert_int_equal(idx_chunk_iter(t, take_first, &fc), 1);
	memcpy(some, fc.c.fp, FP_LEN);
	memset(none, 0xEE, FP_LEN);
	memset(ref, 0xDD, FP_LEN);
	assert_int_equal(idx_hint_set(t, some, ref), 0); /* fine */
	assert_int_equal(idx_hint_set(t, none, some), 0); /* no such chunk */
	assert_int_equal(idx_txn_commit(t), 0);
	idx_close(x);

	assert_true(fsck(f, false, &s, &st) > 0);
	assert_int_equal(s.kinds[GC_P_HINTS], 1);
	assert_int_equal(fsck(f, true, &s, &st), 0);
	assert_int_equal(s.repaired, 1);
	assert_int_equal(fsck(f, false, &s, &st), 0);
	x = iopen(f);
	assert_int_equal(idx_txn_begin(x, true, &t), 0);
	found = idx_hint_get(t, some, ref) == 0;
	assert_int_equal(idx_hint_get(t, none, ref), -ENOENT);
	idx_txn_abort(t);
	idx_close(x);
	assert_true(found);
}

/* The refby table out of step with the chunk records (an edge lost, one
 * planted, a loose mark of a missing chunk) is one problem, rebuilt by
 * --repair. */
static void t_refby(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st;
	struct idx_refby_check r;
	struct seen s;
	struct idx_txn *t;
	struct idx *x = iopen(f);
	struct first_chunk fc = { 0 };
	uint8_t k[2 * FP_LEN], none[FP_LEN];

	assert_int_equal(idx_txn_begin(x, false, &t), 0);
	assert_int_equal(idx_chunk_iter(t, take_first, &fc), 1);
	memset(none, 0xEE, FP_LEN);
	memcpy(k, fc.c.fp, FP_LEN);
	memcpy(k + FP_LEN, none, FP_LEN);
	assert_int_equal(idx_raw_put(t, "refby", k, sizeof(k), "", 0), 0);
	assert_int_equal(idx_raw_put(t, "loose", none, FP_LEN, "", 0), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	idx_close(x);

	assert_true(fsck(f, false, &s, &st) > 0);
	assert_int_equal(s.kinds[GC_P_REFBY], 1);
	assert_int_equal(fsck(f, true, &s, &st), 0);
	assert_int_equal(s.repaired, 1);
	assert_int_equal(fsck(f, false, &s, &st), 0);
	x = iopen(f);
	assert_int_equal(idx_txn_begin(x, true, &t), 0);
	assert_int_equal(idx_refby_verify(t, &r), 0);
	assert_int_equal(r.stray + r.loose_stray, 0);
	assert_int_equal(r.edges, r.refs);
	idx_txn_abort(t);
	idx_close(x);
}

/* The two repairs that need a full count: a refcount below the references
 * (the last unref would free a chunk still in use) and stats counters that
 * disagree with the records (files, and the series counter ref_stored). */
static void t_repair_counts(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st;
	struct first_chunk fc = { .min_refs = 2 }; /* shared by /a and /d/b */
	struct idx_txn *t;
	struct idx *x = iopen(f);
	struct seen s;
	uint8_t rec[1024];
	int n;

	assert_int_equal(idx_txn_begin(x, false, &t), 0);
	/* a chunk /a and /d/b share, counted once */
	assert_int_equal(idx_chunk_iter(t, take_first, &fc), 1);
	assert_int_equal(idx_chunk_refcount_set(t, fc.c.fp, fc.c.refcount - 1), 0);
	n = idx_raw_get(t, "super", "stats", 5, rec, sizeof(rec));
	assert_true(n >= 16 && n <= (int)sizeof(rec));
	rec[7] ^= 4;     /* files: first field */
	rec[n - 1] ^= 1; /* ref_stored_bytes: last field */
	assert_int_equal(idx_raw_put(t, "super", "stats", 5, rec, (size_t)n), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	idx_close(x);

	assert_int_equal(fsck(f, false, &s, &st), 2); /* problems left */
	assert_int_equal(s.kinds[GC_P_REFCOUNT], 1);
	assert_int_equal(s.kinds[GC_P_STATS], 1);
	assert_int_equal(fsck(f, true, &s, &st), 0);
	assert_int_equal(s.repaired, 2);
	assert_int_equal(fsck(f, false, &s, &st), 0);

	/* Repaired for real: after /a goes, the shared chunk still serves
	 * /d/b, and the counters keep matching the records. */
	unlink_a(f);
	check_b(f);
	assert_int_equal(fsck(f, false, &s, &st), 0);
}

/* An orphan mark on a file that still has a name (nlink 0 too): gc must
 * not delete it, fsck flags it, repair restores the count and drops the
 * mark. */
static void t_orphan_linked(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st;
	struct gc_stats gs;
	struct idx_inode in;
	struct idx_txn *t;
	struct idx *x = iopen(f);
	struct seen s;
	struct eng *e;
	uint64_t a;
	uint8_t type;

	assert_int_equal(idx_txn_begin(x, false, &t), 0);
	assert_int_equal(idx_dirent_lookup(t, IDX_ROOT_INO, "a", 1, &a, &type), 0);
	assert_int_equal(idx_inode_get(t, a, &in), 0);
	in.nlink = 0;
	assert_int_equal(idx_inode_put(t, &in), 0);
	assert_int_equal(idx_orphan_add(t, a), 0);
	assert_int_equal(idx_txn_commit(t), 0);
	idx_close(x);
	assert_int_equal(gc_run(f->store, NULL, &gs), 0);
	assert_int_equal(gs.orphan_inodes, 0);
	assert_int_equal(fsck(f, false, &s, &st), 2);
	assert_int_equal(s.kinds[GC_P_ORPHAN], 1);
	assert_int_equal(s.kinds[GC_P_NLINK], 1);
	assert_int_equal(fsck(f, true, &s, &st), 0);
	assert_int_equal(s.repaired, 2);
	assert_int_equal(fsck(f, false, &s, &st), 0);
	e = eopen(f);
	assert_int_equal(read_file(e, lookup(e, IDX_ROOT_INO, "a"), f->a, f->alen), 0);
	assert_int_equal(eng_store_close(e), 0);
}

static void t_lock(void **state)
{
	struct fx *f = *state;
	struct gc_fsck_stats st;
	struct gc_stats gs;
	struct seen s;
	struct eng *e;
	struct gc_lock *l, *l2;
	int fd;

	assert_int_equal(gc_store_lock(f->store, GC_LOCK_EXCLUSIVE, &l), 0);
	assert_int_equal(gc_store_lock(f->store, GC_LOCK_SHARED, &l2), -EBUSY);
	assert_int_equal(gc_run(f->store, NULL, &gs), -EBUSY);
	gc_store_unlock(l);
	/* Checks share the lock; a gc waits for none of them. */
	assert_int_equal(gc_store_lock(f->store, GC_LOCK_SHARED, &l), 0);
	assert_int_equal(gc_store_lock(f->store, GC_LOCK_SHARED, &l2), 0);
	assert_int_equal(gc_run(f->store, NULL, &gs), -EBUSY);
	gc_store_unlock(l);
	gc_store_unlock(l2);
	/* The engine's writer lock (a read-write mount) keeps gc out. */
	assert_int_equal(eng_store_lock(f->store, &fd), 0);
	assert_int_equal(gc_run(f->store, NULL, &gs), -EBUSY);
	close(fd);
	/* An open engine holds the index: gc and repair refuse, a check runs. */
	e = eopen(f);
	assert_int_equal(gc_store_in_use(f->store), 1);
	assert_int_equal(gc_run(f->store, NULL, &gs), -EBUSY);
	assert_int_equal(fsck(f, true, &s, &st), -EBUSY);
	assert_int_equal(fsck(f, false, &s, &st), 0);
	assert_true(st.in_use);
	assert_int_equal(eng_store_close(e), 0);
	assert_int_equal(gc_store_in_use(f->store), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(t_flip, setup, teardown),
		cmocka_unit_test_setup_teardown(t_truncate, setup, teardown),
		cmocka_unit_test_setup_teardown(t_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(t_punch, setup, teardown),
		cmocka_unit_test_setup_teardown(t_stop_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(t_stop_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(t_stop_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(t_batch_nospc, setup, teardown),
		cmocka_unit_test_setup_teardown(t_repair, setup, teardown),
		cmocka_unit_test_setup_teardown(t_gc_small_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(t_gc_verify_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(t_repair_lost_order, setup, teardown),
		cmocka_unit_test_setup_teardown(t_repair_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(t_tensors, setup, teardown),
		cmocka_unit_test_setup_teardown(t_refby, setup, teardown),
		cmocka_unit_test_setup_teardown(t_hints, setup, teardown),
		cmocka_unit_test_setup_teardown(t_orphan_linked, setup, teardown),
		cmocka_unit_test_setup_teardown(t_lock, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
