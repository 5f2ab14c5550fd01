/*
 * test_h2.c - HTTP/2 connections through a capture_conn (capture/h2.c): frames built here with
 * nghttp2's HPACK deflater, as a client and a server would send them. Streams interleaved,
 * HEADERS split over CONTINUATION with padding and priority, padded DATA, a dynamic table
 * resized by SETTINGS, RST_STREAM, a stream that is not an LLM call, and a connection that stops
 * being HTTP/2. Every case is fed whole and byte by byte: both must give the same records.
 */
#include "capture/capture.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "capture_sink.h"
#include "check.h"

static struct capture_config config = {
	.process = "test", .agent = "a", .agent_type = "", .tenant = "", .session = "s",
	.mode = CAPTURE_FULL, .body_cap = 1 << 20, .pid = 1,
};

struct buf {
	unsigned char *p;
	size_t len;
};

static void put(struct buf *b, const void *data, size_t n)
{
	b->p = realloc(b->p, b->len + n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void frame(struct buf *b, int type, int flags, uint32_t stream, const void *payload,
		  size_t n)
{
	unsigned char h[9] = { (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n,
			       (unsigned char)type, (unsigned char)flags,
			       (unsigned char)(stream >> 24), (unsigned char)(stream >> 16),
			       (unsigned char)(stream >> 8), (unsigned char)stream };

	put(b, h, 9);
	put(b, payload, n);
}

/* A header block for nv[0..n) ("name", "value" pairs) from deflater d; returns its length. */
static size_t block(nghttp2_hd_deflater *d, const char *const *kv, size_t n, uint8_t *out,
		    size_t cap)
{
	nghttp2_nv nv[16];
	size_t i;
	ssize_t r;

	for (i = 0; i < n; i++) {
		nv[i] = (nghttp2_nv){ (uint8_t *)kv[2 * i], (uint8_t *)kv[2 * i + 1],
				      strlen(kv[2 * i]), strlen(kv[2 * i + 1]), NGHTTP2_NV_FLAG_NONE };
	}
	r = nghttp2_hd_deflate_hd(d, out, cap, nv, n);
	CHECK(r > 0);
	return r > 0 ? (size_t)r : 0;
}

static void data(struct buf *b, uint32_t stream, const char *s, int end, int pad)
{
	unsigned char p[4096];
	size_t n = strlen(s);

	if (pad) {
		p[0] = 5;
		memcpy(p + 1, s, n);
		memset(p + 1 + n, 0, 5);
		frame(b, 0, (end ? 1 : 0) | 0x8, stream, p, n + 6);
	} else {
		frame(b, 0, end ? 1 : 0, stream, s, n);
	}
}

/* Feeds the connection's bytes in order: seg[i] went in direction dir[i]. */
static void run(struct sink *s, const struct buf *seg, const enum capture_dir *dir, int nseg,
		int bytewise)
{
	struct capture_conn *c = capture_conn_new(&config, NULL, 0, 1, on_emit, s);
	size_t i;
	int k;

	memset(s, 0, sizeof(*s));
	for (k = 0; k < nseg; k++) {
		for (i = 0; bytewise && i < seg[k].len; i++)
			capture_conn_feed(c, dir[k], seg[k].p + i, 1);
		if (!bytewise)
			capture_conn_feed(c, dir[k], seg[k].p, seg[k].len);
	}
	capture_conn_eof(c);
	capture_conn_free(c);
}

static const char OPENAI_BODY[] =
	"{\"id\":\"c\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-2024-08-06\","
	"\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,"
	"\"total_tokens\":18}}";
static const char *const ANTHROPIC_EVENTS[] = {
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":"
	"\"claude-haiku-4-5-20251001\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}"
	"\n\n",
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
};

static void test_streams(void)
{
	nghttp2_hd_deflater *cd, *sd;
	struct buf seg[4] = { { 0 } }, *out = &seg[2], *in = &seg[3];
	const enum capture_dir dirs[4] = { CAPTURE_OUT, CAPTURE_IN, CAPTURE_OUT, CAPTURE_IN };
	uint8_t hb[1024], p[1100];
	size_t n, half;
	struct sink s;
	int bytewise;
	const char *const req1[] = { ":method", "POST", ":scheme", "https", ":path",
				     "/v1/chat/completions", ":authority", "api.openai.com",
				     "content-type", "application/json", "authorization",
				     "Bearer sk-secret-123" };
	const char *const req3[] = { ":method", "POST", ":scheme", "https", ":path",
				     "/v1/messages", ":authority", "api.anthropic.com",
				     "content-type", "application/json", "x-api-key", "sk-ant-1" };
	const char *const req5[] = { ":method", "POST", ":scheme", "https", ":path",
				     "/v1/chat/completions", ":authority", "api.openai.com",
				     "content-type", "application/json" };
	const char *const req7[] = { ":method", "GET", ":scheme", "https", ":path", "/favicon.ico",
				     ":authority", "api.openai.com" };
	const char *const resp_json[] = { ":status", "200", "content-type", "application/json" };
	const char *const resp_sse[] = { ":status", "200", "content-type", "text/event-stream" };
	const char *const resp_404[] = { ":status", "404", "content-type", "text/html" };
	const unsigned char table_8k[6] = { 0, 1, 0, 0, 0x20, 0 }; /* HEADER_TABLE_SIZE 8192 */

	CHECK(nghttp2_hd_deflate_new(&cd, 16384) == 0);
	CHECK(nghttp2_hd_deflate_new(&sd, 4096) == 0);
	put(&seg[0], "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
	frame(&seg[0], 4, 0, 0, "", 0);
	frame(&seg[1], 4, 0, 0, table_8k, 6); /* the server's decoder takes a larger table … */
	/* … so the client's encoder may use it (a size update starts its next block) */
	CHECK(nghttp2_hd_deflate_change_table_size(cd, 8192) == 0);
	n = block(cd, req1, 6, hb, sizeof(hb));
	frame(out, 1, 0x4, 1, hb, n);
	data(out, 1, "{\"model\":\"gpt-4o\",", 0, 1);
	data(out, 1, "\"messages\":[]}", 1, 0);
	/* stream 3: HEADERS padded, with priority, continued in a CONTINUATION, END_STREAM on it */
	n = block(cd, req3, 6, hb, sizeof(hb));
	half = n / 2;
	p[0] = 3;
	memset(p + 1, 0, 5);
	memcpy(p + 6, hb, half);
	memset(p + 6 + half, 0, 3);
	frame(out, 1, 0x8 | 0x20, 3, p, 6 + half + 3);
	frame(out, 9, 0x4, 3, hb + half, n - half);
	data(out, 3, "{\"model\":\"claude-haiku-4-5\",\"stream\":true}", 1, 0);
	n = block(cd, req5, 5, hb, sizeof(hb));
	frame(out, 1, 0x4 | 0x1, 5, hb, n);
	n = block(cd, req7, 4, hb, sizeof(hb));
	frame(out, 1, 0x4 | 0x1, 7, hb, n);

	n = block(sd, resp_sse, 2, hb, sizeof(hb));
	frame(in, 1, 0x4, 3, hb, n);
	data(in, 3, ANTHROPIC_EVENTS[0], 0, 1);
	n = block(sd, resp_json, 2, hb, sizeof(hb));
	frame(in, 1, 0x4, 1, hb, n);
	n = block(sd, resp_404, 2, hb, sizeof(hb));
	frame(in, 1, 0x4, 7, hb, n);
	data(in, 7, "<html>not found</html>", 1, 0);
	data(in, 3, ANTHROPIC_EVENTS[1], 0, 0);
	data(in, 1, OPENAI_BODY, 1, 1);
	data(in, 3, ANTHROPIC_EVENTS[2], 1, 0);
	frame(in, 3, 0, 5, "\0\0\0\x8", 4); /* RST_STREAM CANCEL */
	frame(in, 6, 0, 0, "12345678", 8); /* PING */

	for (bytewise = 0; bytewise < 2; bytewise++) {
		run(&s, seg, dirs, 4, bytewise);
		CHECK_INT(s.n, 3);
		CHECK_STR(s.rec[0].provider, "openai");
		CHECK_STR(s.rec[0].model, "gpt-4o-2024-08-06");
		CHECK_STR(s.rec[0].path, "/v1/chat/completions");
		CHECK_STR(s.rec[0].host, "api.openai.com");
		CHECK_INT(s.rec[0].in, 11);
		CHECK_INT(s.rec[0].out, 7);
		CHECK_INT(s.rec[0].status, 200);
		CHECK_INT(s.rec[0].flags & (RECORD_STREAM | RECORD_TRUNCATED | RECORD_ESTIMATED), 0);
		CHECK(strstr(s.rec[0].req_head, "POST /v1/chat/completions HTTP/2\r\n") != NULL);
		CHECK(strstr(s.rec[0].req_head, "authorization: [REDACTED]\r\n") != NULL);
		CHECK(strstr(s.rec[0].req_head, "sk-secret") == NULL);
		CHECK_STR(s.rec[1].provider, "anthropic");
		CHECK_STR(s.rec[1].model, "claude-haiku-4-5-20251001");
		CHECK_INT(s.rec[1].in, 5);
		CHECK_INT(s.rec[1].out, 9);
		CHECK_INT(s.rec[1].flags & (RECORD_STREAM | RECORD_TRUNCATED), RECORD_STREAM);
		/* reset by the server before any answer: cut short */
		CHECK_STR(s.rec[2].provider, "openai");
		CHECK_INT(s.rec[2].status, 0);
		CHECK_INT(s.rec[2].flags & RECORD_TRUNCATED, RECORD_TRUNCATED);
	}
	nghttp2_hd_deflate_del(cd);
	nghttp2_hd_deflate_del(sd);
	for (n = 0; n < 4; n++)
		free(seg[n].p);
}

static void test_broken(void)
{
	nghttp2_hd_deflater *cd;
	struct buf seg[2] = { { 0 } }, *out = &seg[0], *in = &seg[1];
	const enum capture_dir dirs[2] = { CAPTURE_OUT, CAPTURE_IN };
	uint8_t hb[512];
	const char *const req[] = { ":method", "POST", ":path", "/v1/chat/completions",
				    ":authority", "api.openai.com", "content-type",
				    "application/json" };
	const unsigned char junk[4] = { 0xff, 0xff, 0xff, 0xff }; /* not HPACK */
	struct sink s;
	size_t n;
	int bytewise;

	CHECK(nghttp2_hd_deflate_new(&cd, 4096) == 0);
	put(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
	n = block(cd, req, 4, hb, sizeof(hb));
	frame(out, 1, 0x4 | 0x1, 1, hb, n);
	frame(in, 1, 0x4, 1, junk, 4);
	data(in, 1, OPENAI_BODY, 1, 0);
	for (bytewise = 0; bytewise < 2; bytewise++) {
		run(&s, seg, dirs, 2, bytewise);
		CHECK_INT(s.n, 1); /* the open stream, cut short when the reading stopped */
		CHECK_INT(s.rec[0].flags & RECORD_TRUNCATED, RECORD_TRUNCATED);
	}
	/* a bad preface: nothing is recorded, nothing breaks */
	out->p[3] = 'X';
	run(&s, seg, dirs, 2, 0);
	CHECK_INT(s.n, 0);
	nghttp2_hd_deflate_del(cd);
	free(out->p);
	free(in->p);
}

int main(void)
{
	RUN(test_streams);
	RUN(test_broken);
	CHECK_DONE();
}
