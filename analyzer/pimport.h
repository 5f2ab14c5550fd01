/*
 * pimport.h - `tokshim pricing update`: other people's price lists turned into ours, merged
 * into the user override file.
 *
 * Two public price lists are read besides our own schema (providers/pricing.c):
 *   - LiteLLM's model_prices_and_context_window.json: an object of models, USD per token
 *     (input_cost_per_token, output_cost_per_token, cache_read_input_token_cost,
 *     cache_creation_input_token_cost, the *_above_Nk_tokens tier, litellm_provider, mode,
 *     search_context_cost_per_query);
 *   - OpenRouter's /api/v1/models: data[].id with pricing.prompt, completion,
 *     input_cache_read, input_cache_write, request as USD strings per token (per request).
 * Prices pass through integer pico-USD (pricing_decimal), never through float arithmetic, so
 * "0.00000375" per token becomes exactly 3.75 per 1M tokens.
 *
 * Names: a LiteLLM model of a first-party API (openai, anthropic, gemini, mistral, deepseek,
 * xai, perplexity, cohere) keeps its bare name ("gpt-4o"); one that a host resells (groq,
 * together_ai, fireworks_ai, bedrock, vertex_ai, azure, openrouter) becomes
 * "<provider>/<name>" with our provider name ("groq/llama-3.3-70b-versatile"), which
 * pricing_lookup tries first for records of that provider. Every OpenRouter model becomes
 * "openrouter/<id>". Image, audio, rerank and moderation models are skipped.
 */
#ifndef TOKSHIM_PIMPORT_H
#define TOKSHIM_PIMPORT_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Cap on a fetched or read price list (LiteLLM's file is about 1.5 MB). */
#define PIMPORT_MAX (32u << 20)

enum pimport_schema { PIMPORT_OURS, PIMPORT_LITELLM, PIMPORT_OPENROUTER };

/* "tokshim", "LiteLLM", "OpenRouter": static. */
const char *pimport_schema_name(enum pimport_schema s);

/*
 * Converts a price list (any of the three schemas, told apart by shape) into a new cJSON
 * object of models in our schema, which the caller frees with cJSON_Delete. *schema says
 * which it was. Returns 0, or -1 with a one-line reason in err (not JSON, no known shape, no
 * model with a price).
 */
int pimport_convert(const char *json, size_t len, cJSON **models, enum pimport_schema *schema,
		    char *err, size_t errlen);

/*
 * Reads a price list from src: an http:// or https:// URL (fetched through libcurl, redirects
 * followed, HTTP errors refused) or a file path. *data is malloc'd, NUL-terminated, freed by
 * the caller. Returns 0, or -1 with a reason naming src in err.
 */
int pimport_read(const char *src, char **data, size_t *len, char *err, size_t errlen);

/* What merging did to one model. */
enum pimport_change { PIMPORT_ADDED, PIMPORT_CHANGED, PIMPORT_SAME };

typedef void (*pimport_change_fn)(const char *model, enum pimport_change change,
				  const cJSON *before, const cJSON *after, void *arg);

/*
 * Merges models (our schema) into the override document *doc (NULL when there is no file
 * yet: a new document is made; the caller frees *doc with cJSON_Delete). A model of the same
 * name is replaced; models the list does not name are kept. Calls fn (may be NULL) once per
 * imported model, in name order. source (the URL or file) is added to the document's
 * "sources" and taken_date to its "taken". Takes ownership of models. Returns 0 or -1 (out of
 * memory, or *doc is not a pricing document: a reason in err).
 */
int pimport_merge(cJSON **doc, cJSON *models, const char *source, const char *taken_date,
		  pimport_change_fn fn, void *arg, char *err, size_t errlen);

/*
 * Writes text to path atomically: a temporary file in the same folder, fsync, rename. The
 * file keeps the mode of the one it replaces, else 0644 (prices are not secrets, and people
 * edit this file by hand); the folder is created (0700) when missing. Returns 0, or -1 with a reason naming path
 * in err; on failure the old file is untouched.
 */
int pimport_write_atomic(const char *path, const char *text, char *err, size_t errlen);

#endif
