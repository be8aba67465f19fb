/*
 * cmd_gc.c - "mixfs gc [-t F] [-n] [--verify] STORE": compact pack files
 * (fs/gc.h), plus the progress/printing helpers fsck shares (cmd_gc.h).
 */
#include "tools/cmd_gc.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fs/gc.h"
#include "fs/fuse_ll.h"
#include "tools/cmd.h"
#include "tools/progress.h"

void gc_cli_progress_cb(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	struct gc_cli_progress *cp = arg;

	if (cp->phase != phase && (!cp->phase || strcmp(cp->phase, phase) != 0)) {
		unsigned flags = PROGRESS_ITEMS;
		char label[64];

		for (const char *const *b = cp->byte_phases; b && *b; b++)
			if (strcmp(*b, phase) == 0)
				flags = 0;
		progress_free(cp->p);
		snprintf(label, sizeof(label), "%s: %s", cp->cmd, phase);
		cp->p = progress_create(label, total, flags);
		cp->phase = phase;
	}
	progress_set_total(cp->p, total);
	progress_set(cp->p, done);
}

void gc_cli_progress_end(struct gc_cli_progress *cp)
{
	progress_free(cp->p);
	cp->p = NULL;
	cp->phase = NULL;
}

void gc_cli_put_path(FILE *f, const char *path)
{
	for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s < 0x20 || *s == 0x7f)
			fprintf(f, "\\%03o", *s);
		else
			fputc(*s, f);
	}
}

static void gc_usage(FILE *f)
{
	fprintf(f, "usage: mixfs gc [-t FRACTION] [-n] [--verify] STORE\n"
	           "\n"
	           "Reclaim the space of deleted data in an unmounted store: remove pack\n"
	           "files nothing references, and copy the live frames of packs whose\n"
	           "reclaimable share is at least FRACTION into a new pack.\n"
	           "\n"
	           "  -t, --threshold=F  compact packs with at least this share of dead or\n"
	           "                     orphan bytes, 0 to 1 (default 0.5; 0 = any)\n"
	           "  -n, --dry-run      show what would be done, change nothing (also\n"
	           "                     beside a mount: then ignoring its online gc)\n"
	           "      --verify       decode every frame before copying it\n"
	           "  -h, --help         show this help\n");
}

static int parse_fraction(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v >= 0 && v <= 1))
		return -EINVAL;
	*out = v;
	return 0;
}

static const char *gc_strerror(int rc)
{
	switch (rc) {
	case -EBUSY:
		return "store in use (mounted, or another gc/fsck/stats): unmount it first";
	case -EINVAL:
		return "not a mixfs store";
	case -ENOSPC:
		return "no space left to copy live frames (what was freed so far stays freed)";
	case -EIO:
		return "input/output error: a pack or the index (index/data.mdb) is damaged or "
		       "unreadable (run mixfs fsck)";
	default:
		return mixfs_store_strerror(rc);
	}
}

/* MIXFS_GC_STOP=copy|sync|commit: the test hook of struct gc_opts. */
static enum gc_stop stop_from_env(void)
{
	const char *s = getenv("MIXFS_GC_STOP");

	if (!s)
		return GC_STOP_NONE;
	if (strcmp(s, "copy") == 0)
		return GC_STOP_AFTER_COPY;
	if (strcmp(s, "sync") == 0)
		return GC_STOP_AFTER_SYNC;
	if (strcmp(s, "commit") == 0)
		return GC_STOP_AFTER_COMMIT;
	return GC_STOP_NONE;
}

int cmd_gc(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "threshold", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "verify", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const byte_phases[] = { "copy", NULL };
	struct gc_cli_progress cp = { .cmd = "gc", .byte_phases = byte_phases };
	char b1[PROGRESS_BYTES_LEN], b2[PROGRESS_BYTES_LEN], b3[PROGRESS_BYTES_LEN],
		b4[PROGRESS_BYTES_LEN];
	struct gc_stats st;
	struct gc_opts o;
	int c, rc;

	gc_opts_default(&o);
	while ((c = getopt_long(argc, argv, "t:nh", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_fraction(optarg, &o.threshold) < 0) {
				fprintf(stderr, "mixfs gc: threshold '%s' is not a number from 0 to 1\n",
				        optarg);
				return MIXFS_EXIT_USAGE;
			}
			break;
		case 'n':
			o.dry_run = true;
			break;
		case 'V':
			o.verify = true;
			break;
		case 'h':
			gc_usage(stdout);
			return MIXFS_EXIT_OK;
		default:
			gc_usage(stderr);
			return MIXFS_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		gc_usage(stderr);
		return MIXFS_EXIT_USAGE;
	}
	o.stop = stop_from_env();
	o.progress = gc_cli_progress_cb;
	o.progress_arg = &cp;
	if (!o.dry_run)
		mixfs_wait_store_lock("gc", argv[optind]);
	rc = gc_run(argv[optind], &o, &st);
	gc_cli_progress_end(&cp);
	if (rc == -ECANCELED && o.stop != GC_STOP_NONE) {
		fprintf(stderr, "mixfs gc: stopped by MIXFS_GC_STOP=%s (test hook)\n",
		        getenv("MIXFS_GC_STOP"));
		return MIXFS_EXIT_ERROR;
	}
	if (rc < 0) {
		fprintf(stderr, "mixfs gc: %s: %s\n", argv[optind], gc_strerror(rc));
		return MIXFS_EXIT_ERROR;
	}
	/* a dry run prints a plan, worded as what gc would do */
	printf("%s%s: %" PRIu64 " packs scanned; ", o.dry_run ? "dry run, " : "", argv[optind],
	       st.packs_scanned);
	printf(o.dry_run ? "would compact %" PRIu64 ", empty %" PRIu64 ", remove %" PRIu64 " unreferenced"
	           : "%" PRIu64 " compacted, %" PRIu64 " emptied, %" PRIu64 " unreferenced removed",
	       st.packs_compacted, st.packs_emptied, st.orphan_packs);
	if (st.packs_kept)
		printf(o.dry_run ? ", keep %" PRIu64 " (unreadable frames: run mixfs fsck)"
		           : ", %" PRIu64 " kept (unreadable frames: run mixfs fsck)",
		       st.packs_kept);
	if (st.orphan_inodes)
		printf(o.dry_run ? "; would delete %" PRIu64 " unlinked inode%s"
		           : "; %" PRIu64 " unlinked inode%s deleted",
		       st.orphan_inodes, st.orphan_inodes == 1 ? "" : "s");
	printf(o.dry_run ? "\nwould free %s in place%s, copy %s (%" PRIu64 " chunk%s)"
	           : "\n%s freed in place%s, %s copied (%" PRIu64 " chunk%s)",
	       progress_bytes_format(b1, st.bytes_punched),
	       st.punch_unsupported ? " (this file system cannot punch holes: copying only)" : "",
	       progress_bytes_format(b4, st.bytes_copied), st.chunks_moved,
	       st.chunks_moved == 1 ? "" : "s");
	printf("; packs on disk %s -> %s\n", progress_bytes_format(b2, st.bytes_before),
	       progress_bytes_format(b3, st.bytes_after));
	return st.packs_kept ? MIXFS_EXIT_ERROR : MIXFS_EXIT_OK;
}
