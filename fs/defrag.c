/*
 * defrag.c - overwrite amplification repaired when idle (engine, private).
 *
 * An overwrite in place (pwrite into a file's middle, dd conv=notrunc,
 * sqlite, a log rewritten in place) cuts new chunks for the written range
 * only: the old chunks it covers in part stay mapped by what is left of
 * their extents (idx_file_punch splits them), and a chunk is stored whole
 * while any piece of it is mapped.  A 149 KiB file patched 50 times with
 * 100 KiB writes held 805 KB of frames; a fresh copy takes 153 KB.
 *
 * When the store is idle (rb_idle: the rebase thread's idle spells, or
 * eng_rebase on demand) a candidate file's *waste* is measured from its
 * extents: for each chunk that only extents of this file map, and only in
 * part, the share of its frame they leave unmapped (frame_len * unmapped /
 * raw_len, each chunk once).  "Only this file": the chunk's refcount is
 * the number of the file's partial extents on it, so no other file (a
 * copy, a dedup), no whole extent and no delta coded against it (a series
 * reference) needs it; such a chunk stays stored whatever this file does,
 * so it is neither counted nor rewritten.  A file whose waste is at least
 * DF_MIN_WASTE and at least a quarter of the stored bytes its extents are
 * charged (what its current bytes cost) has those partial extents rewritten
 * through the write path: their bytes read and buffered again as they are,
 * cut by the chunker (its wholly mapped neighbours are untouched), coded
 * and committed like a write.  The old chunks lose their last reference at
 * that commit and their frames are dead bytes for the online gc, as for a
 * deleted file.  So the frames a file holds stay within 1.25 x its charged
 * bytes + 64 KiB, and a large file is not rewritten for a few patches (a
 * 10 GB checkpoint patched once keeps a partial chunk or two: a rewrite
 * would cost more than it saves).
 *
 * The rewrite takes the file's einode lock exclusively from the read of a
 * piece (at most DF_PIECE bytes: memory stays bounded) to its commit, and
 * only for a file with nothing buffered or in flight (wb_idle); no write
 * can come in between, so the bytes buffered are the file's current ones.
 * Under the lock, each range's extents are compared with those measured (in
 * an earlier snapshot): a range changed meanwhile is skipped.  Its batches
 * keep the inode's times (batch.keep_times) and note nothing for defrag
 * (batch.defrag); what fails to store is dropped, the same bytes being
 * stored already.  Readers wait for the lock (one piece); one on an older
 * snapshot reads the old chunks, or retries on a fresh snapshot if they
 * were freed (-ESTALE), as after any write.  Hard links are one inode.
 *
 * Candidates: batch_apply notes an inode whose commit wrote below its
 * committed size (an overwrite: appends, and writes after a truncate to
 * zero, are not), eng_fallocate one it punched a hole in; a bounded FIFO
 * under rb_lock, one entry an inode.  On overflow and once per mount every
 * inode is looked at instead, one at a time from a cursor, stopping when
 * the store stops being idle.  A file is measured DF_WALK_MAX extents at a
 * time (a large file comes back, queued with where to go on).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>

#include "fs/engine_i.h"

#define DF_MIN_WASTE (64u << 10) /* less is not worth an encode */
#define DF_WASTE_SHARE 4u       /* and at least 1/4 of the charged bytes */
#define DF_PIECE (4u << 20)     /* bytes read and rewritten under one lock hold */
#define DF_PARTS_MAX 16384u     /* partial extents kept per measure */
#define DF_WALK_MAX (1u << 18)  /* extents walked per measure (16 GiB of 64 KiB chunks) */


/* An extent mapping part of its chunk. */
struct df_part {
	struct idx_extent x;
	uint32_t raw_len, frame_len, refcount;
	uint32_t pos;  /* index in offset order */
	bool rewrite;
};

/* ------------------------------------------------------------------------ */
/* candidates                                                                */

/* Queue ino (rb_lock held); an inode queued already goes on from the
 * smaller offset. */
static void cand_push_locked(struct eng *e, uint64_t ino, uint64_t from)
{
	for (size_t i = e->dfq.head; i < e->dfq.n; i++) {
		struct df_cand *c = fifo_at(&e->dfq, i);
		if (c->ino == ino) {
			if (from < c->from)
				c->from = from;
			return;
		}
	}
	struct df_cand *slot = fifo_push(&e->dfq);
	if (slot) {
		*slot = (struct df_cand){ ino, from };
	} else if (!e->df_rescan) { /* full: every inode is looked at */
		e->df_rescan = true;
		e->df_scan_from = 0;
	}
}

static void cand_push(struct eng *e, uint64_t ino, uint64_t from)
{
	pthread_mutex_lock(&e->rb_lock);
	if (!e->rb_quit)
		cand_push_locked(e, ino, from);
	pthread_mutex_unlock(&e->rb_lock);
}

void df_note(struct eng *e, uint64_t ino)
{
	if (!e->o.rebase)
		return; /* idle work is off */
	pthread_mutex_lock(&e->rb_lock);
	if (!e->rb_quit) {
		cand_push_locked(e, ino, 0);
		pthread_cond_signal(&e->rb_cond);
	}
	pthread_mutex_unlock(&e->rb_lock);
}

bool df_work_locked(const struct eng *e)
{
	return !fifo_empty(&e->dfq) || e->df_rescan;
}

void df_stop(struct eng *e)
{
	pthread_mutex_lock(&e->rb_lock);
	fifo_free(&e->dfq);
	pthread_mutex_unlock(&e->rb_lock);
}

static bool cand_pop(struct eng *e, struct df_cand *out)
{
	pthread_mutex_lock(&e->rb_lock);
	const struct df_cand *c = fifo_pop(&e->dfq);
	if (c)
		*out = *c;
	pthread_mutex_unlock(&e->rb_lock);
	return c != NULL;
}

struct scan_ctx {
	uint64_t ino;
};

static int scan_cb(void *arg, const struct idx_inode *in)
{
	struct scan_ctx *s = arg;
	if (!S_ISREG(in->mode) || in->nlink == 0 || in->size == 0)
		return 0;
	s->ino = in->ino;
	return 1;
}

/* The scan's next regular file (0: the scan is over, or none is due). */
static uint64_t scan_next(struct eng *e)
{
	struct scan_ctx s = { 0 };
	struct idx_txn *t;
	uint64_t from;

	pthread_mutex_lock(&e->rb_lock);
	from = e->df_rescan ? e->df_scan_from : 0;
	bool due = e->df_rescan;
	pthread_mutex_unlock(&e->rb_lock);
	if (!due || idx_txn_begin(e->idx, true, &t) < 0)
		return 0;
	int rc = idx_inode_iter_from(t, from, scan_cb, &s);
	idx_txn_abort(t);
	if (rc < 0)
		return 0; /* the next mount scans again */
	pthread_mutex_lock(&e->rb_lock);
	if (e->df_scan_from == from) { /* an overflow restarts it meanwhile */
		e->df_scan_from = s.ino + 1;
		e->df_rescan = s.ino != 0;
	}
	pthread_mutex_unlock(&e->rb_lock);
	return s.ino;
}

/* ------------------------------------------------------------------------ */
/* measure                                                                   */

struct measure {
	struct eng *e;
	struct idx_txn *t;
	struct df_part *parts;
	size_t n;
	uint64_t charged; /* stored bytes the walked extents are charged */
	unsigned walked;
	uint64_t next;    /* where a later measure goes on, 0: the file's end */
	int rc;
};

static int measure_cb(void *arg, const struct idx_extent *x)
{
	struct measure *m = arg;
	struct idx_chunk c;

	if (m->walked == DF_WALK_MAX || m->n == DF_PARTS_MAX) {
		m->next = x->off ? x->off : 1;
		return 1;
	}
	m->walked++;
	m->rc = idx_chunk_get(m->t, x->fp, &c);
	if (m->rc < 0)
		return 1;
	if (c.raw_len == 0)
		return 0;
	m->charged += (uint64_t)c.frame_len * x->len / c.raw_len;
	if (x->len >= c.raw_len)
		return 0;
	struct df_part *p = &m->parts[m->n];
	p->x = *x;
	p->raw_len = c.raw_len;
	p->frame_len = c.frame_len;
	p->refcount = c.refcount;
	p->pos = (uint32_t)m->n;
	p->rewrite = false;
	m->n++;
	return 0;
}

static int part_fp_cmp(const void *a, const void *b)
{
	const struct df_part *x = a, *y = b;
	int c = memcmp(x->x.fp, y->x.fp, FP_LEN);
	return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Measure ino's extents from offset from: the partial extents to rewrite
 * (rewrite set, in offset order in parts[0..*n)) and their waste.  Returns
 * the waste in stored bytes (0: nothing worth it) or negative errno. */
static int64_t measure(struct eng *e, uint64_t ino, uint64_t from, struct df_part *parts,
                       struct df_part *sorted, size_t *n, uint64_t *next)
{
	struct idx_txn *t;
	struct idx_inode in;
	struct measure m = { .e = e, .parts = parts };
	uint64_t waste = 0;

	*n = 0;
	*next = 0;
	int rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		return rc;
	m.t = t;
	rc = idx_inode_get(t, ino, &in);
	if (rc == -ENOENT) {
		rc = 0; /* deleted meanwhile */
		goto out;
	}
	if (rc < 0 || !S_ISREG(in.mode) || in.nlink == 0)
		goto out;
	rc = idx_extent_iter(t, ino, from, UINT64_MAX, measure_cb, &m);
	if (rc >= 0)
		rc = m.rc;
	if (rc < 0)
		goto out;
	*next = m.next;
	/* each chunk once: group the parts by chunk */
	memcpy(sorted, parts, m.n * sizeof(*parts));
	qsort(sorted, m.n, sizeof(*sorted), part_fp_cmp);
	for (size_t i = 0, j; i < m.n; i = j) {
		uint64_t mapped = 0;
		for (j = i; j < m.n && memcmp(sorted[j].x.fp, sorted[i].x.fp, FP_LEN) == 0; j++)
			mapped += sorted[j].x.len;
		/* another file, a whole extent or a delta needs it (or parts of
		 * it lie past this measure): it stays stored */
		if (sorted[i].refcount != j - i || mapped >= sorted[i].raw_len)
			continue;
		waste += (uint64_t)sorted[i].frame_len * (sorted[i].raw_len - mapped) / sorted[i].raw_len;
		for (size_t k = i; k < j; k++)
			parts[sorted[k].pos].rewrite = true;
	}
	if (waste < DF_MIN_WASTE || waste * DF_WASTE_SHARE < m.charged) {
		waste = 0;
		goto out;
	}
	size_t keep = 0;
	for (size_t i = 0; i < m.n; i++)
		if (parts[i].rewrite)
			parts[keep++] = parts[i];
	*n = keep;
out:
	idx_txn_abort(t);
	return rc < 0 ? rc : (int64_t)waste;
}

/* ------------------------------------------------------------------------ */
/* rewrite                                                                   */

struct same_ctx {
	const struct df_part *p;
	size_t k, n;
	bool same;
};

static int same_cb(void *arg, const struct idx_extent *x)
{
	struct same_ctx *s = arg;
	const struct idx_extent *w = s->k < s->n ? &s->p[s->k].x : NULL;
	if (!w || x->off != w->off || x->len != w->len || x->chunk_off != w->chunk_off ||
	    memcmp(x->fp, w->fp, FP_LEN) != 0) {
		s->same = false;
		return 1;
	}
	s->k++;
	return 0;
}

/* Rewrite parts[0..n) (offset order; runs of adjacent ones are one
 * range) with ei->lock held exclusively.  Returns bytes rewritten. */
static int64_t rewrite_piece(struct eng *e, struct einode *ei, const struct df_part *p, size_t n,
                             uint8_t *buf)
{
	struct idx_txn *t;
	int64_t done = 0;
	int rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		return rc;
	for (size_t i = 0, j; rc >= 0 && i < n; i = j) {
		uint64_t a = p[i].x.off, b = a + p[i].x.len;
		for (j = i + 1; j < n && p[j].x.off == b; j++)
			b += p[j].x.len;
		/* changed since the measure (a truncate, a copy, a punch):
		 * left for the next one */
		struct same_ctx s = { p + i, 0, j - i, true };
		rc = idx_extent_iter(t, ei->ino, a, b, same_cb, &s);
		if (rc < 0 || !s.same || s.k != s.n || b > ei->size)
			continue;
		rc = eng_read_stored(e, t, ei->ino, a, (size_t)(b - a), buf);
		if (rc >= 0)
			rc = wb_rewrite(e, ei, a, buf, (size_t)(b - a));
		if (rc >= 0)
			done += (int64_t)(b - a);
	}
	idx_txn_abort(t); /* before the commit: no snapshot held across it */
	if (rc >= 0 && done > 0)
		rc = wb_rewrite_store(e, ei);
	else
		wb_discard(e, ei); /* what was buffered before a failure */
	return rc < 0 ? rc : done;
}

/* Rewrite parts[0..n) of ino, DF_PIECE bytes at a time.  Returns bytes
 * rewritten, or negative errno; *stopped: the store stopped being idle
 * (or is closing) before the end. */
static int64_t rewrite(struct eng *e, uint64_t ino, const struct df_part *p, size_t n,
                       bool idle_only, bool *stopped)
{
	struct einode *ei = ein_get(e, ino, true, 0, 0);
	uint8_t *buf = NULL;
	int64_t total = 0;
	int rc = 0;

	*stopped = false;
	if (!ei)
		return -ENOMEM;
	/* a piece: whole extents up to DF_PIECE bytes (one extent, a chunk
	 * of at most the chunker's maximum, may pass it) */
	size_t cap = DF_PIECE;
	for (size_t i = 0; i < n; i++)
		if (p[i].x.len > cap)
			cap = p[i].x.len;
	buf = malloc(cap);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0, j; i < n; i = j) {
		size_t bytes = p[i].x.len;
		for (j = i + 1; j < n && bytes + p[j].x.len <= DF_PIECE; j++)
			bytes += p[j].x.len;
		pthread_mutex_lock(&e->rb_lock);
		bool quit = e->rb_quit;
		pthread_mutex_unlock(&e->rb_lock);
		/* a write, close, truncate... of the file waiting for the lock
		 * (since the last piece) has not made the store busy yet: it
		 * goes first, and the file is measured again later */
		if (quit || (idle_only && !rb_idle(e)) || atomic_load(&ei->lock_wanted) > 0) {
			*stopped = true;
			break;
		}
		pthread_rwlock_wrlock(&ei->lock);
		/* written meanwhile: measured again later (the drain stops
		 * here: the store is not idle).  Bytes parked by a failed
		 * write-back are the retry thread's: left alone, its commit
		 * notes the file again if it overwrites */
		if (!wb_idle(e, ei)) {
			/* a failed write-back waiting for its writer is no
			 * write in progress: left alone like parked bytes (not
			 * measured again every second while the disk is full) */
			*stopped = atomic_load(&ei->parked) == 0 && !wb_has_error(e, ei);
			pthread_rwlock_unlock(&ei->lock);
			break;
		}
		int64_t r = ein_load_size(e, ei, true);
		if (r >= 0)
			r = rewrite_piece(e, ei, p + i, j - i, buf);
		pthread_rwlock_unlock(&ei->lock);
		if (r == -ENOENT || r == -EBUSY)
			break; /* deleted meanwhile; an error waits for its writer */
		if (r == -ESTALE) { /* a chunk freed under the snapshot: later */
			*stopped = true;
			break;
		}
		if (r < 0) {
			rc = (int)r;
			break;
		}
		total += r;
	}
out:
	free(buf);
	ein_unuse(e, ei);
	return rc < 0 ? rc : total;
}

/* Measure one candidate and rewrite it if it wastes enough.  Returns 1 if
 * rewritten, 0 if not, negative errno; *stopped as rewrite(). */
static int df_file(struct eng *e, const struct df_cand *c, bool idle_only, bool *stopped)
{
	struct df_part *parts = malloc(2 * DF_PARTS_MAX * sizeof(*parts));
	size_t n = 0;
	uint64_t next = 0;
	int64_t done = 0, waste;
	int rc = 0;

	*stopped = false;
	if (!parts)
		return -ENOMEM;
	waste = measure(e, c->ino, c->from, parts, parts + DF_PARTS_MAX, &n, &next);
	if (waste < 0) {
		rc = (int)waste;
		goto out;
	}
	if (n > 0) {
		done = rewrite(e, c->ino, parts, n, idle_only, stopped);
		if (done < 0)
			rc = (int)done;
		else if (done > 0)
			syslog(LOG_INFO, "mixfs: inode %" PRIu64 " overwritten in place: %" PRId64
			       " bytes rewritten to free about %" PRId64 " stored bytes", c->ino, done,
			       waste);
	}
	if (rc < 0 || *stopped)
		next = c->from; /* measured again in the next idle spell */
	if (next || rc < 0 || *stopped)
		cand_push(e, c->ino, next);
out:
	free(parts);
	return rc < 0 ? rc : done > 0;
}

int df_drain(struct eng *e, bool idle_only, uint64_t *files)
{
	uint64_t nfiles = 0;
	int rc = 0;

	for (;;) {
		struct df_cand c = { 0, 0 };
		bool stopped = false;

		pthread_mutex_lock(&e->rb_lock);
		bool quit = e->rb_quit;
		pthread_mutex_unlock(&e->rb_lock);
		if (quit || (idle_only && !rb_idle(e)))
			break;
		if (!cand_pop(e, &c) && (c.ino = scan_next(e)) == 0)
			break;
		rc = df_file(e, &c, idle_only, &stopped);
		if (rc < 0)
			break; /* the file is queued again */
		nfiles += (uint64_t)rc;
		rc = 0;
		if (stopped)
			break;
	}
	atomic_fetch_add(&e->df_files, nfiles);
	if (files)
		*files = nfiles;
	return rc;
}
