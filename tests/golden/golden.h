/*
 * golden.h - the inputs behind tests/golden: golden frames (decoded by
 * test_golden and checked against MANIFEST) and the sizes.csv inputs.
 * Shared by gen_golden.c (writes) and tests/codec/test_golden.c (checks).
 */
#ifndef MIXFS_TESTS_GOLDEN_H
#define MIXFS_TESTS_GOLDEN_H

#include "codec/codec.h"
#include "tests/codec/gen.h"

#define GOLDEN_MAX_RAW 65536u
/* Kinds beyond enum gen_kind: gen_prose text and uint16 token ids
 * (gen_tokens) coded with the context-mixing byte model
 * (codec_params.bytes_cm, -o bytes=cm), and the token ids without it. */
#define GOLDEN_PROSE GEN_KIND_COUNT
#define GOLDEN_TOKENS16 (GEN_KIND_COUNT + 1)
#define GOLDEN_TOKENS16_LIGHT (GEN_KIND_COUNT + 2)
#define GOLDEN_CM(kind) ((kind) == GOLDEN_PROSE || (kind) == GOLDEN_TOKENS16)
/* GGUF Q8_0 and Q4_1 blocks (gen_qblocks), the chunk starting phase bytes
 * into a block */
#define GOLDEN_Q8_0 (GEN_KIND_COUNT + 3)
#define GOLDEN_Q4_1 (GEN_KIND_COUNT + 4)
/* GGUF Q4_K and Q6_K super-blocks (gen_kblocks), Q5_0 blocks */
#define GOLDEN_Q4_K (GEN_KIND_COUNT + 5)
#define GOLDEN_Q6_K (GEN_KIND_COUNT + 6)
#define GOLDEN_Q5_0 (GEN_KIND_COUNT + 7)
/* MXFP4 blocks (gen_qblocks type 6): an e8m0 scale byte, 16 of e2m1 */
#define GOLDEN_MXFP4 (GEN_KIND_COUNT + 8)

static inline void golden_fill(uint8_t *src, size_t len, int kind, int gen_dt, uint32_t phase,
                               uint64_t seed)
{
	if (kind == GOLDEN_PROSE)
		gen_prose(src, len, seed);
	else if (kind == GOLDEN_TOKENS16 || kind == GOLDEN_TOKENS16_LIGHT)
		gen_tokens(src, len, 2, seed);
	else if (kind == GOLDEN_Q8_0 || kind == GOLDEN_Q4_1)
		gen_qblocks(src, len, kind == GOLDEN_Q8_0 ? 0 : 2, phase, seed);
	else if (kind == GOLDEN_Q5_0 || kind == GOLDEN_MXFP4)
		gen_qblocks(src, len, kind == GOLDEN_Q5_0 ? 4 : 6, phase, seed);
	else if (kind == GOLDEN_Q4_K || kind == GOLDEN_Q6_K)
		gen_kblocks(src, len, kind == GOLDEN_Q4_K ? 0 : 1, phase, seed);
	else
		gen_fill(src, len, kind, gen_dt, phase, seed);
}

struct golden_case {
	const char *name;
	int level, dtype;
	uint32_t phase;
	int kind, gen_dt;
	size_t len;
	uint64_t seed;
	uint32_t row; /* row_elems passed to the encoder, 0 = none */
	int refv;     /* series coding, enum golden_ref */
};

/* Series frames: coded against a reference, the generated tensor; the
 * chunk is the reference with elements moved (golden_input). */
enum golden_ref {
	GOLDEN_REF_NONE = 0,
	GOLDEN_REF_XOR,   /* every third element's low mantissa bits flipped */
	GOLDEN_REF_DELTA, /* every element a small step, with carries */
	GOLDEN_REF_SHORT, /* DELTA, the reference half as long as the chunk */
};

static const struct golden_case golden_cases[] = {
	{"empty.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_OTHER, 0, GEN_ZERO, GEN_DT_BYTES, 0, 1, 0, GOLDEN_REF_NONE},
	{"raw_text.frame", CODEC_LEVEL_RAW, CODEC_DTYPE_OTHER, 0, GEN_TEXT, GEN_DT_BYTES, 300, 2, 0, GOLDEN_REF_NONE},
	{"fast_bf16.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_BF16, 0, GEN_NORMAL, GEN_DT_BF16, 4096, 3, 0, GOLDEN_REF_NONE},
	{"fast_bf16_p1.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_BF16, 1, GEN_NORMAL, GEN_DT_BF16, 4099, 4, 0, GOLDEN_REF_NONE},
	{"fast_fp16.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_FP16, 0, GEN_NORMAL, GEN_DT_FP16, 4096, 5, 0, GOLDEN_REF_NONE},
	{"fast_fp32.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_FP32, 0, GEN_NORMAL, GEN_DT_FP32, 4096, 6, 0, GOLDEN_REF_NONE},
	{"fast_fp32_p3.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_FP32, 3, GEN_SPECIAL, GEN_DT_FP32, 4098, 7, 0, GOLDEN_REF_NONE},
	{"fast_fp32_bf16.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_FP32, 0, GEN_BF16_FP32, GEN_DT_FP32, 4096, 8, 0, GOLDEN_REF_NONE},
	{"fast_other_text.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_OTHER, 0, GEN_TEXT, GEN_DT_BYTES, 4096, 9, 0, GOLDEN_REF_NONE},
	{"fast_zero.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_BF16, 0, GEN_ZERO, GEN_DT_BF16, 4096, 10, 0, GOLDEN_REF_NONE},
	{"fast_random.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_AUTO, 0, GEN_RANDOM, GEN_DT_BYTES, 1000, 11, 0, GOLDEN_REF_NONE},
	/* stream mode 3 (sparse), both masks */
	{"fast_sparse_fp16.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_FP16, 1, GEN_PRUNED, GEN_DT_FP16, 8193, 16, 0, GOLDEN_REF_NONE},
	/* a fast frame that carries its row length (ROWS) for recompression */
	{"fast_fp32_rows.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_FP32, 0, GEN_NORMAL, GEN_DT_FP32, 4096, 17, 64, GOLDEN_REF_NONE},
	/* mix payload version 1 */
	{"mix_bf16.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_BF16, 0, GEN_NORMAL, GEN_DT_BF16, 4096, 12, 0, GOLDEN_REF_NONE},
	{"mix_fp16_p1.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_FP16, 1, GEN_SPECIAL, GEN_DT_FP16, 4099, 13, 0, GOLDEN_REF_NONE},
	{"mix_fp32_bf16.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_FP32, 0, GEN_BF16_FP32, GEN_DT_FP32, 4096, 14, 0, GOLDEN_REF_NONE},
	{"mix_other_text.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_OTHER, 0, GEN_TEXT, GEN_DT_BYTES, 4096, 15, 0, GOLDEN_REF_NONE},
	/* frames with the payload check (FORMAT.md 1, flag bit 2); the frames
	 * above were written before it and keep decoding without one */
	{"fast_bf16_psum.frame", CODEC_LEVEL_FAST, CODEC_DTYPE_BF16, 0, GEN_NORMAL, GEN_DT_BF16, 4096, 18, 0, GOLDEN_REF_NONE},
	{"mix_bf16_psum.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_BF16, 0, GEN_NORMAL, GEN_DT_BF16, 4096, 19, 0, GOLDEN_REF_NONE},
	{"mix_fp32_rows_psum.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_FP32, 0, GEN_NORMAL, GEN_DT_FP32, 4096, 20, 64, GOLDEN_REF_NONE},
	/* series frames (REF): both residual kinds, every float dtype */
	{"mix_bf16_ref_xor.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_BF16, 0, GEN_NORMAL, GEN_DT_BF16, 4096, 30, 64, GOLDEN_REF_XOR},
	{"mix_bf16_ref_delta.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_BF16, 0, GEN_NORMAL, GEN_DT_BF16, 4096, 31, 64, GOLDEN_REF_DELTA},
	{"mix_fp16_ref_delta.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_FP16, 1, GEN_NORMAL, GEN_DT_FP16, 4099, 32, 0, GOLDEN_REF_DELTA},
	{"mix_fp32_ref_delta.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_FP32, 0, GEN_NORMAL, GEN_DT_FP32, 4096, 33, 0, GOLDEN_REF_DELTA},
	{"mix_fp32_ref_xor.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_FP32, 0, GEN_NORMAL, GEN_DT_FP32, 4096, 34, 32, GOLDEN_REF_XOR},
	{"mix_bf16_ref_short.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_BF16, 0, GEN_NORMAL, GEN_DT_BF16, 4096, 35, 64, GOLDEN_REF_SHORT},
	/* other bytes coded as numbers (FORMAT.md 4.3): payload flag FAST
	 * (a fast payload inside), flag NUM (bf16 high bytes) */
	{"mix_other_int8.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_OTHER, 0, GEN_INT8, GEN_DT_BYTES, 16384, 36, 0, GOLDEN_REF_NONE},
	{"mix_other_num.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_OTHER, 0, GEN_NORMAL, GEN_DT_BYTES, 16384, 38, 0, GOLDEN_REF_NONE},
	/* other bytes, context mixing (payload flag CM): two rANS segments */
	{"mix_other_cm.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_OTHER, 0, GOLDEN_PROSE, GEN_DT_BYTES, 9000, 39, 0, GOLDEN_REF_NONE},
	/* the same over 2-byte elements (flags CM | NUM, a stride byte) */
	{"mix_other_cm_u16.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_AUTO, 0, GOLDEN_TOKENS16, GEN_DT_BYTES, 8192, 41, 0, GOLDEN_REF_NONE},
	/* the light text way over 2-byte elements (flags NUM | FAST, a stride byte) */
	{"mix_other_elem_u16.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_OTHER, 0, GOLDEN_TOKENS16_LIGHT, GEN_DT_BYTES, 8192, 43, 0, GOLDEN_REF_NONE},
	/* quantized blocks (flags CM | FAST: block length, head, phase bytes);
	 * the phase here is the blocks' (the frame's is 0) */
	{"mix_other_q8_0.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_AUTO, 7, GOLDEN_Q8_0, GEN_DT_BYTES, 40000, 44, 0, GOLDEN_REF_NONE},
	{"mix_other_q4_1.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_AUTO, 3, GOLDEN_Q4_1, GEN_DT_BYTES, 40000, 45, 0, GOLDEN_REF_NONE},
	/* K-quants, head rows of strength 31 (the quants' mode byte's high
	 * nibble 5), their sub-block scales sharing rows (bit 2); Q6_K's and
	 * Q5_0's quants as values (mode 2) */
	{"mix_other_q4_k.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_AUTO, 40, GOLDEN_Q4_K, GEN_DT_BYTES, 40000, 48, 0, GOLDEN_REF_NONE},
	{"mix_other_q6_k.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_AUTO, 5, GOLDEN_Q6_K, GEN_DT_BYTES, 40000, 49, 0, GOLDEN_REF_NONE},
	{"mix_other_q5_0.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_AUTO, 11, GOLDEN_Q5_0, GEN_DT_BYTES, 40000, 52, 0, GOLDEN_REF_NONE},
	/* MXFP4: a one-byte head (the e8m0 scale), quants as bytes */
	{"mix_other_mxfp4.frame", CODEC_LEVEL_MIX, CODEC_DTYPE_AUTO, 6, GOLDEN_MXFP4, GEN_DT_BYTES, 40000, 54, 0, GOLDEN_REF_NONE},
};
#define GOLDEN_COUNT (sizeof(golden_cases) / sizeof(golden_cases[0]))

/* The raw bytes of golden case g into src, and for a series case its
 * reference into ref (returns the reference's length, 0 for none). */
static inline size_t golden_input(const struct golden_case *g, uint8_t *src, uint8_t *ref)
{
	const size_t esz = g->dtype == CODEC_DTYPE_FP32 ? 4 : 2;
	uint64_t s = g->seed;

	golden_fill(src, g->len, g->kind, g->gen_dt, g->phase, g->seed);
	if (g->refv == GOLDEN_REF_NONE)
		return 0;
	memcpy(ref, src, g->len);
	for (size_t i = g->phase; i + esz <= g->len; i += esz) {
		uint32_t v = 0;

		memcpy(&v, src + i, esz);
		if (g->refv == GOLDEN_REF_XOR)
			v ^= (i / esz) % 3 ? 0 : 1u + (uint32_t)(gen_next(&s) & 3);
		else
			v += (uint32_t)(gen_next(&s) % 61) - 30;
		memcpy(src + i, &v, esz);
	}
	return g->refv == GOLDEN_REF_SHORT ? g->len / 2 : g->len;
}

struct sizes_case {
	const char *name;
	int kind, gen_dt;
	size_t len;
	uint64_t seed;
};

static const struct sizes_case sizes_cases[] = {
	{"bf16_normal_64k", GEN_NORMAL, GEN_DT_BF16, 65536, 21},
	{"fp16_normal_64k", GEN_NORMAL, GEN_DT_FP16, 65536, 22},
	{"fp32_normal_64k", GEN_NORMAL, GEN_DT_FP32, 65536, 23},
	{"fp32_bf16origin_64k", GEN_BF16_FP32, GEN_DT_FP32, 65536, 24},
	{"fp32_special_64k", GEN_SPECIAL, GEN_DT_FP32, 65536, 25},
	{"text_64k", GEN_TEXT, GEN_DT_BYTES, 65536, 26},
	{"random_64k", GEN_RANDOM, GEN_DT_BYTES, 65536, 27},
	{"bf16_normal_4k", GEN_NORMAL, GEN_DT_BF16, 4096, 28},
	{"zero_64k", GEN_ZERO, GEN_DT_BYTES, 65536, 29},
	{"int8_64k", GEN_INT8, GEN_DT_BYTES, 65536, 37},
	{"prose_64k", GOLDEN_PROSE, GEN_DT_BYTES, 65536, 40},
	{"tokens16_64k", GOLDEN_TOKENS16, GEN_DT_BYTES, 65536, 42},
	{"q8_0_64k", GOLDEN_Q8_0, GEN_DT_BYTES, 65536, 46},
	{"q4_1_64k", GOLDEN_Q4_1, GEN_DT_BYTES, 65536, 47},
	{"q4_k_64k", GOLDEN_Q4_K, GEN_DT_BYTES, 65536, 50},
	{"q6_k_64k", GOLDEN_Q6_K, GEN_DT_BYTES, 65536, 51},
	{"q5_0_64k", GOLDEN_Q5_0, GEN_DT_BYTES, 65536, 53},
	{"mxfp4_64k", GOLDEN_MXFP4, GEN_DT_BYTES, 65536, 55},
};
#define SIZES_COUNT (sizeof(sizes_cases) / sizeof(sizes_cases[0]))
/* sizes.csv rows per input: every level, and mix with -o bytes=cm */
#define SIZES_LEVELS (CODEC_LEVEL_COUNT + 1)

static inline void sizes_input(const struct sizes_case *s, uint8_t *src)
{
	golden_fill(src, s->len, s->kind, s->gen_dt, 0, s->seed);
}

/* The encoder parameters of sizes.csv's level column: a level's name, or
 * "mix_cm" (l == CODEC_LEVEL_COUNT); 0 or -EINVAL. */
static inline const char *sizes_level_name(int l)
{
	return l == CODEC_LEVEL_COUNT ? "mix_cm" : codec_level_name(l);
}

static inline int sizes_params(const char *name, struct codec_params *p)
{
	int l = strcmp(name, "mix_cm") ? codec_level_parse(name) : CODEC_LEVEL_MIX;

	if (l < 0)
		return l;
	p->level = (enum codec_level)l;
	p->dtype = CODEC_DTYPE_AUTO;
	p->bytes_cm = !strcmp(name, "mix_cm");
	return 0;
}

#endif
