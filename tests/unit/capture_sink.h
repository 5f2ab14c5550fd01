/*
 * capture_sink.h - what the capture unit tests (test_capture.c, test_h2.c) keep of each record
 * a capture_conn emits: a capture_emit_fn that copies the fields they check into a struct sink.
 */
#ifndef TOKSHIM_TEST_CAPTURE_SINK_H
#define TOKSHIM_TEST_CAPTURE_SINK_H

#include <stdint.h>
#include <string.h>

#include "capture/capture.h"

struct got {
	char provider[64], api[64], model[128], model_requested[128], error[32], host[128];
	char path[256];
	int64_t in, out, cache_read, cache_write, reasoning;
	int status, retry_after;
	uint32_t flags;
	int has_payload;
	char req_head[2048];
	size_t resp_body_len;
	uint64_t resp_body_size;
};

struct sink {
	struct got rec[8];
	int n;
};

static void copy_str(char *dst, size_t cap, struct record_str s)
{
	size_t n = s.n < cap - 1 ? s.n : cap - 1;

	if (n)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
}

static void on_emit(void *ctx, struct record *r, const struct payload *pl)
{
	struct sink *s = ctx;
	struct got *g;

	if (s->n == 8)
		return;
	g = &s->rec[s->n++];
	memset(g, 0, sizeof(*g));
	copy_str(g->provider, sizeof(g->provider), r->provider);
	copy_str(g->api, sizeof(g->api), r->api);
	copy_str(g->model, sizeof(g->model), r->model);
	copy_str(g->model_requested, sizeof(g->model_requested), r->model_requested);
	copy_str(g->error, sizeof(g->error), r->error);
	copy_str(g->host, sizeof(g->host), r->host);
	copy_str(g->path, sizeof(g->path), r->path);
	g->in = r->input_tokens;
	g->out = r->output_tokens;
	g->cache_read = r->cache_read_tokens;
	g->cache_write = r->cache_write_tokens;
	g->reasoning = r->reasoning_tokens;
	g->status = r->status;
	g->retry_after = r->retry_after_s;
	g->flags = r->flags;
	g->has_payload = pl != NULL;
	if (pl != NULL) {
		copy_str(g->req_head, sizeof(g->req_head), pl->req_head);
		g->resp_body_len = pl->resp_body.n;
		g->resp_body_size = pl->resp_body_size;
	}
}

#endif
