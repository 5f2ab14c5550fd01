/*
 * test_stream.c - SSE and NDJSON framing (http/stream.c).
 *
 * Events are written to a log as name{data}; (name "-" when absent) so a case states its whole
 * expected sequence in one string, and the same input fed whole, a byte at a time and in seeded
 * random splits must give that string. Memory bounds are checked on the parsers' capacity
 * fields, which is what an agent's memory would see. The recorded provider streams in the
 * fixtures folder are framed too, with their exact event counts and last events.
 */
#include "http/http.h"
#include "http/stream.h"
#include "tests/unit/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct events {
	char *log;
	size_t len, cap;
	int keep_log;
	uint64_t count;
	char *last;       /* the last event's data (malloc'd) */
	size_t last_len;
	char last_name[32];
	size_t last_name_len;
};

static void events_append(struct events *e, const char *s, size_t n)
{
	if (e->len + n + 1 > e->cap) {
		e->cap = (e->len + n + 1) * 2;
		e->log = realloc(e->log, e->cap);
		if (e->log == NULL)
			exit(2);
	}
	memcpy(e->log + e->len, s, n);
	e->len += n;
	e->log[e->len] = '\0';
}

static void on_event(void *ctx, const char *name, size_t name_len, const char *data,
		     size_t data_len)
{
	struct events *e = ctx;

	e->count++;
	if (e->keep_log) {
		if (name)
			events_append(e, name, name_len);
		else
			events_append(e, "-", 1);
		events_append(e, "{", 1);
		events_append(e, data, data_len);
		events_append(e, "};", 2);
	}
	free(e->last);
	e->last = malloc(data_len + 1);
	memcpy(e->last, data, data_len);
	e->last_len = data_len;
	e->last_name_len = name_len < sizeof(e->last_name) ? name_len : sizeof(e->last_name);
	if (name)
		memcpy(e->last_name, name, e->last_name_len);
}

static void events_free(struct events *e)
{
	free(e->log);
	free(e->last);
	memset(e, 0, sizeof(*e));
}

static uint64_t prng_state = 0x6a09e667f3bcc908ull;

/* Piece sizes: split 0 whole, 1 a byte at a time, else random 1..97. */
static size_t piece_size(int split, size_t left)
{
	size_t n = left;

	if (split == 1) {
		n = 1;
	} else if (split > 1) {
		prng_state ^= prng_state << 13;
		prng_state ^= prng_state >> 7;
		prng_state ^= prng_state << 17;
		n = 1 + (size_t)(prng_state % 97);
	}
	return n < left ? n : left;
}

enum framing { SSE, NDJSON };

/* Frames in[0..n) split as asked, finishes, and leaves the events in e. */
static void frame_split(enum framing f, const char *in, size_t n, int split, size_t max_event,
			struct events *e, uint64_t *dropped)
{
	struct sse_parser sp;
	struct ndjson_parser np;
	size_t pos = 0, take;

	memset(e, 0, sizeof(*e));
	e->keep_log = 1;
	sse_parser_init(&sp, max_event, on_event, e);
	ndjson_parser_init(&np, max_event, on_event, e);
	while (pos < n) {
		take = piece_size(split, n - pos);
		if (f == SSE)
			CHECK_INT(sse_parser_feed(&sp, in + pos, take), 0);
		else
			CHECK_INT(ndjson_parser_feed(&np, in + pos, take), 0);
		pos += take;
	}
	if (f == SSE) {
		sse_parser_finish(&sp);
		*dropped = sp.dropped;
		CHECK_INT(sp.events, e->count);
	} else {
		ndjson_parser_finish(&np);
		*dropped = np.dropped;
		CHECK_INT(np.events, e->count);
	}
	sse_parser_release(&sp);
	ndjson_parser_release(&np);
}

/* Every split of the input gives the log want (and drops the same number of events). */
static void check_framing(enum framing f, const char *in, size_t n, size_t max_event,
			  const char *want, uint64_t want_dropped)
{
	struct events e;
	uint64_t dropped;
	int split;

	for (split = 0; split < 30; split++) {
		frame_split(f, in, n, split, max_event, &e, &dropped);
		if (strcmp(e.log ? e.log : "", want) != 0) {
			fprintf(stderr, "split %d: log \"%s\"\n want \"%s\"\n", split,
				e.log ? e.log : "", want);
			check_case_failed = 1;
		}
		CHECK_INT(dropped, want_dropped);
		events_free(&e);
	}
}

/* Rewrites every LF of s as eol (a fresh malloc'd string). */
static char *with_eol(const char *s, const char *eol, size_t *len)
{
	size_t n = strlen(s), el = strlen(eol), i, o = 0;
	char *out = malloc(n * el + 1);

	for (i = 0; i < n; i++) {
		if (s[i] == '\n') {
			memcpy(out + o, eol, el);
			o += el;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	*len = o;
	return out;
}

/* ---- SSE ---- */

static const char sse_fields_in[] =
	": a comment\n"
	"data: a\n"
	"data:b\n"
	"data:  c\n"
	"\n"
	"event: update\n"
	"data: {\"x\":1}\n"
	"id: 7\n"
	"retry: 100\n"
	"unknown: zz\n"
	"\n"
	"event: only-name\n"
	"\n"
	"data\n"
	"\n"
	"data:\n"
	"data:\n"
	"\n"
	"event: first\n"
	"event:\n"
	"data: x\n"
	"\n"
	"dataa: no\n"
	":data: no\n"
	"\n"
	"event: e2\n"
	"data: y\n"
	"\n\n\n"
	"data: z\n"
	"\n"
	"data: tail without its blank line\n";
static const char sse_fields_want[] =
	"-{a\nb\n c};update{{\"x\":1}};-{};-{\n};-{x};e2{y};-{z};";

static void test_sse_fields(void)
{
	check_framing(SSE, sse_fields_in, sizeof(sse_fields_in) - 1, 0, sse_fields_want, 0);
}

static void test_sse_crlf_and_cr(void)
{
	size_t n;
	char *in = with_eol(sse_fields_in, "\r\n", &n);

	check_framing(SSE, in, n, 0, sse_fields_want, 0);
	free(in);
	in = with_eol(sse_fields_in, "\r", &n);
	check_framing(SSE, in, n, 0, sse_fields_want, 0);
	free(in);
	/* Mixed: CR then LF is one line end, LF then CR is two. */
	check_framing(SSE, "data: a\r\ndata: b\rdata: c\n\r", 26, 0, "-{a\nb\nc};", 0);
	check_framing(SSE, "data: a\r\r\ndata: b\n\r\n", 20, 0, "-{a};-{b};", 0);
}

static void test_sse_bom(void)
{
	check_framing(SSE, "\xef\xbb\xbf" "data: a\n\n", 12, 0, "-{a};", 0);
	check_framing(SSE, "\xef\xbb\xbf\n" "data: a\n\n", 13, 0, "-{a};", 0);
	/* Only at the very start: later, the bytes are part of a field name. */
	check_framing(SSE, "data: a\n\n\xef\xbb\xbf" "data: b\n\n", 21, 0, "-{a};", 0);
	check_framing(SSE, "\xef\xbb\xbf\xef\xbb\xbf" "data: b\n\n", 15, 0, "", 0);
	/* Bytes that start like a BOM and are not one are kept. */
	check_framing(SSE, "\xef\xbb" "data: a\n\n" "data: b\n\n", 20, 0, "-{b};", 0);
	check_framing(SSE, "\xef:c\n" "data: a\n\n", 13, 0, "-{a};", 0);
	check_framing(SSE, "d\xef\xbb\xbf" "ata: a\n\n", 12, 0, "", 0);
}

/* A 200 KiB event (OpenAI's response.completed is this kind) comes through whole. */
static void test_sse_large_event(void)
{
	size_t big = 200 * 1024, n, i;
	char *in = malloc(big + 64), *want = malloc(big + 64);
	struct events e;
	uint64_t dropped;
	int split;

	n = (size_t)sprintf(in, "event: response.completed\ndata: ");
	for (i = 0; i < big; i++)
		in[n + i] = want[i] = (char)('a' + i % 26);
	n += big;
	n += (size_t)sprintf(in + n, "\n\ndata: [DONE]\n\n");
	for (split = 0; split < 4; split++) {
		frame_split(SSE, in, n, split, 0, &e, &dropped);
		CHECK_INT(e.count, 2);
		CHECK_INT(dropped, 0);
		CHECK(e.log != NULL && strncmp(e.log, "response.completed{abc", 22) == 0);
		CHECK_INT(e.len, 18 + 1 + big + 2 + 10);
		CHECK(e.log != NULL && memcmp(e.log + 19, want, big) == 0);
		CHECK_MEM(e.last, e.last_len, "[DONE]");
		events_free(&e);
	}
	free(in);
	free(want);
}

/* After a large event the buffer is given back; small events keep a small one. */
static void test_sse_buffer_shrinks(void)
{
	struct sse_parser p;
	struct events e = { 0 };
	char line[100 * 1024];

	memset(line, 'x', sizeof(line));
	sse_parser_init(&p, 0, on_event, &e);
	CHECK_INT(sse_parser_feed(&p, "data: ", 6), 0);
	CHECK_INT(sse_parser_feed(&p, line, sizeof(line)), 0);
	CHECK(p.data_cap >= sizeof(line));
	CHECK_INT(sse_parser_feed(&p, "\n\n", 2), 0);
	CHECK_INT(e.count, 1);
	CHECK_INT(e.last_len, sizeof(line));
	CHECK_INT(p.data_cap, 0);
	CHECK_INT(sse_parser_feed(&p, "data: small\n\n", 13), 0);
	CHECK_INT(p.data_cap, 256);
	CHECK_MEM(e.last, e.last_len, "small");
	sse_parser_release(&p);
	CHECK(p.data == NULL && p.name == NULL);
	events_free(&e);
}

static void test_sse_oversize_dropped(void)
{
	size_t n = 0, i;
	char *in = malloc(64 * 1024);
	struct sse_parser p;
	struct events e = { 0 };

	/* one 5000-byte data line, then 20 lines of 100 bytes, then a huge name, then a small one */
	n += (size_t)sprintf(in + n, "data: ");
	memset(in + n, 'q', 5000);
	n += 5000;
	n += (size_t)sprintf(in + n, "\n\n");
	for (i = 0; i < 20; i++) {
		n += (size_t)sprintf(in + n, "data: ");
		memset(in + n, 'r', 100);
		n += 100;
		in[n++] = '\n';
	}
	in[n++] = '\n';
	n += (size_t)sprintf(in + n, "event: ");
	memset(in + n, 'n', 2000);
	n += 2000;
	n += (size_t)sprintf(in + n, "\ndata: x\n\n");
	n += (size_t)sprintf(in + n, "data: fits\n\n");
	check_framing(SSE, in, n, 1024, "-{fits};", 3);
	/* While an event is over the cap, the buffers do not grow past it. */
	sse_parser_init(&p, 1024, on_event, &e);
	for (i = 0; i < n; i += 100) {
		CHECK_INT(sse_parser_feed(&p, in + i, n - i < 100 ? n - i : 100), 0);
		CHECK(p.data_cap <= 1024);
		CHECK(p.name_cap <= 1024);
	}
	CHECK_INT(p.dropped, 3);
	CHECK_INT(p.events, 1);
	sse_parser_release(&p);
	events_free(&e);
	free(in);
}

/* An endless event (10 MiB of data lines, no blank line) keeps memory at the cap. */
static void test_sse_endless_event(void)
{
	struct sse_parser p;
	struct events e = { 0 };
	char chunk[4096];
	size_t fed = 0, max = 1u << 20;

	memset(chunk, 'z', sizeof(chunk));
	memcpy(chunk, "data: ", 6);
	chunk[sizeof(chunk) - 1] = '\n';
	sse_parser_init(&p, max, on_event, &e);
	while (fed < (10u << 20)) {
		CHECK_INT(sse_parser_feed(&p, chunk, sizeof(chunk)), 0);
		fed += sizeof(chunk);
	}
	CHECK(p.data_cap <= max);
	CHECK(p.data_cap >= max / 2);
	CHECK_INT(p.event_oversize, 1);
	CHECK_INT(sse_parser_feed(&p, "\ndata: after\n\n", 14), 0);
	CHECK_INT(p.dropped, 1);
	CHECK_INT(p.events, 1);
	CHECK_MEM(e.last, e.last_len, "after");
	CHECK(p.data_cap <= 256);
	sse_parser_release(&p);
	events_free(&e);
}

/* A million tiny events: all delivered, and the buffers never grow past their first size. */
static void test_sse_million_events(void)
{
	static const char ev[] = "event: delta\ndata: x\n\n";
	size_t per = sizeof(ev) - 1, total = 1000000 * per, i, pos;
	char *in = malloc(total);
	struct sse_parser p;
	struct events e = { 0 };
	size_t max_data_cap = 0, max_name_cap = 0;

	for (i = 0; i < 1000000; i++)
		memcpy(in + i * per, ev, per);
	sse_parser_init(&p, 0, on_event, &e);
	for (pos = 0; pos < total; pos += 4093) {
		CHECK_INT(sse_parser_feed(&p, in + pos, total - pos < 4093 ? total - pos : 4093), 0);
		if (p.data_cap > max_data_cap)
			max_data_cap = p.data_cap;
		if (p.name_cap > max_name_cap)
			max_name_cap = p.name_cap;
	}
	sse_parser_finish(&p);
	CHECK_INT(p.events, 1000000);
	CHECK_INT(e.count, 1000000);
	CHECK_INT(p.dropped, 0);
	CHECK_INT(max_data_cap, 256);
	CHECK_INT(max_name_cap, 256);
	CHECK_MEM(e.last, e.last_len, "x");
	CHECK_MEM(e.last_name, e.last_name_len, "delta");
	sse_parser_release(&p);
	events_free(&e);
	free(in);
}

/* finish drops an event without its blank line; the parser can go on after it. */
static void test_sse_finish(void)
{
	struct sse_parser p;
	struct events e = { 0 };

	sse_parser_init(&p, 0, on_event, &e);
	CHECK_INT(sse_parser_feed(&p, "event: a\ndata: cut", 18), 0);
	sse_parser_finish(&p);
	CHECK_INT(e.count, 0);
	CHECK_INT(sse_parser_feed(&p, "data: next\n\n", 12), 0);
	CHECK_INT(e.count, 1);
	CHECK_MEM(e.last, e.last_len, "next");
	CHECK_INT(e.last_name_len, 0);
	sse_parser_release(&p);
	sse_parser_release(&p);
	events_free(&e);
}

/* Frames a recorded body split as asked; its events are left in e, its length in *n.
 * Returns 0 when the fixture cannot be read (a failed check). */
static int frame_fixture(enum framing f, const char *name, int split, struct events *e,
			 size_t *n)
{
	char path[1024], *in;
	uint64_t dropped;

	snprintf(path, sizeof(path), "%s/%s", check_fixtures_dir(), name);
	in = check_read_file(path, n);
	CHECK(in != NULL);
	if (in == NULL)
		return 0;
	frame_split(f, in, *n, split, 0, e, &dropped);
	CHECK_INT(dropped, 0);
	free(in);
	return 1;
}

static void test_fixture_openai_chat_stream(void)
{
	static const char first[] = "-{{\"id\":\"chatcmpl-Dx0XpqH8w09uBXwq1zFGYdETjtnEl\",";
	struct events e;
	size_t n;
	int split;

	for (split = 0; split < 5; split++) {
		if (!frame_fixture(SSE, "openai_chat_stream_include_usage_toolcall.body", split, &e,
				   &n))
			return;
		CHECK_INT(e.count, 9);
		CHECK_MEM(e.last, e.last_len, "[DONE]");
		/* the usage chunk is the one before [DONE] */
		CHECK(e.log != NULL &&
		      strstr(e.log, "\"choices\":[],\"usage\":{\"prompt_tokens\":53,"
				    "\"completion_tokens\":15,\"total_tokens\":68,") != NULL);
		CHECK(e.log != NULL && strncmp(e.log, first, sizeof(first) - 1) == 0);
		events_free(&e);
	}
}

static void test_fixture_gemini_stream(void)
{
	struct events e;
	size_t n;
	int split;

	for (split = 0; split < 5; split++) {
		if (!frame_fixture(SSE, "gemini_stream_generate_content_single_chunk.body", split,
				   &e, &n))
			return;
		CHECK_INT(e.count, 1);
		CHECK_MEM(e.last, e.last_len,
			  "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The capital of "
			  "France is **Paris**.\"}],\"role\": \"model\"},\"finishReason\": \"STOP\","
			  "\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 15,"
			  "\"candidatesTokenCount\": 8,\"totalTokenCount\": 39,\"promptTokensDetails\": "
			  "[{\"modality\": \"TEXT\",\"tokenCount\": 15}],\"thoughtsTokenCount\": 16},"
			  "\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": "
			  "\"ezh8aaKTCYSnqtsP-qXkqQI\"}");
		events_free(&e);
	}
}

/* ---- NDJSON ---- */

static void test_ndjson_lines(void)
{
	static const char in[] = "{\"a\":1}\n\r\n{\"b\":2}\r\n   \n\n{\"c\":\"x\ry\"}\n{\"d\":4}";

	check_framing(NDJSON, in, sizeof(in) - 1, 0,
		      "-{{\"a\":1}};-{{\"b\":2}};-{{\"c\":\"x\ry\"}};-{{\"d\":4}};", 0);
	check_framing(NDJSON, "", 0, 0, "", 0);
	check_framing(NDJSON, "\n\n\r\n", 4, 0, "", 0);
	check_framing(NDJSON, "last\r", 5, 0, "-{last};", 0);
}

static void test_ndjson_oversize(void)
{
	size_t n = 0;
	char in[8192], want[2048];
	struct ndjson_parser p;
	struct events e = { 0 };
	size_t i;

	memset(in, 'w', 3000);
	n = 3000;
	n += (size_t)sprintf(in + n, "\n{\"ok\":1}\n");
	memset(in + n, 'v', 1025);
	n += 1025;
	n += (size_t)sprintf(in + n, "\r\n");
	memset(in + n, 'u', 1024);
	n += 1024;
	n += (size_t)sprintf(in + n, "\r\n");
	memset(in + n, 't', 2000); /* the last, unterminated, also too long */
	n += 2000;
	memcpy(want, "-{{\"ok\":1}};-{", 14);
	memset(want + 14, 'u', 1024);
	memcpy(want + 14 + 1024, "};", 3);
	check_framing(NDJSON, in, n, 1024, want, 3);
	ndjson_parser_init(&p, 1024, on_event, &e);
	for (i = 0; i < n; i += 10) {
		CHECK_INT(ndjson_parser_feed(&p, in + i, n - i < 10 ? n - i : 10), 0);
		CHECK(p.line_cap <= 1025);
	}
	ndjson_parser_finish(&p);
	CHECK_INT(p.events, 2);
	CHECK_INT(p.dropped, 3);
	CHECK_INT(e.last_len, 1024);
	ndjson_parser_release(&p);
	CHECK(p.line == NULL);
	events_free(&e);
}

static void test_fixture_ollama_ndjson(void)
{
	struct events e;
	size_t n;
	int split;

	for (split = 0; split < 5; split++) {
		if (!frame_fixture(NDJSON, "ollama_chat_nonstream.body", split, &e, &n))
			return;
		CHECK_INT(e.count, 1); /* one line without its newline, delivered at finish */
		CHECK_INT(e.last_len, n);
		CHECK(e.last_len > 20 && memcmp(e.last + e.last_len - 20, "uration\":1135413666}",
						20) == 0);
		events_free(&e);
	}
}

int main(void)
{
	RUN(test_sse_fields);
	RUN(test_sse_crlf_and_cr);
	RUN(test_sse_bom);
	RUN(test_sse_large_event);
	RUN(test_sse_buffer_shrinks);
	RUN(test_sse_oversize_dropped);
	RUN(test_sse_endless_event);
	RUN(test_sse_million_events);
	RUN(test_sse_finish);
	RUN(test_fixture_openai_chat_stream);
	RUN(test_fixture_gemini_stream);
	RUN(test_ndjson_lines);
	RUN(test_ndjson_oversize);
	RUN(test_fixture_ollama_ndjson);
	CHECK_DONE();
}
