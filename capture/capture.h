/*
 * capture.h - one connection's bytes in, finished usage records out.
 *
 * The shim's hooks see a connection as two byte streams: what the agent wrote (requests) and
 * what it read (responses). A capture_conn turns them into exchanges: it parses both directions
 * with the HTTP parser, asks the provider table whether each request is an LLM call, and for
 * those (only those) keeps the request body, decodes the response, frames streams into events,
 * runs the provider's extractor and, when the response ends, emits one record and its payload.
 * Requests that are not LLM calls are framed and skipped: their bodies are never copied.
 *
 * It is pure with respect to the process: no hooks, no store, no environment. The clock is read
 * here (CLOCK_REALTIME for the record's time, CLOCK_MONOTONIC for latencies). This is what lets
 * the tests drive it byte by byte without any shim.
 *
 * A capture_conn is not thread-safe: the caller serialises calls on one connection.
 */
#ifndef TOKSHIM_CAPTURE_H
#define TOKSHIM_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "store/record.h"
#include "store/store.h"

enum capture_mode {
	CAPTURE_OFF,  /* records only, no payload */
	CAPTURE_META, /* records and the redacted heads */
	CAPTURE_FULL, /* records, heads and bodies up to body_cap each */
};

/* Bodies kept for extraction are capped here; past it the extractor sees a cut body. */
#define CAPTURE_PARSE_MAX (32u << 20)
#define CAPTURE_BODY_CAP_DEFAULT (1u << 20)

/*
 * What the capture gives up on, counted per LLM exchange (never for traffic that is not an LLM
 * call). Where a record can still be made it is emitted, flagged cut short or estimated.
 */
enum capture_drop {
	CAPTURE_DROP_HTTP,        /* the connection stopped being valid HTTP/1.x mid-exchange */
	CAPTURE_DROP_QUEUE,       /* more requests in flight than the queue holds */
	CAPTURE_DROP_BODY_CAP,    /* a whole response body passed CAPTURE_PARSE_MAX: usage unread */
	CAPTURE_DROP_REQUEST_CAP, /* the request body passed CAPTURE_PARSE_MAX */
	CAPTURE_DROP_DECODE,      /* the Content-Encoding could not be decoded */
	CAPTURE_DROP_EVENT_CAP,   /* stream events over the event size cap were skipped */
	CAPTURE_DROP_NO_USAGE,    /* a whole 2xx body without usage the provider could read */
	CAPTURE_DROP_NOMEM,       /* out of memory for a connection (counted by the shim), for a
				   * part of an exchange, or while the provider read its JSON (the
				   * exchange is then not recorded) */
	CAPTURE_DROP_N
};

/* The store counter name of each reason: "dropped.capture.http_error" … */
extern const char *const capture_drop_names[CAPTURE_DROP_N];

/* Receives one count of reason; called just before the exchange's record is emitted. */
typedef void (*capture_drop_fn)(enum capture_drop reason);

/* Process-wide settings, read once by the shim. Strings must outlive every capture_conn. */
struct capture_config {
	const char *process;
	const char *agent;
	const char *agent_type;
	const char *tenant;
	const char *session;
	const char *local_hosts; /* comma-separated host names that are local (TOKSHIM_LOCAL_HOSTS) */
	enum capture_mode mode;
	size_t body_cap;         /* payload bytes kept per body */
	int32_t pid;
	capture_drop_fn drop;    /* counts what the capture gives up on; may be NULL */
};

/*
 * Receives each finished exchange. rec and pl (NULL with CAPTURE_OFF) and all they point to
 * are valid only during the call.
 */
typedef void (*capture_emit_fn)(void *ctx, struct record *rec, const struct payload *pl);

enum capture_dir {
	CAPTURE_OUT, /* bytes the agent sent: requests */
	CAPTURE_IN,  /* bytes the agent received: responses */
};

struct capture_conn;

/*
 * A new connection. peer (may be NULL) is the remote address, used for locality; tls says
 * whether the bytes are TLS plaintext (for the default port). Returns NULL when out of memory.
 * cfg must outlive the connection.
 */
struct capture_conn *capture_conn_new(const struct capture_config *cfg,
				      const struct sockaddr *peer, socklen_t peer_len, int tls,
				      capture_emit_fn emit, void *ctx);

/* Sets the peer address after the fact (a TLS connection learns its socket late). */
void capture_conn_set_peer(struct capture_conn *c, const struct sockaddr *peer, socklen_t len);

/*
 * Feeds bytes that went through the connection in direction dir. Emits a record for every
 * exchange these bytes complete. Returns 0, or -1 once the connection is not HTTP/1.x (then it
 * ignores all further input and the caller may stop feeding).
 */
int capture_conn_feed(struct capture_conn *c, enum capture_dir dir, const void *data, size_t len);

/* The connection ended: a close-delimited response ends; exchanges still waiting for their
 * response are emitted as cut short. Further input is ignored. */
void capture_conn_eof(struct capture_conn *c);

/* Is the connection known not to be HTTP/1.x (nothing more will come of it)? */
int capture_conn_dead(const struct capture_conn *c);

/* Frees the connection without emitting anything. NULL is allowed. */
void capture_conn_free(struct capture_conn *c);

/*
 * Locality of a call to host (port stripped) whose peer address is peer (may be NULL):
 * 1 local, 0 cloud, by the rule of DESIGN.md. known_cloud says the host is a known cloud
 * provider's domain.
 */
int capture_is_local(const char *host, const struct sockaddr *peer, const char *local_hosts,
		     int known_cloud);

#endif
