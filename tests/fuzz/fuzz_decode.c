/*
 * fuzz_decode.c - arbitrary bytes given to the frame parser and decoder
 * must come back as a clean error or a verified decode: no crash, no read
 * past the input, no write past the capacity (ASan watches both).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_frame_info info = {0};
	struct codec_ctx *ctx = codec_ctx_create();
	uint8_t *frame = malloc(size ? size : 1), *out = NULL, *ref = NULL;
	size_t cap = 1 << 16, ref_len = 0;
	ssize_t d;
	uint32_t ph;

	if (!ctx || !frame)
		abort();
	/* An exact-size copy so ASan sees any read past the frame. */
	memcpy(frame, data, size);
	if (codec_frame_parse(frame, size, &info) == 0) {
		/* parse checks the header only: the payload may be missing. */
		if (info.header_len > size || info.raw_len > CODEC_MAX_RAW ||
		    info.payload_len > info.raw_len)
			abort();
		cap = info.raw_len;
		if (info.flags & CODEC_FLAG_REF) {
			ref_len = 1 << 12;
			ref = calloc(1, ref_len);
		}
	}
	out = malloc(cap ? cap : 1);
	if (!out)
		abort();
	d = codec_frame_decode(ctx, frame, size, out, cap, ref, ref_len);
	if (d >= 0 && (size_t)d > cap)
		abort();
	if (d >= 0 && codec_checksum(out, (size_t)d) != info.checksum)
		abort();
	if (cap)
		(void)codec_frame_decode(ctx, frame, size, out, cap - 1, ref, ref_len);
	(void)codec_dtype_detect(frame, size, &ph);
	free(ref);
	free(out);
	free(frame);
	codec_ctx_free(ctx);
	return 0;
}
