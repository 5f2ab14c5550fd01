/*
 * test_providers_gcb.c - the Google (Gemini, Vertex AI), Cohere and AWS Bedrock families, and
 * the two framings they brought: the AWS event-stream decoder (http/eventstream.h) and the
 * JSON-array stream framer (http/stream.h).
 *
 * Framers are fed every body byte at a time, in every two-piece split and in seeded random
 * splits, and must hand out exactly the same events each way. Event-stream messages are built
 * here with zlib's crc32, and broken on purpose (a flipped CRC, an impossible length, an
 * oversize message) to check that a corrupt frame stops the stream and an oversize one is
 * skipped without memory growing past the cap. The families are driven the way capture drives
 * them: request, response head, events or body, usage_finish.
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "http/eventstream.h"
#include "http/http.h"
#include "http/stream.h"
#include "providers/provider.h"
#include "tests/unit/check.h"

/* ---- collecting events ------------------------------------------------------------------ */

struct events {
	char log[8192]; /* "name|data\n" per event */
	size_t len;
	int n;
};

static void on_event(void *ctx, const char *name, size_t name_len, const char *data,
		     size_t data_len)
{
	struct events *e = ctx;
	int w = snprintf(e->log + e->len, sizeof e->log - e->len, "%.*s|%.*s\n", (int)name_len,
			 name ? name : "", (int)data_len, data);

	if (w > 0 && (size_t)w < sizeof e->log - e->len)
		e->len += (size_t)w;
	e->n++;
}

/* ---- AWS event-stream ------------------------------------------------------------------- */

static void put32(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
}

static size_t put_str_header(unsigned char *b, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value), k = 0;

	b[k++] = (unsigned char)nl;
	memcpy(b + k, name, nl);
	k += nl;
	b[k++] = 7;
	b[k++] = (unsigned char)(vl >> 8);
	b[k++] = (unsigned char)vl;
	memcpy(b + k, value, vl);
	return k + vl;
}

/* One message as Bedrock sends it: :event-type (or :exception-type), :content-type,
 * :message-type, and a timestamp and a byte-array header that the decoder must step over. */
static size_t es_frame(unsigned char *out, const char *msgtype, const char *type,
		       const char *payload)
{
	unsigned char h[512];
	size_t hl = 0, pl = strlen(payload), total;
	int exception = strcmp(msgtype, "exception") == 0;

	hl += put_str_header(h + hl, exception ? ":exception-type" : ":event-type", type);
	hl += put_str_header(h + hl, ":content-type", "application/json");
	h[hl++] = 5;
	memcpy(h + hl, ":date", 5);
	hl += 5;
	h[hl++] = 8; /* timestamp: 8 bytes */
	memset(h + hl, 0x11, 8);
	hl += 8;
	h[hl++] = 3;
	memcpy(h + hl, "bin", 3);
	hl += 3;
	h[hl++] = 6; /* byte array: u16 length */
	h[hl++] = 0;
	h[hl++] = 2;
	h[hl++] = ':';
	h[hl++] = 'x';
	hl += put_str_header(h + hl, ":message-type", msgtype);
	total = 12 + hl + pl + 4;
	put32(out, (uint32_t)total);
	put32(out + 4, (uint32_t)hl);
	put32(out + 8, (uint32_t)crc32(0, out, 8));
	memcpy(out + 12, h, hl);
	memcpy(out + 12 + hl, payload, pl);
	put32(out + total - 4, (uint32_t)crc32(0, out, (uInt)(total - 4)));
	return total;
}

/* Feeds body to a framer in pieces: all of size fixed, or (fixed 0) seeded random sizes of 1 to
 * max_piece. Returns the first non-zero result of feed. */
static int feed_pieces(int (*feed)(void *parser, const char *data, size_t len), void *parser,
		       const char *body, size_t len, unsigned seed, size_t fixed, size_t max_piece)
{
	size_t pos = 0, n;
	int rc = 0, r;

	srand(seed);
	while (pos < len) {
		n = fixed ? fixed : 1 + (size_t)rand() % max_piece;
		if (n > len - pos)
			n = len - pos;
		r = feed(parser, body + pos, n);
		if (r != 0 && rc == 0)
			rc = r;
		pos += n;
	}
	return rc;
}

static int es_feed(void *p, const char *data, size_t len)
{
	return eventstream_parser_feed(p, data, len);
}

static int ja_feed(void *p, const char *data, size_t len)
{
	return jsonarray_parser_feed(p, data, len);
}

/* Decodes an event-stream body in pieces (see feed_pieces); returns the parser's result. */
static int es_decode(const unsigned char *body, size_t len, size_t max, unsigned seed,
		     size_t fixed, struct events *e, struct eventstream_parser *p)
{
	int rc;

	memset(e, 0, sizeof *e);
	eventstream_parser_init(p, max, on_event, e);
	rc = feed_pieces(es_feed, p, (const char *)body, len, seed, fixed, 40);
	eventstream_parser_release(p);
	return rc;
}

static const char es_want[] =
	"messageStart|{\"role\":\"assistant\"}\n"
	"contentBlockDelta|{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}\n"
	"metadata|{\"usage\":{\"inputTokens\":3,\"outputTokens\":1,\"totalTokens\":4}}\n";

static size_t es_body(unsigned char *b)
{
	size_t n = 0;

	n += es_frame(b + n, "event", "messageStart", "{\"role\":\"assistant\"}");
	n += es_frame(b + n, "event", "contentBlockDelta",
		      "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}");
	n += es_frame(b + n, "event", "metadata",
		      "{\"usage\":{\"inputTokens\":3,\"outputTokens\":1,\"totalTokens\":4}}");
	return n;
}

static void test_eventstream_splits(void)
{
	unsigned char body[2048];
	size_t len = es_body(body), cut;
	struct eventstream_parser p;
	struct events e, whole;
	unsigned seed;

	CHECK_INT(es_decode(body, len, 0, 0, len, &whole, &p), 0);
	CHECK_MEM(whole.log, whole.len, es_want);
	CHECK_INT(whole.n, 3);
	CHECK_INT(es_decode(body, len, 0, 0, 1, &e, &p), 0); /* a byte at a time */
	CHECK_MEM(e.log, e.len, es_want);
	for (seed = 1; seed <= 200; seed++) {
		es_decode(body, len, 0, seed, 0, &e, &p);
		CHECK_MEM(e.log, e.len, es_want);
	}
	for (cut = 1; cut < len; cut++) { /* every two-piece split */
		memset(&e, 0, sizeof e);
		eventstream_parser_init(&p, 0, on_event, &e);
		CHECK_INT(eventstream_parser_feed(&p, (const char *)body, cut), 0);
		CHECK_INT(eventstream_parser_feed(&p, (const char *)body + cut, len - cut), 0);
		CHECK_INT(e.n, 3);
		eventstream_parser_release(&p);
	}
}

static void test_eventstream_corrupt(void)
{
	unsigned char body[2048], bad[2048];
	size_t len = es_body(body), first = body[3];
	struct eventstream_parser p;
	struct events e;

	/* A flipped payload byte of the second message: its message CRC fails; the first
	 * message was delivered, nothing after it is. */
	memcpy(bad, body, len);
	bad[first + 30] ^= 0x01;
	CHECK_INT(es_decode(bad, len, 0, 7, 0, &e, &p), HTTP_EPARSE);
	CHECK_INT(e.n, 1);
	CHECK_INT(p.failed, 1);
	/* A flipped prelude CRC of the first message: nothing is delivered. */
	memcpy(bad, body, len);
	bad[9] ^= 0x80;
	CHECK_INT(es_decode(bad, len, 0, 0, 1, &e, &p), HTTP_EPARSE);
	CHECK_INT(e.n, 0);
	/* A length below the minimum, with a prelude CRC that matches it. */
	memcpy(bad, body, len);
	put32(bad, 15);
	put32(bad + 8, (uint32_t)crc32(0, bad, 8));
	CHECK_INT(es_decode(bad, len, 0, 0, len, &e, &p), HTTP_EPARSE);
	CHECK_INT(e.n, 0);
	/* Headers longer than the message. */
	memcpy(bad, body, len);
	put32(bad + 4, 4000);
	put32(bad + 8, (uint32_t)crc32(0, bad, 8));
	CHECK_INT(es_decode(bad, len, 0, 0, len, &e, &p), HTTP_EPARSE);
	/* After a failure the parser takes nothing more. */
	memset(&e, 0, sizeof e);
	eventstream_parser_init(&p, 0, on_event, &e);
	bad[9] ^= 0x80;
	eventstream_parser_feed(&p, (const char *)bad, len);
	CHECK_INT(eventstream_parser_feed(&p, (const char *)body, len), HTTP_EPARSE);
	CHECK_INT(e.n, 0);
	eventstream_parser_release(&p);
}

static void test_eventstream_oversize(void)
{
	unsigned char body[8192];
	char big[3000];
	size_t n = 0;
	struct eventstream_parser p;
	struct events e;

	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	n += es_frame(body + n, "event", "messageStart", "{}");
	n += es_frame(body + n, "event", "contentBlockDelta", big);
	n += es_frame(body + n, "event", "metadata", "{\"usage\":{}}");
	/* Cap 1 KiB: the 3 KiB message is skipped and counted, the next one still arrives, and
	 * the buffer never grew past the cap. */
	memset(&e, 0, sizeof e);
	eventstream_parser_init(&p, 1024, on_event, &e);
	CHECK_INT(feed_pieces(es_feed, &p, (const char *)body, n, 0, 7, 0), 0);
	CHECK_MEM(e.log, e.len, "messageStart|{}\nmetadata|{\"usage\":{}}\n");
	CHECK_INT(p.dropped, 1);
	CHECK_INT(p.events, 2);
	CHECK(p.msg_cap <= 1024);
	eventstream_parser_release(&p);
}

static void test_eventstream_exception(void)
{
	unsigned char body[1024];
	size_t n = es_frame(body, "exception", "throttlingException",
			    "{\"message\":\"Too many requests, please wait before trying again.\"}");
	struct eventstream_parser p;
	struct events e;

	CHECK_INT(es_decode(body, n, 0, 3, 0, &e, &p), 0);
	CHECK_MEM(e.log, e.len,
		  "throttlingException|{\"message\":\"Too many requests, please wait before "
		  "trying again.\"}\n");
}

/* ---- JSON array ------------------------------------------------------------------------- */

static void ja_decode(const char *body, size_t len, size_t max, unsigned seed, size_t fixed,
		      struct events *e, struct jsonarray_parser *p)
{
	memset(e, 0, sizeof *e);
	jsonarray_parser_init(p, max, on_event, e);
	feed_pieces(ja_feed, p, body, len, seed, fixed, 17);
	jsonarray_parser_finish(p);
	jsonarray_parser_release(p);
}

/* Gemini's default stream: elements separated by ",\r\n" with a newline before the comma;
 * brackets, braces and escaped quotes inside strings must not end an element. */
static const char ja_body[] =
	"[{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a ] } [ \\\"quoted\\\" \\\\\"}]}}]}\n"
	",\r\n{\"usageMetadata\": {\"promptTokenCount\": 4}}\n"
	",\r\n{\"x\": [1, 2, {\"y\": \"}\"}]}\n"
	"]";
static const char ja_want[] =
	"|{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a ] } [ \\\"quoted\\\" \\\\\"}]}}]}\n"
	"|{\"usageMetadata\": {\"promptTokenCount\": 4}}\n"
	"|{\"x\": [1, 2, {\"y\": \"}\"}]}\n";

static void test_jsonarray_splits(void)
{
	size_t len = strlen(ja_body), cut;
	struct jsonarray_parser p;
	struct events e;
	unsigned seed;

	ja_decode(ja_body, len, 0, 0, len, &e, &p);
	CHECK_MEM(e.log, e.len, ja_want);
	ja_decode(ja_body, len, 0, 0, 1, &e, &p);
	CHECK_MEM(e.log, e.len, ja_want);
	for (seed = 1; seed <= 100; seed++) {
		ja_decode(ja_body, len, 0, seed, 0, &e, &p);
		CHECK_MEM(e.log, e.len, ja_want);
	}
	for (cut = 1; cut < len; cut++) {
		memset(&e, 0, sizeof e);
		jsonarray_parser_init(&p, 0, on_event, &e);
		jsonarray_parser_feed(&p, ja_body, cut);
		jsonarray_parser_feed(&p, ja_body + cut, len - cut);
		jsonarray_parser_finish(&p);
		CHECK_MEM(e.log, e.len, ja_want);
		jsonarray_parser_release(&p);
	}
}

static void test_jsonarray_shapes(void)
{
	struct jsonarray_parser p;
	struct events e;
	const char *b;

	/* Not an array (an error before the stream started): the one value. */
	b = " {\"error\": {\"code\": 429}} ";
	ja_decode(b, strlen(b), 0, 0, 1, &e, &p);
	CHECK_MEM(e.log, e.len, "|{\"error\": {\"code\": 429}}\n");
	/* Scalars and strings as elements; an empty array; text after the array ignored. */
	b = "[1, \"s]\" ,true,null ,{}]garbage";
	ja_decode(b, strlen(b), 0, 0, 3, &e, &p);
	CHECK_MEM(e.log, e.len, "|1\n|\"s]\"\n|true\n|null\n|{}\n");
	b = "[ ]";
	ja_decode(b, strlen(b), 0, 0, 1, &e, &p);
	CHECK_INT(e.n, 0);
	/* Cut short: the open element is not delivered. */
	b = "[{\"a\": 1},\n{\"b\": ";
	ja_decode(b, strlen(b), 0, 0, 2, &e, &p);
	CHECK_MEM(e.log, e.len, "|{\"a\": 1}\n");
	/* An element over the cap is dropped and counted; the next one still arrives. */
	b = "[{\"a\": \"0123456789012345678901234567890123456789\"}, {\"b\": 2}]";
	ja_decode(b, strlen(b), 16, 0, 5, &e, &p);
	CHECK_MEM(e.log, e.len, "|{\"b\": 2}\n");
	CHECK_INT(p.dropped, 1);
	CHECK_INT(p.events, 1);
}

/* ---- families ----------------------------------------------------------------------------- */

/* A response head with these headers (name, value pairs, NULL-terminated). */
static void make_head(struct http_head *h, int status, const char *const *kv)
{
	size_t i;

	memset(h, 0, sizeof *h);
	h->dir = HTTP_DIR_RESPONSE;
	h->status = status;
	for (i = 0; kv != NULL && kv[2 * i] != NULL; i++) {
		h->headers[i].name = kv[2 * i];
		h->headers[i].name_len = strlen(kv[2 * i]);
		h->headers[i].value = kv[2 * i + 1];
		h->headers[i].value_len = strlen(kv[2 * i + 1]);
	}
	h->nheaders = i;
}

/* Match and read the request; returns the match's family or NULL. */
static const struct provider_family *start(struct usage *u, struct provider_match *m,
					   const char *host, const char *path, const char *req)
{
	struct provider_request pr;

	usage_init(u);
	memset(m, 0, sizeof *m);
	if (!provider_match(host, 443, path, m))
		return NULL;
	u->api = m->api;
	memset(&pr, 0, sizeof pr);
	pr.method = "POST";
	pr.host = host;
	pr.path = path;
	pr.body = req;
	pr.body_len = strlen(req);
	m->family->request(u, &pr);
	return m->family;
}

static void check_tokens(const struct usage *u, long long in, long long out, long long cr,
			 long long cw, long long rs)
{
	CHECK_INT(u->input_tokens, in);
	CHECK_INT(u->output_tokens, out);
	CHECK_INT(u->cache_read_tokens, cr);
	CHECK_INT(u->cache_write_tokens, cw);
	CHECK_INT(u->reasoning_tokens, rs);
}

/* Hands a framer's events to a family: ctx is {family, usage}. */
static void family_event(void *ctx, const char *name, size_t nl, const char *d, size_t dl)
{
	const struct provider_family *f = ((void **)ctx)[0];

	f->event(((void **)ctx)[1], name, nl, d, dl);
}

/* Frames a JSON-array body and gives each element to the family. */
static void json_events(const struct provider_family *f, struct usage *u, const char *body)
{
	struct jsonarray_parser p;
	void *ctx[2];

	ctx[0] = (void *)f;
	ctx[1] = u;
	jsonarray_parser_init(&p, 0, family_event, ctx);
	jsonarray_parser_feed(&p, body, strlen(body));
	jsonarray_parser_finish(&p);
	jsonarray_parser_release(&p);
}

static void test_gemini_match(void)
{
	struct provider_match m;

	CHECK(provider_match("generativelanguage.googleapis.com", 443,
			     "/v1beta/models/gemini-2.5-flash:generateContent", &m));
	CHECK_STR(m.name, "gcp.gemini");
	CHECK_STR(m.api, "generateContent");
	CHECK(provider_match("us-central1-aiplatform.googleapis.com", 443,
			     "/v1/projects/p/locations/us-central1/publishers/google/models/"
			     "gemini-2.5-pro:streamGenerateContent?alt=sse",
			     &m));
	CHECK_STR(m.name, "gcp.vertex_ai");
	CHECK_STR(m.api, "streamGenerateContent");
	CHECK(provider_match("aiplatform.googleapis.com", 443,
			     "/v1/projects/p/locations/global/publishers/google/models/x:countTokens",
			     &m));
	CHECK_STR(m.name, "gcp.vertex_ai");
	CHECK(provider_match("generativelanguage.googleapis.com", 443,
			     "/v1beta/models/gemini-embedding-001:batchEmbedContents", &m));
	CHECK_STR(m.api, "batchEmbedContents");
	/* The OpenAI-compatible endpoints on the same hosts keep their provider's name. */
	CHECK(provider_match("generativelanguage.googleapis.com", 443,
			     "/v1beta/openai/chat/completions", &m));
	CHECK_STR(m.name, "gcp.gemini");
	CHECK_STR(m.api, "chat.completions");
	CHECK(provider_match("us-central1-aiplatform.googleapis.com", 443,
			     "/v1/projects/p/locations/us-central1/endpoints/openapi/chat/completions",
			     &m));
	CHECK_STR(m.name, "gcp.vertex_ai");
	CHECK_STR(m.api, "chat.completions");
	CHECK(provider_match("api.cohere.com", 443, "/compatibility/v1/chat/completions", &m));
	CHECK_STR(m.name, "cohere");
	CHECK(provider_match("bedrock-runtime.us-west-2.amazonaws.com", 443,
			     "/openai/v1/chat/completions", &m));
	CHECK_STR(m.name, "aws.bedrock");
	CHECK_STR(m.api, "chat.completions");
	/* Listing models, files, and a look-alike host are not LLM calls. */
	CHECK(!provider_match("generativelanguage.googleapis.com", 443, "/v1beta/models", &m));
	CHECK(!provider_match("generativelanguage.googleapis.com", 443,
			      "/v1beta/models/gemini-2.5-flash", &m));
	CHECK(!provider_match("xaiplatform.googleapis.com", 443,
			      "/v1/models/gemini-2.5-flash:generateContent", &m));
	CHECK(!provider_match("generativelanguage.googleapis.com", 443,
			      "/v1beta/models/a:generateContentX", &m));
}

static void test_gemini_stream_cumulative(void)
{
	/* usageMetadata in two chunks: the last is the call's usage, not the sum. */
	static const char body[] =
		"[{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}]}}],"
		"\"usageMetadata\": {\"promptTokenCount\": 100, \"totalTokenCount\": 100},"
		"\"modelVersion\": \"gemini-2.5-pro\"}\n,\r\n"
		"{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"lo\"}]},"
		"\"finishReason\": \"STOP\"}],\"usageMetadata\": {\"promptTokenCount\": 100,"
		"\"cachedContentTokenCount\": 64, \"toolUsePromptTokenCount\": 7,"
		"\"candidatesTokenCount\": 20, \"thoughtsTokenCount\": 30, \"totalTokenCount\": 157},"
		"\"modelVersion\": \"gemini-2.5-pro\"}\n]";
	struct usage u;
	struct provider_match m;
	const struct provider_family *f;
	struct http_head h;
	static const char *const ct[] = {"Content-Type", "application/json; charset=UTF-8", NULL};

	f = start(&u, &m, "us-central1-aiplatform.googleapis.com",
		  "/v1/projects/my-proj/locations/us-central1/publishers/google/models/"
		  "gemini-2.5-pro:streamGenerateContent",
		  "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"Hello\"}]}]}");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	CHECK_STR(u.model_requested, "gemini-2.5-pro");
	CHECK_INT(u.stream, 1);
	CHECK_INT(u.request_text_bytes, 5);
	make_head(&h, 200, ct);
	CHECK_INT(f->response(&u, &h), PROVIDER_FRAMING_JSON_ARRAY);
	json_events(f, &u, body);
	usage_finish(&u, 200, 1);
	check_tokens(&u, 107, 50, 64, 0, 30);
	CHECK_STR(u.model, "gemini-2.5-pro");
	CHECK_INT(u.output_text_bytes, 5);
	CHECK_INT(u.estimated, 0);
	/* generateContent is not a stream: no framing asked for. */
	f = start(&u, &m, "generativelanguage.googleapis.com",
		  "/v1beta/models/gemini-2.5-flash:generateContent", "{}");
	CHECK_INT(f->response(&u, &h), PROVIDER_FRAMING_AUTO);
}

static void test_gemini_errors_and_free_calls(void)
{
	static const struct {
		int status;
		const char *gstatus, *want;
	} cases[] = {
		{429, "RESOURCE_EXHAUSTED", "rate_limit"},
		{503, "UNAVAILABLE", "overloaded"},
		{401, "UNAUTHENTICATED", "auth"},
		{403, "PERMISSION_DENIED", "auth"},
		{400, "INVALID_ARGUMENT", "invalid_request"},
		{500, "INTERNAL", "server"},
	};
	struct usage u;
	struct provider_match m;
	const struct provider_family *f;
	char body[512];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		f = start(&u, &m, "generativelanguage.googleapis.com",
			  "/v1beta/models/gemini-2.5-flash:generateContent", "{}");
		snprintf(body, sizeof body,
			 "{\n  \"error\": {\n    \"code\": %d,\n    \"message\": \"m%d\",\n    "
			 "\"status\": \"%s\"\n  }\n}\n",
			 cases[i].status, cases[i].status, cases[i].gstatus);
		f->body(&u, cases[i].status, body, strlen(body));
		usage_finish(&u, cases[i].status, 1);
		CHECK_STR(u.error, cases[i].want);
		CHECK_INT(u.estimated, 0);
	}
	/* An error inside the JSON-array stream. */
	f = start(&u, &m, "generativelanguage.googleapis.com",
		  "/v1beta/models/gemini-2.5-flash:streamGenerateContent", "{}");
	json_events(f, &u, "[{\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\","
			   " \"status\": \"UNAVAILABLE\"}}]");
	CHECK_STR(u.error, "overloaded");
	CHECK_STR(u.error_message, "The model is overloaded.");
	/* embedContent: no usage in the answer, tokens estimated from the request text. */
	f = start(&u, &m, "generativelanguage.googleapis.com",
		  "/v1beta/models/gemini-embedding-001:embedContent",
		  "{\"model\": \"models/gemini-embedding-001\", \"content\": {\"parts\": "
		  "[{\"text\": \"What is the meaning of life?\"}]}}");
	f->body(&u, 200, "{\"embedding\": {\"values\": [0.1, -0.2]}}", 38);
	usage_finish(&u, 200, 1);
	check_tokens(&u, 7, 0, 0, 0, 0); /* 28 bytes / 4 */
	CHECK_INT(u.estimated, 1);
	CHECK_STR(u.model, "gemini-embedding-001");
	/* batchEmbedContents counts every request's text. */
	f = start(&u, &m, "generativelanguage.googleapis.com",
		  "/v1beta/models/gemini-embedding-001:batchEmbedContents",
		  "{\"requests\": [{\"model\": \"models/gemini-embedding-001\", \"content\": "
		  "{\"parts\": [{\"text\": \"abcdefgh\"}]}}, {\"model\": \"models/gemini-embedding-001\","
		  " \"content\": {\"parts\": [{\"text\": \"ijklm\"}]}}]}");
	f->body(&u, 200, "{\"embeddings\": [{\"values\": [1]}, {\"values\": [2]}]}", 50);
	usage_finish(&u, 200, 1);
	check_tokens(&u, 4, 0, 0, 0, 0); /* 13 bytes */
	CHECK_INT(u.estimated, 1);
	/* countTokens: not billed, no tokens. */
	f = start(&u, &m, "generativelanguage.googleapis.com",
		  "/v1beta/models/gemini-2.5-flash:countTokens",
		  "{\"contents\": [{\"parts\": [{\"text\": \"count me\"}]}]}");
	f->body(&u, 200, "{\"totalTokens\": 3, \"promptTokensDetails\": []}", 45);
	usage_finish(&u, 200, 1);
	CHECK_INT(u.not_billed, 1);
	CHECK_INT(u.estimated, 0);
	check_tokens(&u, 0, 0, 0, 0, 0);
	CHECK_STR(u.api, "countTokens");
}

static void test_cohere(void)
{
	struct usage u;
	struct provider_match m;
	const struct provider_family *f;
	const char *b;

	/* v1 chat: meta.tokens wins over meta.billed_units. */
	f = start(&u, &m, "api.cohere.com", "/v1/chat",
		  "{\"model\": \"command-r-plus\", \"message\": \"Hello there\"}");
	CHECK(f != NULL);
	CHECK_STR(m.name, "cohere");
	CHECK_STR(u.api, "chat");
	b = "{\"response_id\": \"r\", \"text\": \"Hi!\", \"generation_id\": \"g\", \"finish_reason\": "
	    "\"COMPLETE\", \"meta\": {\"api_version\": {\"version\": \"1\"}, \"billed_units\": "
	    "{\"input_tokens\": 3, \"output_tokens\": 2}, \"tokens\": {\"input_tokens\": 69, "
	    "\"output_tokens\": 2}}}";
	f->body(&u, 200, b, strlen(b));
	usage_finish(&u, 200, 1);
	check_tokens(&u, 69, 2, 0, 0, 0);
	CHECK_STR(u.model, "command-r-plus");
	/* v1 chat with billed_units alone. */
	f = start(&u, &m, "api.cohere.ai", "/v1/chat", "{\"model\": \"command-r\"}");
	b = "{\"text\": \"x\", \"meta\": {\"billed_units\": {\"input_tokens\": 11, \"output_tokens\": 5}}}";
	f->body(&u, 200, b, strlen(b));
	check_tokens(&u, 11, 5, 0, 0, 0);
	/* v1 stream: NDJSON, stream-end holds the response and its meta. */
	f = start(&u, &m, "api.cohere.com", "/v1/chat",
		  "{\"model\": \"command-r\", \"message\": \"Hi\", \"stream\": true}");
	CHECK_INT(u.stream, 1);
	b = "{\"is_finished\":false,\"event_type\":\"stream-start\",\"generation_id\":\"g\"}";
	f->event(&u, NULL, 0, b, strlen(b));
	b = "{\"is_finished\":false,\"event_type\":\"text-generation\",\"text\":\"Hello\"}";
	f->event(&u, NULL, 0, b, strlen(b));
	b = "{\"is_finished\":true,\"event_type\":\"stream-end\",\"response\":{\"text\":\"Hello\","
	    "\"meta\":{\"billed_units\":{\"input_tokens\":2,\"output_tokens\":1},\"tokens\":"
	    "{\"input_tokens\":68,\"output_tokens\":1}}},\"finish_reason\":\"COMPLETE\"}";
	f->event(&u, NULL, 0, b, strlen(b));
	usage_finish(&u, 200, 1);
	check_tokens(&u, 68, 1, 0, 0, 0);
	CHECK_INT(u.output_text_bytes, 5);
	/* v2 stream: message-end's delta.usage, with cached tokens. */
	f = start(&u, &m, "api.cohere.com", "/v2/chat",
		  "{\"model\": \"command-a-03-2025\", \"stream\": true, \"messages\": [{\"role\": "
		  "\"user\", \"content\": \"Hi\"}]}");
	b = "{\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":"
	    "\"Hey\"}}}}";
	f->event(&u, "content-delta", 13, b, strlen(b));
	b = "{\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":"
	    "{\"billed_units\":{\"input_tokens\":5,\"output_tokens\":3},\"tokens\":{\"input_tokens\":"
	    "600,\"output_tokens\":3},\"cached_tokens\":512}}}";
	f->event(&u, "message-end", 11, b, strlen(b));
	usage_finish(&u, 200, 1);
	check_tokens(&u, 600, 3, 512, 0, 0);
	CHECK_INT(u.output_text_bytes, 3);
	CHECK_INT(u.request_text_bytes, 2);
	/* embed: billed_units only. */
	f = start(&u, &m, "api.cohere.com", "/v2/embed",
		  "{\"model\": \"embed-v4.0\", \"texts\": [\"hello\", \"world\"], \"input_type\": "
		  "\"search_document\"}");
	CHECK_STR(u.api, "embed");
	b = "{\"id\":\"e\",\"embeddings\":{\"float\":[[0.1],[0.2]]},\"texts\":[\"hello\",\"world\"],"
	    "\"meta\":{\"api_version\":{\"version\":\"2\"},\"billed_units\":{\"input_tokens\":2}}}";
	f->body(&u, 200, b, strlen(b));
	usage_finish(&u, 200, 1);
	check_tokens(&u, 2, 0, 0, 0, 0);
	CHECK_INT(u.estimated, 0);
	/* An error: the type from the status, the message from the body. */
	f = start(&u, &m, "api.cohere.com", "/v2/chat", "{\"model\": \"command-a-03-2025\"}");
	b = "{\"id\":\"x\",\"message\":\"You are using a Trial key, which is limited to 10 API calls "
	    "/ minute.\"}";
	f->body(&u, 429, b, strlen(b));
	usage_finish(&u, 429, 1);
	CHECK_STR(u.error, "rate_limit");
	CHECK(strncmp(u.error_message, "You are using a Trial key", 25) == 0);
	CHECK(!provider_match("api.cohere.com", 443, "/v1/models", &m));
	CHECK(!provider_match("api.cohere.com", 443, "/v2/rerank", &m));
}

static void test_bedrock_paths(void)
{
	struct usage u;
	struct provider_match m;
	const struct provider_family *f;

	f = start(&u, &m, "bedrock-runtime.us-east-1.amazonaws.com",
		  "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream",
		  "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hi\"}]}],"
		  "\"system\":[{\"text\":\"Be brief\"}]}");
	CHECK(f != NULL);
	CHECK_STR(m.name, "aws.bedrock");
	CHECK_STR(u.api, "converse-stream");
	CHECK_STR(u.model_requested, "us.anthropic.claude-sonnet-4-5-20250929-v1:0");
	CHECK_INT(u.stream, 1);
	CHECK_INT(u.request_text_bytes, 10);
	f = start(&u, &m, "bedrock-runtime.eu-west-1.amazonaws.com",
		  "/model/arn%3aaws%3abedrock%3aeu-west-1%3a1%3ainference-profile%2Feu.x/invoke",
		  "{}");
	CHECK_STR(u.api, "invoke");
	CHECK_STR(u.model_requested, "arn:aws:bedrock:eu-west-1:1:inference-profile/eu.x");
	CHECK_INT(u.stream, 0);
	/* A bad escape is kept as it is. */
	f = start(&u, &m, "bedrock-runtime.us-east-1.amazonaws.com", "/model/a%zz%4/invoke", "{}");
	CHECK_STR(u.model_requested, "a%zz%4");
	CHECK(!provider_match("bedrock-runtime.us-east-1.amazonaws.com", 443, "/model//converse",
			      &m));
	CHECK(!provider_match("bedrock-runtime.us-east-1.amazonaws.com", 443,
			      "/model/x/converse/extra", &m));
	CHECK(!provider_match("bedrock.us-east-1.amazonaws.com", 443, "/foundation-models", &m));
	CHECK(!provider_match("s3.amazonaws.com", 443, "/bucket/key", &m));
}

static void test_bedrock_invoke_headers_win(void)
{
	static const char *const hdrs[] = {
		"Content-Type", "application/json",
		"X-Amzn-Bedrock-Input-Token-Count", "12",
		"X-Amzn-Bedrock-Output-Token-Count", "7",
		"X-Amzn-Bedrock-Cache-Read-Input-Token-Count", "100",
		"X-Amzn-Bedrock-Cache-Write-Input-Token-Count", "20",
		NULL};
	static const char body[] =
		"{\"id\":\"msg_bdrk_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
		"\"claude-sonnet-4-5-20250929\",\"content\":[{\"type\":\"text\",\"text\":\"Hello\"}],"
		"\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":999,\"output_tokens\":999,"
		"\"cache_read_input_tokens\":0,\"cache_creation_input_tokens\":0}}";
	struct usage u;
	struct provider_match m;
	const struct provider_family *f;
	struct http_head h;

	f = start(&u, &m, "bedrock-runtime.us-east-1.amazonaws.com",
		  "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke",
		  "{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":64,\"messages\":"
		  "[{\"role\":\"user\",\"content\":\"Hi\"}]}");
	make_head(&h, 200, hdrs);
	CHECK_INT(f->response(&u, &h), PROVIDER_FRAMING_AUTO);
	f->body(&u, 200, body, strlen(body));
	usage_finish(&u, 200, 1);
	check_tokens(&u, 132, 7, 100, 20, 0);
	CHECK_STR(u.model, "claude-sonnet-4-5-20250929");
	/* Without the headers the body's Anthropic usage is read. */
	f = start(&u, &m, "bedrock-runtime.us-east-1.amazonaws.com",
		  "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke", "{}");
	make_head(&h, 200, hdrs); /* only the first header */
	h.nheaders = 1;
	f->response(&u, &h);
	f->body(&u, 200, body, strlen(body));
	check_tokens(&u, 999, 999, 0, 0, 0);
}

static void test_bedrock_errors(void)
{
	static const char *const throttle[] = {
		"x-amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
		NULL};
	static const char *const denied[] = {"x-amzn-ErrorType", "AccessDeniedException", NULL};
	struct usage u;
	struct provider_match m;
	const struct provider_family *f;
	struct http_head h;
	const char *b = "{\"message\":\"Too many requests, please wait before trying again.\"}";

	f = start(&u, &m, "bedrock-runtime.us-east-1.amazonaws.com", "/model/m/converse", "{}");
	make_head(&h, 429, throttle);
	f->response(&u, &h);
	f->body(&u, 429, b, strlen(b));
	usage_finish(&u, 429, 1);
	CHECK_STR(u.error, "rate_limit");
	CHECK_STR(u.error_message, "Too many requests, please wait before trying again.");
	/* The header's type beats the status's (a 400 that is an auth failure). */
	f = start(&u, &m, "bedrock-runtime.us-east-1.amazonaws.com", "/model/m/invoke", "{}");
	make_head(&h, 400, denied);
	f->response(&u, &h);
	f->body(&u, 400, "{\"message\":\"no\"}", 16);
	usage_finish(&u, 400, 1);
	CHECK_STR(u.error, "auth");
	/* A stream exception. */
	f = start(&u, &m, "bedrock-runtime.us-east-1.amazonaws.com", "/model/m/converse-stream",
		  "{}");
	f->event(&u, "serviceUnavailableException", 27, "{\"message\":\"busy\"}", 18);
	CHECK_STR(u.error, "overloaded");
	f->event(&u, "somethingNewException", 21, "{\"message\":\"?\"}", 15);
	CHECK_STR(u.error, "server");
}

static void test_bedrock_invoke_stream(void)
{
	/* base64 of Anthropic events, the last with Bedrock's invocation metrics. */
	static const char *const chunks[] = {
		/* {"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929",
		 *  "usage":{"input_tokens":9,"output_tokens":1}}} */
		"eyJ0eXBlIjoibWVzc2FnZV9zdGFydCIsIm1lc3NhZ2UiOnsibW9kZWwiOiJjbGF1ZGUtc29ubmV0LTQtNS0y"
		"MDI1MDkyOSIsInVzYWdlIjp7ImlucHV0X3Rva2VucyI6OSwib3V0cHV0X3Rva2VucyI6MX19fQ==",
		/* {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}} */
		"eyJ0eXBlIjoiY29udGVudF9ibG9ja19kZWx0YSIsImluZGV4IjowLCJkZWx0YSI6eyJ0eXBlIjoidGV4dF9k"
		"ZWx0YSIsInRleHQiOiJIaSJ9fQ==",
		/* {"type":"message_delta","usage":{"output_tokens":4}} */
		"eyJ0eXBlIjoibWVzc2FnZV9kZWx0YSIsInVzYWdlIjp7Im91dHB1dF90b2tlbnMiOjR9fQ==",
		/* {"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":9,
		 *  "outputTokenCount":5,"invocationLatency":1,"firstByteLatency":1,
		 *  "cacheReadInputTokenCount":30}} */
		"eyJ0eXBlIjoibWVzc2FnZV9zdG9wIiwiYW1hem9uLWJlZHJvY2staW52b2NhdGlvbk1ldHJpY3MiOnsiaW5w"
		"dXRUb2tlbkNvdW50Ijo5LCJvdXRwdXRUb2tlbkNvdW50Ijo1LCJpbnZvY2F0aW9uTGF0ZW5jeSI6MSwiZmly"
		"c3RCeXRlTGF0ZW5jeSI6MSwiY2FjaGVSZWFkSW5wdXRUb2tlbkNvdW50IjozMH19",
	};
	struct usage u;
	struct provider_match m;
	const struct provider_family *f;
	char payload[512];
	size_t i;

	f = start(&u, &m, "bedrock-runtime.us-west-2.amazonaws.com",
		  "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream",
		  "{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":64,\"messages\":[]}");
	for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
		snprintf(payload, sizeof payload, "{\"bytes\":\"%s\",\"p\":\"abcdef\"}", chunks[i]);
		f->event(&u, "chunk", 5, payload, strlen(payload));
		if (i == 2)
			check_tokens(&u, 9, 4, 0, 0, 0); /* Anthropic's own counts so far */
	}
	usage_finish(&u, 200, 1);
	check_tokens(&u, 39, 5, 30, 0, 0); /* Bedrock's metrics win */
	CHECK_STR(u.model, "claude-sonnet-4-5-20250929");
	CHECK_INT(u.output_text_bytes, 2);
	/* A chunk that is not base64 is skipped. */
	f->event(&u, "chunk", 5, "{\"bytes\":\"!!!\"}", 15);
	check_tokens(&u, 39, 5, 30, 0, 0);
}

/* Cohere's billed units ride beside the tokens: the recorded fixture, v1 meta, v2 stream,
 * embed. */
static void test_cohere_billed_units(void)
{
	struct usage u;
	struct provider_match m;
	const struct provider_family *f;
	const char *b;
	char path[1024];
	size_t n = 0;
	char *body;

	snprintf(path, sizeof path, "%s/cohere_v2_chat_cached.body", check_fixtures_dir());
	body = check_read_file(path, &n);
	CHECK(body != NULL);
	f = start(&u, &m, "api.cohere.com", "/v2/chat", "{\"model\": \"command-r7b-12-2024\"}");
	if (body != NULL)
		f->body(&u, 200, body, n);
	free(body);
	usage_finish(&u, 200, 1);
	check_tokens(&u, 2935, 4, 2928, 0, 0);
	CHECK_INT(u.have_billed_units, 1);
	CHECK_INT(u.billed_input_tokens, 2406);
	CHECK_INT(u.billed_output_tokens, 2);
	/* v1 meta. */
	f = start(&u, &m, "api.cohere.com", "/v1/chat", "{\"model\": \"command-r-plus\"}");
	b = "{\"text\": \"Hi!\", \"meta\": {\"billed_units\": {\"input_tokens\": 3, \"output_tokens\": "
	    "2}, \"tokens\": {\"input_tokens\": 69, \"output_tokens\": 2}}}";
	f->body(&u, 200, b, strlen(b));
	check_tokens(&u, 69, 2, 0, 0, 0);
	CHECK_INT(u.billed_input_tokens, 3);
	CHECK_INT(u.billed_output_tokens, 2);
	/* v2 stream: message-end. */
	f = start(&u, &m, "api.cohere.com", "/v2/chat", "{\"model\": \"command-r\", \"stream\": true}");
	b = "{\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":"
	    "{\"billed_units\":{\"input_tokens\":5,\"output_tokens\":3},\"tokens\":{\"input_tokens\":"
	    "600,\"output_tokens\":3},\"cached_tokens\":512}}}";
	f->event(&u, "message-end", 11, b, strlen(b));
	CHECK_INT(u.have_billed_units, 1);
	CHECK_INT(u.billed_input_tokens, 5);
	CHECK_INT(u.billed_output_tokens, 3);
	/* embed: billed_units alone are both the tokens and the billed units. */
	f = start(&u, &m, "api.cohere.com", "/v2/embed", "{\"model\": \"embed-v4.0\"}");
	b = "{\"meta\":{\"billed_units\":{\"input_tokens\":2}}}";
	f->body(&u, 200, b, strlen(b));
	check_tokens(&u, 2, 0, 0, 0, 0);
	CHECK_INT(u.billed_input_tokens, 2);
	CHECK_INT(u.billed_output_tokens, 0);
	CHECK_INT(u.have_billed_units, 1);
	/* tokens alone: no billed units. */
	f = start(&u, &m, "api.cohere.com", "/v2/chat", "{\"model\": \"command-r\"}");
	b = "{\"usage\":{\"tokens\":{\"input_tokens\":7,\"output_tokens\":1}}}";
	f->body(&u, 200, b, strlen(b));
	check_tokens(&u, 7, 1, 0, 0, 0);
	CHECK_INT(u.have_billed_units, 0);
}

/* Vertex AI :predict of the text embedding models: the predictions' token counts. */
static void test_vertex_predict(void)
{
	static const char models[] =
		"/v1/projects/p/locations/us-central1/publishers/google/models/";
	char path[256];
	struct usage u;
	struct provider_match m;
	const struct provider_family *f;
	const char *b;

	snprintf(path, sizeof path, "%stext-embedding-005:predict", models);
	f = start(&u, &m, "us-central1-aiplatform.googleapis.com", path,
		  "{\"instances\":[{\"content\":\"What is life?\",\"task_type\":\"RETRIEVAL_QUERY\"},"
		  "{\"content\":\"Tokens.\"}]}");
	CHECK(f != NULL);
	CHECK_STR(m.name, "gcp.vertex_ai");
	CHECK_STR(u.api, "predict");
	CHECK_STR(u.model_requested, "text-embedding-005");
	CHECK_INT(u.request_text_bytes, 20);
	b = "{\"predictions\":[{\"embeddings\":{\"statistics\":{\"truncated\":false,\"token_count\":4},"
	    "\"values\":[0.1,-0.2]}},{\"embeddings\":{\"statistics\":{\"truncated\":false,"
	    "\"token_count\":3},\"values\":[0.3]}}],\"metadata\":{\"billableCharacterCount\":18}}";
	f->body(&u, 200, b, strlen(b));
	usage_finish(&u, 200, 1);
	check_tokens(&u, 7, 0, 0, 0, 0);
	CHECK_INT(u.estimated, 0);
	CHECK_STR(u.model, "text-embedding-005");
	/* No statistics: estimated from the instances' text, ceil(20 / 4). */
	f = start(&u, &m, "us-central1-aiplatform.googleapis.com", path,
		  "{\"instances\":[{\"content\":\"What is life?\"},{\"content\":\"Tokens.\"}]}");
	b = "{\"predictions\":[{\"embeddings\":{\"values\":[0.1]}}]}";
	f->body(&u, 200, b, strlen(b));
	usage_finish(&u, 200, 1);
	check_tokens(&u, 5, 0, 0, 0, 0);
	CHECK_INT(u.estimated, 1);
	/* Only under …/models/: an endpoint's own deployed model is not an LLM call. */
	CHECK(!provider_match("us-central1-aiplatform.googleapis.com", 443,
			      "/v1/projects/p/locations/us-central1/endpoints/123:predict", &m));
	CHECK(provider_match("generativelanguage.googleapis.com", 443,
			     "/v1beta/models/gemini-embedding-001:predict", &m));
	CHECK_STR(m.api, "predict");
}

/* Bedrock invoke bodies of Llama, Titan (text, embeddings) and Mistral without Bedrock's
 * token-count headers. */
static void test_bedrock_vendor_bodies(void)
{
	static const char *const no_counts[] = {"Content-Type", "application/json", NULL};
	static const struct {
		const char *model, *req, *body;
		long long in, out;
		int estimated;
	} cases[] = {
		{"meta.llama3-1-70b-instruct-v1%3A0", "{\"prompt\":\"Say hi.\",\"max_gen_len\":32}",
		 "{\"generation\":\" Hi there!\",\"prompt_token_count\":17,\"generation_token_count\":"
		 "5,\"stop_reason\":\"stop\"}",
		 17, 5, 0},
		{"amazon.titan-text-express-v1", "{\"inputText\":\"Say hi.\"}",
		 "{\"inputTextTokenCount\":4,\"results\":[{\"tokenCount\":6,\"outputText\":\"Hello!\","
		 "\"completionReason\":\"FINISH\"},{\"tokenCount\":2,\"outputText\":\"Hi\"}]}",
		 4, 8, 0},
		{"amazon.titan-embed-text-v2%3A0", "{\"inputText\":\"embed me please\"}",
		 "{\"embedding\":[0.1,0.2],\"embeddingsByType\":{\"float\":[0.1,0.2]},"
		 "\"inputTextTokenCount\":5}",
		 5, 0, 0},
		/* Mistral sends no counts: ceil(27 / 4) in, ceil(10 / 4) out. */
		{"mistral.mistral-7b-instruct-v0%3A2", "{\"prompt\":\"<s>[INST] Say hi. [/INST]\"}",
		 "{\"outputs\":[{\"text\":\"Hello you!\",\"stop_reason\":\"stop\"}]}", 7, 3, 1},
		{"mistral.mistral-large-2407-v1%3A0",
		 "{\"messages\":[{\"role\":\"user\",\"content\":\"Say hi.\"}]}",
		 "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
		 "{\"role\":\"assistant\",\"content\":\"Hello you!\"},\"stop_reason\":\"stop\"}]}",
		 2, 3, 1},
	};
	char path[256];
	struct usage u;
	struct provider_match m;
	const struct provider_family *f;
	struct http_head h;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(path, sizeof path, "/model/%s/invoke", cases[i].model);
		f = start(&u, &m, "bedrock-runtime.us-east-1.amazonaws.com", path, cases[i].req);
		CHECK(f != NULL);
		make_head(&h, 200, no_counts);
		f->response(&u, &h);
		f->body(&u, 200, cases[i].body, strlen(cases[i].body));
		usage_finish(&u, 200, 1);
		check_tokens(&u, cases[i].in, cases[i].out, 0, 0, 0);
		CHECK_INT(u.estimated, cases[i].estimated);
	}
}

/* Converse's cacheDetails: the one-hour part of the cache writes. */
static void test_bedrock_converse_cache_ttl(void)
{
	struct usage u;
	struct provider_match m;
	const struct provider_family *f;
	char path[1024];
	size_t n = 0;
	char *body;
	const char *b;

	snprintf(path, sizeof path, "%s/bedrock_converse_cache_write.body", check_fixtures_dir());
	body = check_read_file(path, &n);
	CHECK(body != NULL);
	f = start(&u, &m, "bedrock-runtime.us-east-1.amazonaws.com",
		  "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse", "{}");
	if (body != NULL)
		f->body(&u, 200, body, n);
	free(body);
	check_tokens(&u, 1324, 5, 0, 1322, 0);
	CHECK_INT(u.cache_write_1h_tokens, 0); /* its cacheDetails say ttl 5m */
	f = start(&u, &m, "bedrock-runtime.us-east-1.amazonaws.com",
		  "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse", "{}");
	b = "{\"usage\":{\"inputTokens\":2,\"outputTokens\":5,\"cacheReadInputTokens\":0,"
	    "\"cacheWriteInputTokens\":1500,\"cacheDetails\":[{\"inputTokens\":1200,\"ttl\":\"1h\"},"
	    "{\"inputTokens\":300,\"ttl\":\"5m\"}],\"totalTokens\":1507}}";
	f->body(&u, 200, b, strlen(b));
	check_tokens(&u, 1502, 5, 0, 1500, 0);
	CHECK_INT(u.cache_write_1h_tokens, 1200);
}

int main(void)
{
	RUN(test_eventstream_splits);
	RUN(test_eventstream_corrupt);
	RUN(test_eventstream_oversize);
	RUN(test_eventstream_exception);
	RUN(test_jsonarray_splits);
	RUN(test_jsonarray_shapes);
	RUN(test_gemini_match);
	RUN(test_gemini_stream_cumulative);
	RUN(test_gemini_errors_and_free_calls);
	RUN(test_cohere);
	RUN(test_bedrock_paths);
	RUN(test_bedrock_invoke_headers_win);
	RUN(test_bedrock_errors);
	RUN(test_bedrock_invoke_stream);
	RUN(test_cohere_billed_units);
	RUN(test_vertex_predict);
	RUN(test_bedrock_vendor_bodies);
	RUN(test_bedrock_converse_cache_ttl);
	CHECK_DONE();
}
