/*
 * gen_golden.c - writes the golden frames, the corrupt frames, MANIFEST and
 * sizes.csv into a directory (tests/golden).  Not run by the tests: run it
 * by hand after a deliberate format change, then review and commit:
 *   ninja -C build tests/codec/gen_golden && build/tests/codec/gen_golden tests/golden
 * It refuses nothing: it is the format's author, the test is the judge.
 * It rewrites every frame: keep the checked-in frames of earlier encoders
 * (e.g. those without the payload check) as they are, `git checkout` them,
 * and commit only the new ones and MANIFEST.  A frame whose bytes change
 * (same name, another encoding) goes to tests/golden/old/ first, named
 * COMMIT_NAME, with its line in old/MANIFEST (test_golden_old).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include <xxhash.h>

#include "codec/codec.h"
#include "tests/codec/gen.h"
#include "tests/golden/golden.h"

static int write_file(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[4096];
	FILE *f;
	int rc = -errno;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return rc;
	rc = fwrite(buf, 1, len, f) == len ? 0 : -EIO;
	if (fclose(f))
		rc = -EIO;
	return rc;
}

/* Rewrites the 16-bit header check after a deliberate header edit, so the
 * frame reaches the check under test instead of failing the header check. */
static void fix_hcheck(uint8_t *frame, uint32_t hlen)
{
	uint64_t h = XXH3_64bits(frame, hlen - 2);

	frame[hlen - 2] = (uint8_t)h;
	frame[hlen - 1] = (uint8_t)(h >> 8);
}

int main(int argc, char **argv)
{
	struct codec_ctx *ctx = codec_ctx_create();
	uint8_t *src = malloc(GOLDEN_MAX_RAW), *frame = malloc(codec_frame_bound(GOLDEN_MAX_RAW));
	uint8_t *ref = malloc(GOLDEN_MAX_RAW);
	char manifest[8192] = "", name[128];
	size_t mlen = 0;
	FILE *csv;

	if (argc != 2 || !ctx || !src || !frame || !ref) {
		fprintf(stderr, "usage: gen_golden DIR\n");
		return 2;
	}
	for (size_t i = 0; i < GOLDEN_COUNT; i++) {
		const struct golden_case *g = &golden_cases[i];
		struct codec_params p = {.level = g->level, .dtype = g->dtype, .elem_phase = g->phase,
		                         .row_elems = g->row, .bytes_cm = GOLDEN_CM(g->kind)};
		ssize_t n;

		p.ref_len = golden_input(g, src, ref);
		p.ref = p.ref_len ? ref : NULL;
		n = codec_frame_encode(ctx, &p, src, g->len, frame, codec_frame_bound(g->len));
		if (n < 0 || write_file(argv[1], g->name, frame, (size_t)n))
			return 1;
		{
			unsigned char md[SHA256_DIGEST_LENGTH];

			SHA256(src, g->len, md);
			mlen += (size_t)snprintf(manifest + mlen, sizeof(manifest) - mlen, "%s %zu ",
			                         g->name, g->len);
			for (int k = 0; k < SHA256_DIGEST_LENGTH; k++)
				mlen += (size_t)snprintf(manifest + mlen, sizeof(manifest) - mlen, "%02x", md[k]);
			manifest[mlen++] = '\n';
		}

		/* Corrupt twins of the fast bf16 frame and the raw frame. */
		if (!strcmp(g->name, "fast_bf16.frame") || !strcmp(g->name, "raw_text.frame")) {
			struct codec_frame_info info;
			const char *base = g->level == CODEC_LEVEL_RAW ? "raw" : "fast";
			uint8_t *bad = malloc((size_t)n);

			codec_frame_parse(frame, (size_t)n, &info);
			/* payload bit flip */
			memcpy(bad, frame, (size_t)n);
			bad[info.header_len + info.payload_len / 2] ^= 0x10;
			snprintf(name, sizeof(name), "corrupt_%s_flip.frame", base);
			write_file(argv[1], name, bad, (size_t)n);
			/* truncated payload */
			snprintf(name, sizeof(name), "corrupt_%s_truncated.frame", base);
			write_file(argv[1], name, frame, (size_t)n - 1);
			/* unknown version, header check made valid */
			memcpy(bad, frame, (size_t)n);
			bad[2] = 2;
			fix_hcheck(bad, info.header_len);
			snprintf(name, sizeof(name), "corrupt_%s_version.frame", base);
			write_file(argv[1], name, bad, (size_t)n);
			/* reserved flag bit */
			memcpy(bad, frame, (size_t)n);
			bad[5] |= 0x80;
			fix_hcheck(bad, info.header_len);
			snprintf(name, sizeof(name), "corrupt_%s_reserved.frame", base);
			write_file(argv[1], name, bad, (size_t)n);
			/* content checksum of other bytes */
			memcpy(bad, frame, (size_t)n);
			bad[info.header_len - 10] ^= 1;
			fix_hcheck(bad, info.header_len);
			snprintf(name, sizeof(name), "corrupt_%s_checksum.frame", base);
			write_file(argv[1], name, bad, (size_t)n);
			if (g->level == CODEC_LEVEL_FAST) {
				/* exponent stream's first code length nibble: the code is
				 * no longer complete */
				memcpy(bad, frame, (size_t)n);
				bad[info.header_len + 3] ^= 0x01;
				write_file(argv[1], "corrupt_fast_table.frame", bad, (size_t)n);
			}
			free(bad);
		}
		/* The payload check: a flipped payload bit, and a flipped check
		 * (header check made valid), fail before decoding. */
		if (!strcmp(g->name, "mix_bf16_psum.frame")) {
			struct codec_frame_info info;
			uint8_t *bad = malloc((size_t)n);

			codec_frame_parse(frame, (size_t)n, &info);
			memcpy(bad, frame, (size_t)n);
			bad[info.header_len + info.payload_len - 1] ^= 0x01;
			write_file(argv[1], "corrupt_mix_psum_payload.frame", bad, (size_t)n);
			memcpy(bad, frame, (size_t)n);
			bad[info.header_len - 14] ^= 0x01; /* psum, before checksum(8) and check(2) */
			fix_hcheck(bad, info.header_len);
			write_file(argv[1], "corrupt_mix_psum_field.frame", bad, (size_t)n);
			free(bad);
		}
	}
	if (write_file(argv[1], "MANIFEST", manifest, mlen))
		return 1;

	snprintf(name, sizeof(name), "%s/sizes.csv", argv[1]);
	csv = fopen(name, "w");
	if (!csv)
		return 1;
	fprintf(csv, "input,level,raw_len,size\n");
	for (size_t i = 0; i < SIZES_COUNT; i++) {
		const struct sizes_case *s = &sizes_cases[i];

		sizes_input(s, src);
		for (int level = 0; level < SIZES_LEVELS; level++) {
			struct codec_params p = {0};
			ssize_t n;

			if (sizes_params(sizes_level_name(level), &p))
				return 1;
			n = codec_frame_encode(ctx, &p, src, s->len, frame, codec_frame_bound(s->len));
			if (n < 0)
				return 1;
			fprintf(csv, "%s,%s,%zu,%zd\n", s->name, sizes_level_name(level), s->len, n);
		}
	}
	if (fclose(csv))
		return 1;
	free(src);
	free(ref);
	free(frame);
	codec_ctx_free(ctx);
	return 0;
}
