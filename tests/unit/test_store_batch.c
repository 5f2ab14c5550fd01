/*
 * test_store_batch.c - store_append_batch: many records in one transaction, all or none,
 * consecutive ids, and the same records back from a scan as one-at-a-time appends give; the
 * names a batch adds to the string table.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/unit/check.h"

static char tmp_root[] = "/tmp/tokshim-batch-XXXXXX";
static char db_path[256];

struct seen {
	uint64_t ids[8];
	int64_t input[8];
	int n;
	int flagged;
};

static int seen_add(const struct record *rec, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8) {
		s->ids[s->n] = rec->id;
		s->input[s->n] = rec->input_tokens;
	}
	if (rec->flags & RECORD_PAYLOAD)
		s->flagged++;
	s->n++;
	return 0;
}

static void fill(struct record *r, int i)
{
	memset(r, 0, sizeof(*r));
	r->ts_ns = 1764044400000000000LL + i;
	r->input_tokens = 100 + i;
	r->output_tokens = 10;
	r->ttfb_us = -1;
	r->retry_after_s = -1;
	r->flags = RECORD_PAYLOAD; /* a batch never stores payloads: the flag must be cleared */
	r->agent = record_str_of("a");
	r->model = record_str_of("gpt-4o");
}

static void test_batch(void)
{
	struct record recs[5], one;
	struct store *st = NULL;
	struct store_info info;
	struct seen s = { 0 };
	int i;

	snprintf(db_path, sizeof(db_path), "%s/batch.mdb", tmp_root);
	CHECK_INT(store_open(&st, db_path, STORE_CREATE, 0), 0);
	fill(&one, 10);
	CHECK_INT(store_append(st, &one, NULL, NULL, 0), 0);
	CHECK_INT(one.id, 1);
	for (i = 0; i < 5; i++)
		fill(&recs[i], i);
	CHECK_INT(store_append_batch(st, recs, 5), 0);
	for (i = 0; i < 5; i++) {
		CHECK_INT(recs[i].id, 2 + i);
		CHECK_INT(recs[i].flags & RECORD_PAYLOAD, 0);
	}
	/* Bad arguments and a bad record anywhere in the batch: nothing written. */
	CHECK_INT(store_append_batch(st, recs, 0), STORE_EINVAL);
	CHECK_INT(store_append_batch(st, recs, STORE_BATCH_MAX + 1), STORE_EINVAL);
	CHECK_INT(store_append_batch(st, NULL, 1), STORE_EINVAL);
	recs[3].ts_ns = -1;
	CHECK_INT(store_append_batch(st, recs, 5), STORE_EINVAL);
	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.records, 6);
	CHECK_INT(info.next_id, 7);
	CHECK_INT(store_scan(st, 0, INT64_MAX, seen_add, &s), 0);
	CHECK_INT(s.n, 6);
	CHECK_INT(s.flagged, 0);
	/* Scan order is time order: the batch's records (ts +0..+4) come before the single one. */
	CHECK_INT(s.ids[0], 2);
	CHECK_INT(s.input[0], 100);
	CHECK_INT(s.ids[4], 6);
	CHECK_INT(s.input[4], 104);
	CHECK_INT(s.ids[5], 1);
	CHECK_INT(s.input[5], 110);
	store_close(st);
	unlink(db_path);
	snprintf(db_path, sizeof(db_path), "%s/batch.mdb-lock", tmp_root);
	unlink(db_path);
}

/* The refs a scan gives each record's agent and session. */
struct refs_seen {
	uint32_t agent[8], session[8];
	char session_name[8][8];
	int n;
};

static int refs_add(const struct record *rec, void *arg)
{
	struct refs_seen *s = arg;

	if (s->n < 8) {
		s->agent[s->n] = rec->agent.ref;
		s->session[s->n] = rec->session.ref;
		snprintf(s->session_name[s->n], sizeof(s->session_name[0]), "%.*s",
			 (int)rec->session.n, rec->session.p != NULL ? rec->session.p : "");
	}
	s->n++;
	return 0;
}

/*
 * A batch names its strings in its one transaction: a name new to the store gets the next id
 * the first time a record of the batch names it, and the records after it in the same batch
 * find that id (not yet committed, so not from another writer's table).
 */
static void test_batch_strings(void)
{
	static const char *const sessions[5] = { "s-0", "s-1", "s-0", "s-2", "s-1" };
	struct record recs[5];
	struct store *st = NULL;
	struct store_info info;
	struct refs_seen s = { 0 };
	int i;

	snprintf(db_path, sizeof(db_path), "%s/names.mdb", tmp_root);
	CHECK_INT(store_open(&st, db_path, STORE_CREATE, 0), 0);
	if (st == NULL)
		return;
	for (i = 0; i < 5; i++) {
		fill(&recs[i], i);
		recs[i].model = record_str_of(NULL);
		recs[i].session = record_str_of(sessions[i]);
	}
	CHECK_INT(store_append_batch(st, recs, 5), 0);
	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.strings, 4); /* "a", "s-0", "s-1", "s-2" */
	CHECK_INT(store_scan(st, 0, INT64_MAX, refs_add, &s), 0);
	CHECK_INT(s.n, 5);
	for (i = 0; i < 5; i++) {
		CHECK_INT(s.agent[i], 1);
		CHECK_STR(s.session_name[i], sessions[i]);
	}
	CHECK_INT(s.session[0], 2);
	CHECK_INT(s.session[1], 3);
	CHECK_INT(s.session[2], 2);
	CHECK_INT(s.session[3], 4);
	CHECK_INT(s.session[4], 3);
	store_close(st);
	unlink(db_path);
	snprintf(db_path, sizeof(db_path), "%s/names.mdb-lock", tmp_root);
	unlink(db_path);
}

static int count_one(const struct record *rec, void *arg)
{
	(void)rec;
	(*(uint64_t *)arg)++;
	return 0;
}

/* VmHWM of this process in KiB: the peak resident set, file pages of the map included. */
static long peak_rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	}
	if (f != NULL)
		fclose(f);
	return kib;
}

/*
 * A scan gives back the map's pages as it goes: reading a ~120 MB store leaves the peak
 * resident set far below the file's size (it would hold the whole file otherwise).
 */
static void test_scan_releases_pages(void)
{
	static struct record recs[10000];
	struct store *st = NULL;
	uint64_t n = 0;
	long before, after;
	int i, b;

	snprintf(db_path, sizeof(db_path), "%s/big.mdb", tmp_root);
	CHECK_INT(store_open(&st, db_path, STORE_CREATE, 1ull << 30), 0);
	for (b = 0; b < 30; b++) {
		for (i = 0; i < 10000; i++) {
			fill(&recs[i], b * 10000 + i);
			recs[i].error_message = record_str_of(
				"Rate limit reached for requests per min. Please try again in 20s. "
				"Rate limit reached for requests per min. Please try again in 20s.");
		}
		CHECK_INT(store_append_batch(st, recs, 10000), 0);
	}
	store_close(st);
	CHECK_INT(store_open(&st, db_path, STORE_READONLY, 0), 0);
	before = peak_rss_kib();
	CHECK_INT(store_scan(st, 0, INT64_MAX, count_one, &n), 0);
	after = peak_rss_kib();
	CHECK_INT(n, 300000);
	CHECK(before > 0 && after - before < 40 * 1024);
	store_close(st);
	unlink(db_path);
	snprintf(db_path, sizeof(db_path), "%s/big.mdb-lock", tmp_root);
	unlink(db_path);
}

int main(void)
{
	if (mkdtemp(tmp_root) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	RUN(test_batch);
	RUN(test_batch_strings);
	RUN(test_scan_releases_pages);
	rmdir(tmp_root);
	CHECK_DONE();
}
