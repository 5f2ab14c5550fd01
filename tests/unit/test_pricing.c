/*
 * test_pricing.c - the price table: exact pico-USD costs for the recorded usages, name
 * normalisation, the long-context tier, override merging and malformed overrides.
 *
 * Expected costs are worked out by hand from USD per 1M tokens (× 10^6 = pico-USD per
 * token), so a wrong price in providers/pricing.json or a wrong formula fails here.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "providers/pricing.h"
#include "tests/unit/check.h"

extern const unsigned char pricing_json[];
extern const size_t pricing_json_len;

static struct pricing *builtin(void)
{
	struct pricing *p = NULL;
	char err[256] = "";
	int rc = pricing_parse(&p, (const char *)pricing_json, pricing_json_len, err, sizeof err);

	if (rc != 0)
		fprintf(stderr, "built-in table: %s\n", err);
	return p;
}

static struct record_str rs(const char *s)
{
	struct record_str r = {s, s ? (uint32_t)strlen(s) : 0, 0};
	return r;
}

static struct record rec(const char *provider, const char *model, int64_t in, int64_t out,
			 int64_t cr, int64_t cw)
{
	struct record r;

	memset(&r, 0, sizeof r);
	r.provider = rs(provider);
	r.model = rs(model);
	r.input_tokens = in;
	r.output_tokens = out;
	r.cache_read_tokens = cr;
	r.cache_write_tokens = cw;
	return r;
}

static const struct price *look(const struct pricing *p, const char *provider, const char *m)
{
	return pricing_lookup(p, provider, provider ? strlen(provider) : 0, m, strlen(m));
}

static int64_t cost_of(const struct pricing *p, struct record r)
{
	int64_t c = -1;

	if (!pricing_record_cost(p, &r, &c))
		c = -2; /* unpriced */
	return c;
}

static void test_builtin(void)
{
	struct pricing *p = builtin();
	const struct price *pr;

	CHECK(p != NULL);
	if (p == NULL)
		return;
	CHECK_STR(pricing_taken(p), "2026-11-25");
	pr = look(p, NULL, "gpt-4o-mini");
	CHECK(pr != NULL);
	if (pr) {
		CHECK_INT(pr->input, 150000);
		CHECK_INT(pr->cache_read, 75000); /* 0.075 $/M, exactly */
		CHECK_INT(pr->output, 600000);
	}
	pr = look(p, NULL, "command-r7b");
	CHECK(pr != NULL && pr->input == 37500); /* 0.0375 $/M */
	pr = look(p, NULL, "gemini-2.0-flash-lite");
	CHECK(pr != NULL && pr->input == 75000);
	pr = look(p, NULL, "claude-haiku-4-5");
	CHECK(pr != NULL && pr->cache_write == 1250000 && pr->cache_read == 100000);
	pricing_free(p);
}

/* The fixtures' usages (tests/unit/test_providers.c reads them) priced exactly. */
static void test_fixture_costs(void)
{
	struct pricing *p = builtin();

	CHECK(p != NULL);
	if (p == NULL)
		return;
	/* gpt-4.1: input 2, cached 0.5, output 8 $/M. 120 uncached × 2e6 + 1024 × 5e5 +
	 * 2 × 8e6 = 240,000,000 + 512,000,000 + 16,000,000. */
	CHECK_INT(cost_of(p, rec("openai", "gpt-4.1-2025-04-14", 1144, 2, 1024, 0)), 768000000);
	/* gpt-4o-mini: 53 × 150,000 + 15 × 600,000. */
	CHECK_INT(cost_of(p, rec("openai", "gpt-4o-mini-2024-07-18", 53, 15, 0, 0)), 16950000);
	/* claude-sonnet-4-5: 3 × 3e6 + 403 × 3.75e6 + 1111 × 3e5 + 33 × 15e6. */
	CHECK_INT(cost_of(p, rec("anthropic", "claude-sonnet-4-5-20250929", 1517, 33, 1111, 403)),
		  9000000LL + 1511250000LL + 333300000LL + 495000000LL);
	/* mistral-large-latest: 4 × 2e6 + 36 × 6e6. */
	CHECK_INT(cost_of(p, rec("mistral_ai", "mistral-large-latest", 4, 36, 0, 0)), 224000000);
	/* gpt-4o (responses fixture): 32 × 2.5e6 + 8 × 10e6. */
	CHECK_INT(cost_of(p, rec("openai", "gpt-4o-2024-08-06", 32, 8, 0, 0)), 160000000);
	/* text-embedding-3-small: 12 × 20,000. */
	CHECK_INT(cost_of(p, rec("openai", "text-embedding-3-small", 12, 0, 0, 0)), 240000);
	/* gemini-2.5-flash with thinking: 15 × 3e5 + 24 × 2.5e6. */
	CHECK_INT(cost_of(p, rec("gcp.gemini", "gemini-2.5-flash", 15, 24, 0, 0)), 64500000);
	/* Bedrock's name for Sonnet 4.5: 1324 in (1322 written) + 5 out. */
	CHECK_INT(cost_of(p, rec("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
				 1324, 5, 0, 1322)),
		  2 * 3000000LL + 1322 * 3750000LL + 5 * 15000000LL);
	pricing_free(p);
}

static void test_record_flags(void)
{
	struct pricing *p = builtin();
	struct record r;
	int64_t c = -1;

	CHECK(p != NULL);
	if (p == NULL)
		return;
	/* Local: free, even for a model the table does not know. */
	r = rec("ollama", "mistral:7b-instruct", 37, 24, 0, 0);
	r.flags = RECORD_LOCAL;
	CHECK_INT(pricing_record_cost(p, &r, &c), 1);
	CHECK_INT(c, 0);
	r = rec("ollama", "mistral:7b-instruct", 37, 24, 0, 0);
	CHECK_INT(pricing_record_cost(p, &r, &c), 0);
	/* Billed by the provider: that figure wins. */
	r = rec("openrouter", "anthropic/claude-sonnet-4.5", 1000, 10, 0, 0);
	r.flags = RECORD_BILLED;
	r.billed_cost_pusd = 3210000;
	CHECK_INT(pricing_record_cost(p, &r, &c), 1);
	CHECK_INT(c, 3210000);
	/* count_tokens: free. */
	r = rec("anthropic", "claude-sonnet-4-5", 0, 0, 0, 0);
	r.flags = RECORD_NOT_BILLED;
	CHECK_INT(pricing_record_cost(p, &r, &c), 1);
	CHECK_INT(c, 0);
	/* No model in the response: the requested one prices it. */
	r = rec("openai", "", 1000, 0, 0, 0);
	r.model_requested = rs("gpt-4o");
	CHECK_INT(cost_of(p, r), 2500000000LL);
	/* Unpriced: not $0. */
	CHECK_INT(cost_of(p, rec("openai", "my-finetune", 10, 10, 0, 0)), -2);
	pricing_free(p);
}

static void test_normalisation(void)
{
	struct pricing *p = builtin();
	const struct price *gpt4o, *mini, *sonnet45, *s35, *haiku45, *ha35;
	static const struct {
		const char *provider, *model, *as;
	} same[] = {
		{NULL, "gpt-4o-2024-08-06", "gpt-4o"},
		{NULL, "gpt-4o-2024-11-20", "gpt-4o"},
		{NULL, "GPT-4o", "gpt-4o"},
		{NULL, "openai/gpt-4o", "gpt-4o"},
		{NULL, "gpt-4o-mini-2024-07-18", "gpt-4o-mini"},
		{NULL, "openai/gpt-4o-mini", "gpt-4o-mini"},
		{NULL, "o3-mini-2025-01-31", "o3-mini"},
		{NULL, "gpt-4.1-2025-04-14", "gpt-4.1"},
		{NULL, "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"},
		{NULL, "gpt-5-2025-08-07", "gpt-5"},
		{NULL, "gpt-5-chat-latest", "gpt-5-chat"},
		{NULL, "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"},
		{NULL, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"},
		{NULL, "anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"},
		{NULL, "claude-sonnet-4-5@20250929", "claude-sonnet-4-5"},
		{NULL, "anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"},
		{NULL, "global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"},
		{NULL, "eu.anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"},
		{NULL, "apac.anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet"},
		{NULL, "claude-3-5-sonnet@20240620", "claude-3-5-sonnet"},
		{NULL, "claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"},
		{NULL, "claude-3-7-sonnet-latest", "claude-3-7-sonnet"},
		{NULL, "claude-opus-4-20250514", "claude-opus-4"},
		{NULL, "claude-opus-4-1-20250805", "claude-opus-4-1"},
		{NULL, "mistral-large-latest", "mistral-large"},
		{NULL, "mistral-large-2411", "mistral-large"},
		{NULL, "command-r7b-12-2024", "command-r7b"},
		{NULL, "command-r-plus-08-2024", "command-r-plus"},
		{NULL, "command-a-03-2025", "command-a"},
		{NULL, "models/gemini-2.5-pro", "gemini-2.5-pro"},
		{NULL, "gemini-2.0-flash-001", "gemini-2.0-flash"},
		{NULL, "grok-4-0709", "grok-4"},
		{NULL, "grok-4-fast-non-reasoning", "grok-4-fast-reasoning"},
		{"groq", "openai/gpt-oss-120b", "groq/gpt-oss-120b"},
		{NULL, "OpenAI/GPT-4o-2024-08-06", "gpt-4o"},
		{NULL, "gpt-5.1-codex", "gpt-5.1"},
		{NULL, "gpt-5.4-mini-2026-03-17", "gpt-5.4-mini"},
		{NULL, "gpt-3.5-turbo-instruct-0914", "gpt-3.5-turbo-instruct"},
		{"gcp.vertex_ai", "gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash"},
		{"gcp.vertex_ai", "claude-opus-4-1@20250805", "claude-opus-4-1"},
		{"aws.bedrock",
		 "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
		 "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
		 "claude-sonnet-4-5"},
		{"aws.bedrock", "amazon.nova-pro-v1:0", "nova-pro"},
		{"aws.bedrock", "us.amazon.nova-lite-v1:0", "nova-lite"},
		{"aws.bedrock", "us.meta.llama3-3-70b-instruct-v1:0", "aws.bedrock/llama3-3-70b-instruct"},
		{"groq", "meta-llama/llama-4-scout-17b-16e-instruct",
		 "groq/llama-4-scout-17b-16e-instruct"},
		{"groq", "moonshotai/kimi-k2-instruct-0905", "groq/kimi-k2-instruct-0905"},
		{"together", "meta-llama/Llama-3.3-70B-Instruct-Turbo",
		 "together/llama-3.3-70b-instruct-turbo"},
		{"fireworks", "accounts/fireworks/models/llama-v3p3-70b-instruct",
		 "fireworks/llama-v3p3-70b-instruct"},
		{"openrouter", "x-ai/grok-4", "grok-4"},
		{"openrouter", "google/gemini-2.5-pro", "gemini-2.5-pro"},
		{"perplexity", "sonar-pro", "sonar-pro"},
		{"cohere", "embed-multilingual-v3.0", "embed-english-v3.0"},
	};
	size_t i;

	CHECK(p != NULL);
	if (p == NULL)
		return;
	gpt4o = look(p, NULL, "gpt-4o");
	mini = look(p, NULL, "gpt-4o-mini");
	sonnet45 = look(p, NULL, "claude-sonnet-4-5");
	s35 = look(p, NULL, "claude-3-5-sonnet");
	haiku45 = look(p, NULL, "claude-haiku-4-5");
	ha35 = look(p, NULL, "claude-3-5-haiku");
	CHECK(gpt4o && mini && sonnet45 && s35 && haiku45 && ha35);
	CHECK(gpt4o != mini);
	for (i = 0; i < sizeof same / sizeof same[0]; i++) {
		const struct price *got = look(p, same[i].provider, same[i].model);
		const struct price *want = look(p, NULL, same[i].as);
		if (got == NULL || got != want) {
			fprintf(stderr, "'%s' does not price as '%s'\n", same[i].model, same[i].as);
			check_case_failed = 1;
		}
	}
	/* A dated snapshot with its own price keeps it. */
	CHECK(look(p, NULL, "gpt-4o-2024-05-13") != gpt4o);
	CHECK(look(p, NULL, "gpt-4o-2024-05-13") && look(p, NULL, "gpt-4o-2024-05-13")->input ==
							   5000000);
	/* Never a shorter model's price. */
	CHECK(look(p, NULL, "command-r-plus")->input == 2500000);
	CHECK(look(p, NULL, "gpt-4o-mini-search") == NULL);
	CHECK(look(p, NULL, "gpt-4o-audio-preview") == NULL);
	CHECK(look(p, NULL, "my-finetune") == NULL);
	CHECK(look(p, NULL, "ft:gpt-4o-mini:acme::abc123") == NULL);
	CHECK(look(p, "openai", "gpt-oss-120b") == NULL);
	/* A resold model is priced for its host only. */
	CHECK(look(p, NULL, "meta-llama/llama-4-scout-17b-16e-instruct") == NULL);
	CHECK(look(p, "fireworks", "meta-llama/Llama-3.3-70B-Instruct-Turbo") == NULL);
	CHECK(look(p, NULL, "-latest") == NULL);
	CHECK(pricing_lookup(p, NULL, 0, "gpt-4o", 0) == NULL);
	pricing_free(p);
}

static void test_long_context(void)
{
	struct pricing *p = builtin();

	CHECK(p != NULL);
	if (p == NULL)
		return;
	/* Sonnet 4.5 at 200,000 input: base tier. 200,000 × 3e6 + 1,000 × 15e6. */
	CHECK_INT(cost_of(p, rec("anthropic", "claude-sonnet-4-5", 200000, 1000, 0, 0)),
		  615000000000LL);
	/* One token more: the whole call at 6 / 22.5 $/M. */
	CHECK_INT(cost_of(p, rec("anthropic", "claude-sonnet-4-5", 200001, 1000, 0, 0)),
		  200001LL * 6000000 + 1000LL * 22500000);
	/* With cache: 250,000 in of which 150,000 read (0.6) and 50,000 written (7.5). */
	CHECK_INT(cost_of(p, rec("anthropic", "claude-sonnet-4-5", 250000, 2000, 150000, 50000)),
		  50000LL * 6000000 + 150000LL * 600000 + 50000LL * 7500000 + 2000LL * 22500000);
	/* Gemini 2.5 Pro over 200k: 2.5 / 15, cache 0.25. */
	CHECK_INT(cost_of(p, rec("gcp.gemini", "gemini-2.5-pro", 300000, 100, 100000, 0)),
		  200000LL * 2500000 + 100000LL * 250000 + 100LL * 15000000);
	/* Haiku 4.5 has no tier. */
	CHECK_INT(cost_of(p, rec("anthropic", "claude-haiku-4-5", 300000, 0, 0, 0)),
		  300000LL * 1000000);
	pricing_free(p);
}

/* Cohere charges billed units, not tokens: the recorded fixture cohere_v2_chat_cached has
 * tokens 2935 in (2928 cached) and 4 out, billed units 2406 in and 2 out. */
static void test_billed_units(void)
{
	struct pricing *p = builtin();
	struct record r;

	CHECK(p != NULL);
	if (p == NULL)
		return;
	/* command-r7b: 0.0375 / 0.15 $/M, no cache price. By tokens: 2935 x 37,500 + 4 x
	 * 150,000 = 110,662,500 pico-USD (110.66 micro-USD). */
	r = rec("cohere", "command-r7b-12-2024", 2935, 4, 2928, 0);
	CHECK_INT(cost_of(p, r), 110662500);
	/* By billed units: 2406 x 37,500 + 2 x 150,000 = 90,525,000 (90.525 micro-USD). */
	r.flags |= RECORD_BILLED_UNITS;
	r.billed_input_tokens = 2406;
	r.billed_output_tokens = 2;
	CHECK_INT(cost_of(p, r), 90525000);
	/* The fields count only with the flag. */
	r.flags &= ~(uint32_t)RECORD_BILLED_UNITS;
	CHECK_INT(cost_of(p, r), 110662500);
	/* An embedding's billed units: embed-v4.0 at 0.12 $/M, 9 units. */
	r = rec("cohere", "embed-v4.0", 9, 0, 0, 0);
	r.flags = RECORD_BILLED_UNITS;
	r.billed_input_tokens = 9;
	CHECK_INT(cost_of(p, r), 9 * 120000);
	pricing_free(p);
}

/* Anthropic's one-hour cache writes: 2 x input by default for Anthropic entries (Sonnet 4.5:
 * 6 $/M, 12 $/M above 200k), an explicit cache_write_1h, the cache_write price elsewhere. */
static void test_cache_write_1h(void)
{
	static const char doc[] =
		"{\"models\":{\"a\":{\"provider\":\"anthropic\",\"input\":1,\"output\":2,"
		"\"cache_write\":1.25,\"cache_write_1h\":3},"
		"\"b\":{\"input\":1,\"output\":2,\"cache_write\":1.25},"
		"\"c\":{\"provider\":\"anthropic\",\"input\":1,\"output\":2}}}";
	struct pricing *p = builtin(), *q = NULL;
	struct record r;
	char err[256];

	CHECK(p != NULL);
	if (p == NULL)
		return;
	/* The fixture's usage with 100 of its 403 writes for one hour: 3 x 3e6 + 303 x 3.75e6 +
	 * 100 x 6e6 + 1111 x 3e5 + 33 x 15e6. */
	r = rec("anthropic", "claude-sonnet-4-5-20250929", 1517, 33, 1111, 403);
	r.cache_write_1h_tokens = 100;
	CHECK_INT(cost_of(p, r), 9000000LL + 1136250000LL + 600000000LL + 333300000LL + 495000000LL);
	/* All of them: 403 x 6e6. */
	r.cache_write_1h_tokens = 403;
	CHECK_INT(cost_of(p, r), 9000000LL + 2418000000LL + 333300000LL + 495000000LL);
	/* More one-hour writes than writes (a damaged record): capped at the writes. */
	r.cache_write_1h_tokens = 5000;
	CHECK_INT(cost_of(p, r), 9000000LL + 2418000000LL + 333300000LL + 495000000LL);
	/* Long context: 250,000 in, 50,000 written of which 20,000 for one hour (12 $/M). */
	r = rec("anthropic", "claude-sonnet-4-5", 250000, 2000, 150000, 50000);
	r.cache_write_1h_tokens = 20000;
	CHECK_INT(cost_of(p, r), 50000LL * 6000000 + 150000LL * 600000 + 30000LL * 7500000 +
					 20000LL * 12000000 + 2000LL * 22500000);
	pricing_free(p);

	CHECK_INT(pricing_parse(&q, doc, strlen(doc), err, sizeof err), 0);
	if (q == NULL)
		return;
	CHECK_INT(look(q, NULL, "a")->cache_write_1h, 3000000);
	CHECK_INT(look(q, NULL, "b")->cache_write_1h, 1250000); /* not Anthropic: cache_write */
	CHECK_INT(look(q, NULL, "c")->cache_write_1h, 2000000); /* 2 x input */
	r = rec("x", "a", 100, 0, 0, 40);
	r.cache_write_1h_tokens = 10;
	CHECK_INT(cost_of(q, r), 60LL * 1000000 + 30LL * 1250000 + 10LL * 3000000);
	pricing_free(q);
}

/* OpenAI's service tiers: gpt-5.4 priority 2x, flex 0.5x (built-in), on top of the tier
 * above 272K input (5 / 22.5, cached 0.5). */
static void test_service_tiers(void)
{
	static const char doc[] = "{\"models\":{\"m\":{\"input\":1,\"output\":3,"
				  "\"service_tiers\":{\"scale\":0.333}}}}";
	struct pricing *p = builtin(), *q = NULL;
	struct record r;
	char err[256];

	CHECK(p != NULL);
	if (p == NULL)
		return;
	/* 1000 in (200 cached) and 100 out: 800 x 2.5e6 + 200 x 2.5e5 + 100 x 15e6. */
	r = rec("openai", "gpt-5.4-2026-03-05", 1000, 100, 200, 0);
	CHECK_INT(cost_of(p, r), 3550000000LL);
	r.service_tier = RECORD_TIER_DEFAULT;
	CHECK_INT(cost_of(p, r), 3550000000LL);
	r.service_tier = RECORD_TIER_PRIORITY;
	CHECK_INT(cost_of(p, r), 7100000000LL);
	r.service_tier = RECORD_TIER_FLEX;
	CHECK_INT(cost_of(p, r), 1775000000LL);
	r.service_tier = RECORD_TIER_SCALE; /* no scale multiplier: the standard price */
	CHECK_INT(cost_of(p, r), 3550000000LL);
	r.service_tier = 77; /* out of range (a damaged record): the standard price */
	CHECK_INT(cost_of(p, r), 3550000000LL);
	/* gpt-5.4-mini priority: (800 x 7.5e5 + 200 x 7.5e4 + 100 x 4.5e6) x 2. */
	r = rec("openai", "gpt-5.4-mini", 1000, 100, 200, 0);
	r.service_tier = RECORD_TIER_PRIORITY;
	CHECK_INT(cost_of(p, r), 2LL * (600000000 + 15000000 + 450000000));
	/* gpt-5.4 above 272,000 input: the whole call at 5 / 22.5 $/M, cached 0.5. */
	r = rec("openai", "gpt-5.4", 272000, 1000, 0, 0);
	CHECK_INT(cost_of(p, r), 272000LL * 2500000 + 1000LL * 15000000);
	r = rec("openai", "gpt-5.4", 272001, 1000, 72001, 0);
	CHECK_INT(cost_of(p, r), 200000LL * 5000000 + 72001LL * 500000 + 1000LL * 22500000);
	r.service_tier = RECORD_TIER_FLEX;
	CHECK_INT(cost_of(p, r), 500000000000LL + 18000250000LL + 11250000000LL);
	/* gpt-5.4-nano has no tier prices: priority at the standard price. */
	r = rec("openai", "gpt-5.4-nano", 1000, 0, 0, 0);
	r.service_tier = RECORD_TIER_PRIORITY;
	CHECK_INT(cost_of(p, r), 1000LL * 200000);
	pricing_free(p);

	/* A multiplier is rounded half up per part: 7 x 1e6 x 0.333 = 2,331,000; 1 x 3e6 x 0.333
	 * = 999,000. */
	CHECK_INT(pricing_parse(&q, doc, strlen(doc), err, sizeof err), 0);
	if (q == NULL)
		return;
	CHECK_INT(look(q, NULL, "m")->tier_ppb[RECORD_TIER_SCALE - RECORD_TIER_FLEX], 333000000);
	r = rec("x", "m", 7, 1, 0, 0);
	r.service_tier = RECORD_TIER_SCALE;
	CHECK_INT(cost_of(q, r), 2331000LL + 999000LL);
	r = rec("x", "m", INT64_MAX / 2, 0, 0, 0); /* saturates, never wraps */
	r.service_tier = RECORD_TIER_SCALE;
	CHECK(cost_of(q, r) > 0);
	pricing_free(q);
}

static struct record fee_rec(const char *model, int32_t status, int64_t in, int64_t out,
			      int64_t searches, int32_t context)
{
	struct record r = rec("perplexity", model, in, out, 0, 0);

	r.status = status;
	r.search_queries = searches;
	r.search_context = context;
	return r;
}

/* Perplexity: the per-request fee by search context size, the per-search fee, none on a
 * failed call. */
static void test_fees(void)
{
	struct pricing *p = builtin();
	struct record r;

	CHECK(p != NULL);
	if (p == NULL)
		return;
	/* sonar-pro: 100 x 3e6 + 200 x 15e6 = 3.3e9, then $0.006 / 0.010 / 0.014 per call. */
	CHECK_INT(cost_of(p, fee_rec("sonar-pro", 200, 100, 200, 0, RECORD_SEARCH_UNKNOWN)),
		  3300000000LL + 6000000000LL);
	CHECK_INT(cost_of(p, fee_rec("sonar-pro", 200, 100, 200, 0, RECORD_SEARCH_LOW)),
		  3300000000LL + 6000000000LL);
	CHECK_INT(cost_of(p, fee_rec("sonar-pro", 200, 100, 200, 0, RECORD_SEARCH_MEDIUM)),
		  3300000000LL + 10000000000LL);
	CHECK_INT(cost_of(p, fee_rec("sonar-pro", 200, 100, 200, 0, RECORD_SEARCH_HIGH)),
		  3300000000LL + 14000000000LL);
	/* sonar, high: 10 x 1e6 + 10 x 1e6 + $0.012. */
	CHECK_INT(cost_of(p, fee_rec("sonar", 200, 10, 10, 0, RECORD_SEARCH_HIGH)),
		  20000000LL + 12000000000LL);
	/* Refused or failed: no fee. */
	CHECK_INT(cost_of(p, fee_rec("sonar-pro", 429, 0, 0, 0, RECORD_SEARCH_HIGH)), 0);
	r = fee_rec("sonar-pro", 200, 0, 0, 0, RECORD_SEARCH_LOW);
	r.error = rs("network");
	CHECK_INT(cost_of(p, r), 0);
	CHECK_INT(cost_of(p, fee_rec("sonar-pro", 0, 0, 0, 0, RECORD_SEARCH_LOW)), 0);
	/* Deep research: 500 x 2e6 + 1000 x 8e6 + 3 searches x $0.005, no request fee. */
	CHECK_INT(cost_of(p, fee_rec("sonar-deep-research", 200, 500, 1000, 3,
				     RECORD_SEARCH_MEDIUM)),
		  1000000000LL + 8000000000LL + 15000000000LL);
	/* No fee for a model without one. */
	CHECK_INT(cost_of(p, fee_rec("gpt-4o", 200, 0, 0, 5, RECORD_SEARCH_HIGH)), 0);
	pricing_free(p);
}

/* Prices checked against the providers' pages (the "sources" of providers/pricing.json),
 * one call of each, worked out by hand: a price typed wrong fails here. */
static void test_checked_prices(void)
{
	struct pricing *p = builtin();

	CHECK(p != NULL);
	if (p == NULL)
		return;
	/* DeepSeek V4.1 Flash (peak): 600,000 missed x 0.3 + 400,000 hit x 0.006 +
	 * 10,000 out x 1.2 $/M; the retired V4 Flash name bills the same. */
	CHECK_INT(cost_of(p, rec("deepseek", "deepseek-flash", 1000000, 10000, 400000, 0)),
		  180000000000LL + 2400000000LL + 12000000000LL);
	CHECK_INT(cost_of(p, rec("deepseek", "deepseek-v4-flash", 1000000, 10000, 400000, 0)),
		  180000000000LL + 2400000000LL + 12000000000LL);
	/* DeepSeek V4 Pro (peak): 1,000 x 1.32 + 1,000 hit x 0.044 + 500 x 3.96. */
	CHECK_INT(cost_of(p, rec("deepseek", "deepseek-v4-pro", 2000, 500, 1000, 0)),
		  1320000000LL + 44000000LL + 1980000000LL);
	/* The V3.2-era names keep their own price for the records that carry them. */
	CHECK(look(p, NULL, "deepseek-chat") != look(p, NULL, "deepseek-flash"));
	/* GPT-5.5: 2,000 x 5 + 8,000 cached x 0.5 + 1,000 x 30. */
	CHECK_INT(cost_of(p, rec("openai", "gpt-5.5-2026-04-23", 10000, 1000, 8000, 0)),
		  10000000000LL + 4000000000LL + 30000000000LL);
	/* GPT-5.4 dated snapshot: 1,000 x 2.5 + 100 x 15. */
	CHECK_INT(cost_of(p, rec("openai", "gpt-5.4-2026-03-05", 1000, 100, 0, 0)),
		  2500000000LL + 1500000000LL);
	/* GPT-5.4 nano: 500 x 0.2 + 500 cached x 0.02 + 100 x 1.25. */
	CHECK_INT(cost_of(p, rec("openai", "gpt-5.4-nano", 1000, 100, 500, 0)),
		  100000000LL + 10000000LL + 125000000LL);
	/* GPT-5 pro has no cached price: 100 x 15 (50 of them cached) + 10 x 120. */
	CHECK_INT(cost_of(p, rec("openai", "gpt-5-pro-2025-10-06", 100, 10, 50, 0)),
		  1500000000LL + 1200000000LL);
	/* GPT-5.5 pro: 100 x 30 + 10 x 180. */
	CHECK_INT(cost_of(p, rec("openai", "gpt-5.5-pro", 100, 10, 0, 0)),
		  3000000000LL + 1800000000LL);
	/* Groq: gpt-oss-20b 1,000 x 0.075 + 1,000 x 0.3; llama-3.1-8b-instant 0.05 / 0.08. */
	CHECK_INT(cost_of(p, rec("groq", "openai/gpt-oss-20b", 1000, 1000, 0, 0)),
		  75000000LL + 300000000LL);
	CHECK_INT(cost_of(p, rec("groq", "llama-3.1-8b-instant", 1000, 1000, 0, 0)),
		  50000000LL + 80000000LL);
	/* Fireworks gpt-oss-120b: 4,000 x 0.15 + 6,000 cached x 0.015 + 500 x 0.6. */
	CHECK_INT(cost_of(p, rec("fireworks", "accounts/fireworks/models/gpt-oss-120b", 10000,
				 500, 6000, 0)),
		  600000000LL + 90000000LL + 300000000LL);
	/* Fireworks Kimi K2.6: 1,000 x 0.95 + 1,000 cached x 0.16 + 100 x 4. */
	CHECK_INT(cost_of(p, rec("fireworks", "accounts/fireworks/models/kimi-k2p6", 2000, 100,
				 1000, 0)),
		  950000000LL + 160000000LL + 400000000LL);
	/* Fireworks' DeepSeek V3 family (v3p1, v3p2): 1,000 x 0.56 + 1,000 x 1.68; the older
	 * deepseek-v3 keeps its own 0.9 / 0.9. */
	CHECK_INT(cost_of(p, rec("fireworks", "accounts/fireworks/models/deepseek-v3p2", 1000,
				 1000, 0, 0)),
		  560000000LL + 1680000000LL);
	CHECK_INT(cost_of(p, rec("fireworks", "accounts/fireworks/models/deepseek-v3", 1000,
				 1000, 0, 0)),
		  900000000LL + 900000000LL);
	/* Mistral Medium 3.5 by its dated name: 1,000 x 1.5 + 100 x 7.5. */
	CHECK_INT(cost_of(p, rec("mistral_ai", "mistral-medium-3-5-26-04", 1000, 100, 0, 0)),
		  1500000000LL + 750000000LL);
	/* Cohere Command R (08-2024): 1,000 x 0.15 + 1,000 x 0.6. */
	CHECK_INT(cost_of(p, rec("cohere", "command-r-08-2024", 1000, 1000, 0, 0)),
		  150000000LL + 600000000LL);
	/* Perplexity Sonar Reasoning: 100 x 1 + 100 x 5, plus $0.005 at low context. */
	CHECK_INT(cost_of(p, fee_rec("sonar-reasoning", 200, 100, 100, 0, RECORD_SEARCH_LOW)),
		  100000000LL + 500000000LL + 5000000000LL);
	pricing_free(p);
}

static void test_match(void)
{
	struct pricing *p = builtin();
	struct pricing_match m;
	const char *bedrock = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
	static const char over[] = "{\"models\":{\"claude-sonnet-4-5\":{\"input\":2,\"output\":9}}}";
	char err[256] = "";
	int64_t v = -1;

	CHECK(p != NULL);
	if (p == NULL)
		return;
	CHECK(pricing_lookup_match(p, NULL, 0, bedrock, strlen(bedrock), &m) != NULL);
	CHECK_STR(m.entry, "claude-sonnet-4-5");
	CHECK_STR(m.key, "claude-sonnet-4-5");
	CHECK_STR(m.tried, "claude-sonnet-4-5");
	CHECK_STR(m.source, "built-in");
	CHECK_STR(m.provider, "anthropic");
	CHECK(pricing_lookup_match(p, NULL, 0, "anthropic/claude-sonnet-4.5", 27, &m) != NULL);
	CHECK_STR(m.key, "claude-sonnet-4.5");
	CHECK_STR(m.entry, "claude-sonnet-4-5");
	CHECK(pricing_lookup_match(p, NULL, 0, "my-model-2024-01-01", 19, &m) == NULL);
	CHECK(m.entry == NULL && m.source == NULL);
	CHECK_STR(m.tried, "my-model");
	/* After a merge the alias follows the new entry, whose source is the merged file. */
	CHECK_INT(pricing_merge(p, over, strlen(over), "/etc/x.json", err, sizeof err), 0);
	CHECK(pricing_lookup_match(p, NULL, 0, "claude-sonnet-4.5", 17, &m) != NULL);
	CHECK_STR(m.source, "/etc/x.json");
	CHECK(m.provider == NULL);
	/* pricing_decimal: per-token USD to pico-USD, exactly. */
	CHECK_INT(pricing_decimal("2.5e-06", 12, &v), 0);
	CHECK_INT(v, 2500000);
	CHECK_INT(pricing_decimal("0.00000375", 12, &v), 0);
	CHECK_INT(v, 3750000);
	CHECK_INT(pricing_decimal("1.25E-7", 12, &v), 0);
	CHECK_INT(v, 125000);
	CHECK_INT(pricing_decimal("-1", 12, &v), -1);
	CHECK_INT(pricing_decimal("", 12, &v), -1);
	CHECK_INT(pricing_decimal("0.1x", 12, &v), -1);
	pricing_free(p);
}

static void test_exact_decimals(void)
{
	static const char doc[] =
		"{\"taken\":\"2030-01-01\",\"currency\":\"USD\",\"unit\":\"per 1M tokens\","
		"\"_note\":\"comment\",\"models\":{"
		"\"a\":{\"input\":0.1,\"output\":3.3,\"cache_read\":0.075,\"cache_write\":1e-6},"
		"\"b\":{\"input\":1.0000005,\"output\":0.0000001,\"cache_read\":1.25E1},"
		"\"c\":{\"input\":0,\"output\":0.000001,\"request\":0.005,\"search\":0.0125,"
		"\"request_by_context\":{\"medium\":0.008,\"high\":1e-12}}}}";
	struct pricing *p = NULL;
	char err[256] = "";
	const struct price *a, *b, *c;

	CHECK_INT(pricing_parse(&p, doc, strlen(doc), err, sizeof err), 0);
	if (p == NULL)
		return;
	CHECK_STR(pricing_taken(p), "2030-01-01");
	a = look(p, NULL, "a");
	b = look(p, NULL, "b");
	c = look(p, NULL, "c");
	CHECK(a && b && c);
	if (a && b && c) {
		CHECK_INT(a->input, 100000);
		CHECK_INT(a->output, 3300000);
		CHECK_INT(a->cache_read, 75000);
		CHECK_INT(a->cache_write, 1);
		CHECK_INT(b->input, 1000001); /* 1000000.5 rounds half up */
		CHECK_INT(b->output, 0);      /* 0.1 pico-USD: below the unit */
		CHECK_INT(b->cache_read, 12500000);
		CHECK_INT(b->cache_write, 1000001); /* absent: the input price */
		CHECK_INT(c->output, 1);
		CHECK_INT(c->request, 5000000000LL); /* USD per call x 10^12 */
		CHECK_INT(c->search, 12500000000LL);
		CHECK_INT(c->request_by_context[0], 0);
		CHECK_INT(c->request_by_context[1], 8000000000LL);
		CHECK_INT(c->request_by_context[2], 1);
		CHECK_INT(a->request, 0);
		CHECK_INT(a->long_threshold, 0);
	}
	pricing_free(p);
}

static int count_models(const struct pricing_entry *e, void *arg)
{
	const char **last = arg;

	if (*last != NULL && strcmp(*last, e->model) >= 0)
		check_case_failed = 1; /* not in name order */
	if (e->source == NULL || strcmp(e->source, "built-in") != 0)
		check_case_failed = 1;
	*last = e->model;
	return 0;
}

static void test_each(void)
{
	struct pricing *p = builtin();
	const char *last = NULL;

	CHECK(p != NULL);
	if (p == NULL)
		return;
	CHECK_INT(pricing_each(p, count_models, &last), 0);
	CHECK(last != NULL);
	pricing_free(p);
}

static void test_merge(void)
{
	static const char over[] =
		"{\"models\":{\"gpt-4o\":{\"provider\":\"openai\",\"input\":1,\"output\":2},"
		"\"my-model\":{\"provider\":\"vllm\",\"input\":0.5,\"output\":0.5,"
		"\"cache_read\":0.1},"
		"\"claude-sonnet-4-5\":{\"input\":2,\"output\":10,\"cache_read\":0.2,"
		"\"cache_write\":2.5}}}";
	struct pricing *p = builtin();
	const struct price *pr;
	char err[256] = "";

	CHECK(p != NULL);
	if (p == NULL)
		return;
	CHECK_INT(pricing_merge(p, over, strlen(over), "over.json", err, sizeof err), 0);
	pr = look(p, NULL, "gpt-4o");
	CHECK(pr && pr->input == 1000000 && pr->output == 2000000 && pr->cache_read == 1000000);
	/* Snapshots follow the new price. */
	CHECK(look(p, NULL, "gpt-4o-2024-08-06") == pr);
	/* Other models untouched. */
	pr = look(p, NULL, "gpt-4o-mini");
	CHECK(pr && pr->input == 150000);
	pr = look(p, NULL, "my-model");
	CHECK(pr && pr->cache_read == 100000);
	/* An alias of a replaced model prices at the new price; the tier went with the old. */
	pr = look(p, NULL, "anthropic/claude-sonnet-4.5");
	CHECK(pr && pr->input == 2000000 && pr->long_threshold == 0);
	CHECK_STR(pricing_taken(p), "2026-11-25");
	pricing_free(p);
}

static void test_malformed(void)
{
	static const struct {
		const char *doc, *field;
	} bad[] = {
		{"{\"models\":{\"gpt-4o\":{\"input\":\"cheap\",\"output\":2}}}",
		 "models.gpt-4o.input"},
		{"{\"models\":{\"gpt-4o\":{\"input\":-1,\"output\":2}}}", "models.gpt-4o.input"},
		{"{\"models\":{\"gpt-4o\":{\"input\":1}}}", "models.gpt-4o"},
		{"{\"models\":{\"m\":{\"input\":1,\"output\":2,\"service_tiers\":{\"fast\":2}}}}",
		 "models.m.service_tiers.fast"},
		{"{\"models\":{\"m\":{\"input\":1,\"output\":2,\"service_tiers\":{\"flex\":\"half\"}}}}",
		 "models.m.service_tiers.flex"},
		{"{\"models\":{\"m\":{\"input\":1,\"output\":2,\"service_tiers\":[2]}}}",
		 "models.m.service_tiers"},
		{"{\"models\":{\"m\":{\"input\":1,\"output\":2,\"cache_write_1h\":-3}}}",
		 "models.m.cache_write_1h"},
		{"{\"models\":{\"m\":{\"input\":1,\"output\":2,\"long_context\":{\"threshold\":9,"
		 "\"input\":2,\"output\":4,\"cache_write_1h\":\"x\"}}}}",
		 "models.m.long_context.cache_write_1h"},
		{"{\"models\":{\"gpt-4o\":{\"input\":1,\"output\":2,\"cache_raed\":0.5}}}",
		 "models.gpt-4o.cache_raed"},
		{"{\"models\":{\"x\":{\"input\":1,\"output\":2,\"long_context\":{\"input\":2,"
		 "\"output\":4}}}}",
		 "models.x.long_context.threshold"},
		{"{\"models\":{\"x\":{\"input\":1,\"output\":2,\"aliases\":[\"y\"]},"
		 "\"y\":{\"input\":1,\"output\":2}}}",
		 "models.y"},
		{"{\"currency\":\"EUR\",\"models\":{}}", "currency"},
		{"{\"models\":{\"x\":{\"input\":1,\"output\":2,\"request\":-0.1}}}",
		 "models.x.request"},
		{"{\"models\":{\"x\":{\"input\":1,\"output\":2,\"request_by_context\":"
		 "{\"huge\":1}}}}",
		 "models.x.request_by_context.huge"},
		{"{\"models\":{\"x\":{\"input\":1,\"output\":2,\"request_by_context\":7}}}",
		 "models.x.request_by_context"},
		{"{\"models\":[]}", "models"},
		{"{\"model\":{}}", "model"},
		{"{\"models\":{\"gpt-4o\":{\"input\":1,", "not valid JSON"},
	};
	struct pricing *p = builtin();
	size_t i;

	CHECK(p != NULL);
	if (p == NULL)
		return;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char err[256] = "";
		int rc = pricing_merge(p, bad[i].doc, strlen(bad[i].doc), NULL, err, sizeof err);
		if (rc != PRICING_EFORMAT || strstr(err, bad[i].field) == NULL) {
			fprintf(stderr, "malformed %zu: rc %d, err '%s', want '%s'\n", i, rc, err,
				bad[i].field);
			check_case_failed = 1;
		}
	}
	/* A failed merge changes nothing. */
	CHECK(look(p, NULL, "gpt-4o") && look(p, NULL, "gpt-4o")->input == 2500000);
	CHECK(look(p, NULL, "x") == NULL);
	pricing_free(p);
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int ok = f != NULL && fputs(text, f) >= 0;

	if (f != NULL)
		ok &= fclose(f) == 0;
	return ok;
}

static void test_load(void)
{
	char dir[] = "/tmp/tokshim-pricing-XXXXXX", path[512], sub[128], err[512];
	struct pricing *p = NULL;
	int rc;

	CHECK(mkdtemp(dir) != NULL);
	/* No override anywhere: the built-in table. */
	unsetenv("TOKSHIM_PRICING");
	setenv("XDG_CONFIG_HOME", dir, 1);
	rc = pricing_load(&p, err, sizeof err);
	CHECK_INT(rc, 0);
	CHECK(p && look(p, NULL, "gpt-4o")->input == 2500000);
	pricing_free(p);

	/* $XDG_CONFIG_HOME/tokshim/pricing.json */
	snprintf(sub, sizeof sub, "%s/tokshim", dir);
	CHECK(mkdir(sub, 0700) == 0);
	snprintf(path, sizeof path, "%s/pricing.json", sub);
	CHECK(write_file(path, "{\"models\":{\"gpt-4o\":{\"input\":1.5,\"output\":6}}}"));
	rc = pricing_load(&p, err, sizeof err);
	CHECK_INT(rc, 0);
	CHECK(p && look(p, NULL, "gpt-4o")->input == 1500000);
	pricing_free(p);

	/* A malformed override: negative code, one line naming file and field, no table. */
	CHECK(write_file(path, "{\"models\":{\"gpt-4o\":{\"input\":true,\"output\":6}}}"));
	p = NULL;
	rc = pricing_load(&p, err, sizeof err);
	CHECK(rc < 0);
	CHECK(p == NULL);
	CHECK(strstr(err, path) != NULL);
	CHECK(strstr(err, "models.gpt-4o.input") != NULL);
	CHECK(strchr(err, '\n') == NULL);

	/* TOKSHIM_PRICING wins, and must exist. */
	snprintf(path, sizeof path, "%s/mine.json", dir);
	CHECK(write_file(path, "{\"models\":{\"gpt-4o\":{\"input\":0.5,\"output\":1}}}"));
	setenv("TOKSHIM_PRICING", path, 1);
	rc = pricing_load(&p, err, sizeof err);
	CHECK_INT(rc, 0);
	CHECK(p && look(p, NULL, "gpt-4o")->input == 500000);
	pricing_free(p);
	snprintf(path, sizeof path, "%s/missing.json", dir);
	setenv("TOKSHIM_PRICING", path, 1);
	p = NULL;
	rc = pricing_load(&p, err, sizeof err);
	CHECK_INT(rc, PRICING_EIO);
	CHECK(p == NULL && strstr(err, path) != NULL);
	unsetenv("TOKSHIM_PRICING");
	unsetenv("XDG_CONFIG_HOME");

	snprintf(path, sizeof path, "%s/tokshim/pricing.json", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/mine.json", dir);
	unlink(path);
	rmdir(sub);
	rmdir(dir);
	CHECK_STR(pricing_strerror(PRICING_EFORMAT), "malformed pricing file");
}

int main(void)
{
	RUN(test_builtin);
	RUN(test_fixture_costs);
	RUN(test_record_flags);
	RUN(test_normalisation);
	RUN(test_long_context);
	RUN(test_fees);
	RUN(test_billed_units);
	RUN(test_cache_write_1h);
	RUN(test_service_tiers);
	RUN(test_checked_prices);
	RUN(test_match);
	RUN(test_exact_decimals);
	RUN(test_each);
	RUN(test_merge);
	RUN(test_malformed);
	RUN(test_load);
	CHECK_DONE();
}
