/*
 * store.h - the LMDB store: the one contract between the shim (which appends) and the CLI
 * (which reads). One file (MDB_NOSUBDIR, plus its "-lock" file), mode 0600, many processes
 * appending at once. Its layout is documented in docs/record-format.md:
 *
 *   records   key be64(ts_ns) ‖ be64(id)  → record_encode() bytes   (a time range = a cursor range)
 *   ids       key be64(id)                → the 16-byte records key, then payload_encode() bytes
 *   payloads  key be64(id)                → payload_encode() bytes (format 1 stores only)
 *   counters  key name (text)             → int64 little-endian (drops, budget usage …)
 *   meta      "format" → u32 version, "next_id" → u64 (the least next id)
 *   strings   0x00 ‖ be32(id) → a name; 0x01 ‖ name → le32(id)  (store/strings.h: the names
 *             records repeat, each kept once; a record refers to it by id)
 *
 * A record, its payload and its counter updates are written in one write transaction, so a
 * reader sees all or none of them, and a killed writer loses at most the transaction in flight.
 *
 * Writers commit with MDB_NOSYNC: a commit reaches the kernel's page cache before
 * store_append returns, so killing the process loses nothing committed; only a crash of the
 * whole machine can lose the last commits. This keeps a commit in microseconds.
 *
 * A struct store may be used by many threads. It must not be used after fork(): the child opens
 * its own (LMDB's rule); store_close must not be called on the parent's handle in the child.
 */
#ifndef TOKSHIM_STORE_H
#define TOKSHIM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* The store format this code writes (meta "format"); it reads every one up to it. A writer
 * opening an older store marks it current (docs/record-format.md). */
#define STORE_FORMAT 3

/* Error codes: 0 is success; ours are negative and below LMDB's range is not used. */
enum {
	STORE_OK = 0,
	STORE_ENOENT = -30,   /* the store file does not exist (and STORE_CREATE was not given) */
	STORE_EFORMAT = -31,  /* not a tokshim store, a newer format, or a corrupt record */
	STORE_EFULL = -32,    /* the map reached its cap: nothing was written */
	STORE_ENOTFOUND = -33,/* no record or payload with that id */
	STORE_EIO = -34,      /* an LMDB or system error; errno-like detail in store_last_error */
	STORE_ENOMEM = -35,
	STORE_EINVAL = -36,
	STORE_EACCES = -37,   /* permission denied */
	STORE_EBUDGET = -38,  /* store_budget_reserve: a budget's cap would be crossed */
};

/* Returns a static lowercase message for any code returned by a store_* or record_* call. */
const char *store_strerror(int err);

/*
 * Returns LMDB's or the system's own message for the failure behind this thread's last
 * STORE_E* code (e.g. "MDB_READERS_FULL: Environment maxreaders limit reached"), "" when
 * there was none. Static storage; valid until the thread's next store_* call.
 */
const char *store_last_error(void);

enum store_open_flag {
	STORE_READONLY = 1u << 0, /* readers: never create or write */
	STORE_CREATE = 1u << 1,   /* writers: create the file (0600) and its folder if missing */
};

/* Default map size cap (bytes). TOKSHIM_DB_MAX_MB overrides it for writers. */
#define STORE_DEFAULT_MAP_SIZE (4ull << 30)

struct store;

/*
 * Opens the store at path. *out receives a handle to be released with store_close.
 * map_size 0 means STORE_DEFAULT_MAP_SIZE for writers, and for readers the size the writers
 * set (the file's own). Returns 0 or a STORE_E* code; on error *out is NULL.
 * A file that exists but is not a tokshim store gives STORE_EFORMAT.
 */
int store_open(struct store **out, const char *path, unsigned flags, uint64_t map_size);

/* Closes the handle. NULL is allowed. */
void store_close(struct store *st);

/* What a payload holds: the HTTP heads (secrets already redacted) and bodies of one exchange. */
struct payload {
	struct record_str req_head;  /* request line and headers, CRLF-separated, redacted */
	struct record_str req_body;  /* as sent (after de-chunking), possibly cut at the cap */
	struct record_str resp_head; /* status line and headers */
	struct record_str resp_body; /* after Content-Encoding decoding, possibly cut at the cap */
	uint64_t req_body_size;      /* the whole sizes seen, even where the stored part is cut */
	uint64_t resp_body_size;
	void *owner_;                /* private: the buffer a decoded payload's strings point into */
};

/* A counter change written in the same transaction as a record. */
struct store_counter_delta {
	const char *name; /* NUL-terminated key, e.g. "dropped.parse_error" */
	int64_t delta;
};

/*
 * Appends rec (and pl when not NULL, setting RECORD_PAYLOAD) in one write transaction, plus the
 * given counter deltas. Assigns rec->id. rec's strings are only read during the call.
 * Returns 0, STORE_EFULL when the map is full (nothing written), or another STORE_E* code.
 */
int store_append(struct store *st, struct record *rec, const struct payload *pl,
		 const struct store_counter_delta *deltas, size_t ndeltas);

/*
 * Appends recs[0..n) without payloads or counter changes in one write transaction, for bulk
 * loads (imports, benchmarks) where one commit per record is the cost. All or none are
 * written; on success each recs[i].id is assigned (consecutive ids). 1 <= n <=
 * STORE_BATCH_MAX, else STORE_EINVAL. The shim never batches: each call is its own commit.
 */
#define STORE_BATCH_MAX 65536
int store_append_batch(struct store *st, struct record *recs, size_t n);

/* Adds delta to each named counter in one transaction (used to count drops). */
int store_counters_add(struct store *st, const struct store_counter_delta *deltas, size_t n);

/*
 * Called for each record by store_scan. rec's strings point into the map and are valid only
 * until the callback returns. Return 0 to go on, non-zero to stop the scan.
 */
typedef int (*store_record_fn)(const struct record *rec, void *arg);

/*
 * Calls fn for every record with since_ns <= ts_ns < until_ns, in (ts_ns, id) order, inside
 * one read transaction. Returns 0, the first non-zero value fn returned, or a STORE_E* code.
 * A record that fails to decode stops the scan with STORE_EFORMAT.
 */
int store_scan(struct store *st, int64_t since_ns, int64_t until_ns, store_record_fn fn,
	       void *arg);

/*
 * The times of the first and last records (their ts_ns) and how many records the store holds,
 * read in one read transaction, so that a reader can cut a scan into time ranges of similar
 * size (report runs one store_scan per range on several threads). An empty store gives zeros.
 * Returns 0 or a STORE_E* code.
 */
int store_span(struct store *st, int64_t *first_ns, int64_t *last_ns, uint64_t *records);

/* Calls fn once for the record with this id. Returns 0, STORE_ENOTFOUND or a STORE_E* code. */
int store_get(struct store *st, uint64_t id, store_record_fn fn, void *arg);

/*
 * Reads and decompresses the payload of record id into *out. The strings of *out point into
 * memory owned by *out, released by payload_release. Returns 0, STORE_ENOTFOUND or an error;
 * on error *out is left empty (payload_release on it is harmless).
 */
int store_payload_get(struct store *st, uint64_t id, struct payload *out);
void payload_release(struct payload *pl);

/* Calls fn(name, value, arg) for every counter, in name order. Returns 0 or an error code. */
typedef int (*store_counter_fn)(const char *name, int64_t value, void *arg);
int store_counters_scan(struct store *st, store_counter_fn fn, void *arg);

/* Summary numbers for `tokshim stats` and tests. */
struct store_info {
	uint64_t records;
	uint64_t payloads;
	uint64_t next_id;
	uint64_t payload_bytes; /* payload bytes as stored (headers and frames), LMDB's own not */
	uint64_t payload_raw_bytes; /* what they hold: heads and bodies as captured */
	uint64_t payloads_kept; /* payloads kept uncompressed (small ones: store/payload.c) */
	uint64_t strings;    /* names in the strings table */
	uint64_t file_bytes; /* size of the data file */
	uint64_t map_bytes;  /* the map size cap */
	uint32_t format;
};
int store_info(struct store *st, struct store_info *out);

/*
 * The id the next record will get (1 in an empty store or a file with no store yet), read in
 * a read transaction of its own: cheap enough to poll (tail -f). Returns 0 or an error.
 */
int store_next_id(struct store *st, uint64_t *out);

/* Receives each problem store_verify finds: one lowercase line, valid during the call. */
typedef void (*store_problem_fn)(const char *problem, void *arg);

/*
 * Checks the store's structure inside one read transaction: meta holds a known format and a
 * next_id; every record decodes, its key's time is its ts_ns, its id is below next_id and the
 * ids entry of that id names it; every ids entry names an existing record; every record with
 * RECORD_PAYLOAD has a payload that decodes and every payload belongs to such a record; every
 * counter has a 1 to 511 byte name and an 8-byte value. fn is called once per problem (at
 * most STORE_VERIFY_MAX_PROBLEMS times; *nproblems still counts them all). Returns 0 when the
 * check ran to its end, whatever it found, or a STORE_E* code when it could not run.
 * Decompresses every payload: time grows with the store.
 */
#define STORE_VERIFY_MAX_PROBLEMS 100
int store_verify(struct store *st, store_problem_fn fn, void *arg, uint64_t *nproblems);

/* Told how many entries (records, ids, payloads, counters) store_verify has checked so far,
 * once per entry: keep it cheap. */
typedef void (*store_tick_fn)(uint64_t checked, void *arg);

/* store_verify, calling tick (when not NULL) with tick_arg after each entry, for a progress
 * line. */
int store_verify_ticking(struct store *st, store_problem_fn fn, void *arg, store_tick_fn tick,
			 void *tick_arg, uint64_t *nproblems);

/* ---- budgets: usage counters, reservations, alert events (docs/budgets.md) ----------------
 *
 * A budget's usage in one window lives in two counters, "{base}:tokens" and "{base}:cost_pusd"
 * (base is "budget:{window}:{scope}:{match}:{tenant}", made by budget/), updated in the same
 * write transaction as each record. A counter that does not exist yet for its window (a
 * budget new in the file, or a new window) is first seeded from the records already in the
 * window, inside that write transaction, so counters always equal the sums of the records.
 *
 * Calls in flight hold reservations (sub-database "reservations"): store_budget_reserve
 * re-reads used + reserved in its write transaction and refuses when a cap would be crossed,
 * so concurrent processes cannot overshoot a cap together; store_append_budget removes the
 * reservation in the record's own transaction. Reservations of dead processes, or older than
 * STORE_RESERVATION_TTL_S, are removed by the next reserve and ignored by readers.
 *
 * Alert events (sub-database "events", key be64(event id), value one JSON object; format in
 * docs/record-format.md) are written for a budget warning (once per budget counter and
 * window, when used reaches the warn level) and for each blocked call.
 */

/* A reservation older than this is dead whatever its process: the longest call we wait for. */
#define STORE_RESERVATION_TTL_S (30 * 60)

/* At most this many budgets in one call; longer arrays give STORE_EINVAL. */
#define STORE_BUDGET_MAX 64

/*
 * Does rec count against a budget, and how much? Sets *tokens and *pusd (pico-USD) and returns
 * 1 when it counts, 0 when not. Called while seeding, inside a write transaction: rec's
 * strings are valid only during the call; it must not call store_* functions.
 */
typedef int (*store_seed_fn)(const struct record *rec, void *arg, int64_t *tokens,
			     int64_t *pusd);

/* One budget counter pair as a call sees it. The caller owns every string. */
struct store_budget {
	const char *name;             /* the budget's name, for events */
	const char *base;             /* counter base name, 1 to 400 bytes */
	int64_t since_ns, until_ns;   /* the window: records in it seed the counters */
	store_seed_fn seed;
	void *seed_arg;
	int64_t est_tokens, est_pusd; /* reserve: this call's estimate */
	int64_t tokens, pusd;         /* store_append_budget: the record's real usage */
	int64_t cap_tokens, cap_pusd; /* reserve: refuse when used + reserved + estimate pass a
				       * cap; -1 for none (a warn-only budget has none) */
	int64_t warn_tokens, warn_pusd; /* a warning event once used reaches these; -1 none */
	/* Filled in by every call: usage before this call's own change, and live reservations
	 * (this call's excluded). */
	int64_t used_tokens, used_pusd;
	int64_t reserved_tokens, reserved_pusd;
};

/*
 * Reserves b[i].est_* against every b[i] in one write transaction: expires dead reservations,
 * seeds missing counters, and refuses (STORE_EBUDGET, *refused = the first budget whose cap
 * would be crossed, nothing reserved but the seeding kept) or records a reservation of this
 * process (pid, now_ns, the estimates) whose id goes to *resv_id. n == 0 reserves nothing and
 * returns 0 with *resv_id 0. Returns 0, STORE_EBUDGET or a STORE_E* error.
 */
int store_budget_reserve(struct store *st, struct store_budget *b, size_t n, int64_t now_ns,
			 uint64_t *resv_id, size_t *refused);

/* Removes a reservation (a call that never completed). A missing one is not an error. */
int store_budget_release(struct store *st, uint64_t resv_id);

/*
 * store_append, plus in the same write transaction: removes reservation resv_id (0: none),
 * seeds then adds b[i].tokens and b[i].pusd to each budget's counters, writes a
 * "budget_warning" event for each b[i] whose usage reaches its warn level for the first time
 * in the window, and when block < n a "budget_block" event for b[block] (a call refused with
 * this record). Returns what store_append returns.
 */
int store_append_budget(struct store *st, struct record *rec, const struct payload *pl,
			const struct store_counter_delta *deltas, size_t ndeltas,
			struct store_budget *b, size_t n, uint64_t resv_id, size_t block);

/*
 * Reads each budget's usage without writing: its counters, or where they do not exist yet the
 * sum over the window's records (what seeding would give), and live reservations at now_ns.
 * Returns 0 or an error; a store without budget data reads as all zero.
 */
int store_budget_read(struct store *st, struct store_budget *b, size_t n, int64_t now_ns);

/* Calls fn for each alert event in id order; json (len bytes, NUL-terminated) is valid during
 * the call. Return non-zero from fn to stop (that value is returned). */
typedef int (*store_event_fn)(uint64_t id, const char *json, size_t len, void *arg);
int store_events_scan(struct store *st, store_event_fn fn, void *arg);

/*
 * Writes one alert event of a rule evaluated outside the agent (`tokshim alerts watch`):
 * members are the JSON object's members after "id" (`"kind":"failure_rate",…`, no braces,
 * under 16 KiB), the object is {"id":N,members}. When once_key is not NULL the event is
 * written only if counter once_key does not exist, and the counter is set to 1 in the same
 * transaction, so a rule evaluated again (or by two watchers) fires once. *id receives the
 * new event's id, 0 when once_key had already fired. Returns 0 or a STORE_E* code.
 */
int store_event_append(struct store *st, const char *once_key, const char *members,
		       uint64_t *id);

/* What store_prune did (or, with STORE_PRUNE_DRY_RUN, would do). */
struct store_prune_result {
	uint64_t records;      /* records deleted, with their ids entries */
	uint64_t payloads;     /* payloads deleted */
	uint64_t bytes_before; /* size of the data file before and after */
	uint64_t bytes_after;
	int compacted;         /* the file was rewritten without its free pages */
};

enum store_prune_flag {
	STORE_PRUNE_DRY_RUN = 1u << 0,    /* count only: nothing is written */
	STORE_PRUNE_NO_COMPACT = 1u << 1, /* delete, but leave the freed pages in the file */
};

/*
 * Deletes every record of the store at path with ts_ns < before_ns, its ids entry and its
 * payload, in write transactions of at most 1024 records each, so appends by other processes
 * go on meanwhile (they are never lost: each of their commits lands before or after a batch).
 * Then returns the space: if no other process has the store open, openers are held off in
 * their store_open (they wait, they do not fail), the file is copied compactly
 * (mdb_env_copy2 with MDB_CP_COMPACT) into a temporary file beside it, which is synced and
 * renamed over it. When another process has the store open the file is left as it is (its
 * free pages are reused by later appends) and out->compacted is 0. on_compact, when not NULL,
 * is called with arg just before the copy starts (a progress message). Counters and next_id
 * are kept: ids are never reused. Returns 0 or a STORE_E* code; *out is filled in either way
 * with what was done (deleted batches stay deleted when a later step fails).
 */
int store_prune(const char *path, int64_t before_ns, unsigned flags,
		void (*on_compact)(void *arg), void *arg, struct store_prune_result *out);

#endif
