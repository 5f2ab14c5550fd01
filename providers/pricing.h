/*
 * pricing.h - prices per model, and the cost of a record.
 *
 * Cost is computed when a report is made, never stored: a price update re-prices history.
 * Prices are held as integer pico-USD per token so that sums over millions of records are
 * exact to the micro-dollar and independent of summation order.
 *
 * The built-in table is providers/pricing.json, compiled into the binaries; a user override
 * file ($TOKSHIM_PRICING, else $XDG_CONFIG_HOME/tokshim/pricing.json, else
 * ~/.config/tokshim/pricing.json) is merged over it, model by model.
 */
#ifndef TOKSHIM_PRICING_H
#define TOKSHIM_PRICING_H

#include <stddef.h>
#include <stdint.h>

#include "store/record.h"

struct price {
	int64_t input;       /* pico-USD per uncached input token */
	int64_t output;      /* pico-USD per output token (reasoning included) */
	int64_t cache_read;  /* pico-USD per input token read from cache */
	int64_t cache_write; /* pico-USD per input token written to cache (5-minute lifetime) */
	int64_t cache_write_1h; /* pico-USD per input token written to cache for one hour */
	/* Long-context tier: when a call's input_tokens exceed long_threshold (0: no tier), the
	 * long_* prices apply to the whole call. */
	int64_t long_threshold;
	int64_t long_input, long_output, long_cache_read, long_cache_write, long_cache_write_1h;
	/* Service tiers: the token cost of a call the response reports as served at tier t
	 * (enum record_tier) is multiplied by tier_ppb[t - RECORD_TIER_FLEX] / 10^9 when that is
	 * set (> 0): flex, priority, scale. The default tier and an unset one cost the table's
	 * prices. */
	int64_t tier_ppb[3];
	/* Fees that do not scale with tokens (Perplexity's search). request is pico-USD per
	 * successful call (2xx, no error); request_by_context[c - 1] replaces it when the record's
	 * search_context is c (RECORD_SEARCH_LOW … HIGH) and that price is set (> 0). search is
	 * pico-USD per search query the response reports (record.search_queries). */
	int64_t request;
	int64_t request_by_context[3];
	int64_t search;
};

/* Model names longer than this are never priced. */
#define PRICING_NAME_MAX 256

/* Where a price came from, and under which name it was found (pricing_lookup_match). */
struct pricing_match {
	const char *entry;    /* the table's model (an alias resolved to its model) */
	const char *key;      /* the name that hit: the entry or an alias, maybe "provider/…" */
	const char *provider; /* the entry's provider, or NULL */
	const char *source;   /* "built-in", or the path of the file that set this price */
	char tried[PRICING_NAME_MAX]; /* the name after normalisation, as last looked up */
};

struct pricing;

/* Error codes of pricing_* (0 is success). */
#define PRICING_EFORMAT (-1) /* a document that is not the pricing.json schema */
#define PRICING_ENOMEM (-2)
#define PRICING_EIO (-3)     /* the override file named by TOKSHIM_PRICING cannot be read */

/*
 * Converts a decimal number's text (digits, optional fraction, optional exponent; no sign)
 * to value × 10^scale, rounded half up at the last integer digit, with integer arithmetic
 * only. Returns 0, or -1 when the text is not such a number or the result does not fit.
 * "2.5e-06" with scale 12 is 2500000 (USD per token to pico-USD per token).
 */
int pricing_decimal(const char *text, int scale, int64_t *out);

/* A static description of a PRICING_E* code. */
const char *pricing_strerror(int code);

/* Loads the built-in table and merges the user override file when one exists. On a malformed
 * override, returns a negative code and writes a one-line reason naming the file and field to
 * err. *out is NULL on error. */
int pricing_load(struct pricing **out, char *err, size_t errlen);

/* Parses a pricing document (the pricing.json schema) into a new table; for tests and `pricing
 * list`. Returns 0 or a negative code with a reason in err. */
int pricing_parse(struct pricing **out, const char *json, size_t len, char *err, size_t errlen);

/* Merges the models of json over p (same schema). source names the document for `pricing
 * list` (copied; NULL: "(merged)"). On error p is unchanged. */
int pricing_merge(struct pricing *p, const char *json, size_t len, const char *source, char *err,
		  size_t errlen);

void pricing_free(struct pricing *p);

/* The date the built-in prices were taken ("YYYY-MM-DD"), static. */
const char *pricing_taken(const struct pricing *p);

/*
 * The user override file's path into buf (cap bytes): $TOKSHIM_PRICING, else
 * $XDG_CONFIG_HOME/tokshim/pricing.json, else ~/.config/tokshim/pricing.json. Returns 1 when
 * TOKSHIM_PRICING named it (it must then exist), 0 for a default location (absent is fine),
 * -1 when there is none (no HOME).
 */
int pricing_user_path(char *buf, size_t cap);

/*
 * The price of a model, after normalising its name the way users write it: case, a
 * "provider/" prefix, a dated snapshot suffix (-2024-08-06, -20250929), Bedrock's region
 * and vendor prefixes and version suffix (us.anthropic.…-v1:0). provider may be used to choose
 * between same-named models. Returns NULL when the model has no price (unpriced: never $0).
 * The pointer is valid until p is freed.
 */
const struct price *pricing_lookup(const struct pricing *p, const char *provider,
				   size_t provider_len, const char *model, size_t model_len);

/* pricing_lookup that also tells, in *m (may be NULL), which entry priced the model and where
 * its price came from (entry, key, provider, source NULL when unpriced; tried always set).
 * m's pointers are valid until p is freed. */
const struct price *pricing_lookup_match(const struct pricing *p, const char *provider,
					 size_t provider_len, const char *model, size_t model_len,
					 struct pricing_match *m);

/*
 * A model name reduced to what identifies the model, for comparing two names: lowercased,
 * without a "provider/" prefix, Bedrock's region and vendor prefixes and version suffix, and
 * every dated snapshot suffix (gpt-4o-2024-08-06 and openai/GPT-4o are both "gpt-4o"). Writes
 * a NUL-terminated name to out and returns its length; 0 (and "") for a name longer than
 * PRICING_NAME_MAX - 1 or with an embedded NUL.
 */
size_t pricing_normalise(const char *model, size_t len, char out[PRICING_NAME_MAX]);

/* A cost split by what it pays for, in pico-USD. other holds what tokens do not explain: the
 * per-request and search fees, and a provider-billed cost (which comes unsplit). */
struct pricing_parts {
	int64_t input;  /* uncached input tokens */
	int64_t output; /* output tokens, reasoning included */
	int64_t cache;  /* cache reads and cache writes */
	int64_t other;
};

/* The cost of a record in pico-USD under price pr (cached tokens at cache prices; the billed
 * units instead of the tokens when the record has them (RECORD_BILLED_UNITS); one-hour cache
 * writes at cache_write_1h; the service tier's multiplier). */
int64_t pricing_cost_pusd(const struct price *pr, const struct record *r);

/* pricing_cost_pusd split into its parts; their sum (pricing_parts_sum, saturating) is it. */
void pricing_cost_parts(const struct price *pr, const struct record *r, struct pricing_parts *out);
int64_t pricing_parts_sum(const struct pricing_parts *parts);

/* pricing_record_cost split into parts (all zero for local and unbilled calls; a billed cost
 * in other). Returns 1 when priced, 0 when the model has no price (parts then all zero). */
int pricing_record_parts(const struct pricing *p, const struct record *r,
			 struct pricing_parts *parts);

/* The two halves of pricing_record_parts, for callers that remember prices per model: the
 * table price of the record's model (the answered one, else the one asked for; NULL when
 * unpriced), whether the record needs one at all (not local, unbilled or provider-billed), and
 * the parts given that price (pr may be NULL when the record needs none). The price depends
 * only on the record's provider, model and model_requested. */
const struct price *pricing_record_price(const struct pricing *p, const struct record *r);
int pricing_record_needs_price(const struct record *r);
int pricing_record_parts_at(const struct price *pr, const struct record *r,
			    struct pricing_parts *parts);

/*
 * The cost of a record: 0 for local records, the provider's billed cost where it sent one,
 * else by the table. Returns 1 and sets *pusd when the record is priced, 0 when its model has
 * no price.
 */
int pricing_record_cost(const struct pricing *p, const struct record *r, int64_t *pusd);

/* One model of the table, as `pricing list` shows it. Strings are valid until p is freed. */
struct pricing_entry {
	const char *model;
	const char *provider; /* may be NULL */
	const char *source;   /* "built-in" or the file that set it */
	const struct price *price;
};

/* Calls fn for each model (aliases not included) in name order, stopping at fn's first
 * non-zero return, which is returned. */
typedef int (*pricing_model_fn)(const struct pricing_entry *e, void *arg);
int pricing_each(const struct pricing *p, pricing_model_fn fn, void *arg);

/* Calls fn for each alias of model (exact table name), in name order; e->model is the alias. */
int pricing_each_alias(const struct pricing *p, const char *model, pricing_model_fn fn,
		       void *arg);

#endif
