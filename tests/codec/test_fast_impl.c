/*
 * test_fast_impl.c - every CPU-specific instance of the fast coder's hot
 * loops must produce exactly what the portable one does.  Includes
 * fast.c to reach its static instances.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/fast.c"
#include "tests/codec/gen.h"

#define N 5003 /* odd: exercises every tail path */
#define LANE_BYTES 2048 /* > 11 bits x ceil(N / 4) symbols */

static const struct fast_impl *impls[] = {
	&fast_impl_portable,
#if FAST_HAVE_AVX2
	&fast_impl_avx2,
#endif
};

static int impl_usable(const struct fast_impl *im)
{
#if FAST_HAVE_AVX2
	if (im == &fast_impl_avx2) {
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2");
	}
#endif
	return 1;
}

static void test_split_merge(void **state)
{
	static uint8_t src[4 * N], ref[4][N], got[4][N], back[4 * N];

	for (int dt = CODEC_DTYPE_OTHER; dt <= CODEC_DTYPE_FP32; dt++) {
		size_t m = N;
		uint8_t *rs[4] = {ref[0], ref[1], ref[2], ref[3]}, *gs[4] = {got[0], got[1], got[2], got[3]};

		gen_fill(src, sizeof(src), GEN_RANDOM, GEN_DT_BYTES, 0, (uint64_t)dt);
		fast_impl_portable.split(dt, src, m, rs);
		for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++) {
			const uint8_t *cs[4] = {got[0], got[1], got[2], got[3]};

			if (!impl_usable(impls[i]))
				continue;
			memset(got, 0, sizeof(got));
			impls[i]->split(dt, src, m, gs);
			assert_memory_equal(got, ref, sizeof(got));
			impls[i]->merge(dt, cs, m, back);
			assert_memory_equal(back, src, m * fast_esize(dt));
		}
	}
}

static void test_huffman_lanes(void **state)
{
	static uint8_t sym[N], ref[HUF_LANES * LANE_BYTES], got[HUF_LANES * LANE_BYTES], dec[N];
	uint32_t cnt[256] = {0}, enc[256];
	uint8_t len[256];
	uint16_t code[256], dtab[HUF_TSIZE];
	size_t start[HUF_LANES], lc[HUF_LANES];

	/* Skewed symbols, as an exponent stream. */
	gen_fill(sym, N, GEN_NORMAL, GEN_DT_BYTES, 0, 7);
	for (size_t i = 0; i < N; i++)
		cnt[sym[i]]++;
	huf_lengths(cnt, len);
	assert_int_equal(huf_codes(len, 0, 255, code), 0);
	for (uint32_t x = 0; x < 256; x++) {
		enc[x] = len[x] ? (uint32_t)code[x] | (uint32_t)len[x] << 16 : 0;
		for (uint32_t j = code[x]; len[x] && j < HUF_TSIZE; j += 1u << len[x])
			dtab[j] = (uint16_t)(x | (uint32_t)len[x] << 8);
	}
	huf_lane_split(N, start, lc);
	memset(ref, 0, sizeof(ref));
	for (uint32_t k = 0; k < HUF_LANES; k++)
		fast_impl_portable.lane_encode(sym + start[k], lc[k], enc, ref + k * LANE_BYTES,
		                               ref + sizeof(ref));
	for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++) {
		struct bitr r[HUF_LANES];

		if (!impl_usable(impls[i]))
			continue;
		memset(got, 0, sizeof(got));
		for (uint32_t k = 0; k < HUF_LANES; k++)
			impls[i]->lane_encode(sym + start[k], lc[k], enc, got + k * LANE_BYTES,
			                      got + sizeof(got));
		assert_memory_equal(got, ref, sizeof(got));
		for (uint32_t k = 0; k < HUF_LANES; k++)
			r[k] = (struct bitr){got + k * LANE_BYTES, got + sizeof(got), 0};
		memset(dec, 0, sizeof(dec));
		impls[i]->lanes_decode(dtab, r, dec, start, lc);
		assert_memory_equal(dec, sym, N);
	}
}

/* Sparse streams (mode 3): mostly one value, or one value of both signs,
 * must be coded sparse, far below Huffman's bit a symbol, and decode back
 * (also at lengths around the bitmap's byte edges). */
static void test_sparse_roundtrip(void **state)
{
	static uint8_t sym[65536], out[65536 + 64], dec[65536];
	static const size_t lens[] = {64, 71, 72, 73, 5003, 65536};
	struct codec_ctx ctx = {0};
	struct fast_state *st;
	uint64_t r = 99;

	assert_int_equal(fast_state_get(&ctx, 65536, &st), 0);
	for (int signed_zero = 0; signed_zero < 2; signed_zero++) {
		for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
			size_t n = lens[li];
			const uint8_t *res;
			ssize_t e, d;

			for (size_t i = 0; i < n; i++) {
				r = r * 6364136223846793005ull + 1442695040888963407ull;
				sym[i] = signed_zero ? (uint8_t)((r >> 40) & 0x80) : 0;
				if ((i / 64) % 16 == 3 || i % 61 == 5) /* a dense block in 16 */
					sym[i] = (uint8_t)(1 + (r >> 32) % 255);
			}
			e = fast_stream_encode(st, sym, n, out, sizeof(out), 0);
			assert_true(e > 0);
			if (n >= 5003) { /* short ones may not pay for the bitmap */
				assert_int_equal(out[0], FAST_STREAM_SPARSE);
				assert_int_equal(out[1], signed_zero ? 0x7f : 0xff);
			}
			memset(dec, 0xaa, sizeof(dec));
			d = fast_stream_decode(st, out, (size_t)e, n, dec, &res, 0);
			assert_int_equal(d, e);
			assert_memory_equal(res, sym, n);
		}
	}
	fast_state_free(st);
}

/* Decode a hand-made stream of n symbols; returns the result. */
static ssize_t sparse_try(struct fast_state *st, const uint8_t *in, size_t len, size_t n)
{
	static uint8_t dec[64];
	const uint8_t *res;

	return fast_stream_decode(st, in, len, n, dec, &res, 0);
}

static void test_sparse_rejects(void **state)
{
	struct codec_ctx ctx = {0};
	struct fast_state *st;
	/* 8 symbols: bitmap (const 0x01: symbol 0 a literal), literal 0x05 */
	const uint8_t good[] = {3, 0xff, 0, 1, 0x01, 1, 0x05};
	const uint8_t mask0[] = {3, 0x00, 0, 1, 0x01, 1, 0x05};
	const uint8_t val_out[] = {3, 0x7f, 0x80, 1, 0x01, 1, 0x05, 1, 0x00};
	const uint8_t lit_in_class[] = {3, 0xff, 5, 1, 0x01, 1, 0x05};
	const uint8_t res_mask_bits[] = {3, 0x7f, 0, 1, 0x01, 1, 0x05, 1, 0x01};
	const uint8_t res_ok[] = {3, 0x7f, 0, 1, 0x01, 1, 0x05, 1, 0x80};
	const uint8_t padding[] = {3, 0xff, 0, 1, 0x81, 1, 0x05}; /* 7 symbols */
	const uint8_t trailing[] = {3, 0xff, 0, 1, 0x01, 1, 0x05, 0};
	/* sparse in sparse in sparse in sparse: one level too deep */
	const uint8_t deep[] = {3, 0xff, 0, 3, 0xff, 0, 3, 0xff, 0, 3, 0xff, 0, 1, 0};

	assert_int_equal(fast_state_get(&ctx, 64, &st), 0);
	assert_int_equal(sparse_try(st, good, sizeof(good), 8), (ssize_t)sizeof(good));
	assert_int_equal(sparse_try(st, res_ok, sizeof(res_ok), 8), (ssize_t)sizeof(res_ok));
	assert_int_equal(sparse_try(st, trailing, sizeof(trailing), 8), (ssize_t)sizeof(good));
	assert_int_equal(sparse_try(st, mask0, sizeof(mask0), 8), -EBADMSG);
	assert_int_equal(sparse_try(st, val_out, sizeof(val_out), 8), -EBADMSG);
	assert_int_equal(sparse_try(st, lit_in_class, sizeof(lit_in_class), 8), -EBADMSG);
	assert_int_equal(sparse_try(st, res_mask_bits, sizeof(res_mask_bits), 8), -EBADMSG);
	assert_int_equal(sparse_try(st, padding, sizeof(padding), 7), -EBADMSG);
	assert_int_equal(sparse_try(st, deep, sizeof(deep), 64), -EBADMSG);
	for (size_t cut = 0; cut < sizeof(res_ok); cut++)
		assert_true(sparse_try(st, res_ok, cut, 8) < 0);
	fast_state_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_merge),
		cmocka_unit_test(test_huffman_lanes),
		cmocka_unit_test(test_sparse_roundtrip),
		cmocka_unit_test(test_sparse_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
