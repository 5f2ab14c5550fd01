/*
 * fuzz_payload.c - payload decoding (store/payload.h payload_decode): the header, the zstd
 * frame and the four parts of a stored exchange, as a reader meets bytes that may be damaged.
 *
 * Input: the bytes of one encoded payload. Decoding must stay inside them, must not allocate
 * past PAYLOAD_RAW_MAX, and when it succeeds gives parts that can be read whole and encoded
 * again into a payload that decodes to the same parts.
 */
#include <string.h>

#include "fuzz/fuzz.h"
#include "store/payload.h"

static struct payload_coder coder;

static int str_eq(struct record_str a, struct record_str b)
{
	return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return payload_coder_init(&coder);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1); /* exactly size bytes: over-reads are caught */
	struct payload pl, back;
	unsigned char *enc = NULL;
	size_t enc_len = 0;
	uint64_t h = FUZZ_HASH_INIT;

	memset(&pl, 0, sizeof pl);
	memset(&back, 0, sizeof back);
	if (buf == NULL)
		goto done;
	memcpy(buf, data, size);
	if (payload_decode(buf, size, &pl) != 0)
		goto release;
	free(buf);
	buf = NULL; /* the decoded parts must not point into the input */
	fuzz_hash(&h, pl.req_head.p, pl.req_head.n);
	fuzz_hash(&h, pl.req_body.p, pl.req_body.n);
	fuzz_hash(&h, pl.resp_head.p, pl.resp_head.n);
	fuzz_hash(&h, pl.resp_body.p, pl.resp_body.n);
	FUZZ_CHECK((uint64_t)pl.req_head.n + pl.req_body.n + pl.resp_head.n + pl.resp_body.n <=
		   PAYLOAD_RAW_MAX);
	FUZZ_CHECK(payload_encode(&coder, &pl, &enc, &enc_len) == 0);
	FUZZ_CHECK(payload_decode(enc, enc_len, &back) == 0);
	FUZZ_CHECK(str_eq(back.req_head, pl.req_head) && str_eq(back.req_body, pl.req_body));
	FUZZ_CHECK(str_eq(back.resp_head, pl.resp_head) && str_eq(back.resp_body, pl.resp_body));
	FUZZ_CHECK(back.req_body_size == pl.req_body_size);
	FUZZ_CHECK(back.resp_body_size == pl.resp_body_size);
release:
	payload_release(&back);
	payload_release(&pl);
	free(enc);
	free(buf);
done:
	return 0;
}
