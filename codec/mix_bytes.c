/*
 * mix_bytes.c - CODEC_LEVEL_MIX byte model for chunks that are not float
 * tensors (headers, int tensors, optimizer bookkeeping, text).
 *
 * Light on purpose: the filesystem writes such chunks at level mix too, and
 * they must not cost more than a few ns a byte.  Per byte:
 *   match   when the last 4 bytes occurred before in the chunk, one binary
 *           decision "the byte is the one that followed them" (context: the
 *           match length), and nothing else if so;
 *   nibbles otherwise the high nibble under the previous byte and the low
 *           nibble under the previous byte and the high nibble, each one
 *           symbol of an adaptive 16-symbol distribution.
 * Chunks whose order-0 entropy is near 8 bits (random, already compressed)
 * are not coded at all: -ENOSPC in a few microseconds, the frame layer
 * stores them raw.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mix_model_i.h"

#define MIX_MM_BITS 14 /* match index entries */
#define MIX_MM_MIN 4   /* bytes that must repeat to start a match */
#ifndef MIX_K_NIB
#define MIX_K_NIB 7
#endif
#ifndef MIX_GATE_Q8
#define MIX_GATE_Q8 (256 * 79 / 10) /* bits * 256 per byte: 7.9 */
#endif

/* Row arrays are followed by other fields (see mix_row_interval). */
struct mix_bmodel {
	_Alignas(64) uint16_t hi[256][16];     /* high nibble | previous byte */
	_Alignas(64) uint16_t lo[256][16][16]; /* low nibble | previous byte, high nibble */
	uint16_t mf[16][2];                    /* match hit | match length */
	uint32_t midx[1u << MIX_MM_BITS];      /* hash of last 4 bytes -> position */
};

int mix_bytes_prepare(struct mix_state *s)
{
	struct mix_bmodel *m = s->bm;

	if (!m) {
		m = aligned_alloc(64, sizeof(*m));
		if (!m)
			return -ENOMEM;
		s->bm = m;
	}
	for (unsigned i = 0; i < 256; i++) {
		mix_row_uniform(m->hi[i], 16, 2);
		for (unsigned j = 0; j < 16; j++)
			mix_row_uniform(m->lo[i][j], 16, 2);
	}
	for (unsigned i = 0; i < 16; i++)
		mix_bin_init(m->mf[i], MIX_PTOT / 4, 2);
	memset(m->midx, 0, sizeof(m->midx));
	return 0;
}

void mix_bytes_free(struct mix_bmodel *m)
{
	free(m);
}

static inline uint32_t mix_hash4(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return (v * 0x9E3779B1u) >> (32 - MIX_MM_BITS);
}

/* Both directions; buf is the source (enc) or the destination. */
static inline __attribute__((always_inline)) int
mix_bytes_body(struct mix_state *s, struct mix_io *iop, const int enc, const int impl,
               uint8_t *buf, size_t len, uint8_t *out, size_t *olen, size_t cap)
{
	struct mix_io lio = *iop, *io = &lio; /* in registers: see mix_float_body */
	struct mix_bmodel *m = s->bm;
	size_t mptr = 0, mlen = 0;
	unsigned c1 = 0;
	int rc = 0;

	for (size_t i0 = 0; i0 < len && !rc; i0 += MIX_SEG_NBYTES) {
		const size_t i1 = len - i0 > MIX_SEG_NBYTES ? i0 + MIX_SEG_NBYTES : len;

		mix_seg_begin(io, enc);
		for (size_t i = i0; i < i1; i++) {
			unsigned byte = enc ? buf[i] : 0, hit = 0;

			if (mlen) {
				unsigned expect = buf[mptr];

				hit = mix_code_bin(io, enc, m->mf[mlen < 19 ? mlen - 4 : 15],
				                   byte == expect, MIX_K_BIN);
				if (hit)
					byte = expect;
			}
			if (!hit) {
				unsigned h = mix_code(io, enc, impl, m->hi[c1], 16, byte >> 4, MIX_K_NIB);
				unsigned l = mix_code(io, enc, impl, m->lo[c1][h], 16, byte & 15,
				                      MIX_K_NIB);

				byte = h << 4 | l;
			}
			if (!enc)
				buf[i] = (uint8_t)byte;
			c1 = byte;

			/* match model: extend, or look the last 4 bytes up */
			if (mlen && hit) {
				mlen++;
				mptr++;
			} else {
				mlen = 0;
			}
			if (i + 1 >= MIX_MM_MIN) {
				uint32_t hm = mix_hash4(buf + i + 1 - MIX_MM_MIN);

				if (!mlen) {
					size_t cand = m->midx[hm];

					if (cand && !memcmp(buf + cand - MIX_MM_MIN,
					                    buf + i + 1 - MIX_MM_MIN, MIX_MM_MIN)) {
						mptr = cand;
						mlen = MIX_MM_MIN;
					}
				}
				m->midx[hm] = (uint32_t)(i + 1);
			}
		}
		rc = mix_seg_end(s, io, enc, out, olen, cap);
	}
	*iop = lio;
	return rc;
}

#define MIX_BYTES_IMPL(sfx, attr, impl)                                                          \
	attr static int mix_bytes_enc_##sfx(struct mix_state *s, struct mix_io *io,             \
	                                    const uint8_t *src, size_t len, uint8_t *out,        \
	                                    size_t *olen, size_t cap)                            \
	{                                                                                         \
		return mix_bytes_body(s, io, 1, impl, (uint8_t *)(uintptr_t)src, len, out, olen,  \
		                      cap);                                                       \
	}                                                                                         \
	attr static int mix_bytes_dec_##sfx(struct mix_state *s, struct mix_io *io, uint8_t *dst, \
	                                    size_t len)                                          \
	{                                                                                         \
		return mix_bytes_body(s, io, 0, impl, dst, len, NULL, NULL, 0);                   \
	}

MIX_BYTES_IMPL(portable, , 0)
#if MIX_HAVE_AVX2
MIX_BYTES_IMPL(avx2, MIX_AVX2_ATTR, 1)
#endif

ssize_t mix_bytes_encode(struct mix_state *s, const uint8_t *src, size_t len, uint8_t *dst,
                         size_t cap)
{
	uint32_t hist[4][256] = {{0}};
	struct mix_io io = {0};
	size_t olen = 1, i = 0;
	int rc;

	/* incompressible at order 0 (random, compressed): not worth a pass */
	for (; i + 4 <= len; i += 4) {
		hist[0][src[i]]++;
		hist[1][src[i + 1]]++;
		hist[2][src[i + 2]]++;
		hist[3][src[i + 3]]++;
	}
	for (; i < len; i++)
		hist[0][src[i]]++;
	for (unsigned b = 0; b < 256; b++)
		hist[0][b] += hist[1][b] + hist[2][b] + hist[3][b];
	if (mix_entropy_q8(hist[0], 256, len) >= (uint64_t)len * MIX_GATE_Q8 || cap < 9)
		return -ENOSPC;

	rc = mix_enc_prepare(s);
	if (rc)
		return rc;
	rc = mix_bytes_prepare(s);
	if (rc)
		return rc;
	io.e.sym = s->sym;
	io.e.cap = MIX_SEG_SYMS;
#if MIX_HAVE_AVX2
	if (s->impl)
		rc = mix_bytes_enc_avx2(s, &io, src, len, dst, &olen, cap);
	else
#endif
		rc = mix_bytes_enc_portable(s, &io, src, len, dst, &olen, cap);
	if (rc)
		return -ENOSPC;
	dst[0] = (uint8_t)(MIX_VERSION << 4);
	return (ssize_t)olen;
}

ssize_t mix_bytes_decode(struct mix_state *s, const uint8_t *payload, size_t plen, uint8_t *dst,
                         size_t raw_len)
{
	struct mix_io io = {0};
	int rc = mix_bytes_prepare(s);

	if (rc)
		return rc;
	rc = mix_rdec_open(s, &io.d, payload + 1, plen - 1);
	if (rc)
		return rc;
#if MIX_HAVE_AVX2
	if (s->impl)
		rc = mix_bytes_dec_avx2(s, &io, dst, raw_len);
	else
#endif
		rc = mix_bytes_dec_portable(s, &io, dst, raw_len);
	if (rc)
		return rc;
	if (io.d.p != io.d.end)
		return -EBADMSG;
	return (ssize_t)raw_len;
}
