/*
 * pricing.c - the price table and the cost of a record.
 *
 * pricing.json schema (the built-in providers/pricing.json and a user override share it):
 *
 *   {
 *     "taken": "YYYY-MM-DD",          date the prices were read off the providers' pages
 *     "currency": "USD",              only USD
 *     "unit": "per 1M tokens",        every price is USD per million tokens
 *     "sources": [ "…" ],             free text, ignored
 *     "models": {
 *       "gpt-4o": {
 *         "provider": "openai",       optional; informational, shown by `pricing list`
 *         "input": 2.5,               required: uncached input
 *         "output": 10,               required: output, reasoning included
 *         "cache_read": 1.25,         optional, default = input
 *         "cache_write": 0,           optional, default = input (5-minute cache writes)
 *         "cache_write_1h": 6,        optional: one-hour cache writes; default 2 x input for
 *                                     provider "anthropic", else = cache_write
 *         "long_context": {           optional tier: when a call's input_tokens > threshold
 *           "threshold": 200000,      the tier's prices apply to the whole call
 *           "input": 6, "output": 22.5, "cache_read": 0.6, "cache_write": 7.5,
 *           "cache_write_1h": 12      (defaults as above, from the tier's own prices)
 *         },
 *         "service_tiers": {          optional: multipliers of the token cost of a call the
 *           "flex": 0.5, "priority": 2, "scale": 1     response reports at that tier
 *         },
 *         "aliases": ["…"],           optional other names of the same model and price
 *         "request": 0.005,           optional: USD per successful call (a flat fee)
 *         "request_by_context": {     optional: USD per successful call by the search context
 *           "low": 0.005, "medium": 0.008, "high": 0.012    size the record carries
 *         },
 *         "search": 0.005             optional: USD per search query the response reports
 *       }, …
 *     }
 *   }
 *
 * Keys starting with "_" are comments, anywhere. Any other unknown key is an error: a typo in
 * an override ("cache_raed") would otherwise silently price at the default. A model key may
 * be "provider/name" to price one provider's model apart from a same-named one elsewhere;
 * lookup tries that form first.
 *
 * Prices are held as integer pico-USD per token: USD per 1M tokens × 10^6, so 0.075 $/M is
 * exactly 75000; the per-call fees are USD per call × 10^12; tier multipliers are parts per
 * billion (× 10^9). cJSON reads numbers as doubles; the double is printed back with 15 significant
 * digits, which reproduces the decimal text of any number written with at most 15, and that
 * decimal is converted with integer arithmetic. So no double rounding reaches a price.
 *
 * Name lookup (pricing_lookup) tries, in order, and returns the first hit: the name as given;
 * lowercased without a "vendor/" prefix; without Bedrock's region ("us.", "eu.", "apac.",
 * "global." …), vendor ("anthropic.") prefixes and version suffix ("-v1:0"); then each time a
 * snapshot suffix (-2024-08-06, -20250929, @20240620, -08-2024, -2411, -001, -latest, -v2) is
 * cut. Only whole suffixes of those shapes are cut, so gpt-4o-mini-2024-07-18 prices as
 * gpt-4o-mini and never as gpt-4o. Local records cost 0; calls marked not billed cost 0.
 */
#include "providers/pricing.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "providers/pjson.h"

/* The built-in table, generated from providers/pricing.json by scripts/embed.sh. */
extern const unsigned char pricing_json[];
extern const size_t pricing_json_len;

#define PRICING_FILE_MAX (16u << 20)
/* A price above this (USD per 1M tokens, or per request) is a typo, not a price. */
#define PRICING_USD_MAX 1000000
/* Decimal exponents from the document's units to pico-USD: USD per 1M tokens to pico-USD per
 * token is x 10^6; USD per request (or per search) to pico-USD is x 10^12. */
#define PRICING_PER_TOKEN 6
#define PRICING_PER_CALL 12
#define PRICING_PER_RATIO 9
#define PRICING_BUILTIN "built-in"
#define PRICING_MERGED "(merged)"

struct pricing_model {
	char *name;
	char *provider; /* may be NULL */
	char *target;   /* an alias: the name of the model it prices as; NULL otherwise */
	const char *source; /* one of pricing.sources */
	struct price price;
};

struct pricing {
	struct pricing_model *m; /* sorted by name (strcmp) */
	size_t n, cap;
	char **sources; /* names of the documents merged, owned; models point into them */
	size_t nsources;
	char taken[16];
};

const char *pricing_strerror(int code)
{
	const char *s = "unknown pricing error";

	if (code == 0)
		s = "success";
	else if (code == PRICING_EFORMAT)
		s = "malformed pricing file";
	else if (code == PRICING_ENOMEM)
		s = "out of memory";
	else if (code == PRICING_EIO)
		s = "cannot read pricing file";
	return s;
}

static void pricing_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void pricing_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
}

int pricing_decimal(const char *s, int scale, int64_t *out)
{
	uint64_t mant = 0;
	int exp10 = scale, digits = 0, rc = -1;
	long e = 0;

	for (; isdigit((unsigned char)*s); s++, digits++) {
		if (mant > (UINT64_MAX - 9) / 10)
			goto done;
		mant = mant * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, digits++) {
			if (mant > (UINT64_MAX - 9) / 10)
				goto done;
			mant = mant * 10 + (uint64_t)(*s - '0');
			exp10--;
		}
	}
	if (digits == 0)
		goto done;
	if (*s == 'e' || *s == 'E') {
		char *end;
		errno = 0;
		e = strtol(s + 1, &end, 10);
		if (end == s + 1 || errno != 0 || e > 100 || e < -100)
			goto done;
		s = end;
	}
	if (*s != '\0')
		goto done;
	exp10 += (int)e;
	for (; exp10 > 0; exp10--) {
		if (mant > (uint64_t)INT64_MAX / 10)
			goto done;
		mant *= 10;
	}
	if (exp10 < 0) {
		uint64_t div = 1;
		for (; exp10 < 0 && div <= UINT64_MAX / 10; exp10++)
			div *= 10;
		/* 10^20 and beyond exceed any 17-digit mantissa: the value rounds to 0. */
		mant = exp10 < 0 ? 0 : mant / div + (mant % div >= (div + 1) / 2);
	}
	if (mant > (uint64_t)INT64_MAX)
		goto done;
	*out = (int64_t)mant;
	rc = 0;
done:
	return rc;
}

/* Reads a JSON number member (USD per 1M tokens, or per call: scale is PRICING_PER_*) as
 * pico-USD. Returns 1 when read, 0 when absent, -1 (with err naming path.key) when present
 * but not a valid price. */
static int pricing_read_scaled(const cJSON *o, const char *key, const char *path, int scale,
			       int64_t *out, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	char text[64];
	int r = 0;

	if (v == NULL)
		goto done;
	r = -1;
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > PRICING_USD_MAX) {
		pricing_errf(err, errlen, "%s.%s: not a %s", path, key,
			     scale == PRICING_PER_TOKEN ? "price (a number of USD per 1M tokens)"
			     : scale == PRICING_PER_CALL ? "price (a number of USD per call)"
							 : "multiplier (a number)");
		goto done;
	}
	snprintf(text, sizeof text, "%.15g", v->valuedouble);
	if (pricing_decimal(text, scale, out) != 0) {
		pricing_errf(err, errlen, "%s.%s: price %s cannot be held exactly", path, key,
			     text);
		goto done;
	}
	r = 1;
done:
	return r;
}

static int pricing_check_keys(const cJSON *o, const char *const *allowed, const char *path,
			      char *err, size_t errlen);

static int pricing_read_price(const cJSON *o, const char *key, const char *path, int64_t *out,
			      char *err, size_t errlen)
{
	return pricing_read_scaled(o, key, path, PRICING_PER_TOKEN, out, err, errlen);
}

/* Reads the optional object member key of o whose members are the numbers named by keys
 * (NULL-terminated; out has room for one per key), each scaled (PRICING_PER_*) into out[i];
 * an absent member leaves out[i] as it is. Returns 0 or PRICING_EFORMAT. */
static int pricing_read_group(const cJSON *o, const char *key, const char *const *keys,
			      int scale, const char *path, int64_t *out, char *err, size_t errlen)
{
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, key);
	char gpath[PRICING_NAME_MAX + 64];
	size_t i;
	int rc = PRICING_EFORMAT;

	if (g != NULL) {
		snprintf(gpath, sizeof gpath, "%s.%s", path, key);
		if (!cJSON_IsObject(g)) {
			pricing_errf(err, errlen, "%s: not an object", gpath);
			goto done;
		}
		if (pricing_check_keys(g, keys, gpath, err, errlen) != 0)
			goto done;
		for (i = 0; keys[i] != NULL; i++) {
			if (pricing_read_scaled(g, keys[i], gpath, scale, &out[i], err, errlen) < 0)
				goto done;
		}
	}
	rc = 0;
done:
	return rc;
}

/* Reads the per-call fees of a model: request, request_by_context {low, medium, high},
 * search (USD per call or query). Returns 0 or PRICING_EFORMAT. */
static int pricing_read_fees(const cJSON *o, const char *path, struct price *pr, char *err,
			     size_t errlen)
{
	static const char *const ctx_keys[] = {"low", "medium", "high", NULL};
	int rc = PRICING_EFORMAT;

	if (pricing_read_scaled(o, "request", path, PRICING_PER_CALL, &pr->request, err,
				errlen) < 0 ||
	    pricing_read_scaled(o, "search", path, PRICING_PER_CALL, &pr->search, err, errlen) < 0)
		goto done;
	rc = pricing_read_group(o, "request_by_context", ctx_keys, PRICING_PER_CALL, path,
				pr->request_by_context, err, errlen);
done:
	return rc;
}

/* Rejects a key of o that is not in allowed (NULL-terminated) and not a "_" comment. */
static int pricing_check_keys(const cJSON *o, const char *const *allowed, const char *path,
			      char *err, size_t errlen)
{
	const cJSON *it;
	size_t i;
	int rc = 0;

	cJSON_ArrayForEach(it, o) {
		int known = it->string[0] == '_';
		for (i = 0; !known && allowed[i] != NULL; i++)
			known = strcmp(it->string, allowed[i]) == 0;
		if (!known) {
			pricing_errf(err, errlen, "%s.%s: unknown field", path, it->string);
			rc = PRICING_EFORMAT;
			break;
		}
	}
	return rc;
}

/* Reads input/output/cache_read/cache_write of o; cache prices default to the input price. */
static int pricing_read_four(const cJSON *o, const char *path, int64_t *input, int64_t *output,
			     int64_t *cache_read, int64_t *cache_write, char *err, size_t errlen)
{
	int rc = PRICING_EFORMAT, r;

	if (pricing_read_price(o, "input", path, input, err, errlen) != 1 ||
	    pricing_read_price(o, "output", path, output, err, errlen) != 1) {
		if (cJSON_GetObjectItemCaseSensitive(o, "input") == NULL ||
		    cJSON_GetObjectItemCaseSensitive(o, "output") == NULL)
			pricing_errf(err, errlen, "%s: needs both \"input\" and \"output\"", path);
		goto done;
	}
	r = pricing_read_price(o, "cache_read", path, cache_read, err, errlen);
	if (r < 0)
		goto done;
	if (r == 0)
		*cache_read = *input;
	r = pricing_read_price(o, "cache_write", path, cache_write, err, errlen);
	if (r < 0)
		goto done;
	if (r == 0)
		*cache_write = *input;
	rc = 0;
done:
	return rc;
}

/* Reads cache_write_1h of o into *out. Absent, one-hour writes cost 2 x input for an
 * Anthropic entry (its prompt-caching table) and the cache_write price for any other. Returns
 * 0 or PRICING_EFORMAT. */
static int pricing_read_1h(const cJSON *o, const char *path, int anthropic, int64_t input,
			   int64_t cache_write, int64_t *out, char *err, size_t errlen)
{
	int r = pricing_read_price(o, "cache_write_1h", path, out, err, errlen);

	if (r == 0)
		*out = anthropic ? 2 * input : cache_write; /* input <= PRICING_USD_MAX x 10^6 */
	return r < 0 ? PRICING_EFORMAT : 0;
}

/* Reads service_tiers {flex, priority, scale} (multipliers) of o into pr->tier_ppb. Returns 0
 * or PRICING_EFORMAT. */
static int pricing_read_tiers(const cJSON *o, const char *path, struct price *pr, char *err,
			      size_t errlen)
{
	static const char *const tier_keys[] = {"flex", "priority", "scale", NULL};

	_Static_assert(RECORD_TIER_SCALE - RECORD_TIER_FLEX + 1 == 3, "tier_ppb: one per tier");
	return pricing_read_group(o, "service_tiers", tier_keys, PRICING_PER_RATIO, path,
				  pr->tier_ppb, err, errlen);
}

static int pricing_read_model(const cJSON *o, const char *path, struct price *pr, char *err,
			      size_t errlen)
{
	static const char *const model_keys[] = {
		"provider", "input",   "output",	     "cache_read", "cache_write",
		"cache_write_1h", "long_context", "aliases", "request", "request_by_context",
		"search",   "service_tiers", NULL};
	static const char *const long_keys[] = {"threshold",   "input",	      "output",
						"cache_read",  "cache_write", "cache_write_1h",
						NULL};
	const cJSON *lc, *th, *provider = cJSON_GetObjectItemCaseSensitive(o, "provider");
	const cJSON *aliases = cJSON_GetObjectItemCaseSensitive(o, "aliases"), *a;
	char lpath[PRICING_NAME_MAX + 32];
	int rc = PRICING_EFORMAT, anthropic;

	memset(pr, 0, sizeof *pr);
	if (!cJSON_IsObject(o)) {
		pricing_errf(err, errlen, "%s: not an object", path);
		goto done;
	}
	if (pricing_check_keys(o, model_keys, path, err, errlen) != 0)
		goto done;
	if (provider != NULL && !cJSON_IsString(provider)) {
		pricing_errf(err, errlen, "%s.provider: not a string", path);
		goto done;
	}
	if (aliases != NULL && !cJSON_IsArray(aliases)) {
		pricing_errf(err, errlen, "%s.aliases: not an array of names", path);
		goto done;
	}
	cJSON_ArrayForEach(a, aliases) {
		if (!cJSON_IsString(a) || a->valuestring[0] == '\0' ||
		    strlen(a->valuestring) >= PRICING_NAME_MAX) {
			pricing_errf(err, errlen, "%s.aliases: not an array of names", path);
			goto done;
		}
	}
	anthropic = cJSON_IsString(provider) && strcmp(provider->valuestring, "anthropic") == 0;
	if (pricing_read_four(o, path, &pr->input, &pr->output, &pr->cache_read,
			      &pr->cache_write, err, errlen) != 0 ||
	    pricing_read_1h(o, path, anthropic, pr->input, pr->cache_write, &pr->cache_write_1h,
			    err, errlen) != 0 ||
	    pricing_read_fees(o, path, pr, err, errlen) != 0 ||
	    pricing_read_tiers(o, path, pr, err, errlen) != 0)
		goto done;
	lc = cJSON_GetObjectItemCaseSensitive(o, "long_context");
	if (lc == NULL) {
		rc = 0;
		goto done;
	}
	snprintf(lpath, sizeof lpath, "%s.long_context", path);
	if (!cJSON_IsObject(lc)) {
		pricing_errf(err, errlen, "%s: not an object", lpath);
		goto done;
	}
	if (pricing_check_keys(lc, long_keys, lpath, err, errlen) != 0)
		goto done;
	th = cJSON_GetObjectItemCaseSensitive(lc, "threshold");
	if (!cJSON_IsNumber(th) || th->valuedouble < 1 || th->valuedouble > 1e12 ||
	    th->valuedouble != (double)(int64_t)th->valuedouble) {
		pricing_errf(err, errlen, "%s.threshold: not a positive whole number of tokens",
			     lpath);
		goto done;
	}
	pr->long_threshold = (int64_t)th->valuedouble;
	rc = pricing_read_four(lc, lpath, &pr->long_input, &pr->long_output, &pr->long_cache_read,
			       &pr->long_cache_write, err, errlen);
	if (rc == 0)
		rc = pricing_read_1h(lc, lpath, anthropic, pr->long_input, pr->long_cache_write,
				     &pr->long_cache_write_1h, err, errlen);
done:
	return rc;
}

static int pricing_model_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pricing_model *)a)->name,
		      ((const struct pricing_model *)b)->name);
}

static void pricing_model_release(struct pricing_model *m)
{
	free(m->name);
	free(m->provider);
	free(m->target);
	memset(m, 0, sizeof *m);
}

static struct pricing_model *pricing_find(const struct pricing *p, const char *name)
{
	struct pricing_model key = {.name = (char *)name};

	return p->n == 0 ? NULL : bsearch(&key, p->m, p->n, sizeof *p->m, pricing_model_cmp);
}

/* Appends (unsorted) a new model built from the given parts, taking copies. */
static int pricing_push(struct pricing *p, const char *name, const char *provider,
			const char *target, const char *source, const struct price *pr)
{
	struct pricing_model *m;
	int rc = PRICING_ENOMEM;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		m = realloc(p->m, cap * sizeof *m);
		if (m == NULL)
			goto done;
		p->m = m;
		p->cap = cap;
	}
	m = &p->m[p->n];
	memset(m, 0, sizeof *m);
	m->name = strdup(name);
	m->provider = provider ? strdup(provider) : NULL;
	m->target = target ? strdup(target) : NULL;
	if (m->name == NULL || (provider && m->provider == NULL) || (target && !m->target)) {
		pricing_model_release(m);
		goto done;
	}
	m->price = *pr;
	m->source = source;
	p->n++;
	rc = 0;
done:
	return rc;
}

/* Removes the models named like any in [from, n) from [0, from), then sorts the table. Later
 * entries win: that is what "merged model by model" means. */
static void pricing_settle(struct pricing *p, size_t from)
{
	size_t i, j, w = 0;

	for (i = 0; i < from; i++) {
		int replaced = 0;
		for (j = from; j < p->n && !replaced; j++)
			replaced = strcmp(p->m[i].name, p->m[j].name) == 0;
		if (replaced)
			pricing_model_release(&p->m[i]);
		else
			p->m[w++] = p->m[i];
	}
	for (i = from; i < p->n; i++)
		p->m[w++] = p->m[i];
	p->n = w;
	if (p->n > 0) /* no models, no array: qsort must not be handed NULL */
		qsort(p->m, p->n, sizeof *p->m, pricing_model_cmp);
}

/* Reads the document's models into p (after its current models, unsorted), and checks the
 * top level. Leaves p as it was on error. */
static int pricing_read_doc(struct pricing *p, const cJSON *root, const char *source,
			    int builtin, char *err, size_t errlen)
{
	static const char *const top_keys[] = {"taken", "currency", "unit", "sources", "notes",
					       "models", NULL};
	const cJSON *models, *it, *a;
	const char *s;
	size_t start = p->n, i;
	int rc = PRICING_EFORMAT;

	if (!cJSON_IsObject(root)) {
		pricing_errf(err, errlen, "not a JSON object");
		goto done;
	}
	if (pricing_check_keys(root, top_keys, "(top)", err, errlen) != 0)
		goto done;
	s = pjson_str(root, "currency");
	if (cJSON_GetObjectItemCaseSensitive(root, "currency") != NULL &&
	    (s == NULL || strcmp(s, "USD") != 0)) {
		pricing_errf(err, errlen, "currency: only \"USD\" is supported");
		goto done;
	}
	s = pjson_str(root, "unit");
	if (cJSON_GetObjectItemCaseSensitive(root, "unit") != NULL &&
	    (s == NULL || strcmp(s, "per 1M tokens") != 0)) {
		pricing_errf(err, errlen, "unit: only \"per 1M tokens\" is supported");
		goto done;
	}
	s = pjson_str(root, "taken");
	if (builtin && s != NULL)
		snprintf(p->taken, sizeof p->taken, "%s", s);
	models = cJSON_GetObjectItemCaseSensitive(root, "models");
	if (!cJSON_IsObject(models)) {
		pricing_errf(err, errlen, "models: missing, or not an object of models");
		goto done;
	}
	cJSON_ArrayForEach(it, models) {
		struct price pr;
		char path[PRICING_NAME_MAX + 16];
		const char *provider = pjson_str(it, "provider");

		if (it->string[0] == '_')
			continue;
		if (it->string[0] == '\0' || strlen(it->string) >= PRICING_NAME_MAX) {
			pricing_errf(err, errlen, "models: a model name is empty or too long");
			goto undo;
		}
		snprintf(path, sizeof path, "models.%s", it->string);
		rc = pricing_read_model(it, path, &pr, err, errlen);
		if (rc != 0)
			goto undo;
		rc = pricing_push(p, it->string, provider, NULL, source, &pr);
		cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(it, "aliases")) {
			if (rc == 0)
				rc = pricing_push(p, a->valuestring, provider, it->string, source,
						  &pr);
		}
		if (rc != 0)
			goto undo;
	}
	if (p->n > start) /* an empty table has no array yet: p->m + 0 on NULL is undefined */
		qsort(p->m + start, p->n - start, sizeof *p->m, pricing_model_cmp);
	for (i = start + 1; i < p->n; i++) {
		if (strcmp(p->m[i - 1].name, p->m[i].name) == 0) {
			pricing_errf(err, errlen, "models.%s: named twice (as a model or alias)",
				     p->m[i].name);
			rc = PRICING_EFORMAT;
			goto undo;
		}
	}
	pricing_settle(p, start);
	rc = 0;
	goto done;
undo:
	while (p->n > start)
		pricing_model_release(&p->m[--p->n]);
	if (rc == PRICING_ENOMEM)
		pricing_errf(err, errlen, "out of memory");
done:
	return rc;
}

/* Keeps a copy of a document's name in p, for its models to point at. NULL when out of
 * memory. */
static const char *pricing_add_source(struct pricing *p, const char *source)
{
	char **grown = realloc(p->sources, (p->nsources + 1) * sizeof *grown);
	const char *kept = NULL;

	if (grown == NULL)
		goto done;
	p->sources = grown;
	grown[p->nsources] = strdup(source);
	if (grown[p->nsources] != NULL)
		kept = grown[p->nsources++];
done:
	return kept;
}

static int pricing_merge_doc(struct pricing *p, const char *json, size_t len, const char *source,
			     int builtin, char *err, size_t errlen)
{
	cJSON *root = pjson_parse(json, len);
	const char *kept;
	int rc = PRICING_EFORMAT;

	if (root == NULL) {
		pricing_errf(err, errlen, "not valid JSON");
		goto done;
	}
	kept = pricing_add_source(p, source);
	if (kept == NULL) {
		pricing_errf(err, errlen, "out of memory");
		rc = PRICING_ENOMEM;
		goto free_root;
	}
	rc = pricing_read_doc(p, root, kept, builtin, err, errlen);
free_root:
	cJSON_Delete(root);
done:
	return rc;
}

int pricing_parse(struct pricing **out, const char *json, size_t len, char *err, size_t errlen)
{
	struct pricing *p = calloc(1, sizeof *p);
	int rc = PRICING_ENOMEM;

	*out = NULL;
	if (p == NULL) {
		pricing_errf(err, errlen, "out of memory");
		goto done;
	}
	rc = pricing_merge_doc(p, json, len, PRICING_BUILTIN, 1, err, errlen);
	if (rc != 0) {
		pricing_free(p);
		goto done;
	}
	*out = p;
done:
	return rc;
}

int pricing_merge(struct pricing *p, const char *json, size_t len, const char *source, char *err,
		  size_t errlen)
{
	return pricing_merge_doc(p, json, len, source ? source : PRICING_MERGED, 0, err, errlen);
}

void pricing_free(struct pricing *p)
{
	size_t i;

	if (p != NULL) {
		for (i = 0; i < p->n; i++)
			pricing_model_release(&p->m[i]);
		for (i = 0; i < p->nsources; i++)
			free(p->sources[i]);
		free(p->sources);
		free(p->m);
		free(p);
	}
}

const char *pricing_taken(const struct pricing *p)
{
	return p->taken;
}

int pricing_user_path(char *buf, size_t cap)
{
	const char *env = getenv("TOKSHIM_PRICING"), *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int r = -1;

	if (env != NULL && env[0] != '\0') {
		snprintf(buf, cap, "%s", env);
		r = 1;
	} else if (xdg != NULL && xdg[0] != '\0') {
		snprintf(buf, cap, "%s/tokshim/pricing.json", xdg);
		r = 0;
	} else if (home != NULL && home[0] != '\0') {
		snprintf(buf, cap, "%s/.config/tokshim/pricing.json", home);
		r = 0;
	}
	return r;
}

/* Reads a whole file (capped) into a malloc'd buffer. Returns 0, -ENOENT when it does not
 * exist, PRICING_EIO or PRICING_ENOMEM otherwise (errno kept in *err_no). */
static int pricing_read_file(const char *path, char **data, size_t *len, int *err_no)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0, got;
	int rc = PRICING_EIO;

	*data = NULL;
	*err_no = 0;
	if (f == NULL) {
		*err_no = errno;
		rc = errno == ENOENT ? -ENOENT : PRICING_EIO;
		goto done;
	}
	do {
		if (n == cap) {
			char *nb;
			if (cap >= PRICING_FILE_MAX) {
				*err_no = EFBIG;
				goto close;
			}
			cap = cap ? cap * 2 : 4096;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				rc = PRICING_ENOMEM;
				*err_no = ENOMEM;
				goto close;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	if (ferror(f)) {
		*err_no = EIO;
		goto close;
	}
	*data = buf;
	*len = n;
	buf = NULL;
	rc = 0;
close:
	free(buf);
	fclose(f);
done:
	return rc;
}

int pricing_load(struct pricing **out, char *err, size_t errlen)
{
	struct pricing *p = NULL;
	char path[4096], reason[512];
	char *data = NULL;
	size_t len = 0;
	int rc, explicit, err_no;

	*out = NULL;
	rc = pricing_parse(&p, (const char *)pricing_json, pricing_json_len, reason,
			   sizeof reason);
	if (rc != 0) {
		pricing_errf(err, errlen, "built-in pricing table: %s", reason);
		goto done;
	}
	explicit = pricing_user_path(path, sizeof path);
	if (explicit < 0)
		goto loaded;
	rc = pricing_read_file(path, &data, &len, &err_no);
	if (rc == -ENOENT && !explicit) {
		rc = 0;
		goto loaded;
	}
	if (rc != 0) {
		if (rc == -ENOENT)
			rc = PRICING_EIO;
		pricing_errf(err, errlen, "cannot read pricing file '%s': %s", path,
			     strerror(err_no));
		goto free_table;
	}
	rc = pricing_merge(p, data, len, path, reason, sizeof reason);
	free(data);
	if (rc != 0) {
		pricing_errf(err, errlen, "pricing file '%s': %s", path, reason);
		goto free_table;
	}
loaded:
	*out = p;
	goto done;
free_table:
	pricing_free(p);
done:
	return rc;
}

/* Looks name up, following an alias to its model; fills m (when not NULL) on a hit. */
static const struct price *pricing_get(const struct pricing *p, const char *name,
				       struct pricing_match *m)
{
	const struct pricing_model *hit = pricing_find(p, name), *entry = hit;

	if (entry != NULL && entry->target != NULL)
		entry = pricing_find(p, entry->target);
	if (entry != NULL && m != NULL) {
		m->entry = entry->name;
		m->key = hit->name;
		m->provider = entry->provider;
		m->source = entry->source;
	}
	return entry ? &entry->price : NULL;
}

/* Tries "provider/name" (when a provider is given), then name. Records name in m->tried. */
static const struct price *pricing_try(const struct pricing *p, const char *provider,
				       size_t provider_len, const char *name,
				       struct pricing_match *m)
{
	char key[2 * PRICING_NAME_MAX];
	const struct price *pr = NULL;

	if (m != NULL)
		snprintf(m->tried, sizeof m->tried, "%s", name);
	if (provider != NULL && provider_len > 0 && provider_len < PRICING_NAME_MAX) {
		snprintf(key, sizeof key, "%.*s/%s", (int)provider_len, provider, name);
		pr = pricing_get(p, key, m);
	}
	if (pr == NULL)
		pr = pricing_get(p, name, m);
	return pr;
}

static int pricing_all_digits(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && isdigit((unsigned char)s[i]))
		i++;
	return i == n;
}

/* The start of the run of digits that ends at s[n-1] (n when s[n-1] is not a digit). */
static size_t pricing_digits_back(const char *s, size_t n)
{
	while (n > 0 && isdigit((unsigned char)s[n - 1]))
		n--;
	return n;
}

/* The length of a version suffix "-vN:M", "-vN" or ":N" at the end of s[0..n), or 0. */
static size_t pricing_version_suffix(const char *s, size_t n)
{
	size_t j = pricing_digits_back(s, n), k, len = 0;

	if (j == n || j == 0)
		goto done;
	if (s[j - 1] == ':') {
		len = n - (j - 1); /* ":0" */
		k = pricing_digits_back(s, j - 1);
		if (k < j - 1 && k >= 2 && s[k - 1] == 'v' && s[k - 2] == '-')
			len = n - (k - 2); /* "-v1:0" */
	} else if (j >= 2 && s[j - 1] == 'v' && s[j - 2] == '-') {
		len = n - (j - 2); /* "-v2" */
	}
done:
	return len;
}

/*
 * The length of a snapshot suffix at the end of s[0..n), or 0: -latest, @anything,
 * -YYYY-MM-DD, -YYYYMMDD, -MM-YYYY, -NNNN (-2411, -0613), -00N, and a version (-v2, -v1:0).
 */
static size_t pricing_snapshot_suffix(const char *s, size_t n)
{
	const char *at = memrchr(s, '@', n);
	size_t len = 0;

	if (at != NULL && at > s) {
		len = n - (size_t)(at - s);
	} else if (n > 7 && memcmp(s + n - 7, "-latest", 7) == 0) {
		len = 7;
	} else if (n > 11 && s[n - 11] == '-' && s[n - 6] == '-' && s[n - 3] == '-' &&
		   pricing_all_digits(s + n - 10, 4) && pricing_all_digits(s + n - 5, 2) &&
		   pricing_all_digits(s + n - 2, 2)) {
		len = 11; /* -2024-08-06 */
	} else if (n > 9 && s[n - 9] == '-' && pricing_all_digits(s + n - 8, 8)) {
		len = 9; /* -20250929 */
	} else if (n > 8 && s[n - 8] == '-' && s[n - 5] == '-' && pricing_all_digits(s + n - 7, 2) &&
		   pricing_all_digits(s + n - 4, 4)) {
		len = 8; /* -08-2024 (Cohere) */
	} else if (n > 5 && s[n - 5] == '-' && pricing_all_digits(s + n - 4, 4)) {
		len = 5; /* -2411 (Mistral), -0613 (OpenAI) */
	} else if (n > 4 && s[n - 4] == '-' && s[n - 3] == '0' && s[n - 2] == '0' &&
		   isdigit((unsigned char)s[n - 1])) {
		len = 4; /* -001 (Gemini) */
	} else {
		len = pricing_version_suffix(s, n);
	}
	return len < n ? len : 0;
}

/* Strips one of the listed prefixes from s in place; returns 1 when one was. */
static int pricing_strip_prefix(char *s, const char *const *prefixes)
{
	size_t i, plen;
	int stripped = 0;

	for (i = 0; prefixes[i] != NULL && !stripped; i++) {
		plen = strlen(prefixes[i]);
		if (strncmp(s, prefixes[i], plen) == 0 && s[plen] != '\0') {
			memmove(s, s + plen, strlen(s + plen) + 1);
			stripped = 1;
		}
	}
	return stripped;
}

/* The region and vendor prefixes of Bedrock model ids (us.anthropic.claude-…-v1:0). */
static const char *const pricing_regions[] = {"us.", "eu.", "apac.", "global.", "us-gov.",
					      "jp.", "au.", "ca.", NULL};
static const char *const pricing_vendors[] = {"anthropic.", "meta.", "amazon.", "mistral.",
					      "cohere.", "ai21.", "deepseek.", "openai.", "qwen.",
					      "google.", "writer.", NULL};

size_t pricing_normalise(const char *model, size_t len, char out[PRICING_NAME_MAX])
{
	const char *slash;
	size_t i, n = 0, cut;

	if (model == NULL || len >= PRICING_NAME_MAX || memchr(model, '\0', len) != NULL)
		goto done;
	for (i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)model[i]);
	out[len] = '\0';
	slash = strrchr(out, '/');
	if (slash != NULL && slash[1] != '\0')
		memmove(out, slash + 1, strlen(slash + 1) + 1);
	if (pricing_strip_prefix(out, pricing_regions) | pricing_strip_prefix(out, pricing_vendors)) {
		n = strlen(out);
		out[n - pricing_version_suffix(out, n)] = '\0';
	}
	n = strlen(out);
	cut = pricing_snapshot_suffix(out, n);
	while (cut > 0) {
		n -= cut;
		out[n] = '\0';
		cut = pricing_snapshot_suffix(out, n);
	}
done:
	out[n] = '\0';
	return n;
}

const struct price *pricing_lookup(const struct pricing *p, const char *provider,
				   size_t provider_len, const char *model, size_t model_len)
{
	return pricing_lookup_match(p, provider, provider_len, model, model_len, NULL);
}

const struct price *pricing_lookup_match(const struct pricing *p, const char *provider,
					 size_t provider_len, const char *model, size_t model_len,
					 struct pricing_match *m)
{
	char name[PRICING_NAME_MAX];
	const struct price *pr = NULL;
	const char *slash;
	size_t i, n, cut;

	if (m != NULL)
		memset(m, 0, sizeof *m);
	if (p == NULL || model == NULL || model_len == 0 || model_len >= sizeof name)
		goto done;
	memcpy(name, model, model_len);
	name[model_len] = '\0';
	if (strlen(name) != model_len)
		goto done; /* an embedded NUL: not a model name */
	pr = pricing_try(p, provider, provider_len, name, m);
	if (pr != NULL)
		goto done;
	for (i = 0; i < model_len; i++)
		name[i] = (char)tolower((unsigned char)name[i]);
	slash = strrchr(name, '/');
	if (slash != NULL && slash[1] != '\0')
		memmove(name, slash + 1, strlen(slash + 1) + 1);
	pr = pricing_try(p, provider, provider_len, name, m);
	if (pr != NULL)
		goto done;
	/* Bedrock: us.anthropic.claude-sonnet-4-5-20250929-v1:0 */
	cut = pricing_strip_prefix(name, pricing_regions);
	cut |= pricing_strip_prefix(name, pricing_vendors);
	if (cut) {
		n = strlen(name);
		name[n - pricing_version_suffix(name, n)] = '\0';
		pr = pricing_try(p, provider, provider_len, name, m);
	}
	n = strlen(name);
	cut = pricing_snapshot_suffix(name, n);
	while (pr == NULL && cut > 0) {
		n -= cut;
		name[n] = '\0';
		pr = pricing_try(p, provider, provider_len, name, m);
		cut = pricing_snapshot_suffix(name, n);
	}
done:
	return pr;
}

/* a × b, saturating: one absurd record must not wrap a sum negative. The overflow flag of
 * the multiplication rather than a test against INT64_MAX / b: a report prices every record,
 * and a 64-bit division each of six times a record cost more than the rest of the pricing. */
static int64_t pricing_mul(int64_t a, int64_t b)
{
	int64_t r = 0;

	if (a > 0 && b > 0 && __builtin_mul_overflow(a, b, &r))
		r = INT64_MAX;
	return r;
}

static int64_t pricing_add(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* The per-call fee of a successful call: the search context's price where one is set, else
 * the flat request price. Failed calls are not charged. */
static int64_t pricing_request_fee(const struct price *pr, const struct record *r)
{
	int64_t fee = 0;
	int ok = r->error.n == 0 && r->status >= 200 && r->status < 300;

	if (ok) {
		fee = pr->request;
		if (r->search_context >= RECORD_SEARCH_LOW && r->search_context <= RECORD_SEARCH_HIGH &&
		    pr->request_by_context[r->search_context - 1] > 0)
			fee = pr->request_by_context[r->search_context - 1];
	}
	return fee;
}

/* part x ppb / 10^9, rounded half up, saturating (a multiplier above 1 can overflow). */
static int64_t pricing_scale(int64_t part, int64_t ppb)
{
	__int128 v = ((__int128)part * ppb + 500000000) / 1000000000;

	return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* The multiplier (parts per billion) of the service tier r reports, 0 when none applies. */
static int64_t pricing_tier_ppb(const struct price *pr, const struct record *r)
{
	int t = r->service_tier;

	return t >= RECORD_TIER_FLEX && t <= RECORD_TIER_SCALE ? pr->tier_ppb[t - RECORD_TIER_FLEX]
							       : 0;
}

void pricing_cost_parts(const struct price *pr, const struct record *r, struct pricing_parts *out)
{
	int64_t in = r->input_tokens, cr = r->cache_read_tokens, cw = r->cache_write_tokens;
	int64_t cw1h = r->cache_write_1h_tokens, tokens_out = r->output_tokens;
	int64_t p_in = pr->input, p_out = pr->output, p_cr = pr->cache_read, p_cw = pr->cache_write;
	int64_t p_cw1h = pr->cache_write_1h, ppb = pricing_tier_ppb(pr, r);

	/* What the provider says it charges (Cohere's billed units) is what is priced: its
	 * units have no cache split. */
	if (r->flags & RECORD_BILLED_UNITS) {
		in = r->billed_input_tokens;
		tokens_out = r->billed_output_tokens;
		cr = cw = cw1h = 0;
	}
	if (pr->long_threshold > 0 && in > pr->long_threshold) {
		p_in = pr->long_input;
		p_out = pr->long_output;
		p_cr = pr->long_cache_read;
		p_cw = pr->long_cache_write;
		p_cw1h = pr->long_cache_write_1h;
	}
	cr = cr > 0 ? cr : 0;
	cw = cw > 0 ? cw : 0;
	cw1h = cw1h > 0 ? (cw1h < cw ? cw1h : cw) : 0; /* a part of the cache writes */
	out->input = pricing_mul(in - cr - cw, p_in);
	out->cache = pricing_add(pricing_mul(cr, p_cr),
				 pricing_add(pricing_mul(cw - cw1h, p_cw), pricing_mul(cw1h, p_cw1h)));
	out->output = pricing_mul(tokens_out, p_out);
	if (ppb > 0) {
		out->input = pricing_scale(out->input, ppb);
		out->cache = pricing_scale(out->cache, ppb);
		out->output = pricing_scale(out->output, ppb);
	}
	out->other = pricing_add(pricing_request_fee(pr, r),
				 pricing_mul(r->search_queries, pr->search));
}

int64_t pricing_parts_sum(const struct pricing_parts *parts)
{
	int64_t cost = pricing_add(parts->input, parts->output);

	cost = pricing_add(cost, parts->cache);
	return pricing_add(cost, parts->other);
}

int64_t pricing_cost_pusd(const struct price *pr, const struct record *r)
{
	struct pricing_parts parts;

	pricing_cost_parts(pr, r, &parts);
	return pricing_parts_sum(&parts);
}

const struct price *pricing_record_price(const struct pricing *p, const struct record *r)
{
	const struct price *pr = NULL;

	if (r->model.n > 0)
		pr = pricing_lookup(p, r->provider.p, r->provider.n, r->model.p, r->model.n);
	if (pr == NULL && r->model_requested.n > 0)
		pr = pricing_lookup(p, r->provider.p, r->provider.n, r->model_requested.p,
				    r->model_requested.n);
	return pr;
}

int pricing_record_needs_price(const struct record *r)
{
	return (r->flags & (RECORD_LOCAL | RECORD_NOT_BILLED | RECORD_BILLED)) == 0;
}

int pricing_record_parts_at(const struct price *pr, const struct record *r,
			    struct pricing_parts *parts)
{
	int priced = 1;

	memset(parts, 0, sizeof *parts);
	if (r->flags & (RECORD_LOCAL | RECORD_NOT_BILLED))
		goto done;
	if (r->flags & RECORD_BILLED) {
		parts->other = r->billed_cost_pusd;
		goto done;
	}
	if (pr == NULL) {
		priced = 0;
		goto done;
	}
	pricing_cost_parts(pr, r, parts);
done:
	return priced;
}

int pricing_record_parts(const struct pricing *p, const struct record *r,
			 struct pricing_parts *parts)
{
	const struct price *pr = pricing_record_needs_price(r) ? pricing_record_price(p, r) : NULL;

	return pricing_record_parts_at(pr, r, parts);
}

int pricing_record_cost(const struct pricing *p, const struct record *r, int64_t *pusd)
{
	struct pricing_parts parts;
	int priced = pricing_record_parts(p, r, &parts);

	if (priced)
		*pusd = pricing_parts_sum(&parts);
	return priced;
}

/* The entry of model m, for the iterators. */
static void pricing_entry_of(const struct pricing_model *m, struct pricing_entry *e)
{
	e->model = m->name;
	e->provider = m->provider;
	e->source = m->source;
	e->price = &m->price;
}

int pricing_each(const struct pricing *p, pricing_model_fn fn, void *arg)
{
	struct pricing_entry e;
	size_t i;
	int rc = 0;

	for (i = 0; i < p->n && rc == 0; i++) {
		if (p->m[i].target == NULL) {
			pricing_entry_of(&p->m[i], &e);
			rc = fn(&e, arg);
		}
	}
	return rc;
}

int pricing_each_alias(const struct pricing *p, const char *model, pricing_model_fn fn,
		       void *arg)
{
	struct pricing_entry e;
	size_t i;
	int rc = 0;

	for (i = 0; i < p->n && rc == 0; i++) {
		if (p->m[i].target != NULL && strcmp(p->m[i].target, model) == 0) {
			pricing_entry_of(&p->m[i], &e);
			rc = fn(&e, arg);
		}
	}
	return rc;
}
