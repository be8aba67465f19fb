/*
 * cmd_stats.c - "mixfs stats [--json] [--files] [--ascii] [--bytes] PATH":
 * what dedup and compression saved, and where.
 *
 * PATH is a store directory, a mount point, or a file or directory inside a
 * mount (found through /proc/self/mountinfo: fstype fuse.mixfs, device
 * number of PATH, mount source = the absolute store path).  The index is
 * opened read-only, which LMDB allows next to the mounted daemon; one read
 * transaction gives a consistent snapshot of everything printed.
 *
 * Whole store: the totals are the counters the index keeps exact inside
 * every transaction (struct idx_stats), O(1).  A subtree, or --files, walks
 * the directory entries from the subtree's inode and every file's extents.
 *
 * Per-file charge (the rules documented in mixfs-stats(1)).  Stored bytes:
 * a chunk's frame bytes are split evenly between its references.  A chunk
 * with refcount k (k extents, in this file or others, plus chunks coded
 * against it) charges frame_len / k to each.  A reference held by a chunk
 * coded against it (series coding) passes its share on: chunk C costs its
 * own frame plus cost(R) / refcount(R) of its reference chunk R, and C's
 * cost is split between C's references in turn.  So the shares of all
 * files add up to exactly the bytes stored: nothing is counted twice,
 * nothing is lost.
 *
 * Raw bytes (after dedup) are the bytes of a file that are no copy of
 * other bytes, so they follow the extents alone: a chunk's raw bytes are
 * split evenly between the extents that map it, and a chunk coded against
 * R gets nothing of R's raw bytes while an extent maps R (R's file holds
 * them).  Only a chunk that no extent maps any more (its file was deleted;
 * newer versions still decode through it) passes its raw bytes, with what
 * it got that way itself, evenly to the chunks coded against it.  These
 * shares too add up exactly to the store's bytes after dedup, and a file
 * is charged more raw bytes than it maps only for the unused part of a
 * chunk it maps partly or for such an unmapped reference.  The extents of
 * a chunk are its refcount minus its dependents (chunks coded against
 * it), which the index does not keep: they are counted in one pass over
 * the chunk records before a walk (none if the store has no series-coded
 * chunk), so a subtree's files get the numbers of the whole store.
 * The series figures of a subtree follow the same rules: ref_stored and
 * ref_saved those of frame bytes, ref_raw that of raw bytes.
 *
 * Shares are fractions: they are summed in fixed point (32 fractional bits,
 * 128-bit sums) and rounded at the end by largest remainder, so the printed
 * rows add up exactly to the printed total.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "codec/codec.h"
#include "fs/fuse_ll.h"
#include "fs/gc.h"
#include "index/idx.h"
#include "tools/cmd.h"
#include "tools/progress.h"

__extension__ typedef unsigned __int128 u128;

#define FX_SHIFT 32
#define MAX_REF_DEPTH IDX_REF_DEPTH_MAX /* far beyond any max_ref_chain: a cycle is corruption */
#define BAR_WIDTH 40
#define JSON_SCHEMA 1
/* Human-readable amounts: a size, or a minus sign and a size. */
#define HBUF (PROGRESS_BYTES_LEN + 8)

struct stats_opts {
	bool json, files, ascii, bytes;
};

/* Where PATH points. */
struct loc {
	char *store;  /* absolute store directory */
	char *mount;  /* mount point, or NULL */
	char *fspath; /* path inside the file system, "/" = root */
};

/* One regular file (each inode once, whatever its number of links). */
struct frow {
	char *path;
	uint64_t ino, size;
	uint32_t nlink;
	uint8_t dtype;                      /* dominant by dt_bytes */
	uint64_t dt_bytes[IDX_DTYPE_COUNT]; /* mapped bytes by chunk dtype */
	u128 stored_fx, raw_fx;
	uint64_t stored, raw; /* rounded, after apportion */
};

/* The head of each entry of a struct fptab. */
struct fpkey {
	uint8_t fp[FP_LEN];
	bool used;
};

/* An open-addressing table keyed by chunk fingerprint: cap entries (a power
 * of two, or 0) of esz bytes, each beginning with a struct fpkey; at most
 * half full. */
struct fptab {
	unsigned char *v;
	size_t n, cap, esz;
};

/* A chunk's share per reference, cached while walking a subtree (the cache
 * also gives the number of distinct chunks the subtree uses). */
struct cshare {
	struct fpkey k;
	bool direct; /* referenced by an extent of the subtree */
	/* no extent maps the chunk: raw_fx and ref_raw_fx are per chunk coded
	 * against it (else per extent, and those get none of its raw bytes) */
	bool unmapped;
	uint8_t level, dtype, has_ref, fwd;
	u128 stored_fx, raw_fx;
	/* the part of stored_fx / raw_fx that is bytes of chunks coded
	 * against a reference (this one, if it has one, and along its chain) */
	u128 ref_stored_fx, ref_raw_fx;
	u128 ref_saved_fx; /* what series coding saved, along the chain */
};

/* How many chunks are coded against a chunk (entries only for those that
 * have any). */
struct cdeps {
	struct fpkey k;
	uint32_t n;
};

/* Totals of a walk, before rounding. */
struct sums {
	uint64_t files, logical, mapped, chunks, ref_chunks, ref_fwd_chunks;
	u128 stored_fx, raw_fx, pending_fx, ref_stored_fx, ref_raw_fx, ref_saved_fx;
	u128 level_raw[IDX_LEVEL_COUNT], level_stored[IDX_LEVEL_COUNT];
	u128 dtype_raw[IDX_DTYPE_COUNT], dtype_stored[IDX_DTYPE_COUNT];
};

struct walk {
	struct idx_txn *t;
	uint8_t default_level;
	bool keep_rows, use_cache;
	struct frow *rows;
	size_t nrows, caprows;
	uint64_t *links; /* open-addressing set of inodes with nlink > 1 seen */
	size_t nlinks, caplinks;
	struct fptab cache; /* struct cshare; used for a subtree only */
	struct fptab deps;  /* struct cdeps */
	struct sums s;
	struct frow *cur; /* file whose extents are being walked */
	struct progress *prog;
};

/* The printable result, whole store or subtree: the same counters as the
 * index keeps for the store (for a subtree, its shares of them). */
struct result {
	bool subtree;
	struct idx_stats st;
	uint64_t packs, pack_live, pack_dead;
	/* what the pack files take on disk (allocated blocks: gc punches
	 * dead frames out of a pack without changing its record), when the
	 * packs directory can be read */
	bool disk_known;
	uint64_t pack_disk;
	uint8_t default_level;
};

static void stats_usage(FILE *f)
{
	fprintf(f, "usage: mixfs stats [-j] [-f] [-a] [-b] PATH\n"
	           "\n"
	           "Show what deduplication and compression saved in a mixfs store.\n"
	           "PATH is a store directory, a mount point, or a file or directory\n"
	           "inside a mount (then the numbers cover that subtree).  Works while\n"
	           "the store is mounted.\n"
	           "\n"
	           "  -j, --json   print one JSON object (keys in mixfs-stats(1))\n"
	           "  -f, --files  list every regular file, largest first, with its\n"
	           "               logical and stored bytes and ratio\n"
	           "  -a, --ascii  draw the bar chart with ASCII (the default when\n"
	           "               stdout is not a UTF-8 terminal)\n"
	           "  -b, --bytes  print exact byte counts instead of KiB/MiB/GiB\n"
	           "  -h, --help   show this help\n");
}

/* --- small helpers ------------------------------------------------------ */

static char *path_join(const char *dir, const char *name)
{
	char *p;
	size_t dl = strlen(dir);

	/* "/" + "a" is "/a", not "//a". */
	if (asprintf(&p, "%s%s%s", dir, dl > 0 && dir[dl - 1] == '/' ? "" : "/", name) < 0)
		return NULL;
	return p;
}

static uint64_t fx_round(u128 v)
{
	return (uint64_t)((v + ((u128)1 << (FX_SHIFT - 1))) >> FX_SHIFT);
}

static double ratio_of(uint64_t num, uint64_t den)
{
	return den ? (double)num / (double)den : 0.0;
}

static void loc_free(struct loc *l)
{
	free(l->store);
	free(l->mount);
	free(l->fspath);
	memset(l, 0, sizeof(*l));
}

/* --- finding the store ----------------------------------------------------- */

/* Is mnt a path prefix of abs (on a component boundary)? */
static bool path_under(const char *abs, const char *mnt)
{
	size_t n = strlen(mnt);

	if (strcmp(mnt, "/") == 0)
		return true;
	return strncmp(abs, mnt, n) == 0 && (abs[n] == '\0' || abs[n] == '/');
}

/* A mounted daemon commits files closed a moment ago together, within a
 * second: fsync of the mount's root asks it to commit them now, so the
 * numbers include every file closed before this command.  Best effort. */
static void commit_mount(const char *mnt)
{
	int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) != 0)
		fprintf(stderr, "mixfs stats: committing %s: %s (files closed just now may be "
		                "missing)\n", mnt, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Find the fuse.mixfs mount holding abs (device dev).  Among bind mounts of
 * the same file system the one with the longest mount point under which abs
 * lies wins.  Fills l->store, l->mount, l->fspath; returns 1 if found, 0 if
 * abs is on no mixfs mount, or negative errno. */
static int find_mount(const char *abs, dev_t dev, struct loc *l)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *best_mnt = NULL, *best_root = NULL, *best_src = NULL;
	size_t cap = 0, best_len = 0;
	int rc = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (getline(&line, &cap, f) > 0) {
		char *fld[5], *src;
		unsigned maj, min;

		if (!mixfs_mi_parse(line, fld, &src))
			continue;
		if (sscanf(fld[2], "%u:%u", &maj, &min) != 2 || makedev(maj, min) != dev)
			continue;
		mixfs_mi_unescape(fld[3]);
		mixfs_mi_unescape(fld[4]);
		mixfs_mi_unescape(src);
		if (!path_under(abs, fld[4]) || (best_mnt && strlen(fld[4]) <= best_len))
			continue;
		free(best_mnt);
		free(best_root);
		free(best_src);
		best_mnt = strdup(fld[4]);
		best_root = strdup(fld[3]);
		best_src = strdup(src);
		best_len = strlen(fld[4]);
		if (!best_mnt || !best_root || !best_src) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (!best_mnt)
		goto out;
	if (best_src[0] != '/') {
		/* Not the absolute store path mixfs mount gives as fsname. */
		fprintf(stderr, "mixfs stats: mount %s names no store (source '%s')\n", best_mnt,
		        best_src);
		rc = -EINVAL;
		goto out;
	}
	{
		const char *rel = abs + (strcmp(best_mnt, "/") == 0 ? 0 : best_len);

		if (asprintf(&l->fspath, "%s%s", strcmp(best_root, "/") == 0 ? "" : best_root,
		             rel) < 0) {
			l->fspath = NULL;
			rc = -ENOMEM;
			goto out;
		}
		if (l->fspath[0] == '\0') {
			free(l->fspath);
			l->fspath = strdup("/");
			if (!l->fspath) {
				rc = -ENOMEM;
				goto out;
			}
		}
	}
	l->store = best_src;
	l->mount = best_mnt;
	best_src = best_mnt = NULL;
	rc = 1;
out:
	free(best_mnt);
	free(best_root);
	free(best_src);
	free(line);
	fclose(f);
	return rc;
}

/* Resolve PATH into l.  Errors are printed. */
static int locate(const char *path, struct loc *l)
{
	struct stat st;
	char *abs = realpath(path, NULL);
	int rc;

	if (!abs) {
		rc = -errno;
		fprintf(stderr, "mixfs stats: %s: %s\n", path, strerror(errno));
		return rc;
	}
	if (stat(abs, &st) != 0) {
		rc = -errno;
		fprintf(stderr, "mixfs stats: %s: %s\n", path, strerror(errno));
		goto out;
	}
	/* A mount first: a store kept inside a mixfs mount is still a path in
	 * that mount. */
	rc = find_mount(abs, st.st_dev, l);
	if (rc < 0) {
		fprintf(stderr, "mixfs stats: reading /proc/self/mountinfo: %s\n", strerror(-rc));
		goto out;
	}
	if (rc == 0) {
		if (!S_ISDIR(st.st_mode) || gc_store_present(abs) < 0) {
			fprintf(stderr, "mixfs stats: %s is neither a mixfs store nor inside a "
			                "mixfs mount\n", path);
			rc = -EINVAL;
			goto out;
		}
		l->store = abs;
		abs = NULL;
		l->fspath = strdup("/");
		if (!l->fspath) {
			rc = -ENOMEM;
			goto out;
		}
	}
	rc = 0;
out:
	free(abs);
	return rc;
}

/* Walk fspath's components from the root.  *ino gets the inode. */
static int lookup_path(struct idx_txn *t, const char *fspath, uint64_t *ino)
{
	uint64_t cur = IDX_ROOT_INO;
	const char *p = fspath;
	uint8_t type;
	int rc;

	while (*p) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0)
			break;
		rc = idx_dirent_lookup(t, cur, p, n, &cur, &type);
		if (rc < 0)
			return rc;
		p += n;
	}
	*ino = cur;
	return 0;
}

/* --- walking --------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	/* splitmix64 finalizer: inode numbers are sequential. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Insert ino into the set of multiply-linked inodes; 1 if it was new, 0 if
 * seen before, -ENOMEM. */
static int links_add(struct walk *w, uint64_t ino)
{
	size_t i, mask;

	if (2 * (w->nlinks + 1) > w->caplinks) {
		size_t ncap = w->caplinks ? 2 * w->caplinks : 64, j;
		uint64_t *n = calloc(ncap, sizeof(*n));

		if (!n)
			return -ENOMEM;
		for (j = 0; j < w->caplinks; j++) {
			if (!w->links[j])
				continue;
			for (i = mix64(w->links[j]) & (ncap - 1); n[i]; i = (i + 1) & (ncap - 1))
				;
			n[i] = w->links[j];
		}
		free(w->links);
		w->links = n;
		w->caplinks = ncap;
	}
	mask = w->caplinks - 1;
	/* Inode 0 never exists, so 0 marks a free slot. */
	for (i = mix64(ino) & mask; w->links[i]; i = (i + 1) & mask)
		if (w->links[i] == ino)
			return 0;
	w->links[i] = ino;
	w->nlinks++;
	return 1;
}

static uint64_t fp_hash(const uint8_t fp[FP_LEN])
{
	uint64_t h;

	/* SHA-256 bytes are uniform already. */
	memcpy(&h, fp, sizeof(h));
	return h;
}

static struct fpkey *fptab_at(const struct fptab *t, size_t i)
{
	return (struct fpkey *)(void *)(t->v + i * t->esz);
}

/* The entry for fp, or the free slot where it would go (t->cap > 0). */
static struct fpkey *fptab_slot(const struct fptab *t, const uint8_t fp[FP_LEN])
{
	size_t mask = t->cap - 1, i;
	struct fpkey *k;

	for (i = fp_hash(fp) & mask; (k = fptab_at(t, i))->used; i = (i + 1) & mask)
		if (memcmp(k->fp, fp, FP_LEN) == 0)
			break;
	return k;
}

/* The entry for fp, or NULL. */
static void *fptab_find(const struct fptab *t, const uint8_t fp[FP_LEN])
{
	struct fpkey *k;

	if (t->cap == 0)
		return NULL;
	k = fptab_slot(t, fp);
	return k->used ? k : NULL;
}

static int fptab_grow(struct fptab *t)
{
	struct fptab old = *t;
	size_t j;

	t->cap = old.cap ? 2 * old.cap : 1024;
	t->v = calloc(t->cap, t->esz);
	if (!t->v) {
		*t = old;
		return -ENOMEM;
	}
	for (j = 0; j < old.cap; j++) {
		struct fpkey *k = fptab_at(&old, j);

		if (k->used)
			memcpy(fptab_slot(t, k->fp), k, t->esz);
	}
	free(old.v);
	return 0;
}

/* The entry for fp; a new one is zero but for its key.  NULL: no memory. */
static void *fptab_add(struct fptab *t, const uint8_t fp[FP_LEN])
{
	struct fpkey *k;

	if (2 * (t->n + 1) > t->cap && fptab_grow(t) < 0)
		return NULL;
	k = fptab_slot(t, fp);
	if (!k->used) {
		memcpy(k->fp, fp, FP_LEN);
		k->used = true;
		t->n++;
	}
	return k;
}

/* Count the dependents of every reference chunk into w->deps. */
static int deps_cb(void *arg, const struct idx_chunk *c)
{
	struct walk *w = arg;
	struct cdeps *d;

	if (!(c->flags & IDX_CHUNK_HAS_REF))
		return 0;
	d = fptab_add(&w->deps, c->ref_fp);
	if (!d)
		return -ENOMEM;
	d->n++;
	return 0;
}

static uint32_t chunk_deps(const struct walk *w, const uint8_t fp[FP_LEN])
{
	const struct cdeps *d = fptab_find(&w->deps, fp);

	return d ? d->n : 0;
}

/* Share of chunk fp per reference (fixed point), following its reference
 * chain.  depth guards against a cycle in a corrupt index. */
static int chunk_share(struct walk *w, const uint8_t fp[FP_LEN], unsigned depth,
                       struct cshare *out)
{
	struct idx_chunk c;
	struct cshare ref;
	u128 stored, raw, ref_stored = 0, ref_raw = 0, ref_saved = 0;
	uint32_t refs, deps, raw_refs;
	int rc;

	if (w->use_cache) {
		struct cshare *s = fptab_find(&w->cache, fp);

		if (s) {
			*out = *s;
			return 0;
		}
	}
	if (depth > MAX_REF_DEPTH) {
		fprintf(stderr, "mixfs stats: reference chain longer than %d chunks (corrupt index?)\n",
		        MAX_REF_DEPTH);
		return -EIO;
	}
	rc = idx_chunk_get(w->t, fp, &c);
	if (rc < 0)
		return rc;
	stored = (u128)c.frame_len << FX_SHIFT;
	raw = (u128)c.raw_len << FX_SHIFT;
	if (c.flags & IDX_CHUNK_HAS_REF) {
		rc = chunk_share(w, c.ref_fp, depth + 1, &ref);
		if (rc < 0)
			return rc;
		stored += ref.stored_fx;
		ref_stored = ((u128)c.frame_len << FX_SHIFT) + ref.ref_stored_fx;
		ref_raw = raw;
		if (ref.unmapped) {
			raw += ref.raw_fx;
			ref_raw += ref.ref_raw_fx;
		}
		ref_saved = ref.ref_saved_fx;
		if (c.alone_len > c.frame_len)
			ref_saved += (u128)(c.alone_len - c.frame_len) << FX_SHIFT;
	}
	/* refcount 0 only inside a writer's transaction; never seen by a
	 * reader, but a corrupt record must not divide by zero. */
	refs = c.refcount ? c.refcount : 1;
	deps = chunk_deps(w, fp);
	/* raw bytes: per extent, or per dependent when no extent is left */
	raw_refs = c.refcount > deps ? c.refcount - deps : (deps ? deps : 1);
	memset(out, 0, sizeof(*out));
	memcpy(out->k.fp, fp, FP_LEN);
	out->k.used = true;
	out->unmapped = c.refcount <= deps;
	out->level = c.level;
	out->dtype = c.dtype;
	out->has_ref = (c.flags & IDX_CHUNK_HAS_REF) != 0;
	out->fwd = out->has_ref && !(c.flags & IDX_CHUNK_REVERSED);
	out->stored_fx = stored / refs;
	out->raw_fx = raw / raw_refs;
	out->ref_stored_fx = ref_stored / refs;
	out->ref_raw_fx = ref_raw / raw_refs;
	out->ref_saved_fx = ref_saved / refs;
	if (w->use_cache) {
		struct cshare *s = fptab_add(&w->cache, fp);

		if (!s)
			return -ENOMEM;
		*s = *out;
	}
	return 0;
}

static int extent_cb(void *arg, const struct idx_extent *e)
{
	struct walk *w = arg;
	struct cshare sh;
	int rc = chunk_share(w, e->fp, 0, &sh);

	if (rc < 0)
		return rc;
	if (w->use_cache) {
		struct cshare *s = fptab_find(&w->cache, e->fp);

		if (!s->direct) {
			s->direct = true;
			w->s.chunks++;
			w->s.ref_chunks += s->has_ref;
			w->s.ref_fwd_chunks += s->fwd;
		}
	}
	w->cur->dt_bytes[sh.dtype] += e->len;
	w->cur->stored_fx += sh.stored_fx;
	w->cur->raw_fx += sh.raw_fx;
	w->s.mapped += e->len;
	w->s.ref_stored_fx += sh.ref_stored_fx;
	w->s.ref_raw_fx += sh.ref_raw_fx;
	w->s.ref_saved_fx += sh.ref_saved_fx;
	w->s.level_raw[sh.level] += sh.raw_fx;
	w->s.level_stored[sh.level] += sh.stored_fx;
	w->s.dtype_raw[sh.dtype] += sh.raw_fx;
	w->s.dtype_stored[sh.dtype] += sh.stored_fx;
	if (sh.level >= 1 && sh.level < w->default_level)
		w->s.pending_fx += sh.raw_fx;
	return 0;
}

/* Account one regular file; path is taken over (freed on every path). */
static int walk_file(struct walk *w, uint64_t ino, char *path)
{
	struct frow row;
	struct idx_inode in;
	int rc;

	memset(&row, 0, sizeof(row));
	row.path = path;
	rc = idx_inode_get(w->t, ino, &in);
	if (rc < 0)
		goto out;
	if (!S_ISREG(in.mode)) {
		rc = 0;
		goto out;
	}
	if (in.nlink > 1) {
		rc = links_add(w, ino);
		if (rc <= 0) /* a hard link seen before counts once */
			goto out;
	}
	row.ino = ino;
	row.size = in.size;
	row.nlink = in.nlink;
	w->cur = &row;
	rc = idx_extent_iter(w->t, ino, 0, UINT64_MAX, extent_cb, w);
	w->cur = NULL;
	if (rc < 0)
		goto out;
	row.dtype = idx_dtype_dominant(row.dt_bytes);
	w->s.files++;
	w->s.logical += in.size;
	w->s.stored_fx += row.stored_fx;
	w->s.raw_fx += row.raw_fx;
	progress_add(w->prog, in.size);
	if (w->keep_rows) {
		if (w->nrows == w->caprows) {
			size_t ncap = w->caprows ? 2 * w->caprows : 256;
			struct frow *n = realloc(w->rows, ncap * sizeof(*n));

			if (!n) {
				rc = -ENOMEM;
				goto out;
			}
			w->rows = n;
			w->caprows = ncap;
		}
		w->rows[w->nrows++] = row;
		row.path = NULL;
	}
	rc = 0;
out:
	free(row.path);
	return rc;
}

/* Directory entries collected by one idx_dir_iter (the callback must not
 * walk further: nested walks would hold a cursor per level). */
struct dent {
	char *name;
	uint64_t ino;
	uint8_t type;
};

struct dents {
	struct dent *v;
	size_t n, cap;
};

static int dent_cb(void *arg, const char *name, size_t namelen, uint64_t ino, uint8_t type,
                   uint64_t seq)
{
	struct dents *d = arg;

	if (d->n == d->cap) {
		size_t ncap = d->cap ? 2 * d->cap : 64;
		struct dent *n = realloc(d->v, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		d->v = n;
		d->cap = ncap;
	}
	d->v[d->n].name = strndup(name, namelen);
	if (!d->v[d->n].name)
		return -ENOMEM;
	d->v[d->n].ino = ino;
	d->v[d->n].type = type;
	d->n++;
	return 0;
}

/* A directory still to list. */
struct dirq {
	uint64_t ino;
	char *path;
};

/* Walk the tree under ino (path is its name in the file system): every
 * regular file once.  Breadth-first with a queue: the depth of the tree
 * never reaches the C stack. */
static int walk_tree(struct walk *w, uint64_t ino, const char *path)
{
	struct dirq *q = NULL;
	struct dents d = { NULL, 0, 0 };
	size_t head = 0, nq = 0, capq = 0, i;
	struct idx_inode in;
	char *p;
	int rc;

	rc = idx_inode_get(w->t, ino, &in);
	if (rc < 0)
		return rc;
	p = strdup(path);
	if (!p)
		return -ENOMEM;
	if (!S_ISDIR(in.mode))
		return walk_file(w, ino, p);
	q = malloc(sizeof(*q));
	if (!q) {
		free(p);
		return -ENOMEM;
	}
	capq = 1;
	q[nq].ino = ino;
	q[nq++].path = p;
	for (; head < nq; head++) {
		d.n = 0;
		rc = idx_dir_iter(w->t, q[head].ino, 0, dent_cb, &d);
		for (i = 0; i < d.n; i++) {
			char *cp = rc >= 0 ? path_join(q[head].path, d.v[i].name) : NULL;

			free(d.v[i].name);
			if (rc < 0)
				continue; /* only freeing the rest */
			if (!cp) {
				rc = -ENOMEM;
			} else if (d.v[i].type == (S_IFDIR >> 12)) {
				if (nq == capq) {
					struct dirq *n = realloc(q, 2 * capq * sizeof(*n));

					if (!n) {
						free(cp);
						rc = -ENOMEM;
						continue;
					}
					q = n;
					capq *= 2;
				}
				q[nq].ino = d.v[i].ino;
				q[nq++].path = cp;
			} else if (d.v[i].type == (S_IFREG >> 12)) {
				rc = walk_file(w, d.v[i].ino, cp);
			} else {
				free(cp);
			}
		}
		free(q[head].path);
		q[head].path = NULL;
		if (rc < 0)
			break;
	}
	for (i = head; i < nq; i++)
		free(q[i].path);
	free(q);
	free(d.v);
	return rc < 0 ? rc : 0;
}

/* Unlinked files still open: their chunks count in the store's totals, so
 * they get rows too (named by inode). */
static int orphan_cb(void *arg, uint64_t ino)
{
	struct walk *w = arg;
	char *p;

	if (asprintf(&p, "(unlinked, ino %" PRIu64 ")", ino) < 0)
		return -ENOMEM;
	return walk_file(w, ino, p);
}

/* --- rounding ---------------------------------------------------------------- */

struct frac {
	uint32_t frac;
	size_t idx;
};

static int frac_cmp(const void *a, const void *b)
{
	const struct frac *x = a, *y = b;

	if (x->frac != y->frac)
		return x->frac < y->frac ? 1 : -1;
	return x->idx < y->idx ? -1 : x->idx > y->idx; /* stable: ties by position */
}

/* Round n fixed-point values vals[i * stride] to integers out[i * ostride]
 * that add up to the rounded sum of the values (largest-remainder method:
 * every value is floored, and the bytes the floors lost go to the values
 * with the largest fractions).  The sum goes to *total if not NULL.
 * Returns 0 or -ENOMEM. */
static int apportion(const u128 *vals, size_t stride, uint64_t *out, size_t ostride, size_t n,
                     uint64_t *total)
{
	struct frac *fr = NULL;
	u128 sum = 0;
	uint64_t floors = 0, target, extra;
	size_t i;

	for (i = 0; i < n; i++)
		sum += vals[i * stride];
	target = fx_round(sum);
	if (total)
		*total = target;
	if (n == 0)
		return 0;
	fr = malloc(n * sizeof(*fr));
	if (!fr)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		u128 v = vals[i * stride];

		out[i * ostride] = (uint64_t)(v >> FX_SHIFT);
		floors += out[i * ostride];
		fr[i].frac = (uint32_t)v;
		fr[i].idx = i;
	}
	/* 0 <= target - floors <= n: each floor loses less than one. */
	extra = target - floors;
	qsort(fr, n, sizeof(*fr), frac_cmp);
	for (i = 0; i < n && extra > 0; i++, extra--)
		out[fr[i].idx * ostride]++;
	free(fr);
	return 0;
}

/* Rows: the same, through the struct frow fields. */
static int apportion_rows(struct frow *rows, size_t n)
{
	u128 *v = NULL;
	uint64_t *o = NULL;
	size_t i;
	int rc = -ENOMEM;

	if (n == 0)
		return 0;
	v = malloc(n * sizeof(*v));
	o = malloc(n * sizeof(*o));
	if (!v || !o)
		goto out;
	for (i = 0; i < n; i++)
		v[i] = rows[i].stored_fx;
	rc = apportion(v, 1, o, 1, n, NULL);
	if (rc < 0)
		goto out;
	for (i = 0; i < n; i++) {
		rows[i].stored = o[i];
		v[i] = rows[i].raw_fx;
	}
	rc = apportion(v, 1, o, 1, n, NULL);
	if (rc < 0)
		goto out;
	for (i = 0; i < n; i++)
		rows[i].raw = o[i];
out:
	free(v);
	free(o);
	return rc;
}

static int row_cmp(const void *a, const void *b)
{
	const struct frow *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? 1 : -1;
	if (x->stored != y->stored)
		return x->stored < y->stored ? 1 : -1;
	return strcmp(x->path, y->path);
}

/* Subtree totals from the walk's sums. */
static int result_from_sums(const struct sums *s, struct result *r)
{
	int rc;

	r->st.files = s->files;
	r->st.logical_bytes = s->logical;
	r->st.mapped_bytes = s->mapped;
	r->st.chunks = s->chunks;
	r->st.ref_chunks = s->ref_chunks;
	r->st.ref_stored_bytes = fx_round(s->ref_stored_fx);
	r->st.ref_raw_bytes = fx_round(s->ref_raw_fx);
	r->st.ref_saved_bytes = fx_round(s->ref_saved_fx);
	r->st.ref_fwd_chunks = s->ref_fwd_chunks;
	r->st.stored_bytes = fx_round(s->stored_fx);
	r->st.unique_bytes = fx_round(s->raw_fx);
	r->st.pending_bytes = fx_round(s->pending_fx);
	/* The breakdowns are rounded so that they add up to the totals
	 * (they are the same shares, grouped differently). */
	rc = apportion(s->level_raw, 1, r->st.level_raw, 1, IDX_LEVEL_COUNT, NULL);
	if (rc >= 0)
		rc = apportion(s->level_stored, 1, r->st.level_stored, 1, IDX_LEVEL_COUNT, NULL);
	if (rc >= 0)
		rc = apportion(s->dtype_raw, 1, r->st.dtype_raw, 1, IDX_DTYPE_COUNT, NULL);
	if (rc >= 0)
		rc = apportion(s->dtype_stored, 1, r->st.dtype_stored, 1, IDX_DTYPE_COUNT, NULL);
	return rc;
}

static int pack_cb(void *arg, const struct idx_pack *p)
{
	struct result *r = arg;

	r->packs++;
	r->pack_live += p->live_bytes;
	r->pack_dead += p->dead_bytes;
	return 0;
}

/* Allocated bytes of the files in STORE/packs (orphans included). */
static void pack_disk_usage(const char *store, struct result *r)
{
	char *dir = path_join(store, "packs");
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;

	if (!d) {
		free(dir);
		return;
	}
	r->pack_disk = 0;
	while ((de = readdir(d)) != NULL) {
		struct stat sb;

		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode))
			r->pack_disk += (uint64_t)sb.st_blocks * 512;
	}
	closedir(d);
	free(dir);
	r->disk_known = true;
}

/* --- output --------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence of two to four bytes at p, or 0 (an
 * ASCII byte, or a byte that begins no valid sequence: a stray
 * continuation byte, 0xc0/0xc1/0xf5..0xff, a truncated sequence, an
 * overlong form, a surrogate, past U+10FFFF). */
static unsigned utf8_seq_len(const unsigned char *p)
{
	unsigned c = p[0], n = 0, i;

	if (c >= 0xc2 && c <= 0xdf)
		n = 1;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3;
	for (i = 1; i <= n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if (n == 0 || (c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0) ||
	    (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
		return 0;
	return n + 1;
}

/* JSON string: UTF-8 passes through; bytes that are not valid UTF-8 are
 * written as \udcXX (the lone-surrogate escape Python's "surrogateescape"
 * reads back as the original byte), control characters as \u00XX. */
static void json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	while (*p) {
		unsigned c = *p, n;

		if (c == '"' || c == '\\') {
			fprintf(f, "\\%c", c);
			p++;
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
			p++;
			continue;
		}
		if (c < 0x80) {
			fputc((int)c, f);
			p++;
			continue;
		}
		n = utf8_seq_len(p);
		if (n) {
			fwrite(p, 1, n, f);
			p += n;
			continue;
		}
		fprintf(f, "\\udc%02x", c);
		p++;
	}
	fputc('"', f);
}

static void json_ratio(FILE *f, uint64_t num, uint64_t den)
{
	if (den == 0)
		fputs("null", f);
	else
		fprintf(f, "%.4f", ratio_of(num, den));
}

static void json_pair(FILE *f, const char *name, uint64_t raw, uint64_t stored, bool last)
{
	fprintf(f, "    \"%s\": {\"unique_bytes\": %" PRIu64 ", \"stored_bytes\": %" PRIu64
	           ", \"ratio\": ", name, raw, stored);
	json_ratio(f, raw, stored);
	fprintf(f, "}%s\n", last ? "" : ",");
}

static void print_json(FILE *f, const struct loc *l, const struct result *r,
                       const struct frow *rows, size_t nrows, bool files)
{
	const struct idx_stats *s = &r->st;
	size_t i;
	unsigned k;

	fprintf(f, "{\n  \"schema\": %d,\n  \"store\": ", JSON_SCHEMA);
	json_str(f, l->store);
	fputs(",\n  \"mount\": ", f);
	json_str(f, l->mount);
	fputs(",\n  \"path\": ", f);
	json_str(f, l->fspath);
	fprintf(f, ",\n  \"scope\": \"%s\",\n", r->subtree ? "subtree" : "store");
	fprintf(f, "  \"default_level\": \"%s\",\n", codec_level_name(r->default_level));
	fprintf(f, "  \"file_count\": %" PRIu64 ",\n", s->files);
	fprintf(f, "  \"logical_bytes\": %" PRIu64 ",\n", s->logical_bytes);
	fprintf(f, "  \"mapped_bytes\": %" PRIu64 ",\n", s->mapped_bytes);
	fprintf(f, "  \"sparse_bytes\": %" PRIu64 ",\n", s->logical_bytes - s->mapped_bytes);
	fprintf(f, "  \"unique_bytes\": %" PRIu64 ",\n", s->unique_bytes);
	fprintf(f, "  \"stored_bytes\": %" PRIu64 ",\n", s->stored_bytes);
	fprintf(f, "  \"dedup_saved_bytes\": %" PRId64 ",\n",
	        (int64_t)(s->mapped_bytes - s->unique_bytes));
	fprintf(f, "  \"compression_saved_bytes\": %" PRId64 ",\n",
	        (int64_t)(s->unique_bytes - s->stored_bytes));
	fputs("  \"ratio\": ", f);
	json_ratio(f, s->logical_bytes, s->stored_bytes);
	fputs(",\n  \"dedup_ratio\": ", f);
	json_ratio(f, s->mapped_bytes, s->unique_bytes);
	fputs(",\n  \"compression_ratio\": ", f);
	json_ratio(f, s->unique_bytes, s->stored_bytes);
	fprintf(f, ",\n  \"chunks\": %" PRIu64 ",\n", s->chunks);
	fprintf(f, "  \"ref_chunks\": %" PRIu64 ",\n", s->ref_chunks);
	fprintf(f, "  \"ref_raw_bytes\": %" PRIu64 ",\n", s->ref_raw_bytes);
	fprintf(f, "  \"ref_stored_bytes\": %" PRIu64 ",\n", s->ref_stored_bytes);
	fprintf(f, "  \"ref_saved_bytes\": %" PRIu64 ",\n", s->ref_saved_bytes);
	fprintf(f, "  \"ref_fwd_chunks\": %" PRIu64 ",\n", s->ref_fwd_chunks);
	fprintf(f, "  \"pending_bytes\": %" PRIu64 ",\n", s->pending_bytes);
	fputs("  \"by_dtype\": {\n", f);
	for (k = 0; k < IDX_DTYPE_COUNT; k++)
		json_pair(f, codec_dtype_name((int)k), s->dtype_raw[k], s->dtype_stored[k],
		          k + 1 == IDX_DTYPE_COUNT);
	fputs("  },\n  \"by_level\": {\n", f);
	for (k = 0; k < IDX_LEVEL_COUNT; k++)
		json_pair(f, codec_level_name((int)k), s->level_raw[k], s->level_stored[k],
		          k + 1 == IDX_LEVEL_COUNT);
	fprintf(f, "  },\n  \"packs\": {\"count\": %" PRIu64 ", \"live_bytes\": %" PRIu64
	           ", \"dead_bytes\": %" PRIu64, r->packs, r->pack_live, r->pack_dead);
	if (r->disk_known)
		fprintf(f, ", \"disk_bytes\": %" PRIu64, r->pack_disk);
	fputc('}', f);
	if (files) {
		fputs(",\n  \"files\": [", f);
		for (i = 0; i < nrows; i++) {
			const struct frow *w = &rows[i];

			fputs(i ? ",\n    {\"path\": " : "\n    {\"path\": ", f);
			json_str(f, w->path);
			fprintf(f, ", \"ino\": %" PRIu64 ", \"links\": %" PRIu32
			           ", \"dtype\": \"%s\", \"logical_bytes\": %" PRIu64
			           ", \"unique_bytes\": %" PRIu64 ", \"stored_bytes\": %" PRIu64
			           ", \"ratio\": ", w->ino, w->nlink, codec_dtype_name(w->dtype),
			        w->size, w->raw, w->stored);
			json_ratio(f, w->size, w->stored);
			fputc('}', f);
		}
		fputs(nrows ? "\n  ]" : "]", f);
	}
	fputs("\n}\n", f);
}

struct human {
	FILE *f;
	bool unicode, bytes;
};

static const char *hsize(const struct human *h, char *buf, uint64_t n)
{
	if (h->bytes)
		snprintf(buf, PROGRESS_BYTES_LEN, "%" PRIu64, n);
	else
		progress_bytes_format(buf, n);
	return buf;
}

/* Signed amounts: a saving can be negative (frame headers on incompressible
 * chunks; bytes of partly referenced chunks). */
static const char *hsigned(const struct human *h, char *buf, uint64_t a, uint64_t b)
{
	char tmp[PROGRESS_BYTES_LEN];

	if (a >= b)
		return hsize(h, buf, a - b);
	snprintf(buf, HBUF, "-%s", hsize(h, tmp, b - a));
	return buf;
}

static void hratio(char *buf, size_t cap, uint64_t num, uint64_t den)
{
	if (den == 0)
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%.2fx", ratio_of(num, den));
}

/* A bar of part/whole of BAR_WIDTH cells: eighth blocks in unicode, '#' in
 * ASCII (rounded to whole cells). */
static void bar(const struct human *h, uint64_t part, uint64_t whole, int64_t sign)
{
	static const char *const eighth[8] = { "", "\u258f", "\u258e", "\u258d",
		                               "\u258c", "\u258b", "\u258a", "\u2589" };
	unsigned cells8 = 0, i, used;

	if (whole > 0 && sign > 0) {
		double v = (double)part / (double)whole;

		if (v > 1.0)
			v = 1.0;
		cells8 = (unsigned)(v * BAR_WIDTH * 8 + 0.5);
	}
	if (h->unicode) {
		for (i = 0; i < cells8 / 8; i++)
			fputs("\u2588", h->f);
		fputs(eighth[cells8 % 8], h->f);
		used = cells8 / 8 + (cells8 % 8 != 0);
	} else {
		used = (cells8 + 4) / 8;
		for (i = 0; i < used; i++)
			fputc('#', h->f);
	}
	for (i = used; i < BAR_WIDTH; i++)
		fputc(h->unicode ? ' ' : '.', h->f);
}

static void bar_row(const struct human *h, const char *label, uint64_t a, uint64_t b,
                    uint64_t whole)
{
	/* a - b, may be negative */
	int64_t sign = a > b ? 1 : (a == b ? 0 : -1);
	uint64_t v = a >= b ? a - b : b - a;
	char s[HBUF];

	double pct = (double)sign * 100.0 * ratio_of(v, whole);

	/* A few bytes lost to frame headers is not "-0.0%". */
	if (pct > -0.05 && pct < 0.05)
		pct = 0.0;
	fprintf(h->f, "  %-22s ", label);
	bar(h, v, whole, sign);
	fprintf(h->f, " %6.1f%%  %s\n", pct, hsigned(h, s, a, b));
}

/* Human text: printable ASCII and valid UTF-8 of printable characters
 * pass; every other byte is written as \xNN (and the backslash too, so
 * the name can be recovered): control characters (C0, DEL, and C1, which
 * in UTF-8 is 0xc2 0x80..0x9f), bytes of no valid UTF-8 sequence, so a
 * file name can neither move the cursor nor fake a row. */
static void print_name(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned n = utf8_seq_len(p);

		if (n && !(p[0] == 0xc2 && p[1] < 0xa0)) {
			fwrite(p, 1, n, f);
			p += n;
			continue;
		}
		n = n ? n : 1; /* a C1 control: all its bytes */
		for (; n > 0; n--, p++) {
			if (*p < 0x20 || *p >= 0x7f || *p == '\\')
				fprintf(f, "\\x%02x", *p);
			else
				fputc(*p, f);
		}
	}
}

static void print_breakdown(const struct human *h, const char *title, const uint64_t *raw,
                            const uint64_t *stored, unsigned n, const char *(*name)(int))
{
	char a[HBUF], b[HBUF], r[16];
	unsigned k;

	fprintf(h->f, "\n%-14s %14s %14s %8s\n", title, "after dedup", "stored", "ratio");
	for (k = 0; k < n; k++) {
		hratio(r, sizeof(r), raw[k], stored[k]);
		fprintf(h->f, "  %-12s %14s %14s %8s\n", name((int)k), hsize(h, a, raw[k]),
		        hsize(h, b, stored[k]), r);
	}
}

static void print_human(const struct human *h, const struct loc *l, const struct result *r,
                        const struct frow *rows, size_t nrows, bool files)
{
	const struct idx_stats *s = &r->st;
	FILE *f = h->f;
	char a[HBUF], b[HBUF], rr[16];
	size_t i;

	fputs("mixfs store ", f);
	print_name(f, l->store);
	if (l->mount) {
		fputs(" (mounted on ", f);
		print_name(f, l->mount);
		fputc(')', f);
	}
	fputc('\n', f);
	if (r->subtree) {
		fputs("subtree ", f);
		print_name(f, l->fspath);
		fputc('\n', f);
	}
	fprintf(f, "\n  %-22s %14" PRIu64 "\n", "files", s->files);
	fprintf(f, "  %-22s %14s", "logical", hsize(h, a, s->logical_bytes));
	if (s->logical_bytes > s->mapped_bytes)
		fprintf(f, "   (%s in holes)", hsize(h, b, s->logical_bytes - s->mapped_bytes));
	fputc('\n', f);
	fprintf(f, "  %-22s %14s   (%" PRIu64 " chunk%s)\n", "after dedup",
	        hsize(h, a, s->unique_bytes), s->chunks, s->chunks == 1 ? "" : "s");
	fprintf(f, "  %-22s %14s\n", "stored", hsize(h, a, s->stored_bytes));
	hratio(rr, sizeof(rr), s->mapped_bytes, s->unique_bytes);
	fprintf(f, "  %-22s %14s   (%s)\n", "saved by dedup",
	        hsigned(h, a, s->mapped_bytes, s->unique_bytes), rr);
	hratio(rr, sizeof(rr), s->unique_bytes, s->stored_bytes);
	fprintf(f, "  %-22s %14s   (%s)\n", "saved by compression",
	        hsigned(h, a, s->unique_bytes, s->stored_bytes), rr);
	hratio(rr, sizeof(rr), s->ref_raw_bytes, s->ref_stored_bytes);
	fprintf(f, "  %-22s %14s   (%" PRIu64 " chunk%s coded against a reference: %s after dedup, %s)\n",
	        "series-coded", hsize(h, a, s->ref_stored_bytes), s->ref_chunks,
	        s->ref_chunks == 1 ? "" : "s", hsize(h, b, s->ref_raw_bytes), rr);
	fprintf(f, "  %-22s %14s   (measured on %" PRIu64 " reverse delta%s", "saved by series coding",
	        hsize(h, a, s->ref_saved_bytes), s->ref_chunks - s->ref_fwd_chunks,
	        s->ref_chunks - s->ref_fwd_chunks == 1 ? "" : "s");
	if (s->ref_fwd_chunks)
		fprintf(f, "; %" PRIu64 " forward-coded chunk%s not yet turned by rebase", s->ref_fwd_chunks,
		        s->ref_fwd_chunks == 1 ? "" : "s");
	fputs(")\n", f);
	hratio(rr, sizeof(rr), s->logical_bytes, s->stored_bytes);
	fprintf(f, "  %-22s %14s   (logical / stored)\n", "overall ratio", rr);
	/* pending counts levels from fast up to below the store's: with a
	 * store made at raw or fast, nothing can be (idx.c stats_fix_pending) */
	if (r->default_level > CODEC_LEVEL_FAST)
		fprintf(f, "  %-22s %14s   (stored below level %s, to be recompressed)\n", "pending",
		        hsize(h, a, s->pending_bytes), codec_level_name(r->default_level));
	fprintf(f, "  %-22s %14s   (%" PRIu64 " pack%s; %s dead", "pack bytes",
	        hsize(h, a, r->pack_live + r->pack_dead), r->packs, r->packs == 1 ? "" : "s",
	        hsize(h, b, r->pack_dead));
	if (r->disk_known)
		fprintf(f, "; %s on disk", hsize(h, a, r->pack_disk));
	/* dead bytes gc punched out stay in the records until it compacts
	 * their pack: no hint when the files take about the live bytes */
	if (r->pack_dead && r->disk_known &&
	    r->pack_disk <= r->pack_live + r->pack_live / 64 + (1u << 20))
		fputs(": dead bytes freed in place)\n", f);
	else if (r->pack_dead)
		fputs(": mixfs gc frees dead bytes)\n", f);
	else
		fputs(")\n", f);

	if (s->logical_bytes > 0) {
		fprintf(f, "\nwhere the logical bytes went\n");
		/* series coding's measured saving is part of what compression
		 * saved: shown as its own row when there is one */
		uint64_t series = s->ref_saved_bytes;

		if (series > s->unique_bytes - s->stored_bytes || s->unique_bytes < s->stored_bytes)
			series = 0;
		bar_row(h, "stored", s->stored_bytes, 0, s->logical_bytes);
		if (series)
			bar_row(h, "saved by series coding", s->stored_bytes + series, s->stored_bytes,
			        s->logical_bytes);
		bar_row(h, series ? "compression (rest)" : "saved by compression",
		        s->unique_bytes, s->stored_bytes + series, s->logical_bytes);
		bar_row(h, "saved by dedup", s->mapped_bytes, s->unique_bytes, s->logical_bytes);
		if (s->logical_bytes > s->mapped_bytes)
			bar_row(h, "holes", s->logical_bytes, s->mapped_bytes, s->logical_bytes);
	}
	print_breakdown(h, "by dtype", s->dtype_raw, s->dtype_stored, IDX_DTYPE_COUNT,
	                codec_dtype_name);
	print_breakdown(h, "by level", s->level_raw, s->level_stored, IDX_LEVEL_COUNT,
	                codec_level_name);
	if (!files)
		return;
	fprintf(f, "\nfiles, largest first\n  %14s %14s %8s  %-5s  %s\n", "logical", "stored",
	        "ratio", "dtype", "path");
	for (i = 0; i < nrows; i++) {
		hratio(rr, sizeof(rr), rows[i].size, rows[i].stored);
		fprintf(f, "  %14s %14s %8s  %-5s  ", hsize(h, a, rows[i].size),
		        hsize(h, b, rows[i].stored), rr, codec_dtype_name(rows[i].dtype));
		print_name(f, rows[i].path);
		fputc('\n', f);
	}
}

/* Unicode blocks only on a terminal whose locale speaks UTF-8. */
static bool want_unicode(void)
{
	const char *cs;

	if (!isatty(STDOUT_FILENO))
		return false;
	setlocale(LC_CTYPE, "");
	cs = nl_langinfo(CODESET);
	return cs && (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "utf8") == 0);
}

static const char *stats_strerror(int rc)
{
	switch (rc) {
	case -ENOENT:
		return "no such file in the index (written files appear once closed or synced)";
	case -EIO:
		return "corrupt index (run mixfs fsck)";
	case -EPROTONOSUPPORT:
		return "store made by a newer mixfs";
	default:
		return mixfs_store_strerror(rc);
	}
}

/* --- the command ------------------------------------------------------------ */

static int run(const struct stats_opts *o, const char *path)
{
	struct loc l = { NULL, NULL, NULL };
	struct walk w;
	struct result r;
	struct idx *x = NULL;
	struct idx_stats st;
	struct idx_super sb;
	struct human h;
	char *ipath = NULL;
	uint64_t ino = IDX_ROOT_INO;
	size_t i;
	int rc, status = MIXFS_EXIT_ERROR;

	memset(&w, 0, sizeof(w));
	memset(&r, 0, sizeof(r));
	if (locate(path, &l) < 0)
		goto out;
	if (l.mount) {
		commit_mount(l.mount);
	} else {
		char *mnt = mixfs_mount_of_store(l.store);
		if (mnt)
			commit_mount(mnt);
		free(mnt);
	}
	ipath = path_join(l.store, "index");
	if (!ipath) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = idx_open(ipath, IDX_RDONLY, NULL, 0, &x);
	if (rc < 0)
		goto fail;
	rc = idx_txn_begin(x, true, &w.t);
	if (rc < 0)
		goto fail;
	rc = idx_super_get(w.t, &sb);
	if (rc >= 0)
		rc = idx_stats_get(w.t, &st);
	if (rc >= 0)
		rc = idx_pack_iter(w.t, pack_cb, &r);
	if (rc < 0)
		goto fail;
	pack_disk_usage(l.store, &r);
	rc = lookup_path(w.t, l.fspath, &ino);
	if (rc < 0) {
		fprintf(stderr, "mixfs stats: %s: %s\n", l.fspath, stats_strerror(rc));
		goto out;
	}
	r.default_level = sb.default_level;
	r.subtree = ino != IDX_ROOT_INO;
	w.default_level = sb.default_level;
	w.keep_rows = o->files;
	w.use_cache = r.subtree; /* the distinct chunks of a subtree need the set */
	w.cache.esz = sizeof(struct cshare);
	w.deps.esz = sizeof(struct cdeps);
	if (r.subtree || o->files) {
		/* which of a chunk's references are extents (raw bytes) */
		if (st.ref_chunks > 0) {
			rc = idx_chunk_iter(w.t, deps_cb, &w);
			if (rc < 0)
				goto fail;
		}
		w.prog = progress_create("mixfs stats", r.subtree ? 0 : st.logical_bytes, 0);
		rc = walk_tree(&w, ino, l.fspath);
		if (rc >= 0 && !r.subtree)
			rc = idx_orphan_iter(w.t, orphan_cb, &w);
		progress_free(w.prog);
		w.prog = NULL;
		if (rc < 0)
			goto fail;
	}
	if (r.subtree)
		rc = result_from_sums(&w.s, &r);
	else
		r.st = st;
	if (rc >= 0)
		rc = apportion_rows(w.rows, w.nrows);
	if (rc < 0)
		goto fail;
	if (w.nrows > 1) /* qsort(NULL, 0) is undefined */
		qsort(w.rows, w.nrows, sizeof(*w.rows), row_cmp);
	if (o->json) {
		print_json(stdout, &l, &r, w.rows, w.nrows, o->files);
	} else {
		h.f = stdout;
		h.unicode = !o->ascii && want_unicode();
		h.bytes = o->bytes;
		print_human(&h, &l, &r, w.rows, w.nrows, o->files);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "mixfs stats: writing output: %s\n", strerror(errno));
		goto out;
	}
	status = MIXFS_EXIT_OK;
	goto out;
fail:
	fprintf(stderr, "mixfs stats: store %s: %s\n", l.store ? l.store : path,
	        stats_strerror(rc));
out:
	idx_txn_abort(w.t);
	idx_close(x);
	for (i = 0; i < w.nrows; i++)
		free(w.rows[i].path);
	free(w.rows);
	free(w.links);
	free(w.cache.v);
	free(w.deps.v);
	free(ipath);
	loc_free(&l);
	return status;
}

int cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "files", no_argument, NULL, 'f' },
		{ "ascii", no_argument, NULL, 'a' },
		{ "bytes", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct stats_opts o = { false, false, false, false };
	int c;

	while ((c = getopt_long(argc, argv, "jfabh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 'f':
			o.files = true;
			break;
		case 'a':
			o.ascii = true;
			break;
		case 'b':
			o.bytes = true;
			break;
		case 'h':
			stats_usage(stdout);
			return MIXFS_EXIT_OK;
		default:
			stats_usage(stderr);
			return MIXFS_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		stats_usage(stderr);
		return MIXFS_EXIT_USAGE;
	}
	return run(&o, argv[optind]);
}
