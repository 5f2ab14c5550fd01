/*
 * cmd_tail.c - `tokshim tail [-f]`: the last records that match the filters, then, with -f,
 * every new one as it lands.
 *
 * New records are found by id, not by time: a record's time is when its request started, so a
 * long call lands after shorter ones that started later, and a time cursor would miss it. Ids
 * are handed out in commit order with no gaps, so "every id from the last next_id seen to the
 * current one" is exactly what was committed since. Each store's next_id is polled every
 * 200 ms, one small read transaction each (LMDB readers see a commit from their next
 * transaction on), so a record shows up well within a second of its commit.
 *
 * fallback_of comes from the fallback detector (fallback.h) fed with every matching record: the
 * first listing scans each store whole (in time order, as `records` does) even when it prints
 * only the last few, so a followed record can be judged against a failure committed before
 * tail started. Followed records are fed in commit order, which is a session's time order as
 * long as its calls do not overlap.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyzer/cli.h"
#include "analyzer/fallback.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"
#include "analyzer/progress.h"
#include "analyzer/recordfmt.h"
#include "providers/pricing.h"

#define TAIL_DEFAULT 10
#define TAIL_MAX 100000 /* records kept for the first listing: -n is capped here */
#define TAIL_POLL_NS (200 * 1000 * 1000)
#define TABLE_WIDTH 100

static const char usage_text[] =
	"usage: tokshim tail [filters] [-n N] [-f] [--format table|jsonl]\n"
	"\n"
	"Print the last records that match the filters (oldest first) and, with -f, keep\n"
	"printing new ones as they are written, until interrupted. With several --db stores,\n"
	"records are named K#ID (K: the store's position among the --db options).\n"
	"\n"
	"Options:\n"
	"  -n, --lines N        how many records to print first (default 10, at most 100000)\n"
	"  -f, --follow         then wait for new records (checked every 200 ms)\n"
	"  --format FORMAT      table (default) or jsonl: one JSON object per record\n"
	"\n";

struct held {
	struct record *rec; /* filter_record_dup copy */
	size_t db;
	uint64_t fallback_of;
};

struct tail {
	const struct filter *f;
	const struct pricing *pricing;
	int jsonl, colour, following;
	struct table table;
	struct fallback fallback; /* fed every matching record, in each store's order */
	struct progress progress; /* the first listing's scan */
	/* The first listing: the last n matches of the store being scanned, a ring. */
	struct held *ring;
	size_t n, cap, start;
	size_t db;
	uint64_t below; /* only ids below this: the rest is -f's to print */
};

static void tail_print(struct tail *t, const struct record *rec, size_t db, uint64_t fallback_of)
{
	struct recordfmt_cells buf;
	const char *cells[RECORDFMT_NCOLS];
	int64_t pusd = 0;
	int priced = pricing_record_cost(t->pricing, rec, &pusd);
	struct jw w;

	if (t->jsonl) {
		jw_init(&w, stdout, 0);
		recordfmt_json_fallback(&w, rec, priced, pusd, db, t->f->ndb, fallback_of);
		putchar('\n');
	} else {
		recordfmt_row(&buf, cells, rec, priced, pusd, db, t->f->ndb);
		/* Out of memory only: the row is then skipped, the next ones still print. The
		 * first listing is printed whole, aligned; -f's rows as they come. */
		if (table_add(&t->table, cells) == 0 && t->following)
			table_print(&t->table, stdout, TABLE_WIDTH, t->colour ? "\033[1m" : NULL,
				    t->colour ? "\033[0m" : NULL);
	}
}

/* Feeds rec (a match of store db) to the fallback detector; returns its fallback_of. */
static uint64_t tail_fallback(struct tail *t, const struct record *rec, size_t db)
{
	struct fallback_verdict v;
	int64_t pusd = 0;
	int priced = pricing_record_cost(t->pricing, rec, &pusd);

	fallback_feed(&t->fallback, rec, db, priced, pusd, &v);
	return fallback_of(&v);
}

/* store_scan callback: feeds the detector and keeps the last t->cap matching records of one
 * store. */
static int keep_last(const struct record *rec, void *arg)
{
	struct tail *t = arg;
	struct record *cp;
	struct held *slot;
	uint64_t of;
	int ret = 0;

	progress_tick(&t->progress);
	if (rec->id >= t->below || !filter_match(t->f, rec))
		goto out;
	of = tail_fallback(t, rec, t->db);
	if (t->cap == 0)
		goto out;
	cp = filter_record_dup(rec);
	if (cp == NULL) {
		ret = STORE_ENOMEM;
		goto out;
	}
	if (t->n < t->cap) {
		slot = &t->ring[t->n++];
	} else {
		slot = &t->ring[t->start];
		filter_record_free(slot->rec);
		t->start = (t->start + 1) % t->cap;
	}
	slot->rec = cp;
	slot->db = t->db;
	slot->fallback_of = of;
out:
	return ret;
}

static int held_cmp(const void *a, const void *b)
{
	const struct held *x = a, *y = b;
	int c = 0;

	if (x->rec->ts_ns != y->rec->ts_ns)
		c = x->rec->ts_ns < y->rec->ts_ns ? -1 : 1;
	else if (x->db != y->db)
		c = x->db < y->db ? -1 : 1;
	else if (x->rec->id != y->rec->id)
		c = x->rec->id < y->rec->id ? -1 : 1;
	return c;
}

/*
 * The first listing: each store's last `lines` matches below its next_id[k], merged by time,
 * the last `lines` of them printed. Returns 0 or a STORE_E* code with err set.
 */
static int tail_first(struct tail *t, struct store **stores, const uint64_t *next_id,
		      size_t lines, char *err, size_t errlen)
{
	struct held *all = NULL;
	size_t nall = 0, k, i, from;
	int ret = STORE_ENOMEM;

	t->cap = lines;
	t->ring = calloc(lines + 1, sizeof *t->ring);
	all = calloc(lines * t->f->ndb + 1, sizeof *all);
	if (t->ring == NULL || all == NULL) {
		snprintf(err, errlen, "out of memory");
		goto release;
	}
	ret = 0;
	progress_init(&t->progress);
	for (k = 0; k < t->f->ndb && ret == 0; k++) {
		t->n = t->start = 0;
		t->db = k;
		t->below = next_id[k];
		ret = store_scan(stores[k], t->f->since_ns, t->f->until_ns, keep_last, t);
		if (ret != 0)
			snprintf(err, errlen, "cannot read '%s': %s", t->f->db[k],
				 store_strerror(ret));
		for (i = 0; i < t->n; i++)
			all[nall++] = t->ring[(t->start + i) % t->cap];
		t->n = 0;
	}
	progress_done(&t->progress);
	if (ret != 0)
		goto release;
	qsort(all, nall, sizeof *all, held_cmp);
	from = nall > lines ? nall - lines : 0;
	for (i = from; i < nall; i++)
		tail_print(t, all[i].rec, all[i].db, all[i].fallback_of);
	if (!t->jsonl && lines > 0)
		table_print(&t->table, stdout, TABLE_WIDTH, t->colour ? "\033[1m" : NULL,
			    t->colour ? "\033[0m" : NULL);
release:
	for (i = 0; i < t->n; i++)
		filter_record_free(t->ring[(t->start + i) % t->cap].rec);
	for (i = 0; i < nall; i++)
		filter_record_free(all[i].rec);
	free(all);
	free(t->ring);
	t->ring = NULL;
	return ret;
}

/* store_get callback of the follow loop. */
static int print_new(const struct record *rec, void *arg)
{
	struct tail *t = arg;

	if (filter_match(t->f, rec))
		tail_print(t, rec, t->db, tail_fallback(t, rec, t->db));
	return 0;
}

/* Prints what each store committed since next_id[k], and advances next_id. Runs until
 * stdout fails or a read does. */
static int tail_follow(struct tail *t, struct store **stores, uint64_t *next_id, char *err,
		       size_t errlen)
{
	struct timespec pause = { 0, TAIL_POLL_NS };
	uint64_t now_next, id;
	size_t k;
	int ret = 0, m;

	t->following = 1;
	while (ret == 0 && !ferror(stdout)) {
		for (k = 0; k < t->f->ndb && ret == 0; k++) {
			ret = store_next_id(stores[k], &now_next);
			t->db = k;
			for (id = next_id[k]; ret == 0 && id < now_next; id++) {
				/* A record pruned since it was committed is simply gone. */
				m = store_get(stores[k], id, print_new, t);
				ret = m == STORE_ENOTFOUND ? 0 : m;
			}
			if (ret == 0)
				next_id[k] = now_next;
			else
				snprintf(err, errlen, "cannot read '%s': %s", t->f->db[k],
					 store_strerror(ret));
		}
		fflush(stdout);
		nanosleep(&pause, NULL);
	}
	return ret;
}

int cmd_tail(int argc, char **argv)
{
	struct store *stores[FILTER_MAX_DB];
	uint64_t next_id[FILTER_MAX_DB], lines = TAIL_DEFAULT;
	struct pricing *pricing = NULL;
	struct tail t = { 0 };
	const char *format = "table", *v = NULL;
	struct filter f;
	char err[512];
	int64_t now = filter_now_ns();
	enum cli_arg arg;
	size_t k;
	int i, m, follow = 0, ret = CLI_OK;

	filter_init(&f);
	for (i = 1; i < argc; i++) {
		arg = cli_reading_arg("tail", usage_text, &f, argc, argv, &i, now);
		if (arg == CLI_ARG_HELP || arg == CLI_ARG_BAD) {
			ret = arg == CLI_ARG_HELP ? CLI_OK : CLI_USAGE;
			goto out;
		}
		if (arg == CLI_ARG_TAKEN)
			continue;
		if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0) {
			follow = 1;
			continue;
		}
		m = cli_opt_value("tail", argc, argv, &i, "--format", &format);
		if (m == 0)
			m = cli_opt_value("tail", argc, argv, &i, "--lines", &v);
		if (m == 0)
			m = cli_opt_value("tail", argc, argv, &i, "-n", &v);
		if (m == 0) {
			ret = cli_unknown_arg("tail", argv[i]);
			goto out;
		}
		if (m < 0) {
			ret = CLI_USAGE;
			goto out;
		}
		if (v && (cli_parse_u64(v, &lines) != 0 || lines > TAIL_MAX)) {
			ret = cli_usage_error("tail", "invalid number of lines '%s' (0 to %d)", v,
					      TAIL_MAX);
			goto out;
		}
	}
	ret = cli_check_format("tail", format, CLI_FORMATS("table", "jsonl"));
	if (ret != CLI_OK)
		goto out;
	ret = cli_reading_setup(&f, &pricing);
	if (ret != CLI_OK)
		goto out;
	t.f = &f;
	t.pricing = pricing;
	t.jsonl = strcmp(format, "jsonl") == 0;
	t.colour = cli_use_colour();
	table_init(&t.table, recordfmt_cols, RECORDFMT_NCOLS, 1);
	fallback_init(&t.fallback, FALLBACK_DEFAULT_WINDOW_NS);
	m = filter_open(&f, stores, err, sizeof err);
	if (m != 0)
		goto fail;
	/* next_id first, then the scan below it: a record committed in between is -f's. */
	for (k = 0; k < f.ndb && m == 0; k++) {
		m = store_next_id(stores[k], &next_id[k]);
		if (m != 0)
			snprintf(err, sizeof err, "cannot read '%s': %s", f.db[k],
				 store_strerror(m));
	}
	if (m == 0)
		m = tail_first(&t, stores, next_id, (size_t)lines, err, sizeof err);
	fflush(stdout);
	if (m == 0 && follow)
		m = tail_follow(&t, stores, next_id, err, sizeof err);
	filter_close(stores, f.ndb);
fail:
	if (m != 0) {
		cli_error("%s", err);
		ret = CLI_ERR;
	}
	table_release(&t.table);
	fallback_release(&t.fallback);
	pricing_free(pricing);
out:
	return ret;
}
