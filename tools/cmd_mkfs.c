/*
 * cmd_mkfs.c - "mixfs mkfs [-l LEVEL] STORE": create an empty store.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"
#include "fs/engine.h"
#include "tools/cmd.h"

static void mkfs_usage(FILE *f)
{
	fprintf(f, "usage: mixfs mkfs [-l raw|fast|mix] STORE\n"
	           "\n"
	           "Create a new mixfs store in directory STORE (created if missing,\n"
	           "must be empty otherwise).\n"
	           "\n"
	           "  -l, --level=LEVEL  default codec level for new data: raw, fast or\n"
	           "                     mix (default mix); mount -o level= overrides it\n"
	           "  -h, --help         show this help\n");
}

static const char *mkfs_strerror(int rc)
{
	switch (rc) {
	case -EEXIST:
	case -ENOTEMPTY:
		return "directory is not empty (a store already, or other files)";
	case -ENOTDIR:
		return "not a directory";
	default:
		return strerror(-rc);
	}
}

int cmd_mkfs(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int level = CODEC_LEVEL_MIX;
	int c, rc;

	while ((c = getopt_long(argc, argv, "l:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			level = codec_level_parse(optarg);
			if (level < 0) {
				fprintf(stderr, "mixfs mkfs: unknown level '%s' (raw, fast or mix)\n",
				        optarg);
				return MIXFS_EXIT_USAGE;
			}
			break;
		case 'h':
			mkfs_usage(stdout);
			return MIXFS_EXIT_OK;
		default:
			mkfs_usage(stderr);
			return MIXFS_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		mkfs_usage(stderr);
		return MIXFS_EXIT_USAGE;
	}
	rc = eng_mkfs(argv[optind], level);
	if (rc < 0) {
		fprintf(stderr, "mixfs mkfs: cannot create store %s: %s\n", argv[optind],
		        mkfs_strerror(rc));
		return MIXFS_EXIT_ERROR;
	}
	printf("created mixfs store %s (level %s)\n", argv[optind], codec_level_name(level));
	return MIXFS_EXIT_OK;
}
