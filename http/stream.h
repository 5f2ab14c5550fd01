/*
 * stream.h - framing of streamed response bodies into events: Server-Sent Events
 * (text/event-stream), newline-delimited JSON (application/x-ndjson) and a JSON array sent
 * element by element (Gemini). The binary AWS event-stream has its own decoder, eventstream.h.
 *
 * An event is gathered whole before it is handed out, because providers put what matters in
 * single large events (OpenAI's response.completed carries the whole response). Each parser
 * holds at most one event, bounded by max_event; a larger event is dropped and counted, so a
 * million events or one endless event leave memory flat.
 */
#ifndef TOKSHIM_STREAM_H
#define TOKSHIM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#define STREAM_EVENT_MAX_DEFAULT (16u << 20)

/* One event. name is the SSE "event:" field (NULL, 0 when absent; always NULL for NDJSON);
 * data is the event's data lines joined by "\n" (SSE) or the line without its newline
 * (NDJSON). Pointers are valid during the call only. */
typedef void (*stream_event_fn)(void *ctx, const char *name, size_t name_len, const char *data,
				size_t data_len);

struct sse_parser {
	stream_event_fn on_event;
	void *ctx;
	size_t max_event;
	char *name;        /* current event name (heap, bounded) */
	size_t name_len, name_cap;
	char *data;        /* current data lines joined by \n (heap, bounded) */
	size_t data_len, data_cap;
	int has_data;      /* a data: field was seen in this event */
	/* Lines are not gathered: once a line's field name is known, its value bytes go straight
	 * to the event's name or data (or nowhere), so one copy is kept of an event, not two. */
	int line_state;    /* start of line, field name, just after the colon, value */
	int line_field;    /* where the value bytes of this line go */
	char field[8];     /* the field name's first bytes ("data", "event", "id", "retry") */
	size_t field_len;  /* the field name's whole length */
	int event_oversize; /* the current event passed max_event: discard it to its blank line */
	int last_cr;       /* previous byte was CR (CRLF counts as one line end) */
	int bom_state;     /* 0..2: UTF-8 BOM bytes matched at the stream start; 3: past it */
	uint64_t events;   /* events delivered */
	uint64_t dropped;  /* events dropped for size */
};

/* max_event 0 means STREAM_EVENT_MAX_DEFAULT. Allocates nothing until the first event. */
void sse_parser_init(struct sse_parser *p, size_t max_event, stream_event_fn fn, void *ctx);
/* Frames bytes into events per the WHATWG event-stream rules (LF, CR or CRLF line ends;
 * "data:", "event:", comments, a single space after the colon removed; an event without a
 * data field is not dispatched). Returns 0 or HTTP_ENOMEM (the event in progress is then
 * dropped and counted; the parser carries on). */
int sse_parser_feed(struct sse_parser *p, const char *data, size_t len);
/* End of body: an event not followed by its blank line is discarded, as the spec says. */
void sse_parser_finish(struct sse_parser *p);
void sse_parser_release(struct sse_parser *p);

struct ndjson_parser {
	stream_event_fn on_event;
	void *ctx;
	size_t max_event;
	char *line;
	size_t line_len, line_cap;
	int line_oversize;
	uint64_t events;
	uint64_t dropped;
};

/* max_event 0 means STREAM_EVENT_MAX_DEFAULT. */
void ndjson_parser_init(struct ndjson_parser *p, size_t max_event, stream_event_fn fn, void *ctx);
/* Lines end with LF (a CR before it is removed); blank (or white-space-only) lines are skipped;
 * a line over max_event is dropped and counted. Returns 0 or HTTP_ENOMEM. */
int ndjson_parser_feed(struct ndjson_parser *p, const char *data, size_t len);
/* End of body: a last line without its newline is delivered. */
void ndjson_parser_finish(struct ndjson_parser *p);
void ndjson_parser_release(struct ndjson_parser *p);

/*
 * A JSON array streamed element by element (Gemini's streamGenerateContent without alt=sse:
 * `[{…}\n,\r\n{…}]` arriving in any pieces). Each top-level element is one event, handed out
 * as soon as its last byte is in; a body that is not an array (an error object) is one event.
 * Strings and escapes are followed so that brackets inside text do not count.
 */
struct jsonarray_parser {
	stream_event_fn on_event;
	void *ctx;
	size_t max_event;
	char *elem;        /* the current element (heap, bounded) */
	size_t elem_len, elem_cap;
	int state;         /* before the body's value, between elements, in one, after the array */
	int top_array;     /* the body is an array (else its one value is the event) */
	unsigned depth;    /* open brackets and braces inside the element */
	int in_string, escape;
	int elem_oversize; /* the element passed max_event: it is discarded when it ends */
	uint64_t events;
	uint64_t dropped;
};

/* max_event 0 means STREAM_EVENT_MAX_DEFAULT. Allocates nothing until the first element. */
void jsonarray_parser_init(struct jsonarray_parser *p, size_t max_event, stream_event_fn fn,
			   void *ctx);
/* Frames bytes into elements (name always NULL; data the element's JSON text without the
 * separators around it). Returns 0 or HTTP_ENOMEM (the element is dropped and counted). */
int jsonarray_parser_feed(struct jsonarray_parser *p, const char *data, size_t len);
/* End of body: a number or literal still open is delivered; a cut object or string is not. */
void jsonarray_parser_finish(struct jsonarray_parser *p);
void jsonarray_parser_release(struct jsonarray_parser *p);

#endif
