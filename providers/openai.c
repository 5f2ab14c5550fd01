/*
 * openai.c - the OpenAI family: chat completions, the Responses API, legacy completions and
 * embeddings, as served by OpenAI and by every OpenAI-compatible service (Groq, DeepSeek,
 * Mistral, xAI, OpenRouter, Together, Fireworks, Azure, Ollama's /v1, vLLM …).
 *
 * Usage arrives in one of two vocabularies: chat's prompt_tokens/completion_tokens with
 * prompt_tokens_details.cached_tokens and completion_tokens_details.reasoning_tokens, or the
 * Responses API's input_tokens/output_tokens with input_tokens_details/output_tokens_details.
 * Both count cached tokens inside the input and reasoning inside the output, as DESIGN.md
 * wants. Two compatible services differ, and are read by their own fields: DeepSeek reports
 * its cache hits as prompt_cache_hit_tokens, and xAI leaves reasoning out of completion_tokens
 * (its total_tokens then equals prompt + completion + reasoning, which is how it is told apart).
 * Groq's older streams put usage under x_groq.usage.
 *
 * The response's "service_tier" (default, flex, priority, scale) says at which price the call
 * was served: it is kept in the record, and the price table multiplies the cost by the tier's
 * factor where it has one.
 *
 * A chat stream carries usage only in its last chunk, and only when the request asked for it
 * with stream_options.include_usage; otherwise the generated text is counted for estimation.
 */
#include <string.h>

#include "providers/family.h"
#include "providers/pjson.h"
#include "store/record.h"

/* Does the path before the endpoint look like an OpenAI-style API root (…/v1, Azure's
 * /openai/deployments/NAME)? Used for the endpoint names that are too generic to trust alone. */
static int openai_root_fits(const char *path, size_t prefix_len)
{
	size_t i;
	int fits = provider_path_ends(path, prefix_len, "/v1") != 0;

	for (i = 0; !fits && i + 13 <= prefix_len; i++)
		fits = memcmp(path + i, "/deployments/", 13) == 0;
	return fits;
}

static const char *openai_api_of(const char *path)
{
	size_t len = provider_path_len(path), pre;
	const char *api = NULL;

	if (provider_path_ends(path, len, "/chat/completions")) {
		api = "chat.completions";
		goto done;
	}
	pre = provider_path_ends(path, len, "/responses");
	if (pre && openai_root_fits(path, pre - 1)) {
		api = "responses";
		goto done;
	}
	pre = provider_path_ends(path, len, "/embeddings");
	if (pre && openai_root_fits(path, pre - 1)) {
		api = "embeddings";
		goto done;
	}
	pre = provider_path_ends(path, len, "/completions");
	if (pre && openai_root_fits(path, pre - 1))
		api = "completions";
done:
	return api;
}

/* Azure names the deployment in the path, not the model in the body. */
static void openai_model_from_path(struct usage *u, const char *path)
{
	const char *p = path ? strstr(path, "/deployments/") : NULL;
	size_t n;

	if (p == NULL)
		goto done;
	p += 13;
	n = strcspn(p, "/?#");
	if (n == 0 || n >= sizeof u->model_requested)
		goto done;
	memcpy(u->model_requested, p, n);
	u->model_requested[n] = '\0';
done:
	return;
}

/* Perplexity's search_context_size ("low", "medium", "high") as enum record_search. */
static int openai_search_context(const char *size)
{
	int c = RECORD_SEARCH_UNKNOWN;

	if (size == NULL)
		goto done;
	if (strcmp(size, "low") == 0)
		c = RECORD_SEARCH_LOW;
	else if (strcmp(size, "medium") == 0)
		c = RECORD_SEARCH_MEDIUM;
	else if (strcmp(size, "high") == 0)
		c = RECORD_SEARCH_HIGH;
done:
	return c;
}

static void openai_request(struct usage *u, const struct provider_request *req)
{
	cJSON *root;
	int stream;

	u->api = openai_api_of(req->path);
	root = provider_request_parse(u, req, &stream);
	u->stream = stream == 1;
	if (root != NULL) {
		u->request_text_bytes =
			pjson_messages_text_bytes(pjson_at(root, "messages", NULL)) +
			pjson_text_bytes(pjson_at(root, "prompt", NULL)) +
			pjson_text_bytes(pjson_at(root, "input", NULL)) +
			pjson_text_bytes(pjson_at(root, "instructions", NULL));
		u->search_context = openai_search_context(
			pjson_str(pjson_at(root, "web_search_options", NULL), "search_context_size"));
		pjson_free(root);
	}
	if (u->model_requested[0] == '\0')
		openai_model_from_path(u, req->path);
}

/* The provider's own bill in the usage: OpenRouter's "cost": USD, Perplexity's "cost":
 * {"total_cost": USD, …}. Held in pico-USD; a value that is not a sane amount is ignored. */
static void openai_billed_cost(struct usage *u, const cJSON *usage)
{
	const cJSON *cost = pjson_at(usage, "cost", NULL);
	double usd;

	if (cJSON_IsObject(cost))
		cost = pjson_at(cost, "total_cost", NULL);
	if (!cJSON_IsNumber(cost))
		goto done;
	usd = cost->valuedouble;
	if (!(usd >= 0 && usd < 1e6))
		goto done;
	u->billed = 1;
	u->billed_cost_pusd = (int64_t)(usd * 1e12 + 0.5); /* rounded: usd is not negative */
done:
	return;
}

/* Reads a usage object of either vocabulary. */
static void openai_usage(struct usage *u, const cJSON *usage)
{
	int64_t in = 0, out = 0, cached = 0, reasoning = 0, total = -1, citation = 0, searches;
	int have, context;

	if (!cJSON_IsObject(usage))
		goto done;
	have = pjson_int(usage, "prompt_tokens", &in) | pjson_int(usage, "input_tokens", &in);
	have |= pjson_int(usage, "completion_tokens", &out) |
		pjson_int(usage, "output_tokens", &out);
	if (!have)
		goto done;
	if (!pjson_int(pjson_at(usage, "prompt_tokens_details", NULL), "cached_tokens", &cached) &&
	    !pjson_int(pjson_at(usage, "input_tokens_details", NULL), "cached_tokens", &cached))
		pjson_int(usage, "prompt_cache_hit_tokens", &cached);
	pjson_int(usage, "total_tokens", &total);
	if (!pjson_int(pjson_at(usage, "completion_tokens_details", NULL), "reasoning_tokens",
		       &reasoning) &&
	    !pjson_int(pjson_at(usage, "output_tokens_details", NULL), "reasoning_tokens",
		       &reasoning) &&
	    pjson_int(usage, "reasoning_tokens", &reasoning) && total == in + out)
		out += reasoning; /* Perplexity: beside completion_tokens, outside total_tokens */
	/* Reasoning reported beside the output rather than inside it (xAI). */
	if (reasoning > 0 && total == in + out + reasoning)
		out += reasoning;
	/* Perplexity's citation tokens: retrieved text the model read, outside prompt_tokens. */
	if (pjson_int(usage, "citation_tokens", &citation))
		in += citation;
	if (pjson_int(usage, "num_search_queries", &searches))
		u->search_queries = searches;
	context = openai_search_context(pjson_str(usage, "search_context_size"));
	if (context != RECORD_SEARCH_UNKNOWN)
		u->search_context = context;
	openai_billed_cost(u, usage);
	u->input_tokens = in;
	u->output_tokens = out;
	u->cache_read_tokens = cached;
	u->cache_write_tokens = 0;
	u->reasoning_tokens = reasoning;
	u->have_usage = 1;
done:
	return;
}

/* {"error": {"type", "code", "message"}}, or {"error": "text"}, or Mistral's top-level
 * {"object": "error", "type", "message"}. */
static void openai_error(struct usage *u, const cJSON *root)
{
	const cJSON *err = pjson_at(root, "error", NULL);
	const char *type, *object = pjson_str(root, "object");

	if (cJSON_IsString(err)) {
		provider_set_error(u, NULL, err->valuestring);
		goto done;
	}
	if (!cJSON_IsObject(err)) {
		if (object == NULL || strcmp(object, "error") != 0)
			goto done;
		err = root;
	}
	/* The code is the more precise of the two (type invalid_request_error, code
	 * invalid_api_key is an authentication failure). */
	type = provider_error_type(pjson_str(err, "code"));
	if (type == NULL)
		type = provider_error_type(pjson_str(err, "type"));
	provider_set_error(u, type, pjson_str(err, "message"));
done:
	return;
}

/* Generated text in chat choices (message or delta) and legacy completion choices. */
static uint64_t openai_choices_text_bytes(const cJSON *choices)
{
	static const char *const keys[] = {"content", "reasoning_content", "reasoning", "refusal",
					   "tool_calls"};
	/* Only an array's children are choices ("choices": null is no choice at all). */
	const cJSON *list = cJSON_IsArray(choices) ? choices : NULL, *c;
	uint64_t n = 0;
	size_t i;

	cJSON_ArrayForEach(c, list) {
		const cJSON *msg = pjson_at(c, "delta", NULL);

		if (msg == NULL)
			msg = pjson_at(c, "message", NULL);
		for (i = 0; msg != NULL && i < sizeof keys / sizeof keys[0]; i++)
			n += pjson_text_bytes(pjson_at(msg, keys[i], NULL));
		n += pjson_text_bytes(pjson_at(c, "text", NULL));
	}
	return n;
}

/* The service tier a response object reports; other names ("auto", Groq's "on_demand")
 * leave the tier as it was. */
static void openai_service_tier(struct usage *u, const cJSON *o)
{
	const char *tier = pjson_str(o, "service_tier");
	int t = tier != NULL ? record_tier_of(tier, strlen(tier)) : RECORD_TIER_UNKNOWN;

	if (t != RECORD_TIER_UNKNOWN)
		u->service_tier = t;
}

/* What every chat or completions response object (a body or a stream chunk) may say: the
 * model, its service tier, and the server's identity where its API does not say it
 * (llama.cpp's server puts "timings" in its responses). */
static void openai_response_common(struct usage *u, const cJSON *root)
{
	provider_set_model(u, root);
	openai_service_tier(u, root);
	if (cJSON_IsObject(pjson_at(root, "timings", NULL)))
		u->provider = "llama_cpp";
}

/* A Responses API stream event (its type starts with "response." or is "error"). */
static void openai_responses_event(struct usage *u, const char *type, const cJSON *root)
{
	const cJSON *resp = pjson_at(root, "response", NULL);

	if (strcmp(type, "error") == 0) {
		provider_set_error(u, provider_error_type(pjson_str(root, "code")),
				   pjson_str(root, "message"));
	} else if (strstr(type, ".delta") != NULL) {
		/* Text, refusal, function-call arguments and reasoning summaries all stream as
		 * deltas; counting every one is what estimation needs. */
		u->output_text_bytes += pjson_text_bytes(pjson_at(root, "delta", NULL));
	} else if (resp != NULL) {
		provider_set_model(u, resp);
		openai_service_tier(u, resp);
		openai_usage(u, pjson_at(resp, "usage", NULL));
		openai_error(u, resp);
	}
}

static void openai_event(struct usage *u, const char *name, size_t name_len, const char *data,
			 size_t len)
{
	cJSON *root;
	const char *type;
	const cJSON *usage;

	(void)name;
	(void)name_len;
	u->stream = 1;
	/* "[DONE]" is not JSON: it parses to nothing and is passed over. */
	root = pjson_read(data, len, NULL);
	if (!cJSON_IsObject(root))
		goto free_root;
	type = pjson_str(root, "type");
	if (type != NULL && (strncmp(type, "response.", 9) == 0 || strcmp(type, "error") == 0)) {
		openai_responses_event(u, type, root);
		goto free_root;
	}
	openai_response_common(u, root);
	usage = pjson_at(root, "usage", NULL);
	if (!cJSON_IsObject(usage))
		usage = pjson_at(root, "x_groq", "usage", NULL);
	openai_usage(u, usage);
	u->output_text_bytes += openai_choices_text_bytes(pjson_at(root, "choices", NULL));
	openai_error(u, root);
free_root:
	pjson_free(root);
}

static void openai_body(struct usage *u, int status, const char *data, size_t len)
{
	cJSON *root = pjson_read(data, len, NULL);

	(void)status;
	u->stream = 0;
	if (!cJSON_IsObject(root))
		goto free_root;
	openai_response_common(u, root);
	openai_usage(u, pjson_at(root, "usage", NULL));
	u->output_text_bytes += openai_choices_text_bytes(pjson_at(root, "choices", NULL));
	/* Responses API: output items (messages, function calls, reasoning summaries). */
	u->output_text_bytes += pjson_text_bytes(pjson_at(root, "output", NULL));
	openai_error(u, root);
free_root:
	pjson_free(root);
}

const struct provider_family provider_family_openai = {
	.name = "openai",
	.api_of = openai_api_of,
	.request = openai_request,
	.event = openai_event,
	.body = openai_body,
};
