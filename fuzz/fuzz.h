/*
 * fuzz.h - what tokshim's libFuzzer targets share: reading control bytes off the front of an
 * input, a split schedule that cuts a byte stream into pieces, and a running hash for
 * comparing what two runs over the same bytes reported.
 *
 * Our parsers are fed in whatever pieces the agent's reads and writes happened to have, so
 * most targets feed their input twice, whole and cut into pieces, and require the same
 * result: a parser whose output depends on where the bytes were cut is a bug even when it does
 * not crash. The cut points come from the input (a seed byte drives a small generator), so the
 * fuzzer explores cuts as well as contents.
 *
 * Every target is built with -fsanitize=fuzzer,address,undefined; FUZZ_CHECK aborts, which
 * libFuzzer reports as a crash with the input saved.
 */
#ifndef TOKSHIM_FUZZ_H
#define TOKSHIM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                             \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                              \
			abort();                                                     \
		}                                                                    \
	} while (0)

/* The input, consumed from the front. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

/* The next byte of the input, 0 once it is used up. */
static inline unsigned fuzz_take(struct fuzz_in *in)
{
	unsigned b = 0;

	if (in->n > 0) {
		b = in->p[0];
		in->p++;
		in->n--;
	}
	return b;
}

/* Piece sizes from a seed: mostly small (1..16 bytes, where state machines break), sometimes
 * up to 4 KiB. xorshift32: the same seed always gives the same cuts. */
struct fuzz_split {
	uint32_t s;
};

static inline void fuzz_split_init(struct fuzz_split *sp, unsigned seed)
{
	sp->s = 0x9e3779b9u ^ (seed * 0x01000193u);
	if (sp->s == 0)
		sp->s = 1;
}

static inline size_t fuzz_split_next(struct fuzz_split *sp, size_t left)
{
	size_t k;

	sp->s ^= sp->s << 13;
	sp->s ^= sp->s >> 17;
	sp->s ^= sp->s << 5;
	k = (sp->s & 7) == 0 ? 1 + (sp->s >> 8) % 4096 : 1 + (sp->s >> 8) % 16;
	return k < left ? k : left;
}

/* FNV-1a over everything a run reports, in order. */
static inline void fuzz_hash(uint64_t *h, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < len; i++) {
		*h ^= p[i];
		*h *= 0x100000001b3ull;
	}
}

#define FUZZ_HASH_INIT 0xcbf29ce484222325ull

#endif
