/*
 * eventstream.h - decoder of the binary AWS event-stream framing
 * (application/vnd.amazon.eventstream), which Bedrock's converse-stream and
 * invoke-with-response-stream answer with.
 *
 * A message is: total length (u32, big-endian), headers length (u32), prelude CRC32 (u32, of
 * the first 8 bytes); headers (each: name length u8, name, value type u8, value); payload;
 * message CRC32 (u32, of every byte before it). Header values by type: 0 true and 1 false
 * (no bytes), 2 byte (1), 3 short (2), 4 integer (4), 5 long (8), 6 byte array and 7 string
 * (u16 length, then the bytes), 8 timestamp (8), 9 UUID (16).
 *
 * Like stream.h's parsers, the decoder is fed any split of the body (one byte at a time or all
 * at once) and hands out whole messages, holding at most one message, bounded by max_message.
 * A message whose prelude announces more than that is skipped (its length is trusted once the
 * prelude CRC has checked it) and counted. A CRC mismatch or an impossible length means the
 * framing is lost: the decoder stops and ignores the rest of the body.
 */
#ifndef TOKSHIM_EVENTSTREAM_H
#define TOKSHIM_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "http/stream.h"

/* The smallest message: prelude (12) and message CRC (4). */
#define EVENTSTREAM_MIN 16u

struct eventstream_parser {
	stream_event_fn on_event;
	void *ctx;
	size_t max_message;
	unsigned char *msg;  /* the message being gathered, prelude included (heap, bounded) */
	size_t msg_len, msg_cap;
	uint32_t total;      /* the current message's length from its prelude (0: prelude pending) */
	uint64_t skip;       /* bytes of an oversize message still to skip */
	int failed;          /* framing lost: everything further is ignored */
	uint64_t events;     /* messages delivered */
	uint64_t dropped;    /* messages skipped for size */
};

/* max_message 0 means STREAM_EVENT_MAX_DEFAULT. Allocates nothing until the first message. */
void eventstream_parser_init(struct eventstream_parser *p, size_t max_message,
			     stream_event_fn fn, void *ctx);

/*
 * Decodes bytes; calls fn once per whole message whose CRCs check, with name the value of its
 * :event-type header (:message-type "event"), of :exception-type (:message-type "exception",
 * e.g. "throttlingException"), or of :error-code (:message-type "error"); NULL, 0 when the
 * header is absent. data is the payload. Returns 0, HTTP_ENOMEM (the message is dropped and
 * counted; decoding carries on) or HTTP_EPARSE once the framing is lost (p->failed).
 */
int eventstream_parser_feed(struct eventstream_parser *p, const char *data, size_t len);

void eventstream_parser_release(struct eventstream_parser *p);

#endif
