/*
 * anomaly.c - the anomaly rules (see anomaly.h; docs/cli.md states them for users).
 *
 * Everything is gathered in one pass into capped tables keyed by hashes, and scored at the
 * end, except the two kinds that end on their own (a retry burst when a gap passes, a rising
 * session when an input falls), which are scored as they end so their state can be reused.
 * Robust statistics (median, MAD) are taken on log values: usage is multiplicative (an hour
 * twice as busy is as surprising at 1k tokens as at 1M), and a few extreme hours or calls do
 * not drag a median the way they drag a mean.
 */
#include "analyzer/anomaly.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/fallback.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"
#include "analyzer/progress.h"
#include "analyzer/recordfmt.h"

#define NS_PER_S ((int64_t)1000000000)
#define NS_PER_HOUR (3600 * NS_PER_S)
#define CELL_IDS 4
/* The least spread a baseline is given (log scale): at the default scores a steady agent is
 * flagged for about a 4x hour (spike) or a 7x call (cost_outlier), not for noise. */
#define MIN_SCALE 0.4
#define MAD_TO_SIGMA 1.4826

struct anomaly_agent {
	char *name;
	int64_t first_ns, calls, tokens, cost_pusd, priced;
	int64_t *sample; /* reservoir of priced call costs (pico-USD), ANOMALY_SAMPLE */
	uint32_t db[CELL_IDS];
	uint64_t ids[CELL_IDS]; /* its first calls */
	uint32_t nsample;
	struct {
		int64_t pusd, ts_ns;
		uint32_t db;
		uint64_t id;
	} top[ANOMALY_TOP_CALLS];
	size_t ntop;
};

struct hour_cell {
	uint32_t agent;
	int64_t hour, tokens, cost_pusd, calls;
	uint32_t db[CELL_IDS];
	uint64_t ids[CELL_IDS];
};

struct error_cell {
	uint32_t agent;
	int64_t window, calls, failures;
	uint32_t db[CELL_IDS];
	uint64_t ids[CELL_IDS];
};

struct request_cell {
	uint32_t agent;
	int64_t first_ns, last_ns, burst, burst_start_ns, answered, saved_tokens, saved_pusd;
	uint32_t db[CELL_IDS];
	uint64_t ids[CELL_IDS]; /* of the current burst */
	uint32_t dup_db[CELL_IDS];
	uint64_t dup_ids[CELL_IDS]; /* answered repeats */
};

struct session_cell {
	uint32_t agent;
	int64_t last_input, run, first_input, start_ns, last_ns;
	uint32_t db[CELL_IDS];
	uint64_t ids[CELL_IDS], last_id;
	char name[64]; /* the session, cut, for the flag */
};

struct prefix_cell {
	uint32_t agent;
	int64_t calls, cache_read_calls, input, first_ns, last_ns;
	uint32_t db[CELL_IDS];
	uint64_t ids[CELL_IDS];
};

const char *anomaly_severity_name(enum anomaly_severity s)
{
	return s == ANOMALY_CRITICAL ? "critical" : s == ANOMALY_WARNING ? "warning" : "info";
}

int anomaly_severity_parse(const char *s)
{
	int v = -1;

	if (strcmp(s, "info") == 0)
		v = ANOMALY_INFO;
	else if (strcmp(s, "warning") == 0)
		v = ANOMALY_WARNING;
	else if (strcmp(s, "critical") == 0)
		v = ANOMALY_CRITICAL;
	return v;
}

void anomaly_thresholds_default(struct anomaly_thresholds *t)
{
	t->spike_score = 3.5;
	t->spike_min_tokens = 10000;
	t->spike_min_hours = 6;
	t->error_window_ns = 5 * 60 * NS_PER_S;
	t->error_min = 5;
	t->error_rate = 0.5;
	t->retry_min = 5;
	t->retry_gap_ns = 60 * NS_PER_S;
	t->dup_min = 3;
	t->growth_calls = 8;
	t->growth_ratio = 4;
	t->outlier_score = 5;
	t->outlier_min_calls = 20;
	t->outlier_min_pusd = 10000000000ll; /* $0.01 */
	t->prefix_bytes = 4096;
	t->prefix_min_calls = 3;
	t->new_window_ns = 24 * NS_PER_HOUR;
	t->heavy_ratio = 0.5;
}

void anomaly_init(struct anomaly *a, const struct anomaly_thresholds *t)
{
	memset(a, 0, sizeof *a);
	a->th = *t;
	a->rng = 0x9e3779b97f4a7c15ull;
	u64map_init(&a->agent_idx, sizeof(uint32_t), ANOMALY_MAX_AGENTS);
	u64map_init(&a->hours, sizeof(struct hour_cell), ANOMALY_MAX_ENTRIES);
	u64map_init(&a->errors, sizeof(struct error_cell), ANOMALY_MAX_ENTRIES);
	u64map_init(&a->requests, sizeof(struct request_cell), ANOMALY_MAX_ENTRIES);
	u64map_init(&a->sessions, sizeof(struct session_cell), ANOMALY_MAX_ENTRIES);
	u64map_init(&a->prefixes, sizeof(struct prefix_cell), ANOMALY_MAX_ENTRIES);
}

void anomaly_release(struct anomaly *a)
{
	size_t i;

	for (i = 0; i < a->nagents; i++) {
		free(a->agents[i].name);
		free(a->agents[i].sample);
	}
	free(a->agents);
	for (i = 0; i < a->nflags; i++) {
		free(a->flags[i].agent);
		free(a->flags[i].session);
		free(a->flags[i].evidence);
		free(a->flags[i].summary);
	}
	free(a->flags);
	u64map_release(&a->agent_idx);
	u64map_release(&a->hours);
	u64map_release(&a->errors);
	u64map_release(&a->requests);
	u64map_release(&a->sessions);
	u64map_release(&a->prefixes);
	memset(a, 0, sizeof *a);
}

/* The agent's index, created when new; UINT32_MAX when the table is full or memory short. */
static uint32_t agent_index(struct anomaly *a, const struct record *rec)
{
	uint64_t h = u64map_hash(rec->agent.p, rec->agent.n, 7);
	struct anomaly_agent *grown, *ag;
	uint32_t *slot = u64map_put(&a->agent_idx, h, &(int){ 0 }), idx = UINT32_MAX;
	size_t cap;

	if (slot == NULL)
		goto out;
	if (*slot != 0) {
		idx = *slot - 1;
		goto out;
	}
	if (a->nagents == a->agents_cap) {
		cap = a->agents_cap ? a->agents_cap * 2 : 16;
		grown = realloc(a->agents, cap * sizeof *grown);
		if (grown == NULL)
			goto undo;
		a->agents = grown;
		a->agents_cap = cap;
	}
	ag = &a->agents[a->nagents];
	memset(ag, 0, sizeof *ag);
	ag->name = strndup(rec->agent.p ? rec->agent.p : "", rec->agent.n);
	if (ag->name == NULL)
		goto undo;
	ag->first_ns = rec->ts_ns;
	idx = (uint32_t)a->nagents++;
	*slot = idx + 1;
	goto out;
undo:
	u64map_del(&a->agent_idx, h);
out:
	return idx;
}

static void ids_push(uint32_t *dbs, uint64_t *ids, size_t n, size_t db, uint64_t id)
{
	if (n < CELL_IDS) {
		dbs[n] = (uint32_t)db;
		ids[n] = id;
	}
}

/* Adds a flag; the format strings make its evidence members and its summary line. */
static void add_flag(struct anomaly *a, const char *kind, enum anomaly_severity sev,
		     uint32_t agent, const char *session, int64_t from, int64_t to,
		     const uint32_t *dbs, const uint64_t *ids, size_t nids, char *evidence,
		     char *summary)
{
	struct anomaly_flag *grown, *f;
	size_t cap, i;

	if (evidence == NULL || summary == NULL)
		goto nomem;
	if (a->nflags == a->flags_cap) {
		cap = a->flags_cap ? a->flags_cap * 2 : 16;
		grown = realloc(a->flags, cap * sizeof *grown);
		if (grown == NULL)
			goto nomem;
		a->flags = grown;
		a->flags_cap = cap;
	}
	f = &a->flags[a->nflags];
	memset(f, 0, sizeof *f);
	f->kind = kind;
	f->severity = sev;
	f->agent = strdup(a->agents[agent].name);
	f->session = session ? strdup(session) : NULL;
	if (f->agent == NULL || (session != NULL && f->session == NULL)) {
		free(f->agent);
		free(f->session);
		goto nomem;
	}
	f->from_ns = from;
	f->to_ns = to;
	f->evidence = evidence;
	f->summary = summary;
	for (i = 0; i < nids && i < ANOMALY_MAX_IDS; i++) {
		f->ids_db[i] = dbs[i];
		f->ids[i] = ids[i];
	}
	f->nids = i;
	a->nflags++;
	goto out;
nomem:
	free(evidence);
	free(summary);
	a->nomem = 1;
out:
	return;
}

static char *fmt(const char *format, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *format, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, format);
	if (vasprintf(&s, format, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* Dollars with enough places for pico-USD amounts, for evidence text. */
static double usd(int64_t pusd)
{
	return (double)pusd / 1e12;
}

static void retry_burst_end(struct anomaly *a, struct request_cell *c)
{
	const struct anomaly_thresholds *t = &a->th;

	if (c->burst >= t->retry_min)
		add_flag(a, "retry_storm", c->burst >= 4 * t->retry_min ? ANOMALY_CRITICAL
									  : ANOMALY_WARNING,
			 c->agent, NULL, c->burst_start_ns, c->last_ns, c->db, c->ids,
			 (size_t)(c->burst < CELL_IDS ? c->burst : CELL_IDS),
			 fmt("\"sends\": %" PRId64 ", \"seconds\": %" PRId64, c->burst,
			     (c->last_ns - c->burst_start_ns) / NS_PER_S),
			 fmt("the same request sent %" PRId64 " times in %" PRId64 " s", c->burst,
			     (c->last_ns - c->burst_start_ns) / NS_PER_S));
}

static void growth_run_end(struct anomaly *a, struct session_cell *c)
{
	const struct anomaly_thresholds *t = &a->th;
	double ratio = c->first_input > 0 ? (double)c->last_input / (double)c->first_input : 0;

	if (c->run >= t->growth_calls && ratio >= t->growth_ratio) {
		c->ids[CELL_IDS - 1] = c->last_id; /* first calls and the last one */
		add_flag(a, "context_growth", ratio >= 4 * t->growth_ratio ? ANOMALY_CRITICAL
									  : ANOMALY_WARNING,
			 c->agent, c->name, c->start_ns, c->last_ns, c->db, c->ids, CELL_IDS,
			 fmt("\"calls\": %" PRId64 ", \"firstInputTokens\": %" PRId64
			     ", \"lastInputTokens\": %" PRId64 ", \"growth\": %.2f",
			     c->run, c->first_input, c->last_input, ratio),
			 fmt("input grew %" PRId64 " calls in a row, %" PRId64 " to %" PRId64
			     " tokens (%.1fx)",
			     c->run, c->first_input, c->last_input, ratio));
	}
}

static void feed_agent(struct anomaly *a, struct anomaly_agent *ag, const struct record *rec,
		       size_t db, int priced, int64_t pusd)
{
	size_t i, low;
	uint64_t r;

	ids_push(ag->db, ag->ids, (size_t)ag->calls, db, rec->id);
	ag->calls++;
	ag->tokens += record_total_tokens(rec);
	if (rec->ts_ns < ag->first_ns)
		ag->first_ns = rec->ts_ns;
	if (!priced || pusd <= 0)
		goto out;
	ag->cost_pusd += pusd;
	ag->priced++;
	if (ag->sample == NULL)
		ag->sample = malloc(ANOMALY_SAMPLE * sizeof *ag->sample);
	if (ag->sample == NULL) {
		a->nomem = 1;
		goto out;
	}
	/* Reservoir sampling (Algorithm R): every priced call equally likely to be kept. */
	if (ag->nsample < ANOMALY_SAMPLE) {
		ag->sample[ag->nsample++] = pusd;
	} else {
		a->rng ^= a->rng << 13;
		a->rng ^= a->rng >> 7;
		a->rng ^= a->rng << 17;
		r = a->rng % (uint64_t)ag->priced;
		if (r < ANOMALY_SAMPLE)
			ag->sample[r] = pusd;
	}
	/* The costliest calls: replace the cheapest kept one. */
	low = 0;
	if (ag->ntop < ANOMALY_TOP_CALLS) {
		low = ag->ntop++;
	} else {
		for (i = 1; i < ANOMALY_TOP_CALLS; i++)
			if (ag->top[i].pusd < ag->top[low].pusd)
				low = i;
		if (ag->top[low].pusd >= pusd)
			goto out;
	}
	ag->top[low].pusd = pusd;
	ag->top[low].ts_ns = rec->ts_ns;
	ag->top[low].db = (uint32_t)db;
	ag->top[low].id = rec->id;
out:
	return;
}

int anomaly_feed(struct anomaly *a, const struct record *rec, size_t db, int priced,
		 int64_t pusd)
{
	const struct anomaly_thresholds *t = &a->th;
	uint32_t agent = agent_index(a, rec);
	int failed = fallback_call_failed(rec), created, missed = 0;
	struct hour_cell *hc;
	struct error_cell *ec;
	struct request_cell *rc;
	struct session_cell *sc;
	int64_t hour, window, tokens = record_total_tokens(rec);
	uint64_t key;

	if (a->records == 0 || rec->ts_ns < a->first_ns)
		a->first_ns = rec->ts_ns;
	if (a->records == 0 || rec->ts_ns > a->last_ns)
		a->last_ns = rec->ts_ns;
	a->records++;
	if (agent == UINT32_MAX) {
		a->untracked++;
		goto out;
	}
	feed_agent(a, &a->agents[agent], rec, db, priced, pusd);
	hour = rec->ts_ns / NS_PER_HOUR;
	key = u64map_hash(&hour, sizeof hour, agent);
	hc = u64map_put(&a->hours, key, &created);
	if (hc != NULL) {
		hc->agent = agent;
		hc->hour = hour;
		ids_push(hc->db, hc->ids, (size_t)hc->calls, db, rec->id);
		hc->calls++;
		hc->tokens += tokens;
		hc->cost_pusd += priced ? pusd : 0;
	} else {
		missed = 1;
	}
	window = rec->ts_ns / t->error_window_ns;
	key = u64map_hash(&window, sizeof window, agent);
	ec = u64map_put(&a->errors, key, &created);
	if (ec != NULL) {
		ec->agent = agent;
		ec->window = window;
		ec->calls++;
		if (failed)
			ids_push(ec->db, ec->ids, (size_t)ec->failures, db, rec->id);
		ec->failures += failed;
	} else {
		missed = 1;
	}
	if (rec->request_hash != 0) {
		key = u64map_hash(&rec->request_hash, sizeof rec->request_hash, agent);
		rc = u64map_put(&a->requests, key, &created);
		if (rc == NULL) {
			missed = 1;
		} else {
			rc->agent = agent;
			if (created)
				rc->first_ns = rec->ts_ns;
			if (!created && rec->ts_ns - rc->last_ns > t->retry_gap_ns) {
				retry_burst_end(a, rc);
				rc->burst = 0;
			}
			if (rc->burst == 0)
				rc->burst_start_ns = rec->ts_ns;
			ids_push(rc->db, rc->ids, (size_t)rc->burst, db, rec->id);
			rc->burst++;
			rc->last_ns = rec->ts_ns;
			if (!failed) {
				if (rc->answered > 0) {
					ids_push(rc->dup_db, rc->dup_ids, (size_t)rc->answered - 1,
						 db, rec->id);
					rc->saved_tokens += tokens;
					rc->saved_pusd += priced ? pusd : 0;
				}
				rc->answered++;
			}
		}
	}
	key = rec->session.n ? u64map_hash(rec->session.p, rec->session.n, db * 2)
			     : u64map_hash(&rec->pid, sizeof rec->pid, db * 2 + 1);
	sc = u64map_put(&a->sessions, key, &created);
	if (sc == NULL) {
		missed = 1;
	} else if (failed) {
		/* a failed call says nothing about the context: it neither grows nor breaks */
	} else {
		if (!created && rec->input_tokens <= sc->last_input) {
			growth_run_end(a, sc);
			sc->run = 0;
		}
		if (sc->run == 0) {
			sc->agent = agent;
			sc->first_input = rec->input_tokens;
			sc->start_ns = rec->ts_ns;
			snprintf(sc->name, sizeof sc->name, "%.*s", (int)rec->session.n,
				 rec->session.p ? rec->session.p : "");
		}
		ids_push(sc->db, sc->ids, (size_t)sc->run, db, rec->id);
		sc->run++;
		sc->last_input = rec->input_tokens;
		sc->last_ns = rec->ts_ns;
		sc->last_id = rec->id;
	}
out:
	a->untracked += missed;
	return a->nomem ? -1 : 0;
}

int anomaly_feed_prefix(struct anomaly *a, const struct record *rec, size_t db,
			const char *body, size_t len)
{
	uint32_t agent = agent_index(a, rec);
	struct prefix_cell *pc;
	uint64_t key;
	int created;

	if (agent == UINT32_MAX || len < (size_t)a->th.prefix_bytes)
		goto out;
	key = u64map_hash(body, (size_t)a->th.prefix_bytes, agent);
	pc = u64map_put(&a->prefixes, key, &created);
	if (pc == NULL) {
		a->untracked++;
		goto out;
	}
	if (created)
		pc->first_ns = rec->ts_ns;
	pc->agent = agent;
	ids_push(pc->db, pc->ids, (size_t)pc->calls, db, rec->id);
	pc->calls++;
	pc->cache_read_calls += rec->cache_read_tokens > 0;
	pc->input += rec->input_tokens;
	pc->last_ns = rec->ts_ns;
out:
	return a->nomem ? -1 : 0;
}

static int double_cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

/* Median of v[0..n) without v[skip] (skip = n for none), sorting v's copy in tmp. */
static double median_without(const double *v, size_t n, size_t skip, double *tmp)
{
	size_t i, m = 0;
	double med = 0;

	for (i = 0; i < n; i++)
		if (i != skip)
			tmp[m++] = v[i];
	if (m > 0) {
		qsort(tmp, m, sizeof *tmp, double_cmp);
		med = m % 2 ? tmp[m / 2] : (tmp[m / 2 - 1] + tmp[m / 2]) / 2;
	}
	return med;
}

/* Robust z of v[at] against the others: (x - median) / max(1.4826 MAD, MIN_SCALE). Sets
 * *median. tmp has room for n values. */
static double robust_score(const double *v, size_t n, size_t at, double *tmp, double *median)
{
	double *dev = tmp + n, med = median_without(v, n, at, tmp), mad;
	size_t i;

	for (i = 0; i < n; i++)
		dev[i] = fabs(v[i] - med);
	mad = median_without(dev, n, at, tmp);
	*median = med;
	return (v[at] - med) / fmax(MAD_TO_SIGMA * mad, MIN_SCALE);
}

/*
 * Every value of one series scored against the others (robust_score for each in turn) in
 * O(n log n) rather than a sort per value: the series is sorted once, and taking one value
 * out of it leaves one of at most three medians (by where the value ranks: below, at or
 * above the middle), so the deviations from each are sorted once, when first needed. Tied
 * values give the same remaining multiset whichever of them is taken out, so a value's rank
 * is any position holding it. The arithmetic is robust_score's, value for value.
 */
struct loo {
	double *sorted;          /* the series, ascending */
	double med[3], *dev[3];  /* a median met so far, the |values - it| ascending */
	size_t n, nmed;
};

/* Points l's arrays at buf (room for 4 n values) and sorts v[0..n) into it. */
static void loo_init(struct loo *l, const double *v, size_t n, double *buf)
{
	size_t k;

	l->n = n;
	l->nmed = 0;
	l->sorted = buf;
	for (k = 0; k < 3; k++)
		l->dev[k] = buf + (k + 1) * n;
	memcpy(l->sorted, v, n * sizeof *v);
	qsort(l->sorted, n, sizeof *l->sorted, double_cmp);
}

/* The position of x, which sorted[0..n) holds. */
static size_t loo_rank(const double *sorted, size_t n, double x)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (sorted[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The median of sorted[0..n) without its value at position r (median_without's). */
static double loo_median(const double *sorted, size_t n, size_t r)
{
	size_t m = n - 1, i = m / 2;
	double hi, med = 0;

	if (n > 1) {
		hi = sorted[i < r ? i : i + 1];
		med = m % 2 ? hi : (sorted[i - 1 < r ? i - 1 : i] + hi) / 2;
	}
	return med;
}

/* robust_score of x, one of l's values, against the others. */
static double loo_score(struct loo *l, double x, double *median)
{
	double med = loo_median(l->sorted, l->n, loo_rank(l->sorted, l->n, x)), mad;
	size_t k, i;

	for (k = 0; k < l->nmed && l->med[k] != med; k++)
		;
	if (k == l->nmed) {
		k = l->nmed < 3 ? l->nmed++ : 2; /* three at most: the last is reused if not */
		l->med[k] = med;
		for (i = 0; i < l->n; i++)
			l->dev[k][i] = fabs(l->sorted[i] - med);
		qsort(l->dev[k], l->n, sizeof *l->dev[k], double_cmp);
	}
	mad = loo_median(l->dev[k], l->n, loo_rank(l->dev[k], l->n, fabs(x - med)));
	*median = med;
	return (x - med) / fmax(MAD_TO_SIGMA * mad, MIN_SCALE);
}

static int cell_agent_cmp(const void *x, const void *y)
{
	const struct hour_cell *a = *(struct hour_cell *const *)x, *b = *(struct hour_cell *const *)y;
	int c = (a->agent > b->agent) - (a->agent < b->agent);

	if (c == 0)
		c = (a->hour > b->hour) - (a->hour < b->hour);
	return c;
}

/* spike: each agent's active hours, tokens and cost each scored against the other hours. */
static void score_spikes(struct anomaly *a)
{
	const struct anomaly_thresholds *t = &a->th;
	struct hour_cell *hc, **cells = NULL, **all = NULL;
	double *tok = NULL, *cost = NULL, *tmp = NULL, st, sc, med_t, med_c = 0, best;
	size_t i, n, k, ag, start, total;
	struct loo lt, lc;
	uint64_t key;

	all = malloc(a->hours.n * sizeof *all + 1);
	cells = malloc(a->hours.n * sizeof *cells + 1);
	tok = malloc(a->hours.n * sizeof *tok + 1);
	cost = malloc(a->hours.n * sizeof *cost + 1);
	tmp = malloc(8 * a->hours.n * sizeof *tmp + 1);
	if (all == NULL || cells == NULL || tok == NULL || cost == NULL || tmp == NULL) {
		a->nomem = 1;
		goto out;
	}
	/* All cells, grouped by agent: one sort rather than a scan of the table per agent. */
	for (i = 0, total = 0; i < a->hours.cap; i++) {
		hc = u64map_slot(&a->hours, i, &key);
		if (hc != NULL)
			all[total++] = hc;
	}
	if (total > 1)
		qsort(all, total, sizeof *all, cell_agent_cmp);
	for (start = 0; start < total; start += n) {
		ag = all[start]->agent;
		for (n = 0; start + n < total && all[start + n]->agent == ag; n++)
			cells[n] = all[start + n];
		if (n < (size_t)t->spike_min_hours + 1)
			continue;
		for (i = 0; i < n; i++) {
			tok[i] = log((double)(cells[i]->tokens > 0 ? cells[i]->tokens : 1));
			cost[i] = log((double)(cells[i]->cost_pusd > 0 ? cells[i]->cost_pusd : 1));
		}
		loo_init(&lt, tok, n, tmp);
		loo_init(&lc, cost, n, tmp + 4 * n);
		for (k = 0; k < n; k++) {
			if (cells[k]->tokens < t->spike_min_tokens)
				continue;
			st = loo_score(&lt, tok[k], &med_t);
			sc = cells[k]->cost_pusd > 0 ? loo_score(&lc, cost[k], &med_c) : 0;
			best = fmax(st, sc);
			if (best < t->spike_score)
				continue;
			add_flag(a, "spike", best >= 2 * t->spike_score ? ANOMALY_CRITICAL
									: ANOMALY_WARNING,
				 (uint32_t)ag, NULL, cells[k]->hour * NS_PER_HOUR,
				 (cells[k]->hour + 1) * NS_PER_HOUR, cells[k]->db, cells[k]->ids,
				 (size_t)(cells[k]->calls < CELL_IDS ? cells[k]->calls : CELL_IDS),
				 fmt("\"metric\": \"%s\", \"tokens\": %" PRId64
				     ", \"baselineTokens\": %.0f, \"tokensScore\": %.2f"
				     ", \"cost\": %.12g, \"baselineCost\": %.12g, \"costScore\": %.2f"
				     ", \"calls\": %" PRId64 ", \"baselineHours\": %zu",
				     sc > st + 1e-9 ? "cost" : "tokens", cells[k]->tokens, exp(med_t), st,
				     usd(cells[k]->cost_pusd), sc > 0 ? exp(med_c) / 1e12 : 0.0, sc,
				     cells[k]->calls, n - 1),
				 fmt("%" PRId64 " tokens in an hour, %.1fx its usual %.0f (score %.1f)",
				     cells[k]->tokens, (double)cells[k]->tokens / exp(med_t),
				     exp(med_t), best));
		}
	}
out:
	free(all);
	free(cells);
	free(tok);
	free(cost);
	free(tmp);
}

static void score_errors(struct anomaly *a)
{
	const struct anomaly_thresholds *t = &a->th;
	struct error_cell *c;
	double rate;
	uint64_t key;
	size_t i;

	for (i = 0; i < a->errors.cap; i++) {
		c = u64map_slot(&a->errors, i, &key);
		if (c == NULL || c->failures < t->error_min)
			continue;
		rate = (double)c->failures / (double)c->calls;
		if (rate < t->error_rate)
			continue;
		add_flag(a, "error_burst",
			 rate >= 0.9 && c->failures >= 2 * t->error_min ? ANOMALY_CRITICAL
									 : ANOMALY_WARNING,
			 c->agent, NULL, c->window * t->error_window_ns,
			 (c->window + 1) * t->error_window_ns, c->db, c->ids,
			 (size_t)(c->failures < CELL_IDS ? c->failures : CELL_IDS),
			 fmt("\"failures\": %" PRId64 ", \"calls\": %" PRId64 ", \"rate\": %.4f",
			     c->failures, c->calls, rate),
			 fmt("%" PRId64 " of %" PRId64 " calls failed in %" PRId64 " s", c->failures,
			     c->calls, t->error_window_ns / NS_PER_S));
	}
}

/* retry bursts still open, and duplicate_requests per agent. */
static void score_requests(struct anomaly *a)
{
	struct {
		int64_t requests, dups, tokens, pusd, from, to;
		uint32_t db[ANOMALY_MAX_IDS];
		uint64_t ids[ANOMALY_MAX_IDS];
		size_t nids;
	} *per = calloc(a->nagents + 1, sizeof *per);
	struct request_cell *c;
	int64_t d;
	uint64_t key;
	size_t i, j;

	if (per == NULL) {
		a->nomem = 1;
		goto out;
	}
	for (i = 0; i < a->requests.cap; i++) {
		c = u64map_slot(&a->requests, i, &key);
		if (c == NULL)
			continue;
		retry_burst_end(a, c);
		if (c->answered < 2)
			continue;
		d = c->answered - 1;
		if (per[c->agent].dups == 0 || c->first_ns < per[c->agent].from)
			per[c->agent].from = c->first_ns;
		if (c->last_ns > per[c->agent].to)
			per[c->agent].to = c->last_ns;
		per[c->agent].requests++;
		per[c->agent].dups += d;
		per[c->agent].tokens += c->saved_tokens;
		per[c->agent].pusd += c->saved_pusd;
		for (j = 0; j < (size_t)d && j < CELL_IDS && per[c->agent].nids < ANOMALY_MAX_IDS;
		     j++) {
			per[c->agent].db[per[c->agent].nids] = c->dup_db[j];
			per[c->agent].ids[per[c->agent].nids++] = c->dup_ids[j];
		}
	}
	for (i = 0; i < a->nagents; i++) {
		if (per[i].dups < a->th.dup_min)
			continue;
		add_flag(a, "duplicate_requests", ANOMALY_INFO, (uint32_t)i, NULL, per[i].from,
			 per[i].to, per[i].db, per[i].ids, per[i].nids,
			 fmt("\"repeatedRequests\": %" PRId64 ", \"duplicateCalls\": %" PRId64
			     ", \"savedTokens\": %" PRId64 ", \"savedCost\": %.12g",
			     per[i].requests, per[i].dups, per[i].tokens, usd(per[i].pusd)),
			 fmt("%" PRId64 " identical requests answered again: a response cache "
			     "would save %" PRId64 " tokens, $%.4f",
			     per[i].dups, per[i].tokens, usd(per[i].pusd)));
	}
out:
	free(per);
}

static void score_sessions(struct anomaly *a)
{
	struct session_cell *c;
	uint64_t key;
	size_t i;

	for (i = 0; i < a->sessions.cap; i++) {
		c = u64map_slot(&a->sessions, i, &key);
		if (c != NULL)
			growth_run_end(a, c);
	}
}

static void score_outliers(struct anomaly *a)
{
	const struct anomaly_thresholds *t = &a->th;
	struct anomaly_agent *ag;
	double *v = NULL, *tmp = NULL, med, score;
	size_t i, k, n;

	v = malloc((ANOMALY_SAMPLE + 1) * sizeof *v);
	tmp = malloc(2 * (ANOMALY_SAMPLE + 1) * sizeof *tmp);
	if (v == NULL || tmp == NULL) {
		a->nomem = 1;
		goto out;
	}
	for (i = 0; i < a->nagents; i++) {
		ag = &a->agents[i];
		if (ag->priced < t->outlier_min_calls)
			continue;
		n = ag->nsample;
		for (k = 0; k < n; k++)
			v[k] = log((double)ag->sample[k]);
		for (k = 0; k < ag->ntop; k++) {
			if (ag->top[k].pusd < t->outlier_min_pusd)
				continue;
			/* scored against the sample: at ANOMALY_SAMPLE calls and more the call
			 * itself weighs one in a thousand */
			v[n] = log((double)ag->top[k].pusd);
			score = robust_score(v, n + 1, n, tmp, &med);
			if (score < t->outlier_score)
				continue;
			add_flag(a, "cost_outlier", score >= 2 * t->outlier_score ? ANOMALY_CRITICAL
										  : ANOMALY_WARNING,
				 (uint32_t)i, NULL, ag->top[k].ts_ns, ag->top[k].ts_ns,
				 &ag->top[k].db, &ag->top[k].id, 1,
				 fmt("\"cost\": %.12g, \"medianCost\": %.12g, \"score\": %.2f, "
				     "\"calls\": %" PRId64,
				     usd(ag->top[k].pusd), exp(med) / 1e12, score, ag->priced),
				 fmt("one call cost $%.4f, %.0fx the agent's median $%.6f",
				     usd(ag->top[k].pusd), (double)ag->top[k].pusd / exp(med),
				     exp(med) / 1e12));
		}
	}
out:
	free(v);
	free(tmp);
}

static void score_prefixes(struct anomaly *a)
{
	struct prefix_cell *c;
	uint64_t key;
	size_t i;

	for (i = 0; i < a->prefixes.cap; i++) {
		c = u64map_slot(&a->prefixes, i, &key);
		if (c == NULL || c->calls < a->th.prefix_min_calls || c->cache_read_calls > 0)
			continue;
		add_flag(a, "cache_opportunity",
			 c->calls >= 10 * a->th.prefix_min_calls ? ANOMALY_WARNING : ANOMALY_INFO,
			 c->agent, NULL, c->first_ns, c->last_ns, c->db, c->ids,
			 (size_t)(c->calls < CELL_IDS ? c->calls : CELL_IDS),
			 fmt("\"calls\": %" PRId64 ", \"prefixBytes\": %" PRId64
			     ", \"inputTokens\": %" PRId64 ", \"cacheReadCalls\": 0",
			     c->calls, a->th.prefix_bytes, c->input),
			 fmt("%" PRId64 " calls share their first %" PRId64
			     " request bytes and none read from a prompt cache",
			     c->calls, a->th.prefix_bytes));
	}
}

/* new_heavy_agent: first seen within new_window of the end, spending at least heavy_ratio of
 * what the heaviest older agent spent in its heaviest window-long period. */
static void score_new_agents(struct anomaly *a)
{
	const struct anomaly_thresholds *t = &a->th;
	int64_t cut = a->last_ns - t->new_window_ns, heavy_cost = 0, heavy_tokens = 0, b;
	struct u64map buckets;
	struct hour_cell *hc;
	int64_t *sum;
	uint64_t key;
	size_t i;
	int created, by_cost;

	u64map_init(&buckets, 2 * sizeof(int64_t), ANOMALY_MAX_ENTRIES);
	for (i = 0; i < a->hours.cap; i++) {
		hc = u64map_slot(&a->hours, i, &key);
		if (hc == NULL || a->agents[hc->agent].first_ns >= cut)
			continue;
		b = hc->hour * NS_PER_HOUR / t->new_window_ns;
		sum = u64map_put(&buckets, u64map_hash(&b, sizeof b, hc->agent), &created);
		if (sum == NULL)
			continue;
		sum[0] += hc->cost_pusd;
		sum[1] += hc->tokens;
		heavy_cost = sum[0] > heavy_cost ? sum[0] : heavy_cost;
		heavy_tokens = sum[1] > heavy_tokens ? sum[1] : heavy_tokens;
	}
	u64map_release(&buckets);
	for (i = 0; i < a->nagents && heavy_tokens > 0; i++) {
		if (a->agents[i].first_ns < cut)
			continue;
		by_cost = a->agents[i].cost_pusd > 0 && heavy_cost > 0;
		if (by_cost ? (double)a->agents[i].cost_pusd < t->heavy_ratio * (double)heavy_cost
			    : (double)a->agents[i].tokens < t->heavy_ratio * (double)heavy_tokens)
			continue;
		add_flag(a, "new_heavy_agent", ANOMALY_WARNING, (uint32_t)i, NULL,
			 a->agents[i].first_ns, a->last_ns, a->agents[i].db, a->agents[i].ids,
			 (size_t)(a->agents[i].calls < CELL_IDS ? a->agents[i].calls : CELL_IDS),
			 fmt("\"tokens\": %" PRId64 ", \"cost\": %.12g, \"heaviestTokens\": %" PRId64
			     ", \"heaviestCost\": %.12g, \"calls\": %" PRId64,
			     a->agents[i].tokens, usd(a->agents[i].cost_pusd), heavy_tokens,
			     usd(heavy_cost), a->agents[i].calls),
			 fmt("a new agent spent %.0f%% of the heaviest agent's busiest period",
			     100.0 * (by_cost ? (double)a->agents[i].cost_pusd / (double)heavy_cost
					      : (double)a->agents[i].tokens / (double)heavy_tokens)));
	}
}

static int flag_cmp(const void *x, const void *y)
{
	const struct anomaly_flag *a = x, *b = y;
	int c;

	if (a->severity != b->severity)
		c = a->severity > b->severity ? -1 : 1;
	else if (a->from_ns != b->from_ns)
		c = a->from_ns < b->from_ns ? -1 : 1;
	else if (strcmp(a->kind, b->kind) != 0)
		c = strcmp(a->kind, b->kind);
	else
		c = strcmp(a->agent, b->agent);
	return c;
}

int anomaly_finish(struct anomaly *a)
{
	score_spikes(a);
	score_errors(a);
	score_requests(a);
	score_sessions(a);
	score_outliers(a);
	score_prefixes(a);
	score_new_agents(a);
	if (a->nflags > 1)
		qsort(a->flags, a->nflags, sizeof *a->flags, flag_cmp);
	return a->nomem ? -1 : 0;
}

struct prefix_scan {
	struct anomaly *a;
	const struct filter *f;
	struct progress *progress;
	struct store *store;
	size_t db;
};

/* store_scan callback of the prefix pass: payloads are read only for long matching calls. */
static int prefix_one(const struct record *rec, void *arg)
{
	struct prefix_scan *ps = arg;
	struct payload pl;
	int ret = 0;

	if (ps->progress)
		progress_tick(ps->progress);
	if (!(rec->flags & RECORD_PAYLOAD) || rec->input_tokens * 4 < ps->a->th.prefix_bytes ||
	    !filter_match(ps->f, rec))
		goto out;
	memset(&pl, 0, sizeof pl);
	if (store_payload_get(ps->store, rec->id, &pl) == 0 &&
	    anomaly_feed_prefix(ps->a, rec, ps->db, pl.req_body.p, pl.req_body.n) != 0)
		ret = STORE_ENOMEM;
	payload_release(&pl);
out:
	return ret;
}

int anomaly_prefix_pass(struct anomaly *a, const struct filter *f, struct progress *progress,
			char *err, size_t errlen)
{
	struct prefix_scan ps = { .a = a, .f = f, .progress = progress };
	struct store *stores[FILTER_MAX_DB];
	int ret = filter_open(f, stores, err, errlen);

	if (ret != 0)
		goto out;
	for (ps.db = 0; ps.db < f->ndb && ret == 0; ps.db++) {
		ps.store = stores[ps.db];
		ret = store_scan(stores[ps.db], f->since_ns, f->until_ns, prefix_one, &ps);
		if (ret != 0)
			snprintf(err, errlen, "cannot read '%s': %s", f->db[ps.db],
				 store_strerror(ret));
	}
	filter_close(stores, f->ndb);
out:
	return ret;
}

void anomaly_ids_text(char *out, size_t cap, const struct anomaly_flag *fl, size_t ndb)
{
	char ref[RECORDFMT_REF_MAX];
	size_t j, len = 0;

	out[0] = '\0';
	for (j = 0; j < fl->nids && len < cap; j++) {
		recordfmt_ref(ref, fl->ids[j], fl->ids_db[j], ndb);
		len += (size_t)snprintf(out + len, cap - len, "%s%s", j ? " " : "", ref);
	}
}

/* The json object, or with flat set, its flat form for CSV: the evidence object as one JSON
 * text and the ids as one space-separated string. */
static void flag_json(struct jw *w, const struct anomaly_flag *fl, size_t ndb, int flat)
{
	const char *sev = anomaly_severity_name(fl->severity);
	char text[FMT_TIME_MAX], ref[RECORDFMT_REF_MAX];
	char ids[ANOMALY_MAX_IDS * (RECORDFMT_REF_MAX + 1) + 1];
	size_t j, n = strlen(fl->evidence) + 2;
	char *evidence;

	jw_object_begin(w);
	jw_key(w, "kind");
	jw_str(w, fl->kind, strlen(fl->kind));
	jw_key(w, "severity");
	jw_str(w, sev, strlen(sev));
	jw_key(w, "agent");
	jw_str(w, fl->agent, strlen(fl->agent));
	jw_key(w, "session");
	if (fl->session)
		jw_str(w, fl->session, strlen(fl->session));
	else
		jw_null(w);
	fmt_rfc3339(text, fl->from_ns);
	jw_key(w, "from");
	jw_str(w, text, strlen(text));
	fmt_rfc3339(text, fl->to_ns);
	jw_key(w, "to");
	jw_str(w, text, strlen(text));
	jw_key(w, "summary");
	jw_str(w, fl->summary, strlen(fl->summary));
	jw_key(w, "evidence");
	if (flat) {
		/* out of memory: the evidence is left empty rather than the line */
		evidence = malloc(n + 1);
		if (evidence != NULL)
			snprintf(evidence, n + 1, "{%s}", fl->evidence);
		jw_str(w, evidence, evidence != NULL ? n : 0);
		free(evidence);
	} else {
		/* members this file formatted as JSON, written as they are */
		fputc('{', w->f);
		fputs(fl->evidence, w->f);
		fputc('}', w->f);
		w->after_key = 0;
		w->count[w->depth]++;
	}
	jw_key(w, "ids");
	if (flat) {
		anomaly_ids_text(ids, sizeof ids, fl, ndb);
		jw_str(w, ids, strlen(ids));
	} else {
		jw_array_begin(w);
		for (j = 0; j < fl->nids; j++) {
			if (ndb > 1) {
				recordfmt_ref(ref, fl->ids[j], fl->ids_db[j], ndb);
				jw_str(w, ref, strlen(ref));
			} else {
				jw_int(w, (int64_t)fl->ids[j]);
			}
		}
		jw_array_end(w);
	}
	jw_object_end(w);
}

void anomaly_flag_json(struct jw *w, const struct anomaly_flag *fl, size_t ndb)
{
	flag_json(w, fl, ndb, 0);
}

void anomaly_flag_flat(struct jw *w, const struct anomaly_flag *fl, size_t ndb)
{
	flag_json(w, fl, ndb, 1);
}
