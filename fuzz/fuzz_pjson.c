/*
 * fuzz_pjson.c - providers/pjson.h pjson_read, the provider families' JSON reader, checked
 * against cJSON itself: pjson_read must read exactly what cJSON_ParseWithLengthOpts reads.
 *
 * Input: any bytes, read both ways. Both must agree on whether they are one JSON value, on
 * where it ends, and on the whole tree: every node's type, number (bit for bit) and valueint,
 * string and key, the order of members, and cJSON's convention that an array's or object's
 * first member points back to its last.
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz/fuzz.h"
#include "providers/pjson.h"

static void same_tree(const cJSON *a, const cJSON *b)
{
	const cJSON *x, *y;

	FUZZ_CHECK((a->type & 0xFF) == (b->type & 0xFF));
	FUZZ_CHECK(memcmp(&a->valuedouble, &b->valuedouble, sizeof a->valuedouble) == 0);
	FUZZ_CHECK(a->valueint == b->valueint);
	FUZZ_CHECK((a->string == NULL) == (b->string == NULL));
	FUZZ_CHECK(a->string == NULL || strcmp(a->string, b->string) == 0);
	FUZZ_CHECK((a->valuestring == NULL) == (b->valuestring == NULL));
	FUZZ_CHECK(a->valuestring == NULL || strcmp(a->valuestring, b->valuestring) == 0);
	for (x = a->child, y = b->child; x != NULL && y != NULL; x = x->next, y = y->next)
		same_tree(x, y);
	FUZZ_CHECK(x == NULL && y == NULL);
	if (a->child != NULL) {
		for (x = a->child; x->next != NULL; x = x->next)
			;
		FUZZ_CHECK(a->child->prev == x);
		for (y = b->child; y->next != NULL; y = y->next)
			;
		FUZZ_CHECK(b->child->prev == y);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so that a read past the end is caught. */
	char *buf = malloc(size ? size : 1);
	const char *end_c = NULL, *end_p = NULL;
	cJSON *c, *p;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	c = size ? cJSON_ParseWithLengthOpts(buf, size, &end_c, 0) : NULL;
	p = pjson_read(buf, size, &end_p);
	FUZZ_CHECK((c == NULL) == (p == NULL));
	if (c != NULL) {
		FUZZ_CHECK(end_c == end_p);
		same_tree(c, p);
	}
	cJSON_Delete(c);
	pjson_free(p);
	free(buf);
	return 0;
}
