/*
 * record.h - the usage record: one per captured LLM exchange.
 *
 * The shim fills a struct record and hands it to store_append(); readers get the same struct
 * back from store_scan()/store_get(). Strings are (pointer, length) views, never owned by the
 * record: whoever fills or decodes a record says how long they stay valid. This keeps decoding
 * free of copies, which matters when a report scans millions of records.
 *
 * The on-disk encoding (record_encode/record_decode) is versioned and documented in
 * docs/record-format.md. Version 5, written since store format 3, keeps only what differs from
 * a field's default: a bit set says which numbers follow (each in 4 bytes, or 8 when it needs
 * them) and which strings, each a reference into the store's string table or inline. A
 * typical record takes about 100 bytes instead of 320, and a report reads a third of the pages
 * (docs/PERFORMANCE.md). Versions 1 to 3 (a fixed header, then length-prefixed strings) are
 * still read. Both layouts grow only at their end, so a reader skips what a newer writer added.
 */
#ifndef TOKSHIM_RECORD_H
#define TOKSHIM_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define RECORD_VERSION 5

/* Strings longer than this are cut when encoded: a record never grows without bound. */
#define RECORD_STR_MAX 1024

struct record_str {
	const char *p; /* not NUL-terminated; may be NULL when n == 0 */
	uint32_t n;
	/* The number of this string in its store's string table (store/strings.h), 0 when it
	 * has none. Readers get it from store_scan and store_get: two strings of one store with
	 * the same ref are the same bytes, so a report can group by it without hashing names.
	 * Meaningful only within the store it was read from; store_append ignores it. */
	uint32_t ref;
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

/* Upper bound of record_encode's output for any record. */
#define RECORD_ENCODED_MAX (256 + 13 * (2 + RECORD_STR_MAX))

/*
 * Encodes rec as version 5 (its id and ts_ns are not part of the value: they live in the
 * key) into buf, which has room for cap bytes. A string whose ref is not 0 is written as that
 * reference, its bytes not at all; the others inline (the store sets every ref before it
 * encodes). Returns the encoded length, or a negative STORE_E* code when cap is too small.
 */
int record_encode(const struct record *rec, unsigned char *buf, size_t cap);

struct strtab;

/*
 * Decodes len bytes at buf into rec. Inline strings point into buf and stay valid as long as
 * buf does. A string written as a reference is looked up in tab (store/strtab.h; NULL for
 * none): found, it points into tab and carries its ref; not found, it comes back as
 * { NULL, 0, ref } for the caller to resolve (the store does, before any reader sees the
 * record). rec->id is left as it was, and so is rec->ts_ns for version 5, which keeps it only
 * in the key. Returns the number of references left unresolved (0 when there are none), or
 * STORE_EFORMAT for bytes that are not a record of a version this code reads, leaving rec as
 * it was; never reads outside [buf, buf+len).
 */
int record_decode(const unsigned char *buf, size_t len, const struct strtab *tab,
		  struct record *rec);

/* Each of the 13 strings of a record, in their encoded order (process, agent, agent_type,
 * tenant, session, provider, api, host, path, model_requested, model, error, error_message),
 * for code that treats them alike (the store resolving references). i < RECORD_NSTRS. Inline:
 * a report resolves a dozen strings of every record. */
#define RECORD_NSTRS 13
#define RECORD_STR_ERROR_MESSAGE 12
static inline struct record_str *record_str_mut(struct record *rec, size_t i)
{
	static const uint16_t off[RECORD_NSTRS] = {
		offsetof(struct record, process),	  offsetof(struct record, agent),
		offsetof(struct record, agent_type),	  offsetof(struct record, tenant),
		offsetof(struct record, session),	  offsetof(struct record, provider),
		offsetof(struct record, api),		  offsetof(struct record, host),
		offsetof(struct record, path),		  offsetof(struct record, model_requested),
		offsetof(struct record, model),		  offsetof(struct record, error),
		offsetof(struct record, error_message),
	};

	return (struct record_str *)((char *)rec + off[i]);
}

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
