/*
 * cache.c - sharded LRU of decoded chunks.
 *
 * 16 shards chosen by fp[0] (fingerprints are SHA-256, so uniform), each a
 * chained hash table plus an intrusive LRU list.  Only unheld entries are
 * on the LRU list: a get takes the entry off it and the last release puts
 * it back at the head, so eviction just pops tails and never has to skip
 * held entries.
 *
 * The byte budget is global (a per-shard slice of a small cache could not
 * hold even one large chunk).  To keep eviction close to a global LRU each
 * shard publishes the age stamp of its LRU tail and the evictor picks the
 * shard holding the oldest tail.  Eviction runs with no lock held on entry
 * and takes one shard lock at a time, so shard locks never nest.
 */
#include "fs/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SHARDS 16
#define CACHE_MIN_BUCKETS 64

struct centry {
	struct cache_entry pub; /* first: a cache_entry* is a centry* */
	struct centry *hnext;
	struct centry *lprev, *lnext; /* LRU links, valid only while unheld in table */
	uint64_t stamp;               /* when it last went unheld */
	uint32_t refs;                /* guarded by the shard lock */
	bool in_table;
	void *base;                   /* the allocation pub.data points into */
};

struct shard {
	/* Leaf lock: never held while taking another shard's lock. */
	pthread_mutex_t lock;
	struct centry **buckets;
	size_t nbuckets;
	size_t nentries;
	struct centry *lru_head, *lru_tail; /* head = most recently used */
	/* Stamp of lru_tail, UINT64_MAX when the list is empty; read without
	 * the lock by evictors choosing a shard (a stale value only makes the
	 * choice slightly less exact). */
	_Atomic uint64_t tail_stamp;
	uint64_t hits, misses, evictions;
};

struct chunk_cache {
	size_t max_bytes;
	_Atomic uint64_t bytes;
	_Atomic uint64_t clock;
	struct shard shards[CACHE_SHARDS];
};

static struct shard *cache_shard(struct chunk_cache *c, const uint8_t fp[FP_LEN])
{
	return &c->shards[fp[0] % CACHE_SHARDS];
}

static size_t fp_bucket(const uint8_t fp[FP_LEN], size_t nbuckets)
{
	uint64_t h;

	/* fp[0] picked the shard; the next bytes are just as random. */
	memcpy(&h, fp + 1, sizeof(h));
	return (size_t)(h & (nbuckets - 1));
}

static void lru_publish_tail(struct shard *s)
{
	atomic_store(&s->tail_stamp, s->lru_tail ? s->lru_tail->stamp : UINT64_MAX);
}

static void lru_unlink(struct shard *s, struct centry *e)
{
	if (e->lprev)
		e->lprev->lnext = e->lnext;
	else
		s->lru_head = e->lnext;
	if (e->lnext)
		e->lnext->lprev = e->lprev;
	else
		s->lru_tail = e->lprev;
	e->lprev = e->lnext = NULL;
	lru_publish_tail(s);
}

static void lru_push_head(struct chunk_cache *c, struct shard *s, struct centry *e)
{
	e->stamp = atomic_fetch_add(&c->clock, 1);
	e->lprev = NULL;
	e->lnext = s->lru_head;
	if (s->lru_head)
		s->lru_head->lprev = e;
	else
		s->lru_tail = e;
	s->lru_head = e;
	lru_publish_tail(s);
}

static struct centry *table_find(struct shard *s, const uint8_t fp[FP_LEN])
{
	for (struct centry *e = s->buckets[fp_bucket(fp, s->nbuckets)]; e; e = e->hnext)
		if (!memcmp(e->pub.fp, fp, FP_LEN))
			return e;
	return NULL;
}

static void table_unlink(struct chunk_cache *c, struct shard *s, struct centry *e)
{
	struct centry **pp = &s->buckets[fp_bucket(e->pub.fp, s->nbuckets)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	e->in_table = false;
	s->nentries--;
	atomic_fetch_sub(&c->bytes, e->pub.len);
}

/* Double the bucket array; on allocation failure keep the longer chains. */
static void table_grow(struct shard *s)
{
	size_t n = s->nbuckets * 2;
	struct centry **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct centry *e = s->buckets[i], *next;
		for (; e; e = next) {
			size_t b = fp_bucket(e->pub.fp, n);
			next = e->hnext;
			e->hnext = nb[b];
			nb[b] = e;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->nbuckets = n;
}

static void centry_free(struct centry *e)
{
	if (!e)
		return;
	free(e->base);
	free(e);
}

/* Evict unheld entries, oldest first across shards, until the budget
 * holds or only held entries remain.  Called with no shard lock held. */
static void cache_evict(struct chunk_cache *c)
{
	while (atomic_load(&c->bytes) > c->max_bytes) {
		struct shard *s = NULL;
		struct centry *victim;
		uint64_t best = UINT64_MAX;

		for (unsigned i = 0; i < CACHE_SHARDS; i++) {
			uint64_t t = atomic_load(&c->shards[i].tail_stamp);
			if (t < best) {
				best = t;
				s = &c->shards[i];
			}
		}
		if (!s)
			return; /* everything cached is held */
		pthread_mutex_lock(&s->lock);
		victim = s->lru_tail;
		if (victim) {
			lru_unlink(s, victim);
			table_unlink(c, s, victim);
			s->evictions++;
		}
		pthread_mutex_unlock(&s->lock);
		centry_free(victim); /* NULL: raced with another evictor; rescan */
	}
}

struct chunk_cache *cache_create(size_t max_bytes)
{
	struct chunk_cache *c = calloc(1, sizeof(*c));
	unsigned i;

	if (!c)
		return NULL;
	c->max_bytes = max_bytes;
	for (i = 0; i < CACHE_SHARDS; i++) {
		struct shard *s = &c->shards[i];
		s->buckets = calloc(CACHE_MIN_BUCKETS, sizeof(*s->buckets));
		if (!s->buckets)
			goto err;
		s->nbuckets = CACHE_MIN_BUCKETS;
		atomic_init(&s->tail_stamp, UINT64_MAX);
		pthread_mutex_init(&s->lock, NULL);
	}
	return c;

err:
	while (i--) {
		pthread_mutex_destroy(&c->shards[i].lock);
		free(c->shards[i].buckets);
	}
	free(c);
	return NULL;
}

void cache_free(struct chunk_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < CACHE_SHARDS; i++) {
		struct shard *s = &c->shards[i];
		for (size_t b = 0; b < s->nbuckets; b++) {
			struct centry *e = s->buckets[b], *next;
			for (; e; e = next) {
				next = e->hnext;
				centry_free(e);
			}
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(c);
}

/* Take a reference on e (in table).  Shard lock held. */
static void centry_hold(struct shard *s, struct centry *e)
{
	if (e->refs++ == 0)
		lru_unlink(s, e);
}

struct cache_entry *cache_get(struct chunk_cache *c, const uint8_t fp[FP_LEN])
{
	struct shard *s = cache_shard(c, fp);
	struct centry *e;

	pthread_mutex_lock(&s->lock);
	e = table_find(s, fp);
	if (e) {
		centry_hold(s, e);
		s->hits++;
	} else {
		s->misses++;
	}
	pthread_mutex_unlock(&s->lock);
	return e ? &e->pub : NULL;
}

struct cache_entry *cache_insert(struct chunk_cache *c, const uint8_t fp[FP_LEN], uint8_t *data,
                                 uint32_t len)
{
	return cache_insert_at(c, fp, data, data, len);
}

struct cache_entry *cache_insert_at(struct chunk_cache *c, const uint8_t fp[FP_LEN], void *base,
                                    const uint8_t *data, uint32_t len)
{
	struct shard *s = cache_shard(c, fp);
	struct centry *e, *old;

	e = calloc(1, sizeof(*e));
	if (!e) {
		free(base);
		return NULL;
	}
	memcpy(e->pub.fp, fp, FP_LEN);
	e->pub.len = len;
	e->pub.data = data;
	e->base = base;
	e->refs = 1;

	pthread_mutex_lock(&s->lock);
	old = table_find(s, fp);
	if (old) {
		/* Same fingerprint, same bytes: keep the one already shared. */
		centry_hold(s, old);
		pthread_mutex_unlock(&s->lock);
		centry_free(e);
		return &old->pub;
	}
	if (s->nentries >= s->nbuckets)
		table_grow(s);
	{
		size_t b = fp_bucket(fp, s->nbuckets);
		e->hnext = s->buckets[b];
		s->buckets[b] = e;
	}
	e->in_table = true;
	s->nentries++;
	atomic_fetch_add(&c->bytes, len);
	pthread_mutex_unlock(&s->lock);
	/* The new entry is held, so this only makes room around it. */
	cache_evict(c);
	return &e->pub;
}

void cache_release(struct chunk_cache *c, struct cache_entry *pub)
{
	struct centry *e = (struct centry *)pub;
	struct shard *s;
	bool dead = false;

	if (!pub)
		return;
	s = cache_shard(c, pub->fp);
	pthread_mutex_lock(&s->lock);
	if (--e->refs == 0) {
		if (e->in_table)
			lru_push_head(c, s, e);
		else
			dead = true; /* evicted or forgotten while held */
	}
	pthread_mutex_unlock(&s->lock);
	if (dead)
		centry_free(e);
	else if (atomic_load(&c->bytes) > c->max_bytes)
		cache_evict(c); /* held entries may have kept us over budget */
}

void cache_forget(struct chunk_cache *c, const uint8_t fp[FP_LEN])
{
	struct shard *s = cache_shard(c, fp);
	struct centry *e;

	pthread_mutex_lock(&s->lock);
	e = table_find(s, fp);
	if (e && e->refs == 0) {
		lru_unlink(s, e);
		table_unlink(c, s, e);
	} else {
		e = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	if (e)
		centry_free(e);
}

void cache_counters(struct chunk_cache *c, struct cache_counters *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < CACHE_SHARDS; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_lock(&s->lock);
		out->hits += s->hits;
		out->misses += s->misses;
		out->evictions += s->evictions;
		out->entries += s->nentries;
		pthread_mutex_unlock(&s->lock);
	}
	out->bytes = atomic_load(&c->bytes);
}
