/*
 * framer.h - the shared body of the stream-framing targets (fuzz_sse.c, fuzz_ndjson.c,
 * fuzz_jsonarray.c, fuzz_eventstream.c): their parsers differ in type but not in shape (init,
 * feed, finish, release, events and dropped counters), so each target is one
 * FRAMER_TARGET line.
 *
 * Input: a byte choosing max_event (low 2 bits: 1, 16, 4 KiB or the default), a split seed,
 * then the body. It is framed twice, whole and cut into pieces: both runs must deliver the
 * same events (names and data, in order) and drop the same number, the parser's own count must
 * match what was delivered, and no event may be larger than max_event.
 */
#ifndef TOKSHIM_FUZZ_FRAMER_H
#define TOKSHIM_FUZZ_FRAMER_H

#include "fuzz/fuzz.h"
#include "http/stream.h"

struct framer_ops {
	void (*init)(void *p, size_t max_event, stream_event_fn fn, void *ctx);
	int (*feed)(void *p, const char *data, size_t len); /* 0, or < 0: the parser gave up */
	void (*finish)(void *p);
	void (*release)(void *p);
	void (*counts)(const void *p, uint64_t *events, uint64_t *dropped);
};

struct framer_run {
	size_t max_event;
	uint64_t hash;
	uint64_t events;
};

static void framer_on_event(void *ctx, const char *name, size_t name_len, const char *data,
			    size_t data_len)
{
	struct framer_run *r = ctx;

	FUZZ_CHECK(name != NULL || name_len == 0);
	FUZZ_CHECK(data != NULL || data_len == 0);
	FUZZ_CHECK(r->max_event == 0 || (name_len <= r->max_event && data_len <= r->max_event));
	fuzz_hash(&r->hash, &name_len, sizeof name_len);
	fuzz_hash(&r->hash, name, name_len);
	fuzz_hash(&r->hash, &data_len, sizeof data_len);
	fuzz_hash(&r->hash, data, data_len);
	r->events++;
}

/* Frames data into r with parser p (of size enough for the ops' type); returns dropped. */
static uint64_t framer_run(const struct framer_ops *ops, void *p, struct framer_run *r,
			   const uint8_t *data, size_t len, unsigned seed, int split)
{
	struct fuzz_split sp;
	size_t pos = 0, k;
	uint64_t events, dropped;

	fuzz_split_init(&sp, seed);
	ops->init(p, r->max_event, framer_on_event, r);
	while (pos < len) {
		k = split ? fuzz_split_next(&sp, len - pos) : len - pos;
		ops->feed(p, (const char *)data + pos, k);
		pos += k;
	}
	ops->finish(p);
	ops->counts(p, &events, &dropped);
	FUZZ_CHECK(events == r->events);
	ops->release(p);
	return dropped;
}

static const size_t framer_max_events[4] = {1, 16, 4096, 0};

/* The whole test of one input; p1 and p2 are two parsers' storage. */
static void framer_fuzz(const struct framer_ops *ops, void *p1, void *p2, const uint8_t *data,
			size_t size)
{
	struct fuzz_in in = {data, size};
	size_t max_event = framer_max_events[fuzz_take(&in) & 3];
	unsigned seed = fuzz_take(&in);
	struct framer_run whole = {max_event, FUZZ_HASH_INIT, 0}, cut = whole;
	uint64_t dropped_whole, dropped_cut;

	dropped_whole = framer_run(ops, p1, &whole, in.p, in.n, seed, 0);
	dropped_cut = framer_run(ops, p2, &cut, in.p, in.n, seed, 1);
	FUZZ_CHECK(dropped_whole == dropped_cut);
	FUZZ_CHECK(whole.events == cut.events && whole.hash == cut.hash);
}

/*
 * The adapters and entry point of a target whose parser is struct PREFIX with functions
 * PREFIX_init, _feed, _release and counters events and dropped; FINISH is the statement that
 * ends the body (PREFIX_finish(p), or (void)p for a parser without one).
 */
#define FRAMER_TARGET(PREFIX, FINISH)                                                   \
	static void framer_init(void *p, size_t max_event, stream_event_fn fn, void *ctx) \
	{                                                                               \
		PREFIX##_init(p, max_event, fn, ctx);                                   \
	}                                                                               \
	static int framer_feed(void *p, const char *data, size_t len)                   \
	{                                                                               \
		return PREFIX##_feed(p, data, len);                                     \
	}                                                                               \
	static void framer_finish(void *p)                                              \
	{                                                                               \
		FINISH;                                                                 \
	}                                                                               \
	static void framer_release(void *p)                                             \
	{                                                                               \
		PREFIX##_release(p);                                                    \
	}                                                                               \
	static void framer_counts(const void *p, uint64_t *events, uint64_t *dropped)   \
	{                                                                               \
		const struct PREFIX *parser = p;                                        \
		*events = parser->events;                                               \
		*dropped = parser->dropped;                                             \
	}                                                                               \
	static const struct framer_ops framer_ops_of = {                                \
		framer_init, framer_feed, framer_finish, framer_release, framer_counts};    \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                    \
	{                                                                               \
		struct PREFIX p1, p2;                                                   \
		framer_fuzz(&framer_ops_of, &p1, &p2, data, size);                      \
		return 0;                                                               \
	}

#endif
