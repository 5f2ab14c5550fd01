/*
 * exchange.c - one LLM exchange from its request head to its record; see exchange.h.
 *
 * Per exchange the work is: request body gathered (the model and stream flag are in it),
 * response body decoded (gzip, br …) as it arrives, then either framed into events that the
 * provider reads one by one (SSE, NDJSON: memory stays at one event), or gathered whole for
 * the provider to read at the end.
 */
#include "capture/exchange.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "capture/dbuf.h"
#include "http/decode.h"
#include "http/eventstream.h"
#include "http/stream.h"
#include "providers/pjson.h"
#include "providers/provider.h"

#define HOST_MAX 256
#define TARGET_MATCH_MAX 4096
/* Redaction may lengthen a head (a short secret becomes "[REDACTED]"): room for that. */
#define REDACT_SLACK 1024

enum body_kind { BODY_WHOLE, BODY_SSE, BODY_NDJSON, BODY_JSON_ARRAY, BODY_EVENTSTREAM };

struct exchange {
	struct provider_match match;
	struct usage usage;
	char host[HOST_MAX];
	char method[16];
	struct dbuf path;      /* request-target, key= redacted */
	struct dbuf req_head;  /* redacted */
	struct dbuf req_body;
	struct dbuf resp_head; /* redacted */
	struct dbuf resp_body; /* decoded: whole for BODY_WHOLE, the payload part for streams */
	int64_t start_real_ns;
	int64_t start_mono_ns;
	int64_t first_resp_mono_ns;
	int status;
	int32_t retry_after;
	int request_read;      /* the provider has read the request */
	int local;
	int decode_failed;
	int read_nomem;        /* the provider's JSON reader ran out of memory on this exchange */
	enum body_kind kind;
	int decoding;
	struct body_decoder dec;
	struct sse_parser sse;
	struct ndjson_parser ndjson;
	struct jsonarray_parser jsonarray;
	struct eventstream_parser eventstream;
};

int64_t exchange_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the request ------------------------------------------------------------------------ */

void exchange_free(struct exchange *x)
{
	if (x == NULL)
		return;
	dbuf_release(&x->path);
	dbuf_release(&x->req_head);
	dbuf_release(&x->req_body);
	dbuf_release(&x->resp_head);
	dbuf_release(&x->resp_body);
	if (x->decoding)
		body_decoder_release(&x->dec);
	if (x->kind == BODY_SSE)
		sse_parser_release(&x->sse);
	else if (x->kind == BODY_NDJSON)
		ndjson_parser_release(&x->ndjson);
	else if (x->kind == BODY_JSON_ARRAY)
		jsonarray_parser_release(&x->jsonarray);
	else if (x->kind == BODY_EVENTSTREAM)
		eventstream_parser_release(&x->eventstream);
	free(x);
}

static void copy_redacted_head(struct dbuf *dst, const struct http_head *h)
{
	size_t cap = h->raw_len + REDACT_SLACK;
	char *tmp = malloc(cap);
	size_t n;

	if (tmp == NULL) {
		dst->cut = 1;
		dst->nomem = 1;
		return;
	}
	n = http_redact_head(h->raw, h->raw_len, tmp, cap);
	dbuf_append(dst, tmp, n);
	free(tmp);
}

/* Lets the provider read the request. head is the request's head while the request parser still
 * holds it, NULL once it has moved on (a response that ended before its request). */
void exchange_read_request(struct exchange *x, const struct http_head *head)
{
	struct provider_request pr;

	if (x->request_read)
		return;
	x->request_read = 1;
	pr.method = x->method;
	pr.host = x->host;
	pr.path = x->path.p ? x->path.p : "";
	pr.head = head;
	pr.body = x->req_body.p ? x->req_body.p : "";
	pr.body_len = x->req_body.len;
	pr.body_truncated = x->req_body.cut;
	pjson_nomem_take();
	x->match.family->request(&x->usage, &pr);
	x->read_nomem |= pjson_nomem_take();
}

/* Host (lowercase, port and IPv6 brackets removed) and port of a request. */
static void request_host(const struct exchange_env *c, const struct http_head *h, char *host,
			 unsigned *port, const char **target, size_t *target_len)
{
	const struct http_header *hh = http_head_get(h, "host");
	const char *v = NULL, *t = h->target;
	size_t vn = 0, tn = h->target_len, i, n = 0;
	const char *colon = NULL;

	*port = c->tls ? 443 : 80;
	/* absolute-form (a request to a proxy): the authority is in the target */
	if (tn > 8 && (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0)) {
		size_t skip = t[4] == ':' ? 7 : 8;
		const char *slash = memchr(t + skip, '/', tn - skip);

		v = t + skip;
		vn = slash ? (size_t)(slash - v) : tn - skip;
		*target = slash ? slash : "/";
		*target_len = slash ? tn - (size_t)(slash - t) : 1;
	} else {
		*target = t;
		*target_len = tn;
		if (hh != NULL) {
			v = hh->value;
			vn = hh->value_len;
		}
	}
	if (v != NULL && vn > 0 && v[0] == '[') {
		const char *rb = memchr(v, ']', vn);

		if (rb != NULL) {
			colon = (size_t)(rb - v) + 1 < vn && rb[1] == ':' ? rb + 1 : NULL;
			v++;
			vn = (size_t)(rb - v);
		}
	} else if (v != NULL) {
		colon = memchr(v, ':', vn);
		if (colon != NULL)
			vn = (size_t)(colon - v);
	}
	if (colon != NULL)
		*port = (unsigned)strtoul(colon + 1, NULL, 10);
	for (i = 0; v != NULL && i < vn && n < HOST_MAX - 1; i++)
		host[n++] = (char)tolower((unsigned char)v[i]);
	host[n] = '\0';
	if (n == 0 && c->peer_len > 0) {
		const struct sockaddr *sa = (const struct sockaddr *)&c->peer;

		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, HOST_MAX);
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host,
				  HOST_MAX);
	}
}

void exchange_drop(const struct exchange_env *env, enum capture_drop reason)
{
	if (env->cfg->drop != NULL)
		env->cfg->drop(reason);
}

static struct exchange *exchange_new(const struct exchange_env *c, const struct http_head *h,
				     const char *host, const char *target, size_t target_len,
				     const struct provider_match *m, int64_t start_real_ns,
				     int64_t start_mono_ns)
{
	struct exchange *x = calloc(1, sizeof(*x));
	char *redacted;
	size_t n;

	if (x == NULL)
		return NULL;
	x->match = *m;
	memcpy(x->host, host, strlen(host) + 1);
	n = h->method_len < sizeof(x->method) - 1 ? h->method_len : sizeof(x->method) - 1;
	memcpy(x->method, h->method, n);
	x->method[n] = '\0';
	dbuf_init(&x->path, RECORD_STR_MAX);
	dbuf_init(&x->req_head, HTTP_HEAD_MAX + REDACT_SLACK);
	dbuf_init(&x->req_body, CAPTURE_PARSE_MAX);
	dbuf_init(&x->resp_head, HTTP_HEAD_MAX + REDACT_SLACK);
	dbuf_init(&x->resp_body, 0);
	redacted = malloc(target_len + REDACT_SLACK);
	if (redacted != NULL) {
		n = http_redact_target(target, target_len, redacted, target_len + REDACT_SLACK);
		dbuf_append(&x->path, redacted, n);
		free(redacted);
	} else {
		x->path.cut = 1;
		x->path.nomem = 1;
	}
	if (c->cfg->mode != CAPTURE_OFF)
		copy_redacted_head(&x->req_head, h);
	usage_init(&x->usage);
	x->usage.api = m->api;
	x->start_real_ns = start_real_ns;
	x->start_mono_ns = start_mono_ns;
	x->retry_after = -1;
	exchange_relocate(c, x);
	return x;
}

void exchange_relocate(const struct exchange_env *env, struct exchange *x)
{
	x->local = capture_is_local(x->host,
				    env->peer_len ? (const struct sockaddr *)&env->peer : NULL,
				    env->cfg->local_hosts, x->match.name != NULL && !x->match.local);
}

struct exchange *exchange_for_request(const struct exchange_env *env, const struct http_head *h,
				      int64_t start_real_ns, int64_t start_mono_ns)
{
	char host[HOST_MAX], path[TARGET_MATCH_MAX];
	const char *target;
	size_t target_len, pn;
	unsigned port;
	struct provider_match m;
	const struct http_header *ct;

	if (h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0)
		return NULL;
	request_host(env, h, host, &port, &target, &target_len);
	pn = target_len < sizeof(path) - 1 ? target_len : sizeof(path) - 1;
	memcpy(path, target, pn);
	path[pn] = '\0';
	ct = http_head_get(h, "content-type");
	if (!provider_match(host, port, path, &m) &&
	    !provider_match_candidate(host, h->method, h->method_len, ct ? ct->value : NULL,
				      ct ? ct->value_len : 0, &m))
		return NULL;
	return exchange_new(env, h, host, target, target_len, &m, start_real_ns, start_mono_ns);
}

void exchange_request_head(const struct exchange_env *env, struct exchange *x,
			   const struct http_head *h)
{
	if (env->cfg->mode == CAPTURE_OFF)
		return;
	dbuf_release(&x->req_head);
	copy_redacted_head(&x->req_head, h);
}

void exchange_request_body(struct exchange *x, const char *data, size_t len)
{
	dbuf_append(&x->req_body, data, len);
}

/* ---- the response ----------------------------------------------------------------------- */

static void on_stream_event(void *ctx, const char *name, size_t name_len, const char *data,
			    size_t len)
{
	struct exchange *x = ctx;

	pjson_nomem_take();
	x->match.family->event(&x->usage, name, name_len, data, len);
	x->read_nomem |= pjson_nomem_take();
}

/* Decoded response bytes. */
static void resp_sink(void *ctx, const char *data, size_t len)
{
	struct exchange *x = ctx;

	dbuf_append(&x->resp_body, data, len);
	if (x->kind == BODY_SSE)
		sse_parser_feed(&x->sse, data, len);
	else if (x->kind == BODY_NDJSON)
		ndjson_parser_feed(&x->ndjson, data, len);
	else if (x->kind == BODY_JSON_ARRAY)
		jsonarray_parser_feed(&x->jsonarray, data, len);
	else if (x->kind == BODY_EVENTSTREAM)
		eventstream_parser_feed(&x->eventstream, data, len);
}

static int header_is(const struct http_header *hdr, const char *value)
{
	size_t n = strlen(value);

	return hdr != NULL && hdr->value_len >= n && strncasecmp(hdr->value, value, n) == 0;
}

static int32_t parse_retry_after(const struct http_header *hdr)
{
	char buf[64];
	size_t n;
	struct tm tm;
	char *end;
	long v;

	if (hdr == NULL || hdr->value_len == 0 || hdr->value_len >= sizeof(buf))
		return -1;
	n = hdr->value_len;
	memcpy(buf, hdr->value, n);
	buf[n] = '\0';
	v = strtol(buf, &end, 10);
	if (end != buf && *end == '\0')
		return v < 0 ? -1 : (int32_t)(v > INT32_MAX ? INT32_MAX : v);
	/* An HTTP-date: the wait from now. */
	memset(&tm, 0, sizeof(tm));
	end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end != NULL) {
		int64_t d = (int64_t)timegm(&tm) - exchange_clock_ns(CLOCK_REALTIME) / 1000000000;

		return d < 0 ? 0 : (int32_t)(d > INT32_MAX ? INT32_MAX : d);
	}
	return -1;
}

/* Sets up decoding and framing of an LLM response body from its head. */
static void exchange_setup_response(const struct exchange_env *c, struct exchange *x,
				    const struct http_head *h, int decoded)
{
	const struct http_header *ct = http_head_get(h, "content-type");
	const struct http_header *ce = http_head_get(h, "content-encoding");
	size_t keep = c->cfg->mode == CAPTURE_FULL ? c->cfg->body_cap : 0;
	enum provider_framing framing = PROVIDER_FRAMING_AUTO;

	x->status = h->status;
	x->retry_after = parse_retry_after(http_head_get(h, "retry-after"));
	if (c->cfg->mode != CAPTURE_OFF)
		copy_redacted_head(&x->resp_head, h);
	if (x->match.family->response != NULL)
		framing = x->match.family->response(&x->usage, h);
	if (header_is(ct, "text/event-stream")) {
		x->kind = BODY_SSE;
		sse_parser_init(&x->sse, STREAM_EVENT_MAX_DEFAULT, on_stream_event, x);
	} else if (header_is(ct, "application/x-ndjson") ||
		   header_is(ct, "application/jsonl") ||
		   header_is(ct, "application/stream+json")) { /* Cohere v1 */
		x->kind = BODY_NDJSON;
		ndjson_parser_init(&x->ndjson, STREAM_EVENT_MAX_DEFAULT, on_stream_event, x);
	} else if (header_is(ct, "application/vnd.amazon.eventstream")) {
		x->kind = BODY_EVENTSTREAM;
		eventstream_parser_init(&x->eventstream, STREAM_EVENT_MAX_DEFAULT, on_stream_event, x);
	} else if (framing == PROVIDER_FRAMING_JSON_ARRAY) {
		x->kind = BODY_JSON_ARRAY;
		jsonarray_parser_init(&x->jsonarray, STREAM_EVENT_MAX_DEFAULT, on_stream_event, x);
	}
	if (x->kind != BODY_WHOLE) {
		x->usage.stream = 1;
		x->resp_body.max = keep;
	} else {
		x->resp_body.max = CAPTURE_PARSE_MAX;
	}
	if (ce != NULL && !decoded) {
		enum http_coding coding = http_coding_parse(ce->value, ce->value_len);

		if (coding != HTTP_CODING_IDENTITY) {
			if (body_decoder_init(&x->dec, coding, CAPTURE_PARSE_MAX * 8ull) == 0)
				x->decoding = 1;
			else
				x->decode_failed = 1;
		}
	}
}

void exchange_response_started(struct exchange *x)
{
	if (x->first_resp_mono_ns == 0)
		x->first_resp_mono_ns = exchange_clock_ns(CLOCK_MONOTONIC);
}

int exchange_begin_response(const struct exchange_env *env, struct exchange *x,
			    const struct http_head *h, int decoded)
{
	const struct http_header *ct = http_head_get(h, "content-type");

	/* A body no usage object can be in: the candidate is let go unbuffered. */
	if (x->match.candidate &&
	    (ct == NULL || !provider_candidate_response(ct->value, ct->value_len)))
		return -1;
	exchange_setup_response(env, x, h, decoded);
	return 0;
}

void exchange_response_body(struct exchange *x, const char *data, size_t len)
{
	if (x == NULL || x->decode_failed)
		return;
	if (!x->decoding) {
		resp_sink(x, data, len);
		return;
	}
	if (body_decoder_feed(&x->dec, data, len, resp_sink, x) != 0)
		x->decode_failed = 1;
}

/* Counts each way this exchange was not read whole; before usage_finish, which estimates. */
static void exchange_count_drops(const struct exchange_env *c, const struct exchange *x,
				 int complete, int dead_reason)
{
	uint64_t oversize = x->kind == BODY_SSE ? x->sse.dropped
			  : x->kind == BODY_NDJSON ? x->ndjson.dropped : 0;

	if (dead_reason >= 0)
		exchange_drop(c, (enum capture_drop)dead_reason);
	if (x->decode_failed)
		exchange_drop(c, CAPTURE_DROP_DECODE);
	/* A part that could not be kept for want of memory is counted as that, once, not as a
	 * part over its cap. */
	if (x->path.nomem || x->req_head.nomem || x->req_body.nomem || x->resp_head.nomem ||
	    x->resp_body.nomem)
		exchange_drop(c, CAPTURE_DROP_NOMEM);
	if (x->kind == BODY_WHOLE && x->resp_body.cut && !x->resp_body.nomem)
		exchange_drop(c, CAPTURE_DROP_BODY_CAP);
	if (x->req_body.cut && !x->req_body.nomem)
		exchange_drop(c, CAPTURE_DROP_REQUEST_CAP);
	if (oversize > 0)
		exchange_drop(c, CAPTURE_DROP_EVENT_CAP);
	if (complete && x->kind == BODY_WHOLE && x->status >= 200 && x->status < 300 &&
	    !x->usage.have_usage && !x->usage.not_billed)
		exchange_drop(c, CAPTURE_DROP_NO_USAGE);
}

void exchange_emit(const struct exchange_env *c, struct exchange *x, int complete,
		   int dead_reason)
{
	const struct capture_config *cfg = c->cfg;
	struct record rec;
	struct payload pl;
	struct usage *u = &x->usage;
	int64_t end = exchange_clock_ns(CLOCK_MONOTONIC);
	size_t cap = cfg->mode == CAPTURE_FULL ? cfg->body_cap : 0;

	exchange_read_request(x, NULL);
	if (x->kind == BODY_SSE)
		sse_parser_finish(&x->sse);
	else if (x->kind == BODY_NDJSON)
		ndjson_parser_finish(&x->ndjson);
	else if (x->kind == BODY_JSON_ARRAY)
		jsonarray_parser_finish(&x->jsonarray);
	else if (x->kind == BODY_WHOLE && x->status != 0 && !x->decode_failed) {
		pjson_nomem_take();
		x->match.family->body(u, x->status, x->resp_body.p ? x->resp_body.p : "",
				      x->resp_body.len);
		x->read_nomem |= pjson_nomem_take();
	}
	/* What the provider read is incomplete for want of the shim's own memory, not because of
	 * the body: the numbers would be guesses, so the exchange is dropped and counted as that
	 * (a candidate too: whether it was an LLM call is unknown). */
	if (x->read_nomem) {
		exchange_drop(c, CAPTURE_DROP_NOMEM);
		return;
	}
	/* A call to a host no row names is an LLM call only if its response carried usage. */
	if (x->match.candidate && !u->have_usage)
		return;
	/* A whole body cut at the parse cap could not be read: as good as cut short. For streams
	 * resp_body only holds the payload part, and being cut there is expected. */
	complete = complete && !x->decode_failed && !(x->kind == BODY_WHOLE && x->resp_body.cut);
	exchange_count_drops(c, x, complete, dead_reason);
	usage_finish(u, x->status, complete);

	memset(&rec, 0, sizeof(rec));
	rec.ts_ns = x->start_real_ns;
	rec.latency_us = (end - x->start_mono_ns) / 1000;
	rec.ttfb_us = x->first_resp_mono_ns ? (x->first_resp_mono_ns - x->start_mono_ns) / 1000 : -1;
	rec.pid = cfg->pid;
	rec.status = x->status;
	rec.retry_after_s = x->retry_after;
	rec.flags = (u->stream ? RECORD_STREAM : 0) | (u->estimated ? RECORD_ESTIMATED : 0) |
		    (x->local ? RECORD_LOCAL : 0) | (complete ? 0 : RECORD_TRUNCATED) |
		    (u->billed ? RECORD_BILLED : 0) | (u->not_billed ? RECORD_NOT_BILLED : 0) |
		    (u->have_billed_units ? RECORD_BILLED_UNITS : 0);
	rec.input_tokens = u->input_tokens;
	rec.output_tokens = u->output_tokens;
	rec.cache_read_tokens = u->cache_read_tokens;
	rec.cache_write_tokens = u->cache_write_tokens;
	rec.reasoning_tokens = u->reasoning_tokens;
	rec.billed_cost_pusd = u->billed ? u->billed_cost_pusd : 0;
	rec.request_hash = x->req_body.len ? record_hash(x->req_body.p, x->req_body.len) : 0;
	rec.process = record_str_of(cfg->process);
	rec.agent = record_str_of(cfg->agent);
	rec.agent_type = record_str_of(cfg->agent_type);
	rec.tenant = record_str_of(cfg->tenant);
	rec.session = record_str_of(cfg->session);
	rec.search_queries = u->search_queries;
	rec.search_context = u->search_context;
	rec.billed_input_tokens = u->billed_input_tokens;
	rec.billed_output_tokens = u->billed_output_tokens;
	rec.cache_write_1h_tokens = u->cache_write_1h_tokens;
	rec.service_tier = u->service_tier;
	rec.provider = record_str_of(u->provider ? u->provider
				    : x->match.name ? x->match.name : x->host);
	rec.api = record_str_of(u->api ? u->api : x->match.api);
	rec.host = record_str_of(x->host);
	rec.path = record_str_of(x->path.p);
	rec.model_requested = record_str_of(u->model_requested);
	rec.model = record_str_of(u->model);
	rec.error = record_str_of(u->error);
	rec.error_message = record_str_of(u->error_message);

	memset(&pl, 0, sizeof(pl));
	pl.req_head.p = x->req_head.p;
	pl.req_head.n = (uint32_t)x->req_head.len;
	pl.resp_head.p = x->resp_head.p;
	pl.resp_head.n = (uint32_t)x->resp_head.len;
	pl.req_body.p = x->req_body.p;
	pl.req_body.n = (uint32_t)(x->req_body.len < cap ? x->req_body.len : cap);
	pl.resp_body.p = x->resp_body.p;
	pl.resp_body.n = (uint32_t)(x->resp_body.len < cap ? x->resp_body.len : cap);
	pl.req_body_size = x->req_body.seen;
	pl.resp_body_size = x->resp_body.seen;
	c->emit(c->ctx, &rec, cfg->mode == CAPTURE_OFF ? NULL : &pl);
}


/* ---- heads built from fields ------------------------------------------------------------ */

static int head_put(char *buf, size_t *len, const char *p, size_t n)
{
	if (*len + n > HTTP_HEAD_MAX)
		return -1;
	memcpy(buf + *len, p, n);
	*len += n;
	return 0;
}

int exchange_head_build(struct exchange_head *eh, const char *version, const char *method,
			const char *target, size_t target_len, int status,
			const struct exchange_field *fields, size_t n)
{
	struct http_head *h = &eh->head;
	char line[64];
	size_t len = 0, i, at, need;
	int k;

	memset(h, 0, sizeof(*h));
	/* the text's size (every head, LLM call or not, is built: no more than it needs) */
	need = 64 + target_len;
	for (i = 0; i < n; i++)
		need += fields[i].name_len + fields[i].value_len + 4;
	eh->buf = malloc((need < HTTP_HEAD_MAX ? need : HTTP_HEAD_MAX) + 1);
	if (eh->buf == NULL)
		return -1;
	if (method != NULL) {
		h->dir = HTTP_DIR_REQUEST;
		head_put(eh->buf, &len, method, strnlen(method, 16));
		h->method_len = len;
		head_put(eh->buf, &len, " ", 1);
		at = len;
		if (head_put(eh->buf, &len, target, target_len) == 0) {
			h->target_len = target_len;
			h->target = eh->buf + at;
		} else {
			h->target = eh->buf + at;
		}
		head_put(eh->buf, &len, " ", 1);
		head_put(eh->buf, &len, version, strnlen(version, 16));
		head_put(eh->buf, &len, "\r\n", 2);
		h->method = eh->buf;
	} else {
		h->dir = HTTP_DIR_RESPONSE;
		h->status = status;
		k = snprintf(line, sizeof(line), "%.16s %d\r\n", version, status);
		head_put(eh->buf, &len, line, (size_t)k);
	}
	for (i = 0; i < n && h->nheaders < HTTP_MAX_HEADERS; i++) {
		const struct exchange_field *f = &fields[i];
		struct http_header *hh = &h->headers[h->nheaders];

		/* name ": " value CRLF, with room kept for the final CRLF */
		if (len + f->name_len + f->value_len + 6 > HTTP_HEAD_MAX)
			continue;
		hh->name = eh->buf + len;
		hh->name_len = f->name_len;
		head_put(eh->buf, &len, f->name, f->name_len);
		head_put(eh->buf, &len, ": ", 2);
		hh->value = eh->buf + len;
		hh->value_len = f->value_len;
		head_put(eh->buf, &len, f->value, f->value_len);
		head_put(eh->buf, &len, "\r\n", 2);
		h->nheaders++;
	}
	if (head_put(eh->buf, &len, "\r\n", 2) != 0)
		len = HTTP_HEAD_MAX;
	eh->buf[len] = '\0';
	h->raw = eh->buf;
	h->raw_len = len;
	h->minor_version = 1;
	return 0;
}

void exchange_head_release(struct exchange_head *eh)
{
	free(eh->buf);
	eh->buf = NULL;
}
