/*
 * cmd_mount.c - "mixfs mount [-f] [-s] [-d] [-o OPTS] STORE MNT".
 *
 * mixfs options (-o cache=, level=, ...) are taken out with a fuse_opt table;
 * everything else (allow_other, ro, ...) goes on to libfuse, which rejects
 * what it does not know.  Also serves as the mount(8) helper (see mixfs.c).
 */
#include <errno.h>
#include <fuse_opt.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec/codec.h"
#include "fs/engine.h"
#include "fs/fuse_ll.h"
#include "tools/cmd.h"

/* -o values as strings; converted and checked after fuse_opt_parse so that
 * a bad value gets a message naming the option. */
struct mount_opts {
	char *cache;
	char *dirty;
	char *inflight;
	char *workers;
	char *level;
	char *readahead;
	char *pack_size;
	char *commit_ms;
	char *ns_sync_ms;
	char *max_ref_chain;
	char *gc_interval;
	char *rebase_idle;
	char *lazy;
	char *bytes;
	char *bytes_chunk;
	char *bg;
	char *blocks;
	char *kernel_ra;
	char *hints;
	char *max_read; /* refused: see apply_mount_opts */
	int writeback;
	int ro;
};

enum { KEY_RO, KEY_RW, KEY_DISCARD };

#define MOPT(t, m) { t, offsetof(struct mount_opts, m), 0 }

static const struct fuse_opt mount_opt_table[] = {
	MOPT("cache=%s", cache),
	MOPT("dirty=%s", dirty),
	MOPT("inflight=%s", inflight),
	MOPT("workers=%s", workers),
	MOPT("level=%s", level),
	MOPT("readahead=%s", readahead),
	MOPT("pack_size=%s", pack_size),
	MOPT("commit_ms=%s", commit_ms),
	MOPT("ns_sync_ms=%s", ns_sync_ms),
	MOPT("max_ref_chain=%s", max_ref_chain),
	MOPT("gc_interval=%s", gc_interval),
	MOPT("rebase_idle=%s", rebase_idle),
	MOPT("lazy=%s", lazy),
	MOPT("bytes=%s", bytes),
	MOPT("bytes_chunk=%s", bytes_chunk),
	MOPT("bg=%s", bg),
	MOPT("blocks=%s", blocks),
	MOPT("kernel_ra=%s", kernel_ra),
	MOPT("hints=%s", hints),
	MOPT("max_read=%s", max_read),
	{ "writeback", offsetof(struct mount_opts, writeback), 1 },
	{ "nowriteback", offsetof(struct mount_opts, writeback), 0 },
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("rw", KEY_RW),
	/* fstab words that mean something to mount(8) only. */
	FUSE_OPT_KEY("defaults", KEY_DISCARD),
	FUSE_OPT_KEY("auto", KEY_DISCARD),
	FUSE_OPT_KEY("noauto", KEY_DISCARD),
	FUSE_OPT_KEY("nofail", KEY_DISCARD),
	FUSE_OPT_KEY("_netdev", KEY_DISCARD),
	FUSE_OPT_KEY("user", KEY_DISCARD),
	FUSE_OPT_KEY("nouser", KEY_DISCARD),
	FUSE_OPT_KEY("users", KEY_DISCARD),
	FUSE_OPT_KEY("comment=", KEY_DISCARD),
	FUSE_OPT_END
};

static int mount_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct mount_opts *mo = data;

	switch (key) {
	case KEY_RO:
		mo->ro = 1;
		return 1; /* libfuse needs it too (MS_RDONLY) */
	case KEY_RW:
		mo->ro = 0; /* the last of ro and rw wins, as for libfuse */
		return 1;
	case KEY_DISCARD:
		return 0;
	default:
		return 1;
	}
}

/* "128M": the largest binary suffix that divides n exactly. */
static const char *size_str(uint64_t n, char buf[32])
{
	static const char *const suffix[] = {"", "K", "M", "G", "T"};
	int i = 0;

	while (i < 4 && n >= 1024 && n % 1024 == 0) {
		n /= 1024;
		i++;
	}
	/* (a plain %s: gcc 12 at -O0 crashed in its printf-format pass on
	 * the %.*s this had) */
	snprintf(buf, 32, "%llu%s", (unsigned long long)n, suffix[i]);
	return buf;
}

static void mount_usage(FILE *f, bool helper)
{
	struct eng_opts d;
	char b[5][32];

	if (helper) {
		fprintf(f, "usage: mount.mixfs STORE MNT [-sfnv] [-o OPTS]\n");
		return;
	}
	fprintf(f, "usage: mixfs mount [-f] [-s] [-d] [-o OPT[,OPT...]] STORE MNT\n");
	if (f != stdout) {
		fprintf(f, "Try 'mixfs mount --help' for the options.\n");
		return;
	}
	/* Defaults come from the engine, so this text cannot drift from it. */
	eng_opts_default(&d);
	fprintf(f,
	        "\n"
	        "Mount the mixfs store STORE on directory MNT; unmount with\n"
	        "fusermount3 -u MNT.\n"
	        "\n"
	        "  -f            stay in the foreground\n"
	        "  -s            single-threaded request loop\n"
	        "  -d            FUSE debug output (implies -f)\n"
	        "  -o OPTS       mount options, comma separated\n"
	        "  -h, --help    show this help\n"
	        "\n"
	        "mixfs options (sizes take K, M, G, T suffixes):\n");
	fprintf(f, "  cache=SIZE        decoded-chunk cache (default %s)\n",
	        size_str(d.cache_bytes, b[0]));
	fprintf(f, "  dirty=SIZE        buffered write data, all files (default %s)\n",
	        size_str(d.dirty_bytes, b[1]));
	fprintf(f, "  inflight=SIZE     chunks queued for compression (default %s)\n",
	        size_str(d.inflight_bytes, b[2]));
	fprintf(f, "  hints=SIZE        file-format hints of closed files kept for their\n"
	           "                    later writes, all files (default %s)\n",
	        size_str(d.hints_mem, b[3]));
	fprintf(f, "  workers=N         compression/decode threads (default %u; 0 = CPUs)\n",
	        d.workers);
	fprintf(f, "  level=LEVEL       codec for new data: raw, fast or mix (default: as\n"
	           "                    given to mkfs, mix unless -l said otherwise)\n");
	fprintf(f, "  readahead=N       chunks decoded ahead of sequential reads (default %u)\n",
	        d.readahead_chunks);
	fprintf(f, "  pack_size=SIZE    pack file rollover size (default %s)\n",
	        size_str(d.max_pack_bytes, b[3]));
	fprintf(f, "  commit_ms=N       group-commit interval of closed files (default %u)\n", d.commit_ms);
	fprintf(f, "  ns_sync_ms=N      creates, renames, unlinks, attribute changes are made durable\n"
	           "                    within N ms, fsync/fsyncdir at once (default %u; 0: each at once)\n",
	        d.ns_sync_ms);
	fprintf(f, "  max_ref_chain=N   bound on checkpoint-series reference chains, 0 = off\n"
	           "                    (default %u, at most %u)\n", d.max_ref_chain, ENG_MAX_REF_CHAIN);
	fprintf(f, "  gc_interval=N     seconds between online gc passes, 0 = off (default %u)\n",
	        d.gc_interval_s);
	fprintf(f, "  rebase_idle=MS    idle time before series deltas are turned around so\n"
	           "                    the newest version reads at full speed, 0 = off\n"
	           "                    (default %u)\n", d.rebase_idle_ms);
	fprintf(f, "  lazy=off|auto|all  code new chunks at fast, recompressed to the level\n"
	           "                    when idle: auto while the encoders are behind the\n"
	           "                    writer, all always; both need rebase_idle > 0\n"
	           "                    (default auto)\n");
	fprintf(f, "  bytes=light|cm    level mix, chunks that are not float tensors (text,\n"
	           "                    JSON, token ids): cm also tries a context-mixing\n"
	           "                    model, kept when 2%% smaller (15-25%% on text and\n"
	           "                    token ids, but decodes at ~2 MB/s) (default light)\n");
	fprintf(f, "  bytes_chunk=SIZE  average chunk of text files (source, JSON, logs):\n"
	           "                    SIZE/2 to 2*SIZE, so the models learn across more\n"
	           "                    bytes (a power of two, 64K to 4M; 0: the store's\n"
	           "                    chunks) (default %s)\n",
	        size_str(d.bytes_chunk, b[4]));
	fprintf(f, "  bg=idle|normal    CPU priority of recoding nobody waits for (rebase,\n"
	           "                    lazy chunks recompressed): idle takes only CPU time\n"
	           "                    nothing else wants (default idle)\n");
	fprintf(f, "  blocks=stored|logical  st_blocks: the stored bytes (du shows what a\n"
	           "                    file takes), or at least the size (a compressed file\n"
	           "                    does not look sparse: cp copies it inside the mount\n"
	           "                    with copy_file_range) (default stored)\n");
	fprintf(f, "  kernel_ra=SIZE    the kernel's readahead window for the mount: a\n"
	           "                    sequential read asks this much ahead, an mmap fault\n"
	           "                    reads this much around it (default 4M; 128K for\n"
	           "                    random access through mmap)\n");
	fprintf(f, "  writeback         enable the kernel writeback cache (default off)\n"
	           "  nowriteback       disable it (the default)\n"
	           "\n"
	           "FUSE and kernel options (passed through):\n");
	fflush(stdout);
	mixfs_fuse_help();
}

static void free_mount_opts(struct mount_opts *mo)
{
	free(mo->cache);
	free(mo->dirty);
	free(mo->inflight);
	free(mo->workers);
	free(mo->level);
	free(mo->readahead);
	free(mo->pack_size);
	free(mo->commit_ms);
	free(mo->ns_sync_ms);
	free(mo->max_ref_chain);
	free(mo->gc_interval);
	free(mo->rebase_idle);
	free(mo->lazy);
	free(mo->bytes);
	free(mo->bytes_chunk);
	free(mo->bg);
	free(mo->blocks);
	free(mo->kernel_ra);
	free(mo->hints);
	free(mo->max_read);
}

static int opt_size(const char *name, const char *val, uint64_t min, uint64_t *out)
{
	int rc;

	if (val == NULL)
		return 0;
	rc = mixfs_parse_size(val, out);
	if (rc == 0 && *out < min)
		rc = -ERANGE;
	if (rc < 0)
		fprintf(stderr, "mixfs mount: bad size %s=%s (at least %llu bytes; K/M/G/T suffixes)\n",
		        name, val, (unsigned long long)min);
	return rc;
}

static int opt_uint(const char *name, const char *val, uint64_t min, uint64_t max,
                    unsigned *out)
{
	uint64_t v;
	int rc;

	if (val == NULL)
		return 0;
	rc = mixfs_parse_uint(val, min, max, &v);
	if (rc < 0) {
		fprintf(stderr, "mixfs mount: bad value %s=%s (a number from %llu to %llu)\n", name,
		        val, (unsigned long long)min, (unsigned long long)max);
		return rc;
	}
	*out = (unsigned)v;
	return 0;
}

/* val one of names[0..n): *idx its index (unchanged when val is NULL);
 * otherwise -EINVAL and a message listing them ("a, b or c"). */
static int opt_choice(const char *name, const char *val, const char *const *names, int n,
                      int *idx)
{
	if (val == NULL)
		return 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(val, names[i]) == 0) {
			*idx = i;
			return 0;
		}
	}
	fprintf(stderr, "mixfs mount: bad value %s=%s (", name, val);
	for (int i = 0; i < n; i++)
		fprintf(stderr, "%s%s", names[i], i + 2 < n ? ", " : i + 1 < n ? " or " : ")\n");
	return -EINVAL;
}

/* Convert the -o strings into engine options; messages name the option. */
static int apply_mount_opts(const struct mount_opts *mo, struct mixfs_mount_cfg *cfg)
{
	struct eng_opts *o = &cfg->eng;
	int rc = 0;

	rc |= opt_size("cache", mo->cache, 1u << 20, &o->cache_bytes);
	rc |= opt_size("dirty", mo->dirty, 1u << 20, &o->dirty_bytes);
	rc |= opt_size("inflight", mo->inflight, 1u << 20, &o->inflight_bytes);
	rc |= opt_size("hints", mo->hints, 0, &o->hints_mem);
	if (mo->max_read) {
		/* passed on, the kernel took it but libfuse's INIT refused it
		 * after the mount had reported success: nothing was mounted */
		fprintf(stderr, "mixfs mount: max_read=%s is not supported\n", mo->max_read);
		rc |= -1;
	}
	rc |= opt_size("pack_size", mo->pack_size, 16u << 20, &o->max_pack_bytes);
	rc |= opt_uint("workers", mo->workers, 0, 1024, &o->workers);
	rc |= opt_uint("readahead", mo->readahead, 0, 1024, &o->readahead_chunks);
	rc |= opt_uint("commit_ms", mo->commit_ms, 1, 3600 * 1000, &o->commit_ms);
	rc |= opt_uint("ns_sync_ms", mo->ns_sync_ms, 0, 3600 * 1000, &o->ns_sync_ms);
	rc |= opt_uint("max_ref_chain", mo->max_ref_chain, 0, ENG_MAX_REF_CHAIN, &o->max_ref_chain);
	rc |= opt_uint("gc_interval", mo->gc_interval, 0, 86400, &o->gc_interval_s);
	rc |= opt_uint("rebase_idle", mo->rebase_idle, 0, 86400 * 1000, &o->rebase_idle_ms);
	o->rebase = o->rebase_idle_ms > 0;
	static const char *const lazy_names[] = { "off", "auto", "all" }; /* enum eng_lazy */
	static const char *const bg_names[] = { "idle", "normal" };
	static const char *const blocks_names[] = { "stored", "logical" };
	static const char *const bytes_names[] = { "light", "cm" };
	int bg = o->bg_idle ? 0 : 1, blocks = cfg->blocks_logical, bytes = o->bytes_cm;
	rc |= opt_choice("lazy", mo->lazy, lazy_names, 3, &o->lazy);
	rc |= opt_choice("bg", mo->bg, bg_names, 2, &bg);
	rc |= opt_choice("blocks", mo->blocks, blocks_names, 2, &blocks);
	rc |= opt_choice("bytes", mo->bytes, bytes_names, 2, &bytes);
	o->bg_idle = bg == 0;
	o->bytes_cm = bytes == 1;
	/* lazy=auto just stops coding at fast without the rebase thread; all
	 * would leave every new chunk at fast for good */
	if (o->lazy == ENG_LAZY_ALL && o->rebase_idle_ms == 0) {
		fprintf(stderr, "mixfs mount: lazy=all needs rebase_idle > 0 (with rebase_idle=0 "
		                "new chunks would stay at level fast)\n");
		rc = -EINVAL;
	}
	cfg->blocks_logical = blocks == 1;
	uint64_t bc = o->bytes_chunk;
	if (opt_size("bytes_chunk", mo->bytes_chunk, 0, &bc) < 0) {
		rc = -ERANGE;
	} else if (bc && (bc < (64u << 10) || bc > (4u << 20) || (bc & (bc - 1)))) {
		fprintf(stderr, "mixfs mount: bad size bytes_chunk=%s (0, or a power of two from 64K to 4M)\n",
		        mo->bytes_chunk);
		rc = -ERANGE;
	} else {
		o->bytes_chunk = (uint32_t)bc;
	}
	uint64_t ra = 0;
	rc |= opt_size("kernel_ra", mo->kernel_ra, 4096, &ra);
	if (ra > (1ull << 30)) {
		fprintf(stderr, "mixfs mount: bad size kernel_ra=%s (at most 1G)\n", mo->kernel_ra);
		rc = -ERANGE;
	} else if (ra) {
		cfg->kernel_ra_kb = (uint32_t)(ra / 1024);
	}
	if (mo->level != NULL) {
		int level = codec_level_parse(mo->level);

		if (level < 0) {
			fprintf(stderr, "mixfs mount: bad value level=%s (raw, fast or mix)\n",
			        mo->level);
			rc = -EINVAL;
		} else {
			o->level = level;
		}
	}
	o->read_only = mo->ro != 0;
	cfg->writeback = mo->writeback != 0;
	return rc < 0 ? -EINVAL : 0;
}

/* Whether absolute path p is dir or lies under it. */
static bool path_under(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(p, dir, n) == 0 && (p[n] == '/' || p[n] == 0);
}

/* Resolve STORE and MNT before anything forks or chdirs to "/", and check
 * what can be checked without opening the store. */
static int resolve_paths(const char *store, const char *mnt, char **store_abs, char **mnt_abs)
{
	struct stat st;

	*store_abs = realpath(store, NULL);
	if (*store_abs == NULL) {
		fprintf(stderr, "mixfs mount: cannot open store %s: %s\n", store,
		        mixfs_store_strerror(-errno));
		return -1;
	}
	if (stat(*store_abs, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mixfs mount: cannot open store %s: not a directory\n", store);
		return -1;
	}
	*mnt_abs = realpath(mnt, NULL);
	if (*mnt_abs == NULL) {
		fprintf(stderr, "mixfs mount: mount point %s: %s\n", mnt, strerror(errno));
		return -1;
	}
	if (stat(*mnt_abs, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mixfs mount: mount point %s is not a directory\n", mnt);
		return -1;
	}
	if (strcmp(*store_abs, *mnt_abs) == 0) {
		fprintf(stderr, "mixfs mount: store and mount point are the same directory\n");
		return -1;
	}
	/* the daemon's own files under the mount: its writes would wait on
	 * itself (a mount on STORE/packs hung for good, unkillable) */
	if (path_under(*store_abs, *mnt_abs)) {
		fprintf(stderr, "mixfs mount: the store %s lies under the mount point %s\n", *store_abs,
		        *mnt_abs);
		return -1;
	}
	/* the mount point's path below the store, if it is below it */
	size_t n = strlen(*store_abs);
	const char *rest = strncmp(*mnt_abs, *store_abs, n) == 0 && (*mnt_abs)[n] == '/'
	                           ? *mnt_abs + n : NULL;
	for (int k = 0; rest && k < 2; k++) {
		static const char *const sub[2] = { "/packs", "/index" };

		if (path_under(rest, sub[k])) {
			fprintf(stderr, "mixfs mount: mount point %s lies in the store's %s directory\n",
			        *mnt_abs, sub[k] + 1);
			return -1;
		}
	}
	return 0;
}

int cmd_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	/* mount(8) runs helpers as "mount.TYPE SOURCE DIR [-sfnv] [-o OPTS]",
	 * where -f means "fake" and -s "sloppy". */
	bool helper = strncmp(self, "mount.", 6) == 0;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct mount_opts mo;
	struct mixfs_mount_cfg cfg;
	char *store = NULL, *mnt = NULL;
	bool debug = false, fake = false;
	int c, status = MIXFS_EXIT_USAGE;

	memset(&mo, 0, sizeof(mo));
	memset(&cfg, 0, sizeof(cfg));
	eng_opts_default(&cfg.eng);
	/* Out of range = the level recorded by mkfs, unless -o level= says. */
	cfg.eng.level = -1;
	cfg.progname = "mixfs mount"; /* its messages begin as ours do */
	if (fuse_opt_add_arg(&args, "mixfs") != 0)
		goto nomem;
	while ((c = getopt_long(argc, argv, helper ? "sfnvo:h" : "fsdo:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (helper)
				fake = true;
			else
				cfg.foreground = true;
			break;
		case 's':
			if (!helper)
				cfg.single_thread = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'n':
		case 'v':
			break;
		case 'o':
			if (fuse_opt_add_arg(&args, "-o") != 0 || fuse_opt_add_arg(&args, optarg) != 0)
				goto nomem;
			break;
		case 'h':
			mount_usage(stdout, helper);
			status = MIXFS_EXIT_OK;
			goto out;
		default:
			mount_usage(stderr, helper);
			goto out;
		}
	}
	if (argc - optind != 2) {
		mount_usage(stderr, helper);
		goto out;
	}
	if (debug) {
		cfg.foreground = true;
		if (fuse_opt_add_arg(&args, "-d") != 0)
			goto nomem;
	}
	if (fuse_opt_parse(&args, &mo, mount_opt_table, mount_opt_proc) != 0)
		goto out;
	if (apply_mount_opts(&mo, &cfg) != 0)
		goto out;
	status = MIXFS_EXIT_ERROR;
	if (resolve_paths(argv[optind], argv[optind + 1], &store, &mnt) != 0)
		goto out;
	if (fake) {
		status = MIXFS_EXIT_OK;
		goto out;
	}
	cfg.store = store;
	cfg.mountpoint = mnt;
	if (!cfg.eng.read_only) /* a read-only mount takes no lock */
		mixfs_wait_store_lock("mount", store);
	status = mixfs_fuse_main(&cfg, &args);
	goto out;
nomem:
	fprintf(stderr, "mixfs mount: out of memory\n");
	status = MIXFS_EXIT_ERROR;
out:
	free(mnt);
	free(store);
	free_mount_opts(&mo);
	fuse_opt_free_args(&args);
	return status;
}
