/*
 * endian.h - byte-order helpers for the store's on-disk layout (docs/record-format.md).
 *
 * Values are little-endian (record and payload headers, counters, meta); keys that must sort
 * by number are big-endian, because LMDB compares keys as bytes. Every load and store goes
 * through memcpy, which keeps it free of alignment assumptions (values read from the map have
 * no alignment guarantee) and compiles to one unaligned move, plus a byte swap where the host's
 * order differs. A report decodes millions of record headers: byte-at-a-time loops here were
 * half of record_decode's instructions.
 */
#ifndef TOKSHIM_STORE_ENDIAN_H
#define TOKSHIM_STORE_ENDIAN_H

#include <stdint.h>
#include <string.h>

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ENDIAN_LE16(v) (v)
#define ENDIAN_LE32(v) (v)
#define ENDIAN_LE64(v) (v)
#define ENDIAN_BE64(v) __builtin_bswap64(v)
#else
#define ENDIAN_LE16(v) __builtin_bswap16(v)
#define ENDIAN_LE32(v) __builtin_bswap32(v)
#define ENDIAN_LE64(v) __builtin_bswap64(v)
#define ENDIAN_BE64(v) (v)
#endif

static inline void endian_put_le16(unsigned char *p, uint16_t v)
{
	v = ENDIAN_LE16(v);
	memcpy(p, &v, sizeof v);
}

static inline void endian_put_le32(unsigned char *p, uint32_t v)
{
	v = ENDIAN_LE32(v);
	memcpy(p, &v, sizeof v);
}

static inline void endian_put_le64(unsigned char *p, uint64_t v)
{
	v = ENDIAN_LE64(v);
	memcpy(p, &v, sizeof v);
}

static inline uint16_t endian_le16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof v);
	return ENDIAN_LE16(v);
}

static inline uint32_t endian_le32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return ENDIAN_LE32(v);
}

static inline uint64_t endian_le64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return ENDIAN_LE64(v);
}

static inline void endian_put_be64(unsigned char *p, uint64_t v)
{
	v = ENDIAN_BE64(v);
	memcpy(p, &v, sizeof v);
}

static inline uint64_t endian_be64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return ENDIAN_BE64(v);
}

#endif
