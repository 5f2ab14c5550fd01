/*
 * agent_io.h - what the test agents in tests/tools/ share: reading a request body from a file
 * and gathering an answer in memory. Test code: a failed allocation is reported, not hidden.
 */
#ifndef TOKSHIM_AGENT_IO_H
#define TOKSHIM_AGENT_IO_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes gathered by a write callback (agent_io_write). */
struct agent_buf {
	char *p;
	size_t len;
};

/* The whole file at path in a malloc'd buffer (NUL after its *len bytes), or NULL. The caller
 * frees it. */
static inline char *agent_io_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	long n;

	if (f == NULL)
		return NULL;
	n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		b = malloc((size_t)n + 1);
		if (b != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
			free(b);
			b = NULL;
		}
		if (b != NULL)
			b[n] = '\0';
		*len = (size_t)n;
	}
	fclose(f);
	return b;
}

/* A libcurl write callback: appends to the struct agent_buf at data; 0 (libcurl then fails the
 * transfer) when memory runs out. */
static inline size_t agent_io_write(char *p, size_t size, size_t n, void *data)
{
	struct agent_buf *b = data;
	char *o = realloc(b->p, b->len + size * n + 1);

	if (o == NULL)
		return 0;
	memcpy(o + b->len, p, size * n);
	b->p = o;
	b->len += size * n;
	return size * n;
}

#endif
