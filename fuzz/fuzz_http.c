/*
 * fuzz_http.c - the HTTP/1.1 parser alone (http/http.h), chunked bodies included, and head
 * redaction.
 *
 * Input: a flags byte (bit 0: response direction; bits 1-2: what on_head asks for: deliver,
 * skip, deliver or skip by a header, or no body), a split seed byte, then the byte stream of one
 * direction of a connection. The stream is fed twice, whole and cut into pieces, followed by
 * an eof when the flags' bit 3 says so; http.c promises that the callbacks are the same
 * whatever the split (on_body piece sizes aside), so the two runs must report the same heads,
 * the same body bytes and the same ends.
 */
#include <string.h>

#include "fuzz/fuzz.h"
#include "http/http.h"

struct run {
	unsigned policy;
	uint64_t hash;
	unsigned heads, ends;
};

static enum http_body_mode on_head(void *ctx, const struct http_head *h)
{
	struct run *r = ctx;
	char redacted[256];
	enum http_body_mode mode = HTTP_BODY_DELIVER;
	size_t i, n;

	r->heads++;
	fuzz_hash(&r->hash, "H", 1);
	fuzz_hash(&r->hash, &h->status, sizeof h->status);
	fuzz_hash(&r->hash, &h->minor_version, sizeof h->minor_version);
	if (h->method != NULL)
		fuzz_hash(&r->hash, h->method, h->method_len);
	if (h->target != NULL)
		fuzz_hash(&r->hash, h->target, h->target_len);
	for (i = 0; i < h->nheaders; i++) {
		fuzz_hash(&r->hash, h->headers[i].name, h->headers[i].name_len);
		fuzz_hash(&r->hash, h->headers[i].value, h->headers[i].value_len);
	}
	fuzz_hash(&r->hash, h->raw, h->raw_len);
	/* Redaction into a buffer that is sometimes too small: it must cut, never overrun. */
	n = http_redact_head(h->raw, h->raw_len, redacted, h->raw_len % sizeof redacted);
	FUZZ_CHECK(n <= h->raw_len % sizeof redacted);
	n = http_redact_head(h->raw, h->raw_len, redacted, sizeof redacted);
	FUZZ_CHECK(n <= sizeof redacted);
	if (h->target != NULL) {
		n = http_redact_target(h->target, h->target_len, redacted, sizeof redacted);
		FUZZ_CHECK(n <= sizeof redacted);
	}
	switch (r->policy) {
	case 1:
		mode = HTTP_BODY_SKIP;
		break;
	case 2:
		mode = http_head_get(h, "content-type") != NULL ? HTTP_BODY_DELIVER : HTTP_BODY_SKIP;
		break;
	case 3:
		mode = http_head_get(h, "upgrade") != NULL ? HTTP_BODY_UPGRADE : HTTP_BODY_NONE;
		break;
	}
	return mode;
}

static void on_body(void *ctx, const char *data, size_t len)
{
	struct run *r = ctx;

	FUZZ_CHECK(len > 0);
	fuzz_hash(&r->hash, data, len);
}

static void on_end(void *ctx, int complete)
{
	struct run *r = ctx;
	char tag[2] = {'E', (char)complete};

	r->ends++;
	fuzz_hash(&r->hash, tag, sizeof tag);
}

static const struct http_parser_callbacks callbacks = {on_head, on_body, on_end};

static int feed(struct run *r, enum http_dir dir, const uint8_t *data, size_t len,
		unsigned split_seed, int split, int eof)
{
	struct http_parser p;
	struct fuzz_split sp;
	size_t pos = 0, k;
	int rc = HTTP_OK;

	fuzz_split_init(&sp, split_seed);
	http_parser_init(&p, dir, &callbacks, r);
	while (pos < len) {
		k = split ? fuzz_split_next(&sp, len - pos) : len - pos;
		if (http_parser_feed(&p, (const char *)data + pos, k) != HTTP_OK)
			rc = HTTP_EPARSE;
		pos += k;
	}
	if (eof)
		http_parser_eof(&p);
	http_parser_release(&p);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	unsigned flags = fuzz_take(&in), seed = fuzz_take(&in);
	enum http_dir dir = (flags & 1) ? HTTP_DIR_RESPONSE : HTTP_DIR_REQUEST;
	struct run whole = {(flags >> 1) & 3, FUZZ_HASH_INIT, 0, 0};
	struct run cut = whole;
	int rc_whole, rc_cut;

	rc_whole = feed(&whole, dir, in.p, in.n, seed, 0, flags & 8);
	rc_cut = feed(&cut, dir, in.p, in.n, seed, 1, flags & 8);
	FUZZ_CHECK(rc_whole == rc_cut);
	FUZZ_CHECK(whole.heads == cut.heads);
	FUZZ_CHECK(whole.ends == cut.ends);
	FUZZ_CHECK(whole.hash == cut.hash);
	return 0;
}
