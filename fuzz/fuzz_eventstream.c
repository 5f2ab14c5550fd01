/*
 * fuzz_eventstream.c - the AWS event-stream decoder (http/eventstream.h eventstream_parser),
 * fed whole and cut into pieces; the input's layout and the checks are framer.h's.
 */
#include "fuzz/framer.h"
#include "http/eventstream.h"

FRAMER_TARGET(eventstream_parser, (void)p)
