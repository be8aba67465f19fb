/*
 * cmd.h - subcommands of the mixfs binary and the helpers they share.
 *
 * tools/mixfs.c dispatches "mixfs CMD ARGS..." to cmd_CMD(argc, argv) with
 * argv[0] = "mixfs CMD" (so getopt starts at optind 1 as usual, and its
 * messages begin "mixfs CMD:").  Each returns a
 * process exit status: MIXFS_EXIT_OK, MIXFS_EXIT_ERROR (the operation
 * failed; a message naming the store or file was printed) or
 * MIXFS_EXIT_USAGE (bad arguments; a usage line was printed).  Each
 * accepts -h/--help.
 */
#ifndef MIXFS_TOOLS_CMD_H
#define MIXFS_TOOLS_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define MIXFS_EXIT_OK 0
#define MIXFS_EXIT_ERROR 1
#define MIXFS_EXIT_USAGE 2

int cmd_mkfs(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Parse a byte count: decimal digits with an optional binary suffix K, M,
 * G or T (case-insensitive, optionally followed by "iB" or "B"): "64K",
 * "1G", "4096".  Returns 0, -EINVAL (not a size) or -ERANGE (overflow). */
int mixfs_parse_size(const char *s, uint64_t *out);

/* Parse a decimal unsigned number in [min, max].  Returns 0, -EINVAL or
 * -ERANGE. */
int mixfs_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Print "mixfs VERSION" and library versions to f. */
void mixfs_print_version(FILE *f);

/* /proc/self/mountinfo: undo a field's octal escapes (in place); split a
 * line into its first five fields and the mount source, true for a
 * fuse.mixfs mount (fields still escaped); the mount point of a mount of
 * the whole store (absolute path, as mixfs mount gives it as fsname),
 * malloc'd, or NULL. */
void mixfs_mi_unescape(char *s);
bool mixfs_mi_parse(char *line, char *fld[5], char **src);
char *mixfs_mount_of_store(const char *store);

/* fusermount3 -u returns as soon as the kernel lets go of the mount point;
 * the daemon commits after that and holds STORE/lock until it has.  Before
 * a command that needs the lock (mount, gc, fsck --repair) takes it: while
 * a process holds it and the store has no mount in this mount namespace,
 * wait, up to MIXFS_LOCK_WAIT seconds (environment; default
 * MIXFS_LOCK_WAIT_S, 0 = do not wait), saying so after a second.  Returns
 * without the lock either way: the command's own locking then reports a
 * store still in use. */
#define MIXFS_LOCK_WAIT_S 60
void mixfs_wait_store_lock(const char *cmd, const char *store);

#endif
