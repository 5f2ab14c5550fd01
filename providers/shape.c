/*
 * shape.c - the family of calls to hosts tokshim has never heard of, at paths no family knows.
 *
 * provider_match_candidate (provider.c) lets a JSON POST to an unknown host through as a
 * candidate; this family then decides by the shape of the response alone whether it was an LLM
 * call: a body or stream event that carries a usage object of a form some family reads is handed
 * to that family's reader, which fills the usage as it would for its own hosts. A response that
 * carries none leaves have_usage 0, and capture writes no record for the candidate. No list of
 * model names is involved: a gateway, proxy or self-hosted server answering in any of the known
 * vocabularies is recorded under its host name.
 *
 * The forms, tried in this order (the first that fits reads the object):
 *   Gemini     "usageMetadata": {...}
 *   Ollama     "prompt_eval_count" / "eval_count" numbers at the top
 *   Anthropic  "usage" with cache_creation_input_tokens or cache_read_input_tokens, or a
 *              "type" of message, message_start or message_delta (usage under "message" in
 *              message_start)
 *   OpenAI     "usage" (or "response.usage", "x_groq.usage") with prompt_tokens,
 *              completion_tokens, input_tokens or output_tokens
 * Anthropic comes before OpenAI because both name input_tokens/output_tokens and only
 * Anthropic's input excludes its cache counts: the cache fields or the type tell them apart.
 */
#include <string.h>

#include "providers/family.h"
#include "providers/pjson.h"

static int shape_has_number(const cJSON *o, const char *key)
{
	return cJSON_IsNumber(pjson_at(o, key, NULL));
}

static int shape_is_anthropic(const cJSON *root, const cJSON *usage)
{
	const char *type = pjson_str(root, "type");

	if (type != NULL && (strcmp(type, "message") == 0 || strcmp(type, "message_start") == 0 ||
			     strcmp(type, "message_delta") == 0))
		return 1;
	return shape_has_number(usage, "cache_creation_input_tokens") ||
	       shape_has_number(usage, "cache_read_input_tokens");
}

/* The family whose vocabulary the usage in this response object speaks, or NULL. */
static const struct provider_family *shape_family_of(const cJSON *root)
{
	const struct provider_family *f = NULL;
	const cJSON *usage;

	if (cJSON_IsArray(root)) /* a streamed JSON array read whole: its last element counts */
		root = cJSON_GetArrayItem(root, cJSON_GetArraySize(root) - 1);
	if (!cJSON_IsObject(root))
		goto done;
	if (cJSON_IsObject(pjson_at(root, "usageMetadata", NULL))) {
		f = &provider_family_gemini;
		goto done;
	}
	if (shape_has_number(root, "prompt_eval_count") || shape_has_number(root, "eval_count")) {
		f = &provider_family_ollama;
		goto done;
	}
	usage = pjson_at(root, "usage", NULL);
	if (!cJSON_IsObject(usage))
		usage = pjson_at(root, "message", "usage", NULL);
	if (!cJSON_IsObject(usage))
		usage = pjson_at(root, "response", "usage", NULL);
	if (!cJSON_IsObject(usage))
		usage = pjson_at(root, "x_groq", "usage", NULL);
	if (!cJSON_IsObject(usage))
		goto done;
	if (shape_is_anthropic(root, usage))
		f = &provider_family_anthropic;
	else if (shape_has_number(usage, "prompt_tokens") ||
		 shape_has_number(usage, "completion_tokens") ||
		 shape_has_number(usage, "input_tokens") || shape_has_number(usage, "output_tokens"))
		f = &provider_family_openai;
done:
	return f;
}

static const char *shape_api_of(const char *path)
{
	(void)path;
	return "unknown";
}

static void shape_request(struct usage *u, const struct provider_request *req)
{
	int stream;

	pjson_free(provider_request_parse(u, req, &stream));
	u->stream = stream == 1;
}

/* Events that carry no usage (text deltas) are passed over: a candidate is recorded only by
 * its usage, never estimated, so the text is not needed. */
static void shape_event(struct usage *u, const char *name, size_t name_len, const char *data,
			size_t len)
{
	cJSON *root = pjson_read(data, len, NULL);
	const struct provider_family *f = shape_family_of(root);

	pjson_free(root);
	u->stream = 1;
	if (f != NULL)
		f->event(u, name, name_len, data, len);
}

static void shape_body(struct usage *u, int status, const char *data, size_t len)
{
	cJSON *root = pjson_read(data, len, NULL);
	const struct provider_family *f = shape_family_of(root);

	pjson_free(root);
	if (f != NULL)
		f->body(u, status, data, len);
}

const struct provider_family provider_family_shape = {
	.name = "shape",
	.api_of = shape_api_of,
	.request = shape_request,
	.event = shape_event,
	.body = shape_body,
};
