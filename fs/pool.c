/*
 * pool.c - fixed worker pool over a bounded ring of jobs.
 *
 * The queue never allocates per job: it is a ring of max_queued slots, so
 * pool_submit cannot fail once the pool exists and memory stays bounded by
 * what the submitters hold while they wait.
 *
 * A job that submits to its own pool while the queue is full would block
 * forever if every worker did the same, so such a submit runs the job
 * inline instead (the group accounting is identical).
 */
#include "fs/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define POOL_DEF_QUEUED_PER_THREAD 4

struct pool_group {
	/* Leaf lock: never held together with pool->lock. */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned long pending;
};

struct job {
	pool_job_fn fn;
	void *arg;
	struct pool_group *g;
};

struct worker {
	struct pool *p;
	pthread_t thread;
	void *local;
	bool started;
};

struct pool {
	/* Guards the ring and stop.  Lock order: none needed, pool->lock and a
	 * group's lock are never nested (a submitter counts the job in its
	 * group before taking pool->lock; a worker marks it done after dropping
	 * pool->lock), so group_wait never blocks a worker's dequeue. */
	pthread_mutex_t lock;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	struct job *ring;
	unsigned cap, head, count;
	bool stop;
	unsigned nthreads;
	struct worker *workers;
	pool_fini_fn fini;
};

/* The worker this thread is, if any (nested submit and wait run jobs
 * inline instead of deadlocking the pool). */
static __thread struct worker *pool_self;

static void group_done(struct pool_group *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	if (--g->pending == 0)
		pthread_cond_broadcast(&g->idle);
	pthread_mutex_unlock(&g->lock);
}

static void group_add(struct pool_group *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->pending++;
	pthread_mutex_unlock(&g->lock);
}

/* Dequeue the oldest job; pool->lock held and the queue not empty. */
static void pool_take(struct pool *p, struct job *j)
{
	*j = p->ring[p->head];
	p->head = (p->head + 1) % p->cap;
	p->count--;
	pthread_cond_signal(&p->not_full);
}

static void *pool_worker(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->p;
	struct job j;

	pool_self = w;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->count && !p->stop)
			pthread_cond_wait(&p->not_empty, &p->lock);
		if (!p->count) { /* stop requested and queue drained */
			pthread_mutex_unlock(&p->lock);
			break;
		}
		pool_take(p, &j);
		pthread_mutex_unlock(&p->lock);

		j.fn(j.arg, w->local);
		group_done(j.g);
	}
	return NULL;
}

int pool_create(unsigned nthreads, unsigned max_queued, pool_init_fn init, pool_fini_fn fini,
                void *init_arg, struct pool **out)
{
	struct pool *p;
	unsigned i;
	int rc;

	*out = NULL;
	if (!nthreads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = n > 0 ? (unsigned)n : 1;
	}
	if (!max_queued)
		max_queued = nthreads * POOL_DEF_QUEUED_PER_THREAD;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cap = max_queued;
	p->nthreads = nthreads;
	p->fini = fini;
	p->ring = calloc(max_queued, sizeof(*p->ring));
	p->workers = calloc(nthreads, sizeof(*p->workers));
	if (!p->ring || !p->workers) {
		rc = -ENOMEM;
		goto err_free;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->not_empty, NULL);
	pthread_cond_init(&p->not_full, NULL);
	for (i = 0; i < nthreads; i++) {
		struct worker *w = &p->workers[i];
		w->p = p;
		if (init) {
			w->local = init(init_arg);
			if (!w->local) {
				rc = -ENOMEM;
				goto err_workers;
			}
		}
		rc = -pthread_create(&w->thread, NULL, pool_worker, w);
		if (rc) {
			if (fini && w->local)
				fini(w->local);
			goto err_workers;
		}
		w->started = true;
	}
	*out = p;
	return 0;

err_workers:
	/* Workers already running see stop with an empty queue and exit. */
	pool_free(p);
	return rc;
err_free:
	free(p->workers);
	free(p->ring);
	free(p);
	return rc;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->not_empty);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++) {
		struct worker *w = &p->workers[i];
		if (!w->started)
			continue;
		pthread_join(w->thread, NULL);
		if (p->fini && w->local)
			p->fini(w->local);
	}
	pthread_cond_destroy(&p->not_full);
	pthread_cond_destroy(&p->not_empty);
	pthread_mutex_destroy(&p->lock);
	free(p->workers);
	free(p->ring);
	free(p);
}

unsigned pool_threads(const struct pool *p)
{
	return p->nthreads;
}

struct pool_group *pool_group_create(void)
{
	struct pool_group *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->idle, NULL);
	return g;
}

void pool_group_free(struct pool_group *g)
{
	if (!g)
		return;
	pthread_cond_destroy(&g->idle);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* Take the oldest queued job, if any. */
static bool pool_pop(struct pool *p, struct job *j)
{
	bool got = false;

	pthread_mutex_lock(&p->lock);
	if (p->count) {
		pool_take(p, j);
		got = true;
	}
	pthread_mutex_unlock(&p->lock);
	return got;
}

/* A worker waiting for a group would deadlock the pool once every worker
 * waits with the group's jobs still queued, so a worker helps instead:
 * it runs queued jobs until the group is done, and sleeps only briefly
 * when the queue is empty (the group's jobs then run on other workers). */
static void pool_group_help(struct pool_group *g, struct worker *w)
{
	struct job j;
	struct timespec ts;

	for (;;) {
		pthread_mutex_lock(&g->lock);
		if (!g->pending) {
			pthread_mutex_unlock(&g->lock);
			return;
		}
		pthread_mutex_unlock(&g->lock);
		if (pool_pop(w->p, &j)) {
			j.fn(j.arg, w->local);
			group_done(j.g);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&g->lock);
		if (g->pending)
			pthread_cond_timedwait(&g->idle, &g->lock, &ts);
		pthread_mutex_unlock(&g->lock);
	}
}

void pool_group_wait(struct pool_group *g)
{
	if (pool_self) {
		pool_group_help(g, pool_self);
		return;
	}
	pthread_mutex_lock(&g->lock);
	while (g->pending)
		pthread_cond_wait(&g->idle, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

/* Queue a job; pool->lock held and a free slot guaranteed. */
static void pool_push(struct pool *p, pool_job_fn fn, void *arg, struct pool_group *g)
{
	struct job *j = &p->ring[(p->head + p->count) % p->cap];

	j->fn = fn;
	j->arg = arg;
	j->g = g;
	p->count++;
	pthread_cond_signal(&p->not_empty);
}

static int pool_enqueue(struct pool *p, struct pool_group *g, pool_job_fn fn, void *arg,
                        bool wait)
{
	group_add(g);
	pthread_mutex_lock(&p->lock);
	while (p->count == p->cap) {
		if (!wait) {
			pthread_mutex_unlock(&p->lock);
			group_done(g);
			return -EAGAIN;
		}
		if (pool_self && pool_self->p == p)
			goto inline_run;
		pthread_cond_wait(&p->not_full, &p->lock);
	}
	pool_push(p, fn, arg, g);
	pthread_mutex_unlock(&p->lock);
	return 0;

inline_run:
	pthread_mutex_unlock(&p->lock);
	fn(arg, pool_self->local);
	group_done(g);
	return 0;
}

int pool_submit(struct pool *p, struct pool_group *g, pool_job_fn fn, void *arg)
{
	return pool_enqueue(p, g, fn, arg, true);
}

int pool_try_submit(struct pool *p, struct pool_group *g, pool_job_fn fn, void *arg)
{
	return pool_enqueue(p, g, fn, arg, false);
}
