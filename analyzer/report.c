/*
 * report.c - usage summed by agent, model and provider (see report.h).
 *
 * A report scans every record once and keeps one row per distinct name, found through a
 * small open-addressing hash: there are few agents and models but possibly millions of
 * records, so the per-record cost is one hash of a short string and a handful of additions.
 */
#include "analyzer/report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/format.h"

#define OTHER_NAME "(other)"
#define UNKNOWN_NAME "(unknown)"

void report_init(struct report *r)
{
	memset(r, 0, sizeof *r);
}

static void group_release(struct report_group *g)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		free(g->v[i].name);
	free(g->v);
	free(g->index);
	memset(g, 0, sizeof *g);
}

void report_release(struct report *r)
{
	group_release(&r->by_agent);
	group_release(&r->by_model);
	group_release(&r->by_provider);
}

static uint64_t name_hash(const char *p, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* Rebuilds the index at twice the size. Returns 0 or -1. */
static int group_grow_index(struct report_group *g)
{
	size_t cap = g->index_cap ? g->index_cap * 2 : 64, i, slot;
	uint32_t *index = calloc(cap, sizeof *index);
	int ret = -1;

	if (index == NULL)
		goto out;
	for (i = 0; i < g->n; i++) {
		slot = name_hash(g->v[i].name, strlen(g->v[i].name)) & (cap - 1);
		while (index[slot] != 0)
			slot = (slot + 1) & (cap - 1);
		index[slot] = (uint32_t)(i + 1);
	}
	free(g->index);
	g->index = index;
	g->index_cap = cap;
	ret = 0;
out:
	return ret;
}

/* The row named p[0..n), created when new. NULL when out of memory. */
static struct report_row *group_row(struct report_group *g, const char *p, size_t n)
{
	struct report_entry *grown;
	struct report_row *row = NULL;
	size_t slot, cap;
	char *name;

	if (n == 0) {
		p = UNKNOWN_NAME;
		n = strlen(p);
	}
	if (g->n == REPORT_MAX_NAMES) {
		p = OTHER_NAME;
		n = strlen(p);
	}
	/* Keep the index at most half full so probes stay short. */
	if ((g->n + 1) * 2 > g->index_cap && group_grow_index(g) != 0)
		goto out;
	slot = name_hash(p, n) & (g->index_cap - 1);
	while (g->index[slot] != 0) {
		struct report_entry *e = &g->v[g->index[slot] - 1];

		if (strncmp(e->name, p, n) == 0 && e->name[n] == '\0') {
			row = &e->row;
			goto out;
		}
		slot = (slot + 1) & (g->index_cap - 1);
	}
	if (g->n == g->cap) {
		cap = g->cap ? g->cap * 2 : 16;
		grown = realloc(g->v, cap * sizeof *grown);
		if (grown == NULL)
			goto out;
		g->v = grown;
		g->cap = cap;
	}
	name = strndup(p, n);
	if (name == NULL)
		goto out;
	g->v[g->n].name = name;
	memset(&g->v[g->n].row, 0, sizeof g->v[g->n].row);
	g->index[slot] = (uint32_t)(g->n + 1);
	row = &g->v[g->n++].row;
out:
	return row;
}

static void row_add(struct report_row *row, const struct record *rec, int failed, int priced,
		    int64_t pusd)
{
	int64_t total = record_total_tokens(rec);

	row->requests++;
	row->failed += failed;
	row->input += rec->input_tokens;
	row->output += rec->output_tokens;
	row->cache_read += rec->cache_read_tokens;
	row->cache_write += rec->cache_write_tokens;
	row->reasoning += rec->reasoning_tokens;
	row->total += total;
	if (priced) {
		row->cost_pusd += pusd;
	} else {
		row->unpriced_requests++;
		row->unpriced_tokens += total;
	}
}

int report_add(struct report *r, const struct record *rec, int priced, int64_t pusd)
{
	int failed = rec->error.n > 0 || rec->status == 0 || rec->status >= 400;
	const struct record_str *model = rec->model.n ? &rec->model : &rec->model_requested;
	const struct record_str *provider = rec->provider.n ? &rec->provider : &rec->host;
	struct report_row *row;
	int ret = 0;

	row_add(&r->total, rec, failed, priced, pusd);
	row_add(rec->flags & RECORD_LOCAL ? &r->local : &r->cloud, rec, failed, priced, pusd);
	row = group_row(&r->by_agent, rec->agent.p, rec->agent.n);
	if (row)
		row_add(row, rec, failed, priced, pusd);
	else
		ret = -1;
	row = group_row(&r->by_model, model->p, model->n);
	if (row)
		row_add(row, rec, failed, priced, pusd);
	else
		ret = -1;
	row = group_row(&r->by_provider, provider->p, provider->n);
	if (row)
		row_add(row, rec, failed, priced, pusd);
	else
		ret = -1;
	return ret;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct report_entry *x = a, *y = b;

	int c;

	if (x->row.cost_pusd != y->row.cost_pusd)
		c = x->row.cost_pusd > y->row.cost_pusd ? -1 : 1;
	else if (x->row.total != y->row.total)
		c = x->row.total > y->row.total ? -1 : 1;
	else
		c = strcmp(x->name, y->name);
	return c;
}

static void group_sort(struct report_group *g)
{
	if (g->n > 1)
		qsort(g->v, g->n, sizeof *g->v, entry_cmp);
	/* The index points at positions that just moved: rebuild it at the same size. */
	if (g->index_cap) {
		g->index_cap /= 2;
		if (group_grow_index(g) != 0) {
			g->index_cap *= 2;
			memset(g->index, 0, g->index_cap * sizeof *g->index);
		}
	}
}

void report_sort(struct report *r)
{
	group_sort(&r->by_agent);
	group_sort(&r->by_model);
	group_sort(&r->by_provider);
}

/* A row's cost: null when it has requests and none of them is priced. */
static void write_cost(struct jw *w, const struct report_row *row)
{
	if (row->requests > 0 && row->unpriced_requests == row->requests)
		jw_null(w);
	else
		jw_pusd(w, row->cost_pusd);
}

static void write_row(struct jw *w, const struct report_row *row)
{
	jw_object_begin(w);
	jw_key(w, "requests");
	jw_int(w, row->requests);
	jw_key(w, "failedRequests");
	jw_int(w, row->failed);
	jw_key(w, "inputTokens");
	jw_int(w, row->input);
	jw_key(w, "outputTokens");
	jw_int(w, row->output);
	jw_key(w, "cacheReadTokens");
	jw_int(w, row->cache_read);
	jw_key(w, "cacheWriteTokens");
	jw_int(w, row->cache_write);
	jw_key(w, "reasoningTokens");
	jw_int(w, row->reasoning);
	jw_key(w, "totalTokens");
	jw_int(w, row->total);
	jw_key(w, "cost");
	write_cost(w, row);
	jw_key(w, "unpricedTokens");
	jw_int(w, row->unpriced_tokens);
	jw_object_end(w);
}

static void write_group(struct jw *w, const char *key, const struct report_group *g)
{
	size_t i;

	jw_key(w, key);
	jw_object_begin(w);
	for (i = 0; i < g->n; i++) {
		jw_key(w, g->v[i].name);
		write_row(w, &g->v[i].row);
	}
	jw_object_end(w);
}

void report_write_json(const struct report *r, FILE *f)
{
	struct jw w;

	jw_init(&w, f, 1);
	jw_object_begin(&w);
	jw_key(&w, "totalRequests");
	jw_int(&w, r->total.requests);
	jw_key(&w, "failedRequests");
	jw_int(&w, r->total.failed);
	jw_key(&w, "totalTokens");
	jw_int(&w, r->total.total);
	jw_key(&w, "inputTokens");
	jw_int(&w, r->total.input);
	jw_key(&w, "outputTokens");
	jw_int(&w, r->total.output);
	jw_key(&w, "cacheReadTokens");
	jw_int(&w, r->total.cache_read);
	jw_key(&w, "cacheWriteTokens");
	jw_int(&w, r->total.cache_write);
	jw_key(&w, "reasoningTokens");
	jw_int(&w, r->total.reasoning);
	jw_key(&w, "totalCost");
	write_cost(&w, &r->total);
	jw_key(&w, "unpricedTokens");
	jw_int(&w, r->total.unpriced_tokens);
	jw_key(&w, "unpricedRequests");
	jw_int(&w, r->total.unpriced_requests);
	write_group(&w, "byAgent", &r->by_agent);
	write_group(&w, "byModel", &r->by_model);
	write_group(&w, "byProvider", &r->by_provider);
	/* Fallbacks are not detected yet (a later analysis): the shape is kept so consumers
	 * can rely on it. */
	jw_key(&w, "fallbackUsage");
	jw_object_begin(&w);
	jw_key(&w, "totalFallbacks");
	jw_int(&w, 0);
	jw_key(&w, "fallbackTokens");
	jw_int(&w, 0);
	jw_key(&w, "fallbackCost");
	jw_int(&w, 0);
	jw_object_end(&w);
	jw_key(&w, "locality");
	jw_object_begin(&w);
	jw_key(&w, "local");
	write_row(&w, &r->local);
	jw_key(&w, "cloud");
	write_row(&w, &r->cloud);
	jw_object_end(&w);
	jw_object_end(&w);
}

/* The table's cost cell: "unpriced" when nothing is priced, a "*" when part of it is. */
static void cost_cell(char out[FMT_HUMAN_MAX + 2], const struct report_row *row)
{
	char usd[FMT_HUMAN_MAX];

	if (row->requests > 0 && row->unpriced_requests == row->requests) {
		snprintf(out, FMT_HUMAN_MAX + 2, "unpriced");
	} else {
		fmt_usd_human(usd, row->cost_pusd);
		snprintf(out, FMT_HUMAN_MAX + 2, "%s%s", usd, row->unpriced_requests ? "*" : "");
	}
}

static void table_row_cells(struct table *t, const char *name, const struct report_row *row)
{
	char req[FMT_HUMAN_MAX], fail[FMT_HUMAN_MAX], in[FMT_HUMAN_MAX], out[FMT_HUMAN_MAX];
	char cr[FMT_HUMAN_MAX], total[FMT_HUMAN_MAX], cost[FMT_HUMAN_MAX + 2];
	const char *cells[8];

	fmt_count_human(req, row->requests);
	fmt_count_human(fail, row->failed);
	fmt_count_human(in, row->input);
	fmt_count_human(out, row->output);
	fmt_count_human(cr, row->cache_read);
	fmt_count_human(total, row->total);
	cost_cell(cost, row);
	cells[0] = name;
	cells[1] = req;
	cells[2] = fail;
	cells[3] = in;
	cells[4] = out;
	cells[5] = cr;
	cells[6] = total;
	cells[7] = cost;
	table_add(t, cells);
}

static void write_group_table(FILE *f, const char *title, const char *first,
			      const struct report_group *g, int colour)
{
	struct table_col cols[] = {
		{ first, 0, 1, 8 },       { "REQS", 1, 0, 0 },   { "FAILED", 1, 0, 0 },
		{ "INPUT", 1, 0, 0 },     { "OUTPUT", 1, 0, 0 }, { "CACHED", 1, 0, 0 },
		{ "TOTAL", 1, 0, 0 },     { "COST", 1, 0, 0 },
	};
	struct table t;
	size_t i;

	fprintf(f, "\n%s%s%s\n", colour ? "\033[1m" : "", title, colour ? "\033[0m" : "");
	table_init(&t, cols, sizeof cols / sizeof cols[0], 1);
	for (i = 0; i < g->n; i++)
		table_row_cells(&t, g->v[i].name, &g->v[i].row);
	table_print(&t, f, 100, colour ? "\033[2m" : NULL, colour ? "\033[0m" : NULL);
	table_release(&t);
}

void report_write_table(const struct report *r, FILE *f, int colour)
{
	char req[FMT_HUMAN_MAX], tok[FMT_HUMAN_MAX], unpriced[FMT_HUMAN_MAX];
	char cost[FMT_HUMAN_MAX + 2];
	struct report_group loc = { 0 };
	struct report_entry rows[2];

	fmt_count_human(req, r->total.requests);
	fmt_count_human(tok, r->total.total);
	cost_cell(cost, &r->total);
	fprintf(f, "%s%s request%s, %s tokens, %s%s", colour ? "\033[1m" : "", req,
		r->total.requests == 1 ? "" : "s", tok, cost, colour ? "\033[0m" : "");
	if (r->total.failed)
		fprintf(f, " (%" PRId64 " failed)", r->total.failed);
	fputc('\n', f);
	if (r->total.requests == 0)
		goto out;
	if (r->total.unpriced_tokens) {
		fmt_count_human(unpriced, r->total.unpriced_tokens);
		fprintf(f,
			"%s tokens in %" PRId64 " request%s are unpriced (no price for their "
			"model) and not in the cost%s\n",
			unpriced, r->total.unpriced_requests,
			r->total.unpriced_requests == 1 ? "" : "s",
			r->total.unpriced_requests < r->total.requests ? " (marked *)" : "");
	}
	write_group_table(f, "By agent", "AGENT", &r->by_agent, colour);
	write_group_table(f, "By model", "MODEL", &r->by_model, colour);
	write_group_table(f, "By provider", "PROVIDER", &r->by_provider, colour);
	rows[0].name = "cloud";
	rows[0].row = r->cloud;
	rows[1].name = "local";
	rows[1].row = r->local;
	loc.v = rows;
	loc.n = 2;
	write_group_table(f, "By locality", "LOCALITY", &loc, colour);
out:
	return;
}
