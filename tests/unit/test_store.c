/*
 * test_store.c - the record encoding, the payload codec and the LMDB store.
 *
 * Record version 5 (what record_encode writes) is checked byte for byte against hand-written
 * bytes; versions 1 to 3, which stores of format 1 and 2 hold and record_encode no longer
 * writes, are built by hand from docs/record-format.md (v3_build) and must still read.
 * Decoders are fed every truncation of a valid buffer placed just before a PROT_NONE page, so
 * an over-read crashes at once instead of passing by luck (picohttpparser's trick), and every
 * value of every byte in turn. The store
 * tests compare what comes back with a plain reference computed beside it (SQLite's
 * compare-with-reference shape), including under 4 processes and 4 threads appending at once
 * and under kill -9. Every store lives in a mkdtemp folder that is removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "store/endian.h"
#include "store/payload.h"
#include "store/record.h"
#include "store/store.h"
#include "store/strtab.h"
#include "tests/unit/check.h"
#include "tests/unit/record_v3.h"
#include "tests/unit/tmpdir.h"

/* Places len bytes just before a PROT_NONE page: one byte past the end faults. */
struct guard {
	unsigned char *base;
	size_t size;
};

static const unsigned char *guard_copy(struct guard *g, const void *src, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data = (len + page - 1) / page * page;

	if (data == 0)
		data = page;
	g->size = data + page;
	g->base = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->base == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	mprotect(g->base + data, page, PROT_NONE);
	memcpy(g->base + data - len, src, len);
	return g->base + data - len;
}

static void guard_free(struct guard *g)
{
	munmap(g->base, g->size);
}

/* A record whose every field differs from the others and from zero. */
static void record_fill(struct record *r, int k)
{
	/* per thread: test_concurrency fills records in several threads at once */
	static __thread char strs[13][64];
	static const char *names[13] = { "process", "agent", "agent_type", "tenant", "session",
					 "provider", "api", "host", "path", "model_requested",
					 "model", "error", "error_message" };
	struct record_str *s[13] = { &r->process, &r->agent, &r->agent_type, &r->tenant,
				     &r->session, &r->provider, &r->api, &r->host, &r->path,
				     &r->model_requested, &r->model, &r->error,
				     &r->error_message };

	memset(r, 0, sizeof(*r));
	r->ts_ns = 1700000000000000000ll + k;
	r->latency_us = 123456 + k;
	r->ttfb_us = -1;
	r->pid = 4242 + k;
	r->status = 429;
	r->retry_after_s = 17;
	r->flags = RECORD_STREAM | RECORD_ESTIMATED | RECORD_BILLED;
	r->input_tokens = 1000 + k;
	r->output_tokens = 2000 + k;
	r->cache_read_tokens = 300 + k;
	r->cache_write_tokens = 40 + k;
	r->reasoning_tokens = 5 + k;
	r->billed_cost_pusd = -7; /* a negative value must survive too */
	r->request_hash = 0xfedcba9876543210ull;
	r->search_queries = 30 + k;
	r->search_context = RECORD_SEARCH_HIGH;
	r->billed_input_tokens = 2406 + k;
	r->billed_output_tokens = 2 + k;
	r->cache_write_1h_tokens = 7 + k;
	r->service_tier = RECORD_TIER_PRIORITY;
	for (int i = 0; i < 13; i++) {
		snprintf(strs[i], sizeof(strs[i]), "%s-%d", names[i], k);
		*s[i] = record_str_of(strs[i]);
	}
}

static void check_record_eq(const struct record *a, const struct record *b)
{
	CHECK_INT(a->ts_ns, b->ts_ns);
	CHECK_INT(a->latency_us, b->latency_us);
	CHECK_INT(a->ttfb_us, b->ttfb_us);
	CHECK_INT(a->pid, b->pid);
	CHECK_INT(a->status, b->status);
	CHECK_INT(a->retry_after_s, b->retry_after_s);
	CHECK_INT(a->flags, b->flags);
	CHECK_INT(a->input_tokens, b->input_tokens);
	CHECK_INT(a->output_tokens, b->output_tokens);
	CHECK_INT(a->cache_read_tokens, b->cache_read_tokens);
	CHECK_INT(a->cache_write_tokens, b->cache_write_tokens);
	CHECK_INT(a->reasoning_tokens, b->reasoning_tokens);
	CHECK_INT(a->billed_cost_pusd, b->billed_cost_pusd);
	CHECK(a->request_hash == b->request_hash);
	CHECK_INT(a->search_queries, b->search_queries);
	CHECK_INT(a->search_context, b->search_context);
	CHECK_INT(a->billed_input_tokens, b->billed_input_tokens);
	CHECK_INT(a->billed_output_tokens, b->billed_output_tokens);
	CHECK_INT(a->cache_write_1h_tokens, b->cache_write_1h_tokens);
	CHECK_INT(a->service_tier, b->service_tier);
	const struct record_str *sa = &a->process, *sb = &b->process;
	for (int i = 0; i < 13; i++) {
		CHECK_INT(sa[i].n, sb[i].n);
		CHECK(sa[i].n == sb[i].n && (sa[i].n == 0 || memcmp(sa[i].p, sb[i].p, sa[i].n) == 0));
	}
}

/* check_record_eq, and every string's ref too. */
static void check_record_refs_eq(const struct record *a, const struct record *b)
{
	const struct record_str *sa = &a->process, *sb = &b->process;

	check_record_eq(a, b);
	for (int i = 0; i < 13; i++)
		CHECK_INT(sa[i].ref, sb[i].ref);
}

/* A record with every number at its default (ttfb_us and retry_after_s -1, the rest 0) and
 * every string empty: what record_encode leaves out entirely. */
static void record_defaults(struct record *r)
{
	memset(r, 0, sizeof(*r));
	r->ttfb_us = -1;
	r->retry_after_s = -1;
}

/*
 * A reader's string table as store/strings.c fills it (store/strtab.h): ids below
 * STRTAB_CHUNK_LEN, each entry a u16 length and the bytes. Ids 1 to 3 hold "bot", "gpt-4o"
 * and "proc"; 7 holds "bot" too (a table may hold the same bytes twice: decoding does not
 * care); the others nothing.
 */
static struct strtab test_tab;
static const unsigned char *test_tab_chunk[STRTAB_CHUNK_LEN];
static unsigned char test_tab_bytes[256];

static void test_tab_init(void)
{
	static const struct {
		uint32_t id;
		const char *s;
	} e[] = { { 1, "bot" }, { 2, "gpt-4o" }, { 3, "proc" }, { 7, "bot" } };
	size_t used = 0, n;

	if (test_tab.chunk[0] != NULL)
		return;
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
		n = strlen(e[i].s);
		endian_put_le16(test_tab_bytes + used, (uint16_t)n);
		memcpy(test_tab_bytes + used + 2, e[i].s, n);
		test_tab_chunk[e[i].id] = test_tab_bytes + used;
		used += 2 + n;
	}
	test_tab.chunk[0] = test_tab_chunk;
}

/* Does s point into the table's bytes (a reference it resolved)? */
static int in_test_tab(const struct record_str *s)
{
	return (const unsigned char *)s->p >= test_tab_bytes &&
	       (const unsigned char *)s->p + s->n <= test_tab_bytes + sizeof(test_tab_bytes);
}

/* The worked example of docs/record-format.md, byte for byte, and its decoding: the agent a
 * reference the table resolves (or, without a table, left for the store to resolve). */
static void test_record_encode_example(void)
{
	static const unsigned char want[] = {
		0x05, 0x00,		    /* version 5 */
		0xcd, 0x00, 0x00, 0x00,	    /* numbers: bits 0, 2, 3, 6, 7 */
		0x00, 0x00, 0x00, 0x00,	    /* wide: none */
		0x02, 0x00,		    /* strings: bit 1 (agent) */
		0x00, 0x00,		    /* inline: none */
		0x60, 0xe3, 0x16, 0x00,	    /* latency_us 1500000 */
		0x92, 0x10, 0x00, 0x00,	    /* pid 4242 */
		0xc8, 0x00, 0x00, 0x00,	    /* status 200 */
		0xb0, 0x04, 0x00, 0x00,	    /* input_tokens 1200 */
		0x50, 0x00, 0x00, 0x00,	    /* output_tokens 80 */
		0x07, 0x00, 0x00, 0x00,	    /* agent: string 7 */
	};
	unsigned char buf[RECORD_ENCODED_MAX];
	struct record in, out;
	int n;

	test_tab_init();
	record_defaults(&in);
	in.ts_ns = 1700000000000000000ll; /* in the key, not the value */
	in.id = 12;
	in.latency_us = 1500000;
	in.pid = 4242;
	in.status = 200;
	in.input_tokens = 1200;
	in.output_tokens = 80;
	in.agent = (struct record_str){ "bot", 3, 7 };
	n = record_encode(&in, buf, sizeof(buf));
	CHECK_INT(n, sizeof(want));
	CHECK(n == (int)sizeof(want) && memcmp(buf, want, sizeof(want)) == 0);

	/* No table: the reference comes back unresolved, { NULL, 0, 7 }; ts_ns and id untouched. */
	memset(&out, 0x5A, sizeof(out));
	out.ts_ns = 55;
	out.id = 66;
	CHECK_INT(record_decode(want, sizeof(want), NULL, &out), 1);
	CHECK_INT(out.ts_ns, 55);
	CHECK_INT(out.id, 66);
	CHECK(out.agent.p == NULL);
	CHECK_INT(out.agent.n, 0);
	CHECK_INT(out.agent.ref, 7);
	CHECK_INT(out.ttfb_us, -1);
	CHECK_INT(out.retry_after_s, -1);
	CHECK_INT(out.latency_us, 1500000);
	CHECK_INT(out.pid, 4242);
	CHECK_INT(out.status, 200);
	CHECK_INT(out.input_tokens, 1200);
	CHECK_INT(out.output_tokens, 80);
	CHECK_INT(out.flags, 0);
	CHECK_INT(out.request_hash, 0);
	CHECK_INT(out.service_tier, 0);
	for (int i = 0; i < RECORD_NSTRS; i++) {
		if (i == 1)
			continue;
		CHECK(record_str_mut(&out, i)->p == NULL);
		CHECK_INT(record_str_mut(&out, i)->n, 0);
		CHECK_INT(record_str_mut(&out, i)->ref, 0);
	}
	/* With a table holding 7: resolved, pointing into the table, the ref kept. */
	memset(&out, 0x5A, sizeof(out));
	CHECK_INT(record_decode(want, sizeof(want), &test_tab, &out), 0);
	CHECK_MEM(out.agent.p, out.agent.n, "bot");
	CHECK_INT(out.agent.ref, 7);
	CHECK(in_test_tab(&out.agent));
	out.ts_ns = in.ts_ns;
	check_record_refs_eq(&out, &in);
	/* An unresolved reference encodes back to the same bytes. */
	memset(&out, 0, sizeof(out));
	CHECK_INT(record_decode(want, sizeof(want), NULL, &out), 1);
	CHECK_INT(record_encode(&out, buf, sizeof(buf)), sizeof(want));
	CHECK(memcmp(buf, want, sizeof(want)) == 0);
}

/*
 * Every choice of the encoder in one record, byte for byte: 2^32 - 1 in 4 bytes, 2^32 in 8, a
 * negative int32 sign-extended to 8, ttfb_us and retry_after_s at 0 written (their default is
 * -1), a flags word of all ones in 4, an empty string and a string with a NULL pointer left
 * out, a reference written as its number whatever bytes it carries, inline strings as a
 * length and bytes.
 */
static void test_record_encode_bytes(void)
{
	static const unsigned char want[] = {
		0x05, 0x00,
		0x77, 0x18, 0x04, 0x00, /* numbers: bits 0 1 2 4 5 6 11 12 18 */
		0x44, 0x18, 0x00, 0x00, /* wide: bits 2 6 11 12 */
		0x81, 0x14,		/* strings: 0 (process) 7 (host) 10 (model) 12 (error_message) */
		0x01, 0x10,		/* inline: 0 and 12 */
		0xff, 0xff, 0xff, 0xff, /* latency_us 2^32 - 1 */
		0x00, 0x00, 0x00, 0x00, /* ttfb_us 0 */
		0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* pid -5 */
		0x00, 0x00, 0x00, 0x00, /* retry_after_s 0 */
		0xff, 0xff, 0xff, 0xff, /* flags */
		0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, /* input_tokens 2^32 */
		0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* billed_cost_pusd -7 */
		0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, /* request_hash */
		0x03, 0x00, 0x00, 0x00, /* service_tier */
		0x04, 0x00, 'c', 'u', 'r', 'l', /* process */
		0x04, 0x03, 0x02, 0x01, /* host: string 0x01020304 */
		0x09, 0x00, 0x00, 0x00, /* model: string 9 */
		0x04, 0x00, 'b', 'o', 'o', 'm', /* error_message */
	};
	unsigned char buf[RECORD_ENCODED_MAX];
	struct record in, out;
	int n;

	record_defaults(&in);
	in.latency_us = 0xFFFFFFFFll;
	in.ttfb_us = 0;
	in.pid = -5;
	in.retry_after_s = 0;
	in.flags = UINT32_MAX;
	in.input_tokens = 0x100000000ll;
	in.billed_cost_pusd = -7;
	in.request_hash = 0xfedcba9876543210ull;
	in.service_tier = RECORD_TIER_PRIORITY;
	in.process = (struct record_str){ "curl", 4, 0 };
	in.agent = (struct record_str){ "", 0, 0 };
	in.tenant = (struct record_str){ "x", 0, 0 };
	in.session = (struct record_str){ NULL, 0, 0 };
	in.host = (struct record_str){ "ignored", 7, 0x01020304 };
	in.model = (struct record_str){ NULL, 0, 9 };
	in.error_message = (struct record_str){ "boom", 4, 0 };
	n = record_encode(&in, buf, sizeof(buf));
	CHECK_INT(n, sizeof(want));
	CHECK(n == (int)sizeof(want) && memcmp(buf, want, sizeof(want)) == 0);
	for (int i = 0; i < n && i < (int)sizeof(want); i++) {
		if (buf[i] != want[i]) {
			CHECK_INT(i, -1); /* the first byte that differs */
			break;
		}
	}

	memset(&out, 0x5A, sizeof(out));
	CHECK_INT(record_decode(want, sizeof(want), NULL, &out), 2);
	CHECK_INT(out.latency_us, 0xFFFFFFFFll);
	CHECK_INT(out.ttfb_us, 0);
	CHECK_INT(out.pid, -5);
	CHECK_INT(out.status, 0);
	CHECK_INT(out.retry_after_s, 0);
	CHECK(out.flags == UINT32_MAX);
	CHECK_INT(out.input_tokens, 0x100000000ll);
	CHECK_INT(out.output_tokens, 0);
	CHECK_INT(out.billed_cost_pusd, -7);
	CHECK(out.request_hash == 0xfedcba9876543210ull);
	CHECK_INT(out.service_tier, RECORD_TIER_PRIORITY);
	CHECK_MEM(out.process.p, out.process.n, "curl");
	CHECK_INT(out.process.ref, 0);
	CHECK(out.process.p == (const char *)want + 68);
	CHECK(out.host.p == NULL && out.host.n == 0);
	CHECK_INT(out.host.ref, 0x01020304);
	CHECK(out.model.p == NULL && out.model.n == 0);
	CHECK_INT(out.model.ref, 9);
	CHECK_MEM(out.error_message.p, out.error_message.n, "boom");
	CHECK_INT(out.error_message.ref, 0);
	CHECK(out.agent.p == NULL && out.agent.n == 0 && out.agent.ref == 0);
	CHECK(out.tenant.p == NULL && out.tenant.n == 0 && out.tenant.ref == 0);
	/* Decoded, encoded again: the same bytes. */
	CHECK_INT(record_encode(&out, buf, sizeof(buf)), sizeof(want));
	CHECK(memcmp(buf, want, sizeof(want)) == 0);

	/* Every number at its default: the 14-byte prefix alone. A zeroed record is not at its
	 * defaults: ttfb_us and retry_after_s at 0 take 4 bytes each. */
	record_defaults(&in);
	CHECK_INT(record_encode(&in, buf, sizeof(buf)), 14);
	CHECK(memcmp(buf, "\x05\0\0\0\0\0\0\0\0\0\0\0\0\0", 14) == 0);
	memset(&in, 0, sizeof(in));
	CHECK_INT(record_encode(&in, buf, sizeof(buf)), 22);
	CHECK(memcmp(buf, "\x05\0\x12\0\0\0\0\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0", 22) == 0);
}

/* One number alone, at the edges of its width: its bit, 4 or 8 bytes, and the value read back. */
static void test_record_widths(void)
{
	static const struct {
		int bit;	/* in the numbers set (docs/record-format.md) */
		uint64_t value; /* as the member holds it (int32 members: the low 32 bits) */
		int len;	/* 14 (absent), 18 (4 bytes) or 22 (8 bytes) */
		uint64_t enc;	/* what follows the prefix */
	} cases[] = {
		{ 0, 0xFFFFFFFFull, 18, 0xFFFFFFFFull },	      /* latency_us 2^32 - 1 */
		{ 0, 0x100000000ull, 22, 0x100000000ull },	      /* latency_us 2^32 */
		{ 0, (uint64_t)-1ll, 22, (uint64_t)-1ll },	      /* latency_us -1 */
		{ 0, 0, 14, 0 },				      /* latency_us at its default */
		{ 1, (uint64_t)-1ll, 14, 0 },			      /* ttfb_us at its default */
		{ 1, 0, 18, 0 },				      /* ttfb_us 0 */
		{ 1, (uint64_t)-2ll, 22, (uint64_t)-2ll },	      /* ttfb_us -2 */
		{ 2, 0x7FFFFFFFull, 18, 0x7FFFFFFFull },	      /* pid INT32_MAX */
		{ 2, 0xFFFFFFFFull, 22, (uint64_t)-1ll },	      /* pid -1 */
		{ 2, 0x80000000ull, 22, 0xFFFFFFFF80000000ull },      /* pid INT32_MIN */
		{ 4, 0xFFFFFFFFull, 14, 0 },			      /* retry_after_s -1 */
		{ 4, 0, 18, 0 },				      /* retry_after_s 0 */
		{ 5, 0xFFFFFFFFull, 18, 0xFFFFFFFFull },	      /* flags all set */
		{ 6, 0x8000000000000000ull, 22, 0x8000000000000000ull }, /* input_tokens INT64_MIN */
		{ 12, 0xFFFFFFFFull, 18, 0xFFFFFFFFull },	      /* request_hash 2^32 - 1 */
		{ 12, 0x100000000ull, 22, 0x100000000ull },	      /* request_hash 2^32 */
		{ 12, UINT64_MAX, 22, UINT64_MAX },		      /* request_hash all ones */
		{ 14, 0xFFFFFFFDull, 22, (uint64_t)-3ll },	      /* search_context -3 */
		{ 17, 0xFFFFFFFFull, 18, 0xFFFFFFFFull },	      /* cache_write_1h_tokens */
		{ 18, 4, 18, 4 },				      /* service_tier */
	};
	unsigned char buf[RECORD_ENCODED_MAX], want[22];
	struct record in, out;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		int bit = cases[c].bit, n;
		uint64_t v = cases[c].value;
		uint32_t v32 = (uint32_t)v;

		record_defaults(&in);
		switch (bit) {
		case 0: in.latency_us = (int64_t)v; break;
		case 1: in.ttfb_us = (int64_t)v; break;
		case 2: memcpy(&in.pid, &v32, 4); break;
		case 4: memcpy(&in.retry_after_s, &v32, 4); break;
		case 5: in.flags = v32; break;
		case 6: in.input_tokens = (int64_t)v; break;
		case 12: in.request_hash = v; break;
		case 14: memcpy(&in.search_context, &v32, 4); break;
		case 17: in.cache_write_1h_tokens = (int64_t)v; break;
		case 18: memcpy(&in.service_tier, &v32, 4); break;
		}
		memset(want, 0, sizeof(want));
		want[0] = 5;
		if (cases[c].len > 14)
			endian_put_le32(want + 2, 1u << bit);
		if (cases[c].len == 22) {
			endian_put_le32(want + 6, 1u << bit);
			endian_put_le64(want + 14, cases[c].enc);
		} else if (cases[c].len == 18) {
			endian_put_le32(want + 14, (uint32_t)cases[c].enc);
		}
		n = record_encode(&in, buf, sizeof(buf));
		if (n != cases[c].len || memcmp(buf, want, (size_t)n) != 0) {
			fprintf(stderr, "width case %zu: %d bytes\n", c, n);
			CHECK_INT(n, cases[c].len);
			CHECK(memcmp(buf, want, (size_t)cases[c].len) == 0);
		}
		memset(&out, 0x5A, sizeof(out));
		out.ts_ns = in.ts_ns;
		CHECK_INT(record_decode(buf, (size_t)n, NULL, &out), 0);
		check_record_refs_eq(&out, &in);
	}

	/* Read back, an int32 keeps the low 32 bits of what it was given: a narrow 0xFFFFFFFF
	 * pid (no writer writes that) is -1, a wide 2^32 + 5 is 5. */
	memset(want, 0, sizeof(want));
	want[0] = 5;
	endian_put_le32(want + 2, 1u << 2);
	endian_put_le32(want + 14, 0xFFFFFFFFu);
	CHECK_INT(record_decode(want, 18, NULL, &out), 0);
	CHECK_INT(out.pid, -1);
	endian_put_le32(want + 6, 1u << 2);
	endian_put_le64(want + 14, 0x100000005ull);
	CHECK_INT(record_decode(want, 22, NULL, &out), 0);
	CHECK_INT(out.pid, 5);
}

/* record_fill's record with some strings given references (as the store does before it
 * encodes): ids 1 to 3 are in test_tab, 40 is not. */
static void record_fill_refs(struct record *r, int k)
{
	record_fill(r, k);
	r->agent = (struct record_str){ "bot", 3, 1 };
	r->model = (struct record_str){ "gpt-4o", 6, 2 };
	r->model_requested = (struct record_str){ "gpt-4o", 6, 2 };
	r->process = (struct record_str){ "proc", 4, 3 };
	r->session = (struct record_str){ NULL, 0, 40 };
	r->input_tokens = 0x123456789ll; /* wide */
}

static void test_record_roundtrip(void)
{
	unsigned char buf[RECORD_ENCODED_MAX];
	struct record in, out;
	int n;

	test_tab_init();
	/* Inline strings only. */
	record_fill(&in, 1);
	in.id = 99;
	n = record_encode(&in, buf, sizeof(buf));
	/* 14 + 16 numbers in 4 bytes + 2 in 8 (billed_cost_pusd, request_hash; ttfb_us -1 is
	 * left out) + 13 strings of 2 + "name-1". */
	CHECK_INT(n, 14 + 16 * 4 + 2 * 8 + 13 * 2 + 9 + 7 + 12 + 8 + 9 + 10 + 5 + 6 + 6 + 17 + 7 + 7 +
			     15);
	memset(&out, 0xAA, sizeof(out));
	out.id = 7;
	out.ts_ns = in.ts_ns;
	CHECK_INT(record_decode(buf, (size_t)n, NULL, &out), 0);
	CHECK_INT(out.id, 7); /* the id lives in the key, not the value */
	check_record_refs_eq(&out, &in);
	CHECK_MEM(out.model.p, out.model.n, "model-1");
	CHECK_MEM(out.error_message.p, out.error_message.n, "error_message-1");
	/* A table changes nothing for inline strings. */
	CHECK_INT(record_decode(buf, (size_t)n, &test_tab, &out), 0);
	check_record_refs_eq(&out, &in);

	/* References: resolved from the table where it holds them, else left with their ref. */
	record_fill_refs(&in, 2);
	n = record_encode(&in, buf, sizeof(buf));
	CHECK_INT(n, 14 + 15 * 4 + 3 * 8 + 5 * 4 + 8 * 2 + 12 + 8 + 10 + 5 + 6 + 6 + 7 + 15);
	memset(&out, 0xAA, sizeof(out));
	out.ts_ns = in.ts_ns;
	CHECK_INT(record_decode(buf, (size_t)n, &test_tab, &out), 1);
	CHECK(out.session.p == NULL && out.session.n == 0);
	CHECK_INT(out.session.ref, 40);
	out.session = in.session;
	check_record_refs_eq(&out, &in);
	CHECK(in_test_tab(&out.agent) && in_test_tab(&out.model) && in_test_tab(&out.process));
	CHECK(out.model.p == out.model_requested.p); /* one entry for both */
	CHECK_INT(out.input_tokens, 0x123456789ll);
	memset(&out, 0xAA, sizeof(out));
	CHECK_INT(record_decode(buf, (size_t)n, NULL, &out), 5);
	CHECK(out.agent.p == NULL && out.agent.n == 0 && out.agent.ref == 1);
	CHECK(out.process.p == NULL && out.process.n == 0 && out.process.ref == 3);

	/* Empty strings and extreme numbers. */
	memset(&in, 0, sizeof(in));
	in.input_tokens = INT64_MIN;
	in.flags = UINT32_MAX;
	in.pid = INT32_MIN;
	n = record_encode(&in, buf, sizeof(buf));
	/* ttfb_us 0, retry_after_s 0, flags in 4 bytes; pid and input_tokens in 8. */
	CHECK_INT(n, 14 + 3 * 4 + 2 * 8);
	CHECK_INT(record_decode(buf, (size_t)n, NULL, &out), 0);
	out.ts_ns = 0;
	check_record_refs_eq(&out, &in);
	CHECK(out.agent.p == NULL);

	/* Too small a buffer, and a NULL string with a length (a reference or not). */
	record_fill(&in, 2);
	n = record_encode(&in, buf, sizeof(buf));
	CHECK(record_encode(&in, buf, 50) < 0);
	CHECK(record_encode(&in, buf, (size_t)n - 1) < 0);
	CHECK_INT(record_encode(&in, buf, (size_t)n), n);
	CHECK_INT(record_encode(NULL, buf, sizeof(buf)), STORE_EINVAL);
	CHECK_INT(record_encode(&in, NULL, sizeof(buf)), STORE_EINVAL);
	in.host.p = NULL;
	CHECK_INT(record_encode(&in, buf, sizeof(buf)), STORE_EINVAL);
	in.host.ref = 5;
	CHECK_INT(record_encode(&in, buf, sizeof(buf)), STORE_EINVAL);
}

/* The encoder never writes past the room it is given: every cap below the record's length is
 * refused, with the buffer just before a PROT_NONE page. */
static void test_record_encode_cap(void)
{
	unsigned char buf[RECORD_ENCODED_MAX];
	struct record in;
	int n, bad = 0;

	record_fill_refs(&in, 3);
	n = record_encode(&in, buf, sizeof(buf));
	CHECK(n > 166);
	for (int cap = 0; cap <= n; cap++) {
		struct guard g;
		unsigned char *p = (unsigned char *)guard_copy(&g, buf, (size_t)cap);
		int rc = record_encode(&in, p, (size_t)cap);

		if (cap < n && rc != STORE_EINVAL)
			bad++;
		if (cap == n && (rc != n || memcmp(p, buf, (size_t)n) != 0))
			bad++;
		guard_free(&g);
	}
	CHECK_INT(bad, 0);
}

static void test_record_cut(void)
{
	static unsigned char buf[RECORD_ENCODED_MAX];
	static char big[13][3000];
	struct record in, out;
	struct record_str *s = &in.process;
	int n;

	memset(&in, 0, sizeof(in));
	for (int i = 0; i < 13; i++) {
		memset(big[i], 'a' + i, sizeof(big[i]));
		s[i].p = big[i];
		s[i].n = sizeof(big[i]);
	}
	/* A two-byte character straddling the cap: cut before it, not through it. */
	memcpy(big[12] + RECORD_STR_MAX - 1, "\xc3\xa9", 2);
	n = record_encode(&in, buf, sizeof(buf));
	CHECK_INT(n, 14 + 2 * 4 + 13 * 2 + 13 * RECORD_STR_MAX - 1);
	CHECK(n > 0 && n <= RECORD_ENCODED_MAX);
	CHECK_INT(record_decode(buf, (size_t)n, NULL, &out), 0);
	const struct record_str *o = &out.process;
	for (int i = 0; i < 12; i++) {
		CHECK_INT(o[i].n, RECORD_STR_MAX);
		CHECK(o[i].n == 0 || (o[i].p[0] == 'a' + i && o[i].p[o[i].n - 1] == 'a' + i));
	}
	CHECK_INT(out.error_message.n, RECORD_STR_MAX - 1);

	/* Bytes that are not UTF-8 at all are cut at the cap. */
	memset(big[12], 0x80, sizeof(big[12]));
	n = record_encode(&in, buf, sizeof(buf));
	CHECK_INT(record_decode(buf, (size_t)n, NULL, &out), 0);
	CHECK_INT(out.error_message.n, RECORD_STR_MAX);

	/* A reference is never cut, nor its bytes read: it is 4 bytes whatever its length. */
	in.error_message.ref = 77;
	CHECK_INT(record_encode(&in, buf, sizeof(buf)), 14 + 2 * 4 + 12 * (2 + RECORD_STR_MAX) + 4);
}

/* Each string of r lies inside [buf, buf + len) or the test table, or is empty. */
static int strings_inside(const struct record *r, const unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < RECORD_NSTRS; i++) {
		const struct record_str *s = record_str_mut((struct record *)r, i);

		if (s->n == 0 || in_test_tab(s))
			continue;
		if ((const unsigned char *)s->p < buf || (const unsigned char *)s->p + s->n > buf + len)
			return 0;
	}
	return 1;
}

/*
 * Every truncation of enc is refused without reading past it, leaving the record as it was;
 * every single-byte change (all 256 values at each offset) decodes or is refused, never reads
 * past the end, and a record it decodes to points inside the bytes or the table. The whole of
 * it decodes with want_rc.
 */
static void check_record_guarded(const unsigned char *enc, size_t len, int want_rc)
{
	struct record out, untouched;
	int bad = 0, rc;

	memset(&untouched, 0x5A, sizeof(untouched));
	for (size_t l = 0; l <= len; l++) {
		struct guard g;
		const unsigned char *p = guard_copy(&g, enc, l);

		memset(&out, 0x5A, sizeof(out));
		rc = record_decode(p, l, &test_tab, &out);
		if (l < len && (rc != STORE_EFORMAT || memcmp(&out, &untouched, sizeof(out)) != 0))
			bad++;
		if (l == len && rc != want_rc)
			bad++;
		guard_free(&g);
	}
	CHECK_INT(bad, 0);
	for (size_t i = 0; i < len; i++) {
		struct guard g;
		unsigned char *p = (unsigned char *)guard_copy(&g, enc, len);

		for (int v = 0; v < 256; v++) {
			p[i] = (unsigned char)v;
			memset(&out, 0x5A, sizeof(out));
			rc = record_decode(p, len, &test_tab, &out);
			if (rc == STORE_EFORMAT ? memcmp(&out, &untouched, sizeof(out)) != 0 :
						  rc < 0 || !strings_inside(&out, p, len)) {
				if (bad++ == 0)
					fprintf(stderr, "byte %zu = %d: %d\n", i, v, rc);
			}
		}
		guard_free(&g);
	}
	CHECK_INT(bad, 0);
}

static void test_record_truncated(void)
{
	unsigned char buf[RECORD_ENCODED_MAX];
	struct record in, out;
	int n;

	test_tab_init();
	/* Version 5: references (3 resolved, 1 not), inline strings, wide and narrow numbers. */
	record_fill_refs(&in, 3);
	n = record_encode(&in, buf, sizeof(buf));
	CHECK(n > 0);
	check_record_guarded(buf, (size_t)n, 1);
	/* Only references and an inline error_message: the decoder's path for usual records. */
	record_defaults(&in);
	in.agent = (struct record_str){ "bot", 3, 1 };
	in.model = (struct record_str){ "gpt-4o", 6, 2 };
	in.host = (struct record_str){ NULL, 0, 40 };
	in.error_message = record_str_of("Rate limit reached");
	in.status = 429;
	n = record_encode(&in, buf, sizeof(buf));
	CHECK_INT(n, 14 + 4 + 3 * 4 + 2 + 18);
	check_record_guarded(buf, (size_t)n, 1);
	/* The old layout. */
	record_fill(&in, 4);
	n = (int)v3_build(buf, &in, 3, 140, 13);
	check_record_guarded(buf, (size_t)n, 0);

	/* A zeroed buffer (version 0) is not a record, nor is less than a version. */
	memset(buf, 0, 200);
	CHECK_INT(record_decode(buf, 200, NULL, &out), STORE_EFORMAT);
	buf[0] = 5;
	CHECK_INT(record_decode(buf, 1, NULL, &out), STORE_EFORMAT);
	CHECK_INT(record_decode(NULL, 14, NULL, &out), STORE_EFORMAT);
	/* A version 5 prefix alone is the record of defaults. */
	memset(&out, 0x5A, sizeof(out));
	CHECK_INT(record_decode(buf, 14, NULL, &out), 0);
	CHECK_INT(out.ttfb_us, -1);
	CHECK_INT(out.retry_after_s, -1);
	CHECK_INT(out.latency_us, 0);
	CHECK(out.model.p == NULL && out.model.n == 0 && out.model.ref == 0);
	CHECK_INT(record_decode(buf, 15, NULL, &out), STORE_EFORMAT); /* a byte too many */
}

/* A prefix for hand-made version 5 records. */
static size_t v5_prefix(unsigned char *b, uint16_t version, uint32_t nums, uint32_t wide,
			uint16_t strs, uint16_t inl)
{
	endian_put_le16(b, version);
	endian_put_le32(b + 2, nums);
	endian_put_le32(b + 6, wide);
	endian_put_le16(b + 10, strs);
	endian_put_le16(b + 12, inl);
	return 14;
}

/*
 * A newer writer's version 5 record: numbers at bits this reader does not know (19, narrow;
 * 31, wide) and strings at bits 13 (inline), 14 (a reference) and 15 (inline, empty) are
 * skipped, each by the width or kind its set gives, and the known fields read as written.
 * A later version number in the same layout reads the same.
 */
static void test_record_newer_v5(void)
{
	unsigned char buf[RECORD_ENCODED_MAX], big[RECORD_ENCODED_MAX + 64];
	struct record in, out;
	uint32_t nums, wide;
	uint16_t strs, inl;
	size_t numlen, pos;
	int n;

	test_tab_init();
	record_fill_refs(&in, 5);
	n = record_encode(&in, buf, sizeof(buf));
	nums = endian_le32(buf + 2);
	wide = endian_le32(buf + 6);
	strs = endian_le16(buf + 10);
	inl = endian_le16(buf + 12);
	CHECK_INT(nums, 0x7FFFD); /* every number but ttfb_us */
	CHECK_INT(wide, (1u << 6) | (1u << 11) | (1u << 12));
	CHECK_INT(strs, 0x1FFF);
	CHECK_INT(inl, 0x1FFF & ~(1u << 0 | 1u << 1 | 1u << 4 | 1u << 9 | 1u << 10));
	numlen = 4 * (size_t)__builtin_popcount(nums) + 4 * (size_t)__builtin_popcount(wide);
	CHECK_INT(numlen, 15 * 4 + 3 * 8);

	v5_prefix(big, 5, nums | 1u << 19 | 1u << 31, wide | 1u << 31, strs | 7u << 13,
		  inl | 1u << 13 | 1u << 15);
	memcpy(big + 14, buf + 14, numlen);
	pos = 14 + numlen;
	endian_put_le32(big + pos, 0xdeadbeef); /* bit 19 */
	endian_put_le64(big + pos + 4, 0x1122334455667788ull); /* bit 31 */
	pos += 12;
	memcpy(big + pos, buf + 14 + numlen, (size_t)n - 14 - numlen);
	pos += (size_t)n - 14 - numlen;
	endian_put_le16(big + pos, 5); /* string 13, inline */
	memcpy(big + pos + 2, "extra", 5);
	endian_put_le32(big + pos + 7, 77); /* string 14, a reference (not counted) */
	endian_put_le16(big + pos + 11, 0); /* string 15, inline and empty */
	pos += 13;
	memset(&out, 0x5A, sizeof(out));
	out.ts_ns = in.ts_ns;
	CHECK_INT(record_decode(big, pos, &test_tab, &out), 1); /* the session, 40 */
	out.session = in.session;
	check_record_refs_eq(&out, &in);
	check_record_guarded(big, pos, 1);
	/* Versions 6, 9 and 65535 in this layout: the same. */
	static const uint16_t later[] = { 6, 9, 65535 };
	for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
		endian_put_le16(big, later[i]);
		memset(&out, 0x5A, sizeof(out));
		out.ts_ns = in.ts_ns;
		CHECK_INT(record_decode(big, pos, &test_tab, &out), 1);
		out.session = in.session;
		check_record_refs_eq(&out, &in);
	}
	/* An unknown string written as reference 0 is refused like a known one. */
	endian_put_le16(big, 5);
	endian_put_le32(big + pos - 13 + 7, 0);
	CHECK_INT(record_decode(big, pos, &test_tab, &out), STORE_EFORMAT);
}

/* Sets that contradict each other, a reference 0, a length past the end: refused, and the
 * record left as it was. */
static void test_record_refused(void)
{
	unsigned char b[64];
	struct record out, untouched;
	size_t pos;

	memset(&untouched, 0x5A, sizeof(untouched));
#define REFUSED(len)                                                                   \
	do {                                                                           \
		memset(&out, 0x5A, sizeof(out));                                       \
		CHECK_INT(record_decode(b, (len), NULL, &out), STORE_EFORMAT);         \
		CHECK(memcmp(&out, &untouched, sizeof(out)) == 0);                     \
	} while (0)

	/* A wide bit without its number bit: bit 3 (status) wide, only bit 0 present. With the
	 * bytes both readings would need, 4 + 8, and those for the numbers set alone, 4. */
	pos = v5_prefix(b, 5, 1u << 0, 1u << 3, 0, 0);
	memset(b + pos, 1, 12);
	REFUSED(pos + 12);
	REFUSED(pos + 4);
	/* The same with room for exactly what the numbers set alone needs, and an inline
	 * string after it: refused for the wide bit alone. */
	pos = v5_prefix(b, 5, 1u << 0, 1u << 3, 1u << 12, 1u << 12);
	memcpy(b + pos, "\x07\0\0\0\x02\0ab", 8);
	REFUSED(pos + 8);
	/* A wide bit of an unknown number without its number bit. */
	v5_prefix(b, 5, 1u << 0, 1u << 0 | 1u << 25, 0, 0);
	REFUSED(pos + 8);
	/* An inline bit without its string bit: agent inline, only the process present. */
	pos = v5_prefix(b, 5, 0, 0, 1u << 0, 1u << 0 | 1u << 1);
	memcpy(b + pos, "\x01\0p\x01\0a", 6);
	REFUSED(pos + 6);
	REFUSED(pos + 3);
	/* An unknown string's inline bit alone. */
	v5_prefix(b, 5, 0, 0, 1u << 0, 1u << 0 | 1u << 15);
	REFUSED(pos + 3);
	/* Reference 0, on each path of the decoder: references only (agent), references and an
	 * inline error_message, error_message as a reference, and after an inline string. */
	pos = v5_prefix(b, 5, 0, 0, 1u << 1, 0);
	memset(b + pos, 0, 4);
	REFUSED(pos + 4);
	pos = v5_prefix(b, 5, 0, 0, 1u << 1 | 1u << 12, 1u << 12);
	memcpy(b + pos, "\0\0\0\0\x01\0e", 7);
	REFUSED(pos + 7);
	pos = v5_prefix(b, 5, 0, 0, 1u << 1 | 1u << 12, 0);
	memcpy(b + pos, "\x01\0\0\0\0\0\0\0", 8);
	REFUSED(pos + 8);
	pos = v5_prefix(b, 5, 0, 0, 1u << 0 | 1u << 1, 1u << 0);
	memcpy(b + pos, "\x01\0p\0\0\0\0", 7);
	REFUSED(pos + 7);
	/* The same records with reference 1 decode (the checks above refuse for the 0 alone). */
	memcpy(b + pos, "\x01\0p\x01\0\0\0", 7);
	memset(&out, 0x5A, sizeof(out));
	CHECK_INT(record_decode(b, pos + 7, NULL, &out), 1);
	CHECK_MEM(out.process.p, out.process.n, "p");
	CHECK_INT(out.agent.ref, 1);
	pos = v5_prefix(b, 5, 0, 0, 1u << 1 | 1u << 12, 0);
	memcpy(b + pos, "\x01\0\0\0\x02\0\0\0", 8);
	CHECK_INT(record_decode(b, pos + 8, NULL, &out), 2);
	CHECK_INT(out.error_message.ref, 2);
	/* An inline length past the end, and numbers the value has no room for. */
	pos = v5_prefix(b, 5, 0, 0, 1u << 12, 1u << 12);
	memcpy(b + pos, "\x05\0abcd", 6);
	REFUSED(pos + 6);
	pos = v5_prefix(b, 5, 0xFFFFFFFFu, 0xFFFFFFFFu, 0, 0);
	memset(b + pos, 0, sizeof(b) - pos);
	REFUSED(sizeof(b));
#undef REFUSED
}

/* Versions 1 to 3, the layout of stores of format 1 and 2: built by hand (record_encode no
 * longer writes it), read with every field, older headers giving defaults, a newer writer's
 * longer header and extra strings skipped. */
static void test_record_versions(void)
{
	unsigned char buf[RECORD_ENCODED_MAX + 64], again[RECORD_ENCODED_MAX];
	struct record in, out, back;
	size_t n, pos;
	int m;

	/* Version 3: every field, ts_ns from the value. */
	record_fill(&in, 4);
	n = v3_build(buf, &in, 3, 140, 13);
	CHECK_INT(n, 140 + 2 + 13 * 2 + 9 + 7 + 12 + 8 + 9 + 10 + 5 + 6 + 6 + 17 + 7 + 7 + 15);
	memset(&out, 0xAA, sizeof(out));
	out.id = 3;
	CHECK_INT(record_decode(buf, n, NULL, &out), 0);
	CHECK_INT(out.id, 3);
	check_record_refs_eq(&out, &in);
	CHECK_INT(record_decode(buf, n, &test_tab, &out), 0);
	check_record_refs_eq(&out, &in);
	/* read, then written as version 5 and read again: the same record */
	m = record_encode(&out, again, sizeof(again));
	CHECK(m > 0);
	CHECK_INT(endian_le16(again), 5);
	memset(&back, 0xAA, sizeof(back));
	back.ts_ns = in.ts_ns;
	CHECK_INT(record_decode(again, (size_t)m, NULL, &back), 0);
	check_record_refs_eq(&back, &in);
	/* Version 4 was never written; it would have been of this layout. */
	endian_put_le16(buf, 4);
	CHECK_INT(record_decode(buf, n, NULL, &out), 0);
	check_record_refs_eq(&out, &in);

	/* A newer writer of this layout: 8 more header bytes and a 14th string, both skipped. */
	n = v3_build(buf, &in, 3, 148, 13);
	endian_put_le64(buf + 140, 0x1122334455667788ull);
	endian_put_le16(buf + 148, 14);
	endian_put_le16(buf + n, 5);
	memcpy(buf + n + 2, "extra", 5);
	n += 7;
	check_record_guarded(buf, n, 0);
	memset(&out, 0xAA, sizeof(out));
	CHECK_INT(record_decode(buf, n, NULL, &out), 0);
	check_record_refs_eq(&out, &in);

	/* A version 2 writer: the 112-byte header, without the version 3 fields (default 0). */
	n = v3_build(buf, &in, 2, 112, 13);
	memset(&out, 0xAA, sizeof(out));
	CHECK_INT(record_decode(buf, n, NULL, &out), 0);
	CHECK_INT(out.billed_input_tokens, 0);
	CHECK_INT(out.billed_output_tokens, 0);
	CHECK_INT(out.cache_write_1h_tokens, 0);
	CHECK_INT(out.service_tier, RECORD_TIER_UNKNOWN);
	CHECK_INT(out.search_queries, in.search_queries);
	CHECK_INT(out.search_context, RECORD_SEARCH_HIGH);
	CHECK_INT(out.ts_ns, in.ts_ns);
	CHECK_MEM(out.error_message.p, out.error_message.n, "error_message-4");

	/* A version 1 writer: the 100-byte header, without the search fields (default 0). */
	n = v3_build(buf, &in, 1, 100, 13);
	CHECK_INT(record_decode(buf, n, NULL, &out), 0);
	CHECK_INT(out.search_queries, 0);
	CHECK_INT(out.search_context, RECORD_SEARCH_UNKNOWN);
	CHECK_INT(out.reasoning_tokens, in.reasoning_tokens);
	CHECK(out.request_hash == in.request_hash);
	CHECK_MEM(out.error_message.p, out.error_message.n, "error_message-4");

	/* An older writer: a header with ts_ns only, and two strings. */
	in.ts_ns = 123456789;
	in.process = record_str_of("proc");
	in.agent = record_str_of("agent");
	n = v3_build(buf, &in, 1, 12, 2);
	CHECK_INT(n, 27);
	CHECK_INT(record_decode(buf, 27, NULL, &out), 0);
	CHECK_INT(out.ts_ns, 123456789);
	CHECK_INT(out.ttfb_us, -1);
	CHECK_INT(out.retry_after_s, -1);
	CHECK_INT(out.input_tokens, 0);
	CHECK_INT(out.flags, 0);
	CHECK_MEM(out.process.p, out.process.n, "proc");
	CHECK_MEM(out.agent.p, out.agent.n, "agent");
	CHECK_INT(out.model.n, 0);
	CHECK_INT(out.model.ref, 0);
	/* Trailing bytes after the strings are damage. */
	buf[27] = 0;
	CHECK_INT(record_decode(buf, 28, NULL, &out), STORE_EFORMAT);
	/* A header length below the 4 bytes that state it, or past the end. */
	endian_put_le16(buf + 2, 3);
	CHECK_INT(record_decode(buf, 27, NULL, &out), STORE_EFORMAT);
	endian_put_le16(buf + 2, 28);
	CHECK_INT(record_decode(buf, 27, NULL, &out), STORE_EFORMAT);
	/* A string count past the strings there are. */
	pos = v3_build(buf, &in, 1, 12, 2);
	endian_put_le16(buf + 12, 3);
	CHECK_INT(record_decode(buf, pos, NULL, &out), STORE_EFORMAT);
}

static void test_record_helpers(void)
{
	struct record_str s = record_str_of(NULL);

	CHECK_INT(s.n, 0);
	s = record_str_of("abc");
	CHECK_MEM(s.p, s.n, "abc");
	CHECK(record_hash("", 0) == 0xcbf29ce484222325ull);
	CHECK(record_hash("a", 1) == 0xaf63dc4c8601ec8cull);
	CHECK(record_hash("foobar", 6) == 0x85944171f73967e8ull);
	CHECK_INT(record_tier_of("default", 7), RECORD_TIER_DEFAULT);
	CHECK_INT(record_tier_of("flex", 4), RECORD_TIER_FLEX);
	CHECK_INT(record_tier_of("priority", 8), RECORD_TIER_PRIORITY);
	CHECK_INT(record_tier_of("scale", 5), RECORD_TIER_SCALE);
	CHECK_INT(record_tier_of("auto", 4), RECORD_TIER_UNKNOWN);
	CHECK_INT(record_tier_of("flexible", 4), RECORD_TIER_FLEX); /* n bytes, not NUL */
	CHECK_INT(record_tier_of("flex", 3), RECORD_TIER_UNKNOWN);
	CHECK_INT(record_tier_of(NULL, 0), RECORD_TIER_UNKNOWN);
	CHECK_STR(record_tier_name(RECORD_TIER_PRIORITY), "priority");
	CHECK(record_tier_name(RECORD_TIER_UNKNOWN) == NULL);
	CHECK(record_tier_name(99) == NULL);
	CHECK(record_tier_name(-1) == NULL);
}

static void test_strerror(void)
{
	int codes[] = { STORE_OK,	 STORE_ENOENT, STORE_EFORMAT, STORE_EFULL,  STORE_ENOTFOUND,
			STORE_EIO,	 STORE_ENOMEM, STORE_EINVAL,  STORE_EACCES };
	size_t n = sizeof(codes) / sizeof(codes[0]);

	for (size_t i = 0; i < n; i++) {
		CHECK(strcmp(store_strerror(codes[i]), "unknown error") != 0);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(store_strerror(codes[i]), store_strerror(codes[j])) != 0);
	}
	CHECK_STR(store_strerror(-1), "unknown error");
}

/* Collects what a scan returns. */
struct seen {
	int n, cap;
	uint64_t ids[2000];
	int64_t ts[2000];
	int64_t in_sum, out_sum;
	int stop_after;
};

static int seen_add(const struct record *r, void *arg)
{
	struct seen *s = arg;

	if (s->n < (int)(sizeof(s->ids) / sizeof(s->ids[0]))) {
		s->ids[s->n] = r->id;
		s->ts[s->n] = r->ts_ns;
	}
	s->n++;
	s->in_sum += r->input_tokens;
	s->out_sum += r->output_tokens;
	return s->stop_after && s->n >= s->stop_after ? 77 : 0;
}

static void test_append_scan(void)
{
	enum { N = 60 };
	const char *path = tmp_path("deep/er/usage.mdb");
	struct store *st;
	struct record r;
	int64_t ts[N + 1];
	struct seen s;
	int rc;

	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		return;
	/* Out-of-order times with duplicates: ts of id k is ((k * 37) % 20) * 10. */
	for (int k = 1; k <= N; k++) {
		record_fill(&r, k);
		r.ts_ns = ((k * 37) % 20) * 10;
		ts[k] = r.ts_ns;
		CHECK_INT(store_append(st, &r, NULL, NULL, 0), 0);
		CHECK_INT(r.id, k);
		CHECK_INT(r.flags & RECORD_PAYLOAD, 0);
	}
	memset(&s, 0, sizeof(s));
	CHECK_INT(store_scan(st, INT64_MIN, INT64_MAX, seen_add, &s), 0);
	CHECK_INT(s.n, N);
	for (int i = 1; i < s.n && i < N; i++)
		CHECK(s.ts[i - 1] < s.ts[i] || (s.ts[i - 1] == s.ts[i] && s.ids[i - 1] < s.ids[i]));
	for (int i = 0; i < s.n && i < N; i++)
		CHECK_INT(s.ts[i], ts[s.ids[i]]);

	/* Bounds: since is inclusive, until exclusive, against a reference count. */
	for (int64_t since = -10; since <= 200; since += 30) {
		for (int64_t until = since; until <= 210; until += 20) {
			int want = 0;

			for (int k = 1; k <= N; k++)
				want += ts[k] >= since && ts[k] < until;
			memset(&s, 0, sizeof(s));
			CHECK_INT(store_scan(st, since, until, seen_add, &s), 0);
			CHECK_INT(s.n, want);
			for (int i = 0; i < s.n; i++)
				CHECK(s.ts[i] >= since && s.ts[i] < until);
		}
	}
	/* A callback's non-zero value stops the scan and is returned. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 5;
	CHECK_INT(store_scan(st, 0, INT64_MAX, seen_add, &s), 77);
	CHECK_INT(s.n, 5);

	/* A negative time is refused, and so is a counter without a name. */
	record_fill(&r, 0);
	r.ts_ns = -1;
	CHECK_INT(store_append(st, &r, NULL, NULL, 0), STORE_EINVAL);
	r.ts_ns = 1;
	struct store_counter_delta bad = { NULL, 1 };
	CHECK_INT(store_append(st, &r, NULL, &bad, 1), STORE_EINVAL);
	rc = store_append(st, &r, NULL, NULL, 0);
	CHECK_INT(rc, 0);
	CHECK_INT(r.id, N + 1);
	store_close(st);
}

struct got {
	struct record rec;
	char strs[13][64];
	int calls;
};

static int got_copy(const struct record *r, void *arg)
{
	struct got *g = arg;
	struct record_str *d = &g->rec.process;
	const struct record_str *s = &r->process;

	g->rec = *r;
	for (int i = 0; i < 13; i++) {
		uint32_t n = s[i].n < 63 ? s[i].n : 63;
		if (n)
			memcpy(g->strs[i], s[i].p, n);
		d[i].p = g->strs[i];
		d[i].n = n;
	}
	g->calls++;
	return 0;
}

static void test_get(void)
{
	const char *path = tmp_path("get.mdb");
	struct store *st;
	struct record r[5];
	struct got g;

	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		return;
	for (int k = 0; k < 5; k++) {
		record_fill(&r[k], k);
		r[k].ts_ns = 1000 - k; /* ids and times run opposite ways */
		CHECK_INT(store_append(st, &r[k], NULL, NULL, 0), 0);
	}
	for (int k = 0; k < 5; k++) {
		memset(&g, 0, sizeof(g));
		CHECK_INT(store_get(st, r[k].id, got_copy, &g), 0);
		CHECK_INT(g.calls, 1);
		CHECK_INT(g.rec.id, r[k].id);
		record_fill(&r[k], k);
		r[k].ts_ns = 1000 - k;
		check_record_eq(&g.rec, &r[k]);
	}
	memset(&g, 0, sizeof(g));
	CHECK_INT(store_get(st, 0, got_copy, &g), STORE_ENOTFOUND);
	CHECK_INT(store_get(st, 6, got_copy, &g), STORE_ENOTFOUND);
	CHECK_INT(g.calls, 0);
	store_close(st);
}

/* Text that compresses like a JSON body but is not one repeated byte. */
static char *make_body(size_t n, unsigned seed)
{
	char *b = malloc(n);
	static const char *words[] = { "{\"role\":", "\"assistant\"", ",\"content\":\"",
				       "tokens ", "cache ", "model ", "\\n", "}", "[1,2,3]" };

	for (size_t i = 0; i < n;) {
		const char *w = words[(seed = seed * 1103515245u + 12345u) >> 16 & 7];
		size_t l = strlen(w);

		if (l > n - i)
			l = n - i;
		memcpy(b + i, w, l);
		i += l;
	}
	return b;
}

static void check_payload_eq(const struct payload *a, const struct payload *b)
{
	const struct record_str *pa[4] = { &a->req_head, &a->req_body, &a->resp_head, &a->resp_body };
	const struct record_str *pb[4] = { &b->req_head, &b->req_body, &b->resp_head, &b->resp_body };

	for (int i = 0; i < 4; i++) {
		CHECK_INT(pa[i]->n, pb[i]->n);
		CHECK(pa[i]->n == pb[i]->n &&
		      (pa[i]->n == 0 || memcmp(pa[i]->p, pb[i]->p, pa[i]->n) == 0));
	}
	CHECK(a->req_body_size == b->req_body_size);
	CHECK(a->resp_body_size == b->resp_body_size);
}

static void test_payload(void)
{
	const char *path = tmp_path("payload.mdb");
	size_t big = 5u << 20;
	char *body = make_body(big, 1), *req = make_body(3000, 2);
	struct payload in, out, empty;
	struct store_info info;
	struct store *st;
	struct record r;

	memset(&in, 0, sizeof(in));
	in.req_head = record_str_of("POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
				    "Authorization: [redacted]\r\n");
	in.req_body.p = req;
	in.req_body.n = 3000;
	in.resp_head = record_str_of("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n");
	in.resp_body.p = body;
	in.resp_body.n = (uint32_t)big;
	in.req_body_size = 3000;
	in.resp_body_size = 9ull << 30; /* the whole size may exceed what was kept */
	memset(&empty, 0, sizeof(empty));

	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		goto out;
	record_fill(&r, 1);
	CHECK_INT(store_append(st, &r, &in, NULL, 0), 0);
	CHECK(r.flags & RECORD_PAYLOAD);
	record_fill(&r, 2);
	r.flags |= RECORD_PAYLOAD; /* claimed without a payload: cleared */
	CHECK_INT(store_append(st, &r, NULL, NULL, 0), 0);
	CHECK_INT(r.flags & RECORD_PAYLOAD, 0);
	record_fill(&r, 3);
	CHECK_INT(store_append(st, &r, &empty, NULL, 0), 0);

	CHECK_INT(store_payload_get(st, 1, &out), 0);
	check_payload_eq(&out, &in);
	payload_release(&out);
	payload_release(&out); /* harmless twice */
	CHECK_INT(store_payload_get(st, 2, &out), STORE_ENOTFOUND);
	CHECK(out.resp_body.p == NULL && out.owner_ == NULL);
	payload_release(&out);
	CHECK_INT(store_payload_get(st, 3, &out), 0);
	check_payload_eq(&out, &empty);
	payload_release(&out);
	CHECK_INT(store_payload_get(st, 99, &out), STORE_ENOTFOUND);

	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.records, 3);
	CHECK_INT(info.payloads, 2);
	/* 5 MiB of JSON-like text compressed: the file stays far below it. */
	CHECK(info.file_bytes < big / 2);

	/* A NULL part with a length is refused, and nothing is written. */
	in.req_head.p = NULL;
	record_fill(&r, 4);
	CHECK_INT(store_append(st, &r, &in, NULL, 0), STORE_EINVAL);
	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.records, 3);
	store_close(st);
out:
	free(body);
	free(req);
}

/* Every truncation of enc is refused without reading past it; every flipped byte decodes or
 * is refused, never crashes; the whole of it decodes to in. */
static void check_decode_guarded(const unsigned char *enc, size_t len, const struct payload *in)
{
	struct payload out;
	int bad = 0;

	for (size_t l = 0; l <= len; l++) {
		struct guard g;
		const unsigned char *p = guard_copy(&g, enc, l);
		int rc = payload_decode(p, l, &out);

		if (l < len && rc != STORE_EFORMAT)
			bad++;
		if (l == len) {
			CHECK_INT(rc, 0);
			check_payload_eq(&out, in);
		}
		payload_release(&out);
		guard_free(&g);
	}
	CHECK_INT(bad, 0);
	/* Corrupt lengths never make it allocate past the cap or read past the end. */
	for (size_t i = 0; i < len; i++) {
		struct guard g;
		unsigned char *p = (unsigned char *)guard_copy(&g, enc, len);
		int rc;

		p[i] ^= 0xFF;
		rc = payload_decode(p, len, &out);
		CHECK(rc == 0 || rc == STORE_EFORMAT);
		payload_release(&out);
		guard_free(&g);
	}
}

static void test_payload_decode_guarded(void)
{
	struct payload_coder pc;
	struct payload in;
	unsigned char *enc;
	char *body = make_body(3000, 7);
	size_t len;

	memset(&in, 0, sizeof(in));
	in.req_head = record_str_of("GET / HTTP/1.1\r\n");
	in.req_body = record_str_of("{\"model\":\"gpt-4o\",\"messages\":[]}");
	in.resp_head = record_str_of("HTTP/1.1 200 OK\r\n");
	in.resp_body = record_str_of("{\"usage\":{\"prompt_tokens\":3}}");
	CHECK_INT(payload_coder_init(&pc), 0);
	/* Small: a stored frame. */
	CHECK_INT(payload_encode(&pc, &in, &enc, &len), 0);
	check_decode_guarded(enc, len, &in);
	free(enc);
	/* Large: a compressed one. */
	in.resp_body = (struct record_str){ body, 3000, 0 };
	CHECK_INT(payload_encode(&pc, &in, &enc, &len), 0);
	CHECK(len < 1000);
	check_decode_guarded(enc, len, &in);
	free(enc);
	payload_coder_release(&pc);
	free(body);
}

/*
 * Payloads under 1 KiB are stored uncompressed in a zstd frame of one raw block: exactly 36 +
 * 12 + their bytes, and a plain zstd decoder reads the frame back. From 1 KiB they are
 * compressed. A small payload compressed by zstd, as every payload was written before,
 * still decodes (old stores read unchanged).
 */
static void test_payload_stored(void)
{
	static const size_t sizes[] = { 0, 1, 500, 1023, 1024, 4000 };
	struct payload_coder pc;
	struct payload in, out;
	char *body = make_body(4000, 11), raw[4000];
	unsigned char *enc, old[512];
	size_t len, n;

	CHECK_INT(payload_coder_init(&pc), 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		memset(&in, 0, sizeof(in));
		in.resp_body = (struct record_str){ sizes[i] ? body : NULL, (uint32_t)sizes[i], 0 };
		in.resp_body_size = sizes[i] + 5;
		CHECK_INT(payload_encode(&pc, &in, &enc, &len), 0);
		if (sizes[i] < 1024) {
			CHECK_INT(len, 36 + 12 + sizes[i]);
			CHECK(memcmp(enc + 36 + 12, body, sizes[i]) == 0);
		} else {
			CHECK(len < sizes[i] / 2);
		}
		n = ZSTD_decompress(raw, sizeof(raw), enc + 36, len - 36);
		CHECK(!ZSTD_isError(n) && n == sizes[i] && memcmp(raw, body, n) == 0);
		CHECK_INT(payload_decode(enc, len, &out), 0);
		check_payload_eq(&out, &in);
		payload_release(&out);
		free(enc);
	}
	/* An old writer's payload: the same header, then the parts compressed at level 1. */
	memset(&in, 0, sizeof(in));
	in.req_head = record_str_of("POST /v1/chat/completions HTTP/1.1\r\n");
	in.req_body = (struct record_str){ body, 200, 0 };
	memcpy(raw, in.req_head.p, in.req_head.n);
	memcpy(raw + in.req_head.n, body, 200);
	memset(old, 0, 36);
	endian_put_le16(old, 1);
	endian_put_le16(old + 2, 36);
	endian_put_le32(old + 4, in.req_head.n);
	endian_put_le32(old + 8, 200);
	n = ZSTD_compress(old + 36, sizeof(old) - 36, raw, in.req_head.n + 200, 1);
	CHECK(!ZSTD_isError(n) && old[36 + 4] != 0xA0);
	CHECK_INT(payload_decode(old, 36 + n, &out), 0);
	check_payload_eq(&out, &in);
	payload_release(&out);
	payload_coder_release(&pc);
	free(body);
}

/*
 * store_info's payload sizes: the bytes as stored (header and frame, exactly 36 + 12 + n for a
 * payload kept uncompressed), the bytes of heads and bodies they hold, and how many are kept
 * uncompressed (under 1 KiB) rather than compressed. payload_sizes reads an old writer's
 * compressed small payload as compressed.
 */
static void test_info_payload_sizes(void)
{
	static const size_t sizes[] = { 1, 500, 1023, 4000 };
	const char *path = tmp_path("paysizes/usage.mdb");
	struct payload_coder pc;
	struct store_info info;
	struct payload in;
	struct store *st;
	struct record r;
	char *body = make_body(4000, 5);
	unsigned char *enc, old[512];
	uint64_t raw = 0, stored = 0;
	size_t len, n;
	int kept = -1;

	CHECK_INT(payload_coder_init(&pc), 0);
	CHECK_INT(store_open(&st, path, STORE_CREATE, 64u << 20), 0);
	if (st == NULL)
		return;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		memset(&in, 0, sizeof(in));
		in.req_head = record_str_of("POST /v1 HTTP/1.1\r\n"); /* 19 bytes */
		in.resp_body = (struct record_str){ body, (uint32_t)sizes[i], 0 };
		record_fill(&r, (int)i);
		CHECK_INT(store_append(st, &r, &in, NULL, 0), 0);
		CHECK_INT(payload_encode(&pc, &in, &enc, &len), 0);
		CHECK_INT(payload_sizes(enc, len, &raw, &kept), 0);
		CHECK_INT(raw, 19 + sizes[i]);
		CHECK_INT(kept, 19 + sizes[i] < 1024);
		if (kept)
			CHECK_INT(len, 48 + raw);
		else
			CHECK(len < raw);
		stored += len; /* the encoder is deterministic: as store_append wrote it */
		free(enc);
	}
	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.payloads, 4);
	CHECK_INT(info.payloads_kept, 2); /* 20 and 519 bytes; 1042 and 4019 are compressed */
	CHECK_INT(info.payload_raw_bytes, 4 * 19 + 1 + 500 + 1023 + 4000);
	CHECK_INT(info.payload_bytes, stored);
	store_close(st);
	/* An old writer's small payload, compressed: compressed, whatever its size. */
	memset(old, 0, 36);
	endian_put_le16(old, 1);
	endian_put_le16(old + 2, 36);
	endian_put_le32(old + 16, 200);
	n = ZSTD_compress(old + 36, sizeof(old) - 36, body, 200, 1);
	CHECK(!ZSTD_isError(n));
	CHECK_INT(payload_sizes(old, 36 + n, &raw, &kept), 0);
	CHECK_INT(raw, 200);
	CHECK_INT(kept, 0);
	CHECK_INT(payload_sizes(old, 36 + 4, &raw, &kept), STORE_EFORMAT);
	payload_coder_release(&pc);
	free(body);
}

struct counters_seen {
	int n;
	char names[8][64];
	int64_t values[8];
};

static int counter_add(const char *name, int64_t value, void *arg)
{
	struct counters_seen *c = arg;

	if (c->n < 8) {
		snprintf(c->names[c->n], sizeof(c->names[0]), "%s", name);
		c->values[c->n] = value;
	}
	c->n++;
	return 0;
}

static void test_counters(void)
{
	const char *path = tmp_path("counters.mdb");
	struct store_counter_delta d1[] = { { "dropped.parse_error", 1 }, { "budget.a", 500 } };
	struct store_counter_delta d2[] = { { "budget.a", -200 }, { "appends", 1 } };
	struct counters_seen c;
	struct store *st;
	struct record r;

	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		return;
	memset(&c, 0, sizeof(c));
	CHECK_INT(store_counters_scan(st, counter_add, &c), 0);
	CHECK_INT(c.n, 0);
	CHECK_INT(store_counters_add(st, d1, 2), 0);
	CHECK_INT(store_counters_add(st, d1, 1), 0);
	record_fill(&r, 1);
	CHECK_INT(store_append(st, &r, NULL, d2, 2), 0);
	CHECK_INT(store_counters_add(st, NULL, 0), 0);
	memset(&c, 0, sizeof(c));
	CHECK_INT(store_counters_scan(st, counter_add, &c), 0);
	CHECK_INT(c.n, 3);
	CHECK_STR(c.names[0], "appends");
	CHECK_INT(c.values[0], 1);
	CHECK_STR(c.names[1], "budget.a");
	CHECK_INT(c.values[1], 300);
	CHECK_STR(c.names[2], "dropped.parse_error");
	CHECK_INT(c.values[2], 2);
	store_close(st);
}

static void test_info_and_modes(void)
{
	const char *path = tmp_path("modes/usage.mdb");
	char lock[600], dir[600];
	struct store_info info;
	struct store *st;
	struct record r;
	struct stat sb;

	CHECK_INT(store_open(&st, path, STORE_CREATE, 64u << 20), 0);
	if (st == NULL)
		return;
	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.records, 0);
	CHECK_INT(info.next_id, 1);
	CHECK_INT(info.format, 3);
	CHECK_INT(info.strings, 0);
	CHECK_INT(info.map_bytes, 64u << 20);
	for (int k = 0; k < 3; k++) {
		record_fill(&r, k);
		CHECK_INT(store_append(st, &r, NULL, NULL, 0), 0);
	}
	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.records, 3);
	CHECK_INT(info.payloads, 0);
	CHECK_INT(info.next_id, 4);
	CHECK(info.file_bytes >= 4096 * 2);
	store_close(st);

	snprintf(lock, sizeof(lock), "%s-lock", path);
	CHECK_INT(stat(path, &sb), 0);
	CHECK_INT(sb.st_mode & 0777, 0600);
	CHECK_INT(stat(lock, &sb), 0);
	CHECK_INT(sb.st_mode & 0777, 0600);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	CHECK_INT(stat(dir, &sb), 0);
	CHECK_INT(sb.st_mode & 0777, 0700);

	/* A reader sees the same numbers; the map cap is the file's. */
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	if (st == NULL)
		return;
	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.records, 3);
	CHECK_INT(info.next_id, 4);
	record_fill(&r, 9);
	CHECK(store_append(st, &r, NULL, NULL, 0) != 0);
	store_close(st);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		perror(path);
		exit(2);
	}
	close(fd);
}

static int exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static void test_foreign_and_missing(void)
{
	const char *path = tmp_path("foreign.mdb");
	unsigned char junk[65536];
	unsigned seed = 7;
	char lock[600];
	struct store *st = (struct store *)1;

	CHECK_INT(store_open(&st, tmp_path("none.mdb"), STORE_READONLY, 0), STORE_ENOENT);
	CHECK(st == NULL);
	CHECK_INT(store_open(&st, tmp_path("none/none.mdb"), STORE_READONLY, 0), STORE_ENOENT);
	CHECK_INT(store_open(&st, tmp_path("none.mdb"), 0, 0), STORE_ENOENT);
	CHECK_INT(store_open(&st, "", STORE_READONLY, 0), STORE_EINVAL);
	CHECK_INT(store_open(&st, tmp_path("x"), STORE_READONLY | STORE_CREATE, 0), STORE_EINVAL);
	CHECK_INT(store_open(&st, tmp_root, STORE_READONLY, 0), STORE_EFORMAT); /* a folder */

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)((seed = seed * 1103515245u + 12345u) >> 16);
	write_file(path, junk, sizeof(junk));
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), STORE_EFORMAT);
	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), STORE_EFORMAT);
	snprintf(lock, sizeof(lock), "%s-lock", path);
	CHECK(!exists(lock)); /* refused before LMDB left a lock file beside it */

	write_file(path, "hello, world\n", 13);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), STORE_EFORMAT);
	CHECK_INT(store_open(&st, path, 0, 0), STORE_EFORMAT);

	/* Zero length: nothing for a reader; a writer takes it as a creation cut short. */
	write_file(path, "", 0);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), STORE_EFORMAT);
	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	store_close(st);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	store_close(st);

	/* An unreadable file. Root reads anything, so only checked when not root. */
	if (geteuid() != 0) {
		chmod(path, 0);
		CHECK_INT(store_open(&st, path, STORE_READONLY, 0), STORE_EACCES);
		chmod(path, 0600);
	}
}

/* An LMDB file of someone else: a key in the main database, no tokshim meta. */
static void test_foreign_lmdb(void)
{
	const char *path = tmp_path("other.mdb");
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 3, "key" }, v = { 5, "value" };
	struct store *st;

	mdb_env_create(&env);
	CHECK_INT(mdb_env_open(env, path, MDB_NOSUBDIR, 0600), 0);
	mdb_txn_begin(env, NULL, 0, &txn);
	mdb_dbi_open(txn, NULL, 0, &dbi);
	mdb_put(txn, dbi, &k, &v, 0);
	CHECK_INT(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), STORE_EFORMAT);
	CHECK_INT(store_open(&st, path, 0, 0), STORE_EFORMAT);

	/* A "meta" that is a plain key, not a database. */
	path = tmp_path("other2.mdb");
	mdb_env_create(&env);
	CHECK_INT(mdb_env_open(env, path, MDB_NOSUBDIR, 0600), 0);
	mdb_txn_begin(env, NULL, 0, &txn);
	mdb_dbi_open(txn, NULL, 0, &dbi);
	k = (MDB_val){ 4, "meta" };
	mdb_put(txn, dbi, &k, &v, 0);
	CHECK_INT(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), STORE_EFORMAT);
	CHECK_INT(store_open(&st, path, 0, 0), STORE_EFORMAT);
}

/* A reader opened on an LMDB file whose writer has not created the store yet. */
static void test_reader_before_writer(void)
{
	const char *path = tmp_path("early.mdb");
	struct store *rd, *wr;
	struct store_info info;
	struct counters_seen c;
	struct record r;
	struct seen s;
	struct got g;
	MDB_env *env;

	mdb_env_create(&env);
	CHECK_INT(mdb_env_open(env, path, MDB_NOSUBDIR, 0600), 0);
	mdb_env_close(env);
	CHECK_INT(store_open(&rd, path, STORE_READONLY, 0), 0);
	if (rd == NULL)
		return;
	memset(&s, 0, sizeof(s));
	CHECK_INT(store_scan(rd, 0, INT64_MAX, seen_add, &s), 0);
	CHECK_INT(s.n, 0);
	CHECK_INT(store_info(rd, &info), 0);
	CHECK_INT(info.records, 0);
	memset(&c, 0, sizeof(c));
	CHECK_INT(store_counters_scan(rd, counter_add, &c), 0);
	CHECK_INT(store_get(rd, 1, got_copy, &g), STORE_ENOTFOUND);

	CHECK_INT(store_open(&wr, path, 0, 0), 0);
	record_fill(&r, 1);
	CHECK_INT(store_append(wr, &r, NULL, NULL, 0), 0);
	store_close(wr);
	memset(&s, 0, sizeof(s));
	CHECK_INT(store_scan(rd, 0, INT64_MAX, seen_add, &s), 0);
	CHECK_INT(s.n, 1);
	store_close(rd);
}

static int copy_prefix(const char *from, const char *to, size_t len)
{
	size_t n;
	char *data = check_read_file(from, &n);

	if (data == NULL)
		return -1;
	if (len > n)
		len = n;
	write_file(to, data, len);
	free(data);
	return (int)n;
}

/* Truncated copies of a real store: refused, never SIGBUS; or, when the part cut held only
 * pages no tree reaches (free ones), read whole. */
static void test_truncated_file(void)
{
	char path[512];
	struct store *st;
	struct record r;
	struct seen s;
	size_t size;
	int bad = 0;

	/* tmp_path's buffers rotate: this one is needed across many calls. */
	snprintf(path, sizeof(path), "%s", tmp_path("full.mdb"));
	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		return;
	for (int k = 0; k < 2000; k++) {
		record_fill(&r, k);
		store_append(st, &r, NULL, NULL, 0);
	}
	store_close(st);
	size = (size_t)copy_prefix(path, tmp_path("probe"), 0);
	CHECK(size > 16 * 4096);
	size_t cuts[] = { 1, 20, 4095, 4096, 4097, 8191, 8192, 12288, size / 2, size - 4096 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		for (unsigned fl = 0; fl < 2; fl++) {
			const char *cut = tmp_path("cut.mdb");
			int rc;

			copy_prefix(path, cut, cuts[i]);
			rc = store_open(&st, cut, fl ? STORE_READONLY : 0, 0);
			if (rc == 0) {
				memset(&s, 0, sizeof(s));
				rc = store_scan(st, 0, INT64_MAX, seen_add, &s);
				store_close(st);
				/* Opened: nothing a tree reaches was lost, nor a record. */
				if (rc == 0 && s.n == 2000 && cuts[i] == size - 4096)
					rc = STORE_EFORMAT;
			}
			if (rc != STORE_EFORMAT) {
				fprintf(stderr, "cut at %zu (%s): %s\n", cuts[i],
					fl ? "reader" : "writer", store_strerror(rc));
				bad++;
			}
		}
	}
	CHECK_INT(bad, 0);
}

/* The page count of the meta LMDB reads (of pages 0 and 1, the later transaction's),
 * raised by add: the state a writer killed between a commit that freed pages it had just
 * allocated and store_fill_tail leaves, LMDB counting pages it never wrote. */
static uint64_t raise_last_page(const char *path, uint64_t add)
{
	int fd = open(path, O_RDWR);
	unsigned char meta[2][160];
	uint64_t txn[2], last = 0;
	int cur;

	CHECK(fd >= 0);
	if (fd < 0)
		return 0;
	for (int m = 0; m < 2; m++) {
		CHECK_INT(pread(fd, meta[m], sizeof meta[m], m * 4096), (long)sizeof meta[m]);
		memcpy(&txn[m], meta[m] + 144, 8);
	}
	cur = txn[1] > txn[0];
	memcpy(&last, meta[cur] + 136, 8);
	last += add;
	memcpy(meta[cur] + 136, &last, 8);
	CHECK_INT(pwrite(fd, meta[cur], sizeof meta[cur], cur * 4096), (long)sizeof meta[cur]);
	close(fd);
	return last;
}

/* A file shorter than its meta says by free pages only opens; a writer extends it. */
static void test_short_by_free_pages(void)
{
	char path[512];
	struct store *st;
	struct record r;
	struct seen s;
	struct stat sb;
	struct payload pl, back;
	static char noise[9000];
	uint64_t last, problems = 99, x = 88172645463325252ull;
	off_t before;

	/* Record 1's payload does not compress: it lies on overflow pages the walk must reach. */
	for (size_t i = 0; i < sizeof noise; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		noise[i] = (char)(x & 0xff);
	}
	memset(&pl, 0, sizeof pl);
	pl.resp_body = (struct record_str){ noise, sizeof noise, 0 };
	snprintf(path, sizeof(path), "%s", tmp_path("loose.mdb"));
	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		return;
	for (int k = 0; k < 300; k++) {
		record_fill(&r, k);
		CHECK_INT(store_append(st, &r, k == 0 ? &pl : NULL, NULL, 0), 0);
	}
	store_close(st);
	CHECK_INT(stat(path, &sb), 0);
	before = sb.st_size;
	last = raise_last_page(path, 3);
	CHECK_INT((off_t)(last + 1) * 4096, before + 3 * 4096);

	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	if (st == NULL)
		return;
	memset(&s, 0, sizeof(s));
	CHECK_INT(store_scan(st, 0, INT64_MAX, seen_add, &s), 0);
	CHECK_INT(s.n, 300);
	CHECK_INT(store_verify(st, NULL, NULL, &problems), 0);
	CHECK_INT(problems, 0);
	CHECK_INT(store_payload_get(st, 1, &back), 0);
	CHECK_INT(back.resp_body.n, sizeof noise);
	CHECK(back.resp_body.n == sizeof noise && memcmp(back.resp_body.p, noise, sizeof noise) == 0);
	payload_release(&back);
	store_close(st);
	CHECK_INT(stat(path, &sb), 0);
	CHECK_INT(sb.st_size, before); /* a reader leaves the file as it is */

	CHECK_INT(store_open(&st, path, 0, 0), 0);
	if (st == NULL)
		return;
	CHECK_INT(stat(path, &sb), 0);
	CHECK_INT(sb.st_size, before + 3 * 4096);
	record_fill(&r, 300);
	CHECK_INT(store_append(st, &r, NULL, NULL, 0), 0);
	CHECK_INT(r.id, 301);
	store_close(st);

	/* Pages a tree reaches, cut: refused, by readers and writers. */
	CHECK_INT(truncate(path, 8192), 0);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), STORE_EFORMAT);
	CHECK_INT(store_open(&st, path, 0, 0), STORE_EFORMAT);
}

static void test_map_full(void)
{
	const char *path = tmp_path("tiny.mdb");
	char *noise = malloc(20000);
	struct store_info info;
	struct payload pl;
	struct store *st;
	struct record r;
	struct seen s;
	unsigned seed = 3;
	int ok = 0, rc = 0;

	for (int i = 0; i < 20000; i++)
		noise[i] = (char)((seed = seed * 1103515245u + 12345u) >> 16);
	memset(&pl, 0, sizeof(pl));
	pl.resp_body.p = noise;
	pl.resp_body.n = 20000;
	CHECK_INT(store_open(&st, path, STORE_CREATE, 64 * 4096), 0);
	if (st == NULL)
		goto out;
	for (int k = 0; k < 1000; k++) {
		record_fill(&r, k);
		rc = store_append(st, &r, &pl, NULL, 0);
		if (rc != 0)
			break;
		ok++;
	}
	CHECK_INT(rc, STORE_EFULL);
	CHECK(ok > 0);
	/* Still readable by the writer, with exactly the committed records. */
	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.records, ok);
	CHECK_INT(info.next_id, ok + 1);
	memset(&s, 0, sizeof(s));
	CHECK_INT(store_scan(st, 0, INT64_MAX, seen_add, &s), 0);
	CHECK_INT(s.n, ok);
	/* A small record without payload may still fit, or fail cleanly. */
	record_fill(&r, 5000);
	rc = store_append(st, &r, NULL, NULL, 0);
	CHECK(rc == 0 || rc == STORE_EFULL);
	ok += rc == 0;
	store_close(st);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	if (st == NULL)
		goto out;
	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.records, ok);
	store_close(st);
out:
	free(noise);
}

static int die_in_scan(const struct record *r, void *arg)
{
	(void)r;
	(void)arg;
	raise(SIGKILL);
	return 0;
}

/* Forks a reader that dies inside its read transaction, leaving its slot behind. */
static void reader_killed(const char *path)
{
	pid_t kid = fork();

	if (kid == 0) {
		struct store *rd;

		if (store_open(&rd, path, STORE_READONLY, 0) == 0)
			store_scan(rd, 0, INT64_MAX, die_in_scan, NULL);
		_exit(2);
	}
	waitpid(kid, NULL, 0);
}

/*
 * How many stale reader slots LMDB finds (and clears), through a raw env in a child: a second
 * env on the same file in this process would break the locks of the one the test keeps open.
 */
static int stale_readers(const char *path)
{
	pid_t kid = fork();
	int status;

	if (kid == 0) {
		MDB_env *env;
		int dead = -1;

		mdb_env_create(&env);
		mdb_env_set_maxdbs(env, 8);
		if (mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY, 0600) == 0)
			mdb_reader_check(env, &dead);
		_exit(dead < 0 ? 100 : dead);
	}
	waitpid(kid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Opens the store as a writer in a child, as a new agent process would. */
static int writer_opens(const char *path)
{
	pid_t kid = fork();
	int status;

	if (kid == 0) {
		struct store *st;
		int rc = store_open(&st, path, 0, 0);

		store_close(st);
		_exit(rc == 0 ? 0 : 1);
	}
	waitpid(kid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * A writer's open clears the reader slots of killed processes (mdb_reader_check). Slots only
 * outlive their process while some process keeps the store open (the last one out lets the
 * next opener reset the lock file), so this test keeps a reader open throughout.
 */
static void test_stale_reader(void)
{
	const char *path = tmp_path("stale.mdb");
	struct store *st, *keep;
	struct record r;

	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		return;
	record_fill(&r, 1);
	CHECK_INT(store_append(st, &r, NULL, NULL, 0), 0);
	store_close(st);
	CHECK_INT(store_open(&keep, path, STORE_READONLY, 0), 0);
	reader_killed(path);
	CHECK_INT(stale_readers(path), 1); /* the slot really was left behind */
	reader_killed(path);
	CHECK_INT(writer_opens(path), 0);
	CHECK_INT(stale_readers(path), 0);
	store_close(keep);
}

/* A reader whose map is smaller than what another process has since written adopts it. */
static void test_map_resized(void)
{
	const char *path = tmp_path("resize.mdb");
	struct store_info info;
	struct store *rd, *wr;
	struct record r;
	struct seen s;
	pid_t kid;
	int status;

	CHECK_INT(store_open(&wr, path, STORE_CREATE, 64 * 4096), 0);
	if (wr == NULL)
		return;
	record_fill(&r, 1);
	CHECK_INT(store_append(wr, &r, NULL, NULL, 0), 0);
	store_close(wr);
	CHECK_INT(store_open(&rd, path, STORE_READONLY, 64 * 4096), 0);
	if (rd == NULL)
		return;
	kid = fork();
	if (kid == 0) {
		int failed = 0;

		if (store_open(&wr, path, 0, 64u << 20) != 0)
			_exit(2);
		for (int k = 0; k < 3000; k++) {
			record_fill(&r, k);
			failed += store_append(wr, &r, NULL, NULL, 0) != 0;
		}
		store_close(wr);
		_exit(failed ? 1 : 0);
	}
	CHECK_INT(waitpid(kid, &status, 0), kid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	memset(&s, 0, sizeof(s));
	CHECK_INT(store_scan(rd, 0, INT64_MAX, seen_add, &s), 0);
	CHECK_INT(s.n, 3001);
	CHECK_INT(store_info(rd, &info), 0);
	CHECK(info.map_bytes > 64 * 4096);
	store_close(rd);
}

/* Concurrency: 4 processes × 250 and 4 threads × 100 appends against a reference. */
enum { PROCS = 4, PER_PROC = 250, THREADS = 4, PER_THREAD = 100 };

static int64_t ref_in(int writer, int i)
{
	return writer * 100000 + i * 7 + 1;
}

static int64_t ref_out(int writer, int i)
{
	return (writer + 1) * (i % 13) + 3;
}

static int append_as(struct store *st, int writer, int i)
{
	struct store_counter_delta d[2] = { { "appends", 1 }, { "tokens.in", ref_in(writer, i) } };
	struct record r;

	record_fill(&r, i);
	r.ts_ns = 1000000 + (int64_t)i * 1000 + writer;
	r.pid = writer;
	r.input_tokens = ref_in(writer, i);
	r.output_tokens = ref_out(writer, i);
	return store_append(st, &r, NULL, d, 2);
}

struct thread_arg {
	struct store *st;
	int writer, failed;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;

	for (int i = 0; i < PER_THREAD; i++)
		a->failed += append_as(a->st, a->writer, i) != 0;
	return NULL;
}

struct by_writer {
	int n, last_i[PROCS + THREADS];
	int order_bad;
	unsigned char id_seen[PROCS * PER_PROC + THREADS * PER_THREAD + 2];
	int dup_or_range;
	int64_t in_sum, out_sum;
};

static int by_writer_add(const struct record *r, void *arg)
{
	struct by_writer *b = arg;

	if (r->id < 1 || r->id >= sizeof(b->id_seen) || b->id_seen[r->id])
		b->dup_or_range++;
	else
		b->id_seen[r->id] = 1;
	b->n++;
	b->in_sum += r->input_tokens;
	b->out_sum += r->output_tokens;
	return 0;
}

static void test_concurrency(void)
{
	const char *path = tmp_path("conc.mdb");
	struct thread_arg args[THREADS];
	pthread_t th[THREADS];
	pid_t kids[PROCS];
	struct store *st;
	struct by_writer *b = calloc(1, sizeof(*b));
	struct counters_seen c;
	int64_t want_in = 0, want_out = 0;
	int status;

	/* The parent's handle exists before the forks, as in an agent that forks workers. */
	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		goto out;
	for (int p = 0; p < PROCS; p++) {
		kids[p] = fork();
		if (kids[p] == 0) {
			struct store *own;
			int failed = 0;

			/* The parent's handle is refused in the child (LMDB's fork rule). */
			if (append_as(st, 99, 0) != STORE_EINVAL)
				_exit(3);
			if (store_open(&own, path, 0, 0) != 0)
				_exit(2);
			for (int i = 0; i < PER_PROC; i++)
				failed += append_as(own, p, i) != 0;
			store_close(own);
			_exit(failed ? 1 : 0);
		}
	}
	for (int t = 0; t < THREADS; t++) {
		args[t] = (struct thread_arg){ st, PROCS + t, 0 };
		pthread_create(&th[t], NULL, thread_main, &args[t]);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		CHECK_INT(args[t].failed, 0);
	}
	for (int p = 0; p < PROCS; p++) {
		CHECK_INT(waitpid(kids[p], &status, 0), kids[p]);
		CHECK(WIFEXITED(status));
		CHECK_INT(WEXITSTATUS(status), 0);
	}
	for (int w = 0; w < PROCS + THREADS; w++) {
		int n = w < PROCS ? PER_PROC : PER_THREAD;
		for (int i = 0; i < n; i++) {
			want_in += ref_in(w, i);
			want_out += ref_out(w, i);
		}
	}
	CHECK_INT(store_scan(st, 0, INT64_MAX, by_writer_add, b), 0);
	CHECK_INT(b->n, PROCS * PER_PROC + THREADS * PER_THREAD);
	CHECK_INT(b->dup_or_range, 0);
	for (int id = 1; id <= PROCS * PER_PROC + THREADS * PER_THREAD; id++)
		if (!b->id_seen[id]) {
			CHECK_INT(id, 0); /* an id missing */
			break;
		}
	CHECK_INT(b->in_sum, want_in);
	CHECK_INT(b->out_sum, want_out);
	memset(&c, 0, sizeof(c));
	CHECK_INT(store_counters_scan(st, counter_add, &c), 0);
	CHECK_INT(c.n, 2);
	CHECK_STR(c.names[0], "appends");
	CHECK_INT(c.values[0], PROCS * PER_PROC + THREADS * PER_THREAD);
	CHECK_STR(c.names[1], "tokens.in");
	CHECK_INT(c.values[1], want_in);
	store_close(st);
out:
	free(b);
}

/* kill -9 a writer in the middle of its appends: what was committed stays, ids stay dense. */
static void test_kill9(void)
{
	const char *path = tmp_path("kill.mdb");
	char *body = make_body(200000, 9);
	struct store_info info;
	struct by_writer *b = calloc(1, sizeof(*b));
	struct payload pl;
	struct store *st;
	struct record r;
	uint64_t total = 0;

	memset(&pl, 0, sizeof(pl));
	pl.resp_body.p = body;
	pl.resp_body.n = 200000;
	for (int round = 0; round < 5; round++) {
		pid_t kid = fork();
		struct timespec ts = { 0, 20000000 + round * 7000000 };

		if (kid == 0) {
			struct store *own;

			if (store_open(&own, path, STORE_CREATE, 0) != 0)
				_exit(2);
			for (int i = 0;; i++) {
				record_fill(&r, i);
				store_append(own, &r, &pl, NULL, 0);
			}
		}
		nanosleep(&ts, NULL);
		kill(kid, SIGKILL);
		waitpid(kid, NULL, 0);
		/* A fresh writer after the kill: it is not blocked by the dead one's lock. */
		CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
		if (st == NULL)
			break;
		record_fill(&r, 0);
		CHECK_INT(store_append(st, &r, NULL, NULL, 0), 0);
		CHECK_INT(store_info(st, &info), 0);
		CHECK_INT(info.next_id, info.records + 1);
		CHECK(info.records > total);
		total = info.records;
		memset(b, 0, sizeof(*b));
		CHECK_INT(store_scan(st, 0, INT64_MAX, by_writer_add, b), 0);
		CHECK_INT(b->n, total);
		CHECK_INT(b->dup_or_range, 0);
		store_close(st);
	}
	free(b);
	free(body);
}

int main(void)
{
	if (tmpdir_make("test-store") != 0)
		return 2;
	umask(022);
	RUN(test_record_encode_example);
	RUN(test_record_encode_bytes);
	RUN(test_record_widths);
	RUN(test_record_roundtrip);
	RUN(test_record_encode_cap);
	RUN(test_record_cut);
	RUN(test_record_truncated);
	RUN(test_record_newer_v5);
	RUN(test_record_refused);
	RUN(test_record_versions);
	RUN(test_record_helpers);
	RUN(test_strerror);
	RUN(test_append_scan);
	RUN(test_get);
	RUN(test_payload);
	RUN(test_payload_decode_guarded);
	RUN(test_payload_stored);
	RUN(test_info_payload_sizes);
	RUN(test_counters);
	RUN(test_info_and_modes);
	RUN(test_foreign_and_missing);
	RUN(test_foreign_lmdb);
	RUN(test_reader_before_writer);
	RUN(test_truncated_file);
	RUN(test_short_by_free_pages);
	RUN(test_map_full);
	RUN(test_stale_reader);
	RUN(test_map_resized);
	RUN(test_concurrency);
	RUN(test_kill9);
	tmpdir_remove();
	CHECK_DONE();
}
