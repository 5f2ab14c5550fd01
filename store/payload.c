/*
 * payload.c - the compressed payload of one exchange: heads and bodies (docs/record-format.md).
 *
 * Layout: a little-endian header stating its own length, the four part lengths and the two
 * whole body sizes, then one zstd frame of the four parts concatenated. One frame rather than
 * four because JSON request and response bodies share most of their vocabulary; level 1
 * because the writer is the agent's own thread, and level 1 compresses JSON 5-10x at hundreds
 * of MB/s. The frame records its content size, which decoding checks against the header, so a
 * damaged payload is refused before anything is allocated for it beyond PAYLOAD_RAW_MAX.
 *
 * Under PAYLOAD_STORE_BELOW bytes the frame is written here, as one raw (stored) block: zstd
 * has a fixed cost per frame of some 35,000 instructions (entropy tables, block and sequence
 * headers; measured with callgrind on libzstd 1.5.4, level 1: 36k for 128 bytes, 67k for
 * 1 KiB) that, on the small exchange of a short call, is most of what full capture costs the
 * agent, to save at most a few hundred bytes (1 KiB of JSON and HTTP heads shrinks to about
 * 550). A stored block is a standard zstd frame, so every reader decodes it unchanged.
 *
 * A decoded payload is one malloc'd buffer holding the four parts back to back, owned by
 * struct payload (owner_), so that payload_release is a single free.
 */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "store/endian.h"
#include "store/payload.h"

#define PAYLOAD_VERSION 1
#define PAYLOAD_HEADER_LEN 36
#define PAYLOAD_LEVEL 1
#define PAYLOAD_NPARTS 4
/* Payloads (the four parts together) shorter than this are stored uncompressed. */
#define PAYLOAD_STORE_BELOW 1024
/* A stored frame: magic, descriptor, 4-byte content size, one 3-byte block header. */
#define PAYLOAD_STORED_OVERHEAD 12

int payload_coder_init(struct payload_coder *pc)
{
	pc->spare = NULL;
	return pthread_mutex_init(&pc->lock, NULL) == 0 ? 0 : STORE_ENOMEM;
}

void payload_coder_release(struct payload_coder *pc)
{
	ZSTD_freeCCtx(pc->spare);
	pc->spare = NULL;
	pthread_mutex_destroy(&pc->lock);
}

static ZSTD_CCtx *payload_coder_take(struct payload_coder *pc)
{
	ZSTD_CCtx *cctx;

	pthread_mutex_lock(&pc->lock);
	cctx = pc->spare;
	pc->spare = NULL;
	pthread_mutex_unlock(&pc->lock);
	/* The level is set once per context: each frame resets the session only. */
	if (cctx == NULL) {
		cctx = ZSTD_createCCtx();
		if (cctx != NULL &&
		    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel,
							PAYLOAD_LEVEL))) {
			ZSTD_freeCCtx(cctx);
			cctx = NULL;
		}
	}
	return cctx;
}

static void payload_coder_give(struct payload_coder *pc, ZSTD_CCtx *cctx)
{
	pthread_mutex_lock(&pc->lock);
	if (pc->spare == NULL) {
		pc->spare = cctx;
		cctx = NULL;
	}
	pthread_mutex_unlock(&pc->lock);
	ZSTD_freeCCtx(cctx);
}

/* The parts in their stored order; the header's lengths follow the same order. */
static void payload_parts(const struct payload *pl, const struct record_str *parts[])
{
	parts[0] = &pl->req_head;
	parts[1] = &pl->req_body;
	parts[2] = &pl->resp_head;
	parts[3] = &pl->resp_body;
}

/* Feeds the parts through one zstd frame into dst; returns the frame's length or 0. */
static size_t payload_compress(ZSTD_CCtx *cctx, const struct record_str *parts[],
			       uint64_t total, unsigned char *dst, size_t cap)
{
	ZSTD_outBuffer ob = { dst, cap, 0 };
	size_t r;

	ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only);
	if (ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cctx, total)))
		return 0;
	for (int i = 0; i < PAYLOAD_NPARTS; i++) {
		ZSTD_inBuffer ib = { parts[i]->p, parts[i]->n, 0 };
		ZSTD_EndDirective end = i == PAYLOAD_NPARTS - 1 ? ZSTD_e_end : ZSTD_e_continue;

		/* dst holds ZSTD_compressBound(total): each call makes progress until done. */
		do {
			r = ZSTD_compressStream2(cctx, &ob, &ib, end);
			if (ZSTD_isError(r))
				return 0;
		} while (end == ZSTD_e_end ? r != 0 : ib.pos < ib.size);
	}
	return ob.pos;
}

/*
 * Writes the parts as one zstd frame holding a single raw block (RFC 8878: single segment,
 * 4-byte content size, no checksum) into dst, which has room for PAYLOAD_STORED_OVERHEAD +
 * total bytes; total is under PAYLOAD_STORE_BELOW, far below a block's 128 KiB maximum.
 * Returns the frame's length.
 */
static size_t payload_store(const struct record_str *parts[], uint32_t total, unsigned char *dst)
{
	size_t pos = PAYLOAD_STORED_OVERHEAD;

	endian_put_le32(dst, ZSTD_MAGICNUMBER);
	dst[4] = 0xA0; /* content size field of 4 bytes, single segment */
	endian_put_le32(dst + 5, total);
	/* Block header: last block (bit 0), type raw (bits 1-2 zero), size in bits 3-23. */
	dst[9] = (unsigned char)((total << 3) | 1);
	dst[10] = (unsigned char)(total >> 5);
	dst[11] = (unsigned char)(total >> 13);
	for (int i = 0; i < PAYLOAD_NPARTS; i++) {
		if (parts[i]->n != 0)
			memcpy(dst + pos, parts[i]->p, parts[i]->n);
		pos += parts[i]->n;
	}
	return pos;
}

int payload_encode(struct payload_coder *pc, const struct payload *pl, unsigned char **out,
		   size_t *out_len)
{
	const struct record_str *parts[PAYLOAD_NPARTS];
	unsigned char *buf = NULL;
	ZSTD_CCtx *cctx = NULL;
	uint64_t total = 0;
	size_t cap, n;
	int rc = STORE_EINVAL;

	*out = NULL;
	*out_len = 0;
	payload_parts(pl, parts);
	for (int i = 0; i < PAYLOAD_NPARTS; i++) {
		if (parts[i]->p == NULL && parts[i]->n != 0)
			goto out;
		total += parts[i]->n;
	}
	if (total > PAYLOAD_RAW_MAX)
		goto out;
	rc = STORE_ENOMEM;
	if (total < PAYLOAD_STORE_BELOW)
		cap = PAYLOAD_HEADER_LEN + PAYLOAD_STORED_OVERHEAD + (size_t)total;
	else
		cap = PAYLOAD_HEADER_LEN + ZSTD_compressBound((size_t)total);
	buf = malloc(cap);
	if (buf == NULL)
		goto out;
	endian_put_le16(buf, PAYLOAD_VERSION);
	endian_put_le16(buf + 2, PAYLOAD_HEADER_LEN);
	for (int i = 0; i < PAYLOAD_NPARTS; i++)
		endian_put_le32(buf + 4 + 4 * i, parts[i]->n);
	endian_put_le64(buf + 20, pl->req_body_size);
	endian_put_le64(buf + 28, pl->resp_body_size);
	if (total < PAYLOAD_STORE_BELOW) {
		n = payload_store(parts, (uint32_t)total, buf + PAYLOAD_HEADER_LEN);
	} else {
		cctx = payload_coder_take(pc);
		if (cctx == NULL)
			goto buf_free;
		rc = STORE_EIO;
		n = payload_compress(cctx, parts, total, buf + PAYLOAD_HEADER_LEN,
				     cap - PAYLOAD_HEADER_LEN);
		payload_coder_give(pc, cctx);
		if (n == 0)
			goto buf_free;
	}
	*out = buf;
	*out_len = PAYLOAD_HEADER_LEN + n;
	rc = 0;
	goto out;
buf_free:
	free(buf);
out:
	return rc;
}

int payload_decode(const unsigned char *buf, size_t len, struct payload *out)
{
	uint32_t lens[PAYLOAD_NPARTS];
	struct record_str *parts[PAYLOAD_NPARTS];
	unsigned long long frame_size;
	unsigned char *raw = NULL;
	uint64_t total = 0;
	size_t hlen, got, pos = 0;
	int rc = STORE_EFORMAT;

	memset(out, 0, sizeof(*out));
	if (len < 4 || endian_le16(buf) == 0)
		goto out;
	hlen = endian_le16(buf + 2);
	/* Version 1 is the oldest header; a longer one comes from a newer writer: skipped. */
	if (hlen < PAYLOAD_HEADER_LEN || hlen > len)
		goto out;
	for (int i = 0; i < PAYLOAD_NPARTS; i++) {
		lens[i] = endian_le32(buf + 4 + 4 * i);
		total += lens[i];
	}
	if (total > PAYLOAD_RAW_MAX)
		goto out;
	frame_size = ZSTD_getFrameContentSize(buf + hlen, len - hlen);
	if (frame_size != total)
		goto out;
	rc = STORE_ENOMEM;
	raw = malloc(total ? (size_t)total : 1);
	if (raw == NULL)
		goto out;
	rc = STORE_EFORMAT;
	got = ZSTD_decompress(raw, (size_t)total, buf + hlen, len - hlen);
	if (ZSTD_isError(got) || got != total)
		goto raw_free;
	parts[0] = &out->req_head;
	parts[1] = &out->req_body;
	parts[2] = &out->resp_head;
	parts[3] = &out->resp_body;
	for (int i = 0; i < PAYLOAD_NPARTS; i++) {
		parts[i]->p = lens[i] ? (const char *)raw + pos : NULL;
		parts[i]->n = lens[i];
		pos += lens[i];
	}
	out->req_body_size = endian_le64(buf + 20);
	out->resp_body_size = endian_le64(buf + 28);
	out->owner_ = raw;
	rc = 0;
	goto out;
raw_free:
	free(raw);
out:
	return rc;
}

void payload_release(struct payload *pl)
{
	if (pl == NULL)
		return;
	free(pl->owner_);
	memset(pl, 0, sizeof(*pl));
}

int payload_sizes(const unsigned char *buf, size_t len, uint64_t *raw_len, int *kept)
{
	static const size_t dict_len[4] = { 0, 1, 2, 4 };
	const unsigned char *f;
	uint64_t total = 0;
	size_t hlen, flen, fcs;
	uint32_t block;
	int rc = STORE_EFORMAT, desc;

	if (len < 4 || endian_le16(buf) == 0)
		goto out;
	hlen = endian_le16(buf + 2);
	if (hlen < PAYLOAD_HEADER_LEN || hlen > len)
		goto out;
	for (int i = 0; i < PAYLOAD_NPARTS; i++)
		total += endian_le32(buf + 4 + 4 * i);
	/* The zstd frame header (RFC 8878 3.1.1.1): magic, descriptor, optional window byte,
	 * dictionary id and content size, then the first block's 3-byte header. */
	f = buf + hlen;
	flen = len - hlen;
	if (flen < 5 || endian_le32(f) != ZSTD_MAGICNUMBER)
		goto out;
	desc = f[4];
	fcs = desc >> 6 == 0 ? (desc & 0x20) != 0 : (size_t)1 << (desc >> 6);
	hlen = 5 + ((desc & 0x20) == 0) + dict_len[desc & 3] + fcs;
	if (flen < hlen + 3)
		goto out;
	block = (uint32_t)f[hlen] | (uint32_t)f[hlen + 1] << 8 | (uint32_t)f[hlen + 2] << 16;
	/* last block, type raw (0), as long as the parts */
	*kept = (block & 7) == 1 && block >> 3 == total;
	*raw_len = total;
	rc = 0;
out:
	return rc;
}
