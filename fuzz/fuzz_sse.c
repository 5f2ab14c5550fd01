/*
 * fuzz_sse.c - Server-Sent Events framing (http/stream.h sse_parser),
 * fed whole and cut into pieces; the input's layout and the checks are framer.h's.
 */
#include "fuzz/framer.h"
#include "http/stream.h"

FRAMER_TARGET(sse_parser, sse_parser_finish(p))
