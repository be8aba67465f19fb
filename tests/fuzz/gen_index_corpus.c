/*
 * gen_index_corpus.c - writes the seed corpus of fuzz_index: every record
 * of the fuzz target's base store (built by fuzz_index_base through idx.h,
 * then read back raw with LMDB), one input each, so the seeds are exactly
 * what idx.c encodes; plus a few inputs that commit (a superblock of a
 * newer format, one without the magic, a stats record of the older
 * 22-counter form) and one that plants a chunk and an extent together.
 * Not a test: run by hand when the record formats change,
 *   build/tests/fuzz/gen_index_corpus tests/fuzz/corpus/fuzz_index
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "index/idx.h"

#define FUZZ_INDEX_DBS 15
extern const char *const fuzz_index_dbs[FUZZ_INDEX_DBS];
int fuzz_index_base(struct idx *x);

#define FLAG_COMMIT 0x01u
#define FLAG_NO_WRITES 0x02u

static const char *out_dir;

struct input {
	uint8_t b[4096];
	size_t n;
};

static void in_start(struct input *in, uint8_t flags)
{
	in->b[0] = flags;
	in->n = 1;
}

static void in_add(struct input *in, unsigned db, const void *k, size_t kl, const void *v,
                   size_t vl)
{
	if (in->n + 5 + kl + vl > sizeof(in->b)) {
		fprintf(stderr, "gen_index_corpus: input too long\n");
		exit(1);
	}
	in->b[in->n++] = (uint8_t)db;
	in->b[in->n++] = (uint8_t)(kl >> 8);
	in->b[in->n++] = (uint8_t)kl;
	memcpy(in->b + in->n, k, kl);
	in->n += kl;
	in->b[in->n++] = (uint8_t)(vl >> 8);
	in->b[in->n++] = (uint8_t)vl;
	memcpy(in->b + in->n, v, vl);
	in->n += vl;
}

/* A value of n4 * 4 copies of byte c (the fuzz target's long form). */
static void in_add_long(struct input *in, unsigned db, const void *k, size_t kl, unsigned n4,
                        uint8_t c)
{
	in->b[in->n++] = (uint8_t)db;
	in->b[in->n++] = (uint8_t)(kl >> 8);
	in->b[in->n++] = (uint8_t)kl;
	memcpy(in->b + in->n, k, kl);
	in->n += kl;
	in->b[in->n++] = (uint8_t)(0x80 | n4 >> 8);
	in->b[in->n++] = (uint8_t)n4;
	in->b[in->n++] = c;
}

static void in_write(const struct input *in, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(in->b, 1, in->n, f) != in->n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* One record of the base store, kept for the combined inputs. */
struct rec {
	unsigned db;
	uint8_t k[512], v[512];
	size_t kl, vl;
};

static struct rec recs[64];
static unsigned nrecs;

static const struct rec *find(unsigned db, const char *key, size_t kl)
{
	for (unsigned i = 0; i < nrecs; i++)
		if (recs[i].db == db && recs[i].kl == kl && memcmp(recs[i].k, key, kl) == 0)
			return &recs[i];
	return NULL;
}

static const struct rec *first(unsigned db)
{
	for (unsigned i = 0; i < nrecs; i++)
		if (recs[i].db == db)
			return &recs[i];
	return NULL;
}

static int dump_raw(const char *dir)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16) ||
	    mdb_env_open(env, dir, MDB_RDONLY, 0644) || mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
		return -EIO;
	for (unsigned db = 0; db < FUZZ_INDEX_DBS; db++) {
		unsigned n = 0;

		if (mdb_dbi_open(txn, fuzz_index_dbs[db], 0, &dbi) ||
		    mdb_cursor_open(txn, dbi, &cur))
			return -EIO;
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			struct rec *r = &recs[nrecs];
			struct input in;
			char name[64];

			if (nrecs == 64 || k.mv_size > sizeof(r->k) || v.mv_size > sizeof(r->v))
				return -E2BIG;
			r->db = db;
			r->kl = k.mv_size;
			r->vl = v.mv_size;
			memcpy(r->k, k.mv_data, k.mv_size);
			memcpy(r->v, v.mv_data, v.mv_size);
			nrecs++;
			in_start(&in, 0);
			in_add(&in, db, r->k, r->kl, r->v, r->vl);
			snprintf(name, sizeof(name), "%s-%u", fuzz_index_dbs[db], n++);
			in_write(&in, name);
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return 0;
}

static void special_inputs(void)
{
	const struct rec *sb = find(0, "super", 5), *st = find(0, "stats", 5);
	const struct rec *ch = first(5), *ex = first(4), *sl = first(8), *xa = first(7);
	struct input in;
	uint8_t v[512];

	if (!sb || !st || !ch || !ex || !sl || !xa || sb->vl < 12 || st->vl < 176) {
		fprintf(stderr, "gen_index_corpus: base store lacks records\n");
		exit(1);
	}
	/* A valid superblock, committed and opened again. */
	in_start(&in, FLAG_COMMIT | FLAG_NO_WRITES);
	in_add(&in, 0, sb->k, sb->kl, sb->v, sb->vl);
	in_write(&in, "commit-super");
	/* A newer format: idx_open must say -EPROTONOSUPPORT. */
	memcpy(v, sb->v, sb->vl);
	v[11] = (uint8_t)(IDX_FORMAT_VERSION + 1);
	in_start(&in, FLAG_COMMIT | FLAG_NO_WRITES);
	in_add(&in, 0, sb->k, sb->kl, v, sb->vl);
	in_write(&in, "commit-super-newer");
	/* Not our magic: -EINVAL. */
	memcpy(v, sb->v, sb->vl);
	v[0] ^= 0x20;
	in_start(&in, FLAG_COMMIT | FLAG_NO_WRITES);
	in_add(&in, 0, sb->k, sb->kl, v, sb->vl);
	in_write(&in, "commit-super-magic");
	/* The 22-counter stats record of before the ref byte counters: the
	 * two are recounted from the chunks (the base store has one coded
	 * against a reference), then written back in full by the commit. */
	in_start(&in, 0);
	in_add(&in, 0, st->k, st->kl, st->v, 176);
	in_write(&in, "stats-v1");
	in_start(&in, FLAG_COMMIT);
	in_add(&in, 0, st->k, st->kl, st->v, 176);
	in_write(&in, "commit-stats-v1");
	/* A chunk and an extent together, committed (punch, delete, sweep). */
	in_start(&in, FLAG_COMMIT);
	in_add(&in, 5, ch->k, ch->kl, ch->v, ch->vl);
	in_add(&in, 4, ex->k, ex->kl, ex->v, ex->vl);
	in_write(&in, "commit-chunk-extent");
	/* Values one past the limits: a 4096-byte symlink target, a
	 * 65540-byte xattr value (both must read as -EIO). */
	in_start(&in, 0);
	in_add_long(&in, 8, sl->k, sl->kl, 1024, 'a');
	in_write(&in, "symlink-long");
	in_start(&in, 0);
	in_add_long(&in, 7, xa->k, xa->kl, 16385, 'x');
	in_write(&in, "xattr-long");
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/gen_index_corpus.XXXXXX", p[64];
	struct idx_super s;
	struct idx *x;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_index_corpus OUTDIR\n");
		return 2;
	}
	out_dir = argv[1];
	if (!mkdtemp(dir))
		return 1;
	memset(&s, 0, sizeof(s));
	memcpy(s.uuid, "fuzz-index-store", 16);
	cdc_params_default(&s.cdc);
	s.default_level = 2;
	s.next_ino = 2;
	rc = idx_open(dir, IDX_CREATE, &s, 64u << 20, &x);
	if (rc == 0) {
		rc = fuzz_index_base(x);
		idx_close(x);
	}
	if (rc == 0)
		rc = dump_raw(dir);
	if (rc == 0)
		special_inputs();
	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/lock.mdb", dir);
	unlink(p);
	rmdir(dir);
	if (rc < 0) {
		fprintf(stderr, "gen_index_corpus: %s\n", strerror(-rc));
		return 1;
	}
	printf("%u records written as seeds to %s\n", nrecs, out_dir);
	return 0;
}
