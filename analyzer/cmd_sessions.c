/*
 * cmd_sessions.c - `tokshim sessions`: the heaviest sessions, each with its agent, start,
 * duration, calls, tokens and cost. A report grouped by session and agent (report.c), printed
 * as a table of sessions, or as the report JSON of docs/cli.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "analyzer/cli.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"
#include "analyzer/report.h"
#include "providers/pricing.h"

#define DEFAULT_TOP 20

static const char usage_text[] =
	"usage: tokshim sessions [filters] [--top N] [--format table|json|csv]\n"
	"\n"
	"The heaviest sessions (largest cost first, then tokens): agent, start, duration, calls,\n"
	"tokens and cost. A session is one process run unless TOKSHIM_SESSION names it.\n"
	"\n"
	"Options:\n"
	"  --top N              how many sessions to show (default 20)\n"
	"  --format FORMAT      table (default), json (the report schema, by session,agent) or\n"
	"                       csv (report's columns, one line per session)\n"
	"\n";

/* A duration for people: "42s", "3m05s", "2h03m". */
static void duration_cell(char *out, size_t cap, int64_t ns)
{
	int64_t s = ns > 0 ? ns / 1000000000 : 0;

	if (s < 60)
		snprintf(out, cap, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(out, cap, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else
		snprintf(out, cap, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
}

static void write_table(const struct report *r, int colour)
{
	static const struct table_col cols[] = {
		{ "SESSION", 0, 1, 10 }, { "AGENT", 0, 1, 8 },  { "START (UTC)", 0, 0, 0 },
		{ "DURATION", 1, 0, 0 }, { "CALLS", 1, 0, 0 },  { "TOKENS", 1, 0, 0 },
		{ "COST", 1, 0, 0 },
	};
	char session[RECORD_STR_MAX + 16], agent[RECORD_STR_MAX + 16], start[FMT_TIME_MAX];
	char dur[32], calls[FMT_HUMAN_MAX], tokens[FMT_HUMAN_MAX], cost[FMT_HUMAN_MAX + 2];
	const char *cells[7] = { session, agent, start, dur, calls, tokens, cost };
	const struct report_row *row;
	size_t i, n = r->top < r->by.n ? r->top : r->by.n;
	struct table t;

	report_write_summary(r, stdout, colour);
	if (n == 0)
		goto out;
	table_init(&t, cols, sizeof cols / sizeof cols[0], 1);
	for (i = 0; i < n; i++) {
		row = &r->by.v[i].row;
		report_key_text(&r->by, &r->by.v[i], 0, session, sizeof session);
		report_key_text(&r->by, &r->by.v[i], 1, agent, sizeof agent);
		fmt_time_short(start, row->first_ns);
		duration_cell(dur, sizeof dur, row->last_ns - row->first_ns);
		fmt_count_human(calls, row->requests);
		fmt_count_human(tokens, row->total);
		report_cost_cell(cost, row);
		table_add(&t, cells);
	}
	putchar('\n');
	table_print(&t, stdout, 100, colour ? "\033[1m" : NULL, colour ? "\033[0m" : NULL);
	table_release(&t);
	if (n < r->by.n)
		printf("(%zu more session%s: --top %zu shows %zu)\n", r->by.n - n,
		       r->by.n - n == 1 ? "" : "s", r->top, n);
out:
	return;
}

int cmd_sessions(int argc, char **argv)
{
	static const enum report_key keys[] = { REPORT_SESSION, REPORT_AGENT };
	const char *format = "table", *top = NULL;
	const struct cli_opt opts[] = {
		{ "--format", &format, NULL },
		{ "--top", &top, NULL },
	};
	struct filter f;
	uint64_t ntop = DEFAULT_TOP;
	int done, ret = CLI_OK;

	filter_init(&f);
	ret = cli_reading_args("sessions", usage_text, &f, argc, argv, opts,
			       sizeof opts / sizeof opts[0], &done);
	if (ret != CLI_OK || done)
		goto out;
	ret = cli_check_format("sessions", format, CLI_FORMATS("table", "json", "csv"));
	if (ret != CLI_OK)
		goto out;
	if (top != NULL && (cli_parse_u64(top, &ntop) != 0 || ntop == 0)) {
		ret = cli_usage_error("sessions", "invalid number '%s' for '--top'", top);
		goto out;
	}
	ret = cli_report_run(&f, keys, 2, FALLBACK_DEFAULT_WINDOW_NS, (size_t)ntop, format,
			     write_table);
out:
	return ret;
}
