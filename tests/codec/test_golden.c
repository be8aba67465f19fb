/*
 * test_golden.c - the checked-in frames under tests/golden must decode to
 * the bytes named in MANIFEST (SHA-256), corrupt_*.frame must fail with
 * -EBADMSG, and compressed sizes must not grow more than 1% over
 * sizes.csv.  Usage: test_golden DIR (meson passes tests/golden).
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "codec/codec.h"
#include "codec/mix_model_i.h"
#include "tests/golden/golden.h"

static const char *golden_dir = "tests/golden";

static uint8_t *slurp(const char *name, size_t *len)
{
	char path[4096];
	FILE *f;
	uint8_t *buf = NULL;
	long n;

	snprintf(path, sizeof(path), "%s/%s", golden_dir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

/* The decode of frame NAME gave D bytes in OUT: the MANIFEST's length and
 * SHA-256 (hex). */
static void check_decoded(const char *name, ssize_t d, const uint8_t *out, size_t raw_len,
                          const char *hex)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char got[65];

	if (d != (ssize_t)raw_len)
		print_error("%s: decode %zd\n", name, d);
	assert_int_equal(d, (ssize_t)raw_len);
	SHA256(out, raw_len, md);
	for (int k = 0; k < SHA256_DIGEST_LENGTH; k++)
		snprintf(got + 2 * k, 3, "%02x", md[k]);
	assert_string_equal(got, hex);
}

static void test_golden_decode(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	size_t mlen, checked = 0;
	char *manifest = (char *)slurp("MANIFEST", &mlen), *line, *save = NULL;
	uint8_t *out = malloc(GOLDEN_MAX_RAW), *src = malloc(GOLDEN_MAX_RAW);
	uint8_t *ref = malloc(GOLDEN_MAX_RAW);
	size_t series = 0;

	assert_non_null(manifest);
	manifest[mlen] = 0;
	for (line = strtok_r(manifest, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], hex[65];
		size_t raw_len, flen, ref_len = 0;
		uint8_t *frame;
		ssize_t d;

		assert_int_equal(sscanf(line, "%127s %zu %64s", name, &raw_len, hex), 3);
		frame = slurp(name, &flen);
		assert_non_null(frame);
		for (size_t i = 0; i < GOLDEN_COUNT; i++) {
			const struct golden_case *g = &golden_cases[i];
			struct codec_frame_info info;

			if (strcmp(g->name, name) || g->refv == GOLDEN_REF_NONE)
				continue;
			/* a series frame: carries REF and its residual kind,
			 * and needs its reference */
			ref_len = golden_input(g, src, ref);
			assert_int_equal(codec_frame_parse(frame, flen, &info), 0);
			assert_true(info.flags & CODEC_FLAG_REF);
			assert_int_equal(!!(frame[info.header_len + 1] & MIX_LZ_DELTA),
			                 g->refv != GOLDEN_REF_XOR);
			assert_true(codec_frame_decode(ctx, frame, flen, out, GOLDEN_MAX_RAW, NULL, 0) <
			            0);
			series++;
		}
		d = codec_frame_decode(ctx, frame, flen, out, GOLDEN_MAX_RAW, ref_len ? ref : NULL,
		                       ref_len);
		check_decoded(name, d, out, raw_len, hex);
		free(frame);
		checked++;
	}
	assert_true(checked >= GOLDEN_COUNT);
	assert_int_equal(series, 6);
	free(out);
	free(src);
	free(ref);
	free(manifest);
	codec_ctx_free(ctx);
}

/* Frames of earlier format versions (old/, never regenerated: a format
 * change copies the frames it would replace there first) decode to the
 * bytes their MANIFEST names, in both instances of the mix decoder:
 * 4a7946b_mix_* are float payloads without the layout byte, 0deb176_* and
 * 588bb1e_* SPARSE chunks of the value tree, without and with the layout
 * byte (FORMAT.md 4.2). */
static void test_golden_old(void **state)
{
	struct codec_ctx *ctx[2] = {codec_ctx_create(), codec_ctx_create()};
	size_t mlen, checked = 0;
	char *manifest = (char *)slurp("old/MANIFEST", &mlen), *line, *save = NULL;
	uint8_t *out = malloc(GOLDEN_MAX_RAW);
	int impls = 1;

	assert_non_null(manifest);
	assert_int_equal(mix_impl_force(ctx[0], 0), 0);
	if (mix_impl_force(ctx[1], 1) == 0)
		impls = 2;
	else
		print_message("no AVX2 instance on this build or CPU: portable decoder only\n");
	manifest[mlen] = 0;
	for (line = strtok_r(manifest, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], path[160], hex[65];
		size_t raw_len, flen;
		uint8_t *frame;

		assert_int_equal(sscanf(line, "%127s %zu %64s", name, &raw_len, hex), 3);
		snprintf(path, sizeof(path), "old/%s", name);
		frame = slurp(path, &flen);
		assert_non_null(frame);
		for (int i = 0; i < impls; i++) {
			ssize_t d;

			memset(out, 0, raw_len);
			d = codec_frame_decode(ctx[i], frame, flen, out, GOLDEN_MAX_RAW, NULL, 0);
			check_decoded(path, d, out, raw_len, hex);
		}
		free(frame);
		checked++;
	}
	assert_true(checked >= 7);
	free(out);
	free(manifest);
	codec_ctx_free(ctx[0]);
	codec_ctx_free(ctx[1]);
}

static void test_golden_corrupt(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	uint8_t *out = malloc(GOLDEN_MAX_RAW);
	DIR *d = opendir(golden_dir);
	struct dirent *e;
	size_t checked = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t flen;
		uint8_t *frame;
		ssize_t rc;

		if (strncmp(e->d_name, "corrupt_", 8))
			continue;
		frame = slurp(e->d_name, &flen);
		assert_non_null(frame);
		rc = codec_frame_decode(ctx, frame, flen, out, GOLDEN_MAX_RAW, NULL, 0);
		if (rc != -EBADMSG)
			print_error("%s: decode %zd\n", e->d_name, rc);
		assert_int_equal(rc, -EBADMSG);
		free(frame);
		checked++;
	}
	closedir(d);
	assert_true(checked >= 8);
	free(out);
	codec_ctx_free(ctx);
}

static void test_sizes(void **state)
{
	struct codec_ctx *ctx = codec_ctx_create();
	size_t clen, checked = 0;
	char *csv = (char *)slurp("sizes.csv", &clen), *line, *save = NULL;
	uint8_t *src = malloc(GOLDEN_MAX_RAW), *frame = malloc(codec_frame_bound(GOLDEN_MAX_RAW));

	assert_non_null(csv);
	csv[clen] = 0;
	for (line = strtok_r(csv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char input[64], level[16];
		size_t raw_len, want;
		const struct sizes_case *s = NULL;
		struct codec_params p = {.dtype = CODEC_DTYPE_AUTO};
		ssize_t n;

		if (sscanf(line, "%63[^,],%15[^,],%zu,%zu", input, level, &raw_len, &want) != 4)
			continue; /* the header row */
		for (size_t i = 0; i < SIZES_COUNT; i++)
			if (!strcmp(sizes_cases[i].name, input))
				s = &sizes_cases[i];
		assert_non_null(s);
		assert_int_equal(s->len, raw_len);
		assert_int_equal(sizes_params(level, &p), 0);
		sizes_input(s, src);
		n = codec_frame_encode(ctx, &p, src, s->len, frame, codec_frame_bound(s->len));
		assert_true(n > 0);
		if ((size_t)n * 100 > want * 101)
			print_error("%s at %s: %zd bytes, sizes.csv says %zu\n", input, level, n, want);
		assert_true((size_t)n * 100 <= want * 101);
		if ((size_t)n * 100 < want * 99)
			print_message("%s at %s: %zd bytes, better than sizes.csv (%zu): regenerate it\n",
			              input, level, n, want);
		checked++;
	}
	assert_int_equal(checked, SIZES_COUNT * SIZES_LEVELS);
	free(src);
	free(frame);
	free(csv);
	codec_ctx_free(ctx);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_decode),
		cmocka_unit_test(test_golden_old),
		cmocka_unit_test(test_golden_corrupt),
		cmocka_unit_test(test_sizes),
	};

	if (argc > 1)
		golden_dir = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
