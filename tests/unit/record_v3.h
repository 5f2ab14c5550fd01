/*
 * record_v3.h - records in the layout of versions 1 to 3, which record_encode no longer writes
 * (stores of formats 1 and 2 hold them, and every reader must still read them), built by hand
 * for the unit tests from docs/record-format.md. Included by one test file each.
 */
#ifndef TOKSHIM_RECORD_V3_H
#define TOKSHIM_RECORD_V3_H

#include <string.h>

#include "store/endian.h"
#include "store/record.h"

/*
 * Writes r in the layout of record versions 1 to 3 (docs/record-format.md, "Record value
 * (version 3)"), which record_encode no longer writes: the version, the header length hlen
 * (140 in version 3, 112 in version 2, 100 in version 1; the fields past it are left out), the
 * header's fields, then a u16 count nstrs and the first nstrs of the 13 strings (nstrs <= 13),
 * each a u16 length and its bytes. Returns the length written into buf.
 */
static size_t v3_build(unsigned char *buf, const struct record *r, uint16_t version,
		       uint16_t hlen, uint16_t nstrs)
{
	unsigned char h[140];
	size_t pos;

	memset(h, 0, sizeof(h));
	endian_put_le16(h, version);
	endian_put_le16(h + 2, hlen);
	endian_put_le64(h + 4, (uint64_t)r->ts_ns);
	endian_put_le64(h + 12, (uint64_t)r->latency_us);
	endian_put_le64(h + 20, (uint64_t)r->ttfb_us);
	endian_put_le32(h + 28, (uint32_t)r->pid);
	endian_put_le32(h + 32, (uint32_t)r->status);
	endian_put_le32(h + 36, (uint32_t)r->retry_after_s);
	endian_put_le32(h + 40, r->flags);
	endian_put_le64(h + 44, (uint64_t)r->input_tokens);
	endian_put_le64(h + 52, (uint64_t)r->output_tokens);
	endian_put_le64(h + 60, (uint64_t)r->cache_read_tokens);
	endian_put_le64(h + 68, (uint64_t)r->cache_write_tokens);
	endian_put_le64(h + 76, (uint64_t)r->reasoning_tokens);
	endian_put_le64(h + 84, (uint64_t)r->billed_cost_pusd);
	endian_put_le64(h + 92, r->request_hash);
	endian_put_le64(h + 100, (uint64_t)r->search_queries);
	endian_put_le32(h + 108, (uint32_t)r->search_context);
	endian_put_le64(h + 112, (uint64_t)r->billed_input_tokens);
	endian_put_le64(h + 120, (uint64_t)r->billed_output_tokens);
	endian_put_le64(h + 128, (uint64_t)r->cache_write_1h_tokens);
	endian_put_le32(h + 136, (uint32_t)r->service_tier);
	memcpy(buf, h, hlen < sizeof(h) ? hlen : sizeof(h));
	if (hlen > sizeof(h))
		memset(buf + sizeof(h), 0, hlen - sizeof(h));
	endian_put_le16(buf + hlen, nstrs);
	pos = (size_t)hlen + 2;
	for (size_t i = 0; i < nstrs; i++) {
		const struct record_str *s = record_str_mut((struct record *)r, i);

		endian_put_le16(buf + pos, (uint16_t)s->n);
		if (s->n != 0)
			memcpy(buf + pos + 2, s->p, s->n);
		pos += 2 + (size_t)s->n;
	}
	return pos;
}

#endif
