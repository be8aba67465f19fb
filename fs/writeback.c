/*
 * writeback.c - dirty buffers, the write pipeline and group commit.
 *
 *   write() ──> dirty segments (per inode, merged, sorted)
 *      │  a file's dirty bytes pass flush_unit, or close/fsync/setattr
 *      ▼
 *   batch: chunks cut by the CDC chunker (a segment that ends at EOF keeps
 *      its last, not yet final chunk while the writer is still appending,
 *      so boundaries equal those of a one-shot write and dedup holds)
 *      │  worker pool: SHA-256, dedup lookup (index + pending table),
 *      │  encode new chunks (in parallel), append frames to the pack
 *      ▼
 *   committer thread: takes the READY batches at the head of the FIFO,
 *      pack_sync (fdatasync), then ONE index transaction for all of them
 *      (group commit), then drops their bytes from memory.
 *
 * The FIFO keeps per-inode order; a batch of an inode fails if an earlier
 * one of the same inode failed, and failed batches go back into the dirty
 * segments (under newer bytes), so nothing written is dropped: the error
 * is reported to the next fsync/close/write and the bytes are retried.
 * Bytes a close or fsync could not store are *parked*: the retry thread
 * stores them with backoff (1 s doubling to 60 s) once it can, without a
 * further write; a deleted file's go with its inode (wb_discard).
 * Memory is bounded: writers wait while queued bytes pass dirty_bytes,
 * and writes fail with the parked error while parked bytes fill it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "fs/engine_i.h"

enum bstate { B_PREP, B_READY, B_FAILED, B_DONE };

struct fchunk {
	uint64_t off;
	uint32_t len;
	const uint8_t *data;
	uint8_t fp[FP_LEN];
	bool is_new;   /* this batch stores the frame */
	bool dup;      /* an earlier chunk of this batch has the same fingerprint */
	bool has_ref;  /* ref_fp: the aligned chunk of the reference file */
	uint8_t ref_fp[FP_LEN];
	struct cache_entry *ref_ce; /* decoded reference while encoding */
	struct codec_params params;
	uint8_t *frame;
	ssize_t frame_len; /* or negative errno from the encoder */
	struct codec_frame_info info;
	struct pack_loc loc;
	uint32_t charge; /* stored bytes the commit charges the file (once known) */
};

struct batch {
	struct batch *qnext; /* FIFO of uncommitted batches */
	struct batch *inext; /* the inode's inflight list */
	struct eng *e;
	struct einode *ei;   /* user reference held */
	uint64_t seq;
	uint64_t off;        /* file offset of data[0] */
	size_t len;
	size_t mem;          /* counted in eng.inflight_bytes: len and overhead */
	uint8_t *data;       /* owned */
	struct fchunk *cs;
	size_t n;
	uint64_t size;       /* file size when queued */
	int64_t mtime_ns;
	atomic_bool keep_times; /* a setattr set the times after it was cut:
	                           its commit leaves them (wb_uncommitted) */
	bool final;          /* last bytes of a full flush: size is exact */
	bool defrag;         /* defrag's rewrite (einode.defrag): keeps the
	                        times, notes nothing for defrag */
	uint64_t epoch;      /* pack_store_gen before its appends */
	uint64_t charge;     /* READY: what the commit adds to the file's stored
	                        bytes (st_blocks until then), estimated */
	int state;           /* enum bstate, under plock */
	int rc;
	unsigned pins;       /* readers overlaying it, under plock */
	bool settled;        /* the committer is done with it (under plock) */
	bool closed;         /* a close returned without waiting for its commit
	                        (under plock): if it fails with nobody waiting,
	                        the retry thread takes it back (recheck) */
	bool unlinked;       /* left the inflight list: free at last unpin */
	int64_t ready_ns;
	/* a batch of a file's first bytes: its first large tensors replace
	 * the file's entries in the index's tensors table (tens_set) */
	struct idx_tensor *tens;
	size_t ntens;
	bool tens_set;
};

struct pend {
	struct pend *next;
	uint8_t fp[FP_LEN];
	uint64_t seq; /* batch that stores it */
};

static unsigned pend_bucket(const uint8_t fp[FP_LEN])
{
	return (unsigned)(fp[0] | fp[1] << 8) % PEND_BUCKETS;
}

/* Under plock.  The batch storing fp if one is queued, else 0. */
static uint64_t pend_find(struct eng *e, const uint8_t fp[FP_LEN])
{
	for (struct pend *p = e->pend[pend_bucket(fp)]; p; p = p->next)
		if (memcmp(p->fp, fp, FP_LEN) == 0)
			return p->seq;
	return 0;
}

static int pend_add(struct eng *e, const uint8_t fp[FP_LEN], uint64_t seq)
{
	struct pend *p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	memcpy(p->fp, fp, FP_LEN);
	p->seq = seq;
	p->next = e->pend[pend_bucket(fp)];
	e->pend[pend_bucket(fp)] = p;
	return 0;
}

static void pend_del(struct eng *e, const uint8_t fp[FP_LEN], uint64_t seq)
{
	for (struct pend **pp = &e->pend[pend_bucket(fp)]; *pp; pp = &(*pp)->next) {
		if ((*pp)->seq == seq && memcmp((*pp)->fp, fp, FP_LEN) == 0) {
			struct pend *p = *pp;
			*pp = p->next;
			free(p);
			return;
		}
	}
}

/* ------------------------------------------------------------------------ */
/* dirty segments (ei->lock exclusive)                                       */

static int segs_reserve(struct einode *ei, size_t n)
{
	if (n <= ei->segs_cap)
		return 0;
	size_t cap = ei->segs_cap ? ei->segs_cap * 2 : 8;
	while (cap < n)
		cap *= 2;
	struct dseg *s = realloc(ei->segs, cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	ei->segs = s;
	ei->segs_cap = cap;
	return 0;
}

/* Buffered runs of one file at most (sparse writes): past it the file is
 * queued whole.  Each takes a page at least, which the dirty bytes do not
 * count, and a write searches them. */
#define WB_SEGS_MAX 1024u

static int seg_grow(struct dseg *s, size_t need)
{
	if (need <= s->cap)
		return 0;
	/* from a page: a small write far from the others takes that much,
	 * not 64 KiB (sparse writes), and appends double it */
	size_t cap = s->cap ? s->cap : 4096;
	while (cap < need)
		cap *= 2;
	uint8_t *d = realloc(s->data, cap);
	if (!d)
		return -ENOMEM;
	s->data = d;
	s->cap = cap;
	return 0;
}

/* Put buf at [off, off+len) into the dirty segments, merging every segment
 * it overlaps or touches.  Returns the growth in dirty bytes or -ENOMEM. */
static ssize_t dirty_insert(struct einode *ei, uint64_t off, const uint8_t *buf, size_t len)
{
	uint64_t end = off + len;
	size_t lo = 0, hi;
	size_t before = ei->dirty;
	while (lo < ei->nsegs && ei->segs[lo].off + ei->segs[lo].len < off)
		lo++;
	hi = lo;
	while (hi < ei->nsegs && ei->segs[hi].off <= end)
		hi++;
	if (hi == lo + 1 && ei->segs[lo].off <= off) {
		/* the common case: append to, or overwrite inside, one segment */
		struct dseg *s = &ei->segs[lo];
		size_t need = (size_t)(end - s->off);
		if (need > s->len) {
			if (seg_grow(s, need) < 0)
				return -ENOMEM;
			ei->dirty += need - s->len;
			s->len = need;
		}
		memcpy(s->data + (off - s->off), buf, len);
		return (ssize_t)(ei->dirty - before);
	}
	uint64_t nstart = off, nend = end;
	if (hi > lo) {
		if (ei->segs[lo].off < nstart)
			nstart = ei->segs[lo].off;
		if (ei->segs[hi - 1].off + ei->segs[hi - 1].len > nend)
			nend = ei->segs[hi - 1].off + ei->segs[hi - 1].len;
	}
	struct dseg ns = { .off = nstart, .len = (size_t)(nend - nstart) };
	if (seg_grow(&ns, ns.len) < 0)
		return -ENOMEM;
	if (hi == lo && segs_reserve(ei, ei->nsegs + 1) < 0) {
		free(ns.data);
		return -ENOMEM;
	}
	for (size_t i = lo; i < hi; i++) {
		memcpy(ns.data + (ei->segs[i].off - nstart), ei->segs[i].data, ei->segs[i].len);
		ei->dirty -= ei->segs[i].len;
		free(ei->segs[i].data);
	}
	memcpy(ns.data + (off - nstart), buf, len);
	ei->dirty += ns.len;
	if (hi == lo) {
		memmove(&ei->segs[lo + 1], &ei->segs[lo], (ei->nsegs - lo) * sizeof(ns));
		ei->nsegs++;
	} else if (hi > lo + 1) {
		memmove(&ei->segs[lo + 1], &ei->segs[hi], (ei->nsegs - hi) * sizeof(ns));
		ei->nsegs -= hi - lo - 1;
	}
	ei->segs[lo] = ns;
	return (ssize_t)(ei->dirty - before);
}

/* Like dirty_insert, but bytes already buffered win (they are newer): used
 * to give a failed batch's bytes back. */
static int dirty_insert_under(struct eng *e, struct einode *ei, uint64_t off, const uint8_t *buf,
                              size_t len)
{
	uint64_t pos = off, end = off + len;
	while (pos < end) {
		uint64_t gap_end = end;
		bool covered = false;
		for (size_t i = 0; i < ei->nsegs; i++) {
			const struct dseg *s = &ei->segs[i];
			if (s->off <= pos && pos < s->off + s->len) {
				pos = s->off + s->len;
				covered = true;
				break;
			}
			if (s->off > pos) {
				if (s->off < gap_end)
					gap_end = s->off;
				break;
			}
		}
		if (covered)
			continue;
		ssize_t g = dirty_insert(ei, pos, buf + (pos - off), (size_t)(gap_end - pos));
		if (g < 0)
			return (int)g;
		atomic_fetch_add(&e->dirty_total, (uint64_t)g);
		pos = gap_end;
	}
	return 0;
}

/* Set ei's parked bytes (ei->lock exclusive, or ei unreachable); err is
 * the failure that left them.  The retry thread wakes for the first. */
static void park_set(struct eng *e, struct einode *ei, uint64_t bytes, int err)
{
	uint64_t old = atomic_exchange(&ei->parked, bytes);
	if (bytes == old)
		return;
	if (bytes > old) {
		atomic_store(&e->parked_err, err < 0 ? err : -EIO);
		if (atomic_fetch_add(&e->parked_total, bytes - old) == 0) {
			pthread_mutex_lock(&e->retry_lock);
			pthread_cond_signal(&e->retry_cond);
			pthread_mutex_unlock(&e->retry_lock);
		}
	} else {
		atomic_fetch_sub(&e->parked_total, old - bytes);
	}
}

void wb_discard(struct eng *e, struct einode *ei)
{
	park_set(e, ei, 0, 0);
	for (size_t i = 0; i < ei->nsegs; i++)
		free(ei->segs[i].data);
	ei->nsegs = 0;
	atomic_fetch_sub(&e->dirty_total, ei->dirty);
	ei->dirty = 0;
}

int wb_truncate(struct eng *e, struct einode *ei, uint64_t size, struct wb_cut *cut)
{
	size_t dropped = 0;

	cut->v = NULL;
	cut->n = 0;
	if (ei->nsegs == 0 || ei->segs[ei->nsegs - 1].off + ei->segs[ei->nsegs - 1].len <= size)
		return 0; /* nothing buffered there */
	cut->v = calloc(ei->nsegs, sizeof(*cut->v));
	if (!cut->v)
		return -ENOMEM;
	while (ei->nsegs > 0) {
		struct dseg *s = &ei->segs[ei->nsegs - 1];
		if (s->off >= size) {
			dropped += s->len;
			cut->v[cut->n++] = *s; /* its buffer moves */
			ei->nsegs--;
			continue;
		}
		if (s->off + s->len > size) {
			size_t keep = (size_t)(size - s->off);
			uint8_t *tail = malloc(s->len - keep);

			if (!tail) {
				/* the whole segments back where they were */
				for (size_t k = cut->n; k > 0; k--)
					ei->segs[ei->nsegs++] = cut->v[k - 1];
				free(cut->v);
				cut->v = NULL;
				cut->n = 0;
				return -ENOMEM;
			}
			memcpy(tail, s->data + keep, s->len - keep);
			cut->v[cut->n++] = (struct dseg){ .off = size, .len = s->len - keep,
			                                  .cap = s->len - keep, .data = tail };
			dropped += s->len - keep;
			s->len = keep;
		}
		break;
	}
	park_set(e, ei, 0, 0); /* wb_sync follows */
	ei->dirty -= dropped;
	atomic_fetch_sub(&e->dirty_total, dropped);
	return 0;
}

void wb_truncate_end(struct eng *e, struct einode *ei, struct wb_cut *cut, int rc,
                     uint64_t keep_below)
{
	for (size_t k = 0; k < cut->n; k++) {
		struct dseg *s = &cut->v[k];
		size_t len = s->off >= keep_below ? 0
		             : keep_below - s->off < s->len ? (size_t)(keep_below - s->off)
		                                            : s->len;

		/* the truncate failed: what the writer was told is written
		 * stays (nothing newer was buffered under the lock), below
		 * the size its committed steps left (above it, the truncate
		 * happened) */
		if (rc < 0 && len && dirty_insert_under(e, ei, s->off, s->data, len) < 0)
			syslog(LOG_ERR, "mixfs: inode %" PRIu64 ": out of memory keeping %zu bytes at %" PRIu64
			       " that a failed truncate had dropped", ei->ino, s->len, s->off);
		free(s->data);
	}
	free(cut->v);
	cut->v = NULL;
	cut->n = 0;
}

static void overlay_range(uint64_t soff, size_t slen, const uint8_t *sdata, uint64_t off,
                          size_t len, uint8_t *buf)
{
	uint64_t end = off + len;
	if (soff >= end || soff + slen <= off)
		return;
	uint64_t a = soff > off ? soff : off;
	uint64_t b = soff + slen < end ? soff + slen : end;
	memcpy(buf + (a - off), sdata + (a - soff), (size_t)(b - a));
}

/* ------------------------------------------------------------------------ */
/* readers                                                                   */

int wb_pin(struct eng *e, struct einode *ei, struct wb_pins *p)
{
	size_t n = 0;
	p->v = NULL;
	p->n = 0;
	pthread_mutex_lock(&e->plock);
	for (struct batch *b = ei->inflight; b; b = b->inext)
		n++;
	if (n) {
		p->v = malloc(n * sizeof(*p->v));
		if (!p->v) {
			pthread_mutex_unlock(&e->plock);
			return -ENOMEM;
		}
		for (struct batch *b = ei->inflight; b; b = b->inext) {
			b->pins++;
			p->v[p->n++] = b;
		}
	}
	pthread_mutex_unlock(&e->plock);
	return 0;
}

void wb_overlay(const struct wb_pins *p, const struct einode *ei, uint64_t off, size_t len,
                uint8_t *buf)
{
	for (size_t i = 0; i < p->n; i++) /* oldest first: newer bytes win */
		overlay_range(p->v[i]->off, p->v[i]->len, p->v[i]->data, off, len, buf);
	for (size_t i = 0; i < ei->nsegs; i++)
		overlay_range(ei->segs[i].off, ei->segs[i].len, ei->segs[i].data, off, len, buf);
}

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		free(b->cs[i].frame);
	free(b->cs);
	free(b->data);
	free(b->tens);
	free(b);
}

/* Drop a finished batch and its inode reference.  A file deleted while
 * its batch was queued (a temporary file deleted right after its close)
 * is reaped by the retry thread: not a transaction of its own on the
 * committer, which would hold up the next group. */
static void batch_retire(struct eng *e, struct batch *b)
{
	struct einode *ei = b->ei;
	uint64_t ino = ei->ino;
	batch_free(b);
	if (ein_put(e, ei, 0, 0))
		ein_reap_later(e, ino, true);
}

void wb_unpin(struct eng *e, struct wb_pins *p)
{
	struct batch *dead = NULL;
	pthread_mutex_lock(&e->plock);
	for (size_t i = 0; i < p->n; i++) {
		struct batch *b = p->v[i];
		if (--b->pins == 0 && b->unlinked) {
			b->qnext = dead; /* off the queue: the link is free */
			dead = b;
		}
	}
	pthread_mutex_unlock(&e->plock);
	while (dead) {
		struct batch *b = dead;
		dead = b->qnext;
		batch_retire(e, b);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

/* ------------------------------------------------------------------------ */
/* batch preparation (worker pool)                                           */

static void encode_run(void *arg, void *local)
{
	struct fchunk *c = arg;
	struct codec_ctx *ctx = local;
	size_t cap = codec_frame_bound(c->len);
	c->frame = malloc(cap);
	if (!c->frame) {
		c->frame_len = -ENOMEM;
		return;
	}
	c->frame_len = codec_frame_encode(ctx, &c->params, c->data, c->len, c->frame, cap);
	if (c->frame_len > 0 && codec_frame_parse(c->frame, (size_t)c->frame_len, &c->info) < 0)
		c->frame_len = -EIO;
}

static int fp_cmp(const void *a, const void *b)
{
	const struct fchunk *const *x = a, *const *y = b;
	int c = memcmp((*x)->fp, (*y)->fp, FP_LEN);
	return c ? c : ((*x)->off < (*y)->off ? -1 : 1);
}

/* Length of the reference chain below chunk fp (0: fp has no reference),
 * or max + 1 when it reaches max or a link is missing. */
static unsigned ref_depth(struct idx_txn *t, const uint8_t fp[FP_LEN], unsigned max)
{
	struct idx_chunk c;
	uint8_t cur[FP_LEN];
	memcpy(cur, fp, FP_LEN);
	for (unsigned d = 0; d <= max; d++) {
		if (idx_chunk_get(t, cur, &c) < 0)
			return max + 1;
		if (!(c.flags & IDX_CHUNK_HAS_REF))
			return d;
		memcpy(cur, c.ref_fp, FP_LEN);
	}
	return max + 1;
}

/* Give a new chunk its reference as codec context: only the mix level
 * uses one, and only while the chain it would extend stays short enough
 * (decoding a chunk decodes its whole chain). */
static void ref_attach(struct eng *e, struct idx_txn *t, uint64_t ino, struct fchunk *c)
{
	if (!c->has_ref || c->params.level != CODEC_LEVEL_MIX)
		return;
	/* the reference itself counts as one link */
	if (e->o.max_ref_chain == 0 || ref_depth(t, c->ref_fp, e->o.max_ref_chain) + 1 > e->o.max_ref_chain)
		return;
	if (eng_chunk_load(e, t, c->ref_fp, ino, c->off, 0, &c->ref_ce) < 0) {
		c->ref_ce = NULL;
		return;
	}
	c->params.ref = c->ref_ce->data;
	c->params.ref_len = c->ref_ce->len;
}

static void ref_detach_all(struct eng *e, struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct fchunk *c = &b->cs[i];
		cache_release(e->cache, c->ref_ce);
		c->ref_ce = NULL;
		c->params.ref = NULL;
		c->params.ref_len = 0;
	}
}

/* Lazy coding (enum eng_lazy): code a new chunk without a reference at
 * fast rather than at a slower level while the encoders are behind: more
 * than three batches (48 MiB) wait to be committed, which a writer that
 * streams faster than the encoders reaches at once (a 512 MiB write then
 * runs at ~2.7x the single-core mix speed instead of ~1.3x; a writer
 * blocked by backpressure always has more queued).  Not for an fsync or
 * close that waits for less: a checkpoint's tail, or a small file, would
 * be coded twice (and its frames written twice) to save a fraction of a
 * second.  The rebase thread recompresses lazily coded chunks when the
 * store is idle (rb_note at commit).  A chunk cut for a series reference
 * is coded at fast too, alone; the reference it was cut for is committed
 * with it as a hint (idx "hints" table, no reference count): rebase codes
 * that reference against it (a reverse delta), which is where a forward
 * delta would have ended after its turn.  So the writer neither decodes
 * the reference nor runs the slowest coder (a delta codes at about half
 * the speed of a chunk alone), rebase does one encoding less per pair, and
 * the store ends the same.  Auto needs the rebase thread, or the chunk
 * would stay at fast until an explicit eng_rebase. */
static void lazy_level(struct eng *e, struct fchunk *c)
{
	bool behind;

	if (c->params.level <= CODEC_LEVEL_FAST || e->o.lazy == ENG_LAZY_OFF)
		return;
	if (e->o.lazy == ENG_LAZY_AUTO) {
		if (!e->rb_running)
			return;
		pthread_mutex_lock(&e->plock);
		behind = e->inflight_bytes > 3 * e->flush_unit;
		pthread_mutex_unlock(&e->plock);
		if (!behind)
			return;
	}
	c->params.level = CODEC_LEVEL_FAST;
}

/* Fingerprint, dedup, encode and append one batch.  Sets b->state. */
static int batch_prepare(struct eng *e, struct batch *b)
{
	struct fchunk **sorted = NULL;
	struct pool_group *g = NULL;
	struct idx_txn *rt = NULL;
	struct idx_chunk ch;
	int rc = 0;

	for (size_t i = 0; i < b->n; i++) {
		rc = fp_compute(b->cs[i].data, b->cs[i].len, b->cs[i].fp);
		if (rc < 0)
			goto out;
	}
	sorted = malloc((b->n ? b->n : 1) * sizeof(*sorted));
	g = pool_group_create();
	if (!sorted || !g) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < b->n; i++)
		sorted[i] = &b->cs[i];
	qsort(sorted, b->n, sizeof(*sorted), fp_cmp);
	for (size_t i = 1; i < b->n; i++)
		if (memcmp(sorted[i]->fp, sorted[i - 1]->fp, FP_LEN) == 0)
			sorted[i]->dup = true;
	rc = idx_txn_begin(e->idx, true, &rt);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < b->n; i++) {
		struct fchunk *c = &b->cs[i];
		if (c->dup)
			continue;
		c->charge = c->len; /* stored by an earlier batch: unknown yet */
		rc = idx_chunk_get(rt, c->fp, &ch);
		if (rc == 0) {
			c->charge = ch.frame_len;
			continue;
		}
		if (rc != -ENOENT)
			goto out;
		rc = 0;
		/* stored by an earlier queued batch? it commits before us */
		pthread_mutex_lock(&e->plock);
		uint64_t owner = pend_find(e, c->fp);
		if (owner == 0 || owner > b->seq) {
			c->is_new = true;
			rc = pend_add(e, c->fp, b->seq);
		}
		pthread_mutex_unlock(&e->plock);
		if (rc < 0)
			goto out;
		if (c->is_new) {
			lazy_level(e, c); /* before: a chunk coded at fast needs no reference */
			ref_attach(e, rt, b->ei->ino, c);
			rc = pool_submit(e->pool, g, encode_run, c);
			if (rc < 0)
				goto out;
		}
	}
	idx_txn_abort(rt);
	rt = NULL;
	pool_group_wait(g);
	ref_detach_all(e, b);
	if (e->append_hook)
		rc = e->append_hook(e, b->ei->ino);
	pthread_rwlock_rdlock(&e->append_lock);
	b->epoch = pack_store_gen(e->ps);
	for (size_t i = 0; rc >= 0 && i < b->n; i++) {
		struct fchunk *c = &b->cs[i];
		if (!c->is_new)
			continue;
		if (c->frame_len < 0)
			rc = (int)c->frame_len;
		else
			rc = pack_append(e->ps, c->frame, (uint32_t)c->frame_len, &c->loc);
		c->charge = c->loc.len;
		free(c->frame);
		c->frame = NULL;
	}
	pthread_rwlock_unlock(&e->append_lock);
	b->charge = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (sorted[i]->dup)
			sorted[i]->charge = sorted[i - 1]->charge; /* its first copy's */
		b->charge += sorted[i]->charge;
	}
out:
	idx_txn_abort(rt);
	if (rc < 0) {
		pool_group_wait(g);
		ref_detach_all(e, b);
	}
	pool_group_free(g);
	free(sorted);
	return rc;
}

static void prepare_run(void *arg, void *local)
{
	struct batch *b = arg;
	struct eng *e = b->e;
	int rc = batch_prepare(e, b);
	(void)local;
	pthread_mutex_lock(&e->plock);
	b->rc = rc;
	b->state = rc < 0 ? B_FAILED : B_READY;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	b->ready_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	pthread_cond_broadcast(&e->pcond);
	pthread_mutex_unlock(&e->plock);
}

/* ------------------------------------------------------------------------ */
/* committer                                                                 */

/* Apply one READY batch inside t.  -EAGAIN: a chunk it deduplicated
 * against is gone (deleted, or its storing batch failed): retry later. */
static int batch_apply(struct idx_txn *t, struct batch *b)
{
	struct idx_inode in;
	int rc = idx_inode_get(t, b->ei->ino, &in);
	if (rc == -ENOENT)
		return 0; /* deleted meanwhile: nothing to map */
	/* written below the committed size: an overwrite, whose partly
	 * covered chunks stay stored whole (fs/defrag.c repairs it) */
	if (rc == 0 && !b->defrag && b->off < in.size)
		df_note(b->e, in.ino);
	/* new chunks first: a duplicate may precede its first copy */
	for (size_t i = 0; rc >= 0 && i < b->n; i++) {
		struct fchunk *c = &b->cs[i];
		if (!c->is_new)
			continue;
		struct idx_chunk nc;
		memset(&nc, 0, sizeof(nc));
		memcpy(nc.fp, c->fp, FP_LEN);
		nc.pack_id = c->loc.pack_id;
		nc.pack_off = c->loc.off;
		nc.frame_len = c->loc.len;
		nc.raw_len = c->len;
		nc.level = c->info.level;
		nc.dtype = c->info.dtype;
		nc.sum = c->info.checksum;
		nc.has_sum = true;
		if (c->info.flags & CODEC_FLAG_REF) {
			nc.flags |= IDX_CHUNK_HAS_REF;
			memcpy(nc.ref_fp, c->ref_fp, FP_LEN);
		}
		rc = idx_chunk_insert(t, &nc);
		/* coded at fast instead of against the reference it was cut for
		 * (lazy_level): rebase makes the reverse delta later */
		if (rc == 0 && c->has_ref && !(c->info.flags & CODEC_FLAG_REF) &&
		    rb_pending(b->e, nc.level) && memcmp(nc.fp, c->ref_fp, FP_LEN) != 0)
			rc = idx_hint_set(t, nc.fp, c->ref_fp);
		if (rc == -EEXIST) /* stored twice by a race: this frame is an orphan */
			rc = 0;
		if (rc == -ENOENT) /* its reference chunk went away: store it again */
			rc = -EAGAIN;
	}
	for (size_t i = 0; rc >= 0 && i < b->n; i++) {
		struct fchunk *c = &b->cs[i];
		rc = idx_file_punch(t, &in, c->off, c->off + c->len);
		if (rc >= 0)
			rc = idx_file_map(t, &in, c->off, c->len, c->fp, 0);
		if (rc == -ENOENT)
			rc = -EAGAIN;
	}
	if (rc < 0)
		return rc;
	if (b->off + b->len > in.size)
		in.size = b->off + b->len;
	if (b->final && b->size > in.size)
		in.size = b->size; /* extended past the data (sparse tail) */
	if (!atomic_load(&b->keep_times))
		in.mtime_ns = b->mtime_ns;
	/* not back past a later chmod's; a defrag rewrite changes nothing */
	if (!b->defrag && b->mtime_ns > in.ctime_ns)
		in.ctime_ns = b->mtime_ns;
	rc = idx_inode_put(t, &in);
	if (rc >= 0 && b->tens_set)
		rc = idx_tensors_set(t, b->ei->ino, b->tens, b->ntens);
	return rc;
}

/* Mark b failed (plock held): it and every later batch of its inode.  The
 * first real error of the inode until it is reported is logged (-EAGAIN:
 * retried, or a consequence of an error logged already). */
static void batch_fail_locked(struct batch *b, int rc)
{
	b->state = B_FAILED;
	b->rc = rc;
	if (rc == -ENOSPC)
		atomic_store(&b->e->gc_urgent, true);
	b->ei->wb_failed = true;
	if (b->ei->wb_error == 0 || b->ei->wb_error == -EAGAIN) {
		if (rc != -EAGAIN)
			syslog(LOG_ERR, "mixfs: inode %" PRIu64 ": storing %zu bytes at %" PRIu64 " failed: %s",
			       b->ei->ino, b->len, b->off, strerror(-rc));
		b->ei->wb_error = rc;
	}
}

#define GROUP_MAX 256

int wb_pack_sync(struct eng *e)
{
	int rc = pack_sync(e->ps);
	if (rc < 0) {
		pthread_rwlock_wrlock(&e->append_lock);
		pack_store_clear_error(e->ps); /* bumps pack_store_gen */
		pthread_rwlock_unlock(&e->append_lock);
	}
	return rc;
}

/* Wake the retry thread for the einodes marked recheck. */
static void recheck_kick(struct eng *e)
{
	pthread_mutex_lock(&e->retry_lock);
	atomic_store(&e->recheck_due, true);
	pthread_cond_signal(&e->retry_cond);
	pthread_mutex_unlock(&e->retry_lock);
}

/* Commit a group of batches taken off the FIFO head. */
static void commit_group(struct eng *e, struct batch **grp, size_t n)
{
	struct idx_txn *t;
	bool any_ready = false, any_failed = false;
	int rc = 0;

	pthread_mutex_lock(&e->plock);
	for (size_t i = 0; i < n; i++) {
		struct batch *b = grp[i];
		any_failed |= b->state == B_FAILED; /* while preparing */
		if (b->state == B_READY && b->ei->wb_failed)
			batch_fail_locked(b, -EAGAIN); /* an earlier batch of its file failed */
		else if (b->state == B_READY && b->epoch != pack_store_gen(e->ps))
			batch_fail_locked(b, -EAGAIN); /* its frames were dropped */
		else if (b->state == B_FAILED)
			batch_fail_locked(b, b->rc);
		any_ready |= b->state == B_READY;
	}
	pthread_mutex_unlock(&e->plock);
	/* also when only failed batches came: one that failed on a pack write
	 * error left it sticky, and only a sync clears it (else every later
	 * append of this mount fails with it) */
	if (any_ready || any_failed) {
		rc = wb_pack_sync(e);
		if (rc < 0 && any_ready) {
			pthread_mutex_lock(&e->plock);
			for (size_t i = 0; i < n; i++)
				if (grp[i]->state == B_READY)
					batch_fail_locked(grp[i], rc);
			pthread_mutex_unlock(&e->plock);
			any_ready = false;
		}
	}
	/* one transaction for the group; a batch that cannot apply is failed
	 * and the transaction redone without it */
	while (any_ready) {
		size_t bad = n;
		rc = eng_wtxn_begin(e, &t);
		if (rc >= 0) {
			for (size_t i = 0; rc >= 0 && i < n; i++) {
				if (grp[i]->state != B_READY)
					continue;
				rc = batch_apply(t, grp[i]);
				if (rc < 0)
					bad = i;
			}
			rc = eng_wtxn_end(e, t, rc);
		}
		if (rc >= 0)
			break;
		pthread_mutex_lock(&e->plock);
		for (size_t i = 0; i < n; i++)
			if (grp[i]->state == B_READY && (bad == n || i == bad))
				batch_fail_locked(grp[i], rc);
		any_ready = false;
		for (size_t i = 0; i < n; i++) {
			if (grp[i]->state == B_READY && grp[i]->ei->wb_failed)
				batch_fail_locked(grp[i], -EAGAIN);
			any_ready |= grp[i]->state == B_READY;
		}
		pthread_mutex_unlock(&e->plock);
	}
	/* publish: committed batches leave memory, failed ones stay listed for
	 * their inode to take back */
	bool recheck = false;
	pthread_mutex_lock(&e->plock);
	for (size_t i = 0; i < n; i++) {
		struct batch *b = grp[i];
		if (b->seq > e->settled_seq)
			e->settled_seq = b->seq; /* the FIFO's order */
		for (size_t k = 0; k < b->n; k++) {
			if (!b->cs[k].is_new)
				continue;
			pend_del(e, b->cs[k].fp, b->seq);
			/* to be turned around, or recompressed, when idle */
			if (b->state == B_READY && ((b->cs[k].info.flags & CODEC_FLAG_REF) ||
			                            rb_pending(e, b->cs[k].info.level)))
				rb_note(e, b->cs[k].fp);
		}
		e->inflight_bytes -= b->mem;
		b->settled = true; /* a failed one may now be taken back */
		if (b->state != B_READY) {
			/* failed: its inode takes it back (reclaim_failed may
			 * free it as soon as plock is released); if nobody
			 * waits for it and a close returned without waiting
			 * for it, the retry thread does (one of a file still
			 * being written stays: its writer's next write fails
			 * with the error, its close or fsync takes it back) */
			if (b->closed && b->ei->waiters == 0) {
				atomic_store(&b->ei->recheck, true);
				recheck = true;
			}
			grp[i] = NULL;
			continue;
		}
		b->state = B_DONE;
		struct einode *ei = b->ei;
		struct batch **pp = &ei->inflight;
		while (*pp != b)
			pp = &(*pp)->inext;
		*pp = b->inext;
		if (ei->inflight_tail == b) {
			ei->inflight_tail = NULL;
			for (struct batch *x = ei->inflight; x; x = x->inext)
				ei->inflight_tail = x;
		}
		b->unlinked = true;
		if (b->pins > 0)
			grp[i] = NULL; /* the last reader frees it */
	}
	pthread_cond_broadcast(&e->pcond);
	pthread_mutex_unlock(&e->plock);
	if (recheck)
		recheck_kick(e);
	for (size_t i = 0; i < n; i++)
		if (grp[i]) /* committed, unpinned, ours */
			batch_retire(e, grp[i]);
}

static void *committer_main(void *arg)
{
	struct eng *e = arg;
	struct batch *grp[GROUP_MAX];
	const uint64_t group_bytes = 64u << 20;

	pthread_mutex_lock(&e->plock);
	for (;;) {
		struct batch *b = e->qhead;
		if (!b) {
			if (e->stop)
				break;
			pthread_cond_wait(&e->pcond, &e->plock);
			continue;
		}
		if (b->state == B_PREP) {
			pthread_cond_wait(&e->pcond, &e->plock);
			continue;
		}
		/* commit now, or wait a little to batch more? */
		uint64_t ready = 0;
		for (struct batch *x = b; x && x->state != B_PREP; x = x->qnext)
			ready += x->len;
		int64_t due = b->ready_ns + (int64_t)e->o.commit_ms * 1000000;
		bool now = e->stop || e->sync_waiters > 0 || ready >= group_bytes ||
		           e->inflight_bytes >= e->o.dirty_bytes / 2 || eng_mono_ns() >= due;
		if (!now) {
			int64_t wait = due - eng_mono_ns();
			if (wait > 50000000)
				wait = 50000000; /* re-check the triggers regularly */
			eng_cond_wait_ns(&e->pcond, &e->plock, wait);
			continue;
		}
		size_t n = 0;
		while (e->qhead && e->qhead->state != B_PREP && n < GROUP_MAX) {
			grp[n++] = e->qhead;
			e->qhead = e->qhead->qnext;
		}
		if (!e->qhead)
			e->qtail = NULL;
		e->committing = true;
		void (*hook)(struct eng *) = e->commit_hook; /* tests set it under plock */
		pthread_mutex_unlock(&e->plock);
		if (hook)
			hook(e);
		commit_group(e, grp, n);
		pthread_mutex_lock(&e->plock);
		e->committing = false;
	}
	pthread_mutex_unlock(&e->plock);
	return NULL;
}

static void commit_wait(struct eng *e, const uint64_t *upto);

/* ------------------------------------------------------------------------ */
/* cutting batches (ei->lock exclusive)                                      */

/* A file's hints, parsed from its first bytes once they are dirty; a
 * file of no format they know whose first bytes are text (source, JSON,
 * logs: codec_bytes_file) is cut into the larger chunks of eng.cdc_bytes.
 * Not token ids, raw or in an .npy: training reads them at random
 * offsets, where a larger chunk costs its whole decode per read. */
static void hints_prepare(struct eng *e, struct einode *ei)
{
	if (ei->hints_done || ei->nsegs == 0 || ei->segs[0].off != 0)
		return;
	struct codec_hint *h = calloc(1, sizeof(*h));
	if (!h) {
		ei->hints_done = true;
		return;
	}
	int rc = codec_hint_parse(ei->segs[0].data, ei->segs[0].len, 0, h);
	if (rc == -EAGAIN && ei->segs[0].len < (64u << 20)) {
		free(h); /* header not complete yet: try at the next batch */
		return;
	}
	ei->hints_done = true;
	if (rc < 0) {
		free(h);
		ei->bytes_units = e->bytes_units && codec_bytes_file(ei->segs[0].data, ei->segs[0].len);
		return;
	}
	ei->hints = h;
}

/* --- checkpoint series ---------------------------------------------------
 * Reference rule (documented in ARCHITECTURE.md): when a file's first bytes
 * are cut, its reference is (1) its own previous version if a truncate to
 * zero kept one (the shadow inode), else (2) the most recently modified
 * regular file in the same directory whose layout signature matches: the
 * bytes before the first tensor (safetensors header, torch zip directory
 * entries and pickle) or, for other files, the first 256 bytes; else (3)
 * the file of the same name in the most recently modified sibling
 * directories (one checkpoint per directory: checkpoint-500/model.safetensors
 * then checkpoint-1000/model.safetensors, as Hugging Face's Trainer and
 * DeepSpeed save them) whose layout signature matches (a raw file, of no
 * format parsed, takes it without: nothing to compare layouts by); else
 * for a raw file (2') the file of the same directory named like it but
 * for digit runs whose first bytes match its own best (ref_raw_like); else
 * (a safetensors or torch.save file) the first of the candidates of (2)
 * and then (3) that holds most of its tensors by name (see "references by
 * tensor name" below).  Chunks
 * are then cut at the reference file's chunk boundaries, so each chunk
 * lines up with the same elements of the previous checkpoint: unchanged
 * tensors deduplicate exactly, changed ones are coded with the aligned
 * reference chunk as mixer context. */

#define REF_SCAN_MAX 4096u /* directory entries looked at */
#define REF_CANDIDATES 4u
#define REF_LIKE_MAX 4u     /* raw files: names like the new one compared */
#define REF_RAW_MIN 65536u  /* raw files: bytes of head compared (and least size) */

struct ref_scan {
	struct idx_txn *t;
	uint64_t self;     /* skipped; its name is kept in name[] unless set */
	uint8_t type;      /* entries looked at: S_IFREG or S_IFDIR >> 12 */
	uint64_t min_size; /* regular files only */
	/* with like set: only names that differ from it in digit runs alone;
	 * the newest for each set of differing runs (like_mask: bit i = the
	 * i-th run differs), sets of fewest runs first, in like_ino[] */
	const char *like;
	size_t likelen;
	unsigned nlike;
	uint64_t like_ino[REF_LIKE_MAX];
	int64_t like_mtime[REF_LIKE_MAX];
	uint32_t like_mask[REF_LIKE_MAX];
	unsigned seen;
	uint64_t ino[REF_CANDIDATES];
	int64_t mtime[REF_CANDIDATES];
	char name[256];
	size_t namelen;
};

/* Whether a and b differ only in runs of digits ("ckpt-40.bin" and
 * "ckpt-400.bin"), and in which: *mask bit k set when the k-th run (of
 * the first 32) differs.  false if they differ otherwise, or not at all. */
static bool digit_runs_differing(const char *a, size_t na, const char *b, size_t nb,
                                 uint32_t *mask)
{
	size_t i = 0, j = 0;
	unsigned run = 0;
	*mask = 0;
	while (i < na && j < nb) {
		bool da = a[i] >= '0' && a[i] <= '9', db = b[j] >= '0' && b[j] <= '9';
		if (da && db) {
			size_t i0 = i, j0 = j;
			while (i < na && a[i] >= '0' && a[i] <= '9')
				i++;
			while (j < nb && b[j] >= '0' && b[j] <= '9')
				j++;
			if ((i - i0 != j - j0 || memcmp(a + i0, b + j0, i - i0) != 0) && run < 32)
				*mask |= 1u << run;
			run++;
		} else if (a[i++] != b[j++]) {
			return false;
		}
	}
	return i == na && j == nb && *mask != 0;
}

static int ref_scan_cb(void *arg, const char *name, size_t namelen, uint64_t ino, uint8_t type,
                       uint64_t seq)
{
	struct ref_scan *r = arg;
	struct idx_inode in;
	(void)seq;
	if (++r->seen > REF_SCAN_MAX)
		return 1;
	if (ino == r->self && r->namelen == 0 && namelen < sizeof(r->name)) {
		memcpy(r->name, name, namelen);
		r->namelen = namelen;
	}
	if (ino == r->self || type != r->type)
		return 0;
	if (idx_inode_get(r->t, ino, &in) < 0 || (type == (S_IFREG >> 12) && in.size < r->min_size))
		return 0;
	if (r->like) {
		uint32_t mask;
		unsigned i = 0, bits;
		if (!digit_runs_differing(r->like, r->likelen, name, namelen, &mask))
			return 0;
		for (i = 0; i < r->nlike && r->like_mask[i] != mask; i++)
			;
		if (i < r->nlike) { /* this set of runs has one: keep the newer */
			if (in.mtime_ns > r->like_mtime[i]) {
				r->like_ino[i] = ino;
				r->like_mtime[i] = in.mtime_ns;
			}
			return 0;
		}
		/* a new set: in order of fewest differing runs */
		bits = (unsigned)__builtin_popcount(mask);
		for (i = 0; i < r->nlike && (unsigned)__builtin_popcount(r->like_mask[i]) <= bits; i++)
			;
		if (i == REF_LIKE_MAX)
			return 0;
		unsigned move = (r->nlike < REF_LIKE_MAX ? r->nlike : REF_LIKE_MAX - 1) - i;
		memmove(&r->like_ino[i + 1], &r->like_ino[i], move * sizeof(r->like_ino[0]));
		memmove(&r->like_mtime[i + 1], &r->like_mtime[i], move * sizeof(r->like_mtime[0]));
		memmove(&r->like_mask[i + 1], &r->like_mask[i], move * sizeof(r->like_mask[0]));
		r->like_ino[i] = ino;
		r->like_mtime[i] = in.mtime_ns;
		r->like_mask[i] = mask;
		if (r->nlike < REF_LIKE_MAX)
			r->nlike++;
		return 0;
	}
	/* keep the newest few, newest first */
	for (unsigned i = 0; i < REF_CANDIDATES; i++) {
		if (r->ino[i] == 0 || in.mtime_ns > r->mtime[i]) {
			memmove(&r->ino[i + 1], &r->ino[i], (REF_CANDIDATES - 1 - i) * sizeof(r->ino[0]));
			memmove(&r->mtime[i + 1], &r->mtime[i], (REF_CANDIDATES - 1 - i) * sizeof(r->mtime[0]));
			r->ino[i] = ino;
			r->mtime[i] = in.mtime_ns;
			break;
		}
	}
	return 0;
}

/* Whether two file heads have the same layout: equal bytes, except that in
 * a zip (torch.save) the local headers' entry names may differ in content,
 * not in length: torch.save names every entry after the file it writes
 * ("ckpt-000040/data/0"), so checkpoints saved under distinct names of one
 * length keep every tensor at the same offset. */
static bool layout_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t p = 0;
	while (p + 30 <= n && memcmp(a + p, "PK\3\4", 4) == 0) {
		/* the fixed part must match but for time, date and CRC (bytes
		 * 10..17): sizes, flags, method, name and extra lengths */
		if (memcmp(a + p, b + p, 10) != 0 || memcmp(a + p + 18, b + p + 18, 12) != 0)
			return false;
		size_t nl = (size_t)a[p + 26] | (size_t)a[p + 27] << 8;
		size_t xl = (size_t)a[p + 28] | (size_t)a[p + 29] << 8;
		size_t data = p + 30 + nl;
		uint32_t csize = (uint32_t)a[p + 18] | (uint32_t)a[p + 19] << 8 |
		                 (uint32_t)a[p + 20] << 16 | (uint32_t)a[p + 21] << 24;
		/* the extra field and the entry's data must match again */
		size_t next = data + xl + csize;
		if (csize == 0 || next <= data || next > n)
			return memcmp(a + data, b + data, n > data ? n - data : 0) == 0 || data >= n;
		if (memcmp(a + data, b + data, next - data) != 0)
			return false;
		p = next;
	}
	return memcmp(a + p, b + p, n - p) == 0;
}

/* --- references by tensor name ---------------------------------------
 * A reference file whose head differs from the new file's still holds the
 * same tensors when only what lies around them changed: a safetensors
 * header with other metadata ({"step": "1000"}), a torch.save pickle with
 * another learning rate (every LR schedule) or step count, tensors added
 * or dropped.  Offsets may shift, so chunks follow each tensor instead:
 * the reference's tensors by key (struct codec_hint_range), and a chunk
 * of tensor k at offset o within it lines up with o within tensor k of the
 * reference (same key, same length).  Only tensors of at least the
 * chunker's average size: both files cut chunks at their boundaries. */

#define REF_HEAD_MAX (16u << 20) /* head of a reference read for its tensors */
#define REF_TAB_MAX (1u << 18)   /* tensors kept per reference */
#define REF_WALK_WIN (64u << 10) /* widest read at one zip entry */

struct ref_ent {
	uint64_t key, off, len;
};

struct ref_tab {
	struct ref_ent *v; /* sorted by key, len, off */
	size_t n;
};

/* Tensors of at least this many bytes get chunk boundaries of their own
 * (their start and end; cut_min): smaller ones share chunks with what lies
 * around them.  Below the average chunk size since an .npz puts ~200
 * bytes of zip and .npy header before every array, at any byte offset, so
 * a chunk of several small arrays mixed header bytes and element phases
 * (a chunk is coded in one phase): 4 KiB took 1.7-1.8% off the codec
 * corpora saved as .npz (index included) and changed safetensors and
 * torch.save files by less than 0.05% (docs/BENCHMARKS.md). */
#define TENSOR_CUT_MIN 4096u

static uint64_t cut_min(const struct eng *e)
{
	return e->cdc.p.avg_size < TENSOR_CUT_MIN ? e->cdc.p.avg_size : TENSOR_CUT_MIN;
}

/* Whether chunks follow tensor r by name: it has a key and is large
 * enough to be cut at its boundaries in every file (avg_size >= cut_min),
 * so its chunks line up with those of the same tensor in the reference.
 * The one rule for the table and the index. */
static bool tensor_followed(const struct eng *e, const struct codec_hint_range *r)
{
	return r->key && r->len >= e->cdc.p.avg_size;
}

void wb_ref_drop(struct einode *ei)
{
	if (ei->ref_tab)
		free(ei->ref_tab->v);
	free(ei->ref_tab);
	ei->ref_tab = NULL;
	ei->ref_ino = 0;
}

void wb_hints_forget(struct eng *e, struct einode *ei)
{
	codec_hint_release(ei->hints);
	free(ei->hints);
	ei->hints = NULL;
	wb_ref_drop(ei);
	atomic_fetch_sub(&e->hints_mem, ei->hints_mem);
	ei->hints_mem = 0;
}

void wb_hints_closed(struct eng *e, struct einode *ei)
{
	size_t mem = codec_hint_mem(ei->hints) +
	             (ei->ref_tab ? sizeof(*ei->ref_tab) + ei->ref_tab->n * sizeof(*ei->ref_tab->v) : 0);
	uint64_t others = atomic_load(&e->hints_mem) - ei->hints_mem;

	if (others + mem > e->o.hints_mem) {
		/* parsed again if the head is written again; the series
		 * reference is not looked for again (ref_done) */
		wb_hints_forget(e, ei);
		ei->hints_done = false;
		return;
	}
	atomic_fetch_add(&e->hints_mem, mem - ei->hints_mem); /* wraps back when smaller */
	ei->hints_mem = mem;
}

static int ref_ent_cmp(const void *a, const void *b)
{
	const struct ref_ent *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* The reference's (first) tensor of this key and length, or NULL: a
 * binary search whatever a hostile file repeats. */
static const struct ref_ent *ref_tab_find(const struct ref_tab *tab, uint64_t key, uint64_t len)
{
	size_t lo = 0, hi = tab->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct ref_ent *m = &tab->v[mid];
		if (m->key < key || (m->key == key && m->len < len))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < tab->n && tab->v[lo].key == key && tab->v[lo].len == len ? &tab->v[lo] : NULL;
}

/* Read [off, off + len) of stored file ino into *buf (grown as needed). */
static int ref_read(struct eng *e, struct idx_txn *t, uint64_t ino, uint64_t off, size_t len,
                    uint8_t **buf, size_t *cap)
{
	if (len > *cap) {
		uint8_t *p = realloc(*buf, len);
		if (!p)
			return -ENOMEM;
		*buf = p;
		*cap = len;
	}
	return eng_read_stored(e, t, ino, off, len, *buf);
}

/* A torch zip's entries past its head: read each local header (and the
 * descriptor before it) from the small chunk between two tensors (both
 * files cut there), wider only when the header does not fit. */
static int ref_zip_walk(struct eng *e, struct idx_txn *t, uint64_t ino, uint64_t size,
                        struct codec_hint *h, uint8_t **buf, size_t *cap)
{
	int rc = 0;
	while (h->need && h->need < size && h->n < REF_TAB_MAX) {
		uint64_t at = h->need, w = 0;
		struct idx_extent x;
		if (idx_extent_find(t, ino, at, &x) == 0 && x.off <= at)
			w = x.off + x.len - at;
		if (w < 256)
			w = 256;
		for (;;) {
			if (w > size - at)
				w = size - at;
			rc = ref_read(e, t, ino, at, (size_t)w, buf, cap);
			if (rc >= 0)
				rc = codec_hint_feed(h, *buf, (size_t)w, at);
			if (rc < 0 || h->need != at || w >= REF_WALK_WIN || w == size - at)
				break;
			w = w * 4 < REF_WALK_WIN ? w * 4 : REF_WALK_WIN;
		}
		if (rc < 0 || h->need == at)
			break; /* a read failed, or the walk is stuck: keep what it found */
	}
	return rc < 0 && rc != -ENOMEM ? 0 : rc;
}

/* The tensor table of stored file ino, a file of the same format as
 * hints.  Returns 0 with *out set, -ENOENT (another format, no tensors
 * with keys), or another negative errno. */
static int ref_tab_load(struct eng *e, struct idx_txn *t, uint64_t ino, const struct codec_hint *hints,
                        struct ref_tab **out)
{
	struct codec_hint h;
	struct idx_inode in;
	struct ref_tab *tab = NULL;
	uint8_t *buf = NULL;
	size_t cap = 0, len, most;
	int rc;

	memset(&h, 0, sizeof(h));
	*out = NULL;
	rc = idx_inode_get(t, ino, &in);
	if (rc >= 0 && (!S_ISREG(in.mode) || in.size < 16))
		rc = -ENOENT; /* not a file with tensors */
	if (rc < 0)
		goto out;
	most = in.size < REF_HEAD_MAX ? (size_t)in.size : REF_HEAD_MAX;
	len = most < 65536 ? most : 65536;
	for (;;) {
		rc = ref_read(e, t, ino, 0, len, &buf, &cap);
		if (rc < 0)
			goto out;
		rc = codec_hint_parse(buf, len, in.size, &h);
		if (rc != -EAGAIN || h.need <= len || len >= most)
			break;
		/* a safetensors or GGUF header, or a torch zip's data.pkl, not
		 * whole in len */
		len = h.need < most ? (size_t)h.need : most;
	}
	if (rc < 0 || h.format != hints->format) {
		rc = -ENOENT;
		goto out;
	}
	if (h.format == CODEC_HINT_TORCH_ZIP && (rc = ref_zip_walk(e, t, ino, in.size, &h, &buf, &cap)) < 0)
		goto out;
	rc = -ENOMEM;
	tab = calloc(1, sizeof(*tab));
	if (!tab || !(tab->v = malloc((h.n ? h.n : 1) * sizeof(*tab->v))))
		goto out;
	/* only tensors chunks follow: at most one per avg_size */
	for (size_t i = 0; i < h.n && tab->n < REF_TAB_MAX; i++)
		if (tensor_followed(e, &h.r[i]))
			tab->v[tab->n++] = (struct ref_ent){ h.r[i].key, h.r[i].off, h.r[i].len };
	rc = -ENOENT;
	if (tab->n == 0)
		goto out;
	if (tab->n < h.n) { /* kept for the file's life: no more than it holds */
		struct ref_ent *v = realloc(tab->v, tab->n * sizeof(*tab->v));
		if (v)
			tab->v = v;
	}
	qsort(tab->v, tab->n, sizeof(*tab->v), ref_ent_cmp);
	*out = tab;
	tab = NULL;
	rc = 0;
out:
	if (tab)
		free(tab->v);
	free(tab);
	free(buf);
	codec_hint_release(&h);
	return rc;
}

/* Whether tab holds most of the new file's large tensors known so far: at
 * least half of their bytes find a tensor of the same key and length. */
static bool ref_tab_fits(const struct eng *e, const struct ref_tab *tab, const struct codec_hint *h)
{
	uint64_t known = 0, found = 0;
	for (size_t i = 0; i < h->n; i++) {
		if (!tensor_followed(e, &h->r[i]))
			continue;
		known += h->r[i].len;
		if (ref_tab_find(tab, h->r[i].key, h->r[i].len))
			found += h->r[i].len;
	}
	return found > 0 && found >= known / 2;
}

/* Candidate ino as a reference by tensor name for a file with these hints:
 * its table if it fits, else NULL. */
static struct ref_tab *ref_by_name(struct eng *e, struct idx_txn *t, uint64_t ino,
                                   const struct codec_hint *hints)
{
	struct ref_tab *tab = NULL;
	if (ref_tab_load(e, t, ino, hints, &tab) < 0)
		return NULL;
	if (!ref_tab_fits(e, tab, hints)) {
		free(tab->v);
		free(tab);
		tab = NULL;
	}
	return tab;
}

/* Whether a file with these hints can take a reference by tensor name. */
static bool hints_keyed(const struct eng *e, const struct codec_hint *h)
{
	for (size_t i = 0; h && i < h->n; i++)
		if (tensor_followed(e, &h->r[i]))
			return true;
	return false;
}

/* The first of the candidates r->ino[] (in directory dirs[k] if dirs, as
 * r->name there) whose first sig bytes have the layout of head, or 0;
 * by_name: the first whose tensors fit hints instead.  With hints (the
 * file's own, keyed, or NULL), the reference's table goes to *tab. */
static uint64_t ref_pick(struct eng *e, const struct ref_scan *r, const uint64_t *dirs,
                         const uint8_t *head, size_t sig, uint8_t *theirs,
                         const struct codec_hint *hints, bool by_name, struct ref_tab **tab)
{
	for (unsigned i = 0; i < REF_CANDIDATES; i++) {
		uint64_t ino = dirs ? 0 : r->ino[i];
		uint8_t type = 0;
		struct idx_inode in;

		if (dirs && dirs[i] && r->namelen &&
		    (idx_dirent_lookup(r->t, dirs[i], r->name, r->namelen, &ino, &type) < 0 ||
		     type != (S_IFREG >> 12) || idx_inode_get(r->t, ino, &in) < 0 || in.size < sig))
			ino = 0;
		if (!ino)
			continue;
		if (by_name) {
			if ((*tab = ref_by_name(e, r->t, ino, hints)) != NULL)
				return ino;
		} else if (eng_read_stored(e, r->t, ino, 0, sig, theirs) == 0 &&
		           layout_equal(theirs, head, sig)) {
			/* the same head; by name still, where the tensors
			 * after it moved (a pickle longer than sig) */
			if (hints)
				*tab = ref_by_name(e, r->t, ino, hints);
			return ino;
		}
	}
	return 0;
}

#define REF_INDEX_TENSORS 16u /* a file's first large tensors in the index */
#define REF_LOOKUP_FILES 16u  /* files looked at per tensor by ref_lookup */
#define REF_LOOKUP_TENSORS 8u /* of the new file's first large tensors */

struct ref_cand {
	uint64_t ino;
	unsigned hits;
};

/* most shared tensors first, then newest (inode numbers grow) */
static int ref_cand_cmp(const void *a, const void *b)
{
	const struct ref_cand *x = a, *y = b;
	if (x->hits != y->hits)
		return x->hits > y->hits ? -1 : 1;
	return x->ino > y->ino ? -1 : x->ino < y->ino;
}

/* (4) Anywhere in the store: the files whose first large tensors are the
 * new file's (by name and size, in the index's tensors table), most
 * shared tensors first, then newest; the first whose tensors fit. */
static uint64_t ref_lookup(struct eng *e, struct idx_txn *t, const struct einode *ei,
                           const struct codec_hint *hints, struct ref_tab **tab)
{
	struct ref_cand cand[REF_LOOKUP_FILES];
	uint64_t inos[REF_LOOKUP_FILES];
	unsigned nc = 0, asked = 0;

	for (size_t i = 0; i < hints->n && asked < REF_LOOKUP_TENSORS; i++) {
		const struct codec_hint_range *r = &hints->r[i];
		if (!tensor_followed(e, r))
			continue;
		asked++;
		int k = idx_tensor_find(t, r->key, r->len, inos, REF_LOOKUP_FILES);
		for (int j = 0; j < k; j++) {
			unsigned c = 0;
			if (inos[j] == ei->ino || inos[j] == ei->shadow_ino)
				continue;
			while (c < nc && cand[c].ino != inos[j])
				c++;
			if (c == nc) {
				if (nc == REF_LOOKUP_FILES)
					continue;
				cand[nc++] = (struct ref_cand){ inos[j], 0 };
			}
			cand[c].hits++;
		}
	}
	qsort(cand, nc, sizeof(cand[0]), ref_cand_cmp);
	/* ref_tab_load checks each is still a regular file */
	for (unsigned c = 0; c < nc && c < REF_CANDIDATES; c++)
		if ((*tab = ref_by_name(e, t, cand[c].ino, hints)) != NULL)
			return cand[c].ino;
	return 0;
}

/* The directory ino was last looked up in, if the kernel still knows it. */
static uint64_t dir_parent(struct eng *e, uint64_t dir)
{
	struct einode *d = ein_get(e, dir, false, 0, 0);
	uint64_t p = 0;
	if (d) {
		p = atomic_load(&d->parent);
		ein_put(e, d, 0, 0); /* a directory, not reaped here: its callers may hold a transaction */
	}
	return p;
}

/* (2') A raw file (no format mixfs knows: nothing to compare layouts by)
 * with at least REF_RAW_MIN bytes buffered: among the files of its
 * directory whose names differ from its own in digit runs alone, the
 * newest for each set of differing runs (REF_LIKE_MAX sets, of fewest
 * runs first: for step-400-shard-17, the newest step-N-shard-17 and the
 * newest step-400-shard-M, however many shards a step has), the one whose
 * REF_RAW_MIN bytes at off (the file's first segment: its head, or what
 * follows a short head already cut) equal its own at the most offsets
 * (non-zero bytes), if at least a quarter of its non-zero bytes do.  A
 * next version of the same array keeps most sign and exponent bytes and
 * many low ones; another array (shard 0 of the same step for shard 1)
 * matches far fewer, however its name is numbered. */
static uint64_t ref_raw_like(struct eng *e, struct idx_txn *t, uint64_t dir, uint64_t self,
                             const char *name, size_t namelen, uint64_t off, const uint8_t *head)
{
	struct ref_scan l = { .t = t, .self = self, .type = S_IFREG >> 12,
	                      .min_size = REF_RAW_MIN, .like = name, .likelen = namelen };
	uint8_t *theirs = NULL;
	uint64_t best = 0;
	size_t best_eq = 0;

	/* zero bytes do not count: the high bytes of small integers (token
	 * ids as int32) are zero in any two such files */
	for (size_t k = 0; k < REF_RAW_MIN; k++)
		best_eq += head[k] != 0;
	best_eq /= 4;
	if (best_eq == 0 || idx_dir_iter(t, dir, 0, ref_scan_cb, &l) < 0 || l.nlike == 0 ||
	    !(theirs = malloc(REF_RAW_MIN)))
		goto out;
	for (unsigned i = 0; i < l.nlike; i++) {
		size_t eq = 0;
		if (eng_read_stored(e, t, l.like_ino[i], off, REF_RAW_MIN, theirs) < 0)
			continue;
		for (size_t k = 0; k < REF_RAW_MIN; k++)
			eq += theirs[k] == head[k] && head[k] != 0;
		if (eq > best_eq) {
			best_eq = eq;
			best = l.like_ino[i];
		}
	}
out:
	free(theirs);
	return best;
}

/* (3)'s candidates: the newest directories beside dir (in its parent)
 * that hold name, into d (d->namelen 0: there was no parent to look in).
 * Negative errno if the walk failed. */
static int ref_siblings(struct eng *e, struct idx_txn *t, uint64_t dir, const char *name,
                        size_t namelen, struct ref_scan *d)
{
	uint64_t gp = namelen ? dir_parent(e, dir) : 0;
	*d = (struct ref_scan){ .t = t, .self = dir, .type = S_IFDIR >> 12 };
	if (!gp || gp == dir)
		return 0;
	memcpy(d->name, name, namelen);
	d->namelen = namelen;
	return idx_dir_iter(t, gp, 0, ref_scan_cb, d);
}

/* A raw file (no format the hints parse: nothing to tell its layout by).
 * (2) a file of its directory whose first sig bytes are its own, if that
 * many are buffered; (3) the same name in the newest sibling directory,
 * as it is; else (2') by its first segment once that holds REF_RAW_MIN
 * bytes: now, or at a later cut (ref_raw_late: np.save's header is cut
 * alone, a fallocate commits it, then the data comes), when only (2') is
 * tried, at that segment's offset. */
static void ref_find_raw(struct eng *e, struct einode *ei, struct idx_txn *t, uint64_t dir,
                         size_t sig)
{
	const struct dseg *s0 = &ei->segs[0];
	bool first = !ei->ref_raw_late;
	struct ref_scan r = { .t = t, .self = ei->ino, .type = S_IFREG >> 12,
	                      .min_size = first ? sig : UINT64_MAX };
	struct ref_scan d;
	uint8_t none[1] = { 0 }; /* (3): no head compared, 0 bytes of it */

	if (idx_dir_iter(t, dir, 0, ref_scan_cb, &r) < 0 || r.namelen == 0)
		return;
	if (first && s0->len >= sig) {
		uint8_t *theirs = malloc(sig);
		if (!theirs)
			return;
		ei->ref_ino = ref_pick(e, &r, NULL, s0->data, sig, theirs, NULL, false, &ei->ref_tab);
		free(theirs);
	}
	if (first && !ei->ref_ino && ref_siblings(e, t, dir, r.name, r.namelen, &d) == 0)
		ei->ref_ino = ref_pick(e, &d, d.ino, none, 0, none, NULL, false, &ei->ref_tab);
	if (ei->ref_ino)
		return;
	if (s0->len >= REF_RAW_MIN) {
		ei->ref_ino = ref_raw_like(e, t, dir, ei->ino, r.name, r.namelen, s0->off, s0->data);
	} else {
		ei->ref_done = false;
		ei->ref_raw_late = true;
	}
}

/* Whether h tells the file's layout (a safetensors, torch zip or GGUF
 * head naming its tensors).  A .npy's does not: its header is the same
 * for every array of that dtype and shape (the shards of a checkpoint,
 * say), so such a file finds its reference as a raw file does, by its
 * name and its first bytes. */
static bool hints_layout(const struct codec_hint *h)
{
	return h && h->n > 0 && h->format != CODEC_HINT_NPY;
}

/* Choose ei's reference file once its first bytes are buffered: the
 * candidates of the rule above with the same layout, else (a safetensors
 * or torch.save file) the first of them holding most of its tensors. */
static void ref_find(struct eng *e, struct einode *ei)
{
	struct idx_txn *t = NULL;
	uint8_t *theirs = NULL;
	const struct dseg *s0;
	const struct codec_hint *keyed;
	size_t sig = 256;
	uint64_t dir;

	if (ei->ref_done || ei->nsegs == 0 || (ei->segs[0].off != 0 && !ei->ref_raw_late))
		return;
	s0 = &ei->segs[0];
	if (ei->ref_raw_late && s0->len < REF_RAW_MIN)
		return; /* a raw file's short head was cut: (2') on a longer segment */
	ei->ref_done = true;
	if (e->o.max_ref_chain == 0)
		return;
	/* a file closed a moment ago may not be committed yet (a close does
	 * not wait): the candidates are read from the index.  Not for small
	 * files, where series coding saves little and the wait would cost a
	 * commit each */
	if (s0->len >= REF_RAW_MIN || hints_layout(ei->hints))
		commit_wait(e, &e->closed_seq);
	if (hints_layout(ei->hints) && ei->hints->r[0].off >= 16)
		sig = ei->hints->r[0].off < 4096 ? (size_t)ei->hints->r[0].off : 4096;
	keyed = hints_keyed(e, ei->hints) ? ei->hints : NULL;
	dir = atomic_load(&ei->parent);
	if (ei->shadow_ino) {
		/* its own previous version: by name when the layout moved */
		ei->ref_ino = ei->shadow_ino;
		if (!keyed || idx_txn_begin(e->idx, true, &t) < 0)
			return;
		ei->ref_tab = ref_by_name(e, t, ei->shadow_ino, keyed);
		goto out;
	}
	if (!hints_layout(ei->hints) && (dir != 0 || ei->ref_raw_late)) {
		if (idx_txn_begin(e->idx, true, &t) == 0)
			ref_find_raw(e, ei, t, dir, sig);
		goto out;
	}
	if (s0->len < sig || dir == 0) {
		/* no directory to look in (or a head shorter than the header
		 * it names): by its tensors, anywhere, still */
		if (keyed && idx_txn_begin(e->idx, true, &t) == 0)
			ei->ref_ino = ref_lookup(e, t, ei, keyed, &ei->ref_tab);
		goto out;
	}
	theirs = malloc(sig);
	if (!theirs || idx_txn_begin(e->idx, true, &t) < 0)
		goto out;
	/* (2) a file in the same directory */
	struct ref_scan r = { .t = t, .self = ei->ino, .type = S_IFREG >> 12, .min_size = sig };
	if (idx_dir_iter(t, dir, 0, ref_scan_cb, &r) < 0)
		goto out;
	ei->ref_ino = ref_pick(e, &r, NULL, s0->data, sig, theirs, keyed, false, &ei->ref_tab);
	if (ei->ref_ino)
		goto out;
	/* (3) the same name in a sibling directory */
	struct ref_scan d;
	if (ref_siblings(e, t, dir, r.name, r.namelen, &d) < 0)
		goto out;
	if (d.namelen)
		ei->ref_ino = ref_pick(e, &d, d.ino, s0->data, sig, theirs, keyed, false, &ei->ref_tab);
	if (ei->ref_ino || !keyed)
		goto out;
	/* the same two, by tensor name */
	ei->ref_ino = ref_pick(e, &r, NULL, s0->data, sig, theirs, keyed, true, &ei->ref_tab);
	if (!ei->ref_ino && d.namelen)
		ei->ref_ino = ref_pick(e, &d, d.ino, s0->data, sig, theirs, keyed, true, &ei->ref_tab);
	if (!ei->ref_ino)
		ei->ref_ino = ref_lookup(e, t, ei, keyed, &ei->ref_tab);
out:
	idx_txn_abort(t);
	free(theirs);
}

/* Index of the new file's last tensor starting at or before off, or n. */
static size_t hint_le(const struct codec_hint *h, uint64_t off)
{
	size_t lo = 0, hi = h->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (h->r[mid].off <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? lo - 1 : h->n;
}

/* The reference's tensor for the new file's tensor r, when chunks follow
 * it (large enough to be cut at its boundaries in both files). */
static const struct ref_ent *ref_tensor(const struct eng *e, const struct ref_tab *tab,
                                        const struct codec_hint_range *r)
{
	return tensor_followed(e, r) ? ref_tab_find(tab, r->key, r->len) : NULL;
}

#define REF_BACK_MAX 64u /* tensors looked back at for the shift of a gap */

/* Where file offset off of the new file lies in its reference: in a
 * tensor of the table, at the same place in that tensor (*lim: bytes to
 * its end); elsewhere (the header, the bytes between two tensors, small
 * tensors) shifted as the last tensor of the table before it is (none:
 * not shifted), up to the next tensor of at least cut_min.  false: nowhere. */
static bool ref_where(const struct eng *e, const struct einode *ei, uint64_t off, uint64_t *roff,
                      uint64_t *lim)
{
	const struct codec_hint *h = ei->hints;
	size_t i = hint_le(h, off);
	int64_t shift = 0;
	*lim = UINT64_MAX;
	if (i < h->n && off < h->r[i].off + h->r[i].len) {
		const struct ref_ent *m = ref_tensor(e, ei->ref_tab, &h->r[i]);
		if (m) {
			*roff = m->off + (off - h->r[i].off);
			*lim = h->r[i].off + h->r[i].len - off;
			return true;
		}
	}
	for (unsigned k = 0; i < h->n && k < REF_BACK_MAX; k++, i = i ? i - 1 : h->n) {
		const struct ref_ent *m = ref_tensor(e, ei->ref_tab, &h->r[i]);
		if (m) {
			shift = (int64_t)(m->off - h->r[i].off);
			break;
		}
	}
	if (shift < 0 && (uint64_t)-shift > off)
		return false;
	*roff = off + (uint64_t)shift;
	uint64_t nb = codec_hint_next_cut(h, off, cut_min(e));
	if (nb > off)
		*lim = nb - off;
	return true;
}

/* Cut length that lines up with the reference file at file offset off:
 * the rest of the reference extent containing the same byte (at off, or
 * with a ref_tab where ref_where says), when it is a sensible chunk
 * length.  Sets c->has_ref when that extent starts there with a whole
 * chunk (so the chunk is an element-aligned reference).  Returns 0 when
 * the reference does not help here (use the chunker). */
/* A chunk only the shadow maps (the previous version of a file rewritten
 * in place, deleted at the last close): cutting at its boundaries still
 * lets unchanged data dedup, but coding against it never pays: the delta
 * would keep it alive (delta + old > new alone) until rebase rewrote the
 * new chunk whole.  Shared with another file, it stays: it is kept anyway. */
static bool shadow_only(struct idx_txn *t, const struct einode *ei, const uint8_t fp[FP_LEN])
{
	struct idx_chunk c;
	return ei->shadow_ino && ei->ref_ino == ei->shadow_ino && idx_chunk_get(t, fp, &c) == 0 &&
	       c.refcount <= 1;
}

static size_t ref_cut(struct eng *e, struct idx_txn *t, const struct einode *ei, uint64_t off,
                      struct fchunk *c)
{
	struct idx_extent x;
	uint64_t roff = off, lim = UINT64_MAX;
	if (!t || (ei->ref_tab && !ref_where(e, ei, off, &roff, &lim)))
		return 0;
	if (idx_extent_find(t, ei->ref_ino, roff, &x) < 0 || x.off > roff)
		return 0;
	uint64_t len = x.off + x.len - roff;
	bool whole = len <= lim;
	if (!whole)
		len = lim;
	if (len < 64 || len > e->cdc.p.max_size)
		return 0;
	if (whole && x.off == roff && x.chunk_off == 0 && !shadow_only(t, ei, x.fp)) {
		c->has_ref = true;
		memcpy(c->ref_fp, x.fp, FP_LEN);
	}
	return (size_t)len;
}

/* The file's first large tensors by name for the index (ref_lookup finds
 * it by them); none for a file without hints: its old entries go. */
static void batch_tensors(const struct eng *e, const struct einode *ei, struct batch *b)
{
	const struct codec_hint *h = ei->hints;
	b->tens_set = true;
	for (size_t i = 0; h && i < h->n && b->ntens < REF_INDEX_TENSORS; i++) {
		if (!tensor_followed(e, &h->r[i]))
			continue;
		if (!b->tens && !(b->tens = malloc(REF_INDEX_TENSORS * sizeof(*b->tens)))) {
			b->tens_set = false; /* the old entries stay: ref_lookup checks */
			return;
		}
		b->tens[b->ntens++] = (struct idx_tensor){ h->r[i].key, h->r[i].len };
	}
}

/* Cut segment i into a batch and queue it.  partial: keep a still-growing
 * tail at EOF.  Returns bytes queued (0 if nothing was final yet). */
static ssize_t batch_cut(struct eng *e, struct einode *ei, size_t i, bool partial)
{
	struct dseg *s = &ei->segs[i];
	bool at_eof = s->off + s->len >= ei->size;
	struct fchunk *cs = NULL;
	size_t n = 0, cap = 0, pos = 0;
	struct batch *b = NULL;
	struct idx_txn *rt = NULL;

	if (ei->ref_ino && idx_txn_begin(e->idx, true, &rt) < 0)
		rt = NULL;
	/* a torch.save file: hints for the entries these bytes hold (the
	 * head's parse saw only the first ones); a failure ends them there */
	if (ei->hints)
		(void)codec_hint_feed(ei->hints, s->data, s->len, s->off);
	while (pos < s->len && pos < e->flush_unit) {
		size_t avail = s->len - pos;
		struct fchunk probe;
		memset(&probe, 0, sizeof(probe));
		size_t cut = ei->ref_ino ? ref_cut(e, rt, ei, s->off + pos, &probe) : 0;
		bool final;
		if (cut) {
			final = cut <= avail;
			if (cut > avail) {
				cut = avail;
				probe.has_ref = false; /* a partial chunk is not aligned data */
			}
		} else {
			/* content-defined, but never across a tensor boundary */
			size_t lim = avail;
			uint64_t nb = codec_hint_next_cut(ei->hints, s->off + pos, cut_min(e));
			bool forced = nb > s->off + pos && nb - (s->off + pos) <= avail;
			if (forced)
				lim = (size_t)(nb - (s->off + pos));
			const struct cdc *cdc = ei->bytes_units ? &e->cdc_bytes : &e->cdc;
			cut = cdc_cut(cdc, s->data + pos, lim);
			final = (forced && cut == lim) || cdc_cut_is_final(cdc, cut, lim);
		}
		if (partial && at_eof && !final)
			break;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct fchunk *p = realloc(cs, nc * sizeof(*p));
			if (!p)
				goto nomem;
			cs = p;
			cap = nc;
		}
		cs[n] = probe;
		cs[n].off = s->off + pos;
		cs[n].len = (uint32_t)cut;
		n++;
		pos += cut;
	}
	idx_txn_abort(rt);
	rt = NULL;
	if (n == 0) {
		free(cs);
		return 0;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		goto nomem;
	/* the batch takes the segment's buffer; bytes it does not take (the
	 * tail of a sequential writer, less than a chunk) move to a buffer as
	 * big, so the segment does not grow again from a page by doubling */
	if (pos < s->len) {
		size_t rest_len = s->len - pos, want = s->cap;
		if (want > 2 * e->flush_unit)
			want = rest_len > 2 * e->flush_unit ? rest_len : 2 * e->flush_unit;
		uint8_t *rest = malloc(want);
		if (!rest)
			goto nomem;
		memcpy(rest, s->data + pos, rest_len);
		b->data = s->data;
		s->data = rest;
		s->cap = want;
	} else {
		b->data = s->data;
		s->data = NULL;
	}
	for (size_t k = 0; k < n; k++) {
		cs[k].data = b->data + (cs[k].off - s->off);
		cs[k].params.level = e->o.level;
		cs[k].params.bytes_cm = e->o.bytes_cm;
		cs[k].params.dtype = CODEC_DTYPE_AUTO;
		if (ei->hints)
			codec_hint_chunk(ei->hints, cs[k].off, cs[k].len, &cs[k].params);
	}
	b->e = e;
	b->ei = ei;
	b->off = s->off;
	b->len = pos;
	/* what inflight= counts: its memory, whole pages of data and the
	 * batch's own records (a byte written far from others is a batch) */
	b->mem = ((pos + 4095) & ~(size_t)4095) + sizeof(*b) + cap * sizeof(*cs);
	b->cs = cs;
	b->n = n;
	b->size = ei->size;
	b->mtime_ns = ei->mtime_ns;
	b->final = !partial && pos == s->len && ei->nsegs == 1;
	b->defrag = ei->defrag;
	if (b->defrag)
		atomic_store(&b->keep_times, true);
	/* a rewrite's head may be a piece of the file's header: the tensors
	 * its last write left in the index stay */
	if (b->off == 0 && ei->hints_done && !b->defrag)
		batch_tensors(e, ei, b);
	/* consume the bytes from the segment */
	if (pos == s->len) {
		memmove(&ei->segs[i], &ei->segs[i + 1], (ei->nsegs - i - 1) * sizeof(*s));
		ei->nsegs--;
	} else {
		s->off += pos;
		s->len -= pos;
	}
	ei->dirty -= pos;
	ein_get(e, ei->ino, false, 0, 0); /* the batch's user reference */
	pthread_mutex_lock(&e->plock);
	/* under plock with the queueing: whoever sees neither dirty bytes
	 * nor a queued batch under plock sees the bytes committed */
	atomic_fetch_sub(&e->dirty_total, pos);
	b->seq = ++e->batch_seq;
	b->state = B_PREP;
	if (e->qtail)
		e->qtail->qnext = b;
	else
		e->qhead = b;
	e->qtail = b;
	if (ei->inflight_tail)
		ei->inflight_tail->inext = b;
	else
		ei->inflight = b;
	ei->inflight_tail = b;
	e->inflight_bytes += b->mem;
	pthread_mutex_unlock(&e->plock);
	/* never fails: the pool runs the job inline when it cannot queue it */
	if (pool_submit(e->pool, NULL, prepare_run, b) < 0)
		prepare_run(b, NULL);
	return (ssize_t)pos;
nomem:
	idx_txn_abort(rt);
	free(cs);
	if (b)
		free(b->data);
	free(b);
	return -ENOMEM;
}

/* A batch of ei is still being prepared, or is queued for or inside a
 * commit (a batch that failed while preparing stays queued until the
 * committer has settled it: only then may it be taken back and freed). */
static bool ino_busy_locked(struct einode *ei)
{
	for (struct batch *b = ei->inflight; b; b = b->inext)
		if (!b->settled)
			return true;
	return false;
}

/* Wait until no batch of ei is being prepared or committed. */
static void wait_quiet(struct eng *e, struct einode *ei)
{
	pthread_mutex_lock(&e->plock);
	e->sync_waiters++;
	ei->waiters++;
	pthread_cond_broadcast(&e->pcond);
	while (ino_busy_locked(ei) && e->wb_running)
		pthread_cond_wait(&e->pcond, &e->plock);
	ei->waiters--;
	e->sync_waiters--;
	pthread_mutex_unlock(&e->plock);
}

/* Take back batches that failed (their bytes go under newer dirty bytes)
 * so the next flush retries them.  Returns the error to report, if any. */
static int reclaim_failed(struct eng *e, struct einode *ei)
{
	struct batch *failed = NULL;
	int rc;
	pthread_mutex_lock(&e->plock);
	/* callers wait until no batch of ei is in flight: failed batches are
	 * then the newest of their inode and may go back under the segments */
	struct batch **pp = &ei->inflight;
	while (*pp) {
		struct batch *b = *pp;
		if (b->state == B_FAILED && b->settled) {
			*pp = b->inext;
			b->inext = failed; /* newest first */
			failed = b;
		} else {
			pp = &b->inext;
		}
	}
	ei->inflight_tail = NULL;
	for (struct batch *x = ei->inflight; x; x = x->inext)
		ei->inflight_tail = x;
	if (!ei->inflight)
		ei->wb_failed = false;
	rc = ei->wb_error;
	pthread_mutex_unlock(&e->plock);
	while (failed) {
		struct batch *b = failed;
		int r;
		failed = b->inext;
		r = dirty_insert_under(e, ei, b->off, b->data, b->len);
		if (r < 0) {
			syslog(LOG_ERR, "mixfs: inode %" PRIu64 ": out of memory keeping %zu bytes at %" PRIu64
			       " that failed to store", ei->ino, b->len, b->off);
			rc = r;
		}
		batch_retire(e, b);
	}
	return rc;
}

/* Queue every segment (or, partial, every final chunk) as batches. */
static int flush_cut(struct eng *e, struct einode *ei, bool partial)
{
	hints_prepare(e, ei);
	if (ei->hints_done)
		ref_find(e, ei);
	size_t i = 0;
	while (i < ei->nsegs) {
		size_t before = ei->nsegs;
		uint64_t off = ei->segs[i].off;
		ssize_t q = batch_cut(e, ei, i, partial);
		if (q < 0)
			return (int)q;
		if (q == 0 || (partial && ei->nsegs == before && ei->segs[i].off != off &&
		               ei->segs[i].len < e->flush_unit))
			i++; /* a tail that is still growing stays */
	}
	return 0;
}

/* Wait for ei's batches in flight, then take back what failed (its bytes
 * stay buffered, to be stored again).  Returns ei's error not yet
 * reported, cleared (reported once, like errseq), or reclaim_failed's;
 * again_only: only an -EAGAIN is cleared (a batch to store again, nothing
 * to report) and 0 returned for it, another error stays. */
static int take_back(struct eng *e, struct einode *ei, bool again_only)
{
	wait_quiet(e, ei);
	pthread_mutex_lock(&e->plock);
	int err = ei->wb_error;
	if (!again_only || err == -EAGAIN)
		ei->wb_error = 0;
	if (again_only)
		err = 0;
	pthread_mutex_unlock(&e->plock);
	int rc = reclaim_failed(e, ei);
	return err ? err : rc;
}

ssize_t wb_write(struct eng *e, struct einode *ei, uint64_t off, const void *buf, size_t size)
{
	ssize_t rc;
	/* bytes that could not be stored fill the budget: refuse more until
	 * the retry stores some (a full disk fails writes, not only closes) */
	if (atomic_load(&e->parked_total) >= e->o.dirty_bytes)
		return atomic_load(&e->parked_err);
	pthread_mutex_lock(&e->plock);
	rc = ei->wb_failed ? ei->wb_error : 0;
	pthread_mutex_unlock(&e->plock);
	if (rc == -EAGAIN) {
		/* a batch is to be stored again (a chunk it deduplicated
		 * against went away, or its frames were dropped): take the
		 * failed batches back now.  Left to the close, every later
		 * batch of the file would fail behind them (wb_failed) and
		 * their bytes, counted by no budget, pile up in memory. */
		rc = take_back(e, ei, true);
	}
	if (rc < 0)
		return rc; /* fail fast (e.g. ENOSPC) until fsync/close reported it */
	park_set(e, ei, 0, 0); /* written again: stored with the rest */
	rc = dirty_insert(ei, off, buf, size);
	if (rc < 0)
		return rc;
	atomic_fetch_add(&e->dirty_total, (uint64_t)rc);
	ei->close_bytes += size;
	/* rebase waits for the store to be quiet: ENG_QUIET_BYTES written
	 * since the last mark move it */
	uint64_t w = atomic_fetch_add(&e->written, size) + size;
	if (w - atomic_load(&e->written_mark) >= ENG_QUIET_BYTES) {
		atomic_store(&e->written_mark, w);
		atomic_store(&e->last_write_ms, eng_mono_ns() / 1000000);
	}
	if (off + size > ei->size)
		ei->size = off + size;
	ei->mtime_ns = eng_now_ns();
	if (ei->dirty >= e->flush_unit) {
		rc = flush_cut(e, ei, true);
		if (rc < 0)
			return rc;
	} else if (ei->nsegs > WB_SEGS_MAX ||
	           atomic_load(&e->dirty_total) - atomic_load(&e->parked_total) >
	           e->o.dirty_bytes / 2) {
		/* many files each below flush_unit: queue ours whole so the
		 * buffered total stays bounded (the wait below frees memory;
		 * parked bytes are bounded above); so too a file of many
		 * small runs far apart, whose buffers (a page each at
		 * least) dirty= does not see */
		rc = flush_cut(e, ei, false);
		if (rc < 0)
			return rc;
	}
	/* backpressure: wait while queued batches use more than allowed
	 * (inflight=), or with the buffered bytes more than dirty=; until
	 * they are back to the smaller of inflight= and half of dirty= */
	pthread_mutex_lock(&e->plock);
	if (e->inflight_bytes + atomic_load(&e->dirty_total) > e->o.dirty_bytes ||
	    e->inflight_bytes > e->o.inflight_bytes) {
		const uint64_t low = e->o.inflight_bytes < e->o.dirty_bytes / 2 ? e->o.inflight_bytes
		                                                                : e->o.dirty_bytes / 2;
		e->sync_waiters++;
		pthread_cond_broadcast(&e->pcond);
		while (e->inflight_bytes > low && e->wb_running)
			pthread_cond_wait(&e->pcond, &e->plock);
		e->sync_waiters--;
	}
	pthread_mutex_unlock(&e->plock);
	return (ssize_t)size;
}

/* Cut everything buffered, wait for it, take back what failed.  Returns
 * the error of ei not yet reported (clearing it: reported once, like
 * errseq) or reclaim_failed's. */
static int flush_wait(struct eng *e, struct einode *ei)
{
	int rc = flush_cut(e, ei, false);
	return rc < 0 ? rc : take_back(e, ei, false);
}

/* flush_wait (clearing ei's error) again while a chunk a batch
 * deduplicated against went away meanwhile (-EAGAIN: store again), at
 * most 4 times; then -EIO, never -EAGAIN. */
static int flush_store(struct eng *e, struct einode *ei)
{
	int rc = -EIO;
	for (int attempt = 0; attempt < 4; attempt++) {
		rc = flush_wait(e, ei);
		if (rc != -EAGAIN)
			return rc;
		rc = -EIO;
	}
	return rc;
}

int wb_sync(struct eng *e, struct einode *ei)
{
	park_set(e, ei, 0, 0);
	int rc = flush_store(e, ei);
	/* what failed waits for the retry thread (or the next sync) */
	park_set(e, ei, ei->nsegs ? ei->dirty : 0, rc);
	return rc;
}

/* An error waits for ei's next close or fsync (plock held). */
static bool has_error_locked(const struct einode *ei)
{
	return ei->wb_failed || ei->wb_error != 0;
}

/* ei's batches are all prepared (plock held); *failed: one of them failed. */
static bool ino_prepared_locked(struct einode *ei, bool *failed)
{
	*failed = has_error_locked(ei);
	for (struct batch *b = ei->inflight; b; b = b->inext) {
		if (b->state == B_PREP)
			return false;
		*failed |= b->state == B_FAILED;
	}
	return true;
}

int wb_close(struct eng *e, struct einode *ei)
{
	/* a file written with at least flush_unit (16 MiB) since its last
	 * close (a checkpoint) waits for its commit: two disk syncs are
	 * nothing next to coding that much, and its close then survives a
	 * kill -9 of the daemon */
	bool large = ei->close_bytes >= e->flush_unit;
	ei->close_bytes = 0;
	return large ? wb_sync(e, ei) : wb_settle(e, ei);
}

int wb_settle(struct eng *e, struct einode *ei)
{
	bool failed = false;
	int rc;

	if (atomic_load(&ei->parked))
		return wb_sync(e, ei); /* reports, and parks what fails again */
	/* a waiter from here: a batch that fails meanwhile is ours to take
	 * back (wb_sync below), not the retry thread's */
	pthread_mutex_lock(&e->plock);
	ei->waiters++;
	pthread_mutex_unlock(&e->plock);
	rc = flush_cut(e, ei, false);
	pthread_mutex_lock(&e->plock);
	while (rc >= 0 && !ino_prepared_locked(ei, &failed) && e->wb_running)
		pthread_cond_wait(&e->pcond, &e->plock);
	bool clean = rc >= 0 && !failed && e->wb_running;
	bool queued = ei->inflight != NULL;
	pthread_mutex_unlock(&e->plock);
	/* its frames written (not synced): a full disk shows now */
	if (clean && queued && pack_flush(e->ps) < 0)
		clean = false;
	pthread_mutex_lock(&e->plock);
	/* a sync of the committer may have met the error first and cleared
	 * it (pack_store_gen moved past our appends: the frames are dropped,
	 * our batches will fail), or a batch failed meanwhile */
	for (struct batch *b = ei->inflight; clean && b; b = b->inext)
		clean = b->state != B_FAILED && (b->state == B_DONE || b->epoch == pack_store_gen(e->ps));
	if (clean && ei->inflight_tail && ei->inflight_tail->seq > e->closed_seq)
		e->closed_seq = ei->inflight_tail->seq;
	for (struct batch *b = ei->inflight; clean && b; b = b->inext)
		b->closed = true; /* left to the group commit: see commit_group */
	pthread_mutex_unlock(&e->plock);
	/* something failed (a pack write: the disk is full), or an error
	 * waits to be reported: settle it the way fsync does */
	rc = clean ? 0 : wb_sync(e, ei);
	pthread_mutex_lock(&e->plock);
	ei->waiters--;
	/* a commit that failed after we looked, while we counted as its
	 * waiter: the retry thread takes it back */
	bool orphaned = false;
	for (struct batch *b = ei->inflight; b && ei->waiters == 0; b = b->inext)
		orphaned |= b->state == B_FAILED && b->settled;
	if (orphaned)
		atomic_store(&ei->recheck, true);
	pthread_mutex_unlock(&e->plock);
	if (orphaned)
		recheck_kick(e);
	return rc;
}

bool wb_has_error(struct eng *e, struct einode *ei)
{
	pthread_mutex_lock(&e->plock);
	bool failed = has_error_locked(ei);
	pthread_mutex_unlock(&e->plock);
	return failed;
}

int wb_rewrite(struct eng *e, struct einode *ei, uint64_t off, const uint8_t *buf, size_t len)
{
	/* not wb_write: no mtime, no last_write_ms (the rewrite is idle
	 * work and must not hold rebase off), no backpressure (one piece of
	 * a few MiB, stored before the next) */
	if (wb_has_error(e, ei))
		return -EBUSY; /* an error waits for the file's next close or fsync */
	ssize_t rc = dirty_insert(ei, off, buf, len);
	if (rc < 0)
		return (int)rc;
	atomic_fetch_add(&e->dirty_total, (uint64_t)rc);
	return 0;
}

int wb_rewrite_store(struct eng *e, struct einode *ei)
{
	ei->defrag = true;
	int rc = flush_store(e, ei);
	ei->defrag = false;
	/* failed bytes came back to the segments: they are the stored
	 * bytes, and nobody wrote meanwhile (ei->lock held throughout) */
	wb_discard(e, ei);
	return rc;
}

bool wb_uncommitted(struct eng *e, struct einode *ei, bool keep_times)
{
	bool any = false;
	pthread_mutex_lock(&e->plock);
	for (struct batch *b = ei->inflight; b; b = b->inext) {
		if (b->state != B_DONE) {
			if (keep_times)
				atomic_store(&b->keep_times, true);
			any = true;
		}
	}
	pthread_mutex_unlock(&e->plock);
	return any;
}

/* Wait until every batch up to seq *upto (read under plock: batch_seq or
 * closed_seq) is committed or failed. */
static void commit_wait(struct eng *e, const uint64_t *upto)
{
	pthread_mutex_lock(&e->plock);
	uint64_t seq = *upto;
	e->sync_waiters++;
	pthread_cond_broadcast(&e->pcond);
	while (e->settled_seq < seq && e->wb_running)
		pthread_cond_wait(&e->pcond, &e->plock);
	e->sync_waiters--;
	pthread_mutex_unlock(&e->plock);
}

void wb_commit_queued(struct eng *e)
{
	commit_wait(e, &e->batch_seq);
}

int wb_retry(struct eng *e, struct einode *ei)
{
	pthread_mutex_lock(&e->plock);
	int had = ei->wb_error; /* not reported yet: stays */
	if (had == -EAGAIN)
		had = 0; /* a dedup target went away: stored again, not an error */
	pthread_mutex_unlock(&e->plock);
	int rc = wb_sync(e, ei); /* what fails is parked again */
	bool stored = ei->nsegs == 0 && rc != -ENOMEM;
	/* the failure was reported (the close or fsync that parked them);
	 * the next one reports its own attempt, not this one's */
	pthread_mutex_lock(&e->plock);
	ei->wb_error = had;
	pthread_mutex_unlock(&e->plock);
	return stored ? 0 : rc < 0 ? rc : -EIO;
}

uint64_t wb_pending_bytes(struct eng *e, struct einode *ei)
{
	uint64_t n = ei->dirty;
	pthread_mutex_lock(&e->plock);
	for (struct batch *b = ei->inflight; b; b = b->inext)
		if (b->state == B_READY)
			n += b->charge; /* coded: what its commit will count */
		else if (b->state != B_DONE)
			n += b->len;
	pthread_mutex_unlock(&e->plock);
	return n;
}

bool wb_idle(struct eng *e, struct einode *ei)
{
	bool idle;
	pthread_mutex_lock(&e->plock);
	idle = ei->inflight == NULL;
	pthread_mutex_unlock(&e->plock);
	return idle && ei->nsegs == 0;
}

#define RETRY_MIN_NS 1000000000ll   /* first retry of parked bytes after 1 s */
#define RETRY_MAX_NS 60000000000ll  /* doubling up to a minute */

/* Delete the queued orphans (retry_lock held; dropped meanwhile). */
static void reap_queued(struct eng *e)
{
	uint64_t *q = e->reap_q;
	size_t n = e->reap_n;
	e->reap_q = NULL;
	e->reap_n = e->reap_cap = 0;
	e->reap_last = eng_mono_ns();
	pthread_mutex_unlock(&e->retry_lock);
	(void)ein_reap_batch(e, q, n); /* what fails is queued again */
	free(q);
	pthread_mutex_lock(&e->retry_lock);
}

/* Stores parked bytes in the background: the first retry 1 s after the
 * first parked failure, then with doubling delays while some fail, back
 * to 1 s once a pass stored everything.  Sleeps while nothing is parked.
 * Also deletes the orphans ein_reap_later queued, REAP_DELAY_NS after the
 * previous deletion (after one failed, at reap_retry_at).  Not the committer: it takes einode locks and waits
 * for commits. */
static void *retry_main(void *arg)
{
	struct eng *e = arg;
	int64_t delay = RETRY_MIN_NS, due = 0;

	pthread_mutex_lock(&e->retry_lock);
	while (!e->retry_quit) {
		int64_t now = eng_mono_ns(), reap_due = e->reap_last + REAP_DELAY_NS;
		/* after a failed deletion: not before its backoff */
		if (reap_due < e->reap_retry_at)
			reap_due = e->reap_retry_at;
		if (e->reap_n > 0 &&
		    (now >= reap_due || (e->reap_n >= REAP_MAX && now >= e->reap_retry_at))) {
			reap_queued(e);
			continue;
		}
		if (atomic_exchange(&e->recheck_due, false)) {
			/* a commit nobody waited for failed: store it again now
			 * (what fails again is parked, with the backoff) */
			pthread_mutex_unlock(&e->retry_lock);
			(void)eng_retry_parked(e, true);
			pthread_mutex_lock(&e->retry_lock);
			continue;
		}
		if (atomic_load(&e->parked_total) == 0) {
			delay = RETRY_MIN_NS;
			due = 0;
			if (e->reap_n > 0)
				eng_cond_wait_ns(&e->retry_cond, &e->retry_lock, reap_due - now);
			else
				pthread_cond_wait(&e->retry_cond, &e->retry_lock);
			continue;
		}
		if (due == 0)
			due = now + delay;
		if (now < due) {
			int64_t w = due - now;
			if (e->reap_n > 0 && reap_due - now < w)
				w = reap_due - now;
			eng_cond_wait_ns(&e->retry_cond, &e->retry_lock, w);
			continue;
		}
		pthread_mutex_unlock(&e->retry_lock);
		bool clear = eng_retry_parked(e, false);
		pthread_mutex_lock(&e->retry_lock);
		delay = clear ? RETRY_MIN_NS : delay * 2 < RETRY_MAX_NS ? delay * 2 : RETRY_MAX_NS;
		due = 0;
	}
	if (e->reap_n > 0)
		reap_queued(e); /* retry_quit set: ein_reap_later queues no more */
	pthread_mutex_unlock(&e->retry_lock);
	return NULL;
}

int wb_start(struct eng *e)
{
	int rc;
	e->wb_running = true;
	rc = pthread_create(&e->committer, NULL, committer_main, e);
	if (rc) {
		e->wb_running = false;
		return -rc;
	}
	rc = pthread_create(&e->retry_thread, NULL, retry_main, e);
	if (rc)
		return -rc; /* eng_store_close stops the committer */
	e->retry_running = true;
	return 0;
}

void wb_retry_stop(struct eng *e)
{
	if (!e->retry_running)
		return;
	eng_thread_stop(&e->retry_lock, &e->retry_cond, &e->retry_quit, e->retry_thread);
	/* the committer reads it under retry_lock (reap_push_locked) */
	pthread_mutex_lock(&e->retry_lock);
	e->retry_running = false;
	pthread_mutex_unlock(&e->retry_lock);
}

void wb_stop(struct eng *e)
{
	wb_retry_stop(e);
	if (!e->wb_running)
		return;
	eng_thread_stop(&e->plock, &e->pcond, &e->stop, e->committer);
	pthread_mutex_lock(&e->plock);
	e->wb_running = false;
	pthread_cond_broadcast(&e->pcond);
	pthread_mutex_unlock(&e->plock);
	for (unsigned i = 0; i < PEND_BUCKETS; i++) {
		while (e->pend[i]) {
			struct pend *p = e->pend[i];
			e->pend[i] = p->next;
			free(p);
		}
	}
}
