/*
 * cmd_report.c - `tokshim report`: tokens and cost of the matching records by agent, by
 * model and by provider, with the local/cloud split; a table for people or JSON for tools.
 * The summing lives in report.c; this file is the command line.
 */
#include <stdio.h>
#include <string.h>

#include "analyzer/cli.h"
#include "analyzer/filter.h"
#include "analyzer/report.h"
#include "providers/pricing.h"

static const char usage_text[] =
	"usage: tokshim report [filters] [--format table|json]\n"
	"\n"
	"Tokens and cost by agent, model and provider, largest cost first. Tokens of models\n"
	"without a price are reported as unpriced, never counted as $0.\n"
	"\n"
	"Options:\n"
	"  --format FORMAT      table (default) or json\n"
	"\n";

struct summing {
	const struct pricing *pricing;
	struct report report;
	int nomem;
};

static int add_one(const struct record *rec, void *arg)
{
	struct summing *s = arg;
	int64_t pusd = 0;
	int priced = pricing_record_cost(s->pricing, rec, &pusd);

	if (report_add(&s->report, rec, priced, pusd) != 0)
		s->nomem = 1;
	return s->nomem ? STORE_ENOMEM : 0;
}

int cmd_report(int argc, char **argv)
{
	struct summing s = { 0 };
	struct pricing *pricing = NULL;
	const char *format = "table";
	struct filter f;
	char err[512];
	int64_t now = filter_now_ns();
	enum cli_arg arg;
	int i, m, ret = CLI_OK;

	filter_init(&f);
	report_init(&s.report);
	for (i = 1; i < argc; i++) {
		arg = cli_reading_arg("report", usage_text, &f, argc, argv, &i, now);
		if (arg == CLI_ARG_HELP || arg == CLI_ARG_BAD) {
			ret = arg == CLI_ARG_HELP ? CLI_OK : CLI_USAGE;
			goto out;
		}
		if (arg == CLI_ARG_TAKEN)
			continue;
		m = cli_opt_value("report", argc, argv, &i, "--format", &format);
		if (m == 0) {
			ret = cli_unknown_arg("report", argv[i]);
			goto out;
		}
		if (m < 0) {
			ret = CLI_USAGE;
			goto out;
		}
	}
	if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0) {
		ret = cli_usage_error("report", "invalid format '%s': expected table or json",
				      format);
		goto out;
	}
	ret = cli_reading_setup(&f, &pricing);
	if (ret != CLI_OK)
		goto out;
	s.pricing = pricing;
	m = filter_scan(&f, 0, add_one, &s, err, sizeof err);
	if (m < 0) {
		cli_error("%s", s.nomem ? "out of memory" : err);
		ret = CLI_ERR;
		goto free_pricing;
	}
	report_sort(&s.report);
	if (strcmp(format, "json") == 0)
		report_write_json(&s.report, stdout);
	else
		report_write_table(&s.report, stdout, cli_use_colour());
free_pricing:
	pricing_free(pricing);
out:
	report_release(&s.report);
	return ret;
}
