/*
 * cmd_bench.c - "mixfs bench [OPTIONS]": the codec comparison table.
 *
 * The benchmark itself is tools/bench/codec_bench.sh (it builds the corpora,
 * runs tools/bench/codec_bench and the peers zstd, xz and zpaq, and prints
 * one markdown table); this command finds the script and execs it with the
 * same options.  The script is looked up in $MIXFS_SRCDIR, else in the
 * directories above this binary (a build directory inside the source tree:
 * BUILD/tools/mixfs -> SRC/tools/bench/codec_bench.sh), else in the source
 * tree the binary was built from (MIXFS_SOURCE_DIR).  When codec_bench
 * was built next to this binary (BUILD/tools/bench/codec_bench) and
 * $CODEC_BENCH is unset, the script is told to use that one.
 */
#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cmd.h"

#define BENCH_SCRIPT "tools/bench/codec_bench.sh"

/* Directory of the running binary into dir[0..cap), without the slash. */
static int exe_dir(char *dir, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", dir, cap - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	dir[n] = '\0';
	slash = strrchr(dir, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	return 0;
}

/* src/BENCH_SCRIPT is readable. */
static bool has_script(const char *src)
{
	char path[PATH_MAX + sizeof(BENCH_SCRIPT) + 1];

	snprintf(path, sizeof(path), "%s/%s", src, BENCH_SCRIPT);
	return access(path, R_OK) == 0;
}

/* Find SRC with SRC/BENCH_SCRIPT: $MIXFS_SRCDIR, else up to three levels
 * above the binary's directory, else the source tree the binary was built
 * from (a build directory outside it).  Fills src and returns 0, or
 * -ENOENT. */
static int find_srcdir(const char *bindir, char *src, size_t cap)
{
	const char *env = getenv("MIXFS_SRCDIR");

	if (env && *env) {
		snprintf(src, cap, "%s", env);
		return has_script(src) ? 0 : -ENOENT;
	}
	if (bindir) {
		snprintf(src, cap, "%s", bindir);
		for (int up = 0; up <= 3; up++) {
			char *slash;

			if (has_script(src))
				return 0;
			slash = strrchr(src, '/');
			if (!slash || slash == src)
				break;
			*slash = '\0';
		}
	}
#ifdef MIXFS_SOURCE_DIR
	snprintf(src, cap, "%s", MIXFS_SOURCE_DIR);
	if (has_script(src))
		return 0;
#endif
	return -ENOENT;
}

int cmd_bench(int argc, char **argv)
{
	char bindir[PATH_MAX], src[PATH_MAX], script[PATH_MAX + sizeof(BENCH_SCRIPT) + 1];
	char cb[PATH_MAX + 32];
	int have_bindir = exe_dir(bindir, sizeof(bindir)) == 0;
	char **args;

	if (find_srcdir(have_bindir ? bindir : NULL, src, sizeof(src)) < 0) {
		fprintf(stderr, "mixfs bench: %s not found; set MIXFS_SRCDIR to the "
		                "mixfs source tree\n", BENCH_SCRIPT);
		return MIXFS_EXIT_ERROR;
	}
	snprintf(script, sizeof(script), "%s/%s", src, BENCH_SCRIPT);
	if (setenv("MIXFS_SRCDIR", src, 1) < 0 || setenv("MIXFS_BENCH_PROG", "mixfs bench", 1) < 0)
		goto fail;
	if (have_bindir && !getenv("CODEC_BENCH")) {
		snprintf(cb, sizeof(cb), "%s/bench/codec_bench", bindir);
		if (access(cb, X_OK) == 0 && setenv("CODEC_BENCH", cb, 1) < 0)
			goto fail;
	}

	/* argv[0] = "mixfs bench"; pass the options on, with --help as -h */
	args = calloc((size_t)argc + 2, sizeof(*args));
	if (!args)
		goto fail;
	args[0] = "bash";
	args[1] = script;
	for (int i = 1; i < argc; i++)
		args[i + 1] = strcmp(argv[i], "--help") == 0 ? "-h" : argv[i];
	execvp("bash", args);
	free(args);
fail:
	fprintf(stderr, "mixfs bench: %s: %s\n", script, strerror(errno));
	return MIXFS_EXIT_ERROR;
}
