/*
 * fuzz_sse.c - Server-Sent Events framing (http/stream.h sse_parser),
 * fed whole and cut into pieces; the input's layout and the checks are framer.h's.
 */
#include "fuzz/framer.h"
#include "http/stream.h"

static void init(void *p, size_t max_event, stream_event_fn fn, void *ctx)
{
	sse_parser_init(p, max_event, fn, ctx);
}

static int feed(void *p, const char *data, size_t len)
{
	return sse_parser_feed(p, data, len);
}

static void finish(void *p)
{
	sse_parser_finish(p);
}

static void release(void *p)
{
	sse_parser_release(p);
}

static void counts(const void *p, uint64_t *events, uint64_t *dropped)
{
	const struct sse_parser *parser = p;

	*events = parser->events;
	*dropped = parser->dropped;
}

static const struct framer_ops ops = {init, feed, finish, release, counts};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sse_parser p1, p2;

	framer_fuzz(&ops, &p1, &p2, data, size);
	return 0;
}
