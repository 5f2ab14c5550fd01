/*
 * family.h - what the provider families share inside providers/: the family objects the
 * provider table points at, and the helpers every family needs to read a path and to normalise
 * an error. Not part of the providers' public contract (provider.h).
 */
#ifndef TOKSHIM_FAMILY_H
#define TOKSHIM_FAMILY_H

#include <stddef.h>

#include "providers/provider.h"

extern const struct provider_family provider_family_openai;
extern const struct provider_family provider_family_anthropic;
extern const struct provider_family provider_family_ollama;

/* Length of a request-target's path: the bytes before '?' or '#'. path may be NULL (0). */
size_t provider_path_len(const char *path);

/* Does path[0..len) end with suffix? Returns the length of what precedes the suffix plus one
 * (so that an exact match is 1, true), or 0 when it does not end so. */
size_t provider_path_ends(const char *path, size_t len, const char *suffix);

/* The normalised error type (ERR_*) of a provider's own error type or code string
 * ("rate_limit_error", "insufficient_quota", "invalid_api_key" …), or NULL when unknown. */
const char *provider_error_type(const char *native);

/* Sets u's error type (when type is not NULL) and message (when message is not NULL and none
 * is set yet: the first message of an exchange is the one that explains it). */
void provider_set_error(struct usage *u, const char *type, const char *message);

#endif
