/*
 * test_prune.c - store_prune: exactly the records older than the cut go, with their ids
 * entries and payloads; the file gets smaller; a dry run changes nothing; a store another
 * process has open is pruned but not compacted; and processes that open the store while it
 * is being compacted wait, then append into the new file without losing a record, whichever
 * meta page the lock file's transaction id points at.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/unit/check.h"

static char tmp_root[] = "/tmp/tokshim-prune-XXXXXX";

#define T0 1764044400000000000LL /* 2025-11-25T04:20:00Z */
#define SEC 1000000000LL

static void fill(struct record *r, int i)
{
	memset(r, 0, sizeof *r);
	r->ts_ns = T0 + i * SEC;
	r->input_tokens = 1000 + i;
	r->ttfb_us = -1;
	r->retry_after_s = -1;
	r->agent = record_str_of("pruner");
	r->model = record_str_of("gpt-4o");
}

/* A 4 KiB body, different per record so compression cannot fold them together. */
static void fill_payload(struct payload *pl, char *body, size_t n, int i)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
	size_t k;

	for (k = 0; k < n; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		body[k] = (char)('a' + x % 26);
	}
	memset(pl, 0, sizeof *pl);
	pl->req_head = record_str_of("POST /v1/chat/completions HTTP/1.1\r\n");
	pl->req_body.p = body;
	pl->req_body.n = (uint32_t)n;
	pl->req_body_size = n;
}

/* Makes path with n records one second apart, each with a payload. */
static void make_store(const char *path, int n)
{
	struct store *st = NULL;
	struct record r;
	struct payload pl;
	char body[4096];
	int i;

	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	for (i = 0; i < n; i++) {
		fill(&r, i);
		fill_payload(&pl, body, sizeof body, i);
		CHECK_INT(store_append(st, &r, &pl, NULL, 0), 0);
	}
	store_close(st);
}

struct ids {
	uint64_t v[4096];
	int n;
};

static int collect(const struct record *rec, void *arg)
{
	struct ids *ids = arg;

	if (ids->n < 4096)
		ids->v[ids->n] = rec->id;
	ids->n++;
	return 0;
}

static void read_ids(const char *path, struct ids *ids, struct store_info *info)
{
	struct store *st = NULL;
	uint64_t problems = 1;

	memset(ids, 0, sizeof *ids);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	CHECK_INT(store_scan(st, 0, INT64_MAX, collect, ids), 0);
	CHECK_INT(store_info(st, info), 0);
	CHECK_INT(store_verify(st, NULL, NULL, &problems), 0);
	CHECK_INT(problems, 0);
	store_close(st);
}

static void test_prune_exact(void)
{
	char path[512];
	struct store_prune_result res;
	struct store_info info;
	struct ids ids;
	struct store *st = NULL;
	struct payload pl;
	struct stat sb;
	int i;

	snprintf(path, sizeof path, "%s/exact.mdb", tmp_root);
	make_store(path, 3000);
	/* A dry run counts and changes nothing. */
	CHECK_INT(store_prune(path, T0 + 2500 * SEC, STORE_PRUNE_DRY_RUN, NULL, NULL, &res), 0);
	CHECK_INT(res.records, 2500);
	CHECK_INT(res.payloads, 2500);
	CHECK_INT(res.compacted, 0);
	CHECK_INT(res.bytes_after, res.bytes_before);
	read_ids(path, &ids, &info);
	CHECK_INT(ids.n, 3000);

	/* Records 1..2500 (times T0 .. T0+2499 s) go; 2501..3000 stay, ids unchanged. */
	CHECK_INT(store_prune(path, T0 + 2500 * SEC, 0, NULL, NULL, &res), 0);
	CHECK_INT(res.records, 2500);
	CHECK_INT(res.payloads, 2500);
	CHECK_INT(res.compacted, 1);
	CHECK(res.bytes_after * 4 < res.bytes_before);
	CHECK_INT(stat(path, &sb), 0);
	CHECK_INT(res.bytes_after, sb.st_size);
	read_ids(path, &ids, &info);
	CHECK_INT(ids.n, 500);
	for (i = 0; i < 500 && i < ids.n; i++)
		CHECK_INT(ids.v[i], 2501 + i);
	CHECK_INT(info.records, 500);
	CHECK_INT(info.payloads, 500);
	CHECK_INT(info.next_id, 3001);
	/* The kept payloads still read back; a pruned id is gone. */
	CHECK_INT(store_open(&st, path, 0, 0), 0);
	CHECK_INT(store_payload_get(st, 2501, &pl), 0);
	CHECK_INT(pl.req_body.n, 4096);
	payload_release(&pl);
	CHECK_INT(store_payload_get(st, 2500, &pl), STORE_ENOTFOUND);
	payload_release(&pl);
	/* Appends go on with the next id. */
	{
		struct record r;

		fill(&r, 5000);
		CHECK_INT(store_append(st, &r, NULL, NULL, 0), 0);
		CHECK_INT(r.id, 3001);
	}
	store_close(st);
	/* Nothing older: nothing to delete, the file is still compacted (no change in size). */
	CHECK_INT(store_prune(path, T0, 0, NULL, NULL, &res), 0);
	CHECK_INT(res.records, 0);
	read_ids(path, &ids, &info);
	CHECK_INT(ids.n, 501);
	CHECK_INT(store_prune("/nonexistent/x.mdb", T0, 0, NULL, NULL, &res), STORE_ENOENT);
}

/* Another process holding the store open: records deleted, the file not replaced. */
static void test_prune_in_use(void)
{
	char path[512];
	struct store_prune_result res;
	struct store_info info;
	struct ids ids;
	struct stat before, after;
	int go[2], ready[2], status;
	char c;
	pid_t pid;

	snprintf(path, sizeof path, "%s/inuse.mdb", tmp_root);
	make_store(path, 200);
	CHECK_INT(pipe(go), 0);
	CHECK_INT(pipe(ready), 0);
	pid = fork();
	if (pid == 0) {
		struct store *st = NULL;

		close(go[1]);
		if (store_open(&st, path, 0, 0) != 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		store_close(st);
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	CHECK_INT(read(ready[0], &c, 1), 1);
	stat(path, &before);
	CHECK_INT(store_prune(path, T0 + 150 * SEC, 0, NULL, NULL, &res), 0);
	CHECK_INT(res.records, 150);
	CHECK_INT(res.compacted, 0);
	stat(path, &after);
	CHECK_INT(after.st_ino, before.st_ino);
	CHECK_INT(write(go[1], "g", 1), 1);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(go[1]);
	close(ready[0]);
	read_ids(path, &ids, &info);
	CHECK_INT(ids.n, 50);
	CHECK_INT(ids.v[0], 151);
}

struct opener {
	const char *path;
	pid_t pid;
};

/* Called by store_prune just before the copy: a process starts opening the store now, and
 * must wait until the compacted file is in place, then append to it and read it whole. */
static void start_opener(void *arg)
{
	struct opener *o = arg;

	o->pid = fork();
	if (o->pid == 0) {
		struct store *st = NULL;
		struct record r;
		struct ids ids;
		int i, ok = 1;

		/* The lock prune holds belongs to its open file description, which fork shares:
		 * an agent never holds it, so neither may this stand-in for one. */
		close_range(3, ~0u, 0);
		if (store_open(&st, o->path, 0, 0) != 0)
			_exit(10);
		for (i = 0; i < 3 && ok; i++) {
			fill(&r, 9000 + i);
			ok = store_append(st, &r, NULL, NULL, 0) == 0;
		}
		memset(&ids, 0, sizeof ids);
		if (!ok || store_scan(st, 0, INT64_MAX, collect, &ids) != 0)
			_exit(11);
		store_close(st);
		/* 100 kept + 3 of ours: anything else means a stale view of the file. */
		_exit(ids.n == 103 ? 0 : 12);
	}
	/* Give the child time to reach the lock inside its store_open. */
	usleep(200 * 1000);
}

/* Openers arriving during the compaction, with the last transaction id even and odd. */
static void test_prune_openers_wait(void)
{
	struct store_prune_result res;
	struct store_info info;
	struct ids ids;
	char path[512];
	int parity, status;

	for (parity = 0; parity < 2; parity++) {
		struct opener o = { .path = path };

		snprintf(path, sizeof path, "%s/openers%d.mdb", tmp_root, parity);
		/* One create txn plus one per append, plus the pruning batches: the two
		 * stores end on transaction ids of either parity. */
		make_store(path, 300 + parity);
		CHECK_INT(store_prune(path, T0 + (200 + parity) * SEC, 0, start_opener, &o, &res),
			  0);
		CHECK_INT(res.records, 200 + parity);
		CHECK_INT(res.compacted, 1);
		waitpid(o.pid, &status, 0);
		CHECK(WIFEXITED(status));
		CHECK_INT(WEXITSTATUS(status), 0);
		read_ids(path, &ids, &info);
		CHECK_INT(ids.n, 103);
		CHECK_INT(info.next_id, 300 + parity + 3 + 1);
	}
}

int main(void)
{
	char cmd[600];

	if (mkdtemp(tmp_root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_prune_exact);
	RUN(test_prune_in_use);
	RUN(test_prune_openers_wait);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp_root);
	CHECK_DONE();
}
