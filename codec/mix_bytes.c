/*
 * mix_bytes.c - CODEC_LEVEL_MIX byte model for chunks that are not float
 * tensors (headers, int tensors, optimizer bookkeeping, text).
 *
 * lpaq1-like, scaled down for 16-256 KiB chunks: order 0 and 1 direct,
 * orders 2, 3, 4, 6 hashed into nibble buckets (16 counters a bucket so a
 * byte touches two cache lines per order), a match model over the chunk
 * itself, a mixer with weight sets selected by the partial byte, one APM.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mix_model_i.h"

#define MIX_BH_BITS 17 /* hashed order table size, counters */
#define MIX_BH_N 4     /* hashed orders: 2, 3, 4, 6 */
#define MIX_MM_BITS 16 /* match index entries */
#define MIX_MM_MIN 5   /* bytes hashed to find a match */
#define MIX_B_NIN 8

struct mix_bmodel {
	uint32_t o0[256];
	uint32_t o1[256 * 256];
	uint32_t oh[MIX_BH_N][1u << MIX_BH_BITS];
	uint32_t midx[1u << MIX_MM_BITS]; /* hash of last MIX_MM_MIN bytes -> pos */
	uint32_t mm[64 * 2];              /* match | length bucket, expected bit */
	int32_t w[256][MIX_NIN_MAX];
	uint16_t apm[1024 * 33];
};

int mix_bytes_prepare(struct mix_state *s)
{
	struct mix_bmodel *m = s->bm;
	uint32_t half = mix_ctr_make(0.5, 0);

	if (!m) {
		m = malloc(sizeof(*m));
		if (!m)
			return -ENOMEM;
		s->bm = m;
	}
	for (size_t i = 0; i < 256; i++)
		m->o0[i] = half;
	for (size_t i = 0; i < 256 * 256; i++)
		m->o1[i] = half;
	for (size_t k = 0; k < MIX_BH_N; k++)
		for (size_t i = 0; i < (1u << MIX_BH_BITS); i++)
			m->oh[k][i] = half;
	memset(m->midx, 0, sizeof(m->midx));
	for (size_t i = 0; i < 64 * 2; i++)
		m->mm[i] = mix_ctr_make(0.5, 0);
	for (size_t i = 0; i < 256; i++)
		for (size_t j = 0; j < MIX_NIN_MAX; j++)
			m->w[i][j] = j < MIX_B_NIN - 1 ? 14000 : 0;
	mix_apm_init(m->apm, 1024, &s->tabs);
	return 0;
}

void mix_bytes_free(struct mix_bmodel *m)
{
	free(m);
}

static inline uint32_t mix_hash(uint32_t h, uint32_t k)
{
	h = (h + k + 1) * 0x9E3779B1u;
	return h ^ (h >> 15);
}

static inline uint32_t mix_bucket(uint32_t h, unsigned c0)
{
	/* c0 at a nibble boundary: 1 (byte start) or 16..31 (high nibble) */
	return (mix_hash(h, c0) << 4) & ((1u << MIX_BH_BITS) - 1);
}

void mix_bytes_code(struct mix_bmodel *m, const struct mix_tabs *tb, struct mix_coder *c,
                    const int enc, const struct codec_lvl_args *a, uint8_t *buf, size_t len,
                    unsigned flags)
{
	uint32_t hist = 0, h6 = 0, hk[MIX_BH_N] = {0}, base[MIX_BH_N] = {0};
	uint32_t mptr = 0, mlen = 0;

	(void)a;
	(void)flags;
	for (size_t i = 0; i < len; i++) {
		unsigned c0 = 1, c1 = hist & 255, byte = enc ? buf[i] : 0;
		unsigned expect = mlen ? buf[mptr] : 0; /* match model's next byte */

		hk[0] = mix_hash(hist & 0xffff, 2);
		hk[1] = mix_hash(hist & 0xffffff, 3);
		hk[2] = mix_hash(hist, 4);
		hk[3] = mix_hash(h6, 6);
		for (int k = 0; k < MIX_BH_N; k++)
			base[k] = mix_bucket(hk[k], 1);

		for (int b = 7; b >= 0; b--) {
			struct mix_mixer mx;
			uint32_t *cs[MIX_BH_N + 3];
			/* slot inside the nibble bucket: 1..15 by the bits seen so far */
			unsigned j = b >= 4 ? 7u - (unsigned)b : 3u - (unsigned)b;
			unsigned nib = (1u << j) | (c0 & ((1u << j) - 1));
			int y = (byte >> b) & 1, p, pa, ncs = 0;
			uint32_t ai;

			if (b == 3)
				for (int k = 0; k < MIX_BH_N; k++)
					base[k] = mix_bucket(hk[k], c0);
			cs[ncs++] = &m->o0[c0];
			cs[ncs++] = &m->o1[c1 << 8 | c0];
			for (int k = 0; k < MIX_BH_N; k++)
				cs[ncs++] = &m->oh[k][base[k] + nib];
			mx.n = 0;
			for (int k = 0; k < ncs; k++)
				mix_mixer_add(&mx, mix_stretch(tb, mix_ctr_p12(*cs[k])));
			uint32_t *cmm = NULL;
			if (mlen && ((expect + 256) >> (b + 1)) == c0) {
				unsigned eb = (expect >> b) & 1;

				cmm = &m->mm[(mlen > 63 ? 63 : mlen) * 2 + eb];
				mix_mixer_add(&mx, mix_stretch(tb, mix_ctr_p12(*cmm)));
			} else {
				mix_mixer_add(&mx, 0);
			}
			p = mix_mixer_predict(&mx, tb, m->w[c0]);
			pa = mix_apm_p(m->apm, tb, p, c0 | (c1 >> 6) << 8, &ai);
			p = (p + 3 * pa) >> 2;
			p = p < 1 ? 1 : p > 4095 ? 4095 : p;
			y = mix_code_bit(c, enc, y, p);
			mix_mixer_update(&mx, y, 12);
			mix_apm_update(m->apm, ai, y, 7);
			for (int k = 0; k < ncs; k++)
				mix_ctr_update(cs[k], y, tb, 255);
			if (cmm)
				mix_ctr_update(cmm, y, tb, 1023);
			c0 = c0 * 2 + (unsigned)y;
		}
		byte = c0 & 255;
		buf[i] = (uint8_t)byte;
		hist = hist << 8 | byte;
		h6 = (h6 * (1u << 6) + byte + 1) & 0x3fffffffu;

		/* match model: extend or look up by the last MIX_MM_MIN bytes */
		if (mlen && buf[mptr] == byte) {
			mlen++;
			mptr++;
		} else {
			mlen = 0;
		}
		if (i + 1 >= MIX_MM_MIN) {
			uint32_t hm = 0;

			for (size_t j = i + 1 - MIX_MM_MIN; j <= i; j++)
				hm = (hm + buf[j] + 1) * 0x2F0B3C65u;
			hm >>= 32 - MIX_MM_BITS;
			if (!mlen && m->midx[hm]) {
				mptr = m->midx[hm];
				mlen = 1;
			}
			m->midx[hm] = (uint32_t)(i + 1);
		}
		if (mptr >= i + 1)
			mlen = 0;
	}
}
