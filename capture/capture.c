/*
 * capture.c - one connection's two byte streams to finished records; see capture.h.
 *
 * Requests and responses are matched in order (HTTP/1.1 answers requests in the order they
 * were sent), through a small queue: every request, LLM call or not, takes a slot, because a
 * response can only be framed knowing its request (a HEAD response has no body). Only LLM calls
 * get an exchange (exchange.c: matching, bodies, decoding, extraction, the record); a slot
 * without one is framed and skipped.
 *
 * A connection whose first bytes out are the HTTP/2 client preface is handed whole to h2.c,
 * which makes each of its streams an exchange in the same way.
 */
#include "capture/capture.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture/exchange.h"
#include "capture/h2.h"
#include "http/http.h"

#define QUEUE_MAX 16

const char *const capture_drop_names[CAPTURE_DROP_N] = {
	"dropped.capture.http_error",   "dropped.capture.queue_full",
	"dropped.capture.body_cap",     "dropped.capture.request_cap",
	"dropped.capture.decode_error", "dropped.capture.event_cap",
	"dropped.capture.no_usage",     "dropped.capture.out_of_memory",
};

struct slot {
	struct exchange *x; /* NULL: not an LLM call */
	int head_request;
};

struct capture_conn {
	struct exchange_env env;
	struct h2_conn *h2;        /* the connection speaks HTTP/2 (its preface came first) */
	struct http_parser req;
	struct http_parser resp;
	struct slot queue[QUEUE_MAX];
	unsigned q_first;
	unsigned q_len;
	struct exchange *cur_req;  /* the LLM request being parsed */
	struct exchange *cur_resp; /* the LLM response being parsed */
	int resp_has_slot;         /* the response being parsed took a queue slot */
	int64_t req_start_real_ns; /* first byte of the request being parsed */
	int64_t req_start_mono_ns;
	int req_started;
	int proto_known;           /* the first bytes out said HTTP/1.x or HTTP/2 */
	char pre[H2_PREFACE_LEN];  /* until then: those bytes, all matching the HTTP/2 preface */
	size_t pre_len;
	int dead;
	enum capture_drop dead_reason; /* why the connection was given up, when dead */
	int eof;
};

static int queue_push(struct capture_conn *c, struct exchange *x, int head_request)
{
	struct slot *s;

	if (c->q_len == QUEUE_MAX)
		return -1;
	s = &c->queue[(c->q_first + c->q_len) % QUEUE_MAX];
	s->x = x;
	s->head_request = head_request;
	c->q_len++;
	return 0;
}

static enum http_body_mode req_on_head(void *ctx, const struct http_head *h)
{
	struct capture_conn *c = ctx;
	struct exchange *x;
	int head_request = h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0;

	x = exchange_for_request(&c->env, h, c->req_start_real_ns, c->req_start_mono_ns);
	if (queue_push(c, x, head_request) != 0) {
		if (x != NULL)
			exchange_drop(&c->env, CAPTURE_DROP_QUEUE);
		exchange_free(x);
		c->dead = 1;
		c->dead_reason = CAPTURE_DROP_QUEUE;
		return HTTP_BODY_UPGRADE;
	}
	c->cur_req = x;
	return x ? HTTP_BODY_DELIVER : HTTP_BODY_SKIP;
}

static void req_on_body(void *ctx, const char *data, size_t len)
{
	struct capture_conn *c = ctx;

	if (c->cur_req != NULL)
		exchange_request_body(c->cur_req, data, len);
}

static void req_on_end(void *ctx, int complete)
{
	struct capture_conn *c = ctx;

	(void)complete;
	if (c->cur_req != NULL)
		exchange_read_request(c->cur_req, &c->req.parsed);
	c->cur_req = NULL;
	c->req_started = 0;
}

static const struct http_parser_callbacks req_callbacks = {
	.on_head = req_on_head,
	.on_body = req_on_body,
	.on_end = req_on_end,
};

/* ---- response direction ----------------------------------------------------------------- */

static enum http_body_mode resp_on_head(void *ctx, const struct http_head *h)
{
	struct capture_conn *c = ctx;
	struct slot *s;

	if (h->status >= 100 && h->status < 200 && h->status != 101)
		return HTTP_BODY_SKIP; /* 100 Continue: the real response follows */
	if (c->q_len == 0) {
		c->resp_has_slot = 0;
		c->cur_resp = NULL;
		return h->status == 101 ? HTTP_BODY_UPGRADE : HTTP_BODY_SKIP;
	}
	s = &c->queue[c->q_first];
	c->resp_has_slot = 1;
	c->cur_resp = s->x;
	if (h->status == 101)
		return HTTP_BODY_UPGRADE;
	if (s->head_request)
		return HTTP_BODY_NONE;
	if (s->x != NULL && exchange_begin_response(&c->env, s->x, h, 0) != 0) {
		if (c->cur_req == s->x)
			c->cur_req = NULL;
		exchange_free(s->x);
		s->x = NULL;
		c->cur_resp = NULL;
	}
	return s->x == NULL ? HTTP_BODY_SKIP : HTTP_BODY_DELIVER;
}

static void resp_on_body(void *ctx, const char *data, size_t len)
{
	struct capture_conn *c = ctx;

	if (c->cur_resp != NULL)
		exchange_response_body(c->cur_resp, data, len);
}

/* The drop reason exchange_emit counts for this connection: why it was given up, or none. */
static int conn_dead_reason(const struct capture_conn *c)
{
	return c->dead ? (int)c->dead_reason : -1;
}

static void resp_on_end(void *ctx, int complete)
{
	struct capture_conn *c = ctx;
	struct exchange *x = c->cur_resp;

	if (c->resp_has_slot) {
		c->q_first = (c->q_first + 1) % QUEUE_MAX;
		c->q_len--;
	}
	c->resp_has_slot = 0;
	c->cur_resp = NULL;
	if (x == NULL)
		return;
	if (c->cur_req == x)
		c->cur_req = NULL; /* answered before the request ended (413, early 401) */
	exchange_emit(&c->env, x, complete, conn_dead_reason(c));
	exchange_free(x);
}

static const struct http_parser_callbacks resp_callbacks = {
	.on_head = resp_on_head,
	.on_body = resp_on_body,
	.on_end = resp_on_end,
};

/* ---- the connection --------------------------------------------------------------------- */

struct capture_conn *capture_conn_new(const struct capture_config *cfg,
				      const struct sockaddr *peer, socklen_t peer_len, int tls,
				      capture_emit_fn emit, void *ctx)
{
	struct capture_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->env.cfg = cfg;
	c->env.emit = emit;
	c->env.ctx = ctx;
	c->env.tls = tls;
	http_parser_init(&c->req, HTTP_DIR_REQUEST, &req_callbacks, c);
	http_parser_init(&c->resp, HTTP_DIR_RESPONSE, &resp_callbacks, c);
	capture_conn_set_peer(c, peer, peer_len);
	return c;
}

void capture_conn_set_peer(struct capture_conn *c, const struct sockaddr *peer, socklen_t len)
{
	if (peer == NULL || len == 0 || len > sizeof(c->env.peer))
		return;
	memcpy(&c->env.peer, peer, len);
	c->env.peer_len = len;
}

/* Frees every exchange still queued, each counted as dropped for out of memory when count. */
static void conn_free_queue(struct capture_conn *c, int count)
{
	while (c->q_len > 0) {
		struct exchange *x = c->queue[c->q_first].x;

		c->q_first = (c->q_first + 1) % QUEUE_MAX;
		c->q_len--;
		if (x != NULL && count)
			exchange_drop(&c->env, CAPTURE_DROP_NOMEM);
		exchange_free(x);
	}
	c->cur_req = NULL;
	c->cur_resp = NULL;
	c->resp_has_slot = 0;
}

static int conn_feed(struct capture_conn *c, enum capture_dir dir, const void *data, size_t len)
{
	int r = HTTP_OK;

	if (c->dead || c->eof)
		return -1;
	if (c->h2 != NULL) {
		if (h2_conn_feed(c->h2, dir, data, len) != 0)
			c->dead = 1;
	} else if (dir == CAPTURE_OUT) {
		if (!c->req_started) {
			c->req_started = 1;
			c->req_start_real_ns = exchange_clock_ns(CLOCK_REALTIME);
			c->req_start_mono_ns = exchange_clock_ns(CLOCK_MONOTONIC);
		}
		r = http_parser_feed(&c->req, data, len);
	} else {
		if (c->q_len > 0 && c->queue[c->q_first].x != NULL)
			exchange_response_started(c->queue[c->q_first].x);
		r = http_parser_feed(&c->resp, data, len);
	}
	if (r != HTTP_OK)
		c->dead = 1;
	if (r == HTTP_ENOMEM) {
		/* Out of memory, not the connection's fault: what was waiting is dropped and
		 * counted, never recorded as calls that got no answer. */
		c->dead_reason = CAPTURE_DROP_NOMEM;
		conn_free_queue(c, 1);
	}
	if (c->dead) {
		/* Not HTTP/1.x after all: what was waiting will never be answered readably. */
		capture_conn_eof(c);
		c->dead = 1;
	}
	return c->dead ? -1 : 0;
}

/* The protocol is known: HTTP/2 (h2) or HTTP/1.x. The first bytes out held until now go to its
 * reader. */
static void conn_decide(struct capture_conn *c, int h2)
{
	c->proto_known = 1;
	if (h2) {
		c->h2 = h2_conn_new(&c->env);
		if (c->h2 == NULL) {
			exchange_drop(&c->env, CAPTURE_DROP_NOMEM);
			c->dead = 1;
			return;
		}
	}
	if (c->pre_len > 0)
		conn_feed(c, CAPTURE_OUT, c->pre, c->pre_len);
}

int capture_conn_feed(struct capture_conn *c, enum capture_dir dir, const void *data, size_t len)
{
	size_t n;

	if (c->dead || c->eof)
		return -1;
	/* The HTTP/2 preface may come in pieces: its bytes wait here until it is whole, or until
	 * a byte differs (then it is HTTP/1.x, or nothing we read). */
	if (!c->proto_known && dir == CAPTURE_OUT) {
		n = len < H2_PREFACE_LEN - c->pre_len ? len : H2_PREFACE_LEN - c->pre_len;
		if (memcmp(data, h2_preface + c->pre_len, n) != 0) {
			conn_decide(c, 0);
		} else {
			memcpy(c->pre + c->pre_len, data, n);
			c->pre_len += n;
			if (c->pre_len < H2_PREFACE_LEN)
				return 0;
			conn_decide(c, 1);
			data = (const char *)data + n;
			len -= n;
			if (len == 0)
				return c->dead ? -1 : 0;
		}
	} else if (!c->proto_known && c->pre_len > 0) {
		conn_decide(c, 1); /* the server spoke before the preface was whole: not HTTP/1.x */
	}
	return conn_feed(c, dir, data, len);
}

void capture_conn_eof(struct capture_conn *c)
{
	if (c->eof)
		return;
	c->eof = 1;
	if (c->h2 != NULL)
		h2_conn_eof(c->h2);
	http_parser_eof(&c->resp);
	while (c->q_len > 0) {
		struct exchange *x = c->queue[c->q_first].x;

		c->q_first = (c->q_first + 1) % QUEUE_MAX;
		c->q_len--;
		if (x == NULL)
			continue;
		if (c->cur_req == x)
			c->cur_req = NULL;
		if (c->cur_resp == x)
			c->cur_resp = NULL;
		exchange_emit(&c->env, x, 0, conn_dead_reason(c));
		exchange_free(x);
	}
}

int capture_conn_dead(const struct capture_conn *c)
{
	return c->dead || c->eof;
}

void capture_conn_free(struct capture_conn *c)
{
	if (c == NULL)
		return;
	conn_free_queue(c, 0);
	h2_conn_free(c->h2);
	http_parser_release(&c->req);
	http_parser_release(&c->resp);
	free(c);
}
