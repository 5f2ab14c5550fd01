/*
 * h2.h - one HTTP/2 connection's two byte streams to exchanges (RFC 9113), for capture.c.
 *
 * A connection is HTTP/2 when the first bytes the agent sends are the client preface
 * ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"): over TLS after ALPN chose h2, or in clear with prior
 * knowledge. Frames are read in both directions; header blocks (HEADERS, CONTINUATION, and
 * PUSH_PROMISE, whose blocks change the decoder's state too) are decoded with nghttp2's HPACK
 * inflater, one per direction. Each stream is one exchange (exchange.h): its request
 * pseudo-headers give method, path and host, :status the response's status, DATA the bodies.
 *
 * Streams that are not LLM calls get no state: their header blocks are decoded (HPACK state is
 * shared by the whole connection) and their DATA is skipped uncopied.
 *
 * Not thread-safe: the caller (capture_conn) serialises calls.
 */
#ifndef TOKSHIM_H2_H
#define TOKSHIM_H2_H

#include <stddef.h>

#include "capture/capture.h"
#include "capture/exchange.h"

struct h2_conn;

/* The client preface, the first bytes of every HTTP/2 connection (NUL-terminated). */
#define H2_PREFACE_LEN 24
extern const char h2_preface[H2_PREFACE_LEN + 1];

/* A new HTTP/2 connection whose exchanges are made in env (which must outlive it). NULL when
 * out of memory. */
struct h2_conn *h2_conn_new(const struct exchange_env *env);

/*
 * Feeds bytes that went through the connection in direction dir, the client preface included.
 * Emits a record for every LLM stream these bytes end. Returns 0, or -1 once the bytes are not
 * HTTP/2 as this reader can follow (bad preface, a header block HPACK cannot decode, a frame
 * over the buffer cap): the caller then ends the connection with h2_conn_eof.
 */
int h2_conn_feed(struct h2_conn *h, enum capture_dir dir, const void *data, size_t len);

/* The connection ended: LLM streams still open are emitted as cut short. */
void h2_conn_eof(struct h2_conn *h);

/* Frees the connection without emitting anything. NULL is allowed. */
void h2_conn_free(struct h2_conn *h);

#endif
