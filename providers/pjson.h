/*
 * pjson.h - small JSON helpers shared by the provider families.
 *
 * Every family reads the same few shapes out of cJSON trees: an integer token count that may be
 * absent or null, a string that may be absent, a field several objects deep, and the length of
 * the text inside a message's content (a string, or an array of parts). Writing them once keeps
 * each family file down to what is particular to its wire API.
 *
 * When a request body was cut short by the capture cap it is not valid JSON, yet the model and
 * stream flag usually sit near its start: pjson_scan_* find a top-level-looking key in raw text
 * without parsing, as a fallback.
 */
#ifndef TOKSHIM_PJSON_H
#define TOKSHIM_PJSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Parses len bytes (no NUL needed). Returns a tree the caller frees with cJSON_Delete, or NULL
 * when the bytes are not one JSON value. */
cJSON *pjson_parse(const char *data, size_t len);

/*
 * The fast reader the provider families use on every call: parses len bytes (no NUL needed;
 * bytes after the first value are left alone, as cJSON_ParseWithLengthOpts does) into a tree of
 * cJSON nodes held in a few blocks of memory, most often one, instead of two mallocs per value.
 * The tree is read-only: read it with the cJSON_Is*, cJSON_GetObjectItemCaseSensitive,
 * cJSON_ArrayForEach, cJSON_GetArrayItem, cJSON_PrintUnformatted and pjson_* readers; never
 * modify it or pass it to cJSON_Delete. The caller frees it with pjson_free; every pointer into
 * it stays valid until then. It reads what cJSON reads (a leading UTF-8 BOM, any byte <= 32 as
 * space, the same escapes, numbers, nesting limit and number-to-valueint rules). When end is not
 * NULL it receives where the value ended. Returns NULL when the bytes do not start with one
 * JSON value, or when memory runs out; the second case also sets this thread's flag read by
 * pjson_nomem_take, so a caller can tell a body it could not read from one it was given bad.
 */
cJSON *pjson_read(const char *data, size_t len, const char **end);

/* Returns 1 when a pjson_read on this thread ran out of memory since the last call, else 0, and
 * clears the flag. Call it once before reading (to forget older failures) and once after. */
int pjson_nomem_take(void);

/* Raises the same flag: a provider's own allocation for reading a body failed (Bedrock's base64
 * chunks), so what it read is as incomplete as after a failed pjson_read. */
void pjson_nomem_raise(void);

/* Frees a tree from pjson_read; NULL is allowed. */
void pjson_free(cJSON *root);

/* The member at the path of keys k1, k2 … (NULL-terminated list) below o, or NULL when any
 * step is missing or not an object. The pointer is valid as long as the tree. */
const cJSON *pjson_at(const cJSON *o, ...) __attribute__((sentinel));

/* Reads the number member key of o as a non-negative integer into *out. Returns 1 when the
 * member is a number, 0 (and *out unchanged) when absent, null or of another type. */
int pjson_int(const cJSON *o, const char *key, int64_t *out);

/* The string member key of o, or NULL when absent or not a string. Valid as long as the tree. */
const char *pjson_str(const cJSON *o, const char *key);

/* Is member key of o the JSON value true? Returns 1 true, 0 false, -1 absent or not a bool. */
int pjson_bool(const cJSON *o, const char *key);

/*
 * Bytes of text inside a message content value: a string counts its (decoded) length; an
 * array counts its strings and, for each object part, its "text", "thinking", "partial_json"
 * strings and (recursively, to a small depth) its "content"; a tool call's "input" object or
 * "arguments" string counts its JSON text. Anything else counts 0.
 */
uint64_t pjson_text_bytes(const cJSON *v);

/* Bytes of every message's content in a messages array (OpenAI, Anthropic, Ollama chat). */
uint64_t pjson_messages_text_bytes(const cJSON *messages);

/*
 * Raw-text fallbacks for a body that does not parse (cut short). pjson_scan_str finds the first
 * `"key"` followed by `:` and a string and copies the string's raw characters (escapes not
 * decoded, cut to fit) into dst of capacity cap; returns 1 when found. pjson_scan_bool returns
 * 1 or 0 for `"key": true|false`, -1 when not found.
 */
int pjson_scan_str(const char *data, size_t len, const char *key, char *dst, size_t cap);
int pjson_scan_bool(const char *data, size_t len, const char *key);

#endif
