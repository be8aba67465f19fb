/*
 * cmd_stubs.c - placeholders for subcommands that other files will provide.
 *
 * Replace a stub by implementing cmd_NAME in its own tools/cmd_NAME.c,
 * deleting it here and listing the new file in tools/meson.build.
 */
#include <stdio.h>

#include "tools/cmd.h"

static int not_yet(const char *name)
{
	fprintf(stderr, "mixfs %s: not implemented yet\n", name);
	return MIXFS_EXIT_USAGE;
}

int cmd_fsck(int argc, char **argv)
{
	return not_yet("fsck");
}

int cmd_gc(int argc, char **argv)
{
	return not_yet("gc");
}
