/*
 * cmd_fsck.c - "mixfs fsck [-r] [-q] [-j N] STORE": verify a store
 * (fs/gc.h) and print every problem with the files it affects.
 *
 * Output (stdout): one "PROBLEM kind: ..." or "REPAIRED kind: ..." line per
 * problem, each followed by "  file PATH (inode N) offset O" lines; a
 * summary; then one "damaged file: PATH" line per file whose data cannot
 * be read, so scripts can collect exactly those.  Exit: 0 clean (or every
 * problem repaired), 1 problems remain, 2 could not run.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fs/gc.h"
#include "fs/fuse_ll.h"
#include "tools/cmd.h"
#include "tools/cmd_gc.h"
#include "tools/progress.h"

#define FSCK_FILES_SHOWN 20 /* per problem; the damaged list has them all */

struct fsck_cli {
	struct gc_cli_progress cp;
	/* Damaged files, printed last: (ino, path) deduplicated by ino. */
	struct dmg {
		uint64_t ino;
		char *path;
	} *dmg;
	size_t ndmg, capdmg;
	bool oom;
};

static void dmg_add(struct fsck_cli *cli, const struct gc_file *g)
{
	for (size_t i = 0; i < cli->ndmg; i++)
		if (cli->dmg[i].ino == g->ino)
			return;
	if (cli->ndmg == cli->capdmg) {
		size_t nc = cli->capdmg ? 2 * cli->capdmg : 16;
		struct dmg *p = realloc(cli->dmg, nc * sizeof(*p));

		if (!p) {
			cli->oom = true;
			return;
		}
		cli->dmg = p;
		cli->capdmg = nc;
	}
	cli->dmg[cli->ndmg].ino = g->ino;
	cli->dmg[cli->ndmg].path = g->path ? strdup(g->path) : NULL;
	cli->ndmg++;
}

static void put_file(const struct gc_file *g)
{
	fputs("  file ", stdout);
	if (g->path)
		gc_cli_put_path(stdout, g->path);
	else
		fputs("(no name)", stdout);
	printf(" (inode %" PRIu64 ")", g->ino);
	if (g->off != UINT64_MAX)
		printf(" offset %" PRIu64, g->off);
	putchar('\n');
}

static void on_problem(void *arg, const struct gc_problem *p)
{
	struct fsck_cli *cli = arg;

	gc_cli_progress_end(&cli->cp);
	printf("%s %s: %s\n", p->repaired ? "REPAIRED" : "PROBLEM", gc_problem_kind_name(p->kind),
	       p->msg);
	for (size_t i = 0; i < p->nfiles; i++) {
		if (i < FSCK_FILES_SHOWN)
			put_file(&p->files[i]);
		/* Data problems make these files unreadable (in part). */
		if (p->data_lost)
			dmg_add(cli, &p->files[i]);
	}
	if (p->nfiles > FSCK_FILES_SHOWN)
		printf("  ... and %zu more files\n", p->nfiles - FSCK_FILES_SHOWN);
}

static void fsck_usage(FILE *f)
{
	fprintf(f, "usage: mixfs fsck [-r] [-q] [-j THREADS] STORE\n"
	           "\n"
	           "Verify every inode, directory entry, extent, chunk reference count,\n"
	           "pack record and frame checksum of a store.  Runs read-only next to a\n"
	           "mount; --repair needs the store unmounted.\n"
	           "\n"
	           "  -r, --repair        fix what needs no guessing (link counts, leaked\n"
	           "                      references, pack records, lost inodes into\n"
	           "                      /lost+found, unreferenced pack files)\n"
	           "  -q, --quick         check structure only, do not read the frames\n"
	           "  -j, --threads=N     decoding threads (default: CPUs)\n"
	           "  -h, --help          show this help\n"
	           "\n"
	           "exit status: 0 clean, 1 problems remain, 2 could not run\n");
}

static const char *fsck_strerror(int rc)
{
	switch (rc) {
	case -EBUSY:
		return "store in use (mounted, or a gc is running): --repair needs it unmounted";
	case -EINVAL:
		return "not a mixfs store";
	case -EIO:
		return "index records unreadable: its index (index/data.mdb) is damaged";
	default:
		return mixfs_store_strerror(rc);
	}
}

static void summary(const char *store, const struct gc_fsck_stats *st, bool quick)
{
	char b1[PROGRESS_BYTES_LEN], b2[PROGRESS_BYTES_LEN], b3[PROGRESS_BYTES_LEN],
		b4[PROGRESS_BYTES_LEN], b5[PROGRESS_BYTES_LEN];

	printf("%s: %" PRIu64 " inodes, %" PRIu64 " directory entries, %" PRIu64 " extents, %"
	       PRIu64 " chunks\n", store, st->inodes, st->dirents, st->extents, st->chunks);
	if (quick)
		printf("frames: not read (--quick)\n");
	else
		/* every chunk's frame: decoded (frames_verified, failed or
		 * not) or failed before (missing pack, past its end, no
		 * reference); damaged counts both kinds of failure */
		printf("frames: %" PRIu64 " checked, %" PRIu64 " damaged (%s decoded, SHA-256 "
		       "compared)\n",
		       st->chunks, st->damaged_chunks, progress_bytes_format(b1, st->bytes_verified));
	printf("packs: %" PRIu64 " records, %" PRIu64 " files, %s (%s on disk): live %s, "
	       "dead %s, orphan %s", st->packs, st->pack_files,
	       progress_bytes_format(b1, st->pack_bytes), progress_bytes_format(b5, st->disk_bytes),
	       progress_bytes_format(b2, st->live_bytes), progress_bytes_format(b3, st->dead_bytes),
	       progress_bytes_format(b4, st->orphan_bytes));
	if (st->orphan_packs_removed)
		printf(" (%" PRIu64 " unreferenced files, %" PRIu64 " of them removed, %s)",
		       st->orphan_packs, st->orphan_packs_removed,
		       progress_bytes_format(b5, st->orphan_removed_bytes));
	else if (st->orphan_packs)
		printf(" (%" PRIu64 " unreferenced files)", st->orphan_packs);
	if (st->dead_bytes + st->orphan_bytes > st->orphan_removed_bytes)
		printf("; mixfs gc reclaims them");
	putchar('\n');
	if (st->orphan_inodes)
		printf("unlinked inodes still open at the last run: %" PRIu64 " (deleted by the "
		       "next mount or mixfs gc)\n", st->orphan_inodes);
	if (st->in_use)
		printf("note: store in use by another process (mounted?): checked one read-only "
		       "snapshot; orphan bytes of packs being written are expected\n");
	printf("damaged: %" PRIu64 " chunks, %" PRIu64 " files\n", st->damaged_chunks,
	       st->damaged_files);
	printf("problems: %" PRIu64 " found, %" PRIu64 " repaired\n", st->problems, st->repaired);
}

int cmd_fsck(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repair", no_argument, NULL, 'r' },
		{ "quick", no_argument, NULL, 'q' },
		{ "threads", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const byte_phases[] = { "frames", NULL };
	struct fsck_cli cli = { .cp = { .cmd = "fsck", .byte_phases = byte_phases } };
	struct gc_fsck_opts o = { 0 };
	struct gc_fsck_stats st;
	uint64_t v;
	int c, rc;

	while ((c = getopt_long(argc, argv, "rqj:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o.repair = true;
			break;
		case 'q':
			o.quick = true;
			break;
		case 'j':
			if (mixfs_parse_uint(optarg, 1, 256, &v) < 0) {
				fprintf(stderr, "mixfs fsck: threads '%s' is not a number from 1 to 256\n",
				        optarg);
				return MIXFS_EXIT_USAGE;
			}
			o.threads = (unsigned)v;
			break;
		case 'h':
			fsck_usage(stdout);
			return MIXFS_EXIT_OK;
		default:
			fsck_usage(stderr);
			return MIXFS_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fsck_usage(stderr);
		return MIXFS_EXIT_USAGE;
	}
	/* also without --repair: right after an unmount, check what the
	 * daemon committed last, not a snapshot from before */
	mixfs_wait_store_lock("fsck", argv[optind]);
	o.problem = on_problem;
	o.problem_arg = &cli;
	o.progress = gc_cli_progress_cb;
	o.progress_arg = &cli.cp;
	rc = gc_fsck(argv[optind], &o, &st);
	gc_cli_progress_end(&cli.cp);
	if (rc < 0) {
		fprintf(stderr, "mixfs fsck: %s: %s\n", argv[optind], fsck_strerror(rc));
		rc = MIXFS_EXIT_USAGE; /* 2: could not run */
		goto out;
	}
	summary(argv[optind], &st, o.quick);
	for (size_t i = 0; i < cli.ndmg; i++) {
		fputs("damaged file: ", stdout);
		if (cli.dmg[i].path)
			gc_cli_put_path(stdout, cli.dmg[i].path);
		else
			printf("(inode %" PRIu64 ", no name)", cli.dmg[i].ino);
		putchar('\n');
	}
	if (cli.oom)
		printf("damaged file list incomplete: out of memory\n");
	rc = rc > 0 ? MIXFS_EXIT_ERROR : MIXFS_EXIT_OK;
out:
	for (size_t i = 0; i < cli.ndmg; i++)
		free(cli.dmg[i].path);
	free(cli.dmg);
	return rc;
}
