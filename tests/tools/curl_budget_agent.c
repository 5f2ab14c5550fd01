/*
 * curl_budget_agent.c - a libcurl "agent" for the budget gate at the libcurl layer: what a
 * program sees of a refused transfer, through its own callbacks and curl_easy_getinfo.
 *
 *   curl_budget_agent MODE CA HOST:PORT:ADDR URL BODYFILE [BODYFILE …]
 *
 * Every call is a POST of BODYFILE's bytes to URL (CURLOPT_POSTFIELDS) with
 * "Content-Type: application/json"; CA is the CA file to trust, HOST:PORT:ADDR a --resolve
 * entry; the protocol is libcurl's default (HTTP/2 over TLS by ALPN).
 *   multi - one easy handle per BODYFILE, all at once on one multi handle (CURLOPT_PIPEWAIT);
 *   easy  - one easy handle, curl_easy_perform once per BODYFILE in turn (the handle reused).
 * For each call, in the order of the arguments, it prints
 *   "== RESULT STATUS HTTP-VERSION CONTENT-TYPE EFFECTIVE-URL\n", the header lines its header
 * function got, "--\n", the body its write function got, "\n".
 * Exit status 0 (results are printed, not judged), 2 on a usage error.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_io.h"
#include "curl_multi.h"

#define CALLS_MAX 8

struct call {
	char *body;
	size_t body_len;
	struct agent_buf head, out;
	CURLcode result;
};

static void call_setup(CURL *e, struct call *c, char **argv, struct curl_slist *hdrs,
		       struct curl_slist *resolve)
{
	curl_easy_setopt(e, CURLOPT_URL, argv[4]);
	curl_easy_setopt(e, CURLOPT_CAINFO, argv[2]);
	curl_easy_setopt(e, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, agent_io_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &c->out);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, agent_io_write);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &c->head);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)c->body_len);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
}

static void call_print(CURL *e, const struct call *c)
{
	long status = 0, version = 0;
	char *type = NULL, *url = NULL;

	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
	curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &type);
	curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url);
	printf("== %d %ld %s %s %s\n", (int)c->result, status,
	       version == CURL_HTTP_VERSION_2_0 ? "HTTP/2"
	       : version == CURL_HTTP_VERSION_1_1 ? "HTTP/1.1" : "?",
	       type ? type : "-", url ? url : "-");
	fwrite(c->head.p, 1, c->head.len, stdout);
	printf("--\n");
	fwrite(c->out.p, 1, c->out.len, stdout);
	printf("\n");
}

/* agent_multi_run's done: the transfer's result, kept for call_print. */
static void call_done(const CURLMsg *msg, void *arg)
{
	struct call *c = NULL;

	(void)arg;
	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
	if (c != NULL)
		c->result = msg->data.result;
}

int main(int argc, char **argv)
{
	struct call calls[CALLS_MAX];
	CURL *easy[CALLS_MAX];
	struct curl_slist *hdrs = NULL, *resolve = NULL;
	int n = argc - 5, i, multi;
	CURLM *m;

	multi = argc > 1 && strcmp(argv[1], "multi") == 0;
	if (argc < 6 || n > CALLS_MAX || (!multi && strcmp(argv[1], "easy") != 0)) {
		fprintf(stderr, "usage: curl_budget_agent multi|easy CA HOST:PORT:ADDR URL BODYFILE …\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	resolve = curl_slist_append(resolve, argv[3]);
	memset(calls, 0, sizeof(calls));
	for (i = 0; i < n; i++) {
		calls[i].body = agent_io_slurp(argv[5 + i], &calls[i].body_len);
		if (calls[i].body == NULL) {
			fprintf(stderr, "curl_budget_agent: cannot read '%s'\n", argv[5 + i]);
			return 2;
		}
	}
	if (!multi) {
		easy[0] = curl_easy_init();
		for (i = 0; i < n; i++) {
			call_setup(easy[0], &calls[i], argv, hdrs, resolve);
			calls[i].result = curl_easy_perform(easy[0]);
			call_print(easy[0], &calls[i]);
		}
		curl_easy_cleanup(easy[0]);
		goto out;
	}
	m = curl_multi_init();
	for (i = 0; i < n; i++) {
		easy[i] = curl_easy_init();
		call_setup(easy[i], &calls[i], argv, hdrs, resolve);
		curl_easy_setopt(easy[i], CURLOPT_PRIVATE, &calls[i]);
		curl_multi_add_handle(m, easy[i]);
	}
	agent_multi_run(m, call_done, NULL);
	for (i = 0; i < n; i++) {
		call_print(easy[i], &calls[i]);
		curl_multi_remove_handle(m, easy[i]);
		curl_easy_cleanup(easy[i]);
	}
	curl_multi_cleanup(m);
out:
	for (i = 0; i < n; i++) {
		free(calls[i].body);
		free(calls[i].head.p);
		free(calls[i].out.p);
	}
	curl_slist_free_all(hdrs);
	curl_slist_free_all(resolve);
	curl_global_cleanup();
	return 0;
}
