/*
 * fuzz_decode.c - the streaming Content-Encoding decoders (http/decode.h): gzip, deflate, br,
 * zstd and identity, with small output caps.
 *
 * Input: a coding byte (low 3 bits: identity, gzip, deflate, br, zstd, others map to gzip), a
 * cap byte (low 3 bits choose 0, 1, 64, 1 KiB, 16 KiB, 256 KiB, 1 MiB or 16 MiB), a split
 * seed, then the encoded body. The body is decoded twice, whole and cut into pieces: the output
 * never passes the cap, and when neither run fails both give the same bytes (a codec stream
 * does not depend on how its input was cut).
 */
#include <string.h>

#include "fuzz/fuzz.h"
#include "http/decode.h"
#include "http/http.h"

static const uint64_t out_caps[8] = {0, 1, 64, 1024, 16384, 262144, 1u << 20, 16u << 20};
static const enum http_coding codings[8] = {
	HTTP_CODING_IDENTITY, HTTP_CODING_GZIP, HTTP_CODING_DEFLATE, HTTP_CODING_BR,
	HTTP_CODING_ZSTD,     HTTP_CODING_GZIP, HTTP_CODING_BR,      HTTP_CODING_ZSTD,
};

struct run {
	uint64_t hash;
	uint64_t total;
};

static void sink(void *ctx, const char *data, size_t len)
{
	struct run *r = ctx;

	fuzz_hash(&r->hash, data, len);
	r->total += len;
}

static int decode(struct run *r, enum http_coding coding, uint64_t cap, const uint8_t *data,
		  size_t len, unsigned seed, int split)
{
	struct body_decoder d;
	struct fuzz_split sp;
	size_t pos = 0, k;
	int rc;

	fuzz_split_init(&sp, seed);
	rc = body_decoder_init(&d, coding, cap);
	if (rc != 0)
		goto release;
	while (pos < len && rc == 0) {
		k = split ? fuzz_split_next(&sp, len - pos) : len - pos;
		rc = body_decoder_feed(&d, (const char *)data + pos, k, sink, r);
		pos += k;
	}
	FUZZ_CHECK(r->total <= cap);
	FUZZ_CHECK(d.out_total == r->total);
release:
	body_decoder_release(&d);
	body_decoder_release(&d); /* released twice: the contract says that is safe */
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	enum http_coding coding = codings[fuzz_take(&in) & 7];
	uint64_t cap = out_caps[fuzz_take(&in) & 7];
	unsigned seed = fuzz_take(&in);
	struct run whole = {FUZZ_HASH_INIT, 0}, cut = whole;
	int rc_whole, rc_cut;

	rc_whole = decode(&whole, coding, cap, in.p, in.n, seed, 0);
	rc_cut = decode(&cut, coding, cap, in.p, in.n, seed, 1);
	if (rc_whole == 0 && rc_cut == 0)
		FUZZ_CHECK(whole.hash == cut.hash && whole.total == cut.total);
	return 0;
}
