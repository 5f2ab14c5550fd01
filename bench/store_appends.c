/*
 * store_appends.c - store appends per second, as the shim makes them: one store_append (one
 * write transaction, one commit) per record, each with a realistic payload (a ~1.5 KiB chat
 * request, a ~0.8 KiB answer, their heads), from WRITERS processes at once on one store.
 *
 *   store_appends OUT.mdb WRITERS APPENDS_PER_WRITER
 *
 * Each writer is a forked child with its own store handle (LMDB's rule after fork). The
 * parent times from the first fork to the last exit and prints one JSON line:
 * writers, appends, seconds, appends_per_s. Exits non-zero if any append failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

static char app_req_body[2048], app_resp_body[1024];

static const char app_req_head[] =
	"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
	"Authorization: [redacted]\r\nContent-Type: application/json\r\n"
	"User-Agent: OpenAI/Python 1.54.0\r\nAccept: application/json\r\n";
static const char app_resp_head[] =
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nopenai-processing-ms: 412\r\n"
	"x-request-id: req_7f3c1b2a9e\r\n";

static double app_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Text that compresses about as well as real prompts do (words, not one repeated byte). */
static void app_fill(char *buf, size_t cap, unsigned seed)
{
	static const char *const words[] = { "the", "model", "returns", "a", "summary", "of",
		"each", "file", "in", "repository", "with", "tests", "and", "errors", "function" };
	size_t n = 0;

	while (n + 16 < cap) {
		seed = seed * 1103515245u + 12345u;
		n += (size_t)snprintf(buf + n, cap - n, "%s ", words[(seed >> 16) % 15]);
	}
	buf[n] = '\0';
}

static int app_writer(const char *path, int id, long count)
{
	struct store *st = NULL;
	struct record r;
	struct payload pl;
	struct timespec now;
	char session[32];
	long i;
	int rc;

	rc = store_open(&st, path, STORE_CREATE, 0);
	if (rc != 0) {
		fprintf(stderr, "store_appends: cannot open '%s': %s\n", path, store_strerror(rc));
		return 1;
	}
	snprintf(session, sizeof(session), "sess-%d-%d", id, (int)getpid());
	memset(&pl, 0, sizeof(pl));
	pl.req_head = record_str_of(app_req_head);
	pl.req_body = record_str_of(app_req_body);
	pl.resp_head = record_str_of(app_resp_head);
	pl.resp_body = record_str_of(app_resp_body);
	pl.req_body_size = pl.req_body.n;
	pl.resp_body_size = pl.resp_body.n;
	for (i = 0; i < count && rc == 0; i++) {
		memset(&r, 0, sizeof(r));
		clock_gettime(CLOCK_REALTIME, &now);
		r.ts_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
		r.latency_us = 412000;
		r.ttfb_us = 380000;
		r.pid = getpid();
		r.status = 200;
		r.retry_after_s = -1;
		r.input_tokens = 1200 + i % 500;
		r.output_tokens = 180 + i % 90;
		r.cache_read_tokens = i % 3 == 0 ? 1024 : 0;
		r.request_hash = record_hash(&i, sizeof(i));
		r.process = record_str_of("python3");
		r.agent = record_str_of("bench-writer");
		r.session = record_str_of(session);
		r.provider = record_str_of("openai");
		r.api = record_str_of("chat.completions");
		r.host = record_str_of("api.openai.com");
		r.path = record_str_of("/v1/chat/completions");
		r.model_requested = record_str_of("gpt-4o-mini");
		r.model = record_str_of("gpt-4o-mini-2024-07-18");
		rc = store_append(st, &r, &pl, NULL, 0);
	}
	if (rc != 0)
		fprintf(stderr, "store_appends: append: %s\n", store_strerror(rc));
	store_close(st);
	return rc != 0;
}

int main(int argc, char **argv)
{
	long count;
	int writers, i, status, failed = 0;
	double t0, dt;
	pid_t pid;

	if (argc != 4) {
		fprintf(stderr, "usage: store_appends OUT.mdb WRITERS APPENDS_PER_WRITER\n");
		return 2;
	}
	writers = atoi(argv[2]);
	count = atol(argv[3]);
	app_fill(app_req_body, 1500, 1);
	app_fill(app_resp_body, 800, 2);
	t0 = app_now();
	for (i = 0; i < writers; i++) {
		pid = fork();
		if (pid == 0)
			_exit(app_writer(argv[1], i, count));
		if (pid < 0)
			failed = 1;
	}
	while (wait(&status) > 0) {
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	}
	dt = app_now() - t0;
	printf("{\"writers\":%d,\"appends\":%ld,\"seconds\":%.6f,\"appends_per_s\":%.1f}\n",
	       writers, count * writers, dt, (double)(count * writers) / dt);
	return failed;
}
