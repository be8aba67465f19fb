/*
 * mix_bytes.c - CODEC_LEVEL_MIX byte model for chunks that are not float
 * tensors (headers, int tensors, optimizer bookkeeping, text).
 *
 * Light on purpose: the filesystem writes such chunks at level mix too, and
 * they must not cost more than a few ns a byte.  Per byte:
 *   match   when the last 4 bytes occurred before in the chunk, one binary
 *           decision "the byte is the one that followed them" (context: the
 *           match length), and nothing else if so;
 *   nibbles otherwise the high nibble under the previous byte and the low
 *           nibble under the previous byte and the high nibble, each one
 *           symbol of an adaptive 16-symbol distribution;
 *           or (MIX_PF_NUM, "numbers") the high nibble under the previous
 *           byte's high nibble and the low nibble under the high nibble;
 *           or (MIX_BYTES_ELEM, "elements": token ids, integers) as text,
 *           with the byte's place in its 2- or 4-byte element in the
 *           context too;
 *   blocks  (MIX_BYTES_BLK: GGUF's Q4_0 .. Q8_1, Q2_K .. Q6_K) the scale bytes at the
 *           head of each block as nibbles under the same byte of the
 *           previous block, the quants through the fast coder.
 * The previous byte is the context text and structured records want; for
 * numbers (int8, fp8, quantized blocks) its 4096 low-nibble rows learn
 * too slowly in 64 KiB and cost 5-8% over order 0 (fp8 weights: 0.913
 * against zstd -3's 0.845).  The way is chosen by an estimate of the high
 * nibbles' cost under either context (nib_cost_q8); a chunk the estimate
 * gives to text but whose order-0 entropy is high is coded both ways, the
 * smaller kept.  mix.c may still replace a NUM payload by a fast one
 * (MIX_PF_FAST), and tries blocks when mix_bytes_block finds them.
 * Chunks whose order-0 entropy is near 8 bits (random, already
 * compressed) are not coded at all (mix_encode's MIX_GATE_Q8, before any
 * byte way, unless they look like blocks): -ENOSPC in a few
 * microseconds, the frame layer stores them raw.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mix_model_i.h"

#define MIX_MM_BITS 14 /* match index entries */
#define MIX_MM_MIN 4   /* bytes that must repeat to start a match */
#ifndef MIX_K_NIB
#define MIX_K_NIB 7
#endif
#ifndef MIX_NUM_Q8
#define MIX_NUM_Q8 (256 * 5) /* order-0 entropy from which both ways are tried */
#endif

/* Row arrays are followed by other fields (see mix_row_interval).  The
 * first index is the previous byte, with the element phase above it
 * (MIX_BYTES_ELEM: 256 << sh contexts). */
struct mix_bmodel {
	_Alignas(64) uint16_t hi[256 << MIX_SHMAX][16];     /* high nibble | previous byte
	                                                     * (NUM: its high nibble) */
	_Alignas(64) uint16_t lo[256 << MIX_SHMAX][16][16]; /* low nibble | previous byte,
	                                                     * high nibble (NUM: lo[0][high
	                                                     * nibble]) */
	uint16_t mf[16][2];                    /* match hit | match length */
	uint32_t midx[1u << MIX_MM_BITS];      /* hash of last 4 bytes -> position */
};

/* The tables allocated, the first nhi high-nibble rows and nlo x 16
 * low-nibble rows uniform with prior strength n0. */
static int bmodel_rows(struct mix_state *s, unsigned nhi, unsigned nlo, unsigned n0)
{
	struct mix_bmodel *m = s->bm;

	if (!m) {
		m = aligned_alloc(64, sizeof(*m));
		if (!m)
			return -ENOMEM;
		s->bm = m;
	}
	for (unsigned i = 0; i < nhi; i++)
		mix_row_uniform(m->hi[i], 16, n0);
	for (unsigned i = 0; i < nlo; i++)
		for (unsigned j = 0; j < 16; j++)
			mix_row_uniform(m->lo[i][j], 16, n0);
	return 0;
}

int mix_bytes_prepare(struct mix_state *s, unsigned sh)
{
	struct mix_bmodel *m;
	int rc = bmodel_rows(s, 256u << sh, 256u << sh, 2);

	if (rc)
		return rc;
	m = s->bm;
	for (unsigned i = 0; i < 16; i++)
		mix_bin_init(m->mf[i], MIX_PTOT / 4, 2);
	memset(m->midx, 0, sizeof(m->midx));
	return 0;
}

void mix_bytes_free(struct mix_bmodel *m)
{
	free(m);
}

static inline uint32_t mix_hash4(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return (v * 0x9E3779B1u) >> (32 - MIX_MM_BITS);
}

/* Both directions; buf is the source (enc) or the destination. */
static inline __attribute__((always_inline)) int
mix_bytes_body(struct mix_state *s, struct mix_io *iop, const int enc, const int impl,
               const int num, unsigned sh, uint8_t *buf, size_t len, uint8_t *out, size_t *olen,
               size_t cap)
{
	struct mix_io lio = *iop, *io = &lio; /* in registers: see mix_float_body */
	struct mix_bmodel *m = s->bm;
	size_t mptr = 0, mlen = 0;
	unsigned c1 = 0;
	const unsigned pmask = (1u << sh) - 1;
	int rc = 0;

	for (size_t i0 = 0; i0 < len && !rc; i0 += MIX_SEG_NBYTES) {
		const size_t i1 = len - i0 > MIX_SEG_NBYTES ? i0 + MIX_SEG_NBYTES : len;

		mix_seg_begin(io, enc);
		for (size_t i = i0; i < i1; i++) {
			unsigned byte = enc ? buf[i] : 0, hit = 0;

			if (!num && mlen) {
				unsigned expect = buf[mptr];

				hit = mix_code_bin(io, enc, m->mf[mlen < 19 ? mlen - 4 : 15],
				                   byte == expect, MIX_K_BIN);
				if (hit)
					byte = expect;
			}
			if (!hit) {
				unsigned cx = c1 | ((unsigned)i & pmask) << 8;
				unsigned ch = num ? c1 >> 4 : cx, cl = num ? 0 : cx;
				unsigned h = mix_code(io, enc, impl, m->hi[ch], 16, byte >> 4, MIX_K_NIB);
				unsigned l = mix_code(io, enc, impl, m->lo[cl][h], 16, byte & 15,
				                      MIX_K_NIB);

				byte = h << 4 | l;
			}
			if (!enc)
				buf[i] = (uint8_t)byte;
			c1 = byte;

			/* match model: extend, or look the last 4 bytes up */
			if (mlen && hit) {
				mlen++;
				mptr++;
			} else {
				mlen = 0;
			}
			if (!num && i + 1 >= MIX_MM_MIN) {
				uint32_t hm = mix_hash4(buf + i + 1 - MIX_MM_MIN);

				if (!mlen) {
					size_t cand = m->midx[hm];

					if (cand && !memcmp(buf + cand - MIX_MM_MIN,
					                    buf + i + 1 - MIX_MM_MIN, MIX_MM_MIN)) {
						mptr = cand;
						mlen = MIX_MM_MIN;
					}
				}
				m->midx[hm] = (uint32_t)(i + 1);
			}
		}
		rc = mix_seg_end(s, io, enc, out, olen, cap);
	}
	*iop = lio;
	return rc;
}

/* One instance per direction, impl and way (num), so that each loop is
 * compiled for its own contexts. */
#define MIX_BYTES_IMPL(sfx, attr, impl)                                                          \
	attr static int mix_bytes_enc_##sfx(struct mix_state *s, struct mix_io *io, int num,    \
	                                    unsigned sh, const uint8_t *src, size_t len,         \
	                                    uint8_t *out, size_t *olen, size_t cap)              \
	{                                                                                         \
		uint8_t *b = (uint8_t *)(uintptr_t)src;                                           \
		return num ? mix_bytes_body(s, io, 1, impl, 1, 0, b, len, out, olen, cap)         \
		           : mix_bytes_body(s, io, 1, impl, 0, sh, b, len, out, olen, cap);       \
	}                                                                                         \
	attr static int mix_bytes_dec_##sfx(struct mix_state *s, struct mix_io *io, int num,    \
	                                    unsigned sh, uint8_t *dst, size_t len)               \
	{                                                                                         \
		return num ? mix_bytes_body(s, io, 0, impl, 1, 0, dst, len, NULL, NULL, 0)        \
		           : mix_bytes_body(s, io, 0, impl, 0, sh, dst, len, NULL, NULL, 0);      \
	}

MIX_BYTES_IMPL(portable, , 0)
#if MIX_HAVE_AVX2
MIX_BYTES_IMPL(avx2, MIX_AVX2_ATTR, 1)
#endif

/* Code src one way (num; without it, over elements of 1 << sh bytes) into
 * dst[0..cap); the payload's length, or -ENOSPC when it does not fit, or
 * another negative errno. */
static ssize_t bytes_encode_way(struct mix_state *s, int num, unsigned sh, const uint8_t *src,
                                size_t len, uint8_t *dst, size_t cap)
{
	struct mix_io io = {0};
	size_t olen = 1 + (sh != 0);
	int rc;

	if (cap < olen)
		return -ENOSPC;
	rc = mix_enc_prepare(s);
	if (rc)
		return rc;
	rc = mix_bytes_prepare(s, sh);
	if (rc)
		return rc;
	io.e.sym = s->sym;
	io.e.cap = MIX_SEG_SYMS;
#if MIX_HAVE_AVX2
	if (s->impl)
		rc = mix_bytes_enc_avx2(s, &io, num, sh, src, len, dst, &olen, cap);
	else
#endif
		rc = mix_bytes_enc_portable(s, &io, num, sh, src, len, dst, &olen, cap);
	if (rc)
		return -ENOSPC;
	dst[0] = (uint8_t)(MIX_VERSION << 4 | (num ? MIX_PF_NUM : sh ? MIX_BYTES_ELEM : 0));
	if (sh)
		dst[1] = (uint8_t)sh;
	return (ssize_t)olen;
}

/* --- quantized blocks (MIX_BYTES_BLK) -----------------------------------
 * The head bytes of each block (k < head: scales) are coded here: the
 * high nibble under the high nibble of the byte at the same place one
 * block back (a scale's exponent moves slowly along a row), the low nibble
 * under (k, high nibble).  The quant bytes (k >= head) go out as one
 * stream through the fast coder's static tables, as they are or, where a
 * quant's bits lie in two places, unpacked into one value a weight
 * (blk_values): adaptive contexts gain little on them (a quant tells
 * little of the next), and the fast decoder is 10x quicker.  Measured on
 * the classic and the K-quant blocks of the fp32 corpus
 * (docs/BENCHMARKS.md). */
#ifndef MIX_K_BLK
#define MIX_K_BLK 9
#endif
static inline __attribute__((always_inline)) int
mix_blocks_body(struct mix_state *s, struct mix_io *iop, const int enc, const int impl,
                const struct mix_blk *bk, uint8_t *buf, size_t len, uint8_t *out, size_t *olen,
                size_t cap)
{
	struct mix_io lio = *iop, *io = &lio; /* in registers: see mix_float_body */
	struct mix_bmodel *m = s->bm;
	const unsigned bl = bk->len, hd = bk->head;
	size_t nseg = 0, i = 0;
	int rc = 0;

	while (i < len && !rc) {
		unsigned k = (unsigned)((bk->phase + i) % bl);

		if (k >= hd) {
			i += bl - k; /* the quants: not here */
			continue;
		}
		for (; k < hd && i < len && !rc; k++, i++) {
			/* the rows of the place, or those its kind of
			 * sub-block scale bytes shares */
			unsigned byte = enc ? buf[i] : 0, h, l, kr = bk->rows ? bk->rows[k] : k;

			if (nseg == 0)
				mix_seg_begin(io, enc);
			h = mix_code(io, enc, impl, m->hi[kr * 16 + (i >= bl ? buf[i - bl] >> 4 : 0)], 16,
			             byte >> 4, MIX_K_BLK);
			l = mix_code(io, enc, impl, m->lo[kr][h], 16, byte & 15, MIX_K_BLK);
			if (!enc)
				buf[i] = (uint8_t)(h << 4 | l);
			if (++nseg == MIX_SEG_NBYTES) {
				rc = mix_seg_end(s, io, enc, out, olen, cap);
				nseg = 0;
			}
		}
	}
	if (nseg && !rc)
		rc = mix_seg_end(s, io, enc, out, olen, cap);
	*iop = lio;
	return rc;
}

#define MIX_BLOCKS_IMPL(sfx, attr, impl)                                                         \
	attr static int mix_blocks_enc_##sfx(struct mix_state *s, struct mix_io *io,            \
	                                     const struct mix_blk *b, const uint8_t *src,        \
	                                     size_t len, uint8_t *out, size_t *olen, size_t cap) \
	{                                                                                         \
		return mix_blocks_body(s, io, 1, impl, b, (uint8_t *)(uintptr_t)src, len, out,    \
		                       olen, cap);                                                \
	}                                                                                         \
	attr static int mix_blocks_dec_##sfx(struct mix_state *s, struct mix_io *io,            \
	                                     const struct mix_blk *b, uint8_t *dst, size_t len)  \
	{                                                                                         \
		return mix_blocks_body(s, io, 0, impl, b, dst, len, NULL, NULL, 0);               \
	}

MIX_BLOCKS_IMPL(portable, , 0)
#if MIX_HAVE_AVX2
MIX_BLOCKS_IMPL(avx2, MIX_AVX2_ATTR, 1)
#endif

/* The bytes at places [lo, hi) of the blocks of a chunk: gathered from src
 * into q (dir 0), or scattered from q into src (dir 1); returns their
 * count (q NULL: only counts). */
static size_t blk_gather(const struct mix_blk *b, unsigned lo, unsigned hi, uint8_t *src,
                         size_t len, uint8_t *q, int dir)
{
	size_t n = 0, i = 0;

	while (i < len) {
		unsigned k = (unsigned)((b->phase + i) % b->len);
		size_t run;

		if (k < lo || k >= hi) {
			i += k < lo ? lo - k : b->len - k;
			continue;
		}
		run = hi - k < len - i ? hi - k : len - i;
		if (q && dir == 0)
			memcpy(q + n, src + i, run);
		else if (q)
			memcpy(src + i, q + n, run);
		n += run;
		i += run;
	}
	return n;
}

/* One stream of quants at dst: a fast payload of q when that is smaller
 * (*mode 1), else q itself (*mode 0); its length, or -ENOSPC. */
static ssize_t blk_put(struct codec_ctx *ctx, const uint8_t *q, size_t nq, uint8_t *dst,
                       size_t cap, uint8_t *mode)
{
	struct codec_lvl_args qa = {.dtype = CODEC_DTYPE_OTHER};
	ssize_t rc = nq ? fast_encode(ctx, &qa, q, nq, dst, cap) : -ENOSPC;

	*mode = rc > 0;
	if (rc == -ENOSPC) {
		rc = cap < nq ? -ENOSPC : (ssize_t)nq;
		if (rc > 0)
			memcpy(dst, q, nq);
	}
	return rc;
}

/* The nq quants of one stream of mode 0 or 1 (p, plen) into q. */
static int blk_get(struct codec_ctx *ctx, unsigned mode, const uint8_t *p, size_t plen, uint8_t *q,
                   size_t nq)
{
	struct codec_lvl_args qa = {.dtype = CODEC_DTYPE_OTHER};
	ssize_t rc = -EBADMSG;

	if (mode == 0 && plen == nq) {
		if (nq)
			memcpy(q, p, nq);
		rc = 0;
	} else if (mode == 1 && nq && plen) {
		rc = fast_decode(ctx, &qa, p, plen, q, nq);
	}
	return rc < 0 ? (int)rc : 0;
}

/* The known layouts (ggml's block types): block length, head length, the
 * places of the head (bit k: place k) that tell blocks from other bytes
 * (the fp16 scales' high bytes, whose exponents make their high nibbles
 * far more predictable than the quants', and the K-quants' sub-block
 * scales, less so and not in every tensor), the shared head rows and the
 * kind of values (below).  The K-quants' blocks of 256 weights keep their
 * fp16 scales at the end or their sub-block scales at the start: turned
 * here so that the head (sub-block scales and fp16 scales) comes first,
 * which the phase does.  A payload names its layout by block and head
 * length: the decoder finds rows and values here (blk_layout). */
enum { BLK_V_NONE, BLK_V_Q5, BLK_V_Q5K, BLK_V_Q3K, BLK_V_Q6K };

/* Shared head rows: for each head place the place whose rows code it.
 * Q2_K's 16 scale bytes (4-bit scale and min) are one kind; Q4_K's and
 * Q5_K's 12 are three (6-bit scales, 6-bit mins, their low nibbles of
 * the last four); Q6_K's 16 int8 scales one; IQ4_XS's 6 two (2 bytes of
 * high bits, 4 of low nibbles).  Q3_K's (low nibbles, high
 * bits of 16 scales) code better apart in chunks of a small tensor:
 * none.  Simulated heads, 64 KiB chunks: Q2_K 7.13 -> 6.74 bits a byte,
 * Q4_K 7.29 -> 7.18, Q6_K 7.55 -> 7.36. */
static const uint8_t blk_rows_q2k[20] = {0, 1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};
static const uint8_t blk_rows_q4k[16] = {0, 1, 2, 3, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12};
static const uint8_t blk_rows_q6k[18] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 17};
static const uint8_t blk_rows_iq4xs[8] = {0, 1, 2, 2, 4, 4, 4, 4};

static const struct blk_type {
	uint8_t len, head;
	uint32_t fp16_hi, scales;
	const uint8_t *rows; /* shared rows (blk_rows_*), NULL: none */
	uint8_t vkind;       /* BLK_V_*: the quants as values */
} blk_types[] = {
	/* Q4_0: d, 16 bytes of 4-bit quants */
	{18, 2, 0x2, 0, NULL, BLK_V_NONE},
	/* Q4_1: d, m, 16 */
	{20, 4, 0xa, 0, NULL, BLK_V_NONE},
	/* Q5_0: d, 4 bytes of high bits, 16 (the high bits are near random
	 * alone: coded with the quants as values, not as head bytes, whose
	 * contexts would cost their learning) */
	{22, 2, 0x2, 0, NULL, BLK_V_Q5},
	/* Q5_1: d, m, 4, 16 */
	{24, 4, 0xa, 0, NULL, BLK_V_Q5},
	/* Q8_0: d, 32 int8 */
	{34, 2, 0x2, 0, NULL, BLK_V_NONE},
	/* Q8_1: d, s, 32 */
	{36, 4, 0xa, 0, NULL, BLK_V_NONE},
	/* MXFP4: an e8m0 scale (a power of two: an exponent byte), 16 bytes
	 * of e2m1 values */
	{17, 1, 0x1, 0, NULL, BLK_V_NONE},
	/* Q2_K from its d: d, dmin, 16 4-bit scale/min pairs, 64 bytes of
	 * 2-bit quants */
	{84, 20, 0xa, 0xffff0, blk_rows_q2k, BLK_V_NONE},
	/* Q3_K from its scales: 12 bytes of 6-bit scales, d, 32 bytes of high
	 * bits, 64 of 2-bit quants */
	{110, 14, 0x2000, 0xfff, NULL, BLK_V_Q3K},
	/* Q4_K: d, dmin, 12 bytes of 6-bit scales and mins, 128 of 4-bit
	 * quants */
	{144, 16, 0xa, 0xfff0, blk_rows_q4k, BLK_V_NONE},
	/* Q5_K: d, dmin, 12, 32 bytes of high bits, 128 */
	{176, 16, 0xa, 0xfff0, blk_rows_q4k, BLK_V_Q5K},
	/* Q6_K from its scales: 16 int8 scales, d, 128 bytes of low nibbles,
	 * 64 of high bits */
	{210, 18, 0x20000, 0xffff, blk_rows_q6k, BLK_V_Q6K},
	/* IQ4_XS: d, 2 bytes of the scales' high bits, 4 of their low
	 * nibbles, 128 of 4-bit indices into IQ4_NL's 16 values (IQ4_NL
	 * itself is Q4_0's layout) */
	{136, 8, 0x2, 0xfc, blk_rows_iq4xs, BLK_V_NONE},
};
#define BLK_LMAX 210u /* the longest block above */

/* The layout of blocks of len bytes with a head of head bytes, NULL for
 * none known. */
static const struct blk_type *blk_layout(unsigned len, unsigned head)
{
	for (size_t t = 0; t < sizeof(blk_types) / sizeof(blk_types[0]); t++)
		if (blk_types[t].len == len && blk_types[t].head == head)
			return &blk_types[t];
	return NULL;
}

/* The kind of values of b's layout (BLK_V_NONE: its quants are bytes). */
static unsigned blk_vkind(const struct mix_blk *b)
{
	const struct blk_type *ty = blk_layout(b->len, b->head);

	return ty ? ty->vkind : BLK_V_NONE;
}

/* Quants as values (mode 2): where a weight's quant is split over two
 * places of a block (Q5_0 and Q5_1: a high bit in the 32-bit qh; Q5_K: a
 * high bit in qh[32]; Q3_K: in hmask[32]; Q6_K: two high bits in qh[64]),
 * the bytes of each kind look near random on their own (a quant's low
 * nibble is near uniform over the weights whose high bit is 0 and 1
 * together) while the whole quants are not: so the complete blocks'
 * quants are unpacked into one byte a weight, coded together (Q5_0 4.91
 * -> 4.58 bits a weight in order 0, Q6_K 5.76 -> 5.63), and packed again
 * by the decoder.  The kind is the layout's (blk_types; q is the
 * block's quant bytes, after its head, with the K-quants' heads turned to
 * the front). */
static unsigned blk_vcount(unsigned kind)
{
	return kind == BLK_V_Q5 ? 32 : 256;
}

static unsigned blk_vbits(unsigned kind)
{
	return kind == BLK_V_Q3K ? 3 : kind == BLK_V_Q6K ? 6 : 5;
}

/* The weights' quants v of one block's quant bytes q (dir 0), or q of v
 * (dir 1; every v below 2^blk_vbits).  Loops over the 32 bytes of a row
 * of q with the rest fixed: contiguous, branch-free, vectorizable. */
static void blk_values(unsigned kind, uint8_t *q, uint8_t *v, int dir)
{
	if (kind == BLK_V_Q5) { /* qh (le32), qs[16] */
		uint32_t qh = dir ? 0 : (uint32_t)codec_le_get(q, 4);

		for (unsigned j = 0; j < 16; j++) {
			if (dir) {
				q[4 + j] = (uint8_t)((v[j] & 15) | (v[j + 16] & 15) << 4);
				qh |= (uint32_t)(v[j] >> 4) << j | (uint32_t)(v[j + 16] >> 4) << (j + 16);
			} else {
				v[j] = (uint8_t)((q[4 + j] & 15) | (qh >> j & 1) << 4);
				v[j + 16] = (uint8_t)((q[4 + j] >> 4) | (qh >> (j + 16) & 1) << 4);
			}
		}
		if (dir)
			codec_le_put(q, qh, 4);
	} else if (kind == BLK_V_Q5K) { /* qh[32], qs[128] */
		uint8_t *qh = q, *qs = q + 32;

		if (dir)
			memset(qh, 0, 32);
		for (unsigned i = 0; i < 4; i++) {
			uint8_t *a = v + 64 * i, *c = a + 32, *x = qs + 32 * i;

			if (dir) {
				for (unsigned l = 0; l < 32; l++) {
					x[l] = (uint8_t)((a[l] & 15) | (c[l] & 15) << 4);
					qh[l] |= (uint8_t)((a[l] >> 4) << (2 * i) | (c[l] >> 4) << (2 * i + 1));
				}
			} else {
				for (unsigned l = 0; l < 32; l++) {
					a[l] = (uint8_t)((x[l] & 15) | (qh[l] >> (2 * i) & 1) << 4);
					c[l] = (uint8_t)((x[l] >> 4) | (qh[l] >> (2 * i + 1) & 1) << 4);
				}
			}
		}
	} else if (kind == BLK_V_Q3K) { /* hmask[32], qs[64] */
		uint8_t *hm = q, *qs = q + 32;

		if (dir)
			memset(q, 0, 96);
		for (unsigned h = 0; h < 2; h++)
			for (unsigned k = 0; k < 4; k++) {
				uint8_t *a = v + 128 * h + 32 * k, *x = qs + 32 * h;
				const unsigned sh = 2 * k, hb = 4 * h + k;

				if (dir) {
					for (unsigned l = 0; l < 32; l++) {
						x[l] |= (uint8_t)((a[l] & 3) << sh);
						hm[l] |= (uint8_t)((a[l] >> 2) << hb);
					}
				} else {
					for (unsigned l = 0; l < 32; l++)
						a[l] = (uint8_t)((x[l] >> sh & 3) | (hm[l] >> hb & 1) << 2);
				}
			}
	} else { /* Q6_K: ql[128], qh[64] */
		if (dir)
			memset(q, 0, 192);
		for (unsigned h = 0; h < 2; h++)
			for (unsigned k = 0; k < 4; k++) {
				uint8_t *a = v + 128 * h + 32 * k, *x = q + 64 * h + 32 * (k % 2),
				        *y = q + 128 + 32 * h;
				const unsigned sh = 4 * (k / 2), hs = 2 * k;

				if (dir) {
					for (unsigned l = 0; l < 32; l++) {
						x[l] |= (uint8_t)((a[l] & 15) << sh);
						y[l] |= (uint8_t)((a[l] >> 4) << hs);
					}
				} else {
					for (unsigned l = 0; l < 32; l++)
						a[l] = (uint8_t)((x[l] >> sh & 15) | (y[l] >> hs & 3) << 4);
				}
			}
	}
}

/* A chunk's complete blocks: the first at *i0, *n of them. */
static void blk_whole(const struct mix_blk *b, size_t len, size_t *i0, size_t *n)
{
	*i0 = (b->len - b->phase) % b->len;
	*n = *i0 < len ? (len - *i0) / b->len : 0;
}

/* The quant bytes of the partial blocks at a chunk's two ends, gathered
 * into q (dir 0) or scattered from it (dir 1); their count. */
static size_t blk_ends(const struct mix_blk *b, uint8_t *src, size_t len, uint8_t *q, int dir)
{
	struct mix_blk t = *b;
	size_t i0, n, e, k;

	blk_whole(b, len, &i0, &n);
	if (i0 >= len)
		return blk_gather(b, b->head, b->len, src, len, q, dir);
	k = blk_gather(b, b->head, b->len, src, i0, q, dir);
	e = i0 + n * b->len;
	t.phase = 0;
	return k + blk_gather(&t, t.head, t.len, src + e, len - e, q ? q + k : NULL, dir);
}

#define BLK_VAL_HDR 5 /* mode 2: the values stream's mode and length */

/* Mode 2's quant part of a chunk at dst: the values of its complete
 * blocks as one stream, then the quant bytes of its partial blocks as
 * they are; its length, or -ENOSPC when over cap. */
static ssize_t blk_values_put(struct codec_ctx *ctx, const struct mix_blk *b, uint8_t *src,
                              size_t len, uint8_t *dst, size_t cap)
{
	const unsigned kind = blk_vkind(b), nv = blk_vcount(kind);
	size_t i0, n, ne = blk_ends(b, src, len, NULL, 0);
	uint8_t *v, mode;
	ssize_t rc = -ENOSPC;

	blk_whole(b, len, &i0, &n);
	if (cap < BLK_VAL_HDR + ne || n == 0)
		return -ENOSPC;
	if (!(v = malloc(n * nv)))
		return -ENOMEM;
	for (size_t j = 0; j < n; j++)
		blk_values(kind, src + i0 + j * b->len + b->head, v + j * nv, 0);
	rc = blk_put(ctx, v, n * nv, dst + BLK_VAL_HDR, cap - BLK_VAL_HDR - ne, &mode);
	if (rc >= 0) {
		dst[0] = mode;
		codec_le_put(dst + 1, (uint64_t)rc, 4);
		blk_ends(b, src, len, dst + BLK_VAL_HDR + rc, 0);
		rc += BLK_VAL_HDR + (ssize_t)ne;
	}
	free(v);
	return rc;
}

/* Mode 2's quant part p (plen bytes) into the chunk dst. */
static int blk_values_get(struct codec_ctx *ctx, const struct mix_blk *b, const uint8_t *p,
                          size_t plen, uint8_t *dst, size_t len)
{
	const unsigned kind = blk_vkind(b), nv = blk_vcount(kind);
	size_t i0, n, ne = blk_ends(b, dst, len, NULL, 0), vl;
	uint8_t *v = NULL, top = (uint8_t)(1u << blk_vbits(kind));
	int rc = -EBADMSG;

	blk_whole(b, len, &i0, &n);
	if (kind == BLK_V_NONE || n == 0 || plen < BLK_VAL_HDR || p[0] > 1)
		goto out;
	vl = (size_t)codec_le_get(p + 1, 4);
	if (vl > plen - BLK_VAL_HDR || plen - BLK_VAL_HDR - vl != ne)
		goto out;
	rc = -ENOMEM;
	if (!(v = malloc(n * nv)))
		goto out;
	rc = blk_get(ctx, p[0], p + BLK_VAL_HDR, vl, v, n * nv);
	for (size_t j = 0; rc == 0 && j < n * nv; j++)
		if (v[j] >= top)
			rc = -EBADMSG;
	if (rc)
		goto out;
	for (size_t j = 0; j < n; j++)
		blk_values(kind, dst + i0 + j * b->len + b->head, v + j * nv, 1);
	blk_ends(b, dst, len, (uint8_t *)(uintptr_t)(p + BLK_VAL_HDR + vl), 1);
out:
	free(v);
	return rc;
}

#define BLK_HDR 9 /* flags, length, head, phase, quants' mode and strength, head stream's length */
#define BLK_SHARE 4u /* quants' mode byte: the sub-block scales share rows */
/* The head rows' prior strength: 2^BLK_STRENGTH - 1 virtual observations
 * (a first update moves a row by 1/32).  The first version of this way
 * (strength code 0) started at 2, whose first updates move a row by half:
 * the 16 x H rows of the K-quants' 14-20 head bytes saw too few bytes to
 * recover (Q4_K's head cost 8.9 bits a byte, 7.3 now). */
#define BLK_STRENGTH 5u
ssize_t mix_blocks_encode(struct codec_ctx *ctx, struct mix_state *s, const struct mix_blk *b,
                          const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
	struct mix_io io = {0};
	uint8_t *q = NULL, *sp = (uint8_t *)(uintptr_t)src, mode = 0;
	size_t olen = BLK_HDR, hlen, nq = blk_gather(b, b->head, b->len, sp, len, NULL, 0);
	ssize_t rc = -ENOSPC;
	bool bytes_fit;

	if (cap < olen)
		goto out;
	rc = mix_enc_prepare(s);
	if (rc == 0)
		rc = bmodel_rows(s, 16 * b->head, b->head, (1u << BLK_STRENGTH) - 1);
	if (rc)
		goto out;
	io.e.sym = s->sym;
	io.e.cap = MIX_SEG_SYMS;
#if MIX_HAVE_AVX2
	if (s->impl)
		rc = mix_blocks_enc_avx2(s, &io, b, src, len, dst, &olen, cap);
	else
#endif
		rc = mix_blocks_enc_portable(s, &io, b, src, len, dst, &olen, cap);
	if (rc) {
		rc = -ENOSPC;
		goto out;
	}
	hlen = olen - BLK_HDR;
	rc = -ENOMEM;
	if (nq && !(q = malloc(nq)))
		goto out;
	blk_gather(b, b->head, b->len, sp, len, q, 0);
	rc = blk_put(ctx, q, nq, dst + olen, cap - olen, &mode);
	if (rc < 0 && (rc != -ENOSPC || blk_vkind(b) == BLK_V_NONE))
		goto out;
	bytes_fit = rc >= 0;
	if (bytes_fit)
		olen += (size_t)rc;
	if (blk_vkind(b) != BLK_V_NONE && (!bytes_fit || (size_t)rc > BLK_VAL_HDR)) {
		/* the quants as values (into q, whose quant bytes are coded
		 * above), if smaller; also when the bytes did not fit under
		 * cap (a byte way's size, the smaller to keep), the values
		 * may */
		const size_t room = rc >= 0 ? (size_t)rc - 1 : cap - olen;
		const size_t lim = room < nq ? room : nq;

		rc = blk_values_put(ctx, b, sp, len, q, lim);
		if (rc >= 0) {
			memcpy(dst + BLK_HDR + hlen, q, (size_t)rc);
			olen = BLK_HDR + hlen + (size_t)rc;
			mode = 2;
		} else if (rc != -ENOSPC || !bytes_fit) {
			goto out; /* neither fits: the chunk is not coded this way */
		}
	}
	dst[0] = (uint8_t)(MIX_VERSION << 4 | MIX_BYTES_BLK);
	dst[1] = (uint8_t)b->len;
	dst[2] = (uint8_t)b->head;
	dst[3] = (uint8_t)b->phase;
	dst[4] = (uint8_t)(mode | (b->rows ? BLK_SHARE : 0) | BLK_STRENGTH << 4);
	codec_le_put(dst + 5, hlen, 4);
	rc = (ssize_t)olen;
out:
	free(q);
	return rc;
}

ssize_t mix_blocks_decode(struct codec_ctx *ctx, struct mix_state *s, const uint8_t *payload,
                          size_t plen, uint8_t *dst, size_t raw_len)
{
	struct mix_io io = {0};
	struct mix_blk b;
	size_t hlen, nq, rest;
	const uint8_t *p;
	uint8_t *q = NULL;
	unsigned mode, str;
	ssize_t rc = -EBADMSG;

	if (plen < BLK_HDR)
		goto out;
	b = (struct mix_blk){ payload[1], payload[2], payload[3], NULL };
	mode = payload[4] & 3;
	str = payload[4] >> 4;
	hlen = (size_t)codec_le_get(payload + 5, 4);
	if (payload[4] & BLK_SHARE) {
		const struct blk_type *ty = blk_layout(b.len, b.head);

		b.rows = ty ? ty->rows : NULL;
	}
	if (b.len < 2 || b.head < 1 || b.head >= b.len || b.head > MIX_BLK_HEADMAX ||
	    b.phase >= b.len || mode > 2 || (payload[4] & 8) ||
	    ((payload[4] & BLK_SHARE) && !b.rows) || str == 1 || str > 8 || hlen > plen - BLK_HDR)
		goto out;
	p = payload + BLK_HDR + hlen;
	rest = plen - BLK_HDR - hlen;
	rc = bmodel_rows(s, 16 * b.head, b.head, str ? (1u << str) - 1 : 2);
	if (rc == 0)
		rc = mix_rdec_open(s, &io.d, payload + BLK_HDR, hlen);
	if (rc)
		goto out;
#if MIX_HAVE_AVX2
	if (s->impl)
		rc = mix_blocks_dec_avx2(s, &io, &b, dst, raw_len);
	else
#endif
		rc = mix_blocks_dec_portable(s, &io, &b, dst, raw_len);
	if (rc)
		goto out;
	rc = -EBADMSG;
	if (io.d.p != io.d.end)
		goto out;
	if (mode == 2) {
		rc = blk_values_get(ctx, &b, p, rest, dst, raw_len);
	} else {
		nq = blk_gather(&b, b.head, b.len, dst, raw_len, NULL, 0);
		rc = -ENOMEM;
		if (nq && !(q = malloc(nq)))
			goto out;
		rc = blk_get(ctx, mode, p, rest, q, nq);
		if (rc == 0)
			blk_gather(&b, b.head, b.len, dst, raw_len, q, 1);
	}
	if (rc == 0)
		rc = (ssize_t)raw_len;
out:
	free(q);
	return rc;
}

#define BLK_LONG 64u   /* the K-quants' super-blocks are this long or longer */
#define MIX_BLK_SAMPLE 8192u /* bytes looked at, at least ... */
#define MIX_BLK_MINBLOCKS 64u /* ... so many blocks (half that in a first look) */
/* bits * 256 a sampled byte the heads' high nibbles must save (the
 * K-quants': over the floor below) */
#define MIX_BLK_GAIN_Q8 5u
#define MIX_BLK_GAIN_K_Q8 2u

/* Entropy (bits * 256, in all) of n samples of 16 values counted in h,
 * with the Miller-Madow correction of a plug-in estimate's bias ((k - 1) /
 * (2 ln 2) bits for k values seen): small samples of random bytes must
 * not look more predictable than the pooled ones. */
static uint64_t blk_entropy_q8(const uint32_t *h, uint32_t n)
{
	unsigned k = 0;

	for (unsigned j = 0; j < 16; j++)
		k += h[j] != 0;
	return n ? mix_entropy_q8(h, 16, n) + (k ? (k - 1) * 185u : 0) : 0;
}

/* High-nibble counts of bytes at each place of a block, and pooled by
 * the place's offset in a 2- or 4-byte element (g). */
struct blk_hist {
	uint16_t h[BLK_LMAX][16]; /* counts of a place: at most 13440 / 18 */
	uint32_t pool[4][16], cnt[BLK_LMAX], pcnt[4];
};

static void blk_count(const uint8_t *src, size_t n, unsigned bl, unsigned g, struct blk_hist *c)
{
	size_t i = 0;

	/* the rows of this length only (the struct holds the longest) */
	memset(c->h, 0, bl * sizeof(c->h[0]));
	memset(c->pool, 0, sizeof(c->pool));
	memset(c->pcnt, 0, sizeof(c->pcnt));
	for (; i + bl <= n; i += bl)
		for (unsigned k = 0; k < bl; k++)
			c->h[k][src[i + k] >> 4]++;
	for (unsigned k = 0; k < bl; k++) {
		c->cnt[k] = (uint32_t)(n / bl + (k < n - i));
		c->pcnt[k % g] += c->cnt[k];
	}
	for (unsigned k = 0; i < n; k++, i++)
		c->h[k][src[i] >> 4]++;
	for (unsigned r = 0; r < bl; r++)
		for (unsigned j = 0; j < 16; j++)
			c->pool[r % g][j] += c->h[r][j];
}

/* How many of a chunk's len bytes are looked at for blocks of bl bytes:
 * base, or blocks blocks if more, or the chunk. */
static size_t blk_sample(size_t len, unsigned bl, size_t base, size_t blocks)
{
	size_t n = (size_t)bl * blocks > base ? (size_t)bl * blocks : base;

	return len < n ? len : n;
}

/* The layout of the most gain a sampled byte, over MIX_BLK_GAIN_Q8, among
 * the layouts of mask (bit t: blk_types[t]). */
int mix_bytes_block(const uint8_t *src, size_t len, uint32_t mask, struct mix_blk *b)
{
	uint64_t best = 0, best_n = 1;
	int found = 0;

	for (size_t t = 0; t < sizeof(blk_types) / sizeof(blk_types[0]); t++) {
		const unsigned bl = blk_types[t].len, g = bl % 4 ? 2 : 4;
		const size_t n = blk_sample(len, bl, MIX_BLK_SAMPLE, MIX_BLK_MINBLOCKS);
		struct blk_hist c;
		uint64_t er[BLK_LMAX], ep[4];

		if (!(mask >> t & 1) || n < (size_t)bl * MIX_BLK_MINBLOCKS / 2)
			continue;
		blk_count(src, n, bl, g, &c);
		for (unsigned r = 0; r < bl; r++) {
			uint32_t h[16];

			for (unsigned j = 0; j < 16; j++)
				h[j] = c.h[r][j];
			er[r] = blk_entropy_q8(h, c.cnt[r]);
		}
		/* the baseline of a place: the high nibbles of every place at the
		 * same offset in a 2- or 4-byte element (floats and integers
		 * differ by byte there, blocks or not) */
		for (unsigned r = 0; r < g; r++)
			ep[r] = blk_entropy_q8(c.pool[r], c.pcnt[r]);
		/* the head's first byte at place r0: the gain of its fp16 high
		 * bytes over their baselines, and half the gain of its
		 * sub-block scales; for the K-quants' long blocks over half a
		 * bit a sampled byte at each place (64 samples of a place: the
		 * quants' places gain up to 0.5 bit by chance, which would
		 * draw the head off its place).  The head's place is the one
		 * whose fp16 high bytes gain most, the scales (at 1/16 of
		 * their weight) breaking ties: Q6_K's and Q3_K's single fp16 scale
		 * must pin it against their high-bit bytes, which gain as
		 * much as scales in some tensors (at an equal weight, 17 of
		 * 130 Q6_K chunks of the corpus had the head misplaced). */
		uint64_t gain_t = 0, pin_t = 0;
		unsigned r_t = 0;

		for (unsigned r0 = 0; r0 < bl; r0++) {
			uint64_t f16 = 0, sc = 0;

			for (unsigned k = 0; k < blk_types[t].head; k++) {
				unsigned rk = (r0 + k) % bl;
				uint64_t base = c.pcnt[rk % g] ? ep[rk % g] * c.cnt[rk] / c.pcnt[rk % g] : 0;

				if (bl >= BLK_LONG)
					base = base > c.cnt[rk] * 128u ? base - c.cnt[rk] * 128u : 0;
				if ((blk_types[t].fp16_hi >> k & 1) && base > er[rk])
					f16 += base - er[rk];
				if ((blk_types[t].scales >> k & 1) && base > er[rk])
					sc += base - er[rk];
			}
			if (r0 == 0 || 4 * f16 + sc / 4 > pin_t) {
				pin_t = 4 * f16 + sc / 4;
				gain_t = f16 + sc / 2;
				r_t = r0;
			}
		}
		if (gain_t > n * (bl >= BLK_LONG ? MIX_BLK_GAIN_K_Q8 : MIX_BLK_GAIN_Q8) &&
		    (!found || gain_t * best_n > best * n)) {
			best = gain_t;
			best_n = n;
			*b = (struct mix_blk){ bl, blk_types[t].head, (bl - r_t) % bl, blk_types[t].rows };
			found = 1;
		}
	}
	return found;
}

/* A first look for blocks in bytes of order-0 entropy near 8 bits (Q4_1
 * of near-uniform weights, but mostly random or compressed bytes, every
 * chunk stored raw): in the first 2 KiB, or 16 blocks of the K-quants, is
 * some place of a block of a known length at least twice (the K-quants'
 * 84-210 places, with fewer samples each: four times) as predictable as
 * the places at its offset in a 2- or 4-byte element (collision
 * probabilities, sums of squared counts: no logarithms)?  Their fp16
 * scales' high nibbles take one or two values, random bytes' sixteen. */
uint32_t mix_bytes_block_quick(const uint8_t *src, size_t len)
{
	uint32_t mask = 0;

	for (size_t t = 0; t < sizeof(blk_types) / sizeof(blk_types[0]); t++) {
		const unsigned bl = blk_types[t].len, g = bl % 4 ? 2 : 4, f = bl < BLK_LONG ? 2 : 4;
		const size_t mb = bl < BLK_LONG ? MIX_BLK_MINBLOCKS / 2 : MIX_BLK_MINBLOCKS / 4,
		             n = blk_sample(len, bl, MIX_BLK_SAMPLE / 4, mb);
		struct blk_hist c;
		uint64_t sq[BLK_LMAX] = {0}, psq[4] = {0};

		if (n < (size_t)bl * mb)
			continue;
		blk_count(src, n, bl, g, &c);
		for (unsigned r = 0; r < bl; r++)
			for (unsigned j = 0; j < 16; j++)
				sq[r] += (uint64_t)c.h[r][j] * c.h[r][j];
		for (unsigned r = 0; r < g; r++)
			for (unsigned j = 0; j < 16; j++)
				psq[r] += (uint64_t)c.pool[r][j] * c.pool[r][j];
		for (unsigned r = 0; r < bl; r++)
			if (sq[r] * c.pcnt[r % g] * c.pcnt[r % g] >= f * psq[r % g] * c.cnt[r] * c.cnt[r]) {
				mask |= 1u << t;
				break;
			}
	}
	return mask;
}

bool mix_bytes_blocks(const uint8_t *src, size_t len)
{
	struct mix_blk b;

	return mix_bytes_block(src, len, MIX_BLK_ALL, &b) == 1;
}

/* uint16 token ids: 1 (their high bytes are few), int32: 2, text: 0.  The
 * order-0 entropy saved by one histogram per phase, in bits * 256, must
 * reach len * MIX_STRIDE_Q8, and 5/4 of a smaller stride's. */
#define MIX_STRIDE_Q8 64
unsigned mix_bytes_stride(const uint8_t *src, size_t len, uint64_t *h0)
{
	uint32_t h4[4][256] = {{0}}, h2[2][256] = {{0}}, h1[256] = {0};
	uint64_t e[3] = {0}, gain = 0;
	unsigned best = 0;

	for (size_t i = 0; i < len; i++)
		h4[i & 3][src[i]]++;
	for (unsigned v = 0; v < 256; v++) {
		h2[0][v] = h4[0][v] + h4[2][v];
		h2[1][v] = h4[1][v] + h4[3][v];
		h1[v] = h2[0][v] + h2[1][v];
	}
	e[0] = mix_entropy_q8(h1, 256, len);
	*h0 = e[0];
	for (unsigned p = 0; p < 2; p++)
		e[1] += mix_entropy_q8(h2[p], 256, (len + 1 - p) / 2);
	for (unsigned p = 0; p < 4; p++)
		e[2] += mix_entropy_q8(h4[p], 256, (len + 3 - p) / 4);
	for (unsigned sh = 1; sh <= MIX_SHMAX; sh++)
		if (e[0] > e[sh] && e[0] - e[sh] >= (uint64_t)len * MIX_STRIDE_Q8 &&
		    e[0] - e[sh] > gain + gain / 4) {
			gain = e[0] - e[sh];
			best = sh;
		}
	return best;
}

bool mix_bytes_text(const uint8_t *src, size_t len)
{
	uint64_t h0;

	return mix_bytes_stride(src, len, &h0) == 0 && h0 < (uint64_t)len * MIX_GATE_Q8;
}

/* Estimated cost (bits * 256) of the high nibbles under nctx contexts with
 * counts c: the static conditional entropy plus a learning cost of (k - 1)/2
 * log2(n + 1) bits per context that saw n nibbles of k values. */
static uint64_t nib_cost_q8(const uint32_t (*c)[16], unsigned nctx)
{
	uint64_t bits = 0;

	for (unsigned x = 0; x < nctx; x++) {
		uint32_t n = 0, k = 0;

		for (unsigned j = 0; j < 16; j++) {
			n += c[x][j];
			k += c[x][j] != 0;
		}
		if (n)
			bits += mix_entropy_q8(c[x], 16, n) +
			        ((uint64_t)(k - 1) * mix_log2_q16(n + 1) >> 9);
	}
	return bits;
}

/* Another way (num, sh) into s->bout, kept in dst when smaller than the n0
 * bytes there (-ENOSPC: none yet): the length dst now holds, -ENOSPC, or
 * another negative errno. */
static ssize_t bytes_try_way(struct mix_state *s, int num, unsigned sh, const uint8_t *src,
                             size_t len, uint8_t *dst, size_t cap, ssize_t n0)
{
	ssize_t n1 = codec_buf_reserve(&s->bout, &s->bout_cap, cap);

	if (n1 == 0)
		n1 = bytes_encode_way(s, num, sh, src, len, s->bout, n0 > 0 ? (size_t)n0 : cap);
	if (n1 < 0)
		return n1 == -ENOSPC ? n0 : n1;
	memcpy(dst, s->bout, (size_t)n1);
	return n1;
}

ssize_t mix_bytes_encode(struct mix_state *s, const uint8_t *src, size_t len, unsigned sh,
                         uint64_t h0, uint8_t *dst, size_t cap)
{
	uint32_t ca[256][16] = {{0}}, cb[16][16] = {{0}};
	ssize_t n0;
	unsigned prev = 0;
	int num;

	if (cap < 9)
		return -ENOSPC;
	/* the high nibbles under the previous byte (the first way's context)
	 * and under its high nibble (the second's) */
	for (size_t i = 0; i < len; i++) {
		ca[prev][src[i] >> 4]++;
		prev = src[i];
	}
	for (unsigned p = 0; p < 256; p++)
		for (unsigned j = 0; j < 16; j++)
			cb[p >> 4][j] += ca[p][j];
	/* The second way when the previous byte tells no more than its high
	 * nibble (numbers); else the first, and with high order-0 entropy
	 * both, keeping the smaller. */
	num = nib_cost_q8((const uint32_t (*)[16])ca, 256) > nib_cost_q8((const uint32_t (*)[16])cb, 16);
	n0 = bytes_encode_way(s, num, 0, src, len, dst, cap);
	if (n0 < 0 && n0 != -ENOSPC)
		return n0;
	/* text over elements (token ids): the phase in the context too, the
	 * smaller kept */
	if (sh)
		n0 = bytes_try_way(s, 0, sh, src, len, dst, cap, n0);
	if ((n0 < 0 && n0 != -ENOSPC) || num || h0 < (uint64_t)len * MIX_NUM_Q8)
		return n0;
	return bytes_try_way(s, 1, 0, src, len, dst, cap, n0);
}

ssize_t mix_bytes_decode(struct mix_state *s, const uint8_t *payload, size_t plen, uint8_t *dst,
                         size_t raw_len)
{
	struct mix_io io = {0};
	const int elem = (payload[0] & 15) == MIX_BYTES_ELEM;
	const int num = !elem && (payload[0] & MIX_PF_NUM);
	const size_t hl = 1 + (size_t)elem;
	int rc = elem ? mix_payload_stride(payload, plen) : 0;
	unsigned sh;

	if (rc < 0)
		return rc;
	sh = (unsigned)rc;
	rc = mix_bytes_prepare(s, sh);
	if (rc)
		return rc;
	rc = mix_rdec_open(s, &io.d, payload + hl, plen - hl);
	if (rc)
		return rc;
#if MIX_HAVE_AVX2
	if (s->impl)
		rc = mix_bytes_dec_avx2(s, &io, num, sh, dst, raw_len);
	else
#endif
		rc = mix_bytes_dec_portable(s, &io, num, sh, dst, raw_len);
	if (rc)
		return rc;
	if (io.d.p != io.d.end)
		return -EBADMSG;
	return (ssize_t)raw_len;
}
