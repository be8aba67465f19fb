/*
 * cmd_common.c - argument helpers shared by the mixfs subcommands.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

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
