/*
 * engine.h - the mixfs file system engine, independent of FUSE.
 *
 * The FUSE glue (fuse_ll.c) translates each request into one eng_* call
 * and replies once.  Tools and tests can drive the engine directly.
 *
 * Inode lifetime follows the kernel's: eng_lookup/eng_create/eng_mknod/
 * eng_mkdir/eng_symlink/eng_link each add one lookup reference on success;
 * eng_forget drops them.  An inode whose link count reaches zero keeps its
 * data while it has lookup references or open handles; the last forget
 * deletes it.  (Orphans left by a crash are deleted at the next mount.)
 *
 * All functions return 0 (or a byte count) on success and a negative errno
 * on failure.  They are thread-safe.
 */
#ifndef MIXFS_ENGINE_H
#define MIXFS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>

struct eng;

/* The largest max_ref_chain (larger asks get this): chains stay well
 * under IDX_REF_DEPTH_MAX, past which reads, fsck and rebase take a chain
 * for a loop; a rebase racing a writer may add a link to a chain the
 * writer bounded. */
#define ENG_MAX_REF_CHAIN 32u

struct eng_opts {
	uint64_t cache_bytes;     /* decoded-chunk cache (default 128 MiB) */
	uint64_t dirty_bytes;     /* buffered, not yet chunked write data, all files (default 256 MiB) */
	uint64_t inflight_bytes;  /* chunks queued for compression/packing (default 128 MiB) */
	unsigned workers;         /* compression/decode threads (0 = CPUs) */
	int level;                /* enum codec_level for new chunks (default mix) */
	bool bytes_cm;            /* level mix: context-mixing byte model too (default off) */
	unsigned readahead_chunks;/* chunks decoded ahead of a sequential reader (default 16) */
	/* Average chunk of a file of text (source, JSON, logs:
	 * codec_bytes_file on its first bytes) in no format the hints know:
	 * chunks of bytes_chunk / 2 to 2 * bytes_chunk, so the byte models
	 * learn across more bytes; 0 or not above the store's average: the
	 * store's chunks (default 512 KiB) */
	uint32_t bytes_chunk;
	uint64_t max_pack_bytes;  /* pack rollover size (default 1 GiB) */
	unsigned commit_ms;       /* group commit interval (default 1000) */
	unsigned ns_sync_ms;      /* namespace changes synced within (default 1000; 0: each at once) */
	unsigned max_ref_chain;   /* series coding chain bound (default 8; at most ENG_MAX_REF_CHAIN) */
	/* File-format hints and reference tables of closed files kept for
	 * their later writes, all files together (default 64 MiB; a file of
	 * 100k tensors keeps ~5 MiB until the kernel forgets its inode) */
	uint64_t hints_mem;
	unsigned gc_interval_s;   /* online gc pass every N seconds, 0 = off (default 60) */
	bool rebase;              /* turn series deltas around when idle (default on) */
	unsigned rebase_idle_ms;  /* idle time before rebase starts, 0 = only eng_rebase (default 2000) */
	int lazy;                 /* enum eng_lazy (default ENG_LAZY_AUTO) */
	/* Recoding nobody waits for (rebase: reverse deltas, lazy chunks
	 * recompressed) runs on threads of idle CPU priority (SCHED_IDLE),
	 * so it takes only CPU time nothing else wants (default true). */
	bool bg_idle;
	bool read_only;
};

/* Lazy coding: a chunk coded at fast instead of the mount's level is
 * recompressed to it by the rebase thread once the store is idle (or by
 * eng_rebase), so a writer need not wait for the slow coder. */
enum eng_lazy {
	ENG_LAZY_OFF = 0,  /* always code at the mount's level */
	ENG_LAZY_AUTO = 1, /* at fast while the encoders are behind (more
	                      than three batches wait); needs the rebase
	                      thread (rebase_idle > 0) */
	ENG_LAZY_ALL = 2   /* every new chunk without a reference at fast */
};

void eng_opts_default(struct eng_opts *o);

/* Create a new store in directory path (created 0700 if missing; must be
 * empty otherwise). level is the default codec level recorded. */
int eng_mkfs(const char *path, int level);

/* Open the store.  -ENOENT no such directory/store, -EINVAL not a mixfs
 * store, -EPROTONOSUPPORT newer format.  Errors are also logged with the
 * path. */
int eng_store_open(const char *store, const struct eng_opts *opts, struct eng **out);
/* Take the store's writer lock (flock on STORE/lock): one mount or one
 * offline gc/repair at a time.  Returns 0 with *fd (close it to release),
 * -EBUSY if another process holds it. */
int eng_store_lock(const char *store, int *fd);
/* Flush all dirty data, commit, stop workers, close. NULL ok. */
int eng_store_close(struct eng *e);
/* Turn every pending forward series delta around now (fs/rebase.c; the
 * background thread does it when idle).  *turned: chunks made full. */
int eng_rebase(struct eng *e, uint64_t *turned);

struct eng_attr {
	struct stat st;     /* st_blocks = stored bytes / 512 (rounded up) */
	uint64_t generation;
	bool unsettled;     /* bytes not committed yet: st_blocks is an estimate
	                       (the kernel should not cache it) */
};

/* Set-attribute request (from setattr / truncate). */
enum {
	ENG_SET_MODE = 1 << 0,
	ENG_SET_UID = 1 << 1,
	ENG_SET_GID = 1 << 2,
	ENG_SET_SIZE = 1 << 3,
	ENG_SET_ATIME = 1 << 4,
	ENG_SET_MTIME = 1 << 5,
	ENG_SET_ATIME_NOW = 1 << 6,
	ENG_SET_MTIME_NOW = 1 << 7,
	ENG_SET_CTIME = 1 << 8,
};

struct eng_setattr {
	unsigned valid; /* ENG_SET_* */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};

struct eng_cred {
	uid_t uid;
	gid_t gid;
	mode_t umask;
};

int eng_lookup(struct eng *e, uint64_t parent, const char *name, struct eng_attr *out);
void eng_forget(struct eng *e, uint64_t ino, uint64_t nlookup);
int eng_getattr(struct eng *e, uint64_t ino, struct eng_attr *out);
int eng_setattr(struct eng *e, uint64_t ino, const struct eng_setattr *sa, struct eng_attr *out);

/* mode includes the file type (S_IFREG, S_IFIFO, S_IFCHR, S_IFSOCK, ...);
 * the umask is not applied here (the kernel already did). */
int eng_mknod(struct eng *e, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
              const struct eng_cred *cr, struct eng_attr *out);
int eng_mkdir(struct eng *e, uint64_t parent, const char *name, mode_t mode,
              const struct eng_cred *cr, struct eng_attr *out);
int eng_symlink(struct eng *e, uint64_t parent, const char *name, const char *target,
                const struct eng_cred *cr, struct eng_attr *out);
/* Copies the target (not NUL-terminated) into buf; returns its length. */
int eng_readlink(struct eng *e, uint64_t ino, char *buf, size_t cap);
int eng_link(struct eng *e, uint64_t ino, uint64_t newparent, const char *newname,
             struct eng_attr *out);
int eng_unlink(struct eng *e, uint64_t parent, const char *name);
int eng_rmdir(struct eng *e, uint64_t parent, const char *name);
/* flags: 0, RENAME_NOREPLACE, RENAME_EXCHANGE (from <linux/fs.h>). */
int eng_rename(struct eng *e, uint64_t parent, const char *name, uint64_t newparent,
               const char *newname, unsigned flags);

/* Open handles.  eng_open counts an open (O_TRUNC is delivered by the
 * kernel as setattr size 0, or pass it here: it truncates). */
int eng_open(struct eng *e, uint64_t ino, int flags);
/* Create and open a regular file (one lookup reference + one open). */
int eng_create(struct eng *e, uint64_t parent, const char *name, mode_t mode, int flags,
               const struct eng_cred *cr, struct eng_attr *out);
/* Read up to size bytes at off into buf; returns bytes read (0 at EOF).
 * Holes read as zeros.  A chunk failing its checksum gives -EIO (logged
 * with inode and offset). */
ssize_t eng_read(struct eng *e, uint64_t ino, uint64_t off, size_t size, void *buf);
/* Zero-copy read: like eng_read, but returns the bytes as a vector of
 * pieces of decoded chunks held in the cache (and of a shared zero page
 * for holes), valid until eng_rdvec_release.  Returns the byte count, or
 * -EAGAIN when the file has buffered or in-flight writes or the range
 * needs more than ENG_RDVEC_MAX pieces (use eng_read then). */
#define ENG_RDVEC_MAX 64
struct eng_rdvec {
	size_t n;
	struct iovec iov[ENG_RDVEC_MAX];
	void *hold[ENG_RDVEC_MAX];
};
ssize_t eng_read_vec(struct eng *e, uint64_t ino, uint64_t off, size_t size, struct eng_rdvec *v);
void eng_rdvec_release(struct eng *e, struct eng_rdvec *v);
/* Write; returns size.  Extends the file as needed (sparse gaps). */
ssize_t eng_write(struct eng *e, uint64_t ino, uint64_t off, const void *buf, size_t size);
/* close(2) of one descriptor: push buffered data of ino into chunks,
 * coded and appended, committed later with others (no durability). */
int eng_flush(struct eng *e, uint64_t ino);
/* Make the file's data and metadata durable. */
int eng_fsync(struct eng *e, uint64_t ino, bool datasync);
/* fsync of a directory: its entries durable, and every file closed so far
 * committed and durable too. */
int eng_fsyncdir(struct eng *e, uint64_t ino);
/* Last close of one open handle. */
int eng_release(struct eng *e, uint64_t ino);
/* fallocate: mode 0 (extend size, no preallocation needed),
 * FALLOC_FL_KEEP_SIZE (no-op), FALLOC_FL_PUNCH_HOLE|KEEP_SIZE (punch);
 * others -EOPNOTSUPP. */
int eng_fallocate(struct eng *e, uint64_t ino, int mode, uint64_t off, uint64_t len);
/* copy_file_range(2): bytes [off_in, off_in + len) of ino_in become bytes
 * [off_out, ...) of ino_out by mapping the same chunks (nothing is read,
 * decoded or coded; holes stay holes).  Copies at most ENG_COPY_MAX bytes
 * and not past the source's end; returns the count (0 at or past it).
 * -EINVAL for flags or overlapping ranges of one file, -EISDIR / -EINVAL
 * for a file that is not regular. */
#define ENG_COPY_MAX (1ull << 30)
ssize_t eng_copy_range(struct eng *e, uint64_t ino_in, uint64_t off_in, uint64_t ino_out,
                       uint64_t off_out, uint64_t len, unsigned flags);
/* SEEK_DATA / SEEK_HOLE; returns the offset or -ENXIO. */
int64_t eng_lseek(struct eng *e, uint64_t ino, int64_t off, int whence);

/* Directory listing.  off 0 starts (emitting "." and ".." first); cb gets
 * the offset to resume after each entry; cb returns non-zero to stop
 * (reply buffer full).  Returns 0 or negative errno. */
typedef int (*eng_dir_cb)(void *arg, const char *name, const struct stat *st, int64_t next_off);
int eng_readdir(struct eng *e, uint64_t ino, int64_t off, eng_dir_cb cb, void *arg);
/* Whether ino is a directory the caller may open: 0, -ENOTDIR, -ENOENT. */
int eng_opendir(struct eng *e, uint64_t ino);

int eng_statfs(struct eng *e, struct statvfs *out);

/* xattrs: the user.mixfs.* names are computed (read-only) and listed too. */
int eng_setxattr(struct eng *e, uint64_t ino, const char *name, const void *val, size_t len,
                 int flags);
/* Returns the value length; cap 0 = size query; -ERANGE, -ENODATA. */
int eng_getxattr(struct eng *e, uint64_t ino, const char *name, void *buf, size_t cap);
int eng_listxattr(struct eng *e, uint64_t ino, char *buf, size_t cap);
int eng_removexattr(struct eng *e, uint64_t ino, const char *name);

/* Commit all dirty data of all files and sync (syncfs / unmount). */
int eng_sync_all(struct eng *e);

/* Frames read from packs and decoded (or verified, stored raw) into the
 * read cache since the store was opened, references included: a cold
 * sequential read loads each chunk once (tests, benchmarks). */
uint64_t eng_frames_loaded(struct eng *e);

#endif
