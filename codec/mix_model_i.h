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

/* Prior strength of exponent counters, in virtual observations. */
#define MIX_PRIOR_N 2
/* Count limits: lower adapts faster to drifting statistics. */
#define MIX_LIMIT_EXP 255
#define MIX_LIMIT_SIGN 1023
#define MIX_LIMIT_MANT 1023

#define MIX_E3_SIZE (1u << 16)

struct mix_tmpl {
	int ebits;
	uint32_t exp[64][256]; /* exponent tree counters per context bucket */
};

struct mix_fmodel {
	uint32_t e1[64][256];             /* exponent | previous exponent */
	uint32_t e2[64][256];             /* exponent | exponent one row above */
	uint32_t e4[64][256];             /* exponent | reference exponent */
	uint32_t e3[MIX_E3_SIZE];         /* exponent | hash(previous, above) */
	int32_t ew[2][256][MIX_NIN_MAX];  /* exponent mixer weights [ref][node] */
	uint16_t eapm[256 * 33];          /* exponent SSE by node */
	uint32_t sg[64 * 2 * 3];          /* sign | exponent, prev sign, above sign */
	uint32_t m1[64 * 2 * 128];        /* mantissa top | exponent, sign, node */
	uint32_t mr[8 * 2 * 2];           /* mantissa top | ref bit, prefix == ref */
	int32_t mw[32][MIX_NIN_MAX];      /* mantissa mixer (ref only) by depth */
	uint32_t ml[24 * 2 * 2 * 2];      /* low mantissa bit | position, ref */
	uint32_t bt[256];                 /* loose bytes, order 0 */
};

struct mix_bmodel;

struct mix_state {
	struct mix_tabs tabs;
	struct mix_fmodel *fm;
	struct mix_tmpl *tmpl5, *tmpl8; /* fp16 / 8-bit exponent priors */
	struct mix_bmodel *bm;
};

/* Byte model (mix_bytes.c): orders 1-4 hashed, order 0, match model. */
int mix_bytes_prepare(struct mix_state *s);
void mix_bytes_code(struct mix_bmodel *m, const struct mix_tabs *tb, struct mix_coder *c,
                    const int enc, const struct codec_lvl_args *a, uint8_t *buf, size_t len,
                    unsigned flags);
void mix_bytes_free(struct mix_bmodel *m);

#endif
