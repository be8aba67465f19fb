/*
 * frame.c - frame header, checksum, level dispatch, dtype detection.
 *
 * The header layout is specified byte by byte in codec/FORMAT.md; keep the
 * two in step.  Level coders only see payload bytes (codec_i.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "codec/codec_i.h"

#define FRAME_MAGIC0 0xB5u
#define FRAME_MAGIC1 0x4Du /* 'M' */
#define FRAME_VERSION 1u
#define FRAME_FIXED 7u     /* magic, version, level, dtype, flags, phase|width */

#define FRAME_F_ROWS 0x02u /* row_elems field present */
#define FRAME_F_PSUM 0x04u /* payload check present (levels fast, mix) */
#define FRAME_F_KNOWN (CODEC_FLAG_REF | FRAME_F_ROWS | FRAME_F_PSUM)

static uint32_t dtype_size(int dtype)
{
	static const uint8_t sz[CODEC_DTYPE_COUNT] = {1, 2, 2, 4};

	return (dtype >= 0 && dtype < CODEC_DTYPE_COUNT) ? sz[dtype] : 0;
}

static uint32_t width_of(uint32_t v)
{
	uint32_t w = 0;

	while (v) {
		w++;
		v >>= 8;
	}
	return w;
}

/* Everything the header carries besides magic/version. */
struct frame_hdr {
	uint32_t level, dtype, phase, flags, row_elems;
	uint32_t raw_len, payload_len, ref_len;
	uint32_t psum; /* with FRAME_F_PSUM: low 32 bits of XXH3-64 of the payload */
	uint64_t checksum;
};

static uint32_t frame_hdr_len(const struct frame_hdr *h)
{
	uint32_t w = width_of(h->raw_len);

	return FRAME_FIXED + 2 * w + ((h->flags & FRAME_F_ROWS) ? 4 : 0) +
	       ((h->flags & CODEC_FLAG_REF) ? 4 : 0) + ((h->flags & FRAME_F_PSUM) ? 4 : 0) + 8 + 2;
}

/* Returns the header length written at out (>= frame_hdr_len(h) bytes). */
static uint32_t frame_hdr_write(const struct frame_hdr *h, uint8_t *out)
{
	uint32_t w = width_of(h->raw_len), n = FRAME_FIXED;

	out[0] = FRAME_MAGIC0;
	out[1] = FRAME_MAGIC1;
	out[2] = FRAME_VERSION;
	out[3] = (uint8_t)h->level;
	out[4] = (uint8_t)h->dtype;
	out[5] = (uint8_t)h->flags;
	out[6] = (uint8_t)(h->phase | (w << 2));
	codec_le_put(out + n, h->raw_len, w);
	n += w;
	codec_le_put(out + n, h->payload_len, w);
	n += w;
	/* the optional fields, in flag order */
	const uint32_t opt[3] = { h->row_elems, h->ref_len, h->psum };
	const uint32_t optf[3] = { FRAME_F_ROWS, CODEC_FLAG_REF, FRAME_F_PSUM };
	for (unsigned i = 0; i < 3; i++) {
		if (h->flags & optf[i]) {
			codec_le_put(out + n, opt[i], 4);
			n += 4;
		}
	}
	codec_le_put(out + n, h->checksum, 8);
	n += 8;
	/* A header check stops a flipped length from steering the decoder
	 * before the content checksum can speak. */
	codec_le_put(out + n, XXH3_64bits(out, n) & 0xffffu, 2);
	return n + 2;
}

/* An optional 4-byte header field at *n, present when flagged (else 0). */
static int hdr_opt32(const uint8_t *in, size_t flen, uint32_t *n, uint32_t flagged, uint32_t *v)
{
	*v = 0;
	if (!flagged)
		return 0;
	if (flen < (size_t)*n + 4)
		return -EBADMSG;
	*v = (uint32_t)codec_le_get(in + *n, 4);
	*n += 4;
	return 0;
}

static int frame_hdr_read(const uint8_t *in, size_t flen, struct frame_hdr *h,
                          uint32_t *hlen)
{
	uint32_t w, n = FRAME_FIXED, esz;

	if (flen < FRAME_FIXED || in[0] != FRAME_MAGIC0 || in[1] != FRAME_MAGIC1 ||
	    in[2] != FRAME_VERSION)
		return -EBADMSG;
	h->level = in[3];
	h->dtype = in[4];
	h->flags = in[5];
	h->phase = in[6] & 3u;
	w = (in[6] >> 2) & 7u;
	esz = dtype_size((int)h->dtype);
	if (h->level >= CODEC_LEVEL_COUNT || esz == 0 || (h->flags & ~FRAME_F_KNOWN) ||
	    (in[6] >> 5) != 0 || w > 4 || h->phase >= esz)
		return -EBADMSG;
	if (flen < (size_t)n + 2 * w)
		return -EBADMSG;
	h->raw_len = (uint32_t)codec_le_get(in + n, w);
	n += w;
	h->payload_len = (uint32_t)codec_le_get(in + n, w);
	n += w;
	/* Canonical width, raw bound, and "never expand" all hold for any
	 * frame this encoder writes; anything else is corruption. */
	if (width_of(h->raw_len) != w || h->raw_len > CODEC_MAX_RAW ||
	    h->payload_len > h->raw_len ||
	    (h->level == CODEC_LEVEL_RAW && h->payload_len != h->raw_len) ||
	    (h->level != CODEC_LEVEL_RAW && h->payload_len == h->raw_len))
		return -EBADMSG;
	if (hdr_opt32(in, flen, &n, h->flags & FRAME_F_ROWS, &h->row_elems) ||
	    hdr_opt32(in, flen, &n, h->flags & CODEC_FLAG_REF, &h->ref_len) ||
	    hdr_opt32(in, flen, &n, h->flags & FRAME_F_PSUM, &h->psum) ||
	    ((h->flags & FRAME_F_ROWS) && h->row_elems == 0))
		return -EBADMSG;
	/* Only the mix coder uses references and rows; a fast frame may
	 * carry the rows for a later recompression to mix; a raw frame's
	 * payload is its raw bytes (the checksum covers them). */
	if ((h->level != CODEC_LEVEL_MIX && (h->flags & CODEC_FLAG_REF)) ||
	    (h->level == CODEC_LEVEL_RAW && (h->flags & (FRAME_F_ROWS | FRAME_F_PSUM))))
		return -EBADMSG;
	if (flen < (size_t)n + 10)
		return -EBADMSG;
	h->checksum = codec_le_get(in + n, 8);
	n += 8;
	if (codec_le_get(in + n, 2) != (XXH3_64bits(in, n) & 0xffffu))
		return -EBADMSG;
	*hlen = n + 2;
	return 0;
}

struct codec_ctx *codec_ctx_create(void)
{
	return calloc(1, sizeof(struct codec_ctx));
}

void codec_ctx_free(struct codec_ctx *ctx)
{
	if (!ctx)
		return;
	fast_state_free(ctx->fast);
	mix_state_free(ctx->mix);
	free(ctx->scratch);
	free(ctx);
}

size_t codec_frame_bound(size_t raw_len)
{
	/* Never expand: the worst case is a raw frame. */
	return CODEC_HEADER_MAX + raw_len;
}

uint64_t codec_checksum(const void *buf, size_t len)
{
	return XXH3_64bits(buf, len);
}

/* Integers the detector takes for floats (uint16 token ids look like
 * fp16) code far smaller as other bytes, whose model sees repeated strings
 * (word tokens: 0.31 of raw against 0.54 as fp16).  Float weights repeat
 * almost no 4-byte string that is not a run of one byte value; token
 * streams repeat a quarter or more.  True when more than 1/16 of the first
 * 4 KiB's positions start a 4-byte string (not a run) seen before in them. */
#define REPEAT_WIN 4096u
static bool repeats_strings(const uint8_t *b, size_t len)
{
	uint16_t last[1024] = {0}; /* hash of 4 bytes -> position + 1 */
	size_t n = len < REPEAT_WIN ? len : REPEAT_WIN, hits = 0;

	for (size_t i = 0; i + 4 <= n; i++) {
		uint32_t v, h;

		memcpy(&v, b + i, 4);
		if (v == (v & 0xff) * 0x01010101u)
			continue;
		h = (v * 0x9E3779B1u) >> 22;
		if (last[h] && !memcmp(b + last[h] - 1, b + i, 4))
			hits++;
		last[h] = (uint16_t)(i + 1);
	}
	return hits * 16 > n;
}

#define BYTES_FILE_MIN 4096u
#define BYTES_FILE_LOOK 65536u
bool codec_bytes_file(const void *buf, size_t len)
{
	uint32_t phase;

	if (!buf || len < BYTES_FILE_MIN)
		return false;
	if (len > BYTES_FILE_LOOK)
		len = BYTES_FILE_LOOK;
	return codec_dtype_detect(buf, len, &phase) == CODEC_DTYPE_OTHER && mix_bytes_text(buf, len);
}

/* The level's payload of src as other bytes into ctx->scratch: its length,
 * -ENOSPC (not below cap) or another negative errno. */
static ssize_t encode_as_bytes(struct codec_ctx *ctx, const struct codec_params *p,
                               const uint8_t *src, size_t len, size_t cap)
{
	struct codec_lvl_args b = {.dtype = CODEC_DTYPE_OTHER, .bytes_cm = p->bytes_cm};
	int rc = codec_buf_reserve(&ctx->scratch, &ctx->scratch_cap, cap);

	if (rc < 0)
		return rc;
	return p->level == CODEC_LEVEL_FAST ? fast_encode(ctx, &b, src, len, ctx->scratch, cap)
	                                    : mix_encode(ctx, &b, src, len, ctx->scratch, cap);
}

ssize_t codec_frame_encode(struct codec_ctx *ctx, const struct codec_params *p,
                           const void *src, size_t len, void *dst, size_t cap)
{
	struct frame_hdr h = {0};
	struct codec_lvl_args a = {0};
	uint8_t *out = dst;
	ssize_t rc = -EINVAL, plen = -ENOSPC;
	uint32_t hlen;

	if (!ctx || !p || (!src && len) || !dst || len > CODEC_MAX_RAW ||
	    p->level < 0 || p->level >= CODEC_LEVEL_COUNT)
		goto out;
	if (p->dtype == CODEC_DTYPE_AUTO) {
		a.dtype = codec_dtype_detect(src, len, &a.elem_phase);
	} else {
		if (!dtype_size(p->dtype) || p->elem_phase >= dtype_size(p->dtype))
			goto out;
		a.dtype = p->dtype;
		a.elem_phase = p->elem_phase;
	}
	if (p->level != CODEC_LEVEL_RAW) /* fast keeps it for recompression */
		a.row_elems = p->row_elems;
	a.bytes_cm = p->bytes_cm;
	if (p->level == CODEC_LEVEL_MIX && p->ref && p->ref_len && p->ref_len <= UINT32_MAX) {
		a.ref = p->ref;
		a.ref_len = p->ref_len;
		h.ref_len = (uint32_t)p->ref_len;
	}

	h.raw_len = (uint32_t)len;
	h.row_elems = a.row_elems;
	h.dtype = (uint32_t)a.dtype;
	h.phase = a.elem_phase;
	h.checksum = XXH3_64bits(src, len);
	/* Header size with the largest flags this level may set, so the
	 * payload can be written in place. */
	h.level = (uint32_t)p->level;
	h.flags = (a.row_elems ? FRAME_F_ROWS : 0) | (a.ref ? CODEC_FLAG_REF : 0) | FRAME_F_PSUM;
	hlen = frame_hdr_len(&h);
	if (p->level != CODEC_LEVEL_RAW && len > 1 && cap > hlen) {
		size_t lcap = cap - hlen < len - 1 ? cap - hlen : len - 1;

		if (p->level == CODEC_LEVEL_FAST)
			plen = fast_encode(ctx, &a, src, len, out + hlen, lcap);
		else
			plen = mix_encode(ctx, &a, src, len, out + hlen, lcap);
		if (plen < 0 && plen != -ENOSPC) {
			rc = plen;
			goto out;
		}
		if (plen >= (ssize_t)len)
			plen = -ENOSPC; /* a coder that ignores cap must not expand */
		/* perhaps integers (or quantized blocks) taken for floats:
		 * other bytes too, the smaller kept (no rows, no reference).  At mix also with a
		 * dtype given: a recompression passes the dtype its fast frame
		 * was detected as (the test costs ~0.4% of a mix encode, ~20%
		 * of a fast one) */
		if (a.dtype != CODEC_DTYPE_OTHER &&
		    (p->dtype == CODEC_DTYPE_AUTO || p->level == CODEC_LEVEL_MIX) &&
		    (repeats_strings(src, len) ||
		     (p->level == CODEC_LEVEL_MIX && (plen < 0 || (size_t)plen * 8 > len * 7) &&
		      mix_bytes_blocks(src, len)))) {
			ssize_t blen = encode_as_bytes(ctx, p, src, len,
			                               plen > 0 ? (size_t)plen - 1 : lcap);

			if (blen < 0 && blen != -ENOSPC) {
				rc = blen;
				goto out;
			}
			if (blen > 0) {
				a.ref = NULL; /* (the other fields are not read again) */
				h.dtype = CODEC_DTYPE_OTHER;
				h.phase = h.row_elems = h.ref_len = 0;
				h.flags &= ~(FRAME_F_ROWS | CODEC_FLAG_REF);
				hlen = frame_hdr_len(&h);
				memcpy(out + hlen, ctx->scratch, (size_t)blen);
				plen = blen;
			}
		}
	}
	if (plen >= 0 && a.ref && !mix_payload_uses_ref(out + hlen, (size_t)plen)) {
		/* the coder did not use the reference (it did not pay): the
		 * frame does not depend on it (no REF flag, no reference
		 * length), so the store keeps no reference for it either */
		uint32_t full;
		h.flags &= ~CODEC_FLAG_REF;
		h.ref_len = 0;
		full = frame_hdr_len(&h);
		memmove(out + full, out + hlen, (size_t)plen);
		hlen = full;
	}
	if (plen >= 0) {
		/* Every payload bit is checked before it is decoded: a flip
		 * that would decode to the same bytes (a model parameter no
		 * element used) still fails, so fsck sees every damaged frame. */
		h.payload_len = (uint32_t)plen;
		h.psum = (uint32_t)XXH3_64bits(out + hlen, (size_t)plen);
		hlen = frame_hdr_write(&h, out);
		rc = (ssize_t)hlen + plen;
		goto out;
	}
	h.level = CODEC_LEVEL_RAW;
	h.flags = 0;
	h.row_elems = 0;
	h.ref_len = 0;
	h.payload_len = (uint32_t)len;
	if (cap < frame_hdr_len(&h) + len) {
		rc = -ENOSPC;
		goto out;
	}
	hlen = frame_hdr_write(&h, out);
	if (len)
		memcpy(out + hlen, src, len);
	rc = (ssize_t)(hlen + len);
out:
	return rc;
}

int codec_frame_parse(const void *frame, size_t flen, struct codec_frame_info *info)
{
	struct frame_hdr h;
	uint32_t hlen;
	int rc;

	if (!frame || !info)
		return -EINVAL;
	rc = frame_hdr_read(frame, flen, &h, &hlen);
	if (rc)
		return rc;
	info->version = FRAME_VERSION;
	info->level = (uint8_t)h.level;
	info->dtype = (uint8_t)h.dtype;
	info->flags = (uint8_t)(h.flags & CODEC_FLAG_REF);
	info->header_len = hlen;
	info->raw_len = h.raw_len;
	info->payload_len = h.payload_len;
	info->checksum = h.checksum;
	info->elem_phase = h.phase;
	info->row_elems = h.row_elems;
	return 0;
}

/* What a level decoder's result means for the frame: its error, or the raw
 * length if the bytes are the ones the checksum names, else -EBADMSG. */
static ssize_t frame_checked(const struct frame_hdr *h, const uint8_t *dst, ssize_t rc)
{
	if (rc < 0)
		return rc;
	if (rc != (ssize_t)h->raw_len || XXH3_64bits(dst, h->raw_len) != h->checksum)
		return -EBADMSG;
	return rc;
}

ssize_t codec_frame_decode(struct codec_ctx *ctx, const void *frame, size_t flen,
                           void *dst, size_t cap, const void *ref, size_t ref_len)
{
	const uint8_t *in = frame;
	struct frame_hdr h;
	struct codec_lvl_args a = {0};
	uint32_t hlen;
	ssize_t rc = -EINVAL;

	if (!ctx || !frame || (!dst && cap))
		goto out;
	rc = frame_hdr_read(in, flen, &h, &hlen);
	if (rc)
		goto out;
	if (flen - hlen < h.payload_len ||
	    ((h.flags & FRAME_F_PSUM) && (uint32_t)XXH3_64bits(in + hlen, h.payload_len) != h.psum)) {
		rc = -EBADMSG;
		goto out;
	}
	if (cap < h.raw_len) {
		rc = -ENOSPC;
		goto out;
	}
	if (h.flags & CODEC_FLAG_REF) {
		rc = -ENOTSUP;
		if (!ref || !ref_len)
			goto out;
		rc = -EINVAL; /* not the chunk the frame was coded against */
		if (ref_len != h.ref_len)
			goto out;
		a.ref = ref;
		a.ref_len = ref_len;
	}
	a.dtype = (int)h.dtype;
	a.elem_phase = h.phase;
	a.row_elems = h.row_elems;
	switch (h.level) {
	case CODEC_LEVEL_RAW:
		if (h.raw_len)
			memcpy(dst, in + hlen, h.raw_len);
		rc = h.raw_len;
		break;
	case CODEC_LEVEL_FAST:
		rc = fast_decode(ctx, &a, in + hlen, h.payload_len, dst, h.raw_len);
		break;
	default:
		rc = mix_decode(ctx, &a, in + hlen, h.payload_len, dst, h.raw_len);
		break;
	}
	rc = frame_checked(&h, dst, rc);
	/* Mix float payloads of builds before the payload check (FORMAT.md
	 * 4.2): before 66988cb without the layout byte, before 4b5f757 with
	 * SPARSE values as a tree.  Read the old ways when the current way
	 * fails; the checksum of the raw bytes decides. */
	if (h.level == CODEC_LEVEL_MIX && !(h.flags & FRAME_F_PSUM) && h.dtype != CODEC_DTYPE_OTHER) {
		a.sparse_tree = true;
		for (int old = 0; rc == -EBADMSG && old < 2; old++) {
			a.layout_v1 = old == 0;
			rc = frame_checked(
				&h, dst, mix_decode(ctx, &a, in + hlen, h.payload_len, dst, h.raw_len));
		}
	}
out:
	return rc;
}

const char *codec_level_name(int level)
{
	static const char *const names[CODEC_LEVEL_COUNT] = {"raw", "fast", "mix"};

	return (level >= 0 && level < CODEC_LEVEL_COUNT) ? names[level] : "?";
}

const char *codec_dtype_name(int dtype)
{
	static const char *const names[CODEC_DTYPE_COUNT] = {"other", "bf16", "fp16", "fp32"};

	if (dtype == CODEC_DTYPE_AUTO)
		return "auto";
	return (dtype >= 0 && dtype < CODEC_DTYPE_COUNT) ? names[dtype] : "?";
}

int codec_level_parse(const char *name)
{
	if (!name)
		return -EINVAL;
	for (int l = 0; l < CODEC_LEVEL_COUNT; l++)
		if (!strcmp(name, codec_level_name(l)))
			return l;
	return -EINVAL;
}

/*
 * dtype detection.  Each hypothesis (bf16/fp16 at phase 0..1, fp32 at phase
 * 0..3, plain bytes) is scored by the order-0 entropy of the streams the
 * fast coder would split it into, so the winner is the split that codes
 * best.  All hypotheses come from one pass: per byte lane (offset mod 4) a
 * histogram of the byte joined with the top bit of the byte before it,
 * which is the sign+exponent field of bf16/fp32 when the lane is a high
 * byte.
 */
#define DETECT_WIN 2048u
#define DETECT_WINS 4u

struct detect_hist {
	uint32_t j[4][512]; /* lane byte << 1 | top bit of previous byte */
	uint32_t l[4][256]; /* lane byte (summed from j) */
};

/* Cheap log2 for scoring; error ~0.005, far below the margins used. */
static float detect_log2(float x)
{
	union {
		float f;
		uint32_t i;
	} u = {x};
	float e = (float)((int)(u.i >> 23) - 127), m;

	u.i = (u.i & 0x7fffffu) | 0x3f800000u;
	m = u.f;
	return e + (-0.34484843f * m + 2.02466578f) * m - 0.67487759f;
}

/* Entropy in bits/symbol of the sum of up to two histograms, Miller-Madow
 * corrected so that hypotheses with more bins do not look better on
 * small samples. */
static float detect_entropy(const uint32_t *a, const uint32_t *b, uint32_t bins,
                            uint32_t shift)
{
	uint32_t c[512] = {0}, nz = 0;
	float n = 0, s = 0;

	for (uint32_t i = 0; i < bins; i++)
		c[i >> shift] += a[i] + (b ? b[i] : 0);
	for (uint32_t i = 0; i < (bins >> shift); i++) {
		if (!c[i])
			continue;
		nz++;
		n += (float)c[i];
		s += (float)c[i] * detect_log2((float)c[i]);
	}
	if (n < 1)
		return 0;
	return detect_log2(n) - s / n + (float)(nz - 1) / (2.0f * n * 0.6931472f);
}

static void detect_low7(const uint32_t *l, uint32_t *out)
{
	for (uint32_t i = 0; i < 128; i++)
		out[i] = l[i] + l[i + 128];
}

int codec_dtype_detect(const void *buf, size_t len, uint32_t *phase)
{
	const uint8_t *b = buf;
	struct detect_hist hist, *h = &hist;
	uint32_t all[256] = {0}, m7[4][128], best_p = 0, best_q = 0;
	float so, s2[2], c2[2], hi2[2], s4[4], js4 = 0;
	int dt = CODEC_DTYPE_OTHER;

	if (phase)
		*phase = 0;
	if (!b || len < 64)
		return dt;
	memset(h, 0, sizeof(*h));
	for (uint32_t w = 0; w < DETECT_WINS; w++) {
		size_t start = len <= DETECT_WIN * DETECT_WINS ? w * (len / DETECT_WINS)
		                                               : w * ((len - DETECT_WIN) / (DETECT_WINS - 1));
		size_t end = len <= DETECT_WIN * DETECT_WINS ? (w + 1) * (len / DETECT_WINS)
		                                             : start + DETECT_WIN;

		for (size_t i = start ? start : 1; i < end; i++) {
			h->j[i & 3][(uint32_t)b[i] << 1 | b[i - 1] >> 7]++;
		}
	}
	for (uint32_t k = 0; k < 4; k++) {
		for (uint32_t i = 0; i < 256; i++)
			h->l[k][i] = h->j[k][2 * i] + h->j[k][2 * i + 1];
		for (uint32_t i = 0; i < 256; i++)
			all[i] += h->l[k][i];
		detect_low7(h->l[k], m7[k]);
	}
	so = detect_entropy(all, NULL, 256, 0);
	for (uint32_t p = 0; p < 2; p++) {
		uint32_t h1 = p ? 0 : 1, h2 = h1 + 2, l1 = (h1 + 3) & 3, l2 = h1 + 1;
		float t = detect_entropy(h->j[h1], h->j[h2], 512, 0);
		float bf = t + detect_entropy(m7[l1], m7[l2], 128, 0);
		float hb = detect_entropy(h->l[h1], h->l[h2], 256, 0);
		float fp = hb + detect_entropy(h->l[l1], h->l[l2], 256, 0);

		s2[p] = (bf < fp ? bf : fp) / 2;
		/* Bits 9..7 given 15..10: exponent bits in bf16, mantissa
		 * (uniform, ~3 bits) in fp16. */
		c2[p] = t - detect_entropy(h->j[h1], h->j[h2], 512, 3);
		/* The fp16 score is symmetric in the two bytes; the phase is
		 * the one whose high byte is the concentrated one. */
		hi2[p] = hb;
		if (hi2[p] < hi2[best_p])
			best_p = p;
	}
	for (uint32_t q = 0; q < 4; q++) {
		uint32_t hi = (q + 3) & 3;

		s4[q] = (detect_entropy(h->j[hi], NULL, 512, 0) +
		         detect_entropy(m7[(hi + 3) & 3], NULL, 128, 0) +
		         detect_entropy(h->l[(hi + 2) & 3], NULL, 256, 0) +
		         detect_entropy(h->l[(hi + 1) & 3], NULL, 256, 0)) / 4;
		if (s4[q] < s4[best_q])
			best_q = q;
	}
	/* 2-byte data scores about as well as fp32 (the fp32 split is two
	 * 2-byte splits side by side), so fp32 also needs 4-byte structure:
	 * lanes two bytes apart that differ (Jensen-Shannon divergence). */
	for (uint32_t k = 0; k < 2; k++) {
		float js = detect_entropy(h->l[k], h->l[k + 2], 256, 0) -
		           (detect_entropy(h->l[k], NULL, 256, 0) +
		            detect_entropy(h->l[k + 2], NULL, 256, 0)) / 2;

		js4 = js > js4 ? js : js4;
	}
	/* A float split must clearly beat plain bytes. */
	if ((s2[best_p] < s4[best_q] ? s2[best_p] : s4[best_q]) > so - 0.1f) {
		dt = CODEC_DTYPE_OTHER;
	} else if (js4 > 0.1f && s4[best_q] < s2[best_p]) {
		dt = CODEC_DTYPE_FP32;
		if (phase)
			*phase = best_q;
	} else {
		/* bf16 when bits 9..7 look like exponent bits and the values
		 * read as bf16 have magnitudes tensors have (2^-31 .. 2^16);
		 * coarsely quantised fp16 fails the second test. */
		uint32_t h1 = best_p ? 0 : 1, in = 0, all2 = 0;

		for (uint32_t i = 0; i < 512; i++) {
			uint32_t c = h->j[h1][i] + h->j[h1 + 2][i];

			all2 += c;
			if ((i & 0xff) >= 96 && (i & 0xff) < 143)
				in += c;
		}
		dt = c2[best_p] > 2.9f || 2 * in < all2 ? CODEC_DTYPE_FP16 : CODEC_DTYPE_BF16;
		if (phase)
			*phase = best_p;
	}
	return dt;
}
