/*
 * progress.c - the progress line of long-running commands (progress.h).
 *
 * Hot path (progress_add): one atomic add and one clock read; only when the
 * redraw time has come does a caller try the draw mutex, and trylock means
 * a worker never waits for another thread that is writing to the terminal.
 * The whole line goes out in one write(2), starting with "\r" and ending
 * with "erase to end of line", so a shorter line leaves no debris.
 */
#include "tools/progress.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define LABEL_MAX 48
#define LINE_MAX_LEN 256
/* Time constant of the smoothed rate: short enough to follow a change of
 * speed (cache-hot start, then disk-bound), long enough not to jitter. */
#define RATE_TAU_NS 3000000000.0
/* Below this much elapsed time the average rate is shown: the first
 * samples are too noisy to smooth from. */
#define RATE_WARMUP_NS 1000000000ull

struct progress {
	_Atomic uint64_t done;
	_Atomic uint64_t next_draw_ns;
	uint64_t total;
	unsigned flags;
	bool drawing;    /* we draw at all */
	bool line_shown; /* a line is on the terminal now (must be erased) */
	/* Protects everything below and the terminal line. */
	pthread_mutex_t lock;
	char label[LABEL_MAX];
	uint64_t start_ns;
	uint64_t last_ns, last_done; /* previous rate sample */
	double rate;                 /* smoothed units per second, 0 = none yet */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

char *progress_bytes_format(char *buf, uint64_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n;
	unsigned u = 0;

	if (n < 1024) {
		snprintf(buf, PROGRESS_BYTES_LEN, "%u B", (unsigned)n);
		return buf;
	}
	v /= 1024.0;
	/* 1023.5 KiB would print as "1024 KiB": move up a unit before that. */
	while (v >= 1023.5 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	if (v < 9.995)
		snprintf(buf, PROGRESS_BYTES_LEN, "%.2f %s", v, units[u]);
	else if (v < 99.95)
		snprintf(buf, PROGRESS_BYTES_LEN, "%.1f %s", v, units[u]);
	else
		snprintf(buf, PROGRESS_BYTES_LEN, "%.0f %s", v, units[u]);
	return buf;
}

static void fmt_amount(const struct progress *p, char *buf, uint64_t n)
{
	if (p->flags & PROGRESS_ITEMS)
		snprintf(buf, PROGRESS_BYTES_LEN, "%llu", (unsigned long long)n);
	else
		progress_bytes_format(buf, n);
}

static void fmt_duration(char *buf, size_t cap, uint64_t secs)
{
	if (secs >= 360000) /* 100 hours: the estimate is meaningless anyway */
		snprintf(buf, cap, ">99h");
	else if (secs >= 3600)
		snprintf(buf, cap, "%u:%02u:%02u", (unsigned)(secs / 3600),
		         (unsigned)(secs / 60 % 60), (unsigned)(secs % 60));
	else
		snprintf(buf, cap, "%u:%02u", (unsigned)(secs / 60), (unsigned)(secs % 60));
}

static unsigned term_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

/* write(2) all of buf; the terminal may take a partial write. */
static void put_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(STDERR_FILENO, buf, len);

		if (w <= 0)
			return; /* a broken terminal is no reason to stop the task */
		buf += w;
		len -= (size_t)w;
	}
}

static void erase_locked(struct progress *p)
{
	if (p->line_shown)
		put_all("\r\033[K", 4);
	p->line_shown = false;
}

/* Update the smoothed rate with the sample since the last draw. */
static void rate_sample_locked(struct progress *p, uint64_t now, uint64_t done)
{
	double dt = (double)(now - p->last_ns), alpha;

	if (now - p->start_ns < RATE_WARMUP_NS) {
		p->rate = now > p->start_ns ? (double)done * 1e9 / (double)(now - p->start_ns) : 0.0;
	} else if (dt > 0) {
		double inst = (double)(done - p->last_done) * 1e9 / dt;

		/* dt/(dt+tau) is exp(-dt/tau) to first order without libm. */
		alpha = dt / (dt + RATE_TAU_NS);
		p->rate = p->rate > 0 ? p->rate + (inst - p->rate) * alpha : inst;
	}
	p->last_ns = now;
	p->last_done = done;
}

static void draw_locked(struct progress *p, uint64_t now)
{
	char line[LINE_MAX_LEN], tail[96], a[PROGRESS_BYTES_LEN], b[PROGRESS_BYTES_LEN];
	char r[PROGRESS_BYTES_LEN], eta[16];
	uint64_t done = atomic_load_explicit(&p->done, memory_order_relaxed);
	unsigned width = term_width(), pct = 0;
	size_t len, tlen, room, bar, fill, i;

	if (width >= LINE_MAX_LEN)
		width = LINE_MAX_LEN - 1;
	rate_sample_locked(p, now, done);
	fmt_amount(p, a, done);
	fmt_amount(p, r, (uint64_t)p->rate);
	if (p->total > 0) {
		uint64_t d = done > p->total ? p->total : done;

		fmt_amount(p, b, p->total);
		pct = (unsigned)(d * 100.0 / (double)p->total);
		if (p->rate >= 1.0)
			fmt_duration(eta, sizeof(eta), (uint64_t)((double)(p->total - d) / p->rate));
		else
			snprintf(eta, sizeof(eta), "?");
		len = (size_t)snprintf(line, sizeof(line), "%s  %s / %s  %3u%%", p->label, a, b, pct);
		tlen = (size_t)snprintf(tail, sizeof(tail), "  %s/s  ETA %s", r, eta);
	} else {
		len = (size_t)snprintf(line, sizeof(line), "%s  %s", p->label, a);
		tlen = (size_t)snprintf(tail, sizeof(tail), "  %s/s", r);
	}
	if (len >= sizeof(line))
		len = sizeof(line) - 1;
	/* A bar only when the total is known and it can be at least 10 wide;
	 * the last column stays free: writing it makes some terminals wrap. */
	room = width - 1;
	if (p->total > 0 && len + tlen + 4 + 10 <= room) {
		bar = room - len - tlen - 4;
		if (bar > 40)
			bar = 40;
		fill = (size_t)((double)bar * pct / 100.0);
		line[len++] = ' ';
		line[len++] = ' ';
		line[len++] = '[';
		for (i = 0; i < bar; i++)
			line[len++] = i < fill ? '#' : '.';
		line[len++] = ']';
	}
	if (len + tlen < sizeof(line)) {
		memcpy(line + len, tail, tlen);
		len += tlen;
	}
	if (len > room)
		len = room;
	put_all("\r", 1);
	put_all(line, len);
	put_all("\033[K", 3);
	p->line_shown = true;
	atomic_store_explicit(&p->next_draw_ns, now + PROGRESS_REDRAW_MS * 1000000ull,
	                      memory_order_relaxed);
}

/* Draw if the redraw time has come and nobody else is drawing. */
static void maybe_draw(struct progress *p)
{
	uint64_t now;

	if (!p->drawing)
		return;
	now = now_ns();
	if (now < atomic_load_explicit(&p->next_draw_ns, memory_order_relaxed))
		return;
	if (pthread_mutex_trylock(&p->lock) != 0)
		return;
	draw_locked(p, now);
	pthread_mutex_unlock(&p->lock);
}

struct progress *progress_create(const char *label, uint64_t total, unsigned flags)
{
	struct progress *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	atomic_init(&p->done, 0);
	p->total = total;
	p->flags = flags;
	if (flags & PROGRESS_FORCE)
		p->drawing = true;
	else
		p->drawing = !(flags & PROGRESS_QUIET) && isatty(STDERR_FILENO);
	pthread_mutex_init(&p->lock, NULL);
	snprintf(p->label, sizeof(p->label), "%s", label ? label : "");
	p->start_ns = p->last_ns = now_ns();
	/* The first line appears after one redraw interval: a task that ends
	 * sooner never flashes a line. */
	atomic_init(&p->next_draw_ns, p->start_ns + PROGRESS_REDRAW_MS * 1000000ull);
	return p;
}

void progress_free(struct progress *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	erase_locked(p);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void progress_finish(struct progress *p)
{
	char a[PROGRESS_BYTES_LEN], r[PROGRESS_BYTES_LEN], el[16], line[LINE_MAX_LEN];
	uint64_t now, secs, done;
	int n;

	if (!p)
		return;
	if (p->drawing) {
		pthread_mutex_lock(&p->lock);
		erase_locked(p);
		now = now_ns();
		done = atomic_load_explicit(&p->done, memory_order_relaxed);
		secs = (now - p->start_ns) / 1000000000ull;
		fmt_amount(p, a, done);
		fmt_amount(p, r, now > p->start_ns ?
		                     (uint64_t)((double)done * 1e9 / (double)(now - p->start_ns)) : 0);
		fmt_duration(el, sizeof(el), secs);
		n = snprintf(line, sizeof(line), "%s  %s in %s, %s/s\n", p->label, a, el, r);
		if (n > 0)
			put_all(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
		pthread_mutex_unlock(&p->lock);
	}
	progress_free(p);
}

void progress_add(struct progress *p, uint64_t n)
{
	if (!p)
		return;
	atomic_fetch_add_explicit(&p->done, n, memory_order_relaxed);
	maybe_draw(p);
}

void progress_set(struct progress *p, uint64_t done)
{
	if (!p)
		return;
	atomic_store_explicit(&p->done, done, memory_order_relaxed);
	maybe_draw(p);
}

void progress_set_total(struct progress *p, uint64_t total)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->total = total;
	pthread_mutex_unlock(&p->lock);
}

void progress_set_label(struct progress *p, const char *label)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	snprintf(p->label, sizeof(p->label), "%s", label ? label : "");
	pthread_mutex_unlock(&p->lock);
}

void progress_printf(struct progress *p, const char *fmt, ...)
{
	va_list ap;
	bool redraw = false;

	if (p) {
		pthread_mutex_lock(&p->lock);
		redraw = p->line_shown;
		erase_locked(p);
	}
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
	if (p) {
		if (redraw)
			draw_locked(p, now_ns());
		pthread_mutex_unlock(&p->lock);
	}
}

int progress_active(const struct progress *p)
{
	return p != NULL && p->drawing;
}
