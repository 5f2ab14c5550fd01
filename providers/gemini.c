/*
 * gemini.c - the Google Gemini family: the Gemini API (generativelanguage.googleapis.com,
 * provider gcp.gemini) and the same methods on Vertex AI (REGION-aiplatform.googleapis.com,
 * aiplatform.googleapis.com; provider gcp.vertex_ai).
 *
 * The method is the path's ":verb" suffix (models/gemini-2.5-flash:generateContent, or on
 * Vertex projects/P/locations/L/publishers/google/models/M:generateContent), and the model the
 * path segment before it: Gemini requests carry no "model" field. The response names the model
 * that answered in modelVersion.
 *
 * streamGenerateContent answers in one of two framings: with ?alt=sse, SSE events each holding
 * one GenerateContentResponse; without it, one JSON array whose elements arrive as they are
 * made, sent as application/json. The family tells capture so (gemini_response): any
 * streamGenerateContent response that is not SSE is read element by element. Either way each
 * piece is a GenerateContentResponse whose usageMetadata, where present, is cumulative (the last
 * one is the call's usage; usually only the last chunk has it): it replaces what came before,
 * never adds to it.
 *
 * Token semantics (DESIGN.md): input = promptTokenCount + toolUsePromptTokenCount (the prompt
 * count already includes cached content), cache_read = cachedContentTokenCount, output =
 * candidatesTokenCount + thoughtsTokenCount, reasoning = thoughtsTokenCount.
 *
 * embedContent and batchEmbedContents answer with vectors and, on the Gemini API, no usage.
 * Their tokens are then estimated from the request's text (the rule of docs/providers.md) and
 * the record says estimated; a usageMetadata in the answer, where one is sent, wins. countTokens
 * is free: marked not_billed, its count is not tokens consumed.
 *
 * Vertex AI serves its text embedding models (text-embedding-005, gemini-embedding-001 …) with
 * the older ":predict" method on publishers/google/models/M: {"instances": [{"content"}]}
 * answered by {"predictions": [{"embeddings": {"statistics": {"token_count"}, "values"}}]}.
 * The input is the sum of the token counts; without them it is estimated from the instances'
 * text. Only a path under ".../models/" is a predict call (an endpoints/E:predict is a
 * user's own deployed model, not an LLM call).
 */
#include <string.h>
#include <strings.h>

#include "providers/family.h"
#include "providers/pjson.h"

static const struct {
	const char *verb;
	const char *api;
} gemini_apis[] = {
	{":generateContent", "generateContent"},
	{":streamGenerateContent", "streamGenerateContent"},
	{":embedContent", "embedContent"},
	{":batchEmbedContents", "batchEmbedContents"},
	{":countTokens", "countTokens"},
	{":predict", "predict"},
};

/* The ':' that starts the method in the path's last segment, or NULL. */
static const char *gemini_verb(const char *path, size_t len)
{
	const char *colon = NULL;
	size_t i;

	for (i = len; i > 0 && path[i - 1] != '/'; i--) {
		if (path[i - 1] == ':') {
			colon = path + i - 1;
			break;
		}
	}
	return colon;
}

static const char *gemini_api_of(const char *path)
{
	size_t len = provider_path_len(path), vlen, i;
	const char *verb = gemini_verb(path, len), *api = NULL;

	if (verb == NULL)
		goto done;
	vlen = len - (size_t)(verb - path);
	for (i = 0; i < sizeof gemini_apis / sizeof gemini_apis[0]; i++) {
		if (strlen(gemini_apis[i].verb) == vlen && memcmp(gemini_apis[i].verb, verb, vlen) == 0) {
			api = gemini_apis[i].api;
			break;
		}
	}
	if (api != NULL && strcmp(api, "predict") == 0) {
		size_t start = (size_t)(verb - path);

		while (start > 0 && path[start - 1] != '/')
			start--;
		if (!provider_path_ends(path, start, "/models/"))
			api = NULL;
	}
done:
	return api;
}

/* The model named by the path: its last segment before the ':'. */
static void gemini_model_of_path(struct usage *u, const char *path)
{
	size_t len = provider_path_len(path), start, n;
	const char *verb = gemini_verb(path, len);
	char buf[USAGE_MODEL_MAX];

	if (verb == NULL)
		goto done;
	start = (size_t)(verb - path);
	while (start > 0 && path[start - 1] != '/')
		start--;
	n = (size_t)(verb - path) - start;
	if (n == 0 || n >= sizeof buf)
		goto done;
	memcpy(buf, path + start, n);
	buf[n] = '\0';
	usage_set_str(u->model_requested, sizeof u->model_requested, buf);
done:
	return;
}

/* Text bytes of a Content ({"role", "parts": [{"text"}, …]}) or an array of them. */
static uint64_t gemini_content_bytes(const cJSON *c)
{
	const cJSON *item;
	uint64_t n = 0;

	if (cJSON_IsArray(c)) {
		cJSON_ArrayForEach(item, c)
			n += gemini_content_bytes(item);
	} else {
		n = pjson_text_bytes(pjson_at(c, "parts", NULL));
	}
	return n;
}

static void gemini_request(struct usage *u, const struct provider_request *req)
{
	cJSON *root;
	const cJSON *item;
	uint64_t n;

	u->api = gemini_api_of(req->path);
	gemini_model_of_path(u, req->path);
	u->stream = u->api != NULL && strcmp(u->api, "streamGenerateContent") == 0;
	u->not_billed = u->api != NULL && strcmp(u->api, "countTokens") == 0;
	root = pjson_read(req->body, req->body_len, NULL);
	if (root == NULL)
		goto done;
	n = gemini_content_bytes(pjson_at(root, "contents", NULL)) +
	    gemini_content_bytes(pjson_at(root, "content", NULL)) +
	    gemini_content_bytes(pjson_at(root, "systemInstruction", NULL)) +
	    gemini_content_bytes(pjson_at(root, "system_instruction", NULL));
	/* batchEmbedContents: {"requests": [{"model", "content"}, …]} */
	cJSON_ArrayForEach(item, pjson_at(root, "requests", NULL))
		n += gemini_content_bytes(pjson_at(item, "content", NULL));
	/* Vertex :predict: {"instances": [{"content": "text"}, …]} */
	cJSON_ArrayForEach(item, pjson_at(root, "instances", NULL))
		n += pjson_text_bytes(pjson_at(item, "content", NULL));
	u->request_text_bytes = n;
	pjson_free(root);
done:
	return;
}

/* google.rpc.Code names, by what they mean for the caller. */
static const char *gemini_error_type(const char *status)
{
	static const struct {
		const char *status;
		const char *type;
	} map[] = {
		{"RESOURCE_EXHAUSTED", ERR_RATE_LIMIT},
		{"UNAVAILABLE", ERR_OVERLOADED},
		{"UNAUTHENTICATED", ERR_AUTH},
		{"PERMISSION_DENIED", ERR_AUTH},
		{"INVALID_ARGUMENT", ERR_INVALID_REQUEST},
		{"FAILED_PRECONDITION", ERR_INVALID_REQUEST},
		{"NOT_FOUND", ERR_INVALID_REQUEST},
		{"OUT_OF_RANGE", ERR_INVALID_REQUEST},
		{"INTERNAL", ERR_SERVER},
		{"DEADLINE_EXCEEDED", ERR_SERVER},
		{"UNKNOWN", ERR_SERVER},
	};
	const char *type = NULL;
	size_t i;

	for (i = 0; status != NULL && i < sizeof map / sizeof map[0]; i++) {
		if (strcmp(map[i].status, status) == 0) {
			type = map[i].type;
			break;
		}
	}
	return type;
}

/* {"error": {"code": 429, "message": "…", "status": "RESOURCE_EXHAUSTED"}} */
static void gemini_error(struct usage *u, const cJSON *root)
{
	const cJSON *err = pjson_at(root, "error", NULL);

	if (cJSON_IsObject(err))
		provider_set_error(u, gemini_error_type(pjson_str(err, "status")),
				   pjson_str(err, "message"));
}

static void gemini_usage(struct usage *u, const cJSON *m)
{
	int64_t prompt = 0, tool = 0, cached = 0, cand = 0, thoughts = 0;

	if (!cJSON_IsObject(m))
		goto done;
	pjson_int(m, "promptTokenCount", &prompt);
	pjson_int(m, "toolUsePromptTokenCount", &tool);
	pjson_int(m, "cachedContentTokenCount", &cached);
	pjson_int(m, "candidatesTokenCount", &cand);
	pjson_int(m, "thoughtsTokenCount", &thoughts);
	/* Cumulative: the latest usageMetadata is the whole call's. */
	u->input_tokens = prompt + tool;
	u->cache_read_tokens = cached;
	u->cache_write_tokens = 0;
	u->output_tokens = cand + thoughts;
	u->reasoning_tokens = thoughts;
	u->have_usage = 1;
done:
	return;
}

/* Vertex :predict of an embedding model: the input is the predictions' token counts. */
static void gemini_predictions(struct usage *u, const cJSON *predictions)
{
	const cJSON *p;
	int64_t n, sum = 0;
	int found = 0;

	cJSON_ArrayForEach(p, (cJSON_IsArray(predictions) ? predictions : NULL)) {
		if (pjson_int(pjson_at(p, "embeddings", "statistics", NULL), "token_count", &n)) {
			if (__builtin_add_overflow(sum, n, &sum))
				sum = INT64_MAX;
			found = 1;
		}
	}
	if (found)
		usage_set_counts(u, sum, 0);
}

/* One GenerateContentResponse (a whole body, an SSE event or an array element). */
static void gemini_response_object(struct usage *u, const cJSON *root)
{
	const char *version = pjson_str(root, "modelVersion");
	const cJSON *cand;

	gemini_error(u, root);
	if (u->not_billed)
		goto done;
	if (version != NULL && version[0] != '\0')
		usage_set_str(u->model, sizeof u->model, version);
	cJSON_ArrayForEach(cand, pjson_at(root, "candidates", NULL))
		u->output_text_bytes += gemini_content_bytes(pjson_at(cand, "content", NULL));
	gemini_usage(u, pjson_at(root, "usageMetadata", NULL));
	gemini_predictions(u, pjson_at(root, "predictions", NULL));
done:
	return;
}

static void gemini_event(struct usage *u, const char *name, size_t name_len, const char *data,
			 size_t len)
{
	cJSON *root = pjson_read(data, len, NULL);

	(void)name;
	(void)name_len;
	u->stream = 1;
	if (cJSON_IsObject(root))
		gemini_response_object(u, root);
	pjson_free(root);
}

static void gemini_body(struct usage *u, int status, const char *data, size_t len)
{
	cJSON *root = pjson_read(data, len, NULL);
	const cJSON *item;

	(void)status;
	u->stream = 0;
	/* A stream read whole (a client that asked for no framing we know): its elements. */
	if (cJSON_IsArray(root)) {
		cJSON_ArrayForEach(item, root) {
			if (cJSON_IsObject(item))
				gemini_response_object(u, item);
		}
	} else if (cJSON_IsObject(root)) {
		gemini_response_object(u, root);
	}
	pjson_free(root);
}

static enum provider_framing gemini_response(struct usage *u, const struct http_head *h)
{
	(void)h;
	/* Not SSE (capture takes text/event-stream first): the default JSON array. */
	return u->api != NULL && strcmp(u->api, "streamGenerateContent") == 0
		       ? PROVIDER_FRAMING_JSON_ARRAY
		       : PROVIDER_FRAMING_AUTO;
}

const struct provider_family provider_family_gemini = {
	.name = "gemini",
	.api_of = gemini_api_of,
	.request = gemini_request,
	.event = gemini_event,
	.body = gemini_body,
	.response = gemini_response,
};
