/*
 * mix_i.h - the small parts of the CODEC_LEVEL_MIX coder (private).
 *
 * Each part has a written contract and keeps all state in caller-owned
 * memory (no globals: several threads code at once with separate ctx).
 *
 *   model   an adaptive N-symbol distribution (N = 2..32), one "row" of
 *           uint16 per context (layout below).  Predicts (the symbols'
 *           intervals), then learns the coded symbol at a rate that slows
 *           with the row's count.  Vector versions of find/update for
 *           AVX2 give the same results as the portable loops.
 *   coder   rANS (ryg's rans_word: 32-bit state, 16-bit words, 15-bit
 *           probabilities) with two interleaved states; it sees only a
 *           symbol's interval [lo, lo + freq) out of 1 << 15.  The encoder
 *           records intervals forward and codes them backward per segment.
 *   bits    a plain bit stream for bits no model predicts (sign, low
 *           mantissa bits): packed LSB first, read past its end gives 0.
 *
 * Fixed-point domains:
 *   prob    15 bits: the intervals of a row's N symbols tile [0, 32768).
 *   row     uint16 r[N]: r[0] is the update count (saturating at 2^kmax - 1),
 *           r[j] for 1 <= j < N is the cumulative mass of symbols < j in
 *           [0, MIX_PTOT - N], non-decreasing in j.  Symbol j's interval is
 *           [r[j] + j, r[j+1] + j + 1) with r[0] read as 0 and r[N] as
 *           MIX_PTOT - N: every symbol keeps a frequency >= 1, so any
 *           symbol stays codable whatever the model learned.
 *   rate    the update moves r[j] toward 0 (j <= s) or MIX_PTOT - N (j > s)
 *           by 1/2^k of the distance, k = log2(count + 1) <= kmax: fast
 *           while a context is young, averaging when it is old.  The
 *           rounding is dithered (unbiased).
 *
 * The update keeps r[1..N-1] non-decreasing and inside [0, MIX_PTOT - N]
 * (with a dither 0 <= d < 2^k, x + floor((d - x)/2^k) and
 * x + floor(min(T - x + d, 32767)/2^k) are monotone in x and stay in
 * [0, T]), so a row that was valid stays valid: garbage input cannot break
 * a model.
 */
#ifndef MIXFS_MIX_I_H
#define MIXFS_MIX_I_H

#include <assert.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* Checks of the per-symbol ranges: on with -DMIX_CHECK (tuning and fuzz
 * builds); other builds rely on the documented ranges, the tests and the
 * fuzzers rather than pay a check per coded symbol. */
#ifdef MIX_CHECK
#define MIX_ASSERT(x) assert(x)
#else
#define MIX_ASSERT(x) ((void)0)
#endif

#define MIX_PB 15
#define MIX_PTOT (1u << MIX_PB)
#define MIX_RL (1u << 16) /* rANS state lower bound */

/* ---- adaptive symbol models ----------------------------------------------- */

/* Learning rate 1/2^k of a row with update count `count`; the count
 * saturates at 2^kmax - 1, so k never exceeds kmax. */
static inline unsigned mix_rate(unsigned count)
{
	return 31u - (unsigned)__builtin_clz(count + 1u);
}

static inline unsigned mix_count_next(unsigned count, unsigned kmax)
{
	return count + (count < (1u << kmax) - 1);
}

/* Row from integer weights w[0..N) (at least one non-zero), prior strength
 * n0 (virtual observations).  Both sides must compute the same row, so
 * this is integer only. */
static inline void mix_row_init(uint16_t *r, unsigned n, const uint32_t *w, unsigned n0)
{
	uint64_t tot = 0, cum = 0, inv;
	const uint64_t room = MIX_PTOT - n;

	for (unsigned j = 0; j < n; j++)
		tot += w[j];
	if (!tot) {
		for (unsigned j = 0; j < n; j++)
			r[j] = (uint16_t)(room * j / n);
		r[0] = (uint16_t)n0;
		return;
	}
	/* r[j] = room * cum / tot, by a reciprocal: one division a row */
	inv = (room << 32) / tot;
	r[0] = (uint16_t)n0;
	for (unsigned j = 1; j < n; j++) {
		cum += w[j - 1];
		r[j] = (uint16_t)((cum * inv) >> 32);
	}
}

static inline void mix_row_uniform(uint16_t *r, unsigned n, unsigned n0)
{
	for (unsigned j = 0; j < n; j++)
		r[j] = (uint16_t)((MIX_PTOT - n) * j / n);
	r[0] = (uint16_t)n0;
}

/* Interval of symbol s in row r of n symbols.  Reads r[s + 1] even for the
 * last symbol (it selects the end instead): rows are followed by readable
 * memory.  Masks rather than conditions, so that it compiles branch-free
 * (s is data: a branch on it mispredicts). */
static inline void mix_row_interval(const uint16_t *r, unsigned n, unsigned s, uint32_t *lo,
                                    uint32_t *freq)
{
	const uint32_t nz = 0u - (uint32_t)(s != 0), last = 0u - (uint32_t)(s + 1 == n);
	uint32_t a = ((uint32_t)r[s] + s) & nz;
	uint32_t t = (uint32_t)r[s + 1] + s + 1;
	uint32_t b = t + ((MIX_PTOT - t) & last);

	MIX_ASSERT(s < n && b > a);
	*lo = a;
	*freq = b - a;
}

/* Symbol whose interval holds slot (0 <= slot < MIX_PTOT). */
static inline unsigned mix_row_find(const uint16_t *r, unsigned n, uint32_t slot)
{
	unsigned s = 0;

	for (unsigned j = 1; j < n; j++)
		s += (uint32_t)r[j] + j <= slot;
	return s;
}

/* dr: the dither sequence's current value (mix_io.dith); its top k bits
 * round this update (0 <= d < 2^k: unbiased on average). */
static inline unsigned mix_dither(uint32_t dr, unsigned k)
{
	return (unsigned)(((uint64_t)dr << k) >> 32);
}

static inline void mix_row_update(uint16_t *r, unsigned n, unsigned s, unsigned kmax, uint32_t dr)
{
	const int top = (int)(MIX_PTOT - n);
	unsigned k = mix_rate(r[0]);
	int d = (int)mix_dither(dr, k);

	for (unsigned j = 1; j < n; j++) {
		int v = r[j], t = j > s ? top : 0, y = t - v + d;

		y = y < 32767 ? y : 32767; /* int16 saturation, as the SIMD versions */
		r[j] = (uint16_t)(v + (y >> k));
	}
	r[0] = (uint16_t)mix_count_next(r[0], kmax);
}

/* Binary model: a row of 2.  P(symbol 0) = (r[1] + 1) / MIX_PTOT. */
static inline void mix_bin_init(uint16_t *r, uint32_t p0_15, unsigned n0)
{
	uint32_t w[2] = {p0_15, MIX_PTOT - p0_15};

	mix_row_init(r, 2, w, n0);
}

/* ---- AVX2 versions of the row operations ---------------------------------
 * Same results as the portable loops above (tests/codec/test_mix_impl.c
 * checks every instance against the portable one).  Only called from code
 * compiled for the same target (the *_avx2 instances in mix.c and
 * mix_bytes.c). */
#if defined(__x86_64__) && defined(__GNUC__)
#define MIX_HAVE_AVX2 1
#include <immintrin.h>
#define MIX_AVX2_ATTR __attribute__((target("avx2,bmi,bmi2,popcnt,lzcnt")))

MIX_AVX2_ATTR static inline unsigned mix_row_find32_avx2(const uint16_t *r, uint32_t slot)
{
	const __m256i i0 = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	const __m256i i1 = _mm256_add_epi16(i0, _mm256_set1_epi16(16));
	__m256i s = _mm256_set1_epi16((short)slot);
	__m256i a = _mm256_add_epi16(_mm256_loadu_si256((const __m256i *)r), i0);
	__m256i b = _mm256_add_epi16(_mm256_loadu_si256((const __m256i *)(r + 16)), i1);
	uint64_t m = (uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi16(a, s)) |
	             (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi16(b, s)) << 32;

	/* lane 0 holds the count: count it as above the slot */
	return 32u - (unsigned)(__builtin_popcountll(m | 3) >> 1);
}

MIX_AVX2_ATTR static inline void mix_row_update32_avx2(uint16_t *r, unsigned s, unsigned kmax,
                                                      uint32_t dr)
{
	const __m256i i0 = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	const __m256i i1 = _mm256_add_epi16(i0, _mm256_set1_epi16(16));
	const __m256i top = _mm256_set1_epi16((short)(MIX_PTOT - 32));
	const __m256i e0 = _mm256_setr_epi16(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	const __m256i keep0 = _mm256_setr_epi16(0, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	                                        -1, -1, -1);
	__m256i bs = _mm256_set1_epi16((short)s);
	unsigned kk = mix_rate(r[0]);
	__m128i k = _mm_cvtsi32_si128((int)kk);
	__m256i dd = _mm256_set1_epi16((short)mix_dither(dr, kk));
	__m256i a = _mm256_loadu_si256((const __m256i *)r);
	__m256i b = _mm256_loadu_si256((const __m256i *)(r + 16));
	__m256i ta = _mm256_and_si256(_mm256_cmpgt_epi16(i0, bs), top);
	__m256i tb = _mm256_and_si256(_mm256_cmpgt_epi16(i1, bs), top);
	__m256i da = _mm256_adds_epi16(_mm256_sub_epi16(ta, a), dd);
	__m256i db = _mm256_adds_epi16(_mm256_sub_epi16(tb, b), dd);

	da = _mm256_and_si256(_mm256_sra_epi16(da, k), keep0);
	db = _mm256_sra_epi16(db, k);

	/* lane 0: the count, saturating at 2^kmax - 1 */
	a = _mm256_min_epu16(_mm256_add_epi16(_mm256_add_epi16(a, da), e0),
	                     _mm256_insert_epi16(_mm256_set1_epi16(-1), (short)((1u << kmax) - 1), 0));
	b = _mm256_add_epi16(b, db);
	_mm256_storeu_si256((__m256i *)r, a);
	_mm256_storeu_si256((__m256i *)(r + 16), b);
}

MIX_AVX2_ATTR static inline unsigned mix_row_find16_avx2(const uint16_t *r, uint32_t slot)
{
	const __m256i i0 = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	__m256i a = _mm256_add_epi16(_mm256_loadu_si256((const __m256i *)r), i0);
	uint32_t m = (uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi16(a, _mm256_set1_epi16((short)slot)));

	return 16u - (unsigned)(__builtin_popcount(m | 3) >> 1);
}

MIX_AVX2_ATTR static inline void mix_row_update16_avx2(uint16_t *r, unsigned s, unsigned kmax,
                                                      uint32_t dr)
{
	const __m256i i0 = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
	const __m256i top = _mm256_set1_epi16((short)(MIX_PTOT - 16));
	const __m256i e0 = _mm256_setr_epi16(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	const __m256i keep0 = _mm256_setr_epi16(0, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	                                        -1, -1, -1);
	unsigned kk = mix_rate(r[0]);
	__m128i k = _mm_cvtsi32_si128((int)kk);
	__m256i a = _mm256_loadu_si256((const __m256i *)r);
	__m256i ta = _mm256_and_si256(_mm256_cmpgt_epi16(i0, _mm256_set1_epi16((short)s)), top);
	__m256i da = _mm256_adds_epi16(_mm256_sub_epi16(ta, a),
	                               _mm256_set1_epi16((short)mix_dither(dr, kk)));

	da = _mm256_and_si256(_mm256_sra_epi16(da, k), keep0);

	a = _mm256_min_epu16(_mm256_add_epi16(_mm256_add_epi16(a, da), e0),
	                     _mm256_insert_epi16(_mm256_set1_epi16(-1), (short)((1u << kmax) - 1), 0));
	_mm256_storeu_si256((__m256i *)r, a);
}

/* Rows of n = 2..8 symbols stored in 8 uint16 (lanes n..7 unused). */
MIX_AVX2_ATTR static inline unsigned mix_row_find8_avx2(const uint16_t *r, unsigned n,
                                                       uint32_t slot)
{
	const __m128i i0 = _mm_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7);
	__m128i a = _mm_add_epi16(_mm_loadu_si128((const __m128i *)r), i0);
	uint32_t m = (uint32_t)_mm_movemask_epi8(_mm_cmpgt_epi16(a, _mm_set1_epi16((short)slot)));

	/* lanes 1..n-1 at or below the slot */
	return (unsigned)__builtin_popcount(~m & ((1u << (2 * n)) - 4)) >> 1;
}

MIX_AVX2_ATTR static inline void mix_row_update8_avx2(uint16_t *r, unsigned n, unsigned s,
                                                     unsigned kmax, uint32_t dr)
{
	const __m128i i0 = _mm_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7);
	const __m128i e0 = _mm_setr_epi16(1, 0, 0, 0, 0, 0, 0, 0);
	__m128i top = _mm_set1_epi16((short)(MIX_PTOT - n));
	/* lanes 1..n-1 */
	__m128i keep = _mm_andnot_si128(_mm_cmpeq_epi16(i0, _mm_setzero_si128()),
	                                _mm_cmpgt_epi16(_mm_set1_epi16((short)n), i0));
	unsigned kk = mix_rate(r[0]);
	__m128i k = _mm_cvtsi32_si128((int)kk);
	__m128i a = _mm_loadu_si128((const __m128i *)r);
	__m128i ta = _mm_and_si128(_mm_cmpgt_epi16(i0, _mm_set1_epi16((short)s)), top);
	__m128i da = _mm_adds_epi16(_mm_sub_epi16(ta, a), _mm_set1_epi16((short)mix_dither(dr, kk)));

	da = _mm_and_si128(_mm_sra_epi16(da, k), keep);
	a = _mm_min_epu16(_mm_add_epi16(_mm_add_epi16(a, da), e0),
	                  _mm_insert_epi16(_mm_set1_epi16(-1), (short)((1u << kmax) - 1), 0));
	_mm_storeu_si128((__m128i *)r, a);
}
#else
#define MIX_HAVE_AVX2 0
#endif

/* Row operations for a row of n symbols; impl 1 picks the AVX2 versions
 * (constant at every call site, so each instance keeps one side).  Rows of
 * up to 8 symbols must be stored in 8 entries. */
#if MIX_HAVE_AVX2
#define MIX_ROW_FIND(impl, r, n, slot)                                                          \
	((impl) && (n) == 32 ? mix_row_find32_avx2(r, slot)                                     \
	 : (impl) && (n) == 16 ? mix_row_find16_avx2(r, slot)                                   \
	 : (impl) && (n) <= 8 ? mix_row_find8_avx2(r, n, slot)                                  \
	                      : mix_row_find(r, n, slot))
#define MIX_ROW_UPDATE(impl, r, n, s, kmax, dr)                                                 \
	do {                                                                                    \
		if ((impl) && (n) == 32)                                                        \
			mix_row_update32_avx2(r, s, kmax, dr);                                  \
		else if ((impl) && (n) == 16)                                                   \
			mix_row_update16_avx2(r, s, kmax, dr);                                  \
		else if ((impl) && (n) <= 8)                                                    \
			mix_row_update8_avx2(r, n, s, kmax, dr);                                \
		else                                                                            \
			mix_row_update(r, n, s, kmax, dr);                                      \
	} while (0)
#else
#define MIX_ROW_FIND(impl, r, n, slot) mix_row_find(r, n, slot)
#define MIX_ROW_UPDATE(impl, r, n, s, kmax, dr) mix_row_update(r, n, s, kmax, dr)
#endif

/* ---- rANS coder --------------------------------------------------------- */

/* Encoder side: intervals recorded in coding order (lo | freq << 16). */
struct mix_renc {
	uint32_t *sym;
	size_t n, cap; /* cap is a hard bound: callers size segments for it */
};

static inline void mix_renc_put(struct mix_renc *e, uint32_t lo, uint32_t freq)
{
	MIX_ASSERT(e->n < e->cap && freq >= 1 && lo + freq <= MIX_PTOT);
	e->sym[e->n++] = lo | freq << 16;
}

/* Code the n recorded intervals sym[0..n) into words written backward below
 * wp (16-bit words, little-endian bytes), then the two states.  Returns
 * the new start.  The caller reserves 2 * n + 10 bytes below wp. */
static inline uint8_t *mix_renc_flush(const uint32_t *sym, size_t n, uint8_t *wp)
{
	uint32_t a = MIX_RL, b = MIX_RL; /* a: state of the symbol being coded */

	/* symbol k uses state k & 1; going backward the last symbol goes first */
	for (size_t k = n; k-- > 0;) {
		uint32_t lo = sym[k] & 0xffff, freq = sym[k] >> 16, t;

		/* renormalize branch-free: the word is always stored, kept
		 * only when due (a coin flip: a branch would mispredict) */
		const uint32_t need = (uint64_t)a >= (uint64_t)freq << (32 - MIX_PB);

		wp[-2] = (uint8_t)a;
		wp[-1] = (uint8_t)(a >> 8);
		wp -= need << 1;
		a >>= need << 4;
		a = ((a / freq) << MIX_PB) + (a % freq) + lo;
		t = a;
		a = b;
		b = t;
	}
	/* b now holds state 0 (symbol 0's), a state 1.  The decoder reads
	 * state 0 then state 1, each high word first. */
	for (int i = 0; i < 2; i++) {
		uint32_t x = i == 0 ? a : b;

		wp -= 4;
		wp[0] = (uint8_t)(x >> 16);
		wp[1] = (uint8_t)(x >> 24);
		wp[2] = (uint8_t)x;
		wp[3] = (uint8_t)(x >> 8);
	}
	return wp;
}

/* Decoder: x0 codes the next symbol, x1 the one after; they swap.  The
 * stream is read from a copy followed by at least MIX_RPAD readable bytes
 * (mix_rdec_pad), so reads need no bounds checks: a segment reads at most
 * two words a symbol, and one that reads past the end fails its check. */
struct mix_rdec {
	uint32_t x0, x1;
	const uint8_t *p, *end;
};

static inline uint32_t mix_rdec_word(struct mix_rdec *d)
{
	uint32_t w = (uint32_t)d->p[0] | (uint32_t)d->p[1] << 8;

	d->p += 2;
	return w;
}

static inline void mix_rdec_start(struct mix_rdec *d)
{
	uint32_t h = mix_rdec_word(d);

	d->x0 = h << 16 | mix_rdec_word(d);
	h = mix_rdec_word(d);
	d->x1 = h << 16 | mix_rdec_word(d);
}

/* A segment ends with both states back at MIX_RL (what the encoder started
 * from), not past the end of the stream. */
static inline int mix_rdec_finish(const struct mix_rdec *d)
{
	return d->x0 == MIX_RL && d->x1 == MIX_RL && d->p <= d->end;
}

static inline uint32_t mix_rdec_slot(const struct mix_rdec *d)
{
	return d->x0 & (MIX_PTOT - 1);
}

static inline void mix_rdec_advance(struct mix_rdec *d, uint32_t lo, uint32_t freq)
{
	uint32_t x = freq * (d->x0 >> MIX_PB) + (d->x0 & (MIX_PTOT - 1)) - lo;
	uint32_t w = (uint32_t)d->p[0] | (uint32_t)d->p[1] << 8;
	const uint32_t need = x < MIX_RL;

	/* branch-free renormalization (whether a word is due is a coin flip;
	 * written as arithmetic so the compiler cannot make it a branch) */
	x = x << (need << 4) | (w & (0u - need));
	d->p += need << 1;
	d->x0 = d->x1;
	d->x1 = x;
}

/* ---- raw bit stream ----------------------------------------------------- */

/* Bits that no model predicts (sign, low mantissa) bypass the coder: they
 * are packed LSB first into a stream whose length the decoder derives from
 * the element count.  Both directions are branch-free in the common case:
 * whole bytes move with 8-byte unaligned accesses (little-endian host,
 * FORMAT.md section 6).  Reads past the end yield zero bits. */
struct mix_bits {
	uint64_t acc;        /* encoder: pending bits */
	unsigned n;          /* encoder: pending bit count, < 8 between puts */
	int full;            /* encoder ran out of room */
	uint8_t *p, *end;    /* encoder: write position and limit */
	const uint8_t *in;   /* decoder: stream */
	size_t len, pos;     /* decoder: bytes, bits read */
};

static inline void mix_bits_put(struct mix_bits *b, uint32_t v, unsigned k)
{
	MIX_ASSERT(k <= 32 && (k == 32 || v < (1u << k)) && b->n < 8);
	b->acc |= (uint64_t)v << b->n;
	b->n += k;
	if (__builtin_expect(b->end - b->p >= 8, 1)) {
		memcpy(b->p, &b->acc, 8);
	} else {
		for (unsigned i = 0; i < b->n / 8; i++) {
			if (b->p + i >= b->end) {
				b->full = 1;
				b->n &= 7;
				b->acc = 0;
				return;
			}
			b->p[i] = (uint8_t)(b->acc >> (8 * i));
		}
	}
	b->p += b->n >> 3;
	b->acc >>= b->n & ~7u;
	b->n &= 7;
}

/* Returns 0, or -1 if the stream ran out of room. */
static inline int mix_bits_flush(struct mix_bits *b)
{
	if (b->full)
		return -1;
	if (b->n) {
		if (b->p >= b->end)
			return -1;
		*b->p++ = (uint8_t)b->acc;
		b->n = 0;
	}
	return 0;
}

static inline uint32_t mix_bits_get(struct mix_bits *b, unsigned k)
{
	size_t byte = b->pos >> 3;
	uint64_t w = 0;

	MIX_ASSERT(k <= 32);
	if (__builtin_expect(byte + 8 <= b->len, 1)) {
		memcpy(&w, b->in + byte, 8);
	} else {
		for (unsigned i = 0; i < 8 && byte + i < b->len; i++)
			w |= (uint64_t)b->in[byte + i] << (8 * i);
	}
	b->pos += k;
	return (uint32_t)((w >> ((b->pos - k) & 7)) & ((1ull << k) - 1));
}

/* Decoder end check: the stream held exactly the bits read, padded with
 * zero bits to a byte. */
static inline int mix_bits_exact(const struct mix_bits *b)
{
	if (b->len != (b->pos + 7) / 8)
		return 0;
	return !(b->pos & 7) || !(b->in[b->len - 1] >> (b->pos & 7));
}

/* ---- one body for both directions --------------------------------------- */

/* A coder body is written once with a constant enc: enc != 0 records the
 * given symbol, enc == 0 decodes one (the compiler drops the other side). */
struct mix_io {
	struct mix_renc e;
	struct mix_rdec d;
	struct mix_bits b;
	uint32_t dith; /* dither of the model updates (starts at 0) */
	unsigned used; /* decoder: MIX_USED_* paths some element took */
};

#define MIX_USED_SPARSE 1u /* the sparse value tree */
#define MIX_USED_PLAIN 2u  /* the mantissa under the leaf, plain bits */

/* Weyl sequence (golden ratio step): evenly spread, one add. */
static inline uint32_t mix_io_dither(struct mix_io *io)
{
	io->dith += 0x9e3779b9u;
	return io->dith;
}

/* Code symbol s with row r of n symbols (encoder) or decode one (decoder),
 * then learn it.  impl: 1 = AVX2 row operations. */
static inline __attribute__((always_inline)) unsigned
mix_code(struct mix_io *io, const int enc, const int impl, uint16_t *r, unsigned n, unsigned s,
         unsigned kmax)
{
	uint32_t lo, freq;

	if (!enc)
		s = MIX_ROW_FIND(impl, r, n, mix_rdec_slot(&io->d));
	mix_row_interval(r, n, s, &lo, &freq);
	if (enc)
		mix_renc_put(&io->e, lo, freq);
	else
		mix_rdec_advance(&io->d, lo, freq);
	MIX_ROW_UPDATE(impl, r, n, s, kmax, mix_io_dither(io));
	return s;
}

/* Binary decision y with binary model r. */
static inline __attribute__((always_inline)) unsigned
mix_code_bin(struct mix_io *io, const int enc, uint16_t *r, unsigned y, unsigned kmax)
{
	uint32_t p0 = (uint32_t)r[1] + 1;

	if (!enc)
		y = mix_rdec_slot(&io->d) >= p0;
	if (enc)
		mix_renc_put(&io->e, y ? p0 : 0, y ? MIX_PTOT - p0 : p0);
	else
		mix_rdec_advance(&io->d, y ? p0 : 0, y ? MIX_PTOT - p0 : p0);
	mix_row_update(r, 2, y, kmax, mix_io_dither(io));
	return y;
}

/* k plain bits (0 <= k <= 32). */
static inline __attribute__((always_inline)) uint32_t
mix_code_plain(struct mix_io *io, const int enc, uint32_t v, unsigned k)
{
	if (enc) {
		mix_bits_put(&io->b, v, k);
		return v;
	}
	return mix_bits_get(&io->b, k);
}

#endif
