/*
 * mix_i.h - the small parts of the CODEC_LEVEL_MIX coder (private).
 *
 * Each part has a written contract and keeps all state in caller-owned
 * structs (no globals: several threads code at once with separate ctx).
 *
 * Fixed-point domains used throughout:
 *   p12    probability that the next bit is 1, 12 bits: 1..4095 (/4096).
 *   st     stretch(p) = ln(p/(1-p)) scaled by 256, clamped to [-2047, 2047].
 *   ctr    adaptive counter, uint32: P(1) in the high 22 bits, hit count in
 *          the low 10 bits (0..MIX_CTR_LIMIT_MAX); learning rate 1/(n+1.5)
 *          so a fresh context learns fast and an old one averages.
 *   weight mixer weights, int32, 16.16 fixed point (65536 = 1.0).
 *   apm    SSE knots, uint16 P(1) scaled by 65536, 33 knots per context.
 *
 * The coder sees only a p12 (binary arithmetic coder after lpaq1: 32-bit,
 * carryless, one byte flushed; the decoder pads a short payload with 0xff
 * so garbage decodes to garbage but never reads past the payload).
 */
#ifndef MIXFS_MIX_I_H
#define MIXFS_MIX_I_H

#include <assert.h>
#include <stdint.h>
#include <stddef.h>

#define MIX_ST_MAX 2047
#define MIX_CTR_LIMIT_MAX 1023

/* stretch/squash tables; built once per mix_state (mix_tabs_init). */
struct mix_tabs {
	int16_t stretch[4096]; /* p12 -> st */
	int16_t squash[4096];  /* st + 2048 -> p12 in [1, 4095] */
	int32_t dt[1024];      /* counter learning rate 65536/(n+1.5) */
};

void mix_tabs_init(struct mix_tabs *t);

static inline int mix_squash(const struct mix_tabs *t, int st)
{
	if (st > MIX_ST_MAX)
		st = MIX_ST_MAX;
	if (st < -MIX_ST_MAX)
		st = -MIX_ST_MAX;
	return t->squash[st + 2048];
}

static inline int mix_stretch(const struct mix_tabs *t, int p12)
{
	assert(p12 >= 0 && p12 < 4096);
	return t->stretch[p12];
}

/* ---- counters ---------------------------------------------------------- */

/* Counter value for probability p (0..1) after n virtual observations. */
static inline uint32_t mix_ctr_make(double p, unsigned n)
{
	if (p < 1.0 / 4096)
		p = 1.0 / 4096;
	if (p > 4095.0 / 4096)
		p = 4095.0 / 4096;
	assert(n <= MIX_CTR_LIMIT_MAX);
	return ((uint32_t)(p * (1u << 22)) << 10) | n;
}

static inline void mix_ctr_fill(uint32_t *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		c[i] = mix_ctr_make(0.5, 0);
}

static inline int mix_ctr_p12(uint32_t c)
{
	return (int)(c >> 20);
}

/* Move the counter toward bit y; the count saturates at limit so that a
 * context keeps tracking a drifting tensor instead of freezing. */
static inline void mix_ctr_update(uint32_t *c, int y, const struct mix_tabs *t,
                                  unsigned limit)
{
	uint32_t v = *c;
	unsigned n = v & 1023u;
	int32_t p = (int32_t)(v >> 10);
	int32_t target = y ? (1 << 22) - 1 : 0;

	assert(limit <= MIX_CTR_LIMIT_MAX);
	p += (int32_t)(((int64_t)(target - p) * t->dt[n]) >> 16);
	assert(p >= 0 && p < (1 << 22));
	n += n < limit;
	*c = ((uint32_t)p << 10) | n;
}

/* ---- mixer -------------------------------------------------------------- */

#define MIX_NIN_MAX 8

/* A logistic mixer: p = squash(sum w_i * x_i).  Callers add up to
 * MIX_NIN_MAX stretched inputs, select a weight set, predict, then update
 * with the coded bit.  The weight vector is caller-owned memory. */
struct mix_mixer {
	int x[MIX_NIN_MAX];
	int n;
	int pr;      /* last prediction, p12 */
	int32_t *w;  /* selected weight set, n entries */
};

static inline void mix_mixer_add(struct mix_mixer *m, int st)
{
	assert(m->n < MIX_NIN_MAX);
	assert(st >= -MIX_ST_MAX - 1 && st <= MIX_ST_MAX);
	m->x[m->n++] = st;
}

static inline int mix_mixer_predict(struct mix_mixer *m, const struct mix_tabs *t,
                                    int32_t *w)
{
	int64_t dot = 0;

	m->w = w;
	for (int i = 0; i < m->n; i++)
		dot += (int64_t)m->x[i] * w[i];
	dot >>= 16;
	if (dot > MIX_ST_MAX)
		dot = MIX_ST_MAX;
	if (dot < -MIX_ST_MAX)
		dot = -MIX_ST_MAX;
	m->pr = mix_squash(t, (int)dot);
	return m->pr;
}

/* lr: error scale in 1/4 steps, 1..64.  |x| <= 2047 and |err| <= 4095 * 64
 * keep the product inside int32. */
static inline void mix_mixer_update(struct mix_mixer *m, int y, int lr)
{
	int err = ((y << 12) - m->pr) * lr;

	assert(lr >= 1 && lr <= 64);
	for (int i = 0; i < m->n; i++)
		m->w[i] += (m->x[i] * err + (1 << 11)) >> 12;
	m->n = 0;
}

/* ---- APM / SSE ---------------------------------------------------------- */

/* Refines a probability given a small context by interpolating between 33
 * knots over the stretch domain (lpaq1 APM).  t has ctxs * 33 entries. */
void mix_apm_init(uint16_t *t, size_t ctxs, const struct mix_tabs *tb);

static inline int mix_apm_p(const uint16_t *t, const struct mix_tabs *tb, int pr,
                            size_t ctx, uint32_t *idx)
{
	int s = mix_stretch(tb, pr) + 2048; /* 1 .. 4095 */
	int lo = s >> 7, w = s & 127;
	size_t i = ctx * 33 + (size_t)lo;

	assert(lo >= 0 && lo < 32);
	*idx = (uint32_t)(i + (size_t)(w >> 6));
	return (t[i] * (128 - w) + t[i + 1] * w) >> 11;
}

static inline void mix_apm_update(uint16_t *t, uint32_t idx, int y, int rate)
{
	int g = (y << 16) + (y << rate) - y - y;

	t[idx] = (uint16_t)(t[idx] + ((g - t[idx]) >> rate));
}

/* ---- binary arithmetic coder ------------------------------------------- */

struct mix_enc {
	uint32_t x1, x2;
	uint8_t *out, *end;
	int full; /* ran out of room: result is -ENOSPC */
};

struct mix_dec {
	uint32_t x1, x2, x;
	const uint8_t *in, *end;
};

static inline void mix_enc_init(struct mix_enc *c, uint8_t *out, uint8_t *end)
{
	c->x1 = 0;
	c->x2 = 0xffffffffu;
	c->out = out;
	c->end = end;
	c->full = 0;
}

static inline void mix_enc_put(struct mix_enc *c, uint8_t b)
{
	if (c->out < c->end)
		*c->out++ = b;
	else
		c->full = 1;
}

/* Code bit y with P(1) = p12/4096. */
static inline void mix_enc_bit(struct mix_enc *c, int y, int p12)
{
	uint32_t r = c->x2 - c->x1;
	uint32_t xmid;

	assert(p12 >= 1 && p12 <= 4095);
	xmid = c->x1 + (r >> 12) * (uint32_t)p12 + (((r & 0xfff) * (uint32_t)p12) >> 12);
	if (y)
		c->x2 = xmid;
	else
		c->x1 = xmid + 1;
	while (((c->x1 ^ c->x2) & 0xff000000u) == 0) {
		mix_enc_put(c, (uint8_t)(c->x2 >> 24));
		c->x1 <<= 8;
		c->x2 = (c->x2 << 8) | 255;
	}
}

static inline void mix_enc_flush(struct mix_enc *c)
{
	mix_enc_put(c, (uint8_t)(c->x1 >> 24));
}

static inline int mix_dec_byte(struct mix_dec *c)
{
	return c->in < c->end ? *c->in++ : 255;
}

static inline void mix_dec_init(struct mix_dec *c, const uint8_t *in, const uint8_t *end)
{
	c->x1 = 0;
	c->x2 = 0xffffffffu;
	c->in = in;
	c->end = end;
	c->x = 0;
	for (int i = 0; i < 4; i++)
		c->x = (c->x << 8) | (uint32_t)mix_dec_byte(c);
}

static inline int mix_dec_bit(struct mix_dec *c, int p12)
{
	uint32_t r = c->x2 - c->x1;
	uint32_t xmid;
	int y;

	assert(p12 >= 1 && p12 <= 4095);
	xmid = c->x1 + (r >> 12) * (uint32_t)p12 + (((r & 0xfff) * (uint32_t)p12) >> 12);
	y = c->x <= xmid;
	if (y)
		c->x2 = xmid;
	else
		c->x1 = xmid + 1;
	while (((c->x1 ^ c->x2) & 0xff000000u) == 0) {
		c->x1 <<= 8;
		c->x2 = (c->x2 << 8) | 255;
		c->x = (c->x << 8) | (uint32_t)mix_dec_byte(c);
	}
	return y;
}

/* ---- raw bit stream ----------------------------------------------------- */

/* Bits that no model predicts (sign, low mantissa) bypass the coder: they
 * are packed LSB first into a stream whose length the decoder derives from
 * the element count, so it needs no length field.  Reads past the end
 * yield zero bits. */
struct mix_bits {
	uint64_t acc;
	unsigned n;          /* bits held in acc */
	uint8_t *p, *end;    /* write or read position */
	const uint8_t *in;
};

static inline void mix_bits_put(struct mix_bits *b, uint32_t v, unsigned k)
{
	assert(k <= 32 && (k == 32 || v < (1u << k)));
	b->acc |= (uint64_t)v << b->n;
	b->n += k;
	if (b->n >= 32) {
		uint32_t w = (uint32_t)b->acc;

		for (int i = 0; i < 4 && b->p < b->end; i++)
			*b->p++ = (uint8_t)(w >> (8 * i));
		b->acc >>= 32;
		b->n -= 32;
	}
}

static inline void mix_bits_flush(struct mix_bits *b)
{
	while (b->n > 0 && b->p < b->end) {
		*b->p++ = (uint8_t)b->acc;
		b->acc >>= 8;
		b->n = b->n > 8 ? b->n - 8 : 0;
	}
}

static inline uint32_t mix_bits_get(struct mix_bits *b, unsigned k)
{
	uint32_t v;

	assert(k <= 32);
	if (b->n < k) {
		uint32_t w = 0;

		if (b->in + 4 <= b->end) {
			w = (uint32_t)b->in[0] | (uint32_t)b->in[1] << 8 |
			    (uint32_t)b->in[2] << 16 | (uint32_t)b->in[3] << 24;
			b->in += 4;
		} else {
			for (int i = 0; b->in < b->end; i++)
				w |= (uint32_t)*b->in++ << (8 * i);
		}
		b->acc |= (uint64_t)w << b->n;
		b->n += 32;
	}
	v = (uint32_t)(b->acc & ((1ull << k) - 1));
	b->acc >>= k;
	b->n -= k;
	return v;
}

static inline uint32_t mix_bits_code(struct mix_bits *b, const int enc, uint32_t v, unsigned k)
{
	if (!k)
		return 0;
	if (enc) {
		mix_bits_put(b, v, k);
		return v;
	}
	return mix_bits_get(b, k);
}

/* One body serves both directions: enc != 0 codes *y, else decodes into
 * it.  Called with a constant enc so the compiler drops the other side. */
struct mix_coder {
	struct mix_enc e;
	struct mix_dec d;
};

static inline int mix_code_bit(struct mix_coder *c, const int enc, int y, int p12)
{
	if (enc) {
		mix_enc_bit(&c->e, y, p12);
		return y;
	}
	return mix_dec_bit(&c->d, p12);
}

#endif
