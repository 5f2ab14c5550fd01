/*
 * provider.c - the provider table, and the usage helpers every family shares.
 *
 * provider_match runs on every request head the shim sees, LLM or not, so it only compares
 * strings against a short static table: no allocation, no parsing. A row names a host (exact,
 * or a ".suffix" for services with one host per customer such as Azure OpenAI), or a port, or
 * neither; the first row that fits the host and whose family serves the path wins. A host
 * that a row names but whose path no family of that host serves (api.openai.com/v1/models) is
 * not an LLM call; only hosts no row names fall through to the rows that go by path alone,
 * which is how a proxy or a self-hosted server speaking a known API is still recognised.
 *
 * Estimation rule (docs/providers.md): tokens = ceil(text_bytes / 4). Four bytes a token is
 * the usual rule of thumb for English text under BPE tokenizers; it is rough, which is why a
 * record says when its tokens were estimated.
 */
#include "providers/provider.h"

#include <string.h>
#include <strings.h>

#include "providers/family.h"
#include "providers/pjson.h"

struct provider_row {
	const char *name;  /* provider name for records; NULL: the host name */
	const char *host;  /* exact host, ".suffix" or "-suffix" for a family of hosts, NULL: any */
	unsigned port;     /* 0: any port */
	int local;
	const struct provider_family *family;
};

/*
 * Order matters: rows naming a host first, then rows naming a port, then rows that go by the
 * path alone. One host may have several rows when it speaks several families' APIs (DeepSeek
 * and Ollama serve both OpenAI- and Anthropic-shaped endpoints).
 */
static const struct provider_row provider_rows[] = {
	{"openai", "api.openai.com", 0, 0, &provider_family_openai},
	{"anthropic", "api.anthropic.com", 0, 0, &provider_family_anthropic},
	{"deepseek", "api.deepseek.com", 0, 0, &provider_family_openai},
	{"deepseek", "api.deepseek.com", 0, 0, &provider_family_anthropic},
	{"groq", "api.groq.com", 0, 0, &provider_family_openai},
	{"mistral_ai", "api.mistral.ai", 0, 0, &provider_family_openai},
	{"x_ai", "api.x.ai", 0, 0, &provider_family_openai},
	{"x_ai", "api.x.ai", 0, 0, &provider_family_anthropic},
	{"perplexity", "api.perplexity.ai", 0, 0, &provider_family_openai},
	{"openrouter", "openrouter.ai", 0, 0, &provider_family_openai},
	{"together", "api.together.xyz", 0, 0, &provider_family_openai},
	{"together", "api.together.ai", 0, 0, &provider_family_openai},
	{"fireworks", "api.fireworks.ai", 0, 0, &provider_family_openai},
	{"azure.ai.openai", ".openai.azure.com", 0, 0, &provider_family_openai},
	/* Google, Cohere and Bedrock also serve OpenAI-compatible endpoints on the same hosts
	 * (/v1beta/openai/chat/completions, …/endpoints/openapi/chat/completions,
	 * /compatibility/v1/chat/completions, /openai/v1/chat/completions). */
	{"gcp.gemini", "generativelanguage.googleapis.com", 0, 0, &provider_family_gemini},
	{"gcp.gemini", "generativelanguage.googleapis.com", 0, 0, &provider_family_openai},
	/* Vertex AI: REGION-aiplatform.googleapis.com, and the global endpoint. */
	{"gcp.vertex_ai", "-aiplatform.googleapis.com", 0, 0, &provider_family_gemini},
	{"gcp.vertex_ai", "-aiplatform.googleapis.com", 0, 0, &provider_family_openai},
	{"gcp.vertex_ai", "aiplatform.googleapis.com", 0, 0, &provider_family_gemini},
	{"gcp.vertex_ai", "aiplatform.googleapis.com", 0, 0, &provider_family_openai},
	{"cohere", "api.cohere.com", 0, 0, &provider_family_cohere},
	{"cohere", "api.cohere.com", 0, 0, &provider_family_openai},
	{"cohere", "api.cohere.ai", 0, 0, &provider_family_cohere},
	{"aws.bedrock", ".amazonaws.com", 0, 0, &provider_family_bedrock},
	{"aws.bedrock", ".amazonaws.com", 0, 0, &provider_family_openai},
	/* Ollama's hosted models: the Ollama API, billed, so not local. */
	{"ollama", "ollama.com", 0, 0, &provider_family_ollama},
	/* Ollama's default port serves its own API and OpenAI- and Anthropic-compatible ones. */
	{"ollama", NULL, 11434, 1, &provider_family_ollama},
	{"ollama", NULL, 11434, 1, &provider_family_openai},
	{"ollama", NULL, 11434, 1, &provider_family_anthropic},
	/* vLLM's default port (its OpenAI-compatible server); only its API paths match. */
	{"vllm", NULL, 8000, 1, &provider_family_openai},
	/* By path alone: only Ollama serves /api/chat, /api/generate, /api/embed. */
	{"ollama", NULL, 0, 1, &provider_family_ollama},
	{NULL, NULL, 0, 0, &provider_family_openai},
	{NULL, NULL, 0, 0, &provider_family_anthropic},
};

static int provider_host_fits(const char *pattern, const char *host)
{
	size_t plen, hlen;
	int fits = 0;

	if (pattern[0] != '.' && pattern[0] != '-') {
		fits = strcmp(pattern, host) == 0;
		goto done;
	}
	plen = strlen(pattern);
	hlen = strlen(host);
	fits = hlen > plen && strcmp(host + hlen - plen, pattern) == 0;
done:
	return fits;
}

int provider_match(const char *host, unsigned port, const char *path, struct provider_match *m)
{
	size_t i;
	int host_known = 0, found = 0;

	if (path == NULL || m == NULL)
		goto done;
	if (host == NULL)
		host = "";
	for (i = 0; i < sizeof provider_rows / sizeof provider_rows[0] && !found; i++) {
		const struct provider_row *row = &provider_rows[i];
		const char *api;

		if (row->host != NULL) {
			if (!provider_host_fits(row->host, host))
				continue;
			host_known = 1;
		} else if (host_known) {
			break; /* a known host's paths are its rows' business only */
		}
		if (row->port != 0 && row->port != port)
			continue;
		api = row->family->api_of(path);
		if (api == NULL)
			continue;
		m->family = row->family;
		m->name = row->name;
		m->api = api;
		m->local = row->local;
		m->candidate = 0;
		found = 1;
	}
done:
	return found;
}

/* Hosts that agents send JSON POSTs to and that are known not to serve LLM calls: telemetry,
 * feature flags and code hosting. Their traffic is never buffered as a candidate. */
static const char *const provider_quiet_hosts[] = {
	"api.github.com", ".sentry.io", "api.segment.io", ".datadoghq.com", ".datadoghq.eu",
	"statsig.anthropic.com", ".statsig.com", ".posthog.com", "api.honeycomb.io",
};

/* Is host named by a provider row or by the quiet list? */
static int provider_host_listed(const char *host)
{
	size_t i;
	int listed = 0;

	for (i = 0; i < sizeof provider_rows / sizeof provider_rows[0] && !listed; i++)
		listed = provider_rows[i].host != NULL && provider_host_fits(provider_rows[i].host, host);
	for (i = 0; i < sizeof provider_quiet_hosts / sizeof provider_quiet_hosts[0] && !listed; i++)
		listed = provider_host_fits(provider_quiet_hosts[i], host);
	return listed;
}

/* Does the media type of a Content-Type value (parameters and spaces aside) equal one of the
 * NULL-terminated types, or end with "+json"? Case-insensitive. */
static int provider_media_is(const char *ct, size_t len, const char *const *types)
{
	size_t i, n;
	int is = 0;

	if (ct == NULL)
		goto done;
	while (len > 0 && (*ct == ' ' || *ct == '\t')) {
		ct++;
		len--;
	}
	n = 0;
	while (n < len && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t')
		n++;
	is = n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
	for (i = 0; types[i] != NULL && !is; i++)
		is = strlen(types[i]) == n && strncasecmp(ct, types[i], n) == 0;
done:
	return is;
}

int provider_match_candidate(const char *host, const char *method, size_t method_len,
			     const char *content_type, size_t ct_len, struct provider_match *m)
{
	static const char *const json[] = {"application/json", NULL};
	int found = 0;

	if (host == NULL || host[0] == '\0' || method == NULL || m == NULL)
		goto done;
	if (method_len != 4 || memcmp(method, "POST", 4) != 0)
		goto done;
	if (!provider_media_is(content_type, ct_len, json) || provider_host_listed(host))
		goto done;
	m->family = &provider_family_shape;
	m->name = NULL;
	m->api = provider_family_shape.api_of("");
	m->local = 0;
	m->candidate = 1;
	found = 1;
done:
	return found;
}

const struct provider_family *provider_family_at(size_t i)
{
	const struct provider_family *f = NULL;
	size_t r, k, seen = 0, n = sizeof provider_rows / sizeof provider_rows[0];

	for (r = 0; r < n && f == NULL; r++) {
		for (k = 0; k < r && provider_rows[k].family != provider_rows[r].family; k++)
			;
		if (k < r)
			continue; /* an earlier row has this family */
		if (seen == i)
			f = provider_rows[r].family;
		else
			seen++;
	}
	if (f == NULL && seen == i)
		f = &provider_family_shape;
	return f;
}

int provider_candidate_response(const char *content_type, size_t ct_len)
{
	static const char *const types[] = {"application/json", "text/event-stream",
					    "application/x-ndjson", "application/ndjson",
					    "application/jsonl", NULL};

	return provider_media_is(content_type, ct_len, types);
}

void usage_init(struct usage *u)
{
	memset(u, 0, sizeof *u);
}

int64_t usage_estimate_tokens(uint64_t text_bytes)
{
	/* ceil(text_bytes / 4), written so that it cannot overflow. */
	uint64_t t = text_bytes / 4 + (text_bytes % 4 != 0);

	return t > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)t;
}

void usage_set_str(char *dst, size_t cap, const char *src)
{
	size_t n;

	if (dst == NULL || cap == 0)
		goto done;
	if (src == NULL)
		src = "";
	n = strnlen(src, cap);
	if (n >= cap) {
		n = cap - 1;
		/* Cut on a UTF-8 character boundary: a record string should stay valid text. */
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
done:
	return;
}

static const char *provider_error_of_status(int status, int complete)
{
	const char *e = NULL;

	if (status == 0 || !complete)
		e = ERR_NETWORK;
	else if (status == 429)
		e = ERR_RATE_LIMIT;
	else if (status == 402)
		e = ERR_BUDGET; /* Payment Required: out of credit (OpenRouter, DeepSeek) */
	else if (status == 401 || status == 403)
		e = ERR_AUTH;
	else if (status == 529)
		e = ERR_OVERLOADED;
	else if (status >= 500)
		e = ERR_SERVER;
	else if (status >= 400)
		e = ERR_INVALID_REQUEST; /* 400/404/413/422, and the other 4xx the client caused */
	return e;
}

void usage_finish(struct usage *u, int status, int complete)
{
	const char *e;
	int ok = status >= 200 && status < 300;

	/* 402 says more than the body's type (DeepSeek's "Insufficient Balance" comes typed
	 * invalid_request_error): the caller is out of money, not wrong. */
	if (u->error[0] == '\0' || (status == 402 && complete)) {
		e = provider_error_of_status(status, complete);
		if (e != NULL)
			usage_set_str(u->error, sizeof u->error, e);
	}
	/* A successful response without usage (a stream without include_usage, or one cut short)
	 * still cost tokens: estimate them. A call the API does not bill consumed none. */
	if (ok && !u->have_usage && !u->not_billed) {
		u->input_tokens = usage_estimate_tokens(u->request_text_bytes);
		u->output_tokens = usage_estimate_tokens(u->output_text_bytes);
		u->cache_read_tokens = 0;
		u->cache_write_tokens = 0;
		u->reasoning_tokens = 0;
		u->estimated = 1;
	}
	if (u->model[0] == '\0')
		usage_set_str(u->model, sizeof u->model, u->model_requested);
}

void usage_set_counts(struct usage *u, int64_t in, int64_t out)
{
	u->input_tokens = in;
	u->output_tokens = out;
	u->cache_read_tokens = 0;
	u->cache_write_tokens = 0;
	u->reasoning_tokens = 0;
	u->have_usage = 1;
}

size_t provider_path_len(const char *path)
{
	return path == NULL ? 0 : strcspn(path, "?#");
}

const char *provider_api_of_table(const char *path, const struct provider_api *apis, size_t n)
{
	size_t len = provider_path_len(path), i;
	const char *api = NULL;

	for (i = 0; i < n; i++) {
		if (strlen(apis[i].path) == len && memcmp(apis[i].path, path, len) == 0) {
			api = apis[i].api;
			break;
		}
	}
	return api;
}

size_t provider_path_ends(const char *path, size_t len, const char *suffix)
{
	size_t slen = strlen(suffix);
	int ends = len >= slen && memcmp(path + len - slen, suffix, slen) == 0;

	return ends ? len - slen + 1 : 0;
}

/* Providers' own error types and codes, by what they mean for the caller. */
static const struct {
	const char *native;
	const char *type;
} provider_errors[] = {
	{"rate_limit_error", ERR_RATE_LIMIT},        /* Anthropic, OpenAI-compatible */
	{"rate_limit_exceeded", ERR_RATE_LIMIT},     /* OpenAI code */
	{"insufficient_quota", ERR_RATE_LIMIT},      /* OpenAI: out of credit, also a 429 */
	{"billing_error", ERR_RATE_LIMIT},           /* Anthropic: out of credit */
	{"tokens", ERR_RATE_LIMIT},                  /* OpenAI type of a token rate limit */
	{"requests", ERR_RATE_LIMIT},                /* OpenAI type of a request rate limit */
	{"overloaded_error", ERR_OVERLOADED},        /* Anthropic 529 */
	{"overloaded", ERR_OVERLOADED},
	{"engine_overloaded", ERR_OVERLOADED},
	{"authentication_error", ERR_AUTH},          /* Anthropic, OpenAI-compatible */
	{"permission_error", ERR_AUTH},              /* Anthropic 403 */
	{"invalid_api_key", ERR_AUTH},               /* OpenAI code */
	{"invalid_authentication", ERR_AUTH},
	{"invalid_organization", ERR_AUTH},
	{"permission_denied", ERR_AUTH},
	{"unauthorized", ERR_AUTH},
	{"invalid_request_error", ERR_INVALID_REQUEST}, /* OpenAI and Anthropic type */
	{"not_found_error", ERR_INVALID_REQUEST},
	{"request_too_large", ERR_INVALID_REQUEST},
	{"model_not_found", ERR_INVALID_REQUEST},
	{"context_length_exceeded", ERR_INVALID_REQUEST},
	{"invalid_value", ERR_INVALID_REQUEST},
	{"budget_exceeded", ERR_BUDGET},             /* LiteLLM proxy: key or team budget spent */
	{"insufficient_credits", ERR_BUDGET},
	{"api_error", ERR_SERVER},                   /* Anthropic 500 */
	{"server_error", ERR_SERVER},                /* OpenAI 500 */
	{"internal_error", ERR_SERVER},
	{"timeout_error", ERR_SERVER},
};

const char *provider_error_type(const char *native)
{
	size_t i;
	const char *type = NULL;

	if (native == NULL)
		goto done;
	for (i = 0; i < sizeof provider_errors / sizeof provider_errors[0]; i++) {
		if (strcmp(provider_errors[i].native, native) == 0) {
			type = provider_errors[i].type;
			break;
		}
	}
done:
	return type;
}

void provider_set_error(struct usage *u, const char *type, const char *message)
{
	if (type != NULL)
		usage_set_str(u->error, sizeof u->error, type);
	if (message != NULL && u->error_message[0] == '\0')
		usage_set_str(u->error_message, sizeof u->error_message, message);
}

cJSON *provider_request_parse(struct usage *u, const struct provider_request *req, int *stream)
{
	cJSON *root = pjson_read(req->body, req->body_len, NULL);
	const char *model;

	if (root == NULL) {
		pjson_scan_str(req->body, req->body_len, "model", u->model_requested,
			       sizeof u->model_requested);
		*stream = pjson_scan_bool(req->body, req->body_len, "stream");
		goto done;
	}
	model = pjson_str(root, "model");
	if (model != NULL)
		usage_set_str(u->model_requested, sizeof u->model_requested, model);
	*stream = pjson_bool(root, "stream");
done:
	return root;
}

void provider_set_model(struct usage *u, const cJSON *o)
{
	const char *model = pjson_str(o, "model");

	if (model != NULL && model[0] != '\0')
		usage_set_str(u->model, sizeof u->model, model);
}
