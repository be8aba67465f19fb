/*
 * fast.c - level FAST: split float fields into byte streams, code each
 * stream with a per-chunk canonical Huffman code (4 interleaved lanes so
 * the decoder has independent dependency chains).  Payload layout in
 * codec/FORMAT.md ("FAST payload").
 *
 * Streams per dtype (element bytes little-endian, b0 lowest):
 *   bf16: exponent (8 bits), sign|mantissa(7)
 *   fp16: high byte (sign, exponent, 2 mantissa bits), low byte
 *   fp32: exponent, sign|mantissa(7 high), b1, b0
 *   other: the bytes
 * A stream with one distinct byte costs 2 bytes (zero low planes of
 * bf16-origin fp32), a stream Huffman cannot shrink is stored raw, and a
 * stream dominated by one value (zeros of sparse or pruned tensors, where
 * Huffman's one bit a symbol is far above the entropy) is split into a
 * bitmap, literals and residuals, each coded as a stream again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_i.h"

#define HUF_MAXBITS 11u
#define HUF_TSIZE (1u << HUF_MAXBITS)
#define HUF_LANES 4u
#define FAST_STREAMS_MAX 4u
#define FAST_SLACK 64u

/* Hot loops are written once as always-inline bodies and instantiated
 * per CPU target below (fast_impl); the context picks one at creation. */
#define FAST_BODY static inline __attribute__((always_inline))
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FAST_HAVE_AVX2 1
#else
#define FAST_HAVE_AVX2 0
#endif

enum fast_mode {
	FAST_STREAM_RAW = 0,
	FAST_STREAM_CONST = 1,
	FAST_STREAM_HUF = 2,
	FAST_STREAM_SPARSE = 3
};

/* Sparse streams nest: the bitmap, literal and residual streams of a
 * sparse stream are streams one level deeper; at this depth a stream must
 * not be sparse.  Bounds the decoder's recursion and scratch. */
#define FAST_SPARSE_DEPTH 3u
/* A stream is tried sparse when the dominant class holds at least this
 * share (in 1/256, 80%) of its symbols: below it the trial costs more
 * encode time than it saves bytes (most of the gain on the fp16 corpus is
 * above 80%). */
#define FAST_SPARSE_MIN 205u
/* ... and kept when it saves at least 1/FAST_SPARSE_GAIN of the size. */
#define FAST_SPARSE_GAIN 8u

struct bitr;

struct fast_impl {
	const char *name;
	void (*split)(int dtype, const uint8_t *e, size_t m, uint8_t *const s[]);
	void (*merge)(int dtype, const uint8_t *const s[], size_t m, uint8_t *e);
	void (*lane_encode)(const uint8_t *s, size_t n, const uint32_t *enc, uint8_t *out,
	                    uint8_t *end);
	void (*lanes_decode)(const uint16_t *dt, struct bitr *r, uint8_t *out, const size_t *start,
	                     const size_t *cnt);
};

static const struct fast_impl *fast_impl_pick(void);

struct fast_state {
	const struct fast_impl *impl;
	uint8_t *buf; /* split streams on encode, decoded streams on decode */
	size_t cap;
	uint8_t *tmp; /* sparse streams' parts, FAST_SPARSE_DEPTH levels */
	size_t tmp_cap;
	size_t tmp_n; /* tmp holds the levels of streams of up to tmp_n symbols */
	uint16_t dtab[HUF_TSIZE]; /* symbol | length << 8 */
};

void fast_state_free(struct fast_state *s)
{
	if (!s)
		return;
	free(s->buf);
	free(s->tmp);
	free(s);
}

static int fast_state_get(struct codec_ctx *ctx, size_t need, struct fast_state **out)
{
	struct fast_state *s = ctx->fast;
	uint8_t *nb;

	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->impl = fast_impl_pick();
		ctx->fast = s;
	}
	if (s->cap < need + FAST_SLACK) {
		nb = realloc(s->buf, need + FAST_SLACK);
		if (!nb)
			return -ENOMEM;
		s->buf = nb;
		s->cap = need + FAST_SLACK;
	}
	*out = s;
	return 0;
}

/* Scratch one sparse level of n symbols needs: bitmap, literals and
 * residuals. */
static size_t fast_sparse_scratch(size_t n)
{
	return n + n / 8 + 4;
}

/* Room for the sparse parts of streams of n symbols at every depth. */
static int fast_tmp_get(struct fast_state *s, size_t n)
{
	size_t need = FAST_SPARSE_DEPTH * fast_sparse_scratch(n) + FAST_SLACK;
	uint8_t *nb;

	if (s->tmp_cap < need) {
		nb = realloc(s->tmp, need);
		if (!nb)
			return -ENOMEM;
		s->tmp = nb;
		s->tmp_cap = need;
	}
	s->tmp_n = n;
	return 0;
}

static uint32_t fast_esize(int dtype)
{
	return dtype == CODEC_DTYPE_FP32 ? 4 : (dtype == CODEC_DTYPE_OTHER ? 1 : 2);
}

/* Element geometry shared by encoder and decoder. */
struct fast_geo {
	uint32_t esz, pre, tail;
	size_t m; /* whole elements */
};

static void fast_geo_init(const struct codec_lvl_args *a, size_t len, struct fast_geo *g)
{
	g->esz = fast_esize(a->dtype);
	g->pre = a->elem_phase < len ? a->elem_phase : (uint32_t)len;
	g->m = (len - g->pre) / g->esz;
	g->tail = (uint32_t)((len - g->pre) % g->esz);
}

/* The planes and the elements never overlap: restrict-qualified locals
 * let the compiler keep the plane pointers in registers and vectorize
 * (through s[] itself every byte store could change them). */
FAST_BODY void fast_split_body(int dtype, const uint8_t *e, size_t m, uint8_t *const s[])
{
	const uint8_t *restrict in = e;
	uint8_t *restrict p0 = s[0], *restrict p1 = dtype == CODEC_DTYPE_OTHER ? NULL : s[1];

	switch (dtype) {
	case CODEC_DTYPE_BF16:
		for (size_t i = 0; i < m; i++) {
			uint8_t lo = in[2 * i], hi = in[2 * i + 1];

			p0[i] = (uint8_t)(hi << 1 | lo >> 7);
			p1[i] = (uint8_t)((hi & 0x80) | (lo & 0x7f));
		}
		break;
	case CODEC_DTYPE_FP16:
		for (size_t i = 0; i < m; i++) {
			p0[i] = in[2 * i + 1];
			p1[i] = in[2 * i];
		}
		break;
	case CODEC_DTYPE_FP32: {
		uint8_t *restrict p2 = s[2], *restrict p3 = s[3];

		for (size_t i = 0; i < m; i++) {
			uint8_t b2 = in[4 * i + 2], b3 = in[4 * i + 3];

			p0[i] = (uint8_t)(b3 << 1 | b2 >> 7);
			p1[i] = (uint8_t)((b3 & 0x80) | (b2 & 0x7f));
			p2[i] = in[4 * i + 1];
			p3[i] = in[4 * i];
		}
		break;
	}
	default:
		memcpy(p0, in, m);
		break;
	}
}

FAST_BODY void fast_merge_body(int dtype, const uint8_t *const s[], size_t m, uint8_t *e)
{
	uint8_t *restrict out = e;
	const uint8_t *restrict p0 = s[0];
	const uint8_t *restrict p1 = dtype == CODEC_DTYPE_OTHER ? NULL : s[1];

	switch (dtype) {
	case CODEC_DTYPE_BF16:
		for (size_t i = 0; i < m; i++) {
			out[2 * i] = (uint8_t)(p0[i] << 7 | (p1[i] & 0x7f));
			out[2 * i + 1] = (uint8_t)((p1[i] & 0x80) | p0[i] >> 1);
		}
		break;
	case CODEC_DTYPE_FP16:
		for (size_t i = 0; i < m; i++) {
			out[2 * i + 1] = p0[i];
			out[2 * i] = p1[i];
		}
		break;
	case CODEC_DTYPE_FP32: {
		const uint8_t *restrict p2 = s[2], *restrict p3 = s[3];

		for (size_t i = 0; i < m; i++) {
			out[4 * i + 3] = (uint8_t)((p1[i] & 0x80) | p0[i] >> 1);
			out[4 * i + 2] = (uint8_t)(p0[i] << 7 | (p1[i] & 0x7f));
			out[4 * i + 1] = p2[i];
			out[4 * i] = p3[i];
		}
		break;
	}
	default:
		if (s[0] != e)
			memmove(e, s[0], m);
		break;
	}
}

FAST_BODY uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v; /* little-endian hosts only; see FORMAT.md */
}

FAST_BODY void store64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static size_t varint_put(uint8_t *p, uint32_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static size_t varint_size(uint32_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		n++;
		v >>= 7;
	}
	return n;
}

/* Returns bytes consumed or 0 on malformed/truncated input. */
static size_t varint_get(const uint8_t *p, size_t avail, uint32_t *v)
{
	uint64_t x = 0;

	for (size_t i = 0; i < 5 && i < avail; i++) {
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			if (x > UINT32_MAX || (i && !p[i]))
				return 0; /* overlong */
			*v = (uint32_t)x;
			return i + 1;
		}
	}
	return 0;
}

/* ---- Huffman construction ---- */

struct huf_sym {
	uint32_t cnt;
	uint32_t sym;
};

/* Stable LSD radix sort by count; input in symbol order, so ties stay in
 * symbol order (the canonical order the decoder never needs, but the
 * encoder's determinism does). */
static void huf_sort(struct huf_sym *a, uint32_t n, uint32_t maxcnt)
{
	struct huf_sym tmp[256];
	uint32_t pos[256];

	for (uint32_t sh = 0; sh < 32 && (maxcnt >> sh); sh += 8) {
		memset(pos, 0, sizeof(pos));
		for (uint32_t i = 0; i < n; i++)
			pos[(a[i].cnt >> sh) & 255]++;
		for (uint32_t b = 0, sum = 0; b < 256; b++) {
			uint32_t c = pos[b];

			pos[b] = sum;
			sum += c;
		}
		for (uint32_t i = 0; i < n; i++)
			tmp[pos[(a[i].cnt >> sh) & 255]++] = a[i];
		memcpy(a, tmp, n * sizeof(*a));
	}
}

/* Code lengths (<= HUF_MAXBITS) for >= 2 used symbols.  Flattening the
 * counts until the tree fits keeps this a true (complete) Huffman code,
 * which the decoder requires. */
static void huf_lengths(const uint32_t *cnt, uint8_t *len)
{
	struct huf_sym leaf[256];
	uint32_t w[511], parent[511], depth[511], c[256];
	uint32_t n = 0, maxd, maxc;

	memcpy(c, cnt, sizeof(c));
	for (;;) {
		n = 0;
		maxc = 0;
		for (uint32_t s = 0; s < 256; s++) {
			if (c[s])
				leaf[n++] = (struct huf_sym){c[s], s};
			maxc = c[s] > maxc ? c[s] : maxc;
		}
		huf_sort(leaf, n, maxc);
		for (uint32_t i = 0; i < n; i++)
			w[i] = leaf[i].cnt;
		/* Two-queue merge: leaves and internal nodes both come out
		 * in ascending weight order. */
		uint32_t li = 0, ii = n;
		for (uint32_t nx = n; nx < 2 * n - 1; nx++) {
			uint32_t pick[2];

			for (int k = 0; k < 2; k++) {
				if (li < n && (ii >= nx || w[li] <= w[ii]))
					pick[k] = li++;
				else
					pick[k] = ii++;
			}
			w[nx] = w[pick[0]] + w[pick[1]];
			parent[pick[0]] = parent[pick[1]] = nx;
		}
		depth[2 * n - 2] = 0;
		maxd = 0;
		for (uint32_t i = 2 * n - 2; i-- > 0;) {
			depth[i] = depth[parent[i]] + 1;
			if (depth[i] > maxd)
				maxd = depth[i];
		}
		if (maxd <= HUF_MAXBITS)
			break;
		for (uint32_t s = 0; s < 256; s++)
			if (c[s])
				c[s] = (c[s] >> 1) | 1;
	}
	memset(len, 0, 256);
	for (uint32_t i = 0; i < n; i++)
		len[leaf[i].sym] = (uint8_t)depth[i];
}

static uint32_t bit_reverse(uint32_t c, uint32_t n)
{
	uint32_t r = 0;

	for (uint32_t i = 0; i < n; i++)
		r |= ((c >> i) & 1u) << (n - 1 - i);
	return r;
}

/* Canonical codes, bit-reversed for LSB-first emission.  Returns 0, or
 * -EBADMSG when the lengths are not a complete prefix code. */
static int huf_codes(const uint8_t *len, uint32_t lo, uint32_t hi, uint16_t *code)
{
	uint32_t bl[HUF_MAXBITS + 1] = {0}, next[HUF_MAXBITS + 1], c = 0, kraft = 0;

	for (uint32_t s = lo; s <= hi; s++) {
		if (len[s] > HUF_MAXBITS)
			return -EBADMSG;
		bl[len[s]]++;
		if (len[s])
			kraft += HUF_TSIZE >> len[s];
	}
	if (kraft != HUF_TSIZE)
		return -EBADMSG;
	bl[0] = 0;
	for (uint32_t b = 1; b <= HUF_MAXBITS; b++) {
		c = (c + bl[b - 1]) << 1;
		next[b] = c;
	}
	for (uint32_t s = lo; s <= hi; s++)
		if (len[s])
			code[s] = (uint16_t)bit_reverse(next[len[s]]++, len[s]);
	return 0;
}

/* ---- stream encoder ---- */

struct bitw {
	uint8_t *p, *end; /* end: last byte the 8-byte store may touch + 1 */
	uint64_t acc;
	uint32_t nb;
};

FAST_BODY void bitw_flush(struct bitw *w)
{
	if (w->p + 8 <= w->end) {
		store64(w->p, w->acc);
	} else {
		for (uint32_t i = 0; i < (w->nb >> 3); i++)
			w->p[i] = (uint8_t)(w->acc >> (8 * i));
	}
	w->p += w->nb >> 3;
	w->acc = (w->nb & ~7u) == 64 ? 0 : w->acc >> (w->nb & ~7u);
	w->nb &= 7;
}

FAST_BODY void huf_lane_encode_body(const uint8_t *s, size_t n, const uint32_t *enc,
                                    uint8_t *out, uint8_t *end)
{
	struct bitw w = {out, end, 0, 0};
	size_t i = 0;

	/* 4 codes of <= 11 bits plus 7 pending bits fit the accumulator. */
	for (; i + 4 <= n; i += 4) {
		for (uint32_t k = 0; k < 4; k++) {
			uint32_t e = enc[s[i + k]];

			w.acc |= (uint64_t)(e & 0xffff) << w.nb;
			w.nb += e >> 16;
		}
		bitw_flush(&w);
	}
	for (; i < n; i++) {
		uint32_t e = enc[s[i]];

		w.acc |= (uint64_t)(e & 0xffff) << w.nb;
		w.nb += e >> 16;
	}
	bitw_flush(&w);
	if (w.nb)
		*w.p = (uint8_t)w.acc;
}

/* Lane k codes symbols [start[k], start[k] + cnt[k]); lane counts never
 * increase with k, so lane 3 is the shortest. */
static void huf_lane_split(size_t n, size_t start[HUF_LANES], size_t cnt[HUF_LANES])
{
	size_t q = (n + HUF_LANES - 1) / HUF_LANES;

	for (uint32_t k = 0; k < HUF_LANES; k++) {
		start[k] = k * q < n ? k * q : n;
		cnt[k] = ((k + 1) * q < n ? (k + 1) * q : n) - start[k];
	}
}

/* One histogram per lane: independent counters also avoid the
 * store-to-load stall of runs of one symbol. */
static void fast_hist(const uint8_t *s, const size_t start[HUF_LANES],
                      const size_t cnt[HUF_LANES], uint32_t h[HUF_LANES][256])
{
	const uint8_t *s0 = s + start[0], *s1 = s + start[1], *s2 = s + start[2], *s3 = s + start[3];
	size_t i = 0;

	memset(h, 0, sizeof(uint32_t) * HUF_LANES * 256);
	for (; i < cnt[3]; i++) {
		h[0][s0[i]]++;
		h[1][s1[i]]++;
		h[2][s2[i]]++;
		h[3][s3[i]]++;
	}
	for (uint32_t k = 0; k < 3; k++)
		for (size_t j = i; j < cnt[k]; j++)
			h[k][s[start[k] + j]]++;
}

/* Order-0 entropy in bits (a lower bound of the Huffman size, up to the
 * log approximation); streams within 1% of 8 bits/byte stay raw without
 * building a tree: the gain would not pay for the slower decode. */
static float fast_entropy_bits(const uint32_t *cnt, size_t n)
{
	float s = 0;

	for (uint32_t i = 0; i < 256; i++) {
		if (cnt[i]) {
			union {
				float f;
				uint32_t u;
			} v = {(float)cnt[i] / (float)n};
			float e = (float)((int)(v.u >> 23) - 127), m;

			v.u = (v.u & 0x7fffffu) | 0x3f800000u;
			m = v.f;
			s -= (float)cnt[i] * (e + (-0.34484843f * m + 2.02466578f) * m - 0.67487759f);
		}
	}
	return s;
}

static ssize_t fast_stream_encode(struct fast_state *st, const uint8_t *s, size_t n, uint8_t *out,
                                  size_t cap, uint32_t depth);

/* The dominant class of a stream: the symbols x with (x & mask) == val.
 * mask 0xff is one byte value; mask 0x7f one value of both signs (the
 * zeros of a sign-magnitude stream).  Returns how many symbols it holds. */
static size_t fast_sparse_class(const uint32_t cnt[256], uint8_t *mask, uint8_t *val)
{
	size_t best = 0, best7 = 0;
	uint32_t x, v7 = 0;

	*mask = 0xff;
	*val = 0;
	for (x = 0; x < 256; x++) {
		if (cnt[x] > best) {
			best = cnt[x];
			*val = (uint8_t)x;
		}
		if (x < 128 && (size_t)cnt[x] + cnt[x | 0x80] > best7) {
			best7 = (size_t)cnt[x] + cnt[x | 0x80];
			v7 = x;
		}
	}
	if (best7 > best + best / 8) { /* worth a residual stream */
		*mask = 0x7f;
		*val = (uint8_t)v7;
		best = best7;
	}
	return best;
}

/* The parts of a sparse stream: the bitmap (bit i set: s[i] is a literal,
 * not in the class), the literals, and the residuals s[i] & ~mask of the
 * class members.  Returns the number of literals. */
static size_t fast_sparse_split(const uint8_t *s, size_t n, uint8_t mask, uint8_t val,
                                uint8_t *bm, uint8_t *lit, uint8_t *res)
{
	size_t l = 0, r = 0;

	for (size_t i = 0; i < n; i += 8) {
		size_t e = n - i < 8 ? n - i : 8;
		uint32_t b = 0;

		for (size_t t = 0; t < e; t++) {
			uint8_t x = s[i + t];
			uint32_t isl = (x & mask) != val;

			b |= isl << t;
			lit[l] = x;
			res[r] = (uint8_t)(x & ~mask);
			l += isl;
			r += !isl;
		}
		bm[i / 8] = (uint8_t)b;
	}
	return l;
}

/* Code s[0..n) as a sparse stream if its dominant class is large enough.
 * Returns bytes, or -ENOSPC when it is not worth it or does not fit cap. */
static ssize_t fast_sparse_encode(struct fast_state *st, const uint8_t *s, size_t n,
                                  const uint32_t cnt[256], uint8_t *out, size_t cap,
                                  uint32_t depth)
{
	uint8_t mask, val, *bm, *lit, *res;
	size_t c = fast_sparse_class(cnt, &mask, &val), nb = (n + 7) / 8, l, o = 3;
	ssize_t rc;

	if (c * 256 < (size_t)FAST_SPARSE_MIN * n || cap < 3)
		return -ENOSPC;
	if (depth == 0 && (rc = fast_tmp_get(st, n)) < 0)
		return rc;
	bm = st->tmp + depth * fast_sparse_scratch(st->tmp_n);
	lit = bm + nb;
	res = lit + (n - c) + 1; /* the split's stores run one past each */
	l = fast_sparse_split(s, n, mask, val, bm, lit, res);
	out[0] = FAST_STREAM_SPARSE;
	out[1] = mask;
	out[2] = val;
	rc = fast_stream_encode(st, bm, nb, out + o, cap - o, depth + 1);
	if (rc < 0)
		return rc;
	o += (size_t)rc;
	if (l) {
		rc = fast_stream_encode(st, lit, l, out + o, cap - o, depth + 1);
		if (rc < 0)
			return rc;
		o += (size_t)rc;
	}
	if (mask != 0xff && l < n) {
		rc = fast_stream_encode(st, res, n - l, out + o, cap - o, depth + 1);
		if (rc < 0)
			return rc;
		o += (size_t)rc;
	}
	return (ssize_t)o;
}

/* Code stream s[0..n) (n >= 1) at out[0..cap); depth counts the sparse
 * streams it is nested in.  Returns bytes, -ENOSPC or -ENOMEM. */
static ssize_t fast_stream_encode(struct fast_state *st, const uint8_t *s, size_t n, uint8_t *out,
                                  size_t cap, uint32_t depth)
{
	uint32_t h[HUF_LANES][256], cnt[256], enc[256], lo = 256, hi = 0, nsym = 0;
	uint8_t len[256];
	uint16_t code[256];
	uint64_t bits[HUF_LANES] = {0}, total = 0;
	size_t start[HUF_LANES], lcnt[HUF_LANES], hdr, o, plain = n + 1;
	ssize_t rc;

	huf_lane_split(n, start, lcnt);
	fast_hist(s, start, lcnt, h);
	for (uint32_t x = 0; x < 256; x++) {
		cnt[x] = h[0][x] + h[1][x] + h[2][x] + h[3][x];
		if (cnt[x]) {
			nsym++;
			lo = lo < x ? lo : x;
			hi = x;
		}
	}
	if (nsym == 1) {
		if (cap < 2)
			return -ENOSPC;
		out[0] = FAST_STREAM_CONST;
		out[1] = (uint8_t)lo;
		return 2;
	}
	hdr = 3 + (hi - lo + 2) / 2 + HUF_LANES * 4;
	if (fast_entropy_bits(cnt, n) / 8 + (float)hdr < 0.99f * (float)n) {
		huf_lengths(cnt, len);
		huf_codes(len, lo, hi, code);
		for (uint32_t k = 0; k < HUF_LANES; k++) {
			for (uint32_t x = lo; x <= hi; x++)
				bits[k] += (uint64_t)h[k][x] * len[x];
			total += (bits[k] + 7) / 8;
		}
		o = 3 + (hi - lo + 2) / 2;
		for (uint32_t k = 0; k < HUF_LANES; k++)
			o += varint_size((uint32_t)((bits[k] + 7) / 8));
		if (o + total < plain)
			plain = o + total;
	}
	/* Huffman spends at least a bit on every symbol; a dominant value
	 * (zeros of a pruned or sparse tensor) is cheaper as a bitmap.  It
	 * must save FAST_SPARSE_GAIN: its merge decodes slower. */
	if (depth < FAST_SPARSE_DEPTH) {
		size_t scap = plain - 1 - plain / FAST_SPARSE_GAIN;

		rc = fast_sparse_encode(st, s, n, cnt, out, cap < scap ? cap : scap, depth);
		if (rc != -ENOSPC)
			return rc;
	}
	if (plain > cap)
		return -ENOSPC;
	if (plain == n + 1)
		goto raw;
	out[0] = FAST_STREAM_HUF;
	out[1] = (uint8_t)lo;
	out[2] = (uint8_t)hi;
	o = 3;
	for (uint32_t x = lo; x <= hi; x += 2)
		out[o++] = (uint8_t)(len[x] | (x + 1 <= hi ? len[x + 1] << 4 : 0));
	for (uint32_t k = 0; k < HUF_LANES; k++)
		o += varint_put(out + o, (uint32_t)((bits[k] + 7) / 8));
	for (uint32_t x = 0; x < 256; x++)
		enc[x] = len[x] ? (uint32_t)code[x] | (uint32_t)len[x] << 16 : 0;
	for (uint32_t k = 0; k < HUF_LANES; k++) {
		st->impl->lane_encode(s + start[k], lcnt[k], enc, out + o, out + cap);
		o += (bits[k] + 7) / 8;
	}
	return (ssize_t)o;
raw:
	out[0] = FAST_STREAM_RAW;
	memcpy(out + 1, s, n);
	return (ssize_t)(n + 1);
}

ssize_t fast_encode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                    const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
	struct fast_geo g;
	struct fast_state *st;
	uint8_t *s[FAST_STREAMS_MAX];
	uint32_t ns;
	size_t o;
	ssize_t rc;

	fast_geo_init(a, len, &g);
	rc = -ENOSPC;
	if (g.m == 0 || cap < (size_t)g.pre + g.tail)
		goto out;
	ns = g.esz;
	rc = fast_state_get(ctx, a->dtype == CODEC_DTYPE_OTHER ? 0 : g.m * ns, &st);
	if (rc)
		goto out;
	if (a->dtype == CODEC_DTYPE_OTHER) {
		s[0] = (uint8_t *)src + g.pre; /* single stream: code in place */
	} else {
		for (uint32_t k = 0; k < ns; k++)
			s[k] = st->buf + k * g.m;
		st->impl->split(a->dtype, src + g.pre, g.m, s);
	}
	memcpy(dst, src, g.pre);
	memcpy(dst + g.pre, src + len - g.tail, g.tail);
	o = (size_t)g.pre + g.tail;
	for (uint32_t k = 0; k < ns; k++) {
		rc = fast_stream_encode(st, s[k], g.m, dst + o, cap - o, 0);
		if (rc < 0)
			goto out;
		o += (size_t)rc;
	}
	rc = (ssize_t)o;
out:
	return rc;
}

/* ---- stream decoder ---- */

struct bitr {
	const uint8_t *base; /* lane start */
	const uint8_t *end;  /* payload end: peeks may look this far */
	size_t pos;          /* bits consumed */
};

FAST_BODY uint64_t bitr_peek(const struct bitr *r)
{
	const uint8_t *p = r->base + (r->pos >> 3);
	uint64_t v = 0;

	if (p + 8 <= r->end)
		return load64(p) >> (r->pos & 7);
	for (uint32_t i = 0; p + i < r->end && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v >> (r->pos & 7);
}

FAST_BODY void huf_lanes_decode_body(const uint16_t *dt, struct bitr r[HUF_LANES], uint8_t *out,
                                     const size_t start[HUF_LANES], const size_t cnt[HUF_LANES])
{
	size_t i = 0, common = cnt[HUF_LANES - 1];

	/* Lane 3 is the shortest.  Five 11-bit codes fit the 57 bits a
	 * peek guarantees. */
	for (; i + 5 <= common; i += 5) {
		uint64_t v[HUF_LANES];
		int fast = 1;

		for (uint32_t k = 0; k < HUF_LANES; k++)
			fast &= r[k].base + (r[k].pos >> 3) + 8 <= r[k].end;
		if (!fast)
			break;
		for (uint32_t k = 0; k < HUF_LANES; k++)
			v[k] = load64(r[k].base + (r[k].pos >> 3)) >> (r[k].pos & 7);
		for (uint32_t j = 0; j < 5; j++) {
			for (uint32_t k = 0; k < HUF_LANES; k++) {
				uint16_t e = dt[v[k] & (HUF_TSIZE - 1)];

				out[start[k] + i + j] = (uint8_t)e;
				v[k] >>= e >> 8;
				r[k].pos += e >> 8;
			}
		}
	}
	for (uint32_t k = 0; k < HUF_LANES; k++) {
		for (size_t j = i; j < cnt[k]; j++) {
			uint16_t e = dt[bitr_peek(&r[k]) & (HUF_TSIZE - 1)];

			out[start[k] + j] = (uint8_t)e;
			r[k].pos += e >> 8;
		}
	}
}

/* One instance of the hot loops per CPU target. */
#define FAST_IMPL(sfx, attr)                                                                   \
	attr static void fast_split_##sfx(int d, const uint8_t *e, size_t m, uint8_t *const s[])  \
	{                                                                                          \
		fast_split_body(d, e, m, s);                                                       \
	}                                                                                          \
	attr static void fast_merge_##sfx(int d, const uint8_t *const s[], size_t m, uint8_t *e)  \
	{                                                                                          \
		fast_merge_body(d, s, m, e);                                                       \
	}                                                                                          \
	attr static void huf_lane_encode_##sfx(const uint8_t *s, size_t n, const uint32_t *enc,   \
	                                       uint8_t *out, uint8_t *end)                         \
	{                                                                                          \
		huf_lane_encode_body(s, n, enc, out, end);                                         \
	}                                                                                          \
	attr static void huf_lanes_decode_##sfx(const uint16_t *dt, struct bitr *r, uint8_t *out, \
	                                        const size_t *start, const size_t *cnt)            \
	{                                                                                          \
		huf_lanes_decode_body(dt, r, out, start, cnt);                                     \
	}                                                                                          \
	static const struct fast_impl fast_impl_##sfx = {#sfx, fast_split_##sfx, fast_merge_##sfx, \
	                                                 huf_lane_encode_##sfx,                    \
	                                                 huf_lanes_decode_##sfx}

FAST_IMPL(portable, );
#if FAST_HAVE_AVX2
FAST_IMPL(avx2, __attribute__((target("avx2,bmi2"))));
#endif

static const struct fast_impl *fast_impl_pick(void)
{
#if FAST_HAVE_AVX2
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2"))
		return &fast_impl_avx2;
#endif
	return &fast_impl_portable;
}

static ssize_t fast_stream_decode(struct fast_state *st, const uint8_t *in, size_t avail,
                                  size_t n, uint8_t *out, const uint8_t **res, uint32_t depth);

/* Merge the parts of a sparse stream into out[0..n).  lit and res may be
 * read one past their ends; res advances by rstep (0: all residuals are
 * res[0] = 0).  Branch-free: the bitmap of a non-clustered class is
 * unpredictable.  Returns 0, or -EBADMSG when a literal is in the class or
 * a residual has mask bits (such a stream has another, canonical,
 * coding). */
static int fast_sparse_merge(const uint8_t *bm, const uint8_t *lit, const uint8_t *res,
                             size_t rstep, size_t n, uint8_t mask, uint8_t val, uint8_t *out)
{
	uint32_t bad = 0;
	size_t j = 0, k = 0;

	for (size_t i = 0; i < n; i += 8) {
		size_t e = n - i < 8 ? n - i : 8;
		uint32_t b = bm[i / 8];

		if (b == 0 && rstep == 0) {
			memset(out + i, val, e);
			continue;
		}
		if (b == 0xff) {
			for (size_t t = 0; t < 8; t++)
				bad |= (lit[j + t] & mask) == val;
			memcpy(out + i, lit + j, 8);
			j += 8;
			continue;
		}
		for (size_t t = 0; t < e; t++) {
			uint32_t bit = (b >> t) & 1;
			uint8_t l = lit[j], r = res[k];

			out[i + t] = bit ? l : (uint8_t)(val | r);
			bad |= bit ? (uint32_t)((l & mask) == val) : (uint32_t)(r & mask);
			j += bit;
			k += (bit ^ 1) & rstep;
		}
	}
	return bad ? -EBADMSG : 0;
}

/* Decode a part of a sparse stream into buf (room for n + 1 symbols), so
 * that *part may be read one past its end even when it is a raw stream in
 * the payload. */
static ssize_t fast_sparse_part(struct fast_state *st, const uint8_t *in, size_t avail, size_t n,
                                uint8_t *buf, const uint8_t **part, uint32_t depth)
{
	ssize_t rc = fast_stream_decode(st, in, avail, n, buf, part, depth);

	if (rc >= 0 && *part != buf) {
		memcpy(buf, *part, n);
		*part = buf;
	}
	return rc;
}

/* Decode a sparse stream (in[0] is its mode byte) of n symbols into out. */
static ssize_t fast_sparse_decode(struct fast_state *st, const uint8_t *in, size_t avail,
                                  size_t n, uint8_t *out, uint32_t depth)
{
	static const uint8_t zero;
	uint8_t mask, val, *tmp;
	const uint8_t *bm, *lit = &zero, *res = &zero;
	size_t nb = (n + 7) / 8, l = 0, o = 3;
	ssize_t rc;

	if (depth >= FAST_SPARSE_DEPTH || avail < 3)
		return -EBADMSG;
	mask = in[1];
	val = in[2];
	if (!mask || (val & ~mask))
		return -EBADMSG;
	if (depth == 0 && (rc = fast_tmp_get(st, n)) < 0)
		return rc;
	tmp = st->tmp + depth * fast_sparse_scratch(st->tmp_n);
	rc = fast_stream_decode(st, in + o, avail - o, nb, tmp, &bm, depth + 1);
	if (rc < 0)
		return rc;
	o += (size_t)rc;
	if ((n & 7) && (bm[nb - 1] >> (n & 7)))
		return -EBADMSG; /* padding bits must be zero */
	for (size_t i = 0; i < nb; i++)
		l += (size_t)__builtin_popcount(bm[i]);
	if (l) {
		rc = fast_sparse_part(st, in + o, avail - o, l, tmp + nb, &lit, depth + 1);
		if (rc < 0)
			return rc;
		o += (size_t)rc;
	}
	if (l < n && mask != 0xff) {
		rc = fast_sparse_part(st, in + o, avail - o, n - l, tmp + nb + l + 1, &res, depth + 1);
		if (rc < 0)
			return rc;
		o += (size_t)rc;
	}
	/* a bitmap byte of 0xff is always whole: padding bits are zero */
	rc = fast_sparse_merge(bm, lit, res, mask == 0xff ? 0 : 1, n, mask, val, out);
	return rc < 0 ? rc : (ssize_t)o;
}

/* Decode one stream of n symbols from in[0..avail) (avail runs to the
 * payload end), nested in depth sparse streams.  *res points at the
 * symbols: into the payload for raw streams, else at out.  Returns bytes
 * consumed, -EBADMSG or -ENOMEM. */
static ssize_t fast_stream_decode(struct fast_state *st, const uint8_t *in, size_t avail,
                                  size_t n, uint8_t *out, const uint8_t **res, uint32_t depth)
{
	ssize_t rc;

	uint8_t len[256] = {0};
	uint16_t code[256];
	struct bitr r[HUF_LANES];
	size_t start[HUF_LANES], cnt[HUF_LANES], o;
	uint32_t lo, hi, sz[HUF_LANES];

	if (avail < 2)
		return -EBADMSG;
	switch (in[0]) {
	case FAST_STREAM_RAW:
		if (avail - 1 < n)
			return -EBADMSG;
		*res = in + 1;
		return (ssize_t)(n + 1);
	case FAST_STREAM_CONST:
		memset(out, in[1], n);
		*res = out;
		return 2;
	case FAST_STREAM_HUF:
		break;
	case FAST_STREAM_SPARSE:
		rc = fast_sparse_decode(st, in, avail, n, out, depth);
		*res = out;
		return rc;
	default:
		return -EBADMSG;
	}
	if (avail < 3 || in[2] <= in[1])
		return -EBADMSG;
	lo = in[1];
	hi = in[2];
	o = 3 + (hi - lo + 2) / 2;
	if (avail < o)
		return -EBADMSG;
	for (uint32_t x = lo; x <= hi; x++)
		len[x] = (in[3 + (x - lo) / 2] >> (4 * ((x - lo) & 1))) & 15;
	if ((hi - lo) % 2 == 0 && (in[o - 1] >> 4))
		return -EBADMSG; /* unused nibble must be zero */
	if (huf_codes(len, lo, hi, code))
		return -EBADMSG;
	for (uint32_t k = 0; k < HUF_LANES; k++) {
		size_t c = varint_get(in + o, avail - o, &sz[k]);

		if (!c)
			return -EBADMSG;
		o += c;
	}
	for (uint32_t x = lo; x <= hi; x++) {
		if (!len[x])
			continue;
		for (uint32_t j = code[x]; j < HUF_TSIZE; j += 1u << len[x])
			st->dtab[j] = (uint16_t)(x | (uint32_t)len[x] << 8);
	}
	huf_lane_split(n, start, cnt);
	for (uint32_t k = 0; k < HUF_LANES; k++) {
		if (avail - o < sz[k] || (cnt[k] == 0) != (sz[k] == 0) ||
		    sz[k] > (cnt[k] * HUF_MAXBITS + 7) / 8)
			return -EBADMSG;
		r[k] = (struct bitr){in + o, in + avail, 0};
		o += sz[k];
	}
	st->impl->lanes_decode(st->dtab, r, out, start, cnt);
	/* Each lane must end inside its last byte, padded with zero bits, so
	 * that no bit of a frame is free to change. */
	for (uint32_t k = 0; k < HUF_LANES; k++) {
		if (!sz[k])
			continue;
		if (r[k].pos > (size_t)sz[k] * 8 || r[k].pos <= (size_t)(sz[k] - 1) * 8 ||
		    (r[k].base[sz[k] - 1] >> (r[k].pos - (size_t)(sz[k] - 1) * 8)))
			return -EBADMSG;
	}
	*res = out;
	return (ssize_t)o;
}

ssize_t fast_decode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                    const uint8_t *payload, size_t plen, uint8_t *dst, size_t raw_len)
{
	struct fast_geo g;
	struct fast_state *st;
	const uint8_t *s[FAST_STREAMS_MAX];
	size_t o;
	ssize_t rc;

	rc = -EBADMSG;
	if (a->dtype < 0 || a->dtype >= CODEC_DTYPE_COUNT || a->elem_phase >= fast_esize(a->dtype))
		goto out;
	fast_geo_init(a, raw_len, &g);
	if (g.m == 0 || plen < (size_t)g.pre + g.tail)
		goto out;
	rc = fast_state_get(ctx, a->dtype == CODEC_DTYPE_OTHER ? 0 : g.m * g.esz, &st);
	if (rc)
		goto out;
	memcpy(dst, payload, g.pre);
	memcpy(dst + raw_len - g.tail, payload + g.pre, g.tail);
	o = (size_t)g.pre + g.tail;
	for (uint32_t k = 0; k < g.esz; k++) {
		uint8_t *buf = a->dtype == CODEC_DTYPE_OTHER ? dst + g.pre : st->buf + k * g.m;

		rc = fast_stream_decode(st, payload + o, plen - o, g.m, buf, &s[k], 0);
		if (rc < 0)
			goto out;
		o += (size_t)rc;
	}
	rc = -EBADMSG;
	if (o != plen)
		goto out;
	st->impl->merge(a->dtype, s, g.m, dst + g.pre);
	rc = (ssize_t)raw_len;
out:
	return rc;
}
