/*
 * test_http.c - the HTTP/1.1 parser (http/http.c) and head redaction (http/redact.c).
 *
 * Every callback is written to a text log ("H200/1;B:hello;E1;") so that a case states the
 * whole sequence it expects in one string. The same input is fed whole, a byte at a time and
 * in seeded random splits, and each piece is copied to just before a PROT_NONE page, so a read
 * past the end of any piece crashes at once (picohttpparser's test does the same).
 */
#include "http/http.h"
#include "tests/unit/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- guarded input: each piece ends where a PROT_NONE page begins ---- */

struct guard {
	char *base;
	size_t room;
	size_t page;
};

static void guard_init(struct guard *g, size_t room)
{
	g->page = (size_t)sysconf(_SC_PAGESIZE);
	g->room = (room + g->page - 1) / g->page * g->page;
	if (g->room == 0)
		g->room = g->page;
	g->base = mmap(NULL, g->room + g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (g->base == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	if (mprotect(g->base + g->room, g->page, PROT_NONE) != 0) {
		perror("mprotect");
		exit(2);
	}
}

/* Copies data so that its last byte is the last readable one. */
static const char *guard_place(struct guard *g, const char *data, size_t n)
{
	char *dst = g->base + g->room - n;

	memcpy(dst, data, n);
	return dst;
}

static void guard_release(struct guard *g)
{
	munmap(g->base, g->room + g->page);
}

/* ---- a recorder of callbacks ---- */

struct rec {
	char *log;
	size_t len, cap;
	int in_body;
	enum http_body_mode modes[16]; /* what on_head returns for the Nth head */
	int nheads;
	int hash_body;                 /* count and hash body bytes instead of logging them */
	uint64_t body_bytes, body_calls, body_hash;
	const struct http_parser *parser;
	char saved[256];               /* the head as on_head saw it */
	size_t saved_len;
	int raw_ok_at_end;             /* ... and as on_end still sees it */
};

static void rec_put(struct rec *r, const char *s, size_t n)
{
	if (r->len + n + 1 > r->cap) {
		r->cap = (r->len + n + 1) * 2;
		r->log = realloc(r->log, r->cap);
		if (r->log == NULL)
			exit(2);
	}
	memcpy(r->log + r->len, s, n);
	r->len += n;
	r->log[r->len] = '\0';
}

static void rec_puts(struct rec *r, const char *s)
{
	rec_put(r, s, strlen(s));
}

static enum http_body_mode rec_on_head(void *ctx, const struct http_head *h)
{
	struct rec *r = ctx;
	char buf[256];
	enum http_body_mode mode = HTTP_BODY_DELIVER;

	r->in_body = 0;
	if (h->dir == HTTP_DIR_REQUEST)
		snprintf(buf, sizeof(buf), "H%.*s %.*s/%zu;", (int)h->method_len, h->method,
			 (int)h->target_len, h->target, h->nheaders);
	else
		snprintf(buf, sizeof(buf), "H%d/%zu;", h->status, h->nheaders);
	rec_puts(r, buf);
	r->saved_len = h->raw_len < sizeof(r->saved) ? h->raw_len : sizeof(r->saved);
	memcpy(r->saved, h->raw, r->saved_len);
	if (r->nheads < 16)
		mode = r->modes[r->nheads];
	r->nheads++;
	return mode;
}

static void rec_on_body(void *ctx, const char *data, size_t len)
{
	struct rec *r = ctx;
	size_t i;

	if (r->hash_body) {
		r->body_bytes += len;
		r->body_calls++;
		for (i = 0; i < len; i++)
			r->body_hash = (r->body_hash ^ (unsigned char)data[i]) * 1099511628211ull;
		return;
	}
	if (!r->in_body)
		rec_puts(r, "B:");
	r->in_body = 1;
	rec_put(r, data, len); /* pieces of one body join up whatever the split */
}

static void rec_on_end(void *ctx, int complete)
{
	struct rec *r = ctx;

	if (r->in_body)
		rec_puts(r, ";");
	r->in_body = 0;
	rec_puts(r, complete ? "E1;" : "E0;");
	if (r->parser && r->saved_len > 0 && r->parser->parsed.raw_len >= r->saved_len)
		r->raw_ok_at_end += memcmp(r->parser->parsed.raw, r->saved, r->saved_len) == 0;
}

static const struct http_parser_callbacks rec_cb = { rec_on_head, rec_on_body, rec_on_end };

static void rec_free(struct rec *r)
{
	free(r->log);
	memset(r, 0, sizeof(*r));
}

/* ---- feeding ---- */

static uint64_t prng_state;

static uint64_t prng_next(void)
{
	uint64_t x = prng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	prng_state = x;
	return x;
}

/* Feeds input in pieces: piece 0 means whole, 1 a byte at a time, -1 random sizes. Returns
 * the first error, or 0. Logs "X<rc>;" for an error and "F;" for eof when asked. */
static int feed_split(struct rec *r, enum http_dir dir, const char *in, size_t n, long piece,
		      int eof)
{
	struct http_parser p;
	struct guard g;
	size_t pos = 0, take;
	int rc, first_rc = 0;
	char buf[32];

	guard_init(&g, n);
	http_parser_init(&p, dir, &rec_cb, r);
	r->parser = &p;
	while (pos < n) {
		if (piece == 0)
			take = n - pos;
		else if (piece > 0)
			take = (size_t)piece;
		else
			take = 1 + (size_t)(prng_next() % 64);
		if (take > n - pos)
			take = n - pos;
		rc = http_parser_feed(&p, guard_place(&g, in + pos, take), take);
		if (rc != 0 && first_rc == 0) {
			first_rc = rc;
			snprintf(buf, sizeof(buf), "X%d;", rc);
			rec_puts(r, buf);
		}
		pos += take;
	}
	if (eof) {
		http_parser_eof(&p);
	}
	r->parser = NULL;
	http_parser_release(&p);
	guard_release(&g);
	return first_rc;
}

/* Runs input whole, byte by byte and in 50 random splits; each log must equal want. */
static void check_all_splits(enum http_dir dir, const char *in, size_t n, int eof,
			     const enum http_body_mode *modes, const char *want, int want_rc)
{
	struct rec r;
	long pieces[] = { 0, 1, 2, 3, 7 };
	size_t k;
	int rc;

	for (k = 0; k < sizeof(pieces) / sizeof(pieces[0]) + 50; k++) {
		memset(&r, 0, sizeof(r));
		if (modes)
			memcpy(r.modes, modes, sizeof(r.modes));
		rc = feed_split(&r, dir, in, n, k < 5 ? pieces[k] : -1, eof);
		CHECK_INT(rc, want_rc);
		if (r.log == NULL || strcmp(r.log, want) != 0) {
			fprintf(stderr, "split %zu: log is \"%s\"\n want \"%s\"\n", k,
				r.log ? r.log : "", want);
			check_case_failed = 1;
		}
		rec_free(&r);
	}
}

#define S(lit) lit, sizeof(lit) - 1

/* ---- cases ---- */

static void test_request_content_length(void)
{
	check_all_splits(HTTP_DIR_REQUEST,
			 S("POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
			   "Content-Length: 11\r\nContent-Type: application/json\r\n\r\n"
			   "{\"a\":\"b c\"}"),
			 0, NULL, "HPOST /v1/chat/completions/3;B:{\"a\":\"b c\"};E1;", 0);
}

static void test_head_fields(void)
{
	static const char in[] = "HTTP/1.0 404 Not  Found\r\nX-A:   padded value \t\r\n"
				 "x-empty:\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n"
				 "Content-Length: 0\r\n\r\n";
	struct http_parser p;
	struct rec r = { 0 };
	const struct http_header *h;
	struct guard g;

	guard_init(&g, sizeof(in) - 1);
	http_parser_init(&p, HTTP_DIR_RESPONSE, &rec_cb, &r);
	CHECK_INT(http_parser_feed(&p, guard_place(&g, in, sizeof(in) - 1), sizeof(in) - 1), 0);
	CHECK_STR(r.log, "H404/5;E1;");
	CHECK_INT(p.parsed.status, 404);
	CHECK_INT(p.parsed.minor_version, 0);
	CHECK_INT(p.parsed.raw_len, sizeof(in) - 1);
	CHECK_MEM(p.parsed.raw, p.parsed.raw_len, in);
	h = http_head_get(&p.parsed, "x-a");
	CHECK(h != NULL);
	if (h)
		CHECK_MEM(h->value, h->value_len, "padded value");
	h = http_head_get(&p.parsed, "X-EMPTY");
	CHECK(h != NULL);
	if (h)
		CHECK_INT(h->value_len, 0);
	h = http_head_get(&p.parsed, "SET-COOKIE");
	CHECK(h != NULL);
	if (h)
		CHECK_MEM(h->value, h->value_len, "a=1"); /* the first one */
	CHECK(http_head_get(&p.parsed, "x-") == NULL);
	CHECK(http_head_get(&p.parsed, "x-aa") == NULL);
	http_parser_release(&p);
	guard_release(&g);
	rec_free(&r);
}

static void test_header_tokens(void)
{
	struct http_header h = { "Connection", 10, "keep-alive, Upgrade ,  close", 28 };
	struct http_header ct = { "Content-Type", 12, "text/event-stream; charset=utf-8", 32 };
	struct http_header empty = { "Connection", 10, "", 0 };

	CHECK_INT(http_header_has_token(&h, "upgrade"), 1);
	CHECK_INT(http_header_has_token(&h, "KEEP-ALIVE"), 1);
	CHECK_INT(http_header_has_token(&h, "close"), 1);
	CHECK_INT(http_header_has_token(&h, "keep"), 0);
	CHECK_INT(http_header_has_token(&h, "alive"), 0);
	CHECK_INT(http_header_has_token(&ct, "text/event-stream"), 1);
	CHECK_INT(http_header_has_token(&ct, "charset=utf-8"), 0);
	CHECK_INT(http_header_has_token(&empty, "close"), 0);
	CHECK_INT(http_header_has_token(&empty, ""), 0);
	CHECK_INT(http_header_has_token(NULL, "close"), 0);
}

static void test_chunked_extensions_trailers(void)
{
	check_all_splits(HTTP_DIR_RESPONSE,
			 S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "5;ext=1;q=\"a;b\"\r\nhello\r\n"
			   "6 ; x\r\n world\r\n"
			   "A\r\n0123456789\r\n"
			   "0;last=1\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n"),
			 0, NULL, "H200/1;B:hello world0123456789;E1;", 0);
}

static void test_continue_then_200(void)
{
	check_all_splits(HTTP_DIR_RESPONSE,
			 S("HTTP/1.1 100 Continue\r\n\r\n"
			   "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
			   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
			 0, NULL, "H100/0;H103/1;H200/1;B:ok;E1;", 0);
}

static void test_close_delimited(void)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
				 "until the end\r\n\r\nHTTP/1.1 200 OK\r\n";

	check_all_splits(HTTP_DIR_RESPONSE, S(in), 1, NULL,
			 "H200/1;B:until the end\r\n\r\nHTTP/1.1 200 OK\r\n;E1;", 0);
	/* Without eof the message is not over. */
	check_all_splits(HTTP_DIR_RESPONSE, S(in), 0, NULL,
			 "H200/1;B:until the end\r\n\r\nHTTP/1.1 200 OK\r\n", 0);
}

static void test_eof_cut_short(void)
{
	check_all_splits(HTTP_DIR_RESPONSE, S("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
			 1, NULL, "H200/1;B:abc;E0;", 0);
	check_all_splits(HTTP_DIR_RESPONSE,
			 S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"), 1,
			 NULL, "H200/1;B:abc;E0;", 0);
	check_all_splits(HTTP_DIR_RESPONSE, S("HTTP/1.1 200 OK\r\nContent-Le"), 1, NULL, "E0;",
			 0);
	/* After an interim response the exchange is still open. */
	check_all_splits(HTTP_DIR_RESPONSE, S("HTTP/1.1 100 Continue\r\n\r\n\r\n"), 1, NULL,
			 "H100/0;E0;", 0);
	/* Between messages, eof ends nothing. */
	check_all_splits(HTTP_DIR_REQUEST, S("GET / HTTP/1.1\r\n\r\n\r\n"), 1, NULL,
			 "HGET //0;E1;", 0);
}

static void test_head_response_no_body(void)
{
	static const enum http_body_mode modes[16] = { HTTP_BODY_NONE, HTTP_BODY_DELIVER };

	check_all_splits(HTTP_DIR_RESPONSE,
			 S("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
			   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
			 0, modes, "H200/1;E1;H200/1;B:ok;E1;", 0);
}

static void test_204_304_no_body(void)
{
	check_all_splits(HTTP_DIR_RESPONSE,
			 S("HTTP/1.1 204 No Content\r\n\r\n"
			   "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
			   "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"),
			 0, NULL, "H204/0;E1;H304/1;E1;H200/1;B:x;E1;", 0);
}

static void test_skip_mode(void)
{
	static const enum http_body_mode modes[16] = { HTTP_BODY_SKIP, HTTP_BODY_SKIP,
						       HTTP_BODY_DELIVER };

	check_all_splits(HTTP_DIR_RESPONSE,
			 S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
			   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
			   "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes"),
			 0, modes, "H200/1;E1;H200/1;E1;H200/1;B:yes;E1;", 0);
}

static void test_te_wins_over_content_length(void)
{
	check_all_splits(HTTP_DIR_RESPONSE,
			 S("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n"
			   "Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
			   "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\n"
			   "zz"),
			 1, NULL, "H200/2;B:abc;E1;H200/2;B:zz;E1;", 0);
}

static void test_pipelined_requests(void)
{
	check_all_splits(HTTP_DIR_REQUEST,
			 S("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
			   "POST /b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\r\n"
			   "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n"
			   "HEAD /d HTTP/1.0\n\n"),
			 1, NULL,
			 "HGET /a/1;E1;HPOST /b?x=1/2;B:abc;E1;HPUT /c/1;B:z;E1;HHEAD /d/0;E1;", 0);
}

static void test_upgrade(void)
{
	static const enum http_body_mode modes[16] = { HTTP_BODY_UPGRADE };

	check_all_splits(HTTP_DIR_RESPONSE,
			 S("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
			   "\x81\x05hello not http at all"),
			 1, NULL, "H101/1;E1;", 0);
	/* The owner says a CONNECT succeeded: the tunnel's bytes are not HTTP. */
	check_all_splits(HTTP_DIR_RESPONSE,
			 S("HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01\x02\x00"), 1,
			 modes, "H200/0;E1;", 0);
}

/* A multi-exchange keep-alive response stream: every split gives the same callbacks. */
static void test_keepalive_random_splits(void)
{
	static const char in[] =
		"HTTP/1.1 100 Continue\r\n\r\n"
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nT: 1\r\n\r\n"
		"HTTP/1.1 204 No Content\r\n\r\n"
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
		"HTTP/1.1 200\nContent-Length: 2\n\nhi"
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nf\r\n0123456789abcde\r\n"
		"1\r\nf\n0\r\n\r\n"
		"HTTP/1.1 500 Oops\r\nServer: x\r\n\r\nclosing body";
	static const char want[] = "H100/0;H200/1;B:hello;E1;H200/1;B:abc;E1;H204/0;E1;H200/1;"
				   "E1;H200/1;B:hi;E1;H200/1;B:0123456789abcdef;E1;H500/1;"
				   "B:closing body;E1;";
	struct rec r;
	int i;

	check_all_splits(HTTP_DIR_RESPONSE, S(in), 1, NULL, want, 0);
	prng_state = 0x9e3779b97f4a7c15ull;
	for (i = 0; i < 2000; i++) {
		memset(&r, 0, sizeof(r));
		CHECK_INT(feed_split(&r, HTTP_DIR_RESPONSE, S(in), -1, 1), 0);
		CHECK_STR(r.log, want);
		rec_free(&r);
	}
}

/* Mutated streams (good and bad alike) give the same callbacks and error whatever the split,
 * and never crash or read past a piece. */
static void check_mutations(enum http_dir dir, const char *in, size_t n, int rounds)
{
	static const char alphabet[] = "\r\n :;\t09afAFH/.-\x00\x80\xff";
	char *m = malloc(n);
	struct rec whole, other;
	int round, k, rc_whole, rc;
	long piece;

	for (round = 0; round < rounds; round++) {
		memcpy(m, in, n);
		for (k = 0; k < 1 + (int)(prng_next() % 4); k++)
			m[prng_next() % n] = alphabet[prng_next() % (sizeof(alphabet) - 1)];
		memset(&whole, 0, sizeof(whole));
		rc_whole = feed_split(&whole, dir, m, n, 0, 1);
		for (piece = -1; piece <= 1; piece += 2) {
			memset(&other, 0, sizeof(other));
			rc = feed_split(&other, dir, m, n, piece, 1);
			CHECK_INT(rc, rc_whole);
			if (strcmp(whole.log ? whole.log : "", other.log ? other.log : "") != 0) {
				fprintf(stderr, "round %d: \"%s\" vs \"%s\"\n", round,
					whole.log ? whole.log : "", other.log ? other.log : "");
				check_case_failed = 1;
			}
			rec_free(&other);
		}
		rec_free(&whole);
	}
	free(m);
}

static void test_mutated_streams(void)
{
	static const char responses[] =
		"HTTP/1.1 100 Continue\r\n\r\n"
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nT: 1\r\n\r\n"
		"HTTP/1.1 204 No Content\r\n\r\n"
		"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nabcdefghijkl"
		"HTTP/1.1 500 Oops\r\nServer: x\r\n\r\nclosing body";
	static const char requests[] =
		"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
		"POST /b?key=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\r\n"
		"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n"
		"HEAD /d HTTP/1.0\n\n";

	prng_state = 0x0123456789abcdefull;
	check_mutations(HTTP_DIR_RESPONSE, S(responses), 1500);
	check_mutations(HTTP_DIR_REQUEST, S(requests), 1500);
}

struct bad_case {
	enum http_dir dir;
	const char *in;
	int rc;
	const char *log;
};

static void test_parse_errors(void)
{
	static const struct bad_case cases[] = {
		{ HTTP_DIR_RESPONSE, "HTTP/2 200 OK\r\n\r\n", HTTP_EPARSE, "E0;X-1;" },
		{ HTTP_DIR_RESPONSE, "\x16\x03\x01\x00\xa5\x01", HTTP_EPARSE, "E0;X-1;" },
		{ HTTP_DIR_REQUEST, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTP_EPARSE, "E0;X-1;" },
		{ HTTP_DIR_REQUEST, "G\x01T / HTTP/1.1\r\n\r\n", HTTP_EPARSE, "E0;X-1;" },
		{ HTTP_DIR_REQUEST, "GET  / HTTP/1.1\r\n\r\n", HTTP_EPARSE, "E0;X-1;" },
		{ HTTP_DIR_REQUEST, "GET / HTTP/1.1 \r\n\r\n", HTTP_EPARSE, "E0;X-1;" },
		{ HTTP_DIR_RESPONSE, "HTTP/1.1 2x0 OK\r\n\r\n", HTTP_EPARSE, "E0;X-1;" },
		{ HTTP_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", HTTP_EPARSE,
		  "E0;X-1;" },
		{ HTTP_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		  HTTP_EPARSE, "E0;X-1;" },
		{ HTTP_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		  HTTP_EPARSE, "E0;X-1;" },
		{ HTTP_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\n\r\n", HTTP_EPARSE,
		  "E0;X-1;" },
		{ HTTP_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nX-A : a\r\n\r\n", HTTP_EPARSE, "E0;X-1;" },
		{ HTTP_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n", HTTP_EPARSE, "E0;X-1;" },
		{ HTTP_DIR_REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_EPARSE,
		  "E0;X-1;" },
		{ HTTP_DIR_RESPONSE,
		  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		  HTTP_EPARSE, "H200/1;E0;X-1;" },
		{ HTTP_DIR_RESPONSE,
		  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n",
		  HTTP_EPARSE, "H200/1;E0;X-1;" },
		{ HTTP_DIR_RESPONSE,
		  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
		  HTTP_EPARSE, "H200/1;B:ab;E0;X-1;" },
		{ HTTP_DIR_RESPONSE,
		  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n",
		  HTTP_EPARSE, "H200/1;E0;X-1;" },
		/* After a failure the parser stays failed: the good message after it is ignored. */
		{ HTTP_DIR_RESPONSE,
		  "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
		  "HTTP/1.1 2000 OK\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		  HTTP_EPARSE, "H200/1;B:x;E1;E0;X-1;" },
	};
	size_t i;
	int k;
	struct rec r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (k = 0; k < 2; k++) { /* whole, then a byte at a time */
			memset(&r, 0, sizeof(r));
			CHECK_INT(feed_split(&r, cases[i].dir, cases[i].in, strlen(cases[i].in), k,
					     1),
				  cases[i].rc);
			if (r.log == NULL || strcmp(r.log, cases[i].log) != 0) {
				fprintf(stderr, "case %zu/%d: log \"%s\", want \"%s\"\n", i, k,
					r.log ? r.log : "", cases[i].log);
				check_case_failed = 1;
			}
			rec_free(&r);
		}
	}
}

static void test_failed_stays_failed(void)
{
	struct http_parser p;
	struct rec r = { 0 };

	http_parser_init(&p, HTTP_DIR_RESPONSE, &rec_cb, &r);
	CHECK_INT(http_parser_feed(&p, S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
					 "3\r\nab")),
		  0);
	CHECK_INT(http_parser_feed(&p, S("c")), 0);
	CHECK_INT(p.state, HTTP_S_CHUNK_DATA_CR);
	CHECK_INT(http_parser_feed(&p, S("x")), HTTP_EPARSE);
	CHECK_INT(p.state, HTTP_S_FAILED);
	CHECK_INT(http_parser_feed(&p, S("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")),
		  HTTP_EPARSE);
	http_parser_eof(&p);
	CHECK_STR(r.log, "H200/1;B:abc;E0;");
	http_parser_release(&p);
	rec_free(&r);
}

static void test_head_too_big(void)
{
	size_t n = HTTP_HEAD_MAX + 100, i;
	char *in = malloc(n);
	struct rec r = { 0 };
	struct http_parser p;
	int rc = 0;

	memcpy(in, "HTTP/1.1 200 OK\r\n", 17);
	for (i = 17; i + 64 <= n; i += 64) /* lines of "X-Fill: aaa...\r\n" */
		memcpy(in + i, "X-Fill: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 64);
	memset(in + i, 'a', n - i);
	/* Fed in pieces, the error comes when the head passes the cap and memory stays capped. */
	http_parser_init(&p, HTTP_DIR_RESPONSE, &rec_cb, &r);
	for (i = 0; i < n && rc == 0; i += 1000)
		rc = http_parser_feed(&p, in + i, n - i < 1000 ? n - i : 1000);
	CHECK_INT(rc, HTTP_ETOOBIG);
	CHECK_INT(p.state, HTTP_S_FAILED);
	CHECK(p.head_cap <= HTTP_HEAD_MAX);
	CHECK_STR(r.log, "E0;");
	http_parser_release(&p);
	CHECK(p.head == NULL);
	CHECK_INT(p.head_cap, 0);
	rec_free(&r);
	/* Not HTTP and too big: the same error fed whole as fed in pieces. */
	in[0] = 'X';
	memset(&r, 0, sizeof(r));
	CHECK_INT(feed_split(&r, HTTP_DIR_RESPONSE, in, n, 0, 1), HTTP_EPARSE);
	CHECK_STR(r.log, "E0;X-1;");
	rec_free(&r);
	memset(&r, 0, sizeof(r));
	CHECK_INT(feed_split(&r, HTTP_DIR_RESPONSE, in, n, 1, 1), HTTP_EPARSE);
	CHECK_STR(r.log, "E0;X-1;");
	rec_free(&r);
	free(in);
}

static void test_too_many_headers(void)
{
	char in[8192];
	size_t len = 0;
	int i;
	struct rec r = { 0 };

	len += (size_t)snprintf(in + len, sizeof(in) - len, "GET / HTTP/1.1\r\n");
	for (i = 0; i < HTTP_MAX_HEADERS; i++)
		len += (size_t)snprintf(in + len, sizeof(in) - len, "H%d: v\r\n", i);
	len += (size_t)snprintf(in + len, sizeof(in) - len, "\r\n");
	CHECK_INT(feed_split(&r, HTTP_DIR_REQUEST, in, len, 0, 0), 0);
	CHECK_STR(r.log, "HGET //128;E1;");
	rec_free(&r);
	memset(&r, 0, sizeof(r));
	len -= 2;
	len += (size_t)snprintf(in + len, sizeof(in) - len, "One-More: v\r\n\r\n");
	CHECK_INT(feed_split(&r, HTTP_DIR_REQUEST, in, len, 0, 0), HTTP_ETOOBIG);
	CHECK_STR(r.log, "E0;X-3;");
	rec_free(&r);
}

/* A 5 MiB request body in 1000 writes flows through on_body; the parser holds none of it. */
static void test_big_request_body(void)
{
	size_t body = 5u << 20, head_len, total, pos = 0, piece, i;
	char head[128], *in;
	uint64_t want_hash = 1469598103934665603ull;
	struct http_parser p;
	struct rec r = { 0 };
	struct guard g;
	int rc = 0;

	head_len = (size_t)snprintf(head, sizeof(head),
				    "POST /v1/messages HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", body);
	total = head_len + body;
	in = malloc(total);
	memcpy(in, head, head_len);
	for (i = 0; i < body; i++) {
		in[head_len + i] = (char)('a' + (i * 7) % 26);
		want_hash = (want_hash ^ (unsigned char)in[head_len + i]) * 1099511628211ull;
	}
	r.hash_body = 1;
	r.body_hash = 1469598103934665603ull;
	piece = total / 1000 + 1;
	guard_init(&g, piece);
	http_parser_init(&p, HTTP_DIR_REQUEST, &rec_cb, &r);
	for (i = 0; pos < total && rc == 0; i++) {
		size_t take = total - pos < piece ? total - pos : piece;
		rc = http_parser_feed(&p, guard_place(&g, in + pos, take), take);
		pos += take;
	}
	CHECK_INT(rc, 0);
	CHECK_INT(i, 1000);
	CHECK_INT(r.body_bytes, body);
	CHECK_INT(r.body_hash, want_hash);
	CHECK_INT(r.body_calls, 1000);
	CHECK_STR(r.log, "HPOST /v1/messages/1;E1;");
	CHECK_INT(p.head_cap, 1024); /* only the head was ever buffered */
	http_parser_release(&p);
	guard_release(&g);
	rec_free(&r);
	free(in);
}

/* The head given to on_head is still readable in on_end, even for a message without body. */
static void test_head_valid_until_next_message(void)
{
	struct rec r = { 0 };

	CHECK_INT(feed_split(&r, HTTP_DIR_REQUEST,
			     S("GET /x HTTP/1.1\r\n\r\nPOST /y HTTP/1.1\r\nContent-Length: 1\r\n\r\nz"),
			     1, 0),
		  0);
	CHECK_INT(r.raw_ok_at_end, 2);
	CHECK_STR(r.log, "HGET /x/0;E1;HPOST /y/1;B:z;E1;");
	rec_free(&r);
}

static void test_release_and_reinit(void)
{
	struct http_parser p;
	struct rec r = { 0 };

	http_parser_init(&p, HTTP_DIR_REQUEST, &rec_cb, &r);
	CHECK_INT(http_parser_feed(&p, S("GET / HTTP/1.1\r\nHo")), 0);
	http_parser_release(&p);
	http_parser_release(&p); /* twice is harmless */
	CHECK_INT(http_parser_feed(&p, S("st: x\r\n\r\n")), HTTP_EPARSE);
	http_parser_init(&p, HTTP_DIR_REQUEST, &rec_cb, &r);
	CHECK_INT(http_parser_feed(&p, S("GET /2 HTTP/1.1\r\n\r\n")), 0);
	http_parser_release(&p);
	CHECK_STR(r.log, "HGET /2/0;E1;");
	rec_free(&r);
}

/* Callbacks may be left out. */
static void test_null_callbacks(void)
{
	static const struct http_parser_callbacks none = { NULL, NULL, NULL };
	struct http_parser p;

	http_parser_init(&p, HTTP_DIR_RESPONSE, &none, NULL);
	CHECK_INT(http_parser_feed(&p, S("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 "
					 "200 OK\r\n\r\nabc")),
		  0);
	http_parser_eof(&p);
	CHECK_INT(p.state, HTTP_S_HEAD);
	http_parser_release(&p);
}

/* ---- redaction ---- */

static void check_redact_head(const char *in, const char *want)
{
	char out[1024];
	size_t n = http_redact_head(in, strlen(in), out, sizeof(out));

	CHECK_MEM(out, n, want);
}

static void test_redact_headers(void)
{
	check_redact_head("POST /v1/messages HTTP/1.1\r\n"
			  "Host: api.anthropic.com\r\n"
			  "Authorization: Bearer sk-secret\r\n"
			  "proxy-authorization: Basic dXNlcjpwYXNz\r\n"
			  "X-Api-Key: sk-ant-123\r\n"
			  "x-goog-api-key:AIzaSecret\r\n"
			  "API-KEY:   azure-key  \r\n"
			  "cookie: session=abc; other=def\r\n"
			  "X-Api-Key-Id: not-a-secret\r\n"
			  "Authorizations: plural-is-not\r\n"
			  "Content-Length: 2\r\n\r\n",
			  "POST /v1/messages HTTP/1.1\r\n"
			  "Host: api.anthropic.com\r\n"
			  "Authorization: [REDACTED]\r\n"
			  "proxy-authorization: [REDACTED]\r\n"
			  "X-Api-Key: [REDACTED]\r\n"
			  "x-goog-api-key:[REDACTED]\r\n"
			  "API-KEY:   [REDACTED]\r\n"
			  "cookie: [REDACTED]\r\n"
			  "X-Api-Key-Id: not-a-secret\r\n"
			  "Authorizations: plural-is-not\r\n"
			  "Content-Length: 2\r\n\r\n");
	check_redact_head("HTTP/1.1 200 OK\nSet-Cookie: id=1; HttpOnly\nSET-COOKIE: b=2\n\n",
			  "HTTP/1.1 200 OK\nSet-Cookie: [REDACTED]\nSET-COOKIE: [REDACTED]\n\n");
	/* The request line's key= goes too; a status line is left as it is. */
	check_redact_head("GET /v1beta/models?key=AIzaXYZ&alt=sse HTTP/1.1\r\nHost: g\r\n\r\n",
			  "GET /v1beta/models?key=[REDACTED]&alt=sse HTTP/1.1\r\nHost: g\r\n\r\n");
	check_redact_head("HTTP/1.1 200 key=1\r\n\r\n", "HTTP/1.1 200 key=1\r\n\r\n");
	/* A head cut short is still redacted and never read past its end. */
	check_redact_head("GET / HTTP/1.1\r\nAuthorization: Bearer sk-cut",
			  "GET / HTTP/1.1\r\nAuthorization: [REDACTED]");
	check_redact_head("", "");
}

static void test_redact_head_cap(void)
{
	static const char in[] = "GET / HTTP/1.1\r\nAuthorization: Bearer sk-secret\r\n\r\n";
	char out[64];
	size_t n;

	memset(out, 'Z', sizeof(out));
	n = http_redact_head(in, sizeof(in) - 1, out, 20);
	CHECK_MEM(out, n, "GET / HTTP/1.1\r\nAuth");
	CHECK_INT(out[20], 'Z');
	n = http_redact_head(in, sizeof(in) - 1, out, 33);
	CHECK_MEM(out, n, "GET / HTTP/1.1\r\nAuthorization: [R");
	CHECK_INT(http_redact_head(in, sizeof(in) - 1, NULL, 0), 0);
}

static void check_redact_target(const char *in, const char *want)
{
	char out[512];
	size_t n = http_redact_target(in, strlen(in), out, sizeof(out));

	CHECK_MEM(out, n, want);
}

static void test_redact_target(void)
{
	check_redact_target("/v1/models?key=AIza123", "/v1/models?key=[REDACTED]");
	check_redact_target("/v1/models?alt=sse&key=AIza123&monkey=1",
			    "/v1/models?alt=sse&key=[REDACTED]&monkey=1");
	check_redact_target("/x?monkey=1&keys=2&key", "/x?monkey=1&keys=2&key");
	check_redact_target("/x?KEY=a&api_key=b&api-key=c&apikey=d&access_token=e&token=f",
			    "/x?KEY=[REDACTED]&api_key=[REDACTED]&api-key=[REDACTED]"
			    "&apikey=[REDACTED]&access_token=[REDACTED]&token=f");
	check_redact_target("/x?key=&&key=s#frag?key=1", "/x?key=[REDACTED]&&key=[REDACTED]#frag?key=1");
	check_redact_target("/key=1/no-query", "/key=1/no-query");
	check_redact_target("/x?", "/x?");
	check_redact_target("", "");
}

int main(void)
{
	RUN(test_request_content_length);
	RUN(test_head_fields);
	RUN(test_header_tokens);
	RUN(test_chunked_extensions_trailers);
	RUN(test_continue_then_200);
	RUN(test_close_delimited);
	RUN(test_eof_cut_short);
	RUN(test_head_response_no_body);
	RUN(test_204_304_no_body);
	RUN(test_skip_mode);
	RUN(test_te_wins_over_content_length);
	RUN(test_pipelined_requests);
	RUN(test_upgrade);
	RUN(test_keepalive_random_splits);
	RUN(test_parse_errors);
	RUN(test_mutated_streams);
	RUN(test_failed_stays_failed);
	RUN(test_head_too_big);
	RUN(test_too_many_headers);
	RUN(test_big_request_body);
	RUN(test_head_valid_until_next_message);
	RUN(test_release_and_reinit);
	RUN(test_null_callbacks);
	RUN(test_redact_headers);
	RUN(test_redact_head_cap);
	RUN(test_redact_target);
	CHECK_DONE();
}
