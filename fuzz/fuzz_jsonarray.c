/*
 * fuzz_jsonarray.c - framing of a JSON array streamed element by element (http/stream.h jsonarray_parser),
 * fed whole and cut into pieces; the input's layout and the checks are framer.h's.
 */
#include "fuzz/framer.h"
#include "http/stream.h"

FRAMER_TARGET(jsonarray_parser, jsonarray_parser_finish(p))
