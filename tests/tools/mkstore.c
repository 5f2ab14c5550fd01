/*
 * mkstore.c - writes a store with exactly the records a test describes, so CLI tests assert
 * on known numbers instead of on whatever a live capture produced.
 *
 *   mkstore OUT.mdb [INPUT.jsonl]      (INPUT defaults to stdin)
 *
 * INPUT holds one JSON object per line (blank lines and lines starting with '#' are skipped),
 * with the keys of `tokshim records --format jsonl` where they exist:
 *   ts ("2026-11-25T04:30:00.123456Z", UTC) or ts_ns, pid, status, latency_us, ttfb_us,
 *   retry_after, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
 *   reasoning_tokens, billed_cost_pusd, request_hash (a small number standing for a body's
 *   hash), search_queries, search_context (0-3, enum
 *   record_search), process agent agent_type tenant session provider api
 *   host path model_requested model error error_message (strings), locality ("local" or
 *   "cloud"), stream estimated truncated billed not_billed (booleans), and
 *   payload: {req_head, req_body, resp_head, resp_body, req_body_file, resp_body_file,
 *             req_body_size, resp_body_size}
 * A *_file is read whole, relative to INPUT's folder. Heads are written as given ("\r\n" in
 * the JSON string for CRLF). Missing numbers are 0, except ttfb_us and retry_after (-1).
 * Records are appended in input order; store_append assigns ids 1, 2, 3 …
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "store/store.h"

struct input {
	const char *path;
	char dir[PATH_MAX];
	unsigned line;
};

static void fail(const struct input *in, const char *fmt, const char *arg)
{
	fprintf(stderr, "mkstore: %s:%u: ", in->path, in->line);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
}

static int64_t num(const cJSON *obj, const char *key, int64_t dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}

static int flag(const cJSON *obj, const char *key)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

static struct record_str str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return record_str_of(cJSON_IsString(v) ? v->valuestring : NULL);
}

/* "2026-11-25T04:30:00[.ffffff]Z" to ns since the epoch. Returns 0 or -1. */
static int parse_ts(const char *s, int64_t *out)
{
	struct tm tm;
	int64_t frac = 0, scale = 100000000;
	const char *p;
	int ret = -1;

	memset(&tm, 0, sizeof tm);
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		goto out;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += (*p - '0') * scale;
	if (strcmp(p, "Z") != 0)
		goto out;
	*out = (int64_t)timegm(&tm) * 1000000000 + frac;
	ret = 0;
out:
	return ret;
}

/* Reads a whole file named relative to the input's folder into a malloc'd buffer. */
static char *read_file(const struct input *in, const char *name, size_t *len)
{
	char path[PATH_MAX * 2];
	char *buf = NULL;
	FILE *f;
	long n;

	snprintf(path, sizeof path, "%s%s%s", name[0] == '/' ? "" : in->dir,
		 name[0] == '/' ? "" : "/", name);
	f = fopen(path, "rb");
	if (f == NULL)
		goto out;
	if (fseek(f, 0, SEEK_END) != 0)
		goto close;
	n = ftell(f);
	if (n < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto close;
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf) {
		buf[n] = '\0';
		*len = (size_t)n;
	}
close:
	fclose(f);
out:
	return buf;
}

/* A payload string: the key's text, or the contents of the key "_file". */
static int payload_part(const struct input *in, const cJSON *pl, const char *key,
			struct record_str *out, char **owned)
{
	char file_key[64];
	const cJSON *file;
	size_t len = 0;
	int ret = 0;

	*out = str(pl, key);
	snprintf(file_key, sizeof file_key, "%s_file", key);
	file = cJSON_GetObjectItemCaseSensitive(pl, file_key);
	if (cJSON_IsString(file)) {
		*owned = read_file(in, file->valuestring, &len);
		if (*owned == NULL) {
			fail(in, "cannot read '%s'", file->valuestring);
			ret = -1;
			goto out;
		}
		out->p = *owned;
		out->n = (uint32_t)len;
	}
out:
	return ret;
}

static int append_line(struct store *st, const struct input *in, const char *line)
{
	cJSON *obj = cJSON_Parse(line), *pl;
	struct record rec;
	struct payload payload;
	char *owned[4] = { NULL, NULL, NULL, NULL };
	const cJSON *ts, *loc;
	int i, err, ret = -1;

	if (!cJSON_IsObject(obj)) {
		fail(in, "%s", "not a JSON object");
		goto out;
	}
	memset(&rec, 0, sizeof rec);
	memset(&payload, 0, sizeof payload);
	ts = cJSON_GetObjectItemCaseSensitive(obj, "ts");
	if (cJSON_IsString(ts)) {
		if (parse_ts(ts->valuestring, &rec.ts_ns) != 0) {
			fail(in, "bad ts '%s'", ts->valuestring);
			goto out;
		}
	} else {
		rec.ts_ns = num(obj, "ts_ns", 0);
	}
	rec.pid = (int32_t)num(obj, "pid", 0);
	rec.status = (int32_t)num(obj, "status", 0);
	rec.latency_us = num(obj, "latency_us", 0);
	rec.ttfb_us = num(obj, "ttfb_us", -1);
	rec.retry_after_s = (int32_t)num(obj, "retry_after", -1);
	rec.input_tokens = num(obj, "input_tokens", 0);
	rec.output_tokens = num(obj, "output_tokens", 0);
	rec.cache_read_tokens = num(obj, "cache_read_tokens", 0);
	rec.cache_write_tokens = num(obj, "cache_write_tokens", 0);
	rec.reasoning_tokens = num(obj, "reasoning_tokens", 0);
	rec.billed_cost_pusd = num(obj, "billed_cost_pusd", 0);
	rec.search_queries = num(obj, "search_queries", 0);
	rec.request_hash = (uint64_t)num(obj, "request_hash", 0);
	rec.search_context = (int32_t)num(obj, "search_context", 0);
	rec.process = str(obj, "process");
	rec.agent = str(obj, "agent");
	rec.agent_type = str(obj, "agent_type");
	rec.tenant = str(obj, "tenant");
	rec.session = str(obj, "session");
	rec.provider = str(obj, "provider");
	rec.api = str(obj, "api");
	rec.host = str(obj, "host");
	rec.path = str(obj, "path");
	rec.model_requested = str(obj, "model_requested");
	rec.model = str(obj, "model");
	rec.error = str(obj, "error");
	rec.error_message = str(obj, "error_message");
	loc = cJSON_GetObjectItemCaseSensitive(obj, "locality");
	if (cJSON_IsString(loc) && strcmp(loc->valuestring, "local") == 0)
		rec.flags |= RECORD_LOCAL;
	rec.flags |= flag(obj, "stream") ? RECORD_STREAM : 0;
	rec.flags |= flag(obj, "estimated") ? RECORD_ESTIMATED : 0;
	rec.flags |= flag(obj, "truncated") ? RECORD_TRUNCATED : 0;
	rec.flags |= flag(obj, "billed") ? RECORD_BILLED : 0;
	rec.flags |= flag(obj, "not_billed") ? RECORD_NOT_BILLED : 0;
	pl = cJSON_GetObjectItemCaseSensitive(obj, "payload");
	if (cJSON_IsObject(pl)) {
		if (payload_part(in, pl, "req_head", &payload.req_head, &owned[0]) != 0 ||
		    payload_part(in, pl, "req_body", &payload.req_body, &owned[1]) != 0 ||
		    payload_part(in, pl, "resp_head", &payload.resp_head, &owned[2]) != 0 ||
		    payload_part(in, pl, "resp_body", &payload.resp_body, &owned[3]) != 0)
			goto out;
		payload.req_body_size = (uint64_t)num(pl, "req_body_size", payload.req_body.n);
		payload.resp_body_size = (uint64_t)num(pl, "resp_body_size", payload.resp_body.n);
	}
	err = store_append(st, &rec, cJSON_IsObject(pl) ? &payload : NULL, NULL, 0);
	if (err != 0) {
		fail(in, "store_append: %s", store_strerror(err));
		goto out;
	}
	ret = 0;
out:
	for (i = 0; i < 4; i++)
		free(owned[i]);
	cJSON_Delete(obj);
	return ret;
}

int main(int argc, char **argv)
{
	struct input in = { .path = "-", .dir = "." };
	struct store *st = NULL;
	char *line = NULL, copy[PATH_MAX];
	size_t cap = 0;
	ssize_t n;
	FILE *f = stdin;
	int err, ret = 1;

	if (argc < 2 || argc > 3) {
		fputs("usage: mkstore OUT.mdb [INPUT.jsonl]\n", stderr);
		ret = 2;
		goto out;
	}
	if (argc == 3) {
		in.path = argv[2];
		snprintf(copy, sizeof copy, "%s", argv[2]);
		snprintf(in.dir, sizeof in.dir, "%s", dirname(copy));
		f = fopen(argv[2], "r");
		if (f == NULL) {
			fprintf(stderr, "mkstore: cannot open '%s': %s\n", argv[2], strerror(errno));
			goto out;
		}
	}
	err = store_open(&st, argv[1], STORE_CREATE, 64ull << 20);
	if (err != 0) {
		fprintf(stderr, "mkstore: cannot open '%s': %s\n", argv[1], store_strerror(err));
		goto close_input;
	}
	for (;;) {
		n = getline(&line, &cap, f);
		if (n < 0)
			break;
		in.line++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (append_line(st, &in, line) != 0)
			goto close_store;
	}
	ret = 0;
close_store:
	store_close(st);
close_input:
	if (f != stdin)
		fclose(f);
out:
	free(line);
	return ret;
}
