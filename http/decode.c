/*
 * decode.c - streaming Content-Encoding decoders (decode.h) over zlib, brotli and zstd.
 *
 * Each decoder owns one heap block: the codec's stream and a fixed output window. Input is
 * decoded a window at a time and each window is handed to the sink before the next is made,
 * so memory is the codec's own state plus DECODE_WINDOW whatever the body's size, and a bomb
 * is stopped as soon as its output passes the cap, after at most one window of wasted work.
 *
 * The codecs' own memory is bounded too: zlib's window is 32 KiB; brotli's is at most 16 MiB
 * (large windows are not enabled); zstd's window is limited to 8 MiB, the limit RFC 8878
 * sets for HTTP content coding, so a frame asking for more is refused rather than obeyed.
 *
 * "deflate" is ambiguous in practice: the RFC says zlib-wrapped, some servers send raw
 * deflate. The first two bytes decide (a zlib header is a checksummed pair), so they are held
 * back until both have arrived.
 */
#include "http/decode.h"
#include "http/http.h"

#include <brotli/decode.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#define DECODE_WINDOW (16 * 1024)
#define DECODE_ZSTD_WINDOW_LOG_MAX 23 /* 8 MiB */

struct decode_state {
	z_stream z;
	int z_ready;                 /* inflateInit2 done (deflate waits for two bytes) */
	unsigned char sniff[2];      /* deflate: the first bytes, held until both are here */
	size_t nsniff;
	BrotliDecoderState *br;
	ZSTD_DCtx *zstd;
	unsigned char out[DECODE_WINDOW];
};

static int decode_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* s[0..n) is the lowercase word, ignoring ASCII case. */
static int decode_word_is(const char *s, size_t n, const char *word)
{
	size_t i = 0;

	while (i < n && word[i] != '\0' && decode_lower((unsigned char)s[i]) == word[i])
		i++;
	return i == n && word[i] == '\0';
}

enum http_coding http_coding_parse(const char *value, size_t len)
{
	enum http_coding c = HTTP_CODING_UNSUPPORTED;
	size_t start = 0, end = len;

	while (start < end && (value[start] == ' ' || value[start] == '\t'))
		start++;
	while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
		end--;
	value += start;
	len = end - start;
	if (len == 0 || decode_word_is(value, len, "identity"))
		c = HTTP_CODING_IDENTITY;
	else if (decode_word_is(value, len, "gzip") || decode_word_is(value, len, "x-gzip"))
		c = HTTP_CODING_GZIP;
	else if (decode_word_is(value, len, "deflate"))
		c = HTTP_CODING_DEFLATE;
	else if (decode_word_is(value, len, "br"))
		c = HTTP_CODING_BR;
	else if (decode_word_is(value, len, "zstd"))
		c = HTTP_CODING_ZSTD;
	return c;
}

int body_decoder_init(struct body_decoder *d, enum http_coding coding, uint64_t out_cap)
{
	struct decode_state *st = NULL;
	int rc = HTTP_OK;

	memset(d, 0, sizeof(*d));
	d->coding = coding;
	d->out_cap = out_cap;
	if (coding == HTTP_CODING_IDENTITY)
		goto out;
	if (coding == HTTP_CODING_UNSUPPORTED || coding < HTTP_CODING_IDENTITY) {
		rc = HTTP_EPARSE;
		goto fail;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		rc = HTTP_ENOMEM;
		goto fail;
	}
	switch (coding) {
	case HTTP_CODING_GZIP:
		if (inflateInit2(&st->z, 16 + MAX_WBITS) != Z_OK) {
			rc = HTTP_ENOMEM;
			goto free_state;
		}
		st->z_ready = 1;
		break;
	case HTTP_CODING_BR:
		st->br = BrotliDecoderCreateInstance(NULL, NULL, NULL);
		if (st->br == NULL) {
			rc = HTTP_ENOMEM;
			goto free_state;
		}
		break;
	case HTTP_CODING_ZSTD:
		st->zstd = ZSTD_createDCtx();
		if (st->zstd == NULL) {
			rc = HTTP_ENOMEM;
			goto free_state;
		}
		ZSTD_DCtx_setParameter(st->zstd, ZSTD_d_windowLogMax, DECODE_ZSTD_WINDOW_LOG_MAX);
		break;
	default: /* deflate: set up once its first two bytes are known */
		break;
	}
	d->state = st;
	goto out;
free_state:
	free(st);
fail:
	d->failed = rc;
out:
	return rc;
}

/* Passes n decoded bytes on, or fails the body when they would take it past its cap. */
static int decode_emit(struct body_decoder *d, const unsigned char *p, size_t n,
		       body_sink_fn sink, void *ctx)
{
	int rc = HTTP_OK;

	if (n > d->out_cap - d->out_total) {
		rc = HTTP_ETOOBIG;
	} else if (n > 0) {
		d->out_total += n;
		if (sink)
			sink(ctx, (const char *)p, n);
	}
	return rc;
}

/* Does a deflate body start with a zlib header (RFC 1950: method 8, check bits)? */
static int decode_is_zlib_header(const unsigned char b[2])
{
	return (b[0] & 0x0f) == 8 && (b[0] >> 4) <= 7 && ((b[0] << 8) | b[1]) % 31 == 0;
}

/* Inflates in[0..n), n small enough for zlib's uInt. */
static int decode_inflate_piece(struct body_decoder *d, struct decode_state *st,
				const unsigned char *in, size_t n, body_sink_fn sink, void *ctx)
{
	int rc = HTTP_OK, zr;
	size_t produced;

	st->z.next_in = (unsigned char *)in;
	st->z.avail_in = (uInt)n;
	for (;;) {
		if (d->finished) {
			/* gzip members may follow one another (RFC 1952 2.2); for deflate the
			 * stream is over and whatever follows is ignored. */
			if (st->z.avail_in == 0 || d->coding != HTTP_CODING_GZIP)
				break;
			if (inflateReset(&st->z) != Z_OK) {
				rc = HTTP_EPARSE;
				break;
			}
			d->finished = 0;
		}
		st->z.next_out = st->out;
		st->z.avail_out = sizeof(st->out);
		zr = inflate(&st->z, Z_NO_FLUSH);
		produced = sizeof(st->out) - st->z.avail_out;
		if (zr == Z_MEM_ERROR) {
			rc = HTTP_ENOMEM;
			break;
		}
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
			rc = HTTP_EPARSE;
			break;
		}
		rc = decode_emit(d, st->out, produced, sink, ctx);
		if (rc != HTTP_OK)
			break;
		if (zr == Z_STREAM_END)
			d->finished = 1;
		else if (zr == Z_BUF_ERROR || (st->z.avail_in == 0 && st->z.avail_out > 0))
			break; /* all input taken and all output given */
	}
	return rc;
}

static int decode_inflate(struct body_decoder *d, struct decode_state *st,
			  const unsigned char *in, size_t n, body_sink_fn sink, void *ctx)
{
	size_t piece;
	int rc = HTTP_OK;

	while (n > 0 && rc == HTTP_OK) {
		piece = n < (1u << 30) ? n : (1u << 30);
		rc = decode_inflate_piece(d, st, in, piece, sink, ctx);
		in += piece;
		n -= piece;
	}
	return rc;
}

static int decode_deflate(struct body_decoder *d, struct decode_state *st,
			  const unsigned char *in, size_t n, body_sink_fn sink, void *ctx)
{
	int rc = HTTP_OK;

	if (!st->z_ready) {
		while (st->nsniff < 2 && n > 0) {
			st->sniff[st->nsniff++] = *in++;
			n--;
		}
		if (st->nsniff < 2)
			goto out;
		if (inflateInit2(&st->z, decode_is_zlib_header(st->sniff) ? MAX_WBITS
									   : -MAX_WBITS) != Z_OK) {
			rc = HTTP_ENOMEM;
			goto out;
		}
		st->z_ready = 1;
		rc = decode_inflate(d, st, st->sniff, 2, sink, ctx);
	}
	if (rc == HTTP_OK && n > 0)
		rc = decode_inflate(d, st, in, n, sink, ctx);
out:
	return rc;
}

static int decode_brotli(struct body_decoder *d, struct decode_state *st,
			 const unsigned char *in, size_t n, body_sink_fn sink, void *ctx)
{
	BrotliDecoderResult r;
	const uint8_t *next_in = in;
	size_t avail_in = n, avail_out;
	uint8_t *next_out;
	int rc = HTTP_OK;

	while (!d->finished && rc == HTTP_OK) {
		next_out = st->out;
		avail_out = sizeof(st->out);
		r = BrotliDecoderDecompressStream(st->br, &avail_in, &next_in, &avail_out, &next_out,
						  NULL);
		if (r == BROTLI_DECODER_RESULT_ERROR) {
			rc = HTTP_EPARSE;
			break;
		}
		rc = decode_emit(d, st->out, sizeof(st->out) - avail_out, sink, ctx);
		if (r == BROTLI_DECODER_RESULT_SUCCESS)
			d->finished = 1; /* what follows the stream is ignored */
		else if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
			break;
	}
	return rc;
}

static int decode_zstd(struct body_decoder *d, struct decode_state *st,
		       const unsigned char *in, size_t n, body_sink_fn sink, void *ctx)
{
	ZSTD_inBuffer ib = { in, n, 0 };
	ZSTD_outBuffer ob;
	size_t r;
	int rc = HTTP_OK;

	do {
		ob.dst = st->out;
		ob.size = sizeof(st->out);
		ob.pos = 0;
		r = ZSTD_decompressStream(st->zstd, &ob, &ib);
		if (ZSTD_isError(r)) {
			rc = ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? HTTP_ENOMEM
										   : HTTP_EPARSE;
			break;
		}
		/* 0 means a frame just ended; another frame may follow (RFC 8878 3.1). */
		d->finished = r == 0;
		rc = decode_emit(d, st->out, ob.pos, sink, ctx);
	} while (rc == HTTP_OK && (ib.pos < ib.size || ob.pos == ob.size));
	return rc;
}

int body_decoder_feed(struct body_decoder *d, const char *in, size_t n, body_sink_fn sink,
		      void *ctx)
{
	const unsigned char *u = (const unsigned char *)in;
	struct decode_state *st = d->state;
	int rc = HTTP_OK;

	if (d->failed) {
		rc = d->failed;
		goto out;
	}
	if (n == 0)
		goto out;
	if (st == NULL && d->coding != HTTP_CODING_IDENTITY) {
		rc = HTTP_EPARSE; /* released, or never set up */
		goto fail;
	}
	switch (d->coding) {
	case HTTP_CODING_IDENTITY:
		rc = decode_emit(d, u, n, sink, ctx);
		break;
	case HTTP_CODING_GZIP:
		rc = decode_inflate(d, st, u, n, sink, ctx);
		break;
	case HTTP_CODING_DEFLATE:
		rc = decode_deflate(d, st, u, n, sink, ctx);
		break;
	case HTTP_CODING_BR:
		rc = decode_brotli(d, st, u, n, sink, ctx);
		break;
	case HTTP_CODING_ZSTD:
		rc = decode_zstd(d, st, u, n, sink, ctx);
		break;
	default:
		rc = HTTP_EPARSE;
		break;
	}
fail:
	if (rc != HTTP_OK)
		d->failed = rc;
out:
	return rc;
}

void body_decoder_release(struct body_decoder *d)
{
	struct decode_state *st = d->state;

	if (st != NULL) {
		if (st->z_ready)
			inflateEnd(&st->z);
		if (st->br != NULL)
			BrotliDecoderDestroyInstance(st->br);
		if (st->zstd != NULL)
			ZSTD_freeDCtx(st->zstd);
		free(st);
	}
	d->state = NULL;
}
