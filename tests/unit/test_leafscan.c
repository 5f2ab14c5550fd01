/*
 * test_leafscan.c - store/leafscan.c, the reader of records with pread, against LMDB's own
 * cursor: the same entries, byte for byte, in the same order, from every kind of start; a
 * stop; damage answered, never a crash; a consistent snapshot while a writer appends.
 *
 * Stores are built with the real store_append (records of every size, some long enough for
 * LMDB's overflow pages, some appended out of time order so that pages split in the middle)
 * and read back raw with LMDB's cursor as the reference.
 */
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/endian.h"
#include "store/leafscan.h"
#include "store/lmdbpage.h"
#include "store/store.h"
#include "tests/unit/check.h"
#include "tests/unit/tmpdir.h"

/* Appends n records; every 37th has three long inline strings (a value of about 3 KB, past
 * what a 4 KiB page holds inline), every 11th starts earlier than the one before. */
static void build(const char *path, int n)
{
	static char big[3][1024];
	char agent[32], session[32];
	struct store *st;
	struct record r;

	memset(big[0], 'p', sizeof big[0]);
	memset(big[1], 'h', sizeof big[1]);
	memset(big[2], 'e', sizeof big[2]);
	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		return;
	for (int i = 0; i < n; i++) {
		memset(&r, 0, sizeof r);
		snprintf(agent, sizeof agent, "agent-%d", i % 7);
		snprintf(session, sizeof session, "session-%d", i / 50);
		r.ts_ns = 1700000000000000000ll + (int64_t)i * 1000 - (i % 11 == 0 ? 5500 : 0);
		r.ttfb_us = -1;
		r.retry_after_s = -1;
		r.status = 200;
		r.input_tokens = i;
		r.agent = record_str_of(agent);
		r.session = record_str_of(session);
		r.model = record_str_of("gpt-4o");
		if (i % 37 == 0) {
			r.path = (struct record_str){ big[0], sizeof big[0], 0 };
			r.host = (struct record_str){ big[1], sizeof big[1], 0 };
			r.error_message = (struct record_str){ big[2], sizeof big[2], 0 };
		}
		CHECK_INT(store_append(st, &r, NULL, NULL, 0), 0);
	}
	store_close(st);
}

/* What a walk saw: entries, and a running hash of their bytes in order. */
struct seen {
	uint64_t n, hash;
	uint64_t stop_at; /* return 7 at this entry (0: never) */
	size_t max_vlen;
};

static void seen_add(struct seen *s, const void *k, size_t klen, const void *v, size_t vlen)
{
	const unsigned char *p;
	uint64_t h = s->hash;
	size_t lens[2] = { klen, vlen };

	for (int part = 0; part < 2; part++) {
		p = part == 0 ? k : v;
		for (size_t i = 0; i < sizeof lens[part]; i++)
			h = (h ^ ((const unsigned char *)&lens[part])[i]) * 0x100000001b3ull;
		for (size_t i = 0; i < lens[part]; i++)
			h = (h ^ p[i]) * 0x100000001b3ull;
	}
	s->hash = h;
	s->n++;
	s->max_vlen = vlen > s->max_vlen ? vlen : s->max_vlen;
}

static int seen_entry(const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen,
		      void *arg)
{
	struct seen *s = arg;

	seen_add(s, k, klen, v, vlen);
	return s->stop_at != 0 && s->n == s->stop_at ? 7 : 0;
}

/* The store at path opened raw, read-only, with its records database. */
struct raw {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi records, main;
	int fd;
	size_t psize;
	struct leafscan_tree tree;
};

static void raw_open(struct raw *r, const char *path)
{
	MDB_val key = { 7, "records" }, val;
	MDB_envinfo info;
	MDB_stat ms;

	memset(r, 0, sizeof *r);
	CHECK_INT(mdb_env_create(&r->env), 0);
	mdb_env_set_maxdbs(r->env, 8);
	CHECK_INT(mdb_env_open(r->env, path, MDB_NOSUBDIR | MDB_RDONLY, 0600), 0);
	CHECK_INT(mdb_txn_begin(r->env, NULL, MDB_RDONLY, &r->txn), 0);
	CHECK_INT(mdb_dbi_open(r->txn, "records", 0, &r->records), 0);
	CHECK_INT(mdb_dbi_open(r->txn, NULL, 0, &r->main), 0);
	CHECK_INT(mdb_get(r->txn, r->main, &key, &val), 0);
	CHECK_INT(val.mv_size, LP_DB_SIZE);
	CHECK_INT(mdb_env_info(r->env, &info), 0);
	CHECK_INT(mdb_env_stat(r->env, &ms), 0);
	CHECK_INT(mdb_env_get_fd(r->env, &r->fd), 0);
	r->psize = ms.ms_psize;
	r->tree.root = lp_u64((const unsigned char *)val.mv_data + LP_DB_ROOT);
	r->tree.depth = lp_u16((const unsigned char *)val.mv_data + LP_DB_DEPTH);
	r->tree.end = (uint64_t)info.me_last_pgno + 1;
}

static void raw_close(struct raw *r)
{
	mdb_txn_abort(r->txn);
	mdb_env_close(r->env);
}

/* LMDB's cursor from the first key >= start (all when start is NULL). */
static void cursor_walk(struct raw *r, const unsigned char *start, size_t slen, struct seen *s)
{
	MDB_val key = { slen, (void *)start }, val;
	MDB_cursor *cur;
	int rc;

	CHECK_INT(mdb_cursor_open(r->txn, r->records, &cur), 0);
	for (rc = mdb_cursor_get(cur, &key, &val, start ? MDB_SET_RANGE : MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
		seen_add(s, key.mv_data, key.mv_size, val.mv_data, val.mv_size);
	CHECK_INT(rc, MDB_NOTFOUND);
	mdb_cursor_close(cur);
}

/* leafscan and the cursor from start agree: count and bytes. */
static void check_from(struct raw *r, const unsigned char *start, size_t slen)
{
	struct seen a = { 0, 0xcbf29ce484222325ull, 0, 0 }, b = a;
	static const unsigned char none[1];

	cursor_walk(r, start, slen, &a);
	CHECK_INT(leafscan_walk(r->fd, r->psize, &r->tree, start ? start : none, start ? slen : 0,
				RECORD_ENCODED_MAX, seen_entry, &b),
		  0);
	CHECK_INT(b.n, a.n);
	CHECK(b.hash == a.hash);
}

/* Every kind of start, on stores of depth 1 to 3, with overflow values among them. */
static void test_matches_cursor(void)
{
	static const int sizes[] = { 1, 40, 3000, 40000 };
	unsigned char k[16];
	struct raw r;
	int64_t ts;

	for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
		char name[32];
		struct seen all = { 0, 0, 0, 0 };
		const char *path;

		snprintf(name, sizeof name, "match-%d.mdb", sizes[z]);
		path = tmp_path(name);
		build(path, sizes[z]);
		raw_open(&r, path);
		CHECK_INT(leafscan_walk(r.fd, r.psize, &r.tree, k, 0, RECORD_ENCODED_MAX, seen_entry,
					&all),
			  0);
		CHECK_INT(all.n, sizes[z]);
		/* the long records came from overflow pages */
		CHECK(all.max_vlen > 3000);
		check_from(&r, NULL, 0);
		memset(k, 0, sizeof k);
		check_from(&r, k, sizeof k); /* before every key */
		memset(k, 0xff, sizeof k);
		check_from(&r, k, sizeof k); /* past every key */
		check_from(&r, k, 3);        /* a shorter key past every key */
		for (int i = 0; i < sizes[z]; i += sizes[z] / 97 + 1) {
			ts = 1700000000000000000ll + (int64_t)i * 1000;
			endian_put_be64(k, (uint64_t)ts);
			endian_put_be64(k + 8, 0);
			check_from(&r, k, sizeof k);     /* at a time, before its ids */
			endian_put_be64(k + 8, (uint64_t)i + 1);
			check_from(&r, k, sizeof k);     /* at a record's own key */
			endian_put_be64(k + 8, (uint64_t)i + 2);
			check_from(&r, k, 12);           /* a prefix of a key */
			endian_put_be64(k, (uint64_t)ts + 1);
			check_from(&r, k, sizeof k);     /* between two records */
		}
		if (sizes[z] == 40000)
			CHECK(r.tree.depth >= 3);
		raw_close(&r);
	}
}

/* A callback's non-zero stops the walk at once and is what it returns. */
static void test_stop(void)
{
	struct seen s = { 0, 0, 1234, 0 };
	unsigned char k[16] = { 0 };
	const char *path = tmp_path("stop.mdb");
	struct raw r;

	build(path, 3000);
	raw_open(&r, path);
	CHECK_INT(leafscan_walk(r.fd, r.psize, &r.tree, k, sizeof k, RECORD_ENCODED_MAX,
				seen_entry, &s),
		  7);
	CHECK_INT(s.n, 1234);
	/* a value longer than allowed is damage */
	s = (struct seen){ 0, 0, 0, 0 };
	CHECK_INT(leafscan_walk(r.fd, r.psize, &r.tree, k, sizeof k, 100, seen_entry, &s),
		  STORE_EFORMAT);
	raw_close(&r);
}

static int count_record(const struct record *rec, void *arg)
{
	(void)rec;
	(*(uint64_t *)arg)++;
	return 0;
}

/* A leaf page in the middle of the records tree (middle children all the way down), away
 * from the two paths the open check walks in a tree this big. */
static uint64_t middle_leaf(struct raw *r)
{
	unsigned char page[4096];
	uint64_t pg = r->tree.root;
	size_t nkeys;

	for (unsigned lv = 1; lv < r->tree.depth; lv++) {
		CHECK_INT(pread(r->fd, page, sizeof page, (off_t)(pg * r->psize)), sizeof page);
		nkeys = (lp_u16(page + LP_LOWER_OFF) - LP_PAGEHDR) / 2;
		pg = lp_child(page + lp_u16(page + LP_PAGEHDR + 2 * (nkeys / 2)));
	}
	return pg;
}

/*
 * Exact damage in a leaf the open check does not walk (the middle of a big tree): a node
 * offset past the page, a value size past it, an overflow page number past the file. Each is
 * STORE_EFORMAT from store_scan, not a wild read.
 */
static void test_damage_exact(void)
{
	const char *path = tmp_path("exact.mdb"), *copy = tmp_path("exact-copy.mdb");
	unsigned char page[4096], b[2];
	uint64_t leaf, n;
	struct store *st;
	struct raw r;
	char cmd[1200];
	int fd;

	build(path, 20000);
	raw_open(&r, path);
	leaf = middle_leaf(&r);
	CHECK_INT(pread(r.fd, page, sizeof page, (off_t)(leaf * r.psize)), sizeof page);
	raw_close(&r);
	for (int kind = 0; kind < 3; kind++) {
		unsigned node = lp_u16(page + LP_PAGEHDR + 2 * 3);
		off_t at;

		snprintf(cmd, sizeof cmd, "cp '%s' '%s' && rm -f '%s-lock'", path, copy, copy);
		CHECK_INT(system(cmd), 0);
		fd = open(copy, O_RDWR);
		CHECK(fd >= 0);
		if (kind == 0) { /* the 4th node's offset: past the page */
			endian_put_le16(b, 4095);
			at = (off_t)(leaf * 4096 + LP_PAGEHDR + 2 * 3);
		} else if (kind == 1) { /* the 4th node's data size: past the page */
			endian_put_le16(b, 0x7fff);
			at = (off_t)(leaf * 4096 + node);
		} else { /* the 4th node made an overflow node whose page number is garbage */
			endian_put_le16(b, LP_BIGDATA);
			at = (off_t)(leaf * 4096 + node + 4);
		}
		CHECK_INT(pwrite(fd, b, 2, at), 2);
		close(fd);
		CHECK_INT(store_open(&st, copy, STORE_READONLY, 0), 0);
		if (st == NULL)
			continue;
		n = 0;
		CHECK_INT(store_scan(st, 0, INT64_MAX, count_record, &n), STORE_EFORMAT);
		store_close(st);
	}
}

/* Random damage to a store bigger than the open check walks whole: a reader that opens it
 * and scans every record ends with an answer, never a signal. */
static void test_damage_random(void)
{
	const char *path = tmp_path("random.mdb"), *copy = tmp_path("random-copy.mdb");
	unsigned char junk[16];
	int opened = 0, killed = 0, status, fd;
	unsigned seed = 7;
	struct stat sb;
	char cmd[1200];
	pid_t kid;

	build(path, 20000);
	CHECK_INT(stat(path, &sb), 0);
	for (int trial = 0; trial < 120; trial++) {
		snprintf(cmd, sizeof cmd, "cp '%s' '%s' && rm -f '%s-lock'", path, copy, copy);
		CHECK_INT(system(cmd), 0);
		fd = open(copy, O_RDWR);
		for (int k = 0; k < 2; k++) {
			for (size_t j = 0; j < sizeof junk; j++)
				junk[j] = (unsigned char)rand_r(&seed);
			CHECK_INT(pwrite(fd, junk, sizeof junk,
					 2 * 4096 + (off_t)((unsigned)rand_r(&seed) %
							    (unsigned)(sb.st_size - 2 * 4096 - 16))),
				  sizeof junk);
		}
		close(fd);
		kid = fork();
		if (kid == 0) {
			struct store *st;
			uint64_t n = 0;

			if (store_open(&st, copy, STORE_READONLY, 0) != 0)
				_exit(3);
			store_scan(st, 0, INT64_MAX, count_record, &n);
			store_close(st);
			_exit(0);
		}
		CHECK_INT(waitpid(kid, &status, 0), kid);
		killed += WIFSIGNALED(status);
		opened += WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	CHECK_INT(killed, 0);
	/* most damage lies in the records the open check does not walk: scans ran */
	CHECK(opened > 60);
}

/* A scan while a writer appends reads one snapshot: ids 1 to n, every one, in order. */
struct contiguous {
	uint64_t next;
	int bad;
};

static int contiguous_record(const struct record *rec, void *arg)
{
	struct contiguous *c = arg;

	c->bad |= rec->id != c->next + 1 || rec->input_tokens != (int64_t)rec->id * 3;
	c->next = rec->id;
	return 0;
}

static void test_snapshot_while_appending(void)
{
	const char *path = tmp_path("snap.mdb");
	struct store *st, *rd;
	struct contiguous c;
	struct record r;
	char session[32];
	int status, scans = 0, bad = 0;
	uint64_t last = 0, grew = 0;
	pid_t kid;

	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	store_close(st);
	kid = fork();
	if (kid == 0) {
		if (store_open(&st, path, 0, 0) != 0)
			_exit(2);
		for (int i = 1; i <= 30000; i++) {
			memset(&r, 0, sizeof r);
			snprintf(session, sizeof session, "s-%d", i / 100);
			r.ts_ns = 1000000 + i;
			r.input_tokens = (int64_t)i * 3;
			r.session = record_str_of(session);
			if (store_append(st, &r, NULL, NULL, 0) != 0)
				_exit(1);
		}
		store_close(st);
		_exit(0);
	}
	CHECK_INT(store_open(&rd, path, STORE_READONLY, 0), 0);
	while (rd != NULL && waitpid(kid, &status, WNOHANG) == 0) {
		c = (struct contiguous){ 0, 0 };
		CHECK_INT(store_scan(rd, 0, INT64_MAX, contiguous_record, &c), 0);
		bad += c.bad;
		grew += c.next > last;
		last = c.next;
		scans++;
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	c = (struct contiguous){ 0, 0 };
	CHECK_INT(store_scan(rd, 0, INT64_MAX, contiguous_record, &c), 0);
	CHECK_INT(c.next, 30000);
	CHECK_INT(c.bad, 0);
	CHECK_INT(bad, 0);
	CHECK(scans > 3 && grew > 2);
	store_close(rd);
}

int main(void)
{
	if (tmpdir_make("test-leafscan") != 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	RUN(test_matches_cursor);
	RUN(test_stop);
	RUN(test_damage_exact);
	RUN(test_damage_random);
	RUN(test_snapshot_while_appending);
	tmpdir_remove();
	CHECK_DONE();
}
