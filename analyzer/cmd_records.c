/*
 * cmd_records.c - `tokshim records`: the usage records that match the filters, oldest first,
 * as an aligned table for people or as JSON lines (one object per record, DESIGN.md's keys)
 * for tools. The table is printed in batches so a long listing starts at once and memory
 * stays flat; column widths only grow between batches, so it stays aligned.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "analyzer/cli.h"
#include "analyzer/fallback.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"
#include "analyzer/progress.h"
#include "analyzer/recordfmt.h"
#include "providers/pricing.h"

#define TABLE_BATCH 1000
#define TABLE_WIDTH 100

static const char usage_text[] =
	"usage: tokshim records [filters] [--format table|jsonl] [--limit N] [--offset N]\n"
	"\n"
	"List the usage records that match the filters, oldest first.\n"
	"\n"
	"Options:\n"
	"  --format FORMAT      table (default) or jsonl: one JSON object per record\n"
	"  --limit N            print at most N records\n"
	"  --offset N           skip the first N matching records\n"
	"\n";

struct listing {
	const struct pricing *pricing;
	int jsonl;
	uint64_t limit, offset, seen, printed;
	struct table table;
	int colour;
	size_t ndb; /* stores read: with several, records are named K#ID */
	struct fallback fallback; /* fills fallback_of; fed every record, listed or skipped */
	struct progress progress;
};

static int list_one(const struct record *rec, void *arg)
{
	struct listing *l = arg;
	struct recordfmt_cells buf;
	const char *cells[RECORDFMT_NCOLS];
	struct fallback_verdict v;
	int64_t pusd = 0;
	int priced, ret = 0;
	struct jw w;

	if (l->printed >= l->limit) {
		ret = 1; /* enough: stop the scan */
		goto out;
	}
	progress_tick(&l->progress);
	priced = pricing_record_cost(l->pricing, rec, &pusd);
	fallback_feed(&l->fallback, rec, filter_scan_db(), priced, pusd, &v);
	if (l->seen++ < l->offset)
		goto out;
	if (l->jsonl) {
		jw_init(&w, stdout, 0);
		recordfmt_json_fallback(&w, rec, priced, pusd, filter_scan_db(), l->ndb,
					fallback_of(&v));
		putchar('\n');
	} else {
		recordfmt_row(&buf, cells, rec, priced, pusd, filter_scan_db(), l->ndb);
		if (table_add(&l->table, cells) != 0) {
			ret = STORE_ENOMEM;
			goto out;
		}
		if (l->table.nrows == TABLE_BATCH)
			table_print(&l->table, stdout, TABLE_WIDTH, l->colour ? "\033[1m" : NULL,
				    l->colour ? "\033[0m" : NULL);
	}
	l->printed++;
out:
	return ret;
}

int cmd_records(int argc, char **argv)
{
	struct listing l = { .limit = UINT64_MAX };
	struct pricing *pricing = NULL;
	const char *format = "table", *v = NULL;
	const struct cli_opt opts[] = {
		{ "--format", &format, NULL },
		{ "--limit", &v, &l.limit },
		{ "--offset", &v, &l.offset },
	};
	struct filter f;
	char err[512];
	int done, m, ret = CLI_OK;

	filter_init(&f);
	ret = cli_reading_args("records", usage_text, &f, argc, argv, opts,
			       sizeof opts / sizeof opts[0], &done);
	if (ret != CLI_OK || done)
		goto out;
	ret = cli_check_format("records", format, CLI_FORMATS("table", "jsonl"));
	if (ret != CLI_OK)
		goto out;
	ret = cli_reading_setup(&f, &pricing);
	if (ret != CLI_OK)
		goto out;
	l.pricing = pricing;
	l.ndb = f.ndb;
	l.jsonl = strcmp(format, "jsonl") == 0;
	l.colour = cli_use_colour();
	table_init(&l.table, recordfmt_cols, RECORDFMT_NCOLS, 1);
	fallback_init(&l.fallback, FALLBACK_DEFAULT_WINDOW_NS);
	progress_init(&l.progress);
	/* Records printed to a terminal are progress enough; a line on stderr would cut them. */
	if (isatty(STDOUT_FILENO))
		l.progress.enabled = 0;
	m = filter_scan(&f, 1, list_one, &l, err, sizeof err);
	progress_done(&l.progress);
	if (m < 0) {
		cli_error("%s", err);
		ret = CLI_ERR;
	} else if (!l.jsonl) {
		if (l.printed == 0)
			puts("no records");
		else
			table_print(&l.table, stdout, TABLE_WIDTH, l.colour ? "\033[1m" : NULL,
				    l.colour ? "\033[0m" : NULL);
	}
	table_release(&l.table);
	fallback_release(&l.fallback);
	pricing_free(pricing);
out:
	return ret;
}
