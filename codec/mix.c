/*
 * mix.c - CODEC_LEVEL_MIX: context-mixing coder for float tensors and bytes.
 *
 * Payload layout: FORMAT.md section 4.  Float chunks are coded element by
 * element as fields: the exponent as a leaf of a per-chunk Huffman-shaped
 * tree (about 3 coded decisions), each decision predicted by counters under
 * the previous / above / running-mean / reference exponent and combined by
 * a logistic mixer; the top 2 mantissa bits under the exponent; sign and
 * the remaining mantissa bits go to a plain bit stream (they are noise in
 * trained weights, and modelling noise loses).  Exact zeros, dequantized
 * (few-valued) tensors, bf16 widened to fp32 and elements equal or close to
 * a reference chunk have cheaper paths.  Non-float chunks go to the byte
 * model (mix_bytes.c).  Parts and their fixed-point ranges: mix_i.h.
 *
 * Every chunk starts from a fresh model (chunks decode independently); the
 * exponent counters start from priors built from the chunk's own leaf code
 * lengths and a neighbourhood kernel measured offline, so a 64 KiB chunk
 * does not pay for a cold model.  All model arithmetic is integer so every
 * build decodes every frame alike.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_i.h"
#include "codec/mix_i.h"
#include "codec/mix_model_i.h"

#ifdef MIX_STATS /* tuning builds only: cost per field, not thread safe */
#include <math.h>
double mix_stats[8];
#define MIX_STAT(f, y, p) (mix_stats[f] += -log2((y) ? (p) / 4096.0 : 1 - (p) / 4096.0))
#else
#define MIX_STAT(f, y, p) ((void)0)
#endif

/* ---- shared tables ------------------------------------------------------ */

/* Logistic function at 33 knots, st = -2048 .. 2048 step 128 (lpaq1). */
static const int16_t mix_squash_knots[33] = {
	1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
	2549, 2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085,
	4089, 4092, 4093, 4094};

static int mix_squash_calc(int d)
{
	int w, i, p;

	if (d > 2047)
		d = 2047;
	if (d < -2047)
		d = -2047;
	w = d & 127;
	i = (d >> 7) + 16;
	p = (mix_squash_knots[i] * (128 - w) + mix_squash_knots[i + 1] * w + 64) >> 7;
	return p < 1 ? 1 : p > 4095 ? 4095 : p;
}

void mix_tabs_init(struct mix_tabs *t)
{
	int pi = 0;

	for (int x = -2048; x < 2048; x++)
		t->squash[x + 2048] = (int16_t)mix_squash_calc(x);
	for (int x = -2047; x <= 2047; x++) {
		int v = mix_squash_calc(x);

		for (int j = pi; j <= v; j++)
			t->stretch[j] = (int16_t)x;
		pi = v + 1;
	}
	for (int j = pi; j < 4096; j++)
		t->stretch[j] = MIX_ST_MAX;
	for (int n = 0; n < 1024; n++)
		t->dt[n] = (int32_t)(131072 / (2 * n + 3));
}

void mix_apm_init(uint16_t *t, size_t ctxs, const struct mix_tabs *tb)
{
	for (size_t i = 0; i < ctxs; i++)
		for (int j = 0; j < 33; j++) {
			int st = (j - 16) * 128;

			t[i * 33 + (size_t)j] = (uint16_t)(mix_squash(tb, st > 2047 ? 2047 : st) * 16);
		}
}

/* ---- float model ---------------------------------------------------------- */

/*
 * An exponent is coded as a leaf of a 32-leaf binary tree (5 decisions).
 * 5-bit exponents (fp16) are their own leaf.  8-bit exponents map to a
 * per-chunk window: leaf = e - base + 1 for base <= e < base + 31; leaf 0
 * means "zero or escape": one more decision tells zero from escape, and an
 * escaped exponent follows as 8 plain bits.  Weights rarely span more than
 * 31 binades inside one chunk, so escapes are rare and the tree is short.
 */

/* P(leaf - ctx_leaf = d) per mille for |d| = 0..12, measured on TF.js
 * weights (bf16 and fp16 agree within a few per mille). */
static const uint16_t mix_prior_delta[13] = {190, 160, 105, 62, 34, 18, 9, 4, 2, 1, 1, 1, 1};

/*
 * The leaf tree is Huffman-shaped per chunk: the encoder sends the code
 * length of every leaf (0 = absent) and both sides build the canonical
 * tree.  Frequent leaves sit near the root, so a leaf costs ~3 decisions
 * instead of 5, leaves absent from the chunk cost nothing, and the code
 * lengths prime every context's counters (no cold start).
 */

/* Code lengths from counts: Huffman, depth limited by halving the counts
 * until the tree fits.  Encoder only: the format fixes the lengths, not
 * this construction. */
static void mix_tree_lengths(const uint32_t *count, uint8_t *len)
{
	uint32_t c[MIX_NLEAF];
	int present = 0;

	for (int i = 0; i < MIX_NLEAF; i++) {
		c[i] = count[i];
		present += count[i] != 0;
		len[i] = 0;
	}
	if (present <= 1) {
		for (int i = 0; i < MIX_NLEAF; i++)
			len[i] = count[i] ? 1 : 0;
		return;
	}
	for (;;) {
		uint64_t w[2 * MIX_NLEAF];
		int parent[2 * MIX_NLEAF], alive[2 * MIX_NLEAF], n = MIX_NLEAF, maxd = 0;

		for (int i = 0; i < MIX_NLEAF; i++) {
			w[i] = c[i];
			alive[i] = c[i] != 0;
			parent[i] = -1;
		}
		for (int k = 1; k < present; k++) {
			int a = -1, b = -1;

			for (int i = 0; i < n; i++) {
				if (!alive[i])
					continue;
				if (a < 0 || w[i] < w[a]) {
					b = a;
					a = i;
				} else if (b < 0 || w[i] < w[b]) {
					b = i;
				}
			}
			w[n] = w[a] + w[b];
			alive[n] = 1;
			parent[n] = -1;
			alive[a] = alive[b] = 0;
			parent[a] = parent[b] = n;
			n++;
		}
		for (int i = 0; i < MIX_NLEAF; i++) {
			int d = 0;

			if (!c[i])
				continue;
			for (int j = i; parent[j] >= 0; j = parent[j])
				d++;
			len[i] = (uint8_t)d;
			maxd = d > maxd ? d : maxd;
		}
		if (maxd <= MIX_MAXLEN)
			return;
		for (int i = 0; i < MIX_NLEAF; i++)
			if (c[i])
				c[i] = (c[i] + 1) / 2;
	}
}

/* Canonical tree from code lengths.  Returns 0, or -EBADMSG unless the
 * lengths form a complete prefix code or name a single leaf. */
static int mix_tree_build(struct mix_tree *t, const uint8_t *len)
{
	unsigned kraft = 0, present = 0, code = 0, nnode = 1;

	memset(t, 0, sizeof(*t));
	for (int i = 0; i < MIX_NLEAF; i++) {
		if (len[i] > MIX_MAXLEN)
			return -EBADMSG;
		if (len[i]) {
			kraft += 1u << (MIX_MAXLEN - len[i]);
			present++;
		}
	}
	if (present == 0)
		return -EBADMSG;
	if (present == 1) {
		for (int i = 0; i < MIX_NLEAF; i++)
			if (len[i]) {
				t->root = (uint8_t)(MIX_TLEAF | i);
				t->len[i] = 0;
			}
		return 0;
	}
	if (kraft != 1u << MIX_MAXLEN)
		return -EBADMSG;
	for (unsigned l = 1; l <= MIX_MAXLEN; l++) {
		for (int i = 0; i < MIX_NLEAF; i++) {
			unsigned node = 0;

			if (len[i] != l)
				continue;
			t->code[i] = (uint16_t)code;
			t->len[i] = (uint8_t)l;
			for (unsigned d = l - 1; d > 0; d--) {
				unsigned bit = (code >> d) & 1;

				if (!t->child[node][bit]) {
					if (nnode >= MIX_NLEAF)
						return -EBADMSG;
					t->child[node][bit] = (uint8_t)nnode++;
				}
				node = t->child[node][bit];
			}
			t->child[node][code & 1] = (uint8_t)(MIX_TLEAF | i);
			code++;
		}
		code <<= 1;
	}
	return 0;
}

/* Prior counters of every tree node for one context: leaf mass is the
 * chunk's coded frequency (2^-len) times a kernel around the context's
 * leaf (centre < 0: no kernel).  Integer only: both sides must agree. */
static uint64_t mix_prior_node(const struct mix_tree *t, unsigned node, const uint64_t *mass,
                               uint32_t *ctr, int depth)
{
	uint64_t m[2], tot, p22;

	assert(depth <= MIX_MAXLEN);
	for (int b = 0; b < 2; b++) {
		unsigned ch = t->child[node][b];

		m[b] = (ch & MIX_TLEAF) ? mass[ch & (MIX_NLEAF - 1)]
		                        : mix_prior_node(t, ch, mass, ctr, depth + 1);
	}
	tot = m[0] + m[1];
	p22 = tot ? ((m[1] << 22) + tot / 2) / tot : 1u << 21;
	if (p22 < 1024)
		p22 = 1024;
	if (p22 > (1u << 22) - 1024)
		p22 = (1u << 22) - 1024;
	ctr[node] = ((uint32_t)p22 << 10) | MIX_PRIOR_N;
	return tot;
}

static void mix_prior_ctx(const struct mix_tree *t, int centre, uint32_t *ctr)
{
	uint64_t mass[MIX_NLEAF];

	for (int l = 0; l < MIX_NLEAF; l++) {
		unsigned d = centre < 0 ? 0 : (unsigned)(l > centre ? l - centre : centre - l);
		uint64_t k = centre < 0 ? 64 : d <= 12 ? mix_prior_delta[d] + MIX_PRIOR_FLOOR : MIX_PRIOR_FLOOR;

		mass[l] = t->len[l] ? (k << (MIX_MAXLEN - t->len[l])) + 1 : 0;
	}
	for (int i = 0; i < MIX_NLEAF; i++)
		ctr[i] = mix_ctr_make(0.5, 0);
	if (!(t->root & MIX_TLEAF))
		mix_prior_node(t, 0, mass, ctr, 1);
}

/* Per-chunk model reset: context priors from the chunk's tree. */
static void mix_fmodel_reset(struct mix_fmodel *m, const struct mix_tree *t)
{
	for (int q = 0; q < MIX_NLEAF; q++)
		mix_prior_ctx(t, q, m->e1[q]);
	memcpy(m->e2, m->e1, sizeof(m->e2));
	memcpy(m->e4, m->e1, sizeof(m->e4));
	memcpy(m->e5, m->e1, sizeof(m->e5));
	for (int r = 0; r < 2; r++)
		for (int node = 0; node < MIX_NLEAF; node++) {
			int32_t *w = m->ew[r][node];

			w[0] = 30000; /* previous */
			w[1] = 16000; /* above */
			w[2] = 20000; /* local average */
			w[3] = r ? 20000 : 0; /* reference (r), else bias */
			w[4] = 0;     /* bias (r) */
			for (int i = 5; i < MIX_NIN_MAX; i++)
				w[i] = 0;
		}
	for (size_t i = 0; i < sizeof(m->ez) / sizeof(m->ez[0]); i++)
		m->ez[i] = mix_ctr_make(0.5, 0);
	for (size_t i = 0; i < 32; i++)
		for (size_t j = 0; j < 4; j++)
			m->mt[i][j] = mix_ctr_make(0.5, 0);
	for (size_t i = 0; i < sizeof(m->eq) / sizeof(m->eq[0]); i++)
		m->eq[i] = mix_ctr_make(0.5, 0);
	mix_ctr_fill(&m->mx[0][0], sizeof(m->mx) / sizeof(m->mx[0][0]));
	for (int i = 0; i < 256; i++)
		m->bt[i] = mix_ctr_make(0.5, 0);
}

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

static inline uint32_t mix_load(const uint8_t *p, unsigned esz)
{
	if (esz == 2)
		return (uint32_t)p[0] | (uint32_t)p[1] << 8;
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void mix_store(uint8_t *p, uint32_t v, unsigned esz)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	if (esz == 4) {
		p[2] = (uint8_t)(v >> 16);
		p[3] = (uint8_t)(v >> 24);
	}
}

static inline int mix_clamp12(int p)
{
	return p < 1 ? 1 : p > 4095 ? 4095 : p;
}

/* Loose bytes (before the first whole element, after the last): order-0. */
static unsigned mix_byte_code0(struct mix_fmodel *m, const struct mix_tabs *tb,
                               struct mix_coder *c, const int enc, unsigned byte)
{
	unsigned node = 1;

	for (int b = 7; b >= 0; b--) {
		int y = (byte >> b) & 1;

		y = mix_code_bit(c, enc, y, mix_clamp12(mix_ctr_p12(m->bt[node])));
		mix_ctr_update(&m->bt[node], y, tb, 30);
		node = node * 2 + (unsigned)y;
	}
	return node & 255;
}

/* Chunk window of 8-bit exponents: the 31 consecutive values holding the
 * most elements, the zero exponent aside (it has leaf 0 anyway). */
static unsigned mix_window_pick(const uint8_t *el, size_t nel, const struct mix_layout *l)
{
	uint32_t hist[256] = {0}, sum = 0, best = 0;
	unsigned base = 1;

	if (l->ebits == 5)
		return 0;
	for (size_t i = 0; i < nel; i++)
		hist[(mix_load(el + i * l->esz, l->esz) >> l->mbits) & 255]++;
	hist[0] = 0;
	for (unsigned e = 1; e < 256; e++) {
		sum += hist[e];
		if (e >= 32)
			sum -= hist[e - 31];
		if (sum > best) {
			best = sum;
			base = e >= 31 ? e - 30 : 1;
		}
	}
	return base;
}

static inline unsigned mix_leaf(unsigned e, unsigned base, unsigned ebits)
{
	if (ebits == 5)
		return e;
	return e - base < MIX_NLEAF - 1 ? e - base + 1 : 0;
}

/* Mantissa bits modeled (the rest are plain bits): the top bit is skewed
 * by the magnitude distribution inside a binade, lower ones are noise. */
#ifndef MIX_MTOP
#define MIX_MTOP 2
#endif

/* Code the float chunk.  buf is the source (enc) or destination (dec). */
static void mix_float_code(struct mix_fmodel *m, const struct mix_tabs *tb, struct mix_coder *c,
                           struct mix_bits *rb, const int enc, const struct mix_layout *l,
                           const struct codec_lvl_args *a, uint8_t *buf, size_t len,
                           unsigned flags, unsigned base)
{
	const unsigned esz = l->esz, ebits = l->ebits, mbits = l->mbits;
	const unsigned emask = (1u << ebits) - 1, sshift = esz * 8 - 1;
	const size_t phase = a->elem_phase < esz && a->elem_phase <= len ? a->elem_phase : 0;
	const size_t nel = (len - phase) / esz;
	uint8_t *el = buf + phase;
	const uint8_t *ref = (flags & MIX_PF_REF) ? a->ref + phase : NULL;
	const size_t nref = ref && a->ref_len > phase ? (a->ref_len - phase) / esz : 0;
	const size_t row = a->row_elems ? a->row_elems : 2;
	const unsigned lowz = (flags & MIX_PF_LOWZERO) ? 16 : 0;
	const unsigned nplain = mbits - MIX_MTOP - lowz; /* plain mantissa bits */
	int avg = 16 << 8; /* local mean leaf, 8.8 fixed point, 0 .. 31 << 8 */
	unsigned peq = 0;
	unsigned l1 = 0;

	for (size_t i = 0; i < phase; i++)
		buf[i] = (uint8_t)mix_byte_code0(m, tb, c, enc, buf[i]);

	for (size_t i = 0; i < nel; i++) {
		uint32_t v = enc ? mix_load(el + i * esz, esz) : 0;
		unsigned e = (v >> mbits) & emask;
		unsigned leaf = mix_leaf(e, base, ebits);
		unsigned l2 = 0, lr = 0, r = 0;
		uint32_t rv = 0;

		if (i >= row)
			l2 = mix_leaf((mix_load(el + (i - row) * esz, esz) >> mbits) & emask, base, ebits);
		if (i < nref) {
			rv = mix_load(ref + i * esz, esz);
			lr = mix_leaf((rv >> mbits) & emask, base, ebits);
			r = 1;

			/* series coding: most elements of a checkpoint may not move */
			uint32_t *ce = &m->eq[peq];
			int y = mix_code_bit(c, enc, v == rv, mix_clamp12(mix_ctr_p12(*ce)));

			mix_ctr_update(ce, y, tb, 255);
			peq = (peq * 2 + (unsigned)y) & 3;
			if (y) {
				if (!enc)
					mix_store(el + i * esz, rv, esz);
				v = rv;
				e = (v >> mbits) & emask;
				leaf = mix_leaf(e, base, ebits);
				goto next;
			}
		}

		/* exponent leaf: previous / above / both / local average / ref */
		{
			uint32_t *c1 = m->e1[l1], *c2 = m->e2[l2];
			uint32_t *c4 = m->e4[avg >> 8], *c5 = m->e5[lr];
			const struct mix_tree *t = &m->tree;
			unsigned node = t->root, code = t->code[leaf & (MIX_NLEAF - 1)];
			int d = (int)t->len[leaf & (MIX_NLEAF - 1)] - 1;

			while (!(node & MIX_TLEAF)) {
				struct mix_mixer mx;
				int y = enc ? (int)(code >> (d-- & 15)) & 1 : 0, p;

				mx.n = 0;
				mix_mixer_add(&mx, mix_stretch(tb, mix_ctr_p12(c1[node])));
				mix_mixer_add(&mx, mix_stretch(tb, mix_ctr_p12(c2[node])));
				mix_mixer_add(&mx, mix_stretch(tb, mix_ctr_p12(c4[node])));
				if (r)
					mix_mixer_add(&mx, mix_stretch(tb, mix_ctr_p12(c5[node])));
				mix_mixer_add(&mx, 256);
				p = mix_clamp12(mix_mixer_predict(&mx, tb, m->ew[r][node]));
				y = mix_code_bit(c, enc, y, p);
				MIX_STAT(0, y, p);
				mix_mixer_update(&mx, y, MIX_LR_EXP);
				mix_ctr_update(&c1[node], y, tb, MIX_LIMIT_EXP);
				mix_ctr_update(&c2[node], y, tb, MIX_LIMIT_EXP);
				mix_ctr_update(&c4[node], y, tb, MIX_LIMIT_EXP);
				if (r)
					mix_ctr_update(&c5[node], y, tb, MIX_LIMIT_EXP);
				node = t->child[node][y];
			}
			leaf = node & (MIX_NLEAF - 1);
		}
		if (ebits == 5) {
			e = leaf;
		} else if (leaf) {
			e = base + leaf - 1;
		} else {
			uint32_t *cz = &m->ez[l1 == 0];
			int z = mix_code_bit(c, enc, e == 0, mix_clamp12(mix_ctr_p12(*cz)));

			mix_ctr_update(cz, z, tb, 255);
			if (z) {
				e = 0;
			} else {
				unsigned x = 0;

				for (int b = 7; b >= 0; b--)
					x = x * 2 + (unsigned)mix_code_bit(c, enc, (e >> b) & 1, 2048);
				e = x;
			}
		}

		/* exact zeros (pruned / padded weights) would otherwise pay for a
		 * full plain mantissa */
		if (e == 0) {
			uint32_t *cz = &m->ez[2 + (l1 == 0)];
			int z = mix_code_bit(c, enc, (v & ((1u << mbits) - 1)) == 0,
			                     mix_clamp12(mix_ctr_p12(*cz)));

			mix_ctr_update(cz, z, tb, 255);
			if (z) {
				uint32_t *cs = &m->ez[4];
				int sg = mix_code_bit(c, enc, (int)(v >> sshift), mix_clamp12(mix_ctr_p12(*cs)));

				mix_ctr_update(cs, sg, tb, 255);
				v = (uint32_t)sg << sshift;
				if (!enc)
					mix_store(el + i * esz, v, esz);
				goto next;
			}
		}

		if (r && e == ((rv >> mbits) & emask)) {
			/* series coding: a moved weight usually differs from the
			 * reference in its low mantissa bits only, so code the XOR
			 * residual from the top, under "all higher bits equal" */
			const uint32_t mmask = (1u << mbits) - 1;
			uint32_t x = (v ^ rv) & mmask, xr = 0;
			unsigned hz = 1;

			for (int b = (int)mbits - 1; b >= (int)lowz; b--) {
				uint32_t *cx = &m->mx[b][hz];
				int y = mix_code_bit(c, enc, (x >> b) & 1, mix_clamp12(mix_ctr_p12(*cx)));

				mix_ctr_update(cx, y, tb, MIX_LIMIT_MANT);
				hz &= !y;
				xr |= (uint32_t)y << b;
			}
			uint32_t sg = mix_bits_code(rb, enc, v >> sshift, 1);

			if (!enc) {
				v = sg << sshift | (uint32_t)e << mbits |
				    ((rv ^ xr) & mmask & ~((1u << lowz) - 1));
				mix_store(el + i * esz, v, esz);
			}
			goto next;
		}

		if (flags & MIX_PF_SPARSE) {
			/* few distinct values (dequantized tensors): sign and
			 * mantissa follow from the exponent, code them as one tree */
			uint32_t *cv = m->sv + ((size_t)leaf << 11);
			const unsigned nb = mbits + 1, mmask = (1u << mbits) - 1;
			uint32_t sm = (v >> sshift) << mbits | (v & mmask);
			unsigned vn = 1;

			assert(nb <= 11);
			for (int b = (int)nb - 1; b >= 0; b--) {
				int y = (sm >> b) & 1;
				int p = mix_clamp12(mix_ctr_p12(cv[vn]));

				y = mix_code_bit(c, enc, y, p);
				mix_ctr_update(&cv[vn], y, tb, MIX_LIMIT_MANT);
				vn = vn * 2 + (unsigned)y;
			}
			if (!enc) {
				sm = vn & ((1u << nb) - 1);
				v = (sm >> mbits) << sshift | (uint32_t)e << mbits | (sm & mmask);
				mix_store(el + i * esz, v, esz);
			}
			goto next;
		}

		/* mantissa top bits under the leaf; sign and the rest are plain */
		{
			uint32_t *cm = m->mt[leaf];
			unsigned mn = 1;

			for (int b = MIX_MTOP - 1; b >= 0; b--) {
				int y = (v >> (mbits - MIX_MTOP + (unsigned)b)) & 1;
				int p = mix_clamp12(mix_ctr_p12(cm[mn]));

				y = mix_code_bit(c, enc, y, p);
				MIX_STAT(2, y, p);
				mix_ctr_update(&cm[mn], y, tb, MIX_LIMIT_MANT);
				mn = mn * 2 + (unsigned)y;
			}
			uint32_t plain = (v >> lowz) & ((1u << nplain) - 1);

			plain |= (v >> sshift) << nplain;
			plain = mix_bits_code(rb, enc, plain, nplain + 1);
			if (!enc) {
				v = (plain >> nplain) << sshift | (uint32_t)e << mbits |
				    (mn & ((1u << MIX_MTOP) - 1)) << (mbits - MIX_MTOP) |
				    (plain & ((1u << nplain) - 1)) << lowz;
				mix_store(el + i * esz, v, esz);
			}
		}
	next:
		avg += ((int)(leaf << 8) - avg) >> 3;
		assert(avg >= 0 && avg < (MIX_NLEAF << 8));
		l1 = leaf;
	}
	for (size_t i = phase + nel * esz; i < len; i++)
		buf[i] = (uint8_t)mix_byte_code0(m, tb, c, enc, buf[i]);
}

/* ---- state and entry points -------------------------------------------- */

static struct mix_state *mix_state_get(struct codec_ctx *ctx)
{
	if (!ctx->mix) {
		struct mix_state *s = calloc(1, sizeof(*s));

		if (!s)
			return NULL;
		mix_tabs_init(&s->tabs);
		ctx->mix = s;
	}
	return ctx->mix;
}

static int mix_float_prepare(struct mix_state *s)
{
	if (!s->fm) {
		s->fm = malloc(sizeof(*s->fm));
		if (!s->fm)
			return -ENOMEM;
	}
	return 0;
}

static int mix_is_float(int dtype)
{
	return dtype == CODEC_DTYPE_BF16 || dtype == CODEC_DTYPE_FP16 || dtype == CODEC_DTYPE_FP32;
}

static ssize_t mix_float_encode(struct mix_state *s, const struct codec_lvl_args *a,
                                const uint8_t *src, size_t len, uint8_t *dst, size_t cap,
                                unsigned flags)
{
	struct mix_layout l;
	struct mix_coder c;
	struct mix_bits rb = {0};
	size_t ph, alen, plen;
	uint8_t lens[MIX_NLEAF];
	unsigned base;
	int rc;

	mix_layout_get(a->dtype, &l);
	ph = a->elem_phase < l.esz && a->elem_phase <= len ? a->elem_phase : 0;
	if (l.esz == 4 && len >= ph + 4) {
		int zero = 1;

		for (size_t i = ph; zero && i + 4 <= len; i += 4)
			zero = !src[i] && !src[i + 1];
		if (zero)
			flags |= MIX_PF_LOWZERO;
	}
	if (l.esz == 2 && len >= ph + 2) {
		/* dequantized tensors hold few distinct values */
		uint64_t seen[1024] = {0};
		size_t distinct = 0, nel = (len - ph) / 2;

		for (size_t i = ph; i + 2 <= len; i += 2) {
			uint32_t v = mix_load(src + i, 2);
			uint64_t bit = 1ull << (v & 63);

			distinct += !(seen[v >> 6] & bit);
			seen[v >> 6] |= bit;
		}
		if (distinct * MIX_SPARSE_RATIO < nel)
			flags |= MIX_PF_SPARSE;
	}
	rc = mix_float_prepare(s);
	if (rc)
		return rc;
	if (s->plain_cap < len + 8) {
		free(s->plain);
		s->plain_cap = 0;
		s->plain = malloc(len + 8);
		if (!s->plain)
			return -ENOMEM;
		s->plain_cap = len + 8;
	}
	if (cap < MIX_FHDR + 1)
		return -ENOSPC;
	base = mix_window_pick(src + ph, (len - ph) / l.esz, &l);
	{
		uint32_t count[MIX_NLEAF] = {0};

		for (size_t i = ph; i + l.esz <= len; i += l.esz)
			count[mix_leaf((mix_load(src + i, l.esz) >> l.mbits) & ((1u << l.ebits) - 1),
			               base, l.ebits)]++;
		if (len < ph + l.esz)
			count[0] = 1; /* no element: any valid tree */
		mix_tree_lengths(count, lens);
		if (mix_tree_build(&s->fm->tree, lens))
			return -EINVAL; /* cannot happen: lengths come from counts */
		mix_fmodel_reset(s->fm, &s->fm->tree);
		if (flags & MIX_PF_SPARSE)
			mix_ctr_fill(s->fm->sv, MIX_SV_SIZE);
	}
	rb.p = s->plain;
	rb.end = s->plain + s->plain_cap;
	mix_enc_init(&c.e, dst + MIX_FHDR, dst + cap);
	mix_float_code(s->fm, &s->tabs, &c, &rb, 1, &l, a, (uint8_t *)(uintptr_t)src, len, flags, base);
	mix_enc_flush(&c.e);
	mix_bits_flush(&rb);
	if (c.e.full)
		return -ENOSPC;
	alen = (size_t)(c.e.out - dst) - MIX_FHDR;
	plen = (size_t)(rb.p - s->plain);
	if (MIX_FHDR + alen + plen > cap)
		return -ENOSPC;
	dst[0] = (uint8_t)flags;
	dst[1] = (uint8_t)base;
	for (int i = 0; i < 4; i++)
		dst[2 + i] = (uint8_t)(alen >> (8 * i));
	for (int i = 0; i < MIX_NLEAF / 2; i++)
		dst[6 + i] = (uint8_t)(lens[2 * i] | lens[2 * i + 1] << 4);
	memcpy(dst + MIX_FHDR + alen, s->plain, plen);
	return (ssize_t)(MIX_FHDR + alen + plen);
}

static ssize_t mix_float_decode(struct mix_state *s, const struct codec_lvl_args *a,
                                const uint8_t *payload, size_t plen, uint8_t *dst,
                                size_t raw_len)
{
	struct mix_layout l;
	struct mix_coder c;
	struct mix_bits rb = {0};
	unsigned flags = payload[0], base;
	uint8_t lens[MIX_NLEAF];
	size_t alen = 0;
	int rc;

	mix_layout_get(a->dtype, &l);
	if (plen < MIX_FHDR)
		return -EBADMSG;
	if ((flags & MIX_PF_LOWZERO) && l.esz != 4)
		return -EBADMSG;
	if ((flags & MIX_PF_SPARSE) && l.esz != 2)
		return -EBADMSG;
	base = payload[1];
	for (int i = 0; i < 4; i++)
		alen |= (size_t)payload[2 + i] << (8 * i);
	if (alen > plen - MIX_FHDR || (l.ebits == 5 && base))
		return -EBADMSG;
	rc = mix_float_prepare(s);
	if (rc)
		return rc;
	for (int i = 0; i < MIX_NLEAF / 2; i++) {
		lens[2 * i] = payload[6 + i] & 15;
		lens[2 * i + 1] = payload[6 + i] >> 4;
	}
	if (mix_tree_build(&s->fm->tree, lens))
		return -EBADMSG;
	mix_fmodel_reset(s->fm, &s->fm->tree);
	if (flags & MIX_PF_SPARSE)
		mix_ctr_fill(s->fm->sv, MIX_SV_SIZE);
	mix_dec_init(&c.d, payload + MIX_FHDR, payload + MIX_FHDR + alen);
	rb.in = payload + MIX_FHDR + alen;
	rb.end = (uint8_t *)(uintptr_t)(payload + plen);
	mix_float_code(s->fm, &s->tabs, &c, &rb, 0, &l, a, dst, raw_len, flags, base);
	/* The frame checksum catches wrong output; leftover input is a
	 * cheap early sign of a corrupt payload. */
	if (c.d.end - c.d.in > 4 || rb.end - rb.in > 4)
		return -EBADMSG;
	return (ssize_t)raw_len;
}

ssize_t mix_encode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                   const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
	struct mix_state *s = mix_state_get(ctx);
	struct mix_coder c;
	unsigned flags = 0;
	int rc;

	if (!s)
		return -ENOMEM;
	if (a->ref && a->ref_len)
		flags |= MIX_PF_REF;
	if (mix_is_float(a->dtype))
		return mix_float_encode(s, a, src, len, dst, cap, flags);
	if (cap < 2)
		return -ENOSPC;
	rc = mix_bytes_prepare(s);
	if (rc)
		return rc;
	dst[0] = (uint8_t)flags;
	mix_enc_init(&c.e, dst + 1, dst + cap);
	mix_bytes_code(s->bm, &s->tabs, &c, 1, a, (uint8_t *)(uintptr_t)src, len, flags);
	mix_enc_flush(&c.e);
	if (c.e.full)
		return -ENOSPC;
	return c.e.out - dst;
}

ssize_t mix_decode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                   const uint8_t *payload, size_t plen, uint8_t *dst, size_t raw_len)
{
	struct mix_state *s = mix_state_get(ctx);
	struct mix_coder c;
	unsigned flags;
	int rc;

	if (!s)
		return -ENOMEM;
	if (plen < 1)
		return -EBADMSG;
	flags = payload[0];
	if (flags & ~(unsigned)(MIX_PF_REF | MIX_PF_LOWZERO | MIX_PF_SPARSE))
		return -EBADMSG;
	if ((flags & MIX_PF_REF) && (!a->ref || !a->ref_len))
		return -EBADMSG;
	if (mix_is_float(a->dtype))
		return mix_float_decode(s, a, payload, plen, dst, raw_len);
	if (flags & (MIX_PF_LOWZERO | MIX_PF_SPARSE))
		return -EBADMSG;
	rc = mix_bytes_prepare(s);
	if (rc)
		return rc;
	mix_dec_init(&c.d, payload + 1, payload + plen);
	mix_bytes_code(s->bm, &s->tabs, &c, 0, a, dst, raw_len, flags);
	if (c.d.end - c.d.in > 4)
		return -EBADMSG;
	return (ssize_t)raw_len;
}

void mix_state_free(struct mix_state *s)
{
	if (!s)
		return;
	free(s->fm);
	free(s->plain);
	mix_bytes_free(s->bm);
	free(s);
}
