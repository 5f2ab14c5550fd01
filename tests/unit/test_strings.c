/*
 * test_strings.c - the store's string table (store/strings.h) through the store's API: the ids
 * writers give, what readers get back, and the table after concurrent writers, a transaction
 * that fails after naming a new string, a full store, and an older store's upgrade.
 *
 * Each test keeps a plain reference of what it wrote (each record's strings and the id each
 * must come back with) and compares every record read back with it, through the writer's own
 * handle and through a reader opened in a child process, as another program would read the
 * store: a second handle on one file inside one process would break LMDB's locks
 * (docs/record-format.md). Where the ids follow from the order of commits, the reference
 * gives them like the store must (SQLite's compare-with-reference shape): a string gets the
 * next id the first time a committed record names it, in field order, error_message never,
 * and only strings of 1 to 255 bytes.
 */
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/endian.h"
#include "store/store.h"
#include "tests/unit/check.h"
#include "tests/unit/record_v3.h"
#include "tests/unit/tmpdir.h"

/* ---- the reference ------------------------------------------------------------------------ */

/* One record as a test wrote it: its id, time, input_tokens, and each string with the ref it
 * must come back with (0: inline). */
struct want {
	uint64_t id;
	int64_t ts_ns, input_tokens;
	const char *s[RECORD_NSTRS]; /* NULL: empty */
	uint32_t ref[RECORD_NSTRS];
};

/* The ids of a store's strings as the store must give them, in the order records commit. */
struct model {
	char *name[4096];
	uint32_t n;
};

static uint32_t model_intern(struct model *m, const char *s)
{
	uint32_t i;

	if (s == NULL || *s == '\0' || strlen(s) > 255)
		return 0;
	for (i = 0; i < m->n; i++) {
		if (strcmp(m->name[i], s) == 0)
			return i + 1;
	}
	m->name[m->n++] = strdup(s);
	return m->n;
}

/* Gives w the refs of its strings once it has committed. */
static void model_commit(struct model *m, struct want *w)
{
	for (int i = 0; i < RECORD_NSTRS; i++)
		w->ref[i] = i == RECORD_STR_ERROR_MESSAGE ? 0 : model_intern(m, w->s[i]);
}

static void model_free(struct model *m)
{
	for (uint32_t i = 0; i < m->n; i++)
		free(m->name[i]);
	m->n = 0;
}

/* The record store_append is given for w: every number at its default but input_tokens. */
static void want_record(const struct want *w, struct record *r)
{
	memset(r, 0, sizeof(*r));
	r->ttfb_us = -1;
	r->retry_after_s = -1;
	r->ts_ns = w->ts_ns;
	r->input_tokens = w->input_tokens;
	for (int i = 0; i < RECORD_NSTRS; i++) {
		*record_str_mut(r, i) = record_str_of(w->s[i]);
		/* store_append ignores a caller's ref: a stale one must change nothing */
		record_str_mut(r, i)->ref = 0xdead;
	}
}

/* Appends w to st; returns store_append's result, w->id set from it. */
static int append_want(struct store *st, struct want *w, const struct payload *pl)
{
	struct record r;
	int rc;

	want_record(w, &r);
	rc = store_append(st, &r, pl, NULL, 0);
	if (rc == 0)
		w->id = r.id;
	return rc;
}

/* ---- what comes back ---------------------------------------------------------------------- */

/* One record as a reader got it, its strings copied (a scan's live only during its call). */
struct got_rec {
	uint64_t id;
	int64_t ts_ns, input_tokens;
	int32_t pid;
	char *s[RECORD_NSTRS];
	uint32_t n[RECORD_NSTRS], ref[RECORD_NSTRS];
};

struct got {
	struct got_rec *r;
	size_t n, cap;
	int null_with_length; /* strings with n > 0 and no bytes: never given to a reader */
};

static int got_add(const struct record *rec, void *arg)
{
	struct got *g = arg;
	struct got_rec *r;

	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 64;
		g->r = realloc(g->r, g->cap * sizeof(*g->r));
		if (g->r == NULL)
			abort();
	}
	r = &g->r[g->n++];
	r->id = rec->id;
	r->ts_ns = rec->ts_ns;
	r->input_tokens = rec->input_tokens;
	r->pid = rec->pid;
	for (int i = 0; i < RECORD_NSTRS; i++) {
		const struct record_str *s = record_str_mut((struct record *)rec, i);

		g->null_with_length += s->p == NULL && s->n != 0;
		r->s[i] = malloc((size_t)s->n + 1);
		if (r->s[i] == NULL)
			abort();
		if (s->n != 0 && s->p != NULL)
			memcpy(r->s[i], s->p, s->n);
		r->s[i][s->n] = '\0';
		r->n[i] = s->n;
		r->ref[i] = s->ref;
	}
	return 0;
}

static void got_free(struct got *g)
{
	for (size_t k = 0; k < g->n; k++)
		for (int i = 0; i < RECORD_NSTRS; i++)
			free(g->r[k].s[i]);
	free(g->r);
	memset(g, 0, sizeof(*g));
}

/* Does r hold exactly what w wrote, refs included? Reports the first difference. */
static void check_got_want(const struct got_rec *r, const struct want *w)
{
	CHECK_INT(r->id, w->id);
	CHECK_INT(r->ts_ns, w->ts_ns);
	CHECK_INT(r->input_tokens, w->input_tokens);
	for (int i = 0; i < RECORD_NSTRS; i++) {
		const char *s = w->s[i] != NULL ? w->s[i] : "";

		if (r->n[i] != strlen(s) || memcmp(r->s[i], s, r->n[i]) != 0 ||
		    r->ref[i] != w->ref[i]) {
			fprintf(stderr, "record %llu string %d: '%.40s' (%u bytes) ref %u, want "
				"'%.40s' (%zu bytes) ref %u\n", (unsigned long long)r->id, i,
				r->s[i], r->n[i], r->ref[i], s, strlen(s), w->ref[i]);
			CHECK(0);
			return;
		}
	}
}

/* Every record of st is one of w[0..n) and every one is there, by store_scan and by
 * store_get; store_verify finds nothing wrong. */
static void check_store(struct store *st, const struct want *w, size_t n)
{
	struct got g = { 0 };
	uint64_t problems = 99;
	size_t k, j;

	CHECK_INT(store_scan(st, 0, INT64_MAX, got_add, &g), 0);
	CHECK_INT(g.n, n);
	CHECK_INT(g.null_with_length, 0);
	for (k = 0; k < g.n; k++) {
		for (j = 0; j < n && w[j].id != g.r[k].id; j++)
			;
		CHECK(j < n);
		if (j < n)
			check_got_want(&g.r[k], &w[j]);
	}
	got_free(&g);
	for (j = 0; j < n; j++) {
		CHECK_INT(store_get(st, w[j].id, got_add, &g), 0);
		CHECK_INT(g.n, j + 1);
		if (g.n == j + 1)
			check_got_want(&g.r[j], &w[j]);
	}
	got_free(&g);
	CHECK_INT(store_verify(st, NULL, NULL, &problems), 0);
	CHECK_INT(problems, 0);
}

/* check_store through a reader of its own in a child process; 0 when every check passed. */
static int check_store_in_child(const char *path, const struct want *w, size_t n)
{
	int status = -1;
	pid_t kid = fork();

	if (kid == 0) {
		struct store *rd;

		check_case_failed = 0;
		if (store_open(&rd, path, STORE_READONLY, 0) != 0)
			_exit(2);
		check_store(rd, w, n);
		store_close(rd);
		_exit(check_case_failed ? 1 : 0);
	}
	if (kid < 0 || waitpid(kid, &status, 0) != kid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static uint64_t info_strings(struct store *st)
{
	struct store_info info;

	memset(&info, 0xff, sizeof(info));
	CHECK_INT(store_info(st, &info), 0);
	return info.strings;
}

/* ---- raw LMDB ----------------------------------------------------------------------------- */

struct raw {
	MDB_env *env;
	MDB_txn *txn;
};

/* Opens path with LMDB itself, read-only, and db in it; no store handle may be open on path in
 * this process. */
static MDB_dbi raw_begin(struct raw *r, const char *path, const char *db)
{
	MDB_dbi dbi = 0;

	CHECK_INT(mdb_env_create(&r->env), 0);
	mdb_env_set_maxdbs(r->env, 8);
	CHECK_INT(mdb_env_open(r->env, path, MDB_NOSUBDIR | MDB_RDONLY, 0600), 0);
	CHECK_INT(mdb_txn_begin(r->env, NULL, MDB_RDONLY, &r->txn), 0);
	CHECK_INT(mdb_dbi_open(r->txn, db, 0, &dbi), 0);
	return dbi;
}

static void raw_end(struct raw *r)
{
	mdb_txn_abort(r->txn);
	mdb_env_close(r->env);
}

/*
 * The strings database of path, read raw: its id entries must be exactly 1..n in order (no id
 * given twice, none skipped), each with its name entry giving back its id, and nothing else.
 * Returns n.
 */
static uint64_t raw_strings_dense(const char *path)
{
	struct raw r;
	MDB_dbi dbi = raw_begin(&r, path, "strings");
	MDB_cursor *cur;
	MDB_val key, val, nkey, nval;
	unsigned char name[256];
	uint64_t ids = 0, names = 0, bad = 0;
	int rc;

	CHECK_INT(mdb_cursor_open(r.txn, dbi, &cur), 0);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		const unsigned char *k = key.mv_data;

		if (k[0] == 0x01) {
			names++;
			continue;
		}
		ids++;
		if (key.mv_size != 5 || k[0] != 0x00 ||
		    ((uint32_t)k[1] << 24 | (uint32_t)k[2] << 16 | (uint32_t)k[3] << 8 | k[4]) != ids ||
		    val.mv_size < 1 || val.mv_size > 255) {
			bad++;
			continue;
		}
		name[0] = 0x01;
		memcpy(name + 1, val.mv_data, val.mv_size);
		nkey = (MDB_val){ 1 + val.mv_size, name };
		if (mdb_get(r.txn, dbi, &nkey, &nval) != 0 || nval.mv_size != 4 ||
		    endian_le32(nval.mv_data) != ids)
			bad++;
	}
	CHECK_INT(rc, MDB_NOTFOUND);
	CHECK_INT(bad, 0);
	CHECK_INT(names, ids);
	mdb_cursor_close(cur);
	raw_end(&r);
	return ids;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void check_seeding(const char *path);

static char h255[256], h256[257], p255[256], p256[257];

static void long_strings_init(void)
{
	memset(h255, 'h', 255);
	memset(h256, 'h', 256);
	memset(p255, 'p', 255);
	memset(p256, 'p', 256);
}

/*
 * The ids a store gives, exactly: 1, 2, 3 … in field order of first commit; the same bytes the
 * same id wherever they appear; 255 bytes interned, 256 inline; error_message never, even when
 * its bytes are a name the table holds. A writer opened later (its cache empty) finds the
 * names already there. The record's bytes on disk are checked whole.
 */
static void test_ids_given(void)
{
	const char *path = tmp_path("ids.mdb");
	struct want w[4] = {
		{ .ts_ns = 1000, .input_tokens = 1,
		  .s = { [0] = "proc", [1] = "bot", [9] = "gpt-4o", [10] = "gpt-4o",
			 [12] = "rate limited" },
		  .ref = { [0] = 1, [1] = 2, [9] = 3, [10] = 3 } },
		{ .ts_ns = 2000, .input_tokens = 2,
		  .s = { [0] = "proc", [1] = "bot", [4] = "s-1", [7] = h255, [8] = p256,
			 [10] = "gpt-4o-mini", [11] = "rate_limit", [12] = "rate limited" },
		  .ref = { [0] = 1, [1] = 2, [4] = 4, [7] = 5, [8] = 0, [10] = 6, [11] = 7 } },
		{ .ts_ns = 3000, .input_tokens = 3,
		  .s = { [1] = "gpt-4o", [3] = "", [7] = h256, [8] = p255, [10] = "bot",
			 [12] = "gpt-4o" },
		  .ref = { [1] = 3, [7] = 0, [8] = 8, [10] = 2 } },
		{ .ts_ns = 4000, .input_tokens = 4,
		  .s = { [1] = "bot", [5] = "zzz", [12] = "x" },
		  .ref = { [1] = 2, [5] = 9 } },
	};
	unsigned char want2[14 + 4 + 6 * 4 + 2 + 256 + 2 + 12], *p = want2;
	struct store_info info;
	struct store *st;
	struct raw r;
	MDB_dbi dbi;
	MDB_stat ms;
	MDB_val key, val;
	unsigned char k[16];

	long_strings_init();
	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		return;
	CHECK_INT(info_strings(st), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_INT(append_want(st, &w[i], NULL), 0);
		CHECK_INT(w[i].id, i + 1);
	}
	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.strings, 8);
	CHECK_INT(info.format, 3);
	CHECK_INT(info.records, 3);
	check_store(st, w, 3);
	CHECK_INT(check_store_in_child(path, w, 3), 0);
	store_close(st);

	/* A writer with an empty cache: "bot" is found in the table, "zzz" gets the next id. */
	CHECK_INT(store_open(&st, path, 0, 0), 0);
	if (st == NULL)
		return;
	CHECK_INT(append_want(st, &w[3], NULL), 0);
	CHECK_INT(w[3].id, 4);
	CHECK_INT(info_strings(st), 9);
	check_store(st, w, 4);
	store_close(st);
	CHECK_INT(check_store_in_child(path, w, 4), 0);

	/* Record 2 on disk: the references and the two inline strings (the 256-byte path and the
	 * error message), byte for byte. */
	p += 14;
	endian_put_le16(want2, 5);
	endian_put_le32(want2 + 2, 1u << 6);
	endian_put_le32(want2 + 6, 0);
	endian_put_le16(want2 + 10, 0x1D93);
	endian_put_le16(want2 + 12, 0x1100);
	endian_put_le32(p, 2), p += 4;		     /* input_tokens */
	endian_put_le32(p, 1), p += 4;		     /* process */
	endian_put_le32(p, 2), p += 4;		     /* agent */
	endian_put_le32(p, 4), p += 4;		     /* session */
	endian_put_le32(p, 5), p += 4;		     /* host */
	endian_put_le16(p, 256), p += 2;	     /* path, inline */
	memset(p, 'p', 256), p += 256;
	endian_put_le32(p, 6), p += 4;		     /* model */
	endian_put_le32(p, 7), p += 4;		     /* error */
	endian_put_le16(p, 12), p += 2;		     /* error_message, inline */
	memcpy(p, "rate limited", 12), p += 12;
	CHECK_INT(p - want2, sizeof(want2));
	dbi = raw_begin(&r, path, "records");
	endian_put_be64(k, 2000);
	endian_put_be64(k + 8, 2);
	key = (MDB_val){ 16, k };
	CHECK_INT(mdb_get(r.txn, dbi, &key, &val), 0);
	CHECK_INT(val.mv_size, sizeof(want2));
	CHECK(val.mv_size == sizeof(want2) && memcmp(val.mv_data, want2, sizeof(want2)) == 0);
	/* The table: 9 strings, two entries each; 5 is the 255 h's, and back. */
	CHECK_INT(mdb_dbi_open(r.txn, "strings", 0, &dbi), 0);
	CHECK_INT(mdb_stat(r.txn, dbi, &ms), 0);
	CHECK_INT(ms.ms_entries, 18);
	memcpy(k, "\0\0\0\0\x05", 5);
	key = (MDB_val){ 5, k };
	CHECK_INT(mdb_get(r.txn, dbi, &key, &val), 0);
	CHECK(val.mv_size == 255 && memcmp(val.mv_data, h255, 255) == 0);
	{
		unsigned char name[257];

		name[0] = 0x01;
		memcpy(name + 1, h255, 255);
		key = (MDB_val){ 256, name };
		CHECK_INT(mdb_get(r.txn, dbi, &key, &val), 0);
		CHECK(val.mv_size == 4 && endian_le32(val.mv_data) == 5);
		memcpy(name + 1, "rate limited", 12);
		key = (MDB_val){ 13, name };
		CHECK_INT(mdb_get(r.txn, dbi, &key, &val), MDB_NOTFOUND);
		memcpy(name + 1, "x", 1);
		key = (MDB_val){ 2, name };
		CHECK_INT(mdb_get(r.txn, dbi, &key, &val), MDB_NOTFOUND);
	}
	raw_end(&r);
	CHECK_INT(raw_strings_dense(path), 9);
	check_seeding(path);
}

static int str_is(const struct record_str *s, const char *want)
{
	return s->n == strlen(want) && s->p != NULL && memcmp(s->p, want, s->n) == 0;
}

/* A budget's seed over test_ids_given's records: a sum that says which strings each record
 * read back with (1 agent "bot", 10 host h255, 100 path p255, 1000 a model without its ref). */
static int seed_by_strings(const struct record *rec, void *arg, int64_t *tokens, int64_t *pusd)
{
	(void)arg;
	*tokens = str_is(&rec->agent, "bot") + 10 * str_is(&rec->host, h255) +
		  100 * str_is(&rec->path, p255) + 1000 * (rec->model.n != 0 && rec->model.ref == 0);
	*pusd = 0;
	return 1;
}

static void budget_of(struct store_budget *b, const char *base)
{
	memset(b, 0, sizeof(*b));
	b->name = "strings";
	b->base = base;
	b->since_ns = 0;
	b->until_ns = INT64_MAX;
	b->seed = seed_by_strings;
	b->cap_tokens = b->cap_pusd = b->warn_tokens = b->warn_pusd = -1;
}

/*
 * Budget seeding reads the records inside a write transaction (store_budget_reserve), where a
 * writer whose table is empty resolves each reference from the transaction, and inside a read
 * transaction (store_budget_read): both see test_ids_given's strings as written.
 */
static void check_seeding(const char *path)
{
	struct store_budget b;
	struct store *st;
	uint64_t resv = 0;
	size_t refused = 9;
	int status;
	pid_t kid;

	CHECK_INT(store_open(&st, path, 0, 0), 0);
	if (st == NULL)
		return;
	budget_of(&b, "budget:strings:a");
	CHECK_INT(store_budget_reserve(st, &b, 1, 5000, &resv, &refused), 0);
	CHECK_INT(b.used_tokens, 113);
	store_close(st);
	kid = fork();
	if (kid == 0) {
		struct store *rd;

		if (store_open(&rd, path, STORE_READONLY, 0) != 0)
			_exit(2);
		budget_of(&b, "budget:strings:b");
		if (store_budget_read(rd, &b, 1, 5000) != 0 || b.used_tokens != 113) {
			fprintf(stderr, "store_budget_read: %lld tokens\n", (long long)b.used_tokens);
			_exit(1);
		}
		store_close(rd);
		_exit(0);
	}
	CHECK_INT(waitpid(kid, &status, 0), kid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Random bytes zstd cannot shrink. */
static char *noise_new(size_t n, uint64_t x)
{
	char *b = malloc(n);

	for (size_t i = 0; b != NULL && i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (char)x;
	}
	return b;
}

/* Appends w in a child process of its own (another agent); 0 when it was appended as id. */
static int append_in_child(const char *path, struct want *w, uint64_t id)
{
	int status = -1;
	pid_t kid = fork();

	if (kid == 0) {
		struct store *st;

		if (store_open(&st, path, 0, 0) != 0)
			_exit(2);
		if (append_want(st, w, NULL) != 0 || w->id != id)
			_exit(1);
		store_close(st);
		_exit(0);
	}
	if (kid < 0 || waitpid(kid, &status, 0) != kid || !WIFEXITED(status))
		return -1;
	w->id = id;
	return WEXITSTATUS(status);
}

/*
 * An append that names new strings and then fails (its payload does not fit the map:
 * STORE_EFULL after the names were written in its transaction) leaves no id behind, in the
 * table or in the writer's cache: another writer then gives that id to another name, and the
 * failed names, appended again by the same handle, get ids of their own. A cache that kept the
 * aborted ids would write records whose strings read back as other names, or not at all.
 */
static void test_failed_append_leaves_no_id(void)
{
	const char *path = tmp_path("abort.mdb");
	size_t big = 6u << 20;
	char *noise = noise_new(big, 88172645463325252ull);
	struct want w[7] = {
		{ .ts_ns = 10, .s = { [0] = "proc", [1] = "bot" } },
		/* fails: its payload is larger than the map */
		{ .ts_ns = 20, .s = { [0] = "proc", [4] = "lost-1", [10] = "lost-2" } },
		/* another process: its new name takes the next id, 3 */
		{ .ts_ns = 30, .s = { [0] = "other" } },
		/* the same handle: a new name first, then the failed ones */
		{ .ts_ns = 40, .s = { [0] = "fresh", [4] = "lost-1", [10] = "lost-2" } },
		{ .ts_ns = 50, .s = { [0] = "proc", [1] = "lost-2" } },
		/* fails again, alone this time */
		{ .ts_ns = 60, .s = { [0] = "proc", [1] = "gone-1" } },
		{ .ts_ns = 70, .s = { [0] = "new-1", [1] = "gone-1" } },
	};
	struct want done[5];
	struct model m = { { 0 }, 0 };
	struct payload pl;
	struct store *st;
	size_t ndone = 0;

	memset(&pl, 0, sizeof(pl));
	pl.resp_body = (struct record_str){ noise, (uint32_t)big, 0 };
	CHECK_INT(store_open(&st, path, STORE_CREATE, 4u << 20), 0);
	if (st == NULL || noise == NULL)
		goto out;
	CHECK_INT(append_want(st, &w[0], NULL), 0);
	model_commit(&m, &w[0]);
	done[ndone++] = w[0];
	CHECK_INT(append_want(st, &w[1], &pl), STORE_EFULL);
	CHECK_INT(info_strings(st), 2);
	CHECK_INT(append_in_child(path, &w[2], 2), 0);
	model_commit(&m, &w[2]);
	done[ndone++] = w[2];
	for (int i = 3; i <= 4; i++) {
		CHECK_INT(append_want(st, &w[i], NULL), 0);
		model_commit(&m, &w[i]);
		done[ndone++] = w[i];
	}
	CHECK_INT(append_want(st, &w[5], &pl), STORE_EFULL);
	CHECK_INT(append_want(st, &w[6], NULL), 0);
	model_commit(&m, &w[6]);
	done[ndone++] = w[6];
	/* The ids the reference gives, spelt out. */
	CHECK_INT(done[1].ref[0], 3);
	CHECK_INT(done[2].ref[0], 4);
	CHECK_INT(done[2].ref[4], 5);
	CHECK_INT(done[2].ref[10], 6);
	CHECK_INT(done[3].ref[1], 6);
	CHECK_INT(done[4].ref[0], 7);
	CHECK_INT(done[4].ref[1], 8);
	CHECK_INT(info_strings(st), 8);
	check_store(st, done, ndone);
	CHECK_INT(check_store_in_child(path, done, ndone), 0);
	store_close(st);
	CHECK_INT(raw_strings_dense(path), 8);
out:
	model_free(&m);
	free(noise);
}

/* Prunes path in a child process (with no other opener, so the file is compacted). */
static int prune_in_child(const char *path, int64_t before_ns, uint64_t *records)
{
	int fds[2], status = -1;
	pid_t kid;

	if (pipe(fds) != 0)
		return -1;
	kid = fork();
	if (kid == 0) {
		struct store_prune_result pr;
		int rc = store_prune(path, before_ns, 0, NULL, NULL, &pr);

		if (write(fds[1], &pr.records, sizeof(pr.records)) != sizeof(pr.records))
			_exit(3);
		_exit(rc == 0 && pr.compacted ? 0 : 1);
	}
	close(fds[1]);
	if (read(fds[0], records, sizeof(*records)) != sizeof(*records))
		*records = 0;
	close(fds[0]);
	if (kid < 0 || waitpid(kid, &status, 0) != kid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/*
 * Appending until the map is full: the append that fails had named new strings (its session
 * and agent), and none of them stays in the table. After a prune has made room again, a new
 * writer appends the failed record's names after a new one, and every record reads back as
 * written, through the writer and through another reader.
 */
static void test_full_then_prune(void)
{
	static char names[2][400][24];
	static struct want w[400];
	const char *path = tmp_path("full.mdb");
	char *noise = noise_new(20000, 2463534242ull);
	struct model m = { { 0 }, 0 };
	struct want more[2];
	struct payload pl;
	struct store *st;
	uint64_t pruned = 0;
	int rc = 0, k, full, cut, nkept;

	memset(&pl, 0, sizeof(pl));
	pl.resp_body = (struct record_str){ noise, 20000, 0 };
	CHECK_INT(store_open(&st, path, STORE_CREATE, 1u << 20), 0);
	if (st == NULL || noise == NULL)
		goto out;
	for (k = 0; k < 400; k++) {
		snprintf(names[0][k], sizeof(names[0][k]), "agent-%d", k);
		snprintf(names[1][k], sizeof(names[1][k]), "sess-%d", k);
		w[k] = (struct want){ .ts_ns = 1000 + k, .input_tokens = k,
				      .s = { [0] = "proc", [1] = names[0][k], [4] = names[1][k] } };
		rc = append_want(st, &w[k], &pl);
		if (rc != 0)
			break;
		model_commit(&m, &w[k]);
	}
	full = k;
	CHECK_INT(rc, STORE_EFULL);
	CHECK(full > 5 && full < 400);
	CHECK_INT(info_strings(st), 1 + 2 * full);
	check_store(st, w, (size_t)full);
	store_close(st);

	/* Prune the older half; a new writer then names the failed record's strings. */
	cut = full / 2;
	CHECK_INT(prune_in_child(path, 1000 + cut, &pruned), 0);
	CHECK_INT(pruned, cut);
	CHECK_INT(store_open(&st, path, 0, 1u << 20), 0);
	if (st == NULL)
		goto out;
	more[0] = (struct want){ .ts_ns = 5000, .input_tokens = -1,
				 .s = { [0] = "after-prune", [1] = names[0][full],
					[4] = names[1][full] } };
	more[1] = (struct want){ .ts_ns = 5001, .input_tokens = -2,
				 .s = { [0] = "proc", [1] = names[0][0], [4] = names[1][full] } };
	for (int i = 0; i < 2; i++) {
		CHECK_INT(append_want(st, &more[i], NULL), 0);
		CHECK_INT(more[i].id, full + 1 + i);
		model_commit(&m, &more[i]);
	}
	CHECK_INT(more[0].ref[0], 2 + 2 * full);
	CHECK_INT(more[0].ref[1], 3 + 2 * full);
	CHECK_INT(more[0].ref[4], 4 + 2 * full);
	CHECK_INT(more[1].ref[1], 2); /* agent-0's record was pruned; its name stays */
	CHECK_INT(info_strings(st), 4 + 2 * full);
	nkept = full - cut;
	memmove(&w[0], &w[cut], (size_t)nkept * sizeof(w[0]));
	w[nkept] = more[0];
	w[nkept + 1] = more[1];
	check_store(st, w, (size_t)nkept + 2);
	store_close(st);
	CHECK_INT(check_store_in_child(path, w, (size_t)nkept + 2), 0);
	CHECK_INT(raw_strings_dense(path), 4 + 2 * full);
out:
	model_free(&m);
	free(noise);
}

/* Concurrency: processes and threads appending at once, each record with a name of its own
 * (its session) and names others are adding at the same time (m-i, host-i%3). */
enum { PROCS = 4, PER_PROC = 150, THREADS = 4, PER_THREAD = 100 };
#define NRECS (PROCS * PER_PROC + THREADS * PER_THREAD)
/* proc, 8 agents, a session per record, m-0 … m-149, host-0 … host-2 */
#define NSTRINGS (1 + PROCS + THREADS + NRECS + PER_PROC + 3)

/* The strings writer w gives its record i, into s (buffers of 32 bytes). */
static void conc_strings(int w, int i, char s[RECORD_NSTRS][32])
{
	memset(s, 0, RECORD_NSTRS * 32);
	snprintf(s[0], 32, "proc");
	snprintf(s[1], 32, "agent-%d", w);
	snprintf(s[4], 32, "sess-%d-%d", w, i);
	snprintf(s[7], 32, "host-%d", i % 3);
	snprintf(s[10], 32, "m-%d", i);
	snprintf(s[12], 32, "err-%d-%d", w, i);
}

static int conc_append(struct store *st, int w, int i)
{
	char s[RECORD_NSTRS][32];
	struct record r;

	conc_strings(w, i, s);
	memset(&r, 0, sizeof(r));
	r.ts_ns = 1000000 + (int64_t)i * 1000 + w;
	r.pid = w;
	r.input_tokens = i;
	r.ttfb_us = -1;
	r.retry_after_s = -1;
	for (int k = 0; k < RECORD_NSTRS; k++)
		*record_str_mut(&r, k) = record_str_of(s[k]);
	return store_append(st, &r, NULL, NULL, 0);
}

struct conc_thread {
	struct store *st;
	int w, failed;
};

static void *conc_thread_main(void *p)
{
	struct conc_thread *a = p;

	for (int i = 0; i < PER_THREAD; i++)
		a->failed += conc_append(a->st, a->w, i) != 0;
	return NULL;
}

/* A string and the ref a record gave it. */
struct named {
	const char *s;
	uint32_t ref;
};

static int named_by_s(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->s, y->s);

	return c != 0 ? c : (x->ref > y->ref) - (x->ref < y->ref);
}

static int named_by_ref(const void *a, const void *b)
{
	const struct named *x = a, *y = b;

	return x->ref != y->ref ? (x->ref > y->ref) - (x->ref < y->ref) : strcmp(x->s, y->s);
}

/*
 * The records of a concurrent run, read back: each holds the strings its writer gave it;
 * error messages are inline; equal strings have equal refs and different strings different
 * refs; the refs are exactly 1 … NSTRINGS.
 */
static void check_conc(const struct got *g)
{
	struct named *nm = calloc((size_t)NRECS * RECORD_NSTRS, sizeof(*nm));
	size_t nn = 0, distinct = 0, bad = 0;
	char s[RECORD_NSTRS][32];

	CHECK_INT(g->n, NRECS);
	for (size_t k = 0; nm != NULL && k < g->n; k++) {
		const struct got_rec *r = &g->r[k];

		conc_strings(r->pid, (int)r->input_tokens, s);
		for (int i = 0; i < RECORD_NSTRS; i++) {
			if (strcmp(r->s[i], s[i]) != 0)
				bad++;
			if (i == RECORD_STR_ERROR_MESSAGE || s[i][0] == '\0')
				bad += r->ref[i] != 0;
			else
				nm[nn++] = (struct named){ r->s[i], r->ref[i] };
		}
	}
	CHECK_INT(bad, 0);
	CHECK_INT(nn, (size_t)NRECS * 5);
	qsort(nm, nn, sizeof(*nm), named_by_s);
	for (size_t k = 0; k < nn; k++) {
		if (nm[k].ref == 0)
			bad++;
		else if (k > 0 && strcmp(nm[k].s, nm[k - 1].s) == 0 && nm[k].ref != nm[k - 1].ref)
			bad++;
	}
	CHECK_INT(bad, 0); /* one string, one ref */
	qsort(nm, nn, sizeof(*nm), named_by_ref);
	for (size_t k = 0; k < nn; k++) {
		if (k > 0 && nm[k].ref == nm[k - 1].ref) {
			bad += strcmp(nm[k].s, nm[k - 1].s) != 0;
			continue;
		}
		distinct++;
		bad += nm[k].ref != distinct; /* 1, 2, 3 … with no gap */
	}
	CHECK_INT(bad, 0); /* one ref, one string */
	CHECK_INT(distinct, NSTRINGS);
	free(nm);
}

static void test_concurrent_writers(void)
{
	const char *path = tmp_path("conc.mdb");
	struct conc_thread args[THREADS];
	pthread_t th[THREADS];
	pid_t kids[PROCS];
	struct got g = { 0 };
	struct store *st;
	uint64_t problems = 99;
	int status;

	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		return;
	for (int p = 0; p < PROCS; p++) {
		kids[p] = fork();
		if (kids[p] == 0) {
			struct store *own;
			int failed = 0;

			if (store_open(&own, path, 0, 0) != 0)
				_exit(2);
			for (int i = 0; i < PER_PROC; i++)
				failed += conc_append(own, p, i) != 0;
			store_close(own);
			_exit(failed ? 1 : 0);
		}
	}
	for (int t = 0; t < THREADS; t++) {
		args[t] = (struct conc_thread){ st, PROCS + t, 0 };
		pthread_create(&th[t], NULL, conc_thread_main, &args[t]);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		CHECK_INT(args[t].failed, 0);
	}
	for (int p = 0; p < PROCS; p++) {
		CHECK_INT(waitpid(kids[p], &status, 0), kids[p]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CHECK_INT(info_strings(st), NSTRINGS);
	CHECK_INT(store_scan(st, 0, INT64_MAX, got_add, &g), 0);
	CHECK_INT(g.null_with_length, 0);
	check_conc(&g);
	CHECK_INT(store_verify(st, NULL, NULL, &problems), 0);
	CHECK_INT(problems, 0);
	store_close(st);

	/* Another reader gets the same records with the same refs. */
	{
		pid_t kid = fork();

		if (kid == 0) {
			struct got mine = { 0 };
			struct store *rd;
			size_t differ = 0;

			check_case_failed = 0;
			if (store_open(&rd, path, STORE_READONLY, 0) != 0)
				_exit(2);
			CHECK_INT(store_scan(rd, 0, INT64_MAX, got_add, &mine), 0);
			CHECK_INT(mine.n, g.n);
			for (size_t k = 0; k < mine.n && k < g.n; k++)
				differ += mine.r[k].id != g.r[k].id ||
					  memcmp(mine.r[k].ref, g.r[k].ref, sizeof(g.r[k].ref)) != 0;
			CHECK_INT(differ, 0);
			store_close(rd);
			_exit(check_case_failed ? 1 : 0);
		}
		CHECK_INT(waitpid(kid, &status, 0), kid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	got_free(&g);
	CHECK_INT(raw_strings_dense(path), NSTRINGS);
}

/* Makes path a store as a format 2 writer left it, with no strings database: w[0..n) as
 * records of version 3 (ids 1..n), their ids entries, meta format 2 and next_id 1. */
static void make_format2(const char *path, struct want *w, size_t n)
{
	static const char *const dbs[] = { "records", "ids", "payloads", "counters", "meta" };
	unsigned char rkey[16], ikey[8], b[8], enc[1024];
	MDB_dbi dbi[5];
	MDB_env *env;
	MDB_txn *txn;
	MDB_val key, val;
	struct record r;

	CHECK_INT(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	CHECK_INT(mdb_env_open(env, path, MDB_NOSUBDIR, 0600), 0);
	CHECK_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
	for (int i = 0; i < 5; i++)
		CHECK_INT(mdb_dbi_open(txn, dbs[i], MDB_CREATE, &dbi[i]), 0);
	for (size_t k = 0; k < n; k++) {
		w[k].id = k + 1;
		want_record(&w[k], &r);
		for (int i = 0; i < RECORD_NSTRS; i++)
			record_str_mut(&r, i)->ref = 0;
		endian_put_be64(rkey, (uint64_t)w[k].ts_ns);
		endian_put_be64(rkey + 8, w[k].id);
		key = (MDB_val){ 16, rkey };
		val = (MDB_val){ v3_build(enc, &r, 3, 140, RECORD_NSTRS), enc };
		CHECK_INT(mdb_put(txn, dbi[0], &key, &val, 0), 0);
		endian_put_be64(ikey, w[k].id);
		key = (MDB_val){ 8, ikey };
		val = (MDB_val){ 16, rkey };
		CHECK_INT(mdb_put(txn, dbi[1], &key, &val, 0), 0);
	}
	endian_put_le32(b, 2);
	key = (MDB_val){ 6, "format" };
	val = (MDB_val){ 4, b };
	CHECK_INT(mdb_put(txn, dbi[4], &key, &val, 0), 0);
	endian_put_le64(b, 1);
	key = (MDB_val){ 7, "next_id" };
	val = (MDB_val){ 8, b };
	CHECK_INT(mdb_put(txn, dbi[4], &key, &val, 0), 0);
	CHECK_INT(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* The record versions of path's records 1..n, read raw, into v. */
static void raw_versions(const char *path, uint16_t *v, size_t n)
{
	struct raw r;
	MDB_dbi dbi = raw_begin(&r, path, "records");
	MDB_cursor *cur;
	MDB_val key, val;
	size_t k = 0;

	CHECK_INT(mdb_cursor_open(r.txn, dbi, &cur), 0);
	while (k < n && mdb_cursor_get(cur, &key, &val, k ? MDB_NEXT : MDB_FIRST) == 0)
		v[k++] = val.mv_size >= 2 ? endian_le16(val.mv_data) : 0;
	CHECK_INT(k, n);
	mdb_cursor_close(cur);
	raw_end(&r);
}

/*
 * A reader opened on a format 2 store (built by hand: version 3 records, no strings database)
 * reads it; a writer in another process then marks it format 3 and creates the strings
 * database; the same reader handle, never reopened, reads the old records and the new ones,
 * whose strings are references. The old records keep their bytes.
 */
static void test_format2_upgrade(void)
{
	const char *path = tmp_path("format2.mdb");
	struct want w[4] = {
		{ .ts_ns = 1000, .input_tokens = 11,
		  .s = { [0] = "proc", [1] = "old-bot", [10] = "gpt-4o" } },
		{ .ts_ns = 2000, .input_tokens = 22,
		  .s = { [1] = "old-bot", [10] = "claude", [12] = "overloaded" } },
		{ .ts_ns = 3000, .input_tokens = 33,
		  .s = { [1] = "old-bot", [10] = "gpt-4o", [12] = "gpt-4o" },
		  .ref = { [1] = 1, [10] = 2 } },
		{ .ts_ns = 1500, .input_tokens = 44, /* between the old ones */
		  .s = { [0] = "proc", [10] = "claude" },
		  .ref = { [0] = 3, [10] = 4 } },
	};
	struct store_info info;
	struct store *rd;
	uint16_t versions[4];
	int status;

	make_format2(path, w, 2);
	CHECK_INT(store_open(&rd, path, STORE_READONLY, 0), 0);
	if (rd == NULL)
		return;
	CHECK_INT(store_info(rd, &info), 0);
	CHECK_INT(info.format, 2);
	CHECK_INT(info.records, 2);
	CHECK_INT(info.next_id, 3);
	CHECK_INT(info.strings, 0);
	check_store(rd, w, 2);

	/* A writer of format 3, in another process. */
	pid_t kid = fork();
	if (kid == 0) {
		struct store *st;

		if (store_open(&st, path, 0, 0) != 0)
			_exit(2);
		for (int i = 2; i < 4; i++) {
			if (append_want(st, &w[i], NULL) != 0 || w[i].id != (uint64_t)i + 1)
				_exit(1);
		}
		store_close(st);
		_exit(0);
	}
	CHECK_INT(waitpid(kid, &status, 0), kid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	w[2].id = 3;
	w[3].id = 4;

	/* store_info first: nothing else has looked at the store since it changed. */
	CHECK_INT(store_info(rd, &info), 0);
	CHECK_INT(info.format, 3);
	CHECK_INT(info.records, 4);
	CHECK_INT(info.next_id, 5);
	CHECK_INT(info.strings, 4);
	check_store(rd, w, 4);
	store_close(rd);
	CHECK_INT(check_store_in_child(path, w, 4), 0);
	raw_versions(path, versions, 4); /* in time order: ids 1, 4, 2, 3 */
	CHECK_INT(versions[0], 3);
	CHECK_INT(versions[1], 5);
	CHECK_INT(versions[2], 3);
	CHECK_INT(versions[3], 5);
	CHECK_INT(raw_strings_dense(path), 4);
}

static int seed_input(const struct record *rec, void *arg, int64_t *tokens, int64_t *pusd)
{
	(void)arg;
	*tokens = rec->input_tokens;
	*pusd = 0;
	return 1;
}

/*
 * A writer that opens a format 2 store with no room for the format mark (its map no larger
 * than the file) keeps the store as it is; store_open succeeds, since appends try again. When
 * another writer, with a larger map, has since marked the store and appended records whose
 * strings are references, this writer's handle reads them too: store_info, store_get,
 * store_scan, a budget's seeding (store_budget_read), which must count every record of its
 * window, and store_verify.
 */
static void test_unmarked_writer_reads_references(void)
{
	const char *path = tmp_path("unmarked.mdb");
	struct want w[3] = {
		{ .ts_ns = 1000, .input_tokens = 11, .s = { [1] = "old-bot" } },
		{ .ts_ns = 2000, .input_tokens = 22, .s = { [1] = "old-bot" } },
		{ .ts_ns = 3000, .input_tokens = 400, .s = { [1] = "bot", [10] = "gpt-4o" },
		  .ref = { [1] = 1, [10] = 2 } },
	};
	struct store_info info;
	struct store_budget b;
	struct got g = { 0 };
	struct store *st;
	uint64_t problems = 99;
	int status;
	pid_t kid;

	make_format2(path, w, 2);
	/* A map of one page: LMDB maps the file's own size, with no page to spare. */
	CHECK_INT(store_open(&st, path, 0, 4096), 0);
	if (st == NULL)
		return;
	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.format, 2); /* not marked: the precondition of this test */
	check_store(st, w, 2);

	kid = fork();
	if (kid == 0) {
		struct store *other;

		if (store_open(&other, path, 0, 4u << 20) != 0)
			_exit(2);
		if (append_want(other, &w[2], NULL) != 0 || w[2].id != 3)
			_exit(1);
		store_close(other);
		_exit(0);
	}
	CHECK_INT(waitpid(kid, &status, 0), kid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	w[2].id = 3;

	CHECK_INT(store_info(st, &info), 0);
	CHECK_INT(info.format, 3);
	CHECK_INT(info.records, 3);
	CHECK_INT(info.strings, 2);
	CHECK_INT(store_get(st, 3, got_add, &g), 0);
	CHECK_INT(g.n, 1);
	if (g.n == 1)
		check_got_want(&g.r[0], &w[2]);
	got_free(&g);
	CHECK_INT(store_scan(st, 0, INT64_MAX, got_add, &g), 0);
	CHECK_INT(g.n, 3);
	got_free(&g);
	memset(&b, 0, sizeof(b));
	b.name = "all";
	b.base = "budget:unmarked";
	b.since_ns = 0;
	b.until_ns = INT64_MAX;
	b.seed = seed_input;
	b.cap_tokens = b.cap_pusd = b.warn_tokens = b.warn_pusd = -1;
	CHECK_INT(store_budget_read(st, &b, 1, 5000), 0);
	CHECK_INT(b.used_tokens, 11 + 22 + 400);
	CHECK_INT(store_verify(st, NULL, NULL, &problems), 0);
	CHECK_INT(problems, 0);
	store_close(st);
	CHECK_INT(check_store_in_child(path, w, 3), 0);
}

static int got_agent(const struct record *rec, void *arg)
{
	struct record_str *out = arg;

	*out = rec->agent;
	return 0;
}

/*
 * A name entry that names the wrong id (damage: "bot" → the id of "gpt-4o") is not trusted by a
 * writer meeting "bot" afresh: its record keeps "bot" inline, and reads back "bot", not the
 * string of the id the damaged entry gives.
 */
static void test_damaged_name_entry(void)
{
	const char *path = tmp_path("damaged-name.mdb");
	struct want w[2] = {
		{ .ts_ns = 1000, .input_tokens = 1, .s = { [1] = "bot", [10] = "gpt-4o" },
		  .ref = { [1] = 1, [10] = 2 } },
		{ .ts_ns = 2000, .input_tokens = 2, .s = { [1] = "bot" } },
	};
	unsigned char name[4] = { 0x01, 'b', 'o', 't' }, id2[4];
	MDB_val key = { sizeof name, name }, val = { sizeof id2, id2 };
	struct record_str agent = { NULL, 0, 99 };
	struct store *st;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		return;
	CHECK_INT(append_want(st, &w[0], NULL), 0);
	store_close(st);
	endian_put_le32(id2, 2);
	CHECK_INT(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	CHECK_INT(mdb_env_open(env, path, MDB_NOSUBDIR, 0600), 0);
	CHECK_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CHECK_INT(mdb_dbi_open(txn, "strings", 0, &dbi), 0);
	CHECK_INT(mdb_put(txn, dbi, &key, &val, 0), 0);
	CHECK_INT(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	CHECK_INT(store_open(&st, path, 0, 0), 0);
	if (st == NULL)
		return;
	CHECK_INT(append_want(st, &w[1], NULL), 0);
	CHECK_INT(w[1].id, 2);
	CHECK_INT(store_get(st, 2, got_agent, &agent), 0);
	CHECK_MEM(agent.p, agent.n, "bot");
	CHECK_INT(agent.ref, 0);
	store_close(st);
}

int main(void)
{
	if (tmpdir_make("test-strings") != 0)
		return 2;
	umask(022);
	RUN(test_ids_given);
	RUN(test_failed_append_leaves_no_id);
	RUN(test_full_then_prune);
	RUN(test_concurrent_writers);
	RUN(test_format2_upgrade);
	RUN(test_unmarked_writer_reads_references);
	RUN(test_damaged_name_entry);
	tmpdir_remove();
	CHECK_DONE();
}
