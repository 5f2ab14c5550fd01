/*
 * ollama.c - the Ollama API family: /api/chat, /api/generate, /api/embed (and the older
 * /api/embeddings). Ollama's OpenAI-compatible /v1 endpoints are read by openai.c.
 *
 * Streams are NDJSON: one JSON object a line, the last with "done": true and the counts
 * prompt_eval_count (input) and eval_count (output). A request that does not say "stream"
 * gets a stream from /api/chat and /api/generate: Ollama's default is true.
 *
 * Ollama omits prompt_eval_count when it is 0, which happens when the whole prompt was served
 * from the model's KV cache (a repeated prompt). Such a response still carries exact usage, so
 * its input is recorded as 0, not estimated: estimating would invent tokens the server says it
 * did not evaluate. Ollama reports no cache or reasoning counts (thinking is inside eval_count).
 *
 * A body handed over whole is read line by line too, so an NDJSON stream delivered as one body
 * (a response whose Content-Type the caller did not take for a stream) is still read right.
 */
#include <string.h>

#include "providers/family.h"
#include "providers/pjson.h"

static const char *ollama_api_of(const char *path)
{
	static const struct provider_api apis[] = {
		{"/api/chat", "chat"},
		{"/api/generate", "generate"},
		{"/api/embed", "embed"},
		{"/api/embeddings", "embeddings"},
	};

	return provider_api_of_table(path, apis, sizeof apis / sizeof apis[0]);
}

static void ollama_request(struct usage *u, const struct provider_request *req)
{
	cJSON *root;
	int stream, generates;

	u->api = ollama_api_of(req->path);
	generates = u->api != NULL &&
		    (strcmp(u->api, "chat") == 0 || strcmp(u->api, "generate") == 0);
	root = provider_request_parse(u, req, &stream);
	u->stream = stream == 1 || (stream == -1 && generates);
	if (root != NULL) {
		u->request_text_bytes =
			pjson_messages_text_bytes(pjson_at(root, "messages", NULL)) +
			pjson_text_bytes(pjson_at(root, "system", NULL)) +
			pjson_text_bytes(pjson_at(root, "prompt", NULL)) +
			pjson_text_bytes(pjson_at(root, "input", NULL));
		pjson_free(root);
	}
}

/* One response object: a stream line or a whole non-streamed body. in_error_status: the
 * response's status already says it failed (the status then names the error type). */
static void ollama_object(struct usage *u, const cJSON *o, int in_error_status)
{
	const char *err = pjson_str(o, "error");
	const cJSON *msg = pjson_at(o, "message", NULL);
	int64_t in = 0, out = 0;
	int have_in, have_out;

	if (err != NULL) {
		/* An error line inside a 200 stream is the server failing mid-generation. */
		provider_set_error(u, in_error_status ? NULL : ERR_SERVER, err);
		goto done;
	}
	provider_set_model(u, o);
	u->output_text_bytes += pjson_text_bytes(pjson_at(o, "response", NULL)) +
				pjson_text_bytes(pjson_at(o, "thinking", NULL));
	if (msg != NULL)
		u->output_text_bytes += pjson_text_bytes(pjson_at(msg, "content", NULL)) +
					pjson_text_bytes(pjson_at(msg, "thinking", NULL)) +
					pjson_text_bytes(pjson_at(msg, "tool_calls", NULL));
	have_in = pjson_int(o, "prompt_eval_count", &in);
	have_out = pjson_int(o, "eval_count", &out);
	/* The final line says done; /api/embed answers with counts but no done field. */
	if (pjson_bool(o, "done") == 1 || have_in || have_out)
		usage_set_counts(u, in, out);
done:
	return;
}

static void ollama_line(struct usage *u, const char *data, size_t len, int in_error_status)
{
	cJSON *root = pjson_read(data, len, NULL);

	if (cJSON_IsObject(root))
		ollama_object(u, root, in_error_status);
	pjson_free(root);
}

static void ollama_event(struct usage *u, const char *name, size_t name_len, const char *data,
			 size_t len)
{
	(void)name;
	(void)name_len;
	u->stream = 1;
	ollama_line(u, data, len, 0);
}

static void ollama_body(struct usage *u, int status, const char *data, size_t len)
{
	const char *p = data, *end = data + len;
	int lines = 0;
	const char *rest = NULL;
	cJSON *root = pjson_read(data, len, &rest);

	/* One object over several lines (a proxy that pretty-prints) is one body, not a stream;
	 * an NDJSON stream parses as its first line with more after it. */
	while (root != NULL && rest != NULL && rest < end &&
	       (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n'))
		rest++;
	if (cJSON_IsObject(root) && rest == end) {
		ollama_object(u, root, status >= 400);
		p = NULL;
	}
	pjson_free(root);
	while (p != NULL && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;

		if (stop > p && !(stop - p == 1 && *p == '\r')) {
			ollama_line(u, p, (size_t)(stop - p), status >= 400);
			lines++;
		}
		p = nl ? nl + 1 : NULL;
	}
	u->stream = lines > 1;
}

const struct provider_family provider_family_ollama = {
	.name = "ollama",
	.api_of = ollama_api_of,
	.request = ollama_request,
	.event = ollama_event,
	.body = ollama_body,
};
