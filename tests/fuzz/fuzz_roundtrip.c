/*
 * fuzz_roundtrip.c - any input must survive encode -> decode unchanged at
 * every level, dtype and phase, and encoding must be deterministic (same
 * bytes twice, and from a context with another history).  The first two
 * bytes choose the parameters, the rest is the chunk.  With bit 0 of
 * data[0] / 15 set, the chunk is coded against a reference: the chunk with
 * every 7th byte changed (a previous version); a frame that does not use
 * it (no REF flag) must decode without it.  Bit 0 of data[0] / 30 asks
 * level mix for the context-mixing byte model (-o bytes=cm).  Bit 0 of
 * data[0] / 60 shapes a chunk of 2 KiB or more as quantized blocks: every
 * 34th byte (from data[1] % 34 on) gets a high nibble of 1, as the
 * exponent byte of a Q8_0 block's fp16 scale (the blocks way of mix);
 * every 210th (from data[1] % 210), Q6_K's, with bit 0 of data[0] / 120.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct codec_ctx *ctx_a, *ctx_b;

static void check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int dtypes[] = {CODEC_DTYPE_OTHER, CODEC_DTYPE_BF16, CODEC_DTYPE_FP16,
	                             CODEC_DTYPE_FP32, CODEC_DTYPE_AUTO};
	struct codec_params p = {0};
	struct codec_ctx *ctx, *ctx2;
	uint8_t *f1, *f2, *out, *ref = NULL, *blk = NULL;
	struct codec_frame_info fi;
	bool with_ref;
	size_t len, cap;
	ssize_t n1, n2, d;
	uint32_t esz;

	if (size < 2 || size - 2 > CODEC_MAX_RAW)
		return 0;
	with_ref = (data[0] / 15) & 1;
	p.level = (enum codec_level)(data[0] % CODEC_LEVEL_COUNT);
	/* MIXFS_FUZZ_LEVEL=n pins the level: the mix coder is much slower
	 * and would otherwise take most of a run. */
	if (getenv("MIXFS_FUZZ_LEVEL"))
		p.level = (enum codec_level)(atoi(getenv("MIXFS_FUZZ_LEVEL")) % CODEC_LEVEL_COUNT);
	p.dtype = dtypes[(data[0] / CODEC_LEVEL_COUNT) % 5];
	p.bytes_cm = (data[0] / 30) & 1; /* -o bytes=cm */
	esz = p.dtype == CODEC_DTYPE_FP32 ? 4 : (p.dtype == CODEC_DTYPE_BF16 || p.dtype == CODEC_DTYPE_FP16) ? 2 : 1;
	p.elem_phase = (data[1] & 3) % esz;
	p.row_elems = data[1] >> 2;
	if ((data[0] / 60) & 1 && size - 2 >= 2048) {
		/* Q8_0's period, or Q6_K's (the K-quants' layouts) */
		unsigned per = (data[0] / 120) & 1 ? 210 : 34, at = data[1] % per;

		blk = malloc(size - 2);
		check(blk != NULL);
		memcpy(blk, data + 2, size - 2);
		for (size_t i = at; i < size - 2; i += per)
			blk[i] = (uint8_t)(0x10 | (blk[i] & 0x0f));
		data = blk - 2;
	}
	data += 2;
	len = size - 2;
	cap = codec_frame_bound(len);
	/* Two long-lived contexts with different histories (ctx2 only
	 * encodes): the frame must not depend on what a context did before.
	 * Creating them per input would make the mix coder's table setup
	 * dominate the run. */
	if (!ctx_a)
		ctx_a = codec_ctx_create();
	if (!ctx_b)
		ctx_b = codec_ctx_create();
	ctx = ctx_a;
	ctx2 = ctx_b;
	f1 = malloc(cap);
	f2 = malloc(cap);
	out = malloc(len + 1);
	check(ctx && ctx2 && f1 && f2 && out);
	if (with_ref && len) {
		ref = malloc(len);
		check(ref != NULL);
		memcpy(ref, data, len);
		for (size_t i = 0; i < len; i += 7)
			ref[i] ^= (uint8_t)(1 + (i & 3));
		p.ref = ref;
		p.ref_len = len;
	}

	n1 = codec_frame_encode(ctx, &p, data, len, f1, cap);
	check(n1 > 0 && (size_t)n1 <= cap);
	n2 = codec_frame_encode(ctx, &p, data, len, f2, cap);
	check(n2 == n1 && !memcmp(f1, f2, (size_t)n1));
	n2 = codec_frame_encode(ctx2, &p, data, len, f2, cap);
	check(n2 == n1 && !memcmp(f1, f2, (size_t)n1));
	check(codec_frame_parse(f1, (size_t)n1, &fi) == 0);
	check(!(fi.flags & CODEC_FLAG_REF) || ref); /* REF only when given one */
	if (fi.flags & CODEC_FLAG_REF)
		d = codec_frame_decode(ctx, f1, (size_t)n1, out, len, ref, len);
	else
		d = codec_frame_decode(ctx, f1, (size_t)n1, out, len, NULL, 0);
	check(d == (ssize_t)len && (len == 0 || !memcmp(out, data, len)));
	/* A context that decoded must still encode identically. */
	n2 = codec_frame_encode(ctx, &p, data, len, f2, cap);
	check(n2 == n1 && !memcmp(f1, f2, (size_t)n1));

	free(f1);
	free(f2);
	free(out);
	free(ref);
	free(blk);
	return 0;
}
