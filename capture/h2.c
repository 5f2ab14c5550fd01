/*
 * h2.c - HTTP/2 framing and HPACK for the capture; see h2.h.
 *
 * Each direction is read frame by frame: the 9-byte frame header is gathered, then DATA
 * payloads are handed to their stream's exchange as they arrive (padding removed), and every
 * other frame's payload is gathered whole (bounded by H2_FRAME_MAX: SETTINGS, RST_STREAM and
 * GOAWAY are tiny, header blocks a few kilobytes) and acted on. Flow control, PING and PRIORITY
 * need nothing from a reader that only watches.
 *
 * GOAWAY names the last stream the server will process: LLM streams above it are dropped
 * unrecorded, since the client sends them again on a new connection, where they are counted.
 */
#include "capture/h2.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char h2_preface[H2_PREFACE_LEN + 1] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* Non-DATA frames are gathered whole up to this size; a larger one ends the reading. */
#define H2_FRAME_MAX (1u << 20)
/* LLM streams open at once on one connection; more are counted as queue drops. */
#define H2_STREAMS_MAX 256
/* Decoded header bytes (names and values) kept per header block. */
#define H2_FIELDS_MAX (64u * 1024)

enum {
	F_DATA = 0,
	F_HEADERS = 1,
	F_RST_STREAM = 3,
	F_SETTINGS = 4,
	F_PUSH_PROMISE = 5,
	F_GOAWAY = 7,
	F_CONTINUATION = 9,
};
enum { FL_END_STREAM = 0x1, FL_ACK = 0x1, FL_END_HEADERS = 0x4, FL_PADDED = 0x8, FL_PRIORITY = 0x20 };
#define SETTINGS_HEADER_TABLE_SIZE 1

struct h2_stream {
	uint32_t id;
	struct exchange *x;
	int req_done;    /* the request's END_STREAM went out */
	int resp_begun;  /* its final response head came */
	struct h2_stream *next;
};

/* One direction's reading state. */
struct h2_dir {
	nghttp2_hd_inflater *hd;
	size_t preface_left;    /* client preface bytes still to check (out only) */
	unsigned char head[9];  /* the frame header being gathered */
	size_t head_len;
	uint32_t len;           /* the current frame's payload length, type, flags, stream */
	uint8_t type, flags;
	uint32_t stream;
	uint32_t got;           /* payload bytes of the current frame seen so far */
	uint32_t pad;           /* DATA: padding at its end (known once its first byte came) */
	char *buf;              /* a non-DATA frame's payload */
	size_t buf_cap;
	/* the header block being decoded (HEADERS or PUSH_PROMISE, then CONTINUATION) */
	int in_block;
	int block_push;         /* PUSH_PROMISE: decoded for the HPACK state, then dropped */
	int block_end_stream;
	uint32_t block_stream;
	struct exchange_field fields[HTTP_MAX_HEADERS];
	size_t nfields;
	char *arena;            /* the decoded names and values (H2_FIELDS_MAX) */
	size_t arena_len;
};

struct h2_conn {
	const struct exchange_env *env;
	struct h2_dir dir[2]; /* CAPTURE_OUT, CAPTURE_IN */
	struct h2_stream *streams;
	size_t nstreams;
	int failed;
};

struct h2_conn *h2_conn_new(const struct exchange_env *env)
{
	struct h2_conn *h = calloc(1, sizeof(*h));
	int i;

	if (h == NULL)
		return NULL;
	h->env = env;
	h->dir[CAPTURE_OUT].preface_left = H2_PREFACE_LEN;
	for (i = 0; i < 2; i++) {
		h->dir[i].arena = malloc(H2_FIELDS_MAX);
		if (h->dir[i].arena == NULL || nghttp2_hd_inflate_new(&h->dir[i].hd) != 0) {
			h2_conn_free(h);
			return NULL;
		}
	}
	return h;
}

/* ---- streams ---------------------------------------------------------------------------- */

static struct h2_stream *stream_find(struct h2_conn *h, uint32_t id)
{
	struct h2_stream *s;

	for (s = h->streams; s != NULL; s = s->next) {
		if (s->id == id)
			return s;
	}
	return NULL;
}

/* Unlinks and frees s; emits its record first when emit is set. */
static void stream_end(struct h2_conn *h, struct h2_stream *s, int emit, int complete)
{
	struct h2_stream **pp;

	for (pp = &h->streams; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	h->nstreams--;
	if (emit)
		exchange_emit(h->env, s->x, complete, -1);
	exchange_free(s->x);
	free(s);
}

/* ---- header blocks ---------------------------------------------------------------------- */

/* The value of pseudo-header name among the block's fields, or NULL (*n its length). */
static const char *block_pseudo(const struct h2_dir *d, const char *name, size_t *n)
{
	size_t i, nl = strlen(name);

	for (i = 0; i < d->nfields; i++) {
		if (d->fields[i].name_len == nl && memcmp(d->fields[i].name, name, nl) == 0) {
			*n = d->fields[i].value_len;
			return d->fields[i].value;
		}
	}
	*n = 0;
	return NULL;
}

/* The block's fields in HTTP/1 form: pseudo-headers left out, :authority as host first. */
static size_t block_plain_fields(const struct h2_dir *d, struct exchange_field *out)
{
	size_t i, n = 0, alen;
	const char *auth = block_pseudo(d, ":authority", &alen);

	if (auth != NULL) {
		out[n].name = "host";
		out[n].name_len = 4;
		out[n].value = auth;
		out[n].value_len = alen;
		n++;
	}
	for (i = 0; i < d->nfields && n < HTTP_MAX_HEADERS; i++) {
		if (d->fields[i].name_len > 0 && d->fields[i].name[0] != ':')
			out[n++] = d->fields[i];
	}
	return n;
}

static void block_request(struct h2_conn *h, struct h2_dir *d)
{
	struct exchange_field plain[HTTP_MAX_HEADERS];
	struct exchange_head eh;
	struct h2_stream *s = stream_find(h, d->block_stream);
	const char *method, *path;
	size_t mlen, plen, n;
	char mbuf[16];
	struct exchange *x;

	if (s != NULL) { /* trailers */
		if (d->block_end_stream && !s->req_done) {
			s->req_done = 1;
			exchange_read_request(s->x, NULL);
		}
		return;
	}
	method = block_pseudo(d, ":method", &mlen);
	path = block_pseudo(d, ":path", &plen);
	if (method == NULL || path == NULL || mlen >= sizeof(mbuf))
		return;
	memcpy(mbuf, method, mlen);
	mbuf[mlen] = '\0';
	n = block_plain_fields(d, plain);
	if (exchange_head_build(&eh, "HTTP/2", mbuf, path, plen, 0, plain, n) != 0) {
		exchange_drop(h->env, CAPTURE_DROP_NOMEM);
		return;
	}
	x = exchange_for_request(h->env, &eh.head, exchange_clock_ns(CLOCK_REALTIME),
				 exchange_clock_ns(CLOCK_MONOTONIC));
	if (x == NULL)
		goto release;
	if (h->nstreams >= H2_STREAMS_MAX) {
		exchange_drop(h->env, CAPTURE_DROP_QUEUE);
		exchange_free(x);
		goto release;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		exchange_drop(h->env, CAPTURE_DROP_NOMEM);
		exchange_free(x);
		goto release;
	}
	s->id = d->block_stream;
	s->x = x;
	s->next = h->streams;
	h->streams = s;
	h->nstreams++;
	if (d->block_end_stream) {
		s->req_done = 1;
		exchange_read_request(x, &eh.head);
	}
release:
	exchange_head_release(&eh);
}

static void block_response(struct h2_conn *h, struct h2_dir *d)
{
	struct exchange_field plain[HTTP_MAX_HEADERS];
	struct exchange_head eh;
	struct h2_stream *s = stream_find(h, d->block_stream);
	const char *st;
	size_t stlen, n, i;
	int status = 0;

	if (s == NULL)
		return;
	exchange_response_started(s->x);
	st = block_pseudo(d, ":status", &stlen);
	for (i = 0; st != NULL && i < stlen && i < 3 && st[i] >= '0' && st[i] <= '9'; i++)
		status = status * 10 + (st[i] - '0');
	if (!s->resp_begun && status >= 200) {
		n = block_plain_fields(d, plain);
		if (exchange_head_build(&eh, "HTTP/2", NULL, NULL, 0, status, plain, n) != 0) {
			exchange_drop(h->env, CAPTURE_DROP_NOMEM);
			stream_end(h, s, 1, 0);
			return;
		}
		s->resp_begun = 1;
		i = exchange_begin_response(h->env, s->x, &eh.head, 0) != 0;
		exchange_head_release(&eh);
		if (i) {
			stream_end(h, s, 0, 0); /* a candidate whose response holds no usage */
			return;
		}
	}
	/* 1xx heads are interim; a block after the final head is the trailers */
	if (d->block_end_stream)
		stream_end(h, s, 1, s->resp_begun);
}

/* Decodes one fragment of a header block; at its end hands the block on. */
static int block_fragment(struct h2_conn *h, struct h2_dir *d, enum capture_dir dir,
			  const uint8_t *in, size_t len, int final)
{
	nghttp2_nv nv;
	int flags;
	ssize_t r;

	for (;;) {
		flags = 0;
		r = nghttp2_hd_inflate_hd2(d->hd, &nv, &flags, in, len, final);
		if (r < 0)
			return -1;
		in += r;
		len -= (size_t)r;
		if ((flags & NGHTTP2_HD_INFLATE_EMIT) && d->nfields < HTTP_MAX_HEADERS &&
		    d->arena_len + nv.namelen + nv.valuelen <= H2_FIELDS_MAX) {
			struct exchange_field *f = &d->fields[d->nfields++];

			memcpy(d->arena + d->arena_len, nv.name, nv.namelen);
			f->name = d->arena + d->arena_len;
			f->name_len = nv.namelen;
			d->arena_len += nv.namelen;
			memcpy(d->arena + d->arena_len, nv.value, nv.valuelen);
			f->value = d->arena + d->arena_len;
			f->value_len = nv.valuelen;
			d->arena_len += nv.valuelen;
		}
		if (flags & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(d->hd);
			break;
		}
		if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && len == 0)
			break;
	}
	if (!final)
		return 0;
	d->in_block = 0;
	if (!d->block_push && dir == CAPTURE_OUT)
		block_request(h, d);
	else if (!d->block_push)
		block_response(h, d);
	return 0;
}

/* ---- frames ----------------------------------------------------------------------------- */

static void settings_frame(struct h2_conn *h, struct h2_dir *d, enum capture_dir dir)
{
	/* A side's SETTINGS_HEADER_TABLE_SIZE bounds what the other side's encoder may use: the
	 * inflater reading the other direction must accept it. */
	struct h2_dir *other = &h->dir[dir == CAPTURE_OUT ? CAPTURE_IN : CAPTURE_OUT];
	const uint8_t *p = (const uint8_t *)d->buf;
	uint32_t i;

	if (d->flags & FL_ACK)
		return;
	for (i = 0; i + 6 <= d->len; i += 6) {
		uint16_t id = (uint16_t)(p[i] << 8 | p[i + 1]);
		uint32_t v = (uint32_t)p[i + 2] << 24 | (uint32_t)p[i + 3] << 16 |
			     (uint32_t)p[i + 4] << 8 | p[i + 5];

		if (id == SETTINGS_HEADER_TABLE_SIZE)
			nghttp2_hd_inflate_change_table_size(other->hd, v);
	}
}

static void goaway_frame(struct h2_conn *h, struct h2_dir *d)
{
	const uint8_t *p = (const uint8_t *)d->buf;
	uint32_t last;
	struct h2_stream *s, *next;

	if (d->len < 8)
		return;
	last = ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) &
	       0x7fffffffu;
	for (s = h->streams; s != NULL; s = next) {
		next = s->next;
		if (s->id > last)
			stream_end(h, s, 0, 0);
	}
}

/* A whole non-DATA frame is in d->buf. */
static int frame_done(struct h2_conn *h, struct h2_dir *d, enum capture_dir dir)
{
	const uint8_t *p = (const uint8_t *)d->buf;
	size_t off = 0, padlen = 0, len = d->len;
	struct h2_stream *s;

	switch (d->type) {
	case F_HEADERS:
	case F_PUSH_PROMISE:
		if (d->in_block)
			return -1;
		if (d->flags & FL_PADDED) {
			if (len < 1)
				return -1;
			padlen = p[0];
			off = 1;
		}
		if (d->type == F_HEADERS && (d->flags & FL_PRIORITY))
			off += 5;
		if (d->type == F_PUSH_PROMISE)
			off += 4;
		if (off + padlen > len)
			return -1;
		d->in_block = 1;
		d->block_push = d->type == F_PUSH_PROMISE;
		d->block_end_stream = d->type == F_HEADERS && (d->flags & FL_END_STREAM);
		d->block_stream = d->stream;
		d->nfields = 0;
		d->arena_len = 0;
		return block_fragment(h, d, dir, p + off, len - off - padlen,
				      (d->flags & FL_END_HEADERS) != 0);
	case F_CONTINUATION:
		if (!d->in_block || d->stream != d->block_stream)
			return -1;
		return block_fragment(h, d, dir, p, len, (d->flags & FL_END_HEADERS) != 0);
	case F_RST_STREAM:
		s = stream_find(h, d->stream);
		if (s != NULL)
			stream_end(h, s, 1, 0);
		return 0;
	case F_SETTINGS:
		settings_frame(h, d, dir);
		return 0;
	case F_GOAWAY:
		if (dir == CAPTURE_IN)
			goaway_frame(h, d);
		return 0;
	default:
		return 0; /* PRIORITY, PING, WINDOW_UPDATE, extensions: nothing to see */
	}
}

/* DATA payload bytes data[0..n) at offset d->got of the frame. */
static void data_bytes(struct h2_conn *h, struct h2_dir *d, enum capture_dir dir,
		       const uint8_t *data, size_t n)
{
	struct h2_stream *s;
	uint32_t at = d->got, end;

	if ((d->flags & FL_PADDED) && at == 0) {
		d->pad = data[0];
		data++;
		n--;
		at++;
	}
	end = d->pad < d->len ? d->len - d->pad : 0; /* where padding begins */
	if (at >= end || n == 0)
		return;
	if (at + n > end)
		n = end - at;
	s = stream_find(h, d->stream);
	if (s == NULL)
		return;
	if (dir == CAPTURE_OUT) {
		exchange_request_body(s->x, (const char *)data, n);
	} else {
		exchange_response_started(s->x);
		if (s->resp_begun)
			exchange_response_body(s->x, (const char *)data, n);
	}
}

static void data_end(struct h2_conn *h, struct h2_dir *d, enum capture_dir dir)
{
	struct h2_stream *s;

	if (!(d->flags & FL_END_STREAM))
		return;
	s = stream_find(h, d->stream);
	if (s == NULL)
		return;
	if (dir == CAPTURE_IN) {
		stream_end(h, s, 1, s->resp_begun);
	} else if (!s->req_done) {
		s->req_done = 1;
		exchange_read_request(s->x, NULL);
	}
}

static int frame_begin(struct h2_dir *d)
{
	d->len = (uint32_t)d->head[0] << 16 | (uint32_t)d->head[1] << 8 | d->head[2];
	d->type = d->head[3];
	d->flags = d->head[4];
	d->stream = ((uint32_t)d->head[5] << 24 | (uint32_t)d->head[6] << 16 |
		     (uint32_t)d->head[7] << 8 | d->head[8]) & 0x7fffffffu;
	d->got = 0;
	d->pad = 0;
	/* a header block is one HEADERS and its CONTINUATIONs, nothing in between */
	if (d->in_block && d->type != F_CONTINUATION)
		return -1;
	if (d->type == F_DATA)
		return 0;
	if (d->len > H2_FRAME_MAX)
		return -1;
	if (d->len > d->buf_cap) {
		char *nb = realloc(d->buf, d->len);

		if (nb == NULL)
			return -1;
		d->buf = nb;
		d->buf_cap = d->len;
	}
	return 0;
}

static int dir_feed(struct h2_conn *h, enum capture_dir dir, const uint8_t *p, size_t len)
{
	struct h2_dir *d = &h->dir[dir];
	size_t n;

	if (d->preface_left > 0) {
		n = len < d->preface_left ? len : d->preface_left;
		if (memcmp(p, h2_preface + (H2_PREFACE_LEN - d->preface_left), n) != 0)
			return -1;
		d->preface_left -= n;
		p += n;
		len -= n;
	}
	for (;;) {
		if (d->head_len < 9) {
			if (len == 0)
				break;
			n = 9 - d->head_len < len ? 9 - d->head_len : len;
			memcpy(d->head + d->head_len, p, n);
			d->head_len += n;
			p += n;
			len -= n;
			if (d->head_len < 9)
				break;
			if (frame_begin(d) != 0)
				return -1;
		}
		n = d->len - d->got < len ? d->len - d->got : len;
		if (n > 0 && d->type == F_DATA)
			data_bytes(h, d, dir, p, n);
		else if (n > 0)
			memcpy(d->buf + d->got, p, n);
		d->got += (uint32_t)n;
		p += n;
		len -= n;
		if (d->got < d->len)
			break; /* the rest of the frame comes with later bytes */
		d->head_len = 0;
		if (d->type == F_DATA)
			data_end(h, d, dir);
		else if (frame_done(h, d, dir) != 0)
			return -1;
	}
	return 0;
}

int h2_conn_feed(struct h2_conn *h, enum capture_dir dir, const void *data, size_t len)
{
	if (h->failed)
		return -1;
	if (dir_feed(h, dir, data, len) != 0)
		h->failed = 1;
	return h->failed ? -1 : 0;
}

void h2_conn_eof(struct h2_conn *h)
{
	while (h->streams != NULL)
		stream_end(h, h->streams, 1, 0);
}

void h2_conn_free(struct h2_conn *h)
{
	int i;

	if (h == NULL)
		return;
	while (h->streams != NULL)
		stream_end(h, h->streams, 0, 0);
	for (i = 0; i < 2; i++) {
		if (h->dir[i].hd != NULL)
			nghttp2_hd_inflate_del(h->dir[i].hd);
		free(h->dir[i].buf);
		free(h->dir[i].arena);
	}
	free(h);
}
