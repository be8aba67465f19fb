/*
 * bench_chunker.c - cdc_cut throughput on random data (not a test: speed
 * depends on the machine).  Usage: bench_chunker [MiB] [rounds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index/chunker.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 256;
	int rounds = argc > 2 ? atoi(argv[2]) : 5, r;
	size_t n = mib << 20, i, pos, chunks = 0;
	uint64_t s = 1;
	struct cdc_params p;
	struct cdc c;
	double best = 1e9, t0;
	uint8_t *buf = malloc(n);

	if (!buf)
		return 1;
	for (i = 0; i + 8 <= n; i += 8) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		memcpy(buf + i, &s, 8);
	}
	cdc_params_default(&p);
	if (cdc_init(&c, &p) < 0)
		return 1;
	for (r = 0; r < rounds; r++) {
		t0 = now();
		for (pos = 0, chunks = 0; pos < n; chunks++)
			pos += cdc_cut(&c, buf + pos, n - pos);
		t0 = now() - t0;
		if (t0 < best)
			best = t0;
	}
	printf("cdc_cut: %zu MiB, %zu chunks (avg %.0f B), best of %d: %.0f MB/s\n", mib, chunks,
	       (double)n / (double)chunks, rounds, (double)n / best / 1e6);
	free(buf);
	return 0;
}
