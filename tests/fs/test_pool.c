/*
 * test_pool.c - worker pool: every job runs exactly once, groups wait for
 * their own jobs, the queue bound holds (backpressure), try_submit, and
 * per-worker locals are created and freed once each.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fs/pool.h"

static atomic_int locals_made, locals_freed;

static void *local_init(void *arg)
{
	int *l = malloc(sizeof(*l));

	if (l) {
		*l = 0x10ca1;
		atomic_fetch_add(&locals_made, 1);
	}
	return l;
}

static void local_fini(void *l)
{
	assert_int_equal(*(int *)l, 0x10ca1);
	atomic_fetch_add(&locals_freed, 1);
	free(l);
}

static atomic_int counts[10000];

static void count_job(void *arg, void *local)
{
	atomic_fetch_add(&counts[(uintptr_t)arg], 1);
	assert_int_equal(*(int *)local, 0x10ca1);
}

static void test_all_jobs_once(void **state)
{
	struct pool *p;
	struct pool_group *g = pool_group_create();

	atomic_store(&locals_made, 0);
	atomic_store(&locals_freed, 0);
	memset(counts, 0, sizeof(counts));
	assert_int_equal(pool_create(3, 8, local_init, local_fini, NULL, &p), 0);
	assert_int_equal(pool_threads(p), 3);
	assert_int_equal(atomic_load(&locals_made), 3);
	for (uintptr_t i = 0; i < 10000; i++)
		assert_int_equal(pool_submit(p, i % 2 ? g : NULL, count_job, (void *)i), 0);
	pool_group_wait(g);
	for (int i = 1; i < 10000; i += 2)
		assert_int_equal(atomic_load(&counts[i]), 1);
	pool_free(p); /* drains the ungrouped ones too */
	for (int i = 0; i < 10000; i++)
		assert_int_equal(atomic_load(&counts[i]), 1);
	assert_int_equal(atomic_load(&locals_freed), 3);
	pool_group_free(g);
	pool_free(NULL);
	pool_group_free(NULL);
}

struct slow {
	atomic_int done;
};

static void slow_job(void *arg, void *local)
{
	struct slow *s = arg;

	usleep(2000);
	atomic_fetch_add(&s->done, 1);
}

static void test_groups(void **state)
{
	struct pool *p;
	struct pool_group *a = pool_group_create(), *b = pool_group_create();
	struct slow sa = { 0 }, sb = { 0 };

	assert_int_equal(pool_create(2, 64, NULL, NULL, NULL, &p), 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(pool_submit(p, a, slow_job, &sa), 0);
		assert_int_equal(pool_submit(p, b, slow_job, &sb), 0);
	}
	pool_group_wait(a);
	assert_int_equal(atomic_load(&sa.done), 20);
	pool_group_wait(b);
	assert_int_equal(atomic_load(&sb.done), 20);
	pool_group_wait(a); /* empty group: returns at once */
	pool_free(p);
	pool_group_free(a);
	pool_group_free(b);
}

/* Jobs block on a gate so the queue fills deterministically. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open;
static atomic_int started, finished;

static void gated_job(void *arg, void *local)
{
	atomic_fetch_add(&started, 1);
	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	atomic_fetch_add(&finished, 1);
}

struct submitter {
	struct pool *p;
	struct pool_group *g;
	atomic_int submitted;
};

static void *submit_main(void *arg)
{
	struct submitter *s = arg;

	for (int i = 0; i < 10; i++) {
		assert_int_equal(pool_submit(s->p, s->g, gated_job, NULL), 0);
		atomic_fetch_add(&s->submitted, 1);
	}
	return NULL;
}

static void test_backpressure(void **state)
{
	struct pool *p;
	struct pool_group *g = pool_group_create();
	struct submitter s = { 0 };
	pthread_t t;

	gate_open = 0;
	atomic_store(&started, 0);
	atomic_store(&finished, 0);
	/* 2 workers + 4 queue slots: at most 6 jobs accepted while gated. */
	assert_int_equal(pool_create(2, 4, NULL, NULL, NULL, &p), 0);
	s.p = p;
	s.g = g;
	assert_int_equal(pthread_create(&t, NULL, submit_main, &s), 0);
	while (atomic_load(&started) < 2 || atomic_load(&s.submitted) < 6)
		usleep(1000);
	usleep(50000);
	assert_int_equal(atomic_load(&s.submitted), 6);
	assert_int_equal(pool_try_submit(p, g, gated_job, NULL), -EAGAIN);
	pthread_mutex_lock(&gate_lock);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	pthread_join(t, NULL);
	pool_group_wait(g);
	assert_int_equal(atomic_load(&finished), 10);
	assert_int_equal(pool_try_submit(p, g, gated_job, NULL), 0);
	pool_group_wait(g);
	assert_int_equal(atomic_load(&finished), 11);
	pool_free(p);
	pool_group_free(g);
}

/* A job that submits to its own full pool must not deadlock. */
struct nest {
	struct pool *p;
	struct pool_group *g;
	atomic_int leaves;
};

static void leaf_job(void *arg, void *local)
{
	struct nest *n = arg;

	atomic_fetch_add(&n->leaves, 1);
}

static void parent_job(void *arg, void *local)
{
	struct nest *n = arg;

	for (int i = 0; i < 50; i++)
		assert_int_equal(pool_submit(n->p, n->g, leaf_job, n), 0);
}

/* Run `parents` parent jobs on a small pool; expect `leaves` leaf runs. */
static void run_nest(pool_job_fn parent, int parents, unsigned max_queued, int leaves)
{
	struct nest n = { 0 };

	n.g = pool_group_create();
	assert_int_equal(pool_create(2, max_queued, NULL, NULL, NULL, &n.p), 0);
	for (int i = 0; i < parents; i++)
		assert_int_equal(pool_submit(n.p, n.g, parent, &n), 0);
	pool_group_wait(n.g);
	assert_int_equal(atomic_load(&n.leaves), leaves);
	pool_free(n.p);
	pool_group_free(n.g);
}

static void test_nested_submit(void **state)
{
	run_nest(parent_job, 20, 2, 1000);
}

/* Jobs that wait for their own sub-batches: with every worker inside a
 * parent, only helping waiters make progress. */
static void waiting_parent(void *arg, void *local)
{
	struct nest *n = arg;
	struct pool_group *g = pool_group_create();

	assert_non_null(g);
	for (int i = 0; i < 10; i++)
		assert_int_equal(pool_submit(n->p, g, leaf_job, n), 0);
	pool_group_wait(g);
	pool_group_free(g);
}

static void test_wait_inside_worker(void **state)
{
	run_nest(waiting_parent, 30, 4, 300);
}

static int fail_after;

static void *failing_init(void *arg)
{
	if (fail_after-- <= 0)
		return NULL;
	return local_init(arg);
}

static void test_init_failure(void **state)
{
	struct pool *p = (struct pool *)1;

	atomic_store(&locals_made, 0);
	atomic_store(&locals_freed, 0);
	fail_after = 2;
	assert_int_equal(pool_create(4, 0, failing_init, local_fini, NULL, &p), -ENOMEM);
	assert_null(p);
	assert_int_equal(atomic_load(&locals_made), 2);
	assert_int_equal(atomic_load(&locals_freed), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_jobs_once),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_nested_submit),
		cmocka_unit_test(test_wait_inside_worker),
		cmocka_unit_test(test_init_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
