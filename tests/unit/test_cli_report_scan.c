/*
 * test_cli_report_scan.c - the parallel report pass (report_scan_parallel) against the reference
 * it must equal: report_add on every record in store order. Both run over the same real LMDB
 * stores with the built-in prices, and their JSON, table and CSV must be byte for byte the same,
 * for several --by keys, thread counts, slice counts (slices as short as a few seconds, so that
 * sessions, failures and their fallbacks cross slice boundaries) and fallback windows. The
 * records mix every case the cost and the detector tell apart: failures followed by another
 * model or a retry, routed answers, long-context calls, per-request fees by search context,
 * service tiers, local, provider-billed and unpriced calls, calls with no session.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyzer/filter.h"
#include "analyzer/report.h"
#include "providers/pricing.h"
#include "store/store.h"
#include "tests/unit/check.h"

extern const unsigned char pricing_json[];
extern const size_t pricing_json_len;

#define NREC 6000
#define T0 1764044400000000000LL /* 2025-11-25T04:20:00Z */

static char tmp_root[] = "/tmp/tokshim-rscan-XXXXXX";
static char db_path[2][256];
static struct pricing *prices;

/* A small deterministic generator, so a failure is reproducible. */
static uint64_t rng = 88172645463325252ull;

static uint32_t next(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static const char *const models[][3] = {
	/* provider, model asked for, model answered ("" for the same) */
	{ "openai", "gpt-4o", "" },
	{ "openai", "gpt-4o", "gpt-4o-2024-08-06" },   /* the same model, dated */
	{ "openai", "gpt-4o", "gpt-4o-mini" },         /* routed */
	{ "anthropic", "claude-sonnet-4-5", "" },      /* long-context tier */
	{ "gcp.gemini", "gemini-2.5-pro", "" },        /* long-context tier */
	{ "perplexity", "sonar", "" },                 /* request fee by search context */
	{ "openai", "mystery-model-x", "" },           /* unpriced */
	{ "", "llama3", "" },                          /* no provider: host */
};

static void fill(struct record *r, int i, int db)
{
	static char sessions[NREC][16], agents[NREC][16];
	int m = (int)next(sizeof models / sizeof models[0]), s = (int)next(60);

	memset(r, 0, sizeof *r);
	/* about two hours; bursts of calls a second apart inside it */
	r->ts_ns = T0 + (int64_t)(i / 3) * 1100000000LL + (int64_t)next(1000) * 1000000LL;
	r->latency_us = 1000 + (int64_t)next(3000000);
	r->ttfb_us = -1;
	r->retry_after_s = -1;
	r->pid = 100 + (int32_t)next(3);
	r->status = next(100) < 8 ? (next(2) ? 429 : 500) : 200;
	if (next(100) < 2)
		r->flags |= RECORD_TRUNCATED;
	if (next(100) < 2)
		r->error = record_str_of("network_error");
	r->input_tokens = next(100) < 5 ? 150000 + (int64_t)next(200000) : (int64_t)next(5000);
	r->output_tokens = r->status == 200 ? (int64_t)next(2000) : 0;
	r->cache_read_tokens = next(3) ? (int64_t)next(1000) : 0;
	r->cache_write_tokens = next(4) ? 0 : (int64_t)next(800);
	r->cache_write_1h_tokens = r->cache_write_tokens ? (int64_t)next(2) * r->cache_write_tokens / 2 : 0;
	r->reasoning_tokens = (int64_t)next(300);
	r->search_queries = m == 5 ? (int64_t)next(4) : 0;
	r->search_context = m == 5 ? (int32_t)next(4) : 0;
	r->service_tier = m == 0 ? (int32_t)next(4) : 0;
	snprintf(agents[i], sizeof agents[i], "agent-%d", (int)next(7));
	r->agent = record_str_of(agents[i]);
	r->agent_type = record_str_of(next(2) ? "coder" : "chat");
	r->tenant = record_str_of(next(3) ? "acme" : "");
	if (s < 55) {
		snprintf(sessions[i], sizeof sessions[i], "s%d-%d", db, s);
		r->session = record_str_of(sessions[i]);
	}
	r->provider = record_str_of(models[m][0]);
	r->host = record_str_of(m == 7 ? "127.0.0.1" : "api.example.com");
	r->model_requested = record_str_of(models[m][1]);
	r->model = record_str_of(models[m][2][0] ? models[m][2] : models[m][1]);
	if (m == 7)
		r->flags |= RECORD_LOCAL;
	if (next(50) == 0) {
		r->flags |= RECORD_BILLED;
		r->billed_cost_pusd = (int64_t)next(1000000000);
	}
	if (next(80) == 0)
		r->flags |= RECORD_NOT_BILLED;
}

static void make_store(int db)
{
	static struct record recs[NREC];
	struct store *st = NULL;
	int i;

	snprintf(db_path[db], sizeof db_path[db], "%s/r%d.mdb", tmp_root, db);
	CHECK_INT(store_open(&st, db_path[db], STORE_CREATE, 0), 0);
	for (i = 0; i < NREC; i++)
		fill(&recs[i], i, db);
	CHECK_INT(store_append_batch(st, recs, NREC), 0);
	store_close(st);
}

static int add_one(const struct record *rec, void *arg)
{
	report_add(arg, rec, filter_scan_db());
	return 0;
}

/* The report as JSON, table and CSV, in one string (malloc'd). */
static char *render(struct report *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	report_sort(r);
	report_write_json(r, f, NULL, NULL);
	report_write_table(r, f, 0);
	report_write_csv(r, f);
	fclose(f);
	return text;
}

static void filter_of(struct filter *f, size_t ndb)
{
	size_t i;

	filter_init(f);
	for (i = 0; i < ndb; i++)
		f->db[i] = db_path[i];
	f->ndb = ndb;
}

/* One comparison: the reference against report_scan_parallel. */
static void compare(const char *by, size_t ndb, size_t threads, size_t slices, int64_t window_ns,
		    const char *agent)
{
	enum report_key keys[REPORT_NKEYS];
	struct report ref, par;
	struct filter f;
	char err[256], *want, *got;
	int n = 0;

	if (by != NULL)
		n = report_parse_keys(by, keys, err, sizeof err);
	CHECK(n >= 0);
	filter_of(&f, ndb);
	if (agent != NULL) {
		f.agent.v[0] = agent;
		f.agent.n = 1;
	}
	report_init(&ref, prices, keys, (size_t)n, window_ns);
	CHECK_INT(filter_scan(&f, 0, add_one, &ref, err, sizeof err), 0);
	report_init(&par, prices, keys, (size_t)n, window_ns);
	CHECK_INT(report_scan_parallel(&par, &f, threads, slices, err, sizeof err), 0);
	want = render(&ref);
	got = render(&par);
	if (strcmp(want, got) != 0) {
		fprintf(stderr, "by %s, %zu stores, %zu threads, %zu slices: reports differ\n",
			by ? by : "-", ndb, threads, slices);
		CHECK(0);
	}
	/* the comparison means something: there were fallbacks of both kinds, and costs */
	CHECK(ref.fallback.after_failure > 0 && ref.fallback.routed > 0 &&
	      ref.fallback.retries > 0);
	CHECK(ref.total.cost_parts.other > 0 && ref.total.unpriced_requests > 0);
	free(want);
	free(got);
	report_release(&ref);
	report_release(&par);
}

static void test_default(void)
{
	compare(NULL, 1, 2, 41, FALLBACK_DEFAULT_WINDOW_NS, NULL);
	compare(NULL, 1, 1, 1, FALLBACK_DEFAULT_WINDOW_NS, NULL);
}

static void test_by_keys(void)
{
	compare("agent,model", 1, 2, 300, FALLBACK_DEFAULT_WINDOW_NS, NULL);
	compare("session,hour", 1, 3, 17, FALLBACK_DEFAULT_WINDOW_NS, NULL);
	compare("tenant,day,locality,provider,agent_type", 1, 4, 64, FALLBACK_DEFAULT_WINDOW_NS,
		NULL);
}

/* Several stores read as one; a window longer than a slice; a filter. */
static void test_stores_windows_filters(void)
{
	compare("model", 2, 2, 500, FALLBACK_DEFAULT_WINDOW_NS, NULL);
	compare("agent", 2, 2, 200, 3600 * 1000000000LL, NULL);
	compare("agent,model", 2, 2, 100, 1000000000LL, "agent-[1-4]");
}

int main(void)
{
	char err[256];

	if (mkdtemp(tmp_root) == NULL)
		return 1;
	CHECK_INT(pricing_parse(&prices, (const char *)pricing_json, pricing_json_len, err,
				sizeof err), 0);
	make_store(0);
	make_store(1);
	RUN(test_default);
	RUN(test_by_keys);
	RUN(test_stores_windows_filters);
	pricing_free(prices);
	for (int i = 0; i < 2; i++) {
		char lock[300];

		snprintf(lock, sizeof lock, "%s-lock", db_path[i]);
		unlink(db_path[i]);
		unlink(lock);
	}
	rmdir(tmp_root);
	CHECK_DONE();
}
