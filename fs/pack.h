/*
 * pack.h - append-only pack files written and read through io_uring.
 *
 * A store's packs live in STORE/packs/NNNNNNNN.pack (8 hex digits of the
 * pack id).  Frames are appended back to back; a pack is never modified in
 * place (gc writes live frames to a new pack and deletes the old file once
 * the index no longer references it).  Each open of the store appends to a
 * fresh pack id handed out by the caller, so bytes past the last commit of
 * an earlier run (crash leftovers) are never overwritten, only found dead
 * by fsck/gc.
 *
 * Durability contract: pack_sync() returns 0 only when every frame appended
 * before the call is on stable storage (written and fdatasync'ed).  The
 * engine commits index records that reference frames only after that.
 *
 * Threads: pack_append and pack_sync are serialized internally (one writer
 * ring under a mutex).  pack_read may be called from any thread
 * concurrently; each thread lazily gets its own io_uring (freed at thread
 * exit or pack_store_close).
 *
 * Errors: negative errno (-EIO, -ENOSPC, -ENOENT for a missing pack file,
 * -EBADMSG never: frames are checked by the codec, not here).
 */
#ifndef MIXFS_PACK_H
#define MIXFS_PACK_H

#include <stddef.h>
#include <stdint.h>

struct pack_store;

struct pack_loc {
	uint32_t pack_id;
	uint32_t len;
	uint64_t off;
};

struct pack_opts {
	uint64_t max_pack_bytes; /* roll over to a new pack past this (default 1 GiB) */
	uint32_t write_buf_bytes; /* size of each write buffer (default 1 MiB) */
	uint32_t write_bufs;      /* buffers in flight at most (default 4): bounds memory */
};

/* Callback that hands out a new, never-used pack id (the engine takes it
 * from the index superblock).  Returns 0 or negative errno. */
typedef int (*pack_id_alloc_fn)(void *arg, uint32_t *id);

/* Open the pack directory dir (must exist).  opts NULL = defaults.  The
 * first append creates a new pack via alloc; if a file already exists at
 * the id alloc returns (an allocation lost in a crash), alloc is called
 * again (up to 16 times) rather than touching that file. */
int pack_store_open(const char *dir, const struct pack_opts *opts,
                    pack_id_alloc_fn alloc, void *alloc_arg, struct pack_store **out);
/* Syncs outstanding appends (errors are logged), closes files. NULL ok. */
void pack_store_close(struct pack_store *ps);

/* Append a frame; *loc receives where it will live.  The bytes are copied
 * (the caller may reuse frame at once).  May block while write buffers are
 * full (backpressure).  A write error is sticky: reported here or by the
 * next pack_sync. */
int pack_append(struct pack_store *ps, const void *frame, uint32_t len, struct pack_loc *loc);
/* Make everything appended so far durable. */
int pack_sync(struct pack_store *ps);
/* Write everything appended so far to the pack files, without making it
 * durable: a full disk or a write error shows here (sticky, as for
 * pack_sync), not only at the next sync. */
int pack_flush(struct pack_store *ps);
/* Recover from a sticky write/sync error (e.g. -ENOSPC once space is
 * freed): waits for writes in flight, drops frames not yet written, and
 * makes the next append start a new pack.  Frames appended since the last
 * successful pack_sync must be treated as lost (never committed).  Returns
 * the error that was cleared, or 0 if there was none. */
int pack_store_clear_error(struct pack_store *ps);
/* Bumped by every pack_store_clear_error that clears an error.  A caller
 * whose appends are not serialized against that call (several writers
 * share the store) reads it before its first append and again after its
 * pack_sync: if it changed, frames may have been dropped, commit nothing. */
uint64_t pack_store_gen(struct pack_store *ps);

/* Read loc->len bytes of frame loc into buf.  Short read (truncated pack)
 * -> -EIO.  Frames appended but not yet written are served from memory. */
int pack_read(struct pack_store *ps, const struct pack_loc *loc, void *buf);
/* Read n frames in one batch of submissions; res[i] gets 0 or -errno for
 * each; returns 0 if all succeeded, else the first error. */
int pack_read_many(struct pack_store *ps, const struct pack_loc *locs, void *const *bufs,
                   int n, int *res);

/* Every pack id below the returned one is sealed: nothing is appended to
 * it any more.  That is the pack appends go to now (one more when it is
 * sealed already: the next append opens a new one); 0 before the first
 * append. */
uint32_t pack_store_current(struct pack_store *ps);
/* Let the next append start a new pack (if the current one holds any
 * bytes), so the current one becomes sealed and gc may collect it. */
void pack_store_seal(struct pack_store *ps);

/* Path of pack id inside dir, into buf (at least PATH_MAX). */
void pack_path(const char *dir, uint32_t id, char *buf, size_t cap);
/* Size in bytes of pack file id, or negative errno. */
int64_t pack_file_size(struct pack_store *ps, uint32_t id);
/* Delete pack file id (gc, after the index no longer references it).
 * -EBUSY for the pack being appended to or one not yet synced. */
int pack_remove(struct pack_store *ps, uint32_t id);

#endif
