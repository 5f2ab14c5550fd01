/*
 * export.c - CSV and OTLP renderings of records (see export.h).
 *
 * CSV is made from the jsonl object itself rather than from the record, so its columns are
 * the jsonl keys by construction and a key added to the listing appears in the CSV too. The
 * object is our own flat output (strings, numbers, true/false/null), so a small reader of
 * that shape is enough; it refuses anything else.
 *
 * OTLP/HTTP JSON follows the protobuf JSON mapping: 64-bit integers (times, intValue) are
 * strings, ids are hex, enums are numbers.
 */
#include "analyzer/export.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/cli.h"
#include "analyzer/format.h"
#include "analyzer/recordfmt.h"

/* Reads the JSON string at *p (after its opening quote) up to its closing quote, writing
 * its unescaped bytes to f when f is not NULL. Returns 0 or -1. */
static int json_string(const char **p, const char *end, FILE *f)
{
	unsigned cp, lo;
	const char *s = *p;
	int ret = -1;

	while (s < end && *s != '"') {
		if (*s != '\\') {
			if (f)
				putc(*s, f);
			s++;
			continue;
		}
		if (++s >= end)
			goto out;
		switch (*s) {
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'u':
			if (end - s < 5 || sscanf(s + 1, "%4x", &cp) != 1)
				goto out;
			s += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && end - s >= 7 && s[1] == '\\' &&
			    s[2] == 'u' && sscanf(s + 3, "%4x", &lo) == 1 && lo >= 0xdc00 &&
			    lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				s += 6;
			}
			break;
		default: cp = (unsigned char)*s; break;
		}
		s++;
		if (f == NULL)
			continue;
		if (cp < 0x80) {
			putc((int)cp, f);
		} else if (cp < 0x800) {
			putc(0xc0 | (int)(cp >> 6), f);
			putc(0x80 | (int)(cp & 0x3f), f);
		} else if (cp < 0x10000) {
			putc(0xe0 | (int)(cp >> 12), f);
			putc(0x80 | (int)((cp >> 6) & 0x3f), f);
			putc(0x80 | (int)(cp & 0x3f), f);
		} else {
			putc(0xf0 | (int)(cp >> 18), f);
			putc(0x80 | (int)((cp >> 12) & 0x3f), f);
			putc(0x80 | (int)((cp >> 6) & 0x3f), f);
			putc(0x80 | (int)(cp & 0x3f), f);
		}
	}
	if (s < end) {
		*p = s + 1;
		ret = 0;
	}
out:
	return ret;
}

/* Does the JSON string at p (after its quote) need CSV quoting? */
static int csv_needs_quotes(const char *p, const char *end)
{
	int need = 0;

	for (; p < end && *p != '"' && !need; p++) {
		need = *p == ',' || *p == '\r' || *p == '\n';
		if (*p == '\\' && p + 1 < end) {
			p++;
			/* \u: a control character, quoted to be safe */
			need = *p == '"' || *p == 'n' || *p == 'r' || *p == 'u';
		}
	}
	return need;
}

/* A string field: unescaped, quoted when needed, its quotes doubled. */
static int csv_string(FILE *f, const char **p, const char *end)
{
	char *buf = NULL;
	size_t n = 0, i;
	FILE *m;
	int ret;

	if (!csv_needs_quotes(*p, end)) {
		ret = json_string(p, end, f);
		goto out;
	}
	ret = -1;
	m = open_memstream(&buf, &n);
	if (m == NULL)
		goto out;
	ret = json_string(p, end, m);
	fclose(m);
	if (ret == 0) {
		putc('"', f);
		for (i = 0; i < n; i++) {
			if (buf[i] == '"')
				putc('"', f);
			putc(buf[i], f);
		}
		putc('"', f);
	}
	free(buf);
out:
	return ret;
}

int export_csv_line(FILE *f, const char *json, size_t len, int header)
{
	const char *p = json, *end = json + len, *tok;
	int n = 0, ret = -1;

	while (p < end && *p == ' ')
		p++;
	if (p >= end || *p++ != '{')
		goto out;
	while (p < end && *p != '}') {
		if (n > 0 && *p++ != ',')
			goto out;
		if (p >= end || *p++ != '"')
			goto out;
		if (n++ > 0 && header)
			putc(',', f);
		if (json_string(&p, end, header ? f : NULL) != 0 || p >= end || *p++ != ':')
			goto out;
		if (n > 1 && !header)
			putc(',', f);
		if (p < end && *p == '"') {
			p++;
			if ((header ? json_string(&p, end, NULL) : csv_string(f, &p, end)) != 0)
				goto out;
			continue;
		}
		tok = p;
		while (p < end && *p != ',' && *p != '}')
			p++;
		if (p == tok)
			goto out;
		if (!header && !((size_t)(p - tok) == 4 && memcmp(tok, "null", 4) == 0))
			fwrite(tok, 1, (size_t)(p - tok), f);
	}
	if (p >= end)
		goto out;
	fputs("\r\n", f);
	ret = 0;
out:
	return ret;
}

int export_csv_object(FILE *f, export_flat_fn *write, const void *arg, int header)
{
	char *json = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&json, &len);
	struct jw w;
	int ret = -1;

	if (mem == NULL)
		goto out;
	jw_init(&w, mem, 0);
	write(&w, arg);
	if (fclose(mem) == 0)
		ret = export_csv_line(f, json, len, header);
	free(json);
out:
	return ret;
}

const char *export_operation(const struct record_str *api)
{
	static const struct {
		const char *api, *op;
	} ops[] = {
		{ "embeddings", "embeddings" },	     { "embed", "embeddings" },
		{ "embedContent", "embeddings" },    { "batchEmbedContents", "embeddings" },
		{ "completions", "text_completion" }, { "generate", "text_completion" },
		{ "generateContent", "generate_content" },
		{ "streamGenerateContent", "generate_content" },
	};
	size_t k;
	const char *op = "chat";

	for (k = 0; k < sizeof ops / sizeof ops[0]; k++)
		if (api->n == strlen(ops[k].api) && memcmp(api->p, ops[k].api, api->n) == 0)
			op = ops[k].op;
	return op;
}

void export_otlp_begin(FILE *f)
{
	fputs("{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
	      "\"value\":{\"stringValue\":\"tokshim\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":"
	      "\"tokshim\",\"version\":\"" TOKSHIM_VERSION "\"},\"spans\":[",
	      f);
}

void export_otlp_end(FILE *f)
{
	fputs("]}]}]}\n", f);
}

/* FNV-1a 64 continued over more bytes. */
static uint64_t fnv_more(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static void attr_begin(struct jw *w, const char *key, const char *kind)
{
	jw_object_begin(w);
	jw_key(w, "key");
	jw_str(w, key, strlen(key));
	jw_key(w, "value");
	jw_object_begin(w);
	jw_key(w, kind);
}

static void attr_end(struct jw *w)
{
	jw_object_end(w);
	jw_object_end(w);
}

static void attr_str(struct jw *w, const char *key, const struct record_str *v)
{
	if (v->n == 0)
		return; /* an unknown value is left out, as OpenTelemetry asks */
	attr_begin(w, key, "stringValue");
	jw_str(w, v->p, v->n);
	attr_end(w);
}

static void attr_int(struct jw *w, const char *key, int64_t v)
{
	char text[24];

	snprintf(text, sizeof text, "%" PRId64, v);
	attr_begin(w, key, "intValue");
	jw_str(w, text, strlen(text));
	attr_end(w);
}

static void span_time(struct jw *w, const char *key, int64_t ns)
{
	char text[24];

	snprintf(text, sizeof text, "%" PRId64, ns);
	jw_key(w, key);
	jw_str(w, text, strlen(text));
}

void export_otlp_span(FILE *f, const struct record *rec, int priced, int64_t pusd, size_t db,
		      size_t ndb, uint64_t fallback_of, int first)
{
	const struct record_str *model = rec->model.n ? &rec->model : &rec->model_requested;
	const char *op = export_operation(&rec->api);
	char name[RECORD_STR_MAX + 64], hex[40], cost[FMT_PUSD_MAX], status[16];
	uint64_t h1, h2, s;
	int failed = rec->error.n > 0 || rec->status == 0 || rec->status >= 400;
	struct record_str error_type;
	struct jw w;

	if (!first)
		putc(',', f);
	jw_init(&w, f, 0);
	jw_object_begin(&w);
	h1 = fnv_more(0xcbf29ce484222325ull, rec->agent.p, rec->agent.n);
	h1 = fnv_more(h1, "\0", 1);
	h1 = fnv_more(h1, rec->session.p, rec->session.n);
	h2 = fnv_more(h1 ^ 0x5bd1e995u, "trace", 5);
	snprintf(hex, sizeof hex, "%016" PRIx64 "%016" PRIx64, h1, h2);
	jw_key(&w, "traceId");
	jw_str(&w, hex, 32);
	s = fnv_more(h1, &db, sizeof db);
	s = fnv_more(s, &rec->id, sizeof rec->id);
	s = fnv_more(s, &rec->ts_ns, sizeof rec->ts_ns);
	snprintf(hex, sizeof hex, "%016" PRIx64, s ? s : 1);
	jw_key(&w, "spanId");
	jw_str(&w, hex, 16);
	snprintf(name, sizeof name, "%s %.*s", op, (int)model->n, model->p ? model->p : "");
	jw_key(&w, "name");
	jw_str(&w, name, strlen(name) - (model->n ? 0 : 1));
	jw_key(&w, "kind");
	jw_int(&w, 3); /* SPAN_KIND_CLIENT */
	span_time(&w, "startTimeUnixNano", rec->ts_ns);
	span_time(&w, "endTimeUnixNano", rec->ts_ns + rec->latency_us * 1000);
	jw_key(&w, "attributes");
	jw_array_begin(&w);
	attr_str(&w, "gen_ai.provider.name", rec->provider.n ? &rec->provider : &rec->host);
	attr_begin(&w, "gen_ai.operation.name", "stringValue");
	jw_str(&w, op, strlen(op));
	attr_end(&w);
	attr_str(&w, "gen_ai.request.model", &rec->model_requested);
	attr_str(&w, "gen_ai.response.model", &rec->model);
	attr_int(&w, "gen_ai.usage.input_tokens", rec->input_tokens);
	attr_int(&w, "gen_ai.usage.output_tokens", rec->output_tokens);
	attr_int(&w, "gen_ai.usage.cache_read.input_tokens", rec->cache_read_tokens);
	attr_int(&w, "gen_ai.usage.cache_creation.input_tokens", rec->cache_write_tokens);
	attr_int(&w, "gen_ai.usage.reasoning.output_tokens", rec->reasoning_tokens);
	if (rec->status > 0)
		attr_int(&w, "http.response.status_code", rec->status);
	if (failed) {
		/* error.type: our normalised type, else the status code, as the convention says. */
		snprintf(status, sizeof status, "%d", (int)rec->status);
		error_type = rec->error.n ? rec->error : record_str_of(rec->status ? status : "_OTHER");
		attr_str(&w, "error.type", &error_type);
	}
	attr_str(&w, "server.address", &rec->host);
	if (priced) {
		fmt_pusd(cost, pusd);
		attr_begin(&w, "tokshim.cost_usd", "doubleValue");
		jw_number_text(&w, cost);
		attr_end(&w);
	}
	attr_str(&w, "tokshim.agent", &rec->agent);
	attr_str(&w, "tokshim.agent_type", &rec->agent_type);
	attr_str(&w, "tokshim.tenant", &rec->tenant);
	attr_str(&w, "tokshim.session", &rec->session);
	attr_int(&w, "tokshim.record_id", (int64_t)rec->id);
	if (ndb > 1)
		attr_int(&w, "tokshim.db", (int64_t)db + 1);
	if (fallback_of != 0)
		attr_int(&w, "tokshim.fallback_of", (int64_t)fallback_of);
	attr_begin(&w, "tokshim.locality", "stringValue");
	jw_str(&w, rec->flags & RECORD_LOCAL ? "local" : "cloud", 5);
	attr_end(&w);
	attr_begin(&w, "tokshim.estimated", "boolValue");
	jw_bool(&w, (rec->flags & RECORD_ESTIMATED) != 0);
	attr_end(&w);
	jw_array_end(&w);
	if (failed) {
		jw_key(&w, "status");
		jw_object_begin(&w);
		jw_key(&w, "code");
		jw_int(&w, 2); /* STATUS_CODE_ERROR */
		if (rec->error_message.n) {
			jw_key(&w, "message");
			jw_str(&w, rec->error_message.p, rec->error_message.n);
		}
		jw_object_end(&w);
	}
	jw_object_end(&w);
}
