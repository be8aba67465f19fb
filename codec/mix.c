/* Placeholder until the context-mixing coder lands: encode declines
 * (frame layer stores raw), decode rejects. */
#include <errno.h>
#include "codec/codec_i.h"

ssize_t mix_encode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                   const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
	return -ENOSPC;
}

ssize_t mix_decode(struct codec_ctx *ctx, const struct codec_lvl_args *a,
                   const uint8_t *payload, size_t plen, uint8_t *dst, size_t raw_len)
{
	return -EBADMSG;
}

void mix_state_free(struct mix_state *s)
{
}
