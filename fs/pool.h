/*
 * pool.h - fixed worker pool with a bounded job queue.
 *
 * Each worker has a private pointer made by init (e.g. its codec_ctx).
 * pool_submit blocks while the queue holds max_queued jobs (backpressure).
 * A pool_group counts jobs so a submitter can wait for its own batch.
 */
#ifndef MIXFS_POOL_H
#define MIXFS_POOL_H

#include <stddef.h>

struct pool;
struct pool_group; /* opaque; create with pool_group_create */

typedef void (*pool_job_fn)(void *arg, void *worker_local);
typedef void *(*pool_init_fn)(void *init_arg); /* NULL return = failure */
typedef void (*pool_fini_fn)(void *worker_local);

/* nthreads 0 = number of online CPUs. */
int pool_create(unsigned nthreads, unsigned max_queued, pool_init_fn init,
                pool_fini_fn fini, void *init_arg, struct pool **out);
/* Finishes queued jobs, joins the workers. NULL ok. */
void pool_free(struct pool *p);
unsigned pool_threads(const struct pool *p);

struct pool_group *pool_group_create(void);
void pool_group_free(struct pool_group *g);
/* Queue fn(arg); g may be NULL (fire and forget). Returns 0 or -ENOMEM. */
int pool_submit(struct pool *p, struct pool_group *g, pool_job_fn fn, void *arg);
/* Like pool_submit but never blocks: -EAGAIN when the queue is full. */
int pool_try_submit(struct pool *p, struct pool_group *g, pool_job_fn fn, void *arg);
/* Wait until every job submitted with g has finished. */
void pool_group_wait(struct pool_group *g);

#endif
