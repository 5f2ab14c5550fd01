/*
 * provider.h - from the bytes of one exchange to normalised usage.
 *
 * A provider family (one file each: openai.c, anthropic.c, ollama.c …) knows one wire API: it
 * reads the request body (model asked for, stream or not), the response body or each streamed
 * event, and fills a struct usage with the token semantics of DESIGN.md. Families are pure: no
 * I/O, no globals, no clock; the same bytes always give the same usage, which is what makes
 * them testable against recorded bodies and fuzzable.
 *
 * The provider table (provider.c) maps a request's host, port and path to a family and to the
 * provider name that records carry. Many services speak one family's API (Groq, DeepSeek,
 * vLLM … speak OpenAI's), so adding a provider is one table row, and a new wire API is one new
 * family file plus its rows. A host that matches no row is still recognised by the path's shape,
 * and failing that by the shape of its response: a JSON POST to an unknown host is a candidate
 * (provider_match_candidate), recorded only when its response carries a usage object of a form
 * some family reads (shape.c).
 */
#ifndef TOKSHIM_PROVIDER_H
#define TOKSHIM_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

#define USAGE_MODEL_MAX 128
#define USAGE_ERROR_MAX 32
#define USAGE_MESSAGE_MAX 256

/* Normalised error types (record.error). */
#define ERR_RATE_LIMIT "rate_limit"
#define ERR_OVERLOADED "overloaded"
#define ERR_AUTH "auth"
#define ERR_INVALID_REQUEST "invalid_request"
#define ERR_SERVER "server"
#define ERR_BUDGET "budget_exceeded"
#define ERR_NETWORK "network"

struct usage {
	int64_t input_tokens;       /* DESIGN.md semantics: includes cache reads and writes */
	int64_t output_tokens;      /* includes reasoning */
	int64_t cache_read_tokens;
	int64_t cache_write_tokens;
	int64_t reasoning_tokens;
	int have_usage;             /* a usage object was read from the response */
	int estimated;              /* tokens estimated from text (set by usage_finish) */
	int stream;                 /* the response is a stream */
	int not_billed;             /* the API does not charge for the call */
	int billed;                 /* billed_cost_pusd holds the provider's billed cost */
	int64_t billed_cost_pusd;
	/* Searches billed apart from tokens (Perplexity): usage.num_search_queries, and the
	 * search context size as enum record_search (store/record.h), 0 when not said. */
	int64_t search_queries;
	int search_context;
	/* The units the provider charges when they are not the tokens (Cohere's billed_units),
	 * valid with have_billed_units; the part of cache_write_tokens written with a one-hour
	 * lifetime (Anthropic); the service tier the response reports (enum record_tier). */
	int have_billed_units;
	int64_t billed_input_tokens;
	int64_t billed_output_tokens;
	int64_t cache_write_1h_tokens;
	int service_tier;
	/* The provider name the exchange itself revealed (llama.cpp's server by the "timings"
	 * of its responses), a static string that wins over the table's; NULL: the table's. */
	const char *provider;
	const char *api;            /* static name of the API: "chat.completions", "messages" … */
	char model_requested[USAGE_MODEL_MAX];
	char model[USAGE_MODEL_MAX];        /* the model the response names */
	char error[USAGE_ERROR_MAX];        /* normalised error type, "" when none */
	char error_message[USAGE_MESSAGE_MAX];
	/* Text sizes for estimating tokens when the response carries no usage. */
	uint64_t request_text_bytes; /* prompt text found in the request body */
	uint64_t output_text_bytes;  /* generated text found in the response */
};

/* What a family is shown of the request. Strings are NUL-terminated and valid during the call. */
struct provider_request {
	const char *method;
	const char *host;      /* without port, lowercase */
	const char *path;      /* request-target: path and query */
	const struct http_head *head;
	const char *body;      /* may be cut short when body_truncated */
	size_t body_len;
	int body_truncated;
};

/* How a response body is cut into events, when the family must say so: the Content-Type decides
 * otherwise (text/event-stream SSE, application/x-ndjson NDJSON, application/vnd.amazon.eventstream
 * AWS event-stream, anything else one whole body). */
enum provider_framing {
	PROVIDER_FRAMING_AUTO,       /* by the Content-Type */
	PROVIDER_FRAMING_JSON_ARRAY, /* a JSON array streamed element by element (Gemini) */
};

struct provider_family {
	const char *name; /* "openai", "anthropic", "ollama" … */
	/* The API served at this path (a static string such as "chat.completions"), or NULL when
	 * the family has no API there. path is the request-target with its query. */
	const char *(*api_of)(const char *path);
	/* Reads the request: model_requested, stream flag, request_text_bytes. */
	void (*request)(struct usage *u, const struct provider_request *req);
	/* Reads one streamed event (SSE event or NDJSON line). name is the SSE event name or NULL. */
	void (*event)(struct usage *u, const char *name, size_t name_len, const char *data,
		      size_t len);
	/* Reads a whole non-streamed body (decoded), for any status (error bodies included). */
	void (*body)(struct usage *u, int status, const char *data, size_t len);
	/* Optional (NULL: nothing to read). Reads the response head before any of its body:
	 * usage or an error type sent in headers (Bedrock's x-amzn-bedrock-*-token-count), and
	 * returns how the body is framed when its Content-Type alone does not tell that it is a
	 * stream (Gemini's streamGenerateContent answers a JSON array as application/json).
	 * u->api is set; the request may not have been read yet. h is valid during the call. */
	enum provider_framing (*response)(struct usage *u, const struct http_head *h);
};

/* The provider a request goes to. */
struct provider_match {
	const struct provider_family *family;
	const char *name; /* provider name for the record; NULL: use the host name */
	const char *api;  /* from family->api_of */
	int local;        /* the service is a local model server whatever its address */
	int candidate;    /* unknown host and path: an LLM call only if the response has usage */
};

/*
 * Finds the provider for a request to host:port with this request-target. Returns 1 and fills
 * *m when the request is an LLM API call, 0 when it is not (then nothing about it is kept).
 * Pure and allocation-free: it runs on every request head the shim sees.
 */
int provider_match(const char *host, unsigned port, const char *path, struct provider_match *m);

/*
 * For a request provider_match turned down: is it a candidate, an exchange that may be an LLM
 * call to a service no row names? That is a POST whose Content-Type (content_type[0..ct_len),
 * may be NULL) is JSON, to a host that no row names (a known host's other paths are known not
 * to be LLM calls) and that is not known non-LLM traffic (telemetry, code hosting). Returns 1
 * and fills *m (the shape family, name NULL: the host is the provider, candidate 1), else 0.
 * The caller records a candidate only when its response carried usage (usage.have_usage).
 * Pure and allocation-free, like provider_match.
 */
int provider_match_candidate(const char *host, const char *method, size_t method_len,
			     const char *content_type, size_t ct_len, struct provider_match *m);

/*
 * Can a response with this Content-Type (may be NULL) carry a usage object: JSON, a JSON
 * suffix type, SSE or NDJSON? A candidate whose response cannot is let go before its body is
 * buffered. Returns 1 or 0.
 */
int provider_candidate_response(const char *content_type, size_t ct_len);

/*
 * The i-th family (0, 1, 2 …) of the provider table, each once, then the shape family of
 * candidates; NULL past the last. For tests and fuzzers that must reach every family, including
 * ones added later, without naming them. The pointer is static.
 */
const struct provider_family *provider_family_at(size_t i);

/* Sets a usage to its empty state (tokens 0, no model, no error, billed cost unknown). */
void usage_init(struct usage *u);

/*
 * Completes a usage once the exchange is over: status is the HTTP status (0: no response),
 * complete is 0 when the response was cut short. Fills error from the status when the family
 * set none (429 rate_limit, 401/403 auth, 400/404/413/422 invalid_request, 529 overloaded,
 * other 5xx server, no response or cut short network), estimates tokens from text when a
 * successful response carried no usage (rule in docs/providers.md; sets estimated), and
 * copies model_requested into model when the response named none.
 */
void usage_finish(struct usage *u, int status, int complete);

/* Tokens estimated from a text size: the rule every estimate uses. */
int64_t usage_estimate_tokens(uint64_t text_bytes);

/* Copies a JSON string value into a fixed field (NUL-terminated, cut to fit). */
void usage_set_str(char *dst, size_t cap, const char *src);

#endif
