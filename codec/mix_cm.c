/*
 * mix_cm.c - CODEC_LEVEL_MIX context-mixing byte model (MIX_PF_CM) for
 * chunks that are not float tensors: text, JSON, token ids, pickles.
 *
 * Every byte is coded as 8 binary decisions, high bit first.  Each decision
 * is predicted by:
 *   o0, o1  the partial byte alone, and under the previous byte (direct
 *           tables);
 *   o2..o6  the partial byte under the last 2, 3, 4 and 6 bytes (hashed:
 *           one 32-byte slot per context and nibble, a 16-bit check and the
 *           15 nodes of the nibble's binary tree);
 *   match   the byte that followed the longest recent repeat of the last
 *           CM_MINLEN bytes, while the partial byte agrees with it (a
 *           probability learned per match length and predicted bit);
 * each an adaptive probability (12 bits, a 4-bit count that sets the
 * learning rate: fast while the context is young).  A logistic mixer adds
 * their stretched probabilities with weights learned online, the weight
 * set chosen by the match state and the partial byte; an adaptive
 * probability map refines the result under the partial byte and the
 * previous byte.  The rANS coder (mix_i.h) codes each decision with the
 * final 15-bit probability.  A byte in a long match (CM_LONG) is first one
 * decision "it is the predicted byte", which skips the eight when true.
 * Over elements of 2 or 4 bytes (token ids, integers: payload flag NUM
 * too, mix_bytes_stride), the byte's place in its element also selects
 * the mixer weights and the order-1 counters and enters the hashes.
 *
 * All arithmetic is integer, so every build decodes every payload alike;
 * tables are sized from the chunk length (known to both sides) and reset
 * at the start of every chunk.  FORMAT.md 4.4 is the specification.  About
 * 20-25x slower than the light ways of mix_bytes.c (~440 instructions a
 * coded bit), 15-25% smaller on text and token ids: used only when the
 * mount asks for it (-o bytes=cm) and kept only when 2% smaller
 * (MIX_CM_GAIN, mix.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mix_model_i.h"

#ifndef CM_MINLEN
#define CM_MINLEN 4 /* bytes that must repeat to start a match */
#endif
#define CM_MAXLEN 65535u
#ifndef CM_LONG
#define CM_LONG 16 /* match length from which a byte is first coded as a hit */
#endif
#define CM_NHASH 4 /* hashed orders (cm_order) */
#define CM_NIN (CM_NHASH + 4) /* mixer inputs: o0, o1, hashed, match, bias */
#define CM_XM (CM_NHASH + 2)  /* the match input */
/* Bytes per rANS segment: up to 9 symbols a byte (a long match's decision
 * and 8 bits) must fit MIX_SEG_SYMS. */
#define CM_SEG 7168u
#ifndef CM_LIMIT
#define CM_LIMIT 8 /* highest count: slowest rate 1/(LIMIT + 1.5) */
#endif
#ifndef CM_LR
#define CM_LR 3 /* mixer learning rate: err * LR / 2^LRSH */
#endif
#ifndef CM_LRSH
#define CM_LRSH 12
#endif
#ifndef CM_WMAX
#define CM_WMAX (1 << 19) /* weights in 16.16 stay within +-8: x * w fits int32 */
#endif
#define CM_W0 (65536 / 4) /* initial weight of the inputs but the bias */
#define CM_HMIN 10 /* log2 slots of a hashed table: at least */
#define CM_HMAX 16 /* and at most */
#define CM_NSEL (2 << MIX_SHMAX << 8) /* mixer weight sets: match on x phase x partial byte */
_Static_assert(CM_SEG * 9 <= MIX_SEG_SYMS, "a segment's symbols fit the record");

static const uint8_t cm_order[CM_NHASH] = {2, 3, 4, 6};

struct cm_slot {
	uint16_t chk;
	uint16_t c[15];
};

struct mix_cm {
	int16_t st[4096];           /* stretch: ln(p / (1 - p)) * 256, p 12 bits */
	uint16_t sq[4096];          /* squash of -2048..2047 */
	uint16_t rate[16];          /* counter learning rate by count, 16 bits */
	uint16_t o0[256];
	uint16_t o1[65536 << MIX_SHMAX]; /* phase, previous byte, partial byte */
	uint16_t mm[64];            /* match: length bucket * 2 + predicted bit */
	uint16_t lm[32][2];         /* long match: hit | length - CM_LONG */
	uint16_t nomatch;           /* updated without a match, never read */
	int32_t w[CM_NSEL][CM_NIN];
	uint16_t apm[65536][33];    /* p | previous byte, partial byte: 33 knots */
	uint16_t apm0[33];          /* a row's initial knots */
	uint32_t astamp[65536];     /* a row is initial unless its stamp is gen */
	uint32_t gen;               /* chunks coded since the stamps were cleared */
	unsigned sh;                /* log2 of the element stride */
	unsigned hbits;             /* log2 slots of each hashed table */
	struct cm_slot *ht;         /* CM_NHASH tables of 1 << hbits slots */
	size_t ht_slots;            /* allocated */
	uint32_t *midx;             /* last position of a CM_MINLEN-byte hash */
	size_t midx_n;
};

/* 4096 / (1 + e^(-x/256)) at x = -2048, -1920, ..., 2048. */
static const uint16_t cm_logistic[33] = {1,    2,    3,    6,    10,   16,   27,   45,   73,
                                        120,  194,  310,  488,  747,  1101, 1546, 2047, 2549,
                                        2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068,
                                        4079, 4085, 4089, 4092, 4093, 4094};

static int cm_alloc(struct mix_state *s, size_t len)
{
	struct mix_cm *m = s->cm;
	unsigned hb = CM_HMIN;
	size_t mn;

	if (!m) {
		m = aligned_alloc(64, (sizeof(*m) + 63) & ~(size_t)63);
		if (!m)
			return -ENOMEM;
		memset(m, 0, sizeof(*m));
		for (int x = -2048; x < 2048; x++) {
			int i = (x + 2048) >> 7, f = (x + 2048) & 127;

			m->sq[x + 2048] = (uint16_t)((cm_logistic[i] * (128 - f) +
			                              cm_logistic[i + 1] * f + 64) >> 7);
		}
		/* stretch: the smallest x whose squash reaches p */
		for (int x = -2047, p = 0; x < 2048; x++)
			for (int v = m->sq[x + 2048]; p <= v; p++)
				m->st[p] = (int16_t)x;
		for (unsigned p = 0; p < 4096; p++)
			if (p > m->sq[4095])
				m->st[p] = 2047;
		for (unsigned n = 0; n < 16; n++)
			m->rate[n] = (uint16_t)(131072u / (2 * n + 3));
		s->cm = m;
	}
	while (hb < CM_HMAX && (1ull << hb) < len)
		hb++;
	m->hbits = hb;
	if (m->ht_slots < ((size_t)CM_NHASH << hb)) {
		free(m->ht);
		m->ht_slots = 0;
		m->ht = aligned_alloc(64, ((size_t)CM_NHASH << hb) * sizeof(struct cm_slot));
		if (!m->ht)
			return -ENOMEM;
		m->ht_slots = (size_t)CM_NHASH << hb;
	}
	mn = (size_t)1 << hb;
	if (m->midx_n < mn) {
		free(m->midx);
		m->midx_n = 0;
		m->midx = malloc(mn * sizeof(*m->midx));
		if (!m->midx)
			return -ENOMEM;
		m->midx_n = mn;
	}
	return 0;
}

/* Fresh models for a chunk of len bytes of elements of 1 << sh bytes. */
static int cm_prepare(struct mix_state *s, size_t len, unsigned sh)
{
	struct mix_cm *m;
	int rc = cm_alloc(s, len);

	if (rc)
		return rc;
	m = s->cm;
	m->sh = sh;
	for (unsigned i = 0; i < 256; i++)
		m->o0[i] = 0x8000;
	for (unsigned i = 0; i < 65536u << sh; i++)
		m->o1[i] = 0x8000;
	for (unsigned i = 0; i < 64; i++)
		m->mm[i] = 0x8000;
	for (unsigned i = 0; i < 32; i++)
		mix_bin_init(m->lm[i], MIX_PTOT / 8, 2);
	for (unsigned i = 0; i < (2u << sh << 8); i++)
		for (unsigned j = 0; j < CM_NIN; j++)
			m->w[i][j] = j == CM_NIN - 1 ? 0 : CM_W0;
	for (unsigned j = 0; j < 33; j++)
		m->apm0[j] = (uint16_t)(m->sq[((int)j - 16) * 128 + 2048 - (j == 32)] * 16);
	/* the APM's rows are set to apm0 when first used in a chunk (4.3 MB
	 * to write otherwise, more than coding a 4 KiB chunk costs) */
	if (++m->gen == 0) {
		memset(m->astamp, 0, sizeof(m->astamp));
		m->gen = 1;
	}
	memset(m->ht, 0, ((size_t)CM_NHASH << m->hbits) * sizeof(struct cm_slot));
	memset(m->midx, 0, ((size_t)1 << m->hbits) * sizeof(*m->midx));
	return 0;
}

void mix_cm_free(struct mix_cm *m)
{
	if (!m)
		return;
	free(m->ht);
	free(m->midx);
	free(m);
}

static inline __attribute__((always_inline)) void cm_update(const struct mix_cm *m, uint16_t *t,
                                                            unsigned y)
{
	const unsigned v = *t, n = v & 15;
	const int p = (int)(v >> 4), d = (((int)(0u - y) & 4095) - p) * (int)m->rate[n] >> 17;

	/* p + d stays in [0, 4095] and n + 1 <= CM_LIMIT: no carry between fields */
	*t = (uint16_t)((int)v + d * 16 + (n < CM_LIMIT));
}

static inline __attribute__((always_inline)) uint32_t cm_hash(uint64_t ctx, unsigned k)
{
	uint64_t h = (ctx + k) * 0x9E3779B97F4A7C15ull;

	return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

/* The slot of context hash h for the nibble whose preceding bits are hi
 * (0 for the high nibble, 16 | high nibble for the low one). */
static inline __attribute__((always_inline)) uint16_t *cm_slot(struct mix_cm *m, unsigned t,
                                                               uint32_t h, unsigned hi)
{
	uint32_t x = (h + hi * 0x2F0B3A49u) * 0x9E3779B1u;
	struct cm_slot *sl = m->ht + ((size_t)t << m->hbits) + (x >> (32 - m->hbits));
	uint16_t chk = (uint16_t)(x & 0xffff) | 1;

	if (sl->chk != chk) {
		sl->chk = chk;
		for (unsigned j = 0; j < 15; j++)
			sl->c[j] = 0x8000;
	}
	return sl->c;
}

static inline __attribute__((always_inline)) int
cm_body(struct mix_state *s, struct mix_io *iop, const int enc, uint8_t *buf, size_t len,
        uint8_t *out, size_t *olen, size_t cap)
{
	struct mix_io lio = *iop, *io = &lio;
	struct mix_cm *m = s->cm;
	uint64_t hist = 0; /* last 8 bytes, the newest lowest */
	uint32_t h[CM_NHASH] = {0};
	uint16_t *sl[CM_NHASH] = {0};
	size_t mptr = 0, mlen = 0;
	const unsigned sh = m->sh, pmask = (1u << sh) - 1;
	int rc = 0;

	for (size_t i0 = 0; i0 < len && !rc; i0 += CM_SEG) {
		const size_t i1 = len - i0 > CM_SEG ? i0 + CM_SEG : len;

		mix_seg_begin(io, enc);
		for (size_t i = i0; i < i1; i++) {
			const unsigned c1 = (unsigned)hist & 255;
			const unsigned byte = enc ? buf[i] : 0, ph = (unsigned)i & pmask;
			unsigned c0 = 1, expect = mlen ? buf[mptr] : 0, mok = mlen != 0;

			/* a long match: first one decision, "the byte is the
			 * expected one", which skips the bit models when true */
			if (mlen >= CM_LONG) {
				uint16_t *r = m->lm[mlen < CM_LONG + 31 ? mlen - CM_LONG : 31];

				if (mix_code_bin(io, enc, r, byte == expect, MIX_K_BIN)) {
					c0 = 256 | expect;
					goto coded;
				}
				mok = 0;
			}
			for (unsigned b = 0; b < 8; b++) {
				_Alignas(32) int32_t x[CM_NIN];
				uint16_t *ct[CM_NIN - 1];
				unsigned y = enc ? (byte >> (7 - b)) & 1 : 0, ebit, node, j, wt;
				int32_t *restrict w = m->w[(mok << sh | ph) << 8 | c0];
				int dot = 0, pr, err, g;
				uint16_t *ta;
				uint32_t p15;

				if (b == 0 || b == 4)
					for (unsigned k = 0; k < CM_NHASH; k++)
						sl[k] = cm_slot(m, k, h[k] + ph * 0x5bd1e995u, b ? 16 | c0 : 0);
				/* node within the nibble's tree: 1, 2-3, 4-7, 8-15 */
				node = b < 4 ? c0 : (c0 & ((1u << (b - 4)) - 1)) | (1u << (b - 4));
				ebit = (expect >> (7 - b)) & 1;
				ct[0] = &m->o0[c0];
				ct[1] = &m->o1[ph << 16 | c1 << 8 | c0];
				for (unsigned k = 0; k < CM_NHASH; k++)
					ct[2 + k] = &sl[k][node - 1];
				ct[CM_XM] = mok ? &m->mm[(mlen < 31 ? mlen : 31) * 2 + ebit] : &m->nomatch;
				for (unsigned k = 0; k < CM_NIN - 1; k++)
					x[k] = m->st[*ct[k] >> 4];
				x[CM_XM] &= 0 - (int32_t)mok;
				x[CM_XM + 1] = 256;
				for (unsigned k = 0; k < CM_NIN; k++)
					dot += (x[k] * w[k]) >> 16;
				dot = dot < -2047 ? -2047 : dot > 2047 ? 2047 : dot;
				pr = m->sq[dot + 2048];
				/* APM: interpolate between the two knots around dot */
				ta = m->apm[c1 << 8 | c0];
				if (m->astamp[c1 << 8 | c0] != m->gen) {
					m->astamp[c1 << 8 | c0] = m->gen;
					memcpy(ta, m->apm0, sizeof(m->apm0));
				}
				j = (uint32_t)(dot + 2048) >> 7;
				wt = (uint32_t)(dot + 2048) & 127;
				pr = (pr + 3 * (int)((ta[j] * (128 - wt) + ta[j + 1] * wt) >> 11)) >> 2;
				p15 = (uint32_t)pr * 8 + 4;
				if (!enc)
					y = mix_rdec_slot(&io->d) >= MIX_PTOT - p15;
				if (enc)
					mix_renc_put(&io->e, y ? MIX_PTOT - p15 : 0, y ? p15 : MIX_PTOT - p15);
				else
					mix_rdec_advance(&io->d, y ? MIX_PTOT - p15 : 0,
					                 y ? p15 : MIX_PTOT - p15);
				/* learn */
				err = ((int)(y << 12) - m->sq[dot + 2048]) * CM_LR;
				for (unsigned k = 0; k < CM_NIN; k++) {
					int v = w[k] + ((x[k] * err + (1 << (CM_LRSH - 1))) >> CM_LRSH);

					w[k] = v < -CM_WMAX ? -CM_WMAX : v > CM_WMAX ? CM_WMAX : v;
				}
				g = (int)(y ? 65535 : 0);
				ta[j] = (uint16_t)(ta[j] + (((g - ta[j]) * (int)(128 - wt)) >> 12));
				ta[j + 1] = (uint16_t)(ta[j + 1] + (((g - ta[j + 1]) * (int)wt) >> 13));
				for (unsigned k = 0; k < CM_NIN - 1; k++)
					cm_update(m, ct[k], y);
				mok &= ebit == y;
				c0 = c0 << 1 | y;
			}
coded:
			c0 &= 255;
			if (!enc)
				buf[i] = (uint8_t)c0;
			hist = hist << 8 | c0;
			for (unsigned k = 0; k < CM_NHASH; k++)
				h[k] = cm_hash(hist & ((1ull << (8 * cm_order[k])) - 1), k);
			/* match: extend, or find the last occurrence of the newest
			 * CM_MINLEN bytes and measure how far back it agrees */
			if (mlen && c0 == expect) {
				mlen += mlen < CM_MAXLEN;
				mptr++;
			} else {
				mlen = 0;
			}
			if (i + 1 >= CM_MINLEN) {
				uint32_t hm = cm_hash(hist & ((1ull << (8 * CM_MINLEN)) - 1), 7) >>
				              (32 - m->hbits);

				if (!mlen) {
					size_t cand = m->midx[hm];

					if (cand) {
						size_t n = 0;

						while (n < CM_LONG && n < cand && buf[cand - 1 - n] == buf[i - n])
							n++;
						if (n >= CM_MINLEN) {
							mlen = n;
							mptr = cand;
						}
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

/* One instance per direction and impl: integer arithmetic only, so the
 * AVX2 instances (the same C compiled for AVX2) give the same results. */
#define CM_IMPL(sfx, attr)                                                                      \
	attr static int cm_enc_##sfx(struct mix_state *s, struct mix_io *io, const uint8_t *src, \
	                             size_t len, uint8_t *out, size_t *olen, size_t cap)         \
	{                                                                                        \
		return cm_body(s, io, 1, (uint8_t *)(uintptr_t)src, len, out, olen, cap);        \
	}                                                                                        \
	attr static int cm_dec_##sfx(struct mix_state *s, struct mix_io *io, uint8_t *dst,       \
	                             size_t len)                                                 \
	{                                                                                        \
		return cm_body(s, io, 0, dst, len, NULL, NULL, 0);                               \
	}

CM_IMPL(portable, )
#if MIX_HAVE_AVX2
CM_IMPL(avx2, MIX_AVX2_ATTR)
#endif

static int cm_enc(struct mix_state *s, struct mix_io *io, const uint8_t *src, size_t len,
                  uint8_t *out, size_t *olen, size_t cap)
{
#if MIX_HAVE_AVX2
	if (s->impl)
		return cm_enc_avx2(s, io, src, len, out, olen, cap);
#endif
	return cm_enc_portable(s, io, src, len, out, olen, cap);
}

static int cm_dec(struct mix_state *s, struct mix_io *io, uint8_t *dst, size_t len)
{
#if MIX_HAVE_AVX2
	if (s->impl)
		return cm_dec_avx2(s, io, dst, len);
#endif
	return cm_dec_portable(s, io, dst, len);
}

ssize_t mix_cm_encode(struct mix_state *s, const uint8_t *src, size_t len, unsigned sh,
                      uint8_t *dst, size_t cap)
{
	struct mix_io io = {0};
	size_t olen = 1 + (sh != 0);
	int rc;

	if (cap < 3)
		return -ENOSPC;
	rc = mix_enc_prepare(s);
	if (!rc)
		rc = cm_prepare(s, len, sh);
	if (rc)
		return rc;
	io.e.sym = s->sym;
	io.e.cap = MIX_SEG_SYMS;
	rc = cm_enc(s, &io, src, len, dst, &olen, cap);
	if (rc)
		return rc;
	dst[0] = (uint8_t)(MIX_VERSION << 4 | MIX_PF_CM | (sh ? MIX_PF_NUM : 0));
	if (sh)
		dst[1] = (uint8_t)sh;
	return (ssize_t)olen;
}

ssize_t mix_cm_decode(struct mix_state *s, const uint8_t *payload, size_t plen, uint8_t *dst,
                      size_t raw_len)
{
	struct mix_io io = {0};
	const size_t hl = 1 + !!(payload[0] & MIX_PF_NUM);
	int rc = hl == 2 ? mix_payload_stride(payload, plen) : 0;

	if (rc < 0)
		return rc;
	rc = cm_prepare(s, raw_len, (unsigned)rc);
	if (!rc)
		rc = mix_rdec_open(s, &io.d, payload + hl, plen - hl);
	if (!rc)
		rc = cm_dec(s, &io, dst, raw_len);
	if (rc)
		return rc;
	if (io.d.p != io.d.end)
		return -EBADMSG;
	return (ssize_t)raw_len;
}
