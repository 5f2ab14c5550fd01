/*
 * cohere.c - the Cohere family (api.cohere.com, and the older api.cohere.ai): v1 and v2 chat,
 * v1 and v2 embed.
 *
 * Cohere reports usage in two views. "tokens" counts what the model read and wrote (input
 * including the cached part, reported as cached_tokens); "billed_units" counts what Cohere
 * charges, which leaves out the tokens of its prompt template and so is smaller. v2 puts both in
 * "usage" ({"billed_units", "tokens", "cached_tokens"}), v1 in "meta" ({"billed_units",
 * "tokens"}).
 *
 * Rule (also in docs/providers.md): a record's token fields follow DESIGN.md's one meaning,
 * every token read or written, so they come from "tokens" (and cache_read from cached_tokens)
 * whenever the response has them; only when it has billed_units alone (embed, and v1 chat from
 * older API versions) are the billed units the tokens. The billed units also go into the
 * record's billed_input/output_tokens (marked with RECORD_BILLED_UNITS), and the cost is
 * computed from those at report time: Cohere charges billed units, not tokens.
 *
 * Streams: v2 is SSE, the usage in the message-end event's delta.usage; v1 is one JSON object
 * a line (application/stream+json) whose last, event_type "stream-end", holds the whole
 * response with its meta. The response names no model: the record's model is the requested one.
 */
#include <string.h>

#include "providers/family.h"
#include "providers/pjson.h"

static const char *cohere_api_of(const char *path)
{
	static const struct provider_api apis[] = {
		{"/v1/chat", "chat"},
		{"/v2/chat", "chat"},
		{"/v1/embed", "embed"},
		{"/v2/embed", "embed"},
	};

	return provider_api_of_table(path, apis, sizeof apis / sizeof apis[0]);
}

static void cohere_request(struct usage *u, const struct provider_request *req)
{
	cJSON *root;
	int stream;

	u->api = cohere_api_of(req->path);
	root = provider_request_parse(u, req, &stream);
	u->stream = stream == 1;
	if (root != NULL) {
		/* v2 messages, v1 message + chat_history + preamble, embed texts. */
		u->request_text_bytes =
			pjson_messages_text_bytes(pjson_at(root, "messages", NULL)) +
			pjson_text_bytes(pjson_at(root, "message", NULL)) +
			pjson_text_bytes(pjson_at(root, "preamble", NULL)) +
			pjson_text_bytes(pjson_at(root, "texts", NULL));
		pjson_free(root);
	}
}

/* Reads a usage (v2) or meta (v1) object. */
static void cohere_usage(struct usage *u, const cJSON *usage)
{
	const cJSON *tokens = pjson_at(usage, "tokens", NULL);
	const cJSON *billed = pjson_at(usage, "billed_units", NULL);
	const cJSON *counts = cJSON_IsObject(tokens) ? tokens : billed;
	int64_t in = 0, out = 0, cached = 0, billed_in = 0, billed_out = 0;

	if (!cJSON_IsObject(counts))
		goto done;
	if (cJSON_IsObject(billed) && (pjson_int(billed, "input_tokens", &billed_in) |
				       pjson_int(billed, "output_tokens", &billed_out))) {
		u->have_billed_units = 1;
		u->billed_input_tokens = billed_in;
		u->billed_output_tokens = billed_out;
	}
	pjson_int(counts, "input_tokens", &in);
	pjson_int(counts, "output_tokens", &out);
	pjson_int(usage, "cached_tokens", &cached);
	u->input_tokens = in;
	u->output_tokens = out;
	u->cache_read_tokens = cached < in ? cached : in;
	u->cache_write_tokens = 0;
	u->reasoning_tokens = 0;
	u->have_usage = 1;
done:
	return;
}

/* Errors are {"message": "…"} (v1 and v2; v2 adds "id"): the type comes from the status. */
static void cohere_error(struct usage *u, int status, const cJSON *root)
{
	if (status >= 400)
		provider_set_error(u, NULL, pjson_str(root, "message"));
}

static void cohere_event(struct usage *u, const char *name, size_t name_len, const char *data,
			 size_t len)
{
	cJSON *root = pjson_read(data, len, NULL);
	const char *type;

	(void)name;
	(void)name_len;
	u->stream = 1;
	if (!cJSON_IsObject(root))
		goto free_root;
	type = pjson_str(root, "type"); /* v2; v1 says event_type */
	if (type == NULL)
		type = pjson_str(root, "event_type");
	if (type == NULL)
		goto free_root;
	if (strcmp(type, "message-end") == 0) {
		cohere_usage(u, pjson_at(root, "delta", "usage", NULL));
	} else if (strcmp(type, "stream-end") == 0) {
		cohere_usage(u, pjson_at(root, "response", "meta", NULL));
	} else if (strcmp(type, "content-delta") == 0) {
		u->output_text_bytes +=
			pjson_text_bytes(pjson_at(root, "delta", "message", "content", NULL));
	} else if (strcmp(type, "text-generation") == 0) {
		u->output_text_bytes += pjson_text_bytes(pjson_at(root, "text", NULL));
	}
free_root:
	pjson_free(root);
}

static void cohere_body(struct usage *u, int status, const char *data, size_t len)
{
	cJSON *root = pjson_read(data, len, NULL);

	u->stream = 0;
	if (!cJSON_IsObject(root))
		goto free_root;
	cohere_error(u, status, root);
	cohere_usage(u, pjson_at(root, "usage", NULL));
	if (!u->have_usage)
		cohere_usage(u, pjson_at(root, "meta", NULL));
	u->output_text_bytes += pjson_text_bytes(pjson_at(root, "message", "content", NULL)) +
				pjson_text_bytes(pjson_at(root, "text", NULL));
free_root:
	pjson_free(root);
}

const struct provider_family provider_family_cohere = {
	.name = "cohere",
	.api_of = cohere_api_of,
	.request = cohere_request,
	.event = cohere_event,
	.body = cohere_body,
};
