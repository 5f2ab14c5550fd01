/*
 * filter.h - the common filters of every reading command, and reading the stores they name.
 *
 * `records`, `report`, `show` and every later reading command accept the same options:
 *   --db PATH (repeatable)  --since T  --until T  --agent A  --tenant T  --provider P
 *   --model M  --session S  --locality local|cloud
 * They are parsed here, matched here, and the stores are opened and scanned here, so that a
 * filter means the same thing in every command. String filters are shell globs (fnmatch) and
 * may be repeated: a record matches when any of the values of an option matches. --model
 * matches either the model the response named or the one the request asked for.
 */
#ifndef TOKSHIM_FILTER_H
#define TOKSHIM_FILTER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define FILTER_MAX_DB 32
#define FILTER_MAX_VALUES 16

/* The usage text of the filter options, for each command's --help. */
extern const char filter_help[];

struct filter_values {
	const char *v[FILTER_MAX_VALUES]; /* argv strings, not copied */
	size_t n;
};

struct filter {
	const char *db[FILTER_MAX_DB]; /* argv strings, or default_db */
	size_t ndb;
	int64_t since_ns; /* records with since_ns <= ts_ns < until_ns */
	int64_t until_ns;
	struct filter_values agent, tenant, provider, model, session;
	int locality; /* -1: any, 0: cloud, 1: local */
	char default_db[PATH_MAX];
};

/* Sets f to match everything in the default store. */
void filter_init(struct filter *f);

/*
 * Parses the filter option at argv[*i] ("--agent x" or "--agent=x"). Returns 1 when it was
 * one (and advances *i past its value), 0 when argv[*i] is not a filter option, and -1 for a
 * bad value or a missing one, with a one-line reason in err. now_ns anchors relative times.
 */
int filter_parse_arg(struct filter *f, int argc, char **argv, int *i, int64_t now_ns, char *err,
		     size_t errlen);

/*
 * Parses a time for --since/--until: RFC 3339 ("2026-11-25T04:30:00Z", fraction and offset
 * optional, "T" or a space; no offset means UTC), a date ("2026-11-25": its midnight UTC, or
 * for an end bound the midnight after it so the day is included), or a relative time before
 * now_ns ("30s", "30m", "24h", "7d", "2w"), or "now". Returns 0 or -1.
 */
int filter_parse_time(const char *s, int64_t now_ns, int end_bound, int64_t *out);

/* Parses a duration written as a relative time ("30s", "10m", "24h", "7d", "2w") into ns.
 * Returns 0 or -1. */
int filter_parse_duration(const char *s, int64_t *out);

/* When no --db was given: $TOKSHIM_DB, else $XDG_DATA_HOME/tokshim/usage.mdb, else
 * ~/.local/share/tokshim/usage.mdb. Writes it to buf; returns 0, or -1 when no HOME is known. */
int filter_default_db(char *buf, size_t cap);

/* Completes f after parsing: the default store when no --db was given. Returns 0, or -1 with
 * a reason in err. */
int filter_finish(struct filter *f, char *err, size_t errlen);

/* Does the record pass every filter except the time range (which store_scan applies)? */
int filter_match(const struct filter *f, const struct record *rec);

/* Does f filter by nothing but the time range (no name, no locality)? Then filter_match
 * holds for every record whose ts_ns lies in [since_ns, until_ns). */
int filter_time_only(const struct filter *f);

/*
 * Opens every store of f read-only into stores[0..f->ndb). Returns 0, or a STORE_E* code with
 * "cannot open 'PATH': reason" in err and nothing left open.
 */
int filter_open(const struct filter *f, struct store **stores, char *err, size_t errlen);
void filter_close(struct store **stores, size_t n);

/*
 * Calls fn for every record of f's stores that matches f. With ordered set, records of
 * several stores come merged in time order (ties by store then id), which costs a copy of
 * every matching record; without it, store after store. rec is valid during the call only.
 * Returns 0, the first non-zero value fn returned, or a STORE_E* code with a reason in err.
 */
int filter_scan(const struct filter *f, int ordered, store_record_fn fn, void *arg, char *err,
		size_t errlen);

/* During a filter_scan callback: the index into f->db of the store the record comes from
 * (ids are per store: with several stores a record is named by its store and its id). */
size_t filter_scan_db(void);

/* A copy of rec (strings included) in one allocation, to keep past a scan's callback; free
 * it with filter_record_free. NULL when out of memory. */
struct record *filter_record_dup(const struct record *rec);
void filter_record_free(struct record *rec);

/* The current time in ns since the epoch. */
int64_t filter_now_ns(void);

#endif
