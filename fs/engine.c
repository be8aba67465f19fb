/*
 * engine.c - the mixfs file system engine: namespace operations on the
 * index, the write pipeline (dirty buffer -> chunker -> fingerprint ->
 * dedup -> compression workers -> pack -> metadata commit) and the read
 * pipeline (extent lookup -> decoded-chunk cache -> pack read + decode).
 *
 * The write pipeline (dirty buffers, batches, group commit) lives in
 * writeback.c; the lock order is documented in engine_i.h.
 *
 * Invariants:
 * - Index records that reference a frame commit only after pack_sync()
 *   returned 0 for that frame (crash consistency).
 * - Dirty data is dropped from memory only after the transaction that maps
 *   it committed, so reads overlaying the dirty buffer never see a gap.
 * - Chunks are content addressed: cached decoded data for a fingerprint is
 *   valid forever, whatever happens to the chunk record.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>

#include "fs/engine_i.h"

/* ------------------------------------------------------------------------ */
/* small helpers                                                             */

int64_t eng_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t eng_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Times are kept as int64 nanoseconds (1677-09-21 to 2262-04-11): one
 * outside that range (touch -d 2300-01-01, an archive's) is clamped to
 * its end, as ext4 clamps to its own, instead of wrapping around. */
static int64_t ts_ns(const struct timespec *ts)
{
	const int64_t max_s = INT64_MAX / 1000000000 - 1;

	if (ts->tv_sec > max_s)
		return max_s * 1000000000 + 999999999;
	if (ts->tv_sec < -max_s)
		return -max_s * 1000000000;
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static struct timespec ns_ts(int64_t ns)
{
	struct timespec ts;
	ts.tv_sec = ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	if (ts.tv_nsec < 0) {
		ts.tv_nsec += 1000000000;
		ts.tv_sec--;
	}
	return ts;
}

static void fill_stat(const struct idx_inode *in, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_size = (off_t)in->size;
	st->st_blksize = 1 << 20;
	st->st_blocks = (blkcnt_t)((in->stored_bytes + 511) / 512);
	if (S_ISLNK(in->mode) || S_ISDIR(in->mode))
		st->st_blocks = 0;
	st->st_atim = ns_ts(in->atime_ns);
	st->st_mtim = ns_ts(in->mtime_ns);
	st->st_ctim = ns_ts(in->ctime_ns);
}

static int check_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return -EINVAL;
	if (n > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	if (strchr(name, '/'))
		return -EINVAL;
	return (int)n;
}

/* ------------------------------------------------------------------------ */
/* write transactions: one writer, serialized by wlock                       */

/* lazy: idx_txn_begin_lazy instead of a synced transaction */
static int wtxn_begin(struct eng *e, bool lazy, struct idx_txn **t)
{
	int rc;
	if (e->o.read_only)
		return -EROFS;
	pthread_mutex_lock(&e->wlock);
	rc = lazy ? idx_txn_begin_lazy(e->idx, t) : idx_txn_begin(e->idx, false, t);
	if (rc < 0)
		pthread_mutex_unlock(&e->wlock);
	return rc;
}

int eng_wtxn_begin(struct eng *e, struct idx_txn **t)
{
	return wtxn_begin(e, false, t);
}

/* Commit if rc >= 0, else abort; releases wlock; returns the final rc. */
int eng_wtxn_end(struct eng *e, struct idx_txn *t, int rc)
{
	if (rc >= 0) {
		int crc = idx_txn_commit(t);
		if (crc < 0) {
			/* the caller returns it; say where (LMDB logs nothing) */
			syslog(LOG_ERR, "mixfs: index commit in %s failed: %s", e->store,
			       strerror(-crc));
			rc = crc;
		}
	} else {
		idx_txn_abort(t);
	}
	pthread_mutex_unlock(&e->wlock);
	return rc;
}

int eng_wtxn_begin_ns(struct eng *e, struct idx_txn **t)
{
	/* ns_running: ns_sync_ms > 0 and not read-only */
	int rc = wtxn_begin(e, e->ns_running, t);
	if (rc >= 0 && e->ns_running && !atomic_load(&e->ns_watch)) {
		pthread_mutex_lock(&e->ns_lock);
		pthread_cond_signal(&e->ns_cond);
		pthread_mutex_unlock(&e->ns_lock);
	}
	return rc;
}

/* Syncs the index ns_sync_ms after its first unsynced commit (a failed
 * sync: again after a second).  ns_watch and the index's armed state are
 * each set before the other is read (sequentially consistent), so either
 * this thread sees the commit or its begin sees ns_watch false and wakes
 * it. */
static void *nsync_main(void *arg)
{
	struct eng *e = arg;
	int64_t retry_at = 0;

	pthread_mutex_lock(&e->ns_lock);
	while (!e->ns_quit) {
		int64_t since = idx_unsynced_since(e->idx), now = eng_mono_ns();
		if (since == 0) {
			atomic_store(&e->ns_watch, false);
			if (idx_unsynced_since(e->idx) == 0)
				pthread_cond_wait(&e->ns_cond, &e->ns_lock);
			continue;
		}
		atomic_store(&e->ns_watch, true);
		int64_t due = since + (int64_t)e->o.ns_sync_ms * 1000000;
		if (due < retry_at)
			due = retry_at;
		if (now < due) {
			eng_cond_wait_ns(&e->ns_cond, &e->ns_lock, due - now);
			continue;
		}
		pthread_mutex_unlock(&e->ns_lock);
		int rc = idx_sync(e->idx);
		if (rc < 0)
			syslog(LOG_ERR, "mixfs: syncing the index of %s failed: %s (again in 1 s)",
			       e->store, strerror(-rc));
		pthread_mutex_lock(&e->ns_lock);
		retry_at = rc < 0 ? eng_mono_ns() + 1000000000 : 0;
	}
	pthread_mutex_unlock(&e->ns_lock);
	return NULL;
}

static int pack_id_alloc_cb(void *arg, uint32_t *id)
{
	struct eng *e = arg;
	struct idx_txn *t;
	int rc = eng_wtxn_begin(e, &t);
	if (rc < 0)
		return rc;
	rc = idx_pack_alloc(t, id);
	return eng_wtxn_end(e, t, rc);
}

/* ------------------------------------------------------------------------ */
/* inode table                                                               */

static struct einode *ein_find_locked(struct eng *e, uint64_t ino)
{
	struct einode *ei = e->itab[ino % ITAB_BUCKETS];
	while (ei && ei->ino != ino)
		ei = ei->next;
	return ei;
}

/* Get the in-memory inode for ino, creating it if asked.  The caller holds a
 * user reference until ein_put.  lookups/opens are added atomically with the
 * creation so a concurrent forget cannot free it in between. */
struct einode *ein_get(struct eng *e, uint64_t ino, bool create, uint64_t add_lookup,
                              uint32_t add_open)
{
	struct einode *ei;
	pthread_mutex_lock(&e->itab_lock);
	ei = ein_find_locked(e, ino);
	if (!ei && create) {
		ei = calloc(1, sizeof(*ei));
		if (ei) {
			ei->ino = ino;
			pthread_rwlock_init(&ei->lock, NULL);
			ei->next = e->itab[ino % ITAB_BUCKETS];
			e->itab[ino % ITAB_BUCKETS] = ei;
		}
	}
	if (ei) {
		ei->users++;
		ei->nlookup += add_lookup;
		ei->nopen += add_open;
	}
	pthread_mutex_unlock(&e->itab_lock);
	return ei;
}

static void ein_free(struct eng *e, struct einode *ei)
{
	wb_discard(e, ei);
	free(ei->segs);
	wb_hints_forget(e, ei);
	pthread_rwlock_destroy(&ei->lock);
	free(ei);
}

/* No lookups, opens or users (itab_lock held).  ei->inflight without
 * plock: every batch holds a user reference. */
static bool ein_unused_locked(const struct einode *ei)
{
	return ei->users == 0 && ei->nlookup == 0 && ei->nopen == 0 && ei->inflight == NULL;
}

static void ein_unhash_locked(struct eng *e, struct einode *ei)
{
	for (struct einode **pp = &e->itab[ei->ino % ITAB_BUCKETS]; *pp; pp = &(*pp)->next) {
		if (*pp == ei) {
			*pp = ei->next;
			break;
		}
	}
}

/* Drop a user reference (and optionally lookups/opens).  Returns true when
 * the inode left the table (no lookups, opens or users), or is unused but
 * stays for its parked bytes: the caller must then reap it if its link
 * count is zero (which drops those bytes). */
bool ein_put(struct eng *e, struct einode *ei, uint64_t sub_lookup, uint32_t sub_open)
{
	bool gone = false, reap = false;
	pthread_mutex_lock(&e->itab_lock);
	ei->users--;
	ei->nlookup = sub_lookup > ei->nlookup ? 0 : ei->nlookup - sub_lookup;
	ei->nopen = sub_open > ei->nopen ? 0 : ei->nopen - sub_open;
	/* ei->nsegs without ei->lock: a user-less inode has no writer */
	if (ein_unused_locked(ei)) {
		gone = ei->nsegs == 0;
		reap = !gone && atomic_load(&ei->parked);
		if (gone)
			ein_unhash_locked(e, ei);
	}
	pthread_mutex_unlock(&e->itab_lock);
	if (gone)
		ein_free(e, ei);
	return gone || reap;
}

/* Drop a user reference that came without lookups or opens (ei->lock not
 * held): an unlinked inode that leaves the table with it is reaped (else
 * it stayed an orphan until the next mount when a forget raced with the
 * call that held it). */
void ein_unuse(struct eng *e, struct einode *ei)
{
	uint64_t ino = ei->ino;
	if (ein_put(e, ei, 0, 0))
		ein_reap(e, ino);
}

/* ino was deleted: its in-memory inode goes if nobody uses it, with the
 * bytes a failed write-back left buffered (parked). */
static void ein_drop(struct eng *e, uint64_t ino)
{
	struct einode *ei;
	pthread_mutex_lock(&e->itab_lock);
	ei = ein_find_locked(e, ino);
	if (ei && ein_unused_locked(ei))
		ein_unhash_locked(e, ei);
	else
		ei = NULL;
	pthread_mutex_unlock(&e->itab_lock);
	if (!ei)
		return;
	if (ei->dirty)
		syslog(LOG_INFO, "mixfs: inode %" PRIu64 " deleted: %zu bytes it could not store dropped",
		       ino, ei->dirty);
	ein_free(e, ei);
}

/* The kernel learned of ino through a name in parent: one more lookup
 * reference (and open_count opens); parent is where series references
 * are looked for. */
static int ein_add_lookup(struct eng *e, uint64_t ino, uint64_t parent, uint32_t open_count)
{
	struct einode *ei = ein_get(e, ino, true, 1, open_count);
	if (!ei)
		return -ENOMEM;
	atomic_store(&ei->parent, parent);
	ein_unuse(e, ei);
	return 0;
}

/* Whether the kernel still references ino (lookups or opens). */
static bool ein_in_use(struct eng *e, uint64_t ino)
{
	struct einode *ei;
	bool used;
	pthread_mutex_lock(&e->itab_lock);
	ei = ein_find_locked(e, ino);
	used = ei && (ei->nlookup > 0 || ei->nopen > 0 || ei->users > 0);
	pthread_mutex_unlock(&e->itab_lock);
	return used;
}

/* Append ino to the reap queue (retry_lock held): false when the retry
 * thread does not take it (not running, quitting), the queue is at its
 * bound or cannot grow. */
static bool reap_push_locked(struct eng *e, uint64_t ino)
{
	if (!e->retry_running || e->retry_quit || e->reap_n >= REAP_QMAX)
		return false;
	if (e->reap_n == e->reap_cap) {
		size_t nc = e->reap_cap ? e->reap_cap * 2 : 256;
		uint64_t *q = realloc(e->reap_q, nc * sizeof(*q));
		if (q) {
			e->reap_q = q;
			e->reap_cap = nc;
		}
	}
	if (e->reap_n == e->reap_cap)
		return false;
	e->reap_q[e->reap_n++] = ino;
	if (e->reap_n == 1)
		pthread_cond_signal(&e->retry_cond);
	return true;
}

/* The deletion of inos failed with rc: queue them again, to be tried
 * after the backoff (what the queue cannot take stays an orphan in the
 * index, deleted at the next mount). */
static void reap_failed(struct eng *e, const uint64_t *inos, size_t n, int rc)
{
	size_t kept = 0;
	pthread_mutex_lock(&e->retry_lock);
	while (kept < n && reap_push_locked(e, inos[kept]))
		kept++;
	if (kept > 0) {
		int64_t b = atomic_load(&e->reap_backoff);
		b = b == 0 ? REAP_RETRY_MIN_NS : b < REAP_RETRY_MAX_NS / 2 ? 2 * b : REAP_RETRY_MAX_NS;
		atomic_store(&e->reap_backoff, b);
		e->reap_retry_at = eng_mono_ns() + b;
	}
	pthread_mutex_unlock(&e->retry_lock);
	syslog(LOG_ERR, "mixfs: deleting %zu unlinked inode(s) from %" PRIu64 ": %s (%s)", n,
	       inos[0], strerror(-rc),
	       kept == n ? "tried again later" : "some left for the next mount");
}

void ein_reap_kick(struct eng *e)
{
	if (atomic_load(&e->reap_backoff) == 0)
		return;
	pthread_mutex_lock(&e->retry_lock);
	e->reap_retry_at = 0;
	pthread_cond_signal(&e->retry_cond);
	pthread_mutex_unlock(&e->retry_lock);
}

/* One transaction deleting the unlinked, unused inodes among inos.  On a
 * failure before the commit, *bad is the index of the inode whose
 * deletion failed (its records damaged, as a rule: LMDB writes pages at
 * the commit; -ENOSPC is a full map, -ENOMEM memory: not its own), else
 * SIZE_MAX. */
static int reap_txn(struct eng *e, const uint64_t *inos, size_t n, size_t *bad)
{
	struct idx_txn *t;
	struct idx_inode in;
	bool gone[n];
	int rc;
	*bad = SIZE_MAX;
	rc = eng_wtxn_begin(e, &t);
	bool began = rc >= 0;
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		rc = idx_inode_get(t, inos[i], &in);
		/* A new lookup may have raced in; only reap unlinked, unused inodes. */
		gone[i] = rc == -ENOENT || (rc == 0 && in.nlink == 0 && !ein_in_use(e, inos[i]));
		if (rc == 0 && gone[i])
			rc = idx_inode_delete(t, inos[i]);
		else
			rc = rc == -ENOENT ? 0 : rc;
		if (rc < 0 && rc != -ENOSPC && rc != -ENOMEM)
			*bad = i;
	}
	if (rc >= 0 && e->reap_hook)
		rc = e->reap_hook(e);
	if (began)
		rc = eng_wtxn_end(e, t, rc);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (gone[i])
			ein_drop(e, inos[i]);
	return 0;
}

/* An unlinked, unused inode with more than reap_step extents loses them
 * from its end, reap_step per transaction, until that many are left (the
 * deletion's own transaction then stays small: deleting a file of a
 * million extents in one would keep ~300 MiB of LMDB pages dirty).  A
 * crash in between leaves an orphan with fewer extents, deleted by the
 * next mount as any orphan. */
static int reap_shrink(struct eng *e, uint64_t ino)
{
	unsigned step = e->reap_step ? e->reap_step : REAP_STEP;

	for (;;) {
		struct idx_txn *t;
		struct idx_inode in;
		/* a read first: most files have far fewer extents, and their
		 * deletion must not cost a commit more */
		int rc = idx_txn_begin(e->idx, true, &t);
		if (rc < 0)
			return rc;
		rc = idx_extent_count(t, ino, step + 1u);
		idx_txn_abort(t);
		if (rc <= (int)step)
			return rc < 0 ? rc : 0;
		rc = eng_wtxn_begin(e, &t);
		if (rc < 0)
			return rc;
		rc = idx_inode_get(t, ino, &in);
		if (rc == 0 && (in.nlink > 0 || ein_in_use(e, ino)))
			rc = -EBUSY; /* linked again or in use: not to be deleted */
		if (rc == 0)
			rc = idx_file_punch_last(t, &in, step);
		if (rc >= 0)
			rc = idx_inode_put(t, &in);
		if (rc >= 0 && e->reap_hook)
			rc = e->reap_hook(e);
		rc = eng_wtxn_end(e, t, rc);
		if (rc < 0)
			return rc == -EBUSY || rc == -ENOENT ? 0 : rc;
	}
}

/* After the last reference went away: delete the inodes that have no
 * links, in one transaction.  An inode whose own records fail (a damaged
 * index) stays an orphan (fsck reports it, the next mount tries again)
 * and the others are deleted without it: queued again with it, they would
 * fail with it at every retry, and so would every deletion queued after
 * them. */
int ein_reap_batch(struct eng *e, const uint64_t *inos, size_t n)
{
	uint64_t *rest = NULL;
	size_t bad;
	int rc;
	if (e->o.read_only || n == 0)
		return 0;
	/* large files first lose their extents in steps; a failure there
	 * fails reap_txn below as well, which knows what to do about it */
	for (size_t i = 0; i < n; i++)
		(void)reap_shrink(e, inos[i]);
	for (;;) {
		rc = reap_txn(e, inos, n, &bad);
		if (rc >= 0 || bad == SIZE_MAX)
			break;
		size_t b1;
		/* that inode alone: its own records, or the batch as a whole
		 * (an LMDB page spill on a full disk)?  Then all are queued */
		if (n > 1 && (reap_txn(e, &inos[bad], 1, &b1) >= 0 || b1 == SIZE_MAX)) {
			bad = SIZE_MAX;
			break;
		}
		syslog(LOG_ERR, "mixfs: deleting unlinked inode %" PRIu64 ": %s (left for the next mount)",
		       inos[bad], strerror(-rc));
		if (n == 1)
			break;
		if (!rest) {
			rest = malloc(n * sizeof(*rest));
			if (!rest) {
				bad = SIZE_MAX; /* queued again, it with the others */
				break;
			}
			memcpy(rest, inos, n * sizeof(*rest));
			inos = rest;
		}
		memmove(rest + bad, rest + bad + 1, (n - bad - 1) * sizeof(*rest));
		n--;
	}
	if (rc < 0) {
		if (bad == SIZE_MAX)
			reap_failed(e, inos, n, rc);
		free(rest);
		return rc;
	}
	free(rest);
	if (atomic_load(&e->reap_backoff) != 0) { /* the space came back */
		pthread_mutex_lock(&e->retry_lock);
		atomic_store(&e->reap_backoff, 0);
		e->reap_retry_at = 0;
		pthread_mutex_unlock(&e->retry_lock);
		syslog(LOG_INFO, "mixfs: unlinked inodes deleted again");
	}
	return 0;
}

void ein_reap(struct eng *e, uint64_t ino)
{
	(void)ein_reap_batch(e, &ino, 1);
}

/* ein_reap for the last forget of an unlinked inode: now when no inode
 * was reaped in the last REAP_DELAY_NS (a single rm behaves as it always
 * did), else queued for the retry thread, which deletes the queue in one
 * transaction REAP_DELAY_NS after the last deletion (rm -rf: one synced
 * commit a file instead of two).  Now as well if the retry thread does
 * not run or the queue cannot (or must not) grow. */
void ein_reap_later(struct eng *e, uint64_t ino, bool queue)
{
	bool queued = false;
	if (e->o.read_only)
		return;
	pthread_mutex_lock(&e->retry_lock);
	int64_t now = eng_mono_ns();
	if (queue || e->reap_n > 0 || now - e->reap_last < REAP_DELAY_NS)
		queued = reap_push_locked(e, ino);
	if (!queued)
		e->reap_last = now;
	pthread_mutex_unlock(&e->retry_lock);
	if (!queued)
		ein_reap(e, ino);
}

/* Link count reached zero inside transaction t: delete now if the kernel
 * no longer knows the inode, else mark it orphan (deleted at last forget,
 * or at the next mount after a crash). */
static int unlinked_locked(struct eng *e, struct idx_txn *t, struct idx_inode *in)
{
	if (ein_in_use(e, in->ino)) {
		int rc = idx_inode_put(t, in);
		return rc < 0 ? rc : idx_orphan_add(t, in->ino);
	}
	return idx_inode_delete(t, in->ino);
}

/* ------------------------------------------------------------------------ */
/* attributes                                                                */

static int read_inode(struct eng *e, uint64_t ino, struct idx_inode *in);

/* Overlay in-memory state (unflushed size, mtime; with pending, bytes not
 * stored yet, estimated: wb_pending_bytes) onto a stored inode.  true when
 * bytes are pending: st_blocks will change at their commit. */
static bool overlay_attr(struct eng *e, struct idx_inode *in, bool pending)
{
	struct einode *ei = ein_get(e, in->ino, false, 0, 0);
	bool unsettled = false;
	if (!ei)
		return false;
	pthread_rwlock_rdlock(&ei->lock);
	if (ei->size_valid) {
		in->size = ei->size;
		if (ei->mtime_ns > in->mtime_ns) {
			in->mtime_ns = ei->mtime_ns;
			/* not back: a rename or link after a close that left
			 * its bytes to the group commit changed ctime later */
			if (ei->mtime_ns > in->ctime_ns)
				in->ctime_ns = ei->mtime_ns;
		}
	}
	/* bytes not stored yet count as stored raw, like ext4's delayed
	 * allocation: st_blocks 0 with a non-zero size means "all hole" to
	 * tar --sparse (and the kernel caches the attributes), which would
	 * archive the data as zeros */
	if (pending) {
		/* the caller's snapshot may be older than a commit of bytes
		 * that were pending then (a close or fsync holding ei->lock
		 * stored them while we waited for it): when that would show
		 * no blocks for data, stored_bytes from a snapshot taken after
		 * counting what is pending, so that every byte counts at least
		 * once (a batch committing in between counts twice: an
		 * estimate, never 0 for data).  Only 0 matters (tar), so the
		 * usual getattr takes no second snapshot. */
		uint64_t p = wb_pending_bytes(e, ei);
		struct idx_inode now;
		if (p == 0 && in->stored_bytes == 0 && in->size > 0 &&
		    read_inode(e, in->ino, &now) == 0)
			in->stored_bytes = now.stored_bytes;
		in->stored_bytes += p;
		unsettled = p > 0;
	}
	pthread_rwlock_unlock(&ei->lock);
	ein_unuse(e, ei);
	return unsettled;
}

static int read_inode(struct eng *e, uint64_t ino, struct idx_inode *in)
{
	struct idx_txn *t;
	int rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		return rc;
	rc = idx_inode_get(t, ino, in);
	idx_txn_abort(t);
	return rc;
}

static void make_attr(const struct idx_inode *in, bool unsettled, struct eng_attr *out)
{
	if (!out)
		return;
	fill_stat(in, &out->st);
	out->generation = 1;
	out->unsettled = unsettled;
}

int eng_getattr(struct eng *e, uint64_t ino, struct eng_attr *out)
{
	struct idx_inode in;
	int rc = read_inode(e, ino, &in);
	if (rc < 0)
		return rc;
	make_attr(&in, overlay_attr(e, &in, true), out);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* chunk loading (read path)                                                 */

static struct codec_ctx *thread_ctx(struct eng *e)
{
	struct codec_ctx *c = pthread_getspecific(e->ctx_key);
	if (!c) {
		c = codec_ctx_create();
		if (c)
			pthread_setspecific(e->ctx_key, c);
	}
	return c;
}

static void log_bad_chunk(const struct idx_chunk *c, uint64_t ino, uint64_t off, int rc)
{
	char hex[2 * FP_LEN + 1];
	fp_hex(c->fp, hex);
	syslog(LOG_ERR, "mixfs: inode %" PRIu64 " offset %" PRIu64 ": chunk %.16s in pack %08" PRIx32
	       " at %" PRIu64 " unreadable: %s", ino, off, hex, c->pack_id, c->pack_off, strerror(-rc));
}

/* Decoded data of chunk fp, held in the cache.  depth bounds reference
 * chains (a corrupt index cannot make us recurse forever). */
/* A chunk some thread is reading and decoding right now: others that need
 * it wait for that thread instead of doing the same I/O and decode (the
 * readahead workers and the reader race for the next chunk). */
struct loading {
	struct loading *next;
	uint8_t fp[FP_LEN];
	unsigned refs;
	bool done;
	/* waiters of this chunk only: a cold sequential read has several
	 * FUSE threads waiting on different chunks, and one condition for all
	 * woke every one of them at every chunk (~4 context switches a chunk) */
	pthread_cond_t cond;
};

static void loading_free(struct loading *l)
{
	pthread_cond_destroy(&l->cond);
	free(l);
}

static int chunk_load_once(struct eng *e, struct idx_txn *t, const uint8_t fp[FP_LEN],
                           uint64_t ino, uint64_t off, unsigned depth, struct cache_entry **out);

/* Claim fp for loading.  Returns the claim, or NULL when another thread
 * is loading it (after waiting for that thread to finish) or on ENOMEM
 * (*waited tells which). */
static struct loading *loading_begin(struct eng *e, const uint8_t fp[FP_LEN], bool wait,
                                     bool *waited)
{
	struct loading *l;
	*waited = false;
	pthread_mutex_lock(&e->load_lock);
	for (l = e->loading; l; l = l->next)
		if (memcmp(l->fp, fp, FP_LEN) == 0)
			break;
	if (l) {
		*waited = true;
		if (wait) {
			l->refs++;
			while (!l->done)
				pthread_cond_wait(&l->cond, &e->load_lock);
			if (--l->refs == 0)
				loading_free(l);
		}
		pthread_mutex_unlock(&e->load_lock);
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (l && pthread_cond_init(&l->cond, NULL) != 0) {
		free(l);
		l = NULL;
	}
	if (l) {
		memcpy(l->fp, fp, FP_LEN);
		l->refs = 1;
		l->next = e->loading;
		e->loading = l;
	}
	pthread_mutex_unlock(&e->load_lock);
	return l;
}

static void loading_end(struct eng *e, struct loading *l)
{
	struct loading **pp;
	if (!l)
		return;
	pthread_mutex_lock(&e->load_lock);
	for (pp = &e->loading; *pp != l; pp = &(*pp)->next)
		;
	*pp = l->next;
	l->done = true;
	pthread_cond_broadcast(&l->cond);
	if (--l->refs == 0)
		loading_free(l);
	pthread_mutex_unlock(&e->load_lock);
}

int eng_chunk_load(struct eng *e, struct idx_txn *t, const uint8_t fp[FP_LEN], uint64_t ino,
                   uint64_t off, unsigned depth, struct cache_entry **out)
{
	struct loading *l;
	bool waited;
	int rc;

	*out = cache_get(e->cache, fp);
	if (*out)
		return 0;
	if (depth > 0) /* reference loads never wait: a corrupt cycle cannot deadlock */
		return chunk_load_once(e, t, fp, ino, off, depth, out);
	l = loading_begin(e, fp, true, &waited);
	if (waited) {
		*out = cache_get(e->cache, fp);
		if (*out)
			return 0;
		/* the loader failed (or the entry was evicted): load it here */
	}
	rc = chunk_load_once(e, t, fp, ino, off, depth, out);
	loading_end(e, l);
	return rc;
}

/* Decode (or, stored raw, verify in place) the frame of chunk c read whole
 * and put the data in the cache; takes ownership of frame.  -EBADMSG on
 * corruption, and for a frame that is not the one c names (a damaged
 * record pointing at another frame: gc_frame_fits). */
static int frame_to_cache(struct eng *e, struct codec_ctx *ctx, const struct idx_chunk *c,
                          uint8_t *frame, const struct cache_entry *ref, struct cache_entry **out)
{
	struct codec_frame_info fi;
	uint32_t raw_len = c->raw_len;
	uint8_t *raw = NULL;
	ssize_t n;
	int rc;

	atomic_fetch_add(&e->frames_loaded, 1);
	rc = gc_frame_fits(c, frame, &fi);
	if (rc < 0)
		goto out;
	if (!ref && fi.level == CODEC_LEVEL_RAW && fi.payload_len == raw_len) {
		/* stored raw: the payload is the data; cache the frame buffer
		 * itself (one copy less per byte read) */
		rc = -EBADMSG;
		if (codec_checksum(frame + fi.header_len, raw_len) != fi.checksum)
			goto out;
		*out = cache_insert_at(e->cache, c->fp, frame, frame + fi.header_len, raw_len);
		frame = NULL;
		rc = *out ? 0 : -ENOMEM;
		goto out;
	}
	rc = -ENOMEM;
	raw = malloc(raw_len ? raw_len : 1);
	if (!raw)
		goto out;
	n = codec_frame_decode(ctx, frame, c->frame_len, raw, raw_len, ref ? ref->data : NULL,
	                       ref ? ref->len : 0);
	if (n < 0 || (size_t)n != raw_len) {
		rc = n < 0 ? (int)n : -EBADMSG;
		goto out;
	}
	*out = cache_insert(e->cache, c->fp, raw, raw_len);
	raw = NULL;
	rc = *out ? 0 : -ENOMEM;
out:
	free(raw);
	free(frame);
	return rc;
}

/* One attempt on snapshot t.  A frame that cannot be read or decoded
 * returns -EIO with the reason in *why (not logged yet: see
 * chunk_load_once); other errors leave *why 0. */
static int chunk_load_try(struct eng *e, struct idx_txn *t, const uint8_t fp[FP_LEN],
                          uint64_t ino, uint64_t off, unsigned depth, struct cache_entry **out,
                          struct idx_chunk *c, int *why)
{
	struct cache_entry *ref = NULL;
	uint8_t *frame = NULL;
	struct codec_ctx *ctx;
	int rc;

	*why = 0;
	*out = cache_get(e->cache, fp);
	if (*out)
		return 0;
	rc = idx_chunk_get(t, fp, c);
	if (rc < 0) {
		rc = rc == -ENOENT ? -EIO : rc;
		goto out;
	}
	if (c->flags & IDX_CHUNK_HAS_REF) {
		rc = depth >= IDX_REF_DEPTH_MAX ? -EIO : eng_chunk_load(e, t, c->ref_fp, ino, off, depth + 1, &ref);
		if (rc == -ESTALE) {
			/* the reference failed on t and is gone from the index
			 * now: our own record may have changed too (rebase made
			 * this chunk full, which freed the reference) */
			*why = -ENOENT;
			rc = -EIO;
		}
		if (rc < 0)
			goto out;
	}
	frame = malloc(c->frame_len ? c->frame_len : 1);
	ctx = thread_ctx(e);
	if (!frame || !ctx) {
		rc = -ENOMEM;
		goto out;
	}
	struct pack_loc loc = { .pack_id = c->pack_id, .off = c->pack_off, .len = c->frame_len };
	rc = pack_read(e->ps, &loc, frame);
	if (rc >= 0) {
		rc = frame_to_cache(e, ctx, c, frame, ref, out);
		frame = NULL; /* owned by frame_to_cache */
	}
	if (rc < 0 && rc != -ENOMEM) {
		*why = rc;
		rc = -EIO;
	}
out:
	cache_release(e->cache, ref);
	free(frame);
	return rc;
}

uint64_t eng_frames_loaded(struct eng *e)
{
	return atomic_load(&e->frames_loaded);
}

bool eng_same_frame(const struct idx_chunk *a, const struct idx_chunk *b)
{
	return a->pack_id == b->pack_id && a->pack_off == b->pack_off &&
	       a->frame_len == b->frame_len && a->flags == b->flags &&
	       (!(a->flags & IDX_CHUNK_HAS_REF) || memcmp(a->ref_fp, b->ref_fp, FP_LEN) == 0);
}

/* A frame that fails on our snapshot may have been moved since it was
 * taken: gc (copied, old pack removed or the dead frame punched) or
 * rebase (re-encoded, maybe against another reference).  Then once more
 * on a fresh snapshot, reference chain included; a failure is logged (and
 * is EIO) only when the frame really is the chunk's current one.  A
 * chunk that is gone from the fresh snapshot was freed meanwhile, and gc
 * then punched or moved away its frame: -ESTALE, unlogged.  A reference
 * (depth > 0): rebase made the chunk coded against it full, which is
 * retried on a fresh snapshot in turn (chunk_load_try).  A chunk a file
 * maps (depth 0): the extent naming it changed (eng_read: a batch of the
 * file it overlays committed), so the caller reads again on a fresh
 * snapshot. */
static int chunk_load_once(struct eng *e, struct idx_txn *t, const uint8_t fp[FP_LEN],
                           uint64_t ino, uint64_t off, unsigned depth, struct cache_entry **out)
{
	struct idx_chunk c, now;
	struct idx_txn *t2 = NULL;
	int why, rc = chunk_load_try(e, t, fp, ino, off, depth, out, &c, &why);
	int grc = -EIO;

	if (rc != -EIO || !why)
		return rc;
	if (idx_txn_begin(e->idx, true, &t2) == 0) {
		grc = idx_chunk_get(t2, fp, &now);
		if (grc == 0 && !eng_same_frame(&c, &now))
			rc = chunk_load_try(e, t2, fp, ino, off, depth, out, &c, &why);
	}
	idx_txn_abort(t2);
	if (rc == -EIO && grc == -ENOENT)
		return -ESTALE;
	if (rc == -EIO && why)
		log_bad_chunk(&c, ino, off, why);
	return rc;
}

/* Readahead: the next chunks of a sequential reader are read from their
 * pack in runs of contiguous frames (one I/O per run: sequentially written
 * files keep their frames back to back) and decoded on the workers. */
#define RA_RUN_MAX (2u << 20)
/* Frames per readahead job: small jobs let every worker decode a part of
 * the window, so the reader rarely waits on one worker's sequential run. */
#define RA_JOB_FRAMES 4u

struct ra_frame {
	struct idx_chunk c; /* the record the frame is checked against */
	struct pack_loc loc;
};

struct ra_job {
	struct eng *e;
	size_t n;
	struct ra_frame f[]; /* contiguous in one pack */
};

static void ra_run(void *arg, void *local)
{
	struct ra_job *j = arg;
	struct eng *e = j->e;
	struct loading *claim[RA_JOB_FRAMES];
	struct pack_loc locs[RA_JOB_FRAMES];
	void *bufs[RA_JOB_FRAMES];
	int res[RA_JOB_FRAMES];
	const struct idx_chunk *cs[RA_JOB_FRAMES];
	struct codec_ctx *ctx = thread_ctx(e);
	size_t n = 0;
	bool waited;
	(void)local;

	/* one batch of reads (io_uring), each frame into its own buffer so
	 * raw frames are cached without a copy */
	for (size_t i = 0; i < j->n; i++) {
		struct loading *l = loading_begin(e, j->f[i].c.fp, false, &waited);
		if (!l)
			continue; /* someone else is loading it */
		struct cache_entry *ce = cache_get(e->cache, j->f[i].c.fp);
		if (ce) {
			/* loaded since the job was queued (by the reader, which
			 * did not wait for the queue): not twice */
			cache_release(e->cache, ce);
			loading_end(e, l);
			continue;
		}
		void *b = malloc(j->f[i].loc.len ? j->f[i].loc.len : 1);
		if (!b) {
			loading_end(e, l);
			break;
		}
		claim[n] = l;
		locs[n] = j->f[i].loc;
		bufs[n] = b;
		cs[n] = &j->f[i].c;
		n++;
	}
	if (n && ctx)
		pack_read_many(e->ps, locs, bufs, (int)n, res);
	for (size_t i = 0; i < n; i++) {
		struct cache_entry *ce = NULL;
		/* a failure is left to the reader, which reports it */
		if (ctx && res[i] == 0 &&
		    frame_to_cache(e, ctx, cs[i], bufs[i], NULL, &ce) == 0)
			cache_release(e->cache, ce);
		else if (!ctx || res[i] != 0)
			free(bufs[i]);
		loading_end(e, claim[i]);
	}
	free(j);
}

/* A chunk coded against a reference (a series version) decodes through
 * its chain: one job per chunk, on a snapshot of its own, so the workers
 * walk several chains at once (the reader alone would walk them one after
 * the other).  A chunk the reader is already loading is skipped. */
struct ra_ref_job {
	struct eng *e;
	uint8_t fp[FP_LEN];
	uint64_t ino, off;
};

static void ra_ref_run(void *arg, void *local)
{
	struct ra_ref_job *j = arg;
	struct eng *e = j->e;
	struct cache_entry *ce = NULL;
	struct idx_txn *t;
	bool waited;
	struct loading *l = loading_begin(e, j->fp, false, &waited);
	(void)local;

	if (l && idx_txn_begin(e->idx, true, &t) == 0) {
		/* a failure is left to the reader, which reports it again */
		if (chunk_load_once(e, t, j->fp, j->ino, j->off, 0, &ce) == 0)
			cache_release(e->cache, ce);
		idx_txn_abort(t);
	}
	loading_end(e, l);
	free(j);
}

struct ra_ctx {
	struct eng *e;
	struct idx_txn *t;
	uint64_t ino;
	unsigned left;
	uint64_t end;
	struct ra_job *job; /* run being gathered */
	bool stop;
};

static void ra_flush(struct ra_ctx *r)
{
	if (!r->job)
		return;
	if (pool_try_submit(r->e->pool, NULL, ra_run, r->job) < 0) {
		free(r->job);
		r->stop = true; /* workers busy: the reader loads on demand */
	}
	r->job = NULL;
}

static int ra_cb(void *arg, const struct idx_extent *x)
{
	struct ra_ctx *r = arg;
	struct cache_entry *ce = cache_get(r->e->cache, x->fp);
	struct idx_chunk c;
	r->end = x->off + x->len;
	if (ce) {
		cache_release(r->e->cache, ce);
	} else if (idx_chunk_get(r->t, x->fp, &c) < 0) {
		/* the reader reports it */
	} else if (c.flags & IDX_CHUNK_HAS_REF) {
		struct ra_ref_job *j = r->stop ? NULL : malloc(sizeof(*j));
		if (j) {
			j->e = r->e;
			memcpy(j->fp, x->fp, FP_LEN);
			j->ino = r->ino;
			j->off = x->off;
			if (pool_try_submit(r->e->pool, NULL, ra_ref_run, j) < 0) {
				free(j);
				r->stop = true;
			}
		}
	} else {
		struct ra_job *j = r->job;
		if (j) {
			const struct ra_frame *last = &j->f[j->n - 1];
			if (j->n == RA_JOB_FRAMES || last->loc.pack_id != c.pack_id ||
			    last->loc.off + last->loc.len != c.pack_off ||
			    c.pack_off + c.frame_len - j->f[0].loc.off > RA_RUN_MAX) {
				ra_flush(r);
				j = NULL;
			}
		}
		if (!j && !r->stop) {
			j = malloc(sizeof(*j) + RA_JOB_FRAMES * sizeof(j->f[0]));
			if (!j)
				return 1;
			j->e = r->e;
			j->n = 0;
			r->job = j;
		}
		if (j) {
			struct ra_frame *f = &j->f[j->n++];
			f->c = c;
			f->loc.pack_id = c.pack_id;
			f->loc.off = c.pack_off;
			f->loc.len = c.frame_len;
		}
	}
	return r->stop || --r->left == 0;
}

/* Sequential reader: decode the next chunks on the workers. */
static void ra_schedule(struct eng *e, struct idx_txn *t, struct einode *ei, uint64_t from)
{
	if (e->o.readahead_chunks == 0 || atomic_load(&ei->ra_until) > from + (1u << 20))
		return;
	/* one scheduler at a time: the kernel's readahead sends several
	 * requests at once, and two threads reading the same ra_until would
	 * queue the same chunks twice (each decoded twice) */
	if (atomic_exchange(&ei->ra_busy, true))
		return;
	uint64_t start = atomic_load(&ei->ra_until);
	if (start < from)
		start = from;
	struct ra_ctx r = { .e = e, .t = t, .ino = ei->ino, .left = e->o.readahead_chunks,
	                    .end = start };
	idx_extent_iter(t, ei->ino, start, UINT64_MAX, ra_cb, &r);
	ra_flush(&r);
	atomic_store(&ei->ra_until, r.end);
	atomic_store(&ei->ra_busy, false);
}

struct rd_ctx {
	struct eng *e;
	struct idx_txn *t;
	uint64_t ino, off, end;
	uint8_t *buf;
	int rc;
};

static int rd_cb(void *arg, const struct idx_extent *x)
{
	struct rd_ctx *r = arg;
	struct cache_entry *ce;
	uint64_t a = x->off > r->off ? x->off : r->off;
	uint64_t b = x->off + x->len < r->end ? x->off + x->len : r->end;
	if (a >= b)
		return 0;
	r->rc = eng_chunk_load(r->e, r->t, x->fp, r->ino, a, 0, &ce);
	if (r->rc < 0)
		return 1;
	uint64_t coff = x->chunk_off + (a - x->off);
	if (coff + (b - a) > ce->len) {
		r->rc = -EIO; /* extent points past its chunk: index damage */
		syslog(LOG_ERR, "mixfs: inode %" PRIu64 " offset %" PRIu64 ": extent beyond chunk", r->ino, a);
	} else {
		memcpy(r->buf + (a - r->off), ce->data + coff, (size_t)(b - a));
	}
	cache_release(r->e->cache, ce);
	return r->rc < 0;
}

int eng_read_stored(struct eng *e, struct idx_txn *t, uint64_t ino, uint64_t off, size_t len,
                    uint8_t *buf)
{
	struct rd_ctx r = { .e = e, .t = t, .ino = ino, .off = off, .end = off + len, .buf = buf };
	int rc;
	memset(buf, 0, len);
	rc = idx_extent_iter(t, ino, off, off + len, rd_cb, &r);
	return rc < 0 ? rc : r.rc;
}

static const uint8_t zero_page[65536];

/* Snapshot for reading [off, off + *size) of ei (ei->lock held): clamps
 * *size to the file.  Returns 1 (read), 0 (at or past EOF) or negative
 * errno; *t is the read transaction (abort it in every case). */
static int read_snapshot(struct eng *e, struct einode *ei, uint64_t off, size_t *size,
                         struct idx_txn **t)
{
	struct idx_inode in;
	int rc = idx_txn_begin(e->idx, true, t);
	if (rc < 0) {
		*t = NULL;
		return rc;
	}
	rc = idx_inode_get(*t, ei->ino, &in);
	if (rc < 0)
		return rc;
	if (S_ISDIR(in.mode))
		return -EISDIR;
	uint64_t fsize = ei->size_valid ? ei->size : in.size;
	if (off >= fsize)
		return 0;
	if (*size > fsize - off)
		*size = (size_t)(fsize - off);
	return 1;
}

struct vec_ctx {
	struct eng *e;
	struct idx_txn *t;
	uint64_t ino, pos, end;
	struct eng_rdvec *v;
	int rc;
};

static int vec_push(struct eng_rdvec *v, const void *p, size_t len, void *hold)
{
	if (v->n == ENG_RDVEC_MAX)
		return -EAGAIN;
	v->iov[v->n].iov_base = (void *)p;
	v->iov[v->n].iov_len = len;
	v->hold[v->n] = hold;
	v->n++;
	return 0;
}

/* Zero pieces for the hole [v->pos, to). */
static int vec_zeros(struct vec_ctx *c, uint64_t to)
{
	while (c->pos < to) {
		size_t k = to - c->pos < sizeof(zero_page) ? (size_t)(to - c->pos) : sizeof(zero_page);
		int rc = vec_push(c->v, zero_page, k, NULL);
		if (rc < 0)
			return rc;
		c->pos += k;
	}
	return 0;
}

static int vec_cb(void *arg, const struct idx_extent *x)
{
	struct vec_ctx *c = arg;
	struct cache_entry *ce;
	uint64_t a = x->off > c->pos ? x->off : c->pos;
	uint64_t b = x->off + x->len < c->end ? x->off + x->len : c->end;
	if (a >= b)
		return 0;
	c->rc = vec_zeros(c, a);
	if (c->rc < 0)
		return 1;
	c->rc = eng_chunk_load(c->e, c->t, x->fp, c->ino, a, 0, &ce);
	if (c->rc < 0)
		return 1;
	uint64_t coff = x->chunk_off + (a - x->off);
	if (coff + (b - a) > ce->len) {
		cache_release(c->e->cache, ce);
		syslog(LOG_ERR, "mixfs: inode %" PRIu64 " offset %" PRIu64 ": extent beyond chunk", c->ino, a);
		c->rc = -EIO;
		return 1;
	}
	c->rc = vec_push(c->v, ce->data + coff, (size_t)(b - a), ce);
	if (c->rc < 0) {
		cache_release(c->e->cache, ce);
		return 1;
	}
	c->pos = b;
	return 0;
}

void eng_rdvec_release(struct eng *e, struct eng_rdvec *v)
{
	for (size_t i = 0; i < v->n; i++)
		cache_release(e->cache, v->hold[i]);
	v->n = 0;
}

ssize_t eng_read_vec(struct eng *e, uint64_t ino, uint64_t off, size_t size, struct eng_rdvec *v)
{
	struct einode *ei = ein_get(e, ino, true, 0, 0);
	struct idx_txn *t = NULL;
	ssize_t rc;

	v->n = 0;
	if (!ei)
		return -ENOMEM;
	pthread_rwlock_rdlock(&ei->lock);
	if (!wb_idle(e, ei)) {
		rc = -EAGAIN; /* written bytes not in the index yet: copy path */
		goto out;
	}
	rc = read_snapshot(e, ei, off, &size, &t);
	if (rc <= 0)
		goto out;
	struct vec_ctx c = { .e = e, .t = t, .ino = ino, .pos = off, .end = off + size, .v = v };
	rc = idx_extent_iter(t, ino, off, off + size, vec_cb, &c);
	if (rc >= 0 && c.rc < 0)
		rc = c.rc;
	if (rc >= 0)
		rc = vec_zeros(&c, off + size);
	if (rc < 0) {
		eng_rdvec_release(e, v);
		if (rc == -ESTALE)
			rc = -EAGAIN; /* a chunk was freed since the snapshot: the
			                 copy path reads again on a fresh one */
		goto out;
	}
	if (atomic_exchange(&ei->last_read_end, off + size) == off)
		ra_schedule(e, t, ei, off + size);
	rc = (ssize_t)size;
out:
	idx_txn_abort(t);
	pthread_rwlock_unlock(&ei->lock);
	ein_unuse(e, ei);
	return rc;
}

ssize_t eng_read(struct eng *e, uint64_t ino, uint64_t off, size_t size, void *buf)
{
	struct einode *ei = ein_get(e, ino, true, 0, 0);
	struct idx_txn *t = NULL;
	ssize_t rc;

	struct wb_pins pins = { 0 };
	if (!ei)
		return -ENOMEM;
	pthread_rwlock_rdlock(&ei->lock);
	/* pin in-flight batches before the snapshot: a batch committed after
	 * the snapshot is still overlaid, one committed before is in it */
	rc = wb_pin(e, ei, &pins);
	if (rc < 0)
		goto out;
	for (int attempt = 0;; attempt++) {
		rc = read_snapshot(e, ei, off, &size, &t);
		if (rc <= 0)
			goto out;
		if (e->read_hook)
			e->read_hook(e);
		memset(buf, 0, size);
		struct rd_ctx r = { .e = e, .t = t, .ino = ino, .off = off, .end = off + size,
		                    .buf = buf };
		rc = idx_extent_iter(t, ino, off, off + size, rd_cb, &r);
		if (rc >= 0 && r.rc < 0)
			rc = r.rc;
		if (rc != -ESTALE || attempt == 2)
			break;
		/* a chunk the snapshot names was freed and its frame is gone:
		 * a pinned batch of this file committed over it (its bytes
		 * are in the overlay).  Again on a fresh snapshot: the pins
		 * still hold every batch committed after that one. */
		idx_txn_abort(t);
		t = NULL;
	}
	if (rc == -ESTALE)
		rc = -EIO;
	if (rc < 0)
		goto out;
	wb_overlay(&pins, ei, off, size, buf);
	if (atomic_exchange(&ei->last_read_end, off + size) == off)
		ra_schedule(e, t, ei, off + size);
	rc = (ssize_t)size;
out:
	idx_txn_abort(t);
	wb_unpin(e, &pins);
	pthread_rwlock_unlock(&ei->lock);
	ein_unuse(e, ei);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* writes (pipeline in writeback.c)                                          */

static void *worker_init(void *arg)
{
	(void)arg;
	return codec_ctx_create();
}

static void worker_fini(void *local)
{
	codec_ctx_free(local);
}

bool eng_bg_thread(struct eng *e)
{
	static __thread bool idle; /* this thread went idle */
	if (atomic_load(&e->bg_urgent))
		return false;
	if (!e->o.bg_idle || idle)
		return true;
	/* lowering it needs no privilege (raising it back would: an
	 * unprivileged daemon's RLIMIT_NICE forbids it); a failure leaves
	 * the thread as it was */
	struct sched_param sp = { 0 };
	int rc = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	if (rc == 0)
		idle = true;
	else
		syslog(LOG_WARNING, "mixfs: a background thread stays at normal priority: %s",
		       strerror(rc));
	return true;
}

void ein_wrlock(struct einode *ei)
{
	atomic_fetch_add(&ei->lock_wanted, 1);
	pthread_rwlock_wrlock(&ei->lock);
	atomic_fetch_sub(&ei->lock_wanted, 1);
}

int ein_load_size(struct eng *e, struct einode *ei, bool need_reg)
{
	struct idx_inode in;
	int rc;
	if (ei->size_valid)
		return 0;
	rc = read_inode(e, ei->ino, &in);
	if (rc < 0)
		return rc;
	if (need_reg && !S_ISREG(in.mode))
		return S_ISDIR(in.mode) ? -EISDIR : -EINVAL;
	ei->size = in.size;
	ei->mtime_ns = in.mtime_ns;
	ei->size_valid = true;
	return 0;
}

/* wb_sync, or with close, wb_close, of ino if it is in memory. */
static int sync_ino(struct eng *e, uint64_t ino, bool close)
{
	struct einode *ei = ein_get(e, ino, false, 0, 0);
	int rc;
	if (!ei)
		return 0;
	ein_wrlock(ei);
	rc = close ? wb_close(e, ei) : wb_sync(e, ei);
	pthread_rwlock_unlock(&ei->lock);
	ein_unuse(e, ei);
	return rc;
}

ssize_t eng_write(struct eng *e, uint64_t ino, uint64_t off, const void *buf, size_t size)
{
	struct einode *ei;
	ssize_t rc;
	if (e->o.read_only)
		return -EROFS;
	if (off > MAX_FILE_SIZE || size > MAX_FILE_SIZE - off)
		return -EFBIG;
	if (size == 0)
		return 0;
	ei = ein_get(e, ino, true, 0, 0);
	if (!ei)
		return -ENOMEM;
	ein_wrlock(ei);
	rc = ein_load_size(e, ei, true);
	if (rc >= 0)
		rc = wb_write(e, ei, off, buf, size);
	pthread_rwlock_unlock(&ei->lock);
	ein_unuse(e, ei);
	return rc;
}

int eng_flush(struct eng *e, uint64_t ino)
{
	return sync_ino(e, ino, true);
}

int eng_fsync(struct eng *e, uint64_t ino, bool datasync)
{
	int rc = sync_ino(e, ino, false);
	(void)datasync; /* commits sync packs, then index pages; the meta page too: */
	if (rc >= 0)
		rc = idx_sync(e->idx);
	return rc;
}

int eng_fsyncdir(struct eng *e, uint64_t ino)
{
	(void)ino;
	if (e->o.read_only)
		return 0;
	/* the entries' transactions are committed; the files closed without
	 * waiting for theirs are committed too (mixfs stats relies on it),
	 * also those whose commit failed and which are stored again (recheck:
	 * here if the retry thread has not taken them yet, else its lock) */
	wb_commit_queued(e);
	(void)eng_retry_parked(e, true);
	return idx_sync(e->idx);
}

ssize_t ein_list(struct eng *e, bool retry_only, uint64_t **out)
{
	uint64_t *inos = NULL;
	size_t n = 0, cap = 0;
	ssize_t rc = 0;
	pthread_mutex_lock(&e->itab_lock);
	for (unsigned b = 0; rc == 0 && b < ITAB_BUCKETS; b++) {
		for (struct einode *ei = e->itab[b]; ei; ei = ei->next) {
			if (retry_only && !atomic_load(&ei->parked) && !atomic_load(&ei->recheck) &&
			    !atomic_load(&ei->retrying))
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				uint64_t *p = realloc(inos, nc * sizeof(*p));
				if (!p) {
					rc = -ENOMEM;
					break;
				}
				inos = p;
				cap = nc;
			}
			inos[n++] = ei->ino;
		}
	}
	pthread_mutex_unlock(&e->itab_lock);
	if (rc < 0) {
		free(inos);
		inos = NULL;
		n = 0;
	}
	*out = inos;
	return rc < 0 ? rc : (ssize_t)n;
}

bool eng_retry_parked(struct eng *e, bool recheck_only)
{
	uint64_t *inos;
	ssize_t n = ein_list(e, true, &inos);
	for (ssize_t i = 0; i < n; i++) {
		struct einode *ei = ein_get(e, inos[i], false, 0, 0);
		if (!ei)
			continue;
		/* the flag is taken under the lock, and retrying is set before
		 * it is cleared: a concurrent list (an fsyncdir's) still names
		 * ei and waits for this lock, then finds the retry done */
		ein_wrlock(ei);
		atomic_store(&ei->retrying, true);
		bool recheck = atomic_exchange(&ei->recheck, false);
		if (recheck || (!recheck_only && atomic_load(&ei->parked)))
			(void)wb_retry(e, ei); /* errors: logged by the batch, reported by close/fsync */
		atomic_store(&ei->retrying, false);
		pthread_rwlock_unlock(&ei->lock);
		ein_unuse(e, ei); /* deleted meanwhile: its bytes go */
	}
	free(inos);
	return n >= 0 && atomic_load(&e->parked_total) == 0;
}

int eng_sync_all(struct eng *e)
{
	uint64_t *inos;
	ssize_t n = ein_list(e, false, &inos);
	int rc = n < 0 ? (int)n : 0;
	for (ssize_t i = 0; i < n; i++) {
		int r = sync_ino(e, inos[i], false);
		if (r < 0) {
			syslog(LOG_ERR, "mixfs: inode %" PRIu64 ": write-back failed: %s", inos[i], strerror(-r));
			if (rc == 0)
				rc = r;
		}
	}
	free(inos);
	if (!e->o.read_only) {
		int r = idx_sync(e->idx);
		if (r < 0 && rc == 0)
			rc = r;
	}
	return rc;
}

/* ------------------------------------------------------------------------ */
/* namespace                                                                 */

int eng_lookup(struct eng *e, uint64_t parent, const char *name, struct eng_attr *out)
{
	struct idx_txn *t;
	struct idx_inode in;
	uint64_t ino;
	uint8_t type;
	int rc = check_name(name);
	size_t nlen = (size_t)rc;
	if (rc < 0)
		return rc;
	rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		return rc;
	rc = idx_dirent_lookup(t, parent, name, nlen, &ino, &type);
	if (rc >= 0)
		rc = idx_inode_get(t, ino, &in);
	idx_txn_abort(t);
	if (rc < 0)
		return rc;
	rc = ein_add_lookup(e, ino, parent, 0);
	if (rc < 0)
		return rc;
	make_attr(&in, overlay_attr(e, &in, true), out);
	return 0;
}

void eng_forget(struct eng *e, uint64_t ino, uint64_t nlookup)
{
	struct einode *ei = ein_get(e, ino, false, 0, 0);
	if (!ei)
		return;
	if (ein_put(e, ei, nlookup, 0))
		ein_reap_later(e, ino, false);
}

/* Create a new inode named name in parent.  Adds one lookup reference and
 * open_count opens. */
static int make_node(struct eng *e, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
                     const char *target, const struct eng_cred *cr, uint32_t open_count,
                     struct eng_attr *out)
{
	struct idx_txn *t;
	struct idx_inode dir, in;
	uint64_t ino, existing;
	uint8_t type;
	int64_t now = eng_now_ns();
	int rc = check_name(name);
	size_t nlen;
	if (rc < 0)
		return rc;
	nlen = (size_t)rc;
	rc = eng_wtxn_begin_ns(e, &t);
	if (rc < 0)
		return rc;
	rc = idx_inode_get(t, parent, &dir);
	if (rc < 0)
		goto out;
	if (!S_ISDIR(dir.mode) || dir.nlink == 0) {
		rc = S_ISDIR(dir.mode) ? -ENOENT : -ENOTDIR;
		goto out;
	}
	rc = idx_dirent_lookup(t, parent, name, nlen, &existing, &type);
	if (rc == 0) {
		rc = -EEXIST;
		goto out;
	}
	if (rc != -ENOENT)
		goto out;
	rc = idx_ino_alloc(t, &ino);
	if (rc < 0)
		goto out;
	memset(&in, 0, sizeof(in));
	in.ino = ino;
	in.mode = mode;
	in.uid = cr ? cr->uid : getuid();
	in.gid = cr ? cr->gid : getgid();
	if (dir.mode & S_ISGID) {
		in.gid = dir.gid;
		if (S_ISDIR(mode))
			in.mode |= S_ISGID;
	}
	in.nlink = S_ISDIR(mode) ? 2 : 1;
	in.rdev = rdev;
	in.atime_ns = in.mtime_ns = in.ctime_ns = now;
	in.dir_seq = 3;
	if (target) {
		in.size = strlen(target);
		rc = idx_symlink_put(t, ino, target, in.size);
		if (rc < 0)
			goto out;
	}
	rc = idx_inode_put(t, &in);
	if (rc < 0)
		goto out;
	rc = idx_dirent_add(t, &dir, name, nlen, ino, (uint8_t)(mode >> 12));
	if (rc < 0)
		goto out;
	if (S_ISDIR(mode))
		dir.nlink++;
	dir.mtime_ns = dir.ctime_ns = now;
	rc = idx_inode_put(t, &dir);
out:
	rc = eng_wtxn_end(e, t, rc);
	if (rc < 0)
		return rc;
	rc = ein_add_lookup(e, ino, parent, open_count);
	if (rc < 0)
		return rc; /* the kernel never learns of it; reaped at remount */
	make_attr(&in, false, out);
	return 0;
}

int eng_mknod(struct eng *e, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
              const struct eng_cred *cr, struct eng_attr *out)
{
	if (S_ISDIR(mode) || S_ISLNK(mode))
		return -EINVAL;
	if ((mode & S_IFMT) == 0)
		mode |= S_IFREG;
	return make_node(e, parent, name, mode, rdev, NULL, cr, 0, out);
}

int eng_mkdir(struct eng *e, uint64_t parent, const char *name, mode_t mode,
              const struct eng_cred *cr, struct eng_attr *out)
{
	return make_node(e, parent, name, S_IFDIR | (mode & 07777), 0, NULL, cr, 0, out);
}

int eng_symlink(struct eng *e, uint64_t parent, const char *name, const char *target,
                const struct eng_cred *cr, struct eng_attr *out)
{
	if (strlen(target) >= PATH_MAX)
		return -ENAMETOOLONG;
	return make_node(e, parent, name, S_IFLNK | 0777, 0, target, cr, 0, out);
}

int eng_create(struct eng *e, uint64_t parent, const char *name, mode_t mode, int flags,
               const struct eng_cred *cr, struct eng_attr *out)
{
	(void)flags;
	return make_node(e, parent, name, S_IFREG | (mode & 07777), 0, NULL, cr, 1, out);
}

int eng_readlink(struct eng *e, uint64_t ino, char *buf, size_t cap)
{
	struct idx_txn *t;
	int rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		return rc;
	rc = idx_symlink_get(t, ino, buf, cap);
	idx_txn_abort(t);
	return rc == -ENOENT ? -EINVAL : rc;
}

int eng_link(struct eng *e, uint64_t ino, uint64_t newparent, const char *newname,
             struct eng_attr *out)
{
	struct idx_txn *t;
	struct idx_inode dir, in;
	int rc = check_name(newname);
	size_t nlen;
	if (rc < 0)
		return rc;
	nlen = (size_t)rc;
	rc = eng_wtxn_begin_ns(e, &t);
	if (rc < 0)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (rc >= 0 && S_ISDIR(in.mode))
		rc = -EPERM;
	if (rc >= 0 && in.nlink >= 65000)
		rc = -EMLINK;
	if (rc >= 0)
		rc = idx_inode_get(t, newparent, &dir);
	if (rc >= 0 && !S_ISDIR(dir.mode))
		rc = -ENOTDIR;
	if (rc >= 0)
		rc = idx_dirent_add(t, &dir, newname, nlen, ino, (uint8_t)(in.mode >> 12));
	if (rc >= 0) {
		int64_t now = eng_now_ns();
		if (in.nlink == 0) /* linkat of an O_TMPFILE-like orphan */
			idx_orphan_del(t, ino);
		in.nlink++;
		in.ctime_ns = now;
		dir.mtime_ns = dir.ctime_ns = now;
		rc = idx_inode_put(t, &in);
		if (rc >= 0)
			rc = idx_inode_put(t, &dir);
	}
	rc = eng_wtxn_end(e, t, rc);
	if (rc < 0)
		return rc;
	rc = ein_add_lookup(e, ino, newparent, 0);
	if (rc < 0)
		return rc;
	make_attr(&in, overlay_attr(e, &in, true), out);
	return 0;
}

/* Drop one link of the inode named by (parent, name) inside t.  want_dir:
 * 1 rmdir, 0 unlink, -1 either (rename target). */
static int drop_name(struct eng *e, struct idx_txn *t, struct idx_inode *dir, const char *name,
                     size_t nlen, int want_dir)
{
	struct idx_inode in;
	uint64_t ino;
	uint8_t type;
	int rc = idx_dirent_lookup(t, dir->ino, name, nlen, &ino, &type);
	if (rc < 0)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (rc < 0)
		return rc;
	if (want_dir == 1 && !S_ISDIR(in.mode))
		return -ENOTDIR;
	if (want_dir == 0 && S_ISDIR(in.mode))
		return -EISDIR;
	if (S_ISDIR(in.mode)) {
		rc = idx_dir_is_empty(t, ino);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ENOTEMPTY;
	}
	rc = idx_dirent_del(t, dir->ino, name, nlen);
	if (rc < 0)
		return rc;
	int64_t now = eng_now_ns();
	dir->mtime_ns = dir->ctime_ns = now;
	in.ctime_ns = now;
	if (S_ISDIR(in.mode)) {
		dir->nlink--;
		in.nlink = 0;
	} else {
		in.nlink--;
	}
	if (in.nlink == 0)
		return unlinked_locked(e, t, &in);
	return idx_inode_put(t, &in);
}

static int remove_name(struct eng *e, uint64_t parent, const char *name, int want_dir)
{
	struct idx_txn *t;
	struct idx_inode dir;
	int rc = check_name(name);
	size_t nlen;
	if (rc < 0)
		return rc;
	nlen = (size_t)rc;
	rc = eng_wtxn_begin_ns(e, &t);
	if (rc < 0)
		return rc;
	rc = idx_inode_get(t, parent, &dir);
	if (rc >= 0)
		rc = drop_name(e, t, &dir, name, nlen, want_dir);
	if (rc >= 0)
		rc = idx_inode_put(t, &dir);
	return eng_wtxn_end(e, t, rc);
}

int eng_unlink(struct eng *e, uint64_t parent, const char *name)
{
	return remove_name(e, parent, name, 0);
}

int eng_rmdir(struct eng *e, uint64_t parent, const char *name)
{
	return remove_name(e, parent, name, 1);
}

int eng_rename(struct eng *e, uint64_t parent, const char *name, uint64_t newparent,
               const char *newname, unsigned flags)
{
	struct idx_txn *t;
	struct idx_inode sdir, ddir, src, dst;
	uint64_t sino, dino;
	uint8_t stype, dtype;
	int rc, ln = check_name(name), lnn = check_name(newname);
	bool same_dir = parent == newparent;
	if (ln < 0)
		return ln;
	if (lnn < 0)
		return lnn;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	rc = eng_wtxn_begin_ns(e, &t);
	if (rc < 0)
		return rc;
	rc = idx_inode_get(t, parent, &sdir);
	if (rc < 0)
		goto out;
	if (same_dir)
		ddir = sdir;
	else if ((rc = idx_inode_get(t, newparent, &ddir)) < 0)
		goto out;
	rc = idx_dirent_lookup(t, parent, name, (size_t)ln, &sino, &stype);
	if (rc < 0)
		goto out;
	rc = idx_inode_get(t, sino, &src);
	if (rc < 0)
		goto out;
	rc = idx_dirent_lookup(t, newparent, newname, (size_t)lnn, &dino, &dtype);
	bool dst_exists = rc == 0;
	if (rc < 0 && rc != -ENOENT)
		goto out;
	rc = 0;
	if ((flags & RENAME_NOREPLACE) && dst_exists) {
		rc = -EEXIST;
		goto out;
	}
	if ((flags & RENAME_EXCHANGE) && !dst_exists) {
		rc = -ENOENT;
		goto out;
	}
	if (dst_exists && dino == sino)
		goto out; /* two names of one inode: POSIX says do nothing */
	int64_t now = eng_now_ns();
	if (flags & RENAME_EXCHANGE) {
		rc = idx_inode_get(t, dino, &dst);
		if (rc < 0)
			goto out;
		rc = idx_dirent_del(t, parent, name, (size_t)ln);
		if (rc >= 0)
			rc = idx_dirent_del(t, newparent, newname, (size_t)lnn);
		if (rc >= 0)
			rc = idx_dirent_add(t, &sdir, name, (size_t)ln, dino, dtype);
		if (same_dir)
			ddir.dir_seq = sdir.dir_seq;
		if (rc >= 0)
			rc = idx_dirent_add(t, &ddir, newname, (size_t)lnn, sino, stype);
		if (same_dir)
			sdir.dir_seq = ddir.dir_seq;
		if (rc >= 0 && !same_dir && S_ISDIR(src.mode) != S_ISDIR(dst.mode)) {
			if (S_ISDIR(src.mode)) {
				sdir.nlink--;
				ddir.nlink++;
			} else {
				sdir.nlink++;
				ddir.nlink--;
			}
		}
		src.ctime_ns = dst.ctime_ns = now;
		if (rc >= 0)
			rc = idx_inode_put(t, &src);
		if (rc >= 0)
			rc = idx_inode_put(t, &dst);
	} else {
		if (dst_exists) {
			rc = idx_inode_get(t, dino, &dst);
			if (rc < 0)
				goto out;
			if (S_ISDIR(src.mode) && !S_ISDIR(dst.mode)) {
				rc = -ENOTDIR;
				goto out;
			}
			if (!S_ISDIR(src.mode) && S_ISDIR(dst.mode)) {
				rc = -EISDIR;
				goto out;
			}
			rc = drop_name(e, t, &ddir, newname, (size_t)lnn, -1);
			if (rc < 0)
				goto out;
			if (same_dir)
				sdir = ddir;
		}
		rc = idx_dirent_del(t, parent, name, (size_t)ln);
		if (rc < 0)
			goto out;
		if (same_dir) {
			rc = idx_dirent_add(t, &sdir, newname, (size_t)lnn, sino, stype);
			ddir = sdir;
		} else {
			rc = idx_dirent_add(t, &ddir, newname, (size_t)lnn, sino, stype);
			if (S_ISDIR(src.mode)) {
				sdir.nlink--;
				ddir.nlink++;
			}
		}
		if (rc < 0)
			goto out;
		src.ctime_ns = now;
		rc = idx_inode_put(t, &src);
	}
	if (rc < 0)
		goto out;
	sdir.mtime_ns = sdir.ctime_ns = now;
	ddir.mtime_ns = ddir.ctime_ns = now;
	if (same_dir) {
		rc = idx_inode_put(t, &ddir);
	} else {
		rc = idx_inode_put(t, &sdir);
		if (rc >= 0)
			rc = idx_inode_put(t, &ddir);
	}
out:
	return eng_wtxn_end(e, t, rc);
}

/* ------------------------------------------------------------------------ */
/* open files, setattr, fallocate                                            */

int eng_open(struct eng *e, uint64_t ino, int flags)
{
	struct idx_inode in;
	int rc = read_inode(e, ino, &in);
	if (rc < 0)
		return rc;
	if (S_ISDIR(in.mode) && (flags & O_ACCMODE) != O_RDONLY)
		return -EISDIR;
	if (e->o.read_only && (flags & (O_ACCMODE | O_TRUNC)) != O_RDONLY)
		return -EROFS;
	struct einode *ei = ein_get(e, ino, true, 0, 1);
	if (!ei)
		return -ENOMEM;
	ein_unuse(e, ei);
	if ((flags & O_TRUNC) && S_ISREG(in.mode) && (flags & O_ACCMODE) != O_RDONLY) {
		struct eng_setattr sa = { .valid = ENG_SET_SIZE, .size = 0 };
		rc = eng_setattr(e, ino, &sa, NULL);
		if (rc < 0)
			eng_release(e, ino);
	}
	return rc;
}

struct ext_list {
	struct idx_extent *v;
	size_t n, cap;
};

static int ext_collect(void *arg, const struct idx_extent *x)
{
	struct ext_list *l = arg;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 256;
		struct idx_extent *p = realloc(l->v, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = nc;
	}
	l->v[l->n++] = *x;
	return 0;
}

/* Map [off_in, off_in + len) of src at off_out of dst (punched first):
 * every extent, or the part of it inside the range, names the same chunk
 * at the same place; holes stay holes (a shadow, a copy_file_range). */
static int copy_map(struct idx_txn *t, uint64_t src, struct idx_inode *dst, uint64_t off_in,
                    uint64_t off_out, uint64_t len)
{
	struct ext_list l = { 0 };
	int rc = idx_extent_iter(t, src, off_in, off_in + len, ext_collect, &l);
	if (rc >= 0)
		rc = idx_file_punch(t, dst, off_out, off_out + len);
	for (size_t i = 0; rc >= 0 && i < l.n; i++) {
		const struct idx_extent *x = &l.v[i];
		uint64_t s = x->off > off_in ? x->off : off_in;
		uint64_t end = x->off + x->len < off_in + len ? x->off + x->len : off_in + len;
		if (end <= s)
			continue;
		rc = idx_file_map(t, dst, off_out + (s - off_in), (uint32_t)(end - s), x->fp,
		                  x->chunk_off + (uint32_t)(s - x->off));
	}
	free(l.v);
	return rc;
}

static int shadow_drop(struct eng *e, struct idx_txn *t, struct einode *ei)
{
	int rc = 0;
	if (ei->shadow_ino) {
		rc = idx_inode_delete(t, ei->shadow_ino);
		if (rc == -ENOENT)
			rc = 0;
	}
	return rc;
}

/* Whether ei is open: only then a release will come to drop a shadow (a
 * truncate(2) by path of a file open nowhere keeps none). */
static bool ein_open(struct eng *e, struct einode *ei)
{
	bool open;
	pthread_mutex_lock(&e->itab_lock);
	open = ei->nopen > 0;
	pthread_mutex_unlock(&e->itab_lock);
	return open;
}

/* The shadow a truncate to zero keeps (below) in *sh: a new one when
 * *shadow is 0 (an orphan, so that a crash cannot leak it; the previous
 * one is dropped), else the one the steps of punch_steps began. */
static int shadow_open(struct eng *e, struct idx_txn *t, struct einode *ei,
                       const struct idx_inode *in, uint64_t *shadow, struct idx_inode *sh)
{
	int rc;

	if (*shadow)
		return idx_inode_get(t, *shadow, sh);
	rc = shadow_drop(e, t, ei);
	if (rc >= 0)
		rc = idx_ino_alloc(t, shadow);
	if (rc < 0)
		return rc;
	memset(sh, 0, sizeof(*sh));
	sh->ino = *shadow;
	sh->mode = S_IFREG | 0600;
	sh->uid = in->uid;
	sh->gid = in->gid;
	sh->size = in->size;
	sh->atime_ns = sh->mtime_ns = sh->ctime_ns = in->mtime_ns;
	sh->dtype = in->dtype;
	return idx_orphan_add(t, sh->ino);
}

/* in is being truncated to zero: keep its contents as an unlinked shadow
 * inode that the rewrite uses as its series reference; deleted at the
 * last close.  Chunks coded against shadow chunks hold references on
 * them, so deleting it is always safe.  A shadow the steps of
 * punch_steps began (*shadow set) holds in's extents from in->size on
 * and gets the rest. */
static int shadow_keep(struct eng *e, struct idx_txn *t, struct einode *ei, struct idx_inode *in,
                       uint64_t *shadow)
{
	struct idx_inode sh;
	uint64_t len = *shadow ? in->size : UINT64_MAX; /* new: the whole map, as it is */
	int rc = shadow_open(e, t, ei, in, shadow, &sh);

	if (rc >= 0)
		rc = copy_map(t, in->ino, &sh, 0, 0, len);
	if (rc >= 0)
		rc = idx_inode_put(t, &sh);
	return rc;
}

/* Whether a truncate of in to size keeps a shadow: to zero, of a file
 * open (for its rewrite), when chunks may be coded against it. */
static bool shadow_wanted(struct eng *e, struct einode *ei, const struct idx_inode *in,
                          uint64_t size)
{
	return size == 0 && in->size > 0 && in->nlink > 0 && S_ISREG(in->mode) &&
	       e->o.level == CODEC_LEVEL_MIX && e->o.max_ref_chain > 0 && ein_open(e, ei);
}

/* [start, end) of ei's file is being punched (end UINT64_MAX: truncated
 * to start): while it holds more than reap_step extents, punch them from
 * its end, reap_step per transaction, until the caller's own transaction
 * is left a bounded one (a million extents in one keep ~300 MiB of LMDB
 * pages dirty and every other commit waiting).  Each step leaves a
 * consistent file: a truncate lowers the size to where its step began, a
 * hole grows from its end; an error or a crash between steps leaves the
 * operation partly done, never stale bytes.  shadow (a truncate to zero;
 * NULL: none): the steps move the extents into a new shadow
 * (shadow_keep), whose inode *shadow returns (0: none made, even on
 * error).  reached (NULL: not wanted): the size a truncate's committed
 * steps lowered the file to (left as it is when none did).  Under ei's
 * write lock, after wb_sync. */
static int punch_steps(struct eng *e, struct einode *ei, uint64_t start, uint64_t end,
                       uint64_t *shadow, uint64_t *reached)
{
	unsigned step = e->reap_step ? e->reap_step : REAP_STEP;
	bool trunc = end == UINT64_MAX;
	int rc;

	if (shadow)
		*shadow = 0;
	for (;;) {
		struct idx_inode in, sh;
		struct idx_txn *t;
		uint64_t from, had = shadow ? *shadow : 0;
		/* a read first: most files have far fewer extents, and their
		 * truncate must not cost a commit more */
		rc = idx_txn_begin(e->idx, true, &t);
		if (rc < 0)
			return rc;
		rc = idx_extent_tail(t, ei->ino, start, end, step, &from);
		idx_txn_abort(t);
		if (rc < 0 || from == start)
			return rc < 0 ? rc : 0;
		/* unsynced: a crash may undo steps (all are consistent); the
		 * caller's own synced commit makes them durable */
		rc = eng_wtxn_begin_ns(e, &t);
		if (rc < 0)
			return rc;
		rc = idx_inode_get(t, ei->ino, &in);
		if (rc >= 0)
			rc = idx_extent_tail(t, ei->ino, start, end, step, &from);
		if (rc >= 0 && shadow)
			rc = shadow_open(e, t, ei, &in, shadow, &sh);
		if (rc >= 0 && shadow)
			rc = copy_map(t, in.ino, &sh, from, from, end - from);
		if (rc >= 0 && shadow)
			rc = idx_inode_put(t, &sh);
		if (rc >= 0)
			rc = idx_file_punch(t, &in, from, end);
		if (rc >= 0) {
			if (trunc && in.size > from)
				in.size = from;
			in.mtime_ns = in.ctime_ns = eng_now_ns();
			ei->size_valid = false; /* reload from the record */
			rc = idx_inode_put(t, &in);
		}
		if (rc >= 0 && e->reap_hook)
			rc = e->reap_hook(e);
		rc = eng_wtxn_end(e, t, rc);
		if (rc < 0) {
			if (shadow)
				*shadow = had; /* one this step made is not there */
			return rc;
		}
		if (trunc && reached)
			*reached = in.size;
		end = from;
	}
}

/* Before a truncate's own transaction: a large one goes in steps
 * (punch_steps), moving into a new shadow what a rewrite keeps. */
static int trunc_steps(struct eng *e, struct einode *ei, uint64_t size, uint64_t *shadow,
                       uint64_t *reached)
{
	struct idx_inode in;
	bool keep;
	int rc = read_inode(e, ei->ino, &in);

	*shadow = 0;
	if (rc < 0 || size >= in.size)
		return rc;
	keep = shadow_wanted(e, ei, &in, size);
	if (keep && ei->shadow_ino) /* the previous rewrite's, dropped with it */
		(void)reap_shrink(e, ei->shadow_ino);
	return punch_steps(e, ei, size, UINT64_MAX, keep ? shadow : NULL, reached);
}

int eng_release(struct eng *e, uint64_t ino)
{
	struct einode *ei = ein_get(e, ino, false, 0, 0);
	int rc;
	if (!ei)
		return 0;
	ein_wrlock(ei);
	/* a rewrite's chunks must be committed before its previous version
	 * (the shadow) can go: wait for them then */
	rc = ei->shadow_ino ? wb_sync(e, ei) : wb_close(e, ei);
	/* our open goes away here, under ei->lock: of two releases at once
	 * the second sees the first's gone (deciding from the count and
	 * dropping it only in ein_put, after the unlock, let both see the
	 * other's open and neither drop the shadow) */
	pthread_mutex_lock(&e->itab_lock);
	bool last = ei->nopen <= 1;
	if (ei->nopen > 0)
		ei->nopen--;
	pthread_mutex_unlock(&e->itab_lock);
	if (last)
		wb_hints_closed(e, ei);
	if (last && ei->shadow_ino) {
		/* the rewrite is done: its previous version is no longer needed
		 * (chunks coded against it keep their references alive); a
		 * large one loses its extents in steps first */
		struct idx_txn *t;
		(void)reap_shrink(e, ei->shadow_ino);
		int r = eng_wtxn_begin(e, &t);
		if (r >= 0)
			r = eng_wtxn_end(e, t, shadow_drop(e, t, ei));
		if (r >= 0) {
			ei->shadow_ino = 0;
			wb_ref_drop(ei);
		}
	}
	pthread_rwlock_unlock(&ei->lock);
	ein_unuse(e, ei);
	return rc;
}

/* The file's head is new (truncated to zero and kept as a shadow, or
 * copied over): look for hints and a reference again (ei->lock held). */
static void ein_new_head(struct eng *e, struct einode *ei)
{
	wb_hints_forget(e, ei);
	ei->hints_done = false;
	ei->bytes_units = false;
	ei->ref_done = false;
	ei->ref_raw_late = false;
}

int eng_setattr(struct eng *e, uint64_t ino, const struct eng_setattr *sa, struct eng_attr *out)
{
	uint64_t shadow = 0, stepped = 0, reached = UINT64_MAX;
	struct einode *ei = ein_get(e, ino, true, 0, 0);
	struct idx_txn *t = NULL;
	struct idx_inode in;
	int64_t now = eng_now_ns();
	bool attr_only = !(sa->valid & ENG_SET_SIZE), uncommitted = false;
	struct wb_cut cut = { NULL, 0 };
	int rc;
	if (!ei)
		return -ENOMEM;
	ein_wrlock(ei);
	if (sa->valid & ENG_SET_SIZE) {
		if (sa->size > MAX_FILE_SIZE) {
			rc = -EFBIG;
			goto out;
		}
		rc = wb_truncate(e, ei, sa->size, &cut);
		if (rc < 0)
			goto out;
	}
	/* a new size: pending data and size become records before we edit
	 * them.  Other attributes (rsync, tar and cp -a set times and modes
	 * after the close) need the data coded only: the batches still to
	 * commit keep an mtime set here (wb_uncommitted), the size stays
	 * in memory until they commit */
	rc = attr_only ? wb_settle(e, ei) : wb_sync(e, ei);
	if (rc >= 0 && !attr_only)
		rc = trunc_steps(e, ei, sa->size, &stepped, &reached);
	shadow = stepped;
	if (rc < 0)
		goto out;
	uncommitted = attr_only &&
	              wb_uncommitted(e, ei, sa->valid & (ENG_SET_MTIME | ENG_SET_MTIME_NOW));
	rc = attr_only ? eng_wtxn_begin_ns(e, &t) : eng_wtxn_begin(e, &t);
	if (rc < 0)
		goto out;
	rc = idx_inode_get(t, ino, &in);
	if (rc < 0)
		goto out;
	if (sa->valid & ENG_SET_MODE)
		in.mode = (in.mode & S_IFMT) | (sa->mode & 07777);
	if (sa->valid & ENG_SET_UID)
		in.uid = sa->uid;
	if (sa->valid & ENG_SET_GID)
		in.gid = sa->gid;
	if ((sa->valid & (ENG_SET_UID | ENG_SET_GID)) && !S_ISDIR(in.mode))
		in.mode &= ~(mode_t)(S_ISUID | ((in.mode & S_IXGRP) ? S_ISGID : 0));
	if (sa->valid & ENG_SET_SIZE) {
		if (S_ISDIR(in.mode)) {
			rc = -EISDIR;
			goto out;
		}
		if (!S_ISREG(in.mode)) {
			rc = -EINVAL;
			goto out;
		}
		if (shadow || shadow_wanted(e, ei, &in, sa->size)) {
			rc = shadow_keep(e, t, ei, &in, &shadow);
			if (rc < 0)
				goto out;
		}
		if (sa->size < in.size) {
			rc = idx_file_punch(t, &in, sa->size, UINT64_MAX);
			if (rc < 0)
				goto out;
		}
		if (sa->size != in.size)
			in.mtime_ns = now;
		in.size = sa->size;
		ei->size_valid = false; /* reload from the record */
	}
	if (sa->valid & ENG_SET_ATIME_NOW)
		in.atime_ns = now;
	else if (sa->valid & ENG_SET_ATIME)
		in.atime_ns = ts_ns(&sa->atime);
	if (sa->valid & ENG_SET_MTIME_NOW)
		in.mtime_ns = now;
	else if (sa->valid & ENG_SET_MTIME)
		in.mtime_ns = ts_ns(&sa->mtime);
	in.ctime_ns = (sa->valid & ENG_SET_CTIME) ? ts_ns(&sa->ctime) : now;
	rc = idx_inode_put(t, &in);
	/* the record is authoritative again (times set here may be older
	 * than the last write, e.g. rsync and tar restoring mtimes); with
	 * bytes still to commit, the size in memory is, with these times */
	if (!uncommitted || !ei->size_valid)
		ei->size_valid = false;
	else if (sa->valid & (ENG_SET_MTIME | ENG_SET_MTIME_NOW))
		ei->mtime_ns = in.mtime_ns;
out:
	if (t)
		rc = eng_wtxn_end(e, t, rc);
	if (rc < 0)
		shadow = stepped; /* the one of our steps, committed, or none */
	if (shadow) {
		ei->shadow_ino = shadow;
		ein_new_head(e, ei);
	}
	/* failed: the bytes it dropped back, below the size its steps reached */
	wb_truncate_end(e, ei, &cut, rc, reached);
	pthread_rwlock_unlock(&ei->lock);
	if (rc >= 0) /* with bytes to commit: their size, not the record's */
		make_attr(&in, uncommitted && overlay_attr(e, &in, true), out);
	ein_unuse(e, ei);
	return rc;
}

int eng_fallocate(struct eng *e, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
	struct einode *ei;
	struct idx_txn *t = NULL;
	struct idx_inode in;
	int rc;
	if (off > MAX_FILE_SIZE || len > MAX_FILE_SIZE - off)
		return -EFBIG;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EINVAL;
	ei = ein_get(e, ino, true, 0, 0);
	if (!ei)
		return -ENOMEM;
	ein_wrlock(ei);
	rc = wb_sync(e, ei);
	if (rc >= 0 && (mode & FALLOC_FL_PUNCH_HOLE)) {
		df_note(e, ino); /* chunks left partly mapped, even if a step fails */
		rc = punch_steps(e, ei, off, off + len, NULL, NULL);
	}
	if (rc < 0)
		goto out;
	rc = eng_wtxn_begin(e, &t);
	if (rc < 0)
		goto out;
	rc = idx_inode_get(t, ino, &in);
	if (rc < 0)
		goto out;
	if (!S_ISREG(in.mode)) {
		rc = -ENODEV;
		goto out;
	}
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		rc = idx_file_punch(t, &in, off, off + len);
		in.mtime_ns = in.ctime_ns = eng_now_ns();
		df_note(e, ino); /* chunks left partly mapped (fs/defrag.c) */
	} else if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > in.size) {
		in.size = off + len;
		ei->size_valid = false; /* reload from the record */
		in.ctime_ns = eng_now_ns();
	}
	if (rc >= 0)
		rc = idx_inode_put(t, &in);
out:
	if (t)
		rc = eng_wtxn_end(e, t, rc);
	pthread_rwlock_unlock(&ei->lock);
	ein_unuse(e, ei);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* copy_file_range: the destination maps the source's chunks               */

ssize_t eng_copy_range(struct eng *e, uint64_t ino_in, uint64_t off_in, uint64_t ino_out,
                       uint64_t off_out, uint64_t len, unsigned flags)
{
	struct einode *a, *b; /* a: the lower inode number, locked first */
	struct idx_txn *t = NULL;
	struct idx_inode src, dst;
	ssize_t rc;
	if (flags != 0)
		return -EINVAL;
	if (e->o.read_only)
		return -EROFS;
	if (off_in > MAX_FILE_SIZE || off_out >= MAX_FILE_SIZE)
		return -EFBIG;
	if (len > ENG_COPY_MAX)
		len = ENG_COPY_MAX;
	if (len > MAX_FILE_SIZE - off_out)
		len = MAX_FILE_SIZE - off_out;
	if (len > MAX_FILE_SIZE - off_in)
		len = MAX_FILE_SIZE - off_in;
	if (len == 0)
		return 0;
	a = ein_get(e, ino_in < ino_out ? ino_in : ino_out, true, 0, 0);
	b = ino_in == ino_out ? NULL : ein_get(e, ino_in < ino_out ? ino_out : ino_in, true, 0, 0);
	if (!a || (ino_in != ino_out && !b)) {
		rc = -ENOMEM;
		goto put;
	}
	ein_wrlock(a);
	if (b)
		ein_wrlock(b);
	/* the source's buffered bytes must be in its extents, and the
	 * destination's must not land over the copy later */
	rc = wb_sync(e, a);
	if (rc >= 0 && b)
		rc = wb_sync(e, b);
	if (rc < 0)
		goto out;
	rc = eng_wtxn_begin(e, &t);
	if (rc < 0)
		goto out;
	rc = idx_inode_get(t, ino_in, &src);
	if (rc >= 0)
		rc = idx_inode_get(t, ino_out, &dst);
	if (rc < 0)
		goto out;
	if (!S_ISREG(src.mode) || !S_ISREG(dst.mode)) {
		rc = S_ISDIR(src.mode) || S_ISDIR(dst.mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if (off_in >= src.size) {
		rc = 0; /* at or past the source's end */
		goto out;
	}
	if (len > src.size - off_in)
		len = src.size - off_in;
	if (ino_in == ino_out && off_in < off_out + len && off_out < off_in + len) {
		rc = -EINVAL; /* overlapping ranges of one file, once cut to its end,
		               * as copy_file_range(2) */
		goto out;
	}
	rc = copy_map(t, ino_in, &dst, off_in, off_out, len);
	if (rc < 0)
		goto out;
	if (off_out < dst.size)
		df_note(e, ino_out); /* copied over stored bytes: as an overwrite */
	if (off_out + len > dst.size)
		dst.size = off_out + len;
	bool whole = off_out == off_in && off_in + len == src.size && dst.size == src.size;
	if (ino_in != ino_out && (off_out == 0 || whole)) {
		/* A new head: the destination's tensors are not known (none);
		 * the call that ends a copy of the source at the same offsets
		 * into a file of its size (a whole copy: cp loops over calls of
		 * ENG_COPY_MAX) gives it the source's, so it is found by them
		 * through the index like the source (hints: a reader checks) */
		struct idx_tensor tv[IDX_TENSORS_MAX];
		int n = whole ? idx_tensors_get(t, ino_in, tv, IDX_TENSORS_MAX) : 0;
		rc = n < 0 ? n : idx_tensors_set(t, ino_out, tv, (size_t)n);
		if (rc < 0)
			goto out;
	}
	dst.mtime_ns = dst.ctime_ns = eng_now_ns();
	rc = idx_inode_put(t, &dst);
	if (rc >= 0)
		rc = (ssize_t)len;
out:
	if (t) {
		int r = eng_wtxn_end(e, t, rc < 0 ? (int)rc : 0);
		if (r < 0)
			rc = r;
	}
	if (rc > 0) {
		struct einode *o = a->ino == ino_out ? a : b;
		o->size_valid = false; /* reload from the record */
		if (off_out == 0)
			ein_new_head(e, o);
	}
	if (b)
		pthread_rwlock_unlock(&b->lock);
	pthread_rwlock_unlock(&a->lock);
put:
	if (b)
		ein_unuse(e, b);
	if (a)
		ein_unuse(e, a);
	return rc;
}

struct seek_ctx {
	uint64_t pos;
	bool found;
	int whence;
};

static int seek_cb(void *arg, const struct idx_extent *x)
{
	struct seek_ctx *s = arg;
	if (s->whence == SEEK_DATA) {
		if (x->off + x->len > s->pos) {
			if (x->off > s->pos)
				s->pos = x->off;
			s->found = true;
			return 1;
		}
		return 0;
	}
	/* SEEK_HOLE: walk contiguous extents */
	if (x->off > s->pos)
		return 1;
	if (x->off + x->len > s->pos)
		s->pos = x->off + x->len;
	return 0;
}

int64_t eng_lseek(struct eng *e, uint64_t ino, int64_t off, int whence)
{
	struct idx_txn *t;
	struct idx_inode in;
	int rc;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off < 0)
		return -ENXIO;
	rc = sync_ino(e, ino, false);
	if (rc < 0)
		return rc;
	rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (rc < 0)
		goto out;
	if ((uint64_t)off >= in.size) {
		rc = -ENXIO;
		goto out;
	}
	struct seek_ctx s = { .pos = (uint64_t)off, .whence = whence };
	rc = idx_extent_iter(t, ino, (uint64_t)off, UINT64_MAX, seek_cb, &s);
	if (rc < 0)
		goto out;
	if (whence == SEEK_DATA && !s.found) {
		rc = -ENXIO;
		goto out;
	}
	if (s.pos > in.size)
		s.pos = in.size;
	idx_txn_abort(t);
	return (int64_t)s.pos;
out:
	idx_txn_abort(t);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* directories, statfs, xattrs                                               */

int eng_opendir(struct eng *e, uint64_t ino)
{
	struct idx_inode in;
	int rc = read_inode(e, ino, &in);
	if (rc < 0)
		return rc;
	return S_ISDIR(in.mode) ? 0 : -ENOTDIR;
}

struct dir_ctx {
	eng_dir_cb cb;
	void *arg;
};

static int dir_cb(void *arg, const char *name, size_t namelen, uint64_t ino, uint8_t type,
                  uint64_t seq)
{
	struct dir_ctx *d = arg;
	char nm[IDX_NAME_MAX + 1];
	struct stat st;
	if (namelen > IDX_NAME_MAX)
		return -EIO;
	memcpy(nm, name, namelen);
	nm[namelen] = 0;
	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	st.st_mode = (mode_t)type << 12;
	return d->cb(d->arg, nm, &st, (int64_t)seq + 1);
}

int eng_readdir(struct eng *e, uint64_t ino, int64_t off, eng_dir_cb cb, void *arg)
{
	struct idx_txn *t;
	struct stat st;
	int rc;
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFDIR;
	if (off < 1) {
		st.st_ino = ino;
		if (cb(arg, ".", &st, 1))
			return 0;
	}
	if (off < 2) {
		st.st_ino = ino; /* the kernel resolves ".." itself */
		if (cb(arg, "..", &st, 2))
			return 0;
	}
	rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		return rc;
	struct dir_ctx d = { .cb = cb, .arg = arg };
	rc = idx_dir_iter(t, ino, off < 3 ? 3 : (uint64_t)off, dir_cb, &d);
	idx_txn_abort(t);
	return rc < 0 ? rc : 0;
}

int eng_statfs(struct eng *e, struct statvfs *out)
{
	struct statvfs sv;
	struct idx_txn *t;
	struct idx_stats s;
	int rc;
	if (statvfs(e->store, &sv) < 0)
		return -errno;
	rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		return rc;
	rc = idx_stats_get(t, &s);
	idx_txn_abort(t);
	if (rc < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->f_bsize = sv.f_bsize;
	out->f_frsize = sv.f_frsize;
	out->f_blocks = sv.f_blocks;
	out->f_bfree = sv.f_bfree;
	out->f_bavail = sv.f_bavail;
	out->f_files = s.files + sv.f_ffree;
	out->f_ffree = sv.f_ffree;
	out->f_favail = sv.f_favail;
	out->f_namemax = IDX_NAME_MAX;
	return 0;
}

#define XA_PREFIX "user.mixfs."

/* Computed read-only attributes: stored bytes, ratio, dtype. */
static int virt_xattr(struct eng *e, uint64_t ino, const char *name, char *buf, size_t cap)
{
	struct idx_inode in;
	char val[64];
	int rc = read_inode(e, ino, &in), n;
	if (rc < 0)
		return rc;
	if (!S_ISREG(in.mode))
		return -ENODATA; /* listed for regular files only */
	overlay_attr(e, &in, false); /* stored_bytes: what is stored now */
	if (strcmp(name, XA_PREFIX "stored_bytes") == 0)
		n = snprintf(val, sizeof(val), "%" PRIu64, in.stored_bytes);
	else if (strcmp(name, XA_PREFIX "ratio") == 0)
		n = snprintf(val, sizeof(val), "%.4f", in.size ? (double)in.stored_bytes / (double)in.size : 0.0);
	else if (strcmp(name, XA_PREFIX "dtype") == 0) {
		struct idx_txn *t;
		uint8_t dt = 0;
		rc = idx_txn_begin(e->idx, true, &t);
		if (rc < 0)
			return rc;
		rc = idx_file_dtype(t, ino, &dt);
		idx_txn_abort(t);
		if (rc < 0)
			return rc;
		n = snprintf(val, sizeof(val), "%s", codec_dtype_name(dt));
	} else
		return -ENODATA;
	if (cap == 0)
		return n;
	if ((size_t)n > cap)
		return -ERANGE;
	memcpy(buf, val, (size_t)n);
	return n;
}

static bool is_virt(const char *name)
{
	return strncmp(name, XA_PREFIX, sizeof(XA_PREFIX) - 1) == 0;
}

int eng_setxattr(struct eng *e, uint64_t ino, const char *name, const void *val, size_t len,
                 int flags)
{
	struct idx_txn *t;
	struct idx_inode in;
	int rc;
	if (is_virt(name))
		return -EPERM;
	/* No POSIX ACLs (INIT does not ask for FUSE_POSIX_ACL: the kernel
	 * neither enforces them nor turns one into a mode).  Stored as an
	 * opaque xattr, the ACL that coreutils' cp -a writes to set a copy's
	 * mode left the mode it created the file with (0600/0700); refused,
	 * cp falls back to fchmod. */
	if (strcmp(name, "system.posix_acl_access") == 0 ||
	    strcmp(name, "system.posix_acl_default") == 0)
		return -EOPNOTSUPP;
	rc = eng_wtxn_begin_ns(e, &t);
	if (rc < 0)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (rc >= 0)
		rc = idx_xattr_set(t, ino, name, val, len, flags);
	if (rc >= 0) {
		in.ctime_ns = eng_now_ns();
		rc = idx_inode_put(t, &in);
	}
	return eng_wtxn_end(e, t, rc);
}

int eng_getxattr(struct eng *e, uint64_t ino, const char *name, void *buf, size_t cap)
{
	struct idx_txn *t;
	int rc;
	if (is_virt(name)) {
		/* what is stored: files closed a moment ago too */
		if (!e->o.read_only)
			wb_commit_queued(e);
		return virt_xattr(e, ino, name, buf, cap);
	}
	rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		return rc;
	rc = idx_xattr_get(t, ino, name, buf, cap);
	idx_txn_abort(t);
	if (rc > 0 && cap > 0 && (size_t)rc > cap)
		rc = -ERANGE;
	return rc;
}

/* The virtual user.mixfs.* names are not listed (as CephFS does not list
 * its ceph.* ones): listed, rsync -X, cp --preserve=xattr and tar
 * --xattrs copied them and failed to set them on the copy (EPERM), and
 * copies elsewhere got stale ones as real attributes.  They are read by
 * name. */
int eng_listxattr(struct eng *e, uint64_t ino, char *buf, size_t cap)
{
	struct idx_txn *t;
	struct idx_inode in;
	int rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (rc >= 0)
		rc = idx_xattr_list(t, ino, buf, cap);
	idx_txn_abort(t);
	return rc;
}

int eng_removexattr(struct eng *e, uint64_t ino, const char *name)
{
	struct idx_txn *t;
	struct idx_inode in;
	int rc;
	if (is_virt(name))
		return -EPERM;
	rc = eng_wtxn_begin_ns(e, &t);
	if (rc < 0)
		return rc;
	rc = idx_xattr_del(t, ino, name);
	if (rc >= 0)
		rc = idx_inode_get(t, ino, &in);
	if (rc >= 0) {
		in.ctime_ns = eng_now_ns(); /* as setxattr, and Linux */
		rc = idx_inode_put(t, &in);
	}
	return eng_wtxn_end(e, t, rc);
}

/* ------------------------------------------------------------------------ */
/* store lifecycle                                                           */

void eng_opts_default(struct eng_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->cache_bytes = 128u << 20;
	o->dirty_bytes = 256u << 20;
	o->inflight_bytes = 128u << 20;
	o->workers = 0;
	o->level = CODEC_LEVEL_MIX;
	o->readahead_chunks = 16;
	o->bytes_chunk = 512u << 10;
	o->max_pack_bytes = 1ull << 30;
	o->commit_ms = 1000;
	o->ns_sync_ms = 1000;
	o->max_ref_chain = 8;
	o->hints_mem = 64u << 20;
	o->gc_interval_s = 60;
	o->rebase = true;
	o->rebase_idle_ms = 2000;
	o->lazy = ENG_LAZY_AUTO;
	o->bg_idle = true;
}

static char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 2);
	if (p) {
		memcpy(p, a, la);
		p[la] = '/';
		memcpy(p + la + 1, b, lb + 1);
	}
	return p;
}

int eng_mkfs(const char *path, int level)
{
	struct idx *x = NULL;
	struct idx_txn *t = NULL;
	struct idx_super s;
	struct idx_inode root;
	char *ip = NULL, *pp = NULL;
	int rc;

	if (level < 0 || level >= CODEC_LEVEL_COUNT)
		return -EINVAL;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	ip = path_join(path, "index");
	pp = path_join(path, "packs");
	if (!ip || !pp) {
		rc = -ENOMEM;
		goto out;
	}
	/* refuse to mix a store into a directory that holds anything else */
	DIR *d = opendir(path);
	if (!d) {
		rc = -errno;
		goto out;
	}
	struct dirent *de;
	rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			rc = -ENOTEMPTY;
			break;
		}
	}
	closedir(d);
	if (rc < 0)
		goto out;
	if (mkdir(ip, 0700) < 0 || mkdir(pp, 0700) < 0) {
		rc = -errno;
		goto out;
	}
	memset(&s, 0, sizeof(s));
	s.format_version = IDX_FORMAT_VERSION;
	if (getrandom(s.uuid, sizeof(s.uuid), 0) != (ssize_t)sizeof(s.uuid)) {
		rc = -EIO;
		goto out;
	}
	cdc_params_default(&s.cdc);
	s.default_level = (uint8_t)level;
	s.next_ino = IDX_ROOT_INO + 1;
	s.next_pack = 1;
	s.created_ns = eng_now_ns();
	rc = idx_open(ip, IDX_CREATE, &s, 0, &x);
	if (rc < 0)
		goto out;
	rc = idx_txn_begin(x, false, &t);
	if (rc < 0)
		goto out;
	memset(&root, 0, sizeof(root));
	root.ino = IDX_ROOT_INO;
	root.mode = S_IFDIR | 0755;
	root.uid = getuid();
	root.gid = getgid();
	root.nlink = 2;
	root.atime_ns = root.mtime_ns = root.ctime_ns = s.created_ns;
	root.dir_seq = 3;
	rc = idx_inode_put(t, &root);
	if (rc < 0) {
		idx_txn_abort(t);
		goto out;
	}
	rc = idx_txn_commit(t);
	if (rc >= 0)
		rc = idx_sync(x);
out:
	idx_close(x);
	free(ip);
	free(pp);
	return rc;
}

struct orphan_list {
	uint64_t *v;
	size_t n, cap;
};

static int orphan_collect(void *arg, uint64_t ino)
{
	struct orphan_list *l = arg;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		uint64_t *p = realloc(l->v, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = nc;
	}
	l->v[l->n++] = ino;
	return 0;
}

/* Inodes unlinked while open when the last run ended: nobody can reach
 * them any more, delete them. */
static int reap_orphans(struct eng *e)
{
	struct orphan_list l = { 0 };
	struct idx_txn *t;
	/* large ones lose their extents in steps first (reap_shrink) */
	int rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		return rc;
	rc = idx_orphan_iter(t, orphan_collect, &l);
	idx_txn_abort(t);
	for (size_t i = 0; rc >= 0 && i < l.n; i++)
		rc = reap_shrink(e, l.v[i]);
	l.n = 0;
	if (rc < 0) {
		free(l.v);
		return rc;
	}
	rc = eng_wtxn_begin(e, &t);
	if (rc < 0) {
		free(l.v);
		return rc;
	}
	rc = idx_orphan_iter(t, orphan_collect, &l);
	for (size_t i = 0; rc >= 0 && i < l.n; i++) {
		struct idx_inode in;
		rc = idx_inode_get(t, l.v[i], &in);
		if (rc == 0 && in.nlink > 0) /* a stale mark on a linked file */
			rc = idx_orphan_del(t, l.v[i]);
		else if (rc == 0)
			rc = idx_inode_delete(t, l.v[i]);
		else if (rc == -ENOENT)
			rc = idx_orphan_del(t, l.v[i]);
	}
	free(l.v);
	return eng_wtxn_end(e, t, rc);
}

/* --- online gc: a pass every gc_interval seconds over the packs written
 * before this mount (fs/gc.h).  Readers whose snapshot still names an old
 * location retry with a fresh one (chunk_load_once). */

static int gc_txn_begin(void *arg, struct idx_txn **t)
{
	return eng_wtxn_begin(arg, t);
}

static int gc_txn_end(void *arg, struct idx_txn *t, int rc)
{
	return eng_wtxn_end(arg, t, rc);
}

static int gc_pack_sync(void *arg)
{
	return wb_pack_sync(arg);
}

/* Dead frame bytes in the pack being appended to (rebase replaced them,
 * files were deleted) past which it is sealed, so the online gc may free
 * them before the pack fills up: 64 MiB, at most a quarter of the pack
 * size. */
static uint64_t eng_seal_dead_bytes(const struct eng *e)
{
	return e->o.max_pack_bytes / 4 < (64u << 20) ? e->o.max_pack_bytes / 4 : 64u << 20;
}

/* Seal the pack appends go to once enough of it is dead (checkpoint
 * rotation, frames rebase replaced: they would otherwise wait until the
 * pack fills up). */
static void gc_seal_dead(struct eng *e, uint64_t dead_min)
{
	uint32_t cur = pack_store_current(e->ps);
	struct idx_txn *t;
	struct idx_pack p;

	if (cur == 0 || idx_txn_begin(e->idx, true, &t) < 0)
		return;
	if (idx_pack_get(t, cur, &p) == 0 && p.dead_bytes >= dead_min && p.dead_bytes > 0)
		pack_store_seal(e->ps);
	idx_txn_abort(t);
}

/* gc_main wakes this often to look for work before the interval is up:
 * a quiet moment after a pass that could not collect this mount's packs,
 * or dead bytes piling up. */
#define GC_POLL_S 1
#define GC_DUTY 10 /* early passes: at most one per 10 x the last one's time */

static int dead_sum_cb(void *arg, const struct idx_pack *p)
{
	*(uint64_t *)arg += p->dead_bytes;
	return 0;
}

/* Dead bytes the index counts in all packs (they stay counted after a
 * punch; a compacted pack's record goes): gc_main compares it with its
 * value after the last pass.  -1 on an error. */
static int64_t gc_dead_sum(struct eng *e)
{
	struct idx_txn *t;
	uint64_t sum = 0;

	if (idx_txn_begin(e->idx, true, &t) < 0)
		return -1;
	int rc = idx_pack_iter(t, dead_sum_cb, &sum);
	idx_txn_abort(t);
	return rc < 0 ? -1 : (int64_t)sum;
}

static void *gc_main(void *arg)
{
	struct eng *e = arg;
	char *pd = path_join(e->store, "packs");
	const int64_t interval_ns = (int64_t)e->o.gc_interval_s * 1000000000ll;
	/* A pass runs every interval; earlier once eng_seal_dead_bytes more
	 * bytes died since the last one (a trainer that deletes an old
	 * checkpoint per save would otherwise leave a minute of them on the
	 * disk).  The packs of this mount wait for a quiet moment: after a
	 * pass that found a batch in flight, look again every GC_POLL_S
	 * seconds until it is quiet rather than at the next interval.  A pass
	 * walks every chunk record: such early passes keep to a tenth of
	 * the time (GC_DUTY x the last pass's length since it). */
	bool want_quiet = false;
	int64_t last_pass = eng_mono_ns(), pass_ns = 0, dead_last = gc_dead_sum(e);
	pthread_mutex_lock(&e->gc_lock);
	while (!e->gc_quit && pd) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += e->o.gc_interval_s > GC_POLL_S ? GC_POLL_S : e->o.gc_interval_s;
		pthread_cond_timedwait(&e->gc_cond, &e->gc_lock, &ts);
		if (e->gc_quit)
			break;
		pthread_mutex_unlock(&e->gc_lock);
		int64_t since = eng_mono_ns() - last_pass;
		bool due = since >= interval_ns - 100000000ll;
		/* a write-back failed for lack of space: any byte that died
		 * since the last pass is worth one (kept until some did) */
		bool urgent = atomic_load(&e->gc_urgent);
		uint64_t dead_min = urgent ? 1 : eng_seal_dead_bytes(e);
		if (!due && since < GC_DUTY * pass_ns) {
			pthread_mutex_lock(&e->gc_lock);
			continue;
		}
		if (!due && !want_quiet) {
			int64_t dead = gc_dead_sum(e);
			if (dead < 0 || dead_last < 0 || dead - dead_last < (int64_t)dead_min) {
				if (dead_last < 0)
					dead_last = dead;
				pthread_mutex_lock(&e->gc_lock);
				continue;
			}
		}
		/* Packs of this mount are sealed below the current one; they
		 * may be collected too once no batch and no rebase group holds
		 * frames appended there but not yet committed (a long-running
		 * mount would otherwise keep every byte rebase replaced).  New
		 * appends go to the current pack or later ones. */
		gc_seal_dead(e, dead_min);
		if (urgent)
			atomic_store(&e->gc_urgent, false);
		/* read before the quiet check: a batch appends only while it
		 * is queued or being committed, so once quiet, later appends
		 * go to this pack or later ones */
		uint32_t cur = pack_store_current(e->ps);
		pthread_mutex_lock(&e->rb_run);
		pthread_mutex_lock(&e->plock);
		/* nothing queued, and no group between the queue and its
		 * commit (its frames would look dead to gc's snapshot) */
		bool quiet = e->qhead == NULL && !e->committing;
		pthread_mutex_unlock(&e->plock);
		bool own = quiet && cur > e->first_pack, retry = want_quiet;
		want_quiet = !own && cur > e->first_pack;
		if (retry && !due && !own) { /* still busy: next poll */
			pthread_mutex_unlock(&e->rb_run);
			pthread_mutex_lock(&e->gc_lock);
			continue;
		}
		struct gc_host h = {
			.idx = e->idx, .ps = e->ps, .pack_dir = pd,
			.pack_id_limit = own ? cur : e->first_pack,
			.txn_begin = gc_txn_begin, .txn_end = gc_txn_end,
			.pack_sync = gc_pack_sync, .arg = e,
		};
		struct gc_opts go;
		struct gc_stats st;
		gc_opts_default(&go);
		int64_t t0 = eng_mono_ns();
		int rc = gc_compact(&h, &go, &st);
		pthread_mutex_unlock(&e->rb_run);
		last_pass = eng_mono_ns();
		pass_ns = last_pass - t0;
		dead_last = gc_dead_sum(e);
		if (rc < 0)
			syslog(LOG_WARNING, "mixfs: online gc of %s: %s", e->store, strerror(-rc));
		else if (st.packs_compacted || st.packs_emptied || st.bytes_punched) {
			syslog(LOG_INFO, "mixfs: online gc of %s: %" PRIu64 " packs compacted, %" PRIu64
			       " bytes freed in place", e->store, st.packs_compacted + st.packs_emptied,
			       st.bytes_punched);
			ein_reap_kick(e); /* room for the index, if a deletion failed */
		}
		pthread_mutex_lock(&e->gc_lock);
	}
	pthread_mutex_unlock(&e->gc_lock);
	free(pd);
	return NULL;
}

static void gc_stop_thread(struct eng *e)
{
	if (!e->gc_running)
		return;
	eng_thread_stop(&e->gc_lock, &e->gc_cond, &e->gc_quit, e->gc_thread);
	e->gc_running = false;
}

static void ctx_key_free(void *p)
{
	codec_ctx_free(p);
}

/* -ELOOP if a part of the store that the daemon opens is a symlink. */
static int store_check_links(const char *store)
{
	static const char *const parts[] = { "index", "packs", "index/data.mdb", "index/lock.mdb", "lock" };
	struct stat st;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < sizeof(parts) / sizeof(parts[0]); i++) {
		char *p = path_join(store, parts[i]);
		if (!p)
			return -ENOMEM;
		if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode)) {
			syslog(LOG_ERR, "mixfs: %s is a symbolic link: refusing to open the store", p);
			rc = -ELOOP;
		}
		free(p);
	}
	return rc;
}

int eng_store_lock(const char *store, int *fd_out)
{
	char *lp = path_join(store, "lock");
	int fd, rc = 0;
	if (!lp)
		return -ENOMEM;
	fd = open(lp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
	} else if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
	} else {
		*fd_out = fd;
	}
	free(lp);
	return rc;
}

int eng_store_open(const char *store, const struct eng_opts *opts, struct eng **out)
{
	struct eng *e;
	struct idx_txn *t;
	struct idx_super s;
	struct stat st;
	char *ip = NULL, *pp = NULL;
	int rc;

	*out = NULL;
	if (stat(store, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	if (opts)
		e->o = *opts;
	else
		eng_opts_default(&e->o);
	if (e->o.max_ref_chain > ENG_MAX_REF_CHAIN)
		e->o.max_ref_chain = ENG_MAX_REF_CHAIN;
	pthread_mutex_init(&e->wlock, NULL);
	pthread_mutex_init(&e->itab_lock, NULL);
	pthread_mutex_init(&e->plock, NULL);
	pthread_cond_init(&e->pcond, NULL);
	pthread_rwlock_init(&e->append_lock, NULL);
	pthread_mutex_init(&e->load_lock, NULL);
	pthread_mutex_init(&e->gc_lock, NULL);
	pthread_cond_init(&e->gc_cond, NULL);
	pthread_mutex_init(&e->rb_lock, NULL);
	/* queued candidates before a rescan finds them instead */
	e->rbq = FIFO_INIT(uint8_t[FP_LEN], 256, 1u << 16);
	e->dfq = FIFO_INIT(struct df_cand, 64, 4096);
	pthread_cond_init(&e->rb_cond, NULL);
	pthread_mutex_init(&e->rb_run, NULL);
	pthread_mutex_init(&e->retry_lock, NULL);
	pthread_cond_init(&e->retry_cond, NULL);
	pthread_mutex_init(&e->ns_lock, NULL);
	pthread_cond_init(&e->ns_cond, NULL);
	rc = pthread_key_create(&e->ctx_key, ctx_key_free);
	if (rc) {
		free(e);
		return -rc;
	}
	e->store = strdup(store);
	ip = path_join(store, "index");
	pp = path_join(store, "packs");
	if (!e->store || !ip || !pp) {
		rc = -ENOMEM;
		goto fail;
	}
	if (stat(ip, &st) < 0 || stat(pp, &st) < 0) {
		rc = -EINVAL; /* not a mixfs store */
		goto fail;
	}
	/* never follow a symlink out of the store: the daemon runs as root */
	rc = store_check_links(store);
	if (rc < 0)
		goto fail;
	if (!e->o.read_only) {
		/* one writer per store: a second mount or an offline gc would
		 * corrupt the pack ids and the orphan bookkeeping */
		rc = eng_store_lock(store, &e->lock_fd);
		if (rc < 0)
			goto fail;
	}
	rc = idx_open(ip, e->o.read_only ? IDX_RDONLY : 0, NULL, 0, &e->idx);
	if (rc < 0)
		goto fail;
	rc = idx_txn_begin(e->idx, true, &t);
	if (rc < 0)
		goto fail;
	rc = idx_super_get(t, &s);
	if (rc >= 0) {
		/* a mount whose root cannot be read answers EIO to everything
		 * (even the mount's own check): refuse it, naming the file */
		struct idx_inode root;

		rc = idx_inode_get(t, IDX_ROOT_INO, &root);
		if (rc >= 0 && !S_ISDIR(root.mode))
			rc = -EIO;
		if (rc < 0) {
			fprintf(stderr, "mixfs: index %s/data.mdb: the root directory's record is "
			        "unreadable: the file is damaged\n", ip);
			rc = -EUCLEAN;
		}
	}
	idx_txn_abort(t);
	if (rc < 0)
		goto fail;
	rc = cdc_init(&e->cdc, &s.cdc);
	if (rc < 0)
		goto fail;
	uint32_t max_cut = s.cdc.max_size;
	if (e->o.bytes_chunk > s.cdc.avg_size) {
		uint32_t a = e->o.bytes_chunk;
		rc = cdc_init(&e->cdc_bytes, &(struct cdc_params){ a / 2, a, 2 * a });
		if (rc < 0)
			goto fail;
		e->bytes_units = true;
		if (2 * a > max_cut)
			max_cut = 2 * a;
	}
	if (e->o.level < 0 || e->o.level >= CODEC_LEVEL_COUNT)
		e->o.level = s.default_level;
	e->flush_unit = 16u << 20;
	e->first_pack = s.next_pack; /* packs below were written by earlier mounts */
	if (e->o.dirty_bytes < 4 * (uint64_t)max_cut)
		e->o.dirty_bytes = 4 * (uint64_t)max_cut;
	if (e->flush_unit > e->o.dirty_bytes / 2)
		e->flush_unit = e->o.dirty_bytes / 2;
	struct pack_opts po = { .max_pack_bytes = e->o.max_pack_bytes };
	rc = pack_store_open(pp, &po, pack_id_alloc_cb, e, &e->ps);
	if (rc < 0)
		goto fail;
	e->cache = cache_create(e->o.cache_bytes);
	if (!e->cache) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = pool_create(e->o.workers, 256, worker_init, worker_fini, NULL, &e->pool);
	if (rc < 0)
		goto fail;
	if (!e->o.read_only) {
		rc = pool_create(e->o.workers, 64, worker_init, worker_fini, NULL, &e->bg_pool);
		if (rc < 0)
			goto fail;
	}
	rc = wb_start(e);
	if (rc < 0)
		goto fail;
	if (!e->o.read_only && e->o.ns_sync_ms > 0) {
		rc = -pthread_create(&e->ns_thread, NULL, nsync_main, e);
		if (rc < 0)
			goto fail;
		e->ns_running = true;
	}
	if (!e->o.read_only && e->o.gc_interval_s > 0) {
		rc = -pthread_create(&e->gc_thread, NULL, gc_main, e);
		if (rc < 0)
			goto fail;
		e->gc_running = true;
	}
	if (!e->o.read_only) {
		rc = reap_orphans(e);
		if (rc < 0)
			goto fail;
	}
	rc = rb_start(e);
	if (rc < 0)
		goto fail;
	free(ip);
	free(pp);
	*out = e;
	return 0;
fail:
	free(ip);
	free(pp);
	eng_store_close(e);
	return rc;
}

int eng_store_close(struct eng *e)
{
	int rc = 0;
	if (!e)
		return 0;
	/* first: the idle-priority encodes of a rebase group are skipped from
	 * here on, so neither rebase nor a gc pass waiting for it keeps the
	 * unmount on a busy machine */
	atomic_store(&e->bg_urgent, true);
	gc_stop_thread(e);
	rb_stop(e);
	wb_retry_stop(e); /* the final sync below tries parked bytes once more */
	if (e->ns_running) /* eng_sync_all below syncs what it left */
		eng_thread_stop(&e->ns_lock, &e->ns_cond, &e->ns_quit, e->ns_thread);
	e->ns_running = false;
	if (e->idx && e->ps && e->pool && e->wb_running)
		rc = eng_sync_all(e);
	wb_stop(e);
	pool_free(e->bg_pool);
	pool_free(e->pool);
	pack_store_close(e->ps);
	cache_free(e->cache);
	idx_close(e->idx);
	for (unsigned b = 0; b < ITAB_BUCKETS; b++) {
		while (e->itab[b]) {
			struct einode *ei = e->itab[b];
			e->itab[b] = ei->next;
			ein_free(e, ei);
		}
	}
	codec_ctx_free(pthread_getspecific(e->ctx_key));
	pthread_setspecific(e->ctx_key, NULL);
	pthread_key_delete(e->ctx_key);
	pthread_mutex_destroy(&e->wlock);
	pthread_mutex_destroy(&e->itab_lock);
	pthread_mutex_destroy(&e->plock);
	pthread_cond_destroy(&e->pcond);
	pthread_rwlock_destroy(&e->append_lock);
	pthread_mutex_destroy(&e->load_lock);
	pthread_mutex_destroy(&e->gc_lock);
	pthread_cond_destroy(&e->gc_cond);
	pthread_mutex_destroy(&e->rb_lock);
	pthread_cond_destroy(&e->rb_cond);
	pthread_mutex_destroy(&e->rb_run);
	pthread_mutex_destroy(&e->retry_lock);
	pthread_cond_destroy(&e->retry_cond);
	pthread_mutex_destroy(&e->ns_lock);
	pthread_cond_destroy(&e->ns_cond);
	free(e->reap_q);
	if (e->lock_fd > 0)
		close(e->lock_fd);
	free(e->store);
	free(e);
	return rc;
}
