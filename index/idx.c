/*
 * idx.c - the mixfs metadata index on LMDB (schema in idx.h).
 *
 * Records are packed big-endian by explicit encode/decode pairs below; a
 * decoder that sees the wrong length or an out-of-range field returns -EIO
 * instead of trusting the bytes (stats arrays are indexed by level/dtype).
 *
 * A write transaction caches the superblock and the stats record and writes
 * them back once, at commit: every mutating call changes records and the
 * cached counters together, so the counters committed are exactly those of
 * the records committed.
 *
 * Chunks whose refcount drops to zero are deleted at commit, not at once:
 * the write path punches a range and then maps the same chunk again (an
 * overwrite with identical data), and the chunk must survive in between.
 * The transaction remembers every chunk that was at zero and sweeps those
 * still at zero when it commits; a chunk inserted but never mapped goes the
 * same way instead of leaking.  A mutating call that fails may have changed some
 * records already; the caller aborts the transaction (commit then reports
 * the first LMDB failure instead of committing a half-done change).
 */
#include "index/idx.h"
#include "index/idx_test_i.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <sys/xattr.h>

#include <lmdb.h>

#define IDX_MAP_DEFAULT (64ull << 30)
#define IDX_RESERVE (1u << 20) /* allocated past data.mdb's end: env_reserve */
#define IDX_XATTR_VALUE_MAX (64u << 10)
#define IDX_SYMLINK_MAX 4095u

static const uint8_t idx_magic[8] = { 'm', 'i', 'x', 'f', 's', 'I', 'D', 'X' };

enum idx_db {
	DB_SUPER,
	DB_INODES,
	DB_DIRENTS,
	DB_DIRSEQ,
	DB_EXTENTS,
	DB_CHUNKS,
	DB_PACKS,
	DB_XATTRS,
	DB_SYMLINKS,
	DB_ORPHANS,
	DB_TENSORS,
	DB_TENSORINO,
	DB_HINTS,
	DB_REFBY,
	DB_LOOSE,
	DB_COUNT
};

static const char *const idx_db_names[DB_COUNT] = {
	"super", "inodes", "dirents", "dirseq", "extents",
	"chunks", "packs", "xattrs", "symlinks", "orphans",
	"tensors", "tensorino", "hints", "refby", "loose",
};

/* Databases added after format 2 stores were made: created by the first
 * read-write open, absent (read as empty) on a read-only open before it. */
static bool db_optional(unsigned i)
{
	return i == DB_TENSORS || i == DB_TENSORINO || i == DB_HINTS || i == DB_REFBY ||
	       i == DB_LOOSE;
}

struct idx {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	/* read-only open of a store made before database i existed (db_optional):
	 * read as empty */
	bool absent[DB_COUNT];
	/* loose marks written (idx_loose_marks; some may have been aborted) */
	atomic_uint_fast64_t loose_marks;
	bool rdonly;
	/* Reopening the environment after MDB_PANIC (env_recover): env and
	 * dbi change only while no transaction or sync uses them. */
	char *dir;
	uint64_t map_size;
	pthread_mutex_t use_lock;
	pthread_cond_t use_cond;
	unsigned users;  /* transactions open, syncs running */
	bool reopening;
	uint64_t reopens; /* environments reopened (tests, logs) */
	struct guard_slot *guard; /* x->env's map, for idx_guard's handler */
	/* data.mdb's size when IDX_RESERVE bytes past its end were last
	 * allocated (env_reserve; under LMDB's writer lock), -1: not yet */
	int64_t reserved_for;
	/* Unsynced commits (idx_txn_begin_lazy; "unsynced commits" below).
	 * Changed under LMDB's writer lock and arm_lock. */
	pthread_mutex_t arm_lock;
	/* held by every write transaction of this process from begin to end
	 * (LMDB allows one anyway): the env-wide MDB_NOSYNC an unsynced
	 * commit sets is cleared before another write transaction begins */
	pthread_mutex_t wr_lock;
	MDB_txn *pin;              /* read txn on the commit the marker names */
	atomic_bool marker_armed;  /* index/unsynced names a commit */
	_Atomic int64_t armed_ns;  /* CLOCK_MONOTONIC when it was written */
	char boot[40];             /* this boot's id (or MIXFS_BOOT_ID) */
};

struct idx_txn {
	struct idx *x;
	MDB_txn *txn;
	bool rdonly;
	bool lazy; /* commit unsynced (idx_txn_begin_lazy, armed) */
	bool super_loaded, super_dirty;
	bool stats_loaded, stats_dirty;
	int err; /* first LMDB failure that poisoned the txn, or 0 */
	struct idx_super sb;
	struct idx_stats st;
	uint8_t (*zero)[FP_LEN]; /* chunks that reached refcount 0: sweep at commit */
	size_t nzero, capzero;
};

/* --- errors ------------------------------------------------------------ */

/* x: the index the error is about (for the message), NULL if unknown. */
static int idx_lmdb_err(const struct idx *x, struct idx_txn *t, int rc, const char *file,
                        int line)
{
	int e;

	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_MAP_FULL:
		e = -ENOSPC;
		break;
	default:
		if (rc > 0) {
			e = -rc;
		} else {
			/* LMDB keeps no page checksums: these are what it finds
			 * of a damaged file (others may crash it: idx_guard) */
			bool dmg = rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND;

			fprintf(stderr, "mixfs: index %s%s: %s%s (%s:%d)\n", x ? x->dir : "",
			        x ? "/data.mdb" : "", mdb_strerror(rc),
			        dmg ? ": the file is damaged (run mixfs fsck)" : "", file, line);
			e = -EIO;
		}
		break;
	}
	/* Anything but NOTFOUND/KEYEXIST leaves an LMDB write txn unusable. */
	if (t && !t->err)
		t->err = e;
	return e;
}

#define LMDB_ERR(t, rc) idx_lmdb_err((t) ? (t)->x : NULL, (t), (rc), __FILE__, __LINE__)
#define LMDB_ERR_X(x, rc) idx_lmdb_err((x), NULL, (rc), __FILE__, __LINE__)

/* --- big-endian packing ------------------------------------------------ */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static MDB_val mval(const void *p, size_t n)
{
	MDB_val v = { .mv_size = n, .mv_data = (void *)p };

	return v;
}

/* Keys: ino(8) || u64(8), e.g. extents, dirseq. */
static void key_u64_u64(uint8_t k[16], uint64_t a, uint64_t b)
{
	put_be64(k, a);
	put_be64(k + 8, b);
}

/* --- record codecs -----------------------------------------------------
 *
 * Values, big-endian, byte offsets (keys are in idx.h):
 *   super  : magic "mixfsIDX"(8) format_version(4) uuid(16) cdc min(4)
 *            avg(4) max(4) default_level(1) next_ino(8) next_pack(4)
 *            created_ns(8)                                        = 61
 *   stats  : the 26 u64 counters of struct idx_stats, in the order of
 *            stats_fields (ref_saved_bytes, ref_fwd_chunks last)  = 208
 *            (22- and 24-counter records from before the last ones
 *            were added still read: see stats_decode, txn_stats)
 *   inode  : mode uid gid nlink (4 each) size(8) rdev(8) atime mtime
 *            ctime (8 each) stored_bytes(8) dir_seq(8) flags(4) dtype(1)
 *                                                                 = 77
 *   extent : len(4) chunk_off(4) fp(32)                           = 40
 *   chunk  : pack_id(4) pack_off(8) frame_len(4) raw_len(4) refcount(4)
 *            level(1) dtype(1) flags(1) height(1) sum(8) [ref_fp(32)
 *            alone_len(4) iff HAS_REF]                            = 36/72
 *            (format 2 wrote no sum: 28/64 still reads, has_sum false, and
 *            so does 28/60 from before alone_len; format 1 wrote no height
 *            byte either: 27/59 reads, height 0)
 *   pack   : live_bytes(8) dead_bytes(8)                          = 16
 *   dirent : ino(8) seq(8) type(1); dirseq: ino(8) type(1) name(1..255)
 */

#define SUPER_LEN 61u
#define STATS_FIELDS 26u
#define STATS_FIELDS_V1 22u /* before ref_raw_bytes, ref_stored_bytes */
#define STATS_FIELDS_V2 24u /* before ref_saved_bytes, ref_fwd_chunks */
#define STATS_LEN (STATS_FIELDS * 8u)
#define INODE_LEN 77u
#define EXTENT_LEN 40u
#define CHUNK_LEN_V1 27u
#define CHUNK_LEN_V2 28u
#define CHUNK_LEN (CHUNK_LEN_V2 + 8u)
#define CHUNK_REF_PART (FP_LEN + 4u)
#define CHUNK_REF_LEN (CHUNK_LEN + CHUNK_REF_PART)
#define PACK_LEN 16u
#define DIRENT_LEN 17u
#define DIRSEQ_HDR 9u

static void super_encode(const struct idx_super *s, uint8_t b[SUPER_LEN])
{
	memcpy(b, idx_magic, 8);
	put_be32(b + 8, s->format_version);
	memcpy(b + 12, s->uuid, 16);
	put_be32(b + 28, s->cdc.min_size);
	put_be32(b + 32, s->cdc.avg_size);
	put_be32(b + 36, s->cdc.max_size);
	b[40] = s->default_level;
	put_be64(b + 41, s->next_ino);
	put_be32(b + 49, s->next_pack);
	put_be64(b + 53, (uint64_t)s->created_ns);
}

/* -EINVAL: not our magic; -EPROTONOSUPPORT: newer format; -EIO: malformed. */
static int super_decode(const MDB_val *v, struct idx_super *s)
{
	const uint8_t *b = v->mv_data;

	if (v->mv_size < 12 || memcmp(b, idx_magic, 8) != 0)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->format_version = get_be32(b + 8);
	if (s->format_version > IDX_FORMAT_VERSION)
		return -EPROTONOSUPPORT;
	if (v->mv_size != SUPER_LEN)
		return -EIO;
	memcpy(s->uuid, b + 12, 16);
	s->cdc.min_size = get_be32(b + 28);
	s->cdc.avg_size = get_be32(b + 32);
	s->cdc.max_size = get_be32(b + 36);
	s->default_level = b[40];
	s->next_ino = get_be64(b + 41);
	s->next_pack = get_be32(b + 49);
	s->created_ns = (int64_t)get_be64(b + 53);
	if (s->default_level >= IDX_LEVEL_COUNT)
		return -EIO;
	return 0;
}

/* The stats record is the counters in this order: new counters go at the
 * end, so that a shorter record from an older version is a prefix. */
/* Names of stats_fields' counters, in its order (arrays: [i] appended). */
static const struct {
	const char *name;
	unsigned n;
} stats_names[] = {
	{ "files", 1 }, { "logical_bytes", 1 }, { "mapped_bytes", 1 }, { "chunks", 1 },
	{ "unique_bytes", 1 }, { "stored_bytes", 1 }, { "ref_chunks", 1 },
	{ "level_raw", IDX_LEVEL_COUNT }, { "level_stored", IDX_LEVEL_COUNT },
	{ "dtype_raw", IDX_DTYPE_COUNT }, { "dtype_stored", IDX_DTYPE_COUNT },
	{ "pending_bytes", 1 }, { "ref_raw_bytes", 1 }, { "ref_stored_bytes", 1 },
	{ "ref_saved_bytes", 1 }, { "ref_fwd_chunks", 1 },
};

static void stats_fields(struct idx_stats *s, uint64_t *f[STATS_FIELDS])
{
	unsigned n = 0, i;

	f[n++] = &s->files;
	f[n++] = &s->logical_bytes;
	f[n++] = &s->mapped_bytes;
	f[n++] = &s->chunks;
	f[n++] = &s->unique_bytes;
	f[n++] = &s->stored_bytes;
	f[n++] = &s->ref_chunks;
	for (i = 0; i < IDX_LEVEL_COUNT; i++)
		f[n++] = &s->level_raw[i];
	for (i = 0; i < IDX_LEVEL_COUNT; i++)
		f[n++] = &s->level_stored[i];
	for (i = 0; i < IDX_DTYPE_COUNT; i++)
		f[n++] = &s->dtype_raw[i];
	for (i = 0; i < IDX_DTYPE_COUNT; i++)
		f[n++] = &s->dtype_stored[i];
	f[n++] = &s->pending_bytes;
	f[n++] = &s->ref_raw_bytes;
	f[n++] = &s->ref_stored_bytes;
	f[n++] = &s->ref_saved_bytes;
	f[n++] = &s->ref_fwd_chunks;
}

unsigned idx_stats_diff(const struct idx_stats *a, const struct idx_stats *b, char *out,
                        size_t cap)
{
	struct idx_stats x = *a, y = *b;
	uint64_t *fa[STATS_FIELDS], *fb[STATS_FIELDS];
	unsigned k = 0, diff = 0;
	size_t len = 0;

	stats_fields(&x, fa);
	stats_fields(&y, fb);
	if (cap)
		out[0] = '\0';
	for (size_t i = 0; i < sizeof(stats_names) / sizeof(stats_names[0]); i++) {
		for (unsigned j = 0; j < stats_names[i].n; j++, k++) {
			int w;

			if (*fa[k] == *fb[k])
				continue;
			diff++;
			if (len >= cap)
				continue;
			w = stats_names[i].n > 1
			            ? snprintf(out + len, cap - len, "%s%s[%u]", len ? ", " : "",
			                       stats_names[i].name, j)
			            : snprintf(out + len, cap - len, "%s%s", len ? ", " : "",
			                       stats_names[i].name);
			len += w > 0 ? (size_t)w : 0;
		}
	}
	return diff;
}

static void stats_encode(const struct idx_stats *s, uint8_t b[STATS_LEN])
{
	struct idx_stats tmp = *s;
	uint64_t *f[STATS_FIELDS];
	unsigned i;

	stats_fields(&tmp, f);
	for (i = 0; i < STATS_FIELDS; i++)
		put_be64(b + 8 * i, *f[i]);
}

/* Returns the number of counters the record held (STATS_FIELDS, or
 * STATS_FIELDS_V1 / _V2 for an older record: the missing ones are zero and
 * the caller recounts them), or -EIO. */
static int stats_decode(const MDB_val *v, struct idx_stats *s)
{
	const uint8_t *b = v->mv_data;
	uint64_t *f[STATS_FIELDS];
	unsigned i, n = (unsigned)(v->mv_size / 8);

	if (v->mv_size != STATS_LEN && v->mv_size != STATS_FIELDS_V1 * 8u &&
	    v->mv_size != STATS_FIELDS_V2 * 8u)
		return -EIO;
	memset(s, 0, sizeof(*s));
	stats_fields(s, f);
	for (i = 0; i < n; i++)
		*f[i] = get_be64(b + 8 * i);
	return (int)n;
}

static void inode_encode(const struct idx_inode *in, uint8_t b[INODE_LEN])
{
	put_be32(b, in->mode);
	put_be32(b + 4, in->uid);
	put_be32(b + 8, in->gid);
	put_be32(b + 12, in->nlink);
	put_be64(b + 16, in->size);
	put_be64(b + 24, in->rdev);
	put_be64(b + 32, (uint64_t)in->atime_ns);
	put_be64(b + 40, (uint64_t)in->mtime_ns);
	put_be64(b + 48, (uint64_t)in->ctime_ns);
	put_be64(b + 56, in->stored_bytes);
	put_be64(b + 64, in->dir_seq);
	put_be32(b + 72, in->flags);
	b[76] = in->dtype;
}

static int inode_decode(uint64_t ino, const MDB_val *v, struct idx_inode *in)
{
	const uint8_t *b = v->mv_data;

	if (v->mv_size != INODE_LEN)
		return -EIO;
	memset(in, 0, sizeof(*in));
	in->ino = ino;
	in->mode = get_be32(b);
	in->uid = get_be32(b + 4);
	in->gid = get_be32(b + 8);
	in->nlink = get_be32(b + 12);
	in->size = get_be64(b + 16);
	in->rdev = get_be64(b + 24);
	in->atime_ns = (int64_t)get_be64(b + 32);
	in->mtime_ns = (int64_t)get_be64(b + 40);
	in->ctime_ns = (int64_t)get_be64(b + 48);
	in->stored_bytes = get_be64(b + 56);
	in->dir_seq = get_be64(b + 64);
	in->flags = get_be32(b + 72);
	in->dtype = b[76];
	return 0;
}

static void extent_encode(const struct idx_extent *e, uint8_t b[EXTENT_LEN])
{
	put_be32(b, e->len);
	put_be32(b + 4, e->chunk_off);
	memcpy(b + 8, e->fp, FP_LEN);
}

/* key must be ino(8) || off(8). */
static int extent_decode(const MDB_val *k, const MDB_val *v, struct idx_extent *e)
{
	const uint8_t *b = v->mv_data;

	if (k->mv_size != 16 || v->mv_size != EXTENT_LEN)
		return -EIO;
	e->off = get_be64((const uint8_t *)k->mv_data + 8);
	e->len = get_be32(b);
	e->chunk_off = get_be32(b + 4);
	memcpy(e->fp, b + 8, FP_LEN);
	if (e->len == 0 || e->off > UINT64_MAX - e->len)
		return -EIO;
	return 0;
}

static size_t chunk_encode(const struct idx_chunk *c, uint8_t b[CHUNK_REF_LEN])
{
	put_be32(b, c->pack_id);
	put_be64(b + 4, c->pack_off);
	put_be32(b + 12, c->frame_len);
	put_be32(b + 16, c->raw_len);
	put_be32(b + 20, c->refcount);
	b[24] = c->level;
	b[25] = c->dtype;
	b[26] = c->flags;
	b[27] = c->height;
	size_t base = CHUNK_LEN_V2;
	if (c->has_sum) {
		put_be64(b + base, c->sum);
		base = CHUNK_LEN;
	}
	if (!(c->flags & IDX_CHUNK_HAS_REF))
		return base;
	memcpy(b + base, c->ref_fp, FP_LEN);
	put_be32(b + base + FP_LEN, c->alone_len);
	return base + CHUNK_REF_PART;
}

static int chunk_valid(const struct idx_chunk *c)
{
	if (c->level >= IDX_LEVEL_COUNT || c->dtype >= IDX_DTYPE_COUNT || c->raw_len == 0 ||
	    (c->flags & ~(IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED)) != 0 ||
	    (c->flags & (IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED)) == IDX_CHUNK_REVERSED)
		return 0;
	if ((c->flags & IDX_CHUNK_HAS_REF) && memcmp(c->ref_fp, c->fp, FP_LEN) == 0)
		return 0;
	if (!(c->flags & IDX_CHUNK_HAS_REF) && c->alone_len)
		return 0;
	return 1;
}

static int chunk_decode(const uint8_t fp[FP_LEN], const MDB_val *v, struct idx_chunk *c)
{
	const uint8_t *b = v->mv_data;
	uint8_t key[FP_LEN];

	size_t base;

	size_t ref_len;

	if (v->mv_size == CHUNK_LEN_V1 || v->mv_size == CHUNK_LEN_V1 + FP_LEN) {
		base = CHUNK_LEN_V1;
		ref_len = FP_LEN;
	} else if (v->mv_size == CHUNK_LEN || v->mv_size == CHUNK_REF_LEN) {
		base = CHUNK_LEN;
		ref_len = CHUNK_REF_PART;
	} else if (v->mv_size == CHUNK_LEN_V2 || v->mv_size == CHUNK_LEN_V2 + CHUNK_REF_PART) {
		base = CHUNK_LEN_V2;
		ref_len = CHUNK_REF_PART;
	} else if (v->mv_size == CHUNK_LEN_V2 + FP_LEN) {
		/* a reference without alone_len: written before 35f208e */
		base = CHUNK_LEN_V2;
		ref_len = FP_LEN;
	} else {
		return -EIO;
	}
	memcpy(key, fp, FP_LEN); /* fp may point into *c (idx_chunk_get(t, c.fp, &c)) */
	memset(c, 0, sizeof(*c));
	memcpy(c->fp, key, FP_LEN);
	c->pack_id = get_be32(b);
	c->pack_off = get_be64(b + 4);
	c->frame_len = get_be32(b + 12);
	c->raw_len = get_be32(b + 16);
	c->refcount = get_be32(b + 20);
	c->level = b[24];
	c->dtype = b[25];
	c->flags = b[26];
	c->height = base > CHUNK_LEN_V1 ? b[27] : 0;
	if (base == CHUNK_LEN) {
		c->sum = get_be64(b + CHUNK_LEN_V2);
		c->has_sum = true;
	}
	if (v->mv_size != base + ((c->flags & IDX_CHUNK_HAS_REF) ? ref_len : 0))
		return -EIO;
	if (c->flags & IDX_CHUNK_HAS_REF)
		memcpy(c->ref_fp, b + base, FP_LEN);
	if ((c->flags & IDX_CHUNK_HAS_REF) && ref_len > FP_LEN)
		c->alone_len = get_be32(b + base + FP_LEN);
	return chunk_valid(c) ? 0 : -EIO;
}

static void pack_encode(const struct idx_pack *p, uint8_t b[PACK_LEN])
{
	put_be64(b, p->live_bytes);
	put_be64(b + 8, p->dead_bytes);
}

static int pack_decode(uint32_t id, const MDB_val *v, struct idx_pack *p)
{
	if (v->mv_size != PACK_LEN)
		return -EIO;
	p->id = id;
	p->live_bytes = get_be64(v->mv_data);
	p->dead_bytes = get_be64((const uint8_t *)v->mv_data + 8);
	return 0;
}

static void dirent_encode(uint64_t ino, uint64_t seq, uint8_t type, uint8_t b[DIRENT_LEN])
{
	put_be64(b, ino);
	put_be64(b + 8, seq);
	b[16] = type;
}

static int dirent_decode(const MDB_val *v, uint64_t *ino, uint64_t *seq, uint8_t *type)
{
	const uint8_t *b = v->mv_data;

	if (v->mv_size != DIRENT_LEN)
		return -EIO;
	*ino = get_be64(b);
	*seq = get_be64(b + 8);
	*type = b[16];
	return 0;
}

static size_t dirseq_encode(uint64_t ino, uint8_t type, const char *name, size_t namelen,
                            uint8_t b[DIRSEQ_HDR + IDX_NAME_MAX])
{
	put_be64(b, ino);
	b[8] = type;
	memcpy(b + DIRSEQ_HDR, name, namelen);
	return DIRSEQ_HDR + namelen;
}

/* name is copied NUL-terminated into name[IDX_NAME_MAX + 1]. */
static int dirseq_decode(const MDB_val *v, uint64_t *ino, uint8_t *type, char *name,
                         size_t *namelen)
{
	const uint8_t *b = v->mv_data;
	size_t n;

	if (v->mv_size <= DIRSEQ_HDR || v->mv_size > DIRSEQ_HDR + IDX_NAME_MAX)
		return -EIO;
	n = v->mv_size - DIRSEQ_HDR;
	*ino = get_be64(b);
	*type = b[8];
	memcpy(name, b + DIRSEQ_HDR, n);
	name[n] = '\0';
	*namelen = n;
	return 0;
}

/* --- small helpers ----------------------------------------------------- */

static MDB_dbi dbi(struct idx_txn *t, enum idx_db d)
{
	return t->x->dbi[d];
}

static int db_get(struct idx_txn *t, enum idx_db d, const void *k, size_t klen, MDB_val *v)
{
	MDB_val key = mval(k, klen);

	return LMDB_ERR(t, mdb_get(t->txn, dbi(t, d), &key, v));
}

static int db_put(struct idx_txn *t, enum idx_db d, const void *k, size_t klen, const void *v,
                  size_t vlen, unsigned flags)
{
	MDB_val key = mval(k, klen), val = mval(v, vlen);

	return LMDB_ERR(t, mdb_put(t->txn, dbi(t, d), &key, &val, flags));
}

static int db_del(struct idx_txn *t, enum idx_db d, const void *k, size_t klen)
{
	MDB_val key = mval(k, klen);

	return LMDB_ERR(t, mdb_del(t->txn, dbi(t, d), &key, NULL));
}

static int db_cursor(struct idx_txn *t, enum idx_db d, MDB_cursor **cur)
{
	return LMDB_ERR(t, mdb_cursor_open(t->txn, dbi(t, d), cur));
}

/* Called for each record of a walk; non-zero stops it and is returned. */
typedef int (*db_walk_fn)(void *ctx, const MDB_val *k, const MDB_val *v);

/* Visit the records of db d in key order, from the first key >= from
 * (the first record if fromlen is 0) while the key starts with the first
 * plen bytes of from. */
static int db_walk(struct idx_txn *t, enum idx_db d, const void *from, size_t fromlen,
                   size_t plen, db_walk_fn fn, void *ctx)
{
	MDB_cursor *cur;
	MDB_val k = mval(from, fromlen), v;
	int rc;

	rc = db_cursor(t, d, &cur);
	if (rc < 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, fromlen ? MDB_SET_RANGE : MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (plen && (k.mv_size < plen || memcmp(k.mv_data, from, plen) != 0)) {
			rc = MDB_NOTFOUND;
			break;
		}
		rc = fn(ctx, &k, &v);
		if (rc != 0)
			goto out;
	}
	rc = rc == MDB_NOTFOUND ? 0 : LMDB_ERR(t, rc);
out:
	mdb_cursor_close(cur);
	return rc;
}

static int txn_writable(struct idx_txn *t)
{
	if (t->rdonly)
		return -EROFS;
	return t->err;
}

static int name_check(const char *name, size_t len)
{
	if (len == 0)
		return -EINVAL;
	if (len > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', len) || memchr(name, '\0', len))
		return -EINVAL;
	return 0;
}

static int xattr_name_check(const char *name, size_t *len)
{
	*len = strlen(name);
	if (*len == 0)
		return -EINVAL;
	if (*len > IDX_NAME_MAX)
		return -ERANGE; /* what setxattr(2) returns for a long name */
	return 0;
}

/* Stored bytes one extent charges its file.  The same formula is added at
 * map and subtracted at punch, so map+punch of a range is exactly neutral. */
static uint64_t extent_charge(const struct idx_chunk *c, uint32_t len)
{
	return (uint64_t)c->frame_len * len / c->raw_len;
}

/* Per-file charges go stale when idx_chunk_relocate changes a shared
 * chunk's frame_len (no reverse map to fix every file), so they saturate
 * instead of wrapping. */
static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* --- cached superblock and stats ----------------------------------------- */

static int txn_super(struct idx_txn *t, struct idx_super **out)
{
	MDB_val v;
	int rc;

	if (!t->super_loaded) {
		rc = db_get(t, DB_SUPER, "super", 5, &v);
		if (rc == -ENOENT)
			return -EIO;
		if (rc < 0)
			return rc;
		rc = super_decode(&v, &t->sb);
		if (rc < 0)
			return -EIO;
		t->super_loaded = true;
	}
	*out = &t->sb;
	return 0;
}

static void stats_chunk(struct idx_stats *st, const struct idx_chunk *c, int sign);

/* The counters of reference chunks, from the chunk records. */
static int stats_ref_recount_cb(void *arg, const struct idx_chunk *c)
{
	struct idx_stats *st = arg, one;

	if (c->flags & IDX_CHUNK_HAS_REF) {
		memset(&one, 0, sizeof(one));
		stats_chunk(&one, c, +1);
		st->ref_raw_bytes += one.ref_raw_bytes;
		st->ref_stored_bytes += one.ref_stored_bytes;
		st->ref_saved_bytes += one.ref_saved_bytes;
		st->ref_fwd_chunks += one.ref_fwd_chunks;
	}
	return 0;
}

static int txn_stats(struct idx_txn *t, struct idx_stats **out)
{
	MDB_val v;
	int rc, n;

	if (!t->stats_loaded) {
		rc = db_get(t, DB_SUPER, "stats", 5, &v);
		if (rc == -ENOENT)
			return -EIO;
		if (rc < 0)
			return rc;
		n = stats_decode(&v, &t->st);
		if (n < 0)
			return -EIO;
		/* A record from before some ref counters: count them all once
		 * from the chunk records (only a store that has series-coded
		 * chunks has any to count); a write transaction stores the
		 * full record at commit. */
		if (n < (int)STATS_FIELDS) {
			t->st.ref_raw_bytes = t->st.ref_stored_bytes = 0;
			if (t->st.ref_chunks) {
				rc = idx_chunk_iter(t, stats_ref_recount_cb, &t->st);
				if (rc < 0)
					return rc;
			}
			t->stats_dirty = !t->rdonly;
		}
		t->stats_loaded = true;
	}
	*out = &t->st;
	return 0;
}

/* Pending = raw bytes of chunks compressed (not stored raw: raw means
 * incompressible) below the store's target level, i.e. recompression work
 * still to do.  Derived from level_raw so it is exact by construction. */
static void stats_fix_pending(struct idx_stats *st, uint8_t default_level)
{
	unsigned l;

	st->pending_bytes = 0;
	for (l = 1; l < default_level && l < IDX_LEVEL_COUNT; l++)
		st->pending_bytes += st->level_raw[l];
}

static int chunk_sweep(struct idx_txn *t);

static int txn_flush(struct idx_txn *t)
{
	uint8_t sb[SUPER_LEN], st[STATS_LEN];
	struct idx_super *s;
	int rc;

	rc = chunk_sweep(t);
	if (rc < 0)
		return rc;
	if (t->stats_dirty) {
		rc = txn_super(t, &s);
		if (rc < 0)
			return rc;
		stats_fix_pending(&t->st, s->default_level);
		stats_encode(&t->st, st);
		rc = db_put(t, DB_SUPER, "stats", 5, st, sizeof(st), 0);
		if (rc < 0)
			return rc;
		t->stats_dirty = false;
	}
	if (t->super_dirty) {
		super_encode(&t->sb, sb);
		rc = db_put(t, DB_SUPER, "super", 5, sb, sizeof(sb), 0);
		if (rc < 0)
			return rc;
		t->super_dirty = false;
	}
	return 0;
}

/* sign is +1 or -1: add or remove c from the chunk counters. */
static void stats_chunk(struct idx_stats *st, const struct idx_chunk *c, int sign)
{
	uint64_t one = (uint64_t)(int64_t)sign;
	uint64_t raw = one * c->raw_len, frame = one * c->frame_len;

	st->chunks += one;
	st->unique_bytes += raw;
	st->stored_bytes += frame;
	if (c->flags & IDX_CHUNK_HAS_REF) {
		st->ref_chunks += one;
		st->ref_raw_bytes += raw;
		st->ref_stored_bytes += frame;
		if (c->alone_len > c->frame_len)
			st->ref_saved_bytes += one * (c->alone_len - c->frame_len);
		if (!(c->flags & IDX_CHUNK_REVERSED))
			st->ref_fwd_chunks += one;
	}
	st->level_raw[c->level] += raw;
	st->level_stored[c->level] += frame;
	st->dtype_raw[c->dtype] += raw;
	st->dtype_stored[c->dtype] += frame;
}

/* dir/data.mdb into path (PATH_MAX bytes): 0, or -ENAMETOOLONG. */
/* path = dir/name (PATH_MAX bytes), or -ENAMETOOLONG. */
static int index_file(const char *dir, const char *name, char *path)
{
	return (size_t)snprintf(path, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static int mdb_path(const char *dir, char *path)
{
	return index_file(dir, "data.mdb", path);
}

/* --- crash guard --------------------------------------------------------- */

/* LMDB keeps no page checksums: a damaged page can send it past the end of
 * data.mdb (SIGBUS) or elsewhere in its map.  A fault whose address lies in
 * the map of an open environment is reported naming the file, then the
 * process exits (idx_guard's code); any other fault goes to the handler
 * that was there before (or the default action): our own bugs still crash
 * with a core.  The map of each open environment is kept in a slot. */
#define GUARD_SLOTS 16

static struct guard_slot {
	_Atomic uintptr_t lo, hi; /* hi 0: free */
	char path[PATH_MAX];
} guard_slots[GUARD_SLOTS];
static struct sigaction guard_prev[2]; /* SIGBUS, SIGSEGV */
static int guard_code;
static atomic_bool guard_on;

static void guard_put(const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void guard_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	(void)uc;

	/* si_code <= 0: sent by kill(2), raise(3), sigqueue(3): no fault,
	 * and si_addr is not an address */
	for (unsigned i = 0; si->si_code > 0 && i < GUARD_SLOTS; i++) {
		struct guard_slot *g = &guard_slots[i];
		if (a >= atomic_load(&g->lo) && a < atomic_load(&g->hi)) {
			guard_put("mixfs: index ");
			guard_put(g->path);
			guard_put(sig == SIGBUS ? ": crashed reading it (SIGBUS)"
			                        : ": crashed reading it (SIGSEGV)");
			guard_put(": the file is damaged (run mixfs fsck)\n");
			_exit(guard_code);
		}
	}
	/* not the index: the fault happens again under the previous handler;
	 * a sent signal does not happen again: send it once more */
	sigaction(sig, &guard_prev[sig == SIGBUS ? 0 : 1], NULL);
	if (si->si_code <= 0)
		raise(sig);
}

void idx_guard(int exit_code)
{
	struct sigaction sa;

	if (atomic_exchange(&guard_on, true))
		return;
	guard_code = exit_code;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = guard_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &guard_prev[0]);
	sigaction(SIGSEGV, &sa, &guard_prev[1]);
}

/* The map of x's data.mdb: LMDB does not say where it is (mdb_env_info's
 * me_mapaddr is the MDB_FIXEDMAP address), /proc/self/maps does, by the
 * file's device and inode. */
static int guard_map(const struct idx *x, uintptr_t *lo, uintptr_t *hi)
{
	char path[PATH_MAX], real[PATH_MAX], line[PATH_MAX + 128];
	unsigned long long a, b, ino;
	unsigned maj, mnr;
	struct stat stb;
	FILE *f;
	int rc = -ENOENT, at;

	if (mdb_path(x->dir, path) < 0 || stat(path, &stb) < 0)
		return -ENOENT;
	if (!realpath(path, real))
		real[0] = '\0';
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return -errno;
	while (rc < 0 && fgets(line, sizeof(line), f)) {
		at = 0;
		if (sscanf(line, "%llx-%llx %*s %*s %x:%x %llu %n", &a, &b, &maj, &mnr, &ino, &at) < 5 ||
		    ino != (unsigned long long)stb.st_ino)
			continue;
		line[strcspn(line, "\n")] = '\0';
		/* the device, or (btrfs subvolumes, overlayfs: the map shows
		 * another device number than stat) the file's path */
		if ((maj == major(stb.st_dev) && mnr == minor(stb.st_dev)) ||
		    (at > 0 && real[0] && strcmp(line + at, real) == 0)) {
			*lo = (uintptr_t)a;
			*hi = (uintptr_t)b;
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

static void guard_add(struct idx *x)
{
	uintptr_t lo, hi;

	if (!atomic_load(&guard_on) || guard_map(x, &lo, &hi) < 0)
		return;
	for (unsigned i = 0; i < GUARD_SLOTS; i++) {
		struct guard_slot *g = &guard_slots[i];
		uintptr_t zero = 0;
		/* claim a free slot (lo 0 -> 1), fill it, then publish hi */
		if (atomic_load(&g->hi) == 0 && atomic_compare_exchange_strong(&g->lo, &zero, 1)) {
			(void)mdb_path(x->dir, g->path); /* fits: guard_map found it */
			atomic_store(&g->lo, lo);
			atomic_store(&g->hi, hi);
			x->guard = g;
			return;
		}
	}
}

static void guard_del(struct idx *x)
{
	struct guard_slot *g = x->guard;

	if (!g)
		return;
	atomic_store(&g->hi, 0);
	atomic_store(&g->lo, 0);
	x->guard = NULL;
}

/* Close x->env (if any) and forget its map. */
static void env_close(struct idx *x)
{
	if (!x->env)
		return;
	/* the marker, if armed, stays: the next lazy commit arms it again
	 * (a new pin), idx_sync or the next open clears it */
	if (x->pin)
		mdb_txn_abort(x->pin);
	x->pin = NULL;
	guard_del(x);
	mdb_env_close(x->env);
	x->env = NULL;
}

/* --- environment ------------------------------------------------------- */

static int env_err(const struct idx *x, int rc)
{
	switch (rc) {
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_INCOMPATIBLE:
	case MDB_NOTFOUND:
		return -EINVAL; /* not a mixfs index */
	default:
		return LMDB_ERR_X(x, rc);
	}
}

static int idx_init_store(struct idx_txn *t, const struct idx_super *init)
{
	uint8_t sb[SUPER_LEN], st[STATS_LEN];
	struct idx_super s = *init;
	struct idx_stats zero;
	int rc;

	memset(&zero, 0, sizeof(zero));
	s.format_version = IDX_FORMAT_VERSION;
	super_encode(&s, sb);
	stats_encode(&zero, st);
	rc = db_put(t, DB_SUPER, "super", 5, sb, sizeof(sb), MDB_NOOVERWRITE);
	if (rc < 0)
		return rc;
	return db_put(t, DB_SUPER, "stats", 5, st, sizeof(st), MDB_NOOVERWRITE);
}

/* *old: the format the store was at (it is upgraded below on a rw open). */
static int idx_check_store(struct idx_txn *t, uint32_t *old)
{
	struct idx_super s;
	MDB_val v;
	int rc;

	rc = db_get(t, DB_SUPER, "super", 5, &v);
	if (rc == -ENOENT)
		return -EINVAL;
	if (rc < 0)
		return rc;
	rc = super_decode(&v, &s);
	*old = s.format_version;
	if (rc < 0 || t->rdonly || s.format_version == IDX_FORMAT_VERSION)
		return rc;
	/* An older format opened for writing: records written from now on
	 * may use the new layout, so older binaries must refuse the store. */
	s.format_version = IDX_FORMAT_VERSION;
	{
		uint8_t sb[SUPER_LEN];

		super_encode(&s, sb);
		return db_put(t, DB_SUPER, "super", 5, sb, sizeof(sb), 0);
	}
}

static int meta_pages_read(int fd, uint64_t file_size, uint8_t pg[2][4096], bool sound[2]);

/* LMDB refused x's data.mdb or its lock.mdb (magic or format).  data.mdb:
 * either of its two meta pages (a flipped byte in one is enough); a file of
 * at least those two pages is an index LMDB wrote: damaged, -EUCLEAN;
 * anything shorter is not ours, -EINVAL.  With both meta pages sound, the
 * refused file is lock.mdb, whose header LMDB checks only while another
 * process has the environment open (else it writes it anew): a program
 * built with another LMDB lock format uses the store, -EBUSY. */
static int env_meta_damaged(const struct idx *x, int mrc)
{
	char path[PATH_MAX];
	uint8_t pg[2][4096];
	bool sound[2] = {false, false};
	struct stat stb;
	int fd;

	if (mdb_path(x->dir, path) < 0 || stat(path, &stb) < 0 || stb.st_size < 8192)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)meta_pages_read(fd, (uint64_t)stb.st_size, pg, sound); /* unread: not sound */
		close(fd);
	}
	if (sound[0] && sound[1]) {
		fprintf(stderr, "mixfs: index %s/lock.mdb: LMDB refuses it (%s): the store is in "
		        "use by a program built with another LMDB version\n", x->dir,
		        mdb_strerror(mrc));
		return -EBUSY;
	}
	fprintf(stderr, "mixfs: index %s: LMDB refuses its meta pages (%s): the file is damaged\n",
	        path, mdb_strerror(mrc));
	return -EUCLEAN;
}

/* Create and open x->env on x->dir (flags as idx_open's). */
static int env_create_open(struct idx *x)
{
	int rc = env_err(x, mdb_env_create(&x->env));
	if (rc < 0) {
		x->env = NULL;
		return rc;
	}
	rc = env_err(x, mdb_env_set_maxdbs(x->env, DB_COUNT));
	if (rc >= 0)
		rc = env_err(x, mdb_env_set_mapsize(x->env, x->map_size));
	/* NOTLS: read txns belong to the caller, not to a thread.  NORDAHEAD:
	 * index lookups are random; kernel readahead would evict useful pages
	 * once the map outgrows RAM.  NOMETASYNC: one fdatasync per commit
	 * instead of two; integrity holds, a power cut may undo the last
	 * commit, so fsync(2) paths call idx_sync() after committing. */
	if (rc >= 0) {
		int mrc = mdb_env_open(x->env, x->dir,
		                       MDB_NOTLS | MDB_NORDAHEAD | MDB_NOMETASYNC |
		                               (x->rdonly ? MDB_RDONLY : 0),
		                       0644);
		rc = env_err(x, mrc);
		if (mrc == MDB_INVALID || mrc == MDB_VERSION_MISMATCH)
			rc = env_meta_damaged(x, mrc);
		else if (mrc == ENOMEM) /* a meta page claiming a huge file */
			fprintf(stderr, "mixfs: index %s/data.mdb: LMDB cannot map it (%s): the "
			        "file may be damaged (run mixfs fsck)\n", x->dir, strerror(mrc));
	}
	/* Free reader slots left by processes that died inside a read txn:
	 * they would pin old pages and make the file grow forever. */
	if (rc >= 0)
		rc = env_err(x, mdb_reader_check(x->env, NULL));
	if (rc >= 0)
		guard_add(x);
	else
		env_close(x);
	return rc;
}

/* A transaction or sync starts using x->env (waits out a reopen). */
static void env_enter(struct idx *x)
{
	pthread_mutex_lock(&x->use_lock);
	while (x->reopening)
		pthread_cond_wait(&x->use_cond, &x->use_lock);
	x->users++;
	pthread_mutex_unlock(&x->use_lock);
}

static void env_leave(struct idx *x)
{
	pthread_mutex_lock(&x->use_lock);
	if (--x->users == 0 && x->reopening)
		pthread_cond_broadcast(&x->use_cond);
	pthread_mutex_unlock(&x->use_lock);
}

#define ENV_RECOVER_WAIT_S 2

/* After a failed write of a meta page LMDB refuses every transaction
 * (MDB_PANIC) until the environment is opened again; the file itself is
 * at the last commit whose meta page was written.  Close and reopen it
 * once nothing uses it (a caller that holds another transaction while it
 * starts this one would wait for itself: give up after a while, -EIO; the
 * next caller tries again).  0 when it was reopened (here or by another
 * thread meanwhile). */
static int env_recover(struct idx *x, uint64_t seen)
{
	struct timespec dl;
	MDB_txn *txn = NULL;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += ENV_RECOVER_WAIT_S;
	pthread_mutex_lock(&x->use_lock);
	while (x->reopening && x->reopens == seen)
		if (pthread_cond_timedwait(&x->use_cond, &x->use_lock, &dl) != 0)
			break;
	if (x->reopens != seen)
		goto out; /* another thread reopened it */
	if (x->reopening) {
		rc = -EIO;
		goto out;
	}
	x->reopening = true;
	while (x->users > 0 && rc == 0)
		if (pthread_cond_timedwait(&x->use_cond, &x->use_lock, &dl) != 0)
			rc = -EIO;
	if (rc == 0) {
		env_close(x);
		rc = env_create_open(x);
		if (rc >= 0)
			rc = env_err(x, mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn));
		for (unsigned i = 0; rc >= 0 && i < DB_COUNT; i++) {
			if (x->absent[i])
				continue;
			rc = env_err(x, mdb_dbi_open(txn, idx_db_names[i], 0, &x->dbi[i]));
		}
		/* committing (even a read txn) keeps the dbi handles */
		if (txn)
			rc = rc >= 0 ? env_err(x, mdb_txn_commit(txn)) : (mdb_txn_abort(txn), rc);
		if (rc >= 0) {
			x->reopens++;
			x->reserved_for = -1;
			fprintf(stderr, "mixfs: index %s: reopened after a failed meta page write\n",
			        x->dir);
		} else {
			/* no environment until a later caller reopens it: every
			 * transaction meanwhile fails with EIO, none touches it */
			env_close(x);
			fprintf(stderr, "mixfs: index %s: reopening after a failed meta page write failed: %s\n",
			        x->dir, strerror(-rc));
		}
	}
	x->reopening = false;
	pthread_cond_broadcast(&x->use_cond);
out:
	pthread_mutex_unlock(&x->use_lock);
	return rc < 0 ? rc : 0;
}

static void idx_free(struct idx *x)
{
	pthread_mutex_destroy(&x->use_lock);
	pthread_mutex_destroy(&x->arm_lock);
	pthread_mutex_destroy(&x->wr_lock);
	pthread_cond_destroy(&x->use_cond);
	free(x->dir);
	free(x);
}

/* --- meta page repair -----------------------------------------------------
 *
 * LMDB 0.9's data file starts with two meta pages (page 0 and 1), written
 * in turn by successive commits; the one with the higher txnid is current.
 * A page: pgno (8), pad (2), flags (2, P_META 0x08), lower/upper (4); then
 * the meta: magic 0xBEEFC0DE (4), version 1 (4), address (8), mapsize
 * (8), two MDB_db of 48 bytes (free, main: pad (4, the free db's holds the
 * page size), flags (2), depth (2), branch, leaf and overflow page counts,
 * entries, root (8 each)), last_pg (8), txnid (8).  Little-endian here
 * (the file is this machine's: LMDB does not swap). */
#define META_PAGE_FLAG 0x08u
#define META_MAGIC 0xBEEFC0DEu
#define META_OFF 16u
#define META_DB(i) (META_OFF + 24u + 48u * (i))
#define META_LAST_PG (META_OFF + 120u)
#define META_TXNID (META_OFF + 128u)

static uint64_t le64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static void put_le64(uint8_t *b, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Whether b (a page read at slot) is a sound meta page of a file of
 * file_size bytes. */
static bool meta_sound(const uint8_t *b, unsigned slot, uint64_t file_size)
{
	uint32_t psize = le32(b + META_DB(0));
	uint64_t last = le64(b + META_LAST_PG);

	if (le64(b) != slot || !((b[10] | b[11] << 8) & META_PAGE_FLAG) ||
	    le32(b + META_OFF) != META_MAGIC || le32(b + META_OFF + 4) != 1 ||
	    psize != 4096 || last < 1 || last >= file_size / psize ||
	    le64(b + META_OFF + 16) < (last + 1) * psize || le64(b + META_TXNID) == 0)
		return false;
	for (unsigned i = 0; i < 2; i++) {
		uint64_t root = le64(b + META_DB(i) + 40);
		if (root != UINT64_MAX && (root < 2 || root > last))
			return false;
	}
	return true;
}

/* dir/data.mdb opened read-write, *st its stat: the fd or -errno. */
static int mdb_open_rw(const char *dir, struct stat *st)
{
	char path[PATH_MAX];
	int fd, rc = mdb_path(dir, path);

	if (rc < 0)
		return rc;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* Whether b is the sound meta page LMDB wrote for commit s (in slot s & 1)
 * of a file of file_size bytes. */
static bool meta_of(const uint8_t *b, uint64_t s, uint64_t file_size)
{
	return le64(b + META_TXNID) == s && meta_sound(b, (unsigned)(s & 1), file_size);
}

/* Both meta pages of the data.mdb open at fd (file_size bytes) into pg,
 * and whether each is sound (a short read: not sound).  0 or -errno of a
 * failed read (the pages after it not read, not sound). */
static int meta_pages_read(int fd, uint64_t file_size, uint8_t pg[2][4096], bool sound[2])
{
	int rc = 0;

	for (unsigned i = 0; i < 2; i++) {
		ssize_t n = rc ? -1 : pread(fd, pg[i], sizeof(pg[i]), (off_t)i * 4096);

		if (n < 0 && !rc)
			rc = -errno;
		sound[i] = n == (ssize_t)sizeof(pg[i]) && meta_sound(pg[i], i, file_size);
	}
	return rc;
}

int idx_repair_meta(const char *dir, bool *in_place, uint64_t *txnid)
{
	uint8_t pg[2][4096];
	bool sound[2];
	struct stat st;
	int fd = mdb_open_rw(dir, &st), rc = 0;

	if (fd < 0)
		return fd;
	rc = meta_pages_read(fd, (uint64_t)st.st_size, pg, sound);
	if (rc == 0 && sound[0] == sound[1])
		rc = -EUCLEAN; /* both damaged, or the damage is not in them */
	if (rc == 0) {
		unsigned good = sound[0] ? 0 : 1, bad = 1 - good;
		uint8_t fixed[4096];
		uint64_t tg = le64(pg[good] + META_TXNID);
		/* LMDB refuses a page only for its page number, flags, magic
		 * and version: with those alone damaged (a flipped bit), the
		 * page still names its commit, one apart from the other's:
		 * keep it (it may be the last commit: nothing is lost).  Else
		 * the sound page is copied over it. */
		memcpy(fixed, pg[bad], sizeof(fixed));
		memset(fixed, 0, 16);
		fixed[0] = (uint8_t)bad;
		fixed[10] = META_PAGE_FLAG;
		memcpy(fixed + META_OFF, pg[good] + META_OFF, 8); /* magic, version */
		uint64_t tf = le64(fixed + META_TXNID);
		bool keep = meta_sound(fixed, bad, (uint64_t)st.st_size) &&
		            (tf == tg + 1 || tf + 1 == tg);
		if (!keep) {
			memcpy(fixed, pg[good], sizeof(fixed));
			memset(fixed, 0, 8); /* the page's own number */
			fixed[0] = (uint8_t)bad;
		}
		if (pwrite(fd, fixed, sizeof(fixed), (off_t)bad * 4096) != (ssize_t)sizeof(fixed) ||
		    fdatasync(fd) < 0)
			rc = errno ? -errno : -EIO;
		*in_place = keep;
		*txnid = keep && tf > tg ? tf : tg;
	}
	close(fd);
	return rc;
}

/* --- unsynced commits -----------------------------------------------------
 *
 * Namespace operations (create, unlink, rename, setattr ...) commit
 * without an fdatasync (idx_txn_begin_lazy: the environment's MDB_NOSYNC
 * set for the commit; LMDB 0.9 has no such flag per transaction, so
 * x->wr_lock keeps other write transactions out meanwhile); idx_sync makes
 * everything durable.  LMDB survives a power cut only if a commit's pages
 * reach the disk before its meta page, which an unsynced commit does not
 * order.  So before the first unsynced commit after a synced state S
 * ("arming"), with LMDB's writer lock held:
 *  - data.mdb is synced: S and its meta page are on the disk;
 *  - a read transaction on S stays open (the pin): LMDB reuses no page of
 *    S's tree while a reader holds S, so S's pages stay as they are;
 *  - index/unsynced is written and synced: S's txnid, an image of S's
 *    meta page and this boot's id (/proc/sys/kernel/random/boot_id).
 * idx_sync (fsync, fsyncdir, unmount, gc before it frees pack bytes, the
 * engine's timer) takes the writer lock, syncs data.mdb, clears the
 * marker's magic (synced) and drops the pin.  An open that finds a valid
 * marker (mark_recover):
 *  - written in this boot: the process died (kill -9) but the kernel kept
 *    every write; data.mdb is synced and the marker cleared;
 *  - written in another boot (power cut, kernel crash): the unsynced
 *    commits may be on the disk in part; S's meta page is written back to
 *    its slot and, as txnid S - 1, to the other, so LMDB opens S, whose
 *    pages were pinned.  Lost: the changes committed since S, none of
 *    them covered by an fsync, fsyncdir or unmount that returned.
 * Marker: magic (8), S (8, LE), boot id (40), zero, SHA-256 of bytes
 * 0..96 and of the page (32, at 96), the page image (4096, at 128).  An
 * invalid marker (torn write while arming, cleared magic) names nothing.
 */
#define MARK_NAME "unsynced"
#define MARK_MAGIC "MIXFSUS1"
#define MARK_SUM 96u
#define MARK_HDR 128u
#define MARK_LEN (MARK_HDR + 4096u)

/* This boot's id; MIXFS_BOOT_ID overrides it (tests that build power-cut
 * states on the machine that recorded them). */
static void boot_id(char out[40])
{
	const char *env = getenv("MIXFS_BOOT_ID");
	int fd;

	memset(out, 0, 40);
	if (env && *env) {
		strncpy(out, env, 39);
		return;
	}
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, out, 39);
		close(fd);
		while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\0'))
			out[--n] = '\0';
	}
	if (!out[0])
		strcpy(out, "unknown"); /* every open then counts as another boot */
}

static int mark_sum(const uint8_t *m, uint8_t out[FP_LEN])
{
	uint8_t buf[MARK_SUM + FP_LEN];

	memcpy(buf, m, MARK_SUM);
	int rc = fp_compute(m + MARK_HDR, 4096, buf + MARK_SUM);
	return rc < 0 ? rc : fp_compute(buf, sizeof(buf), out);
}

/* 1 and m filled when dir's marker is valid, 0 when there is none (or it
 * names nothing), else a negative errno. */
static int mark_read(const char *dir, uint8_t m[MARK_LEN])
{
	char path[PATH_MAX];
	uint8_t sum[FP_LEN];
	ssize_t n;
	int fd, rc = index_file(dir, MARK_NAME, path);

	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = pread(fd, m, MARK_LEN, 0);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc < 0 || n != MARK_LEN || memcmp(m, MARK_MAGIC, 8) != 0)
		return rc;
	rc = mark_sum(m, sum);
	if (rc < 0)
		return rc;
	return memcmp(sum, m + MARK_SUM, FP_LEN) == 0 ? 1 : 0;
}

/* Write len bytes at off of the index file name and sync them (the
 * directory too when the file is new). */
static int mark_write(const char *dir, const char *name, const void *b, size_t len, off_t off)
{
	char path[PATH_MAX];
	struct stat st;
	bool fresh;
	int fd, rc = index_file(dir, name, path);

	if (rc < 0)
		return rc;
	fresh = stat(path, &st) < 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (pwrite(fd, b, len, off) != (ssize_t)len || fdatasync(fd) < 0)
		rc = errno ? -errno : -EIO;
	close(fd);
	if (rc == 0 && fresh) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) < 0)
			rc = -errno;
		if (dfd >= 0)
			close(dfd);
	}
	return rc;
}

static int mark_clear(const char *dir)
{
	static const uint8_t zero[8];
	return mark_write(dir, MARK_NAME, zero, sizeof(zero), 0);
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Arm (see above) inside write txn w, which has not changed anything yet;
 * arm_lock held. */
static int arm(struct idx *x, MDB_txn *w)
{
	uint64_t s = mdb_txn_id(w) - 1;
	uint8_t *m = calloc(1, MARK_LEN);
	MDB_txn *pin = NULL;
	struct stat st;
	int fd, rc;

	if (!m)
		return -ENOMEM;
	rc = LMDB_ERR_X(x, mdb_env_get_fd(x->env, &fd));
	if (rc == 0)
		rc = LMDB_ERR_X(x, mdb_env_sync(x->env, 1));
	if (rc == 0 && (fstat(fd, &st) < 0 ||
	                pread(fd, m + MARK_HDR, 4096, (off_t)(s & 1) * 4096) != 4096))
		rc = errno ? -errno : -EIO;
	if (rc == 0 && !meta_of(m + MARK_HDR, s, (uint64_t)st.st_size))
		rc = -EIO; /* not the page LMDB wrote for s */
	if (rc == 0)
		rc = LMDB_ERR_X(x, mdb_txn_begin(x->env, NULL, MDB_RDONLY, &pin));
	if (rc == 0 && mdb_txn_id(pin) != s)
		rc = -EIO;
	if (rc == 0) {
		memcpy(m, MARK_MAGIC, 8);
		put_le64(m + 8, s);
		memcpy(m + 16, x->boot, 40);
		rc = mark_sum(m, m + MARK_SUM);
	}
	if (rc == 0)
		rc = mark_write(x->dir, MARK_NAME, m, MARK_LEN, 0);
	if (rc == 0) {
		if (x->pin)
			mdb_txn_abort(x->pin);
		x->pin = pin;
		pin = NULL;
		atomic_store(&x->marker_armed, true);
		atomic_store(&x->armed_ns, mono_ns());
	}
	if (pin)
		mdb_txn_abort(pin);
	free(m);
	return rc;
}

/* Make every commit durable and clear the marker; env in use (env_enter). */
static int disarm(struct idx *x)
{
	MDB_txn *w;
	int rc;

	/* the writer lock: no unsynced commit between the sync and the clear */
	pthread_mutex_lock(&x->wr_lock);
	rc = LMDB_ERR_X(x, mdb_txn_begin(x->env, NULL, 0, &w));
	if (rc < 0) {
		pthread_mutex_unlock(&x->wr_lock);
		return rc;
	}
	pthread_mutex_lock(&x->arm_lock);
	rc = LMDB_ERR_X(x, mdb_env_sync(x->env, 1));
	if (rc == 0 && atomic_load(&x->marker_armed))
		rc = mark_clear(x->dir);
	if (rc == 0) {
		if (x->pin)
			mdb_txn_abort(x->pin);
		x->pin = NULL;
		atomic_store(&x->marker_armed, false);
	}
	pthread_mutex_unlock(&x->arm_lock);
	mdb_txn_abort(w);
	pthread_mutex_unlock(&x->wr_lock);
	return rc;
}

/* Put data.mdb back at the commit marker m names (another boot wrote it). */
static int mark_rollback(const char *dir, const uint8_t *m)
{
	uint64_t s = le64(m + 8);
	unsigned slot = (unsigned)(s & 1);
	uint8_t other[4096];
	struct stat st;
	int fd = mdb_open_rw(dir, &st), rc = 0;

	if (fd < 0)
		return fd;
	if (!meta_of(m + MARK_HDR, s, (uint64_t)st.st_size))
		rc = -EUCLEAN; /* data.mdb is shorter than the commit it names */
	if (rc == 0) {
		memcpy(other, m + MARK_HDR, sizeof(other));
		memset(other, 0, 8);
		other[0] = (uint8_t)(slot ^ 1);
		put_le64(other + META_TXNID, s - 1);
		if (pwrite(fd, m + MARK_HDR, 4096, (off_t)slot * 4096) != 4096 ||
		    pwrite(fd, other, 4096, (off_t)(slot ^ 1) * 4096) != 4096 || fdatasync(fd) < 0)
			rc = errno ? -errno : -EIO;
	}
	close(fd);
	return rc;
}

/* Before the environment opens: a marker of another boot rolls data.mdb
 * back (*sync_after false); one of this boot leaves it (*sync_after true:
 * sync and clear once it is open, unless read-only: a mount may be using
 * it). */
static int mark_recover(struct idx *x, bool *sync_after)
{
	uint8_t *m = malloc(MARK_LEN);
	int rc;

	*sync_after = false;
	if (!m)
		return -ENOMEM;
	rc = mark_read(x->dir, m);
	if (rc <= 0)
		goto out;
	if (memcmp(m + 16, x->boot, 40) == 0) {
		*sync_after = !x->rdonly;
		rc = 0;
		goto out;
	}
	rc = mark_rollback(x->dir, m);
	if (rc == 0)
		rc = mark_clear(x->dir);
	if (rc == 0)
		fprintf(stderr, "mixfs: index %s: back at commit %" PRIu64 ", the last one synced "
		        "before the machine went down (changes since then were not fsync'd)\n",
		        x->dir, le64(m + 8));
	else
		fprintf(stderr, "mixfs: index %s/data.mdb: cannot go back to commit %" PRIu64
		        " after the machine went down: %s\n", x->dir, le64(m + 8), strerror(-rc));
out:
	free(m);
	return rc < 0 ? rc : 0;
}

int idx_open(const char *dir, unsigned flags, const struct idx_super *init,
             uint64_t map_size, struct idx **out)
{
	bool create = flags & IDX_CREATE, rdonly = flags & IDX_RDONLY, sync_after = false;
	uint32_t old_format = IDX_FORMAT_VERSION;
	struct idx_txn t = { 0 };
	char path[PATH_MAX];
	struct cdc cdc;
	struct stat stb;
	struct idx *x;
	unsigned i;
	int rc;

	*out = NULL;
	if (create && (rdonly || !init || init->default_level >= IDX_LEVEL_COUNT ||
	               cdc_init(&cdc, &init->cdc) < 0))
		return -EINVAL;
	rc = mdb_path(dir, path);
	if (rc < 0)
		return rc;
	if (create) {
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		if (stat(path, &stb) == 0)
			return -EEXIST;
	} else if (stat(path, &stb) < 0) {
		return -errno;
	}

	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->rdonly = rdonly;
	x->map_size = map_size ? map_size : IDX_MAP_DEFAULT;
	x->reserved_for = -1;
	pthread_mutex_init(&x->use_lock, NULL);
	pthread_cond_init(&x->use_cond, NULL);
	pthread_mutex_init(&x->arm_lock, NULL);
	pthread_mutex_init(&x->wr_lock, NULL);
	boot_id(x->boot);
	t.x = x;
	t.rdonly = rdonly;
	x->dir = strdup(dir);
	if (!x->dir) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = create ? 0 : mark_recover(x, &sync_after);
	if (rc < 0)
		goto fail;
	rc = env_create_open(x);
	if (rc < 0)
		goto fail;
	if (sync_after) {
		/* the last process died with commits not synced: the kernel
		 * has them all; make them durable before anything else */
		rc = LMDB_ERR_X(x, mdb_env_sync(x->env, 1));
		if (rc == 0)
			rc = mark_clear(x->dir);
		if (rc < 0)
			goto fail;
	}
	rc = env_err(x, mdb_txn_begin(x->env, NULL, rdonly ? MDB_RDONLY : 0, &t.txn));
	if (rc < 0)
		goto fail;
	/* Super first: a newer format may have other databases. */
	for (i = 0; i < DB_COUNT; i++) {
		unsigned fl = create || (db_optional(i) && !rdonly) ? MDB_CREATE : 0;
		int mrc = mdb_dbi_open(t.txn, idx_db_names[i], fl, &x->dbi[i]);
		if (mrc == MDB_NOTFOUND && db_optional(i) && rdonly) {
			x->absent[i] = true;
			continue;
		}
		rc = env_err(x, mrc);
		if (rc < 0)
			goto fail_txn;
		if (i == DB_SUPER) {
			rc = create ? idx_init_store(&t, init) : idx_check_store(&t, &old_format);
			if (rc < 0)
				goto fail_txn;
		}
	}
	/* format 4: the reverse references of the chunks already stored */
	if (!rdonly && old_format < 4) {
		rc = idx_refby_rebuild(&t);
		if (rc < 0)
			goto fail_txn;
	}
	/* Committing (even a read txn) keeps the dbi handles for the env. */
	rc = env_err(x, mdb_txn_commit(t.txn));
	if (rc < 0)
		goto fail;
	*out = x;
	return 0;

fail_txn:
	mdb_txn_abort(t.txn);
fail:
	env_close(x);
	idx_free(x);
	return rc;
}

void idx_close(struct idx *x)
{
	if (!x)
		return;
	if (x->env && atomic_load(&x->marker_armed)) {
		int rc = disarm(x);
		if (rc < 0)
			fprintf(stderr, "mixfs: index %s: sync at close failed: %s\n", x->dir,
			        strerror(-rc));
	}
	env_close(x);
	idx_free(x);
}

int idx_txn_begin(struct idx *x, bool rdonly, struct idx_txn **out)
{
	struct idx_txn *t;
	int rc;

	*out = NULL;
	if (x->rdonly && !rdonly)
		return -EROFS;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->x = x;
	t->rdonly = rdonly;
	for (int attempt = 0;; attempt++) {
		uint64_t seen;
		int mrc;
		env_enter(x);
		seen = x->reopens;
		/* no environment: a reopen after MDB_PANIC failed; try again */
		if (!rdonly)
			pthread_mutex_lock(&x->wr_lock);
		mrc = x->env ? mdb_txn_begin(x->env, NULL, rdonly ? MDB_RDONLY : 0, &t->txn)
		             : MDB_PANIC;
		if (mrc == 0)
			break;
		if (!rdonly)
			pthread_mutex_unlock(&x->wr_lock);
		env_leave(x);
		if (mrc == MDB_PANIC && !x->rdonly && attempt == 0 && env_recover(x, seen) == 0)
			continue;
		rc = LMDB_ERR_X(x, mrc);
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int idx_txn_begin_lazy(struct idx *x, struct idx_txn **out)
{
	int rc = idx_txn_begin(x, false, out);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&x->arm_lock);
	if (!x->pin)
		rc = arm(x, (*out)->txn);
	pthread_mutex_unlock(&x->arm_lock);
	(*out)->lazy = rc == 0;
	if (rc < 0) {
		/* not armed: this commit must be a synced one */
		idx_txn_abort(*out);
		fprintf(stderr, "mixfs: index %s: cannot defer syncs (%s); this commit is synced\n",
		        x->dir, strerror(-rc));
		rc = idx_txn_begin(x, false, out);
	}
	return rc;
}

int idx_flag_set(struct idx *x, const char *name)
{
	return mark_write(x->dir, name, "", 0, 0);
}

int idx_flag_clear(struct idx *x, const char *name)
{
	char path[PATH_MAX];
	int rc = index_file(x->dir, name, path);

	if (rc == 0 && unlink(path) < 0 && errno != ENOENT)
		rc = -errno;
	return rc;
}

bool idx_flag_get(struct idx *x, const char *name)
{
	char path[PATH_MAX];

	return index_file(x->dir, name, path) == 0 && access(path, F_OK) == 0;
}

int64_t idx_unsynced_since(struct idx *x)
{
	return atomic_load(&x->marker_armed) ? atomic_load(&x->armed_ns) : 0;
}

/* Keep IDX_RESERVE bytes allocated past the end of data.mdb (fallocate,
 * KEEP_SIZE: the file's size is LMDB's), so that the index can grow that
 * much on a full disk: an unlink, the deletion of its inode (which makes
 * the file's pack bytes dead, for gc to free) and a gc's transaction
 * commit there instead of failing with ENOSPC.  Allocated again once the
 * file grew into it and the disk has room; best effort, in a write
 * transaction (LMDB's writer lock). */
static void env_reserve(struct idx *x)
{
	struct stat st;
	int fd;

	if (x->rdonly || !x->env || mdb_env_get_fd(x->env, &fd) != 0 || fstat(fd, &st) < 0 ||
	    st.st_size == x->reserved_for)
		return;
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, st.st_size, IDX_RESERVE) == 0)
		x->reserved_for = st.st_size;
}

/* After LMDB's commit or abort of t. */
static void txn_end(struct idx_txn *t)
{
	if (!t->rdonly)
		pthread_mutex_unlock(&t->x->wr_lock);
	env_leave(t->x);
	free(t->zero);
	free(t);
}

int idx_txn_commit(struct idx_txn *t)
{
	int rc = t->err;

	if (rc == 0 && !t->rdonly) {
		rc = txn_flush(t);
		if (rc == 0)
			env_reserve(t->x);
	}
	if (rc == 0)
		rc = t->err;
	if (rc < 0) {
		mdb_txn_abort(t->txn);
		goto out;
	}
	if (t->lazy)
		mdb_env_set_flags(t->x->env, MDB_NOSYNC, 1);
	rc = LMDB_ERR_X(t->x, mdb_txn_commit(t->txn));
	if (t->lazy)
		mdb_env_set_flags(t->x->env, MDB_NOSYNC, 0);
out:
	txn_end(t);
	return rc;
}

void idx_txn_abort(struct idx_txn *t)
{
	if (!t)
		return;
	mdb_txn_abort(t->txn);
	txn_end(t);
}

int idx_sync(struct idx *x)
{
	int rc;

	if (x->rdonly)
		return 0;
	env_enter(x);
	if (!x->env)
		rc = -EIO; /* reopen failed */
	else if (atomic_load(&x->marker_armed))
		rc = disarm(x);
	else
		rc = LMDB_ERR_X(x, mdb_env_sync(x->env, 1));
	env_leave(x);
	return rc;
}

/* --- superblock and stats ------------------------------------------------ */

int idx_super_get(struct idx_txn *t, struct idx_super *s)
{
	struct idx_super *sb;
	int rc = txn_super(t, &sb);

	if (rc < 0)
		return rc;
	*s = *sb;
	return 0;
}

int idx_super_put(struct idx_txn *t, const struct idx_super *s)
{
	struct idx_super *sb;
	struct cdc cdc;
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	if (s->default_level >= IDX_LEVEL_COUNT || cdc_init(&cdc, &s->cdc) < 0)
		return -EINVAL;
	rc = txn_super(t, &sb);
	if (rc < 0)
		return rc;
	*sb = *s;
	t->super_dirty = true;
	/* pending_bytes depends on default_level. */
	if (!t->stats_loaded) {
		struct idx_stats *st;

		rc = txn_stats(t, &st);
		if (rc < 0)
			return rc;
	}
	t->stats_dirty = true;
	return 0;
}

int idx_ino_alloc(struct idx_txn *t, uint64_t *ino)
{
	struct idx_super *sb;
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	rc = txn_super(t, &sb);
	if (rc < 0)
		return rc;
	if (sb->next_ino == UINT64_MAX)
		return -ENOSPC;
	*ino = sb->next_ino++;
	t->super_dirty = true;
	return 0;
}

int idx_pack_alloc(struct idx_txn *t, uint32_t *pack_id)
{
	struct idx_super *sb;
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	rc = txn_super(t, &sb);
	if (rc < 0)
		return rc;
	if (sb->next_pack == UINT32_MAX)
		return -ENOSPC;
	*pack_id = sb->next_pack++;
	t->super_dirty = true;
	return 0;
}

struct stats_count {
	struct idx_txn *t;
	struct idx_stats *s;
};

static int stats_count_chunk(void *arg, const struct idx_chunk *c)
{
	stats_chunk(arg, c, +1);
	return 0;
}

static int stats_count_extent(void *arg, const struct idx_extent *e)
{
	((struct idx_stats *)arg)->mapped_bytes += e->len;
	return 0;
}

static int stats_count_inode(void *arg, const struct idx_inode *in)
{
	struct stats_count *sc = arg;

	if (!S_ISREG(in->mode))
		return 0;
	sc->s->files++;
	sc->s->logical_bytes += in->size;
	return idx_extent_iter(sc->t, in->ino, 0, UINT64_MAX, stats_count_extent, sc->s);
}

int idx_stats_count(struct idx_txn *t, struct idx_stats *s)
{
	struct stats_count sc = {.t = t, .s = s};
	struct idx_super *sb;
	int rc;

	memset(s, 0, sizeof(*s));
	rc = txn_super(t, &sb);
	if (rc == 0)
		rc = idx_inode_iter(t, stats_count_inode, &sc);
	if (rc == 0)
		rc = idx_chunk_iter(t, stats_count_chunk, s);
	if (rc == 0)
		stats_fix_pending(s, sb->default_level);
	return rc < 0 ? rc : 0;
}

int idx_stats_reset(struct idx_txn *t)
{
	struct idx_stats *st, s;
	int rc = txn_writable(t);

	if (rc == 0)
		rc = txn_stats(t, &st);
	if (rc == 0)
		rc = idx_stats_count(t, &s);
	if (rc < 0)
		return rc;
	*st = s;
	t->stats_dirty = true;
	return 0;
}

int idx_stats_get(struct idx_txn *t, struct idx_stats *s)
{
	struct idx_super *sb;
	struct idx_stats *st;
	int rc;

	rc = txn_stats(t, &st);
	if (rc < 0)
		return rc;
	rc = txn_super(t, &sb);
	if (rc < 0)
		return rc;
	stats_fix_pending(st, sb->default_level);
	*s = *st;
	return 0;
}

/* --- inodes ---------------------------------------------------------------- */

int idx_inode_get(struct idx_txn *t, uint64_t ino, struct idx_inode *out)
{
	uint8_t k[8];
	MDB_val v;
	int rc;

	put_be64(k, ino);
	rc = db_get(t, DB_INODES, k, sizeof(k), &v);
	if (rc < 0)
		return rc;
	return inode_decode(ino, &v, out);
}

static void stats_inode(struct idx_stats *st, const struct idx_inode *in, int sign)
{
	uint64_t one = (uint64_t)(int64_t)sign;

	if (!S_ISREG(in->mode))
		return;
	st->files += one;
	st->logical_bytes += one * in->size;
}

int idx_inode_put(struct idx_txn *t, const struct idx_inode *in)
{
	struct idx_inode old;
	struct idx_stats *st;
	uint8_t k[8], b[INODE_LEN];
	bool had_old;
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	if (in->ino == 0)
		return -EINVAL;
	rc = txn_stats(t, &st);
	if (rc < 0)
		return rc;
	rc = idx_inode_get(t, in->ino, &old);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	had_old = rc == 0;
	put_be64(k, in->ino);
	inode_encode(in, b);
	rc = db_put(t, DB_INODES, k, sizeof(k), b, sizeof(b), 0);
	if (rc < 0)
		return rc;
	if (had_old)
		stats_inode(st, &old, -1);
	stats_inode(st, in, +1);
	t->stats_dirty = true;
	return 0;
}

/* Delete every key of db d that starts with the 8-byte prefix of ino. */
static int db_del_prefix(struct idx_txn *t, enum idx_db d, uint64_t ino)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint8_t pk[8];
	int rc;

	rc = db_cursor(t, d, &cur);
	if (rc < 0)
		return rc;
	put_be64(pk, ino);
	for (;;) {
		k = mval(pk, sizeof(pk));
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND || (rc == 0 && (k.mv_size < 8 || memcmp(k.mv_data, pk, 8) != 0))) {
			rc = 0;
			break;
		}
		if (rc == 0)
			rc = mdb_cursor_del(cur, 0);
		if (rc != 0) {
			rc = LMDB_ERR(t, rc);
			break;
		}
	}
	mdb_cursor_close(cur);
	return rc;
}

int idx_inode_delete(struct idx_txn *t, uint64_t ino)
{
	struct idx_inode in;
	struct idx_stats *st;
	uint8_t k[8];
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	rc = txn_stats(t, &st);
	if (rc < 0)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (rc < 0)
		return rc;
	rc = idx_file_punch(t, &in, 0, UINT64_MAX);
	if (rc < 0)
		return rc;
	rc = db_del_prefix(t, DB_XATTRS, ino);
	if (rc < 0)
		return rc;
	rc = idx_tensors_set(t, ino, NULL, 0);
	if (rc < 0)
		return rc;
	put_be64(k, ino);
	rc = db_del(t, DB_SYMLINKS, k, sizeof(k));
	if (rc < 0 && rc != -ENOENT)
		return rc;
	rc = db_del(t, DB_ORPHANS, k, sizeof(k));
	if (rc < 0 && rc != -ENOENT)
		return rc;
	rc = db_del(t, DB_INODES, k, sizeof(k));
	if (rc < 0)
		return rc;
	stats_inode(st, &in, -1);
	t->stats_dirty = true;
	return 0;
}

struct inode_walk {
	idx_inode_cb cb;
	void *arg;
};

static int inode_walk_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct inode_walk *w = ctx;
	struct idx_inode in;
	int rc;

	if (k->mv_size != 8)
		return -EIO;
	rc = inode_decode(get_be64(k->mv_data), v, &in);
	return rc ? rc : w->cb(w->arg, &in);
}

int idx_inode_iter(struct idx_txn *t, idx_inode_cb cb, void *arg)
{
	struct inode_walk w = { cb, arg };

	return db_walk(t, DB_INODES, NULL, 0, 0, inode_walk_fn, &w);
}

int idx_inode_iter_from(struct idx_txn *t, uint64_t from, idx_inode_cb cb, void *arg)
{
	struct inode_walk w = { cb, arg };
	uint8_t k[8];

	put_be64(k, from);
	return db_walk(t, DB_INODES, k, sizeof(k), 0, inode_walk_fn, &w);
}

/* --- directories ------------------------------------------------------------ */

static size_t dirent_key(uint8_t k[8 + IDX_NAME_MAX], uint64_t parent, const char *name,
                         size_t namelen)
{
	put_be64(k, parent);
	memcpy(k + 8, name, namelen);
	return 8 + namelen;
}

int idx_dirent_lookup(struct idx_txn *t, uint64_t parent, const char *name, size_t namelen,
                      uint64_t *ino, uint8_t *type)
{
	uint8_t k[8 + IDX_NAME_MAX];
	uint64_t seq;
	MDB_val v;
	int rc;

	rc = name_check(name, namelen);
	if (rc < 0)
		return rc;
	rc = db_get(t, DB_DIRENTS, k, dirent_key(k, parent, name, namelen), &v);
	if (rc < 0)
		return rc;
	return dirent_decode(&v, ino, &seq, type);
}

int idx_dirent_add(struct idx_txn *t, struct idx_inode *dir, const char *name, size_t namelen,
                   uint64_t ino, uint8_t type)
{
	uint8_t k[8 + IDX_NAME_MAX], v[DIRENT_LEN], sk[16], sv[DIRSEQ_HDR + IDX_NAME_MAX];
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	rc = name_check(name, namelen);
	if (rc < 0)
		return rc;
	if (dir->dir_seq == UINT64_MAX)
		return -ENOSPC;
	dirent_encode(ino, dir->dir_seq, type, v);
	rc = db_put(t, DB_DIRENTS, k, dirent_key(k, dir->ino, name, namelen), v, sizeof(v),
	            MDB_NOOVERWRITE);
	if (rc < 0)
		return rc;
	key_u64_u64(sk, dir->ino, dir->dir_seq);
	rc = db_put(t, DB_DIRSEQ, sk, sizeof(sk), sv, dirseq_encode(ino, type, name, namelen, sv),
	            MDB_NOOVERWRITE);
	if (rc == -EEXIST)
		return -EIO; /* dir_seq went backwards: the directory is corrupt */
	if (rc < 0)
		return rc;
	dir->dir_seq++;
	return 0;
}

int idx_dirent_del(struct idx_txn *t, uint64_t parent, const char *name, size_t namelen)
{
	uint8_t k[8 + IDX_NAME_MAX], sk[16], type;
	uint64_t ino, seq;
	size_t klen;
	MDB_val v;
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	rc = name_check(name, namelen);
	if (rc < 0)
		return rc;
	klen = dirent_key(k, parent, name, namelen);
	rc = db_get(t, DB_DIRENTS, k, klen, &v);
	if (rc < 0)
		return rc;
	rc = dirent_decode(&v, &ino, &seq, &type);
	if (rc < 0)
		return rc;
	key_u64_u64(sk, parent, seq);
	rc = db_del(t, DB_DIRSEQ, sk, sizeof(sk));
	if (rc == -ENOENT)
		return -EIO; /* the two databases disagree */
	if (rc < 0)
		return rc;
	return db_del(t, DB_DIRENTS, k, klen);
}

static int stop_at_first(void *ctx, const MDB_val *k, const MDB_val *v)
{
	return 1;
}

int idx_dir_is_empty(struct idx_txn *t, uint64_t parent)
{
	uint8_t pk[8];
	int rc;

	put_be64(pk, parent);
	rc = db_walk(t, DB_DIRSEQ, pk, sizeof(pk), sizeof(pk), stop_at_first, NULL);
	return rc < 0 ? rc : !rc;
}

struct dir_walk {
	idx_dirent_cb cb;
	void *arg;
};

static int dir_walk_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct dir_walk *w = ctx;
	char name[IDX_NAME_MAX + 1];
	size_t namelen;
	uint64_t ino;
	uint8_t type;
	int rc;

	if (k->mv_size != 16)
		return -EIO;
	rc = dirseq_decode(v, &ino, &type, name, &namelen);
	return rc ? rc : w->cb(w->arg, name, namelen, ino, type, get_be64((uint8_t *)k->mv_data + 8));
}

int idx_dir_iter(struct idx_txn *t, uint64_t parent, uint64_t from_seq, idx_dirent_cb cb,
                 void *arg)
{
	struct dir_walk w = { cb, arg };
	uint8_t sk[16];

	key_u64_u64(sk, parent, from_seq);
	return db_walk(t, DB_DIRSEQ, sk, sizeof(sk), 8, dir_walk_fn, &w);
}

/* --- chunks and packs ------------------------------------------------------ */

int idx_chunk_get(struct idx_txn *t, const uint8_t fp[FP_LEN], struct idx_chunk *out)
{
	MDB_val v;
	int rc;

	rc = db_get(t, DB_CHUNKS, fp, FP_LEN, &v);
	if (rc < 0)
		return rc;
	return chunk_decode(fp, &v, out);
}

static int chunk_write(struct idx_txn *t, const struct idx_chunk *c, unsigned flags)
{
	uint8_t b[CHUNK_REF_LEN];

	return db_put(t, DB_CHUNKS, c->fp, FP_LEN, b, chunk_encode(c, b), flags);
}

static int refby_put(struct idx_txn *t, const uint8_t ref[FP_LEN], const uint8_t fp[FP_LEN]);
static int refby_del(struct idx_txn *t, const uint8_t ref[FP_LEN], const uint8_t fp[FP_LEN]);
static int loose_mark(struct idx_txn *t, const struct idx_chunk *c);

/* Add n references to an existing chunk. */
static int chunk_ref(struct idx_txn *t, const uint8_t fp[FP_LEN], uint32_t n)
{
	struct idx_chunk c;
	int rc;

	rc = idx_chunk_get(t, fp, &c);
	if (rc < 0)
		return rc;
	if (c.refcount > UINT32_MAX - n)
		return -EMLINK;
	c.refcount += n;
	return chunk_write(t, &c, 0);
}

/* -ELOOP if self is on fp's reference chain (coding self against fp would
 * close a loop), 0 if not; reads only, so a refusal changes nothing. */
static int chain_check(struct idx_txn *t, const uint8_t self[FP_LEN], const uint8_t fp[FP_LEN])
{
	struct idx_chunk c;
	uint8_t cur[FP_LEN];
	int rc;

	memcpy(cur, fp, FP_LEN);
	for (unsigned k = 0; k < IDX_REF_DEPTH_MAX; k++) {
		if (memcmp(cur, self, FP_LEN) == 0)
			return -ELOOP;
		rc = idx_chunk_get(t, cur, &c);
		if (rc < 0)
			return rc == -ENOENT ? -EIO : rc;
		if (!(c.flags & IDX_CHUNK_HAS_REF))
			return 0;
		memcpy(cur, c.ref_fp, FP_LEN);
	}
	return -EIO; /* a chain this long is a loop */
}

/* A reverse delta of height h now codes against fp: raise the heights
 * along fp's chain of reverse deltas so each stays above everything coded
 * against it that way.  Stops where a height is already high enough (the
 * chain above is then too) and at the first chunk that is not a reverse
 * delta (a forward or no reference: forward chains are bounded when they
 * are written, by walking them). */
static int height_raise(struct idx_txn *t, const uint8_t fp[FP_LEN], unsigned h)
{
	struct idx_chunk c;
	uint8_t cur[FP_LEN];
	int rc;

	memcpy(cur, fp, FP_LEN);
	for (unsigned k = 0; k < IDX_REF_DEPTH_MAX; k++, h++) {
		rc = idx_chunk_get(t, cur, &c);
		if (rc < 0)
			return rc == -ENOENT ? -EIO : rc;
		if (c.height >= (h > UINT8_MAX ? UINT8_MAX : h))
			return 0;
		c.height = (uint8_t)(h > UINT8_MAX ? UINT8_MAX : h);
		rc = chunk_write(t, &c, 0);
		if (rc < 0 || !(c.flags & IDX_CHUNK_REVERSED))
			return rc;
		memcpy(cur, c.ref_fp, FP_LEN);
	}
	return -EIO;
}

/* Make room for one more entry on the sweep list before a refcount is
 * written as zero, so that a failed allocation changes nothing. */
static int zero_reserve(struct idx_txn *t)
{
	uint8_t(*p)[FP_LEN];
	size_t cap;

	if (t->nzero < t->capzero)
		return 0;
	cap = t->capzero ? 2 * t->capzero : 64;
	p = realloc(t->zero, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	t->zero = p;
	t->capzero = cap;
	return 0;
}

static void zero_push(struct idx_txn *t, const uint8_t fp[FP_LEN])
{
	memcpy(t->zero[t->nzero++], fp, FP_LEN);
}

int idx_pack_get(struct idx_txn *t, uint32_t id, struct idx_pack *out)
{
	uint8_t k[4];
	MDB_val v;
	int rc;

	put_be32(k, id);
	rc = db_get(t, DB_PACKS, k, sizeof(k), &v);
	if (rc < 0)
		return rc;
	return pack_decode(id, &v, out);
}

int idx_pack_put(struct idx_txn *t, const struct idx_pack *p)
{
	uint8_t k[4], b[PACK_LEN];
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	put_be32(k, p->id);
	pack_encode(p, b);
	return db_put(t, DB_PACKS, k, sizeof(k), b, sizeof(b), 0);
}

int idx_pack_del(struct idx_txn *t, uint32_t id)
{
	uint8_t k[4];
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	put_be32(k, id);
	return db_del(t, DB_PACKS, k, sizeof(k));
}

struct pack_walk {
	idx_pack_cb cb;
	void *arg;
};

static int pack_walk_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct pack_walk *w = ctx;
	struct idx_pack p;
	int rc;

	if (k->mv_size != 4)
		return -EIO;
	rc = pack_decode(get_be32(k->mv_data), v, &p);
	return rc ? rc : w->cb(w->arg, &p);
}

int idx_pack_iter(struct idx_txn *t, idx_pack_cb cb, void *arg)
{
	struct pack_walk w = { cb, arg };

	return db_walk(t, DB_PACKS, NULL, 0, 0, pack_walk_fn, &w);
}

/* frame_len bytes of pack id become live (a pack record is created on first
 * use) or, with dead = true, move from live to dead. */
static int pack_account(struct idx_txn *t, uint32_t id, uint32_t frame_len, bool dead)
{
	struct idx_pack p;
	int rc;

	rc = idx_pack_get(t, id, &p);
	if (rc == -ENOENT && !dead) {
		p.id = id;
		p.live_bytes = p.dead_bytes = 0;
	} else if (rc == -ENOENT) {
		return -EIO; /* a live chunk in a pack that is gone */
	} else if (rc < 0) {
		return rc;
	}
	if (dead) {
		if (p.live_bytes < frame_len)
			return -EIO;
		p.live_bytes -= frame_len;
		p.dead_bytes += frame_len;
	} else {
		p.live_bytes += frame_len;
	}
	return idx_pack_put(t, &p);
}

int idx_chunk_insert(struct idx_txn *t, const struct idx_chunk *c)
{
	struct idx_chunk nc;
	struct idx_stats *st;
	MDB_val v;
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	if (!chunk_valid(c))
		return -EINVAL;
	rc = txn_stats(t, &st);
	if (rc < 0)
		return rc;
	/* Check first so that -EEXIST changes nothing. */
	rc = db_get(t, DB_CHUNKS, c->fp, FP_LEN, &v);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	if (c->refcount == 0) {
		rc = zero_reserve(t);
		if (rc < 0)
			return rc;
	}
	if (c->flags & IDX_CHUNK_HAS_REF) {
		rc = chunk_ref(t, c->ref_fp, 1);
		if (rc == 0 && (c->flags & IDX_CHUNK_REVERSED))
			rc = height_raise(t, c->ref_fp, 1);
		if (rc == 0)
			rc = refby_put(t, c->ref_fp, c->fp);
		if (rc < 0)
			return rc;
	}
	nc = *c;
	nc.height = 0; /* new: nothing codes against it yet */
	rc = chunk_write(t, &nc, MDB_NOOVERWRITE);
	if (rc < 0)
		return rc;
	if (c->refcount == 0)
		zero_push(t, c->fp);
	rc = pack_account(t, c->pack_id, c->frame_len, false);
	if (rc < 0)
		return rc;
	stats_chunk(st, c, +1);
	t->stats_dirty = true;
	return 0;
}

static int chunk_unref_one(struct idx_txn *t, const uint8_t fp[FP_LEN])
{
	struct idx_chunk c;
	int rc;

	rc = idx_chunk_get(t, fp, &c);
	if (rc < 0)
		return rc;
	if (c.refcount == 0)
		return -EIO;
	if (--c.refcount == 0) {
		rc = zero_reserve(t);
		if (rc < 0)
			return rc;
	}
	rc = chunk_write(t, &c, 0);
	if (rc < 0)
		return rc;
	if (c.refcount == 0)
		zero_push(t, fp);
	else
		rc = loose_mark(t, &c);
	return rc;
}

int idx_chunk_refcount_set(struct idx_txn *t, const uint8_t fp[FP_LEN], uint32_t refcount)
{
	struct idx_chunk c;
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	rc = idx_chunk_get(t, fp, &c);
	if (rc < 0)
		return rc;
	if (refcount == 0) {
		rc = zero_reserve(t);
		if (rc < 0)
			return rc;
	}
	c.refcount = refcount;
	rc = chunk_write(t, &c, 0);
	if (rc == 0 && refcount == 0)
		zero_push(t, fp);
	else if (rc == 0)
		rc = loose_mark(t, &c); /* a count lowered to its dependents' */
	return rc;
}

int idx_chunk_unref(struct idx_txn *t, const uint8_t fp[FP_LEN])
{
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	return chunk_unref_one(t, fp);
}

/* Delete the listed chunks that are still unreferenced.  Releasing a
 * chunk's reference chunk may list that one too: loop until empty. */
static int chunk_sweep(struct idx_txn *t)
{
	uint8_t fp[FP_LEN];
	struct idx_stats *st;
	struct idx_chunk c;
	int rc;

	while (t->nzero) {
		memcpy(fp, t->zero[--t->nzero], FP_LEN);
		rc = idx_chunk_get(t, fp, &c);
		if (rc == -ENOENT)
			continue; /* listed twice, already gone */
		if (rc < 0)
			return rc;
		if (c.refcount)
			continue; /* mapped again in this txn */
		rc = txn_stats(t, &st);
		if (rc < 0)
			return rc;
		rc = db_del(t, DB_CHUNKS, fp, FP_LEN);
		if (rc == 0)
			rc = idx_hint_drop(t, fp);
		if (rc == 0)
			rc = idx_loose_drop(t, fp);
		if (rc == 0 && (c.flags & IDX_CHUNK_HAS_REF))
			rc = refby_del(t, c.ref_fp, fp);
		if (rc < 0)
			return rc;
		rc = pack_account(t, c.pack_id, c.frame_len, true);
		if (rc < 0)
			return rc;
		stats_chunk(st, &c, -1);
		t->stats_dirty = true;
		if (c.flags & IDX_CHUNK_HAS_REF) {
			rc = chunk_unref_one(t, c.ref_fp);
			if (rc < 0)
				return rc == -ENOENT ? -EIO : rc;
		}
	}
	return 0;
}

int idx_chunk_relocate(struct idx_txn *t, const struct idx_chunk *c)
{
	struct idx_chunk old, nc;
	struct idx_stats *st;
	bool ref_changed;
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	if (!chunk_valid(c))
		return -EINVAL;
	rc = txn_stats(t, &st);
	if (rc < 0)
		return rc;
	rc = idx_chunk_get(t, c->fp, &old);
	if (rc < 0)
		return rc;
	if (old.raw_len != c->raw_len)
		return -EINVAL;
	nc = *c;
	nc.refcount = old.refcount;
	nc.height = old.height;
	ref_changed = (old.flags & IDX_CHUNK_HAS_REF) != (nc.flags & IDX_CHUNK_HAS_REF) ||
	              ((nc.flags & IDX_CHUNK_HAS_REF) && memcmp(old.ref_fp, nc.ref_fp, FP_LEN) != 0);
	/* Take the new reference before dropping the old one, so a shared
	 * reference chunk never passes through zero. */
	if (ref_changed && (nc.flags & IDX_CHUNK_HAS_REF)) {
		rc = chain_check(t, nc.fp, nc.ref_fp);
		if (rc == 0)
			rc = chunk_ref(t, nc.ref_fp, 1);
		if (rc == 0)
			rc = refby_put(t, nc.ref_fp, nc.fp);
		if (rc < 0)
			return rc;
	}
	/* a reverse delta now (a new reference, or a forward delta turned
	 * around against the same one): the heights above it cover it */
	if ((nc.flags & IDX_CHUNK_REVERSED) && (ref_changed || !(old.flags & IDX_CHUNK_REVERSED))) {
		rc = height_raise(t, nc.ref_fp, nc.height + 1u);
		if (rc < 0)
			return rc;
	}
	rc = chunk_write(t, &nc, 0);
	if (rc < 0)
		return rc;
	rc = pack_account(t, old.pack_id, old.frame_len, true);
	if (rc < 0)
		return rc;
	rc = pack_account(t, nc.pack_id, nc.frame_len, false);
	if (rc < 0)
		return rc;
	stats_chunk(st, &old, -1);
	stats_chunk(st, &nc, +1);
	t->stats_dirty = true;
	if (ref_changed && (old.flags & IDX_CHUNK_HAS_REF)) {
		rc = refby_del(t, old.ref_fp, old.fp);
		if (rc == 0)
			rc = chunk_unref_one(t, old.ref_fp);
	}
	return rc;
}

struct chunk_walk {
	idx_chunk_cb cb;
	void *arg;
};

static int chunk_walk_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct chunk_walk *w = ctx;
	struct idx_chunk c;
	int rc;

	if (k->mv_size != FP_LEN)
		return -EIO;
	rc = chunk_decode(k->mv_data, v, &c);
	return rc ? rc : w->cb(w->arg, &c);
}

int idx_chunk_iter(struct idx_txn *t, idx_chunk_cb cb, void *arg)
{
	struct chunk_walk w = { cb, arg };

	return db_walk(t, DB_CHUNKS, NULL, 0, 0, chunk_walk_fn, &w);
}

/* --- file data map ------------------------------------------------------- */

/* Position cur on the extent of ino containing off, or else the first one
 * after it, and decode it into e.  -ENOENT if there is none. */
static int extent_seek(struct idx_txn *t, MDB_cursor *cur, uint64_t ino, uint64_t off,
                       struct idx_extent *e)
{
	struct idx_extent nxt, prv;
	uint8_t kb[16], nk[16];
	bool have_next = false;
	MDB_val k, v;
	int rc, rc2;

	key_u64_u64(kb, ino, off);
	k = mval(kb, sizeof(kb));
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return LMDB_ERR(t, rc);
	if (rc == 0 && k.mv_size == 16 && get_be64(k.mv_data) == ino) {
		rc2 = extent_decode(&k, &v, &nxt);
		if (rc2 < 0)
			return rc2;
		if (nxt.off == off) {
			*e = nxt;
			return 0;
		}
		have_next = true;
	}
	/* The one before may reach over off. */
	rc = mdb_cursor_get(cur, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return LMDB_ERR(t, rc);
	if (rc == 0 && k.mv_size == 16 && get_be64(k.mv_data) == ino) {
		rc2 = extent_decode(&k, &v, &prv);
		if (rc2 < 0)
			return rc2;
		if (prv.off + prv.len > off) {
			*e = prv;
			return 0;
		}
	}
	if (!have_next)
		return -ENOENT;
	key_u64_u64(nk, ino, nxt.off);
	k = mval(nk, sizeof(nk));
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
	if (rc != 0)
		return rc == MDB_NOTFOUND ? -EIO : LMDB_ERR(t, rc);
	*e = nxt;
	return 0;
}

int idx_extent_find(struct idx_txn *t, uint64_t ino, uint64_t off, struct idx_extent *out)
{
	MDB_cursor *cur;
	int rc;

	rc = db_cursor(t, DB_EXTENTS, &cur);
	if (rc < 0)
		return rc;
	rc = extent_seek(t, cur, ino, off, out);
	mdb_cursor_close(cur);
	return rc;
}

int idx_extent_iter(struct idx_txn *t, uint64_t ino, uint64_t start, uint64_t end,
                    idx_extent_cb cb, void *arg)
{
	struct idx_extent e;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (start >= end)
		return 0;
	rc = db_cursor(t, DB_EXTENTS, &cur);
	if (rc < 0)
		return rc;
	rc = extent_seek(t, cur, ino, start, &e);
	while (rc == 0 && e.off < end) {
		rc = cb(arg, &e);
		if (rc != 0)
			goto out;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		if (rc != 0) {
			rc = LMDB_ERR(t, rc);
			break;
		}
		if (k.mv_size != 16) {
			rc = -EIO;
			goto out;
		}
		if (get_be64(k.mv_data) != ino)
			break;
		rc = extent_decode(&k, &v, &e);
	}
	if (rc == -ENOENT)
		rc = 0;
out:
	mdb_cursor_close(cur);
	return rc;
}

uint8_t idx_dtype_dominant(const uint64_t bytes[IDX_DTYPE_COUNT])
{
	uint8_t d = 0;
	for (uint8_t i = 1; i < IDX_DTYPE_COUNT; i++)
		if (bytes[i] > bytes[d])
			d = i;
	return d;
}

struct file_walk {
	struct idx_txn *t;
	uint64_t bytes[IDX_DTYPE_COUNT];
	uint64_t stored; /* what the extents charge the file now */
	unsigned extents;
};

static int file_walk_cb(void *arg, const struct idx_extent *e)
{
	struct file_walk *w = arg;
	struct idx_chunk c;
	int rc = idx_chunk_get(w->t, e->fp, &c);
	if (rc < 0)
		return rc;
	w->bytes[c.dtype] += e->len; /* dtype < IDX_DTYPE_COUNT: chunk_decode checks */
	w->stored += extent_charge(&c, e->len);
	w->extents++;
	return 0;
}

int idx_file_dtype(struct idx_txn *t, uint64_t ino, uint8_t *dtype)
{
	struct file_walk w = { .t = t };
	int rc = idx_extent_iter(t, ino, 0, UINT64_MAX, file_walk_cb, &w);
	if (rc >= 0)
		*dtype = idx_dtype_dominant(w.bytes);
	return rc;
}

int idx_file_charge(struct idx_txn *t, uint64_t ino, uint64_t *stored)
{
	struct file_walk w = { .t = t };
	int rc = idx_extent_iter(t, ino, 0, UINT64_MAX, file_walk_cb, &w);
	if (rc >= 0)
		*stored = w.stored;
	return rc < 0 ? rc : (int)(w.extents > INT_MAX ? INT_MAX : w.extents);
}

int idx_file_map(struct idx_txn *t, struct idx_inode *in, uint64_t off, uint32_t len,
                 const uint8_t fp[FP_LEN], uint32_t chunk_off)
{
	struct idx_extent e;
	struct idx_chunk c;
	struct idx_stats *st;
	uint8_t k[16], b[EXTENT_LEN];
	MDB_cursor *cur;
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	if (len == 0)
		return -EINVAL;
	if (off > UINT64_MAX - len)
		return -EFBIG;
	rc = txn_stats(t, &st);
	if (rc < 0)
		return rc;
	rc = idx_chunk_get(t, fp, &c);
	if (rc < 0)
		return rc;
	if (chunk_off > c.raw_len || len > c.raw_len - chunk_off)
		return -EINVAL;
	if (c.refcount == UINT32_MAX)
		return -EMLINK;
	rc = db_cursor(t, DB_EXTENTS, &cur);
	if (rc < 0)
		return rc;
	rc = extent_seek(t, cur, in->ino, off, &e);
	mdb_cursor_close(cur);
	if (rc == 0 && e.off < off + len)
		return -EEXIST; /* overlaps: the caller must punch first */
	if (rc < 0 && rc != -ENOENT)
		return rc;

	e.off = off;
	e.len = len;
	e.chunk_off = chunk_off;
	memcpy(e.fp, fp, FP_LEN);
	key_u64_u64(k, in->ino, off);
	extent_encode(&e, b);
	rc = db_put(t, DB_EXTENTS, k, sizeof(k), b, sizeof(b), MDB_NOOVERWRITE);
	if (rc < 0)
		return rc;
	c.refcount++;
	rc = chunk_write(t, &c, 0);
	if (rc < 0)
		return rc;
	st->mapped_bytes += len;
	t->stats_dirty = true;
	in->stored_bytes += extent_charge(&c, len);
	return 0;
}

/* Remove [start, end) from extent e (which overlaps it). */
static int extent_cut(struct idx_txn *t, struct idx_inode *in, const struct idx_extent *e,
                      uint64_t start, uint64_t end, struct idx_stats *st)
{
	uint64_t e_end = e->off + e->len;
	uint32_t left = e->off < start ? (uint32_t)(start - e->off) : 0;
	uint32_t right = e_end > end ? (uint32_t)(e_end - end) : 0;
	struct idx_extent piece;
	struct idx_chunk c;
	uint8_t k[16], b[EXTENT_LEN];
	int rc;

	rc = idx_chunk_get(t, e->fp, &c);
	if (rc < 0)
		return rc == -ENOENT ? -EIO : rc;
	key_u64_u64(k, in->ino, e->off);
	if (left) {
		piece = *e;
		piece.len = left;
		extent_encode(&piece, b);
		rc = db_put(t, DB_EXTENTS, k, sizeof(k), b, sizeof(b), 0);
	} else {
		rc = db_del(t, DB_EXTENTS, k, sizeof(k));
	}
	if (rc < 0)
		return rc;
	if (right) {
		piece = *e;
		piece.off = end;
		piece.chunk_off = e->chunk_off + (uint32_t)(end - e->off);
		piece.len = right;
		key_u64_u64(k, in->ino, end);
		extent_encode(&piece, b);
		rc = db_put(t, DB_EXTENTS, k, sizeof(k), b, sizeof(b), MDB_NOOVERWRITE);
		if (rc < 0)
			return rc == -EEXIST ? -EIO : rc;
	}
	st->mapped_bytes -= e->len - left - right;
	t->stats_dirty = true;
	in->stored_bytes = sat_sub(in->stored_bytes, extent_charge(&c, e->len)) +
	                   extent_charge(&c, left) + extent_charge(&c, right);
	if (left && right)
		return chunk_ref(t, e->fp, 1); /* split: one extent became two */
	if (!left && !right)
		return chunk_unref_one(t, e->fp);
	return 0;
}

int idx_file_punch(struct idx_txn *t, struct idx_inode *in, uint64_t start, uint64_t end)
{
	struct idx_stats *st;
	struct idx_extent e;
	MDB_cursor *cur;
	uint64_t pos = start;
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	if (start >= end)
		return 0;
	rc = txn_stats(t, &st);
	if (rc < 0)
		return rc;
	rc = db_cursor(t, DB_EXTENTS, &cur);
	if (rc < 0)
		return rc;
	/* Re-seek after every change: each step edits the tree under the
	 * cursor (and chunk records elsewhere). */
	while (pos < end) {
		rc = extent_seek(t, cur, in->ino, pos, &e);
		if (rc == -ENOENT) {
			rc = 0;
			break;
		}
		if (rc < 0 || e.off >= end)
			break;
		rc = extent_cut(t, in, &e, start, end, st);
		if (rc < 0)
			break;
		pos = e.off + e.len;
	}
	mdb_cursor_close(cur);
	return rc;
}

struct extent_count {
	unsigned n, stop;
};

static int extent_count_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct extent_count *c = ctx;
	(void)k;
	(void)v;
	return ++c->n >= c->stop ? 1 : 0;
}

int idx_extent_count(struct idx_txn *t, uint64_t ino, unsigned stop)
{
	struct extent_count c = { 0, stop };
	uint8_t k[8];
	int rc;

	if (stop == 0)
		return 0;
	put_be64(k, ino);
	rc = db_walk(t, DB_EXTENTS, k, 8, 8, extent_count_fn, &c);
	return rc < 0 ? rc : (int)c.n;
}

int idx_extent_tail(struct idx_txn *t, uint64_t ino, uint64_t start, uint64_t end, unsigned max,
                    uint64_t *from)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint8_t kb[16];
	unsigned n = 0;
	int rc;

	*from = start;
	if (max == 0 || start >= end)
		return 0;
	rc = db_cursor(t, DB_EXTENTS, &cur);
	if (rc < 0)
		return rc;
	/* from the last extent that starts before end, backwards */
	key_u64_u64(kb, ino, end);
	k = mval(kb, sizeof(kb));
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	rc = mdb_cursor_get(cur, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
		if (k.mv_size != 16 || get_be64(k.mv_data) != ino)
			break;
		uint64_t off = get_be64((const uint8_t *)k.mv_data + 8);
		n++;
		if (off <= start)
			break; /* the first one in range (or before it): all counted */
		if (n == max) {
			*from = off; /* more may lie below */
			break;
		}
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return LMDB_ERR(t, rc);
	return (int)n;
}

int idx_file_punch_last(struct idx_txn *t, struct idx_inode *in, unsigned max)
{
	uint64_t from;
	int n = txn_writable(t);

	if (n >= 0)
		n = idx_extent_tail(t, in->ino, 0, UINT64_MAX, max, &from);
	if (n <= 0)
		return n;
	int rc = idx_file_punch(t, in, from, UINT64_MAX);
	return rc < 0 ? rc : n;
}

/* --- xattrs, symlinks, orphans ------------------------------------------- */

static size_t xattr_key(uint8_t k[8 + IDX_NAME_MAX], uint64_t ino, const char *name, size_t n)
{
	put_be64(k, ino);
	memcpy(k + 8, name, n);
	return 8 + n;
}

int idx_xattr_get(struct idx_txn *t, uint64_t ino, const char *name, void *buf, size_t cap)
{
	uint8_t k[8 + IDX_NAME_MAX];
	size_t n;
	MDB_val v;
	int rc;

	rc = xattr_name_check(name, &n);
	if (rc < 0)
		return rc;
	rc = db_get(t, DB_XATTRS, k, xattr_key(k, ino, name, n), &v);
	if (rc < 0)
		return rc == -ENOENT ? -ENODATA : rc;
	if (v.mv_size > IDX_XATTR_VALUE_MAX)
		return -EIO;
	if (cap)
		memcpy(buf, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
	return (int)v.mv_size;
}

int idx_xattr_set(struct idx_txn *t, uint64_t ino, const char *name, const void *val,
                  size_t len, int flags)
{
	uint8_t k[8 + IDX_NAME_MAX];
	size_t n, klen;
	MDB_val v;
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	rc = xattr_name_check(name, &n);
	if (rc < 0)
		return rc;
	if (len > IDX_XATTR_VALUE_MAX)
		return -E2BIG;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	klen = xattr_key(k, ino, name, n);
	if (flags & XATTR_REPLACE) {
		rc = db_get(t, DB_XATTRS, k, klen, &v);
		if (rc < 0)
			return rc == -ENOENT ? -ENODATA : rc;
	}
	return db_put(t, DB_XATTRS, k, klen, val, len,
	              (flags & XATTR_CREATE) ? MDB_NOOVERWRITE : 0);
}

int idx_xattr_del(struct idx_txn *t, uint64_t ino, const char *name)
{
	uint8_t k[8 + IDX_NAME_MAX];
	size_t n;
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	rc = xattr_name_check(name, &n);
	if (rc < 0)
		return rc;
	rc = db_del(t, DB_XATTRS, k, xattr_key(k, ino, name, n));
	return rc == -ENOENT ? -ENODATA : rc;
}

struct xattr_walk {
	char *buf;
	size_t cap, total;
};

static int xattr_walk_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct xattr_walk *w = ctx;
	size_t n = k->mv_size - 8;

	if (n == 0 || n > IDX_NAME_MAX)
		return -EIO;
	if (w->cap) {
		if (w->total + n + 1 > w->cap)
			return -ERANGE;
		memcpy(w->buf + w->total, (uint8_t *)k->mv_data + 8, n);
		w->buf[w->total + n] = '\0';
	}
	w->total += n + 1;
	return 0;
}

int idx_xattr_list(struct idx_txn *t, uint64_t ino, char *buf, size_t cap)
{
	struct xattr_walk w = { buf, cap, 0 };
	uint8_t pk[8];
	int rc;

	put_be64(pk, ino);
	rc = db_walk(t, DB_XATTRS, pk, sizeof(pk), sizeof(pk), xattr_walk_fn, &w);
	if (rc < 0)
		return rc;
	return w.total > INT_MAX ? -E2BIG : (int)w.total;
}

int idx_symlink_get(struct idx_txn *t, uint64_t ino, char *buf, size_t cap)
{
	uint8_t k[8];
	MDB_val v;
	int rc;

	put_be64(k, ino);
	rc = db_get(t, DB_SYMLINKS, k, sizeof(k), &v);
	if (rc < 0)
		return rc;
	if (v.mv_size == 0 || v.mv_size > IDX_SYMLINK_MAX)
		return -EIO;
	memcpy(buf, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
	return (int)v.mv_size;
}

int idx_symlink_put(struct idx_txn *t, uint64_t ino, const char *target, size_t len)
{
	uint8_t k[8];
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	if (len == 0)
		return -EINVAL;
	if (len > IDX_SYMLINK_MAX)
		return -ENAMETOOLONG;
	put_be64(k, ino);
	return db_put(t, DB_SYMLINKS, k, sizeof(k), target, len, 0);
}

int idx_orphan_add(struct idx_txn *t, uint64_t ino)
{
	uint8_t k[8];
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	put_be64(k, ino);
	return db_put(t, DB_ORPHANS, k, sizeof(k), "", 0, 0);
}

int idx_orphan_del(struct idx_txn *t, uint64_t ino)
{
	uint8_t k[8];
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	put_be64(k, ino);
	return db_del(t, DB_ORPHANS, k, sizeof(k));
}

struct orphan_walk {
	idx_ino_cb cb;
	void *arg;
};

static int orphan_walk_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct orphan_walk *w = ctx;

	if (k->mv_size != 8)
		return -EIO;
	return w->cb(w->arg, get_be64(k->mv_data));
}

int idx_orphan_iter(struct idx_txn *t, idx_ino_cb cb, void *arg)
{
	struct orphan_walk w = { cb, arg };

	return db_walk(t, DB_ORPHANS, NULL, 0, 0, orphan_walk_fn, &w);
}

/* --- tensors ------------------------------------------------------------ */

static void tensor_key(uint8_t k[24], uint64_t a, uint64_t b, uint64_t c)
{
	put_be64(k, a);
	put_be64(k + 8, b);
	put_be64(k + 16, c);
}

struct tensor_drop {
	struct idx_txn *t;
	int rc;
};

static int tensor_drop_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct tensor_drop *d = ctx;
	uint8_t fk[24];
	(void)v;
	if (k->mv_size != 24)
		return -EIO;
	const uint8_t *p = k->mv_data;
	tensor_key(fk, get_be64(p + 8), get_be64(p + 16), get_be64(p));
	d->rc = db_del(d->t, DB_TENSORS, fk, sizeof(fk));
	if (d->rc == -ENOENT)
		d->rc = 0;
	return d->rc;
}

int idx_tensors_set(struct idx_txn *t, uint64_t ino, const struct idx_tensor *v, size_t n)
{
	struct tensor_drop d = { t, 0 };
	uint8_t k[24];
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	if (n > IDX_TENSORS_MAX)
		return -EINVAL;
	put_be64(k, ino);
	rc = db_walk(t, DB_TENSORINO, k, 8, 8, tensor_drop_fn, &d);
	if (rc < 0)
		return rc;
	rc = db_del_prefix(t, DB_TENSORINO, ino);
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		tensor_key(k, v[i].key, v[i].len, ino);
		rc = db_put(t, DB_TENSORS, k, sizeof(k), "", 0, 0);
		tensor_key(k, ino, v[i].key, v[i].len);
		if (rc >= 0)
			rc = db_put(t, DB_TENSORINO, k, sizeof(k), "", 0, 0);
	}
	return rc;
}

struct tensor_get {
	struct idx_tensor *v;
	size_t n, max;
};

static int tensor_get_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct tensor_get *g = ctx;
	(void)v;
	if (k->mv_size != 24)
		return -EIO;
	if (g->n == g->max)
		return 1;
	g->v[g->n].key = get_be64((const uint8_t *)k->mv_data + 8);
	g->v[g->n].len = get_be64((const uint8_t *)k->mv_data + 16);
	g->n++;
	return 0;
}

int idx_tensors_get(struct idx_txn *t, uint64_t ino, struct idx_tensor *v, size_t max)
{
	struct tensor_get g = { v, 0, max };
	uint8_t k[8];
	int rc;

	if (t->x->absent[DB_TENSORS])
		return 0;
	put_be64(k, ino);
	rc = db_walk(t, DB_TENSORINO, k, 8, 8, tensor_get_fn, &g);
	return rc < 0 ? rc : (int)g.n;
}

int idx_tensor_find(struct idx_txn *t, uint64_t key, uint64_t len, uint64_t *inos, size_t max)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint8_t from[24];
	size_t n = 0;
	int rc;

	if (t->x->absent[DB_TENSORS] || max == 0)
		return 0;
	rc = db_cursor(t, DB_TENSORS, &cur);
	if (rc < 0)
		return rc;
	/* newest first: from the last entry of this key and length down */
	tensor_key(from, key, len, UINT64_MAX);
	k = mval(from, sizeof(from));
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && !(k.mv_size == 24 && memcmp(k.mv_data, from, 24) == 0))
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	for (; rc == 0 && n < max; rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
		if (k.mv_size != 24 || memcmp(k.mv_data, from, 16) != 0)
			break;
		inos[n++] = get_be64((const uint8_t *)k.mv_data + 16);
	}
	rc = rc == 0 || rc == MDB_NOTFOUND ? 0 : LMDB_ERR(t, rc);
	mdb_cursor_close(cur);
	return rc < 0 ? rc : (int)n;
}

struct tensor_check {
	struct idx_txn *t;
	idx_tensor_cb cb;
	void *arg;
	bool by_ino; /* walking tensorino (else tensors) */
};

static int tensor_check_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct tensor_check *c = ctx;
	const uint8_t *p = k->mv_data;
	uint64_t key, len, ino;
	uint8_t twin[24];
	MDB_val tv;
	int rc;
	(void)v;
	if (k->mv_size != 24)
		return -EIO;
	if (c->by_ino) {
		ino = get_be64(p), key = get_be64(p + 8), len = get_be64(p + 16);
		tensor_key(twin, key, len, ino);
	} else {
		key = get_be64(p), len = get_be64(p + 8), ino = get_be64(p + 16);
		tensor_key(twin, ino, key, len);
	}
	rc = db_get(c->t, c->by_ino ? DB_TENSORS : DB_TENSORINO, twin, sizeof(twin), &tv);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (!c->by_ino && rc == 0)
		return 0; /* paired: reported from tensorino */
	return c->cb(c->arg, key, len, ino, rc == 0);
}

int idx_tensor_check(struct idx_txn *t, idx_tensor_cb cb, void *arg)
{
	struct tensor_check c = { t, cb, arg, true };
	int rc;

	if (t->x->absent[DB_TENSORS])
		return 0;
	rc = db_walk(t, DB_TENSORINO, NULL, 0, 0, tensor_check_fn, &c);
	if (rc != 0)
		return rc;
	c.by_ino = false;
	return db_walk(t, DB_TENSORS, NULL, 0, 0, tensor_check_fn, &c);
}

int idx_tensor_drop(struct idx_txn *t, uint64_t key, uint64_t len, uint64_t ino)
{
	uint8_t k[24];
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	tensor_key(k, key, len, ino);
	rc = db_del(t, DB_TENSORS, k, sizeof(k));
	if (rc < 0 && rc != -ENOENT)
		return rc;
	tensor_key(k, ino, key, len);
	rc = db_del(t, DB_TENSORINO, k, sizeof(k));
	return rc == -ENOENT ? 0 : rc;
}

/* --- hints ----------------------------------------------------------- */

int idx_hint_get(struct idx_txn *t, const uint8_t fp[FP_LEN], uint8_t ref[FP_LEN])
{
	MDB_val v;
	int rc;

	if (t->x->absent[DB_HINTS])
		return -ENOENT;
	rc = db_get(t, DB_HINTS, fp, FP_LEN, &v);
	if (rc < 0)
		return rc;
	if (v.mv_size != FP_LEN)
		return -EIO;
	memcpy(ref, v.mv_data, FP_LEN);
	return 0;
}

int idx_hint_set(struct idx_txn *t, const uint8_t fp[FP_LEN], const uint8_t ref[FP_LEN])
{
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	if (memcmp(fp, ref, FP_LEN) == 0)
		return -EINVAL;
	return db_put(t, DB_HINTS, fp, FP_LEN, ref, FP_LEN, 0);
}

int idx_hint_drop(struct idx_txn *t, const uint8_t fp[FP_LEN])
{
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	rc = db_del(t, DB_HINTS, fp, FP_LEN);
	return rc == -ENOENT ? 0 : rc;
}

struct hint_walk {
	struct idx_txn *t;
	idx_hint_cb cb;
	void *arg;
};

/* 1 if chunk fp has a record, 0 if not, or -errno. */
static int chunk_present(struct idx_txn *t, const void *fp)
{
	MDB_val v;
	int rc = db_get(t, DB_CHUNKS, fp, FP_LEN, &v);

	return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

static int hint_check_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct hint_walk *w = ctx;
	int rc;

	if (k->mv_size != FP_LEN || v->mv_size != FP_LEN)
		return -EIO;
	rc = chunk_present(w->t, k->mv_data);
	return rc < 0 ? rc : w->cb(w->arg, k->mv_data, v->mv_data, rc == 1);
}

int idx_hint_check(struct idx_txn *t, idx_hint_cb cb, void *arg)
{
	struct hint_walk w = { t, cb, arg };

	if (t->x->absent[DB_HINTS])
		return 0;
	return db_walk(t, DB_HINTS, NULL, 0, 0, hint_check_fn, &w);
}

/* --- reverse references and loose chunks (format 4) ------------------- */

static void refby_key(uint8_t k[2 * FP_LEN], const uint8_t ref[FP_LEN], const uint8_t fp[FP_LEN])
{
	memcpy(k, ref, FP_LEN);
	memcpy(k + FP_LEN, fp, FP_LEN);
}

static int refby_put(struct idx_txn *t, const uint8_t ref[FP_LEN], const uint8_t fp[FP_LEN])
{
	uint8_t k[2 * FP_LEN];

	refby_key(k, ref, fp);
	return db_put(t, DB_REFBY, k, sizeof(k), "", 0, 0);
}

static int refby_del(struct idx_txn *t, const uint8_t ref[FP_LEN], const uint8_t fp[FP_LEN])
{
	uint8_t k[2 * FP_LEN];
	int rc;

	refby_key(k, ref, fp);
	rc = db_del(t, DB_REFBY, k, sizeof(k));
	/* a damaged table (fsck reports it, --repair rebuilds it) must not
	 * stop deletions: a missing edge is fine here */
	return rc == -ENOENT ? 0 : rc;
}

struct refby_list {
	uint8_t (*out)[FP_LEN];
	size_t max, n, stop;
};

static int refby_list_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct refby_list *l = ctx;
	(void)v;

	if (k->mv_size != 2 * FP_LEN)
		return 0; /* damaged (fsck: stray): a hint table must not stop unrefs */
	if (l->n < l->max)
		memcpy(l->out[l->n], (const uint8_t *)k->mv_data + FP_LEN, FP_LEN);
	return ++l->n >= l->stop ? 1 : 0;
}

/* The chunks coded against ref: the first max into out, counted up to stop. */
static int refby_count(struct idx_txn *t, const uint8_t ref[FP_LEN], uint8_t (*out)[FP_LEN],
                       size_t max, size_t stop)
{
	struct refby_list l = { out, max, 0, stop };
	int rc;

	if (t->x->absent[DB_REFBY])
		return 0;
	rc = db_walk(t, DB_REFBY, ref, FP_LEN, FP_LEN, refby_list_fn, &l);
	return rc < 0 ? rc : (int)l.n;
}

int idx_refby_list(struct idx_txn *t, const uint8_t ref[FP_LEN], uint8_t (*out)[FP_LEN],
                   size_t max)
{
	return refby_count(t, ref, out, max, max < IDX_LOOSE_DEPS_MAX ? max + 1 : IDX_LOOSE_DEPS_MAX + 1);
}

/* Write fp's loose mark, counted for idx_loose_marks. */
static int loose_put(struct idx_txn *t, const uint8_t fp[FP_LEN])
{
	atomic_fetch_add(&t->x->loose_marks, 1);
	return db_put(t, DB_LOOSE, fp, FP_LEN, "", 0, 0);
}

/* c (its refcount just lowered, still > 0): loose when only chunks coded
 * against it hold it now.  One with more than IDX_LOOSE_DEPS_MAX
 * references is not looked at (rebase would not splice it out). */
static int loose_mark(struct idx_txn *t, const struct idx_chunk *c)
{
	int n;

	if (c->refcount > IDX_LOOSE_DEPS_MAX)
		return 0;
	n = refby_count(t, c->fp, NULL, 0, c->refcount + 1u);
	if (n < 0 || (uint32_t)n != c->refcount)
		return n < 0 ? n : 0;
	return loose_put(t, c->fp);
}

uint64_t idx_loose_marks(struct idx *x)
{
	return atomic_load(&x->loose_marks);
}

int idx_loose_add(struct idx_txn *t, const uint8_t fp[FP_LEN])
{
	int rc = txn_writable(t);

	return rc < 0 ? rc : loose_put(t, fp);
}

int idx_loose_drop(struct idx_txn *t, const uint8_t fp[FP_LEN])
{
	int rc = txn_writable(t);

	if (rc < 0)
		return rc;
	rc = db_del(t, DB_LOOSE, fp, FP_LEN);
	return rc == -ENOENT ? 0 : rc;
}

struct loose_list {
	uint8_t (*out)[FP_LEN];
	size_t max, n;
};

static int loose_list_fn(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct loose_list *l = ctx;
	(void)v;

	if (k->mv_size != FP_LEN)
		return -EIO;
	memcpy(l->out[l->n++], k->mv_data, FP_LEN);
	return l->n >= l->max ? 1 : 0;
}

int idx_loose_list(struct idx_txn *t, uint8_t (*out)[FP_LEN], size_t max)
{
	struct loose_list l = { out, max, 0 };
	int rc;

	if (t->x->absent[DB_LOOSE] || max == 0)
		return 0;
	rc = db_walk(t, DB_LOOSE, NULL, 0, 0, loose_list_fn, &l);
	return rc < 0 ? rc : (int)l.n;
}

static int refby_rebuild_edge(void *arg, const struct idx_chunk *c)
{
	struct idx_txn *t = arg;

	return (c->flags & IDX_CHUNK_HAS_REF) ? refby_put(t, c->ref_fp, c->fp) : 0;
}

static int refby_rebuild_loose(void *arg, const struct idx_chunk *c)
{
	struct idx_txn *t = arg;

	return c->refcount ? loose_mark(t, c) : 0;
}

int idx_refby_rebuild(struct idx_txn *t)
{
	int rc = txn_writable(t);

	if (rc == 0)
		rc = LMDB_ERR(t, mdb_drop(t->txn, dbi(t, DB_REFBY), 0));
	if (rc == 0)
		rc = LMDB_ERR(t, mdb_drop(t->txn, dbi(t, DB_LOOSE), 0));
	if (rc == 0)
		rc = idx_chunk_iter(t, refby_rebuild_edge, t);
	if (rc == 0)
		rc = idx_chunk_iter(t, refby_rebuild_loose, t);
	return rc;
}

struct refby_verify {
	struct idx_txn *t;
	struct idx_refby_check *r;
};

static int refby_verify_edge(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct refby_verify *w = ctx;
	const uint8_t *kb = k->mv_data;
	struct idx_chunk c;
	int rc;

	if (k->mv_size != 2 * FP_LEN || v->mv_size != 0) {
		w->r->stray++;
		return 0;
	}
	rc = idx_chunk_get(w->t, kb + FP_LEN, &c);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (rc == 0 && (c.flags & IDX_CHUNK_HAS_REF) && memcmp(c.ref_fp, kb, FP_LEN) == 0)
		w->r->edges++;
	else
		w->r->stray++;
	return 0;
}

static int refby_verify_loose(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct refby_verify *w = ctx;
	int rc = k->mv_size == FP_LEN ? chunk_present(w->t, k->mv_data) : 0;
	(void)v;

	if (rc < 0)
		return rc;
	w->r->loose_stray += rc == 0;
	return 0;
}

static int refby_count_refs(void *arg, const struct idx_chunk *c)
{
	struct idx_refby_check *r = arg;

	r->refs += (c->flags & IDX_CHUNK_HAS_REF) != 0;
	return 0;
}

int idx_refby_verify(struct idx_txn *t, struct idx_refby_check *r)
{
	struct refby_verify w = { t, r };
	int rc;

	memset(r, 0, sizeof(*r));
	if (t->x->absent[DB_REFBY])
		return 0; /* a format 3 store opened read-only: built at its upgrade */
	rc = idx_chunk_iter(t, refby_count_refs, r);
	if (rc == 0)
		rc = db_walk(t, DB_REFBY, NULL, 0, 0, refby_verify_edge, &w);
	if (rc == 0 && !t->x->absent[DB_LOOSE])
		rc = db_walk(t, DB_LOOSE, NULL, 0, 0, refby_verify_loose, &w);
	return rc;
}

/* --- test-only (index/idx_test_i.h) --------------------------------------- */

/* The database named db, or -EINVAL. */
static int db_by_name(const char *db)
{
	for (unsigned i = 0; i < DB_COUNT; i++)
		if (strcmp(db, idx_db_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

int idx_raw_put(struct idx_txn *t, const char *db, const void *k, size_t kl, const void *v,
                size_t vl)
{
	int rc = txn_writable(t), d = rc < 0 ? rc : db_by_name(db);

	return d < 0 ? d : db_put(t, (enum idx_db)d, k, kl, v, vl, 0);
}

int idx_raw_del(struct idx_txn *t, const char *db, const void *k, size_t kl)
{
	int rc = txn_writable(t), d = rc < 0 ? rc : db_by_name(db);

	return d < 0 ? d : db_del(t, (enum idx_db)d, k, kl);
}

int idx_raw_get(struct idx_txn *t, const char *db, const void *k, size_t kl, void *buf,
                size_t cap)
{
	MDB_val v;
	int rc, d = db_by_name(db);

	if (d < 0)
		return d;
	rc = db_get(t, (enum idx_db)d, k, kl, &v);
	if (rc < 0)
		return rc;
	memcpy(buf, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
	return v.mv_size > INT_MAX ? -EOVERFLOW : (int)v.mv_size;
}
