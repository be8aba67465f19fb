/*
 * rebase.c - reverse deltas for checkpoint series (engine, private).
 *
 * The write path codes a new version X of a chunk against the aligned
 * chunk Y of the previous version (forward: X -> Y), which is cheap for
 * the writer: Y is usually full and still in the cache.  Left like that,
 * version n of a series decodes through n-1 others.  When the store is
 * idle, rebase turns each such pair around:
 *
 *   before:  X -> Y   (Y full)          after:  X full,  Y -> X (REVERSED)
 *
 * X is re-encoded on its own, Y re-encoded against X.  The newest version
 * of a series is then always full (read at 1x), the one just written is
 * at most one link from a full chunk (2x), and older versions decode
 * through the newer ones.  Y is turned only while the longest chain that
 * would end in it stays within max_ref_chain (idx keeps that bound as the
 * chunk's height) and only if the reverse delta is smaller than Y as it
 * is; otherwise Y stays full and starts a new segment (a key frame).  A Y
 * that only X uses (its file was deleted) is left alone: making X full
 * frees it at commit.
 *
 * Crash safety is the write path's: frames are appended and synced before
 * the one index transaction that relocates X and Y; a crash before it
 * leaves orphan bytes for gc, never a changed chunk.  The transaction
 * re-reads both records and skips a pair that changed meanwhile (another
 * relocation, a delete).  Readers of an older snapshot read the old
 * frames, which stay in their packs until gc, and decoded data is cached
 * by fingerprint, so it stays valid whatever the coding.
 *
 * The same machinery recompresses: a chunk that lazy coding (enum
 * eng_lazy) stored at fast while the encoders were behind is re-encoded
 * alone at the mount's level.  A forward delta whose reference still waits for that
 * is deferred until it is done, so both never race in one group.
 *
 * Candidates come from the committer (rb_note: a forward-coded or a lazily
 * coded chunk was committed) into a bounded FIFO; when it overflows, and
 * once per mount, the chunk table is scanned instead.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "fs/engine_i.h"

#define RB_GROUP 16u       /* pairs per index transaction */
#define RB_HDR 64u         /* bytes of a frame that hold its header */
#define RB_RETRY_IDLES 10 /* a failed group (full disk, I/O error): idle work
                              waits this many rebase_idle periods */

struct rb_pair {
	struct eng *e;
	struct idx_chunk x, y;          /* records as read from the snapshot */
	struct cache_entry *xd, *yd;    /* decoded */
	struct codec_frame_info xi, yi; /* geometry of the current frames */
	bool turn_y;                    /* re-encode Y against X */
	bool alone;                     /* X recompressed, no Y */
	uint8_t *xf, *yf;               /* new frames */
	ssize_t xf_len, yf_len;
	struct codec_frame_info xn, yn;
	struct pack_loc xl, yl;
};

static int64_t mono_ms(void)
{
	return eng_mono_ns() / 1000000;
}

void rb_note(struct eng *e, const uint8_t fp[FP_LEN])
{
	if (!e->o.rebase)
		return;
	pthread_mutex_lock(&e->rb_lock);
	if (e->rb_quit) {
		pthread_mutex_unlock(&e->rb_lock);
		return;
	}
	uint8_t *slot = fifo_push(&e->rbq);
	if (slot)
		memcpy(slot, fp, FP_LEN);
	else
		e->rb_rescan = true; /* full: find it again by scanning */
	pthread_cond_signal(&e->rb_cond);
	pthread_mutex_unlock(&e->rb_lock);
}

static size_t rb_pop(struct eng *e, uint8_t (*out)[FP_LEN], size_t max)
{
	size_t n = 0;
	pthread_mutex_lock(&e->rb_lock);
	const uint8_t *fp;
	while (n < max && (fp = fifo_pop(&e->rbq)))
		memcpy(out[n++], fp, FP_LEN);
	pthread_mutex_unlock(&e->rb_lock);
	return n;
}

/* Work for rebase: a forward delta to turn around, or a full chunk to
 * recompress. */
static bool rb_forward(const struct idx_chunk *c)
{
	return (c->flags & (IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED)) == IDX_CHUNK_HAS_REF &&
	       c->level == CODEC_LEVEL_MIX;
}

static bool rb_recompress(const struct eng *e, const struct idx_chunk *c)
{
	return !(c->flags & IDX_CHUNK_HAS_REF) && rb_pending(e, c->level);
}

static int scan_cb(void *arg, const struct idx_chunk *c)
{
	struct eng *e = arg;
	if (rb_forward(c) || rb_recompress(e, c)) {
		rb_note(e, c->fp);
		pthread_mutex_lock(&e->rb_lock);
		bool full = e->rb_rescan;
		pthread_mutex_unlock(&e->rb_lock);
		if (full)
			return 1; /* the queue is full: the next scan finds the rest */
	}
	return 0;
}

/* Queue every forward-coded or recompressible chunk of the index. */
static int rb_scan(struct eng *e)
{
	struct idx_txn *t;
	pthread_mutex_lock(&e->rb_lock);
	e->rb_rescan = false;
	pthread_mutex_unlock(&e->rb_lock);
	int rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		return rc;
	rc = idx_chunk_iter(t, scan_cb, e);
	idx_txn_abort(t);
	return rc < 0 ? rc : 0;
}

/* The frame header of chunk c: its dtype, element phase and row length. */
static int frame_geometry(struct eng *e, const struct idx_chunk *c, struct codec_frame_info *fi)
{
	uint8_t hdr[RB_HDR];
	struct pack_loc loc = { .pack_id = c->pack_id, .off = c->pack_off,
	                        .len = c->frame_len < RB_HDR ? c->frame_len : RB_HDR };
	int rc = pack_read(e->ps, &loc, hdr);
	if (rc < 0)
		return rc;
	return codec_frame_parse(hdr, loc.len, fi) < 0 ? -EIO : 0;
}

static void params_of(const struct eng *e, int level, const struct codec_frame_info *fi,
                      struct codec_params *p)
{
	memset(p, 0, sizeof(*p));
	p->level = level;
	p->bytes_cm = e->o.bytes_cm;
	p->dtype = fi->dtype;
	p->elem_phase = fi->elem_phase;
	p->row_elems = fi->row_elems;
}

static void rb_encode(void *arg, void *local)
{
	struct rb_pair *p = arg;
	struct codec_ctx *ctx = local;
	struct codec_params cp;
	size_t cap = codec_frame_bound(p->x.raw_len);

	p->xf_len = -ECANCELED;
	if (!eng_bg_thread(p->e))
		return; /* closing: the pair stays as it is */
	/* a pair stays at its level (mix), a recompression goes to the
	 * mount's (with its hint's reverse delta) */
	int level = p->alone ? p->e->o.level : p->x.level;

	p->xf = malloc(cap);
	p->xf_len = -ENOMEM;
	if (p->xf) {
		params_of(p->e, level, &p->xi, &cp);
		p->xf_len = codec_frame_encode(ctx, &cp, p->xd->data, p->xd->len, p->xf, cap);
		if (p->xf_len > 0 && codec_frame_parse(p->xf, (size_t)p->xf_len, &p->xn) < 0)
			p->xf_len = -EIO;
	}
	if (!p->turn_y || p->xf_len < 0)
		return;
	cap = codec_frame_bound(p->y.raw_len);
	p->yf = malloc(cap);
	p->yf_len = -ENOMEM;
	if (p->yf) {
		params_of(p->e, level, &p->yi, &cp);
		cp.ref = p->xd->data;
		cp.ref_len = p->xd->len;
		p->yf_len = codec_frame_encode(ctx, &cp, p->yd->data, p->yd->len, p->yf, cap);
		if (p->yf_len > 0 && codec_frame_parse(p->yf, (size_t)p->yf_len, &p->yn) < 0)
			p->yf_len = -EIO;
	}
	/* worth it only if the reverse delta is smaller than Y is now */
	if (p->yf_len < 0 || !(p->yn.flags & CODEC_FLAG_REF) ||
	    (uint64_t)p->yf_len >= p->y.frame_len)
		p->turn_y = false;
}

enum { RB_SKIP, RB_DEFER, RB_GO };

/* Snapshot checks and decoding of one candidate. */
static int rb_prepare(struct eng *e, struct idx_txn *t, const uint8_t fp[FP_LEN], struct rb_pair *p)
{
	uint8_t yfp[FP_LEN];

	memset(p, 0, sizeof(*p));
	p->e = e;
	if (idx_chunk_get(t, fp, &p->x) < 0)
		return RB_SKIP;
	p->alone = rb_recompress(e, &p->x);
	if (p->alone) {
		/* re-encoded alone at the mount's level.  Lazily coded in
		 * place of a series delta (a hint names the reference it was
		 * cut for): that reference gets the reverse delta, as if X -> Y
		 * had been coded and were turned now */
		if (e->o.level != CODEC_LEVEL_MIX || idx_hint_get(t, p->x.fp, yfp) < 0)
			goto load_x;
	} else if (rb_forward(&p->x)) {
		memcpy(yfp, p->x.ref_fp, FP_LEN);
	} else {
		return RB_SKIP;
	}
	if (idx_chunk_get(t, yfp, &p->y) < 0) {
		if (!p->alone)
			return RB_SKIP;
		goto load_x; /* the hinted reference is gone */
	}
	/* Y should be full: X is then at depth 1, and turning keeps the
	 * newest full.  Y -> W forward: Y is a candidate too, turn it first;
	 * so is a Y waiting to be recompressed (it may be in this group, or
	 * queued before a hinted X: it is older). */
	if (rb_forward(&p->y) || rb_recompress(e, &p->y))
		return RB_DEFER;
	/* Y a reverse delta: an older version whose newer ones were deleted
	 * (training resumed from it, say).  X would read through Y's whole
	 * chain: make X full and leave Y as it is.  So too when nothing but a
	 * forward X uses Y (its reference is counted; a hint holds none). */
	p->turn_y = !(p->y.flags & IDX_CHUNK_HAS_REF) && p->y.refcount > (p->alone ? 0u : 1u) &&
	            e->o.max_ref_chain > 0 && p->y.height + 1u <= e->o.max_ref_chain;
load_x:
	if (frame_geometry(e, &p->x, &p->xi) < 0 ||
	    (p->turn_y && frame_geometry(e, &p->y, &p->yi) < 0))
		return RB_SKIP;
	/* unreadable: the read path logged it */
	if (eng_chunk_load(e, t, p->x.fp, 0, 0, 0, &p->xd) < 0) {
		p->xd = NULL;
		return RB_SKIP;
	}
	if (p->turn_y && eng_chunk_load(e, t, p->y.fp, 0, 0, 0, &p->yd) < 0) {
		p->yd = NULL;
		p->turn_y = false;
	}
	return RB_GO;
}

/* Point c at its new frame; ref: a reverse delta against it (replacing a
 * full frame: the size series coding saves is then exact), or full. */
static void set_frame(struct idx_chunk *c, const struct pack_loc *l,
                      const struct codec_frame_info *fi, const uint8_t *ref)
{
	c->alone_len = ref ? c->frame_len : 0;
	c->pack_id = l->pack_id;
	c->pack_off = l->off;
	c->frame_len = l->len;
	c->level = fi->level;
	c->dtype = fi->dtype;
	c->sum = fi->checksum;
	c->has_sum = true;
	c->flags = ref ? IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED : 0;
	if (ref)
		memcpy(c->ref_fp, ref, FP_LEN);
}

static int rb_apply(struct idx_txn *t, const struct rb_pair *p)
{
	struct idx_chunk x, y;
	bool turn_y = p->turn_y;
	int rc = idx_chunk_get(t, p->x.fp, &x);
	if (rc == -ENOENT || (rc == 0 && !eng_same_frame(&x, &p->x)))
		return 0; /* deleted or moved meanwhile: leave it */
	if (rc == 0 && turn_y) {
		rc = idx_chunk_get(t, p->y.fp, &y);
		/* Y deleted or moved meanwhile: X's new frame is full, so it
		 * still replaces X's (a forward delta through Y, or a lazily
		 * coded frame); Y stays as it is */
		if (rc == -ENOENT || (rc == 0 && !eng_same_frame(&y, &p->y))) {
			turn_y = false;
			rc = 0;
		}
	}
	if (rc < 0)
		return rc;
	set_frame(&x, &p->xl, &p->xn, NULL);
	rc = idx_chunk_relocate(t, &x);
	if (rc == 0 && p->alone)
		rc = idx_hint_drop(t, x.fp); /* used (or its reference was gone) */
	if (rc < 0 || !turn_y)
		return rc;
	set_frame(&y, &p->yl, &p->yn, x.fp);
	return idx_chunk_relocate(t, &y);
}

/* STORE/index/charges exists while files' charges may be stale: made
 * (durably) before the first commit of a mount that re-encodes chunks,
 * removed when a sweep (rb_charges) completes with none since, so that
 * a mount sweeps at its first idle spell only when one is due. */
#define CH_FLAG "charges"

static int ch_mark(struct eng *e)
{
	int rc = 0;

	/* a sweep under way (or cut short) has passed files this group may
	 * re-encode: the next one starts from the first inode */
	atomic_store(&e->ch_from, 0);
	atomic_store(&e->ch_stale, true);
	if (!atomic_load(&e->ch_marked)) {
		rc = idx_flag_set(e->idx, CH_FLAG);
		if (rc == 0)
			atomic_store(&e->ch_marked, true);
	}
	return rc;
}

/* A sweep completed: no group re-encoded anything since it began (groups
 * mark under rb_run), so the mark goes. */
static void ch_unmark(struct eng *e)
{
	pthread_mutex_lock(&e->rb_run);
	if (!atomic_load(&e->ch_stale) && atomic_load(&e->ch_marked) &&
	    idx_flag_clear(e->idx, CH_FLAG) == 0)
		atomic_store(&e->ch_marked, false);
	pthread_mutex_unlock(&e->rb_run);
}

/* After a group's appends (rc: how they went): the packs synced, then the
 * write transaction that points the records at the new frames (files'
 * charges then go stale: marked first). */
static int rb_commit_begin(struct eng *e, uint64_t epoch, int rc, struct idx_txn **t)
{
	/* also after a failed append: the sync clears the pack's sticky
	 * error, which would fail the next write batch */
	int src = wb_pack_sync(e);

	if (rc >= 0)
		rc = src;
	if (rc >= 0)
		rc = ch_mark(e);
	/* a pack error cleared before our sync dropped our frames; after a
	 * successful sync none can.  Checked before eng_wtxn_begin: ps's lock
	 * comes before wlock (pack_append takes wlock to allocate a pack id) */
	if (rc >= 0 && epoch != pack_store_gen(e->ps))
		rc = -EAGAIN;
	return rc < 0 ? rc : eng_wtxn_begin(e, t);
}

/* Turn up to RB_GROUP candidates around; those whose reference must be
 * turned first go to defer[*ndefer].  Returns pairs turned or -errno. */
static int rb_group(struct eng *e, uint8_t (*fps)[FP_LEN], size_t n, uint8_t (*defer)[FP_LEN],
                    size_t *ndefer)
{
	struct rb_pair *p = calloc(n, sizeof(*p));
	struct pool_group *g = pool_group_create();
	struct idx_txn *t = NULL;
	size_t np = 0;
	uint64_t epoch = 0;
	int rc = 0, turned = 0;

	if (!p || !g) {
		rc = -ENOMEM;
		goto out;
	}
	rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		int what = rb_prepare(e, t, fps[i], &p[np]);
		if (what == RB_DEFER)
			memcpy(defer[(*ndefer)++], fps[i], FP_LEN);
		if (what != RB_GO)
			continue;
		rc = pool_submit(e->bg_pool, g, rb_encode, &p[np]);
		np++;
		if (rc < 0)
			break;
	}
	idx_txn_abort(t);
	t = NULL;
	pool_group_wait(g);
	if (rc < 0 || np == 0)
		goto out;
	if (e->rb_hook)
		e->rb_hook(e);
	/* frames durable first, as the write path does */
	pthread_rwlock_rdlock(&e->append_lock);
	epoch = pack_store_gen(e->ps);
	for (size_t i = 0; rc >= 0 && i < np; i++) {
		if (p[i].xf_len < 0)
			continue;
		rc = pack_append(e->ps, p[i].xf, (uint32_t)p[i].xf_len, &p[i].xl);
		if (rc >= 0 && p[i].turn_y)
			rc = pack_append(e->ps, p[i].yf, (uint32_t)p[i].yf_len, &p[i].yl);
	}
	pthread_rwlock_unlock(&e->append_lock);
	rc = rb_commit_begin(e, epoch, rc, &t);
	if (rc < 0)
		goto out;
	for (size_t i = 0; rc >= 0 && i < np; i++) {
		if (p[i].xf_len < 0)
			continue;
		rc = rb_apply(t, &p[i]);
		turned += rc >= 0;
	}
	/* the frames replaced are dead in their packs' records now: the
	 * online gc seals the pack being appended to once enough of it is
	 * (gc_seal_dead), and frees them */
	rc = eng_wtxn_end(e, t, rc);
out:
	for (size_t i = 0; i < np; i++) {
		cache_release(e->cache, p[i].xd);
		cache_release(e->cache, p[i].yd);
		free(p[i].xf);
		free(p[i].yf);
	}
	pool_group_free(g);
	free(p);
	return rc < 0 ? rc : turned;
}

/* --- splicing loose chunks out of chains ---------------------------- */

/* A checkpoint kept out of a rotation (a "best" one) is a reverse delta
 * through the newer versions; deleting those leaves their chunks held
 * only by its chain (idx marks such a chunk L loose).  Splicing L out:
 * every chunk D coded against L is re-encoded against L's own reference
 * Z when L is a reverse delta against Z and D a reverse delta (Z is newer
 * than L, which is newer than D: D stays a reverse delta, its chain one
 * link shorter), else alone; L then has no reference left and is freed at
 * commit.  Done only when the new frames cost less than the old ones plus
 * L's frame (a chunk many others code against may be worth keeping); the
 * mark is dropped either way. */

#define RB_SPLICE_DEPS 4u /* dependents of a loose chunk spliced out at most */

struct rb_splice {
	struct eng *e;
	struct idx_chunk l, z;          /* the loose chunk, its reference (to_z) */
	bool to_z;
	struct cache_entry *zd;         /* z decoded */
	unsigned n;                     /* dependents */
	struct idx_chunk d[RB_SPLICE_DEPS];
	struct cache_entry *dd[RB_SPLICE_DEPS];
	struct codec_frame_info di[RB_SPLICE_DEPS], dn[RB_SPLICE_DEPS];
	uint8_t *df[RB_SPLICE_DEPS];
	ssize_t df_len[RB_SPLICE_DEPS];
	struct pack_loc dl[RB_SPLICE_DEPS];
	bool on_z[RB_SPLICE_DEPS];      /* the new frame codes against z */
	uint32_t alone[RB_SPLICE_DEPS]; /* the frame's size coded alone */
	bool worth;
	int err; /* the encodes failed (-ECANCELED: skipped, closing): L keeps its mark */
};

/* D goes to Z (a reverse delta), or is made full. */
static bool sp_to_z(const struct rb_splice *s, unsigned i)
{
	return s->to_z && (s->d[i].flags & IDX_CHUNK_REVERSED);
}

/* Dependent i of s encoded alone, and when it may go to z against z as
 * well: the smaller frame is kept (what it costs alone is then known). */
static int sp_encode_one(struct rb_splice *s, struct codec_ctx *ctx, unsigned i)
{
	struct codec_params cp;
	struct codec_frame_info zi;
	size_t cap = codec_frame_bound(s->d[i].raw_len);
	uint8_t *zf;
	ssize_t zlen;

	s->df[i] = malloc(cap);
	if (!s->df[i])
		return -ENOMEM;
	params_of(s->e, s->d[i].level, &s->di[i], &cp);
	s->df_len[i] = codec_frame_encode(ctx, &cp, s->dd[i]->data, s->dd[i]->len, s->df[i], cap);
	if (s->df_len[i] < 0)
		return (int)s->df_len[i];
	if (codec_frame_parse(s->df[i], (size_t)s->df_len[i], &s->dn[i]) < 0)
		return -EIO;
	s->alone[i] = (uint32_t)s->df_len[i];
	if (!sp_to_z(s, i))
		return 0;
	zf = malloc(cap);
	if (!zf)
		return -ENOMEM;
	cp.ref = s->zd->data;
	cp.ref_len = s->zd->len;
	zlen = codec_frame_encode(ctx, &cp, s->dd[i]->data, s->dd[i]->len, zf, cap);
	/* a delta the codec gave up on, or no smaller: the full frame */
	if (zlen > 0 && zlen < s->df_len[i] && codec_frame_parse(zf, (size_t)zlen, &zi) == 0 &&
	    (zi.flags & CODEC_FLAG_REF)) {
		free(s->df[i]);
		s->df[i] = zf;
		s->df_len[i] = zlen;
		s->dn[i] = zi;
		s->on_z[i] = true;
		return 0;
	}
	free(zf);
	return 0;
}

static void sp_encode(void *arg, void *local)
{
	struct rb_splice *s = arg;
	uint64_t old = s->l.frame_len, now = 0;

	s->worth = false;
	for (unsigned i = 0; i < s->n; i++) {
		if (!eng_bg_thread(s->e)) {
			s->err = -ECANCELED; /* closing: the next mount does it */
			return;
		}
		int rc = sp_encode_one(s, local, i);
		if (rc < 0) {
			s->err = rc;
			return;
		}
		old += s->d[i].frame_len;
		now += (uint64_t)s->df_len[i];
	}
	s->worth = now < old;
}

/* Snapshot checks and decoding: true when s is to be encoded. */
static bool sp_prepare(struct eng *e, struct idx_txn *t, const uint8_t fp[FP_LEN],
                       struct rb_splice *s)
{
	uint8_t deps[RB_SPLICE_DEPS][FP_LEN];
	int n;

	memset(s, 0, sizeof(*s));
	s->e = e;
	if (idx_chunk_get(t, fp, &s->l) < 0 || s->l.refcount == 0)
		return false;
	n = idx_refby_list(t, fp, deps, RB_SPLICE_DEPS);
	/* still loose: every reference is a chunk coded against it */
	if (n <= 0 || (unsigned)n > RB_SPLICE_DEPS || (uint32_t)n != s->l.refcount)
		return false;
	s->to_z = (s->l.flags & (IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED)) ==
	          (IDX_CHUNK_HAS_REF | IDX_CHUNK_REVERSED);
	if (s->to_z && (idx_chunk_get(t, s->l.ref_fp, &s->z) < 0 ||
	                eng_chunk_load(e, t, s->z.fp, 0, 0, 0, &s->zd) < 0)) {
		s->zd = NULL;
		return false;
	}
	for (unsigned i = 0; i < (unsigned)n; i++, s->n++) {
		if (idx_chunk_get(t, deps[i], &s->d[i]) < 0 || !(s->d[i].flags & IDX_CHUNK_HAS_REF) ||
		    memcmp(s->d[i].ref_fp, fp, FP_LEN) != 0 ||
		    frame_geometry(e, &s->d[i], &s->di[i]) < 0 ||
		    eng_chunk_load(e, t, deps[i], 0, 0, 0, &s->dd[i]) < 0) {
			s->dd[i] = NULL;
			return false;
		}
	}
	return true;
}

/* 1: l is to be looked at again (it or one of its dependents changed
 * meanwhile, another splice of this group, say), 0: done, or -errno. */
static int sp_apply(struct idx_txn *t, struct rb_splice *s)
{
	struct idx_chunk l, d;
	bool again = false;
	int rc = idx_chunk_get(t, s->l.fp, &l);

	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && !eng_same_frame(&l, &s->l))
		return 1; /* re-encoded meanwhile */
	for (unsigned i = 0; rc >= 0 && i < s->n; i++) {
		rc = idx_chunk_get(t, s->d[i].fp, &d);
		/* gone, or unreferenced (another splice of this group freed
		 * what held it): it goes at commit, releasing l */
		if (rc == -ENOENT || (rc == 0 && d.refcount == 0)) {
			rc = 0;
			continue;
		}
		if (rc == 0 && !eng_same_frame(&d, &s->d[i])) {
			again = true; /* changed: it stays as it is for now */
			continue;
		}
		if (rc < 0)
			break;
		set_frame(&d, &s->dl[i], &s->dn[i], s->on_z[i] ? s->z.fp : NULL);
		d.alone_len = s->on_z[i] ? s->alone[i] : 0; /* measured: exact */
		rc = idx_chunk_relocate(t, &d);
	}
	return rc < 0 ? rc : again;
}

static void sp_free(struct eng *e, struct rb_splice *s)
{
	cache_release(e->cache, s->zd);
	for (unsigned i = 0; i < s->n; i++) {
		cache_release(e->cache, s->dd[i]);
		free(s->df[i]);
	}
}

/* Splice out up to n loose chunks fps[]; their marks are dropped in the
 * same transaction.  Returns how many were spliced, or -errno (the marks
 * then stay, for a later spell). */
static int sp_group(struct eng *e, uint8_t (*fps)[FP_LEN], size_t n)
{
	struct rb_splice *s = calloc(n, sizeof(*s));
	struct pool_group *g = pool_group_create();
	struct idx_txn *t = NULL;
	bool *go = calloc(n, sizeof(*go));
	uint64_t epoch = 0;
	int rc = 0, done = 0;

	if (!s || !g || !go) {
		rc = -ENOMEM;
		goto out;
	}
	rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		goto out;
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		go[i] = sp_prepare(e, t, fps[i], &s[i]);
		if (go[i])
			rc = pool_submit(e->bg_pool, g, sp_encode, &s[i]);
	}
	idx_txn_abort(t);
	t = NULL;
	pool_group_wait(g);
	if (rc < 0)
		goto out;
	pthread_rwlock_rdlock(&e->append_lock);
	epoch = pack_store_gen(e->ps);
	for (size_t i = 0; rc >= 0 && i < n; i++)
		for (unsigned k = 0; go[i] && s[i].worth && rc >= 0 && k < s[i].n; k++)
			rc = pack_append(e->ps, s[i].df[k], (uint32_t)s[i].df_len[k], &s[i].dl[k]);
	pthread_rwlock_unlock(&e->append_lock);
	rc = rb_commit_begin(e, epoch, rc, &t);
	if (rc < 0)
		goto out;
	/* the marks go first (spliced, not worth it, or gone): a splice
	 * below may leave another of them loose again (its dependent was
	 * the loose chunk another splice frees: marked anew when the commit
	 * frees that one), or find it changed by another (marked again) */
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		/* encodes skipped (closing) keep their mark for the next
		 * mount; another failure (ENOMEM) fails the group */
		if (go[i] && s[i].err)
			rc = s[i].err == -ECANCELED ? 0 : s[i].err;
		else
			rc = idx_loose_drop(t, fps[i]);
	}
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		if (go[i] && s[i].worth) {
			rc = sp_apply(t, &s[i]);
			done += rc == 0;
			if (rc == 1)
				rc = idx_loose_add(t, fps[i]);
		}
	}
	rc = eng_wtxn_end(e, t, rc);
out:
	for (size_t i = 0; s && i < n; i++)
		sp_free(e, &s[i]);
	pool_group_free(g);
	free(go);
	free(s);
	return rc < 0 ? rc : done;
}

/* Every loose mark, RB_GROUP at a time.  idle_only: stop when someone
 * writes.  Returns 1 when none is left, 0 when interrupted, or -errno. */
static int sp_drain(struct eng *e, bool idle_only)
{
	uint8_t fps[RB_GROUP][FP_LEN];
	int rc = 0;

	for (;;) {
		struct idx_txn *t;

		pthread_mutex_lock(&e->rb_lock);
		bool quit = e->rb_quit;
		pthread_mutex_unlock(&e->rb_lock);
		/* closing: the encodes would be skipped (the marks stay) */
		if (quit || atomic_load(&e->bg_urgent) || (idle_only && !rb_idle(e)))
			return 0;
		rc = idx_txn_begin(e->idx, true, &t);
		if (rc < 0)
			return rc;
		rc = idx_loose_list(t, fps, RB_GROUP);
		idx_txn_abort(t);
		if (rc <= 0)
			return rc < 0 ? rc : 1;
		pthread_mutex_lock(&e->rb_run); /* the online gc waits for the group */
		rc = sp_group(e, fps, (size_t)rc);
		pthread_mutex_unlock(&e->rb_run);
		if (rc < 0)
			return rc;
	}
}

/* A group failed with rc: idle work waits RB_RETRY_IDLES rebase_idle
 * periods (a full disk or an I/O error may pass), or not at all after
 * another writer's pack error (-EAGAIN passes at once). */
static void rb_retry_later(struct eng *e, int rc)
{
	pthread_mutex_lock(&e->rb_lock);
	e->rb_retry_ms = mono_ms() + (rc == -EAGAIN ? 0 : RB_RETRY_IDLES * (int64_t)e->o.rebase_idle_ms);
	pthread_mutex_unlock(&e->rb_lock);
}

/* Work through the queue (and a pending rescan).  idle_only: stop as soon
 * as someone writes.  Candidates whose reference is itself waiting to be
 * turned come back after the queue, as long as a pass makes progress. */
static int rb_drain(struct eng *e, bool idle_only, uint64_t *turned)
{
	uint8_t fps[RB_GROUP][FP_LEN];
	uint8_t (*defer)[FP_LEN] = NULL;
	size_t ndefer = 0, cap = 0;
	uint64_t pass_turned = 0, all_turned = 0;
	int rc = 0;

	bool interrupted = false, scanned = false;

	for (;;) {
		if (idle_only && !rb_idle(e)) {
			interrupted = true;
			break;
		}
		pthread_mutex_lock(&e->rb_lock);
		bool rescan = e->rb_rescan && fifo_empty(&e->rbq), quit = e->rb_quit;
		pthread_mutex_unlock(&e->rb_lock);
		if (quit) { /* unmount: what is left is found at the next mount */
			interrupted = true;
			break;
		}
		if (rescan && !scanned) { /* once per drain: what it cannot turn stays forward */
			scanned = true;
			rc = rb_scan(e);
			if (rc < 0)
				break;
		}
		size_t n = rb_pop(e, fps, RB_GROUP);
		if (n == 0) {
			if (ndefer == 0 || pass_turned == 0)
				break;
			for (size_t i = 0; i < ndefer; i++) /* next pass */
				rb_note(e, defer[i]);
			ndefer = 0;
			pass_turned = 0;
			continue;
		}
		if (ndefer + n > cap) {
			size_t nc = cap ? 2 * cap : 4 * RB_GROUP;
			void *np = realloc(defer, nc * sizeof(*defer));
			if (!np) {
				rc = -ENOMEM;
				break;
			}
			defer = np;
			cap = nc;
		}
		pthread_mutex_lock(&e->rb_run); /* the online gc waits for the group */
		rc = rb_group(e, fps, n, defer, &ndefer);
		pthread_mutex_unlock(&e->rb_run);
		if (rc < 0) {
			/* keep the group's candidates (and the deferred ones,
			 * below) for a later spell: a full disk or an I/O
			 * error may pass; another writer's pack error
			 * (-EAGAIN) passes at once */
			for (size_t i = 0; i < n; i++)
				rb_note(e, fps[i]);
			interrupted = true;
			rb_retry_later(e, rc);
			break;
		}
		pass_turned += (uint64_t)rc;
		all_turned += (uint64_t)rc;
		rc = 0;
	}
	if (interrupted) /* keep them for the next idle spell */
		for (size_t i = 0; i < ndefer; i++)
			rb_note(e, defer[i]);
	if (scanned && all_turned == 0 && !interrupted) {
		/* a scan found only chunks that cannot be turned: do not scan
		 * again and again for them (new commits queue their own) */
		pthread_mutex_lock(&e->rb_lock);
		e->rb_rescan = false;
		pthread_mutex_unlock(&e->rb_lock);
	}
	if (turned)
		*turned += all_turned;
	free(defer);
	/* then the chunks deletions left loose (new marks since the last
	 * complete pass; every mark at the first after a mount) */
	uint64_t marks = idx_loose_marks(e->idx);
	if (rc >= 0 && !interrupted && marks != e->rb_loose_seen) {
		rc = sp_drain(e, idle_only);
		if (rc == 1)
			e->rb_loose_seen = marks;
		if (rc < 0)
			rb_retry_later(e, rc);
		rc = rc < 0 ? rc : 0;
	}
	return rc;
}

#define CH_INODES 256u      /* inodes looked at per read transaction */
#define CH_EXTENTS 16384u   /* and extents walked, at most about */

struct ch_file {
	struct idx_inode in; /* as the snapshot had it */
	uint64_t stored;     /* what its extents charge */
	unsigned extents;
};

struct ch_batch {
	struct idx_txn *t;
	struct ch_file f[CH_INODES]; /* those whose charge changed */
	size_t n;
	unsigned seen, extents;
	uint64_t next; /* the inode to resume from; UINT64_MAX: done */
};

static int ch_inode_cb(void *arg, const struct idx_inode *in)
{
	struct ch_batch *b = arg;
	uint64_t stored;
	int n;

	if (b->seen == CH_INODES || b->extents >= CH_EXTENTS) {
		b->next = in->ino;
		return 1;
	}
	b->seen++;
	if (!S_ISREG(in->mode))
		return 0;
	n = idx_file_charge(b->t, in->ino, &stored);
	if (n < 0) /* a damaged file (fsck tells): left as it is */
		return 0;
	b->extents += (unsigned)n;
	if (stored != in->stored_bytes)
		b->f[b->n++] = (struct ch_file){ *in, stored, (unsigned)n };
	return 0;
}

static int rb_charges(struct eng *e, bool idle_only);

/* The sweep below when charges are stale; a failure waits as a group's. */
static int rb_charges_if_stale(struct eng *e, bool idle_only)
{
	if (!atomic_exchange(&e->ch_stale, false))
		return 0;
	int rc = rb_charges(e, idle_only);
	if (rc <= 0) /* not done: again at the next spell */
		atomic_store(&e->ch_stale, true);
	else
		ch_unmark(e);
	if (rc < 0)
		rb_retry_later(e, rc);
	return rc < 0 ? rc : 0;
}

/* Bring every file's stored_bytes (st_blocks, du, user.mixfs.stored_bytes)
 * back to what its chunks take now: rebase, splicing and recompression
 * re-encode chunks that many files share, and no reverse map finds those
 * files, so an idle sweep over the inodes recomputes the charges (a read
 * transaction per CH_INODES inodes or CH_EXTENTS extents; the files whose
 * charge changed are written in one unsynced write transaction: a crash
 * loses only charges).  Returns 1 when done, 0 when
 * interrupted (idle_only: someone wrote; unmount) or -errno. */
static int rb_charges(struct eng *e, bool idle_only)
{
	struct ch_batch b;

	for (;;) {
		struct idx_txn *t;
		int rc;

		pthread_mutex_lock(&e->rb_lock);
		bool quit = e->rb_quit;
		pthread_mutex_unlock(&e->rb_lock);
		if (quit || (idle_only && !rb_idle(e)))
			return 0;
		uint64_t from = atomic_load(&e->ch_from);
		memset(&b, 0, sizeof(b));
		b.next = UINT64_MAX;
		rc = idx_txn_begin(e->idx, true, &b.t);
		if (rc < 0)
			return rc;
		rc = idx_inode_iter_from(b.t, from, ch_inode_cb, &b);
		idx_txn_abort(b.t);
		if (rc < 0)
			return rc;
		if (b.n) {
			rc = eng_wtxn_begin_ns(e, &t);
			if (rc < 0)
				return rc;
			for (size_t i = 0; rc >= 0 && i < b.n; i++) {
				const struct ch_file *cf = &b.f[i];
				struct idx_inode in;
				uint64_t stored = cf->stored;
				if (idx_inode_get(t, cf->in.ino, &in) < 0)
					continue;
				/* written to since the snapshot (every change of
				 * its extents sets its times): counted again here
				 * if small, else left to its writer's own charges
				 * (the walk would hold every commit back) */
				if ((in.size != cf->in.size || in.mtime_ns != cf->in.mtime_ns ||
				     in.ctime_ns != cf->in.ctime_ns ||
				     in.stored_bytes != cf->in.stored_bytes) &&
				    (cf->extents > CH_EXTENTS / 16 ||
				     idx_file_charge(t, in.ino, &stored) < 0))
					continue;
				if (stored == in.stored_bytes)
					continue;
				in.stored_bytes = stored;
				rc = idx_inode_put(t, &in);
			}
			rc = eng_wtxn_end(e, t, rc);
			if (rc < 0)
				return rc;
		}
		/* unless a group restarted the sweep meanwhile (ch_mark) */
		if (!atomic_compare_exchange_strong(&e->ch_from, &from,
		                                    b.next == UINT64_MAX ? 0 : b.next))
			continue;
		if (b.next == UINT64_MAX)
			return 1;
	}
}

bool rb_idle(struct eng *e)
{
	bool busy;
	/* buffered bytes of files written to now and then (a log kept
	 * open) do not count, nor do bytes a failed close left buffered
	 * (parked): the retry thread stores them when it can, maybe not for
	 * long; a writer that wrote ENG_QUIET_BYTES within rebase_idle
	 * moved last_write_ms */
	if (atomic_load(&e->dirty_total) - atomic_load(&e->parked_total) >= e->flush_unit)
		return false;
	pthread_mutex_lock(&e->plock);
	busy = e->qhead != NULL;
	pthread_mutex_unlock(&e->plock);
	return !busy && mono_ms() - atomic_load(&e->last_write_ms) >= (int64_t)e->o.rebase_idle_ms;
}

int eng_rebase(struct eng *e, uint64_t *turned)
{
	if (turned)
		*turned = 0;
	if (e->o.read_only)
		return -EROFS;
	wb_commit_queued(e); /* what files closed so far hold, too */
	int rc = rb_drain(e, false, turned);
	/* files overwritten in place (fs/defrag.c); their new chunks may be
	 * series deltas (a reference found for the rewrite): turned too */
	if (rc >= 0)
		rc = df_drain(e, false, NULL);
	if (rc >= 0)
		rc = rb_drain(e, false, turned);
	if (rc >= 0)
		rc = rb_charges_if_stale(e, false);
	return rc;
}

static void *rb_main(void *arg)
{
	struct eng *e = arg;
	int64_t trimmed_for = -1, trimmed_ms = 0; /* last_write_ms and time of the last malloc_trim */
	pthread_mutex_lock(&e->rb_lock);
	while (!e->rb_quit) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&e->rb_cond, &e->rb_lock, &ts);
		/* once an idle spell after writes: closes that leave their
		 * batches to the group commit have the FUSE threads allocate
		 * thousands of them that the committer frees in bulk, and
		 * glibc keeps that memory in its arenas (60,000 small files
		 * written and deleted: ~90-180 MiB resident, 11 MiB in use);
		 * again every 5 s for 30 s after the last write, for what
		 * deletions (rm -rf: no writes) free after the first trim */
		int64_t lw = atomic_load(&e->last_write_ms), now = mono_ms();
		if (!e->rb_quit && (lw != trimmed_for ||
		                    (now - trimmed_ms >= 5000 && trimmed_ms - lw < 30000))) {
			pthread_mutex_unlock(&e->rb_lock);
			if (rb_idle(e)) {
				malloc_trim(0);
				trimmed_for = lw;
				trimmed_ms = now;
			}
			pthread_mutex_lock(&e->rb_lock);
		}
		bool work = e->rb_rescan || !fifo_empty(&e->rbq) || df_work_locked(e) ||
		            idx_loose_marks(e->idx) != e->rb_loose_seen || atomic_load(&e->ch_stale);
		if (e->rb_quit || !work || mono_ms() < e->rb_retry_ms)
			continue;
		pthread_mutex_unlock(&e->rb_lock);
		uint64_t n = 0; /* rb_drain returns at once while not idle */
		int rc = rb_drain(e, true, &n);
		if (rc < 0 && rc != -EAGAIN)
			syslog(LOG_WARNING, "mixfs: rebase in %s: %s", e->store, strerror(-rc));
		else if (n)
			syslog(LOG_INFO, "mixfs: rebase in %s: %" PRIu64 " chunks made full or recompressed",
			       e->store, n);
		/* then files overwritten in place (their new chunks come back
		 * to rb_drain in the next round) */
		uint64_t files = 0;
		rc = rc < 0 ? 0 : df_drain(e, true, &files);
		if (rc < 0)
			syslog(LOG_WARNING, "mixfs: rewriting files overwritten in place in %s: %s",
			       e->store, strerror(-rc));
		else if (files)
			syslog(LOG_INFO, "mixfs: %" PRIu64 " file%s overwritten in place rewritten in %s",
			       files, files == 1 ? "" : "s", e->store);
		/* then the files' charges (du), once nothing is left to encode */
		int crc = rc < 0 ? 0 : rb_charges_if_stale(e, true);
		if (crc < 0)
			syslog(LOG_WARNING, "mixfs: updating files' stored bytes in %s: %s", e->store,
			       strerror(-crc));
		pthread_mutex_lock(&e->rb_lock);
		if (rc < 0) /* a full disk may pass: the file is queued again */
			e->rb_retry_ms = mono_ms() + RB_RETRY_IDLES * (int64_t)e->o.rebase_idle_ms;
	}
	pthread_mutex_unlock(&e->rb_lock);
	return NULL;
}

int rb_start(struct eng *e)
{
	e->rb_rescan = true; /* candidates of earlier mounts */
	e->rb_loose_seen = UINT64_MAX; /* loose marks of earlier mounts */
	e->df_rescan = true; /* files overwritten in place by earlier mounts */
	e->df_scan_from = 0;
	atomic_store(&e->last_write_ms, mono_ms());
	/* charges an earlier mount left stale */
	atomic_store(&e->ch_marked, idx_flag_get(e->idx, CH_FLAG));
	atomic_store(&e->ch_stale, atomic_load(&e->ch_marked));
	atomic_store(&e->ch_from, 0);
	if (!e->o.rebase || e->o.read_only || e->o.rebase_idle_ms == 0)
		return 0; /* eng_rebase() still works on demand */
	int rc = -pthread_create(&e->rb_thread, NULL, rb_main, e);
	e->rb_running = rc == 0;
	return rc;
}

void rb_stop(struct eng *e)
{
	/* rb_quit also stops rb_note: the final sync still commits */
	pthread_mutex_lock(&e->rb_lock);
	e->rb_quit = true;
	pthread_cond_broadcast(&e->rb_cond);
	pthread_mutex_unlock(&e->rb_lock);
	if (e->rb_running) {
		pthread_join(e->rb_thread, NULL);
		e->rb_running = false;
	}
	pthread_mutex_lock(&e->rb_lock);
	fifo_free(&e->rbq);
	pthread_mutex_unlock(&e->rb_lock);
	df_stop(e);
}
