/*
 * record.c - the on-disk encoding of a usage record (docs/record-format.md).
 *
 * Versions 1 to 3: a fixed little-endian header that states its own length, then a count and
 * that many u16-length-prefixed strings. Both parts only ever grow at their end: a reader skips
 * header bytes and strings it does not know (a newer writer), and gives defaults for fields a
 * shorter header lacks (an older writer).
 *
 * Version 4 is what a report over millions of records wants to map: ~100 bytes where version
 * 3 took ~300, most of which were zeros and repeated names. A varint bit set says which fields
 * differ from their defaults, each follows as a varint (the request hash as 8 bytes: it is
 * random), and each string is inline or a reference into the store's string table. The time is
 * the store key's, so it is not repeated. Unknown bits (always varints) and extra strings of
 * a newer writer are skipped, so the growth rule still holds within version 4.
 *
 * The fields are described once, in tables, so that encode, decode and defaults cannot drift
 * apart. Decoding copies nothing: strings point into the caller's buffer, which is the LMDB
 * map when a report scans millions of records, or into the string table.
 */
#include <stddef.h>
#include <string.h>

#include "store/endian.h"
#include "store/record.h"
#include "store/store.h"

/* The header's first two fields: version, then the header's own length. */
#define RECORD_PREFIX_LEN 4

/* How version 4 writes a field's value. */
enum record_v4 {
	V4_ZIGZAG, /* signed: LEB128 of zigzag(value), of the int32 for 4-byte fields */
	V4_UNSIGNED, /* LEB128 of the value (flags) */
	V4_FIXED64, /* le64: a hash is random, a varint would only make it longer */
};

struct record_field {
	uint16_t off;     /* offset in the encoded header (versions 1 to 3) */
	uint16_t member;  /* offsetof in struct record */
	uint8_t width;    /* 4 or 8 bytes */
	int8_t absent;    /* value when an older header lacks the field (0 or -1) */
	uint8_t v4;       /* enum record_v4 */
};

#define FIELD(o, m, w, a, k) { (o), offsetof(struct record, m), (w), (a), (k) }

/* The header (version 3). New fields go at the end, with the next offsets. Version 4's bit i
 * is field i + 1: ts_ns, first, is not in a version 4 value. */
static const struct record_field record_fields[] = {
	FIELD(4, ts_ns, 8, 0, V4_ZIGZAG),
	FIELD(12, latency_us, 8, 0, V4_ZIGZAG),
	FIELD(20, ttfb_us, 8, -1, V4_ZIGZAG),
	FIELD(28, pid, 4, 0, V4_ZIGZAG),
	FIELD(32, status, 4, 0, V4_ZIGZAG),
	FIELD(36, retry_after_s, 4, -1, V4_ZIGZAG),
	FIELD(40, flags, 4, 0, V4_UNSIGNED),
	FIELD(44, input_tokens, 8, 0, V4_ZIGZAG),
	FIELD(52, output_tokens, 8, 0, V4_ZIGZAG),
	FIELD(60, cache_read_tokens, 8, 0, V4_ZIGZAG),
	FIELD(68, cache_write_tokens, 8, 0, V4_ZIGZAG),
	FIELD(76, reasoning_tokens, 8, 0, V4_ZIGZAG),
	FIELD(84, billed_cost_pusd, 8, 0, V4_ZIGZAG),
	FIELD(92, request_hash, 8, 0, V4_FIXED64),
	/* Version 2 */
	FIELD(100, search_queries, 8, 0, V4_ZIGZAG),
	FIELD(108, search_context, 4, 0, V4_ZIGZAG),
	/* Version 3 */
	FIELD(112, billed_input_tokens, 8, 0, V4_ZIGZAG),
	FIELD(120, billed_output_tokens, 8, 0, V4_ZIGZAG),
	FIELD(128, cache_write_1h_tokens, 8, 0, V4_ZIGZAG),
	FIELD(136, service_tier, 4, 0, V4_ZIGZAG),
};

#define RECORD_HEADER_LEN 140
#define RECORD_V3 3 /* the version of the fixed-header layout record_encode writes */
#define NFIELDS (sizeof(record_fields) / sizeof(record_fields[0]))
/* Version 4's fields: record_fields without ts_ns. */
#define V4_FIELDS (record_fields + 1)
#define V4_NFIELDS (NFIELDS - 1)
/* A varint is at most 10 bytes (64 bits, 7 a byte). */
#define V4_VARINT_MAX 10

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
_Static_assert(NSTRS == RECORD_NSTRS, "enum record_str_index lists every string");
_Static_assert(V4_NFIELDS <= 64, "version 4's bit set is one 64-bit varint");
/* Version 4 within RECORD_ENCODED_MAX: version, bit set, each field at its longest, a count,
 * and per string a tag of at most 2 bytes (2 * RECORD_STR_MAX < 16384) and its bytes. */
_Static_assert(2 + V4_VARINT_MAX * (1 + V4_NFIELDS) + V4_VARINT_MAX <= 256 &&
	       2 * RECORD_STR_MAX < 16384, "RECORD_ENCODED_MAX bounds version 4");
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

const struct record_str *record_str_at(const struct record *rec, size_t i)
{
	return (const struct record_str *)((const char *)rec + record_strs[i]);
}

struct record_str *record_str_mut(struct record *rec, size_t i)
{
	return (struct record_str *)((char *)rec + record_strs[i]);
}

uint32_t record_str_cut_len(const struct record_str *s)
{
	return record_cut_len(s->p, s->n);
}

/*
 * Appends the n bytes at p to buf (cap bytes) at *pos, *pos moved past them. Returns 1, or 0
 * when they do not fit (nothing written).
 */
static int record_put(unsigned char *buf, size_t cap, size_t *pos, const void *p, size_t n)
{
	int ok = 0;

	if (cap - *pos >= n) {
		if (n != 0)
			memcpy(buf + *pos, p, n);
		*pos += n;
		ok = 1;
	}
	return ok;
}

/* Appends v as LEB128 (1 to V4_VARINT_MAX bytes) as record_put does. */
static int record_put_varint(unsigned char *buf, size_t cap, size_t *pos, uint64_t v)
{
	unsigned char b[V4_VARINT_MAX];
	size_t n = 0;

	while (v >= 0x80) {
		b[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (unsigned char)v;
	return record_put(buf, cap, pos, b, n);
}

static uint64_t record_zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t record_unzigzag(uint64_t z)
{
	return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

int record_encode_refs(const struct record *rec, const uint32_t refs[RECORD_NSTRS],
		       unsigned char *buf, size_t cap)
{
	uint64_t present = 0, vals[V4_NFIELDS];
	size_t pos = 0;
	int ok, rc = STORE_EINVAL;

	if (rec == NULL || buf == NULL)
		goto out;
	for (size_t i = 0; i < V4_NFIELDS; i++) {
		const struct record_field *f = &V4_FIELDS[i];
		const char *m = (const char *)rec + f->member;
		uint64_t v;

		if (f->width == 8) {
			memcpy(&v, m, 8);
		} else {
			uint32_t w;
			memcpy(&w, m, 4);
			v = (uint64_t)(int64_t)(int32_t)w;
		}
		if (v == (uint64_t)(int64_t)f->absent)
			continue;
		present |= 1ull << i;
		if (f->v4 == V4_ZIGZAG)
			v = record_zigzag((int64_t)v);
		else if (f->v4 == V4_UNSIGNED)
			v = (uint32_t)v;
		vals[i] = v;
	}
	{
		unsigned char version[2];

		endian_put_le16(version, RECORD_VERSION);
		ok = record_put(buf, cap, &pos, version, 2) &&
		     record_put_varint(buf, cap, &pos, present);
	}
	for (uint64_t bits = present; ok && bits != 0; bits &= bits - 1) {
		size_t i = (size_t)__builtin_ctzll(bits);
		unsigned char le[8];

		if (V4_FIELDS[i].v4 == V4_FIXED64) {
			endian_put_le64(le, vals[i]);
			ok = record_put(buf, cap, &pos, le, 8);
		} else {
			ok = record_put_varint(buf, cap, &pos, vals[i]);
		}
	}
	ok = ok && record_put_varint(buf, cap, &pos, NSTRS);
	for (size_t i = 0; ok && i < NSTRS; i++) {
		const struct record_str *s = record_str_at(rec, i);
		uint32_t n;

		if (s->p == NULL && s->n != 0)
			goto out;
		n = record_cut_len(s->p, s->n);
		if (refs != NULL && refs[i] != 0)
			ok = record_put_varint(buf, cap, &pos, ((uint64_t)refs[i] << 1) | 1);
		else
			ok = record_put_varint(buf, cap, &pos, (uint64_t)n << 1) &&
			     record_put(buf, cap, &pos, s->p, n);
	}
	if (ok)
		rc = (int)pos;
out:
	return rc;
}

int record_encode(const struct record *rec, unsigned char *buf, size_t cap)
{
	size_t pos = RECORD_HEADER_LEN + 2;
	int rc = STORE_EINVAL;

	if (rec == NULL || buf == NULL || cap < pos)
		goto out;
	endian_put_le16(buf, RECORD_V3);
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

/* Versions 1 to 3 (record_decode_at has checked the version and that len >= 2). */
static inline __attribute__((always_inline)) int
record_decode_header(const unsigned char *buf, size_t len, struct record *rec)
{
	struct record_str strs[NSTRS];
	size_t hlen, pos, count, known, i;
	int ok, rc = STORE_EFORMAT;

	if (len < RECORD_PREFIX_LEN)
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

/* A varint read: its value, and the position after it (0: none could be read, as a value
 * never starts at 0). Returned in two registers, so that no position lives in memory. */
struct record_varint_at {
	uint64_t v;
	size_t pos;
};

/* One more byte of a varint that runs on: adds byte k's 7 bits to r.v; returns whether the
 * varint ends there. */
#define RECORD_VARINT_BYTE(r, p, k) \
	((r).v |= (uint64_t)((p)[k] & 0x7f) << (7 * (k)), (p)[k] < 0x80)

/*
 * The slow path of record_varint, for a varint of 2 or more bytes at pos < len. With 10 bytes
 * left (every field of a value, most string tags) the first four bytes are straight code with
 * no bounds test: most numbers of a record (token counts, latencies) take 2 to 4 bytes. Longer
 * ones, and varints near the end of the value, go byte by byte.
 */
static inline __attribute__((always_inline)) struct record_varint_at
record_varint_long_inline(const unsigned char *buf, size_t len, size_t pos)
{
	const unsigned char *p = buf + pos;
	struct record_varint_at r = { (uint64_t)(p[0] & 0x7f), 0 };
	size_t n = 1, left = len - pos;
	unsigned b = p[0];

	if (left >= V4_VARINT_MAX) {
		if (RECORD_VARINT_BYTE(r, p, 1)) {
			n = 2;
			goto done;
		}
		if (RECORD_VARINT_BYTE(r, p, 2)) {
			n = 3;
			goto done;
		}
		if (RECORD_VARINT_BYTE(r, p, 3)) {
			n = 4;
			goto done;
		}
		n = 4;
		b = p[3];
	}
	for (; n < left && n < V4_VARINT_MAX && b >= 0x80; n++) {
		b = p[n];
		r.v |= (uint64_t)(b & 0x7f) << (7 * n);
	}
	/* The last byte read must end the varint; a tenth byte holds bit 63 only (more is an
	 * overflow, or an eleventh byte). */
	if (b >= 0x80 || (n == V4_VARINT_MAX && b > 1))
		goto out;
done:
	r.pos = pos + n;
out:
	return r;
}

/* record_varint_long as a call, for the string tags (rarely longer than one byte). */
static struct record_varint_at record_varint_long(const unsigned char *buf, size_t len, size_t pos)
{
	return record_varint_long_inline(buf, len, pos);
}

/*
 * Reads one LEB128 varint at pos (at most V4_VARINT_MAX bytes, at most 64 bits). Returns its
 * value and the position after it, or pos 0 for one that runs past len, is too long or
 * overflows. Most varints of a record are one byte (small counts, string tags): that case is
 * inline; with inline_long (a constant) the longer ones too, for the fields, most of which
 * take 2 to 4 bytes.
 */
static inline __attribute__((always_inline)) struct record_varint_at
record_varint(const unsigned char *buf, size_t len, size_t pos, int inline_long)
{
	struct record_varint_at r = { 0, 0 };

	if (pos < len && buf[pos] < 0x80) {
		r.v = buf[pos];
		r.pos = pos + 1;
	} else if (pos < len) {
		r = inline_long ? record_varint_long_inline(buf, len, pos) :
				  record_varint_long(buf, len, pos);
	}
	return r;
}

/*
 * Reads the tag of a string at pos and checks it: an odd tag's id is neither 0 nor past 32
 * bits; an even tag's length is at most RECORD_STR_MAX and its bytes are there. Returns the
 * tag and the position after it (not after the bytes), or pos 0 for a bad tag. Inlined: it is
 * every reference's path when a store writes them.
 */
static inline __attribute__((always_inline)) struct record_varint_at
record_str_tag(const unsigned char *buf, size_t len, size_t pos)
{
	struct record_varint_at r = record_varint(buf, len, pos, 0);
	uint64_t v = r.v >> 1;

	if (r.pos != 0 && ((r.v & 1) ? v == 0 || v > UINT32_MAX :
				       v > RECORD_STR_MAX || v > len - r.pos))
		r.pos = 0;
	return r;
}

/* The version 4 bits whose fields are of kind (enum record_v4), or of width 4. Always inlined
 * with constant arguments, so each folds to a constant: the table stays the one description. */
static inline __attribute__((always_inline)) uint64_t record_v4_mask(int kind, int width)
{
	uint64_t m = 0;

#pragma GCC unroll 19
	for (size_t i = 0; i < V4_NFIELDS; i++)
		if (kind >= 0 ? V4_FIELDS[i].v4 == kind : V4_FIELDS[i].width == width)
			m |= 1ull << i;
	return m;
}

/*
 * Version 4. The fields go to vals and the strings to strs first, so that rec is written only
 * once the whole value has been checked and every reference resolved (a report decodes
 * millions: one table-driven store per field at the end, no copy of a whole record; checking
 * the strings in one pass and writing them in a second measured slower). vals has a slot for
 * every bit, so a newer writer's field is read like the others and never stored.
 */
static int record_decode_v4(const unsigned char *buf, size_t len, int64_t ts_ns,
			    record_resolve_fn resolve, void *ctx, struct record *rec)
{
	const uint64_t fixed64 = record_v4_mask(V4_FIXED64, 0);
	const uint64_t zigzag = record_v4_mask(V4_ZIGZAG, 0);
	const uint64_t narrow = record_v4_mask(-1, 4); /* 4-byte fields, flags among them */
	struct record_str strs[NSTRS];
	struct record_varint_at r;
	uint64_t vals[64], present, count, tag, v;
	uint32_t refs = 0; /* bit i: strs[i].n holds a reference id, not a length */
	size_t pos = 2, i, known;
	int rc = STORE_EFORMAT;

	_Static_assert(NSTRS <= 32, "refs holds one bit per string");
#pragma GCC unroll 19
	for (i = 0; i < V4_NFIELDS; i++)
		vals[i] = (uint64_t)(int64_t)V4_FIELDS[i].absent;
	r = record_varint(buf, len, pos, 0);
	if (r.pos == 0)
		goto out;
	present = r.v;
	pos = r.pos;
	for (; present != 0; present &= present - 1) {
		i = (size_t)__builtin_ctzll(present);
		if ((fixed64 >> i) & 1) {
			if (len - pos < 8)
				goto out;
			vals[i] = endian_le64(buf + pos);
			pos += 8;
			continue;
		}
		/* Any other field, and every field a newer writer adds, is a varint, of two
		 * bytes or more as a rule: inline whole. */
		r = record_varint(buf, len, pos, 1);
		if (r.pos == 0)
			goto out;
		v = r.v;
		pos = r.pos;
		/* A 4-byte field's zigzag, or flags, fits 32 bits; more is damage, not a value. */
		if ((v >> 32) != 0 && ((narrow >> i) & 1))
			goto out;
		vals[i] = ((zigzag >> i) & 1) ? (uint64_t)record_unzigzag(v) : v;
	}
	/* Each string takes at least one byte: a count beyond the bytes left is damage, and
	 * bounds the loops below. */
	r = record_varint(buf, len, pos, 0);
	if (r.pos == 0 || r.v > len - r.pos)
		goto out;
	count = r.v;
	pos = r.pos;
	known = count < NSTRS ? (size_t)count : NSTRS;
	for (i = 0; i < known; i++) {
		if (pos >= len)
			goto out;
		tag = buf[pos];
		if ((tag & 0x81) == 0) {
			v = tag >> 1; /* the usual string: inline, under 64 bytes */
			pos++;
			if (v > len - pos)
				goto out;
		} else {
			r = record_str_tag(buf, len, pos);
			if (r.pos == 0)
				goto out;
			tag = r.v;
			pos = r.pos;
			v = tag >> 1;
			if (tag & 1) {
				/* A reference: resolved once everything is checked. */
				refs |= 1u << i;
				strs[i].p = NULL;
				strs[i].n = (uint32_t)v;
				continue;
			}
		}
		strs[i].p = v ? (const char *)buf + pos : NULL;
		strs[i].n = (uint32_t)v;
		pos += v;
	}
	/* A newer writer's strings: inline ones skipped, references not resolved. */
	for (; i < count; i++) {
		r = record_str_tag(buf, len, pos);
		if (r.pos == 0)
			goto out;
		pos = r.pos + ((r.v & 1) ? 0 : r.v >> 1);
	}
	/* Every byte is accounted for; anything after the strings is damage, not data. */
	if (pos != len)
		goto out;
	for (i = known; i < NSTRS; i++) {
		strs[i].p = NULL;
		strs[i].n = 0;
	}
	if (refs != 0 && resolve == NULL)
		goto out;
	for (; refs != 0; refs &= refs - 1) {
		i = (size_t)__builtin_ctz(refs);
		rc = resolve(ctx, strs[i].n, &strs[i]);
		if (rc != 0 || strs[i].n > RECORD_STR_MAX || (strs[i].p == NULL && strs[i].n != 0)) {
			rc = rc < 0 ? rc : STORE_EFORMAT;
			goto out;
		}
	}
	rec->ts_ns = ts_ns;
#pragma GCC unroll 19
	for (i = 0; i < V4_NFIELDS; i++) {
		char *m = (char *)rec + V4_FIELDS[i].member;

		if (V4_FIELDS[i].width == 8) {
			memcpy(m, &vals[i], 8);
		} else {
			uint32_t w = (uint32_t)vals[i];
			memcpy(m, &w, 4);
		}
	}
#pragma GCC unroll 13
	for (i = 0; i < NSTRS; i++)
		*record_str_mut(rec, i) = strs[i];
	rc = 0;
out:
	return rc;
}

int record_decode_at(const unsigned char *buf, size_t len, int64_t ts_ns,
		     record_resolve_fn resolve, void *ctx, struct record *rec)
{
	unsigned version;
	int rc = STORE_EFORMAT;

	if (buf == NULL || len < 2)
		goto out;
	version = endian_le16(buf);
	/* Version 0 was never written: a zeroed buffer is not a record. Versions past 4 are
	 * refused: version 4 grows by bits and strings, so a layout that needs a new number is
	 * one this code cannot read. */
	if (version == RECORD_VERSION)
		rc = record_decode_v4(buf, len, ts_ns, resolve, ctx, rec);
	else if (version != 0 && version < RECORD_VERSION)
		rc = record_decode_header(buf, len, rec);
out:
	return rc;
}

int record_decode(const unsigned char *buf, size_t len, struct record *rec)
{
	return record_decode_at(buf, len, 0, NULL, NULL, rec);
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
