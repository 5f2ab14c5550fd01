/*
 * budget.h - budgets: the budget file, windows, which budgets a call falls under, the cost
 * estimate of a request before it is sent, and the 429 an agent reads when a call is blocked.
 *
 * Pure: no I/O but budget_load reading its file, no clock (callers pass the time), no store.
 * The shim's gate (shim/gate.c) and `tokshim budget` both build on it; the atomic part (check
 * and reserve, settle with the record) is the store's (store_budget_* in store/store.h), fed
 * the struct store_budget entries a budget_plan holds. docs/budgets.md is the user's side.
 *
 * Tenants are isolated by the counters themselves: every counter is per tenant (its base ends
 * with the call's tenant), so the spend of tenant A never counts against a budget as tenant B
 * matches it, whatever the scope. A budget of scope "system" is therefore a cap per tenant.
 */
#ifndef TOKSHIM_BUDGET_H
#define TOKSHIM_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "providers/pricing.h"
#include "store/record.h"
#include "store/store.h"

#define BUDGET_NAME_MAX 100
#define BUDGET_MATCH_MAX 200
#define BUDGET_MAX STORE_BUDGET_MAX
#define BUDGET_FILE_MAX (1u << 20)
/* The output tokens a request that names no max_tokens is assumed to ask for. */
#define BUDGET_DEFAULT_OUTPUT_TOKENS 4096
#define BUDGET_DEFAULT_WARN_AT 0.95
/* "budget:" w-key ":" scope ":" match ":" tenant; tenants longer than this are cut. */
#define BUDGET_TENANT_MAX 128
#define BUDGET_BASE_MAX (64 + BUDGET_MATCH_MAX + BUDGET_TENANT_MAX)

/* Error codes of budget_parse and budget_load (0 is success). */
#define BUDGET_EFORMAT (-1) /* the file is not a valid budget file: err names line and field */
#define BUDGET_ENOMEM (-2)
#define BUDGET_EIO (-3)     /* the file cannot be read */

enum budget_scope {
	BUDGET_SCOPE_AGENT,
	BUDGET_SCOPE_AGENT_TYPE,
	BUDGET_SCOPE_TENANT,
	BUDGET_SCOPE_MODEL,
	BUDGET_SCOPE_PROVIDER,
	BUDGET_SCOPE_SYSTEM,
};

enum budget_window { BUDGET_DAILY, BUDGET_WEEKLY, BUDGET_MONTHLY };

enum budget_action { BUDGET_BLOCK, BUDGET_WARN };

struct budget {
	char name[BUDGET_NAME_MAX + 1];
	enum budget_scope scope;
	char match[BUDGET_MATCH_MAX + 1]; /* fnmatch glob on the scope's value; "*" for system */
	enum budget_window window;
	int64_t max_tokens;               /* -1: no token cap */
	int64_t max_pusd;                 /* pico-USD; -1: no cost cap */
	double warn_at;                   /* (0, 1] */
	enum budget_action action;
};

struct budget_set {
	size_t n;
	struct budget b[BUDGET_MAX];
};

/* Static names: "agent" … "system", "daily" …, "block"/"warn". */
const char *budget_scope_name(enum budget_scope s);
const char *budget_window_name(enum budget_window w);

/*
 * Parses a budget file's text (len bytes, no NUL needed). On success *out is a new set freed
 * with budget_set_free. On error *out is NULL, a BUDGET_E* code is returned and err receives
 * one lowercase line naming the line and the field ("line 7: field 'window': must be daily,
 * weekly or monthly").
 */
int budget_parse(struct budget_set **out, const char *text, size_t len, char *err,
		 size_t errlen);

/* Reads path (at most BUDGET_FILE_MAX bytes) and parses it; err then starts with the path. */
int budget_load(struct budget_set **out, const char *path, char *err, size_t errlen);

void budget_set_free(struct budget_set *s);

/* A window: [since_ns, until_ns) and its key ("d2025-06-01", "w2025-06-02" named by its
 * Monday, "m2025-06"). Windows reset at UTC midnight; weeks start on Monday. */
struct budget_span {
	int64_t since_ns, until_ns;
	char key[32]; /* room for any year gmtime gives */
};

/* The window of kind w that contains now_ns (UTC nanoseconds, >= 0). */
void budget_window_of(enum budget_window w, int64_t now_ns, struct budget_span *out);

/* What a budget matches a call on. NULL fields read as "". */
struct budget_call {
	const char *agent;
	const char *agent_type;
	const char *tenant;
	const char *model;    /* the model the request asked for */
	const char *provider; /* the record's provider name */
};

/* A record's strings, NUL-terminated, for budget_call_of_record. */
struct budget_call_buf {
	char agent[RECORD_STR_MAX + 1], agent_type[RECORD_STR_MAX + 1];
	char tenant[RECORD_STR_MAX + 1], model[RECORD_STR_MAX + 1];
	char provider[RECORD_STR_MAX + 1];
};

/* The call a record describes (model: the requested one, else the response's); c's strings
 * point into buf. */
void budget_call_of_record(const struct record *r, struct budget_call_buf *buf,
			   struct budget_call *c);

/* Does budget b cover call c (its scope's value matches the glob)? */
int budget_matches(const struct budget *b, const struct budget_call *c);

/* A call's usage as budgets count it: total tokens, and its cost (0 when unpriced or local). */
void budget_record_usage(const struct pricing *p, const struct record *r, int64_t *tokens,
			 int64_t *pusd);

/*
 * The output tokens a request body asks for at most: max_tokens, max_completion_tokens,
 * max_output_tokens, Gemini's generationConfig.maxOutputTokens, Ollama's options.num_predict,
 * Bedrock's inferenceConfig.maxTokens. -1 when it names none (or is not JSON).
 */
int64_t budget_max_output(const char *body, size_t len);

/* The cost estimate of a request before it is sent (docs/budgets.md, "The estimate"). */
struct budget_estimate {
	int64_t input_tokens;  /* usage_estimate_tokens(request body bytes) */
	int64_t output_tokens; /* max_output, else BUDGET_DEFAULT_OUTPUT_TOKENS */
	int64_t tokens;
	int64_t pusd;          /* priced by the table; 0 when the model has no price */
};

void budget_estimate_call(const struct pricing *p, const char *provider, const char *model,
			  uint64_t body_bytes, int64_t max_output, struct budget_estimate *e);

/* The budgets one call falls under, as the store takes them. Big (tens of KiB): allocate it. */
struct budget_plan {
	size_t n;
	struct store_budget sb[BUDGET_MAX];
	const struct budget *budget[BUDGET_MAX]; /* sb[i] stands for budget[i] */
	struct budget_span span[BUDGET_MAX];
	char base[BUDGET_MAX][BUDGET_BASE_MAX + 1];
	/* what seeding a counter needs (sb[i].seed_arg points here) */
	struct budget_seed {
		const struct budget *b;
		const struct pricing *pricing;
		const char *tenant;
	} seed[BUDGET_MAX];
	char tenant[BUDGET_TENANT_MAX + 1];
};

/*
 * Fills pl with every budget of s that covers c in the windows containing now_ns: counter
 * bases, windows, caps (block budgets) and warn levels; estimates and usage zero. p prices
 * records while seeding. pl keeps pointers to s and p: both must outlive it.
 */
void budget_plan_make(struct budget_plan *pl, const struct budget_set *s,
		      const struct pricing *p, const struct budget_call *c, int64_t now_ns);

/* Starts an empty plan for a call of tenant (NULL: none), then adds budget b whatever it
 * matches (at most BUDGET_MAX; more are ignored): what `budget status` reads. */
void budget_plan_init(struct budget_plan *pl, const char *tenant);
void budget_plan_add(struct budget_plan *pl, const struct budget *b, const struct pricing *p,
		     int64_t now_ns);

/* The counter base of budget b for a tenant in window span ("budget:{key}:{scope}:{match}:
 * {tenant}"), into buf of cap bytes (cut to fit). */
void budget_counter_base(const struct budget *b, const struct budget_span *span,
			 const char *tenant, char *buf, size_t cap);

/* store_seed_fn over a struct budget_seed: the record counts when its tenant is the seed's
 * and the budget matches it. */
int budget_seed_record(const struct record *rec, void *arg, int64_t *tokens, int64_t *pusd);

/*
 * The message of a blocked call, naming the budget, its window, the spend and the cap, into buf
 * (cap bytes, NUL-terminated, cut to fit): sb is the refused budget as the store filled it,
 * tenant the call's (may be NULL).
 */
void budget_block_message(char *buf, size_t cap, const struct budget *b,
			  const struct store_budget *sb, const struct budget_span *span,
			  const char *tenant);

/* Seconds from now_ns until the window ends (at least 1): the Retry-After of a block. */
int64_t budget_retry_after(const struct budget_span *span, int64_t now_ns);

/*
 * The whole HTTP/1.1 429 response an agent reads for a blocked call, in the error shape of the
 * provider family ("anthropic", "gemini"; any other: OpenAI's), with Retry-After,
 * Content-Type, Content-Length and Connection: close. Returns a malloc'd buffer (freed by the
 * caller) and its length in *len, or NULL when out of memory.
 */
char *budget_response_429(const char *family, const char *message, int64_t retry_after_s,
			  size_t *len);

#endif
