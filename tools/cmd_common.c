/*
 * cmd_common.c - helpers shared by the mixfs subcommands: arguments, the
 * store's mounts (/proc/self/mountinfo), waiting for a store's lock.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <unistd.h>

#include "fs/fuse_ll.h"
#include "tools/cmd.h"

#ifndef MIXFS_VERSION
#define MIXFS_VERSION "unknown"
#endif

/* strtoull accepts leading spaces and a minus sign (wrapping around);
 * a size on the command line must be plain digits. */
static int parse_digits(const char *s, uint64_t *out, char **end)
{
	unsigned long long v;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

int mixfs_parse_size(const char *s, uint64_t *out)
{
	uint64_t v, mul = 1;
	char *end;
	int rc;

	rc = parse_digits(s, &v, &end);
	if (rc < 0)
		return rc;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mul = 1ull << 10;
		break;
	case 'M':
		mul = 1ull << 20;
		break;
	case 'G':
		mul = 1ull << 30;
		break;
	case 'T':
		mul = 1ull << 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end != '\0') {
		end++;
		if (*end != '\0' && strcasecmp(end, "iB") != 0 && strcasecmp(end, "B") != 0)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

int mixfs_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	char *end;
	int rc;

	rc = parse_digits(s, &v, &end);
	if (rc < 0)
		return rc;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

void mixfs_print_version(FILE *f)
{
	fprintf(f, "mixfs %s (libfuse %s)\n", MIXFS_VERSION, mixfs_fuse_version());
}

/* Undo the octal escapes of /proc/self/mountinfo (space, tab, newline and
 * backslash are written as \040 \011 \012 \134). */
void mixfs_mi_unescape(char *s)
{
	char *o = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
}

/* Split a line of /proc/self/mountinfo (newline cut, split in place):
 * its first five fields and the mount source.  true for a fuse.mixfs
 * mount (fields still escaped). */
bool mixfs_mi_parse(char *line, char *fld[5], char **src)
{
	char *save = NULL, *tok, *fstype = NULL;
	unsigned i = 0;
	bool dash = false;

	*src = NULL;
	line[strcspn(line, "\n")] = '\0';
	for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (i < 5) {
			fld[i++] = tok;
		} else if (!dash) {
			dash = strcmp(tok, "-") == 0; /* optional fields end at "-" */
		} else if (!fstype) {
			fstype = tok;
		} else {
			*src = tok;
			break;
		}
	}
	return i == 5 && fstype && *src && strcmp(fstype, "fuse.mixfs") == 0;
}

/* The mount point of a fuse.mixfs mount of store (absolute), malloc'd, or
 * NULL: of the whole store, or (whole false) of any part of it. */
static char *find_store_mount(const char *store, bool whole)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *mnt = NULL;
	size_t cap = 0;

	if (!f)
		return NULL;
	while (!mnt && getline(&line, &cap, f) > 0) {
		char *fld[5], *src;

		if (!mixfs_mi_parse(line, fld, &src))
			continue;
		mixfs_mi_unescape(src);
		mixfs_mi_unescape(fld[4]);
		if (strcmp(src, store) == 0 && (!whole || strcmp(fld[3], "/") == 0))
			mnt = strdup(fld[4]);
	}
	free(line);
	fclose(f);
	return mnt;
}

char *mixfs_mount_of_store(const char *store)
{
	return find_store_mount(store, true);
}

/* Is store mounted in this mount namespace (a bind mount of part of it
 * counts)?  Its daemon then holds the lock. */
static bool store_mounted(const char *store)
{
	char *mnt = find_store_mount(store, false);
	bool found = mnt != NULL;

	free(mnt);
	return found;
}

void mixfs_wait_store_lock(const char *cmd, const char *store)
{
	const char *env = getenv("MIXFS_LOCK_WAIT");
	uint64_t max_s = MIXFS_LOCK_WAIT_S;
	char *abs = realpath(store, NULL), *lp = NULL;
	uint64_t polls = 0; /* of 100 ms each */
	int fd = -1;

	if (env && mixfs_parse_uint(env, 0, 86400, &max_s) < 0) {
		fprintf(stderr, "mixfs %s: ignoring MIXFS_LOCK_WAIT=%s (seconds, 0-86400)\n", cmd,
		        env);
		max_s = MIXFS_LOCK_WAIT_S;
	}
	if (!abs || max_s == 0 || asprintf(&lp, "%s/lock", abs) < 0) {
		lp = NULL;
		goto out;
	}
	/* no lock file (a store never mounted, or none at all): nothing to
	 * wait for; the command reports what it finds */
	fd = open(lp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto out;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
		/* mounted: its daemon keeps the lock, waiting would not help */
		if (store_mounted(abs) || polls >= max_s * 10)
			break;
		if (polls == 10)
			fprintf(stderr,
			        "mixfs %s: %s is locked by a process that has no mount of it (a "
			        "daemon still committing after its unmount, or a gc): waiting up to "
			        "%" PRIu64 " s\n", cmd, abs, max_s);
		usleep(100 * 1000);
		polls++;
	}
	/* an fd closed drops a lock taken above: the command takes its own */
	close(fd);
out:
	free(lp);
	free(abs);
}
