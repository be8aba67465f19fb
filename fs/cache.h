/*
 * cache.h - bounded cache of decoded chunks, keyed by fingerprint.
 *
 * Entries are reference counted: cache_get/cache_insert return a held
 * entry that stays valid (data unchanged) until cache_release, even if it
 * is evicted meanwhile.  Eviction is LRU over unheld entries once the sum
 * of cached raw bytes passes max_bytes.  Sharded by fingerprint for low
 * lock contention; all functions are thread-safe.
 */
#ifndef MIXFS_CACHE_H
#define MIXFS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "index/fp.h"

struct chunk_cache;

struct cache_entry {
	uint8_t fp[FP_LEN];
	uint32_t len;
	const uint8_t *data; /* len bytes */
	/* private fields follow in the implementation */
};

struct chunk_cache *cache_create(size_t max_bytes);
void cache_free(struct chunk_cache *c); /* NULL ok; entries must be released */

/* Held entry or NULL on a miss. */
struct cache_entry *cache_get(struct chunk_cache *c, const uint8_t fp[FP_LEN]);
/* Insert data (ownership of the malloc'ed buffer passes to the cache).  If
 * fp is already cached, data is freed and the existing entry returned.
 * Returns a held entry, or NULL on allocation failure (data freed). */
struct cache_entry *cache_insert(struct chunk_cache *c, const uint8_t fp[FP_LEN],
                                 uint8_t *data, uint32_t len);
/* Like cache_insert, for data that lives inside a larger malloc'ed block
 * base (a raw frame read whole: the bytes after its header). */
struct cache_entry *cache_insert_at(struct chunk_cache *c, const uint8_t fp[FP_LEN], void *base,
                                    const uint8_t *data, uint32_t len);
void cache_release(struct chunk_cache *c, struct cache_entry *e); /* NULL ok */
/* Drop fp if cached and unheld (chunk deleted). */
void cache_forget(struct chunk_cache *c, const uint8_t fp[FP_LEN]);

struct cache_counters { uint64_t hits, misses, bytes, entries, evictions; };
void cache_counters(struct chunk_cache *c, struct cache_counters *out);

#endif
