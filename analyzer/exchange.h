/*
 * exchange.h - one captured exchange for people (`tokshim show`): the record's fields, the
 * redacted heads, the bodies pretty-printed when they are JSON, and a streamed response put
 * back together: the generated text, the final usage and the number of events.
 */
#ifndef TOKSHIM_EXCHANGE_H
#define TOKSHIM_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "store/record.h"
#include "store/store.h"

/* The reassembled text is cut past this many bytes (a stream can be any length), a tool
 * call's arguments past EXCHANGE_ARGS_MAX, and tool calls past the first EXCHANGE_TOOLS_MAX. */
#define EXCHANGE_TEXT_MAX (1u << 20)
#define EXCHANGE_ARGS_MAX (64u << 10)
#define EXCHANGE_TOOLS_MAX 32

/* A growable text with a cap: bytes past the cap are dropped and cut is set. */
struct exchange_text {
	char *p; /* NUL-terminated once anything was added, owned */
	size_t len, cap;
	int cut;
};

/* One tool call put back together from its streamed pieces. */
struct stream_tool {
	int64_t index;             /* the position the wire API gives it */
	struct exchange_text name;
	struct exchange_text args; /* the arguments as JSON text */
};

enum exchange_stream { EXCHANGE_BODY, EXCHANGE_SSE, EXCHANGE_NDJSON };

/* What a stream amounts to. */
struct stream_summary {
	struct exchange_text text; /* generated text deltas concatenated */
	struct stream_tool tools[EXCHANGE_TOOLS_MAX];
	size_t ntools;
	int tools_cut;     /* more tool calls than EXCHANGE_TOOLS_MAX */
	cJSON *usage;      /* the usage objects of the events merged, later fields winning */
	uint64_t events;   /* events framed, [DONE] included */
	uint64_t not_json; /* events whose data was not JSON (besides [DONE]) */
	uint64_t dropped;  /* events over the framer's size cap */
	int failed;        /* out of memory while reassembling */
};

/* Which framing a response uses, from the Content-Type of its head (text/event-stream,
 * application/x-ndjson), else from the first bytes of the body. */
enum exchange_stream exchange_stream_kind(const char *resp_head, size_t head_len,
					  const char *body, size_t body_len);

/*
 * Frames body as SSE or NDJSON and gathers the text deltas (OpenAI chat choices[0].delta.content
 * and responses output_text deltas, Anthropic content_block_delta delta.text, Ollama
 * message.content or response, Gemini candidates[0].content.parts[].text), the tool calls
 * (OpenAI chat delta.tool_calls and responses function_call items, Anthropic tool_use blocks
 * with their input_json_delta pieces, Ollama message.tool_calls, Gemini functionCall parts)
 * and the usage.
 * out is initialised here and must be released with stream_summary_release. Returns 0 or -1
 * when out of memory (out then holds what was gathered before).
 */
int exchange_reassemble(enum exchange_stream kind, const char *body, size_t len,
			struct stream_summary *out);
void stream_summary_release(struct stream_summary *s);

/*
 * Prints the exchange of rec: its fields, then with pl (NULL when none was stored) the heads,
 * the bodies and a stream reassembled. priced/pusd are the record's cost.
 */
void exchange_print(FILE *f, const struct record *rec, const struct payload *pl, int priced,
		    int64_t pusd, int colour);

#endif
