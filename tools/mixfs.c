/*
 * mixfs.c - the mixfs command: "mixfs CMD [OPTIONS] ARGS".
 *
 * Dispatches to cmd_CMD() (tools/cmd.h).  Also acts as a mount helper:
 * mount(8) -t fuse.mixfs runs "mixfs STORE MNT -o OPTS" through mount.fuse3,
 * and a link named mount.mixfs or mount.fuse.mixfs is run as
 * "mount.mixfs STORE MNT [-sfnv] [-o OPTS]"; both mount the store.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "index/idx.h"
#include "tools/cmd.h"

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct cmd cmds[] = {
	{ "mkfs", cmd_mkfs, "create a new store" },
	{ "mount", cmd_mount, "mount a store (FUSE)" },
	{ "stats", cmd_stats, "show logical, deduplicated and stored bytes" },
	{ "fsck", cmd_fsck, "verify every reference and checksum of a store" },
	{ "gc", cmd_gc, "reclaim the space of deleted data" },
	{ "bench", cmd_bench, "measure ratio and speed of the codecs" },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: mixfs COMMAND [OPTIONS] ARGS\n"
	           "       mixfs --help | --version\n"
	           "\n"
	           "A compressing, deduplicating FUSE file system for ML checkpoints.\n"
	           "\n"
	           "commands:\n");
	for (i = 0; i < NCMDS; i++)
		fprintf(f, "  %-7s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\n"
	           "\"mixfs COMMAND --help\" describes one command; see also mixfs(8).\n"
	           "\"mixfs STORE MNT -o OPTS\" is \"mixfs mount\" (for mount -t fuse.mixfs).\n");
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

int main(int argc, char **argv)
{
	const char *self = argc > 0 ? base_name(argv[0]) : "mixfs";
	struct stat st;
	size_t i;

	/* LMDB crashing on a damaged index: a message naming the file, and
	 * fsck's "could not run" */
	idx_guard(argc > 1 && strcmp(argv[1], "fsck") == 0 ? MIXFS_EXIT_USAGE : MIXFS_EXIT_ERROR);
	if (strncmp(self, "mount.", 6) == 0)
		return cmd_mount(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return MIXFS_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return MIXFS_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		mixfs_print_version(stdout);
		return MIXFS_EXIT_OK;
	}
	for (i = 0; i < NCMDS; i++) {
		if (strcmp(argv[1], cmds[i].name) == 0) {
			/* getopt names argv[0] in its messages: "mixfs mkfs:" */
			static char name[32];

			snprintf(name, sizeof(name), "mixfs %s", cmds[i].name);
			argv[1] = name;
			return cmds[i].fn(argc - 1, argv + 1);
		}
	}
	/* "mixfs STORE MNT -o OPTS", as mount.fuse3 runs it; a word that is
	 * no path of a directory is a mistyped command ("mixfs stat DIR") */
	if (argv[1][0] != '-' && argc >= 3 &&
	    (strchr(argv[1], '/') || (stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode))))
		return cmd_mount(argc, argv);
	fprintf(stderr, "mixfs: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return MIXFS_EXIT_USAGE;
}
