/*
 * codec_i.h - private contracts between the frame layer (frame.c) and the
 * level implementations (fast.c, mix*.c).  Not installed.
 *
 * The frame layer resolves the dtype and element phase (detection or hint),
 * writes the header and checksum, and falls back to raw when a level returns
 * -ENOSPC (payload would not be smaller than the raw bytes).  Level coders
 * only see payload bytes.
 *
 * *_encode: code src[0..len) into dst[0..cap); return payload length or
 *           -ENOSPC when it does not fit in cap (the caller passes
 *           cap = len - 1 so that "does not shrink" is -ENOSPC), -ENOMEM.
 * *_decode: decode payload[0..plen) into exactly raw_len bytes at dst;
 *           return raw_len or -EBADMSG.  Must never read past plen nor
 *           write past raw_len, whatever the payload holds.
 * ref/ref_len: optional reference chunk (NULL/0 for none), same bytes on
 *           both sides.
 */
#ifndef MIXFS_CODEC_I_H
#define MIXFS_CODEC_I_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "codec.h"

struct fast_state;
struct mix_state;

struct codec_ctx {
	struct fast_state *fast; /* lazily created by fast.c */
	struct mix_state *mix;   /* lazily created by mix.c */
	uint8_t *scratch;        /* frame-layer scratch, grown on demand */
	size_t scratch_cap;
};

struct codec_lvl_args {
	int dtype;           /* resolved enum codec_dtype (never AUTO) */
	uint32_t elem_phase; /* first whole element offset, < element size */
	uint32_t row_elems;  /* 0 = unknown */
	const uint8_t *ref;
	size_t ref_len;
	bool bytes_cm; /* encode, mix: try the context-mixing byte model */
	/* decode only, mix float payloads of earlier builds (FORMAT.md 4.2),
	 * tried for frames without a payload check when the current reading
	 * fails: header of 28 bytes, no layout byte (coded in the frame
	 * header's dtype and phase); SPARSE values as a binary tree */
	bool layout_v1, sparse_tree;
};

/* *buf holds at least want bytes (a scratch buffer: grown by a fresh
 * allocation, its old content not kept).  0 or -ENOMEM (then *buf and
 * *cap are as before). */
static inline int codec_buf_reserve(uint8_t **buf, size_t *cap, size_t want)
{
	uint8_t *nb;

	if (*cap >= want)
		return 0;
	nb = malloc(want);
	if (!nb)
		return -ENOMEM;
	free(*buf);
	*buf = nb;
	*cap = want;
	return 0;
}

/* n-byte little-endian fields of headers and payloads (n <= 8). */
static inline void codec_le_put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t codec_le_get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

ssize_t fast_encode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                    const uint8_t *src, size_t len, uint8_t *dst, size_t cap);
ssize_t fast_decode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                    const uint8_t *payload, size_t plen, uint8_t *dst, size_t raw_len);
void fast_state_free(struct fast_state *s);

ssize_t mix_encode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                   const uint8_t *src, size_t len, uint8_t *dst, size_t cap);
ssize_t mix_decode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                   const uint8_t *payload, size_t plen, uint8_t *dst, size_t raw_len);
void mix_state_free(struct mix_state *s);
/* Whether other bytes src[0..len) are text to mix's byte models: no
 * element stride (not integers such as token ids: mix_bytes_stride) and
 * order-0 entropy below MIX_GATE_Q8 (else no byte way codes them, they
 * are stored raw). */
bool mix_bytes_text(const uint8_t *src, size_t len);
/* Whether src looks like quantized blocks (GGUF Q4_0 .. Q8_1, Q2_K .. Q6_K), which mix
 * codes as other bytes in a way of their own (the detector may take them
 * for floats). */
bool mix_bytes_blocks(const uint8_t *src, size_t len);
/* Whether a mix payload decodes with the reference (the encoder drops one
 * that does not pay, and the bytes coder never uses one). */
bool mix_payload_uses_ref(const uint8_t *payload, size_t plen);

#endif
