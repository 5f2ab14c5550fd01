/*
 * decode.h - streaming Content-Encoding decoders: gzip, deflate (zlib or raw), br, zstd.
 *
 * Providers compress streams too (gzip over SSE), so a body is decoded piece by piece as it
 * arrives, never buffered whole. Output is capped: a body that would decode past its cap is
 * an error (a decompression bomb must not grow the agent's memory).
 */
#ifndef TOKSHIM_DECODE_H
#define TOKSHIM_DECODE_H

#include <stddef.h>
#include <stdint.h>

enum http_coding {
	HTTP_CODING_IDENTITY,
	HTTP_CODING_GZIP,
	HTTP_CODING_DEFLATE,
	HTTP_CODING_BR,
	HTTP_CODING_ZSTD,
	HTTP_CODING_UNSUPPORTED, /* anything else, or several codings stacked */
};

/* Maps a Content-Encoding value ("gzip", "x-gzip", "deflate", "br", "zstd", "identity", empty). */
enum http_coding http_coding_parse(const char *value, size_t len);

typedef void (*body_sink_fn)(void *ctx, const char *data, size_t len);

struct body_decoder {
	enum http_coding coding;
	void *state;       /* the codec's stream (z_stream, BrotliDecoderState, ZSTD_DStream) */
	uint64_t out_total;
	uint64_t out_cap;
	int failed;        /* 0, or the error code that failed the decoder */
	int finished;      /* the codec saw the end of its stream */
};

/* Prepares d for coding with an output cap. Returns 0, HTTP_ENOMEM or HTTP_EPARSE (unsupported). */
int body_decoder_init(struct body_decoder *d, enum http_coding coding, uint64_t out_cap);

/*
 * Decodes n bytes and passes the output to sink in pieces (pointers valid during the call).
 * Returns 0, HTTP_EPARSE for corrupt input, HTTP_ETOOBIG past the cap; after an error the
 * decoder stays failed and ignores input.
 */
int body_decoder_feed(struct body_decoder *d, const char *in, size_t n, body_sink_fn sink,
		      void *ctx);

/* Frees the codec state; safe on a decoder that failed to init or was released. */
void body_decoder_release(struct body_decoder *d);

#endif
