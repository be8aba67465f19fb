/*
 * test_mix_impl.c - every CPU-specific instance of the mix coder's hot loops
 * (codec/mix.c, codec/mix_bytes.c, codec/mix_cm.c) must write exactly the frames the
 * portable one writes, and each must decode the other's frames.  Covers
 * every path of the element loop: zeros, escapes and two exponent windows,
 * specials, sparse tensors, low zero bits, references, rows, phases, and
 * chunks long enough to need several rANS segments.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "codec/codec_i.h"
#include "codec/mix_model_i.h"
#include "tests/codec/gen.h"

#define MAXLEN (1u << 20)

struct mcase {
	int dtype, kind, gen_dt;
	uint32_t phase, row;
	size_t len;
	/* 0 plain, 1 reference, 2 sparse, 3 tiny second cluster, 4 widened fp16,
	 * 5 reference differing in signs, exponents and whole elements,
	 * 6 all negative (one sign for the chunk), 7 reference whose elements
	 * moved by small steps (differences with carries: the DELTA kind),
	 * 8 the caller passes a wrong element phase (a misdetection),
	 * 9 prose coded with -o bytes=cm (the context-mixing byte model),
	 * 10 uint16 token ids with -o bytes=cm (2-byte elements),
	 * 11 uint32 token ids with -o bytes=cm (4-byte elements),
	 * 12, 13 the same without it (the light text way over elements),
	 * 14, 15, 16 Q8_0, Q4_0, Q4_1 blocks (the blocks way), the chunk
	 * starting phase bytes into a block, 17 Q4_1 of uniform weights (7.9
	 * bits a byte: found by the first look), 18, 19 Q4_K, Q6_K super-blocks
	 * (the K-quants: Q6_K's head turned to its scales at place 192, its
	 * quants coded as values, one byte a weight), 20, 21 Q5_0, Q5_1 blocks
	 * (values too), 22 IQ4_XS super-blocks, 23 MXFP4 blocks (an e8m0
	 * scale byte, the head) */
	int variant;
};

static void make_input(const struct mcase *c, uint8_t *src, uint8_t *ref, uint64_t seed)
{
	gen_fill(src, c->len, c->kind, c->gen_dt, c->phase, seed);
	if (c->variant == 23) {
		gen_qblocks(src, c->len, 6, c->phase, seed);
	} else if (c->variant == 22) {
		gen_kblocks(src, c->len, 2, c->phase, seed);
	} else if (c->variant >= 20) {
		gen_qblocks(src, c->len, (unsigned)c->variant - 16, c->phase, seed);
	} else if (c->variant >= 18) {
		gen_kblocks(src, c->len, (unsigned)c->variant - 18, c->phase, seed);
	} else if (c->variant >= 14) {
		gen_qblocks(src, c->len, (unsigned)c->variant - 14, c->phase, seed);
	} else if (c->variant == 9) {
		gen_prose(src, c->len, seed);
	} else if (c->variant >= 10) {
		gen_tokens(src, c->len, c->variant % 2 ? 4 : 2, seed);
	} else if (c->variant == 1) {
		/* next checkpoint: some elements flip low mantissa bits (the
		 * XOR kind) */
		size_t esz = c->dtype == CODEC_DTYPE_FP32 ? 4 : 2;

		memcpy(ref, src, c->len);
		for (size_t i = c->phase; i < c->len; i += 3 * esz)
			src[i] ^= (uint8_t)(1 + (i & 1));
	} else if (c->variant == 2) {
		/* dequantized: 16 distinct values */
		for (size_t i = c->phase; i + 2 <= c->len; i += 2) {
			src[i] &= 0x80;
			src[i + 1] = (uint8_t)(0x3c + (src[i + 1] & 7));
		}
	} else if (c->variant == 3) {
		/* dead units: a quarter of the elements ~70 binades down */
		for (size_t i = c->phase; i + 2 <= c->len; i += 8)
			src[i + 1] = (uint8_t)((src[i + 1] & 0x80) | 0x08);
	} else if (c->variant == 5) {
		uint64_t s = seed;

		memcpy(ref, src, c->len);
		for (size_t i = c->phase; i < c->len; i++) {
			uint64_t r = gen_next(&s);

			if (r % 5 == 0)
				ref[i] ^= 0x80; /* sign or exponent bit */
			else if (r % 5 == 1)
				ref[i] = (uint8_t)(r >> 8);
		}
	} else if (c->variant == 7) {
		size_t esz = c->dtype == CODEC_DTYPE_FP32 ? 4 : 2;
		uint64_t s = seed;

		memcpy(ref, src, c->len);
		for (size_t i = c->phase; i + esz <= c->len; i += esz) {
			uint64_t r = gen_next(&s);
			uint32_t v = 0;

			memcpy(&v, src + i, esz);
			v += (uint32_t)(r % 61) - 30; /* across mantissa carries, and signs */
			memcpy(src + i, &v, esz);
		}
	} else if (c->variant == 6) {
		size_t esz = c->dtype == CODEC_DTYPE_FP32 ? 4 : 2;

		for (size_t i = c->phase + esz - 1; i < c->len; i += esz)
			src[i] |= 0x80;
	} else if (c->variant == 4) {
		/* fp16 values widened to fp32: 13 low mantissa bits zero */
		for (size_t i = c->phase; i + 4 <= c->len; i += 4) {
			src[i] = 0;
			src[i + 1] &= 0xe0;
		}
	}
}

static ssize_t encode(struct codec_ctx *ctx, const struct mcase *c, const uint8_t *src,
                      const uint8_t *ref, uint8_t *frame)
{
	struct codec_params p = {.level = CODEC_LEVEL_MIX, .dtype = c->dtype,
	                         .elem_phase = c->phase, .row_elems = c->row,
	                         .bytes_cm = c->variant >= 9 && c->variant <= 11};

	if (c->variant == 8)
		p.elem_phase = (c->phase + 1) % (c->dtype == CODEC_DTYPE_FP32 ? 4 : 2);
	if (c->variant >= 14)
		p.elem_phase = 0; /* phase: bytes of the block before the chunk */

	if (c->variant == 1 || c->variant == 5 || c->variant == 7) {
		p.ref = ref;
		p.ref_len = c->len;
	}
	return codec_frame_encode(ctx, &p, src, c->len, frame, codec_frame_bound(c->len));
}

static void test_instances_agree(void **state)
{
	static const struct mcase cases[] = {
		{CODEC_DTYPE_BF16, GEN_NORMAL, GEN_DT_BF16, 0, 0, 65536, 0},
		{CODEC_DTYPE_BF16, GEN_NORMAL, GEN_DT_BF16, 1, 64, 65535, 0},
		{CODEC_DTYPE_BF16, GEN_NORMAL, GEN_DT_BF16, 0, 300, MAXLEN, 0},
		{CODEC_DTYPE_BF16, GEN_NORMAL, GEN_DT_BF16, 0, 64, 65536, 1},
		{CODEC_DTYPE_BF16, GEN_NORMAL, GEN_DT_BF16, 0, 0, 65536, 2},
		{CODEC_DTYPE_FP16, GEN_NORMAL, GEN_DT_FP16, 1, 16, 65535, 2},
		{CODEC_DTYPE_BF16, GEN_NORMAL, GEN_DT_BF16, 0, 16, 65536, 3},
		{CODEC_DTYPE_BF16, GEN_SPECIAL, GEN_DT_BF16, 1, 0, 4099, 0},
		{CODEC_DTYPE_BF16, GEN_ZERO, GEN_DT_BF16, 0, 0, 65536, 0},
		{CODEC_DTYPE_FP16, GEN_NORMAL, GEN_DT_FP16, 0, 128, 65536, 0},
		{CODEC_DTYPE_FP16, GEN_NORMAL, GEN_DT_FP16, 1, 0, MAXLEN - 1, 0},
		{CODEC_DTYPE_FP16, GEN_NORMAL, GEN_DT_FP16, 0, 0, 65536, 1},
		{CODEC_DTYPE_FP16, GEN_SPECIAL, GEN_DT_FP16, 0, 7, 65536, 0},
		{CODEC_DTYPE_FP32, GEN_NORMAL, GEN_DT_FP32, 0, 0, 65536, 0},
		{CODEC_DTYPE_FP32, GEN_NORMAL, GEN_DT_FP32, 3, 32, 65538, 0},
		{CODEC_DTYPE_FP32, GEN_NORMAL, GEN_DT_FP32, 0, 32, 65536, 1},
		{CODEC_DTYPE_FP32, GEN_NORMAL, GEN_DT_FP32, 0, 0, 65536, 4},
		{CODEC_DTYPE_BF16, GEN_NORMAL, GEN_DT_BF16, 1, 8, 65535, 5},
		{CODEC_DTYPE_BF16, GEN_SPECIAL, GEN_DT_BF16, 1, 8, 65535, 6},
		{CODEC_DTYPE_BF16, GEN_NORMAL, GEN_DT_BF16, 1, 8, 65535, 7},
		{CODEC_DTYPE_BF16, GEN_NORMAL, GEN_DT_BF16, 0, 0, 65536, 8},
		{CODEC_DTYPE_FP16, GEN_NORMAL, GEN_DT_FP16, 1, 0, 65535, 8},
		{CODEC_DTYPE_FP32, GEN_NORMAL, GEN_DT_FP32, 3, 0, 65539, 8},
		{CODEC_DTYPE_FP16, GEN_SPECIAL, GEN_DT_FP16, 0, 0, 65536, 7},
		{CODEC_DTYPE_FP32, GEN_NORMAL, GEN_DT_FP32, 2, 0, 65538, 7},
		{CODEC_DTYPE_FP16, GEN_NORMAL, GEN_DT_FP16, 0, 0, 65536, 6},
		{CODEC_DTYPE_FP32, GEN_BF16_FP32, GEN_DT_FP32, 0, 64, 65536, 6},
		{CODEC_DTYPE_FP16, GEN_NORMAL, GEN_DT_FP16, 0, 0, 65536, 5},
		{CODEC_DTYPE_FP32, GEN_NORMAL, GEN_DT_FP32, 2, 0, 65538, 5},
		{CODEC_DTYPE_FP32, GEN_BF16_FP32, GEN_DT_FP32, 0, 0, 65536, 5},
		{CODEC_DTYPE_FP32, GEN_BF16_FP32, GEN_DT_FP32, 0, 0, 65536, 0},
		{CODEC_DTYPE_FP32, GEN_SPECIAL, GEN_DT_FP32, 2, 0, 65537, 0},
		{CODEC_DTYPE_OTHER, GEN_TEXT, GEN_DT_BYTES, 0, 0, 65536, 0},
		{CODEC_DTYPE_OTHER, GEN_TEXT, GEN_DT_BYTES, 0, 0, MAXLEN, 0},
		{CODEC_DTYPE_OTHER, GEN_NORMAL, GEN_DT_BYTES, 0, 0, 4097, 0},
		{CODEC_DTYPE_OTHER, GEN_INT8, GEN_DT_BYTES, 0, 0, 65536, 0}, /* FAST inside mix (NUM: the text rows above) */
		{CODEC_DTYPE_OTHER, GEN_TEXT, GEN_DT_BYTES, 0, 0, 65536, 9},
		{CODEC_DTYPE_OTHER, GEN_TEXT, GEN_DT_BYTES, 0, 0, 3 * 7168 + 5, 9},
		{CODEC_DTYPE_OTHER, GEN_TEXT, GEN_DT_BYTES, 0, 0, 65536, 10},
		{CODEC_DTYPE_AUTO, GEN_TEXT, GEN_DT_BYTES, 0, 0, 65536, 11},
		{CODEC_DTYPE_OTHER, GEN_TEXT, GEN_DT_BYTES, 0, 0, 65536, 12},
		{CODEC_DTYPE_AUTO, GEN_TEXT, GEN_DT_BYTES, 0, 0, 3 * 16384 + 4, 13},
		{CODEC_DTYPE_OTHER, GEN_TEXT, GEN_DT_BYTES, 5, 0, 65536, 14},
		{CODEC_DTYPE_AUTO, GEN_TEXT, GEN_DT_BYTES, 0, 0, 3 * 16384 + 7, 15},
		{CODEC_DTYPE_AUTO, GEN_TEXT, GEN_DT_BYTES, 19, 0, 65536, 16},
		{CODEC_DTYPE_AUTO, GEN_TEXT, GEN_DT_BYTES, 1, 0, 65536, 17},
		{CODEC_DTYPE_AUTO, GEN_TEXT, GEN_DT_BYTES, 100, 0, 65536, 18},
		{CODEC_DTYPE_AUTO, GEN_TEXT, GEN_DT_BYTES, 7, 0, 3 * 65536 + 11, 19},
		{CODEC_DTYPE_AUTO, GEN_TEXT, GEN_DT_BYTES, 9, 0, 65536, 20},
		{CODEC_DTYPE_AUTO, GEN_TEXT, GEN_DT_BYTES, 13, 0, 65536, 21},
		{CODEC_DTYPE_AUTO, GEN_TEXT, GEN_DT_BYTES, 77, 0, 65536, 22},
		{CODEC_DTYPE_AUTO, GEN_TEXT, GEN_DT_BYTES, 5, 0, 65536 + 3, 23},
	};
	struct codec_ctx *ctx[2] = {codec_ctx_create(), codec_ctx_create()};
	uint8_t *src = malloc(MAXLEN), *ref = malloc(MAXLEN), *out = malloc(MAXLEN);
	uint8_t *f[2] = {malloc(codec_frame_bound(MAXLEN)), malloc(codec_frame_bound(MAXLEN))};
	int have_avx2;

	assert_non_null(ctx[0]);
	assert_non_null(ctx[1]);
	assert_int_equal(mix_impl_force(ctx[0], 0), 0);
	have_avx2 = mix_impl_force(ctx[1], 1) == 0;
	if (!have_avx2)
		print_message("no AVX2 instance on this build or CPU: portable against itself\n");
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const struct mcase *c = &cases[k];
		struct codec_frame_info info;
		ssize_t n[2];

		make_input(c, src, ref, k + 1);
		for (int i = 0; i < 2; i++) {
			n[i] = encode(ctx[i], c, src, ref, f[i]);
			assert_true(n[i] > 0);
		}
		if (n[0] != n[1] || memcmp(f[0], f[1], (size_t)n[0]))
			fail_msg("case %zu: instances wrote different frames (%zd, %zd bytes)", k, n[0],
			         n[1]);
		assert_int_equal(codec_frame_parse(f[0], (size_t)n[0], &info), 0);
		if (c->kind == GEN_NORMAL || c->variant)
			assert_int_equal(info.level, CODEC_LEVEL_MIX);
		/* the residual kinds are both exercised */
		if (c->variant == 7)
			assert_int_equal(f[0][info.header_len + 1] & MIX_LZ_DELTA, MIX_LZ_DELTA);
		if (c->variant == 9)
			assert_int_equal(f[0][info.header_len] & 15, MIX_PF_CM);
		if (c->variant >= 14) {
			/* the layout found: block length, head, phase (where
			 * the head starts: Q6_K's at place 192), the quants'
			 * mode (Q6_K, Q5_0, Q5_1: as values) with the flag of
			 * shared sub-block scale rows (4: the K-quants) */
			static const uint8_t want[10][4] = {{34, 2, 0, 1}, {18, 2, 0, 1}, {20, 4, 0, 1},
			                                    {20, 4, 0, 1}, {144, 16, 0, 5},
			                                    {210, 18, 192, 6}, {22, 2, 0, 2},
			                                    {24, 4, 0, 2}, {136, 8, 0, 5},
			                                    {17, 1, 0, 1}};
			const uint8_t *pl = f[0] + info.header_len, *w = want[c->variant - 14];

			assert_int_equal(info.dtype, CODEC_DTYPE_OTHER);
			assert_int_equal(pl[0] & 15, MIX_BYTES_BLK);
			assert_int_equal(pl[1], w[0]);
			assert_int_equal(pl[2], w[1]);
			assert_int_equal(pl[3], (c->phase + w[0] - w[2]) % w[0]);
			assert_int_equal(pl[4] >> 4, 5); /* the head rows' strength */
			assert_int_equal(pl[4] & 15, w[3]);
		} else if (c->variant >= 10) {
			assert_int_equal(f[0][info.header_len] & 15,
			                 c->variant <= 11 ? MIX_PF_CM | MIX_PF_NUM : MIX_BYTES_ELEM);
			assert_int_equal(f[0][info.header_len + 1], c->variant % 2 ? 2 : 1);
		}
		if (c->variant == 1)
			assert_int_equal(f[0][info.header_len + 1] & MIX_LZ_DELTA, 0);
		/* a misread phase is corrected in the payload's layout byte */
		if (c->variant == 8)
			assert_int_equal(f[0][info.header_len + 28] & 3, c->phase);
		if (c->variant == 2) {
			/* 16 values repeat 4-byte strings: the frame layer also
			 * codes such a chunk as other bytes and may keep that, so
			 * the float payload is checked at the level below */
			struct codec_lvl_args la = {.dtype = c->dtype, .elem_phase = c->phase};
			uint8_t *pl[2] = {f[0], f[1]};
			ssize_t m[2];

			for (int i = 0; i < 2; i++) {
				m[i] = mix_encode(ctx[i], &la, src, c->len, pl[i], c->len - 1);
				assert_true(m[i] > 0);
			}
			assert_int_equal(m[0], m[1]);
			assert_memory_equal(pl[0], pl[1], (size_t)m[0]);
			assert_int_equal(pl[0][0] & MIX_PF_SPARSE, MIX_PF_SPARSE);
			for (int i = 0; i < 2; i++) {
				memset(out, 0xa5, c->len);
				assert_int_equal(mix_decode(ctx[i], &la, pl[1 - i], (size_t)m[1 - i], out,
				                            c->len), (ssize_t)c->len);
				assert_memory_equal(out, src, c->len);
			}
			/* the frames again, for the checks below */
			for (int i = 0; i < 2; i++)
				n[i] = encode(ctx[i], c, src, ref, f[i]);
		}
		for (int i = 0; i < 2; i++) {
			memset(out, 0xa5, c->len);
			assert_int_equal(codec_frame_decode(ctx[i], f[1 - i], (size_t)n[1 - i], out, c->len,
			                                    ref, info.flags & CODEC_FLAG_REF ? c->len : 0),
			                 (ssize_t)c->len);
			assert_memory_equal(out, src, c->len);
		}
	}
	free(src);
	free(ref);
	free(out);
	free(f[0]);
	free(f[1]);
	codec_ctx_free(ctx[0]);
	codec_ctx_free(ctx[1]);
}

/* Damaged payloads fail cleanly in both instances, and alike. */
static void test_instances_reject_alike(void **state)
{
	struct codec_ctx *ctx[2] = {codec_ctx_create(), codec_ctx_create()};
	struct mcase c = {CODEC_DTYPE_BF16, GEN_NORMAL, GEN_DT_BF16, 0, 64, 65536, 0};
	uint8_t *src = malloc(c.len), *out = malloc(c.len), *f = malloc(codec_frame_bound(c.len));
	struct codec_frame_info info;
	ssize_t n;
	uint64_t s = 12345;

	mix_impl_force(ctx[0], 0);
	mix_impl_force(ctx[1], 1);
	make_input(&c, src, NULL, 9);
	n = encode(ctx[0], &c, src, NULL, f);
	assert_int_equal(codec_frame_parse(f, (size_t)n, &info), 0);
	for (int t = 0; t < 200; t++) {
		size_t at = info.header_len + gen_next(&s) % info.payload_len;
		uint8_t bit = (uint8_t)(1u << (gen_next(&s) % 8));
		ssize_t d[2];

		f[at] ^= bit;
		for (int i = 0; i < 2; i++)
			d[i] = codec_frame_decode(ctx[i], f, (size_t)n, out, c.len, NULL, 0);
		assert_int_equal(d[0], -EBADMSG);
		assert_int_equal(d[1], -EBADMSG);
		f[at] ^= bit;
	}
	free(src);
	free(out);
	free(f);
	codec_ctx_free(ctx[0]);
	codec_ctx_free(ctx[1]);
}

/* 100 single-bit flips of payload pl[from, n) (of a chunk of len bytes):
 * each fails or decodes, in both instances alike. */
static void flips_alike(struct codec_ctx *ctx[2], const struct codec_lvl_args *a, uint8_t *pl,
                        size_t n, size_t from, uint8_t *out[2], size_t len, uint64_t s)
{
	for (int t = 0; t < 100; t++) {
		size_t at = from + gen_next(&s) % (n - from);
		uint8_t bit = (uint8_t)(1u << (gen_next(&s) % 8));
		ssize_t d[2];

		pl[at] ^= bit;
		for (int i = 0; i < 2; i++)
			d[i] = mix_decode(ctx[i], a, pl, n, out[i], len);
		assert_int_equal(d[0], d[1]);
		assert_true(d[0] == -EBADMSG || d[0] == (ssize_t)len);
		if (d[0] == (ssize_t)len)
			assert_memory_equal(out[0], out[1], len);
		pl[at] ^= bit;
	}
}

/* Payloads over elements, context mixing (CM | NUM) and the light text way
 * (NUM | FAST), with no payload check at this level (as in frames of
 * earlier builds): a stride byte out of range, a missing one, truncations
 * fail with -EBADMSG; bit flips fail or decode, but both instances alike
 * (the frame's checksum catches what decodes to other bytes). */
static void elem_payload_rejects(bool cm)
{
	struct codec_ctx *ctx[2] = {codec_ctx_create(), codec_ctx_create()};
	const size_t len = 16384;
	struct codec_lvl_args a = {.dtype = CODEC_DTYPE_OTHER, .bytes_cm = cm};
	uint8_t *src = malloc(len), *out[2] = {malloc(len), malloc(len)}, *pl = malloc(len);
	ssize_t n;

	mix_impl_force(ctx[0], 0);
	mix_impl_force(ctx[1], 1);
	gen_tokens(src, len, 2, 7);
	n = mix_encode(ctx[0], &a, src, len, pl, len - 1);
	assert_true(n > 2);
	assert_int_equal(pl[0] & 15, cm ? MIX_PF_CM | MIX_PF_NUM : MIX_BYTES_ELEM);
	assert_int_equal(mix_decode(ctx[0], &a, pl, (size_t)n, out[0], len), (ssize_t)len);
	assert_memory_equal(out[0], src, len);
	for (unsigned v = 0; v < 256; v += v < 4 ? 1 : 63) {
		uint8_t keep = pl[1];

		if (v == 1 || v == 2)
			continue;
		pl[1] = (uint8_t)v;
		for (int i = 0; i < 2; i++)
			assert_int_equal(mix_decode(ctx[i], &a, pl, (size_t)n, out[i], len), -EBADMSG);
		pl[1] = keep;
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(mix_decode(ctx[i], &a, pl, 1, out[i], len), -EBADMSG);
		for (size_t l = 2; l < (size_t)n; l += 1 + l / 3)
			assert_int_equal(mix_decode(ctx[i], &a, pl, l, out[i], len), -EBADMSG);
	}
	flips_alike(ctx, &a, pl, (size_t)n, 2, out, len, 4242);
	free(src);
	free(out[0]);
	free(out[1]);
	free(pl);
	codec_ctx_free(ctx[0]);
	codec_ctx_free(ctx[1]);
}

static void test_elem_payload_rejects(void **state)
{
	(void)state;
	elem_payload_rejects(true);
	elem_payload_rejects(false);
}

/* A blocks payload to break: the 64 KiB chunk src (the caller fills it
 * between blk_fx_open and blk_fx_code) coded by the portable instance
 * into pl (n bytes), which both instances decode back; blk_fx_rejected
 * checks that both refuse pl as it now is. */
struct blk_fx {
	struct codec_ctx *ctx[2];
	struct codec_lvl_args a;
	uint8_t *src, *out[2], *pl;
	size_t len;
	ssize_t n;
};

static void blk_fx_open(struct blk_fx *x)
{
	x->len = 65536;
	x->a = (struct codec_lvl_args){.dtype = CODEC_DTYPE_OTHER};
	for (int i = 0; i < 2; i++) {
		x->ctx[i] = codec_ctx_create();
		x->out[i] = malloc(x->len);
		mix_impl_force(x->ctx[i], i);
	}
	x->src = malloc(x->len);
	x->pl = malloc(x->len);
}

static void blk_fx_code(struct blk_fx *x)
{
	x->n = mix_encode(x->ctx[0], &x->a, x->src, x->len, x->pl, x->len - 1);
	assert_true(x->n > 4);
	assert_int_equal(x->pl[0] & 15, MIX_BYTES_BLK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(mix_decode(x->ctx[i], &x->a, x->pl, (size_t)x->n, x->out[i], x->len),
		                 (ssize_t)x->len);
		assert_memory_equal(x->out[i], x->src, x->len);
	}
}

static void blk_fx_rejected(struct blk_fx *x, size_t n)
{
	for (int i = 0; i < 2; i++)
		assert_int_equal(mix_decode(x->ctx[i], &x->a, x->pl, n, x->out[i], x->len), -EBADMSG);
}

static void blk_fx_close(struct blk_fx *x)
{
	for (int i = 0; i < 2; i++) {
		free(x->out[i]);
		codec_ctx_free(x->ctx[i]);
	}
	free(x->src);
	free(x->pl);
}

/* Blocks payloads (MIX_BYTES_BLK) at the level below the frame: a block
 * length under 2, a head of 0, of the block's length or over 20, a phase
 * past the block, a quants' mode other than 0, 1 and 2, bit 3 of its
 * byte, shared scale rows (bit 2) in a layout without them (Q8_0's,
 * Q3_K's), a head rows' strength code of 1 or over 8, a head stream
 * longer than the payload, a header cut short and truncations fail with
 * -EBADMSG; bit flips fail or decode, in both instances alike. */
static void test_blk_payload_rejects(void **state)
{
	static const uint8_t bad[][8] = {
		/* block length, head, phase, quants' mode, head stream's length */
		{0, 2, 0, 1}, {1, 2, 0, 1}, {34, 0, 0, 1}, {34, 34, 0, 1}, {34, 21, 0, 1},
		{255, 21, 3, 1}, {34, 2, 34, 1}, {34, 2, 200, 1}, {18, 2, 18, 1}, {34, 2, 3, 3},
		{34, 2, 3, 255}, {34, 2, 3, 0x11}, {34, 2, 3, 0x91}, {34, 2, 3, 0xf1},
		{34, 2, 3, 0x55}, {34, 2, 3, 0x59}, {110, 14, 3, 0x55},
		{34, 2, 3, 1, 0xff, 0xff, 0xff, 0xff}, {34, 2, 3, 1, 0, 0, 0, 0x01},
	};
	struct blk_fx x;
	uint8_t *pl;

	(void)state;
	blk_fx_open(&x);
	gen_qblocks(x.src, x.len, 0, 3, 8);
	blk_fx_code(&x);
	pl = x.pl;
	assert_int_equal(pl[1], 34);
	assert_int_equal(pl[2], 2);
	assert_int_equal(pl[3], 3);
	for (size_t v = 0; v < sizeof(bad) / sizeof(bad[0]); v++) {
		uint8_t keep[8];

		memcpy(keep, pl + 1, 8);
		memcpy(pl + 1, bad[v], bad[v][4] || bad[v][7] ? 8 : 4);
		blk_fx_rejected(&x, (size_t)x.n);
		memcpy(pl + 1, keep, 8);
	}
	for (size_t l = 1; l < (size_t)x.n; l += l < 8 ? 1 : 1 + l / 3)
		blk_fx_rejected(&x, l);
	flips_alike(x.ctx, &x.a, pl, (size_t)x.n, 1, x.out, x.len, 777);
	blk_fx_close(&x);
}

/* Blocks payloads with the quants as values (mode 2: Q6_K): a values
 * stream's mode over 1, a values stream longer than the rest or leaving
 * other than the partial blocks' quant bytes after it, a value of 64 or
 * more (6-bit quants), values of a layout that has none (Q4_K's block
 * and head lengths), and truncations fail with -EBADMSG; bit flips fail
 * or decode, in both instances alike. */
static void test_blk_values_rejects(void **state)
{
	struct blk_fx f;
	uint8_t *pl, *x;
	size_t vl;

	(void)state;
	blk_fx_open(&f);
	gen_kblocks(f.src, f.len, 1, 50, 9);
	blk_fx_code(&f);
	pl = f.pl;
	assert_true(f.n > 14);
	assert_int_equal(pl[1], 210);
	assert_int_equal(pl[4], 5 << 4 | 4 | 2);
	x = pl + 9 + codec_le_get(pl + 5, 4); /* the values stream's mode, length */
	vl = (size_t)codec_le_get(x + 1, 4);
	assert_int_equal(x[0], 1);
	/* the partial blocks' quants follow as they are: the chunk starts
	 * at byte 50 of a block, place 68 of it turned to its head at 192
	 * (142 quant bytes to its end), and after 311 whole blocks ends 84
	 * bytes into the next (its head, 18, and 66 quant bytes) */
	assert_int_equal((size_t)f.n - (size_t)(x - pl) - 5 - vl, 142 + 66);
	for (int v = 0; v < 6; v++) {
		uint8_t keep[5], k1 = pl[1], k2 = pl[2];

		memcpy(keep, x, 5);
		if (v == 0)
			x[0] = 2;
		else if (v == 1)
			codec_le_put(x + 1, vl + 1, 4);
		else if (v == 2)
			codec_le_put(x + 1, vl - 1, 4);
		else if (v == 3)
			codec_le_put(x + 1, 0xffffffffu, 4);
		else if (v == 4)
			x[0] = 0; /* raw values: the length is not theirs */
		else
			pl[1] = 144, pl[2] = 16;
		blk_fx_rejected(&f, (size_t)f.n);
		memcpy(x, keep, 5);
		pl[1] = k1;
		pl[2] = k2;
	}
	for (size_t l = (size_t)(x - pl); l < (size_t)f.n; l += 1 + l / 3)
		blk_fx_rejected(&f, l);
	flips_alike(f.ctx, &f.a, pl, (size_t)f.n, 1, f.out, f.len, 778);
	blk_fx_close(&f);
}

/* Q6_K's quants code smaller as values than as bytes: under a capacity
 * the values fit and the bytes do not (the size of a byte way, which the
 * blocks way must beat), the chunk still codes the blocks way, the same
 * payload (it failed once the bytes overflowed, before the values were
 * tried: 0.15-0.28% of Q6_K and Q3_K GGUF files lost to the byte way). */
static void test_blk_values_tight_cap(void **state)
{
	struct blk_fx f;
	uint8_t *again;
	ssize_t m;

	(void)state;
	blk_fx_open(&f);
	gen_kblocks(f.src, f.len, 1, 50, 9);
	blk_fx_code(&f);
	assert_int_equal(f.pl[4] & 3, 2); /* values */
	again = malloc((size_t)f.n);
	assert_non_null(again);
	m = mix_encode(f.ctx[0], &f.a, f.src, f.len, again, (size_t)f.n);
	assert_int_equal(m, f.n);
	assert_memory_equal(again, f.pl, (size_t)f.n);
	assert_int_equal(mix_encode(f.ctx[0], &f.a, f.src, f.len, again, (size_t)f.n - 1), -ENOSPC);
	free(again);
	blk_fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_instances_agree),
		cmocka_unit_test(test_instances_reject_alike),
		cmocka_unit_test(test_elem_payload_rejects),
		cmocka_unit_test(test_blk_payload_rejects),
		cmocka_unit_test(test_blk_values_rejects),
		cmocka_unit_test(test_blk_values_tight_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
