/*
 * fixture.h - helpers the hint tests share: little-endian fields and
 * committed fixture files read whole (cmocka asserts on any failure).
 * Include after <cmocka.h>.
 */
#ifndef MIXFS_TESTS_CODEC_FIXTURE_H
#define MIXFS_TESTS_CODEC_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline uint64_t rd(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* dir/name, whole, in a malloc'd buffer; *len its length (> 0). */
static inline uint8_t *load_fixture(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	FILE *f;
	uint8_t *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

#endif
