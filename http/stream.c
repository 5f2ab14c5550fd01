/*
 * stream.c - SSE, NDJSON and JSON-array framing of streamed bodies (stream.h).
 *
 * The SSE parser does not gather lines: it reads a line's field name into a few bytes, and from
 * the colon on sends the value's bytes straight where they belong (the event's data, its name,
 * or nowhere for comments, id, retry and unknown fields). So an event is held once, in its data
 * buffer, and a 200 KiB data line arriving in 16 KiB reads costs one copy, not two. Values are
 * found with memchr, so the per-byte work is only on field names and line ends.
 *
 * Buffers grow to fit the largest event seen, never past max_event; an event that would pass
 * it stops growing at once and is discarded up to its blank line. After a large event (a
 * response.completed) the buffer is given back, so a long-lived connection keeps only what a
 * typical event needs.
 */
#include "http/stream.h"
#include "http/http.h"

#include <stdlib.h>
#include <string.h>

/* Buffers at most this big are kept between events; bigger ones are freed after use. */
#define STREAM_KEEP_CAP (64 * 1024)
#define STREAM_CAP_INITIAL 256

enum sse_line_state { SSE_LINE_START, SSE_LINE_FIELD, SSE_LINE_AFTER_COLON, SSE_LINE_VALUE };
enum sse_field { SSE_FIELD_IGNORE, SSE_FIELD_DATA, SSE_FIELD_EVENT };

/* Makes room for need bytes in *buf, growing geometrically up to max (need <= max). */
static int stream_reserve(char **buf, size_t *cap, size_t need, size_t max)
{
	size_t ncap = *cap ? *cap : STREAM_CAP_INITIAL;
	char *grown;
	int rc = HTTP_OK;

	if (need <= *cap)
		goto out;
	while (ncap < need && ncap <= max / 2)
		ncap *= 2;
	if (ncap < need)
		ncap = need;
	if (ncap > max)
		ncap = max;
	grown = realloc(*buf, ncap);
	if (grown == NULL) {
		rc = HTTP_ENOMEM;
		goto out;
	}
	*buf = grown;
	*cap = ncap;
out:
	return rc;
}

/* Frees a buffer that one large event grew, so that it is not kept for the small ones. */
static void stream_shrink(char **buf, size_t *cap)
{
	if (*cap > STREAM_KEEP_CAP) {
		free(*buf);
		*buf = NULL;
		*cap = 0;
	}
}

/* Finds the first CR or LF in s[0..n); n when there is none. */
static size_t stream_find_eol(const char *s, size_t n)
{
	const char *lf = memchr(s, '\n', n), *cr;

	if (lf != NULL)
		n = (size_t)(lf - s);
	cr = memchr(s, '\r', n);
	return cr != NULL ? (size_t)(cr - s) : n;
}

void sse_parser_init(struct sse_parser *p, size_t max_event, stream_event_fn fn, void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->on_event = fn;
	p->ctx = ctx;
	p->max_event = max_event ? max_event : STREAM_EVENT_MAX_DEFAULT;
}

/* Appends s[0..n) to the event's data or name, unless the event has passed max_event. */
static int sse_append(struct sse_parser *p, int field, const char *s, size_t n)
{
	char **buf = field == SSE_FIELD_DATA ? &p->data : &p->name;
	size_t *len = field == SSE_FIELD_DATA ? &p->data_len : &p->name_len;
	size_t *cap = field == SSE_FIELD_DATA ? &p->data_cap : &p->name_cap;
	int rc = HTTP_OK;

	if (p->event_oversize || n == 0)
		goto out;
	if (n > p->max_event - *len) {
		p->event_oversize = 1;
		goto out;
	}
	rc = stream_reserve(buf, cap, *len + n, p->max_event);
	if (rc != HTTP_OK) {
		p->event_oversize = 1; /* cannot hold it: drop it like an oversize event */
		goto out;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
out:
	return rc;
}

/* Which field the line's name is. */
static int sse_field_of(const struct sse_parser *p)
{
	int f = SSE_FIELD_IGNORE; /* id, retry and unknown fields change no event we report */

	if (p->field_len == 4 && memcmp(p->field, "data", 4) == 0)
		f = SSE_FIELD_DATA;
	else if (p->field_len == 5 && memcmp(p->field, "event", 5) == 0)
		f = SSE_FIELD_EVENT;
	return f;
}

/* The line's field name is known: start its value. */
static int sse_value_start(struct sse_parser *p)
{
	int rc = HTTP_OK;

	p->line_field = sse_field_of(p);
	if (p->line_field == SSE_FIELD_DATA) {
		/* Data lines are joined with LF: the spec's trailing LF, removed at dispatch. */
		if (p->has_data)
			rc = sse_append(p, SSE_FIELD_DATA, "\n", 1);
		p->has_data = 1;
	} else if (p->line_field == SSE_FIELD_EVENT) {
		p->name_len = 0; /* a later event: field replaces an earlier one */
	}
	return rc;
}

/* A blank line: hand the event out (when it has data and fits) and start the next. */
static void sse_dispatch(struct sse_parser *p)
{
	if (p->event_oversize) {
		p->dropped++;
	} else if (p->has_data) {
		p->events++;
		if (p->on_event)
			p->on_event(p->ctx, p->name_len ? p->name : NULL, p->name_len,
				    p->data ? p->data : "", p->data_len);
	}
	p->data_len = 0;
	p->name_len = 0;
	p->has_data = 0;
	p->event_oversize = 0;
	stream_shrink(&p->data, &p->data_cap);
	stream_shrink(&p->name, &p->name_cap);
}

static int sse_line_end(struct sse_parser *p)
{
	int rc = HTTP_OK;

	if (p->line_state == SSE_LINE_START)
		sse_dispatch(p);
	else if (p->line_state == SSE_LINE_FIELD)
		rc = sse_value_start(p); /* a field without a colon: its value is empty */
	p->line_state = SSE_LINE_START;
	p->field_len = 0;
	p->line_field = SSE_FIELD_IGNORE;
	return rc;
}

/* Frames bytes that come after the BOM check. */
static int sse_scan(struct sse_parser *p, const char *s, size_t n)
{
	size_t i = 0, span;
	int rc = HTTP_OK, r;
	char c;

	while (i < n) {
		c = s[i];
		r = HTTP_OK;
		if (p->last_cr) {
			p->last_cr = 0;
			if (c == '\n') { /* the LF of a CRLF: the line already ended at the CR */
				i++;
				continue;
			}
		}
		if (c == '\r' || c == '\n') {
			r = sse_line_end(p);
			p->last_cr = c == '\r';
			i++;
		} else if (p->line_state == SSE_LINE_START && c == ':') {
			p->line_state = SSE_LINE_VALUE; /* a comment: its value goes nowhere */
			p->line_field = SSE_FIELD_IGNORE;
			i++;
		} else if (p->line_state <= SSE_LINE_FIELD && c == ':') {
			r = sse_value_start(p);
			p->line_state = SSE_LINE_AFTER_COLON;
			i++;
		} else if (p->line_state <= SSE_LINE_FIELD) {
			if (p->field_len < sizeof(p->field))
				p->field[p->field_len] = c;
			p->field_len++;
			p->line_state = SSE_LINE_FIELD;
			i++;
		} else {
			/* One space after the colon is not part of the value. */
			if (p->line_state == SSE_LINE_AFTER_COLON && c == ' ')
				i++;
			p->line_state = SSE_LINE_VALUE;
			span = stream_find_eol(s + i, n - i);
			if (p->line_field != SSE_FIELD_IGNORE)
				r = sse_append(p, p->line_field, s + i, span);
			i += span;
		}
		if (r != HTTP_OK)
			rc = r;
	}
	return rc;
}

int sse_parser_feed(struct sse_parser *p, const char *data, size_t len)
{
	static const char bom[3] = { '\xef', '\xbb', '\xbf' };
	size_t i = 0;
	int rc = HTTP_OK, r;

	/* A UTF-8 BOM at the very start of the stream is not part of it; it may arrive split. */
	while (p->bom_state < 3 && i < len) {
		if (data[i] == bom[p->bom_state]) {
			p->bom_state++;
			i++;
			continue;
		}
		/* Not a BOM after all: what matched was ordinary text. */
		r = sse_scan(p, bom, (size_t)p->bom_state);
		if (r != HTTP_OK)
			rc = r;
		p->bom_state = 3;
	}
	if (i < len) {
		r = sse_scan(p, data + i, len - i);
		if (r != HTTP_OK)
			rc = r;
	}
	return rc;
}

void sse_parser_finish(struct sse_parser *p)
{
	/* An event without its blank line is discarded (WHATWG 9.2.6: "incomplete event"). */
	p->data_len = 0;
	p->name_len = 0;
	p->has_data = 0;
	p->event_oversize = 0;
	p->line_state = SSE_LINE_START;
	p->line_field = SSE_FIELD_IGNORE;
	p->field_len = 0;
	p->last_cr = 0;
}

void sse_parser_release(struct sse_parser *p)
{
	free(p->name);
	free(p->data);
	p->name = NULL;
	p->data = NULL;
	p->name_len = p->name_cap = 0;
	p->data_len = p->data_cap = 0;
}

void ndjson_parser_init(struct ndjson_parser *p, size_t max_event, stream_event_fn fn, void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->on_event = fn;
	p->ctx = ctx;
	p->max_event = max_event ? max_event : STREAM_EVENT_MAX_DEFAULT;
}

static int ndjson_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* One whole line, its LF removed. White space before the JSON is not part of the event (nor
 * of its size): a line gathered over several pieces never holds it either (ndjson_append), so
 * what a line gives does not depend on where the body was cut. */
static void ndjson_line(struct ndjson_parser *p, const char *s, size_t n)
{
	size_t k;

	if (n > 0 && s[n - 1] == '\r')
		n--;
	for (k = 0; k < n && ndjson_blank(s[k]); k++)
		;
	if (k == n) {
		/* blank: skipped */
	} else if (n - k > p->max_event) {
		p->dropped++;
	} else {
		p->events++;
		if (p->on_event)
			p->on_event(p->ctx, NULL, 0, s + k, n - k);
	}
}

/* Appends part of a line that goes on past this piece of input. A CR may end the line, so
 * one byte over max_event is still held. */
static int ndjson_append(struct ndjson_parser *p, const char *s, size_t n)
{
	size_t max = p->max_event + 1;
	int rc = HTTP_OK;

	while (p->line_len == 0 && n > 0 && ndjson_blank(*s)) {
		s++;
		n--;
	}
	if (p->line_oversize || n == 0)
		goto out;
	if (n > max - p->line_len) {
		p->line_oversize = 1;
		goto out;
	}
	rc = stream_reserve(&p->line, &p->line_cap, p->line_len + n, max);
	if (rc != HTTP_OK) {
		p->line_oversize = 1;
		goto out;
	}
	memcpy(p->line + p->line_len, s, n);
	p->line_len += n;
out:
	return rc;
}

/* The gathered line is over: deliver or drop it, and start the next. */
static void ndjson_line_done(struct ndjson_parser *p)
{
	if (p->line_oversize)
		p->dropped++;
	else if (p->line_len > 0)
		ndjson_line(p, p->line, p->line_len);
	p->line_len = 0;
	p->line_oversize = 0;
	stream_shrink(&p->line, &p->line_cap);
}

int ndjson_parser_feed(struct ndjson_parser *p, const char *data, size_t len)
{
	const char *lf;
	size_t i = 0, n;
	int rc = HTTP_OK, r;

	while (i < len) {
		lf = memchr(data + i, '\n', len - i);
		n = lf ? (size_t)(lf - (data + i)) : len - i;
		if (lf != NULL && p->line_len == 0 && !p->line_oversize) {
			ndjson_line(p, data + i, n); /* whole line in this piece: no copy */
		} else {
			r = ndjson_append(p, data + i, n);
			if (r != HTTP_OK)
				rc = r;
			if (lf != NULL)
				ndjson_line_done(p);
		}
		i += n + (lf != NULL);
	}
	return rc;
}

void ndjson_parser_finish(struct ndjson_parser *p)
{
	ndjson_line_done(p);
}

void ndjson_parser_release(struct ndjson_parser *p)
{
	free(p->line);
	p->line = NULL;
	p->line_len = p->line_cap = 0;
	p->line_oversize = 0;
}

enum jsonarray_state { JA_START, JA_BETWEEN, JA_ELEM, JA_DONE };

void jsonarray_parser_init(struct jsonarray_parser *p, size_t max_event, stream_event_fn fn,
			   void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->on_event = fn;
	p->ctx = ctx;
	p->max_event = max_event ? max_event : STREAM_EVENT_MAX_DEFAULT;
}

static int jsonarray_append(struct jsonarray_parser *p, const char *s, size_t n)
{
	int rc = HTTP_OK;

	if (p->elem_oversize || n == 0)
		goto out;
	if (n > p->max_event - p->elem_len) {
		p->elem_oversize = 1;
		goto out;
	}
	rc = stream_reserve(&p->elem, &p->elem_cap, p->elem_len + n, p->max_event);
	if (rc != HTTP_OK) {
		p->elem_oversize = 1;
		goto out;
	}
	memcpy(p->elem + p->elem_len, s, n);
	p->elem_len += n;
out:
	return rc;
}

/* The element is whole: hand it out (or count it dropped) and wait for the next. */
static void jsonarray_element_done(struct jsonarray_parser *p)
{
	if (p->elem_oversize) {
		p->dropped++;
	} else if (p->elem_len > 0) {
		p->events++;
		if (p->on_event)
			p->on_event(p->ctx, NULL, 0, p->elem, p->elem_len);
	}
	p->elem_len = 0;
	p->elem_oversize = 0;
	p->state = p->top_array ? JA_BETWEEN : JA_DONE;
	stream_shrink(&p->elem, &p->elem_cap);
}

static int jsonarray_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Where the element that started at s[0] (or earlier) ends in s[0..n): sets *end to the
 * bytes that belong to it and returns 1 when it ends here, else 0 (all n bytes belong to it).
 */
static int jsonarray_scan(struct jsonarray_parser *p, const char *s, size_t n, size_t *end)
{
	size_t i;
	int done = 0;
	char c;

	for (i = 0; i < n && !done; i++) {
		c = s[i];
		if (p->in_string) {
			if (p->escape) {
				p->escape = 0;
			} else if (c == '\\') {
				p->escape = 1;
			} else if (c == '"') {
				p->in_string = 0;
				done = p->depth == 0; /* the element is a string */
			}
		} else if (c == '"') {
			p->in_string = 1;
		} else if (c == '{' || c == '[') {
			p->depth++;
		} else if ((c == '}' || c == ']') && p->depth > 0) {
			p->depth--;
			done = p->depth == 0;
		} else if (p->depth == 0 && (c == ',' || c == ']' || jsonarray_space(c))) {
			/* The end of a number or literal: the delimiter is not part of it. */
			done = 1;
			break;
		}
	}
	*end = i;
	return done;
}

int jsonarray_parser_feed(struct jsonarray_parser *p, const char *data, size_t len)
{
	size_t i = 0, end;
	int rc = HTTP_OK, r, done;
	char c;

	while (i < len && p->state != JA_DONE) {
		c = data[i];
		if (p->state != JA_ELEM) {
			if (jsonarray_space(c) || (p->state == JA_BETWEEN && c == ',')) {
				i++;
			} else if (p->state == JA_START && c == '[') {
				p->top_array = 1;
				p->state = JA_BETWEEN;
				i++;
			} else if (p->state == JA_BETWEEN && c == ']') {
				p->state = JA_DONE;
				i++;
			} else {
				p->state = JA_ELEM;
				p->depth = 0;
				p->in_string = p->escape = 0;
			}
			continue;
		}
		done = jsonarray_scan(p, data + i, len - i, &end);
		r = jsonarray_append(p, data + i, end);
		if (r != HTTP_OK)
			rc = r;
		i += end;
		if (done)
			jsonarray_element_done(p);
	}
	return rc;
}

void jsonarray_parser_finish(struct jsonarray_parser *p)
{
	/* An oversize element holds no bytes but still ends here (and is counted dropped), as it
	 * would had it been cut before it passed max_event. */
	if (p->state == JA_ELEM && p->depth == 0 && !p->in_string &&
	    (p->elem_len > 0 || p->elem_oversize))
		jsonarray_element_done(p);
	p->elem_len = 0;
	p->elem_oversize = 0;
	p->state = JA_DONE;
}

void jsonarray_parser_release(struct jsonarray_parser *p)
{
	free(p->elem);
	p->elem = NULL;
	p->elem_len = p->elem_cap = 0;
}
