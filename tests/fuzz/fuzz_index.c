/*
 * fuzz_index.c - hostile index records given to every decoder of
 * index/idx.c: each getter and iterator must return a clean result (0, a
 * documented positive value, or a negative errno: -EIO for a malformed
 * record), never crash, hang, read or write out of bounds (ASan/UBSan).
 *
 * Once per process a store is built in a temporary directory through the
 * public API (fuzz_index_base: a small tree with files, extents, chunks
 * coded with and without a reference, packs, xattrs, a symlink, an
 * orphan).  Each input then plants raw records over it, inside one write
 * transaction (idx_raw_put, index/idx_test_i.h), probes every decoder
 * through idx.h (on the planted keys and on the base ones), runs the
 * writers that read records first (punch, map, delete, chunk relocate and
 * unref, dirent delete, ...), and aborts: the base store never changes.  With flag
 * bit 0 the transaction is committed instead, the store closed and opened
 * again (a garbage superblock must make idx_open fail with -EINVAL, -EIO
 * or -EPROTONOSUPPORT), probed read-only, and then restored from a copy.
 *
 * Input:  flags(1) then up to MAX_RECS records
 *         db(1, modulo the 15 databases) klen(2, BE) key vlen(2, BE) value
 * (a length past the end of the input is cut to what is left; a vlen with
 * the top bit set stands for (vlen & 0x7fff) * 4 copies of the next byte).
 * Seeds: tests/fuzz/corpus/fuzz_index, written by gen_index_corpus.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "index/idx.h"
#include "index/idx_test_i.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Shared with gen_index_corpus.c. */
#define FUZZ_INDEX_DBS 15
extern const char *const fuzz_index_dbs[FUZZ_INDEX_DBS];
int fuzz_index_base(struct idx *x);

#define FLAG_COMMIT 0x01u
#define FLAG_NO_WRITES 0x02u /* commit the planted records only */
#define MAX_RECS 16
#define MAX_KEY 511 /* LMDB's default key size limit */
#define MAP_SIZE (64u << 20)

const char *const fuzz_index_dbs[FUZZ_INDEX_DBS] = {
	"super", "inodes", "dirents", "dirseq", "extents", "chunks",
	"packs", "xattrs", "symlinks", "orphans", "tensors", "tensorino", "hints",
	"refby", "loose",
};

enum { D_SUPER, D_INODES, D_DIRENTS, D_DIRSEQ, D_EXTENTS, D_CHUNKS, D_PACKS, D_XATTRS,
       D_SYMLINKS, D_ORPHANS, D_TENSORS, D_TENSORINO, D_HINTS, D_REFBY, D_LOOSE };

#define CHECK(c)                                                                       \
	do {                                                                           \
		if (!(c)) {                                                            \
			fprintf(stderr, "fuzz_index: %s:%d: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                       \
		}                                                                      \
	} while (0)

/* 0 or a clean failure: a negative errno.  Evaluates rc once. */
#define CHECK_ERR(rc)                                  \
	do {                                           \
		int rc_ = (rc);                        \
		CHECK(rc_ <= 0 && rc_ > -4096);        \
	} while (0)

/* --- the base store ------------------------------------------------------ */

static void fp_fill(uint8_t fp[FP_LEN], uint8_t b)
{
	memset(fp, b, FP_LEN);
}

static int put_inode(struct idx_txn *t, uint64_t ino, uint32_t mode, uint32_t nlink,
                     uint64_t size, struct idx_inode *out)
{
	memset(out, 0, sizeof(*out));
	out->ino = ino;
	out->mode = mode;
	out->nlink = nlink;
	out->size = size;
	out->uid = 1000;
	out->gid = 1000;
	out->mtime_ns = out->ctime_ns = out->atime_ns = 1700000000000000000ll;
	out->dir_seq = 0;
	out->dtype = 1;
	return idx_inode_put(t, out);
}

/* Inodes 1 (root: "file" -> 2, "link" -> 3, "dir" -> 4), 2 (three
 * extents over chunks A and B, two xattrs), 3 (symlink), 4 (empty dir, one
 * empty xattr), 5 (orphan file on chunk B).  Chunk B is coded against A. */
int fuzz_index_base(struct idx *x)
{
	struct idx_inode root, file, link, dir, orph;
	struct idx_chunk a, b;
	struct idx_super s;
	struct idx_txn *t;
	int rc;

	rc = idx_txn_begin(x, false, &t);
	if (rc < 0)
		return rc;
	rc = idx_super_get(t, &s);
	if (rc < 0)
		goto out;
	s.next_ino = 6;
	s.next_pack = 2;
	if ((rc = idx_super_put(t, &s)) < 0 ||
	    (rc = put_inode(t, 1, S_IFDIR | 0755, 3, 0, &root)) < 0 ||
	    (rc = put_inode(t, 2, S_IFREG | 0644, 1, 16384, &file)) < 0 ||
	    (rc = put_inode(t, 3, S_IFLNK | 0777, 1, 4, &link)) < 0 ||
	    (rc = put_inode(t, 4, S_IFDIR | 0700, 2, 0, &dir)) < 0 ||
	    (rc = put_inode(t, 5, S_IFREG | 0600, 0, 4096, &orph)) < 0)
		goto out;
	if ((rc = idx_dirent_add(t, &root, "file", 4, 2, S_IFREG >> 12)) < 0 ||
	    (rc = idx_dirent_add(t, &root, "link", 4, 3, S_IFLNK >> 12)) < 0 ||
	    (rc = idx_dirent_add(t, &root, "dir", 3, 4, S_IFDIR >> 12)) < 0 ||
	    (rc = idx_inode_put(t, &root)) < 0)
		goto out;
	memset(&a, 0, sizeof(a));
	fp_fill(a.fp, 0xa1);
	a.pack_id = 0;
	a.pack_off = 0;
	a.frame_len = 100;
	a.raw_len = 4096;
	a.level = 1;
	a.dtype = 1;
	b = a;
	fp_fill(b.fp, 0xb2);
	b.pack_id = 1;
	b.frame_len = 50;
	b.level = 2;
	b.dtype = 3;
	b.flags = IDX_CHUNK_HAS_REF;
	memcpy(b.ref_fp, a.fp, FP_LEN);
	if ((rc = idx_chunk_insert(t, &a)) < 0 || (rc = idx_chunk_insert(t, &b)) < 0 ||
	    (rc = idx_file_map(t, &file, 0, 4096, a.fp, 0)) < 0 ||
	    (rc = idx_file_map(t, &file, 4096, 4096, b.fp, 0)) < 0 ||
	    (rc = idx_file_map(t, &file, 12288, 2048, a.fp, 2048)) < 0 ||
	    (rc = idx_file_map(t, &orph, 0, 4096, b.fp, 0)) < 0 ||
	    (rc = idx_inode_put(t, &file)) < 0 || (rc = idx_inode_put(t, &orph)) < 0)
		goto out;
	if ((rc = idx_xattr_set(t, 2, "user.a", "1", 1, 0)) < 0 ||
	    (rc = idx_xattr_set(t, 2, "user.bb", "22", 2, 0)) < 0 ||
	    (rc = idx_xattr_set(t, 4, "trusted.x", "", 0, 0)) < 0 ||
	    (rc = idx_symlink_put(t, 3, "file", 4)) < 0 || (rc = idx_orphan_add(t, 5)) < 0 ||
	    (rc = idx_tensors_set(t, 2, (const struct idx_tensor[]){ { 0x51, 65536 } }, 1)) < 0)
		goto out;
	return idx_txn_commit(t);
out:
	idx_txn_abort(t);
	return rc;
}

/* --- the fixture, once per process ------------------------------------- */

static char store_dir[64];
static char data_path[96];
static struct idx *store;
static uint8_t *pristine; /* data.mdb of the base store */
static size_t pristine_len;

static void base_super(struct idx_super *s)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->uuid, "fuzz-index-store", 16);
	cdc_params_default(&s->cdc);
	s->default_level = 2;
	s->next_ino = 2;
	s->next_pack = 0;
	s->created_ns = 1700000000000000000ll;
}

static void rm_store(void)
{
	char p[96];

	idx_close(store);
	store = NULL;
	unlink(data_path);
	snprintf(p, sizeof(p), "%s/lock.mdb", store_dir);
	unlink(p);
	rmdir(store_dir);
}

static void read_pristine(void)
{
	struct stat st;
	int fd = open(data_path, O_RDONLY);

	CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0);
	pristine_len = (size_t)st.st_size;
	pristine = malloc(pristine_len);
	CHECK(pristine && read(fd, pristine, pristine_len) == (ssize_t)pristine_len);
	close(fd);
}

/* Put the base store back after a committed input. */
static void restore(void)
{
	int fd;

	idx_close(store);
	store = NULL;
	fd = open(data_path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && write(fd, pristine, pristine_len) == (ssize_t)pristine_len);
	close(fd);
	CHECK(idx_open(store_dir, 0, NULL, MAP_SIZE, &store) == 0);
}

static void setup(void)
{
	struct idx_super s;
	const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	snprintf(store_dir, sizeof(store_dir), "%s/fuzz_index.XXXXXX", tmp);
	CHECK(mkdtemp(store_dir) != NULL);
	snprintf(data_path, sizeof(data_path), "%s/data.mdb", store_dir);
	base_super(&s);
	CHECK(idx_open(store_dir, IDX_CREATE, &s, MAP_SIZE, &store) == 0);
	CHECK(fuzz_index_base(store) == 0);
	idx_close(store);
	read_pristine();
	CHECK(idx_open(store_dir, 0, NULL, MAP_SIZE, &store) == 0);
	atexit(rm_store);
}

/* --- probing ------------------------------------------------------------- */

/* What the planted records point at, besides the base store's keys. */
struct targets {
	uint64_t ino[2 * MAX_RECS + 8];
	unsigned nino;
	uint64_t off[MAX_RECS + 2];
	unsigned noff;
	uint8_t fp[MAX_RECS + 2][FP_LEN];
	unsigned nfp;
	uint32_t pack[MAX_RECS + 3];
	unsigned npack;
	struct {
		uint64_t parent;
		char name[MAX_KEY + 1];
		size_t len;
		bool xattr;
	} name[MAX_RECS + 4];
	unsigned nname;
	struct idx_tensor tens[MAX_RECS + 1]; /* key and length of tensors records */
	unsigned ntens;
};

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void add_ino(struct targets *g, uint64_t ino)
{
	for (unsigned i = 0; i < g->nino; i++)
		if (g->ino[i] == ino)
			return;
	if (g->nino < sizeof(g->ino) / sizeof(g->ino[0]))
		g->ino[g->nino++] = ino;
}

static void add_name(struct targets *g, uint64_t parent, const void *name, size_t len, bool xattr)
{
	if (g->nname == sizeof(g->name) / sizeof(g->name[0]) || len > MAX_KEY)
		return;
	g->name[g->nname].parent = parent;
	memcpy(g->name[g->nname].name, name, len);
	g->name[g->nname].name[len] = '\0';
	g->name[g->nname].len = len;
	g->name[g->nname].xattr = xattr;
	g->nname++;
}

static void base_targets(struct targets *g)
{
	for (uint64_t i = 0; i <= 6; i++)
		add_ino(g, i);
	add_ino(g, UINT64_MAX);
	g->off[g->noff++] = 0;
	g->off[g->noff++] = 5000;
	fp_fill(g->fp[g->nfp++], 0xa1);
	fp_fill(g->fp[g->nfp++], 0xb2);
	g->pack[g->npack++] = 0;
	g->pack[g->npack++] = 1;
	g->pack[g->npack++] = 2;
	add_name(g, 1, "file", 4, false);
	add_name(g, 1, "dir", 3, false);
	add_name(g, 2, "user.a", 6, true);
	add_name(g, 4, "trusted.x", 9, true);
}

static void plant_target(struct targets *g, unsigned db, const uint8_t *k, size_t kl)
{
	if ((db == D_CHUNKS || db == D_HINTS || db == D_LOOSE || db == D_REFBY) && kl >= FP_LEN &&
	    g->nfp < MAX_RECS + 2)
		memcpy(g->fp[g->nfp++], k, FP_LEN);
	if (db == D_PACKS && kl == 4 && g->npack < MAX_RECS + 3)
		g->pack[g->npack++] = (uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3];
	if (db == D_TENSORS && kl == 24 && g->ntens < MAX_RECS + 1) {
		g->tens[g->ntens++] = (struct idx_tensor){ be64(k), be64(k + 8) };
		add_ino(g, be64(k + 16));
	}
	if (kl < 8 || db == D_SUPER || db == D_CHUNKS || db == D_PACKS || db == D_TENSORS ||
	    db == D_HINTS || db == D_REFBY || db == D_LOOSE)
		return;
	add_ino(g, be64(k));
	if (db == D_EXTENTS && kl >= 16 && g->noff < MAX_RECS + 2)
		g->off[g->noff++] = be64(k + 8);
	if ((db == D_DIRENTS || db == D_XATTRS) && kl > 8)
		add_name(g, be64(k), k + 8, kl - 8, db == D_XATTRS);
}

struct walk {
	unsigned n, stop_after; /* stop with 7 after that many (0: never) */
	uint64_t from, end, last;
};

static int walk_next(struct walk *w)
{
	w->n++;
	return w->stop_after && w->n >= w->stop_after ? 7 : 0;
}

static void check_walk(int rc, const struct walk *w)
{
	CHECK(rc == 7 ? w->stop_after && w->n == w->stop_after : rc <= 0 && rc > -4096);
}

static int inode_cb(void *arg, const struct idx_inode *in)
{
	struct walk *w = arg;

	CHECK(w->n == 0 || in->ino > w->last);
	w->last = in->ino;
	return walk_next(w);
}

static int dirent_cb(void *arg, const char *name, size_t namelen, uint64_t ino, uint8_t type,
                     uint64_t seq)
{
	struct walk *w = arg;

	CHECK(namelen >= 1 && namelen <= IDX_NAME_MAX && name[namelen] == '\0');
	CHECK(seq >= w->from && (w->n == 0 || seq > w->last));
	w->last = seq;
	return walk_next(w);
}

static void check_extent(const struct idx_extent *e)
{
	CHECK(e->len > 0 && e->off <= UINT64_MAX - e->len);
}

static int extent_cb(void *arg, const struct idx_extent *e)
{
	struct walk *w = arg;

	check_extent(e);
	/* The first one contains from or lies after it (later ones follow in
	 * key order; in a damaged store they may overlap). */
	CHECK(e->off < w->end && (w->n > 0 || e->off + e->len > w->from));
	CHECK(w->n == 0 || e->off > w->last);
	w->last = e->off;
	return walk_next(w);
}

static void check_chunk(const struct idx_chunk *c)
{
	CHECK(c->level < IDX_LEVEL_COUNT && c->dtype < IDX_DTYPE_COUNT && c->raw_len > 0);
	CHECK((c->flags & ~(IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED)) == 0);
	CHECK(!(c->flags & IDX_CHUNK_REVERSED) || (c->flags & IDX_CHUNK_HAS_REF));
	CHECK(!(c->flags & IDX_CHUNK_HAS_REF) || memcmp(c->fp, c->ref_fp, FP_LEN) != 0);
	CHECK((c->flags & IDX_CHUNK_HAS_REF) || c->alone_len == 0);
}

static int chunk_cb(void *arg, const struct idx_chunk *c)
{
	check_chunk(c);
	return walk_next(arg);
}

static int pack_cb(void *arg, const struct idx_pack *p)
{
	return walk_next(arg);
}

static int ino_cb(void *arg, uint64_t ino)
{
	return walk_next(arg);
}

static int hint_cb(void *arg, const uint8_t fp[FP_LEN], const uint8_t ref[FP_LEN], bool exists)
{
	(void)fp;
	(void)ref;
	(void)exists;
	return walk_next(arg);
}

/* A buffer of exactly cap bytes (ASan sees a write past it). */
static void *exact(size_t cap)
{
	void *p = malloc(cap ? cap : 1);

	CHECK(p != NULL);
	return p;
}

static void probe_xattrs(struct idx_txn *t, uint64_t ino)
{
	int len = idx_xattr_list(t, ino, NULL, 0), rc;
	char *buf;

	if (len <= 0) {
		CHECK_ERR(len);
		return;
	}
	buf = exact((size_t)len);
	rc = idx_xattr_list(t, ino, buf, (size_t)len);
	CHECK(rc == len && buf[len - 1] == '\0');
	free(buf);
	buf = exact((size_t)len - 1);
	CHECK(idx_xattr_list(t, ino, buf, (size_t)len - 1) == -ERANGE);
	free(buf);
}

static void probe_name(struct idx_txn *t, uint64_t parent, const char *name, size_t len,
                       bool xattr)
{
	uint64_t ino;
	uint8_t type;
	char *buf;
	int rc;

	if (!xattr) {
		CHECK_ERR(idx_dirent_lookup(t, parent, name, len, &ino, &type));
		return;
	}
	rc = idx_xattr_get(t, parent, name, NULL, 0);
	CHECK(rc <= (64 << 10) && rc > -4096);
	if (rc <= 0)
		return;
	for (size_t cap = 1; cap <= (size_t)rc + 1; cap += (size_t)rc) {
		buf = exact(cap);
		CHECK(idx_xattr_get(t, parent, name, buf, cap) == rc);
		free(buf);
	}
}

static void probe_ino(struct idx_txn *t, uint64_t ino, const struct targets *g)
{
	struct idx_inode in;
	struct idx_extent e;
	struct walk w;
	char *buf;
	int rc;

	rc = idx_inode_get(t, ino, &in);
	CHECK_ERR(rc);
	if (rc == 0)
		CHECK(in.ino == ino);
	for (unsigned i = 0; i < g->noff; i++) {
		rc = idx_extent_find(t, ino, g->off[i], &e);
		CHECK_ERR(rc);
		if (rc == 0) {
			check_extent(&e);
			CHECK(e.off + e.len > g->off[i]);
		}
		w = (struct walk){ .from = g->off[i], .end = g->off[i] + 1 };
		if (w.end > w.from)
			check_walk(idx_extent_iter(t, ino, w.from, w.end, extent_cb, &w), &w);
	}
	w = (struct walk){ .from = 0, .end = UINT64_MAX };
	check_walk(idx_extent_iter(t, ino, 0, UINT64_MAX, extent_cb, &w), &w);
	w = (struct walk){ .from = 0, .end = UINT64_MAX, .stop_after = 2 };
	check_walk(idx_extent_iter(t, ino, 0, UINT64_MAX, extent_cb, &w), &w);
	{
		/* the truncate steps' and the charges sweep's readers */
		uint64_t from, stored;
		for (unsigned i = 0; i < g->noff; i++) {
			rc = idx_extent_tail(t, ino, g->off[i], UINT64_MAX, 2, &from);
			CHECK(rc > -4096 && (rc < 0 || (rc <= 2 && from >= g->off[i])));
		}
		rc = idx_extent_tail(t, ino, 0, UINT64_MAX, 1u << 20, &from);
		CHECK(rc > -4096 && (rc < 0 || from == 0));
		CHECK(idx_file_charge(t, ino, &stored) > -4096);
	}

	w = (struct walk){ 0 };
	check_walk(idx_dir_iter(t, ino, 0, dirent_cb, &w), &w);
	w = (struct walk){ .from = 1, .stop_after = 1 };
	check_walk(idx_dir_iter(t, ino, 1, dirent_cb, &w), &w);
	rc = idx_dir_is_empty(t, ino);
	CHECK(rc == 0 || rc == 1 || (rc < 0 && rc > -4096));

	probe_xattrs(t, ino);

	buf = exact(4096);
	rc = idx_symlink_get(t, ino, buf, 4096);
	CHECK(rc <= 4095 && rc > -4096 && rc != 0);
	free(buf);
	if (rc > 1) {
		buf = exact(1);
		CHECK(idx_symlink_get(t, ino, buf, 1) == rc);
		free(buf);
	}
}

static void probe(struct idx_txn *t, const struct targets *g)
{
	struct idx_super s;
	struct idx_stats st;
	struct idx_chunk c;
	struct idx_pack p;
	struct walk w;
	int rc;

	rc = idx_super_get(t, &s);
	CHECK_ERR(rc);
	if (rc == 0)
		CHECK(s.default_level < IDX_LEVEL_COUNT && s.format_version <= IDX_FORMAT_VERSION);
	CHECK_ERR(idx_stats_get(t, &st));
	CHECK_ERR(idx_stats_count(t, &st));

	w = (struct walk){ 0 };
	check_walk(idx_inode_iter(t, inode_cb, &w), &w);
	w = (struct walk){ .stop_after = 3 };
	check_walk(idx_inode_iter(t, inode_cb, &w), &w);
	w = (struct walk){ 0 };
	check_walk(idx_chunk_iter(t, chunk_cb, &w), &w);
	w = (struct walk){ .stop_after = 1 };
	check_walk(idx_chunk_iter(t, chunk_cb, &w), &w);
	w = (struct walk){ 0 };
	check_walk(idx_pack_iter(t, pack_cb, &w), &w);
	w = (struct walk){ 0 };
	check_walk(idx_orphan_iter(t, ino_cb, &w), &w);
	w = (struct walk){ .stop_after = 2 };
	check_walk(idx_hint_check(t, hint_cb, &w), &w);
	{
		uint8_t fps[4][FP_LEN];
		struct idx_refby_check r;

		rc = idx_loose_list(t, fps, 4);
		CHECK(rc <= 4 && rc > -4096);
		rc = idx_refby_verify(t, &r);
		CHECK_ERR(rc);
		if (rc == 0)
			CHECK(r.edges <= r.refs);
	}
	for (unsigned i = 0; i < g->ntens; i++) {
		uint64_t inos[4];

		rc = idx_tensor_find(t, g->tens[i].key, g->tens[i].len, inos, 4);
		CHECK(rc <= 4 && rc > -4096);
	}

	for (unsigned i = 0; i < g->nfp; i++) {
		uint8_t ref[FP_LEN], deps[4][FP_LEN];
		CHECK_ERR(idx_hint_get(t, g->fp[i], ref));
		rc = idx_refby_list(t, g->fp[i], deps, 4);
		CHECK(rc <= 5 && rc > -4096);
		rc = idx_chunk_get(t, g->fp[i], &c);
		CHECK_ERR(rc);
		if (rc == 0) {
			check_chunk(&c);
			CHECK(memcmp(c.fp, g->fp[i], FP_LEN) == 0);
		}
	}
	for (unsigned i = 0; i < g->npack; i++) {
		rc = idx_pack_get(t, g->pack[i], &p);
		CHECK_ERR(rc);
		if (rc == 0)
			CHECK(p.id == g->pack[i]);
	}
	for (unsigned i = 0; i < g->nname; i++)
		probe_name(t, g->name[i].parent, g->name[i].name, g->name[i].len, g->name[i].xattr);
	for (unsigned i = 0; i < g->nino; i++)
		probe_ino(t, g->ino[i], g);
}

/* The writers read records before they change them: each must refuse a
 * malformed one cleanly too.  Chunks are relocated and released, names
 * removed, every inode punched, mapped, written back and deleted. */
static void mutate(struct idx_txn *t, const struct targets *g)
{
	struct idx_inode in;
	struct idx_chunk c;
	uint64_t ino;
	uint32_t pack;
	int rc;

	CHECK_ERR(idx_ino_alloc(t, &ino));
	CHECK_ERR(idx_pack_alloc(t, &pack));
	for (unsigned i = 0; i < g->nfp; i++) {
		rc = idx_chunk_get(t, g->fp[i], &c);
		CHECK_ERR(rc);
		if (rc == 0) {
			c.pack_id = g->pack[i % g->npack];
			c.pack_off += 4096;
			c.frame_len = c.frame_len / 2 + 1;
			c.flags ^= IDX_CHUNK_HAS_REF;
			memcpy(c.ref_fp, g->fp[(i + 1) % g->nfp], FP_LEN);
			CHECK_ERR(idx_chunk_relocate(t, &c));
		}
		CHECK_ERR(idx_hint_set(t, g->fp[i], g->fp[(i + 1) % g->nfp]));
		CHECK_ERR(idx_chunk_unref(t, g->fp[i]));
		CHECK_ERR(idx_chunk_refcount_set(t, g->fp[i], i & 1));
		if (i & 2)
			CHECK_ERR(idx_hint_drop(t, g->fp[i]));
		if (i & 4)
			CHECK_ERR(idx_loose_drop(t, g->fp[i]));
	}
	CHECK_ERR(idx_stats_reset(t));
	CHECK_ERR(idx_refby_rebuild(t));
	for (unsigned i = 0; i < g->nname; i++) {
		if (g->name[i].xattr)
			CHECK_ERR(idx_xattr_set(t, g->name[i].parent, g->name[i].name, "v", 1,
			                        XATTR_REPLACE));
		else
			CHECK_ERR(idx_dirent_del(t, g->name[i].parent, g->name[i].name,
			                         g->name[i].len));
	}
	for (unsigned i = 0; i < g->nino; i++) {
		ino = g->ino[i];
		rc = idx_inode_get(t, ino, &in);
		CHECK_ERR(rc);
		if (rc < 0)
			continue;
		for (unsigned j = 0; j < g->noff; j++) {
			uint64_t a = g->off[j] / 2, b = g->off[j] + 100;

			CHECK_ERR(idx_file_punch(t, &in, a, b > a ? b : UINT64_MAX));
		}
		CHECK_ERR(idx_file_punch(t, &in, 1000, 5000));
		CHECK_ERR(idx_file_map(t, &in, 1000, 100, g->fp[i % g->nfp], 100));
		CHECK_ERR(idx_inode_put(t, &in));
		if (g->ntens)
			CHECK_ERR(idx_tensors_set(t, ino, g->tens, 1));
		CHECK_ERR(idx_inode_delete(t, ino));
	}
}

/* After a commit: the store must open again, or fail cleanly. */
static void reopen_check(const struct targets *g)
{
	struct idx_txn *t;
	struct idx *y;
	int rc;

	idx_close(store);
	store = NULL;
	for (unsigned ro = 0; ro < 2; ro++) {
		rc = idx_open(store_dir, ro ? IDX_RDONLY : 0, NULL, MAP_SIZE, &y);
		CHECK(rc == 0 || rc == -EINVAL || rc == -EIO || rc == -EPROTONOSUPPORT);
		if (rc < 0) {
			CHECK(y == NULL);
			continue;
		}
		CHECK(idx_txn_begin(y, true, &t) == 0);
		probe(t, g);
		idx_txn_abort(t);
		idx_close(y);
	}
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t longval[0x7fff * 4];
	struct targets g;
	struct idx_txn *t;
	size_t pos = 1;
	uint8_t flags;
	int rc;

	if (!store)
		setup();
	if (size < 1)
		return 0;
	flags = data[0];
	memset(&g, 0, sizeof(g));
	base_targets(&g);
	CHECK(idx_txn_begin(store, false, &t) == 0);
	for (unsigned r = 0; r < MAX_RECS && pos + 3 <= size; r++) {
		unsigned db = data[pos] % FUZZ_INDEX_DBS;
		size_t kl = be16(data + pos + 1), vl;
		const uint8_t *k, *v;

		pos += 3;
		kl = kl < size - pos ? kl : size - pos;
		k = data + pos;
		pos += kl;
		vl = pos + 2 <= size ? be16(data + pos) : 0;
		pos = pos + 2 <= size ? pos + 2 : size;
		if ((vl & 0x8000) && pos < size) {
			/* Long values (past symlink and xattr limits). */
			vl = (vl & 0x7fffu) * 4;
			memset(longval, data[pos++], vl);
			v = longval;
		} else {
			vl = vl < size - pos ? vl : size - pos;
			v = data + pos;
			pos += vl;
		}
		if (kl == 0 || kl > MAX_KEY)
			continue; /* LMDB refuses such keys */
		rc = idx_raw_put(t, fuzz_index_dbs[db], k, kl, v, vl);
		CHECK(rc == 0 || rc == -ENOSPC);
		plant_target(&g, db, k, kl);
	}
	probe(t, &g);
	if (!(flags & FLAG_NO_WRITES))
		mutate(t, &g);
	if (!(flags & FLAG_COMMIT)) {
		idx_txn_abort(t);
		return 0;
	}
	CHECK_ERR(idx_txn_commit(t));
	reopen_check(&g);
	restore();
	return 0;
}
