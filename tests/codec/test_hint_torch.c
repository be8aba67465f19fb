/*
 * test_hint_torch.c - dtype and row length of torch.save storages from the
 * archive's data.pkl (codec/hint.c): real torch.save files (tests/codec/
 * torch, made by gen_torch.py), hand-made pickles for each bound, and
 * truncated or corrupted pickles, which must give AUTO ranges or a clean
 * error.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "codec/hint.h"
#include "fixture.h"

#ifndef TORCH_FIXTURES
#error "TORCH_FIXTURES (the directory of the .pt files) must be defined"
#endif

enum { AUTO = CODEC_DTYPE_AUTO, BF16 = CODEC_DTYPE_BF16, FP16 = CODEC_DTYPE_FP16,
       FP32 = CODEC_DTYPE_FP32 };

static uint8_t *load(const char *name, size_t *len)
{
	return load_fixture(TORCH_FIXTURES, name, len);
}

/* Data offset and length of the zip entry whose name ends with suffix
 * (torch.save streams entries: sizes in a descriptor after the data). */
static int zip_find(const uint8_t *b, size_t len, const char *suffix, uint64_t *doff,
                    uint64_t *dlen)
{
	size_t off = 0, sl = strlen(suffix);

	while (off + 30 <= len && rd(b + off, 4) == 0x04034b50u) {
		size_t nl = (size_t)rd(b + off + 26, 2), xl = (size_t)rd(b + off + 28, 2);
		size_t d = off + 30 + nl + xl, sz = (size_t)rd(b + off + 18, 4), next;

		if (rd(b + off + 6, 2) & 8) {
			size_t q;

			for (q = d; q + 16 <= len; q++)
				if (!memcmp(b + q, "PK\7\b", 4) && rd(b + q + 8, 4) == q - d)
					break;
			assert_true(q + 16 <= len);
			sz = q - d;
			next = q + 16;
		} else {
			next = d + sz;
		}
		if (nl >= sl && !memcmp(b + off + 30 + nl - sl, suffix, sl)) {
			*doff = d;
			*dlen = sz;
			return 0;
		}
		off = next;
	}
	return -1;
}

static const struct codec_hint_range *range_at(const struct codec_hint *h, uint64_t off)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->r[i].off == off)
			return &h->r[i];
	return NULL;
}

struct expect {
	const char *key;
	int dtype;
	uint32_t row;
};

struct fixture {
	const char *file;
	struct expect e[17];
};

/* What gen_torch.py saved (see there). */
static const struct fixture fixtures[] = {
	{ "f32.pt", { { "0", FP32, 6 }, { "1", FP32, 6 } } },
	{ "f16.pt", { { "0", FP16, 300 } } },
	{ "bf16.pt", { { "0", BF16, 5 } } },
	{ "i64.pt", { { "0", AUTO, 0 }, { "1", AUTO, 0 } } },
	{ "shared.pt", { { "0", FP32, 10 }, { "1", FP32, 0 }, { "2", FP32, 0 }, { "3", FP32, 10 },
	                 { "4", FP32, 0 } } },
	/* model: 0.weight 7x5, 0.bias, 2.weight 3x7, 2.bias; AdamW: per
	 * parameter a 0-dim step, exp_avg, exp_avg_sq */
	{ "adamw.pt", { { "0", FP32, 5 }, { "1", FP32, 7 }, { "2", FP32, 7 }, { "3", FP32, 3 },
	                { "4", FP32, 0 }, { "5", FP32, 5 }, { "6", FP32, 5 }, { "7", FP32, 0 },
	                { "8", FP32, 7 }, { "9", FP32, 7 }, { "10", FP32, 0 }, { "11", FP32, 7 },
	                { "12", FP32, 7 }, { "13", FP32, 0 }, { "14", FP32, 3 },
	                { "15", FP32, 3 } } },
	{ "p4.pt", { { "0", FP16, 4 }, { "1", FP32, 4 } } },
};

static size_t fixture_count(const struct fixture *f)
{
	size_t n = 0;

	while (n < sizeof(f->e) / sizeof(f->e[0]) && f->e[n].key)
		n++;
	return n;
}

static void check_fixture(const struct fixture *f, const uint8_t *b, size_t len,
                          const struct codec_hint *h)
{
	size_t n = fixture_count(f);

	assert_int_equal(h->format, CODEC_HINT_TORCH_ZIP);
	assert_int_equal(h->n, n);
	for (size_t i = 0; i < n; i++) {
		char suffix[32];
		uint64_t doff, dlen;
		const struct codec_hint_range *r;

		snprintf(suffix, sizeof(suffix), "/data/%s", f->e[i].key);
		assert_int_equal(zip_find(b, len, suffix, &doff, &dlen), 0);
		r = range_at(h, doff);
		assert_non_null(r);
		assert_int_equal(r->len, dlen);
		if (r->dtype != f->e[i].dtype || r->row_elems != f->e[i].row)
			fail_msg("%s data/%s: dtype %d row %u, want %d %u", f->file, f->e[i].key,
			         r->dtype, r->row_elems, f->e[i].dtype, f->e[i].row);
	}
}

static void test_torch_fixtures(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		size_t len;
		uint8_t *b = load(fixtures[i].file, &len);
		struct codec_hint h;
		struct codec_params p;
		uint64_t doff, dlen;

		assert_int_equal(codec_hint_parse(b, len, len, &h), 0);
		check_fixture(&fixtures[i], b, len, &h);
		/* a chunk inside the first tensor gets its dtype, phase, row */
		assert_int_equal(zip_find(b, len, "/data/0", &doff, &dlen), 0);
		assert_int_equal(codec_hint_chunk(&h, doff + 1, dlen - 1, &p), 0);
		assert_int_equal(p.dtype, fixtures[i].e[0].dtype);
		assert_int_equal(p.row_elems, fixtures[i].e[0].row);
		if (p.dtype != AUTO)
			assert_int_equal(p.elem_phase, (p.dtype == FP32 ? 4 : 2) - 1);
		codec_hint_release(&h);
		/* file size not known yet (the write path) */
		assert_int_equal(codec_hint_parse(b, len, 0, &h), 0);
		check_fixture(&fixtures[i], b, len, &h);
		codec_hint_release(&h);
		free(b);
	}
}

/* Every head length: a head that does not hold the whole pickle asks for
 * more (-EAGAIN, need beyond it: without the pickle no walk could go on
 * past the head); with it, the dtypes are there and everything else is as
 * it would be with no pickle at all.  Each head is an exact-size heap
 * copy, so a sanitizer build sees any over-read. */
static void test_torch_truncated_file(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		size_t len;
		uint8_t *b = load(fixtures[i].file, &len);
		uint64_t poff, plen;
		struct codec_hint full;

		assert_int_equal(zip_find(b, len, "/data.pkl", &poff, &plen), 0);
		assert_int_equal(codec_hint_parse(b, len, len, &full), 0);
		for (size_t l = 0; l <= len; l++) {
			uint8_t *c = malloc(l ? l : 1);
			struct codec_hint h;
			int rc;

			assert_non_null(c);
			memcpy(c, b, l);
			rc = codec_hint_parse(c, l, l == len ? len : 0, &h);
			if (l < 8) {
				assert_int_equal(rc, -EAGAIN);
			} else if (l < len && (l < poff + plen || (rc == -EAGAIN && l < poff + plen + 24))) {
				/* the pickle, or its data descriptor, cut */
				assert_int_equal(rc, -EAGAIN);
				assert_true(h.need > l);
			} else {
				assert_int_equal(rc, 0);
				for (size_t k = 0; k < h.n; k++) {
					const struct codec_hint_range *r;

					r = range_at(&full, h.r[k].off);
					assert_non_null(r);
					assert_int_equal(h.r[k].len, r->len);
					if (poff + plen <= l) {
						assert_int_equal(h.r[k].dtype, r->dtype);
						assert_int_equal(h.r[k].row_elems, r->row_elems);
					} else {
						assert_int_equal(h.r[k].dtype, AUTO);
						assert_int_equal(h.r[k].row_elems, 0);
					}
				}
			}
			codec_hint_release(&h);
			free(c);
		}
		codec_hint_release(&full);
		free(b);
	}
}

/* ---- synthetic archives: any pickle bytes in front of storages ---- */

#define ZMAX 65536

struct zbuf {
	uint8_t b[ZMAX];
	size_t n;
};

/* A stored entry with its sizes in the local header. */
static uint64_t zput(struct zbuf *z, const char *name, const void *data, size_t len)
{
	size_t nl = strlen(name);
	uint8_t *p = z->b + z->n;

	assert_true(z->n + 30 + nl + len <= ZMAX);
	memset(p, 0, 30);
	memcpy(p, "PK\3\4", 4);
	for (int i = 0; i < 4; i++) {
		p[18 + i] = (uint8_t)(len >> (8 * i));
		p[22 + i] = (uint8_t)(len >> (8 * i));
	}
	p[26] = (uint8_t)nl;
	memcpy(p + 30, name, nl);
	if (data)
		memcpy(p + 30 + nl, data, len);
	else
		memset(p + 30 + nl, 0x3c, len);
	z->n += 30 + nl + len;
	return z->n - len;
}

static void zend(struct zbuf *z)
{
	assert_true(z->n + 46 <= ZMAX);
	memset(z->b + z->n, 0, 46);
	memcpy(z->b + z->n, "PK\1\2", 4);
	z->n += 46;
}

/* Parses z; returns the range of entry "a/data/<key>" at off, or fails. */
static struct codec_hint_range zrange(struct zbuf *z, uint64_t off)
{
	struct codec_hint h;
	const struct codec_hint_range *r;
	struct codec_hint_range out;

	assert_int_equal(codec_hint_parse(z->b, z->n, z->n, &h), 0);
	r = range_at(&h, off);
	assert_non_null(r);
	out = *r;
	codec_hint_release(&h);
	return out;
}

/* A pickle built by hand. */
struct pk {
	uint8_t b[1u << 17];
	size_t n;
};

static void pb(struct pk *k, const void *s, size_t n)
{
	assert_true(k->n + n <= sizeof(k->b));
	memcpy(k->b + k->n, s, n);
	k->n += n;
}

#define PB(k, lit) pb((k), (lit), sizeof(lit) - 1)

static void pstr(struct pk *k, const char *s)
{
	uint8_t h[5] = { 'X', (uint8_t)strlen(s), 0, 0, 0 };

	pb(k, h, 5);
	pb(k, s, strlen(s));
}

static void pint(struct pk *k, unsigned v)
{
	uint8_t op[3] = { 'K', (uint8_t)v, 0 };

	if (v < 256) {
		pb(k, op, 2);
	} else {
		op[0] = 'M';
		op[2] = (uint8_t)(v >> 8);
		pb(k, op, 3);
	}
}

/* _rebuild_tensor_v2(storage(cls, key, numel), 0, size, stride, False,
 * OrderedDict()) for a 2-D tensor, as torch.save writes it. */
static void ptensor(struct pk *k, const char *cls, const char *key, unsigned numel,
                    unsigned s0, unsigned s1, unsigned st0, unsigned st1)
{
	PB(k, "ctorch._utils\n_rebuild_tensor_v2\n((");
	pstr(k, "storage");
	PB(k, "ctorch\n");
	pb(k, cls, strlen(cls));
	pb(k, "\n", 1);
	pstr(k, key);
	pstr(k, "cpu");
	pint(k, numel);
	PB(k, "tQ");
	pint(k, 0);
	pint(k, s0);
	pint(k, s1);
	PB(k, "\x86");
	pint(k, st0);
	pint(k, st1);
	PB(k, "\x86\x89" "ccollections\nOrderedDict\n)RtR");
}

static void pbegin(struct pk *k)
{
	k->n = 0;
	PB(k, "\x80\x02}(");
}

static void pfinish(struct pk *k)
{
	PB(k, "u.");
}

/* One dict item "t<i>": a tensor. */
static void pitem(struct pk *k, int i, const char *cls, const char *key, unsigned numel,
                  unsigned s0, unsigned s1, unsigned st0, unsigned st1)
{
	char name[16];

	snprintf(name, sizeof(name), "t%d", i);
	pstr(k, name);
	ptensor(k, cls, key, numel, s0, s1, st0, st1);
}

/* Archive: the pickle, then data/0 of len0 bytes and data/1 of len1. */
static void zmake(struct zbuf *z, const struct pk *k, size_t len0, size_t len1, uint64_t *o0,
                  uint64_t *o1)
{
	z->n = 0;
	zput(z, "a/data.pkl", k->b, k->n);
	*o0 = zput(z, "a/data/0", NULL, len0);
	*o1 = zput(z, "a/data/1", NULL, len1);
	zput(z, "a/version", "3\n", 2);
	zend(z);
}

static void expect_r(struct zbuf *z, uint64_t off, int dtype, uint32_t row)
{
	struct codec_hint_range r = zrange(z, off);

	if (r.dtype != dtype || r.row_elems != row)
		fail_msg("dtype %d row %u, want %d %u", r.dtype, r.row_elems, dtype, row);
}

static struct zbuf zb;
static struct pk pk;

/* Pickles of up to three tensors over storages "0" and "1", in front of
 * entries data/0 and data/1 of len0 and len1 bytes. */
struct pcase {
	const char *why;
	struct ptensor {
		const char *cls, *key;
		unsigned numel, s0, s1, st0, st1;
	} t[3];
	size_t len0, len1;
	int dt0, dt1;
	uint32_t row0, row1;
};

static const struct pcase pcases[] = {
	{ "the basic form",
	  { { "HalfStorage", "0", 6, 2, 3, 3, 1 }, { "BFloat16Storage", "1", 40, 4, 10, 10, 1 } },
	  12, 80, FP16, BF16, 3, 10 },
	{ "an entry must hold exactly numel elements of the dtype",
	  { { "HalfStorage", "0", 6, 2, 3, 3, 1 }, { "BFloat16Storage", "1", 40, 4, 10, 10, 1 } },
	  14, 80, AUTO, BF16, 0, 10 },
	{ "the largest tensor gives the row; a column slice the row pitch (stride[-2])",
	  { { "FloatStorage", "0", 60, 2, 6, 6, 1 }, { "FloatStorage", "0", 60, 3, 20, 20, 1 },
	    { "FloatStorage", "1", 60, 4, 5, 15, 1 } },
	  240, 240, FP32, FP32, 20, 15 },
	{ "the largest tensor first; a non-dense last dimension gives no row",
	  { { "FloatStorage", "0", 60, 3, 20, 20, 1 }, { "FloatStorage", "0", 60, 2, 6, 6, 1 },
	    { "FloatStorage", "1", 60, 4, 5, 1, 4 } },
	  240, 240, FP32, FP32, 20, 0 },
	{ "one storage named with two dtypes has none",
	  { { "FloatStorage", "0", 6, 2, 3, 3, 1 }, { "HalfStorage", "0", 6, 2, 3, 3, 1 },
	    { "HalfStorage", "1", 6, 2, 3, 3, 1 } },
	  24, 12, AUTO, FP16, 0, 3 },
	{ "other storage classes, keys that are no entry's key",
	  { { "DoubleStorage", "0", 6, 2, 3, 3, 1 }, { "HalfStorage", "01", 6, 2, 3, 3, 1 } },
	  48, 12, AUTO, AUTO, 0, 0 },
};

/* The write path sees a torch.save file in pieces: the head is parsed, the
 * rest fed as it arrives (codec_hint_feed).  For every head that holds the
 * whole pickle entry, and pieces of a few sizes that start where the walk stands
 * (a piece ending inside a header is given again, larger), the ranges end
 * up those of the whole file; each piece is an exact-size heap copy. */
static void test_torch_feed(void **state)
{
	static const size_t step[] = { 13, 64, 1000 };

	(void)state;
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		size_t len;
		uint8_t *b = load(fixtures[i].file, &len);
		uint64_t poff, plen;

		assert_int_equal(zip_find(b, len, "/data.pkl", &poff, &plen), 0);
		/* from a head that holds the pickle and its 16-byte descriptor */
		for (size_t l = (size_t)(poff + plen) + 16; l <= len; l++) {
			for (size_t s = 0; s < sizeof(step) / sizeof(step[0]); s++) {
				struct codec_hint h;
				size_t w = step[s], feeds = 0;

				assert_int_equal(codec_hint_parse(b, l, 0, &h), 0);
				while (h.need && h.need < len) {
					uint64_t at = h.need;
					size_t n = len - at < w ? (size_t)(len - at) : w;
					uint8_t *c = malloc(n);

					assert_non_null(c);
					memcpy(c, b + at, n);
					assert_true(codec_hint_feed(&h, c, n, at) >= 0);
					free(c);
					/* no progress: the piece ended in a header */
					w = h.need == at ? 2 * w : step[s];
					assert_true(++feeds < 10000);
				}
				check_fixture(&fixtures[i], b, len, &h);
				/* bytes before the walk's point change nothing */
				assert_int_equal(codec_hint_feed(&h, b, 8, 0), 0);
				codec_hint_release(&h);
			}
		}
		free(b);
	}
}

static void test_torch_pickle_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		const struct pcase *c = &pcases[i];
		uint64_t o0, o1;
		struct codec_hint_range r0, r1;

		pbegin(&pk);
		for (int t = 0; t < 3 && c->t[t].cls; t++)
			pitem(&pk, t, c->t[t].cls, c->t[t].key, c->t[t].numel, c->t[t].s0,
			      c->t[t].s1, c->t[t].st0, c->t[t].st1);
		pfinish(&pk);
		zmake(&zb, &pk, c->len0, c->len1, &o0, &o1);
		r0 = zrange(&zb, o0);
		r1 = zrange(&zb, o1);
		if (r0.dtype != c->dt0 || r0.row_elems != c->row0 || r1.dtype != c->dt1 ||
		    r1.row_elems != c->row1)
			fail_msg("%s: %d/%u %d/%u, want %d/%u %d/%u", c->why, r0.dtype, r0.row_elems,
			         r1.dtype, r1.row_elems, c->dt0, c->row0, c->dt1, c->row1);
	}
}

/* Wraps the basic two-tensor pickle's dict items in pre and post. */
static void pwrap(struct pk *k, const void *pre, size_t pre_len, const void *post, size_t post_len)
{
	k->n = 0;
	pb(k, "\x80\x02", 2);
	if (pre_len)
		pb(k, pre, pre_len);
	pb(k, "}(", 2);
	pitem(k, 0, "HalfStorage", "0", 6, 2, 3, 3, 1);
	pitem(k, 1, "BFloat16Storage", "1", 40, 4, 10, 10, 1);
	pb(k, "u", 1);
	if (post_len)
		pb(k, post, post_len);
	pb(k, ".", 1);
}

static void expect_wrapped(const void *pre, size_t pre_len, const void *post, size_t post_len,
                           int ok)
{
	uint64_t o0, o1;

	pwrap(&pk, pre, pre_len, post, post_len);
	zmake(&zb, &pk, 12, 80, &o0, &o1);
	expect_r(&zb, o0, ok ? FP16 : AUTO, ok ? 3 : 0);
	expect_r(&zb, o1, ok ? BF16 : AUTO, ok ? 10 : 0);
}

static void test_torch_pickle_bounds(void **state)
{
	static uint8_t big[1u << 16];
	size_t n;

	(void)state;
	expect_wrapped(NULL, 0, NULL, 0, 1);
	/* opcodes around the tensors that torch.save may write too */
#define LIT(s) s, sizeof(s) - 1
	expect_wrapped(LIT("\x95\0\0\0\0\0\0\0\0" "N0" "\x88" "0" "G\0\0\0\0\0\0\0\0" "0"),
	               LIT("]q\x05" "K\x01" "a" "h\x05" "0"), 1);
	expect_wrapped(LIT("N" "\x8a\x02\x2c\x01" "J\xff\xff\xff\xff" "\x87" "0"),
	               LIT("C\x03" "abc0"), 1);
	/* protocol 4: SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, LONG_BINGET */
	expect_wrapped(LIT("\x8c\x03" "abc" "\x94" "\x8c\x01" "x" "\x93" "0" "j\0\0\0\0" "0"),
	               NULL, 0, 1);
	/* an opcode the walker does not know ends it: all AUTO */
	expect_wrapped(NULL, 0, LIT("I1\n0"), 0);
	expect_wrapped(NULL, 0, LIT("\x97"), 0);
	/* a BINGET of an unset memo slot, a huge memo index */
	expect_wrapped(NULL, 0, LIT("h\x63"), 0);
	expect_wrapped(NULL, 0, LIT("N" "r\xff\xff\xff\xff" "0"), 0);
	/* no STOP, or a stack underflow */
	pwrap(&pk, NULL, 0, NULL, 0);
	pk.n--;
	{
		uint64_t o0, o1;

		zmake(&zb, &pk, 12, 80, &o0, &o1);
		expect_r(&zb, o0, AUTO, 0);
	}
	expect_wrapped(NULL, 0, LIT("00"), 0);
	expect_wrapped(NULL, 0, LIT("R"), 0);
	expect_wrapped(NULL, 0, LIT("\x93"), 0);
	/* marks: 256 nested are fine, 257 are not */
	memset(big, '(', 256);
	memset(big + 256, '1', 256);
	expect_wrapped(big, 512, NULL, 0, 1);
	memset(big, '(', 257);
	memset(big + 257, '1', 257);
	expect_wrapped(big, 514, NULL, 0, 0);
	/* stack: 16384 values fit, 16385 do not */
	for (n = 0; n < 16384; n++)
		big[n] = 'N';
	memset(big + n, '0', n);
	expect_wrapped(big, 2 * n, NULL, 0, 1);
	for (n = 0; n < 16385; n++)
		big[n] = 'N';
	memset(big + n, '0', n);
	expect_wrapped(big, 2 * n, NULL, 0, 0);
}

/* Every prefix of a real pickle (no STOP: AUTO), and byte flips (whatever
 * the pickle then says, the archive still parses, with dtypes that fit
 * their entries). */
static void test_torch_pickle_corrupt(void **state)
{
	static const char *files[] = { "adamw.pt", "shared.pt", "p4.pt", "f16.pt" };
	uint64_t seed = 0x1234567;

	(void)state;
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		size_t len;
		uint8_t *b = load(files[f], &len);
		uint64_t poff, plen, o0, o1;
		struct codec_hint h;
		uint64_t d0, len0, d1, len1 = 16;

		assert_int_equal(zip_find(b, len, "/data.pkl", &poff, &plen), 0);
		assert_int_equal(zip_find(b, len, "/data/0", &d0, &len0), 0);
		(void)zip_find(b, len, "/data/1", &d1, &len1);
		assert_true(plen <= sizeof(pk.b));
		for (size_t l = 0; l <= plen; l++) {
			memcpy(pk.b, b + poff, l);
			pk.n = l;
			zmake(&zb, &pk, len0, len1, &o0, &o1);
			assert_int_equal(codec_hint_parse(zb.b, zb.n, zb.n, &h), 0);
			assert_int_equal(h.n, 2);
			/* the whole pickle names data/0's dtype, no prefix does */
			assert_true((range_at(&h, o0)->dtype != AUTO) == (l == plen));
			codec_hint_release(&h);
		}
		for (int it = 0; it < 3000; it++) {
			uint8_t *c = malloc(len);
			int rc, flips = 1 + it % 4;

			assert_non_null(c);
			memcpy(c, b, len);
			for (int j = 0; j < flips; j++) {
				seed = seed * 6364136223846793005ull + 1442695040888963407ull;
				/* mostly inside the pickle, sometimes anywhere */
				size_t at = (seed >> 40) % 8 ? poff + (seed >> 20) % plen
				                             : (seed >> 20) % len;

				c[at] ^= (uint8_t)(1u << ((seed >> 33) % 8));
				if ((seed >> 37) % 4 == 0)
					c[at] = (uint8_t)(seed >> 50);
			}
			rc = codec_hint_parse(c, len, len, &h);
			assert_true(rc == 0 || rc == -EBADMSG || rc == -ENOENT);
			for (size_t k = 0; rc == 0 && k < h.n; k++) {
				const struct codec_hint_range *r = &h.r[k];

				assert_true(r->len > 0 && r->off + r->len <= len);
				if (r->dtype == AUTO) {
					assert_int_equal(r->row_elems, 0);
				} else {
					assert_true(r->dtype == FP32 || r->dtype == FP16 ||
					            r->dtype == BF16);
					assert_int_equal(r->len % (r->dtype == FP32 ? 4 : 2), 0);
				}
			}
			codec_hint_release(&h);
			free(c);
		}
		free(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_torch_fixtures),
		cmocka_unit_test(test_torch_truncated_file),
		cmocka_unit_test(test_torch_feed),
		cmocka_unit_test(test_torch_pickle_cases),
		cmocka_unit_test(test_torch_pickle_bounds),
		cmocka_unit_test(test_torch_pickle_corrupt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
