/*
 * report.c - usage summed by any grouping of record fields (see report.h).
 *
 * A report scans every record once and keeps one row per distinct key, found through a small
 * open-addressing hash: there are few agents and models but possibly millions of records, so
 * the per-record cost is one key built on the stack, one hash and a handful of additions per
 * grouping. Keys are encoded, not formatted: a string field is a 16-bit length and its bytes,
 * a day or hour its bucket number, locality one byte; text is made only when printing.
 */
#include "analyzer/report.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/export.h"
#include "analyzer/format.h"
#include "analyzer/progress.h"

#define OTHER_NAME "(other)"
#define UNKNOWN_NAME "(unknown)"
#define NS_PER_HOUR (3600 * 1000000000ll)
#define NS_PER_DAY (24 * NS_PER_HOUR)
/* Largest encoded key: every key a string at RECORD_STR_MAX. */
#define KEY_MAX (REPORT_NKEYS * (2 + RECORD_STR_MAX))
/* The latency histogram: values under 128 µs exact, then 64 buckets per power of two up to
 * 2^38 µs (76 hours); longer latencies land in the last bucket. */
#define LAT_SUB 64
/* The --by table gives each key its own column up to this many keys. */
#define TABLE_KEY_COLS 3
#define LAT_MAX_EXP 38
#define LAT_BUCKETS (2 * LAT_SUB + (LAT_MAX_EXP - 7) * LAT_SUB)

static const char *const key_names[REPORT_NKEYS] = {
	"agent", "agent_type", "tenant", "session", "provider", "model", "locality", "day", "hour",
};
static const char *const key_titles[REPORT_NKEYS] = {
	"AGENT", "TYPE", "TENANT", "SESSION", "PROVIDER", "MODEL", "LOCALITY", "DAY", "HOUR",
};

const char *report_key_name(enum report_key k)
{
	return key_names[k];
}

int report_parse_keys(const char *list, enum report_key *keys, char *err, size_t errlen)
{
	const char *p = list, *end;
	size_t len, i, k;
	int n = 0, found;

	while (n >= 0) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		found = -1;
		for (k = 0; k < REPORT_NKEYS && found < 0; k++)
			if (strlen(key_names[k]) == len && strncmp(key_names[k], p, len) == 0)
				found = (int)k;
		for (i = 0; found >= 0 && i < (size_t)n; i++)
			if (keys[i] == (enum report_key)found)
				found = -1; /* a repeat */
		if (found < 0) {
			snprintf(err, errlen, "%.*s", (int)len, p);
			n = -1;
			break;
		}
		keys[n++] = (enum report_key)found;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return n;
}

static void group_init(struct report_group *g, const enum report_key *keys, size_t n)
{
	memset(g, 0, sizeof *g);
	if (n > 0)
		memcpy(g->keys, keys, n * sizeof *keys);
	g->nkeys = n;
}

void report_init(struct report *r, const struct pricing *p, const enum report_key *keys,
		 size_t n, int64_t window_ns)
{
	static const enum report_key agent = REPORT_AGENT, model = REPORT_MODEL,
				     provider = REPORT_PROVIDER;

	memset(r, 0, sizeof *r);
	r->pricing = p;
	group_init(&r->by_agent, &agent, 1);
	group_init(&r->by_model, &model, 1);
	group_init(&r->by_provider, &provider, 1);
	group_init(&r->by, keys, n);
	fallback_init(&r->fallback, window_ns);
}

void report_row_release(struct report_row *row)
{
	free(row->lat.v);
	free(row->lat.hist);
	row->lat.v = NULL;
	row->lat.hist = NULL;
}

static void group_release(struct report_group *g)
{
	size_t i;

	for (i = 0; i < g->n; i++) {
		free(g->v[i].key);
		report_row_release(&g->v[i].row);
	}
	free(g->v);
	free(g->index);
	g->v = NULL;
	g->index = NULL;
	g->n = g->cap = g->index_cap = 0;
}

void report_release(struct report *r)
{
	size_t i;

	group_release(&r->by_agent);
	group_release(&r->by_model);
	group_release(&r->by_provider);
	group_release(&r->by);
	report_row_release(&r->total);
	report_row_release(&r->local);
	report_row_release(&r->cloud);
	fallback_release(&r->fallback);
	for (i = 0; i < REPORT_PRICE_CACHE; i++)
		free(r->price_cache[i].names);
}

/* Eight bytes a step (a byte-at-a-time FNV-1a here was a sixth of a report's instructions:
 * each record hashes a key per grouping plus its price's names). Each step multiplies by an
 * odd constant and folds the high half down, so every byte reaches the low bits that pick a
 * slot. */
uint64_t report_key_hash(const unsigned char *p, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;

	size_t k;

	for (k = 0; k + 8 < n; k += 8) {
		memcpy(&w, p + k, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	/* The last word overlaps the one before rather than being read byte by byte (n is in
	 * the seed, so a shorter key cannot stand for a longer one's tail). */
	if (n >= 8)
		memcpy(&w, p + n - 8, 8);
	else
		for (w = 0; k < n; k++)
			w = (w << 8) | p[k];
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 29);
}

/* Rebuilds the index at cap slots. Returns 0 or -1. */
static int group_index(struct report_group *g, size_t cap)
{
	uint32_t *index = calloc(cap, sizeof *index);
	size_t i, slot;
	int ret = -1;

	if (index == NULL)
		goto out;
	for (i = 0; i < g->n; i++) {
		slot = report_key_hash(g->v[i].key, g->v[i].keylen) & (cap - 1);
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

/* The row of key p[0..n), created when new. NULL when out of memory. */
static struct report_row *group_find(struct report_group *g, const unsigned char *p, size_t n,
				     int add)
{
	struct report_entry *grown, *e;
	struct report_row *row = NULL;
	size_t slot, cap;
	unsigned char *key;

	/* Keep the index at most half full so probes stay short. */
	if ((g->n + 1) * 2 > g->index_cap &&
	    group_index(g, g->index_cap ? g->index_cap * 2 : 64) != 0)
		goto out;
	slot = report_key_hash(p, n) & (g->index_cap - 1);
	while (g->index[slot] != 0) {
		e = &g->v[g->index[slot] - 1];
		if (e->keylen == n && memcmp(e->key, p, n) == 0) {
			row = &e->row;
			goto out;
		}
		slot = (slot + 1) & (g->index_cap - 1);
	}
	if (!add)
		goto out;
	if (g->n == g->cap) {
		cap = g->cap ? g->cap * 2 : 16;
		grown = realloc(g->v, cap * sizeof *grown);
		if (grown == NULL)
			goto out;
		g->v = grown;
		g->cap = cap;
	}
	key = malloc(n ? n : 1);
	if (key == NULL)
		goto out;
	memcpy(key, p, n);
	e = &g->v[g->n];
	memset(e, 0, sizeof *e);
	e->key = key;
	e->keylen = (uint32_t)n;
	g->index[slot] = (uint32_t)(g->n + 1);
	g->n++;
	row = &e->row;
out:
	return row;
}

/*
 * The row of key p. Past REPORT_MAX_NAMES distinct keys, a key not seen yet goes to the one
 * "(other)" row (the empty key), while the keys seen before keep their rows.
 */
static struct report_row *group_row(struct report_group *g, const unsigned char *p, size_t n)
{
	struct report_row *row = group_find(g, p, n, g->n < REPORT_MAX_NAMES);

	if (row == NULL && g->n >= REPORT_MAX_NAMES)
		row = group_find(g, p, 0, 1);
	return row;
}

static const struct record_str *key_str(const struct record *rec, enum report_key k)
{
	const struct record_str *s = &rec->agent;

	switch (k) {
	case REPORT_AGENT_TYPE:
		s = &rec->agent_type;
		break;
	case REPORT_TENANT:
		s = &rec->tenant;
		break;
	case REPORT_SESSION:
		s = &rec->session;
		break;
	case REPORT_PROVIDER:
		s = rec->provider.n ? &rec->provider : &rec->host;
		break;
	case REPORT_MODEL:
		s = rec->model.n ? &rec->model : &rec->model_requested;
		break;
	default:
		break;
	}
	return s;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Encodes rec's key for g into buf (KEY_MAX bytes); returns its length. */
static size_t key_encode(const struct report_group *g, const struct record *rec,
			 unsigned char *buf)
{
	const struct record_str *s;
	int64_t bucket;
	size_t i, n = 0;
	uint16_t len;

	for (i = 0; i < g->nkeys; i++) {
		switch (g->keys[i]) {
		case REPORT_LOCALITY:
			buf[n++] = rec->flags & RECORD_LOCAL ? 1 : 0;
			break;
		case REPORT_DAY:
		case REPORT_HOUR:
			bucket = floor_div(rec->ts_ns, g->keys[i] == REPORT_DAY ? NS_PER_DAY
										: NS_PER_HOUR);
			memcpy(buf + n, &bucket, sizeof bucket);
			n += sizeof bucket;
			break;
		default:
			s = key_str(rec, g->keys[i]);
			len = (uint16_t)(s->n < RECORD_STR_MAX ? s->n : RECORD_STR_MAX);
			memcpy(buf + n, &len, sizeof len);
			if (len)
				memcpy(buf + n + sizeof len, s->p, len);
			n += sizeof len + len;
			break;
		}
	}
	return n;
}

void report_key_text(const struct report_group *g, const struct report_entry *e, size_t i,
		     char *out, size_t cap)
{
	const unsigned char *p = e->key;
	char time[FMT_TIME_MAX];
	int64_t bucket;
	uint16_t len = 0;
	size_t k, j;

	if (e->keylen == 0) {
		snprintf(out, cap, "%s", OTHER_NAME);
		goto out;
	}
	for (k = 0; k <= i; k++) {
		switch (g->keys[k]) {
		case REPORT_LOCALITY:
			if (k == i)
				snprintf(out, cap, "%s", *p ? "local" : "cloud");
			p += 1;
			break;
		case REPORT_DAY:
		case REPORT_HOUR:
			memcpy(&bucket, p, sizeof bucket);
			if (k == i) {
				fmt_rfc3339(time, bucket * (g->keys[k] == REPORT_DAY ? NS_PER_DAY
										     : NS_PER_HOUR));
				/* "2026-11-25" or "2026-11-25T04:00:00Z" */
				if (g->keys[k] == REPORT_DAY)
					time[10] = '\0';
				else
					snprintf(time + 19, sizeof time - 19, "Z");
				snprintf(out, cap, "%s", time);
			}
			p += sizeof bucket;
			break;
		default:
			memcpy(&len, p, sizeof len);
			if (k == i && len == 0)
				snprintf(out, cap, "%s", UNKNOWN_NAME);
			else if (k == i)
				snprintf(out, cap, "%.*s", (int)len, (const char *)p + sizeof len);
			p += sizeof len + len;
			break;
		}
	}
	/* Control characters become '.': a name from the network must not drive a terminal. */
	for (j = 0; out[j] != '\0'; j++)
		if ((unsigned char)out[j] < 0x20 || out[j] == 0x7f)
			out[j] = '.';
out:
	return;
}

static size_t lat_bucket(uint32_t v)
{
	size_t b;
	int e;

	if (v < 2 * LAT_SUB) {
		b = v;
	} else {
		e = 31 - __builtin_clz(v); /* 2^e <= v, e >= 7 */
		if (e >= LAT_MAX_EXP)
			b = LAT_BUCKETS - 1;
		else
			b = (size_t)(e - 6) * LAT_SUB + (v >> (e - 6));
	}
	return b;
}

/* The middle of bucket b, in µs. */
static int64_t lat_bucket_value(size_t b)
{
	int64_t v = (int64_t)b;
	int e;

	if (b >= 2 * LAT_SUB) {
		e = (int)(b / LAT_SUB) + 5; /* b in [128, 192) is 2^7 */
		v = ((int64_t)(b % LAT_SUB) + LAT_SUB) << (e - 6);
		v += ((int64_t)1 << (e - 6)) / 2;
	}
	return v;
}

void report_lat_add(size_t *nhist, struct report_lat *lat, int64_t us)
{
	uint32_t v = (uint32_t)(us < 0 ? 0 : us > (int64_t)UINT32_MAX ? (int64_t)UINT32_MAX : us);
	uint32_t *grown;
	size_t i;

	if (lat->lost)
		goto out;
	if (lat->hist != NULL) {
		lat->hist[lat_bucket(v)]++;
		goto out;
	}
	if (lat->n == REPORT_LAT_EXACT) {
		if (*nhist < REPORT_MAX_HIST)
			lat->hist = calloc(LAT_BUCKETS, sizeof *lat->hist);
		if (lat->hist == NULL) {
			lat->lost = 1;
			goto release;
		}
		(*nhist)++;
		for (i = 0; i < lat->n; i++)
			lat->hist[lat_bucket(lat->v[i])]++;
		lat->hist[lat_bucket(v)]++;
		goto release;
	}
	/* The exact values grow by doubling up to REPORT_LAT_EXACT. */
	if ((lat->n & (lat->n - 1)) == 0) {
		grown = realloc(lat->v, (lat->n ? lat->n * 2 : 1) * sizeof *grown);
		if (grown == NULL) {
			lat->lost = 1;
			goto release;
		}
		lat->v = grown;
	}
	lat->v[lat->n++] = v;
	goto out;
release:
	free(lat->v);
	lat->v = NULL;
	lat->n = 0;
out:
	return;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

int64_t report_latency_us(const struct report_row *row, int pct)
{
	const struct report_lat *lat = &row->lat;
	int64_t rank, seen = 0, v = -1;
	size_t b;

	if (lat->lost || row->requests == 0)
		goto out;
	/* nearest rank: ceil(pct / 100 × n), at least 1 */
	rank = (pct * row->requests + 99) / 100;
	if (rank < 1)
		rank = 1;
	if (lat->hist == NULL) {
		if (lat->n == row->requests)
			v = lat->v[rank - 1];
		goto out;
	}
	for (b = 0; b < LAT_BUCKETS && v < 0; b++) {
		seen += lat->hist[b];
		if (seen >= rank)
			v = lat_bucket_value(b);
	}
out:
	return v;
}

static void parts_add(struct pricing_parts *sum, const struct pricing_parts *p)
{
	sum->input += p->input;
	sum->output += p->output;
	sum->cache += p->cache;
	sum->other += p->other;
}

/* When a call ended: its start plus its latency, held at INT64_MAX/INT64_MIN when a damaged
 * record's sum does not fit. */
static int64_t report_end_ns(const struct record *rec)
{
	int64_t lat_ns, end;

	if (__builtin_mul_overflow(rec->latency_us, (int64_t)1000, &lat_ns))
		lat_ns = rec->latency_us < 0 ? INT64_MIN : INT64_MAX;
	if (__builtin_add_overflow(rec->ts_ns, lat_ns, &end))
		end = lat_ns < 0 ? INT64_MIN : INT64_MAX;
	return end;
}

void report_row_count(struct report_row *row, const struct record *rec, int failed, int priced,
		      const struct pricing_parts *parts, int64_t pusd)
{
	int64_t total = record_total_tokens(rec), end = report_end_ns(rec);

	if (row->requests == 0 || rec->ts_ns < row->first_ns)
		row->first_ns = rec->ts_ns;
	if (row->requests == 0 || end > row->last_ns)
		row->last_ns = end;
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
		parts_add(&row->cost_parts, parts);
	} else {
		row->unpriced_requests++;
		row->unpriced_tokens += total;
	}
}

void report_row_add(size_t *nhist, struct report_row *row, const struct record *rec, int failed,
		    int priced, const struct pricing_parts *parts, int64_t pusd)
{
	report_row_count(row, rec, failed, priced, parts, pusd);
	report_lat_add(nhist, &row->lat, rec->latency_us);
}

/* Adds src's values to dst: bucketed when dst keeps a histogram or has to start one (taken
 * from the report's REPORT_MAX_HIST like report_lat_add), copied while both are exact. */
static void lat_merge(size_t *nhist, struct report_lat *dst, const struct report_lat *src)
{
	size_t i;

	if (src->hist == NULL) {
		for (i = 0; i < src->n; i++)
			report_lat_add(nhist, dst, src->v[i]);
		goto out;
	}
	if (dst->lost)
		goto out;
	if (dst->hist == NULL) {
		if (*nhist < REPORT_MAX_HIST)
			dst->hist = calloc(LAT_BUCKETS, sizeof *dst->hist);
		if (dst->hist == NULL) {
			dst->lost = 1;
			free(dst->v);
			dst->v = NULL;
			dst->n = 0;
			goto out;
		}
		(*nhist)++;
		for (i = 0; i < dst->n; i++)
			dst->hist[lat_bucket(dst->v[i])]++;
		free(dst->v);
		dst->v = NULL;
		dst->n = 0;
	}
	for (i = 0; i < LAT_BUCKETS; i++)
		dst->hist[i] += src->hist[i];
out:
	return;
}

int report_row_merge(size_t *nhist, struct report_row *dst, const struct report_row *src)
{
	if (src->requests == 0)
		goto out;
	if (dst->requests == 0 || src->first_ns < dst->first_ns)
		dst->first_ns = src->first_ns;
	if (dst->requests == 0 || src->last_ns > dst->last_ns)
		dst->last_ns = src->last_ns;
	dst->requests += src->requests;
	dst->failed += src->failed;
	dst->input += src->input;
	dst->output += src->output;
	dst->cache_read += src->cache_read;
	dst->cache_write += src->cache_write;
	dst->reasoning += src->reasoning;
	dst->total += src->total;
	dst->cost_pusd += src->cost_pusd;
	parts_add(&dst->cost_parts, &src->cost_parts);
	dst->unpriced_requests += src->unpriced_requests;
	dst->unpriced_tokens += src->unpriced_tokens;
	lat_merge(nhist, &dst->lat, &src->lat);
out:
	return dst->lat.lost || src->lat.lost ? -1 : 0;
}

struct report_row *report_row_of(struct report_group *g, const struct record *rec)
{
	unsigned char key[KEY_MAX];

	return group_row(g, key, key_encode(g, rec, key));
}

static int group_add(struct report *r, struct report_group *g, const struct record *rec,
		     int failed, int priced, const struct pricing_parts *parts, int64_t pusd)
{
	struct report_row *row = report_row_of(g, rec);
	int ret = 0;

	if (row)
		report_row_add(&r->nhist, row, rec, failed, priced, parts, pusd);
	else
		ret = -1;
	return ret;
}

/* Does slot s hold the names of rec's price? The names themselves are compared, not only
 * their hash: two triples whose hashes collide must not share a price. */
static int price_slot_holds(const struct report_price_slot *s, const struct record *rec)
{
	const struct record_str *name[3] = { &rec->provider, &rec->model, &rec->model_requested };
	const char *p = s->names;
	int ret = s->names != NULL;
	size_t i;

	for (i = 0; i < 3 && ret; i++) {
		ret = s->len[i] == name[i]->n && (name[i]->n == 0 || memcmp(p, name[i]->p,
									      name[i]->n) == 0);
		p += s->len[i];
	}
	return ret;
}

/* The record's table price, remembered per (provider, model, model_requested): a lookup
 * normalises names and searches the table, several times the rest of a record's cost, and a
 * store holds few distinct triples. A direct-mapped cache keyed by the triple's hash, each
 * slot keeping a copy of its names; a name too long to keep (or no memory) is looked up every
 * time. */
static const struct price *report_price(struct report *r, const struct record *rec)
{
	const struct record_str *name[3] = { &rec->provider, &rec->model, &rec->model_requested };
	struct report_price_slot *s;
	uint64_t h = 0;
	size_t i, len = 0;
	char *names;

	for (i = 0; i < 3; i++) {
		h = h * 31 + report_key_hash((const unsigned char *)name[i]->p, name[i]->n);
		len += name[i]->n;
	}
	s = &r->price_cache[h % REPORT_PRICE_CACHE];
	if (price_slot_holds(s, rec))
		goto out;
	free(s->names);
	s->names = NULL;
	s->price = pricing_record_price(r->pricing, rec);
	names = len <= 3 * RECORD_STR_MAX ? malloc(len + 1) : NULL;
	if (names == NULL)
		goto out;
	s->names = names;
	for (i = 0; i < 3; i++) {
		if (name[i]->n)
			memcpy(names, name[i]->p, name[i]->n);
		names += name[i]->n;
		s->len[i] = name[i]->n;
	}
out:
	return s->price;
}

int report_add(struct report *r, const struct record *rec, size_t db)
{
	int failed = fallback_call_failed(rec);
	struct fallback_verdict v;
	struct pricing_parts parts;
	int priced = pricing_record_parts_at(
		pricing_record_needs_price(rec) ? report_price(r, rec) : NULL, rec, &parts);
	int64_t pusd = priced ? pricing_parts_sum(&parts) : 0;
	int ret = 0;

	report_row_add(&r->nhist, &r->total, rec, failed, priced, &parts, pusd);
	report_row_add(&r->nhist, rec->flags & RECORD_LOCAL ? &r->local : &r->cloud, rec, failed,
		       priced, &parts, pusd);
	ret |= group_add(r, &r->by_agent, rec, failed, priced, &parts, pusd);
	ret |= group_add(r, &r->by_model, rec, failed, priced, &parts, pusd);
	ret |= group_add(r, &r->by_provider, rec, failed, priced, &parts, pusd);
	if (r->by.nkeys > 0)
		ret |= group_add(r, &r->by, rec, failed, priced, &parts, pusd);
	ret |= fallback_feed(&r->fallback, rec, db, priced, pusd, &v);
	if (ret != 0)
		r->nomem = 1;
	return ret ? -1 : 0;
}

struct scanning {
	struct report *r;
	struct progress progress;
};

static int scan_one(const struct record *rec, void *arg)
{
	struct scanning *s = arg;

	progress_tick(&s->progress);
	report_add(s->r, rec, filter_scan_db());
	return 0;
}

/* Grouped by session, day or hour, a report's rows grow with its stores' history, and
 * report_scan_parallel's cells (each of those keys times every agent and model) far more, each
 * larger than a row: those reports are added record by record. */
static int report_by_many(const struct report *r)
{
	size_t i;
	int many = 0;

	for (i = 0; i < r->by.nkeys; i++)
		many |= r->by.keys[i] == REPORT_SESSION || r->by.keys[i] == REPORT_DAY ||
			r->by.keys[i] == REPORT_HOUR;
	return many;
}

int report_scan(struct report *r, const struct filter *f, char *err, size_t errlen)
{
	struct scanning s = { .r = r };
	int ret = report_by_many(r) ? 1 : report_scan_parallel(r, f, 0, 0, err, errlen);

	if (ret != 1)
		goto out;
	progress_init(&s.progress);
	ret = filter_scan(f, 0, scan_one, &s, err, errlen);
	progress_done(&s.progress);
	if (ret == 0 && r->nomem) {
		snprintf(err, errlen, "out of memory");
		ret = -1;
	}
out:
	return ret < 0 ? -1 : 0;
}

/* Nothing priced at all: the cost is unknown. */
static int row_unpriced(const struct report_row *row)
{
	return row->requests > 0 && row->unpriced_requests == row->requests;
}

static int key_cmp(const struct report_entry *x, const struct report_entry *y)
{
	size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
	int c = memcmp(x->key, y->key, n);

	if (c == 0)
		c = (x->keylen > y->keylen) - (x->keylen < y->keylen);
	return c;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct report_entry *x = a, *y = b;
	int c, ux = row_unpriced(&x->row), uy = row_unpriced(&y->row);

	if (ux != uy)
		c = ux - uy;
	else if (x->row.cost_pusd != y->row.cost_pusd)
		c = x->row.cost_pusd > y->row.cost_pusd ? -1 : 1;
	else if (x->row.total != y->row.total)
		c = x->row.total > y->row.total ? -1 : 1;
	else
		c = key_cmp(x, y);
	return c;
}

static void lat_sort(struct report_lat *lat)
{
	if (lat->hist == NULL && lat->n > 1)
		qsort(lat->v, lat->n, sizeof *lat->v, u32_cmp);
}

static void group_sort(struct report_group *g)
{
	size_t i;

	if (g->n > 1)
		qsort(g->v, g->n, sizeof *g->v, entry_cmp);
	for (i = 0; i < g->n; i++)
		lat_sort(&g->v[i].row.lat);
	/* The index points at positions that just moved: rebuild it. */
	if (g->index_cap && group_index(g, g->index_cap) != 0)
		memset(g->index, 0, g->index_cap * sizeof *g->index);
}

void report_sort(struct report *r)
{
	group_sort(&r->by_agent);
	group_sort(&r->by_model);
	group_sort(&r->by_provider);
	group_sort(&r->by);
	lat_sort(&r->total.lat);
	lat_sort(&r->local.lat);
	lat_sort(&r->cloud.lat);
	fallback_sort(&r->fallback);
}

/* A cost in JSON: null when nothing of the row is priced. */
static void write_cost(struct jw *w, const struct report_row *row, int64_t pusd)
{
	if (row_unpriced(row))
		jw_null(w);
	else
		jw_pusd(w, pusd);
}

void report_json_ratio(struct jw *w, int64_t num, int64_t den)
{
	char text[FMT_PUSD_MAX];
	__int128 q;

	if (den <= 0) {
		jw_null(w);
	} else {
		q = ((__int128)num * 20000 / den + 1) / 2; /* rounded half up, in 1/10000 */
		fmt_pusd(text, (int64_t)(q * 100000000));
		jw_number_text(w, text);
	}
}

static void write_latency(struct jw *w, const struct report_row *row, int pct)
{
	char text[FMT_MS_MAX];
	int64_t us = report_latency_us(row, pct);

	if (us < 0) {
		jw_null(w);
	} else {
		fmt_ms(text, us);
		jw_number_text(w, text);
	}
}

static void write_time(struct jw *w, const struct report_row *row, int64_t ns)
{
	char text[FMT_TIME_MAX];

	if (row->requests == 0) {
		jw_null(w);
	} else {
		fmt_rfc3339(text, ns);
		jw_str(w, text, strlen(text));
	}
}

/* The members of a row (inside an object the caller opened), with the report JSON's
 * camelCase names, or the CSV's snake_case ones when snake is set. */
static void write_row_members(struct jw *w, const struct report_row *row, int snake)
{
	int64_t counts[] = { row->requests,    row->failed,      row->input,
			     row->output,      row->cache_read,  row->cache_write,
			     row->reasoning,   row->total };
	static const char *const count_names[][2] = {
		{ "requests", "requests" },
		{ "failedRequests", "failed_requests" },
		{ "inputTokens", "input_tokens" },
		{ "outputTokens", "output_tokens" },
		{ "cacheReadTokens", "cache_read_tokens" },
		{ "cacheWriteTokens", "cache_write_tokens" },
		{ "reasoningTokens", "reasoning_tokens" },
		{ "totalTokens", "total_tokens" },
	};
	int64_t costs[] = { row->cost_pusd, row->cost_parts.input, row->cost_parts.output,
			    row->cost_parts.cache, row->cost_parts.other };
	static const char *const cost_names[][2] = {
		{ "cost", "cost_usd" },
		{ "costInput", "cost_input_usd" },
		{ "costOutput", "cost_output_usd" },
		{ "costCache", "cost_cache_usd" },
		{ "costOther", "cost_other_usd" },
	};
	size_t i;

	for (i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		jw_key(w, count_names[i][snake]);
		jw_int(w, counts[i]);
	}
	for (i = 0; i < sizeof costs / sizeof costs[0]; i++) {
		jw_key(w, cost_names[i][snake]);
		write_cost(w, row, costs[i]);
	}
	jw_key(w, snake ? "unpriced_tokens" : "unpricedTokens");
	jw_int(w, row->unpriced_tokens);
	if (!snake) {
		jw_key(w, "unpricedRequests");
		jw_int(w, row->unpriced_requests);
	}
	jw_key(w, snake ? "cache_hit_rate" : "cacheHitRate");
	report_json_ratio(w, row->cache_read, row->input);
	jw_key(w, snake ? "latency_p50_ms" : "latencyP50Ms");
	write_latency(w, row, 50);
	jw_key(w, snake ? "latency_p95_ms" : "latencyP95Ms");
	write_latency(w, row, 95);
	jw_key(w, snake ? "first_seen" : "firstSeen");
	write_time(w, row, row->first_ns);
	jw_key(w, snake ? "last_seen" : "lastSeen");
	write_time(w, row, row->last_ns);
}

static void write_row(struct jw *w, const struct report_row *row)
{
	jw_object_begin(w);
	write_row_members(w, row, 0);
	jw_object_end(w);
}

/* byAgent, byModel, byProvider: an object keyed by the one key's text. */
static void write_named_group(struct jw *w, const char *name, const struct report_group *g)
{
	char text[RECORD_STR_MAX + 16];
	size_t i;

	jw_key(w, name);
	jw_object_begin(w);
	for (i = 0; i < g->n; i++) {
		report_key_text(g, &g->v[i], 0, text, sizeof text);
		jw_key(w, text);
		write_row(w, &g->v[i].row);
	}
	jw_object_end(w);
}

/* The rows of --by printed: all of them, or the first r->top. */
static size_t shown_rows(const struct report *r)
{
	return r->top > 0 && r->top < r->by.n ? r->top : r->by.n;
}

static void write_key_object(struct jw *w, const struct report_group *g,
			     const struct report_entry *e)
{
	char text[RECORD_STR_MAX + 16];
	size_t k;

	jw_object_begin(w);
	for (k = 0; k < g->nkeys; k++) {
		report_key_text(g, e, k, text, sizeof text);
		jw_key(w, key_names[g->keys[k]]);
		jw_str(w, text, strlen(text));
	}
	jw_object_end(w);
}

static void write_fallback_usage(struct jw *w, const struct report *r)
{
	const struct fallback *fb = &r->fallback;

	jw_key(w, "fallbackUsage");
	jw_object_begin(w);
	jw_key(w, "totalFallbacks");
	jw_int(w, fb->fallbacks);
	jw_key(w, "fallbackTokens");
	jw_int(w, fb->fallback_tokens);
	jw_key(w, "fallbackCost");
	jw_pusd(w, fb->fallback_cost_pusd);
	jw_key(w, "routed");
	jw_int(w, fb->routed);
	jw_key(w, "afterFailure");
	jw_int(w, fb->after_failure);
	jw_key(w, "retries");
	jw_int(w, fb->retries);
	jw_key(w, "shareOfCalls");
	report_json_ratio(w, fb->fallbacks, fb->calls);
	jw_key(w, "shareOfCost");
	report_json_ratio(w, fb->fallback_cost_pusd, fb->cost_pusd);
	jw_object_end(w);
}

void report_write_json(const struct report *r, FILE *f, void (*extra)(struct jw *w, void *arg),
		       void *arg)
{
	size_t i, n = shown_rows(r);
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
	write_cost(&w, &r->total, r->total.cost_pusd);
	jw_key(&w, "unpricedTokens");
	jw_int(&w, r->total.unpriced_tokens);
	jw_key(&w, "unpricedRequests");
	jw_int(&w, r->total.unpriced_requests);
	jw_key(&w, "total");
	write_row(&w, &r->total);
	write_named_group(&w, "byAgent", &r->by_agent);
	write_named_group(&w, "byModel", &r->by_model);
	write_named_group(&w, "byProvider", &r->by_provider);
	write_fallback_usage(&w, r);
	jw_key(&w, "locality");
	jw_object_begin(&w);
	jw_key(&w, "local");
	write_row(&w, &r->local);
	jw_key(&w, "cloud");
	write_row(&w, &r->cloud);
	jw_object_end(&w);
	jw_key(&w, "by");
	jw_array_begin(&w);
	for (i = 0; i < r->by.nkeys; i++)
		jw_str(&w, key_names[r->by.keys[i]], strlen(key_names[r->by.keys[i]]));
	jw_array_end(&w);
	jw_key(&w, "groupCount");
	jw_int(&w, (int64_t)r->by.n);
	jw_key(&w, "groups");
	jw_array_begin(&w);
	for (i = 0; i < n; i++) {
		jw_object_begin(&w);
		jw_key(&w, "key");
		write_key_object(&w, &r->by, &r->by.v[i]);
		write_row_members(&w, &r->by.v[i].row, 0);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	if (extra)
		extra(&w, arg);
	jw_object_end(&w);
	fputc('\n', f);
}

void report_cost_cell(char *out, const struct report_row *row)
{
	char usd[FMT_HUMAN_MAX];

	if (row_unpriced(row)) {
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
	report_cost_cell(cost, row);
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

static void write_title(FILE *f, const char *title, int colour)
{
	fprintf(f, "\n%s%s%s\n", colour ? "\033[1m" : "", title, colour ? "\033[0m" : "");
}

static void write_group_table(FILE *f, const char *title, const char *first,
			      const struct report_group *g, int colour)
{
	struct table_col cols[] = {
		{ first, 0, 1, 8 },       { "REQS", 1, 0, 0 },   { "FAILED", 1, 0, 0 },
		{ "INPUT", 1, 0, 0 },     { "OUTPUT", 1, 0, 0 }, { "CACHED", 1, 0, 0 },
		{ "TOTAL", 1, 0, 0 },     { "COST", 1, 0, 0 },
	};
	char text[RECORD_STR_MAX + 16];
	struct table t;
	size_t i;

	write_title(f, title, colour);
	table_init(&t, cols, sizeof cols / sizeof cols[0], 1);
	for (i = 0; i < g->n; i++) {
		report_key_text(g, &g->v[i], 0, text, sizeof text);
		table_row_cells(&t, text, &g->v[i].row);
	}
	table_print(&t, f, 100, colour ? "\033[2m" : NULL, colour ? "\033[0m" : NULL);
	table_release(&t);
}

/* Milliseconds for people: "850ms", "1.2s", "-" when unknown. */
static void latency_cell(char out[FMT_HUMAN_MAX], const struct report_row *row, int pct)
{
	int64_t us = report_latency_us(row, pct);

	if (us < 0)
		snprintf(out, FMT_HUMAN_MAX, "-");
	else if (us < 1000000)
		snprintf(out, FMT_HUMAN_MAX, "%" PRId64 "ms", (us + 500) / 1000);
	else
		snprintf(out, FMT_HUMAN_MAX, "%.1fs", (double)us / 1e6);
}

/* The --by table: the keys, then requests, failures, tokens, cache hit rate, latency, cost. */
static void write_by_table(const struct report *r, FILE *f, int colour)
{
	static const struct table_col stats[] = {
		{ "REQS", 1, 0, 0 },  { "FAILED", 1, 0, 0 }, { "INPUT", 1, 0, 0 },
		{ "OUTPUT", 1, 0, 0 }, { "HIT", 1, 0, 0 },   { "P50", 1, 0, 0 },
		{ "P95", 1, 0, 0 },   { "COST", 1, 0, 0 },
	};
	char keys[REPORT_NKEYS][RECORD_STR_MAX + 16], one[RECORD_STR_MAX + 16];
	char num[8][FMT_HUMAN_MAX + 2];
	const char *cells[TABLE_MAX_COLS];
	struct table_col cols[TABLE_MAX_COLS];
	const struct report_group *g = &r->by;
	const struct report_row *row;
	size_t i, k, c, len, n = shown_rows(r), nk = g->nkeys;
	struct table t;

	/* Past three keys the columns no longer fit 100 cells: the keys share one column,
	 * "agent/model/…", cut with "…" as needed. */
	if (nk > TABLE_KEY_COLS) {
		nk = 1;
		cols[0] = (struct table_col){ "GROUP", 0, 1, 12 };
	} else {
		for (k = 0; k < nk; k++)
			cols[k] = (struct table_col){ key_titles[g->keys[k]], 0, 1, 6 };
	}
	memcpy(cols + nk, stats, sizeof stats);
	table_init(&t, cols, nk + 8, 1);
	for (i = 0; i < n; i++) {
		row = &g->v[i].row;
		for (k = 0; k < nk && nk == g->nkeys; k++) {
			report_key_text(g, &g->v[i], k, keys[k], sizeof keys[k]);
			cells[k] = keys[k];
		}
		for (k = 0, len = 0; nk < g->nkeys && k < g->nkeys; k++) {
			report_key_text(g, &g->v[i], k, one, sizeof one);
			len += (size_t)snprintf(keys[0] + len, sizeof keys[0] - len, "%s%s",
						k ? "/" : "", one);
			len = len < sizeof keys[0] ? len : sizeof keys[0] - 1;
			cells[0] = keys[0];
		}
		fmt_count_human(num[0], row->requests);
		fmt_count_human(num[1], row->failed);
		fmt_count_human(num[2], row->input);
		fmt_count_human(num[3], row->output);
		if (row->input > 0)
			snprintf(num[4], sizeof num[4], "%" PRId64 "%%",
				 (row->cache_read * 100 + row->input / 2) / row->input);
		else
			snprintf(num[4], sizeof num[4], "-");
		latency_cell(num[5], row, 50);
		latency_cell(num[6], row, 95);
		report_cost_cell(num[7], row);
		for (c = 0; c < 8; c++)
			cells[nk + c] = num[c];
		table_add(&t, cells);
	}
	fputc('\n', f);
	table_print(&t, f, 100, colour ? "\033[1m" : NULL, colour ? "\033[0m" : NULL);
	table_release(&t);
	if (n < g->n)
		fprintf(f, "(%zu more row%s: --top %zu shows %zu)\n", g->n - n,
			g->n - n == 1 ? "" : "s", r->top, n);
}

void report_write_summary(const struct report *r, FILE *f, int colour)
{
	char req[FMT_HUMAN_MAX], tok[FMT_HUMAN_MAX], unpriced[FMT_HUMAN_MAX];
	char cost[FMT_HUMAN_MAX + 2];

	fmt_count_human(req, r->total.requests);
	fmt_count_human(tok, r->total.total);
	report_cost_cell(cost, &r->total);
	fprintf(f, "%s%s request%s, %s tokens, %s%s", colour ? "\033[1m" : "", req,
		r->total.requests == 1 ? "" : "s", tok, cost, colour ? "\033[0m" : "");
	if (r->total.failed)
		fprintf(f, " (%" PRId64 " failed)", r->total.failed);
	fputc('\n', f);
	if (r->total.unpriced_tokens) {
		fmt_count_human(unpriced, r->total.unpriced_tokens);
		fprintf(f,
			"%s tokens in %" PRId64 " request%s are unpriced (no price for their "
			"model) and not in the cost%s\n",
			unpriced, r->total.unpriced_requests,
			r->total.unpriced_requests == 1 ? "" : "s",
			r->total.unpriced_requests < r->total.requests ? " (marked *)" : "");
	}
}

void report_write_table(const struct report *r, FILE *f, int colour)
{
	static const enum report_key locality = REPORT_LOCALITY;
	struct report_group loc;
	struct report_entry rows[2];
	unsigned char keys[2] = { 0, 1 };

	report_write_summary(r, f, colour);
	if (r->total.requests == 0)
		goto out;
	if (r->by.nkeys > 0) {
		write_by_table(r, f, colour);
		goto out;
	}
	write_group_table(f, "By agent", "AGENT", &r->by_agent, colour);
	write_group_table(f, "By model", "MODEL", &r->by_model, colour);
	write_group_table(f, "By provider", "PROVIDER", &r->by_provider, colour);
	group_init(&loc, &locality, 1);
	memset(rows, 0, sizeof rows);
	rows[0].key = &keys[0];
	rows[0].keylen = 1;
	rows[0].row = r->cloud;
	rows[1].key = &keys[1];
	rows[1].keylen = 1;
	rows[1].row = r->local;
	loc.v = rows;
	loc.n = 2;
	write_group_table(f, "By locality", "LOCALITY", &loc, colour);
out:
	return;
}

struct flat_row {
	const struct report_group *g;
	const struct report_entry *e; /* NULL for the header's model */
	const struct report_row *row;
};

/* One --by row (or the header's model) as a flat JSON object for export_csv_object. */
static void write_flat_row(struct jw *w, const void *arg)
{
	const struct flat_row *fr = arg;
	char text[RECORD_STR_MAX + 16];
	size_t k;

	jw_object_begin(w);
	for (k = 0; k < fr->g->nkeys; k++) {
		jw_key(w, key_names[fr->g->keys[k]]);
		if (fr->e != NULL)
			report_key_text(fr->g, fr->e, k, text, sizeof text);
		else
			text[0] = '\0';
		jw_str(w, text, strlen(text));
	}
	write_row_members(w, fr->row, 1);
	jw_object_end(w);
}

/* Writes one flat row through export_csv_object. Returns 0 or -1. */
static int csv_row(FILE *f, const struct report_group *g, const struct report_entry *e,
		   const struct report_row *row, int header)
{
	struct flat_row fr = { g, e, row };

	return export_csv_object(f, write_flat_row, &fr, header);
}

void report_csv_members(struct jw *w, const struct report_row *row)
{
	write_row_members(w, row, 1);
}

int report_write_csv(const struct report *r, FILE *f)
{
	size_t i, n = shown_rows(r);
	int ret = csv_row(f, &r->by, NULL, &r->total, 1);

	for (i = 0; i < n && ret == 0; i++)
		ret = csv_row(f, &r->by, &r->by.v[i], &r->by.v[i].row, 0);
	return ret;
}
