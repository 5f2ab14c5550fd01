/*
 * dbuf.c - capped growable buffer; see dbuf.h. Growth doubles so that a body arriving in many
 * small reads costs amortised O(1) per byte.
 */
#include "capture/dbuf.h"

#include <stdlib.h>
#include <string.h>

void dbuf_init(struct dbuf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

static int dbuf_grow(struct dbuf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	while (cap < need + 1)
		cap *= 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	p = realloc(b->p, cap);
	if (p == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

void dbuf_append(struct dbuf *b, const void *data, size_t len)
{
	size_t room = b->max - b->len;
	size_t take = len < room ? len : room;

	b->seen += len;
	if (b->nomem)
		take = 0; /* what is kept stays a prefix of the bytes: none after a failed growth */
	if (take < len)
		b->cut = 1;
	if (take == 0)
		return;
	if (b->len + take + 1 > b->cap && dbuf_grow(b, b->len + take) != 0) {
		b->cut = 1;
		b->nomem = 1;
		return;
	}
	memcpy(b->p + b->len, data, take);
	b->len += take;
	b->p[b->len] = '\0';
}

void dbuf_release(struct dbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->seen = 0;
	b->cut = 0;
	b->nomem = 0;
}
