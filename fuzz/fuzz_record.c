/*
 * fuzz_record.c - record decoding (store/record.h record_decode_at), as a reader meets bytes
 * from a store file that may be damaged or written by another version.
 *
 * Input: the bytes of one encoded value, of any version. Decoding must stay inside them (ASan
 * sees the buffer's exact end) and, when it succeeds, give a record whose strings lie inside
 * the input or are the string table's, and which survives both encoders: version 3
 * (record_encode) and version 4 with references (record_encode_refs), each encode, decode,
 * encode again giving the same bytes, and the two agreeing on every field.
 *
 * The string table stands in for the store's: ids 1 to 15 all name fuzz_ref, any other id is
 * unknown. So a reference an input makes to id 16 and above must fail the decode cleanly.
 */
#include <string.h>

#include "fuzz/fuzz.h"
#include "store/record.h"
#include "store/store.h"

#define FUZZ_REF_IDS 16

static const char fuzz_ref[] = "fuzz-ref";

static int fuzz_resolve(void *ctx, uint32_t id, struct record_str *out)
{
	int rc = STORE_EFORMAT;

	(void)ctx;
	if (id != 0 && id < FUZZ_REF_IDS) {
		*out = record_str_of(fuzz_ref);
		rc = 0;
	}
	return rc;
}

/* Encodes r as version 3 and as version 4, decodes both, encodes again: same bytes. */
static void fuzz_roundtrip(const struct record *r)
{
	static unsigned char v3[RECORD_ENCODED_MAX], v3again[RECORD_ENCODED_MAX];
	static unsigned char v4[RECORD_ENCODED_MAX], v4again[RECORD_ENCODED_MAX];
	uint32_t refs[RECORD_NSTRS];
	struct record back3, back4;
	int n3, m3, n4, m4;

	/* Strings equal to the table's entry go by reference, to ids that vary with i. */
	for (size_t i = 0; i < RECORD_NSTRS; i++) {
		const struct record_str *s = record_str_at(r, i);

		refs[i] = s->n == sizeof fuzz_ref - 1 && memcmp(s->p, fuzz_ref, s->n) == 0 ?
				  1 + (uint32_t)i : 0;
	}
	n3 = record_encode(r, v3, sizeof v3);
	n4 = record_encode_refs(r, refs, v4, sizeof v4);
	FUZZ_CHECK(n3 > 0 && n4 > 0);
	memset(&back3, 0, sizeof back3);
	memset(&back4, 0, sizeof back4);
	FUZZ_CHECK(record_decode(v3, (size_t)n3, &back3) == 0);
	FUZZ_CHECK(record_decode_at(v4, (size_t)n4, r->ts_ns, fuzz_resolve, NULL, &back4) == 0);
	m3 = record_encode(&back3, v3again, sizeof v3again);
	FUZZ_CHECK(m3 == n3 && memcmp(v3, v3again, (size_t)n3) == 0);
	m4 = record_encode_refs(&back4, refs, v4again, sizeof v4again);
	FUZZ_CHECK(m4 == n4 && memcmp(v4, v4again, (size_t)n4) == 0);
	/* Version 4 gave back every field version 3 holds. */
	m3 = record_encode(&back4, v3again, sizeof v3again);
	FUZZ_CHECK(m3 == n3 && memcmp(v3, v3again, (size_t)n3) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so that a read past the end is caught. */
	uint8_t *buf = malloc(size ? size : 1);
	struct record r, before;

	if (buf == NULL)
		goto done;
	memcpy(buf, data, size);
	memset(&r, 0x5A, sizeof r);
	before = r;
	if (record_decode_at(buf, size, 1795608000000000000ll, fuzz_resolve, NULL, &r) != 0) {
		FUZZ_CHECK(memcmp(&r, &before, sizeof r) == 0); /* untouched on failure */
		goto free_buf;
	}
	for (size_t i = 0; i < RECORD_NSTRS; i++) {
		const struct record_str *s = record_str_at(&r, i);

		FUZZ_CHECK(s->n == 0 || (s->p == fuzz_ref && s->n == sizeof fuzz_ref - 1) ||
			   ((const uint8_t *)s->p >= buf && (const uint8_t *)s->p + s->n <= buf + size));
	}
	(void)record_total_tokens(&r);
	fuzz_roundtrip(&r);
free_buf:
	free(buf);
done:
	return 0;
}
