/*
 * gc.c - fsck and pack compaction (interface and invariants in gc.h).
 *
 * fsck loads the chunk, pack and inode records of one LMDB snapshot into
 * sorted arrays (records come out of LMDB in key order, so lookups are
 * binary searches and nothing needs a hash table), walks directories and
 * extents against them, decodes every frame on a worker pool, and only
 * then reports: a problem lists the files it affects, which needs one more
 * pass over the extents once the damaged chunks are known.
 *
 * Memory: ~80 bytes per chunk and ~48 per inode plus names, in the tool
 * process only (the daemon's per-chunk RAM rule does not apply to fsck).
 */
#include "fs/gc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec/codec.h"
#include "fs/pack.h"
#include "fs/pool.h"
#include "index/fp.h"
#include "index/idx.h"

#define NONE UINT32_MAX
#define REF_DEPTH_MAX IDX_REF_DEPTH_MAX /* as the engine's read path: a corrupt chain cannot loop */
#define PATH_DEPTH_MAX 8192
#define VERIFY_JOB_BYTES (8u << 20)
#define GC_DEF_THRESHOLD 0.5
#define GC_DEF_BATCH (256ull << 20)
#define GC_DEF_MOVES (512u << 10)
#define LOST_FOUND "lost+found"

/* ------------------------------------------------------------------------ */
/* small helpers                                                             */

/* Growable array of elements of size sz. */
struct vec {
	void *p;
	size_t n, cap, sz;
};

static void *vec_push(struct vec *v)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 64;
		void *np = realloc(v->p, nc * v->sz);
		if (!np)
			return NULL;
		v->p = np;
		v->cap = nc;
	}
	return (char *)v->p + v->sz * v->n++;
}

static void vec_free(struct vec *v)
{
	free(v->p);
	v->p = NULL;
	v->n = v->cap = 0;
}

static char *path_join(const char *a, const char *b)
{
	char *p;

	return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

static void progress(gc_progress_fn fn, void *arg, const char *phase, uint64_t done,
                     uint64_t total)
{
	if (fn)
		fn(arg, phase, done, total);
}

/* Make removals in dir durable; failure only means a removed pack may come
 * back after a crash, as an orphan for the next gc. */
static void dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* ------------------------------------------------------------------------ */
/* locking                                                                    */

int gc_store_in_use(const char *store)
{
	int status, rc;
	pid_t pid;
	char *p;

	p = path_join(store, "index/lock.mdb");
	if (!p)
		return -ENOMEM;
	/* Every process with the environment open holds a read lock on byte 0
	 * of lock.mdb (mdb_env_excl_lock).  The probe runs in a child: closing
	 * any descriptor of that file drops all of a process's POSIX locks on
	 * it, which would silently unlock an environment this process has
	 * open; the child has no locks to lose, and it sees ours as foreign.
	 * Only open, fcntl and _exit run in the child (safe after fork in a
	 * threaded process). */
	pid = fork();
	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
		int fd = open(p, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			_exit(errno == ENOENT ? 0 : 3);
		if (fcntl(fd, F_GETLK, &fl) < 0)
			_exit(3);
		_exit(fl.l_type != F_UNLCK ? 1 : 0);
	}
	free(p);
	if (pid < 0)
		return -errno;
	while ((rc = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (rc < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
		return -EIO;
	return WEXITSTATUS(status);
}

struct gc_lock {
	int gc_fd;     /* STORE/gc.lock */
	int writer_fd; /* STORE/lock, exclusive mode only */
};

/* flock STORE/name without waiting; returns the fd or negative errno. */
static int lock_file(const char *store, const char *name, int op)
{
	char *p = path_join(store, name);
	int fd;

	if (!p)
		return -ENOMEM;
	/* NOFOLLOW: a symlink planted in the store must not make us create
	 * or lock a file elsewhere (the same below for pack files). */
	fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EROFS || errno == EACCES) && op == LOCK_SH)
		/* a store we may only read (a read-only mount, another
		 * owner's): a shared flock needs no write access */
		fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(p);
	if (fd < 0)
		return -errno;
	if (flock(fd, op | LOCK_NB) < 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;

		close(fd);
		return rc;
	}
	return fd;
}

int gc_store_present(const char *store)
{
	char *p = path_join(store, "index/data.mdb");
	struct stat st;
	int rc;

	if (!p)
		return -ENOMEM;
	rc = stat(p, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -ENOENT;
	free(p);
	return rc;
}

int gc_store_lock(const char *store, enum gc_lock_mode mode, struct gc_lock **out)
{
	bool excl = mode == GC_LOCK_EXCLUSIVE;
	struct gc_lock *l;
	struct stat st;
	int rc;

	*out = NULL;
	if (stat(store, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	/* no lock files left in a directory that is no store (a mistyped
	 * path: mkfs would then refuse it as not empty) */
	rc = gc_store_present(store);
	if (rc < 0)
		return rc;
	l = malloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->writer_fd = -1;
	l->gc_fd = lock_file(store, "gc.lock", excl ? LOCK_EX : LOCK_SH);
	if (l->gc_fd == -ENOENT && !excl) {
		/* read-only and never locked: no gc has run on it (gc
		 * creates gc.lock), and none can here */
		l->gc_fd = -1;
	} else if (l->gc_fd < 0) {
		rc = l->gc_fd;
		goto fail;
	}
	if (excl) {
		l->writer_fd = lock_file(store, "lock", LOCK_EX);
		if (l->writer_fd < 0) {
			rc = l->writer_fd;
			goto fail;
		}
		rc = gc_store_in_use(store);
		if (rc != 0) {
			rc = rc > 0 ? -EBUSY : rc;
			goto fail;
		}
	}
	*out = l;
	return 0;
fail:
	gc_store_unlock(l);
	return rc;
}

void gc_store_unlock(struct gc_lock *l)
{
	if (!l)
		return;
	if (l->writer_fd >= 0)
		close(l->writer_fd); /* drops the flock */
	if (l->gc_fd >= 0)
		close(l->gc_fd);
	free(l);
}

/* ------------------------------------------------------------------------ */
/* pack files on disk                                                          */

struct pfile {
	uint32_t id;
	uint64_t size; /* apparent */
	uint64_t disk; /* allocated (st_blocks): what holes freed do not count */
};

static int pfile_cmp(const void *a, const void *b)
{
	const struct pfile *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Pack files NNNNNNNN.pack in dir, sorted by id.  Other names are not
 * ours to judge (an editor's backup, lost+found of the host fs). */
static int pfiles_list(const char *dir, struct vec *out)
{
	struct dirent *de;
	DIR *d;
	int rc = 0;

	out->sz = sizeof(struct pfile);
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct pfile *pf;
		struct stat st;
		unsigned id;
		char tail;

		if (strlen(de->d_name) != 13 || sscanf(de->d_name, "%8x.pac%c", &id, &tail) != 2 ||
		    tail != 'k' || strspn(de->d_name, "0123456789abcdef") != 8)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* removed meanwhile (online gc) */
			rc = -errno;
			break;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		pf = vec_push(out);
		if (!pf) {
			rc = -ENOMEM;
			break;
		}
		pf->id = id;
		pf->size = (uint64_t)st.st_size;
		pf->disk = (uint64_t)st.st_blocks * 512;
	}
	if (rc == 0 && errno)
		rc = -errno;
	closedir(d);
	if (rc == 0 && out->n)
		qsort(out->p, out->n, out->sz, pfile_cmp);
	return rc;
}

static const struct pfile *pfile_find(const struct vec *v, uint32_t id)
{
	struct pfile key = { .id = id };

	return v->n ? bsearch(&key, v->p, v->n, v->sz, pfile_cmp) : NULL;
}

/* --- reclaimable ranges of a pack ------------------------------------------
 *
 * Bytes of a pack file no chunk record covers are dead or orphan.  gc frees
 * them in place, without copying: holes punched between frames (whole
 * blocks only, so a live frame's block is never touched) and the file cut
 * after its last frame (packs are never appended to after the run that
 * wrote them).  fsck counts what that would free, allocated bytes only, so
 * after a complete gc it reports 0 dead and 0 orphan bytes. */

struct span {
	uint64_t off, end;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* The reclaimable ranges of a file of size bytes whose frames are v[0..n)
 * (sorted by offset, possibly overlapping if the index is damaged), into
 * gaps: interior gaps shrunk to whole blocks of bs, then the tail. */
static int reclaim_ranges(const struct span *v, size_t n, uint64_t size, uint64_t bs,
                          struct vec *gaps)
{
	uint64_t pos = 0;

	gaps->sz = sizeof(struct span);
	gaps->n = 0;
	for (size_t i = 0; i <= n; i++) {
		uint64_t s = i < n ? v[i].off : size, e = i < n ? v[i].end : size;
		struct span *g;

		if (s > size)
			s = size;
		if (i == n) {
			if (pos >= size)
				break;
		} else {
			uint64_t a = (pos + bs - 1) / bs * bs, b = s / bs * bs;

			if (s > pos && b > a) {
				g = vec_push(gaps);
				if (!g)
					return -ENOMEM;
				g->off = a;
				g->end = b;
			}
			if (e > pos)
				pos = e;
			continue;
		}
		g = vec_push(gaps);
		if (!g)
			return -ENOMEM;
		g->off = pos;
		g->end = size;
	}
	return 0;
}

/* Allocated bytes of fd inside the sorted, disjoint ranges g[0..n). */
static int64_t alloc_in(int fd, const struct span *g, size_t n)
{
	uint64_t total = 0;
	off_t pos = 0;
	size_t k = 0;

	while (k < n) {
		off_t from = (off_t)g[k].off > pos ? (off_t)g[k].off : pos;
		off_t d = lseek(fd, from, SEEK_DATA), h;

		if (d < 0)
			return errno == ENXIO ? (int64_t)total : -errno;
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			return -errno;
		while (k < n && g[k].end <= (uint64_t)d)
			k++;
		for (size_t j = k; j < n && g[j].off < (uint64_t)h; j++) {
			uint64_t lo = g[j].off > (uint64_t)d ? g[j].off : (uint64_t)d;
			uint64_t hi = g[j].end < (uint64_t)h ? g[j].end : (uint64_t)h;

			if (hi > lo)
				total += hi - lo;
		}
		while (k < n && g[k].end <= (uint64_t)h)
			k++;
		pos = h;
	}
	return (int64_t)total;
}

/* Reclaimable allocated bytes of pack id with frames v[0..n); punch: also
 * free them.  *unsupported is set when the file system cannot punch.
 * *size_after (if not NULL, and bytes are reclaimable): the pack's size once
 * its dead tail is cut, punched or not (so a dry run judges it as gc will). */
static int64_t pack_reclaim(const char *dir, uint32_t id, const struct span *v, size_t n,
                            bool punch, bool *unsupported, uint64_t *size_after)
{
	struct vec gaps = { .sz = sizeof(struct span) };
	char path[PATH_MAX];
	struct stat st;
	int64_t rc;
	int fd;

	pack_path(dir, id, path, sizeof(path));
	fd = open(path, (punch ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	rc = reclaim_ranges(v, n, (uint64_t)st.st_size, st.st_blksize > 0 ? (uint64_t)st.st_blksize : 4096,
	                    &gaps);
	if (rc < 0)
		goto out;
	rc = alloc_in(fd, gaps.p, gaps.n);
	if (rc > 0 && size_after) {
		const struct span *last = gaps.n ? (const struct span *)gaps.p + gaps.n - 1 : NULL;

		*size_after = last && last->end == (uint64_t)st.st_size ? last->off
		                                                        : (uint64_t)st.st_size;
	}
	if (rc <= 0 || !punch)
		goto out;
	for (size_t i = 0; i < gaps.n; i++) {
		const struct span *g = (const struct span *)gaps.p + i;
		int r;

		if (g->end == (uint64_t)st.st_size && i + 1 == gaps.n)
			r = ftruncate(fd, (off_t)g->off);
		else
			r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)g->off,
			              (off_t)(g->end - g->off));
		if (r < 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
			*unsupported = true;
			continue; /* the tail cut may still work */
		}
		if (r < 0) {
			rc = -errno;
			goto out;
		}
	}
out:
	vec_free(&gaps);
	close(fd);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* frame verification, shared by fsck and gc --verify                          */

/* How to find a chunk's reference chunk and its location. */
struct chunk_src {
	/* Fill *c for fp, or -ENOENT. */
	int (*get)(void *arg, const uint8_t fp[FP_LEN], struct idx_chunk *c);
	void *arg;
	struct pack_store *ps;
};

/* Distinct codes for what went wrong with a frame (negative errno values
 * so they flow through the usual paths). */
#define FRAME_E_MISSING (-ENOENT)  /* pack file missing */
#define FRAME_E_SHORT (-ENODATA)   /* frame past the end of the pack file */
#define FRAME_E_READ (-EIO)        /* read error */
#define FRAME_E_CORRUPT (-EBADMSG) /* header or checksum */
#define FRAME_E_FP (-EILSEQ)       /* decodes, but not the fingerprint's bytes */
#define FRAME_E_REF (-ENOLINK)     /* reference chunk missing or unreadable */

static const char *frame_strerror(int rc)
{
	switch (rc) {
	case FRAME_E_MISSING:
		return "pack file missing";
	case FRAME_E_SHORT:
		return "frame past the end of the pack file (truncated)";
	case FRAME_E_READ:
		return "read error";
	case FRAME_E_CORRUPT:
		return "frame corrupt (header or checksum)";
	case FRAME_E_FP:
		return "decoded bytes do not match the chunk's SHA-256";
	case FRAME_E_REF:
		return "reference chunk missing or unreadable";
	default:
		return strerror(-rc);
	}
}

int gc_frame_fits(const struct idx_chunk *c, const void *frame, struct codec_frame_info *fi)
{
	/* The index says how long the frame is; the header must agree, or a
	 * frame boundary moved (e.g. a record pointing into another frame). */
	int rc = codec_frame_parse(frame, c->frame_len, fi);

	if (rc == 0 && ((uint64_t)fi->header_len + fi->payload_len != c->frame_len ||
	                fi->raw_len != c->raw_len || fi->level != c->level ||
	                fi->dtype != c->dtype || (c->has_sum && fi->checksum != c->sum) ||
	                !(fi->flags & CODEC_FLAG_REF) != !(c->flags & IDX_CHUNK_HAS_REF)))
		rc = -EBADMSG;
	return rc < 0 ? -EBADMSG : 0;
}

/* Decode chunk c into a malloc'ed buffer of c->raw_len bytes (*raw), with
 * its reference chain.  check_fp: also compare SHA-256 with c->fp. */
static int chunk_decode(struct codec_ctx *ctx, const struct chunk_src *src,
                        const struct idx_chunk *c, unsigned depth, bool check_fp, uint8_t **raw)
{
	struct codec_frame_info fi;
	struct idx_chunk rc_;
	uint8_t *frame = NULL, *ref = NULL, *out = NULL;
	uint8_t fp[FP_LEN];
	size_t ref_len = 0;
	ssize_t n;
	int rc;

	*raw = NULL;
	if (c->flags & IDX_CHUNK_HAS_REF) {
		rc = depth >= REF_DEPTH_MAX ? FRAME_E_REF : src->get(src->arg, c->ref_fp, &rc_);
		if (rc == 0)
			rc = chunk_decode(ctx, src, &rc_, depth + 1, false, &ref);
		if (rc < 0) {
			rc = rc == -ENOMEM ? rc : FRAME_E_REF;
			goto out;
		}
		ref_len = rc_.raw_len;
	}
	frame = malloc(c->frame_len ? c->frame_len : 1);
	out = malloc(c->raw_len ? c->raw_len : 1);
	if (!frame || !out) {
		rc = -ENOMEM;
		goto out;
	}
	struct pack_loc loc = { .pack_id = c->pack_id, .off = c->pack_off, .len = c->frame_len };
	rc = pack_read(src->ps, &loc, frame);
	if (rc < 0) {
		rc = rc == -ENOENT ? FRAME_E_MISSING : rc == -ENOMEM ? rc : FRAME_E_READ;
		goto out;
	}
	rc = gc_frame_fits(c, frame, &fi);
	if (rc < 0) {
		rc = FRAME_E_CORRUPT;
		goto out;
	}
	n = codec_frame_decode(ctx, frame, c->frame_len, out, c->raw_len, ref, ref_len);
	if (n < 0 || (size_t)n != c->raw_len) {
		rc = n == -ENOMEM ? -ENOMEM : FRAME_E_CORRUPT;
		goto out;
	}
	if (check_fp) {
		rc = fp_compute(out, c->raw_len, fp);
		if (rc == 0 && memcmp(fp, c->fp, FP_LEN) != 0)
			rc = FRAME_E_FP;
		if (rc < 0)
			goto out;
	}
	*raw = out;
	out = NULL;
	rc = 0;
out:
	free(frame);
	free(ref);
	free(out);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* fsck: in-memory tables                                                     */

enum {
	FC_BAD = 1u << 0,       /* data unreadable (err says why) */
	FC_FLAGGED = 1u << 1,   /* a problem wants the files that use it */
	FC_HAS_REF = 1u << 2,
	FC_HAS_SUM = 1u << 3,   /* sum is the record's frame checksum */
};

struct fchunk {
	uint8_t fp[FP_LEN];
	uint64_t pack_off;
	uint64_t sum;
	uint32_t pack_id;
	uint32_t frame_len, raw_len;
	uint32_t refcount; /* stored */
	uint32_t counted;  /* references found */
	uint32_t ref;      /* index of the reference chunk, or NONE */
	uint32_t prob;     /* first problem about it, or NONE */
	int err;           /* frame verification result */
	uint8_t level, dtype, state;
};

enum {
	FI_ORPHAN = 1u << 0,  /* in the orphans db */
	FI_REACHED = 1u << 1, /* reachable from the root */
	FI_DAMAGED = 1u << 2, /* maps a bad chunk or a broken extent */
	FI_FLAGGED = 1u << 3, /* some problem lists it */
};

struct finode {
	uint64_t ino;
	uint64_t size;
	uint32_t mode, nlink;
	uint32_t links;   /* entries naming it */
	uint32_t subdirs; /* directories: entries that are directories */
	uint32_t dirent;  /* first entry naming it (index), or NONE */
	uint32_t kids, nkids; /* directories: its entries [kids, kids + nkids) */
	uint8_t flags;
};

struct fdirent {
	uint64_t parent, child;
	uint32_t name_off, next; /* next entry naming the same child */
	uint16_t name_len;
	uint8_t type;
};

struct fprob {
	enum gc_problem_kind kind;
	char *msg;
	bool repaired, data_lost;
	uint32_t next_same_chunk; /* list of problems of one chunk */
	struct vec files;         /* struct gc_file, path filled at report */
};

/* Repairs planned while checking, applied in one write transaction. */
struct fix {
	enum { FIX_DIRENT_DEL, FIX_ORPHAN_DEL, FIX_NLINK, FIX_LOST, FIX_REFCOUNT, FIX_PACK_PUT,
	       FIX_PACK_DEL, FIX_SUPER, FIX_STATS, FIX_TENSOR_DROP, FIX_HINT_DROP,
	       FIX_REFBY } what;
	uint32_t prob;
	uint64_t a, b; /* ino/parent, count/..., tensor key */
	uint32_t idx;  /* dirent index, chunk index */
	uint64_t c;    /* tensor length */
	uint8_t fp[FP_LEN]; /* hint key */
};

struct fsck {
	const char *store;
	const struct gc_fsck_opts *o;
	struct gc_fsck_stats *st;
	struct idx *x;
	struct idx_txn *t;
	struct pack_store *ps;
	char *pack_dir;
	struct idx_super sb;
	struct idx_stats stats;
	struct vec chunks;  /* struct fchunk, sorted by fp */
	struct vec refs;    /* struct ref_pending */
	struct vec packs;   /* struct idx_pack, sorted by id */
	struct vec files;   /* struct pfile, sorted by id */
	struct vec inodes;  /* struct finode, sorted by ino */
	struct vec dirents; /* struct fdirent */
	struct vec names;   /* char */
	struct vec probs;   /* struct fprob */
	struct vec fixes;   /* struct fix */
	uint32_t *ord;      /* chunk indices in (pack, offset) order */
	uint64_t mapped;    /* sum of extent lengths */
	atomic_uint_fast64_t verified_bytes, verified_frames;
};

struct ref_pending {
	uint32_t chunk;
	uint8_t ref_fp[FP_LEN];
};

static int fchunk_fp_cmp(const void *key, const void *elem)
{
	return memcmp(key, ((const struct fchunk *)elem)->fp, FP_LEN);
}

static uint32_t chunk_find(const struct fsck *f, const uint8_t fp[FP_LEN])
{
	const struct fchunk *c;

	if (!f->chunks.n)
		return NONE;
	c = bsearch(fp, f->chunks.p, f->chunks.n, f->chunks.sz, fchunk_fp_cmp);
	return c ? (uint32_t)(c - (const struct fchunk *)f->chunks.p) : NONE;
}

static struct fchunk *chunk_at(const struct fsck *f, uint32_t i)
{
	return (struct fchunk *)f->chunks.p + i;
}

static int finode_cmp(const void *key, const void *elem)
{
	uint64_t k = *(const uint64_t *)key, i = ((const struct finode *)elem)->ino;

	return k < i ? -1 : k > i;
}

static struct finode *inode_find(const struct fsck *f, uint64_t ino)
{
	return f->inodes.n ? bsearch(&ino, f->inodes.p, f->inodes.n, f->inodes.sz, finode_cmp) : NULL;
}

static int ipack_cmp(const void *key, const void *elem)
{
	uint32_t k = *(const uint32_t *)key, i = ((const struct idx_pack *)elem)->id;

	return k < i ? -1 : k > i;
}

static struct idx_pack *packrec_find(const struct fsck *f, uint32_t id)
{
	return f->packs.n ? bsearch(&id, f->packs.p, f->packs.n, f->packs.sz, ipack_cmp) : NULL;
}

static void fp_short(const uint8_t fp[FP_LEN], char out[17])
{
	char hex[2 * FP_LEN + 1];

	fp_hex(fp, hex);
	memcpy(out, hex, 16);
	out[16] = '\0';
}

/* Record a problem; returns its index, or NONE when out of memory (the
 * count still goes up: a problem is never lost from the exit status). */
static uint32_t __attribute__((format(printf, 3, 4)))
prob_add(struct fsck *f, enum gc_problem_kind kind, const char *fmt, ...)
{
	struct fprob *p;
	va_list ap;
	char *msg;
	int n;

	f->st->problems++;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NONE;
	p = vec_push(&f->probs);
	if (!p) {
		free(msg);
		return NONE;
	}
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->msg = msg;
	p->next_same_chunk = NONE;
	p->files.sz = sizeof(struct gc_file);
	return (uint32_t)(f->probs.n - 1);
}

static struct fprob *prob_at(const struct fsck *f, uint32_t i)
{
	return (struct fprob *)f->probs.p + i;
}

/* The problem makes the data of the files it lists unreadable. */
static void prob_lost(struct fsck *f, uint32_t prob)
{
	if (prob != NONE)
		prob_at(f, prob)->data_lost = true;
}

static void prob_file(struct fsck *f, uint32_t prob, uint64_t ino, uint64_t off)
{
	struct finode *in = inode_find(f, ino);
	struct gc_file *g;

	if (prob == NONE)
		return;
	g = vec_push(&prob_at(f, prob)->files);
	if (!g)
		return;
	g->ino = ino;
	g->off = off;
	g->path = NULL;
	if (in)
		in->flags |= FI_FLAGGED;
}

/* A problem about chunk i: linked to it so the file pass can list files. */
static void prob_chunk(struct fsck *f, uint32_t prob, uint32_t i)
{
	struct fchunk *c = chunk_at(f, i);

	if (prob == NONE)
		return;
	prob_at(f, prob)->next_same_chunk = c->prob;
	c->prob = prob;
	c->state |= FC_FLAGGED;
}

static struct fix *fix_add(struct fsck *f, int what, uint32_t prob, uint64_t a, uint64_t b,
                           uint32_t idx)
{
	struct fix *x;

	if (!f->o->repair || prob == NONE)
		return NULL;
	x = vec_push(&f->fixes);
	if (!x)
		return NULL;
	x->what = what;
	x->prob = prob;
	x->a = a;
	x->b = b;
	x->idx = idx;
	x->c = 0;
	return x;
}

/* ------------------------------------------------------------------------ */
/* fsck: loading                                                             */

static int load_chunk(void *arg, const struct idx_chunk *c)
{
	struct fsck *f = arg;
	struct fchunk *fc;

	/* Keys come sorted; the lookups below depend on it. */
	if (f->chunks.n && memcmp(chunk_at(f, (uint32_t)f->chunks.n - 1)->fp, c->fp, FP_LEN) >= 0)
		return -EIO;
	if (f->chunks.n >= NONE - 1)
		return -EFBIG;
	fc = vec_push(&f->chunks);
	if (!fc)
		return -ENOMEM;
	memset(fc, 0, sizeof(*fc));
	memcpy(fc->fp, c->fp, FP_LEN);
	fc->pack_id = c->pack_id;
	fc->pack_off = c->pack_off;
	fc->frame_len = c->frame_len;
	fc->raw_len = c->raw_len;
	fc->refcount = c->refcount;
	fc->level = c->level;
	fc->dtype = c->dtype;
	fc->sum = c->sum;
	if (c->has_sum)
		fc->state |= FC_HAS_SUM;
	fc->ref = NONE;
	fc->prob = NONE;
	if (c->flags & IDX_CHUNK_HAS_REF) {
		struct ref_pending *r = vec_push(&f->refs);

		if (!r)
			return -ENOMEM;
		fc->state |= FC_HAS_REF;
		r->chunk = (uint32_t)(f->chunks.n - 1);
		memcpy(r->ref_fp, c->ref_fp, FP_LEN);
	}
	if (f->chunks.n % 4096 == 0)
		progress(f->o->progress, f->o->progress_arg, "chunks", f->chunks.n, f->stats.chunks);
	return 0;
}

static int load_pack(void *arg, const struct idx_pack *p)
{
	struct fsck *f = arg;
	struct idx_pack *d = vec_push(&f->packs);

	if (!d)
		return -ENOMEM;
	*d = *p;
	return 0;
}

static int load_inode(void *arg, const struct idx_inode *in)
{
	struct fsck *f = arg;
	struct finode *fi;

	if (f->inodes.n && ((struct finode *)f->inodes.p)[f->inodes.n - 1].ino >= in->ino)
		return -EIO;
	if (f->inodes.n >= NONE - 1)
		return -EFBIG;
	fi = vec_push(&f->inodes);
	if (!fi)
		return -ENOMEM;
	memset(fi, 0, sizeof(*fi));
	fi->ino = in->ino;
	fi->size = in->size;
	fi->mode = in->mode;
	fi->nlink = in->nlink;
	fi->dirent = NONE;
	fi->kids = NONE;
	return 0;
}

static int load_orphan(void *arg, uint64_t ino)
{
	struct fsck *f = arg;
	struct finode *in = inode_find(f, ino);
	uint32_t p;

	if (!in) {
		p = prob_add(f, GC_P_ORPHAN, "orphan mark of inode %" PRIu64 ", which does not exist",
		             ino);
		fix_add(f, FIX_ORPHAN_DEL, p, ino, 0, 0);
	} else if (in->nlink != 0) {
		/* The next mount would delete a file that still has names. */
		p = prob_add(f, GC_P_ORPHAN,
		             "inode %" PRIu64 " is marked orphan (deleted at next mount) but has "
		             "link count %" PRIu32, ino, in->nlink);
		prob_file(f, p, ino, UINT64_MAX);
		fix_add(f, FIX_ORPHAN_DEL, p, ino, 0, 0);
	} else {
		in->flags |= FI_ORPHAN;
		f->st->orphan_inodes++;
	}
	return 0;
}

/* An entry of the tensors tables (series references by name: hints, so
 * nothing is lost by dropping one): of a file that exists, whole. */
static int load_tensor(void *arg, uint64_t key, uint64_t len, uint64_t ino, bool paired)
{
	struct fsck *f = arg;
	struct finode *in = inode_find(f, ino);
	struct fix *x;
	uint32_t p;

	if (in && S_ISREG(in->mode) && paired)
		return 0;
	p = prob_add(f, GC_P_TENSORS, "tensors-table entry (key %016" PRIx64 ", %" PRIu64 " bytes) of "
	             "inode %" PRIu64 ": %s", key, len, ino,
	             !in ? "no such inode" : !S_ISREG(in->mode) ? "not a regular file"
	                                                    : "its other half is missing");
	x = fix_add(f, FIX_TENSOR_DROP, p, ino, key, 0);
	if (x)
		x->c = len;
	return 0;
}

/* A lazy-coding hint (the reference a chunk coded alone was cut for; no
 * reference count, so nothing is lost by dropping one): of a chunk that
 * exists.  Its reference may be gone (rebase then ignores it). */
static int load_hint(void *arg, const uint8_t fp[FP_LEN], const uint8_t ref[FP_LEN], bool exists)
{
	struct fsck *f = arg;
	char hex[2 * FP_LEN + 1];
	struct fix *x;
	uint32_t p;
	(void)ref;

	if (exists)
		return 0;
	for (unsigned i = 0; i < FP_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", fp[i]);
	p = prob_add(f, GC_P_HINTS, "hints-table entry of chunk %s: no such chunk", hex);
	x = fix_add(f, FIX_HINT_DROP, p, 0, 0, 0);
	if (x)
		memcpy(x->fp, fp, FP_LEN);
	return 0;
}

/* The refby table (what codes against each chunk; format 4) against the
 * chunk records, and the loose marks (rebase's hints): rebuilt whole from
 * the records, nothing is lost. */
static int check_refby(struct fsck *f)
{
	struct idx_refby_check r;
	uint32_t p;
	int rc = idx_refby_verify(f->t, &r);

	if (rc < 0 || (r.edges == r.refs && r.stray == 0 && r.loose_stray == 0))
		return rc;
	p = prob_add(f, GC_P_REFBY, "reverse-reference table: %" PRIu64 " of %" PRIu64 " chunks coded "
	             "against another have no entry, %" PRIu64 " entries match no chunk, %" PRIu64
	             " loose marks of missing chunks", r.refs - r.edges, r.refs, r.stray,
	             r.loose_stray);
	fix_add(f, FIX_REFBY, p, 0, 0, 0);
	return 0;
}

struct dir_walk {
	struct fsck *f;
	uint64_t parent;
};

static int load_dirent(void *arg, const char *name, size_t namelen, uint64_t ino, uint8_t type,
                       uint64_t seq)
{
	struct dir_walk *w = arg;
	struct fsck *f = w->f;
	struct fdirent *d;
	char *nm;

	(void)seq;
	if (namelen == 0 || namelen > IDX_NAME_MAX || f->dirents.n >= NONE - 1)
		return -EIO;
	d = vec_push(&f->dirents);
	if (!d)
		return -ENOMEM;
	d->parent = w->parent;
	d->child = ino;
	d->name_off = (uint32_t)f->names.n;
	d->name_len = (uint16_t)namelen;
	d->type = type;
	d->next = NONE;
	if (f->names.n + namelen + 1 > UINT32_MAX)
		return -EFBIG;
	for (size_t i = 0; i <= namelen; i++) {
		nm = vec_push(&f->names);
		if (!nm)
			return -ENOMEM;
		*nm = i < namelen ? name[i] : '\0';
	}
	return 0;
}

static const char *dirent_name(const struct fsck *f, const struct fdirent *d)
{
	return (const char *)f->names.p + d->name_off;
}

/* ------------------------------------------------------------------------ */
/* fsck: namespace                                                           */

static int check_dirs(struct fsck *f)
{
	struct finode *in = f->inodes.p;
	int rc;

	for (size_t i = 0; i < f->inodes.n; i++) {
		struct dir_walk w = { f, in[i].ino };

		if (!S_ISDIR(in[i].mode))
			continue;
		in[i].kids = (uint32_t)f->dirents.n;
		rc = idx_dir_iter(f->t, in[i].ino, 0, load_dirent, &w);
		if (rc < 0)
			return rc;
		in[i].nkids = (uint32_t)f->dirents.n - in[i].kids;
		if (i % 256 == 0)
			progress(f->o->progress, f->o->progress_arg, "directories", i, f->inodes.n);
	}
	f->st->dirents = f->dirents.n;
	/* Each entry: the inode exists, has the type the entry says, and the
	 * name index (dirents db) agrees with the listing (dirseq db). */
	for (size_t i = 0; i < f->dirents.n; i++) {
		struct fdirent *d = (struct fdirent *)f->dirents.p + i;
		const char *name = dirent_name(f, d);
		struct finode *c = inode_find(f, d->child);
		uint64_t lino = 0;
		uint8_t ltype = 0;
		uint32_t p;

		rc = idx_dirent_lookup(f->t, d->parent, name, d->name_len, &lino, &ltype);
		if (rc < 0 && rc != -ENOENT)
			return rc;
		if (rc == -ENOENT || lino != d->child || ltype != d->type) {
			p = prob_add(f, GC_P_DIRENT,
			             "entry '%s' in directory %" PRIu64 ": listing says inode %" PRIu64
			             ", lookup says %s", name, d->parent, d->child,
			             rc == -ENOENT ? "no such name" : "another inode or type");
			prob_file(f, p, d->parent, UINT64_MAX);
		}
		if (!c) {
			p = prob_add(f, GC_P_DIRENT,
			             "entry '%s' in directory %" PRIu64 " names inode %" PRIu64
			             ", which does not exist", name, d->parent, d->child);
			prob_file(f, p, d->parent, UINT64_MAX);
			fix_add(f, FIX_DIRENT_DEL, p, d->parent, 0, (uint32_t)i);
			continue;
		}
		if (d->type != (c->mode >> 12)) {
			p = prob_add(f, GC_P_DIRENT,
			             "entry '%s' in directory %" PRIu64 " has type %u, inode %" PRIu64
			             " has mode %o", name, d->parent, d->type, d->child, c->mode);
			prob_file(f, p, d->child, UINT64_MAX);
		}
		if (d->child == IDX_ROOT_INO) {
			p = prob_add(f, GC_P_DIRENT, "entry '%s' in directory %" PRIu64 " names the root",
			             name, d->parent);
			prob_file(f, p, d->parent, UINT64_MAX);
			continue;
		}
		d->next = c->dirent;
		c->dirent = (uint32_t)i;
		c->links++;
		if (S_ISDIR(c->mode)) {
			struct finode *par = inode_find(f, d->parent);

			if (par)
				par->subdirs++;
		}
	}
	return 0;
}

/* Reachability from the root over directory entries (iterative BFS: a deep
 * tree must not overflow the stack). */
static int check_reach(struct fsck *f)
{
	struct finode *root = inode_find(f, IDX_ROOT_INO);
	uint64_t *queue;
	size_t head = 0, tail = 0;

	if (!root || !S_ISDIR(root->mode)) {
		prob_add(f, GC_P_INODE, "root directory (inode %u) missing or not a directory",
		         IDX_ROOT_INO);
		return 0;
	}
	queue = malloc((f->inodes.n + 1) * sizeof(*queue));
	if (!queue)
		return -ENOMEM;
	root->flags |= FI_REACHED;
	queue[tail++] = IDX_ROOT_INO;
	while (head < tail) {
		struct finode *d = inode_find(f, queue[head++]);

		for (uint32_t k = 0; d && d->kids != NONE && k < d->nkids; k++) {
			struct fdirent *e = (struct fdirent *)f->dirents.p + d->kids + k;
			struct finode *c = inode_find(f, e->child);

			if (!c || (c->flags & FI_REACHED))
				continue;
			c->flags |= FI_REACHED;
			if (S_ISDIR(c->mode))
				queue[tail++] = c->ino;
		}
	}
	free(queue);
	return 0;
}

static int check_links(struct fsck *f)
{
	struct finode *in = f->inodes.p;

	for (size_t i = 0; i < f->inodes.n; i++) {
		struct finode *c = &in[i];
		uint32_t want, p;

		if (c->ino >= f->sb.next_ino) {
			p = prob_add(f, GC_P_SUPER,
			             "inode %" PRIu64 " is not below the next inode number %" PRIu64
			             " (it would be handed out again)", c->ino, f->sb.next_ino);
			fix_add(f, FIX_SUPER, p, 0, 0, 0);
		}
		if (S_ISDIR(c->mode)) {
			want = 2 + c->subdirs;
			if (c->ino != IDX_ROOT_INO && c->links > 1) {
				p = prob_add(f, GC_P_DIRENT, "directory inode %" PRIu64 " has %" PRIu32
				             " names", c->ino, c->links);
				prob_file(f, p, c->ino, UINT64_MAX);
			}
		} else {
			want = c->links;
		}
		if (c->ino != IDX_ROOT_INO && c->links == 0 && !(c->flags & FI_ORPHAN)) {
			p = prob_add(f, GC_P_LOST, "inode %" PRIu64 " (mode %o, %" PRIu64
			             " bytes) has no name and no orphan mark",
			             c->ino, c->mode, c->size);
			prob_file(f, p, c->ino, UINT64_MAX);
			fix_add(f, FIX_LOST, p, c->ino, 0, 0);
			continue; /* reconnecting sets the link count */
		}
		if (c->links > 0 && !(c->flags & FI_REACHED)) {
			/* Named only from directories that are themselves
			 * unreachable (a cycle): moving directories around is
			 * guessing, leave it to the operator. */
			p = prob_add(f, GC_P_LOST, "inode %" PRIu64 " is not reachable from the root",
			             c->ino);
			prob_file(f, p, c->ino, UINT64_MAX);
		}
		if ((c->flags & FI_ORPHAN) && c->links == 0)
			continue; /* unlinked while open: deleted at the next mount */
		if (c->flags & FI_ORPHAN) {
			p = prob_add(f, GC_P_ORPHAN, "inode %" PRIu64 " is marked orphan (deleted at "
			             "next mount) but has %" PRIu32 " names", c->ino, c->links);
			prob_file(f, p, c->ino, UINT64_MAX);
			fix_add(f, FIX_ORPHAN_DEL, p, c->ino, 0, 0);
		}
		if (c->nlink != want) {
			p = prob_add(f, GC_P_NLINK, "inode %" PRIu64 " has link count %" PRIu32
			             ", %" PRIu32 " found", c->ino, c->nlink, want);
			prob_file(f, p, c->ino, UINT64_MAX);
			fix_add(f, FIX_NLINK, p, c->ino, want, 0);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* fsck: extents                                                              */

struct ext_walk {
	struct fsck *f;
	struct finode *in;
	uint64_t end;     /* end of the previous extent */
	bool listing;     /* second pass: only list files of flagged chunks */
	uint32_t last;    /* last chunk listed for this inode (skip repeats) */
	uint64_t extents;
};

static int ext_check(void *arg, const struct idx_extent *e)
{
	struct ext_walk *w = arg;
	struct fsck *f = w->f;
	uint32_t ci = chunk_find(f, e->fp), p;
	struct fchunk *c = ci == NONE ? NULL : chunk_at(f, ci);
	char hex[17];

	w->extents++;
	if (w->listing) {
		if (c && (c->state & FC_FLAGGED) && ci != w->last) {
			for (uint32_t q = c->prob; q != NONE; q = prob_at(f, q)->next_same_chunk) {
				struct fprob *pr = prob_at(f, q);
				struct gc_file *last = pr->files.n ?
				        (struct gc_file *)pr->files.p + pr->files.n - 1 : NULL;

				if (!last || last->ino != w->in->ino)
					prob_file(f, q, w->in->ino, e->off);
			}
			w->last = ci;
		}
		if (c && (c->state & FC_BAD))
			w->in->flags |= FI_DAMAGED;
		return 0;
	}
	f->mapped += e->len;
	fp_short(e->fp, hex);
	if (e->len == 0 || e->off < w->end || e->off + e->len < e->off) {
		p = prob_add(f, GC_P_EXTENT, "inode %" PRIu64 ": extent at %" PRIu64 " (%" PRIu32
		             " bytes) is empty or overlaps the previous one", w->in->ino, e->off,
		             e->len);
		prob_file(f, p, w->in->ino, e->off);
	}
	if (e->off + e->len > w->in->size) {
		p = prob_add(f, GC_P_EXTENT, "inode %" PRIu64 ": extent at %" PRIu64 " (%" PRIu32
		             " bytes) ends past the file size %" PRIu64, w->in->ino, e->off, e->len,
		             w->in->size);
		prob_file(f, p, w->in->ino, e->off);
	}
	w->end = e->off + e->len;
	if (!c) {
		p = prob_add(f, GC_P_EXTENT, "inode %" PRIu64 ": extent at %" PRIu64
		             " maps chunk %s, which does not exist", w->in->ino, e->off, hex);
		prob_file(f, p, w->in->ino, e->off);
		prob_lost(f, p);
		w->in->flags |= FI_DAMAGED;
		return 0;
	}
	if (c->counted == UINT32_MAX)
		return -EOVERFLOW;
	c->counted++;
	if ((uint64_t)e->chunk_off + e->len > c->raw_len) {
		p = prob_add(f, GC_P_EXTENT, "inode %" PRIu64 ": extent at %" PRIu64 " maps bytes %"
		             PRIu32 "..%" PRIu64 " of chunk %s, which has %" PRIu32, w->in->ino,
		             e->off, e->chunk_off, (uint64_t)e->chunk_off + e->len, hex, c->raw_len);
		prob_file(f, p, w->in->ino, e->off);
		prob_lost(f, p);
		w->in->flags |= FI_DAMAGED;
	}
	return 0;
}

static int walk_extents(struct fsck *f, bool listing)
{
	struct finode *in = f->inodes.p;
	struct idx_extent e;
	int rc;

	for (size_t i = 0; i < f->inodes.n; i++) {
		struct ext_walk w = { .f = f, .in = &in[i], .listing = listing, .last = NONE };

		if (!S_ISREG(in[i].mode)) {
			/* Only regular files have data. */
			rc = idx_extent_find(f->t, in[i].ino, 0, &e);
			if (rc == 0 && !listing) {
				uint32_t p = prob_add(f, GC_P_EXTENT, "inode %" PRIu64
				                      " (mode %o) is not a regular file but has extents",
				                      in[i].ino, in[i].mode);
				prob_file(f, p, in[i].ino, e.off);
			}
			if (rc < 0 && rc != -ENOENT)
				return rc;
			continue;
		}
		rc = idx_extent_iter(f->t, in[i].ino, 0, UINT64_MAX, ext_check, &w);
		if (rc < 0)
			return rc;
		if (!listing)
			f->st->extents += w.extents;
		if (i % 256 == 0)
			progress(f->o->progress, f->o->progress_arg, listing ? "files" : "extents", i,
			         f->inodes.n);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* fsck: chunks and refcounts                                                */

static void check_refs(struct fsck *f)
{
	struct ref_pending *r = f->refs.p;
	char hex[17], rhex[17];
	uint32_t p;

	for (size_t i = 0; i < f->refs.n; i++) {
		struct fchunk *c = chunk_at(f, r[i].chunk);
		uint32_t ri = chunk_find(f, r[i].ref_fp);

		if (ri == NONE || ri == r[i].chunk) {
			fp_short(c->fp, hex);
			fp_short(r[i].ref_fp, rhex);
			p = prob_add(f, GC_P_FRAME, "chunk %s is coded against chunk %s, which %s", hex,
			             rhex, ri == NONE ? "does not exist" : "is itself");
			prob_chunk(f, p, r[i].chunk);
			prob_lost(f, p);
			c->state |= FC_BAD;
			c->err = FRAME_E_REF;
			continue;
		}
		c->ref = ri;
		if (chunk_at(f, ri)->counted < UINT32_MAX)
			chunk_at(f, ri)->counted++;
	}
}

static void check_refcounts(struct fsck *f)
{
	char hex[17];
	uint32_t p;

	for (uint32_t i = 0; i < f->chunks.n; i++) {
		struct fchunk *c = chunk_at(f, i);

		if (c->refcount == c->counted && c->counted)
			continue;
		fp_short(c->fp, hex);
		if (c->counted == 0 && c->refcount == 0) {
			/* Deleted at commit normally: one left behind only
			 * holds space.  Repair lets the commit sweep it. */
			p = prob_add(f, GC_P_REFCOUNT, "chunk %s has no references and refcount 0",
			             hex);
		} else if (c->refcount > c->counted) {
			p = prob_add(f, GC_P_REFCOUNT, "chunk %s has refcount %" PRIu32 ", %" PRIu32
			             " references found (space leak)", hex, c->refcount, c->counted);
		} else {
			/* Too low is the dangerous direction: the last unref
			 * would delete a chunk still in use. */
			p = prob_add(f, GC_P_REFCOUNT, "chunk %s has refcount %" PRIu32 ", %" PRIu32
			             " references found (would be freed while in use)", hex,
			             c->refcount, c->counted);
		}
		prob_chunk(f, p, i);
		/* The walk counted every extent and every chunk coded against
		 * it: setting that number is exact, never a guess.  At 0 the
		 * commit deletes the chunk and releases its own reference. */
		fix_add(f, FIX_REFCOUNT, p, c->counted, 0, i);
	}
}

/* ------------------------------------------------------------------------ */
/* fsck: frame verification on the worker pool                                */

struct vjob {
	struct fsck *f;
	uint32_t *idx; /* chunk indices */
	uint32_t n;
};

static int fsck_chunk_get(void *arg, const uint8_t fp[FP_LEN], struct idx_chunk *c)
{
	struct fsck *f = arg;
	uint32_t i = chunk_find(f, fp);
	struct fchunk *fc;

	if (i == NONE)
		return -ENOENT;
	fc = chunk_at(f, i);
	memset(c, 0, sizeof(*c));
	memcpy(c->fp, fc->fp, FP_LEN);
	c->pack_id = fc->pack_id;
	c->pack_off = fc->pack_off;
	c->frame_len = fc->frame_len;
	c->raw_len = fc->raw_len;
	c->level = fc->level;
	c->dtype = fc->dtype;
	c->sum = fc->sum;
	c->has_sum = (fc->state & FC_HAS_SUM) != 0;
	if (fc->ref != NONE) {
		c->flags = IDX_CHUNK_HAS_REF;
		memcpy(c->ref_fp, chunk_at(f, fc->ref)->fp, FP_LEN);
	} else if (fc->state & FC_HAS_REF) {
		/* Reference missing: make decoding fail the same way. */
		c->flags = IDX_CHUNK_HAS_REF;
		memset(c->ref_fp, 0xff, FP_LEN);
	}
	return 0;
}

static void *vworker_init(void *arg)
{
	(void)arg;
	return codec_ctx_create();
}

static void vworker_fini(void *local)
{
	codec_ctx_free(local);
}

static void vjob_run(void *arg, void *local)
{
	struct vjob *j = arg;
	struct fsck *f = j->f;
	struct chunk_src src = { fsck_chunk_get, f, f->ps };

	for (uint32_t k = 0; k < j->n; k++) {
		struct fchunk *c = chunk_at(f, j->idx[k]);
		struct idx_chunk ic;
		uint8_t *raw = NULL;
		int rc;

		rc = fsck_chunk_get(f, c->fp, &ic);
		if (rc == 0)
			rc = local ? chunk_decode(local, &src, &ic, 0, true, &raw) : -ENOMEM;
		free(raw);
		c->err = rc;
		atomic_fetch_add(&f->verified_bytes, c->raw_len);
		atomic_fetch_add(&f->verified_frames, 1);
	}
	free(j->idx);
	free(j);
}

static int loc_cmp_ctx_sort(const struct fsck *f, uint32_t a, uint32_t b)
{
	const struct fchunk *x = chunk_at(f, a), *y = chunk_at(f, b);

	if (x->pack_id != y->pack_id)
		return x->pack_id < y->pack_id ? -1 : 1;
	return x->pack_off < y->pack_off ? -1 : x->pack_off > y->pack_off;
}

static const struct fsck *sort_fsck; /* qsort has no context argument */

static int loc_cmp(const void *a, const void *b)
{
	return loc_cmp_ctx_sort(sort_fsck, *(const uint32_t *)a, *(const uint32_t *)b);
}

/* Chunk indices in (pack, offset) order: frames are read sequentially and
 * coverage of each pack is one sweep. */
static int chunks_by_location(struct fsck *f)
{
	uint32_t *ord = malloc((f->chunks.n + 1) * sizeof(*ord));

	f->ord = ord;
	if (!ord)
		return -ENOMEM;
	for (uint32_t i = 0; i < f->chunks.n; i++)
		ord[i] = i;
	sort_fsck = f;
	qsort(ord, f->chunks.n, sizeof(*ord), loc_cmp);
	sort_fsck = NULL;
	return 0;
}

/* Pre-checks that need no reading, then the frames on the pool. */
static int verify_frames(struct fsck *f)
{
	const uint32_t *ord = f->ord;
	struct pool *pool = NULL;
	struct pool_group *g = NULL;
	struct vjob *j = NULL;
	uint64_t total = 0, jbytes = 0;
	int rc;

	for (uint32_t k = 0; k < f->chunks.n; k++) {
		struct fchunk *c = chunk_at(f, ord[k]);
		const struct pfile *pf = pfile_find(&f->files, c->pack_id);

		if (!pf)
			c->err = FRAME_E_MISSING;
		else if (c->pack_off + c->frame_len > pf->size)
			c->err = FRAME_E_SHORT;
		total += c->raw_len;
	}
	if (f->o->quick)
		return 0;
	rc = pool_create(f->o->threads, 4, vworker_init, vworker_fini, NULL, &pool);
	if (rc < 0)
		return rc;
	g = pool_group_create();
	if (!g) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t k = 0; k < f->chunks.n; k++) {
		struct fchunk *c = chunk_at(f, ord[k]);

		if (c->err)
			continue;
		if (!j) {
			j = calloc(1, sizeof(*j));
			if (j)
				j->idx = malloc(256 * sizeof(*j->idx));
			if (!j || !j->idx) {
				rc = -ENOMEM;
				goto out;
			}
			j->f = f;
			jbytes = 0;
		}
		j->idx[j->n++] = ord[k];
		jbytes += c->frame_len;
		if (j->n == 256 || jbytes >= VERIFY_JOB_BYTES || k + 1 == f->chunks.n) {
			rc = pool_submit(pool, g, vjob_run, j);
			if (rc < 0)
				goto out;
			j = NULL;
			progress(f->o->progress, f->o->progress_arg, "frames",
			         atomic_load(&f->verified_bytes), total);
		}
	}
	if (j) {
		rc = pool_submit(pool, g, vjob_run, j);
		if (rc < 0)
			goto out;
		j = NULL;
	}
	rc = 0;
out:
	if (g)
		pool_group_wait(g);
	pool_group_free(g);
	pool_free(pool);
	if (j)
		free(j->idx);
	free(j);
	f->st->frames_verified = atomic_load(&f->verified_frames);
	f->st->bytes_verified = atomic_load(&f->verified_bytes);
	progress(f->o->progress, f->o->progress_arg, "frames", f->st->bytes_verified, total);
	return rc;
}

/* Next to a running mount (online gc, recompression) a chunk may have
 * moved after our snapshot: a failure counts only if the current record
 * still points at the bytes that failed. */
static int recheck_moved(struct fsck *f, struct fchunk *c)
{
	struct idx_txn *t;
	struct idx_chunk now;
	int rc;

	rc = idx_txn_begin(f->x, true, &t);
	if (rc < 0)
		return rc;
	rc = idx_chunk_get(t, c->fp, &now);
	idx_txn_abort(t);
	if (rc == -ENOENT) {
		c->err = 0; /* deleted meanwhile: nothing is damaged */
		return 0;
	}
	if (rc < 0)
		return rc;
	if (now.pack_id != c->pack_id || now.pack_off != c->pack_off) {
		/* Its reference chain is looked up in our snapshot: a chunk
		 * only moves with its bytes unchanged. */
		struct chunk_src src = { fsck_chunk_get, f, f->ps };
		struct codec_ctx *ctx = codec_ctx_create();
		uint8_t *raw = NULL;

		if (!ctx)
			return -ENOMEM;
		c->err = chunk_decode(ctx, &src, &now, 0, true, &raw);
		free(raw);
		codec_ctx_free(ctx);
	}
	return 0;
}

static int judge_frames(struct fsck *f)
{
	char hex[17];
	bool changed;
	uint32_t p;
	int rc;

	for (uint32_t i = 0; i < f->chunks.n; i++) {
		struct fchunk *c = chunk_at(f, i);

		if (c->err && f->st->in_use) {
			rc = recheck_moved(f, c);
			if (rc < 0)
				return rc;
		}
		if (!c->err)
			continue;
		c->state |= FC_BAD;
		fp_short(c->fp, hex);
		p = prob_add(f, GC_P_FRAME, "chunk %s in pack %08" PRIx32 " at %" PRIu64
		             " (%" PRIu32 " bytes): %s", hex, c->pack_id, c->pack_off, c->frame_len,
		             frame_strerror(c->err));
		prob_chunk(f, p, i);
		prob_lost(f, p);
	}
	/* Chunks coded against a damaged chunk cannot be decoded either (the
	 * decode above already failed them; this catches --quick and chains
	 * whose reference broke only in a recheck). */
	do {
		changed = false;
		for (uint32_t i = 0; i < f->chunks.n; i++) {
			struct fchunk *c = chunk_at(f, i);

			if ((c->state & FC_BAD) || c->ref == NONE || !(chunk_at(f, c->ref)->state & FC_BAD))
				continue;
			c->state |= FC_BAD;
			c->err = FRAME_E_REF;
			fp_short(c->fp, hex);
			p = prob_add(f, GC_P_FRAME, "chunk %s: %s", hex, frame_strerror(FRAME_E_REF));
			prob_chunk(f, p, i);
			prob_lost(f, p);
			changed = true;
		}
	} while (changed);
	for (uint32_t i = 0; i < f->chunks.n; i++)
		f->st->damaged_chunks += (chunk_at(f, i)->state & FC_BAD) != 0;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* fsck: packs                                                                */

/* Whether any chunk lives in pack id (binary search of f->ord). */
static bool pack_has_chunks(const struct fsck *f, uint32_t id)
{
	for (uint32_t lo = 0, hi = (uint32_t)f->chunks.n; lo < hi;) {
		uint32_t mid = lo + (hi - lo) / 2, mid_id = chunk_at(f, f->ord[mid])->pack_id;

		if (mid_id == id)
			return true;
		if (mid_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Split the reclaimable bytes of a pack into dead (what its record counts
 * dead) and orphan (never committed), for the summary. */
static void account_free(struct fsck *f, uint32_t id, const struct idx_pack *rec,
                         const struct span *v, size_t n)
{
	bool unsupported = false;
	int64_t free_ = pack_reclaim(f->pack_dir, id, v, n, false, &unsupported, NULL);
	uint64_t dead;

	if (free_ <= 0)
		return; /* a read error here is the frames' problem, reported there */
	dead = rec && rec->dead_bytes < (uint64_t)free_ ? rec->dead_bytes : rec ? (uint64_t)free_ : 0;
	f->st->dead_bytes += dead;
	f->st->orphan_bytes += (uint64_t)free_ - dead;
}

static int check_packs(struct fsck *f)
{
	struct vec spans = { .sz = sizeof(struct span) };
	const uint32_t *ord = f->ord;
	struct idx_pack *pr = f->packs.p;
	struct pfile *pf = f->files.p;
	uint32_t k = 0, p;

	/* Sweep chunks in location order, pack by pack. */
	while (k < f->chunks.n) {
		uint32_t id = chunk_at(f, ord[k])->pack_id;
		uint64_t live = 0, end = 0;
		struct idx_pack *rec = packrec_find(f, id);

		spans.n = 0;
		for (; k < f->chunks.n && chunk_at(f, ord[k])->pack_id == id; k++) {
			struct fchunk *c = chunk_at(f, ord[k]);
			struct span *sp = vec_push(&spans);
			char hex[17];

			if (!sp) {
				vec_free(&spans);
				return -ENOMEM;
			}
			sp->off = c->pack_off;
			sp->end = c->pack_off + c->frame_len;
			if (c->pack_off < end) {
				fp_short(c->fp, hex);
				p = prob_add(f, GC_P_PACK, "chunk %s in pack %08" PRIx32 " at %" PRIu64
				             " overlaps the frame before it (ends at %" PRIu64 ")", hex, id,
				             c->pack_off, end);
				prob_chunk(f, p, ord[k]);
			}
			if (c->pack_off + c->frame_len > end)
				end = c->pack_off + c->frame_len;
			live += c->frame_len;
		}
		if (id >= f->sb.next_pack) {
			p = prob_add(f, GC_P_SUPER, "chunks live in pack %08" PRIx32 ", not below the next"
			             " pack id %08" PRIx32, id, f->sb.next_pack);
			fix_add(f, FIX_SUPER, p, 0, 0, 0);
		}
		if (!rec) {
			p = prob_add(f, GC_P_PACK, "pack %08" PRIx32 " holds %" PRIu64 " live bytes but "
			             "has no record", id, live);
			fix_add(f, FIX_PACK_PUT, p, id, live, 0);
		} else if (rec->live_bytes != live) {
			p = prob_add(f, GC_P_PACK, "pack %08" PRIx32 " record says %" PRIu64 " live bytes"
			             ", chunks hold %" PRIu64, id, rec->live_bytes, live);
			fix_add(f, FIX_PACK_PUT, p, id, live, 0);
		}
		f->st->live_bytes += live;
		account_free(f, id, rec, spans.p, spans.n);
	}
	vec_free(&spans);
	/* Records of packs no chunk lives in. */
	for (size_t i = 0; i < f->packs.n; i++) {
		const struct pfile *file = pfile_find(&f->files, pr[i].id);

		if (pack_has_chunks(f, pr[i].id))
			continue;
		if (pr[i].live_bytes) {
			p = prob_add(f, GC_P_PACK, "pack %08" PRIx32 " record says %" PRIu64
			             " live bytes, no chunk lives there", pr[i].id, pr[i].live_bytes);
			fix_add(f, file ? FIX_PACK_PUT : FIX_PACK_DEL, p, pr[i].id, 0, 0);
		}
		if (file)
			account_free(f, pr[i].id, &pr[i], NULL, 0);
	}
	/* Files with neither a record nor chunks: left by a crash before
	 * their first commit, or by gc between commit and unlink. */
	for (size_t i = 0; i < f->files.n; i++) {
		f->st->pack_bytes += pf[i].size;
		f->st->disk_bytes += pf[i].disk;
		if (packrec_find(f, pf[i].id) || pack_has_chunks(f, pf[i].id))
			continue;
		f->st->orphan_packs++;
		account_free(f, pf[i].id, NULL, NULL, 0);
	}
	f->st->packs = f->packs.n;
	f->st->pack_files = f->files.n;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* fsck: stats and superblock                                                  */

static int check_stats(struct fsck *f)
{
	struct idx_stats s;
	char what[256];
	size_t n = 0;
	int rc;

	rc = idx_stats_count(f->t, &s);
	if (rc < 0)
		return rc;
	n = idx_stats_diff(&s, &f->stats, what, sizeof(what));
	if (n) {
		uint32_t p = prob_add(f, GC_P_STATS, "stats counters differ from the records: %s",
		                      what);

		fix_add(f, FIX_STATS, p, 0, 0, 0);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* fsck: repair                                                               */

/* /lost+found, created if missing; *lf receives its inode.  A user's
 * lost+found that is not a directory stays as it is: lost+found.1, .2,
 * ... instead.  The new inode takes a number no inode has (the
 * superblock's next number is mended first, and checked here too). */
static int lost_found(struct idx_txn *t, struct idx_inode *lf)
{
	struct idx_inode root, any;
	char name[32];
	uint64_t ino;
	uint8_t type;
	int rc = -EEXIST;

	for (unsigned k = 0; k < 100 && rc == -EEXIST; k++) {
		snprintf(name, sizeof(name), k ? LOST_FOUND ".%u" : LOST_FOUND, k);
		rc = idx_dirent_lookup(t, IDX_ROOT_INO, name, strlen(name), &ino, &type);
		if (rc == 0) {
			rc = idx_inode_get(t, ino, lf);
			if (rc == 0 && !S_ISDIR(lf->mode))
				rc = -EEXIST; /* not ours to fill: the next name */
			else if (rc == 0)
				return 0;
		}
	}
	if (rc != -ENOENT)
		return rc;
	rc = idx_inode_get(t, IDX_ROOT_INO, &root);
	if (rc < 0)
		return rc;
	do {
		rc = idx_ino_alloc(t, &ino);
		if (rc == 0)
			rc = idx_inode_get(t, ino, &any) == -ENOENT ? -ENOENT : 0;
	} while (rc == 0);
	if (rc != -ENOENT)
		return rc;
	memset(lf, 0, sizeof(*lf));
	lf->ino = ino;
	lf->mode = S_IFDIR | 0700;
	lf->nlink = 2;
	lf->dir_seq = 3; /* as mkfs: 1 and 2 are "." and ".." */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	lf->atime_ns = lf->mtime_ns = lf->ctime_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	rc = idx_dirent_add(t, &root, name, strlen(name), ino, (uint8_t)(lf->mode >> 12));
	if (rc < 0)
		return rc;
	root.nlink++;
	rc = idx_inode_put(t, &root);
	if (rc < 0)
		return rc;
	return idx_inode_put(t, lf);
}

static int apply_fix(struct fsck *f, struct idx_txn *t, const struct fix *x, struct idx_inode *lf,
                     bool *have_lf)
{
	struct idx_inode in;
	struct idx_pack pk;
	char name[32];
	int rc = 0;

	switch (x->what) {
	case FIX_DIRENT_DEL: {
		const struct fdirent *d = (const struct fdirent *)f->dirents.p + x->idx;

		rc = idx_dirent_del(t, d->parent, dirent_name(f, d), d->name_len);
		break;
	}
	case FIX_ORPHAN_DEL:
		rc = idx_orphan_del(t, x->a);
		break;
	case FIX_TENSOR_DROP:
		rc = idx_tensor_drop(t, x->b, x->c, x->a);
		break;
	case FIX_HINT_DROP:
		rc = idx_hint_drop(t, x->fp);
		break;
	case FIX_REFBY:
		rc = idx_refby_rebuild(t);
		break;
	case FIX_NLINK:
		rc = idx_inode_get(t, x->a, &in);
		if (rc == 0) {
			in.nlink = (uint32_t)x->b;
			rc = idx_inode_put(t, &in);
		}
		break;
	case FIX_LOST:
		if (!*have_lf) {
			rc = lost_found(t, lf);
			if (rc < 0)
				break;
			*have_lf = true;
		}
		rc = idx_inode_get(t, x->a, &in);
		if (rc < 0)
			break;
		rc = -EEXIST; /* "#INO", or "#INO.N" if a user took that name */
		for (unsigned k = 0; k < 100 && rc == -EEXIST; k++) {
			if (k)
				snprintf(name, sizeof(name), "#%" PRIu64 ".%u", in.ino, k);
			else
				snprintf(name, sizeof(name), "#%" PRIu64, in.ino);
			rc = idx_dirent_add(t, lf, name, strlen(name), in.ino, (uint8_t)(in.mode >> 12));
		}
		if (rc < 0)
			break;
		if (S_ISDIR(in.mode)) {
			struct finode *fi = inode_find(f, in.ino);

			lf->nlink++;
			in.nlink = 2 + (fi ? fi->subdirs : 0);
		} else {
			in.nlink = 1;
		}
		rc = idx_inode_put(t, &in);
		if (rc == 0)
			rc = idx_inode_put(t, lf);
		break;
	case FIX_REFCOUNT:
		rc = idx_chunk_refcount_set(t, chunk_at(f, x->idx)->fp, (uint32_t)x->a);
		break;
	case FIX_STATS:
		break; /* after the commit: see repair() */
	case FIX_PACK_PUT:
		rc = idx_pack_get(t, (uint32_t)x->a, &pk);
		if (rc == -ENOENT) {
			memset(&pk, 0, sizeof(pk));
			pk.id = (uint32_t)x->a;
			rc = 0;
		}
		if (rc == 0) {
			pk.live_bytes = x->b;
			rc = idx_pack_put(t, &pk);
		}
		break;
	case FIX_PACK_DEL:
		rc = idx_pack_del(t, (uint32_t)x->a);
		break;
	case FIX_SUPER: {
		struct idx_super s;
		uint64_t max_ino = 0;
		uint32_t max_pack = 0;

		rc = idx_super_get(t, &s);
		if (rc < 0)
			break;
		if (f->inodes.n)
			max_ino = ((struct finode *)f->inodes.p)[f->inodes.n - 1].ino;
		for (uint32_t i = 0; i < f->chunks.n; i++)
			if (chunk_at(f, i)->pack_id > max_pack)
				max_pack = chunk_at(f, i)->pack_id;
		if (s.next_ino <= max_ino)
			s.next_ino = max_ino + 1;
		if (s.next_pack <= max_pack)
			s.next_pack = max_pack + 1;
		rc = idx_super_put(t, &s);
		break;
	}
	}
	return rc;
}

static int repair(struct fsck *f)
{
	struct idx_txn *t;
	struct idx_inode lf;
	bool have_lf = false, super_done = false, stats = false;
	int rc;

	if (!f->fixes.n)
		return 0;
	rc = idx_txn_begin(f->x, false, &t);
	if (rc < 0)
		return rc;
	/* the superblock's counters first: fixes below allocate inodes
	 * (lost+found), which must not take a number in use */
	for (size_t k = 0; k < 2 * f->fixes.n; k++) {
		struct fix *x = (struct fix *)f->fixes.p + k % f->fixes.n;
		bool first = k < f->fixes.n; /* the pass for FIX_SUPER */

		if ((x->what == FIX_SUPER) != first || (x->what == FIX_SUPER && super_done))
			continue; /* one rewrite covers every counter */
		rc = apply_fix(f, t, x, &lf, &have_lf);
		if (rc < 0) {
			fprintf(stderr, "mixfs fsck: repair of '%s' failed: %s\n",
			        prob_at(f, x->prob)->msg, strerror(-rc));
			idx_txn_abort(t);
			return rc;
		}
		super_done |= x->what == FIX_SUPER;
		stats |= x->what == FIX_STATS;
	}
	rc = idx_txn_commit(t);
	/* The counters last, on their own: the commit above sweeps chunks
	 * and moves them, so recount what it left. */
	if (rc == 0 && stats) {
		rc = idx_txn_begin(f->x, false, &t);
		if (rc == 0) {
			rc = idx_stats_reset(t);
			if (rc < 0)
				idx_txn_abort(t);
			else
				rc = idx_txn_commit(t);
		}
	}
	if (rc == 0)
		rc = idx_sync(f->x);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < f->fixes.n; i++) {
		struct fix *x = (struct fix *)f->fixes.p + i;

		prob_at(f, x->prob)->repaired = true;
	}
	for (size_t i = 0; i < f->probs.n; i++)
		f->st->repaired += prob_at(f, (uint32_t)i)->repaired;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* fsck: report                                                               */

/* "/a/b" for ino from its first entry upwards; NULL if unreachable. */
static char *path_of(const struct fsck *f, uint64_t ino)
{
	size_t cap = 4096, len, depth = 0;
	char *buf, *p;

	if (ino == IDX_ROOT_INO)
		return strdup("/");
	buf = malloc(cap);
	if (!buf)
		return NULL;
	/* Build from the end backwards. */
	p = buf + cap - 1;
	*p = '\0';
	len = 0;
	while (ino != IDX_ROOT_INO) {
		const struct finode *in = inode_find(f, ino);
		const struct fdirent *d;

		if (!in || in->dirent == NONE || ++depth > PATH_DEPTH_MAX) {
			free(buf);
			return NULL;
		}
		d = (const struct fdirent *)f->dirents.p + in->dirent;
		if (len + d->name_len + 2 > cap) {
			size_t ncap = cap * 2 + d->name_len;
			char *nb = malloc(ncap);

			if (!nb) {
				free(buf);
				return NULL;
			}
			memcpy(nb + ncap - len - 1, p, len + 1);
			free(buf);
			buf = nb;
			p = nb + ncap - len - 1;
			cap = ncap;
		}
		p -= d->name_len;
		memcpy(p, dirent_name(f, d), d->name_len);
		*--p = '/';
		len += d->name_len + 1u;
		ino = d->parent;
	}
	memmove(buf, p, len + 1);
	return buf;
}

static void report(struct fsck *f)
{
	for (size_t i = 0; i < f->probs.n; i++) {
		struct fprob *pr = prob_at(f, (uint32_t)i);
		struct gc_file *g = pr->files.p;
		struct gc_problem out = {
			.kind = pr->kind, .msg = pr->msg, .repaired = pr->repaired,
			.data_lost = pr->data_lost, .nfiles = pr->files.n, .files = g,
		};

		for (size_t k = 0; k < pr->files.n; k++)
			g[k].path = path_of(f, g[k].ino);
		if (f->o->problem)
			f->o->problem(f->o->problem_arg, &out);
		for (size_t k = 0; k < pr->files.n; k++)
			free((char *)g[k].path);
	}
}

static void fsck_free(struct fsck *f)
{
	for (size_t i = 0; i < f->probs.n; i++) {
		free(prob_at(f, (uint32_t)i)->msg);
		vec_free(&prob_at(f, (uint32_t)i)->files);
	}
	vec_free(&f->probs);
	vec_free(&f->fixes);
	vec_free(&f->chunks);
	vec_free(&f->refs);
	vec_free(&f->packs);
	vec_free(&f->files);
	vec_free(&f->inodes);
	vec_free(&f->dirents);
	vec_free(&f->names);
	free(f->ord);
}

static int no_alloc(void *arg, uint32_t *id)
{
	(void)arg;
	(void)id;
	return -EROFS; /* fsck never appends */
}

/* Every check on the snapshot f->t; problems collected, not yet reported. */
static int fsck_walk(struct fsck *f)
{
	int rc;

	rc = idx_super_get(f->t, &f->sb);
	if (rc == 0)
		rc = idx_stats_get(f->t, &f->stats);
	if (rc == 0)
		rc = idx_chunk_iter(f->t, load_chunk, f);
	if (rc == 0)
		rc = idx_pack_iter(f->t, load_pack, f);
	if (rc == 0)
		rc = pfiles_list(f->pack_dir, &f->files);
	if (rc == 0)
		rc = idx_inode_iter(f->t, load_inode, f);
	if (rc < 0)
		goto out;
	f->st->chunks = f->chunks.n;
	f->st->inodes = f->inodes.n;
	rc = idx_orphan_iter(f->t, load_orphan, f);
	if (rc == 0)
		rc = idx_tensor_check(f->t, load_tensor, f);
	if (rc == 0)
		rc = idx_hint_check(f->t, load_hint, f);
	if (rc == 0)
		rc = check_refby(f);
	if (rc == 0)
		rc = check_dirs(f);
	if (rc == 0)
		rc = check_reach(f);
	if (rc == 0)
		rc = check_links(f);
	if (rc == 0)
		rc = walk_extents(f, false);
	if (rc < 0)
		goto out;
	check_refs(f);
	check_refcounts(f);
	rc = chunks_by_location(f);
	if (rc == 0)
		rc = verify_frames(f);
	if (rc == 0)
		rc = judge_frames(f);
	if (rc < 0)
		goto out;
	rc = check_packs(f);
	if (rc < 0)
		goto out;
	rc = check_stats(f);
	if (rc < 0)
		goto out;
	/* Files of flagged chunks, and which files are damaged. */
	rc = walk_extents(f, true);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < f->inodes.n; i++)
		f->st->damaged_files += (((struct finode *)f->inodes.p)[i].flags & FI_DAMAGED) != 0;
out:
	return rc;
}

/* Remove pack files nothing references (repair, store not in use). */
static void remove_orphan_packs(struct fsck *f)
{
	struct pfile *pf = f->files.p;
	char path[PATH_MAX];
	bool removed = false;

	for (size_t i = 0; i < f->files.n; i++) {
		if (packrec_find(f, pf[i].id) || pack_has_chunks(f, pf[i].id))
			continue;
		pack_path(f->pack_dir, pf[i].id, path, sizeof(path));
		if (unlink(path) == 0) {
			removed = true;
			f->st->orphan_packs_removed++;
			f->st->orphan_removed_bytes += pf[i].disk;
		}
	}
	if (removed)
		dir_sync(f->pack_dir);
}

int gc_fsck(const char *store, const struct gc_fsck_opts *o, struct gc_fsck_stats *st)
{
	struct gc_fsck_opts defo = { 0 };
	struct fsck f;
	struct gc_lock *lock = NULL;
	char *ip = NULL;
	int rc;

	memset(&f, 0, sizeof(f));
	memset(st, 0, sizeof(*st));
	f.store = store;
	f.o = o ? o : &defo;
	f.st = st;
	f.chunks.sz = sizeof(struct fchunk);
	f.refs.sz = sizeof(struct ref_pending);
	f.packs.sz = sizeof(struct idx_pack);
	f.files.sz = sizeof(struct pfile);
	f.inodes.sz = sizeof(struct finode);
	f.dirents.sz = sizeof(struct fdirent);
	f.names.sz = 1;
	f.probs.sz = sizeof(struct fprob);
	f.fixes.sz = sizeof(struct fix);
	rc = gc_store_lock(store, f.o->repair ? GC_LOCK_EXCLUSIVE : GC_LOCK_SHARED, &lock);
	if (rc < 0)
		goto out;
	rc = gc_store_in_use(store);
	if (rc < 0)
		goto out;
	st->in_use = rc > 0;
	ip = path_join(store, "index");
	f.pack_dir = path_join(store, "packs");
	if (!ip || !f.pack_dir) {
		rc = -ENOMEM;
		goto out;
	}
	rc = idx_open(ip, f.o->repair ? 0 : IDX_RDONLY, NULL, 0, &f.x);
	if (rc == -EUCLEAN && f.o->repair && !st->in_use) {
		/* a damaged meta page: LMDB keeps two, rewrite it from the
		 * other (the last commit or the one before) */
		bool in_place;
		uint64_t txn;
		int r = idx_repair_meta(ip, &in_place, &txn);
		if (r == 0) {
			if (in_place)
				fprintf(stderr, "mixfs fsck: %s/data.mdb: a meta page was damaged: its header "
				        "restored, nothing lost (at commit %" PRIu64 ")\n", ip, txn);
			else
				fprintf(stderr, "mixfs fsck: %s/data.mdb: a meta page was damaged: rewritten "
				        "from the other, so the store is at commit %" PRIu64 ": if the damaged "
				        "page held the last commit, its changes are lost (files read as they "
				        "were before it)\n", ip, txn);
			st->problems++;
			st->repaired++;
			rc = idx_open(ip, 0, NULL, 0, &f.x);
		}
	}
	if (rc < 0)
		goto out;
	rc = pack_store_open(f.pack_dir, NULL, no_alloc, NULL, &f.ps);
	if (rc < 0)
		goto out;
	rc = idx_txn_begin(f.x, true, &f.t);
	if (rc < 0)
		goto out;
	rc = fsck_walk(&f);
	idx_txn_abort(f.t);
	f.t = NULL;
	if (rc < 0)
		goto out;
	if (f.o->repair) {
		rc = repair(&f);
		if (rc < 0)
			goto out;
		remove_orphan_packs(&f);
	}
	report(&f);
	rc = (int)(st->problems - st->repaired > INT_MAX ? INT_MAX : st->problems - st->repaired);
out:
	pack_store_close(f.ps);
	idx_close(f.x);
	gc_store_unlock(lock);
	fsck_free(&f);
	free(ip);
	free(f.pack_dir);
	return rc;
}

const char *gc_problem_kind_name(enum gc_problem_kind k)
{
	static const char *const names[GC_P_KIND_COUNT] = {
		"superblock", "inode", "dirent", "nlink", "lost", "orphan",
		"extent", "refcount", "frame", "pack", "stats", "tensors", "hints",
		"refby",
	};

	return (unsigned)k < GC_P_KIND_COUNT ? names[k] : "?";
}

/* ------------------------------------------------------------------------ */
/* gc                                                                         */

void gc_opts_default(struct gc_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->threshold = GC_DEF_THRESHOLD;
	o->batch_bytes = GC_DEF_BATCH;
	o->batch_moves = GC_DEF_MOVES;
}

/* What gc knows about one pack id. */
struct gpack {
	uint32_t id;
	bool has_rec, has_file, keep;
	bool more; /* a batch moved some of its chunks, not all (batch_moves) */
	uint64_t size;     /* file size */
	uint64_t disk;     /* allocated */
	uint64_t live;     /* frame bytes of chunk records found there */
	uint64_t nchunks;
	double frac;       /* reclaimable share of the file */
};

static int gpack_cmp(const void *key, const void *elem)
{
	uint32_t k = *(const uint32_t *)key, i = ((const struct gpack *)elem)->id;

	return k < i ? -1 : k > i;
}

static int gpack_insert_sorted(struct vec *v, uint32_t id, struct gpack **out)
{
	struct gpack *g = v->n ? bsearch(&id, v->p, v->n, v->sz, gpack_cmp) : NULL;
	size_t lo = 0, hi = v->n;

	if (g) {
		*out = g;
		return 0;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (((struct gpack *)v->p)[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!vec_push(v))
		return -ENOMEM;
	g = (struct gpack *)v->p + lo;
	memmove(g + 1, g, (v->n - 1 - lo) * sizeof(*g));
	memset(g, 0, sizeof(*g));
	g->id = id;
	*out = g;
	return 0;
}

struct gscan {
	struct vec *packs;
	int err;
};

static int gscan_pack(void *arg, const struct idx_pack *p)
{
	struct gscan *s = arg;
	struct gpack *g;
	int rc = gpack_insert_sorted(s->packs, p->id, &g);

	if (rc == 0)
		g->has_rec = true;
	return rc;
}

static int gscan_chunk(void *arg, const struct idx_chunk *c)
{
	struct gscan *s = arg;
	struct gpack *g;
	int rc = gpack_insert_sorted(s->packs, c->pack_id, &g);

	if (rc == 0) {
		g->live += c->frame_len;
		g->nchunks++;
	}
	return rc;
}

static int host_txn_begin(const struct gc_host *h, struct idx_txn **t)
{
	return h->txn_begin ? h->txn_begin(h->arg, t) : idx_txn_begin(h->idx, false, t);
}

/* Commit, then make the commit durable: the index is opened with
 * MDB_NOMETASYNC, so a commit's meta page reaches the disk only with the
 * next sync, and gc removes files right after its commits. */
static int host_txn_end(const struct gc_host *h, struct idx_txn *t, int rc)
{
	if (h->txn_end) {
		rc = h->txn_end(h->arg, t, rc);
	} else if (rc < 0) {
		idx_txn_abort(t);
	} else {
		rc = idx_txn_commit(t);
	}
	return rc < 0 ? rc : idx_sync(h->idx);
}

static int host_pack_sync(const struct gc_host *h)
{
	return h->pack_sync ? h->pack_sync(h->arg) : pack_sync(h->ps);
}

/* Scan records and files into a sorted table of packs. */
static int gc_scan(const struct gc_host *h, struct vec *packs, uint64_t *bytes)
{
	struct vec files = { .sz = sizeof(struct pfile) };
	struct gscan s = { packs, 0 };
	struct idx_txn *t;
	int rc;

	*bytes = 0;
	rc = idx_txn_begin(h->idx, true, &t);
	if (rc < 0)
		return rc;
	rc = idx_pack_iter(t, gscan_pack, &s);
	if (rc == 0)
		rc = idx_chunk_iter(t, gscan_chunk, &s);
	idx_txn_abort(t);
	/* Listed after the snapshot: a file created meanwhile (online) is
	 * >= the limit and ignored; one removed meanwhile is simply gone. */
	if (rc == 0)
		rc = pfiles_list(h->pack_dir, &files);
	for (size_t i = 0; rc == 0 && i < files.n; i++) {
		struct pfile *pf = (struct pfile *)files.p + i;
		struct gpack *g;

		rc = gpack_insert_sorted(packs, pf->id, &g);
		if (rc == 0) {
			g->has_file = true;
			g->size = pf->size;
			g->disk = pf->disk;
			*bytes += pf->disk;
		}
	}
	vec_free(&files);
	return rc;
}

static bool gc_may_touch(const struct gc_host *h, uint32_t id)
{
	return id < h->pack_id_limit && !(h->pack_is_new && h->pack_is_new(h->arg, id));
}

/* Remove the files (and records) of packs that hold nothing live: orphan
 * files and emptied packs.  Needs no space, so it runs first: on a full
 * disk this is what lets the copying below start. */
/* Remove the files of packs nothing lives in, those with a record
 * (with_rec, after the record is gone) or those without. */
static int remove_empty(const struct gc_host *h, struct vec *packs, bool with_rec)
{
	struct gpack *g = packs->p;
	bool removed = false;
	int rc;

	for (size_t i = 0; i < packs->n; i++) {
		if (!gc_may_touch(h, g[i].id) || g[i].nchunks || !g[i].has_file ||
		    g[i].has_rec != with_rec)
			continue;
		rc = pack_remove(h->ps, g[i].id);
		if (rc < 0 && rc != -ENOENT)
			return rc;
		g[i].has_file = false;
		removed = true;
	}
	if (removed)
		dir_sync(h->pack_dir);
	return 0;
}

/* Remove orphan files and emptied packs.  Orphan files first: that needs
 * no index write, which a full disk may refuse. */
static int gc_drop_empty(const struct gc_host *h, const struct gc_opts *o, struct vec *packs,
                         struct gc_stats *st)
{
	struct gpack *g = packs->p;
	struct idx_txn *t = NULL;
	bool any_rec = false;
	int rc = 0;

	for (size_t i = 0; i < packs->n; i++) {
		if (!gc_may_touch(h, g[i].id) || g[i].nchunks)
			continue;
		if (g[i].has_rec)
			any_rec = true;
		if (g[i].has_rec && g[i].has_file)
			st->packs_emptied++;
		else if (g[i].has_file)
			st->orphan_packs++;
	}
	if (o->dry_run)
		return 0;
	if (h->before_remove)
		h->before_remove(h->arg);
	/* The scan's snapshot must be durable before files it calls empty go
	 * (see gc_punch). */
	rc = idx_sync(h->idx);
	if (rc == 0)
		rc = remove_empty(h, packs, false);
	if (rc < 0 || !any_rec)
		return rc;
	rc = host_txn_begin(h, &t);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < packs->n; i++)
		if (gc_may_touch(h, g[i].id) && !g[i].nchunks && g[i].has_rec)
			rc = idx_pack_del(t, g[i].id);
	rc = host_txn_end(h, t, rc);
	if (rc < 0)
		return rc;
	if (o->stop == GC_STOP_AFTER_COMMIT)
		return -ECANCELED;
	return remove_empty(h, packs, true);
}

struct mv {
	struct idx_chunk c;  /* record as scanned */
	struct pack_loc nl;  /* new location */
	bool copied;
};

struct gbatch {
	struct vec *packs;  /* all packs (sorted); in_batch marks */
	const uint32_t *ids;
	size_t nids;
	struct vec mvs;
	uint64_t max_moves; /* the rest of a pack waits for the next batch */
	bool more;          /* some did */
};

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int gbatch_chunk(void *arg, const struct idx_chunk *c)
{
	struct gbatch *b = arg;
	struct mv *m;

	if (!bsearch(&c->pack_id, b->ids, b->nids, sizeof(*b->ids), u32_cmp))
		return 0;
	if (b->mvs.n >= b->max_moves) {
		struct gpack *g = bsearch(&c->pack_id, b->packs->p, b->packs->n, b->packs->sz, gpack_cmp);

		if (g)
			g->more = true; /* stays: not all of it moves in this batch */
		b->more = true;
		return 0;
	}
	m = vec_push(&b->mvs);
	if (!m)
		return -ENOMEM;
	memset(m, 0, sizeof(*m));
	m->c = *c;
	return 0;
}

static int mv_cmp(const void *a, const void *b)
{
	const struct mv *x = a, *y = b;

	if (x->c.pack_id != y->c.pack_id)
		return x->c.pack_id < y->c.pack_id ? -1 : 1;
	return x->c.pack_off < y->c.pack_off ? -1 : x->c.pack_off > y->c.pack_off;
}

struct gc_src_arg {
	struct idx_txn *t;
};

static int gc_chunk_get(void *arg, const uint8_t fp[FP_LEN], struct idx_chunk *c)
{
	struct gc_src_arg *a = arg;

	return idx_chunk_get(a->t, fp, c);
}

/* Copy one frame; a frame that fails its checks stays where it is (and
 * so does its pack) rather than spreading bad bytes into a new pack. */
static int gc_copy_one(const struct gc_host *h, const struct gc_opts *o, struct codec_ctx *ctx,
                       struct idx_txn *rt, struct mv *m, uint8_t *buf)
{
	struct pack_loc loc = { .pack_id = m->c.pack_id, .off = m->c.pack_off, .len = m->c.frame_len };
	struct codec_frame_info fi;
	int rc;

	rc = pack_read(h->ps, &loc, buf);
	if (rc < 0)
		return rc == -ENOMEM ? rc : 1;
	if (gc_frame_fits(&m->c, buf, &fi) < 0)
		return 1;
	/* a record from before format 3 learns its frame's checksum */
	m->c.sum = fi.checksum;
	m->c.has_sum = true;
	if (o->verify) {
		struct gc_src_arg sa = { rt };
		struct chunk_src src = { gc_chunk_get, &sa, h->ps };
		uint8_t *raw = NULL;

		rc = chunk_decode(ctx, &src, &m->c, 0, true, &raw);
		free(raw);
		if (rc == -ENOMEM)
			return rc;
		if (rc < 0)
			return 1;
	}
	rc = pack_append(h->ps, buf, m->c.frame_len, &m->nl);
	if (rc < 0)
		return rc;
	m->copied = true;
	return 0;
}

/* A failure a full disk explains: ENOSPC from a pack write or sync, or
 * from the index, which LMDB reports as EIO when a write comes up short. */
static bool no_space(int rc)
{
	return rc == -ENOSPC || rc == -EIO;
}

/* After a batch failed before its commit: remove its copies, so that a
 * smaller batch finds the room they took.  Only offline (pack_is_new),
 * where the packs this run created hold gc's copies alone (online the
 * engine's writers append to the same pack): the copies were appended in
 * the order of mvs, so in each pack the batch's bytes begin at its first
 * copy there, and the committed copies of earlier batches lie before it.
 * The error is cleared first (it waits for writes in flight, drops the
 * frames not yet written and closes the pack, or empties it if it was never
 * synced); with no error to clear, the current pack is sealed: nothing is
 * appended behind the cut.  A fresh snapshot must show no moved chunk at
 * its copy: that also catches a commit that went through though its sync
 * failed.  Returns 0 when the copies are gone (or there were none). */
static int gc_drop_copies(const struct gc_host *h, const struct vec *mvs)
{
	const struct mv *m = mvs->p;
	struct idx_txn *t;
	bool removed = false, unsup = false;
	int rc;

	if (!h->pack_is_new)
		return -EPERM;
	if (pack_store_clear_error(h->ps) == 0)
		pack_store_seal(h->ps);
	rc = idx_txn_begin(h->idx, true, &t);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < mvs->n; i++) {
		struct idx_chunk now;

		if (!m[i].copied)
			continue;
		if (!h->pack_is_new(h->arg, m[i].nl.pack_id))
			rc = -EPERM;
		else
			rc = idx_chunk_get(t, m[i].c.fp, &now);
		if (rc == -ENOENT)
			rc = 0;
		else if (rc == 0 && now.pack_id == m[i].nl.pack_id && now.pack_off == m[i].nl.off)
			rc = -EEXIST; /* committed after all */
	}
	idx_txn_abort(t);
	for (size_t i = 0, last = SIZE_MAX; rc == 0 && i < mvs->n; i++) {
		struct span keep = { 0, m[i].nl.off }; /* the file is cut after this */
		int64_t r = 0;

		if (!m[i].copied || (last != SIZE_MAX && m[last].nl.pack_id == m[i].nl.pack_id))
			continue;
		last = i;
		/* A pack holding this batch's copies alone is removed, but
		 * the one appends go to is busy (the clear emptied it: it
		 * was never synced) and only cut. */
		if (keep.end == 0)
			r = pack_remove(h->ps, m[i].nl.pack_id);
		removed |= keep.end == 0 && r == 0;
		if (keep.end != 0 || r == -EBUSY)
			r = pack_reclaim(h->pack_dir, m[i].nl.pack_id, &keep, 1, true, &unsup, NULL);
		rc = r < 0 && r != -ENOENT ? (int)r : 0;
	}
	if (removed)
		dir_sync(h->pack_dir);
	return rc;
}

/* Copy the live frames of packs ids[0..nids) (at most max_moves chunks:
 * *more when some are left), sync, commit, remove the old files.
 * *dropped: the batch failed and its copies are gone (see
 * gc_drop_copies), so a smaller one may be tried. */
static int gc_batch(const struct gc_host *h, const struct gc_opts *o, uint64_t max_moves,
                    struct vec *packs, uint32_t *ids, size_t nids, struct gc_stats *st,
                    uint64_t *copied_total, uint64_t copy_total, bool *dropped, bool *more)
{
	struct gbatch b = { .packs = packs, .ids = ids, .nids = nids, .mvs = { .sz = sizeof(struct mv) },
	                    .max_moves = max_moves };
	struct codec_ctx *ctx = NULL;
	struct idx_txn *rt = NULL, *t = NULL;
	uint8_t *buf = NULL;
	struct mv *m;
	bool removed = false, committed = false;
	uint64_t gen, copied = 0, moved = 0;
	int rc;

	*dropped = false;
	*more = false;
	qsort(ids, nids, sizeof(*ids), u32_cmp);
	buf = malloc(codec_frame_bound(CODEC_MAX_RAW));
	ctx = o->verify ? codec_ctx_create() : NULL;
	if (!buf || (o->verify && !ctx)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = idx_txn_begin(h->idx, true, &rt);
	if (rc == 0)
		rc = idx_chunk_iter(rt, gbatch_chunk, &b);
	if (rc < 0)
		goto out;
	m = b.mvs.p;
	if (b.mvs.n)
		qsort(m, b.mvs.n, sizeof(*m), mv_cmp);
	/* another writer of ps (online: the engine's committer) may clear a
	 * pack error meanwhile, dropping copies not yet written */
	gen = pack_store_gen(h->ps);
	for (size_t i = 0; i < b.mvs.n; i++) {
		if (m[i].c.frame_len > codec_frame_bound(CODEC_MAX_RAW)) {
			rc = 1;
		} else {
			rc = gc_copy_one(h, o, ctx, rt, &m[i], buf);
			if (rc < 0) {
				/* a failed append leaves the pack error sticky:
				 * clear it here (online, the engine's sync does),
				 * not in a writer's next batch */
				host_pack_sync(h);
				goto out;
			}
		}
		if (rc > 0) {
			struct gpack *g = bsearch(&m[i].c.pack_id, packs->p, packs->n, packs->sz,
			                          gpack_cmp);

			if (g && !g->keep) {
				g->keep = true;
				st->packs_kept++;
			}
			continue;
		}
		copied += m[i].c.frame_len;
		progress(o->progress, o->progress_arg, "copy", *copied_total + copied, copy_total);
	}
	idx_txn_abort(rt);
	rt = NULL;
	if (o->stop == GC_STOP_AFTER_COPY) {
		rc = -ECANCELED;
		goto out;
	}
	/* The new frames must be durable before any record points at them. */
	rc = host_pack_sync(h);
	if (rc == 0 && pack_store_gen(h->ps) != gen)
		rc = -EAGAIN; /* a pack error dropped copies: they are orphans */
	if (rc < 0)
		goto out;
	if (o->stop == GC_STOP_AFTER_SYNC) {
		rc = -ECANCELED;
		goto out;
	}
	rc = host_txn_begin(h, &t);
	if (rc < 0)
		goto out;
	for (size_t i = 0; rc == 0 && i < b.mvs.n; i++) {
		struct idx_chunk now;
		struct gpack *g;

		if (!m[i].copied)
			continue;
		rc = idx_chunk_get(t, m[i].c.fp, &now);
		if (rc == -ENOENT || (rc == 0 && (now.pack_id != m[i].c.pack_id ||
		                                  now.pack_off != m[i].c.pack_off))) {
			/* Deleted or moved since the scan (only online): the
			 * copy is an orphan, and the pack is not known empty. */
			g = bsearch(&m[i].c.pack_id, packs->p, packs->n, packs->sz, gpack_cmp);
			if (g)
				g->keep = true;
			m[i].copied = false;
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		now.pack_id = m[i].nl.pack_id;
		now.pack_off = m[i].nl.off;
		now.sum = m[i].c.sum;
		now.has_sum = m[i].c.has_sum;
		rc = idx_chunk_relocate(t, &now);
		moved += rc == 0;
	}
	/* A pack all of whose chunks moved loses its record in the same
	 * transaction: from the commit on, its file is an orphan. */
	for (size_t k = 0; rc == 0 && k < nids; k++) {
		struct gpack *g = bsearch(&ids[k], packs->p, packs->n, packs->sz, gpack_cmp);

		if (g && !g->keep && !g->more && g->has_rec)
			rc = idx_pack_del(t, g->id);
	}
	rc = host_txn_end(h, t, rc);
	t = NULL;
	if (rc < 0)
		goto out;
	committed = true;
	st->bytes_copied += copied;
	st->chunks_moved += moved;
	*copied_total += copied;
	if (o->stop == GC_STOP_AFTER_COMMIT) {
		rc = -ECANCELED;
		goto out;
	}
	if (h->before_remove)
		h->before_remove(h->arg);
	for (size_t k = 0; k < nids; k++) {
		struct gpack *g = bsearch(&ids[k], packs->p, packs->n, packs->sz, gpack_cmp);

		if (!g || g->keep || g->more)
			continue;
		rc = pack_remove(h->ps, g->id);
		if (rc < 0 && rc != -ENOENT)
			goto out;
		g->has_file = false;
		st->packs_compacted++;
		removed = true;
	}
	if (removed)
		dir_sync(h->pack_dir);
	rc = 0;
	*more = b.more && moved > 0; /* the rest of its packs: again */
out:
	idx_txn_abort(rt);
	if (rc < 0 && !committed && no_space(rc))
		*dropped = gc_drop_copies(h, &b.mvs) == 0;
	vec_free(&b.mvs);
	codec_ctx_free(ctx);
	free(buf);
	return rc;
}

/* Spans gathered per pass over the chunks while punching: bounds memory. */
#define PUNCH_GROUP_CHUNKS (1u << 22)

struct gloc {
	uint32_t pack;
	struct span sp;
};

struct gpunch {
	const uint32_t *ids;
	size_t nids;
	struct vec locs; /* struct gloc */
};

static int gpunch_chunk(void *arg, const struct idx_chunk *c)
{
	struct gpunch *g = arg;
	struct gloc *l;

	if (!bsearch(&c->pack_id, g->ids, g->nids, sizeof(*g->ids), u32_cmp))
		return 0;
	l = vec_push(&g->locs);
	if (!l)
		return -ENOMEM;
	l->pack = c->pack_id;
	l->sp.off = c->pack_off;
	l->sp.end = c->pack_off + c->frame_len;
	return 0;
}

static int gloc_cmp(const void *a, const void *b)
{
	const struct gloc *x = a, *y = b;

	if (x->pack != y->pack)
		return x->pack < y->pack ? -1 : 1;
	return span_cmp(&x->sp, &y->sp);
}

/* Free the dead and orphan bytes of packs in place (kept_only: of the
 * packs a batch kept, gpack.keep).  Needs no free space and no index
 * write, so on a full disk it is what makes room for the transactions and
 * copies that follow. */
static int gc_punch(const struct gc_host *h, const struct gc_opts *o, struct vec *packs,
                    bool kept_only, struct gc_stats *st)
{
	struct gpunch g = { .locs = { .sz = sizeof(struct gloc) } };
	struct vec spans = { .sz = sizeof(struct span) };
	struct gpack *gp = packs->p;
	uint32_t *ids = malloc((packs->n + 1) * sizeof(*ids));
	size_t i = 0, done = 0;
	int rc = 0;

	if (!ids)
		return -ENOMEM;
	if (h->before_remove && !o->dry_run)
		h->before_remove(h->arg);
	while (rc == 0 && i < packs->n) {
		struct idx_txn *t;
		uint64_t nch = 0;
		size_t nids = 0;

		for (; i < packs->n && (nids == 0 || nch + gp[i].nchunks <= PUNCH_GROUP_CHUNKS); i++) {
			if (!gc_may_touch(h, gp[i].id) || !gp[i].nchunks || !gp[i].has_rec ||
			    !gp[i].has_file || (kept_only && !gp[i].keep))
				continue;
			ids[nids++] = gp[i].id; /* packs is sorted: so is ids */
			nch += gp[i].nchunks;
		}
		if (!nids)
			break;
		g.ids = ids;
		g.nids = nids;
		g.locs.n = 0;
		rc = idx_txn_begin(h->idx, true, &t);
		if (rc < 0)
			break;
		rc = idx_chunk_iter(t, gpunch_chunk, &g);
		idx_txn_abort(t);
		/* What this snapshot calls dead may have been freed by a commit
		 * not yet durable (MDB_NOMETASYNC): after a power cut the index
		 * would name the punched frames again.  Sync it first. */
		if (rc == 0 && !o->dry_run)
			rc = idx_sync(h->idx);
		if (rc < 0)
			break;
		if (g.locs.n)
			qsort(g.locs.p, g.locs.n, g.locs.sz, gloc_cmp);
		for (size_t k = 0, l = 0; rc == 0 && k < nids; k++) {
			const struct gloc *loc = g.locs.p;
			int64_t freed;
			uint64_t size_after = 0;

			spans.n = 0;
			for (; l < g.locs.n && loc[l].pack == ids[k]; l++) {
				struct span *sp = vec_push(&spans);

				if (!sp) {
					rc = -ENOMEM;
					break;
				}
				*sp = loc[l].sp;
			}
			if (rc < 0)
				break;
			freed = pack_reclaim(h->pack_dir, ids[k], spans.p, spans.n, !o->dry_run,
			                     &st->punch_unsupported, &size_after);
			if (freed < 0) {
				rc = (int)freed;
				break;
			}
			st->bytes_punched += (uint64_t)freed;
			if (freed) {
				/* A cut tail makes the pack smaller: judge it for
				 * compaction by what is left (a dry run, as the
				 * real run will: by its size after the cut). */
				struct gpack *gk = bsearch(&ids[k], packs->p, packs->n, packs->sz,
				                           gpack_cmp);
				char path[PATH_MAX];
				struct stat sb;

				if (gk && o->dry_run) {
					if (size_after < gk->size)
						gk->size = size_after;
				} else if (gk) {
					pack_path(h->pack_dir, ids[k], path, sizeof(path));
					if (stat(path, &sb) == 0) {
						gk->size = (uint64_t)sb.st_size;
						gk->disk = (uint64_t)sb.st_blocks * 512;
					}
				}
			}
			progress(o->progress, o->progress_arg, "punch", ++done, 0);
		}
	}
	if (rc == 0 && st->bytes_punched && !o->dry_run)
		dir_sync(h->pack_dir);
	vec_free(&spans);
	vec_free(&g.locs);
	free(ids);
	return rc;
}

static const struct vec *frac_sort_packs;

static int frac_cmp(const void *a, const void *b)
{
	const struct gpack *x = (const struct gpack *)frac_sort_packs->p + *(const uint32_t *)a;
	const struct gpack *y = (const struct gpack *)frac_sort_packs->p + *(const uint32_t *)b;

	return x->frac > y->frac ? -1 : x->frac < y->frac;
}

/* One gc pass; adds to st (bytes_before only on the first pass). */
static int compact(const struct gc_host *h, const struct gc_opts *o, struct gc_stats *st,
                   bool first)
{
	struct vec packs = { .sz = sizeof(struct gpack) };
	uint32_t *cand = NULL, *ids = NULL;
	uint64_t copy_total = 0, copied = 0, before, freed = 0, kept_before = st->packs_kept;
	size_t ncand = 0;
	bool single = false; /* a batch did not fit: one pack per batch */
	double thr;
	int rc;

	thr = o->threshold < 0 ? 0 : o->threshold > 1 ? 1 : o->threshold;
	progress(o->progress, o->progress_arg, "scan", 0, 0);
	rc = gc_scan(h, &packs, &before);
	if (rc < 0)
		goto out;
	if (first)
		st->bytes_before = before;
	st->packs_scanned = packs.n;
	for (size_t i = 0; o->dry_run && i < packs.n; i++) {
		struct gpack *g = (struct gpack *)packs.p + i;

		if (gc_may_touch(h, g->id) && !g->nchunks && g->has_file)
			freed += g->disk;
	}
	/* Punching first: it needs neither space nor an index write, and
	 * on a full disk it is what lets the steps below commit. */
	rc = gc_punch(h, o, &packs, false, st);
	if (rc < 0)
		goto out;
	rc = gc_drop_empty(h, o, &packs, st);
	if (rc < 0)
		goto out;
	cand = malloc((packs.n + 1) * sizeof(*cand));
	ids = malloc((packs.n + 1) * sizeof(*ids));
	if (!cand || !ids) {
		rc = -ENOMEM;
		goto out;
	}
	/* Copying is for packs mostly dead by apparent size: punched or
	 * not, they cost a file and its extents; moving their few live
	 * frames retires them. */
	for (size_t i = 0; i < packs.n; i++) {
		struct gpack *g = (struct gpack *)packs.p + i;

		/* Only packs whose record, file and chunks agree: anything
		 * else is fsck's to report, not gc's to move. */
		if (!gc_may_touch(h, g->id) || !g->nchunks || !g->has_rec || !g->has_file ||
		    g->size < g->live || g->size == 0)
			continue;
		g->frac = (double)(g->size - g->live) / (double)g->size;
		if (g->frac <= 0 || g->frac < thr)
			continue;
		cand[ncand++] = (uint32_t)i;
		copy_total += g->live;
		if (o->dry_run)
			st->chunks_moved += g->nchunks;
	}
	/* Most reclaimable first: a run cut short (full disk) gains most. */
	frac_sort_packs = &packs;
	qsort(cand, ncand, sizeof(*cand), frac_cmp);
	frac_sort_packs = NULL;
	if (o->dry_run) {
		st->packs_compacted += ncand;
		st->bytes_copied += copy_total;
		st->bytes_after = before - freed - st->bytes_punched;
		goto out;
	}
	const uint64_t max_moves = o->batch_moves ? o->batch_moves : GC_DEF_MOVES;

	for (size_t i = 0; i < ncand;) {
		uint64_t live = 0, nch = 0;
		size_t nids = 0, from = i;
		bool dropped, more;

		/* Batches bound the memory of the move list and the size of
		 * one transaction; at least one pack per batch. */
		while (i < ncand) {
			struct gpack *g = (struct gpack *)packs.p + cand[i];

			if (nids && (single || live + g->live > o->batch_bytes ||
			             nch + g->nchunks > max_moves))
				break;
			ids[nids++] = g->id;
			live += g->live;
			nch += g->nchunks;
			i++;
		}
		rc = gc_batch(h, o, max_moves, &packs, ids, nids, st, &copied, copy_total, &dropped,
		              &more);
		if (rc == 0 && more) {
			/* packs of more chunks than a batch moves: the same
			 * packs again, their moved chunks no longer in them */
			for (size_t k = 0; k < nids; k++) {
				struct gpack *g = bsearch(&ids[k], packs.p, packs.n, packs.sz, gpack_cmp);

				if (g)
					g->more = false;
			}
			i = from;
			continue;
		}
		if (rc < 0 && dropped && nids > 1) {
			/* The batch's copies did not fit beside its old packs,
			 * and are gone again: one pack at a time from here, so
			 * each pack freed makes room for the next. */
			single = true;
			i = from;
			continue;
		}
		if (rc < 0)
			goto out;
	}
	/* a pack kept for a frame that failed its checks still holds the
	 * frames that moved out of it: free them in place now (the next run
	 * would; until then the store grew by what this one copied) */
	if (st->packs_kept > kept_before) {
		rc = gc_punch(h, o, &packs, true, st);
		if (rc < 0)
			goto out;
	}
	{
		struct vec files = { .sz = sizeof(struct pfile) };
		uint64_t after = 0;

		rc = pfiles_list(h->pack_dir, &files);
		for (size_t i = 0; rc == 0 && i < files.n; i++)
			after += ((struct pfile *)files.p)[i].disk;
		vec_free(&files);
		st->bytes_after = after;
	}
out:
	free(cand);
	free(ids);
	vec_free(&packs);
	return rc;
}

int gc_compact(const struct gc_host *h, const struct gc_opts *o, struct gc_stats *st)
{
	struct gc_opts defo;

	memset(st, 0, sizeof(*st));
	if (!o) {
		gc_opts_default(&defo);
		o = &defo;
	}
	return compact(h, o, st, true);
}

/* --- offline gc -------------------------------------------------------------- */

struct offline {
	struct idx *x;
	struct vec new_ids; /* uint32_t: packs this run created */
};

static int offline_alloc(void *arg, uint32_t *id)
{
	struct offline *off = arg;
	struct idx_txn *t;
	uint32_t *slot;
	int rc;

	slot = vec_push(&off->new_ids);
	if (!slot)
		return -ENOMEM;
	off->new_ids.n--; /* reserved; kept below only if the commit worked */
	rc = idx_txn_begin(off->x, false, &t);
	if (rc < 0)
		return rc;
	rc = idx_pack_alloc(t, id);
	if (rc < 0) {
		idx_txn_abort(t);
		return rc;
	}
	rc = idx_txn_commit(t);
	if (rc < 0)
		return rc;
	*slot = *id;
	off->new_ids.n++;
	return 0;
}

static bool offline_is_new(void *arg, uint32_t id)
{
	struct offline *off = arg;
	const uint32_t *v = off->new_ids.p;

	for (size_t i = 0; i < off->new_ids.n; i++)
		if (v[i] == id)
			return true;
	return false;
}

/* Remove the packs this run created that stayed empty (the one a batch
 * that did not fit was copied to, emptied again): nothing names them. */
static void offline_remove_empty(const char *dir, const struct offline *off)
{
	const uint32_t *v = off->new_ids.p;
	char path[PATH_MAX];
	struct stat st;

	for (size_t i = 0; i < off->new_ids.n; i++) {
		pack_path(dir, v[i], path, sizeof(path));
		if (stat(path, &st) == 0 && st.st_size == 0)
			(void)unlink(path);
	}
}

static int collect_ino(void *arg, uint64_t ino)
{
	uint64_t *p = vec_push(arg);

	if (!p)
		return -ENOMEM;
	*p = ino;
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct name_scan {
	uint64_t *inos; /* sorted orphan candidates; 0 = has a name, keep */
	size_t n;
	struct vec dirs;
};

static int collect_dir(void *arg, const struct idx_inode *in)
{
	struct name_scan *ns = arg;
	uint64_t *p;

	if (!S_ISDIR(in->mode))
		return 0;
	p = vec_push(&ns->dirs);
	if (!p)
		return -ENOMEM;
	*p = in->ino;
	return 0;
}

static int clear_named(void *arg, const char *name, size_t namelen, uint64_t ino, uint8_t type,
                       uint64_t seq)
{
	struct name_scan *ns = arg;
	uint64_t *hit = bsearch(&ino, ns->inos, ns->n, sizeof(*ns->inos), u64_cmp);

	(void)name;
	(void)namelen;
	(void)type;
	(void)seq;
	if (hit)
		*hit = 0;
	return 0;
}

/* Delete the inodes unlinked while open: offline nobody holds them any
 * more (the next mount would do the same), and until then their chunks
 * are live to gc.  The kernel often keeps an unlinked file's inode until
 * unmount, so after "rm; umount" this is where the space comes back.
 * Only inodes with link count 0 that no directory entry names: a mark on
 * anything else is damage for fsck to report, never a reason to delete a
 * file (the names are looked up by walking the directories, which only
 * happens when there are marks at all). */
static int reap_orphans(struct idx *x, bool dry_run, uint64_t *n)
{
	struct name_scan ns = { .dirs = { .sz = sizeof(uint64_t) } };
	struct vec inos = { .sz = sizeof(uint64_t) };
	struct idx_txn *t;
	int rc;

	rc = idx_txn_begin(x, dry_run, &t);
	if (rc < 0)
		return rc;
	rc = idx_orphan_iter(t, collect_ino, &inos);
	if (rc == 0 && inos.n) {
		ns.inos = inos.p;
		ns.n = inos.n;
		qsort(ns.inos, ns.n, sizeof(*ns.inos), u64_cmp);
		rc = idx_inode_iter(t, collect_dir, &ns);
		for (size_t i = 0; rc == 0 && i < ns.dirs.n; i++)
			rc = idx_dir_iter(t, ((uint64_t *)ns.dirs.p)[i], 0, clear_named, &ns);
	}
	for (size_t i = 0; rc == 0 && i < inos.n; i++) {
		uint64_t ino = ((uint64_t *)inos.p)[i];
		struct idx_inode in;

		if (!ino)
			continue;
		rc = idx_inode_get(t, ino, &in);
		if (rc == -ENOENT || (rc == 0 && in.nlink != 0)) {
			((uint64_t *)inos.p)[i] = 0;
			rc = 0;
			continue;
		}
		if (rc == 0 && !dry_run)
			rc = idx_inode_delete(t, ino);
	}
	if (rc < 0 || dry_run) {
		idx_txn_abort(t);
	} else {
		rc = idx_txn_commit(t);
		if (rc == 0)
			rc = idx_sync(x);
	}
	for (size_t i = 0; rc == 0 && i < inos.n; i++)
		*n += ((uint64_t *)inos.p)[i] != 0;
	vec_free(&ns.dirs);
	vec_free(&inos);
	return rc;
}

int gc_run(const char *store, const struct gc_opts *o, struct gc_stats *st)
{
	struct offline off = { .new_ids = { .sz = sizeof(uint32_t) } };
	struct pack_store *ps = NULL;
	struct gc_lock *lock;
	struct gc_opts defo;
	struct gc_host h;
	char *ip = NULL, *pp = NULL;
	bool first = true;
	int rc;

	memset(st, 0, sizeof(*st));
	if (!o) {
		gc_opts_default(&defo);
		o = &defo;
	}
	rc = gc_store_lock(store, o->dry_run ? GC_LOCK_SHARED : GC_LOCK_EXCLUSIVE, &lock);
	if (rc < 0)
		return rc;
	ip = path_join(store, "index");
	pp = path_join(store, "packs");
	if (!ip || !pp) {
		rc = -ENOMEM;
		goto out;
	}
	rc = idx_open(ip, o->dry_run ? IDX_RDONLY : 0, NULL, 0, &off.x);
	if (rc < 0)
		goto out;
	rc = pack_store_open(pp, NULL, offline_alloc, &off, &ps);
	if (rc < 0)
		goto out;
	memset(&h, 0, sizeof(h));
	h.idx = off.x;
	h.ps = ps;
	h.pack_dir = pp;
	/* Exclusive: every existing pack is fair game except our own. */
	h.pack_id_limit = UINT32_MAX;
	h.pack_is_new = offline_is_new;
	h.arg = &off;
	rc = reap_orphans(off.x, o->dry_run, &st->orphan_inodes);
	if (no_space(rc)) {
		/* The index cannot grow on a full disk: free pack space in
		 * place first, then retry. */
		rc = compact(&h, o, st, first);
		first = false;
		if (rc == 0)
			rc = reap_orphans(off.x, o->dry_run, &st->orphan_inodes);
	}
	if (rc == 0)
		rc = compact(&h, o, st, first);
out:
	pack_store_close(ps);
	if (pp)
		offline_remove_empty(pp, &off);
	idx_close(off.x);
	vec_free(&off.new_ids);
	gc_store_unlock(lock);
	free(ip);
	free(pp);
	return rc;
}
