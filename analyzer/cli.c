/*
 * cli.c - the helpers every subcommand shares (see cli.h): messages and option parsing.
 *
 * Options are parsed by hand rather than with getopt_long because the common filters
 * (filter.c) and each command's own options are matched in one pass over argv, and "--"
 * must stop parsing exactly where `tokshim run` expects it to.
 */
#include "analyzer/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("tokshim: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("tokshim: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmd)
		fprintf(stderr, "tokshim: see 'tokshim %s --help'\n", cmd);
	else
		fputs("tokshim: see 'tokshim --help'\n", stderr);
	return CLI_USAGE;
}

int cli_opt_value(const char *cmd, int argc, char **argv, int *i, const char *name,
		  const char **value)
{
	const char *arg = argv[*i];
	size_t n = strlen(name);
	int ret = 0;

	if (strncmp(arg, name, n) != 0)
		goto out;
	if (arg[n] == '=') {
		*value = arg + n + 1;
		ret = 1;
	} else if (arg[n] == '\0') {
		if (*i + 1 >= argc) {
			cli_usage_error(cmd, "option '%s' needs a value", name);
			ret = -1;
			goto out;
		}
		*value = argv[++*i];
		ret = 1;
	}
out:
	return ret;
}

int cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int ret = -1;

	/* strtoull alone would accept " 12" and "-1" (as a huge number). */
	if (*s < '0' || *s > '9')
		goto out;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		goto out;
	*out = v;
	ret = 0;
out:
	return ret;
}

int cli_use_colour(void)
{
	const char *no = getenv("NO_COLOR");

	return isatty(STDOUT_FILENO) && (no == NULL || *no == '\0');
}
