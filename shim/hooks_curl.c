/*
 * hooks_curl.c - libcurl programs captured at the HTTP layer: whatever libcurl speaks on the
 * wire (HTTP/1.1, HTTP/2, HTTP/3 over its own QUIC), the program's callbacks see HTTP, and so
 * do we.
 *
 * libcurl cannot tell us an option back, so curl_easy_setopt is hooked to remember what the
 * program set: URL (CURLOPT_URL, or a CURLU handle read when the transfer starts, as libcurl
 * does), method, headers, request body (POSTFIELDS with or without POSTFIELDSIZE(_LARGE), or a
 * READFUNCTION) and its write, header and read callbacks with their data pointers. When a
 * transfer starts (curl_easy_perform, curl_multi_add_handle) and its URL is an LLM call, our
 * own callbacks are put in front of the program's: each calls the program's callback (or
 * libcurl's default, fwrite/fread, exactly as libcurl would) with the same arguments and
 * returns its result unchanged, and looks at the bytes only when the program accepted them (a
 * paused write is delivered again later). When the
 * transfer ends (curl_easy_perform returns, curl_multi_info_read hands out its DONE message,
 * curl_multi_remove_handle, curl_easy_cleanup) the program's own callbacks are set back and the
 * exchange emits its record.
 *
 * The rule against counting twice: libcurl moves every byte inside one of its own calls on the
 * calling thread, so while a thread is inside curl_easy_perform / curl_multi_perform /
 * curl_multi_socket_action (and not inside a callback of the program) shim_curl_depth is set,
 * and conns.c hands any TLS or socket connection that moves bytes then to libcurl for good. One
 * thread driving many handles through one multi handle is covered the same way.
 *
 * With CURLOPT_HEADER libcurl hands every header line to the write function as well, just
 * before the header function: those lines go to the program as before and are not taken for
 * the body. A multipart body (CURLOPT_MIMEPOST, CURLOPT_HTTPPOST) is built inside libcurl and
 * reaches no callback of the program: its record is made from the response (model, usage), and
 * the stored request head says multipart/form-data over an empty body.
 *
 * Not captured: handles created before the shim saw them (not through curl_easy_init or
 * curl_easy_duphandle), and CONNECT_ONLY with curl_easy_send/recv (those bytes go through the
 * TLS and socket hooks as usual, since they run outside the calls above).
 *
 * The shim does not link libcurl: every real function is resolved at run time from the libcurl
 * the program loaded.
 */
#define CURL_DISABLE_TYPECHECK 1
/* CURLOPT_HTTPPOST is deprecated, but programs still set it and we must follow them. */
#define CURL_DISABLE_DEPRECATION 1
#include <curl/curl.h>

#include "shim/shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "capture/exchange.h"

#define URL_MAX 8192
#define HANDLE_BUCKETS 256

__thread int shim_curl_depth __attribute__((tls_model("initial-exec")));

static void *real_init, *real_dup, *real_reset, *real_cleanup, *real_setopt, *real_perform;
static void *real_getinfo, *real_madd, *real_mremove, *real_minfo, *real_mperform;
static void *real_msocket, *real_msocket_all, *real_url_get, *real_free;

#define CURLFN(slot, name) SHIM_REAL(slot, curl_real, name)

static void *curl_real(const char *name)
{
	return shim_real_in("libcurl", name);
}

/* What the program set on one easy handle, and the transfer in flight on it. */
struct chandle {
	CURL *h;
	struct chandle *next;
	/* the program's options */
	curl_write_callback write_fn, header_fn;
	curl_read_callback read_fn;
	void *write_data, *header_data, *read_data;
	const char *postfields;
	char *postfields_copy; /* CURLOPT_COPYPOSTFIELDS: libcurl's copy is out of reach */
	curl_off_t postfieldsize; /* -1: strlen */
	const char *method;       /* GET, HEAD, POST, PUT as libcurl picks it */
	char custom[16];          /* CURLOPT_CUSTOMREQUEST */
	struct curl_slist *headers;
	char *url;
	CURLU *curlu;             /* CURLOPT_CURLU: wins over CURLOPT_URL */
	int decoded;              /* CURLOPT_ACCEPT_ENCODING: libcurl undoes Content-Encoding */
	int header_in_body;       /* CURLOPT_HEADER */
	int mime;                 /* multipart body */
	long http_version;        /* CURLOPT_HTTP_VERSION */
	char *noproxy;            /* CURLOPT_NOPROXY (a copy: the program's may go) */
	/* what the program set that a refused transfer sets aside (transfer_block) */
	void *open_fn, *sockopt_fn, *close_fn, *prereq_fn, *prereq_data;
	/* the transfer */
	int active;
	int wrapped_read;
	char *curlu_url;          /* the CURLU's URL when the transfer started */
	struct exchange_env env;
	struct exchange *x;
	int resp_begun;
	int peer_known;
	char *head;               /* the latest response head's lines (HTTP_HEAD_MAX) */
	size_t head_len;
	int status;
	int head_done;            /* the latest head ended (its blank line came) */
	char version[16];         /* the protocol of the response ("HTTP/2"); "" before it */
	/* the budget gate */
	uint64_t resv;            /* the reservation of an allowed call, for its record */
	int blocked;              /* refused: libcurl reads the 429 from us (transfer_block) */
	int gate_fd[2];           /* [0] our listener, [1] the connection libcurl made to it */
	char *gate_resp;          /* the 429 */
	size_t gate_resp_len;
};

static struct chandle *table[HANDLE_BUCKETS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned bucket(const void *h)
{
	return (unsigned)((((uintptr_t)h) >> 4) * 0x9E3779B97F4A7C15ull >> 56) % HANDLE_BUCKETS;
}

static void options_default(struct chandle *c)
{
	c->write_fn = c->header_fn = NULL;
	c->read_fn = NULL;
	c->write_data = stdout; /* libcurl's defaults (Curl_init_userdefined) */
	c->read_data = stdin;
	c->header_data = NULL;
	c->postfields = NULL;
	free(c->postfields_copy);
	c->postfields_copy = NULL;
	c->postfieldsize = -1;
	c->method = "GET";
	c->custom[0] = '\0';
	c->headers = NULL;
	free(c->url);
	c->url = NULL;
	c->curlu = NULL;
	c->decoded = c->header_in_body = c->mime = 0;
	c->http_version = CURL_HTTP_VERSION_NONE;
	free(c->noproxy);
	c->noproxy = NULL;
	c->open_fn = c->sockopt_fn = c->close_fn = c->prereq_fn = c->prereq_data = NULL;
}

/* Finds the state of h; with add (a new handle), adds fresh state first. NULL: unknown / no
 * memory. remove unlinks it (the caller frees). */
static struct chandle *handle_find(CURL *h, int add, int remove)
{
	unsigned b = bucket(h);
	struct chandle *c, **pp;

	pthread_mutex_lock(&table_lock);
	for (pp = &table[b]; *pp != NULL && (*pp)->h != h; pp = &(*pp)->next)
		;
	c = *pp;
	if (c != NULL && remove) {
		*pp = c->next;
	} else if (c == NULL && add) {
		c = calloc(1, sizeof(*c));
		if (c != NULL) {
			options_default(c);
			c->h = h;
			c->next = table[b];
			table[b] = c;
		}
	}
	pthread_mutex_unlock(&table_lock);
	return c;
}

/* ---- remembering options ---------------------------------------------------------------- */

static char *dup_capped(const char *s, size_t n, size_t max)
{
	char *d;

	if (n > max)
		return NULL;
	d = malloc(n + 1);
	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static void remember_long(struct chandle *c, CURLoption opt, long v)
{
	switch (opt) {
	case CURLOPT_POST:
		c->method = v ? "POST" : "GET";
		break;
	case CURLOPT_NOBODY:
		if (v)
			c->method = "HEAD";
		else if (strcmp(c->method, "HEAD") == 0)
			c->method = "GET";
		break;
	case CURLOPT_UPLOAD:
		c->method = v ? "PUT" : "GET";
		break;
	case CURLOPT_HTTPGET:
		if (v) {
			c->method = "GET";
			c->mime = 0;
		}
		break;
	case CURLOPT_POSTFIELDSIZE:
		c->postfieldsize = v;
		break;
	case CURLOPT_HEADER:
		c->header_in_body = v != 0;
		break;
	case CURLOPT_HTTP_VERSION:
		c->http_version = v;
		break;
	default:
		break;
	}
}

static void remember_ptr(struct chandle *c, CURLoption opt, void *p)
{
	switch (opt) {
	case CURLOPT_URL:
		free(c->url);
		c->url = p ? dup_capped(p, strlen(p), URL_MAX) : NULL;
		break;
	case CURLOPT_CURLU:
		c->curlu = p;
		break;
	case CURLOPT_WRITEFUNCTION:
		c->write_fn = (curl_write_callback)p;
		break;
	case CURLOPT_WRITEDATA:
		c->write_data = p;
		break;
	case CURLOPT_HEADERFUNCTION:
		c->header_fn = (curl_write_callback)p;
		break;
	case CURLOPT_HEADERDATA:
		c->header_data = p;
		break;
	case CURLOPT_READFUNCTION:
		c->read_fn = (curl_read_callback)p;
		break;
	case CURLOPT_READDATA:
		c->read_data = p;
		break;
	case CURLOPT_POSTFIELDS:
	case CURLOPT_COPYPOSTFIELDS:
		free(c->postfields_copy);
		c->postfields_copy = NULL;
		c->postfields = p;
		if (p != NULL && opt == CURLOPT_COPYPOSTFIELDS) {
			size_t n = c->postfieldsize >= 0 ? (size_t)c->postfieldsize : strlen(p);

			c->postfields_copy = dup_capped(p, n, CAPTURE_PARSE_MAX);
			c->postfields = c->postfields_copy;
		}
		c->method = "POST";
		c->mime = 0;
		break;
	case CURLOPT_MIMEPOST:
	case CURLOPT_HTTPPOST:
		c->method = "POST";
		c->mime = 1;
		break;
	case CURLOPT_CUSTOMREQUEST:
		c->custom[0] = '\0';
		if (p != NULL && strlen(p) < sizeof(c->custom))
			memcpy(c->custom, p, strlen(p) + 1);
		break;
	case CURLOPT_HTTPHEADER:
		c->headers = p;
		break;
	case CURLOPT_ACCEPT_ENCODING:
		c->decoded = p != NULL;
		break;
	case CURLOPT_NOPROXY:
		free(c->noproxy);
		c->noproxy = p ? dup_capped(p, strlen(p), URL_MAX) : NULL;
		break;
	case CURLOPT_OPENSOCKETFUNCTION:
		c->open_fn = p;
		break;
	case CURLOPT_SOCKOPTFUNCTION:
		c->sockopt_fn = p;
		break;
	case CURLOPT_CLOSESOCKETFUNCTION:
		c->close_fn = p;
		break;
	case CURLOPT_PREREQFUNCTION:
		c->prereq_fn = p;
		break;
	case CURLOPT_PREREQDATA:
		c->prereq_data = p;
		break;
	default:
		break;
	}
}

/* ---- the transfer ----------------------------------------------------------------------- */

static CURLcode setopt_real(CURL *h, CURLoption opt, void *p)
{
	CURLcode (*fn)(CURL *, CURLoption, ...) = CURLFN(real_setopt, "curl_easy_setopt");

	return fn != NULL ? fn(h, opt, p) : CURLE_FAILED_INIT;
}

static CURLcode setopt_long(CURL *h, CURLoption opt, long v)
{
	CURLcode (*fn)(CURL *, CURLoption, ...) = CURLFN(real_setopt, "curl_easy_setopt");

	return fn != NULL ? fn(h, opt, v) : CURLE_FAILED_INIT;
}

/* The program's callback, or what libcurl does without one, called with our mark lifted: the
 * program's own I/O in its callbacks is its own. */
static size_t call_write(curl_write_callback fn, char *p, size_t size, size_t n, void *data)
{
	int depth = shim_curl_depth;
	size_t ret;

	shim_curl_depth = 0;
	ret = fn != NULL ? fn(p, size, n, data) : fwrite(p, size, n, data);
	shim_curl_depth = depth;
	return ret;
}

/* The URL's host (as the Host header gives it), path and whether it is https; -1 when it is
 * not an http(s) URL this reader follows. */
static int url_split(const char *url, const char **auth, size_t *auth_len, const char **path,
		     size_t *path_len, int *tls)
{
	const char *p = strstr(url, "://"), *end;

	*tls = 0;
	if (p != NULL) {
		if ((size_t)(p - url) == 5 && strncasecmp(url, "https", 5) == 0)
			*tls = 1;
		else if ((size_t)(p - url) != 4 || strncasecmp(url, "http", 4) != 0)
			return -1;
		url = p + 3;
	}
	end = url + strcspn(url, "/?#");
	p = memchr(url, '@', (size_t)(end - url)); /* user:password@ */
	*auth = p ? p + 1 : url;
	*auth_len = (size_t)(end - *auth);
	*path = *end == '/' ? end : "/";
	*path_len = *end == '/' ? strcspn(end, "#") : 1;
	return *auth_len > 0 ? 0 : -1;
}

/* The request's head as the program set it, with version as its protocol: 0, or -1 when the
 * URL is not one this reader follows (or out of memory). */
static int request_head(struct chandle *c, const char *version, struct exchange_head *eh)
{
	struct exchange_field f[HTTP_MAX_HEADERS];
	const struct curl_slist *l;
	const char *auth, *path, *method = c->custom[0] ? c->custom : c->method;
	const char *url = c->curlu != NULL ? c->curlu_url : c->url;
	size_t alen, plen, n = 0;
	int has_ct = 0;

	if (url == NULL || url_split(url, &auth, &alen, &path, &plen, &c->env.tls) != 0)
		return -1;
	/* the URL's authority is the Host header unless the program sets its own */
	for (l = c->headers; l != NULL; l = l->next) {
		if (l->data != NULL && strncasecmp(l->data, "host:", 5) == 0)
			break;
	}
	if (l == NULL)
		f[n++] = (struct exchange_field){ "host", 4, auth, alen };
	for (l = c->headers; l != NULL && n < HTTP_MAX_HEADERS - 1; l = l->next) {
		const char *colon = l->data ? strchr(l->data, ':') : NULL;
		const char *v = colon ? colon + 1 : NULL;

		if (colon == NULL)
			continue;
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v == '\0')
			continue; /* "Name:" removes a header libcurl would add */
		f[n++] = (struct exchange_field){ l->data, (size_t)(colon - l->data), v, strlen(v) };
		has_ct |= (size_t)(colon - l->data) == 12 && strncasecmp(l->data, "content-type", 12) == 0;
	}
	/* what libcurl sends when the program names no type (a multipart boundary is libcurl's
	 * own, unknown here) */
	if (!has_ct && c->postfields != NULL && strcmp(method, "POST") == 0)
		f[n++] = (struct exchange_field){ "content-type", 12,
						  "application/x-www-form-urlencoded", 33 };
	else if (!has_ct && c->mime && strcmp(method, "POST") == 0)
		f[n++] = (struct exchange_field){ "content-type", 12, "multipart/form-data", 19 };
	return exchange_head_build(eh, version, method, path, plen, 0, f, n);
}

/* The URL of a CURLU handle, read as libcurl reads it when a transfer starts (a copy the
 * caller frees); NULL when it has none. */
static char *curlu_url(CURLU *u)
{
	CURLUcode (*get)(CURLU *, CURLUPart, char **, unsigned) =
		CURLFN(real_url_get, "curl_url_get");
	void (*cfree)(void *) = CURLFN(real_free, "curl_free");
	char *s = NULL, *d = NULL;

	if (get == NULL || cfree == NULL)
		return NULL;
	if (get(u, CURLUPART_URL, &s, 0) == CURLUE_OK && s != NULL)
		d = dup_capped(s, strlen(s), URL_MAX);
	cfree(s);
	return d;
}

/* The request as the program set it: an exchange when it is an LLM call. Its protocol is
 * libcurl's choice, known from the response's status line (header_cb): until then HTTP/1.1. */
static void transfer_request(struct chandle *c)
{
	struct exchange_head eh;

	if (request_head(c, "HTTP/1.1", &eh) != 0)
		return;
	c->env.cfg = shim_config();
	c->env.emit = shim_sink_emit;
	c->env.ctx = NULL;
	c->env.peer_len = 0;
	c->x = exchange_for_request(&c->env, &eh.head, exchange_clock_ns(CLOCK_REALTIME),
				    exchange_clock_ns(CLOCK_MONOTONIC));
	exchange_head_release(&eh);
	if (c->x != NULL && c->postfields != NULL)
		exchange_request_body(c->x, c->postfields,
				      c->postfieldsize >= 0 ? (size_t)c->postfieldsize
							    : strlen(c->postfields));
}

/* The first status line names the protocol libcurl chose ("HTTP/2 200"): the kept request head
 * says it too. */
static void transfer_version(struct chandle *c, const char *line, size_t len)
{
	struct exchange_head eh;
	size_t n = strcspn(line, " \r\n");

	if (n >= sizeof(c->version) || n >= len)
		return;
	memcpy(c->version, line, n);
	c->version[n] = '\0';
	if (request_head(c, c->version, &eh) != 0)
		return;
	exchange_request_head(&c->env, c->x, &eh.head);
	exchange_head_release(&eh);
}

/* The peer libcurl connected to, for the locality, once the response begins. */
static void transfer_peer(struct chandle *c)
{
	CURLcode (*getinfo)(CURL *, CURLINFO, ...) = CURLFN(real_getinfo, "curl_easy_getinfo");
	char *ip = NULL;
	long port = 0;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&c->env.peer;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->env.peer;

	c->peer_known = 1;
	if (getinfo == NULL || getinfo(c->h, CURLINFO_PRIMARY_IP, &ip) != CURLE_OK || ip == NULL)
		return;
	getinfo(c->h, CURLINFO_PRIMARY_PORT, &port);
	memset(&c->env.peer, 0, sizeof(c->env.peer));
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		c->env.peer_len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		c->env.peer_len = sizeof(*s6);
	}
	if (c->env.peer_len > 0)
		exchange_relocate(&c->env, c->x);
}

/* The latest response head (its lines gathered by header_cb) begins the response. */
static void transfer_response(struct chandle *c)
{
	struct exchange_field f[HTTP_MAX_HEADERS];
	struct exchange_head eh;
	size_t n = 0;
	char *p = c->head, *end = c->head + c->head_len;

	c->resp_begun = 1;
	while (p != NULL && p < end && n < HTTP_MAX_HEADERS) {
		char *eol = memchr(p, '\n', (size_t)(end - p));
		char *colon = memchr(p, ':', (size_t)((eol ? eol : end) - p));
		char *v, *ve = eol ? eol : end;

		if (colon != NULL && strncmp(p, "HTTP/", 5) != 0) {
			for (v = colon + 1; v < ve && (*v == ' ' || *v == '\t'); v++)
				;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
				ve--;
			f[n++] = (struct exchange_field){ p, (size_t)(colon - p), v, (size_t)(ve - v) };
		}
		p = eol ? eol + 1 : NULL;
	}
	if (exchange_head_build(&eh, c->version[0] ? c->version : "HTTP/1.1", NULL, NULL, 0,
				c->status, f, n) != 0) {
		/* Out of memory: dropped and counted, not recorded as a call with no answer. */
		exchange_drop(&c->env, CAPTURE_DROP_NOMEM);
		exchange_free(c->x);
		c->x = NULL;
		return;
	}
	if (exchange_begin_response(&c->env, c->x, &eh.head, c->decoded) != 0) {
		exchange_free(c->x); /* a candidate whose answer cannot hold usage */
		c->x = NULL;
	}
	exchange_head_release(&eh);
}

/* CURLOPT_HEADER: is this write a header line, which libcurl hands to the write function just
 * before the header function (header_cb)? A head lasts from its status line to the blank line
 * that ends a final (not 1xx) head. */
static int header_echo(struct chandle *c, const char *p, size_t len)
{
	if (!c->header_in_body || c->resp_begun)
		return 0;
	if (len > 5 && strncmp(p, "HTTP/", 5) == 0)
		c->head_done = 0; /* a new head (after a 1xx, or a redirect followed) */
	return !c->head_done;
}

static size_t write_cb(char *p, size_t size, size_t n, void *data)
{
	struct chandle *c = data;
	size_t ret = call_write(c->write_fn, p, size, n, c->write_data);
	int saved = errno;

	if (c->x != NULL && ret == size * n && ret > 0 && !header_echo(c, p, ret)) {
		shim_busy = 1;
		if (!c->resp_begun)
			transfer_response(c);
		if (c->x != NULL)
			exchange_response_body(c->x, p, ret);
		shim_busy = 0;
	}
	errno = saved;
	return ret;
}

static size_t header_cb(char *p, size_t size, size_t n, void *data)
{
	struct chandle *c = data;
	size_t len = size * n, ret;
	int saved;

	/* libcurl: without a header function, the write function gets the headers when header
	 * data is set, else nobody does */
	if (c->header_fn != NULL)
		ret = call_write(c->header_fn, p, size, n, c->header_data);
	else if (c->header_data != NULL)
		ret = call_write(c->write_fn, p, size, n, c->header_data);
	else
		ret = len;
	saved = errno;
	if (c->x != NULL && !c->resp_begun && ret == len) {
		shim_busy = 1;
		if (!c->peer_known)
			transfer_peer(c);
		exchange_response_started(c->x);
		if (len > 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new head: 1xx, redirect, final */
			const char *sp = memchr(p, ' ', len);

			c->head_len = 0;
			c->head_done = 0;
			c->status = sp != NULL ? atoi(sp + 1) : 0;
			if (c->version[0] == '\0')
				transfer_version(c, p, len);
		}
		if (c->head == NULL)
			c->head = malloc(HTTP_HEAD_MAX);
		if (c->head != NULL && c->head_len + len <= HTTP_HEAD_MAX) {
			memcpy(c->head + c->head_len, p, len);
			c->head_len += len;
		}
		if ((len == 2 && p[0] == '\r') || (len == 1 && p[0] == '\n'))
			c->head_done = c->status >= 200;
		shim_busy = 0;
	}
	errno = saved;
	return ret;
}

static size_t read_cb(char *p, size_t size, size_t n, void *data)
{
	struct chandle *c = data;
	int depth = shim_curl_depth, saved;
	size_t ret;

	shim_curl_depth = 0;
	ret = c->read_fn != NULL ? c->read_fn(p, size, n, c->read_data)
				 : fread(p, size, n, c->read_data);
	shim_curl_depth = depth;
	saved = errno;
	if (c->x != NULL && ret > 0 && ret <= size * n) { /* not ABORT or PAUSE */
		shim_busy = 1;
		exchange_request_body(c->x, p, ret);
		shim_busy = 0;
	}
	errno = saved;
	return ret;
}

/* ---- the budget gate (gate.c, docs/budgets.md) ---------------------------------------------- */

/*
 * A transfer the gate refuses is not sent, and the program must still get the 429 exactly as
 * libcurl delivers an answer: its header and write callbacks called by libcurl, getinfo
 * answering, CURLE_OK (or CURLE_HTTP_RETURNED_ERROR with CURLOPT_FAILONERROR), the multi
 * interface's DONE message, a handle that works for the next transfer. So libcurl itself reads
 * it: for the transfer's duration its URL is http://127.0.0.1:PORT/… over HTTP/1.1 with no
 * proxy, PORT a loopback listener of ours, and when libcurl has connected (its PREREQFUNCTION,
 * called before any byte of the request is sent) the connection is accepted and the 429 written
 * on it. Nothing leaves the machine and no name is looked up. The program's socket callbacks
 * are set aside meanwhile (the connection is not the program's) and its PREREQFUNCTION is
 * called after ours, as libcurl would. When the transfer ends the program's options are set
 * back; libcurl's effective URL is then the program's again.
 */

/* The request body as libcurl sends it, when the transfer starts knowing it whole: 0, or -1
 * for a READFUNCTION's or a multipart body, which pass libcurl's callbacks only as they are
 * sent, too late to decide (the wire gate below holds those, on HTTP/1.x). */
static int transfer_body(const struct chandle *c, const char **body, size_t *len)
{
	*body = c->postfields;
	*len = c->postfields == NULL ? 0
	       : c->postfieldsize >= 0 ? (size_t)c->postfieldsize : strlen(c->postfields);
	return c->mime || (c->postfields == NULL && (strcmp(c->method, "POST") == 0 ||
						     strcmp(c->method, "PUT") == 0)) ? -1 : 0;
}

/* CURLOPT_PREREQFUNCTION of a refused transfer: libcurl is connected to our listener. */
static int gate_prereq_cb(void *data, char *primary_ip, char *local_ip, int primary_port,
			  int local_port)
{
	struct chandle *c = data;
	curl_prereq_callback fn = (curl_prereq_callback)c->prereq_fn;
	int busy = shim_busy, fd, ret = CURL_PREREQFUNC_ABORT;

	shim_busy = 1;
	/* the listener is non-blocking: libcurl's connection is in its queue, or nothing is */
	fd = accept4(c->gate_fd[0], NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0 && send(fd, c->gate_resp, c->gate_resp_len, MSG_NOSIGNAL) ==
			       (ssize_t)c->gate_resp_len && shutdown(fd, SHUT_WR) == 0)
		ret = CURL_PREREQFUNC_OK;
	if (fd >= 0)
		c->gate_fd[1] = fd; /* open until the transfer ends: libcurl still writes to it */
	shim_busy = busy;
	if (ret == CURL_PREREQFUNC_OK && fn != NULL) {
		int depth = shim_curl_depth;

		shim_curl_depth = 0; /* the program's own I/O in its callback is its own */
		ret = fn(c->prereq_data, primary_ip, local_ip, primary_port, local_port);
		shim_curl_depth = depth;
	}
	return ret;
}

/* Points the refused transfer on c at the 429 resp (taken: freed when the transfer ends).
 * Returns 0, or -1 when that cannot be done (the transfer then goes as if there were no gate;
 * resp is freed). */
static int transfer_block(struct chandle *c, char *resp, size_t len, const char *path,
			  size_t plen)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	char url[URL_MAX + 64];
	int l, rc = -1;

	shim_busy = 1;
	l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&a, &alen) != 0)
		goto listener_close;
	snprintf(url, sizeof url, "http://127.0.0.1:%u%.*s", (unsigned)ntohs(a.sin_port),
		 (int)plen, path);
	/* libcurl 7.80 and later: an older one cannot be answered this way */
	if (setopt_real(c->h, CURLOPT_PREREQFUNCTION, (void *)gate_prereq_cb) != CURLE_OK)
		goto listener_close;
	setopt_real(c->h, CURLOPT_PREREQDATA, c);
	if (c->curlu != NULL)
		setopt_real(c->h, CURLOPT_CURLU, NULL);
	setopt_real(c->h, CURLOPT_URL, url);
	setopt_real(c->h, CURLOPT_NOPROXY, "*");
	if (c->http_version == CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)
		setopt_long(c->h, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	setopt_real(c->h, CURLOPT_OPENSOCKETFUNCTION, NULL);
	setopt_real(c->h, CURLOPT_SOCKOPTFUNCTION, NULL);
	setopt_real(c->h, CURLOPT_CLOSESOCKETFUNCTION, NULL);
	c->blocked = 1;
	c->gate_fd[0] = l;
	c->gate_fd[1] = -1;
	c->gate_resp = resp;
	c->gate_resp_len = len;
	rc = 0;
listener_close:
	if (rc != 0 && l >= 0)
		close(l);
	if (rc != 0)
		free(resp);
	shim_busy = 0;
	return rc;
}

/* The refused transfer ended: the program's options go back, our sockets close. */
static void transfer_unblock(struct chandle *c)
{
	const char *url = c->curlu != NULL ? c->curlu_url : c->url, *body;
	size_t blen;

	c->blocked = 0;
	shim_busy = 1;
	transfer_body(c, &body, &blen);
	shim_gate_request_end(body, blen, 0, 1);
	/* the program's URL (with a CURLU, the URL it gave: libcurl's effective URL says it) */
	setopt_real(c->h, CURLOPT_URL, (void *)url);
	if (c->curlu != NULL)
		setopt_real(c->h, CURLOPT_CURLU, c->curlu);
	setopt_real(c->h, CURLOPT_NOPROXY, c->noproxy);
	if (c->http_version == CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)
		setopt_long(c->h, CURLOPT_HTTP_VERSION, c->http_version);
	setopt_real(c->h, CURLOPT_OPENSOCKETFUNCTION, c->open_fn);
	setopt_real(c->h, CURLOPT_SOCKOPTFUNCTION, c->sockopt_fn);
	setopt_real(c->h, CURLOPT_CLOSESOCKETFUNCTION, c->close_fn);
	setopt_real(c->h, CURLOPT_PREREQFUNCTION, c->prereq_fn);
	setopt_real(c->h, CURLOPT_PREREQDATA, c->prereq_data);
	for (int i = 0; i < 2; i++) {
		if (c->gate_fd[i] >= 0)
			close(c->gate_fd[i]);
		c->gate_fd[i] = -1;
	}
	free(c->gate_resp);
	c->gate_resp = NULL;
	shim_busy = 0;
}

/* The gate decides an LLM transfer before anything of it is sent: 1 when it was refused (and
 * now reads the 429), 0 when it goes. */
static int transfer_gate(struct chandle *c)
{
	const char *url = c->curlu != NULL ? c->curlu_url : c->url, *auth, *path, *body;
	size_t alen, plen, blen, len = 0;
	char *resp = NULL;
	int tls, blocked = 0;

	if (transfer_body(c, &body, &blen) == 0 && url != NULL &&
	    url_split(url, &auth, &alen, &path, &plen, &tls) == 0 &&
	    shim_gate_request(auth, alen, tls, path, plen, body, blen, &c->resv, &resp, &len) ==
		    SHIM_GATE_DONE) {
		blocked = resp != NULL && transfer_block(c, resp, len, path, plen) == 0;
		if (!blocked)
			shim_log("budgets: the 429 of a libcurl transfer could not be given; it goes");
	}
	return blocked;
}

/* A transfer starts on h: when it is an LLM call, our callbacks go in front. */
static void transfer_begin(CURL *h)
{
	struct chandle *c = handle_find(h, 0, 0);

	if (c == NULL || c->active)
		return;
	shim_busy = 1;
	c->active = 1;
	c->resp_begun = c->peer_known = 0;
	c->head_len = 0;
	c->status = 0;
	c->head_done = 0;
	c->version[0] = '\0';
	if (c->curlu != NULL)
		c->curlu_url = curlu_url(c->curlu);
	transfer_request(c);
	shim_busy = 0;
	if (c->x != NULL && shim_gate_writes_on() && transfer_gate(c)) {
		exchange_free(c->x); /* the gate stored the call's record */
		c->x = NULL;
	}
	if (c->x == NULL)
		return;
	setopt_real(h, CURLOPT_WRITEFUNCTION, (void *)write_cb);
	setopt_real(h, CURLOPT_WRITEDATA, c);
	setopt_real(h, CURLOPT_HEADERFUNCTION, (void *)header_cb);
	setopt_real(h, CURLOPT_HEADERDATA, c);
	c->wrapped_read = c->postfields == NULL && !c->mime &&
			  (strcmp(c->method, "POST") == 0 || strcmp(c->method, "PUT") == 0);
	if (c->wrapped_read) {
		setopt_real(h, CURLOPT_READFUNCTION, (void *)read_cb);
		setopt_real(h, CURLOPT_READDATA, c);
	}
}

/* How a transfer ended: libcurl's result, or one of these when it did not say. */
enum { END_GIVEN_UP = -1, END_REMOVED = -2 };

/* libcurl's results that mean the answer was not valid HTTP: counted like the byte-level
 * reader's http_error (capture.h). */
static int result_is_protocol_error(int result)
{
	return result == CURLE_UNSUPPORTED_PROTOCOL /* HTTP/0.9: no status line */ ||
	       result == CURLE_WEIRD_SERVER_REPLY || result == CURLE_HTTP2 ||
	       result == CURLE_HTTP2_STREAM || result == CURLE_HTTP3;
}

/* The transfer on c ended with result (CURLE_OK: complete; END_REMOVED: taken off its multi
 * handle without a DONE message read, complete as far as its response came): the program's
 * callbacks go back and the exchange emits its record. */
static void transfer_end(struct chandle *c, int result)
{
	int complete;

	if (c == NULL || !c->active)
		return;
	c->active = 0;
	if (c->blocked)
		transfer_unblock(c);
	free(c->curlu_url);
	c->curlu_url = NULL;
	if (c->x == NULL)
		goto resv_release;
	setopt_real(c->h, CURLOPT_WRITEFUNCTION, (void *)c->write_fn);
	setopt_real(c->h, CURLOPT_WRITEDATA, c->write_data);
	setopt_real(c->h, CURLOPT_HEADERFUNCTION, (void *)c->header_fn);
	setopt_real(c->h, CURLOPT_HEADERDATA, c->header_data);
	if (c->wrapped_read) {
		setopt_real(c->h, CURLOPT_READFUNCTION, (void *)c->read_fn);
		setopt_real(c->h, CURLOPT_READDATA, c->read_data);
	}
	shim_busy = 1;
	if (!c->peer_known) /* no answer came: the address libcurl tried still says where */
		transfer_peer(c);
	/* a response without a body; a head libcurl turned down midway is no response */
	if (!c->resp_begun && c->head_done)
		transfer_response(c);
	complete = c->resp_begun && (result == CURLE_OK || result == END_REMOVED);
	if (c->x != NULL)
		exchange_emit(&c->env, c->x, complete,
			      result_is_protocol_error(result) ? CAPTURE_DROP_HTTP : -1);
	exchange_free(c->x);
	c->x = NULL;
	shim_busy = 0;
resv_release:
	/* an allowed call whose record did not settle its reservation (it made none) */
	if (c->resv != 0) {
		const char *body;
		size_t blen;

		transfer_body(c, &body, &blen);
		shim_busy = 1;
		shim_gate_request_end(body, blen, c->resv, 0);
		shim_busy = 0;
		c->resv = 0;
	}
}

void shim_curl_atfork_child(void)
{
	shim_curl_depth = 0;
	/* Another thread of the parent may have held it at the fork. */
	pthread_mutex_init(&table_lock, NULL);
}

static void handle_free(struct chandle *c)
{
	if (c == NULL)
		return;
	transfer_end(c, END_GIVEN_UP);
	options_default(c);
	free(c->head);
	free(c);
}

/* ---- the hooks -------------------------------------------------------------------------- */

SHIM_EXPORT CURL *curl_easy_init(void)
{
	CURL *(*fn)(void) = CURLFN(real_init, "curl_easy_init");
	CURL *h;
	int saved;

	if (fn == NULL)
		return NULL;
	h = fn();
	saved = errno;
	if (h != NULL && !shim_busy)
		handle_find(h, 1, 0);
	errno = saved;
	return h;
}

SHIM_EXPORT CURL *curl_easy_duphandle(CURL *h)
{
	CURL *(*fn)(CURL *) = CURLFN(real_dup, "curl_easy_duphandle");
	struct chandle *from, *to;
	CURL *d;
	int saved;

	if (fn == NULL)
		return NULL;
	d = fn(h);
	saved = errno;
	from = d != NULL ? handle_find(h, 0, 0) : NULL;
	to = from != NULL ? handle_find(d, 1, 0) : NULL;
	if (to != NULL) {
		/* the copy has the program's options (ours are in front only during a transfer) */
		struct chandle *next = to->next;
		/* a CURLU is read now: a libcurl may give the copy one of its own, and the
		 * program may free the original */
		char *url = from->curlu != NULL ? curlu_url(from->curlu)
			    : from->url != NULL ? dup_capped(from->url, strlen(from->url), URL_MAX)
						: NULL;
		char *pf = from->postfields_copy
				   ? dup_capped(from->postfields_copy,
						from->postfieldsize >= 0 ? (size_t)from->postfieldsize
									 : strlen(from->postfields_copy),
						CAPTURE_PARSE_MAX)
				   : NULL;

		memcpy(to, from, offsetof(struct chandle, active));
		to->h = d;
		to->next = next;
		to->url = url;
		to->curlu = NULL;
		to->postfields_copy = pf;
		if (from->postfields_copy != NULL)
			to->postfields = pf;
		to->noproxy = from->noproxy != NULL
				      ? dup_capped(from->noproxy, strlen(from->noproxy), URL_MAX)
				      : NULL;
	}
	errno = saved;
	return d;
}

SHIM_EXPORT void curl_easy_reset(CURL *h)
{
	void (*fn)(CURL *) = CURLFN(real_reset, "curl_easy_reset");
	struct chandle *c = handle_find(h, 0, 0);

	if (c != NULL) {
		transfer_end(c, END_GIVEN_UP);
		options_default(c);
	}
	if (fn != NULL)
		fn(h);
}

SHIM_EXPORT void curl_easy_cleanup(CURL *h)
{
	void (*fn)(CURL *) = CURLFN(real_cleanup, "curl_easy_cleanup");

	if (h != NULL)
		handle_free(handle_find(h, 0, 1));
	if (fn != NULL)
		fn(h);
}

SHIM_EXPORT CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	CURLcode (*fn)(CURL *, CURLoption, ...) = CURLFN(real_setopt, "curl_easy_setopt");
	struct chandle *c;
	CURLcode ret;
	va_list ap;
	long lv = 0;
	curl_off_t ov = 0;
	void *pv = NULL;
	int saved;

	if (fn == NULL)
		return CURLE_FAILED_INIT;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		lv = va_arg(ap, long);
	else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
		ov = va_arg(ap, curl_off_t);
	else
		pv = va_arg(ap, void *);
	va_end(ap);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		ret = fn(h, opt, lv);
	else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
		ret = fn(h, opt, ov);
	else
		ret = fn(h, opt, pv);
	if (ret != CURLE_OK || shim_busy)
		return ret;
	saved = errno;
	c = handle_find(h, 0, 0);
	if (c != NULL && opt < CURLOPTTYPE_OBJECTPOINT)
		remember_long(c, opt, lv);
	else if (c != NULL && opt == CURLOPT_POSTFIELDSIZE_LARGE)
		c->postfieldsize = ov;
	else if (c != NULL)
		remember_ptr(c, opt, pv);
	errno = saved;
	return ret;
}

SHIM_EXPORT CURLcode curl_easy_perform(CURL *h)
{
	CURLcode (*fn)(CURL *) = CURLFN(real_perform, "curl_easy_perform");
	CURLcode ret;
	int saved;

	if (fn == NULL)
		return CURLE_FAILED_INIT;
	if (!shim_busy)
		transfer_begin(h);
	shim_curl_depth++;
	ret = fn(h);
	shim_curl_depth--;
	saved = errno;
	if (!shim_busy)
		transfer_end(handle_find(h, 0, 0), ret);
	errno = saved;
	return ret;
}

SHIM_EXPORT CURLMcode curl_multi_add_handle(CURLM *m, CURL *h)
{
	CURLMcode (*fn)(CURLM *, CURL *) = CURLFN(real_madd, "curl_multi_add_handle");
	CURLMcode ret;

	if (fn == NULL)
		return CURLM_INTERNAL_ERROR;
	ret = fn(m, h);
	if (ret == CURLM_OK && !shim_busy) {
		int saved = errno;

		transfer_begin(h);
		errno = saved;
	}
	return ret;
}

SHIM_EXPORT CURLMcode curl_multi_remove_handle(CURLM *m, CURL *h)
{
	CURLMcode (*fn)(CURLM *, CURL *) = CURLFN(real_mremove, "curl_multi_remove_handle");
	struct chandle *c;

	if (fn == NULL)
		return CURLM_INTERNAL_ERROR;
	/* No DONE message read for it: it ended as far as its response came, or was given up. */
	c = shim_busy ? NULL : handle_find(h, 0, 0);
	if (c != NULL && c->active)
		transfer_end(c, END_REMOVED);
	return fn(m, h);
}

SHIM_EXPORT CURLMsg *curl_multi_info_read(CURLM *m, int *left)
{
	CURLMsg *(*fn)(CURLM *, int *) = CURLFN(real_minfo, "curl_multi_info_read");
	CURLMsg *msg;
	int saved;

	if (fn == NULL)
		return NULL;
	msg = fn(m, left);
	saved = errno;
	if (msg != NULL && msg->msg == CURLMSG_DONE && !shim_busy)
		transfer_end(handle_find(msg->easy_handle, 0, 0), msg->data.result);
	errno = saved;
	return msg;
}

SHIM_EXPORT CURLMcode curl_multi_perform(CURLM *m, int *running)
{
	CURLMcode (*fn)(CURLM *, int *) = CURLFN(real_mperform, "curl_multi_perform");
	CURLMcode ret;

	if (fn == NULL)
		return CURLM_INTERNAL_ERROR;
	shim_curl_depth++;
	ret = fn(m, running);
	shim_curl_depth--;
	return ret;
}

SHIM_EXPORT CURLMcode curl_multi_socket_action(CURLM *m, curl_socket_t s, int ev, int *running)
{
	CURLMcode (*fn)(CURLM *, curl_socket_t, int, int *) =
		CURLFN(real_msocket, "curl_multi_socket_action");
	CURLMcode ret;

	if (fn == NULL)
		return CURLM_INTERNAL_ERROR;
	shim_curl_depth++;
	ret = fn(m, s, ev, running);
	shim_curl_depth--;
	return ret;
}

SHIM_EXPORT CURLMcode curl_multi_socket_all(CURLM *m, int *running)
{
	CURLMcode (*fn)(CURLM *, int *) = CURLFN(real_msocket_all, "curl_multi_socket_all");
	CURLMcode ret;

	if (fn == NULL)
		return CURLM_INTERNAL_ERROR;
	shim_curl_depth++;
	ret = fn(m, running);
	shim_curl_depth--;
	return ret;
}
