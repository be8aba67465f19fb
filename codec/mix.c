/*
 * mix.c - CODEC_LEVEL_MIX: context-mixing coder for float tensors and bytes.
 *
 * Payload (FORMAT.md "mix payload"): one flags byte, then the arithmetic
 * coded stream.  Float chunks are coded element by element as fields:
 * exponent (binary tree, MSB first), sign, mantissa high bits (tree), low
 * mantissa bits (per position).  Parts (mix_i.h): counters, a logistic
 * mixer with weight sets per tree node, one APM, the binary coder.
 * Non-float chunks go to the byte model (mix_bytes.c).
 *
 * Every chunk starts from the same model state (chunks decode
 * independently); the exponent counters start from priors learned offline
 * so a 64 KiB chunk does not pay for a cold model.  All prior arithmetic
 * is integer so that every build derives bit-identical models.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_i.h"
#include "codec/mix_i.h"
#include "codec/mix_model_i.h"

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

/* Exponent contexts are quantized to MIX_Q buckets: 0 = zero/subnormal,
 * small/large exponents clamp to the ends, MIX_Q_NONE = no such element
 * (before the chunk start, or no reference). */
#define MIX_Q 64
#define MIX_Q_NONE 63

static inline unsigned mix_qexp(unsigned e, int ebits)
{
	if (ebits == 5)
		return e; /* 0..31 */
	if (e == 0)
		return 0;
	if (e <= 81)
		return 1;
	if (e >= 142)
		return 62;
	return e - 80; /* 2..61 */
}

/* Representative exponent of a bucket, for priors. */
static unsigned mix_qexp_rep(unsigned q, int ebits)
{
	if (ebits == 5)
		return q;
	if (q == 0)
		return 0;
	if (q == 62)
		return 142;
	return q + 80;
}

/* P(e - e_ctx = d) per mille for |d| = 0..12, measured on TF.js weights
 * (bf16 and fp16 agree within a few per mille). */
static const uint16_t mix_prior_delta[13] = {190, 160, 105, 62, 34, 18, 9, 4, 2, 1, 1, 1, 1};

/* Node counters of a binary tree over ebits-bit symbols from a mass
 * table (all integer: priors must be identical on every build). */
static void mix_prior_tree(uint32_t *ctr, const uint32_t *mass, int ebits, unsigned n)
{
	uint64_t cum[257];
	unsigned nsym = 1u << ebits;

	cum[0] = 0;
	for (unsigned e = 0; e < nsym; e++)
		cum[e + 1] = cum[e] + mass[e];
	ctr[0] = mix_ctr_make(0.5, 0);
	for (unsigned node = 1; node < nsym; node++) {
		int depth = 0;

		while ((node >> (depth + 1)) != 0)
			depth++;
		unsigned k = (unsigned)(ebits - depth); /* bits below node, >= 1 */
		unsigned lo = (node - (1u << depth)) << k;
		unsigned mid = lo + (1u << (k - 1)), hi = lo + (1u << k);
		uint64_t m1 = cum[hi] - cum[mid], tot = cum[hi] - cum[lo];
		uint64_t p22 = ((m1 << 22) + tot / 2) / tot;

		if (p22 < 1024)
			p22 = 1024;
		if (p22 > (1u << 22) - 1024)
			p22 = (1u << 22) - 1024;
		ctr[node] = ((uint32_t)p22 << 10) | n;
	}
}

/* Mass of exponent e given a context exponent bucket q. */
static void mix_prior_mass(uint32_t *mass, unsigned q, int ebits)
{
	unsigned nsym = 1u << ebits;
	unsigned centre = ebits == 5 ? 10 : 122; /* typical weight exponent */
	unsigned zero = ebits == 5 ? 60 : 2;    /* per mille of exact zeros */

	if (q != MIX_Q_NONE && q != 0)
		centre = mix_qexp_rep(q, ebits);
	if (q == 0)
		zero *= 4;
	for (unsigned e = 0; e < nsym; e++) {
		unsigned d = e > centre ? e - centre : centre - e;

		mass[e] = 1 + (d <= 12 ? mix_prior_delta[d] * 64u : 0) + (e == 0 ? zero * 64u : 0);
	}
}

static void mix_fmodel_template(struct mix_tmpl *t, int ebits, const struct mix_tabs *tb)
{
	uint32_t mass[256];

	for (unsigned q = 0; q < MIX_Q; q++) {
		mix_prior_mass(mass, q, ebits);
		mix_prior_tree(t->exp[q], mass, ebits, MIX_PRIOR_N);
	}
	t->ebits = ebits;
	(void)tb;
}

static void mix_fmodel_reset(struct mix_fmodel *m, const struct mix_tmpl *t,
                             const struct mix_tabs *tb)
{
	memcpy(m->e1, t->exp, sizeof(m->e1));
	memcpy(m->e2, t->exp, sizeof(m->e2));
	memcpy(m->e4, t->exp, sizeof(m->e4));
	for (size_t i = 0; i < MIX_E3_SIZE; i++)
		m->e3[i] = mix_ctr_make(0.5, 0);
	for (int r = 0; r < 2; r++)
		for (int node = 0; node < 256; node++) {
			int32_t *w = m->ew[r][node];

			w[0] = 26000; /* prev */
			w[1] = 20000; /* above */
			w[2] = 16000; /* prev x above */
			w[3] = r ? 16000 : 0; /* reference */
			w[4] = 0;     /* bias */
			for (int i = 5; i < MIX_NIN_MAX; i++)
				w[i] = 0;
		}
	mix_apm_init(m->eapm, 256, tb);
	for (size_t i = 0; i < sizeof(m->sg) / sizeof(m->sg[0]); i++)
		m->sg[i] = mix_ctr_make(0.5, 0);
	for (size_t i = 0; i < sizeof(m->m1) / sizeof(m->m1[0]); i++)
		m->m1[i] = mix_ctr_make(0.5, 0);
	for (size_t i = 0; i < sizeof(m->mr) / sizeof(m->mr[0]); i++)
		m->mr[i] = mix_ctr_make(0.5, 0);
	for (size_t i = 0; i < sizeof(m->ml) / sizeof(m->ml[0]); i++)
		m->ml[i] = mix_ctr_make(0.5, 0);
	for (int d = 0; d < 32; d++) {
		m->mw[d][0] = 65536;
		m->mw[d][1] = 20000;
		m->mw[d][2] = 0;
	}
	for (int i = 0; i < 256; i++)
		m->bt[i] = mix_ctr_make(0.5, 0);
}

/* Element layout of a float dtype. */
struct mix_layout {
	unsigned esz, ebits, mbits, mtop, mlow; /* mtop + mlow = mbits */
};

static void mix_layout_get(int dtype, struct mix_layout *l)
{
	switch (dtype) {
	case CODEC_DTYPE_BF16:
		*l = (struct mix_layout){2, 8, 7, 7, 0};
		break;
	case CODEC_DTYPE_FP16:
		*l = (struct mix_layout){2, 5, 10, 7, 3};
		break;
	default:
		*l = (struct mix_layout){4, 8, 23, 7, 16};
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

/* Loose bytes (before the first whole element, after the last): order-0. */
static inline unsigned mix_byte_code0(struct mix_fmodel *m, const struct mix_tabs *tb,
                                      struct mix_coder *c, const int enc, unsigned byte)
{
	unsigned node = 1;

	for (int b = 7; b >= 0; b--) {
		int y = (byte >> b) & 1;
		int p = mix_ctr_p12(m->bt[node]);

		p = p < 1 ? 1 : p;
		y = mix_code_bit(c, enc, y, p);
		mix_ctr_update(&m->bt[node], y, tb, 30);
		node = node * 2 + (unsigned)y;
	}
	return node & 255;
}

static inline int mix_clamp12(int p)
{
	return p < 1 ? 1 : p > 4095 ? 4095 : p;
}

/* Code one float chunk.  buf is the source (enc) or destination (dec). */
static void mix_float_code(struct mix_fmodel *m, const struct mix_tabs *tb, struct mix_coder *c,
                           const int enc, const struct mix_layout *l, const struct codec_lvl_args *a,
                           uint8_t *buf, size_t len, unsigned flags)
{
	const unsigned esz = l->esz, ebits = l->ebits, mbits = l->mbits;
	const unsigned emask = (1u << ebits) - 1, sshift = esz * 8 - 1;
	const size_t phase = a->elem_phase < esz && a->elem_phase <= len ? a->elem_phase : 0;
	const size_t nel = (len - phase) / esz;
	uint8_t *el = buf + phase;
	const uint8_t *ref = (flags & MIX_PF_REF) ? a->ref + phase : NULL;
	const size_t nref = ref && a->ref_len > phase ? (a->ref_len - phase) / esz : 0;
	const size_t row = a->row_elems ? a->row_elems : 2;
	const unsigned mlow = (flags & MIX_PF_LOWZERO) ? 0 : l->mlow;
	const int r = nref != 0;
	unsigned ps = 0;

	for (size_t i = 0; i < phase; i++)
		buf[i] = (uint8_t)mix_byte_code0(m, tb, c, enc, buf[i]);

	for (size_t i = 0; i < nel; i++) {
		uint32_t v = enc ? mix_load(el + i * esz, esz) : 0;
		unsigned e = (v >> mbits) & emask;
		unsigned s = v >> sshift;
		unsigned mant = v & ((1u << mbits) - 1);
		unsigned q1 = MIX_Q_NONE, qa = MIX_Q_NONE, qr = MIX_Q_NONE, sa = 2;
		uint32_t rv = 0;

		if (i > 0)
			q1 = mix_qexp((mix_load(el + (i - 1) * esz, esz) >> mbits) & emask, (int)ebits);
		if (i >= row) {
			uint32_t av = mix_load(el + (i - row) * esz, esz);

			qa = mix_qexp((av >> mbits) & emask, (int)ebits);
			sa = av >> sshift;
		}
		if (i < nref) {
			rv = mix_load(ref + i * esz, esz);
			qr = mix_qexp((rv >> mbits) & emask, (int)ebits);
		}

		/* exponent: tree MSB first, prev / above / both / ref mixed */
		uint32_t *c1 = m->e1[q1], *c2 = m->e2[qa], *c4 = m->e4[qr];
		uint32_t h3 = ((q1 * MIX_Q + qa) * 0x9E3779B1u) >> 24 << 8;
		unsigned node = 1;

		for (int b = (int)ebits - 1; b >= 0; b--) {
			struct mix_mixer mx;
			uint32_t *c3 = &m->e3[(h3 | node) & (MIX_E3_SIZE - 1)];
			uint32_t ai;
			int y = (e >> b) & 1, p, pa;

			mx.n = 0;
			mix_mixer_add(&mx, mix_stretch(tb, mix_ctr_p12(c1[node])));
			mix_mixer_add(&mx, mix_stretch(tb, mix_ctr_p12(c2[node])));
			mix_mixer_add(&mx, mix_stretch(tb, mix_ctr_p12(*c3)));
			mix_mixer_add(&mx, r ? mix_stretch(tb, mix_ctr_p12(c4[node])) : 0);
			mix_mixer_add(&mx, 256);
			p = mix_mixer_predict(&mx, tb, m->ew[r][node]);
			pa = mix_apm_p(m->eapm, tb, p, node, &ai);
			p = mix_clamp12((p + 3 * pa) >> 2);
			y = mix_code_bit(c, enc, y, p);
			mix_mixer_update(&mx, y, 6);
			mix_apm_update(m->eapm, ai, y, 7);
			mix_ctr_update(&c1[node], y, tb, MIX_LIMIT_EXP);
			mix_ctr_update(&c2[node], y, tb, MIX_LIMIT_EXP);
			mix_ctr_update(c3, y, tb, MIX_LIMIT_EXP);
			if (r)
				mix_ctr_update(&c4[node], y, tb, MIX_LIMIT_EXP);
			node = node * 2 + (unsigned)y;
		}
		e = node & emask;
		const unsigned qe = mix_qexp(e, (int)ebits);

		/* sign: nearly random; neighbours' signs catch sign-structured rows */
		{
			uint32_t *cs = &m->sg[(qe * 2 + ps) * 3 + sa];
			int p = mix_clamp12(mix_ctr_p12(*cs));

			s = (unsigned)mix_code_bit(c, enc, (int)s, p);
			mix_ctr_update(cs, (int)s, tb, MIX_LIMIT_SIGN);
			ps = s;
		}

		/* mantissa high bits: tree under (exponent, sign) */
		{
			const unsigned mt = l->mtop, shift = mbits - mt;
			uint32_t *cm = &m->m1[(qe * 2 + s) << 7];
			unsigned rtop = (rv & ((1u << mbits) - 1)) >> shift;
			unsigned same = r && qr == qe; /* prefix equal to the reference so far */
			unsigned mn = 1;

			for (int b = (int)mt - 1; b >= 0; b--) {
				int y = (mant >> (shift + (unsigned)b)) & 1;
				int p = mix_ctr_p12(cm[mn]);

				if (r) {
					struct mix_mixer mx;
					unsigned rb = (rtop >> b) & 1;
					uint32_t *cr = &m->mr[((unsigned)b * 2 + same) * 2 + rb];
					int d = (int)mt - 1 - b;

					mx.n = 0;
					mix_mixer_add(&mx, mix_stretch(tb, p));
					mix_mixer_add(&mx, mix_stretch(tb, mix_ctr_p12(*cr)));
					mix_mixer_add(&mx, 256);
					p = mix_clamp12(mix_mixer_predict(&mx, tb, m->mw[d]));
					y = mix_code_bit(c, enc, y, p);
					mix_mixer_update(&mx, y, 4);
					mix_ctr_update(cr, y, tb, MIX_LIMIT_MANT);
					same &= (unsigned)y == rb;
				} else {
					y = mix_code_bit(c, enc, y, mix_clamp12(p));
				}
				mix_ctr_update(&cm[mn], y, tb, MIX_LIMIT_MANT);
				mn = mn * 2 + (unsigned)y;
			}
			mant = (mn & ((1u << mt) - 1)) << shift;

			/* low mantissa bits: mostly noise, one counter per position */
			for (int b = (int)mlow - 1; b >= 0; b--) {
				unsigned rb = r ? (rv >> b) & 1 : 0;
				uint32_t *cl = &m->ml[(((unsigned)b * 2 + rb) * 2 + same) * 2 + (r ? 1u : 0u)];
				int y = (mant >> b) & 1;

				y = mix_code_bit(c, enc, y, mix_clamp12(mix_ctr_p12(*cl)));
				mix_ctr_update(cl, y, tb, MIX_LIMIT_MANT);
				same &= (unsigned)y == rb;
				mant |= (unsigned)y << b;
			}
		}
		if (!enc)
			mix_store(el + i * esz, (uint32_t)s << sshift | (uint32_t)e << mbits | mant, esz);
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

static int mix_float_prepare(struct mix_state *s, int ebits)
{
	struct mix_tmpl **tp = ebits == 5 ? &s->tmpl5 : &s->tmpl8;

	if (!s->fm) {
		s->fm = malloc(sizeof(*s->fm));
		if (!s->fm)
			return -ENOMEM;
	}
	if (!*tp) {
		*tp = malloc(sizeof(**tp));
		if (!*tp)
			return -ENOMEM;
		mix_fmodel_template(*tp, ebits, &s->tabs);
	}
	mix_fmodel_reset(s->fm, *tp, &s->tabs);
	return 0;
}

static int mix_is_float(int dtype)
{
	return dtype == CODEC_DTYPE_BF16 || dtype == CODEC_DTYPE_FP16 || dtype == CODEC_DTYPE_FP32;
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
	if (cap < 2)
		return -ENOSPC;
	if (a->ref && a->ref_len)
		flags |= MIX_PF_REF;
	if (mix_is_float(a->dtype)) {
		struct mix_layout l;

		mix_layout_get(a->dtype, &l);
		if (l.mlow == 16) {
			size_t ph = a->elem_phase < l.esz ? a->elem_phase : 0;
			int zero = len >= ph + l.esz;

			for (size_t i = ph; zero && i + 4 <= len; i += 4)
				zero = !src[i] && !src[i + 1];
			if (zero)
				flags |= MIX_PF_LOWZERO;
		}
		rc = mix_float_prepare(s, (int)l.ebits);
		if (rc)
			return rc;
		dst[0] = (uint8_t)flags;
		mix_enc_init(&c.e, dst + 1, dst + cap);
		mix_float_code(s->fm, &s->tabs, &c, 1, &l, a, (uint8_t *)(uintptr_t)src, len, flags);
	} else {
		rc = mix_bytes_prepare(s);
		if (rc)
			return rc;
		dst[0] = (uint8_t)flags;
		mix_enc_init(&c.e, dst + 1, dst + cap);
		mix_bytes_code(s->bm, &s->tabs, &c, 1, a, (uint8_t *)(uintptr_t)src, len, flags);
	}
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
	if (flags & ~(unsigned)(MIX_PF_REF | MIX_PF_LOWZERO))
		return -EBADMSG;
	if ((flags & MIX_PF_REF) && (!a->ref || !a->ref_len))
		return -EBADMSG;
	mix_dec_init(&c.d, payload + 1, payload + plen);
	if (mix_is_float(a->dtype)) {
		struct mix_layout l;

		mix_layout_get(a->dtype, &l);
		if ((flags & MIX_PF_LOWZERO) && l.mlow != 16)
			return -EBADMSG;
		rc = mix_float_prepare(s, (int)l.ebits);
		if (rc)
			return rc;
		mix_float_code(s->fm, &s->tabs, &c, 0, &l, a, dst, raw_len, flags);
	} else {
		if (flags & MIX_PF_LOWZERO)
			return -EBADMSG;
		rc = mix_bytes_prepare(s);
		if (rc)
			return rc;
		mix_bytes_code(s->bm, &s->tabs, &c, 0, a, dst, raw_len, flags);
	}
	/* The frame checksum catches wrong output; a payload that the coder
	 * consumed far less of than it holds is corrupt as well. */
	if (c.d.end - c.d.in > 4)
		return -EBADMSG;
	return (ssize_t)raw_len;
}

void mix_state_free(struct mix_state *s)
{
	if (!s)
		return;
	free(s->fm);
	free(s->tmpl5);
	free(s->tmpl8);
	mix_bytes_free(s->bm);
	free(s);
}
