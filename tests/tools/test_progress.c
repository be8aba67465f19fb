/*
 * test_progress.c - the progress line (tools/progress.h): byte formatting,
 * silence when stderr is not a terminal, what a forced line shows, messages
 * through progress_printf, NULL handles, and an exact count under threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/progress.h"

/* stderr goes to a temporary file while the code under test runs; the
 * assertions run after it is restored (a failing one must be visible). */
struct capture {
	FILE *f;
	int saved;
};

static void capture_begin(struct capture *c)
{
	fflush(stderr);
	c->f = tmpfile();
	assert_non_null(c->f);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(fileno(c->f), STDERR_FILENO), STDERR_FILENO);
}

/* Restores stderr; returns what was written (caller frees). */
static char *capture_end(struct capture *c)
{
	char *buf;
	long n;

	fflush(stderr);
	assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
	close(c->saved);
	n = ftell(c->f);
	assert_true(n >= 0);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	rewind(c->f);
	assert_int_equal(fread(buf, 1, (size_t)n, c->f), (size_t)n);
	fclose(c->f);
	return buf;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void test_bytes_format(void **state)
{
	static const struct {
		uint64_t n;
		const char *want;
	} cases[] = {
		{ 0, "0 B" },
		{ 1023, "1023 B" },
		{ 1024, "1.00 KiB" },
		{ 1536, "1.50 KiB" },
		{ 10 * 1024, "10.0 KiB" },
		{ 100 * 1024, "100 KiB" },
		{ 1023 * 1024, "1023 KiB" },
		{ 1024 * 1024 - 1, "1.00 MiB" }, /* not "1024 KiB" */
		{ 5ull << 30, "5.00 GiB" },
		{ 3ull << 40, "3.00 TiB" },
		{ UINT64_MAX, "16.0 EiB" },
	};
	char buf[PROGRESS_BYTES_LEN];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(progress_bytes_format(buf, cases[i].n), cases[i].want);
}

/* Not a terminal and not forced: nothing at all on stderr. */
static void test_silent(void **state)
{
	struct capture c;
	struct progress *p;
	char *out;

	capture_begin(&c);
	p = progress_create("quiet", 100, 0);
	progress_add(p, 10);
	sleep_ms(PROGRESS_REDRAW_MS + 50);
	progress_add(p, 10);
	progress_finish(p);
	out = capture_end(&c);
	assert_non_null(p);
	assert_string_equal(out, "");
	free(out);
}

static void test_forced_line(void **state)
{
	struct capture c;
	struct progress *p;
	char *out;
	int active;

	capture_begin(&c);
	p = progress_create("scan", 1000, PROGRESS_FORCE | PROGRESS_ITEMS);
	active = progress_active(p);
	progress_add(p, 100); /* before the first redraw time: no line yet */
	sleep_ms(PROGRESS_REDRAW_MS + 50);
	progress_add(p, 400);
	progress_printf(p, "a message %d\n", 42);
	progress_set(p, 1000);
	progress_free(p);
	out = capture_end(&c);
	assert_true(active);
	/* Drawn in place: carriage return, the line, erase to end of line. */
	assert_non_null(strstr(out, "\rscan  500 / 1000   50%"));
	assert_non_null(strstr(out, "\033[K"));
	/* The message erased the line first and the line came back after it. */
	assert_non_null(strstr(out, "\r\033[Ka message 42\n\rscan  500 / 1000"));
	assert_null(strstr(out, "100 / 1000")); /* nothing before the interval */
	/* progress_free leaves the terminal clean: the output ends erased. */
	assert_true(strlen(out) >= 4);
	assert_string_equal(out + strlen(out) - 4, "\r\033[K");
	free(out);
}

static void test_unknown_total_and_finish(void **state)
{
	struct capture c;
	struct progress *p;
	char *out;

	capture_begin(&c);
	p = progress_create("copy", 0, PROGRESS_FORCE);
	sleep_ms(PROGRESS_REDRAW_MS + 50);
	progress_add(p, 3 << 20);
	progress_set_label(p, "copy: phase 2");
	progress_set_total(p, 0);
	progress_finish(p);
	out = capture_end(&c);
	assert_non_null(strstr(out, "\rcopy  3.00 MiB  "));
	assert_null(strstr(out, "%")); /* no percentage, no ETA without a total */
	assert_null(strstr(out, "ETA"));
	/* The final line stays, with the new label and a newline. */
	assert_non_null(strstr(out, "copy: phase 2  3.00 MiB in 0:00, "));
	assert_int_equal(out[strlen(out) - 1], '\n');
	free(out);
}

/* QUIET wins over a terminal, FORCE wins over QUIET. */
static void test_flags(void **state)
{
	struct progress *p = progress_create("x", 1, PROGRESS_QUIET);

	assert_false(progress_active(p));
	progress_free(p);
	p = progress_create("x", 1, PROGRESS_QUIET | PROGRESS_FORCE);
	assert_true(progress_active(p));
	progress_free(p);
}

static void test_null(void **state)
{
	struct capture c;
	char *out;

	capture_begin(&c);
	progress_add(NULL, 1);
	progress_set(NULL, 1);
	progress_set_total(NULL, 1);
	progress_set_label(NULL, "x");
	progress_printf(NULL, "still printed\n");
	progress_finish(NULL);
	progress_free(NULL);
	out = capture_end(&c);
	assert_false(progress_active(NULL));
	assert_string_equal(out, "still printed\n");
	free(out);
}

#define THREADS 4
#define ADDS 200000

static void *adder(void *arg)
{
	struct progress *p = arg;
	int i;

	for (i = 0; i < ADDS; i++)
		progress_add(p, 1);
	return NULL;
}

/* Concurrent adds lose nothing (the final line shows the exact count). */
static void test_threads(void **state)
{
	struct capture c;
	struct progress *p;
	pthread_t th[THREADS];
	char *out, want[64];
	int i;

	capture_begin(&c);
	p = progress_create("mt", (uint64_t)THREADS * ADDS, PROGRESS_FORCE | PROGRESS_ITEMS);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, adder, p), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	progress_finish(p);
	out = capture_end(&c);
	snprintf(want, sizeof(want), "mt  %d in ", THREADS * ADDS);
	assert_non_null(strstr(out, want));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes_format),
		cmocka_unit_test(test_silent),
		cmocka_unit_test(test_forced_line),
		cmocka_unit_test(test_unknown_total_and_finish),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
