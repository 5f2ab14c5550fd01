/*
 * cmd_locality.c - `tokshim locality`: local and cloud calls side by side (requests, tokens,
 * cost) and, with --priced-as MODEL, what the local calls' tokens would have cost on that
 * cloud model (its table price applied to each local record: pricing_lookup and
 * pricing_cost_pusd). JSON is the report schema of docs/cli.md plus a "pricedAs" block; CSV
 * is one line for local and one for cloud, with report's CSV columns.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "analyzer/cli.h"
#include "analyzer/export.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"
#include "analyzer/progress.h"
#include "analyzer/report.h"
#include "providers/pricing.h"

static const char usage_text[] =
	"usage: tokshim locality [filters] [--priced-as MODEL] [--format table|json|csv]\n"
	"\n"
	"Local and cloud calls side by side: requests, tokens and cost. With --priced-as, what\n"
	"the local calls would have cost on that cloud model at its table price.\n"
	"\n"
	"Options:\n"
	"  --priced-as MODEL    a priced model (see 'tokshim pricing list')\n"
	"  --format FORMAT      table (default), json or csv (a local and a cloud line, with\n"
	"                       report's columns; --priced-as adds priced_as_model and\n"
	"                       priced_as_cost_usd to the local line)\n"
	"\n";

struct comparing {
	struct report r;
	const struct price *as; /* NULL without --priced-as */
	const char *as_name;
	int64_t as_pusd, as_tokens, as_requests;
	struct progress progress;
};

static int compare_one(const struct record *rec, void *arg)
{
	struct comparing *c = arg;

	progress_tick(&c->progress);
	report_add(&c->r, rec, filter_scan_db());
	if (c->as != NULL && (rec->flags & RECORD_LOCAL)) {
		c->as_pusd += pricing_cost_pusd(c->as, rec);
		c->as_tokens += record_total_tokens(rec);
		c->as_requests++;
	}
	return 0;
}

static void write_priced_as(struct jw *w, void *arg)
{
	struct comparing *c = arg;

	jw_key(w, "pricedAs");
	if (c->as == NULL) {
		jw_null(w);
		goto out;
	}
	jw_object_begin(w);
	jw_key(w, "model");
	jw_str(w, c->as_name, strlen(c->as_name));
	jw_key(w, "localRequests");
	jw_int(w, c->as_requests);
	jw_key(w, "localTokens");
	jw_int(w, c->as_tokens);
	jw_key(w, "localCost");
	jw_pusd(w, c->as_pusd);
	jw_object_end(w);
out:
	return;
}

struct csv_line {
	const struct comparing *c;
	int local;
};

/* One locality's CSV line as a flat object: locality, report's columns, and with --priced-as
 * the local calls' cost at that price (both empty on the cloud line). */
static void write_csv_line(struct jw *w, const void *arg)
{
	const struct csv_line *l = arg;
	const struct comparing *c = l->c;
	const char *name = l->local ? "local" : "cloud";

	jw_object_begin(w);
	jw_key(w, "locality");
	jw_str(w, name, strlen(name));
	report_csv_members(w, l->local ? &c->r.local : &c->r.cloud);
	if (c->as != NULL && l->local) {
		jw_key(w, "priced_as_model");
		jw_str(w, c->as_name, strlen(c->as_name));
		jw_key(w, "priced_as_cost_usd");
		jw_pusd(w, c->as_pusd);
	} else if (c->as != NULL) {
		jw_key(w, "priced_as_model");
		jw_null(w);
		jw_key(w, "priced_as_cost_usd");
		jw_null(w);
	}
	jw_object_end(w);
}

/* The header, then the local and the cloud line, always both (zeros when nothing). Returns 0
 * or -1. */
static int write_csv(const struct comparing *c)
{
	struct csv_line local = { c, 1 }, cloud = { c, 0 };
	int ret = export_csv_object(stdout, write_csv_line, &local, 1);

	if (ret == 0)
		ret = export_csv_object(stdout, write_csv_line, &local, 0);
	if (ret == 0)
		ret = export_csv_object(stdout, write_csv_line, &cloud, 0);
	return ret;
}

static void write_table(const struct comparing *c, int colour)
{
	static const struct table_col cols[] = {
		{ "", 0, 0, 0 }, { "LOCAL", 1, 0, 0 }, { "CLOUD", 1, 0, 0 },
	};
	static const char *const names[] = { "requests", "failed", "input tokens",
					     "output tokens", "total tokens", "cost" };
	const struct report_row *rows[2] = { &c->r.local, &c->r.cloud };
	char v[2][6][FMT_HUMAN_MAX + 2], as[FMT_HUMAN_MAX];
	const char *cells[3];
	struct table t;
	size_t i, k;

	for (k = 0; k < 2; k++) {
		fmt_count_human(v[k][0], rows[k]->requests);
		fmt_count_human(v[k][1], rows[k]->failed);
		fmt_count_human(v[k][2], rows[k]->input);
		fmt_count_human(v[k][3], rows[k]->output);
		fmt_count_human(v[k][4], rows[k]->total);
		report_cost_cell(v[k][5], rows[k]);
	}
	table_init(&t, cols, 3, 1);
	for (i = 0; i < 6; i++) {
		cells[0] = names[i];
		cells[1] = v[0][i];
		cells[2] = v[1][i];
		table_add(&t, cells);
	}
	table_print(&t, stdout, 100, colour ? "\033[1m" : NULL, colour ? "\033[0m" : NULL);
	table_release(&t);
	if (c->as != NULL) {
		fmt_usd_human(as, c->as_pusd);
		fmt_count_human(v[0][0], c->as_tokens);
		printf("\nThe local calls' %s tokens would have cost %s%s%s on %s.\n", v[0][0],
		       colour ? "\033[1m" : "", as, colour ? "\033[0m" : "", c->as_name);
	}
}

int cmd_locality(int argc, char **argv)
{
	struct comparing c;
	struct pricing *pricing = NULL;
	const char *format = "table", *as = NULL;
	const struct cli_opt opts[] = {
		{ "--format", &format, NULL },
		{ "--priced-as", &as, NULL },
	};
	struct filter f;
	char err[512];
	int done, m, ret = CLI_OK;

	filter_init(&f);
	ret = cli_reading_args("locality", usage_text, &f, argc, argv, opts,
			       sizeof opts / sizeof opts[0], &done);
	if (ret != CLI_OK || done)
		goto out;
	ret = cli_check_format("locality", format, CLI_FORMATS("table", "json", "csv"));
	if (ret != CLI_OK)
		goto out;
	ret = cli_reading_setup(&f, &pricing);
	if (ret != CLI_OK)
		goto out;
	memset(&c, 0, sizeof c);
	c.as_name = as;
	if (as != NULL) {
		c.as = pricing_lookup(pricing, NULL, 0, as, strlen(as));
		if (c.as == NULL) {
			cli_error("no price for '%s': see 'tokshim pricing list'", as);
			ret = CLI_ERR;
			goto free_pricing;
		}
	}
	report_init(&c.r, pricing, NULL, 0, FALLBACK_DEFAULT_WINDOW_NS);
	progress_init(&c.progress);
	m = filter_scan(&f, 0, compare_one, &c, err, sizeof err);
	progress_done(&c.progress);
	if (m < 0 || c.r.nomem) {
		cli_error("%s", m < 0 ? err : "out of memory");
		ret = CLI_ERR;
		goto release;
	}
	report_sort(&c.r);
	if (strcmp(format, "json") == 0)
		report_write_json(&c.r, stdout, write_priced_as, &c);
	else if (strcmp(format, "csv") == 0)
		ret = write_csv(&c);
	else
		write_table(&c, cli_use_colour());
	if (ret != CLI_OK) {
		cli_error("out of memory");
		ret = CLI_ERR;
	}
release:
	report_release(&c.r);
free_pricing:
	pricing_free(pricing);
out:
	return ret;
}
