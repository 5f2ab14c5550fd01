/*
 * cmd_fallbacks.c - `tokshim fallbacks`: which calls fell back from one model or provider to
 * another, as primary → fallback pairs with counts, tokens, cost and record ids, and what share
 * of all calls and cost they are. The rules live in fallback.c (shared with report and
 * records); this file is the command line and the three renderings.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "analyzer/cli.h"
#include "analyzer/export.h"
#include "analyzer/fallback.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"
#include "analyzer/progress.h"
#include "analyzer/recordfmt.h"
#include "analyzer/report.h"
#include "providers/pricing.h"

static const char usage_text[] =
	"usage: tokshim fallbacks [filters] [--window DURATION] [--format table|json|csv]\n"
	"\n"
	"Calls that fell back to another model or provider: a router answering with another\n"
	"model than the one asked for, or a call to another model or provider right after a\n"
	"failed one in the same session. A failed call followed by the same model is a retry.\n"
	"\n"
	"Options:\n"
	"  --window DURATION    how soon after a failure the next call counts (default 60s)\n"
	"  --format FORMAT      table (default), json or csv (one line per primary -> fallback\n"
	"                       pair; the totals are in the table and the json)\n"
	"\n";

struct detecting {
	const struct pricing *pricing;
	struct fallback fb;
	struct progress progress;
};

static int detect_one(const struct record *rec, void *arg)
{
	struct detecting *d = arg;
	struct fallback_verdict v;
	int64_t pusd = 0;
	int priced = pricing_record_cost(d->pricing, rec, &pusd);

	progress_tick(&d->progress);
	fallback_feed(&d->fb, rec, filter_scan_db(), priced, pusd, &v);
	return 0;
}

static void write_name(struct jw *w, const struct fallback_name *n)
{
	jw_object_begin(w);
	jw_key(w, "provider");
	jw_str(w, n->provider, strlen(n->provider));
	jw_key(w, "model");
	jw_str(w, n->model, strlen(n->model));
	jw_object_end(w);
}

static void write_json(const struct fallback *fb, size_t ndb)
{
	char ref[RECORDFMT_REF_MAX];
	const struct fallback_pair *p;
	size_t i, j;
	struct jw w;

	jw_init(&w, stdout, 1);
	jw_object_begin(&w);
	jw_key(&w, "windowSeconds");
	jw_int(&w, fb->window_ns / 1000000000);
	jw_key(&w, "totalCalls");
	jw_int(&w, fb->calls);
	jw_key(&w, "totalCost");
	jw_pusd(&w, fb->cost_pusd);
	jw_key(&w, "totalFallbacks");
	jw_int(&w, fb->fallbacks);
	jw_key(&w, "routed");
	jw_int(&w, fb->routed);
	jw_key(&w, "afterFailure");
	jw_int(&w, fb->after_failure);
	jw_key(&w, "retries");
	jw_int(&w, fb->retries);
	jw_key(&w, "fallbackTokens");
	jw_int(&w, fb->fallback_tokens);
	jw_key(&w, "fallbackCost");
	jw_pusd(&w, fb->fallback_cost_pusd);
	jw_key(&w, "fallbackUnpricedRequests");
	jw_int(&w, fb->fallback_unpriced);
	jw_key(&w, "shareOfCalls");
	report_json_ratio(&w, fb->fallbacks, fb->calls);
	jw_key(&w, "shareOfCost");
	report_json_ratio(&w, fb->fallback_cost_pusd, fb->cost_pusd);
	jw_key(&w, "untracked");
	jw_int(&w, fb->untracked);
	jw_key(&w, "pairs");
	jw_array_begin(&w);
	for (i = 0; i < fb->npairs; i++) {
		p = &fb->pairs[i];
		jw_object_begin(&w);
		jw_key(&w, "primary");
		write_name(&w, &fb->names[p->primary]);
		jw_key(&w, "fallback");
		write_name(&w, &fb->names[p->fallback]);
		jw_key(&w, "count");
		jw_int(&w, p->count);
		jw_key(&w, "routed");
		jw_int(&w, p->routed);
		jw_key(&w, "tokens");
		jw_int(&w, p->tokens);
		jw_key(&w, "cost");
		if (p->unpriced == p->count)
			jw_null(&w);
		else
			jw_pusd(&w, p->cost_pusd);
		jw_key(&w, "unpricedRequests");
		jw_int(&w, p->unpriced);
		jw_key(&w, "ids");
		jw_array_begin(&w);
		for (j = 0; j < p->nids; j++) {
			if (ndb > 1) {
				recordfmt_ref(ref, p->ids[j].id, p->ids[j].db, ndb);
				jw_str(&w, ref, strlen(ref));
			} else {
				jw_int(&w, (int64_t)p->ids[j].id);
			}
		}
		jw_array_end(&w);
		jw_key(&w, "idsOmitted");
		jw_int(&w, p->count - (int64_t)p->nids);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_object_end(&w);
	putchar('\n');
}

/* A pair's record ids, space-separated ("K#ID" with several stores), as many as fit cap; an
 * ellipsis after them when the pair has more (a table cell). */
static void ids_text(char *out, size_t cap, const struct fallback_pair *p, size_t ndb,
		     int ellipsis)
{
	char ref[RECORDFMT_REF_MAX];
	size_t j, len = 0;

	out[0] = '\0';
	for (j = 0; j < p->nids && len + RECORDFMT_REF_MAX + 4 < cap; j++) {
		recordfmt_ref(ref, p->ids[j].id, p->ids[j].db, ndb);
		len += (size_t)snprintf(out + len, cap - len, "%s%s", j ? " " : "", ref);
	}
	if (ellipsis && j < (size_t)p->count)
		snprintf(out + len, cap - len, " …");
}

struct csv_pair {
	const struct fallback *fb;
	const struct fallback_pair *p; /* NULL for the header line */
	size_t ndb;
};

/* One pair as a flat object: the json's pair members, names and ids flattened. */
static void write_csv_pair(struct jw *w, const void *arg)
{
	static const struct fallback_pair none;
	static const struct fallback_name unnamed = { "", "" };
	const struct csv_pair *cp = arg;
	const struct fallback_pair *p = cp->p != NULL ? cp->p : &none;
	const struct fallback_name *from = cp->p != NULL ? &cp->fb->names[p->primary] : &unnamed;
	const struct fallback_name *to = cp->p != NULL ? &cp->fb->names[p->fallback] : &unnamed;
	char ids[FALLBACK_MAX_IDS * (RECORDFMT_REF_MAX + 1) + 8];

	ids_text(ids, sizeof ids, p, cp->ndb, 0);
	jw_object_begin(w);
	jw_key(w, "primary_provider");
	jw_str(w, from->provider, strlen(from->provider));
	jw_key(w, "primary_model");
	jw_str(w, from->model, strlen(from->model));
	jw_key(w, "fallback_provider");
	jw_str(w, to->provider, strlen(to->provider));
	jw_key(w, "fallback_model");
	jw_str(w, to->model, strlen(to->model));
	jw_key(w, "count");
	jw_int(w, p->count);
	jw_key(w, "routed");
	jw_int(w, p->routed);
	jw_key(w, "tokens");
	jw_int(w, p->tokens);
	jw_key(w, "cost_usd");
	if (p->unpriced == p->count)
		jw_null(w);
	else
		jw_pusd(w, p->cost_pusd);
	jw_key(w, "unpriced_requests");
	jw_int(w, p->unpriced);
	jw_key(w, "ids");
	jw_str(w, ids, strlen(ids));
	jw_key(w, "ids_omitted");
	jw_int(w, p->count - (int64_t)p->nids);
	jw_object_end(w);
}

/* A header line, then one line per pair. Returns 0 or -1. */
static int write_csv(const struct fallback *fb, size_t ndb)
{
	struct csv_pair cp = { fb, NULL, ndb };
	size_t i;
	int ret;

	ret = export_csv_object(stdout, write_csv_pair, &cp, 1);
	for (i = 0; i < fb->npairs && ret == 0; i++) {
		cp.p = &fb->pairs[i];
		ret = export_csv_object(stdout, write_csv_pair, &cp, 0);
	}
	return ret;
}

/* "openai/gpt-4o" for a table cell. */
static void name_cell(char *out, size_t cap, const struct fallback_name *n)
{
	if (n->provider[0] != '\0')
		snprintf(out, cap, "%s/%s", n->provider, n->model);
	else
		snprintf(out, cap, "%s", n->model);
}

static void write_table(const struct fallback *fb, size_t ndb, int colour)
{
	static const struct table_col cols[] = {
		{ "PRIMARY", 0, 1, 10 }, { "FALLBACK", 0, 1, 10 }, { "CALLS", 1, 0, 0 },
		{ "TOKENS", 1, 0, 0 },   { "COST", 1, 0, 0 },      { "IDS", 0, 1, 8 },
	};
	char from[2 * PRICING_NAME_MAX], to[2 * PRICING_NAME_MAX], calls[FMT_HUMAN_MAX];
	char tokens[FMT_HUMAN_MAX], cost[FMT_HUMAN_MAX], ids[TABLE_CELL_MAX];
	char share[32];
	const char *cells[6];
	const struct fallback_pair *p;
	struct table t;
	size_t i;

	fmt_count_human(tokens, fb->fallback_tokens);
	fmt_usd_human(cost, fb->fallback_cost_pusd);
	snprintf(share, sizeof share, "%.1f%%",
		 fb->calls ? 100.0 * (double)fb->fallbacks / (double)fb->calls : 0.0);
	printf("%s%" PRId64 " fallback%s in %" PRId64 " call%s (%s), %s tokens, %s",
	       colour ? "\033[1m" : "", fb->fallbacks, fb->fallbacks == 1 ? "" : "s", fb->calls,
	       fb->calls == 1 ? "" : "s", share, tokens, cost);
	if (fb->cost_pusd > 0)
		printf(" (%.1f%% of the cost)",
		       100.0 * (double)fb->fallback_cost_pusd / (double)fb->cost_pusd);
	printf("%s\n%" PRId64 " routed by the provider, %" PRId64 " after a failure; %" PRId64
	       " retr%s of the same model\n",
	       colour ? "\033[0m" : "", fb->routed, fb->after_failure, fb->retries,
	       fb->retries == 1 ? "y" : "ies");
	if (fb->npairs == 0)
		goto out;
	putchar('\n');
	table_init(&t, cols, sizeof cols / sizeof cols[0], 1);
	for (i = 0; i < fb->npairs; i++) {
		p = &fb->pairs[i];
		name_cell(from, sizeof from, &fb->names[p->primary]);
		name_cell(to, sizeof to, &fb->names[p->fallback]);
		fmt_count_human(calls, p->count);
		fmt_count_human(tokens, p->tokens);
		if (p->unpriced == p->count)
			snprintf(cost, sizeof cost, "unpriced");
		else
			fmt_usd_human(cost, p->cost_pusd);
		ids_text(ids, sizeof ids, p, ndb, 1);
		cells[0] = from;
		cells[1] = to;
		cells[2] = calls;
		cells[3] = tokens;
		cells[4] = cost;
		cells[5] = ids;
		table_add(&t, cells);
	}
	table_print(&t, stdout, 100, colour ? "\033[1m" : NULL, colour ? "\033[0m" : NULL);
	table_release(&t);
out:
	return;
}

int cmd_fallbacks(int argc, char **argv)
{
	struct detecting d;
	struct pricing *pricing = NULL;
	const char *format = "table", *window = NULL;
	const struct cli_opt opts[] = {
		{ "--format", &format, NULL },
		{ "--window", &window, NULL },
	};
	struct filter f;
	char err[512];
	int64_t window_ns = FALLBACK_DEFAULT_WINDOW_NS;
	int done, m, ret = CLI_OK;

	filter_init(&f);
	ret = cli_reading_args("fallbacks", usage_text, &f, argc, argv, opts,
			       sizeof opts / sizeof opts[0], &done);
	if (ret != CLI_OK || done)
		goto out;
	ret = cli_check_format("fallbacks", format, CLI_FORMATS("table", "json", "csv"));
	if (ret != CLI_OK)
		goto out;
	if (window != NULL && filter_parse_duration(window, &window_ns) != 0) {
		ret = cli_usage_error("fallbacks", "invalid duration '%s' for '--window'", window);
		goto out;
	}
	ret = cli_reading_setup(&f, &pricing);
	if (ret != CLI_OK)
		goto out;
	d.pricing = pricing;
	fallback_init(&d.fb, window_ns);
	progress_init(&d.progress);
	m = filter_scan(&f, 0, detect_one, &d, err, sizeof err);
	progress_done(&d.progress);
	if (m < 0 || d.fb.nomem) {
		cli_error("%s", m < 0 ? err : "out of memory");
		ret = CLI_ERR;
		goto release;
	}
	fallback_sort(&d.fb);
	if (strcmp(format, "json") == 0)
		write_json(&d.fb, f.ndb);
	else if (strcmp(format, "csv") == 0 && write_csv(&d.fb, f.ndb) != 0)
		ret = CLI_ERR;
	else if (strcmp(format, "table") == 0)
		write_table(&d.fb, f.ndb, cli_use_colour());
	if (ret != CLI_OK)
		cli_error("out of memory");
release:
	fallback_release(&d.fb);
	pricing_free(pricing);
out:
	return ret;
}
