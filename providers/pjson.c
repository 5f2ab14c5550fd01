/*
 * pjson.c - JSON helpers shared by the provider families (contracts in pjson.h).
 *
 * Token counts are read leniently: providers send null for "not applicable" (OpenAI's
 * "usage": null in every chunk but the last) and some OpenAI-compatible servers send counts as
 * floats (12.0). A negative or absurd count is treated as absent rather than trusted, since one
 * bad record would poison every sum a report makes.
 */
#include "providers/pjson.h"

#include <limits.h>
#include <locale.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Nesting depth pjson_text_bytes follows (Anthropic tool_result content holds blocks that may
 * hold content again); deeper values count 0 rather than risk deep recursion. */
#define PJSON_TEXT_DEPTH 4

/* Counts above this are not token counts (a trillion tokens in one call). */
#define PJSON_INT_MAX 1000000000000LL

cJSON *pjson_parse(const char *data, size_t len)
{
	return data == NULL || len == 0 ? NULL : cJSON_ParseWithLength(data, len);
}

/* ---- pjson_read: cJSON's grammar, nodes from a few blocks ------------------------------------
 *
 * cJSON_Parse makes two mallocs per value (the node and its string) and frees them one by one:
 * for a 400-byte chat completion that was about 35,000 instructions a call, a third of what the
 * shim spent per call. Here the nodes and strings of one tree come from blocks sized from the
 * input (one block for a usual body), integers skip strtod, and freeing is one free per block.
 */

/* cJSON's CJSON_NESTING_LIMIT: arrays and objects nest this deep at most. */
#define PJSON_NEST_MAX 1000
/* Block sizes: the first from the input's length (about 6 bytes of tree per byte of JSON),
 * then doubling, each at most PJSON_BLOCK_MAX unless one string needs more. */
#define PJSON_BLOCK_MIN 512
#define PJSON_BLOCK_MAX (1u << 20)

/* Set when a read on this thread ran out of memory; per thread because the shim reads on every
 * thread of the agent, and one flag a read is cheaper than a status threaded through every
 * provider's reader. initial-exec: no lookup, the shim is loaded at start. */
static __thread int pjson_nomem __attribute__((tls_model("initial-exec")));

struct pjson_block {
	struct pjson_block *next;
	size_t cap, used;
};

/* The block header's size, kept a multiple of 16 so what follows is aligned for any node. */
#define PJSON_HDR ((sizeof(struct pjson_block) + 15) & ~(size_t)15)

struct pjson_reader {
	const unsigned char *p, *end;
	struct pjson_block *first, *cur;
	size_t first_cap;
	unsigned depth;
};

static void *pjson_alloc(struct pjson_reader *r, size_t n)
{
	struct pjson_block *b = r->cur, *nb;
	size_t cap;
	void *at = NULL;

	n = (n + 7) & ~(size_t)7;
	if (b == NULL || b->cap - b->used < n) {
		cap = b == NULL ? r->first_cap : b->cap * 2;
		cap = cap > PJSON_BLOCK_MAX ? PJSON_BLOCK_MAX : cap;
		cap = cap < n ? n : cap;
		nb = malloc(PJSON_HDR + cap);
		if (nb == NULL) {
			pjson_nomem = 1;
			goto done;
		}
		nb->next = NULL;
		nb->cap = cap;
		nb->used = 0;
		if (b == NULL)
			r->first = nb;
		else
			b->next = nb;
		r->cur = b = nb;
	}
	at = (char *)b + PJSON_HDR + b->used;
	b->used += n;
done:
	return at;
}

static cJSON *pjson_node(struct pjson_reader *r)
{
	cJSON *n = pjson_alloc(r, sizeof(*n));

	if (n != NULL)
		memset(n, 0, sizeof(*n));
	return n;
}

static void pjson_skip_space(struct pjson_reader *r)
{
	while (r->p < r->end && *r->p <= 32)
		r->p++;
}

static unsigned pjson_hex4(const unsigned char *h)
{
	unsigned v = 0;
	int i;

	/* cJSON reads a bad hex digit as the code 0 */
	for (i = 0; i < 4; i++) {
		unsigned c = h[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return 0;
		v = v << 4 | d;
	}
	return v;
}

/* A backslash-u escape at in (up to stop, the closing quote) as UTF-8 at *out: the escape's length
 * (6, or 12 for a surrogate pair), 0 when it is not valid. */
static size_t pjson_utf16(const unsigned char *in, const unsigned char *stop, char **out)
{
	unsigned first, second, cp;
	size_t len = 6;
	unsigned char *o = (unsigned char *)*out;

	if (stop - in < 6)
		return 0;
	first = pjson_hex4(in + 2);
	if (first >= 0xDC00 && first <= 0xDFFF)
		return 0;
	cp = first;
	if (first >= 0xD800 && first <= 0xDBFF) {
		if (stop - (in + 6) < 6 || in[6] != '\\' || in[7] != 'u')
			return 0;
		second = pjson_hex4(in + 8);
		if (second < 0xDC00 || second > 0xDFFF)
			return 0;
		cp = 0x10000 + (((first & 0x3FF) << 10) | (second & 0x3FF));
		len = 12;
	}
	if (cp < 0x80) {
		*o++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*o++ = (unsigned char)(0xC0 | cp >> 6);
		*o++ = (unsigned char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		*o++ = (unsigned char)(0xE0 | cp >> 12);
		*o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		*o++ = (unsigned char)(0x80 | (cp & 0x3F));
	} else {
		*o++ = (unsigned char)(0xF0 | cp >> 18);
		*o++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		*o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		*o++ = (unsigned char)(0x80 | (cp & 0x3F));
	}
	*out = (char *)o;
	return len;
}

/* The string whose opening quote is at r->p, decoded into the tree's memory (never longer
 * than its escaped form); r->p moves past its closing quote. NULL when it is not a string. */
static char *pjson_string(struct pjson_reader *r)
{
	const unsigned char *s = r->p + 1, *q, *at = s, *bs;
	size_t i, n, k;
	int escaped = 0;
	char *out = NULL, *o;

	if (r->p >= r->end || *r->p != '"')
		goto done;
	/* The closing quote: the first quote with no backslash before it since the last escape
	 * (memchr: most strings are short keys and values without escapes). */
	for (;;) {
		q = memchr(at, '"', (size_t)(r->end - at));
		if (q == NULL)
			goto done;
		bs = memchr(at, '\\', (size_t)(q - at));
		if (bs == NULL)
			break;
		if (bs + 1 >= r->end)
			goto done;
		escaped = 1;
		at = bs + 2; /* past the escaped byte, which may be a quote */
	}
	n = (size_t)(q - s);
	o = out = pjson_alloc(r, n + 1);
	if (out == NULL)
		goto done;
	if (!escaped) {
		memcpy(o, s, n);
		o += n;
	}
	for (i = 0; escaped && i < n; i++) {
		if (s[i] != '\\') {
			*o++ = (char)s[i];
			continue;
		}
		switch (s[i + 1]) {
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case '"': case '\\': case '/': *o++ = (char)s[i + 1]; break;
		case 'u':
			k = pjson_utf16(s + i, q, &o);
			if (k == 0) {
				out = NULL;
				goto done;
			}
			i += k - 2;
			break;
		default:
			out = NULL;
			goto done;
		}
		i++;
	}
	*o = '\0';
	r->p = q + 1;
done:
	return out; /* on failure what was taken stays in the tree's blocks, freed with it */
}

/* A number as cJSON reads it: the whole run of [0-9+-.eE] through strtod, with '.' as the
 * locale's decimal point; a plain integer of up to 15 digits is exact without strtod. */
static int pjson_number(struct pjson_reader *r, cJSON *item)
{
	char small[64], *buf = small, *after, *dot;
	size_t n = 0, i;
	int plain = 1, rc = -1;
	double v = 0;
	int64_t iv = 0;

	for (; r->p + n < r->end; n++) {
		char c = (char)r->p[n];

		if (!((c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' || c == 'E' ||
		      c == '.'))
			break;
		plain = plain && ((c >= '0' && c <= '9') || (c == '-' && n == 0));
	}
	i = r->p[0] == '-';
	if (plain && n > i && n - i <= 15) {
		for (; i < n; i++)
			iv = iv * 10 + (r->p[i] - '0');
		v = r->p[0] == '-' ? -(double)iv : (double)iv;
		r->p += n;
		goto set;
	}
	if (n >= sizeof(small))
		buf = malloc(n + 1); /* no longer than the input */
	if (buf == NULL) {
		pjson_nomem = 1;
		goto done;
	}
	memcpy(buf, r->p, n);
	buf[n] = '\0';
	for (dot = buf; dot < buf + n; dot++) {
		if (*dot == '.')
			*dot = localeconv()->decimal_point[0];
	}
	v = strtod(buf, &after);
	if (after == buf)
		goto free_buf;
	r->p += after - buf;
set:
	item->type = cJSON_Number;
	item->valuedouble = v;
	item->valueint = v >= INT_MAX ? INT_MAX : v <= (double)INT_MIN ? INT_MIN : (int)v;
	rc = 0;
free_buf:
	if (buf != small)
		free(buf);
done:
	return rc;
}

static int pjson_value(struct pjson_reader *r, cJSON *item);

/* The members of an array (close ']') or object (close '}') whose opening byte is at r->p. */
static int pjson_container(struct pjson_reader *r, cJSON *item, unsigned char close)
{
	cJSON *head = NULL, *tail = NULL, *c;
	int rc = -1;

	if (r->depth >= PJSON_NEST_MAX)
		goto done;
	r->depth++;
	r->p++;
	pjson_skip_space(r);
	while (r->p < r->end && *r->p != close) {
		c = pjson_node(r);
		if (c == NULL)
			goto done;
		if (close == '}') {
			c->string = pjson_string(r);
			if (c->string == NULL)
				goto done;
			pjson_skip_space(r);
			if (r->p >= r->end || *r->p != ':')
				goto done;
			r->p++;
			pjson_skip_space(r);
		}
		if (pjson_value(r, c) != 0)
			goto done;
		if (head == NULL) {
			head = c;
		} else {
			tail->next = c;
			c->prev = tail;
		}
		tail = c;
		pjson_skip_space(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			pjson_skip_space(r);
			if (r->p < r->end && *r->p == close)
				goto done; /* a trailing comma */
		} else {
			break;
		}
	}
	if (r->p >= r->end || *r->p != close)
		goto done;
	r->p++;
	r->depth--;
	if (head != NULL)
		head->prev = tail; /* as cJSON keeps it: the first member's prev is the last */
	item->type = close == '}' ? cJSON_Object : cJSON_Array;
	item->child = head;
	rc = 0;
done:
	return rc;
}

static int pjson_literal(struct pjson_reader *r, const char *word, size_t n)
{
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
		return -1;
	r->p += n;
	return 0;
}

static int pjson_value(struct pjson_reader *r, cJSON *item)
{
	int rc = -1;

	if (r->p >= r->end)
		goto done;
	switch (*r->p) {
	case 'n':
		rc = pjson_literal(r, "null", 4);
		item->type = cJSON_NULL;
		break;
	case 'f':
		rc = pjson_literal(r, "false", 5);
		item->type = cJSON_False;
		break;
	case 't':
		rc = pjson_literal(r, "true", 4);
		item->type = cJSON_True;
		item->valueint = 1;
		break;
	case '"':
		item->valuestring = pjson_string(r);
		item->type = cJSON_String;
		rc = item->valuestring != NULL ? 0 : -1;
		break;
	case '[':
		rc = pjson_container(r, item, ']');
		break;
	case '{':
		rc = pjson_container(r, item, '}');
		break;
	default:
		if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
			rc = pjson_number(r, item);
		break;
	}
done:
	return rc;
}

cJSON *pjson_read(const char *data, size_t len, const char **end)
{
	struct pjson_reader r;
	cJSON *root = NULL;
	size_t guess;

	if (data == NULL || len == 0)
		goto done;
	memset(&r, 0, sizeof(r));
	r.p = (const unsigned char *)data;
	r.end = r.p + len;
	guess = len < PJSON_BLOCK_MAX / 6 ? len * 6 : PJSON_BLOCK_MAX;
	r.first_cap = guess < PJSON_BLOCK_MIN ? PJSON_BLOCK_MIN : guess;
	if (len > 4 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		r.p += 3;
	pjson_skip_space(&r);
	/* The root is the first thing allocated: pjson_free finds the blocks from it. */
	root = pjson_node(&r);
	if (root == NULL || pjson_value(&r, root) != 0) {
		pjson_free(root);
		root = NULL;
		goto done;
	}
	if (end != NULL)
		*end = (const char *)r.p;
done:
	return root;
}

int pjson_nomem_take(void)
{
	int seen = pjson_nomem;

	pjson_nomem = 0;
	return seen;
}

void pjson_nomem_raise(void)
{
	pjson_nomem = 1;
}

void pjson_free(cJSON *root)
{
	struct pjson_block *b = root ? (struct pjson_block *)((char *)root - PJSON_HDR) : NULL, *next;

	while (b != NULL) {
		next = b->next;
		free(b);
		b = next;
	}
}

const cJSON *pjson_at(const cJSON *o, ...)
{
	va_list ap;
	const char *key;

	va_start(ap, o);
	key = va_arg(ap, const char *);
	while (key != NULL && o != NULL) {
		o = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
		key = va_arg(ap, const char *);
	}
	va_end(ap);
	return o;
}

int pjson_int(const cJSON *o, const char *key, int64_t *out)
{
	const cJSON *v = pjson_at(o, key, (const char *)NULL);
	int found = 0;

	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= (double)PJSON_INT_MAX) {
		*out = (int64_t)v->valuedouble;
		found = 1;
	}
	return found;
}

const char *pjson_str(const cJSON *o, const char *key)
{
	const cJSON *v = pjson_at(o, key, (const char *)NULL);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int pjson_bool(const cJSON *o, const char *key)
{
	const cJSON *v = pjson_at(o, key, (const char *)NULL);
	int r = -1;

	if (cJSON_IsBool(v))
		r = cJSON_IsTrue(v) ? 1 : 0;
	return r;
}

/* Length of a value printed as compact JSON (a tool call's input object). */
static uint64_t pjson_printed_len(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	uint64_t n = 0;

	if (s != NULL) {
		n = strlen(s);
		cJSON_free(s);
	}
	return n;
}

static uint64_t pjson_text_bytes_depth(const cJSON *v, int depth)
{
	const cJSON *it;
	uint64_t n = 0;
	static const char *const text_keys[] = {"text", "thinking", "partial_json", "arguments"};
	size_t i;

	if (v == NULL || depth > PJSON_TEXT_DEPTH)
		goto done;
	if (cJSON_IsString(v)) {
		n = strlen(v->valuestring);
		goto done;
	}
	if (cJSON_IsArray(v)) {
		cJSON_ArrayForEach(it, v)
			n += pjson_text_bytes_depth(it, depth + 1);
		goto done;
	}
	if (!cJSON_IsObject(v))
		goto done;
	for (i = 0; i < sizeof text_keys / sizeof text_keys[0]; i++) {
		const char *s = pjson_str(v, text_keys[i]);
		if (s != NULL)
			n += strlen(s);
	}
	it = pjson_at(v, "content", (const char *)NULL);
	if (it != NULL)
		n += pjson_text_bytes_depth(it, depth + 1);
	/* Anthropic tool_use blocks carry their arguments as an object. */
	it = pjson_at(v, "input", (const char *)NULL);
	if (cJSON_IsObject(it))
		n += pjson_printed_len(it);
	/* OpenAI tool calls: {"function": {"arguments": "…"}}. */
	it = pjson_at(v, "function", (const char *)NULL);
	if (it != NULL)
		n += pjson_text_bytes_depth(it, depth + 1);
done:
	return n;
}

uint64_t pjson_text_bytes(const cJSON *v)
{
	return pjson_text_bytes_depth(v, 0);
}

uint64_t pjson_messages_text_bytes(const cJSON *messages)
{
	const cJSON *m;
	uint64_t n = 0;

	if (!cJSON_IsArray(messages))
		goto done;
	cJSON_ArrayForEach(m, messages) {
		n += pjson_text_bytes(pjson_at(m, "content", (const char *)NULL));
		n += pjson_text_bytes(pjson_at(m, "tool_calls", (const char *)NULL));
	}
done:
	return n;
}

static const char *pjson_skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* The first position just after `"key"` and its colon (white space skipped), or NULL. */
static const char *pjson_scan_key(const char *data, size_t len, const char *key)
{
	const char *end = data + len, *p = data, *found = NULL;
	size_t klen = strlen(key);

	while (p < end && found == NULL) {
		const char *q = memchr(p, '"', (size_t)(end - p));
		if (q == NULL)
			break;
		p = q + 1;
		if ((size_t)(end - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '"') {
			const char *c = pjson_skip_ws(p + klen + 1, end);
			if (c < end && *c == ':')
				found = pjson_skip_ws(c + 1, end);
		}
	}
	return found;
}

int pjson_scan_str(const char *data, size_t len, const char *key, char *dst, size_t cap)
{
	const char *p, *end = data + len;
	size_t n = 0;
	int found = 0;

	if (data == NULL || cap == 0)
		goto done;
	p = pjson_scan_key(data, len, key);
	if (p == NULL || p >= end || *p != '"')
		goto done;
	for (p++; p < end && *p != '"'; p++) {
		if (*p == '\\' && p + 1 < end) {
			if (n + 1 < cap)
				dst[n++] = *p;
			p++;
		}
		if (n + 1 < cap)
			dst[n++] = *p;
	}
	if (p >= end)
		goto done; /* the string itself was cut: do not report a partial name */
	dst[n] = '\0';
	found = 1;
done:
	return found;
}

int pjson_scan_bool(const char *data, size_t len, const char *key)
{
	const char *p, *end = data + len;
	int r = -1;

	if (data == NULL)
		goto done;
	p = pjson_scan_key(data, len, key);
	if (p == NULL)
		goto done;
	if ((size_t)(end - p) >= 4 && memcmp(p, "true", 4) == 0)
		r = 1;
	else if ((size_t)(end - p) >= 5 && memcmp(p, "false", 5) == 0)
		r = 0;
done:
	return r;
}
