/*
 * engine_i.h - state shared by engine.c (namespace, read path) and
 * writeback.c (dirty buffers, write pipeline, group commit).  Private.
 *
 * Locks, in the order they may be taken:
 *   0. struct eng.rb_run   a rebase group or an online gc pass (frames
 *                          appended but not committed); taken with no
 *                          other lock held.
 *   1. struct einode.lock  rwlock: dirty segments, in-memory size/mtime.
 *      Readers take it shared, writers/flushers exclusive.
 *   2. struct eng.wlock    the one LMDB writer (and pack id allocation).
 *   3. struct eng.plock    pipeline: batch queue, batch states, inflight
 *                          lists, pending-chunk table, error marks.
 *   4. struct eng.itab_lock inode table, lookup/open/user counts (leaf).
 *   eng.retry_lock (leaf): the write-back retry thread's sleep; taken
 *   under an einode lock when a file's failed bytes are parked.
 *   eng.ns_lock (leaf): the nsync thread's sleep.
 * The committer thread takes only wlock and plock, never an einode lock,
 * so a thread may wait for commits while holding its einode lock.
 * The pack store's own lock (fs/pack.c) comes before 2: pack_append takes
 * wlock under it to allocate a new pack's id (pack_id_alloc_cb), so no
 * pack_* call that locks is made holding wlock (pack_store_gen does not
 * lock: an atomic read).
 */
#ifndef MIXFS_ENGINE_I_H
#define MIXFS_ENGINE_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "codec/codec.h"
#include "codec/hint.h"
#include "fs/cache.h"
#include "fs/engine.h"
#include "fs/fifo.h"
#include "fs/gc.h"
#include "fs/pack.h"
#include "fs/pool.h"
#include "index/chunker.h"
#include "index/fp.h"
#include "index/idx.h"

#define ITAB_BUCKETS 4096u
#define PEND_BUCKETS 4096u
#define MAX_FILE_SIZE ((uint64_t)INT64_MAX)

/* One buffered run of written bytes not yet cut into chunks. */
struct dseg {
	uint64_t off;
	size_t len, cap;
	uint8_t *data;
};

struct batch;

struct einode {
	struct einode *next; /* hash chain, under itab_lock */
	uint64_t ino;
	uint64_t nlookup;    /* under itab_lock */
	uint32_t nopen;      /* under itab_lock */
	uint32_t users;      /* threads/batches holding a pointer, under itab_lock */
	pthread_rwlock_t lock;
	/* threads waiting to take lock exclusively (ein_wrlock): defrag's
	 * rewrite, which takes it again for each piece, gives way to them
	 * (a woken waiter would seldom win the lock back from it) */
	atomic_uint lock_wanted;
	/* --- under lock --- */
	struct dseg *segs;   /* sorted by off, non-overlapping, non-adjacent */
	size_t nsegs, segs_cap;
	size_t dirty;        /* bytes in segs */
	uint64_t close_bytes; /* written since the last wb_close (large: it waits) */
	bool size_valid;     /* size/mtime below are authoritative */
	uint64_t size;
	int64_t mtime_ns;
	struct codec_hint *hints; /* file-format hints, parsed once */
	size_t hints_mem;  /* of hints and ref_tab, counted in eng.hints_mem */
	bool hints_done;
	/* no hints, and its first bytes are other bytes (codec_bytes_file):
	 * cut by eng.cdc_bytes (set with hints_done, from the same bytes) */
	bool bytes_units;
	/* checkpoint series: the file whose chunks serve as references, and
	 * (ref_tab) where its tensors lie when its layout differs from this
	 * file's (NULL: at the same offsets) */
	uint64_t ref_ino;
	struct ref_tab *ref_tab;
	bool ref_done;
	bool ref_raw_late; /* a raw file cut with a short head: look again at the
	                     first segment of at least REF_RAW_MIN bytes */
	uint64_t shadow_ino; /* previous version kept by a truncate to 0 */
	/* bytes of segs that a failed write-back (close, fsync) left for the
	 * background retry, 0: none (set under lock; the retry's scan and
	 * ein_put read it under itab_lock) */
	_Atomic uint64_t parked;
	/* a batch of it failed in a commit that nobody waited for (a close
	 * returns before its batches commit): the retry thread takes the bytes
	 * back and stores them again (set by the committer) */
	atomic_bool recheck;
	atomic_bool retrying; /* the retry thread is storing it (set before
	                         recheck is cleared: ein_list sees one) */
	_Atomic uint64_t parent; /* directory it was last looked up in */
	/* under lock: the bytes cut now are defrag's rewrite of stored bytes
	 * (fs/defrag.c): their batches keep the inode's times and note
	 * nothing for defrag */
	bool defrag;
	/* --- under eng.plock --- */
	struct batch *inflight, *inflight_tail; /* oldest first */
	int wb_error;        /* first failure of a batch, reported once */
	unsigned waiters;    /* threads that will take its failed batches back */
	bool wb_failed;      /* a batch failed: later ones must fail too */
	/* sequential read detection, racy by design (a hint only) */
	_Atomic uint64_t last_read_end;
	_Atomic uint64_t ra_until;
	atomic_bool ra_busy; /* a thread is in ra_schedule */
};

struct pend; /* pending (uncommitted) new chunk, in the pending table */
struct loading;

/* A file defrag looks at (fs/defrag.c). */
struct df_cand {
	uint64_t ino;
	uint64_t from; /* file offset the measure goes on from */
};

/* Bytes written within rebase_idle that still leave the store quiet
 * (rb_idle): a training job's logs and metrics files, appended to all
 * along, must not keep its checkpoints from being turned around. */
#define ENG_QUIET_BYTES (1u << 20)

struct eng {
	char *store;
	int lock_fd; /* flock on STORE/lock while open for writing */
	struct eng_opts o;
	struct idx *idx;
	struct pack_store *ps;
	struct chunk_cache *cache;
	struct pool *pool;
	struct pool *bg_pool; /* rebase's encodes (eng_opts.bg_idle: SCHED_IDLE) */
	atomic_bool bg_urgent; /* closing: background jobs are skipped */
	struct cdc cdc;
	/* files of other bytes (o.bytes_chunk): cut coarser when bytes_units */
	struct cdc cdc_bytes;
	bool bytes_units;
	pthread_key_t ctx_key; /* per-thread codec_ctx for the read path */
	pthread_mutex_t load_lock; /* leaf lock: chunks being loaded */
	struct loading *loading;
	_Atomic uint64_t frames_loaded; /* frames read into the cache (eng_frames_loaded) */
	/* hints and reference tables of closed files kept for later writes
	 * (einode.hints_mem; at most eng_opts.hints_mem: wb_hints_closed) */
	_Atomic uint64_t hints_mem;
	/* online gc */
	uint32_t first_pack; /* packs below: written by earlier mounts */
	pthread_t gc_thread;
	pthread_mutex_t gc_lock;
	pthread_cond_t gc_cond;
	bool gc_running, gc_quit;
	/* a write-back failed for lack of space: the online gc runs as soon
	 * as any bytes died (files deleted to make room), not only past
	 * 64 MiB or at the interval (gc_main) */
	atomic_bool gc_urgent;
	pthread_mutex_t wlock;
	pthread_mutex_t itab_lock;
	struct einode *itab[ITAB_BUCKETS];
	uint64_t flush_unit; /* cut a file's dirty bytes into a batch past this */
	_Atomic uint64_t dirty_total; /* bytes in all dirty segments */
	_Atomic uint64_t parked_total; /* of which parked (einode.parked) */
	atomic_int parked_err;        /* the last parked failure (negative errno) */
	/* write-back retry thread: stores parked bytes with backoff */
	pthread_t retry_thread;
	pthread_mutex_t retry_lock;
	pthread_cond_t retry_cond;
	bool retry_quit, retry_running;
	atomic_bool recheck_due; /* some einode.recheck is set: a pass now */
	/* inodes whose last forget came while unlinked, deleted by the retry
	 * thread in one transaction each REAP_DELAY (under retry_lock): an
	 * orphan's deletion need not be durable (the next mount reaps what a
	 * crash left), so `rm -rf` pays one synced commit a file, not two
	 * (ein_reap_later) */
	uint64_t *reap_q;
	size_t reap_n, reap_cap;
	int64_t reap_last; /* eng_mono_ns of the last deletion started */
	/* a deletion that failed (a full disk: the index cannot grow) is
	 * queued again and tried at reap_retry_at, the delay doubling while
	 * they fail; an online gc pass that frees space tries at once */
	int64_t reap_retry_at;
	_Atomic int64_t reap_backoff; /* 0: the last deletion worked */
	/* namespace commits go unsynced (eng_wtxn_begin_ns); the nsync
	 * thread syncs the index ns_sync_ms after the first of them */
	pthread_t ns_thread;
	pthread_mutex_t ns_lock; /* leaf */
	pthread_cond_t ns_cond;
	bool ns_quit, ns_running;
	atomic_bool ns_watch; /* the thread knows about the unsynced commits */

	/* write pipeline, under plock */
	pthread_mutex_t plock;
	pthread_cond_t pcond;
	struct batch *qhead, *qtail; /* every batch not yet committed or failed */
	uint64_t inflight_bytes;     /* bytes of queued batches */
	uint64_t batch_seq;
	uint64_t settled_seq;        /* every batch up to it is committed or failed */
	uint64_t closed_seq;         /* the last batch a close left uncommitted */
	unsigned sync_waiters;       /* threads waiting for a commit */
	bool stop, wb_running;
	bool committing;             /* the committer holds a group taken off
	                                the queue: frames appended, not yet in
	                                the index (the online gc waits) */
	/* tests only (NULL otherwise): called by the committer between taking
	 * a group off the queue and committing it, no lock held (read under
	 * plock: set it under plock while the committer runs) */
	void (*commit_hook)(struct eng *e);
	/* tests only (NULL otherwise): called by eng_read between taking its
	 * snapshot and reading the file's extents (ei->lock held shared) */
	void (*read_hook)(struct eng *e);
	/* tests only (NULL otherwise): called by rebase between encoding a
	 * group's frames and appending them, no lock held */
	void (*rb_hook)(struct eng *e);
	/* tests only (NULL otherwise): called by a worker before it appends
	 * a batch's frames; a negative return fails the batch with that
	 * error, as a pack write would (ENOSPC on the store's disk) */
	int (*append_hook)(struct eng *e, uint64_t ino);
	/* tests only (NULL otherwise): called by ein_reap_batch and by every
	 * step of a deletion, truncate or hole punch in steps before it
	 * commits; a negative return fails it with that error, as an index
	 * that cannot grow on a full disk would */
	int (*reap_hook)(struct eng *e);
	unsigned reap_step; /* REAP_STEP; tests set fewer */
	pthread_t committer;
	struct pend *pend[PEND_BUCKETS];
	/* frames appended before a pack error is cleared are gone: batches
	 * holding them must not commit (they compare pack_store_gen before
	 * their appends and after their sync); appends hold it shared, the
	 * clearing (wb_pack_sync) exclusive */
	pthread_rwlock_t append_lock;

	/* rebase (fs/rebase.c): reverse deltas while idle */
	pthread_t rb_thread;
	pthread_mutex_t rb_lock;       /* leaf: queue and flags below */
	pthread_cond_t rb_cond;
	pthread_mutex_t rb_run;        /* held by a rebase group (frames appended, not
	                                  committed) and by an online gc pass */
	struct fifo rbq;               /* forward-coded chunks to turn (fingerprints) */
	bool rb_rescan;                /* scan the chunk table (mount, overflow) */
	/* idx_loose_marks() when the loose table was last found empty (the
	 * rebase thread's own; UINT64_MAX: not since the mount) */
	_Atomic uint64_t rb_loose_seen;
	/* files' stored_bytes (st_blocks, du) may be stale: chunks were
	 * re-encoded (rebase, splicing, recompression) since the last sweep
	 * (rb_charges), which resumes from inode ch_from; ch_marked:
	 * STORE/index/charges says so to the next mount */
	atomic_bool ch_stale, ch_marked;
	_Atomic uint64_t ch_from;
	bool rb_quit;
	atomic_bool rb_running;        /* read by pool workers (lazy coding) */
	int64_t rb_retry_ms;           /* after a failed group: idle work waits
	                                  until then (monotonic ms) */
	/* monotonic time of the last write that made ENG_QUIET_BYTES since
	 * the one before (written, written_mark): a log appended to now and
	 * then leaves the store quiet for rebase, a checkpoint being
	 * written does not */
	_Atomic int64_t last_write_ms;
	_Atomic uint64_t written, written_mark;

	/* defrag (fs/defrag.c): files overwritten in place, rewritten when
	 * idle; queue and scan cursor under rb_lock */
	struct fifo dfq;               /* candidates (struct df_cand), one entry an inode */
	bool df_rescan;                /* look at every inode (mount, overflow) */
	uint64_t df_scan_from;         /* the scan's next inode number */
	_Atomic uint64_t df_files;     /* files rewritten (logs, tests) */
};

/* pthread_cond_timedwait for at most ns nanoseconds from now. */
static inline void eng_cond_wait_ns(pthread_cond_t *c, pthread_mutex_t *m, int64_t ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ns % 1000000000;
	ts.tv_sec += ns / 1000000000 + ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_cond_timedwait(c, m, &ts);
}

/* A thread that sleeps on c under m until *quit: set it, wake it, join. */
static inline void eng_thread_stop(pthread_mutex_t *m, pthread_cond_t *c, bool *quit, pthread_t th)
{
	pthread_mutex_lock(m);
	*quit = true;
	pthread_cond_broadcast(c);
	pthread_mutex_unlock(m);
	pthread_join(th, NULL);
}

/* engine.c */
int64_t eng_now_ns(void);
int64_t eng_mono_ns(void);
#define REAP_DELAY_NS 20000000ll /* orphans deleted in one transaction per 20 ms */
#define REAP_MAX 4096            /* or as soon as this many are queued */
#define REAP_QMAX (16 * REAP_MAX) /* queued at most (more: deleted at once) */
#define REAP_STEP 16384 /* extents: a larger unlinked file is deleted (a file
                           truncated, a hole punched) over several transactions
                           of this many (bounded dirty pages) */
#define REAP_RETRY_MIN_NS 1000000000ll  /* a failed deletion: again after 1 s, */
#define REAP_RETRY_MAX_NS 60000000000ll /* doubling up to a minute */
int eng_wtxn_begin(struct eng *e, struct idx_txn **t);
/* The same for a namespace operation (create, link, unlink, rename,
 * setattr, xattrs): its commit is not synced (idx_txn_begin_lazy) unless
 * ns_sync_ms is 0; ended by eng_wtxn_end. */
int eng_wtxn_begin_ns(struct eng *e, struct idx_txn **t);
/* A job on bg_pool calls this first: with eng_opts.bg_idle the thread
 * takes idle CPU priority (SCHED_IDLE) once (not in the pool's init: that
 * runs on the thread creating the pool).  false once the engine is
 * closing (bg_urgent): skip the job, an idle thread on a busy machine
 * would hold the unmount (its work is found again at the next mount). */
bool eng_bg_thread(struct eng *e);
int eng_wtxn_end(struct eng *e, struct idx_txn *t, int rc);
struct einode *ein_get(struct eng *e, uint64_t ino, bool create, uint64_t add_lookup,
                       uint32_t add_open);
bool ein_put(struct eng *e, struct einode *ei, uint64_t sub_lookup, uint32_t sub_open);
void ein_reap(struct eng *e, uint64_t ino);
/* ein_put of a user reference alone, then ein_reap if it was the last. */
void ein_unuse(struct eng *e, struct einode *ei);
/* ein_reap for the last forget: in a batch with others when deletions
 * come in a burst (the retry thread deletes them; see struct eng.reap_q);
 * with queue, by the retry thread whenever it can (the committer's). */
void ein_reap_later(struct eng *e, uint64_t ino, bool queue);
/* Delete the unlinked, unused inodes among inos in one transaction; if
 * that fails, they are queued for the retry thread (see reap_retry_at).
 * 0 or the transaction's error. */
int ein_reap_batch(struct eng *e, const uint64_t *inos, size_t n);
/* An online gc pass freed space: failed deletions are tried now. */
void ein_reap_kick(struct eng *e);
/* Inode numbers in the table (retry_only: those with parked bytes,
 * marked recheck or being retried) into *out (malloc'd; *out NULL and 0 on -ENOMEM,
 * returned). */
ssize_t ein_list(struct eng *e, bool retry_only, uint64_t **out);
/* One retry of every file marked recheck and, unless recheck_only, every
 * parked file (the retry thread; fsyncdir for the rechecks).  true when
 * nothing is parked any more. */
bool eng_retry_parked(struct eng *e, bool recheck_only);
/* Decoded data of chunk fp (held in the cache; release with
 * cache_release).  ino/off only name the file in error logs.  -ESTALE:
 * the chunk (or one of its references) was freed since t was taken and
 * its frame is gone; not logged, read again on a fresh snapshot. */
int eng_chunk_load(struct eng *e, struct idx_txn *t, const uint8_t fp[FP_LEN], uint64_t ino,
                   uint64_t off, unsigned depth, struct cache_entry **out);
/* Whether two records of a chunk name the same frame (location and
 * reference): else it was moved or re-encoded in between. */
bool eng_same_frame(const struct idx_chunk *a, const struct idx_chunk *b);
/* Take ei->lock exclusively, counted in ei->lock_wanted while waiting:
 * every exclusive locker but defrag's rewrite. */
void ein_wrlock(struct einode *ei);
/* Load the authoritative size/mtime into ei (ei->lock exclusive);
 * need_reg: -EISDIR/-EINVAL unless a regular file. */
int ein_load_size(struct eng *e, struct einode *ei, bool need_reg);
/* Read file bytes of ino from the index only (no dirty overlay).
 * -ESTALE as eng_chunk_load. */
int eng_read_stored(struct eng *e, struct idx_txn *t, uint64_t ino, uint64_t off, size_t len,
                    uint8_t *buf);

/* rebase.c */
int rb_start(struct eng *e);
void rb_stop(struct eng *e);   /* before the pool and packs go */
/* A chunk coded against an older one was committed (committer, plock held). */
void rb_note(struct eng *e, const uint8_t fp[FP_LEN]);
/* A chunk stored at level is recompression work: compressed (raw means
 * incompressible), but below the mount's level. */
static inline bool rb_pending(const struct eng *e, int level)
{
	return level > CODEC_LEVEL_RAW && level < e->o.level;
}
/* No buffered or queued writes and none for rebase_idle_ms. */
bool rb_idle(struct eng *e);

/* defrag.c (its queue is under rb_lock; the rebase thread runs it) */
/* A commit overwrote part of ino's stored bytes (or punched a hole): its
 * partly covered chunks may now hold bytes nothing maps. */
void df_note(struct eng *e, uint64_t ino);
/* Candidates or a scan wait (rb_lock held). */
bool df_work_locked(const struct eng *e);
/* Rewrite the candidates that waste enough (idle_only: stop as soon as
 * the store is not idle).  *files (if not NULL): files rewritten. */
int df_drain(struct eng *e, bool idle_only, uint64_t *files);
/* Drop the queue (rb_stop). */
void df_stop(struct eng *e);

/* writeback.c */
/* pack_sync; on failure clear the pack error, which bumps pack_store_gen
 * (frames appended before are gone: their batches must not commit). */
int wb_pack_sync(struct eng *e);
int wb_start(struct eng *e);
void wb_retry_stop(struct eng *e); /* before the final sync */
void wb_stop(struct eng *e); /* after every inode was synced */
/* With ei->lock held exclusively.  Returns size or negative errno (a
 * previous write-back failure of this file, -ENOMEM). */
ssize_t wb_write(struct eng *e, struct einode *ei, uint64_t off, const void *buf, size_t size);
/* Everything written to ei so far is committed (ei->lock exclusive).
 * Returns the first write-back error not yet reported.  Bytes that
 * failed stay buffered, parked for the background retry. */
int wb_sync(struct eng *e, struct einode *ei);
/* Whether ei has batches not committed yet (ei->lock exclusive, after
 * wb_settle); with keep_times, their commits leave the inode's mtime as it
 * is (a setattr set it meanwhile). */
bool wb_uncommitted(struct eng *e, struct einode *ei, bool keep_times);
/* A setattr that changes no size, and wb_close (ei->lock exclusive):
 * everything written is cut into batches and prepared (coded, appended to
 * the pack), but not waited for to commit: the committer commits them
 * with others within commit_ms, as a close promises no durability (fsync
 * does).  Reports what failed so far; a file with an error to report, a
 * failed batch or parked bytes takes wb_sync's way.  A commit that fails
 * later sets einode.recheck. */
int wb_settle(struct eng *e, struct einode *ei);
/* The close of a writer: wb_settle, or wb_sync for a file written with at
 * least flush_unit since its last close (a checkpoint: its close waits for
 * the commit, so it survives a kill -9 of the daemon). */
int wb_close(struct eng *e, struct einode *ei);
/* Wait until every batch queued before this call is committed or failed
 * (no einode lock needed; may be called holding one). */
void wb_commit_queued(struct eng *e);
/* The background retry of ei's parked bytes (ei->lock exclusive): like
 * wb_sync, but it reports nothing: an error not yet reported stays for
 * the next close or fsync, one this retry meets is only logged (the next
 * close or fsync reports its own attempt).  0 when all was stored. */
int wb_retry(struct eng *e, struct einode *ei);
/* Drop ei's buffered bytes (a deleted file, or the unmount): memory and
 * dirty budget (ei unreachable). */
void wb_discard(struct eng *e, struct einode *ei);
/* Buffered bytes a truncate took away, kept until it is known to have
 * succeeded. */
struct wb_cut {
	struct dseg *v;
	size_t n;
};
/* Drop buffered bytes at or past size into *cut (ei->lock exclusive; call
 * wb_sync after it).  -ENOMEM changes nothing.  Then, still under the
 * lock, wb_truncate_end: with a failure (rc < 0) the bytes below
 * keep_below go back (the size a large truncate's committed steps left;
 * UINT64_MAX when it changed nothing), the others are freed. */
int wb_truncate(struct eng *e, struct einode *ei, uint64_t size, struct wb_cut *cut);
void wb_truncate_end(struct eng *e, struct einode *ei, struct wb_cut *cut, int rc,
                     uint64_t keep_below);
/* Forget ei's series reference (ei->lock exclusive, or ei unreachable). */
void wb_ref_drop(struct einode *ei);
/* At a file's last close (ei->lock exclusive): keep its hints and
 * reference table for later writes (defrag, appends) while those of all
 * closed files take at most eng_opts.hints_mem, else let them go (later
 * writes are cut without them, like a file in no known format's, until
 * its head is written again).  wb_hints_forget: ei's go (ein_free, a new
 * head), its count with them. */
void wb_hints_closed(struct eng *e, struct einode *ei);
void wb_hints_forget(struct eng *e, struct einode *ei);
/* Defrag's rewrite (ei->lock exclusive, wb_idle(ei)): buffer [off,
 * off + len) again with the bytes stored there (neither the file's times
 * nor the store's idleness change), then store them: wb_rewrite_store
 * cuts, commits and waits like wb_sync, the batches keeping the inode's
 * times; what fails is dropped (the same bytes are stored already).
 * Returns the failure; wb_rewrite -EBUSY while a write-back error of ei
 * waits to be reported (to its next close or fsync, not to defrag). */
int wb_rewrite(struct eng *e, struct einode *ei, uint64_t off, const uint8_t *buf, size_t len);
/* A write-back of ei failed and its error waits for its next close or
 * fsync (or its failed batch for the writer to take back). */
bool wb_has_error(struct eng *e, struct einode *ei);
int wb_rewrite_store(struct eng *e, struct einode *ei);
/* Whether ei holds no buffered or in-flight data (ei->lock held). */
bool wb_idle(struct eng *e, struct einode *ei);
/* Bytes of ei written but not committed yet: buffered or being coded
 * (raw), coded (the frame bytes its commit will charge, so st_blocks of a
 * file closed a moment ago is about what it will be), ei->lock held. */
uint64_t wb_pending_bytes(struct eng *e, struct einode *ei);

/* Readers (ei->lock shared): pin the in-flight batches, read the index,
 * then overlay in-flight and buffered bytes, then unpin. */
struct wb_pins {
	struct batch **v;
	size_t n;
};
int wb_pin(struct eng *e, struct einode *ei, struct wb_pins *p);
void wb_overlay(const struct wb_pins *p, const struct einode *ei, uint64_t off, size_t len,
                uint8_t *buf);
void wb_unpin(struct eng *e, struct wb_pins *p);

#endif
