/*
 * gc.h - store verification (fsck) and pack compaction (gc), as a library.
 *
 * No FUSE here: the mixfs tool runs both on a store directory, and the
 * engine can run the compaction core online through struct gc_host.
 *
 * fsck walks every inode, directory entry, extent, chunk and pack of one
 * LMDB snapshot: link counts and reachability, extents against their
 * chunks, chunk reference counts against the extents and reference chunks
 * that use them, every frame read and decoded (checksum) and its SHA-256
 * compared with the chunk's fingerprint, pack records against the chunks
 * they hold, bytes in pack files that no chunk covers (orphans: crash
 * leftovers, reclaimed by gc, not an error), and the stats counters.
 *
 * gc compacts packs: a pack whose reclaimable share (file bytes not held by
 * a live chunk: dead + orphan) is at least the threshold has its live
 * frames copied to a new pack; after pack_sync one index transaction
 * relocates them (idx_chunk_relocate) and deletes the old pack record;
 * only then is the old file removed.  A crash at any point leaves either
 * the old or the new locations committed, and the other copy as an
 * unreferenced pack file that the next gc removes.  Packs go in batches
 * (batch_bytes of live frames); offline, a batch whose copies do not fit
 * (ENOSPC, or EIO from the index) has its copies cut off again and the
 * rest goes one pack at a time; gc stops with the error only when one
 * pack's copies do not fit.
 *
 * Locking between processes (flock, never waiting):
 *   gc, fsck --repair   STORE/lock exclusive (the engine's one-writer lock,
 *                       eng_store_lock: a read-write mount holds it), and
 *                       STORE/gc.lock exclusive; and they refuse while any
 *                       other process has the index open (LMDB keeps a
 *                       POSIX read lock on index/lock.mdb for every open
 *                       environment: a read-only mount, stats, fsck).
 *   fsck (check only)   STORE/gc.lock shared: it runs next to a mount,
 *                       read-only, but not next to an offline gc.
 *
 * Errors: negative errno.  -EBUSY store in use, -ENOENT / -EINVAL not a
 * store, -EIO unreadable index records.
 */
#ifndef MIXFS_GC_H
#define MIXFS_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct codec_frame_info;
struct idx;
struct idx_chunk;
struct idx_txn;
struct pack_store;

/* --- frames ---------------------------------------------------------------- */

/* Whether frame (c->frame_len bytes read at c's location) is the frame the
 * chunk record c names: its header parses (*fi) and agrees with every field
 * the record keeps about it: length, raw length, level, dtype, the
 * reference flag and (index format 3) the checksum of the raw bytes.  0,
 * or -EBADMSG (a damaged frame, or a damaged record pointing at another
 * frame or into one).  A record from before format 3 keeps no checksum:
 * another frame with all the other fields equal passes (the SHA-256 of the
 * decoded bytes, which fsck compares, catches it). */
int gc_frame_fits(const struct idx_chunk *c, const void *frame, struct codec_frame_info *fi);

/* --- locking ------------------------------------------------------------- */

enum gc_lock_mode {
	GC_LOCK_SHARED,    /* fsck check, mount */
	GC_LOCK_EXCLUSIVE, /* gc, fsck --repair: also fails if the index is open elsewhere */
};

struct gc_lock;

/* Take the locks of mode (files created 0600 if missing) without waiting.
 * Returns 0, -EBUSY (held by another process, or, for GC_LOCK_EXCLUSIVE,
 * the index is open elsewhere), -ENOENT, -ENOTDIR. */
int gc_store_lock(const char *store, enum gc_lock_mode mode, struct gc_lock **out);
/* 0 if store holds an index (STORE/index/data.mdb, a regular file), else
 * a negative errno (-ENOENT: no store there). */
int gc_store_present(const char *store);
void gc_store_unlock(struct gc_lock *l); /* NULL is fine */
/* 1 if another process has the store's LMDB environment open (a mount,
 * stats, fsck), 0 if not, or negative errno. */
int gc_store_in_use(const char *store);

/* --- progress and problems ------------------------------------------------ */

/* Called now and then with the phase name and how far it got (total 0 =
 * unknown).  For a progress line on a TTY. */
typedef void (*gc_progress_fn)(void *arg, const char *phase, uint64_t done, uint64_t total);

enum gc_problem_kind {
	GC_P_SUPER,    /* superblock counters behind what exists */
	GC_P_INODE,    /* malformed or impossible inode */
	GC_P_DIRENT,   /* entry naming a missing inode, wrong type, index mismatch */
	GC_P_NLINK,    /* link count differs from the entries found */
	GC_P_LOST,     /* inode no directory entry reaches */
	GC_P_ORPHAN,   /* orphan mark of a missing or still linked inode */
	GC_P_EXTENT,   /* extent to a missing chunk, outside it, overlapping, past EOF */
	GC_P_REFCOUNT, /* chunk refcount differs from the references found */
	GC_P_FRAME,    /* frame missing, truncated, corrupt or not the fingerprint's bytes */
	GC_P_PACK,     /* pack record missing or with the wrong live bytes */
	GC_P_STATS,    /* stats counters differ from the records */
	GC_P_TENSORS,  /* tensors-table entry of a missing file, or without its twin */
	GC_P_HINTS,    /* lazy-coding hint of a missing chunk */
	GC_P_REFBY,    /* reverse-reference table out of step with the chunk records */
	GC_P_KIND_COUNT
};

/* A file affected by a problem. */
struct gc_file {
	uint64_t ino;
	uint64_t off;     /* first affected file offset (UINT64_MAX: not data) */
	const char *path; /* "/a/b" (raw bytes), or NULL if no entry reaches it */
};

struct gc_problem {
	enum gc_problem_kind kind;
	const char *msg;    /* one line, no newline */
	bool repaired;      /* --repair fixed it */
	bool data_lost;     /* reads of the files' data at off fail (EIO) */
	size_t nfiles;
	const struct gc_file *files; /* valid during the callback only */
};

typedef void (*gc_problem_fn)(void *arg, const struct gc_problem *p);

const char *gc_problem_kind_name(enum gc_problem_kind k); /* "frame", ... */

/* --- fsck ------------------------------------------------------------------ */

struct gc_fsck_opts {
	bool repair;       /* fix what needs no guessing (store must not be in use) */
	bool quick;        /* skip reading frames (structure only) */
	unsigned threads;  /* frame decoding threads, 0 = CPUs */
	gc_problem_fn problem;
	void *problem_arg;
	gc_progress_fn progress;
	void *progress_arg;
};

struct gc_fsck_stats {
	uint64_t inodes, dirents, extents, chunks, packs, pack_files;
	uint64_t frames_verified;  /* frames read, decoded and fingerprint-checked */
	uint64_t bytes_verified;   /* their raw bytes */
	uint64_t pack_bytes;       /* size of all pack files */
	uint64_t disk_bytes;       /* allocated to them (holes punched by gc excluded) */
	uint64_t live_bytes;       /* frame bytes of chunk records */
	/* Allocated pack bytes no chunk covers, which gc frees (whole blocks
	 * between frames, everything after the last frame), split into what
	 * the pack records count dead and the rest (never committed). */
	uint64_t dead_bytes;
	uint64_t orphan_bytes;
	uint64_t orphan_packs;     /* pack files nothing references */
	uint64_t orphan_packs_removed; /* of which --repair removed (orphan_removed_bytes) */
	uint64_t orphan_removed_bytes;
	uint64_t orphan_inodes;    /* unlinked inodes kept for open files (freed at next mount/gc) */
	uint64_t damaged_chunks;   /* chunks whose data cannot be read */
	uint64_t damaged_files;    /* inodes mapping a damaged chunk */
	uint64_t problems;         /* problems found */
	uint64_t repaired;         /* of which --repair fixed */
	bool in_use;               /* checked next to another process (mount) */
};

/* Check the store.  Returns the number of problems left unrepaired (0 =
 * clean) or a negative errno when the check could not run (-EBUSY for
 * repair on a store in use).  Every problem goes to o->problem. */
int gc_fsck(const char *store, const struct gc_fsck_opts *o, struct gc_fsck_stats *st);

/* --- gc ---------------------------------------------------------------------- */

/* Test hook: act as if the process died right after this step (no
 * cleanup, nothing undone), so tests can check the store is consistent
 * and a later gc finishes the work. */
enum gc_stop {
	GC_STOP_NONE,
	GC_STOP_AFTER_COPY,   /* live frames appended, not synced */
	GC_STOP_AFTER_SYNC,   /* new pack durable, index not yet changed */
	GC_STOP_AFTER_COMMIT, /* index points at the new pack, old file still there */
};

struct gc_opts {
	double threshold;         /* compact packs with reclaimable share >= this (default 0.5) */
	bool dry_run;             /* report what would be done, change nothing */
	bool verify;              /* decode each frame before copying it (slower) */
	uint64_t batch_bytes;     /* live bytes moved per index transaction (default 256 MiB) */
	/* chunks moved per index transaction at most (default 512 Ki, ~150
	 * bytes of memory each): a pack of more (small frames) is compacted
	 * in several batches, kept until its last chunk moved */
	uint64_t batch_moves;
	enum gc_stop stop;
	gc_progress_fn progress;
	void *progress_arg;
};

struct gc_stats {
	uint64_t packs_scanned;
	uint64_t packs_compacted;   /* copied and removed */
	uint64_t packs_emptied;     /* removed without copying (nothing live) */
	uint64_t orphan_packs;      /* files without record or reference, removed */
	uint64_t packs_kept;        /* candidates left because a frame was unreadable */
	uint64_t chunks_moved;
	uint64_t bytes_copied;      /* frame bytes written to new packs */
	uint64_t bytes_punched;     /* freed in place (holes, cut tails) */
	uint64_t orphan_inodes;     /* unlinked inodes deleted (offline gc only) */
	uint64_t bytes_before;      /* pack bytes allocated on disk before */
	uint64_t bytes_after;       /* and after */
	bool punch_unsupported;     /* the file system cannot punch holes */
};

void gc_opts_default(struct gc_opts *o);

/* Offline gc of STORE: takes the exclusive lock, opens index and packs. */
int gc_run(const char *store, const struct gc_opts *o, struct gc_stats *st);

/* The compaction core, for a caller that has the store open (the engine,
 * online).  Only packs with id < pack_id_limit are touched: the caller
 * guarantees that no chunk record will be created in those packs any more
 * (the engine: the first pack id of the current mount; every pack written
 * since may still receive records).  Frames are appended to ps.
 * txn_begin/txn_end (NULL: plain idx transactions) let the caller run the
 * write transactions under its single-writer lock; txn_end commits when
 * rc >= 0, else aborts, and returns the final rc.  Before removing old
 * pack files gc calls before_remove (may be NULL): readers that fetched an
 * old location from an earlier snapshot must be done with it, or retry
 * with a fresh chunk record when pack_read says -ENOENT.  pack_sync (NULL:
 * pack_sync(ps)) makes the copies durable; the engine's also clears a
 * sticky pack error, so its writers do not inherit gc's.  ps may have other
 * writers: copies that an error dropped (pack_store_gen changed) are never
 * committed. */
struct gc_host {
	struct idx *idx;
	struct pack_store *ps;
	const char *pack_dir;
	uint32_t pack_id_limit;
	/* ids this run created (offline: they are >= nothing else), skipped */
	bool (*pack_is_new)(void *arg, uint32_t id);
	int (*txn_begin)(void *arg, struct idx_txn **t);
	int (*txn_end)(void *arg, struct idx_txn *t, int rc);
	void (*before_remove)(void *arg);
	int (*pack_sync)(void *arg);
	void *arg;
};

int gc_compact(const struct gc_host *h, const struct gc_opts *o, struct gc_stats *st);

#endif
