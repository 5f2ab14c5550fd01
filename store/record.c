/*
 * record.c - the on-disk encoding of a usage record (docs/record-format.md).
 *
 * A record is a fixed little-endian header that states its own length, then a count and that
 * many u16-length-prefixed strings. Both parts only ever grow at their end: a reader skips
 * header bytes and strings it does not know (a newer writer), and gives defaults for fields a
 * shorter header lacks (an older writer). So any version decodes with any code, and the format
 * number in the store's meta is what changes if a layout ever has to break that rule.
 *
 * The fields are described once, in tables, so that encode, decode and defaults cannot drift
 * apart. Decoding copies nothing: strings point into the caller's buffer, which is the LMDB
 * map when a report scans millions of records.
 */
#include <stddef.h>
#include <string.h>

#include "store/endian.h"
#include "store/record.h"
#include "store/store.h"

/* The header's first two fields: version, then the header's own length. */
#define RECORD_PREFIX_LEN 4

struct record_field {
	uint16_t off;     /* offset in the encoded header */
	uint16_t member;  /* offsetof in struct record */
	uint8_t width;    /* 4 or 8 bytes */
	int8_t absent;    /* value when an older header lacks the field (0 or -1) */
};

#define FIELD(o, m, w, a) { (o), offsetof(struct record, m), (w), (a) }

/* The header (version 3). New fields go at the end, with the next offsets. */
static const struct record_field record_fields[] = {
	FIELD(4, ts_ns, 8, 0),
	FIELD(12, latency_us, 8, 0),
	FIELD(20, ttfb_us, 8, -1),
	FIELD(28, pid, 4, 0),
	FIELD(32, status, 4, 0),
	FIELD(36, retry_after_s, 4, -1),
	FIELD(40, flags, 4, 0),
	FIELD(44, input_tokens, 8, 0),
	FIELD(52, output_tokens, 8, 0),
	FIELD(60, cache_read_tokens, 8, 0),
	FIELD(68, cache_write_tokens, 8, 0),
	FIELD(76, reasoning_tokens, 8, 0),
	FIELD(84, billed_cost_pusd, 8, 0),
	FIELD(92, request_hash, 8, 0),
	/* Version 2 */
	FIELD(100, search_queries, 8, 0),
	FIELD(108, search_context, 4, 0),
	/* Version 3 */
	FIELD(112, billed_input_tokens, 8, 0),
	FIELD(120, billed_output_tokens, 8, 0),
	FIELD(128, cache_write_1h_tokens, 8, 0),
	FIELD(136, service_tier, 4, 0),
};

#define RECORD_HEADER_LEN 140
#define NFIELDS (sizeof(record_fields) / sizeof(record_fields[0]))

/* The strings, in their encoded order. New strings go at the end. */
static const uint16_t record_strs[] = {
	offsetof(struct record, process),	  offsetof(struct record, agent),
	offsetof(struct record, agent_type),	  offsetof(struct record, tenant),
	offsetof(struct record, session),	  offsetof(struct record, provider),
	offsetof(struct record, api),		  offsetof(struct record, host),
	offsetof(struct record, path),		  offsetof(struct record, model_requested),
	offsetof(struct record, model),		  offsetof(struct record, error),
	offsetof(struct record, error_message),
};

#define NSTRS (sizeof(record_strs) / sizeof(record_strs[0]))

_Static_assert(RECORD_HEADER_LEN + 2 <= 256, "RECORD_ENCODED_MAX assumes a header under 256");
_Static_assert(NSTRS == 13, "RECORD_ENCODED_MAX counts 13 strings");
_Static_assert(RECORD_STR_MAX <= UINT16_MAX, "string lengths are encoded as u16");

/*
 * Cuts n to RECORD_STR_MAX, backing off to a UTF-8 character boundary so a cut string stays
 * valid UTF-8 for the JSON the CLI prints. At most three bytes are given back, so bytes that
 * are not UTF-8 are cut at the cap.
 */
static uint32_t record_cut_len(const char *p, uint32_t n)
{
	uint32_t cut = RECORD_STR_MAX;

	if (n <= RECORD_STR_MAX)
		return n;
	for (int i = 0; i < 3 && cut > 0 && ((unsigned char)p[cut] & 0xC0) == 0x80; i++)
		cut--;
	if (((unsigned char)p[cut] & 0xC0) == 0x80)
		cut = RECORD_STR_MAX; /* not UTF-8 after all: a plain byte cut */
	return cut;
}

static const struct record_str *record_str_at(const struct record *rec, size_t i)
{
	return (const struct record_str *)((const char *)rec + record_strs[i]);
}

int record_encode(const struct record *rec, unsigned char *buf, size_t cap)
{
	size_t pos = RECORD_HEADER_LEN + 2;
	int rc = STORE_EINVAL;

	if (rec == NULL || buf == NULL || cap < pos)
		goto out;
	endian_put_le16(buf, RECORD_VERSION);
	endian_put_le16(buf + 2, RECORD_HEADER_LEN);
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct record_field *f = &record_fields[i];
		const char *m = (const char *)rec + f->member;

		if (f->width == 8) {
			uint64_t v;
			memcpy(&v, m, 8);
			endian_put_le64(buf + f->off, v);
		} else {
			uint32_t v;
			memcpy(&v, m, 4);
			endian_put_le32(buf + f->off, v);
		}
	}
	endian_put_le16(buf + RECORD_HEADER_LEN, NSTRS);
	for (size_t i = 0; i < NSTRS; i++) {
		const struct record_str *s = record_str_at(rec, i);
		uint32_t n;

		if (s->p == NULL && s->n != 0)
			goto out;
		n = record_cut_len(s->p, s->n);
		if (cap - pos < 2 + (size_t)n)
			goto out;
		endian_put_le16(buf + pos, (uint16_t)n);
		if (n != 0)
			memcpy(buf + pos + 2, s->p, n);
		pos += 2 + (size_t)n;
	}
	rc = (int)pos;
out:
	return rc;
}

/*
 * Copies the header's fields into rec, each from buf when the header (hlen bytes) holds it,
 * else its absent value. Always inlined: record_decode calls it with hlen the constant
 * RECORD_HEADER_LEN for a header of this version, so every test of a field's presence folds
 * away and each field is one load and one store; an older or newer header takes the tested
 * path. One table either way, so the two cannot differ.
 */
static inline __attribute__((always_inline)) void
record_decode_fields(const unsigned char *buf, size_t hlen, struct record *rec)
{
	size_t i;

#pragma GCC unroll 20
	for (i = 0; i < NFIELDS; i++) {
		const struct record_field *f = &record_fields[i];
		char *m = (char *)rec + f->member;
		int present = (size_t)f->off + f->width <= hlen;

		if (f->width == 8) {
			uint64_t v = present ? endian_le64(buf + f->off) : (uint64_t)(int64_t)f->absent;
			memcpy(m, &v, 8);
		} else {
			uint32_t v = present ? endian_le32(buf + f->off) : (uint32_t)(int32_t)f->absent;
			memcpy(m, &v, 4);
		}
	}
}

/*
 * Reads the first known strings from *pos on into strs, *pos moved past them. A length is read
 * only where two bytes remain; a string that runs past the end is caught by the next string's
 * test or by the caller's (pos != len), before the record is touched. *pos cannot wrap: at most
 * 65,535 strings of at most 65,537 bytes each. Returns 1, or 0 for a length with no room.
 * Always inlined: called with known the constant NSTRS for a record of this version, the
 * loop unrolls to straight code.
 */
static inline __attribute__((always_inline)) int
record_decode_strs(const unsigned char *buf, size_t len, size_t *pos, size_t known,
		   struct record_str *strs)
{
	size_t i, n, at = *pos;
	int ok = 0;

#pragma GCC unroll 13
	for (i = 0; i < known; i++) {
		if (at + 2 > len)
			goto out;
		n = endian_le16(buf + at);
		strs[i].p = n ? (const char *)buf + at + 2 : NULL;
		strs[i].n = (uint32_t)n;
		at += 2 + n;
	}
	ok = 1;
out:
	*pos = at;
	return ok;
}

int record_decode(const unsigned char *buf, size_t len, struct record *rec)
{
	struct record_str strs[NSTRS];
	size_t hlen, pos, count, known, i;
	int ok, rc = STORE_EFORMAT;

	if (buf == NULL || len < RECORD_PREFIX_LEN)
		goto out;
	/* Version 0 was never written: a zeroed buffer is not a record. */
	if (endian_le16(buf) == 0)
		goto out;
	hlen = endian_le16(buf + 2);
	if (hlen < RECORD_PREFIX_LEN || hlen > len || len - hlen < 2)
		goto out;
	/* One pass over the strings: each length is checked as it is read, and the strings this
	 * version knows go to strs, so that rec is touched only once every length has been found
	 * good (rec is left as it was when the bytes turn out bad; a report decodes millions, so
	 * no copy of the whole record). Strings past the ones this version knows come from a
	 * newer writer: checked and skipped; strings an older writer did not have are empty. */
	count = endian_le16(buf + hlen);
	known = count < NSTRS ? count : NSTRS;
	pos = hlen + 2;
	if (known == NSTRS)
		ok = record_decode_strs(buf, len, &pos, NSTRS, strs);
	else
		ok = record_decode_strs(buf, len, &pos, known, strs);
	if (!ok)
		goto out;
	for (i = known; i < NSTRS; i++) {
		strs[i].p = NULL;
		strs[i].n = 0;
	}
	for (i = NSTRS; i < count; i++) {
		if (pos + 2 > len)
			goto out;
		pos += 2 + (size_t)endian_le16(buf + pos);
	}
	/* Every byte is accounted for; anything after the strings is damage, not data. */
	if (pos != len)
		goto out;
	if (hlen == RECORD_HEADER_LEN)
		record_decode_fields(buf, RECORD_HEADER_LEN, rec);
	else
		record_decode_fields(buf, hlen, rec);
#pragma GCC unroll 13
	for (i = 0; i < NSTRS; i++)
		*(struct record_str *)((char *)rec + record_strs[i]) = strs[i];
	rc = 0;
out:
	return rc;
}

static const char *const record_tiers[] = {
	[RECORD_TIER_DEFAULT] = "default",
	[RECORD_TIER_FLEX] = "flex",
	[RECORD_TIER_PRIORITY] = "priority",
	[RECORD_TIER_SCALE] = "scale",
};

#define NTIERS (sizeof(record_tiers) / sizeof(record_tiers[0]))

int record_tier_of(const char *name, size_t n)
{
	int tier = RECORD_TIER_UNKNOWN;

	for (size_t i = RECORD_TIER_DEFAULT; name != NULL && i < NTIERS; i++) {
		if (strlen(record_tiers[i]) == n && memcmp(record_tiers[i], name, n) == 0) {
			tier = (int)i;
			break;
		}
	}
	return tier;
}

const char *record_tier_name(int tier)
{
	return tier > RECORD_TIER_UNKNOWN && (size_t)tier < NTIERS ? record_tiers[tier] : NULL;
}

struct record_str record_str_of(const char *s)
{
	struct record_str r = { NULL, 0 };
	size_t n;

	if (s == NULL)
		return r;
	n = strlen(s);
	r.p = s;
	r.n = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return r;
}

uint64_t record_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}
