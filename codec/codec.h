/*
 * codec.h - mixfs chunk codecs (public interface).
 *
 * A pure library: no I/O, no FUSE, no global mutable state.  Every call that
 * needs scratch memory or model state takes a struct codec_ctx, which a
 * thread owns exclusively (the daemon keeps one per worker thread).
 *
 * A chunk is encoded into a self-describing *frame* (layout in FORMAT.md):
 * header (magic, version, level, dtype, flags, raw length, payload length,
 * XXH3-64 checksum of the raw bytes) followed by the payload.  Decoding
 * verifies the checksum; a frame that fails any check yields -EBADMSG and
 * never writes more than the caller's capacity.
 *
 * Levels:
 *   CODEC_LEVEL_RAW   payload is the raw bytes.
 *   CODEC_LEVEL_FAST  float fields split into byte streams + adaptive
 *                     entropy coder (>= 1 GB/s/core target).
 *   CODEC_LEVEL_MIX   context mixing (logistic mixer + SSE + binary
 *                     arithmetic coder), tuned for bf16/fp16/fp32 tensors.
 * The encoder never expands: if a level does not shrink the chunk, the frame
 * is written at CODEC_LEVEL_RAW (the frame records the level actually used).
 *
 * Errors are negative errno values: -EINVAL (bad arguments), -ENOSPC
 * (destination too small), -ENOMEM, -EBADMSG (corrupt or unsupported frame),
 * -ENOTSUP (frame needs a reference chunk that was not supplied, or a
 * feature this build lacks).
 */
#ifndef MIXFS_CODEC_H
#define MIXFS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

enum codec_level {
	CODEC_LEVEL_RAW = 0,
	CODEC_LEVEL_FAST = 1,
	CODEC_LEVEL_MIX = 2,
	CODEC_LEVEL_COUNT
};

enum codec_dtype {
	CODEC_DTYPE_OTHER = 0,
	CODEC_DTYPE_BF16 = 1,
	CODEC_DTYPE_FP16 = 2,
	CODEC_DTYPE_FP32 = 3,
	CODEC_DTYPE_COUNT,
	CODEC_DTYPE_AUTO = 255 /* encoder input only: detect from the bytes */
};

/* Largest raw chunk a frame may carry (the chunker's max is far below). */
#define CODEC_MAX_RAW (16u << 20)
/* Upper bound of a frame header, in bytes. */
#define CODEC_HEADER_MAX 64u

struct codec_params {
	enum codec_level level; /* requested level */
	int dtype;              /* enum codec_dtype, or CODEC_DTYPE_AUTO */
	/* Byte offset of the first whole element inside the chunk (0 .. elem
	 * size - 1): chunks cut by the content-defined chunker start anywhere,
	 * the file-format hint tells where elements really start.  Ignored
	 * when dtype is AUTO (detection finds it). */
	uint32_t elem_phase;
	/* Elements per tensor row when known from a file-format hint (for the
	 * "element one row above" context), 0 when unknown. */
	uint32_t row_elems;
	/* Optional reference chunk (series coding): the same byte range of
	 * the previous version of the file.  NULL/0 for none.  The decoder
	 * must be given exactly the same bytes. */
	const void *ref;
	size_t ref_len;
	/* Level mix: chunks that are not float tensors (text, JSON, token
	 * ids) may also be coded by the context-mixing byte model when it
	 * saves 2% or more: 10-20% smaller than the default byte model on
	 * text, but 10-20x slower to decode (FORMAT.md 4.3).  Decoding needs
	 * no flag. */
	bool bytes_cm;
};

struct codec_frame_info {
	uint8_t version;
	uint8_t level;     /* enum codec_level actually used */
	uint8_t dtype;     /* enum codec_dtype the payload was coded as */
	uint8_t flags;     /* CODEC_FLAG_* */
	uint32_t header_len;
	uint32_t raw_len;
	uint32_t payload_len;
	uint64_t checksum; /* XXH3-64 of the raw bytes */
	uint32_t elem_phase; /* geometry the payload was coded with: pass  */
	uint32_t row_elems;  /* them back to re-encode the chunk alike */
};

#define CODEC_FLAG_REF 0x01u /* payload was coded against a reference chunk */

struct codec_ctx;

/* Per-thread state.  create returns NULL on allocation failure; free(NULL)
 * does nothing. */
struct codec_ctx *codec_ctx_create(void);
void codec_ctx_free(struct codec_ctx *ctx);

/* Capacity a destination needs to encode any chunk of raw_len bytes. */
size_t codec_frame_bound(size_t raw_len);

/* Encode src[0..len) into dst[0..cap).  Returns the frame length (> 0) or a
 * negative errno.  Deterministic: the same inputs give the same frame. */
ssize_t codec_frame_encode(struct codec_ctx *ctx, const struct codec_params *p,
                           const void *src, size_t len, void *dst, size_t cap);

/* Parse and validate a frame header (not the checksum).  Returns 0 or
 * -EBADMSG.  flen may exceed the frame; info->header_len + payload_len is
 * the frame's own length. */
int codec_frame_parse(const void *frame, size_t flen, struct codec_frame_info *info);

/* Decode a whole frame into dst[0..cap) and verify its checksum.  ref/ref_len
 * must be the reference chunk if the frame has CODEC_FLAG_REF (else
 * ignored).  Returns the raw length or a negative errno (-EBADMSG on any
 * corruption, -ENOSPC if cap < raw_len, -ENOTSUP if a needed ref is
 * missing). */
ssize_t codec_frame_decode(struct codec_ctx *ctx, const void *frame, size_t flen,
                           void *dst, size_t cap, const void *ref, size_t ref_len);

/* XXH3-64 checksum as used in frames. */
uint64_t codec_checksum(const void *buf, size_t len);

/* Guess the element type of buf from its bytes.  Returns an enum
 * codec_dtype (never AUTO) and stores the element phase in *phase. */
int codec_dtype_detect(const void *buf, size_t len, uint32_t *phase);

/* Whether a file whose first bytes are buf[0..len) holds what level mix
 * codes with its text model (text, JSON, source code, logs; not float
 * tensors, not integers such as token ids, not random or already
 * compressed bytes): detected as other bytes, with no element stride and
 * of order-0 entropy below the byte models' gate.  Such bytes code
 * smaller in longer chunks (the models learn across the whole chunk;
 * FORMAT.md 4.3), so a writer may cut the file coarser.  (Token ids gain
 * 4-6% so, but training reads them at random offsets, where a coarser
 * chunk costs its whole decode per read.)  Looks at the first 64 KiB at
 * most; false for fewer than 4 KiB. */
bool codec_bytes_file(const void *buf, size_t len);

const char *codec_level_name(int level); /* "raw", "fast", "mix" or "?" */
const char *codec_dtype_name(int dtype); /* "other", "bf16", "fp16", "fp32" */
/* Parse a level name; returns the level or -EINVAL. */
int codec_level_parse(const char *name);

#ifdef __cplusplus
}
#endif
#endif
