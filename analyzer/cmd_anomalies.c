/*
 * cmd_anomalies.c - `tokshim anomalies`: usage that looks wrong (anomaly.c has the rules),
 * as a table, JSON or CSV, with every threshold a flag and --fail-on making the exit status usable
 * in CI and cron (3 when a flag of that severity or worse was found).
 *
 * Two passes: the records (every kind but one), then, for cache_opportunity, the stored
 * request bodies of the records long enough to matter (payloads are read only for those).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/anomaly.h"
#include "analyzer/cli.h"
#include "analyzer/export.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"
#include "analyzer/progress.h"
#include "analyzer/recordfmt.h"
#include "providers/pricing.h"

/* Exit status when --fail-on matched: apart from usage (2) and runtime (1) errors. */
#define EXIT_FLAGGED 3

static const char usage_text[] =
	"usage: tokshim anomalies [filters] [--fail-on SEVERITY] [--format table|json|csv]\n"
	"                         [threshold options]\n"
	"\n"
	"Usage that looks wrong: spike, error_burst, retry_storm, duplicate_requests,\n"
	"context_growth, cost_outlier, cache_opportunity, new_heavy_agent (docs/cli.md).\n"
	"\n"
	"Options:\n"
	"  --format FORMAT        table (default), json or csv (one line per flag: the json's\n"
	"                         keys, evidence as one JSON object, ids space-separated)\n"
	"  --fail-on SEVERITY     exit 3 when a flag is this severe or worse (info, warning,\n"
	"                         critical)\n"
	"  --no-payloads          skip cache_opportunity (it reads stored request bodies)\n"
	"Thresholds (defaults in brackets):\n"
	"  --spike-score X        robust z of an hour's tokens or cost [3.5]\n"
	"  --spike-min-tokens N   hours below this are never spikes [10000]\n"
	"  --spike-min-hours N    active hours needed as a baseline [6]\n"
	"  --error-window D       error_burst window [5m]\n"
	"  --error-min N          failures in a window [5]\n"
	"  --error-rate X         failed share of the window's calls [0.5]\n"
	"  --retry-min N          sends of one request body [5]\n"
	"  --retry-gap D          longest gap between them [60s]\n"
	"  --dup-min N            duplicate answered calls per agent [3]\n"
	"  --growth-calls N       calls of rising input tokens in a row [8]\n"
	"  --growth-ratio X       last input over first [4]\n"
	"  --outlier-score X      robust z of a call's cost [5]\n"
	"  --outlier-min-calls N  priced calls in the agent's baseline [20]\n"
	"  --outlier-min-cost USD a cheaper call is never an outlier [0.01]\n"
	"  --prefix-bytes N       request prefix compared by cache_opportunity [4096]\n"
	"  --prefix-min-calls N   calls sharing it [3]\n"
	"  --new-window D         new_heavy_agent: first seen this close to the end [24h]\n"
	"  --heavy-ratio X        of the heaviest older agent's busiest window [0.5]\n"
	"\n";

enum opt_type { OPT_DOUBLE, OPT_COUNT, OPT_DURATION, OPT_USD };

struct opt {
	const char *name;
	enum opt_type type;
	size_t offset; /* into struct anomaly_thresholds */
	int is_int;    /* OPT_COUNT into an int rather than an int64_t */
};

#define T(field) offsetof(struct anomaly_thresholds, field)
static const struct opt opts[] = {
	{ "--spike-score", OPT_DOUBLE, T(spike_score), 0 },
	{ "--spike-min-tokens", OPT_COUNT, T(spike_min_tokens), 0 },
	{ "--spike-min-hours", OPT_COUNT, T(spike_min_hours), 1 },
	{ "--error-window", OPT_DURATION, T(error_window_ns), 0 },
	{ "--error-min", OPT_COUNT, T(error_min), 0 },
	{ "--error-rate", OPT_DOUBLE, T(error_rate), 0 },
	{ "--retry-min", OPT_COUNT, T(retry_min), 0 },
	{ "--retry-gap", OPT_DURATION, T(retry_gap_ns), 0 },
	{ "--dup-min", OPT_COUNT, T(dup_min), 0 },
	{ "--growth-calls", OPT_COUNT, T(growth_calls), 0 },
	{ "--growth-ratio", OPT_DOUBLE, T(growth_ratio), 0 },
	{ "--outlier-score", OPT_DOUBLE, T(outlier_score), 0 },
	{ "--outlier-min-calls", OPT_COUNT, T(outlier_min_calls), 0 },
	{ "--outlier-min-cost", OPT_USD, T(outlier_min_pusd), 0 },
	{ "--prefix-bytes", OPT_COUNT, T(prefix_bytes), 0 },
	{ "--prefix-min-calls", OPT_COUNT, T(prefix_min_calls), 0 },
	{ "--new-window", OPT_DURATION, T(new_window_ns), 0 },
	{ "--heavy-ratio", OPT_DOUBLE, T(heavy_ratio), 0 },
};
#undef T

/* Parses v for o into t. Returns 0 or -1. */
static int opt_set(const struct opt *o, const char *v, struct anomaly_thresholds *t)
{
	char *p = (char *)t + o->offset, *end;
	uint64_t n;
	int64_t i64;
	double d;
	int ret = -1;

	switch (o->type) {
	case OPT_DOUBLE:
		d = strtod(v, &end);
		if (*v == '\0' || *end != '\0' || !(d > 0) || d > 1e9)
			goto out;
		memcpy(p, &d, sizeof d);
		break;
	case OPT_COUNT:
		if (cli_parse_u64(v, &n) != 0 || n == 0 || n > INT32_MAX)
			goto out;
		if (o->is_int)
			*(int *)(void *)p = (int)n;
		else
			*(int64_t *)(void *)p = (int64_t)n;
		break;
	case OPT_DURATION:
		if (filter_parse_duration(v, &i64) != 0 || i64 <= 0)
			goto out;
		memcpy(p, &i64, sizeof i64);
		break;
	case OPT_USD:
		if (pricing_decimal(v, 12, &i64) != 0)
			goto out;
		memcpy(p, &i64, sizeof i64);
		break;
	}
	ret = 0;
out:
	return ret;
}

struct scanning {
	const struct pricing *pricing;
	struct anomaly a;
	struct progress progress;
};

static int feed_one(const struct record *rec, void *arg)
{
	struct scanning *s = arg;
	int64_t pusd = 0;
	int priced = pricing_record_cost(s->pricing, rec, &pusd);

	progress_tick(&s->progress);
	return anomaly_feed(&s->a, rec, filter_scan_db(), priced, pusd) != 0 ? STORE_ENOMEM : 0;
}

static void write_json(const struct anomaly *a, size_t ndb)
{
	int64_t counts[3] = { 0, 0, 0 };
	size_t i, j;
	struct jw w;

	for (i = 0; i < a->nflags; i++)
		counts[a->flags[i].severity]++;
	jw_init(&w, stdout, 1);
	jw_object_begin(&w);
	jw_key(&w, "records");
	jw_int(&w, a->records);
	jw_key(&w, "untracked");
	jw_int(&w, a->untracked);
	jw_key(&w, "counts");
	jw_object_begin(&w);
	for (j = 0; j < 3; j++) {
		jw_key(&w, anomaly_severity_name((enum anomaly_severity)j));
		jw_int(&w, counts[j]);
	}
	jw_object_end(&w);
	jw_key(&w, "anomalies");
	jw_array_begin(&w);
	for (i = 0; i < a->nflags; i++)
		anomaly_flag_json(&w, &a->flags[i], ndb);
	jw_array_end(&w);
	jw_object_end(&w);
	putchar('\n');
}

struct csv_flag {
	const struct anomaly_flag *fl;
	size_t ndb;
};

static void write_csv_flag(struct jw *w, const void *arg)
{
	const struct csv_flag *cf = arg;

	anomaly_flag_flat(w, cf->fl, cf->ndb);
}

/* A header line, then one line per flag. Returns 0 or -1. */
static int write_csv(const struct anomaly *a, size_t ndb)
{
	/* the header line is the keys, the same for every flag */
	static const struct anomaly_flag none = { .kind = "", .agent = "", .evidence = "",
						  .summary = "" };
	struct csv_flag cf = { &none, ndb };
	size_t i;
	int ret = export_csv_object(stdout, write_csv_flag, &cf, 1);

	for (i = 0; i < a->nflags && ret == 0; i++) {
		cf.fl = &a->flags[i];
		ret = export_csv_object(stdout, write_csv_flag, &cf, 0);
	}
	return ret;
}

static void write_table(const struct anomaly *a, size_t ndb, int colour)
{
	static const struct table_col cols[] = {
		{ "SEVERITY", 0, 0, 0 }, { "KIND", 0, 0, 0 }, { "AGENT", 0, 1, 6 },
		{ "FROM (UTC)", 0, 0, 0 }, { "WHAT", 0, 1, 20 }, { "IDS", 0, 1, 6 },
	};
	char from[FMT_TIME_MAX], ids[TABLE_CELL_MAX];
	const char *cells[6];
	const struct anomaly_flag *fl;
	struct table t;
	size_t i;

	if (a->nflags == 0) {
		printf("no anomalies in %lld records\n", (long long)a->records);
		goto out;
	}
	printf("%zu anomal%s in %lld records\n\n", a->nflags, a->nflags == 1 ? "y" : "ies",
	       (long long)a->records);
	table_init(&t, cols, 6, 1);
	for (i = 0; i < a->nflags; i++) {
		fl = &a->flags[i];
		fmt_time_short(from, fl->from_ns);
		anomaly_ids_text(ids, sizeof ids, fl, ndb);
		cells[0] = anomaly_severity_name(fl->severity);
		cells[1] = fl->kind;
		cells[2] = fl->agent;
		cells[3] = from;
		cells[4] = fl->summary;
		cells[5] = ids;
		table_add(&t, cells);
	}
	table_print(&t, stdout, 100, colour ? "\033[1m" : NULL, colour ? "\033[0m" : NULL);
	table_release(&t);
out:
	return;
}

int cmd_anomalies(int argc, char **argv)
{
	struct scanning s;
	struct anomaly_thresholds th;
	struct pricing *pricing = NULL;
	const char *format = "table", *fail_on = NULL, *v = NULL;
	struct filter f;
	char err[512];
	int64_t now = filter_now_ns();
	enum cli_arg arg;
	size_t k;
	int i, m, fail_level = -1, payloads = 1, ret = CLI_OK;

	filter_init(&f);
	anomaly_thresholds_default(&th);
	for (i = 1; i < argc; i++) {
		arg = cli_reading_arg("anomalies", usage_text, &f, argc, argv, &i, now);
		if (arg == CLI_ARG_HELP || arg == CLI_ARG_BAD) {
			ret = arg == CLI_ARG_HELP ? CLI_OK : CLI_USAGE;
			goto out;
		}
		if (arg == CLI_ARG_TAKEN)
			continue;
		if (strcmp(argv[i], "--no-payloads") == 0) {
			payloads = 0;
			continue;
		}
		m = cli_opt_value("anomalies", argc, argv, &i, "--format", &format);
		if (m == 0)
			m = cli_opt_value("anomalies", argc, argv, &i, "--fail-on", &fail_on);
		for (k = 0; k < sizeof opts / sizeof opts[0] && m == 0; k++) {
			m = cli_opt_value("anomalies", argc, argv, &i, opts[k].name, &v);
			if (m == 1 && opt_set(&opts[k], v, &th) != 0) {
				ret = cli_usage_error("anomalies", "invalid value '%s' for '%s'", v,
						      opts[k].name);
				goto out;
			}
		}
		if (m == 0) {
			ret = cli_unknown_arg("anomalies", argv[i]);
			goto out;
		}
		if (m < 0) {
			ret = CLI_USAGE;
			goto out;
		}
	}
	ret = cli_check_format("anomalies", format, CLI_FORMATS("table", "json", "csv"));
	if (ret != CLI_OK)
		goto out;
	if (fail_on != NULL) {
		fail_level = anomaly_severity_parse(fail_on);
		if (fail_level < 0) {
			ret = cli_usage_error("anomalies",
					      "invalid severity '%s': expected info, warning or "
					      "critical",
					      fail_on);
			goto out;
		}
	}
	ret = cli_reading_setup(&f, &pricing);
	if (ret != CLI_OK)
		goto out;
	memset(&s, 0, sizeof s);
	s.pricing = pricing;
	anomaly_init(&s.a, &th);
	progress_init(&s.progress);
	m = filter_scan(&f, 0, feed_one, &s, err, sizeof err);
	if (m == 0 && payloads)
		m = anomaly_prefix_pass(&s.a, &f, &s.progress, err, sizeof err);
	progress_done(&s.progress);
	if (m == 0)
		m = anomaly_finish(&s.a);
	if (m != 0 || s.a.nomem) {
		cli_error("%s", m < 0 && !s.a.nomem ? err : "out of memory");
		ret = CLI_ERR;
		goto release;
	}
	if (strcmp(format, "json") == 0)
		write_json(&s.a, f.ndb);
	else if (strcmp(format, "csv") == 0 && write_csv(&s.a, f.ndb) != 0)
		ret = CLI_ERR;
	else if (strcmp(format, "table") == 0)
		write_table(&s.a, f.ndb, cli_use_colour());
	if (ret != CLI_OK) {
		cli_error("out of memory");
		goto release;
	}
	for (k = 0; k < s.a.nflags && fail_level >= 0; k++)
		if ((int)s.a.flags[k].severity >= fail_level)
			ret = EXIT_FLAGGED;
release:
	anomaly_release(&s.a);
	pricing_free(pricing);
out:
	return ret;
}
