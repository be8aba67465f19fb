/*
 * mix_model_i.h - model state of the CODEC_LEVEL_MIX coder (private).
 *
 * struct mix_state hangs off codec_ctx->mix, is created on first use and
 * owned by one thread.  Model tables are reset at the start of every chunk
 * (chunks decode independently); templates hold the priors so that a reset
 * is a memcpy.
 */
#ifndef MIXFS_MIX_MODEL_I_H
#define MIXFS_MIX_MODEL_I_H

#include "codec/codec_i.h"
#include "codec/mix_i.h"

/* Payload flags byte (FORMAT.md "mix payload"). */
#define MIX_PF_REF 0x01u     /* coded against the reference chunk */
#define MIX_PF_LOWZERO 0x02u /* fp32: low 16 bits of every element are 0 */
#define MIX_PF_SPARSE 0x04u  /* 16-bit dtypes: few distinct values, sign and
                              * mantissa coded under the exponent leaf */

/* Sparse when distinct values * ratio < elements. */
#ifndef MIX_SPARSE_RATIO
#define MIX_SPARSE_RATIO 64
#endif
#define MIX_SV_SIZE (1u << 16) /* [leaf][sign+mantissa tree node] */

/* Prior strength of exponent counters, in virtual observations. */
#ifndef MIX_PRIOR_N
#define MIX_PRIOR_N 2
#endif
/* Count limits: lower adapts faster to drifting statistics. */
#ifndef MIX_LIMIT_EXP
#define MIX_LIMIT_EXP 255
#endif
#ifndef MIX_LIMIT_MANT
#define MIX_LIMIT_MANT 1023
#endif
/* Mixer learning rate for the exponent tree. */
#ifndef MIX_LR_EXP
#define MIX_LR_EXP 3
#endif

/* Float payload header: flags, window base, arithmetic stream length (4),
 * exponent leaf code lengths (32 nibbles). */
#define MIX_FHDR 22

/* Kernel floor of the exponent priors, per mille: how much a context
 * trusts the chunk's own leaf frequencies over its neighbourhood. */
#ifndef MIX_PRIOR_FLOOR
#define MIX_PRIOR_FLOOR 8
#endif

#define MIX_NLEAF 32
#define MIX_MAXLEN 12     /* longest leaf code */
#define MIX_TLEAF 0x80u   /* child entry is a leaf */

/* Exponent leaf tree of a chunk (canonical Huffman shape). */
struct mix_tree {
	uint8_t child[MIX_NLEAF][2]; /* node -> internal node or MIX_TLEAF | leaf */
	uint8_t root;                /* 0, or MIX_TLEAF | leaf if only one */
	uint8_t len[MIX_NLEAF];      /* code length, 0 = absent */
	uint16_t code[MIX_NLEAF];
};

struct mix_fmodel {
	struct mix_tree tree;
	uint32_t e1[32][32];              /* leaf | previous leaf */
	uint32_t e2[32][32];              /* leaf | leaf one row above */
	uint32_t e4[32][32];              /* leaf | local average leaf */
	uint32_t e5[32][32];              /* leaf | reference leaf */
	int32_t ew[2][32][MIX_NIN_MAX];   /* exponent mixer weights [ref][node] */
	uint32_t ez[5];                   /* zero vs escape; zero mantissa; sign */
	uint32_t mt[32][4];               /* mantissa top bits | leaf, node */
	uint32_t eq[4];                   /* element == reference | last two */
	uint32_t mx[23][2];               /* mantissa ^ reference | bit, higher all 0 */
	uint32_t bt[256];                 /* loose bytes, order 0 */
	uint32_t sv[MIX_SV_SIZE];         /* sparse: sign+mantissa | leaf, node */
};

struct mix_bmodel;

struct mix_state {
	struct mix_tabs tabs;
	struct mix_fmodel *fm;
	struct mix_bmodel *bm;
	uint8_t *plain;     /* encoder: plain-bit stream scratch */
	size_t plain_cap;
};

/* Byte model (mix_bytes.c): orders 1-4 hashed, order 0, match model. */
int mix_bytes_prepare(struct mix_state *s);
void mix_bytes_code(struct mix_bmodel *m, const struct mix_tabs *tb, struct mix_coder *c,
                    const int enc, const struct codec_lvl_args *a, uint8_t *buf, size_t len,
                    unsigned flags);
void mix_bytes_free(struct mix_bmodel *m);

#endif
