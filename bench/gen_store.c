/*
 * gen_store.c - writes the same N synthetic LLM calls twice: into a tokshim store (through
 * store_append_batch, STORE_BATCH_MAX-bounded batches of GEN_BATCH records, one transaction
 * each: one commit per record would spend the whole bench budget on fsync-free commits alone)
 * and into an SQLite file the way an SQL-backed usage tracker typically keeps them: a
 * `messages` table with a JSON `usage` column. `make bench` then times `tokshim report`
 * against `sqlite3` summing json_extract() over the same rows.
 *
 *   gen_store N OUT.mdb OUT.sqlite
 *
 * The distributions are fixed by a seeded generator, so every run writes the same rows:
 * 50 agents (skewed: a few agents make most calls), 20 models over 6 providers, a session
 * per ~200 calls, ~3% errors (429/500 with no output tokens), ~60% streamed, input tokens
 * 200..~40k, output 10..~4k, cache reads on a third of the calls of caching providers,
 * reasoning tokens on reasoning models. Times run over 30 days, in order.
 * Prints the totals it wrote as one JSON line, so the bench can check both readers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/store.h"

#define GEN_BATCH 10000
#define GEN_AGENTS 50
#define GEN_START_NS 1761955200000000000LL /* 2025-11-01T00:00:00Z */
#define GEN_SPAN_NS (30LL * 86400 * 1000000000)

struct gen_model {
	const char *model;
	const char *provider;
	const char *api;
	const char *host;
	const char *path;
	int caching;   /* the provider reports cache reads */
	int reasoning; /* the model reports reasoning tokens */
};

static const struct gen_model gen_models[] = {
	{ "gpt-4o-2024-08-06", "openai", "chat.completions", "api.openai.com", "/v1/chat/completions", 1, 0 },
	{ "gpt-4o-mini-2024-07-18", "openai", "chat.completions", "api.openai.com", "/v1/chat/completions", 1, 0 },
	{ "gpt-4.1-2025-04-14", "openai", "responses", "api.openai.com", "/v1/responses", 1, 0 },
	{ "gpt-4.1-mini-2025-04-14", "openai", "responses", "api.openai.com", "/v1/responses", 1, 0 },
	{ "o3-2025-04-16", "openai", "responses", "api.openai.com", "/v1/responses", 1, 1 },
	{ "o4-mini-2025-04-16", "openai", "chat.completions", "api.openai.com", "/v1/chat/completions", 1, 1 },
	{ "claude-sonnet-4-20250514", "anthropic", "messages", "api.anthropic.com", "/v1/messages", 1, 0 },
	{ "claude-opus-4-20250514", "anthropic", "messages", "api.anthropic.com", "/v1/messages", 1, 0 },
	{ "claude-3-5-haiku-20241022", "anthropic", "messages", "api.anthropic.com", "/v1/messages", 1, 0 },
	{ "claude-3-7-sonnet-20250219", "anthropic", "messages", "api.anthropic.com", "/v1/messages", 1, 1 },
	{ "gemini-2.5-pro", "gcp.gemini", "generateContent", "generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-pro:generateContent", 1, 1 },
	{ "gemini-2.5-flash", "gcp.gemini", "generateContent", "generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", 1, 1 },
	{ "gemini-2.0-flash", "gcp.gemini", "generateContent", "generativelanguage.googleapis.com", "/v1beta/models/gemini-2.0-flash:generateContent", 0, 0 },
	{ "mistral-large-latest", "mistral_ai", "chat.completions", "api.mistral.ai", "/v1/chat/completions", 0, 0 },
	{ "mistral-small-latest", "mistral_ai", "chat.completions", "api.mistral.ai", "/v1/chat/completions", 0, 0 },
	{ "deepseek-chat", "deepseek", "chat.completions", "api.deepseek.com", "/chat/completions", 1, 0 },
	{ "deepseek-reasoner", "deepseek", "chat.completions", "api.deepseek.com", "/chat/completions", 1, 1 },
	{ "llama3.1:8b", "ollama", "chat", "localhost", "/api/chat", 0, 0 },
	{ "qwen2.5-coder:7b", "ollama", "chat", "localhost", "/api/chat", 0, 0 },
	{ "mistral:7b", "ollama", "generate", "localhost", "/api/generate", 0, 0 },
};
#define GEN_MODELS ((int)(sizeof(gen_models) / sizeof(gen_models[0])))

static uint64_t gen_state = 0x9e3779b97f4a7c15ULL;

/* xorshift64*: fast, and the same sequence on every run. */
static uint64_t gen_next(void)
{
	gen_state ^= gen_state >> 12;
	gen_state ^= gen_state << 25;
	gen_state ^= gen_state >> 27;
	return gen_state * 0x2545F4914F6CDD1DULL;
}

static double gen_unit(void)
{
	return (double)(gen_next() >> 11) / 9007199254740992.0;
}

/* Skewed toward small values: u^3 spreads [lo, hi) with most mass near lo. */
static int64_t gen_skewed(int64_t lo, int64_t hi)
{
	double u = gen_unit();

	return lo + (int64_t)((double)(hi - lo) * u * u * u);
}

struct gen_totals {
	uint64_t records, errors;
	int64_t input, output, cache_read, reasoning;
};

static int gen_sql(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "gen_store: sqlite: %s\n", err ? err : "?");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char agents[GEN_AGENTS][32], sessions[GEN_BATCH][40], usage[256];
	static struct record recs[GEN_BATCH];
	struct gen_totals t = { 0 };
	struct store *st = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL;
	uint64_t n, i, session_no = 0;
	int64_t step;
	size_t b;
	int rc, k, session_left = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: gen_store N OUT.mdb OUT.sqlite\n");
		return 2;
	}
	n = strtoull(argv[1], NULL, 10);
	step = GEN_SPAN_NS / (int64_t)(n ? n : 1);
	for (k = 0; k < GEN_AGENTS; k++)
		snprintf(agents[k], sizeof(agents[k]), "agent-%02d", k);
	/* 8 GiB of map: 10M records take about 3 GiB; the file grows only as far as it is used. */
	rc = store_open(&st, argv[2], STORE_CREATE, 8ull << 30);
	if (rc != 0) {
		fprintf(stderr, "gen_store: cannot open '%s': %s\n", argv[2], store_strerror(rc));
		return 1;
	}
	if (sqlite3_open(argv[3], &db) != SQLITE_OK ||
	    gen_sql(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
		    "CREATE TABLE messages (id INTEGER PRIMARY KEY, created_at INTEGER NOT NULL,"
		    " session_id TEXT, agent TEXT NOT NULL, provider TEXT, model TEXT NOT NULL,"
		    " role TEXT NOT NULL, status INTEGER, error TEXT, usage TEXT);"
		    "BEGIN;") != 0 ||
	    sqlite3_prepare_v2(db, "INSERT INTO messages (created_at, session_id, agent, provider,"
			       " model, role, status, error, usage) VALUES (?,?,?,?,?,'assistant',?,?,?)",
			       -1, &ins, NULL) != SQLITE_OK) {
		fprintf(stderr, "gen_store: cannot write '%s': %s\n", argv[3], sqlite3_errmsg(db));
		return 1;
	}
	for (i = 0; i < n; i += b) {
		for (b = 0; b < GEN_BATCH && i + b < n; b++) {
			struct record *r = &recs[b];
			const struct gen_model *m;
			int agent = (int)gen_skewed(0, GEN_AGENTS);
			int error = gen_unit() < 0.03;

			m = &gen_models[gen_skewed(0, GEN_MODELS)];
			if (session_left <= 0) {
				session_no++;
				session_left = (int)gen_skewed(1, 400);
			}
			session_left--;
			snprintf(sessions[b], sizeof(sessions[b]), "sess-%08" PRIu64, session_no);
			memset(r, 0, sizeof(*r));
			r->ts_ns = GEN_START_NS + (int64_t)(i + b) * step;
			r->pid = 1000 + agent;
			r->status = error ? (gen_unit() < 0.7 ? 429 : 500) : 200;
			r->retry_after_s = r->status == 429 ? 20 : -1;
			r->flags = gen_unit() < 0.6 ? RECORD_STREAM : 0;
			if (strcmp(m->provider, "ollama") == 0)
				r->flags |= RECORD_LOCAL;
			r->input_tokens = gen_skewed(200, 40000);
			r->output_tokens = error ? 0 : gen_skewed(10, 4000);
			r->cache_read_tokens = m->caching && gen_unit() < 0.33 ?
					       r->input_tokens / 2 : 0;
			r->reasoning_tokens = m->reasoning && !error ? r->output_tokens / 3 : 0;
			r->latency_us = 200000 + r->output_tokens * 9000;
			r->ttfb_us = error ? -1 : 150000 + gen_skewed(0, 2000000);
			r->request_hash = gen_next();
			r->process = record_str_of(agent % 3 == 0 ? "python3" : "node");
			r->agent = record_str_of(agents[agent]);
			r->agent_type = record_str_of(agent % 2 ? "coder" : "researcher");
			r->session = record_str_of(sessions[b]);
			r->provider = record_str_of(m->provider);
			r->api = record_str_of(m->api);
			r->host = record_str_of(m->host);
			r->path = record_str_of(m->path);
			r->model_requested = record_str_of(m->model);
			r->model = r->model_requested;
			if (error) {
				r->error = record_str_of(r->status == 429 ? "rate_limit" : "server_error");
				r->error_message = record_str_of(r->status == 429 ?
					"Rate limit reached for requests per min. Please try again in 20s." :
					"The server had an error while processing your request.");
			}
			t.records++;
			t.errors += error;
			t.input += r->input_tokens;
			t.output += r->output_tokens;
			t.cache_read += r->cache_read_tokens;
			t.reasoning += r->reasoning_tokens;
			snprintf(usage, sizeof(usage), "{\"input_tokens\":%" PRId64 ",\"output_tokens\":%"
				 PRId64 ",\"cache_read_tokens\":%" PRId64 ",\"reasoning_tokens\":%"
				 PRId64 ",\"total_tokens\":%" PRId64 "}", r->input_tokens,
				 r->output_tokens, r->cache_read_tokens, r->reasoning_tokens,
				 r->input_tokens + r->output_tokens);
			sqlite3_bind_int64(ins, 1, r->ts_ns / 1000000);
			sqlite3_bind_text(ins, 2, sessions[b], -1, SQLITE_STATIC);
			sqlite3_bind_text(ins, 3, agents[agent], -1, SQLITE_STATIC);
			sqlite3_bind_text(ins, 4, m->provider, -1, SQLITE_STATIC);
			sqlite3_bind_text(ins, 5, m->model, -1, SQLITE_STATIC);
			sqlite3_bind_int(ins, 6, r->status);
			if (error)
				sqlite3_bind_text(ins, 7, r->error.p, (int)r->error.n, SQLITE_STATIC);
			else
				sqlite3_bind_null(ins, 7);
			sqlite3_bind_text(ins, 8, usage, -1, SQLITE_STATIC);
			if (sqlite3_step(ins) != SQLITE_DONE) {
				fprintf(stderr, "gen_store: sqlite insert: %s\n", sqlite3_errmsg(db));
				return 1;
			}
			sqlite3_reset(ins);
		}
		rc = store_append_batch(st, recs, b);
		if (rc != 0) {
			fprintf(stderr, "gen_store: append: %s\n", store_strerror(rc));
			return 1;
		}
	}
	sqlite3_finalize(ins);
	if (gen_sql(db, "COMMIT;") != 0)
		return 1;
	sqlite3_close(db);
	store_close(st);
	printf("{\"records\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"input_tokens\":%" PRId64
	       ",\"output_tokens\":%" PRId64 ",\"cache_read_tokens\":%" PRId64
	       ",\"reasoning_tokens\":%" PRId64 "}\n", t.records, t.errors, t.input, t.output,
	       t.cache_read, t.reasoning);
	return 0;
}
