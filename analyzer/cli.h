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

#include <stddef.h>
#include <stdint.h>

#include "analyzer/filter.h"
#include "analyzer/report.h"
#include "providers/pricing.h"

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
int cmd_pricing(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_fallbacks(int argc, char **argv);
int cmd_sessions(int argc, char **argv);
int cmd_locality(int argc, char **argv);
int cmd_anomalies(int argc, char **argv);
int cmd_budget(int argc, char **argv);
int cmd_alerts(int argc, char **argv);
int cmd_tail(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_dashboard(int argc, char **argv);
int cmd_doctor(int argc, char **argv);

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

/* Prints the usage error for an argument no option matched: "unknown option '--x'" or
 * "unexpected argument 'x'". Returns CLI_USAGE. */
int cli_unknown_arg(const char *cmd, const char *arg);

/* What cli_reading_arg found at argv[*i]. */
enum cli_arg {
	CLI_ARG_OTHER, /* not a shared argument: the command's own, or unknown */
	CLI_ARG_TAKEN, /* a filter, now in f */
	CLI_ARG_HELP,  /* -h or --help: usage and filter_help were printed */
	CLI_ARG_BAD,   /* a filter with a bad or missing value: the usage error was printed */
};

/* The arguments every reading command shares: --help (printing usage, then the filters'
 * help) and the common filters of filter.h. now_ns anchors relative times. */
enum cli_arg cli_reading_arg(const char *cmd, const char *usage, struct filter *f, int argc,
			     char **argv, int *i, int64_t now_ns);

/* One option of a reading command's own, "--name VALUE" or "--name=VALUE". */
struct cli_opt {
	const char *name;   /* "--format", "-o" */
	const char **value; /* receives the value, which points into argv */
	uint64_t *num;      /* when not NULL, the value is also parsed into it as a number */
};

/*
 * Parses the whole command line of a reading command: the arguments of cli_reading_arg
 * (relative times anchored now) and the command's own opts[0..nopts); anything else is a
 * usage error. f must have been through filter_init. Returns CLI_OK to go on, CLI_OK with
 * *done set after --help, or CLI_USAGE with the error printed.
 */
int cli_reading_args(const char *cmd, const char *usage, struct filter *f, int argc, char **argv,
		     const struct cli_opt *opts, size_t nopts, int *done);

/* Checks format against the NULL-terminated choices; returns CLI_OK, or CLI_USAGE after the
 * usage error "invalid format 'x': expected a, b or c". */
int cli_check_format(const char *cmd, const char *format, const char *const *choices);

/* The choices of cli_check_format: CLI_FORMATS("table", "json"). */
#define CLI_FORMATS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* After parsing: completes f (the default store) and loads the price table into *pricing
 * (freed with pricing_free). Returns CLI_OK, or CLI_ERR with the error printed. */
int cli_reading_setup(struct filter *f, struct pricing **pricing);

/*
 * The end of report and sessions (cmd_report.c): cli_reading_setup, then f's records summed
 * by keys[0..nkeys) (fallbacks within window_ns; the top rows of the grouping shown, 0: all)
 * and printed as format: json and csv as report_write_json / report_write_csv, a table by
 * table(r, colour). Returns CLI_OK, or CLI_ERR with the error printed.
 */
int cli_report_run(struct filter *f, const enum report_key *keys, size_t nkeys,
		   int64_t window_ns, size_t top, const char *format,
		   void (*table)(const struct report *r, int colour));

/*
 * Parses the arguments of a command that looks at whole stores rather than records (stats,
 * verify): -h/--help (prints usage, returns CLI_OK with *done set), --db PATH (repeatable)
 * and, when format is not NULL, --format table|json (default table). Then fills in the
 * default store. Returns CLI_OK, or CLI_USAGE/CLI_ERR with the error printed.
 */
int cli_store_args(const char *cmd, const char *usage, int argc, char **argv, struct filter *f,
		   const char **format, int *done);

/* Is argv[i] "-h" or "--help"? */
int cli_is_help(const char *arg);

/* Parses a non-negative decimal integer; returns 0, or -1 when s is not one. */
int cli_parse_u64(const char *s, uint64_t *out);

/* Should output to stdout use colour: a terminal and no NO_COLOR in the environment. */
int cli_use_colour(void);

#endif
