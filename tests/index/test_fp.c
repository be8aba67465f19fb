/*
 * test_fp.c - SHA-256 fingerprints against FIPS 180-2 / NIST vectors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "index/fp.h"

static void check(const void *buf, size_t len, const char *want)
{
	uint8_t fp[FP_LEN];
	char hex[2 * FP_LEN + 1];

	assert_int_equal(fp_compute(buf, len, fp), 0);
	fp_hex(fp, hex);
	assert_string_equal(hex, want);
}

static void test_vectors(void **state)
{
	(void)state;
	check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_million_a(void **state)
{
	char *buf = malloc(1000000);

	(void)state;
	assert_non_null(buf);
	memset(buf, 'a', 1000000);
	check(buf, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(buf);
}

static void test_hex(void **state)
{
	uint8_t fp[FP_LEN];
	char hex[2 * FP_LEN + 1];
	unsigned i;

	(void)state;
	for (i = 0; i < FP_LEN; i++)
		fp[i] = (uint8_t)(i * 0x11 + 0x0f);
	fp_hex(fp, hex);
	assert_int_equal(strlen(hex), 64);
	assert_memory_equal(hex, "0f20314253647586", 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_million_a),
		cmocka_unit_test(test_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
