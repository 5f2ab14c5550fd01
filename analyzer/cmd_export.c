/*
 * cmd_export.c - `tokshim export --format jsonl|csv|otlp [--to URL]`: the records that match
 * the filters, oldest first, for other tools: JSON lines, CSV with the same columns, or
 * OpenTelemetry spans (OTLP/HTTP JSON, export.h) printed or posted to a collector with
 * libcurl in batches of --batch spans, one ExportTraceServiceRequest each.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyzer/cli.h"
#include "analyzer/export.h"
#include "analyzer/fallback.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"
#include "analyzer/progress.h"
#include "analyzer/recordfmt.h"
#include "providers/pricing.h"

#define EXPORT_BATCH 500
#define EXPORT_BATCH_MAX 10000 /* a batch is held in memory: ~2 KB a span */
#define EXPORT_REPLY_MAX 4096  /* bytes of a collector's reply kept for an error message */

static const char usage_text[] =
	"usage: tokshim export [filters] [--format jsonl|csv|otlp] [--to URL] [--batch N]\n"
	"\n"
	"Write the records that match the filters, oldest first: as JSON lines (the records\n"
	"--format jsonl objects), as CSV (the same columns, a header line, RFC 4180), or as\n"
	"OpenTelemetry spans in OTLP/HTTP JSON with the GenAI attribute names. With --to, the\n"
	"spans are posted to an OTLP/HTTP collector (e.g. http://127.0.0.1:4318/v1/traces).\n"
	"\n"
	"Options:\n"
	"  --format FORMAT      jsonl (default), csv or otlp\n"
	"  --to URL             post OTLP requests to URL instead of printing (otlp only)\n"
	"  --batch N            spans per posted request (default 500, at most 10000)\n"
	"\n";

enum export_format { EXPORT_JSONL, EXPORT_CSV, EXPORT_OTLP };

struct exporter {
	const struct pricing *pricing;
	enum export_format format;
	size_t ndb;
	FILE *out;      /* stdout, or the memstream of the batch being built */
	char *buf;      /* the memstream's buffer (csv: one record's JSON; otlp --to: a batch) */
	size_t len;
	FILE *json;     /* csv: the memstream each record's JSON object is written to */
	const char *url;
	CURL *curl;
	struct fallback fallback; /* fallback_of, as records computes it */
	struct progress progress;
	uint64_t batch, in_batch, records, requests;
	char err[CURL_ERROR_SIZE + EXPORT_REPLY_MAX + 128];
};

struct reply {
	char text[EXPORT_REPLY_MAX];
	size_t n;
};

static size_t keep_reply(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	size_t take = size * n;

	if (take > sizeof r->text - 1 - r->n)
		take = sizeof r->text - 1 - r->n;
	memcpy(r->text + r->n, p, take);
	r->n += take;
	r->text[r->n] = '\0';
	return size * n;
}

/* Posts the batch held in e->buf. Returns 0, or -1 with the reason in e->err. */
static int post_batch(struct exporter *e)
{
	char curl_err[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL;
	struct reply reply = { .n = 0 };
	long code = 0;
	CURLcode rc;
	char *nl;
	int ret = -1;

	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	curl_easy_reset(e->curl);
	curl_easy_setopt(e->curl, CURLOPT_URL, e->url);
	curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, e->buf);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)e->len);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, keep_reply);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &reply);
	curl_easy_setopt(e->curl, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(e->curl);
	if (rc != CURLE_OK) {
		snprintf(e->err, sizeof e->err, "cannot post to '%s': %s", e->url,
			 *curl_err ? curl_err : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299) {
		nl = strchr(reply.text, '\n');
		if (nl)
			*nl = '\0';
		snprintf(e->err, sizeof e->err, "'%s' answered HTTP %ld%s%.200s", e->url, code,
			 reply.n ? ": " : "", reply.text);
		goto out;
	}
	e->requests++;
	ret = 0;
out:
	curl_slist_free_all(hdr);
	return ret;
}

/* Ends the OTLP request being built, and posts it when there is a URL. */
static int end_request(struct exporter *e)
{
	int ret = 0;

	if (e->in_batch == 0)
		goto out;
	export_otlp_end(e->out);
	e->in_batch = 0;
	if (e->url == NULL)
		goto out;
	ret = -1;
	if (fflush(e->out) != 0) {
		snprintf(e->err, sizeof e->err, "out of memory");
		goto out;
	}
	ret = post_batch(e);
	rewind(e->out);
out:
	return ret;
}

static int export_one(const struct record *rec, void *arg)
{
	struct exporter *e = arg;
	struct fallback_verdict v;
	int64_t pusd = 0;
	int priced = pricing_record_cost(e->pricing, rec, &pusd), ret = 0;
	uint64_t of;
	struct jw w;

	progress_tick(&e->progress);
	fallback_feed(&e->fallback, rec, filter_scan_db(), priced, pusd, &v);
	of = fallback_of(&v);
	if (e->format == EXPORT_OTLP) {
		if (e->in_batch == 0)
			export_otlp_begin(e->out);
		export_otlp_span(e->out, rec, priced, pusd, filter_scan_db(), e->ndb, of,
				 e->in_batch == 0);
		if (++e->in_batch == e->batch && end_request(e) != 0)
			ret = 1;
	} else if (e->format == EXPORT_JSONL) {
		jw_init(&w, e->out, 0);
		recordfmt_json_fallback(&w, rec, priced, pusd, filter_scan_db(), e->ndb, of);
		putc('\n', e->out);
	} else {
		rewind(e->json);
		jw_init(&w, e->json, 0);
		recordfmt_json_fallback(&w, rec, priced, pusd, filter_scan_db(), e->ndb, of);
		if (fflush(e->json) != 0 ||
		    (e->records == 0 && export_csv_line(e->out, e->buf, e->len, 1) != 0) ||
		    export_csv_line(e->out, e->buf, e->len, 0) != 0) {
			snprintf(e->err, sizeof e->err, "cannot write record %llu as csv",
				 (unsigned long long)rec->id);
			ret = 1;
		}
	}
	e->records++;
	return ret;
}

int cmd_export(int argc, char **argv)
{
	struct exporter e = { .format = EXPORT_JSONL, .batch = EXPORT_BATCH, .out = stdout };
	struct pricing *pricing = NULL;
	const char *format = "jsonl", *batch = NULL;
	const struct cli_opt opts[] = {
		{ "--format", &format, NULL },
		{ "--to", &e.url, NULL },
		{ "--batch", &batch, NULL },
	};
	struct filter f;
	char err[512];
	int done, m, ret = CLI_OK;

	filter_init(&f);
	ret = cli_reading_args("export", usage_text, &f, argc, argv, opts,
			       sizeof opts / sizeof opts[0], &done);
	if (ret != CLI_OK || done)
		goto out;
	ret = cli_check_format("export", format, CLI_FORMATS("jsonl", "csv", "otlp"));
	if (ret != CLI_OK)
		goto out;
	if (strcmp(format, "csv") == 0)
		e.format = EXPORT_CSV;
	else if (strcmp(format, "otlp") == 0)
		e.format = EXPORT_OTLP;
	if (e.url && e.format != EXPORT_OTLP) {
		ret = cli_usage_error("export", "'--to' needs '--format otlp'");
		goto out;
	}
	if (batch && (cli_parse_u64(batch, &e.batch) != 0 || e.batch == 0 ||
		      e.batch > EXPORT_BATCH_MAX)) {
		ret = cli_usage_error("export", "invalid batch size '%s' (1 to %d)", batch,
				      EXPORT_BATCH_MAX);
		goto out;
	}
	if (e.url && strncmp(e.url, "http://", 7) != 0 && strncmp(e.url, "https://", 8) != 0) {
		ret = cli_usage_error("export", "invalid URL '%s': expected http:// or https://",
				      e.url);
		goto out;
	}
	/* Without --to, the whole export is one request: batches only matter for posting. */
	if (e.url == NULL)
		e.batch = UINT64_MAX;
	ret = cli_reading_setup(&f, &pricing);
	if (ret != CLI_OK)
		goto out;
	e.pricing = pricing;
	e.ndb = f.ndb;
	fallback_init(&e.fallback, FALLBACK_DEFAULT_WINDOW_NS);
	ret = CLI_ERR;
	if (e.format == EXPORT_CSV) {
		e.json = open_memstream(&e.buf, &e.len);
		if (e.json == NULL) {
			cli_error("out of memory");
			goto free_pricing;
		}
	}
	if (e.url) {
		e.out = open_memstream(&e.buf, &e.len);
		e.curl = e.out ? curl_easy_init() : NULL;
		if (e.curl == NULL) {
			cli_error("cannot start an HTTP client");
			goto close;
		}
	}
	progress_init(&e.progress);
	/* Records printed to a terminal are progress enough; a line on stderr would cut them. */
	if (e.url == NULL && isatty(STDOUT_FILENO))
		e.progress.enabled = 0;
	m = filter_scan(&f, 1, export_one, &e, err, sizeof err);
	progress_done(&e.progress);
	if (m < 0) {
		cli_error("%s", err);
		goto close;
	}
	if (m == 0 && e.format == EXPORT_OTLP && e.records == 0 && e.url == NULL) {
		/* An empty export is still a valid (empty) request. */
		export_otlp_begin(e.out);
		e.in_batch = 1;
	}
	if (m != 0 || end_request(&e) != 0) {
		cli_error("%s", e.err);
		goto close;
	}
	if (e.url)
		printf("exported %llu records in %llu requests to %s\n",
		       (unsigned long long)e.records, (unsigned long long)e.requests, e.url);
	ret = CLI_OK;
close:
	if (e.curl)
		curl_easy_cleanup(e.curl);
	if (e.json)
		fclose(e.json);
	if (e.url && e.out)
		fclose(e.out);
	free(e.buf);
free_pricing:
	fallback_release(&e.fallback);
	pricing_free(pricing);
out:
	return ret;
}
