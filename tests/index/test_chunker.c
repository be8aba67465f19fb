/*
 * test_chunker.c - FastCDC boundaries: bounds, content-definedness,
 * stability under insertion, streaming (cdc_cut_is_final) equivalence.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "index/chunker.h"
#include "index/chunker_i.h"

#define BUF_LEN (8u << 20)

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint8_t *random_buf(size_t n, uint64_t seed)
{
	uint8_t *b = malloc(n);
	size_t i;

	assert_non_null(b);
	for (i = 0; i < n; i += 8) {
		uint64_t v = splitmix(&seed);

		memcpy(b + i, &v, n - i < 8 ? n - i : 8);
	}
	return b;
}

/* Chunk the whole of buf; cut positions (chunk ends) into ends. */
static size_t chunk_all(const struct cdc *c, const uint8_t *buf, size_t n, size_t *ends,
                        size_t cap)
{
	size_t pos = 0, k = 0;

	while (pos < n) {
		size_t len = cdc_cut(c, buf + pos, n - pos);

		assert_true(len > 0 && len <= n - pos);
		pos += len;
		assert_true(k < cap);
		ends[k++] = pos;
	}
	return k;
}

static void test_gear_table(void **state)
{
	uint64_t s = 0x6d69786673474541ull;
	unsigned i, bits = 0;

	(void)state;
	for (i = 0; i < 256; i++) {
		uint64_t v = splitmix(&s);

		assert_int_equal(cdc_gear[i], v);
		bits += (unsigned)__builtin_popcountll(v);
	}
	/* Sanity: about half the bits set. */
	assert_true(bits > 256 * 28 && bits < 256 * 36);
}

static void test_params(void **state)
{
	struct cdc_params p;
	struct cdc c;

	(void)state;
	cdc_params_default(&p);
	assert_int_equal(p.min_size, 16 << 10);
	assert_int_equal(p.avg_size, 64 << 10);
	assert_int_equal(p.max_size, 256 << 10);
	assert_int_equal(cdc_init(&c, &p), 0);
	assert_int_equal(c.p.avg_size, p.avg_size);
	assert_true(__builtin_popcountll(c.mask_s) == 18);
	assert_true(__builtin_popcountll(c.mask_l) == 14);

	p.avg_size = 48 << 10;
	assert_int_equal(cdc_init(&c, &p), -EINVAL);
	cdc_params_default(&p);
	p.min_size = 63;
	assert_int_equal(cdc_init(&c, &p), -EINVAL);
	cdc_params_default(&p);
	p.min_size = p.avg_size;
	assert_int_equal(cdc_init(&c, &p), -EINVAL);
	cdc_params_default(&p);
	p.max_size = p.avg_size;
	assert_int_equal(cdc_init(&c, &p), -EINVAL);
	cdc_params_default(&p);
	p.max_size = (16u << 20) + 1;
	assert_int_equal(cdc_init(&c, &p), -EINVAL);
	p.max_size = 16u << 20;
	assert_int_equal(cdc_init(&c, &p), 0);
	p.min_size = 64;
	p.avg_size = 128;
	p.max_size = 256;
	assert_int_equal(cdc_init(&c, &p), 0);
}

static void test_short_and_final(void **state)
{
	struct cdc_params p;
	struct cdc c;
	uint8_t *buf = random_buf(BUF_LEN, 1);
	size_t cut;

	(void)state;
	cdc_params_default(&p);
	assert_int_equal(cdc_init(&c, &p), 0);
	assert_int_equal(cdc_cut(&c, buf, 0), 0);
	assert_int_equal(cdc_cut(&c, buf, 1), 1);
	assert_int_equal(cdc_cut(&c, buf, p.min_size), p.min_size);
	assert_false(cdc_cut_is_final(&c, p.min_size, p.min_size));
	assert_false(cdc_cut_is_final(&c, 1000, 1000));
	/* No cut within n < max: the cut is n and not final. */
	cut = cdc_cut(&c, buf, p.max_size);
	assert_true(cut > p.min_size && cut <= p.max_size);
	if (cut < p.max_size) {
		assert_true(cdc_cut_is_final(&c, cut, p.max_size));
		assert_int_equal(cdc_cut(&c, buf, cut), cut);
		assert_false(cdc_cut_is_final(&c, cut, cut));
		assert_int_equal(cdc_cut(&c, buf, cut - 1), cut - 1);
		/* More data never moves a final cut. */
		assert_int_equal(cdc_cut(&c, buf, BUF_LEN), cut);
	}
	assert_true(cdc_cut_is_final(&c, p.max_size, p.max_size));
	assert_true(cdc_cut_is_final(&c, p.max_size, BUF_LEN));
	free(buf);
}

static void check_bounds(const struct cdc_params *p, uint64_t seed, double lo, double hi)
{
	size_t *ends = malloc(BUF_LEN / 64 * sizeof(*ends));
	uint8_t *buf = random_buf(BUF_LEN, seed);
	size_t k, i, prev = 0;
	struct cdc c;
	double avg;

	assert_non_null(ends);
	assert_int_equal(cdc_init(&c, p), 0);
	k = chunk_all(&c, buf, BUF_LEN, ends, BUF_LEN / 64);
	for (i = 0; i < k; i++) {
		size_t len = ends[i] - prev;

		assert_true(len <= p->max_size);
		if (i + 1 < k)
			assert_true(len > p->min_size);
		prev = ends[i];
	}
	assert_int_equal(prev, BUF_LEN);
	avg = (double)BUF_LEN / (double)k;
	assert_true(avg > lo * p->avg_size && avg < hi * p->avg_size);
	free(buf);
	free(ends);
}

static void test_bounds(void **state)
{
	struct cdc_params p;

	(void)state;
	cdc_params_default(&p);
	/* Normalized chunking with min = avg/4 lands a little above avg. */
	check_bounds(&p, 2, 0.85, 1.3);
	p.min_size = 2048;
	p.avg_size = 8192;
	p.max_size = 65536;
	check_bounds(&p, 3, 0.85, 1.3);
	p.min_size = 64;
	p.avg_size = 256;
	p.max_size = 1024;
	check_bounds(&p, 4, 0.8, 1.4);
}

/* Boundaries are a function of content: insert bytes in the middle of a
 * buffer and the chunks before the insertion stay, those after resync. */
static void test_insertion(void **state)
{
	const size_t ins_at = BUF_LEN / 2 + 12345, ins_len = 777;
	size_t *a = malloc(4096 * sizeof(*a)), *b = malloc(4096 * sizeof(*b));
	uint8_t *buf = random_buf(BUF_LEN, 5), *buf2 = malloc(BUF_LEN + ins_len);
	size_t na, nb, i, j, same_before = 0, before = 0, differ_after = 0;
	struct cdc_params p;
	struct cdc c;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(buf2);
	memcpy(buf2, buf, ins_at);
	memset(buf2 + ins_at, 0x5a, ins_len);
	memcpy(buf2 + ins_at + ins_len, buf + ins_at, BUF_LEN - ins_at);
	cdc_params_default(&p);
	assert_int_equal(cdc_init(&c, &p), 0);
	na = chunk_all(&c, buf, BUF_LEN, a, 4096);
	nb = chunk_all(&c, buf2, BUF_LEN + ins_len, b, 4096);
	for (i = 0; i < na && a[i] <= ins_at; i++) {
		before++;
		same_before += i < nb && a[i] == b[i];
	}
	assert_int_equal(same_before, before);
	assert_true(before > 40);
	/* After the insertion every old end, shifted, is a new end except for
	 * the one or two chunks around the insertion point. */
	for (i = before, j = 0; i < na; i++) {
		while (j < nb && b[j] < a[i] + ins_len)
			j++;
		differ_after += !(j < nb && b[j] == a[i] + ins_len);
	}
	assert_true(differ_after <= 2);
	assert_true(nb <= na + 2 && na <= nb + 2);
	free(a);
	free(b);
	free(buf);
	free(buf2);
}

/* Feeding a stream in arbitrary pieces and cutting only at final points
 * yields exactly the boundaries of chunking the whole buffer. */
static void test_streaming(void **state)
{
	size_t *ends = malloc(4096 * sizeof(*ends));
	uint8_t *buf = random_buf(BUF_LEN, 6);
	size_t n, k = 0, start = 0, avail = 0;
	uint64_t rs = 99;
	struct cdc_params p;
	struct cdc c;

	(void)state;
	assert_non_null(ends);
	cdc_params_default(&p);
	assert_int_equal(cdc_init(&c, &p), 0);
	n = chunk_all(&c, buf, BUF_LEN, ends, 4096);
	while (start < BUF_LEN) {
		size_t cut;
		int eof;

		avail += 1 + splitmix(&rs) % (100u << 10);
		if (avail > BUF_LEN)
			avail = BUF_LEN;
		eof = avail == BUF_LEN;
		for (;;) {
			cut = cdc_cut(&c, buf + start, avail - start);
			if (cut == 0 || (!eof && !cdc_cut_is_final(&c, cut, avail - start)))
				break;
			start += cut;
			assert_true(k < n);
			assert_int_equal(start, ends[k]);
			k++;
		}
	}
	assert_int_equal(k, n);
	free(ends);
	free(buf);
}

/* Degenerate input: constant bytes still respect the bounds. */
static void test_constant(void **state)
{
	uint8_t *buf = calloc(1, BUF_LEN);
	size_t *ends = malloc(BUF_LEN / 64 * sizeof(*ends));
	size_t k, i, prev = 0;
	struct cdc_params p;
	struct cdc c;

	(void)state;
	assert_non_null(buf);
	assert_non_null(ends);
	cdc_params_default(&p);
	assert_int_equal(cdc_init(&c, &p), 0);
	k = chunk_all(&c, buf, BUF_LEN, ends, BUF_LEN / 64);
	for (i = 0; i < k; i++) {
		assert_true(ends[i] - prev <= p.max_size);
		assert_true(i + 1 == k || ends[i] - prev > p.min_size);
		/* Same content, same length. */
		assert_true(i + 1 == k || i == 0 || ends[i] - prev == ends[0]);
		prev = ends[i];
	}
	free(buf);
	free(ends);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gear_table),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_short_and_final),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_insertion),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_constant),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
