/*
 * progress.h - a progress line for long-running commands (fsck, gc, bench,
 * stats --files): bytes done / total, percentage, rate and ETA, redrawn in
 * place on stderr when stderr is a terminal, and silent otherwise, so that
 * scripts and logs see only the command's real output.
 *
 * Use:
 *
 *     struct progress *p = progress_create("fsck", total_bytes, 0);
 *     for (...) {
 *             ...verify a chunk...
 *             progress_add(p, chunk_raw_len);
 *             if (bad)
 *                     progress_printf(p, "fsck: chunk %s: bad checksum\n", hex);
 *     }
 *     progress_free(p);   // erases the line; NULL is fine
 *
 * The line looks like
 *
 *     fsck  1.20 GiB / 4.00 GiB  30%  [######........]  512 MiB/s  ETA 0:06
 *
 * and is cut to the terminal width.  It is redrawn at most every
 * PROGRESS_REDRAW_MS milliseconds however often progress_add is called, so
 * calling it per chunk is cheap (an atomic add and a clock read).
 *
 * Every function accepts p == NULL and then does nothing (progress_printf
 * still prints), so a caller need not check progress_create's result: NULL
 * means out of memory, and the command simply runs without a progress line.
 *
 * Threads: progress_add, progress_set and progress_printf may be called
 * from several threads at once (the counter is atomic, drawing takes a
 * mutex with trylock so no worker ever waits for the terminal).
 * progress_set_total, progress_set_label and progress_free are for the
 * thread that created the reporter.
 */
#ifndef MIXFS_TOOLS_PROGRESS_H
#define MIXFS_TOOLS_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#define PROGRESS_REDRAW_MS 200

enum {
	PROGRESS_QUIET = 1u << 0, /* never draw (e.g. a --quiet option) */
	PROGRESS_FORCE = 1u << 1, /* draw even if stderr is not a terminal (tests,
	                           * a --progress option); wins over QUIET */
	PROGRESS_ITEMS = 1u << 2, /* count items, not bytes: "1200 / 5000" */
};

struct progress;

/* A reporter for a task shown as label (copied), with total units to do
 * (0 = unknown: no percentage, no ETA).  Draws only if stderr is a terminal
 * (isatty(2)), unless flags say otherwise.  Returns NULL only when out of
 * memory (and every function accepts NULL). */
struct progress *progress_create(const char *label, uint64_t total, unsigned flags);

/* Erase the progress line (the terminal is left as if it had never been
 * drawn) and free p.  NULL is fine. */
void progress_free(struct progress *p);

/* Like progress_free, but first leaves one final line on the terminal with
 * the total done, the elapsed time and the average rate, e.g.
 * "gc  4.00 GiB in 0:12, 341 MiB/s".  Silent when not drawing. */
void progress_finish(struct progress *p);

/* Count n more units done. */
void progress_add(struct progress *p, uint64_t n);

/* Set the units done to an absolute value (for callers that know it). */
void progress_set(struct progress *p, uint64_t done);

/* Change the total (when it becomes known or grows) and the label (for a
 * task with phases: "gc: scan", "gc: copy").  The rate and ETA continue. */
void progress_set_total(struct progress *p, uint64_t total);
void progress_set_label(struct progress *p, const char *label);

/* Print a message on stderr without garbling the progress line: the line
 * is erased, the message printed, and the line redrawn below it.  Prints
 * even when p is NULL or the reporter is silent. */
void progress_printf(struct progress *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Is p drawing?  (A caller may skip work done only for the display.) */
int progress_active(const struct progress *p);

/* Format a byte count for people: "0 B", "512 B", "1.50 KiB", "12.3 MiB",
 * "1023 GiB", "4.00 TiB" (binary units, 3 significant digits).  buf must hold
 * PROGRESS_BYTES_LEN bytes; returns buf. */
#define PROGRESS_BYTES_LEN 24
char *progress_bytes_format(char *buf, uint64_t n);

#endif
