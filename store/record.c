/*
 * record.c - the on-disk encoding of a usage record (docs/record-format.md).
 *
 * Version 5, the one written: a bit set of the numbers that differ from their defaults, each
 * in 4 bytes or, when it needs them, 8; a bit set of the non-empty strings, each a u32
 * reference into the store's string table or, when it has none, inline (u16 length, bytes).
 * Most of a record's fields sit at their defaults and its strings are the same few names over
 * and over, so a typical record takes about 100 bytes instead of the 320 of version 3; a
 * report over millions of records is bound by the pages it reads (docs/PERFORMANCE.md).
 * Unknown bits past the ones this code knows are skipped (a number's width is in the set, a
 * string's kind too), so later versions can add fields an older reader passes over.
 *
 * Versions 1 to 3, still read: a fixed little-endian header that states its own length, then a
 * count and that many u16-length-prefixed strings. Both of its parts only grow at their end.
 *
 * Each layout's fields are described once, in a table, so that encode, decode and defaults
 * cannot drift apart. Decoding copies nothing: inline strings point into the caller's buffer,
 * which is the LMDB map when a report scans millions of records.
 */
#include <stddef.h>
#include <string.h>

#include "store/endian.h"
#include "store/record.h"
#include "store/store.h"
#include "store/strtab.h"

_Static_assert(RECORD_NSTRS == 13, "RECORD_ENCODED_MAX counts 13 strings");
_Static_assert(RECORD_STR_MAX <= UINT16_MAX, "string lengths are encoded as u16");

#define NSTRS RECORD_NSTRS

static const struct record_str *record_str_at(const struct record *rec, size_t i)
{
	return record_str_mut((struct record *)rec, i);
}

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

/* ---- version 5 -------------------------------------------------------------------------- */

/* u16 version, u32 numbers set, u32 wide set, u16 strings set, u16 inline set. */
#define V5_PREFIX_LEN 14

enum v5_kind {
	V5_I64, /* int64_t member: 4 bytes when in [0, 2^32), else 8 */
	V5_U64, /* uint64_t member: 4 bytes when below 2^32, else 8 */
	V5_I32, /* int32_t member: 4 bytes when not negative, else 8 (sign-extended) */
	V5_U32, /* uint32_t member: always 4 bytes */
};

struct v5_field {
	uint16_t member; /* offsetof in struct record */
	uint8_t kind;    /* enum v5_kind */
	int8_t absent;   /* the default, not written: 0, or -1 (ttfb_us, retry_after_s) */
};

#define V5(m, k, a) { offsetof(struct record, m), (k), (a) }

/* Bit i of the numbers set is field i. New fields go at the end, with the next bits. */
static const struct v5_field v5_fields[] = {
	V5(latency_us, V5_I64, 0),
	V5(ttfb_us, V5_I64, -1),
	V5(pid, V5_I32, 0),
	V5(status, V5_I32, 0),
	V5(retry_after_s, V5_I32, -1),
	V5(flags, V5_U32, 0),
	V5(input_tokens, V5_I64, 0),
	V5(output_tokens, V5_I64, 0),
	V5(cache_read_tokens, V5_I64, 0),
	V5(cache_write_tokens, V5_I64, 0),
	V5(reasoning_tokens, V5_I64, 0),
	V5(billed_cost_pusd, V5_I64, 0),
	V5(request_hash, V5_U64, 0),
	V5(search_queries, V5_I64, 0),
	V5(search_context, V5_I32, 0),
	V5(billed_input_tokens, V5_I64, 0),
	V5(billed_output_tokens, V5_I64, 0),
	V5(cache_write_1h_tokens, V5_I64, 0),
	V5(service_tier, V5_I32, 0),
};

#define V5_NFIELDS (sizeof(v5_fields) / sizeof(v5_fields[0]))

_Static_assert(V5_PREFIX_LEN + V5_NFIELDS * 8 <= 256, "RECORD_ENCODED_MAX assumes 256");
_Static_assert(V5_NFIELDS <= 32 && NSTRS <= 16, "the sets are u32 and u16");

/* Field f of rec as the 64-bit value the encoding holds (int32 members sign-extended). */
static uint64_t v5_get(const struct record *rec, const struct v5_field *f)
{
	const char *m = (const char *)rec + f->member;
	uint64_t v;
	int32_t i32;
	uint32_t u32;

	if (f->kind == V5_I32) {
		memcpy(&i32, m, 4);
		v = (uint64_t)(int64_t)i32;
	} else if (f->kind == V5_U32) {
		memcpy(&u32, m, 4);
		v = u32;
	} else {
		memcpy(&v, m, 8);
	}
	return v;
}

int record_encode(const struct record *rec, unsigned char *buf, size_t cap)
{
	uint32_t nums = 0, wide = 0;
	uint16_t strs = 0, inl = 0;
	size_t pos = V5_PREFIX_LEN, i;
	int rc = STORE_EINVAL;

	if (rec == NULL || buf == NULL || cap < V5_PREFIX_LEN + V5_NFIELDS * 8)
		goto out;
	for (i = 0; i < V5_NFIELDS; i++) {
		const struct v5_field *f = &v5_fields[i];
		uint64_t v = v5_get(rec, f);

		if (v == (uint64_t)(int64_t)f->absent)
			continue;
		nums |= 1u << i;
		if (v >> 32 == 0) {
			endian_put_le32(buf + pos, (uint32_t)v);
			pos += 4;
		} else {
			wide |= 1u << i;
			endian_put_le64(buf + pos, v);
			pos += 8;
		}
	}
	for (i = 0; i < NSTRS; i++) {
		const struct record_str *s = record_str_at(rec, i);
		uint32_t n;

		if (s->p == NULL && s->n != 0)
			goto out;
		if (s->ref != 0) {
			if (cap - pos < 4)
				goto out;
			strs |= (uint16_t)(1u << i);
			endian_put_le32(buf + pos, s->ref);
			pos += 4;
			continue;
		}
		n = record_cut_len(s->p, s->n);
		if (n == 0)
			continue;
		if (cap - pos < 2 + (size_t)n)
			goto out;
		strs |= (uint16_t)(1u << i);
		inl |= (uint16_t)(1u << i);
		endian_put_le16(buf + pos, (uint16_t)n);
		memcpy(buf + pos + 2, s->p, n);
		pos += 2 + (size_t)n;
	}
	endian_put_le16(buf, RECORD_VERSION);
	endian_put_le32(buf + 2, nums);
	endian_put_le32(buf + 6, wide);
	endian_put_le16(buf + 10, strs);
	endian_put_le16(buf + 12, inl);
	rc = (int)pos;
out:
	return rc;
}

/* The set bits of x. The build targets every x86-64, where __builtin_popcount is a call. */
static inline unsigned record_pop32(uint32_t x)
{
	x = x - ((x >> 1) & 0x55555555u);
	x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
	x = (x + (x >> 4)) & 0x0f0f0f0fu;
	return (x * 0x01010101u) >> 24;
}

/* The strings of the usual record: every one a reference but error_message, which may be
 * inline (a writer never gives it a number). */
#define V5_REFS_ONLY ((1u << RECORD_STR_ERROR_MESSAGE) - 1)

/* The string of reference ref: from tab when it holds it, else { NULL, 0, ref } (*unresolved
 * counts those). */
static inline struct record_str record_ref(const struct strtab *tab, uint32_t ref,
					   int *unresolved)
{
	const unsigned char *e = tab != NULL ? strtab_get(tab, ref) : NULL;

	if (e == NULL) {
		++*unresolved;
		return (struct record_str){ NULL, 0, ref };
	}
	return (struct record_str){ (const char *)e + 2, endian_le16(e), ref };
}

/*
 * Reads the strings of a version 5 record from *pos on into s (zeroed by the caller for the
 * strings absent), *pos moved past them, references looked up in tab. Returns 1, or 0 for
 * bytes that are not strings.
 */
static int record_decode_v5_strs(const unsigned char *buf, size_t len, size_t *pos,
				 uint16_t strs, uint16_t inl, const struct strtab *tab,
				 struct record_str *s, int *unresolved)
{
	size_t at = *pos;
	uint32_t m, n;
	unsigned b;
	int ok = 0;

	for (m = strs; m != 0; m &= m - 1) {
		b = (unsigned)__builtin_ctz(m);
		if (inl >> b & 1) {
			if (len - at < 2)
				goto out;
			n = endian_le16(buf + at);
			if (len - at - 2 < n)
				goto out;
			if (b < NSTRS && n != 0)
				s[b] = (struct record_str){ (const char *)buf + at + 2, n, 0 };
			at += 2 + (size_t)n;
		} else {
			if (len - at < 4)
				goto out;
			n = endian_le32(buf + at);
			if (n == 0) /* no string has the number 0 */
				goto out;
			if (b < NSTRS)
				s[b] = record_ref(tab, n, unresolved);
			at += 4;
		}
	}
	ok = 1;
out:
	*pos = at;
	return ok;
}

/*
 * Version 5 of len bytes into rec. The numbers' total size is known from the two sets before
 * any is read (one bounds check), and so is the references' in the usual record (a fast path
 * with no test per string but its presence); other strings are checked one by one as their
 * lengths are found. rec is written only once every byte is accounted for.
 */
static int record_decode_v5(const unsigned char *buf, size_t len, const struct strtab *tab,
			    struct record *rec)
{
	uint64_t v[V5_NFIELDS];
	struct record_str s[NSTRS];
	uint32_t nums, wide, m, ref, zero = 0;
	uint16_t strs, inl;
	size_t pos = V5_PREFIX_LEN, need, i;
	unsigned b;
	int rc = STORE_EFORMAT, unresolved = 0;

	if (len < V5_PREFIX_LEN)
		goto out;
	nums = endian_le32(buf + 2);
	wide = endian_le32(buf + 6);
	strs = endian_le16(buf + 10);
	inl = endian_le16(buf + 12);
	/* A width or an inline mark for something absent says the bytes are not a record. */
	if ((wide & ~nums) != 0 || (inl & ~strs) != 0)
		goto out;
	need = 4 * (size_t)record_pop32(nums) + 4 * (size_t)record_pop32(wide);
	if (len - pos < need)
		goto out;
#pragma GCC unroll 19
	for (i = 0; i < V5_NFIELDS; i++)
		v[i] = (uint64_t)(int64_t)v5_fields[i].absent;
	for (m = nums; m != 0; m &= m - 1) {
		b = (unsigned)__builtin_ctz(m);
		if (wide >> b & 1) {
			if (b < V5_NFIELDS)
				v[b] = endian_le64(buf + pos);
			pos += 8;
		} else {
			if (b < V5_NFIELDS)
				v[b] = endian_le32(buf + pos);
			pos += 4;
		}
	}
	if ((inl & V5_REFS_ONLY) == 0 && (strs >> NSTRS) == 0 &&
	    len - pos >= 4 * (size_t)record_pop32(strs & V5_REFS_ONLY)) {
#pragma GCC unroll 12
		for (i = 0; i < RECORD_STR_ERROR_MESSAGE; i++) {
			if (!(strs >> i & 1)) {
				s[i] = (struct record_str){ NULL, 0, 0 };
				continue;
			}
			ref = endian_le32(buf + pos);
			zero |= ref == 0;
			s[i] = record_ref(tab, ref, &unresolved);
			pos += 4;
		}
		s[RECORD_STR_ERROR_MESSAGE] = (struct record_str){ NULL, 0, 0 };
		if (zero || !record_decode_v5_strs(buf, len, &pos,
						   strs & (1u << RECORD_STR_ERROR_MESSAGE), inl,
						   tab, s, &unresolved))
			goto out;
	} else {
		memset(s, 0, sizeof s);
		if (!record_decode_v5_strs(buf, len, &pos, strs, inl, tab, s, &unresolved))
			goto out;
	}
	if (pos != len)
		goto out;
#pragma GCC unroll 19
	for (i = 0; i < V5_NFIELDS; i++) {
		char *mem = (char *)rec + v5_fields[i].member;
		uint32_t u32 = (uint32_t)v[i];

		if (v5_fields[i].kind == V5_I64 || v5_fields[i].kind == V5_U64)
			memcpy(mem, &v[i], 8);
		else
			memcpy(mem, &u32, 4);
	}
#pragma GCC unroll 13
	for (i = 0; i < NSTRS; i++)
		*record_str_mut(rec, i) = s[i];
	rc = unresolved;
out:
	return rc;
}

/* ---- versions 1 to 3 -------------------------------------------------------------------- */

/* The header's first two fields: version, then the header's own length. */
#define V3_PREFIX_LEN 4

struct v3_field {
	uint16_t off;     /* offset in the encoded header */
	uint16_t member;  /* offsetof in struct record */
	uint8_t width;    /* 4 or 8 bytes */
	int8_t absent;    /* value when an older header lacks the field (0 or -1) */
};

#define V3(o, m, w, a) { (o), offsetof(struct record, m), (w), (a) }

/* The header of version 3; versions 1 and 2 hold its first 100 and 112 bytes. */
static const struct v3_field v3_fields[] = {
	V3(4, ts_ns, 8, 0),
	V3(12, latency_us, 8, 0),
	V3(20, ttfb_us, 8, -1),
	V3(28, pid, 4, 0),
	V3(32, status, 4, 0),
	V3(36, retry_after_s, 4, -1),
	V3(40, flags, 4, 0),
	V3(44, input_tokens, 8, 0),
	V3(52, output_tokens, 8, 0),
	V3(60, cache_read_tokens, 8, 0),
	V3(68, cache_write_tokens, 8, 0),
	V3(76, reasoning_tokens, 8, 0),
	V3(84, billed_cost_pusd, 8, 0),
	V3(92, request_hash, 8, 0),
	/* Version 2 */
	V3(100, search_queries, 8, 0),
	V3(108, search_context, 4, 0),
	/* Version 3 */
	V3(112, billed_input_tokens, 8, 0),
	V3(120, billed_output_tokens, 8, 0),
	V3(128, cache_write_1h_tokens, 8, 0),
	V3(136, service_tier, 4, 0),
};

#define V3_HEADER_LEN 140
#define V3_NFIELDS (sizeof(v3_fields) / sizeof(v3_fields[0]))

/*
 * Copies the header's fields into rec, each from buf when the header (hlen bytes) holds it,
 * else its absent value. Always inlined: record_decode_v3 calls it with hlen the constant
 * V3_HEADER_LEN for a version 3 header, so every test of a field's presence folds away and
 * each field is one load and one store; an older or longer header takes the tested path.
 */
static inline __attribute__((always_inline)) void
record_decode_fields(const unsigned char *buf, size_t hlen, struct record *rec)
{
	size_t i;

#pragma GCC unroll 20
	for (i = 0; i < V3_NFIELDS; i++) {
		const struct v3_field *f = &v3_fields[i];
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
 */
static int record_decode_strs(const unsigned char *buf, size_t len, size_t *pos, size_t known,
			      struct record_str *strs)
{
	size_t i, n, at = *pos;
	int ok = 0;

	for (i = 0; i < known; i++) {
		if (at + 2 > len)
			goto out;
		n = endian_le16(buf + at);
		strs[i] = (struct record_str){ n ? (const char *)buf + at + 2 : NULL, (uint32_t)n, 0 };
		at += 2 + n;
	}
	ok = 1;
out:
	*pos = at;
	return ok;
}

static int record_decode_v3(const unsigned char *buf, size_t len, struct record *rec)
{
	struct record_str strs[NSTRS];
	size_t hlen, pos, count, known, i;
	int rc = STORE_EFORMAT;

	if (len < V3_PREFIX_LEN)
		goto out;
	hlen = endian_le16(buf + 2);
	if (hlen < V3_PREFIX_LEN || hlen > len || len - hlen < 2)
		goto out;
	/* One pass over the strings: each length is checked as it is read, and the strings this
	 * version knows go to strs, so that rec is touched only once every length has been found
	 * good. Strings past the ones this version knows come from a newer writer: checked and
	 * skipped; strings an older writer did not have are empty. */
	count = endian_le16(buf + hlen);
	known = count < NSTRS ? count : NSTRS;
	pos = hlen + 2;
	if (!record_decode_strs(buf, len, &pos, known, strs))
		goto out;
	for (i = known; i < NSTRS; i++)
		strs[i] = (struct record_str){ NULL, 0, 0 };
	for (i = NSTRS; i < count; i++) {
		if (pos + 2 > len)
			goto out;
		pos += 2 + (size_t)endian_le16(buf + pos);
	}
	/* Every byte is accounted for; anything after the strings is damage, not data. */
	if (pos != len)
		goto out;
	if (hlen == V3_HEADER_LEN)
		record_decode_fields(buf, V3_HEADER_LEN, rec);
	else
		record_decode_fields(buf, hlen, rec);
	for (i = 0; i < NSTRS; i++)
		*record_str_mut(rec, i) = strs[i];
	rc = 0;
out:
	return rc;
}

int record_decode(const unsigned char *buf, size_t len, const struct strtab *tab,
		  struct record *rec)
{
	uint16_t version;
	int rc = STORE_EFORMAT;

	if (buf == NULL || len < 2)
		goto out;
	version = endian_le16(buf);
	/* Version 0 was never written: a zeroed buffer is not a record. Version 4 was never
	 * written either; it would have been of the older layout, read as such. */
	if (version == 0)
		goto out;
	rc = version >= 5 ? record_decode_v5(buf, len, tab, rec) : record_decode_v3(buf, len, rec);
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
	struct record_str r = { NULL, 0, 0 };
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
