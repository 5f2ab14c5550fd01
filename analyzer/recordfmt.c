/*
 * recordfmt.c - one record as JSON or as a table row (see recordfmt.h).
 *
 * The JSON keys are a contract (DESIGN.md): tests and downstream tools read them, so their
 * names and types never change; new keys may be added. Optional values are null rather than
 * absent, so every line of a jsonl listing has the same keys.
 */
#include "analyzer/recordfmt.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

const struct table_col recordfmt_cols[RECORDFMT_NCOLS] = {
	{ "ID", 1, 0, 0 },        { "TIME (UTC)", 0, 0, 0 }, { "AGENT", 0, 1, 6 },
	{ "PROVIDER", 0, 1, 6 },  { "MODEL", 0, 1, 8 },      { "STATUS", 1, 0, 0 },
	{ "IN", 1, 0, 0 },        { "OUT", 1, 0, 0 },        { "COST", 1, 0, 0 },
};

void recordfmt_cstr(char *out, const struct record_str *s)
{
	size_t n = s->n < RECORD_STR_MAX ? s->n : RECORD_STR_MAX, i;

	/* Control characters become '.': a name from the network must not drive the terminal. */
	for (i = 0; i < n; i++)
		out[i] = (unsigned char)s->p[i] < 0x20 || s->p[i] == 0x7f ? '.' : s->p[i];
	out[n] = '\0';
}

static void key_str(struct jw *w, const char *key, const struct record_str *s)
{
	jw_key(w, key);
	jw_str(w, s->p, s->n);
}

void recordfmt_ref(char out[RECORDFMT_REF_MAX], uint64_t id, size_t db, size_t ndb)
{
	if (ndb > 1)
		snprintf(out, RECORDFMT_REF_MAX, "%zu#%" PRIu64, db + 1, id);
	else
		snprintf(out, RECORDFMT_REF_MAX, "%" PRIu64, id);
}

/* A decimal number of at least 1, all of s: 0, or -1. */
static int parse_positive(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;
	int ret = -1;

	if (n == 0 || n > 19)
		goto out;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			goto out;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v == 0)
		goto out;
	*out = v;
	ret = 0;
out:
	return ret;
}

int recordfmt_parse_ref(const char *s, uint64_t *id, size_t *db)
{
	const char *hash = strchr(s, '#');
	uint64_t k;
	int ret;

	if (hash == NULL) {
		*db = SIZE_MAX;
		ret = parse_positive(s, strlen(s), id);
	} else {
		ret = parse_positive(s, (size_t)(hash - s), &k);
		if (ret == 0)
			ret = parse_positive(hash + 1, strlen(hash + 1), id);
		if (ret == 0)
			*db = (size_t)k - 1;
	}
	return ret;
}

void recordfmt_json(struct jw *w, const struct record *rec, int priced, int64_t pusd)
{
	recordfmt_json_db(w, rec, priced, pusd, 0, 1);
}

void recordfmt_json_db(struct jw *w, const struct record *rec, int priced, int64_t pusd,
		       size_t db, size_t ndb)
{
	recordfmt_json_fallback(w, rec, priced, pusd, db, ndb, 0);
}

void recordfmt_json_fallback(struct jw *w, const struct record *rec, int priced, int64_t pusd,
			     size_t db, size_t ndb, uint64_t fallback_of)
{
	char text[FMT_TIME_MAX > FMT_MS_MAX ? FMT_TIME_MAX : FMT_MS_MAX];
	const char *tier;

	jw_object_begin(w);
	jw_key(w, "id");
	jw_int(w, (int64_t)rec->id);
	if (ndb > 1) {
		jw_key(w, "db");
		jw_int(w, (int64_t)db + 1);
	}
	fmt_rfc3339(text, rec->ts_ns);
	jw_key(w, "ts");
	jw_str(w, text, strlen(text));
	jw_key(w, "pid");
	jw_int(w, rec->pid);
	key_str(w, "process", &rec->process);
	key_str(w, "agent", &rec->agent);
	key_str(w, "agent_type", &rec->agent_type);
	key_str(w, "tenant", &rec->tenant);
	key_str(w, "session", &rec->session);
	key_str(w, "provider", &rec->provider);
	key_str(w, "api", &rec->api);
	key_str(w, "host", &rec->host);
	key_str(w, "path", &rec->path);
	jw_key(w, "locality");
	jw_str(w, rec->flags & RECORD_LOCAL ? "local" : "cloud", 5);
	key_str(w, "model_requested", &rec->model_requested);
	key_str(w, "model", &rec->model);
	jw_key(w, "status");
	jw_int(w, rec->status);
	jw_key(w, "stream");
	jw_bool(w, (rec->flags & RECORD_STREAM) != 0);
	jw_key(w, "latency_ms");
	fmt_ms(text, rec->latency_us);
	jw_number_text(w, text);
	jw_key(w, "ttfb_ms");
	if (rec->ttfb_us < 0) {
		jw_null(w);
	} else {
		fmt_ms(text, rec->ttfb_us);
		jw_number_text(w, text);
	}
	jw_key(w, "input_tokens");
	jw_int(w, rec->input_tokens);
	jw_key(w, "output_tokens");
	jw_int(w, rec->output_tokens);
	jw_key(w, "cache_read_tokens");
	jw_int(w, rec->cache_read_tokens);
	jw_key(w, "cache_write_tokens");
	jw_int(w, rec->cache_write_tokens);
	jw_key(w, "cache_write_1h_tokens");
	jw_int(w, rec->cache_write_1h_tokens);
	/* Billed units and the service tier: null where the provider said nothing. */
	jw_key(w, "billed_input_tokens");
	if (rec->flags & RECORD_BILLED_UNITS)
		jw_int(w, rec->billed_input_tokens);
	else
		jw_null(w);
	jw_key(w, "billed_output_tokens");
	if (rec->flags & RECORD_BILLED_UNITS)
		jw_int(w, rec->billed_output_tokens);
	else
		jw_null(w);
	jw_key(w, "service_tier");
	tier = record_tier_name(rec->service_tier);
	jw_str_or_null(w, tier, tier != NULL ? strlen(tier) : 0);
	jw_key(w, "reasoning_tokens");
	jw_int(w, rec->reasoning_tokens);
	jw_key(w, "total_tokens");
	jw_int(w, record_total_tokens(rec));
	jw_key(w, "estimated");
	jw_bool(w, (rec->flags & RECORD_ESTIMATED) != 0);
	jw_key(w, "cost_usd");
	if (priced)
		jw_pusd(w, pusd);
	else
		jw_null(w);
	jw_key(w, "billed");
	jw_bool(w, (rec->flags & RECORD_BILLED) != 0);
	jw_key(w, "fallback_of");
	if (fallback_of == 0)
		jw_null(w);
	else
		jw_int(w, (int64_t)fallback_of);
	jw_key(w, "retry_after");
	if (rec->retry_after_s < 0)
		jw_null(w);
	else
		jw_int(w, rec->retry_after_s);
	jw_key(w, "error");
	jw_str_or_null(w, rec->error.p, rec->error.n);
	jw_key(w, "error_message");
	jw_str_or_null(w, rec->error_message.p, rec->error_message.n);
	jw_key(w, "truncated");
	jw_bool(w, (rec->flags & RECORD_TRUNCATED) != 0);
	jw_key(w, "payload");
	jw_bool(w, (rec->flags & RECORD_PAYLOAD) != 0);
	jw_object_end(w);
}

void recordfmt_row(struct recordfmt_cells *buf, const char *cells[RECORDFMT_NCOLS],
		   const struct record *rec, int priced, int64_t pusd, size_t db, size_t ndb)
{
	const struct record_str *model = rec->model.n ? &rec->model : &rec->model_requested;

	recordfmt_ref(buf->id, rec->id, db, ndb);
	fmt_time_short(buf->time, rec->ts_ns);
	recordfmt_cstr(buf->agent, &rec->agent);
	recordfmt_cstr(buf->provider, rec->provider.n ? &rec->provider : &rec->host);
	recordfmt_cstr(buf->model, model);
	if (rec->status == 0)
		snprintf(buf->status, sizeof buf->status, "-");
	else
		snprintf(buf->status, sizeof buf->status, "%d", (int)rec->status);
	fmt_count_human(buf->in, rec->input_tokens);
	fmt_count_human(buf->out, rec->output_tokens);
	if (rec->flags & RECORD_ESTIMATED) {
		/* "~" marks estimated counts, as people write approximations. */
		memmove(buf->in + 1, buf->in, strlen(buf->in) + 1);
		buf->in[0] = '~';
		memmove(buf->out + 1, buf->out, strlen(buf->out) + 1);
		buf->out[0] = '~';
	}
	if (priced)
		fmt_usd_human(buf->cost, pusd);
	else
		snprintf(buf->cost, sizeof buf->cost, "-");
	cells[0] = buf->id;
	cells[1] = buf->time;
	cells[2] = buf->agent;
	cells[3] = buf->provider;
	cells[4] = buf->model;
	cells[5] = buf->status;
	cells[6] = buf->in;
	cells[7] = buf->out;
	cells[8] = buf->cost;
}
