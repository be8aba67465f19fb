/*
 * fuse_ll.h - serve a mixfs store over the FUSE low-level API.
 *
 * fuse_ll.c is the only file that includes <fuse_lowlevel.h> (the engine,
 * index and codec link without FUSE).  Each FUSE request becomes one eng_*
 * call and exactly one reply; the engine's negative errno is flipped once,
 * at fuse_reply_err().
 *
 * The store is opened here, after the fork that puts the daemon in the
 * background and before the parent exits, because the engine's threads and
 * its LMDB environment do not survive a fork.  The parent waits until the
 * store is open and the file system is mounted, so "mixfs mount ... && ls
 * MNT" works and a bad store is reported on the caller's terminal.
 */
#ifndef MIXFS_FUSE_LL_H
#define MIXFS_FUSE_LL_H

#include <stdbool.h>

#include "fs/engine.h"

struct fuse_args;

struct mixfs_mount_cfg {
	const char *store;      /* absolute path of the store directory */
	const char *mountpoint; /* absolute path of an existing directory */
	struct eng_opts eng;    /* engine options (caches, workers, level, ...) */
	bool foreground;        /* do not daemonize (-f; -d implies it) */
	bool single_thread;     /* fuse_session_loop instead of loop_mt (-s) */
	bool writeback;         /* enable the kernel writeback cache */
	bool blocks_logical;    /* st_blocks at least the size (blocks=logical) */
	uint32_t kernel_ra_kb;  /* the mount's kernel readahead window (kernel_ra=), KiB */
	const char *progname;   /* prefix of error messages */
};

/*
 * Mount cfg->store on cfg->mountpoint and serve requests until unmounted
 * (fusermount3 -u) or signalled.  args holds the options for libfuse
 * (argv[0] first, then e.g. "-o", "allow_other,ro", "-d"); it is modified
 * (default_permissions, fsname and subtype are added) and not freed here.
 *
 * Errors are printed to stderr with the store or mount point named.
 * Returns a process exit status: 0 after a clean unmount, 1 on error, 2
 * when libfuse rejects an option.
 * Without cfg->foreground the calling process forks: the parent waits for
 * the daemon's start-up status and _exit()s with it; this function returns
 * in the daemon only, after unmount.
 */
int mixfs_fuse_main(const struct mixfs_mount_cfg *cfg, struct fuse_args *args);

/* Message for an eng_store_open() error, naming what is wrong with a store. */
const char *mixfs_store_strerror(int rc);

/* libfuse's version string, and its help for the options it handles
 * (printed to stdout), for mixfs --version and mixfs mount --help. */
const char *mixfs_fuse_version(void);
void mixfs_fuse_help(void);

#endif
