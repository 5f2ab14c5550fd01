/*
 * gate.c - budgets enforced inside the agent: an LLM request is checked against the budgets it
 * falls under before its bytes leave the process, and a request that would cross a block
 * budget is answered here with the provider's own 429 (docs/budgets.md).
 *
 * Without TOKSHIM_BUDGETS nothing here runs: every hook tests shim_gate_on (or
 * shim_gate_reads) once, a branch that is never taken. With budgets, the gate parses each
 * connection's outgoing bytes with its own HTTP parser BEFORE the real write, because the
 * model and max_tokens are in the body and clients write a request in one write (curl,
 * requests) or several (httpx: head, then body). A write that does not complete an LLM request
 * is held: the hook reports it written without calling the real function. When the request is
 * complete the gate decides:
 *   allow - a reservation is taken in the store (check and reserve in one write transaction,
 *           so concurrent agents cannot overshoot together), then everything held is written
 *           with the real function, looping until all is out; on a non-blocking socket that
 *           says EAGAIN / SSL_ERROR_WANT_WRITE the gate poll()s the descriptor and retries (a
 *           short wait inside the agent's call, which the agent cannot tell from a slow send);
 *   block - nothing is sent; the 429 waits in the connection and the next reads return it
 *           without calling the real function; a record with error budget_exceeded is stored.
 * Requests that are not LLM calls are released as soon as their head shows it.
 *
 * A blocked connection also gets shutdown(fd, SHUT_RD): clients poll() the socket for
 * readability before they read (curl, asyncio), and the server, which never got a request,
 * would never make it readable. SHUT_RD makes it readable at once, locally. SHUT_WR would
 * wake them too, through the server's close, but a later write of the agent (a TLS
 * close_notify) would then raise SIGPIPE in an agent that does not ignore it.
 *
 * libcurl's transfers are decided above the wire, when they start (shim_gate_request, called
 * by hooks_curl.c with the URL and body the program set), whatever protocol libcurl then
 * speaks: HTTP/2 included, which the parser here does not read. Such a request, allowed or
 * refused, is marked so that the wire gate, seeing it go out inside libcurl, lets it pass once
 * instead of deciding (and reserving, and recording a block) a second time.
 *
 * Fail open everywhere else: a malformed budget file enforces nothing (said in TOKSHIM_LOG);
 * an unreadable store, a request over the hold cap, a parse error, or no memory lets the
 * bytes go as if there were no gate. Pipelined requests after an LLM request in one write are
 * sent with it unchecked (their records still count).
 */
#include "shim/shim.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "budget/budget.h"
#include "capture/dbuf.h"
#include "http/http.h"
#include "providers/provider.h"

/* A request bigger than this is let through unchecked rather than held. */
#define GATE_HOLD_MAX (16u << 20)
#define GATE_FD_MAX 65536
#define GATE_SSL_BUCKETS 1024
/* Reservations waiting for their record, matched by request_hash. */
#define GATE_PENDING_MAX 256
/* The longest the gate waits for a non-blocking socket to take held bytes. */
#define GATE_POLL_MS 60000
#define GATE_HOST_MAX 256

int shim_gate_on;
int shim_gate_reads;

enum gate_state {
	GATE_IDLE,    /* between requests: the next byte starts one, held */
	GATE_HOLD,    /* inside a request whose bytes are held */
	GATE_PASS,    /* inside a request that is not an LLM call: bytes pass, seen after */
	GATE_DEAD,    /* nothing more to check on this connection */
	GATE_BLOCKED, /* a 429 waits to be read (resp) */
};

struct gate_conn {
	pthread_mutex_t lock;
	void *ssl;                /* key: the SSL*, or NULL for a plaintext descriptor */
	struct gate_conn *next;   /* SSL table chain */
	int tls;
	enum gate_state state;
	struct http_parser parser;
	struct dbuf hold;         /* raw bytes held */
	struct dbuf body;         /* the LLM request's body, de-chunked */
	int llm, head_seen, msg_end, complete, after_send;
	struct provider_match match;
	char host[GATE_HOST_MAX];
	char path[1024];
	char *resp;               /* the 429 an agent reads, when blocked */
	size_t resp_len, resp_off;
};

/* What a complete LLM request hands to the decision, moved out of the connection. */
struct gate_req {
	struct dbuf hold, body;
	struct provider_match match;
	char host[GATE_HOST_MAX];
	char path[1024];
};

static struct budget_set *gate_budgets;
static struct pricing *gate_pricing;
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;
static int64_t gate_test_now_ns; /* TOKSHIM_TEST_NOW, 0 when unset */

static struct gate_conn *gate_fds[GATE_FD_MAX];
static struct gate_conn *gate_ssl[GATE_SSL_BUCKETS];
static pthread_mutex_t gate_table_lock = PTHREAD_MUTEX_INITIALIZER;

/* above: decided by a layer above the wire (libcurl's transfers): the wire gate lets one request
 * with this hash pass without deciding it again. */
static struct {
	uint64_t hash, resv;
	int above;
} gate_pending[GATE_PENDING_MAX];
/*
 * Request hashes of recent blocked calls. A capture layer above the sockets (libcurl's,
 * hooks_curl.c) sees the agent read the gate's 429 and emits a record of it: the gate has
 * already stored that call's budget_exceeded record, so the echo is dropped.
 */
#define GATE_BLOCKED_MAX 16
static uint64_t gate_blocked[GATE_BLOCKED_MAX];
static unsigned gate_blocked_next;
/*
 * Requests refused above the wire (libcurl's transfers): libcurl then sends each to a listener
 * of the shim's own that answers the 429 (hooks_curl.c), and the wire gate lets it pass.
 */
static struct {
	uint64_t hash;
	int used;
} gate_above[GATE_BLOCKED_MAX];
static unsigned gate_above_next;
static pthread_mutex_t gate_pending_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- settings -------------------------------------------------------------------------------- */

__attribute__((constructor)) static void gate_init(void)
{
	const char *path = getenv("TOKSHIM_BUDGETS");
	const char *now = getenv("TOKSHIM_TEST_NOW");

	shim_gate_on = path != NULL && path[0] != '\0';
	/* Test only (docs/budgets.md): a fixed clock for budget windows and records. */
	if (now != NULL && now[0] != '\0')
		gate_test_now_ns = strtoll(now, NULL, 10) * 1000000000;
}

static void gate_load(void)
{
	const char *path = getenv("TOKSHIM_BUDGETS");
	char err[600];
	int rc;

	rc = budget_load(&gate_budgets, path, err, sizeof err);
	if (rc != 0) {
		shim_log("budgets not enforced: %s", err);
		return;
	}
	rc = pricing_load(&gate_pricing, err, sizeof err);
	if (rc != 0)
		shim_log("budgets: prices unavailable, costs count 0: %s", err);
	shim_log("budgets: %zu from '%s'", gate_budgets->n, path);
}

/* Loads the budget file once; 0 (and the gate off for good) when it is malformed. */
static int gate_ready(void)
{
	pthread_once(&gate_once, gate_load);
	if (gate_budgets == NULL)
		__atomic_store_n(&shim_gate_on, 0, __ATOMIC_RELAXED);
	return gate_budgets != NULL;
}

static int64_t gate_now_ns(void)
{
	struct timespec ts;

	if (gate_test_now_ns != 0)
		return gate_test_now_ns;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the per-connection parser --------------------------------------------------------------- */

/* Host (lowercase, without port, into host of GATE_HOST_MAX bytes) and port of an authority
 * ("Host:" value or URL authority, vn bytes). */
static void gate_authority(const char *v, size_t vn, int tls, char *host, unsigned *port)
{
	const char *colon = vn > 0 ? memchr(v, ':', vn) : NULL;
	size_t n = 0;

	*port = tls ? 443 : 80;
	if (colon != NULL && v[0] != '[') {
		*port = (unsigned)strtoul(colon + 1, NULL, 10);
		vn = (size_t)(colon - v);
	}
	for (; n < vn && n < GATE_HOST_MAX - 1; n++)
		host[n] = (char)(v[n] >= 'A' && v[n] <= 'Z' ? v[n] + 32 : v[n]);
	host[n] = '\0';
}

/* Host and port of a request from its Host header. */
static void gate_host(struct gate_conn *g, const struct http_head *h, unsigned *port)
{
	const struct http_header *hh = http_head_get(h, "host");

	gate_authority(hh != NULL ? hh->value : "", hh != NULL ? hh->value_len : 0, g->tls,
		       g->host, port);
}

static enum http_body_mode gate_on_head(void *ctx, const struct http_head *h)
{
	struct gate_conn *g = ctx;
	size_t n = h->target_len < sizeof g->path - 1 ? h->target_len : sizeof g->path - 1;
	unsigned port;

	g->head_seen = 1;
	g->msg_end = 0;
	g->complete = 0;
	dbuf_release(&g->body);
	memcpy(g->path, h->target, n);
	g->path[n] = '\0';
	gate_host(g, h, &port);
	g->llm = !g->after_send && !(h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0) &&
		 provider_match(g->host, port, g->path, &g->match);
	return g->llm ? HTTP_BODY_DELIVER : HTTP_BODY_SKIP;
}

static void gate_on_body(void *ctx, const char *data, size_t len)
{
	struct gate_conn *g = ctx;

	dbuf_append(&g->body, data, len);
}

static void gate_on_end(void *ctx, int complete)
{
	struct gate_conn *g = ctx;

	g->msg_end = 1;
	g->complete = g->llm && complete && !g->after_send;
}

static const struct http_parser_callbacks gate_callbacks = {
	.on_head = gate_on_head,
	.on_body = gate_on_body,
	.on_end = gate_on_end,
};

static struct gate_conn *gate_conn_new(void *ssl, int tls)
{
	struct gate_conn *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	pthread_mutex_init(&g->lock, NULL);
	g->ssl = ssl;
	g->tls = tls;
	http_parser_init(&g->parser, HTTP_DIR_REQUEST, &gate_callbacks, g);
	dbuf_init(&g->hold, GATE_HOLD_MAX);
	dbuf_init(&g->body, GATE_HOLD_MAX);
	return g;
}

static void gate_conn_free(struct gate_conn *g)
{
	if (g == NULL)
		return;
	if (g->resp != NULL)
		__atomic_sub_fetch(&shim_gate_reads, 1, __ATOMIC_RELAXED);
	free(g->resp);
	http_parser_release(&g->parser);
	dbuf_release(&g->hold);
	dbuf_release(&g->body);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

static unsigned gate_bucket(const void *ssl)
{
	return (unsigned)((((uintptr_t)ssl >> 4) * 0x9E3779B97F4A7C15ull) >> 54) % GATE_SSL_BUCKETS;
}

/* The gate state of a connection (created with create), or NULL. unlink takes it out. */
static struct gate_conn *gate_lookup(void *ssl, int fd, int create, int unlink)
{
	struct gate_conn *g = NULL, **pp;

	if (ssl == NULL && (fd < 0 || fd >= GATE_FD_MAX))
		return NULL;
	pthread_mutex_lock(&gate_table_lock);
	if (ssl == NULL) {
		pp = &gate_fds[fd];
	} else {
		for (pp = &gate_ssl[gate_bucket(ssl)]; *pp != NULL; pp = &(*pp)->next) {
			if ((*pp)->ssl == ssl)
				break;
		}
	}
	g = *pp;
	if (g != NULL && unlink) {
		*pp = g->next;
	} else if (g == NULL && create) {
		g = gate_conn_new(ssl, ssl != NULL);
		if (g != NULL && ssl != NULL) {
			g->next = gate_ssl[gate_bucket(ssl)];
			gate_ssl[gate_bucket(ssl)] = g;
		} else if (g != NULL) {
			*pp = g;
		}
	}
	pthread_mutex_unlock(&gate_table_lock);
	return g;
}

/* ---- reservations waiting for their record --------------------------------------------------- */

static void gate_pending_put(uint64_t hash, uint64_t resv, int above)
{
	int i;

	pthread_mutex_lock(&gate_pending_lock);
	for (i = 0; i < GATE_PENDING_MAX && gate_pending[i].resv != 0; i++)
		;
	if (i < GATE_PENDING_MAX) {
		gate_pending[i].hash = hash;
		gate_pending[i].resv = resv;
		gate_pending[i].above = above;
	}
	pthread_mutex_unlock(&gate_pending_lock);
	if (i == GATE_PENDING_MAX)
		shim_log("budgets: too many calls in flight; reservation %llu expires by itself",
			 (unsigned long long)resv);
}

/* The reservation of the request whose body hashes to hash (0 when none), taken out; with
 * only_resv != 0, only that reservation. */
static uint64_t gate_pending_take(uint64_t hash, uint64_t only_resv)
{
	uint64_t resv = 0;

	pthread_mutex_lock(&gate_pending_lock);
	for (int i = 0; i < GATE_PENDING_MAX && resv == 0; i++) {
		if (gate_pending[i].resv != 0 && gate_pending[i].hash == hash &&
		    (only_resv == 0 || gate_pending[i].resv == only_resv)) {
			resv = gate_pending[i].resv;
			gate_pending[i].resv = 0;
		}
	}
	pthread_mutex_unlock(&gate_pending_lock);
	return resv;
}

/* Was a request with this hash decided (allowed or refused) above the wire and not yet seen on
 * it? Claims it. */
static int gate_above_claim(uint64_t hash)
{
	int found = 0;

	pthread_mutex_lock(&gate_pending_lock);
	for (int i = 0; i < GATE_PENDING_MAX && !found; i++) {
		if (gate_pending[i].resv != 0 && gate_pending[i].above &&
		    gate_pending[i].hash == hash) {
			gate_pending[i].above = 0;
			found = 1;
		}
	}
	for (int i = 0; i < GATE_BLOCKED_MAX && !found; i++) {
		if (gate_above[i].used && gate_above[i].hash == hash) {
			gate_above[i].used = 0;
			found = 1;
		}
	}
	pthread_mutex_unlock(&gate_pending_lock);
	return found;
}

static long gate_send(const struct shim_gate_io *io, const char *p, size_t n);

/* ---- the decision ---------------------------------------------------------------------------- */

/* The call as budgets see it: the model comes from the provider family's request reader. */
static void gate_call(const struct gate_req *rq, struct usage *u, struct budget_call *c)
{
	const struct capture_config *cfg = shim_config();
	struct provider_request pr;

	usage_init(u);
	memset(&pr, 0, sizeof(pr));
	pr.method = "POST";
	pr.host = rq->host;
	pr.path = rq->path;
	pr.body = rq->body.p ? rq->body.p : "";
	pr.body_len = rq->body.len;
	pr.body_truncated = rq->body.cut;
	rq->match.family->request(u, &pr);
	c->agent = cfg->agent;
	c->agent_type = cfg->agent_type;
	c->tenant = cfg->tenant;
	c->model = u->model_requested;
	c->provider = rq->match.name ? rq->match.name : rq->host;
}

/* Stores the record of a blocked call (with its budget_block event) and returns the 429 the
 * agent reads (malloc'd, NULL out of memory; *len its length). echo: a capture layer above the
 * wire will see the agent read it and record it again (that echo is dropped). */
static char *gate_block_record(const struct gate_req *rq, const struct usage *u,
			       struct budget_plan *plan, size_t refused, int64_t now, int echo,
			       size_t *len)
{
	const struct capture_config *cfg = shim_config();
	char msg[USAGE_MESSAGE_MAX * 2];
	struct record rec;
	int64_t retry = budget_retry_after(&plan->span[refused], now);
	char *resp;

	*len = 0;
	budget_block_message(msg, sizeof msg, plan->budget[refused], &plan->sb[refused],
			     &plan->span[refused], cfg->tenant);
	resp = budget_response_429(rq->match.family->name, msg, retry, len);
	memset(&rec, 0, sizeof(rec));
	rec.ts_ns = now;
	rec.ttfb_us = -1;
	rec.pid = cfg->pid;
	rec.status = 429;
	rec.retry_after_s = (int32_t)retry;
	rec.flags = rq->match.local ? RECORD_LOCAL : 0;
	rec.request_hash = rq->body.len ? record_hash(rq->body.p, rq->body.len) : 0;
	rec.process = record_str_of(cfg->process);
	rec.agent = record_str_of(cfg->agent);
	rec.agent_type = record_str_of(cfg->agent_type);
	rec.tenant = record_str_of(cfg->tenant);
	rec.session = record_str_of(cfg->session);
	rec.provider = record_str_of(rq->match.name ? rq->match.name : rq->host);
	rec.api = record_str_of(rq->match.api);
	rec.host = record_str_of(rq->host);
	rec.path = record_str_of(rq->path);
	rec.model_requested = record_str_of(u->model_requested);
	rec.model = rec.model_requested;
	rec.error = record_str_of(ERR_BUDGET);
	rec.error_message = record_str_of(msg);
	shim_sink_emit_budget(&rec, NULL, plan, 0, refused);
	shim_log("budgets: blocked: %s", msg);
	pthread_mutex_lock(&gate_pending_lock);
	if (echo && rec.request_hash != 0) {
		gate_blocked[gate_blocked_next++ % GATE_BLOCKED_MAX] = rec.request_hash;
	} else if (!echo) {
		gate_above[gate_above_next % GATE_BLOCKED_MAX].hash = rec.request_hash;
		gate_above[gate_above_next++ % GATE_BLOCKED_MAX].used = 1;
	}
	pthread_mutex_unlock(&gate_pending_lock);
	return resp;
}

/* Arms the 429 of a blocked call on the connection (resp NULL: nothing to give). */
static void gate_arm(struct gate_conn *g, const struct shim_gate_io *io, char *resp, size_t len)
{
	pthread_mutex_lock(&g->lock);
	g->state = GATE_DEAD; /* without a response to give, the agent's later bytes pass */
	if (resp != NULL) {
		g->resp = resp;
		g->resp_len = len;
		g->resp_off = 0;
		g->state = GATE_BLOCKED;
		__atomic_add_fetch(&shim_gate_reads, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&g->lock);
	if (io->fd >= 0)
		shutdown(io->fd, SHUT_RD);
}

/*
 * Checks a complete LLM request against the budgets it falls under (no lock held). Allowed (or
 * not checked: fail open): returns 0, the estimate reserved (*resv, 0 when nothing was
 * reserved) and waiting under the body's hash for the call's record; above marks it decided
 * above the wire. Blocked: returns 1 with the call's record stored and *resp its 429 (see
 * gate_block_record).
 */
static int gate_check(const struct gate_req *rq, int above, uint64_t *resv, char **resp,
		      size_t *resp_len)
{
	struct budget_plan *plan = malloc(sizeof(*plan));
	struct budget_estimate e;
	struct budget_call c;
	struct usage u;
	size_t refused = 0;
	int64_t now = gate_now_ns();
	int rc, blocked = 0;

	*resv = 0;
	if (plan == NULL)
		goto out; /* fail open */
	gate_call(rq, &u, &c);
	budget_plan_make(plan, gate_budgets, gate_pricing, &c, now);
	if (plan->n == 0)
		goto plan_free;
	budget_estimate_call(gate_pricing, c.provider, c.model, rq->body.len,
			     budget_max_output(rq->body.p, rq->body.len), &e);
	for (size_t i = 0; i < plan->n; i++) {
		plan->sb[i].est_tokens = e.tokens;
		plan->sb[i].est_pusd = e.pusd;
	}
	rc = shim_sink_reserve(plan, now, resv, &refused);
	if (rc == STORE_EBUDGET) {
		*resp = gate_block_record(rq, &u, plan, refused, now, !above, resp_len);
		blocked = 1;
	} else if (rc != 0) {
		shim_log("budgets: not checked (store: %s)", store_strerror(rc));
	}
	if (*resv != 0)
		gate_pending_put(rq->body.len ? record_hash(rq->body.p, rq->body.len) : 0, *resv,
				 above);
plan_free:
	free(plan);
out:
	return blocked;
}

/*
 * Decides a complete LLM request seen on the wire (no lock held). Returns 0 when the held bytes
 * were sent or the call was blocked, else the failing real call's return value.
 */
static long gate_decide(struct gate_conn *g, const struct shim_gate_io *io, struct gate_req *rq,
			int *blocked)
{
	uint64_t hash = rq->body.len ? record_hash(rq->body.p, rq->body.len) : 0, resv = 0;
	char *resp = NULL;
	size_t len = 0;
	long r = 0;

	/* libcurl's transfer was decided when it started (shim_gate_request): once is enough */
	if (!(shim_curl_depth > 0 && gate_above_claim(hash)) &&
	    gate_check(rq, 0, &resv, &resp, &len)) {
		gate_arm(g, io, resp, len);
		*blocked = 1;
		goto out;
	}
	r = gate_send(io, rq->hold.p, rq->hold.len);
	if (r != 0 && resv != 0 && gate_pending_take(hash, resv) == resv)
		shim_sink_release(resv);
out:
	return r;
}

int shim_gate_request(const char *authority, size_t alen, int tls, const char *path,
		      size_t plen, const char *body, size_t blen, uint64_t *resv, char **resp,
		      size_t *resp_len)
{
	struct gate_req rq;
	unsigned port;
	int saved = errno, rc = SHIM_GATE_PASS;

	*resv = 0;
	*resp = NULL;
	*resp_len = 0;
	if (!gate_ready())
		goto out;
	memset(&rq, 0, sizeof(rq));
	gate_authority(authority, alen, tls, rq.host, &port);
	if (plen >= sizeof rq.path)
		plen = sizeof rq.path - 1;
	memcpy(rq.path, path, plen);
	/* the body is the caller's: read here, never released */
	rq.body.p = (char *)body;
	rq.body.len = body != NULL ? blen : 0;
	shim_busy = 1;
	if (provider_match(rq.host, port, rq.path, &rq.match) &&
	    gate_check(&rq, 1, resv, resp, resp_len))
		rc = SHIM_GATE_DONE;
	shim_busy = 0;
out:
	errno = saved;
	return rc;
}

void shim_gate_request_end(const char *body, size_t blen, uint64_t resv, int blocked)
{
	uint64_t hash = body != NULL && blen ? record_hash(body, blen) : 0;

	if (resv != 0 && gate_pending_take(hash, resv) == resv)
		shim_sink_release(resv);
	if (blocked)
		gate_above_claim(hash); /* the wire never saw it (libcurl gave up before sending) */
}

/* ---- hooks' entry points --------------------------------------------------------------------- */

/* Writes all n bytes with the real function, poll()ing a socket that must wait. Returns 0, or
 * the failing call's return value (-1 when it said nothing better). */
static long gate_send(const struct shim_gate_io *io, const char *p, size_t n)
{
	long r = 0;

	shim_busy = 1; /* the real calls below are the gate's own I/O */
	while (n > 0) {
		short events = 0;
		struct pollfd pfd;

		r = io->send(io, p, n, &events);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
			r = 0;
			continue;
		}
		if (events == 0 || io->fd < 0)
			break;
		pfd.fd = io->fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, GATE_POLL_MS);
		if (r == 0 || (r < 0 && errno != EINTR))
			break;
		r = 0;
	}
	shim_busy = 0;
	return n == 0 ? 0 : (r < 0 ? r : -1);
}

/* Takes a complete request out of g (under its lock) for the decision. */
static void gate_take(struct gate_conn *g, struct gate_req *rq)
{
	rq->hold = g->hold;
	rq->body = g->body;
	rq->match = g->match;
	memcpy(rq->host, g->host, sizeof rq->host);
	memcpy(rq->path, g->path, sizeof rq->path);
	dbuf_init(&g->hold, GATE_HOLD_MAX);
	dbuf_init(&g->body, GATE_HOLD_MAX);
}

/* Feeds a write's bytes to the parser and the hold buffer (under g's lock, shim_busy set). */
static int gate_feed(struct gate_conn *g, const struct iovec *iov, int iovcnt, size_t n)
{
	int rc = HTTP_OK;

	for (int i = 0; i < iovcnt && n > 0 && rc == HTTP_OK; i++) {
		size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;

		dbuf_append(&g->hold, iov[i].iov_base, k);
		rc = http_parser_feed(&g->parser, iov[i].iov_base, k);
		n -= k;
	}
	return rc;
}

/* Feeds bytes the gate sent for the agent to the capture, as the hooks do after a write. */
static void gate_captured(const struct shim_gate_io *io, const char *p, size_t n)
{
	if (io->ssl != NULL)
		shim_tls_data(io->ssl, io->fd, CAPTURE_OUT, p, n);
	else
		shim_fd_data(io->fd, CAPTURE_OUT, p, n);
}

int shim_gate_write(const struct shim_gate_io *io, const struct iovec *iov, int iovcnt,
		    size_t n, long *ret)
{
	struct gate_conn *g;
	struct gate_req rq;
	enum { PASS, HELD, RELEASE, DECIDE } act = PASS;
	const char *first = iovcnt > 0 && iov[0].iov_len > 0 ? iov[0].iov_base : NULL;
	int saved = errno, rc = SHIM_GATE_PASS, blocked = 0;

	if (n == 0 || first == NULL || !gate_ready())
		goto out;
	shim_busy = 1;
	g = gate_lookup(io->ssl, io->fd, 1, 0);
	shim_busy = 0;
	if (g == NULL)
		goto out;
	pthread_mutex_lock(&g->lock);
	if (g->state != GATE_IDLE && g->state != GATE_HOLD)
		goto unlock;
	/* The first byte of a request is a method's capital letter: TLS (0x16) or anything
	 * else on this descriptor is not ours to hold. */
	if (g->state == GATE_IDLE && !g->parser.in_message && !(*first >= 'A' && *first <= 'Z')) {
		g->state = GATE_DEAD;
		goto unlock;
	}
	g->state = GATE_HOLD;
	/* A head an earlier write completed stays seen (its body is still coming). */
	g->head_seen = g->parser.in_message && g->parser.state != HTTP_S_HEAD;
	g->msg_end = g->complete = g->after_send = 0;
	shim_busy = 1;
	if (gate_feed(g, iov, iovcnt, n) != HTTP_OK || g->hold.cut || g->body.cut) {
		act = RELEASE;
		g->state = GATE_DEAD;
		if (g->llm)
			shim_log("budgets: a request to '%s' not checked (over %u bytes, or not "
				 "HTTP/1.x)", g->host, GATE_HOLD_MAX);
	} else if (g->complete) {
		act = DECIDE;
		g->state = GATE_IDLE;
	} else if (g->head_seen && !g->llm) {
		act = RELEASE;
		g->state = g->msg_end && !g->parser.in_message ? GATE_IDLE : GATE_PASS;
	} else {
		act = HELD;
	}
	shim_busy = 0;
	if (act == RELEASE || act == DECIDE)
		gate_take(g, &rq);
	rc = SHIM_GATE_DONE;
	*ret = 0;
unlock:
	pthread_mutex_unlock(&g->lock);
	if (act != RELEASE && act != DECIDE)
		goto out;
	if (act == RELEASE)
		*ret = gate_send(io, rq.hold.p, rq.hold.len);
	else
		*ret = gate_decide(g, io, &rq, &blocked);
	if (*ret == 0 && !blocked)
		gate_captured(io, rq.hold.p, rq.hold.len);
	dbuf_release(&rq.hold);
	dbuf_release(&rq.body);
	/* The agent's own call failed where the real write did: its errno stands. */
	if (*ret != 0)
		saved = errno;
out:
	errno = saved;
	return rc;
}

void shim_gate_sent(void *ssl, int fd, const struct iovec *iov, int iovcnt, size_t n)
{
	struct gate_conn *g;

	if (!__atomic_load_n(&shim_gate_on, __ATOMIC_RELAXED))
		return;
	shim_busy = 1;
	g = gate_lookup(ssl, fd, 0, 0);
	if (g == NULL)
		goto out;
	pthread_mutex_lock(&g->lock);
	if (g->state == GATE_PASS) {
		g->after_send = 1;
		for (int i = 0; i < iovcnt && n > 0; i++) {
			size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;

			g->msg_end = 0;
			if (http_parser_feed(&g->parser, iov[i].iov_base, k) != HTTP_OK)
				g->state = GATE_DEAD;
			n -= k;
		}
		if (g->state == GATE_PASS && g->msg_end && !g->parser.in_message)
			g->state = GATE_IDLE;
		g->after_send = 0;
	}
	pthread_mutex_unlock(&g->lock);
out:
	shim_busy = 0;
}

ssize_t shim_gate_read(void *ssl, int fd, const struct iovec *iov, int iovcnt, int peek)
{
	struct gate_conn *g;
	ssize_t got = -1;
	int saved = errno;

	shim_busy = 1;
	g = gate_lookup(ssl, fd, 0, 0);
	shim_busy = 0;
	if (g == NULL)
		goto out;
	pthread_mutex_lock(&g->lock);
	if (g->state != GATE_BLOCKED || g->resp == NULL)
		goto unlock;
	got = 0;
	for (int i = 0; i < iovcnt && g->resp_off + (size_t)got < g->resp_len; i++) {
		size_t left = g->resp_len - g->resp_off - (size_t)got;
		size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;

		memcpy(iov[i].iov_base, g->resp + g->resp_off + got, k);
		got += (ssize_t)k;
	}
	if (!peek)
		g->resp_off += (size_t)got;
	if (g->resp_off >= g->resp_len) {
		/* All read: what follows is the real connection, shut for reading (its end). */
		free(g->resp);
		g->resp = NULL;
		g->state = GATE_DEAD;
		__atomic_sub_fetch(&shim_gate_reads, 1, __ATOMIC_RELAXED);
	}
unlock:
	pthread_mutex_unlock(&g->lock);
out:
	errno = saved;
	return got;
}

void shim_gate_end(void *ssl, int fd)
{
	struct gate_conn *g;

	shim_busy = 1;
	g = gate_lookup(ssl, fd, 0, 1);
	gate_conn_free(g);
	shim_busy = 0;
}

/* ---- records: every record settles the budgets it falls under -------------------------------- */

/* Is rec another layer's record of a 429 the gate answered (taken out of the list)? */
static int gate_blocked_echo(const struct record *rec)
{
	int echo = 0;

	if (rec->status != 429 || rec->request_hash == 0)
		return 0;
	pthread_mutex_lock(&gate_pending_lock);
	for (int i = 0; i < GATE_BLOCKED_MAX && !echo; i++) {
		if (gate_blocked[i] == rec->request_hash) {
			gate_blocked[i] = 0;
			echo = 1;
		}
	}
	pthread_mutex_unlock(&gate_pending_lock);
	return echo;
}

void shim_gate_emit(struct record *rec, const struct payload *pl)
{
	struct budget_plan *plan = NULL;
	struct budget_call_buf *s = NULL;
	struct budget_call c;
	int64_t tokens, pusd;

	if (gate_test_now_ns != 0)
		rec->ts_ns = gate_test_now_ns;
	if (!gate_ready())
		goto emit;
	if (gate_blocked_echo(rec))
		goto out;
	plan = malloc(sizeof(*plan));
	s = malloc(sizeof(*s));
	if (plan == NULL || s == NULL)
		goto emit;
	budget_call_of_record(rec, s, &c);
	budget_plan_make(plan, gate_budgets, gate_pricing, &c, rec->ts_ns);
	budget_record_usage(gate_pricing, rec, &tokens, &pusd);
	for (size_t i = 0; i < plan->n; i++) {
		plan->sb[i].tokens = tokens;
		plan->sb[i].pusd = pusd;
	}
	shim_sink_emit_budget(rec, pl, plan, gate_pending_take(rec->request_hash, 0), plan->n);
	goto out;
emit:
	shim_sink_emit_budget(rec, pl, NULL, 0, 0);
out:
	free(s);
	free(plan);
}

void shim_gate_atfork_child(void)
{
	pthread_mutex_init(&gate_table_lock, NULL);
	pthread_mutex_init(&gate_pending_lock, NULL);
	/* The parent's reservations are the parent's to settle. */
	memset(gate_pending, 0, sizeof(gate_pending));
	memset(gate_blocked, 0, sizeof(gate_blocked));
	memset(gate_above, 0, sizeof(gate_above));
}
