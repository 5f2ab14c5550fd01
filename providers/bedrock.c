/*
 * bedrock.c - the AWS Bedrock runtime family (bedrock-runtime.REGION.amazonaws.com, provider
 * aws.bedrock): /model/{modelId}/converse, /converse-stream, /invoke and
 * /invoke-with-response-stream.
 *
 * The model is only in the path, URL-encoded (us.anthropic.claude-sonnet-4-5-20250929-v1%3A0):
 * it is decoded into model_requested. Converse responses name no model; invoke responses of
 * Anthropic models do (their "model"), and that becomes the record's model.
 *
 * Converse usage is camelCase {inputTokens, outputTokens, cacheReadInputTokens,
 * cacheWriteInputTokens, totalTokens}; like Anthropic's, inputTokens leaves out the cache reads
 * and writes, so DESIGN.md's input is their sum. Older responses repeat the cache counts as
 * cache…InputTokenCount: read only when the newer names are absent, never added.
 *
 * Invoke passes the model vendor's own body through, so an Anthropic model answers in the
 * Anthropic Messages shape and is read by the anthropic family's own body and event functions
 * (not a copy of them). Bedrock also counts the tokens itself, in the response headers
 * x-amzn-bedrock-input-token-count, -output-token-count, -cache-read-input-token-count and
 * -cache-write-input-token-count (input excluding the cache counts, as in Converse). Those are
 * what Bedrock bills, so they win over the body: bedrock_response reads them before the body
 * and marks the usage read; bedrock_body then lets the body give the model and text but puts
 * the header counts back.
 *
 * Other vendors' invoke bodies carry their own counts, read when the headers are absent:
 * Meta Llama {"generation", "prompt_token_count", "generation_token_count"}, Amazon Titan text
 * {"inputTextTokenCount", "results": [{"outputText", "tokenCount"}]} and Titan embeddings
 * {"embedding", "inputTextTokenCount"}. Mistral's bodies ({"outputs": [{"text"}]}, or
 * {"choices": [{"message": {"content"}}]}) carry none: without the headers their tokens are
 * estimated from the request's prompt and the generated text.
 *
 * Converse reports how long cache writes live in usage.cacheDetails [{"inputTokens", "ttl":
 * "5m" | "1h"}]: the one-hour part is kept (cache_write_1h_tokens), as Anthropic's.
 *
 * The two streams use the binary AWS event-stream framing (http/eventstream.h), each message
 * an event named by its :event-type. converse-stream's "metadata" event carries the usage.
 * invoke-with-response-stream wraps each vendor event as "chunk" {"bytes": "<base64>"}: the
 * decoded bytes are the vendor's stream event (Anthropic's message_start, message_delta …),
 * and the last one adds Bedrock's own count, "amazon-bedrock-invocationMetrics", which wins
 * like the headers. Errors come as an x-amzn-ErrorType header (ThrottlingException:…) with a
 * {"message"} body, or inside a stream as an exception message (throttlingException …).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "providers/family.h"
#include "providers/pjson.h"

/* A decoded chunk bigger than this is not a Bedrock stream event; it is skipped. */
#define BEDROCK_CHUNK_MAX (4u << 20)

static const struct {
	const char *suffix;
	const char *api;
} bedrock_apis[] = {
	{"/converse", "converse"},
	{"/converse-stream", "converse-stream"},
	{"/invoke", "invoke"},
	{"/invoke-with-response-stream", "invoke-with-response-stream"},
};

/* The model id segment of /model/{id}/… : sets *id and *n, returns 1, or 0 when not so. */
static int bedrock_model_segment(const char *path, size_t len, const char **id, size_t *n)
{
	const char *slash;
	int found = 0;

	if (len <= 7 || memcmp(path, "/model/", 7) != 0)
		goto done;
	slash = memchr(path + 7, '/', len - 7);
	if (slash == NULL || slash == path + 7)
		goto done;
	*id = path + 7;
	*n = (size_t)(slash - *id);
	found = 1;
done:
	return found;
}

static const char *bedrock_api_of(const char *path)
{
	size_t len = provider_path_len(path), n, i, rest;
	const char *id, *api = NULL;

	if (!bedrock_model_segment(path, len, &id, &n))
		goto done;
	rest = len - 7 - n;
	for (i = 0; i < sizeof bedrock_apis / sizeof bedrock_apis[0]; i++) {
		if (strlen(bedrock_apis[i].suffix) == rest &&
		    memcmp(bedrock_apis[i].suffix, id + n, rest) == 0) {
			api = bedrock_apis[i].api;
			break;
		}
	}
done:
	return api;
}

static int bedrock_hex(char c)
{
	int v = -1;

	if (c >= '0' && c <= '9')
		v = c - '0';
	else if (c >= 'a' && c <= 'f')
		v = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		v = c - 'A' + 10;
	return v;
}

/* The path's model id, percent-decoded, into model_requested. */
static void bedrock_model_of_path(struct usage *u, const char *path)
{
	char buf[USAGE_MODEL_MAX];
	const char *id;
	size_t n, i, k = 0;

	if (!bedrock_model_segment(path, provider_path_len(path), &id, &n))
		goto done;
	for (i = 0; i < n && k < sizeof buf - 1; i++) {
		int hi = id[i] == '%' && i + 2 < n ? bedrock_hex(id[i + 1]) : -1;
		int lo = hi >= 0 ? bedrock_hex(id[i + 2]) : -1;

		if (lo >= 0) {
			buf[k++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			buf[k++] = id[i];
		}
	}
	buf[k] = '\0';
	usage_set_str(u->model_requested, sizeof u->model_requested, buf);
done:
	return;
}

static int bedrock_is(const struct usage *u, const char *api)
{
	return u->api != NULL && strcmp(u->api, api) == 0;
}

static void bedrock_request(struct usage *u, const struct provider_request *req)
{
	cJSON *root;

	u->api = bedrock_api_of(req->path);
	bedrock_model_of_path(u, req->path);
	u->stream = bedrock_is(u, "converse-stream") || bedrock_is(u, "invoke-with-response-stream");
	root = pjson_read(req->body, req->body_len, NULL);
	if (root == NULL)
		goto done;
	/* Converse and Anthropic-on-invoke both have system and messages; Llama and Mistral a
	 * prompt, Titan an inputText. */
	u->request_text_bytes = pjson_text_bytes(pjson_at(root, "system", NULL)) +
				pjson_messages_text_bytes(pjson_at(root, "messages", NULL)) +
				pjson_text_bytes(pjson_at(root, "prompt", NULL)) +
				pjson_text_bytes(pjson_at(root, "inputText", NULL));
	pjson_free(root);
done:
	return;
}

/* Bedrock's exception names (x-amzn-ErrorType, stream exceptions), by meaning. n: the name's
 * length (a header value goes on after a ':'). */
static const char *bedrock_error_type(const char *name, size_t n)
{
	static const struct {
		const char *name;
		const char *type;
	} map[] = {
		{"ThrottlingException", ERR_RATE_LIMIT},
		{"ServiceQuotaExceededException", ERR_RATE_LIMIT},
		{"ServiceUnavailableException", ERR_OVERLOADED},
		{"ModelNotReadyException", ERR_OVERLOADED},
		{"AccessDeniedException", ERR_AUTH},
		{"UnrecognizedClientException", ERR_AUTH},
		{"ExpiredTokenException", ERR_AUTH},
		{"InvalidSignatureException", ERR_AUTH},
		{"ValidationException", ERR_INVALID_REQUEST},
		{"ResourceNotFoundException", ERR_INVALID_REQUEST},
		{"InternalServerException", ERR_SERVER},
		{"ModelErrorException", ERR_SERVER},
		{"ModelTimeoutException", ERR_SERVER},
		{"ModelStreamErrorException", ERR_SERVER},
	};
	const char *type = NULL;
	size_t i;

	for (i = 0; name != NULL && i < sizeof map / sizeof map[0]; i++) {
		/* Case-insensitive: streams name them in lowerCamelCase. */
		if (strlen(map[i].name) == n && strncasecmp(map[i].name, name, n) == 0) {
			type = map[i].type;
			break;
		}
	}
	return type;
}

/* The one-hour part of Converse's cache writes: cacheDetails [{"inputTokens", "ttl"}]. */
static void bedrock_cache_ttl(struct usage *u, const cJSON *details)
{
	const cJSON *d;
	const char *ttl;
	int64_t n, sum = 0;

	if (!cJSON_IsArray(details))
		goto done; /* invocationMetrics: the vendor's events said it, if anyone did */
	cJSON_ArrayForEach(d, details) {
		ttl = pjson_str(d, "ttl");
		if (ttl != NULL && strcmp(ttl, "1h") == 0 && pjson_int(d, "inputTokens", &n))
			sum += n; /* each at most PJSON_INT_MAX: a body cannot hold 2^43 of them */
	}
	u->cache_write_1h_tokens = sum;
done:
	return;
}

/* Converse usage {inputTokens, outputTokens, cacheReadInputTokens, cacheWriteInputTokens}, or
 * invocationMetrics {inputTokenCount, outputTokenCount, cacheRead/WriteInputTokenCount}: the
 * names differ, the meaning (input without the cache counts) does not. */
static void bedrock_counts(struct usage *u, const cJSON *o, const char *in_key,
			   const char *out_key)
{
	int64_t in = 0, out = 0, cr = 0, cw = 0;

	if (!cJSON_IsObject(o) || !pjson_int(o, in_key, &in))
		goto done;
	pjson_int(o, out_key, &out);
	if (!pjson_int(o, "cacheReadInputTokens", &cr))
		pjson_int(o, "cacheReadInputTokenCount", &cr);
	if (!pjson_int(o, "cacheWriteInputTokens", &cw))
		pjson_int(o, "cacheWriteInputTokenCount", &cw);
	u->input_tokens = in + cr + cw;
	u->cache_read_tokens = cr;
	u->cache_write_tokens = cw;
	u->output_tokens = out;
	u->reasoning_tokens = 0;
	u->have_usage = 1;
	bedrock_cache_ttl(u, pjson_at(o, "cacheDetails", NULL));
done:
	return;
}

/* Llama, Titan text and Titan embeddings invoke bodies (see the top of this file). */
static void bedrock_vendor_counts(struct usage *u, const cJSON *root)
{
	const cJSON *r;
	int64_t in = 0, out = 0, n;
	int have = 0;

	if (pjson_int(root, "prompt_token_count", &in)) {
		pjson_int(root, "generation_token_count", &out);
		have = 1;
	} else if (pjson_int(root, "inputTextTokenCount", &in)) {
		cJSON_ArrayForEach(r, pjson_at(root, "results", NULL)) {
			if (pjson_int(r, "tokenCount", &n))
				out += n; /* each at most PJSON_INT_MAX: a body cannot hold 2^43 */
		}
		have = 1;
	}
	if (have)
		usage_set_counts(u, in, out);
}

/* Generated text of the other vendors' invoke bodies, for estimation: Llama's generation,
 * Titan's results[].outputText, Mistral's outputs[].text and choices[].message.content. */
static uint64_t bedrock_vendor_text_bytes(const cJSON *root)
{
	const cJSON *it;
	uint64_t n = pjson_text_bytes(pjson_at(root, "generation", NULL));

	cJSON_ArrayForEach(it, pjson_at(root, "results", NULL))
		n += pjson_text_bytes(pjson_at(it, "outputText", NULL));
	cJSON_ArrayForEach(it, pjson_at(root, "outputs", NULL))
		n += pjson_text_bytes(pjson_at(it, "text", NULL));
	cJSON_ArrayForEach(it, pjson_at(root, "choices", NULL))
		n += pjson_text_bytes(pjson_at(it, "message", "content", NULL));
	return n;
}

/* A header's value as a count; 0 when absent or not digits. */
static int bedrock_header_count(const struct http_head *h, const char *name, int64_t *out)
{
	const struct http_header *hdr = http_head_get(h, name);
	int64_t v = 0;
	size_t i;
	int found = 0;

	if (hdr == NULL || hdr->value_len == 0 || hdr->value_len > 15)
		goto done;
	for (i = 0; i < hdr->value_len; i++) {
		if (hdr->value[i] < '0' || hdr->value[i] > '9')
			goto done;
		v = v * 10 + (hdr->value[i] - '0');
	}
	*out = v;
	found = 1;
done:
	return found;
}

static enum provider_framing bedrock_response(struct usage *u, const struct http_head *h)
{
	const struct http_header *et = http_head_get(h, "x-amzn-errortype");
	int64_t in = 0, out = 0, cr = 0, cw = 0;

	if (et != NULL) {
		const char *colon = memchr(et->value, ':', et->value_len);

		provider_set_error(u, bedrock_error_type(et->value, colon != NULL ?
							   (size_t)(colon - et->value) :
							   et->value_len),
				   NULL);
	}
	if (bedrock_header_count(h, "x-amzn-bedrock-input-token-count", &in) &&
	    bedrock_header_count(h, "x-amzn-bedrock-output-token-count", &out)) {
		bedrock_header_count(h, "x-amzn-bedrock-cache-read-input-token-count", &cr);
		bedrock_header_count(h, "x-amzn-bedrock-cache-write-input-token-count", &cw);
		u->input_tokens = in + cr + cw;
		u->cache_read_tokens = cr;
		u->cache_write_tokens = cw;
		u->output_tokens = out;
		u->have_usage = 1;
	}
	return PROVIDER_FRAMING_AUTO;
}

static void bedrock_body(struct usage *u, int status, const char *data, size_t len)
{
	struct usage counted = *u;
	cJSON *root = pjson_read(data, len, NULL);

	if (status >= 400 && cJSON_IsObject(root))
		provider_set_error(u, NULL, pjson_str(root, "message"));
	if (bedrock_is(u, "converse")) {
		bedrock_counts(u, pjson_at(root, "usage", NULL), "inputTokens", "outputTokens");
		u->output_text_bytes +=
			pjson_text_bytes(pjson_at(root, "output", "message", "content", NULL));
		goto free_root;
	}
	/* invoke: the vendor's body. Anthropic's shape is read by the anthropic family; Amazon
	 * Nova's "usage" is Converse-shaped. */
	provider_family_anthropic.body(u, status, data, len);
	if (!u->have_usage)
		bedrock_counts(u, pjson_at(root, "usage", NULL), "inputTokens", "outputTokens");
	if (!u->have_usage)
		bedrock_vendor_counts(u, root);
	u->output_text_bytes += bedrock_vendor_text_bytes(root);
	if (counted.have_usage) {
		/* The header counts (read before the body) win. */
		u->input_tokens = counted.input_tokens;
		u->output_tokens = counted.output_tokens;
		u->cache_read_tokens = counted.cache_read_tokens;
		u->cache_write_tokens = counted.cache_write_tokens;
		u->reasoning_tokens = counted.reasoning_tokens;
	}
free_root:
	pjson_free(root);
}

static int bedrock_b64(unsigned char c)
{
	int v = -1;

	if (c >= 'A' && c <= 'Z')
		v = c - 'A';
	else if (c >= 'a' && c <= 'z')
		v = c - 'a' + 26;
	else if (c >= '0' && c <= '9')
		v = c - '0' + 52;
	else if (c == '+' || c == '-')
		v = 62;
	else if (c == '/' || c == '_')
		v = 63;
	return v;
}

/* Decodes base64 text s[0..n) into a new buffer (*out, freed by the caller) of *out_len bytes.
 * Returns 0, or -1 on a bad character, an oversize text or no memory (*out NULL; no memory
 * also raises pjson's out-of-memory flag: the event is lost for want of memory). */
static int bedrock_unbase64(const char *s, size_t n, char **out, size_t *out_len)
{
	unsigned bits = 0, nbits = 0;
	size_t i, k = 0;
	char *buf = NULL;
	int rc = -1, v;

	*out = NULL;
	if (n / 4 * 3 > BEDROCK_CHUNK_MAX)
		goto done;
	buf = malloc(n / 4 * 3 + 3);
	if (buf == NULL) {
		pjson_nomem_raise();
		goto done;
	}
	for (i = 0; i < n && s[i] != '='; i++) {
		v = bedrock_b64((unsigned char)s[i]);
		if (v < 0)
			goto free_buf;
		bits = (bits << 6 | (unsigned)v) & 0xFFFFFF;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			buf[k++] = (char)(bits >> nbits & 0xFF);
		}
	}
	*out = buf;
	*out_len = k;
	rc = 0;
	goto done;
free_buf:
	free(buf);
done:
	return rc;
}

/* One invoke-with-response-stream chunk: the vendor's event, then Bedrock's own count. */
static void bedrock_chunk(struct usage *u, const cJSON *chunk)
{
	const char *b64 = pjson_str(chunk, "bytes");
	char *event = NULL;
	size_t n = 0;
	cJSON *root;

	if (b64 == NULL || bedrock_unbase64(b64, strlen(b64), &event, &n) != 0)
		goto done;
	provider_family_anthropic.event(u, NULL, 0, event, n);
	root = pjson_read(event, n, NULL);
	bedrock_counts(u, pjson_at(root, "amazon-bedrock-invocationMetrics", NULL),
		       "inputTokenCount", "outputTokenCount");
	pjson_free(root);
	free(event);
done:
	return;
}

static void bedrock_event(struct usage *u, const char *name, size_t name_len, const char *data,
			  size_t len)
{
	cJSON *root = pjson_read(data, len, NULL);
	const char *type;

	u->stream = 1;
	if (!cJSON_IsObject(root) || name == NULL)
		goto free_root;
	type = bedrock_error_type(name, name_len);
	if (type != NULL || (name_len > 9 && memcmp(name + name_len - 9, "Exception", 9) == 0)) {
		provider_set_error(u, type != NULL ? type : ERR_SERVER, pjson_str(root, "message"));
	} else if (name_len == 8 && memcmp(name, "metadata", 8) == 0) {
		bedrock_counts(u, pjson_at(root, "usage", NULL), "inputTokens", "outputTokens");
	} else if (name_len == 17 && memcmp(name, "contentBlockDelta", 17) == 0) {
		u->output_text_bytes += pjson_text_bytes(pjson_at(root, "delta", "text", NULL));
	} else if (name_len == 5 && memcmp(name, "chunk", 5) == 0) {
		bedrock_chunk(u, root);
	}
free_root:
	pjson_free(root);
}

const struct provider_family provider_family_bedrock = {
	.name = "bedrock",
	.api_of = bedrock_api_of,
	.request = bedrock_request,
	.event = bedrock_event,
	.body = bedrock_body,
	.response = bedrock_response,
};
