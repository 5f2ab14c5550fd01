/*
 * dbuf.h - a growable byte buffer with a cap (curl's dynbuf). Bytes past the cap are counted,
 * not kept, and mark the buffer cut: a capture never grows the agent's memory without bound.
 */
#ifndef TOKSHIM_DBUF_H
#define TOKSHIM_DBUF_H

#include <stddef.h>
#include <stdint.h>

struct dbuf {
	char *p;         /* heap, NUL-terminated when len > 0; NULL before the first byte */
	size_t len;
	size_t cap;      /* allocated */
	size_t max;      /* most bytes kept */
	uint64_t seen;   /* every byte offered, kept or not */
	int cut;         /* bytes were dropped (cap reached or out of memory) */
	int nomem;       /* ... because memory ran out */
};

void dbuf_init(struct dbuf *b, size_t max);

/* Keeps as much of data as the cap allows. Never fails: what it cannot keep marks it cut. */
void dbuf_append(struct dbuf *b, const void *data, size_t len);

/* Frees the bytes; the buffer may be used again (empty, same cap). */
void dbuf_release(struct dbuf *b);

#endif
