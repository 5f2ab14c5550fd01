/*
 * fuzz_jsonarray.c - framing of a JSON array streamed element by element (http/stream.h jsonarray_parser),
 * fed whole and cut into pieces; the input's layout and the checks are framer.h's.
 */
#include "fuzz/framer.h"
#include "http/stream.h"

static void init(void *p, size_t max_event, stream_event_fn fn, void *ctx)
{
	jsonarray_parser_init(p, max_event, fn, ctx);
}

static int feed(void *p, const char *data, size_t len)
{
	return jsonarray_parser_feed(p, data, len);
}

static void finish(void *p)
{
	jsonarray_parser_finish(p);
}

static void release(void *p)
{
	jsonarray_parser_release(p);
}

static void counts(const void *p, uint64_t *events, uint64_t *dropped)
{
	const struct jsonarray_parser *parser = p;

	*events = parser->events;
	*dropped = parser->dropped;
}

static const struct framer_ops ops = {init, feed, finish, release, counts};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsonarray_parser p1, p2;

	framer_fuzz(&ops, &p1, &p2, data, size);
	return 0;
}
