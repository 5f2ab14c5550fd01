/*
 * cmd_report.c - `tokshim report`: tokens and cost of the matching records, by agent, model
 * and provider with the local/cloud split, or grouped by any keys (--by); a table for people,
 * JSON for tools (docs/cli.md), CSV for spreadsheets. The summing lives in report.c; this file
 * is the command line.
 */
#include <stdio.h>
#include <string.h>

#include "analyzer/cli.h"
#include "analyzer/filter.h"
#include "analyzer/report.h"
#include "providers/pricing.h"

static const char usage_text[] =
	"usage: tokshim report [filters] [--by KEY[,KEY…]] [--top N] [--format table|json|csv]\n"
	"\n"
	"Tokens and cost by agent, model and provider, largest cost first. Tokens of models\n"
	"without a price are reported as unpriced, never counted as $0.\n"
	"\n"
	"Options:\n"
	"  --by KEYS            group by these keys: agent agent_type tenant session provider\n"
	"                       model locality day hour (comma-separated)\n"
	"  --top N              only the N costliest groups of --by (totals still count all)\n"
	"  --format FORMAT      table (default), json, or csv (the --by rows; default --by agent)\n"
	"  --window DURATION    how soon after a failure a call to another model is a fallback\n"
	"                       (default 60s)\n"
	"\n";

static void write_table(const struct report *r, int colour)
{
	report_write_table(r, stdout, colour);
}

int cli_report_run(struct filter *f, const enum report_key *keys, size_t nkeys,
		   int64_t window_ns, size_t top, const char *format,
		   void (*table)(const struct report *r, int colour))
{
	struct pricing *pricing = NULL;
	struct report r;
	char err[512];
	int ret;

	ret = cli_reading_setup(f, &pricing);
	if (ret != CLI_OK)
		goto out;
	report_init(&r, pricing, keys, nkeys, window_ns);
	r.top = top;
	if (report_scan(&r, f, err, sizeof err) != 0) {
		cli_error("%s", err);
		ret = CLI_ERR;
		goto release;
	}
	report_sort(&r);
	if (strcmp(format, "json") == 0)
		report_write_json(&r, stdout, NULL, NULL);
	else if (strcmp(format, "csv") == 0)
		report_write_csv(&r, stdout);
	else
		table(&r, cli_use_colour());
release:
	report_release(&r);
	pricing_free(pricing);
out:
	return ret;
}

int cmd_report(int argc, char **argv)
{
	const char *format = "table", *by = NULL, *top = NULL, *window = NULL;
	enum report_key keys[REPORT_NKEYS];
	const struct cli_opt opts[] = {
		{ "--format", &format, NULL },
		{ "--by", &by, NULL },
		{ "--top", &top, NULL },
		{ "--window", &window, NULL },
	};
	struct filter f;
	char err[512];
	int64_t window_ns = FALLBACK_DEFAULT_WINDOW_NS;
	uint64_t ntop = 0;
	int done, nkeys = 0, ret = CLI_OK;

	filter_init(&f);
	ret = cli_reading_args("report", usage_text, &f, argc, argv, opts,
			       sizeof opts / sizeof opts[0], &done);
	if (ret != CLI_OK || done)
		goto out;
	ret = cli_check_format("report", format, CLI_FORMATS("table", "json", "csv"));
	if (ret != CLI_OK)
		goto out;
	if (by == NULL && strcmp(format, "csv") == 0)
		by = "agent";
	if (by != NULL) {
		nkeys = report_parse_keys(by, keys, err, sizeof err);
		if (nkeys < 0) {
			ret = cli_usage_error("report", "invalid key '%s' for '--by'", err);
			goto out;
		}
	}
	if (top != NULL && (cli_parse_u64(top, &ntop) != 0 || ntop == 0)) {
		ret = cli_usage_error("report", "invalid number '%s' for '--top'", top);
		goto out;
	}
	if (window != NULL && filter_parse_duration(window, &window_ns) != 0) {
		ret = cli_usage_error("report", "invalid duration '%s' for '--window'", window);
		goto out;
	}
	ret = cli_report_run(&f, keys, (size_t)nkeys, window_ns, (size_t)ntop, format, write_table);
out:
	return ret;
}
