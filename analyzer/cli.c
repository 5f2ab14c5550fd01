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

/* Flushes stdout first so that an error lands after the output it interrupts. */
static void verror(const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs("tokshim: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
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

int cli_unknown_arg(const char *cmd, const char *arg)
{
	return cli_usage_error(cmd, "%s '%s'",
			       arg[0] == '-' && arg[1] != '\0' ? "unknown option"
								: "unexpected argument",
			       arg);
}

enum cli_arg cli_reading_arg(const char *cmd, const char *usage, struct filter *f, int argc,
			     char **argv, int *i, int64_t now_ns)
{
	enum cli_arg found = CLI_ARG_OTHER;
	char err[512];
	int m;

	if (cli_is_help(argv[*i])) {
		fputs(usage, stdout);
		fputs(filter_help, stdout);
		found = CLI_ARG_HELP;
		goto out;
	}
	m = filter_parse_arg(f, argc, argv, i, now_ns, err, sizeof err);
	if (m < 0) {
		cli_usage_error(cmd, "%s", err);
		found = CLI_ARG_BAD;
	} else if (m == 1) {
		found = CLI_ARG_TAKEN;
	}
out:
	return found;
}

int cli_reading_args(const char *cmd, const char *usage, struct filter *f, int argc, char **argv,
		     const struct cli_opt *opts, size_t nopts, int *done)
{
	int64_t now = filter_now_ns();
	enum cli_arg arg;
	const struct cli_opt *o;
	int i, m, ret = CLI_OK;
	size_t k;

	*done = 0;
	for (i = 1; i < argc; i++) {
		arg = cli_reading_arg(cmd, usage, f, argc, argv, &i, now);
		if (arg == CLI_ARG_HELP || arg == CLI_ARG_BAD) {
			*done = arg == CLI_ARG_HELP;
			ret = arg == CLI_ARG_HELP ? CLI_OK : CLI_USAGE;
			goto out;
		}
		if (arg == CLI_ARG_TAKEN)
			continue;
		m = 0;
		o = NULL;
		for (k = 0; k < nopts && m == 0; k++) {
			o = &opts[k];
			m = cli_opt_value(cmd, argc, argv, &i, o->name, o->value);
		}
		if (m == 0) {
			ret = cli_unknown_arg(cmd, argv[i]);
			goto out;
		}
		if (m < 0) {
			ret = CLI_USAGE;
			goto out;
		}
		if (o->num != NULL && cli_parse_u64(*o->value, o->num) != 0) {
			ret = cli_usage_error(cmd, "invalid number '%s'", *o->value);
			goto out;
		}
	}
out:
	return ret;
}

int cli_check_format(const char *cmd, const char *format, const char *const *choices)
{
	char expected[128];
	size_t k, used = 0;
	int n, ret = CLI_OK;

	for (k = 0; choices[k] != NULL; k++) {
		if (strcmp(format, choices[k]) == 0)
			goto out;
	}
	expected[0] = '\0';
	for (k = 0; choices[k] != NULL && used < sizeof expected; k++) {
		n = snprintf(expected + used, sizeof expected - used, "%s%s",
			     k == 0 ? "" : choices[k + 1] == NULL ? " or " : ", ", choices[k]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	ret = cli_usage_error(cmd, "invalid format '%s': expected %s", format, expected);
out:
	return ret;
}

int cli_reading_setup(struct filter *f, struct pricing **pricing)
{
	char err[512];
	int ret = CLI_OK;

	*pricing = NULL;
	if (filter_finish(f, err, sizeof err) != 0 || pricing_load(pricing, err, sizeof err) != 0) {
		cli_error("%s", err);
		ret = CLI_ERR;
	}
	return ret;
}

int cli_store_args(const char *cmd, const char *usage, int argc, char **argv, struct filter *f,
		   const char **format, int *done)
{
	char err[512];
	const char *v;
	int i, m, ret = CLI_OK;

	*done = 0;
	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			*done = 1;
			goto out;
		}
		m = cli_opt_value(cmd, argc, argv, &i, "--db", &v);
		if (m == 1 && f->ndb == FILTER_MAX_DB) {
			ret = cli_usage_error(cmd, "too many '--db' stores");
			goto out;
		}
		if (m == 1) {
			f->db[f->ndb++] = v;
			continue;
		}
		if (m == 0 && format != NULL)
			m = cli_opt_value(cmd, argc, argv, &i, "--format", format);
		if (m < 0) {
			ret = CLI_USAGE;
			goto out;
		}
		if (m == 0) {
			ret = cli_unknown_arg(cmd, argv[i]);
			goto out;
		}
	}
	if (format != NULL)
		ret = cli_check_format(cmd, *format, CLI_FORMATS("table", "json"));
	if (ret != CLI_OK)
		goto out;
	if (filter_finish(f, err, sizeof err) != 0) {
		cli_error("%s", err);
		ret = CLI_ERR;
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
