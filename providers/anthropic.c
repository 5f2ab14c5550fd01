/*
 * anthropic.c - the Anthropic Messages family (api.anthropic.com, and the Anthropic-compatible
 * endpoints of DeepSeek, xAI, Ollama and proxies).
 *
 * Anthropic counts input in three disjoint parts: input_tokens (uncached),
 * cache_creation_input_tokens (written to the cache) and cache_read_input_tokens. DESIGN.md's
 * input_tokens is their sum. The parts are kept apart while a stream is read, as the uncached
 * part is input_tokens - cache reads - cache writes of the usage so far, so that each may be
 * replaced on its own.
 *
 * A stream reports usage twice: message_start carries the input counts (and an output count
 * of a token or so), message_delta the cumulative final counts: always output_tokens, and in
 * newer versions the input fields too. Counts are cumulative, so the last value of each field
 * is taken, never a sum. A count never decreases: a compatible server that sends 0 in
 * message_delta for a field it does not track does not wipe the value message_start gave.
 *
 * Cache writes are made for five minutes or for one hour, at different prices; usage says how
 * many of each in cache_creation {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}, and
 * the one-hour part is kept apart (cache_write_1h_tokens, a part of cache_write_tokens).
 *
 * /v1/messages/count_tokens is free: the call is marked not_billed and carries no tokens.
 */
#include <string.h>

#include "providers/family.h"
#include "providers/pjson.h"

static const char *anthropic_api_of(const char *path)
{
	size_t len = provider_path_len(path), pre;
	const char *api = NULL;

	pre = provider_path_ends(path, len, "/v1/messages");
	if (pre) {
		api = "messages";
	} else {
		pre = provider_path_ends(path, len, "/v1/messages/count_tokens");
		if (pre)
			api = "messages.count_tokens";
	}
	/* A path that merely ends in /v1/messages (a chat app's REST API) is not Anthropic's
	 * unless it is the whole path or sits under an "anthropic" prefix (DeepSeek's
	 * /anthropic/v1/messages, gateways' …/anthropic/v1/messages). */
	if (api != NULL && pre > 1 && !provider_path_ends(path, pre - 1, "anthropic"))
		api = NULL;
	return api;
}

static void anthropic_request(struct usage *u, const struct provider_request *req)
{
	cJSON *root;
	int stream;

	u->api = anthropic_api_of(req->path);
	if (u->api != NULL && strcmp(u->api, "messages.count_tokens") == 0)
		u->not_billed = 1;
	root = provider_request_parse(u, req, &stream);
	u->stream = stream == 1;
	if (root != NULL) {
		u->request_text_bytes =
			pjson_text_bytes(pjson_at(root, "system", NULL)) +
			pjson_messages_text_bytes(pjson_at(root, "messages", NULL));
		pjson_free(root);
	}
}

static void anthropic_count(const cJSON *usage, const char *key, int64_t *count)
{
	int64_t v;

	if (pjson_int(usage, key, &v) && v > *count)
		*count = v;
}

static void anthropic_usage(struct usage *u, const cJSON *usage)
{
	int64_t uncached, cw, cr, out, cw1h = u->cache_write_1h_tokens;

	if (!cJSON_IsObject(usage))
		goto done;
	anthropic_count(pjson_at(usage, "cache_creation", NULL), "ephemeral_1h_input_tokens", &cw1h);
	u->cache_write_1h_tokens = cw1h;
	cw = u->cache_write_tokens;
	cr = u->cache_read_tokens;
	uncached = u->input_tokens - cw - cr;
	out = u->output_tokens;
	anthropic_count(usage, "input_tokens", &uncached);
	anthropic_count(usage, "cache_creation_input_tokens", &cw);
	anthropic_count(usage, "cache_read_input_tokens", &cr);
	anthropic_count(usage, "output_tokens", &out);
	u->input_tokens = uncached + cw + cr;
	u->cache_write_tokens = cw;
	u->cache_read_tokens = cr;
	u->output_tokens = out;
	u->have_usage = 1;
done:
	return;
}

/* {"type": "error", "error": {"type": "overloaded_error", "message": "…"}} */
static void anthropic_error(struct usage *u, const cJSON *root)
{
	const cJSON *err = pjson_at(root, "error", NULL);

	if (cJSON_IsObject(err))
		provider_set_error(u, provider_error_type(pjson_str(err, "type")),
				   pjson_str(err, "message"));
	else if (cJSON_IsString(err))
		provider_set_error(u, NULL, err->valuestring);
}

static void anthropic_event(struct usage *u, const char *name, size_t name_len,
			    const char *data, size_t len)
{
	cJSON *root;
	const char *type;

	(void)name;
	(void)name_len;
	u->stream = 1;
	root = pjson_read(data, len, NULL);
	if (!cJSON_IsObject(root))
		goto free_root;
	/* The data's "type" repeats the SSE event name, and is there even when a proxy drops
	 * the event: lines. */
	type = pjson_str(root, "type");
	if (type == NULL)
		goto free_root;
	if (strcmp(type, "message_start") == 0) {
		const cJSON *msg = pjson_at(root, "message", NULL);
		provider_set_model(u, msg);
		anthropic_usage(u, pjson_at(msg, "usage", NULL));
	} else if (strcmp(type, "message_delta") == 0) {
		anthropic_usage(u, pjson_at(root, "usage", NULL));
	} else if (strcmp(type, "content_block_delta") == 0) {
		u->output_text_bytes += pjson_text_bytes(pjson_at(root, "delta", NULL));
	} else if (strcmp(type, "error") == 0) {
		anthropic_error(u, root);
	}
free_root:
	pjson_free(root);
}

static void anthropic_body(struct usage *u, int status, const char *data, size_t len)
{
	cJSON *root = pjson_read(data, len, NULL);

	(void)status;
	u->stream = 0;
	if (!cJSON_IsObject(root))
		goto free_root;
	anthropic_error(u, root);
	/* count_tokens answers {"input_tokens": N}: a count, not tokens consumed. */
	if (u->not_billed)
		goto free_root;
	provider_set_model(u, root);
	anthropic_usage(u, pjson_at(root, "usage", NULL));
	u->output_text_bytes += pjson_text_bytes(pjson_at(root, "content", NULL));
free_root:
	pjson_free(root);
}

const struct provider_family provider_family_anthropic = {
	.name = "anthropic",
	.api_of = anthropic_api_of,
	.request = anthropic_request,
	.event = anthropic_event,
	.body = anthropic_body,
};
