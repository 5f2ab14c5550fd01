/*
 * test_pjson_nomem.c - the providers' JSON reader running out of memory, and what the capture
 * makes of it: the exchange is dropped and counted as out of memory, never recorded with
 * estimated tokens as if the body had been bad JSON.
 *
 * Memory is made to run out for real: RLIMIT_AS is set a few MiB above what the process has
 * mapped, and the JSON holds one string larger than that, which pjson_read must copy into a
 * block of its own. Everything smaller still succeeds, so only the reader's big block fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "capture/capture.h"
#include "providers/pjson.h"

#include "capture_sink.h"
#include "check.h"

#ifdef __SANITIZE_ADDRESS__
/* Under ASan a failed allocation aborts unless told to return NULL, as libc's does (exported:
 * the runtime looks the function up). */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}
#endif

/* Room above the mapped size: the reader's first block (1 MiB) and the capture's own buffers
 * fit, the big string (BIG) does not. */
#define HEADROOM (8u << 20)
#define BIG (12u << 20)

static struct rlimit saved_as;

/* Bytes of address space mapped now (/proc/self/statm's first field), 0 when unknown. */
static size_t mapped_now(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%lu", &pages) != 1)
		pages = 0;
	fclose(f);
	return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static int cap_memory(void)
{
	size_t now = mapped_now();
	struct rlimit lim;

	if (now == 0 || getrlimit(RLIMIT_AS, &saved_as) != 0)
		return -1;
	lim = saved_as;
	lim.rlim_cur = now + HEADROOM;
	return setrlimit(RLIMIT_AS, &lim);
}

static void uncap_memory(void)
{
	setrlimit(RLIMIT_AS, &saved_as);
}

/* `{"s":"xxx…"}` with a string of n bytes, NUL-terminated. */
static char *big_json(const char *prefix, size_t n, const char *suffix)
{
	size_t pn = strlen(prefix), sn = strlen(suffix);
	char *p = malloc(pn + n + sn + 1);

	memcpy(p, prefix, pn);
	memset(p + pn, 'x', n);
	memcpy(p + pn + n, suffix, sn + 1);
	return p;
}

static void test_read_nomem(void)
{
	char *json = big_json("{\"s\":\"", BIG, "\"}");
	size_t len = strlen(json);
	cJSON *root;

	/* Read whole when memory is there: the flag stays clear. */
	pjson_nomem_take();
	root = pjson_read(json, len, NULL);
	CHECK(root != NULL);
	CHECK_INT(strlen(pjson_str(root, "s")), BIG);
	pjson_free(root);
	CHECK_INT(pjson_nomem_take(), 0);
	/* Bad JSON is NULL without the flag. */
	CHECK(pjson_read("{\"s\":", 5, NULL) == NULL);
	CHECK_INT(pjson_nomem_take(), 0);
	/* The string's block cannot be had: NULL, and the flag says why, once. */
	CHECK_INT(cap_memory(), 0);
	root = pjson_read(json, len, NULL);
	uncap_memory();
	CHECK(root == NULL);
	CHECK_INT(pjson_nomem_take(), 1);
	CHECK_INT(pjson_nomem_take(), 0);
	/* A later read that succeeds does not clear or raise it. */
	root = pjson_read("{\"a\":1}", 7, NULL);
	CHECK(root != NULL);
	pjson_free(root);
	CHECK_INT(pjson_nomem_take(), 0);
	free(json);
}

static int drops[CAPTURE_DROP_N];

static void count_drop(enum capture_drop reason)
{
	drops[reason]++;
}

static struct capture_config config = {
	.process = "test", .agent = "agent-a", .agent_type = "", .tenant = "t1",
	.session = "s1", .local_hosts = NULL, .mode = CAPTURE_FULL, .body_cap = 1 << 20,
	.pid = 42, .drop = count_drop,
};

static const char request[] =
	"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
	"Content-Type: application/json\r\nContent-Length: 58\r\n\r\n"
	"{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[]}       ";
static const char response_head[] =
	"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
static const char usage_event[] =
	"data: {\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],\"usage\":"
	"{\"prompt_tokens\":11,\"completion_tokens\":13,\"total_tokens\":24}}\n\n"
	"data: [DONE]\n\n";

/* A streamed OpenAI call whose first event holds a BIG-byte content string, then the usage
 * event. When capped, the memory cap is on for the big event's last bytes, which end it and
 * hand it to the provider: the stream's own buffer has grown to hold it before. */
static void stream_call(struct sink *s, const char *big_event, int capped)
{
	struct capture_conn *c = capture_conn_new(&config, NULL, 0, 1, on_emit, s);
	size_t n = strlen(big_event);

	memset(s, 0, sizeof(*s));
	memset(drops, 0, sizeof(drops));
	capture_conn_feed(c, CAPTURE_OUT, request, strlen(request));
	capture_conn_feed(c, CAPTURE_IN, response_head, strlen(response_head));
	capture_conn_feed(c, CAPTURE_IN, big_event, n - 64);
	if (capped)
		CHECK_INT(cap_memory(), 0);
	capture_conn_feed(c, CAPTURE_IN, big_event + n - 64, 64);
	if (capped)
		uncap_memory();
	capture_conn_feed(c, CAPTURE_IN, usage_event, strlen(usage_event));
	capture_conn_eof(c);
	capture_conn_free(c);
}

static void test_capture_drops_on_reader_nomem(void)
{
	char *event = big_json("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"", BIG,
			       "\"}}]}\n\n");
	struct sink s;
	int i, others = 0;

	/* With memory: one whole record, the usage the server sent. */
	stream_call(&s, event, 0);
	CHECK_INT(s.n, 1);
	CHECK_INT(s.rec[0].in, 11);
	CHECK_INT(s.rec[0].out, 13);
	CHECK_STR(s.rec[0].model, "gpt-4o-mini-2024-07-18");
	CHECK_INT(s.rec[0].flags & (RECORD_ESTIMATED | RECORD_TRUNCATED), 0);
	for (i = 0; i < CAPTURE_DROP_N; i++)
		others += drops[i];
	CHECK_INT(others, 0);
	/* The reader cannot copy the big event's string: no record, one out_of_memory drop. */
	stream_call(&s, event, 1);
	CHECK_INT(s.n, 0);
	CHECK_INT(drops[CAPTURE_DROP_NOMEM], 1);
	for (others = 0, i = 0; i < CAPTURE_DROP_N; i++)
		others += i == CAPTURE_DROP_NOMEM ? 0 : drops[i];
	CHECK_INT(others, 0);
	free(event);
}

int main(void)
{
	RUN(test_read_nomem);
	RUN(test_capture_drops_on_reader_nomem);
	CHECK_DONE();
}
