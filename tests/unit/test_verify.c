/*
 * test_verify.c - store_verify and store_info's payload bytes: a sound store has no problem;
 * each kind of damage, made with LMDB directly on a sound store, is found and named once.
 */
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/endian.h"
#include "store/store.h"
#include "tests/unit/check.h"

static char tmp_root[] = "/tmp/tokshim-test-verify-XXXXXX";
static int tmp_seq;

/* The problems one store_verify call reported, joined by '\n'. */
struct problems {
	char text[4096];
	size_t len;
};

static void collect(const char *problem, void *arg)
{
	struct problems *p = arg;
	int n = snprintf(p->text + p->len, sizeof p->text - p->len, "%s\n", problem);

	if (n > 0 && (size_t)n < sizeof p->text - p->len)
		p->len += (size_t)n;
}

/* A store of three records (ids 1..3; 1 and 3 with a payload) and one counter. */
static const char *sound_store(void)
{
	static char path[512];
	struct store *st;
	struct record rec;
	struct payload pl;
	struct store_counter_delta d = { "dropped.store_full", 2 };

	snprintf(path, sizeof path, "%s/%d.mdb", tmp_root, tmp_seq++);
	CHECK_INT(store_open(&st, path, STORE_CREATE, 1 << 20), 0);
	memset(&pl, 0, sizeof pl);
	pl.req_head = record_str_of("POST /v1/chat/completions HTTP/1.1\r\n");
	pl.resp_body = record_str_of("{\"usage\":{}}");
	for (int i = 1; i <= 3; i++) {
		memset(&rec, 0, sizeof rec);
		rec.ts_ns = 1700000000000000000LL + i;
		rec.input_tokens = i;
		rec.model = record_str_of("gpt-4o");
		CHECK_INT(store_append(st, &rec, i == 2 ? NULL : &pl, &d, i == 1), 0);
	}
	store_close(st);
	return path;
}

/* Runs store_verify on path: returns how many problems, their text in *p. */
static uint64_t verify(const char *path, struct problems *p)
{
	struct store *st;
	uint64_t n = 999;

	memset(p, 0, sizeof *p);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	if (st == NULL)
		return n;
	CHECK_INT(store_verify(st, collect, p, &n), 0);
	store_close(st);
	return n;
}

/* Opens path with LMDB itself, for damage the store API would never write. */
struct raw {
	MDB_env *env;
	MDB_txn *txn;
};

static MDB_dbi raw_begin(struct raw *r, const char *path, const char *db)
{
	MDB_dbi dbi = 0;

	CHECK_INT(mdb_env_create(&r->env), 0);
	mdb_env_set_maxdbs(r->env, 5);
	CHECK_INT(mdb_env_open(r->env, path, MDB_NOSUBDIR, 0600), 0);
	CHECK_INT(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
	CHECK_INT(mdb_dbi_open(r->txn, db, 0, &dbi), 0);
	return dbi;
}

static void raw_end(struct raw *r)
{
	CHECK_INT(mdb_txn_commit(r->txn), 0);
	mdb_env_close(r->env);
}

static void id_key(unsigned char k[8], uint64_t id)
{
	endian_put_be64(k, id);
}

static void test_sound(void)
{
	const char *path = sound_store();
	struct problems p;
	struct store_info in;
	struct store *st;

	CHECK_INT(verify(path, &p), 0);
	CHECK_MEM(p.text, p.len, "");
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	CHECK_INT(store_info(st, &in), 0);
	CHECK_INT(in.records, 3);
	CHECK_INT(in.payloads, 2);
	CHECK_INT(in.next_id, 4);
	CHECK_INT(in.map_bytes, 1 << 20); /* a reader sees the writer's cap */
	CHECK(in.payload_bytes > 2 * 36 && in.payload_bytes < 400);
	store_close(st);
}

/* Deletes one id-keyed entry of db. */
static void delete_id(const char *path, const char *db, uint64_t id)
{
	struct raw r;
	unsigned char k[8];
	MDB_val key = { 8, k };
	MDB_dbi dbi = raw_begin(&r, path, db);

	id_key(k, id);
	CHECK_INT(mdb_del(r.txn, dbi, &key, NULL), 0);
	raw_end(&r);
}

static void test_missing_ids_entry(void)
{
	const char *path = sound_store();
	struct problems p;

	delete_id(path, "ids", 2);
	CHECK_INT(verify(path, &p), 1);
	CHECK_MEM(p.text, p.len, "record 2: no ids entry\n");
}

static void test_missing_payload(void)
{
	const char *path = sound_store();
	struct problems p;

	delete_id(path, "payloads", 3);
	CHECK_INT(verify(path, &p), 1);
	CHECK_MEM(p.text, p.len, "record 3: flagged with a payload, none stored\n");
}

/* Puts key → val into db. */
static void put_raw(const char *path, const char *db, const void *k, size_t kn, const void *v,
		    size_t vn)
{
	struct raw r;
	MDB_val key = { kn, (void *)k }, val = { vn, (void *)v };
	MDB_dbi dbi = raw_begin(&r, path, db);

	CHECK_INT(mdb_put(r.txn, dbi, &key, &val, 0), 0);
	raw_end(&r);
}

static void test_orphans(void)
{
	const char *path = sound_store();
	unsigned char k[8], rkey[16] = { 0 };
	struct problems p;

	/* A payload for record 2, which has none, and an id entry for a record never written. */
	id_key(k, 2);
	put_raw(path, "payloads", k, 8, "junk", 4);
	id_key(k, 9);
	rkey[15] = 9;
	put_raw(path, "ids", k, 8, rkey, 16);
	CHECK_INT(verify(path, &p), 3);
	CHECK_MEM(p.text, p.len,
		  "payload 2: does not decode\n"
		  "ids 9: no record with this id\n"
		  "payload 2: its record is not flagged with a payload\n");
}

static void test_bad_record_and_next_id(void)
{
	const char *path = sound_store();
	unsigned char rkey[16], b[8];
	struct problems p;

	/* Record 1's value replaced by bytes that are not a record; next_id lowered to 3. */
	endian_put_be64(rkey, 1700000000000000001ULL);
	endian_put_be64(rkey + 8, 1);
	put_raw(path, "records", rkey, 16, "\0\0\0\0", 4);
	endian_put_le64(b, 3);
	put_raw(path, "meta", "next_id", 7, b, 8);
	CHECK_INT(verify(path, &p), 2);
	CHECK_MEM(p.text, p.len,
		  "record 1: does not decode\n"
		  "record 3: id not below meta next_id 3\n");
}

static void test_bad_counter_and_format(void)
{
	const char *path = sound_store();
	unsigned char b[4];
	struct problems p;
	struct store *st;

	put_raw(path, "counters", "dropped.x", 9, "abc", 3);
	CHECK_INT(verify(path, &p), 1);
	CHECK_MEM(p.text, p.len, "counter 'dropped.x': a value of 3 bytes (8 expected)\n");
	/* A newer format: refused at open, before verify could misread it. */
	endian_put_le32(b, 99);
	put_raw(path, "meta", "format", 6, b, 4);
	st = NULL;
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), STORE_EFORMAT);
	CHECK(st == NULL);
}

static void test_many_problems_capped(void)
{
	const char *path = sound_store();
	struct store *st;
	struct problems p;
	uint64_t n = 0;
	char name[16];
	struct raw r;
	MDB_dbi dbi = raw_begin(&r, path, "counters");

	for (int i = 0; i < STORE_VERIFY_MAX_PROBLEMS + 20; i++) {
		MDB_val key = { (size_t)snprintf(name, sizeof name, "c%03d", i), name },
			val = { 1, "x" };

		CHECK_INT(mdb_put(r.txn, dbi, &key, &val, 0), 0);
	}
	raw_end(&r);
	memset(&p, 0, sizeof p);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	CHECK_INT(store_verify(st, collect, &p, &n), 0);
	CHECK_INT(n, STORE_VERIFY_MAX_PROBLEMS + 20);
	CHECK_INT(store_verify(st, NULL, NULL, NULL), STORE_EINVAL);
	store_close(st);
}

/* Once appends are refused as full, counters can still be written, again and again: the
 * map keeps a reserve for them (store_room). */
static void test_full_store_counts(void)
{
	char path[512];
	static char noise[30000];
	struct store_counter_delta d = { "dropped.store_full", 1 };
	struct store *st;
	struct record rec;
	struct payload pl;
	unsigned seed = 5;
	int rc = 0, appended = 0, counted = 0;

	snprintf(path, sizeof path, "%s/full.mdb", tmp_root);
	for (size_t i = 0; i < sizeof noise; i++)
		noise[i] = (char)((seed = seed * 1103515245u + 12345u) >> 16);
	memset(&pl, 0, sizeof pl);
	pl.resp_body.p = noise;
	pl.resp_body.n = sizeof noise;
	CHECK_INT(store_open(&st, path, STORE_CREATE, 1 << 20), 0);
	if (st == NULL)
		return;
	for (int i = 0; i < 1000 && rc == 0; i++) {
		memset(&rec, 0, sizeof rec);
		rec.ts_ns = i;
		rc = store_append(st, &rec, &pl, NULL, 0);
		appended += rc == 0;
	}
	CHECK_INT(rc, STORE_EFULL);
	CHECK(appended > 10);
	/* Then small records without payload until those do not fit either. */
	rc = 0;
	for (int i = 0; i < 100000 && rc == 0; i++) {
		memset(&rec, 0, sizeof rec);
		rec.ts_ns = i;
		rec.model = record_str_of("gpt-4o-mini-2024-07-18");
		rc = store_append(st, &rec, NULL, NULL, 0);
	}
	CHECK_INT(rc, STORE_EFULL);
	/* As the shim does: each call tries its record, fails, and counts the drop. */
	for (int i = 0; i < 2000; i++) {
		memset(&rec, 0, sizeof rec);
		CHECK_INT(store_append(st, &rec, &pl, &d, 1), STORE_EFULL);
		CHECK_INT(store_append(st, &rec, NULL, &d, 1), STORE_EFULL);
		counted += store_counters_add(st, &d, 1) == 0;
	}
	CHECK_INT(counted, 2000);
	store_close(st);
}

/* The ticks store_verify_ticking gives: one per entry, counting up from 1. */
struct ticks {
	uint64_t calls, last;
	int in_order;
};

static void count_tick(uint64_t checked, void *arg)
{
	struct ticks *t = arg;

	t->calls++;
	t->in_order = t->in_order && checked == t->calls;
	t->last = checked;
}

/* The sound store has 3 records, 3 ids entries, 2 payloads and 1 counter: 9 ticks. */
static void test_ticks(void)
{
	const char *path = sound_store();
	struct ticks t = { 0, 0, 1 };
	struct problems p;
	struct store *st;
	uint64_t n = 999;

	memset(&p, 0, sizeof p);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	if (st == NULL)
		return;
	CHECK_INT(store_verify_ticking(st, collect, &p, count_tick, &t, &n), 0);
	store_close(st);
	CHECK_INT(n, 0);
	CHECK_INT(t.calls, 9);
	CHECK_INT(t.last, 9);
	CHECK_INT(t.in_order, 1);
}

int main(void)
{
	if (mkdtemp(tmp_root) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	RUN(test_sound);
	RUN(test_missing_ids_entry);
	RUN(test_missing_payload);
	RUN(test_orphans);
	RUN(test_bad_record_and_next_id);
	RUN(test_bad_counter_and_format);
	RUN(test_many_problems_capped);
	RUN(test_full_store_counts);
	RUN(test_ticks);
	if (fork() == 0)
		execlp("rm", "rm", "-rf", tmp_root, (char *)NULL);
	CHECK_DONE();
}
