/*
 * cmd_dashboard.c - `tokshim dashboard -o usage.html`: one self-contained HTML page (no
 * network: the page's CSS, script and SVG charts are inline, analyzer/dashboard.html) with the
 * usage of the records that match the filters.
 *
 * The page filters by agent, model, provider, locality and dates itself, so it carries rows
 * rather than finished totals: one row per (hour, agent, model, provider, locality) with its
 * sums, costs as exact pico-USD (summed in the page with BigInt, so its totals are the
 * report's to the pico-dollar). The rows are bounded: at most DASH_MAX_ROWS (about 90 bytes
 * each, so ~9 MB); a store whose rows would pass it is summed per day instead, and one that
 * still passes it is refused with a hint to narrow the filters. Names are capped at
 * DASH_MAX_NAMES per kind (past it: "(other)"). The heaviest sessions are computed here and
 * embedded as they are.
 *
 * Fallbacks are detected here (analyzer/fallback.c, over every record of the page in time
 * order) and embedded as rows too, keyed by the fallback call's own hour, agent, model,
 * provider and locality plus its pair and kind, so the page's selectors pick the fallback
 * calls among the selected calls. Anomalies (analyzer/anomaly.c) need the records themselves
 * and cannot be recomputed in the page: they are found here over every record of the page, as
 * `tokshim anomalies` finds them with the same filters, and embedded as flags (at most
 * DASH_MAX_FLAGS); the page lists those whose agent and window match its agent and date
 * selectors and says that the other selectors do not apply to them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analyzer/anomaly.h"
#include "analyzer/cli.h"
#include "analyzer/fallback.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"
#include "analyzer/progress.h"
#include "analyzer/recordfmt.h"
#include "analyzer/u64map.h"
#include "providers/pricing.h"

#define DASH_MAX_ROWS 100000
#define DASH_MAX_NAMES 4096 /* 12 bits each in a row's key */
#define DASH_MAX_SESSIONS 200000
#define DASH_TOP_SESSIONS 200
#define DASH_MAX_FLAGS 1000
#define DASH_HOUR 3600
#define DASH_DAY 86400

extern const unsigned char dashboard_html[];
extern const size_t dashboard_html_len;

static const char usage_text[] =
	"usage: tokshim dashboard -o FILE [filters]\n"
	"\n"
	"Write one self-contained HTML page (nothing fetched from the network) with totals,\n"
	"cost and tokens over time, usage by agent, model and provider, local vs cloud, the\n"
	"fallbacks, the anomalies and the heaviest sessions. Selectors in the page (agent,\n"
	"model, provider, locality, dates; also as a URL fragment:\n"
	"usage.html#agent=NAME&from=2026-11-01) recompute everything from per-hour rows\n"
	"embedded in it (per day when there would be more than 100000 rows), except the\n"
	"anomalies: found over all the page's records as `tokshim anomalies` finds them, they\n"
	"follow the agent and date selectors only.\n"
	"\n"
	"Options:\n"
	"  -o, --output FILE    the page to write (replaced atomically)\n"
	"\n";

struct names {
	struct u64map idx; /* hash of the name → uint32_t index + 1 */
	char **v;
	size_t n;
};

struct dash_row {
	uint32_t bucket; /* index into buckets */
	uint16_t agent, model, provider;
	uint8_t local;
	int64_t requests, failed, input, output, cache_read, cache_write, reasoning, cost_pusd;
	int64_t unpriced_requests, unpriced_tokens;
};

/* The fallbacks, retries included, of one row's calls that share a pair and a kind. */
struct dash_fbrow {
	uint32_t bucket;
	uint16_t agent, model, provider;
	uint8_t local, kind;                 /* kind: enum fallback_kind */
	uint32_t primary, fallback;          /* fb.names indices; UINT32_MAX for a retry */
	int64_t count, tokens, cost_pusd, unpriced;
};

struct dash_session {
	uint16_t agent;
	char name[RECORD_STR_MAX + 1];
	int64_t first_ns, last_ns, calls, tokens, cost_pusd, unpriced;
};

struct dash {
	const struct pricing *pricing;
	int64_t bucket_s;
	struct names agents, models, providers;
	struct u64map rows;     /* key packed from the row's fields → struct dash_row */
	struct u64map buckets;  /* bucket start (s) → uint32_t index + 1 */
	int64_t *bucket_start;
	size_t nbuckets, bucket_cap;
	struct u64map sessions; /* hash of (store, session) → struct dash_session */
	struct fallback fb;
	struct u64map fbrows;   /* hash of a struct dash_fbrow's key fields → the row */
	struct anomaly an;
	struct progress progress;
	int full;               /* the rows passed DASH_MAX_ROWS */
	int nomem;
};

static void names_init(struct names *n)
{
	u64map_init(&n->idx, sizeof(uint32_t), DASH_MAX_NAMES);
	n->v = NULL;
	n->n = 0;
}

static void names_release(struct names *n)
{
	size_t i;

	for (i = 0; i < n->n; i++)
		free(n->v[i]);
	free(n->v);
	u64map_release(&n->idx);
}

/* The index of name s (added when new); past DASH_MAX_NAMES - 1 names, "(other)". Distinct
 * names whose 64-bit hashes collide would be merged; the odds are negligible. */
static int names_index(struct dash *d, struct names *n, const struct record_str *s)
{
	static const struct record_str other = { "(other)", 7, 0 };
	const struct record_str *name = s;
	uint32_t *slot;
	char **grown;
	int created = 0, ret = -1;

	if (n->n >= DASH_MAX_NAMES - 1)
		name = &other;
	slot = u64map_put(&n->idx, u64map_hash(name->p, name->n, 7), &created);
	if (slot == NULL)
		goto nomem;
	if (created) {
		grown = realloc(n->v, (n->n + 1) * sizeof *grown);
		if (grown == NULL)
			goto nomem;
		n->v = grown;
		n->v[n->n] = strndup(name->n ? name->p : "", name->n);
		if (n->v[n->n] == NULL)
			goto nomem;
		*slot = (uint32_t)++n->n;
	}
	ret = (int)*slot - 1;
	goto out;
nomem:
	d->nomem = 1;
out:
	return ret;
}

static int bucket_index(struct dash *d, int64_t ts_ns)
{
	int64_t start = ts_ns / 1000000000 / d->bucket_s * d->bucket_s;
	uint32_t *slot;
	int64_t *grown;
	int created = 0, ret = -1;

	slot = u64map_put(&d->buckets, (uint64_t)start, &created);
	if (slot == NULL)
		goto nomem;
	if (created) {
		if (d->nbuckets == d->bucket_cap) {
			d->bucket_cap = d->bucket_cap ? d->bucket_cap * 2 : 256;
			grown = realloc(d->bucket_start, d->bucket_cap * sizeof *grown);
			if (grown == NULL)
				goto nomem;
			d->bucket_start = grown;
		}
		d->bucket_start[d->nbuckets] = start;
		*slot = (uint32_t)++d->nbuckets;
	}
	ret = (int)*slot - 1;
	goto out;
nomem:
	d->nomem = 1;
out:
	return ret;
}

static void add_session(struct dash *d, const struct record *rec, int agent, int priced,
			int64_t pusd)
{
	struct dash_session *s;
	size_t db = filter_scan_db();
	int created = 0;

	s = u64map_put(&d->sessions,
		       u64map_hash(rec->session.p, rec->session.n, 0x5e55 + (uint64_t)db),
		       &created);
	if (s == NULL)
		return; /* past DASH_MAX_SESSIONS: sessions are a top list, not totals */
	if (created) {
		recordfmt_cstr(s->name, &rec->session);
		s->agent = (uint16_t)agent;
		s->first_ns = rec->ts_ns;
	}
	if (rec->ts_ns < s->first_ns)
		s->first_ns = rec->ts_ns;
	if (rec->ts_ns + rec->latency_us * 1000 > s->last_ns)
		s->last_ns = rec->ts_ns + rec->latency_us * 1000;
	s->calls++;
	s->tokens += record_total_tokens(rec);
	if (priced)
		s->cost_pusd += pusd;
	else
		s->unpriced++;
}

/* Counts rec, a fallback or a retry by v, in its fallback row. Returns 0, 1 when the rows
 * are full, or -1 when out of memory. */
static int add_fallback(struct dash *d, const struct dash_row *row,
			const struct fallback_verdict *v, const struct record *rec, int priced,
			int64_t pusd)
{
	struct dash_fbrow key, *fr;
	int created = 0, ret = 0;

	memset(&key, 0, sizeof key); /* the padding too: the key is hashed as bytes */
	key.bucket = row->bucket;
	key.agent = row->agent;
	key.model = row->model;
	key.provider = row->provider;
	key.local = row->local;
	key.kind = (uint8_t)v->kind;
	key.primary = v->kind == FALLBACK_RETRY ? UINT32_MAX : v->primary;
	key.fallback = v->kind == FALLBACK_RETRY ? UINT32_MAX : v->fallback;
	fr = u64map_put(&d->fbrows, u64map_hash(&key, sizeof key, 0xfb), &created);
	if (fr == NULL) {
		d->full = d->fbrows.n >= DASH_MAX_ROWS;
		ret = d->full ? 1 : -1;
		goto out;
	}
	if (created)
		*fr = key;
	fr->count++;
	fr->tokens += record_total_tokens(rec);
	if (priced)
		fr->cost_pusd += pusd;
	else
		fr->unpriced++;
out:
	return ret;
}

static int dash_one(const struct record *rec, void *arg)
{
	struct dash *d = arg;
	struct fallback_verdict v;
	struct dash_row *row;
	int64_t pusd = 0;
	int priced = pricing_record_cost(d->pricing, rec, &pusd), created = 0;
	int a, m, p, b, ret = 0;
	uint64_t key;

	a = names_index(d, &d->agents, &rec->agent);
	m = names_index(d, &d->models, rec->model.n ? &rec->model : &rec->model_requested);
	p = names_index(d, &d->providers, rec->provider.n ? &rec->provider : &rec->host);
	b = bucket_index(d, rec->ts_ns);
	if (a < 0 || m < 0 || p < 0 || b < 0)
		goto nomem;
	key = (uint64_t)b << 37 | (uint64_t)a << 25 | (uint64_t)m << 13 | (uint64_t)p << 1 |
	      ((rec->flags & RECORD_LOCAL) != 0);
	row = u64map_put(&d->rows, key, &created);
	if (row == NULL) {
		d->full = d->rows.n >= DASH_MAX_ROWS;
		if (!d->full)
			goto nomem;
		ret = 1;
		goto out;
	}
	if (created) {
		row->bucket = (uint32_t)b;
		row->agent = (uint16_t)a;
		row->model = (uint16_t)m;
		row->provider = (uint16_t)p;
		row->local = (rec->flags & RECORD_LOCAL) != 0;
	}
	row->requests++;
	row->failed += fallback_call_failed(rec);
	row->input += rec->input_tokens;
	row->output += rec->output_tokens;
	row->cache_read += rec->cache_read_tokens;
	row->cache_write += rec->cache_write_tokens;
	row->reasoning += rec->reasoning_tokens;
	if (priced) {
		row->cost_pusd += pusd;
	} else {
		row->unpriced_requests++;
		row->unpriced_tokens += record_total_tokens(rec);
	}
	add_session(d, rec, a, priced, pusd);
	progress_tick(&d->progress);
	if (fallback_feed(&d->fb, rec, filter_scan_db(), priced, pusd, &v) != 0 ||
	    anomaly_feed(&d->an, rec, filter_scan_db(), priced, pusd) != 0)
		goto nomem;
	if (v.kind != FALLBACK_NONE)
		ret = add_fallback(d, row, &v, rec, priced, pusd);
	if (ret < 0)
		goto nomem;
	goto out;
nomem:
	d->nomem = 1;
	ret = STORE_ENOMEM;
out:
	return ret;
}

static void dash_init(struct dash *d, const struct pricing *pricing, int64_t bucket_s)
{
	struct anomaly_thresholds th;

	memset(d, 0, sizeof *d);
	d->pricing = pricing;
	d->bucket_s = bucket_s;
	names_init(&d->agents);
	names_init(&d->models);
	names_init(&d->providers);
	u64map_init(&d->rows, sizeof(struct dash_row), DASH_MAX_ROWS);
	u64map_init(&d->buckets, sizeof(uint32_t), DASH_MAX_ROWS);
	u64map_init(&d->sessions, sizeof(struct dash_session), DASH_MAX_SESSIONS);
	fallback_init(&d->fb, FALLBACK_DEFAULT_WINDOW_NS);
	u64map_init(&d->fbrows, sizeof(struct dash_fbrow), DASH_MAX_ROWS);
	anomaly_thresholds_default(&th);
	anomaly_init(&d->an, &th);
	progress_init(&d->progress);
}

static void dash_release(struct dash *d)
{
	names_release(&d->agents);
	names_release(&d->models);
	names_release(&d->providers);
	u64map_release(&d->rows);
	u64map_release(&d->buckets);
	u64map_release(&d->sessions);
	free(d->bucket_start);
	fallback_release(&d->fb);
	u64map_release(&d->fbrows);
	anomaly_release(&d->an);
	progress_done(&d->progress);
}

static void write_names(struct jw *w, const char *key, const struct names *n)
{
	size_t i;

	jw_key(w, key);
	jw_array_begin(w);
	for (i = 0; i < n->n; i++)
		jw_str(w, n->v[i], strlen(n->v[i]));
	jw_array_end(w);
}

/* A cost as the page reads it: pico-USD in a string (BigInt), null when unpriced. */
static void write_cost_text(struct jw *w, int64_t pusd, int unpriced)
{
	char text[24];

	if (unpriced) {
		jw_null(w);
	} else {
		snprintf(text, sizeof text, "%lld", (long long)pusd);
		jw_str(w, text, strlen(text));
	}
}

static int session_cmp(const void *a, const void *b)
{
	const struct dash_session *x = *(const struct dash_session *const *)a;
	const struct dash_session *y = *(const struct dash_session *const *)b;
	int c = 0;

	if (x->cost_pusd != y->cost_pusd)
		c = x->cost_pusd > y->cost_pusd ? -1 : 1;
	else if (x->tokens != y->tokens)
		c = x->tokens > y->tokens ? -1 : 1;
	else
		c = strcmp(x->name, y->name);
	return c;
}

static void write_sessions(struct jw *w, struct dash *d)
{
	struct dash_session **v = malloc((d->sessions.n + 1) * sizeof *v), *s;
	char when[FMT_TIME_MAX];
	uint64_t key;
	size_t i, n = 0;

	jw_key(w, "sessions");
	jw_array_begin(w);
	if (v == NULL)
		goto out;
	for (i = 0; i < d->sessions.cap; i++) {
		s = u64map_slot(&d->sessions, i, &key);
		if (s)
			v[n++] = s;
	}
	qsort(v, n, sizeof *v, session_cmp);
	for (i = 0; i < n && i < DASH_TOP_SESSIONS; i++) {
		s = v[i];
		jw_object_begin(w);
		jw_key(w, "session");
		jw_str(w, s->name, strlen(s->name));
		jw_key(w, "agent");
		jw_str(w, d->agents.v[s->agent], strlen(d->agents.v[s->agent]));
		fmt_rfc3339(when, s->first_ns);
		jw_key(w, "start");
		jw_str(w, when, strlen(when));
		jw_key(w, "durationS");
		jw_int(w, (s->last_ns - s->first_ns) / 1000000000);
		jw_key(w, "calls");
		jw_int(w, s->calls);
		jw_key(w, "tokens");
		jw_int(w, s->tokens);
		jw_key(w, "cost");
		write_cost_text(w, s->cost_pusd, s->unpriced == s->calls);
		jw_object_end(w);
	}
out:
	jw_array_end(w);
	free(v);
}

/* The fallback rows: [bucket, agent, model, provider, local, kind, primary, fallback, count,
 * tokens, cost, unpriced], primary and fallback indices into fallbackNames (null for a
 * retry), cost pico-USD text. */
static void write_fallbacks(struct jw *w, struct dash *d)
{
	const struct fallback_name *n;
	struct dash_fbrow *r;
	char name[2 * RECORD_STR_MAX + 8];
	uint64_t key;
	size_t i;

	jw_key(w, "fallbackWindowS");
	jw_int(w, d->fb.window_ns / 1000000000);
	jw_key(w, "fallbackNames");
	jw_array_begin(w);
	for (i = 0; i < d->fb.nnames; i++) {
		n = &d->fb.names[i];
		snprintf(name, sizeof name, "%s%s%s", n->provider, *n->provider ? "/" : "",
			 n->model);
		jw_str(w, name, strlen(name));
	}
	jw_array_end(w);
	jw_key(w, "fallbackRows");
	jw_array_begin(w);
	for (i = 0; i < d->fbrows.cap; i++) {
		r = u64map_slot(&d->fbrows, i, &key);
		if (r == NULL)
			continue;
		jw_array_begin(w);
		jw_int(w, r->bucket);
		jw_int(w, r->agent);
		jw_int(w, r->model);
		jw_int(w, r->provider);
		jw_int(w, r->local);
		jw_int(w, r->kind);
		if (r->primary == UINT32_MAX || r->fallback == UINT32_MAX) {
			jw_null(w);
			jw_null(w);
		} else {
			jw_int(w, r->primary);
			jw_int(w, r->fallback);
		}
		jw_int(w, r->count);
		jw_int(w, r->tokens);
		write_cost_text(w, r->cost_pusd, 0);
		jw_int(w, r->unpriced);
		jw_array_end(w);
	}
	jw_array_end(w);
}

/* The flags of `tokshim anomalies` over the page's records, the first DASH_MAX_FLAGS of them
 * (most severe first). */
static void write_anomalies(struct jw *w, const struct anomaly *an, size_t nstores)
{
	size_t i;

	jw_key(w, "anomalies");
	jw_object_begin(w);
	jw_key(w, "records");
	jw_int(w, an->records);
	jw_key(w, "untracked");
	jw_int(w, an->untracked);
	jw_key(w, "total");
	jw_int(w, (int64_t)an->nflags);
	jw_key(w, "flags");
	jw_array_begin(w);
	for (i = 0; i < an->nflags && i < DASH_MAX_FLAGS; i++)
		anomaly_flag_json(w, &an->flags[i], nstores);
	jw_array_end(w);
	jw_object_end(w);
}

/* The embedded data (see dashboard.html for how the page reads it). */
static void write_data(FILE *f, struct dash *d, size_t nstores)
{
	struct dash_row *r;
	char now[FMT_TIME_MAX];
	uint64_t key;
	struct jw w;
	size_t i;

	jw_init(&w, f, 0);
	jw_object_begin(&w);
	fmt_rfc3339(now, filter_now_ns());
	jw_key(&w, "generated");
	jw_str(&w, now, 19);
	jw_key(&w, "stores");
	jw_int(&w, (int64_t)nstores);
	jw_key(&w, "bucket");
	jw_int(&w, d->bucket_s);
	jw_key(&w, "maxRows");
	jw_int(&w, DASH_MAX_ROWS);
	write_names(&w, "agents", &d->agents);
	write_names(&w, "models", &d->models);
	write_names(&w, "providers", &d->providers);
	jw_key(&w, "buckets");
	jw_array_begin(&w);
	for (i = 0; i < d->nbuckets; i++)
		jw_int(&w, d->bucket_start[i]);
	jw_array_end(&w);
	jw_key(&w, "rows");
	jw_array_begin(&w);
	for (i = 0; i < d->rows.cap; i++) {
		r = u64map_slot(&d->rows, i, &key);
		if (r == NULL)
			continue;
		jw_array_begin(&w);
		jw_int(&w, r->bucket);
		jw_int(&w, r->agent);
		jw_int(&w, r->model);
		jw_int(&w, r->provider);
		jw_int(&w, r->local);
		jw_int(&w, r->requests);
		jw_int(&w, r->failed);
		jw_int(&w, r->input);
		jw_int(&w, r->output);
		jw_int(&w, r->cache_read);
		jw_int(&w, r->cache_write);
		jw_int(&w, r->reasoning);
		write_cost_text(&w, r->cost_pusd, 0);
		jw_int(&w, r->unpriced_requests);
		jw_int(&w, r->unpriced_tokens);
		jw_array_end(&w);
	}
	jw_array_end(&w);
	write_sessions(&w, d);
	write_fallbacks(&w, d);
	write_anomalies(&w, &d->an, nstores);
	jw_object_end(&w);
}

/* Writes the page: the template with the data in place of its marker. "</" in the data is
 * written "<\/" (the same JSON string) so that no name can close the script element. */
static int write_page(FILE *f, const char *data, size_t len)
{
	static const char marker[] = "/*TOKSHIM_DATA*/";
	const char *page = (const char *)dashboard_html, *at;
	size_t i;
	int ret = -1;

	at = strstr(page, marker);
	if (at == NULL)
		goto out;
	fwrite(page, 1, (size_t)(at - page), f);
	for (i = 0; i < len; i++) {
		if (data[i] == '/' && i > 0 && data[i - 1] == '<')
			putc('\\', f);
		putc(data[i], f);
	}
	fputs(at + sizeof marker - 1, f);
	ret = ferror(f) ? -1 : 0;
out:
	return ret;
}

/* Scans with per-hour buckets, or per-day ones when those would be too many rows. */
static int dash_scan(struct dash *d, const struct filter *f, const struct pricing *pricing,
		     char *err, size_t errlen)
{
	int m;

	dash_init(d, pricing, DASH_HOUR);
	m = filter_scan(f, 1, dash_one, d, err, errlen);
	if (m == 1 && d->full) {
		dash_release(d);
		dash_init(d, pricing, DASH_DAY);
		m = filter_scan(f, 1, dash_one, d, err, errlen);
	}
	if (m == 1 && d->full)
		snprintf(err, errlen,
			 "more than %d day, agent, model and provider combinations: narrow the "
			 "page with --since, --agent, --model or --provider",
			 DASH_MAX_ROWS);
	else if (d->nomem)
		snprintf(err, errlen, "out of memory");
	if (m == 0 && !d->nomem)
		m = anomaly_prefix_pass(&d->an, f, &d->progress, err, errlen);
	if (m == 0 && anomaly_finish(&d->an) != 0)
		m = -1;
	if (d->an.nomem)
		snprintf(err, errlen, "out of memory");
	progress_done(&d->progress);
	return m != 0 || d->nomem ? -1 : 0;
}

int cmd_dashboard(int argc, char **argv)
{
	struct pricing *pricing = NULL;
	const char *out_path = NULL;
	const struct cli_opt opts[] = {
		{ "--output", &out_path, NULL },
		{ "-o", &out_path, NULL },
	};
	struct filter f;
	struct dash d;
	char err[512], tmp[4096], *data = NULL;
	size_t len = 0;
	FILE *mem, *page;
	int done, m, fd, ret = CLI_OK;

	filter_init(&f);
	ret = cli_reading_args("dashboard", usage_text, &f, argc, argv, opts,
			       sizeof opts / sizeof opts[0], &done);
	if (ret != CLI_OK || done)
		goto out;
	if (out_path == NULL || *out_path == '\0') {
		ret = cli_usage_error("dashboard", "missing '-o FILE'");
		goto out;
	}
	ret = cli_reading_setup(&f, &pricing);
	if (ret != CLI_OK)
		goto out;
	ret = CLI_ERR;
	if (dash_scan(&d, &f, pricing, err, sizeof err) != 0) {
		cli_error("%s", err);
		goto release;
	}
	mem = open_memstream(&data, &len);
	if (mem == NULL) {
		cli_error("out of memory");
		goto release;
	}
	write_data(mem, &d, f.ndb);
	if (fclose(mem) != 0) {
		cli_error("out of memory");
		goto release;
	}
	/* A temp file beside the page, then rename: a reader never sees half a page. */
	snprintf(tmp, sizeof tmp, "%s.XXXXXX", out_path);
	fd = mkstemp(tmp);
	if (fd >= 0) {
		/* mkstemp makes 0600; a page is as readable as any file the user writes. */
		mode_t mask = umask(0);

		umask(mask);
		fchmod(fd, 0666 & ~mask);
	}
	page = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (page == NULL) {
		cli_error("cannot write '%s': %m", out_path);
		goto release;
	}
	m = write_page(page, data, len);
	if (fclose(page) != 0 || m != 0 || rename(tmp, out_path) != 0) {
		cli_error("cannot write '%s': %m", out_path);
		unlink(tmp);
		goto release;
	}
	ret = CLI_OK;
release:
	free(data);
	dash_release(&d);
	pricing_free(pricing);
out:
	return ret;
}
