/*
 * exchange.h - one LLM exchange, whatever carried it: an HTTP/1.1 request and its response
 * (capture.c), one HTTP/2 stream (h2.c), or one libcurl transfer seen at its callbacks
 * (shim/hooks_curl.c). Internal to tokshim: the capture and the shim share it, nothing else.
 *
 * The carrier frames the messages; the exchange does everything from the heads on: matching the
 * request against the provider table, keeping the request body, decoding and framing the
 * response body (SSE, NDJSON, JSON array, AWS event stream), the provider's extraction, the
 * drop counters and the record. Heads are struct http_head; a carrier whose heads are not
 * HTTP/1.x text (HTTP/2's decoded header lists, libcurl's header lines) builds one with
 * exchange_head_build.
 *
 * Not thread-safe: the carrier serialises calls on one exchange.
 */
#ifndef TOKSHIM_EXCHANGE_H
#define TOKSHIM_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>

#include "capture/capture.h"
#include "http/http.h"

/* What an exchange needs of the connection (or transfer) that carries it. */
struct exchange_env {
	const struct capture_config *cfg;
	capture_emit_fn emit;
	void *ctx;
	int tls; /* for the default port */
	struct sockaddr_storage peer;
	socklen_t peer_len; /* 0: peer unknown */
};

struct exchange;

/* Counts one drop of reason with the configuration's counter (when it has one). */
void exchange_drop(const struct exchange_env *env, enum capture_drop reason);

/* The monotonic or real-time clock in nanoseconds. */
int64_t exchange_clock_ns(clockid_t id);

/*
 * The exchange for a request whose head is h, begun at start_real_ns/start_mono_ns; NULL when
 * the request is not an LLM call (nor a candidate one), is a HEAD request, or memory ran out.
 * The exchange copies what it keeps of h: h need only be valid during the call.
 */
struct exchange *exchange_for_request(const struct exchange_env *env, const struct http_head *h,
				      int64_t start_real_ns, int64_t start_mono_ns);

/* The carrier learnt env's peer after the request: the exchange's locality follows it. */
void exchange_relocate(const struct exchange_env *env, struct exchange *x);

/* Replaces the request head kept for the payload (the carrier learnt more of it, as libcurl's
 * protocol once the response came). */
void exchange_request_head(const struct exchange_env *env, struct exchange *x,
			   const struct http_head *h);

/* Request body bytes (as sent: Content-Encoding is not undone). */
void exchange_request_body(struct exchange *x, const char *data, size_t len);

/* The request is over: the provider reads it. head is the request's head while the carrier
 * still holds it, NULL once it does not (a response that ended before its request). */
void exchange_read_request(struct exchange *x, const struct http_head *head);

/* The first byte of the response came now (for the time to first byte). */
void exchange_response_started(struct exchange *x);

/*
 * The final response head h (not 1xx). Returns 0, or -1 when the exchange is a candidate whose
 * response cannot carry usage: the carrier then frees it unread and unrecorded. With decoded
 * set the body the carrier hands on is already free of its Content-Encoding (libcurl decoded
 * it).
 */
int exchange_begin_response(const struct exchange_env *env, struct exchange *x,
			    const struct http_head *h, int decoded);

/* Response body bytes, framing removed, Content-Encoding as the head says. */
void exchange_response_body(struct exchange *x, const char *data, size_t len);

/*
 * The exchange is over: complete says its response ended as its framing said. Emits its record
 * (unless it is a candidate that carried no usage) after counting its drops, dead_reason among
 * them when >= 0 (the carrier gave up mid-exchange). Does not free x.
 */
void exchange_emit(const struct exchange_env *env, struct exchange *x, int complete,
		   int dead_reason);

/* Frees x and all it holds. NULL is allowed. */
void exchange_free(struct exchange *x);

/* One header of a head being built: name and value need not be NUL-terminated. */
struct exchange_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* A head built from fields, with its text (raw) in a buffer of its own. */
struct exchange_head {
	struct http_head head;
	char *buf;
};

/*
 * Builds a head from a method and target (a request; method NULL for a response) or a status,
 * and n fields, with raw an HTTP/1.1-style text of them with version as the protocol ("POST
 * /v1/x HTTP/2\r\nname: value\r\n … \r\n") so it is redacted and stored like any head.
 * Fields past HTTP_MAX_HEADERS or past HTTP_HEAD_MAX bytes of text are left out. Returns 0, or
 * -1 out of memory. The head's pointers stay valid until exchange_head_release; eh may be built
 * again after a release.
 */
int exchange_head_build(struct exchange_head *eh, const char *version, const char *method,
			const char *target, size_t target_len, int status,
			const struct exchange_field *fields, size_t n);

void exchange_head_release(struct exchange_head *eh);

#endif
