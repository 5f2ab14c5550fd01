/*
 * fuzz_capture.c - HTTP reassembly: both directions of one connection through a capture_conn
 * (capture/capture.h), cut where the input says, as the shim's hooks would feed them.
 *
 * Input: a flags byte (bits 0-1: capture mode, 3 = full; bit 2: TLS; bit 3: a loopback peer
 * rather than a cloud one; bit 4: end with an eof; bits 5-7: the payload body cap, from 0 to
 * 1 MiB), then segments. A segment is a control byte c, then its bytes: c bit 0 is the
 * direction (0: what the agent wrote, 1: what it read); with c bit 1 clear the segment has
 * (c >> 2) + 1 bytes, with it set its length is the next two bytes, little-endian. So the
 * fuzzer chooses the interleaving of requests and responses and every cut.
 *
 * Every emitted record and payload must be readable whole (ASan checks the views) and must
 * survive the store's encoders: record_encode then record_decode (no string table: the
 * capture's strings carry no reference, so none is left unresolved) gives a record that encodes
 * to the same bytes, and payload_encode then payload_decode gives back the same parts.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "capture/capture.h"
#include "fuzz/fuzz.h"
#include "store/payload.h"

static const size_t body_caps[8] = {0, 1, 16, 64, 256, 1024, 4096, 1u << 20};

static struct payload_coder coder;

static void check_str(struct record_str s, uint64_t *h)
{
	FUZZ_CHECK(s.n == 0 || s.p != NULL);
	fuzz_hash(h, s.p, s.n);
}

static int str_eq(struct record_str a, struct record_str b)
{
	return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static void check_payload(const struct payload *pl)
{
	struct payload back;
	unsigned char *enc = NULL;
	size_t enc_len = 0;
	uint64_t h = FUZZ_HASH_INIT;

	check_str(pl->req_head, &h);
	check_str(pl->req_body, &h);
	check_str(pl->resp_head, &h);
	check_str(pl->resp_body, &h);
	FUZZ_CHECK(pl->req_body.n <= pl->req_body_size);
	FUZZ_CHECK(pl->resp_body.n <= pl->resp_body_size);
	FUZZ_CHECK(payload_encode(&coder, pl, &enc, &enc_len) == 0);
	memset(&back, 0, sizeof back);
	FUZZ_CHECK(payload_decode(enc, enc_len, &back) == 0);
	FUZZ_CHECK(str_eq(back.req_head, pl->req_head));
	FUZZ_CHECK(str_eq(back.req_body, pl->req_body));
	FUZZ_CHECK(str_eq(back.resp_head, pl->resp_head));
	FUZZ_CHECK(str_eq(back.resp_body, pl->resp_body));
	FUZZ_CHECK(back.req_body_size == pl->req_body_size);
	FUZZ_CHECK(back.resp_body_size == pl->resp_body_size);
	payload_release(&back);
	free(enc);
}

static void on_emit(void *ctx, struct record *rec, const struct payload *pl)
{
	const struct capture_config *cfg = ctx;
	static unsigned char enc[RECORD_ENCODED_MAX], again[RECORD_ENCODED_MAX];
	struct record back;
	uint64_t h = FUZZ_HASH_INIT;
	int n, m;

	check_str(rec->process, &h);
	check_str(rec->agent, &h);
	check_str(rec->agent_type, &h);
	check_str(rec->tenant, &h);
	check_str(rec->session, &h);
	check_str(rec->provider, &h);
	check_str(rec->api, &h);
	check_str(rec->host, &h);
	check_str(rec->path, &h);
	check_str(rec->model_requested, &h);
	check_str(rec->model, &h);
	check_str(rec->error, &h);
	check_str(rec->error_message, &h);
	FUZZ_CHECK((pl != NULL) == (cfg->mode != CAPTURE_OFF));
	n = record_encode(rec, enc, sizeof enc);
	FUZZ_CHECK(n > 0);
	memset(&back, 0, sizeof back);
	/* The capture gives no string a reference: every one is inline, none left unresolved. */
	FUZZ_CHECK(record_decode(enc, (size_t)n, NULL, &back) == 0);
	m = record_encode(&back, again, sizeof again);
	FUZZ_CHECK(m == n && memcmp(enc, again, (size_t)n) == 0);
	if (pl != NULL)
		check_payload(pl);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return payload_coder_init(&coder);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	unsigned flags = fuzz_take(&in);
	struct capture_config cfg = {
		.process = "fuzz", .agent = "agent", .agent_type = "", .tenant = "t",
		.session = "s", .local_hosts = "models.internal", .mode = flags & 3,
		.body_cap = body_caps[flags >> 5], .pid = 1,
	};
	struct sockaddr_in peer;
	struct capture_conn *c;

	if (cfg.mode > CAPTURE_FULL)
		cfg.mode = CAPTURE_FULL;
	memset(&peer, 0, sizeof peer);
	peer.sin_family = AF_INET;
	peer.sin_port = htons(443);
	peer.sin_addr.s_addr = htonl((flags & 8) ? 0x7f000001u : 0x68123456u);
	c = capture_conn_new(&cfg, (const struct sockaddr *)&peer, sizeof peer, flags & 4, on_emit,
			     &cfg);
	if (c == NULL)
		goto done;
	while (in.n > 0) {
		unsigned ctl = fuzz_take(&in);
		size_t len = (ctl >> 2) + 1;

		if (ctl & 2) {
			len = fuzz_take(&in);
			len |= (size_t)fuzz_take(&in) << 8;
		}
		if (len > in.n)
			len = in.n;
		capture_conn_feed(c, (ctl & 1) ? CAPTURE_IN : CAPTURE_OUT, in.p, len);
		in.p += len;
		in.n -= len;
	}
	if (flags & 16)
		capture_conn_eof(c);
	capture_conn_free(c);
done:
	return 0;
}
