/*
 * fuzz_record.c - record decoding (store/record.h record_decode), as a reader meets bytes
 * from a store file that may be damaged or written by another version.
 *
 * Input: the bytes of one encoded record (version 5, or the older layout of versions 1 to 3).
 * Decoding must stay inside them (ASan sees the buffer's exact end) and give the same verdict
 * with and without a string table: without one, every reference comes back as
 * { NULL, 0, ref } and is counted in the result; with a table holding ids 1 to 4 (store/strtab.h,
 * as store/strings.c fills it), those resolve to the table's bytes and the count drops by as
 * many. A record that decodes has its inline strings inside the input, and survives the
 * encoder: encode, decode, encode again gives the same bytes and the same count (references
 * stay references), and the record read with the table encodes to the same bytes as the one
 * read without it.
 */
#include <string.h>

#include "fuzz/fuzz.h"
#include "store/endian.h"
#include "store/record.h"
#include "store/store.h"
#include "store/strtab.h"

#define TAB_IDS 4

static struct strtab tab;
static const unsigned char *tab_chunk[STRTAB_CHUNK_LEN];
static unsigned char tab_bytes[512];

/* Ids 1 to 4: "bot", "gpt-4o", "", 255 x's. */
static void tab_init(void)
{
	static const char *const names[TAB_IDS] = { "bot", "gpt-4o", "", NULL };
	size_t used = 0, n;

	for (uint32_t id = 1; id <= TAB_IDS; id++) {
		n = names[id - 1] != NULL ? strlen(names[id - 1]) : 255;
		endian_put_le16(tab_bytes + used, (uint16_t)n);
		if (names[id - 1] != NULL)
			memcpy(tab_bytes + used + 2, names[id - 1], n);
		else
			memset(tab_bytes + used + 2, 'x', n);
		tab_chunk[id] = tab_bytes + used;
		used += 2 + n;
	}
	tab.chunk[0] = tab_chunk;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	tab_init();
	return 0;
}

/* What record_decode may give for a string: inline inside the input (ref 0), or a reference
 * resolved into the table (with_tab, ids 1 to 4) or left unresolved. Returns 1 for a
 * reference resolved, -1 for one left unresolved, else 0. */
static int check_str(const struct record_str *s, const uint8_t *buf, size_t len, int with_tab)
{
	int kind = 0;

	if (s->ref == 0) {
		FUZZ_CHECK(s->n == 0 || ((const uint8_t *)s->p >= buf &&
					 (const uint8_t *)s->p + s->n <= buf + len));
	} else if (with_tab && s->ref <= TAB_IDS) {
		FUZZ_CHECK((const unsigned char *)s->p == tab_chunk[s->ref] + 2);
		FUZZ_CHECK(s->n == endian_le16(tab_chunk[s->ref]));
		kind = 1;
	} else {
		FUZZ_CHECK(s->p == NULL && s->n == 0);
		kind = -1;
	}
	return kind;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char enc[RECORD_ENCODED_MAX], again[RECORD_ENCODED_MAX];
	/* A copy of exactly size bytes, so that a read past the end is caught. */
	uint8_t *buf = malloc(size ? size : 1);
	struct record r, rt, back;
	int rc, rct, resolved = 0, unresolved = 0, unresolved_t = 0, n, m, k;

	if (buf == NULL)
		goto done;
	memcpy(buf, data, size);
	memset(&r, 0, sizeof r);
	memset(&rt, 0, sizeof rt);
	rc = record_decode(buf, size, NULL, &r);
	rct = record_decode(buf, size, &tab, &rt);
	FUZZ_CHECK(rc >= 0 || rc == STORE_EFORMAT);
	FUZZ_CHECK((rc < 0) == (rct < 0));
	if (rc < 0)
		goto free_buf;
	/* The result counts the strings left unresolved, with a table and without. */
	for (size_t i = 0; i < RECORD_NSTRS; i++) {
		unresolved -= check_str(record_str_mut(&r, i), buf, size, 0);
		k = check_str(record_str_mut(&rt, i), buf, size, 1);
		resolved += k == 1;
		unresolved_t += k == -1;
		FUZZ_CHECK(record_str_mut(&r, i)->ref == record_str_mut(&rt, i)->ref);
	}
	FUZZ_CHECK(rc == unresolved);
	FUZZ_CHECK(rct == unresolved_t && rct == rc - resolved);
	(void)record_total_tokens(&r);
	n = record_encode(&r, enc, sizeof enc);
	FUZZ_CHECK(n > 0);
	memset(&back, 0, sizeof back);
	FUZZ_CHECK(record_decode(enc, (size_t)n, NULL, &back) == rc);
	m = record_encode(&back, again, sizeof again);
	FUZZ_CHECK(m == n && memcmp(enc, again, (size_t)n) == 0);
	m = record_encode(&rt, again, sizeof again);
	FUZZ_CHECK(m == n && memcmp(enc, again, (size_t)n) == 0);
free_buf:
	free(buf);
done:
	return 0;
}
