/*
 * http.c - the incremental HTTP/1.1 parser of http.h, and its header look-ups.
 *
 * The parser runs on every read and write of every connection the shim sees, so it is shaped
 * for the common case. A head is gathered into one heap buffer (grown up to HTTP_HEAD_MAX)
 * while the blank line that ends it is looked for with memchr; it is parsed once, whole, when
 * that line arrives, so a head split over many reads is not parsed again and again. Bodies are
 * framed with a byte counter: Content-Length bodies and chunk data go from the caller's buffer
 * straight to on_body (or nowhere, in HTTP_BODY_SKIP mode), so a body costs one callback per
 * piece, never a copy. Only chunk-size lines and trailers are walked a byte at a time, and they
 * are a few bytes per chunk and kept nowhere.
 *
 * Because every state change is driven by the bytes alone, the callbacks are the same whatever
 * the split of the input; on_body pieces differ in size only.
 */
#include "http/http.h"

#include <stdlib.h>
#include <string.h>

/* Most heads are under 1 KiB; the buffer doubles from here to HTTP_HEAD_MAX. */
#define HEAD_CAP_INITIAL 1024
/* The first bytes of a head are checked as they arrive (a method, or "HTTP/1."), so a
 * connection that is not HTTP fails at once instead of filling the head buffer. */
#define METHOD_MAX 32
/* A chunk-size line or a trailer line longer than this is not HTTP we want to follow. */
#define FRAMING_LINE_MAX 4096

/* RFC 9110 tchar: the characters of a token (method, header name). */
/* RFC 9110's tchar, looked up once per byte of every header name. */
static const unsigned char http_tchars[256] = {
	['0' ... '9'] = 1, ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1,
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
	['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
};

static int http_is_tchar(unsigned char c)
{
	return http_tchars[c];
}

static int http_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* a[0..alen) equals the NUL-terminated b, ignoring ASCII case. */
static int http_name_eq(const char *a, size_t alen, const char *b)
{
	size_t i = 0;

	/* Most names a head is searched for differ in length from most of its headers. */
	if (strlen(b) != alen)
		return 0;
	while (i < alen && http_lower((unsigned char)a[i]) == http_lower((unsigned char)b[i]))
		i++;
	return i == alen;
}

const struct http_header *http_head_get(const struct http_head *h, const char *name)
{
	const struct http_header *found = NULL;
	size_t i;

	for (i = 0; i < h->nheaders && found == NULL; i++) {
		if (http_name_eq(h->headers[i].name, h->headers[i].name_len, name))
			found = &h->headers[i];
	}
	return found;
}

/* Trims spaces and tabs from both ends of s[*start..*end). */
static void http_trim(const char *s, size_t *start, size_t *end)
{
	while (*start < *end && (s[*start] == ' ' || s[*start] == '\t'))
		(*start)++;
	while (*end > *start && (s[*end - 1] == ' ' || s[*end - 1] == '\t'))
		(*end)--;
}

/* Calls back fn on each element of a comma-separated list, without parameters (";...") and
 * trimmed; stops when fn returns non-zero and returns that. */
static int http_list_each(const char *v, size_t len,
			  int (*fn)(const char *e, size_t n, const void *arg), const void *arg)
{
	size_t pos = 0, start, end, cut;
	const char *comma, *semi;
	int r = 0;

	while (pos <= len && r == 0) {
		comma = memchr(v + pos, ',', len - pos);
		end = comma ? (size_t)(comma - v) : len;
		semi = memchr(v + pos, ';', end - pos);
		cut = semi ? (size_t)(semi - v) : end;
		start = pos;
		http_trim(v, &start, &cut);
		r = fn(v + start, cut - start, arg);
		pos = end + 1;
	}
	return r;
}

static int http_token_match(const char *e, size_t n, const void *arg)
{
	return n > 0 && http_name_eq(e, n, arg);
}

int http_header_has_token(const struct http_header *hdr, const char *token)
{
	return hdr != NULL && http_list_each(hdr->value, hdr->value_len, http_token_match, token);
}

/* Remembers whether the last non-empty element of a list is "chunked". */
static int http_note_last_coding(const char *e, size_t n, const void *arg)
{
	int *chunked_last = (int *)arg;

	if (n > 0)
		*chunked_last = http_name_eq(e, n, "chunked");
	return 0;
}

void http_parser_init(struct http_parser *p, enum http_dir dir,
		      const struct http_parser_callbacks *cb, void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->dir = dir;
	p->state = HTTP_S_HEAD;
	p->mode = HTTP_BODY_DELIVER;
	p->cb = cb;
	p->ctx = ctx;
	p->parsed.dir = dir;
}

void http_parser_release(struct http_parser *p)
{
	free(p->head);
	p->head = NULL;
	p->head_len = 0;
	p->head_cap = 0;
	p->in_message = 0;
	memset(&p->parsed, 0, sizeof(p->parsed));
	p->state = HTTP_S_FAILED;
}

/* The message is over: report it and wait for the next head. The head buffer is kept as it
 * is so that the head given to on_head stays readable until the next message starts. */
static void http_message_end(struct http_parser *p, int complete)
{
	p->in_message = 0;
	p->state = HTTP_S_HEAD;
	if (p->cb && p->cb->on_end)
		p->cb->on_end(p->ctx, complete);
}

static void http_fail(struct http_parser *p)
{
	int was_in_message = p->in_message;

	p->in_message = 0;
	p->state = HTTP_S_FAILED;
	if (was_in_message && p->cb && p->cb->on_end)
		p->cb->on_end(p->ctx, 0);
}

/* Checks the head's first bytes so that a connection that is not HTTP/1.x fails early. */
static int http_check_prefix(const struct http_parser *p)
{
	static const char version[] = "HTTP/1.";
	size_t n = p->head_len, i;
	int rc = HTTP_OK;

	if (p->dir == HTTP_DIR_RESPONSE) {
		if (n > sizeof(version) - 1)
			n = sizeof(version) - 1;
		if (memcmp(p->head, version, n) != 0)
			rc = HTTP_EPARSE;
		goto out;
	}
	for (i = 0; i < n && i <= METHOD_MAX; i++) {
		if (p->head[i] == ' ' && i > 0)
			goto out;
		if (!http_is_tchar((unsigned char)p->head[i])) {
			rc = HTTP_EPARSE;
			goto out;
		}
	}
	if (i > METHOD_MAX)
		rc = HTTP_EPARSE;
out:
	return rc;
}

/* The byte `back` places before data[k], looking into the head gathered so far when it lies
 * before data; -1 before the start of the head. */
static int http_byte_before(const struct http_parser *p, const char *data, size_t k, size_t back)
{
	int b = -1;

	if (back <= k)
		b = (unsigned char)data[k - back];
	else if (back - k <= p->head_len)
		b = (unsigned char)p->head[p->head_len - (back - k)];
	return b;
}

/* Looks for the blank line that ends the head in data[0..len); returns the length up to and
 * including it, or 0 when the head goes on. CRLF and bare LF line ends are both accepted. */
static size_t http_find_head_end(const struct http_parser *p, const char *data, size_t len)
{
	const char *lf;
	size_t k = 0, found = 0;
	int b1, b2;

	while (k < len && found == 0) {
		lf = memchr(data + k, '\n', len - k);
		if (lf == NULL)
			break;
		k = (size_t)(lf - data);
		b1 = http_byte_before(p, data, k, 1);
		b2 = http_byte_before(p, data, k, 2);
		if (b1 == '\n' || (b1 == '\r' && b2 == '\n'))
			found = k + 1;
		k++;
	}
	return found;
}

/* Appends data to the head buffer, growing it up to HTTP_HEAD_MAX; what goes past that is not
 * kept and makes the head too big. */
static int http_head_append(struct http_parser *p, const char *data, size_t n)
{
	size_t need = p->head_len + n, cap;
	char *grown;
	int rc = HTTP_OK;

	if (need > HTTP_HEAD_MAX) {
		rc = HTTP_ETOOBIG;
		need = HTTP_HEAD_MAX;
		n = need - p->head_len;
	}
	if (need > p->head_cap) {
		cap = p->head_cap ? p->head_cap : HEAD_CAP_INITIAL;
		while (cap < need)
			cap *= 2;
		if (cap > HTTP_HEAD_MAX)
			cap = HTTP_HEAD_MAX;
		grown = realloc(p->head, cap);
		if (grown == NULL) {
			rc = HTTP_ENOMEM;
			goto out;
		}
		p->head = grown;
		p->head_cap = cap;
	}
	memcpy(p->head + p->head_len, data, n);
	p->head_len = need;
out:
	return rc;
}

/* Reads "HTTP/1.x" at s[0..n); returns the minor version, or -1. */
static int http_parse_version(const char *s, size_t n)
{
	int minor = -1;

	if (n >= 8 && memcmp(s, "HTTP/1.", 7) == 0 && s[7] >= '0' && s[7] <= '9')
		minor = s[7] - '0';
	return minor;
}

/* A byte allowed in a header value or reason phrase: anything but controls, tab excepted. */
static int http_is_field_char(unsigned char c)
{
	return c == '\t' || (c >= ' ' && c != 0x7f);
}

static int http_parse_request_line(struct http_head *h, const char *s, size_t n)
{
	size_t i = 0, t;
	int rc = HTTP_EPARSE;

	while (i < n && http_is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i >= n || s[i] != ' ')
		goto out;
	h->method = s;
	h->method_len = i;
	t = ++i;
	while (i < n && (unsigned char)s[i] > ' ' && s[i] != 0x7f)
		i++;
	if (i == t || i >= n || s[i] != ' ')
		goto out;
	h->target = s + t;
	h->target_len = i - t;
	i++;
	h->minor_version = http_parse_version(s + i, n - i);
	if (h->minor_version < 0 || n - i != 8)
		goto out;
	rc = HTTP_OK;
out:
	return rc;
}

static int http_parse_status_line(struct http_head *h, const char *s, size_t n)
{
	size_t i;
	int rc = HTTP_EPARSE;

	h->minor_version = http_parse_version(s, n);
	if (h->minor_version < 0 || n < 12 || s[8] != ' ')
		goto out;
	for (i = 9; i < 12; i++) {
		if (s[i] < '0' || s[i] > '9')
			goto out;
	}
	h->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	/* The reason phrase may be missing altogether ("HTTP/1.1 200"); servers do send that. */
	if (n > 12 && s[12] != ' ')
		goto out;
	for (i = 12; i < n; i++) {
		if (!http_is_field_char((unsigned char)s[i]))
			goto out;
	}
	rc = HTTP_OK;
out:
	return rc;
}

static int http_parse_header_line(struct http_head *h, const char *s, size_t n)
{
	struct http_header *hdr;
	size_t i = 0, start, end;
	int rc = HTTP_EPARSE;

	/* obs-fold (a line starting with white space) is rejected, as RFC 9112 5.2 allows. */
	while (i < n && http_is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i >= n || s[i] != ':')
		goto out;
	for (start = i + 1; start < n; start++) {
		if (!http_is_field_char((unsigned char)s[start]))
			goto out;
	}
	if (h->nheaders == HTTP_MAX_HEADERS) {
		rc = HTTP_ETOOBIG;
		goto out;
	}
	start = i + 1;
	end = n;
	http_trim(s, &start, &end);
	hdr = &h->headers[h->nheaders++];
	hdr->name = s;
	hdr->name_len = i;
	hdr->value = s + start;
	hdr->value_len = end - start;
	rc = HTTP_OK;
out:
	return rc;
}

/* Parses the whole head in p->head into p->parsed. */
static int http_parse_head(struct http_parser *p)
{
	struct http_head *h = &p->parsed;
	const char *s = p->head, *lf;
	size_t pos = 0, n;
	int rc = HTTP_OK, first = 1;

	memset(h, 0, sizeof(*h));
	h->dir = p->dir;
	h->raw = p->head;
	h->raw_len = p->head_len;
	while (rc == HTTP_OK) {
		lf = memchr(s + pos, '\n', p->head_len - pos);
		if (lf == NULL) { /* cannot happen: the head ends with a blank line */
			rc = HTTP_EPARSE;
			break;
		}
		n = (size_t)(lf - (s + pos));
		if (n > 0 && s[pos + n - 1] == '\r')
			n--;
		if (n == 0 && !first)
			break;
		if (first && p->dir == HTTP_DIR_REQUEST)
			rc = http_parse_request_line(h, s + pos, n);
		else if (first)
			rc = http_parse_status_line(h, s + pos, n);
		else
			rc = http_parse_header_line(h, s + pos, n);
		first = 0;
		pos = (size_t)(lf - s) + 1;
	}
	return rc;
}

/* Reads every Content-Length (a list of equal values counts as one, RFC 9110 8.6). */
static int http_content_length(const struct http_head *h, int *present, uint64_t *len)
{
	const struct http_header *hdr;
	uint64_t v;
	size_t i, k;
	int rc = HTTP_OK, digits;

	*present = 0;
	for (i = 0; i < h->nheaders && rc == HTTP_OK; i++) {
		hdr = &h->headers[i];
		if (!http_name_eq(hdr->name, hdr->name_len, "content-length"))
			continue;
		k = 0;
		while (k <= hdr->value_len && rc == HTTP_OK) {
			while (k < hdr->value_len && (hdr->value[k] == ' ' || hdr->value[k] == '\t'))
				k++;
			v = 0;
			digits = 0;
			while (k < hdr->value_len && hdr->value[k] >= '0' && hdr->value[k] <= '9') {
				if (v > (UINT64_MAX - 9) / 10)
					rc = HTTP_EPARSE;
				v = v * 10 + (uint64_t)(hdr->value[k] - '0');
				digits++;
				k++;
			}
			while (k < hdr->value_len && (hdr->value[k] == ' ' || hdr->value[k] == '\t'))
				k++;
			if (digits == 0 || (k < hdr->value_len && hdr->value[k] != ','))
				rc = HTTP_EPARSE;
			else if (*present && v != *len)
				rc = HTTP_EPARSE;
			*present = 1;
			*len = v;
			k++;
		}
	}
	return rc;
}

/* How the body of the head just parsed is framed. */
enum http_framing { HTTP_FRAME_NONE, HTTP_FRAME_LENGTH, HTTP_FRAME_CHUNKED, HTTP_FRAME_EOF };

static int http_framing_of(const struct http_parser *p, enum http_framing *frame, uint64_t *len)
{
	const struct http_head *h = &p->parsed;
	const struct http_header *hdr;
	int rc = HTTP_OK, has_te = 0, chunked_last = 0, has_len;
	size_t i;

	for (i = 0; i < h->nheaders; i++) {
		hdr = &h->headers[i];
		if (http_name_eq(hdr->name, hdr->name_len, "transfer-encoding")) {
			has_te = 1;
			http_list_each(hdr->value, hdr->value_len, http_note_last_coding,
				       &chunked_last);
		}
	}
	rc = http_content_length(h, &has_len, len);
	if (rc != HTTP_OK)
		goto out;
	/* Transfer-Encoding wins over Content-Length (RFC 9112 6.3). */
	if (has_te && chunked_last)
		*frame = HTTP_FRAME_CHUNKED;
	else if (has_te && p->dir == HTTP_DIR_RESPONSE)
		*frame = HTTP_FRAME_EOF;
	else if (has_te)
		rc = HTTP_EPARSE; /* a request body whose end cannot be known */
	else if (has_len)
		*frame = *len ? HTTP_FRAME_LENGTH : HTTP_FRAME_NONE;
	else if (p->dir == HTTP_DIR_RESPONSE)
		*frame = HTTP_FRAME_EOF;
	else
		*frame = HTTP_FRAME_NONE;
out:
	return rc;
}

/* The head is gathered: parse it, tell the owner, and set up the body. */
static int http_head_done(struct http_parser *p)
{
	enum http_body_mode mode = HTTP_BODY_DELIVER;
	enum http_framing frame = HTTP_FRAME_NONE;
	uint64_t len = 0;
	int rc, status;

	rc = http_parse_head(p);
	if (rc != HTTP_OK)
		goto out;
	status = p->parsed.status;
	if (p->dir == HTTP_DIR_RESPONSE && status >= 100 && status < 200) {
		if (p->cb && p->cb->on_head)
			p->cb->on_head(p->ctx, &p->parsed);
		if (status == 101) {
			http_message_end(p, 1);
			p->state = HTTP_S_UPGRADED;
		} else {
			/* An interim response: the real one follows, and until it has ended the
			 * exchange is in progress (an eof now ends it incomplete). Setting head_len
			 * to 0 frees nothing: this head stays readable until more bytes come. */
			p->head_len = 0;
			p->state = HTTP_S_HEAD;
		}
		goto out;
	}
	rc = http_framing_of(p, &frame, &len);
	if (rc != HTTP_OK)
		goto out;
	if (p->cb && p->cb->on_head)
		mode = p->cb->on_head(p->ctx, &p->parsed);
	p->mode = mode;
	if (mode == HTTP_BODY_UPGRADE) {
		http_message_end(p, 1);
		p->state = HTTP_S_UPGRADED;
		goto out;
	}
	if (mode == HTTP_BODY_NONE || status == 204 || status == 304)
		frame = HTTP_FRAME_NONE;
	p->remaining = len;
	p->chunk_digits = 0;
	p->trailer_line_len = 0;
	switch (frame) {
	case HTTP_FRAME_NONE:
		http_message_end(p, 1);
		break;
	case HTTP_FRAME_LENGTH:
		p->state = HTTP_S_BODY_LENGTH;
		break;
	case HTTP_FRAME_CHUNKED:
		p->remaining = 0;
		p->state = HTTP_S_CHUNK_SIZE;
		break;
	case HTTP_FRAME_EOF:
		p->state = HTTP_S_BODY_EOF;
		break;
	}
out:
	return rc;
}

/* Gathers head bytes from data; *used says how many belong to the head (or were skipped). */
static int http_feed_head(struct http_parser *p, const char *data, size_t len, size_t *used)
{
	size_t i = 0, take, end, old_len;
	int rc = HTTP_OK;

	if (!p->in_message || p->head_len == 0) {
		/* Empty lines before a head are ignored (RFC 9112 2.2): clients send a CRLF
		 * after a POST body. */
		while (i < len && (data[i] == '\r' || data[i] == '\n'))
			i++;
		if (i == len)
			goto out;
	}
	if (!p->in_message) {
		p->in_message = 1;
		p->head_len = 0;
	}
	end = http_find_head_end(p, data + i, len - i);
	take = end ? end : len - i;
	old_len = p->head_len;
	rc = http_head_append(p, data + i, take);
	i += take;
	/* A bad start is reported as such however the head was split, even when too big. */
	if (rc != HTTP_ENOMEM && old_len <= METHOD_MAX && http_check_prefix(p) != HTTP_OK)
		rc = HTTP_EPARSE;
	if (rc == HTTP_OK && end)
		rc = http_head_done(p);
out:
	*used = i;
	return rc;
}

/* Hands n body bytes to on_body unless the owner asked to skip them. */
static void http_deliver(struct http_parser *p, const char *data, size_t n)
{
	if (p->mode == HTTP_BODY_DELIVER && p->cb && p->cb->on_body && n > 0)
		p->cb->on_body(p->ctx, data, n);
}

/* A chunk-size line is over. */
static int http_chunk_size_done(struct http_parser *p)
{
	int rc = HTTP_OK;

	if (p->chunk_digits == 0) {
		rc = HTTP_EPARSE;
	} else if (p->remaining == 0) {
		p->trailer_line_len = 0;
		p->state = HTTP_S_TRAILER;
	} else {
		p->state = HTTP_S_CHUNK_DATA;
	}
	return rc;
}

static int http_hex_value(unsigned char c)
{
	int v = -1;

	if (c >= '0' && c <= '9')
		v = c - '0';
	else if (http_lower(c) >= 'a' && http_lower(c) <= 'f')
		v = http_lower(c) - 'a' + 10;
	return v;
}

/* One byte of chunk framing: size line, extensions, the CRLF after data, trailers. */
static int http_chunk_byte(struct http_parser *p, unsigned char c)
{
	int rc = HTTP_OK, v;

	if (++p->trailer_line_len > FRAMING_LINE_MAX) {
		rc = HTTP_EPARSE;
		goto out;
	}
	switch (p->state) {
	case HTTP_S_CHUNK_SIZE:
		v = http_hex_value(c);
		if (v >= 0 && p->remaining <= (UINT64_MAX >> 4)) {
			p->remaining = (p->remaining << 4) | (uint64_t)v;
			p->chunk_digits++;
		} else if (v < 0 && (c == ';' || c == ' ' || c == '\t') && p->chunk_digits > 0) {
			p->state = HTTP_S_CHUNK_EXT;
		} else if (c == '\r') {
			p->state = HTTP_S_CHUNK_SIZE_LF;
		} else if (c == '\n') {
			rc = http_chunk_size_done(p);
		} else {
			rc = HTTP_EPARSE;
		}
		break;
	case HTTP_S_CHUNK_EXT: /* extensions are skipped, whatever they say */
		if (c == '\r')
			p->state = HTTP_S_CHUNK_SIZE_LF;
		else if (c == '\n')
			rc = http_chunk_size_done(p);
		break;
	case HTTP_S_CHUNK_SIZE_LF:
		if (c == '\n')
			rc = http_chunk_size_done(p);
		else
			rc = HTTP_EPARSE;
		break;
	case HTTP_S_CHUNK_DATA_CR:
	case HTTP_S_CHUNK_DATA_LF:
		if (c == '\r' && p->state == HTTP_S_CHUNK_DATA_CR) {
			p->state = HTTP_S_CHUNK_DATA_LF;
		} else if (c == '\n') {
			p->state = HTTP_S_CHUNK_SIZE;
			p->remaining = 0;
			p->chunk_digits = 0;
			p->trailer_line_len = 0;
		} else {
			rc = HTTP_EPARSE;
		}
		break;
	case HTTP_S_TRAILER:
		if (c == '\n' && p->trailer_line_len == 1)
			http_message_end(p, 1);
		else if (c == '\n')
			p->trailer_line_len = 0;
		else if (c == '\r')
			p->trailer_line_len--; /* a CR alone does not make a line non-empty */
		break;
	default:
		rc = HTTP_EPARSE;
		break;
	}
out:
	return rc;
}

int http_parser_feed(struct http_parser *p, const char *data, size_t len)
{
	size_t used;
	int rc = HTTP_OK;

	if (p->state == HTTP_S_FAILED) {
		rc = HTTP_EPARSE;
		goto out;
	}
	while (len > 0 && rc == HTTP_OK) {
		used = len;
		switch (p->state) {
		case HTTP_S_HEAD:
			rc = http_feed_head(p, data, len, &used);
			break;
		case HTTP_S_BODY_LENGTH:
		case HTTP_S_CHUNK_DATA:
			if (used > p->remaining)
				used = (size_t)p->remaining;
			http_deliver(p, data, used);
			p->remaining -= used;
			if (p->remaining == 0 && p->state == HTTP_S_CHUNK_DATA) {
				p->trailer_line_len = 0;
				p->state = HTTP_S_CHUNK_DATA_CR;
			} else if (p->remaining == 0) {
				http_message_end(p, 1);
			}
			break;
		case HTTP_S_BODY_EOF:
			http_deliver(p, data, len);
			break;
		case HTTP_S_UPGRADED:
			break;
		case HTTP_S_FAILED:
			rc = HTTP_EPARSE;
			break;
		default:
			used = 1;
			rc = http_chunk_byte(p, (unsigned char)*data);
			break;
		}
		data += used;
		len -= used;
	}
	if (rc != HTTP_OK)
		http_fail(p);
out:
	return rc;
}

void http_parser_eof(struct http_parser *p)
{
	if (p->state == HTTP_S_BODY_EOF)
		http_message_end(p, 1);
	else if (p->in_message && p->state != HTTP_S_FAILED && p->state != HTTP_S_UPGRADED)
		http_message_end(p, 0);
}
