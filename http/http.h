/*
 * http.h - incremental HTTP/1.1 message parser, one per direction of a connection.
 *
 * Bytes arrive in whatever pieces the application wrote or read them: one byte, or many
 * messages at once. The parser keeps only the bytes of a message head (bounded by
 * HTTP_HEAD_MAX); body bytes are handed through without copy, or skipped without being looked
 * at, as the owner decides once the head is known. This is what keeps non-LLM traffic cheap.
 *
 * Framing follows RFC 9112: Content-Length, chunked (extensions and trailers skipped), or until
 * the connection closes; 1xx responses (100 Continue) are heads without bodies followed by the
 * real response; HEAD responses, 204 and 304 have no body; a 101 or a successful CONNECT ends
 * HTTP on that connection.
 */
#ifndef TOKSHIM_HTTP_H
#define TOKSHIM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX (64 * 1024)
#define HTTP_MAX_HEADERS 128

enum {
	HTTP_OK = 0,
	HTTP_EPARSE = -1, /* not HTTP/1.x, or a framing error: the parser stays failed */
	HTTP_ENOMEM = -2,
	HTTP_ETOOBIG = -3, /* a head over HTTP_HEAD_MAX, or a decoded body over its cap */
};

enum http_dir { HTTP_DIR_REQUEST, HTTP_DIR_RESPONSE };

struct http_header {
	const char *name;
	size_t name_len;
	const char *value; /* leading and trailing white space removed */
	size_t value_len;
};

/* A parsed head. Every pointer points into the parser's head buffer and stays valid until the
 * parser is fed again, reaches its next message, or is released. */
struct http_head {
	enum http_dir dir;
	const char *method; /* requests */
	size_t method_len;
	const char *target; /* requests: the request-target as sent */
	size_t target_len;
	int status;         /* responses */
	int minor_version;  /* HTTP/1.x */
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	const char *raw;    /* the whole head as received, final CRLF CRLF included */
	size_t raw_len;
};

/* First header named name (case-insensitive), or NULL. */
const struct http_header *http_head_get(const struct http_head *h, const char *name);

/* Does the header's value contain token (case-insensitive, comma-separated list)? */
int http_header_has_token(const struct http_header *hdr, const char *token);

/* What on_head tells the parser to do with the body of the message whose head it was given. */
enum http_body_mode {
	HTTP_BODY_DELIVER, /* pass body bytes to on_body */
	HTTP_BODY_SKIP,    /* frame the body but do not hand it out */
	HTTP_BODY_NONE,    /* this message has no body whatever its headers say (a HEAD response) */
	HTTP_BODY_UPGRADE, /* the connection stops being HTTP: ignore everything after this head */
};

struct http_parser_callbacks {
	/* A head is complete. 1xx responses are reported too (their body mode is ignored): an
	 * interim one (100 Continue) gets no on_end, the real response follows (an eof before it
	 * gives on_end(ctx, 0)); a 101 gets
	 * on_end(ctx, 1) and the connection stops being HTTP. HTTP_BODY_UPGRADE also ends the
	 * message (on_end(ctx, 1)) before the parser stops. */
	enum http_body_mode (*on_head)(void *ctx, const struct http_head *head);
	/* Body bytes, chunk framing removed, Content-Encoding untouched. */
	void (*on_body)(void *ctx, const char *data, size_t len);
	/* The message is over. complete is 0 when the connection ended or the parser failed before
	 * the message's framing said it was over (a close-delimited body ending at EOF is complete).
	 * A message cut short or malformed inside its head gets on_end(ctx, 0) with no on_head
	 * before it, so the owner can close the exchange the other direction opened. */
	void (*on_end)(void *ctx, int complete);
};

enum http_parser_state {
	HTTP_S_HEAD,
	HTTP_S_BODY_LENGTH,
	HTTP_S_BODY_EOF,
	HTTP_S_CHUNK_SIZE,
	HTTP_S_CHUNK_EXT,
	HTTP_S_CHUNK_SIZE_LF,
	HTTP_S_CHUNK_DATA,
	HTTP_S_CHUNK_DATA_CR,
	HTTP_S_CHUNK_DATA_LF,
	HTTP_S_TRAILER,
	HTTP_S_UPGRADED,
	HTTP_S_FAILED,
};

struct http_parser {
	enum http_dir dir;
	enum http_parser_state state;
	enum http_body_mode mode;
	const struct http_parser_callbacks *cb;
	void *ctx;
	char *head;        /* head bytes gathered so far (heap, grown up to HTTP_HEAD_MAX) */
	size_t head_len;
	size_t head_cap;
	uint64_t remaining; /* bytes left in a Content-Length body or the current chunk */
	unsigned trailer_line_len; /* bytes on the current chunk-size or trailer line */
	unsigned chunk_digits;     /* hex digits seen on the current chunk-size line */
	int in_message;    /* a message has started (first byte seen) and not ended */
	struct http_head parsed;
};

void http_parser_init(struct http_parser *p, enum http_dir dir,
		      const struct http_parser_callbacks *cb, void *ctx);

/*
 * Feeds len bytes. Calls the callbacks as heads, body bytes and message ends are found.
 * Returns HTTP_OK, or a negative code once the input is not HTTP (the parser then stays in
 * HTTP_S_FAILED, ignores further input and reports on_end(ctx, 0) for a message in progress).
 */
int http_parser_feed(struct http_parser *p, const char *data, size_t len);

/* The connection closed: ends a close-delimited body (complete) or a cut-short message. */
void http_parser_eof(struct http_parser *p);

/* Frees the head buffer and leaves the parser failed (no callbacks). The parser may be
 * initialised again afterwards. */
void http_parser_release(struct http_parser *p);

/*
 * Copies the head raw[0..len) to out (capacity cap) with secrets replaced by "[REDACTED]":
 * the values of Authorization, Proxy-Authorization, x-api-key, x-goog-api-key, api-key, Cookie
 * and Set-Cookie headers (names case-insensitive), and the value of every key= query parameter
 * of a request line (also api_key=, api-key=, apikey= and access_token=; not monkey=).
 * Returns the length written (cut at cap; out is not NUL-terminated).
 */
size_t http_redact_head(const char *raw, size_t len, char *out, size_t cap);

/* Copies a request-target to out with key= query values redacted; returns the length. */
size_t http_redact_target(const char *target, size_t len, char *out, size_t cap);

#endif
