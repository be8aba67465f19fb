/*
 * chunker.h - normalized FastCDC content-defined chunking with a gear hash.
 *
 * Pure and stateless per call: cdc_cut() looks at a buffer that starts at a
 * chunk boundary and returns where the first chunk ends.  Boundaries depend
 * only on content (plus min/avg/max), so an insertion shifts at most the
 * chunks around it.  The gear table is a compile-time constant.
 * Target: >= 1 GB/s per core.
 */
#ifndef MIXFS_CHUNKER_H
#define MIXFS_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

struct cdc_params {
	uint32_t min_size; /* default 16 KiB */
	uint32_t avg_size; /* default 64 KiB, power of two */
	uint32_t max_size; /* default 256 KiB */
};

/* Precomputed masks for normalized chunking (level 2). */
struct cdc {
	struct cdc_params p;
	uint64_t mask_s; /* stricter mask, used before avg_size */
	uint64_t mask_l; /* looser mask, used after avg_size */
};

void cdc_params_default(struct cdc_params *p);

/* Validate p (64 <= min < avg < max <= 16 MiB, avg a power of two) and fill
 * c.  Returns 0 or -EINVAL. */
int cdc_init(struct cdc *c, const struct cdc_params *p);

/* Length of the first chunk of buf[0..n).
 * - n <= min_size: returns n.
 * - otherwise the first content-defined cut point in (min_size, max_size],
 *   or min(n, max_size) when there is none within n bytes.
 * A caller that is not at end of stream and gets back n < max_size must
 * wait for more data before treating the result as a boundary (see
 * cdc_cut_is_final). */
size_t cdc_cut(const struct cdc *c, const uint8_t *buf, size_t n);

/* 1 if cdc_cut(c, buf, n) == cut is a real boundary that more data after
 * buf[n) cannot move, else 0. */
int cdc_cut_is_final(const struct cdc *c, size_t cut, size_t n);

#endif
