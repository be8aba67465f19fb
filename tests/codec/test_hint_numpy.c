/*
 * test_hint_numpy.c - hints from NumPy files (codec/hint.c): .npy headers
 * and the arrays of an .npz, on real files written by numpy (tests/codec/
 * numpy, made by gen_numpy.py), the states the write path sees while
 * Python's zipfile writes an .npz (zero sizes, streamed entries), headers
 * written by hand for each form numpy's reader accepts, and malformed
 * ones, which must give a clean error or an ordinary entry.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
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

#ifndef NUMPY_FIXTURES
#error "NUMPY_FIXTURES (the directory of the .npy / .npz files) must be defined"
#endif

enum { AUTO = CODEC_DTYPE_AUTO, OTHER = CODEC_DTYPE_OTHER, BF16 = CODEC_DTYPE_BF16,
       FP16 = CODEC_DTYPE_FP16, FP32 = CODEC_DTYPE_FP32 };

static uint8_t *load(const char *name, size_t *len)
{
	return load_fixture(NUMPY_FIXTURES, name, len);
}

/* Where the array of the .npy at p starts (from its own header). */
static uint64_t npy_data(const uint8_t *p)
{
	assert_memory_equal(p, "\x93NUMPY", 6);
	return p[6] == 1 ? 10 + rd(p + 8, 2) : 12 + rd(p + 8, 4);
}

/* ---- .npy ---------------------------------------------------------------- */

struct npy_expect {
	const char *file;
	size_t n; /* ranges: 0 for arrays without a fixed layout */
	int dtype;
	uint64_t len;
	uint32_t row;
};

/* What gen_numpy.py saved (see there). */
static const struct npy_expect npys[] = {
	{ "f32.npy", 1, FP32, 3 * 5 * 4, 5 },
	{ "f16.npy", 1, FP16, 7 * 2, 7 },
	{ "fort.npy", 1, FP32, 4 * 6 * 4, 4 }, /* Fortran order: the first dimension is fastest */
	{ "i64.npy", 1, OTHER, 10 * 8, 0 },
	{ "v2.npy", 1, FP32, 2 * 3 * 4, 3 },
	{ "big.npy", 1, OTHER, 2 * 2 * 4, 0 }, /* big-endian: no float model */
	{ "obj.npy", 0, 0, 0, 0 },
	{ "rec.npy", 0, 0, 0, 0 },
};

static void test_npy_fixtures(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(npys) / sizeof(npys[0]); i++) {
		const struct npy_expect *x = &npys[i];
		struct codec_hint h;
		size_t len;
		uint8_t *b = load(x->file, &len);

		/* whole, without and with the file's size */
		for (int sized = 0; sized < 2; sized++) {
			assert_int_equal(codec_hint_parse(b, len, sized ? len : 0, &h), 0);
			assert_int_equal(h.format, CODEC_HINT_NPY);
			assert_int_equal(h.need, 0);
			if (h.n != x->n)
				fail_msg("%s: %zu ranges, want %zu", x->file, h.n, x->n);
			if (x->n) {
				assert_int_equal(h.r[0].off, npy_data(b));
				assert_int_equal(h.r[0].off + h.r[0].len, len);
				if (h.r[0].dtype != x->dtype || h.r[0].len != x->len ||
				    h.r[0].row_elems != x->row)
					fail_msg("%s: dtype %d len %llu row %u, want %d %llu %u", x->file,
					         h.r[0].dtype, (unsigned long long)h.r[0].len,
					         h.r[0].row_elems, x->dtype, (unsigned long long)x->len,
					         x->row);
				assert_int_equal(h.r[0].key, 0); /* an array without a name */
			}
			codec_hint_release(&h);
		}
		/* a file shorter than its header says */
		if (x->n)
			assert_int_equal(codec_hint_parse(b, len - 1, len - 1, &h), -EBADMSG);
		free(b);
	}
}

/* The write path parses what has arrived: the header whole gives the
 * range (its length from the shape), less asks for the header's bytes. */
static void test_npy_head(void **state)
{
	size_t len;
	uint8_t *b = load("f32.npy", &len);
	uint64_t data = npy_data(b);
	struct codec_hint h;

	(void)state;
	for (size_t l = 0; l < data; l++) {
		assert_int_equal(codec_hint_parse(b, l, 0, &h), -EAGAIN);
		assert_true(h.need > l && h.need <= data);
		assert_int_equal(h.n, 0);
	}
	for (size_t l = (size_t)data; l <= len; l++) {
		assert_int_equal(codec_hint_parse(b, l, 0, &h), 0);
		assert_int_equal(h.n, 1);
		assert_int_equal(h.r[0].len, 60);
		codec_hint_release(&h);
	}
	free(b);
}

/* A .npy of major version ver whose header is text (padded to 64 bytes
 * with spaces and a newline, as numpy pads), followed by nbytes of zeros. */
static size_t npy_make(uint8_t *out, size_t cap, unsigned ver, const char *text, size_t nbytes)
{
	size_t pre = ver == 1 ? 10 : 12, tl = strlen(text), hl = tl + 1;

	hl += (64 - (pre + hl) % 64) % 64;
	assert_true(pre + hl + nbytes <= cap);
	memcpy(out, "\x93NUMPY", 6);
	out[6] = (uint8_t)ver;
	out[7] = 0;
	for (unsigned i = 0; i < (ver == 1 ? 2u : 4u); i++)
		out[8 + i] = (uint8_t)(hl >> (8 * i));
	memcpy(out + pre, text, tl);
	memset(out + pre + tl, ' ', hl - tl - 1);
	out[pre + hl - 1] = '\n';
	memset(out + pre + hl, 0, nbytes);
	return pre + hl + nbytes;
}

/* Forms numpy's reader (ast.literal_eval) accepts, as other writers
 * spell them. */
static void test_npy_header_forms(void **state)
{
	static const struct {
		unsigned ver;
		const char *text;
		int dtype;
		uint64_t len;
		uint32_t row;
	} ok[] = {
		{ 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", FP32, 48, 4 },
		{ 1, "{\"descr\": \"<f2\", \"fortran_order\": False, \"shape\": (6,)}", FP16, 12, 6 },
		{ 1, "{'shape': (2, 5), 'fortran_order': False, 'descr': '<f4'}", FP32, 40, 5 },
		{ 1, "{'descr':'<f4','fortran_order':True,'shape':(2,5)}", FP32, 40, 2 },
		{ 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 4L), }", FP32, 48, 4 },
		{ 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", FP32, 4, 0 },
		{ 1, "{'descr': '|V2', 'fortran_order': False, 'shape': (8, 8), }", AUTO, 128, 0 },
		{ 1, "{'descr': '<V2', 'fortran_order': False, 'shape': (4,), }", AUTO, 8, 0 },
		/* ml_dtypes' bfloat16 by name, as a workaround for np.save writes it */
		{ 1, "{'descr': 'bfloat16', 'fortran_order': False, 'shape': (4, 6), }", BF16, 48, 6 },
		{ 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", OTHER, 24, 0 },
		{ 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }", OTHER, 5, 0 },
		{ 1, "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", OTHER, 24, 0 },
		{ 1, "{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (2,), }", OTHER, 16, 0 },
		{ 1, "{'descr': '>f2', 'fortran_order': False, 'shape': (2,), }", OTHER, 4, 0 },
		{ 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }", FP32, 0, 0 },
		{ 1, "{'descr': '<f4', 'extra': [1, (2, 'x'), {'k': None}], 'fortran_order': False, "
		     "'shape': (2, 2)}", FP32, 16, 2 },
		{ 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", FP32, 24, 3 },
	};
	uint8_t b[4096];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		size_t len = npy_make(b, sizeof(b), ok[i].ver, ok[i].text, (size_t)ok[i].len);
		struct codec_hint h;

		if (codec_hint_parse(b, len, len, &h) != 0)
			fail_msg("refused: %s", ok[i].text);
		assert_int_equal(h.format, CODEC_HINT_NPY);
		if (ok[i].len == 0) { /* an empty array: nothing to hint */
			assert_int_equal(h.n, 0);
		} else {
			assert_int_equal(h.n, 1);
			if (h.r[0].dtype != ok[i].dtype || h.r[0].len != ok[i].len ||
			    h.r[0].row_elems != ok[i].row)
				fail_msg("%s: dtype %d len %llu row %u", ok[i].text, h.r[0].dtype,
				         (unsigned long long)h.r[0].len, h.r[0].row_elems);
			assert_int_equal(h.r[0].off, len - ok[i].len);
		}
		codec_hint_release(&h);
	}
}

/* Malformed headers: -EBADMSG, never a range. */
static void test_npy_header_bad(void **state)
{
	static const char *const bad[] = {
		"{'descr': '<f4', 'fortran_order': False}",                  /* no shape */
		"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)",  /* no '}' */
		"{'descr': '<f4, 'fortran_order': False, 'shape': (3,)}",    /* quote */
		"{'descr': 'f4', 'fortran_order': False, 'shape': (3,)}",    /* no order */
		"{'descr': '<x4', 'fortran_order': False, 'shape': (3,)}",   /* kind */
		"{'descr': '<f4z', 'fortran_order': False, 'shape': (3,)}",  /* size */
		"{'descr': '<f', 'fortran_order': False, 'shape': (3,)}",    /* no size */
		"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (3,)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (3 4)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} junk",
		"{'descr': '<f4', 'x': ((((((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))))))), "
		"'shape': (3,)}",
		"['descr', '<f4']",
		"",
	};
	uint8_t b[4096];
	struct codec_hint h;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = npy_make(b, sizeof(b), 1, bad[i], 12);
		if (codec_hint_parse(b, len, len, &h) != -EBADMSG)
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(h.n, 0);
	}
	/* versions 0 and 4 do not exist; a header of more than 1 MiB is not numpy's */
	len = npy_make(b, sizeof(b), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", 12);
	for (unsigned v = 0; v < 5; v += 4) {
		b[6] = (uint8_t)v;
		assert_int_equal(codec_hint_parse(b, len, len, &h), -EBADMSG);
	}
	len = npy_make(b, sizeof(b), 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", 12);
	b[10] = 0x20; /* 2 MiB + the real length */
	assert_int_equal(codec_hint_parse(b, len, len, &h), -EBADMSG);
}

/* ---- .npz ---------------------------------------------------------------- */

/* The .npy inside the zip entry named name (whole name): the array's file
 * offset and length, from the entry's data and the array's header. */
static void npz_array(const uint8_t *b, size_t len, const char *name, uint64_t *off)
{
	size_t nl = strlen(name);

	for (size_t p = 0; p + 30 + nl <= len; p++) {
		if (rd(b + p, 4) != 0x04034b50u || rd(b + p + 26, 2) != nl ||
		    memcmp(b + p + 30, name, nl))
			continue;
		size_t d = p + 30 + nl + (size_t)rd(b + p + 28, 2);

		*off = d + npy_data(b + d);
		return;
	}
	fail_msg("no entry %s", name);
}

/* savez.npz's arrays: w float32 (8, 16), b float16 (16,), step int64 (). */
static void check_savez(const uint8_t *b, size_t len, const struct codec_hint *h)
{
	static const struct {
		const char *name;
		int dtype;
		uint64_t len;
		uint32_t row;
	} x[] = { { "w.npy", FP32, 512, 16 }, { "b.npy", FP16, 32, 16 }, { "step.npy", OTHER, 8, 0 } };

	assert_int_equal(h->format, CODEC_HINT_TORCH_ZIP);
	assert_int_equal(h->n, 3);
	for (size_t i = 0; i < 3; i++) {
		uint64_t off;

		npz_array(b, len, x[i].name, &off);
		assert_int_equal(h->r[i].off, off);
		if (h->r[i].dtype != x[i].dtype || h->r[i].len != x[i].len || h->r[i].row_elems != x[i].row)
			fail_msg("%s: dtype %d len %llu row %u", x[i].name, h->r[i].dtype,
			         (unsigned long long)h->r[i].len, h->r[i].row_elems);
		assert_int_not_equal(h->r[i].key, 0);
	}
	assert_int_not_equal(h->r[0].key, h->r[1].key);
	assert_int_not_equal(h->r[1].key, h->r[2].key);
}

/* Every local header's sizes set to zero (the zip64 extra's too): the
 * state of an .npz while Python's zipfile writes it to a seekable file
 * (the real sizes are written over them once each entry is done). */
static void zero_sizes(uint8_t *b, size_t len)
{
	for (size_t p = 0; p + 30 <= len; p++) {
		if (rd(b + p, 4) != 0x04034b50u)
			continue;
		size_t nl = (size_t)rd(b + p + 26, 2), xl = (size_t)rd(b + p + 28, 2);

		memset(b + p + 14, 0, 12); /* CRC, compressed and real size */
		for (size_t x = p + 30 + nl; x + 4 <= p + 30 + nl + xl;) {
			size_t sz = (size_t)rd(b + x + 2, 2);

			if (rd(b + x, 2) == 1)
				memset(b + x + 4, 0, sz);
			x += 4 + sz;
		}
	}
}

static void feed_all(struct codec_hint *h, const uint8_t *b, size_t len, size_t w0)
{
	size_t w = w0, feeds = 0;

	while (h->need && h->need < len) {
		uint64_t at = h->need;
		size_t n = len - at < w ? (size_t)(len - at) : w;
		uint8_t *c = malloc(n);

		assert_non_null(c);
		memcpy(c, b + at, n);
		assert_true(codec_hint_feed(h, c, n, at) >= 0);
		free(c);
		w = h->need == at ? 2 * w : w0; /* the piece ended in a header */
		assert_true(++feeds < 10000);
	}
}

static void test_npz_files(void **state)
{
	static const char *const files[] = { "savez.npz", "stream.npz" };

	(void)state;
	for (size_t f = 0; f < 2; f++) {
		size_t len;
		uint8_t *b = load(files[f], &len);
		struct codec_hint h;
		uint64_t keys[3];

		assert_int_equal(codec_hint_parse(b, len, len, &h), 0);
		check_savez(b, len, &h);
		for (int i = 0; i < 3; i++)
			keys[i] = h.r[i].key;
		codec_hint_release(&h);
		/* the head of every length, the rest fed in pieces as the
		 * write path feeds it */
		for (size_t l = 8; l <= len; l++) {
			static const size_t step[] = { 13, 100, 4096 };

			for (size_t s = 0; s < 3; s++) {
				int rc = codec_hint_parse(b, l, 0, &h);

				if (rc == -EAGAIN)
					continue; /* the first entry's headers are not whole */
				assert_int_equal(rc, 0);
				feed_all(&h, b, len, step[s]);
				check_savez(b, len, &h);
				/* the same names, the same keys in both files */
				for (int i = 0; i < 3; i++)
					assert_int_equal(h.r[i].key, keys[i]);
				codec_hint_release(&h);
			}
		}
		free(b);
	}
}

static void test_npz_unwritten_sizes(void **state)
{
	size_t len;
	uint8_t *b = load("savez.npz", &len);
	struct codec_hint h;

	(void)state;
	zero_sizes(b, len);
	/* the write path's view: no file size, the head then the rest */
	for (size_t l = 256; l <= len; l += 7) {
		assert_int_equal(codec_hint_parse(b, l, 0, &h), 0);
		feed_all(&h, b, len, 64);
		check_savez(b, len, &h);
		codec_hint_release(&h);
	}
	free(b);
}

/* The array's element phase reaches the codec: zip entries put arrays at
 * any offset (w's data starts at an odd one in savez.npz). */
static void test_npz_phase(void **state)
{
	size_t len;
	uint8_t *b = load("savez.npz", &len);
	struct codec_hint h;
	struct codec_params p;

	(void)state;
	assert_int_equal(codec_hint_parse(b, len, len, &h), 0);
	for (uint64_t off = 0; off < 64; off++) {
		assert_int_equal(codec_hint_chunk(&h, h.r[0].off - off, 512, &p), 0);
		assert_int_equal(p.dtype, FP32);
		assert_int_equal(p.row_elems, 16);
		assert_int_equal(p.elem_phase, off % 4);
	}
	codec_hint_release(&h);
	free(b);
}

/* np.savez_compressed deflates: no ranges, and no error. */
static void test_npz_deflate(void **state)
{
	size_t len;
	uint8_t *b = load("deflate.npz", &len);
	struct codec_hint h;

	(void)state;
	assert_int_equal(codec_hint_parse(b, len, len, &h), 0);
	assert_int_equal(h.n, 0);
	codec_hint_release(&h);
	free(b);
}

/* An entry named .npy that is not the array its header claims is an
 * ordinary entry: no range, and the walk goes on by the zip's sizes. */
static void test_npz_not_npy(void **state)
{
	size_t len;
	uint8_t *b = load("savez.npz", &len), *c = malloc(len);
	struct codec_hint h;
	uint64_t off;

	(void)state;
	assert_non_null(c);
	/* w's array header damaged */
	memcpy(c, b, len);
	npz_array(c, len, "w.npy", &off);
	c[off - 40] = '@';
	assert_int_equal(codec_hint_parse(c, len, len, &h), 0);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.r[0].dtype, FP16);
	assert_int_equal(h.r[1].dtype, OTHER);
	codec_hint_release(&h);
	/* w's header claims one row more than the entry holds */
	memcpy(c, b, len);
	{
		uint8_t *s = memmem(c, len, "(8, 16)", 7);

		assert_non_null(s);
		s[1] = '9';
	}
	assert_int_equal(codec_hint_parse(c, len, len, &h), 0);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.r[0].dtype, FP16);
	codec_hint_release(&h);
	/* with zero sizes nothing but the array header says where w ends:
	 * the walk goes wrong there and stops (the central directory is not
	 * a local header), keeping w */
	zero_sizes(c, len);
	assert_int_equal(codec_hint_parse(c, len, 0, &h), 0);
	assert_true(h.n <= 1);
	codec_hint_release(&h);
	free(c);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_npy_fixtures),
		cmocka_unit_test(test_npy_head),
		cmocka_unit_test(test_npy_header_forms),
		cmocka_unit_test(test_npy_header_bad),
		cmocka_unit_test(test_npz_files),
		cmocka_unit_test(test_npz_unwritten_sizes),
		cmocka_unit_test(test_npz_phase),
		cmocka_unit_test(test_npz_deflate),
		cmocka_unit_test(test_npz_not_npy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
