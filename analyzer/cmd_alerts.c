/*
 * cmd_alerts.c - `tokshim alerts`: lint the alerts file, deliver pending alert events once
 * (send), or keep delivering and evaluate the failure-rate and anomaly rules every interval
 * (watch). alerts.c has the library; docs/alerts.md the file and the guarantees.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyzer/alerts.h"
#include "analyzer/cli.h"

static const char usage_text[] =
	"usage: tokshim alerts lint [FILE]\n"
	"       tokshim alerts send [--alerts FILE] [--db PATH] [--dry-run]\n"
	"       tokshim alerts watch [--alerts FILE] [--db PATH] [--interval 10s]\n"
	"                            [--iterations N] [--dry-run]\n"
	"\n"
	"Deliver the store's alert events to the channels of the alerts file (default\n"
	"$TOKSHIM_ALERTS): Slack, JSON webhooks, email over SMTP, a log file, syslog.\n"
	"\n"
	"Options:\n"
	"  --alerts FILE     the alerts file (docs/alerts.md)\n"
	"  --db PATH         the store (default $TOKSHIM_DB, else the usual place)\n"
	"  --dry-run         print what would be sent; send and write nothing\n"
	"  --interval D      watch: time between rounds [10s]\n"
	"  --iterations N    watch: stop after N rounds (default: until interrupted)\n";

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Sleeps ns, waking early when a signal asked to stop. */
static void nap(int64_t ns)
{
	struct timespec ts = { 0, 100000000 };

	for (int64_t left = ns; left > 0 && !stopping; left -= 100000000)
		nanosleep(&ts, NULL);
}

struct alerts_args {
	const char *file, *interval, *iterations;
	char db[4096];
	int dry_run;
};

/* Parses argv[2..]; returns CLI_OK, or CLI_USAGE with the error printed (*done for --help). */
static int parse_args(int argc, char **argv, int watch, struct alerts_args *a, int *done)
{
	const char *db = NULL;
	int i, m, ret = CLI_OK;

	for (i = 2; i < argc && ret == CLI_OK && !*done; i++) {
		if (cli_is_help(argv[i])) {
			fputs(usage_text, stdout);
			*done = 1;
			continue;
		}
		if (strcmp(argv[i], "--dry-run") == 0) {
			a->dry_run = 1;
			continue;
		}
		m = cli_opt_value("alerts", argc, argv, &i, "--alerts", &a->file);
		if (m == 0)
			m = cli_opt_value("alerts", argc, argv, &i, "--db", &db);
		if (m == 0 && watch)
			m = cli_opt_value("alerts", argc, argv, &i, "--interval", &a->interval);
		if (m == 0 && watch)
			m = cli_opt_value("alerts", argc, argv, &i, "--iterations", &a->iterations);
		if (m == 0)
			ret = cli_unknown_arg("alerts", argv[i]);
		else if (m < 0)
			ret = CLI_USAGE;
	}
	if (ret == CLI_OK && !*done && a->file == NULL)
		a->file = getenv("TOKSHIM_ALERTS");
	if (ret == CLI_OK && !*done && a->file == NULL)
		ret = cli_usage_error("alerts", "no alerts file: give --alerts FILE or set "
						"TOKSHIM_ALERTS");
	if (ret == CLI_OK && db != NULL)
		snprintf(a->db, sizeof a->db, "%s", db);
	else if (ret == CLI_OK && filter_default_db(a->db, sizeof a->db) != 0)
		ret = cli_usage_error("alerts", "no store: give --db PATH or set TOKSHIM_DB");
	return ret;
}

static int lint(int argc, char **argv)
{
	struct alerts_config c;
	const char *file = argc >= 3 ? argv[2] : getenv("TOKSHIM_ALERTS");
	char err[600];
	int ret = CLI_OK;

	if (argc > 3 || file == NULL) {
		ret = cli_usage_error("alerts", argc > 3 ? "unexpected argument '%s'" :
							   "no alerts file%s",
				      argc > 3 ? argv[3] : "");
		goto out;
	}
	if (alerts_config_load(&c, file, err, sizeof err) != 0) {
		cli_error("%s", err);
		ret = CLI_ERR;
	} else {
		printf("'%s': %zu channel%s\n", file, c.nch, c.nch == 1 ? "" : "s");
	}
	alerts_config_release(&c);
out:
	return ret;
}

/* One round: the rules (watch, not dry run), then delivery. Returns CLI_OK or CLI_ERR. */
static int round_run(struct store *st, const struct alerts_config *c,
		     const struct pricing *pricing, const struct alerts_args *a)
{
	struct alerts_result res;
	uint64_t written = 0;
	int rc = 0;

	if (pricing != NULL && !a->dry_run)
		rc = alerts_evaluate(st, c, pricing, filter_now_ns(), &written);
	if (rc == 0)
		rc = alerts_deliver(st, c, a->dry_run, stdout, stderr, &res);
	if (rc != 0)
		cli_error("cannot use '%s': %s", a->db, store_strerror(rc));
	return rc != 0 || res.failed != 0 ? CLI_ERR : CLI_OK;
}

int cmd_alerts(int argc, char **argv)
{
	const char *sub = argc >= 2 ? argv[1] : "";
	int watch = strcmp(sub, "watch") == 0;
	struct alerts_args a;
	struct alerts_config c;
	struct pricing *pricing = NULL;
	struct store *st = NULL;
	int64_t interval = 10 * 1000000000ll;
	uint64_t rounds = 0, n;
	char err[600];
	int rc, done = 0, ret;

	memset(&a, 0, sizeof a);
	if (argc < 2 || cli_is_help(sub)) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		ret = argc < 2 ? CLI_USAGE : CLI_OK;
		goto out;
	}
	if (strcmp(sub, "lint") == 0) {
		ret = lint(argc, argv);
		goto out;
	}
	if (!watch && strcmp(sub, "send") != 0) {
		ret = cli_usage_error("alerts", "unknown subcommand '%s': expected lint, send or "
						"watch",
				      sub);
		goto out;
	}
	ret = parse_args(argc, argv, watch, &a, &done);
	if (ret != CLI_OK || done)
		goto out;
	if (a.interval != NULL &&
	    (filter_parse_duration(a.interval, &interval) != 0 || interval <= 0)) {
		ret = cli_usage_error("alerts", "invalid interval '%s'", a.interval);
		goto out;
	}
	if (a.iterations != NULL && (cli_parse_u64(a.iterations, &rounds) != 0 || rounds == 0)) {
		ret = cli_usage_error("alerts", "invalid iterations '%s'", a.iterations);
		goto out;
	}
	ret = CLI_ERR;
	if (alerts_config_load(&c, a.file, err, sizeof err) != 0) {
		cli_error("%s", err);
		goto config_release;
	}
	if (watch && (c.failure_rate || c.anomaly) && pricing_load(&pricing, err, sizeof err)) {
		cli_error("%s", err);
		goto config_release;
	}
	rc = store_open(&st, a.db, a.dry_run ? STORE_READONLY : 0, 0);
	if (rc != 0) {
		cli_error("cannot open '%s': %s", a.db, store_strerror(rc));
		goto config_release;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	ret = round_run(st, &c, watch ? pricing : NULL, &a);
	for (n = 1; watch && !stopping && (rounds == 0 || n < rounds); n++) {
		nap(interval);
		if (!stopping)
			ret = round_run(st, &c, pricing, &a);
	}
	curl_global_cleanup();
	store_close(st);
config_release:
	pricing_free(pricing);
	alerts_config_release(&c);
out:
	return ret;
}
