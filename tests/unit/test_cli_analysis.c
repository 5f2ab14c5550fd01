/*
 * test_cli_analysis.c - the analyses' building blocks: the capped u64 hash map against a
 * plain array doing the same operations (SQLite's bitvec test shape), the model name
 * normaliser behind fallback detection, nearest-rank latency percentiles (exact, then from the
 * histogram within 1%), --by key parsing, the fallback detector's verdicts, and the spike
 * scores against a plain leave-one-out computation.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/anomaly.h"
#include "analyzer/fallback.h"
#include "analyzer/report.h"
#include "analyzer/u64map.h"
#include "providers/pricing.h"
#include "tests/unit/check.h"

static int check_passed, check_failed, check_case_failed;

#define NKEYS 5000

/* Random puts, gets and deletes on the map and on a reference array, compared after each. */
static void test_u64map_reference(void)
{
	static int64_t ref[NKEYS];  /* value + 1, 0: absent */
	struct u64map m;
	uint64_t seed = 42, key;
	size_t i, n = 0, slots;
	int64_t *v;
	int created, op, mismatch = 0;

	memset(ref, 0, sizeof ref);
	u64map_init(&m, sizeof(int64_t), 3000);
	for (i = 0; i < 200000 && !mismatch; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		key = (seed >> 33) % NKEYS;
		op = (int)((seed >> 20) % 3);
		if (op == 0) {
			v = u64map_put(&m, key * 0x9e3779b97f4a7c15ull, &created);
			if (v == NULL) {
				mismatch |= ref[key] != 0 || n < 3000;
				continue;
			}
			mismatch |= created != (ref[key] == 0);
			n += created;
			*v = (int64_t)i;
			ref[key] = (int64_t)i + 1;
		} else if (op == 1) {
			v = u64map_get(&m, key * 0x9e3779b97f4a7c15ull);
			mismatch |= ref[key] ? v == NULL || *v != ref[key] - 1 : v != NULL;
		} else {
			u64map_del(&m, key * 0x9e3779b97f4a7c15ull);
			n -= ref[key] != 0;
			ref[key] = 0;
		}
	}
	CHECK_INT(mismatch, 0);
	CHECK_INT(m.n, n);
	for (i = 0, slots = 0; i < m.cap; i++)
		slots += u64map_slot(&m, i, &key) != NULL;
	CHECK_INT(slots, n);
	u64map_release(&m);
}

static void test_normalise(void)
{
	static const char *const cases[][2] = {
		{ "gpt-4o-2024-08-06", "gpt-4o" },
		{ "openai/GPT-4o", "gpt-4o" },
		{ "gpt-4o-mini", "gpt-4o-mini" },
		{ "claude-sonnet-4-5-20250929", "claude-sonnet-4-5" },
		{ "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5" },
		{ "claude-3-5-sonnet-latest", "claude-3-5-sonnet" },
		{ "gpt-4-0613", "gpt-4" },
		{ "mistral-large-2411", "mistral-large" },
		{ "llama3.2", "llama3.2" },
	};
	char out[PRICING_NAME_MAX], long_name[PRICING_NAME_MAX + 10];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CHECK_INT(pricing_normalise(cases[i][0], strlen(cases[i][0]), out),
			  strlen(cases[i][1]));
		CHECK_STR(out, cases[i][1]);
	}
	memset(long_name, 'a', sizeof long_name);
	CHECK_INT(pricing_normalise(long_name, sizeof long_name, out), 0);
	CHECK_STR(out, "");
	CHECK_INT(pricing_normalise("a\0b", 3, out), 0);
}

static void add_latency(struct report *r, int64_t us)
{
	struct record rec;

	memset(&rec, 0, sizeof rec);
	rec.id = 1;
	rec.status = 200;
	rec.latency_us = us;
	rec.agent = record_str_of("a");
	report_add(r, &rec, 0);
}

/* Nearest rank: exact up to REPORT_LAT_EXACT calls, then within 1% from the histogram. */
static void test_latency_percentiles(void)
{
	struct report r;
	int64_t i, v;

	report_init(&r, NULL, NULL, 0, FALLBACK_DEFAULT_WINDOW_NS);
	for (i = 10; i >= 1; i--)
		add_latency(&r, i * 1000);
	report_sort(&r);
	CHECK_INT(report_latency_us(&r.total, 50), 5000);  /* rank 5 of 10 */
	CHECK_INT(report_latency_us(&r.total, 95), 10000); /* rank ceil(9.5) = 10 */
	CHECK_INT(report_latency_us(&r.total, 1), 1000);
	report_release(&r);

	report_init(&r, NULL, NULL, 0, FALLBACK_DEFAULT_WINDOW_NS);
	for (i = 1000; i >= 1; i--)
		add_latency(&r, i * 1000);
	report_sort(&r);
	CHECK(r.total.lat.hist != NULL);
	v = report_latency_us(&r.total, 50); /* exact: 500000 */
	CHECK(v >= 495000 && v <= 505000);
	v = report_latency_us(&r.total, 95); /* exact: 950000 */
	CHECK(v >= 940500 && v <= 959500);
	report_release(&r);

	report_init(&r, NULL, NULL, 0, FALLBACK_DEFAULT_WINDOW_NS);
	CHECK_INT(report_latency_us(&r.total, 50), -1);
	report_release(&r);
}

/* A damaged record's start and latency at the ends of int64_t: the row's last end is held
 * there instead of overflowing (UBSan stops the san build on the overflow). */
static void test_extreme_times(void)
{
	struct report r;
	struct record rec;

	memset(&rec, 0, sizeof rec);
	rec.id = 1;
	rec.status = 200;
	rec.agent = record_str_of("a");
	report_init(&r, NULL, NULL, 0, FALLBACK_DEFAULT_WINDOW_NS);
	rec.ts_ns = INT64_MAX;
	rec.latency_us = INT64_MAX;
	report_add(&r, &rec, 0);
	CHECK_INT(r.total.last_ns, INT64_MAX);
	CHECK_INT(r.total.first_ns, INT64_MAX);
	report_release(&r);

	report_init(&r, NULL, NULL, 0, FALLBACK_DEFAULT_WINDOW_NS);
	rec.ts_ns = INT64_MIN;
	rec.latency_us = INT64_MIN;
	report_add(&r, &rec, 0);
	CHECK_INT(r.total.last_ns, INT64_MIN);
	rec.id = 2;
	rec.ts_ns = INT64_MAX - 5;
	rec.latency_us = 1;
	report_add(&r, &rec, 0);
	CHECK_INT(r.total.first_ns, INT64_MIN);
	CHECK_INT(r.total.last_ns, INT64_MAX);
	CHECK_INT(r.total.requests, 2);
	report_release(&r);
}

/* Past REPORT_MAX_NAMES agents, new ones share one "(other)" row and the agents seen before
 * keep their own: the group never holds more than REPORT_MAX_NAMES + 1 rows. */
static void test_name_cap(void)
{
	struct report r;
	struct record rec;
	char name[32];
	size_t i, other = 0;

	memset(&rec, 0, sizeof rec);
	rec.status = 200;
	rec.input_tokens = 1;
	report_init(&r, NULL, NULL, 0, FALLBACK_DEFAULT_WINDOW_NS);
	for (i = 0; i < REPORT_MAX_NAMES + 7; i++) {
		rec.id = i + 1;
		snprintf(name, sizeof name, "agent-%zu", i);
		rec.agent = record_str_of(name);
		report_add(&r, &rec, 0);
	}
	rec.agent = record_str_of("agent-0");
	report_add(&r, &rec, 0);
	rec.agent = record_str_of("agent-99999");
	report_add(&r, &rec, 0);
	CHECK_INT(r.by_agent.n, REPORT_MAX_NAMES + 1);
	for (i = 0; i < r.by_agent.n; i++) {
		if (r.by_agent.v[i].keylen == 0)
			other = i;
	}
	CHECK_INT(r.by_agent.v[other].keylen, 0);
	CHECK_INT(r.by_agent.v[other].row.requests, 7);
	CHECK_INT(r.by_agent.v[0].row.requests, 2); /* rows in the order first seen: agent-0 */
	CHECK_INT(r.by_agent.v[REPORT_MAX_NAMES - 1].row.requests, 2);
	CHECK_INT(r.total.requests, REPORT_MAX_NAMES + 9);
	report_release(&r);
}

static void test_parse_keys(void)
{
	enum report_key keys[REPORT_NKEYS];
	char err[64];

	CHECK_INT(report_parse_keys("agent,model,hour", keys, err, sizeof err), 3);
	CHECK_INT(keys[0], REPORT_AGENT);
	CHECK_INT(keys[2], REPORT_HOUR);
	CHECK_INT(report_parse_keys("agent,modle", keys, err, sizeof err), -1);
	CHECK_STR(err, "modle");
	CHECK_INT(report_parse_keys("", keys, err, sizeof err), -1);
	CHECK_INT(report_parse_keys("day,day", keys, err, sizeof err), -1);
}

static struct record call(uint64_t id, int64_t ts_s, const char *session, const char *provider,
			  const char *asked, const char *answered, int status)
{
	struct record rec;

	memset(&rec, 0, sizeof rec);
	rec.id = id;
	rec.ts_ns = ts_s * 1000000000;
	rec.latency_us = 1000000;
	rec.status = status;
	rec.session = record_str_of(session);
	rec.provider = record_str_of(provider);
	rec.model_requested = record_str_of(asked);
	rec.model = record_str_of(answered);
	return rec;
}

static void test_fallback_verdicts(void)
{
	struct fallback fb;
	struct fallback_verdict v;
	struct record rec;

	fallback_init(&fb, FALLBACK_DEFAULT_WINDOW_NS);
	rec = call(1, 0, "s", "openai", "gpt-4o", "gpt-4o-2024-08-06", 200);
	fallback_feed(&fb, &rec, 0, 1, 100, &v);
	CHECK_INT(v.kind, FALLBACK_NONE);
	rec = call(2, 10, "s", "openai", "gpt-4o", "gpt-4o", 503);
	fallback_feed(&fb, &rec, 0, 1, 0, &v);
	CHECK_INT(v.kind, FALLBACK_NONE);
	/* ends at 11 s; 70 s is 59 s later: inside the window, same model: a retry */
	rec = call(3, 70, "s", "openai", "GPT-4o", "gpt-4o", 500);
	fallback_feed(&fb, &rec, 0, 1, 0, &v);
	CHECK_INT(v.kind, FALLBACK_RETRY);
	CHECK_INT(v.of, 2);
	/* another provider after the failed 3 */
	rec = call(4, 80, "s", "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5", 200);
	fallback_feed(&fb, &rec, 0, 1, 500, &v);
	CHECK_INT(v.kind, FALLBACK_AFTER_FAILURE);
	CHECK_INT(v.of, 3);
	/* the failure is settled: the next call is nothing */
	rec = call(5, 85, "s", "openai", "gpt-4o", "gpt-4o", 200);
	fallback_feed(&fb, &rec, 0, 1, 100, &v);
	CHECK_INT(v.kind, FALLBACK_NONE);
	/* the same session name in another store is another session */
	rec = call(6, 90, "t", "openai", "gpt-4o", "gpt-4o", 429);
	fallback_feed(&fb, &rec, 0, 1, 0, &v);
	rec = call(7, 91, "t", "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5", 200);
	fallback_feed(&fb, &rec, 1, 1, 0, &v);
	CHECK_INT(v.kind, FALLBACK_NONE);
	/* routed: answered with another model than asked */
	rec = call(8, 95, "u", "openrouter", "openai/gpt-4o", "anthropic/claude-sonnet-4-5", 200);
	fallback_feed(&fb, &rec, 0, 1, 700, &v);
	CHECK_INT(v.kind, FALLBACK_ROUTED);
	CHECK_INT(v.of, 8);
	/* the verdict cache answers the same pair again */
	rec = call(9, 96, "u", "openrouter", "openai/gpt-4o", "anthropic/claude-sonnet-4-5", 200);
	fallback_feed(&fb, &rec, 0, 1, 700, &v);
	CHECK_INT(v.kind, FALLBACK_ROUTED);
	CHECK_INT(fb.fallbacks, 3);
	CHECK_INT(fb.retries, 1);
	CHECK_INT(fb.fallback_cost_pusd, 1900);
	CHECK_INT(fb.npairs, 2);
	fallback_release(&fb);
}

/* The median of v[0..n) without v[skip], and the robust score of v[skip] against the rest,
 * computed the plain way (a sort per value): the reference for anomaly.c's spike scores. */
static int double_cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

static double ref_median(const double *v, size_t n, size_t skip)
{
	double tmp[64];
	size_t i, m = 0;

	for (i = 0; i < n; i++)
		if (i != skip)
			tmp[m++] = v[i];
	qsort(tmp, m, sizeof *tmp, double_cmp);
	return m == 0 ? 0 : m % 2 ? tmp[m / 2] : (tmp[m / 2 - 1] + tmp[m / 2]) / 2;
}

static double ref_score(const double *v, size_t n, size_t k, double *median)
{
	double dev[64], med = ref_median(v, n, k), mad;
	size_t i;

	for (i = 0; i < n; i++)
		dev[i] = fabs(v[i] - med);
	mad = ref_median(dev, n, k);
	*median = med;
	return (v[k] - med) / fmax(1.4826 * mad, 0.4);
}

/*
 * spike scores every active hour of an agent against its other hours (anomaly.c sorts each
 * series once rather than once per hour): with every threshold at its floor every hour is
 * flagged, and each flag's evidence must read as the plain leave-one-out computation gives it,
 * for an odd and an even number of hours, values tied and not.
 */
static void test_spike_scores_reference(void)
{
	static const size_t hours[] = { 41, 40, 7, 17, 16 };
	struct anomaly_thresholds th;
	struct anomaly a;
	struct record rec;
	double tok[64], cost[64], st, sc, mt, mc;
	int64_t tokens[64], pusd[64], spread;
	char want[512];
	size_t h, i, k, found;
	uint64_t seed = 12345;

	for (h = 0; h < sizeof hours / sizeof hours[0]; h++) {
		anomaly_thresholds_default(&th);
		th.spike_score = -1e300;
		th.spike_min_tokens = 0;
		th.spike_min_hours = 1;
		anomaly_init(&a, &th);
		spread = h == 2 ? 3 : h < 3 ? 12 : 1000000;
		for (i = 0; i < hours[h]; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			/* few distinct values, so many ties; then (17, 16 hours) all distinct */
			tokens[i] = 1000 * (int64_t)(1 + (seed >> 33) % spread);
			pusd[i] = 7000 * (int64_t)(1 + (seed >> 40) % (spread == 12 ? 9 : spread));
			rec = call(i + 1, (int64_t)i * 3600 + 60, "s", "openai", "gpt-4o", "gpt-4o",
				   200);
			rec.agent = record_str_of("agent");
			rec.input_tokens = tokens[i];
			CHECK_INT(anomaly_feed(&a, &rec, 0, 1, pusd[i]), 0);
			tok[i] = log((double)tokens[i]);
			cost[i] = log((double)pusd[i]);
		}
		CHECK_INT(anomaly_finish(&a), 0);
		for (k = 0, found = 0; k < hours[h]; k++) {
			st = ref_score(tok, hours[h], k, &mt);
			sc = ref_score(cost, hours[h], k, &mc);
			mc = sc > 0 ? exp(mc) / 1e12 : 0.0; /* as the evidence writes it */
			snprintf(want, sizeof want,
				 "\"baselineTokens\": %.0f, \"tokensScore\": %.2f, "
				 "\"cost\": %.12g, \"baselineCost\": %.12g, \"costScore\": %.2f",
				 exp(mt), st, (double)pusd[k] / 1e12, mc, sc);
			for (i = 0; i < a.nflags; i++)
				if (a.flags[i].from_ns == (int64_t)k * 3600 * 1000000000 &&
				    strstr(a.flags[i].evidence, want) != NULL)
					found++;
		}
		CHECK_INT(a.nflags, hours[h]);
		CHECK_INT(found, hours[h]);
		anomaly_release(&a);
	}
}

int main(void)
{
	RUN(test_u64map_reference);
	RUN(test_normalise);
	RUN(test_latency_percentiles);
	RUN(test_extreme_times);
	RUN(test_name_cap);
	RUN(test_parse_keys);
	RUN(test_fallback_verdicts);
	RUN(test_spike_scores_reference);
	CHECK_DONE();
}
