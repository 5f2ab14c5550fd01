/*
 * cli.h - what the tokshim subcommands share: the command table's entry type, exit codes,
 * the one error-message format and option parsing helpers.
 *
 * Each subcommand lives in its own analyzer/cmd_<name>.c and is listed once in main.c's
 * table; it gets argv with its own name in argv[0] and returns an exit code. Commands print
 * their own errors with cli_error so that every message reads the same way:
 * "tokshim: cannot open 'usage.mdb': no such file".
 */
#ifndef TOKSHIM_CLI_H
#define TOKSHIM_CLI_H

#include <stdint.h>

/* Exit codes: 2 for a command line that is wrong, 1 for anything that went wrong running it. */
enum { CLI_OK = 0, CLI_ERR = 1, CLI_USAGE = 2 };

#define TOKSHIM_VERSION "0.1.0"

struct cli_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary; /* one line for `tokshim --help` */
};

int cmd_run(int argc, char **argv);
int cmd_records(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_show(int argc, char **argv);

/* Prints "tokshim: <message>\n" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a usage error and the hint to see the command's --help; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Matches option name at argv[*i], given as "--name VALUE" or "--name=VALUE". Returns 1 and
 * sets *value (and advances *i past a separate value) when it matches, 0 when argv[*i] is
 * another option, and -1 when the value is missing (a usage error naming cmd is printed).
 */
int cli_opt_value(const char *cmd, int argc, char **argv, int *i, const char *name,
		  const char **value);

/* Is argv[i] "-h" or "--help"? */
int cli_is_help(const char *arg);

/* Parses a non-negative decimal integer; returns 0, or -1 when s is not one. */
int cli_parse_u64(const char *s, uint64_t *out);

/* Should output to stdout use colour: a terminal and no NO_COLOR in the environment. */
int cli_use_colour(void);

#endif
