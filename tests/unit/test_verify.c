/*
 * test_verify.c - store_verify and store_info's payload bytes: a sound store has no problem;
 * each kind of damage, made with LMDB directly on a sound store, is found and named once.
 * Damage to the strings table (store/strings.h) and references it no longer holds included.
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

/* A store of three records (ids 1..3; 1 and 3 with a payload) and one counter; each record's
 * model, "gpt-4o", is string 1 of the strings table. */
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
	mdb_env_set_maxdbs(r->env, 8);
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
	CHECK_INT(in.format, 3);
	CHECK_INT(in.strings, 1);
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

/* Cuts id's ids entry to its first n bytes. */
static void cut_ids_entry(const char *path, uint64_t id, size_t n)
{
	struct raw r;
	unsigned char k[8], v[64];
	MDB_val key = { 8, k }, val;
	MDB_dbi dbi = raw_begin(&r, path, "ids");

	id_key(k, id);
	CHECK_INT(mdb_get(r.txn, dbi, &key, &val), 0);
	CHECK(val.mv_size > n && n <= sizeof v);
	memcpy(v, val.mv_data, n);
	val = (MDB_val){ n, v };
	CHECK_INT(mdb_put(r.txn, dbi, &key, &val, 0), 0);
	raw_end(&r);
}

static void test_missing_payload(void)
{
	const char *path = sound_store();
	struct problems p;

	/* Record 3's ids entry keeps its records key and loses the payload after it. */
	cut_ids_entry(path, 3, 16);
	CHECK_INT(verify(path, &p), 1);
	CHECK_MEM(p.text, p.len, "record 3: flagged with a payload, none stored\n");
	cut_ids_entry(path, 3, 15);
	CHECK_INT(verify(path, &p), 3);
	CHECK_MEM(p.text, p.len,
		  "record 3: its ids entry names another key\n"
		  "record 3: flagged with a payload, none stored\n"
		  "ids 3: a value of 15 bytes (at least 16 expected)\n");
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

	/* A payload for record 2, which has none, where a format 1 writer kept payloads, and an
	 * id entry for a record never written. */
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

static void test_payload_unflagged(void)
{
	const char *path = sound_store();
	unsigned char k[8], v[20];
	struct problems p;

	/* Record 2 (no payload) given one in its ids entry, after its records key. */
	endian_put_be64(v, 1700000000000000002ULL);
	endian_put_be64(v + 8, 2);
	memcpy(v + 16, "junk", 4);
	id_key(k, 2);
	put_raw(path, "ids", k, 8, v, sizeof v);
	CHECK_INT(verify(path, &p), 2);
	CHECK_MEM(p.text, p.len,
		  "payload 2: does not decode\n"
		  "payload 2: its record is not flagged with a payload\n");
}

static void test_bad_record_and_next_id(void)
{
	const char *path = sound_store();
	unsigned char rkey[16], b[8];
	struct problems p;

	/* Record 1's value replaced by bytes that are not a record; record 3's ids entry gone,
	 * so the next id (one past the last ids key, meta next_id being less) is 3. */
	endian_put_be64(rkey, 1700000000000000001ULL);
	endian_put_be64(rkey + 8, 1);
	put_raw(path, "records", rkey, 16, "\0\0\0\0", 4);
	endian_put_le64(b, 2);
	put_raw(path, "meta", "next_id", 7, b, 8);
	delete_id(path, "ids", 3);
	CHECK_INT(verify(path, &p), 4);
	CHECK_MEM(p.text, p.len,
		  "record 1: does not decode\n"
		  "record 3: id not below next_id 3\n"
		  "record 3: no ids entry\n"
		  "record 3: flagged with a payload, none stored\n");
}

/* Record i of the sound store as a format 1 writer wrote it: version 3, the 140-byte header
 * (docs/record-format.md, "Record value (version 3)") with ts_ns, flags and input_tokens, its
 * other numbers 0 as sound_store left them, then 13 strings, all empty but the model. */
static size_t v3_sound_record(unsigned char *b, uint64_t i)
{
	size_t pos = 142;

	memset(b, 0, 142 + 13 * 2 + 6);
	endian_put_le16(b, 3);
	endian_put_le16(b + 2, 140);
	endian_put_le64(b + 4, 1700000000000000000ULL + i);
	endian_put_le32(b + 40, i == 2 ? 0 : RECORD_PAYLOAD);
	endian_put_le64(b + 44, i);
	endian_put_le16(b + 140, 13);
	for (int k = 0; k < 13; k++) {
		if (k == 10) {
			endian_put_le16(b + pos, 6);
			memcpy(b + pos + 2, "gpt-4o", 6);
			pos += 6;
		}
		pos += 2;
	}
	return pos;
}

/* Rewrites a sound store as a format 1 writer left it: records of version 3 and no strings
 * database, payloads in their own database, ids entries of the records key alone, meta
 * next_id kept by every append. */
static void make_format1(const char *path)
{
	struct raw r;
	MDB_dbi ids, pays, meta, recs, strs;
	unsigned char k[8], v[16], b[8], rec[200];
	MDB_val key = { 8, k }, val, pay;

	ids = raw_begin(&r, path, "ids");
	CHECK_INT(mdb_dbi_open(r.txn, "payloads", 0, &pays), 0);
	CHECK_INT(mdb_dbi_open(r.txn, "meta", 0, &meta), 0);
	CHECK_INT(mdb_dbi_open(r.txn, "records", 0, &recs), 0);
	CHECK_INT(mdb_dbi_open(r.txn, "strings", 0, &strs), 0);
	for (uint64_t id = 1; id <= 3; id++) {
		id_key(k, id);
		key = (MDB_val){ 8, k };
		CHECK_INT(mdb_get(r.txn, ids, &key, &val), 0);
		if (val.mv_size > 16) {
			pay = (MDB_val){ val.mv_size - 16, (unsigned char *)val.mv_data + 16 };
			CHECK_INT(mdb_put(r.txn, pays, &key, &pay, 0), 0);
		}
		memcpy(v, val.mv_data, 16);
		val = (MDB_val){ 16, v };
		CHECK_INT(mdb_put(r.txn, ids, &key, &val, 0), 0);
		key = (MDB_val){ 16, v };
		val = (MDB_val){ v3_sound_record(rec, id), rec };
		CHECK_INT(mdb_put(r.txn, recs, &key, &val, 0), 0);
	}
	CHECK_INT(mdb_drop(r.txn, strs, 1), 0);
	endian_put_le32(b, 1);
	key = (MDB_val){ 6, "format" };
	val = (MDB_val){ 4, b };
	CHECK_INT(mdb_put(r.txn, meta, &key, &val, 0), 0);
	endian_put_le64(b, 4);
	key = (MDB_val){ 7, "next_id" };
	val = (MDB_val){ 8, b };
	CHECK_INT(mdb_put(r.txn, meta, &key, &val, 0), 0);
	raw_end(&r);
}

/* The model of record id, as store_get gives it: its bytes and its ref. */
struct model_seen {
	char name[16];
	uint32_t ref;
	int64_t input;
};

static int model_copy(const struct record *rec, void *arg)
{
	struct model_seen *m = arg;

	snprintf(m->name, sizeof m->name, "%.*s", (int)rec->model.n,
		 rec->model.p != NULL ? rec->model.p : "");
	m->ref = rec->model.ref;
	m->input = rec->input_tokens;
	return 0;
}

/* Counts the payloads store_payload_get finds among ids 1..n. */
static int payloads_found(struct store *st, uint64_t n)
{
	struct payload pl;
	int found = 0;

	for (uint64_t id = 1; id <= n; id++) {
		if (store_payload_get(st, id, &pl) == 0 && pl.resp_body.n == 12 &&
		    memcmp(pl.resp_body.p, "{\"usage\":{}}", 12) == 0)
			found++;
		payload_release(&pl);
	}
	return found;
}

/* A format 1 store (version 3 records, no strings database) reads as it is; a writer marks it
 * format 3, creates its strings database and appends after its ids; every record then reads
 * back, the old ones with their strings inline, the new one with a reference. */
static void test_format1_store(void)
{
	const char *path = sound_store();
	struct store_prune_result pr;
	struct store_info in;
	struct problems p;
	struct store *st;
	struct record rec;
	struct payload pl;
	struct model_seen ms;

	make_format1(path);
	CHECK_INT(verify(path, &p), 0);
	CHECK_MEM(p.text, p.len, "");
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	CHECK_INT(store_info(st, &in), 0);
	CHECK_INT(in.format, 1);
	CHECK_INT(in.payloads, 2);
	CHECK_INT(in.next_id, 4);
	CHECK_INT(in.strings, 0);
	CHECK_INT(payloads_found(st, 3), 2);
	CHECK_INT(store_get(st, 2, model_copy, &ms), 0);
	CHECK_STR(ms.name, "gpt-4o");
	CHECK_INT(ms.ref, 0);
	CHECK_INT(ms.input, 2);
	store_close(st);

	CHECK_INT(store_open(&st, path, 0, 0), 0);
	memset(&pl, 0, sizeof pl);
	pl.resp_body = record_str_of("{\"usage\":{}}");
	memset(&rec, 0, sizeof rec);
	rec.ts_ns = 1700000000000000009LL;
	rec.input_tokens = 9;
	rec.model = record_str_of("gpt-4o");
	CHECK_INT(store_append(st, &rec, &pl, NULL, 0), 0);
	CHECK_INT(rec.id, 4);
	CHECK_INT(store_info(st, &in), 0);
	CHECK_INT(in.format, 3);
	CHECK_INT(in.payloads, 3);
	CHECK_INT(in.next_id, 5);
	CHECK_INT(in.strings, 1);
	CHECK_INT(payloads_found(st, 4), 3);
	for (uint64_t id = 1; id <= 4; id++) {
		memset(&ms, 0, sizeof ms);
		CHECK_INT(store_get(st, id, model_copy, &ms), 0);
		CHECK_STR(ms.name, "gpt-4o");
		CHECK_INT(ms.ref, id == 4 ? 1 : 0);
		CHECK_INT(ms.input, id == 4 ? 9 : (int64_t)id);
	}
	store_close(st);
	CHECK_INT(verify(path, &p), 0);
	CHECK_MEM(p.text, p.len, "");

	/* Pruning every record keeps the ids already given out. */
	CHECK_INT(store_prune(path, INT64_MAX, STORE_PRUNE_NO_COMPACT, NULL, NULL, &pr), 0);
	CHECK_INT(pr.records, 4);
	CHECK_INT(pr.payloads, 3);
	CHECK_INT(store_open(&st, path, 0, 0), 0);
	CHECK_INT(store_info(st, &in), 0);
	CHECK_INT(in.records, 0);
	CHECK_INT(in.payloads, 0);
	CHECK_INT(in.next_id, 5);
	rec.ts_ns++;
	CHECK_INT(store_append(st, &rec, NULL, NULL, 0), 0);
	CHECK_INT(rec.id, 5);
	store_close(st);
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

/* Appends record 4 to a sound store: its agent, "solo", becomes string 2. */
static void add_solo(const char *path)
{
	struct store *st;
	struct record rec;

	CHECK_INT(store_open(&st, path, 0, 0), 0);
	if (st == NULL)
		return;
	memset(&rec, 0, sizeof rec);
	rec.ts_ns = 1700000000000000004LL;
	rec.agent = record_str_of("solo");
	rec.model = record_str_of("gpt-4o");
	CHECK_INT(store_append(st, &rec, NULL, NULL, 0), 0);
	CHECK_INT(rec.id, 4);
	store_close(st);
}

/* Deletes a key of the strings database. */
static void delete_string_key(const char *path, const void *k, size_t n)
{
	struct raw r;
	MDB_val key = { n, (void *)k };
	MDB_dbi dbi = raw_begin(&r, path, "strings");

	CHECK_INT(mdb_del(r.txn, dbi, &key, NULL), 0);
	raw_end(&r);
}

static int count_one(const struct record *rec, void *arg)
{
	(void)rec;
	(*(int *)arg)++;
	return 0;
}

/* A record whose reference names no string: named once, and readers refuse the record. */
static void test_dangling_reference(void)
{
	const char *path = sound_store();
	struct problems p;
	struct model_seen ms;
	struct store *st;

	add_solo(path);
	CHECK_INT(verify(path, &p), 0);
	/* String 2's id entry gone: the record, and the name left without it. */
	delete_string_key(path, "\0\0\0\0\x02", 5);
	CHECK_INT(verify(path, &p), 2);
	CHECK_MEM(p.text, p.len,
		  "record 4: names a string the strings table does not hold\n"
		  "strings: the name 'solo' has no id entry that gives it back\n");
	/* Its name entry gone too: the record alone. */
	delete_string_key(path, "\x01solo", 5);
	CHECK_INT(verify(path, &p), 1);
	CHECK_MEM(p.text, p.len, "record 4: names a string the strings table does not hold\n");
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	if (st == NULL)
		return;
	CHECK_INT(store_get(st, 4, model_copy, &ms), STORE_EFORMAT);
	CHECK_INT(store_get(st, 3, model_copy, &ms), 0);
	CHECK_STR(ms.name, "gpt-4o");
	CHECK_INT(ms.ref, 1);
	store_close(st);
}

/*
 * store.h: "A record that fails to decode stops the scan with STORE_EFORMAT", whether its
 * bytes are not a record or it names a string the table does not hold; the records before it
 * have been given to the callback.
 */
static void test_scan_stops_with_eformat(void)
{
	const char *path = sound_store();
	unsigned char rkey[16];
	struct store *st;
	int n = 0;

	add_solo(path);
	delete_string_key(path, "\0\0\0\0\x02", 5);
	delete_string_key(path, "\x01solo", 5);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	if (st == NULL)
		return;
	CHECK_INT(store_scan(st, 0, INT64_MAX, count_one, &n), STORE_EFORMAT);
	CHECK_INT(n, 3); /* the records before it */
	store_close(st);

	/* Record 2's value replaced by bytes that are not a record. */
	path = sound_store();
	endian_put_be64(rkey, 1700000000000000002ULL);
	endian_put_be64(rkey + 8, 2);
	put_raw(path, "records", rkey, 16, "\0\0\0\0", 4);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	if (st == NULL)
		return;
	n = 0;
	CHECK_INT(store_scan(st, 0, INT64_MAX, count_one, &n), STORE_EFORMAT);
	CHECK_INT(n, 1);
	CHECK_INT(store_get(st, 2, count_one, &n), STORE_EFORMAT);
	store_close(st);
}

/* Name entries that do not give back their string's id, and entries of no kind. */
static void test_strings_damage(void)
{
	const char *path = sound_store();
	unsigned char id9[5] = { 0, 0, 0, 0, 9 }, v[4];
	struct problems p;

	add_solo(path);
	/* "gpt-4o" looked up by name gives string 2, "solo": neither entry has its counterpart.
	 * The records still read their strings by id. */
	endian_put_le32(v, 2);
	put_raw(path, "strings", "\x01gpt-4o", 7, v, 4);
	CHECK_INT(verify(path, &p), 2);
	CHECK_MEM(p.text, p.len,
		  "string 1: no name entry gives back its id\n"
		  "strings: the name 'gpt-4o' has no id entry that gives it back\n");
	/* A name entry's value of 3 bytes. */
	put_raw(path, "strings", "\x01gpt-4o", 7, v, 3);
	CHECK_INT(verify(path, &p), 3);
	CHECK_MEM(p.text, p.len,
		  "string 1: no name entry gives back its id\n"
		  "strings: a name entry of 3 bytes (4 expected)\n"
		  "strings: the name 'gpt-4o' has no id entry that gives it back\n");
	endian_put_le32(v, 1);
	put_raw(path, "strings", "\x01gpt-4o", 7, v, 4);
	CHECK_INT(verify(path, &p), 0);
	/* An empty string under id 9, with no name entry; a key of neither kind. */
	put_raw(path, "strings", id9, 5, "", 0);
	put_raw(path, "strings", "\x02zz", 3, "x", 1);
	CHECK_INT(verify(path, &p), 3);
	CHECK_MEM(p.text, p.len,
		  "string 9: 0 bytes (1 to 255 expected)\n"
		  "string 9: no name entry gives back its id\n"
		  "strings: a key of 3 bytes of neither kind\n");
}

/* Drops the strings database of path. */
static void drop_strings(const char *path)
{
	struct raw r;
	MDB_dbi dbi = raw_begin(&r, path, "strings");

	CHECK_INT(mdb_drop(r.txn, dbi, 1), 0);
	raw_end(&r);
}

/* A format 3 store without its strings database: named once; and each record that named a
 * string in it. */
static void test_strings_db_missing(void)
{
	const char *path = sound_store();
	char other[512];
	struct problems p;
	struct store *st;
	struct record rec;

	drop_strings(path);
	CHECK_INT(verify(path, &p), 4);
	CHECK_MEM(p.text, p.len,
		  "record 1: names a string the strings table does not hold\n"
		  "record 2: names a string the strings table does not hold\n"
		  "record 3: names a string the strings table does not hold\n"
		  "the strings database is missing\n");

	/* Records with no string to name: the missing database alone. */
	snprintf(other, sizeof other, "%s/%d.mdb", tmp_root, tmp_seq++);
	CHECK_INT(store_open(&st, other, STORE_CREATE, 1 << 20), 0);
	if (st == NULL)
		return;
	memset(&rec, 0, sizeof rec);
	rec.ts_ns = 5;
	rec.error_message = record_str_of("never a reference");
	CHECK_INT(store_append(st, &rec, NULL, NULL, 0), 0);
	store_close(st);
	CHECK_INT(verify(other, &p), 0);
	drop_strings(other);
	CHECK_INT(verify(other, &p), 1);
	CHECK_MEM(p.text, p.len, "the strings database is missing\n");
	/* A writer creates it again. */
	CHECK_INT(store_open(&st, other, 0, 0), 0);
	store_close(st);
	CHECK_INT(verify(other, &p), 0);
	CHECK_MEM(p.text, p.len, "");
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

/* The sound store has 3 records, 3 ids entries (2 holding payloads), 1 counter and 1 string
 * (its id entry and its name entry): 9 ticks (its payloads database, where format 1 kept
 * payloads, is empty). */
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
	RUN(test_payload_unflagged);
	RUN(test_format1_store);
	RUN(test_dangling_reference);
	RUN(test_scan_stops_with_eformat);
	RUN(test_strings_damage);
	RUN(test_strings_db_missing);
	RUN(test_bad_counter_and_format);
	RUN(test_many_problems_capped);
	RUN(test_full_store_counts);
	RUN(test_ticks);
	if (fork() == 0)
		execlp("rm", "rm", "-rf", tmp_root, (char *)NULL);
	CHECK_DONE();
}
