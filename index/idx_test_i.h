/*
 * idx_test_i.h - test-only entry points of index/idx.c.  Not part of the
 * index API: nothing outside tests/ may include this header.
 */
#ifndef MIXFS_IDX_TEST_I_H
#define MIXFS_IDX_TEST_I_H

#include <stddef.h>

#include "index/idx.h"

/* Write raw bytes k -> v into database db ("super", "inodes", "dirents",
 * "dirseq", "extents", "chunks", "packs", "xattrs", "symlinks",
 * "orphans"), bypassing every encoder and check, so that a test can plant
 * a malformed record.  Write transaction only; the cached superblock and
 * stats of t are not refreshed (plant records before reading them).
 * 0, -EINVAL (unknown db), -EROFS, or the LMDB error as negative errno. */
int idx_raw_put(struct idx_txn *t, const char *db, const void *k, size_t kl, const void *v,
                size_t vl);

/* Delete k from db behind idx's back: 0, -ENOENT, -EINVAL, -EROFS. */
int idx_raw_del(struct idx_txn *t, const char *db, const void *k, size_t kl);

/* Read the raw value of k in db into buf (up to cap bytes): its full
 * length, -ENOENT, -EINVAL (unknown db) or the LMDB error. */
int idx_raw_get(struct idx_txn *t, const char *db, const void *k, size_t kl, void *buf,
                size_t cap);

#endif
