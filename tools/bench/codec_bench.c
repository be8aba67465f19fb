/*
 * codec_bench.c - ratio and single-core speed of the mixfs chunk codec on
 * whole files, next to a ZipNN-style baseline on the very same chunks.
 *
 * Each file is cut into content-defined chunks (index/chunker.h, ~64 KiB
 * average; with a hint, never across the start or end of a tensor of at
 * least 64 KiB, as the filesystem's write path cuts) or, with -f,
 * fixed-size chunks.  Every chunk is encoded with
 * codec_frame_encode at each requested level, once with CODEC_DTYPE_AUTO
 * and once with the file's hint (when the command line gives a dtype: that
 * dtype, plus tensor positions and row lengths from NAME.idx next to the
 * file, as tools/bench/corpus.py writes it, or from the file's own
 * safetensors / torch.save layout via codec/hint.h), decoded again and
 * compared with the input.  The ZipNN-style
 * baseline splits each chunk into byte planes (bf16/fp16: 2, fp32: 4) and
 * compresses every plane with zstd level 3, storing a plane raw when zstd
 * does not shrink it.
 *
 * Output is one tab-separated line per corpus and coder (see usage()).
 * ratio = stored / raw bytes, where stored counts every frame header (or,
 * for the baseline, a 4-byte length per plane).  MB/s are 10^6 raw bytes
 * per second of this process's CPU time (CLOCK_PROCESS_CPUTIME_ID), so
 * they measure one core even on a shared machine; with -t the fastest of
 * several passes is kept.  Progress (tools/progress.h) goes to stderr, on
 * a terminal only.
 *
 * Exit status: 0 when every chunk round-tripped, 1 on a mismatch or codec
 * error (reported in the note column; the other rows are still printed),
 * 2 on usage or I/O errors.
 */
#include "codec/codec.h"
#include "codec/hint.h"
#include "tools/progress.h"
#include "index/chunker.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define ZIPNN_LEVEL 3
#define PLANE_HDR 4u /* per plane: 31-bit stored length + raw flag */

struct corpus {
	const char *path;
	char name[64];
	int hint;           /* enum codec_dtype, or CODEC_DTYPE_AUTO for none */
	uint8_t *data;
	size_t len;
	size_t *cut;        /* chunk i is data[cut[i] .. cut[i+1]) */
	size_t nchunks;
	size_t max_chunk;
	/* file-format hint for the hint rows (row lengths, tensor phases) */
	struct codec_hint fh;
	char fh_src[80]; /* where it came from, "" for none */
	int fh_idx;      /* fh.r is ours (from a .idx file), not the codec's */
};

/* One coder's result on one corpus. */
struct result {
	size_t stored;
	double enc_s, dec_s; /* best pass, CPU seconds */
	int failed;
	char note[160];
};

struct coder;
typedef int (*encode_fn)(const struct coder *c, const struct corpus *cp, size_t i,
                         uint8_t *dst, size_t cap, size_t *flen);
typedef int (*decode_fn)(const struct coder *c, const struct corpus *cp, size_t i,
                         const uint8_t *frame, size_t flen, uint8_t *dst);

struct coder {
	char name[32];
	int level;      /* codec level, or -1 for the baseline */
	int use_hint;
	bool bytes_cm;  /* mixcm: level mix with the context-mixing byte model */
	encode_fn enc;
	decode_fn dec;
	struct codec_ctx *ctx;
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
	uint8_t *plane; /* baseline scratch, max_chunk bytes */
	size_t plane_cap;
};

static const char *prog = "codec_bench";
static double min_time;   /* -t: repeat passes until this much CPU time */
static char chunking[40]; /* "CDC" or "fixed 64 KiB", starts every note */

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die(2, "out of memory (%zu bytes)", n);
	return p;
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "65536", "64K", "8M", "1G" -> bytes; 0 on a malformed value. */
static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (end == s || *end)
		return 0;
	return (size_t)v;
}

static int dtype_parse(const char *s)
{
	for (int d = 0; d < CODEC_DTYPE_COUNT; d++)
		if (!strcmp(s, codec_dtype_name(d)))
			return d;
	return -EINVAL;
}

static unsigned dtype_size(int dtype)
{
	switch (dtype) {
	case CODEC_DTYPE_BF16:
	case CODEC_DTYPE_FP16:
		return 2;
	case CODEC_DTYPE_FP32:
		return 4;
	default:
		return 1;
	}
}

/* Offset of the first whole element in a chunk at file offset off, for
 * files whose elements start at offset 0 (the raw corpora) or at aligned
 * offsets (torch.save zips align tensor data to 64 bytes). */
static uint32_t elem_phase(int dtype, size_t off)
{
	unsigned es = dtype_size(dtype);

	return (uint32_t)((es - off % es) % es);
}

/* ---- corpora ----------------------------------------------------------- */

static void corpus_load(struct corpus *cp, const char *arg, size_t limit)
{
	const char *colon = strrchr(arg, ':'), *base, *dot;
	size_t cap = 1 << 20, n;
	FILE *f;
	char *path;

	cp->hint = CODEC_DTYPE_AUTO;
	if (colon && dtype_parse(colon + 1) >= 0) {
		cp->hint = dtype_parse(colon + 1);
		path = strndup(arg, (size_t)(colon - arg));
	} else {
		path = strdup(arg);
	}
	if (!path)
		die(2, "out of memory");
	cp->path = path;
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	snprintf(cp->name, sizeof(cp->name), "%.*s",
	         (int)(dot && dot != base ? (size_t)(dot - base) : strlen(base)), base);

	f = fopen(path, "rb");
	if (!f)
		die(2, "%s: %s", path, strerror(errno));
	cp->data = xmalloc(cap);
	cp->len = 0;
	while (!limit || cp->len < limit) {
		size_t want = cap - cp->len;

		if (limit && want > limit - cp->len)
			want = limit - cp->len;
		n = fread(cp->data + cp->len, 1, want, f);
		cp->len += n;
		if (n < want)
			break;
		if (cp->len == cap) {
			cap *= 2;
			cp->data = realloc(cp->data, cap);
			if (!cp->data)
				die(2, "out of memory");
		}
	}
	if (ferror(f))
		die(2, "%s: read error", path);
	fclose(f);
}

/* Ranges from a corpus.py tensor table: "offset bytes row_elems" a line. */
static int read_idx(const char *path, int dtype, struct codec_hint *h)
{
	unsigned long long off, len;
	unsigned row;
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	memset(h, 0, sizeof(*h));
	while (fscanf(f, "%llu %llu %u", &off, &len, &row) == 3) {
		if (h->n == cap) {
			cap = cap ? 2 * cap : 1024;
			h->r = realloc(h->r, cap * sizeof(*h->r));
			if (!h->r)
				die(2, "out of memory");
		}
		h->r[h->n++] = (struct codec_hint_range){ .off = off, .len = len, .dtype = dtype,
		                                          .row_elems = row };
	}
	fclose(f);
	return 0;
}

/* The hint a file gives: NAME.idx next to it (written by corpus.py for the
 * raw corpora, which have no header), else what the codec's own parser
 * finds in the bytes (safetensors header, torch.save zip entries). */
static void corpus_hints(struct corpus *cp)
{
	char idx[4096];
	const char *dot = strrchr(cp->path, '.'), *slash = strrchr(cp->path, '/');
	size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - cp->path) : strlen(cp->path);

	snprintf(idx, sizeof(idx), "%.*s.idx", (int)stem, cp->path);
	if (cp->hint != CODEC_DTYPE_AUTO && read_idx(idx, cp->hint, &cp->fh) == 0) {
		cp->fh_idx = 1;
		snprintf(cp->fh_src, sizeof(cp->fh_src), "rows from %s.idx", cp->name);
		return;
	}
	if (codec_hint_parse(cp->data, cp->len, cp->len, &cp->fh) == 0 && cp->fh.n)
		snprintf(cp->fh_src, sizeof(cp->fh_src), "%zu tensors from the %s layout", cp->fh.n,
		         cp->fh.format == CODEC_HINT_SAFETENSORS ? "safetensors" : "torch.save zip");
}

static void corpus_free(struct corpus *cp)
{
	if (cp->fh_idx)
		free(cp->fh.r);
	else
		codec_hint_release(&cp->fh);
	free(cp->cut);
	free(cp->data);
	free((char *)cp->path);
}

static void corpus_chunk(struct corpus *cp, const struct cdc *cdc, size_t fixed)
{
	size_t cap = 64, off = 0;

	cp->cut = xmalloc(cap * sizeof(*cp->cut));
	cp->nchunks = 0;
	cp->max_chunk = 0;
	cp->cut[0] = 0;
	while (off < cp->len) {
		size_t rest = cp->len - off, lim = rest;
		uint64_t nb = fixed ? 0 : codec_hint_next_cut(&cp->fh, off, cdc->p.avg_size);

		if (nb && nb - off < lim)
			lim = (size_t)(nb - off);
		size_t n = fixed ? (rest < fixed ? rest : fixed) : cdc_cut(cdc, cp->data + off, lim);

		if (n == 0 || n > rest)
			die(2, "%s: chunker returned %zu at offset %zu", cp->path, n, off);
		if (cp->nchunks + 2 > cap) {
			cap *= 2;
			cp->cut = realloc(cp->cut, cap * sizeof(*cp->cut));
			if (!cp->cut)
				die(2, "out of memory");
		}
		off += n;
		cp->cut[++cp->nchunks] = off;
		if (n > cp->max_chunk)
			cp->max_chunk = n;
	}
}

static size_t chunk_len(const struct corpus *cp, size_t i)
{
	return cp->cut[i + 1] - cp->cut[i];
}

/* Room for one chunk's frame, whichever coder writes it (the baseline
 * needs at most its plane headers on top of the raw bytes). */
static size_t frame_bound(size_t len)
{
	size_t b = codec_frame_bound(len);

	return b > len + 4 * PLANE_HDR ? b : len + 4 * PLANE_HDR;
}

/* ---- mixfs codec -------------------------------------------------------- */

static void codec_params_for(const struct coder *c, const struct corpus *cp, size_t i,
                             struct codec_params *p)
{
	memset(p, 0, sizeof(*p));
	p->level = (enum codec_level)c->level;
	p->bytes_cm = c->bytes_cm;
	p->dtype = CODEC_DTYPE_AUTO;
	if (!c->use_hint)
		return;
	if (cp->fh.n && !cp->fh_idx) {
		/* the file's own layout (safetensors, torch.save zip): exactly
		 * what the write path passes, detection where it names no dtype */
		(void)codec_hint_chunk(&cp->fh, cp->cut[i], chunk_len(cp, i), p);
		return;
	}
	p->dtype = cp->hint;
	p->elem_phase = elem_phase(cp->hint, cp->cut[i]);
	if (cp->fh.n) {
		struct codec_params q = *p;

		if (codec_hint_chunk(&cp->fh, cp->cut[i], chunk_len(cp, i), &q) == 0) {
			/* the file's layout wins where it names a dtype (a
			 * torch.save zip whose data.pkl was read) */
			p->row_elems = q.row_elems;
			if (q.dtype != CODEC_DTYPE_AUTO) {
				p->dtype = q.dtype;
				p->elem_phase = q.elem_phase;
			}
		}
	}
}

static int mixfs_encode(const struct coder *c, const struct corpus *cp, size_t i,
                        uint8_t *dst, size_t cap, size_t *flen)
{
	struct codec_params p;
	ssize_t rc;

	codec_params_for(c, cp, i, &p);
	rc = codec_frame_encode(c->ctx, &p, cp->data + cp->cut[i], chunk_len(cp, i), dst, cap);
	if (rc < 0)
		return (int)rc;
	*flen = (size_t)rc;
	return 0;
}

static int mixfs_decode(const struct coder *c, const struct corpus *cp, size_t i,
                        const uint8_t *frame, size_t flen, uint8_t *dst)
{
	ssize_t rc = codec_frame_decode(c->ctx, frame, flen, dst, chunk_len(cp, i), NULL, 0);

	if (rc < 0)
		return (int)rc;
	return (size_t)rc == chunk_len(cp, i) ? 0 : -EBADMSG;
}

/* ---- ZipNN-style baseline: byte planes + zstd -3 per plane ------------- */

static int zipnn_encode(const struct coder *c, const struct corpus *cp, size_t i,
                        uint8_t *dst, size_t cap, size_t *flen)
{
	const uint8_t *src = cp->data + cp->cut[i];
	size_t len = chunk_len(cp, i), out = 0;
	unsigned es = dtype_size(cp->hint);
	uint32_t ph = elem_phase(cp->hint, cp->cut[i]);

	for (unsigned k = 0; k < es; k++) {
		/* plane k holds byte k of every element (and of the partial
		 * elements at both ends) */
		size_t first = (ph + k) % es, n = 0;
		uint8_t *hdr = dst + out;
		size_t z;

		for (size_t j = first; j < len; j += es)
			c->plane[n++] = src[j];
		if (out + PLANE_HDR + n > cap)
			return -ENOSPC;
		out += PLANE_HDR;
		z = ZSTD_compressCCtx(c->zc, dst + out, cap - out, c->plane, n, ZIPNN_LEVEL);
		if (!ZSTD_isError(z) && z < n) {
			hdr[3] = 0;
		} else {
			memcpy(dst + out, c->plane, n);
			z = n;
			hdr[3] = 0x80;
		}
		hdr[0] = (uint8_t)z;
		hdr[1] = (uint8_t)(z >> 8);
		hdr[2] = (uint8_t)(z >> 16);
		hdr[3] |= (uint8_t)((z >> 24) & 0x7f);
		out += z;
	}
	*flen = out;
	return 0;
}

static int zipnn_decode(const struct coder *c, const struct corpus *cp, size_t i,
                        const uint8_t *frame, size_t flen, uint8_t *dst)
{
	size_t len = chunk_len(cp, i), in = 0;
	unsigned es = dtype_size(cp->hint);
	uint32_t ph = elem_phase(cp->hint, cp->cut[i]);

	for (unsigned k = 0; k < es; k++) {
		size_t first = (ph + k) % es, n = first < len ? (len - first + es - 1) / es : 0;
		const uint8_t *p, *hdr = frame + in;
		size_t z;

		if (in + PLANE_HDR > flen)
			return -EBADMSG;
		z = hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)(hdr[3] & 0x7f) << 24;
		in += PLANE_HDR;
		if (z > flen - in)
			return -EBADMSG;
		if (hdr[3] & 0x80) {
			if (z != n)
				return -EBADMSG;
			p = frame + in;
		} else {
			size_t r = ZSTD_decompressDCtx(c->zd, c->plane, c->plane_cap, frame + in, z);

			if (ZSTD_isError(r) || r != n)
				return -EBADMSG;
			p = c->plane;
		}
		for (size_t j = first, m = 0; j < len; j += es)
			dst[j] = p[m++];
		in += z;
	}
	return in == flen ? 0 : -EBADMSG;
}

/* ---- measuring ----------------------------------------------------------- */

static void note_add(struct result *r, const char *fmt, ...)
{
	size_t n = strlen(r->note);
	va_list ap;

	if (n && n + 2 < sizeof(r->note)) {
		strcpy(r->note + n, "; ");
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(r->note + n, sizeof(r->note) - n, fmt, ap);
	va_end(ap);
}

/* Describe what the codec really did: levels and dtypes from the frame
 * headers (a level that is not implemented yet stores every chunk raw). */
static void mixfs_describe(const struct coder *c, const struct corpus *cp,
                           const uint8_t *frames, const size_t *foff, struct result *r)
{
	size_t at_level = 0, by_dtype[CODEC_DTYPE_COUNT] = { 0 };
	struct codec_frame_info fi;

	for (size_t i = 0; i < cp->nchunks; i++) {
		if (codec_frame_parse(frames + foff[i], foff[i + 1] - foff[i], &fi) < 0)
			continue;
		at_level += fi.level == c->level;
		if (fi.dtype < CODEC_DTYPE_COUNT)
			by_dtype[fi.dtype]++;
	}
	if (at_level < cp->nchunks)
		note_add(r, "%zu stored raw", cp->nchunks - at_level);
	if (!c->use_hint) {
		int best = 0;

		for (int d = 1; d < CODEC_DTYPE_COUNT; d++)
			if (by_dtype[d] > by_dtype[best])
				best = d;
		if (cp->nchunks)
			note_add(r, "detected %s in %.0f%% of chunks", codec_dtype_name(best),
			         100.0 * (double)by_dtype[best] / (double)cp->nchunks);
	}
}

static void run_coder(const struct coder *c, const struct corpus *cp, uint8_t *frames,
                      size_t *foff, uint8_t *out, struct result *r)
{
	struct progress *pg = NULL;
	char what[128];
	int rc = 0;

	memset(r, 0, sizeof(*r));
	r->enc_s = r->dec_s = -1;
	note_add(r, "%s chunks", chunking);

	for (double spent = 0; !spent || spent < min_time;) {
		double t0 = cpu_now(), t;

		snprintf(what, sizeof(what), "%.63s %.31s encode", cp->name, c->name);
		progress_free(pg);
		pg = progress_create(what, cp->len, 0);
		foff[0] = 0;
		for (size_t i = 0; i < cp->nchunks; i++) {
			size_t flen = 0, cap = frame_bound(chunk_len(cp, i));

			rc = c->enc(c, cp, i, frames + foff[i], cap, &flen);
			if (rc < 0) {
				note_add(r, "encode chunk %zu: %s", i, strerror(-rc));
				goto fail;
			}
			foff[i + 1] = foff[i] + flen;
			progress_set(pg, cp->cut[i + 1]);
		}
		t = cpu_now() - t0;
		spent += t > 0 ? t : 1e-9;
		if (r->enc_s < 0 || t < r->enc_s)
			r->enc_s = t;
	}
	r->stored = foff[cp->nchunks];
	if (c->level >= 0)
		mixfs_describe(c, cp, frames, foff, r);
	if (c->level >= 0 && c->use_hint && cp->fh_src[0])
		note_add(r, "%s", cp->fh_src);

	for (double spent = 0; !spent || spent < min_time;) {
		double t0 = cpu_now(), t;

		snprintf(what, sizeof(what), "%.63s %.31s decode", cp->name, c->name);
		progress_free(pg);
		pg = progress_create(what, cp->len, 0);
		memset(out, 0, cp->len);
		for (size_t i = 0; i < cp->nchunks; i++) {
			rc = c->dec(c, cp, i, frames + foff[i], foff[i + 1] - foff[i], out + cp->cut[i]);
			if (rc < 0) {
				note_add(r, "decode chunk %zu: %s (encoded ratio %.4f)", i, strerror(-rc),
				         (double)r->stored / (double)cp->len);
				goto fail;
			}
			progress_set(pg, cp->cut[i + 1]);
		}
		t = cpu_now() - t0;
		spent += t > 0 ? t : 1e-9;
		if (r->dec_s < 0 || t < r->dec_s)
			r->dec_s = t;
		if (memcmp(out, cp->data, cp->len)) {
			note_add(r, "MISMATCH after decode (encoded ratio %.4f)",
			         (double)r->stored / (double)cp->len);
			goto fail;
		}
	}
	progress_free(pg);
	return;
fail:
	progress_free(pg);
	r->failed = 1;
}

static void print_row(const struct corpus *cp, const struct coder *c, const struct result *r)
{
	const char *dt = "auto";

	if (c->level < 0 || c->use_hint)
		dt = cp->hint == CODEC_DTYPE_AUTO ? "-" : codec_dtype_name(cp->hint);

	printf("%s\t%s\t%s\t%zu\t%zu\t", cp->name, c->name, dt, cp->len, cp->nchunks);
	if (r->failed || !cp->len) {
		printf("-\t-\t-\t-\t%s\n", r->note);
		return;
	}
	printf("%zu\t%.4f\t%.1f\t%.1f\t%s\n", r->stored, (double)r->stored / (double)cp->len,
	       r->enc_s > 0 ? (double)cp->len / r->enc_s / 1e6 : 0.0,
	       r->dec_s > 0 ? (double)cp->len / r->dec_s / 1e6 : 0.0, r->note);
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s [-f SIZE | -c AVG] [-n BYTES] [-l LIST] [-t SEC] [-H] FILE[:DTYPE]...\n"
	        "  FILE[:DTYPE]  corpus file; DTYPE (bf16, fp16, fp32, other) is the hint,\n"
	        "                without it only dtype auto runs and the baseline is plain zstd\n"
	        "  -f SIZE   fixed-size chunks of SIZE bytes instead of content-defined ones\n"
	        "  -c AVG    content-defined chunks of AVG bytes on average (a power of two;\n"
	        "            AVG/2 to 2*AVG) instead of the store's default (64 KiB)\n"
	        "  -n BYTES  use only the first BYTES of each file (sub-sample)\n"
	        "  -l LIST   coders, comma-separated from raw,fast,mix,mixcm,zipnn (default\n"
	        "            fast,mix,zipnn; mixcm: mix with -o bytes=cm)\n"
	        "  -t SEC    repeat each pass until SEC seconds of CPU time, keep the fastest\n"
	        "  -H        print the column header first\n"
	        "Columns: corpus coder dtype raw_bytes chunks stored_bytes ratio enc_MB/s dec_MB/s note\n"
	        "(ratio = stored/raw; MB/s = 10^6 raw bytes per CPU second, one thread)\n",
	        prog);
}

static int add_coders(struct coder *cs, int max, const char *list, int have_hint)
{
	char *dup = strdup(list), *save = NULL;
	int n = 0;

	if (!dup)
		die(2, "out of memory");
	for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool cm = !strcmp(tok, "mixcm");
		int lvl = cm ? CODEC_LEVEL_MIX : codec_level_parse(tok);

		if (!strcmp(tok, "zipnn")) {
			if (n >= max)
				die(2, "too many coders");
			cs[n] = (struct coder){ .level = -1, .use_hint = 1, .enc = zipnn_encode,
			                        .dec = zipnn_decode };
			snprintf(cs[n].name, sizeof(cs[n].name), "zipnn-style");
			n++;
			continue;
		}
		if (lvl < 0)
			die(2, "unknown coder '%s' (raw, fast, mix, mixcm, zipnn)", tok);
		for (int h = 0; h <= have_hint; h++) {
			if (n >= max)
				die(2, "too many coders");
			cs[n] = (struct coder){ .level = lvl, .use_hint = h, .bytes_cm = cm,
			                        .enc = mixfs_encode, .dec = mixfs_decode };
			snprintf(cs[n].name, sizeof(cs[n].name), "mixfs %s", cm ? "mix bytes=cm" : codec_level_name(lvl));
			n++;
		}
	}
	free(dup);
	return n;
}

int main(int argc, char **argv)
{
	const char *levels = "fast,mix,zipnn";
	size_t fixed = 0, limit = 0, avg = 0;
	struct cdc cdc = { 0 };
	int opt, header = 0, status = 0;

	prog = argv[0] && strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : "codec_bench";
	while ((opt = getopt(argc, argv, "f:c:n:l:t:Hh")) != -1) {
		switch (opt) {
		case 'f':
			if (!(fixed = parse_size(optarg)) || fixed > CODEC_MAX_RAW)
				die(2, "bad chunk size '%s'", optarg);
			break;
		case 'c':
			if (!(avg = parse_size(optarg)) || avg > (4u << 20))
				die(2, "bad average chunk size '%s'", optarg);
			break;
		case 'n':
			if (!(limit = parse_size(optarg)))
				die(2, "bad byte count '%s'", optarg);
			break;
		case 'l':
			levels = optarg;
			break;
		case 't':
			min_time = atof(optarg);
			break;
		case 'H':
			header = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (!fixed) {
		struct cdc_params cp_params;

		cdc_params_default(&cp_params);
		if (avg)
			cp_params = (struct cdc_params){ (uint32_t)avg / 2, (uint32_t)avg, 2 * (uint32_t)avg };
		if (cdc_init(&cdc, &cp_params) < 0)
			die(2, "bad chunker parameters (-c: a power of two of 256 B or more)");
	}
	if (fixed)
		snprintf(chunking, sizeof(chunking), "fixed %zu KiB", fixed >> 10);
	else
		snprintf(chunking, sizeof(chunking), avg ? "CDC %zu KiB" : "CDC", avg >> 10);
	if (header)
		printf("corpus\tcoder\tdtype\traw_bytes\tchunks\tstored_bytes\tratio\tenc_MB/s\tdec_MB/s\tnote\n");

	for (int a = optind; a < argc; a++) {
		struct corpus cp = { 0 };
		struct coder cs[16];
		size_t fcap = 0;
		uint8_t *frames, *out;
		size_t *foff;
		int nc;

		corpus_load(&cp, argv[a], limit);
		if (cp.hint != CODEC_DTYPE_AUTO)
			corpus_hints(&cp);
		corpus_chunk(&cp, &cdc, fixed);
		for (size_t i = 0; i < cp.nchunks; i++)
			fcap += frame_bound(chunk_len(&cp, i));
		frames = xmalloc(fcap);
		foff = xmalloc((cp.nchunks + 1) * sizeof(*foff));
		out = xmalloc(cp.len);
		/* fault the buffers in now, not inside the first timed pass */
		memset(frames, 0, fcap);
		memset(out, 0, cp.len);
		nc = add_coders(cs, 16, levels, cp.hint != CODEC_DTYPE_AUTO);
		for (int k = 0; k < nc; k++) {
			struct coder *c = &cs[k];
			struct result r;

			if (c->level >= 0) {
				c->ctx = codec_ctx_create();
				if (!c->ctx)
					die(2, "codec_ctx_create failed");
			} else {
				c->zc = ZSTD_createCCtx();
				c->zd = ZSTD_createDCtx();
				c->plane_cap = cp.max_chunk;
				c->plane = xmalloc(c->plane_cap);
				if (!c->zc || !c->zd)
					die(2, "zstd context: out of memory");
				if (cp.hint == CODEC_DTYPE_AUTO)
					snprintf(c->name, sizeof(c->name), "zstd -3 per chunk");
			}
			run_coder(c, &cp, frames, foff, out, &r);
			status |= r.failed;
			print_row(&cp, c, &r);
			codec_ctx_free(c->ctx);
			ZSTD_freeCCtx(c->zc);
			ZSTD_freeDCtx(c->zd);
			free(c->plane);
		}
		free(out);
		free(foff);
		free(frames);
		corpus_free(&cp);
	}
	return status;
}
