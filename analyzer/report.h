/*
 * report.h - usage summed by any grouping of agent, agent_type, tenant, session, provider,
 * model, locality, day and hour, and its renderings: the JSON that downstream code consumes
 * (DESIGN.md: totalTokens, totalCost, byAgent, byModel, byProvider, fallbackUsage, locality,
 * plus the grouped rows of `--by`), a table for people and CSV for spreadsheets. The same
 * document is what `report`, `sessions` and `locality` print as JSON (docs/cli.md).
 *
 * Costs are summed as integer pico-USD. A record whose model has no price adds its tokens to
 * unpricedTokens and nothing to the cost: an unknown price is never counted as $0, and a group
 * with no priced request at all shows its cost as null ("unpriced" in the table).
 *
 * Latency percentiles are nearest-rank (the p-th percentile of n values is the value at rank
 * ceil(p/100 × n) in ascending order). They are exact while a row has at most
 * REPORT_LAT_EXACT calls; past that, a row keeps a log-linear histogram (64 buckets per power
 * of two of microseconds, values under 128 µs exact) and reports the middle of the bucket
 * holding that rank, within 1% of the exact value. At most REPORT_MAX_HIST rows keep a
 * histogram; rows past it report no percentiles (null) rather than grow memory without bound.
 */
#ifndef TOKSHIM_REPORT_H
#define TOKSHIM_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "analyzer/fallback.h"
#include "analyzer/filter.h"
#include "providers/pricing.h"
#include "store/record.h"

/* Distinct keys kept per grouping; past it, records are summed under "(other)" so a store
 * with a runaway number of agent names cannot exhaust memory. */
#define REPORT_MAX_NAMES 100000
#define REPORT_LAT_EXACT 128
#define REPORT_MAX_HIST 2048
#define REPORT_PRICE_CACHE 1024

enum report_key {
	REPORT_AGENT,
	REPORT_AGENT_TYPE,
	REPORT_TENANT,
	REPORT_SESSION,
	REPORT_PROVIDER, /* the provider, else the host */
	REPORT_MODEL,    /* the model that answered, else the one asked for */
	REPORT_LOCALITY,
	REPORT_DAY,  /* UTC day of the call's start: "2026-11-25" */
	REPORT_HOUR, /* UTC hour: "2026-11-25T04:00:00Z" */
	REPORT_NKEYS
};

/* The key's name as --by and the JSON spell it ("agent_type"), static. */
const char *report_key_name(enum report_key k);

/* Parses "agent,model" into keys[] (at most REPORT_NKEYS, no repeats). Returns the number of
 * keys, or -1 with the offending word (NUL-terminated, cut to errlen) in err. */
int report_parse_keys(const char *list, enum report_key *keys, char *err, size_t errlen);

struct report_lat {
	uint32_t *v;    /* exact values (µs, capped at UINT32_MAX) while hist is NULL */
	uint32_t *hist; /* bucket counts, past REPORT_LAT_EXACT values */
	uint32_t n;     /* values in v */
	int lost;       /* no histogram could be had: no percentiles */
};

struct report_row {
	int64_t requests;
	int64_t failed; /* fallback_call_failed */
	int64_t input, output, cache_read, cache_write, reasoning, total;
	int64_t cost_pusd;                       /* priced records only */
	struct pricing_parts cost_parts;         /* its split; the parts sum to cost_pusd */
	int64_t unpriced_requests;               /* records whose model has no price */
	int64_t unpriced_tokens;
	int64_t first_ns, last_ns; /* first call's start, last call's end (start + latency) */
	struct report_lat lat;
};

struct report_entry {
	unsigned char *key; /* owned: the encoded key (report.c); length 0 for "(other)" */
	uint32_t keylen;
	struct report_row row;
};

struct report_group {
	enum report_key keys[REPORT_NKEYS];
	size_t nkeys;
	struct report_entry *v;
	size_t n, cap;
	uint32_t *index; /* open addressing: entry index + 1, 0 = empty */
	size_t index_cap;
};

/* One remembered price (report.c): the names it was looked up for, kept to compare, and the
 * price (NULL: unpriced). names is owned, NULL for an empty slot. */
struct report_price_slot {
	char *names; /* provider, model, model_requested, one after the other */
	uint32_t len[3];
	const struct price *price;
};

struct report {
	struct report_row total, local, cloud;
	struct report_group by_agent, by_model, by_provider;
	struct report_group by; /* --by: nkeys 0 when not asked for */
	struct fallback fallback;
	const struct pricing *pricing;
	size_t nhist;  /* histograms kept, at most REPORT_MAX_HIST */
	size_t top;    /* rows of `by` to print; 0 for all */
	struct report_price_slot price_cache[REPORT_PRICE_CACHE];
	int nomem;
};

/* Sets r up to sum with prices p (not copied: it must outlive r's use) grouped by keys[0..n)
 * (n may be 0), fallbacks detected with window_ns. */
void report_init(struct report *r, const struct pricing *p, const enum report_key *keys,
		 size_t n, int64_t window_ns);
void report_release(struct report *r);

/*
 * Adds one record of store db (records must come per store in time order, for the fallback
 * detector). Returns 0, or -1 when out of memory (the record is then counted in the totals but
 * not in every group; r->nomem is set).
 */
int report_add(struct report *r, const struct record *rec, size_t db);

/*
 * Scans f's stores into r, with a progress line on stderr when it runs longer than a second
 * there: report_scan_parallel with one thread per core (at most REPORT_SCAN_THREADS), and
 * where that cannot give exactly what report_add would (see report_scan.c), or for a report
 * by session, day or hour (see report.c), report_add for each matching record. Returns 0,
 * or -1 with a reason in err.
 */
int report_scan(struct report *r, const struct filter *f, char *err, size_t errlen);

/*
 * The parallel scan behind report_scan (report_scan.c), for tests that compare it with
 * report_add record by record: each store's time range is cut into nchunks slices read by
 * nthreads threads (each its own read transaction), summed per distinct combination of the
 * report's keys, then rolled up into r, fallbacks detected in time order. r must be freshly
 * report_init'ed. Returns 0 when r holds the report, 1 when this store needs the
 * record-by-record pass for an exact result (r is then as report_init left it), or -1 with a
 * reason in err.
 */
#define REPORT_SCAN_THREADS 4
int report_scan_parallel(struct report *r, const struct filter *f, size_t nthreads,
			 size_t nchunks, char *err, size_t errlen);

/* Building blocks of report_scan.c. */

/* report.c's hash of a key's bytes. */
uint64_t report_key_hash(const unsigned char *p, size_t n);

/* Adds one call's latency to lat; a histogram is started past REPORT_LAT_EXACT values only
 * while *nhist < REPORT_MAX_HIST (*nhist then grows by one), else lat loses its percentiles. */
void report_lat_add(size_t *nhist, struct report_lat *lat, int64_t us);

/* Adds one record to row: failed is fallback_call_failed(rec), priced/parts/pusd its cost. */
void report_row_add(size_t *nhist, struct report_row *row, const struct record *rec, int failed,
		    int priced, const struct pricing_parts *parts, int64_t pusd);
/* report_row_add without the latency, which the caller adds (report_lat_add). */
void report_row_count(struct report_row *row, const struct record *rec, int failed, int priced,
		      const struct pricing_parts *parts, int64_t pusd);

/* Adds row src to dst, as if each of src's records had been added to dst (their latencies as
 * report_lat_add would). Returns 0, or -1 when dst or src has lost its percentiles. */
int report_row_merge(size_t *nhist, struct report_row *dst, const struct report_row *src);

/* The row of g for rec's key, created when new (rec needs only the fields g's keys read).
 * NULL when out of memory. Valid until the next call on g or report_sort. */
struct report_row *report_row_of(struct report_group *g, const struct record *rec);

/* Frees a row's latency values (the row itself belongs to its caller). */
void report_row_release(struct report_row *row);

/* Orders every group by cost (groups with nothing priced last), then tokens (both
 * descending), then key; sorts latency samples. Call once, after the last report_add. */
void report_sort(struct report *r);

/* A row's latency percentile (pct in 1..100) in µs, or -1 when it has none. */
int64_t report_latency_us(const struct report_row *row, int pct);

/* The display text of key i of entry e (group g) into out (NUL-terminated, cut to cap). */
void report_key_text(const struct report_group *g, const struct report_entry *e, size_t i,
		     char *out, size_t cap);

/* The report as pretty-printed JSON (the one schema of docs/cli.md). extra, when not NULL, is
 * called inside the top-level object, after the standard keys, to add a command's own. */
struct jw;
void report_write_json(const struct report *r, FILE *f, void (*extra)(struct jw *w, void *arg),
		       void *arg);

/* num / den as a JSON number: an exact decimal of at most 4 places (rounded half up), or null
 * when den is 0. */
void report_json_ratio(struct jw *w, int64_t num, int64_t den);

/* A table's cost cell (FMT_HUMAN_MAX + 2 bytes): "unpriced" when nothing of the row is priced,
 * "$0.0074*" when part of it is. */
void report_cost_cell(char *out, const struct report_row *row);

/* The report for people: totals, then the --by table when keys were given, else a table per
 * agent, model, provider and locality; bold titles when colour is set. */
void report_write_table(const struct report *r, FILE *f, int colour);

/* The --by rows as CSV (RFC 4180, CRLF): a header line, then one line per row. */
int report_write_csv(const struct report *r, FILE *f);

/* A row's CSV columns (requests … last_seen, as report_write_csv names them) as members of
 * the flat object being written on w, for a command's own CSV lines (export_csv_object). */
void report_csv_members(struct jw *w, const struct report_row *row);

/* The title line of every report: "6 requests, 5.4k tokens, $0.02* (1 failed)" and the
 * unpriced note. */
void report_write_summary(const struct report *r, FILE *f, int colour);

#endif
