/*
 * eventstream.c - AWS event-stream decoder (eventstream.h).
 *
 * The prelude gives each message's exact length, so a message is gathered into one buffer of
 * that size and checked whole: prelude CRC as soon as its 12 bytes are in (a corrupt length is
 * never trusted to size a buffer), message CRC once the last byte is in. Only then are the
 * headers walked for the three names that say what the message is. zlib's crc32 is the
 * CRC-32 (IEEE 802.3) that AWS uses.
 *
 * Bedrock messages are small (a text delta, a usage summary, a base64 chunk of a few KiB);
 * the buffer is kept between messages unless one large message grew it.
 */
#include "http/eventstream.h"
#include "http/http.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define EVENTSTREAM_PRELUDE 12u
#define EVENTSTREAM_KEEP_CAP (64 * 1024)

static uint32_t eventstream_u32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint32_t eventstream_crc(const unsigned char *b, size_t n)
{
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)n);
}

void eventstream_parser_init(struct eventstream_parser *p, size_t max_message,
			     stream_event_fn fn, void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->on_event = fn;
	p->ctx = ctx;
	p->max_message = max_message ? max_message : STREAM_EVENT_MAX_DEFAULT;
}

void eventstream_parser_release(struct eventstream_parser *p)
{
	free(p->msg);
	p->msg = NULL;
	p->msg_len = p->msg_cap = 0;
}

/* Bytes a header value of this type takes after its type byte; -1 for the u16-length types,
 * -2 for an unknown type. */
static int eventstream_value_size(unsigned char type)
{
	static const signed char sizes[] = {0, 0, 1, 2, 4, 8, -1, -1, 8, 16};

	return type < sizeof sizes ? sizes[type] : -2;
}

/* The headers that name a message. Pointers into the message buffer. */
struct eventstream_names {
	const char *event_type, *message_type, *exception_type, *error_code;
	size_t event_type_len, message_type_len, exception_type_len, error_code_len;
};

static void eventstream_keep_name(struct eventstream_names *n, const unsigned char *name,
				  size_t name_len, const char *value, size_t value_len)
{
	static const char *const keys[] = {":event-type", ":message-type", ":exception-type",
					   ":error-code"};
	const char **dst[] = {&n->event_type, &n->message_type, &n->exception_type,
			      &n->error_code};
	size_t *dst_len[] = {&n->event_type_len, &n->message_type_len, &n->exception_type_len,
			     &n->error_code_len};
	size_t i;

	for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (strlen(keys[i]) == name_len && memcmp(keys[i], name, name_len) == 0) {
			*dst[i] = value;
			*dst_len[i] = value_len;
		}
	}
}

/* Walks the headers block h[0..n). Returns 0, or -1 when a header runs past the block. */
static int eventstream_headers(const unsigned char *h, size_t n, struct eventstream_names *out)
{
	size_t pos = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	while (pos < n) {
		size_t name_len = h[pos], vlen;
		const unsigned char *name = h + pos + 1;
		unsigned char type;
		int size;

		pos += 1 + name_len;
		if (pos >= n) {
			rc = -1;
			break;
		}
		type = h[pos];
		size = eventstream_value_size(type);
		pos++;
		if (size == -2) {
			rc = -1;
			break;
		}
		if (size == -1) {
			if (n - pos < 2) {
				rc = -1;
				break;
			}
			vlen = (size_t)h[pos] << 8 | h[pos + 1];
			pos += 2;
		} else {
			vlen = (size_t)size;
		}
		if (vlen > n - pos) {
			rc = -1;
			break;
		}
		if (type == 7) /* string */
			eventstream_keep_name(out, name, name_len, (const char *)h + pos, vlen);
		pos += vlen;
	}
	return rc;
}

static int eventstream_is(const char *v, size_t n, const char *s)
{
	return v != NULL && strlen(s) == n && memcmp(v, s, n) == 0;
}

/* A whole message is in p->msg: check it and hand it out. Returns 0 or HTTP_EPARSE. */
static int eventstream_deliver(struct eventstream_parser *p)
{
	const unsigned char *m = p->msg;
	uint32_t total = p->total, hlen = eventstream_u32(m + 4);
	struct eventstream_names nm;
	const char *name = NULL;
	size_t name_len = 0;
	int rc = HTTP_OK;

	if (eventstream_crc(m, total - 4) != eventstream_u32(m + total - 4)) {
		rc = HTTP_EPARSE;
		goto out;
	}
	if (eventstream_headers(m + EVENTSTREAM_PRELUDE, hlen, &nm) != 0) {
		p->dropped++; /* checked bytes, but headers we cannot walk: skip this message */
		goto out;
	}
	if (eventstream_is(nm.message_type, nm.message_type_len, "exception")) {
		name = nm.exception_type;
		name_len = nm.exception_type_len;
	} else if (eventstream_is(nm.message_type, nm.message_type_len, "error")) {
		name = nm.error_code;
		name_len = nm.error_code_len;
	} else {
		name = nm.event_type;
		name_len = nm.event_type_len;
	}
	p->events++;
	p->on_event(p->ctx, name, name_len, (const char *)m + EVENTSTREAM_PRELUDE + hlen,
		    total - EVENTSTREAM_PRELUDE - hlen - 4);
out:
	return rc;
}

/* The prelude is in p->msg[0..12): check it and size the message. Returns 0 or HTTP_EPARSE. */
static int eventstream_prelude(struct eventstream_parser *p)
{
	uint32_t total = eventstream_u32(p->msg), hlen = eventstream_u32(p->msg + 4);
	unsigned char *grown;
	int rc = HTTP_OK;

	if (eventstream_crc(p->msg, 8) != eventstream_u32(p->msg + 8) || total < EVENTSTREAM_MIN ||
	    hlen > total - EVENTSTREAM_MIN) {
		rc = HTTP_EPARSE;
		goto out;
	}
	if (total > p->max_message) {
		p->skip = total - EVENTSTREAM_PRELUDE;
		p->dropped++;
		p->msg_len = 0;
		goto out;
	}
	p->total = total;
	if (total > p->msg_cap) {
		grown = realloc(p->msg, total);
		if (grown == NULL) {
			p->skip = total - EVENTSTREAM_PRELUDE; /* cannot hold it: skip it */
			p->dropped++;
			p->msg_len = 0;
			p->total = 0;
			rc = HTTP_ENOMEM;
			goto out;
		}
		p->msg = grown;
		p->msg_cap = total;
	}
out:
	return rc;
}

int eventstream_parser_feed(struct eventstream_parser *p, const char *data, size_t len)
{
	const unsigned char *s = (const unsigned char *)data;
	size_t n;
	int rc = HTTP_OK, r;

	if (p->failed) {
		rc = HTTP_EPARSE;
		goto out;
	}
	while (len > 0) {
		if (p->skip > 0) {
			n = p->skip < len ? (size_t)p->skip : len;
			p->skip -= n;
			s += n;
			len -= n;
			continue;
		}
		if (p->msg_cap < EVENTSTREAM_PRELUDE) {
			unsigned char *b = realloc(p->msg, EVENTSTREAM_PRELUDE);

			if (b == NULL) {
				rc = HTTP_ENOMEM;
				break;
			}
			p->msg = b;
			p->msg_cap = EVENTSTREAM_PRELUDE;
		}
		/* Gather the prelude, then the rest of the message up to its announced length. */
		if (p->total == 0) {
			n = EVENTSTREAM_PRELUDE - p->msg_len < len ? EVENTSTREAM_PRELUDE - p->msg_len : len;
			memcpy(p->msg + p->msg_len, s, n);
			p->msg_len += n;
			s += n;
			len -= n;
			if (p->msg_len < EVENTSTREAM_PRELUDE)
				continue;
			r = eventstream_prelude(p);
			if (r == HTTP_EPARSE) {
				p->failed = 1;
				rc = r;
				break;
			}
			if (r != HTTP_OK)
				rc = r;
			continue;
		}
		n = p->total - p->msg_len < len ? p->total - p->msg_len : len;
		memcpy(p->msg + p->msg_len, s, n);
		p->msg_len += n;
		s += n;
		len -= n;
		if (p->msg_len < p->total)
			continue;
		r = eventstream_deliver(p);
		p->total = 0;
		p->msg_len = 0;
		if (p->msg_cap > EVENTSTREAM_KEEP_CAP) {
			free(p->msg);
			p->msg = NULL;
			p->msg_cap = 0;
		}
		if (r != HTTP_OK) {
			p->failed = 1;
			rc = r;
			break;
		}
	}
out:
	return rc;
}
