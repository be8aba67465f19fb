/*
 * mix.c - CODEC_LEVEL_MIX: adaptive context-model coder for float tensors
 * (bytes: mix_bytes.c).
 *
 * Payload layout: FORMAT.md section 4.  A float element is coded as fields:
 *
 *   exponent  one symbol of a 32-leaf alphabet (the chunk's exponents in up
 *             to two windows, leaf 0 = zero or escape), predicted by an
 *             adaptive distribution selected by a scale context: the mean
 *             of the running-mean leaf and the column-mean leaf (the
 *             elements above in the tensor, when the row length is known),
 *             in half-leaf steps.  One symbol decode, no binary tree.
 *   mantissa  the top MIX_MTB bits as one symbol under the leaf; sign and
 *             the remaining bits are plain bits (noise in trained weights:
 *             modelling them loses).
 *
 * Why no logistic mixer: merging the running-mean and column predictors
 * into one scale context and coding the leaf as one symbol of an adaptive
 * distribution costs 2.69 bits per bf16 exponent where the binary
 * context-mixing coder it replaces spent 2.67, at one coded symbol per
 * field instead of ~5 mixed binary decisions (4-5x faster); the rest of
 * the format (two exponent windows, subnormals, constant signs) more than
 * makes up for it.
 *
 * Exact zeros, escaped exponents, dequantized (few-valued) tensors, low
 * mantissa bits that are zero in the whole chunk (bf16 or fp16 widened to
 * fp32), chunks whose elements share one sign and elements equal or close
 * to a reference chunk have their own paths.  Every chunk starts from fresh models; the exponent distributions
 * start from priors built from the chunk's leaf frequencies (sent in the
 * header) and a neighbourhood kernel measured offline.  All model
 * arithmetic is integer, so every build decodes every frame alike.
 *
 * The hot loops are one body (mix_float_body) instantiated portable and,
 * on x86-64, for AVX2; the state picks one when it is created.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_i.h"
#include "codec/mix_i.h"
#include "codec/mix_model_i.h"

#ifdef MIX_STATS /* tuning builds only: bits per field, single-threaded use */
#include <math.h>
double mix_stats[8];
static size_t mix_stat_pos;
static void mix_stat(const struct mix_io *io, int f)
{
	for (size_t k = mix_stat_pos; k < io->e.n; k++)
		mix_stats[f] += 15 - log2((double)(io->e.sym[k] >> 16));
	mix_stat_pos = io->e.n;
}
#define MIX_STAT(io, enc, f) ((enc) ? mix_stat(io, f) : (void)0)
#else
#define MIX_STAT(io, enc, f) ((void)0)
#endif

/* ---- shared helpers -------------------------------------------------------- */

uint64_t mix_entropy_q8(const uint32_t *hist, unsigned nsym, uint64_t n)
{
	uint64_t bits = 0;
	uint32_t ln;

	if (!n)
		return 0;
	ln = mix_log2_q16(n);
	for (unsigned i = 0; i < nsym; i++)
		if (hist[i])
			bits += (uint64_t)hist[i] * (ln - mix_log2_q16(hist[i]));
	return bits >> 8;
}

int mix_seg_emit(struct mix_state *s, size_t nsym, uint8_t *out, size_t *olen, size_t cap)
{
	uint8_t *end = s->seg + MIX_SEG_BYTES, *wp = mix_renc_flush(s->sym, nsym, end);
	size_t n = (size_t)(end - wp);

#ifdef MIX_STATS
	mix_stat_pos = 0;
#endif
	if (cap < *olen || cap - *olen < n)
		return -ENOSPC;
	memcpy(out + *olen, wp, n);
	*olen += n;
	return 0;
}

int mix_rdec_open(struct mix_state *s, struct mix_rdec *d, const uint8_t *stream, size_t n)
{
	if (s->rbuf_cap < n + MIX_RPAD) {
		free(s->rbuf);
		s->rbuf_cap = 0;
		/* zeroed once: what a corrupt stream reads past its end is
		 * deterministic (and it fails anyway) */
		s->rbuf = calloc(1, n + MIX_RPAD);
		if (!s->rbuf)
			return -ENOMEM;
		s->rbuf_cap = n + MIX_RPAD;
	}
	if (n)
		memcpy(s->rbuf, stream, n);
	d->p = s->rbuf;
	d->end = s->rbuf + n;
	return 0;
}

/* ---- float model ---------------------------------------------------------- */

/* P(leaf - context leaf = d) per mille for |d| = 0..12, measured on TF.js
 * weights (bf16 and fp16 agree within a few per mille). */
static const uint16_t mix_prior_delta[13] = {190, 160, 105, 62, 34, 18, 9, 4, 2, 1, 1, 1, 1};
/* The same around a reference element's leaf (REF). */
static const uint16_t mix_prior_ref[4] = {700, 120, 15, 3};

/* Element layout of a float dtype. */
struct mix_layout {
	unsigned esz, ebits, mbits;
};

static void mix_layout_get(int dtype, struct mix_layout *l)
{
	switch (dtype) {
	case CODEC_DTYPE_BF16:
		*l = (struct mix_layout){2, 8, 7};
		break;
	case CODEC_DTYPE_FP16:
		*l = (struct mix_layout){2, 5, 10};
		break;
	default:
		*l = (struct mix_layout){4, 8, 23};
		break;
	}
}

/* Elements are little-endian; so is the host (FORMAT.md section 6). */
static inline uint32_t mix_load(const uint8_t *p, unsigned esz)
{
	if (esz == 2) {
		uint16_t v;

		memcpy(&v, p, 2);
		return v;
	} else {
		uint32_t v;

		memcpy(&v, p, 4);
		return v;
	}
}

static inline void mix_store(uint8_t *p, uint32_t v, unsigned esz)
{
	if (esz == 2) {
		uint16_t h = (uint16_t)v;

		memcpy(p, &h, 2);
	} else {
		memcpy(p, &v, 4);
	}
}

/* Per-chunk parameters, from the payload header (both sides). */
struct mix_fpar {
	unsigned flags, lowz, delta, blo, nlo, bhi, nhi;
	uint8_t plen[MIX_NLEAF];
};

/* Extended exponent of element v (MIX_XMAX above). */
static inline unsigned mix_xexp(uint32_t v, unsigned mbits, unsigned emask)
{
	unsigned e = (v >> mbits) & emask;
	uint32_t m = v & ((1u << mbits) - 1);

	if (e)
		return e + mbits;
	return m ? 32u - (unsigned)__builtin_clz(m) : 0;
}

/* Mantissa bits below the leading one of an element with extended
 * exponent x (x >= 1). */
static inline unsigned mix_xbits(unsigned x, unsigned mbits)
{
	return x > mbits ? mbits : x - 1;
}

/* Descriptor of the elements with extended exponent x (x >= 1). */
static struct mix_leafd mix_leafd_make(unsigned x, unsigned mbits, unsigned emask, unsigned lowz)
{
	struct mix_leafd d;
	unsigned nb = mix_xbits(x, mbits), f = nb > lowz ? nb - lowz : 0;

	d.t = (uint8_t)(f < MIX_MTB ? f : MIX_MTB);
	d.np = (uint8_t)(f - d.t);
	d.mtsh = (uint8_t)(nb - d.t);
	d.vbase = x > mbits ? ((x - mbits) & emask) << mbits : 1u << nb;
	d.lowz = (uint8_t)lowz;
	return d;
}

/* Leaf maps from the windows: leaves 1..nlo are blo.., then nhi leaves
 * from bhi; every other extended exponent but 0 escapes. */
static void mix_leafmap(struct mix_fmodel *m, const struct mix_layout *l, const struct mix_fpar *fp)
{
	memset(m->x2l, 0, sizeof(m->x2l));
	memset(m->l2x, 0, sizeof(m->l2x));
	for (unsigned i = 0; i < fp->nlo; i++) {
		m->x2l[fp->blo + i] = (uint8_t)(1 + i);
		m->l2x[1 + i] = (uint16_t)(fp->blo + i);
	}
	for (unsigned i = 0; i < fp->nhi; i++) {
		m->x2l[fp->bhi + i] = (uint8_t)(1 + fp->nlo + i);
		m->l2x[1 + fp->nlo + i] = (uint16_t)(fp->bhi + i);
	}
	memset(&m->ld[0], 0, sizeof(m->ld[0]));
	m->ld[0].lowz = (uint8_t)fp->lowz;
	for (unsigned j = 1; j < MIX_NLEAF; j++)
		m->ld[j] = m->l2x[j] ? mix_leafd_make(m->l2x[j], l->mbits, (1u << l->ebits) - 1, fp->lowz)
		                    : m->ld[0];
}

/* Per-chunk model reset. */
static void mix_fmodel_reset(struct mix_fmodel *m, const struct mix_layout *l,
                             const struct mix_fpar *fp, size_t row, size_t nel, unsigned tree)
{
	uint32_t mass[MIX_NLEAF], w[32];
	uint16_t kh[25];
	unsigned nx = l->mbits - fp->lowz;

	for (unsigned d = 0; d < 25; d++)
		kh[d] = d & 1 ? (uint16_t)((mix_prior_delta[d / 2] + mix_prior_delta[d / 2 + 1]) / 2)
		              : mix_prior_delta[d / 2];
	for (unsigned j = 0; j < MIX_NLEAF; j++)
		mass[j] = fp->plen[j] ? 1u << (15 - fp->plen[j]) : 0;
	/* scale context q is centred on leaf q / 2 */
	for (unsigned q = 0; q < MIX_NQ; q++) {
		for (unsigned j = 0; j < MIX_NLEAF; j++) {
			unsigned d = 2 * j > q ? 2 * j - q : q - 2 * j;

			w[j] = mass[j] * ((d < 25 ? kh[d] : 0) + MIX_PRIOR_FLOOR);
		}
		mix_row_init(m->exp[q], MIX_NLEAF, w, MIX_N0_EXP);
	}
	if (fp->flags & MIX_PF_REF)
		for (unsigned c = 0; c < MIX_NLEAF; c++) {
			for (unsigned j = 0; j < MIX_NLEAF; j++) {
				unsigned d = j > c ? j - c : c - j;

				w[j] = (mass[j] ? mass[j] : 1) * ((d < 4 ? mix_prior_ref[d] : 0) + 1);
			}
			mix_row_init(m->expr[c], MIX_NLEAF, w, MIX_N0_EXP);
		}
	for (unsigned j = 0; j < 32; j++)
		w[j] = j <= nx;
	if (fp->delta) {
		for (unsigned c = 0; c < MIX_NLEAF; c++)
			mix_row_init(m->dn[c], 32, w, 2);
		for (unsigned n = 0; n < 33; n++)
			mix_bin_init(m->db[n], MIX_PTOT / 2, 2);
	}
	for (unsigned c = 0; c < MIX_NLEAF; c++) {
		mix_row_uniform(m->man[c], 1u << m->ld[c].t, 2);
		if (fp->flags & MIX_PF_REF)
			mix_row_init(m->xl[c], 32, w, 2);
	}
	for (unsigned b = 0; b < MIX_B_COUNT; b++)
		mix_bin_init(m->bin[b], MIX_PTOT / 2, 2);
	mix_bin_init(m->bin[MIX_B_ESC], MIX_PTOT - 2048, 2); /* leaf 0 is mostly zero */
	mix_bin_init(m->bin[MIX_B_ESC + 1], MIX_PTOT - 2048, 2);
	if (row) {
		size_t n = row < nel ? row : nel;

		for (size_t i = 0; i < n; i++)
			m->col[i] = -1;
	}
	if ((fp->flags & MIX_PF_SPARSE) && tree) {
		mix_bin_init(m->sv[0][0], MIX_PTOT / 2, 0);
		for (unsigned j = 1; j < 2048; j++)
			memcpy(m->sv[0][j], m->sv[0][0], sizeof(m->sv[0][0]));
		for (unsigned c = 1; c < MIX_NLEAF; c++)
			memcpy(m->sv[c], m->sv[0], sizeof(m->sv[0]));
	} else if (fp->flags & MIX_PF_SPARSE) {
		/* many identical rows: one built, the others copied */
		const unsigned nc = l->mbits + 1 > 8 ? 1u << (l->mbits + 1 - 8) : 1;

		mix_row_uniform(m->sa[0], 16, 0);
		for (unsigned c = 1; c < MIX_NLEAF; c++)
			memcpy(m->sa[c], m->sa[0], sizeof(m->sa[0]));
		for (unsigned c = 0; c < MIX_NLEAF; c++)
			for (unsigned j = 0; j < 16; j++)
				memcpy(m->sb[c][j], m->sa[0], sizeof(m->sa[0]));
		if (nc > 1) {
			mix_row_uniform(m->sc[0][0], nc, 0);
			for (unsigned j = 1; j < 256; j++)
				memcpy(m->sc[0][j], m->sc[0][0], sizeof(m->sc[0][0]));
			for (unsigned c = 1; c < MIX_NLEAF; c++)
				memcpy(m->sc[c], m->sc[0], sizeof(m->sc[0]));
		}
	}
}

/* Series coding, DELTA kind: the element as a difference of order keys
 * from the reference element (B = element bits - lowz; keys make the
 * sign-magnitude values of B bits monotone, so weights that move a little
 * move their keys a little, across binades too).  The zigzagged difference
 * z is coded as its bit length (one symbol under the reference's leaf),
 * the bit below the top (binary, under the length) and plain bits.
 * Returns the element (the encoder's own v); a decoded length the encoder
 * never writes (more than B bits) sets *bad. */
static inline __attribute__((always_inline)) uint32_t
mix_delta_code(struct mix_fmodel *m, struct mix_io *io, const int enc, const int impl,
               unsigned B, unsigned lowz, uint32_t v, uint32_t rv, unsigned lr, unsigned *bad)
{
	const uint32_t bm = B >= 32 ? ~0u : (1u << B) - 1, sb = 1u << (B - 1);
	const uint32_t rw = (rv >> lowz) & bm, kr = rw & sb ? ~rw & bm : rw | sb;
	uint32_t z = 0, d, k, w;
	unsigned n = 0, ns;

	if (enc) {
		w = (v >> lowz) & bm;
		k = w & sb ? ~w & bm : w | sb;
		d = (k - kr) & bm;
		z = ((d << 1) ^ (d & sb ? bm : 0)) & bm;
		n = z ? 32u - (unsigned)__builtin_clz(z) : 0;
	}
	ns = mix_code(io, enc, impl, m->dn[lr], 32, n < 31 ? n : 31, MIX_K_MAN);
	n = ns < 31 ? ns : 31 + mix_code_plain(io, enc, n - 31, 1);
	if (!enc && n > B)
		*bad = 1;
	if (n >= 2) {
		uint32_t b1 = mix_code_bin(io, enc, m->db[n], (z >> (n - 2)) & 1, MIX_K_BIN);
		uint32_t low = mix_code_plain(io, enc, z & ((1u << (n - 2)) - 1), n - 2);

		z = 1u << (n - 1) | b1 << (n - 2) | low;
	} else {
		z = n;
	}
	if (enc)
		return v;
	d = (z >> 1) ^ (z & 1 ? bm : 0);
	k = (kr + d) & bm;
	w = k & sb ? k & ~sb : ~k & bm;
	return w << lowz;
}

/* Per-chunk constants of the element loop. */
struct mix_fargs {
	struct mix_layout l;
	unsigned flags, lowz, delta;
	unsigned sbits;  /* 1: signs are plain bits, 0: constant (SIGNC) */
	uint32_t sconst; /* the constant sign, in place */
	size_t phase, nel, nref, row;
	const uint8_t *ref;
	int avg0; /* initial running mean leaf, 8.8 */
	unsigned tree; /* decoder: SPARSE values as a binary tree (before 4b5f757) */
};

/* The element loop for both directions.  Encoder: buf is the source, the
 * rANS segments go to out[*olen..cap).  Decoder: buf is the destination.
 * Returns 0, -ENOSPC (encoder: out is full) or -EBADMSG (decoder: a
 * segment did not end where it must). */
static inline __attribute__((always_inline)) int
mix_float_body(struct mix_state *s, struct mix_io *iop, const int enc, const int impl,
               const int full, const int dt, const struct mix_fargs *fa, uint8_t *buf, size_t len,
               uint8_t *out, size_t *olen, size_t cap)
{
	/* a local copy, so that the coder state stays in registers (stores
	 * through the uint8_t buffer could alias *iop) */
	struct mix_io lio = *iop, *io = &lio;
	struct mix_fmodel *m = s->fm;
	/* dt: a float dtype makes the layout compile-time constant, 0 reads it */
	const unsigned esz = dt == CODEC_DTYPE_FP32 ? 4 : dt ? 2 : fa->l.esz;
	const unsigned ebits = dt == CODEC_DTYPE_FP16 ? 5 : dt ? 8 : fa->l.ebits;
	const unsigned mbits = dt == CODEC_DTYPE_BF16   ? 7
	                       : dt == CODEC_DTYPE_FP16 ? 10
	                       : dt == CODEC_DTYPE_FP32 ? 23
	                                                : fa->l.mbits;
	const unsigned emask = (1u << ebits) - 1, sshift = esz * 8 - 1;
	const uint32_t mmask = (1u << mbits) - 1;
	const unsigned sbits = fa->sbits;
	const uint32_t sconst = fa->sconst;
	/* full = 0: the common case, no reference and not sparse; 2: every
	 * element a DELTA against the reference (nothing else is coded, so the
	 * running and column means, which only elements without a reference
	 * read, are not kept) */
	const int dall = full == 2;
	const unsigned sparse = full && (fa->flags & MIX_PF_SPARSE);
	const size_t nel = fa->nel, nref = full ? fa->nref : 0, row = fa->row;
	const size_t seg = full ? MIX_SEG_FULL : MIX_SEG_FAST;
	uint8_t *el = buf + fa->phase;
	int avg = fa->avg0, rc = 0;
	/* decoder: a field the encoder never writes (it would alias once
	 * masked into the element, so a flipped bit could pass unnoticed) */
	unsigned peq = 0, bad = 0, used = 0;
	size_t c = 0;

	/* loose bytes before the first and after the last element: plain
	 * (the encoder never writes to buf: it may be read-only) */
	for (size_t i = 0; i < fa->phase; i++) {
		uint32_t b = mix_code_plain(io, enc, enc ? buf[i] : 0, 8);

		if (!enc)
			buf[i] = (uint8_t)b;
	}

	for (size_t i0 = 0; i0 < nel && !rc; i0 += seg) {
		const size_t i1 = nel - i0 > seg ? i0 + seg : nel;

		mix_seg_begin(io, enc);
		for (size_t i = i0; i < i1; i++) {
			uint32_t v = enc ? mix_load(el + i * esz, esz) : 0, rv = 0;

			if (dall) {
				rv = mix_load(fa->ref + i * esz, esz);
				v = mix_delta_code(m, io, enc, impl, esz * 8 - fa->lowz, fa->lowz, v,
				                   rv, m->x2l[mix_xexp(rv, mbits, emask)], &bad);
				MIX_STAT(io, enc, 4);
				if (!enc)
					mix_store(el + i * esz, v, esz);
				continue;
			}

			unsigned x = enc ? mix_xexp(v, mbits, emask) : 0, leaf, rx = MIX_XMAX;
			int cm = row ? m->col[c] : avg;
			struct mix_leafd ld;

			if (cm < 0)
				cm = avg;
			if (i < nref) {
				unsigned y, lr;

				rv = mix_load(fa->ref + i * esz, esz);
				rx = mix_xexp(rv, mbits, emask);
				lr = m->x2l[rx];
				if (fa->delta) {
					v = mix_delta_code(m, io, enc, impl, esz * 8 - fa->lowz, fa->lowz,
					                   v, rv, lr, &bad);
					leaf = m->x2l[mix_xexp(v, mbits, emask)];
					MIX_STAT(io, enc, 4);
					goto next;
				}
				/* series coding: most elements of a checkpoint may not move */
				y = mix_code_bin(io, enc, m->bin[MIX_B_EQ + peq], v == rv, MIX_K_BIN);
				MIX_STAT(io, enc, 4);
				peq = (peq * 2 + y) & 3;
				if (y) {
					v = rv;
					leaf = lr;
					goto next;
				}
				leaf = mix_code(io, enc, impl, m->expr[lr], MIX_NLEAF, m->x2l[x],
				                MIX_K_EXP);
			} else {
				unsigned q = (unsigned)(avg + cm + 128) >> 8;

				MIX_ASSERT(q < MIX_NQ);
				leaf = mix_code(io, enc, impl, m->exp[q], MIX_NLEAF, m->x2l[x],
				                MIX_K_EXP);
			}
			MIX_STAT(io, enc, 0);

			if (__builtin_expect(leaf == 0, 0)) {
				/* zero, or an exponent outside the windows */
				if (mix_code_bin(io, enc, m->bin[MIX_B_ESC + (avg < 128)], x != 0,
				                 MIX_K_BIN)) {
					x = mix_code_plain(io, enc, x, MIX_XBITS);
					/* a real exponent: one above the dtype's range
					 * would alias once masked into the element */
					bad |= !enc && x > emask + mbits;
				} else {
					x = 0;
				}
				if (x == 0) {
					v = fa->sbits ? mix_code_bin(io, enc, m->bin[MIX_B_ZSIGN],
					                             v >> sshift, MIX_K_BIN)
					                        << sshift
					              : fa->sconst;
					MIX_STAT(io, enc, 1);
					goto next;
				}
				/* escapes are rare: no mantissa model (leaf 0 has none) */
				ld = mix_leafd_make(x, mbits, emask, fa->lowz);
				ld.np = (uint8_t)(ld.np + ld.t);
				ld.t = 0;
			} else {
				ld = m->ld[leaf];
				if (full)
					x = m->l2x[leaf];
			}
			MIX_STAT(io, enc, 1);

			if (full && x == rx) {
				/* series coding: a moved weight usually differs from
				 * the reference in its low mantissa bits: code the bit
				 * length of the XOR residual; the bits below its top
				 * are noise */
				const unsigned lowz = fa->lowz;
				uint32_t d = ((v ^ rv) & mmask) >> lowz, sg;
				unsigned n = d ? 32u - (unsigned)__builtin_clz(d) : 0;

				sg = mix_code_bin(io, enc, m->bin[MIX_B_SEQ], (v ^ rv) >> sshift,
				                  MIX_K_BIN);
				n = mix_code(io, enc, impl, m->xl[leaf], 32, n, MIX_K_MAN);
				if (!enc && n > mbits - lowz)
					bad = 1;
				if (n) {
					uint32_t rest = mix_code_plain(
						io, enc, d & ((1u << (n - 1)) - 1), n - 1);

					d = (1u << (n - 1)) | rest;
				} else {
					d = 0;
				}
				MIX_STAT(io, enc, 4);
				if (!enc) /* the chunk's zero low bits, not the reference's */
					v = (rv & ~((1u << lowz) - 1)) ^ sg << sshift ^
					    ((d << lowz) & mmask);
				goto next;
			}

			if (sparse && !enc && fa->tree) {
				/* frames before 4b5f757: sign and mantissa as a
				 * binary tree, most significant bit (sign) first */
				const unsigned tb = mbits + 1;
				unsigned vn = 1;

				for (unsigned b = 0; b < tb; b++)
					vn = vn * 2 + mix_code_bin(io, enc, m->sv[leaf][vn], 0, MIX_K_MAN);
				used |= MIX_USED_SPARSE;
				vn &= (1u << tb) - 1;
				v = (vn >> mbits) << sshift | (ld.vbase & ~mmask) | (vn & mmask);
				goto next;
			}
			if (sparse) {
				/* few distinct values (dequantized tensors): sign and
				 * mantissa follow from the exponent, code them as
				 * nibble symbols */
				const unsigned tb = mbits + 1, lb = tb - 8; /* 0 or 3 */
				uint32_t sm = (v >> sshift) << mbits | (v & mmask), a, b, d = 0;

				a = mix_code(io, enc, impl, m->sa[leaf], 16, (sm >> (tb - 4)) & 15,
				             MIX_K_MAN);
				b = mix_code(io, enc, impl, m->sb[leaf][a], 16, (sm >> lb) & 15,
				             MIX_K_MAN);
				if (lb)
					d = mix_code(io, enc, impl, m->sc[leaf][a << 4 | b], 8,
					             sm & 7, MIX_K_MAN);
				MIX_STAT(io, enc, 5);
				if (!enc)
					used |= MIX_USED_SPARSE;
				sm = (a << 4 | b) << lb | d;
				v = (sm >> mbits) << sshift | (ld.vbase & ~mmask) | (sm & mmask);
				goto next;
			}

			/* mantissa below the leading one: top bits under the leaf;
			 * sign and the rest are plain */
			{
				const unsigned t = ld.t, np = ld.np;
				uint32_t mt = enc ? (v >> ld.mtsh) & ((1u << t) - 1) : 0, pl;

				if (!enc)
					used |= MIX_USED_PLAIN;
				/* constant row sizes: no generic loops in the hot body */
				if (t == MIX_MTB)
					mt = mix_code(io, enc, impl, m->man[leaf], MIX_MTN, mt, MIX_K_MAN);
				else if (t == 1)
					mt = mix_code(io, enc, impl, m->man[leaf], 2, mt, MIX_K_MAN);
#if MIX_MTB > 2
				else if (t)
					mt = mix_code(io, enc, impl, m->man[leaf], 1u << t, mt,
					              MIX_K_MAN);
#endif
				MIX_STAT(io, enc, 2);
#ifdef MIX_STATS
				mix_stats[3] += enc ? np + 1 : 0;
#endif
				pl = ((v >> ld.lowz) & ((1u << np) - 1)) | ((v >> sshift) & sbits) << np;
				pl = mix_code_plain(io, enc, pl, np + sbits);
				if (!enc)
					v = (pl >> np) << sshift | sconst | ld.vbase | mt << ld.mtsh |
					    (pl & ((1u << np) - 1)) << ld.lowz;
			}
		next:
			if (!enc)
				mix_store(el + i * esz, v, esz);
			avg += ((int)(leaf << 8) - avg) >> MIX_AVR;
			if (row) {
				m->col[c] = (int16_t)(cm + (((int)(leaf << 8) - cm) >> MIX_COLR));
				c = c + 1 == row ? 0 : c + 1;
			}
		}
		rc = mix_seg_end(s, io, enc, out, olen, cap);
		if (!rc && bad)
			rc = -EBADMSG;
	}
	for (size_t i = fa->phase + nel * esz; i < len; i++) {
		uint32_t b = mix_code_plain(io, enc, enc ? buf[i] : 0, 8);

		if (!enc)
			buf[i] = (uint8_t)b;
	}
	lio.used = used;
	*iop = lio;
	return rc;
}

/* The whole chunk is DELTA-coded against its reference: every element has
 * a reference element, and no value tree. */
static int mix_delta_all(const struct mix_fargs *fa)
{
	return (fa->flags & (MIX_PF_REF | MIX_PF_SPARSE)) == MIX_PF_REF && fa->delta &&
	       fa->nref == fa->nel;
}

/* Instances: per CPU target, direction, and for the common case (no
 * reference, not sparse) per dtype, each its own function so that the
 * coder state stays in registers. */
#define MIX_FLOAT_VARIANT(sfx, attr, impl, enc, full, dt, name)                                  \
	attr __attribute__((noinline)) static int name##_##sfx(                                   \
		struct mix_state *s, struct mix_io *io, const struct mix_fargs *fa, uint8_t *buf, \
		size_t len, uint8_t *out, size_t *olen, size_t cap)                               \
	{                                                                                          \
		return mix_float_body(s, io, enc, impl, full, dt, fa, buf, len, out, olen, cap);  \
	}
#define MIX_FLOAT_IMPL(sfx, attr, impl)                                                           \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 1, 1, 0, mix_fenc_full)                                 \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 1, 0, CODEC_DTYPE_BF16, mix_fenc_bf16)                  \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 1, 0, CODEC_DTYPE_FP16, mix_fenc_fp16)                  \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 1, 0, CODEC_DTYPE_FP32, mix_fenc_fp32)                  \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 0, 1, 0, mix_fdec_full)                                 \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 0, 0, CODEC_DTYPE_BF16, mix_fdec_bf16)                  \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 0, 0, CODEC_DTYPE_FP16, mix_fdec_fp16)                  \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 0, 0, CODEC_DTYPE_FP32, mix_fdec_fp32)                  \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 1, 2, CODEC_DTYPE_BF16, mix_fenc_dbf16)                 \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 1, 2, CODEC_DTYPE_FP16, mix_fenc_dfp16)                 \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 1, 2, CODEC_DTYPE_FP32, mix_fenc_dfp32)                 \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 0, 2, CODEC_DTYPE_BF16, mix_fdec_dbf16)                 \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 0, 2, CODEC_DTYPE_FP16, mix_fdec_dfp16)                 \
	MIX_FLOAT_VARIANT(sfx, attr, impl, 0, 2, CODEC_DTYPE_FP32, mix_fdec_dfp32)                 \
	static int mix_float_run_##sfx(struct mix_state *s, struct mix_io *io, const int enc,     \
	                               const struct mix_fargs *fa, uint8_t *buf, size_t len,      \
	                               uint8_t *out, size_t *olen, size_t cap)                    \
	{                                                                                          \
		int full = (fa->flags & (MIX_PF_REF | MIX_PF_SPARSE)) != 0;                       \
		int dall = full && mix_delta_all(fa);                                              \
		const int b = fa->l.mbits == 7, h = fa->l.mbits == 10;                             \
		if (enc)                                                                           \
			return (dall   ? (b ? mix_fenc_dbf16_##sfx                                 \
			                  : h ? mix_fenc_dfp16_##sfx : mix_fenc_dfp32_##sfx)       \
			        : full ? mix_fenc_full_##sfx                                       \
			        : b    ? mix_fenc_bf16_##sfx                                       \
			        : h    ? mix_fenc_fp16_##sfx                                       \
			               : mix_fenc_fp32_##sfx)(s, io, fa, buf, len, out, olen, cap); \
		return (dall   ? (b ? mix_fdec_dbf16_##sfx : h ? mix_fdec_dfp16_##sfx : mix_fdec_dfp32_##sfx) \
		        : full ? mix_fdec_full_##sfx                                               \
		        : b    ? mix_fdec_bf16_##sfx                                               \
		        : h    ? mix_fdec_fp16_##sfx                                               \
		               : mix_fdec_fp32_##sfx)(s, io, fa, buf, len, out, olen, cap);        \
	}

MIX_FLOAT_IMPL(portable, , 0)
#if MIX_HAVE_AVX2
MIX_FLOAT_IMPL(avx2, MIX_AVX2_ATTR, 1)
#endif

/* ---- encoder analysis ------------------------------------------------------ */

/* Windows of extended exponents: the 31 consecutive values holding the most
 * elements, or two windows when that leaves fewer escapes (tensors with a
 * second cluster of tiny values, e.g. dead units).  Zero is leaf 0 anyway.
 * Encoder only: the format fixes the windows, not this search. */
static void mix_windows_pick(const uint32_t *hist, unsigned xn, struct mix_fpar *fp)
{
	uint64_t pre[MIX_XMAX + 1];
	uint64_t best = 0;

	pre[0] = 0;
	for (unsigned x = 0; x < xn; x++)
		pre[x + 1] = pre[x] + (x ? hist[x] : 0);
	fp->blo = fp->nlo = 0;
	fp->bhi = 1;
	fp->nhi = 31;
	for (unsigned b = 1; b + 31 <= xn; b++)
		if (pre[b + 31] - pre[b] > best) {
			best = pre[b + 31] - pre[b];
			fp->bhi = b;
		}
	if (xn < 32) {
		fp->nhi = xn - 1;
		return;
	}
	if (best == pre[xn])
		return;
	for (unsigned n2 = 2; n2 <= 16; n2 += 2) {
		unsigned n1 = 31 - n2, b1 = 1, b2 = 0;
		uint64_t c1 = 0, c2 = 0;

		for (unsigned b = 1; b + n1 <= xn; b++)
			if (pre[b + n1] - pre[b] > c1) {
				c1 = pre[b + n1] - pre[b];
				b1 = b;
			}
		for (unsigned b = 1; b + n2 <= xn; b++) {
			if (b + n2 > b1 && b < b1 + n1)
				continue;
			if (pre[b + n2] - pre[b] > c2) {
				c2 = pre[b + n2] - pre[b];
				b2 = b;
			}
		}
		if (c2 && c1 + c2 > best) {
			best = c1 + c2;
			if (b2 < b1) {
				fp->blo = b2;
				fp->nlo = n2;
				fp->bhi = b1;
				fp->nhi = n1;
			} else {
				fp->blo = b1;
				fp->nlo = n1;
				fp->bhi = b2;
				fp->nhi = n2;
			}
		}
	}
}

/* Chooses the chunk parameters.  Returns 1 when the chunk is hopeless
 * (would not shrink: the caller stores it raw without coding it). */
static int mix_float_analyze(struct mix_state *s, const struct mix_layout *l,
                             const struct codec_lvl_args *a, const uint8_t *el, size_t nel,
                             struct mix_fpar *fp)
{
	uint32_t hist[MIX_XMAX] = {0}, lc[MIX_NLEAF] = {0}, orm = 0, andm = ~0u;
	const uint32_t mmask = (1u << l->mbits) - 1;
	const unsigned emask = (1u << l->ebits) - 1, xn = emask + l->mbits + 1;
	uint64_t bits;

	uint32_t eh[4][256] = {{0}}, sub[32] = {0};
	uint64_t seen[1024] = {0};
	size_t distinct = 0;

	/* one pass: exponent fields (4 histograms: repeated values would
	 * serialize on one counter), subnormals' leading bits, the OR of all
	 * mantissas, distinct 16-bit values */
	for (size_t i = 0; i < nel; i++) {
		uint32_t v = mix_load(el + i * l->esz, l->esz), e = (v >> l->mbits) & emask;

		eh[i & 3][e]++;
		orm |= v;
		andm &= v;
		if (__builtin_expect(!e && (v & mmask), 0))
			sub[31 - __builtin_clz(v & mmask)]++;
		if (l->esz == 2) {
			uint64_t bit = 1ull << (v & 63);

			distinct += !(seen[v >> 6] & bit);
			seen[v >> 6] |= bit;
		}
	}
	/* one sign for the whole chunk (second moments, counts) */
	if (nel && (orm >> (l->esz * 8 - 1)) == (andm >> (l->esz * 8 - 1) & 1))
		fp->flags |= MIX_PF_SIGNC | (andm >> (l->esz * 8 - 1) & 1 ? MIX_PF_SIGN1 : 0);
	orm &= mmask;
	for (unsigned e = 0; e <= emask; e++)
		hist[e ? e + l->mbits : 0] = eh[0][e] + eh[1][e] + eh[2][e] + eh[3][e];
	for (unsigned p = 0; p < l->mbits; p++) {
		hist[p + 1] = sub[p];
		hist[0] -= sub[p];
	}
	fp->lowz = orm ? (unsigned)__builtin_ctz(orm) : l->mbits;
	mix_windows_pick(hist, xn, fp);
	mix_leafmap(s->fm, l, fp);
	for (unsigned x = 0; x < xn; x++)
		lc[s->fm->x2l[x]] += hist[x];
	for (unsigned j = 0; j < MIX_NLEAF; j++) {
		unsigned p = 1;

		if (!lc[j]) {
			fp->plen[j] = 0;
			continue;
		}
		while (p < 15 && ((uint64_t)lc[j] << p) < nel)
			p++;
		fp->plen[j] = (uint8_t)p;
	}

	/* dequantized tensors hold few distinct values; the value tree learns
	 * each value: only worth it for few */
	if (l->esz == 2 && nel && distinct * MIX_SPARSE_RATIO < nel && distinct <= MIX_SPARSE_MAX)
		fp->flags |= MIX_PF_SPARSE;

	/* order-0 leaf cost, escapes, and the mantissa and sign bits */
	bits = mix_entropy_q8(lc, MIX_NLEAF, nel) / 256 + (uint64_t)hist[0];
	for (unsigned x = 1; x < xn; x++)
		bits += (uint64_t)hist[x] * (mix_xbits(x, l->mbits) - fp->lowz + 1 +
		                             (s->fm->x2l[x] ? 0 : MIX_XBITS + 1));

	if (a->ref && a->ref_len && nel) {
		/* a reference pays only if elements repeat or move a little:
		 * estimate both residual kinds against no reference */
		const size_t ph = a->elem_phase;
		const unsigned B = l->esz * 8 - fp->lowz;
		const uint32_t bm = B >= 32 ? ~0u : (1u << B) - 1, sb = 1u << (B - 1);
		const uint64_t per = bits / nel + 1;
		uint64_t exor = 0, edel = 0;
		uint32_t eq2[2] = {0}, z2[2] = {0};
		size_t nref;

		nref = a->ref_len > ph ? (a->ref_len - ph) / l->esz : 0;
		nref = nref < nel ? nref : nel;
		for (size_t i = 0; i < nref; i++) {
			uint32_t v = mix_load(el + i * l->esz, l->esz);
			uint32_t r = mix_load(a->ref + ph + i * l->esz, l->esz);
			uint32_t w = (v >> fp->lowz) & bm, rw = (r >> fp->lowz) & bm;
			uint32_t d = ((w & sb ? ~w & bm : w | sb) - (rw & sb ? ~rw & bm : rw | sb)) & bm;
			uint32_t z = ((d << 1) ^ (d & sb ? bm : 0)) & bm, x;

			/* in half bits, measured: a residual of n bits costs about
			 * n + 1/2 either way (length symbol, next bit, plain bits);
			 * XOR residuals also pay for a sign change, and elements
			 * whose exponent moved cost what they cost without a
			 * reference.  Which kind is shorter depends on the data:
			 * updates with carries favour DELTA, bit flips XOR. */
			eq2[v == r]++;
			z2[z == 0]++;
			edel += z ? 2 * (32u - (unsigned)__builtin_clz(z)) + 1 : 0;
			if (v == r)
				continue;
			x = ((v ^ r) & mmask) >> fp->lowz;
			exor += mix_xexp(v, l->mbits, emask) == mix_xexp(r, l->mbits, emask)
			                ? 2 * (32u - (unsigned)__builtin_clz(x | 1)) + 1 +
			                          2 * ((v ^ r) >> (l->esz * 8 - 1))
			                : 2 * per;
		}
		exor = exor / 2 + mix_entropy_q8(eq2, 2, nref) / 256 + (nel - nref) * per;
		edel = edel / 2 + mix_entropy_q8(z2, 2, nref) / 256 + (nel - nref) * per;
		/* only a clear win over no reference: a useless reference must
		 * cost nothing; then the cheaper residual kind */
		if ((exor < edel ? exor : edel) * 16 < bits * 15) {
			fp->flags |= MIX_PF_REF;
			fp->delta = edel < exor;
		}
	}

	if (!(fp->flags & (MIX_PF_REF | MIX_PF_SPARSE)) && bits > (uint64_t)nel * l->esz * 8 + 64)
		return 1;
	return 0;
}

/* ---- state and entry points -------------------------------------------- */

static struct mix_state *mix_state_get(struct codec_ctx *ctx)
{
	if (!ctx->mix) {
		struct mix_state *s = calloc(1, sizeof(*s));

		if (!s)
			return NULL;
#if MIX_HAVE_AVX2
		__builtin_cpu_init();
		s->impl = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") &&
		          __builtin_cpu_supports("popcnt");
#endif
		ctx->mix = s;
	}
	return ctx->mix;
}

int mix_impl_force(struct codec_ctx *ctx, int impl)
{
	struct mix_state *s = mix_state_get(ctx);

	if (!s)
		return -ENOMEM;
	if (impl == 0) {
		s->impl = 0;
		return 0;
	}
#if MIX_HAVE_AVX2
	if (impl == 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") &&
	    __builtin_cpu_supports("popcnt")) {
		s->impl = 1;
		return 0;
	}
#endif
	return -ENOTSUP;
}

int mix_enc_prepare(struct mix_state *s)
{
	if (!s->sym) {
		s->sym = malloc(MIX_SEG_SYMS * sizeof(*s->sym));
		s->seg = malloc(MIX_SEG_BYTES);
		if (!s->sym || !s->seg) {
			free(s->sym);
			free(s->seg);
			s->sym = NULL;
			s->seg = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

static int mix_float_prepare(struct mix_state *s, int enc)
{
	if (!s->fm) {
		s->fm = aligned_alloc(64, sizeof(*s->fm));
		if (!s->fm)
			return -ENOMEM;
	}
	return enc ? mix_enc_prepare(s) : 0;
}

static int mix_is_float(int dtype)
{
	return dtype == CODEC_DTYPE_BF16 || dtype == CODEC_DTYPE_FP16 || dtype == CODEC_DTYPE_FP32;
}

static void mix_fargs_make(struct mix_fargs *fa, const struct mix_layout *l,
                           const struct codec_lvl_args *a, size_t len, const struct mix_fpar *fp)
{
	unsigned best = 0;

	fa->l = *l;
	fa->flags = fp->flags;
	fa->lowz = fp->lowz;
	fa->delta = fp->delta;
	fa->sbits = !(fp->flags & MIX_PF_SIGNC);
	fa->tree = a->sparse_tree;
	fa->sconst = (fp->flags & MIX_PF_SIGN1 ? 1u : 0u) << (l->esz * 8 - 1);
	fa->phase = a->elem_phase < l->esz && a->elem_phase <= len ? a->elem_phase : 0;
	fa->nel = (len - fa->phase) / l->esz;
	fa->ref = NULL;
	fa->nref = 0;
	if (fp->flags & MIX_PF_REF) {
		fa->ref = a->ref + fa->phase;
		fa->nref = a->ref_len > fa->phase ? (a->ref_len - fa->phase) / l->esz : 0;
		fa->nref = fa->nref < fa->nel ? fa->nref : fa->nel;
	}
	fa->row = a->row_elems && a->row_elems <= MIX_COLMAX ? a->row_elems : 0;
	/* the running mean starts at the most frequent leaf */
	for (unsigned j = 1; j < MIX_NLEAF; j++)
		if (fp->plen[j] && (!fp->plen[best] || fp->plen[j] < fp->plen[best]))
			best = j;
	fa->avg0 = (int)(best << 8);
}

/* A quick guess of the coded size of a chunk in one layout, from every 4th
 * element: order-0 entropy of the extended exponents plus the mantissa bits
 * below the leading one that are not zero everywhere, plus the sign; bits
 * * 256 an element.  UINT64_MAX if the chunk holds no element. */
static uint64_t mix_layout_cost(const uint8_t *src, size_t len, int dtype, unsigned ph)
{
	struct mix_layout l;
	uint32_t h[MIX_XMAX] = {0}, n = 0, orm = 0, lowz;
	uint64_t bits;
	unsigned emask, xn;

	mix_layout_get(dtype, &l);
	if (ph >= l.esz || len < ph + l.esz)
		return UINT64_MAX;
	emask = (1u << l.ebits) - 1;
	xn = emask + l.mbits + 1;
	for (size_t i = ph; i + l.esz <= len; i += 4 * l.esz, n++) {
		uint32_t v = mix_load(src + i, l.esz);

		h[mix_xexp(v, l.mbits, emask)]++;
		orm |= v;
	}
	orm &= (1u << l.mbits) - 1;
	lowz = orm ? (unsigned)__builtin_ctz(orm) : l.mbits;
	bits = mix_entropy_q8(h, xn, n) + 256ull * h[0];
	for (unsigned x = 1; x < xn; x++)
		bits += 256ull * h[x] * (mix_xbits(x, l.mbits) - lowz + 1);
	return bits / n;
}

/* The element phase to code a float chunk in: the header's, unless another
 * phase's guessed size is clearly smaller (the detector misread the phase:
 * exponents cut across elements are noise).  Encoder only; the payload
 * records the layout it used. */
static void mix_layout_pick(const uint8_t *src, size_t len, struct codec_lvl_args *la)
{
	struct mix_layout l;
	uint64_t best = mix_layout_cost(src, len, la->dtype, la->elem_phase);
	unsigned ph = la->elem_phase;

	mix_layout_get(la->dtype, &l);
	for (unsigned p = 0; p < l.esz; p++) {
		uint64_t c = p == ph ? UINT64_MAX : mix_layout_cost(src, len, la->dtype, p);

		if (c != UINT64_MAX && (best == UINT64_MAX || c + MIX_LAYOUT_MARGIN < best)) {
			best = c;
			la->elem_phase = p;
		}
	}
}

static ssize_t mix_float_encode(struct mix_state *s, const struct codec_lvl_args *hdr,
                                const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
	struct codec_lvl_args la = *hdr, *a = &la;
	struct mix_layout l;
	struct mix_fpar fp = {0};
	struct mix_fargs fa;
	struct mix_io io = {0};
	size_t ph, olen = MIX_FHDR, plen;
	int rc;

	mix_layout_pick(src, len, &la);
	mix_layout_get(a->dtype, &l);
	if (cap < MIX_FHDR + 8)
		return -ENOSPC;
	rc = mix_float_prepare(s, 1);
	if (rc)
		return rc;
	rc = codec_buf_reserve(&s->plain, &s->plain_cap, len + 8);
	if (rc)
		return rc;
	ph = a->elem_phase < l.esz && a->elem_phase <= len ? a->elem_phase : 0;
	if (mix_float_analyze(s, &l, a, src + ph, (len - ph) / l.esz, &fp))
		return -ENOSPC;
	mix_fargs_make(&fa, &l, a, len, &fp);
	mix_fmodel_reset(s->fm, &l, &fp, fa.row, fa.nel, 0);

	io.e.sym = s->sym;
	io.e.cap = MIX_SEG_SYMS;
	io.b.p = s->plain;
	io.b.end = s->plain + (cap < s->plain_cap ? cap : s->plain_cap);
#if MIX_HAVE_AVX2
	if (s->impl)
		rc = mix_float_run_avx2(s, &io, 1, &fa, (uint8_t *)(uintptr_t)src, len, dst, &olen,
		                        cap);
	else
#endif
		rc = mix_float_run_portable(s, &io, 1, &fa, (uint8_t *)(uintptr_t)src, len, dst,
		                            &olen, cap);
	if (rc)
		return rc;
	if (mix_bits_flush(&io.b))
		return -ENOSPC;
	plen = (size_t)(io.b.p - s->plain);
	if (cap - olen < plen)
		return -ENOSPC;
	dst[0] = (uint8_t)(MIX_VERSION << 4 | fp.flags);
	dst[1] = (uint8_t)(fp.lowz | (fp.delta ? MIX_LZ_DELTA : 0));
	dst[2] = (uint8_t)fp.blo;
	dst[3] = (uint8_t)(fp.blo >> 8);
	dst[4] = (uint8_t)fp.nlo;
	dst[5] = (uint8_t)fp.bhi;
	dst[6] = (uint8_t)(fp.bhi >> 8);
	dst[7] = (uint8_t)fp.nhi;
	codec_le_put(dst + 8, olen - MIX_FHDR, 4);
	for (int i = 0; i < MIX_NLEAF / 2; i++)
		dst[12 + i] = (uint8_t)(fp.plen[2 * i] | fp.plen[2 * i + 1] << 4);
	dst[28] = (uint8_t)(fa.phase | (unsigned)a->dtype << 2);
	memcpy(dst + olen, s->plain, plen);
	return (ssize_t)(olen + plen);
}

/* Distinct 16-bit values among n elements at el (decoder checks). */
static size_t mix_distinct16(const uint8_t *el, size_t n)
{
	uint64_t seen[1024] = {0};
	size_t d = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t v = mix_load(el + 2 * i, 2);
		uint64_t bit = 1ull << (v & 63);

		d += !(seen[v >> 6] & bit);
		seen[v >> 6] |= bit;
	}
	return d;
}

static ssize_t mix_float_decode(struct mix_state *s, const struct codec_lvl_args *hdr,
                                const uint8_t *payload, size_t plen, uint8_t *dst,
                                size_t raw_len)
{
	struct codec_lvl_args la = *hdr, *a = &la;
	struct mix_layout l;
	struct mix_fpar fp;
	struct mix_fargs fa;
	struct mix_io io = {0};
	size_t alen = 0, fhdr = hdr->layout_v1 ? MIX_FHDR_V1 : MIX_FHDR;
	unsigned xn;
	int rc;

	if (plen < fhdr)
		return -EBADMSG;
	/* the layout the payload is coded in (the frame header's before the
	 * layout byte) */
	if (!hdr->layout_v1) {
		la.dtype = payload[28] >> 2;
		la.elem_phase = payload[28] & 3;
	}
	if (la.dtype < CODEC_DTYPE_BF16 || la.dtype > CODEC_DTYPE_FP32)
		return -EBADMSG;
	mix_layout_get(a->dtype, &l);
	if (la.elem_phase >= l.esz)
		return -EBADMSG;
	fp.flags = payload[0] & 15;
	fp.lowz = payload[1] & MIX_LZ_MASK;
	fp.delta = !!(payload[1] & MIX_LZ_DELTA);
	if ((payload[1] & ~(MIX_LZ_MASK | MIX_LZ_DELTA)) || (fp.delta && !(fp.flags & MIX_PF_REF)))
		return -EBADMSG;
	fp.blo = payload[2] | (unsigned)payload[3] << 8;
	fp.nlo = payload[4];
	fp.bhi = payload[5] | (unsigned)payload[6] << 8;
	fp.nhi = payload[7];
	xn = (1u << l.ebits) + l.mbits;
	if ((fp.flags & MIX_PF_SPARSE) && l.esz != 2)
		return -EBADMSG;
	if ((fp.flags & MIX_PF_SIGN1) && !(fp.flags & MIX_PF_SIGNC))
		return -EBADMSG;
	if (fp.lowz > l.mbits)
		return -EBADMSG;
	/* windows: 31 leaves together (the encoder always fills them: a
	 * window cut short over absent leaves would decode alike), ordered,
	 * disjoint, inside 1 .. xn - 1, canonical when empty */
	if (fp.nlo + fp.nhi != 31 || (!fp.nlo && fp.blo) || (!fp.nhi && fp.bhi) ||
	    (fp.nlo && (!fp.blo || fp.blo + fp.nlo > xn)) ||
	    (fp.nhi && (!fp.bhi || fp.bhi + fp.nhi > xn)) ||
	    (fp.nlo && fp.nhi && fp.blo + fp.nlo > fp.bhi))
		return -EBADMSG;
	alen = (size_t)codec_le_get(payload + 8, 4);
	if (alen > plen - fhdr)
		return -EBADMSG;
	for (int i = 0; i < MIX_NLEAF / 2; i++) {
		fp.plen[2 * i] = payload[12 + i] & 15;
		fp.plen[2 * i + 1] = payload[12 + i] >> 4;
	}
	rc = mix_float_prepare(s, 0);
	if (rc)
		return rc;
	mix_leafmap(s->fm, &l, &fp);
	mix_fargs_make(&fa, &l, a, raw_len, &fp);
	mix_fmodel_reset(s->fm, &l, &fp, fa.row, fa.nel, fa.tree);

	rc = mix_rdec_open(s, &io.d, payload + fhdr, alen);
	if (rc)
		return rc;
	io.b.in = payload + fhdr + alen;
	io.b.len = plen - fhdr - alen;
#if MIX_HAVE_AVX2
	if (s->impl)
		rc = mix_float_run_avx2(s, &io, 0, &fa, dst, raw_len, NULL, NULL, 0);
	else
#endif
		rc = mix_float_run_portable(s, &io, 0, &fa, dst, raw_len, NULL, NULL, 0);
	if (rc)
		return rc;
	/* The frame checksum catches wrong output; the streams must also
	 * end exactly where the encoder stopped. */
	if (io.d.p != io.d.end || !mix_bits_exact(&io.b))
		return -EBADMSG;
	/* SPARSE decided nothing when no element took the path it selects
	 * (all coded against a reference, or zero): then it must be what the
	 * encoder's rule gives for these elements (mix_float_analyze; also
	 * true of the rule before MIX_SPARSE_MAX was added), or a flipped
	 * flag would go unnoticed. */
	if (l.esz == 2 &&
	    !(io.used & (fp.flags & MIX_PF_SPARSE ? MIX_USED_SPARSE : MIX_USED_PLAIN))) {
		size_t d = mix_distinct16(dst + fa.phase, fa.nel);
		int few = d * MIX_SPARSE_RATIO < fa.nel;

		if (fp.flags & MIX_PF_SPARSE ? !few : few && d <= MIX_SPARSE_MAX)
			return -EBADMSG;
	}
	/* SIGNC and lowz are promises about every element, which the
	 * encoder keeps; elements coded against a reference do not read
	 * them, so check them here, or a flipped flag would go unnoticed. */
	if ((fp.flags & MIX_PF_SIGNC) || fp.lowz) {
		const uint32_t zmask = (1u << fp.lowz) - 1, sign = !!(fp.flags & MIX_PF_SIGN1);

		for (size_t i = 0; i < fa.nel; i++) {
			uint32_t v = mix_load(dst + fa.phase + i * l.esz, l.esz);

			if ((v & zmask) ||
			    ((fp.flags & MIX_PF_SIGNC) && (v >> (l.esz * 8 - 1)) != sign))
				return -EBADMSG;
		}
	}
	return (ssize_t)raw_len;
}

ssize_t mix_encode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                   const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
	struct mix_state *s = mix_state_get(ctx);
	struct mix_blk blk;
	uint64_t h0;
	unsigned sh;
	ssize_t n = -ENOSPC, m;
	bool gated, blocks;
	uint32_t bmask;

	if (!s)
		return -ENOMEM;
	if (mix_is_float(a->dtype))
		return mix_float_encode(s, a, src, len, dst, cap);
	/* incompressible at order 0 (random, compressed): no byte way is worth
	 * a pass (context mixing would cost seconds a MB for a raw frame),
	 * unless the bytes are quantized blocks, whose scales are not random
	 * (Q4_1 blocks of weights near uniform: 7.9 bits and more) */
	sh = mix_bytes_stride(src, len, &h0);
	gated = h0 >= (uint64_t)len * MIX_GATE_Q8;
	bmask = h0 < (uint64_t)len * MIX_BLK_MIN_Q8 ? 0 : gated ? mix_bytes_block_quick(src, len)
	                                                       : MIX_BLK_ALL;
	blocks = bmask && mix_bytes_block(src, len, bmask, &blk);
	if (gated && !blocks)
		return -ENOSPC;
	if (!gated)
		n = mix_bytes_encode(s, src, len, sh, h0, dst, cap);
	if (n >= 3 && (dst[0] & MIX_PF_NUM)) {
		/* numbers: the fast coder's static tables may code them smaller */
		m = codec_buf_reserve(&s->bout, &s->bout_cap, (size_t)n);
		if (m == 0)
			m = fast_encode(ctx, a, src, len, s->bout, (size_t)n - 2);
		if (m >= 0) {
			dst[0] = (uint8_t)(MIX_VERSION << 4 | MIX_PF_FAST);
			memcpy(dst + 1, s->bout, (size_t)m);
			n = m + 1;
		} else if (m != -ENOSPC) {
			return m;
		}
	}
	if (n < 0 && n != -ENOSPC)
		return n;
	/* quantized blocks (GGUF): their own way, the smaller kept */
	if (blocks) {
		size_t lim = n > 0 ? (size_t)n - 1 : cap;

		m = codec_buf_reserve(&s->bout, &s->bout_cap, lim);
		if (m == 0)
			m = mix_blocks_encode(ctx, s, &blk, src, len, s->bout, lim);
		if (m >= 0) {
			memcpy(dst, s->bout, (size_t)m);
			n = m;
		} else if (m != -ENOSPC) {
			return m;
		}
	}
	/* context mixing, when asked for and it saves enough to pay for
	 * its speed */
	if (a->bytes_cm && !gated && (n > 0 || n == -ENOSPC)) {
		size_t lim = n > 0 ? (size_t)n - (size_t)n * MIX_CM_GAIN / 1000 : cap;

		m = codec_buf_reserve(&s->bout, &s->bout_cap, lim);
		if (m == 0)
			m = mix_cm_encode(s, src, len, sh, s->bout, lim);
		if (m >= 0) {
			memcpy(dst, s->bout, (size_t)m);
			n = m;
		} else if (m != -ENOSPC) {
			return m;
		}
	}
	return n;
}

bool mix_payload_uses_ref(const uint8_t *payload, size_t plen)
{
	return plen >= 1 && (payload[0] & MIX_PF_REF);
}

ssize_t mix_decode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                   const uint8_t *payload, size_t plen, uint8_t *dst, size_t raw_len)
{
	struct mix_state *s = mix_state_get(ctx);
	unsigned flags;

	if (!s)
		return -ENOMEM;
	if (plen < 1)
		return -EBADMSG;
	flags = payload[0] & 15;
	if (payload[0] >> 4 != MIX_VERSION || (flags & ~MIX_PF_MASK))
		return -EBADMSG;
	if ((flags & MIX_PF_REF) && (!a->ref || !a->ref_len))
		return -EBADMSG;
	if (mix_is_float(a->dtype))
		return mix_float_decode(s, a, payload, plen, dst, raw_len);
	if (flags == MIX_PF_FAST)
		return fast_decode(ctx, a, payload + 1, plen - 1, dst, raw_len);
	if (flags == MIX_PF_CM || flags == (MIX_PF_CM | MIX_PF_NUM))
		return mix_cm_decode(s, payload, plen, dst, raw_len);
	if (flags == MIX_BYTES_BLK)
		return mix_blocks_decode(ctx, s, payload, plen, dst, raw_len);
	if ((flags & ~MIX_PF_NUM) && flags != MIX_BYTES_ELEM)
		return -EBADMSG;
	return mix_bytes_decode(s, payload, plen, dst, raw_len);
}

void mix_state_free(struct mix_state *s)
{
	if (!s)
		return;
	free(s->fm);
	free(s->sym);
	free(s->seg);
	free(s->plain);
	free(s->rbuf);
	free(s->bout);
	mix_bytes_free(s->bm);
	mix_cm_free(s->cm);
	free(s);
}
