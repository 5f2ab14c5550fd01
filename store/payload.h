/*
 * payload.h - the store's private payload codec: the four parts of one exchange (heads and
 * bodies) behind a small header, in one zstd frame: compressed at level 1, or stored as they are
 * when small (payload.c says why). Only store.c uses it; the public side is struct payload,
 * store_payload_get and payload_release in store.h. The byte layout is in
 * docs/record-format.md.
 */
#ifndef TOKSHIM_STORE_PAYLOAD_H
#define TOKSHIM_STORE_PAYLOAD_H

#include <pthread.h>
#include <stddef.h>

#include "store/store.h"

/*
 * The cap on the four parts together, uncompressed. It bounds what a writer compresses and,
 * above all, what a reader allocates when it decodes bytes that may be damaged. The shim cuts
 * bodies long before this (TOKSHIM_CAPTURE's size cap).
 */
#define PAYLOAD_RAW_MAX (64u << 20)

/*
 * Keeps one spare compression context, so that a process appending many payloads does not
 * allocate a fresh one (hundreds of KiB) for each. Threads that find the spare taken make
 * their own for the call rather than wait: compressing a large body under a lock would
 * serialise them.
 */
struct payload_coder {
	pthread_mutex_t lock;
	struct ZSTD_CCtx_s *spare;
};

/* Readies a coder. Returns 0 or STORE_ENOMEM. */
int payload_coder_init(struct payload_coder *pc);

/* Frees the spare context. The coder must not be in use. */
void payload_coder_release(struct payload_coder *pc);

/*
 * Encodes pl into a malloc'd buffer: *out receives it (the caller frees it) and *out_len its
 * length. Returns 0; STORE_EINVAL when a part has a NULL pointer with a non-zero length or
 * the parts together exceed PAYLOAD_RAW_MAX; STORE_ENOMEM; STORE_EIO when zstd fails. On
 * error *out is NULL.
 */
int payload_encode(struct payload_coder *pc, const struct payload *pl, unsigned char **out,
		   size_t *out_len);

/*
 * Decodes len bytes at buf into *out, whose strings then point into one malloc'd buffer that
 * out->owner_ holds and payload_release frees; buf may go away afterwards. Returns 0,
 * STORE_EFORMAT for bytes that are not a payload (never reading outside [buf, buf+len)), or
 * STORE_ENOMEM. On error *out is left empty.
 */
int payload_decode(const unsigned char *buf, size_t len, struct payload *out);

/*
 * What a stored payload holds, from its header and its frame's first block, without decoding:
 * *raw_len the four parts together (what payload_decode gives back), *kept set when the parts
 * are kept as they are (a frame of one raw block: every payload under PAYLOAD_STORE_BELOW, and
 * any whose compression gained nothing), cleared when compressed. Returns 0, or STORE_EFORMAT
 * for bytes that are not a payload (never reading outside [buf, buf+len)).
 */
int payload_sizes(const unsigned char *buf, size_t len, uint64_t *raw_len, int *kept);

#endif
