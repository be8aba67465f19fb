/* A bounded FIFO of fixed-size entries (the rebase and defrag queues).
 * Not thread-safe: the caller holds the lock that guards it. */
#ifndef MIXFS_FIFO_H
#define MIXFS_FIFO_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct fifo {
	unsigned char *v;
	size_t head, n, cap; /* entries [head, n) are queued */
	size_t esz, first, max; /* entry size; first and largest capacity */
};

#define FIFO_INIT(type, first_cap, max_cap) \
	((struct fifo){ .esz = sizeof(type), .first = (first_cap), .max = (max_cap) })

static inline bool fifo_empty(const struct fifo *q)
{
	return q->head == q->n;
}

static inline void *fifo_at(const struct fifo *q, size_t i)
{
	return q->v + i * q->esz;
}

/* A slot for one more entry at the tail, or NULL when the queue holds max
 * entries (or cannot grow): reuses the popped front, then doubles. */
static inline void *fifo_push(struct fifo *q)
{
	if (q->head > 0 && q->n == q->cap) {
		memmove(q->v, fifo_at(q, q->head), (q->n - q->head) * q->esz);
		q->n -= q->head;
		q->head = 0;
	}
	if (q->n == q->cap && q->cap < q->max) {
		size_t nc = q->cap ? 2 * q->cap : q->first;
		void *p = realloc(q->v, (nc < q->max ? nc : q->max) * q->esz);
		if (p) {
			q->v = p;
			q->cap = nc < q->max ? nc : q->max;
		}
	}
	return q->n < q->cap ? fifo_at(q, q->n++) : NULL;
}

/* The front entry, taken off the queue (valid until the next push), or
 * NULL when empty. */
static inline void *fifo_pop(struct fifo *q)
{
	void *p;

	if (fifo_empty(q))
		return NULL;
	p = fifo_at(q, q->head++);
	if (fifo_empty(q))
		q->head = q->n = 0; /* the entry stays in place until a push */
	return p;
}

static inline void fifo_free(struct fifo *q)
{
	free(q->v);
	q->v = NULL;
	q->head = q->n = q->cap = 0;
}

#endif
