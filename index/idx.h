/*
 * idx.h - the mixfs metadata index: one LMDB environment, named databases,
 * big-endian prefix-ordered keys so that every listing is a range scan.
 *
 *   db "super"   : "super" -> struct idx_super; "stats" -> struct idx_stats
 *   db "inodes"  : ino(8)                  -> struct idx_inode
 *   db "dirents" : parent(8) || name       -> ino(8) seq(8) type(1)
 *   db "dirseq"  : parent(8) || seq(8)     -> ino(8) type(1) name
 *                  (readdir offsets are seq: stable under concurrent changes,
 *                   the same idea as btrfs DIR_ITEM / DIR_INDEX)
 *   db "extents" : ino(8) || file_off(8)   -> len(4) chunk_off(4) fp(32)
 *   db "chunks"  : fp(32)                  -> struct idx_chunk (packed)
 *   db "packs"   : pack_id(4)              -> struct idx_pack
 *   db "xattrs"  : ino(8) || name          -> value
 *   db "symlinks": ino(8)                  -> target
 *   db "orphans" : ino(8)                  -> (empty)  unlinked, still open
 *   db "tensors" : key(8) || len(8) || ino(8) -> (empty)  the first large
 *                  tensors of a safetensors / torch.save file, by name key
 *                  and size (codec hint keys): finds a series reference
 *                  anywhere in the store
 *   db "tensorino": ino(8) || key(8) || len(8) -> (empty)  the same, by file
 *   db "hints"   : fp(32) -> ref fp(32)  a chunk coded alone at a lower
 *                  level (lazy coding) in place of a delta against ref: the
 *                  rebase makes ref a reverse delta against it.  No
 *                  reference count: a hint whose ref is gone is ignored;
 *                  the entry goes with its chunk
 *   db "refby"   : ref fp(32) || fp(32) -> (empty)  chunk fp is coded against
 *                  ref: one entry per chunk with a reference (format 4), kept
 *                  by insert, relocate and the deletion of a chunk
 *   db "loose"   : fp(32) -> (empty)  chunk fp lost a reference and now only
 *                  chunks coded against it hold it (no file maps it): the
 *                  engine's rebase splices it out of their chains.  A hint,
 *                  checked before use; the entry goes with its chunk
 *
 * Every function takes a transaction; none keeps state between calls except
 * the environment.  Stats (struct idx_stats) are updated inside the same
 * transaction as the records they count, so they are exact and O(1) to read.
 *
 * Threads: read-only transactions may be used by any thread (MDB_NOTLS), one
 * thread at a time each.  LMDB has one writer: the caller serializes write
 * transactions (the engine batches them: group commit).
 *
 * Errors: negative errno.  MDB_NOTFOUND -> -ENOENT, MDB_MAP_FULL -> -ENOSPC,
 * MDB_CORRUPTED / MDB_PAGE_NOTFOUND / malformed record -> -EIO,
 * MDB_KEYEXIST -> -EEXIST, other LMDB errors -> -EIO (logged with
 * mdb_strerror).
 */
#ifndef MIXFS_IDX_H
#define MIXFS_IDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/chunker.h"
#include "index/fp.h"

#define IDX_FORMAT_VERSION 4u /* 2: chunk height; 3: the frame's checksum in chunk records;
                                 4: the refby and loose tables; an older store
                                 is upgraded on rw open */
#define IDX_ROOT_INO 1u
#define IDX_NAME_MAX 255u
#define IDX_DTYPE_COUNT 4 /* mirrors enum codec_dtype (other,bf16,fp16,fp32) */
#define IDX_LEVEL_COUNT 3 /* mirrors enum codec_level (raw,fast,mix) */

struct idx;
struct idx_txn;

enum {
	IDX_RDONLY = 1u << 0, /* open read-only (tools on a mounted store) */
	IDX_CREATE = 1u << 1, /* create the environment (mkfs) */
};

struct idx_super {
	uint32_t format_version;
	uint8_t uuid[16];
	struct cdc_params cdc;
	uint8_t default_level; /* enum codec_level */
	uint64_t next_ino;     /* next inode number to hand out */
	uint32_t next_pack;    /* next pack id to create */
	int64_t created_ns;
};

struct idx_stats {
	uint64_t files;         /* regular-file inodes */
	uint64_t logical_bytes; /* sum of regular files' sizes (each inode once) */
	uint64_t mapped_bytes;  /* sum of extent lengths (logical minus holes) */
	uint64_t chunks;        /* distinct chunks stored */
	uint64_t unique_bytes;  /* sum of chunks' raw_len (after dedup) */
	uint64_t stored_bytes;  /* sum of chunks' frame_len (after compression) */
	uint64_t ref_chunks;    /* chunks coded against a reference */
	uint64_t ref_raw_bytes;    /* their raw_len (part of unique_bytes) */
	uint64_t ref_stored_bytes; /* their frame_len (part of stored_bytes) */
	uint64_t level_raw[IDX_LEVEL_COUNT], level_stored[IDX_LEVEL_COUNT];
	uint64_t dtype_raw[IDX_DTYPE_COUNT], dtype_stored[IDX_DTYPE_COUNT];
	uint64_t pending_bytes; /* raw bytes stored below the target level */
	/* Of the ref chunks with alone_len known: sum of alone_len - frame_len
	 * (what series coding saved, exactly) */
	uint64_t ref_saved_bytes;
	uint64_t ref_fwd_chunks;   /* ref chunks not REVERSED: rebase still to do */
};

struct idx_inode {
	uint64_t ino;
	uint32_t mode, uid, gid, nlink;
	uint64_t size;
	uint64_t rdev;
	int64_t atime_ns, mtime_ns, ctime_ns;
	/* Stored bytes charged to this file: for every extent, the chunk's
	 * frame_len * extent len / raw_len (a shared chunk is charged fully to
	 * each file, like du on reflinked files).  Feeds st_blocks. */
	uint64_t stored_bytes;
	uint64_t dir_seq;  /* directories: next readdir sequence number */
	uint32_t flags;    /* reserved, 0 */
	uint8_t dtype;     /* dominant enum codec_dtype, for stats/xattr */
};

struct idx_extent {
	uint64_t off;       /* file offset (part of the key) */
	uint32_t len;       /* bytes of the file covered */
	uint32_t chunk_off; /* where those bytes start inside the chunk */
	uint8_t fp[FP_LEN];
};

#define IDX_CHUNK_HAS_REF 0x01u
/* Coded against a newer version of the same bytes (a reverse delta made
 * by the engine's rebase); only with HAS_REF. */
#define IDX_CHUNK_REVERSED 0x02u

/* The longest reference chain anything walks (reads, fsck, the checks of
 * idx_chunk_put): a longer one is taken for a loop, i.e. corruption, and
 * fails -EIO.  Writers keep chains far shorter (ENG_MAX_REF_CHAIN). */
#define IDX_REF_DEPTH_MAX 64u

struct idx_chunk {
	uint8_t fp[FP_LEN];
	uint32_t pack_id;
	uint64_t pack_off;
	uint32_t frame_len;
	uint32_t raw_len;
	uint32_t refcount; /* extents referencing it + chunks using it as ref */
	uint8_t level;     /* enum codec_level of the stored frame */
	uint8_t dtype;     /* enum codec_dtype */
	uint8_t flags;     /* IDX_CHUNK_* */
	/* Longest chain of reverse deltas (IDX_CHUNK_REVERSED) ending in this
	 * chunk, in links (0: none): an upper bound kept by idx when a chunk
	 * is inserted or relocated as a reverse delta (callers' values are
	 * ignored), never lowered.  Format 1 stores read 0. */
	uint8_t height;
	uint8_t ref_fp[FP_LEN]; /* valid iff flags & IDX_CHUNK_HAS_REF */
	/* With HAS_REF: the frame bytes the chunk took coded without its
	 * reference, when known (rebase measures it: a reverse delta replaces
	 * a full frame), else 0.  Without HAS_REF: 0. */
	uint32_t alone_len;
	/* The checksum in the frame's header (XXH3-64 of the raw bytes), which
	 * the read path compares: a damaged record naming another intact frame
	 * reads EIO, not that frame's bytes.  has_sum false: a record written
	 * before format 3 (stays so until the chunk is relocated). */
	uint64_t sum;
	bool has_sum;
};

struct idx_pack {
	uint32_t id;
	uint64_t live_bytes; /* frame bytes referenced by chunk records */
	uint64_t dead_bytes; /* frame bytes of deleted chunks */
};

/* --- environment and transactions ------------------------------------ */

/* Open the LMDB environment in directory dir (created by IDX_CREATE, which
 * also writes a fresh superblock from *init).  map_size 0 = default
 * (64 GiB, sparse).  Opening a store with format_version >
 * IDX_FORMAT_VERSION returns -EPROTONOSUPPORT; a directory with no
 * environment -ENOENT; not a mixfs store -EINVAL; a data.mdb whose meta
 * pages LMDB refuses (damaged) -EUCLEAN, with a message naming it. */
int idx_open(const char *dir, unsigned flags, const struct idx_super *init,
             uint64_t map_size, struct idx **out);
void idx_close(struct idx *x);

/* From now on, a SIGBUS or SIGSEGV at an address in the map of an open
 * index (LMDB reading a damaged data.mdb: it keeps no page checksums) prints
 * "mixfs: index DIR/data.mdb: crashed reading it ...: the file is damaged"
 * and exits with exit_code; other faults go to the handler installed
 * before.  For the tools (fsck, stats, gc, mount); first call wins. */
void idx_guard(int exit_code);

/* Repair dir/data.mdb whose open failed with -EUCLEAN (LMDB refuses a meta
 * page): if exactly one of its two meta pages is damaged and the other is
 * a sound meta page of this file, the damaged one is rewritten (synced):
 * with only the header fields LMDB checks restored when the rest of it is
 * sound and names the commit next to the other's (*in_place true: nothing
 * lost), else as a copy of the sound page (*in_place false: the store is
 * then at the commit it names, the last one or the one before: LMDB never reuses a page of the previous commit's tree, but
 * the bytes of packs a gc freed after the last commit are gone, and
 * fsck names the files that used them).  *txnid: the commit the store is
 * at.  No process may have the store open (the caller holds its exclusive
 * lock).  0 when repaired, -EUCLEAN when not repairable this way (both
 * pages damaged, or neither), or a negative errno of the file's I/O. */
int idx_repair_meta(const char *dir, bool *in_place, uint64_t *txnid);

int idx_txn_begin(struct idx *x, bool rdonly, struct idx_txn **out);
int idx_txn_commit(struct idx_txn *t);  /* frees t, even on error */
void idx_txn_abort(struct idx_txn *t);  /* frees t; NULL is fine */
/* A write transaction whose commit is not synced (namespace operations):
 * after a power cut or kernel crash the index comes back at the last
 * synced state, never at a torn one (index/unsynced, see idx.c).  Falls
 * back to an ordinary transaction when that cannot be guaranteed. */
int idx_txn_begin_lazy(struct idx *x, struct idx_txn **out);
/* An empty file name in the index directory, for what the index itself
 * cannot record (STORE/index/charges): set makes it durably (the file
 * and its name synced), clear removes it (no error if absent). */
int idx_flag_set(struct idx *x, const char *name);
int idx_flag_clear(struct idx *x, const char *name);
bool idx_flag_get(struct idx *x, const char *name);
/* Since when (CLOCK_MONOTONIC ns) commits wait for idx_sync; 0: none. */
int64_t idx_unsynced_since(struct idx *x);
/* Make every commit durable (the meta page of MDB_NOMETASYNC commits, the
 * unsynced ones).  Called before anything that relies on the index being
 * on the disk (fsync, fsyncdir, freeing pack bytes, unmount). */
int idx_sync(struct idx *x);

/* --- superblock and stats -------------------------------------------- */
int idx_super_get(struct idx_txn *t, struct idx_super *s);
int idx_super_put(struct idx_txn *t, const struct idx_super *s);
int idx_ino_alloc(struct idx_txn *t, uint64_t *ino);
int idx_pack_alloc(struct idx_txn *t, uint32_t *pack_id);
/* Inside a write txn, chunks released in it still count until commit. */
int idx_stats_get(struct idx_txn *t, struct idx_stats *s);
/* The counters as the records say they should be: one walk of the inodes,
 * their extents and the chunks (read-only; what fsck compares against). */
int idx_stats_count(struct idx_txn *t, struct idx_stats *s);
/* The names of the counters that differ between a and b ("files",
 * "level_raw[2]", ...), comma-separated into out (cut at cap).  Returns
 * how many differ. */
unsigned idx_stats_diff(const struct idx_stats *a, const struct idx_stats *b, char *out,
                        size_t cap);
/* Repair: replace the stored counters by idx_stats_count's (write txn). */
int idx_stats_reset(struct idx_txn *t);

/* --- inodes ------------------------------------------------------------ */
int idx_inode_get(struct idx_txn *t, uint64_t ino, struct idx_inode *out);
/* Insert or replace; keeps stats.files / logical_bytes exact by comparing
 * with the old record. */
int idx_inode_put(struct idx_txn *t, const struct idx_inode *in);
/* Delete the inode and everything it owns: extents (releasing chunks),
 * xattrs, symlink target, orphan mark.  Updates stats. */
int idx_inode_delete(struct idx_txn *t, uint64_t ino);

/* --- directories --------------------------------------------------------- */
/* Look up name in directory parent: *ino and *type (mode >> 12). -ENOENT. */
int idx_dirent_lookup(struct idx_txn *t, uint64_t parent, const char *name,
                      size_t namelen, uint64_t *ino, uint8_t *type);
/* Add name -> ino.  Takes the next sequence number from dir->dir_seq and
 * advances it; the caller writes dir back.  -EEXIST, -ENAMETOOLONG. */
int idx_dirent_add(struct idx_txn *t, struct idx_inode *dir, const char *name,
                   size_t namelen, uint64_t ino, uint8_t type);
int idx_dirent_del(struct idx_txn *t, uint64_t parent, const char *name, size_t namelen);
/* 1 if the directory has no entries, 0 if it has, or negative errno. */
int idx_dir_is_empty(struct idx_txn *t, uint64_t parent);
/* Call cb for each entry of parent with seq >= from_seq, in seq order, until
 * cb returns non-zero (then that value is returned) or entries run out (0).
 * name is NUL-terminated and valid during the call only.  Callbacks of all
 * the *_iter functions must not modify the index inside the walk. */
typedef int (*idx_dirent_cb)(void *arg, const char *name, size_t namelen,
                             uint64_t ino, uint8_t type, uint64_t seq);
int idx_dir_iter(struct idx_txn *t, uint64_t parent, uint64_t from_seq,
                 idx_dirent_cb cb, void *arg);

/* --- file data map ------------------------------------------------------- */
/* The extent containing file offset off, or else the first one after it;
 * -ENOENT if none at or after off. */
int idx_extent_find(struct idx_txn *t, uint64_t ino, uint64_t off, struct idx_extent *out);
/* Call cb for extents overlapping [start, end) in offset order, until cb
 * returns non-zero. */
typedef int (*idx_extent_cb)(void *arg, const struct idx_extent *e);
int idx_extent_iter(struct idx_txn *t, uint64_t ino, uint64_t start, uint64_t end,
                    idx_extent_cb cb, void *arg);
/* Remove [start, end) from in's extent map: extents inside are deleted,
 * straddling ones trimmed or split (a split adds a chunk reference).  Every
 * removed reference is released; a chunk whose refcount reaches zero is
 * deleted when the transaction commits (its frame bytes become dead bytes
 * of its pack, stats updated, and if it had a reference chunk, that one is
 * released too).  Until then it stays, with refcount 0, so that punching a
 * range and mapping the same chunk again in one transaction (an overwrite
 * with identical data) keeps it.
 * Adjusts in->stored_bytes and stats.mapped_bytes; caller writes in back. */
int idx_file_punch(struct idx_txn *t, struct idx_inode *in, uint64_t start, uint64_t end);
/* How many extents ino has, counted up to stop (<= INT_MAX). */
int idx_extent_count(struct idx_txn *t, uint64_t ino, unsigned stop);
/* Punch the last max extents of in (all when it has fewer): a file
 * deleted in steps of bounded transactions.  Returns how many extents
 * went (0: none was left); caller writes in back. */
int idx_file_punch_last(struct idx_txn *t, struct idx_inode *in, unsigned max);
/* Where a punch of [*from, end) of ino edits at most max extents, walking
 * back from end: *from == start when [start, end) holds no more than max
 * (a truncate or a hole punched in steps of bounded transactions).
 * Returns how many extents [*from, end) holds (those it overlaps, and at
 * most one more just before start), or -errno. */
int idx_extent_tail(struct idx_txn *t, uint64_t ino, uint64_t start, uint64_t end, unsigned max,
                    uint64_t *from);
/* Map file bytes [off, off+len) to chunk fp at chunk_off (the range must be
 * unmapped: punch first).  Takes a reference on the chunk (-ENOENT if it
 * does not exist). Adjusts in->stored_bytes, stats.mapped_bytes. */
int idx_file_map(struct idx_txn *t, struct idx_inode *in, uint64_t off, uint32_t len,
                 const uint8_t fp[FP_LEN], uint32_t chunk_off);

/* The dominant element type of per-dtype byte counts (the most bytes;
 * a tie goes to the lower index, "other" first). */
uint8_t idx_dtype_dominant(const uint64_t bytes[IDX_DTYPE_COUNT]);
/* The dominant element type of ino's mapped bytes, by the dtype of the
 * chunk each extent maps (holes count for nothing). */
int idx_file_dtype(struct idx_txn *t, uint64_t ino, uint8_t *dtype);
/* What ino's extents charge it now (idx_inode.stored_bytes as a fresh
 * map would make it: a chunk re-encoded since, by rebase, splicing or
 * recompression, changed its share).  Returns the extents walked. */
int idx_file_charge(struct idx_txn *t, uint64_t ino, uint64_t *stored);

/* --- chunks and packs ---------------------------------------------------- */
int idx_chunk_get(struct idx_txn *t, const uint8_t fp[FP_LEN], struct idx_chunk *out);
/* Insert a new chunk with c->refcount as given (normally 0: idx_file_map
 * adds the references in the same transaction; one still at 0 when the
 * transaction commits is deleted).  If c has a reference
 * chunk, that chunk's refcount is incremented.  Updates stats and the
 * pack's live bytes.  -EEXIST if the fingerprint is present. */
int idx_chunk_insert(struct idx_txn *t, const struct idx_chunk *c);
/* Rewrite location/level of an existing chunk (gc, recompression); moves
 * the old frame bytes to dead, the new to live, fixes level/stored stats.
 * Takes pack_id, pack_off, frame_len, level, dtype, flags/ref_fp from c
 * (a changed reference chunk is re-referenced); keeps refcount; raw_len
 * must match (-EINVAL).  Files' stored_bytes keep the charge computed with
 * the old frame_len until their extents are rewritten (no reverse map). */
int idx_chunk_relocate(struct idx_txn *t, const struct idx_chunk *c); /* -ELOOP: ref chain loops */
/* Drop one reference; deletes the chunk at zero at commit (as in
 * idx_file_punch). */
int idx_chunk_unref(struct idx_txn *t, const uint8_t fp[FP_LEN]);
/* Repair: set a chunk's refcount to what a full walk counted.  0 deletes
 * the chunk at commit (releasing its reference chunk) like a last unref. */
int idx_chunk_refcount_set(struct idx_txn *t, const uint8_t fp[FP_LEN], uint32_t refcount);
typedef int (*idx_chunk_cb)(void *arg, const struct idx_chunk *c);
int idx_chunk_iter(struct idx_txn *t, idx_chunk_cb cb, void *arg);

int idx_pack_get(struct idx_txn *t, uint32_t id, struct idx_pack *out);
int idx_pack_put(struct idx_txn *t, const struct idx_pack *p);
int idx_pack_del(struct idx_txn *t, uint32_t id);
typedef int (*idx_pack_cb)(void *arg, const struct idx_pack *p);
int idx_pack_iter(struct idx_txn *t, idx_pack_cb cb, void *arg);

/* --- xattrs, symlinks, orphans ------------------------------------------ */
/* Returns value length; copies min(len, cap) bytes (cap 0 = size query).
 * -ENODATA if absent. */
int idx_xattr_get(struct idx_txn *t, uint64_t ino, const char *name, void *buf, size_t cap);
/* flags: 0, XATTR_CREATE (-EEXIST), XATTR_REPLACE (-ENODATA). */
int idx_xattr_set(struct idx_txn *t, uint64_t ino, const char *name, const void *val,
                  size_t len, int flags);
int idx_xattr_del(struct idx_txn *t, uint64_t ino, const char *name); /* -ENODATA */
/* NUL-separated names into buf; returns total length (cap 0 = size query),
 * -ERANGE if cap is too small. */
int idx_xattr_list(struct idx_txn *t, uint64_t ino, char *buf, size_t cap);

int idx_symlink_get(struct idx_txn *t, uint64_t ino, char *buf, size_t cap); /* returns len */
int idx_symlink_put(struct idx_txn *t, uint64_t ino, const char *target, size_t len);

int idx_orphan_add(struct idx_txn *t, uint64_t ino);
int idx_orphan_del(struct idx_txn *t, uint64_t ino);
typedef int (*idx_ino_cb)(void *arg, uint64_t ino);
int idx_orphan_iter(struct idx_txn *t, idx_ino_cb cb, void *arg);

/* --- tensors (series references by name) ---------------------------- */

#define IDX_TENSORS_MAX 64u /* per file */

struct idx_tensor {
	uint64_t key; /* codec hint key of the tensor's name, != 0 */
	uint64_t len; /* bytes */
};

/* Replace ino's tensors with v[0..n) (n <= IDX_TENSORS_MAX; n = 0 drops
 * them: idx_inode_delete does). */
int idx_tensors_set(struct idx_txn *t, uint64_t ino, const struct idx_tensor *v, size_t n);
/* ino's tensors (up to max, in key order) into v; returns how many. */
int idx_tensors_get(struct idx_txn *t, uint64_t ino, struct idx_tensor *v, size_t max);
/* Up to max files holding a tensor of this key and length, newest (highest
 * inode number) first; a file rewritten since may no longer hold it: callers
 * check.  Returns how many were stored in inos[], or a negative errno. */
int idx_tensor_find(struct idx_txn *t, uint64_t key, uint64_t len, uint64_t *inos, size_t max);
/* For fsck: cb(arg, key, len, ino, paired) for every entry of tensorino
 * (paired: its twin in tensors exists), then for every entry of tensors
 * whose twin in tensorino is missing (paired false).  Non-zero from cb
 * stops the walk and is returned. */
typedef int (*idx_tensor_cb)(void *arg, uint64_t key, uint64_t len, uint64_t ino, bool paired);
int idx_tensor_check(struct idx_txn *t, idx_tensor_cb cb, void *arg);
/* Drop one entry (key, len, ino) from both tables; a missing half is fine. */
int idx_tensor_drop(struct idx_txn *t, uint64_t key, uint64_t len, uint64_t ino);

/* --- reverse references and loose chunks ---------------------------- */

/* A chunk held by more references than this is never marked loose. */
#define IDX_LOOSE_DEPS_MAX 64u

/* The chunks coded against ref: up to max (<= IDX_LOOSE_DEPS_MAX) of them
 * into out; returns how many there are, counted up to max + 1. */
int idx_refby_list(struct idx_txn *t, const uint8_t ref[FP_LEN], uint8_t (*out)[FP_LEN],
                   size_t max);
/* Up to max entries of the loose table, in key order; returns how many. */
int idx_loose_list(struct idx_txn *t, uint8_t (*out)[FP_LEN], size_t max);
/* How many loose marks this process wrote so far (some of them maybe in
 * transactions that aborted): a cheap "anything new?" for rebase. */
uint64_t idx_loose_marks(struct idx *x);
/* Mark fp loose (to be looked at again: a hint, checked before use). */
int idx_loose_add(struct idx_txn *t, const uint8_t fp[FP_LEN]);
/* Drop fp's loose mark (0 when it has none). */
int idx_loose_drop(struct idx_txn *t, const uint8_t fp[FP_LEN]);
/* For fsck: refs = chunks with a reference, edges = refby entries that
 * match one, stray = the others; loose_stray = loose entries of missing
 * chunks.  The table is sound iff edges == refs and stray == 0. */
struct idx_refby_check {
	uint64_t refs, edges, stray, loose_stray;
};
int idx_refby_verify(struct idx_txn *t, struct idx_refby_check *r);
/* Repair (and the upgrade to format 4): both tables rebuilt from the
 * chunk records. */
int idx_refby_rebuild(struct idx_txn *t);

/* --- hints (lazily coded series chunks) ------------------------------ */

/* The reference chunk fp was cut for (see db "hints"); -ENOENT if none. */
int idx_hint_get(struct idx_txn *t, const uint8_t fp[FP_LEN], uint8_t ref[FP_LEN]);
int idx_hint_set(struct idx_txn *t, const uint8_t fp[FP_LEN], const uint8_t ref[FP_LEN]);
/* Drop fp's hint (0 when it has none). */
int idx_hint_drop(struct idx_txn *t, const uint8_t fp[FP_LEN]);
/* For fsck: cb(arg, fp, ref, chunk_exists) for every hint. */
typedef int (*idx_hint_cb)(void *arg, const uint8_t fp[FP_LEN], const uint8_t ref[FP_LEN],
                           bool chunk_exists);
int idx_hint_check(struct idx_txn *t, idx_hint_cb cb, void *arg);
/* Iterate all inodes in ino order. */
typedef int (*idx_inode_cb)(void *arg, const struct idx_inode *in);
int idx_inode_iter(struct idx_txn *t, idx_inode_cb cb, void *arg);
/* The same from inode number from on (a walk resumed in steps). */
int idx_inode_iter_from(struct idx_txn *t, uint64_t from, idx_inode_cb cb, void *arg);

#endif
