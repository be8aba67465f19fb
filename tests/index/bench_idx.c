/*
 * bench_idx.c - index write path cost: chunk insert + file map per 64 KiB
 * chunk, committed in batches (the engine's group commit), then deleting
 * the file.  Not a test.  Usage: bench_idx DIR [chunks] [batch]
 * DIR must not exist yet (or be empty); it is left behind for mdb_stat.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "index/idx.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fill(struct idx *x, unsigned n, unsigned batch, struct idx_inode *in)
{
	struct idx_txn *t = NULL;
	struct idx_chunk c;
	unsigned i;
	uint32_t v;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		if (!t && (rc = idx_txn_begin(x, false, &t)) < 0)
			break;
		memset(&c, 0, sizeof(c));
		v = i;
		rc = fp_compute(&v, sizeof(v), c.fp);
		c.pack_id = 1;
		c.pack_off = (uint64_t)i * 40000;
		c.raw_len = 65536;
		c.frame_len = 40000;
		c.level = 2;
		c.dtype = 1;
		if (rc == 0)
			rc = idx_chunk_insert(t, &c);
		if (rc == 0)
			rc = idx_file_map(t, in, (uint64_t)i * 65536, 65536, c.fp, 0);
		if (rc == 0 && (i % batch == batch - 1 || i + 1 == n)) {
			in->size = (uint64_t)(i + 1) * 65536;
			rc = idx_inode_put(t, in);
			if (rc == 0)
				rc = idx_txn_commit(t);
			else
				idx_txn_abort(t);
			t = NULL;
		}
	}
	idx_txn_abort(t);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 200000;
	unsigned batch = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : 1000;
	struct idx_super s;
	struct idx_inode in;
	struct idx_txn *t;
	struct idx *x;
	double t0, t1, t2;
	int rc;

	if (argc < 2 || batch == 0) {
		fprintf(stderr, "usage: bench_idx DIR [chunks] [batch]\n");
		return 2;
	}
	memset(&s, 0, sizeof(s));
	cdc_params_default(&s.cdc);
	s.next_ino = 2;
	s.next_pack = 1;
	s.default_level = 2;
	rc = idx_open(argv[1], IDX_CREATE, &s, 0, &x);
	if (rc < 0) {
		fprintf(stderr, "idx_open: %s\n", strerror(-rc));
		return 1;
	}
	memset(&in, 0, sizeof(in));
	in.ino = 5;
	in.mode = S_IFREG | 0644;
	t0 = now();
	rc = fill(x, n, batch, &in);
	t1 = now();
	if (rc == 0)
		rc = idx_txn_begin(x, false, &t);
	if (rc == 0) {
		rc = idx_inode_delete(t, in.ino);
		rc = rc == 0 ? idx_txn_commit(t) : (idx_txn_abort(t), rc);
	}
	t2 = now();
	if (rc < 0) {
		fprintf(stderr, "bench_idx: %s\n", strerror(-rc));
		idx_close(x);
		return 1;
	}
	printf("insert+map: %.0f chunks/s (%.0f MB/s of 64 KiB chunks), batch %u; "
	       "delete: %.0f extents/s\n",
	       n / (t1 - t0), n * 65536.0 / (t1 - t0) / 1e6, batch, n / (t2 - t1));
	idx_close(x);
	return 0;
}
