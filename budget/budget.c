/*
 * budget.c - the budget file, windows, matching, estimates and the 429 of a blocked call.
 *
 * cJSON reports neither line numbers nor positions of values, yet a user fixing a budget file
 * needs the line. A syntax error's line comes from the offset where cJSON stopped; a semantic
 * error's from a small scan of the text that finds the n-th element of the "budgets" array and
 * the key inside it (budget_key_line), so messages point at the field the user must change.
 */
#include "budget/budget.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "providers/pjson.h"
#include "providers/provider.h"

static const char *const scope_names[] = { "agent", "agent_type", "tenant", "model", "provider",
					   "system" };
static const char *const window_names[] = { "daily", "weekly", "monthly" };

const char *budget_scope_name(enum budget_scope s)
{
	return scope_names[s];
}

const char *budget_window_name(enum budget_window w)
{
	return window_names[w];
}

/* ---- the file ------------------------------------------------------------------------------ */

/* Line (1-based) of text offset off. */
static int budget_line_of(const char *text, size_t len, size_t off)
{
	int line = 1;

	for (size_t i = 0; i < off && i < len; i++)
		line += text[i] == '\n';
	return line;
}

/* Skips a JSON string starting at text[i] == '"'; returns the offset after its closing quote. */
static size_t budget_skip_string(const char *text, size_t len, size_t i)
{
	for (i++; i < len && text[i] != '"'; i++) {
		if (text[i] == '\\')
			i++;
	}
	/* A string cut by the end of the text (the scan also walks whatever follows the JSON
	 * value, which need not be JSON) ends at len, never past it. */
	return i < len ? i + 1 : len;
}

/*
 * Offset of the start of element idx of the top-level "budgets" array, and of its end in *end
 * (len when not found). A scan that tracks strings and depth only: the text already parsed as
 * JSON, so it is well formed.
 */
static size_t budget_element_at(const char *text, size_t len, size_t idx, size_t *end)
{
	size_t i = 0, start = len, count = 0;
	int depth = 0, in_array = 0;

	*end = len;
	while (i < len) {
		char c = text[i];

		if (c == '"') {
			size_t next = budget_skip_string(text, len, i);

			if (depth == 1 && !in_array && next - i == 9 &&
			    memcmp(text + i, "\"budgets\"", 9) == 0)
				in_array = -1; /* the next '[' at depth 1 opens it */
			i = next;
			continue;
		}
		if (c == '[' && depth == 1 && in_array == -1)
			in_array = 1;
		else if ((c == '{' || c == '[') && depth == 2 && in_array == 1 && count == idx)
			start = i;
		if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
			depth--;
		if (depth == 2 && in_array == 1 && (c == '}' || c == ']') && count == idx &&
		    start < len) {
			*end = i + 1;
			break;
		}
		if (c == ',' && depth == 2 && in_array == 1)
			count++;
		if (depth < 2 && in_array == 1 && c == ']')
			break;
		i++;
	}
	return start;
}

/* The line of key inside budget idx (of the element when the key is absent; 1 when idx is
 * past the array). */
static int budget_key_line(const char *text, size_t len, size_t idx, const char *key)
{
	size_t end, start = budget_element_at(text, len, idx, &end);
	size_t klen = strlen(key);

	if (start >= len)
		return 1;
	for (size_t i = start; i + klen + 2 <= end; i++) {
		if (text[i] == '"' && memcmp(text + i + 1, key, klen) == 0 &&
		    text[i + 1 + klen] == '"')
			return budget_line_of(text, len, i);
	}
	return budget_line_of(text, len, start);
}

/* x >= 0 rounded to the nearest integer (no libm: the shim links without it). */
static int64_t budget_round(double x)
{
	return (int64_t)(x + 0.5);
}

static void budget_err(char *err, size_t errlen, int line, const char *field, const char *fmt,
		       ...) __attribute__((format(printf, 5, 6)));

static void budget_err(char *err, size_t errlen, int line, const char *field, const char *fmt,
		       ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return;
	if (field != NULL)
		n = snprintf(err, errlen, "line %d: field '%s': ", line, field);
	else
		n = snprintf(err, errlen, "line %d: ", line);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static int budget_enum(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; s != NULL && i < n; i++) {
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	}
	return -1;
}

static const char *const known_keys[] = { "name", "scope", "match", "window", "max_tokens",
					  "max_cost_usd", "warn_at", "action" };

/* Reads budget idx from its JSON object o into *b. Returns 0 or BUDGET_EFORMAT with err set
 * (the field named, its line found in text). */
static int budget_read_one(const cJSON *o, size_t idx, struct budget *b, const char *text,
			   size_t len, char *err, size_t errlen)
{
	const cJSON *v;
	const char *field = "", *why = "";
	const char *s;
	int e;

	memset(b, 0, sizeof(*b));
	b->max_tokens = b->max_pusd = -1;
	b->warn_at = BUDGET_DEFAULT_WARN_AT;
	cJSON_ArrayForEach(v, o) {
		size_t nk = sizeof known_keys / sizeof *known_keys;

		if (budget_enum(v->string, known_keys, nk) < 0) {
			field = v->string;
			why = "unknown field (known: name, scope, match, window, max_tokens, "
			      "max_cost_usd, warn_at, action)";
			goto bad;
		}
	}
	field = "name";
	s = pjson_str(o, "name");
	why = "must be a non-empty string of at most 100 bytes";
	if (s == NULL || s[0] == '\0' || strlen(s) > BUDGET_NAME_MAX)
		goto bad;
	memcpy(b->name, s, strlen(s) + 1);
	field = "scope";
	why = "must be agent, agent_type, tenant, model, provider or system";
	e = budget_enum(pjson_str(o, "scope"), scope_names, 6);
	if (e < 0)
		goto bad;
	b->scope = (enum budget_scope)e;
	field = "match";
	s = pjson_str(o, "match");
	why = "must be a glob string of at most 200 bytes (required unless the scope is system)";
	if (s == NULL && (cJSON_GetObjectItemCaseSensitive(o, "match") != NULL ||
			  b->scope != BUDGET_SCOPE_SYSTEM))
		goto bad;
	if (s == NULL)
		s = "*";
	if (strlen(s) > BUDGET_MATCH_MAX)
		goto bad;
	memcpy(b->match, s, strlen(s) + 1);
	field = "window";
	why = "must be daily, weekly or monthly";
	e = budget_enum(pjson_str(o, "window"), window_names, 3);
	if (e < 0)
		goto bad;
	b->window = (enum budget_window)e;
	field = "max_tokens";
	why = "must be a whole number >= 0";
	v = cJSON_GetObjectItemCaseSensitive(o, "max_tokens");
	if (v != NULL && (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9e15 ||
			  v->valuedouble != (double)(int64_t)v->valuedouble))
		goto bad;
	if (v != NULL)
		b->max_tokens = (int64_t)v->valuedouble;
	field = "max_cost_usd";
	why = "must be a number of dollars >= 0 (below 1000000)";
	v = cJSON_GetObjectItemCaseSensitive(o, "max_cost_usd");
	if (v != NULL && (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= 1e6))
		goto bad;
	if (v != NULL)
		b->max_pusd = budget_round(v->valuedouble * 1e12);
	if (b->max_tokens < 0 && b->max_pusd < 0) {
		field = "max_tokens";
		why = "a budget needs max_tokens, max_cost_usd or both";
		goto bad;
	}
	field = "warn_at";
	why = "must be a number above 0 and at most 1";
	v = cJSON_GetObjectItemCaseSensitive(o, "warn_at");
	if (v != NULL && (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || v->valuedouble > 1))
		goto bad;
	if (v != NULL)
		b->warn_at = v->valuedouble;
	field = "action";
	why = "must be block or warn";
	s = pjson_str(o, "action");
	if (s == NULL && cJSON_GetObjectItemCaseSensitive(o, "action") != NULL)
		goto bad;
	b->action = BUDGET_BLOCK;
	if (s != NULL && strcmp(s, "warn") == 0)
		b->action = BUDGET_WARN;
	else if (s != NULL && strcmp(s, "block") != 0)
		goto bad;
	return 0;
bad:
	budget_err(err, errlen, budget_key_line(text, len, idx, field), field, "%s", why);
	return BUDGET_EFORMAT;
}

int budget_parse(struct budget_set **out, const char *text, size_t len, char *err,
		 size_t errlen)
{
	struct budget_set *s = NULL;
	const char *end = NULL;
	const cJSON *arr, *o;
	cJSON *root;
	size_t i = 0;
	int rc = BUDGET_EFORMAT;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (root == NULL) {
		/* cJSON leaves end at (or just past) the byte where the text stopped being JSON. */
		size_t off = end != NULL && end >= text ? (size_t)(end - text) : 0;

		off = off < len ? off : len;

		budget_err(err, errlen, budget_line_of(text, len, off), NULL,
			   "not valid JSON (near '%.*s')", (int)(len - off < 20 ? len - off : 20),
			   text + off);
		goto out;
	}
	arr = cJSON_GetObjectItemCaseSensitive(root, "budgets");
	if (!cJSON_IsObject(root) || !cJSON_IsArray(arr)) {
		budget_err(err, errlen, 1, "budgets", "the file must be an object with a "
			   "\"budgets\" array");
		goto root_free;
	}
	if (cJSON_GetArraySize(arr) > BUDGET_MAX) {
		budget_err(err, errlen, budget_key_line(text, len, BUDGET_MAX, "name"), "budgets",
			   "more than %d budgets", BUDGET_MAX);
		goto root_free;
	}
	rc = BUDGET_ENOMEM;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto root_free;
	rc = 0;
	cJSON_ArrayForEach(o, arr) {
		if (!cJSON_IsObject(o)) {
			budget_err(err, errlen, budget_key_line(text, len, i, ""), "budgets",
				   "budget %zu is not an object", i + 1);
			rc = BUDGET_EFORMAT;
			break;
		}
		rc = budget_read_one(o, i, &s->b[i], text, len, err, errlen);
		for (size_t j = 0; rc == 0 && j < i; j++) {
			if (strcmp(s->b[j].name, s->b[i].name) == 0) {
				budget_err(err, errlen, budget_key_line(text, len, i, "name"),
					   "name", "'%s' names two budgets", s->b[i].name);
				rc = BUDGET_EFORMAT;
			}
		}
		if (rc != 0)
			break;
		i++;
	}
	s->n = i;
	if (rc != 0) {
		free(s);
		goto root_free;
	}
	*out = s;
root_free:
	cJSON_Delete(root);
out:
	return rc;
}

int budget_load(struct budget_set **out, const char *path, char *err, size_t errlen)
{
	char inner[512];
	char *text;
	size_t n;
	FILE *f;
	int rc = BUDGET_ENOMEM;

	*out = NULL;
	text = malloc(BUDGET_FILE_MAX + 1);
	if (text == NULL)
		goto out;
	rc = BUDGET_EIO;
	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
		goto text_free;
	}
	n = fread(text, 1, BUDGET_FILE_MAX + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
	} else if (n > BUDGET_FILE_MAX) {
		snprintf(err, errlen, "'%s': larger than %u bytes", path, BUDGET_FILE_MAX);
	} else {
		rc = budget_parse(out, text, n, inner, sizeof inner);
		if (rc != 0)
			snprintf(err, errlen, "'%s' %s", path, inner);
	}
	fclose(f);
text_free:
	free(text);
out:
	return rc;
}

void budget_set_free(struct budget_set *s)
{
	free(s);
}

/* ---- windows and matching ----------------------------------------------------------------- */

/* Seconds to nanoseconds, held at the ends of int64_t: a window's bound past 2262-04-11 (or
 * before 1677-09-21) is not representable, and the nearest one still orders right. */
static int64_t budget_ns_of_s(time_t t)
{
	if (t > INT64_MAX / 1000000000)
		return INT64_MAX;
	if (t < INT64_MIN / 1000000000)
		return INT64_MIN;
	return (int64_t)t * 1000000000;
}

void budget_window_of(enum budget_window w, int64_t now_ns, struct budget_span *out)
{
	time_t t = (time_t)(now_ns / 1000000000);
	struct tm tm, start;

	gmtime_r(&t, &tm);
	start = tm;
	start.tm_hour = start.tm_min = start.tm_sec = 0;
	if (w == BUDGET_WEEKLY)
		start.tm_mday -= (tm.tm_wday + 6) % 7; /* back to Monday */
	else if (w == BUDGET_MONTHLY)
		start.tm_mday = 1;
	t = timegm(&start); /* normalises a day before the 1st into the month before */
	out->since_ns = budget_ns_of_s(t);
	gmtime_r(&t, &start);
	if (w == BUDGET_DAILY)
		start.tm_mday += 1;
	else if (w == BUDGET_WEEKLY)
		start.tm_mday += 7;
	else
		start.tm_mon += 1;
	out->until_ns = budget_ns_of_s(timegm(&start));
	gmtime_r(&t, &start);
	if (w == BUDGET_MONTHLY)
		snprintf(out->key, sizeof out->key, "m%04d-%02d", start.tm_year + 1900,
			 start.tm_mon + 1);
	else
		snprintf(out->key, sizeof out->key, "%c%04d-%02d-%02d",
			 w == BUDGET_DAILY ? 'd' : 'w', start.tm_year + 1900, start.tm_mon + 1,
			 start.tm_mday);
}

static const char *budget_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

int budget_matches(const struct budget *b, const struct budget_call *c)
{
	const char *v = "";

	switch (b->scope) {
	case BUDGET_SCOPE_AGENT:
		v = c->agent;
		break;
	case BUDGET_SCOPE_AGENT_TYPE:
		v = c->agent_type;
		break;
	case BUDGET_SCOPE_TENANT:
		v = c->tenant;
		break;
	case BUDGET_SCOPE_MODEL:
		v = c->model;
		break;
	case BUDGET_SCOPE_PROVIDER:
		v = c->provider;
		break;
	case BUDGET_SCOPE_SYSTEM:
		return 1;
	}
	return fnmatch(b->match, budget_or_empty(v), 0) == 0;
}

void budget_record_usage(const struct pricing *p, const struct record *r, int64_t *tokens,
			 int64_t *pusd)
{
	*tokens = record_total_tokens(r);
	if (p == NULL || !pricing_record_cost(p, r, pusd))
		*pusd = 0;
}

void budget_counter_base(const struct budget *b, const struct budget_span *span,
			 const char *tenant, char *buf, size_t cap)
{
	snprintf(buf, cap, "budget:%s:%s:%s:%.*s", span->key, scope_names[b->scope], b->match,
		 BUDGET_TENANT_MAX, budget_or_empty(tenant));
}

static const char *budget_str(char *dst, struct record_str s)
{
	size_t n = s.n < RECORD_STR_MAX ? s.n : RECORD_STR_MAX;

	if (n > 0)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
	return dst;
}

void budget_call_of_record(const struct record *r, struct budget_call_buf *buf,
			   struct budget_call *c)
{
	c->agent = budget_str(buf->agent, r->agent);
	c->agent_type = budget_str(buf->agent_type, r->agent_type);
	c->tenant = budget_str(buf->tenant, r->tenant);
	c->model = budget_str(buf->model, r->model_requested.n ? r->model_requested : r->model);
	c->provider = budget_str(buf->provider, r->provider);
}

int budget_seed_record(const struct record *rec, void *arg, int64_t *tokens, int64_t *pusd)
{
	const struct budget_seed *sd = arg;
	struct budget_call_buf *cp;
	struct budget_call c;
	size_t tn = strlen(sd->tenant);
	int counts = 0;

	/* Counter bases cut a tenant at BUDGET_TENANT_MAX: compare the same cut. */
	if (rec->tenant.n < tn || (rec->tenant.n > tn && tn < BUDGET_TENANT_MAX) ||
	    (tn > 0 && memcmp(rec->tenant.p, sd->tenant, tn) != 0))
		goto out;
	cp = malloc(sizeof(*cp));
	if (cp == NULL)
		goto out;
	budget_call_of_record(rec, cp, &c);
	counts = budget_matches(sd->b, &c);
	if (counts)
		budget_record_usage(sd->pricing, rec, tokens, pusd);
	free(cp);
out:
	return counts;
}

/* v × warn_at rounded to the nearest token or pico-dollar; -1 stays -1. */
static int64_t budget_warn_level(int64_t v, double warn_at)
{
	return v < 0 ? -1 : budget_round((double)v * warn_at);
}

void budget_plan_add(struct budget_plan *pl, const struct budget *b, const struct pricing *p,
		     int64_t now_ns)
{
	struct store_budget *sb = &pl->sb[pl->n];
	struct budget_span span;
	char tenant[BUDGET_TENANT_MAX + 1];
	size_t k = pl->n;

	if (k >= BUDGET_MAX)
		return;
	budget_window_of(b->window, now_ns, &span);
	pl->span[k] = span;
	/* A copy of the tenant: it lives in pl too, and snprintf may not read from the object
	 * it writes. */
	memcpy(tenant, pl->tenant, sizeof tenant);
	budget_counter_base(b, &span, tenant, pl->base[k], sizeof pl->base[k]);
	pl->budget[k] = b;
	pl->seed[k] = (struct budget_seed){ b, p, pl->tenant };
	memset(sb, 0, sizeof(*sb));
	sb->name = b->name;
	sb->base = pl->base[k];
	sb->since_ns = span.since_ns;
	sb->until_ns = span.until_ns;
	sb->seed = budget_seed_record;
	sb->seed_arg = &pl->seed[k];
	sb->cap_tokens = b->action == BUDGET_BLOCK ? b->max_tokens : -1;
	sb->cap_pusd = b->action == BUDGET_BLOCK ? b->max_pusd : -1;
	sb->warn_tokens = budget_warn_level(b->max_tokens, b->warn_at);
	sb->warn_pusd = budget_warn_level(b->max_pusd, b->warn_at);
	pl->n++;
}

void budget_plan_init(struct budget_plan *pl, const char *tenant)
{
	size_t tn = strlen(budget_or_empty(tenant));

	tn = tn < BUDGET_TENANT_MAX ? tn : BUDGET_TENANT_MAX;
	pl->n = 0;
	memcpy(pl->tenant, budget_or_empty(tenant), tn);
	pl->tenant[tn] = '\0';
}

void budget_plan_make(struct budget_plan *pl, const struct budget_set *s,
		      const struct pricing *p, const struct budget_call *c, int64_t now_ns)
{
	budget_plan_init(pl, c->tenant);
	for (size_t i = 0; s != NULL && i < s->n; i++) {
		if (budget_matches(&s->b[i], c))
			budget_plan_add(pl, &s->b[i], p, now_ns);
	}
}

/* ---- estimates ---------------------------------------------------------------------------- */

int64_t budget_max_output(const char *body, size_t len)
{
	static const char *const paths[][3] = {
		{ "max_tokens", NULL, NULL },
		{ "max_completion_tokens", NULL, NULL },
		{ "max_output_tokens", NULL, NULL },
		{ "generationConfig", "maxOutputTokens", NULL },
		{ "options", "num_predict", NULL },
		{ "inferenceConfig", "maxTokens", NULL },
	};
	cJSON *root = body != NULL ? pjson_parse(body, len) : NULL;
	int64_t v = -1;

	for (size_t i = 0; root != NULL && i < sizeof paths / sizeof *paths && v < 0; i++) {
		const cJSON *o = paths[i][1] ? pjson_at(root, paths[i][0], (const char *)NULL)
					     : root;

		if (!pjson_int(o, paths[i][1] ? paths[i][1] : paths[i][0], &v))
			v = -1;
	}
	cJSON_Delete(root);
	return v;
}

void budget_estimate_call(const struct pricing *p, const char *provider, const char *model,
			  uint64_t body_bytes, int64_t max_output, struct budget_estimate *e)
{
	const struct price *pr = NULL;
	struct record r;

	e->input_tokens = usage_estimate_tokens(body_bytes);
	e->output_tokens = max_output >= 0 ? max_output : BUDGET_DEFAULT_OUTPUT_TOKENS;
	e->tokens = e->input_tokens + e->output_tokens;
	e->pusd = 0;
	if (p != NULL && model != NULL)
		pr = pricing_lookup(p, provider, provider ? strlen(provider) : 0, model,
				    strlen(model));
	if (pr == NULL)
		return;
	memset(&r, 0, sizeof(r));
	r.input_tokens = e->input_tokens;
	r.output_tokens = e->output_tokens;
	r.status = 200;
	e->pusd = pricing_cost_pusd(pr, &r);
}

/* ---- what a blocked agent reads ------------------------------------------------------------ */

/* "$0.012345" (micro-dollars, rounded up so that a cap reads as reached). */
static void budget_usd(char *buf, size_t cap, int64_t pusd)
{
	int64_t micro = pusd / 1000000 + (pusd % 1000000 > 0);

	snprintf(buf, cap, "$%" PRId64 ".%06" PRId64, micro / 1000000, micro % 1000000);
}

void budget_block_message(char *buf, size_t cap, const struct budget *b,
			  const struct store_budget *sb, const struct budget_span *span,
			  const char *tenant)
{
	char used[32], est[32], lim[32], resv[32], reset[32];
	int by_tokens = sb->cap_tokens >= 0 &&
			sb->used_tokens + sb->reserved_tokens + sb->est_tokens > sb->cap_tokens;
	time_t t = (time_t)(span->until_ns / 1000000000);
	struct tm tm;

	if (by_tokens) {
		snprintf(used, sizeof used, "%" PRId64 " tokens", sb->used_tokens);
		snprintf(resv, sizeof resv, "%" PRId64, sb->reserved_tokens);
		snprintf(est, sizeof est, "%" PRId64, sb->est_tokens);
		snprintf(lim, sizeof lim, "%" PRId64 " tokens", sb->cap_tokens);
	} else {
		budget_usd(used, sizeof used, sb->used_pusd);
		budget_usd(resv, sizeof resv, sb->reserved_pusd);
		budget_usd(est, sizeof est, sb->est_pusd);
		budget_usd(lim, sizeof lim, sb->cap_pusd);
	}
	gmtime_r(&t, &tm);
	strftime(reset, sizeof reset, "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(buf, cap,
		 "tokshim budget '%s' (%s '%s', %s window %s%s%s%s) would be exceeded: "
		 "%s used + %s in flight + about %s for this call > cap %s; "
		 "the window resets at %s",
		 b->name, scope_names[b->scope], b->match, window_names[b->window], span->key + 1,
		 tenant && tenant[0] ? ", tenant '" : "", tenant && tenant[0] ? tenant : "",
		 tenant && tenant[0] ? "'" : "", used, resv, est, lim, reset);
}

int64_t budget_retry_after(const struct budget_span *span, int64_t now_ns)
{
	int64_t s = (span->until_ns - now_ns + 999999999) / 1000000000;

	return s < 1 ? 1 : s;
}

/* The body of the 429 in the family's error shape. */
static cJSON *budget_error_body(const char *family, const char *message)
{
	cJSON *root = cJSON_CreateObject(), *e = cJSON_CreateObject();

	if (root == NULL || e == NULL) {
		cJSON_Delete(root);
		cJSON_Delete(e);
		return NULL;
	}
	if (strcmp(family, "anthropic") == 0) {
		cJSON_AddStringToObject(root, "type", "error");
		cJSON_AddStringToObject(e, "type", "rate_limit_error");
		cJSON_AddStringToObject(e, "message", message);
	} else if (strcmp(family, "gemini") == 0) {
		cJSON_AddNumberToObject(e, "code", 429);
		cJSON_AddStringToObject(e, "message", message);
		cJSON_AddStringToObject(e, "status", "RESOURCE_EXHAUSTED");
	} else {
		cJSON_AddStringToObject(e, "message", message);
		cJSON_AddStringToObject(e, "type", "budget_exceeded");
		cJSON_AddNullToObject(e, "param");
		cJSON_AddStringToObject(e, "code", "budget_exceeded");
	}
	cJSON_AddItemToObject(root, "error", e);
	return root;
}

char *budget_response_429(const char *family, const char *message, int64_t retry_after_s,
			  size_t *len)
{
	cJSON *root = budget_error_body(family != NULL ? family : "", message);
	char *body = root != NULL ? cJSON_PrintUnformatted(root) : NULL;
	char *out = NULL;
	size_t blen, cap;
	int n;

	if (body == NULL)
		goto root_free;
	blen = strlen(body);
	cap = blen + 256;
	out = malloc(cap);
	if (out == NULL)
		goto body_free;
	n = snprintf(out, cap,
		     "HTTP/1.1 429 Too Many Requests\r\n"
		     "Content-Type: application/json\r\n"
		     "Retry-After: %" PRId64 "\r\n"
		     "Content-Length: %zu\r\n"
		     "Connection: close\r\n"
		     "\r\n%s",
		     retry_after_s, blen, body);
	*len = (size_t)n;
body_free:
	free(body);
root_free:
	cJSON_Delete(root);
	return out;
}
