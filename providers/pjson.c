/*
 * pjson.c - JSON helpers shared by the provider families (contracts in pjson.h).
 *
 * Token counts are read leniently: providers send null for "not applicable" (OpenAI's
 * "usage": null in every chunk but the last) and some OpenAI-compatible servers send counts as
 * floats (12.0). A negative or absurd count is treated as absent rather than trusted, since one
 * bad record would poison every sum a report makes.
 */
#include "providers/pjson.h"

#include <stdarg.h>
#include <string.h>

/* Nesting depth pjson_text_bytes follows (Anthropic tool_result content holds blocks that may
 * hold content again); deeper values count 0 rather than risk deep recursion. */
#define PJSON_TEXT_DEPTH 4

/* Counts above this are not token counts (a trillion tokens in one call). */
#define PJSON_INT_MAX 1000000000000LL

cJSON *pjson_parse(const char *data, size_t len)
{
	return data == NULL || len == 0 ? NULL : cJSON_ParseWithLength(data, len);
}

const cJSON *pjson_at(const cJSON *o, ...)
{
	va_list ap;
	const char *key;

	va_start(ap, o);
	key = va_arg(ap, const char *);
	while (key != NULL && o != NULL) {
		o = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
		key = va_arg(ap, const char *);
	}
	va_end(ap);
	return o;
}

int pjson_int(const cJSON *o, const char *key, int64_t *out)
{
	const cJSON *v = pjson_at(o, key, (const char *)NULL);
	int found = 0;

	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= (double)PJSON_INT_MAX) {
		*out = (int64_t)v->valuedouble;
		found = 1;
	}
	return found;
}

const char *pjson_str(const cJSON *o, const char *key)
{
	const cJSON *v = pjson_at(o, key, (const char *)NULL);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int pjson_bool(const cJSON *o, const char *key)
{
	const cJSON *v = pjson_at(o, key, (const char *)NULL);
	int r = -1;

	if (cJSON_IsBool(v))
		r = cJSON_IsTrue(v) ? 1 : 0;
	return r;
}

/* Length of a value printed as compact JSON (a tool call's input object). */
static uint64_t pjson_printed_len(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	uint64_t n = 0;

	if (s != NULL) {
		n = strlen(s);
		cJSON_free(s);
	}
	return n;
}

static uint64_t pjson_text_bytes_depth(const cJSON *v, int depth)
{
	const cJSON *it;
	uint64_t n = 0;
	static const char *const text_keys[] = {"text", "thinking", "partial_json", "arguments"};
	size_t i;

	if (v == NULL || depth > PJSON_TEXT_DEPTH)
		goto done;
	if (cJSON_IsString(v)) {
		n = strlen(v->valuestring);
		goto done;
	}
	if (cJSON_IsArray(v)) {
		cJSON_ArrayForEach(it, v)
			n += pjson_text_bytes_depth(it, depth + 1);
		goto done;
	}
	if (!cJSON_IsObject(v))
		goto done;
	for (i = 0; i < sizeof text_keys / sizeof text_keys[0]; i++) {
		const char *s = pjson_str(v, text_keys[i]);
		if (s != NULL)
			n += strlen(s);
	}
	it = pjson_at(v, "content", (const char *)NULL);
	if (it != NULL)
		n += pjson_text_bytes_depth(it, depth + 1);
	/* Anthropic tool_use blocks carry their arguments as an object. */
	it = pjson_at(v, "input", (const char *)NULL);
	if (cJSON_IsObject(it))
		n += pjson_printed_len(it);
	/* OpenAI tool calls: {"function": {"arguments": "…"}}. */
	it = pjson_at(v, "function", (const char *)NULL);
	if (it != NULL)
		n += pjson_text_bytes_depth(it, depth + 1);
done:
	return n;
}

uint64_t pjson_text_bytes(const cJSON *v)
{
	return pjson_text_bytes_depth(v, 0);
}

uint64_t pjson_messages_text_bytes(const cJSON *messages)
{
	const cJSON *m;
	uint64_t n = 0;

	if (!cJSON_IsArray(messages))
		goto done;
	cJSON_ArrayForEach(m, messages) {
		n += pjson_text_bytes(pjson_at(m, "content", (const char *)NULL));
		n += pjson_text_bytes(pjson_at(m, "tool_calls", (const char *)NULL));
	}
done:
	return n;
}

static const char *pjson_skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* The first position just after `"key"` and its colon (white space skipped), or NULL. */
static const char *pjson_scan_key(const char *data, size_t len, const char *key)
{
	const char *end = data + len, *p = data, *found = NULL;
	size_t klen = strlen(key);

	while (p < end && found == NULL) {
		const char *q = memchr(p, '"', (size_t)(end - p));
		if (q == NULL)
			break;
		p = q + 1;
		if ((size_t)(end - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '"') {
			const char *c = pjson_skip_ws(p + klen + 1, end);
			if (c < end && *c == ':')
				found = pjson_skip_ws(c + 1, end);
		}
	}
	return found;
}

int pjson_scan_str(const char *data, size_t len, const char *key, char *dst, size_t cap)
{
	const char *p, *end = data + len;
	size_t n = 0;
	int found = 0;

	if (data == NULL || cap == 0)
		goto done;
	p = pjson_scan_key(data, len, key);
	if (p == NULL || p >= end || *p != '"')
		goto done;
	for (p++; p < end && *p != '"'; p++) {
		if (*p == '\\' && p + 1 < end) {
			if (n + 1 < cap)
				dst[n++] = *p;
			p++;
		}
		if (n + 1 < cap)
			dst[n++] = *p;
	}
	if (p >= end)
		goto done; /* the string itself was cut: do not report a partial name */
	dst[n] = '\0';
	found = 1;
done:
	return found;
}

int pjson_scan_bool(const char *data, size_t len, const char *key)
{
	const char *p, *end = data + len;
	int r = -1;

	if (data == NULL)
		goto done;
	p = pjson_scan_key(data, len, key);
	if (p == NULL)
		goto done;
	if ((size_t)(end - p) >= 4 && memcmp(p, "true", 4) == 0)
		r = 1;
	else if ((size_t)(end - p) >= 5 && memcmp(p, "false", 5) == 0)
		r = 0;
done:
	return r;
}
