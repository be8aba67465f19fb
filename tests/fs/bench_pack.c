/*
 * bench_pack.c - pack store throughput (not a test: run by hand).
 *
 *   bench_pack DIR [MiB] [frame_KiB] [batch] [write_bufs] [write_buf_KiB]
 *
 * Appends MiB of frame_KiB frames to a fresh pack dir under DIR, pack_sync,
 * then drops the page cache (if permitted) and reads every frame back with
 * pack_read_many in batches.  Prints MB/s for append+sync and for read.
 * Compare with: dd if=/dev/zero of=F bs=4M count=N conv=fdatasync and
 * dd if=F of=/dev/null bs=4M after dropping caches.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/pack.h"

static uint32_t next_id = 1;

static int alloc_id(void *arg, uint32_t *id)
{
	*id = next_id++;
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	int ok;

	sync();
	if (fd < 0)
		return -errno;
	ok = write(fd, "3\n", 2) == 2;
	close(fd);
	return ok ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	char dir[4096];
	uint64_t mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 1024;
	uint32_t frame = (argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 256) << 10;
	int batch = argc > 4 ? atoi(argv[4]) : 16;
	struct pack_opts wopts = {
		.write_bufs = argc > 5 ? (uint32_t)atoi(argv[5]) : 0,
		.write_buf_bytes = argc > 6 ? (uint32_t)atoi(argv[6]) << 10 : 0,
	};
	uint64_t n = (mib << 20) / frame;
	struct pack_loc *locs = calloc(n, sizeof(*locs));
	uint8_t *src = malloc(frame), *dst = malloc((size_t)frame * (size_t)batch);
	void **bufs = calloc((size_t)batch, sizeof(*bufs));
	int *res = calloc((size_t)batch, sizeof(*res));
	struct pack_store *ps;
	double t0, t1;
	int rc;

	if (argc < 2 || !locs || !src || !dst || !bufs || !res) {
		fprintf(stderr, "usage: bench_pack DIR [MiB] [frame_KiB] [batch] [write_bufs] [write_buf_KiB]\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/bench-packs-%d", argv[1], (int)getpid());
	if (mkdir(dir, 0700)) {
		perror(dir);
		return 1;
	}
	for (uint32_t i = 0; i < frame; i++)
		src[i] = (uint8_t)(i * 131 + 7);
	for (int b = 0; b < batch; b++)
		bufs[b] = dst + (size_t)b * frame;

	rc = pack_store_open(dir, &wopts, alloc_id, NULL, &ps);
	if (rc)
		goto fail;
	t0 = now();
	for (uint64_t i = 0; i < n; i++) {
		src[0] = (uint8_t)i;
		rc = pack_append(ps, src, frame, &locs[i]);
		if (rc)
			goto fail;
	}
	t1 = now();
	printf("append only: %.2f s\n", t1 - t0);
	rc = pack_sync(ps);
	if (rc)
		goto fail;
	t1 = now();
	printf("append+sync: %llu MiB in %.2f s = %.0f MB/s\n", (unsigned long long)mib, t1 - t0,
	       (double)(n * frame) / (t1 - t0) / 1e6);
	pack_store_close(ps);

	rc = drop_caches();
	if (rc)
		printf("(could not drop caches: %s; read is from the page cache)\n", strerror(-rc));
	rc = pack_store_open(dir, &wopts, alloc_id, NULL, &ps);
	if (rc)
		goto fail;
	t0 = now();
	for (uint64_t i = 0; i < n; i += (uint64_t)batch) {
		int m = n - i < (uint64_t)batch ? (int)(n - i) : batch;
		rc = pack_read_many(ps, &locs[i], bufs, m, res);
		if (rc)
			goto fail;
	}
	t1 = now();
	printf("read (batch %d): %.2f s = %.0f MB/s\n", batch, t1 - t0,
	       (double)(n * frame) / (t1 - t0) / 1e6);
	pack_store_close(ps);
	for (uint32_t id = 1; id < next_id; id++) {
		char path[4200];
		pack_path(dir, id, path, sizeof(path));
		unlink(path);
	}
	rmdir(dir);
	return 0;
fail:
	fprintf(stderr, "bench_pack: %s\n", strerror(-rc));
	return 1;
}
