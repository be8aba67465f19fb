/*
 * test_codec.c - unit tests of the codec library: round trips of every
 * level and dtype, frame validation, dtype detection, file-format hints.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "codec/hint.h"
#include "tests/codec/gen.h"

static const size_t sizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 257, 1001, 4099, 65536 + 3};
static const int dtypes[] = {CODEC_DTYPE_OTHER, CODEC_DTYPE_BF16, CODEC_DTYPE_FP16,
                             CODEC_DTYPE_FP32, CODEC_DTYPE_AUTO};

static int gen_dt_of(int dtype)
{
	switch (dtype) {
	case CODEC_DTYPE_BF16:
		return GEN_DT_BF16;
	case CODEC_DTYPE_FP16:
		return GEN_DT_FP16;
	case CODEC_DTYPE_OTHER:
		return GEN_DT_BYTES;
	default:
		return GEN_DT_FP32;
	}
}

static uint32_t esize_of(int dtype)
{
	return dtype == CODEC_DTYPE_FP32 ? 4 : (dtype == CODEC_DTYPE_OTHER || dtype == CODEC_DTYPE_AUTO) ? 1 : 2;
}

/* Encode, check the frame's promises, decode, compare.  Returns the
 * frame length. */
static size_t roundtrip(struct codec_ctx *ctx, const struct codec_params *p,
                        const uint8_t *src, size_t len)
{
	size_t cap = codec_frame_bound(len);
	uint8_t *frame = malloc(cap + 1), *out = malloc(len + 1), *again = malloc(cap + 1);
	struct codec_frame_info info;
	ssize_t n, m, d;

	assert_non_null(frame);
	assert_non_null(out);
	assert_non_null(again);
	n = codec_frame_encode(ctx, p, src, len, frame, cap);
	if (n <= 0)
		print_error("encode level %d dtype %d phase %u len %zu: %zd\n", p->level, p->dtype,
		            p->elem_phase, len, n);
	assert_true(n > 0);
	assert_true((size_t)n <= len + CODEC_HEADER_MAX);
	assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
	assert_int_equal(info.header_len + info.payload_len, (size_t)n);
	assert_int_equal(info.raw_len, len);
	assert_true(info.level <= (uint8_t)p->level);
	assert_true(info.payload_len <= len);
	assert_true(info.checksum == codec_checksum(src, len));
	/* Deterministic: a second encode gives the same bytes. */
	m = codec_frame_encode(ctx, p, src, len, again, cap);
	assert_int_equal(m, n);
	assert_memory_equal(frame, again, (size_t)n);
	d = codec_frame_decode(ctx, frame, (size_t)n, out, len, p->ref, p->ref_len);
	if (d != (ssize_t)len || (len && memcmp(out, src, len)))
		print_error("level %d->%d dtype %d->%d phase %u len %zu: decode %zd\n", p->level,
		            info.level, p->dtype, info.dtype, p->elem_phase, len, d);
	assert_int_equal(d, (ssize_t)len);
	if (len)
		assert_memory_equal(out, src, len);
	free(frame);
	free(out);
	free(again);
	return (size_t)n;
}

static void test_roundtrip_matrix(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	uint8_t *buf = malloc(65536 + 8);

	assert_non_null(ctx);
	/* level COUNT: mix with the context-mixing byte model */
	for (int level = 0; level <= CODEC_LEVEL_COUNT; level++)
		for (size_t di = 0; di < sizeof(dtypes) / sizeof(dtypes[0]); di++)
			for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++)
				for (int kind = 0; kind < GEN_KIND_COUNT; kind++)
					for (uint32_t ph = 0; ph < esize_of(dtypes[di]); ph++) {
						struct codec_params p = {
							.level = level < CODEC_LEVEL_COUNT ? level : CODEC_LEVEL_MIX,
							.dtype = dtypes[di], .elem_phase = ph, .row_elems = 64,
							.bytes_cm = level == CODEC_LEVEL_COUNT};

						gen_fill(buf, sizes[si], kind, gen_dt_of(dtypes[di]), ph,
						         si * 7 + ph);
						roundtrip(ctx, &p, buf, sizes[si]);
					}
	/* Large-ish and a context reused across dtypes. */
	free(buf);
	buf = malloc(1u << 20);
	for (int dt = CODEC_DTYPE_BF16; dt <= CODEC_DTYPE_FP32; dt++) {
		struct codec_params p = {.level = CODEC_LEVEL_FAST, .dtype = dt};

		gen_fill(buf, 1u << 20, GEN_NORMAL, gen_dt_of(dt), 0, 99);
		assert_true(roundtrip(ctx, &p, buf, 1u << 20) < (9u << 20) / 10);
	}
	free(buf);
	codec_ctx_free(ctx);
}

static void test_never_expands(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	uint8_t buf[4096], frame[4096 + CODEC_HEADER_MAX];

	gen_fill(buf, sizeof(buf), GEN_RANDOM, GEN_DT_BYTES, 0, 5);
	for (int level = 0; level < CODEC_LEVEL_COUNT; level++)
		for (size_t di = 0; di < sizeof(dtypes) / sizeof(dtypes[0]); di++) {
			struct codec_params p = {.level = level, .dtype = dtypes[di]};
			struct codec_frame_info info;
			ssize_t n = codec_frame_encode(ctx, &p, buf, sizeof(buf), frame, sizeof(frame));

			assert_true(n > 0);
			assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
			/* A coder may shave a few bytes off noise; it must never
			 * cost more than a raw frame's header. */
			assert_true((size_t)n <= 21 + sizeof(buf));
			if (level == CODEC_LEVEL_RAW || level == CODEC_LEVEL_FAST)
				assert_int_equal(info.level, CODEC_LEVEL_RAW);
		}
	codec_ctx_free(ctx);
}

static void test_fast_compresses(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	static uint8_t buf[65536];
	static const struct {
		int dt, kind;
		double max_ratio;
	} cases[] = {
		{CODEC_DTYPE_BF16, GEN_NORMAL, 0.70},
		{CODEC_DTYPE_FP16, GEN_NORMAL, 0.88},
		{CODEC_DTYPE_FP32, GEN_NORMAL, 0.86},
		{CODEC_DTYPE_FP32, GEN_BF16_FP32, 0.35},
		{CODEC_DTYPE_OTHER, GEN_TEXT, 0.70},
		{CODEC_DTYPE_OTHER, GEN_ZERO, 0.01},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct codec_params p = {.level = CODEC_LEVEL_FAST, .dtype = CODEC_DTYPE_AUTO};
		size_t n;

		gen_fill(buf, sizeof(buf), cases[i].kind, gen_dt_of(cases[i].dt), 0, i);
		n = roundtrip(ctx, &p, buf, sizeof(buf));
		assert_true((double)n / sizeof(buf) <= cases[i].max_ratio);
	}
	codec_ctx_free(ctx);
}

/* Flags of the payload (low nibble of its byte 0) of buf coded with p. */
/* The first two bytes of a mix frame's payload. */
static void mix_payload(struct codec_ctx *ctx, const struct codec_params *p, const uint8_t *buf,
                        size_t len, uint8_t pb[2])
{
	static uint8_t frame[65536 + CODEC_HEADER_MAX];
	struct codec_frame_info info;
	ssize_t n = codec_frame_encode(ctx, p, buf, len, frame, sizeof(frame));

	assert_true(n > 0);
	assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
	assert_int_equal(info.level, p->level);
	assert_true(info.payload_len >= 2);
	memcpy(pb, frame + info.header_len, 2);
}

static unsigned mix_flags(struct codec_ctx *ctx, const struct codec_params *p, const uint8_t *buf,
                          size_t len)
{
	uint8_t pb[2];

	mix_payload(ctx, p, buf, len, pb);
	return pb[0] & 0x0fu;
}

/* Other bytes at mix: numbers take the NUM way, whose contexts learn in
 * 64 KiB (under the previous byte they cost 5-8% more than fast's order
 * 0), or carry a fast payload (FAST) where that is smaller: never more than
 * level fast (plus the flags byte).  Text keeps the previous byte as its context. */
static void test_mix_numbers(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	static uint8_t buf[65536];
	static const struct {
		int kind;
		unsigned flag; /* payload byte 0's flags */
		double max_ratio;
	} cases[] = {
		{GEN_INT8, 0x04, 0.90},   /* i.i.d. int8: fast's static tables win */
		{GEN_NORMAL, 0x02, 0.35}, /* bf16 high bytes (sign, exponent) */
	};
	struct codec_params p = {.level = CODEC_LEVEL_MIX, .dtype = CODEC_DTYPE_OTHER};
	struct codec_params pf = {.level = CODEC_LEVEL_FAST, .dtype = CODEC_DTYPE_OTHER};
	size_t len = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gen_fill(buf, 16384, cases[i].kind, GEN_DT_BYTES, 0, 36 + i);
		size_t n = roundtrip(ctx, &p, buf, 16384), nf = roundtrip(ctx, &pf, buf, 16384);

		assert_true((double)n / 16384 <= cases[i].max_ratio);
		assert_true(n <= nf + 1); /* + the flags byte around a fast payload */
		assert_int_equal(mix_flags(ctx, &p, buf, 16384), cases[i].flag);
	}
	/* a tensor table: structured text */
	for (unsigned i = 0; len + 80 < sizeof(buf); i++)
		len += (size_t)snprintf((char *)buf + len, sizeof(buf) - len,
		                        "{\"name\": \"layers.%u.mlp.weight\", \"shape\": [%u, %u]},\n",
		                        i, 256u << (i % 3), 1024u >> (i % 2));
	assert_true((double)roundtrip(ctx, &p, buf, len) / len <= 0.10);
	assert_int_equal(mix_flags(ctx, &p, buf, len), 0);
	codec_ctx_free(ctx);
}

/* -o bytes=cm: the context-mixing byte model codes text smaller than the
 * nibble model (payload flag CM), token ids too, with the element phase
 * in its contexts (CM | NUM and a stride byte), as the light text way does
 * for them without the option (NUM | FAST and a stride byte); numbers and
 * noise keep their ways; without the option CM is never used. */
static void test_mix_cm(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	static uint8_t buf[65536];
	struct codec_params pl = {.level = CODEC_LEVEL_MIX, .dtype = CODEC_DTYPE_OTHER};
	struct codec_params pc = {.level = CODEC_LEVEL_MIX, .dtype = CODEC_DTYPE_OTHER,
	                          .bytes_cm = true};
	struct codec_params pa = {.level = CODEC_LEVEL_MIX, .dtype = CODEC_DTYPE_AUTO,
	                          .bytes_cm = true};
	size_t len, nl, nc;

	(void)state;
	assert_non_null(ctx);
	len = gen_prose(buf, sizeof(buf), 5);
	nl = roundtrip(ctx, &pl, buf, len);
	nc = roundtrip(ctx, &pc, buf, len);
	assert_int_equal(mix_flags(ctx, &pl, buf, len), 0);
	assert_int_equal(mix_flags(ctx, &pc, buf, len), 0x08);
	assert_true(nc * 100 < nl * 85); /* >= 15% smaller */
	/* across rANS segments (7168 bytes), odd lengths, tiny chunks */
	for (size_t l = 1; l <= 2 * 7168 + 3; l = l < 16 ? l + 1 : l * 3 - 1)
		roundtrip(ctx, &pc, buf, l);
	/* uint16 token ids: detected as fp16, coded as other bytes, with CM
	 * over 2-byte elements (CM | NUM, byte 1 = log2 of the stride); uint32
	 * ids: 4-byte elements */
	for (unsigned sh = 1; sh <= 2; sh++) {
		uint8_t pb[2];

		gen_tokens(buf, sizeof(buf), 1u << sh, 78);
		nl = roundtrip(ctx, &pl, buf, sizeof(buf));
		nc = roundtrip(ctx, &pa, buf, sizeof(buf));
		assert_true(nc * 100 < nl * 90);
		mix_payload(ctx, &pa, buf, sizeof(buf), pb);
		assert_int_equal(pb[0] & 15, 0x0a);
		assert_int_equal(pb[1], sh);
		/* the light text way over elements too (flags NUM | FAST) */
		mix_payload(ctx, &pl, buf, sizeof(buf), pb);
		assert_int_equal(pb[0] & 15, 0x06);
		assert_int_equal(pb[1], sh);
		for (size_t l = 1; l <= 2 * 7168 + 3; l = l < 16 ? l + 1 : l * 3 - 1) {
			roundtrip(ctx, &pa, buf, l);
			roundtrip(ctx, &pl, buf, l);
		}
	}
	/* noise stays raw, int8 numbers keep their way */
	gen_fill(buf, 16384, GEN_RANDOM, GEN_DT_BYTES, 0, 3);
	assert_true(roundtrip(ctx, &pc, buf, 16384) > 16384);
	gen_fill(buf, 16384, GEN_INT8, GEN_DT_BYTES, 0, 36);
	assert_int_equal(mix_flags(ctx, &pc, buf, 16384), 0x04);
	codec_ctx_free(ctx);
}

/* A fast frame keeps the row length it was given (ROWS), for a later
 * recompression to mix; a chunk that falls back to raw drops it. */
static void test_fast_rows(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	static uint8_t buf[16384], frame[16384 + CODEC_HEADER_MAX], out[16384];
	struct codec_params p = {.level = CODEC_LEVEL_FAST, .dtype = CODEC_DTYPE_BF16,
	                         .row_elems = 128};
	struct codec_frame_info info;
	ssize_t n;

	(void)state;
	gen_fill(buf, sizeof(buf), GEN_NORMAL, GEN_DT_BF16, 0, 7);
	n = codec_frame_encode(ctx, &p, buf, sizeof(buf), frame, sizeof(frame));
	assert_true(n > 0);
	assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
	assert_int_equal(info.level, CODEC_LEVEL_FAST);
	assert_int_equal(info.row_elems, 128);
	assert_int_equal(codec_frame_decode(ctx, frame, (size_t)n, out, sizeof(out), NULL, 0),
	                 (ssize_t)sizeof(buf));
	assert_memory_equal(out, buf, sizeof(buf));
	/* the same bytes without rows: 4 header bytes fewer, same payload */
	p.row_elems = 0;
	assert_int_equal(codec_frame_encode(ctx, &p, buf, sizeof(buf), out, sizeof(frame)), n - 4);
	/* incompressible: stored raw, no rows */
	gen_fill(buf, sizeof(buf), GEN_RANDOM, GEN_DT_BYTES, 0, 8);
	p.row_elems = 128;
	n = codec_frame_encode(ctx, &p, buf, sizeof(buf), frame, sizeof(frame));
	assert_true(n > 0);
	assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
	assert_int_equal(info.level, CODEC_LEVEL_RAW);
	assert_int_equal(info.row_elems, 0);
	codec_ctx_free(ctx);
}

static void test_detect(void **state)
{
	static uint8_t buf[65536 + 4];

	for (int dt = CODEC_DTYPE_BF16; dt <= CODEC_DTYPE_FP32; dt++) {
		for (uint32_t ph = 0; ph < esize_of(dt); ph++) {
			uint32_t got_ph = 99;

			gen_fill(buf, sizeof(buf), GEN_NORMAL, gen_dt_of(dt), ph, 3);
			assert_int_equal(codec_dtype_detect(buf, sizeof(buf), &got_ph), dt);
			assert_int_equal(got_ph, ph);
			/* Small chunks too. */
			if (codec_dtype_detect(buf, 4096, &got_ph) != dt)
				print_error("dt %d phase %u: 4 KiB detected as %d\n", dt, ph,
				            codec_dtype_detect(buf, 4096, &got_ph));
			assert_int_equal(codec_dtype_detect(buf, 4096, &got_ph), dt);
		}
	}
	gen_fill(buf, sizeof(buf), GEN_BF16_FP32, GEN_DT_FP32, 2, 4);
	{
		uint32_t ph;

		assert_int_equal(codec_dtype_detect(buf, sizeof(buf), &ph), CODEC_DTYPE_FP32);
		assert_int_equal(ph, 2);
	}
	gen_fill(buf, sizeof(buf), GEN_RANDOM, GEN_DT_BYTES, 0, 4);
	assert_int_equal(codec_dtype_detect(buf, sizeof(buf), NULL), CODEC_DTYPE_OTHER);
	gen_fill(buf, sizeof(buf), GEN_TEXT, GEN_DT_BYTES, 0, 4);
	assert_int_equal(codec_dtype_detect(buf, sizeof(buf), NULL), CODEC_DTYPE_OTHER);
	assert_int_equal(codec_dtype_detect(buf, 0, NULL), CODEC_DTYPE_OTHER);
	assert_int_equal(codec_dtype_detect(NULL, 0, NULL), CODEC_DTYPE_OTHER);
}

/* Word-level token ids (uint16, 300 words, sentences of 8 drawn from 40
 * that repeat) look like floats to the detector; coded as other bytes they
 * are far smaller, and the frame says so.  Float weights stay floats. */
static void test_detect_integers(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	static uint16_t sent[40][8], tok[32768];
	static uint8_t frame[65536 + CODEC_HEADER_MAX];
	struct codec_frame_info info;
	uint64_t s = 5;
	ssize_t n, nh;

	for (int i = 0; i < 40; i++)
		for (int j = 0; j < 8; j++)
			sent[i][j] = (uint16_t)(gen_next(&s) % 300);
	for (size_t i = 0; i < 32768; i += 8)
		memcpy(tok + i, sent[gen_next(&s) % 40], sizeof(sent[0]));
	for (int level = CODEC_LEVEL_FAST; level <= CODEC_LEVEL_MIX; level++) {
		struct codec_params pa = {.level = level, .dtype = CODEC_DTYPE_AUTO};
		struct codec_params ph = {.level = level};

		ph.dtype = codec_dtype_detect(tok, sizeof(tok), &ph.elem_phase);
		assert_int_not_equal(ph.dtype, CODEC_DTYPE_OTHER);
		n = (ssize_t)roundtrip(ctx, &pa, (uint8_t *)tok, sizeof(tok));
		nh = (ssize_t)roundtrip(ctx, &ph, (uint8_t *)tok, sizeof(tok));
		assert_true(n <= nh); /* never worse than the detected dtype */
		if (level == CODEC_LEVEL_MIX) {
			struct codec_params pm = ph;

			pm.level = CODEC_LEVEL_FAST;
			/* repeated sentences: the match model; a third of fast's */
			assert_true(n * 3 < (ssize_t)roundtrip(ctx, &pm, (uint8_t *)tok, sizeof(tok)));
		}
		assert_int_equal(codec_frame_encode(ctx, &pa, tok, sizeof(tok), frame, sizeof(frame)), n);
		assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
		if (level == CODEC_LEVEL_MIX) {
			assert_int_equal(info.dtype, CODEC_DTYPE_OTHER);
			/* given the dtype too (a recompression of a fast frame
			 * passes the detected one) */
			assert_int_equal(codec_frame_encode(ctx, &ph, tok, sizeof(tok), frame,
			                                    sizeof(frame)), n);
			assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
			assert_int_equal(info.dtype, CODEC_DTYPE_OTHER);
		}
	}
	{
		struct codec_params pa = {.level = CODEC_LEVEL_MIX, .dtype = CODEC_DTYPE_AUTO};

		gen_fill((uint8_t *)tok, sizeof(tok), GEN_NORMAL, GEN_DT_BF16, 0, 9);
		n = codec_frame_encode(ctx, &pa, tok, sizeof(tok), frame, sizeof(frame));
		assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
		assert_int_equal(info.dtype, CODEC_DTYPE_BF16);
	}
	codec_ctx_free(ctx);
}

/* Files a writer may cut coarser (codec_bytes_file): text, not token ids
 * (uint16 and uint32: read at random offsets), float weights of any
 * dtype, random bytes or a head under 4 KiB; only the first 64 KiB are
 * looked at. */
static void test_bytes_file(void **state)
{
	static uint8_t buf[131072];

	(void)state;
	gen_prose(buf, sizeof(buf), 3);
	assert_true(codec_bytes_file(buf, sizeof(buf)));
	assert_true(codec_bytes_file(buf, 4096));
	assert_false(codec_bytes_file(buf, 4095));
	assert_false(codec_bytes_file(NULL, sizeof(buf)));
	gen_tokens(buf, sizeof(buf), 2, 4);
	assert_false(codec_bytes_file(buf, sizeof(buf)));
	gen_tokens(buf, sizeof(buf), 4, 5);
	assert_false(codec_bytes_file(buf, sizeof(buf)));
	for (int dt = CODEC_DTYPE_BF16; dt <= CODEC_DTYPE_FP32; dt++) {
		gen_fill(buf, sizeof(buf), GEN_NORMAL, gen_dt_of(dt), 1, 6);
		assert_false(codec_bytes_file(buf, sizeof(buf)));
	}
	gen_fill(buf, sizeof(buf), GEN_RANDOM, GEN_DT_BYTES, 0, 7);
	assert_false(codec_bytes_file(buf, sizeof(buf)));
	/* random bytes after a 64 KiB text head: the head decides */
	gen_prose(buf, 65536, 8);
	assert_true(codec_bytes_file(buf, sizeof(buf)));
	/* a text head after 64 KiB of random bytes is not looked at */
	memcpy(buf + 65536, buf, 65536);
	gen_fill(buf, 65536, GEN_RANDOM, GEN_DT_BYTES, 0, 9);
	assert_false(codec_bytes_file(buf, sizeof(buf)));
}

static ssize_t make_frame(struct codec_ctx *ctx, int level, int dtype, uint8_t *frame, size_t cap,
                          uint8_t *src, size_t len)
{
	struct codec_params p = {.level = level, .dtype = dtype};

	gen_fill(src, len, GEN_NORMAL, gen_dt_of(dtype), 0, 11);
	return codec_frame_encode(ctx, &p, src, len, frame, cap);
}

static void test_parse_rejects(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	uint8_t src[3000], frame[3000 + CODEC_HEADER_MAX], bad[sizeof(frame)];
	struct codec_frame_info info;
	ssize_t n = make_frame(ctx, CODEC_LEVEL_FAST, CODEC_DTYPE_BF16, frame, sizeof(frame), src,
	                       sizeof(src));

	assert_true(n > 0);
	assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
	assert_int_equal(info.level, CODEC_LEVEL_FAST);
	assert_int_equal(info.dtype, CODEC_DTYPE_BF16);
	/* Every single-bit flip anywhere in the header is caught by parse. */
	for (uint32_t i = 0; i < info.header_len * 8; i++) {
		memcpy(bad, frame, (size_t)n);
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(codec_frame_parse(bad, (size_t)n, &info), -EBADMSG);
	}
	/* Truncated headers. */
	assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
	for (size_t l = 0; l < info.header_len; l++)
		assert_int_equal(codec_frame_parse(frame, l, &info), -EBADMSG);
	assert_int_equal(codec_frame_parse(NULL, 0, &info), -EINVAL);
	codec_ctx_free(ctx);
}

static void test_decode_rejects(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	uint8_t src[3000], frame[3000 + CODEC_HEADER_MAX], bad[sizeof(frame)], out[3000];
	struct codec_frame_info info;

	for (int level = CODEC_LEVEL_RAW; level <= CODEC_LEVEL_FAST; level++) {
		for (int dt = CODEC_DTYPE_OTHER; dt <= CODEC_DTYPE_FP32; dt++) {
			ssize_t n = make_frame(ctx, level, dt, frame, sizeof(frame), src, sizeof(src));

			assert_true(n > 0);
			assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
			/* Every single-bit flip anywhere in the frame fails. */
			for (uint32_t i = 0; i < (uint32_t)n * 8; i += (level ? 1 : 13)) {
				memcpy(bad, frame, (size_t)n);
				bad[i / 8] ^= (uint8_t)(1u << (i % 8));
				assert_int_equal(codec_frame_decode(ctx, bad, (size_t)n, out, sizeof(out), NULL, 0),
				                 -EBADMSG);
			}
			/* Truncated frames. */
			for (size_t l = 0; l < (size_t)n; l += 97)
				assert_int_equal(codec_frame_decode(ctx, frame, l, out, sizeof(out), NULL, 0),
				                 -EBADMSG);
			/* Too small a destination. */
			assert_int_equal(codec_frame_decode(ctx, frame, (size_t)n, out, sizeof(out) - 1, NULL, 0),
			                 -ENOSPC);
			assert_int_equal(codec_frame_decode(ctx, frame, (size_t)n, out, sizeof(out), NULL, 0),
			                 (ssize_t)sizeof(out));
		}
	}
	codec_ctx_free(ctx);
}

/* Every single-bit flip anywhere in a mix (or fast) frame fails to decode:
 * none may decode to the same bytes (a field the encoder never writes,
 * aliasing once masked into an element, would: an escaped exponent above
 * the dtype's range was one; so would a model parameter no element uses,
 * in an all-zero or all-sparse chunk or one equal to its reference: the
 * payload check catches those), none to other bytes (the checksum).
 * Normal and special values (NaN, Inf, subnormals: escapes), every dtype,
 * and chunks coded against a reference (XOR and order-key residuals). */
static void test_mix_bitflips(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	static uint8_t src[2048], ref[2048], frame[2048 + CODEC_HEADER_MAX], bad[sizeof(frame)],
		out[2048];
	static const struct {
		int dt, kind, with_ref, level; /* with_ref 2: the reference is the chunk */
		bool cm;
	} cases[] = {
		{CODEC_DTYPE_FP32, GEN_SPECIAL, 0, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_BF16, GEN_SPECIAL, 0, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_FP16, GEN_SPECIAL, 0, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_FP32, GEN_NORMAL, 0, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_BF16, GEN_NORMAL, 0, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_OTHER, GEN_TEXT, 0, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_OTHER, GEN_TEXT, 0, CODEC_LEVEL_MIX, true},
		{CODEC_DTYPE_OTHER, GEN_KIND_COUNT, 0, CODEC_LEVEL_MIX, true}, /* tokens */
		{CODEC_DTYPE_OTHER, GEN_KIND_COUNT, 0, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_FP32, GEN_NORMAL, 1, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_BF16, GEN_NORMAL, 1, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_BF16, GEN_SPECIAL, 1, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_BF16, GEN_ZERO, 0, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_FP16, GEN_PRUNED, 0, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_BF16, GEN_NORMAL, 2, CODEC_LEVEL_MIX, false},
		{CODEC_DTYPE_BF16, GEN_NORMAL, 0, CODEC_LEVEL_FAST, false},
		{CODEC_DTYPE_FP16, GEN_PRUNED, 0, CODEC_LEVEL_FAST, false},
		{CODEC_DTYPE_BF16, GEN_ZERO, 0, CODEC_LEVEL_FAST, false},
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct codec_params p = {.level = cases[c].level, .dtype = cases[c].dt,
		                         .row_elems = 64, .bytes_cm = cases[c].cm};
		struct codec_frame_info info;
		ssize_t n;

		if (cases[c].kind == GEN_KIND_COUNT)
			gen_tokens(src, sizeof(src), 2, 40 + c);
		else
			gen_fill(src, sizeof(src), cases[c].kind, gen_dt_of(cases[c].dt), 0, 40 + c);
		if (cases[c].with_ref) {
			/* the previous version: low bits moved in some elements */
			memcpy(ref, src, sizeof(ref));
			for (size_t i = 0; cases[c].with_ref == 1 && i < sizeof(ref); i += 6)
				ref[i] ^= (uint8_t)(1u << (i % 5));
			p.ref = ref;
			p.ref_len = sizeof(ref);
		}
		n = codec_frame_encode(ctx, &p, src, sizeof(src), frame, sizeof(frame));
		assert_true(n > 0);
		assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
		assert_int_equal(info.level, cases[c].level);
		for (uint32_t i = 0; i < (uint32_t)n * 8; i++) {
			ssize_t d;

			memcpy(bad, frame, (size_t)n);
			bad[i / 8] ^= (uint8_t)(1u << (i % 8));
			d = codec_frame_decode(ctx, bad, (size_t)n, out, sizeof(out), p.ref, p.ref_len);
			if (d >= 0)
				fail_msg("case %zu: flip of bit %u of %zd decoded (%zd bytes, %s)", c, i,
				         n, d, d == (ssize_t)sizeof(src) && !memcmp(out, src, sizeof(src))
				                   ? "the same bytes" : "other bytes");
		}
	}
	codec_ctx_free(ctx);
}

static void test_encode_args(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	uint8_t src[100] = {0}, frame[200];
	struct codec_params p = {.level = CODEC_LEVEL_FAST, .dtype = CODEC_DTYPE_BF16, .elem_phase = 2};

	assert_int_equal(codec_frame_encode(ctx, &p, src, sizeof(src), frame, sizeof(frame)), -EINVAL);
	p.elem_phase = 0;
	p.dtype = 7;
	assert_int_equal(codec_frame_encode(ctx, &p, src, sizeof(src), frame, sizeof(frame)), -EINVAL);
	p.dtype = CODEC_DTYPE_BF16;
	p.level = CODEC_LEVEL_COUNT;
	assert_int_equal(codec_frame_encode(ctx, &p, src, sizeof(src), frame, sizeof(frame)), -EINVAL);
	p.level = CODEC_LEVEL_RAW;
	assert_int_equal(codec_frame_encode(ctx, &p, src, sizeof(src), frame, 50), -ENOSPC);
	assert_int_equal(codec_frame_encode(NULL, &p, src, sizeof(src), frame, sizeof(frame)), -EINVAL);
	assert_true(codec_frame_bound(0) >= 24);
	codec_ctx_free(ctx);
	codec_ctx_free(NULL);
}

static void test_ref(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	static uint8_t src[65536], ref[65536], frame[65536 + CODEC_HEADER_MAX], out[65536];
	struct codec_params p = {.level = CODEC_LEVEL_MIX, .dtype = CODEC_DTYPE_BF16};
	struct codec_frame_info info;
	ssize_t n;

	gen_fill(ref, sizeof(ref), GEN_NORMAL, GEN_DT_BF16, 0, 1);
	memcpy(src, ref, sizeof(src));
	for (size_t i = 0; i < sizeof(src); i += 2)
		src[i] ^= (uint8_t)(i & 3); /* low mantissa bits move */
	p.ref = ref;
	p.ref_len = sizeof(ref);
	n = codec_frame_encode(ctx, &p, src, sizeof(src), frame, sizeof(frame));
	assert_true(n > 0);
	assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
	assert_true(info.flags & CODEC_FLAG_REF); /* it pays here */
	assert_int_equal(codec_frame_decode(ctx, frame, (size_t)n, out, sizeof(out), NULL, 0),
	                 -ENOTSUP);
	assert_int_equal(codec_frame_decode(ctx, frame, (size_t)n, out, sizeof(out), ref, 10),
	                 -EINVAL);
	assert_int_equal(codec_frame_decode(ctx, frame, (size_t)n, out, sizeof(out), ref, sizeof(ref)),
	                 (ssize_t)sizeof(out));
	assert_memory_equal(out, src, sizeof(src));
	codec_ctx_free(ctx);
}

/* A reference the coder does not use (unrelated weights: it does not pay;
 * bytes: that coder has no use for one) leaves no trace: the frame is the
 * one coded without a reference, without the REF flag, and decodes
 * without it, so the store does not make the chunk depend on it. */
static void test_ref_unused(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	static uint8_t src[65536], ref[65536], frame[65536 + CODEC_HEADER_MAX],
		alone[65536 + CODEC_HEADER_MAX], out[65536];
	static const struct {
		int kind, gdt, dtype;
	} cases[] = {
		{ GEN_NORMAL, GEN_DT_BF16, CODEC_DTYPE_BF16 },
		{ GEN_NORMAL, GEN_DT_FP32, CODEC_DTYPE_FP32 },
		{ GEN_TEXT, GEN_DT_BYTES, CODEC_DTYPE_OTHER },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct codec_params p = { .level = CODEC_LEVEL_MIX, .dtype = cases[c].dtype };
		struct codec_frame_info info;
		ssize_t n, m;

		gen_fill(src, sizeof(src), cases[c].kind, cases[c].gdt, 0, 11);
		gen_fill(ref, sizeof(ref), cases[c].kind, cases[c].gdt, 0, 12);
		m = codec_frame_encode(ctx, &p, src, sizeof(src), alone, sizeof(alone));
		p.ref = ref;
		p.ref_len = sizeof(ref);
		n = codec_frame_encode(ctx, &p, src, sizeof(src), frame, sizeof(frame));
		assert_true(n > 0 && m > 0);
		assert_int_equal(codec_frame_parse(frame, (size_t)n, &info), 0);
		assert_false(info.flags & CODEC_FLAG_REF);
		assert_int_equal(n, m);
		assert_memory_equal(frame, alone, (size_t)n);
		assert_int_equal(codec_frame_decode(ctx, frame, (size_t)n, out, sizeof(out), NULL, 0),
		                 (ssize_t)sizeof(out));
		assert_memory_equal(out, src, sizeof(src));
	}
	codec_ctx_free(ctx);
}

static void test_names(void **state)
{
	assert_string_equal(codec_level_name(CODEC_LEVEL_RAW), "raw");
	assert_string_equal(codec_level_name(CODEC_LEVEL_FAST), "fast");
	assert_string_equal(codec_level_name(CODEC_LEVEL_MIX), "mix");
	assert_string_equal(codec_level_name(9), "?");
	assert_string_equal(codec_dtype_name(CODEC_DTYPE_BF16), "bf16");
	assert_string_equal(codec_dtype_name(CODEC_DTYPE_FP16), "fp16");
	assert_string_equal(codec_dtype_name(CODEC_DTYPE_FP32), "fp32");
	assert_string_equal(codec_dtype_name(CODEC_DTYPE_OTHER), "other");
	assert_int_equal(codec_level_parse("mix"), CODEC_LEVEL_MIX);
	assert_int_equal(codec_level_parse("fast"), CODEC_LEVEL_FAST);
	assert_int_equal(codec_level_parse("raw"), CODEC_LEVEL_RAW);
	assert_int_equal(codec_level_parse("zstd"), -EINVAL);
	assert_int_equal(codec_level_parse(NULL), -EINVAL);
}

/* ---- hints ---- */

static size_t st_make(uint8_t *buf, const char *json)
{
	uint64_t n = strlen(json);

	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)(n >> (8 * i));
	memcpy(buf + 8, json, n);
	return 8 + n;
}

static void test_hint_safetensors(void **state)
{
	static const char json[] =
		"{\"__metadata__\":{\"format\":\"pt\",\"x\":[1,{\"y\":null}]},"
		"\"b\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[256,384]},"
		" \"a\" : {\"dtype\":\"BF16\", \"shape\":[16, 8], \"data_offsets\":[0, 256]},"
		"\"c\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[384,392]},"
		"\"e\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[392,392]}}  ";
	uint8_t buf[1024];
	size_t hl = st_make(buf, json);
	struct codec_hint h;
	struct codec_params p;

	assert_int_equal(codec_hint_parse(buf, hl, hl + 392, &h), 0);
	assert_int_equal(h.format, CODEC_HINT_SAFETENSORS);
	assert_int_equal(h.n, 3);
	assert_int_equal(h.r[0].off, hl);
	assert_int_equal(h.r[0].len, 256);
	assert_int_equal(h.r[0].dtype, CODEC_DTYPE_BF16);
	assert_int_equal(h.r[0].row_elems, 8);
	assert_int_equal(h.r[1].off, hl + 256);
	assert_int_equal(h.r[1].dtype, CODEC_DTYPE_FP32);
	assert_int_equal(h.r[2].dtype, CODEC_DTYPE_OTHER);
	assert_int_equal(h.r[2].row_elems, 0);
	/* keys name the tensors: distinct names, distinct keys, never 0;
	 * the same name in another header (other offsets), the same key */
	assert_true(h.r[0].key && h.r[1].key && h.r[2].key);
	assert_true(h.r[0].key != h.r[1].key && h.r[1].key != h.r[2].key && h.r[0].key != h.r[2].key);
	{
		static const char j2[] = "{\"__metadata__\":{\"step\":\"1000\"},"
		                         "\"a\":{\"dtype\":\"BF16\",\"shape\":[16,8],\"data_offsets\":[8,264]}}";
		uint8_t b2[256];
		size_t h2l = st_make(b2, j2);
		struct codec_hint h2;
		assert_int_equal(codec_hint_parse(b2, h2l, h2l + 264, &h2), 0);
		assert_int_equal(h2.n, 1);
		assert_int_equal(h2.r[0].key, h.r[0].key);
		codec_hint_release(&h2);
	}
	/* A chunk starting 1 byte into the bf16 tensor: next element at +1. */
	assert_int_equal(codec_hint_chunk(&h, hl + 1, 100, &p), 0);
	assert_int_equal(p.dtype, CODEC_DTYPE_BF16);
	assert_int_equal(p.elem_phase, 1);
	/* Mostly fp32, starting 3 bytes before it. */
	assert_int_equal(codec_hint_chunk(&h, hl + 253, 131, &p), 0);
	assert_int_equal(p.dtype, CODEC_DTYPE_FP32);
	assert_int_equal(p.elem_phase, 3);
	assert_int_equal(p.row_elems, 8);
	assert_int_equal(codec_hint_chunk(&h, 0, 8, &p), -ENOENT);
	assert_int_equal(p.dtype, CODEC_DTYPE_AUTO);
	/* Tensor boundaries to cut at: starts and ends of ranges long enough
	 * (a: 256 bytes, b: 128, c: 8). */
	assert_int_equal(codec_hint_next_cut(&h, 0, 1), hl);
	assert_int_equal(codec_hint_next_cut(&h, hl, 1), hl + 256);
	assert_int_equal(codec_hint_next_cut(&h, hl + 256, 1), hl + 384);
	assert_int_equal(codec_hint_next_cut(&h, hl + 300, 1), hl + 384);
	assert_int_equal(codec_hint_next_cut(&h, hl + 384, 1), hl + 392);
	assert_int_equal(codec_hint_next_cut(&h, hl + 392, 1), 0);
	assert_int_equal(codec_hint_next_cut(&h, hl + 10, 200), hl + 256);
	assert_int_equal(codec_hint_next_cut(&h, hl + 256, 200), 0); /* b, c too short */
	assert_int_equal(codec_hint_next_cut(&h, 0, 1000), 0);
	assert_int_equal(codec_hint_next_cut(NULL, 0, 1), 0);
	codec_hint_release(&h);

	/* Need more bytes. */
	assert_int_equal(codec_hint_parse(buf, 20, 0, &h), -EAGAIN);
	assert_int_equal(h.need, hl);
	assert_int_equal(codec_hint_parse(buf, 4, 0, &h), -EAGAIN);
	/* Offsets past the file end. */
	assert_int_equal(codec_hint_parse(buf, hl, hl + 100, &h), -EBADMSG);
	/* Hostile headers. */
	hl = st_make(buf, "{\"a\":{\"dtype\":\"BF16\",\"data_offsets\":[10,2]}}");
	assert_int_equal(codec_hint_parse(buf, hl, 0, &h), -EBADMSG);
	hl = st_make(buf, "{\"a\":{\"dtype\":\"BF16\",\"data_offsets\":[0,99999999999999999999999]}}");
	assert_int_equal(codec_hint_parse(buf, hl, 0, &h), -EBADMSG);
	hl = st_make(buf, "{\"a\":{\"dtype\":\"BF16\",\"data_offsets\":[0,");
	assert_int_equal(codec_hint_parse(buf, hl, 0, &h), -EBADMSG);
	{
		char deep[400];

		memset(deep, '[', sizeof(deep));
		memcpy(deep, "{\"__metadata__\":", 16);
		deep[sizeof(deep) - 1] = 0;
		hl = st_make(buf, deep);
		assert_int_equal(codec_hint_parse(buf, hl, 0, &h), -EBADMSG);
	}
	memset(buf, 0xff, 16);
	assert_int_equal(codec_hint_parse(buf, 16, 0, &h), -ENOENT);
	memcpy(buf, "hello world, not a tensor file", 30);
	assert_int_equal(codec_hint_parse(buf, 30, 0, &h), -ENOENT);
	hl = st_make(buf, "{}");
	assert_int_equal(codec_hint_parse(buf, hl, hl, &h), 0);
	assert_int_equal(h.n, 0);
	codec_hint_release(&h);
}

/* A zip local header + data as torch.save writes it: 64-byte aligned
 * data; method 0x100 | m marks a streamed entry (sizes in a data
 * descriptor after the data, as PyTorch's writer does). */
static size_t zip_local(uint8_t *p, const char *name, size_t dlen, size_t at, uint32_t method)
{
	size_t nl = strlen(name), x = (64 - (at + 30 + nl) % 64) % 64;
	int streamed = (method & 0x100) != 0;

	if (x && x < 4)
		x += 64; /* room for the extra field header */
	memset(p, 0, 30 + nl + x + dlen);
	p[0] = 'P';
	p[1] = 'K';
	p[2] = 3;
	p[3] = 4;
	p[8] = (uint8_t)method;
	for (int i = 0; i < 4; i++) {
		p[18 + i] = (uint8_t)(dlen >> (8 * i));
		p[22 + i] = (uint8_t)(dlen >> (8 * i));
	}
	p[26] = (uint8_t)nl;
	p[28] = (uint8_t)x;
	memcpy(p + 30, name, nl);
	if (x) { /* torch pads with an extra field "FB" */
		p[30 + nl] = 'F';
		p[31 + nl] = 'B';
		p[32 + nl] = (uint8_t)(x - 4);
	}
	for (size_t i = 0; i < dlen; i++)
		p[30 + nl + x + i] = (uint8_t)i;
	if (!streamed)
		return 30 + nl + x + dlen;
	p[6] = 8;
	p[8] = (uint8_t)(method & 0xff);
	memset(p + 18, 0, 8);
	memcpy(p + 30 + nl + x + dlen, "PK\7\b\0\0\0\0", 8);
	for (int i = 0; i < 4; i++) {
		p[30 + nl + x + dlen + 8 + i] = (uint8_t)(dlen >> (8 * i));
		p[30 + nl + x + dlen + 12 + i] = (uint8_t)(dlen >> (8 * i));
	}
	return 30 + nl + x + dlen + 16;
}

/* A GGUF file head: little-endian writers for gguf_make. */
struct gbuf {
	uint8_t b[4096];
	size_t n;
};

static void g_put(struct gbuf *g, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		g->b[g->n++] = (uint8_t)(v >> (8 * i));
}

static void g_puts(struct gbuf *g, const char *s)
{
	g_put(g, strlen(s), 8);
	memcpy(g->b + g->n, s, strlen(s));
	g->n += strlen(s);
}

/* A tensor info: name, dims (ne1 0: one dimension), ggml type, offset. */
static void g_info(struct gbuf *g, const char *name, uint64_t ne0, uint64_t ne1, uint32_t type,
                   uint64_t off)
{
	g_puts(g, name);
	g_put(g, ne1 ? 2 : 1, 4);
	g_put(g, ne0, 8);
	if (ne1)
		g_put(g, ne1, 8);
	g_put(g, type, 4);
	g_put(g, off, 8);
}

/* GGUF v3: metadata (alignment 64 unless align is 0, a string, an array of
 * strings, an array of arrays of u8), then tensors "tok" (F16 64 x 3, at
 * data offset 0), "q" (Q8_0 of 64: 2 blocks of 34 bytes, at 384), "iq"
 * (IQ3_XXS of 256: one block of 98 bytes, at 512), "mx" (MXFP4 of 64: 2
 * blocks of 17, at 640), "u" (type 31, not known here, at 704), "w" (BF16
 * 32 x 2, at 768). */
static void gguf_make(struct gbuf *g, uint32_t version, uint64_t align)
{
	g->n = 0;
	g_put(g, 0x46554747u, 4);
	g_put(g, version, 4);
	g_put(g, 6, 8);
	g_put(g, align ? 4 : 3, 8);
	g_puts(g, "general.name");
	g_put(g, 8, 4);
	g_puts(g, "tiny");
	if (align) {
		g_puts(g, "general.alignment");
		g_put(g, 4, 4);
		g_put(g, align, 4);
	}
	g_puts(g, "tokenizer.ggml.tokens");
	g_put(g, 9, 4);
	g_put(g, 8, 4);
	g_put(g, 2, 8);
	g_puts(g, "a");
	g_puts(g, "bc");
	g_puts(g, "nested");
	g_put(g, 9, 4);
	g_put(g, 9, 4); /* array of arrays */
	g_put(g, 1, 8);
	g_put(g, 0, 4); /* of u8 */
	g_put(g, 3, 8);
	g_put(g, 0x010203, 3);
	/* tensor infos: F16, Q8_0, IQ3_XXS, MXFP4, type 31, BF16 */
	g_info(g, "tok", 64, 3, 1, 0);
	g_info(g, "q", 64, 0, 8, 384);
	g_info(g, "iq", 256, 0, 18, 512);
	g_info(g, "mx", 64, 0, 39, 640);
	g_info(g, "u", 64, 0, 31, 704);
	g_info(g, "w", 32, 2, 30, 768);
}

static void test_hint_gguf(void **state)
{
	struct gbuf g;
	struct codec_hint h, h2;
	struct codec_params p;
	uint64_t data;

	(void)state;
	gguf_make(&g, 3, 64);
	data = (g.n + 63) & ~(uint64_t)63;
	assert_int_equal(codec_hint_parse(g.b, g.n, data + 896, &h), 0);
	assert_int_equal(h.format, CODEC_HINT_GGUF);
	assert_int_equal(h.n, 5); /* the tensor of type 31 has no range */
	assert_int_equal(h.r[0].off, data);
	assert_int_equal(h.r[0].len, 64 * 3 * 2);
	assert_int_equal(h.r[0].dtype, CODEC_DTYPE_FP16);
	assert_int_equal(h.r[0].row_elems, 64);
	assert_int_equal(h.r[1].off, data + 384);
	assert_int_equal(h.r[1].len, 68);
	assert_int_equal(h.r[1].dtype, CODEC_DTYPE_OTHER);
	assert_int_equal(h.r[1].row_elems, 0);
	assert_int_equal(h.r[2].off, data + 512);
	assert_int_equal(h.r[2].len, 98);
	assert_int_equal(h.r[2].dtype, CODEC_DTYPE_OTHER);
	assert_int_equal(h.r[3].off, data + 640);
	assert_int_equal(h.r[3].len, 34);
	assert_int_equal(h.r[3].dtype, CODEC_DTYPE_OTHER);
	assert_int_equal(h.r[4].off, data + 768);
	assert_int_equal(h.r[4].len, 128);
	assert_int_equal(h.r[4].dtype, CODEC_DTYPE_BF16);
	assert_int_equal(h.r[4].row_elems, 32);
	assert_true(h.r[0].key && h.r[1].key && h.r[4].key && h.r[0].key != h.r[4].key);
	assert_int_equal(codec_hint_chunk(&h, data + 768, 128, &p), 0);
	assert_int_equal(p.dtype, CODEC_DTYPE_BF16);
	/* default alignment 32; the same names, the same keys */
	gguf_make(&g, 2, 0);
	data = (g.n + 31) & ~(uint64_t)31;
	assert_int_equal(codec_hint_parse(g.b, g.n, 0, &h2), 0);
	assert_int_equal(h2.n, 5);
	assert_int_equal(h2.r[0].off, data);
	assert_int_equal(h2.r[4].key, h.r[4].key);
	codec_hint_release(&h2);
	codec_hint_release(&h);
	/* a head cut anywhere: -EAGAIN, and more than that is needed */
	gguf_make(&g, 3, 64);
	for (size_t l = 8; l < g.n; l++) {
		assert_int_equal(codec_hint_parse(g.b, l, 0, &h), -EAGAIN);
		assert_true(h.need > l);
	}
	/* tensors past the end of the file, a bad version, too many dims, a
	 * bad alignment: malformed */
	assert_int_equal(codec_hint_parse(g.b, g.n, 100, &h), -EBADMSG);
	g.b[4] = 1;
	assert_int_equal(codec_hint_parse(g.b, g.n, 0, &h), -EBADMSG);
	gguf_make(&g, 3, 48);
	assert_int_equal(codec_hint_parse(g.b, g.n, 0, &h), -EBADMSG);
}

static void test_hint_zip(void **state)
{
	static uint8_t buf[8192];
	size_t o = 0, d0, d1;
	struct codec_hint h;
	struct codec_hint_range r;
	uint64_t next;

	o += zip_local(buf + o, "archive/data.pkl", 100, o, 0);
	d0 = o;
	o += zip_local(buf + o, "archive/data/0", 1000, o, 0);
	d1 = o;
	o += zip_local(buf + o, "archive/data/1", 500, o, 0);
	o += zip_local(buf + o, "archive/data/2", 300, o, 8); /* deflated: skipped */
	o += zip_local(buf + o, "archive/version", 2, o, 0);
	memcpy(buf + o, "PK\1\2", 4); /* central directory */
	o += 46;
	assert_int_equal(codec_hint_parse(buf, o, o, &h), 0);
	assert_int_equal(h.format, CODEC_HINT_TORCH_ZIP);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.r[0].len, 1000);
	assert_int_equal(h.r[0].off % 64, 0);
	assert_true(h.r[0].off > d0 && h.r[0].off < d1);
	assert_int_equal(h.r[0].dtype, CODEC_DTYPE_AUTO);
	assert_int_equal(h.r[1].len, 500);
	assert_int_equal(h.need, 0);
	/* keys: 1 + the storage key, whatever the archive is called */
	assert_int_equal(h.r[0].key, 1);
	assert_int_equal(h.r[1].key, 2);
	codec_hint_release(&h);
	/* Only the head of a big file: the walk stops and says where. */
	assert_int_equal(codec_hint_parse(buf, d1 + 10, 1u << 30, &h), 0);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.need, d1);
	codec_hint_release(&h);
	assert_int_equal(codec_hint_zip_entry(buf + d1, o - d1, d1, &r, &next), 1);
	assert_int_equal(r.len, 500);
	assert_int_equal(codec_hint_zip_entry(buf + d1, 20, d1, &r, &next), -EAGAIN);
	assert_int_equal(codec_hint_zip_entry(buf + 1, 100, 1, &r, &next), -ENOENT);
	/* Entry claims more data than the file has. */
	assert_int_equal(codec_hint_parse(buf, 300, 300, &h), -EBADMSG);
	/* Streamed entries (torch.save): sizes after the data. */
	o = 0;
	o += zip_local(buf + o, "ckpt/data.pkl", 100, o, 0x100);
	d0 = o;
	o += zip_local(buf + o, "ckpt/data/0", 1000, o, 0x100);
	d1 = o;
	/* "PK\7\b" inside tensor data must not end the entry early */
	memcpy(buf + d1 - 16 - 500, "PK\7\b", 4);
	o += zip_local(buf + o, "ckpt/data/1", 500, o, 0x100);
	memcpy(buf + o, "PK\1\2", 4);
	o += 46;
	assert_int_equal(codec_hint_parse(buf, o, o, &h), 0);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.r[0].len, 1000);
	assert_int_equal(h.r[0].off % 64, 0);
	assert_int_equal(h.r[1].len, 500);
	codec_hint_release(&h);
	/* The head ends inside tensor 0: the walk stops at its header. */
	assert_int_equal(codec_hint_parse(buf, d0 + 200, 1u << 30, &h), 0);
	assert_int_equal(h.n, 0);
	assert_int_equal(h.need, d0);
	codec_hint_release(&h);
	assert_int_equal(codec_hint_zip_entry(buf + d0, 200, d0, &r, &next), 2);
	assert_int_equal(r.off % 64, 0);
	assert_int_equal(r.len, 0);
	assert_int_equal(codec_hint_zip_entry(buf + d0, o - d0, d0, &r, &next), 1);
	assert_int_equal(next, d1);
	/* Zip64 marker without the extra field. */
	buf[18] = buf[19] = buf[20] = buf[21] = 0xff;
	assert_int_equal(codec_hint_parse(buf, o, o, &h), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_matrix),
		cmocka_unit_test(test_never_expands),
		cmocka_unit_test(test_fast_compresses),
		cmocka_unit_test(test_fast_rows),
		cmocka_unit_test(test_mix_numbers),
		cmocka_unit_test(test_mix_cm),
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_detect_integers),
		cmocka_unit_test(test_bytes_file),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_mix_bitflips),
		cmocka_unit_test(test_encode_args),
		cmocka_unit_test(test_ref),
		cmocka_unit_test(test_ref_unused),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_hint_safetensors),
		cmocka_unit_test(test_hint_zip),
		cmocka_unit_test(test_hint_gguf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
