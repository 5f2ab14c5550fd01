/*
 * scan_floor.c - how fast a store's records can be read at all, for figure 6: the floor under
 * `tokshim report`. Each store's time range is cut into slices taken in turn by THREADS threads,
 * as report does, each slice in its own read transaction:
 *
 *   scan_floor DB THREADS cursor   LMDB's cursor over the records database, counting entries
 *                                  (it touches each leaf page and node, never a value's bytes)
 *   scan_floor DB THREADS scan     store_scan with a callback that only counts: its read of
 *                                  the leaves with pread and record_decode of every record
 *
 * Prints one JSON line: mode, threads, records, seconds, records_per_s.
 */
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/endian.h"
#include "store/store.h"

#define FLOOR_SLICES 128
#define FLOOR_THREADS_MAX 16

struct floor {
	const char *path;
	int cursor; /* mode */
	struct store *st;
	MDB_env *env;
	int64_t lo, hi;
	size_t next; /* atomic: next slice */
	uint64_t records; /* atomic */
	int failed;
};

static int floor_count(const struct record *rec, void *arg)
{
	(*(uint64_t *)arg)++;
	return rec == NULL;
}

/* The cursor walk of [since, until): entries counted. */
static uint64_t floor_cursor(struct floor *f, int64_t since, int64_t until)
{
	unsigned char start[16];
	MDB_val key = { 16, start }, val;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint64_t n = 0;
	int rc;

	endian_put_be64(start, (uint64_t)since);
	endian_put_be64(start + 8, 0);
	if (mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn) != 0) {
		f->failed = 1;
		goto out;
	}
	if (mdb_dbi_open(txn, "records", 0, &dbi) != 0 || mdb_cursor_open(txn, dbi, &cur) != 0) {
		f->failed = 1;
		goto txn_abort;
	}
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && (int64_t)endian_be64(key.mv_data) < until) {
		n++;
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
txn_abort:
	mdb_txn_abort(txn);
out:
	return n;
}

static void *floor_run(void *arg)
{
	struct floor *f = arg;
	__int128 width = (__int128)f->hi - f->lo;
	int64_t since, until;
	uint64_t n;
	size_t i;

	for (;;) {
		i = __atomic_fetch_add(&f->next, 1, __ATOMIC_RELAXED);
		if (i >= FLOOR_SLICES)
			break;
		since = (int64_t)(f->lo + width * i / FLOOR_SLICES);
		until = (int64_t)(f->lo + width * (i + 1) / FLOOR_SLICES);
		n = 0;
		if (f->cursor)
			n = floor_cursor(f, since, until);
		else if (store_scan(f->st, since, until, floor_count, &n) != 0)
			f->failed = 1;
		__atomic_add_fetch(&f->records, n, __ATOMIC_RELAXED);
	}
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct floor f = { 0 };
	pthread_t th[FLOOR_THREADS_MAX];
	int nthreads, i, started = 0;
	uint64_t stored;
	double t0, secs;

	if (argc != 4 || (strcmp(argv[3], "cursor") != 0 && strcmp(argv[3], "scan") != 0)) {
		fprintf(stderr, "usage: scan_floor DB THREADS cursor|scan\n");
		return 2;
	}
	nthreads = atoi(argv[2]);
	nthreads = nthreads < 1 ? 1 : nthreads > FLOOR_THREADS_MAX ? FLOOR_THREADS_MAX : nthreads;
	f.path = argv[1];
	f.cursor = strcmp(argv[3], "cursor") == 0;
	if (store_open(&f.st, f.path, STORE_READONLY, 0) != 0 ||
	    store_span(f.st, &f.lo, &f.hi, &stored) != 0) {
		fprintf(stderr, "scan_floor: cannot open '%s'\n", f.path);
		return 1;
	}
	f.hi++;
	if (f.cursor && (mdb_env_create(&f.env) != 0 || mdb_env_set_maxdbs(f.env, 16) != 0 ||
			 mdb_env_open(f.env, f.path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOTLS,
				      0600) != 0)) {
		fprintf(stderr, "scan_floor: cannot open '%s' with lmdb\n", f.path);
		return 1;
	}
	t0 = now_s();
	for (i = 1; i < nthreads; i++)
		if (pthread_create(&th[started], NULL, floor_run, &f) == 0)
			started++;
	floor_run(&f);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	secs = now_s() - t0;
	printf("{\"mode\":\"%s\",\"threads\":%d,\"records\":%llu,\"seconds\":%.3f,"
	       "\"records_per_s\":%.0f}\n",
	       argv[3], nthreads, (unsigned long long)f.records, secs, f.records / secs);
	if (f.env)
		mdb_env_close(f.env);
	store_close(f.st);
	return f.failed || f.records != stored;
}
