/*
 * pimport.c - price lists of LiteLLM and OpenRouter turned into our schema, and the atomic
 * merge into the user override file (see pimport.h).
 *
 * Every price goes from the list's decimal text to integer pico-USD and back to decimal text
 * in our unit, so no binary rounding is added on the way: the override file says exactly what
 * the list said, scaled.
 */
#include "analyzer/pimport.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "providers/pjson.h"
#include "providers/pricing.h"

/* Decimal exponents: USD to pico-USD; pico-USD per token to USD per 1M tokens. */
#define PIMPORT_PUSD 12
#define PIMPORT_PER_M 6

static void pimport_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void pimport_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
}

const char *pimport_schema_name(enum pimport_schema s)
{
	const char *name = "tokshim";

	if (s == PIMPORT_LITELLM)
		name = "LiteLLM";
	else if (s == PIMPORT_OPENROUTER)
		name = "OpenRouter";
	return name;
}

/* A USD amount given as a JSON number or a decimal string, to pico-USD. Returns 1 when read,
 * 0 when absent or null, -1 when present but not a non-negative amount (OpenRouter writes
 * "-1" for a price that varies). */
static int pimport_usd(const cJSON *o, const char *key, int64_t *pusd)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	char text[64];
	int r = 0;

	if (v == NULL || cJSON_IsNull(v))
		goto done;
	r = -1;
	if (cJSON_IsNumber(v))
		snprintf(text, sizeof text, "%.15g", v->valuedouble);
	else if (cJSON_IsString(v))
		snprintf(text, sizeof text, "%s", v->valuestring);
	else
		goto done;
	if (pricing_decimal(text, PIMPORT_PUSD, pusd) == 0)
		r = 1;
done:
	return r;
}

/* Adds key = v / 10^digits as a number whose decimal text is exact (at most 15 significant
 * digits survive cJSON's printing and pricing.c's reading unchanged). Returns 0 or -1. */
static int pimport_put(cJSON *o, const char *key, int64_t v, int digits)
{
	char text[48];
	int64_t unit = 1;
	int i;

	for (i = 0; i < digits; i++)
		unit *= 10;
	snprintf(text, sizeof text, "%" PRId64 ".%0*" PRId64, v / unit, digits, v % unit);
	return cJSON_AddNumberToObject(o, key, strtod(text, NULL)) ? 0 : -1;
}

/* The four token prices, pico-USD per token. */
struct pimport_four {
	int64_t input, output, cache_read, cache_write;
	int has_read, has_write;
};

/* Writes input/output/cache_read/cache_write (USD per 1M) of f into o. */
static int pimport_put_four(cJSON *o, const struct pimport_four *f)
{
	int rc = pimport_put(o, "input", f->input, PIMPORT_PER_M);

	rc |= pimport_put(o, "output", f->output, PIMPORT_PER_M);
	if (f->has_read)
		rc |= pimport_put(o, "cache_read", f->cache_read, PIMPORT_PER_M);
	if (f->has_write)
		rc |= pimport_put(o, "cache_write", f->cache_write, PIMPORT_PER_M);
	return rc;
}

/* A new model object of our schema: provider and the four token prices. NULL when out of
 * memory. */
static cJSON *pimport_model_new(const char *provider, const struct pimport_four *f)
{
	cJSON *o = cJSON_CreateObject();

	if (o != NULL &&
	    (!cJSON_AddStringToObject(o, "provider", provider) || pimport_put_four(o, f) != 0)) {
		cJSON_Delete(o);
		o = NULL;
	}
	return o;
}

/* Adds name = model to models unless a model of that name is already there (the list's
 * first entry for a name wins). Frees model when it is not added. */
static void pimport_add(cJSON *models, const char *name, cJSON *model)
{
	if (cJSON_GetObjectItemCaseSensitive(models, name) != NULL ||
	    strlen(name) >= PRICING_NAME_MAX || !cJSON_AddItemToObject(models, name, model))
		cJSON_Delete(model);
}

/* LiteLLM's provider names, ours, and whether the host resells other makers' models (then
 * the model is keyed "<ours>/<name>"). */
static const struct {
	const char *litellm, *ours;
	int resold;
} pimport_providers[] = {
	{"openai", "openai", 0},
	{"text-completion-openai", "openai", 0},
	{"anthropic", "anthropic", 0},
	{"gemini", "gcp.gemini", 0},
	{"mistral", "mistral_ai", 0},
	{"codestral", "mistral_ai", 0},
	{"deepseek", "deepseek", 0},
	{"xai", "x_ai", 0},
	{"perplexity", "perplexity", 0},
	{"cohere", "cohere", 0},
	{"cohere_chat", "cohere", 0},
	{"groq", "groq", 1},
	{"together_ai", "together", 1},
	{"fireworks_ai", "fireworks", 1},
	{"openrouter", "openrouter", 1},
	{"bedrock", "aws.bedrock", 1},
	{"bedrock_converse", "aws.bedrock", 1},
	{"azure", "azure.ai.openai", 1},
	{"vertex_ai", "gcp.vertex_ai", 1},
};

/* Our provider for a LiteLLM provider name ("vertex_ai-language-models" is vertex_ai), or
 * -1 when we do not know it. */
static int pimport_provider(const char *litellm)
{
	size_t i, n;
	int found = -1;

	for (i = 0; i < sizeof pimport_providers / sizeof pimport_providers[0] && found < 0; i++) {
		n = strlen(pimport_providers[i].litellm);
		if (strncmp(litellm, pimport_providers[i].litellm, n) == 0 &&
		    (litellm[n] == '\0' || (litellm[n] == '-' && pimport_providers[i].resold)))
			found = (int)i;
	}
	return found;
}

/* Reads the *_above_Nk_tokens tier of a LiteLLM model into o's "long_context". */
static int pimport_litellm_tier(const cJSON *m, const struct pimport_four *base, cJSON *o)
{
	static const char prefix[] = "input_cost_per_token_above_";
	const cJSON *it;
	struct pimport_four f = *base;
	char key[96];
	cJSON *lc;
	long k = 0;
	int rc = 0;

	cJSON_ArrayForEach(it, m) {
		char *end;
		if (k == 0 && strncmp(it->string, prefix, sizeof prefix - 1) == 0) {
			k = strtol(it->string + sizeof prefix - 1, &end, 10);
			if (strcmp(end, "k_tokens") != 0 || k <= 0 || k > 100000)
				k = 0;
		}
	}
	if (k == 0)
		goto done;
	snprintf(key, sizeof key, "input_cost_per_token_above_%ldk_tokens", k);
	if (pimport_usd(m, key, &f.input) != 1)
		goto done;
	snprintf(key, sizeof key, "output_cost_per_token_above_%ldk_tokens", k);
	pimport_usd(m, key, &f.output);
	snprintf(key, sizeof key, "cache_read_input_token_cost_above_%ldk_tokens", k);
	if (pimport_usd(m, key, &f.cache_read) == 1)
		f.has_read = 1;
	snprintf(key, sizeof key, "cache_creation_input_token_cost_above_%ldk_tokens", k);
	if (pimport_usd(m, key, &f.cache_write) == 1)
		f.has_write = 1;
	lc = cJSON_AddObjectToObject(o, "long_context");
	rc = lc && cJSON_AddNumberToObject(lc, "threshold", (double)k * 1000) ? 0 : -1;
	if (rc == 0)
		rc = pimport_put_four(lc, &f);
done:
	return rc;
}

/* Perplexity's per-request search fee by context size, as LiteLLM gives it. */
static int pimport_litellm_search(const cJSON *m, cJSON *o)
{
	static const char *const sizes[] = {"low", "medium", "high"};
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(m, "search_context_cost_per_query");
	char key[64];
	cJSON *ctx = NULL;
	int64_t fee;
	size_t i;
	int rc = 0;

	if (!cJSON_IsObject(q))
		goto done;
	for (i = 0; i < 3 && rc == 0; i++) {
		snprintf(key, sizeof key, "search_context_size_%s", sizes[i]);
		if (pimport_usd(q, key, &fee) != 1)
			continue;
		if (ctx == NULL)
			ctx = cJSON_AddObjectToObject(o, "request_by_context");
		rc = ctx ? pimport_put(ctx, sizes[i], fee, PIMPORT_PUSD) : -1;
	}
done:
	return rc;
}

/* One LiteLLM model into models (skipped when it is not a priced text model we can name). */
static int pimport_litellm_model(const cJSON *m, cJSON *models)
{
	static const char *const modes[] = {"chat", "completion", "responses", "embedding", NULL};
	const char *mode = pjson_str(m, "mode"), *prov = pjson_str(m, "litellm_provider");
	const char *name = m->string, *slash = strchr(m->string, '/');
	struct pimport_four f = {0};
	char key[2 * PRICING_NAME_MAX], prefix[32];
	cJSON *o = NULL;
	size_t i;
	int ok = mode == NULL, pi, pp, rc = 0;

	for (i = 0; mode != NULL && modes[i] != NULL; i++)
		ok |= strcmp(mode, modes[i]) == 0;
	pi = prov ? pimport_provider(prov) : -1;
	if (!ok || pi < 0 || pimport_usd(m, "input_cost_per_token", &f.input) != 1 ||
	    pimport_usd(m, "output_cost_per_token", &f.output) < 0)
		goto done;
	f.has_read = pimport_usd(m, "cache_read_input_token_cost", &f.cache_read) == 1;
	f.has_write = pimport_usd(m, "cache_creation_input_token_cost", &f.cache_write) == 1;
	/* "groq/llama-3.3-70b-versatile": the prefix names the provider, not the model. */
	if (slash != NULL && (size_t)(slash - m->string) < sizeof prefix) {
		snprintf(prefix, sizeof prefix, "%.*s", (int)(slash - m->string), m->string);
		pp = pimport_provider(prefix);
		if (pp >= 0 && strcmp(pimport_providers[pp].ours, pimport_providers[pi].ours) == 0)
			name = slash + 1;
	}
	if (pimport_providers[pi].resold)
		snprintf(key, sizeof key, "%s/%s", pimport_providers[pi].ours, name);
	else
		snprintf(key, sizeof key, "%s", name);
	o = pimport_model_new(pimport_providers[pi].ours, &f);
	rc = o == NULL || pimport_litellm_tier(m, &f, o) != 0 || pimport_litellm_search(m, o) != 0
		     ? -1
		     : 0;
	if (rc == 0)
		pimport_add(models, key, o);
	else
		cJSON_Delete(o);
done:
	return rc;
}

/* One OpenRouter model (data[i]) into models as "openrouter/<id>". */
static int pimport_openrouter_model(const cJSON *m, cJSON *models)
{
	const cJSON *pr = cJSON_GetObjectItemCaseSensitive(m, "pricing");
	const char *id = pjson_str(m, "id");
	struct pimport_four f = {0};
	char key[2 * PRICING_NAME_MAX];
	cJSON *o = NULL;
	int64_t request = 0;
	int rc = 0;

	if (id == NULL || id[0] == '\0' || !cJSON_IsObject(pr) ||
	    pimport_usd(pr, "prompt", &f.input) != 1 || pimport_usd(pr, "completion", &f.output) != 1)
		goto done;
	f.has_read = pimport_usd(pr, "input_cache_read", &f.cache_read) == 1;
	f.has_write = pimport_usd(pr, "input_cache_write", &f.cache_write) == 1;
	if (pimport_usd(pr, "request", &request) < 0)
		goto done;
	snprintf(key, sizeof key, "openrouter/%s", id);
	o = pimport_model_new("openrouter", &f);
	rc = o == NULL || (request > 0 && pimport_put(o, "request", request, PIMPORT_PUSD) != 0)
		     ? -1
		     : 0;
	if (rc == 0)
		pimport_add(models, key, o);
	else
		cJSON_Delete(o);
done:
	return rc;
}

/* Is root LiteLLM's shape: an object some member of which is a model with a LiteLLM key? */
static int pimport_is_litellm(const cJSON *root)
{
	const cJSON *it;
	int yes = 0;

	cJSON_ArrayForEach(it, root) {
		if (cJSON_IsObject(it) &&
		    (cJSON_GetObjectItemCaseSensitive(it, "litellm_provider") != NULL ||
		     cJSON_GetObjectItemCaseSensitive(it, "input_cost_per_token") != NULL))
			yes = 1;
	}
	return yes;
}

int pimport_convert(const char *json, size_t len, cJSON **models, enum pimport_schema *schema,
		    char *err, size_t errlen)
{
	cJSON *root = pjson_parse(json, len), *out = NULL;
	const cJSON *it, *data;
	struct pricing *check = NULL;
	int rc = -1;

	*models = NULL;
	if (!cJSON_IsObject(root)) {
		pimport_errf(err, errlen, "not a JSON object");
		goto done;
	}
	data = cJSON_GetObjectItemCaseSensitive(root, "data");
	if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "models"))) {
		*schema = PIMPORT_OURS;
		/* Checked whole here so that a bad list never reaches the override file. */
		if (pricing_parse(&check, json, len, err, errlen) != 0)
			goto done;
		out = cJSON_DetachItemFromObjectCaseSensitive(root, "models");
	} else if (cJSON_IsArray(data)) {
		*schema = PIMPORT_OPENROUTER;
		out = cJSON_CreateObject();
		cJSON_ArrayForEach(it, data) {
			if (out != NULL && pimport_openrouter_model(it, out) != 0)
				goto nomem;
		}
	} else if (pimport_is_litellm(root)) {
		*schema = PIMPORT_LITELLM;
		out = cJSON_CreateObject();
		cJSON_ArrayForEach(it, root) {
			if (out != NULL && cJSON_IsObject(it) && pimport_litellm_model(it, out) != 0)
				goto nomem;
		}
	} else {
		pimport_errf(err, errlen, "neither a LiteLLM, an OpenRouter nor a tokshim price list");
		goto done;
	}
	if (out == NULL)
		goto nomem;
	if (cJSON_GetArraySize(out) == 0) {
		pimport_errf(err, errlen, "no priced model in this %s price list",
			     pimport_schema_name(*schema));
		goto done;
	}
	*models = out;
	out = NULL;
	rc = 0;
	goto done;
nomem:
	pimport_errf(err, errlen, "out of memory");
done:
	pricing_free(check);
	cJSON_Delete(out);
	cJSON_Delete(root);
	return rc;
}

/* A growable buffer for libcurl's body, capped at PIMPORT_MAX. */
struct pimport_buf {
	char *p;
	size_t n, cap;
	int too_big;
};

static size_t pimport_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct pimport_buf *b = arg;
	size_t n = size * nmemb, cap;
	char *grown;

	if (n > PIMPORT_MAX - b->n) {
		b->too_big = 1;
		n = 0; /* anything short of size*nmemb makes curl stop with an error */
		goto done;
	}
	if (b->n + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 65536;
		while (cap < b->n + n + 1)
			cap *= 2;
		grown = realloc(b->p, cap);
		if (grown == NULL) {
			n = 0;
			goto done;
		}
		b->p = grown;
		b->cap = cap;
	}
	memcpy(b->p + b->n, data, n);
	b->n += n;
	b->p[b->n] = '\0';
done:
	return n;
}

static int pimport_fetch(const char *url, struct pimport_buf *b, char *err, size_t errlen)
{
	CURL *c = curl_easy_init();
	CURLcode cc;
	long status = 0;
	int rc = -1;

	if (c == NULL) {
		pimport_errf(err, errlen, "cannot fetch '%s': cannot start libcurl", url);
		goto done;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "tokshim-pricing-update");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, pimport_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (b->too_big)
		pimport_errf(err, errlen, "cannot fetch '%s': larger than %u MiB", url,
			     PIMPORT_MAX >> 20);
	else if (cc != CURLE_OK)
		pimport_errf(err, errlen, "cannot fetch '%s': %s", url, curl_easy_strerror(cc));
	else if (status < 200 || status >= 300)
		pimport_errf(err, errlen, "cannot fetch '%s': HTTP status %ld", url, status);
	else
		rc = 0;
	curl_easy_cleanup(c);
done:
	return rc;
}

static int pimport_read_file(const char *path, struct pimport_buf *b, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char chunk[65536];
	size_t got;
	int rc = -1;

	if (f == NULL) {
		pimport_errf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		goto done;
	}
	do {
		got = fread(chunk, 1, sizeof chunk, f);
		if (got > 0 && pimport_body(chunk, 1, got, b) != got) {
			pimport_errf(err, errlen, "cannot read '%s': %s", path,
				     b->too_big ? "larger than the 32 MiB cap" : "out of memory");
			goto close;
		}
	} while (got > 0);
	if (ferror(f)) {
		pimport_errf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
		goto close;
	}
	rc = 0;
close:
	fclose(f);
done:
	return rc;
}

int pimport_read(const char *src, char **data, size_t *len, char *err, size_t errlen)
{
	struct pimport_buf b = {0};
	int rc;

	*data = NULL;
	*len = 0;
	if (strncmp(src, "http://", 7) == 0 || strncmp(src, "https://", 8) == 0)
		rc = pimport_fetch(src, &b, err, errlen);
	else
		rc = pimport_read_file(src, &b, err, errlen);
	if (rc == 0 && b.p == NULL) {
		pimport_errf(err, errlen, "'%s' is empty", src);
		rc = -1;
	}
	if (rc == 0) {
		*data = b.p;
		*len = b.n;
	} else {
		free(b.p);
	}
	return rc;
}

static int pimport_name_cmp(const void *a, const void *b)
{
	return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

/* Makes the skeleton of a new override document. */
static cJSON *pimport_new_doc(void)
{
	cJSON *doc = cJSON_CreateObject();

	if (doc != NULL &&
	    (!cJSON_AddStringToObject(doc, "_comment",
				      "tokshim price overrides (docs/pricing.md); merged over the "
				      "built-in table, model by model") ||
	     !cJSON_AddStringToObject(doc, "currency", "USD") ||
	     !cJSON_AddStringToObject(doc, "unit", "per 1M tokens") ||
	     !cJSON_AddObjectToObject(doc, "models"))) {
		cJSON_Delete(doc);
		doc = NULL;
	}
	return doc;
}

/* Adds source to doc.sources unless it is there, and sets doc.taken. */
static int pimport_note_source(cJSON *doc, const char *source, const char *taken_date)
{
	cJSON *sources = cJSON_GetObjectItemCaseSensitive(doc, "sources"), *it, *s;
	int rc = -1;

	if (sources == NULL)
		sources = cJSON_AddArrayToObject(doc, "sources");
	if (!cJSON_IsArray(sources))
		goto done;
	cJSON_ArrayForEach(it, sources) {
		if (cJSON_IsString(it) && strcmp(it->valuestring, source) == 0) {
			rc = 0;
			goto taken;
		}
	}
	s = cJSON_CreateString(source);
	if (s == NULL || !cJSON_AddItemToArray(sources, s)) {
		cJSON_Delete(s);
		goto done;
	}
	rc = 0;
taken:
	s = cJSON_CreateString(taken_date);
	if (s == NULL || (cJSON_GetObjectItemCaseSensitive(doc, "taken")
				  ? !cJSON_ReplaceItemInObjectCaseSensitive(doc, "taken", s)
				  : !cJSON_AddItemToObject(doc, "taken", s))) {
		cJSON_Delete(s);
		rc = -1;
	}
done:
	return rc;
}

int pimport_merge(cJSON **doc, cJSON *models, const char *source, const char *taken_date,
		  pimport_change_fn fn, void *arg, char *err, size_t errlen)
{
	cJSON **v = NULL, *have, *before, *c;
	size_t n = (size_t)cJSON_GetArraySize(models), i;
	int rc = -1;

	if (*doc == NULL)
		*doc = pimport_new_doc();
	if (*doc == NULL)
		goto nomem;
	have = cJSON_GetObjectItemCaseSensitive(*doc, "models");
	if (!cJSON_IsObject(have)) {
		pimport_errf(err, errlen, "models: missing, or not an object of models");
		goto done;
	}
	v = calloc(n ? n : 1, sizeof *v);
	if (v == NULL)
		goto nomem;
	for (i = 0; i < n; i++)
		v[i] = cJSON_DetachItemViaPointer(models, models->child);
	qsort(v, n, sizeof *v, pimport_name_cmp);
	for (i = 0; i < n; i++) {
		cJSON *after = v[i];
		before = cJSON_GetObjectItemCaseSensitive(have, after->string);
		if (before == NULL) {
			if (fn)
				fn(after->string, PIMPORT_ADDED, NULL, after, arg);
			if (!cJSON_AddItemToObject(have, after->string, after))
				goto nomem;
		} else {
			if (fn)
				fn(after->string,
				   cJSON_Compare(before, after, 1) ? PIMPORT_SAME : PIMPORT_CHANGED,
				   before, after, arg);
			/* The "_" comments a person wrote on a model are kept. */
			cJSON_ArrayForEach(c, before) {
				if (c->string[0] == '_' &&
				    !cJSON_GetObjectItemCaseSensitive(after, c->string))
					cJSON_AddItemToObject(after, c->string,
							      cJSON_Duplicate(c, 1));
			}
			if (!cJSON_ReplaceItemViaPointer(have, before, after))
				goto nomem;
		}
		v[i] = NULL;
	}
	if (pimport_note_source(*doc, source, taken_date) != 0)
		goto nomem;
	rc = 0;
	goto done;
nomem:
	pimport_errf(err, errlen, "out of memory");
done:
	for (i = 0; v != NULL && i < n; i++)
		cJSON_Delete(v[i]);
	free(v);
	cJSON_Delete(models);
	return rc;
}

/* mkdir -p of path's folder (mode 0700). */
static int pimport_mkdirs(const char *path)
{
	char dir[4096], *s;
	int rc = 0;

	snprintf(dir, sizeof dir, "%s", path);
	s = strrchr(dir, '/');
	if (s == NULL || s == dir)
		goto done;
	*s = '\0';
	for (s = dir + 1; *s != '\0'; s++) {
		if (*s == '/') {
			*s = '\0';
			if (mkdir(dir, 0700) != 0 && errno != EEXIST)
				rc = -1;
			*s = '/';
		}
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		rc = -1;
done:
	return rc;
}

int pimport_write_atomic(const char *path, const char *text, char *err, size_t errlen)
{
	char tmp[4200];
	struct stat st;
	size_t len = strlen(text), off = 0;
	mode_t mode = 0644;
	ssize_t w;
	int fd, rc = -1;

	if (stat(path, &st) == 0)
		mode = st.st_mode & 07777;
	if (pimport_mkdirs(path) != 0) {
		pimport_errf(err, errlen, "cannot create the folder of '%s': %s", path,
			     strerror(errno));
		goto done;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		pimport_errf(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
		goto done;
	}
	while (off < len) {
		w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off < len || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
		pimport_errf(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
		close(fd);
		goto unlink_tmp;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		pimport_errf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
		goto unlink_tmp;
	}
	rc = 0;
	goto done;
unlink_tmp:
	unlink(tmp);
done:
	return rc;
}
