/*
 * curl_multi_agent.c - an "agent" on libcurl's multi interface: several LLM calls at once,
 * driven by one thread, as real libcurl programs do.
 *
 *   curl_multi_agent CA HOST:PORT:ADDR HEADER URL BODYFILE [URL BODYFILE …]
 *
 * Every call is a POST of BODYFILE's bytes to URL with "Content-Type: application/json" and
 * HEADER (an auth header, say); CA is the CA file to trust, HOST:PORT:ADDR a --resolve entry.
 * Odd-numbered calls (1st, 3rd …) send their body with CURLOPT_POSTFIELDS, even ones through a
 * READFUNCTION. The program's own write and header callbacks gather each answer; at the end it
 * prints, in the order of the arguments, "== STATUS HTTP-VERSION HEADER-LINES\n", the body,
 * "\n". Transfers may share one connection (HTTP/2 multiplexing, CURLOPT_PIPEWAIT). Exit status
 * 0, or 1 when a transfer failed.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_io.h"
#include "curl_multi.h"

#define CALLS_MAX 16

struct call {
	char *body;
	size_t body_len;
	size_t sent;
	struct agent_buf out;
	int header_lines;
};

static size_t on_header(char *p, size_t size, size_t n, void *data)
{
	struct call *c = data;

	(void)p;
	c->header_lines++;
	return size * n;
}

static size_t on_read(char *p, size_t size, size_t n, void *data)
{
	struct call *c = data;
	size_t k = c->body_len - c->sent;

	if (k > size * n)
		k = size * n;
	if (k > 7)
		k = 7; /* small pieces: the upload takes several reads */
	memcpy(p, c->body + c->sent, k);
	c->sent += k;
	return k;
}

/* agent_multi_run's done: a failed transfer is said on stderr and fails the run (*arg). */
static void transfer_done(const CURLMsg *msg, void *arg)
{
	if (msg->data.result != CURLE_OK) {
		fprintf(stderr, "curl_multi_agent: %s\n", curl_easy_strerror(msg->data.result));
		*(int *)arg = 1;
	}
}

int main(int argc, char **argv)
{
	struct call calls[CALLS_MAX];
	CURL *easy[CALLS_MAX];
	struct curl_slist *hdrs = NULL, *resolve = NULL;
	CURLM *m;
	int n = (argc - 4) / 2, i, rc = 0;

	if (argc < 6 || (argc - 4) % 2 != 0 || n > CALLS_MAX) {
		fprintf(stderr, "usage: curl_multi_agent CA HOST:PORT:ADDR HEADER URL BODYFILE …\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, argv[3]);
	resolve = curl_slist_append(resolve, argv[2]);
	m = curl_multi_init();
	memset(calls, 0, sizeof(calls));
	for (i = 0; i < n; i++) {
		calls[i].body = agent_io_slurp(argv[5 + 2 * i], &calls[i].body_len);
		if (calls[i].body == NULL) {
			fprintf(stderr, "curl_multi_agent: cannot read '%s'\n", argv[5 + 2 * i]);
			return 2;
		}
		easy[i] = curl_easy_init();
		curl_easy_setopt(easy[i], CURLOPT_URL, argv[4 + 2 * i]);
		curl_easy_setopt(easy[i], CURLOPT_CAINFO, argv[1]);
		curl_easy_setopt(easy[i], CURLOPT_RESOLVE, resolve);
		curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(easy[i], CURLOPT_PIPEWAIT, 1L);
		curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, agent_io_write);
		curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &calls[i].out);
		curl_easy_setopt(easy[i], CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(easy[i], CURLOPT_HEADERDATA, &calls[i]);
		if (i % 2 == 0) {
			curl_easy_setopt(easy[i], CURLOPT_POSTFIELDSIZE, (long)calls[i].body_len);
			curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, calls[i].body);
		} else {
			curl_easy_setopt(easy[i], CURLOPT_POST, 1L);
			curl_easy_setopt(easy[i], CURLOPT_POSTFIELDSIZE, (long)calls[i].body_len);
			curl_easy_setopt(easy[i], CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(easy[i], CURLOPT_READDATA, &calls[i]);
		}
		curl_multi_add_handle(m, easy[i]);
	}
	agent_multi_run(m, transfer_done, &rc);
	for (i = 0; i < n; i++) {
		long status = 0, version = 0;

		curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(easy[i], CURLINFO_HTTP_VERSION, &version);
		printf("== %ld %s %d\n", status, version == CURL_HTTP_VERSION_2_0 ? "HTTP/2" : "HTTP/1.1",
		       calls[i].header_lines);
		fwrite(calls[i].out.p, 1, calls[i].out.len, stdout);
		printf("\n");
		curl_multi_remove_handle(m, easy[i]);
		curl_easy_cleanup(easy[i]);
		free(calls[i].body);
		free(calls[i].out.p);
	}
	curl_multi_cleanup(m);
	curl_slist_free_all(hdrs);
	curl_slist_free_all(resolve);
	curl_global_cleanup();
	return rc;
}
