/*
 * test_decode.c - the streaming Content-Encoding decoders (http/decode.c).
 *
 * Bodies are compressed at test time with zlib and zstd. Brotli's encoder is not linked by the
 * build, so br bodies come two ways: a real brotli-compressed stream made once with libbrotlienc
 * (quality 11) and kept here as bytes, and a writer of uncompressed meta-blocks (RFC 7932 9.2),
 * which turns any text into a valid br body at test time. Each body is decoded whole, a byte at
 * a time and in seeded random splits, and the output must be the original text exactly; the
 * SSE streams are then framed to check the events survive the trip.
 */
#include "http/decode.h"
#include "http/http.h"
#include "http/stream.h"
#include "tests/unit/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* ---- test data ---- */

/* The SSE text the embedded br stream below was made from: n events "data: {...}\n\n". */
static char *sse_text(int n, size_t *len)
{
	size_t cap = (size_t)n * 64 + 1, l = 0;
	char *buf = malloc(cap);
	int i;

	for (i = 0; i < n; i++)
		l += (size_t)snprintf(buf + l, cap - l,
				      "data: {\"i\":%d,\"text\":\"token %d\"}\n\n", i, i * i);
	*len = l;
	return buf;
}

/* sse_text(40) through BrotliEncoderCompress(quality 11, lgwin 22, BROTLI_MODE_TEXT). */
static const unsigned char br_sse40[164] = {
	0x1b, 0x67, 0x05, 0x60, 0x1c, 0x05, 0xee, 0x56, 0x92, 0xa4, 0xa3, 0xf0,
	0x36, 0x0e, 0xce, 0x6f, 0x47, 0xa8, 0x74, 0x37, 0xb6, 0xf5, 0xdb, 0x0d,
	0x41, 0x44, 0x49, 0x05, 0x90, 0xbd, 0xd4, 0x49, 0xeb, 0xc3, 0x02, 0x6e,
	0xe2, 0x21, 0x0e, 0x0f, 0xdf, 0x30, 0xd1, 0xcc, 0x02, 0x0c, 0x03, 0x4a,
	0xb8, 0xa4, 0x60, 0x48, 0x59, 0xc8, 0x8c, 0x4e, 0x7f, 0xf4, 0xeb, 0xa9,
	0xff, 0xfa, 0xf5, 0xbc, 0xb9, 0x7e, 0xeb, 0x4d, 0x20, 0x08, 0xa2, 0xa4,
	0x56, 0xa4, 0x27, 0x98, 0xa6, 0x38, 0x72, 0xb5, 0xb5, 0xa5, 0xe8, 0xca,
	0x52, 0xea, 0xf0, 0x84, 0xf2, 0x8a, 0x2a, 0x44, 0x12, 0x64, 0x4a, 0xec,
	0x74, 0xa8, 0x8c, 0x35, 0x93, 0x1c, 0x3a, 0xc7, 0xdc, 0xbc, 0xe8, 0x66,
	0x53, 0x4c, 0x19, 0xc5, 0x9a, 0xaa, 0x22, 0x52, 0x20, 0xf3, 0xa4, 0x9e,
	0xc3, 0x50, 0xb9, 0xd6, 0x4c, 0x73, 0xe8, 0x5c, 0x6b, 0xe7, 0x32, 0xbc,
	0x3c, 0x29, 0xeb, 0x84, 0xea, 0x9a, 0xa9, 0x22, 0xd2, 0x10, 0xcf, 0xb1,
	0xdf, 0x72, 0xe7, 0x85, 0x9a, 0x18, 0x73, 0x26, 0x39, 0x76, 0xc6, 0xdc,
	0xd9, 0x0e, 0x6f, 0x4a, 0x62, 0x8e, 0x21, 0x00,
};

/* 16 MiB of zero bytes through BrotliEncoderCompress(quality 11, lgwin 22): a 27-byte bomb. */
static const unsigned char br_zeros_16m[27] = {
	0xcb, 0xff, 0xff, 0x3f, 0xf8, 0x27, 0x00, 0xe2, 0xb1, 0x40, 0x20, 0xf7,
	0xfe, 0x2f, 0xff, 0xff, 0xff, 0xf0, 0x4f, 0x00, 0xc4, 0x61, 0x11, 0x80,
	0xee, 0xfd, 0x1f,
};

static unsigned char *zlib_pack(const void *in, size_t n, int window_bits, size_t *out_len)
{
	z_stream z;
	unsigned char *out;
	size_t cap;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		exit(2);
	cap = deflateBound(&z, (uLong)n) + 64;
	out = malloc(cap);
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		exit(2);
	*out_len = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

static unsigned char *zstd_pack(const void *in, size_t n, size_t *out_len)
{
	size_t cap = ZSTD_compressBound(n);
	unsigned char *out = malloc(cap);

	*out_len = ZSTD_compress(out, cap, in, n, 3);
	if (ZSTD_isError(*out_len))
		exit(2);
	return out;
}

/* Little-endian bit writer for the brotli stored-block writer. */
struct bits {
	unsigned char *buf;
	size_t len;
	unsigned nbits;
};

static void bits_put(struct bits *b, unsigned v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (b->nbits == 0)
			b->buf[b->len++] = 0;
		b->buf[b->len - 1] |= (unsigned char)(((v >> i) & 1) << b->nbits);
		b->nbits = (b->nbits + 1) & 7;
	}
}

/* A valid br body holding in[0..n) in uncompressed meta-blocks of at most 65536 bytes. */
static unsigned char *br_stored(const void *in, size_t n, size_t *out_len)
{
	struct bits b = { malloc(n + n / 65536 * 8 + 16), 0, 0 };
	size_t pos = 0, m;

	bits_put(&b, 0, 1); /* WBITS = 16 */
	while (pos < n) {
		m = n - pos < 65536 ? n - pos : 65536;
		bits_put(&b, 0, 1);                /* ISLAST */
		bits_put(&b, 0, 2);                /* MNIBBLES = 4 */
		bits_put(&b, (unsigned)(m - 1), 16); /* MLEN - 1 */
		bits_put(&b, 1, 1);                /* ISUNCOMPRESSED */
		b.nbits = 0;                       /* pad to a byte with zero bits */
		memcpy(b.buf + b.len, (const char *)in + pos, m);
		b.len += m;
		pos += m;
	}
	bits_put(&b, 1, 1); /* ISLAST */
	bits_put(&b, 1, 1); /* ISLASTEMPTY */
	*out_len = b.len;
	return b.buf;
}

/* ---- the sink: output gathered, and framed as SSE ---- */

struct out {
	char *buf;
	size_t len, cap;
	uint64_t calls;
	struct sse_parser sse;
	char last[128];
	size_t last_len;
};

static void out_event(void *ctx, const char *name, size_t name_len, const char *data,
		      size_t data_len)
{
	struct out *o = ctx;

	(void)name;
	(void)name_len;
	o->last_len = data_len < sizeof(o->last) ? data_len : sizeof(o->last);
	memcpy(o->last, data, o->last_len);
}

static void out_sink(void *ctx, const char *data, size_t len)
{
	struct out *o = ctx;

	if (o->len + len > o->cap) {
		o->cap = (o->len + len) * 2;
		o->buf = realloc(o->buf, o->cap);
		if (o->buf == NULL)
			exit(2);
	}
	memcpy(o->buf + o->len, data, len);
	o->len += len;
	o->calls++;
	sse_parser_feed(&o->sse, data, len);
}

static void out_init(struct out *o)
{
	memset(o, 0, sizeof(*o));
	sse_parser_init(&o->sse, 0, out_event, o);
}

static void out_free(struct out *o)
{
	sse_parser_release(&o->sse);
	free(o->buf);
}

static uint64_t prng_state = 0x243f6a8885a308d3ull;

static size_t prng_piece(void)
{
	prng_state ^= prng_state << 13;
	prng_state ^= prng_state >> 7;
	prng_state ^= prng_state << 17;
	return 1 + (size_t)(prng_state % 300);
}

/* Decodes body with piece sizes: 0 whole, 1 byte by byte, -1 random; returns the first error. */
static int decode_split(enum http_coding coding, const void *body, size_t n, long piece,
			uint64_t cap, struct out *o, struct body_decoder *d)
{
	const char *b = body;
	size_t pos = 0, take;
	int rc = 0;

	CHECK_INT(body_decoder_init(d, coding, cap), 0);
	while (pos < n && rc == 0) {
		take = piece == 0 ? n - pos : piece > 0 ? (size_t)piece : prng_piece();
		if (take > n - pos)
			take = n - pos;
		rc = body_decoder_feed(d, b + pos, take, out_sink, o);
		pos += take;
	}
	return rc;
}

/* The body decodes to text exactly whatever the split, and its SSE events come through. */
static void check_roundtrip(enum http_coding coding, const void *body, size_t n, const char *text,
			    size_t text_len, uint64_t events, const char *last)
{
	struct body_decoder d;
	struct out o;
	int split;

	for (split = 0; split < 12; split++) {
		out_init(&o);
		CHECK_INT(decode_split(coding, body, n, split < 2 ? split : -1, text_len, &o, &d),
			  0);
		CHECK_INT(d.failed, 0);
		CHECK_INT(d.finished, coding != HTTP_CODING_IDENTITY);
		CHECK_INT(d.out_total, text_len);
		CHECK_INT(o.len, text_len);
		CHECK(o.len == text_len && memcmp(o.buf, text, text_len) == 0);
		CHECK_INT(o.sse.events, events);
		if (last)
			CHECK_MEM(o.last, o.last_len, last);
		body_decoder_release(&d);
		out_free(&o);
	}
}

/* ---- cases ---- */

static void test_coding_parse(void)
{
	CHECK_INT(http_coding_parse("gzip", 4), HTTP_CODING_GZIP);
	CHECK_INT(http_coding_parse(" X-GZip ", 8), HTTP_CODING_GZIP);
	CHECK_INT(http_coding_parse("deflate", 7), HTTP_CODING_DEFLATE);
	CHECK_INT(http_coding_parse("br", 2), HTTP_CODING_BR);
	CHECK_INT(http_coding_parse("Zstd", 4), HTTP_CODING_ZSTD);
	CHECK_INT(http_coding_parse("identity", 8), HTTP_CODING_IDENTITY);
	CHECK_INT(http_coding_parse("", 0), HTTP_CODING_IDENTITY);
	CHECK_INT(http_coding_parse("  ", 2), HTTP_CODING_IDENTITY);
	CHECK_INT(http_coding_parse("gzip, br", 8), HTTP_CODING_UNSUPPORTED);
	CHECK_INT(http_coding_parse("compress", 8), HTTP_CODING_UNSUPPORTED);
	CHECK_INT(http_coding_parse("gzipx", 5), HTTP_CODING_UNSUPPORTED);
	CHECK_INT(http_coding_parse("gzi", 3), HTTP_CODING_UNSUPPORTED);
}

static void test_identity(void)
{
	struct body_decoder d;
	struct out o;

	check_roundtrip(HTTP_CODING_IDENTITY, "data: a\n\n", 9, "data: a\n\n", 9, 1, "a");
	out_init(&o);
	CHECK_INT(body_decoder_init(&d, HTTP_CODING_IDENTITY, 5), 0);
	CHECK_INT(body_decoder_feed(&d, "abc", 3, out_sink, &o), 0);
	CHECK_INT(body_decoder_feed(&d, "def", 3, out_sink, &o), HTTP_ETOOBIG);
	CHECK_INT(body_decoder_feed(&d, "g", 1, out_sink, &o), HTTP_ETOOBIG);
	CHECK_MEM(o.buf, o.len, "abc");
	body_decoder_release(&d);
	out_free(&o);
}

/* The SSE text most cases compress: 300 events, made once in main. */
static char *sse300;
static size_t sse300_len;
static const char sse300_last[] = "{\"i\":299,\"text\":\"token 89401\"}";

static void check_zlib_roundtrip(enum http_coding coding, int window_bits)
{
	size_t n;
	unsigned char *z = zlib_pack(sse300, sse300_len, window_bits, &n);

	if (window_bits == 15)
		CHECK_INT(z[0], 0x78); /* a zlib header, which the decoder must recognise */
	check_roundtrip(coding, z, n, sse300, sse300_len, 300, sse300_last);
	free(z);
}

static void test_gzip_sse(void)
{
	check_zlib_roundtrip(HTTP_CODING_GZIP, 16 + 15);
}

static void test_deflate_zlib_and_raw(void)
{
	check_zlib_roundtrip(HTTP_CODING_DEFLATE, 15);
	check_zlib_roundtrip(HTTP_CODING_DEFLATE, -15);
}

static void test_br_real_stream(void)
{
	size_t len;
	char *text = sse_text(40, &len);

	check_roundtrip(HTTP_CODING_BR, br_sse40, sizeof(br_sse40), text, len, 40,
			"{\"i\":39,\"text\":\"token 1521\"}");
	free(text);
}

static void test_br_stored_blocks(void)
{
	size_t len, n;
	char *text = sse_text(5000, &len); /* over 200 KiB: several meta-blocks */
	unsigned char *br = br_stored(text, len, &n);

	CHECK(len > 3 * 65536);
	check_roundtrip(HTTP_CODING_BR, br, n, text, len, 5000,
			"{\"i\":4999,\"text\":\"token 24990001\"}");
	free(br);
	free(text);
}

static void test_zstd_sse(void)
{
	size_t len, n, n2;
	char *text = sse_text(3000, &len), *twice;
	unsigned char *zs = zstd_pack(text, len, &n), *both;

	check_roundtrip(HTTP_CODING_ZSTD, zs, n, text, len, 3000,
			"{\"i\":2999,\"text\":\"token 8994001\"}");
	/* Two frames one after the other decode as one body. */
	both = malloc(2 * n);
	memcpy(both, zs, n);
	memcpy(both + n, zs, n);
	n2 = 2 * n;
	twice = malloc(2 * len);
	memcpy(twice, text, len);
	memcpy(twice + len, text, len);
	check_roundtrip(HTTP_CODING_ZSTD, both, n2, twice, 2 * len, 6000,
			"{\"i\":2999,\"text\":\"token 8994001\"}");
	free(both);
	free(twice);
	free(zs);
	free(text);
}

static void test_gzip_members(void)
{
	size_t na, nb;
	unsigned char *a = zlib_pack("data: one\n\n", 11, 31, &na);
	unsigned char *b = zlib_pack("data: two\n\n", 11, 31, &nb);
	unsigned char *ab = malloc(na + nb);

	memcpy(ab, a, na);
	memcpy(ab + na, b, nb);
	check_roundtrip(HTTP_CODING_GZIP, ab, na + nb, "data: one\n\ndata: two\n\n", 22, 2, "two");
	free(a);
	free(b);
	free(ab);
}

/* Corrupt input fails with HTTP_EPARSE, stays failed and hands out nothing more. */
static void check_corrupt(enum http_coding coding, unsigned char *body, size_t n, long piece)
{
	struct body_decoder d;
	struct out o;
	uint64_t calls, total;
	int rc;

	out_init(&o);
	rc = decode_split(coding, body, n, piece, 1u << 30, &o, &d);
	CHECK_INT(rc, HTTP_EPARSE);
	CHECK_INT(d.failed, HTTP_EPARSE);
	calls = o.calls;
	total = d.out_total;
	CHECK_INT(body_decoder_feed(&d, (const char *)body, n, out_sink, &o), HTTP_EPARSE);
	CHECK_INT(o.calls, calls);
	CHECK_INT(d.out_total, total);
	body_decoder_release(&d);
	out_free(&o);
}

static void test_corrupt_bodies(void)
{
	size_t len = sse300_len, n;
	char *text = sse300;
	unsigned char *gz = zlib_pack(text, len, 31, &n), *zs, *br;
	long piece;

	for (piece = 0; piece < 2; piece++) {
		gz[n / 2] ^= 0x55; /* inside the deflate data */
		gz[n / 2 + 1] ^= 0xff;
		check_corrupt(HTTP_CODING_GZIP, gz, n, piece);
		gz[n / 2] ^= 0x55;
		gz[n / 2 + 1] ^= 0xff;
		gz[n - 6] ^= 0x01; /* the CRC-32 */
		check_corrupt(HTTP_CODING_GZIP, gz, n, piece);
		gz[n - 6] ^= 0x01;
	}
	check_corrupt(HTTP_CODING_GZIP, (unsigned char *)text, len, 0); /* not gzip at all */
	check_corrupt(HTTP_CODING_DEFLATE, (unsigned char *)"\xff\xff\xff\xff", 4, 1);
	free(gz);
	zs = zstd_pack(text, len, &n);
	zs[n / 2] ^= 0xa5;
	zs[n / 2 + 3] ^= 0x5a;
	check_corrupt(HTTP_CODING_ZSTD, zs, n, 0);
	check_corrupt(HTTP_CODING_ZSTD, (unsigned char *)text, len, 1);
	free(zs);
	br = malloc(sizeof(br_sse40));
	memcpy(br, br_sse40, sizeof(br_sse40));
	br[40] ^= 0xff;
	br[41] ^= 0x0f;
	check_corrupt(HTTP_CODING_BR, br, sizeof(br_sse40), 1);
	free(br);
}

/* A body cut short is not an error: it just never finishes. */
static void test_truncated_body(void)
{
	size_t n;
	unsigned char *gz = zlib_pack(sse300, sse300_len, 31, &n);
	struct body_decoder d;
	struct out o;

	out_init(&o);
	CHECK_INT(decode_split(HTTP_CODING_GZIP, gz, n - 10, 1, 1u << 20, &o, &d), 0);
	CHECK_INT(d.finished, 0);
	CHECK_INT(d.failed, 0);
	CHECK(o.len > 0 && o.len <= sse300_len && memcmp(o.buf, sse300, o.len) == 0);
	body_decoder_release(&d);
	out_free(&o);
	free(gz);
}

/* A bomb stops at its cap: an error, and no more than the cap handed out. */
static void check_bomb(enum http_coding coding, const void *body, size_t n, long piece)
{
	struct body_decoder d;
	struct out o;
	uint64_t cap = 1u << 20;

	out_init(&o);
	CHECK_INT(decode_split(coding, body, n, piece, cap, &o, &d), HTTP_ETOOBIG);
	CHECK_INT(d.failed, HTTP_ETOOBIG);
	CHECK(d.out_total <= cap);
	CHECK(d.out_total > cap - 64 * 1024); /* it did decode up to the cap */
	CHECK_INT(o.len, d.out_total);
	body_decoder_release(&d);
	out_free(&o);
}

static void test_decompression_bombs(void)
{
	size_t zn = 32u << 20, n;
	char *zeros = calloc(1, zn);
	unsigned char *gz = zlib_pack(zeros, zn, 31, &n), *zs;

	CHECK(n < 64 * 1024);
	check_bomb(HTTP_CODING_GZIP, gz, n, 0);
	check_bomb(HTTP_CODING_GZIP, gz, n, 1);
	free(gz);
	gz = zlib_pack(zeros, zn, 15, &n);
	check_bomb(HTTP_CODING_DEFLATE, gz, n, 0);
	free(gz);
	zs = zstd_pack(zeros, zn, &n);
	check_bomb(HTTP_CODING_ZSTD, zs, n, 0);
	check_bomb(HTTP_CODING_ZSTD, zs, n, 1);
	free(zs);
	check_bomb(HTTP_CODING_BR, br_zeros_16m, sizeof(br_zeros_16m), 0);
	check_bomb(HTTP_CODING_BR, br_zeros_16m, sizeof(br_zeros_16m), 1);
	free(zeros);
}

/* A zstd frame asking for a 32 MiB window is refused instead of making the agent allocate it. */
static void test_zstd_window_limit(void)
{
	size_t n = 16u << 20, cap = ZSTD_compressBound(n), i;
	char *in = malloc(n);
	unsigned char *out = malloc(cap);
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_inBuffer ib = { in, n, 0 };
	ZSTD_outBuffer ob = { out, cap, 0 };
	struct body_decoder d;
	struct out o;

	for (i = 0; i < n; i++)
		in[i] = (char)(i * 2654435761u >> 13);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 25);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 1);
	/* Streamed without a pledged size, so the frame states the window, not the content. */
	CHECK_INT(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end), 0);
	out_init(&o);
	CHECK_INT(decode_split(HTTP_CODING_ZSTD, out, ob.pos, 0, 1u << 30, &o, &d), HTTP_EPARSE);
	CHECK_INT(d.out_total, 0);
	body_decoder_release(&d);
	out_free(&o);
	ZSTD_freeCCtx(cc);
	free(out);
	free(in);
}

static void test_init_release(void)
{
	struct body_decoder d;
	struct out o;
	enum http_coding c;

	CHECK_INT(body_decoder_init(&d, HTTP_CODING_UNSUPPORTED, 100), HTTP_EPARSE);
	CHECK(d.state == NULL);
	CHECK_INT(body_decoder_feed(&d, "x", 1, NULL, NULL), HTTP_EPARSE);
	body_decoder_release(&d);
	body_decoder_release(&d);
	out_init(&o);
	for (c = HTTP_CODING_IDENTITY; c < HTTP_CODING_UNSUPPORTED; c++) {
		CHECK_INT(body_decoder_init(&d, c, 100), 0);
		CHECK_INT(body_decoder_feed(&d, "", 0, out_sink, &o), 0);
		body_decoder_release(&d);
		body_decoder_release(&d);
		if (c != HTTP_CODING_IDENTITY)
			CHECK_INT(body_decoder_feed(&d, "\x1f\x8b", 2, out_sink, &o), HTTP_EPARSE);
	}
	CHECK_INT(o.calls, 0);
	out_free(&o);
}

int main(void)
{
	sse300 = sse_text(300, &sse300_len);
	RUN(test_coding_parse);
	RUN(test_identity);
	RUN(test_gzip_sse);
	RUN(test_deflate_zlib_and_raw);
	RUN(test_br_real_stream);
	RUN(test_br_stored_blocks);
	RUN(test_zstd_sse);
	RUN(test_gzip_members);
	RUN(test_corrupt_bodies);
	RUN(test_truncated_body);
	RUN(test_decompression_bombs);
	RUN(test_zstd_window_limit);
	RUN(test_init_release);
	free(sse300);
	CHECK_DONE();
}
