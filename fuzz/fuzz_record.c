/*
 * fuzz_record.c - record decoding (store/record.h record_decode), as a reader meets bytes
 * from a store file that may be damaged or written by another version.
 *
 * Input: the bytes of one encoded record. Decoding must stay inside them (ASan sees the
 * buffer's exact end) and, when it succeeds, give a record whose strings lie inside the input
 * and which survives the encoder: encode, decode, encode again gives the same bytes.
 */
#include <string.h>

#include "fuzz/fuzz.h"
#include "store/record.h"

static void check_inside(struct record_str s, const uint8_t *buf, size_t len)
{
	FUZZ_CHECK(s.n == 0 || ((const uint8_t *)s.p >= buf &&
				(const uint8_t *)s.p + s.n <= buf + len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char enc[RECORD_ENCODED_MAX], again[RECORD_ENCODED_MAX];
	/* A copy of exactly size bytes, so that a read past the end is caught. */
	uint8_t *buf = malloc(size ? size : 1);
	struct record r, back;
	int n, m;

	if (buf == NULL)
		goto done;
	memcpy(buf, data, size);
	memset(&r, 0, sizeof r);
	if (record_decode(buf, size, &r) != 0)
		goto free_buf;
	check_inside(r.process, buf, size);
	check_inside(r.agent, buf, size);
	check_inside(r.agent_type, buf, size);
	check_inside(r.tenant, buf, size);
	check_inside(r.session, buf, size);
	check_inside(r.provider, buf, size);
	check_inside(r.api, buf, size);
	check_inside(r.host, buf, size);
	check_inside(r.path, buf, size);
	check_inside(r.model_requested, buf, size);
	check_inside(r.model, buf, size);
	check_inside(r.error, buf, size);
	check_inside(r.error_message, buf, size);
	(void)record_total_tokens(&r);
	n = record_encode(&r, enc, sizeof enc);
	FUZZ_CHECK(n > 0);
	memset(&back, 0, sizeof back);
	FUZZ_CHECK(record_decode(enc, (size_t)n, &back) == 0);
	m = record_encode(&back, again, sizeof again);
	FUZZ_CHECK(m == n && memcmp(enc, again, (size_t)n) == 0);
free_buf:
	free(buf);
done:
	return 0;
}
