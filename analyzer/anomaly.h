/*
 * anomaly.h - usage that looks wrong, found in one pass over the records: the library behind
 * `tokshim anomalies` (docs/cli.md lists the kinds, their rules and defaults).
 *
 * Kinds: spike (an agent's hour far above its other active hours: median and MAD of log
 * values, the scored hour left out of its own baseline, a floor on the spread so a steady,
 * quiet agent is not flagged for a small rise), error_burst, retry_storm (one request_hash sent
 * again and again with short gaps), duplicate_requests (one request_hash answered more than
 * once: what a response cache would have saved), context_growth (a session whose input tokens
 * rise call after call), cost_outlier (a call far above its agent's usual call),
 * cache_opportunity (one long request prefix sent again and again with no cache reads; see
 * anomaly_feed_prefix) and new_heavy_agent.
 *
 * Memory is bounded: every table is a capped u64map (ANOMALY_MAX_ENTRIES entries each), agents
 * are capped at ANOMALY_MAX_AGENTS, and per-agent call costs are a reservoir sample of
 * ANOMALY_SAMPLE calls (exact below that). What did not fit is counted in `untracked`.
 */
#ifndef TOKSHIM_ANOMALY_H
#define TOKSHIM_ANOMALY_H

#include <stddef.h>
#include <stdint.h>

#include "analyzer/u64map.h"
#include "store/record.h"

#define ANOMALY_MAX_ENTRIES 200000
#define ANOMALY_MAX_AGENTS 4096
#define ANOMALY_SAMPLE 1024
#define ANOMALY_TOP_CALLS 16 /* costliest calls kept per agent for cost_outlier */
#define ANOMALY_MAX_IDS 20   /* record ids listed per flag */

enum anomaly_severity { ANOMALY_INFO = 0, ANOMALY_WARNING = 1, ANOMALY_CRITICAL = 2 };

/* "info", "warning", "critical"; parse returns -1 for anything else. */
const char *anomaly_severity_name(enum anomaly_severity s);
int anomaly_severity_parse(const char *s);

struct anomaly_thresholds {
	double spike_score;         /* robust z (log scale) an hour must reach: 3.5 */
	int64_t spike_min_tokens;   /* an hour below this many tokens is never a spike: 10000 */
	int spike_min_hours;        /* active hours needed in the baseline: 6 */
	int64_t error_window_ns;    /* 5 min */
	int64_t error_min;          /* failures in a window: 5 */
	double error_rate;          /* failed share of the window's calls: 0.5 */
	int64_t retry_min;          /* sends of one body: 5 */
	int64_t retry_gap_ns;       /* longest gap between them: 60 s */
	int64_t dup_min;            /* duplicate answered calls per agent: 3 */
	int64_t growth_calls;       /* calls of rising input in a row: 8 */
	double growth_ratio;        /* last input / first input: 4 */
	double outlier_score;       /* robust z (log scale) of a call's cost: 5 */
	int64_t outlier_min_calls;  /* calls in the agent's baseline: 20 */
	int64_t outlier_min_pusd;   /* a call below this cost is never an outlier: $0.01 */
	int64_t prefix_bytes;       /* cache_opportunity: request prefix hashed: 4096 */
	int64_t prefix_min_calls;   /* calls sharing it, none with cache reads: 3 */
	int64_t new_window_ns;      /* new_heavy_agent: first seen within this of the end: 24 h */
	double heavy_ratio;         /* of the heaviest established agent's spend per window: 0.5 */
};

void anomaly_thresholds_default(struct anomaly_thresholds *t);

/* One flag. ids are record references as (store index, id). */
struct anomaly_flag {
	const char *kind; /* static */
	enum anomaly_severity severity;
	char *agent;   /* owned */
	char *session; /* owned, or NULL */
	int64_t from_ns, to_ns;
	char *evidence; /* owned: the members of a JSON object, "\"tokens\": 123, …" */
	char *summary;  /* owned: one line for people */
	uint32_t ids_db[ANOMALY_MAX_IDS];
	uint64_t ids[ANOMALY_MAX_IDS];
	size_t nids;
};

struct anomaly_agent; /* anomaly.c */

struct anomaly {
	struct anomaly_thresholds th;
	struct u64map agent_idx; /* hash of the name → index + 1 */
	struct anomaly_agent *agents;
	size_t nagents, agents_cap;
	struct u64map hours;    /* (agent, hour) → usage */
	struct u64map errors;   /* (agent, error window) → calls, failures */
	struct u64map requests; /* (agent, request_hash) → sends, bursts */
	struct u64map sessions; /* (store, session) → rising-input run */
	struct u64map prefixes; /* (agent, prefix hash) → calls, cache reads */
	int64_t first_ns, last_ns;
	int64_t records;
	int64_t untracked; /* records left out of some table that was full */
	uint64_t rng;
	struct anomaly_flag *flags;
	size_t nflags, flags_cap;
	int nomem;
};

void anomaly_init(struct anomaly *a, const struct anomaly_thresholds *t);
void anomaly_release(struct anomaly *a);

/* Feeds one record of store db (per store in time order), priced/pusd its cost. Returns 0,
 * or -1 when out of memory (a->nomem is set). */
int anomaly_feed(struct anomaly *a, const struct record *rec, size_t db, int priced,
		 int64_t pusd);

/* cache_opportunity's input: the first bytes of the record's stored request body (the part
 * a provider's prompt cache would match), at most th.prefix_bytes; bodies shorter than that
 * are not fed. The proxy for "a long prompt prefix", since records carry no prefix hash. */
int anomaly_feed_prefix(struct anomaly *a, const struct record *rec, size_t db,
			const char *body, size_t len);

/* Scores everything fed into a->flags (ordered by severity, then start time). Returns 0 or -1
 * (out of memory). */
int anomaly_finish(struct anomaly *a);

struct filter;
struct jw;
struct progress;

/*
 * The cache_opportunity pass, after the records were fed: reads the stored request bodies of
 * the records of f's stores that match f and hold at least prefix_bytes / 4 input tokens (about
 * as many tokens as the prefix), and feeds them to anomaly_feed_prefix. progress, when not
 * NULL, ticks once per record read. Returns 0, or a negative STORE_E* code with a one-line
 * reason in err (STORE_ENOMEM when the tables ran out of memory).
 */
int anomaly_prefix_pass(struct anomaly *a, const struct filter *f, struct progress *progress,
			char *err, size_t errlen);

/*
 * Writes one flag as the object of `anomalies --format json`: kind severity agent session from
 * to summary evidence ids. Record ids are integers with one store and "K#ID" strings when
 * several are read (ndb > 1).
 */
void anomaly_flag_json(struct jw *w, const struct anomaly_flag *fl, size_t ndb);

/* The same flag as a flat object (export_csv_object): the same keys, the evidence object as
 * one JSON string and the ids as one space-separated string ("K#ID" when ndb > 1). */
void anomaly_flag_flat(struct jw *w, const struct anomaly_flag *fl, size_t ndb);

/* A flag's record ids, space-separated ("K#ID" when ndb > 1), as many as fit cap bytes (all of
 * them in ANOMALY_MAX_IDS * (RECORDFMT_REF_MAX + 1) + 1). */
void anomaly_ids_text(char *out, size_t cap, const struct anomaly_flag *fl, size_t ndb);

#endif
