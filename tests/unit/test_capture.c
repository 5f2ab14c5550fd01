/*
 * test_capture.c - whole exchanges through a capture_conn, as the shim would feed them: the
 * recorded provider bodies inside real HTTP/1.1 framing (Content-Length, chunked, gzip,
 * keep-alive, 100 Continue, HEAD, errors, cut-short responses). Every case is fed whole and
 * byte by byte, and both must give the same records.
 */
#include "capture/capture.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "capture_sink.h"
#include "check.h"

static struct capture_config config = {
	.process = "test", .agent = "agent-a", .agent_type = "", .tenant = "t1",
	.session = "s1", .local_hosts = NULL, .mode = CAPTURE_FULL, .body_cap = 1 << 20,
	.pid = 42,
};

/* A growable string for building exchanges. */
struct buf {
	char *p;
	size_t n;
};

static void put(struct buf *b, const void *data, size_t n)
{
	b->p = realloc(b->p, b->n + n + 1);
	memcpy(b->p + b->n, data, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static char *fixture(const char *name, size_t *len)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", check_fixtures_dir(), name);
	return check_read_file(path, len);
}

static void request(struct buf *b, const char *host, const char *path, const char *body,
		    size_t n, const char *extra)
{
	char head[1024];

	snprintf(head, sizeof(head),
		 "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer sk-secret-123\r\n"
		 "Content-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
		 path, host, extra ? extra : "", n);
	puts_(b, head);
	put(b, body, n);
}

static void response_length(struct buf *b, int status, const char *ctype, const char *body,
			    size_t n, const char *extra)
{
	char head[512];

	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d X\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n\r\n", status,
		 ctype, extra ? extra : "", n);
	puts_(b, head);
	put(b, body, n);
}

/* Chunked, in pieces of step bytes, as servers flush. */
static void response_chunked(struct buf *b, const char *ctype, const char *extra,
			     const char *body, size_t n, size_t step)
{
	char line[256];
	size_t i;

	snprintf(line, sizeof(line), "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n", ctype);
	puts_(b, line);
	if (extra)
		puts_(b, extra);
	puts_(b, "Transfer-Encoding: chunked\r\n\r\n");
	for (i = 0; i < n; i += step) {
		size_t k = n - i < step ? n - i : step;

		snprintf(line, sizeof(line), "%zx\r\n", k);
		puts_(b, line);
		put(b, body + i, k);
		puts_(b, "\r\n");
	}
	puts_(b, "0\r\n\r\n");
}

static char *gzip_of(const char *data, size_t n, size_t *out_len)
{
	z_stream z;
	size_t cap = compressBound(n) + 64;
	char *out = malloc(cap);

	memset(&z, 0, sizeof(z));
	deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	deflate(&z, Z_FINISH);
	*out_len = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

/* Feeds the two directions in order (all request bytes, then all response bytes), either
 * whole or one byte at a time, then ends the connection if eof. */
static void run(struct sink *s, const struct buf *req, const struct buf *resp, int bytewise,
		int eof, int tls)
{
	struct capture_conn *c = capture_conn_new(&config, NULL, 0, tls, on_emit, s);
	size_t i;

	memset(s, 0, sizeof(*s));
	if (!bytewise) {
		capture_conn_feed(c, CAPTURE_OUT, req->p, req->n);
		capture_conn_feed(c, CAPTURE_IN, resp->p, resp->n);
	} else {
		for (i = 0; i < req->n; i++)
			capture_conn_feed(c, CAPTURE_OUT, req->p + i, 1);
		for (i = 0; i < resp->n; i++)
			capture_conn_feed(c, CAPTURE_IN, resp->p + i, 1);
	}
	if (eof)
		capture_conn_eof(c);
	capture_conn_free(c);
}

#define CHECK_TOKENS(g, i, o, cr, cw, r)          \
	do {                                      \
		CHECK_INT((g)->in, i);            \
		CHECK_INT((g)->out, o);           \
		CHECK_INT((g)->cache_read, cr);   \
		CHECK_INT((g)->cache_write, cw);  \
		CHECK_INT((g)->reasoning, r);     \
	} while (0)

/* OpenAI: a cached non-stream call then a streamed one, on one keep-alive connection, with a
 * request that is not an LLM call between them. */
static void test_openai_keepalive(void)
{
	size_t n1, n2, r1, r2;
	char *b1 = fixture("openai_chat_nonstream_cached.body", &n1);
	char *b2 = fixture("openai_chat_stream_include_usage_toolcall.body", &n2);
	char *q1 = fixture("openai_chat_nonstream_cached.req.json", &r1);
	char *q2 = fixture("openai_chat_stream_include_usage_toolcall.req.json", &r2);
	struct buf req = { 0 }, resp = { 0 };
	struct sink s;
	int bytewise;

	CHECK(b1 && b2 && q1 && q2);
	if (!(b1 && b2 && q1 && q2))
		return;
	request(&req, "api.openai.com", "/v1/chat/completions", q1, r1, NULL);
	puts_(&req, "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n");
	request(&req, "api.openai.com", "/v1/chat/completions", q2, r2, NULL);
	response_length(&resp, 200, "application/json", b1, n1, NULL);
	response_length(&resp, 200, "application/json", "{\"data\":[]}", 11, NULL);
	response_chunked(&resp, "text/event-stream; charset=utf-8", NULL, b2, n2, 300);
	for (bytewise = 0; bytewise < 2; bytewise++) {
		run(&s, &req, &resp, bytewise, 0, 1);
		CHECK_INT(s.n, 2);
		CHECK_STR(s.rec[0].provider, "openai");
		CHECK_STR(s.rec[0].api, "chat.completions");
		CHECK_STR(s.rec[0].host, "api.openai.com");
		CHECK_STR(s.rec[0].model_requested, "gpt-4.1");
		CHECK_STR(s.rec[0].model, "gpt-4.1-2025-04-14");
		CHECK_TOKENS(&s.rec[0], 1144, 2, 1024, 0, 0);
		CHECK_INT(s.rec[0].status, 200);
		CHECK_INT(s.rec[0].flags & (RECORD_STREAM | RECORD_ESTIMATED | RECORD_TRUNCATED |
					    RECORD_LOCAL),
			  0);
		CHECK(strstr(s.rec[0].req_head, "sk-secret-123") == NULL);
		CHECK(strstr(s.rec[0].req_head, "Authorization: [REDACTED]") != NULL);
		CHECK_INT(s.rec[0].resp_body_len, n1);
		CHECK_STR(s.rec[1].model_requested, "gpt-4o-mini");
		CHECK_STR(s.rec[1].model, "gpt-4o-mini-2024-07-18");
		CHECK_TOKENS(&s.rec[1], 53, 15, 0, 0, 0);
		CHECK_INT(s.rec[1].flags & (RECORD_STREAM | RECORD_ESTIMATED), RECORD_STREAM);
		CHECK_INT(s.rec[1].resp_body_size, n2);
	}
	free(req.p);
	free(resp.p);
	free(b1);
	free(b2);
	free(q1);
	free(q2);
}

/* Anthropic with cache writes and reads, gzip over chunked, after a 100 Continue. */
static void test_anthropic_gzip_continue(void)
{
	size_t n, zn;
	char *b = fixture("anthropic_messages_nonstream_cache_write_and_read.body", &n);
	char *z;
	const char *q = "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,"
			"\"messages\":[{\"role\":\"user\",\"content\":\"What is Python?\"}]}";
	struct buf req = { 0 }, resp = { 0 };
	struct sink s;
	int bytewise;

	CHECK(b != NULL);
	if (b == NULL)
		return;
	z = gzip_of(b, n, &zn);
	request(&req, "api.anthropic.com:443", "/v1/messages?beta=true", q, strlen(q),
		"Expect: 100-continue\r\nx-api-key: sk-ant-secret\r\n");
	puts_(&resp, "HTTP/1.1 100 Continue\r\n\r\n");
	response_chunked(&resp, "application/json", "Content-Encoding: gzip\r\n", z, zn, 100);
	for (bytewise = 0; bytewise < 2; bytewise++) {
		run(&s, &req, &resp, bytewise, 0, 1);
		CHECK_INT(s.n, 1);
		CHECK_STR(s.rec[0].provider, "anthropic");
		CHECK_STR(s.rec[0].api, "messages");
		CHECK_STR(s.rec[0].path, "/v1/messages?beta=true");
		CHECK_STR(s.rec[0].model_requested, "claude-sonnet-4-5");
		CHECK_STR(s.rec[0].model, "claude-sonnet-4-5-20250929");
		CHECK_TOKENS(&s.rec[0], 1517, 33, 1111, 403, 0);
		CHECK_INT(s.rec[0].status, 200);
		CHECK(strstr(s.rec[0].req_head, "sk-ant-secret") == NULL);
		CHECK_INT(s.rec[0].resp_body_len, n); /* stored decoded */
	}
	free(req.p);
	free(resp.p);
	free(b);
	free(z);
}

/* Ollama over plain HTTP on loopback: an NDJSON stream of /api/generate, close-delimited. */
static void test_ollama_ndjson_close_delimited(void)
{
	const char *q = "{\"model\":\"llama3.2\",\"prompt\":\"Why is the sky blue?\"}";
	const char *body =
		"{\"model\":\"llama3.2\",\"created_at\":\"2025-01-01T00:00:00Z\",\"response\":\"The\",\"done\":false}\n"
		"{\"model\":\"llama3.2\",\"created_at\":\"2025-01-01T00:00:00Z\",\"response\":\" sky\",\"done\":false}\n"
		"{\"model\":\"llama3.2\",\"created_at\":\"2025-01-01T00:00:01Z\",\"response\":\"\",\"done\":true,"
		"\"done_reason\":\"stop\",\"prompt_eval_count\":31,\"eval_count\":2}\n";
	struct buf req = { 0 }, resp = { 0 };
	struct sink s;
	struct sockaddr_in peer;
	struct capture_conn *c;

	request(&req, "127.0.0.1:11434", "/api/generate", q, strlen(q), NULL);
	puts_(&resp, "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\r\n");
	puts_(&resp, body);
	/* Without the end of the connection the body has no end: no record yet. */
	run(&s, &req, &resp, 0, 0, 0);
	CHECK_INT(s.n, 0);
	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	peer.sin_addr.s_addr = htonl(0x7f000001);
	memset(&s, 0, sizeof(s));
	c = capture_conn_new(&config, (struct sockaddr *)&peer, sizeof(peer), 0, on_emit, &s);
	capture_conn_feed(c, CAPTURE_OUT, req.p, req.n);
	capture_conn_feed(c, CAPTURE_IN, resp.p, resp.n);
	capture_conn_eof(c);
	capture_conn_free(c);
	CHECK_INT(s.n, 1);
	CHECK_STR(s.rec[0].provider, "ollama");
	CHECK_STR(s.rec[0].api, "generate");
	CHECK_STR(s.rec[0].model, "llama3.2");
	CHECK_TOKENS(&s.rec[0], 31, 2, 0, 0, 0);
	CHECK_INT(s.rec[0].flags & (RECORD_STREAM | RECORD_LOCAL | RECORD_TRUNCATED),
		  RECORD_STREAM | RECORD_LOCAL);
	free(req.p);
	free(resp.p);
}

/* A 429 with Retry-After; then a response cut off by the connection's end. */
static void test_errors(void)
{
	const char *q = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
	const char *e = "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\","
			"\"param\":null,\"code\":\"rate_limit_exceeded\"}}";
	struct buf req = { 0 }, resp = { 0 };
	struct sink s;
	int bytewise;

	request(&req, "api.openai.com", "/v1/chat/completions", q, strlen(q), NULL);
	request(&req, "api.openai.com", "/v1/chat/completions", q, strlen(q), NULL);
	response_length(&resp, 429, "application/json", e, strlen(e), "Retry-After: 20\r\n");
	puts_(&resp, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id\":");
	for (bytewise = 0; bytewise < 2; bytewise++) {
		run(&s, &req, &resp, bytewise, 1, 1);
		CHECK_INT(s.n, 2);
		CHECK_INT(s.rec[0].status, 429);
		CHECK_STR(s.rec[0].error, "rate_limit");
		CHECK_INT(s.rec[0].retry_after, 20);
		CHECK_TOKENS(&s.rec[0], 0, 0, 0, 0, 0);
		CHECK_STR(s.rec[0].model_requested, "gpt-4o");
		CHECK_INT(s.rec[1].status, 200);
		CHECK_STR(s.rec[1].error, "network");
		CHECK_INT(s.rec[1].flags & RECORD_TRUNCATED, RECORD_TRUNCATED);
	}
	free(req.p);
	free(resp.p);
}

/* Traffic that is not an LLM call gives nothing; a connection that is not HTTP is dropped. */
static void test_not_llm(void)
{
	struct buf req = { 0 }, resp = { 0 };
	struct sink s;
	struct capture_conn *c;

	puts_(&req, "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"
		    "HEAD /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n\r\n");
	puts_(&resp, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
		     "HTTP/1.1 200 OK\r\nContent-Length: 900\r\n\r\n");
	run(&s, &req, &resp, 1, 1, 0);
	CHECK_INT(s.n, 0);

	c = capture_conn_new(&config, NULL, 0, 0, on_emit, &s);
	CHECK_INT(capture_conn_feed(c, CAPTURE_OUT, "\x16\x03\x01\x02\x00", 5), -1);
	CHECK_INT(capture_conn_dead(c), 1);
	capture_conn_free(c);
	free(req.p);
	free(resp.p);
}

static void test_capture_modes(void)
{
	size_t n;
	char *b = fixture("ollama_chat_nonstream.body", &n);
	const char *q = "{\"model\":\"mistral:7b-instruct\",\"stream\":false,\"messages\":[]}";
	struct buf req = { 0 }, resp = { 0 };
	struct sink s;

	CHECK(b != NULL);
	if (b == NULL)
		return;
	request(&req, "localhost:11434", "/api/chat", q, strlen(q), NULL);
	response_length(&resp, 200, "application/json; charset=utf-8", b, n, NULL);
	config.mode = CAPTURE_OFF;
	run(&s, &req, &resp, 0, 0, 0);
	CHECK_INT(s.n, 1);
	CHECK_INT(s.rec[0].has_payload, 0);
	CHECK_TOKENS(&s.rec[0], 37, 24, 0, 0, 0);
	CHECK_INT(s.rec[0].flags & RECORD_LOCAL, RECORD_LOCAL);
	config.mode = CAPTURE_META;
	run(&s, &req, &resp, 0, 0, 0);
	CHECK_INT(s.rec[0].has_payload, 1);
	CHECK_INT(s.rec[0].resp_body_len, 0);
	CHECK_INT(s.rec[0].resp_body_size, n);
	config.mode = CAPTURE_FULL;
	free(req.p);
	free(resp.p);
	free(b);
}

static void test_locality(void)
{
	struct sockaddr_in a;
	struct sockaddr_in6 a6;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(0xc0a80105); /* 192.168.1.5 */
	CHECK_INT(capture_is_local("gpu-box", (struct sockaddr *)&a, NULL, 0), 1);
	CHECK_INT(capture_is_local("api.openai.com", (struct sockaddr *)&a, NULL, 1), 0);
	a.sin_addr.s_addr = htonl(0x08080808);
	CHECK_INT(capture_is_local("gpu-box", (struct sockaddr *)&a, NULL, 0), 0);
	CHECK_INT(capture_is_local("gpu-box", (struct sockaddr *)&a, "other, GPU-box", 0), 1);
	CHECK_INT(capture_is_local("localhost", NULL, NULL, 0), 1);
	CHECK_INT(capture_is_local("10.1.2.3", NULL, NULL, 0), 1);
	CHECK_INT(capture_is_local("172.32.0.1", NULL, NULL, 0), 0);
	CHECK_INT(capture_is_local("172.31.0.1", NULL, NULL, 0), 1);
	CHECK_INT(capture_is_local("example.com", NULL, NULL, 0), 0);
	memset(&a6, 0, sizeof(a6));
	a6.sin6_family = AF_INET6;
	a6.sin6_addr = in6addr_loopback;
	CHECK_INT(capture_is_local("x", (struct sockaddr *)&a6, NULL, 0), 1);
}

int main(void)
{
	RUN(test_openai_keepalive);
	RUN(test_anthropic_gzip_continue);
	RUN(test_ollama_ndjson_close_delimited);
	RUN(test_errors);
	RUN(test_not_llm);
	RUN(test_capture_modes);
	RUN(test_locality);
	CHECK_DONE();
}
