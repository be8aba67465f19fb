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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_merge),
		cmocka_unit_test(test_huffman_lanes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
