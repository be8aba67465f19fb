/*
 * mix_model_i.h - model state of the CODEC_LEVEL_MIX coder (private).
 *
 * struct mix_state hangs off codec_ctx->mix, is created on first use and
 * owned by one thread.  Models are reset at the start of every chunk
 * (chunks decode independently).
 */
#ifndef MIXFS_MIX_MODEL_I_H
#define MIXFS_MIX_MODEL_I_H

#include <errno.h>

#include "codec/codec_i.h"
#include "codec/mix_i.h"

/* Payload byte 0: low nibble flags, high nibble the payload version.
 * Version 0 was the binary context-mixing coder of the first builds; its
 * payloads are rejected (-EBADMSG). */
#define MIX_VERSION 1u
#define MIX_PF_REF 0x01u    /* coded against the reference chunk */
#define MIX_PF_SIGNC 0x02u  /* floats: every element has the sign SIGN1 says
                             * (optimizer second moments, counts): not coded */
#define MIX_PF_SPARSE 0x04u /* 16-bit dtypes: few distinct values, sign and
                             * mantissa coded as nibbles under the leaf */
#define MIX_PF_SIGN1 0x08u  /* with SIGNC: the sign is 1 */
#define MIX_PF_MASK (MIX_PF_REF | MIX_PF_SIGNC | MIX_PF_SPARSE | MIX_PF_SIGN1)
/* Other bytes: the only flag.  The high nibble is coded under the previous
 * byte's high nibble, the low nibble under the high nibble alone (numbers:
 * int8 and fp8 tensors, quantized blocks), not under the previous byte. */
#define MIX_PF_NUM 0x02u
/* Other bytes: the rest of the payload is a fast payload (FORMAT.md 3):
 * static order-0 tables beat the adaptive nibbles on some numbers (int8
 * weights with a scale per channel, quantized blocks). */
#define MIX_PF_FAST 0x04u
/* Other bytes: the text way over elements of 2 or 4 bytes (uint16 token
 * ids, integers): the element phase is part of the nibbles' context; byte
 * 1 is log2 of the element size. */
#define MIX_BYTES_ELEM (MIX_PF_NUM | MIX_PF_FAST)
/* Other bytes: binary context mixing (mix_cm.c); with NUM over elements,
 * byte 1 as for MIX_BYTES_ELEM. */
#define MIX_PF_CM 0x08u
/* Other bytes: quantized blocks (struct mix_blk); bytes 1-3 are the block
 * length, the head length and the phase (FORMAT.md 4.3). */
#define MIX_BYTES_BLK (MIX_PF_CM | MIX_PF_FAST)
#define MIX_SHMAX 2 /* log2 of the largest element of other bytes */
/* Other bytes whose order-0 entropy reaches this (bits * 256 a byte: 7.9;
 * random, already compressed) are not coded by any byte way: stored raw. */
#ifndef MIX_GATE_Q8
#define MIX_GATE_Q8 (256 * 79 / 10)
#endif
#ifndef MIX_CM_GAIN
#define MIX_CM_GAIN 20 /* per mille CM must save over the other ways */
#endif

/* Sparse when distinct values * ratio < elements, and at most MAX. */
#ifndef MIX_SPARSE_RATIO
#define MIX_SPARSE_RATIO 64
#endif
#ifndef MIX_SPARSE_MAX
#define MIX_SPARSE_MAX 1024
#endif

/* Byte 1 of a float payload: low zero bits, and with REF the residual kind. */
#define MIX_LZ_MASK 0x1fu
#define MIX_LZ_DELTA 0x20u /* REF: code differences of the elements' order,
                            * not XOR residuals (FORMAT.md 4.2) */

/* Float payload header: version/flags, low zero bits, two exponent windows
 * (base 2 bytes, count 1 byte each), rANS stream length (4), leaf prior
 * (32 nibbles), layout (phase | dtype << 2: the one the payload is coded
 * in, which may differ from a misdetected header's). */
#define MIX_FHDR 29
/* The same header before the layout byte (decode only: FORMAT.md 4.2). */
#define MIX_FHDR_V1 28
/* Another element phase must guess a size smaller by this many bits * 256
 * an element to be used instead of the header's. */
#define MIX_LAYOUT_MARGIN 64
/* Extended exponent X: 0 for zero, p + 1 for a subnormal whose leading
 * mantissa bit is p, e + mbits for a normal exponent e: subnormals (common
 * in fp16 weights) continue the binade ladder down instead of all landing
 * on one leaf.  At most 255 + 23 for fp32. */
#define MIX_XMAX 512u
#define MIX_XBITS 9

#define MIX_NLEAF 32
#define MIX_NQ 64 /* scale contexts: half-leaf steps of the scale estimate */
#ifndef MIX_MTB
#define MIX_MTB 2 /* mantissa top bits coded under the leaf */
#endif
#define MIX_MTN (1u << MIX_MTB)
#define MIX_COLMAX 65536u /* longest row with a column context */

/* Tuning knobs (part of the format: changing one changes the payload). */
#ifndef MIX_N0_EXP
#define MIX_N0_EXP 16 /* exponent prior strength, virtual observations */
#endif
#ifndef MIX_K_EXP
#define MIX_K_EXP 10 /* slowest exponent learning rate, 1/2^k */
#endif
#ifndef MIX_K_MAN
#define MIX_K_MAN 10
#endif
#ifndef MIX_K_BIN
#define MIX_K_BIN 8
#endif
#ifndef MIX_AVR
#define MIX_AVR 4 /* running mean leaf: rate 1/2^AVR */
#endif
#ifndef MIX_COLR
#define MIX_COLR 3 /* column mean leaf: rate 1/2^COLR */
#endif
#ifndef MIX_PRIOR_FLOOR
#define MIX_PRIOR_FLOOR 8 /* kernel floor of the exponent priors, per mille */
#endif

/* rANS segments (FORMAT.md 4.1): the coder restarts every MIX_SEG_FAST
 * elements (MIX_SEG_FULL with a reference or sparse: an element may then
 * code up to 16 symbols) or MIX_SEG_NBYTES bytes (up to 3 symbols a byte),
 * so that the encoder's interval record stays under MIX_SEG_SYMS. */
#define MIX_SEG_SYMS 65536u
#define MIX_SEG_FAST 16384u
#define MIX_SEG_FULL 4096u
#define MIX_SEG_NBYTES 16384u

/* Binary models of the float coder. */
enum {
	MIX_B_ESC = 0,   /* leaf 0: escape vs zero | running mean leaf < 1/2 */
	MIX_B_ZSIGN = 4, /* sign of a zero */
	MIX_B_EQ = 5,    /* REF: element equals the reference | last two (4) */
	MIX_B_SEQ = 9,   /* REF, XOR residual: sign differs from the reference's */
	MIX_B_COUNT = 10
};

/* Every array of model rows is followed by another field: the interval of
 * a row's last symbol reads one entry past the row (mix_row_interval). */
struct mix_fmodel {
	_Alignas(64) uint16_t exp[MIX_NQ][MIX_NLEAF];  /* leaf | scale context */
	_Alignas(64) uint16_t expr[MIX_NLEAF][MIX_NLEAF]; /* leaf | reference leaf */
	_Alignas(64) uint16_t xl[MIX_NLEAF][32];       /* residual bit length | leaf */
	_Alignas(64) uint16_t man[MIX_NLEAF][8];       /* mantissa top bits | leaf */
	_Alignas(64) uint16_t dn[MIX_NLEAF][32];       /* DELTA: bit length | ref leaf */
	uint16_t db[33][2];                             /* DELTA: next bit | length */
	uint16_t bin[MIX_B_COUNT][2];
	uint8_t x2l[MIX_XMAX];      /* extended exponent -> leaf (0: zero or escape) */
	uint16_t l2x[MIX_NLEAF];    /* leaf -> extended exponent */
	struct mix_leafd {          /* how a leaf's elements are built */
		uint32_t vbase;     /* exponent field, or a subnormal's leading one */
		uint8_t t;          /* mantissa top bits coded under the leaf */
		uint8_t np;         /* plain mantissa bits below them */
		uint8_t mtsh;       /* position of the top bits */
		uint8_t lowz;       /* low zero bits (the chunk's) */
	} ld[MIX_NLEAF];
	uint8_t plen[MIX_NLEAF];    /* leaf prior: -log2 frequency, 0 = absent */
	int16_t col[MIX_COLMAX];    /* column mean leaf, 8.8; < 0: no row yet */
	union {
		/* SPARSE: sign+mantissa (8 or 11 bits) as nibble symbols: the
		 * top 4 under the leaf, the next 4 under the leaf and the top,
		 * the last 3 (fp16) under the leaf and the top 8 */
		struct {
			_Alignas(64) uint16_t sa[MIX_NLEAF][16];
			_Alignas(64) uint16_t sb[MIX_NLEAF][16][16];
			_Alignas(64) uint16_t sc[MIX_NLEAF][256][8];
			uint16_t sc_end[8]; /* readable past the last row */
		};
		/* SPARSE before 4b5f757 (decode only, FORMAT.md 4.2): a
		 * binary tree over sign+mantissa, one binary model per leaf
		 * and node */
		uint16_t sv[MIX_NLEAF][2048][2];
	};
};

struct mix_bmodel;
struct mix_cm;

struct mix_state {
	struct mix_fmodel *fm;
	struct mix_bmodel *bm;
	struct mix_cm *cm;
	uint32_t *sym;      /* encoder: rANS intervals of one segment */
	uint8_t *seg;       /* encoder: one segment's words, written backward */
	uint8_t *plain;     /* encoder: plain-bit stream */
	size_t plain_cap;
	uint8_t *rbuf;      /* decoder: copy of the rANS stream + MIX_RPAD */
	size_t rbuf_cap;
	uint8_t *bout;      /* encoder: other bytes, the second way's payload */
	size_t bout_cap;
	int impl;           /* 1: AVX2 instances */
};

/* Readable bytes after the decoder's copy of a rANS stream: one segment's
 * worst case (two bytes a symbol, the states) and slack. */
#define MIX_RPAD (2 * MIX_SEG_SYMS + 64)

/* Decoder: copy the rANS stream stream[0..n) to s->rbuf and point d at it.
 * Returns 0 or -ENOMEM. */
int mix_rdec_open(struct mix_state *s, struct mix_rdec *d, const uint8_t *stream, size_t n);

/* Encoder scratch for one rANS segment (words written backward). */
#define MIX_SEG_BYTES (2 * MIX_SEG_SYMS + 16)

/* Byte model (mix_bytes.c). */
int mix_bytes_prepare(struct mix_state *s, unsigned sh);
/* log2 of the element size (0: bytes, 1, 2) whose phases tell the most
 * about src's bytes: what the element ways use (an encoder choice); *h0 is
 * src's order-0 entropy in bits * 256. */
unsigned mix_bytes_stride(const uint8_t *src, size_t len, uint64_t *h0);
/* The light ways' payload of src, whose stride and order-0 entropy
 * mix_bytes_stride gave (below MIX_GATE_Q8: the caller skips the rest). */
ssize_t mix_bytes_encode(struct mix_state *s, const uint8_t *src, size_t len, unsigned sh,
                         uint64_t h0, uint8_t *dst, size_t cap);
ssize_t mix_bytes_decode(struct mix_state *s, const uint8_t *payload, size_t plen, uint8_t *dst,
                         size_t raw_len);
void mix_bytes_free(struct mix_bmodel *m);

/* Quantized blocks (MIX_BYTES_BLK, mix_bytes.c): blocks of len bytes whose
 * first head bytes are scales (llama.cpp's Q4_0 .. Q8_1: an fp16 scale,
 * perhaps a second one and high bits, then the quants; the K-quants
 * Q2_K .. Q6_K turned so that their scales come first); the chunk's first
 * byte is byte phase of its block.  rows (NULL: none) maps each head
 * place to the place whose rows code it: the K-quants' sub-block scale
 * bytes of a kind share rows. */
struct mix_blk {
	unsigned len, head, phase;
	const uint8_t *rows;
};
#define MIX_BLK_HEADMAX 20u
/* order-0 entropy (bits * 256 a byte) from which blocks are looked for:
 * quantized weights are 7-7.9 bits, text and token ids less */
#define MIX_BLK_MIN_Q8 (256 * 6)
/* Whether src looks like such blocks of one of the layouts in mask (bit
 * t: the t-th known layout; MIX_BLK_ALL) (an encoder guess from the high
 * nibbles' entropy at each place in a block): 1 and *b, or 0. */
#define MIX_BLK_ALL 0xffffffffu
int mix_bytes_block(const uint8_t *src, size_t len, uint32_t mask, struct mix_blk *b);
/* A cheaper first look, for bytes near 8 bits of order-0 entropy: the
 * layouts they may be blocks of (a mask for mix_bytes_block), 0 when they
 * are surely not blocks. */
uint32_t mix_bytes_block_quick(const uint8_t *src, size_t len);
ssize_t mix_blocks_encode(struct codec_ctx *ctx, struct mix_state *s, const struct mix_blk *b,
                          const uint8_t *src, size_t len, uint8_t *dst, size_t cap);
ssize_t mix_blocks_decode(struct codec_ctx *ctx, struct mix_state *s, const uint8_t *payload,
                          size_t plen, uint8_t *dst, size_t raw_len);

/* Context-mixing byte model (mix_cm.c): the payload (flags MIX_PF_CM) of
 * src over elements of 1 << sh bytes, or -ENOSPC when it does not fit in
 * cap, or another negative errno. */
ssize_t mix_cm_encode(struct mix_state *s, const uint8_t *src, size_t len, unsigned sh,
                      uint8_t *dst, size_t cap);
ssize_t mix_cm_decode(struct mix_state *s, const uint8_t *payload, size_t plen, uint8_t *dst,
                      size_t raw_len);
void mix_cm_free(struct mix_cm *m);

/* The stride byte (byte 1) of an other-bytes payload over elements: log2
 * of the element size, 1..MIX_SHMAX, or -EBADMSG. */
static inline int mix_payload_stride(const uint8_t *payload, size_t plen)
{
	if (plen < 2 || payload[1] < 1 || payload[1] > MIX_SHMAX)
		return -EBADMSG;
	return payload[1];
}

/* Append one rANS segment (the nsym intervals in s->sym) to out[*olen..cap).
 * Returns 0 or -ENOSPC. */
int mix_seg_emit(struct mix_state *s, size_t nsym, uint8_t *out, size_t *olen, size_t cap);

/* Encoder scratch (interval record, segment words); 0 or -ENOMEM. */
int mix_enc_prepare(struct mix_state *s);

static inline void mix_seg_begin(struct mix_io *io, const int enc)
{
	if (!enc)
		mix_rdec_start(&io->d);
}

/* End of a segment: the encoder codes it into out[*olen..cap), the decoder
 * checks that both states came back to the start.  Returns 0, -ENOSPC or
 * -EBADMSG. */
static inline int mix_seg_end(struct mix_state *s, struct mix_io *io, const int enc, uint8_t *out,
                              size_t *olen, size_t cap)
{
	if (enc) {
		size_t n = io->e.n;

		io->e.n = 0;
		return mix_seg_emit(s, n, out, olen, cap);
	}
	return mix_rdec_finish(&io->d) ? 0 : -EBADMSG;
}

/* log2(x) in 16.16 fixed point, x >= 1, error < 0.005 (heuristics only). */
static inline uint32_t mix_log2_q16(uint64_t x)
{
	unsigned k = 63u - (unsigned)__builtin_clzll(x);
	uint32_t f = (uint32_t)(k >= 16 ? (x >> (k - 16)) & 0xffff : (x << (16 - k)) & 0xffff);
	uint32_t corr = (uint32_t)((((uint64_t)f * (65536 - f)) >> 16) * 22709 >> 16);

	return (k << 16) + f + corr;
}

/* Order-0 entropy of a histogram of n symbols, in bits * 256 (encoder
 * heuristics only). */
uint64_t mix_entropy_q8(const uint32_t *hist, unsigned nsym, uint64_t n);

/* Tests: force the portable (0) or the AVX2 (1) instances.  Returns 0, or
 * -ENOTSUP if this build or CPU lacks impl, -ENOMEM. */
int mix_impl_force(struct codec_ctx *ctx, int impl);

#endif
