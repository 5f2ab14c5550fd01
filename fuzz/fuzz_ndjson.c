/*
 * fuzz_ndjson.c - newline-delimited JSON framing (http/stream.h ndjson_parser),
 * fed whole and cut into pieces; the input's layout and the checks are framer.h's.
 */
#include "fuzz/framer.h"
#include "http/stream.h"

FRAMER_TARGET(ndjson_parser, ndjson_parser_finish(p))
