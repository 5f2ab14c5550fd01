/*
 * record.h - the usage record: one per captured LLM exchange.
 *
 * The shim fills a struct record and hands it to store_append(); readers get the same struct
 * back from store_scan()/store_get(). Strings are (pointer, length) views, never owned by the
 * record: whoever fills or decodes a record says how long they stay valid. This keeps decoding
 * free of copies, which matters when a report scans millions of records.
 *
 * The on-disk encoding is versioned and documented in docs/record-format.md. Versions 1 to 3
 * are a fixed little-endian header that states its own length, then u16-length-prefixed
 * strings. Version 4 is compact: a bit set of the fields that differ from their defaults, each
 * as a varint, and strings that are either inline or a reference (a small id) into a string
 * table the store keeps; its time is not in the value but in the store's key. Both layouts
 * let later writers add fields and strings that older readers skip.
 */
#ifndef TOKSHIM_RECORD_H
#define TOKSHIM_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define RECORD_VERSION 4

/* Strings longer than this are cut when encoded: a record never grows without bound. */
#define RECORD_STR_MAX 1024

struct record_str {
	const char *p; /* not NUL-terminated; may be NULL when n == 0 */
	uint32_t n;
};

enum record_flag {
	RECORD_STREAM = 1u << 0,     /* the response was a stream (SSE, NDJSON, event-stream) */
	RECORD_ESTIMATED = 1u << 1,  /* tokens were estimated from text, not read from usage */
	RECORD_LOCAL = 1u << 2,      /* locality: set = local, clear = cloud */
	RECORD_PAYLOAD = 1u << 3,    /* a payload is stored under the same id */
	RECORD_TRUNCATED = 1u << 4,  /* the response ended before it was complete */
	RECORD_BILLED = 1u << 5,     /* billed_cost_pusd holds the provider's own billed cost */
	RECORD_NOT_BILLED = 1u << 6, /* the API does not charge for this call (count_tokens) */
	RECORD_BILLED_UNITS = 1u << 7, /* billed_input/output_tokens hold the units charged */
};

/* record.search_context: Perplexity's search_context_size ("low", "medium", "high"). */
enum record_search {
	RECORD_SEARCH_UNKNOWN = 0,
	RECORD_SEARCH_LOW = 1,
	RECORD_SEARCH_MEDIUM = 2,
	RECORD_SEARCH_HIGH = 3,
};

/* record.service_tier: the processing tier the response reports (OpenAI's "service_tier"). */
enum record_tier {
	RECORD_TIER_UNKNOWN = 0,  /* not said */
	RECORD_TIER_DEFAULT = 1,  /* "default": the standard price */
	RECORD_TIER_FLEX = 2,     /* "flex" */
	RECORD_TIER_PRIORITY = 3, /* "priority" */
	RECORD_TIER_SCALE = 4,    /* "scale" */
};

struct record {
	uint64_t id;          /* assigned by store_append, 1, 2, 3 … per store */
	int64_t ts_ns;        /* UTC wall clock of the request's first byte, ns since the epoch */
	int64_t latency_us;   /* request's first byte to response's last byte */
	int64_t ttfb_us;      /* request's first byte to response's first byte; -1 if none */
	int32_t pid;
	int32_t status;       /* HTTP status; 0 when no response arrived */
	int32_t retry_after_s; /* Retry-After in seconds, -1 when absent */
	uint32_t flags;       /* enum record_flag */
	int64_t input_tokens; /* token fields follow the semantics table of DESIGN.md */
	int64_t output_tokens;
	int64_t cache_read_tokens;
	int64_t cache_write_tokens;
	int64_t reasoning_tokens;
	int64_t billed_cost_pusd;  /* provider-billed cost in pico-USD, valid with RECORD_BILLED */
	uint64_t request_hash;     /* FNV-1a 64 of the request body; 0 when none was seen */
	/* Version 2. For providers that bill searches apart from tokens (Perplexity): the
	 * number of search queries the response reports (usage.num_search_queries; 0 when it
	 * says nothing), and the search context size it reports (usage.search_context_size, or
	 * the request's web_search_options.search_context_size): enum record_search, 0 when
	 * unknown. pricing.c turns them into the per-request and per-search fees. */
	int64_t search_queries;
	int32_t search_context;
	/* Version 3. billed_input_tokens and billed_output_tokens: the units the provider says
	 * it charges when they differ from the tokens read and written (Cohere's billed_units),
	 * valid with RECORD_BILLED_UNITS; pricing then prices them instead of the token fields.
	 * cache_write_1h_tokens: the part of cache_write_tokens written with a one-hour lifetime
	 * (Anthropic's cache_creation.ephemeral_1h_input_tokens), priced at cache_write_1h.
	 * service_tier: enum record_tier. */
	int64_t billed_input_tokens;
	int64_t billed_output_tokens;
	int64_t cache_write_1h_tokens;
	int32_t service_tier;
	struct record_str process; /* executable name (comm) */
	struct record_str agent;
	struct record_str agent_type;
	struct record_str tenant;
	struct record_str session;
	struct record_str provider;        /* OpenTelemetry gen_ai.provider.name where one exists */
	struct record_str api;             /* "chat.completions", "messages", "chat", … */
	struct record_str host;            /* without port */
	struct record_str path;            /* path and query, secrets in the query redacted */
	struct record_str model_requested; /* the model the request asked for */
	struct record_str model;           /* the model the response names (else the requested) */
	struct record_str error;           /* normalised error type, empty on success */
	struct record_str error_message;   /* the provider's message, cut to RECORD_STR_MAX */
};

/* The record's strings, in their encoded order (record_str_at, record_encode_refs' refs). */
enum record_str_index {
	RECORD_S_PROCESS,
	RECORD_S_AGENT,
	RECORD_S_AGENT_TYPE,
	RECORD_S_TENANT,
	RECORD_S_SESSION,
	RECORD_S_PROVIDER,
	RECORD_S_API,
	RECORD_S_HOST,
	RECORD_S_PATH,
	RECORD_S_MODEL_REQUESTED,
	RECORD_S_MODEL,
	RECORD_S_ERROR,
	RECORD_S_ERROR_MESSAGE,
	RECORD_NSTRS /* 13 */
};

/* Upper bound of record_encode's and record_encode_refs' output for any record. */
#define RECORD_ENCODED_MAX (256 + RECORD_NSTRS * (2 + RECORD_STR_MAX))

/*
 * Encodes rec as a version 4 value into buf, which has room for cap bytes. Neither rec->id nor
 * rec->ts_ns is part of the value: both live in the store's key, and record_decode_at takes
 * the time back as a parameter. refs, when not NULL, holds one id per string (enum
 * record_str_index order): refs[i] != 0 writes string i as a reference to that id instead of
 * its bytes; the caller guarantees that the id names exactly the bytes string i has after
 * being cut to RECORD_STR_MAX (record_cut_len's rule, docs/record-format.md). refs NULL, or an
 * entry 0, writes the string inline. Returns the encoded length (at most RECORD_ENCODED_MAX),
 * STORE_EINVAL for a NULL rec or buf, a string with a NULL pointer and a length, or a cap too
 * small (nothing meaningful is left in buf then).
 */
int record_encode_refs(const struct record *rec, const uint32_t refs[RECORD_NSTRS],
		       unsigned char *buf, size_t cap);

/*
 * Encodes rec into buf (cap bytes) as the store writes it today: a version 3 value, which
 * carries ts_ns itself, because the store still reads its values back with record_decode (no
 * time from the key). Once the store reads with record_decode_at, this becomes
 * record_encode_refs(rec, NULL, buf, cap). Returns the encoded length, or STORE_EINVAL as
 * record_encode_refs.
 */
int record_encode(const struct record *rec, unsigned char *buf, size_t cap);

/*
 * Gives the bytes of string id (never 0) of the store's string table in *out. Returns 0, or a
 * negative STORE_E* code: STORE_EFORMAT for an id it does not know. The bytes must stay valid
 * as long as the caller of record_decode_at needs the record (for the store: the read
 * transaction); out->n must not exceed RECORD_STR_MAX, or the record is refused.
 */
typedef int (*record_resolve_fn)(void *ctx, uint32_t id, struct record_str *out);

/*
 * Decodes len bytes at buf (a value of version 1 to 4) into rec. Version 4 values do not hold
 * the time: rec->ts_ns is set to ts_ns (the store's key); versions 1 to 3 carry their own and
 * ts_ns is ignored. A version 4 string reference is resolved by resolve(ctx, id, …), called
 * only once the whole value has been checked; a reference when resolve is NULL is
 * STORE_EFORMAT. Inline strings point into buf and stay valid as long as buf does; resolved
 * ones as long as resolve says. rec->id is left as it was. Returns 0; STORE_EFORMAT for bytes
 * that are not a record of a version this code reads; or resolve's error. On any error rec is
 * left untouched. Never reads outside [buf, buf+len).
 */
int record_decode_at(const unsigned char *buf, size_t len, int64_t ts_ns,
		     record_resolve_fn resolve, void *ctx, struct record *rec);

/*
 * record_decode_at(buf, len, 0, NULL, NULL, rec): version 4 values decode with ts_ns 0 and
 * their references refused. For tests, fuzzing and values of versions 1 to 3.
 */
int record_decode(const unsigned char *buf, size_t len, struct record *rec);

/* String i (enum record_str_index, i < RECORD_NSTRS) of rec, by index, for code that treats
 * the strings alike (the store interning them). Points into rec. */
const struct record_str *record_str_at(const struct record *rec, size_t i);
struct record_str *record_str_mut(struct record *rec, size_t i);

/* The length string s is encoded with: n cut to RECORD_STR_MAX, backing off to a UTF-8
 * character boundary (at most 3 bytes). What a string table must store for a reference. */
uint32_t record_str_cut_len(const struct record_str *s);

/* Tokens and cost helpers shared by every reader. */
static inline int64_t record_total_tokens(const struct record *r)
{
	int64_t t;

	/* A damaged store or a hostile server can hold any counts: the sum saturates rather than
	 * overflow. */
	if (__builtin_add_overflow(r->input_tokens, r->output_tokens, &t))
		t = r->input_tokens > 0 ? INT64_MAX : INT64_MIN;
	return t;
}

/* The enum record_tier of a service tier's name ("default", "flex", "priority", "scale"; n
 * bytes, NULL allowed), RECORD_TIER_UNKNOWN for any other. */
int record_tier_of(const char *name, size_t n);

/* The name of an enum record_tier value ("default" …), or NULL for unknown and out of range.
 * Static. */
const char *record_tier_name(int tier);

/* Makes a record_str of a NUL-terminated string (NULL gives the empty string). */
struct record_str record_str_of(const char *s);

/* 64-bit FNV-1a, the hash behind request_hash. */
uint64_t record_hash(const void *data, size_t len);

#endif
