/*
 * test_cli_format.c - unit tests of the CLI's library code: exact money and time formatting,
 * JSON string escaping, time parsing for --since/--until, and the reassembly of recorded
 * streams (the shared fixtures) that `tokshim show` prints.
 */
#include "analyzer/exchange.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"

#include "tests/unit/check.h"

/* Captures what a FILE-writing formatter prints. */
static char *capture(void (*fn)(FILE *, const void *), const void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fn(f, arg);
	fclose(f);
	return buf;
}

static void test_pusd(void)
{
	char out[FMT_PUSD_MAX];

	fmt_pusd(out, 0);
	CHECK_STR(out, "0");
	fmt_pusd(out, 1140000000);
	CHECK_STR(out, "0.00114");
	fmt_pusd(out, 2500000000000);
	CHECK_STR(out, "2.5");
	fmt_pusd(out, 1);
	CHECK_STR(out, "0.000000000001");
	fmt_pusd(out, 17420000000);
	CHECK_STR(out, "0.01742");
	fmt_pusd(out, 3000000000000);
	CHECK_STR(out, "3");
	fmt_pusd(out, -1500000000);
	CHECK_STR(out, "-0.0015");
	fmt_pusd(out, INT64_MAX);
	CHECK_STR(out, "9223372.036854775807");
	fmt_pusd(out, INT64_MIN);
	CHECK_STR(out, "-9223372.036854775808");
}

static void test_usd_human(void)
{
	char out[FMT_HUMAN_MAX];

	fmt_usd_human(out, 0);
	CHECK_STR(out, "$0");
	fmt_usd_human(out, 3450000000000);
	CHECK_STR(out, "$3.45");
	fmt_usd_human(out, 3454999999999);
	CHECK_STR(out, "$3.45");
	fmt_usd_human(out, 3455000000000);
	CHECK_STR(out, "$3.46");
	fmt_usd_human(out, 10050000000);
	CHECK_STR(out, "$0.01");
	fmt_usd_human(out, 1140000000);
	CHECK_STR(out, "$0.0011");
	fmt_usd_human(out, 7250000000);
	CHECK_STR(out, "$0.0073");
	fmt_usd_human(out, 120000000);
	CHECK_STR(out, "$0.00012");
	fmt_usd_human(out, 9999000000);
	CHECK_STR(out, "$0.01");
	fmt_usd_human(out, 1);
	CHECK_STR(out, "$0.000000000001");
	fmt_usd_human(out, -3450000000000);
	CHECK_STR(out, "-$3.45");
	fmt_usd_human(out, 123456789000000000);
	CHECK_STR(out, "$123456.79");
}

static void test_count_human(void)
{
	char out[FMT_HUMAN_MAX];

	fmt_count_human(out, 0);
	CHECK_STR(out, "0");
	fmt_count_human(out, 999);
	CHECK_STR(out, "999");
	fmt_count_human(out, 1000);
	CHECK_STR(out, "1.0k");
	fmt_count_human(out, 1234);
	CHECK_STR(out, "1.2k");
	fmt_count_human(out, 1250000);
	CHECK_STR(out, "1.3M");
	fmt_count_human(out, 99949);
	CHECK_STR(out, "99.9k");
	fmt_count_human(out, 99950);
	CHECK_STR(out, "100k");
	fmt_count_human(out, 999499);
	CHECK_STR(out, "999k");
	fmt_count_human(out, 999500);
	CHECK_STR(out, "1.0M");
	fmt_count_human(out, 123456789);
	CHECK_STR(out, "123M");
	fmt_count_human(out, 3400000000);
	CHECK_STR(out, "3.4B");
	fmt_count_human(out, INT64_C(5600000000000));
	CHECK_STR(out, "5.6T");
	fmt_count_human(out, -1500);
	CHECK_STR(out, "-1.5k");
}

static void test_time(void)
{
	char out[FMT_TIME_MAX], ms[FMT_MS_MAX];

	fmt_rfc3339(out, INT64_C(1795581000123456789));
	CHECK_STR(out, "2026-11-25T04:30:00.123456Z");
	fmt_rfc3339(out, 0);
	CHECK_STR(out, "1970-01-01T00:00:00.000000Z");
	fmt_rfc3339(out, -1);
	CHECK_STR(out, "1969-12-31T23:59:59.999999Z");
	fmt_time_short(out, INT64_C(1795581000123456789));
	CHECK_STR(out, "2026-11-25 04:30:00");
	fmt_ms(ms, 1234567);
	CHECK_STR(ms, "1234.567");
	fmt_ms(ms, 5);
	CHECK_STR(ms, "0.005");
	fmt_ms(ms, -1000);
	CHECK_STR(ms, "-1.000");
}

struct strarg {
	const char *p;
	size_t n;
};

static void json_string_of(FILE *f, const void *arg)
{
	const struct strarg *s = arg;

	fmt_json_string(f, s->p, s->n);
}

static void test_json_string(void)
{
	static const struct {
		const char *in;
		size_t n;
		const char *want;
	} cases[] = {
		{ "plain", 5, "\"plain\"" },
		{ "q\"b\\", 4, "\"q\\\"b\\\\\"" },
		{ "a\nb\tc\r\x01", 7, "\"a\\nb\\tc\\r\\u0001\"" },
		{ "caf\xc3\xa9 \xe2\x80\xa6", 9, "\"caf\xc3\xa9 \xe2\x80\xa6\"" },
		{ "bad\xff!", 5, "\"bad\\ufffd!\"" },
		{ "cut\xe2\x80", 5, "\"cut\\ufffd\\ufffd\"" },
		{ "over\xc0\xaf", 6, "\"over\\ufffd\\ufffd\"" },
		{ "sur\xed\xa0\x80", 6, "\"sur\\ufffd\\ufffd\\ufffd\"" },
		{ "nul\0x", 5, "\"nul\\u0000x\"" },
		{ "", 0, "\"\"" },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct strarg a = { cases[i].in, cases[i].n };
		char *got = capture(json_string_of, &a);

		CHECK_STR(got, cases[i].want);
		free(got);
	}
}

static void jw_sample(FILE *f, const void *arg)
{
	struct jw w;

	jw_init(&w, f, *(const int *)arg);
	jw_object_begin(&w);
	jw_key(&w, "a");
	jw_int(&w, -3);
	jw_key(&w, "b");
	jw_object_begin(&w);
	jw_object_end(&w);
	jw_key(&w, "c");
	jw_object_begin(&w);
	jw_key(&w, "d");
	jw_pusd(&w, 1140000000);
	jw_key(&w, "e");
	jw_str_or_null(&w, "", 0);
	jw_object_end(&w);
	jw_key(&w, "f");
	jw_bool(&w, 1);
	jw_object_end(&w);
}

static void test_json_writer(void)
{
	int pretty = 0;
	char *got = capture(jw_sample, &pretty);

	CHECK_STR(got, "{\"a\":-3,\"b\":{},\"c\":{\"d\":0.00114,\"e\":null},\"f\":true}");
	free(got);
	pretty = 1;
	got = capture(jw_sample, &pretty);
	CHECK_STR(got, "{\n  \"a\": -3,\n  \"b\": {},\n  \"c\": {\n    \"d\": 0.00114,\n"
		       "    \"e\": null\n  },\n  \"f\": true\n}\n");
	free(got);
}

static void test_parse_time(void)
{
	const int64_t now = INT64_C(1795581000) * 1000000000; /* 2026-11-25T04:30:00Z */
	int64_t t = 0;

	CHECK_INT(filter_parse_time("2026-11-25T04:30:00Z", now, 0, &t), 0);
	CHECK_INT(t, now);
	CHECK_INT(filter_parse_time("2026-11-25t04:30:00.25z", now, 0, &t), 0);
	CHECK_INT(t, now + 250000000);
	CHECK_INT(filter_parse_time("2026-11-25T06:30:00+02:00", now, 0, &t), 0);
	CHECK_INT(t, now);
	CHECK_INT(filter_parse_time("2026-11-24T23:30:00-0500", now, 0, &t), 0);
	CHECK_INT(t, now);
	CHECK_INT(filter_parse_time("2026-11-25 04:30", now, 0, &t), 0);
	CHECK_INT(t, now);
	CHECK_INT(filter_parse_time("2026-11-25", now, 0, &t), 0);
	CHECK_INT(t, now - INT64_C(16200) * 1000000000);
	CHECK_INT(filter_parse_time("2026-11-25", now, 1, &t), 0);
	CHECK_INT(t, now + INT64_C(70200) * 1000000000);
	CHECK_INT(filter_parse_time("2026-12-31", now, 1, &t), 0); /* the day after is 2027-01-01 */
	CHECK_INT(t, INT64_C(1798761600) * 1000000000);
	CHECK_INT(filter_parse_time("24h", now, 0, &t), 0);
	CHECK_INT(t, now - INT64_C(86400) * 1000000000);
	CHECK_INT(filter_parse_time("7d", now, 0, &t), 0);
	CHECK_INT(t, now - INT64_C(604800) * 1000000000);
	CHECK_INT(filter_parse_time("30m", now, 0, &t), 0);
	CHECK_INT(t, now - INT64_C(1800) * 1000000000);
	CHECK_INT(filter_parse_time("2w", now, 0, &t), 0);
	CHECK_INT(filter_parse_time("now", now, 0, &t), 0);
	CHECK_INT(t, now);
	CHECK_INT(filter_parse_time("", now, 0, &t), -1);
	CHECK_INT(filter_parse_time("h", now, 0, &t), -1);
	CHECK_INT(filter_parse_time("24", now, 0, &t), -1);
	CHECK_INT(filter_parse_time("24hours", now, 0, &t), -1);
	CHECK_INT(filter_parse_time("-5m", now, 0, &t), -1);
	CHECK_INT(filter_parse_time("99999999999d", now, 0, &t), -1);
	CHECK_INT(filter_parse_time("2026-13-01", now, 0, &t), -1);
	CHECK_INT(filter_parse_time("2026-11-25T24:00:00Z", now, 0, &t), -1);
	CHECK_INT(filter_parse_time("2026-11-25T04:30:00.Z", now, 0, &t), -1);
	CHECK_INT(filter_parse_time("2026-11-25T04:30:00Zjunk", now, 0, &t), -1);
	CHECK_INT(filter_parse_time("2026-11-25X", now, 0, &t), -1);
	CHECK_INT(filter_parse_time("yesterday", now, 0, &t), -1);
}

static void test_filter_args(void)
{
	char *argv[] = { "records", "--agent", "a*", "--agent=b", "--since=2026-11-25",
			 "--locality", "local", "--db", "x.mdb", "--format", "jsonl", NULL };
	char err[256];
	struct filter f;
	int i, m, consumed = 0;

	filter_init(&f);
	for (i = 1; i < 11; i++) {
		m = filter_parse_arg(&f, 11, argv, &i, 0, err, sizeof err);
		CHECK(m >= 0);
		consumed += m;
		if (m == 0) {
			CHECK_STR(argv[i], "--format");
			i++;
		}
	}
	CHECK_INT(consumed, 5);
	CHECK_INT(f.agent.n, 2);
	CHECK_STR(f.agent.v[1], "b");
	CHECK_INT(f.locality, 1);
	CHECK_INT(f.ndb, 1);
	CHECK_INT(f.since_ns, INT64_C(1795564800) * 1000000000);
	{
		char *bad[] = { "report", "--until", NULL };

		i = 1;
		CHECK_INT(filter_parse_arg(&f, 2, bad, &i, 0, err, sizeof err), -1);
		CHECK_STR(err, "option '--until' needs a value");
	}
}

static void test_filter_match(void)
{
	struct record r;
	struct filter f;

	memset(&r, 0, sizeof r);
	r.agent = record_str_of("alice");
	r.model = record_str_of("gpt-4o-2024-08-06");
	r.model_requested = record_str_of("gpt-4o");
	r.ts_ns = 100;
	filter_init(&f);
	CHECK(filter_match(&f, &r));
	f.model.v[f.model.n++] = "gpt-4o";
	CHECK(filter_match(&f, &r));
	f.locality = 1;
	CHECK(!filter_match(&f, &r));
	r.flags |= RECORD_LOCAL;
	CHECK(filter_match(&f, &r));
	f.tenant.v[f.tenant.n++] = "acme";
	CHECK(!filter_match(&f, &r)); /* an empty tenant matches no tenant filter */
	f.tenant.v[f.tenant.n++] = "";
	CHECK(filter_match(&f, &r));
	f.until_ns = 100;
	CHECK(!filter_match(&f, &r));
}

static void test_record_dup(void)
{
	struct record r, *c;

	memset(&r, 0, sizeof r);
	r.id = 7;
	r.agent = record_str_of("alice");
	r.error_message = record_str_of("too many");
	c = filter_record_dup(&r);
	CHECK(c != NULL);
	if (c) {
		CHECK_INT(c->id, 7);
		CHECK_MEM(c->agent.p, c->agent.n, "alice");
		CHECK_MEM(c->error_message.p, c->error_message.n, "too many");
		CHECK(c->agent.p != r.agent.p);
		CHECK_INT(c->model.n, 0);
	}
	filter_record_free(c);
}

/* Reassembles a shared fixture body; NULL when the fixture is not there. */
static char *fixture(const char *name, size_t *len)
{
	char path[1024];

	snprintf(path, sizeof path, "%s/%s", check_fixtures_dir(), name);
	return check_read_file(path, len);
}

static void test_reassemble_openai_toolcall(void)
{
	struct stream_summary s;
	size_t len = 0;
	char *body = fixture("openai_chat_stream_include_usage_toolcall.body", &len);
	const cJSON *v;

	CHECK(body != NULL);
	if (body == NULL)
		return;
	{
		const char *head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; "
				   "charset=utf-8\r\n\r\n";

		CHECK_INT(exchange_stream_kind(head, strlen(head), body, len), EXCHANGE_SSE);
	}
	CHECK_INT(exchange_reassemble(EXCHANGE_SSE, body, len, &s), 0);
	CHECK_INT(s.text.len, 0); /* a tool call: no text */
	CHECK_INT(s.ntools, 1);
	CHECK_STR(s.tools[0].name.p, "get_capital");
	CHECK_STR(s.tools[0].args.p, "{\"country\":\"UK\"}");
	v = cJSON_GetObjectItemCaseSensitive(s.usage, "prompt_tokens");
	CHECK(cJSON_IsNumber(v) && v->valuedouble == 53);
	v = cJSON_GetObjectItemCaseSensitive(s.usage, "completion_tokens");
	CHECK(cJSON_IsNumber(v) && v->valuedouble == 15);
	CHECK_INT(s.not_json, 0);
	CHECK(s.events > 2);
	stream_summary_release(&s);
	free(body);
}

static void test_reassemble_gemini(void)
{
	struct stream_summary s;
	size_t len = 0;
	char *body = fixture("gemini_stream_generate_content_single_chunk.body", &len);
	const cJSON *v;

	CHECK(body != NULL);
	if (body == NULL)
		return;
	/* No head stored: the body's "data:" says SSE. */
	CHECK_INT(exchange_stream_kind(NULL, 0, body, len), EXCHANGE_SSE);
	CHECK_INT(exchange_reassemble(EXCHANGE_SSE, body, len, &s), 0);
	CHECK_STR(s.text.p, "The capital of France is **Paris**.");
	CHECK_INT(s.events, 1);
	v = cJSON_GetObjectItemCaseSensitive(s.usage, "thoughtsTokenCount");
	CHECK(cJSON_IsNumber(v) && v->valuedouble == 16);
	stream_summary_release(&s);
	free(body);
}

static void test_reassemble_inline(void)
{
	static const char responses[] =
		"event: response.output_text.delta\n"
		"data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hel\"}\n\n"
		"event: response.output_text.delta\n"
		"data: {\"type\":\"response.output_text.delta\",\"delta\":\"lo\"}\n\n"
		"data: not json\n\n"
		"event: response.completed\n"
		"data: {\"type\":\"response.completed\",\"response\":{\"usage\":"
		"{\"input_tokens\":32,\"output_tokens\":8}}}\n\n";
	static const char generate[] = "{\"response\":\"a\",\"done\":false}\r\n"
				       "\n"
				       "{\"response\":\"b\",\"done\":true,\"eval_count\":2}";
	static const char nd_head[] = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson";
	static const char json_head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n";
	struct stream_summary s;
	const cJSON *v;

	CHECK_INT(exchange_reassemble(EXCHANGE_SSE, responses, sizeof responses - 1, &s), 0);
	CHECK_STR(s.text.p, "Hello");
	CHECK_INT(s.events, 4);
	CHECK_INT(s.not_json, 1);
	v = cJSON_GetObjectItemCaseSensitive(s.usage, "output_tokens");
	CHECK(cJSON_IsNumber(v) && v->valuedouble == 8);
	stream_summary_release(&s);

	/* A head stored without its final blank line. */
	CHECK_INT(exchange_stream_kind(nd_head, strlen(nd_head), generate, sizeof generate - 1),
		  EXCHANGE_NDJSON);
	CHECK_INT(exchange_reassemble(EXCHANGE_NDJSON, generate, sizeof generate - 1, &s), 0);
	CHECK_STR(s.text.p, "ab");
	CHECK_INT(s.events, 2);
	v = cJSON_GetObjectItemCaseSensitive(s.usage, "eval_count");
	CHECK(cJSON_IsNumber(v) && v->valuedouble == 2);
	stream_summary_release(&s);

	CHECK_INT(exchange_stream_kind(json_head, strlen(json_head), "data: x", 7), EXCHANGE_BODY);
}

static void test_reassemble_tools(void)
{
	static const char anthropic[] =
		"event: content_block_start\n"
		"data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
		"{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"get_weather\",\"input\":{}}}\n\n"
		"event: content_block_delta\n"
		"data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
		"{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \"}}\n\n"
		"event: content_block_delta\n"
		"data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
		"{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\n";
	static const char responses[] =
		"data: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":"
		"{\"type\":\"function_call\",\"name\":\"lookup\",\"arguments\":\"\"}}\n\n"
		"data: {\"type\":\"response.function_call_arguments.delta\",\"output_index\":0,"
		"\"delta\":\"{\\\"q\\\":1}\"}\n\n";
	static const char ollama[] =
		"{\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":"
		"{\"name\":\"add\",\"arguments\":{\"a\":1,\"b\":2}}}]},\"done\":false}\n";
	struct stream_summary s;

	CHECK_INT(exchange_reassemble(EXCHANGE_SSE, anthropic, sizeof anthropic - 1, &s), 0);
	CHECK_INT(s.ntools, 1);
	CHECK_STR(s.tools[0].name.p, "get_weather");
	CHECK_STR(s.tools[0].args.p, "{\"city\": \"Paris\"}");
	stream_summary_release(&s);
	CHECK_INT(exchange_reassemble(EXCHANGE_SSE, responses, sizeof responses - 1, &s), 0);
	CHECK_INT(s.ntools, 1);
	CHECK_STR(s.tools[0].name.p, "lookup");
	CHECK_STR(s.tools[0].args.p, "{\"q\":1}");
	stream_summary_release(&s);
	CHECK_INT(exchange_reassemble(EXCHANGE_NDJSON, ollama, sizeof ollama - 1, &s), 0);
	CHECK_INT(s.ntools, 1);
	CHECK_STR(s.tools[0].name.p, "add");
	CHECK_STR(s.tools[0].args.p, "{\"a\":1,\"b\":2}");
	stream_summary_release(&s);
}

static void test_table(void)
{
	static const struct table_col cols[] = { { "NAME", 0, 1, 4 }, { "N", 1, 0, 0 } };
	const char *row1[] = { "short", "1" }, *row2[] = { "a-much-longer-name", "12345" };
	struct table t;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	table_init(&t, cols, 2, 1);
	CHECK_INT(table_add(&t, row1), 0);
	CHECK_INT(table_add(&t, row2), 0);
	table_print(&t, f, 16, NULL, NULL);
	table_release(&t);
	fclose(f);
	/* 16 columns: the name column is cut to 9 cells, "…" included. */
	CHECK_STR(buf, "NAME           N\n"
		       "short          1\n"
		       "a-much-l…  12345\n");
	free(buf);
}

int main(void)
{
	RUN(test_pusd);
	RUN(test_usd_human);
	RUN(test_count_human);
	RUN(test_time);
	RUN(test_json_string);
	RUN(test_json_writer);
	RUN(test_parse_time);
	RUN(test_filter_args);
	RUN(test_filter_match);
	RUN(test_record_dup);
	RUN(test_reassemble_openai_toolcall);
	RUN(test_reassemble_gemini);
	RUN(test_reassemble_inline);
	RUN(test_reassemble_tools);
	RUN(test_table);
	CHECK_DONE();
}
