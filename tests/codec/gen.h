/*
 * gen.h - deterministic synthetic tensors for codec tests, golden frames
 * and the sizes CSV.  Integer arithmetic only (no libm), so the bytes are
 * the same on every host and compiler: golden frames and sizes.csv depend
 * on them, change nothing here without regenerating both.
 */
#ifndef MIXFS_TESTS_CODEC_GEN_H
#define MIXFS_TESTS_CODEC_GEN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum gen_kind {
	GEN_NORMAL = 0, /* N(0, sigma) weights */
	GEN_SPECIAL,    /* normal mixed with NaN, +-Inf, denormals, -0 */
	GEN_ZERO,
	GEN_RANDOM,     /* uniform random bytes */
	GEN_BF16_FP32,  /* fp32 whose low 16 bits are zero */
	GEN_TEXT,       /* ASCII-ish bytes */
	GEN_PRUNED,     /* normal, 7 in 8 blocks of 64 elements +-0 (random sign) */
	GEN_INT8,       /* normal weights quantized to int8 (scale 127 / 4 sigma): bytes */
	GEN_KIND_COUNT
};

static inline uint64_t gen_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Approximately N(0, sigma): Irwin-Hall sum of 4 uniforms, exact in
 * float (integer sum, then one scaling). */
static inline float gen_normal(uint64_t *s, float sigma)
{
	uint64_t r = gen_next(s);
	int32_t sum = (int32_t)(r & 0xffff) + (int32_t)((r >> 16) & 0xffff) +
	              (int32_t)((r >> 32) & 0xffff) + (int32_t)(r >> 48) - 2 * 65535;

	/* var of sum = 4 * 65536^2 / 12 */
	return (float)sum * (sigma / 37837.0f);
}

static inline uint32_t gen_f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return u;
}

static inline uint16_t gen_bf16(float f)
{
	uint32_t u = gen_f32_bits(f);

	return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Round-to-nearest-even fp32 -> fp16, integer only. */
static inline uint16_t gen_fp16(float f)
{
	uint32_t u = gen_f32_bits(f), sign = (u >> 16) & 0x8000u;
	int32_t e = (int32_t)((u >> 23) & 0xff) - 127 + 15;
	uint32_t m = u & 0x7fffffu;

	if (((u >> 23) & 0xff) == 0xff)
		return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0));
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00u);
	if (e <= 0) {
		uint32_t shift;

		if (e < -10)
			return (uint16_t)sign;
		m |= 0x800000u;
		shift = (uint32_t)(14 - e);
		uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);

		if (rem > half || (rem == half && (h & 1)))
			h++;
		return (uint16_t)(sign | h);
	}
	uint32_t h = ((uint32_t)e << 10) | (m >> 13), rem = m & 0x1fffu;

	if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
		h++;
	return (uint16_t)(sign | h);
}

/* Fill buf[0..len) with elements of esize bytes (1, 2 = bf16, 3 = fp16
 * encoded as esize 2 by the caller, 4) starting at byte phase. */
enum gen_dtype { GEN_DT_BYTES = 0, GEN_DT_BF16, GEN_DT_FP16, GEN_DT_FP32 };

static inline void gen_fill(uint8_t *buf, size_t len, int kind, int dt, uint32_t phase,
                            uint64_t seed)
{
	uint64_t s = seed * 0x2545f4914f6cdd1dull + (uint64_t)kind * 131 + (uint64_t)dt;
	size_t esz = dt == GEN_DT_FP32 ? 4 : (dt == GEN_DT_BYTES ? 1 : 2);
	static const char text[] = "the quick brown fox jumps over the lazy dog; ";

	if (kind == GEN_ZERO) {
		memset(buf, 0, len);
		return;
	}
	/* Bytes before the phase come from a neighbouring element. */
	for (size_t i = 0; i < len && i < phase; i++)
		buf[i] = (uint8_t)gen_next(&s);
	for (size_t i = phase; i < len; i += esz) {
		uint8_t e[4];
		uint64_t r = gen_next(&s);
		float f = gen_normal(&s, 0.02f);

		if (kind == GEN_SPECIAL) {
			static const uint32_t sp[] = {0x7fc00000u, 0x7f800000u, 0xff800000u,
			                              0x00000001u, 0x80000000u, 0x00400000u};
			if ((r & 7) == 0) {
				uint32_t u = sp[(r >> 3) % 6];

				memcpy(&f, &u, 4);
			}
		}
		if (kind == GEN_PRUNED &&
		    ((i / (64 * esz) + seed) * 0x9e3779b97f4a7c15ull) >> 61)
			f = (r & 1) ? -0.0f : 0.0f;
		if (kind == GEN_INT8) {
			float q = f * (127.0f / 0.08f);
			int v = (int)(q < 0 ? q - 0.5f : q + 0.5f);

			v = v > 127 ? 127 : v < -127 ? -127 : v;
			for (int k = 0; k < 4; k++)
				e[k] = (uint8_t)(int8_t)v;
		} else if (kind == GEN_RANDOM || kind == GEN_TEXT) {
			for (int k = 0; k < 4; k++)
				e[k] = kind == GEN_RANDOM ? (uint8_t)(r >> (8 * k))
				                          : (uint8_t)text[(r >> (8 * k)) % (sizeof(text) - 1)];
		} else if (dt == GEN_DT_BF16) {
			uint16_t v = gen_bf16(f);

			memcpy(e, &v, 2);
		} else if (dt == GEN_DT_FP16) {
			uint16_t v = gen_fp16(f);

			memcpy(e, &v, 2);
		} else if (dt == GEN_DT_FP32) {
			uint32_t v = gen_f32_bits(f);

			if (kind == GEN_BF16_FP32)
				v = (uint32_t)gen_bf16(f) << 16;
			memcpy(e, &v, 4);
		} else {
			e[0] = (uint8_t)(gen_bf16(f) >> 8);
		}
		for (size_t k = 0; k < esz && i + k < len; k++)
			buf[i + k] = e[k];
	}
}

/* Words of a small vocabulary in lines, roughly Zipf-distributed, some
 * lines repeated: text with order-2..6 structure and matches.  Fills
 * buf[0..len), the last bytes with newlines; returns len. */
static inline size_t gen_prose(uint8_t *buf, size_t len, uint64_t seed)
{
	static const char *const words[] = {
		"the", "model", "weights", "of", "a", "layer", "are", "saved", "in", "checkpoint",
		"and", "optimizer", "state", "with", "learning", "rate", "for", "each", "step",
		"tensor", "shape", "dtype", "gradient", "norm", "loss", "is", "to", "from", "batch",
		"training", "evaluation", "attention", "head", "embedding", "token", "sequence"};
	const size_t nw = sizeof(words) / sizeof(words[0]);
	size_t n = 0, line0 = 0;

	while (n + 16 < len) {
		uint64_t r = gen_next(&seed);

		if ((r & 1023) < 8 && line0 + 1 < n) { /* repeat an earlier line */
			size_t from = (size_t)(r >> 10) % (n - line0), l = 0;

			while (from + l < n && buf[from + l] != '\n' && n + l + 1 < len)
				l++;
			memmove(buf + n, buf + from, l);
			n += l;
			buf[n++] = '\n';
			continue;
		}
		/* Zipf-ish: the index of the lowest set bit among 36 words */
		size_t w = (size_t)__builtin_ctzll((r >> 10) | (1ull << 40)) % nw;
		size_t wl = strlen(words[w]);

		if (n + wl + 2 >= len)
			break;
		memcpy(buf + n, words[w], wl);
		n += wl;
		buf[n++] = (r & 31) == 0 ? '\n' : ' ';
		if (buf[n - 1] == '\n')
			line0 = n;
	}
	memset(buf + n, '\n', len - n);
	return len;
}

/* Token ids of esz bytes (2: uint16, 4: uint32), little-endian, from a
 * sparse Markov chain (7 in 8 steps within 300 ids, else any of 50000):
 * text tokenized, as an LLM training set stores it.  len a multiple of
 * esz. */
static inline void gen_tokens(uint8_t *buf, size_t len, unsigned esz, uint64_t seed)
{
	for (size_t i = 0, t = 100; i + esz <= len; i += esz) {
		uint64_t r = gen_next(&seed);

		t = (r & 7) ? (t * 7 + (r >> 8) % 3) % 300 + 1 : (r >> 16) % 50000;
		for (unsigned k = 0; k < esz; k++)
			buf[i + k] = (uint8_t)(t >> (8 * k));
	}
}

/* GGUF-style quantized blocks of N(0, sigma) weights whose sigma moves
 * from row to row (256 weights a row): type 0 Q8_0 (fp16 d = amax / 127,
 * 32 int8), 1 Q4_0 (fp16 d = -amax_signed / 8, 16 bytes of 4-bit quants
 * q + 8), 2 Q4_1 (fp16 d = (max - min) / 15, fp16 min, 16 bytes of 4-bit
 * quants), 3 Q4_1 of uniform weights (near-random quants: 7.9 bits a
 * byte and more, what mix otherwise stores raw), 4 Q5_0 (fp16 d =
 * -amax_signed / 16, 32 high bits (le32), 16 bytes of the low nibbles of
 * q + 16), 5 Q5_1 (fp16 d = (max - min) / 31, fp16 min, 32 high bits, 16
 * bytes of low nibbles), 6 MXFP4 (an e8m0 scale e = floor(log2(amax)) - 2
 * + 127, 16 bytes of e2m1 values: the nearest of 0, +-1, 2, 3, 4, 6, 8,
 * 12 times 2^(e - 128), ggml's order).  Bytes [0, len) of the
 * stream that starts skip bytes before buf (a chunk cut inside a block);
 * returns the block length. */
static inline unsigned gen_qblocks(uint8_t *buf, size_t len, unsigned type, size_t skip,
                                   uint64_t seed)
{
	static const unsigned blen[7] = {34, 18, 20, 20, 22, 24, 17};
	static const float e2m1[8] = {0, 1, 2, 3, 4, 6, 8, 12};
	const unsigned bl = blen[type % 7];
	float sigma = 0.02f;
	size_t at = 0; /* stream offset of the block */

	for (size_t blk = 0; at < skip + len; blk++, at += bl) {
		float x[32], amax = 0.0f, mx = 0.0f, lo = 0.0f, hi = 0.0f, d;
		uint8_t b[34] = {0};
		uint16_t h;

		if (blk % 8 == 0)
			sigma = 0.005f + (float)(gen_next(&seed) % 1000) * 0.00004f;
		for (int j = 0; j < 32; j++) {
			x[j] = type % 7 == 3 ? (float)((int)(gen_next(&seed) % 2001) - 1000) * sigma / 1000.0f
			                     : gen_normal(&seed, sigma);
			if (x[j] < lo)
				lo = x[j];
			if (x[j] > hi)
				hi = x[j];
			if (x[j] > amax || -x[j] > amax) {
				amax = x[j] < 0 ? -x[j] : x[j];
				mx = x[j];
			}
		}
		if (type % 7 == 6) {
			/* floor(log2(amax)) is the exponent field of a normal
			 * float; d = 2^(e - 128) has the field e - 1 */
			uint32_t u;
			int e;

			memcpy(&u, &amax, 4);
			e = amax > 0 ? (int)(u >> 23) - 127 - 2 + 127 : 0;
			u = e > 1 ? (uint32_t)(e - 1) << 23 : 1u << 23;
			memcpy(&d, &u, 4);
			for (int j = 0; j < 32; j++) {
				float z = x[j] / d, best = 1e30f;
				int q = 0;

				for (int k = 0; k < 16; k++) {
					float v = (k & 8 ? -1.0f : 1.0f) * e2m1[k & 7],
					      dz = z > v ? z - v : v - z;

					if (dz < best) {
						best = dz;
						q = k;
					}
				}
				b[1 + j % 16] |= (uint8_t)(q << (j < 16 ? 0 : 4));
			}
			b[0] = (uint8_t)e;
		} else if (type % 7 >= 4) {
			/* Q5_0 (d, qh, qs) or Q5_1 (d, m, qh, qs) */
			const int o = type % 7 == 5 ? 4 : 2;
			uint32_t qh = 0;

			d = o == 4 ? (hi - lo) / 31.0f : mx / -16.0f;
			for (int j = 0; j < 16; j++) {
				float z0 = o == 4 ? x[j] - lo : x[j], z1 = o == 4 ? x[j + 16] - lo : x[j + 16];
				int q0 = d != 0 ? (int)(z0 / d + (o == 4 ? 0.5f : 16.5f)) : 16;
				int q1 = d != 0 ? (int)(z1 / d + (o == 4 ? 0.5f : 16.5f)) : 16;

				q0 = q0 > 31 ? 31 : q0;
				q1 = q1 > 31 ? 31 : q1;
				b[o + 4 + j] = (uint8_t)((q0 & 15) | (q1 & 15) << 4);
				qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + 16);
			}
			for (int k = 0; k < 4; k++)
				b[o + k] = (uint8_t)(qh >> (8 * k));
			if (o == 4) {
				h = gen_fp16(lo);
				memcpy(b + 2, &h, 2);
			}
		} else if (type % 7 == 0) {
			d = amax / 127.0f;
			for (int j = 0; j < 32; j++) {
				float q = d > 0 ? x[j] / d : 0.0f;
				int v = (int)(q < 0 ? q - 0.5f : q + 0.5f);

				b[2 + j] = (uint8_t)(int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
			}
		} else if (type % 7 == 1) {
			d = mx / -8.0f;
			for (int j = 0; j < 16; j++) {
				int q0 = d != 0 ? (int)(x[j] / d + 8.5f) : 8;
				int q1 = d != 0 ? (int)(x[j + 16] / d + 8.5f) : 8;

				b[2 + j] = (uint8_t)((q0 > 15 ? 15 : q0) | (q1 > 15 ? 15 : q1) << 4);
			}
		} else {
			d = (hi - lo) / 15.0f;
			h = gen_fp16(lo);
			memcpy(b + 2, &h, 2);
			for (int j = 0; j < 16; j++) {
				int q0 = d > 0 ? (int)((x[j] - lo) / d + 0.5f) : 0;
				int q1 = d > 0 ? (int)((x[j + 16] - lo) / d + 0.5f) : 0;

				b[4 + j] = (uint8_t)((q0 > 15 ? 15 : q0) | (q1 > 15 ? 15 : q1) << 4);
			}
		}
		if (type % 7 != 6) {
			h = gen_fp16(d);
			memcpy(b, &h, 2);
		}
		for (unsigned k = 0; k < bl; k++)
			if (at + k >= skip && at + k < skip + len)
				buf[at + k - skip] = b[k];
	}
	return bl;
}

/* GGUF K-quant super-blocks (256 weights, N(0, sigma) with sigma moving
 * from block to block) as ggml lays them out: type 0 Q4_K (fp16 d, fp16
 * dmin, 12 bytes of 6-bit scales and mins of 8 sub-blocks of 32, 128
 * bytes of 4-bit quants: 144 bytes), 1 Q6_K (128 bytes of low nibbles,
 * 64 of high 2-bit pairs, 16 int8 scales of 16 sub-blocks of 16, fp16 d
 * last: 210 bytes), 2 IQ4_XS (fp16 d, 2 bytes of the 8 6-bit sub-block
 * scales' high bits, 4 of their low nibbles, 128 bytes of 4-bit indices
 * into IQ4_NL's 16 values: 136 bytes).  Bytes [0, len) of the stream that
 * starts skip bytes before buf; returns the block length. */
static inline int gen_kround(float v)
{
	return (int)(v < 0 ? v - 0.5f : v + 0.5f);
}

/* Symmetric sub-block scales sc[0..n) of x (n sub-blocks of len): each
 * sub-block's element of largest magnitude over div; returns the scale of
 * largest magnitude. */
static inline float gen_kscales(const float *x, int n, int len, float div, float *sc)
{
	float big = 0.0f, msc = 0.0f;

	for (int s = 0; s < n; s++) {
		float am = 0.0f, mx = 0.0f;

		for (int j = len * s; j < len * s + len; j++)
			if (x[j] > am || -x[j] > am) {
				am = x[j] < 0 ? -x[j] : x[j];
				mx = x[j];
			}
		sc[s] = mx / div;
		if (sc[s] > big || -sc[s] > big) {
			big = sc[s] < 0 ? -sc[s] : sc[s];
			msc = sc[s];
		}
	}
	return msc;
}

static inline unsigned gen_kblocks(uint8_t *buf, size_t len, unsigned type, size_t skip,
                                   uint64_t seed)
{
	static const int iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
	                              1,    13,   25,  38,  53,  69,  89,  113};
	const unsigned bl = type % 3 == 1 ? 210 : type % 3 == 2 ? 136 : 144;
	float sigma = 0.02f;
	size_t at = 0;

	for (size_t blk = 0; at < skip + len; blk++, at += bl) {
		float x[256], sc[16], mn[8], msc = 0.0f, mmn = 0.0f, d, dm = 0.0f;
		int ls[16], lm[8], L[256];
		uint8_t b[210] = {0};
		uint16_t h;

		if (blk % 4 == 0)
			sigma = 0.005f + (float)(gen_next(&seed) % 1000) * 0.00004f;
		for (int j = 0; j < 256; j++)
			x[j] = gen_normal(&seed, sigma);
		if (type % 3 == 2) {
			uint32_t sh = 0;

			msc = gen_kscales(x, 8, 32, -127.0f, sc);
			d = -msc / 32.0f;
			for (int s = 0; s < 8; s++) {
				int l = d != 0 ? gen_kround(sc[s] / d) : 0;

				l = l < -32 ? -32 : l > 31 ? 31 : l;
				b[4 + s / 2] |= (uint8_t)(((l + 32) & 15) << (4 * (s % 2)));
				sh |= (uint32_t)((l + 32) >> 4) << (2 * s);
				for (int j = 32 * s; j < 32 * s + 32; j++) {
					float dl = d * (float)l, y = dl != 0 ? x[j] / dl : 0.0f, e = 1e30f;

					for (int k = 0; k < 16; k++) {
						float t = y - (float)iq4nl[k];

						if ((t < 0 ? -t : t) < e) {
							e = t < 0 ? -t : t;
							L[j] = k;
						}
					}
				}
				for (int j = 0; j < 16; j++)
					b[8 + 16 * s + j] = (uint8_t)(L[32 * s + j] | L[32 * s + 16 + j] << 4);
			}
			b[2] = (uint8_t)sh;
			b[3] = (uint8_t)(sh >> 8);
			h = gen_fp16(d);
			memcpy(b, &h, 2);
		} else if (type % 3 == 0) {
			for (int s = 0; s < 8; s++) {
				float lo = 0.0f, hi = x[32 * s];

				for (int j = 32 * s; j < 32 * s + 32; j++) {
					lo = x[j] < lo ? x[j] : lo;
					hi = x[j] > hi ? x[j] : hi;
				}
				sc[s] = (hi - lo) / 15.0f;
				mn[s] = -lo;
				msc = sc[s] > msc ? sc[s] : msc;
				mmn = mn[s] > mmn ? mn[s] : mmn;
			}
			d = msc / 63.0f;
			dm = mmn / 63.0f;
			for (int s = 0; s < 8; s++) {
				ls[s] = d > 0 ? gen_kround(sc[s] / d) : 0;
				lm[s] = dm > 0 ? gen_kround(mn[s] / dm) : 0;
				ls[s] = ls[s] > 63 ? 63 : ls[s];
				lm[s] = lm[s] > 63 ? 63 : lm[s];
				if (s < 4) {
					b[4 + s] |= (uint8_t)ls[s];
					b[8 + s] |= (uint8_t)lm[s];
				} else {
					b[8 + s] |= (uint8_t)((ls[s] & 15) | (lm[s] & 15) << 4);
					b[s] |= (uint8_t)((ls[s] >> 4) << 6);
					b[4 + s] |= (uint8_t)((lm[s] >> 4) << 6);
				}
				for (int j = 32 * s; j < 32 * s + 32; j++) {
					float dj = d * (float)ls[s];
					int q = dj > 0 ? gen_kround((x[j] + dm * (float)lm[s]) / dj) : 0;

					L[j] = q < 0 ? 0 : q > 15 ? 15 : q;
				}
			}
			for (int j = 0; j < 4; j++)
				for (int l = 0; l < 32; l++)
					b[16 + 32 * j + l] = (uint8_t)(L[64 * j + l] | L[64 * j + 32 + l] << 4);
			h = gen_fp16(d);
			memcpy(b, &h, 2);
			h = gen_fp16(dm);
			memcpy(b + 2, &h, 2);
		} else {
			msc = gen_kscales(x, 16, 16, -32.0f, sc);
			d = msc != 0 ? msc / -128.0f : 0.0f;
			for (int s = 0; s < 16; s++) {
				int v = d != 0 ? gen_kround(sc[s] / d) : 0;

				ls[s] = v < -128 ? -128 : v > 127 ? 127 : v;
				b[192 + s] = (uint8_t)(int8_t)ls[s];
				for (int j = 16 * s; j < 16 * s + 16; j++) {
					float dj = d * (float)ls[s];
					int q = dj != 0 ? gen_kround(x[j] / dj) : 0;

					L[j] = (q < -32 ? -32 : q > 31 ? 31 : q) + 32;
				}
			}
			for (int half = 0; half < 2; half++)
				for (int l = 0; l < 32; l++) {
					const int *q = L + 128 * half + l;

					b[64 * half + l] = (uint8_t)((q[0] & 15) | (q[64] & 15) << 4);
					b[64 * half + 32 + l] = (uint8_t)((q[32] & 15) | (q[96] & 15) << 4);
					b[128 + 32 * half + l] = (uint8_t)(q[0] >> 4 | (q[32] >> 4) << 2 |
					                                   (q[64] >> 4) << 4 | (q[96] >> 4) << 6);
				}
			h = gen_fp16(d);
			memcpy(b + 208, &h, 2);
		}
		for (unsigned k = 0; k < bl; k++)
			if (at + k >= skip && at + k < skip + len)
				buf[at + k - skip] = b[k];
	}
	return bl;
}

#endif
