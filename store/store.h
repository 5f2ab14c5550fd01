/*
 * store.h - the LMDB store: the one contract between the shim (which appends) and the CLI
 * (which reads). One file (MDB_NOSUBDIR, plus its "-lock" file), mode 0600, many processes
 * appending at once. Its layout is documented in docs/record-format.md:
 *
 *   records   key be64(ts_ns) ‖ be64(id)  → record_encode() bytes   (a time range = a cursor range)
 *   ids       key be64(id)                → the 16-byte records key
 *   payloads  key be64(id)                → payload_encode() bytes (compressed)
 *   counters  key name (text)             → int64 little-endian (drops, budget usage …)
 *   meta      "format" → u32 version, "next_id" → u64
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
	uint64_t payload_bytes; /* stored (compressed) payload bytes, headers included */
	uint64_t file_bytes; /* size of the data file */
	uint64_t map_bytes;  /* the map size cap */
	uint32_t format;
};
int store_info(struct store *st, struct store_info *out);

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

#endif
