/* Placeholder until the fast coder lands: encode declines
 * (frame layer stores raw), decode rejects. */
#include <errno.h>
#include "codec/codec_i.h"

ssize_t fast_encode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                   const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
	return -ENOSPC;
}

ssize_t fast_decode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                   const uint8_t *payload, size_t plen, uint8_t *dst, size_t raw_len)
{
	return -EBADMSG;
}

void fast_state_free(struct fast_state *s)
{
}
