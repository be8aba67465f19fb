/*
 * fsx.c - random-operation file system verifier for mixfs.
 *
 * In the spirit of the classic fsx (Avadis Tevanian / Apple, xfstests):
 * random writes, reads, truncates, hole punches, mmap reads and writes,
 * appends, copy_file_range, reopen and fsync on one or more files in DIR,
 * each checked against an in-memory model of the file's bytes.  Every read is compared
 * with the model; the whole file is compared periodically and at the end.
 *
 * The model is sparse (64 KiB pages allocated on first non-zero write), so
 * the -b mode can exercise offsets beyond 4 GiB without 4 GiB of RAM; in
 * that mode a full check reads every modelled page and samples the holes.
 *
 * Usage: fsx [options] DIR        (see usage() below)
 * Exit status: 0 all operations matched, 1 mismatch or unexpected error,
 * 2 usage error.  The seed is always printed first, so any run can be
 * reproduced with -S SEED and the same options.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif

#define KiB (1024ULL)
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

#define PAGE_SHIFT 16
#define PAGE_SZ (1ULL << PAGE_SHIFT) /* model page, not the VM page */
#define HISTORY 20

enum op_kind {
	OP_WRITE,     /* pwrite at a random offset (may leave a hole) */
	OP_OVERWRITE, /* pwrite inside the current size */
	OP_READ,      /* pread + compare */
	OP_TRUNCATE,  /* truncate(path) up or down */
	OP_FTRUNCATE, /* ftruncate(fd) up or down */
	OP_PUNCH,     /* fallocate PUNCH_HOLE|KEEP_SIZE */
	OP_FALLOC,    /* fallocate mode 0 (may extend) */
	OP_MAPREAD,   /* mmap PROT_READ + compare */
	OP_MAPWRITE,  /* mmap MAP_SHARED write + msync */
	OP_APPEND,    /* write through an O_APPEND descriptor */
	OP_REOPEN,    /* close and reopen both descriptors */
	OP_OTRUNC,    /* reopen with O_TRUNC */
	OP_FSYNC,     /* fsync or fdatasync */
	OP_CHECK,     /* full-file compare */
	OP_COPY,      /* copy_file_range from a range of this or another file */
	OP_NKINDS
};

static const char *const op_names[OP_NKINDS] = {
	"write", "overwrite", "read", "truncate", "ftruncate", "punch", "falloc",
	"mapread", "mapwrite", "append", "reopen", "o_trunc", "fsync", "check",
	"copyrange",
};

/* Relative frequencies; 0 disables. */
static unsigned op_weight[OP_NKINDS] = {
	[OP_WRITE] = 14, [OP_OVERWRITE] = 10, [OP_READ] = 20, [OP_TRUNCATE] = 4,
	[OP_FTRUNCATE] = 4, [OP_PUNCH] = 4, [OP_FALLOC] = 2, [OP_MAPREAD] = 8,
	[OP_MAPWRITE] = 8, [OP_APPEND] = 6, [OP_REOPEN] = 4, [OP_OTRUNC] = 1,
	[OP_FSYNC] = 3, [OP_CHECK] = 1, [OP_COPY] = 6,
};

enum { FILL_RANDOM, FILL_FLOAT, FILL_ZERO, FILL_COPY, FILL_OPNO, FILL_NKINDS };
static const char *const fill_names[FILL_NKINDS] = {"random", "float", "zero", "copy", "opno"};

struct hist {
	uint64_t opno;
	int kind;
	int file;
	uint64_t off, len;
	uint64_t size_before, size_after;
	int fill; /* data pattern of writes */
	int src;  /* copies: the source file and offset */
	uint64_t src_off;
};

struct model {
	uint8_t **pages; /* NULL = all zeros */
	uint64_t npages;
	uint64_t size;
};

struct tfile {
	char *path;
	int fd;  /* O_RDWR */
	int afd; /* O_WRONLY|O_APPEND */
	struct model m;
};

/* Options. */
static uint64_t opt_nops = 10000;
static uint64_t opt_seed = 1;
static bool opt_random_seed;
static uint64_t opt_maxlen = 16 * MiB;
static bool opt_maxlen_set;
static uint64_t opt_maxop = 1 * MiB;
static bool opt_big;
static bool opt_progress;
static uint64_t opt_check_every = 500;
static unsigned opt_nfiles = 1;
static bool opt_keep;
static int64_t opt_inject = -1;
static bool opt_no_mmap, opt_no_falloc, opt_no_copy;

static struct tfile *files;
static struct hist history[HISTORY];
static uint64_t nhist;
static uint64_t cur_op;
static uint64_t op_count[OP_NKINDS];
static uint64_t page_size_vm;
static uint64_t max_size_seen;
static char *argv_line;
static const char *argv_dir;

/* ---- PRNG (splitmix64 seeding xoshiro256**) ---- */
static uint64_t rs[4];

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rnd(void)
{
	uint64_t r = rotl(rs[1] * 5, 7) * 9, t = rs[1] << 17;
	rs[2] ^= rs[0];
	rs[3] ^= rs[1];
	rs[1] ^= rs[2];
	rs[0] ^= rs[3];
	rs[2] ^= t;
	rs[3] = rotl(rs[3], 45);
	return r;
}

/* Uniform in [0, n); n == 0 gives 0. */
static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void rnd_seed(uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		rs[i] = splitmix64(&x);
}

/* ---- reporting ---- */
static void print_history(void)
{
	uint64_t n = nhist < HISTORY ? nhist : HISTORY;
	fprintf(stderr, "fsx: last %" PRIu64 " operations (oldest first):\n", n);
	for (uint64_t i = nhist - n; i < nhist; i++) {
		const struct hist *h = &history[i % HISTORY];
		fprintf(stderr,
		        "  #%-7" PRIu64 " file %d %-9s off 0x%-10" PRIx64 " len 0x%-7" PRIx64
		        " size 0x%-8" PRIx64 " -> 0x%-8" PRIx64 " %s\n",
		        h->opno, h->file, op_names[h->kind], h->off, h->len, h->size_before,
		        h->size_after, h->fill >= 0 ? fill_names[h->fill] : "");
		if (h->kind == OP_COPY)
			fprintf(stderr, "            from file %d off 0x%" PRIx64 "\n", h->src, h->src_off);
	}
}

static void print_repro(void)
{
	fprintf(stderr, "fsx: seed %" PRIu64 "; reproduce with: %s-S %" PRIu64 " %s\n", opt_seed,
	        argv_line, opt_seed, argv_dir);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "fsx: FAILED at op #%" PRIu64 ": ", cur_op);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_history();
	print_repro();
	opt_keep = true;
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "fsx: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

/* ---- sparse model ---- */
static void model_init(struct model *m, uint64_t maxlen)
{
	m->npages = (maxlen + PAGE_SZ - 1) / PAGE_SZ + 1;
	m->pages = calloc(m->npages, sizeof(*m->pages));
	if (!m->pages) {
		fprintf(stderr, "fsx: out of memory for model\n");
		exit(1);
	}
	m->size = 0;
}

static void model_free(struct model *m)
{
	for (uint64_t i = 0; i < m->npages; i++)
		free(m->pages[i]);
	free(m->pages);
}

static void model_get(const struct model *m, uint64_t off, uint64_t len, uint8_t *out)
{
	while (len) {
		uint64_t pg = off >> PAGE_SHIFT, po = off & (PAGE_SZ - 1);
		uint64_t n = PAGE_SZ - po < len ? PAGE_SZ - po : len;
		if (pg < m->npages && m->pages[pg])
			memcpy(out, m->pages[pg] + po, n);
		else
			memset(out, 0, n);
		out += n;
		off += n;
		len -= n;
	}
}

static bool all_zero(const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* src NULL writes zeros. */
static void model_put(struct model *m, uint64_t off, uint64_t len, const uint8_t *src)
{
	while (len) {
		uint64_t pg = off >> PAGE_SHIFT, po = off & (PAGE_SZ - 1);
		uint64_t n = PAGE_SZ - po < len ? PAGE_SZ - po : len;
		if (pg >= m->npages)
			die("model: offset 0x%" PRIx64 " beyond max length", off);
		if (!m->pages[pg] && (src && !all_zero(src, n))) {
			m->pages[pg] = xmalloc(PAGE_SZ);
			memset(m->pages[pg], 0, PAGE_SZ);
		}
		if (m->pages[pg]) {
			if (src)
				memcpy(m->pages[pg] + po, src, n);
			else
				memset(m->pages[pg] + po, 0, n);
		}
		if (src)
			src += n;
		off += n;
		len -= n;
	}
}

/* Set the size; bytes beyond the new size read as zeros if it grows later. */
static void model_resize(struct model *m, uint64_t size)
{
	if (size < m->size)
		model_put(m, size, m->size - size, NULL);
	m->size = size;
}

/* ---- data patterns ---- */

/* Fill buf for a write of len bytes to file f; returns the pattern. */
static int fill_buf(struct tfile *f, uint8_t *buf, uint64_t len)
{
	uint64_t r = rnd_below(100);
	if (r < 40) {
		for (uint64_t i = 0; i < len; i += 8) {
			uint64_t v = rnd();
			memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
		}
		return FILL_RANDOM;
	}
	if (r < 65) {
		/* fp32-like: small values of one sign/exponent range, noisy mantissa. */
		float base = (float)(rnd_below(2000) - 1000) / 997.0f;
		for (uint64_t i = 0; i < len; i += 4) {
			float v = base + (float)(int64_t)(rnd_below(65536) - 32768) / 1048576.0f;
			memcpy(buf + i, &v, len - i < 4 ? len - i : 4);
		}
		return FILL_FLOAT;
	}
	if (r < 72) {
		memset(buf, 0, len);
		return FILL_ZERO;
	}
	if (r < 92 && f->m.size > 0) {
		/* Copy of bytes already in the file: exercises dedup of equal chunks. */
		uint64_t src = rnd_below(f->m.size);
		uint64_t done = 0;
		while (done < len) {
			uint64_t n = f->m.size - src < len - done ? f->m.size - src : len - done;
			model_get(&f->m, src, n, buf + done);
			done += n;
			src = 0;
		}
		return FILL_COPY;
	}
	for (uint64_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(cur_op + i / 251);
	return FILL_OPNO;
}

/* ---- syscall wrappers that die with context ---- */
static void xpwrite(int fd, const uint8_t *buf, uint64_t len, uint64_t off, const char *what)
{
	uint64_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("%s: pwrite(off 0x%" PRIx64 ", len 0x%" PRIx64 "): %s", what, off + done,
			    len - done, strerror(errno));
		}
		if (n == 0)
			die("%s: pwrite returned 0", what);
		done += (uint64_t)n;
	}
}

static uint64_t xpread(int fd, uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("pread(off 0x%" PRIx64 ", len 0x%" PRIx64 "): %s", off + done, len - done,
			    strerror(errno));
		}
		if (n == 0)
			break;
		done += (uint64_t)n;
	}
	return done;
}

static void hexdump(const char *label, const uint8_t *p, uint64_t base, uint64_t n)
{
	fprintf(stderr, "  %-8s @0x%010" PRIx64 ":", label, base);
	for (uint64_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fputc('\n', stderr);
}

/* Compare got (read from the file) with the model at off; die on mismatch. */
static void compare(struct tfile *f, uint64_t off, const uint8_t *got, uint64_t len, const char *how)
{
	static uint8_t *exp;
	static uint64_t explen;
	if (len == 0)
		return; /* nothing to compare (and memcmp must not see NULL) */
	if (len > explen) {
		free(exp);
		exp = xmalloc(len);
		explen = len;
	}
	model_get(&f->m, off, len, exp);
	if (memcmp(exp, got, len) == 0)
		return;
	uint64_t first = 0, ndiff = 0, last = 0;
	for (uint64_t i = 0; i < len; i++)
		if (exp[i] != got[i]) {
			if (!ndiff)
				first = i;
			last = i;
			ndiff++;
		}
	uint64_t s = first & ~15ULL, n = len - s < 32 ? len - s : 32;
	fprintf(stderr,
	        "fsx: MISMATCH in %s of %s: file offset 0x%" PRIx64 " (%" PRIu64 "), %" PRIu64
	        " bytes differ in 0x%" PRIx64 "..0x%" PRIx64 " (read 0x%" PRIx64 "+0x%" PRIx64
	        ", file size 0x%" PRIx64 ")\n",
	        how, f->path, off + first, off + first, ndiff, off + first, off + last + 1, off, len,
	        f->m.size);
	hexdump("expected", exp + s, off + s, n);
	hexdump("actual", got + s, off + s, n);
	die("data mismatch at offset 0x%" PRIx64, off + first);
}

static void check_size(struct tfile *f, const char *when)
{
	struct stat st;
	if (fstat(f->fd, &st) < 0)
		die("fstat %s: %s", f->path, strerror(errno));
	if ((uint64_t)st.st_size != f->m.size)
		die("size mismatch %s: %s has st_size 0x%" PRIx64 " (%" PRIu64 "), model 0x%" PRIx64
		    " (%" PRIu64 ")",
		    when, f->path, (uint64_t)st.st_size, (uint64_t)st.st_size, f->m.size, f->m.size);
}

/* ---- choosing offsets and lengths ---- */
static uint64_t pick_len(void)
{
	uint64_t r = rnd_below(100), cap;
	if (r < 35)
		cap = 4 * KiB;
	else if (r < 65)
		cap = 64 * KiB;
	else if (r < 88)
		cap = 256 * KiB;
	else
		cap = opt_maxop;
	if (cap > opt_maxop)
		cap = opt_maxop;
	return 1 + rnd_below(cap);
}

/* Offset within the whole allowed range, biased towards interesting places. */
static uint64_t pick_off(const struct tfile *f, uint64_t len)
{
	uint64_t limit = opt_maxlen > len ? opt_maxlen - len : 0, off;
	uint64_t r = rnd_below(100);
	if (opt_big && r < 35) {
		/* Around the 4 GiB boundary (32-bit offset wrap). */
		uint64_t lo = 4 * GiB - 8 * MiB;
		off = lo + rnd_below(16 * MiB);
	} else if (opt_big && r < 60) {
		off = rnd_below(16 * MiB);
	} else if (r < 80 && f->m.size) {
		/* Near EOF: just before, at, or a little beyond. */
		uint64_t base = f->m.size > 256 * KiB ? f->m.size - 256 * KiB : 0;
		off = base + rnd_below(512 * KiB);
	} else {
		off = rnd_below(limit + 1);
	}
	if (rnd_below(4) == 0)
		off &= ~4095ULL; /* sometimes page aligned; otherwise odd */
	return off > limit ? limit : off;
}

/* A range inside [0, size); len 0 if the file is empty. */
static void pick_inside(const struct tfile *f, uint64_t *off, uint64_t *len)
{
	if (!f->m.size) {
		*off = *len = 0;
		return;
	}
	uint64_t l = pick_len();
	uint64_t o;
	if (opt_big && f->m.size > 4 * GiB && rnd_below(2))
		o = 4 * GiB - 8 * MiB + rnd_below(16 * MiB);
	else if (opt_big && rnd_below(2))
		o = rnd_below(16 * MiB);
	else
		o = rnd_below(f->m.size);
	if (o >= f->m.size)
		o = rnd_below(f->m.size);
	if (l > f->m.size - o)
		l = f->m.size - o;
	*off = o;
	*len = l;
}

static uint64_t pick_size(const struct tfile *f)
{
	uint64_t r = rnd_below(100);
	if (r < 40 && f->m.size) /* shrink a bit */
		return f->m.size - rnd_below(f->m.size < 1 * MiB ? f->m.size : 1 * MiB);
	if (r < 70) { /* grow a bit */
		uint64_t s = f->m.size + rnd_below(1 * MiB);
		return s > opt_maxlen ? opt_maxlen : s;
	}
	if (opt_big && r < 85)
		return 4 * GiB - 8 * MiB + rnd_below(16 * MiB);
	return rnd_below(opt_maxlen + 1);
}

/* ---- file handling ---- */
static void open_file(struct tfile *f, int extra)
{
	f->fd = open(f->path, O_RDWR | O_CREAT | extra, 0644);
	if (f->fd < 0)
		die("open %s: %s", f->path, strerror(errno));
	f->afd = open(f->path, O_WRONLY | O_APPEND);
	if (f->afd < 0)
		die("open O_APPEND %s: %s", f->path, strerror(errno));
}

static void close_file(struct tfile *f)
{
	if (close(f->afd) < 0)
		die("close O_APPEND fd of %s: %s", f->path, strerror(errno));
	if (close(f->fd) < 0)
		die("close %s: %s", f->path, strerror(errno));
	f->fd = f->afd = -1;
}

/* Full compare: every byte up to the size (in -b mode: every modelled
 * page, pages next to them, and a sample of the holes). */
static void full_check(struct tfile *f, const char *why)
{
	static uint8_t *buf;
	const uint64_t step = 1 * MiB;
	if (!buf)
		buf = xmalloc(step);
	check_size(f, why);
	for (uint64_t off = 0; off < f->m.size; off += step) {
		uint64_t len = f->m.size - off < step ? f->m.size - off : step;
		if (opt_big) {
			bool any = false;
			for (uint64_t o = off; o < off + len && !any; o += PAGE_SZ) {
				uint64_t pg = o >> PAGE_SHIFT;
				any = f->m.pages[pg] || (pg && f->m.pages[pg - 1]) ||
				      (pg + 1 < f->m.npages && f->m.pages[pg + 1]);
			}
			if (!any && rnd_below(64) != 0)
				continue;
		}
		uint64_t got = xpread(f->fd, buf, len, off);
		if (got != len)
			die("full check (%s): short read of %s at 0x%" PRIx64 ": %" PRIu64
			    " of %" PRIu64 " bytes (model size 0x%" PRIx64 ")",
			    why, f->path, off, got, len, f->m.size);
		compare(f, off, buf, len, why);
	}
	/* Nothing past EOF. */
	uint8_t c;
	ssize_t n = pread(f->fd, &c, 1, (off_t)f->m.size);
	if (n != 0)
		die("full check (%s): read at EOF 0x%" PRIx64 " returned %zd, expected 0", why,
		    f->m.size, n);
}

/* ---- operations ---- */
static uint8_t *iobuf;

/* Record the range in the history; false for an empty range (skip the op). */
static bool note_range(struct hist *h, uint64_t off, uint64_t len)
{
	h->off = off;
	h->len = len;
	return len != 0;
}

static void do_write(struct tfile *f, struct hist *h, bool inside)
{
	uint64_t off, len;
	if (inside) {
		pick_inside(f, &off, &len);
		if (!len)
			inside = false;
	}
	if (!inside) {
		len = pick_len();
		if (len > opt_maxlen)
			len = opt_maxlen;
		off = pick_off(f, len);
	}
	h->fill = fill_buf(f, iobuf, len);
	h->off = off;
	h->len = len;
	xpwrite(f->fd, iobuf, len, off, "write");
	model_put(&f->m, off, len, iobuf);
	if (off + len > f->m.size)
		f->m.size = off + len;
}

static void do_read(struct tfile *f, struct hist *h)
{
	uint64_t off, len;
	if (rnd_below(8) == 0) {
		/* Across or beyond EOF: expect a short read. */
		len = pick_len();
		off = f->m.size > len / 2 ? f->m.size - len / 2 : 0;
	} else {
		pick_inside(f, &off, &len);
	}
	if (!note_range(h, off, len))
		return;
	uint64_t exp = off >= f->m.size ? 0 : (f->m.size - off < len ? f->m.size - off : len);
	uint64_t got = xpread(f->fd, iobuf, len, off);
	if (got != exp)
		die("read at 0x%" PRIx64 " len 0x%" PRIx64 ": got %" PRIu64 " bytes, expected %" PRIu64
		    " (size 0x%" PRIx64 ")",
		    off, len, got, exp, f->m.size);
	compare(f, off, iobuf, got, "read");
}

static void do_truncate(struct tfile *f, struct hist *h, bool by_fd)
{
	uint64_t size = pick_size(f);
	h->off = size;
	if (by_fd ? ftruncate(f->fd, (off_t)size) : truncate(f->path, (off_t)size))
		die("%s to 0x%" PRIx64 ": %s", by_fd ? "ftruncate" : "truncate", size,
		    strerror(errno));
	model_resize(&f->m, size);
}

static void do_punch(struct tfile *f, struct hist *h)
{
	uint64_t off, len;
	pick_inside(f, &off, &len);
	if (rnd_below(4) == 0 && len) {
		/* Sometimes a big aligned punch (whole chunks) */
		off &= ~(64 * KiB - 1);
		len = f->m.size - off < 2 * MiB ? f->m.size - off : 2 * MiB;
	}
	if (!note_range(h, off, len))
		return;
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len)) {
		if (errno == EOPNOTSUPP) {
			fprintf(stderr, "fsx: punch hole not supported here; disabling it\n");
			op_weight[OP_PUNCH] = 0;
			return;
		}
		die("fallocate punch 0x%" PRIx64 "+0x%" PRIx64 ": %s", off, len, strerror(errno));
	}
	model_put(&f->m, off, len, NULL);
}

static void do_falloc(struct tfile *f, struct hist *h)
{
	uint64_t len = pick_len(), off = pick_off(f, len);
	h->off = off;
	h->len = len;
	if (fallocate(f->fd, 0, (off_t)off, (off_t)len)) {
		if (errno == EOPNOTSUPP) {
			fprintf(stderr, "fsx: fallocate mode 0 not supported here; disabling it\n");
			op_weight[OP_FALLOC] = 0;
			return;
		}
		die("fallocate 0x%" PRIx64 "+0x%" PRIx64 ": %s", off, len, strerror(errno));
	}
	if (off + len > f->m.size)
		f->m.size = off + len;
}

/* copy_file_range from a range inside a random file (this one too, not
 * overlapping) to a random offset of f (may extend it or leave a hole);
 * short counts are continued, 0 before the end is a failure. */
static void do_copy(struct tfile *f, struct hist *h)
{
	int si = (int)rnd_below(opt_nfiles);
	struct tfile *s = &files[si];
	uint64_t soff, len, off, done = 0;
	pick_inside(s, &soff, &len);
	off = pick_off(f, len);
	if (s == f && soff < off + len && off < soff + len)
		return; /* overlapping ranges of one file: EINVAL by definition */
	h->src = si;
	h->src_off = soff;
	if (!note_range(h, off, len))
		return;
	model_get(&s->m, soff, len, iobuf);
	while (done < len) {
		loff_t a = (loff_t)(soff + done), b = (loff_t)(off + done);
		ssize_t k = copy_file_range(s->fd, &a, f->fd, &b, len - done, 0);
		if (k < 0 && (errno == EOPNOTSUPP || errno == ENOSYS || errno == EXDEV) && done == 0) {
			fprintf(stderr, "fsx: copy_file_range not supported here (%s); disabling it\n",
			        strerror(errno));
			op_weight[OP_COPY] = 0;
			return;
		}
		if (k <= 0)
			die("copy_file_range 0x%" PRIx64 "+0x%" PRIx64 " of file %d to 0x%" PRIx64
			    ": %s after 0x%" PRIx64 " bytes",
			    soff, len, si, off, k < 0 ? strerror(errno) : "returned 0", done);
		done += (uint64_t)k;
	}
	model_put(&f->m, off, len, iobuf);
	if (off + len > f->m.size)
		f->m.size = off + len;
}

static void do_mapread(struct tfile *f, struct hist *h)
{
	uint64_t off, len;
	pick_inside(f, &off, &len);
	if (!note_range(h, off, len))
		return;
	uint64_t pg = off & ~(page_size_vm - 1), delta = off - pg;
	uint8_t *p = mmap(NULL, len + delta, PROT_READ, MAP_SHARED, f->fd, (off_t)pg);
	if (p == MAP_FAILED)
		die("mmap read 0x%" PRIx64 "+0x%" PRIx64 ": %s", off, len, strerror(errno));
	compare(f, off, p + delta, len, "mmap read");
	if (munmap(p, len + delta))
		die("munmap: %s", strerror(errno));
}

static void do_mapwrite(struct tfile *f, struct hist *h)
{
	uint64_t len = pick_len(), off;
	if (rnd_below(3) == 0 || !f->m.size) {
		/* Extend with ftruncate first, like fsx's mapwrite. */
		off = pick_off(f, len);
		if (off + len > f->m.size) {
			if (ftruncate(f->fd, (off_t)(off + len)))
				die("mapwrite ftruncate to 0x%" PRIx64 ": %s", off + len, strerror(errno));
			model_resize(&f->m, off + len);
		}
	} else {
		pick_inside(f, &off, &len);
	}
	if (!note_range(h, off, len))
		return;
	h->fill = fill_buf(f, iobuf, len);
	uint64_t pg = off & ~(page_size_vm - 1), delta = off - pg;
	uint8_t *p = mmap(NULL, len + delta, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, (off_t)pg);
	if (p == MAP_FAILED)
		die("mmap write 0x%" PRIx64 "+0x%" PRIx64 ": %s", off, len, strerror(errno));
	memcpy(p + delta, iobuf, len);
	if (msync(p, len + delta, MS_SYNC))
		die("msync 0x%" PRIx64 "+0x%" PRIx64 ": %s", off, len, strerror(errno));
	if (munmap(p, len + delta))
		die("munmap: %s", strerror(errno));
	model_put(&f->m, off, len, iobuf);
}

static void do_append(struct tfile *f, struct hist *h)
{
	uint64_t len = pick_len();
	if (f->m.size + len > opt_maxlen) {
		h->len = 0;
		return;
	}
	h->off = f->m.size;
	h->len = len;
	h->fill = fill_buf(f, iobuf, len);
	uint64_t done = 0;
	while (done < len) {
		ssize_t n = write(f->afd, iobuf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("append write of 0x%" PRIx64 " at size 0x%" PRIx64 ": %s", len - done,
			    f->m.size + done, n < 0 ? strerror(errno) : "returned 0");
		done += (uint64_t)n;
	}
	model_put(&f->m, f->m.size, len, iobuf);
	f->m.size += len;
}

static void do_fsync(struct tfile *f, struct hist *h)
{
	bool data = rnd_below(2);
	h->off = data;
	if (data ? fdatasync(f->fd) : fsync(f->fd))
		die("%s %s: %s", data ? "fdatasync" : "fsync", f->path, strerror(errno));
}

static int pick_op(void)
{
	unsigned total = 0;
	for (int i = 0; i < OP_NKINDS; i++)
		total += op_weight[i];
	unsigned r = (unsigned)rnd_below(total);
	for (int i = 0; i < OP_NKINDS; i++) {
		if (r < op_weight[i])
			return i;
		r -= op_weight[i];
	}
	return OP_READ;
}

static void inject_fault(struct tfile *f)
{
	if (!f->m.size) {
		fprintf(stderr, "fsx: -X: file empty at op %" PRIu64 ", writing one byte first\n",
		        cur_op);
		uint8_t b = 0x5a;
		xpwrite(f->fd, &b, 1, 0, "inject");
		model_put(&f->m, 0, 1, &b);
		f->m.size = 1;
	}
	uint64_t off = rnd_below(f->m.size);
	uint8_t b;
	model_get(&f->m, off, 1, &b);
	b ^= 0x40;
	model_put(&f->m, off, 1, &b);
	fprintf(stderr, "fsx: -X: corrupted the model at %s offset 0x%" PRIx64 " (op %" PRIu64
	        "); a correct run must now fail\n",
	        f->path, off, cur_op);
}

static void run(void)
{
	uint64_t report = opt_nops / 10 ? opt_nops / 10 : 1;
	for (cur_op = 1; cur_op <= opt_nops; cur_op++) {
		int fi = (int)rnd_below(opt_nfiles);
		struct tfile *f = &files[fi];
		int kind = pick_op();
		struct hist *h = &history[nhist % HISTORY];
		memset(h, 0, sizeof(*h));
		h->opno = cur_op;
		h->kind = kind;
		h->file = fi;
		h->fill = -1;
		h->size_before = f->m.size;
		nhist++;
		switch (kind) {
		case OP_WRITE: do_write(f, h, false); break;
		case OP_OVERWRITE: do_write(f, h, true); break;
		case OP_READ: do_read(f, h); break;
		case OP_TRUNCATE: do_truncate(f, h, false); break;
		case OP_FTRUNCATE: do_truncate(f, h, true); break;
		case OP_PUNCH: do_punch(f, h); break;
		case OP_FALLOC: do_falloc(f, h); break;
		case OP_MAPREAD: do_mapread(f, h); break;
		case OP_MAPWRITE: do_mapwrite(f, h); break;
		case OP_APPEND: do_append(f, h); break;
		case OP_REOPEN:
			close_file(f);
			open_file(f, 0);
			break;
		case OP_OTRUNC:
			close_file(f);
			open_file(f, O_TRUNC);
			model_resize(&f->m, 0);
			break;
		case OP_FSYNC: do_fsync(f, h); break;
		case OP_CHECK: full_check(f, "random full check"); break;
		case OP_COPY: do_copy(f, h); break;
		}
		h->size_after = f->m.size;
		if (f->m.size > max_size_seen)
			max_size_seen = f->m.size;
		op_count[kind]++;
		if (opt_inject >= 0 && cur_op == (uint64_t)opt_inject) {
			inject_fault(f);
			full_check(f, "full check after -X");
		}
		check_size(f, "after the operation");
		if (opt_check_every && cur_op % opt_check_every == 0)
			full_check(f, "periodic full check");
		if (opt_progress && cur_op % report == 0)
			fprintf(stderr, "fsx: %" PRIu64 "/%" PRIu64 " ops, file %d size 0x%" PRIx64 "\n",
			        cur_op, opt_nops, fi, f->m.size);
	}
	cur_op = opt_nops;
	for (unsigned i = 0; i < opt_nfiles; i++) {
		close_file(&files[i]);
		open_file(&files[i], 0);
		full_check(&files[i], "final full check after reopen");
	}
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: fsx [options] DIR\n"
	        "Random operations on files in DIR, checked against an in-memory model.\n"
	        "  -N ops     number of operations (default 10000)\n"
	        "  -S seed    PRNG seed (default 1)\n"
	        "  -r         pick a random seed (printed first, for -S)\n"
	        "  -l bytes   maximum file length (default 16M; suffixes K M G)\n"
	        "  -o bytes   maximum size of one write/read (default 1M)\n"
	        "  -b         big mode: offsets around and beyond 4 GiB, sparse\n"
	        "             (max length 4G+64M unless -l)\n"
	        "  -n files   number of files operated on in turn (default 1)\n"
	        "  -c ops     full-file compare every ops operations (default 500, 0 off)\n"
	        "  -M         no mmap operations\n"
	        "  -F         no fallocate operations (punch hole, extend)\n"
	        "  -C         no copy_file_range operations\n"
	        "  -p         print progress\n"
	        "  -k         keep the files (always kept on failure)\n"
	        "  -X op      debug: corrupt one byte of the model after operation op,\n"
	        "             to show that a mismatch is caught (the run must fail)\n"
	        "Exit status: 0 pass, 1 mismatch or error, 2 usage.\n");
}

static uint64_t parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s) {
		fprintf(stderr, "fsx: bad number '%s'\n", s);
		usage(stderr);
		exit(2);
	}
	switch (*end) {
	case 'k': case 'K': v *= KiB; end++; break;
	case 'm': case 'M': v *= MiB; end++; break;
	case 'g': case 'G': v *= GiB; end++; break;
	default: break;
	}
	if (*end) {
		fprintf(stderr, "fsx: bad number '%s'\n", s);
		usage(stderr);
		exit(2);
	}
	return v;
}

static void cleanup(void)
{
	if (!files)
		return;
	for (unsigned i = 0; i < opt_nfiles; i++) {
		if (!opt_keep && files[i].path)
			unlink(files[i].path);
		else if (files[i].path)
			fprintf(stderr, "fsx: kept %s\n", files[i].path);
	}
}

int main(int argc, char **argv)
{
	int c;
	while ((c = getopt(argc, argv, "N:S:rl:o:bn:c:MFCpkX:h")) != -1) {
		switch (c) {
		case 'N': opt_nops = parse_size(optarg); break;
		case 'S': opt_seed = parse_size(optarg); break;
		case 'r': opt_random_seed = true; break;
		case 'l': opt_maxlen = parse_size(optarg); opt_maxlen_set = true; break;
		case 'o': opt_maxop = parse_size(optarg); break;
		case 'b': opt_big = true; break;
		case 'n': opt_nfiles = (unsigned)parse_size(optarg); break;
		case 'c': opt_check_every = parse_size(optarg); break;
		case 'M': opt_no_mmap = true; break;
		case 'F': opt_no_falloc = true; break;
		case 'C': opt_no_copy = true; break;
		case 'p': opt_progress = true; break;
		case 'k': opt_keep = true; break;
		case 'X': opt_inject = (int64_t)parse_size(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	const char *dir = argv[optind];
	if (opt_big && !opt_maxlen_set)
		opt_maxlen = 4 * GiB + 64 * MiB;
	if (opt_big && opt_maxlen < 4 * GiB + 16 * MiB) {
		fprintf(stderr, "fsx: -b needs -l of at least 4G+16M\n");
		return 2;
	}
	if (!opt_nfiles || opt_nfiles > 64 || !opt_maxop || opt_maxop > 64 * MiB || !opt_maxlen) {
		fprintf(stderr, "fsx: -n must be 1..64, -o 1..64M, -l > 0\n");
		return 2;
	}
	if (opt_maxop > opt_maxlen)
		opt_maxop = opt_maxlen;
	if (opt_no_mmap)
		op_weight[OP_MAPREAD] = op_weight[OP_MAPWRITE] = 0;
	if (opt_no_falloc)
		op_weight[OP_PUNCH] = op_weight[OP_FALLOC] = 0;
	if (opt_no_copy)
		op_weight[OP_COPY] = 0;
	if (opt_random_seed) {
		if (getrandom(&opt_seed, sizeof(opt_seed), 0) != sizeof(opt_seed))
			opt_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
		opt_seed &= (1ULL << 48) - 1; /* short enough to type */
	}

	/* The command line without -r/-S, for the reproduction hint. */
	size_t cap = 64;
	for (int i = 0; i < argc; i++)
		cap += strlen(argv[i]) + 1;
	argv_line = xmalloc(cap);
	argv_line[0] = 0;
	for (int i = 0; i < argc - 1; i++) {
		if (!strcmp(argv[i], "-r") || !strcmp(argv[i], "-S")) {
			i += argv[i][1] == 'S';
			continue;
		}
		if (!strncmp(argv[i], "-S", 2))
			continue;
		strcat(argv_line, argv[i]);
		strcat(argv_line, " ");
	}
	argv_dir = dir;

	printf("fsx: seed %" PRIu64 " (%s), %" PRIu64 " ops, max length %" PRIu64
	       ", max op %" PRIu64 ", %u file(s) in %s%s\n",
	       opt_seed, opt_random_seed ? "random" : "fixed", opt_nops, opt_maxlen, opt_maxop,
	       opt_nfiles, dir, opt_big ? ", big mode (offsets > 4 GiB)" : "");
	fflush(stdout);
	rnd_seed(opt_seed);
	page_size_vm = (uint64_t)sysconf(_SC_PAGESIZE);
	iobuf = xmalloc(opt_maxop + 8);

	files = calloc(opt_nfiles, sizeof(*files));
	if (!files)
		return 1;
	for (unsigned i = 0; i < opt_nfiles; i++) {
		struct tfile *f = &files[i];
		size_t n = strlen(dir) + 48;
		f->path = xmalloc(n);
		snprintf(f->path, n, "%s/fsx.%u.%ld.dat", dir, i, (long)getpid());
		model_init(&f->m, opt_maxlen);
		open_file(f, O_TRUNC);
	}
	atexit(cleanup);
	run();
	printf("fsx: PASS seed %" PRIu64 ", %" PRIu64 " ops:", opt_seed, opt_nops);
	for (int i = 0; i < OP_NKINDS; i++)
		if (op_count[i])
			printf(" %s %" PRIu64, op_names[i], op_count[i]);
	printf("; largest size 0x%" PRIx64 "\n", max_size_seen);
	for (unsigned i = 0; i < opt_nfiles; i++) {
		close_file(&files[i]);
		model_free(&files[i].m);
	}
	return 0;
}
