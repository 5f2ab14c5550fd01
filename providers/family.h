/*
 * family.h - what the provider families share inside providers/: the family objects the
 * provider table points at, and the helpers every family needs to read a path and to normalise
 * an error. Not part of the providers' public contract (provider.h).
 */
#ifndef TOKSHIM_FAMILY_H
#define TOKSHIM_FAMILY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "providers/provider.h"

extern const struct provider_family provider_family_openai;
extern const struct provider_family provider_family_anthropic;
extern const struct provider_family provider_family_ollama;
extern const struct provider_family provider_family_gemini;
extern const struct provider_family provider_family_cohere;
extern const struct provider_family provider_family_bedrock;
extern const struct provider_family provider_family_shape; /* unknown hosts, by usage shape */

/* Length of a request-target's path: the bytes before '?' or '#'. path may be NULL (0). */
size_t provider_path_len(const char *path);

/* A path a family serves as a whole (any query) and the name of the API there. */
struct provider_api {
	const char *path;
	const char *api;
};

/* The api of the entry of apis[0..n) whose path is path's (query and fragment left out), or
 * NULL. */
const char *provider_api_of_table(const char *path, const struct provider_api *apis, size_t n);

/* Does path[0..len) end with suffix? Returns the length of what precedes the suffix plus one
 * (so that an exact match is 1, true), or 0 when it does not end so. */
size_t provider_path_ends(const char *path, size_t len, const char *suffix);

/* The normalised error type (ERR_*) of a provider's own error type or code string
 * ("rate_limit_error", "insufficient_quota", "invalid_api_key" …), or NULL when unknown. */
const char *provider_error_type(const char *native);

/* Sets u's error type (when type is not NULL) and message (when message is not NULL and none
 * is set yet: the first message of an exchange is the one that explains it). */
void provider_set_error(struct usage *u, const char *type, const char *message);

/*
 * Reads what every family's request has: the body parsed, "model" into u->model_requested and
 * "stream" into *stream (1 true, 0 false, -1 absent). A body that does not parse (cut short by
 * the capture cap) is scanned as raw text for the two keys instead. Returns the parsed tree
 * (pjson_read) for the family to read further and free with pjson_free, or NULL.
 */
cJSON *provider_request_parse(struct usage *u, const struct provider_request *req, int *stream);

/* Sets u's tokens to in read and out written, with no cache or reasoning part, and marks the
 * usage read: the whole usage of the APIs that count only these two. */
void usage_set_counts(struct usage *u, int64_t in, int64_t out);

/* Sets u->model from the non-empty string member "model" of o (o may be NULL). */
void provider_set_model(struct usage *u, const cJSON *o);

#endif
