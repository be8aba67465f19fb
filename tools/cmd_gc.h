/*
 * cmd_gc.h - what "mixfs gc" and "mixfs fsck" share: the progress line for
 * the phases of fs/gc.h, and printing of file names.
 */
#ifndef MIXFS_TOOLS_CMD_GC_H
#define MIXFS_TOOLS_CMD_GC_H

#include <stdint.h>
#include <stdio.h>

struct progress;

/* Adapter from gc_progress_fn to tools/progress.h: one progress line per
 * phase, counted in bytes for the phases named in byte_phases (a
 * NULL-terminated list), in items otherwise. */
struct gc_cli_progress {
	const char *cmd;                /* "fsck", "gc" */
	const char *const *byte_phases;
	const char *phase;              /* current, or NULL */
	struct progress *p;
};

void gc_cli_progress_cb(void *arg, const char *phase, uint64_t done, uint64_t total);
/* Erase the line and free it. */
void gc_cli_progress_end(struct gc_cli_progress *cp);

/* Print a file name (raw bytes from the index) so that a name holding a
 * newline or escape sequence cannot forge output: control characters, DEL
 * and backslash as \ooo / \\. */
void gc_cli_put_path(FILE *f, const char *path);

#endif
