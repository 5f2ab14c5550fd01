/*
 * curl_easy_agent.c - an "agent" on libcurl's easy interface that sets its options the less
 * common ways (tests/integration/test_curl.py):
 *
 *   curl_easy_agent MODE CA HOST:PORT:ADDR URL BODYFILE [HEADER …]
 *
 *   curlu   the URL as a CURLU handle (CURLOPT_CURLU), the body by CURLOPT_POSTFIELDS
 *   header  CURLOPT_HEADER=1: the head comes to the write function too (and to a header
 *           function, which counts its bytes)
 *   mime    a multipart body (CURLOPT_MIMEPOST): one text part per "name=value" line of BODYFILE
 *   large   CURLOPT_POSTFIELDS on a buffer with more bytes after the body, and
 *           CURLOPT_POSTFIELDSIZE_LARGE saying where the body ends
 *   reset   two transfers on one handle: POSTFIELDS, then curl_easy_reset, every option set
 *           again and the body sent through a READFUNCTION
 *   dup     the URL as a CURLU handle, CURLOPT_POSTFIELDSIZE and CURLOPT_COPYPOSTFIELDS, then
 *           curl_easy_duphandle; the program's body buffer is overwritten, the copy performed,
 *           then the original
 *
 * Every call POSTs to URL with HEADERs, trusting CA, resolving as HOST:PORT:ADDR says. For each
 * transfer it prints "== STATUS HTTP-VERSION\n", every byte its write function got, then
 * "\n-- HEADER-BYTES\n" (the bytes its header function got, -1 without one). Exit status 0, 1
 * when a transfer failed, 2 on a usage error.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_io.h"

struct sink {
	struct agent_buf out; /* the write function's */
	long header_bytes;
};

struct source {
	const char *p;
	size_t left;
};

struct args {
	const char *ca, *url;
	struct curl_slist *headers, *resolve;
	char *body;
	size_t body_len;
};

static size_t on_header(char *p, size_t size, size_t n, void *data)
{
	struct sink *s = data;

	(void)p;
	s->header_bytes += (long)(size * n);
	return size * n;
}

static size_t on_read(char *p, size_t size, size_t n, void *data)
{
	struct source *s = data;
	size_t k = s->left < size * n ? s->left : size * n;

	if (k > 5)
		k = 5; /* small pieces: the upload takes several reads */
	memcpy(p, s->p, k);
	s->p += k;
	s->left -= k;
	return k;
}

/* The options every mode sets, writing into s. */
static void common(CURL *h, const struct args *a, struct sink *s)
{
	curl_easy_setopt(h, CURLOPT_CAINFO, a->ca);
	curl_easy_setopt(h, CURLOPT_RESOLVE, a->resolve);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, a->headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, agent_io_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s->out);
	s->header_bytes = -1;
}

/* Performs h and prints what its callbacks got. Returns 0, or 1 when the transfer failed. */
static int perform(CURL *h, struct sink *s)
{
	CURLcode rc = curl_easy_perform(h);
	long status = 0, version = 0;

	if (rc != CURLE_OK)
		fprintf(stderr, "curl_easy_agent: %s\n", curl_easy_strerror(rc));
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
	printf("== %ld %s\n", status, version == CURL_HTTP_VERSION_2_0 ? "HTTP/2" : "HTTP/1.1");
	if (s->out.len > 0)
		fwrite(s->out.p, 1, s->out.len, stdout);
	printf("\n-- %ld\n", s->header_bytes);
	free(s->out.p);
	memset(s, 0, sizeof(*s));
	return rc != CURLE_OK;
}

/* A multipart form: one text part per "name=value" line of the body file. */
static curl_mime *form(CURL *h, char *lines)
{
	curl_mime *m = curl_mime_init(h);
	char *save = NULL;

	for (char *l = strtok_r(lines, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(l, '=');
		curl_mimepart *part;

		if (eq == NULL)
			continue;
		*eq = '\0';
		part = curl_mime_addpart(m);
		curl_mime_name(part, l);
		curl_mime_data(part, eq + 1, CURL_ZERO_TERMINATED);
	}
	return m;
}

static int run(const char *mode, struct args *a)
{
	struct sink s = { 0 };
	struct source src = { a->body, a->body_len };
	CURL *h = curl_easy_init(), *d;
	CURLU *u = NULL;
	curl_mime *m = NULL;
	char *big = NULL;
	int rc = 0;

	common(h, a, &s);
	if (strcmp(mode, "curlu") == 0) {
		u = curl_url();
		curl_url_set(u, CURLUPART_URL, a->url, 0);
		curl_easy_setopt(h, CURLOPT_CURLU, u);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, a->body);
		rc = perform(h, &s);
	} else if (strcmp(mode, "header") == 0) {
		curl_easy_setopt(h, CURLOPT_URL, a->url);
		curl_easy_setopt(h, CURLOPT_HEADER, 1L);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, a->body);
		s.header_bytes = 0;
		rc = perform(h, &s);
	} else if (strcmp(mode, "mime") == 0) {
		curl_easy_setopt(h, CURLOPT_URL, a->url);
		m = form(h, a->body);
		curl_easy_setopt(h, CURLOPT_MIMEPOST, m);
		rc = perform(h, &s);
	} else if (strcmp(mode, "large") == 0) {
		big = malloc(a->body_len + 64);
		if (big == NULL)
			return 1;
		memcpy(big, a->body, a->body_len);
		memcpy(big + a->body_len, "}{\"model\":\"not-this-one\"} and more bytes, no NUL", 48);
		curl_easy_setopt(h, CURLOPT_URL, a->url);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->body_len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, big);
		rc = perform(h, &s);
	} else if (strcmp(mode, "reset") == 0) {
		curl_easy_setopt(h, CURLOPT_URL, a->url);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, a->body);
		rc = perform(h, &s);
		curl_easy_reset(h);
		common(h, a, &s);
		curl_easy_setopt(h, CURLOPT_URL, a->url);
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->body_len);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, &src);
		rc |= perform(h, &s);
	} else if (strcmp(mode, "dup") == 0) {
		u = curl_url();
		curl_url_set(u, CURLUPART_URL, a->url, 0);
		curl_easy_setopt(h, CURLOPT_CURLU, u);
		/* the size first: libcurl 7.88 cannot duplicate a copied body of size -1 */
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)a->body_len);
		curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, a->body);
		d = curl_easy_duphandle(h);
		if (d == NULL) {
			fprintf(stderr, "curl_easy_agent: curl_easy_duphandle failed\n");
			curl_easy_cleanup(h);
			return 1;
		}
		memset(a->body, 'x', a->body_len); /* both handles hold copies of their own */
		rc = perform(d, &s);
		curl_easy_cleanup(d);
		rc |= perform(h, &s);
	} else {
		fprintf(stderr, "curl_easy_agent: unknown mode '%s'\n", mode);
		rc = 2;
	}
	curl_easy_cleanup(h);
	curl_url_cleanup(u);
	curl_mime_free(m);
	free(big);
	return rc;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	int rc;

	if (argc < 6) {
		fprintf(stderr, "usage: curl_easy_agent MODE CA HOST:PORT:ADDR URL BODYFILE "
				"[HEADER …]\n");
		return 2;
	}
	a.ca = argv[2];
	a.url = argv[4];
	a.body = agent_io_slurp(argv[5], &a.body_len);
	if (a.body == NULL) {
		fprintf(stderr, "curl_easy_agent: cannot read '%s'\n", argv[5]);
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	a.resolve = curl_slist_append(NULL, argv[3]);
	for (int i = 6; i < argc; i++)
		a.headers = curl_slist_append(a.headers, argv[i]);
	rc = run(argv[1], &a);
	curl_slist_free_all(a.headers);
	curl_slist_free_all(a.resolve);
	curl_global_cleanup();
	free(a.body);
	return rc;
}
