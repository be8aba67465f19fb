/*
 * mixtune - measure the CODEC_LEVEL_MIX coder on a corpus file.
 *
 * usage: mixtune [-t bf16|fp16|fp32|other|auto] [-c chunk] [-n max_bytes]
 *                [-s skip_bytes] [-i file.idx] [-r row_elems] [-R ref_file] [-P] FILE
 *
 * Cuts FILE into fixed-size chunks (default 64 KiB), codes each with the
 * mix level directly (no frame), decodes and compares, and prints the
 * payload ratio and single-thread encode/decode MB/s.  -i reads a tensor
 * table written by tools/bench/corpus.py ("offset bytes row_elems" lines)
 * to pass each chunk the row length of the tensor it starts in.  -R codes
 * every chunk against the same byte range of ref_file (series coding).  -P
 * runs the portable instances of the hot loops instead of the CPU's best.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec/codec_i.h"
#include "codec/mix_model_i.h"

struct tensor {
	size_t off, len;
	unsigned row;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the machine is shared */
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint8_t *slurp(const char *path, size_t skip, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = (size_t)ftell(f);
	n = n > skip ? n - skip : 0;
	if (max && n > max)
		n = max;
	fseek(f, (long)skip, SEEK_SET);
	buf = malloc(n ? n : 1);
	if (buf && fread(buf, 1, n, f) != n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

static struct tensor *read_idx(const char *path, size_t *count)
{
	FILE *f = fopen(path, "r");
	struct tensor *t = NULL;
	size_t n = 0, cap = 0, off, len;
	unsigned row;

	if (!f)
		return NULL;
	while (fscanf(f, "%zu %zu %u", &off, &len, &row) == 3) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			t = realloc(t, cap * sizeof(*t));
			if (!t)
				break;
		}
		t[n++] = (struct tensor){off, len, row};
	}
	fclose(f);
	*count = n;
	return t;
}

static unsigned row_at(const struct tensor *t, size_t n, size_t pos)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (t[mid].off + t[mid].len <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && t[lo].off <= pos ? t[lo].row : 0;
}

static int parse_dtype(const char *s)
{
	static const char *names[] = {"other", "bf16", "fp16", "fp32"};

	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return CODEC_DTYPE_AUTO;
}

int main(int argc, char **argv)
{
	int dtype = CODEC_DTYPE_AUTO, opt;
	size_t chunk = 65536, max = 0, skip = 0, len, rlen = 0, nt = 0;
	unsigned fixrow = 0;
	const char *idx = NULL, *refpath = NULL;
	struct tensor *tens = NULL;
	uint8_t *src, *ref = NULL, *dst, *out;
	struct codec_ctx ectx = {0}, dctx = {0};
	double tenc = 0, tdec = 0;
	size_t total = 0, coded = 0, raw = 0, nchunks = 0, decoded = 0;
	int bad = 0, portable = 0;

	while ((opt = getopt(argc, argv, "t:c:n:s:i:r:R:P")) != -1) {
		switch (opt) {
		case 't': dtype = parse_dtype(optarg); break;
		case 'c': chunk = strtoul(optarg, NULL, 0); break;
		case 'n': max = strtoul(optarg, NULL, 0); break;
		case 's': skip = strtoul(optarg, NULL, 0); break;
		case 'i': idx = optarg; break;
		case 'r': fixrow = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'R': refpath = optarg; break;
		case 'P': portable = 1; break;
		default:
			fprintf(stderr, "usage: mixtune [-t dtype] [-c chunk] [-n max] [-s skip] "
			                "[-i idx] [-r row] [-R ref] [-P] FILE\n");
			return 2;
		}
	}
	if (optind >= argc || !chunk)
		return 2;
	src = slurp(argv[optind], skip, max, &len);
	if (!src) {
		perror(argv[optind]);
		return 1;
	}
	if (refpath && !(ref = slurp(refpath, skip, max, &rlen))) {
		perror(refpath);
		return 1;
	}
	if (idx && !(tens = read_idx(idx, &nt))) {
		perror(idx);
		return 1;
	}
	if (portable && (mix_impl_force(&ectx, 0) || mix_impl_force(&dctx, 0)))
		return 1;
	dst = malloc(chunk + 64);
	out = malloc(chunk);
	if (!dst || !out)
		return 1;
	for (size_t pos = 0; pos < len; pos += chunk) {
		size_t n = len - pos < chunk ? len - pos : chunk;
		struct codec_lvl_args a = {0};
		uint32_t phase = 0;
		ssize_t el, dl;
		double t0, t1, t2;

		a.dtype = dtype;
		if (dtype == CODEC_DTYPE_AUTO)
			a.dtype = codec_dtype_detect(src + pos, n, &phase);
		a.elem_phase = phase;
		a.row_elems = fixrow ? fixrow : tens ? row_at(tens, nt, skip + pos) : 0;
		if (ref && pos < rlen) {
			a.ref = ref + pos;
			a.ref_len = rlen - pos < n ? rlen - pos : n;
		}
		t0 = now();
		el = mix_encode(&ectx, &a, src + pos, n, dst, n - 1);
		t1 = now();
		tenc += t1 - t0;
		total += n;
		nchunks++;
		if (el == -ENOSPC) {
			coded += n;
			raw++;
			continue;
		}
		if (el < 0) {
			fprintf(stderr, "encode error %zd at %zu\n", el, pos);
			return 1;
		}
		coded += (size_t)el;
		decoded += n;
		if (a.ref == NULL)
			a.ref_len = 0;
		dl = mix_decode(&dctx, &a, dst, (size_t)el, out, n);
		t2 = now();
		tdec += t2 - t1;
		if (dl != (ssize_t)n || memcmp(out, src + pos, n)) {
			fprintf(stderr, "round trip FAILED at %zu (%zd)\n", pos, dl);
			bad = 1;
		}
	}
	printf("%-12s %10zu B %6zu chunks (%zu raw)  ratio %.4f  enc %6.1f MB/s  dec %6.1f MB/s%s\n",
	       argv[optind] + (strrchr(argv[optind], '/') ? strrchr(argv[optind], '/') - argv[optind] + 1 : 0),
	       total, nchunks, raw, (double)coded / (double)total, total / tenc / 1e6,
	       decoded / (tdec > 0 ? tdec : 1) / 1e6, bad ? "  ROUNDTRIP FAIL" : "");
#ifdef MIX_STATS
	{
		extern double mix_stats[8];
		static const char *f[] = {"leaf", "zero/esc", "mant top", "plain", "ref", "sparse"};
		size_t nel = total / (dtype == CODEC_DTYPE_FP32 ? 4 : 2);

		for (int i = 0; i < 6; i++)
			printf("  %-8s %.4f bits/elem\n", f[i], mix_stats[i] / (double)nel);
	}
#endif
	mix_state_free(ectx.mix);
	mix_state_free(dctx.mix);
	free(src);
	free(ref);
	free(dst);
	free(out);
	free(tens);
	return bad;
}
