/*
 * fallback.h - which calls were fallbacks, and of what: the one detector behind `tokshim
 * fallbacks`, report's fallbackUsage and records' fallback_of.
 *
 * A call is a fallback when
 *   (a) routed: it answered (2xx/3xx, no error) with a model that is not the one it asked for
 *       once both names are normalised (pricing_normalise: gpt-4o and gpt-4o-2024-08-06 are
 *       one model), as a router such as OpenRouter does when it switches; its fallback_of is
 *       its own id, since no other call was replaced;
 *   (b) after a failure: the previous call of the same session (same store) failed (an error,
 *       no response, a status of 400 or more, or a stream cut short) and this call started at
 *       most window_ns after that call ended, asking for a different model (normalised) or
 *       going to a different provider; its fallback_of is the failed call's id.
 * The same situation with the same model and provider is a retry, counted apart. A call that is
 * both (a) and (b) counts once, as (b).
 *
 * Records must be fed per store in time order (store_scan's order). Memory: only sessions
 * whose last call failed are kept (a failure waits for its next call), at most
 * FALLBACK_MAX_PENDING; when full, failures older than the window are dropped first, and past
 * that new failures are not followed (counted in untracked).
 */
#ifndef TOKSHIM_FALLBACK_H
#define TOKSHIM_FALLBACK_H

#include <stddef.h>
#include <stdint.h>

#include "analyzer/u64map.h"
#include "store/record.h"

#define FALLBACK_DEFAULT_WINDOW_NS (60 * 1000000000ll)
#define FALLBACK_MAX_PENDING 1000000
#define FALLBACK_MAX_NAMES 4096 /* distinct (provider, model) names; past it "(other)" */
#define FALLBACK_MAX_RAW (4 * FALLBACK_MAX_NAMES) /* spellings remembered (name_raw) */
#define FALLBACK_MAX_PAIRS 1024 /* distinct primary → fallback pairs; past it one "(other)" */
#define FALLBACK_MAX_IDS 100    /* record ids listed per pair */
#define FALLBACK_ROUTED_CACHE 1024 /* remembered (asked, answered) model pairs */

enum fallback_kind {
	FALLBACK_NONE = 0,
	FALLBACK_ROUTED = 1,        /* (a) */
	FALLBACK_AFTER_FAILURE = 2, /* (b) */
	FALLBACK_RETRY = 3,         /* a failure followed by the same model and provider */
};

/* What one call was. of: the replaced call's id (its own for ROUTED), the retried call's id for
 * RETRY, 0 for NONE. primary, fallback: for ROUTED and AFTER_FAILURE, the pair's names
 * (indices into fb->names, valid as long as fb), else UINT32_MAX; UINT32_MAX too when memory
 * ran short. */
struct fallback_verdict {
	enum fallback_kind kind;
	uint64_t of;
	uint32_t primary, fallback;
};

/* A record reference: its store's index among the --db options and its id. */
struct fallback_ref {
	uint32_t db;
	uint64_t id;
};

struct fallback_name {
	char *provider, *model; /* owned; model normalised */
};

struct fallback_pair {
	uint32_t primary, fallback; /* indices into names */
	int64_t count, routed, tokens, cost_pusd, unpriced;
	struct fallback_ref ids[FALLBACK_MAX_IDS];
	size_t nids;
};

/* A failure waiting for its session's next call (fb->pending's values). */
struct fallback_pending {
	int64_t end_ns; /* when the failed call ended */
	uint64_t id;
	uint32_t name; /* what it asked for: index into fb->names */
};

struct fallback {
	int64_t window_ns;
	struct u64map pending;  /* session key → struct fallback_pending */
	struct u64map name_idx; /* hash of (provider, model) → uint32_t index + 1 */
	struct u64map name_raw; /* hash of (provider, model) as recorded → the same */
	struct fallback_name *names;
	size_t nnames, names_cap;
	struct fallback_pair *pairs;
	size_t npairs, pairs_cap;
	/* Sums over every call fed. */
	int64_t calls, cost_pusd;
	int64_t fallbacks, routed, after_failure, retries;
	int64_t fallback_tokens, fallback_cost_pusd, fallback_unpriced;
	int64_t untracked; /* failures not followed: the pending table was full */
	uint64_t routed_key[FALLBACK_ROUTED_CACHE]; /* hash of (asked, answered) | 1, 0: empty */
	uint8_t routed_verdict[FALLBACK_ROUTED_CACHE];
	int nomem;
};

void fallback_init(struct fallback *fb, int64_t window_ns);
void fallback_release(struct fallback *fb);

/*
 * Feeds one record of store db; priced and pusd are its cost (pricing_record_cost). Sets *v.
 * Returns 0, or -1 when out of memory (the call is still classified; a pair may be missing).
 */
int fallback_feed(struct fallback *fb, const struct record *rec, size_t db, int priced,
		  int64_t pusd, struct fallback_verdict *v);

/* A record's fallback_of as listings print it: v->of for a fallback (ROUTED: the call's own
 * id), 0 (null) for a retry or an ordinary call. */
uint64_t fallback_of(const struct fallback_verdict *v);

/* The key a call's session is followed under: its session name (else its process id) and its
 * store. A session with a failure waiting is in fb->pending under this key. */
uint64_t fallback_session_key(const struct record *rec, size_t db);

/* Orders pairs by count, then tokens (descending), then names. */
void fallback_sort(struct fallback *fb);

/* Did the call fail: an error, no response (status 0), a status of 400 or more, or a response
 * cut short? The one definition every analysis uses. */
int fallback_call_failed(const struct record *rec);

#endif
