/*
 * fuzz_providers.c - every provider family's extractors (providers/provider.h): api_of,
 * request, response, body and event. Families are reached through provider_family_at, so one
 * added to the provider table is fuzzed without a change here.
 *
 * Input, text-friendly so that recorded bodies make seeds:
 *   line 1   the family's name ("openai", "gemini" …); a name no family has picks family
 *            number (first byte % number of families)
 *   line 2   KIND PATH: R (the rest is a request body), or for a response B (whole body),
 *            S (SSE events), N (NDJSON lines), J (JSON array elements), A (AWS event-stream
 *            messages); PATH is the request-target (api_of, and the request's path)
 *   the rest R: the request body; otherwise an HTTP response, head then body until the end,
 *            whose head goes to the family's response reader and whose body is framed by KIND
 *
 * After usage_finish every string of the usage must be NUL-terminated inside its array, and
 * the token counts must not be negative.
 */
#include <string.h>

#include "fuzz/fuzz.h"
#include "http/eventstream.h"
#include "http/http.h"
#include "http/stream.h"
#include "providers/provider.h"

/* Bodies are gathered up to this; the capture layer caps them the same way. */
#define BODY_MAX (1u << 20)

struct run {
	const struct provider_family *family;
	char kind;
	struct usage u;
	char *body;
	size_t body_len;
	int status;
	int complete;
};

static const struct provider_family *family_named(const char *name, size_t len)
{
	const struct provider_family *f = NULL, *it;
	size_t i, count = 0;

	for (i = 0; (it = provider_family_at(i)) != NULL && f == NULL; i++) {
		count++;
		if (strlen(it->name) == len && memcmp(it->name, name, len) == 0)
			f = it;
	}
	while (f == NULL && provider_family_at(count) != NULL)
		count++;
	if (f == NULL)
		f = provider_family_at(len > 0 ? (unsigned char)name[0] % count : 0);
	return f;
}

static enum http_body_mode on_head(void *ctx, const struct http_head *h)
{
	struct run *r = ctx;

	r->status = h->status;
	if (r->family->response != NULL)
		(void)r->family->response(&r->u, h);
	return HTTP_BODY_DELIVER;
}

static void on_body(void *ctx, const char *data, size_t len)
{
	struct run *r = ctx;

	if (len > BODY_MAX - r->body_len)
		len = BODY_MAX - r->body_len;
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
}

static void on_end(void *ctx, int complete)
{
	struct run *r = ctx;

	r->complete = complete;
}

static const struct http_parser_callbacks callbacks = {on_head, on_body, on_end};

static void on_event(void *ctx, const char *name, size_t name_len, const char *data,
		     size_t len)
{
	struct run *r = ctx;

	r->family->event(&r->u, name, name_len, data, len);
}

/* Frames the gathered body into events by the run's kind and hands each to the family. */
static void frame_events(struct run *r)
{
	struct sse_parser sse;
	struct ndjson_parser nd;
	struct jsonarray_parser ja;
	struct eventstream_parser es;

	switch (r->kind) {
	case 'S':
		sse_parser_init(&sse, 0, on_event, r);
		sse_parser_feed(&sse, r->body, r->body_len);
		sse_parser_finish(&sse);
		sse_parser_release(&sse);
		break;
	case 'N':
		ndjson_parser_init(&nd, 0, on_event, r);
		ndjson_parser_feed(&nd, r->body, r->body_len);
		ndjson_parser_finish(&nd);
		ndjson_parser_release(&nd);
		break;
	case 'J':
		jsonarray_parser_init(&ja, 0, on_event, r);
		jsonarray_parser_feed(&ja, r->body, r->body_len);
		jsonarray_parser_finish(&ja);
		jsonarray_parser_release(&ja);
		break;
	default:
		eventstream_parser_init(&es, 0, on_event, r);
		eventstream_parser_feed(&es, r->body, r->body_len);
		eventstream_parser_release(&es);
		break;
	}
}

static void check_usage(const struct usage *u)
{
	FUZZ_CHECK(memchr(u->model_requested, '\0', sizeof u->model_requested) != NULL);
	FUZZ_CHECK(memchr(u->model, '\0', sizeof u->model) != NULL);
	FUZZ_CHECK(memchr(u->error, '\0', sizeof u->error) != NULL);
	FUZZ_CHECK(memchr(u->error_message, '\0', sizeof u->error_message) != NULL);
	FUZZ_CHECK(u->input_tokens >= 0 && u->output_tokens >= 0);
	FUZZ_CHECK(u->cache_read_tokens >= 0 && u->cache_write_tokens >= 0);
	FUZZ_CHECK(u->reasoning_tokens >= 0);
}

/* The input's next line, NUL-terminated in a copy (cut at cap - 1). */
static void take_line(struct fuzz_in *in, char *out, size_t cap)
{
	const uint8_t *nl = memchr(in->p, '\n', in->n);
	size_t n = nl != NULL ? (size_t)(nl - in->p) : in->n;
	size_t keep = n < cap - 1 ? n : cap - 1;

	memcpy(out, in->p, keep);
	out[keep] = '\0';
	in->p += n + (nl != NULL);
	in->n -= n + (nl != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	char name[64], line[1024];
	struct provider_request req;
	struct http_parser p;
	struct run r;
	const char *path;
	static char body[BODY_MAX];

	memset(&r, 0, sizeof r);
	usage_init(&r.u);
	take_line(&in, name, sizeof name);
	r.family = family_named(name, strlen(name));
	take_line(&in, line, sizeof line);
	r.kind = line[0];
	path = line[0] != '\0' && line[1] == ' ' ? line + 2 : "/";
	r.u.api = r.family->api_of(path);
	if (r.kind == 'R') {
		memset(&req, 0, sizeof req);
		req.method = "POST";
		req.host = "fuzz.example";
		req.path = path;
		req.body = (const char *)in.p;
		req.body_len = in.n;
		req.body_truncated = in.n > 0 && in.p[in.n - 1] == '~';
		r.family->request(&r.u, &req);
		usage_finish(&r.u, 200, 1);
		goto check;
	}
	r.body = body;
	http_parser_init(&p, HTTP_DIR_RESPONSE, &callbacks, &r);
	http_parser_feed(&p, (const char *)in.p, in.n);
	http_parser_eof(&p);
	http_parser_release(&p);
	if (r.kind == 'B') {
		r.family->body(&r.u, r.status, r.body, r.body_len);
	} else {
		r.u.stream = 1;
		frame_events(&r);
	}
	usage_finish(&r.u, r.status, r.complete);
check:
	check_usage(&r.u);
	return 0;
}
