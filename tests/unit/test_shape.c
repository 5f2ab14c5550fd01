/*
 * test_shape.c - candidates: which requests to unknown hosts are kept for their usage, and
 * which usage forms the shape family recognises (providers/shape.c, provider_match_candidate).
 */
#include <string.h>

#include "providers/family.h"
#include "providers/provider.h"
#include "tests/unit/check.h"

static int candidate(const char *host, const char *method, const char *ct)
{
	struct provider_match m;
	int r;

	memset(&m, 0, sizeof m);
	r = provider_match_candidate(host, method, strlen(method), ct, ct ? strlen(ct) : 0, &m);
	if (r)
		CHECK(m.candidate == 1 && m.name == NULL && m.family == &provider_family_shape);
	return r;
}

static void test_candidates(void)
{
	struct provider_match m;

	CHECK_INT(candidate("llm.example.net", "POST", "application/json"), 1);
	CHECK_INT(candidate("llm.example.net", "POST", " Application/JSON; charset=utf-8"), 1);
	CHECK_INT(candidate("llm.example.net", "POST", "application/vnd.api+json"), 1);
	CHECK_INT(candidate("10.0.0.5", "POST", "application/json"), 1);
	CHECK_INT(candidate("llm.example.net", "GET", "application/json"), 0);
	CHECK_INT(candidate("llm.example.net", "PUT", "application/json"), 0);
	CHECK_INT(candidate("llm.example.net", "POST", "text/plain"), 0);
	CHECK_INT(candidate("llm.example.net", "POST", "application/jsonx"), 0);
	CHECK_INT(candidate("llm.example.net", "POST", "application/x-www-form-urlencoded"), 0);
	CHECK_INT(candidate("llm.example.net", "POST", NULL), 0);
	CHECK_INT(candidate("", "POST", "application/json"), 0);
	/* Known hosts' other paths are known not to be LLM calls; telemetry never is. */
	CHECK_INT(candidate("api.openai.com", "POST", "application/json"), 0);
	CHECK_INT(candidate("myres.openai.azure.com", "POST", "application/json"), 0);
	CHECK_INT(candidate("api.github.com", "POST", "application/json"), 0);
	CHECK_INT(candidate("o123.ingest.sentry.io", "POST", "application/json"), 0);
	/* provider_match clears the flag it does not own. */
	m.candidate = 1;
	CHECK_INT(provider_match("api.openai.com", 443, "/v1/chat/completions", &m), 1);
	CHECK_INT(m.candidate, 0);

	CHECK_INT(provider_candidate_response("application/json; charset=utf-8", 31), 1);
	CHECK_INT(provider_candidate_response("text/event-stream", 17), 1);
	CHECK_INT(provider_candidate_response("application/x-ndjson", 20), 1);
	CHECK_INT(provider_candidate_response("application/problem+json", 24), 1);
	CHECK_INT(provider_candidate_response("text/html", 9), 0);
	CHECK_INT(provider_candidate_response(NULL, 0), 0);
}

static void body(struct usage *u, const char *json)
{
	usage_init(u);
	provider_family_shape.body(u, 200, json, strlen(json));
}

static void test_shapes(void)
{
	struct usage u;

	body(&u, "{\"model\":\"m\",\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":4,"
		 "\"prompt_tokens_details\":{\"cached_tokens\":6}}}");
	CHECK_INT(u.have_usage, 1);
	CHECK_INT(u.input_tokens, 10);
	CHECK_INT(u.cache_read_tokens, 6);
	CHECK_STR(u.model, "m");
	/* Anthropic: input excludes cache counts. */
	body(&u, "{\"type\":\"message\",\"model\":\"c\",\"usage\":{\"input_tokens\":3,"
		 "\"cache_read_input_tokens\":100,\"output_tokens\":5}}");
	CHECK_INT(u.input_tokens, 103);
	CHECK_INT(u.cache_read_tokens, 100);
	body(&u, "{\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":2}}");
	CHECK_INT(u.input_tokens, 7);
	CHECK_INT(u.output_tokens, 2);
	body(&u, "{\"model\":\"q\",\n  \"done\": true,\n  \"prompt_eval_count\": 26,\n"
		 "  \"eval_count\": 290}");
	CHECK_INT(u.input_tokens, 26);
	CHECK_INT(u.output_tokens, 290);
	/* Not usage of a known form: nothing. */
	body(&u, "{\"ok\":true,\"usage\":{\"quota\":3}}");
	CHECK_INT(u.have_usage, 0);
	body(&u, "[1,2,3]");
	CHECK_INT(u.have_usage, 0);
	body(&u, "not json");
	CHECK_INT(u.have_usage, 0);
	/* Stream events: text deltas pass, the usage events are read by their family. */
	usage_init(&u);
	provider_family_shape.event(&u, NULL, 0, "{\"type\":\"content_block_delta\"}", 30);
	CHECK_INT(u.have_usage, 0);
	provider_family_shape.event(&u, NULL, 0,
				    "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}",
				    52);
	CHECK_INT(u.have_usage, 1);
	CHECK_INT(u.output_tokens, 9);
}

int main(void)
{
	RUN(test_candidates);
	RUN(test_shapes);
	CHECK_DONE();
}
