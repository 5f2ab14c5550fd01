/*
 * estimate_error.c - the measured error of tokshim's token estimate on the recorded fixtures.
 *
 *   estimate_error [FIXTURES_DIR]     (default $TOKSHIM_FIXTURES, else ../shared/fixtures)
 *
 * For every case of FIXTURES_DIR/manifest.json it runs the family the provider table picks for
 * the case's host and path over the recorded request (CASE.req.json, where there is one) and
 * response (CASE.body: SSE framed into events, else one body), exactly as capture does, then
 * applies the estimation rule (usage_estimate_tokens: ceil(bytes / 4)) to the text sizes the
 * family found and prints, per case, the estimate beside the real usage ("expected" in the
 * manifest) and the relative error (estimate - real) / real. docs/providers.md quotes its
 * output. Exit status 0, or 1 when the manifest cannot be read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "http/stream.h"
#include "providers/provider.h"

#define FILE_MAX (16u << 20)

/* The whole file dir/name (NUL-terminated) or NULL; *len its size. Caller frees. */
static char *read_file(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	FILE *f;
	char *buf = NULL;
	size_t n = 0;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL)
		goto done;
	buf = malloc(FILE_MAX + 1);
	if (buf != NULL) {
		n = fread(buf, 1, FILE_MAX, f);
		buf[n] = '\0';
	}
	fclose(f);
done:
	*len = n;
	return buf;
}

struct feed {
	const struct provider_family *family;
	struct usage *u;
};

static void on_event(void *ctx, const char *name, size_t name_len, const char *data, size_t len)
{
	struct feed *f = ctx;

	f->family->event(f->u, name, name_len, data, len);
}

static void print_row(const char *what, uint64_t bytes, int64_t real)
{
	int64_t est = usage_estimate_tokens(bytes);

	if (real > 0)
		printf("  %-6s %8llu bytes  estimate %6lld  real %6lld  error %+7.1f%%\n", what,
		       (unsigned long long)bytes, (long long)est, (long long)real,
		       100.0 * (double)(est - real) / (double)real);
	else
		printf("  %-6s %8llu bytes  estimate %6lld  real %6lld\n", what,
		       (unsigned long long)bytes, (long long)est, (long long)real);
}

static void measure(const char *dir, const cJSON *c)
{
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "case"));
	const char *host = cJSON_GetStringValue(cJSON_GetObjectItem(c, "request_host"));
	const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(c, "request_path"));
	const char *ct = cJSON_GetStringValue(cJSON_GetObjectItem(c, "content_type"));
	const cJSON *exp = cJSON_GetObjectItem(c, "expected");
	char hostname[256], file[512];
	struct provider_match m;
	struct usage u;
	struct provider_request req;
	struct feed fd;
	char *body, *reqbody;
	size_t len, reqlen;
	unsigned port = 443;
	const char *colon;

	if (name == NULL || host == NULL || path == NULL)
		return;
	snprintf(hostname, sizeof hostname, "%s", host);
	colon = strchr(hostname, ':');
	if (colon != NULL) {
		port = (unsigned)atoi(colon + 1);
		hostname[colon - hostname] = '\0';
	}
	if (!provider_match(hostname, port, path, &m)) {
		printf("%s: no family for %s%s\n", name, host, path);
		return;
	}
	usage_init(&u);
	u.api = m.api;
	snprintf(file, sizeof file, "%s.req.json", name);
	reqbody = read_file(dir, file, &reqlen);
	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.host = hostname;
	req.path = path;
	req.body = reqbody ? reqbody : "";
	req.body_len = reqlen;
	m.family->request(&u, &req);
	snprintf(file, sizeof file, "%s.body", name);
	body = read_file(dir, file, &len);
	if (body != NULL && ct != NULL && strncmp(ct, "text/event-stream", 17) == 0) {
		struct sse_parser sse;

		fd.family = m.family;
		fd.u = &u;
		sse_parser_init(&sse, 0, on_event, &fd);
		sse_parser_feed(&sse, body, len);
		sse_parser_finish(&sse);
		sse_parser_release(&sse);
	} else if (body != NULL) {
		m.family->body(&u, 200, body, len);
	}
	printf("%s (%s)\n", name, m.api);
	if (reqbody != NULL)
		print_row("input", u.request_text_bytes,
			  (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(exp, "input_tokens")));
	else
		printf("  input  no recorded request\n");
	print_row("output", u.output_text_bytes,
		  (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(exp, "output_tokens")));
	free(body);
	free(reqbody);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : getenv("TOKSHIM_FIXTURES");
	char *text;
	size_t len;
	cJSON *man, *c;
	int rc = 1;

	if (dir == NULL)
		dir = "../shared/fixtures";
	text = read_file(dir, "manifest.json", &len);
	man = text ? cJSON_ParseWithLength(text, len) : NULL;
	if (!cJSON_IsArray(man)) {
		fprintf(stderr, "estimate_error: cannot read '%s/manifest.json'\n", dir);
		goto free_text;
	}
	cJSON_ArrayForEach(c, man)
		measure(dir, c);
	rc = 0;
	cJSON_Delete(man);
free_text:
	free(text);
	return rc;
}
