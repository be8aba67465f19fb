/*
 * chunker.c - normalized FastCDC (Xia et al., USENIX ATC'16 and TPDS'20),
 * normalization level 2, with a 64-bit gear hash.
 *
 * The hash is h = (h << 1) + gear[byte].  Bit k of h depends only on the
 * last k+1 bytes, so the cut test looks at the top bits (mask_s/mask_l are
 * top-bit masks): a cut depends on a 64-byte window.  Hashing starts 64
 * bytes before min_size, so the hash at every tested position equals the
 * fully rolled one: the decision at position i is a function of the window
 * alone, never of where the chunk started.
 */
#include "index/chunker.h"
#include "index/chunker_i.h"

#include <errno.h>

#define CDC_WINDOW 64u
#define CDC_LIMIT (16u << 20)

/* splitmix64 from seed 0x6d69786673474541 ("mixfsGEA"), first 256 outputs;
 * tests/index/test_chunker.c regenerates it.  Never change it: cut points,
 * and so the dedup of every existing store, depend on it. */
const uint64_t cdc_gear[256] = {
	0x416e59458c7ac742ull, 0xcc397c5121059fc6ull, 0x8ee55246a9e7d1faull,
	0xf49e2d4668590564ull, 0xf54ac352085d9e08ull, 0x91a21ce14366c0b2ull,
	0xaa4d1f7560c81186ull, 0x3e7bbdcc2e1b53d8ull, 0x3807bc44c912b612ull,
	0x3b7b2ebd575ff492ull, 0xa016d1871441cb33ull, 0x5a736cf598ed8468ull,
	0x93629b236f700800ull, 0x239996d917fae20cull, 0xc9fc0b4dc81b1efcull,
	0x3acaf05cda02b3daull, 0x81ff5ebdf42add02ull, 0xdc0bd7bbf85a6bdaull,
	0x6c6313bc04ebe4bcull, 0x3072855f68b3156eull, 0x363eb425640bde35ull,
	0x4007cd356ed731a8ull, 0x5d949c03a218253cull, 0x54d4708edf6149a4ull,
	0xda73ee67546fb898ull, 0xdaa401f11ee8dec2ull, 0xa3bfdb3db1688dfaull,
	0x18a54089ec0e21b8ull, 0x516dc8c823849a64ull, 0x9ca8a46bff15ac29ull,
	0x7695451b4511c086ull, 0x86718971d03750eaull, 0x76bb7d54e60dd8ceull,
	0xe525831fac3d0519ull, 0x1e7622cd8320f561ull, 0xb77161b73d3c2e84ull,
	0x1c3181fb053a2285ull, 0xccf0812887e55d83ull, 0x6bc0cb8634156c8bull,
	0xae4c6b0f53cd5f62ull, 0x346c1dc59931d4f2ull, 0x0af94a967eaebd15ull,
	0xc514205d2c49db2bull, 0xd4c093aa1bccabdbull, 0x631a554f4f7f720eull,
	0xa5d8f05efed77431ull, 0xe3776bf46bf3db53ull, 0x6aa2da09ccc02920ull,
	0x6080aec86aef5f11ull, 0xa0fe4d22b08c5bf8ull, 0x2ed4f5ffb997614bull,
	0x6e38dc0db0f4cd76ull, 0xd2e313f20107601aull, 0x4f9d7f2b452a1beeull,
	0x973ef7ade4071117ull, 0x1085b262b67d9f30ull, 0x7bd62451ad69bc4bull,
	0x91c3a54462ea47bdull, 0x4f1199bd127cdadcull, 0xb481c7936d8cb25cull,
	0xd9c5c910eac40708ull, 0x8b5a290b5621e8e4ull, 0xed8719a9930010f2ull,
	0x8bdec4131e354b68ull, 0x8c7a8cd7a342b2f9ull, 0x61a312b7a97e791dull,
	0x7f5c98578250db61ull, 0xf4b86e23cec1d9bcull, 0x59f59e1fbe5a31d5ull,
	0x81e85c8f40e24a8full, 0x7df68fdb9b92610eull, 0xbe4c25cbf88c940full,
	0xb78597f6a08051a8ull, 0x7f241ea3832f9dcfull, 0xd2731e2dc8bbbfc1ull,
	0x53cf9950b77acb43ull, 0x80ab6f23608dbe6cull, 0x1b4fc326f5ae6952ull,
	0xa73cb607e3d30c2bull, 0x3259ccdf46fab338ull, 0x5f5e4eea11021053ull,
	0xccf075814956f651ull, 0x34cb04eb2443e228ull, 0xe550c2ee9d9331c1ull,
	0xebebbb9dca15a4b5ull, 0xbb24b15154606246ull, 0xcd99941b4c926cebull,
	0x4ae4e81500809f3eull, 0x5d4e59a0502b96aaull, 0x49e23f3472d73ecdull,
	0xd1580ec8435b3761ull, 0x3e7cca8b96ad13bcull, 0x1f0937b10bbe5cffull,
	0x78e48dc757d5cfd9ull, 0x989901e6d93d2977ull, 0xa4afef6abcba7d9bull,
	0x5d80e581124845c4ull, 0x1849e72a6f83593dull, 0x1c7bdfada32a7f31ull,
	0x0a949b618bf078b4ull, 0x2bda56cc25e01d90ull, 0xde8943cfdbaf319full,
	0xf9eb18f2649e7450ull, 0x94c073bbbaa3d8e6ull, 0x9cf742ae921375b4ull,
	0x02a92e96b42e0989ull, 0xed5398bd681fc5bcull, 0x88dbd9353039cd10ull,
	0xb1afbb3d43aa7f20ull, 0xaa0fcd3c060ae713ull, 0x025ba6b76f722d7aull,
	0xdb40699064bc7966ull, 0x09e1b3ba17a8eb12ull, 0x019eceb5942c9cdcull,
	0x4267597f8921e7f8ull, 0xc86b6f588b4f3c3bull, 0xc3f4a0a3bf3bda4bull,
	0xa9d6036856d67941ull, 0xf91f4d79cd8b07f7ull, 0xd19ca79b2be935d0ull,
	0x1176e336465ebd3full, 0x044847da9e7c8379ull, 0x340ff297a246bc5bull,
	0x7b2d5d0f6719f711ull, 0xb127bbbc3fe037baull, 0x80fbbedde4d32fc9ull,
	0xa7913794791eb4d3ull, 0xa6764d86ec11f883ull, 0x23d17b70b75b74ddull,
	0x366f2b7a47ddde86ull, 0xcb467bb77ee4d7ecull, 0xb805d0a584588362ull,
	0x371dec20964c12eeull, 0x8e9e0b7b44e3e630ull, 0x8bec9de6d5aa46e5ull,
	0x780e405eea9edbefull, 0x7d500ba0c7348dd7ull, 0xbb09093057ce5af9ull,
	0x64caee9836f99ad9ull, 0x91a0dbad12feaaa4ull, 0x976e85596d771206ull,
	0xfbd3f46e883e90aeull, 0x2dbe353d21a27182ull, 0x41b884411f51af51ull,
	0x58d8708bb8db8fe7ull, 0xe9c6b81d4b13d243ull, 0xf9f0a4d66c307c61ull,
	0x31583cd6c52c2b87ull, 0x7098e11e152767cdull, 0xffccc81bccac2f4aull,
	0x6554491e0fc33579ull, 0x70961dd12ce4ea1cull, 0x97cb78bd46b05e0dull,
	0x3e765310231a1cccull, 0x4898172bb2d59096ull, 0x725ec5219f2cba94ull,
	0x6b0f91c2a1560bbaull, 0xd3c4b940340ab62full, 0x8afe5f07dc3fcf08ull,
	0xd3bc5067ff9e8677ull, 0x832a98fae2ff9759ull, 0x93abe3b28cc13a44ull,
	0x368d1e585eb48082ull, 0x44fb3d28a8f831aaull, 0x703382a9d675f769ull,
	0xa811afca0964fc5eull, 0xeb4bf2ba97e5f92cull, 0x3d00c02036142fb5ull,
	0x43bac89532b2b7a7ull, 0x3e4e3d7baf2e2ec1ull, 0x6bf95d38d6b4b732ull,
	0xde071f6ab1b8bbf2ull, 0x40619930c55a3711ull, 0x2eea5f34ae814a2cull,
	0x40a7906a27f2e55bull, 0xb280c9f83b6e3c21ull, 0x149aa4511cf27c54ull,
	0xc40b764ded74477aull, 0xd1ab27f1c3dbe354ull, 0x34115bff5fb1479full,
	0x14644507cc13acf9ull, 0x5aab0b167a0fea84ull, 0x611d120a20ddca8aull,
	0x0b970c1b7c2a7b7aull, 0xd3ffb949900613b9ull, 0x2b99c17530a3645aull,
	0x0a68466f7a0c99a7ull, 0x4f030d24dcf114c8ull, 0xd586fea32456858dull,
	0x4687c42a384d1972ull, 0x485397a7dfffd109ull, 0x3749e235f0683f33ull,
	0x783781256b5f109cull, 0x25eb8443f33fe75aull, 0x4498a51642501cc5ull,
	0x111f41c8534199e7ull, 0x710eb85ba02e1a46ull, 0x6cb47e5e3b5a95caull,
	0xec69767b0826731cull, 0xec6ef6a95487fef5ull, 0x3799508e80226dfcull,
	0x0aa7cdaa6b625603ull, 0x85e8246cdaea39e8ull, 0xa8f624fe78698ba0ull,
	0xf1fdf1c2476d670dull, 0xc38c3635b45fc74cull, 0x6cf33d949e9ff95eull,
	0x5abcd4e1e261e526ull, 0x31a688d6c93297b2ull, 0xe07b532172bf5b8aull,
	0x997b35b1fa006249ull, 0xdc7171b645ee56d8ull, 0x7230acd938591110ull,
	0x496a271864bd32feull, 0x76d854492b9896ebull, 0xdb2356663f03bdbcull,
	0x9f9bab3923345006ull, 0x09e59217660e3584ull, 0xcbc8a137a2927b9bull,
	0x0c560207a26ea711ull, 0x22a9f9ed67666143ull, 0xe5e9fa9252c58769ull,
	0x2e0d44787289c473ull, 0x5b0ed6cb4d237298ull, 0xcc4c8c3b5bd65166ull,
	0xaa9b406c7f780323ull, 0x14d1e24222327103ull, 0xd3083cd1bf12377bull,
	0xa2164a27ad203abdull, 0x3efcc25f213fddf4ull, 0x9f77a4eec8a3bd72ull,
	0x909815319625212eull, 0x1b9b19753b999d22ull, 0xd2f404daa632e9c9ull,
	0x31c693ca0a621443ull, 0x653bdec9b214abf6ull, 0xf005e9b156613e0dull,
	0xb6da56920d0d2f9aull, 0x62082efa62caf032ull, 0x6cefaf2c65992c83ull,
	0x2b1b720c1d35a3eeull, 0x21e14d00eec9e981ull, 0x9f7ee5586c543015ull,
	0x48a5460632b8ab91ull, 0xae4cb5c66fe82299ull, 0xa7bc84e752fcb45eull,
	0xe8e7a0d19b785b1bull, 0xfb0b023c4b673ac1ull, 0x9158ec024e5387ffull,
	0xd9267b4482e02b0dull, 0xb08e81e576f80e3eull, 0x902e0a013fb5fb1bull,
	0xfb08fb3b220e2a92ull, 0xf07299ccda53f041ull, 0x8b42dbaf3cb40616ull,
	0x029afa6eac329070ull,
};

void cdc_params_default(struct cdc_params *p)
{
	p->min_size = 16u << 10;
	p->avg_size = 64u << 10;
	p->max_size = 256u << 10;
}

static unsigned log2_u32(uint32_t v)
{
	unsigned r = 0;

	while (v >>= 1)
		r++;
	return r;
}

/* A mask of the top `bits` bits: (h & mask) == 0 has probability 2^-bits. */
static uint64_t top_mask(unsigned bits)
{
	return ~(uint64_t)0 << (64 - bits);
}

int cdc_init(struct cdc *c, const struct cdc_params *p)
{
	unsigned bits;

	if (p->min_size < CDC_WINDOW || p->min_size >= p->avg_size ||
	    p->avg_size >= p->max_size || p->max_size > CDC_LIMIT ||
	    (p->avg_size & (p->avg_size - 1)) != 0)
		return -EINVAL;
	bits = log2_u32(p->avg_size);
	c->p = *p;
	/* Level 2: two bits stricter before avg, two looser after. */
	c->mask_s = top_mask(bits + 2);
	c->mask_l = top_mask(bits - 2);
	return 0;
}

/* Advance the hash over buf[i..end) without testing. */
static uint64_t cdc_warm(const uint8_t *buf, size_t i, size_t end)
{
	uint64_t h = 0;

	for (; i < end; i++)
		h = (h << 1) + cdc_gear[buf[i]];
	return h;
}

/* Test positions i in [i, end): returns the cut (i+1) at the first position
 * whose hash has no bit of mask set, or 0.  *hp carries the hash across
 * calls.  Unrolled by 4 with one combined, almost never taken, branch: the
 * dependency chain is one shift-add (an lea) per byte. */
static inline size_t cdc_scan(const uint8_t *buf, size_t i, size_t end,
                              uint64_t *hp, uint64_t mask)
{
	uint64_t h = *hp;

	while (i + 4 <= end) {
		uint64_t h0 = (h << 1) + cdc_gear[buf[i]];
		uint64_t h1 = (h0 << 1) + cdc_gear[buf[i + 1]];
		uint64_t h2 = (h1 << 1) + cdc_gear[buf[i + 2]];
		uint64_t h3 = (h2 << 1) + cdc_gear[buf[i + 3]];

		if (__builtin_expect(!(h0 & mask) | !(h1 & mask) |
		                     !(h2 & mask) | !(h3 & mask), 0)) {
			if (!(h0 & mask))
				return i + 1;
			if (!(h1 & mask))
				return i + 2;
			if (!(h2 & mask))
				return i + 3;
			return i + 4;
		}
		h = h3;
		i += 4;
	}
	for (; i < end; i++) {
		h = (h << 1) + cdc_gear[buf[i]];
		if (!(h & mask))
			return i + 1;
	}
	*hp = h;
	return 0;
}

size_t cdc_cut(const struct cdc *c, const uint8_t *buf, size_t n)
{
	size_t lim, mid, cut;
	uint64_t h;

	if (n <= c->p.min_size)
		return n;
	lim = n < c->p.max_size ? n : c->p.max_size;
	mid = lim < c->p.avg_size ? lim : c->p.avg_size;
	h = cdc_warm(buf, c->p.min_size - CDC_WINDOW, c->p.min_size);
	cut = cdc_scan(buf, c->p.min_size, mid, &h, c->mask_s);
	if (cut)
		return cut;
	cut = cdc_scan(buf, mid, lim, &h, c->mask_l);
	if (cut)
		return cut;
	return lim;
}

int cdc_cut_is_final(const struct cdc *c, size_t cut, size_t n)
{
	/* A cut before n was decided by bytes before it; a cut at max_size is
	 * forced.  A cut at n < max_size may move once more bytes arrive. */
	return cut < n || cut >= c->p.max_size;
}
